"""Grid roll-up at every level: the community fire-safety hazard index of the plans, per grid cell.

Buildings are placed in cells by :func:`firegrid.spatial.io.grids.assign_grids` (finest cell by the
representative point, coarser levels along the ``parent_id`` chain), so a level-2 community's
figures are exactly the sums of its level-3 cells' figures plus any buildings lying in the
community but in no level-3 cell. Every figure of a cell is a sum or mean over its member
buildings, never a mean of means.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from firegrid.risk.params import FACTORS
from firegrid.risk.values import yes_no_to_float
from firegrid.spatial.io.grids import AssignmentReport, aggregate_by_grid, assign_grids
from firegrid.spatial.io.layers import clean_text


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

    how = {c: "sum" for c in sums} | {c: "mean" for c in means}
    if risk is not None:
        frame["risk_index_median"] = frame["risk_index_max"] = risk
        how |= {"risk_index_median": "median", "risk_index_max": "max"}
    out = grids.copy()
    gid = clean_text(out["grid_id"]).astype(object).to_numpy()
    joined = aggregate_by_grid(cells, frame, how, grid_ids=gid)
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
