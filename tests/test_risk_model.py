"""The incident-trained model: training table, estimator contract, time-split validation."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from firegrid.risk import score_district
from firegrid.risk.model import (
    FireRiskModel,
    feature_columns,
    fit_and_evaluate,
    time_split,
    top_share,
    training_table,
)
from firegrid.risk.params import ModelParams, RiskParams
from firegrid.spatial.errors import InputError
from tests import risk_synthetic as rs

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
AS_OF = "2025-06-30"
YEARS = range(2016, 2025)


@pytest.fixture(scope="module")
def synthetic():
    full = rs.buildings(2000, seed=51)
    inc, p = rs.incidents(full, YEARS, seed=52)
    b = rs.with_gaps(full, 0.03, seed=53)
    table = training_table(b, inc, as_of=AS_OF)
    truth = pd.Series(p, index=full["building_id"].to_numpy())
    return b, inc, truth, table


def test_training_table_labels_every_matched_fire(synthetic):
    b, inc, _, table = synthetic
    assert sorted(table["year"].unique()) == list(YEARS)  # 2025 is incomplete on AS_OF
    assert table.attrs["n_incidents"] == len(inc)
    assert table.attrs["n_nearest"] == inc["building_id"].isna().sum() > 0
    assert table.attrs["n_unmatched"] == 0
    assert table["n_fires"].sum() == len(inc)
    assert ((table["n_fires"] > 0) == (table["had_fire"] == 1)).all()
    # Each fire sits on its building's row for its year.
    known = inc[inc["building_id"].notna()]
    key = set(zip(known["building_id"], known["date"].dt.year, strict=True))
    fired = table[table["had_fire"] == 1]
    assert key <= set(zip(fired["building_id"], fired["year"], strict=True))
    # No row for a year before the building was built (known years only).
    built = pd.Series(b["year_built"].astype(float).to_numpy(), index=b["building_id"])
    assert (
        table["year"].to_numpy() >= built.reindex(table["building_id"]).fillna(0).to_numpy()
    ).all()
    assert not table[feature_columns(table)].isna().any().any()
    # Age moves with the year.
    one = table[table["building_id"] == b["building_id"].iloc[0]]
    assert np.diff(one["age_years"].to_numpy()).tolist() == [1.0] * (len(one) - 1)


def test_incidents_after_as_of_or_far_from_buildings_are_left_out():
    b = rs.buildings(50, seed=54)
    inc = gpd.GeoDataFrame(
        {
            "incident_id": ["a", "b", "c"],
            "date": pd.to_datetime(["2023-03-01", "2025-09-01", "2024-02-02"]),
        },
        geometry=[
            b.geometry.iloc[0].centroid,
            b.geometry.iloc[1].centroid,
            Point(rs.X0 - 900, rs.Y0),
        ],
        crs=rs.CRS,
    )
    t = training_table(b, inc, as_of="2025-06-30")
    assert t.attrs["n_incidents"] == 2 and t.attrs["n_unmatched"] == 1
    assert sorted(t["year"].unique()) == [2023, 2024]
    assert t["n_fires"].sum() == 1
    with pytest.raises(InputError, match="not a date"):
        training_table(b, inc.assign(date=["2023-03-01", "soon", "2024-01-01"]), as_of="2025-06-30")
    # Incident dates are read like every ledger date: an ambiguous form is refused, not guessed.
    with pytest.raises(InputError, match="day/month order is ambiguous"):
        training_table(b, inc.assign(date=["2023-03-01", "5/3/2024", "2024-01-01"]), as_of=AS_OF)
    with pytest.raises(InputError, match="date is empty"):
        training_table(b, inc.assign(date=["2023-03-01", None, "2024-01-01"]), as_of=AS_OF)
    same = training_table(b, inc.assign(date=["2023年3月1日", "20250901", "2024/2/2"]), as_of=AS_OF)
    pd.testing.assert_frame_equal(same, t)


def test_time_split_earlier_years_train_later_test(synthetic):
    table = synthetic[3]
    train, test = time_split(table)
    assert train["year"].max() < test["year"].min()
    assert sorted(test["year"].unique()) == [2022, 2023, 2024]  # a third of 9 years
    train, test = time_split(table, test_years=1)
    assert sorted(test["year"].unique()) == [2024] and len(train) + len(test) == len(table)
    with pytest.raises(InputError, match="two years"):
        time_split(table[table["year"] == 2020])


def test_estimator_contract():
    m = FireRiskModel(estimator="logistic", C=0.5)
    assert m.get_params()["C"] == 0.5 and clone(m).C == 0.5
    assert m.set_params(C=2.0).C == 2.0
    # __init__ only stores parameters: a bad one surfaces at fit, as scikit-learn requires.
    bad = FireRiskModel(estimator="forest")
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * X["a"]))).astype(int)
    with pytest.raises(ValueError, match="forest"):
        bad.fit(X, y)
    m.fit(X, y)
    assert list(m.feature_names_in_) == ["a", "b"] and m.n_features_in_ == 2
    proba = m.predict_proba(X)
    assert proba.shape == (300, 2) and np.allclose(proba.sum(axis=1), 1)
    assert set(m.predict(X)) <= {0, 1}
    assert m.score(X, y) == pytest.approx(roc_auc_score(y, proba[:, 1]))
    assert m.coefficients()["a"] > 1 > abs(m.coefficients()["b"])
    # Usable in an analyst's own pipeline and grid search (scored by AUC).
    pipe = make_pipeline(FunctionTransformer(), FireRiskModel())
    search = GridSearchCV(pipe, {"fireriskmodel__C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert 0.5 < search.best_score_ <= 1
    with pytest.raises(ValueError, match="one class"):
        FireRiskModel().fit(X, np.zeros(300, dtype=int))


@pytest.mark.slow
def test_passes_scikit_learn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(FireRiskModel(), on_fail=None, on_skip=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert not failed


def test_model_recovers_the_true_function_on_synthetic_data(synthetic):
    _, _, truth, table = synthetic
    model, ev = fit_and_evaluate(table)
    train, test = time_split(table)
    true_auc = roc_auc_score(test["had_fire"], truth.reindex(test["building_id"]).to_numpy())
    print(
        f"\nsynthetic: model AUC {ev.auc:.3f}, true-function AUC {true_auc:.3f} on {ev.test_years}"
    )
    assert abs(ev.auc - true_auc) <= 0.03, f"model AUC {ev.auc:.3f} vs true {true_auc:.3f}"
    assert ev.train_years == list(range(2016, 2022)) and ev.test_years == [2022, 2023, 2024]
    assert ev.fires_test == test["had_fire"].sum() == ev.observed_fires
    assert 0 < ev.top10_share <= ev.top20_share <= 1
    assert ev.top10_share > 0.15 and ev.top20_share > 0.3  # better than random (0.1, 0.2)
    assert ev.brier < ev.brier_reference
    cal = ev.calibration
    assert cal["n"].sum() == ev.n_test and cal["observed_fires"].sum() == ev.fires_test
    assert cal["mean_predicted"].is_monotonic_increasing
    # Calibrated in the large within sampling noise (Poisson sd of the fire count).
    assert abs(ev.expected_fires - ev.observed_fires) < 4 * np.sqrt(ev.observed_fires)
    imp = ev.importances
    assert set(imp.index) == set(feature_columns(table))
    # The strongest true effects lead the importances; the coefficients have the true signs.
    assert set(imp.index[:6]) >= {"wiring_score", "ebike_indoor"}
    for f in ("wood_stairs", "ebike_indoor", "group_rental", "use_three_in_one"):
        assert imp.loc[f, "coef_per_sd"] > 0, f
    assert ev.lines() and "ROC AUC" in ev.lines()[1]


def test_top_share_counts_fires_in_the_highest_ranked_buildings():
    table = pd.DataFrame(
        {
            "building_id": list("abcdefghij") * 2,
            "n_fires": [3, 0, 0, 0, 0, 0, 0, 0, 0, 1] + [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        }
    )
    p = np.tile(np.linspace(0.9, 0.0, 10), 2)
    assert top_share(table, p, 0.1) == pytest.approx(4 / 5)
    assert top_share(table, p, 0.2) == pytest.approx(4 / 5)
    assert top_share(table, p[::-1], 0.1) == pytest.approx(1 / 5)


def test_too_few_fires_means_no_model_and_a_note():
    b = rs.buildings(200, seed=55)
    inc, _ = rs.incidents(b, range(2020, 2025), seed=56)
    few = inc.iloc[:5]
    with pytest.raises(InputError, match="need at least 20"):
        fit_and_evaluate(training_table(b, few, as_of=AS_OF))
    res = score_district(b, incidents=few, as_of=AS_OF)
    assert res.model is None and res.evaluation is None and "need at least 20" in res.model_note
    assert "p_fire" not in res.buildings


def test_score_district_adds_p_fire_from_a_model_on_all_years(synthetic):
    b, inc, truth, _ = synthetic
    res = score_district(b, incidents=inc, as_of=AS_OF, params=RiskParams(model=ModelParams(C=1.0)))
    p = res.buildings["p_fire"]
    assert p.between(0, 1).all()
    assert res.model is not None and res.evaluation is not None
    # p_fire ranks buildings like the truth does.
    auc_like = np.corrcoef(np.argsort(np.argsort(p)), np.argsort(np.argsort(truth.to_numpy())))[
        0, 1
    ]
    assert auc_like > 0.6
    assert any("ROC AUC" in line for line in res.summary_lines())


def test_score_district_uses_the_runs_grid_cells_when_given(monkeypatch):
    import importlib

    from firegrid.spatial.io.grids import assign_grids

    b, grids = rs.buildings(300, seed=7), rs.grids()
    own = score_district(b, grids, as_of=AS_OF)
    cells, _ = assign_grids(b, grids)

    def never(*args, **kwargs):
        raise AssertionError("score_district assigned grid cells again")

    for module in ("firegrid.risk.score", "firegrid.risk.rollup"):
        monkeypatch.setattr(importlib.import_module(module), "assign_grids", never)
    given = score_district(b, grids, as_of=AS_OF, cells=cells)
    pd.testing.assert_frame_equal(given.grids, own.grids)
    pd.testing.assert_frame_equal(given.buildings, own.buildings)
    assert given.assignment is None and own.assignment is not None
    # The cells are the ones given, not recomputed: moved cells move the roll-up.
    moved = cells.assign(grid_id_l3=cells["grid_id_l3"].iloc[::-1].to_numpy())
    other = score_district(b, grids, as_of=AS_OF, cells=moved)
    got = other.buildings["grid_id_l3"].reset_index(drop=True)
    assert got.equals(moved["grid_id_l3"].reset_index(drop=True))
    assert not other.grids["risk_index_mean"].equals(own.grids["risk_index_mean"])


def _read_demo():
    b = gpd.read_file(DEMO / "buildings.gpkg")
    crs = b.estimate_utm_crs()
    b = b.to_crs(crs)
    inc = gpd.read_file(DEMO / "incidents.gpkg").to_crs(crs)
    truth = pd.read_csv(DEMO / "truth.csv", dtype={"building_id": str})
    return b, inc, truth.set_index("building_id")["true_p_annual"]


@pytest.mark.slow
@pytest.mark.skipif(not (DEMO / "truth.csv").exists(), reason=f"demo district not found at {DEMO}")
def test_demo_model_auc_is_within_003_of_the_true_function():
    b, inc, truth = _read_demo()
    as_of = "2026-06-30"  # the demo's analysis date (demo.toml)
    table = training_table(b, inc, as_of=as_of)
    model, ev = fit_and_evaluate(table)
    _, test = time_split(table)
    true_auc = roc_auc_score(test["had_fire"], truth.reindex(test["building_id"]).to_numpy())
    print(
        f"\ndemo: model AUC {ev.auc:.3f}, true-function AUC {true_auc:.3f} on later years "
        f"{ev.test_years} ({ev.fires_test} fires); top 10 % {ev.top10_share:.0%}, "
        f"top 20 % {ev.top20_share:.0%}; Brier {ev.brier:.4f} vs {ev.brier_reference:.4f}"
    )
    assert ev.test_years == [2023, 2024, 2025]
    assert abs(ev.auc - true_auc) <= 0.03, f"model AUC {ev.auc:.3f} vs true {true_auc:.3f}"
    assert ev.top20_share > ev.top10_share > 0.2
