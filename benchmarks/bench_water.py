"""Benchmark of the water step on the real central-Shanghai street network (synthetic buildings).

Run on demand: ``python benchmarks/bench_water.py [--buildings 100000] [--hydrants 4000]``.
Prints the time of each step and, measured in the same run on the same data, ratios against
peers: networkx multi-source Dijkstra for the street distances, and geopandas ``sjoin_nearest``
for the straight-line distances. Needs ../shared/data/shanghai_roads/shanghai_center.osm.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from _synthetic import (  # benchmarks/_synthetic.py (run as a script)
    OSM,
    building_boxes,
    points_off_streets,
)

from firegrid.spatial.network.load import read_network
from firegrid.spatial.network.routing import nearest_cost, snap
from firegrid.spatial.siting.hydrants import propose_hydrants
from firegrid.spatial.water.coverage import hydrant_coverage
from firegrid.spatial.water.hose import hose_graph, street_starts
from firegrid.spatial.water.params import WaterParams
from firegrid.spatial.water.spacing import hydrant_spacing_gaps
from firegrid.spatial.water.zones import water_deficient_zones


def synthetic_layers(rg, n_buildings: int, n_hydrants: int, seed: int = 0):
    """Buildings 12-40 m off random streets (10-30 m boxes) and hydrants 3-6 m off streets."""
    rng = np.random.default_rng(seed)
    geoms = building_boxes(rg, rng, n_buildings)
    buildings = gpd.GeoDataFrame(
        {"building_id": [f"B{i}" for i in range(n_buildings)]}, geometry=geoms, crs=rg.crs
    )
    hxy = points_off_streets(rg, rng, n_hydrants, 3.0, 6.0)
    status = rng.choice(["ok", "broken", "missing"], n_hydrants, p=[0.9, 0.08, 0.02])
    hydrants = gpd.GeoDataFrame(
        {"hydrant_id": [f"H{i}" for i in range(n_hydrants)], "status": status},
        geometry=shapely.points(hxy),
        crs=rg.crs,
    )
    return buildings, hydrants


def timed(label: str, fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    dt = time.perf_counter() - t
    print(f"  {label:<44s} {dt:8.2f} s")
    return out, dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--hydrants", type=int, default=4_000)
    ap.add_argument(
        "--siting-buildings",
        type=int,
        default=20_000,
        help="deficient buildings handed to the siting step (it scales with them)",
    )
    args = ap.parse_args(argv)
    if not OSM.exists():
        print(f"skipped: {OSM} not found")
        return 0
    warnings.simplefilter("ignore")
    params = WaterParams()
    print(f"network {OSM.name}")
    G, _ = timed("read_network (osmnx)", read_network, OSM)
    rg, _ = timed("hose_graph (compile, metres, undirected)", hose_graph, G, params=params)
    print(f"  {rg}")
    b, h = synthetic_layers(rg, args.buildings, args.hydrants)
    print(f"{len(b)} buildings, {len(h)} hydrants ({int((h.status == 'ok').sum())} working)")

    cov, _ = timed("hydrant_coverage", hydrant_coverage, rg, b, h, params=params)
    gaps, _ = timed("hydrant_spacing_gaps", hydrant_spacing_gaps, rg, h, buildings=b,
                    params=params)  # fmt: skip
    zones, _ = timed("water_deficient_zones", water_deficient_zones, cov, params=params)
    sub = cov[cov["water_deficient"]].head(args.siting_buildings)
    (prop, siting), _ = timed(f"propose_hydrants ({len(sub)} deficient)", propose_hydrants, rg,
                              sub, params=params)  # fmt: skip
    print(f"  deficient {cov.water_deficient.mean():.1%}, gaps {len(gaps)} "
          f"({gaps.length_m.sum() / 1000:.0f} km), zones {len(zones)}")  # fmt: skip
    print("  " + "\n  ".join(siting.lines()))

    print("peers (same data, same run)")
    work = h[h.status == "ok"]
    # Straight line: geopandas sjoin_nearest against the STRtree query inside hydrant_coverage.
    _, t_sj = timed("geopandas sjoin_nearest (straight line)", gpd.sjoin_nearest, b,
                    work[["geometry"]], distance_col="d")  # fmt: skip
    t0 = time.perf_counter()
    shapely.STRtree(work.geometry.values).query_nearest(
        b.geometry.values, all_matches=False, return_distance=True
    )
    t_tree = time.perf_counter() - t0
    print(f"  {'STRtree.query_nearest (ours)':<44s} {t_tree:8.2f} s"
          f"   ratio sjoin/ours {t_sj / t_tree:5.1f}x")  # fmt: skip
    # Street distances alone (snapping done once, outside the timings): our one-pass
    # multi-source Dijkstra on the compiled graph, with partial edges and access legs, against
    # networkx multi-source Dijkstra from the hydrants' nearest nodes with a lookup at each
    # building's nearest node (coarser: node-snapped, no access legs).
    hs = snap(rg, work.geometry)
    _, bs = street_starts(
        rg, np.asarray(b.geometry.values, dtype=object), reach_m=params.street_facing_m
    )
    t0 = time.perf_counter()
    nearest_cost(rg, hs, bs)
    t_ours = time.perf_counter() - t0
    print(f"  {'nearest_cost (ours, street metres)':<44s} {t_ours:8.2f} s")
    t0 = time.perf_counter()
    U = nx.Graph()
    U.add_weighted_edges_from(
        zip(rg.seg_a.tolist(), rg.seg_b.tolist(), rg.seg_length_m.tolist(), strict=True)
    )
    src = set(np.where(hs.frac < 0.5, rg.seg_a[hs.seg], rg.seg_b[hs.seg]).tolist())
    dist = nx.multi_source_dijkstra_path_length(U, src, weight="weight")
    nodes = np.where(bs.frac < 0.5, rg.seg_a[bs.seg], rg.seg_b[bs.seg])
    _ = pd.Series(nodes).map(dist)
    t_nx = time.perf_counter() - t0
    print(
        f"  {'networkx multi_source_dijkstra (node-snapped)':<44s} {t_nx:8.2f} s"
        f"   ratio networkx/ours {t_nx / t_ours:5.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
