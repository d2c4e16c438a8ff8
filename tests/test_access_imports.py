"""Commands without a risk step need not import scikit-learn: the risk package loads it lazily."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
import firegrid.risk as risk
from firegrid.risk import FACTORS, RiskParams, grade_values
before = 'sklearn' in sys.modules
from firegrid.risk import FireRiskModel, score_district
from firegrid.risk.model import FireRiskModel as direct
print(before, 'sklearn' in sys.modules, FireRiskModel is direct, callable(score_district),
      sorted(set(risk.__all__) - set(dir(risk)) - {'FireRiskModel', 'ModelEvaluation', 'evaluate',
      'fit_and_evaluate', 'model_matrix', 'time_split', 'training_table', 'RiskResult',
      'score_district'}))
"""


def test_the_risk_package_imports_scikit_learn_only_for_the_model():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True", "True", "[]"], out.stdout + out.stderr


def test_every_public_risk_name_resolves():
    import firegrid.risk as risk

    missing = [n for n in risk.__all__ if getattr(risk, n, None) is None]
    assert missing == []
