"""Parameters of the risk step: frozen dataclasses mapping the config's ``[risk]`` section.

Each default names its source. Where a figure is FireGrid's own assumption rather than a
standard or plan figure it says so: those are the knobs a user's plan should set.

The response targets and the hydrant protection radius the index scores against are not set
here: they are the ``[access]`` targets and the ``[water]`` radius, the same objects the access
and water steps use (:meth:`RiskParams.using`), so each is set in one place.

The TOML layout is::

    [risk]                  # RiskParams: high_risk_grade
    [risk.features]         # FeatureParams
    [risk.weights]          # index weights, one key per factor (see FACTORS)
    [risk.hazards]          # HazardParams: deadlines, escalation, hazard weights
    [risk.grading]          # GradingParams
    [risk.model]            # ModelParams
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Self

from firegrid.spatial import columns
from firegrid.spatial.errors import ConfigError
from firegrid.spatial.io.buildings import OLD_BUILT_BY
from firegrid.spatial.io.layers import BUILDING_USES
from firegrid.spatial.network.profiles import AccessParams
from firegrid.spatial.params import params_from_mapping
from firegrid.spatial.water.params import WaterParams

# The risk factors of the index, in display order: the keys of the column registry's factor
# labels, so the factors and their labels are listed once. Each has a score in [0, 1]
# (``s_<factor>``) and a contribution to the 0–100 index (``c_<factor>``).
FACTORS: tuple[str, ...] = tuple(columns.FACTOR_LABELS["en"])

# Default weights. Only their ratios matter (the index divides by the sum of the weights of the
# assessed factors). They are FireGrid's expert defaults, set from what the national fire
# statistics and the community fire-safety plans single out, not from a standard:
# - wiring and indoor e-bikes weigh 1.5: electrical faults are the largest single cause of fires
#   in China's annual fire statistics (about a third of fires), and e-bike battery fires indoors
#   and in stairwells are the lead target of the 2021–2024 national e-bike campaigns;
# - open and overdue hazards weigh 2: they are the dynamic part the grid inspectors act on
#   (GB 35181-2017 lists major-hazard criteria; the ledger weights major > general);
# - old blocks, wooden stairs, group rental, elderly living alone, use class, age, the 3/5-minute
#   response shortfalls and water deficiency weigh 1: the headline items of old-residential
#   (老旧小区) fire-safety renovation and of the "1-3-5 minute" response target;
# - high-rise and number of residents weigh 0.5: they raise consequences more than likelihood.
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "age": 1.0,
        "old_residential": 1.0,
        "wood_stairs": 1.0,
        "wiring": 1.5,
        "high_rise": 0.5,
        "use": 1.0,
        "ebike_indoor": 1.5,
        "group_rental": 1.0,
        "elderly_alone": 1.0,
        "residents": 0.5,
        "hazards": 2.0,
        "shortfall_3min": 1.0,
        "shortfall_5min": 1.0,
        "water": 1.0,
    }
)

# Fire-load / occupancy severity of a building use, 0–1 (FireGrid assumption, ordered after the
# use classes singled out in the plans: "three-in-one" places where people sleep above goods and
# a business are the deadliest small fires; underground spaces are hard to escape and to fight;
# warehouses hold a high fire load; street shops mix load and residents above).
DEFAULT_USE_SEVERITY: Mapping[str, float] = MappingProxyType(
    {
        "three_in_one": 1.0,
        "underground": 0.8,
        "warehouse": 0.7,
        "shop": 0.6,
        "industrial": 0.5,
        "public": 0.4,
        "residential": 0.3,
        "office": 0.2,
        "other": 0.3,
    }
)

# Score of the wiring condition (aged wiring is a named item of old-residential renovation).
DEFAULT_WIRING_SCORE: Mapping[str, float] = MappingProxyType(
    {"good": 0.0, "fair": 0.5, "aged": 1.0}
)


def _check_mapping(name: str, value: Mapping[str, float], allowed: tuple[str, ...]) -> Mapping:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"{name} has unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    for key, v in value.items():
        if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
            raise ConfigError(f"{name}.{key} must be a number >= 0, not {v!r}")
    return MappingProxyType(dict(value))


# Keys FeatureParams reads from another section's parameters, and where each is set.
_SET_ELSEWHERE = {
    "target_3min_s": "[access] target_micro_s",
    "target_5min_s": "[access] target_fire_s",
    "hydrant_radius_m": "[water] hydrant_radius_m",
    "access": "the [access] section",
    "water": "the [water] section",
}


@dataclass(frozen=True)
class FeatureParams:
    """How building attributes become risk factor scores in [0, 1].

    Attributes
    ----------
    old_built_up_to : int
        A residential building built in or before this year is "old residential"
        (:func:`firegrid.spatial.io.buildings.is_old_residential`). Source: 国办发〔2020〕23号 (State Council
        guideline on renovating old urban residential blocks) targets blocks "built before the
        end of 2000".
    high_rise_residential_m, high_rise_other_m : float
        Height above which a building is high-rise, metres: residential > 27 m, other (public)
        > 24 m. Source: GB 50016-2014 (2018 ed.) §5.1.1.
    storey_height_m : float
        Metres per storey, to derive a missing height from floors and back. Source: typical
        residential storey height (GB 50096-2011 recommends 2.8 m; older blocks
        and shops run higher).
    age_low_years, age_high_years : float
        Age score rises linearly from 0 at ``age_low_years`` to 1 at ``age_high_years``
        (FireGrid assumption: wiring, stairs and compartmentation degrade over decades).
    elderly_cap : float
        Elderly residents living alone at which that score saturates at 1 (assumption).
    residents_cap : float
        Residents at which the exposure score saturates; the score grows with log(1 + residents)
        (assumption: consequences grow sub-linearly with occupancy).
    hazard_scale : float
        Hazard score = 1 − exp(−load / hazard_scale), load being the ledger's weighted count of
        unrectified hazards; strictly increasing, so every extra or overdue hazard raises it.
        With the default 2, one general open hazard scores 0.39, one major 0.78 (assumption).
    use_severity : mapping use → score
        Per-use occupancy/fire-load score, see DEFAULT_USE_SEVERITY.
    wiring_score : mapping wiring_condition → score
        good 0, fair 0.5, aged 1.
    access : AccessParams
        The access step's parameters (the config's ``[access]``), read for the response
        targets: :attr:`target_3min_s` is its ``target_micro_s``, :attr:`target_5min_s` its
        ``target_fire_s``. Not a ``[risk.features]`` key: the config passes its ``[access]``.
    water : WaterParams
        The water step's parameters (the config's ``[water]``), read for
        :attr:`hydrant_radius_m`. Not a ``[risk.features]`` key: the config passes its
        ``[water]``.
    """

    old_built_up_to: int = OLD_BUILT_BY
    high_rise_residential_m: float = 27.0
    high_rise_other_m: float = 24.0
    storey_height_m: float = 3.0
    age_low_years: float = 10.0
    age_high_years: float = 50.0
    elderly_cap: float = 5.0
    residents_cap: float = 300.0
    hazard_scale: float = 2.0
    use_severity: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_USE_SEVERITY))
    wiring_score: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WIRING_SCORE))
    # Set from the [access] and [water] sections (RiskParams.using), not from [risk.features].
    access: AccessParams = field(default_factory=AccessParams, metadata={"config": False})
    water: WaterParams = field(default_factory=WaterParams, metadata={"config": False})

    @property
    def target_3min_s(self) -> float:
        """Micro-station response target, seconds: ``[access] target_micro_s`` (180).

        The shortfall score is shortfall / target, capped at 1; a building no station reaches
        scores 1.
        """
        return self.access.target_micro_s

    @property
    def target_5min_s(self) -> float:
        """Fire-station response target, seconds: ``[access] target_fire_s`` (300)."""
        return self.access.target_fire_s

    @property
    def hydrant_radius_m(self) -> float:
        """Protection radius of an outdoor hydrant, metres: ``[water] hydrant_radius_m`` (150).

        Used only when ``water_deficient`` is absent but ``d_hydrant_net_m`` is present.
        """
        return self.water.hydrant_radius_m

    def __post_init__(self) -> None:
        severity = {**DEFAULT_USE_SEVERITY, **dict(self.use_severity)}
        object.__setattr__(
            self, "use_severity", _check_mapping("use_severity", severity, BUILDING_USES)
        )
        wiring = {**DEFAULT_WIRING_SCORE, **dict(self.wiring_score)}
        object.__setattr__(
            self, "wiring_score", _check_mapping("wiring_score", wiring, ("good", "fair", "aged"))
        )
        if any(v > 1 for v in (*self.use_severity.values(), *self.wiring_score.values())):
            raise ConfigError("use_severity and wiring_score values must lie in [0, 1]")
        if not self.age_high_years > self.age_low_years >= 0:
            raise ConfigError("age_high_years must exceed age_low_years (both >= 0)")
        if not 1800 <= self.old_built_up_to <= 2100:
            raise ConfigError(
                f"old_built_up_to must be a year from 1800 to 2100, not {self.old_built_up_to!r}"
            )
        for name in (
            "storey_height_m",
            "elderly_cap",
            "residents_cap",
            "hazard_scale",
            "high_rise_residential_m",
            "high_rise_other_m",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, not {getattr(self, name)!r}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[risk.features]`` table; ConfigError names an unknown key.

        A key that moved to another section (``target_3min_s`` → ``[access] target_micro_s``
        …) stops with a message naming where it lives now.
        """
        # A table that is no mapping is params_from_mapping's to refuse, in its words.
        for key in d if isinstance(d, Mapping) else ():
            if isinstance(key, str) and key in _SET_ELSEWHERE:
                raise ConfigError(
                    f"[risk.features] {key} is not set here: set {_SET_ELSEWHERE[key]} "
                    "(the risk index reads the value the access and water steps use)"
                )
        return params_from_mapping(cls, d, section="risk.features")


@dataclass(frozen=True)
class HazardParams:
    """The hazard ledger: rectification deadlines, escalation and weight in the index.

    Escalation rule (levels 1 inspector 网格员 → 2 grid head 网格长 → 3 subdistrict 街道 →
    4 district 区): an unrectified hazard starts at its category's ``*_start_level``; each
    threshold in ``*_escalate_days`` that its days overdue *exceed* raises it one level, capped
    at 4. A rectified hazard has level 0 and stops counting.

    Sources. The shape of the rule follows the plans and the law: hazards that cannot be fixed
    on the spot get a rectification deadline set by how hard they are to fix (《消防监督检查规定》,
    MPS order 120); grid cases not disposed of in time are escalated for supervision up the
    "district – subdistrict – workstation – residents' area" chain of Shanghai's urban grid
    management (《上海市城市网格化管理办法》, Shanghai government order 2013 No. 4, and the
    districts' 超时督办 practice); a major hazard is reported in writing to the people's
    government (Fire Protection Law art. 55), hence major hazards start higher and reach the
    district soon after their deadline. The day counts are FireGrid defaults, not statutory
    figures: set them from your own plan.

    Attributes
    ----------
    general_period_days, major_period_days : int
        Deadline used when a hazard has none: ``found_on`` + this many days (assumption:
        15 days for general hazards, 60 for major ones, which often need works or funding).
    general_start_level, major_start_level : int
        Level (1–4) an unrectified hazard is held at before its deadline: general hazards by the
        grid inspector (1), major hazards by the grid head, who reports them on (2).
    general_escalate_days, major_escalate_days : tuple of int
        Days-overdue thresholds; exceeding each raises one level. General (0, 7, 30): overdue
        1–7 days → grid head, 8–30 → subdistrict, > 30 → district. Major (0, 7): overdue 1–7
        days → subdistrict, > 7 → district.
    general_weight, major_weight : float
        Weight of one unrectified hazard in the building's hazard load (GB 35181-2017 major
        fire hazards: assumption 3 × a general one).
    overdue_step : float
        Each escalation level above the start adds this share of the hazard's weight: an
        overdue hazard counts more, and more the longer it stays overdue.
    snap_m : float
        A hazard without a (known) ``building_id`` is attached to the nearest building within
        this many metres (assumption: inspectors record the point at the door).
    """

    general_period_days: int = 15
    major_period_days: int = 60
    general_start_level: int = 1
    major_start_level: int = 2
    general_escalate_days: tuple[int, ...] = (0, 7, 30)
    major_escalate_days: tuple[int, ...] = (0, 7)
    general_weight: float = 1.0
    major_weight: float = 3.0
    overdue_step: float = 0.5
    snap_m: float = 10.0

    def __post_init__(self) -> None:
        for cat in ("general", "major"):
            start = getattr(self, f"{cat}_start_level")
            if start not in (1, 2, 3, 4):
                raise ConfigError(f"{cat}_start_level must be 1, 2, 3 or 4, not {start!r}")
            steps = tuple(int(v) for v in getattr(self, f"{cat}_escalate_days"))
            if any(b <= a for a, b in zip(steps, steps[1:], strict=False)) or any(
                v < 0 for v in steps
            ):
                raise ConfigError(f"{cat}_escalate_days must be increasing and >= 0: {steps}")
            object.__setattr__(self, f"{cat}_escalate_days", steps)
            if getattr(self, f"{cat}_period_days") < 0 or getattr(self, f"{cat}_weight") < 0:
                raise ConfigError(f"{cat}_period_days and {cat}_weight must be >= 0")
        if self.overdue_step < 0 or self.snap_m < 0:
            raise ConfigError("overdue_step and snap_m must be >= 0")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[risk.hazards]`` table; ConfigError names an unknown key."""
        return params_from_mapping(cls, d, section="risk.hazards")


@dataclass(frozen=True)
class GradingParams:
    """Four risk grades: 1 重大/red, 2 较大/orange, 3 一般/yellow, 4 低/blue.

    Attributes
    ----------
    method : {"thresholds", "quantiles"}
        Fixed index thresholds (comparable across districts and over time: the default) or
        shares of the district (a fixed share of buildings in each grade, "differentiated
        supervision" by rank).
    thresholds : tuple of 3 floats
        Lower index bounds of grades 1, 2, 3 (descending); below the last is grade 4.
        FireGrid defaults 60 / 45 / 30 (assumption, set so that an old residential block with
        aged wiring, indoor e-bikes and an open hazard reaches grade 1).
    top_shares : tuple of 3 floats
        For ``quantiles``: cumulative shares of the highest-index buildings in grades 1, ≤2,
        ≤3 (default 5 %, 20 %, 50 %, assumption).
    grid_stat : str
        Roll-up column a grid is graded on (default ``risk_index_mean``).
    grid_thresholds : tuple of 3 floats
        Thresholds for grids with ``method = "thresholds"``; a mean is lower than its worst
        members, so the defaults are lower: 45 / 35 / 25 (assumption).
    """

    method: str = "thresholds"
    thresholds: tuple[float, float, float] = (60.0, 45.0, 30.0)
    top_shares: tuple[float, float, float] = (0.05, 0.20, 0.50)
    grid_stat: str = "risk_index_mean"
    grid_thresholds: tuple[float, float, float] = (45.0, 35.0, 25.0)

    def __post_init__(self) -> None:
        if self.method not in ("thresholds", "quantiles"):
            raise ConfigError(f"method must be 'thresholds' or 'quantiles', not {self.method!r}")
        for name in ("thresholds", "grid_thresholds"):
            t = tuple(float(v) for v in getattr(self, name))
            if len(t) != 3 or not t[0] > t[1] > t[2]:
                raise ConfigError(f"{name} must be three descending numbers, not {t}")
            object.__setattr__(self, name, t)
        s = tuple(float(v) for v in self.top_shares)
        if len(s) != 3 or not 0 < s[0] < s[1] < s[2] < 1:
            raise ConfigError(f"top_shares must be three increasing shares in (0, 1), not {s}")
        object.__setattr__(self, "top_shares", s)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[risk.grading]`` table; ConfigError names an unknown key."""
        return params_from_mapping(cls, d, section="risk.grading")


@dataclass(frozen=True)
class ModelParams:
    """The incident-trained model.

    Attributes
    ----------
    estimator : {"logistic", "boosting"}
        L2-regularised logistic regression on standardised features (default: with a few
        hundred fires it generalises as well as boosting and its coefficients read directly),
        or scikit-learn's HistGradientBoostingClassifier for larger incident records.
    C : float
        Inverse regularisation strength of the logistic regression.
    test_years : int or None
        Number of latest complete years held out for validation; None = a third of the years
        (at least one).
    snap_m : float
        An incident without a ``building_id`` is attached to the nearest building within this
        many metres (assumption: geocoded addresses land on or beside the building).
    min_fires : int
        Fewest building-years with a fire needed in the training years to fit a model.
    use_hazards : bool
        Also feed the hazard counts (ledger read on 1 January of each year) to the model.
        Off by default: ledgers rarely reach back over the training years, and a feature that
        is nearly always zero in training but not today makes the fitted model extrapolate
        wildly (on the demo, whose ledger starts in 2024, it pushed buildings with an open
        hazard to near-zero probabilities). The index counts hazards either way.
    random_state : int
        Seed of the boosting and of the permutation importance.
    """

    estimator: str = "logistic"
    C: float = 1.0
    test_years: int | None = None
    snap_m: float = 30.0
    min_fires: int = 20
    use_hazards: bool = False
    random_state: int = 0

    def __post_init__(self) -> None:
        if self.estimator not in ("logistic", "boosting"):
            raise ConfigError(f"estimator must be 'logistic' or 'boosting', not {self.estimator!r}")
        if not self.C > 0:
            raise ConfigError(f"C must be > 0, not {self.C!r}")
        if self.test_years is not None and self.test_years < 1:
            raise ConfigError(f"test_years must be >= 1, not {self.test_years!r}")
        if self.snap_m < 0 or self.min_fires < 1:
            raise ConfigError("snap_m must be >= 0 and min_fires >= 1")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[risk.model]`` table; ConfigError names an unknown key."""
        return params_from_mapping(cls, d, section="risk.model")


def check_weights(weights: Mapping[str, float]) -> Mapping[str, float]:
    """Complete ``weights`` with the defaults and check them (every factor, each >= 0)."""
    merged = {**DEFAULT_WEIGHTS, **dict(weights)}
    return _check_mapping("risk.weights", merged, FACTORS)


@dataclass(frozen=True)
class RiskParams:
    """All parameters of the risk step (the config's ``[risk]`` section).

    Attributes
    ----------
    features, hazards, grading, model : the sub-parameters (see their classes).
    weights : mapping factor → weight
        Index weights; factors left out keep DEFAULT_WEIGHTS. A weight of 0 drops a factor.
    high_risk_grade : int
        A building of this grade or worse counts as high-risk in the grid roll-up (default 2:
        重大 and 较大, the grades the plans put under key supervision).
    """

    features: FeatureParams = field(default_factory=FeatureParams)
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    hazards: HazardParams = field(default_factory=HazardParams)
    grading: GradingParams = field(default_factory=GradingParams)
    model: ModelParams = field(default_factory=ModelParams)
    high_risk_grade: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", check_weights(self.weights))
        if self.high_risk_grade not in (1, 2, 3, 4):
            raise ConfigError(f"high_risk_grade must be 1–4, not {self.high_risk_grade!r}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the config's ``[risk]`` table (with optional sub-tables).

        Raises
        ------
        ConfigError
            Naming an unknown key at any level, or a value out of range.
        """
        d = dict(d or {})
        for key, sub in (
            ("features", FeatureParams),
            ("hazards", HazardParams),
            ("grading", GradingParams),
            ("model", ModelParams),
        ):
            if key in d:
                d[key] = sub.from_mapping(d[key])
        return params_from_mapping(cls, d, section="risk")

    def using(
        self, *, access: AccessParams | None = None, water: WaterParams | None = None
    ) -> Self:
        """These parameters scoring against the given access targets and hydrant radius.

        The config calls this with its ``[access]`` and ``[water]`` parameters, so the risk
        index reads the very values the access and water steps use.
        """
        features = replace(
            self.features,
            access=access if access is not None else self.features.access,
            water=water if water is not None else self.features.water,
        )
        return replace(self, features=features)
