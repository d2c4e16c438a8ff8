"""The transparent 0–100 building risk index: factor scores, weights and per-factor contributions.

Each factor f has a score ``s_f`` in [0, 1] that never decreases as the risk attribute worsens,
and a weight ``w_f`` >= 0. Over the set A of assessed factors,

    c_f = 100 · w_f · s_f / Σ_{g∈A} w_g        risk_index = Σ_{f∈A} c_f

so the index lies in [0, 100], the contributions add up to it exactly, and it is monotone in
every factor. Factors that are not assessed (their input is absent) get NaN contributions and
drop out of the denominator; the report says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from firegrid.risk.params import DEFAULT_WEIGHTS, FACTORS, FeatureParams, check_weights
from firegrid.spatial import columns
from firegrid.spatial.errors import ConfigError

# Human-readable names of the factors, for legends and reports: the column registry's.
FACTOR_LABELS: dict[str, str] = columns.FACTOR_LABELS["en"]


def factor_scores(
    features: pd.DataFrame,
    *,
    params: FeatureParams | None = None,
    not_assessed: Iterable[str] = (),
) -> pd.DataFrame:
    """Score every factor in [0, 1] from the features of :func:`firegrid.risk.features.building_features`.

    Parameters
    ----------
    features : DataFrame
        Output of ``building_features``.
    params : FeatureParams, optional
        Caps and targets of the score curves.
    not_assessed : iterable of str
        Factors to leave unscored (NaN), e.g. ``report.not_assessed``.

    Returns
    -------
    DataFrame indexed like ``features`` with one ``s_<factor>`` column per factor of FACTORS.
    """
    p = params or FeatureParams()
    f = features
    age = (f["age_years"] - p.age_low_years) / (p.age_high_years - p.age_low_years)
    severity = f["use"].astype(object).map(dict(p.use_severity)).astype(float)

    def shortfall(col: str, target: float) -> pd.Series:
        # NaN shortfall means no station reaches the building: the worst case.
        return (f[col] / target).clip(0, 1).where(f[col].notna(), 1.0)

    s = pd.DataFrame(
        {
            "s_age": age.clip(0, 1),
            "s_old_residential": f["old_residential"],
            "s_wood_stairs": f["wood_stairs"],
            "s_wiring": f["wiring_score"],
            "s_high_rise": f["high_rise"],
            "s_use": severity,
            "s_ebike_indoor": f["ebike_indoor"],
            "s_group_rental": f["group_rental"],
            "s_elderly_alone": (f["elderly_alone"] / p.elderly_cap).clip(0, 1),
            "s_residents": (
                np.log1p(f["residents"].clip(lower=0)) / np.log1p(p.residents_cap)
            ).clip(0, 1),
            "s_hazards": 1.0 - np.exp(-f["hazard_load"].clip(lower=0) / p.hazard_scale),
            "s_shortfall_3min": shortfall("shortfall_3min_s", p.target_3min_s),
            "s_shortfall_5min": shortfall("shortfall_5min_s", p.target_5min_s),
            "s_water": f["water_deficient"].clip(0, 1),
        },
        index=f.index,
    ).astype(float)
    for factor in not_assessed:
        if factor in FACTORS:
            s[f"s_{factor}"] = np.nan
    return s


def risk_index(
    scores: pd.DataFrame,
    *,
    weights: Mapping[str, float] | None = None,
    not_assessed: Iterable[str] = (),
) -> pd.DataFrame:
    """Weighted 0–100 index and per-factor contributions from factor scores.

    Parameters
    ----------
    scores : DataFrame
        ``s_<factor>`` columns from :func:`factor_scores` (values in [0, 1]).
    weights : mapping factor → weight, optional
        Weights >= 0; missing factors take DEFAULT_WEIGHTS.
    not_assessed : iterable of str
        Factors to leave out even if their score column holds values.

    Returns
    -------
    DataFrame indexed like ``scores`` with ``c_<factor>`` for every factor (NaN where not
    assessed) and ``risk_index`` (0–100) = the sum of the non-NaN contributions.

    Raises
    ------
    ConfigError
        If every assessed factor has weight 0.
    """
    w = check_weights(weights if weights is not None else DEFAULT_WEIGHTS)
    skip = set(not_assessed)
    assessed = [
        f
        for f in FACTORS
        if f not in skip and f"s_{f}" in scores and scores[f"s_{f}"].notna().any()
    ]
    total = sum(w[f] for f in assessed)
    if total <= 0:
        raise ConfigError(
            "every assessed risk factor has weight 0 in [risk.weights]; assessed: "
            + (", ".join(assessed) or "none")
        )
    out = pd.DataFrame(index=scores.index)
    for f in FACTORS:
        if f in assessed:
            # A per-building gap left in an assessed factor (should not happen after imputation)
            # is scored as the worst case rather than as zero risk.
            s = scores[f"s_{f}"].clip(0, 1).fillna(1.0)
            out[f"c_{f}"] = 100.0 * w[f] * s / total
        else:
            out[f"c_{f}"] = np.nan
    out["risk_index"] = out[[f"c_{f}" for f in assessed]].sum(axis=1)
    out.attrs["assessed_factors"] = assessed
    return out


def top_factors(contributions: pd.DataFrame, *, n: int = 3) -> pd.Series:
    """The ``n`` largest contributing factors of each building, as text for tooltips.

    Returns
    -------
    Series of strings like ``"wiring 12.0, ebike_indoor 10.0, hazards 8.1"``.
    """
    cols = [c for c in contributions.columns if c.startswith("c_")]
    values = contributions[cols].fillna(-1.0).to_numpy()
    order = np.argsort(-values, axis=1)[:, :n]
    names = np.array([c[2:] for c in cols])
    picked = np.take_along_axis(values, order, axis=1)
    parts = [
        pd.Series(
            np.where(
                picked[:, k] > 0, names[order[:, k]] + " " + np.char.mod("%.1f", picked[:, k]), ""
            ),
            index=contributions.index,
            dtype="string",
        )
        for k in range(order.shape[1])
    ]
    # Factors are sorted by contribution, so empty parts only trail: strip their separators.
    return parts[0].str.cat(parts[1:], sep=", ").str.replace(r"(, )+$", "", regex=True)
