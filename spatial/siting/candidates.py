"""Candidate sites for new stations and hydrants on the streets, and what each reaches.

Candidates are generated along a compiled graph's streets (every node or intersection, plus
points at most a spacing apart) or snapped from a user's layer; one bounded multi-source
Dijkstra batch per candidate (:func:`firegrid.spatial.network.routing.cost_matrix`) gives the
sparse candidates × buildings matrix of the pairs within a target. All geometry is in the
district's projected working CRS (metres).
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
import shapely

from firegrid.spatial.io.crs import require_projected
from firegrid.spatial.network.routing import RoutingGraph, Snap, cost_matrix, snap, warn_far


def candidate_sites(
    rg: RoutingGraph,
    *,
    spacing_m: float = 100.0,
    area: shapely.Geometry | None = None,
) -> gpd.GeoDataFrame:
    """Candidate sites on the streets of a compiled graph: intersections and regular points.

    Parameters
    ----------
    rg : RoutingGraph
        Graph of the crews' vehicle (only streets they may use carry candidates).
    spacing_m : float
        Along each street piece, points at most this many metres apart (equal spacing, ends
        excluded); 0 for intersections only (nodes with three or more neighbours).
    area : shapely geometry, optional
        Keep only candidates inside it (working CRS).

    Returns
    -------
    GeoDataFrame
        In ``rg.crs``: ``candidate_id`` (``"C00001"`` …), ``kind`` (``"intersection"``,
        ``"node"`` for dead ends and bends, ``"street"``), ``seg`` and ``frac`` (position on
        the graph), ``road_name``, ``highway``, point geometry.
    """
    kind_n, frac_n, seg_n = _node_candidates(rg, intersections_only=spacing_m <= 0)
    seg, frac, kind = [seg_n], [frac_n], [kind_n]
    if spacing_m > 0:
        s_seg, s_frac = _street_points(rg, spacing_m)
        seg.append(s_seg)
        frac.append(s_frac)
        kind.append(np.full(len(s_seg), "street"))
    seg_all = np.concatenate(seg).astype(np.int64)
    frac_all = np.concatenate(frac)
    kind_all = np.concatenate(kind).astype(object)
    pts = Snap.at(rg, seg_all, frac_all)
    inside = np.ones(len(seg_all), bool)
    if area is not None:
        inside = shapely.contains_xy(area, pts.x, pts.y)
    seg_all, frac_all, kind_all = seg_all[inside], frac_all[inside], kind_all[inside]
    return gpd.GeoDataFrame(
        {
            "candidate_id": [f"C{i + 1:05d}" for i in range(len(seg_all))],
            "kind": kind_all,
            "seg": seg_all,
            "frac": frac_all,
            "road_name": _road_names(rg.segments["name"].to_numpy()[seg_all]),
            "highway": _road_names(rg.segments["highway"].to_numpy()[seg_all]),
        },
        geometry=gpd.points_from_xy(pts.x[inside], pts.y[inside]),
        crs=rg.crs,
    )


def _node_candidates(
    rg: RoutingGraph, *, intersections_only: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One candidate per node (per intersection: three or more neighbours, when
    ``intersections_only``), placed on the first segment that touches it: the candidates'
    kind, fraction and segment."""
    a, b = rg.seg_a, rg.seg_b
    pair = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], 1), axis=0)
    pair = pair[pair[:, 0] != pair[:, 1]]
    degree = np.bincount(pair.ravel(), minlength=rg.n_nodes)
    seg_ids = np.arange(rg.n_segments)
    ends = np.concatenate([a, b])
    ends_seg = np.concatenate([seg_ids, seg_ids])
    ends_frac = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    node, first = np.unique(ends, return_index=True)
    keep = degree[node] >= 3 if intersections_only else np.ones(len(node), bool)
    kind = np.where(degree[node[keep]] >= 3, "intersection", "node")
    return kind, ends_frac[first][keep], ends_seg[first][keep]


def _street_points(rg: RoutingGraph, spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points at most ``spacing_m`` apart along every segment, equally spaced, ends excluded:
    their segment and fraction."""
    length = shapely.length(rg.seg_geom)
    parts = np.maximum(1, np.ceil(length / spacing_m).astype(np.int64))
    inner = parts - 1
    seg = np.repeat(np.arange(rg.n_segments), inner)
    i = np.arange(len(seg)) - np.repeat(np.cumsum(inner) - inner, inner) + 1
    return seg, i / parts[seg]


def snap_candidates(
    rg: RoutingGraph, candidates: gpd.GeoDataFrame, *, max_snap_m: float = 150.0
) -> tuple[gpd.GeoDataFrame, Snap]:
    """Place candidate sites on the network.

    Candidates made by :func:`candidate_sites` (``seg``/``frac`` columns) sit exactly on their
    street; a user's layer (e.g. vacant lots, community centres) is snapped to the nearest
    street, its access leg counted in every travel time. Points farther than ``max_snap_m``
    metres from any usable street are dropped with a warning naming them.

    Returns
    -------
    (GeoDataFrame, Snap)
        The usable candidates (with ``candidate_id``, ``road_name``, ``highway``,
        ``access_m``) and their snap positions, row for row.
    """
    if {"seg", "frac"} <= set(candidates.columns) and "access_m" not in candidates.columns:
        s = Snap.at(rg, candidates["seg"].to_numpy(), candidates["frac"].to_numpy())
        out = candidates.copy()
        out["access_m"] = 0.0
        return out, s
    require_projected(candidates, "candidate sites", rg.crs)
    s = snap(rg, candidates, max_snap_m=max_snap_m)
    out = candidates.copy()
    if "candidate_id" not in out.columns:
        out["candidate_id"] = [f"U{i + 1:05d}" for i in range(len(out))]
    out["candidate_id"] = out["candidate_id"].astype(str)
    out["access_m"] = s.access_m
    seg = np.where(s.ok, s.seg, 0)
    out["road_name"] = np.where(s.ok, _road_names(rg.segments["name"].to_numpy()[seg]), "")
    out["highway"] = np.where(s.ok, _road_names(rg.segments["highway"].to_numpy()[seg]), "")
    if not s.ok.all():
        warn_far(
            out["candidate_id"].to_numpy(), s.access_m, max_snap_m, "candidate sites (dropped)"
        )
    keep = np.flatnonzero(s.ok)
    return out.iloc[keep].reset_index(drop=True), s.take(keep)


def candidate_times(
    rg: RoutingGraph,
    candidates: Snap,
    buildings: Snap,
    *,
    target_s: float = 180.0,
    turnout_s: float = 60.0,
) -> sp.csr_matrix:
    """Seconds from every candidate site to every building it reaches within the target.

    One bounded Dijkstra per candidate in memory-sized batches
    (:func:`firegrid.spatial.network.routing.cost_matrix`, cutoff ``target_s - turnout_s``); turnout is added.

    Returns
    -------
    scipy.sparse.csr_matrix
        Candidates × buildings; the stored entries are exactly the pairs within ``target_s``
        (turnout, access legs and intersection delays included).
    """
    T = cost_matrix(rg, candidates, buildings, cutoff=float(target_s - turnout_s))
    T.data += float(turnout_s)
    return T


def coverage_from_times(times: sp.csr_matrix) -> sp.csc_matrix:
    """Boolean buildings × candidates coverage matrix from the sparsity pattern of ``times``.

    The pattern, not the values, says who covers whom (a zero travel time is a real entry).
    """
    n_c, n_b = times.shape
    return sp.csc_matrix(
        (np.ones(times.nnz, bool), times.indices.copy(), times.indptr.copy()), shape=(n_b, n_c)
    )


def dominated_candidates(
    cover, *, existing_covered: np.ndarray | None = None, max_work: float = 5e7
) -> np.ndarray:
    """Candidates that can be dropped from an uncapacitated covering problem without loss.

    Candidate ``i`` is dominated when the buildings it reaches that still need cover are a
    subset of those of another candidate ``j`` (larger, or equal with a lower index): any
    solution using ``i`` does at least as well with ``j``. Never valid with capacities (a second
    site adds capacity). Skipped (nothing dropped but empty candidates) when the pairwise
    overlap would cost more than ``max_work`` multiply-adds.

    Returns
    -------
    numpy.ndarray of bool
        Per candidate (column of ``cover``).
    """
    A = sp.csr_matrix(cover, dtype=bool)
    pre = np.zeros(A.shape[0], bool) if existing_covered is None else np.asarray(existing_covered)
    B = sp.csc_matrix(A[~pre], dtype=np.float32)
    size = np.diff(B.indptr)
    out = size == 0
    deg = np.diff(sp.csr_matrix(B).indptr).astype(float)
    if B.nnz == 0 or float((deg**2).sum()) > max_work:
        return out
    overlap = (B.T @ B).tocoo()
    i, j, v = overlap.row, overlap.col, overlap.data
    dom = (i != j) & (v == size[i]) & ((size[j] > size[i]) | ((size[j] == size[i]) & (j < i)))
    out[i[dom]] = True
    return out


def _road_names(values: np.ndarray) -> np.ndarray:
    """One display string per street: osmnx lists joined with '/', missing as ''."""

    def one(v: Any) -> str:
        if isinstance(v, list | tuple | set | np.ndarray):
            return "/".join(dict.fromkeys(str(x) for x in v if x is not None and x == x))
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        return str(v)

    uniq: dict[Any, str] = {}
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # candidates, not buildings: a few thousand at most
        key = v if isinstance(v, str) else repr(v)
        if key not in uniq:
            uniq[key] = one(v)
        out[i] = uniq[key]
    return out
