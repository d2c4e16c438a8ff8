"""Parameters of the water-supply analysis (the config's ``[water]`` section) and the street
classes it checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from firegrid.spatial.errors import ConfigError
from firegrid.spatial.network.profiles import PROFILE_NAMES
from firegrid.spatial.params import (
    MAX_LENGTH_M,
    MAX_TIME_LIMIT_S,
    MIN_SPACING_M,
    params_from_mapping,
)

# Streets along which GB 50974 §7.2.5 hydrant spacing is checked: municipal streets (市政道路).
# Service roads (compound lanes, parking aisles), footways and grade-separated expressways are
# left out: hydrants are not laid along them at street spacing (planning reading of §7.2.4-7.2.5).
SPACING_HIGHWAYS: tuple[str, ...] = (
    "trunk", "primary", "secondary", "tertiary", "primary_link", "secondary_link",
    "tertiary_link", "unclassified", "residential", "living_street", "road", "busway",
)  # fmt: skip
# Where new hydrants may go: the streets above plus service roads (compound lanes an engine can
# reach, GB 50974 §7.2.6 "where engines can easily approach").
CANDIDATE_HIGHWAYS: tuple[str, ...] = SPACING_HIGHWAYS + ("service",)


@dataclass(frozen=True)
class WaterParams:
    """Parameters of the water-supply analysis: the config's ``[water]`` section.

    Parameters
    ----------
    hydrant_radius_m : float
        Protection radius of a working hydrant along streets (metres): 150, GB 50974-2014 §7.2.5
        (municipal) and §7.3.2 (outdoor hydrants).
    hydrant_spacing_m : float
        Largest distance between consecutive hydrants along a street (metres): 120,
        GB 50974-2014 §7.2.5.
    source_radius_m : float
        Protection radius of a usable water-source intake along streets (metres): 150,
        GB 50974-2014 §6.1.5 item 1 (each intake counts as one outdoor hydrant, radius ≤ 150 m).
    min_source_capacity_m3 : float
        A fire pool or tank holding less than this (m³) does not count: 50, GB 50974-2014 §4.3.4
        (smallest effective volume of a pool serving hydrants only).
    count_unknown_capacity : bool
        Whether a fire pool or tank whose capacity is not recorded counts (True: it was built
        for fire water; its capacity is then reported as missing).
    hose_profile : str
        Vehicle profile whose streets a hose may follow (``"foot"``: every way but motorways;
        :func:`firegrid.spatial.network.profiles.default_profile`). Distances are metres, both directions.
    hydrant_snap_warn_m : float
        Warn about a hydrant or intake farther than this (metres) from every street: 50
        (assumption; GB 50974 §7.2.6 puts hydrants 0.5-2 m from the road edge, so a larger
        distance points at a wrong coordinate).
    street_snap_m : float
        A hydrant within this distance (metres) of a spacing street's centre line stands on that
        street for the spacing check: 40 (assumption: half of a 60 m-wide road plus 2 m of
        kerb, §7.2.4/§7.2.6).
    street_facing_m : float
        A hose may leave a building (or reach a hydrant or intake) from every street whose
        centre line lies within this distance (metres) of its outline, not only from the
        nearest one; the shortest hose counts (:func:`firegrid.spatial.water.hose.street_starts`): 20 (assumption: half of
        a 40 m-wide road, so a building fronting a street reaches its centre line). The nearest
        street always counts, however far.
    built_up_m : float
        A street lies in the built-up area when a building is within this distance (metres):
        50 (assumption: frontage depth of a street block).
    spacing_highways : tuple[str, ...]
        OSM ``highway`` classes checked for hydrant spacing (municipal streets, see
        ``SPACING_HIGHWAYS``).
    zone_buffer_m : float
        Water-deficient zones are the uncovered buildings grown by this (metres): 20
        (assumption: half a typical building spacing, so neighbours merge into one zone).
    zone_close_m : float
        Gaps narrower than twice this (metres) between zone parts are closed: 10 (assumption).
    candidate_spacing_m : float
        Candidate sites for new hydrants every this many metres along candidate streets, plus
        every intersection: 50 (assumption; well under the 120 m spacing).
    candidate_highways : tuple[str, ...]
        OSM ``highway`` classes where a new hydrant may stand (``CANDIDATE_HIGHWAYS``).
    siting_method : str
        ``"auto"`` (MILP with HiGHS unless very large), ``"exact"`` or ``"greedy"``.
    time_limit_s : float
        Wall-clock limit of the MILP (seconds): 60.
    max_new_hydrants : int
        Budget of new hydrants for a maximal-coverage run besides the full cover; 0: none.
    score_full_ratio : float
        The building deficiency score reaches 1 at this multiple of the protection radius
        (2: 300 m), see :func:`firegrid.spatial.water.coverage.deficiency_score`.
    """

    hydrant_radius_m: float = 150.0
    hydrant_spacing_m: float = 120.0
    source_radius_m: float = 150.0
    min_source_capacity_m3: float = 50.0
    count_unknown_capacity: bool = True
    hose_profile: str = "foot"
    hydrant_snap_warn_m: float = 50.0
    street_snap_m: float = 40.0
    street_facing_m: float = 20.0
    built_up_m: float = 50.0
    spacing_highways: tuple[str, ...] = SPACING_HIGHWAYS
    zone_buffer_m: float = 20.0
    zone_close_m: float = 10.0
    candidate_spacing_m: float = 50.0
    candidate_highways: tuple[str, ...] = CANDIDATE_HIGHWAYS
    siting_method: str = "auto"
    time_limit_s: float = 60.0
    max_new_hydrants: int = 0
    score_full_ratio: float = 2.0

    def __post_init__(self) -> None:
        for key in ("hydrant_radius_m", "hydrant_spacing_m", "source_radius_m",
                    "zone_buffer_m"):  # fmt: skip
            if not 0 < getattr(self, key) <= MAX_LENGTH_M:
                raise ConfigError(
                    f"[water] {key} must be > 0 and at most {MAX_LENGTH_M:g}, "
                    f"got {getattr(self, key)!r}"
                )
        if not 0 < self.time_limit_s <= MAX_TIME_LIMIT_S:
            raise ConfigError(
                f"[water] time_limit_s must be > 0 and at most {MAX_TIME_LIMIT_S:g}, "
                f"got {self.time_limit_s!r}"
            )
        # Below a few metres the candidate points along streets would outnumber memory.
        if not MIN_SPACING_M <= self.candidate_spacing_m <= MAX_LENGTH_M:
            raise ConfigError(
                f"[water] candidate_spacing_m must be {MIN_SPACING_M:g} to {MAX_LENGTH_M:g} m, "
                f"got {self.candidate_spacing_m!r}"
            )
        for key in ("min_source_capacity_m3", "hydrant_snap_warn_m", "street_snap_m",
                    "street_facing_m", "built_up_m", "zone_close_m", "max_new_hydrants"):  # fmt: skip
            if not getattr(self, key) >= 0:
                raise ConfigError(f"[water] {key} must be >= 0, got {getattr(self, key)!r}")
        if not self.score_full_ratio > 1:
            raise ConfigError(f"[water] score_full_ratio must be > 1, got {self.score_full_ratio}")
        if self.hose_profile not in PROFILE_NAMES:
            raise ConfigError(
                f"[water] hose_profile must be one of {list(PROFILE_NAMES)}, got "
                f"{self.hose_profile!r}"
            )
        if self.siting_method not in ("auto", "exact", "greedy"):
            raise ConfigError(
                f"[water] siting_method must be 'auto', 'exact' or 'greedy', got "
                f"{self.siting_method!r}"
            )
        for key in ("spacing_highways", "candidate_highways"):
            object.__setattr__(self, key, tuple(str(v) for v in getattr(self, key)))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[water]`` table; raises ConfigError naming an unknown or bad key."""
        return params_from_mapping(cls, d, section="water")
