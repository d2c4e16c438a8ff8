"""Synthetic layers along a real street network, shared by the benchmarks (run as scripts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely

from firegrid.spatial.network.routing import RoutingGraph

OSM = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "shanghai_roads"
OSM = OSM / "shanghai_center.osm"


def points_off_streets(
    rg: RoutingGraph, rng: np.random.Generator, n: int, lo: float, hi: float
) -> np.ndarray:
    """``n`` x/y positions ``lo``-``hi`` metres off random points of the streets (longer
    streets drawn more often), as an (n, 2) array in the graph's CRS."""
    w = rg.seg_length_m / rg.seg_length_m.sum()
    seg = rng.choice(rg.n_segments, n, p=w)
    pts = shapely.line_interpolate_point(rg.seg_geom[seg], rng.random(n), normalized=True)
    xy = shapely.get_coordinates(pts)
    ang = rng.uniform(0, 2 * np.pi, n)
    r = rng.uniform(lo, hi, n)
    return xy + np.column_stack([np.cos(ang), np.sin(ang)]) * r[:, None]


def building_boxes(rg: RoutingGraph, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` building footprints: 10-30 m boxes centred 12-40 m off random streets."""
    bxy = points_off_streets(rg, rng, n, 12.0, 40.0)
    half = rng.uniform(5, 15, (n, 2))
    return shapely.box(*(bxy - half).T, *(bxy + half).T)
