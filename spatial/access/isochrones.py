"""Isochrones of the places a station reaches in time, areas of responsibility, overlap counts.

An isochrone of ``T`` seconds (turnout included) holds the places where a building would be
reached within ``T`` by the rule of :func:`firegrid.spatial.access.travel_times.building_access`: the place joins
its nearest street the vehicle may use (ground level, within ``max_snap_m``), walks that access
leg at the profile's access speed, and the station reaches the joining point along the streets
(turn restrictions included). Beside a reached street the isochrone is as wide as the time
left there allows and stops where another street is nearer; every building reached in time lies
inside. It is computed as a travel-time field on a fine grid contoured at ``T`` (the default);
a plain band of ``street_buffer_m`` around the reached street pieces is available as
``method="vector"``.

With many stations (``AccessParams.isochrones = "union"``, chosen by ``"auto"`` beyond
:data:`PER_STATION_MAX`) one isochrone per station kind and threshold is contoured from the
fastest-station field instead.

Areas of responsibility assign each street piece and building to the station reaching it first;
every cell of a fine grid takes the station of its nearest place (the raster form of the places'
Voronoi cells), and the cells united per station tile the district. Overlap counts unite the
same cells by how many stations reach a place within target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import contourpy
import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy import ndimage
from scipy.sparse.csgraph import connected_components

from firegrid.spatial.access.travel_times import (
    COLS,
    KINDS,
    StationGroup,
    compile_graphs,
    first_station_and_count,
    kind_target_s,
    snap_stations,
    station_groups,
    station_ids,
)
from firegrid.spatial.geometry import touching_groups, union_by
from firegrid.spatial.io.grids import surface_points
from firegrid.spatial.network.profiles import AccessParams
from firegrid.spatial.network.routing import (
    RoutingGraph,
    Snap,
    cost_matrix,
    nearest_cost,
    node_costs,
    segment_entry_costs,
    snap,
    snap_graphs,
    state_node_costs,
)
from firegrid.spatial.runtime import threads

# Stations per batch when building isochrones (dense Dijkstra rows of n_nodes floats each, and
# the grid cells their travel-time fields hold).
_ISO_BATCH = 16
# Street pieces for areas of responsibility are at most this long (metres).
PIECE_M = 50.0
# Areas of responsibility are drawn on a grid of this cell (metres), coarser when the district
# would need more than AREA_MAX_CELLS cells (22 m cells over 1,000 km²).
AREA_CELL_M = 5.0
AREA_MAX_CELLS = 2_000_000
# Points per chunk of the octagon test of the places' hull (eight passes within the CPU's
# cache).
_OCTAGON_CHUNK = 1 << 16
# Cells per chunk when grid cells are placed on their streets.
_CELL_CHUNK = 1 << 16
# Tiles of the travel-time grid are this many cells square (bounds the distance transform).
_TILE = 512  # a power of two
# isochrones="auto": one isochrone per station up to this many stations, one per kind beyond
# (each station's field costs about 0.1 s on a 50k-node grid; a thousand overlapping polygons
# say nothing on a city map).
PER_STATION_MAX = 50
# A union field holds at most about this many grid cells: its cell grows beyond ``cell_m`` at
# city size (4 M cells: 5 m cells up to 100 km², 16 m at 1,000 km²) to bound time and memory.
UNION_MAX_CELLS = 4_000_000


# ---------------------------------------------------------------------- geometry helpers
def cut_segments(rg: RoutingGraph, seg: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sub-lines of segments between fractions ``lo`` and ``hi`` (by geometric length).

    Vectorised: whole segments reuse their geometry; partial ones are rebuilt from the interior
    vertices plus the two interpolated end points.

    Returns
    -------
    numpy.ndarray of LineString (None where ``hi <= lo``)
    """
    seg = np.asarray(seg, dtype=np.int64)
    lo = np.clip(np.asarray(lo, dtype=float), 0.0, 1.0)
    hi = np.clip(np.asarray(hi, dtype=float), 0.0, 1.0)
    out = np.full(len(seg), None, dtype=object)
    whole = (lo <= 0.0) & (hi >= 1.0)
    out[whole] = rg.lines(seg[whole])
    part = np.flatnonzero(~whole & (hi > lo))
    if len(part) == 0:
        return out
    vx, vy, vstart, vcount, valong, seglen = rg.segment_vertices
    k = seg[part]
    s0 = lo[part] * seglen[k]
    s1 = hi[part] * seglen[k]
    geom_k = rg.lines(k)
    p0 = shapely.get_coordinates(shapely.line_interpolate_point(geom_k, s0))
    p1 = shapely.get_coordinates(shapely.line_interpolate_point(geom_k, s1))
    # Interior vertices strictly between s0 and s1.
    cnt = vcount[k]
    rep = np.repeat(np.arange(len(part)), cnt)
    j = vstart[k][rep] + (np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    inside = (valong[j] > s0[rep]) & (valong[j] < s1[rep])
    rep, j = rep[inside], j[inside]
    # Assemble: start point, interior vertices, end point, ordered per line.
    ids = np.concatenate([np.arange(len(part)), rep, np.arange(len(part))])
    pos = np.concatenate([np.zeros(len(part)), valong[j] - s0[rep] + 1e-9, s1 - s0 + 1.0])
    xs = np.concatenate([p0[:, 0], vx[j], p1[:, 0]])
    ys = np.concatenate([p0[:, 1], vy[j], p1[:, 1]])
    order = np.lexsort((pos, ids))
    lines = shapely.linestrings(np.column_stack([xs[order], ys[order]]), indices=ids[order])
    out[part] = lines
    return out


def reached_intervals(
    rg: RoutingGraph,
    sources: Snap,
    dist: np.ndarray,
    threshold: float,
    *,
    source_offset: np.ndarray,
    states: np.ndarray | None = None,
):
    """Parts of segments reached within ``threshold`` from each source.

    Parameters
    ----------
    rg : RoutingGraph
    sources : Snap
        The sources whose rows ``dist`` holds.
    dist : numpy.ndarray
        ``len(sources) × n_nodes`` node costs (from :func:`firegrid.spatial.network.routing.node_costs`).
    threshold : float
        Cost limit (seconds, turnout included).
    source_offset : numpy.ndarray
        Turnout per source (seconds).
    states : numpy.ndarray, optional
        Per-state costs (``node_costs(..., states=True)``) of a graph with turn restrictions:
        a street is then entered only from the states allowed to turn into it
        (:func:`firegrid.spatial.network.routing.segment_entry_costs`).

    Returns
    -------
    row, seg, lo, hi : numpy.ndarray
        Source row, segment and the reached interval ``[lo, hi]`` of fractions; a segment
        reached from both ends in part gives two intervals.
    """
    parts = [*_end_intervals(rg, dist, threshold, states)]
    parts.append(_own_intervals(rg, sources, threshold, source_offset))
    return tuple(np.concatenate(col) for col in zip(*parts, strict=True))


def _end_intervals(rg: RoutingGraph, dist, threshold: float, states):
    """Intervals reached through the ends of segments with a reached end, each (row,
    segment) once: whole segments, then the parts entered from ``a``, then from ``b``."""
    reached = dist <= threshold
    rr, segs = np.nonzero(reached[:, rg.seg_a] | reached[:, rg.seg_b])
    a, b = rg.seg_a[segs], rg.seg_b[segs]
    if states is None:
        da, db = dist[rr, a], dist[rr, b]
    else:
        da, db = segment_entry_costs(rg, states, rr, segs)
    with np.errstate(invalid="ignore", divide="ignore"):
        fa = np.where(da <= threshold, np.clip((threshold - da) / rg.run_fwd[segs], 0, 1), -1.0)
        fb = np.where(db <= threshold, np.clip((threshold - db) / rg.run_back[segs], 0, 1), -1.0)
    fa = np.where((da <= threshold) & (rg.run_fwd[segs] == 0), 1.0, fa)
    fb = np.where((db <= threshold) & (rg.run_back[segs] == 0), 1.0, fb)
    full = (fa >= 0) & (fb >= 0) & (fa + fb >= 1.0)
    from_a = ~full & (fa > 0)
    from_b = ~full & (fb > 0)
    return (
        (rr[full], segs[full], np.zeros(full.sum()), np.ones(full.sum())),
        (rr[from_a], segs[from_a], np.zeros(from_a.sum()), fa[from_a]),
        (rr[from_b], segs[from_b], 1.0 - fb[from_b], np.ones(from_b.sum())),
    )


def _own_intervals(rg: RoutingGraph, sources: Snap, threshold: float, source_offset):
    """Each source's own segment, from its snap point both ways."""
    ok = np.flatnonzero(sources.ok)
    base = source_offset[ok] + sources.access_m[ok] * rg.access_cost_per_m
    left = threshold - base
    go = left >= 0
    ok, left = ok[go], left[go]
    s, f = sources.seg[ok], sources.frac[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        up = np.where(np.isfinite(rg.run_fwd[s]), left / rg.run_fwd[s], 0.0)
        down = np.where(np.isfinite(rg.run_back[s]), left / rg.run_back[s], 0.0)
    up = np.nan_to_num(up, nan=1.0, posinf=1.0)
    down = np.nan_to_num(down, nan=1.0, posinf=1.0)
    return ok, s, np.clip(f - down, 0, 1), np.clip(f + up, 0, 1)


# ---------------------------------------------------------------------- isochrones
def station_isochrones(
    stations: gpd.GeoDataFrame,
    network: nx.MultiDiGraph | Mapping[str, RoutingGraph],
    *,
    params: AccessParams | None = None,
    minutes: tuple[float, ...] | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    method: str = "raster",
    cell_m: float | None = None,
    quad_segs: int = 2,
) -> gpd.GeoDataFrame:
    """Isochrone polygons per station (or station kind) and threshold: where a building would
    be reached in time.

    A place lies in a station's ``T``-second isochrone (turnout included) when a building
    standing there would be reached within ``T`` by the rule of
    :func:`firegrid.spatial.access.travel_times.building_access`: the place joins its nearest street the vehicle uses
    (within ``params.max_snap_m``), covers that straight access leg at the profile's access
    speed, and the station reaches the joining point along the streets. Around a reached street
    the isochrone is therefore as wide as the time left there allows (remaining seconds ×
    access speed, at most ``max_snap_m``), narrowing to nothing where time runs out, and it
    stops where another street is nearer.

    Parameters
    ----------
    stations : GeoDataFrame
        Stations (``station_id``, ``kind``, optional ``vehicle``, ``turnout_s``, ``name``) in
        the working CRS.
    network : networkx.MultiDiGraph or mapping vehicle -> RoutingGraph
    params : AccessParams, optional
        Also how isochrones are drawn: ``street_buffer_m`` (half-width in metres of the
        ``"vector"`` band; ``cell_m`` defaults to a third of it) and ``isochrones``, the mode:
        ``"per_station"``, one polygon per station and threshold; ``"union"``, one polygon per
        station kind and threshold, the places some station of that kind reaches in time,
        contoured from one fastest-station field per vehicle (``"raster"`` only; its cell
        grows beyond ``cell_m`` so the field holds at most :data:`UNION_MAX_CELLS` cells);
        ``"auto"``, per station up to :data:`PER_STATION_MAX` stations, the union beyond.
    minutes : tuple of float, optional
        Thresholds in minutes, turnout included (default ``params.isochrone_minutes``).
    buildings : GeoDataFrame, optional
        When given, counted per isochrone (``n_buildings``), and every building a station
        reaches within a threshold lies inside that isochrone: one whose representative point
        the grid contour misses by a fraction of a cell is joined by its access leg.
    method : {"raster", "vector"}
        ``"raster"`` (default): the travel-time field described above, computed at the centres
        of a ``cell_m`` grid (each centre snapped and timed like a building) and contoured at
        each threshold; edges within about a cell of the exact line.
        ``"vector"``: a plain street band, the exact union of ``street_buffer_m`` buffers
        around the reached street pieces and the access legs of reached buildings (no time
        left for the access leg is considered, so it holds places not reached in time; slow
        when large).
    cell_m : float, optional
        Grid cell for ``"raster"`` (metres; default ``street_buffer_m / 3``, 5 m for the
        default 15 m).
    quad_segs : int
        Segments per quarter circle of the buffers for ``"vector"``.

    Returns
    -------
    GeoDataFrame
        In the network's projected CRS: ``station_id``, ``name``, ``kind``, ``vehicle``,
        ``minutes``, ``t_s`` (seconds), ``length_m`` (street metres reached), ``n_buildings``
        (buildings reached, when given), polygon. A union row has no ``station_id`` nor
        ``name``, its ``vehicle`` names every vehicle of the kind (``"ebike+foot"``) and
        ``n_stations`` counts its stations.
    """
    params = params or AccessParams()
    spec = _IsoSpec.of(params, minutes, method, cell_m, quad_segs, stations)
    groups = station_groups(stations, params)
    graphs = compile_graphs(network, params, vehicles=tuple(sorted({g.vehicle for g in groups})))
    if spec.mode == "union":
        recs, geoms = _union_isochrones(stations, groups, graphs, params, spec, buildings)
    else:
        names = stations["name"].astype(object).to_numpy() if "name" in stations else None
        recs, parts = [], []
        for g in groups:
            iso = _GroupIsochrones(graphs[g.vehicle], g, spec, params, names)
            iso.run(stations, buildings)
            recs.extend(iso.recs)
            parts.append(iso.geoms())
        geoms = np.concatenate(parts) if parts else np.zeros(0, dtype=object)
    return _iso_frame(recs, geoms, graphs, union=spec.mode == "union", buildings=buildings)


def isochrone_mode(params: AccessParams, stations: gpd.GeoDataFrame) -> str:
    """How :func:`station_isochrones` draws the isochrones of ``stations``: ``params``'
    mode, ``"auto"`` resolved (``"per_station"`` up to :data:`PER_STATION_MAX` stations,
    ``"union"`` beyond)."""
    if params.isochrones != "auto":
        return params.isochrones
    return "per_station" if len(stations) <= PER_STATION_MAX else "union"


_ISO_COLUMNS = ["station_id", "name", "kind", "vehicle", "minutes", "t_s", "length_m",
                "n_buildings"]  # fmt: skip


def _iso_frame(recs, geoms, graphs, *, union: bool, buildings) -> gpd.GeoDataFrame:
    """The isochrone records as a GeoDataFrame in the graphs' CRS."""
    out = pd.DataFrame.from_records(recs, columns=_ISO_COLUMNS + (["n_stations"] if union else []))
    if union:
        out["station_id"] = out["station_id"].astype(object)
    if buildings is None:
        out = out.drop(columns="n_buildings")
    crs = next(iter(graphs.values())).crs
    return gpd.GeoDataFrame(out, geometry=np.asarray(geoms, dtype=object), crs=crs)


@dataclass(frozen=True)
class _IsoSpec:
    """How isochrones are drawn (see :func:`station_isochrones`), checked."""

    minutes: tuple[float, ...]
    buffer_m: float
    method: str
    cell_m: float
    quad_segs: int
    mode: str

    @classmethod
    def of(cls, params: AccessParams, minutes, method, cell_m, quad_segs, stations) -> _IsoSpec:
        minutes = tuple(float(m) for m in (minutes or params.isochrone_minutes))
        buffer_m = float(params.street_buffer_m)
        cell_m = buffer_m / 3.0 if cell_m is None else float(cell_m)
        if method not in ("raster", "vector"):
            raise ValueError(f"method must be 'raster' or 'vector', got {method!r}")
        if not cell_m > 0:
            raise ValueError(f"cell_m must be > 0, got {cell_m!r}")
        if params.isochrones not in ("auto", "per_station", "union"):
            raise ValueError(
                f"mode must be 'auto', 'per_station' or 'union', got {params.isochrones!r}"
            )
        mode = isochrone_mode(params, stations)
        if mode == "union" and method != "raster":
            raise ValueError("mode='union' draws the raster field; method must be 'raster'")
        return cls(minutes, buffer_m, method, cell_m, quad_segs, mode)

    @property
    def thresholds(self) -> np.ndarray:
        """The thresholds in seconds, turnout included."""
        return np.array(self.minutes) * 60.0


class _GroupIsochrones:
    """Per-station isochrones of one station group on its graph, batch by batch.

    ``recs`` gets one record per threshold and station (threshold by threshold within a
    batch); ``geoms()`` the polygons in the same order.
    """

    def __init__(self, rg: RoutingGraph, g: StationGroup, spec: _IsoSpec, params, names):
        self.rg, self.g, self.spec, self.params, self.names = rg, g, spec, params, names
        self.thresholds = spec.thresholds
        self.t_max = self.thresholds.max()
        self.recs: list[dict] = []
        self.fields: list[np.ndarray] = []  # "raster": polygons per batch
        self.bands: tuple[list, list, list] = ([], [], [])  # "vector": lines, record, whole
        self.bs = self.bcost = self.connectors = None

    def run(self, stations: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame | None) -> None:
        rg, g, params = self.rg, self.g, self.params
        self.ss = snap_stations(rg, stations, g, params)
        if buildings is not None and len(buildings):
            self.bs = snap(rg, buildings.geometry.to_numpy(), max_snap_m=params.max_snap_m)
            self.bcost = cost_matrix(rg, self.ss, self.bs, cutoff=self.t_max,
                                     source_offset=g.turnout_s).tocoo()  # fmt: skip
            if self.spec.method == "vector":
                self.connectors = self.bs.connectors()
        self.joinable = _street_pieces(rg) if self.spec.method == "raster" else None
        for start in range(0, len(g.rows), _ISO_BATCH):
            self._batch(np.arange(start, min(start + _ISO_BATCH, len(g.rows))))

    def geoms(self) -> np.ndarray:
        if self.spec.method == "raster":
            if not self.fields:
                return np.zeros(0, dtype=object)
            return np.concatenate(self.fields)
        lines, group, whole = self.bands
        return _bands(lines, group, whole, len(self.recs), self.spec.buffer_m,
                      self.spec.quad_segs)  # fmt: skip

    def _batch(self, idx: np.ndarray) -> None:
        rg, offset = self.rg, self.g.turnout_s[idx]
        sub = self.ss.take(idx)
        dist, states = _node_and_state_costs(rg, sub, offset, self.t_max)
        # For "raster": the pieces reached within the largest threshold bound the grid cells
        # worth timing.
        reach_lines = []
        for m, T in zip(self.spec.minutes, self.thresholds, strict=True):
            row, seg, lo, hi = reached_intervals(rg, sub, dist, T, source_offset=offset,
                                                 states=states)  # fmt: skip
            conn_rows, conn = self._record(idx, m, T, row, seg, lo, hi)
            if self.spec.method == "vector":
                gid0 = len(self.recs) - len(idx)
                lines, group, whole = self.bands
                lines.append(np.concatenate([cut_segments(rg, seg, lo, hi), conn]))
                group.append(np.concatenate([row, conn_rows]) + gid0)
                whole_seg = np.where((lo <= 0.0) & (hi >= 1.0), seg, -1)
                whole.append(np.concatenate([whole_seg, np.full(len(conn), -1)]))
            elif T == self.t_max:
                reach_lines.append(cut_segments(rg, seg, lo, hi))
        if self.spec.method == "raster":
            self._raster(idx, sub, reach_lines)

    def _record(self, idx, m, T, row, seg, lo, hi):
        """Records of the batch's stations at threshold ``T``; the access legs of the
        buildings they reach (batch row, connector line) for ``"vector"``."""
        rg, g = self.rg, self.g
        length = np.bincount(row, weights=_union_length(row, seg, lo, hi, rg),
                             minlength=len(idx))  # fmt: skip
        nb = np.zeros(len(idx), dtype=np.int64)
        conn_rows = np.zeros(0, dtype=np.int64)
        conn = np.zeros(0, dtype=object)
        if self.bcost is not None:
            sel = np.isin(self.bcost.row, idx) & (self.bcost.data <= T)
            conn_rows = self.bcost.row[sel] - idx[0]
            conn = self.connectors[self.bcost.col[sel]] if self.connectors is not None else conn
            nb = np.bincount(conn_rows, minlength=len(idx))
        for i, k in enumerate(idx):
            self.recs.append(
                dict(
                    station_id=g.station_id[k],
                    name=self.names[g.rows[k]] if self.names is not None else None,
                    kind=g.kind,
                    vehicle=g.vehicle,
                    minutes=m,
                    t_s=T,
                    length_m=float(length[i]),
                    n_buildings=int(nb[i]) if self.bcost is not None else None,
                )
            )
        return conn_rows, conn

    def _raster(self, idx, sub, reach_lines) -> None:
        """The batch's travel-time field contoured (the field per batch of stations bounds
        the cells held at once); records run threshold by threshold."""
        rg, offset, spec = self.rg, self.g.turnout_s[idx], self.spec
        grids = {}
        field = _time_field(
            rg,
            _matrix_timer(rg, sub, offset, self.t_max),
            self.thresholds,
            np.concatenate(reach_lines) if reach_lines else np.zeros(0, dtype=object),
            pieces=self.joinable,
            cell_m=spec.cell_m,
            max_snap_m=self.params.max_snap_m,
            grids=grids,
        )
        if self.bcost is not None:
            mine = np.isin(self.bcost.row, idx)
            field = _hold_buildings(field, self.thresholds, self.bs,
                                    self.bcost.row[mine] - idx[0], self.bcost.col[mine],
                                    self.bcost.data[mine], spec.cell_m, grids)  # fmt: skip
        self.fields.append(field.T.ravel())


def _union_isochrones(stations, groups, graphs, params, spec: _IsoSpec, buildings):
    """One isochrone per station kind and threshold from the fastest-station field of each
    vehicle (see :func:`station_isochrones`, mode ``"union"``); vehicles of a kind unite.
    Returns the records and their polygons. The buildings are snapped onto every vehicle's
    graph at once (their points read once)."""
    kinds = [(kind, kg) for kind in KINDS if (kg := [g for g in groups if g.kind == kind])]
    places = [
        [_GroupPlaces(g, graphs[g.vehicle], snap_stations(graphs[g.vehicle], stations, g, params))
         for g in kg]
        for _, kg in kinds
    ]  # fmt: skip
    has_buildings = buildings is not None and len(buildings) > 0
    if has_buildings:
        vehicles = {g.vehicle for g in groups}
        bsnaps = snap_graphs({v: graphs[v] for v in vehicles}, buildings.geometry.to_numpy(),
                             max_snap_m=params.max_snap_m)  # fmt: skip
        for gp in (gp for kind_places in places for gp in kind_places):
            gp.buildings = bsnaps[gp.group.vehicle]
    recs, geoms = [], []
    for (kind, _), kind_places in zip(kinds, places, strict=True):
        kind_recs, polys = _union_kind(kind, kind_places, params, spec)
        recs.extend(kind_recs)
        geoms.extend(polys)
    return recs, geoms


@dataclass
class _GroupPlaces:
    """A station group on its graph, its stations snapped; the buildings snapped (or None)."""

    group: StationGroup
    rg: RoutingGraph
    stations: Snap
    buildings: Snap | None = None


def _union_kind(kind, kind_places: list[_GroupPlaces], params, spec: _IsoSpec):
    """The union isochrones of one station kind: records and polygons per threshold."""
    thresholds = spec.thresholds
    n_t = len(thresholds)
    polys = None
    # Reached intervals of every vehicle, row = threshold: the vehicles' graphs share the
    # network's segments, so their union length is measured once.
    reached: list[tuple] = []
    b_best = None
    for gp in kind_places:
        rg = gp.rg
        field, b_time = _union_field(gp, params, spec, reached)
        if b_time is not None:
            b_best = np.fmin(np.inf if b_best is None else b_best, b_time)
        polys = field[0] if polys is None else shapely.union(polys, field[0])
    row, seg, lo, hi = (np.concatenate(a) for a in zip(*reached, strict=True))
    length = np.bincount(row, weights=_union_length(row, seg, lo, hi, rg), minlength=n_t)
    kg = [gp.group for gp in kind_places]
    recs = [
        dict(
            station_id=None,
            name=None,
            kind=kind,
            vehicle="+".join(sorted({g.vehicle for g in kg})),
            minutes=m,
            t_s=T,
            length_m=float(length[ti]),
            n_buildings=int((b_best <= T).sum()) if b_best is not None else None,
            n_stations=int(sum(len(g.rows) for g in kg)),
        )
        for ti, (m, T) in enumerate(zip(spec.minutes, thresholds, strict=True))
    ]
    return recs, polys


def _union_field(gp: _GroupPlaces, params, spec: _IsoSpec, reached):
    """The fastest-station field of one group contoured at each threshold (``1 × n_t``
    polygons), holding its buildings reached in time; appends the reached intervals
    (threshold row, segment, lo, hi) to ``reached``. Returns the field and the buildings'
    times from the group (None without buildings)."""
    rg, g, ss = gp.rg, gp.group, gp.stations
    thresholds = spec.thresholds
    t_max = float(thresholds.max())
    dist, states = _fastest_node_costs(rg, ss, g.turnout_s, t_max)
    lines = np.zeros(0, dtype=object)
    for ti, T in enumerate(thresholds):
        _, seg, lo, hi = reached_intervals(rg, ss, dist, T, source_offset=g.turnout_s,
                                           states=states)  # fmt: skip
        reached.append((np.full(len(seg), ti), seg, lo, hi))
        if T == t_max:
            lines = cut_segments(rg, seg, lo, hi)
    del dist, states
    c = _union_cell(lines, spec.cell_m, params.max_snap_m)
    grids = {}
    field = _time_field(
        rg,
        _fastest_timer(rg, ss, g.turnout_s, t_max),
        thresholds,
        lines,
        pieces=_street_pieces(rg),
        cell_m=c,
        max_snap_m=params.max_snap_m,
        grids=grids,
    )
    bs = gp.buildings
    if bs is None:
        return field, None
    bt, _ = nearest_cost(rg, ss, bs, source_offset=g.turnout_s)
    hit = np.flatnonzero(bt <= t_max)
    field = _hold_buildings(field, thresholds, bs, np.zeros(len(hit), dtype=np.int64), hit,
                            bt[hit], c, grids)  # fmt: skip
    return field, bt


def _fastest_node_costs(rg: RoutingGraph, sources: Snap, offset: np.ndarray, t_max: float):
    """Cost of every node (and, with turn restrictions, every state) from the fastest source,
    ``1 × n`` arrays (``inf`` beyond ``t_max``): the minimum over batches of sources bounds the
    dense rows held at once."""
    dist = np.full((1, rg.n_nodes), np.inf)
    states = np.full((1, rg.n_states), np.inf) if rg.turns is not None else None
    for start in range(0, len(sources), _ISO_BATCH):
        idx = np.arange(start, min(start + _ISO_BATCH, len(sources)))
        d, d_states = _node_and_state_costs(rg, sources.take(idx), offset[idx], t_max)
        if len(d):
            np.minimum(dist, d.min(axis=0, keepdims=True), out=dist)
        if d_states is not None and len(d_states):
            np.minimum(states, d_states.min(axis=0, keepdims=True), out=states)
    return dist, states


def _node_and_state_costs(rg: RoutingGraph, sources: Snap, offset: np.ndarray, t_max: float):
    """Node costs from each source (``inf`` beyond ``t_max``) and, with turn restrictions, the
    per-state costs they come from (else None); one Dijkstra either way."""
    if rg.turns is None:
        return node_costs(rg, sources, source_offset=offset, cutoff=t_max), None
    # Streets are entered only by the turns allowed into them: keep every state.
    states = node_costs(rg, sources, source_offset=offset, cutoff=t_max, states=True)
    return state_node_costs(rg, states), states


def _union_cell(lines: np.ndarray, cell_m: float, max_snap_m: float) -> float:
    """Grid cell (metres) of a union field: ``cell_m``, grown so the box of the reached
    streets, padded by the snap limit, holds at most :data:`UNION_MAX_CELLS` cells."""
    lines = lines[~shapely.is_missing(lines)]
    if len(lines) == 0:
        return cell_m
    x0, y0, x1, y1 = shapely.total_bounds(lines)
    area = (x1 - x0 + 2 * max_snap_m) * (y1 - y0 + 2 * max_snap_m)
    return max(cell_m, float(np.sqrt(area / UNION_MAX_CELLS)))


def _union_length(row, seg, lo, hi, rg) -> np.ndarray:
    """Metres of street per interval not already covered by an earlier interval of the same
    (row, segment): summing gives the length of the union (the own-segment interval of a
    station overlaps the ones grown from the segment's ends)."""
    order = np.lexsort((lo, seg, row))
    r, s, a, b = row[order], seg[order], lo[order], hi[order]
    key = pd.Series(r.astype(np.int64) * (rg.n_segments + 1) + s)
    prev_hi = pd.Series(b).groupby(key.to_numpy()).cummax().groupby(key.to_numpy()).shift(1)
    prev_hi = prev_hi.fillna(0.0).to_numpy()
    new = np.maximum(0.0, b - np.maximum(a, prev_hi))
    out = np.empty(len(order))
    out[order] = new * rg.seg_length_m[s]
    return out


@dataclass(frozen=True)
class _Timer:
    """How a field times its cells: ``time(places)`` gives a CSR of seconds (``n_rows``
    rows: one per source, or one for the fastest source) within the largest threshold;
    ``min_offset`` is the smallest turnout (seconds)."""

    time: Callable[[Snap], sp.csr_matrix]
    n_rows: int
    min_offset: float


def _matrix_timer(rg: RoutingGraph, sources: Snap, offset: np.ndarray, t_max: float) -> _Timer:
    """Times of snapped places from each source (rows), within ``t_max`` seconds."""
    return _Timer(
        lambda places: cost_matrix(
            rg, sources, places, cutoff=t_max, source_offset=offset
        ).tocsr(),  # fmt: skip
        len(sources),
        float(np.min(offset)),
    )


def _fastest_timer(rg: RoutingGraph, sources: Snap, offset: np.ndarray, t_max: float) -> _Timer:
    """Times of snapped places from the fastest of the sources (one row), within ``t_max``."""

    def timer(places: Snap) -> sp.csr_matrix:
        t, _ = nearest_cost(rg, sources, places, source_offset=offset)
        keep = np.flatnonzero(t <= t_max)
        return sp.csr_matrix((t[keep], keep, np.array([0, len(keep)])), shape=(1, len(places)))

    return _Timer(timer, 1, float(np.min(offset)))


def _time_field(
    rg: RoutingGraph,
    timer: _Timer,
    thresholds: np.ndarray,
    lines: np.ndarray,
    *,
    pieces,
    cell_m: float,
    max_snap_m: float,
    grids: dict | None = None,
) -> np.ndarray:
    """Polygons ``[row, threshold]``: places a building would be reached from in time.

    Every point of a global ``cell_m`` lattice near the streets reached (``lines``, within the
    largest threshold) is snapped and timed exactly like a building by ``timer``; the field of
    those times is contoured at each threshold. ``grids``, when given, receives row →
    ``(x0, y0, z)``: each contoured grid (seconds; lattice column ``k`` at
    ``(x0 + k) * cell_m``, row likewise).
    """
    n_t = len(thresholds)
    out = np.full((timer.n_rows, n_t), shapely.Polygon(), dtype=object)
    lines = lines[~shapely.is_missing(lines)]
    if len(lines) == 0:
        return out
    c = float(cell_m)
    t_max = float(thresholds.max())
    # No building farther than the snap limit, nor than the time left after turnout allows,
    # from a reached street is reached.
    spare = max(t_max - timer.min_offset, 0.0)
    pad = min(max_snap_m, spare / rg.access_cost_per_m) + 2 * c
    ix, iy, cells = _near_cells(rg, pieces, lines, pad, c, max_snap_m)
    cost = timer.time(cells)
    # Cells timed beyond the largest threshold (or not near a reached street) take the time
    # one more cell of access leg would add, so the last contour falls between cell centres;
    # cells beyond the snap limit are never reached, so the contour keeps to the last one in.
    beyond = t_max + c * rg.access_cost_per_m
    never = 10.0 * t_max + 1.0
    lost = np.flatnonzero(~cells.ok)
    for r in np.flatnonzero(np.diff(cost.indptr) > 0):
        cols = cost.indices[cost.indptr[r] : cost.indptr[r + 1]]
        vals = cost.data[cost.indptr[r] : cost.indptr[r + 1]]
        x0, y0 = ix[cols].min() - 1, iy[cols].min() - 1
        z = np.full((iy[cols].max() - y0 + 2, ix[cols].max() - x0 + 2), beyond)
        gx, gy = ix[lost] - x0, iy[lost] - y0
        box = (gx >= 0) & (gx < z.shape[1]) & (gy >= 0) & (gy < z.shape[0])
        z[gy[box], gx[box]] = never
        z[iy[cols] - y0, ix[cols] - x0] = vals
        if grids is not None:
            grids[r] = (x0, y0, z)
        gen = contourpy.contour_generator(
            x=(x0 + np.arange(z.shape[1])) * c,
            y=(y0 + np.arange(z.shape[0])) * c,
            z=z,
            fill_type=contourpy.FillType.OuterOffset,
        )
        for ti, T in enumerate(thresholds):
            out[r, ti] = _polygons(*gen.filled(-1.0, float(T)))
    return out


def _street_pieces(rg: RoutingGraph):
    """Straight pieces of the streets points may join (``rg.join_ok``): segment index (``cand``),
    ends, position of its segment in ``cand``, length, metres along the segment before the
    piece, and each segment's geometric length.

    The vertices come from the graph's vertex arrays (``rg.segment_vertices``, the
    coordinates of its lines), not from GEOS lines drawn for every street."""
    cand = np.flatnonzero(rg.join_ok)
    vx, vy, vstart, vcount, _, _ = rg.segment_vertices
    n = vcount[cand]
    line = np.repeat(np.arange(len(cand)), n)
    vertex = np.repeat(vstart[cand] - (np.cumsum(n) - n), n) + np.arange(len(line))
    x, y = vx[vertex], vy[vertex]
    same = line[1:] == line[:-1]
    ax, ay = x[:-1][same], y[:-1][same]
    bx, by = x[1:][same], y[1:][same]
    pline = line[:-1][same]
    plen = np.hypot(bx - ax, by - ay)
    csum = np.cumsum(plen)
    first = np.searchsorted(pline, pline)
    along0 = (csum - plen) - (csum[first] - plen[first])
    geo_len = np.bincount(pline, weights=plen, minlength=len(cand))
    return cand, ax, ay, bx, by, pline, plen, along0, geo_len


def _near_cells(
    rg: RoutingGraph, pieces, lines: np.ndarray, pad: float, c: float, max_snap_m: float
):
    """Lattice points ``(ix * c, iy * c)`` within ``pad`` of the lines, each placed on its
    nearest street as :func:`snap` places a building (streets it may join, ``rg.join_ok``).

    Tile by tile, two distance transforms: one over samples of the lines (which cells are near
    enough to matter), one over samples every ``c`` along the straight pieces of the
    streets (which piece is nearest); each cell is then projected exactly onto that piece, in
    float64. Far faster than a nearest search for a quarter of a million points; only
    near-ties between two streets may pick the other one.

    Returns
    -------
    ix, iy : numpy.ndarray of int
        Lattice columns and rows of the cells (each once).
    cells : Snap
        The cells on their streets (``seg = -1`` beyond ``max_snap_m`` of every street).
    """
    reach = shapely.get_coordinates(shapely.segmentize(lines, c))
    rx = np.rint(reach[:, 0] / c).astype(np.int64)
    ry = np.rint(reach[:, 1] / c).astype(np.int64)
    reach_r = int(np.ceil(pad / c)) + 1
    margin = max(reach_r, int(np.ceil(max_snap_m / c))) + 2
    lo_x, hi_x = (rx.min() - 2 * margin) * c, (rx.max() + 2 * margin) * c
    lo_y, hi_y = (ry.min() - 2 * margin) * c, (ry.max() + 2 * margin) * c
    cand, ax, ay, bx, by, pline, plen, along0, geo_len = pieces
    around = np.flatnonzero(
        (np.maximum(ax, bx) >= lo_x) & (np.minimum(ax, bx) <= hi_x)
        & (np.maximum(ay, by) >= lo_y) & (np.minimum(ay, by) <= hi_y)
    )  # fmt: skip
    # Samples every c along each piece, both ends included (each lattice cell a piece crosses).
    k = np.ceil(plen[around] / c).astype(np.int64) + 1
    rep = np.repeat(around, k)
    t = (np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)) / np.repeat(np.maximum(k - 1, 1), k)
    sx = np.rint((ax[rep] + t * (bx - ax)[rep]) / c).astype(np.int64)
    sy = np.rint((ay[rep] + t * (by - ay)[rep]) / c).astype(np.int64)
    # Tiles whose core lies within reach of a line sample: those holding samples and their
    # neighbours (reach_r < _TILE). Samples are listed once per tile window they fall in, so
    # each tile reads only its own.
    tx, ty = rx // _TILE, ry // _TILE
    tx0, ty0 = int(tx.min()) - 1, int(ty.min()) - 1
    span = int(ty.max()) - ty0 + 2
    key = np.unique((tx - tx0) * span + (ty - ty0))
    tiles = np.unique(key[:, None] + (np.arange(-1, 2)[:, None] * span + np.arange(-1, 2)).ravel())
    reach_at = _window_lists(rx, ry, margin, tx0, ty0, span, tiles)
    street_at = _window_lists(sx, sy, margin, tx0, ty0, span, tiles)
    size = _TILE + 2 * margin
    out_x, out_y, out_p = [], [], []
    for i, key in enumerate(tiles):
        r_i = _window(reach_at, i)
        if len(r_i) == 0:
            continue
        x0 = (key // span + tx0) * _TILE - margin
        y0 = (key % span + ty0) * _TILE - margin
        # Which cells are near: on a grid 4 × coarser, generously (a superset only costs time).
        coarse = np.ones((-(-size // 4), -(-size // 4)), dtype=bool)
        coarse[(ry[r_i] - y0) // 4, (rx[r_i] - x0) // 4] = False
        near = ndimage.distance_transform_edt(coarse) * 4 * c <= pad + 6 * c
        near = np.repeat(np.repeat(near, 4, axis=0), 4, axis=1)[:size, :size]
        cy, cx = np.nonzero(near[margin:-margin, margin:-margin])
        if len(cy) == 0:
            continue
        cy, cx = cy + margin, cx + margin
        piece = np.full(len(cy), -1, dtype=np.int64)
        s_i = _window(street_at, i)
        if len(s_i):
            label = np.full((size, size), -1, dtype=np.int64)
            label[sy[s_i] - y0, sx[s_i] - x0] = rep[s_i]
            d, (ny, nx_) = ndimage.distance_transform_edt(label < 0, return_indices=True)
            ok = d[cy, cx] * c <= max_snap_m + c
            piece[ok] = label[ny[cy[ok], cx[ok]], nx_[cy[ok], cx[ok]]]
        out_x.append(cx + x0)
        out_y.append(cy + y0)
        out_p.append(piece)
    ix = np.concatenate(out_x) if out_x else np.zeros(0, dtype=np.int64)
    iy = np.concatenate(out_y) if out_y else np.zeros(0, dtype=np.int64)
    piece = np.concatenate(out_p) if out_p else np.zeros(0, dtype=np.int64)
    del out_x, out_y, out_p
    return ix, iy, _cells_on_pieces(ix, iy, piece, c, pieces, max_snap_m)


def _cells_on_pieces(ix, iy, piece, c: float, pieces, max_snap_m: float) -> Snap:
    """The lattice points ``(ix * c, iy * c)`` placed on their street pieces (``piece``
    indexes ``pieces``, -1: none) as :func:`snap` places a building: at the nearest point of
    the piece, in float64; farther than ``max_snap_m``, not placed (``seg = -1``).

    Chunk by chunk into the result's arrays: the temporaries of a city's millions of cells
    stay small (0.35 GiB less for 3.8 M cells).
    """
    cand, ax, ay, bx, by, pline, plen, along0, geo_len = pieces
    n = len(ix)
    px, py = ix * c, iy * c
    seg = np.full(n, -1, dtype=np.int64)
    frac, qx, qy = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    dist = np.full(n, np.inf)
    for start in range(0, n, _CELL_CHUNK):
        part = slice(start, start + _CELL_CHUNK)
        on = np.flatnonzero(piece[part] >= 0)
        p = piece[part][on]
        x, y = px[part][on], py[part][on]
        dx, dy = bx[p] - ax[p], by[p] - ay[p]
        ll = dx * dx + dy * dy
        with np.errstate(invalid="ignore", divide="ignore"):
            tt = np.where(ll > 0, np.clip(((x - ax[p]) * dx + (y - ay[p]) * dy) / ll, 0, 1), 0)
            fr = np.where(geo_len[pline[p]] > 0, (along0[p] + tt * plen[p]) / geo_len[pline[p]],
                          0.0)  # fmt: skip
        sx, sy = ax[p] + tt * dx, ay[p] + tt * dy
        d = np.hypot(x - sx, y - sy)
        far = ~(d <= max_snap_m)
        sx[far], sy[far] = np.nan, np.nan
        p_seg = cand[pline[p]]
        p_seg[far] = -1
        qx[part][on], qy[part][on], dist[part][on] = sx, sy, d
        seg[part][on], frac[part][on] = p_seg, np.where(far, np.nan, np.clip(fr, 0.0, 1.0))
    return Snap(seg, frac, dist, qx, qy, px, py)


def _window_lists(gx, gy, margin: int, tx0: int, ty0: int, span: int, tiles: np.ndarray):
    """Lattice samples listed under every tile of ``tiles`` (sorted keys) whose window (the
    tile grown by ``margin`` cells) holds them: (start of each tile's list, and one past the
    last, in ``items``; ``items``, sample indices); a sample lies in at most two windows along
    each axis. Within a tile the samples keep their order."""
    shift = _TILE.bit_length() - 1  # floor division by the tile, a power of two
    ax_, bx_ = ((gx - margin) >> shift) - tx0, ((gx + margin) >> shift) - tx0
    ay_, by_ = ((gy - margin) >> shift) - ty0, ((gy + margin) >> shift) - ty0
    # Most samples lie in one window: the others are listed again by index.
    ex, ey = np.flatnonzero(bx_ != ax_), np.flatnonzero(by_ != ay_)
    exy = np.intersect1d(ex, ey, assume_unique=True)
    key = np.concatenate([ax_ * span + ay_, bx_[ex] * span + ay_[ex], ax_[ey] * span + by_[ey],
                          bx_[exy] * span + by_[exy]])  # fmt: skip
    item = np.concatenate([np.arange(len(gx)), ex, ey, exy])
    # Tile keys are small: a table gives each key its tile (-1: none) without a search, and a
    # stable sort of 16-bit tile numbers is a radix sort.
    table = np.full(int(tiles[-1]) + 1, -1, dtype=np.int64)
    table[tiles] = np.arange(len(tiles))
    pos = np.take(table, key, mode="clip")
    pos[key.astype(np.uint64) >= len(table)] = -1  # negative keys too
    keep = pos >= 0
    pos, item = pos[keep], item[keep]
    small = np.int16 if len(tiles) <= np.iinfo(np.int16).max else np.int64
    order = np.argsort(pos.astype(small), kind="stable")
    start = np.searchsorted(pos[order], np.arange(len(tiles) + 1))
    return start, item[order]


def _window(lists, i: int) -> np.ndarray:
    """Samples listed under tile ``i`` (its place in ``tiles``)."""
    start, items = lists
    return items[start[i] : start[i + 1]]


def _hold_buildings(field, thresholds, bs: Snap, rows, cols, cost, cell_m, grids) -> np.ndarray:
    """Join to each polygon the access legs of buildings reached in time that its contour
    misses (a representative point within a cell of the edge), so every one lies inside.
    ``rows``, ``cols``, ``cost``: station row of ``field``, building, seconds; ``grids``: the
    contoured grids of :func:`_time_field`."""
    field = field.copy()
    for ti, T in enumerate(thresholds):
        sel = cost <= T
        r_all, b_all = rows[sel], cols[sel]
        for r in np.unique(r_all):
            b = b_all[r_all == r]
            b = b[~_surely_inside(grids.get(r), bs.px[b], bs.py[b], cell_m, T)]
            poly = field[r, ti]
            miss = b[~shapely.contains_xy(poly, bs.px[b], bs.py[b])]
            if len(miss):
                legs = shapely.linestrings(
                    np.stack([np.c_[bs.px[miss], bs.py[miss]], np.c_[bs.x[miss], bs.y[miss]]], 1)
                )
                legs = shapely.buffer(legs, cell_m / 10, quad_segs=2)
                group = touching_groups(legs)  # dissolve_touching, keeping each leg's piece
                # A leg whose street end lies inside the contour meets it.
                meets = np.zeros(int(group.max()) + 1, dtype=bool)
                meets[group[shapely.contains_xy(poly, bs.x[miss], bs.y[miss])]] = True
                field[r, ti] = _with_pieces(poly, union_by(legs, group), meets=meets)
    return field


def _with_pieces(
    poly: shapely.Geometry, pieces: np.ndarray, *, meets: np.ndarray | None = None
) -> shapely.Geometry:
    """``poly`` united with ``pieces`` that neither overlap nor touch one another.

    Only the pieces meeting ``poly`` are overlaid with it; the others are parts of the result
    as they are. One union of all would carry the large contour up every level of its
    cascade, and even the legs' own union costs GEOS far more than the few that touch (a city
    with 70,000 legs: 20 s against 2 s). ``meets``, when given, marks pieces known to meet
    ``poly`` (GEOS tests only the others).
    """
    shapely.prepare(poly)
    meet = np.zeros(len(pieces), dtype=bool) if meets is None else meets.copy()
    rest = np.flatnonzero(~meet)
    meet[rest] = shapely.intersects(poly, pieces[rest])
    if not meet.any():
        near = poly
    else:
        near = shapely.union(poly, shapely.multipolygons(shapely.get_parts(pieces[meet])))
    parts = np.concatenate([shapely.get_parts(near), shapely.get_parts(pieces[~meet])])
    parts = parts[~shapely.is_empty(parts)]
    return parts[0] if len(parts) == 1 else shapely.multipolygons(parts)


def _surely_inside(grid, px, py, c: float, T: float) -> np.ndarray:
    """Points whose grid square has all four corners below ``T``: a filled contour holds such
    a square whole, so only the other points need a point-in-polygon test."""
    if grid is None:
        return np.zeros(len(px), dtype=bool)
    x0, y0, z = grid
    j = np.floor(px / c - x0).astype(np.int64)
    i = np.floor(py / c - y0).astype(np.int64)
    ok = (j >= 0) & (j + 1 < z.shape[1]) & (i >= 0) & (i + 1 < z.shape[0])
    j, i = np.where(ok, j, 0), np.where(ok, i, 0)
    top = np.maximum(np.maximum(z[i, j], z[i, j + 1]), np.maximum(z[i + 1, j], z[i + 1, j + 1]))
    return ok & (top < T)


def _polygons(points, offsets):
    """Polygons from contourpy's filled ``OuterOffset`` output (shells with their holes)."""
    if not points:
        return shapely.Polygon()
    # Rings of every polygon at once: first ring of each polygon is its shell, the rest holes.
    ring_len = np.concatenate([np.diff(o) for o in offsets])
    rings_per_poly = np.array([len(o) - 1 for o in offsets])
    coords = np.concatenate(points)
    ring_id = np.repeat(np.arange(len(ring_len)), ring_len)
    rings = shapely.linearrings(coords, indices=ring_id)
    poly_id = np.repeat(np.arange(len(rings_per_poly)), rings_per_poly)
    polys = shapely.polygons(rings, indices=poly_id)
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(list(polys))


def _bands(lines_all, group_all, whole_all, n_poly, buffer_m, quad_segs):
    """Polygon per id: the exact band of ``buffer_m`` around the lines carrying that id."""
    geoms = np.array([shapely.Polygon()] * n_poly, dtype=object)
    if not lines_all:
        return geoms
    lines = np.concatenate(lines_all)
    gid = np.concatenate(group_all).astype(np.int64)
    whole = np.concatenate(whole_all).astype(np.int64)
    ok = ~shapely.is_missing(lines)
    ok[ok] &= shapely.length(lines[ok]) > 0
    lines, gid, whole = lines[ok], gid[ok], whole[ok]
    if len(lines) == 0:
        return geoms
    order = np.argsort(gid, kind="stable")
    lines, gid, whole = lines[order], gid[order], whole[order]
    present, start = np.unique(gid, return_index=True)
    # Whole segments recur across stations and thresholds, so each is buffered once; the
    # unions (the real cost) run on threads, GEOS releasing the GIL.
    bufs = np.empty(len(lines), dtype=object)
    is_whole = whole >= 0
    segs, inv = np.unique(whole[is_whole], return_inverse=True)
    first = np.zeros(len(segs), dtype=np.int64)
    first[inv] = np.flatnonzero(is_whole)
    bufs[is_whole] = shapely.buffer(lines[first], buffer_m, quad_segs=quad_segs)[inv]
    bufs[~is_whole] = shapely.buffer(lines[~is_whole], buffer_m, quad_segs=quad_segs)
    parts = np.split(bufs, start[1:])
    with ThreadPoolExecutor(max_workers=threads()) as pool:
        geoms[present] = list(pool.map(shapely.union_all, parts))
    return geoms


# ---------------------------------------------------------------------- areas of responsibility
class Areas:
    """Areas of responsibility and overlap counts (see :func:`areas_of_responsibility`).

    ``areas`` is drawn at once; the street pieces and the overlap polygons are drawn when
    first read (a city has millions of pieces, and the access command writes neither).
    """

    def __init__(self, areas: gpd.GeoDataFrame, street_parts: list, count_grids: list, crs):
        self.areas = areas
        self._street_parts, self._count_grids, self._crs = street_parts, count_grids, crs

    @cached_property
    def streets(self) -> gpd.GeoDataFrame:
        """Street pieces with ``kind``, ``station_id``, ``t_s``, ``n_stations``, ``length_m``."""
        frames = [part.frame(self._crs) for part in self._street_parts]
        if not frames:
            return gpd.GeoDataFrame(
                {"kind": [], "station_id": [], "t_s": [], "n_stations": []}, geometry=[],
                crs=self._crs,
            )  # fmt: skip
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=self._crs)

    @cached_property
    def overlaps(self) -> gpd.GeoDataFrame:
        """Polygons with ``kind`` and ``n_stations`` (0 = no station within target)."""
        rows = [
            dict(kind=kind, n_stations=int(n_st), geometry=polys)
            for kind, grid in self._count_grids
            for n_st, polys in grid.polygons()
        ]
        return gpd.GeoDataFrame(
            pd.DataFrame(rows, columns=["kind", "n_stations", "geometry"]),
            geometry="geometry",
            crs=self._crs,
        )


def areas_of_responsibility(
    stations: gpd.GeoDataFrame,
    network: nx.MultiDiGraph | Mapping[str, RoutingGraph],
    *,
    params: AccessParams | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    boundary: shapely.Geometry | None = None,
    piece_m: float = PIECE_M,
) -> Areas:
    """Assign every street piece (≤ ``piece_m`` metres) and building to the station reaching
    it first, per station kind; tile the district into areas; count overlapping stations.

    Parameters
    ----------
    stations : GeoDataFrame
        In the working CRS.
    network : networkx.MultiDiGraph or mapping vehicle -> RoutingGraph
    params : AccessParams, optional
    buildings : GeoDataFrame, optional
        Output of :func:`firegrid.spatial.access.travel_times.building_access`; its ``fire_station_id`` /
        ``micro_station_id`` and ``n_fire_5min`` / ``n_micro_3min`` place buildings too.
    boundary : shapely geometry, optional
        Clip polygons to this (e.g. the subdistrict); default the hull of all places.
    piece_m : float
        Street pieces are cut to at most this length (metres).

    Returns
    -------
    Areas
        ``areas``: per station ``station_id``, ``name``, ``kind``, ``n_buildings``,
        ``street_km``, ``area_km2``, polygon. ``streets``: street pieces with ``kind``,
        ``station_id`` (first to arrive; missing if none), ``t_s``, ``n_stations`` (within
        target). ``overlaps``: polygons with ``kind`` and ``n_stations`` (0 = none in target).
    """
    params = params or AccessParams()
    groups = station_groups(stations, params)
    graphs = compile_graphs(network, params, vehicles=tuple(sorted({g.vehicle for g in groups})))
    job = _AreaJob(graphs, stations, params, buildings, boundary, piece_m)
    for kind in KINDS:
        kg = [g for g in groups if g.kind == kind]
        if kg:
            job.add_kind(kind, kg)
    return job.result()


@dataclass(frozen=True)
class _StreetPieces:
    """The street pieces of one station kind (``seg`` from ``lo`` to ``hi`` on ``rg``), each
    with its first station (``sid``, ``best`` seconds; inf: none) and count within target."""

    kind: str
    rg: RoutingGraph
    seg: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    sid: np.ndarray
    best: np.ndarray
    count: np.ndarray
    length_m: np.ndarray

    def frame(self, crs) -> gpd.GeoDataFrame:
        reach = np.isfinite(self.best)
        return gpd.GeoDataFrame(
            {
                "kind": self.kind,
                "station_id": pd.Series(np.where(reach, self.sid, None), dtype="str"),
                "t_s": np.where(reach, self.best, np.nan),
                "n_stations": self.count,
                "length_m": self.length_m,
            },
            geometry=cut_segments(self.rg, self.seg, self.lo, self.hi),
            crs=crs,
        )


class _AreaJob:
    """Areas of responsibility, street pieces and overlaps, station kind by station kind."""

    def __init__(self, graphs, stations, params: AccessParams, buildings, boundary, piece_m):
        self.graphs, self.stations, self.params = graphs, stations, params
        self.buildings, self.boundary, self.piece_m = buildings, boundary, piece_m
        self.crs = next(iter(graphs.values())).crs
        self.names = (
            pd.Series(stations["name"].astype(object).to_numpy(), index=station_ids(stations))
            if "name" in stations
            else None
        )
        self.areas: list[dict] = []
        self.street_parts: list[_StreetPieces] = []
        self.count_grids: list[tuple] = []
        self._points: tuple[np.ndarray, np.ndarray] | None = None
        self._building_corners: np.ndarray | None = None

    def add_kind(self, kind: str, kg: list[StationGroup]) -> None:
        """Street pieces of the kind's main vehicle, each with its first station and count;
        the district tiled by the station of the nearest place (pieces and buildings)."""
        params = self.params
        target = kind_target_s(kind, params)
        main = max({g.vehicle for g in kg}, key=lambda v: sum(len(g.rows) for g in kg
                                                               if g.vehicle == v))  # fmt: skip
        rg = self.graphs[main]
        seg, lo, hi = _pieces(rg, self.piece_m)
        usable = rg.usable[seg]  # streets this kind's main vehicle can use
        seg, lo, hi = seg[usable], lo[usable], hi[usable]
        mid = Snap.at(rg, seg, (lo + hi) / 2)
        best, who, count, ids = _first_and_count(kg, self.graphs, self.stations, params, rg, mid,
                                                 target)  # fmt: skip
        reach = np.isfinite(best)
        sid = np.where(reach, ids[np.clip(who, 0, None)] if len(ids) else "", "").astype(object)
        length_m = (hi - lo) * rg.seg_length_m[seg]
        self.street_parts.append(_StreetPieces(kind, rg, seg, lo, hi, sid, best, count, length_m))
        names, piece_label, px, py, lab, cnt, nb = self._places(kind, mid, ids,
                                                               np.where(reach, who, -1), count)  # fmt: skip
        clip = self.boundary if self.boundary is not None else self._hull(kind, mid)
        poly_lab, counts = _nearest_place_polygons(px, py, lab, cnt, clip)
        del px, py, lab, cnt
        km = pd.Series(length_m / 1000.0).groupby(piece_label).sum()
        km.index = names[km.index.to_numpy()]
        self.areas.extend(self._area(names[code], kind, polys, nb, km) for code, polys in poly_lab
                          if names[code] != "")  # fmt: skip
        self.count_grids.append((kind, counts))

    def _places(self, kind: str, mid: Snap, ids: np.ndarray, who: np.ndarray, count):
        """Places: piece midpoints and buildings, each with its first station (a label: the
        index into ``names``, the sorted station ids and "" for none) and count; and the
        buildings per first station. ``who`` indexes ``ids`` (-1: none) for every piece."""
        b = self.buildings
        cols = COLS[kind]
        found = b is not None and cols["sid"] in b
        has, bp = self._building_points() if found else (None, np.empty((0, 2)))
        column = b[cols["sid"]].fillna("")[has] if found else pd.Series([], dtype=object)
        names, piece_label, building_label = _place_labels(ids, who, column)
        px, py = np.r_[mid.x, bp[:, 0]], np.r_[mid.y, bp[:, 1]]
        cnt = count
        if found:
            bcnt = pd.to_numeric(b[cols["n"]], errors="coerce").fillna(0).to_numpy()[has]
            cnt = np.r_[count, bcnt.astype(np.int64)]
        n = np.bincount(building_label, minlength=len(names))
        named = (n > 0) & (names != "")
        nb = pd.Series(n[named], index=names[named])
        return names, piece_label, px, py, np.r_[piece_label, building_label], cnt, nb

    def _building_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Which buildings have a geometry, and a point on each (x, y); once for all kinds."""
        if self._points is None:
            bg = self.buildings.geometry.to_numpy()
            has = ~(shapely.is_missing(bg) | shapely.is_empty(bg))
            self._points = has, surface_xy(bg[has])
        return self._points

    def _hull(self, kind: str, mid: Snap) -> shapely.Geometry:
        """The places' convex hull grown by ``street_buffer_m`` (the default clip).

        The hull of pieces and buildings is the hull of their corner candidates
        (:func:`_hull_candidates`, each set's own), so the buildings' candidates, found once,
        serve every kind.
        """
        own = _hull_candidates(np.column_stack([mid.x, mid.y]))
        if self.buildings is not None and COLS[kind]["sid"] in self.buildings:
            if self._building_corners is None:
                self._building_corners = _hull_candidates(self._building_points()[1])
            own = np.concatenate([own, self._building_corners])
        return _convex_hull(own).buffer(self.params.street_buffer_m)

    def _area(self, label, kind: str, polys, nb: pd.Series, km: pd.Series) -> dict:
        return dict(
            station_id=label,
            name=self.names.get(label) if self.names is not None else None,
            kind=kind,
            n_buildings=int(nb.get(label, 0)),
            street_km=float(km.get(label, 0.0)),
            area_km2=float(shapely.area(polys) / 1e6),
            geometry=polys,
        )

    def result(self) -> Areas:
        cols_a = ["station_id", "name", "kind", "n_buildings", "street_km", "area_km2",
                  "geometry"]  # fmt: skip
        areas = gpd.GeoDataFrame(pd.DataFrame(self.areas, columns=cols_a), geometry="geometry",
                                 crs=self.crs)  # fmt: skip
        return Areas(areas, self.street_parts, self.count_grids, self.crs)


def surface_xy(geoms: np.ndarray) -> np.ndarray:
    """A point on each non-empty geometry, as an ``(n, 2)`` array of x, y (the geometries' CRS).

    Equal to ``shapely.get_coordinates(shapely.point_on_surface(geoms))``, but points (most
    buildings of a city-size layer) are taken as they are instead of going through GEOS.
    """
    return shapely.get_coordinates(surface_points(geoms))


def _place_labels(ids: np.ndarray, who: np.ndarray, column: pd.Series):
    """Label names (sorted; "" for no station) and the label of each piece and building.

    ``who`` indexes ``ids`` (-1: none); ``column`` holds the buildings' first station ids
    ("" for none). The ids are labelled through their distinct values, so a city's buildings
    cost one hash pass instead of a sort of their text.
    """
    codes, distinct = pd.factorize(column, use_na_sentinel=False)
    texts = np.concatenate([np.asarray(ids, dtype=object), np.asarray(distinct, dtype=object),
                            np.array([""], dtype=object)]).astype(str)  # fmt: skip
    names, label = np.unique(texts, return_inverse=True)
    # who == -1 reads the last text, ""
    return names, label[who], label[len(ids) :][codes]


def _pieces(rg: RoutingGraph, piece_m: float):
    """Every segment cut into equal pieces of at most ``piece_m`` metres: (seg, lo, hi)."""
    n = np.maximum(1, np.ceil(rg.seg_length_m / piece_m).astype(np.int64))
    seg = np.repeat(np.arange(rg.n_segments), n)
    j = np.arange(len(seg)) - np.repeat(np.cumsum(n) - n, n)
    return seg, j / n[seg], (j + 1) / n[seg]


def _first_and_count(kg: list[StationGroup], graphs, stations, params, rg_ref, places, target):
    """First station (cost, index into ids) and count within target for places on rg_ref."""
    others = {g.vehicle for g in kg if graphs[g.vehicle] is not rg_ref}
    snapped = {g.vehicle: places for g in kg if g.vehicle not in others}
    if others:  # the places as points only for the graphs they are not on already
        pts = shapely.points(places.x, places.y)
        snapped |= {v: snap(graphs[v], pts, max_snap_m=params.max_snap_m) for v in others}
    return first_station_and_count(kg, graphs, stations, snapped, params=params, target_s=target)


def _nearest_place_polygons(px, py, lab, cnt, clip):
    """Polygons of the places nearest to each label and to each count, clipped to ``clip``.

    A grid of :data:`AREA_CELL_M` cells (coarser at city size: at most :data:`AREA_MAX_CELLS`)
    over the clip's box holds the places, buildings written last so each lies in its own
    cell's label; every cell takes the label and count of its nearest place (one distance
    transform, the raster form of the places' Voronoi cells); runs of equal cells along rows
    become boxes united per value. The boxes share the lattice, so the polygons of one
    labelling tile without overlapping.

    ``lab`` labels each place by an integer, ``cnt`` gives its count.

    Returns
    -------
    by_label : list of (label, polygon)
    by_count : LatticeValues
        The counts' grid, polygonised when asked (:meth:`LatticeValues.polygons`).
    """
    lab = np.asarray(lab, dtype=np.int64)
    cnt = np.asarray(cnt, dtype=np.int64)
    x0, y0, x1, y1 = shapely.bounds(clip)
    c = max(AREA_CELL_M, float(np.sqrt((x1 - x0) * (y1 - y0) / AREA_MAX_CELLS)))
    nx_, ny = int(np.ceil((x1 - x0) / c)) + 1, int(np.ceil((y1 - y0) / c)) + 1
    gx = np.clip(((px - x0) // c).astype(np.int64), 0, nx_ - 1)
    gy = np.clip(((py - y0) // c).astype(np.int64), 0, ny - 1)
    seed = np.full((ny, nx_), -1, dtype=np.int64)
    # Fancy assignment keeps the last write of a cell: buildings come after street pieces.
    seed[gy, gx] = np.arange(len(px))
    _, (iy, ix) = ndimage.distance_transform_edt(seed < 0, return_indices=True)
    nearest = seed[iy, ix]
    del iy, ix
    by_label = _grid_polygons(lab[nearest], x0, y0, c, clip)
    return by_label, LatticeValues(cnt[nearest], x0, y0, c, clip)


@dataclass(frozen=True)
class LatticeValues:
    """An integer grid on the lattice of :func:`_nearest_place_polygons` (cell ``[i, j]``
    spans ``x0 + j c … x0 + (j + 1) c``, ``y0 + i c …``, metres), kept to be polygonised."""

    grid: np.ndarray
    x0: float
    y0: float
    c: float
    clip: shapely.Geometry

    def polygons(self) -> list[tuple]:
        """(value, polygon) per value, clipped (see :func:`_grid_polygons`)."""
        return _grid_polygons(self.grid, self.x0, self.y0, self.c, self.clip)


def _convex_hull(xy: np.ndarray) -> shapely.Geometry:
    """GEOS's convex hull of the points ``xy`` (metres), handed only their corner candidates
    (:func:`_hull_candidates`): GEOS draws the same hull without building a GEOS point for
    each of a million places (a second)."""
    return shapely.convex_hull(shapely.multipoints(_hull_candidates(xy)))


def _hull_candidates(xy: np.ndarray) -> np.ndarray:
    """The points of ``xy`` not well inside the octagon of their extreme points: that octagon
    lies in their hull, so every point on the hull's edge is among them. The candidates of
    two sets together hold every corner of the hull of both sets, so GEOS draws that hull
    from them alone."""
    return xy[~_well_inside_octagon(xy)]


def _well_inside_octagon(xy: np.ndarray, margin_m: float = 1e-6) -> np.ndarray:
    """Points more than ``margin_m`` inside the polygon of the extreme points in the eight
    directions (x, y and the diagonals; counter-clockwise), as a mask."""
    inside = np.zeros(len(xy), dtype=bool)
    if len(xy) < 9:
        return inside
    x, y = xy[:, 0], xy[:, 1]
    corner = [np.argmin(y), np.argmax(x - y), np.argmax(x), np.argmax(x + y), np.argmax(y),
              np.argmax(y - x), np.argmin(x), np.argmin(x + y)]  # fmt: skip
    ring = xy[corner]
    ring = ring[np.r_[True, (np.diff(ring, axis=0) != 0).any(axis=1)]]
    if len(ring) > 1 and (ring[0] == ring[-1]).all():
        ring = ring[:-1]
    if len(ring) < 3:
        return inside
    edges = [(ax, ay, bx - ax, by - ay, np.hypot(bx - ax, by - ay))
             for (ax, ay), (bx, by) in zip(ring, np.roll(ring, -1, axis=0), strict=True)]  # fmt: skip
    # Chunk by chunk, so the eight passes read points held in the CPU's cache.
    for start in range(0, len(xy), _OCTAGON_CHUNK):
        cx, cy = x[start : start + _OCTAGON_CHUNK], y[start : start + _OCTAGON_CHUNK]
        ok = inside[start : start + _OCTAGON_CHUNK]
        ok[:] = True
        for ax, ay, dx, dy, norm in edges:
            # Distance to the left of the edge (the octagon's inside).
            ok &= (dx * (cy - ay) - dy * (cx - ax)) / norm > margin_m
    return inside


def _grid_polygons(grid: np.ndarray, x0: float, y0: float, c: float, clip):
    """(value, polygon) per value of an integer grid (cell ``[i, j]`` spans
    ``x0 + j c … x0 + (j + 1) c``, ``y0 + i c …``), clipped to ``clip``.

    Runs of equal cells along each row become rectangles carrying, on their top and bottom
    edges, the run breaks of the rows above and below: neighbours then share every vertex,
    so the rectangles form a valid coverage. Each connected patch of a value (runs touching
    by an edge or a corner) is merged by one coverage union and clipped on its own: GEOS
    places the holes of a polygon by testing every shell, so one union of a fragmented value
    costs shells × holes, patch by patch it is linear. The patches of a value share no point,
    so together they are the union of all its rectangles."""
    ny, nx_ = grid.shape
    start = np.ones((ny, nx_), dtype=bool)
    start[:, 1:] = grid[:, 1:] != grid[:, :-1]
    r, j0 = np.nonzero(start)
    # A run ends where the next one of its row starts (or at the row's end).
    j1 = np.r_[j0[1:], nx_]
    j1[np.r_[r[1:] != r[:-1], True]] = nx_
    val = grid[r, j0]
    w = nx_ + 1
    key = r * w + j0  # row-major, hence sorted
    # Run breaks strictly inside each run, in the row below (bottom edge) and above (top edge).
    b_lo = np.searchsorted(key, (r - 1) * w + j0, "right")
    b_n = np.searchsorted(key, (r - 1) * w + j1, "left") - b_lo
    t_lo = np.searchsorted(key, (r + 1) * w + j0, "right")
    t_n = np.searchsorted(key, (r + 1) * w + j1, "left") - t_lo
    n_run = len(r)
    run = np.arange(n_run)
    b_run = np.repeat(run, b_n)
    b_k = np.arange(len(b_run)) - np.repeat(np.cumsum(b_n) - b_n, b_n)
    t_run = np.repeat(run, t_n)
    t_k = np.arange(len(t_run)) - np.repeat(np.cumsum(t_n) - t_n, t_n)
    # Ring, counter-clockwise: (j0, r), bottom breaks rising, (j1, r), (j1, r + 1), top breaks
    # falling, (j0, r + 1).
    ids = np.concatenate([run, b_run, run, run, t_run, run])
    pos = np.concatenate([np.zeros(n_run), 1 + b_k, 1 + b_n, 2 + b_n, 3 + b_n[t_run] + t_k,
                          3 + b_n + t_n])  # fmt: skip
    jx = np.concatenate([j0, key[b_lo[b_run] + b_k] % w, j1, j1,
                         key[t_lo[t_run] + t_n[t_run] - 1 - t_k] % w, j0])  # fmt: skip
    iy = np.concatenate([r, r[b_run], r, r + 1, r[t_run] + 1, r + 1])
    order = np.lexsort((pos, ids))
    rings = shapely.linearrings(x0 + jx[order] * c, y0 + iy[order] * c, indices=ids[order])
    boxes = shapely.polygons(rings)
    patch = _run_patches(val, r, j0, j1)
    polys = _clip(union_by(boxes, patch, coverage=True), clip)
    patch_val = np.empty(int(patch.max()) + 1 if len(patch) else 0, dtype=val.dtype)
    patch_val[patch] = val
    parts, of = shapely.get_parts(polys, return_index=True)
    # Only the area of a patch counts (a patch touching the clip's edge may leave a line).
    area = shapely.get_type_id(parts) == 3
    parts, of = parts[area], of[area]
    keys, part_key = np.unique(patch_val[of], return_inverse=True)
    order = np.argsort(part_key, kind="stable")
    n = np.bincount(part_key, minlength=len(keys))
    multi = shapely.multipolygons(parts[order], indices=part_key[order])
    # A value in one piece is a Polygon, as GEOS returns it from a single union.
    single = shapely.get_parts(multi[n == 1])
    multi[n == 1] = single
    return list(zip(keys.tolist(), multi, strict=True))


def _clip(polys: np.ndarray, clip) -> np.ndarray:
    """``polys`` intersected with ``clip``; those well inside it (most) are kept as they are."""
    shapely.prepare(clip)
    inside = shapely.contains_properly(clip, polys)
    out = polys.copy()
    out[~inside] = shapely.intersection(polys[~inside], clip)
    return out


def _run_patches(val, r, j0, j1) -> np.ndarray:
    """Patch of each run (cells ``j0 … j1 - 1`` of row ``r``): runs of equal value in
    neighbouring rows sharing an edge or a corner are in one patch."""
    n = len(val)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, code = np.unique(val, return_inverse=True)
    ny, w = int(r.max()) + 2, int(j1.max()) + 2
    group = code.astype(np.int64) * ny + r
    order = np.lexsort((j0, group))
    g, a, b = group[order], j0[order], j1[order]
    # Runs of one (value, row) are disjoint and sorted, so their ends are sorted too: the
    # runs of the next row touching [a, b] are found by two binary searches.
    first = np.searchsorted(g * w + b, (g + 1) * w + a, "left")
    stop = np.searchsorted(g * w + a, (g + 1) * w + b, "right")
    k = np.maximum(stop - first, 0)
    src = np.repeat(np.arange(n), k)
    dst = np.repeat(first, k) + np.arange(len(src)) - np.repeat(np.cumsum(k) - k, k)
    adj = sp.coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    patch = np.empty(n, dtype=np.int64)
    patch[order] = label
    return patch
