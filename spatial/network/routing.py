"""Compiled road graph, snapping points onto edges, and multi-source shortest paths (scipy).

An osmnx graph is compiled once per vehicle profile into a :class:`RoutingGraph`: a scipy CSR
matrix of directed node-to-node costs plus an array of *segments* (one per street piece between
two nodes, whatever its directions) that points snap onto. Costs are seconds (``weight="time"``)
or metres (``weight="length"``).

Cost model of a segment ``a → b`` of a profile: a running part proportional to the distance
covered (``run``) plus a fixed delay on arriving at the far node (``fix``; the intersection delay).
A point at fraction ``f`` along the segment reaches ``b`` at ``(1 - f) * run_fwd + fix_fwd`` and
``a`` at ``f * run_back + fix_back``; a node reaches a point at fraction ``g`` at
``g * run_fwd`` (from ``a``) or ``(1 - g) * run_back`` (from ``b``); a direction a profile may
not use (one-way) costs ``inf``. The straight access leg between a point and its snap point
costs ``access_m * access_cost_per_m`` (the profile's access speed, or 1 per metre for lengths).

A point within ``NODE_SNAP_M`` of a segment's end is at that node (fraction exactly 0 or 1): it
is reached on reaching the node, intersection delay included. Points join only streets they
may join (:class:`firegrid.spatial.network.profiles.JoinRules`: ground level, no motorway). Turn restrictions
(:mod:`firegrid.spatial.network.turns`) add copies of their via nodes to the CSR; costs are reported per node.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from firegrid.spatial.errors import NetworkError
from firegrid.spatial.network.csr import csr_keep_zeros, min_cost_csr, min_pairs
from firegrid.spatial.network.profiles import WAY_TAGS, JoinRules, TagColumn
from firegrid.spatial.network.turns import apply_turn_restrictions
from firegrid.spatial.runtime import note, threads

if TYPE_CHECKING:
    from firegrid.spatial.network.profiles import VehicleProfile

# Straight pieces of street geometry are cut to at most this length (metres) before indexing
# their midpoints; shorter pieces certify the nearest edge with fewer candidates.
SNAP_PIECE_M = 40.0
# Points handled per block when snapping or expanding pairs (bounds temporary memory).
_BLOCK = 400_000
# Bucket grid for snapping (metres): pieces are listed in every cell within GRID_REACH_M, so a
# point's nearest street found within that reach is certain from its own cell alone; points
# farther from every street fall back to the KD-tree search.
GRID_CELL_M = 60.0
GRID_REACH_M = 40.0
# A snap point within this distance (metres, along the segment) of a segment's end node is that
# node: fraction exactly 0 or 1, so a point on an intersection pays its intersection delay.
NODE_SNAP_M = 1e-6
# Points per task when snapping on several threads (cKDTree and numpy release the GIL).
_CHUNK = 10_000
# Memory budget (bytes) for one batch of dense Dijkstra rows in cost_matrix.
DIJKSTRA_BATCH_BYTES = 256 * 2**20


@dataclass(eq=False)
class RoutingGraph:
    """A road network compiled for one vehicle profile.

    Attributes
    ----------
    csr : scipy.sparse.csr_matrix
        ``N × N`` directed costs between nodes (minimum over parallel edges).
    node_ids : numpy.ndarray
        Original node ids (OSM ids for osmnx graphs), position = node index.
    node_x, node_y : numpy.ndarray
        Node coordinates in ``crs`` (metres).
    seg_a, seg_b : numpy.ndarray
        Node indices at the two ends of each segment (geometry runs from ``a`` to ``b``).
    seg_length_m : numpy.ndarray
        Segment length (metres, the graph's ``length`` attribute).
    seg_geom : numpy.ndarray
        Shapely LineStrings in ``crs``, oriented ``a → b`` (a property: straight segments get
        their line on first use; ``seg_geom_raw`` holds None for them).
    run_fwd, fix_fwd, run_back, fix_back : numpy.ndarray
        Cost model per segment (see module docstring); ``run = inf`` where a direction is barred.
    segments : pandas.DataFrame
        One row per segment: ``u``, ``v``, ``key`` of a representative graph edge (``u``/``v``
        are original node ids of ``a``/``b``), ``highway``, ``name``, ``oneway`` (only one
        direction usable), ``length_m``.
    access_cost_per_m : float
        Cost of one metre of access leg (``1 / access speed`` for time, ``1`` for length).
    weight : str
        ``"time"`` (costs in seconds) or ``"length"`` (metres).
    crs : pyproj.CRS or None
        Projected CRS of all coordinates.
    profile : VehicleProfile or None
        The profile the graph was compiled for.
    """

    csr: sp.csr_matrix
    node_ids: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    seg_a: np.ndarray
    seg_b: np.ndarray
    seg_length_m: np.ndarray
    seg_geom_raw: np.ndarray
    run_fwd: np.ndarray
    fix_fwd: np.ndarray
    run_back: np.ndarray
    fix_back: np.ndarray
    segments: pd.DataFrame
    access_cost_per_m: float = 1.0
    weight: str = "length"
    crs: pyproj.CRS | None = None
    profile: VehicleProfile | None = None
    # Per segment: where an access leg or a hose may join (see snappable_segments); None: all.
    snappable: np.ndarray | None = None
    # Per input edge (the table's edge order): its segment, and whether it runs a -> b.
    edge_seg: np.ndarray | None = None
    edge_fwd: np.ndarray | None = None
    # Turn restrictions compiled into the CSR (firegrid.spatial.network.turns.TurnStates), None without.
    turns: Any = None
    # Shared by graphs compiled from one GraphTable: snapping indexes keyed by usable segments.
    _shared: dict = field(default_factory=dict, repr=False)
    # Work done on this graph, by kind ("snap": point sets actually snapped). A graph compiled
    # from a GraphTable counts into the table's own ``work`` (the same Counter object, not a
    # reference to the table), so one Counter shows a run's compilations and snaps.
    work: Counter = field(default_factory=Counter, repr=False)
    # Snaps already made on this graph (see snap): (coordinates digest, limit, joinable) -> Snap.
    _snaps: dict = field(default_factory=dict, repr=False)

    @cached_property
    def fastest_m_per_cost(self) -> float:
        """Metres of straight-line distance per unit of cost on the graph's fastest segment
        (node to node; inf where a segment costs nothing): how far any path of a given
        cost can get."""
        run = np.fmin(self.run_fwd, self.run_back)
        use = np.isfinite(run)
        a, b = self.seg_a[use], self.seg_b[use]
        chord = np.hypot(self.node_x[b] - self.node_x[a], self.node_y[b] - self.node_y[a])
        with np.errstate(divide="ignore", invalid="ignore"):
            speed = np.where(chord > 0, chord / run[use], 0.0)
        return float(speed.max(initial=0.0))

    @cached_property
    def segment_vertices(self) -> tuple[np.ndarray, ...]:
        """Every segment's vertices in order, computed once per graph.

        Returns ``(x, y, start, count, along, length)``: vertex coordinates (metres, the
        graph's CRS) of all segments one after another, each segment's first vertex and vertex
        count in them, each vertex's distance along its segment and each segment's length.
        """
        # Vertex coordinates per segment; straight segments straight from their nodes.
        raw = self.seg_geom_raw
        curved = np.flatnonzero(~pd.isna(raw))
        c_xy, c_idx = shapely.get_coordinates(raw[curved], return_index=True)
        st = np.flatnonzero(pd.isna(raw))
        s_xy = np.empty((2 * len(st), 2))
        s_xy[0::2, 0], s_xy[0::2, 1] = self.node_x[self.seg_a[st]], self.node_y[self.seg_a[st]]
        s_xy[1::2, 0], s_xy[1::2, 1] = self.node_x[self.seg_b[st]], self.node_y[self.seg_b[st]]
        gidx = np.concatenate([curved[c_idx], np.repeat(st, 2)])
        order = np.argsort(gidx, kind="stable")
        coords, gidx = np.concatenate([c_xy, s_xy])[order], gidx[order]
        step = np.zeros(len(coords))
        same = np.r_[False, gidx[1:] == gidx[:-1]]
        d = np.hypot(np.diff(coords[:, 0], prepend=0.0), np.diff(coords[:, 1], prepend=0.0))
        step[same] = d[same]
        csum = np.cumsum(step)
        vcount = np.bincount(gidx, minlength=self.n_segments)
        vstart = np.r_[0, np.cumsum(vcount)[:-1]]
        along = csum - csum[vstart][gidx]
        seglen = np.bincount(gidx, weights=step, minlength=self.n_segments)
        return coords[:, 0], coords[:, 1], vstart, vcount, along, seglen

    @property
    def seg_geom(self) -> np.ndarray:
        geom = self._shared.get("seg_geom")
        if geom is None or len(geom) != len(self.seg_geom_raw):
            raw = self.seg_geom_raw
            none = np.flatnonzero(pd.isna(raw))
            geom = raw
            if len(none):
                geom = raw.copy()
                a, b = self.seg_a[none], self.seg_b[none]
                geom[none] = shapely.linestrings(
                    np.stack([np.stack([self.node_x[a], self.node_y[a]], 1),
                              np.stack([self.node_x[b], self.node_y[b]], 1)], axis=1)
                )  # fmt: skip
            self._shared["seg_geom"] = geom
        return geom

    def lines(self, idx: np.ndarray) -> np.ndarray:
        """Geometries of segments ``idx`` (a → b) without drawing every straight segment."""
        full = self._shared.get("seg_geom")
        if full is not None and len(full) == len(self.seg_geom_raw):
            return full[idx]
        out = np.array(self.seg_geom_raw[idx], dtype=object)
        none = np.flatnonzero(pd.isna(out))
        if len(none):
            a, b = self.seg_a[idx][none], self.seg_b[idx][none]
            out[none] = shapely.linestrings(
                np.stack([np.stack([self.node_x[a], self.node_y[a]], 1),
                          np.stack([self.node_x[b], self.node_y[b]], 1)], axis=1)
            )  # fmt: skip
        return out

    @property
    def n_nodes(self) -> int:
        return len(self.node_x)

    @property
    def n_states(self) -> int:
        """Rows of ``csr``: the nodes, then the node copies of turn restrictions (if any)."""
        return self.csr.shape[0]

    def incident_segments(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every segment touching each of ``nodes``: (position in ``nodes``, segment)."""
        return _expand(np.asarray(nodes, dtype=np.int64), self._node_segments)

    @property
    def n_segments(self) -> int:
        return len(self.seg_a)

    def __repr__(self) -> str:
        name = self.profile.name if self.profile is not None else "none"
        return (
            f"RoutingGraph(profile={name!r}, weight={self.weight!r}, nodes={self.n_nodes}, "
            f"segments={self.n_segments}, edges={self.csr.nnz})"
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_graph(
        cls,
        G: nx.MultiDiGraph | GraphTable,
        profile: VehicleProfile | None = None,
        *,
        weight: str = "time",
        directed: bool | None = None,
    ) -> RoutingGraph:
        """Compile a projected osmnx graph (or a GraphTable) for a vehicle profile.

        Same as ``graph_table(G).compiled(profile, ...)``: compiled once per table; to compile
        several profiles of an osmnx graph, read the table once with :func:`graph_table`.
        """
        return graph_table(G).compiled(profile, weight=weight, directed=directed)

    @classmethod
    def from_table(
        cls,
        table: GraphTable,
        profile: VehicleProfile | None = None,
        *,
        weight: str = "time",
        directed: bool | None = None,
    ) -> RoutingGraph:
        """Compile a road network table for a vehicle profile, anew on every call.

        Steps share one compiled graph per profile through :meth:`GraphTable.compiled`,
        which calls this once per profile.

        Parameters
        ----------
        table : GraphTable
            The network read once (:func:`firegrid.spatial.network.load.read_network`, or :func:`graph_table`
            of an osmnx graph), projected CRS (metres).
        profile : VehicleProfile, optional
            Which edges are usable (:meth:`VehicleProfile.usable`: highway class, access tags,
            barriers), speeds, intersection delay, one-way rule, turn restrictions and access
            speed. ``None``: every edge usable, ``weight`` must be ``"length"``.
        weight : {"time", "length"}
            Cost unit: seconds (needs a profile) or metres.
        directed : bool, optional
            Obey edge directions (one-way streets). Default: the profile's ``respect_oneway``,
            or ``False`` without a profile (e.g. hose laid on foot).

        Returns
        -------
        RoutingGraph
            Every edge of the table is compiled, those the profile cannot use at infinite cost,
            so all profiles of one table share the same segments (a point snapped once serves
            them all). A barrier node the profile cannot pass costs ``inf`` to arrive at.
            Its ``work`` is the table's.
        """
        if weight not in ("time", "length"):
            raise NetworkError(f"weight must be 'time' or 'length', got {weight!r}")
        if weight == "time" and profile is None:
            raise NetworkError("weight='time' needs a vehicle profile")
        if directed is None:
            directed = bool(profile.respect_oneway) if profile is not None else False
        costs = _ProfileCosts.of(table, profile, weight)
        rg = cls.from_arrays(
            EdgeArrays.of_table(table),
            costs.run,
            node_delay=costs.node_delay,
            directed=directed,
            access_cost_per_m=costs.access_cost_per_m,
            weight=weight,
            profile=profile,
            grouping=table.grouping,
        )
        if profile is not None and profile.turn_restrictions and len(table.restrictions):
            # H6: edge-based search where a restriction applies (spatial/network/turns.py).
            rg = apply_turn_restrictions(rg, table.restrictions)
        # H6: where access legs and hoses may join (ground-level streets, JoinRules).
        rg.snappable = snappable_segments(rg, table, rules=getattr(profile, "join", None))
        rg.work = table.work
        return rg

    @classmethod
    def from_arrays(
        cls,
        edges: EdgeArrays,
        run: np.ndarray,
        *,
        node_delay: np.ndarray | None = None,
        directed: bool = True,
        access_cost_per_m: float = 1.0,
        weight: str = "length",
        profile: VehicleProfile | None = None,
        grouping: _Grouping | None = None,
    ) -> RoutingGraph:
        """Compile from plain arrays of directed edges ``u → v`` (node indices).

        Parameters
        ----------
        edges : EdgeArrays
            Nodes (coordinates in metres, projected CRS) and directed edges; a two-way street
            appears once in each direction.
        run : array of float
            Per edge, the cost of traversing the whole edge, proportional to distance (seconds
            or metres; ``inf``: the edge cannot be used).
        node_delay : array of float, optional
            Fixed cost added on arriving at each node (intersection delay), default 0.
        directed : bool
            Obey directions; if False each edge is usable both ways at its cost.
        access_cost_per_m, weight, profile
            See :class:`RoutingGraph`.
        grouping : optional
            The profile-independent grouping of edges into segments, reused across profiles.
        """
        e = edges.checked()
        n = len(e.node_x)
        run = np.asarray(run, dtype=float)
        if not (run >= 0).all():
            raise NetworkError("edge costs must be >= 0 (inf: the edge cannot be used)")
        node_delay = np.zeros(n) if node_delay is None else np.asarray(node_delay, dtype=float)
        grp = grouping if grouping is not None else _group_segments(e.u, e.v, e.length_m,
                                                                    e.geometry, e.node_x,
                                                                    e.node_y)  # fmt: skip
        run_fwd, run_back = _segment_runs(grp, run, directed)
        fix_fwd = node_delay[grp.seg_b].astype(float)
        fix_back = node_delay[grp.seg_a].astype(float)
        ids = np.arange(n) if e.node_ids is None else np.asarray(e.node_ids)
        return cls(
            csr=_node_csr(grp, run_fwd, run_back, fix_fwd, fix_back, n),
            node_ids=ids,
            node_x=e.node_x,
            node_y=e.node_y,
            seg_a=grp.seg_a,
            seg_b=grp.seg_b,
            seg_length_m=e.length_m[grp.first],
            seg_geom_raw=grp.geom,
            run_fwd=run_fwd,
            fix_fwd=fix_fwd,
            run_back=run_back,
            fix_back=fix_back,
            segments=_segments_frame(grp, e, ids, run_fwd, run_back),
            access_cost_per_m=float(access_cost_per_m),
            weight=weight,
            crs=pyproj.CRS.from_user_input(e.crs) if e.crs is not None else None,
            profile=profile,
            edge_seg=grp.seg_of,
            edge_fwd=grp.fwd,
            _shared=grp.cache,
        )

    # ------------------------------------------------------------------ snapping index
    @property
    def _pieces(self) -> _PieceIndex:
        # Looked up on every snap (not cached on the graph): `snappable` may be set later.
        key = ("pieces", self._join_key)
        if key not in self._shared:
            self._shared[key] = _PieceIndex.build(self, np.flatnonzero(self.join_ok))
        return self._shared[key]

    @property
    def _join_key(self) -> str:
        """Digest of :attr:`join_ok` (the segments points may join)."""
        return hashlib.sha1(np.packbits(self.join_ok).tobytes()).hexdigest()

    @property
    def join_ok(self) -> np.ndarray:
        """Per segment: points may snap onto it (usable by the profile and ``snappable``)."""
        return self.usable if self.snappable is None else self.usable & self.snappable

    @property
    def usable(self) -> np.ndarray:
        """Per segment: the profile can travel it in at least one direction."""
        return np.isfinite(self.run_fwd) | np.isfinite(self.run_back)

    @cached_property
    def _node_segments(self):
        """CSR-like lists node -> incident segments (self-loops listed once)."""
        loop = self.seg_a == self.seg_b
        keys = np.concatenate([self.seg_a, self.seg_b[~loop]])
        segs = np.concatenate([np.arange(self.n_segments), np.flatnonzero(~loop)])
        indptr, order = _group(keys, self.n_nodes)
        return indptr, segs[order]

    def segments_gdf(self) -> gpd.GeoDataFrame:
        """The segments as a GeoDataFrame (one row per street piece, geometry ``a → b``)."""
        return gpd.GeoDataFrame(self.segments.copy(), geometry=self.seg_geom, crs=self.crs)

    def to_networkx(self) -> nx.DiGraph:
        """The node-to-node cost graph as a networkx DiGraph (edge attribute ``cost``).

        For cross-checks against networkx; nodes are node indices (with turn restrictions,
        the via-node copies follow as nodes ``n_nodes ..``, see :mod:`firegrid.spatial.network.turns`).
        """
        coo = self.csr.tocoo()
        D = nx.DiGraph()
        D.add_nodes_from(range(self.n_nodes))
        D.add_weighted_edges_from(
            zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True),
            weight="cost",
        )
        return D


@dataclass(eq=False)
class GraphTable:
    """The road network read once: node arrays and directed edge arrays, no networkx.

    Built by :func:`firegrid.spatial.network.osm.read_osm` (OSM files) or :func:`graph_table` (osmnx graphs).

    Attributes
    ----------
    node_ids : numpy.ndarray
        OSM node ids (int64), position = node index.
    xy : numpy.ndarray
        ``N × 2`` node coordinates in ``crs`` (float64, metres).
    edges : pandas.DataFrame
        One row per directed edge: ``u``, ``v`` (node ids), ``key``, ``highway``, ``name``,
        ``oneway`` (the street is one-way), ``way_id`` (OSM way, -1 when unknown).
    u, v : numpy.ndarray
        Edge end points as node indices; a two-way street is two edges ``u → v`` and ``v → u``.
    geom : numpy.ndarray
        LineString ``u → v`` per edge, None for a straight edge.
    length : numpy.ndarray
        Edge length (metres).
    crs : pyproj.CRS
        Projected working CRS.
    highway, service, maxspeed : TagColumn
        The tags compiling needs (also in ``tags``).
    tags : dict of str -> TagColumn
        Per edge, the tags of the edge's OWN way (``firegrid.spatial.network.osm.WAY_TAGS``; fewer for osmnx
        graphs, whose simplified edges may merge ways).
    restrictions : pandas.DataFrame
        Turn restrictions: ``from_edge``, ``via_node``, ``to_edge`` (indices), ``kind``
        (``"no"``/``"only"``), ``restriction`` (raw value), ``relation_id``.
    barrier_nodes : numpy.ndarray
        Node indices carrying a ``barrier`` tag.
    node_tags : dict of str -> TagColumn
        Per node, the barrier tags (``barrier``, ``access``, ``motor_vehicle``, …; "" elsewhere).
    lonlat : numpy.ndarray or None
        ``N × 2`` WGS84 longitude/latitude of the nodes where known.
    stats : dict
        Figures of the read for validation (ways read, ways cut at the extract's edge, …).
    edge_segment : numpy.ndarray or None
        Street piece of each edge when the reader knows it (the two directions of one piece);
        otherwise pieces are found by end nodes and length.
    """

    node_ids: np.ndarray
    xy: np.ndarray
    edges: pd.DataFrame
    u: np.ndarray
    v: np.ndarray
    geom: np.ndarray
    length: np.ndarray
    crs: pyproj.CRS
    highway: TagColumn
    service: TagColumn
    maxspeed: TagColumn
    tags: dict = field(default_factory=dict)
    restrictions: pd.DataFrame | None = None
    barrier_nodes: np.ndarray | None = None
    node_tags: dict = field(default_factory=dict)
    lonlat: np.ndarray | None = None
    stats: dict = field(default_factory=dict)
    edge_segment: np.ndarray | None = None

    def __post_init__(self) -> None:
        for key in ("highway", "service", "maxspeed"):
            self.tags.setdefault(key, getattr(self, key))
        if "name" not in self.tags and "name" in self.edges:
            self.tags["name"] = TagColumn.of(self.edges["name"].to_numpy())
        if self.restrictions is None:
            self.restrictions = pd.DataFrame(
                {
                    "from_edge": pd.Series(dtype=np.int64),
                    "via_node": pd.Series(dtype=np.int64),
                    "to_edge": pd.Series(dtype=np.int64),
                    "kind": pd.Series(dtype=object),
                    "restriction": pd.Series(dtype=object),
                    "relation_id": pd.Series(dtype=np.int64),
                }
            )
        if self.barrier_nodes is None:
            self.barrier_nodes = np.zeros(0, dtype=np.int64)
        if "way_id" not in self.edges:
            self.edges["way_id"] = np.int64(-1)
        if "oneway" not in self.edges:
            self.edges["oneway"] = False

    def __repr__(self) -> str:
        return (
            f"GraphTable(nodes={self.n_nodes:,}, edges={self.n_edges:,}, "
            f"restrictions={len(self.restrictions):,}, crs={self.crs.to_string()!r})"
        )

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    def memo(self, key: tuple, build: Callable[[], Any]) -> Any:
        """``build()`` computed once per ``key`` for this network and kept with it.

        A run holds one network, so every step that compiles a profile (``("compile", …)``)
        or derives a graph from one (the hose graph) shares the result instead of
        building it again. ``work`` counts the builds by ``key[0]`` (tests read it).
        """
        memo = self.__dict__.setdefault("_memo", {})
        if key not in memo:
            memo[key] = build()
            self.work[key[0]] += 1
        return memo[key]

    def forget_snaps(self) -> None:
        """Drop the point sets' snaps kept on the graphs compiled from this table.

        Steps of a run snap the same buildings again and again and find them kept (see
        :func:`snap`); once the steps are done nothing reads them, and a city's are about
        half a GiB (5 M buildings). A later snap of the same points is made again, equal.
        """
        for kept in self.__dict__.get("_memo", {}).values():
            if isinstance(kept, RoutingGraph):
                kept._snaps.clear()

    @cached_property
    def work(self) -> Counter:
        """Builds done by :meth:`memo`, by kind (``"compile"``, ``"hose"`` …), and point sets
        snapped onto the graphs compiled from this table (``"snap"``, see :func:`snap`)."""
        return Counter()

    def compiled(
        self,
        profile: VehicleProfile | None = None,
        *,
        weight: str = "time",
        directed: bool | None = None,
    ) -> RoutingGraph:
        """The network compiled for ``profile``: built on first request, then shared.

        The one way to get a compiled graph of a network that steps share: each distinct
        profile (equal profiles are one), weight and direction rule is compiled once per
        table (:meth:`memo` key ``("compile", profile, weight, directed)``). Parameters as
        :meth:`RoutingGraph.from_table`, which compiles anew on every call. Treat the graph
        as read-only: every caller of this table gets the same object.
        """
        if directed is None:
            directed = bool(profile.respect_oneway) if profile is not None else False
        return self.memo(
            ("compile", profile, weight, directed),
            lambda: RoutingGraph.from_table(self, profile, weight=weight, directed=directed),
        )

    def tag(self, key: str) -> TagColumn:
        """Per-edge values of a way tag ("" where the way lacks it or the tag was not kept)."""
        col = self.tags.get(key)
        if col is None:
            return TagColumn(np.zeros(self.n_edges, dtype=np.int64), np.array([""], dtype=object))
        return col

    def node_tag(self, key: str) -> TagColumn:
        """Per-node values of a barrier-node tag ("" elsewhere)."""
        col = self.node_tags.get(key)
        if col is None:
            return TagColumn(np.zeros(self.n_nodes, dtype=np.int64), np.array([""], dtype=object))
        return col

    @cached_property
    def grouping(self) -> _Grouping:
        if self.edge_segment is None:
            return _group_segments(self.u, self.v, self.length, self.geom, self.xy[:, 0],
                                   self.xy[:, 1])  # fmt: skip
        # The reader's pieces, exactly: two streets between the same nodes with the same length
        # stay two segments. Segments sorted by end nodes, as _group_segments sorts them.
        u, v, piece = self.u, self.v, np.asarray(self.edge_segment)
        a, b = np.minimum(u, v), np.maximum(u, v)
        fwd = u == a
        n = int(piece.max()) + 1 if len(piece) else 0
        pa = np.zeros(n, dtype=np.int64)
        pb = np.zeros(n, dtype=np.int64)
        pa[piece], pb[piece] = a, b
        rank = np.empty(n, dtype=np.int64)
        rank[np.lexsort((np.arange(n), pb, pa))] = np.arange(n)
        seg_of = rank[piece]
        order = np.lexsort((~fwd, seg_of))
        first = order[np.r_[True, seg_of[order][1:] != seg_of[order][:-1]]]
        geom = np.array(np.asarray(self.geom, dtype=object)[first], dtype=object)
        flip = ~fwd[first] & ~pd.isna(geom)
        if flip.any():
            geom[flip] = shapely.reverse(geom[flip])
        return _Grouping(first, seg_of, fwd, a[first], b[first], geom)

    def roads_layer(self) -> gpd.GeoDataFrame:
        """Street pieces as a GeoDataFrame, both directions of a street merged into one row.

        Columns ``highway``, ``name``, ``oneway`` (only one direction exists), ``length_m``
        (metres), ``way_id``; geometry in ``crs``.
        """
        grp = self.grouping
        first = grp.first
        n_dir = np.bincount(grp.seg_of, minlength=len(first))
        hw = self.highway.values()[first]
        name = self.tag("name").values()[first]
        lines = np.array(grp.geom, dtype=object)
        none = np.flatnonzero(pd.isna(lines))
        if len(none):
            a, b = grp.seg_a[none], grp.seg_b[none]
            lines[none] = shapely.linestrings(np.stack([self.xy[a], self.xy[b]], axis=1))
        return gpd.GeoDataFrame(
            {
                "highway": hw,
                "name": np.where(name == "", None, name),
                "oneway": (n_dir == 1) & (grp.seg_a != grp.seg_b),
                "length_m": self.length[first],
                "way_id": self.edges["way_id"].to_numpy()[first],
            },
            geometry=lines,
            crs=self.crs,
        )

    def to_networkx(self) -> nx.MultiDiGraph:
        """The network as an osmnx-compatible projected MultiDiGraph, for analysts.

        Graph attribute ``crs``; nodes with ``x``/``y`` (metres, ``crs``), ``lon``/``lat``
        where known and ``street_count``; edges keyed like osmnx with ``osmid`` (way id),
        ``highway``, ``name``, ``oneway``, ``reversed``, ``length`` (metres), ``geometry``
        (where not straight) and the other kept tags that are set. Usable with
        ``osmnx.convert.graph_to_gdfs``, ``osmnx.routing.shortest_path`` etc.
        """
        G = nx.MultiDiGraph(crs=self.crs)
        nid = self.node_ids.tolist()
        nodes: list[tuple[Any, dict]] = []
        grp = self.grouping
        ends = np.concatenate([grp.seg_a, grp.seg_b[grp.seg_a != grp.seg_b]])
        count = np.bincount(ends, minlength=self.n_nodes).tolist()
        x, y = self.xy[:, 0].tolist(), self.xy[:, 1].tolist()
        ll = self.lonlat.tolist() if self.lonlat is not None else None
        for i, n in enumerate(nid):
            d = {"x": x[i], "y": y[i], "street_count": count[i]}
            if ll is not None:
                d["lon"], d["lat"] = ll[i]
            nodes.append((n, d))
        G.add_nodes_from(nodes)
        cols = {k: c.values() for k, c in self.tags.items() if k not in ("highway", "oneway")}
        hw = self.highway.values()
        way = self.edges["way_id"].to_numpy().tolist()
        keys = self.edges["key"].to_numpy().tolist()
        oneway = self.edges["oneway"].to_numpy().tolist()
        length = self.length.tolist()
        geom = self.geom
        us, vs = self.node_ids[self.u].tolist(), self.node_ids[self.v].tolist()
        items = []
        for i in range(self.n_edges):
            d = {"osmid": way[i], "highway": hw[i], "oneway": bool(oneway[i]),
                 "length": length[i]}  # fmt: skip
            for k, col in cols.items():
                val = col[i]
                if val != "":
                    d[k] = val
            if geom[i] is not None:
                d["geometry"] = geom[i]
            items.append((us[i], vs[i], keys[i], d))
        G.add_edges_from(items)
        return G


@dataclass(frozen=True, eq=False)
class EdgeArrays:
    """A road network as plain arrays, for :meth:`RoutingGraph.from_arrays`.

    Attributes
    ----------
    node_x, node_y : array of float
        Node coordinates (metres, projected CRS ``crs``).
    u, v : array of int
        Directed edges as node indices; a two-way street appears once in each direction.
    length_m : array of float
        Edge length (metres).
    geometry : array of LineString, optional
        Edge geometry from ``u`` to ``v`` (None: straight); straight lines when omitted.
    node_ids : array, optional
        Original node ids (default ``0..N-1``).
    edge_meta : pandas.DataFrame, optional
        Per edge ``u``, ``v``, ``key``, ``highway``, ``name`` kept in ``segments``.
    crs : optional
        The projected CRS of the coordinates.
    """

    node_x: np.ndarray
    node_y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length_m: np.ndarray
    geometry: np.ndarray | None = None
    node_ids: np.ndarray | None = None
    edge_meta: pd.DataFrame | None = None
    crs: Any = None

    @classmethod
    def of_table(cls, table: GraphTable) -> EdgeArrays:
        """The edges of a network table."""
        return cls(table.xy[:, 0], table.xy[:, 1], table.u, table.v, table.length,
                   geometry=table.geom, node_ids=table.node_ids,
                   edge_meta=table.edges[["u", "v", "key", "highway", "name"]],
                   crs=table.crs)  # fmt: skip

    @classmethod
    def of_segments(cls, rg: RoutingGraph, keep: np.ndarray | None = None) -> EdgeArrays:
        """The segments of a compiled graph (those where ``keep``, default all) as edges
        ``a → b``, with their geometry, node ids, ``segments`` columns and CRS."""
        sel = np.arange(rg.n_segments) if keep is None else np.flatnonzero(keep)
        meta = rg.segments[["u", "v", "key", "highway", "name"]].iloc[sel].reset_index(drop=True)
        return cls(rg.node_x, rg.node_y, rg.seg_a[sel], rg.seg_b[sel], rg.seg_length_m[sel],
                   geometry=rg.seg_geom_raw[sel], node_ids=rg.node_ids, edge_meta=meta,
                   crs=rg.crs)  # fmt: skip

    def checked(self) -> EdgeArrays:
        """The arrays as float64 / int64, edges referring to existing nodes (else NetworkError)."""
        n = len(self.node_x)
        u = np.asarray(self.u, dtype=np.int64)
        v = np.asarray(self.v, dtype=np.int64)
        if ((u < 0) | (u >= n) | (v < 0) | (v >= n)).any():
            raise NetworkError("edge end points refer to nodes that do not exist")
        return replace(
            self,
            node_x=np.asarray(self.node_x, dtype=float),
            node_y=np.asarray(self.node_y, dtype=float),
            u=u,
            v=v,
            length_m=np.asarray(self.length_m, dtype=float),
        )


@dataclass(frozen=True, eq=False)
class _ProfileCosts:
    """Per-edge running cost (``inf`` where the profile may not go), per-node arrival delay
    (``inf`` at a barrier it cannot pass) and the access-leg cost per metre of a profile."""

    run: np.ndarray
    node_delay: np.ndarray
    access_cost_per_m: float

    @classmethod
    def of(cls, t: GraphTable, profile: VehicleProfile | None, weight: str) -> _ProfileCosts:
        if profile is not None:
            keep = profile.usable(t)
            blocked = profile.blocked_nodes(t)
        else:
            keep = np.ones(len(t.u), dtype=bool)
            blocked = np.zeros(t.n_nodes, dtype=bool)
        if weight == "time":
            run = t.length / profile.speed_mps(t.highway, t.maxspeed)
            access_cost = 1.0 / profile.access_speed_mps
            delay = profile.intersection_delay_s
        else:
            run = t.length.copy()
            access_cost = 1.0
            delay = 0.0
        if not keep.any():
            raise NetworkError(
                f"no street in the network is usable by profile "
                f"'{profile.name if profile else 'none'}'"
            )
        node_delay = np.where(_intersections(t.grouping, keep, t.n_nodes), delay, 0.0)
        node_delay[blocked] = np.inf
        return cls(np.where(keep, run, np.inf), node_delay, access_cost)


def _intersections(grp: _Grouping, keep: np.ndarray, n: int) -> np.ndarray:
    """Nodes where three or more usable street pieces meet (a loop counts at both its ends),
    so a small ring hanging off a street makes a junction too."""
    seg_ok = np.zeros(len(grp.first), dtype=bool)
    seg_ok[grp.seg_of[keep]] = True
    sa, sb = grp.seg_a[seg_ok], grp.seg_b[seg_ok]
    return np.bincount(sa, minlength=n) + np.bincount(sb, minlength=n) >= 3


def _segment_runs(grp: _Grouping, run: np.ndarray, directed: bool):
    """Running cost of each segment a → b and b → a: the cheapest of its edges that way
    (``inf`` where none may go; a loop costs the same both ways)."""
    n_seg = len(grp.first)
    seg_of, fwd = grp.seg_of, grp.fwd
    run_fwd = np.full(n_seg, np.inf)
    run_back = np.full(n_seg, np.inf)
    np.minimum.at(run_fwd, seg_of[fwd], run[fwd])
    np.minimum.at(run_back, seg_of[~fwd], run[~fwd])
    loop = grp.seg_a == grp.seg_b
    run_back[loop] = np.minimum(run_back[loop], run_fwd[loop])
    run_fwd[loop] = run_back[loop]
    if not directed:
        both = np.minimum(run_fwd, run_back)
        run_fwd, run_back = both, both.copy()
    return run_fwd, run_back


def _segments_frame(grp: _Grouping, e: EdgeArrays, ids, run_fwd, run_back) -> pd.DataFrame:
    """One row per segment: its representative edge's ``u``, ``v``, ``key``, ``highway``,
    ``name``, whether usable, one-way, and its length (metres)."""
    first = grp.first
    meta = (
        e.edge_meta.iloc[first].reset_index(drop=True)
        if e.edge_meta is not None
        else pd.DataFrame({"u": e.u[first], "v": e.v[first], "key": 0})
    )
    return pd.DataFrame(
        {
            "u": ids[grp.seg_a],
            "v": ids[grp.seg_b],
            "key": meta["key"].to_numpy() if "key" in meta else 0,
            "highway": meta["highway"].to_numpy() if "highway" in meta else None,
            "name": meta["name"].to_numpy() if "name" in meta else None,
            "usable": np.isfinite(run_fwd) | np.isfinite(run_back),
            "oneway": np.isfinite(run_fwd) != np.isfinite(run_back),
            "length_m": e.length_m[first],
        }
    )


def _node_csr(grp: _Grouping, run_fwd, run_back, fix_fwd, fix_back, n: int) -> sp.csr_matrix:
    """Node-to-node CSR: both usable directions of each segment (running cost plus arrival
    delay), minimum over parallels; a loop once."""
    ok_f = np.isfinite(run_fwd)
    ok_b = np.isfinite(run_back) & (grp.seg_a != grp.seg_b)
    rows = np.concatenate([grp.seg_a[ok_f], grp.seg_b[ok_b]])
    cols = np.concatenate([grp.seg_b[ok_f], grp.seg_a[ok_b]])
    w = np.concatenate([run_fwd[ok_f] + fix_fwd[ok_f], run_back[ok_b] + fix_back[ok_b]])
    return min_cost_csr(rows, cols, w, n)


# Edge attributes read from osmnx graphs: the tags the access rules read, and the way id.
_EDGE_ATTRS = (*WAY_TAGS, "osmid")


@dataclass(eq=False)
class _Grouping:
    """Directed edges grouped into segments (independent of any profile)."""

    first: np.ndarray  # representative edge of each segment
    seg_of: np.ndarray  # segment of each edge
    fwd: np.ndarray  # edge runs a -> b
    seg_a: np.ndarray
    seg_b: np.ndarray
    geom: np.ndarray  # segment geometry, a -> b
    cache: dict = field(default_factory=dict)  # indexes shared by the graphs built on it


def _group_segments(u, v, length_m, geometry, node_x, node_y) -> _Grouping:
    """Same end nodes and same length (to the centimetre): the two directions of one street."""
    a = np.minimum(u, v)
    b = np.maximum(u, v)
    fwd = u == a  # edge runs a -> b (self-loops count as forward)
    lkey = np.round(np.asarray(length_m) * 100.0).astype(np.int64)
    order = np.lexsort((~fwd, lkey, b, a))
    ka, kb, kl = a[order], b[order], lkey[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (ka[1:] != ka[:-1]) | (kb[1:] != kb[:-1]) | (kl[1:] != kl[:-1])
    seg_of = np.empty(len(order), dtype=np.int64)
    seg_of[order] = np.cumsum(new) - 1
    first = order[new]
    seg_a, seg_b = a[first], b[first]
    if geometry is None:
        geom = np.full(len(first), None, dtype=object)
    else:
        geom = np.array(np.asarray(geometry, dtype=object)[first], dtype=object)
        # Straight edges stay None (RoutingGraph.seg_geom draws them when first needed).
        flip = ~fwd[first] & ~pd.isna(geom)
        if flip.any():
            geom[flip] = shapely.reverse(geom[flip])
    return _Grouping(first, seg_of, fwd, seg_a, seg_b, geom)


def graph_table(G: nx.MultiDiGraph | GraphTable) -> GraphTable:
    """The network as a :class:`GraphTable`; a GraphTable is returned as it is.

    A projected osmnx graph is read into arrays in one pass over its edges. Straight lines
    stand in for missing edge geometries; a missing ``length`` is the geometric length
    (metres). Edge tags kept: ``_EDGE_ATTRS`` (osmnx lists, from merged ways, stay as their
    repr; profiles pick the most important class of such a list).
    """
    if isinstance(G, GraphTable):
        return G
    crs = _graph_crs(G)
    node_ids = np.fromiter(G.nodes, dtype=object, count=G.number_of_nodes())
    if len(node_ids) == 0:
        raise NetworkError("the road network has no nodes")
    try:
        node_ids = node_ids.astype(np.int64)
    except (TypeError, ValueError, OverflowError):
        pass
    nodes = G.nodes
    xy = np.array([(d["x"], d["y"]) for d in nodes.values()], dtype=float)
    # Walk the adjacency dicts directly: several times faster than G.edges(data=True) views.
    adj = getattr(G, "_adj", None) or G.adj
    rows = [
        (u, v, k, d) for u, nbrs in adj.items() for v, kd in nbrs.items() for k, d in kd.items()
    ]
    if not rows:
        raise NetworkError("the road network has no edges")
    us, vs, keys, data = zip(*rows, strict=True)
    del rows
    cols = {"u": us, "v": vs, "key": keys}
    for attr in _EDGE_ATTRS:
        cols[attr] = [d.get(attr) for d in data]
    edges = pd.DataFrame({k: pd.Series(list(c), dtype=object) for k, c in cols.items()})
    osmid = edges.pop("osmid")
    edges["way_id"] = np.array(
        [o if isinstance(o, int | np.integer) else -1 for o in osmid], dtype=np.int64
    )
    edges["oneway"] = edges["oneway"].map(lambda o: o is True or o == "True").astype(bool)
    index = pd.Index(node_ids)
    u = index.get_indexer(np.asarray(us, dtype=node_ids.dtype))
    v = index.get_indexer(np.asarray(vs, dtype=node_ids.dtype))
    # Missing geometries (straight edges) stay None here; segments get straight lines later.
    geom = np.array([d.get("geometry") for d in data], dtype=object)
    length = np.array([d.get("length", np.nan) for d in data], dtype=float)
    bad = ~np.isfinite(length)
    if bad.any():
        line = geom[bad]
        none = pd.isna(line)
        line[none] = shapely.linestrings(np.stack([xy[u[bad][none]], xy[v[bad][none]]], axis=1))
        length[bad] = shapely.length(line)
    tags = {
        k: TagColumn.of(edges[k].to_numpy()) for k in _EDGE_ATTRS if k not in ("osmid", "oneway")
    }
    stats = {"nodes": len(node_ids), "edges": len(u), "oneway_edges": int(edges["oneway"].sum())}
    return GraphTable(
        node_ids, xy, edges, u, v, geom, length, crs,
        tags["highway"], tags["service"], tags["maxspeed"], tags=tags, stats=stats,
    )  # fmt: skip


@dataclass(eq=False)
class Snap:
    """Points placed at their nearest point on the nearest segment of a RoutingGraph.

    Attributes
    ----------
    seg : numpy.ndarray of int
        Segment index, ``-1`` where the point is missing or farther than ``max_snap_m``.
    frac : numpy.ndarray of float
        Position along the segment from ``a`` (0) to ``b`` (1), by geometric length; exactly
        0 or 1 when the snap point is within ``NODE_SNAP_M`` (1 µm) of that end node.
    access_m : numpy.ndarray of float
        Straight distance (metres) from the point to its snap point; reported even when the
        point was too far to snap (NaN for a missing geometry).
    x, y : numpy.ndarray of float
        Snap point coordinates (NaN where not snapped).
    px, py : numpy.ndarray of float
        The original point coordinates (representative point of polygons).
    """

    seg: np.ndarray
    frac: np.ndarray
    access_m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    px: np.ndarray
    py: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)  # groupings reused across calls

    def __len__(self) -> int:
        return len(self.seg)

    @property
    def ok(self) -> np.ndarray:
        """True where the point snapped onto the network."""
        return self.seg >= 0

    def take(self, idx: np.ndarray) -> Snap:
        """The subset of points at positions ``idx`` (the Snap itself if that is all of them)."""
        if len(idx) == len(self) and (len(idx) == 0 or (idx[0] == 0 and idx[-1] == len(idx) - 1)):
            if np.array_equal(idx, np.arange(len(self))):
                return self
        return Snap(*(getattr(self, f)[idx] for f in ("seg", "frac", "access_m", "x", "y",
                                                       "px", "py")))  # fmt: skip

    @classmethod
    def at(cls, rg: RoutingGraph, seg: np.ndarray, frac: np.ndarray) -> Snap:
        """Points lying on segments at given fractions (access distance 0)."""
        seg = np.asarray(seg, dtype=np.int64)
        frac = np.clip(np.asarray(frac, dtype=float), 0.0, 1.0)
        x, y = _points_along(rg, seg, frac)
        return cls(seg, frac, np.zeros(len(seg)), x, y, x, y)

    def connectors(self) -> np.ndarray:
        """Straight lines from each original point to its snap point (None where not snapped)."""
        out = np.full(len(self), None, dtype=object)
        ok = self.ok
        coords = np.stack(
            [np.stack([self.px[ok], self.py[ok]], 1), np.stack([self.x[ok], self.y[ok]], 1)], 1
        )
        out[ok] = shapely.linestrings(coords)
        return out


def _points_along(rg: RoutingGraph, seg: np.ndarray, frac: np.ndarray):
    """The point at ``frac`` of each segment's geometric length (x, y in metres, ``rg.crs``).

    The same float64 steps as GEOS ``line_interpolate_point(normalized=True)`` (3.14:
    ``LengthLocationMap.getLocationForward``, ``LinearLocation.pointAlongSegmentByFraction``)
    without building a shapely line per point: bit for bit its result (tests compare);
    NaN where ``frac`` is NaN.
    """
    x = np.empty(len(seg))
    y = np.empty(len(seg))
    curved = ~pd.isna(rg.seg_geom_raw[seg])
    st = np.flatnonzero(~curved)
    a, b = rg.seg_a[seg[st]], rg.seg_b[seg[st]]
    x0, y0, x1, y1 = rg.node_x[a], rg.node_y[a], rg.node_x[b], rg.node_y[b]
    piece_len = np.sqrt((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0))
    # A straight line is one piece: GEOS's length and running total are that piece's length.
    x[st], y[st] = _along_piece(frac[st] * piece_len, 0.0, piece_len, x0, y0, x1, y1)
    cv = np.flatnonzero(curved)
    if len(cv):
        x[cv], y[cv] = _along_curved(rg.seg_geom_raw, seg[cv], frac[cv])
    gone = np.isnan(frac)  # GEOS gives no point there
    x[gone], y[gone] = np.nan, np.nan
    return x, y


def _along_piece(length, before, piece_len, x0, y0, x1, y1):
    """GEOS: the point ``length`` along a line whose piece ``(x0, y0) → (x1, y1)`` ends the
    first past ``length`` (``before``: the running total at its start); the end vertex where
    no piece ends past it, the start where ``length <= 0``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ends_past = before + piece_len > length
        f = (length - before) / piece_len
        x = np.where(f >= 1.0, x1, (x1 - x0) * f + x0)
        y = np.where(f >= 1.0, y1, (y1 - y0) * f + y0)
    start = (length <= 0.0) | (ends_past & (f <= 0.0))
    end = ~start & ~ends_past
    return np.where(start, x0, np.where(end, x1, x)), np.where(start, y0, np.where(end, y1, y))


def _along_curved(geoms: np.ndarray, seg: np.ndarray, frac: np.ndarray):
    """:func:`_points_along` for segments with a geometry: each point's piece is the first
    whose running total (summed one piece after another from 0, as GEOS sums) passes it."""
    useg, inv = np.unique(seg, return_inverse=True)
    xy, gi = shapely.get_coordinates(geoms[useg], return_index=True)
    same = np.flatnonzero(gi[1:] == gi[:-1])  # piece p runs from vertex same[p] to same[p] + 1
    px0, py0 = xy[same, 0], xy[same, 1]
    px1, py1 = xy[same + 1, 0], xy[same + 1, 1]
    plen = np.sqrt((px1 - px0) * (px1 - px0) + (py1 - py0) * (py1 - py0))
    owner = gi[same]
    n_piece = np.bincount(owner, minlength=len(useg))
    first = np.r_[0, np.cumsum(n_piece)[:-1]]
    ends = _running_totals(plen, np.arange(len(plen)) - first[owner])
    total = np.where(n_piece > 0, ends[first + n_piece - 1], 0.0)
    length = frac * total[inv]
    lo, hi = first[inv], first[inv] + n_piece[inv]
    # Binary search for the first piece of the point's line ending past its length.
    for _ in range(int(n_piece.max()).bit_length() if len(n_piece) else 0):
        mid = (lo + hi) // 2
        go = lo < hi
        past = ends[np.minimum(mid, len(ends) - 1)] > length
        hi = np.where(go & past, mid, hi)
        lo = np.where(go & ~past, mid + 1, lo)
    has = lo < first[inv] + n_piece[inv]
    p = np.minimum(lo, len(ends) - 1)
    before = np.where(lo > first[inv], ends[np.maximum(p - 1, 0)], 0.0)
    x, y = _along_piece(length, before, np.where(has, plen[p], 0.0), px0[p], py0[p],
                        px1[p], py1[p])  # fmt: skip
    # Past every piece (or length <= 0 on a line of no length): the line's last/first vertex.
    v_first = np.r_[0, np.cumsum(np.bincount(gi, minlength=len(useg)))[:-1]][inv]
    v_last = np.cumsum(np.bincount(gi, minlength=len(useg)))[inv] - 1
    at_start = length <= 0.0
    at_end = ~at_start & ~has
    x = np.where(at_start, xy[v_first, 0], np.where(at_end, xy[v_last, 0], x))
    y = np.where(at_start, xy[v_first, 1], np.where(at_end, xy[v_last, 1], y))
    return x, y


def _running_totals(piece_len: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Per piece, the running total of its line's piece lengths up to its end, added one
    piece after another from 0 as GEOS adds them (``position``: the piece's place in its
    line); vectorised over lines, one step per position."""
    ends = piece_len.copy()
    order = np.argsort(position, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(position))]
    for k in range(1, len(bounds) - 1):
        idx = order[bounds[k] : bounds[k + 1]]
        ends[idx] = ends[idx - 1] + piece_len[idx]
    return ends


# ---------------------------------------------------------------------- public functions
def snappable_segments(
    rg: RoutingGraph, table: Any = None, *, rules: JoinRules | None = None
) -> np.ndarray:
    """Per segment of ``rg``: a point may join it (ground level, a class where one can stop).

    Parameters
    ----------
    rg : RoutingGraph
        Compiled from ``table`` (its ``edge_seg`` maps the table's edges onto segments).
    table : GraphTable or mapping, optional
        The network's per-edge way tags: a GraphTable (``tags``, else ``edges`` columns, as
        osmnx graphs carry ``tunnel``/``bridge``), or a mapping tag -> per-edge values.
        Without it only the highway classes of ``rg.segments`` are checked.
    rules : JoinRules, optional
        Default :class:`firegrid.spatial.network.profiles.JoinRules`.

    Returns
    -------
    numpy.ndarray of bool
        A segment is snappable when none of the edges it merges breaks a rule. Usability by
        the profile is applied separately (:attr:`RoutingGraph.join_ok`).
    """
    rules = rules if rules is not None else JoinRules()
    if table is None:
        return ~_any_value_in(TagColumn.of(rg.segments["highway"].to_numpy()),
                              rules.exclude_highway)  # fmt: skip
    if rg.edge_seg is None:
        raise NetworkError("the routing graph does not map edges onto segments")

    def tag(key: str) -> TagColumn | None:
        if isinstance(table, dict):
            col = table.get(key)
        else:
            col = getattr(table, "tags", {}).get(key)
            edges = getattr(table, "edges", None)
            if col is None and edges is not None and key in edges:
                col = edges[key].to_numpy()
        return None if col is None else TagColumn.of(col)

    n_edges = len(rg.edge_seg)
    bad = np.zeros(n_edges, dtype=bool)
    hw = tag("highway")
    if hw is not None:
        bad |= _any_value_in(hw, rules.exclude_highway)
    for key, on, fine in (
        ("tunnel", rules.exclude_tunnel, ("building_passage",)),
        ("bridge", rules.exclude_bridge, ()),
        ("covered", rules.exclude_covered, ()),
    ):
        col = tag(key)
        if on and col is not None:
            # osmnx keeps lists (merged ways) as their repr; any element counts.
            per = np.array([_tag_set(u, fine) for u in col.uniques], dtype=bool)
            bad |= per[col.codes] if len(per) else False
    col = tag("layer")
    if rules.exclude_layer and col is not None:
        per = np.array([_nonzero_layer(u) for u in col.uniques], dtype=bool)
        bad |= per[col.codes] if len(per) else False
    n_bad = np.bincount(rg.edge_seg[bad], minlength=rg.n_segments)
    return n_bad == 0


def _any_value_in(col: TagColumn, values: tuple[str, ...]) -> np.ndarray:
    """Per item: one of its values (several for osmnx lists) is one of ``values``."""
    wanted = set(values)
    hit = np.array([bool(wanted.intersection(_tag_values(u))) for u in col.uniques], dtype=bool)
    return hit[col.codes] if len(hit) else np.zeros(len(col.codes), dtype=bool)


def _tag_values(raw: Any) -> list[str]:
    text = str(raw).strip().lower()
    if text.startswith("[") and text.endswith("]"):
        return [p.strip(" '\"") for p in text[1:-1].split(",")]
    return [p.strip() for p in text.split(";")]


_TAG_OFF = frozenset(("", "no", "false", "0", "none", "nan"))


def _tag_set(raw: Any, fine: tuple[str, ...]) -> bool:
    """A yes/no-like tag is set: any value but an "off" one or one of ``fine``."""
    return any(v not in _TAG_OFF and v not in fine for v in _tag_values(raw))


def _nonzero_layer(raw: Any) -> bool:
    for v in _tag_values(raw):
        try:
            if float(v) != 0:
                return True
        except ValueError:
            continue
    return False


def snap(
    rg: RoutingGraph,
    points: gpd.GeoSeries | gpd.GeoDataFrame | np.ndarray,
    *,
    max_snap_m: float = np.inf,
) -> Snap:
    """Place each point at the nearest point of the nearest segment (not the nearest node).

    Only segments the point may join are considered (:attr:`RoutingGraph.join_ok`: usable by
    the profile, at ground level — see :class:`firegrid.spatial.network.profiles.JoinRules`).
    A point exactly as near to several segments (at a node they share, say) snaps onto the
    first of them in the network's order, however many points are snapped with it.

    Parameters
    ----------
    rg : RoutingGraph
    points : GeoSeries, GeoDataFrame or array of shapely geometries
        In ``rg.crs`` (metres). Polygons use their representative point; missing or empty
        geometries do not snap.
    max_snap_m : float
        Points farther than this (metres) from every segment do not snap (``seg = -1``).

    Returns
    -------
    Snap
        Kept on ``rg``: the same points (same representative coordinates) snapped again onto
        ``rg`` with the same limit return the same Snap object, so a run snaps each layer once
        per graph. Treat it as read-only. Each real snap counts in ``rg.work["snap"]``.
    """
    px, py = _points_xy(points, rg.crs)
    return _cached_snap(rg, px, py, max_snap_m)


def snap_graphs(
    graphs: dict[str, RoutingGraph],
    points: gpd.GeoSeries | gpd.GeoDataFrame | np.ndarray,
    *,
    max_snap_m: float = np.inf,
) -> dict[str, Snap]:
    """Snap the same points onto several profiles' graphs of one road network, searching once.

    Graphs compiled from one osmnx graph share their segments (a profile only bars some), so
    the points are snapped once onto every segment any of them may join; only points whose
    nearest segment a profile may not join are snapped again on that profile's graph. Graphs that do not
    share segments are snapped one by one. The same result as :func:`snap` per graph, kept
    in the same per-graph cache (a later :func:`snap` of these points finds it).

    Returns
    -------
    dict
        Graph name -> Snap (treat as read-only: graphs may share one Snap object).
    """
    items = list(graphs.items())
    if not items:
        return {}
    crs = items[0][1].crs
    if any(not _same_crs(g.crs, crs) for _, g in items):
        return {k: snap(g, points, max_snap_m=max_snap_m) for k, g in items}
    px, py = _points_xy(points, crs)
    digest = _points_digest(px, py)  # the same points for every graph: hashed once
    keys = {k: _snap_key(g, digest, max_snap_m) for k, g in items}
    todo = {k: g for k, g in items if keys[k] not in g._snaps}
    if todo:
        for k, s in _snap_shared(todo, px, py, max_snap_m).items():
            todo[k]._snaps[keys[k]] = s
    return {k: g._snaps[keys[k]] for k, g in items}


def _same_crs(a: pyproj.CRS | None, b: pyproj.CRS | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a.equals(b))


def _snap_shared(
    graphs: dict[str, RoutingGraph], px: np.ndarray, py: np.ndarray, max_snap_m: float
) -> dict[str, Snap]:
    """Snaps of the points onto each graph, searching once where the graphs share segments."""
    items = list(graphs.items())
    first = items[0][1]
    shared = all(
        g.n_segments == first.n_segments
        and np.array_equal(g.seg_a, first.seg_a)
        and np.array_equal(g.seg_b, first.seg_b)
        and np.array_equal(g.seg_length_m, first.seg_length_m)
        for _, g in items[1:]
    )
    if not shared:
        return {k: _snap_xy(g, px, py, max_snap_m) for k, g in items}
    base = _union_graph([g for _, g in items])
    s0 = _snap_xy(base, px, py, max_snap_m)
    out = {}
    for k, g in items:
        redo = s0.ok & ~g.join_ok[np.clip(s0.seg, 0, None)]
        if g is not base:  # points too far to snap: report this graph's own distance
            redo |= ~s0.ok & np.isfinite(s0.access_m)
        redo = np.flatnonzero(redo)
        if len(redo) == 0:
            out[k] = s0
            continue
        s = Snap(*(getattr(s0, f).copy() for f in _SNAP_FIELDS))
        again = _snap_xy(g, px[redo], py[redo], max_snap_m)
        for f in _SNAP_FIELDS:
            getattr(s, f)[redo] = getattr(again, f)
        out[k] = s
    return out


def _union_graph(graphs: list[RoutingGraph]) -> RoutingGraph:
    """A graph joining every segment any of ``graphs`` (sharing segments) may join: one of
    them when its own joinable segments are all of those, else a copy for snapping only."""
    union = np.zeros(graphs[0].n_segments, dtype=bool)
    for g in graphs:
        union |= g.join_ok
    # Reuse a graph's own index when it already covers every segment any graph joins.
    base = next((g for g in graphs if np.array_equal(g.join_ok, union)), None)
    if base is None:
        first = graphs[0]
        base = RoutingGraph(**{f: getattr(first, f) for f in first.__dataclass_fields__
                               if f not in ("_shared", "_snaps")})  # fmt: skip
        base.run_fwd = np.where(union, 0.0, np.inf)
        base.run_back = base.run_fwd
        base.snappable = None
    return base


_SNAP_FIELDS = ("seg", "frac", "access_m", "x", "y", "px", "py")


def _points_xy(points: Any, crs: pyproj.CRS | None) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of each point, polygons by their representative point (NaN: no geometry)."""
    geoms = _geometry_array(points, crs)
    n = len(geoms)
    px = np.full(n, np.nan)
    py = np.full(n, np.nan)
    valid = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    is_pt = valid & (shapely.get_type_id(geoms) == 0)
    if is_pt.any():
        xy = shapely.get_coordinates(geoms[is_pt])
        px[is_pt], py[is_pt] = xy[:, 0], xy[:, 1]
    other = valid & ~is_pt
    if other.any():
        xy = shapely.get_coordinates(shapely.point_on_surface(geoms[other]))
        px[other], py[other] = xy[:, 0], xy[:, 1]
    return px, py


def _points_digest(px: np.ndarray, py: np.ndarray) -> str:
    """Digest of the coordinates of a point set (part of a snap's cache key)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(px).tobytes())
    h.update(np.ascontiguousarray(py).tobytes())
    return h.hexdigest()


def _snap_key(rg: RoutingGraph, digest: str, max_snap_m: float) -> tuple:
    """Cache key of a snap on ``rg``: the coordinates' digest, the limit and the joinable
    segments (``snappable`` may be set after compiling)."""
    return digest, float(max_snap_m), rg._join_key


def _cached_snap(rg: RoutingGraph, px: np.ndarray, py: np.ndarray, max_snap_m: float) -> Snap:
    key = _snap_key(rg, _points_digest(px, py), max_snap_m)
    hit = rg._snaps.get(key)
    if hit is None:
        hit = rg._snaps[key] = _snap_xy(rg, px, py, max_snap_m)
    return hit


def _snap_xy(rg: RoutingGraph, px: np.ndarray, py: np.ndarray, max_snap_m: float) -> Snap:
    """Snap points given by coordinates (NaN: no point) onto ``rg``, uncached; counted in
    ``rg.work["snap"]``."""
    rg.work["snap"] += 1
    n = len(px)
    seg = np.full(n, -1, dtype=np.int64)
    frac = np.full(n, np.nan)
    dist = np.full(n, np.nan)
    sx = np.full(n, np.nan)
    sy = np.full(n, np.nan)
    idx = np.flatnonzero(np.isfinite(px) & np.isfinite(py))
    pieces = rg._pieces
    if len(idx) > _CHUNK:
        # Blocks and chunks of nearby points: each reads a compact part of the index.
        idx = idx[_cell_order(px[idx], py[idx])]
    use_grid = pieces.uses_grid(len(idx))  # decided for the whole set: blocks bound memory
    for start in range(0, len(idx), _BLOCK):
        block = idx[start : start + _BLOCK]
        s, f, d, qx, qy = pieces.nearest(px[block], py[block], rg, use_grid=use_grid)
        seg[block], frac[block], dist[block], sx[block], sy[block] = s, f, d, qx, qy
    far = ~(dist <= max_snap_m)
    seg[far] = -1
    sx[far] = np.nan
    sy[far] = np.nan
    frac[far] = np.nan
    return Snap(seg, frac, dist, sx, sy, px, py)


def nearest_cost(
    rg: RoutingGraph,
    sources: Snap,
    targets: Snap,
    *,
    source_offset: np.ndarray | float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cost from the nearest source to every target, in one multi-source Dijkstra pass.

    Parameters
    ----------
    rg : RoutingGraph
    sources, targets : Snap
        Snapped sources (stations, hydrants) and targets (buildings). Travel runs source → target
        (one-way streets obeyed if the graph is directed).
    source_offset : array of float or float, optional
        Cost added at each source before it leaves (turnout seconds), default 0.

    Returns
    -------
    cost : numpy.ndarray of float
        Per target: offset + source access leg + network + target access leg (seconds or
        metres); ``inf`` where no source reaches the target or the target did not snap.
    source : numpy.ndarray of int
        Index (position in ``sources``) of the source achieving ``cost``; ``-1`` if none.
    """
    offset = _offsets(sources, source_offset)
    cost = np.full(len(targets), np.inf)
    who = np.full(len(targets), -1, dtype=np.int64)
    search = _nearest_search(rg, sources, offset)
    t = np.flatnonzero(targets.ok)
    if search is None or len(t) == 0:
        return cost, who
    tt = targets.take(t)
    best, who_t = _via_segment_ends(rg, search, tt)
    # Source and target on the same segment: direct travel along it may be shorter.
    _take_direct(rg, sources, tt, offset, best, who_t)
    best = best + tt.access_m * rg.access_cost_per_m
    who_t[~np.isfinite(best)] = -1
    cost[t] = best
    who[t] = who_t
    return cost, who


@dataclass(frozen=True, eq=False)
class _NearestSearch:
    """One multi-source Dijkstra: cost and source of every state, and per node the cheapest
    of its states (sources are positions in the Snap, -1 for none)."""

    state_cost: np.ndarray
    state_src: np.ndarray
    node_cost: np.ndarray
    node_src: np.ndarray


def _nearest_search(rg: RoutingGraph, sources: Snap, offset: np.ndarray) -> _NearestSearch | None:
    """The fastest source of every state and node, None when no source snapped."""
    ns = rg.n_states
    aug, n_src = _augmented(rg, sources, offset)
    if n_src == 0 or not sources.ok.any():
        return None
    dist, _, src = dijkstra(
        aug,
        directed=True,
        indices=np.arange(ns, ns + n_src),
        min_only=True,
        return_predecessors=True,
    )
    state_cost = dist[:ns]
    state_src = np.where(src[:ns] >= ns, src[:ns] - ns, -1)
    node_cost, node_src = _node_min(rg, state_cost, state_src)
    return _NearestSearch(state_cost, state_src, node_cost, node_src)


def _via_segment_ends(rg: RoutingGraph, search: _NearestSearch, tt: Snap):
    """Per snapped target, the cheaper way in through either end of its segment: (cost
    before the access leg, source)."""
    ca, cb = _target_end_costs(rg, tt)
    tseg = tt.seg
    na, nb = rg.seg_a[tseg], rg.seg_b[tseg]
    da, wa = search.node_cost[na], search.node_src[na]
    db, wb = search.node_cost[nb], search.node_src[nb]
    if rg.turns is not None:
        # A target inside a street is reached from a state allowed to enter the street.
        g = tt.frac
        ea, sa = _entry_costs(rg, search.state_cost, 2 * tseg, src=search.state_src)
        eb, sb = _entry_costs(rg, search.state_cost, 2 * tseg + 1, src=search.state_src)
        da, wa = np.where(g <= 0.0, da, ea), np.where(g <= 0.0, wa, sa)
        db, wb = np.where(g >= 1.0, db, eb), np.where(g >= 1.0, wb, sb)
    via_a = da + ca
    via_b = db + cb
    use_b = via_b < via_a
    return np.where(use_b, via_b, via_a), np.where(use_b, wb, wa)


def _take_direct(rg: RoutingGraph, sources: Snap, tt: Snap, offset, best, who_t) -> None:
    """Lower ``best`` (and set ``who_t``) in place where a source on a target's own segment
    reaches it directly along the segment for less."""
    si, ti, c = _same_segment_pairs(rg, sources, tt, offset)
    if len(c) == 0:
        return
    order = np.lexsort((c, ti))
    first = np.ones(len(order), dtype=bool)
    first[1:] = ti[order][1:] != ti[order][:-1]
    ti_b, c_b, si_b = ti[order][first], c[order][first], si[order][first]
    better = c_b < best[ti_b]
    best[ti_b[better]] = c_b[better]
    who_t[ti_b[better]] = si_b[better]


def node_costs(
    rg: RoutingGraph,
    sources: Snap,
    *,
    source_offset: np.ndarray | float | None = None,
    cutoff: float = np.inf,
    states: bool = False,
) -> np.ndarray:
    """Dense cost from each source to every node (``len(sources) × n_nodes``, ``inf`` beyond
    ``cutoff``). Meant for a few sources (isochrones); use :func:`cost_matrix` for many.

    With turn restrictions a node's cost is that of its cheapest state (however it was
    arrived at); ``states=True`` returns every state instead (``len(sources) × n_states``),
    for :func:`segment_entry_costs` (:func:`state_node_costs` turns them into node costs)."""
    n = rg.n_nodes
    ns = rg.n_states
    offset = _offsets(sources, source_offset)
    aug, n_src = _augmented(rg, sources, offset)
    if n_src == 0:
        return np.full((0, ns if states else n), np.inf)
    dist = dijkstra(aug, directed=True, indices=np.arange(ns, ns + n_src), limit=cutoff)
    if states:
        return np.ascontiguousarray(dist[:, :ns])
    return state_node_costs(rg, dist[:, :ns])


def state_node_costs(rg: RoutingGraph, state_cost: np.ndarray) -> np.ndarray:
    """Per-state costs (``node_costs(..., states=True)``) as node costs: per node, the
    cheapest of its states (``rows × n_nodes``), as ``node_costs`` returns them."""
    return np.ascontiguousarray(_node_min(rg, state_cost))


def segment_entry_costs(
    rg: RoutingGraph, dist: np.ndarray, rows: np.ndarray, segs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cost at which each source row may set off into each segment from either end.

    Parameters
    ----------
    rg : RoutingGraph
    dist : numpy.ndarray
        Per-state costs, ``node_costs(..., states=True)`` (seconds or metres).
    rows, segs : numpy.ndarray of int
        Pairs (row of ``dist``, segment).

    Returns
    -------
    enter_a, enter_b : numpy.ndarray
        Cost of entering the segment at ``a`` heading to ``b``, and at ``b`` heading to ``a``:
        the node's cost, or with turn restrictions the cheapest state at that node allowed to
        turn into the segment (an arrival barred from that turn does not count).
    """
    rows = np.asarray(rows, dtype=np.int64)
    segs = np.asarray(segs, dtype=np.int64)
    if rg.turns is None:
        return dist[rows, rg.seg_a[segs]], dist[rows, rg.seg_b[segs]]
    ea, _ = _entry_costs(rg, dist, 2 * segs, rows=rows)
    eb, _ = _entry_costs(rg, dist, 2 * segs + 1, rows=rows)
    return ea, eb


def cost_matrix(
    rg: RoutingGraph,
    sources: Snap,
    targets: Snap,
    *,
    cutoff: float,
    source_offset: np.ndarray | float | None = None,
    batch_bytes: int = DIJKSTRA_BATCH_BYTES,
) -> sp.csr_matrix:
    """Sparse source × target costs no greater than ``cutoff``.

    Runs ``scipy.sparse.csgraph.dijkstra(limit=cutoff)`` on batches of sources sized to
    ``batch_bytes`` of dense rows, then extends node costs to targets along their segments.

    Parameters
    ----------
    rg : RoutingGraph
    sources, targets : Snap
    cutoff : float
        Largest cost kept (seconds or metres), offsets and access legs included.
    source_offset : array of float or float, optional
        Cost added at each source before it leaves (turnout seconds), default 0.
    batch_bytes : int
        Memory bound for one batch of dense Dijkstra rows.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape ``(len(sources), len(targets))``. Stored entries are exactly the pairs with
        cost ≤ cutoff, **including explicit zeros** (a zero cost is a real entry): test
        membership with the sparsity pattern (``.indices``, ``.nnz``, ``!= inf``-free), not
        with ``.toarray() > 0``. Never call ``eliminate_zeros()`` on it.
    """
    offset = _offsets(sources, source_offset)
    aug, n_src = _augmented(rg, sources, offset)
    side = _TargetSide.of(rg, targets)
    active = np.flatnonzero(sources.ok & np.isfinite(offset) & (offset <= cutoff))
    # With turn restrictions a batch holds the state rows and their per-node minimum.
    rows_bytes = 8 * (rg.n_states + n_src) + (8 * rg.n_nodes if rg.turns is not None else 0)
    batch = max(1, int(batch_bytes // rows_bytes))
    job = _CostJob(rg, aug, sources, side, offset, cutoff)
    parts = [job.local(b) for b in _local_batches(rg, sources, active, cutoff)]
    # Sources not done on a part of the graph: all of them, or those whose part leaked.
    todo = np.concatenate([p[3] for p in parts]) if parts else active
    parts = [p[:3] for p in parts] + [
        job.dense(todo[start : start + batch]) for start in range(0, len(todo), batch)
    ]
    if parts:
        rows, cols, vals = (np.concatenate(p) for p in zip(*parts, strict=True))
    else:
        rows = cols = np.zeros(0, dtype=np.int64)
        vals = np.zeros(0)
    return csr_keep_zeros(rows, cols, vals, (len(sources), len(targets)))


@dataclass(frozen=True, eq=False)
class _TargetSide:
    """The snapped targets of a cost matrix: their positions ``t``, the Snap ``tt`` of those,
    the cost from either end of their segment (``ca``, ``cb``), their access legs' cost and
    the targets grouped by segment."""

    t: np.ndarray
    tt: Snap
    ca: np.ndarray
    cb: np.ndarray
    tacc: np.ndarray
    by_seg: tuple

    @classmethod
    def of(cls, rg: RoutingGraph, targets: Snap) -> _TargetSide:
        t = np.flatnonzero(targets.ok)
        tt = targets.take(t)
        ca, cb = _target_end_costs(rg, tt)
        key = ("by_seg", rg.n_segments)
        if key not in tt._cache:
            tt._cache[key] = _group(tt.seg, rg.n_segments)
        return cls(t, tt, ca, cb, tt.access_m * rg.access_cost_per_m, tt._cache[key])


@dataclass(frozen=True, eq=False)
class _CostJob:
    """One cost matrix: the graph with its sources linked in (``aug``), the targets' side,
    the sources' offsets and the cutoff; costs computed batch by batch."""

    rg: RoutingGraph
    aug: sp.csr_matrix
    sources: Snap
    side: _TargetSide
    offset: np.ndarray
    cutoff: float

    def dense(self, srcs: np.ndarray):
        """Costs ≤ cutoff from the sources ``srcs``: one dense Dijkstra row per source over
        the whole graph. Returns (source, target, cost)."""
        rg, ns = self.rg, self.rg.n_states
        dist_s = dijkstra(self.aug, directed=True, indices=ns + srcs, limit=self.cutoff)[:, :ns]
        return self._extend(srcs, _DenseCosts(_node_min(rg, dist_s)), dist_s)

    def local(self, srcs: np.ndarray):
        """:meth:`dense` on the part of the graph the sources may reach (nodes within the
        cutoff at the graph's fastest speed of their streets' ends), for graphs without turn
        restrictions. Dijkstra's costs are each node's cheapest path, summed in the same
        order whatever else the graph holds, so they are the whole graph's wherever no
        street leaves the part within the cutoff; sources where one does are returned
        (fourth item) for :meth:`dense`."""
        rg, ns, cutoff = self.rg, self.rg.n_states, self.cutoff
        nodes = _nodes_near(rg, self.sources.seg[srcs], cutoff)
        idx = np.concatenate([nodes, ns + srcs])  # nodes < ns: columns keep their order
        sub = self.aug[idx][:, idx]
        dist = dijkstra(sub, directed=True, indices=np.arange(len(nodes), len(idx)),
                        limit=cutoff)[:, : len(nodes)]  # fmt: skip
        costs = _LocalCosts.of(dist, nodes, rg.n_nodes)
        leaks = costs.leaking_rows(rg.csr, cutoff)
        ok = np.flatnonzero(~leaks)
        if len(ok) < len(srcs):
            costs = _LocalCosts.of(dist[ok], nodes, rg.n_nodes)
        return (*self._extend(srcs[ok], costs, None), srcs[leaks])

    def _extend(self, srcs, dist, dist_s):
        """Node costs of the rows ``srcs`` extended along the reached segments to the targets."""
        rg, sources, side, offset, cutoff = (self.rg, self.sources, self.side, self.offset,
                                             self.cutoff)  # fmt: skip
        own = sources.seg[srcs]
        rr, segs = _reached_segments(rg, dist, own, cutoff)
        da = dist.at(rr, rg.seg_a[segs])
        db = dist.at(rr, rg.seg_b[segs])
        del dist
        # Extend to the targets on each reached segment.
        rep, ti = _expand(segs, side.by_seg)
        r2 = rr[rep]
        tt = side.tt
        if rg.turns is None:
            cost = np.minimum(da[rep] + side.ca[ti], db[rep] + side.cb[ti])
        else:
            # Inside a street: reached from a state allowed to enter it (at a node: any state).
            ea, eb = segment_entry_costs(rg, dist_s, rr, segs)
            g = tt.frac[ti]
            cost = np.minimum(np.where(g <= 0.0, da[rep], ea[rep]) + side.ca[ti],
                              np.where(g >= 1.0, db[rep], eb[rep]) + side.cb[ti])  # fmt: skip
        del dist_s
        same = np.flatnonzero(segs[rep] == own[r2])
        if len(same):
            si = srcs[r2[same]]
            direct = _along(rg, tt.seg[ti[same]], sources.frac[si], tt.frac[ti[same]])
            direct += offset[si] + sources.access_m[si] * rg.access_cost_per_m
            cost[same] = np.minimum(cost[same], direct)
        cost += side.tacc[ti]
        keep = cost <= cutoff
        return srcs[r2[keep]], side.t[ti[keep]], cost[keep]


@dataclass(frozen=True, eq=False)
class _DenseCosts:
    """Costs of a batch of rows to every node (``rows × n_nodes``)."""

    dist: np.ndarray

    def at(self, rows: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        return self.dist[rows, nodes]

    def reached(self, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
        """(row, node) of every cost ≤ cutoff, row by row, nodes ascending."""
        # Flat indices then (row, node): several times faster than a 2-D np.nonzero.
        return np.divmod(np.flatnonzero(self.dist <= cutoff), self.dist.shape[1])


@dataclass(frozen=True, eq=False)
class _LocalCosts:
    """Costs of a batch of rows to the nodes of a part of the graph (``nodes``, ascending;
    ``inf`` elsewhere), read like :class:`_DenseCosts`."""

    dist: np.ndarray
    nodes: np.ndarray
    column: np.ndarray  # per node of the graph: its column, -1 outside the part

    @classmethod
    def of(cls, dist: np.ndarray, nodes: np.ndarray, n: int) -> _LocalCosts:
        column = np.full(n, -1, dtype=np.int64)
        column[nodes] = np.arange(len(nodes))
        return cls(dist, nodes, column)

    def at(self, rows: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        col = self.column[nodes]
        return np.where(col >= 0, self.dist[rows, np.maximum(col, 0)], np.inf)

    def reached(self, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
        r, c = np.divmod(np.flatnonzero(self.dist <= cutoff), self.dist.shape[1])
        return r, self.nodes[c]

    def leaking_rows(self, csr: sp.csr_matrix, cutoff: float) -> np.ndarray:
        """Per row: a street from a node it reaches within ``cutoff`` leads, within the
        cutoff, to a node outside the part (its costs there may then be wrong)."""
        r, u = self.reached(cutoff)
        d = self.dist[r, self.column[u]]
        cnt = csr.indptr[u + 1] - csr.indptr[u]
        k = np.repeat(np.arange(len(u)), cnt)
        e = csr.indptr[u][k] + (np.arange(len(k)) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        out = (self.column[csr.indices[e]] < 0) & (d[k] + csr.data[e] <= cutoff)
        return np.bincount(r[k[out]], minlength=len(self.dist)) > 0


def _nodes_near(rg: RoutingGraph, segs: np.ndarray, cutoff: float) -> np.ndarray:
    """Nodes (ascending) within the box around the ends of ``segs`` grown by the distance
    the graph's fastest street covers at cost ``cutoff`` (metres)."""
    reach = cutoff * rg.fastest_m_per_cost
    ends = np.concatenate([rg.seg_a[segs], rg.seg_b[segs]])
    x, y = rg.node_x, rg.node_y
    x0, x1 = x[ends].min() - reach, x[ends].max() + reach
    y0, y1 = y[ends].min() - reach, y[ends].max() + reach
    return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))


# Sources per Dijkstra batch on a part of the graph (a batch's sources lie close together).
_LOCAL_BATCH = 32


def _local_batches(rg: RoutingGraph, sources: Snap, active: np.ndarray, cutoff: float):
    """Batches of nearby sources for :meth:`_CostJob.local` (none with turn restrictions or
    where the part would be most of the graph)."""
    reach = cutoff * rg.fastest_m_per_cost if len(active) else np.inf
    span = max(np.ptp(rg.node_x), np.ptp(rg.node_y)) if rg.n_nodes else 0.0
    if rg.turns is not None or not np.isfinite(reach) or 4 * reach > span:
        return []
    x, y = rg.node_x[rg.seg_a[sources.seg[active]]], rg.node_y[rg.seg_a[sources.seg[active]]]
    order = active[np.lexsort((y, x // max(2 * reach, 1.0)))]
    return [order[i : i + _LOCAL_BATCH] for i in range(0, len(order), _LOCAL_BATCH)]


def _reached_segments(rg: RoutingGraph, dist, own: np.ndarray, cutoff: float):
    """Segments touching a node reached within ``cutoff`` per row of ``dist`` (node costs,
    :class:`_DenseCosts` or :class:`_LocalCosts`), each (row,
    segment) once: listed from its a end when that end is reached, else from its b end; and
    each row's own segment (``own``) even when neither of its ends is reached in time."""
    r, c = dist.reached(cutoff)
    rep, segs = _expand(c, rg._node_segments)
    rr = r[rep]
    keep = (c[rep] == rg.seg_a[segs]) | ~(dist.at(rr, rg.seg_a[segs]) <= cutoff)
    rr, segs = rr[keep], segs[keep]
    k = np.arange(len(own))
    lone = ~(dist.at(k, rg.seg_a[own]) <= cutoff) & ~(dist.at(k, rg.seg_b[own]) <= cutoff)
    return np.concatenate([rr, np.flatnonzero(lone)]), np.concatenate([segs, own[lone]])


# ---------------------------------------------------------------------- internals
def _graph_crs(G: nx.MultiDiGraph) -> pyproj.CRS:
    crs = G.graph.get("crs")
    if crs is None:
        raise NetworkError(
            "the road network has no CRS; read it with firegrid.spatial.network.load.read_network"
        )
    crs = pyproj.CRS.from_user_input(crs)
    if not crs.is_projected:
        raise NetworkError(
            f"the road network is in {crs.name} (degrees); project it to the district's metric "
            "CRS first (firegrid.spatial.network.load.read_network(..., crs=...) or osmnx.project_graph)"
        )
    return crs


def _geometry_array(points: Any, crs: pyproj.CRS | None) -> np.ndarray:
    if isinstance(points, gpd.GeoDataFrame):
        points = points.geometry
    if isinstance(points, gpd.GeoSeries):
        if points.crs is None:
            raise NetworkError("points have no CRS; they must be in the network's projected CRS")
        if crs is not None and not pyproj.CRS.from_user_input(points.crs).equals(crs):
            raise NetworkError(
                f"points are in {points.crs.name}, the network in {crs.name}; "
                "reproject them (GeoSeries.to_crs) before snapping"
            )
        return np.asarray(points.values, dtype=object)
    return np.asarray(points, dtype=object)


def _offsets(sources: Snap, source_offset) -> np.ndarray:
    if source_offset is None:
        return np.zeros(len(sources))
    off = np.broadcast_to(np.asarray(source_offset, dtype=float), (len(sources),)).copy()
    if (off < 0).any():
        raise NetworkError("source offsets (turnout times) must be >= 0")
    off[np.isnan(off)] = 0.0
    return off


def _source_end_costs(rg: RoutingGraph, s: Snap, offset: np.ndarray):
    """Cost from each snapped source to the ``a`` and ``b`` ends of its segment."""
    seg, f = s.seg, s.frac
    base = offset + s.access_m * rg.access_cost_per_m
    with np.errstate(invalid="ignore"):
        to_a = np.where(f <= 0.0, 0.0, f * rg.run_back[seg] + rg.fix_back[seg])
        to_b = np.where(f >= 1.0, 0.0, (1.0 - f) * rg.run_fwd[seg] + rg.fix_fwd[seg])
    return base + to_a, base + to_b


def _target_end_costs(rg: RoutingGraph, t: Snap):
    """Cost from the ``a`` and ``b`` ends of each target's segment to the target's snap point.

    A target exactly at a node is reached on reaching that node (intersection delay included),
    whichever of the node's segments it snapped to. Cached on the Snap per graph.
    """
    key = ("ends", id(rg.run_fwd), id(rg.run_back))
    hit = t._cache.get(key)
    # The arrays themselves are kept in the entry, so an id is never reused while cached.
    if hit is None or hit[0] is not rg.run_fwd or hit[1] is not rg.run_back:
        hit = (rg.run_fwd, rg.run_back, *_target_end_costs_uncached(rg, t))
        t._cache[key] = hit
    return hit[2], hit[3]


def _target_end_costs_uncached(rg: RoutingGraph, t: Snap):
    seg, g = t.seg, t.frac
    at_a, at_b = _at_passable_node(rg, seg, g)
    with np.errstate(invalid="ignore"):
        from_a = np.where(at_a, 0.0, np.where(at_b, np.inf, g * rg.run_fwd[seg]))
        from_b = np.where(at_b, 0.0, np.where(at_a, np.inf, (1.0 - g) * rg.run_back[seg]))
    return from_a, from_b


def _at_passable_node(rg: RoutingGraph, seg: np.ndarray, g: np.ndarray):
    """Targets exactly at the ``a`` / ``b`` node of their segment, that node passable.

    A node the profile may not pass (a barrier: infinite arrival delay) is approached along
    the target's own segment instead: a building at a bollard is reached up to the bollard.
    """
    with np.errstate(invalid="ignore"):
        return (g <= 0.0) & np.isfinite(rg.fix_back[seg]), (g >= 1.0) & np.isfinite(rg.fix_fwd[seg])


def _augmented(rg: RoutingGraph, sources: Snap, offset: np.ndarray) -> tuple[sp.csr_matrix, int]:
    """The state graph plus one virtual node per source, linked to its segment's ends.

    With turn restrictions a source reaching an end along a restricted arc arrives at that
    arc's copy of the node, bound by the restriction like any vehicle arriving that way.
    """
    n = rg.n_states
    n_src = len(sources)
    ok = sources.ok & np.isfinite(offset)
    idx = np.flatnonzero(ok)
    ta, tb = _source_end_costs(rg, sources.take(idx), offset[idx])
    seg = sources.seg[idx]
    col_a, col_b = rg.seg_a[seg], rg.seg_b[seg]
    if rg.turns is not None:
        f, hs = sources.frac[idx], rg.turns.head_state
        col_a = np.where(f <= 0.0, col_a, hs[2 * seg + 1])
        col_b = np.where(f >= 1.0, col_b, hs[2 * seg])
    rows = np.concatenate([idx, idx])
    cols = np.concatenate([col_a, col_b])
    w = np.concatenate([ta, tb])
    fin = np.isfinite(w)
    rows, cols, w = min_pairs(rows[fin], cols[fin], w[fin], n)
    m = csr_keep_zeros(rows, cols, w, (n_src, n))
    base = rg.csr
    indptr = np.concatenate([base.indptr, base.indptr[-1] + m.indptr[1:]])
    aug = sp.csr_matrix(
        (
            np.concatenate([base.data, m.data]),
            np.concatenate([base.indices, m.indices]).astype(np.int32),
            indptr,
        ),
        shape=(n + n_src, n + n_src),
    )
    return aug, n_src


def _node_min(rg: RoutingGraph, state_cost: np.ndarray, state_src: np.ndarray | None = None):
    """Per node, the cheapest of its states (the node and its turn-restriction copies).

    ``state_cost`` is ``(n_states,)`` or ``(rows, n_states)``; with ``state_src`` (1-D only)
    returns (cost, source) per node.
    """
    n = rg.n_nodes
    tr = rg.turns
    if tr is None:
        cost = state_cost[..., :n]
        return cost if state_src is None else (cost, state_src[:n])
    cost = np.array(state_cost[..., :n])
    copies = state_cost[..., n:]
    if state_src is None:
        np.minimum.at(cost.T, tr.copy_node, copies.T)
        return cost
    src = state_src[:n].copy()
    order = np.lexsort((copies, tr.copy_node))
    first = np.r_[True, tr.copy_node[order][1:] != tr.copy_node[order][:-1]]
    best = order[first]
    node = tr.copy_node[best]
    better = copies[best] < cost[node]
    cost[node[better]] = copies[best][better]
    src[node[better]] = state_src[n + best[better]]
    return cost, src


def _entry_costs(rg: RoutingGraph, dist: np.ndarray, arcs: np.ndarray, *, rows=None, src=None):
    """Cost of setting off along each arc (``2 s``: a → b, ``2 s + 1``: b → a of segment s):
    the cheapest state at its tail allowed to take it (the node itself, or a turn-restriction
    copy whose restrictions allow the move). ``dist`` is per state, 1-D, or 2-D indexed by
    ``rows``; with ``src`` (1-D) also returns the source achieving it."""
    seg = arcs // 2
    tail = np.where(arcs % 2 == 0, rg.seg_a[seg], rg.seg_b[seg])
    cost = dist[tail] if rows is None else dist[rows, tail]
    who = None if src is None else src[tail]
    tr = rg.turns
    cnt = tr.allow_ptr[arcs + 1] - tr.allow_ptr[arcs]
    k = np.repeat(np.arange(len(arcs)), cnt)
    if len(k) == 0:
        return cost, who
    within = np.arange(len(k)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    st = tr.allow_state[tr.allow_ptr[arcs[k]] + within]
    c = dist[st] if rows is None else dist[rows[k], st]
    order = np.lexsort((c, k))
    first = np.r_[True, k[order][1:] != k[order][:-1]]
    best = order[first]
    better = c[best] < cost[k[best]]
    cost = cost.copy()
    cost[k[best][better]] = c[best][better]
    if who is not None:
        who = who.copy()
        who[k[best][better]] = src[st[best][better]]
    return cost, who


def _same_segment_pairs(rg: RoutingGraph, sources: Snap, targets: Snap, offset: np.ndarray):
    """Direct costs along a shared segment: (source index, target index, cost w/o target access)."""
    s_ok = np.flatnonzero(sources.ok & np.isfinite(offset))
    if len(s_ok) == 0 or len(targets) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    order = s_ok[np.argsort(sources.seg[s_ok], kind="stable")]
    sseg = sources.seg[order]
    # Only targets on a segment holding a source can pair up.
    has_src = np.zeros(rg.n_segments + 1, dtype=bool)
    has_src[sseg] = True
    cand = np.flatnonzero(has_src[targets.seg])  # seg -1 reads the spare last entry (False)
    tseg = targets.seg[cand]
    lo = np.searchsorted(sseg, tseg, side="left")
    hi = np.searchsorted(sseg, tseg, side="right")
    cnt = hi - lo
    tj = np.repeat(np.arange(len(cand)), cnt)
    if len(tj) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    within = np.arange(len(tj)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    si = order[lo[tj] + within]
    seg = tseg[tj]
    ti = cand[tj]
    along = _along(rg, seg, sources.frac[si], targets.frac[ti])
    c = offset[si] + sources.access_m[si] * rg.access_cost_per_m + along
    fin = np.isfinite(c)
    return si[fin], ti[fin], c[fin]


def _along(rg: RoutingGraph, seg: np.ndarray, f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Cost along one segment from fraction ``f`` to fraction ``g`` (inf against a one-way).

    A target at a passable node (``g`` 0 or 1) is reached through the node instead (see
    :func:`_target_end_costs`), unless the source is at the very same point.
    """
    with np.errstate(invalid="ignore"):
        fwd = np.where(g >= f, (g - f) * rg.run_fwd[seg], np.inf)
        back = np.where(g <= f, (f - g) * rg.run_back[seg], np.inf)
    at_a, at_b = _at_passable_node(rg, seg, g)
    along = np.where(at_a | at_b, np.inf, np.minimum(fwd, back))
    return np.where(g == f, 0.0, along)


def _group(keys: np.ndarray, n: int):
    """CSR-like grouping of item indices by key in ``0..n-1``: (indptr, items)."""
    order = np.argsort(keys, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=indptr[1:])
    return indptr, order


def _expand(c: np.ndarray, group) -> tuple[np.ndarray, np.ndarray]:
    """For each reached node ``c[i]``, every item grouped under it: (position i, item)."""
    indptr, items = group
    cnt = indptr[c + 1] - indptr[c]
    rep = np.repeat(np.arange(len(c)), cnt)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return rep, items[indptr[c[rep]] + within]


@dataclass(eq=False)
class _PieceIndex:
    """Straight pieces of all segment geometries, cut to ≤ SNAP_PIECE_M, with a KD-tree of
    their midpoints: exact nearest-segment search with a certified candidate bound.

    Everything is float64. The nearest sub-piece only chooses the segment; the snap point is
    then projected on the geometry's own straight piece (vertex to vertex), as GEOS does.
    """

    x0: np.ndarray  # sub-piece start, relative to the origin (ox, oy)
    y0: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    parent: np.ndarray  # the geometry's straight piece each sub-piece was cut from
    vx0: np.ndarray  # straight pieces: start vertex (absolute metres), vector, length, along
    vy0: np.ndarray
    vdx: np.ndarray
    vdy: np.ndarray
    vlen: np.ndarray
    valong: np.ndarray  # distance along the segment geometry at the piece start (metres)
    vseg: np.ndarray
    seg_len: np.ndarray  # geometric length of each segment
    seg_end: np.ndarray  # per segment: first and last vertex (x0, y0, x1, y1)
    half_max: float
    segs: np.ndarray  # the segments indexed
    ox: float  # origin of the relative coordinates (metres)
    oy: float

    @classmethod
    def build(cls, rg: RoutingGraph, segs: np.ndarray) -> _PieceIndex:
        """Index the segments ``segs`` of ``rg`` (straight ones straight from their nodes)."""
        segs = np.asarray(segs, dtype=np.int64)
        raw = rg.seg_geom_raw[segs]
        curved = ~pd.isna(raw)
        c_xy, c_idx = shapely.get_coordinates(raw[curved], return_index=True)
        c_idx = segs[curved][c_idx]
        st = segs[~curved]
        s_xy = np.empty((2 * len(st), 2))
        s_xy[0::2, 0], s_xy[0::2, 1] = rg.node_x[rg.seg_a[st]], rg.node_y[rg.seg_a[st]]
        s_xy[1::2, 0], s_xy[1::2, 1] = rg.node_x[rg.seg_b[st]], rg.node_y[rg.seg_b[st]]
        gidx = np.concatenate([c_idx, np.repeat(st, 2)])
        order = np.argsort(gidx, kind="stable")
        coords = np.concatenate([c_xy, s_xy])[order]
        gidx = gidx[order]
        n_seg = len(rg.seg_a)
        seg_end = np.full((n_seg, 4), np.nan)
        if len(gidx):
            head = np.r_[True, gidx[1:] != gidx[:-1]]
            tail = np.r_[gidx[1:] != gidx[:-1], True]
            seg_end[gidx[head], :2] = coords[head]
            seg_end[gidx[tail], 2:] = coords[tail]
        same = gidx[1:] == gidx[:-1]
        p0 = coords[:-1][same]
        p1 = coords[1:][same]
        seg = gidx[:-1][same]
        d = p1 - p0
        plen = np.hypot(d[:, 0], d[:, 1])
        # Distance along the geometry at each piece start.
        csum = np.cumsum(plen)
        starts = np.r_[0.0, csum[:-1]]
        first_of_seg = np.ones(len(seg), dtype=bool)
        first_of_seg[1:] = seg[1:] != seg[:-1]
        seg_start = np.maximum.accumulate(np.where(first_of_seg, starts, 0.0))
        along = starts - seg_start
        seg_len = np.bincount(seg, weights=plen, minlength=n_seg)
        # Cut long pieces into equal sub-pieces (for the search only).
        k = np.maximum(1, np.ceil(plen / SNAP_PIECE_M).astype(np.int64))
        rep = np.repeat(np.arange(len(plen)), k)
        j = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
        # Each per-sub-piece column gathered once (numpy divides integers as float64 too).
        kr = k[rep].astype(float)
        t0 = j / kr
        mid = t0 + 0.5 / kr
        px, py, ddx, ddy = p0[:, 0][rep], p0[:, 1][rep], d[:, 0][rep], d[:, 1][rep]
        ox = float((px + ddx * mid).min()) if len(rep) else 0.0
        oy = float((py + ddy * mid).min()) if len(rep) else 0.0
        del mid
        x0 = (px - ox) + ddx * t0
        y0 = (py - oy) + ddy * t0
        dx = ddx / kr
        dy = ddy / kr
        half_max = float((plen / k).max() / 2) if len(plen) else 0.0
        return cls(x0, y0, dx, dy, rep, p0[:, 0], p0[:, 1], d[:, 0], d[:, 1], plen, along,
                   seg, seg_len, seg_end, half_max, segs, ox, oy)  # fmt: skip

    @cached_property
    def tree(self) -> cKDTree:
        """KD-tree of piece midpoints, relative to the origin (built when first needed: few
        points, or far ones)."""
        return cKDTree(np.stack([self.x0 + self.dx / 2, self.y0 + self.dy / 2], 1))

    @cached_property
    def packed(self) -> np.ndarray:
        """Per piece, float64 relative to the index origin: x0, y0, dx, dy, 1 / length²."""
        ll = self.dx * self.dx + self.dy * self.dy
        with np.errstate(divide="ignore"):
            inv = np.where(ll > 0, 1.0 / ll, 0.0)
        return np.ascontiguousarray(np.stack([self.x0, self.y0, self.dx, self.dy, inv], axis=1))

    def _candidates(self, qx, qy, k):
        """k nearest pieces by midpoint: best piece, its distance and the search bound."""
        mid_d, cand = self.tree.query(np.stack([qx, qy], 1), k=k, workers=1)
        if k == 1:
            mid_d, cand = mid_d[:, None], cand[:, None]
        d2 = self._d2(np.repeat(qx, k), np.repeat(qy, k), cand.ravel()).reshape(cand.shape)
        dmin = d2.min(axis=1)
        # Ties go to the lowest piece, as on the grid (see _grid_block).
        best = np.where(d2 == dmin[:, None], cand, len(self.x0)).min(axis=1)
        return best, np.sqrt(dmin), mid_d[:, -1]

    @cached_property
    def grid(self) -> tuple[np.ndarray, np.ndarray, float, float, int, int]:
        """Pieces bucketed on a ``GRID_CELL_M`` grid, each listed in every cell its bounding box
        grown by ``GRID_REACH_M`` touches: any piece within ``GRID_REACH_M`` of a point is then
        listed in the point's own cell. Returns (start per cell, pieces, origin x, origin y,
        columns, rows), in coordinates relative to the index origin."""
        c, g = GRID_CELL_M, GRID_REACH_M
        xa, xb = self.x0, self.x0 + self.dx
        ya, yb = self.y0, self.y0 + self.dy
        gx = float(np.minimum(xa, xb).min()) - 2 * c
        gy = float(np.minimum(ya, yb).min()) - 2 * c
        ix0 = ((np.minimum(xa, xb) - g - gx) // c).astype(np.int64)
        ix1 = ((np.maximum(xa, xb) + g - gx) // c).astype(np.int64)
        iy0 = ((np.minimum(ya, yb) - g - gy) // c).astype(np.int64)
        iy1 = ((np.maximum(ya, yb) + g - gy) // c).astype(np.int64)
        cols, rows = int(ix1.max()) + 2, int(iy1.max()) + 2
        # Piece -> cells (a few per piece, one column of offsets at a time), then cell ->
        # pieces by scipy's CSR -> CSC counting sort: pieces in index order within each cell.
        w, h = ix1 - ix0 + 1, iy1 - iy0 + 1
        wide, high = int(w.max()), int(h.max())
        key = np.full((len(w), wide * high), -1, np.int32 if cols * rows < 2**31 else np.int64)
        for a in range(wide):
            for b in range(high):
                ok = np.flatnonzero((a < w) & (b < h))
                key[ok, a * high + b] = (ix0[ok] + a) * rows + (iy0[ok] + b)
        key = key.ravel()
        key = key[key >= 0]
        indptr = np.r_[0, np.cumsum(w * h)]
        m = sp.csr_matrix((np.ones(len(key), dtype=np.int8), key, indptr),
                          shape=(len(w), cols * rows)).tocsc()  # fmt: skip
        plist = m.indices.astype(np.int32 if len(w) < 2**31 else np.int64)
        return m.indptr.astype(np.int64), plist, gx, gy, cols, rows

    def _d2(self, qx: np.ndarray, qy: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Squared distance (m²) from each point (relative to the origin) to its candidate
        piece, the three arrays aligned; in place on temporaries, the same float64 steps
        whatever the caller."""
        g = self.packed.take(cand, axis=0)
        vx = qx - g[:, 0]
        vy = qy - g[:, 1]
        t = vx * g[:, 2]
        t += vy * g[:, 3]
        t *= g[:, 4]
        np.clip(t, 0.0, 1.0, out=t)
        ex = np.multiply(t, g[:, 2])
        np.subtract(vx, ex, out=ex)
        ey = np.multiply(t, g[:, 3], out=vx)
        np.subtract(vy, ey, out=ey)
        ex *= ex
        ey *= ey
        ex += ey
        return ex

    def _grid_block(self, qx, qy, ring: int = 0):
        """Nearest piece by the grid where certain, else -1 (``qx, qy`` relative to the origin).

        ``ring=0`` looks in the point's own cell (certain within ``GRID_REACH_M``); ``ring=1``
        in the 3 × 3 cells around it (certain within ``GRID_REACH_M + GRID_CELL_M``). Ties go
        to the lowest piece (the first street of the network), as in the KD-tree search: a
        point's snap does not depend on which search found it, so not on how many points
        were snapped with it either.
        """
        start, plist, gx, gy, cols, rows = self.grid
        c = GRID_CELL_M
        reach = GRID_REACH_M + ring * c
        m = len(qx)
        off = np.arange(-ring, ring + 1)
        nb = len(off) ** 2
        ix = ((qx - gx) // c).astype(np.int64)[:, None] + np.repeat(off, len(off))[None, :]
        iy = ((qy - gy) // c).astype(np.int64)[:, None] + np.tile(off, len(off))[None, :]
        inside = ((ix >= 0) & (ix < cols) & (iy >= 0) & (iy < rows)).ravel()
        key = np.where(inside, (ix * rows + iy).ravel(), 0)
        s = start[key]
        cnt = np.where(inside, start[key + 1] - s, 0)
        first = np.cumsum(cnt) - cnt
        slot = np.repeat(np.arange(m * nb), cnt)
        cand = plist[np.arange(len(slot)) + (s - first)[slot]]
        cnt = cnt.reshape(m, nb).sum(axis=1)
        d2 = self._d2(np.repeat(qx, cnt), np.repeat(qy, cnt), cand)
        piece = np.full(m, -1, dtype=np.int64)
        has = np.flatnonzero(cnt > 0)
        if len(has):
            pt = slot // nb if nb > 1 else slot
            dmin = np.full(m, np.inf)
            dmin[has] = np.minimum.reduceat(d2, (np.cumsum(cnt) - cnt)[has])
            at_min = np.flatnonzero(d2 <= dmin[pt])
            who = pt[at_min]
            first = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
            best = np.minimum.reduceat(cand[at_min], first)
            who = who[first]
            ok = dmin[who] <= (reach - 1e-6) ** 2
            piece[who[ok]] = best[ok]
        return piece

    def _nearest_block(self, px, py, use_grid: bool):
        """Best piece per point, certified: (piece, or -1 where uncertain)."""
        qx, qy = px - self.ox, py - self.oy
        if use_grid:
            piece = self._grid_block(qx, qy)
            far = np.flatnonzero(piece < 0)
            if len(far):  # farther than the reach: the 3 × 3 cells around cover one cell more
                piece[far] = self._grid_block(qx[far], qy[far], ring=1)
        else:
            piece = np.full(len(px), -1, dtype=np.int64)
        todo = np.flatnonzero(piece < 0)
        n_pieces = len(self.x0)
        k = 8
        while len(todo) and k <= 512:
            kk = min(k, n_pieces)
            best, d, bound = self._candidates(qx[todo], qy[todo], kk)
            piece[todo] = best
            # A piece outside the candidates has its midpoint at least `bound` away, so lies at
            # least bound - half_max away: the best candidate is then certain (the micrometre
            # covers rounding of the relative coordinates).
            certified = (bound - self.half_max >= d + 1e-6) | (kk == n_pieces)
            todo = todo[~certified]
            k *= 4
        piece[todo] = -1
        return piece

    def uses_grid(self, m: int) -> bool:
        """The bucket grid pays off for many points (``m`` in the whole point set, not in one
        block); a few (stations) go straight to the tree. Either search gives the same snap."""
        return "grid" in self.__dict__ or m * 4 > len(self.x0)

    def _nearest_pieces(self, px, py, use_grid: bool) -> np.ndarray:
        """:meth:`_nearest_block` of every point, in chunks on several threads (fastest with
        the points in :func:`_cell_order`)."""
        m = len(px)
        _ = self.grid if use_grid else self.tree  # build once, before the threads
        chunks = [slice(i, min(i + _CHUNK, m)) for i in range(0, m, _CHUNK)] or [slice(0, 0)]
        if len(chunks) > 1:
            with ThreadPoolExecutor(max_workers=threads()) as pool:
                parts = list(
                    pool.map(lambda c: self._nearest_block(px[c], py[c], use_grid), chunks)
                )
            piece = np.concatenate(parts)
        else:
            piece = self._nearest_block(px, py, use_grid)
        return piece

    def nearest(self, px: np.ndarray, py: np.ndarray, rg: RoutingGraph, *, use_grid: bool):
        """Nearest segment of each point: (segment, fraction, distance, snap x, snap y).

        A snap point within ``NODE_SNAP_M`` of a segment's end is that end: fraction exactly
        0 or 1, coordinates of the geometry's end vertex. ``use_grid``: search by the bucket
        grid first (:meth:`uses_grid`).
        """
        piece = self._nearest_pieces(px, py, use_grid)
        todo = np.flatnonzero(piece < 0)
        # Exact projection on the geometry's straight piece, as GEOS computes it.
        vp = self.parent[np.where(piece < 0, 0, piece)]
        ax, ay, dx, dy = self.vx0[vp], self.vy0[vp], self.vdx[vp], self.vdy[vp]
        ll = dx * dx + dy * dy
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(ll > 0, np.clip(((px - ax) * dx + (py - ay) * dy) / ll, 0.0, 1.0), 0.0)
        qx = ax + t * dx
        qy = ay + t * dy
        seg = self.vseg[vp]
        along = self.valong[vp] + t * self.vlen[vp]
        if len(todo):
            # Rare: a point far out among many close pieces. Exact GEOS search for those.
            geoms = rg.seg_geom
            pts = shapely.points(px[todo], py[todo])
            (_, segi) = shapely.STRtree(geoms[self.segs]).query_nearest(pts, all_matches=False)
            segi = self.segs[segi]
            seg[todo] = segi
            along[todo] = shapely.line_locate_point(geoms[segi], pts)
            xy = shapely.get_coordinates(shapely.shortest_line(geoms[segi], pts))[0::2]
            qx[todo], qy[todo] = xy[:, 0], xy[:, 1]
        slen = self.seg_len[seg]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(slen > 0, np.clip(along / slen, 0.0, 1.0), 0.0)
        # A snap point on a node is that node (so its intersection delay applies).
        at_a = along <= NODE_SNAP_M
        at_b = ~at_a & (slen - along <= NODE_SNAP_M)
        frac[at_a], frac[at_b] = 0.0, 1.0
        for at, col in ((at_a, 0), (at_b, 2)):
            i = np.flatnonzero(at)
            qx[i], qy[i] = self.seg_end[seg[i], col], self.seg_end[seg[i], col + 1]
        return seg, frac, np.hypot(px - qx, py - qy), qx, qy


def _cell_order(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Order of points (metres) cell by cell of a ``GRID_CELL_M`` grid. Each point's snap is
    its own whatever the order, but nearby points read the same parts of the snapping index
    (grid cells, KD-tree leaves), which then stay in the CPU's cache."""
    ix = ((px - px.min()) // GRID_CELL_M).astype(np.int64)
    iy = ((py - py.min()) // GRID_CELL_M).astype(np.int64)
    key = ix * (int(iy.max()) + 1) + iy
    if key.max() < 2**31:
        key = key.astype(np.int32)  # sorts faster
    return np.argsort(key, kind="stable")


def warn_far(names: pd.Index | np.ndarray, dist: np.ndarray, threshold: float, what: str) -> None:
    """Note once (:func:`firegrid.spatial.runtime.note`) every point farther than
    ``threshold`` metres from the network, naming it."""
    items = far_points(names, dist, threshold)
    if items:
        note(f"{what} placed off the road network (snapping distance > {threshold:g} m): {items}")


def far_points(
    names: pd.Index | np.ndarray, dist: np.ndarray, threshold: float, *, limit: int | None = None
) -> str:
    """The points farther than ``threshold`` metres, each named with its distance
    (``"M2 (68 m)"``, ``"(no geometry)"`` where NaN), comma-separated; "" when none. With
    ``limit``, the first ``limit`` and how many more."""
    dist = np.asarray(dist)
    far = ~(dist <= threshold)
    shown = slice(None) if limit is None else slice(limit)
    items = ", ".join(
        f"{n!s} ({d:.0f} m)" if np.isfinite(d) else f"{n!s} (no geometry)"
        for n, d in zip(np.asarray(names)[far][shown], dist[far][shown], strict=True)
    )
    n_far = int(far.sum())
    if limit is not None and n_far > limit:
        items += f" and {n_far - limit} more"
    return items
