"""Grid roll-up at every level: the community fire-safety hazard index of the plans, per grid cell.

Each building is placed in the finest grid cell (level 3) that holds its representative point;
its cells at coarser levels follow the ``parent_id`` chain, so a level-2 community's figures are
exactly the sums of its level-3 cells' figures plus any buildings lying in the community but in
no level-3 cell (those are assigned to the coarser level directly by their point, and counted).
Every figure of a cell is a sum or mean over its member buildings, never a mean of means.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from risk._util import require_projected, require_same_crs, text, yes_no_to_float
from risk.params import FACTORS
from spatial.errors import InputError


@dataclass
class AssignmentReport:
    """How buildings were placed in grid cells, per level.

    Attributes
    ----------
    unassigned : dict level → number of buildings in no cell of that level
    direct : dict level → buildings assigned by their own point because the finer level had
        no cell (or the cell's parent was missing)
    disagree : dict level → buildings whose parent-chain cell differs from the cell their point
        falls in (grid polygons and parent_id disagree; the chain wins)
    """

    unassigned: dict[int, int] = field(default_factory=dict)
    direct: dict[int, int] = field(default_factory=dict)
    disagree: dict[int, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = []
        for level in sorted(self.unassigned):
            if self.unassigned[level]:
                out.append(f"level {level}: {self.unassigned[level]} buildings in no grid cell")
            if self.direct.get(level):
                out.append(
                    f"level {level}: {self.direct[level]} buildings outside every finer cell, "
                    "assigned by their point"
                )
            if self.disagree.get(level):
                out.append(
                    f"level {level}: {self.disagree[level]} buildings whose cell's parent_id "
                    "differs from the cell their point lies in (parent_id used)"
                )
        return out


def _levels(grids: gpd.GeoDataFrame) -> pd.Series:
    if "level" not in grids:
        raise InputError("required column missing", file="grids", column="level")
    lv = pd.to_numeric(grids["level"], errors="coerce")
    if lv.isna().any():
        first = int(np.flatnonzero(lv.isna().to_numpy())[0])
        raise InputError(
            "level is not 1, 2 or 3", file="grids", feature=f"row {first + 1}", column="level"
        )
    return lv.astype(int)


def assign_grids(
    buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame
) -> tuple[pd.DataFrame, AssignmentReport]:
    """The grid cell of each building at every level present.

    Parameters
    ----------
    buildings : GeoDataFrame
        Polygons or points, projected CRS.
    grids : GeoDataFrame
        The ``grids`` layer (``grid_id``, ``level``, ``parent_id``), same CRS.

    Returns
    -------
    cells : DataFrame
        Indexed like ``buildings``, one column ``grid_id_l<level>`` per level present (<NA>
        where the building lies in no cell of that level).
    report : AssignmentReport
    """
    require_projected(buildings, "buildings")
    require_projected(grids, "grids")
    require_same_crs(buildings, grids, "buildings", "grids")
    levels = _levels(grids)
    ids = text(grids["grid_id"])
    parents = (
        text(grids["parent_id"])
        if "parent_id" in grids
        else pd.Series(pd.NA, index=grids.index, dtype="string")
    )
    parent_of = pd.Series(parents.to_numpy(), index=ids.to_numpy())
    level_of = pd.Series(levels.to_numpy(), index=ids.to_numpy())

    pts = gpd.GeoDataFrame(
        {"_pos": np.arange(len(buildings))},
        geometry=buildings.geometry.representative_point().values,
        crs=buildings.crs,
    )
    report = AssignmentReport()
    cells = pd.DataFrame(index=buildings.index)
    finer: pd.Series | None = None
    for level in sorted(levels.unique(), reverse=True):
        layer = gpd.GeoDataFrame(
            {"_gid": ids[levels == level].to_numpy()},
            geometry=grids.geometry[levels == level].values,
            crs=grids.crs,
        )
        hit = gpd.sjoin(pts, layer, how="inner", predicate="intersects")
        # A point on a shared edge touches two cells: keep the smaller id, deterministically.
        hit = hit.sort_values(["_pos", "_gid"]).drop_duplicates("_pos")
        direct = pd.Series(pd.NA, index=range(len(buildings)), dtype="string")
        direct.iloc[hit["_pos"].to_numpy()] = hit["_gid"].astype("string").to_numpy()
        if finer is None:
            chosen = direct
            report.direct[level] = 0
            report.disagree[level] = 0
        else:
            up = finer.map(parent_of).astype("string")
            ok = up.map(level_of) == level
            up = up.where(ok.fillna(False).astype(bool), pd.NA)
            chosen = up.fillna(direct)
            report.direct[level] = int((up.isna() & direct.notna()).sum())
            report.disagree[level] = int((up.notna() & direct.notna() & (up != direct)).sum())
        report.unassigned[level] = int(chosen.isna().sum())
        cells[f"grid_id_l{level}"] = chosen.to_numpy()
        cells[f"grid_id_l{level}"] = cells[f"grid_id_l{level}"].astype("string")
        finer = chosen
    return cells, report


def _as_float(buildings: pd.DataFrame, column: str, kind: str = "num") -> np.ndarray | None:
    if column not in buildings:
        return None
    if kind == "bool":
        return yes_no_to_float(buildings[column], column=column)
    return (
        pd.to_numeric(buildings[column], errors="coerce")
        .astype("Float64")
        .to_numpy(dtype=float, na_value=np.nan)
    )


def rollup(
    buildings: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    *,
    high_risk_grade: int = 2,
    cells: pd.DataFrame | None = None,
) -> tuple[gpd.GeoDataFrame, AssignmentReport | None]:
    """Roll building figures up to every grid cell.

    Parameters
    ----------
    buildings : GeoDataFrame
        Scored buildings (projected CRS) with any of ``risk_index``, ``risk_grade``,
        ``c_<factor>``, ``hazards_open``, ``hazards_overdue``, ``covered_3min``,
        ``covered_5min``, ``water_deficient``, ``p_fire``, ``residents``, ``old_residential``.
    grids : GeoDataFrame
        The ``grids`` layer, same CRS.
    high_risk_grade : int
        Buildings of this grade or worse (1 = worst) count as high-risk.
    cells : DataFrame, optional
        A precomputed :func:`assign_grids` result (then no report is returned).

    Returns
    -------
    grids : GeoDataFrame
        A copy of ``grids`` with, per cell: ``n_buildings``; ``residents`` (sum of known);
        ``risk_index_mean``, ``risk_index_median``, ``risk_index_max`` (0–100);
        ``n_high_risk``, ``share_high_risk``; ``n_grade_1`` … ``n_grade_4``;
        ``n_old_residential``; ``hazards_open``, ``hazards_overdue`` (sums);
        ``share_covered_3min``, ``share_covered_5min``; ``n_water_deficient``,
        ``share_water_deficient``; ``expected_fires`` (sum of ``p_fire``, fires per year);
        ``c_<factor>_mean`` (mean contribution, summing to ``risk_index_mean``). Figures whose
        building column is absent are left out; shares of empty cells are NaN.
    report : AssignmentReport or None
    """
    report = None
    if cells is None:
        cells, report = assign_grids(buildings, grids)
    n = len(buildings)
    data: dict[str, np.ndarray] = {"n_buildings": np.ones(n)}
    sums: list[str] = ["n_buildings"]
    means: dict[str, str] = {}  # output column → input column averaged over members

    def add_sum(name: str, values: np.ndarray | None) -> None:
        if values is not None:
            data[name] = np.nan_to_num(values, nan=0.0)
            sums.append(name)

    def add_mean(name: str, values: np.ndarray | None) -> None:
        if values is not None:
            data[name] = values
            means[name] = name

    add_sum("residents", _as_float(buildings, "residents"))
    risk = _as_float(buildings, "risk_index")
    add_mean("risk_index_mean", risk)
    grade = _as_float(buildings, "risk_grade")
    if grade is not None:
        add_sum("n_high_risk", (grade <= high_risk_grade).astype(float))
        for g in (1, 2, 3, 4):
            add_sum(f"n_grade_{g}", (grade == g).astype(float))
    add_sum("n_old_residential", _as_float(buildings, "old_residential"))
    add_sum("hazards_open", _as_float(buildings, "hazards_open"))
    add_sum("hazards_overdue", _as_float(buildings, "hazards_overdue"))
    add_mean("share_covered_3min", _as_float(buildings, "covered_3min", "bool"))
    add_mean("share_covered_5min", _as_float(buildings, "covered_5min", "bool"))
    deficient = _as_float(buildings, "water_deficient", "bool")
    add_sum("n_water_deficient", deficient)
    add_mean("share_water_deficient", deficient)
    add_sum("expected_fires", _as_float(buildings, "p_fire"))
    for f in FACTORS:
        c = _as_float(buildings, f"c_{f}")
        if c is not None and not np.isnan(c).all():
            add_mean(f"c_{f}_mean", c)
    frame = pd.DataFrame(data, index=buildings.index)
    if "n_water_deficient" in frame:
        frame["n_water_deficient"] = np.nan_to_num(deficient, nan=0.0)

    per_level = []
    for col in cells.columns:
        key = cells[col].astype(object)
        g = frame.groupby(key.to_numpy(), dropna=True)
        part = g[sums].sum()
        if means:
            part = part.join(g[list(means)].mean())
        if risk is not None:
            part["risk_index_median"] = g["risk_index_mean"].median()
            part["risk_index_max"] = g["risk_index_mean"].max()
        per_level.append(part)
    stats = pd.concat(per_level) if per_level else pd.DataFrame()

    out = grids.copy()
    gid = text(out["grid_id"]).astype(object).to_numpy()
    joined = stats.reindex(gid)
    for c in sums:
        out[c] = joined[c].fillna(0).to_numpy().astype(int if c.startswith("n_") else float)
    if risk is not None:
        for c in ("risk_index_mean", "risk_index_median", "risk_index_max"):
            out[c] = joined[c].to_numpy()
    if grade is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            out["share_high_risk"] = np.where(
                out["n_buildings"] > 0, out["n_high_risk"] / out["n_buildings"], np.nan
            )
    for c in means:
        if c != "risk_index_mean":
            out[c] = joined[c].to_numpy()
    return out, report
