"""Grouped unions (firegrid.spatial.geometry) against one union_all per group."""

import networkx as nx
import numpy as np
import shapely

from firegrid.spatial.geometry import dissolve_touching, touching_groups, union_by


def _squares(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, size=(n, 2))
    return shapely.box(xy[:, 0], xy[:, 1], xy[:, 0] + rng.uniform(1, 12, n), xy[:, 1] + 5)


def test_touching_groups_are_the_connected_components():
    geoms = _squares(300)
    # two squares sharing only an edge touch: one group
    geoms = np.r_[geoms, shapely.box(500, 0, 510, 10), shapely.box(510, 0, 520, 10)]
    g = nx.Graph()
    g.add_nodes_from(range(len(geoms)))
    g.add_edges_from((i, j) for i in range(len(geoms)) for j in range(i + 1, len(geoms))
                     if shapely.intersects(geoms[i], geoms[j]))  # fmt: skip
    group = touching_groups(geoms)
    expected = {frozenset(c) for c in nx.connected_components(g)}
    got = {frozenset(np.flatnonzero(group == k)) for k in np.unique(group)}
    assert got == expected
    assert group[-1] == group[-2]
    assert 10 < len(expected) < len(geoms)


def test_union_by_equals_one_union_per_group():
    geoms = _squares(500, seed=1)
    group = np.random.default_rng(2).integers(0, 40, len(geoms))
    group[group == 7] = 8  # a group without members comes back as None
    out = union_by(geoms, group)
    assert out[7] is None
    for k in np.unique(group):
        ref = shapely.union_all(geoms[group == k])
        assert shapely.area(shapely.symmetric_difference(out[k], ref)) < 1e-6


def test_dissolve_touching_pieces_are_separate_and_make_the_union():
    geoms = _squares(400, seed=3)
    pieces = dissolve_touching(geoms)
    ref = shapely.union_all(geoms)
    assert shapely.area(shapely.symmetric_difference(shapely.union_all(pieces), ref)) < 1e-6
    a, b = shapely.STRtree(pieces).query(pieces, predicate="intersects")
    assert (a == b).all()  # no piece touches another
    assert len(pieces) == len(np.unique(touching_groups(geoms)))
