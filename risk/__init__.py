"""Fire-risk scoring: building features, the transparent index, grades, hazard ledger, model, roll-up."""

from typing import TYPE_CHECKING, Any

from firegrid.risk.features import ImputationReport, building_features
from firegrid.risk.grading import (
    GRADE_COLORS,
    GRADE_LABELS,
    grade_buildings,
    grade_grids,
    grade_values,
)
from firegrid.risk.hazards import escalation_summary, hazard_ledger, hazards_by_building
from firegrid.risk.index import FACTOR_LABELS, factor_scores, risk_index, top_factors
from firegrid.risk.params import (
    DEFAULT_WEIGHTS,
    FACTORS,
    FeatureParams,
    GradingParams,
    HazardParams,
    ModelParams,
    RiskParams,
)
from firegrid.risk.rollup import rollup
from firegrid.spatial.io.grids import AssignmentReport, assign_grids

if TYPE_CHECKING:  # for readers and the API reference; at run time see __getattr__ below
    from firegrid.risk.model import (
        FireRiskModel,
        ModelEvaluation,
        evaluate,
        fit_and_evaluate,
        model_matrix,
        time_split,
        training_table,
    )
    from firegrid.risk.score import RiskResult, score_district

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

# scikit-learn takes seconds to import and only the model needs it: the model and the scoring
# that fits it load on first use, so commands without a risk step (access, water) never pay.
_MODEL_NAMES = frozenset(
    ("FireRiskModel", "ModelEvaluation", "evaluate", "fit_and_evaluate", "model_matrix",
     "time_split", "training_table")
)  # fmt: skip
_SCORE_NAMES = frozenset(("RiskResult", "score_district"))


def __getattr__(name: str) -> Any:
    if name in _MODEL_NAMES:
        from firegrid.risk import model

        return getattr(model, name)
    if name in _SCORE_NAMES:
        from firegrid.risk import score

        return getattr(score, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
