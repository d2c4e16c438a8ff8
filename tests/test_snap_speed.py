"""The fast snapping paths of spatial/network/routing.py give, bit for bit, what the plain
GEOS / brute-force computations give (float64 equality, not a tolerance)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

import firegrid.spatial.network.routing as routing
from firegrid.spatial.network.routing import EdgeArrays, RoutingGraph, Snap
from firegrid.spatial.runtime import using_threads


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


# ---------------------------------------------------------------------- nearest street piece
def _reference_grid_block(P, qx, qy, ring=0):
    """The nearest-piece search by the bucket grid as first written (frozen at 3563e32):
    one gathered row per candidate, ``np.clip`` on fresh arrays, points in input order."""
    start, plist, gx, gy, cols, rows = P.grid
    c = routing.GRID_CELL_M
    reach = routing.GRID_REACH_M + ring * c
    m = len(qx)
    off = np.arange(-ring, ring + 1)
    nb = len(off) ** 2
    ix = ((qx - gx) // c).astype(np.int64)[:, None] + np.repeat(off, len(off))[None, :]
    iy = ((qy - gy) // c).astype(np.int64)[:, None] + np.tile(off, len(off))[None, :]
    inside = ((ix >= 0) & (ix < cols) & (iy >= 0) & (iy < rows)).ravel()
    key = np.where(inside, (ix * rows + iy).ravel(), 0)
    s = start[key]
    cnt = np.where(inside, start[key + 1] - s, 0)
    rep = np.repeat(np.arange(m * nb), cnt)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    cand = plist[s[rep] + within].astype(np.int64)
    pt = rep // nb
    cnt = cnt.reshape(m, nb).sum(axis=1)
    g = P.packed[cand]
    vx = qx[pt] - g[:, 0]
    vy = qy[pt] - g[:, 1]
    t = np.clip((vx * g[:, 2] + vy * g[:, 3]) * g[:, 4], 0.0, 1.0)
    ex = vx - t * g[:, 2]
    ey = vy - t * g[:, 3]
    d2 = ex * ex + ey * ey
    piece = np.full(m, -1, dtype=np.int64)
    has = np.flatnonzero(cnt > 0)
    if len(has):
        dmin = np.full(m, np.inf)
        dmin[has] = np.minimum.reduceat(d2, (np.cumsum(cnt) - cnt)[has])
        at_min = np.flatnonzero(d2 <= dmin[pt])
        first = np.r_[True, pt[at_min][1:] != pt[at_min][:-1]]
        sel = at_min[first]
        ok = dmin[pt[sel]] <= (reach - 1e-6) ** 2
        piece[pt[sel][ok]] = cand[sel][ok]
    return piece


def _reference_candidates(P, qx, qy, k):
    mid_d, cand = P.tree.query(np.stack([qx, qy], 1), k=k, workers=1)
    if k == 1:
        mid_d, cand = mid_d[:, None], cand[:, None]
    g = P.packed[cand]
    vx = qx[:, None] - g[..., 0]
    vy = qy[:, None] - g[..., 1]
    t = np.clip((vx * g[..., 2] + vy * g[..., 3]) * g[..., 4], 0.0, 1.0)
    ex = vx - t * g[..., 2]
    ey = vy - t * g[..., 3]
    d2 = ex * ex + ey * ey
    j = np.argmin(d2, axis=1)
    r = np.arange(len(qx))
    return cand[r, j], np.sqrt(d2[r, j]), mid_d[:, -1]


def _reference_pieces(P, px, py, use_grid):
    qx, qy = px - P.ox, py - P.oy
    if use_grid:
        piece = _reference_grid_block(P, qx, qy)
        far = np.flatnonzero(piece < 0)
        if len(far):
            piece[far] = _reference_grid_block(P, qx[far], qy[far], ring=1)
    else:
        piece = np.full(len(px), -1, dtype=np.int64)
    todo = np.flatnonzero(piece < 0)
    k = 8
    while len(todo) and k <= 512:
        kk = min(k, len(P.x0))
        best, d, bound = _reference_candidates(P, qx[todo], qy[todo], kk)
        piece[todo] = best
        certified = (bound - P.half_max >= d + 1e-6) | (kk == len(P.x0))
        todo = todo[~certified]
        k *= 4
    piece[todo] = -1
    return piece


def _lattice(n: int = 30, d: float = 70.0) -> RoutingGraph:
    """Streets on a lattice plus diagonals: many nodes where several segments start (ties
    between pieces at exactly the same distance, broken by candidate order)."""
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    node_xy = np.stack([350_000.0 + d * ii.ravel(), 3_450_000.0 + d * jj.ravel()], 1)
    idx = np.arange(n * n).reshape(n, n)
    pairs = [
        (idx[:-1, :].ravel(), idx[1:, :].ravel()),
        (idx[:, :-1].ravel(), idx[:, 1:].ravel()),
        (idx[:-1:3, :-1:2].ravel(), idx[1::3, 1::2].ravel()),
    ]
    u = np.concatenate([a for a, _ in pairs])
    v = np.concatenate([b for _, b in pairs])
    u, v = np.r_[u, v], np.r_[v, u]
    length = np.hypot(*(node_xy[u] - node_xy[v]).T)
    edges = EdgeArrays(node_xy[:, 0], node_xy[:, 1], u, v, length)
    return RoutingGraph.from_arrays(edges, length, directed=False)


def _hard_points(rg: RoutingGraph, m: int, seed: int = 3):
    """Points on nodes, exactly between streets, on the lattice's diagonal beyond corners
    (equidistant from two streets' shared node: ties) at every range of the search, and
    random points inside and far outside the network."""
    rng = np.random.default_rng(seed)
    nx_, ny_ = rg.node_x, rg.node_y
    lo, hi = (nx_.min(), ny_.min()), (nx_.max(), ny_.max())
    k = m // 6
    on_node = rng.integers(0, rg.n_nodes, k)
    corner = np.argmin(nx_ + ny_)
    dist = rng.choice([0.5, 10.0, 39.99, 40.0, 55.0, 99.9, 150.0, 700.0], k)
    diag = np.stack([nx_[corner] - dist, ny_[corner] - dist], 1)
    half = np.stack([nx_[on_node] + 35.0, ny_[on_node] + 35.0], 1)
    inside = rng.uniform(lo, hi, (k, 2))
    outside = rng.uniform(np.subtract(lo, 500.0), np.add(hi, 500.0), (m - 4 * k, 2))
    xy = np.vstack([np.stack([nx_[on_node], ny_[on_node]], 1), diag, half, inside, outside])
    return xy[:, 0].copy(), xy[:, 1].copy()


def _brute_force_pieces(P, qx, qy):
    """Nearest piece of each point over every piece, ties to the lowest piece; the same
    float64 distance steps as the index (``P._d2``)."""
    n = len(P.x0)
    out = np.empty(len(qx), dtype=np.int64)
    for i in range(0, len(qx), 200):
        sl = slice(i, i + 200)
        m = len(qx[sl])
        d2 = P._d2(np.repeat(qx[sl], n), np.repeat(qy[sl], n), np.tile(np.arange(n), m))
        d2 = d2.reshape(m, n)
        out[sl] = np.argmax(d2 == d2.min(axis=1)[:, None], axis=1)  # first (lowest) at min
    return out


@pytest.mark.parametrize("use_grid", [True, False])
def test_nearest_pieces_equal_brute_force_whichever_search(use_grid, monkeypatch):
    rg = _lattice()
    P = rg._pieces
    px, py = _hard_points(rg, 30_000)
    monkeypatch.setattr(routing, "_CHUNK", 4_000)  # several chunks, on threads
    with using_threads(2):
        got = P._nearest_pieces(px, py, use_grid)
    assert (got >= 0).all()
    some = np.random.default_rng(5).choice(len(px), 3_000, replace=False)
    assert np.array_equal(got[some], _brute_force_pieces(P, px[some] - P.ox, py[some] - P.oy))
    # The same pieces whichever search: a snap does not depend on how many points share it.
    assert np.array_equal(got, P._nearest_pieces(px, py, not use_grid))
    # The first implementation (frozen) found the same distances; it broke the many ties
    # between pieces at exactly the same distance differently in each search.
    want = _reference_pieces(P, px, py, use_grid)
    qx, qy = px - P.ox, py - P.oy
    assert np.array_equal(P._d2(qx, qy, got), P._d2(qx, qy, want))
    other = _reference_pieces(P, px, py, not use_grid)
    assert (P.vseg[P.parent[other]] != P.vseg[P.parent[want]]).sum() > 100
    if use_grid:
        s = routing.snap(rg, shapely.points(px, py))
        assert np.array_equal(s.seg, P.vseg[P.parent[got]])
        fresh = _lattice()  # no grid built yet: 50 points take the KD-tree
        assert not fresh._pieces.uses_grid(50)
        few = routing.snap(fresh, shapely.points(px[some[:50]], py[some[:50]]))
        assert "grid" not in fresh._pieces.__dict__
        assert np.array_equal(few.seg, s.seg[some[:50]])


def _reference_grid(P):
    """The bucket grid as first built (frozen at 3563e32): one (piece, cell) key per listing,
    a stable argsort by cell."""
    c, g = routing.GRID_CELL_M, routing.GRID_REACH_M
    xa, xb = P.x0, P.x0 + P.dx
    ya, yb = P.y0, P.y0 + P.dy
    gx = float(np.minimum(xa, xb).min()) - 2 * c
    gy = float(np.minimum(ya, yb).min()) - 2 * c
    ix0 = ((np.minimum(xa, xb) - g - gx) // c).astype(np.int64)
    ix1 = ((np.maximum(xa, xb) + g - gx) // c).astype(np.int64)
    iy0 = ((np.minimum(ya, yb) - g - gy) // c).astype(np.int64)
    iy1 = ((np.maximum(ya, yb) + g - gy) // c).astype(np.int64)
    cols, rows = int(ix1.max()) + 2, int(iy1.max()) + 2
    w = ix1 - ix0 + 1
    cnt = w * (iy1 - iy0 + 1)
    rep = np.repeat(np.arange(len(cnt), dtype=np.int32), cnt)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    key = (ix0[rep] + within % w[rep]) * rows + (iy0[rep] + within // w[rep])
    start = np.zeros(cols * rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=cols * rows), out=start[1:])
    return start, rep[np.argsort(key, kind="stable")], gx, gy, cols, rows


def test_bucket_grid_equals_first_build():
    P = _curvy_graph(seed=4)._pieces  # long, short and diagonal pieces
    want = _reference_grid(P)
    got = P.grid
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert np.array_equal(a, b)
        assert getattr(a, "dtype", None) == getattr(b, "dtype", None)


# ---------------------------------------------------------------------- cost matrix on parts
def _costs_setup(seed: int = 7):
    rg = _lattice(n=40, d=60.0)
    rng = np.random.default_rng(seed)
    lo = (rg.node_x.min(), rg.node_y.min())
    hi = (rg.node_x.max(), rg.node_y.max())
    src = routing.snap(rg, shapely.points(rng.uniform(lo, hi, (70, 2))))
    tgt = routing.snap(rg, shapely.points(rng.uniform(lo, hi, (4_000, 2))))
    src.seg[0], src.frac[0] = tgt.seg[3], 0.25  # a source sharing a target's street
    return rg, src, tgt, rng.uniform(0.0, 40.0, len(src))


def _same_matrix(a, b) -> bool:
    return (
        np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data.view(np.int64), b.data.view(np.int64))
    )


@pytest.mark.parametrize("cutoff", [0.0, 30.0, 150.0, 400.0])
def test_cost_matrix_on_parts_equals_whole_graph(cutoff, monkeypatch):
    rg, src, tgt, off = _costs_setup()
    batches = routing._local_batches(rg, src, np.flatnonzero(src.ok), cutoff)
    assert len(batches) > 1
    got = routing.cost_matrix(rg, src, tgt, cutoff=cutoff, source_offset=off)
    monkeypatch.setattr(routing, "_local_batches", lambda *a: [])  # every source dense
    want = routing.cost_matrix(rg, src, tgt, cutoff=cutoff, source_offset=off)
    assert want.nnz > (1_000 if cutoff > 100 else -1)
    assert _same_matrix(got, want)


def test_cost_matrix_part_too_small_falls_back_to_whole_graph(monkeypatch):
    """A part that misses nodes reachable in time (here: the speed bound made 5x too low)
    is detected, and its sources are costed on the whole graph."""
    rg, src, tgt, off = _costs_setup(seed=8)
    want = routing.cost_matrix(rg, src, tgt, cutoff=400.0, source_offset=off)
    monkeypatch.setitem(rg.__dict__, "fastest_m_per_cost", rg.fastest_m_per_cost / 5)
    dense = []
    real_dense = routing._CostJob.dense
    monkeypatch.setattr(routing._CostJob, "dense",
                        lambda job, srcs: dense.append(len(srcs)) or real_dense(job, srcs))  # fmt: skip
    got = routing.cost_matrix(rg, src, tgt, cutoff=400.0, source_offset=off)
    assert sum(dense) > 10  # leaks found, those sources redone
    assert _same_matrix(got, want)


def test_sub_pieces_equal_first_cut():
    """Straight pieces cut to at most SNAP_PIECE_M as first written (frozen at 3563e32)."""
    P = _curvy_graph(seed=5)._pieces
    plen = P.vlen
    p0 = np.stack([P.vx0, P.vy0], 1)
    d = np.stack([P.vdx, P.vdy], 1)
    k = np.maximum(1, np.ceil(plen / routing.SNAP_PIECE_M).astype(np.int64))
    assert k.max() > 5
    rep = np.repeat(np.arange(len(plen)), k)
    j = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
    t0 = j / k[rep]
    ox = float((p0[rep, 0] + d[rep, 0] * (t0 + 0.5 / k[rep])).min())
    oy = float((p0[rep, 1] + d[rep, 1] * (t0 + 0.5 / k[rep])).min())
    assert (P.ox, P.oy) == (ox, oy)
    assert np.array_equal(P.parent, rep)
    assert np.array_equal(P.x0, (p0[rep, 0] - ox) + d[rep, 0] * t0)
    assert np.array_equal(P.y0, (p0[rep, 1] - oy) + d[rep, 1] * t0)
    assert np.array_equal(P.dx, d[rep, 0] / k[rep])
    assert np.array_equal(P.dy, d[rep, 1] / k[rep])
