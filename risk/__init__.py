"""Fire-risk scoring: building features, the transparent index, grades, hazard ledger, model, roll-up."""

from risk.features import ImputationReport, building_features
from risk.grading import GRADE_COLORS, GRADE_LABELS, grade_buildings, grade_grids, grade_values
from risk.hazards import escalation_summary, hazard_ledger, hazards_by_building
from risk.index import FACTOR_LABELS, factor_scores, risk_index, top_factors
from risk.model import (
    FireRiskModel,
    ModelEvaluation,
    evaluate,
    fit_and_evaluate,
    model_matrix,
    time_split,
    training_table,
)
from risk.params import (
    DEFAULT_WEIGHTS,
    FACTORS,
    FeatureParams,
    GradingParams,
    HazardParams,
    ModelParams,
    RiskParams,
)
from risk.rollup import rollup
from risk.score import RiskResult, score_district
from spatial.grids import AssignmentReport, assign_grids

__all__ = [
    "DEFAULT_WEIGHTS",
    "FACTORS",
    "FACTOR_LABELS",
    "GRADE_COLORS",
    "GRADE_LABELS",
    "AssignmentReport",
    "FeatureParams",
    "FireRiskModel",
    "GradingParams",
    "HazardParams",
    "ImputationReport",
    "ModelEvaluation",
    "ModelParams",
    "RiskParams",
    "RiskResult",
    "assign_grids",
    "building_features",
    "escalation_summary",
    "evaluate",
    "factor_scores",
    "fit_and_evaluate",
    "grade_buildings",
    "grade_grids",
    "grade_values",
    "hazard_ledger",
    "hazards_by_building",
    "model_matrix",
    "risk_index",
    "rollup",
    "score_district",
    "time_split",
    "top_factors",
    "training_table",
]
