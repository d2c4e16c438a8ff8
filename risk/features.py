"""Building features for the risk index and model, with explicit, flagged imputation of gaps.

A missing attribute is never read as zero risk. Each gap is filled from similar buildings and
flagged in an ``imputed_<attr>`` column; the rules, chosen so that a filled value is the expected
value given what is known (which keeps the linear index unbiased), are:

===================  =====================================================================
attribute            imputed as
===================  =====================================================================
use                  the district's most common known use
year_built           median year of known buildings of the same use (else of all)
height_m / floors    one from the other (``storey_height_m`` per storey); both missing:
                     median height of the same use (else of all)
wood_stairs,         share of known buildings with the item among buildings of the same use
ebike_indoor,        and age class (built up to ``old_built_up_to`` or later), else of the
group_rental         same age class, else of all: a probability in [0, 1], not a guess of 0
wiring_condition     mean wiring score (good 0 / fair 0.5 / aged 1) of the same use and age
                     class, else of the age class, else of all
residents            floors × median residents per floor of the same use (else of all)
elderly_alone        residents × the ratio elderly-alone / residents of the same use and age
                     class (else of all)
===================  =====================================================================

A whole attribute missing from the layer (or empty in every row) cannot be imputed: its factor is
reported as *not assessed* and left out of the index, as are the access (``shortfall_*``,
``t_*``, ``covered_*``) and water (``water_deficient``, ``water_covered``, ``d_hydrant_net_m``)
factors when those steps have not run, and the hazard factor when there is no hazard ledger.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from firegrid.risk.hazards import hazards_by_building
from firegrid.risk.params import FeatureParams
from firegrid.risk.values import as_timestamp, numeric, yes_no_to_float
from firegrid.spatial import columns
from firegrid.spatial.errors import InputError
from firegrid.spatial.io.buildings import is_old_residential
from firegrid.spatial.io.layers import BUILDING_USES, VALUE_SYNONYMS, clean_text

# The attributes filled in when missing (an ``imputed_<attr>`` flag each): the registry's
# ``{attr}`` family, listed once.
IMPUTED_ATTRIBUTES: tuple[str, ...] = columns.FAMILY_VALUES["attr"]

# Which factors each attribute feeds, so a wholly missing attribute marks them not assessed.
_FACTORS_OF = {
    "use": ("use",),
    "year_built": ("age", "old_residential"),
    "height_m": ("high_rise",),
    "wood_stairs": ("wood_stairs",),
    "wiring_condition": ("wiring",),
    "ebike_indoor": ("ebike_indoor",),
    "group_rental": ("group_rental",),
    "residents": ("residents",),
    "elderly_alone": ("elderly_alone",),
}


@dataclass
class ImputationReport:
    """What was imputed, derived or not assessed, for the run summary.

    Attributes
    ----------
    rows : list of dict
        One row per attribute: ``item``, ``n_missing``, ``share_missing`` and ``method``;
        plus rows about derived inputs (e.g. unreachable buildings, unmatched hazards).
    not_assessed : dict
        Factor → reason, for factors left out of the index because their input is absent.
    n_buildings : int
    """

    rows: list[dict] = field(default_factory=list)
    not_assessed: dict[str, str] = field(default_factory=dict)
    n_buildings: int = 0

    def add(self, item: str, n: int, method: str) -> None:
        share = n / self.n_buildings if self.n_buildings else 0.0
        self.rows.append({"item": item, "n": int(n), "share": share, "method": method})

    def to_frame(self) -> pd.DataFrame:
        """The report as a table: ``item``, ``n``, ``share``, ``method`` (not-assessed rows too)."""
        rows = list(self.rows) + [
            {
                "item": f"factor {k}",
                "n": self.n_buildings,
                "share": 1.0,
                "method": f"not assessed: {v}",
            }
            for k, v in self.not_assessed.items()
        ]
        return pd.DataFrame(rows, columns=["item", "n", "share", "method"])

    def lines(self) -> list[str]:
        """Human-readable lines, one per imputed attribute or not-assessed factor."""
        out = [
            f"{r['item']}: {r['n']} of {self.n_buildings} ({r['share']:.0%}) — {r['method']}"
            for r in self.rows
            if r["n"]
        ]
        out += [f"factor {k} NOT ASSESSED: {v}" for k, v in self.not_assessed.items()]
        return out


def _fill_by_groups(values: pd.Series, *groupings: pd.Series, how: str = "mean") -> pd.Series:
    """Fill NaN with the ``how`` of known values in the first grouping that has any, else overall."""
    out = values.copy()
    for groups in groupings:
        if not out.isna().any():
            break
        stat = values.groupby(groups, dropna=True).transform(how)
        out = out.fillna(stat)
    if out.isna().any():
        out = out.fillna(getattr(values, how)())
    return out


def _ratio_by_groups(num: pd.Series, den: pd.Series, *groupings: pd.Series) -> pd.Series:
    """Per-row ratio sum(num)/sum(den) over known pairs in the first grouping that has one."""
    known = num.notna() & den.notna() & (den > 0)
    n_k, d_k = num.where(known), den.where(known)
    ratio = pd.Series(np.nan, index=num.index)
    for groups in groupings:
        r = n_k.groupby(groups).transform("sum") / d_k.groupby(groups).transform("sum")
        ratio = ratio.fillna(r.replace([np.inf, -np.inf], np.nan))
    total = d_k.sum()
    return ratio.fillna(n_k.sum() / total if total > 0 else np.nan)


def _use_column(buildings: pd.DataFrame, report: ImputationReport) -> tuple[pd.Series, pd.Series]:
    n = len(buildings)
    if "use" not in buildings:
        raw = pd.Series(pd.NA, index=buildings.index, dtype="string")
    else:
        raw = clean_text(buildings["use"])
        synonyms = {k.lower(): v for k, v in VALUE_SYNONYMS["use"].items()}
        raw = raw.str.lower().map(lambda v: synonyms.get(v, v), na_action="ignore").astype("string")
        bad = raw.notna() & ~raw.isin(BUILDING_USES)
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"unknown use {buildings['use'].iloc[first]!r}; allowed: {', '.join(BUILDING_USES)}",
                file="buildings",
                feature=f"row {first + 1}",
                column="use",
            )
    missing = raw.isna()
    if missing.all():
        report.not_assessed["use"] = "no building has a use (column 'use' absent or empty)"
        report.not_assessed["old_residential"] = "needs the building use"
        report.add("use", n, "not imputed: no known use; high-rise judged by the 24 m bound")
        return pd.Series("other", index=buildings.index, dtype="string"), missing
    mode = raw.mode().sort_values().iloc[0]
    report.add("use", int(missing.sum()), f"district's most common use ({mode})")
    return raw.fillna(mode), missing


def building_features(
    buildings: pd.DataFrame,
    *,
    as_of: str | dt.date | pd.Timestamp,
    ledger: pd.DataFrame | None = None,
    params: FeatureParams | None = None,
) -> tuple[pd.DataFrame, ImputationReport]:
    """Features of each building, gaps imputed and flagged.

    Parameters
    ----------
    buildings : DataFrame or GeoDataFrame
        The ``buildings`` layer (canonical columns; any may be missing), optionally with the
        access columns (``shortfall_3min_s``, ``shortfall_5min_s``, ``t_micro_s``,
        ``t_fire_s``, ``covered_3min``, ``covered_5min``) and water columns
        (``water_deficient``, ``water_covered``, ``d_hydrant_net_m``). Geometry is not used.
    as_of : date
        Date at which ages are computed (explicit).
    ledger : DataFrame, optional
        A hazard ledger from :func:`firegrid.risk.hazards.hazard_ledger` read on ``as_of``. Without it
        the hazard factor is not assessed.
    params : FeatureParams, optional
        Imputation and scoring parameters; its ``access`` and ``water`` (the config's
        ``[access]`` and ``[water]``) give the response targets (seconds) and the hydrant
        radius (metres) that shortfalls and water deficiency are derived with.

    Returns
    -------
    features : DataFrame
        Indexed like ``buildings``: ``building_id``, ``use``, ``age_years`` (years),
        ``old_residential`` (0/1), ``wood_stairs`` (0–1, a share where imputed),
        ``wiring_score`` (0–1), ``height_m`` (metres), ``floors``, ``high_rise`` (0/1),
        ``ebike_indoor`` and ``group_rental`` (0–1), ``elderly_alone``, ``residents``,
        ``hazards_open``, ``hazards_overdue``, ``hazards_major_open``, ``hazard_load``,
        ``shortfall_3min_s`` and ``shortfall_5min_s`` (seconds; NaN = no station reaches it),
        ``water_deficient`` (0/1) and the ``imputed_<attr>`` flags (bool). Columns of factors
        that are not assessed hold NaN.
    report : ImputationReport
    """
    params = params or FeatureParams()
    as_of_ts = as_timestamp(as_of)
    report = ImputationReport(n_buildings=len(buildings))
    f = pd.DataFrame(index=buildings.index)
    f["building_id"] = _building_ids(buildings)
    use = _use_features(f, buildings, report)
    age_class = _age_features(f, buildings, use, as_of_ts, params, report)
    # Items imputed among buildings alike in use and age, else in age alone.
    like = (use.astype(str) + "|" + age_class, age_class)
    _height_features(f, buildings, use, params, report)
    _yes_no_features(f, buildings, like, report)
    _wiring_features(f, buildings, like, params, report)
    _resident_features(f, buildings, use, like, report)
    _hazard_features(f, ledger, report)
    _access_features(f, buildings, params, report)
    _water_features(f, buildings, params, report)
    return f, report


def _column(buildings: pd.DataFrame, name: str, kind: str) -> pd.Series:
    """A yes/no (``kind="bool"``: 0/1) or numeric attribute as floats; all NaN when absent."""
    if name not in buildings:
        return pd.Series(np.nan, index=buildings.index)
    if kind == "bool":
        return pd.Series(yes_no_to_float(buildings[name], column=name), index=buildings.index)
    return pd.Series(numeric(buildings[name], column=name), index=buildings.index)


def _building_ids(buildings: pd.DataFrame):
    if "building_id" in buildings:
        return clean_text(buildings["building_id"]).to_numpy()
    return pd.array([pd.NA] * len(buildings), dtype="string")


def _use_features(f: pd.DataFrame, buildings: pd.DataFrame, report: ImputationReport) -> pd.Series:
    """``use`` and its flag; returns the filled use."""
    use, use_missing = _use_column(buildings, report)
    f["use"] = use.to_numpy()
    f["imputed_use"] = use_missing.to_numpy(dtype=bool)
    return use


def _age_features(
    f: pd.DataFrame,
    buildings: pd.DataFrame,
    use: pd.Series,
    as_of: pd.Timestamp,
    params: FeatureParams,
    report: ImputationReport,
) -> pd.Series:
    """Year built → ``age_years`` and ``old_residential``; returns the age class of each
    building (``old``, ``new`` or ``unknown``) as a grouping key."""
    year = _column(buildings, "year_built", "num")
    year_missing = year.isna()
    if year_missing.all():
        for factor in _FACTORS_OF["year_built"]:
            report.not_assessed.setdefault(
                factor, "no building has a year_built (column absent or empty)"
            )
        year_filled = year
    else:
        year_filled = _fill_by_groups(year, use, how="median")
        report.add("year_built", int(year_missing.sum()), "median year of the same use")
    f["imputed_year_built"] = year_missing.to_numpy(dtype=bool)
    f["age_years"] = np.clip(as_of.year - year_filled, 0, None)
    old = year_filled <= params.old_built_up_to
    old_res = is_old_residential(
        pd.DataFrame({"use": use, "year_built": year_filled}), built_by=params.old_built_up_to
    )
    use_known = "use" not in report.not_assessed
    f["old_residential"] = np.where(
        year_filled.isna() | (not use_known), np.nan, old_res.astype(float)
    )
    # "unknown" keeps groupings usable when no year is known.
    return pd.Series(
        np.where(year_filled.isna(), "unknown", np.where(old, "old", "new")), index=f.index
    )


def _height_features(
    f: pd.DataFrame,
    buildings: pd.DataFrame,
    use: pd.Series,
    params: FeatureParams,
    report: ImputationReport,
) -> None:
    """``height_m`` and ``floors``, each from the other, and ``high_rise`` (GB 50016)."""
    height, floors = _column(buildings, "height_m", "num"), _column(buildings, "floors", "num")
    h_missing, fl_missing = height.isna(), floors.isna()
    if (h_missing & fl_missing).all():
        report.not_assessed["high_rise"] = "no building has height_m or floors"
        f["height_m"], f["floors"] = np.nan, np.nan
    else:
        h = height.fillna(floors.clip(lower=0) * params.storey_height_m)
        h = _fill_by_groups(h, use, how="median")
        fl = floors.fillna(np.maximum(1.0, np.round(h / params.storey_height_m)))
        f["height_m"], f["floors"] = h, fl
        report.add(
            "height_m",
            int(h_missing.sum()),
            f"floors × {params.storey_height_m:g} m, else median height of the same use",
        )
        report.add("floors", int(fl_missing.sum()), f"height / {params.storey_height_m:g} m")
    f["imputed_height_m"] = h_missing.to_numpy(dtype=bool)
    f["imputed_floors"] = fl_missing.to_numpy(dtype=bool)
    bound = np.where(use == "residential", params.high_rise_residential_m, params.high_rise_other_m)
    # GB 50016 counts single-storey public halls as low-rise whatever their height.
    tall = (f["height_m"] > bound) & ((f["floors"] > 1) | (use == "residential"))
    f["high_rise"] = np.where(
        f["height_m"].isna(), np.nan, (tall & (use != "underground")).astype(float)
    )


def _yes_no_features(
    f: pd.DataFrame,
    buildings: pd.DataFrame,
    like: tuple[pd.Series, ...],
    report: ImputationReport,
) -> None:
    """Yes/no items imputed as shares of similar buildings (a probability, not a guess of 0)."""
    for name in ("wood_stairs", "ebike_indoor", "group_rental"):
        v = _column(buildings, name, "bool")
        missing = v.isna()
        if missing.all():
            report.not_assessed[name] = f"no building has {name} (column absent or empty)"
            f[name] = np.nan
        else:
            f[name] = _fill_by_groups(v, *like)
            report.add(name, int(missing.sum()), "share among buildings of the same use and age")
        f[f"imputed_{name}"] = missing.to_numpy(dtype=bool)


def _wiring_features(
    f: pd.DataFrame,
    buildings: pd.DataFrame,
    like: tuple[pd.Series, ...],
    params: FeatureParams,
    report: ImputationReport,
) -> None:
    """``wiring_score`` from the wiring condition (good 0 / fair 0.5 / aged 1 by default)."""
    wiring = _wiring_scores(buildings, params)
    w_missing = wiring.isna()
    if w_missing.all():
        report.not_assessed["wiring"] = "no building has wiring_condition"
        f["wiring_score"] = np.nan
    else:
        f["wiring_score"] = _fill_by_groups(wiring, *like)
        report.add("wiring_condition", int(w_missing.sum()), "mean score of the same use and age")
    f["imputed_wiring_condition"] = w_missing.to_numpy(dtype=bool)


def _wiring_scores(buildings: pd.DataFrame, params: FeatureParams) -> pd.Series:
    if "wiring_condition" not in buildings:
        return pd.Series(np.nan, index=buildings.index)
    raw = clean_text(buildings["wiring_condition"]).str.lower()
    synonyms = VALUE_SYNONYMS["wiring_condition"]
    raw = raw.map(lambda v: synonyms.get(v, v), na_action="ignore").astype("string")
    bad = raw.notna() & ~raw.isin(list(params.wiring_score))
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"unknown wiring_condition {buildings['wiring_condition'].iloc[first]!r}; "
            "allowed: good, fair, aged (良好/一般/老化)",
            file="buildings",
            feature=f"row {first + 1}",
            column="wiring_condition",
        )
    return raw.map(dict(params.wiring_score), na_action="ignore").astype(float)


def _resident_features(
    f: pd.DataFrame,
    buildings: pd.DataFrame,
    use: pd.Series,
    like: tuple[pd.Series, ...],
    report: ImputationReport,
) -> None:
    """``residents`` (floors × residents per floor of the use) and ``elderly_alone``."""
    residents = _column(buildings, "residents", "num")
    r_missing = residents.isna()
    if r_missing.all():
        report.not_assessed["residents"] = "no building has residents"
        f["residents"] = np.nan
    else:
        per_floor = residents / f["floors"].clip(lower=1)
        rate = _fill_by_groups(per_floor.where(residents.notna()), use, how="median")
        floors_for = f["floors"].clip(lower=1).fillna(1)
        f["residents"] = residents.fillna(np.round(rate * floors_for))
        report.add("residents", int(r_missing.sum()), "floors × median residents/floor of the use")
    f["imputed_residents"] = r_missing.to_numpy(dtype=bool)
    elderly = _column(buildings, "elderly_alone", "num")
    e_missing = elderly.isna()
    if e_missing.all():
        report.not_assessed["elderly_alone"] = "no building has elderly_alone"
        f["elderly_alone"] = np.nan
    else:
        base = f["residents"]
        if base.isna().all():
            f["elderly_alone"] = _fill_by_groups(elderly, *like)
            method = "mean of the same use and age"
        else:
            ratio = _ratio_by_groups(elderly, base, *like)
            f["elderly_alone"] = elderly.fillna(ratio * base)
            method = "residents × elderly-alone ratio of the same use and age"
        report.add("elderly_alone", int(e_missing.sum()), method)
    f["imputed_elderly_alone"] = e_missing.to_numpy(dtype=bool)


def _hazard_features(
    f: pd.DataFrame, ledger: pd.DataFrame | None, report: ImputationReport
) -> None:
    cols = ("hazards_open", "hazards_overdue", "hazards_major_open", "hazard_load")
    if ledger is None:
        report.not_assessed["hazards"] = "no hazard ledger (hazards layer absent)"
        for c in cols:
            f[c] = np.nan
        return
    per = hazards_by_building(ledger)
    joined = per.reindex(f["building_id"].astype(object).to_numpy())
    for c in cols:
        f[c] = joined[c].fillna(0).to_numpy(dtype=float)
    live = ledger["status"].isin(["open", "overdue"])
    unmatched = live & ledger["building_id_matched"].isna()
    nearest = live & (ledger["match"] == "nearest")
    if nearest.any():
        report.add("hazards attached to the nearest building", int(nearest.sum()), "snap")
    if unmatched.any():
        report.add(
            "unrectified hazards with no building",
            int(unmatched.sum()),
            "not counted in any building (no building_id and no building nearby)",
        )


def _access_features(
    f: pd.DataFrame, b: pd.DataFrame, params: FeatureParams, report: ImputationReport
) -> None:
    for minutes, t_col, target in (
        (3, "t_micro_s", params.target_3min_s),
        (5, "t_fire_s", params.target_5min_s),
    ):
        s_col, cov_col = f"shortfall_{minutes}min_s", f"covered_{minutes}min"
        if s_col in b:
            sf = pd.Series(numeric(b[s_col], column=s_col), index=f.index)
            source = s_col
        elif t_col in b:
            sf = (pd.Series(numeric(b[t_col], column=t_col), index=f.index) - target).clip(lower=0)
            source = f"{t_col} − {target:g} s"
        elif cov_col in b:
            covered = pd.Series(yes_no_to_float(b[cov_col], column=cov_col), index=f.index)
            # Only the yes/no is known: not covered counts as a full target's shortfall.
            sf = (1.0 - covered) * target
            source = f"{cov_col} (uncovered = full shortfall)"
        else:
            report.not_assessed[f"shortfall_{minutes}min"] = (
                f"access step has not run (no {s_col}, {t_col} or {cov_col})"
            )
            f[s_col] = np.nan
            continue
        f[s_col] = sf.to_numpy(dtype=float)
        unreachable = int(sf.isna().sum())
        if unreachable:
            report.add(
                f"{minutes}-minute target: unreachable",
                unreachable,
                f"from {source}; scored as the largest shortfall",
            )


def _water_features(
    f: pd.DataFrame, b: pd.DataFrame, params: FeatureParams, report: ImputationReport
) -> None:
    if "water_deficient" in b:
        v = pd.Series(
            yes_no_to_float(b["water_deficient"], column="water_deficient"), index=f.index
        )
    elif "water_covered" in b:
        v = 1.0 - pd.Series(
            yes_no_to_float(b["water_covered"], column="water_covered"), index=f.index
        )
    elif "d_hydrant_net_m" in b:
        d = pd.Series(numeric(b["d_hydrant_net_m"], column="d_hydrant_net_m"), index=f.index)
        v = (d > params.hydrant_radius_m).astype(float).where(d.notna())
    else:
        report.not_assessed["water"] = (
            "water step has not run (no water_deficient, water_covered or d_hydrant_net_m)"
        )
        f["water_deficient"] = np.nan
        return
    missing = v.isna()
    if missing.any():
        report.add("water coverage unknown", int(missing.sum()), "counted as water-deficient")
    f["water_deficient"] = v.fillna(1.0).to_numpy(dtype=float)
