"""The incident-trained fire model: training table, estimator, time-split validation.

The unit is the building-year: the label says whether the building had at least one fire in
that calendar year, the features are the building's features as of 1 January of the year (age,
and the hazard ledger when ``use_hazards`` is on, move with the year; the other attributes,
access and water are today's). Earlier years train, later years test, as a forecast would be
used.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from firegrid.risk.features import building_features
from firegrid.risk.hazards import hazard_ledger, match_buildings
from firegrid.risk.index import factor_scores
from firegrid.risk.params import FeatureParams, HazardParams, ModelParams
from firegrid.risk.values import as_timestamp, date_column, numeric
from firegrid.spatial.errors import InputError
from firegrid.spatial.io.crs import require_projected
from firegrid.spatial.io.layers import BUILDING_USES
from firegrid.spatial.io.sources import locate

# Most building-years the permutation importance shuffles per repeat.
_PERM_MAX_ROWS = 50_000

# Uses get a 0/1 column each; residential is the baseline.
_USE_COLUMNS = tuple(f"use_{u}" for u in BUILDING_USES if u != "residential")


def model_matrix(features: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Numeric model inputs from building features and factor scores.

    Counts enter as log(1 + x) (fire risk grows sub-linearly with occupancy), shortfalls as
    their capped scores (an unreachable building scores 1), uses as 0/1 columns. Features of
    factors that are not assessed (all NaN) are left out.

    Parameters
    ----------
    features : DataFrame from :func:`firegrid.risk.features.building_features`
    scores : DataFrame from :func:`firegrid.risk.index.factor_scores`

    Returns
    -------
    DataFrame of floats indexed like ``features``, without NaN.
    """
    f = features
    x = pd.DataFrame(
        {
            "age_years": f["age_years"],
            "old_residential": f["old_residential"],
            "wood_stairs": f["wood_stairs"],
            "wiring_score": f["wiring_score"],
            "high_rise": f["high_rise"],
            "log_height_m": np.log1p(f["height_m"].clip(lower=0)),
            "ebike_indoor": f["ebike_indoor"],
            "group_rental": f["group_rental"],
            "log_elderly_alone": np.log1p(f["elderly_alone"].clip(lower=0)),
            "log_residents": np.log1p(f["residents"].clip(lower=0)),
            "hazards_open": f["hazards_open"],
            "hazards_overdue": f["hazards_overdue"],
            "hazards_major_open": f["hazards_major_open"],
            "shortfall_3min": scores["s_shortfall_3min"],
            "shortfall_5min": scores["s_shortfall_5min"],
            "water_deficient": f["water_deficient"],
        },
        index=f.index,
    ).astype(float)
    use = f["use"].astype(object)
    for col in _USE_COLUMNS:
        x[col] = (use == col[4:]).astype(float)
    x = x.loc[:, x.notna().any()]
    return x.fillna(x.median())


def _incident_dates(incidents: pd.DataFrame) -> pd.Series:
    if "date" not in incidents:
        raise InputError("required column missing", file="incidents", column="date")
    dates = date_column(incidents, "date", layer="incidents")
    if dates.isna().any():
        first = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise InputError("date is empty", **locate(incidents, first, "date", layer="incidents"))
    return dates


def training_table(
    buildings: gpd.GeoDataFrame,
    incidents: gpd.GeoDataFrame,
    *,
    as_of: str | dt.date | pd.Timestamp,
    hazards: gpd.GeoDataFrame | None = None,
    years: list[int] | None = None,
    feature_params: FeatureParams | None = None,
    hazard_params: HazardParams | None = None,
    model_params: ModelParams | None = None,
) -> pd.DataFrame:
    """One row per building and year: model inputs, fire count and label.

    Parameters
    ----------
    buildings : GeoDataFrame
        Buildings (projected CRS) with the canonical attributes and, when available, the access
        and water columns.
    incidents : GeoDataFrame
        Fire incidents (``date``; ``building_id`` optional): points in the same CRS. An incident
        without a known ``building_id`` is attached to the nearest building within
        ``model_params.snap_m`` metres; the rest are dropped (counted in ``attrs``).
    as_of : date
        Only complete years up to this date are used (explicit; never today implicitly).
    hazards : GeoDataFrame, optional
        Hazard layer; with ``model_params.use_hazards`` each year's features include the
        ledger as read on 1 January (otherwise the hazard columns are left out).
    years : list of int, optional
        Years to build; default: from the first incident's year to the last complete year.

    Returns
    -------
    DataFrame with ``building_id``, ``year``, the model inputs of :func:`model_matrix`,
    ``n_fires`` and ``had_fire`` (0/1). A building built after a year has no row for it.
    ``attrs`` holds ``n_incidents``, ``n_matched`` and ``n_unmatched``.
    """
    fp = feature_params or FeatureParams()
    hp = hazard_params or HazardParams()
    mp = model_params or ModelParams()
    as_of_ts = as_timestamp(as_of)
    require_projected(buildings, "buildings")
    dates = _incident_dates(incidents)
    in_range = (dates <= as_of_ts).to_numpy(dtype=bool)
    years = _complete_years(dates[in_range], as_of_ts) if years is None else years
    if not years:
        raise InputError(
            f"no complete year of incidents before {as_of_ts.date()}",
            file="incidents",
            column="date",
        )
    bid, how = match_buildings(incidents[in_range], buildings, snap_m=mp.snap_m, layer="incidents")
    fires = pd.DataFrame(
        {"building_id": bid.to_numpy(), "year": dates[in_range].dt.year.to_numpy()}
    ).dropna(subset=["building_id"])
    hazards = _hazards_once(hazards, buildings, hp) if mp.use_hazards else None
    table = _yearly_inputs(buildings, years, hazards, fp, hp)
    counts = fires.groupby(["building_id", "year"]).size()
    key = pd.MultiIndex.from_arrays([table["building_id"].astype(object), table["year"]])
    table["n_fires"] = counts.reindex(key).fillna(0).to_numpy(dtype=int)
    table["had_fire"] = (table["n_fires"] > 0).astype(int)
    table.attrs.update(
        n_incidents=int(in_range.sum()),
        n_matched=int(bid.notna().sum()),
        n_unmatched=int(bid.isna().sum()),
        n_nearest=int((how == "nearest").sum()),
        n_outside_years=int((~fires["year"].isin(years)).sum()),
    )
    return table


def _complete_years(dates: pd.Series, as_of: pd.Timestamp) -> list[int]:
    """From the first incident's year to the last complete year before ``as_of``."""
    if not len(dates):
        raise InputError("no incident on or before as_of", file="incidents", column="date")
    last_year = as_of.year if (as_of.month, as_of.day) == (12, 31) else as_of.year - 1
    return list(range(int(dates.dt.year.min()), last_year + 1))


def _hazards_once(
    hazards: gpd.GeoDataFrame | None, buildings: gpd.GeoDataFrame, hp: HazardParams
) -> gpd.GeoDataFrame | None:
    """The hazards attached to buildings once; each year's ledger then trusts those ids."""
    if hazards is None:
        return None
    hazard_ids, _ = match_buildings(hazards, buildings, snap_m=hp.snap_m)
    return hazards.assign(building_id=hazard_ids.to_numpy())


def _yearly_inputs(
    buildings: gpd.GeoDataFrame,
    years: list[int],
    hazards: gpd.GeoDataFrame | None,
    fp: FeatureParams,
    hp: HazardParams,
) -> pd.DataFrame:
    """``building_id``, ``year`` and the model inputs as of 1 January of each year, for the
    buildings standing then."""
    year_built = (
        pd.Series(numeric(buildings["year_built"], column="year_built"), index=buildings.index)
        if "year_built" in buildings
        else pd.Series(np.nan, index=buildings.index)
    )
    parts = []
    # One pass per year (a handful), each vectorised over buildings.
    for year in years:
        start = pd.Timestamp(year=year, month=1, day=1)
        ledger = (
            hazard_ledger(hazards, None, as_of=start, params=hp) if hazards is not None else None
        )
        feats, report = building_features(buildings, as_of=start, ledger=ledger, params=fp)
        scores = factor_scores(feats, params=fp, not_assessed=report.not_assessed)
        x = model_matrix(feats, scores)
        x.insert(0, "year", year)
        x.insert(0, "building_id", feats["building_id"].to_numpy())
        built = ~(year_built > year).to_numpy(dtype=bool)
        parts.append(x[built])
    return pd.concat(parts, ignore_index=True)


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The model-input columns of a training table (everything but ids, year and labels)."""
    return [c for c in table.columns if c not in ("building_id", "year", "n_fires", "had_fire")]


def time_split(
    table: pd.DataFrame, *, test_years: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a training table by year: earlier years train, the latest ``test_years`` test.

    Parameters
    ----------
    table : DataFrame from :func:`training_table`
    test_years : int, optional
        Years held out; default a third of the years (at least 1, at most all but one).

    Returns
    -------
    (train, test) DataFrames.
    """
    years = np.sort(table["year"].unique())
    if len(years) < 2:
        raise InputError(
            f"a time split needs at least two years of incidents; found {list(years)}",
            file="incidents",
            column="date",
        )
    k = test_years if test_years is not None else max(1, round(len(years) / 3))
    k = min(max(1, k), len(years) - 1)
    cut = years[-k]
    return table[table["year"] < cut], table[table["year"] >= cut]


class FireRiskModel(ClassifierMixin, BaseEstimator):
    """Probability that a building has a fire in a year, from its features.

    A scikit-learn estimator (fit / predict / predict_proba / score / get_params / set_params),
    usable in pipelines and grid searches. (``ClassifierMixin`` is listed before
    ``BaseEstimator``, the order scikit-learn requires for its tags.)

    Parameters
    ----------
    estimator : {"logistic", "boosting"}
        ``logistic``: standardise, then L2-regularised logistic regression. ``boosting``:
        HistGradientBoostingClassifier.
    C : float
        Inverse L2 strength of the logistic regression.
    max_iter : int
        Iterations of the logistic solver.
    learning_rate, max_depth, boosting_iter, l2_regularization : boosting parameters.
    random_state : int or None
        Seed of the boosting.

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_ (when fitted on a DataFrame), model_ (the
    fitted scikit-learn pipeline or booster), n_iter_
    """

    def __init__(
        self,
        estimator: str = "logistic",
        C: float = 1.0,
        max_iter: int = 2000,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        boosting_iter: int = 200,
        l2_regularization: float = 1.0,
        random_state: int | None = 0,
    ) -> None:
        self.estimator = estimator
        self.C = C
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.boosting_iter = boosting_iter
        self.l2_regularization = l2_regularization
        self.random_state = random_state

    def _make(self):
        if self.estimator == "logistic":
            return make_pipeline(
                StandardScaler(), LogisticRegression(C=self.C, max_iter=self.max_iter)
            )
        if self.estimator == "boosting":
            return HistGradientBoostingClassifier(
                learning_rate=self.learning_rate,
                max_depth=self.max_depth,
                max_iter=self.boosting_iter,
                l2_regularization=self.l2_regularization,
                random_state=self.random_state,
            )
        raise ValueError(f"estimator must be 'logistic' or 'boosting', not {self.estimator!r}")

    def fit(self, X, y, sample_weight=None) -> FireRiskModel:
        """Fit on features ``X`` (n_samples × n_features) and labels ``y`` (e.g. had_fire)."""
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds one class only ({self.classes_}): need fires and non-fires")
        model = self._make()
        if sample_weight is None:
            model.fit(X, y)
        elif self.estimator == "logistic":
            model.fit(
                X,
                y,
                standardscaler__sample_weight=sample_weight,
                logisticregression__sample_weight=sample_weight,
            )
        else:
            model.fit(X, y, sample_weight=sample_weight)
        self.model_ = model
        last = model[-1] if self.estimator == "logistic" else model
        self.n_iter_ = np.atleast_1d(last.n_iter_).max()
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.model_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """The most probable class (for rare fires, almost always 0: rank by predict_proba)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """ROC AUC for a binary target (accuracy otherwise).

        Accuracy is meaningless for rare fires, so a grid search on this estimator ranks by how
        well it orders buildings.
        """
        y = np.asarray(y)
        if len(self.classes_) == 2 and len(np.unique(y)) == 2:
            return float(roc_auc_score(y, self.predict_proba(X)[:, 1], sample_weight=sample_weight))
        return super().score(X, y, sample_weight=sample_weight)

    def coefficients(self) -> pd.Series | None:
        """Logistic coefficients per standard deviation of each feature (None for boosting)."""
        check_is_fitted(self)
        if self.estimator != "logistic":
            return None
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{i}" for i in range(self.n_features_in_)]
        coef = self.model_[-1].coef_[0]
        return pd.Series(coef, index=list(names), name="coef_per_sd")


@dataclass
class ModelEvaluation:
    """Time-split validation of the fire model.

    Attributes
    ----------
    train_years, test_years : list of int
    n_train, n_test : building-years; fires_train, fires_test : building-years with a fire
    auc : ROC AUC on the test years
    top10_share, top20_share : share of the test years' fires in the 10 % / 20 % of buildings
        with the highest predicted risk
    brier : Brier score on the test years; brier_reference : that of predicting the training
        fire rate for everyone (lower is better; the model should beat it)
    expected_fires, observed_fires : sums over the test years (calibration in the large)
    calibration : DataFrame per bin of predicted probability (equal-count bins):
        ``n``, ``mean_predicted``, ``observed_rate``, ``expected_fires``, ``observed_fires``
    importances : DataFrame per feature: ``perm_importance`` (mean drop of test AUC when the
        feature is shuffled), ``perm_std`` and, for the logistic model, ``coef_per_sd``
    """

    train_years: list[int]
    test_years: list[int]
    n_train: int
    n_test: int
    fires_train: int
    fires_test: int
    auc: float
    top10_share: float
    top20_share: float
    brier: float
    brier_reference: float
    expected_fires: float
    observed_fires: int
    calibration: pd.DataFrame = field(repr=False)
    importances: pd.DataFrame = field(repr=False)

    def lines(self) -> list[str]:
        """Headline figures as text lines."""
        top = ", ".join(self.importances.index[:5])
        return [
            f"fire model: trained on {self.train_years[0]}–{self.train_years[-1]} "
            f"({self.fires_train} fires), tested on {self.test_years[0]}–{self.test_years[-1]} "
            f"({self.fires_test} fires)",
            f"ROC AUC {self.auc:.3f}; top 10 % of buildings hold {self.top10_share:.0%} of fires, "
            f"top 20 % hold {self.top20_share:.0%}",
            f"Brier {self.brier:.4f} (reference {self.brier_reference:.4f}); expected "
            f"{self.expected_fires:.1f} fires vs {self.observed_fires} observed",
            f"most important features: {top}",
        ]


def top_share(table: pd.DataFrame, p: np.ndarray, share: float) -> float:
    """Share of fires in the ``share`` of buildings with the highest mean predicted risk.

    Parameters
    ----------
    table : DataFrame with ``building_id`` and ``n_fires`` (one row per building-year)
    p : predicted probabilities aligned with ``table``
    share : fraction of buildings, e.g. 0.1
    """
    per = (
        pd.DataFrame(
            {
                "b": table["building_id"].astype(object).to_numpy(),
                "p": p,
                "f": table["n_fires"].to_numpy(),
            }
        )
        .groupby("b", sort=True)
        .agg(p=("p", "mean"), f=("f", "sum"))
        .sort_values("p", ascending=False, kind="stable")
    )
    total = per["f"].sum()
    if total == 0:
        return float("nan")
    k = math.ceil(share * len(per))
    return float(per["f"].iloc[:k].sum() / total)


def calibration_table(y: np.ndarray, p: np.ndarray, *, n_bins: int = 10) -> pd.DataFrame:
    """Observed fire rate against mean predicted probability in equal-count bins."""
    bins = pd.qcut(pd.Series(p).rank(method="first"), q=min(n_bins, len(p)), labels=False)
    frame = pd.DataFrame({"bin": bins.to_numpy(), "y": y, "p": p})
    g = frame.groupby("bin")
    out = pd.DataFrame(
        {
            "n": g.size(),
            "mean_predicted": g["p"].mean(),
            "observed_rate": g["y"].mean(),
            "expected_fires": g["p"].sum(),
            "observed_fires": g["y"].sum(),
        }
    )
    out.index.name = "bin"
    return out


def evaluate(
    model: FireRiskModel,
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    n_repeats: int = 5,
    random_state: int = 0,
) -> ModelEvaluation:
    """Validate a fitted model on the held-out later years.

    Parameters
    ----------
    model : a fitted FireRiskModel (or any fitted classifier with predict_proba)
    train, test : the two parts of :func:`time_split`
    n_repeats : permutations per feature for the importance (on at most 50,000 test rows)

    Returns
    -------
    ModelEvaluation
    """
    cols = feature_columns(test)
    y = test["had_fire"].to_numpy()
    p = model.predict_proba(test[cols])[:, 1]
    if len(np.unique(y)) < 2:
        raise InputError(
            "the test years hold no fire (or only fires): cannot validate", file="incidents"
        )
    rate = float(train["had_fire"].mean())
    imp = _importances(model, test[cols], y, n_repeats=n_repeats, random_state=random_state)
    return ModelEvaluation(
        train_years=sorted(int(v) for v in train["year"].unique()),
        test_years=sorted(int(v) for v in test["year"].unique()),
        n_train=len(train),
        n_test=len(test),
        fires_train=int(train["had_fire"].sum()),
        fires_test=int(y.sum()),
        auc=float(roc_auc_score(y, p)),
        top10_share=top_share(test, p, 0.10),
        top20_share=top_share(test, p, 0.20),
        brier=float(brier_score_loss(y, p)),
        brier_reference=float(brier_score_loss(y, np.full(len(y), rate))),
        expected_fires=float(p.sum()),
        observed_fires=int(y.sum()),
        calibration=calibration_table(y, p),
        importances=imp,
    )


def _importances(
    model: FireRiskModel, x: pd.DataFrame, y: np.ndarray, *, n_repeats: int, random_state: int
) -> pd.DataFrame:
    """Permutation importance (ROC AUC) of each feature on the test years, largest first, with
    the logistic coefficient per standard deviation when the model has one."""
    perm = permutation_importance(
        model,
        x,
        y,
        scoring="roc_auc",
        n_repeats=n_repeats,
        random_state=random_state,
        # City-sized test sets: a random 50,000 building-years per repeat rank features as well.
        max_samples=min(1.0, _PERM_MAX_ROWS / len(y)),
    )
    cols = list(x.columns)
    imp = pd.DataFrame(
        {"perm_importance": perm.importances_mean, "perm_std": perm.importances_std}, index=cols
    )
    coef = model.coefficients() if hasattr(model, "coefficients") else None
    if coef is not None:
        imp["coef_per_sd"] = coef.reindex(cols).to_numpy()
    imp = imp.sort_values("perm_importance", ascending=False)
    imp.index.name = "feature"
    return imp


def make_model(params: ModelParams | None = None) -> FireRiskModel:
    """A FireRiskModel configured from ``[risk.model]``."""
    p = params or ModelParams()
    return FireRiskModel(estimator=p.estimator, C=p.C, random_state=p.random_state)


def fit_and_evaluate(
    table: pd.DataFrame, *, params: ModelParams | None = None
) -> tuple[FireRiskModel, ModelEvaluation]:
    """Fit on the earlier years of a training table and validate on the later ones.

    Returns
    -------
    (model fitted on the training years, its evaluation on the test years)

    Raises
    ------
    InputError
        Fewer than ``params.min_fires`` fires in the training years.
    """
    p = params or ModelParams()
    train, test = time_split(table, test_years=p.test_years)
    n_fires = int(train["had_fire"].sum())
    if n_fires < p.min_fires:
        raise InputError(
            f"only {n_fires} building-years with a fire in the training years "
            f"{sorted(train['year'].unique())}: need at least {p.min_fires} to fit a model",
            file="incidents",
        )
    cols = feature_columns(table)
    model = make_model(p).fit(train[cols], train["had_fire"])
    return model, evaluate(model, train, test, random_state=p.random_state)
