"""Inspection lists for grid workers: each cell's buildings, riskiest first, with the reason.

A grid worker walks one cell (网格). The list tells where to go first: the buildings of the
cell ranked by the risk index (highest first; ties by open hazards, then overdue ones), each
with its grade, its open and overdue hazards and the three factors that add most to its index
(the per-factor contributions ``c_<factor>`` of :mod:`firegrid.risk.index`, which add up to the
index exactly), named in the column registry's words.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from firegrid.risk.params import FACTORS
from firegrid.spatial import columns, runtime
from firegrid.spatial.errors import InputError

N_REASONS = 3
# Columns of the list besides the building's own: its cell, rank in the cell, and reasons.
# Their labels (the registry has no entry for them yet).
LIST_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "rank": "排查顺序",
        "reason_1": "首要风险因素",
        "reason_2": "第二风险因素",
        "reason_3": "第三风险因素",
    },
    "en": {
        "rank": "inspection order",
        "reason_1": "first risk factor",
        "reason_2": "second risk factor",
        "reason_3": "third risk factor",
    },
}
RANK_COLUMNS = ("risk_index", "hazards_open", "hazards_overdue")
LIST_COLUMNS = (
    "grid_id",
    "rank",
    "building_id",
    "risk_index",
    "risk_grade",
    "risk_grade_label",
    "hazards_open",
    "hazards_overdue",
    "reason_1",
    "reason_2",
    "reason_3",
)


def grid_column(buildings: pd.DataFrame, level: int | None = None) -> str:
    """The buildings' cell column of a grid level (``grid_id_l3``); default the finest.

    Raises
    ------
    InputError
        The buildings carry no cell of that level, naming the levels they carry.
    """
    levels = sorted(
        int(c.removeprefix("grid_id_l"))
        for c in buildings.columns
        if str(c).startswith("grid_id_l") and str(c).removeprefix("grid_id_l").isdigit()
    )
    if level is None and levels:
        level = levels[-1]
    if level not in levels:
        raise InputError(
            f"inspection lists: the buildings carry no grid cell of level {level}; "
            f"levels present: {levels or 'none (run the analysis with a grids layer)'}"
        )
    return f"grid_id_l{level}"


def top_reasons(
    buildings: pd.DataFrame, *, n: int = N_REASONS, language: str = "zh"
) -> pd.DataFrame:
    """The ``n`` factors adding most to each building's risk index, largest first.

    Only factors that add something (contribution > 0) are named; ties keep the index's
    factor order. Each reason reads ``电气线路 12.3`` (the factor's label and its index points).

    Returns
    -------
    DataFrame indexed like ``buildings`` with ``reason_1`` … ``reason_n`` (empty text when
    fewer factors contribute).
    """
    present = [f for f in FACTORS if f"c_{f}" in buildings]
    values = buildings[[f"c_{f}" for f in present]].to_numpy(dtype=float, na_value=np.nan)
    values = np.where(np.isfinite(values), values, 0.0)
    order = np.argsort(-values, axis=1, kind="stable")[:, :n]
    picked = np.take_along_axis(values, order, axis=1)
    labels = np.array([columns.FACTOR_LABELS[language].get(f, f) for f in present], dtype=object)
    out = {}
    for k in range(n):
        if k < order.shape[1]:
            text = labels[order[:, k]] + " " + np.char.mod("%.1f", picked[:, k]).astype(object)
            out[f"reason_{k + 1}"] = np.where(picked[:, k] > 0, text, "")
        else:
            out[f"reason_{k + 1}"] = ""
    return pd.DataFrame(out, index=buildings.index)


def inspection_list(
    buildings: pd.DataFrame,
    *,
    level: int | None = None,
    extra: Sequence[str] = (),
    language: str = "zh",
) -> pd.DataFrame:
    """Every cell's buildings ranked for inspection, cell by cell.

    Parameters
    ----------
    buildings : DataFrame or GeoDataFrame
        The run's buildings with ``risk_index``, ``risk_grade``, the contributions
        ``c_<factor>``, ``hazards_open``/``hazards_overdue`` and the cell columns
        ``grid_id_l<level>`` of the grid assignment.
    level : int, optional
        Grid level of the cells (default the finest the buildings carry).
    extra : sequence of str
        Further building columns to show after ``building_id`` (a name or address that the
        caller has checked may be shown, e.g. with :func:`firegrid.maps.privacy.shared_columns`).
    language : {"zh", "en"}
        Words of the grade and the reasons.

    Returns
    -------
    DataFrame (no geometry) with :data:`LIST_COLUMNS` (``extra`` after ``building_id``), sorted
    by cell and, within a cell, by risk index (descending), open hazards, overdue hazards
    (both descending) and building id; ``rank`` counts from 1 in each cell. Buildings in no
    cell of the level are left out (a note says how many).
    """
    cell = grid_column(buildings, level)
    missing = [c for c in ("building_id", "risk_index") if c not in buildings]
    if missing:
        raise InputError(
            f"inspection lists: the buildings have no {missing[0]} column (run the risk step)"
        )
    frame = pd.DataFrame(index=buildings.index)
    frame["grid_id"] = buildings[cell]
    frame["building_id"] = buildings["building_id"]
    for name in extra:
        frame[name] = buildings[name]
    for name in RANK_COLUMNS:
        values = pd.to_numeric(buildings[name], errors="coerce") if name in buildings else 0
        frame[name] = values if name == "risk_index" else pd.Series(values, frame.index).round()
        if name != "risk_index":
            frame[name] = frame[name].astype("Int64")
    frame["risk_grade"] = buildings["risk_grade"] if "risk_grade" in buildings else pd.NA
    frame["risk_grade_label"] = frame["risk_grade"].map(
        lambda g: columns.GRADE_LABELS[language].get(int(g), "") if pd.notna(g) else ""
    )
    frame = frame.join(top_reasons(buildings, language=language))
    outside = frame["grid_id"].isna()
    if outside.any():
        runtime.note(
            f"inspection lists: {int(outside.sum())} building(s) lie in no grid cell of "
            f"{cell.removeprefix('grid_id_l')} and are on no list"
        )
        frame = frame[~outside]
    frame = frame.sort_values(
        ["grid_id", *RANK_COLUMNS, "building_id"],
        ascending=[True, False, False, False, True],
        na_position="last",
        kind="stable",
    )
    frame.insert(1, "rank", frame.groupby("grid_id", sort=False).cumcount() + 1)
    order = [*LIST_COLUMNS[:3], *extra, *LIST_COLUMNS[3:]]
    return frame[order].reset_index(drop=True)


def list_label(column: str, language: str = "zh") -> str:
    """The header of a list column: :data:`LIST_LABELS`, else the column registry's label."""
    return LIST_LABELS[language].get(column) or columns.label(column, language, layer="buildings")


__all__ = [
    "LIST_COLUMNS",
    "LIST_LABELS",
    "N_REASONS",
    "grid_column",
    "inspection_list",
    "list_label",
    "top_reasons",
]
