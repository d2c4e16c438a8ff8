"""The risk index: contributions add up, it is bounded and monotone in every risk factor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from risk import score_district
from risk.features import building_features
from risk.index import factor_scores, risk_index, top_factors
from risk.params import DEFAULT_WEIGHTS, FACTORS, RiskParams
from spatial.errors import ConfigError
from tests import risk_synthetic as rs

AS_OF = "2025-06-30"


def _index(b: pd.DataFrame, hazards=None, params: RiskParams | None = None) -> pd.DataFrame:
    res = score_district(b, hazards=hazards, as_of=AS_OF, params=params)
    return res.buildings


@pytest.fixture(scope="module")
def base():
    return rs.buildings(400, seed=21)


def test_contributions_sum_to_index_and_index_is_bounded(base):
    h = rs.hazards(base, n=120)
    out = score_district(rs.with_gaps(base, 0.05), hazards=h, as_of=AS_OF).buildings
    c = out[[f"c_{f}" for f in FACTORS]]
    assert not c.isna().any().any()  # everything assessed here
    np.testing.assert_allclose(c.sum(axis=1), out["risk_index"], rtol=0, atol=1e-9)
    assert out["risk_index"].between(0, 100).all()
    assert (c >= 0).all().all()
    # The spread is real: three-in-one places score well above offices.
    by_use = out.groupby("use")["risk_index"].mean()
    assert by_use["three_in_one"] > by_use["office"] + 5


def test_extremes_give_0_and_100():
    s = pd.DataFrame({f"s_{f}": [0.0, 1.0, 0.5] for f in FACTORS})
    out = risk_index(s)
    assert out["risk_index"].tolist() == pytest.approx([0.0, 100.0, 50.0])
    assert out["c_wiring"].iloc[1] == pytest.approx(100 * 1.5 / sum(DEFAULT_WEIGHTS.values()))


def test_index_is_linear_and_increasing_in_each_factor_score():
    rng = np.random.default_rng(0)
    s = pd.DataFrame(rng.uniform(0, 0.9, (50, len(FACTORS))), columns=[f"s_{f}" for f in FACTORS])
    base = risk_index(s)["risk_index"]
    total = sum(DEFAULT_WEIGHTS.values())
    for f in FACTORS:
        bumped = s.copy()
        bumped[f"s_{f}"] += 0.1
        diff = risk_index(bumped)["risk_index"] - base
        np.testing.assert_allclose(diff, 100 * DEFAULT_WEIGHTS[f] * 0.1 / total, atol=1e-9)


# Each worsening of one raw attribute, applied to the rows it can worsen.
def _worsen(
    b: pd.DataFrame, rng: np.random.Generator
) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    n = len(b)
    pick = rng.random(n) < 0.3
    out = {}

    def change(name, col, mask, values):
        w = b.copy()
        w.loc[mask, col] = values if np.isscalar(values) else values[mask]
        out[name] = (w, mask)

    change(
        "age", "year_built", pick, (b["year_built"].astype(float) - 12).astype("Int64").to_numpy()
    )
    change("wood_stairs", "wood_stairs", pick & ~b["wood_stairs"].to_numpy(bool), True)
    wiring = b["wiring_condition"].astype(object).to_numpy()
    worse = np.where(wiring == "good", "fair", "aged")
    change("wiring", "wiring_condition", pick & (wiring != "aged"), worse)
    change("high_rise", "height_m", pick, b["height_m"].to_numpy() + 15)
    # Residential → another use would also drop the old-residential flag: change other uses only.
    use = b["use"].astype(object).to_numpy()
    lower = ["office", "public", "shop", "warehouse", "underground"]
    change("use", "use", pick & np.isin(use, lower), "three_in_one")
    change("ebike_indoor", "ebike_indoor", pick & ~b["ebike_indoor"].to_numpy(bool), True)
    change("group_rental", "group_rental", pick & ~b["group_rental"].to_numpy(bool), True)
    change("elderly_alone", "elderly_alone", pick, (b["elderly_alone"] + 2).to_numpy())
    change("residents", "residents", pick, (b["residents"] + 25).to_numpy())
    change("shortfall_3min", "shortfall_3min_s", pick, b["shortfall_3min_s"].to_numpy() + 40)
    change("shortfall_5min", "shortfall_5min_s", pick, b["shortfall_5min_s"].to_numpy() + 40)
    change("water", "water_deficient", pick & ~b["water_deficient"].to_numpy(bool), True)
    return out


def test_index_is_monotone_in_every_raw_risk_factor(base):
    before = _index(base)
    cases = _worsen(base, np.random.default_rng(3))
    assert set(cases) == set(FACTORS) - {"old_residential", "hazards"}  # those two below/elsewhere
    for factor, (worse, mask) in cases.items():
        assert mask.sum() > 5, factor
        after = _index(worse)
        delta = (after["risk_index"] - before["risk_index"]).to_numpy()[mask]
        assert (delta >= -1e-9).all(), factor
        # Strictly higher wherever that factor's score moved (not already saturated).
        moved = (after[f"s_{factor}"] > before[f"s_{factor}"] + 1e-12).to_numpy()[mask]
        assert moved.sum() > 0, factor
        assert (delta[moved] > 0).all(), factor


def test_old_residential_flag_raises_index(base):
    res = base["use"].astype(object).to_numpy() == "residential"
    new = res & (base["year_built"].astype(float).to_numpy() > 2000)
    worse = base.copy()
    worse.loc[new, "year_built"] = 1998
    before, after = _index(base), _index(worse)
    assert (after.loc[new, "s_old_residential"] == 1).all()
    assert (after.loc[new, "risk_index"] > before.loc[new, "risk_index"]).all()


def test_not_assessed_factors_drop_out_and_contributions_still_sum():
    b = rs.buildings(100, access=False)
    res = score_district(b, as_of=AS_OF)
    out = res.buildings
    for f in ("shortfall_3min", "shortfall_5min", "water", "hazards"):
        assert out[f"c_{f}"].isna().all()
        assert f in res.report.not_assessed
        assert f not in res.assessed_factors
    c = out[[f"c_{f}" for f in FACTORS]]
    np.testing.assert_allclose(c.sum(axis=1, skipna=True), out["risk_index"], atol=1e-9)
    # Renormalised over the assessed weights, so a building at the worst of every assessed
    # factor still reaches 100.
    s = factor_scores(building_features(b, as_of=AS_OF)[0], not_assessed=res.report.not_assessed)
    worst = s.where(s.isna(), 1.0)
    assert risk_index(worst, not_assessed=res.report.not_assessed)[
        "risk_index"
    ].max() == pytest.approx(100)


def test_weights_are_configurable():
    b = rs.buildings(150, seed=4)
    default = _index(b)
    heavy = _index(b, params=RiskParams.from_mapping({"weights": {"ebike_indoor": 10}}))
    e = b["ebike_indoor"].to_numpy(bool)
    gap_default = default["risk_index"][e].mean() - default["risk_index"][~e].mean()
    gap_heavy = heavy["risk_index"][e].mean() - heavy["risk_index"][~e].mean()
    assert gap_heavy > gap_default + 5
    only = {f: 0 for f in FACTORS} | {"wiring": 2}
    wiring_only = _index(b, params=RiskParams.from_mapping({"weights": only}))
    score = b["wiring_condition"].map({"good": 0, "fair": 50, "aged": 100}).astype(float)
    np.testing.assert_allclose(wiring_only["risk_index"], score)


def test_bad_weights_raise_config_error():
    with pytest.raises(ConfigError, match="flood"):
        RiskParams.from_mapping({"weights": {"flood": 1}})
    with pytest.raises(ConfigError, match=">= 0"):
        RiskParams.from_mapping({"weights": {"age": -1}})
    with pytest.raises(ConfigError, match="weight 0"):
        risk_index(pd.DataFrame({"s_age": [0.5]}), weights={f: 0 for f in FACTORS})
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        RiskParams.from_mapping({"colour": "red"})


def test_top_factors_name_the_largest_contributions():
    c = pd.DataFrame({"c_age": [5.0, 0.0], "c_wiring": [12.0, 0.0], "c_water": [np.nan, 3.0]})
    assert top_factors(c, n=2).tolist() == ["wiring 12.0, age 5.0", "water 3.0"]
