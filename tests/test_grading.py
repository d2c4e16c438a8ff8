"""Risk grades 1 重大/red … 4 低/blue by thresholds or quantiles, for buildings and grids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from firegrid.risk import score_district
from firegrid.risk.grading import (
    GRADE_COLORS,
    GRADE_LABELS,
    grade_buildings,
    grade_grids,
    grade_values,
)
from firegrid.risk.params import GradingParams, RiskParams
from firegrid.spatial.errors import ConfigError
from tests import risk_synthetic as rs


def test_thresholds_are_inclusive_lower_bounds():
    v = pd.Series([0, 29.99, 30, 44.9, 45, 59.99, 60, 100, np.nan])
    g = grade_values(v, thresholds=(60, 45, 30))
    assert g.iloc[:8].tolist() == [4, 4, 3, 3, 2, 2, 1, 1]
    assert pd.isna(g.iloc[8])
    assert str(g.dtype) == "Int64"


def test_quantiles_put_the_top_shares_in_the_worst_grades():
    v = pd.Series(np.arange(1000, dtype=float))
    g = grade_values(v, method="quantiles", top_shares=(0.05, 0.20, 0.50))
    assert g.value_counts().sort_index().tolist() == [50, 150, 300, 500]
    assert g[v >= 950].eq(1).all() and g[v < 500].eq(4).all()
    # Ties share the worse grade rather than being split arbitrarily.
    tied = grade_values(pd.Series([1.0] * 10 + [0.0] * 90), method="quantiles")
    assert tied.iloc[:10].eq(1).all()


def test_labels_and_colours():
    assert GRADE_LABELS == {1: "重大", 2: "较大", 3: "一般", 4: "低"}
    assert GRADE_COLORS == {1: "red", 2: "orange", 3: "yellow", 4: "blue"}
    b = pd.DataFrame({"risk_index": [70.0, 50.0, 35.0, 10.0]})
    out = grade_buildings(b)
    assert out["risk_grade"].tolist() == [1, 2, 3, 4]
    assert out["risk_grade_label"].tolist() == ["重大", "较大", "一般", "低"]
    assert "risk_grade" not in b  # a copy, input untouched


def test_grids_are_graded_level_by_level():
    grids = pd.DataFrame(
        {
            "grid_id": ["S", "A", "B", "a1", "a2", "b1"],
            "level": [1, 2, 2, 3, 3, 3],
            "risk_index_mean": [30.0, 20.0, 40.0, 10.0, 50.0, np.nan],
        }
    )
    out = grade_grids(grids)  # grid thresholds 45 / 35 / 25
    assert out["risk_grade"].iloc[:5].tolist() == [3, 4, 2, 4, 1]
    assert pd.isna(out["risk_grade"].iloc[5])  # no buildings, no grade
    q = grade_grids(grids, params=GradingParams(method="quantiles", top_shares=(0.3, 0.6, 0.9)))
    # Quantiles are taken within each level: the worse of two communities is grade 1.
    assert q.set_index("grid_id").loc[["A", "B"], "risk_grade"].tolist() == [4, 1]
    with pytest.raises(ConfigError, match="grid_stat"):
        grade_grids(grids, params=GradingParams(grid_stat="colour"))


def test_grading_params_validate():
    with pytest.raises(ConfigError, match="descending"):
        GradingParams(thresholds=(30, 45, 60))
    with pytest.raises(ConfigError, match="method"):
        GradingParams(method="kmeans")
    with pytest.raises(ConfigError, match="top_shares"):
        GradingParams(top_shares=(0.5, 0.2, 0.1))
    p = RiskParams.from_mapping({"grading": {"method": "quantiles", "top_shares": [0.1, 0.3, 0.6]}})
    assert p.grading.top_shares == (0.1, 0.3, 0.6)


def test_score_district_grades_buildings_and_grids_consistently():
    b = rs.buildings(500, seed=41)
    res = score_district(b, rs.grids(), as_of="2025-06-30")
    out = res.buildings
    expect = grade_values(out["risk_index"], thresholds=(60, 45, 30))
    assert (out["risk_grade"] == expect).all()
    assert set(out["risk_grade"].unique()) >= {2, 3, 4}
    g = res.grids
    assert g["risk_grade"].notna().all()
    assert (g["risk_grade"] == grade_values(g["risk_index_mean"], thresholds=(45, 35, 25))).all()
    q = score_district(
        b, as_of="2025-06-30", params=RiskParams.from_mapping({"grading": {"method": "quantiles"}})
    ).buildings
    assert q["risk_grade"].value_counts().sort_index().tolist() == [25, 75, 150, 250]


def test_grid_grades_are_int64_per_level_and_a_table_without_levels_is_one_level():
    # Grid thresholds 45 / 35 / 25 on risk_index_mean: 50 → 1, 36 → 2, 25 → 3, 10 → 4;
    # a cell without buildings (NaN) stays ungraded.
    grids = pd.DataFrame(
        {
            "grid_id": ["a", "b", "c", "d", "e"],
            "level": [2, 2, 3, 3, 3],
            "risk_index_mean": [50.0, np.nan, 36.0, 25.0, 10.0],
        }
    )
    out = grade_grids(grids)
    assert str(out["risk_grade"].dtype) == "Int64"
    assert out["risk_grade"].astype(object).where(out["risk_grade"].notna(), None).tolist() == [
        1, None, 2, 3, 4,
    ]  # fmt: skip
    assert out["risk_grade_label"].iloc[[0, 2, 3, 4]].tolist() == ["重大", "较大", "一般", "低"]
    flat = grade_grids(grids.drop(columns="level"))
    assert str(flat["risk_grade"].dtype) == "Int64"
    assert flat["risk_grade"].fillna(0).tolist() == [1, 0, 2, 3, 4]
    # Quantiles rank within a level. Level 3 sorted: 10, 25, 36; the "higher" quantiles at
    # 0.95, 0.80, 0.50 are 36, 36, 25 → 36 reaches all three bounds (1), 25 one (3), 10 none (4).
    # Level 2 has one graded cell: it is its own top 5 % → 1.
    q = grade_grids(grids, params=GradingParams(method="quantiles"))
    assert q["risk_grade"].fillna(0).tolist() == [1, 0, 1, 3, 4]


def test_building_grades_use_the_configured_thresholds():
    b = pd.DataFrame({"risk_index": [85.0, 79.9, 50.0, 20.0, 19.9]})
    out = grade_buildings(b, params=GradingParams(thresholds=(80.0, 50.0, 20.0)))
    # ≥ 80 → 1, ≥ 50 → 2, ≥ 20 → 3, else 4 (the defaults 60/45/30 would give 1, 1, 2, 4, 4).
    assert out["risk_grade"].tolist() == [1, 2, 2, 3, 4]
    assert out["risk_grade_label"].tolist() == ["重大", "较大", "较大", "一般", "低"]


def test_grades_keep_the_index_of_their_buildings():
    b = pd.DataFrame({"risk_index": [70.0, 10.0, 50.0]}, index=[40, 7, 12])
    out = grade_buildings(b)
    assert out["risk_grade"].to_dict() == {40: 1, 7: 4, 12: 2}
    assert grade_values(b["risk_index"]).index.tolist() == [40, 7, 12]


# grade_values diffs its bounds (inf − inf here) to check their order: numpy warns.
@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract")
def test_quantiles_of_nothing_grade_nothing():
    g = grade_values(pd.Series([np.nan, np.nan]), method="quantiles")
    assert g.isna().all() and str(g.dtype) == "Int64"


def test_custom_top_shares_set_the_quantile_grades():
    # 100 distinct values: the top 10 % are grade 1, the next 20 % grade 2, the next 30 % 3.
    values = np.arange(100, dtype=float)
    grades = grade_values(values, method="quantiles", top_shares=[0.1, 0.3, 0.6])
    assert grades.value_counts().sort_index().tolist() == [10, 20, 30, 40]
    default = grade_values(values, method="quantiles")  # 5 % / 20 % / 50 %
    assert default.value_counts().sort_index().tolist() == [5, 15, 30, 50]


def test_thresholds_out_of_order_are_refused():
    with pytest.raises(ConfigError, match="three descending numbers"):
        grade_values([10.0, 50.0], thresholds=[30, 45, 60])
    with pytest.raises(ConfigError, match="three descending numbers"):
        grade_values([10.0, 50.0], thresholds=[60, 45])
