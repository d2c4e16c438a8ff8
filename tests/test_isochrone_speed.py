"""The faster steps of union isochrones and areas of responsibility give exactly what the
ways they replaced gave (frozen copies below, or GEOS on every point): the places' hull from
corner candidates, the octagon test chunk by chunk, tile lists by a key table, grid cells
placed on their streets chunk by chunk, legs known to meet the contour."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

import firegrid.spatial.access.isochrones as iso_mod
from firegrid.spatial.access.isochrones import (
    _cells_on_pieces,
    _convex_hull,
    _hull_candidates,
    _well_inside_octagon,
    _window,
    _window_lists,
    _with_pieces,
)
from firegrid.spatial.geometry import dissolve_touching, touching_groups, union_by
from firegrid.spatial.network.routing import Snap


# ---------------------------------------------------------------- frozen former versions
def _octagon_before(xy: np.ndarray, margin_m: float = 1e-6) -> np.ndarray:
    """_well_inside_octagon before it went chunk by chunk."""
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
    inside[:] = True
    for (ax, ay), (bx, by) in zip(ring, np.roll(ring, -1, axis=0), strict=True):
        left = ((bx - ax) * (y - ay) - (by - ay) * (x - ax)) / np.hypot(bx - ax, by - ay)
        inside &= left > margin_m
    return inside


def _window_lists_before(gx, gy, margin, tx0, ty0, span, tiles, tile):
    """_window_lists before the key table: (tile keys sorted, sample index)."""
    ax_, bx_ = (gx - margin) // tile - tx0, (gx + margin) // tile - tx0
    ay_, by_ = (gy - margin) // tile - ty0, (gy + margin) // tile - ty0
    idx = np.arange(len(gx))
    both_x, both_y = bx_ != ax_, by_ != ay_
    key = np.concatenate([ax_ * span + ay_, (bx_ * span + ay_)[both_x], (ax_ * span + by_)[both_y],
                          (bx_ * span + by_)[both_x & both_y]])  # fmt: skip
    item = np.concatenate([idx, idx[both_x], idx[both_y], idx[both_x & both_y]])
    pos = np.clip(np.searchsorted(tiles, key), 0, len(tiles) - 1)
    keep = tiles[pos] == key
    key, item = key[keep], item[keep]
    order = np.argsort(key, kind="stable")
    return key[order], item[order]


def _cells_before(ix, iy, piece, c, pieces, max_snap_m) -> Snap:
    """The end of _near_cells before it went chunk by chunk."""
    cand, ax, ay, bx, by, pline, plen, along0, geo_len = pieces
    n = len(ix)
    px, py = ix * c, iy * c
    seg = np.full(n, -1, dtype=np.int64)
    frac, qx, qy = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    dist = np.full(n, np.inf)
    on = np.flatnonzero(piece >= 0)
    p = piece[on]
    dx, dy = bx[p] - ax[p], by[p] - ay[p]
    ll = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        tt = np.where(
            ll > 0, np.clip(((px[on] - ax[p]) * dx + (py[on] - ay[p]) * dy) / ll, 0, 1), 0
        )
        fr = np.where(geo_len[pline[p]] > 0, (along0[p] + tt * plen[p]) / geo_len[pline[p]], 0.0)
    qx[on], qy[on] = ax[p] + tt * dx, ay[p] + tt * dy
    dist[on] = np.hypot(px[on] - qx[on], py[on] - qy[on])
    seg[on], frac[on] = cand[pline[p]], np.clip(fr, 0.0, 1.0)
    far = ~(dist <= max_snap_m)
    seg[far], frac[far], qx[far], qy[far] = -1, np.nan, np.nan, np.nan
    return Snap(seg, frac, dist, qx, qy, px.astype(float), py.astype(float))


# ---------------------------------------------------------------- the places' hull
def _point_sets():
    rng = np.random.default_rng(17)
    yield "uniform", rng.uniform(0, 1e4, (30_000, 2))
    # Ties everywhere: many points on the hull's edges and on the octagon's edges, repeats.
    yield "lattice", rng.integers(0, 25, (8_000, 2)) * 10.0
    yield "one line", np.c_[np.arange(60.0), 3.0 * np.arange(60.0)]
    yield "one point repeated", np.full((50, 2), 7.0)
    yield "few", rng.uniform(0, 10, (6, 2))
    yield "disc", np.c_[np.cos(np.linspace(0, 6.28, 4000)), np.sin(np.linspace(0, 6.28, 4000))]


@pytest.mark.parametrize(
    ("name", "xy"), list(_point_sets()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_octagon_chunk_by_chunk_is_the_whole_test(name, xy, monkeypatch):
    # Chunks far smaller than the set, and a chunk that is not a divisor of its size.
    monkeypatch.setattr(iso_mod, "_OCTAGON_CHUNK", 997)
    assert (_well_inside_octagon(xy) == _octagon_before(xy)).all()


@pytest.mark.parametrize(
    ("name", "xy"), list(_point_sets()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_hull_of_two_sets_from_their_candidates_is_geos_hull_of_every_point(name, xy):
    """Pieces and buildings: the hull from each set's own candidates is GEOS's hull of all
    the points, vertex for vertex (same WKB, not only the same shape)."""
    rng = np.random.default_rng(len(xy))
    other = np.concatenate([xy[rng.integers(0, len(xy), 20)],  # shared points and
                            rng.uniform(xy.min(), xy.max() + 1.0, (500, 2))])  # fmt: skip
    for a, b in ((xy, other), (other, xy), (xy, xy[:3])):
        want = shapely.convex_hull(shapely.multipoints(np.concatenate([a, b])))
        got = _convex_hull(np.concatenate([_hull_candidates(a), _hull_candidates(b)]))
        assert shapely.to_wkb(got) == shapely.to_wkb(want), name


# ---------------------------------------------------------------- tile lists
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tile_lists_by_key_table_are_the_sorted_lists(seed):
    """Every tile's samples, in the same order (a later sample overwrites an earlier one in
    a tile's label grid), including samples near tile edges (in two or four windows) and
    samples of tiles not listed."""
    rng = np.random.default_rng(seed)
    tile, margin = 64, 9
    gx = rng.integers(-200, 900, 20_000)
    gy = rng.integers(-300, 700, 20_000)
    gx[:500] = (gx[:500] // tile) * tile + rng.integers(-margin, margin + 1, 500)  # edges
    tx, ty = gx // tile, gy // tile
    tx0, ty0 = int(tx.min()) - 1, int(ty.min()) - 1
    span = int(ty.max()) - ty0 + 2
    every = np.unique((tx - tx0) * span + (ty - ty0))
    tiles = np.sort(rng.choice(every, len(every) // 2, replace=False))  # some tiles only
    keys, items = _window_lists_before(gx, gy, margin, tx0, ty0, span, tiles, tile)
    orig_tile = iso_mod._TILE
    try:
        iso_mod._TILE = tile
        lists = _window_lists(gx, gy, margin, tx0, ty0, span, tiles)
    finally:
        iso_mod._TILE = orig_tile
    for i, key in enumerate(tiles):
        want = items[np.searchsorted(keys, key, "left") : np.searchsorted(keys, key, "right")]
        assert _window(lists, i).tolist() == want.tolist()
    assert len(lists[1]) == len(items)


# ---------------------------------------------------------------- cells on their streets
def _pieces(rng, n):
    """Straight street pieces as _street_pieces gives them: 40 lines of n / 40 pieces each,
    some of zero length, some lines of zero length."""
    ax, ay = rng.uniform(0, 2_000, n), rng.uniform(0, 2_000, n)
    bx, by = ax + rng.normal(0, 30, n), ay + rng.normal(0, 30, n)
    bx[::17], by[::17] = ax[::17], ay[::17]  # zero-length pieces
    pline = np.sort(rng.integers(0, 40, n))
    plen = np.hypot(bx - ax, by - ay)
    csum = np.cumsum(plen)
    first = np.searchsorted(pline, pline)
    along0 = (csum - plen) - (csum[first] - plen[first])
    geo_len = np.bincount(pline, weights=plen, minlength=40)
    geo_len[3] = 0.0
    cand = rng.permutation(1_000)[:40]
    return cand, ax, ay, bx, by, pline, plen, along0, geo_len


@pytest.mark.parametrize("chunk", [1, 333, 1 << 16])
def test_cells_placed_chunk_by_chunk_are_placed_alike(chunk, monkeypatch):
    rng = np.random.default_rng(chunk)
    pieces = _pieces(rng, 4_000)
    n, c = 10_000, 5.0
    piece = rng.integers(0, len(pieces[1]), n)
    # Cells near their piece, some beyond the snap limit (60 m).
    ix = np.rint((pieces[1][piece] + rng.normal(0, 40, n)) / c).astype(np.int64)
    iy = np.rint((pieces[2][piece] + rng.normal(0, 40, n)) / c).astype(np.int64)
    piece[::7] = -1  # no street near
    monkeypatch.setattr(iso_mod, "_CELL_CHUNK", chunk)
    got = _cells_on_pieces(ix, iy, piece, c, pieces, 60.0)
    want = _cells_before(ix, iy, piece, c, pieces, 60.0)
    assert (got.seg >= 0).sum() > 1_000 and (got.seg[piece >= 0] < 0).sum() > 100  # both kinds
    for f in ("seg", "frac", "access_m", "x", "y", "px", "py"):
        np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f)


# ---------------------------------------------------------------- legs meeting the contour
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_legs_known_to_meet_the_contour_give_the_same_union(seed):
    """Legs whose street end lies inside the contour are taken as meeting it without GEOS's
    test: the same polygon, vertex for vertex, as testing every piece; and the pieces are
    dissolve_touching's."""
    rng = np.random.default_rng(seed)
    poly = shapely.Point(0, 0).buffer(300.0).union(shapely.box(200, -40, 500, 40))
    poly = shapely.union(poly, shapely.Point(900, 0).buffer(80.0))  # two parts
    a = rng.uniform(-700, 1_100, size=(600, 2))  # buildings, most outside
    b = a + rng.normal(0, 25, size=(600, 2))  # their street points, some inside
    b[:50] = [300.0, 40.0]  # on the contour's edge: not "inside", GEOS decides
    legs = shapely.buffer(shapely.linestrings(np.stack([a, b], 1)), 2.5, quad_segs=2)
    group = touching_groups(legs)
    pieces = union_by(legs, group)
    assert shapely.equals_exact(pieces, dissolve_touching(legs), 0).all()
    meets = np.zeros(len(pieces), dtype=bool)
    meets[group[shapely.contains_xy(poly, b[:, 0], b[:, 1])]] = True
    assert 0 < meets.sum() < shapely.intersects(poly, pieces).sum()
    got = _with_pieces(poly, pieces, meets=meets)
    want = _with_pieces(poly, pieces)
    assert shapely.to_wkb(got) == shapely.to_wkb(want)


# ---------------------------------------------------------------- street pieces
def _street_pieces_before(rg):
    """_street_pieces before it read the graph's vertex arrays: coordinates of GEOS lines."""
    cand = np.flatnonzero(rg.join_ok)
    xy, line = shapely.get_coordinates(rg.lines(cand), return_index=True)
    same = line[1:] == line[:-1]
    ax, ay = xy[:-1, 0][same], xy[:-1, 1][same]
    bx, by = xy[1:, 0][same], xy[1:, 1][same]
    pline = line[:-1][same]
    plen = np.hypot(bx - ax, by - ay)
    csum = np.cumsum(plen)
    first = np.searchsorted(pline, pline)
    along0 = (csum - plen) - (csum[first] - plen[first])
    geo_len = np.bincount(pline, weights=plen, minlength=len(cand))
    return cand, ax, ay, bx, by, pline, plen, along0, geo_len


@pytest.mark.parametrize("profile", ["engine", "foot"])
@pytest.mark.parametrize("bare", [False, True], ids=["geometries", "some edges without"])
def test_street_pieces_from_vertex_arrays_are_those_of_the_lines(profile, bare):
    """Curved and straight segments, some streets a profile may not join; edges without a
    geometry are drawn from their nodes."""
    from firegrid.spatial.network.profiles import AccessParams
    from firegrid.spatial.network.routing import RoutingGraph
    from tests.test_routing import grid_graph

    G = grid_graph(seed=4)
    if bare:
        for *_, d in list(G.edges(keys=True, data=True))[::2]:
            d.pop("geometry", None)
    rg = RoutingGraph.from_graph(G, AccessParams().profile(profile))
    assert not bare or any(g is None for g in rg.seg_geom_raw)
    assert 0 < rg.join_ok.sum() <= rg.n_segments
    n_vertices = rg.segment_vertices[3]
    assert (n_vertices > 2).any() and (n_vertices == 2).any()  # curved and straight
    got = iso_mod._street_pieces(rg)
    want = _street_pieces_before(rg)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
