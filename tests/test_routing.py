"""Routing engine: compiled graph, snapping to edges, multi-source costs vs networkx Dijkstra."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from firegrid.spatial.errors import NetworkError
from firegrid.spatial.network.profiles import default_profile
from firegrid.spatial.network.routing import (
    EdgeArrays,
    RoutingGraph,
    Snap,
    cost_matrix,
    graph_table,
    nearest_cost,
    node_costs,
    snap,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHANGHAI = SHARED / "shanghai_roads" / "shanghai_center.osm"
CRS = "EPSG:32651"


# ---------------------------------------------------------------------- fixtures
def grid_graph(n: int = 6, spacing: float = 100.0, seed: int = 0) -> nx.MultiDiGraph:
    """An osmnx-like projected grid: mixed classes, some one-way, curved and parallel edges."""
    rng = np.random.default_rng(seed)
    G = nx.MultiDiGraph(crs=CRS)
    x0, y0 = 350_000.0, 3_460_000.0
    for i in range(n):
        for j in range(n):
            G.add_node(i * n + j, x=x0 + i * spacing, y=y0 + j * spacing)
    classes = ["primary", "secondary", "residential", "service", "footway"]
    for i in range(n):
        for j in range(n):
            for di, dj in ((1, 0), (0, 1)):
                ii, jj = i + di, j + dj
                if ii >= n or jj >= n:
                    continue
                u, v = i * n + j, ii * n + jj
                hw = classes[rng.integers(len(classes))]
                oneway = bool(rng.random() < 0.3) and hw != "footway"
                pu = (G.nodes[u]["x"], G.nodes[u]["y"])
                pv = (G.nodes[v]["x"], G.nodes[v]["y"])
                # Curved geometry on some edges so fractions are by geometric length.
                if rng.random() < 0.4:
                    mid = ((pu[0] + pv[0]) / 2 + 20 * dj, (pu[1] + pv[1]) / 2 + 20 * di)
                    line = shapely.LineString([pu, mid, pv])
                else:
                    line = shapely.LineString([pu, pv])
                data = dict(highway=hw, oneway=oneway, length=line.length, geometry=line)
                if rng.random() < 0.2:
                    data["maxspeed"] = str(int(rng.choice([20, 30, 50])))
                G.add_edge(u, v, 0, **data)
                if not oneway:
                    G.add_edge(v, u, 0, **{**data, "geometry": line.reverse()})
    # A parallel slower edge between nodes 0 and 1 (kept as a separate segment).
    pu = (G.nodes[0]["x"], G.nodes[0]["y"])
    pv = (G.nodes[1]["x"], G.nodes[1]["y"])
    bent = shapely.LineString([pu, (pu[0] - 40, (pu[1] + pv[1]) / 2), pv])
    G.add_edge(0, 1, 1, highway="residential", oneway=False, length=bent.length, geometry=bent)
    G.add_edge(1, 0, 1, highway="residential", oneway=False, length=bent.length,
               geometry=bent.reverse())  # fmt: skip
    # An island: two nodes joined to nothing else.
    G.add_node(10_000, x=x0 - 500, y=y0 - 500)
    G.add_node(10_001, x=x0 - 400, y=y0 - 500)
    line = shapely.LineString([(x0 - 500, y0 - 500), (x0 - 400, y0 - 500)])
    for a, b, g in ((10_000, 10_001, line), (10_001, 10_000, line.reverse())):
        G.add_edge(a, b, 0, highway="residential", oneway=False, length=100.0, geometry=g)
    return G


def reference_costs(rg: RoutingGraph, src: Snap, tgt: Snap, offset: np.ndarray) -> np.ndarray:
    """Source × target costs by networkx Dijkstra on the graph with every point inserted.

    Each segment is cut at the snap points of sources and targets into a chain of directed
    pieces carrying the partial costs of the model; this is an independent construction of
    what RoutingGraph computes with end-costs and the same-segment shortcut.
    """
    D = nx.DiGraph()
    D.add_nodes_from(range(rg.n_nodes))
    pts = {}  # segment -> list of (frac, node label)
    for kind, s in (("s", src), ("t", tgt)):
        for i in np.flatnonzero(s.ok):
            f, k = float(s.frac[i]), int(s.seg[i])
            if kind == "t" and f in (0.0, 1.0):
                # A target exactly at a node is reached on reaching the node.
                _add_min(D, int(rg.seg_a[k] if f == 0.0 else rg.seg_b[k]), ("t", int(i)), 0.0)
                continue
            pts.setdefault(k, []).append((f, (kind, int(i))))
    for k in range(rg.n_segments):
        a, b = int(rg.seg_a[k]), int(rg.seg_b[k])
        chain = [(0.0, a)] + sorted(pts.get(k, []), key=lambda p: p[0]) + [(1.0, b)]
        for (f0, n0), (f1, n1) in zip(chain[:-1], chain[1:], strict=True):
            if np.isfinite(rg.run_fwd[k]):
                w = (f1 - f0) * rg.run_fwd[k] + (rg.fix_fwd[k] if n1 == b else 0)
                _add_min(D, n0, n1, w)
            if np.isfinite(rg.run_back[k]):
                w = (f1 - f0) * rg.run_back[k] + (rg.fix_back[k] if n0 == a else 0)
                _add_min(D, n1, n0, w)
        # A source starts at its point; one exactly at a node starts at the node too (only
        # at the start: passing through another source's point must not skip a delay).
        for f, lab in chain[1:-1]:
            if lab[0] != "s":
                continue
            _add_min(D, ("start", lab[1]), lab, 0.0)
            if f == 0.0:
                _add_min(D, ("start", lab[1]), a, 0.0)
            if f == 1.0:
                _add_min(D, ("start", lab[1]), b, 0.0)
    # A source and a target at the very same point on a node.
    for i in np.flatnonzero(src.ok):
        for j in np.flatnonzero(tgt.ok):
            if (src.seg[i], src.frac[i]) == (tgt.seg[j], tgt.frac[j]):
                _add_min(D, ("start", int(i)), ("t", int(j)), 0.0)
    out = np.full((len(src), len(tgt)), np.inf)
    for i in np.flatnonzero(src.ok):
        d = nx.single_source_dijkstra_path_length(D, ("start", int(i)), weight="weight")
        base = offset[i] + src.access_m[i] * rg.access_cost_per_m
        for j in np.flatnonzero(tgt.ok):
            if ("t", int(j)) in d:
                out[i, j] = base + d[("t", int(j))] + tgt.access_m[j] * rg.access_cost_per_m
    return out


def _add_min(D: nx.DiGraph, u, v, w: float) -> None:
    if not D.has_edge(u, v) or D[u][v]["weight"] > w:
        D.add_edge(u, v, weight=w)


def random_points(rg: RoutingGraph, n: int, seed: int, pad: float = 60.0) -> gpd.GeoSeries:
    rng = np.random.default_rng(seed)
    x0, x1 = rg.node_x.min() - pad, rg.node_x.max() + pad
    y0, y1 = rg.node_y.min() - pad, rg.node_y.max() + pad
    xy = np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])
    # Some points exactly on nodes, to exercise fractions 0 and 1.
    xy[:3] = np.column_stack([rg.node_x[:3], rg.node_y[:3]])
    return gpd.GeoSeries(shapely.points(xy), crs=rg.crs)


# ---------------------------------------------------------------------- snapping
def test_snap_is_nearest_point_on_nearest_edge_not_nearest_node():
    rg = RoutingGraph.from_graph(grid_graph(), default_profile("foot"))
    pts = random_points(rg, 400, seed=3)
    s = snap(rg, pts)
    # GEOS reference: distance to every segment, nearest wins.
    d_all = shapely.distance(np.asarray(pts.values)[:, None], rg.seg_geom[None, :])
    np.testing.assert_allclose(s.access_m, d_all.min(axis=1), atol=1e-6)
    on = shapely.points(s.x, s.y)
    np.testing.assert_allclose(shapely.distance(on, rg.seg_geom[s.seg]), 0, atol=1e-6)
    ref_frac = shapely.line_locate_point(rg.seg_geom[s.seg], on, normalized=True)
    np.testing.assert_allclose(s.frac, ref_frac, atol=1e-6)
    # A point beside the middle of a long edge snaps to the edge, 5 m away, not to a node.
    mid = shapely.line_interpolate_point(rg.seg_geom[10], 0.5, normalized=True)
    probe = gpd.GeoSeries([shapely.Point(mid.x + 0.0, mid.y)], crs=rg.crs)
    one = snap(rg, probe)
    assert one.access_m[0] < 1e-6 and 0 < one.frac[0] < 1


def test_snap_polygons_missing_far_and_wrong_crs():
    rg = RoutingGraph.from_graph(grid_graph(), default_profile("foot"))
    x, y = rg.node_x[7] + 30, rg.node_y[7] + 30
    geoms = gpd.GeoSeries(
        [shapely.box(x, y, x + 10, y + 10), None, shapely.Point(x + 5000, y)], crs=rg.crs
    )
    s = snap(rg, geoms, max_snap_m=200)
    assert s.seg[0] >= 0 and s.access_m[0] > 0
    assert s.seg[1] == -1 and np.isnan(s.access_m[1])
    assert s.seg[2] == -1 and s.access_m[2] > 4000  # distance still reported
    with pytest.raises(NetworkError, match="reproject"):
        snap(rg, geoms.to_crs(4326))


def test_unprojected_graph_is_refused():
    G = grid_graph()
    G.graph["crs"] = "EPSG:4326"
    with pytest.raises(NetworkError, match="degrees"):
        RoutingGraph.from_graph(G, default_profile("engine"))


# ---------------------------------------------------------------------- costs vs networkx
@pytest.mark.parametrize("profile", ["engine", "ebike", "foot"])
def test_point_costs_equal_networkx_with_split_edges(profile):
    rg = RoutingGraph.from_graph(grid_graph(seed=1), default_profile(profile))
    src = snap(rg, random_points(rg, 6, seed=11), max_snap_m=150)
    tgt = snap(rg, random_points(rg, 60, seed=12), max_snap_m=150)
    # Put one source on the same segment as several targets, on both sides of them.
    src.seg[0], src.frac[0] = tgt.seg[5], 0.5
    offset = np.linspace(0, 50, len(src))
    ref = reference_costs(rg, src, tgt, offset)

    cost, who = nearest_cost(rg, src, tgt, source_offset=offset)
    np.testing.assert_allclose(cost, ref.min(axis=0), atol=1e-6)
    fin = np.isfinite(cost)
    assert (who[~fin] == -1).all()
    np.testing.assert_allclose(ref[who[fin], np.flatnonzero(fin)], cost[fin], atol=1e-6)

    cutoff = float(np.nanpercentile(ref[np.isfinite(ref)], 60))
    M = cost_matrix(rg, src, tgt, cutoff=cutoff, source_offset=offset)
    expect = ref <= cutoff
    got = np.zeros_like(expect)
    coo = M.tocoo()
    got[coo.row, coo.col] = True
    assert (got == expect).all()
    np.testing.assert_allclose(coo.data, ref[coo.row, coo.col], atol=1e-6)


def test_cost_matrix_small_batches_and_zero_costs_kept():
    rg = RoutingGraph.from_graph(grid_graph(seed=2), default_profile("foot"))
    pts = random_points(rg, 30, seed=5)
    s = snap(rg, pts, max_snap_m=150)
    M1 = cost_matrix(rg, s, s, cutoff=400)
    M2 = cost_matrix(rg, s, s, cutoff=400, batch_bytes=1)  # one source per batch
    assert (M1 != M2).nnz == 0 and M1.nnz == M2.nnz
    # Each snapped point reaches itself over its access leg twice; the first three points lie
    # on nodes, so they reach themselves at cost 0, stored as explicit zero entries.
    ok = np.flatnonzero(s.ok)
    diag = np.asarray(M1[ok, ok]).ravel()
    np.testing.assert_allclose(diag, 2 * s.access_m[ok] * rg.access_cost_per_m, atol=1e-9)
    assert (diag[:3] == 0).all()
    assert all(i in M1.indices[M1.indptr[i] : M1.indptr[i + 1]] for i in ok)


def test_node_costs_equal_networkx_on_original_graph_with_oneway():
    """Compiled node costs equal networkx Dijkstra on the osmnx graph weighted independently."""
    G = grid_graph(seed=4)
    prof = default_profile("engine")
    rg = RoutingGraph.from_graph(G, prof)
    ref = profile_weighted(G, prof)
    sources = [0, 7, 20]
    d_nx = nx.multi_source_dijkstra_path_length(ref, sources, weight="cost")
    index = {nid: i for i, nid in enumerate(rg.node_ids)}
    seg = [int(np.flatnonzero((rg.seg_a == index[s]) | (rg.seg_b == index[s]))[0]) for s in sources]
    frac = [0.0 if rg.seg_a[k] == index[s] else 1.0 for k, s in zip(seg, sources, strict=True)]
    D = node_costs(rg, Snap.at(rg, np.array(seg), np.array(frac))).min(axis=0)
    for nid, i in index.items():
        assert D[i] == pytest.approx(d_nx.get(nid, np.inf), abs=1e-6)


def profile_weighted(G: nx.MultiDiGraph, prof) -> nx.MultiDiGraph:
    """The osmnx graph with a ``cost`` per edge, built edge by edge (reference for tests).

    Speeds come from the profile's vectorised lookups; the graph structure (usable edges, reverse
    edges for crews, intersection delays by counting neighbours) is rebuilt independently.
    """
    import pandas as pd

    rows = list(G.edges(keys=True, data=True))
    highway = pd.Series([d.get("highway") for *_, d in rows], dtype=object)
    maxspeed = pd.Series([d.get("maxspeed") for *_, d in rows], dtype=object)
    # Which edges a profile may use comes from the access rules (tested on their own in
    # test_profiles_rules); everything after that is rebuilt here edge by edge.
    usable = prof.usable(graph_table(G))
    speed = prof.speed_mps(highway, maxspeed)
    # Intersections: nodes where three or more usable street pieces meet (both directions of a
    # street are one piece; parallel streets are several; a loop counts at both its ends).
    pieces = {(min(u, v), max(u, v), round(d["length"], 2))
              for (u, v, _, d), ok in zip(rows, usable, strict=True) if ok}  # fmt: skip
    count = dict.fromkeys(G.nodes, 0)
    for a, b, _ in pieces:
        count[a] += 1
        count[b] += 1
    delay = {n: prof.intersection_delay_s if c >= 3 else 0.0 for n, c in count.items()}
    H = nx.MultiDiGraph()
    H.add_nodes_from(G.nodes)
    for (u, v, k, d), ok, sp in zip(rows, usable, speed, strict=True):
        if not ok:
            continue
        H.add_edge(u, v, k, cost=d["length"] / sp + delay[v])
        if not prof.respect_oneway:
            H.add_edge(v, u, ("rev", k), cost=d["length"] / sp + delay[u])
    return H


def test_oneway_respected_by_engine_not_by_foot():
    G = nx.MultiDiGraph(crs=CRS)
    for i in range(3):
        G.add_node(i, x=1000.0 * i, y=0.0)
    G.add_node(3, x=1000.0, y=1000.0)
    one = shapely.LineString([(0, 0), (1000, 0)])
    G.add_edge(0, 1, 0, highway="primary", oneway=True, length=1000.0, geometry=one)
    for a, b in ((1, 2), (0, 3), (3, 2)):
        line = shapely.LineString([(G.nodes[a]["x"], 0), (G.nodes[b]["x"], G.nodes[b]["y"])])
        for p, q, g in ((a, b, line), (b, a, line.reverse())):
            G.add_edge(p, q, 0, highway="primary", oneway=False, length=line.length, geometry=g)
    for prof_name, expect_direct in (("engine", False), ("foot", True)):
        rg = RoutingGraph.from_graph(G, default_profile(prof_name))
        at1 = Snap.at(rg, np.array([int(np.flatnonzero((rg.seg_a == 0) & (rg.seg_b == 1))[0])]),
                      np.array([1.0]))  # fmt: skip
        D = node_costs(rg, at1)[0]
        run = rg.run_fwd[at1.seg[0]]
        # Going 1 -> 0 against the one-way: direct for foot, the long way round for the engine.
        direct = np.isclose(D[0], run, atol=1e-6)
        assert direct == expect_direct, prof_name
    assert RoutingGraph.from_graph(G, default_profile("engine")).segments["oneway"].sum() == 1


def test_length_weight_undirected_for_hoses():
    G = grid_graph(seed=6)
    rg = RoutingGraph.from_graph(G, None, weight="length")
    assert rg.weight == "length" and rg.access_cost_per_m == 1.0
    assert np.array_equal(rg.run_fwd, rg.run_back)  # one-way ignored
    assert not rg.segments["oneway"].any()
    np.testing.assert_allclose(rg.run_fwd, rg.seg_length_m)
    with pytest.raises(NetworkError, match="profile"):
        RoutingGraph.from_graph(G, None, weight="time")


def test_disconnected_target_is_inf_with_no_source():
    rg = RoutingGraph.from_graph(grid_graph(), default_profile("foot"))
    island = rg.node_ids.tolist().index(10_000)
    x, y = rg.node_x[island] + 50, rg.node_y[island] + 3
    tgt = snap(rg, gpd.GeoSeries([shapely.Point(x, y)], crs=rg.crs))
    src = snap(rg, gpd.GeoSeries([shapely.Point(rg.node_x[5], rg.node_y[5])], crs=rg.crs))
    cost, who = nearest_cost(rg, src, tgt)
    assert np.isinf(cost[0]) and who[0] == -1
    assert cost_matrix(rg, src, tgt, cutoff=1e9).nnz == 0


# ---------------------------------------------------------------------- Shanghai extract
@pytest.mark.slow
@pytest.mark.skipif(not SHANGHAI.exists(), reason=f"shared Shanghai extract absent: {SHANGHAI}")
@pytest.mark.parametrize("profile", ["engine", "foot"])
def test_shanghai_times_equal_networkx(shanghai_graph, profile):
    prof = default_profile(profile)
    rg = RoutingGraph.from_graph(shanghai_graph, prof)
    # Node level: against networkx on the osmnx graph weighted edge by edge.
    ref = profile_weighted(shanghai_graph, prof)
    rng = np.random.default_rng(0)
    index = {nid: i for i, nid in enumerate(rg.node_ids)}
    src_nodes = [int(n) for n in rng.choice(rg.node_ids, 15, replace=False)]
    d_nx = nx.multi_source_dijkstra_path_length(ref, src_nodes, weight="cost")
    seg = []
    frac = []
    for s in src_nodes:
        k = int(np.flatnonzero((rg.seg_a == index[s]) | (rg.seg_b == index[s]))[0])
        seg.append(k)
        frac.append(0.0 if rg.seg_a[k] == index[s] else 1.0)
    D = node_costs(rg, Snap.at(rg, np.array(seg), np.array(frac))).min(axis=0)
    ref_arr = np.array([d_nx.get(nid, np.inf) for nid in rg.node_ids])
    assert (np.isfinite(D) == np.isfinite(ref_arr)).all()
    fin = np.isfinite(ref_arr)
    assert fin.sum() > 0.9 * rg.n_nodes
    np.testing.assert_allclose(D[fin], ref_arr[fin], atol=1e-6, rtol=0)
    # Point level (buildings/stations off nodes): against networkx with edges split.
    src = snap(rg, random_points(rg, 5, seed=21, pad=-2000), max_snap_m=150)
    tgt = snap(rg, random_points(rg, 150, seed=22, pad=-2000), max_snap_m=150)
    off = np.full(len(src), 60.0)
    refp = reference_costs(rg, src, tgt, off)
    cost, who = nearest_cost(rg, src, tgt, source_offset=off)
    np.testing.assert_allclose(cost, refp.min(axis=0), atol=1e-6, rtol=0)
    M = cost_matrix(rg, src, tgt, cutoff=600, source_offset=off)
    coo = M.tocoo()
    np.testing.assert_allclose(coo.data, refp[coo.row, coo.col], atol=1e-6, rtol=0)
    assert coo.nnz == int((refp <= 600).sum())


@pytest.fixture(scope="module")
def shanghai_graph():
    """The Shanghai extract as an osmnx graph (the analysts' path), projected to UTM 51N."""
    import osmnx as ox

    G = ox.graph_from_xml(SHANGHAI, simplify=False, retain_all=True)
    return ox.project_graph(G, to_crs=CRS)


def test_snap_graphs_equals_snapping_each_graph():
    G = grid_graph(seed=7)
    from firegrid.spatial.network.routing import snap_graphs

    graphs = {p: RoutingGraph.from_graph(G, default_profile(p)) for p in ("engine", "foot")}
    # Footways are barred to engines but kept as (unusable) segments: shared indexing.
    assert graphs["engine"].n_segments == graphs["foot"].n_segments
    assert (~graphs["engine"].usable).sum() > 0 and graphs["foot"].usable.all()
    pts = random_points(graphs["foot"], 300, seed=8)
    both = snap_graphs(graphs, pts, max_snap_m=120)
    for name, rg in graphs.items():
        one = snap(rg, pts, max_snap_m=120)
        assert rg.usable[both[name].seg[both[name].ok]].all()
        for f in ("access_m", "x", "y"):
            np.testing.assert_allclose(getattr(both[name], f), getattr(one, f), atol=1e-9)
        # Segments agree except for ties at a node shared by several segments.
        differ = both[name].seg != one.seg
        assert np.isin(both[name].frac[differ], [0.0, 1.0]).all()
        assert np.isin(one.frac[differ], [0.0, 1.0]).all()


# ---------------------------------------------------------------------- snapping precision
def test_snap_point_equals_geos_nearest_point_to_a_nanometre():
    """float64 throughout: the snap point is GEOS's exact nearest point (UTM-sized coordinates,
    curved and long edges cut into sub-pieces for the search)."""
    rg = RoutingGraph.from_graph(grid_graph(seed=11), default_profile("foot"))
    pts = random_points(rg, 2000, seed=12, pad=150.0)
    # Near-ties: points 0.3 µm off the line halfway between two parallel streets.
    rng = np.random.default_rng(13)
    x_mid = rg.node_x.min() + 50.0 + 100.0 * rng.integers(0, 5, 500) + 3e-7
    y = rng.uniform(rg.node_y.min(), rg.node_y.max(), 500)
    pts = pd.concat([pts, gpd.GeoSeries(shapely.points(x_mid, y), crs=rg.crs)], ignore_index=True)
    s = snap(rg, pts)
    geoms = np.asarray(pts.values)
    d_all = shapely.distance(geoms[:, None], rg.seg_geom[None, :])
    np.testing.assert_allclose(s.access_m, d_all.min(axis=1), rtol=0, atol=1e-9)
    # On the chosen segment the snap point is GEOS's nearest point.
    ref = shapely.get_coordinates(shapely.shortest_line(rg.seg_geom[s.seg], geoms))[0::2]
    at_node = np.isin(s.frac, [0.0, 1.0])
    err = np.hypot(s.x - ref[:, 0], s.y - ref[:, 1])
    assert err[~at_node].max() < 1e-9
    assert err[at_node].max() < 2e-6  # an end within NODE_SNAP_M is the node itself


def _corner_graph(delay: float):
    """A station at W, a bent street W → C ending at the 3-way node C, and two
    streets leaving C east and north; a long winding street far away is indexed first, so
    distances along geometries are differences of large rounded sums. UTM-sized coordinates."""
    x0, y0 = 351_234.567, 3_461_987.123
    far = np.array([[x0 - 5000.0, y0 - 5000.0], [x0 - 2000.0, y0 - 5000.0]])
    xy = np.array(
        [*far, [x0 - 300.0, y0], [x0, y0], [x0 + 200.0, y0 + 0.3], [x0 - 0.2, y0 + 200.0]]
    )
    t = np.linspace(0.0, 1.0, 31)
    winding = np.column_stack([far[0, 0] + 3000.0 * t, far[0, 1] + 0.7 * np.sin(np.pi * 9 * t)])
    winding[0], winding[-1] = far[0], far[1]
    # W → C bends 55.55 m before C: the last piece is cut in two for the search, and the sum
    # of its parts rounds to 0.9999999999999998 of the street's length.
    wiggle = np.array([xy[2], [x0 - 55.55, y0 + 0.37], xy[3]])
    lines = [
        shapely.LineString(winding),
        shapely.LineString(wiggle),
        shapely.LineString([xy[3], xy[4]]),
        shapely.LineString([xy[3], xy[5]]),
    ]
    u = np.array([0, 2, 3, 3])
    v = np.array([1, 3, 4, 5])
    length = shapely.length(np.array(lines))
    speed = 5.0  # m/s on every street
    uu, vv = np.r_[u, v], np.r_[v, u]
    geom = np.r_[np.array(lines, dtype=object), shapely.reverse(np.array(lines))]
    node_delay = np.array([0.0, 0.0, 0.0, delay, 0.0, 0.0])  # C is the only intersection
    # Engines may not use the east and north streets (footways): only W → C is snappable near
    # C, so C is reached as the far end of a street whose length is a sum of rounded pieces.
    run = np.r_[length, length] / speed
    run[[2, 3, 6, 7]] = np.inf
    edges = EdgeArrays(xy[:, 0], xy[:, 1], uu, vv, np.r_[length, length], geometry=geom, crs=CRS)
    rg = RoutingGraph.from_arrays(edges, run, node_delay=node_delay, access_cost_per_m=1 / 1.5,
                                  weight="time")  # fmt: skip
    return rg, xy[2:], length[1:], speed


def test_building_whose_nearest_point_is_a_node_is_at_that_node_with_its_delay():
    delay = 3.0
    rg, xy, length, speed = _corner_graph(delay)
    # Just past C along W → C: C is the nearest point of that street.
    bx, by = xy[1, 0] + 3.0, xy[1, 1] - 1.0
    d = shapely.distance(shapely.Point(bx, by), rg.seg_geom)
    assert abs(d[1] - np.hypot(3.0, 1.0)) < 1e-9
    assert rg.usable.tolist() == [True, True, False, False]
    b = snap(rg, gpd.GeoSeries([shapely.Point(bx, by)], crs=CRS))
    assert b.frac[0] in (0.0, 1.0)  # exactly, not 0.9999999999999
    assert (b.x[0], b.y[0]) == (xy[1, 0], xy[1, 1])
    st = snap(rg, gpd.GeoSeries([shapely.Point(*xy[0])], crs=CRS))
    assert st.frac[0] in (0.0, 1.0) and st.access_m[0] == 0.0
    cost, _ = nearest_cost(rg, st, b)
    # Independent reference: networkx on the raw streets, the delay paid on arriving at C.
    D = nx.DiGraph()
    D.add_edge(0, 1, w=length[0] / speed + delay)
    leg = np.hypot(bx - xy[1, 0], by - xy[1, 1]) / 1.5
    ref = nx.shortest_path_length(D, 0, 1, weight="w") + leg
    assert abs(cost[0] - ref) < 1e-6
    assert cost[0] > length[0] / speed + delay  # the delay is paid


def test_building_at_a_barrier_node_is_reached_up_to_the_barrier():
    """A bollard stops engines passing its node (infinite arrival delay), but a building whose
    nearest point is the bollard itself is reached along its own street, without the delay."""
    x = np.array([0.0, 100.0, 200.0, 300.0]) + 352_000.0
    y = np.full(4, 3_462_000.0)
    u = np.array([0, 1, 1, 2, 2, 3])
    v = np.array([1, 0, 2, 1, 3, 2])
    run = np.array([10.0, 10.0, 10.0, 10.0, np.inf, np.inf])  # 2–3 is a footway
    delay = np.array([0.0, 0.0, np.inf, 0.0])  # the bollard at node 2
    edges = EdgeArrays(x, y, u, v, np.full(6, 100.0), crs=CRS)
    rg = RoutingGraph.from_arrays(edges, run, node_delay=delay, access_cost_per_m=0.5,
                                  weight="time")  # fmt: skip
    station = Snap.at(rg, np.array([0]), np.array([0.0]))
    beyond = snap(rg, gpd.GeoSeries([shapely.Point(x[2] + 3.0, y[2] + 4.0)], crs=CRS))
    assert beyond.frac[0] in (0.0, 1.0) and beyond.access_m[0] == pytest.approx(5.0)
    cost, who = nearest_cost(rg, station, beyond)
    assert cost[0] == pytest.approx(20.0 + 2.5) and who[0] == 0
    M = cost_matrix(rg, station, beyond, cutoff=100.0)
    assert M.nnz == 1 and M.data[0] == pytest.approx(22.5)
    # Passing the bollard stays impossible: node 3 is not reached.
    assert not np.isfinite(node_costs(rg, station)[0, 3])
