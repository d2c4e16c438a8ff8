"""Unions of many polygons, grouped: a few GEOS calls for any number of groups.

One ``union_all`` over hundreds of thousands of mostly separate polygons (the footprints of a
city's water-deficient buildings, say) builds one giant geometry, and every later operation
on it (a negative buffer, a difference) is slow in GEOS beyond proportion. Unions of the
groups of polygons that actually touch are the same pieces, made and handled each alone.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components


def touching_groups(geoms: np.ndarray) -> np.ndarray:
    """Group number (``0 … m - 1``) of each geometry: geometries that intersect, directly or
    through others, share a group.

    Parameters
    ----------
    geoms : array of shapely geometries

    Returns
    -------
    ndarray of int64, one per geometry.
    """
    n = len(geoms)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    adj = sp.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(adj, directed=False)[1].astype(np.int64)


def union_by(geoms: np.ndarray, group: np.ndarray, *, coverage: bool = False) -> np.ndarray:
    """The union of the geometries of each group (``group`` numbers ``0 … m - 1``).

    Groups of similar size share one padded table (None is skipped), so a few GEOS calls
    serve every group and padding at most doubles the table.

    Parameters
    ----------
    geoms : array of shapely geometries
    group : array of int
        Group of each geometry, ``0 … m - 1``.
    coverage : bool
        The geometries of a group form a coverage (they touch, never overlap): GEOS's faster
        coverage union is used.

    Returns
    -------
    ndarray of geometries, ``m`` of them (None for a group without members).
    """
    group = np.asarray(group, dtype=np.int64)
    m = int(group.max()) + 1 if len(group) else 0
    out = np.full(m, None, dtype=object)
    order = np.argsort(group, kind="stable")
    size = np.bincount(group, minlength=m)
    start = np.cumsum(size) - size
    pos = np.arange(len(group)) - start[group[order]]
    band = np.floor(np.log2(np.maximum(size, 1))).astype(np.int64)
    unite = shapely.coverage_union_all if coverage else shapely.union_all
    for b in np.unique(band[size > 0]):  # one GEOS call per size band, not per group
        ids = np.flatnonzero((band == b) & (size > 0))
        row = np.full(m, -1, dtype=np.int64)
        row[ids] = np.arange(len(ids))
        sel = row[group[order]] >= 0
        table = np.full((len(ids), int(size[ids].max())), None, dtype=object)
        table[row[group[order]][sel], pos[sel]] = geoms[order][sel]
        out[ids] = unite(table, axis=1)
    return out


def dissolve_touching(geoms: np.ndarray) -> np.ndarray:
    """The union of ``geoms`` as separate pieces: one per group of touching geometries.

    The pieces neither overlap nor touch one another, so their union is the union of
    ``geoms``, and an operation that acts on each part alone (a negative buffer, a difference
    with what overlaps it) may be applied piece by piece.
    """
    return union_by(geoms, touching_groups(geoms))
