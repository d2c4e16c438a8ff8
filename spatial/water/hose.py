"""The hose network: streets a hose may be laid along (metres, both ways) and where a hose
leaves a building, hydrant or intake for them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import networkx as nx
import numpy as np
import pandas as pd
import shapely

from firegrid.spatial.errors import NetworkError
from firegrid.spatial.network.profiles import default_profile
from firegrid.spatial.network.routing import (
    EdgeArrays,
    GraphTable,
    RoutingGraph,
    Snap,
    graph_table,
)
from firegrid.spatial.water.params import WaterParams


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
