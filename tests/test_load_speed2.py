"""The load step's second round of fast paths give what the ways they replaced give.

Grid cells by a box query and prepared cells (against the STRtree's own ``intersects``
predicate, points on edges and corners included).
"""

from __future__ import annotations

import numpy as np
import shapely

from firegrid.spatial.io import grids as grids_module


def _edge_points(rng: np.random.Generator, n: int) -> np.ndarray:
    """Points on a 10 m lattice (cell edges and corners) and anywhere in between."""
    on_lattice = rng.integers(0, 11, size=(n, 2)) * 10.0
    anywhere = rng.uniform(-5.0, 115.0, size=(n, 2))
    xy = np.where(rng.random((n, 1)) < 0.5, on_lattice, anywhere)
    return shapely.points(xy)


def test_intersecting_pairs_equal_the_trees_predicate():
    rng = np.random.default_rng(3)
    # Square cells sharing edges and corners, a triangle, a cell with a hole and a
    # multipolygon: points on their boundaries must count as in, as the tree says.
    squares = [
        shapely.box(x, y, x + 20, y + 20) for x in range(0, 100, 20) for y in range(0, 100, 20)
    ]
    holed = shapely.Polygon(
        [(0, 0), (60, 0), (60, 60), (0, 60)], [[(20, 20), (40, 20), (40, 40), (20, 40)]]
    )
    triangle = shapely.Polygon([(0, 0), (100, 0), (0, 100)])
    multi = shapely.MultiPolygon([shapely.box(70, 70, 80, 80), shapely.box(90, 90, 100, 100)])
    cells = np.array([*squares, holed, triangle, multi], dtype=object)
    points = _edge_points(rng, 20_000)
    expected = shapely.STRtree(cells).query(points, predicate="intersects")
    got = grids_module._intersecting(points, cells)
    assert len(expected[0]) > len(points)  # shared edges: many points in two cells or more
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert not shapely.is_prepared(cells).any()  # the caller's cells were not prepared
