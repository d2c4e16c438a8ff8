"""Four risk grades for differentiated supervision: 1 重大/red, 2 较大/orange, 3 一般/yellow, 4 低/blue."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from firegrid.risk.params import GradingParams
from firegrid.spatial import columns
from firegrid.spatial.errors import ConfigError

# The grade names are defined once, in the column registry.
GRADE_LABELS: dict[int, str] = columns.GRADE_LABELS["zh"]
GRADE_LABELS_EN: dict[int, str] = columns.GRADE_LABELS["en"]
GRADE_COLORS: dict[int, str] = {1: "red", 2: "orange", 3: "yellow", 4: "blue"}
# Hex colours of the four grades (the usual red/orange/yellow/blue warning scale).
GRADE_HEX: dict[int, str] = {1: "#d7191c", 2: "#fdae61", 3: "#ffd700", 4: "#2c7bb6"}


def grade_values(
    values: Sequence[float] | np.ndarray | pd.Series,
    *,
    method: str = "thresholds",
    thresholds: Sequence[float] | None = None,
    top_shares: Sequence[float] | None = None,
) -> pd.Series:
    """Grade each value 1 (worst) … 4.

    Parameters
    ----------
    values : array-like
        Risk index values (0–100) or any score where higher is worse; NaN stays ungraded.
    method : {"thresholds", "quantiles"}
        ``thresholds``: grade 1 when value >= thresholds[0], 2 when >= thresholds[1], 3 when
        >= thresholds[2], else 4. ``quantiles``: the highest ``top_shares[0]`` of the values
        are grade 1, up to ``top_shares[1]`` grade 2, up to ``top_shares[2]`` grade 3; tied
        values share the worse grade.
    thresholds : three descending numbers, optional
        Default :attr:`GradingParams.thresholds` (60 / 45 / 30).
    top_shares : three increasing shares in (0, 1), optional
        Default :attr:`GradingParams.top_shares` (5 %, 20 %, 50 %).

    Returns
    -------
    Series of nullable integers (Int64) 1–4, indexed like ``values`` when it is a Series.
    """
    defaults = GradingParams()
    thresholds = defaults.thresholds if thresholds is None else thresholds
    top_shares = defaults.top_shares if top_shares is None else top_shares
    index = values.index if isinstance(values, pd.Series) else None
    v = np.asarray(values, dtype=float)
    known = ~np.isnan(v)
    if method == "thresholds":
        bounds = np.asarray(thresholds, dtype=float)
    elif method == "quantiles":
        if not known.any():
            bounds = np.full(3, np.inf)
        else:
            # The value at the top-share rank: everything at or above it is in the grade.
            bounds = np.quantile(
                v[known], 1.0 - np.asarray(top_shares, dtype=float), method="higher"
            )
    else:
        raise ConfigError(f"grading method must be 'thresholds' or 'quantiles', not {method!r}")
    if len(bounds) != 3 or np.any(np.diff(bounds) > 0):
        raise ConfigError(f"grade bounds must be three descending numbers, got {list(bounds)}")
    # Number of bounds a value reaches: 3 → grade 1, 0 → grade 4.
    reached = (v[:, None] >= bounds[None, :]).sum(axis=1)
    grade = pd.array(np.where(known, 4 - reached, 0), dtype="Int64")
    grade[~known] = pd.NA
    return pd.Series(grade, index=index, name="risk_grade")


def grade_labels(grades: pd.Series) -> pd.Series:
    """Chinese grade names (:data:`GRADE_LABELS`: 重大 / 较大 / 一般 / 低) of grades 1–4;
    <NA> stays <NA>."""
    return grades.map(GRADE_LABELS, na_action="ignore").astype("string")


def grade_buildings(
    buildings: pd.DataFrame, *, params: GradingParams | None = None
) -> pd.DataFrame:
    """Add ``risk_grade`` (1–4) and ``risk_grade_label`` to buildings with a ``risk_index``.

    Parameters
    ----------
    buildings : DataFrame or GeoDataFrame
        Must hold ``risk_index`` (0–100).
    params : GradingParams, optional
        ``method``, ``thresholds`` and ``top_shares``.

    Returns
    -------
    A copy with ``risk_grade`` and ``risk_grade_label`` added.
    """
    p = params or GradingParams()
    out = buildings.copy()
    out["risk_grade"] = grade_values(
        out["risk_index"], method=p.method, thresholds=p.thresholds, top_shares=p.top_shares
    )
    out["risk_grade_label"] = grade_labels(out["risk_grade"])
    return out


def grade_grids(grids: pd.DataFrame, *, params: GradingParams | None = None) -> pd.DataFrame:
    """Add ``risk_grade`` and ``risk_grade_label`` to rolled-up grids, level by level.

    Grids are graded on ``params.grid_stat`` (default ``risk_index_mean``) with
    ``params.grid_thresholds``, or with ``top_shares`` among the grids of the same level when
    ``method`` is ``quantiles``. A grid without buildings stays ungraded.

    Returns
    -------
    A copy with ``risk_grade`` and ``risk_grade_label`` added.
    """
    p = params or GradingParams()
    if p.grid_stat not in grids:
        raise ConfigError(
            f"[risk.grading] grid_stat {p.grid_stat!r} is not a roll-up column; "
            "try risk_index_mean, risk_index_max or share_high_risk"
        )
    out = grids.copy()
    grade = pd.Series(pd.array([pd.NA] * len(out), dtype="Int64"), index=out.index)
    levels = out["level"] if "level" in out else pd.Series(1, index=out.index)
    for level in pd.unique(levels.dropna()):
        # A handful of levels, not a loop over features.
        members = (levels == level).to_numpy(dtype=bool)
        grade[members] = grade_values(
            out.loc[members, p.grid_stat],
            method=p.method,
            thresholds=p.grid_thresholds,
            top_shares=p.top_shares,
        ).to_numpy()
    out["risk_grade"] = grade
    out["risk_grade_label"] = grade_labels(grade)
    return out
