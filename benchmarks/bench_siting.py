"""Benchmark of micro-station siting: 5,000 candidates × 100,000 buildings on a real network.

Run on demand: ``python benchmarks/bench_siting.py [--buildings 100000] [--candidates 5000]``.
Uses the real central-Shanghai street network (../shared/data/shanghai_roads/shanghai_center.osm)
with synthetic buildings placed along its streets and 40 synthetic existing micro-stations.
Prints the time and memory (tracemalloc peak of Python/numpy allocations, and the process's
peak RSS) of each stage, and ratios against peers measured in the same run on the same data:

- travel times: networkx ``single_source_dijkstra_path_length`` (one search per candidate, the
  naive approach) on the same compiled graph, timed on a subset of candidates and extrapolated;
- the MILP: spopt's ``MCLP.from_cost_matrix`` (PuLP + CBC, a dense formulation written
  independently) on a subset small enough for a dense cost matrix; objectives must agree.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from _synthetic import (  # benchmarks/_synthetic.py (run as a script)
    OSM,
    building_boxes,
    points_off_streets,
)

from firegrid.spatial.network.load import read_network
from firegrid.spatial.network.profiles import default_profile
from firegrid.spatial.network.routing import RoutingGraph, snap
from firegrid.spatial.siting.candidates import (
    candidate_sites,
    candidate_times,
    coverage_from_times,
    snap_candidates,
)
from firegrid.spatial.siting.cover import max_cover, set_cover
from firegrid.spatial.siting.stations import SitingParams, site_micro_stations


def synthetic_layers(rg: RoutingGraph, n_buildings: int, n_stations: int, seed: int = 0):
    """Buildings 12-40 m off random streets (10-30 m boxes, random risk index and residents)
    and existing micro-stations 3-6 m off random streets."""
    rng = np.random.default_rng(seed)
    geoms = building_boxes(rg, rng, n_buildings)
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"B{i}" for i in range(n_buildings)],
            "risk_index": rng.gamma(2.0, 15.0, n_buildings).clip(0, 100),
            "residents": rng.integers(0, 120, n_buildings),
        },
        geometry=geoms,
        crs=rg.crs,
    )
    stations = gpd.GeoDataFrame(
        {
            "station_id": [f"WZ{i:02d}" for i in range(n_stations)],
            "kind": "micro_station",
            "vehicle": "ebike",
            "turnout_s": 60.0,
        },
        geometry=shapely.points(points_off_streets(rg, rng, n_stations, 3.0, 6.0)),
        crs=rg.crs,
    )
    return buildings, stations


class Stage:
    """Wall time and tracemalloc peak of a block."""

    def __init__(self, label: str):
        self.label = label

    def __enter__(self):
        tracemalloc.reset_peak()
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.dt = time.perf_counter() - self.t
        self.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        print(f"  {self.label:<52s} {self.dt:8.2f} s  peak {self.peak_mb:7.0f} MiB")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--candidates", type=int, default=5_000)
    ap.add_argument("--stations", type=int, default=40)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per MILP")
    ap.add_argument("--nx-candidates", type=int, default=100, help="networkx peer subset")
    ap.add_argument("--spopt-buildings", type=int, default=3_000)
    ap.add_argument("--spopt-candidates", type=int, default=300)
    ap.add_argument(
        "--exact-too",
        action="store_true",
        help="also run the MILP on the full problem (auto picks greedy at this size)",
    )
    args = ap.parse_args(argv)
    if not OSM.exists():
        print(f"skipped: {OSM} not found")
        return 0
    warnings.simplefilter("ignore")
    tracemalloc.start()
    params = SitingParams(k=args.k, weight="risk_index", time_limit_s=args.time_limit,
                          gain_curve=False)  # fmt: skip
    print(f"network {OSM.name}")
    with Stage("read_network (osmnx)"):
        G = read_network(OSM)
    with Stage("RoutingGraph.from_graph (ebike)"):
        rg = RoutingGraph.from_graph(G, default_profile("ebike"))
    print(f"  {rg}")
    b, st = synthetic_layers(rg, args.buildings, args.stations)
    # Candidates along every street (40 m spacing), then a random subset of the size asked for.
    cand_all = candidate_sites(rg, spacing_m=40.0)
    pick = np.sort(np.random.default_rng(1).choice(len(cand_all), args.candidates, replace=False))
    cand = cand_all.iloc[pick].reset_index(drop=True)
    print(f"{len(b)} buildings, {len(cand)} candidates, {len(st)} existing micro-stations, "
          f"k = {args.k}, target {params.target_s:.0f} s, turnout {params.turnout_s:.0f} s")  # fmt: skip

    print("FireGrid (stages separately)")
    bsnap = snap(rg, b, max_snap_m=150.0)
    cand_s, csnap = snap_candidates(rg, cand)
    with Stage("candidate_times (cost_matrix, all candidates)") as s_times:
        T = candidate_times(rg, csnap, bsnap, target_s=params.target_s, turnout_s=params.turnout_s)
    A = coverage_from_times(T)
    print(f"  pairs within target: {T.nnz:,} ({T.nnz / len(cand):.0f} buildings per candidate)")

    print("FireGrid (site_micro_stations end to end: existing coverage, times, k sites, count)")
    rss0 = rss_mb()
    with Stage("site_micro_stations"):
        res = site_micro_stations(G, b, st, params=params, candidates=cand)
    sm = res.summary()
    print("  stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in res.timings.items()))
    print(f"  candidates solved after dominance: {sm['candidates_solved']}")
    print(f"  covered before {sm['covered_before']:,} -> after {sm['covered_after']:,} of "
          f"{sm['buildings']:,} (coverable {sm['coverable']:,})")  # fmt: skip
    mc = res.max_cover
    print(f"  max cover k={args.k}: weight {mc.objective:,.1f}, bound {mc.bound:,.1f}, "
          f"gap {mc.gap:.2%}, method {mc.method}, optimal {mc.optimal}")  # fmt: skip
    if res.min_count is not None:
        m = res.min_count
        print(f"  min count: {m.objective:.0f} sites, bound {m.bound:.0f}, gap {m.gap:.2%}, "
              f"method {m.method}, optimal {m.optimal}")  # fmt: skip
    print(f"  process peak RSS {max(rss_mb(), rss0):.0f} MiB")

    pre = res.buildings["siting_covered_before"].to_numpy()
    w = b["risk_index"].to_numpy()
    with Stage(f"greedy max cover k={args.k} + Lagrangian bound"):
        g = max_cover(A, args.k, weights=w, existing_covered=pre, method="greedy",
                      bound="lagrangian")  # fmt: skip
    print(f"  greedy weight {g.objective:,.1f}, bound {g.bound:,.1f}, gap {g.gap:.2%}")
    if args.exact_too:
        with Stage(f"MILP max cover k={args.k} ({args.time_limit:.0f} s limit)"):
            e = max_cover(A, args.k, weights=w, existing_covered=pre, method="exact",
                          time_limit_s=args.time_limit, presolve=False, bound="lagrangian")  # fmt: skip
        print(f"  MILP weight {e.objective:,.1f}, bound {e.bound:,.1f}, gap {e.gap:.2%}, "
              f"optimal {e.optimal} (greedy {g.objective:,.1f} never better)")  # fmt: skip

    print("peers (same data, same run)")
    # 1. Naive travel times: one networkx Dijkstra per candidate from its nearest node, then
    # buildings through the ends of their segments (node-snapped candidates: coarser than ours).
    D = rg.to_networkx()
    sub = np.random.default_rng(2).choice(len(cand), args.nx_candidates, replace=False)
    cs = csnap.take(sub)
    start = np.where(cs.frac < 0.5, rg.seg_a[cs.seg], rg.seg_b[cs.seg])
    ok = bsnap.ok
    seg = bsnap.seg[ok]
    cutoff = params.target_s - params.turnout_s
    t0 = time.perf_counter()
    n_pairs = 0
    for node in start.tolist():
        dist = nx.single_source_dijkstra_path_length(D, node, cutoff=cutoff, weight="cost")
        da = np.full(rg.n_nodes, np.inf)
        da[np.fromiter(dist.keys(), int)] = np.fromiter(dist.values(), float)
        best = np.minimum(
            da[rg.seg_a[seg]] + bsnap.frac[ok] * rg.run_fwd[seg],
            da[rg.seg_b[seg]] + (1 - bsnap.frac[ok]) * rg.run_back[seg],
        )
        n_pairs += int((best + bsnap.access_m[ok] * rg.access_cost_per_m <= cutoff).sum())
    t_nx = (time.perf_counter() - t0) * len(cand) / len(sub)
    print(f"  {'networkx per-candidate Dijkstra (extrapolated)':<52s} {t_nx:8.2f} s"
          f"   ratio networkx/ours {t_nx / s_times.dt:6.1f}x"
          f"   ({n_pairs / len(sub):.0f} vs {T[sub].nnz / len(sub):.0f} pairs/candidate)")  # fmt: skip

    # 2. The MILP against spopt's MCLP (PuLP + CBC) on a subset with a dense cost matrix.
    try:
        import pulp
        from spopt.locate import MCLP
    except ImportError:
        print("  spopt not installed: pip install spopt to compare with its MCLP")
        return 0
    rng = np.random.default_rng(3)
    sb = rng.choice(len(b), args.spopt_buildings, replace=False)
    sc = rng.choice(len(cand), args.spopt_candidates, replace=False)
    Tsub = T[sc][:, sb]
    dense = np.full(Tsub.shape, np.inf)
    coo = Tsub.tocoo()
    dense[coo.row, coo.col] = coo.data
    ws = np.where(pre[sb], 0.0, w[sb])  # existing coverage: those buildings earn nothing new
    k_sub = min(args.k, 5)
    with Stage(f"ours: max_cover exact ({len(sb)} x {len(sc)}, k={k_sub})") as s_ours:
        ours = max_cover(coverage_from_times(Tsub), k_sub, weights=w[sb], existing_covered=pre[sb],
                         method="exact", presolve=False)  # fmt: skip
    with Stage("spopt MCLP.from_cost_matrix + CBC") as s_sp:
        mclp = MCLP.from_cost_matrix(
            np.where(np.isfinite(dense), dense, 1e9).T, ws, service_radius=params.target_s,
            p_facilities=k_sub,
        )  # fmt: skip
        mclp.solve(pulp.PULP_CBC_CMD(msg=False))
    sp_obj = float(pulp.value(mclp.problem.objective)) + float(w[sb][pre[sb]].sum())
    print(f"  objective ours {ours.objective:,.3f} (optimal {ours.optimal}) vs spopt "
          f"{sp_obj:,.3f}; ratio spopt/ours {s_sp.dt / s_ours.dt:5.1f}x")  # fmt: skip
    # And the minimal count on the same subset, for scale.
    with Stage("ours: set_cover exact (same subset)"):
        sc_sol = set_cover(coverage_from_times(Tsub), existing_covered=pre[sb], method="exact")
    print(f"  min count on subset: {sc_sol.objective:.0f} (optimal {sc_sol.optimal})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
