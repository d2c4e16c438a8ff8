"""The change tables of two runs: per building, per grid cell and per hazard.

Each compared figure gets its value in the earlier run (``<figure>_before``), in the later run
(``<figure>_after``) and the later minus the earlier (labels, units and meanings:
:func:`firegrid.spatial.columns.change_column`, layers ``changes_buildings``,
``changes_grids``, ``changes_hazards`` and ``changes_stations``). Buildings are matched by
``building_id``, grid cells by ``grid_id``, hazards by ``hazard_id``, stations by
``station_id``; one only in one run is listed as added or removed.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd

from firegrid.spatial import columns

# Building figures compared: (figure, before, after, change = after − before). Flags (covered,
# water) change by +1 (gained) or −1 (lost); a lower grade number is a higher risk.
BUILDING_FIGURES = (
    ("covered_3min", "covered_3min_before", "covered_3min_after", "change_3min"),
    ("covered_5min", "covered_5min_before", "covered_5min_after", "change_5min"),
    ("t_micro_s", "t_micro_s_before", "t_micro_s_after", "d_t_micro_s"),
    ("t_fire_s", "t_fire_s_before", "t_fire_s_after", "d_t_fire_s"),
    ("water_covered", "water_covered_before", "water_covered_after", "change_water"),
    ("risk_index", "risk_index_before", "risk_index_after", "d_risk_index"),
    ("risk_grade", "risk_grade_before", "risk_grade_after", "d_risk_grade"),
    ("hazards_open", "hazards_open_before", "hazards_open_after", "d_hazards_open"),
    ("hazards_overdue", "hazards_overdue_before", "hazards_overdue_after", "d_hazards_overdue"),
)
GRADES = (1, 2, 3, 4)
# Grid-cell figures compared, the same way.
GRID_FIGURES = (
    ("n_buildings", "n_buildings_before", "n_buildings_after", "d_n_buildings"),
    (
        "share_covered_3min",
        "share_covered_3min_before",
        "share_covered_3min_after",
        "d_share_covered_3min",
    ),
    (
        "share_covered_5min",
        "share_covered_5min_before",
        "share_covered_5min_after",
        "d_share_covered_5min",
    ),
    (
        "share_water_deficient",
        "share_water_deficient_before",
        "share_water_deficient_after",
        "d_share_water_deficient",
    ),
    ("risk_index_mean", "risk_index_mean_before", "risk_index_mean_after", "d_risk_index_mean"),
    *(
        (f"n_grade_{g}", f"n_grade_{g}_before", f"n_grade_{g}_after", f"d_n_grade_{g}")
        for g in GRADES
    ),
    ("hazards_open", "hazards_open_before", "hazards_open_after", "d_hazards_open"),
    ("hazards_overdue", "hazards_overdue_before", "hazards_overdue_after", "d_hazards_overdue"),
)
GRID_KEYS = ("grid_id", "name", "level", "parent_id")
# Per-cell counts of changed buildings: (count, building change column, value counted).
CELL_COUNTS = (
    ("n_gained_3min", "change_3min", 1),
    ("n_lost_3min", "change_3min", -1),
    ("n_gained_5min", "change_5min", 1),
    ("n_lost_5min", "change_5min", -1),
    ("n_gained_water", "change_water", 1),
    ("n_lost_water", "change_water", -1),
)
# Per-cell counts of hazards by their change (hazard_change values).
HAZARD_COUNTS = (
    ("n_hazards_new", "new"),
    ("n_hazards_rectified", "rectified"),
    ("n_hazards_newly_overdue", "newly_overdue"),
)
OPEN = ("open", "overdue")
# Registry units of whole numbers: such columns are written as integers (empty when unknown).
WHOLE_UNITS = ("bool", "count", "grade", "±1")
_GRID_LEVEL = re.compile(r"^grid_id_l\d+$")


def building_changes(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Per building: ``presence`` (both / added / removed), its grid cells (the later run's,
    else the earlier's) and each figure of :data:`BUILDING_FIGURES` before, after and changed.

    Parameters
    ----------
    old, new : GeoDataFrame
        The ``buildings`` layers of the earlier and the later run (one CRS), with
        ``building_id`` as text.

    Returns
    -------
    GeoDataFrame in the runs' CRS, geometry from the later run (else the earlier), rows in the
    later run's order then the removed buildings. A figure missing from a run is NaN there.
    """
    keys = ["building_id", *sorted(c for c in new.columns if _GRID_LEVEL.match(c))]
    both = pd.merge(
        _figures(old, BUILDING_FIGURES, "building_id", before=True),
        _figures(new, BUILDING_FIGURES, "building_id", before=False),
        on="building_id",
        how="outer",
        sort=False,
        indicator=True,
    )
    where = pd.concat(
        [new[keys + ["geometry"]], old[old.columns.intersection(keys + ["geometry"])]]
    )
    where = where.drop_duplicates("building_id").set_index("building_id")
    out = pd.DataFrame({"building_id": both["building_id"]})
    for key in keys[1:]:
        out[key] = both["building_id"].map(where[key]) if key in where else pd.NA
    out["presence"] = (
        both["_merge"]
        .map({"both": "both", "left_only": "removed", "right_only": "added"})
        .astype(str)
    )
    _add_changes(out, both, BUILDING_FIGURES, layer="changes_buildings")
    order = np.argsort(out["presence"].eq("removed").to_numpy(), kind="stable")
    out = out.iloc[order].reset_index(drop=True)
    geometry = gpd.GeoSeries(out["building_id"].map(where.geometry), crs=new.crs)
    return gpd.GeoDataFrame(out, geometry=geometry.values, crs=new.crs)


def grid_changes(
    old: gpd.GeoDataFrame,
    new: gpd.GeoDataFrame,
    buildings: pd.DataFrame,
    hazards: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Per grid cell: each figure of :data:`GRID_FIGURES` before, after and changed, and the
    counts of the cell's buildings that were added or removed, gained or lost coverage or
    water, moved grade, and of its hazards that are new, rectified or newly overdue.

    Parameters
    ----------
    old, new : GeoDataFrame
        The ``grids`` layers of the two runs.
    buildings : DataFrame
        :func:`building_changes` of the two runs (cells by its ``grid_id_l<level>`` columns).
    hazards : DataFrame, optional
        :func:`hazard_changes` of the two runs (cells by the hazard's building).

    Returns
    -------
    GeoDataFrame, one row per cell of either run, geometry from the later run (else the
    earlier).
    """
    keys = [k for k in GRID_KEYS if k in new.columns or k in old.columns]
    info = pd.concat(
        [
            new[[k for k in keys if k in new] + ["geometry"]],
            old[[k for k in keys if k in old] + ["geometry"]],
        ]
    )
    info = info.drop_duplicates("grid_id").set_index("grid_id")
    both = pd.merge(
        _figures(old, GRID_FIGURES, "grid_id", before=True),
        _figures(new, GRID_FIGURES, "grid_id", before=False),
        on="grid_id",
        how="outer",
        sort=False,
    )
    out = pd.DataFrame({"grid_id": both["grid_id"]})
    for key in keys[1:]:
        out[key] = both["grid_id"].map(info[key])
    _add_changes(out, both, GRID_FIGURES, layer="changes_grids")
    counts = _cell_counts(buildings, hazards)
    counts = counts.reindex(out["grid_id"]).fillna(0).astype(int)
    out = pd.concat([out, counts.reset_index(drop=True)], axis=1)
    geometry = gpd.GeoSeries(out["grid_id"].map(info.geometry), crs=new.crs)
    return gpd.GeoDataFrame(out, geometry=geometry.values, crs=new.crs)


def hazard_changes(old: pd.DataFrame | None, new: pd.DataFrame | None) -> pd.DataFrame:
    """Per hazard of either ledger: its building, ``status_before``, ``status_after`` (each run
    judged on its own date) and ``hazard_change``: ``new`` (only in the later ledger and not
    rectified), ``new_rectified``, ``rectified``, ``newly_overdue``, ``reopened``, ``removed``
    (only in the earlier ledger) or ``unchanged``."""
    cols = ["hazard_id", "building_id", "status_before", "status_after", "hazard_change"]
    if old is None and new is None:
        return pd.DataFrame(columns=cols)
    both = pd.merge(
        _hazard_status(old, "status_before"),
        _hazard_status(new, "status_after"),
        on="hazard_id",
        how="outer",
        sort=False,
        suffixes=("_old", ""),
    )
    both["building_id"] = both["building_id"].fillna(both["building_id_old"])
    before, after = both["status_before"], both["status_after"]
    was_open, is_open = before.isin(OPEN), after.isin(OPEN)
    both["hazard_change"] = np.select(
        [
            before.isna() & is_open,
            before.isna(),
            after.isna(),
            was_open & after.eq("rectified"),
            before.eq("rectified") & is_open,
            after.eq("overdue") & before.ne("overdue"),
        ],
        ["new", "new_rectified", "removed", "rectified", "reopened", "newly_overdue"],
        default="unchanged",
    )
    return both[cols].reset_index(drop=True)


def station_changes(old: gpd.GeoDataFrame | None, new: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """Per station of either run: ``station_id``, ``name``, ``kind``, ``presence`` (both /
    added / removed) and ``moved_m`` (metres a station in both runs moved; the runs' CRS).
    Geometry from the later run, else the earlier."""
    frames = [f for f in (new, old) if f is not None and len(f)]
    if not frames:
        return gpd.GeoDataFrame(
            {"station_id": [], "name": [], "kind": [], "presence": [], "moved_m": []},
            geometry=[],
        )
    crs = frames[0].crs
    both = pd.concat([_with_id(f, "station_id") for f in frames], ignore_index=True)
    where = both.drop_duplicates("station_id").set_index("station_id")
    ids_old = set(_with_id(old, "station_id")["station_id"]) if old is not None else set()
    ids_new = set(_with_id(new, "station_id")["station_id"]) if new is not None else set()
    out = pd.DataFrame({"station_id": where.index})
    for key in ("name", "kind"):
        out[key] = where[key].to_numpy() if key in where else pd.NA
    out["presence"] = np.select(
        [out["station_id"].isin(ids_old & ids_new), out["station_id"].isin(ids_new)],
        ["both", "added"],
        default="removed",
    )
    out["moved_m"] = _moved(old, new).reindex(out["station_id"]).to_numpy()
    return gpd.GeoDataFrame(out, geometry=where.geometry.values, crs=crs)


def _with_id(frame: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
    out = frame.copy()
    out[key] = out[key].astype(str)
    return out


def _moved(old: gpd.GeoDataFrame | None, new: gpd.GeoDataFrame | None) -> pd.Series:
    """Metres each station of both runs moved, by station_id."""
    if old is None or new is None:
        return pd.Series(dtype=float)
    a = _with_id(old, "station_id").drop_duplicates("station_id").set_index("station_id")
    b = _with_id(new, "station_id").drop_duplicates("station_id").set_index("station_id")
    common = a.index.intersection(b.index)
    return pd.Series(
        a.geometry.loc[common].distance(b.geometry.loc[common]).to_numpy(), index=common
    )


def _hazard_status(hazards: pd.DataFrame | None, name: str) -> pd.DataFrame:
    """``hazard_id``, the building it belongs to (as matched by the ledger) and its status."""
    if hazards is None or not len(hazards):
        return pd.DataFrame(
            {
                "hazard_id": pd.Series(dtype=str),
                "building_id": pd.Series(dtype=str),
                name: pd.Series(dtype=str),
            }
        )
    building = hazards.get("building_id_matched", hazards.get("building_id"))
    if "building_id" in hazards:
        building = building.where(building.notna(), hazards["building_id"])
    return pd.DataFrame(
        {
            "hazard_id": hazards["hazard_id"].astype(str),
            "building_id": building.astype("string").astype(object),
            name: hazards["status"].astype(str),
        }
    )


def _figures(frame: pd.DataFrame, figures, key: str, *, before: bool) -> pd.DataFrame:
    """``key`` and the figures of ``frame`` as numbers, named ``<figure>_before``/``_after``;
    a figure the run lacks is NaN."""
    out = pd.DataFrame({key: frame[key].astype(str).to_numpy()})
    for figure, name_before, name_after, _change in figures:
        name = name_before if before else name_after
        values = frame[figure] if figure in frame else pd.Series(np.nan, index=frame.index)
        out[name] = pd.to_numeric(values.astype("float64"), errors="coerce").to_numpy()
    return out


def _add_changes(out: pd.DataFrame, both: pd.DataFrame, figures, *, layer: str) -> None:
    """Copy each figure's before and after into ``out`` and add its change (after − before);
    counts, flags and grades as (nullable) integers."""
    for _figure, before, after, change in figures:
        out[before] = both[before].to_numpy()
        out[after] = both[after].to_numpy()
        out[change] = (both[after] - both[before]).to_numpy()
        for name in (before, after, change):
            col = columns.change_column(name, layer)
            if col is not None and col.unit in WHOLE_UNITS:
                out[name] = out[name].round().astype("Int64")


def _cell_counts(buildings: pd.DataFrame, hazards: pd.DataFrame | None) -> pd.DataFrame:
    """Counts of changed buildings and hazards per cell of every level, indexed by grid_id."""
    flags = pd.DataFrame(index=buildings.index)
    flags["n_added"] = buildings["presence"].eq("added")
    flags["n_removed"] = buildings["presence"].eq("removed")
    for name, column, value in CELL_COUNTS:
        flags[name] = buildings[column].eq(value)
    flags["n_riskier"] = buildings["d_risk_grade"].lt(0)
    flags["n_safer"] = buildings["d_risk_grade"].gt(0)
    if hazards is not None and len(hazards):
        per = pd.DataFrame({n: hazards["hazard_change"].eq(v) for n, v in HAZARD_COUNTS})
        per = per.groupby(hazards["building_id"].to_numpy()).sum()
        per = per.reindex(buildings["building_id"]).fillna(0).set_axis(buildings.index)
    else:
        per = pd.DataFrame(0, index=buildings.index, columns=[n for n, _ in HAZARD_COUNTS])
    # a building only in one run has no change (NA): it counts in neither direction
    flags = pd.concat([flags.fillna(False).astype(int), per.astype(int)], axis=1)
    levels = [c for c in buildings.columns if _GRID_LEVEL.match(c)]
    parts = [flags.groupby(buildings[level].to_numpy()).sum() for level in levels]
    counts = pd.concat(parts) if parts else flags.iloc[:0]
    return counts[~counts.index.duplicated()]


__all__ = [
    "BUILDING_FIGURES",
    "GRID_FIGURES",
    "building_changes",
    "grid_changes",
    "hazard_changes",
    "station_changes",
]
