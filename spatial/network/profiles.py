"""Vehicle profiles (fire engine, e-bike, foot) and the access parameters of the config `[access]`.

A profile turns an OSM way into a travel cost: which ways may be used, at what speed, whether
one-way tags bind, and a fixed delay for each intersection passed. Every default below names its
source; where no standard fixes a value, it is marked as a planning assumption so a user knows
to replace it with local figures (the config's ``[access.engine]`` etc. tables override any of
them).

Sources cited:

- 建标152-2017《城市消防站建设标准》: fire stations sited so that an engine reaches the edge of
  its district within 5 minutes of the alarm, of which about 1 minute is turnout (出动) and about
  4 minutes driving; its explanatory notes size districts for an urban engine speed of roughly
  30-35 km/h.
- 公安部消防局《微型消防站建设标准（试行）》(公消〔2015〕301号) and local plans: micro-stations
  "1 minute to respond, 3 minutes to reach the scene" (1分钟响应、3分钟到场).
- GB 17761-2018 (electric bicycles): design top speed 25 km/h.
- Pedestrian speeds: Highway Capacity Manual walking speed 1.2-1.4 m/s; a crew carrying
  equipment at a brisk walk/jog is taken as 1.5 m/s (planning assumption).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self

import numpy as np
import pandas as pd

from firegrid.spatial.errors import ConfigError
from firegrid.spatial.params import params_from_mapping

# Engine free-flow speed by OSM highway class (km/h). Planning assumption scaled to the 30-35 km/h
# urban average of 建标152-2017 once the congestion factor is applied to arterials.
ENGINE_SPEEDS_KMH: dict[str, float] = {
    "motorway": 60.0,
    "motorway_link": 40.0,
    "trunk": 50.0,
    "trunk_link": 35.0,
    "primary": 45.0,
    "primary_link": 30.0,
    "secondary": 40.0,
    "secondary_link": 30.0,
    "tertiary": 35.0,
    "tertiary_link": 25.0,
    "unclassified": 25.0,
    "residential": 20.0,
    "living_street": 10.0,
    "service": 15.0,
    "road": 20.0,
    "busway": 30.0,
    "track": 10.0,
}

# OSM way tags the rules below read, kept per edge from the edge's own way.
WAY_TAGS = (
    "highway", "service", "maxspeed", "name", "access", "vehicle", "motor_vehicle", "motorcar",
    "bicycle", "foot", "emergency", "oneway", "junction", "tunnel", "bridge", "layer", "covered",
    "construction", "area", "motorroad", "ref",
)  # fmt: skip
# Node tags kept for barrier nodes (gates follow their own access tags).
NODE_TAGS = (
    "barrier", "access", "vehicle", "motor_vehicle", "motorcar", "bicycle", "foot", "emergency",
)  # fmt: skip

# Access rules (see the README section "Road network and access rules").
#
# Which OSM highway values each responder may use: allow-lists, so a value nobody listed (a typo,
# a local value such as ``trail``) is not for engines; ``validate`` counts such values.
ENGINE_HIGHWAYS: frozenset[str] = frozenset(
    {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary",
     "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential",
     "living_street", "service", "road", "busway", "track"}
)  # fmt: skip
# Crews on e-bikes stay off grade-separated expressways (高架/快速路 are motorway in OSM China),
# steps and bus-only roads; they may push along footways and pedestrian streets.
EBIKE_HIGHWAYS: frozenset[str] = frozenset(
    {"trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link",
     "tertiary", "tertiary_link", "unclassified", "residential", "living_street", "service",
     "road", "track", "cycleway", "pedestrian", "footway", "path", "bridleway"}
)  # fmt: skip
FOOT_HIGHWAYS: frozenset[str] = EBIKE_HIGHWAYS | frozenset(
    {"steps", "corridor", "elevator", "escalator", "busway"}
)
# Every value above plus the ones no responder uses: anything else is "unknown" to validate.
CLOSED_HIGHWAYS: frozenset[str] = frozenset(
    {"construction", "proposed", "abandoned", "disused", "razed", "platform", "raceway",
     "bus_guideway", "bus_stop", "rest_area", "services", "via_ferrata", "escape"}
)  # fmt: skip
KNOWN_HIGHWAYS: frozenset[str] = ENGINE_HIGHWAYS | FOOT_HIGHWAYS | CLOSED_HIGHWAYS

# OSM access-tag hierarchy, most specific first: the first key a way (or barrier node) sets
# decides. E-bikes are non-motor vehicles (非机动车) in China: bicycle rules, not motor_vehicle.
ENGINE_ACCESS_KEYS = ("motorcar", "motor_vehicle", "vehicle", "access")
EBIKE_ACCESS_KEYS = ("bicycle", "vehicle", "access")
FOOT_ACCESS_KEYS = ("foot", "access")
# Values closing a way to a responder. destination/delivery/customers stay open: the fire is the
# destination. A user who relies on 道路交通安全法 §53 (engines on duty not bound by route
# restrictions) and on gate keys can drop "private" for engines.
ENGINE_DENIED_ACCESS: frozenset[str] = frozenset(
    {"no", "private", "agricultural", "forestry", "military"}
)
OTHER_DENIED_ACCESS: frozenset[str] = ENGINE_DENIED_ACCESS | frozenset({"emergency", "psv", "bus"})
# Values admitting a responder to a way whose class it could not use otherwise (a pedestrian
# street signed motor_vehicle=destination). The generic ``access`` key never does.
ADMIT_ACCESS: frozenset[str] = frozenset(
    {"yes", "designated", "permissive", "destination", "delivery", "customers"}
)
# Barrier nodes that stop a responder whatever their tags say; gates follow their access tags.
ENGINE_BLOCKING_BARRIERS: frozenset[str] = frozenset(
    {"bollard", "block", "jersey_barrier", "chain", "rope", "log", "height_restrictor",
     "cycle_barrier", "motorcycle_barrier", "kissing_gate", "stile", "turnstile",
     "full-height_turnstile", "bump_gate", "wall", "fence", "hedge", "planter", "barrier_board"}
)  # fmt: skip
EBIKE_BLOCKING_BARRIERS: frozenset[str] = frozenset(
    {"jersey_barrier", "motorcycle_barrier", "kissing_gate", "stile", "turnstile",
     "full-height_turnstile", "wall", "fence", "hedge"}
)  # fmt: skip
FOOT_BLOCKING_BARRIERS: frozenset[str] = frozenset({"wall", "fence", "hedge"})
GATE_BARRIERS: frozenset[str] = frozenset(
    {"gate", "lift_gate", "swing_gate", "sliding_gate", "hampshire_gate", "wicket_gate",
     "entrance", "toll_booth", "border_control"}
)  # fmt: skip
# construction=* on an open road: minor works leave it open, anything else closes it.
_OPEN_CONSTRUCTION = frozenset({"", "no", "minor"})

# OSM service=* values an engine cannot enter (parking aisles are kept: engines drive them).
ENGINE_EXCLUDED_SERVICE: frozenset[str] = frozenset({"drive-through"})

PROFILE_NAMES = ("engine", "ebike", "foot")

_MPH = 1.609344


@dataclass(frozen=True)
class JoinRules:
    """Where a building's access leg, a station's or a hydrant's hose may join the network.

    Only ground-level streets where a vehicle can stop: a building 0.9 m above a tunnel joins
    the street it stands on, not the tunnel; one beside an elevated expressway (高架) joins the
    road below it. Config: ``[access.engine.join]`` etc.

    Parameters
    ----------
    exclude_highway : tuple of str
        Highway classes never joined: ``motorway`` and ``motorway_link`` (no stopping, no
        frontage). Add ``"trunk"`` where trunk roads are fenced expressways.
    exclude_tunnel : bool
        Skip ``tunnel=*`` other than ``no`` and ``building_passage`` (a passage through a
        building is at ground level).
    exclude_bridge : bool
        Skip ``bridge=*`` other than ``no`` (bridges, viaducts, elevated roads).
    exclude_layer : bool
        Skip ways with a non-zero ``layer`` (above: elevated; below: underground).
    exclude_covered : bool
        Skip ``covered=yes``. Off by default: a covered street (an arcade, a road under an
        elevated expressway) is at ground level and reachable on foot.
    """

    exclude_highway: tuple[str, ...] = ("motorway", "motorway_link")
    exclude_tunnel: bool = True
    exclude_bridge: bool = True
    exclude_layer: bool = True
    exclude_covered: bool = False


@dataclass(frozen=True)
class VehicleProfile:
    """How one kind of responder moves along the street network.

    Parameters
    ----------
    name : str
        ``"engine"``, ``"ebike"`` or ``"foot"``.
    speeds_kmh : Mapping[str, float]
        Free speed (km/h) by OSM ``highway`` class; classes not listed use ``default_speed_kmh``.
    default_speed_kmh : float
        Free speed (km/h) for a highway class not in ``speeds_kmh``.
    use_maxspeed : bool
        Use the OSM ``maxspeed`` tag instead of the class speed where it is present and parses.
    max_speed_kmh : float
        Ceiling on the free speed (km/h), applied after ``maxspeed``.
    congestion_factor : float
        Travel speed = free speed × this factor (0 < f ≤ 1): urban traffic slowing a responder.
    intersection_delay_s : float
        Seconds added on arriving at a node where three or more streets meet.
    respect_oneway : bool
        Obey one-way tags. Engines must; crews on foot or e-bike may use one-way streets both ways.
    allowed_highways : frozenset[str]
        OSM ``highway`` values this responder may use (an allow-list: any other value, unknown
        ones included, is closed to it unless the way's own access tags admit the responder).
    excluded_service : frozenset[str]
        OSM ``service`` values this responder cannot use.
    access_keys : tuple[str, ...]
        OSM access keys that bind this responder, most specific first (the first one a way or
        barrier node sets decides): engine ``motorcar, motor_vehicle, vehicle, access``; e-bike
        (a non-motor vehicle in China) ``bicycle, vehicle, access``; foot ``foot, access``.
    denied_access : frozenset[str]
        Access values closing a way or gate to this responder (``no``, ``private``, …).
    emergency : bool
        The responder is an emergency vehicle: ``emergency=yes|designated`` opens a way or
        barrier to it, and an access value ``emergency`` counts as ``yes``.
    blocking_barriers : frozenset[str]
        ``barrier`` values of nodes this responder cannot pass (bollards and blocks stop engines,
        not e-bikes). Gates (``GATE_BARRIERS``) follow their own access tags; other barrier
        values (kerb, …) are passable.
    motorroad : bool
        May use ways tagged ``motorroad=yes`` (motor vehicles only).
    turn_restrictions : bool
        Bound by OSM turn-restriction relations (engines; crews on foot or e-bike are not).
    join : JoinRules
        Which streets a building's access leg or a hose may join (ground level, not motorway).
    turnout_s : float
        Seconds from the call until the crew leaves the station (added to every travel time)
        when the station's own ``turnout_s`` is empty.
    access_speed_mps : float
        Speed (m/s) over the access distance between a building (or station) and its snap point
        on the nearest street: the last metres are covered on foot with equipment.
    """

    name: str
    speeds_kmh: Mapping[str, float] = field(default_factory=dict)
    default_speed_kmh: float = 20.0
    use_maxspeed: bool = False
    max_speed_kmh: float = 60.0
    congestion_factor: float = 1.0
    intersection_delay_s: float = 0.0
    respect_oneway: bool = False
    allowed_highways: frozenset[str] = FOOT_HIGHWAYS
    excluded_service: frozenset[str] = frozenset()
    access_speed_mps: float = 1.5
    turnout_s: float = 60.0
    access_keys: tuple[str, ...] = FOOT_ACCESS_KEYS
    denied_access: frozenset[str] = OTHER_DENIED_ACCESS
    emergency: bool = False
    blocking_barriers: frozenset[str] = FOOT_BLOCKING_BARRIERS
    motorroad: bool = False
    turn_restrictions: bool = False
    join: JoinRules = field(default_factory=JoinRules)

    def __post_init__(self) -> None:
        # A table value may be anything a config holds: only positive finite numbers are speeds.
        bad = [
            k
            for k, v in self.speeds_kmh.items()
            if not isinstance(v, numbers.Real)
            or isinstance(v, bool)
            or not (np.isfinite(v) and v > 0)
        ]
        if bad:
            raise ConfigError(f"profile '{self.name}': speeds_kmh must be > 0 for {bad}")
        checks = {
            "default_speed_kmh": self.default_speed_kmh > 0,
            "max_speed_kmh": self.max_speed_kmh > 0,
            "congestion_factor": 0 < self.congestion_factor <= 1,
            "intersection_delay_s": self.intersection_delay_s >= 0,
            "access_speed_mps": self.access_speed_mps > 0,
            "turnout_s": self.turnout_s >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"profile '{self.name}': {key} = {getattr(self, key)!r} is out of range"
                )
        # Freeze the mappings so a profile stays hashable-in-spirit and cannot be edited.
        object.__setattr__(self, "speeds_kmh", dict(self.speeds_kmh))
        for key in ("allowed_highways", "excluded_service", "denied_access", "blocking_barriers"):
            object.__setattr__(self, key, frozenset(str(x) for x in getattr(self, key)))
        object.__setattr__(self, "access_keys", tuple(str(k) for k in self.access_keys))

    def __hash__(self) -> int:
        # Equal profiles hash equal, so a network compiles each distinct profile once
        # (GraphTable.compiled); the speed table is a dict, hashed by its sorted items.
        return hash(
            tuple(
                tuple(sorted(v.items())) if isinstance(v, Mapping) else v
                for v in (getattr(self, f.name) for f in fields(self))
            )
        )

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], *, name: str | None = None) -> Self:
        """Build a profile from a config table, starting from the named default profile.

        Keys are the field names; ``speeds_kmh`` entries are merged into the default table.
        Raises ConfigError naming an unknown or bad key.
        """
        name = str(d.get("name", name or ""))
        base = default_profile(name) if name in PROFILE_NAMES else cls(name=name)
        speeds = d.get("speeds_kmh")
        if isinstance(speeds, Mapping):
            d = {**d, "speeds_kmh": {**base.speeds_kmh, **{str(k): v for k, v in speeds.items()}}}
        if isinstance(d.get("join"), Mapping):
            d = {
                **d,
                "join": params_from_mapping(JoinRules, d["join"], section=f"access.{name}.join"),
            }
        return params_from_mapping(cls, d, section=f"access.{name}", base=base)

    def allowed(
        self, highway: pd.Series | TagColumn, service: pd.Series | TagColumn | None = None
    ) -> np.ndarray:
        """True for ways whose class (``highway``) and ``service`` value this responder may use.

        The class rule only; :meth:`usable` applies every access rule to a network table.
        """
        hw = TagColumn.of(highway)
        ok = hw.isin_classes(self.allowed_highways)
        if service is not None and self.excluded_service:
            ok &= ~TagColumn.of(service).isin(self.excluded_service)
        return ok

    def usable(self, table: Any) -> np.ndarray:
        """Per directed edge of a network table: may this responder travel it?

        Parameters
        ----------
        table : firegrid.spatial.network.routing.GraphTable
            The network, with per-edge tags of each edge's own way (``table.tag(key)``).

        Returns
        -------
        numpy.ndarray of bool
            True where (class allowed, or the way's own tags admit the responder: a key of
            ``access_keys`` other than ``access`` set to a value of ``ADMIT_ACCESS``, or
            ``emergency=yes`` for an emergency vehicle) and not closed (class in
            ``CLOSED_HIGHWAYS``; ``construction=*`` other than ``minor``/``no``; the first
            access key set has a value in ``denied_access``, unless ``emergency=yes`` for an
            emergency vehicle; ``service`` in ``excluded_service``; ``motorroad=yes`` for a
            responder without ``motorroad``).
        """
        hw = table.highway
        denied, admitted = self._access(table.tag)
        opened = self._emergency_open(table.tag)
        in_class = hw.isin_classes(self.allowed_highways)
        closed = hw.isin_classes(CLOSED_HIGHWAYS) | ~table.tag("construction").isin(
            _OPEN_CONSTRUCTION
        )
        ok = (in_class | admitted | opened) & ~closed & ~(denied & ~opened)
        if self.excluded_service:
            ok &= ~table.tag("service").isin(self.excluded_service)
        if not self.motorroad:
            ok &= ~table.tag("motorroad").isin({"yes"})
        return ok

    def blocked_nodes(self, table: Any) -> np.ndarray:
        """Per node of a network table: a barrier this responder cannot pass.

        A node whose ``barrier`` is in ``blocking_barriers`` blocks unless its own tags admit
        the responder (e.g. a removable bollard tagged ``emergency=yes``); a gate
        (``GATE_BARRIERS``) blocks when its access tags deny the responder (``access=private``),
        unless ``emergency=yes`` for an emergency vehicle.
        """
        barrier = table.node_tag("barrier")
        if len(barrier.uniques) <= 1:
            return np.zeros(len(barrier.codes), dtype=bool)
        denied, explicit = self._access(table.node_tag)
        opened = self._emergency_open(table.node_tag)
        hard = barrier.isin(self.blocking_barriers) & ~(explicit | opened)
        gate = barrier.isin(GATE_BARRIERS) & denied & ~opened
        return hard | gate

    def _access(self, tag) -> tuple[np.ndarray, np.ndarray]:
        """(denied, admitted) per item from the first access key set, most specific first.

        ``admitted`` comes from the specific keys only: ``access=yes`` does not open a footway
        to engines.
        """
        denied_set = set(self.denied_access)
        admit_set = set(ADMIT_ACCESS)
        if self.emergency:
            denied_set.discard("emergency")
            admit_set.add("emergency")
        decided = denied = admitted = None
        for key in self.access_keys:
            col = tag(key)
            present = ~col.isin({""})
            if decided is None:
                decided = np.zeros(len(col.codes), dtype=bool)
                denied = np.zeros(len(col.codes), dtype=bool)
                admitted = np.zeros(len(col.codes), dtype=bool)
            take = present & ~decided
            denied |= take & col.isin(denied_set)
            if key != "access":
                admitted |= take & col.isin(admit_set)
            decided |= present
        return denied, admitted

    def _emergency_open(self, tag) -> np.ndarray:
        col = tag("emergency")
        if not self.emergency:
            return np.zeros(len(col.codes), dtype=bool)
        return col.isin({"yes", "designated"})

    def speed_mps(
        self, highway: pd.Series | TagColumn, maxspeed: pd.Series | TagColumn | None = None
    ) -> np.ndarray:
        """Travel speed (m/s) on each way: class or maxspeed speed, capped, times congestion."""
        hw = TagColumn.of(highway)
        per_class = np.array(
            [self.speeds_kmh.get(c, self.default_speed_kmh) for c in hw.classes()], dtype=float
        )
        kmh = per_class[hw.codes] if len(per_class) else np.zeros(len(hw.codes))
        if self.use_maxspeed and maxspeed is not None:
            ms = TagColumn.of(maxspeed)
            posted_u = np.array([_maxspeed_one(u) for u in ms.uniques], dtype=float)
            posted = posted_u[ms.codes] if len(posted_u) else np.full(len(kmh), np.nan)
            kmh = np.where(np.isfinite(posted) & (posted > 0), posted, kmh)
        kmh = np.minimum(kmh, self.max_speed_kmh)
        return kmh * self.congestion_factor / 3.6


@dataclass(frozen=True, eq=False)
class TagColumn:
    """An OSM tag over many edges, factorised: ``uniques[codes]`` gives each edge's raw value
    (osmnx lists as their repr, missing as ""). Profiles then work on the few distinct values."""

    codes: np.ndarray
    uniques: np.ndarray

    @classmethod
    def of(cls, values: Any) -> TagColumn:
        if isinstance(values, TagColumn):
            return values
        keys = [
            v
            if isinstance(v, str)
            else ("" if v is None or (isinstance(v, float) and v != v) else repr(v))
            for v in values
        ]
        codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
        return cls(np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object))

    def classes(self) -> np.ndarray:
        """One class per distinct value: osmnx lists resolve to their most important class."""
        return np.array([_pick_class(u) for u in self.uniques], dtype=object)

    def values(self) -> np.ndarray:
        """The raw value of every item (object array)."""
        return self.uniques[self.codes] if len(self.uniques) else np.full(len(self.codes), "")

    def isin(self, values: Any) -> np.ndarray:
        """Per item: its raw value (stripped, lower case) is one of ``values``."""
        wanted = {str(v) for v in values}
        hit = np.array([str(u).strip().lower() in wanted for u in self.uniques], dtype=bool)
        return hit[self.codes] if len(hit) else np.zeros(len(self.codes), dtype=bool)

    def isin_classes(self, values: Any) -> np.ndarray:
        """Per item: its class (:meth:`classes`, osmnx lists resolved) is one of ``values``."""
        hit = np.isin(self.classes(), list(values))
        return hit[self.codes] if len(hit) else np.zeros(len(self.codes), dtype=bool)


def unknown_highways(table: Any) -> dict[str, int]:
    """Highway values of a network table outside ``KNOWN_HIGHWAYS``: value -> number of ways.

    No responder uses such ways by default (profiles are allow-lists); validate reports them so
    a user can map a local value onto a known class in ``allowed_highways``.
    """
    hw = table.highway
    unknown = ~np.isin(hw.classes(), list(KNOWN_HIGHWAYS))
    if not unknown.any():
        return {}
    hit = unknown[hw.codes]
    way = table.edges["way_id"].to_numpy()
    frame = pd.DataFrame({"value": hw.uniques[hw.codes[hit]], "way": way[hit]})
    counts = frame.groupby("value")["way"].nunique()
    return {str(k): int(n) for k, n in counts.sort_values(ascending=False).items()}


def default_profile(name: str) -> VehicleProfile:
    """The built-in profile for ``"engine"``, ``"ebike"`` or ``"foot"``."""
    build = _DEFAULT_PROFILES.get(name)
    if build is None:
        raise ConfigError(
            f"unknown vehicle profile '{name}'; expected one of {list(PROFILE_NAMES)}"
        )
    return build()


def _engine_profile() -> VehicleProfile:
    return VehicleProfile(
        name="engine",
        speeds_kmh=dict(ENGINE_SPEEDS_KMH),
        default_speed_kmh=20.0,
        # maxspeed is posted for private traffic; an engine under lights runs about at it.
        use_maxspeed=True,
        max_speed_kmh=60.0,
        # Planning assumption: arterial free speed 40-45 km/h × 0.75 ≈ 30-34 km/h, the urban
        # engine speed behind the 5-minute district sizing of 建标152-2017.
        congestion_factor=0.75,
        # Planning assumption: slowing and clearing a junction under lights; emergency-vehicle
        # studies use 2-10 s per signalised junction, most junctions here are minor.
        intersection_delay_s=3.0,
        respect_oneway=True,
        allowed_highways=ENGINE_HIGHWAYS,
        excluded_service=ENGINE_EXCLUDED_SERVICE,
        access_keys=ENGINE_ACCESS_KEYS,
        denied_access=ENGINE_DENIED_ACCESS,
        emergency=True,
        blocking_barriers=ENGINE_BLOCKING_BARRIERS,
        motorroad=True,
        turn_restrictions=True,
        access_speed_mps=1.5,  # crew on foot with equipment (assumption, see module notes)
        turnout_s=60.0,  # 建标152-2017: engines out of the bay within 1 minute of the call
    )


def _ebike_profile() -> VehicleProfile:
    return VehicleProfile(
        name="ebike",
        # GB 17761-2018 caps e-bikes at 25 km/h; 18 km/h average with a kit on board in
        # mixed traffic is a planning assumption.
        speeds_kmh={"footway": 10.0, "pedestrian": 10.0, "path": 10.0, "living_street": 12.0},
        default_speed_kmh=18.0,
        use_maxspeed=False,
        max_speed_kmh=25.0,
        congestion_factor=1.0,
        intersection_delay_s=2.0,  # planning assumption: look and cross
        respect_oneway=False,
        allowed_highways=EBIKE_HIGHWAYS,
        access_keys=EBIKE_ACCESS_KEYS,
        blocking_barriers=EBIKE_BLOCKING_BARRIERS,
        access_speed_mps=1.5,
        turnout_s=60.0,  # micro-station "1 minute to respond" (公消〔2015〕301号)
    )


def _foot_profile() -> VehicleProfile:
    return VehicleProfile(
        name="foot",
        speeds_kmh={"steps": 2.0},
        default_speed_kmh=5.4,  # 1.5 m/s brisk walk with equipment (HCM 1.2-1.4 m/s walking)
        use_maxspeed=False,
        max_speed_kmh=10.0,
        congestion_factor=1.0,
        intersection_delay_s=0.0,
        respect_oneway=False,
        allowed_highways=FOOT_HIGHWAYS,
        access_keys=FOOT_ACCESS_KEYS,
        blocking_barriers=FOOT_BLOCKING_BARRIERS,
        access_speed_mps=1.5,
        turnout_s=60.0,  # micro-station "1 minute to respond" (公消〔2015〕301号)
    )


_DEFAULT_PROFILES = {"engine": _engine_profile, "ebike": _ebike_profile, "foot": _foot_profile}


# Values of ``[access] isochrones``.
ISOCHRONE_MODES = ("auto", "per_station", "union")


@dataclass(frozen=True)
class AccessParams:
    """Parameters of the access analysis: the config's ``[access]`` section.

    Parameters
    ----------
    target_micro_s : float
        Micro-station target (s, turnout included): 180, "3 minutes to the scene" (公消〔2015〕301号).
    target_fire_s : float
        Fire-station target (s, turnout included): 300, 建标152-2017 "5 minutes to the district edge".
    default_micro_vehicle : str
        Vehicle of a micro-station whose ``vehicle`` is missing: ``"ebike"`` (most Shanghai
        micro-stations keep e-bikes or fire motorcycles; set ``"foot"`` to be conservative).
    max_snap_m : float
        A building farther than this (metres) from every usable street is flagged
        "too far from road" and gets no time. 150 m: GB 50016-2014 §7.1 asks for an engine
        road within reach of every building; 150 m is a generous planning bound (assumption).
    station_snap_warn_m : float
        A station farther than this (metres) from the network triggers a warning naming it.
        50 m (assumption: a station sits on a street or a short yard away).
    isochrone_minutes : tuple[float, ...]
        Isochrone thresholds (minutes, turnout included): 1, 3, 5.
    street_buffer_m : float
        Half-width (metres) of the band drawn around reached streets in isochrones: 15, about
        half a street plus its frontage. Wider bands take in buildings whose own access leg
        makes them late (on the demo district 25 m lets 18 % of the buildings inside a
        3-minute isochrone miss 3 minutes; 15 m keeps that under 2 %).
    isochrones : str
        ``"per_station"``: one isochrone per station and threshold; ``"union"``: one per
        station kind and threshold, contoured from the fastest-station travel-time field (its
        grid coarsened at city size); ``"auto"`` (default): per station up to
        :data:`firegrid.spatial.access.isochrones.PER_STATION_MAX` stations (50), the union beyond (one field
        per station costs seconds each, and a city map cannot show a thousand overlapping
        polygons).
    engine, ebike, foot : VehicleProfile
        The vehicle profiles (see :func:`default_profile` for defaults and sources).
    """

    target_micro_s: float = 180.0
    target_fire_s: float = 300.0
    default_micro_vehicle: str = "ebike"
    max_snap_m: float = 150.0
    station_snap_warn_m: float = 50.0
    isochrone_minutes: tuple[float, ...] = (1.0, 3.0, 5.0)
    street_buffer_m: float = 15.0
    isochrones: str = "auto"
    engine: VehicleProfile = field(default_factory=lambda: default_profile("engine"))
    ebike: VehicleProfile = field(default_factory=lambda: default_profile("ebike"))
    foot: VehicleProfile = field(default_factory=lambda: default_profile("foot"))

    def __post_init__(self) -> None:
        for key in ("target_micro_s", "target_fire_s", "max_snap_m", "street_buffer_m"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"[access] {key} must be > 0, got {getattr(self, key)!r}")
        if self.station_snap_warn_m < 0:
            raise ConfigError("[access] station_snap_warn_m must be >= 0")
        if self.default_micro_vehicle not in PROFILE_NAMES:
            raise ConfigError(
                f"[access] default_micro_vehicle = {self.default_micro_vehicle!r}; expected one "
                f"of {list(PROFILE_NAMES)}"
            )
        if self.isochrones not in ISOCHRONE_MODES:
            raise ConfigError(
                f"[access] isochrones = {self.isochrones!r}; expected one of "
                f"{list(ISOCHRONE_MODES)}"
            )
        mins = tuple(float(m) for m in self.isochrone_minutes)
        if not mins or any(m <= 0 for m in mins):
            raise ConfigError("[access] isochrone_minutes must be a non-empty list of minutes > 0")
        object.__setattr__(self, "isochrone_minutes", mins)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[access]`` table; sub-tables ``engine``/``ebike``/``foot`` are profiles.

        Raises ConfigError naming an unknown or bad key.
        """
        d = dict(d or {})
        for key in PROFILE_NAMES:
            if isinstance(d.get(key), Mapping):
                d[key] = VehicleProfile.from_mapping(d[key], name=key)
        if isinstance(d.get("isochrone_minutes"), int | float):  # one threshold
            d["isochrone_minutes"] = [d["isochrone_minutes"]]
        return params_from_mapping(cls, d, section="access")

    def profile(self, vehicle: str) -> VehicleProfile:
        """The profile for a vehicle name (``engine``, ``ebike`` or ``foot``)."""
        if vehicle not in PROFILE_NAMES:
            raise ConfigError(f"unknown vehicle '{vehicle}'; expected one of {list(PROFILE_NAMES)}")
        return getattr(self, vehicle)


_NUM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$", re.IGNORECASE)
# Zone values such as "CN:urban" carry no number; these are the legal defaults where they apply.
_ZONE_KMH = {"cn:urban": 50.0, "cn:rural": 70.0, "cn:motorway": 120.0, "walk": 5.0}


def parse_maxspeed_kmh(maxspeed: pd.Series) -> np.ndarray:
    """OSM ``maxspeed`` values as km/h (NaN where absent or unparseable).

    Handles plain numbers, ``"30 mph"``, zone codes such as ``"CN:urban"``, ``"none"`` (NaN),
    and osmnx lists (``[40, 60]`` or its GraphML string form; the lowest value is used).
    """
    col = TagColumn.of(maxspeed)
    per_value = np.array([_maxspeed_one(u) if u != "" else np.nan for u in col.uniques])
    return per_value[col.codes] if len(per_value) else np.zeros(0)


def _maxspeed_one(value: Any) -> float:
    items = _as_list(value)
    speeds = []
    for item in items:
        text = str(item).strip().lower()
        if text in _ZONE_KMH:
            speeds.append(_ZONE_KMH[text])
            continue
        m = _NUM.match(text)
        if m:
            v = float(m.group(1))
            speeds.append(v * _MPH if (m.group(2) or "").lower() == "mph" else v)
    return min(speeds) if speeds else np.nan


def _as_list(value: Any) -> list:
    if isinstance(value, list | tuple | set | np.ndarray):
        return list(value)
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        # GraphML stores osmnx lists as their repr: "['residential', 'tertiary']".
        return [v.strip().strip("'\"") for v in value[1:-1].split(",") if v.strip()]
    if isinstance(value, str) and ";" in value:
        return [v.strip() for v in value.split(";")]
    return [value]


# Order of importance used to pick one class for a simplified edge merging several ways.
_HIGHWAY_RANK = {
    hw: i
    for i, hw in enumerate(
        ["motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link", "trunk_link",
         "primary_link", "secondary_link", "tertiary_link", "unclassified", "residential",
         "busway", "road", "living_street", "service", "track", "pedestrian", "cycleway",
         "footway", "path", "bridleway", "steps", "corridor"]
    )
}  # fmt: skip


def _pick_class(value: Any) -> str:
    items = [str(x) for x in _as_list(value) if x is not None and x == x and str(x) != ""]
    if not items:
        return ""
    return min(items, key=lambda x: _HIGHWAY_RANK.get(x, len(_HIGHWAY_RANK)))
