"""Grid roll-up at every level: the community fire-safety hazard index of the plans, per grid cell.

Buildings are placed in cells by :func:`firegrid.spatial.io.grids.assign_grids` (finest cell by the
representative point, coarser levels along the ``parent_id`` chain), so a level-2 community's
figures are exactly the sums of its level-3 cells' figures plus any buildings lying in the
community but in no level-3 cell. Every figure of a cell is a sum or mean over its member
buildings, never a mean of means.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from firegrid.risk.values import yes_no_to_float
from firegrid.spatial import columns
from firegrid.spatial.io.grids import AssignmentReport, aggregate_by_grid, assign_grids
from firegrid.spatial.io.layers import clean_text

# The per-cell figures this module computes, in column order. How each one aggregates its
# building column (``Column.rollup`` and ``Column.source``) is defined once, in the column
# registry (firegrid.spatial.columns).
FIGURES = (
    "n_buildings",
    "residents",
    "n_high_risk",
    "n_grade_{grade}",
    "n_old_residential",
    "hazards_open",
    "hazards_overdue",
    "n_water_deficient",
    "expected_fires",
    "risk_index_mean",
    "risk_index_median",
    "risk_index_max",
    "share_high_risk",
    "share_covered_3min",
    "share_covered_5min",
    "share_old_res_3min",
    "share_old_res_5min_fire",
    "share_water_deficient",
    "c_{factor}_mean",
)
# The pandas reduction over a cell's members of each kind of roll-up; shares of graded
# buildings are divided after (by every member, graded or not), shares of old residential
# buildings by ``n_old_residential`` (the one definition of old residential: the risk
# features' ``old_residential``, with the configured year and imputed years).
REDUCTIONS = {
    "share_true_of_old_residential": "sum",
    "count": "sum",
    "sum": "sum",
    "count_true": "sum",
    "count_grade": "sum",
    "count_graded": "sum",
    "mean": "mean",
    "median": "median",
    "max": "max",
    "share_true": "mean",
}
COUNTS = ("count", "sum", "count_true", "count_grade", "count_graded")
# Roll-ups of yes/no building columns (bool, 0/1 or yes/no words).
YES_NO = ("count_true", "share_true")


@dataclass(frozen=True)
class _Figure:
    """One per-cell figure: its name, how it rolls up, and its values per building."""

    name: str
    rollup: str
    values: np.ndarray | None


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


def _member_values(
    buildings: pd.DataFrame, col: columns.Column, name: str, high_risk_grade: int
) -> np.ndarray | None:
    """What one building contributes to the figure ``name`` (None: its column is absent)."""
    fields = col.pattern.match(name).groupdict()
    source = col.source.format(**fields) if col.source else None
    if col.rollup == "count":
        return np.ones(len(buildings))
    values = _as_float(buildings, source, "bool" if col.rollup in YES_NO else "num")
    if values is None:
        return None
    # Ungraded buildings count as members but in no grade.
    if col.rollup == "count_grade":
        return (values == int(fields["grade"])).astype(float)
    if col.rollup in ("count_graded", "share_graded"):
        return (values <= high_risk_grade).astype(float)
    if col.rollup == "share_true_of_old_residential":
        old = _as_float(buildings, "old_residential", "bool")
        return None if old is None else np.nan_to_num(old * values, nan=0.0)
    if col.rollup in COUNTS:
        return np.nan_to_num(values, nan=0.0)
    if col.is_family and np.isnan(values).all():
        return None  # a factor not assessed has no mean contribution
    return values


def _figures(buildings: pd.DataFrame, high_risk_grade: int) -> list[_Figure]:
    """The figures the buildings' columns allow, in :data:`FIGURES` order."""
    out = []
    for entry in FIGURES:
        col = columns.COLUMNS[("grids", entry)]
        for name in col.members():
            values = _member_values(buildings, col, name, high_risk_grade)
            if values is not None:
                out.append(_Figure(name, col.rollup, values))
    return out


def _finished(figure: _Figure, joined: pd.DataFrame, out: pd.DataFrame) -> np.ndarray:
    """A figure's per-cell values: counts and sums 0 in empty cells, the rest NaN."""
    if figure.rollup == "share_graded":
        count = figure.name.replace("share_", "n_", 1)
        return _share(out[count], out["n_buildings"])
    if figure.rollup == "share_true_of_old_residential":
        return _share(joined[figure.name].fillna(0), out["n_old_residential"])
    values = joined[figure.name]
    if figure.rollup in COUNTS:
        return values.fillna(0).to_numpy().astype(int if figure.name.startswith("n_") else float)
    return values.to_numpy()


def _share(part: pd.Series, whole: pd.Series) -> np.ndarray:
    """``part / whole`` cell by cell (in row order), NaN where ``whole`` is 0."""
    part, whole = part.to_numpy(dtype=float), whole.to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(whole > 0, part / whole, np.nan)


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
        ``share_covered_3min``, ``share_covered_5min``; ``share_old_res_3min``,
        ``share_old_res_5min_fire`` (share of the ``n_old_residential`` buildings with
        ``covered_3min``, ``covered_5min``); ``n_water_deficient``,
        ``share_water_deficient``; ``expected_fires`` (sum of ``p_fire``, fires per year);
        ``c_<factor>_mean`` (mean contribution, summing to ``risk_index_mean``). Figures whose
        building column is absent are left out; shares of empty cells are NaN. How each
        figure aggregates is its ``Column.rollup`` in :mod:`firegrid.spatial.columns`.
    report : AssignmentReport or None
        How the buildings were assigned to cells; None when ``cells`` was given.
    """
    report = None
    if cells is None:
        cells, report = assign_grids(buildings, grids)
    figures = _figures(buildings, high_risk_grade)
    aggregated = [f for f in figures if f.rollup in REDUCTIONS]
    frame = pd.DataFrame({f.name: f.values for f in aggregated}, index=buildings.index)
    how = {f.name: REDUCTIONS[f.rollup] for f in aggregated}
    out = grids.copy()
    gid = clean_text(out["grid_id"]).astype(object).to_numpy()
    joined = aggregate_by_grid(cells, frame, how, grid_ids=gid)
    for figure in figures:
        out[figure.name] = _finished(figure, joined, out)
    return out, report
