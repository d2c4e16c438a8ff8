"""Hydrant spacing along streets: where working hydrants stand further apart than 120 m
(GB 50974-2014 §7.2.5).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from firegrid.spatial.io.crs import require_projected
from firegrid.spatial.network.routing import (
    GraphTable,
    RoutingGraph,
    Snap,
    nearest_cost,
    snap,
)
from firegrid.spatial.runtime import note
from firegrid.spatial.water.hose import highway_in, hose_graph, spacing_streets
from firegrid.spatial.water.params import WaterParams
from firegrid.spatial.water.sources import layer_ids, working_hydrants


def hydrant_spacing_gaps(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph,
    hydrants: gpd.GeoDataFrame | None,
    *,
    buildings: gpd.GeoDataFrame | None = None,
    boundary: shapely.Geometry | None = None,
    params: WaterParams | None = None,
) -> gpd.GeoDataFrame:
    """Streets where working hydrants stand further apart than the spacing (120 m).

    Definition. The spacing streets (``params.spacing_highways``) form an undirected network in
    metres. Every working hydrant within ``street_snap_m`` of one stands at its snap point. For
    each point *x* of a street let *d(x)* be the distance along spacing streets to the nearest
    such hydrant. On a street between two consecutive hydrants *s* metres apart the largest
    *d* is *s*/2, so "consecutive hydrants more than 120 m apart" is "some point further than
    60 m from every hydrant along the street"; the same rule carries over to intersections,
    side streets, dead ends (the far end is further than 60 m from the last hydrant) and
    streets without any hydrant. Streets are cut into pieces at intersections and hydrants; a
    piece is in a gap when it lies in the built-up area (a building within ``built_up_m``) and
    its farthest point is more than ``hydrant_spacing_m / 2`` from every hydrant. Gap pieces of
    the same street (same name; same OSM class when unnamed) meeting at a node form one gap, so
    a gap runs along one street through its intersections; a hydrant separates gaps.

    Parameters
    ----------
    network : networkx.MultiDiGraph, GraphTable or RoutingGraph
    hydrants : GeoDataFrame or None
        ``hydrant_id``, ``status``; only ``ok`` counts.
    buildings : GeoDataFrame, optional
        Defines the built-up area; without it every spacing street is checked.
    boundary : shapely geometry, optional
        The district (projected CRS); gaps are clipped to it.
    params : WaterParams, optional

    Returns
    -------
    GeoDataFrame
        One row per gap, lines in the network CRS: ``gap_id``; ``gap_m``, the gap length
        measured along the street — twice the largest distance to a hydrant, i.e. the distance
        between the two hydrants bracketing a simple street, or for a street network reaching
        no hydrant at all, its total length; ``max_dist_m`` (metres from the farthest point to a
        hydrant, NaN when none is reachable); ``length_m`` (street metres in the gap, after
        clipping); ``no_hydrant`` (no hydrant reachable along spacing streets);
        ``hydrants`` (ids of the hydrants at its ends); ``streets`` (street names).
    """
    params = params or WaterParams()
    rg = hose_graph(network, params=params)
    if not highway_in(rg.segments["highway"], params.spacing_highways).any():
        note(
            f"no street of the classes {list(params.spacing_highways)} in the network: "
            "hydrant spacing not checked ([water] spacing_highways)"
        )
        return _empty_gaps(rg.crs)
    st = spacing_streets(network if isinstance(network, GraphTable) else rg, params=params)
    h_seg, h_frac, h_ids = _hydrants_on_streets(st, hydrants, params)
    pc = _StreetPieces.cut(st, h_seg, h_frac)
    built = _built_up(st, buildings, params)
    gap = built[pc.seg] & (pc.length > 0) & (pc.peak > params.hydrant_spacing_m / 2.0 + 1e-6)
    if not gap.any():
        return _empty_gaps(rg.crs)
    out = _gap_layer(st, pc.take(np.flatnonzero(gap)), h_ids)
    if boundary is not None:
        clipped = shapely.intersection(out.geometry.values, boundary)
        out = out.set_geometry(clipped)
        out = out[~out.geometry.is_empty].copy()
        out["length_m"] = out.geometry.length.to_numpy()
    out = out.sort_values("gap_m", ascending=False, kind="stable").reset_index(drop=True)
    out.insert(0, "gap_id", pd.array([f"G{i + 1:03d}" for i in range(len(out))], dtype="string"))
    return out


def _hydrants_on_streets(
    st: RoutingGraph, hydrants: gpd.GeoDataFrame | None, params: WaterParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment, fraction and id of every working hydrant within ``street_snap_m`` of a
    spacing street."""
    ok = working_hydrants(hydrants)
    if not ok.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=object)
    require_projected(hydrants, "hydrants", st.crs)
    work = hydrants[ok]
    hs = snap(st, np.asarray(work.geometry.values, dtype=object), max_snap_m=params.street_snap_m)
    on = hs.ok
    return hs.seg[on], hs.frac[on], layer_ids(work, "hydrant_id")[on]


@dataclass(frozen=True)
class _StreetPieces:
    """Spacing streets cut at their ends and at hydrants, with the distance along streets
    from each piece's ends to the nearest hydrant and the largest within it."""

    seg: np.ndarray  # segment of the piece
    f0: np.ndarray  # fractions of the segment where the piece starts and ends
    f1: np.ndarray
    node0: np.ndarray  # graph node at each end, -1 at a hydrant (a hydrant separates gaps)
    node1: np.ndarray
    hyd0: np.ndarray  # hydrant (index) at each end, -1 for none
    hyd1: np.ndarray
    length: np.ndarray  # metres
    peak: np.ndarray  # metres from the piece's farthest point to the nearest hydrant

    @classmethod
    def cut(cls, st: RoutingGraph, h_seg: np.ndarray, h_frac: np.ndarray) -> _StreetPieces:
        n_seg, n_h = st.n_segments, len(h_seg)
        d_a, d_b = _end_distances(st, h_seg, h_frac)
        # Cut points along each segment: its two ends and its hydrants, in order.
        c_seg = np.r_[np.arange(n_seg), h_seg, np.arange(n_seg)]
        c_frac = np.r_[np.zeros(n_seg), h_frac, np.ones(n_seg)]
        c_d = np.r_[d_a, np.zeros(n_h), d_b]
        c_node = np.r_[st.seg_a, np.full(n_h, -1), st.seg_b]
        c_hyd = np.r_[np.full(n_seg, -1), np.arange(n_h), np.full(n_seg, -1)]
        c_rank = np.r_[np.zeros(n_seg), np.ones(n_h), np.full(n_seg, 2.0)]
        order = np.lexsort((c_rank, c_frac, c_seg))
        c_seg, c_frac, c_d = c_seg[order], c_frac[order], c_d[order]
        c_node, c_hyd = c_node[order], c_hyd[order]
        same = c_seg[1:] == c_seg[:-1]
        seg = c_seg[:-1][same]
        f0, f1 = c_frac[:-1][same], c_frac[1:][same]
        d0, d1 = c_d[:-1][same], c_d[1:][same]
        length = (f1 - f0) * st.seg_length_m[seg]
        with np.errstate(invalid="ignore"):
            # d(t) = min(d0 + t, d1 + length - t) peaks at (d0 + d1 + length) / 2 (never
            # below an end).
            peak = np.maximum((d0 + d1 + length) / 2.0, np.maximum(d0, d1))
        peak = np.where(np.isfinite(d0) & np.isfinite(d1), peak, np.inf)
        # A hydrant standing on a node (snapped to another street's end) separates there too.
        node0 = np.where(d0 == 0, -1, c_node[:-1][same])
        node1 = np.where(d1 == 0, -1, c_node[1:][same])
        hyd0, hyd1 = c_hyd[:-1][same], c_hyd[1:][same]
        return cls(seg, f0, f1, node0, node1, hyd0, hyd1, length, peak)

    def take(self, rows: np.ndarray) -> _StreetPieces:
        return _StreetPieces(*(getattr(self, f.name)[rows] for f in fields(self)))


def _end_distances(
    st: RoutingGraph, h_seg: np.ndarray, h_frac: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Metres along spacing streets from the nearest hydrant to both ends of every segment."""
    n_seg = st.n_segments
    ends = Snap.at(
        st, np.r_[np.arange(n_seg), np.arange(n_seg)], np.r_[np.zeros(n_seg), np.ones(n_seg)]
    )
    if len(h_seg):
        d_end, _ = nearest_cost(st, Snap.at(st, h_seg, h_frac), ends)
    else:
        d_end = np.full(2 * n_seg, np.inf)
    return d_end[:n_seg], d_end[n_seg:]


def _built_up(
    st: RoutingGraph, buildings: gpd.GeoDataFrame | None, params: WaterParams
) -> np.ndarray:
    """Per segment: a building stands within ``built_up_m`` (all True without buildings)."""
    built = np.ones(st.n_segments, dtype=bool)
    if buildings is None:
        return built
    require_projected(buildings, "buildings", st.crs)
    bg = np.asarray(buildings.geometry.values, dtype=object)
    bg = bg[~(shapely.is_missing(bg) | shapely.is_empty(bg))]
    built[:] = False
    if len(bg):
        hit, _ = shapely.STRtree(bg).query(
            st.seg_geom, predicate="dwithin", distance=params.built_up_m
        )
        built[np.unique(hit)] = True
    return built


def _gap_layer(st: RoutingGraph, pc: _StreetPieces, h_ids: np.ndarray) -> gpd.GeoDataFrame:
    """Gap pieces joined into runs along one street (:func:`_street_runs`), one row per run."""
    names = st.segments["name"].to_numpy(dtype=object)[pc.seg]
    classes = st.segments["highway"].to_numpy(dtype=object)[pc.seg]
    comp = _street_runs(pc.node0, pc.node1, names, classes)
    ids = np.append(np.asarray(h_ids, dtype=object), "")  # index -1 reads ""
    pieces = pd.DataFrame(
        {
            "comp": comp,
            "peak": pc.peak,
            "plen": pc.length,
            "name": pd.Series(names, dtype=object).map(_name_text).to_numpy(dtype=object),
            "hyd0": ids[pc.hyd0],
            "hyd1": ids[pc.hyd1],
        }
    )
    grp = pieces.groupby("comp", sort=True)
    peak_c = grp["peak"].max()
    len_c = grp["plen"].sum()
    ends = pd.concat(
        [
            pieces[["comp", "hyd0"]].set_axis(["comp", "h"], axis=1),
            pieces[["comp", "hyd1"]].set_axis(["comp", "h"], axis=1),
        ]
    )
    hyd = _joined(ends.query("h != ''"), "h")
    street = _joined(pieces[pieces["name"] != ""][["comp", "name"]], "name")
    geom = substrings(st.seg_geom[pc.seg], pc.f0, pc.f1)
    lines = gpd.GeoSeries(geom, crs=st.crs).groupby(comp).agg(shapely.union_all)
    lines = shapely.line_merge(np.asarray(lines.values, dtype=object))
    no_hyd = ~np.isfinite(peak_c.to_numpy())
    return gpd.GeoDataFrame(
        {
            "gap_m": np.where(no_hyd, len_c.to_numpy(), 2.0 * peak_c.to_numpy()),
            "max_dist_m": np.where(no_hyd, np.nan, peak_c.to_numpy()),
            "length_m": len_c.to_numpy(),
            "no_hydrant": no_hyd,
            "hydrants": pd.array(hyd.reindex(peak_c.index).fillna("").to_numpy(), dtype="string"),
            "streets": pd.array(street.reindex(peak_c.index).fillna("").to_numpy(), dtype="string"),
        },
        geometry=lines,
        crs=st.crs,
    )


def _joined(df: pd.DataFrame, column: str) -> pd.Series:
    """Per ``comp``: the distinct values of ``column``, sorted, joined by ", "."""
    return df.drop_duplicates().sort_values(["comp", column]).groupby("comp")[column].agg(", ".join)


def _street_runs(
    n0: np.ndarray, n1: np.ndarray, names: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """Group street pieces into runs along one street: pieces sharing an end node (``>= 0``)
    and a street name (the OSM class for unnamed streets) form one run. Returns a run label
    per piece. Merged osmnx edges carrying several names join the runs of each name."""
    k = len(n0)
    key = pd.Series(
        [_as_names(nm) or ["#" + _name_text(c)] for nm, c in zip(names, classes, strict=True)],
        dtype=object,
    )
    rows = []
    for nodes in (n0, n1):
        df = pd.DataFrame({"piece": np.arange(k), "node": nodes, "name": key}).explode("name")
        rows.append(df[df["node"] >= 0])
    ends = pd.concat(rows, ignore_index=True)
    vert = pd.factorize(ends["node"].astype(str) + "|" + ends["name"].astype(str))[0]
    n_v = int(vert.max()) + 1 if len(vert) else 0
    adj = sp.coo_matrix(
        (np.ones(len(vert)), (ends["piece"].to_numpy(dtype=np.int64), k + vert)),
        shape=(k + n_v, k + n_v),
    )
    _, label = connected_components(adj, directed=False)
    return pd.factorize(label[:k])[0]


def _as_names(v: Any) -> list[str]:
    if isinstance(v, list | tuple | np.ndarray):
        return [str(x) for x in v if x is not None and x == x and str(x)]
    if v is None or (isinstance(v, float) and np.isnan(v)) or str(v) == "":
        return []
    text = str(v)
    if text.startswith("[") and text.endswith("]"):  # GraphML string form of a list
        return [t.strip().strip("'\"") for t in text[1:-1].split(",") if t.strip()]
    return [text]


def _empty_gaps(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "gap_id": pd.Series([], dtype="string"),
            "gap_m": pd.Series([], dtype=float),
            "max_dist_m": pd.Series([], dtype=float),
            "length_m": pd.Series([], dtype=float),
            "no_hydrant": pd.Series([], dtype=bool),
            "hydrants": pd.Series([], dtype="string"),
            "streets": pd.Series([], dtype="string"),
        },
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )


def _name_text(v: Any) -> str:
    if isinstance(v, list | tuple):
        return " / ".join(str(x) for x in v if x is not None and x == x)
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return str(v)


def substrings(lines: np.ndarray, f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """The part of each line between fractions ``f0 < f1`` of its length (vectorised)."""
    lines = np.asarray(lines, dtype=object)
    f0 = np.asarray(f0, dtype=float)
    f1 = np.asarray(f1, dtype=float)
    coords, gi = shapely.get_coordinates(lines, return_index=True)
    seglen = np.hypot(*np.diff(coords, axis=0).T)
    seglen[gi[1:] != gi[:-1]] = 0.0
    cum = np.r_[0.0, np.cumsum(seglen)]
    start = np.searchsorted(gi, np.arange(len(lines)))
    total = shapely.length(lines)
    base = cum[start]
    # Vertices strictly inside (f0, f1) of each piece, by the global cumulative length.
    lo = np.searchsorted(cum, base + f0 * total, side="right")
    hi = np.searchsorted(cum, base + f1 * total, side="left")
    end = np.r_[start[1:], len(coords)]
    lo = np.clip(lo, start, end)
    hi = np.clip(hi, lo, end)
    n_in = hi - lo
    p0 = shapely.get_coordinates(shapely.line_interpolate_point(lines, f0, normalized=True))
    p1 = shapely.get_coordinates(shapely.line_interpolate_point(lines, f1, normalized=True))
    cnt = n_in + 2
    total_pts = int(cnt.sum())
    out = np.empty((total_pts, 2))
    first = np.cumsum(cnt) - cnt
    out[first] = p0
    out[first + cnt - 1] = p1
    rep = np.repeat(np.arange(len(lines)), n_in)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(n_in) - n_in, n_in)
    out[first[rep] + 1 + within] = coords[lo[rep] + within]
    return shapely.linestrings(out, indices=np.repeat(np.arange(len(lines)), cnt))
