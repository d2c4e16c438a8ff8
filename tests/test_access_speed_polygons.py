"""The faster polygon steps of the areas of responsibility give what the plain GEOS calls
give: label grids polygonised patch by patch, the hull of a million places, points on surfaces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import ndimage

from firegrid.spatial.access.isochrones import (
    _convex_hull,
    _grid_polygons,
    _place_labels,
    _with_pieces,
)
from firegrid.spatial.geometry import dissolve_touching
from firegrid.spatial.io.grids import surface_points


def _reference(grid: np.ndarray, x0: float, y0: float, c: float, clip) -> dict:
    """Value → polygon: every cell a square, all squares of a value united by GEOS, clipped."""
    ny, nx_ = grid.shape
    i, j = np.indices(grid.shape)
    boxes = shapely.box(x0 + j * c, y0 + i * c, x0 + (j + 1) * c, y0 + (i + 1) * c).ravel()
    out = {}
    for v in np.unique(grid):
        poly = shapely.intersection(shapely.union_all(boxes[grid.ravel() == v]), clip)
        # Where the clip passes through a corner GEOS adds a stray point; areas are polygons.
        parts = shapely.get_parts(poly)
        parts = parts[shapely.get_type_id(parts) == 3]
        if len(parts):
            out[int(v)] = parts[0] if len(parts) == 1 else shapely.MultiPolygon(list(parts))
    return out


def _grids():
    rng = np.random.default_rng(7)
    smooth = ndimage.gaussian_filter(rng.normal(size=(60, 70)), 2.0)
    yield "fragmented counts", np.digitize(smooth, np.quantile(smooth, [0.2, 0.4, 0.6, 0.8]))
    yield "checkerboard (patches touch only at corners)", np.indices((9, 11)).sum(axis=0) % 2
    yield "noise", rng.integers(0, 3, size=(25, 30))
    yield "one value", np.zeros((5, 6), dtype=np.int64)


@pytest.mark.parametrize(
    ("name", "grid"), list(_grids()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_grid_polygons_equal_the_union_of_their_cells(name, grid):
    x0, y0, c = 1000.0, 2000.0, 5.0
    ny, nx_ = grid.shape
    # A clip cutting through the grid, so patches are both kept whole and cut.
    clip = shapely.Point(x0 + nx_ * c * 0.45, y0 + ny * c * 0.55).buffer(min(nx_, ny) * c * 0.45)
    got = dict(_grid_polygons(grid, x0, y0, c, clip))
    want = _reference(grid, x0, y0, c, clip)
    assert sorted(got) == sorted(want)
    for v, poly in want.items():
        assert got[v].is_valid
        assert got[v].geom_type == poly.geom_type
        # Same point set: no area differs, and the boundaries coincide.
        assert shapely.symmetric_difference(got[v], poly).area < 1e-9
        assert shapely.hausdorff_distance(got[v].boundary, poly.boundary) < 1e-9
    # The polygons of one grid tile the clip without overlapping.
    total = sum(p.area for p in got.values())
    assert total == pytest.approx(clip.intersection(shapely.box(x0, y0, x0 + nx_ * c,
                                                                y0 + ny * c)).area)  # fmt: skip


def test_surface_points_are_geos_points_on_surface():
    rng = np.random.default_rng(5)
    pts = shapely.points(rng.uniform(0, 1e3, (200, 2)))
    polys = shapely.buffer(shapely.points(rng.uniform(0, 1e3, (50, 2))), 8.0)
    lines = shapely.linestrings(rng.uniform(0, 1e3, (30, 3, 2)))
    geoms = np.concatenate([pts, polys, lines, [None, shapely.Point(), shapely.Polygon()]])
    rng.shuffle(geoms)
    got = surface_points(geoms)
    want = shapely.point_on_surface(geoms)
    assert (shapely.is_missing(got) == shapely.is_missing(want)).all()
    ok = ~shapely.is_missing(want)
    assert shapely.equals_exact(got[ok], want[ok], 0).all()
    assert (shapely.is_empty(got[ok]) == shapely.is_empty(want[ok])).all()


def _point_sets():
    rng = np.random.default_rng(11)
    yield "uniform", rng.uniform(0, 1e4, (20_000, 2))
    yield "lattice (points along the hull's edges)", rng.integers(0, 30, (5_000, 2)) * 10.0
    # A projected street grid: nearly straight rows, every boundary point a true corner.
    i, j = np.meshgrid(np.arange(120), np.arange(90))
    yield "bent grid", np.c_[(j * 100.0 + 1e-4 * i**2).ravel(), (i * 100.0 - 2e-4 * j**2).ravel()]
    yield "one line", np.c_[np.arange(50.0), 2.0 * np.arange(50.0)]
    yield "one point repeated", np.full((40, 2), 3.0)
    yield "few", rng.uniform(0, 10, (5, 2))
    yield (
        "disc",
        np.c_[np.cos(np.linspace(0, 6.28, 3000)), np.sin(np.linspace(0, 6.28, 3000))] * 1e3,
    )


@pytest.mark.parametrize(
    ("name", "xy"), list(_point_sets()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_convex_hull_is_geos_hull_of_every_point(name, xy):
    want = shapely.convex_hull(shapely.multipoints(xy))
    assert shapely.equals_exact(_convex_hull(xy), want, 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_legs_joined_piece_by_piece_are_the_union_of_all(seed):
    # Access legs of buildings a contour misses: thin strips, some crossing the contour, some
    # crossing one another, most alone. Joined piece by piece they are the one overlay's
    # union (GEOS's own union_all as the reference), valid, and hold every leg.
    rng = np.random.default_rng(seed)
    poly = shapely.Point(0, 0).buffer(300.0).union(shapely.box(200, -40, 500, 40))
    a = rng.uniform(-600, 600, size=(400, 2))
    b = a + rng.normal(0, 20, size=(400, 2))
    legs = shapely.buffer(shapely.linestrings(np.stack([a, b], 1)), 2.5, quad_segs=2)
    got = _with_pieces(poly, dissolve_touching(legs))
    ref = shapely.union(poly, shapely.union_all(legs))
    assert shapely.is_valid(got)
    assert shapely.symmetric_difference(got, ref).area < 1e-9 * ref.area
    assert shapely.contains(shapely.buffer(got, 1e-6), legs).all()
    assert shapely.get_num_geometries(got) == shapely.get_num_geometries(ref)


@pytest.mark.parametrize("dtype", ["str", "string", object])
def test_place_labels_are_the_sorted_texts_of_every_place(dtype):
    """Labels through distinct values equal np.unique over every place's text (the former
    way): pieces by index into the station ids (-1: none), buildings by their station id, ""
    for none, missing as "", ids the stations do not hold (a building's stale id) too."""
    rng = np.random.default_rng(3)
    ids = np.array(["F10", "F2", "F1", "m 7", "\u6d66\u4e1c-3"], dtype=object)
    who = rng.integers(-1, len(ids), size=500)
    values = [*ids, "", None, "F99", "F1 "]
    column = pd.Series(rng.choice(np.array(values, dtype=object), size=800), dtype=dtype)
    names, piece, building = _place_labels(ids, who, column.fillna(""))
    texts = np.r_[np.where(who >= 0, ids[np.clip(who, 0, None)], ""),
                  column.astype(object).fillna("").to_numpy(dtype=object)].astype(str)  # fmt: skip
    expected, code = np.unique(texts, return_inverse=True)
    assert (names[np.r_[piece, building]] == texts).all()
    # the names present, in order, are np.unique's: grids of labels number them alike
    present = np.unique(np.r_[piece, building])
    assert names[present].tolist() == expected.tolist()
    assert (np.searchsorted(present, np.r_[piece, building]) == code).all()


def test_place_labels_without_buildings():
    names, piece, building = _place_labels(np.array(["b", "a"], dtype=object),
                                           np.array([1, -1, 0]), pd.Series([], dtype=object))  # fmt: skip
    assert names[piece].tolist() == ["a", "", "b"]
    assert len(building) == 0
