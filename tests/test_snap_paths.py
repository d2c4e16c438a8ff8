"""Snapping paths the small tests never reach: several chunks on threads, and far points.

Above ``firegrid.spatial.network.routing._CHUNK`` points the nearest-street search runs in chunks on
``firegrid.spatial.runtime.threads()`` threads; points farther than ``GRID_REACH_M`` from every street leave the bucket
grid for the KD-tree, and the hardest of those for an exact GEOS search. Each path is checked
against an independent answer: the single-thread result (bit for bit) and a brute-force
nearest segment by shapely distance.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely

import firegrid.spatial.network.routing as routing
from firegrid.spatial.access.travel_times import compile_graphs
from firegrid.spatial.network.routing import snap
from firegrid.spatial.runtime import using_threads

CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_450_000.0


def street_grid(n: int = 12, d: float = 100.0) -> nx.MultiDiGraph:
    """A two-way street lattice, a few diagonal streets so nearest segments are not all axis-aligned."""
    G = nx.MultiDiGraph(crs=CRS)
    for i in range(n):
        for j in range(n):
            G.add_node(i * n + j, x=X0 + i * d, y=Y0 + j * d)

    def street(u, v):
        pu = (G.nodes[u]["x"], G.nodes[u]["y"])
        pv = (G.nodes[v]["x"], G.nodes[v]["y"])
        line = shapely.LineString([pu, pv])
        for a, b, g in ((u, v, line), (v, u, line.reverse())):
            G.add_edge(a, b, 0, highway="residential", oneway=False, length=line.length, geometry=g)

    for i in range(n):
        for j in range(n):
            if i + 1 < n:
                street(i * n + j, (i + 1) * n + j)
            if j + 1 < n:
                street(i * n + j, i * n + j + 1)
            if i + 1 < n and j + 1 < n and (i + j) % 5 == 0:
                street(i * n + j, (i + 1) * n + j + 1)
    return G


@pytest.fixture(scope="module")
def rg():
    return compile_graphs(street_grid())["foot"]


def _brute_force(rg, px, py):
    """Distance from each point to the nearest segment, by shapely over every segment."""
    geoms = np.asarray(rg.seg_geom, dtype=object)
    pts = shapely.points(px, py)
    d = shapely.distance(pts[:, None], geoms[None, :])
    return d.min(axis=1)


def _points(n, seed, spread):
    rng = np.random.default_rng(seed)
    return X0 + rng.uniform(-spread, 1100 + spread, n), Y0 + rng.uniform(-spread, 1100 + spread, n)


def test_threaded_chunks_equal_single_thread_bit_for_bit(rg, monkeypatch):
    px, py = _points(4000, seed=1, spread=300)  # inside the lattice and up to 300 m out
    pts = shapely.points(px, py)
    one = snap(rg, pts)
    pools = []

    class SpyPool(routing.ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pools.append(self._max_workers)

    monkeypatch.setattr(routing, "_CHUNK", 250)  # 16 chunks
    monkeypatch.setattr(routing, "ThreadPoolExecutor", SpyPool)
    rg2 = compile_graphs(street_grid())["foot"]  # fresh index: nothing cached from above
    with using_threads(3):
        many = snap(rg2, pts)
    assert pools == [3]  # the threaded path ran
    for name in ("seg", "frac", "access_m", "x", "y"):
        a, b = getattr(one, name), getattr(many, name)
        assert np.array_equal(a, b, equal_nan=True), name
    # And both are right: the distance is the brute-force nearest segment's.
    np.testing.assert_allclose(many.access_m, _brute_force(rg, px, py), rtol=0, atol=1e-6)


def test_points_beyond_the_grid_reach_snap_to_the_true_nearest_segment(rg):
    reach = routing.GRID_REACH_M
    rng = np.random.default_rng(2)
    # Rings of points just beyond the grid's reach, beyond one more cell, and far out.
    dist_out = np.r_[
        np.full(40, reach + 5.0),
        np.full(40, reach + routing.GRID_CELL_M + 10.0),
        rng.uniform(500, 3000, 40),
    ]
    angle = rng.uniform(0, 2 * np.pi, len(dist_out))
    cx, cy = X0 + 550.0, Y0 + 550.0
    # From the lattice's edge outwards: the lattice spans 0–1100 m, so 550 m + its half-diagonal.
    r = 550.0 * np.sqrt(2) + dist_out
    px, py = cx + r * np.cos(angle), cy + r * np.sin(angle)
    expected = _brute_force(rg, px, py)
    assert (expected > reach).all()  # every point is outside the grid's certain reach
    s = snap(rg, shapely.points(px, py))
    np.testing.assert_allclose(s.access_m, expected, rtol=0, atol=1e-6)
    # The snap point lies on the segment it names, at the reported distance.
    on = shapely.distance(shapely.points(s.x, s.y), np.asarray(rg.seg_geom, dtype=object)[s.seg])
    assert (on < 1e-6).all()
    np.testing.assert_allclose(np.hypot(px - s.x, py - s.y), s.access_m, atol=1e-9)


def ring_road(n: int = 700, radius: float = 300.0) -> nx.MultiDiGraph:
    """A circular street of ``n`` short straight pieces: its centre is equally far from all."""
    G = nx.MultiDiGraph(crs=CRS)
    a = 2 * np.pi * np.arange(n) / n
    for k in range(n):
        G.add_node(k, x=X0 + radius * np.cos(a[k]), y=Y0 + radius * np.sin(a[k]))
    for k in range(n):
        u, v = k, (k + 1) % n
        line = shapely.LineString(
            [(G.nodes[u]["x"], G.nodes[u]["y"]), (G.nodes[v]["x"], G.nodes[v]["y"])]
        )
        for p, q, g in ((u, v, line), (v, u, line.reverse())):
            G.add_edge(p, q, 0, highway="residential", oneway=False, length=line.length, geometry=g)
    return G


def test_far_points_among_many_equidistant_pieces_take_the_exact_search(monkeypatch):
    # 700 pieces (> the KD-tree's 512 candidates), all about 300 m from the centre: no candidate
    # can be certified, so the exact GEOS search decides.
    rg = compile_graphs(ring_road())["foot"]
    calls = []
    real = shapely.STRtree

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(shapely, "STRtree", spy)
    rng = np.random.default_rng(3)
    px = np.r_[X0, X0 + rng.uniform(-5, 5, 20)]
    py = np.r_[Y0, Y0 + rng.uniform(-5, 5, 20)]
    s = snap(rg, shapely.points(px, py))
    assert calls  # the exact search ran
    expected = _brute_force(rg, px, py)
    assert (expected > routing.GRID_REACH_M + routing.GRID_CELL_M).all()
    np.testing.assert_allclose(s.access_m, expected, rtol=0, atol=1e-6)
    on = shapely.distance(shapely.points(s.x, s.y), np.asarray(rg.seg_geom, dtype=object)[s.seg])
    assert (on < 1e-6).all()


def test_max_snap_m_drops_far_points_only(rg):
    px = np.array([X0 + 50.0, X0 - 100.0, X0 - 400.0])  # on a street; 100 m and 400 m out
    py = np.array([Y0, Y0 + 30.0, Y0 + 30.0])
    s = snap(rg, shapely.points(px, py), max_snap_m=150.0)
    assert s.seg[0] >= 0 and s.seg[1] >= 0 and s.seg[2] == -1
    np.testing.assert_allclose(s.access_m, [0.0, 100.0, 400.0], atol=1e-9)
