"""The whole risk step in one call: ledger → features → index → grades → model → grid roll-up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from firegrid.risk.features import IMPUTED_ATTRIBUTES, ImputationReport, building_features
from firegrid.risk.grading import GRADE_LABELS, grade_buildings, grade_grids
from firegrid.risk.hazards import escalation_summary, hazard_ledger
from firegrid.risk.index import factor_scores, risk_index, top_factors
from firegrid.risk.model import (
    FireRiskModel,
    ModelEvaluation,
    feature_columns,
    fit_and_evaluate,
    make_model,
    model_matrix,
    training_table,
)
from firegrid.risk.params import FACTORS, RiskParams
from firegrid.risk.rollup import rollup
from firegrid.risk.values import as_timestamp
from firegrid.spatial.errors import InputError
from firegrid.spatial.io.crs import require_projected, require_same_crs
from firegrid.spatial.io.grids import MAX_LEVELS, AssignmentReport, assign_grids

# Feature columns copied onto the scored buildings (the rest stay in RiskResult.features).
_KEPT_FEATURES = ("age_years", "old_residential", "high_rise", "hazards_open", "hazards_overdue")
_OUTPUT_COLUMNS = set(_KEPT_FEATURES) | {
    "risk_index",
    "risk_grade",
    "risk_grade_label",
    "top_factors",
    "p_fire",
}
_OUTPUT_COLUMNS |= {f"grid_id_l{level}" for level in range(1, MAX_LEVELS + 1)}
_OUTPUT_COLUMNS |= {f"{k}_{f}" for k in ("s", "c") for f in FACTORS}
_OUTPUT_COLUMNS |= {f"imputed_{a}" for a in IMPUTED_ATTRIBUTES}


@dataclass
class RiskResult:
    """Everything the risk step produces.

    Attributes
    ----------
    buildings : GeoDataFrame
        Input buildings plus ``age_years``, ``old_residential``, ``high_rise``,
        ``hazards_open``, ``hazards_overdue``, ``imputed_<attr>`` flags, ``s_<factor>``
        scores (0–1), ``c_<factor>`` contributions, ``risk_index`` (0–100), ``top_factors``,
        ``risk_grade`` (1–4), ``risk_grade_label``, ``p_fire`` (when a model was fitted) and
        ``grid_id_l1``, ``grid_id_l2`` … one per grid level (when grids were given).
    grids : GeoDataFrame or None
        Grids with the roll-up (see :func:`firegrid.risk.rollup.rollup`) and their grade.
    hazards : GeoDataFrame or None
        The hazard ledger (see :func:`firegrid.risk.hazards.hazard_ledger`).
    escalation : DataFrame or None
        Unrectified hazards per escalation level and category.
    features : DataFrame
        All building features after imputation (the model's inputs come from these).
    report : ImputationReport
        What was imputed and which factors were not assessed.
    assignment : AssignmentReport or None
        How buildings were placed in grid cells.
    model : FireRiskModel or None
        Fitted on all complete years (used for ``p_fire``).
    evaluation : ModelEvaluation or None
        Time-split validation of the same model specification.
    model_note : str
        Why no model was fitted, when none was.
    """

    buildings: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame | None
    hazards: gpd.GeoDataFrame | None
    escalation: pd.DataFrame | None
    features: pd.DataFrame
    report: ImputationReport
    assignment: AssignmentReport | None
    model: FireRiskModel | None
    evaluation: ModelEvaluation | None
    params: RiskParams
    as_of: pd.Timestamp
    model_note: str = ""
    assessed_factors: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        """Headline figures of the risk step, for the run summary."""
        b = self.buildings
        counts = b["risk_grade"].value_counts().reindex([1, 2, 3, 4], fill_value=0)
        lines = [
            f"risk as of {self.as_of.date()}: {len(b)} buildings, index mean "
            f"{b['risk_index'].mean():.1f}, max {b['risk_index'].max():.1f}",
            "grades: " + ", ".join(f"{GRADE_LABELS[g]} {counts[g]}" for g in (1, 2, 3, 4)),
            "factors assessed: " + ", ".join(self.assessed_factors),
        ]
        lines += self.report.lines()
        if self.hazards is not None:
            st = self.hazards["status"].value_counts()
            n_open, n_over = int(st.get("open", 0)), int(st.get("overdue", 0))
            lines.append(
                f"hazards: {n_open + n_over} unrectified ({n_over} overdue), "
                f"{int(st.get('rectified', 0))} rectified"
            )
        if self.assignment is not None:
            lines += self.assignment.lines()
        if self.evaluation is not None:
            lines += self.evaluation.lines()
        elif self.model_note:
            lines.append(f"fire model: {self.model_note}")
        return lines


def score_district(
    buildings: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame | None = None,
    hazards: gpd.GeoDataFrame | None = None,
    incidents: gpd.GeoDataFrame | None = None,
    *,
    as_of: str | dt.date | pd.Timestamp,
    params: RiskParams | None = None,
    cells: pd.DataFrame | None = None,
) -> RiskResult:
    """Run the risk step of the pipeline.

    Parameters
    ----------
    buildings : GeoDataFrame
        Buildings in the district's projected metric CRS, canonical attributes plus the access
        and water columns when those steps have run (absent ones are reported not assessed).
    grids : GeoDataFrame, optional
        Grid cells of levels 1–3, same CRS; when given, every level is rolled up and graded.
    hazards : GeoDataFrame, optional
        Hazard layer, same CRS; read into a ledger on ``as_of``.
    incidents : GeoDataFrame, optional
        Fire incidents, same CRS; when present with enough fires, a model is validated on a
        time split and refitted on all years to give ``p_fire``.
    as_of : date
        The date the district is scored on (explicit; never today's date implicitly).
    params : RiskParams, optional
        The config's ``[risk]`` section (its features read the ``[access]`` targets and the
        ``[water]`` radius, see :meth:`RiskParams.using`).
    cells : DataFrame, optional
        The building → grid cell table of :func:`firegrid.spatial.io.grids.assign_grids`
        for these buildings and ``grids``, when the run has computed it once already; then
        ``RiskResult.assignment`` is None (the run holds that report).

    Returns
    -------
    RiskResult
    """
    p = params or RiskParams()
    as_of_ts = as_timestamp(as_of)
    _check_layers(buildings, grids=grids, hazards=hazards, incidents=incidents)
    ledger = (
        hazard_ledger(hazards, buildings, as_of=as_of_ts, params=p.hazards)
        if hazards is not None
        else None
    )
    feats, report = building_features(buildings, as_of=as_of_ts, ledger=ledger, params=p.features)
    scores = factor_scores(feats, params=p.features, not_assessed=report.not_assessed)
    contrib = risk_index(scores, weights=p.weights, not_assessed=report.not_assessed)
    out = _scored_buildings(buildings, feats, scores, contrib, p)
    model, evaluation, note = _fire_model(
        out, buildings, incidents, hazards, feats, scores, as_of=as_of_ts, params=p
    )
    grid_out, assignment = _grid_rollup(out, grids, cells, p)
    return RiskResult(
        buildings=out,
        grids=grid_out,
        hazards=ledger,
        escalation=escalation_summary(ledger) if ledger is not None else None,
        features=feats,
        report=report,
        assignment=assignment,
        model=model,
        evaluation=evaluation,
        params=p,
        as_of=as_of_ts,
        model_note=note,
        assessed_factors=list(contrib.attrs.get("assessed_factors", [])),
    )


def _check_layers(buildings: gpd.GeoDataFrame, **others: gpd.GeoDataFrame | None) -> None:
    """Every layer given is projected and in the buildings' CRS."""
    require_projected(buildings, "buildings")
    for name, layer in others.items():
        if layer is not None:
            require_projected(layer, name)
            require_same_crs(layer, buildings, name, "buildings")


def _scored_buildings(
    buildings: gpd.GeoDataFrame,
    feats: pd.DataFrame,
    scores: pd.DataFrame,
    contrib: pd.DataFrame,
    p: RiskParams,
) -> gpd.GeoDataFrame:
    """The buildings with their kept features, scores, contributions, index and grade."""
    # Re-scoring a scored layer must not keep last run's figures (e.g. a stale p_fire).
    stale = [c for c in buildings.columns if c in _OUTPUT_COLUMNS]
    out = buildings.drop(columns=stale)
    for c in _KEPT_FEATURES:
        out[c] = feats[c].to_numpy()
    for c in feats.columns:
        if c.startswith("imputed_"):
            out[c] = feats[c].to_numpy()
    for f in FACTORS:
        out[f"s_{f}"] = scores[f"s_{f}"].to_numpy()
    for f in FACTORS:
        out[f"c_{f}"] = contrib[f"c_{f}"].to_numpy()
    out["risk_index"] = contrib["risk_index"].to_numpy()
    out["top_factors"] = top_factors(contrib).to_numpy()
    return grade_buildings(out, params=p.grading)


def _fire_model(
    out: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    incidents: gpd.GeoDataFrame | None,
    hazards: gpd.GeoDataFrame | None,
    feats: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    params: RiskParams,
) -> tuple[FireRiskModel | None, ModelEvaluation | None, str]:
    """Validate and fit the incident model, adding ``p_fire`` to ``out``; or say why not."""
    if incidents is None:
        return None, None, "no incidents layer"
    p = params
    evaluation = None
    try:
        table = training_table(
            buildings,
            incidents,
            as_of=as_of,
            hazards=hazards,
            feature_params=p.features,
            hazard_params=p.hazards,
            model_params=p.model,
        )
        _, evaluation = fit_and_evaluate(table, params=p.model)
        cols = feature_columns(table)
        # The forecast uses every complete year; the evaluation above is its honest estimate.
        model = make_model(p.model).fit(table[cols], table["had_fire"])
        x_now = model_matrix(feats, scores).reindex(columns=cols)
        out["p_fire"] = model.predict_proba(x_now)[:, 1]
    except InputError as exc:
        return None, evaluation, f"not fitted: {exc}"
    return model, evaluation, ""


def _grid_rollup(
    out: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame | None,
    cells: pd.DataFrame | None,
    p: RiskParams,
) -> tuple[gpd.GeoDataFrame | None, AssignmentReport | None]:
    """Each building's grid cells onto ``out``, and the graded roll-up of every grid level."""
    if grids is None:
        return None, None
    assignment = None
    if cells is None:
        cells, assignment = assign_grids(out, grids)
    for c in cells.columns:
        out[c] = cells[c].to_numpy()
    grid_out, _ = rollup(out, grids, high_risk_grade=p.high_risk_grade, cells=cells)
    return grade_grids(grid_out, params=p.grading), assignment
