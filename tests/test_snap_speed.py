"""The fast snapping paths of spatial/network/routing.py give, bit for bit, what the plain
GEOS / brute-force computations give (float64 equality, not a tolerance)."""

from __future__ import annotations

import numpy as np
import shapely

from firegrid.spatial.network.routing import EdgeArrays, RoutingGraph, Snap


def _curvy_graph(seed: int = 0, n: int = 400) -> RoutingGraph:
    """Random streets: straight and curved ones with 2-30 vertices, repeated vertices, pieces
    from a millimetre to kilometres long, and a street of no length."""
    rng = np.random.default_rng(seed)
    node_xy = rng.normal((350_000.0, 3_460_000.0), 3_000.0, (n, 2))
    u = rng.integers(0, n, n * 2)
    v = rng.integers(0, n, n * 2)
    v[0] = u[0]  # a loop
    geoms = np.full(len(u), None, dtype=object)
    for i in range(len(u)):
        if rng.random() < 0.6:
            k = int(rng.integers(0, 28))
            mid = np.cumsum(rng.normal(0, 1, (k, 2)) * rng.choice([1e-3, 1.0, 40.0, 900.0]), 0)
            pts = np.vstack([node_xy[u[i]], node_xy[u[i]] + mid, node_xy[v[i]]])
            if k and rng.random() < 0.2:
                pts[rng.integers(1, k + 1)] = pts[rng.integers(0, k + 1)]
            geoms[i] = shapely.linestrings(pts)
    straight = shapely.linestrings(np.stack([node_xy[u], node_xy[v]], 1))
    length = shapely.length(np.where(pd_isna(geoms), straight, geoms))
    edges = EdgeArrays(node_xy[:, 0], node_xy[:, 1], u, v, length, geometry=geoms)
    return RoutingGraph.from_arrays(edges, length, directed=False)


def pd_isna(a: np.ndarray) -> np.ndarray:
    return np.array([g is None for g in a], dtype=bool)


def _vertex_fractions(rg: RoutingGraph, seg: np.ndarray) -> np.ndarray:
    """Fractions landing exactly on (or one float step beside) a vertex of each segment."""
    rng = np.random.default_rng(1)
    out = np.empty(len(seg))
    lines = rg.lines(seg)
    for i, line in enumerate(lines):
        c = shapely.get_coordinates(line)
        cum = np.cumsum(np.sqrt(((c[1:] - c[:-1]) ** 2).sum(axis=1)))
        f = cum[rng.integers(len(cum))] / cum[-1] if cum[-1] > 0 else 0.0
        out[i] = np.nextafter(f, rng.choice([-1.0, 2.0])) if i % 3 else f
    return np.clip(out, 0.0, 1.0)


def test_points_along_equal_geos_bit_for_bit():
    rg = _curvy_graph()
    rng = np.random.default_rng(2)
    m = 60_000
    seg = rng.integers(0, rg.n_segments, m)
    frac = rng.random(m)
    frac[:2_000] = 0.0
    frac[2_000:4_000] = 1.0
    frac[4_000:8_000] = rng.integers(0, 16, 4_000) / 16
    frac[8_000:10_000] = _vertex_fractions(rg, seg[8_000:10_000])
    got = Snap.at(rg, seg, frac)
    want = shapely.get_coordinates(
        shapely.line_interpolate_point(rg.lines(seg), got.frac, normalized=True)
    )
    assert np.array_equal(got.x, want[:, 0])
    assert np.array_equal(got.y, want[:, 1])
    assert np.array_equal(got.px, got.x) and np.array_equal(got.access_m, np.zeros(m))


def test_points_along_nan_fraction_gives_no_point():
    rg = _curvy_graph(n=20)
    got = Snap.at(rg, np.array([0, 1, 2]), np.array([0.5, np.nan, 1.0]))
    assert np.isnan(got.x[1]) and np.isnan(got.y[1])
    assert np.isfinite(got.x[[0, 2]]).all()
