"""The hazard ledger: status, days overdue and escalation level of every hazard found on patrol."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from firegrid.risk.params import HazardParams
from firegrid.risk.values import as_timestamp, date_column
from firegrid.spatial.errors import InputError
from firegrid.spatial.io.crs import require_projected, require_same_crs
from firegrid.spatial.io.layers import clean_text
from firegrid.spatial.io.sources import locate

# Escalation levels, in the order the community plans pass an unrectified hazard upwards.
ESCALATION_ROLES: dict[int, str] = {
    0: "",
    1: "inspector",
    2: "grid_head",
    3: "subdistrict",
    4: "district",
}
ESCALATION_LABELS: dict[int, str] = {0: "", 1: "网格员", 2: "网格长", 3: "街道", 4: "区"}

STATUSES = ("future", "open", "overdue", "rectified")

LEDGER_COLUMNS = (
    "building_id_matched",
    "match",
    "deadline_used",
    "imputed_deadline",
    "status",
    "days_open",
    "days_overdue",
    "rectified_late",
    "escalation_level",
    "escalation_to",
    "escalation_label",
    "hazard_weight",
)


def _first_bad(hazards: pd.DataFrame, mask: pd.Series, problem: str, column: str) -> None:
    if mask.any():
        first = int(np.flatnonzero(mask.to_numpy())[0])
        more = f"; {int(mask.sum()) - 1} more rows like it" if mask.sum() > 1 else ""
        raise InputError(problem + more, **locate(hazards, first, column, layer="hazards"))


def match_buildings(
    hazards: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None,
    *,
    snap_m: float,
    layer: str = "hazards",
) -> tuple[pd.Series, pd.Series]:
    """Attach each point record (hazard or incident) to a building.

    A record whose ``building_id`` names a known building keeps it; otherwise it is attached to
    the nearest building within ``snap_m`` metres (distance to the footprint; 0 inside it).

    Parameters
    ----------
    hazards : GeoDataFrame
        Point records in the same projected CRS as ``buildings``; an optional ``building_id``.
    buildings : GeoDataFrame or None
        Buildings with ``building_id``. When None, the given ids are trusted as they are.
    snap_m : float
        Largest distance for the nearest-building fallback, metres.

    Returns
    -------
    (building_id, match) : two Series aligned with ``hazards``: the matched id (<NA> when
    none) and how it was found: ``"id"``, ``"nearest"`` or ``"none"``.
    """
    given = (
        clean_text(hazards["building_id"])
        if "building_id" in hazards
        else pd.Series(pd.NA, index=hazards.index, dtype="string")
    )
    if buildings is None:
        how = pd.Series(np.where(given.notna(), "id", "none"), index=hazards.index, dtype="string")
        return given, how
    ids = clean_text(buildings["building_id"])
    known = given.isin(set(ids.dropna())).fillna(False)
    out = given.where(known, pd.NA).astype("string")
    how = pd.Series(np.where(known, "id", "none"), index=hazards.index, dtype="string")
    need = ~known.to_numpy(dtype=bool)
    if hasattr(hazards, "geometry"):
        need &= ~(hazards.geometry.isna() | hazards.geometry.is_empty).to_numpy(dtype=bool)
    if need.any() and len(buildings):
        require_projected(hazards, layer)
        require_projected(buildings, "buildings")
        require_same_crs(hazards, buildings, layer, "buildings")
        left = gpd.GeoDataFrame(geometry=hazards.geometry[need].values, crs=hazards.crs)
        left["_pos"] = np.flatnonzero(need)
        right = gpd.GeoDataFrame({"_bid": ids.to_numpy()}, geometry=buildings.geometry.values)
        right = right.set_crs(buildings.crs)
        near = gpd.sjoin_nearest(left, right, how="inner", max_distance=snap_m)
        # Equidistant ties return several rows: keep one, deterministically the first building.
        near = near.sort_values(["_pos", "index_right"]).drop_duplicates("_pos")
        pos = near["_pos"].to_numpy()
        out.iloc[pos] = near["_bid"].astype("string").to_numpy()
        how.iloc[pos] = "nearest"
    return out, how


def hazard_ledger(
    hazards: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None = None,
    *,
    as_of: str | dt.date | pd.Timestamp,
    params: HazardParams | None = None,
) -> gpd.GeoDataFrame:
    """Status, days overdue, escalation level and index weight of each hazard on ``as_of``.

    A hazard found after ``as_of`` is ``future`` (not counted); one rectified on or before
    ``as_of`` is ``rectified`` (level 0, weight 0: it stops counting); an unrectified one is
    ``open`` up to and including its deadline and ``overdue`` after it. A missing deadline is
    ``found_on`` + the category's period (flagged in ``imputed_deadline``). Escalation follows
    :class:`firegrid.risk.params.HazardParams`; the weight of an unrectified hazard is its category
    weight × (1 + overdue_step × thresholds exceeded), so an overdue one counts more.

    Parameters
    ----------
    hazards : GeoDataFrame
        The ``hazards`` layer (``hazard_id``, ``category`` general/major, ``found_on``,
        optional ``deadline``, ``rectified_on``, ``building_id``); points in the projected CRS
        of ``buildings``.
    buildings : GeoDataFrame, optional
        Used to check ``building_id`` and to attach hazards without one to the nearest building
        within ``params.snap_m`` metres.
    as_of : date
        The day the ledger is read on (explicit: never today's date implicitly).
    params : HazardParams, optional

    Returns
    -------
    GeoDataFrame
        A copy of ``hazards`` with the columns of LEDGER_COLUMNS added: ``building_id_matched``,
        ``match`` (id / nearest / none), ``deadline_used``, ``imputed_deadline``, ``status``,
        ``days_open`` and ``days_overdue`` (days), ``rectified_late``, ``escalation_level``
        (0–4), ``escalation_to`` (inspector / grid_head / subdistrict / district),
        ``escalation_label`` (网格员 / 网格长 / 街道 / 区) and ``hazard_weight``.

    Raises
    ------
    InputError
        Unknown category, missing ``found_on``, a date that is not a date, a deadline or
        rectification date before ``found_on``.
    """
    params = params or HazardParams()
    as_of_ts = as_timestamp(as_of)
    out = hazards.copy()
    cat, found, deadline, rectified = _checked_entries(out)
    major = (cat == "major").to_numpy(dtype=bool)
    period = np.where(major, params.major_period_days, params.general_period_days)
    imputed_deadline = deadline.isna()
    deadline_used = deadline.where(~imputed_deadline, found + pd.to_timedelta(period, unit="D"))
    bid, how = match_buildings(out, buildings, snap_m=params.snap_m)
    state = _state_on(as_of_ts, found, rectified, deadline_used)
    out["category"] = cat.to_numpy()
    out["building_id_matched"] = pd.array(bid.to_numpy(), dtype="string")
    out["match"] = how.to_numpy()
    out["deadline_used"] = deadline_used.to_numpy()
    out["imputed_deadline"] = imputed_deadline.to_numpy(dtype=bool)
    _add_state(out, state, major, params)
    out.attrs["as_of"] = as_of_ts.date().isoformat()
    return out


def _checked_entries(
    hazards: pd.DataFrame,
) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Category (general/major) and the found, deadline and rectification dates, checked."""
    if "category" not in hazards:
        raise InputError("required column missing", file="hazards layer", column="category")
    cat = clean_text(hazards["category"]).str.lower()
    # Ledgers often say 一般/重大; accept those here too so a notebook user need not map them.
    cat = cat.replace(
        {"一般": "general", "一般隐患": "general", "重大": "major", "重大隐患": "major"}
    )
    _first_bad(
        hazards,
        ~cat.isin(["general", "major"]).fillna(False),
        "category must be general or major",
        "category",
    )
    if "found_on" not in hazards:
        raise InputError("required column missing", file="hazards layer", column="found_on")
    found = date_column(hazards, "found_on", layer="hazards")
    _first_bad(hazards, found.isna(), "found_on is empty", "found_on")
    deadline = date_column(hazards, "deadline", layer="hazards")
    rectified = date_column(hazards, "rectified_on", layer="hazards")
    for later, column, what in (
        (deadline, "deadline", "deadline"),
        (rectified, "rectified_on", "rectification"),
    ):
        before = (later < found).fillna(False)
        if before.any():
            k = int(np.flatnonzero(before.to_numpy())[0])
            _first_bad(
                hazards,
                before,
                f"the {what} {later.iloc[k].date()} is before the day the hazard was found "
                f"({found.iloc[k].date()})",
                column,
            )
    return cat, found, deadline, rectified


@dataclass(frozen=True)
class _State:
    """Where each hazard stands on the ledger date (arrays, one item per hazard)."""

    status: np.ndarray
    unrectified: np.ndarray
    done: np.ndarray
    days_open: np.ndarray
    days_overdue: np.ndarray
    rectified_late: np.ndarray


def _state_on(
    as_of: pd.Timestamp, found: pd.Series, rectified: pd.Series, deadline_used: pd.Series
) -> _State:
    found_ok = (found <= as_of).to_numpy(dtype=bool)
    done = (rectified <= as_of).fillna(False).to_numpy(dtype=bool)
    late = (as_of > deadline_used).to_numpy(dtype=bool)
    status = np.select([~found_ok, done, late], ["future", "rectified", "overdue"], default="open")
    unrectified = found_ok & ~done
    days_open = np.where(
        unrectified,
        (as_of - found).dt.days.to_numpy(),
        np.where(done, (rectified - found).dt.days.to_numpy(na_value=0), 0),
    )
    days_over = np.where(
        unrectified, np.maximum((as_of - deadline_used).dt.days.to_numpy(), 0), 0
    ).astype(int)
    late_fix = done & (rectified > deadline_used).fillna(False).to_numpy(dtype=bool)
    return _State(status, unrectified, done, days_open, days_over, late_fix)


def _add_state(out: pd.DataFrame, state: _State, major: np.ndarray, params: HazardParams) -> None:
    """Status, days, escalation level and weight columns of the ledger."""
    steps = np.zeros(len(out), dtype=int)
    for is_cat, thresholds in (
        (~major, params.general_escalate_days),
        (major, params.major_escalate_days),
    ):
        if thresholds:
            exceeded = (state.days_overdue[:, None] > np.asarray(thresholds)[None, :]).sum(axis=1)
            steps = np.where(is_cat, exceeded, steps)
    start = np.where(major, params.major_start_level, params.general_start_level)
    level = np.where(state.unrectified, np.minimum(start + steps, 4), 0).astype(int)
    base_w = np.where(major, params.major_weight, params.general_weight)
    weight = np.where(state.unrectified, base_w * (1.0 + params.overdue_step * steps), 0.0)
    out["status"] = pd.array(state.status, dtype="string")
    out["days_open"] = state.days_open.astype(int)
    out["days_overdue"] = state.days_overdue
    out["rectified_late"] = state.rectified_late
    out["escalation_level"] = level
    out["escalation_to"] = pd.array([ESCALATION_ROLES[v] for v in range(5)], dtype="string")[level]
    out["escalation_label"] = pd.array([ESCALATION_LABELS[v] for v in range(5)], dtype="string")[
        level
    ]
    out["hazard_weight"] = weight.astype(float)


def hazards_by_building(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per-building counts from a ledger made by :func:`hazard_ledger`.

    Returns
    -------
    DataFrame indexed by ``building_id`` with ``hazards_open`` (unrectified on the ledger date,
    overdue ones included), ``hazards_overdue``, ``hazards_major_open``, ``hazard_load`` (sum of
    ``hazard_weight``) and ``hazard_escalation_max`` (highest escalation level, 0–4). Buildings
    without hazards are absent (read them as zero: the ledger is the complete list).
    """
    status = ledger["status"].astype("string")
    frame = pd.DataFrame(
        {
            "building_id": ledger["building_id_matched"].astype("string"),
            "hazards_open": status.isin(["open", "overdue"]).to_numpy(dtype=int),
            "hazards_overdue": (status == "overdue").to_numpy(dtype=int),
            "hazards_major_open": (
                status.isin(["open", "overdue"]).to_numpy(dtype=bool)
                & (ledger["category"].astype("string") == "major").fillna(False).to_numpy()
            ).astype(int),
            "hazard_load": ledger["hazard_weight"].to_numpy(dtype=float),
            "hazard_escalation_max": ledger["escalation_level"].to_numpy(dtype=int),
        }
    )
    frame = frame[frame["building_id"].notna()]
    agg = frame.groupby("building_id", sort=True).agg(
        hazards_open=("hazards_open", "sum"),
        hazards_overdue=("hazards_overdue", "sum"),
        hazards_major_open=("hazards_major_open", "sum"),
        hazard_load=("hazard_load", "sum"),
        hazard_escalation_max=("hazard_escalation_max", "max"),
    )
    return agg


def escalation_summary(ledger: pd.DataFrame) -> pd.DataFrame:
    """How many unrectified hazards sit at each escalation level, by category.

    Returns
    -------
    DataFrame with one row per level 1–4 (``escalation_to``, ``escalation_label``) and the
    count of ``general`` and ``major`` hazards held there, plus their ``total``.
    """
    live = ledger[ledger["escalation_level"] > 0]
    counts = pd.crosstab(
        live["escalation_level"], clean_text(live["category"]).str.lower()
    ).reindex(index=[1, 2, 3, 4], columns=["general", "major"], fill_value=0)
    counts.index.name = "escalation_level"
    counts["total"] = counts.sum(axis=1)
    counts.insert(0, "escalation_label", [ESCALATION_LABELS[v] for v in counts.index])
    counts.insert(0, "escalation_to", [ESCALATION_ROLES[v] for v in counts.index])
    return counts.reset_index()
