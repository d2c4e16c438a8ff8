"""Building features: imputation is explicit, flagged and counted; absent inputs are not assessed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from firegrid.risk.features import building_features
from firegrid.risk.params import FeatureParams
from firegrid.spatial.errors import ConfigError, InputError
from tests import risk_synthetic as rs

AS_OF = "2025-06-30"


def _small(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"building_id": [f"B{i}" for i in range(n)]}
    return pd.DataFrame({**base, **cols})


def test_as_of_is_required_and_explicit():
    b = rs.buildings(20)
    with pytest.raises(TypeError):
        building_features(b)  # keyword-only and no default
    with pytest.raises(ConfigError, match="as_of"):
        building_features(b, as_of=None)
    with pytest.raises(ConfigError, match="not a date"):
        building_features(b, as_of="last tuesday")


def test_age_is_measured_to_as_of():
    b = _small(year_built=pd.array([1990, 2000, 2020], dtype="Int64"), use=["residential"] * 3)
    f1, _ = building_features(b, as_of="2025-06-30")
    f2, _ = building_features(b, as_of="2030-01-01")
    assert f1["age_years"].tolist() == [35, 25, 5]
    assert (f2["age_years"] - f1["age_years"]).tolist() == [5, 5, 5]
    # Built in or before 2000 (国办发〔2020〕23号) and residential → old residential.
    assert f1["old_residential"].tolist() == [1.0, 1.0, 0.0]


def test_imputed_values_are_flagged_counted_and_never_zero_risk():
    b = rs.buildings(600, seed=5)
    gappy = rs.with_gaps(b, 0.1, seed=11)
    f, report = building_features(gappy, as_of=AS_OF)
    table = report.to_frame().set_index("item")
    for attr in rs.GAP_COLUMNS:
        missing = gappy[attr].isna().to_numpy()
        assert missing.sum() > 20
        assert (f[f"imputed_{attr}"].to_numpy() == missing).all(), attr
        assert table.loc[attr, "n"] == missing.sum(), attr
        assert table.loc[attr, "method"]
    # Filled values are those of similar buildings, not zeros: old buildings with unknown wood
    # stairs get the share of known old buildings of their use that have them.
    # The group: same (possibly imputed) use, same age class (built up to 2000 or later).
    old_res = (f["use"] == "residential") & (f["age_years"] >= 2025 - 2000)
    known = old_res & ~f["imputed_wood_stairs"]
    guessed = old_res & f["imputed_wood_stairs"]
    share = gappy.loc[known, "wood_stairs"].astype(float).mean()
    assert guessed.sum() > 5 and share > 0.3
    np.testing.assert_allclose(f.loc[guessed, "wood_stairs"], share)
    for col, attr in (("wiring_score", "wiring_condition"), ("ebike_indoor", "ebike_indoor")):
        filled = f.loc[f[f"imputed_{attr}"], col]
        assert filled.between(0, 1).all()
        assert abs(filled.mean() - f.loc[~f[f"imputed_{attr}"], col].mean()) < 0.1, col
    # No gap remains in any assessed feature.
    cols = ["age_years", "wood_stairs", "wiring_score", "height_m", "floors", "ebike_indoor"]
    cols += ["group_rental", "residents", "elderly_alone", "high_rise", "old_residential"]
    assert not f[cols].isna().any().any()
    assert report.lines() and any("year_built" in line for line in report.lines())


def test_year_imputed_with_median_of_same_use():
    b = _small(
        use=["residential", "residential", "residential", "shop", "shop", "residential", "shop"],
        year_built=pd.array([1980, 1990, 1985, 2010, 2014, None, None], dtype="Int64"),
    )
    f, _ = building_features(b, as_of="2025-01-01")
    assert f["imputed_year_built"].tolist() == [False] * 5 + [True, True]
    assert f["age_years"].iloc[5] == 2025 - 1985
    assert f["age_years"].iloc[6] == 2025 - 2012


def test_height_from_floors_and_high_rise_bounds():
    # GB 50016: residential above 27 m, other (public) buildings above 24 m are high-rise.
    b = _small(
        use=["residential", "residential", "office", "office", "residential"],
        height_m=[27.0, 27.5, 24.0, 24.5, np.nan],
        floors=pd.array([9, 9, 8, 8, 10], dtype="Int64"),
    )
    f, report = building_features(b, as_of=AS_OF)
    assert f["high_rise"].tolist() == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert f["height_m"].iloc[4] == pytest.approx(30.0)  # 10 floors × 3 m
    assert f["imputed_height_m"].tolist() == [False] * 4 + [True]
    p = FeatureParams(high_rise_residential_m=40)
    f2, _ = building_features(b, as_of=AS_OF, params=p)
    assert f2["high_rise"].iloc[1] == 0.0


def test_absent_access_and_water_are_reported_not_assessed():
    b = rs.buildings(50, access=False)
    f, report = building_features(b, as_of=AS_OF)
    assert {"shortfall_3min", "shortfall_5min", "water", "hazards"} <= set(report.not_assessed)
    assert (
        f[["shortfall_3min_s", "shortfall_5min_s", "water_deficient", "hazard_load"]]
        .isna()
        .all()
        .all()
    )
    frame = report.to_frame()
    assert frame["method"].str.contains("not assessed").sum() == 4
    assert any("NOT ASSESSED" in line for line in report.lines())


def test_access_and_water_from_alternative_columns():
    b = _small(
        t_micro_s=[100.0, 240.0, np.nan],
        covered_5min=[True, False, True],
        d_hydrant_net_m=[90.0, 200.0, np.nan],
    )
    f, report = building_features(b, as_of=AS_OF)
    assert f["shortfall_3min_s"].iloc[:2].tolist() == [0.0, 60.0]
    assert np.isnan(f["shortfall_3min_s"].iloc[2])  # unreachable, kept as NaN: scored worst
    assert f["shortfall_5min_s"].tolist() == [0.0, 300.0, 0.0]
    assert f["water_deficient"].tolist() == [0.0, 1.0, 1.0]  # unknown along streets → deficient
    assert "shortfall_3min" not in report.not_assessed
    items = report.to_frame()["item"].tolist()
    assert "3-minute target: unreachable" in items and "water coverage unknown" in items


def test_wholly_missing_attribute_is_not_assessed():
    b = rs.buildings(40).drop(columns=["wood_stairs", "group_rental"])
    f, report = building_features(b, as_of=AS_OF)
    assert "wood_stairs" in report.not_assessed and "group_rental" in report.not_assessed
    assert f["wood_stairs"].isna().all()
    assert "ebike_indoor" not in report.not_assessed


def test_chinese_values_and_text_yes_no_are_understood():
    b = _small(
        use=["住宅", "三合一场所", "仓库"],
        wiring_condition=["老化", "良好", "一般"],
        wood_stairs=["是", "否", ""],
    )
    f, _ = building_features(b, as_of=AS_OF)
    assert f["use"].tolist() == ["residential", "three_in_one", "warehouse"]
    assert f["wiring_score"].tolist() == [1.0, 0.0, 0.5]
    assert f["wood_stairs"].iloc[:2].tolist() == [1.0, 0.0]
    assert f["imputed_wood_stairs"].tolist() == [False, False, True]


def test_bad_values_raise_input_error_naming_the_column():
    with pytest.raises(InputError, match="wiring_condition"):
        building_features(_small(wiring_condition=["good", "rotten"]), as_of=AS_OF)
    with pytest.raises(InputError, match="'use'.*castle"):
        building_features(_small(use=["residential", "castle"]), as_of=AS_OF)
    with pytest.raises(InputError, match="ebike_indoor"):
        building_features(_small(ebike_indoor=["yes", "perhaps"]), as_of=AS_OF)


def test_inputs_are_not_mutated():
    b = rs.with_gaps(rs.buildings(80), 0.2)
    before = b.copy()
    building_features(b, as_of=AS_OF)
    pd.testing.assert_frame_equal(b, before)


def test_feature_params_from_mapping():
    p = FeatureParams.from_mapping({"old_built_up_to": 1995, "use_severity": {"warehouse": 0.9}})
    assert p.old_built_up_to == 1995 and p.use_severity["warehouse"] == 0.9
    assert p.use_severity["three_in_one"] == 1.0  # others keep their defaults
    with pytest.raises(ConfigError, match="old_before"):
        FeatureParams.from_mapping({"old_before": 1995})
    with pytest.raises(ConfigError, match="castle"):
        FeatureParams.from_mapping({"use_severity": {"castle": 0.5}})
    with pytest.raises(ConfigError, match="age_high_years"):
        FeatureParams(age_low_years=50, age_high_years=10)


def test_report_counts_only_unrectified_hazards_without_a_building():
    from firegrid.risk.hazards import hazard_ledger

    b = _small(use=["residential", "shop"], year_built=[1990, 2010])
    hz = pd.DataFrame(
        {
            "hazard_id": ["h1", "h2", "h3"],
            "building_id": ["B0", None, None],
            "category": ["general"] * 3,
            "found_on": ["2025-06-01"] * 3,
            "deadline": ["2025-07-15"] * 3,
            # h2 was fixed, h3 is still open: only h3 is an unrectified hazard with no building.
            "rectified_on": [None, "2025-06-10", None],
        }
    )
    ledger = hazard_ledger(hz, as_of=AS_OF)
    f, report = building_features(b, as_of=AS_OF, ledger=ledger)
    rows = {r["item"]: r["n"] for r in report.rows}
    assert rows["unrectified hazards with no building"] == 1
    assert f["hazards_open"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("column", ["t_micro_s", "d_hydrant_net_m"])
def test_a_time_or_distance_that_is_not_a_number_names_its_column(column):
    b = _small(use=["residential", "shop"], **{column: ["95", "about two minutes"]})
    with pytest.raises(InputError) as exc:
        building_features(b, as_of=AS_OF)
    assert exc.value.column == column


# --- Imputation rules, value by value (module docstring of firegrid.risk.features) -----------------------
def test_height_gap_takes_the_median_height_of_the_same_use():
    b = _small(
        use=["residential", "residential", "residential", "office", "office", "office"],
        height_m=[10.0, 20.0, 30.0, 50.0, 70.0, np.nan],
        floors=[3, 6, 10, 15, 20, np.nan],
        year_built=[2000] * 6,
    )
    f, _ = building_features(b, as_of=AS_OF)
    assert f["height_m"].iloc[5] == 60.0  # median of the offices 50, 70 (all six: 30)
    assert f["floors"].iloc[5] == 20  # 60 m / 3 m per storey
    assert bool(f["imputed_height_m"].iloc[5]) and bool(f["imputed_floors"].iloc[5])


def test_an_underground_space_is_never_high_rise():
    b = _small(use=["underground", "office"], height_m=[30.0, 30.0], floors=[3, 3])
    f, _ = building_features(b, as_of=AS_OF)
    assert f["high_rise"].tolist() == [0.0, 1.0]  # office 30 m > 24 m


def test_wiring_gap_takes_the_mean_of_the_same_use_and_age():
    b = _small(
        use=["residential", "residential", "shop", "shop", "shop"],
        year_built=[1990, 1990, 1990, 1990, 1990],
        wiring_condition=["aged", "aged", "good", "fair", None],
    )
    f, _ = building_features(b, as_of=AS_OF)
    # Old shops: good 0 and fair 0.5 → 0.25 (all old buildings would give 0.625).
    assert f["wiring_score"].iloc[4] == pytest.approx(0.25)


def test_elderly_gap_uses_the_residents_ratio_or_the_mean_without_residents():
    b = _small(
        use=["residential"] * 3, year_built=[1990] * 3,
        residents=[100, 50, 40], elderly_alone=[5, np.nan, 3],
    )  # fmt: skip
    f, _ = building_features(b, as_of=AS_OF)
    # Ratio over known pairs: (5 + 3) / (100 + 40) = 8 / 140 → 50 × 8 / 140 = 2.857.
    assert f["elderly_alone"].iloc[1] == pytest.approx(50 * 8 / 140)
    no_res = _small(use=["residential"] * 3, year_built=[1990] * 3, elderly_alone=[2, np.nan, 4])
    f2, _ = building_features(no_res, as_of=AS_OF)
    assert f2["elderly_alone"].tolist() == pytest.approx([2.0, 3.0, 4.0])  # mean of 2 and 4


def test_features_do_not_depend_on_the_row_labels():
    b = rs.with_gaps(rs.buildings(120, seed=5), 0.2)
    relabelled = b.copy()
    relabelled.index = np.random.default_rng(1).permutation(len(b)) * 7 + 1000
    f1, _ = building_features(b, as_of=AS_OF)
    f2, _ = building_features(relabelled, as_of=AS_OF)
    assert f2.index.equals(relabelled.index)
    pd.testing.assert_frame_equal(f1.reset_index(drop=True), f2.reset_index(drop=True))
