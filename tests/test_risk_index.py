"""The risk index: contributions add up, it is bounded and monotone in every risk factor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from firegrid.risk import score_district
from firegrid.risk.features import building_features
from firegrid.risk.index import factor_scores, risk_index, top_factors
from firegrid.risk.params import DEFAULT_WEIGHTS, FACTORS, RiskParams
from firegrid.spatial.errors import ConfigError
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


# --- Pinned figures, worked out by hand from the documented defaults -----------------------------
# Defaults (risk/params.py): weights age 1, old_residential 1, wood_stairs 1, wiring 1.5,
# high_rise 0.5, use 1, ebike_indoor 1.5, group_rental 1, elderly_alone 1, residents 0.5,
# hazards 2, shortfall_3min 1, shortfall_5min 1, water 1 → Σw = 15 when all 14 are assessed.
# Age score (age − 10) / (50 − 10) clipped to [0, 1]; elderly / 5; ln(1 + residents) / ln(301);
# hazards 1 − exp(−load / 2); shortfalls / 180 s and / 300 s (unreachable = 1); use severity
# residential 0.3, office 0.2, three_in_one 1.0; wiring good 0, fair 0.5, aged 1.
# Hazard weights: general 1, major 3, × (1 + 0.5 × escalation steps); general steps at > 0 and
# > 7 days overdue.  Scored on 2025-06-30.

PINNED_AS_OF = "2025-06-30"


def _pinned_district():
    import geopandas as gpd
    from shapely.geometry import Point, box

    rows = [
        # A: 1985 6-storey residential block, wooden stairs, aged wiring, e-bikes indoors.
        dict(building_id="A", use="residential", floors=6, height_m=18.0, year_built=1985,
             wood_stairs=True, wiring_condition="aged", ebike_indoor=True, group_rental=False,
             elderly_alone=2, residents=60, shortfall_3min_s=60.0, shortfall_5min_s=0.0,
             water_deficient=True),
        # B: 2015 office tower, 10 storeys, 40 m.
        dict(building_id="B", use="office", floors=10, height_m=40.0, year_built=2015,
             wood_stairs=False, wiring_condition="good", ebike_indoor=False, group_rental=False,
             elderly_alone=0, residents=0, shortfall_3min_s=0.0, shortfall_5min_s=0.0,
             water_deficient=False),
        # C: 1995 three-in-one shop, people sleeping above the goods.
        dict(building_id="C", use="three_in_one", floors=3, height_m=9.5, year_built=1995,
             wood_stairs=True, wiring_condition="fair", ebike_indoor=True, group_rental=True,
             elderly_alone=1, residents=8, shortfall_3min_s=240.0, shortfall_5min_s=90.0,
             water_deficient=False),
        # D: 2005 residential high-rise, no station reaches it.
        dict(building_id="D", use="residential", floors=30, height_m=87.0, year_built=2005,
             wood_stairs=False, wiring_condition="fair", ebike_indoor=False, group_rental=False,
             elderly_alone=10, residents=300, shortfall_3min_s=np.nan, shortfall_5min_s=np.nan,
             water_deficient=False),
    ]  # fmt: skip
    b = gpd.GeoDataFrame(
        pd.DataFrame(rows),
        geometry=[box(100.0 * i, 0.0, 100.0 * i + 20, 20.0) for i in range(4)],
        crs="EPSG:32651",
    )
    hazards = gpd.GeoDataFrame(
        {
            "hazard_id": ["H1", "H2", "H3"],
            "building_id": ["A", "C", "D"],
            "category": ["general", "major", "general"],
            "found_on": ["2025-06-01", "2025-06-10", "2025-04-01"],
            "deadline": ["2025-06-20", "2025-08-09", "2025-04-16"],
            "rectified_on": [None, None, "2025-05-01"],
        },
        geometry=[Point(10, 10), Point(210, 10), Point(310, 10)],
        crs="EPSG:32651",
    )
    return b, hazards


# Expected factor scores, by hand.
PINNED_SCORES = {
    "A": {
        "age": (40 - 10) / 40,  # 2025 − 1985 = 40 years → 0.75
        "old_residential": 1.0,  # residential built ≤ 2000
        "wood_stairs": 1.0,
        "wiring": 1.0,  # aged
        "high_rise": 0.0,  # 18 m ≤ 27 m
        "use": 0.3,  # residential
        "ebike_indoor": 1.0,
        "group_rental": 0.0,
        "elderly_alone": 2 / 5,
        "residents": 4.110873864173311 / 5.707110264748875,  # ln 61 / ln 301 = 0.72031
        # H1 10 days overdue > 0 and > 7 → 2 steps → weight 1 × (1 + 0.5 × 2) = 2
        "hazards": 1 - 0.36787944117144233,  # 1 − e^(−2/2)
        "shortfall_3min": 60 / 180,
        "shortfall_5min": 0.0,
        "water": 1.0,
    },
    "B": {
        "age": 0.0,  # 10 years: the bottom of the age ramp
        "old_residential": 0.0,
        "wood_stairs": 0.0,
        "wiring": 0.0,
        "high_rise": 1.0,  # office 40 m > 24 m
        "use": 0.2,
        "ebike_indoor": 0.0,
        "group_rental": 0.0,
        "elderly_alone": 0.0,
        "residents": 0.0,  # ln 1 = 0
        "hazards": 0.0,
        "shortfall_3min": 0.0,
        "shortfall_5min": 0.0,
        "water": 0.0,
    },
    "C": {
        "age": (30 - 10) / 40,  # 30 years → 0.5
        "old_residential": 0.0,  # three-in-one is not residential use
        "wood_stairs": 1.0,
        "wiring": 0.5,  # fair
        "high_rise": 0.0,
        "use": 1.0,  # three_in_one
        "ebike_indoor": 1.0,
        "group_rental": 1.0,
        "elderly_alone": 1 / 5,
        "residents": 2.1972245773362196 / 5.707110264748875,  # ln 9 / ln 301 = 0.38500
        # H2 major, before its deadline: 0 steps → weight 3 → 1 − e^(−3/2)
        "hazards": 1 - 0.22313016014842982,
        "shortfall_3min": 1.0,  # 240 s / 180 s capped at 1
        "shortfall_5min": 90 / 300,
        "water": 0.0,
    },
    "D": {
        "age": (20 - 10) / 40,  # 20 years → 0.25
        "old_residential": 0.0,  # built 2005 > 2000
        "wood_stairs": 0.0,
        "wiring": 0.5,
        "high_rise": 1.0,  # residential 87 m > 27 m
        "use": 0.3,
        "ebike_indoor": 0.0,
        "group_rental": 0.0,
        "elderly_alone": 1.0,  # 10 / 5 capped at 1
        "residents": 1.0,  # ln 301 / ln 301
        "hazards": 0.0,  # H3 rectified on 2025-05-01: it stops counting
        "shortfall_3min": 1.0,  # unreachable
        "shortfall_5min": 1.0,
        "water": 0.0,
    },
}

# Σ w·s by hand, then index = 100 · Σ / 15.
PINNED_INDEX = {
    # 0.75 + 1 + 1 + 1.5·1 + 0 + 0.3 + 1.5·1 + 0 + 0.4 + 0.5·0.7203074 + 2·0.6321206 + 1/3 + 0 + 1
    "A": 100 * 9.40772816 / 15,  # 62.718 → grade 1 (≥ 60)
    # 0.5·1 (high-rise) + 0.2 (office)
    "B": 100 * 0.7 / 15,  # 4.667 → grade 4
    # 0.5 + 0 + 1 + 1.5·0.5 + 0 + 1 + 1.5 + 1 + 0.2 + 0.5·0.3849977 + 2·0.7768698 + 1 + 0.3 + 0
    "C": 100 * 8.99623855 / 15,  # 59.975 → grade 2 (≥ 45, < 60)
    # 0.25 + 0 + 0 + 1.5·0.5 + 0.5·1 + 0.3 + 0 + 0 + 1 + 0.5·1 + 0 + 1 + 1 + 0
    "D": 100 * 5.3 / 15,  # 35.333 → grade 3 (≥ 30)
}
PINNED_GRADE = {"A": 1, "B": 4, "C": 2, "D": 3}
PINNED_WEIGHTS = {
    "age": 1.0, "old_residential": 1.0, "wood_stairs": 1.0, "wiring": 1.5, "high_rise": 0.5,
    "use": 1.0, "ebike_indoor": 1.5, "group_rental": 1.0, "elderly_alone": 1.0,
    "residents": 0.5, "hazards": 2.0, "shortfall_3min": 1.0, "shortfall_5min": 1.0, "water": 1.0,
}  # fmt: skip


@pytest.fixture  # per test, so mutation testing sees every test that reads these figures
def pinned():
    b, h = _pinned_district()
    return score_district(b, hazards=h, as_of=PINNED_AS_OF).buildings.set_index("building_id")


@pytest.mark.parametrize("bid", ["A", "B", "C", "D"])
def test_pinned_factor_scores(pinned, bid):
    for f, expected in PINNED_SCORES[bid].items():
        assert pinned.loc[bid, f"s_{f}"] == pytest.approx(expected, abs=1e-9), (bid, f)


@pytest.mark.parametrize("bid", ["A", "B", "C", "D"])
def test_pinned_contributions_and_index(pinned, bid):
    for f, s in PINNED_SCORES[bid].items():
        expected = 100 * PINNED_WEIGHTS[f] * s / 15
        assert pinned.loc[bid, f"c_{f}"] == pytest.approx(expected, abs=1e-9), (bid, f)
    assert pinned.loc[bid, "risk_index"] == pytest.approx(PINNED_INDEX[bid], abs=1e-6)
    assert pinned.loc[bid, "risk_grade"] == PINNED_GRADE[bid]


def test_pinned_contributions_spelled_out(pinned):
    # A few contributions written out in full, so a swapped weight shows in plain numbers.
    assert pinned.loc["A", "c_wiring"] == pytest.approx(10.0)  # 100 · 1.5 · 1 / 15
    assert pinned.loc["A", "c_ebike_indoor"] == pytest.approx(10.0)  # 100 · 1.5 · 1 / 15
    assert pinned.loc["A", "c_age"] == pytest.approx(5.0)  # 100 · 1 · 0.75 / 15
    assert pinned.loc["A", "c_water"] == pytest.approx(100 / 15)  # 6.667
    assert pinned.loc["B", "c_high_rise"] == pytest.approx(100 / 30)  # 100 · 0.5 · 1 / 15
    assert pinned.loc["C", "c_use"] == pytest.approx(100 / 15)  # 100 · 1 · 1 / 15
    assert pinned.loc["D", "c_residents"] == pytest.approx(100 / 30)  # 100 · 0.5 · 1 / 15
    assert pinned.loc["A", "top_factors"] == "wiring 10.0, ebike_indoor 10.0, hazards 8.4"
    assert pinned.loc["A", "hazards_open"] == 1 and pinned.loc["A", "hazards_overdue"] == 1
    assert pinned.loc["D", "hazards_open"] == 0
    assert pinned.loc["A", "age_years"] == 40 and pinned.loc["A", "old_residential"] == 1


# Use severity of every building use (DEFAULT_USE_SEVERITY as documented in risk/params.py).
@pytest.mark.parametrize(
    ("use", "severity"),
    [
        ("three_in_one", 1.0),
        ("underground", 0.8),
        ("warehouse", 0.7),
        ("shop", 0.6),
        ("industrial", 0.5),
        ("public", 0.4),
        ("residential", 0.3),
        ("office", 0.2),
        ("other", 0.3),
    ],
)
def test_use_severity_of_every_use(use, severity):
    b, _ = _pinned_district()
    b = b.iloc[[1]].assign(use=use)  # the office, re-labelled
    out = score_district(b, as_of=PINNED_AS_OF).buildings
    assert out["s_use"].iloc[0] == pytest.approx(severity)


@pytest.mark.parametrize(
    ("year", "age_score"),
    [(2016, 0.0), (2015, 0.0), (2014, 0.025), (1995, 0.5), (1976, 0.975), (1975, 1.0), (1960, 1.0)],
)
def test_age_ramp_from_10_to_50_years(year, age_score):
    # 2025 − year − 10, over 40, clipped: 1976 → 49 years → 39 / 40 = 0.975; 1975 → 50 → 1.
    b, _ = _pinned_district()
    out = score_district(b.iloc[[1]].assign(year_built=year), as_of=PINNED_AS_OF).buildings
    assert out["s_age"].iloc[0] == pytest.approx(age_score)


def test_shortfall_scores_clip_at_zero_and_one_and_unreachable_is_one():
    # Shortfalls given directly: −30 s (a building inside the target) → 0; 90 s → 90 / 180 = 0.5;
    # 400 s → capped at 1; NaN (no station reaches it) → 1. Same for the 5-minute target (/ 300).
    b, _ = _pinned_district()
    b = b.iloc[[1, 1, 1, 1]].reset_index(drop=True)
    b["building_id"] = ["a", "b", "c", "d"]
    b["shortfall_3min_s"] = [-30.0, 90.0, 400.0, np.nan]
    b["shortfall_5min_s"] = [-30.0, 150.0, 900.0, np.nan]
    out = score_district(b, as_of=PINNED_AS_OF).buildings
    assert out["s_shortfall_3min"].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0])
    assert out["s_shortfall_5min"].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0])


def test_counts_below_zero_score_zero():
    # A negative count in a ledger (a typo) must not lower the index below its floor of 0.
    b, _ = _pinned_district()
    b = b.iloc[[1]].assign(elderly_alone=-2, residents=-5)
    out = score_district(b, as_of=PINNED_AS_OF).buildings
    assert out["s_elderly_alone"].iloc[0] == 0.0
    assert out["s_residents"].iloc[0] == 0.0


def test_index_clips_scores_to_0_1_and_scores_a_gap_as_the_worst_case():
    # Only wiring (weight 1.5) and water (1) assessed → Σw = 2.5.
    s = pd.DataFrame({"s_wiring": [1.7, np.nan, 0.5], "s_water": [0.0, 0.0, -0.3]})
    out = risk_index(s)
    assert out["c_wiring"].tolist() == pytest.approx([60.0, 60.0, 30.0])  # 100·1.5·{1, 1, .5}/2.5
    assert out["c_water"].tolist() == pytest.approx([0.0, 0.0, 0.0])
    assert out["risk_index"].tolist() == pytest.approx([60.0, 60.0, 30.0])
