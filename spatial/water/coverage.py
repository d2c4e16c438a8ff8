"""Fire-water supply: hydrant coverage along streets, hydrant spacing, water sources, deficient zones.

Distances a hose covers are measured **along the street network** in metres, both ways of every
street (a hose is laid on foot; one-way signs do not bind it), from the point of a building's
outline nearest to a street, along that street, to the point on the street nearest to the
hydrant or water-source intake, including both straight access legs. A straight line across a
block, a railway or a river overstates what a hose reaches.

Standards cited (GB 50974-2014《消防给水及消火栓系统技术规范》):

- §7.2.5: a municipal hydrant's protection radius shall not exceed 150 m and hydrants along a
  road shall be at most 120 m apart. §7.3.2 sets the same 150 m radius for outdoor hydrants of
  a building.
- §6.1.5 item 1: each intake of an outdoor fire pool from which engines draw water counts as
  one outdoor hydrant, its protection radius not exceeding 150 m; item 2 counts municipal
  hydrants 5-150 m from a building's outer edge (建筑外缘) towards that building.
- §4.3.4: a fire pool holds at least 50 m³ where it serves hydrants only (100 m³ otherwise).
- §4.3.7: a pool storing outdoor fire water has an intake (取水口) for engines.
- §4.4.5 and §4.4.7: natural water (天然水源) serves fire fighting only where engines can draw
  from it: an intake reached by a fire-engine road with room to turn.

Outputs on buildings (see :func:`hydrant_coverage`): ``d_hydrant_m``, ``d_hydrant_net_m``,
``hydrant_id_nearest``, ``d_water_source_m``, ``water_source_id_nearest``, ``water_covered``,
``water_deficient``, ``water_deficiency`` (0-1) and ``water_issue``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from firegrid.spatial.errors import ConfigError, InputError, NetworkError
from firegrid.spatial.io.crs import require_projected
from firegrid.spatial.io.grids import aggregate_by_grid, assign_grids
from firegrid.spatial.network.profiles import PROFILE_NAMES, default_profile
from firegrid.spatial.network.routing import (
    EdgeArrays,
    GraphTable,
    RoutingGraph,
    Snap,
    graph_table,
    nearest_cost,
    snap,
)
from firegrid.spatial.params import (
    MAX_LENGTH_M,
    MAX_TIME_LIMIT_S,
    MIN_SPACING_M,
    params_from_mapping,
)
from firegrid.spatial.runtime import note

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

SOURCE_KINDS = ("fire_pool", "natural", "tank")
# Relative slack on "within the radius": floating-point sums of access legs and street pieces
# (a sub-micrometre error at 150 m must not flip a building exactly on the radius).
RATIO_TOL = 1e-9


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
        nearest one; the shortest hose counts (:func:`street_starts`): 20 (assumption: half of
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
        (2: 300 m), see :func:`deficiency_score`.
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


# ---------------------------------------------------------------------- the hose network
def hose_graph(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph, *, params: WaterParams | None = None
) -> RoutingGraph:
    """The streets a hose may be laid along, compiled in metres, both directions of each.

    Built on the routing primitives, so it is the same engine the access analysis uses, only
    with ``weight="length"`` and no one-way rule. Exactly the streets the hose profile may use
    stay usable: a way the profile excludes (``highway=construction``, a motorway, an access
    restriction) is never a hose route, whatever the input.

    Parameters
    ----------
    network : networkx.MultiDiGraph, GraphTable or RoutingGraph
        A projected road network (:func:`firegrid.spatial.network.load.read_network` or a
        :class:`firegrid.spatial.network.routing.GraphTable` read once from a file), compiled here with the
        ``params.hose_profile`` profile; or an already compiled graph, whose usable segments
        are taken as the hose streets (compile it with the hose profile): used as it is when
        it is in metres and undirected, otherwise recompiled from those segments (metres,
        both ways; the segments it cannot use stay unusable, and so do the barriers it cannot
        pass).
    params : WaterParams, optional

    Returns
    -------
    RoutingGraph
        ``weight="length"``: costs are metres; the same segments as the input, those the hose
        profile cannot use at infinite cost.
    """
    params = params or WaterParams()
    if isinstance(network, RoutingGraph):
        return _hose_from_compiled(network)
    if isinstance(network, GraphTable | nx.MultiDiGraph | nx.MultiGraph):
        # Compiled once per network and shared by every water and siting step of a run.
        return graph_table(network).compiled(
            default_profile(params.hose_profile), weight="length", directed=False
        )
    raise NetworkError(
        "expected an osmnx MultiDiGraph, a GraphTable or a RoutingGraph, got "
        f"{type(network).__name__}"
    )


def _hose_from_compiled(rg: RoutingGraph) -> RoutingGraph:
    """A compiled graph as a hose graph: itself when in metres and undirected, else its usable
    segments recompiled in metres, both ways (barriers it cannot pass stay unpassable)."""
    # A node the profile may not pass (a barrier) costs inf to arrive at; that stays.
    barrier = np.zeros(rg.n_nodes, dtype=bool)
    barrier[rg.seg_b[np.isinf(rg.fix_fwd)]] = True
    barrier[rg.seg_a[np.isinf(rg.fix_back)]] = True
    symmetric = (
        rg.weight == "length"
        and np.array_equal(rg.run_fwd, rg.run_back)
        and not (np.isfinite(rg.fix_fwd) & (rg.fix_fwd != 0)).any()
        and not (np.isfinite(rg.fix_back) & (rg.fix_back != 0)).any()
        and rg.access_cost_per_m == 1.0
    )
    if symmetric:
        return rg
    out = RoutingGraph.from_arrays(
        EdgeArrays.of_segments(rg),
        np.where(rg.usable, rg.seg_length_m, np.inf),
        node_delay=np.where(barrier, np.inf, 0.0),
        directed=False,
        access_cost_per_m=1.0,
        weight="length",
        profile=rg.profile,
    )
    # Segments are unique per (ends, length), so regrouping keeps their order: where a
    # hose may join a street carries over.
    if rg.snappable is not None and np.array_equal(out.seg_a, rg.seg_a):
        out.snappable = rg.snappable
    return out


def spacing_streets(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph, *, params: WaterParams | None = None
) -> RoutingGraph:
    """The hose graph's streets of ``params.spacing_highways`` (:func:`street_subgraph`).

    Built once per :class:`firegrid.spatial.network.routing.GraphTable` (kept with it), anew
    for a networkx graph or a compiled graph. Raises NetworkError when there is no such street.
    """
    params = params or WaterParams()

    def build() -> RoutingGraph:
        return street_subgraph(hose_graph(network, params=params), params.spacing_highways)

    if isinstance(network, GraphTable):
        return network.memo(
            ("hose", "streets", params.hose_profile, params.spacing_highways), build
        )
    return build()


def street_subgraph(rg: RoutingGraph, highways: tuple[str, ...]) -> RoutingGraph:
    """The usable segments of ``rg`` whose OSM class is one of ``highways``, as an undirected
    metre graph.

    A merged osmnx edge carrying several classes belongs when any of them is listed.
    """
    keep = highway_in(rg.segments["highway"], highways) & rg.usable
    if not keep.any():
        raise NetworkError(f"the road network has no street of the classes {list(highways)}")
    return RoutingGraph.from_arrays(
        EdgeArrays.of_segments(rg, keep),
        rg.seg_length_m[keep],
        directed=False,
        access_cost_per_m=1.0,
        weight="length",
        profile=rg.profile,
    )


def highway_in(highway: pd.Series, classes: tuple[str, ...]) -> np.ndarray:
    """True where an OSM ``highway`` value (a string, an osmnx list or its string form) names
    one of ``classes``."""
    s = pd.Series(highway, copy=False).astype(object)
    keys = s.map(lambda v: v if isinstance(v, str) else repr(v))
    wanted = set(classes)

    def one(key: str) -> bool:
        text = key.strip("[]()")
        parts = [p.strip().strip("'\"") for p in text.replace(";", ",").split(",")]
        return any(p in wanted for p in parts)

    lookup = {k: one(k) for k in pd.unique(keys)}
    return keys.map(lookup).fillna(False).to_numpy(dtype=bool) & s.notna().to_numpy()


def street_starts(
    rg: RoutingGraph, geoms: np.ndarray, *, reach_m: float
) -> tuple[np.ndarray, Snap]:
    """Every place where a hose may leave each geometry for the streets.

    A building's hose run starts at its outer edge (GB 50974 §6.1.5 measures from 建筑外缘);
    a building fronting several streets may be served along any of them, so each street a
    hose may join within ``reach_m`` of the outline gives one start: the nearest point of that
    street and the nearest point of the outline to it, joined by a straight leg. The nearest
    joinable street always gives one, however far. Streets a hose may join are the graph's
    usable segments where ``rg.snappable`` (ground-level streets) allows, when the graph
    carries it (:attr:`firegrid.spatial.network.routing.RoutingGraph.join_ok`: not a tunnel, bridge or
    motorway). Hydrants and water-source intakes (a pond's bank) start the same way.

    Parameters
    ----------
    rg : RoutingGraph
        Hose graph (metres, projected CRS).
    geoms : array of shapely geometries
        Points or polygons in ``rg.crs``; missing or empty ones give no start.
    reach_m : float
        Streets whose centre line lies within this distance (metres) of a geometry count.

    Returns
    -------
    owner : numpy.ndarray of int
        Position in ``geoms`` of each start (sorted; one start per (geometry, segment) pair,
        two where the street crosses or runs along the footprint: the ends of that stretch).
    starts : Snap
        The starts: ``seg``, ``frac`` (float64, by geometric length), ``x``/``y`` on the
        street, ``px``/``py`` on the outline, ``access_m`` the straight leg (metres).
    """
    geoms = np.asarray(geoms, dtype=object)
    valid = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    # Where a hose may join (RoutingGraph.join_ok: usable, ground level, no motorway); a network
    # of nothing but bridges and tunnels still joins somewhere.
    joinable = rg.join_ok
    if not joinable.any():
        joinable = rg.usable
    cand = np.flatnonzero(joinable)
    if len(valid) == 0 or len(cand) == 0:
        empty = np.zeros(0)
        return np.zeros(0, dtype=np.int64), Snap(
            np.zeros(0, dtype=np.int64), empty, empty, empty, empty, empty, empty
        )
    lines = rg.lines(cand)
    owner, pos = _streets_within(lines, geoms, valid, reach_m, len(cand))
    seg, seg_lines = cand[pos], lines[pos]
    legs = _Legs.nearest(geoms[owner], seg_lines)
    # A street running through or along a footprint touches it over a stretch, not at one
    # point: both ends of that stretch are starts (along the street the best lies at an end).
    inside = np.flatnonzero((legs.leg == 0) & (shapely.get_type_id(geoms[owner]) >= 3))
    if len(inside):
        at, ends = _stretch_ends(seg_lines[inside], geoms[owner[inside]])
        owner, seg = np.r_[owner, owner[inside[at]]], np.r_[seg, seg[inside[at]]]
        legs = legs.append(ends)
        order = np.argsort(owner, kind="stable")
        owner, seg, legs = owner[order], seg[order], legs.take(order)
    starts = Snap(seg.astype(np.int64), legs.frac, legs.leg, legs.x, legs.y, legs.gx, legs.gy)
    return owner.astype(np.int64), starts


def _streets_within(
    lines: np.ndarray, geoms: np.ndarray, valid: np.ndarray, reach_m: float, n_lines: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each (geometry, street line) pair within ``reach_m``, plus each geometry's nearest
    line, once, sorted by geometry then line: positions in ``geoms`` and in ``lines``."""
    tree = shapely.STRtree(lines)
    g_in, l_in = tree.query(geoms[valid], predicate="dwithin", distance=reach_m)
    g_nn, l_nn = tree.query_nearest(geoms[valid], all_matches=False)
    key = np.unique(valid[np.r_[g_in, g_nn]].astype(np.int64) * n_lines + np.r_[l_in, l_nn])
    return key // n_lines, key % n_lines


@dataclass(frozen=True)
class _Legs:
    """Straight legs from geometries to streets: position along the street (``frac``), leg
    length (metres), point on the street (``x``, ``y``) and on the geometry (``gx``, ``gy``)."""

    frac: np.ndarray
    leg: np.ndarray
    x: np.ndarray
    y: np.ndarray
    gx: np.ndarray
    gy: np.ndarray

    @classmethod
    def nearest(cls, geoms: np.ndarray, lines: np.ndarray) -> _Legs:
        """The shortest leg from each geometry to the street line beside it."""
        legs = shapely.shortest_line(geoms, lines)
        on_geom = shapely.get_coordinates(shapely.get_point(legs, 0))
        on_street = shapely.get_point(legs, 1)
        xy = shapely.get_coordinates(on_street)
        frac = shapely.line_locate_point(lines, on_street, normalized=True)
        frac = np.where(np.isfinite(frac), frac, 0.0)  # zero-length segment
        return cls(frac, shapely.length(legs), xy[:, 0], xy[:, 1], on_geom[:, 0], on_geom[:, 1])

    def append(self, other: _Legs) -> _Legs:
        return _Legs(*(np.r_[getattr(self, f.name), getattr(other, f.name)] for f in fields(self)))

    def take(self, rows: np.ndarray) -> _Legs:
        return _Legs(*(getattr(self, f.name)[rows] for f in fields(self)))


def _stretch_ends(lines: np.ndarray, areas: np.ndarray) -> tuple[np.ndarray, _Legs]:
    """Both ends of the stretch where each line runs through or along its area, as zero-length
    legs; returns the pair each end belongs to (every pair's first ends, then its last)."""
    cut = shapely.intersection(lines, areas)
    cxy, which = shapely.get_coordinates(cut, return_index=True)
    f = shapely.line_locate_point(lines[which], shapely.points(cxy), normalized=True)
    f = np.where(np.isfinite(f), f, 0.0)
    lo = np.full(len(lines), np.inf)
    hi = np.full(len(lines), -np.inf)
    np.minimum.at(lo, which, f)
    np.maximum.at(hi, which, f)
    ok = np.flatnonzero(np.isfinite(lo))
    at = np.r_[ok, ok]
    frac = np.r_[lo[ok], hi[ok]]
    xy = shapely.get_coordinates(shapely.line_interpolate_point(lines[at], frac, normalized=True))
    zero = np.zeros(len(at))
    return at, _Legs(frac, zero, xy[:, 0], xy[:, 1], xy[:, 0], xy[:, 1])


def nearest_per_owner(
    cost: np.ndarray, source: np.ndarray, owner: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The smallest ``cost`` of each owner's starts and the ``source`` achieving it.

    Parameters
    ----------
    cost, source : numpy.ndarray
        Per start (from :func:`firegrid.spatial.network.routing.nearest_cost`): cost and source index (-1: none).
    owner : numpy.ndarray of int
        Per start, its owner in ``0..n-1`` (from :func:`street_starts`).
    n : int
        Number of owners.

    Returns
    -------
    best : numpy.ndarray of float
        Per owner (``inf`` without a reachable start).
    who : numpy.ndarray of int
        The source of ``best`` (-1 where none).
    """
    best = np.full(n, np.inf)
    who = np.full(n, -1, dtype=np.int64)
    if len(owner):
        order = np.lexsort((cost, owner))
        first = np.r_[True, owner[order][1:] != owner[order][:-1]]
        pick = order[first]
        best[owner[pick]] = cost[pick]
        who[owner[pick]] = np.where(np.isfinite(cost[pick]), source[pick], -1)
    return best, who


# ---------------------------------------------------------------------- inputs
def layer_ids(gdf: gpd.GeoDataFrame, column: str) -> np.ndarray:
    """The id column as text ("" where missing), or the row labels when the layer has none."""
    if column in gdf:
        return gdf[column].astype("string").fillna("").to_numpy(dtype=object)
    return np.array([f"{i}" for i in gdf.index], dtype=object)


def working_hydrants(hydrants: gpd.GeoDataFrame | None) -> np.ndarray:
    """True for hydrants whose ``status`` is ``ok`` (broken, missing or unknown do not count)."""
    if hydrants is None or len(hydrants) == 0:
        return np.zeros(0 if hydrants is None else len(hydrants), dtype=bool)
    if "status" not in hydrants:
        raise InputError("required column missing", file="hydrants", column="status")
    st = hydrants["status"].astype("string").str.strip().str.lower()
    geom_ok = ~(hydrants.geometry.isna() | hydrants.geometry.is_empty).to_numpy()
    return st.eq("ok").fillna(False).to_numpy(dtype=bool) & geom_ok


def water_source_status(
    water_sources: gpd.GeoDataFrame | None, *, params: WaterParams | None = None
) -> gpd.GeoDataFrame:
    """Which fire water sources count towards coverage, and why not.

    Rules (GB 50974-2014): a **fire pool** counts unless its ``truck_access`` is recorded as
    false (§4.3.7 gives pools for outdoor water an engine intake; §6.1.5 counts each intake as a
    hydrant); **natural** water counts only with ``truck_access`` true (§4.4.5, §4.4.7); a
    **tank** counts only with ``truck_access`` true — roof and high-level tanks (§5.2) feed
    indoor systems, not engines. A pool or tank under ``min_source_capacity_m3`` does not count
    (§4.3.4); one without a recorded capacity counts if ``count_unknown_capacity``.

    Parameters
    ----------
    water_sources : GeoDataFrame or None
        ``source_id``, ``kind``, optionally ``capacity_m3`` (m³) and ``truck_access``.

    Returns
    -------
    GeoDataFrame
        A copy with ``source_counts`` (bool) and ``source_issue`` (empty when it counts).
    """
    params = params or WaterParams()
    if water_sources is None:
        return gpd.GeoDataFrame(
            {"source_id": pd.Series([], dtype="string"), "source_counts": [], "source_issue": []},
            geometry=gpd.GeoSeries([]),
        )
    out = water_sources.copy()
    n = len(out)
    if "kind" not in out:
        raise InputError("required column missing", file="water_sources", column="kind")
    kind = out["kind"].astype("string").str.strip().str.lower().fillna("").to_numpy(dtype=object)
    truck = (
        out["truck_access"].astype("boolean")
        if "truck_access" in out
        else pd.Series(pd.NA, index=out.index, dtype="boolean")
    )
    truck_yes = truck.eq(True).fillna(False).to_numpy(dtype=bool)
    truck_no = truck.eq(False).fillna(False).to_numpy(dtype=bool)
    cap = (
        pd.to_numeric(out["capacity_m3"], errors="coerce").astype(float).to_numpy()
        if "capacity_m3" in out
        else np.full(n, np.nan)
    )
    stored = (kind == "fire_pool") | (kind == "tank")
    small = stored & (cap < params.min_source_capacity_m3)
    unknown_cap = stored & np.isnan(cap) & (not params.count_unknown_capacity)
    no_geom = (out.geometry.isna() | out.geometry.is_empty).to_numpy()
    issue = np.full(n, "", dtype=object)
    issue[~np.isin(kind, SOURCE_KINDS)] = "unknown kind"
    issue[(kind == "fire_pool") & truck_no] = "no engine access to the intake"
    issue[(kind == "natural") & ~truck_yes] = "natural water without a recorded engine intake"
    issue[(kind == "tank") & ~truck_yes] = "tank without an engine intake (indoor supply only)"
    cap_txt = pd.Series(cap).round(0).astype("Int64").astype("string").fillna("").to_numpy()
    small_msg = np.char.add(
        np.char.add("capacity ", cap_txt.astype(str)),
        f" m³ under {params.min_source_capacity_m3:g} m³",
    )
    issue = np.where((issue == "") & small, small_msg, issue)
    issue = np.where((issue == "") & unknown_cap, "capacity not recorded", issue)
    issue = np.where(no_geom, "no geometry", issue)
    out["source_counts"] = issue == ""
    out["source_issue"] = pd.array(issue, dtype="string")
    return out


# ---------------------------------------------------------------------- coverage per building
def deficiency_score(ratio: np.ndarray, *, full_ratio: float = 2.0) -> np.ndarray:
    """Building water-deficiency score (0-1) from its distance ratio to the protection radius.

    ``ratio`` is the smaller of ``d_hydrant_net_m / hydrant_radius_m`` and
    ``d_water_source_m / source_radius_m`` (``inf`` or NaN when nothing is reachable). Covered
    buildings (ratio ≤ 1) score 0; an uncovered building scores 0.5 just beyond the radius,
    rising linearly to 1 at ``full_ratio`` × radius (300 m by default) and beyond, and 1 when
    no water is reachable. The step at the radius keeps the score consistent with the yes/no
    flag (score > 0 exactly when ``water_deficient``); the slope ranks how far the nearest
    hose would have to run.
    """
    r = np.asarray(ratio, dtype=float)
    r = np.where(np.isnan(r), np.inf, r)
    with np.errstate(invalid="ignore"):
        beyond = np.clip((r - 1.0) / (full_ratio - 1.0), 0.0, 1.0)
    return np.where(r <= 1.0 + RATIO_TOL, 0.0, 0.5 + 0.5 * beyond)


def hydrant_coverage(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph,
    buildings: gpd.GeoDataFrame,
    hydrants: gpd.GeoDataFrame | None,
    water_sources: gpd.GeoDataFrame | None = None,
    *,
    params: WaterParams | None = None,
) -> gpd.GeoDataFrame:
    """Distance from every building to the nearest working hydrant and usable water source.

    Parameters
    ----------
    network : networkx.MultiDiGraph, GraphTable or RoutingGraph
        Projected road network (see :func:`hose_graph`).
    buildings : GeoDataFrame
        Polygons or points in the network's projected CRS (metres).
    hydrants : GeoDataFrame or None
        ``hydrant_id``, ``status`` (only ``ok`` counts), points in the same CRS.
    water_sources : GeoDataFrame, optional
        ``source_id``, ``kind``, ``capacity_m3``, ``truck_access``; which count is decided by
        :func:`water_source_status`.
    params : WaterParams, optional

    Returns
    -------
    GeoDataFrame
        A copy of ``buildings`` with:

        - ``d_hydrant_m``: straight-line metres from the building (its outline; 0 when the
          hydrant stands inside it) to the nearest working hydrant; NaN without one.
        - ``d_hydrant_net_m``: metres of hose from the building's edge facing a street,
          straight to that street, along the street network (both directions), to the street
          point nearest the working hydrant and out to the hydrant; the shortest over every
          street the building and the hydrant front within ``street_facing_m``
          (:func:`street_starts`) and over every hydrant; NaN where none is reachable.
        - ``hydrant_id_nearest``: the hydrant giving ``d_hydrant_net_m``.
        - ``d_water_source_m`` and ``water_source_id_nearest``: the same along streets to the
          intake of the nearest usable water source (NaN without one).
        - ``water_covered``: ``d_hydrant_net_m <= hydrant_radius_m`` or
          ``d_water_source_m <= source_radius_m``; ``water_deficient`` = not covered.
        - ``water_deficiency``: 0-1 score (:func:`deficiency_score`).
        - ``water_issue``: empty when covered, else why ("beyond the protection radius along
          streets (nearest hydrant 183 m)", "no working hydrant or usable water source
          reachable", "no geometry").
    """
    params = params or WaterParams()
    rg = hose_graph(network, params=params)
    require_projected(buildings, "buildings", rg.crs)
    out = buildings.copy()
    geoms = np.asarray(out.geometry.values, dtype=object)
    has_geom = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    starts = _Starts(*street_starts(rg, geoms, reach_m=params.street_facing_m), len(out))
    hyd = _nearest_hydrant(rg, hydrants, starts, params)
    src = _nearest_source(rg, water_sources, starts, params)
    ratio = np.minimum(hyd.dist / params.hydrant_radius_m, src.dist / params.source_radius_m)
    covered = has_geom & (ratio <= 1.0 + RATIO_TOL)
    out["d_hydrant_m"] = _straight_to_hydrant(geoms, has_geom, rg, hydrants)
    out["d_hydrant_net_m"] = np.where(np.isfinite(hyd.dist), hyd.dist, np.nan)
    out["hydrant_id_nearest"] = pd.array(hyd.ids, dtype="string")
    out["d_water_source_m"] = np.where(np.isfinite(src.dist), src.dist, np.nan)
    out["water_source_id_nearest"] = pd.array(src.ids, dtype="string")
    out["water_covered"] = covered
    out["water_deficient"] = ~covered
    out["water_deficiency"] = np.where(
        has_geom, deficiency_score(ratio, full_ratio=params.score_full_ratio), 1.0
    )
    out["water_issue"] = _coverage_issue(hyd.dist, src.dist, covered, has_geom, params)
    return out


@dataclass(frozen=True)
class _Starts:
    """Where hoses may leave ``n`` geometries (:func:`street_starts`)."""

    owner: np.ndarray
    snap: Snap
    n: int


@dataclass(frozen=True)
class _Nearest:
    """Per building: hose metres to the nearest point of a kind (``inf`` if none) and its id."""

    dist: np.ndarray
    ids: np.ndarray

    @classmethod
    def none(cls, n: int) -> _Nearest:
        return cls(np.full(n, np.inf), np.full(n, None, dtype=object))


def _nearest_along_streets(
    rg: RoutingGraph,
    points: gpd.GeoDataFrame,
    ids: np.ndarray,
    buildings: _Starts,
    params: WaterParams,
    what: str,
) -> _Nearest:
    """One multi-source pass from every street start of ``points`` to every building start,
    then the shortest per building (a building fronting several streets takes the best)."""
    geoms = np.asarray(points.geometry.values, dtype=object)
    owner, starts = street_starts(rg, geoms, reach_m=params.street_facing_m)
    _warn_far(ids, _nearest_leg(owner, starts, len(points)), params.hydrant_snap_warn_m, what)
    cost, who = nearest_cost(rg, starts, buildings.snap)
    source = np.where(who >= 0, owner[who], -1)
    best, who = nearest_per_owner(cost, source, buildings.owner, buildings.n)
    found = np.full(buildings.n, None, dtype=object)
    found[who >= 0] = ids[who[who >= 0]]
    return _Nearest(best, found)


def _nearest_hydrant(
    rg: RoutingGraph,
    hydrants: gpd.GeoDataFrame | None,
    buildings: _Starts,
    params: WaterParams,
) -> _Nearest:
    ok = working_hydrants(hydrants)
    if not ok.any():
        return _Nearest.none(buildings.n)
    require_projected(hydrants, "hydrants", rg.crs)
    work = hydrants[ok]
    ids = layer_ids(work, "hydrant_id")
    return _nearest_along_streets(rg, work, ids, buildings, params, "hydrants")


def _nearest_source(
    rg: RoutingGraph,
    water_sources: gpd.GeoDataFrame | None,
    buildings: _Starts,
    params: WaterParams,
) -> _Nearest:
    """Every intake of a usable source (a pond's bank facing each street within reach)."""
    if water_sources is None or not len(water_sources):
        return _Nearest.none(buildings.n)
    require_projected(water_sources, "water_sources", rg.crs)
    status = water_source_status(water_sources, params=params)
    usable = status[status["source_counts"].to_numpy(dtype=bool)]
    if not len(usable):
        return _Nearest.none(buildings.n)
    ids = layer_ids(usable, "source_id")
    return _nearest_along_streets(rg, usable, ids, buildings, params, "water-source intakes")


def _straight_to_hydrant(
    geoms: np.ndarray,
    has_geom: np.ndarray,
    rg: RoutingGraph,
    hydrants: gpd.GeoDataFrame | None,
) -> np.ndarray:
    """Straight-line metres from each building's outline to the nearest working hydrant."""
    d_line = np.full(len(geoms), np.nan)
    ok = working_hydrants(hydrants)
    idx = np.flatnonzero(has_geom)
    if not ok.any() or not len(idx):
        return d_line
    require_projected(hydrants, "hydrants", rg.crs)
    tree = shapely.STRtree(np.asarray(hydrants[ok].geometry.values, dtype=object))
    (src, _), dist = tree.query_nearest(geoms[idx], all_matches=False, return_distance=True)
    d_line[idx[src]] = dist
    return d_line


def _coverage_issue(
    d_hyd, d_src, covered, has_geom, params: WaterParams
) -> pd.api.extensions.ExtensionArray:
    nearest = np.where(
        d_hyd / params.hydrant_radius_m <= d_src / params.source_radius_m, d_hyd, d_src
    )
    what = np.where(
        d_hyd / params.hydrant_radius_m <= d_src / params.source_radius_m, "hydrant", "source"
    )
    txt = pd.Series(np.where(np.isfinite(nearest), nearest, 0.0)).round(0).astype(int).astype(str)
    far = (
        "beyond the protection radius along streets (nearest "
        + pd.Series(what, dtype=object)
        + " "
        + txt
        + " m)"
    )
    issue = np.where(np.isfinite(nearest), far.to_numpy(dtype=object), "")
    issue = np.where(
        ~np.isfinite(nearest), "no working hydrant or usable water source reachable", issue
    )
    issue = np.where(covered, "", issue)
    issue = np.where(has_geom, issue, "no geometry")
    return pd.array(issue, dtype="string")


def _nearest_leg(owner: np.ndarray, starts: Snap, n: int) -> np.ndarray:
    """Per owner, the straight metres to its nearest hose street (NaN without a geometry)."""
    out = np.full(n, np.nan)
    np.fmin.at(out, owner, starts.access_m)
    return out


def _warn_far(ids: np.ndarray, dist: np.ndarray, threshold: float, what: str) -> None:
    far = ~(np.asarray(dist) <= threshold)
    if far.any():
        names = ", ".join(
            f"{i} ({d:.0f} m)" if np.isfinite(d) else f"{i} (no geometry)"
            for i, d in zip(ids[far][:20], np.asarray(dist)[far][:20], strict=True)
        )
        more = f" and {int(far.sum()) - 20} more" if far.sum() > 20 else ""
        note(
            f"{what} farther than {threshold:g} m from every street (check coordinates): "
            f"{names}{more}"
        )


# ---------------------------------------------------------------------- hydrant spacing
def hydrant_spacing_gaps(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph,
    hydrants: gpd.GeoDataFrame | None,
    *,
    buildings: gpd.GeoDataFrame | None = None,
    boundary: shapely.Geometry | None = None,
    params: WaterParams | None = None,
) -> gpd.GeoDataFrame:
    """Streets where working hydrants stand further apart than the spacing (120 m).

    Definition. The spacing streets (``params.spacing_highways``) form an undirected network in
    metres. Every working hydrant within ``street_snap_m`` of one stands at its snap point. For
    each point *x* of a street let *d(x)* be the distance along spacing streets to the nearest
    such hydrant. On a street between two consecutive hydrants *s* metres apart the largest
    *d* is *s*/2, so "consecutive hydrants more than 120 m apart" is "some point further than
    60 m from every hydrant along the street"; the same rule carries over to intersections,
    side streets, dead ends (the far end is further than 60 m from the last hydrant) and
    streets without any hydrant. Streets are cut into pieces at intersections and hydrants; a
    piece is in a gap when it lies in the built-up area (a building within ``built_up_m``) and
    its farthest point is more than ``hydrant_spacing_m / 2`` from every hydrant. Gap pieces of
    the same street (same name; same OSM class when unnamed) meeting at a node form one gap, so
    a gap runs along one street through its intersections; a hydrant separates gaps.

    Parameters
    ----------
    network : networkx.MultiDiGraph, GraphTable or RoutingGraph
    hydrants : GeoDataFrame or None
        ``hydrant_id``, ``status``; only ``ok`` counts.
    buildings : GeoDataFrame, optional
        Defines the built-up area; without it every spacing street is checked.
    boundary : shapely geometry, optional
        The district (projected CRS); gaps are clipped to it.
    params : WaterParams, optional

    Returns
    -------
    GeoDataFrame
        One row per gap, lines in the network CRS: ``gap_id``; ``gap_m``, the gap length
        measured along the street — twice the largest distance to a hydrant, i.e. the distance
        between the two hydrants bracketing a simple street, or for a street network reaching
        no hydrant at all, its total length; ``max_dist_m`` (metres from the farthest point to a
        hydrant, NaN when none is reachable); ``length_m`` (street metres in the gap, after
        clipping); ``no_hydrant`` (no hydrant reachable along spacing streets);
        ``hydrants`` (ids of the hydrants at its ends); ``streets`` (street names).
    """
    params = params or WaterParams()
    rg = hose_graph(network, params=params)
    if not highway_in(rg.segments["highway"], params.spacing_highways).any():
        note(
            f"no street of the classes {list(params.spacing_highways)} in the network: "
            "hydrant spacing not checked ([water] spacing_highways)"
        )
        return _empty_gaps(rg.crs)
    st = spacing_streets(network if isinstance(network, GraphTable) else rg, params=params)
    h_seg, h_frac, h_ids = _hydrants_on_streets(st, hydrants, params)
    pc = _StreetPieces.cut(st, h_seg, h_frac)
    built = _built_up(st, buildings, params)
    gap = built[pc.seg] & (pc.length > 0) & (pc.peak > params.hydrant_spacing_m / 2.0 + 1e-6)
    if not gap.any():
        return _empty_gaps(rg.crs)
    out = _gap_layer(st, pc.take(np.flatnonzero(gap)), h_ids)
    if boundary is not None:
        clipped = shapely.intersection(out.geometry.values, boundary)
        out = out.set_geometry(clipped)
        out = out[~out.geometry.is_empty].copy()
        out["length_m"] = out.geometry.length.to_numpy()
    out = out.sort_values("gap_m", ascending=False, kind="stable").reset_index(drop=True)
    out.insert(0, "gap_id", pd.array([f"G{i + 1:03d}" for i in range(len(out))], dtype="string"))
    return out


def _hydrants_on_streets(
    st: RoutingGraph, hydrants: gpd.GeoDataFrame | None, params: WaterParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment, fraction and id of every working hydrant within ``street_snap_m`` of a
    spacing street."""
    ok = working_hydrants(hydrants)
    if not ok.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=object)
    require_projected(hydrants, "hydrants", st.crs)
    work = hydrants[ok]
    hs = snap(st, np.asarray(work.geometry.values, dtype=object), max_snap_m=params.street_snap_m)
    on = hs.ok
    return hs.seg[on], hs.frac[on], layer_ids(work, "hydrant_id")[on]


@dataclass(frozen=True)
class _StreetPieces:
    """Spacing streets cut at their ends and at hydrants, with the distance along streets
    from each piece's ends to the nearest hydrant and the largest within it."""

    seg: np.ndarray  # segment of the piece
    f0: np.ndarray  # fractions of the segment where the piece starts and ends
    f1: np.ndarray
    node0: np.ndarray  # graph node at each end, -1 at a hydrant (a hydrant separates gaps)
    node1: np.ndarray
    hyd0: np.ndarray  # hydrant (index) at each end, -1 for none
    hyd1: np.ndarray
    length: np.ndarray  # metres
    peak: np.ndarray  # metres from the piece's farthest point to the nearest hydrant

    @classmethod
    def cut(cls, st: RoutingGraph, h_seg: np.ndarray, h_frac: np.ndarray) -> _StreetPieces:
        n_seg, n_h = st.n_segments, len(h_seg)
        d_a, d_b = _end_distances(st, h_seg, h_frac)
        # Cut points along each segment: its two ends and its hydrants, in order.
        c_seg = np.r_[np.arange(n_seg), h_seg, np.arange(n_seg)]
        c_frac = np.r_[np.zeros(n_seg), h_frac, np.ones(n_seg)]
        c_d = np.r_[d_a, np.zeros(n_h), d_b]
        c_node = np.r_[st.seg_a, np.full(n_h, -1), st.seg_b]
        c_hyd = np.r_[np.full(n_seg, -1), np.arange(n_h), np.full(n_seg, -1)]
        c_rank = np.r_[np.zeros(n_seg), np.ones(n_h), np.full(n_seg, 2.0)]
        order = np.lexsort((c_rank, c_frac, c_seg))
        c_seg, c_frac, c_d = c_seg[order], c_frac[order], c_d[order]
        c_node, c_hyd = c_node[order], c_hyd[order]
        same = c_seg[1:] == c_seg[:-1]
        seg = c_seg[:-1][same]
        f0, f1 = c_frac[:-1][same], c_frac[1:][same]
        d0, d1 = c_d[:-1][same], c_d[1:][same]
        length = (f1 - f0) * st.seg_length_m[seg]
        with np.errstate(invalid="ignore"):
            # d(t) = min(d0 + t, d1 + length - t) peaks at (d0 + d1 + length) / 2 (never
            # below an end).
            peak = np.maximum((d0 + d1 + length) / 2.0, np.maximum(d0, d1))
        peak = np.where(np.isfinite(d0) & np.isfinite(d1), peak, np.inf)
        # A hydrant standing on a node (snapped to another street's end) separates there too.
        node0 = np.where(d0 == 0, -1, c_node[:-1][same])
        node1 = np.where(d1 == 0, -1, c_node[1:][same])
        hyd0, hyd1 = c_hyd[:-1][same], c_hyd[1:][same]
        return cls(seg, f0, f1, node0, node1, hyd0, hyd1, length, peak)

    def take(self, rows: np.ndarray) -> _StreetPieces:
        return _StreetPieces(*(getattr(self, f.name)[rows] for f in fields(self)))


def _end_distances(
    st: RoutingGraph, h_seg: np.ndarray, h_frac: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Metres along spacing streets from the nearest hydrant to both ends of every segment."""
    n_seg = st.n_segments
    ends = Snap.at(
        st, np.r_[np.arange(n_seg), np.arange(n_seg)], np.r_[np.zeros(n_seg), np.ones(n_seg)]
    )
    if len(h_seg):
        d_end, _ = nearest_cost(st, Snap.at(st, h_seg, h_frac), ends)
    else:
        d_end = np.full(2 * n_seg, np.inf)
    return d_end[:n_seg], d_end[n_seg:]


def _built_up(
    st: RoutingGraph, buildings: gpd.GeoDataFrame | None, params: WaterParams
) -> np.ndarray:
    """Per segment: a building stands within ``built_up_m`` (all True without buildings)."""
    built = np.ones(st.n_segments, dtype=bool)
    if buildings is None:
        return built
    require_projected(buildings, "buildings", st.crs)
    bg = np.asarray(buildings.geometry.values, dtype=object)
    bg = bg[~(shapely.is_missing(bg) | shapely.is_empty(bg))]
    built[:] = False
    if len(bg):
        hit, _ = shapely.STRtree(bg).query(
            st.seg_geom, predicate="dwithin", distance=params.built_up_m
        )
        built[np.unique(hit)] = True
    return built


def _gap_layer(st: RoutingGraph, pc: _StreetPieces, h_ids: np.ndarray) -> gpd.GeoDataFrame:
    """Gap pieces joined into runs along one street (:func:`_street_runs`), one row per run."""
    names = st.segments["name"].to_numpy(dtype=object)[pc.seg]
    classes = st.segments["highway"].to_numpy(dtype=object)[pc.seg]
    comp = _street_runs(pc.node0, pc.node1, names, classes)
    ids = np.append(np.asarray(h_ids, dtype=object), "")  # index -1 reads ""
    pieces = pd.DataFrame(
        {
            "comp": comp,
            "peak": pc.peak,
            "plen": pc.length,
            "name": pd.Series(names, dtype=object).map(_name_text).to_numpy(dtype=object),
            "hyd0": ids[pc.hyd0],
            "hyd1": ids[pc.hyd1],
        }
    )
    grp = pieces.groupby("comp", sort=True)
    peak_c = grp["peak"].max()
    len_c = grp["plen"].sum()
    ends = pd.concat(
        [
            pieces[["comp", "hyd0"]].set_axis(["comp", "h"], axis=1),
            pieces[["comp", "hyd1"]].set_axis(["comp", "h"], axis=1),
        ]
    )
    hyd = _joined(ends.query("h != ''"), "h")
    street = _joined(pieces[pieces["name"] != ""][["comp", "name"]], "name")
    geom = substrings(st.seg_geom[pc.seg], pc.f0, pc.f1)
    lines = gpd.GeoSeries(geom, crs=st.crs).groupby(comp).agg(shapely.union_all)
    lines = shapely.line_merge(np.asarray(lines.values, dtype=object))
    no_hyd = ~np.isfinite(peak_c.to_numpy())
    return gpd.GeoDataFrame(
        {
            "gap_m": np.where(no_hyd, len_c.to_numpy(), 2.0 * peak_c.to_numpy()),
            "max_dist_m": np.where(no_hyd, np.nan, peak_c.to_numpy()),
            "length_m": len_c.to_numpy(),
            "no_hydrant": no_hyd,
            "hydrants": pd.array(hyd.reindex(peak_c.index).fillna("").to_numpy(), dtype="string"),
            "streets": pd.array(street.reindex(peak_c.index).fillna("").to_numpy(), dtype="string"),
        },
        geometry=lines,
        crs=st.crs,
    )


def _joined(df: pd.DataFrame, column: str) -> pd.Series:
    """Per ``comp``: the distinct values of ``column``, sorted, joined by ", "."""
    return df.drop_duplicates().sort_values(["comp", column]).groupby("comp")[column].agg(", ".join)


def _street_runs(
    n0: np.ndarray, n1: np.ndarray, names: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """Group street pieces into runs along one street: pieces sharing an end node (``>= 0``)
    and a street name (the OSM class for unnamed streets) form one run. Returns a run label
    per piece. Merged osmnx edges carrying several names join the runs of each name."""
    k = len(n0)
    key = pd.Series(
        [_as_names(nm) or ["#" + _name_text(c)] for nm, c in zip(names, classes, strict=True)],
        dtype=object,
    )
    rows = []
    for nodes in (n0, n1):
        df = pd.DataFrame({"piece": np.arange(k), "node": nodes, "name": key}).explode("name")
        rows.append(df[df["node"] >= 0])
    ends = pd.concat(rows, ignore_index=True)
    vert = pd.factorize(ends["node"].astype(str) + "|" + ends["name"].astype(str))[0]
    n_v = int(vert.max()) + 1 if len(vert) else 0
    adj = sp.coo_matrix(
        (np.ones(len(vert)), (ends["piece"].to_numpy(dtype=np.int64), k + vert)),
        shape=(k + n_v, k + n_v),
    )
    _, label = connected_components(adj, directed=False)
    return pd.factorize(label[:k])[0]


def _as_names(v: Any) -> list[str]:
    if isinstance(v, list | tuple | np.ndarray):
        return [str(x) for x in v if x is not None and x == x and str(x)]
    if v is None or (isinstance(v, float) and np.isnan(v)) or str(v) == "":
        return []
    text = str(v)
    if text.startswith("[") and text.endswith("]"):  # GraphML string form of a list
        return [t.strip().strip("'\"") for t in text[1:-1].split(",") if t.strip()]
    return [text]


def _empty_gaps(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "gap_id": pd.Series([], dtype="string"),
            "gap_m": pd.Series([], dtype=float),
            "max_dist_m": pd.Series([], dtype=float),
            "length_m": pd.Series([], dtype=float),
            "no_hydrant": pd.Series([], dtype=bool),
            "hydrants": pd.Series([], dtype="string"),
            "streets": pd.Series([], dtype="string"),
        },
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )


def _name_text(v: Any) -> str:
    if isinstance(v, list | tuple):
        return " / ".join(str(x) for x in v if x is not None and x == x)
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return str(v)


def substrings(lines: np.ndarray, f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """The part of each line between fractions ``f0 < f1`` of its length (vectorised)."""
    lines = np.asarray(lines, dtype=object)
    f0 = np.asarray(f0, dtype=float)
    f1 = np.asarray(f1, dtype=float)
    coords, gi = shapely.get_coordinates(lines, return_index=True)
    seglen = np.hypot(*np.diff(coords, axis=0).T)
    seglen[gi[1:] != gi[:-1]] = 0.0
    cum = np.r_[0.0, np.cumsum(seglen)]
    start = np.searchsorted(gi, np.arange(len(lines)))
    total = shapely.length(lines)
    base = cum[start]
    # Vertices strictly inside (f0, f1) of each piece, by the global cumulative length.
    lo = np.searchsorted(cum, base + f0 * total, side="right")
    hi = np.searchsorted(cum, base + f1 * total, side="left")
    end = np.r_[start[1:], len(coords)]
    lo = np.clip(lo, start, end)
    hi = np.clip(hi, lo, end)
    n_in = hi - lo
    p0 = shapely.get_coordinates(shapely.line_interpolate_point(lines, f0, normalized=True))
    p1 = shapely.get_coordinates(shapely.line_interpolate_point(lines, f1, normalized=True))
    cnt = n_in + 2
    total_pts = int(cnt.sum())
    out = np.empty((total_pts, 2))
    first = np.cumsum(cnt) - cnt
    out[first] = p0
    out[first + cnt - 1] = p1
    rep = np.repeat(np.arange(len(lines)), n_in)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(n_in) - n_in, n_in)
    out[first[rep] + 1 + within] = coords[lo[rep] + within]
    return shapely.linestrings(out, indices=np.repeat(np.arange(len(lines)), cnt))


# ---------------------------------------------------------------------- deficient zones
def water_deficient_zones(
    buildings: gpd.GeoDataFrame,
    *,
    grids: gpd.GeoDataFrame | None = None,
    boundary: shapely.Geometry | None = None,
    params: WaterParams | None = None,
) -> gpd.GeoDataFrame:
    """Water-deficient zones (消防缺水区域): the built-up area no working water source covers.

    The footprints (or points) of water-deficient buildings are grown by ``zone_buffer_m``,
    dissolved, and closed over gaps narrower than ``2 × zone_close_m``; the footprints of
    covered buildings are then cut out, so a zone never claims a covered building — unless its
    footprint overlaps a deficient one's (overlapping footprints in the data). Every deficient
    footprint lies inside a zone. The result is clipped to ``boundary`` (default: the union of
    the coarsest grid level) and split into its connected parts.

    Parameters
    ----------
    buildings : GeoDataFrame
        Output of :func:`hydrant_coverage` (needs ``water_deficient``), projected CRS.
    grids : GeoDataFrame, optional
        The ``grids`` layer: gives the default boundary and each zone's grid cells.
    boundary : shapely geometry, optional
        District outline in the same CRS.

    Returns
    -------
    GeoDataFrame
        Polygons: ``zone_id``, ``n_buildings`` (deficient buildings whose representative point
        lies in the zone), ``residents`` (their sum, when buildings carry ``residents``),
        ``area_m2``, ``grid_ids`` (cells of the finest grid level the zone touches).
    """
    params = params or WaterParams()
    require_projected(buildings, "buildings")
    if "water_deficient" not in buildings:
        raise InputError(
            "column missing: run hydrant_coverage first", file="buildings", column="water_deficient"
        )
    crs = buildings.crs
    if grids is not None:
        require_projected(grids, "grids", crs, crs_of="buildings")
        if boundary is None:
            boundary = _top_level_outline(grids)
    geoms = np.asarray(buildings.geometry.values, dtype=object)
    valid = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    bad = buildings["water_deficient"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    if not (bad & valid).any():
        return _empty_zones(crs)
    grown = _deficient_area(geoms[bad & valid], geoms[~bad & valid], params)
    if boundary is not None:
        grown = shapely.intersection(grown, boundary)
    parts = shapely.get_parts(grown)
    parts = parts[shapely.get_type_id(parts) == 3]
    parts = parts[shapely.area(parts) > 0]
    if len(parts) == 0:
        return _empty_zones(crs)
    zones = gpd.GeoDataFrame(geometry=gpd.GeoSeries(parts, crs=crs))
    zones = _count_in_zones(zones, buildings, np.flatnonzero(bad & valid))
    zones["area_m2"] = zones.geometry.area.to_numpy()
    zones["grid_ids"] = _zone_cells(zones, grids)
    zones = zones.sort_values(["n_buildings", "area_m2"], ascending=False, kind="stable")
    zones = zones.reset_index(drop=True)
    zones.insert(0, "zone_id", pd.array([f"WZ{i + 1:03d}" for i in range(len(zones))], "string"))
    cols = ["zone_id", "n_buildings"] + (["residents"] if "residents" in zones else [])
    return zones[cols + ["area_m2", "grid_ids", "geometry"]]


def _deficient_area(dg: np.ndarray, covered: np.ndarray, params: WaterParams) -> shapely.Geometry:
    """The deficient footprints ``dg`` grown, dissolved and closed, with the covered
    footprints cut out except where they overlap a deficient one."""
    r, c = params.zone_buffer_m, params.zone_close_m
    # Grow by r and close gaps narrower than 2c in one union: dilate by r + c, erode by c.
    grown = shapely.union_all(shapely.buffer(dg, r + c, quad_segs=4))
    if c > 0:
        grown = shapely.buffer(grown, -c, quad_segs=4)
    covered = covered[shapely.get_type_id(covered) >= 3]  # only areas can be cut out
    if len(covered):
        clash = shapely.STRtree(dg).query(covered, predicate="intersects")[0]
        covered = np.delete(covered, np.unique(clash))
        inside = shapely.STRtree(covered).query(grown, predicate="intersects")
        if len(inside):
            grown = shapely.difference(grown, shapely.union_all(covered[np.unique(inside)]))
    # Dilation then erosion keeps every footprint inside up to polygon approximation; add back
    # any footprint that slipped out (tiny buffers with large closing).
    rep = shapely.get_coordinates(shapely.point_on_surface(dg))
    lost = ~shapely.contains_xy(grown, rep[:, 0], rep[:, 1])
    if lost.any():
        grown = shapely.union_all(np.r_[[grown], dg[lost]])
    return grown


def _count_in_zones(
    zones: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, rows: np.ndarray
) -> gpd.GeoDataFrame:
    """``n_buildings`` (and ``residents`` when buildings carry it) per zone: the deficient
    buildings ``rows`` whose representative point lies in it (the first zone when several)."""
    geoms = np.asarray(buildings.geometry.values, dtype=object)[rows]
    pts = gpd.GeoDataFrame(
        {"_pos": rows},
        geometry=gpd.GeoSeries(shapely.point_on_surface(geoms), crs=zones.crs),
    )
    if "residents" in buildings:
        res = pd.to_numeric(buildings["residents"], errors="coerce").to_numpy(dtype=float)
        pts["residents"] = res[rows]
    hit = gpd.sjoin(pts, zones, how="inner", predicate="intersects")
    hit = hit.sort_values(["_pos", "index_right"]).drop_duplicates("_pos")
    counts = hit.groupby("index_right").size().reindex(zones.index, fill_value=0)
    zones["n_buildings"] = counts.to_numpy(dtype=np.int64)
    if "residents" in pts:
        zones["residents"] = (
            hit.groupby("index_right")["residents"].sum(min_count=1).reindex(zones.index)
        ).to_numpy(dtype=float)
    return zones


def _zone_cells(zones: gpd.GeoDataFrame, grids: gpd.GeoDataFrame | None) -> pd.array:
    """Per zone: the ids of the finest-level grid cells it overlaps with area, joined by ", "."""
    empty = pd.array([""] * len(zones), dtype="string")
    if grids is None or not len(grids):
        return empty
    finest = grids[grids["level"] == grids["level"].max()] if "level" in grids else grids
    gj = gpd.sjoin(
        zones[["geometry"]],
        gpd.GeoDataFrame(
            {"_gid": finest["grid_id"].astype("string").to_numpy()},
            geometry=finest.geometry.values,
            crs=zones.crs,
        ),
        how="inner",
        predicate="intersects",
    )
    # Touching along a shared edge is not lying in a cell: keep overlaps with area.
    overlap = shapely.intersection(
        zones.geometry.values[gj.index.to_numpy()],
        finest.geometry.values[gj["index_right"].to_numpy()],
    )
    gj = gj[shapely.area(overlap) > 0]
    ids = gj.reset_index().sort_values(["index", "_gid"]).groupby("index")["_gid"]
    return pd.array(
        ids.agg(lambda s: ", ".join(s.astype(str))).reindex(zones.index).fillna("").to_numpy(),
        dtype="string",
    )


def _empty_zones(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "zone_id": pd.Series([], dtype="string"),
            "n_buildings": pd.Series([], dtype=np.int64),
            "area_m2": pd.Series([], dtype=float),
            "grid_ids": pd.Series([], dtype="string"),
        },
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )


# ---------------------------------------------------------------------- per grid
def water_by_grid(
    buildings: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    water_sources: gpd.GeoDataFrame | None = None,
    *,
    hydrants: gpd.GeoDataFrame | None = None,
    zones: gpd.GeoDataFrame | None = None,
    cells: pd.DataFrame | None = None,
    params: WaterParams | None = None,
) -> pd.DataFrame:
    """Water supply per grid cell at every level.

    Parameters
    ----------
    buildings : GeoDataFrame
        Output of :func:`hydrant_coverage`, projected CRS.
    grids : GeoDataFrame
        ``grid_id``, ``level``, optionally ``name``, ``parent_id``; same CRS.
    water_sources, hydrants : GeoDataFrame, optional
        Counted per cell by their representative point (:func:`firegrid.spatial.io.grids.assign_grids`).
    zones : GeoDataFrame, optional
        Output of :func:`water_deficient_zones`; gives the deficient area per cell.
    cells : DataFrame, optional
        Building → cell table, one row per building in the same order (``grid_id_l<level>``
        columns); default :func:`firegrid.spatial.io.grids.assign_grids`.

    Returns
    -------
    DataFrame
        One row per grid cell: ``grid_id``, ``name``, ``level``, ``parent_id``;
        ``n_buildings``; ``n_water_covered``; ``n_water_deficient``; ``share_water_deficient``
        (of buildings, NaN without buildings); ``water_deficiency_score`` (0-1: the mean of the
        buildings' ``water_deficiency``, NaN without buildings); ``n_hydrants``,
        ``n_hydrants_ok``, ``n_hydrants_broken``, ``n_hydrants_missing``;
        ``n_water_sources``, ``n_water_sources_usable``; ``capacity_m3`` (all sources in the
        cell, m³), ``capacity_usable_m3`` (sources that count); ``deficient_area_m2`` and
        ``deficient_area_share`` (of the cell's area) when ``zones`` is given.
    """
    params = params or WaterParams()
    require_projected(buildings, "buildings")
    crs = pyproj.CRS.from_user_input(buildings.crs)
    require_projected(grids, "grids", crs, crs_of="buildings")
    for col in ("water_deficient", "water_deficiency"):
        if col not in buildings:
            raise InputError(
                "column missing: run hydrant_coverage first", file="buildings", column=col
            )
    out = _grid_identity(grids)
    key = pd.Index(out["grid_id"].astype(object))
    bcells = cells if cells is not None else assign_grids(buildings, grids)[0]
    parts = [
        _buildings_per_cell(buildings, bcells, key),
        _hydrants_per_cell(hydrants, grids, key, crs),
        _sources_per_cell(water_sources, grids, key, crs, params),
    ]
    out = pd.concat([out, *(p.set_axis(out.index) for p in parts)], axis=1)
    if zones is not None:
        gg = np.asarray(grids.geometry.values, dtype=object)
        zu = shapely.union_all(np.asarray(zones.geometry.values, dtype=object))
        area = shapely.area(shapely.intersection(gg, zu)) if len(zones) else np.zeros(len(gg))
        out["deficient_area_m2"] = area
        with np.errstate(invalid="ignore", divide="ignore"):
            out["deficient_area_share"] = area / shapely.area(gg)
    return out


def _grid_identity(grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """``grid_id``, ``name``, ``level``, ``parent_id`` of every cell (missing text as NA)."""

    def text(column: str) -> pd.api.extensions.ExtensionArray:
        if column in grids:
            return grids[column].astype("string").to_numpy()
        return pd.array([pd.NA] * len(grids), dtype="string")

    levels = pd.to_numeric(grids["level"], errors="coerce")
    return pd.DataFrame(
        {
            "grid_id": grids["grid_id"].astype("string").to_numpy(),
            "name": text("name"),
            "level": levels.astype("Int64").to_numpy(),
            "parent_id": text("parent_id"),
        }
    )


def _buildings_per_cell(
    buildings: gpd.GeoDataFrame, bcells: pd.DataFrame, key: pd.Index
) -> pd.DataFrame:
    """Buildings, covered and deficient ones, their share and mean deficiency score per cell."""
    bad = buildings["water_deficient"].astype("boolean").fillna(True).to_numpy(dtype=float)
    score = pd.to_numeric(buildings["water_deficiency"], errors="coerce").to_numpy(dtype=float)
    vals = pd.DataFrame(
        {"n_buildings": 1.0, "n_water_deficient": bad, "score": score}, index=buildings.index
    )
    s = aggregate_by_grid(bcells, vals, "sum", grid_ids=key)
    cnt = aggregate_by_grid(bcells, vals[["score"]], "count", grid_ids=key)["score"]
    nb = s["n_buildings"].fillna(0).to_numpy()
    out = pd.DataFrame(index=key)
    out["n_buildings"] = nb.astype(np.int64)
    out["n_water_deficient"] = s["n_water_deficient"].fillna(0).to_numpy().astype(np.int64)
    out["n_water_covered"] = out["n_buildings"] - out["n_water_deficient"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_water_deficient"] = np.where(nb > 0, out["n_water_deficient"] / nb, np.nan)
        c = cnt.fillna(0).to_numpy()
        out["water_deficiency_score"] = np.where(c > 0, s["score"].to_numpy() / c, np.nan)
    return out


def _hydrants_per_cell(
    hydrants: gpd.GeoDataFrame | None, grids: gpd.GeoDataFrame, key: pd.Index, crs
) -> pd.DataFrame:
    """Hydrants per cell: all, working (``ok``), ``broken``, ``missing``."""
    columns = ["n_hydrants", "n_hydrants_ok", "n_hydrants_broken", "n_hydrants_missing"]
    if hydrants is None or not len(hydrants):
        return pd.DataFrame(0, index=key, columns=columns, dtype=np.int64)
    require_projected(hydrants, "hydrants", crs, crs_of="buildings")
    st = hydrants["status"].astype("string").str.strip().str.lower()
    hv = pd.DataFrame(
        {
            "n_hydrants": 1.0,
            "n_hydrants_ok": working_hydrants(hydrants).astype(float),
            "n_hydrants_broken": st.eq("broken").fillna(False).to_numpy(dtype=float),
            "n_hydrants_missing": st.eq("missing").fillna(False).to_numpy(dtype=float),
        },
        index=hydrants.index,
    )
    cells = assign_grids(hydrants, grids, what="hydrants")[0]
    return aggregate_by_grid(cells, hv, "sum", grid_ids=key).fillna(0)[columns].astype(np.int64)


def _sources_per_cell(
    water_sources: gpd.GeoDataFrame | None,
    grids: gpd.GeoDataFrame,
    key: pd.Index,
    crs,
    params: WaterParams,
) -> pd.DataFrame:
    """Water sources per cell, those that count, and their capacities (m³)."""
    out = pd.DataFrame(index=key)
    status = water_source_status(water_sources, params=params)  # checks the layer's columns
    if water_sources is None or not len(water_sources):
        out["n_water_sources"] = 0
        out["n_water_sources_usable"] = 0
        out["capacity_m3"] = 0.0
        out["capacity_usable_m3"] = 0.0
        return out
    require_projected(water_sources, "water_sources", crs, crs_of="buildings")
    cap = (
        pd.to_numeric(status["capacity_m3"], errors="coerce").to_numpy(dtype=float)
        if "capacity_m3" in status
        else np.full(len(status), np.nan)
    )
    counts = status["source_counts"].to_numpy(dtype=bool)
    sv = pd.DataFrame(
        {
            "n_water_sources": 1.0,
            "n_water_sources_usable": counts.astype(float),
            "capacity_m3": cap,
            "capacity_usable_m3": np.where(counts, cap, np.nan),
        },
        index=status.index,
    )
    cells = assign_grids(status, grids, what="water_sources")[0]
    ss = aggregate_by_grid(cells, sv, "sum", grid_ids=key)
    out["n_water_sources"] = ss["n_water_sources"].fillna(0).to_numpy().astype(np.int64)
    out["n_water_sources_usable"] = (
        ss["n_water_sources_usable"].fillna(0).to_numpy().astype(np.int64)
    )
    out["capacity_m3"] = ss["capacity_m3"].fillna(0).to_numpy(dtype=float)
    out["capacity_usable_m3"] = ss["capacity_usable_m3"].fillna(0).to_numpy(dtype=float)
    return out


# ---------------------------------------------------------------------- one call for the pipeline
@dataclass
class WaterResult:
    """Everything the water step produces (all layers in the district's projected CRS).

    Attributes
    ----------
    buildings : GeoDataFrame
        Buildings with the coverage columns of :func:`hydrant_coverage`.
    hydrants : GeoDataFrame or None
        Hydrants with ``working`` (bool) and ``street_m`` (metres to the nearest hose street).
    water_sources : GeoDataFrame or None
        Sources with ``source_counts`` and ``source_issue`` (:func:`water_source_status`).
    gaps : GeoDataFrame
        Hydrant spacing gaps (:func:`hydrant_spacing_gaps`).
    zones : GeoDataFrame
        Water-deficient zones (:func:`water_deficient_zones`).
    grid_summary : DataFrame or None
        Per grid cell (:func:`water_by_grid`); None without grids.
    params : WaterParams
    """

    buildings: gpd.GeoDataFrame
    hydrants: gpd.GeoDataFrame | None
    water_sources: gpd.GeoDataFrame | None
    gaps: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame
    grid_summary: pd.DataFrame | None
    params: WaterParams = field(default_factory=WaterParams)

    def headline(self) -> dict[str, Any]:
        """The headline figures for a run summary."""
        b = self.buildings
        n = len(b)
        bad = int(b["water_deficient"].sum())
        out: dict[str, Any] = {
            "buildings": n,
            "water_deficient": bad,
            "share_water_deficient": bad / n if n else float("nan"),
            "working_hydrants": int(self.hydrants["working"].sum())
            if self.hydrants is not None
            else 0,
            "spacing_gaps": len(self.gaps),
            "spacing_gap_km": float(self.gaps["length_m"].sum() / 1000.0),
            "deficient_zones": len(self.zones),
            "deficient_area_ha": float(self.zones["area_m2"].sum() / 1e4),
        }
        return out


def analyse_water(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph,
    buildings: gpd.GeoDataFrame,
    *,
    hydrants: gpd.GeoDataFrame | None = None,
    water_sources: gpd.GeoDataFrame | None = None,
    grids: gpd.GeoDataFrame | None = None,
    boundary: shapely.Geometry | None = None,
    cells: pd.DataFrame | None = None,
    params: WaterParams | None = None,
) -> WaterResult:
    """The whole water step: coverage, spacing gaps, deficient zones, grid summary.

    New hydrants for the deficient buildings are sited afterwards, from this result's
    buildings, by :func:`firegrid.spatial.siting.hydrants.propose_hydrants`.

    Parameters
    ----------
    network : networkx.MultiDiGraph, GraphTable or RoutingGraph
        Projected road network; compiled once for hose laying (:func:`hose_graph`).
    buildings, hydrants, water_sources, grids : GeoDataFrame
        District layers in the network's projected CRS.
    boundary : shapely geometry, optional
        District outline (default: union of the coarsest grid level).
    cells : DataFrame, optional
        Building → grid cell table for :func:`water_by_grid`.
    params : WaterParams, optional

    Returns
    -------
    WaterResult
    """
    params = params or WaterParams()
    network = _read_once(network, params)
    rg = hose_graph(network, params=params)
    if grids is not None and boundary is None:
        require_projected(grids, "grids", rg.crs)
        boundary = _top_level_outline(grids)
    b = hydrant_coverage(network, buildings, hydrants, water_sources, params=params)
    ws = water_source_status(water_sources, params=params) if water_sources is not None else None
    gaps = hydrant_spacing_gaps(
        network, hydrants, buildings=buildings, boundary=boundary, params=params
    )
    zones = water_deficient_zones(b, grids=grids, boundary=boundary, params=params)
    summary = (
        water_by_grid(
            b, grids, water_sources, hydrants=hydrants, zones=zones, cells=cells, params=params
        )
        if grids is not None
        else None
    )
    return WaterResult(b, _hydrant_status(rg, hydrants), ws, gaps, zones, summary, params)


def _read_once(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph, params: WaterParams
) -> GraphTable | RoutingGraph:
    """The network in the form every water function reuses: a GraphTable (its hose graph is
    kept with it), or the hose graph itself for a compiled graph."""
    if isinstance(network, RoutingGraph):
        return hose_graph(network, params=params)
    if isinstance(network, nx.MultiDiGraph | nx.MultiGraph):
        return graph_table(network)
    return network


def _top_level_outline(grids: gpd.GeoDataFrame) -> shapely.Geometry:
    """The union of the coarsest grid level (every cell without a ``level`` column)."""
    top = grids["level"] == grids["level"].min() if "level" in grids else slice(None)
    return shapely.union_all(np.asarray(grids.geometry[top].values, dtype=object))


def _hydrant_status(rg: RoutingGraph, hydrants: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """Hydrants with ``working`` and ``street_m`` (metres to the nearest hose street)."""
    if hydrants is None:
        return None
    h = hydrants.copy()
    h["working"] = working_hydrants(hydrants)
    geoms = np.asarray(h.geometry.values, dtype=object)
    h["street_m"] = snap(rg, geoms).access_m if len(h) else np.zeros(0)
    return h
