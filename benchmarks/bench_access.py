"""Benchmark of the access step (building response times) and of isochrone polygons.

Run on demand (not part of the tests; it takes minutes and most of 2 cores):

    python benchmarks/bench_access.py                      # shanghai, 10k, 100k, 500k + isochrones
    python benchmarks/bench_access.py --quick              # shanghai and 10k, fewer stations
    python benchmarks/bench_access.py --sizes 100k --no-peers

Access: on the shared central-Shanghai network (../shared/data/shanghai_roads/, skipped when
absent) and on synthetic street grids of 10k, 100k and 500k nodes with 1,000 stations (100 fire
stations by engine, 900 micro-stations by e-bike) and 10 buildings per node, FireGrid's
``compile_graphs`` + ``building_access`` (edge snapping, fastest station per kind, stations
within target per kind) is timed against two peers measured in the same run on the same data:

- *ego_graph*: the osmnx-tutorial way — ``ox.add_edge_speeds``/``add_edge_travel_times``,
  buildings at their nearest node (``ox.distance.nearest_nodes``), one
  ``nx.ego_graph(G, station, radius=target, distance="travel_time")`` per station to count the
  stations reaching each building;
- *multi_source_dijkstra*: ``nx.multi_source_dijkstra`` per station kind for the fastest time
  and station, buildings at their nearest node.

Both peers do less than FireGrid (nearest node instead of nearest edge, no one-way-aware partial
edges, ego_graph gives no times, Dijkstra no counts), so the ratios flatter them. Every case runs
in its own process; peak memory is the peak resident set size sampled during the timed step
(and the process's baseline before it: the graph and layers). Peers that would run too long are
timed on a sample of stations and extrapolated — the output says so.

Isochrones: 20 stations × 1/3/5 minutes on the 100k-node grid, FireGrid's
``station_isochrones`` (raster bands, default; and exact vector bands) against the naive
geopandas way on the same reached street pieces: ``GeoSeries.buffer`` then ``dissolve``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import psutil
import shapely
from _synthetic import OSM  # benchmarks/_synthetic.py (run as a script)

from firegrid.spatial.access.travel_times import building_access, compile_graphs
from firegrid.spatial.network.profiles import ENGINE_SPEEDS_KMH, AccessParams

CRS = "EPSG:32651"
SIZES = {"10k": 10_000, "100k": 100_000, "500k": 500_000}
# Peers on more nodes than this are timed on a sample of stations and extrapolated.
EGO_SAMPLE_ABOVE = 50_000
EGO_SAMPLE = 100


# ---------------------------------------------------------------------- inputs
def grid_network(n_nodes: int, seed: int = 0) -> nx.MultiDiGraph:
    """An osmnx-like street grid (100 m blocks, jittered nodes), in UTM 51N metres.

    Every 10th street is primary, every 5th secondary, the rest residential; 15 % of the
    residential blocks are one-way. Nodes carry x/y, edges length/highway/oneway.
    """
    rng = np.random.default_rng(seed)
    side = int(round(np.sqrt(n_nodes)))
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x = 350_000 + ii.ravel() * 100.0 + rng.normal(0, 8, side * side)
    y = 3_450_000 + jj.ravel() * 100.0 + rng.normal(0, 8, side * side)
    idx = (ii * side + jj).astype(np.int64)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    line = np.concatenate([jj[:-1, :].ravel(), ii[:, :-1].ravel()])  # street index
    hw = np.where(line % 10 == 0, "primary", np.where(line % 5 == 0, "secondary", "residential"))
    oneway = (hw == "residential") & (rng.random(len(u)) < 0.15)
    length = np.hypot(x[u] - x[v], y[u] - y[v])
    G = nx.MultiDiGraph(crs=CRS)
    G.add_nodes_from((int(i), {"x": float(a), "y": float(b)}) for i, a, b in zip(
        range(len(x)), x, y, strict=True))  # fmt: skip
    fwd = [
        (int(a), int(b), 0, {"length": float(L), "highway": str(h), "oneway": bool(o)})
        for a, b, L, h, o in zip(u, v, length, hw, oneway, strict=True)
    ]
    back = [(b, a, 0, dict(d, reversed=True)) for a, b, _, d in fwd if not d["oneway"]]
    G.add_edges_from(fwd)
    G.add_edges_from(back)
    return G


def shanghai_network() -> nx.MultiDiGraph:
    from firegrid.spatial.network.load import read_network

    # The osmnx MultiDiGraph: the peers below (ego_graph, msd) need networkx.
    return read_network(OSM).to_networkx()


def layers(G: nx.MultiDiGraph, n_stations: int, per_node: int, seed: int = 1):
    """Stations a few metres off nodes; buildings 5-40 m off random street edges (points)."""
    rng = np.random.default_rng(seed)
    nodes = np.array(list(G.nodes))
    xy = np.array([(G.nodes[n]["x"], G.nodes[n]["y"]) for n in nodes])
    pick = rng.choice(len(nodes), n_stations, replace=False)
    sxy = xy[pick] + rng.uniform(-8, 8, (n_stations, 2))
    n_fire = max(1, n_stations // 10)
    stations = gpd.GeoDataFrame(
        {
            "station_id": [f"S{i:04d}" for i in range(n_stations)],
            "kind": ["fire_station"] * n_fire + ["micro_station"] * (n_stations - n_fire),
            "vehicle": ["engine"] * n_fire + ["ebike"] * (n_stations - n_fire),
            "turnout_s": 60.0,
        },
        geometry=shapely.points(sxy),
        crs=G.graph["crs"],
    )
    index = {n: i for i, n in enumerate(nodes)}
    eu = np.array([index[a] for a, b in G.edges()])
    ev = np.array([index[b] for a, b in G.edges()])
    n_b = per_node * len(nodes)
    e = rng.integers(0, len(eu), n_b)
    t = rng.random(n_b)
    p = xy[eu[e]] * (1 - t[:, None]) + xy[ev[e]] * t[:, None]
    d = xy[ev[e]] - xy[eu[e]]
    norm = np.hypot(d[:, 0], d[:, 1])[:, None]
    perp = np.column_stack([-d[:, 1], d[:, 0]]) / np.where(norm > 0, norm, 1)
    p = p + perp * rng.uniform(5, 40, n_b)[:, None] * rng.choice([-1, 1], n_b)[:, None]
    buildings = gpd.GeoDataFrame(
        {"building_id": np.arange(n_b)}, geometry=shapely.points(p), crs=G.graph["crs"]
    )
    return stations, buildings


# ---------------------------------------------------------------------- measuring
class PeakRSS:
    """Peak resident set size of this process, sampled every 10 ms while active (bytes)."""

    def __enter__(self):
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def measure(fn):
    with PeakRSS() as m:
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
    return result, dict(s=seconds, peak_gb=m.peak / 2**30, base_gb=m.base / 2**30)


# ---------------------------------------------------------------------- one case per process
def build_case(case: str, n_stations: int, per_node: int):
    G = shanghai_network() if case == "shanghai" else grid_network(SIZES[case])
    stations, buildings = layers(G, n_stations, per_node)
    return G, stations, buildings


def worker(case: str, method: str, n_stations: int, per_node: int) -> dict:
    G, stations, buildings = build_case(case, n_stations, per_node)
    info = dict(case=case, method=method, nodes=G.number_of_nodes(), edges=G.number_of_edges(),
                buildings=len(buildings), stations=len(stations))  # fmt: skip
    params = AccessParams()
    if method == "firegrid":
        warnings.simplefilter("ignore")
        graphs, m1 = measure(lambda: compile_graphs(G, params, vehicles=("engine", "ebike")))
        out, m2 = measure(lambda: building_access(buildings, stations, graphs, params=params))
        info.update(compile_s=m1["s"], access_s=m2["s"], s=m1["s"] + m2["s"],
                    peak_gb=max(m1["peak_gb"], m2["peak_gb"]), base_gb=m1["base_gb"],
                    covered_3min=float(out["covered_3min"].mean()),
                    covered_5min=float(out["covered_5min"].mean()))  # fmt: skip
    elif method == "ego_graph":
        info.update(peer_ego(G, stations, buildings, params))
    elif method == "msd":
        info.update(peer_msd(G, stations, buildings, params))
    return info


def _peer_prepare(G, stations, buildings):
    import osmnx as ox

    G = ox.add_edge_speeds(G, hwy_speeds=ENGINE_SPEEDS_KMH, fallback=20.0)
    G = ox.add_edge_travel_times(G)
    bx, by = shapely.get_coordinates(buildings.geometry.to_numpy()).T
    sx, sy = shapely.get_coordinates(stations.geometry.to_numpy()).T
    b_node = ox.distance.nearest_nodes(G, bx, by)
    s_node = ox.distance.nearest_nodes(G, sx, sy)
    return G, np.asarray(b_node), np.asarray(s_node)


def peer_ego(G, stations, buildings, params) -> dict:
    """osmnx tutorial: ego_graph per station; stations reaching each building's nearest node."""
    kinds = stations["kind"].to_numpy()
    n = G.number_of_nodes()
    sample = EGO_SAMPLE if n > EGO_SAMPLE_ABOVE else len(stations)
    rng = np.random.default_rng(3)
    order = rng.permutation(len(stations))[:sample]

    times = {}

    def run():
        t0 = time.perf_counter()
        H, b_node, s_node = _peer_prepare(G, stations, buildings)
        index = {nd: i for i, nd in enumerate(H.nodes)}
        times["prepare"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        count = np.zeros(len(index), dtype=np.int64)
        for k in order:
            target = params.target_fire_s if kinds[k] == "fire_station" else params.target_micro_s
            sub = nx.ego_graph(H, s_node[k], radius=target - 60.0, distance="travel_time")
            count[[index[x] for x in sub.nodes]] += 1
        times["loop"] = time.perf_counter() - t0
        return count[np.array([index[x] for x in b_node])]

    _, m = measure(run)
    scale = len(stations) / sample
    # Only the per-station loop scales with the number of stations.
    out = dict(s=m["s"] + times["loop"] * (scale - 1), peak_gb=m["peak_gb"], base_gb=m["base_gb"])
    if scale > 1:
        out["note"] = (
            f"timed {sample} of {len(stations)} stations: preparation {times['prepare']:.1f} s "
            f"+ ego_graph loop {times['loop']:.1f} s × {scale:g}"
        )
    return out


def peer_msd(G, stations, buildings, params) -> dict:
    """networkx multi_source_dijkstra per kind: fastest station time at each nearest node."""
    kinds = stations["kind"].to_numpy()

    def run():
        H, b_node, s_node = _peer_prepare(G, stations, buildings)
        res = {}
        for kind in ("fire_station", "micro_station"):
            src = set(s_node[kinds == kind].tolist())
            dist, paths = nx.multi_source_dijkstra(H, src, weight="travel_time")
            res[kind] = np.array([dist.get(x, np.inf) + 60.0 for x in b_node])
        return res

    _, m = measure(run)
    return dict(s=m["s"], peak_gb=m["peak_gb"], base_gb=m["base_gb"])


# ---------------------------------------------------------------------- isochrones
def iso_worker(n_nodes: int) -> dict:
    from firegrid.spatial.access.isochrones import (
        cut_segments,
        reached_intervals,
        station_isochrones,
    )
    from firegrid.spatial.network.routing import node_costs

    G = grid_network(n_nodes)
    stations, _ = layers(G, 20, 0, seed=5)
    stations["kind"] = "fire_station"
    stations["vehicle"] = "engine"
    params = AccessParams()
    graphs = compile_graphs(G, params, vehicles=("engine",))
    warnings.simplefilter("ignore")
    res = {"nodes": G.number_of_nodes(), "polygons": 60}
    # First call cold (snapping index, vertex tables built on the way), then warm.
    for label, method in (("raster_cold", "raster"), ("vector", "vector"), ("raster", "raster")):
        iso, m = measure(lambda method=method: station_isochrones(stations, graphs, params=params,
                                                                 method=method))  # fmt: skip
        res[f"ours_{label}_s"] = m["s"]
        res[f"ours_{label}_km2"] = float(iso.area.sum() / 1e6)
    # The same reached street pieces, buffered and dissolved the naive geopandas way.
    rg = graphs["engine"]
    from firegrid.spatial.access.travel_times import snap_stations, station_groups

    g = station_groups(stations, params)[0]
    ss = snap_stations(rg, stations, g, params)
    t0 = time.perf_counter()
    dist = node_costs(rg, ss, source_offset=g.turnout_s, cutoff=300.0)
    lines, groups = [], []
    for k, T in enumerate((60.0, 180.0, 300.0)):
        row, seg, lo, hi = reached_intervals(rg, ss, dist, T, source_offset=g.turnout_s)
        lines.append(cut_segments(rg, seg, lo, hi))
        groups.append(row * 3 + k)
    res["reach_s"] = time.perf_counter() - t0
    lines = np.concatenate(lines)
    groups = np.concatenate(groups)
    ok = ~shapely.is_missing(lines)
    frame = gpd.GeoDataFrame({"group": groups[ok]}, geometry=lines[ok], crs=rg.crs)

    def naive():
        buf = frame.set_geometry(frame.buffer(params.street_buffer_m))
        return buf.dissolve(by="group")

    out, m = measure(naive)
    res["naive_s"] = m["s"] + res["reach_s"]
    res["naive_km2"] = float(out.area.sum() / 1e6)
    res["pieces"] = int(ok.sum())
    return res


# ---------------------------------------------------------------------- driver
def run_child(args: list[str]) -> dict | None:
    cmd = [sys.executable, __file__, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
        print(f"  ! {' '.join(args)} failed:\n{proc.stderr[-2000:]}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="shanghai,10k,100k,500k",
                    help="comma list of shanghai, 10k, 100k, 500k")  # fmt: skip
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--shanghai-stations", type=int, default=100,
                    help="stations on the Shanghai network (3.8k compiled nodes)")  # fmt: skip
    ap.add_argument("--per-node", type=int, default=10, help="buildings per node")
    ap.add_argument("--quick", action="store_true", help="shanghai and 10k, 200 stations")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--methods", default="firegrid,ego_graph,msd",
                    help="comma list of firegrid, ego_graph, msd")  # fmt: skip
    ap.add_argument("--no-iso", action="store_true")
    ap.add_argument("--iso-nodes", type=int, default=100_000)
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "METHOD"), help=argparse.SUPPRESS)
    ap.add_argument("--iso-worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.worker:
        case, method = a.worker
        n_st = a.shanghai_stations if case == "shanghai" else a.stations
        print(json.dumps(worker(case, method, n_st, a.per_node)))
        return 0
    if a.iso_worker:
        print(json.dumps(iso_worker(a.iso_nodes)))
        return 0

    sizes = ["shanghai", "10k"] if a.quick else [s.strip() for s in a.sizes.split(",") if s]
    if a.quick:
        a.stations = 200
        a.iso_nodes = min(a.iso_nodes, 10_000)
    if "shanghai" in sizes and not OSM.exists():
        print(f"shanghai: skipped, {OSM} not found")
        sizes.remove("shanghai")
    print(f"machine: {os.cpu_count()} cpus, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"each case runs in its own process\n")  # fmt: skip
    common = ["--stations", str(a.stations), "--per-node", str(a.per_node),
              "--shanghai-stations", str(a.shanghai_stations)]  # fmt: skip
    rows = []
    for case in sizes:
        methods = [m for m in a.methods.split(",") if m]
        if a.no_peers:
            methods = [m for m in methods if m == "firegrid"]
        res = {}
        for method in methods:
            r = run_child(["--worker", case, method, *common])
            if r is None:
                continue
            res[method] = r
            extra = f"  ({r['note']})" if r.get("note") else ""
            detail = (
                f" = compile {r['compile_s']:.2f} + access {r['access_s']:.2f}"
                if method == "firegrid"
                else ""
            )
            print(f"{case:>8} {method:<10} {r['s']:8.2f} s{detail}  peak {r['peak_gb']:.2f} GB "
                  f"(base {r['base_gb']:.2f} GB){extra}", flush=True)  # fmt: skip
        if "firegrid" in res:
            f = res["firegrid"]
            row = dict(case=case, nodes=f["nodes"], buildings=f["buildings"],
                       stations=f["stations"], firegrid_s=f["s"], firegrid_peak_gb=f["peak_gb"])  # fmt: skip
            for peer in ("ego_graph", "msd"):
                if peer in res:
                    row[f"{peer}_s"] = res[peer]["s"]
                    row[f"{peer}_ratio"] = res[peer]["s"] / f["s"]
            rows.append(row)
            ratios = ", ".join(
                f"{p} / firegrid = {row[p + '_ratio']:.1f}×" for p in ("ego_graph", "msd")
                if p + "_ratio" in row
            )  # fmt: skip
            print(f"{'':>8} {f['nodes']:,} nodes, {f['buildings']:,} buildings, "
                  f"{f['stations']} stations" + (f"; {ratios}" if ratios else ""), flush=True)  # fmt: skip
    if rows:
        print("\nsummary (seconds; ratio = peer time / FireGrid time, same run)")
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))

    if not a.no_iso:
        print(f"\nisochrones: 20 stations × 1/3/5 min on a {a.iso_nodes:,}-node grid")
        r = run_child(["--iso-worker", "--iso-nodes", str(a.iso_nodes)])
        if r:
            print(
                f"  reached street pieces: {r['pieces']:,} (routing and cuts {r['reach_s']:.2f} s)"
            )
            print(
                f"  firegrid raster  {r['ours_raster_s']:6.2f} s  area {r['ours_raster_km2']:.2f} km²"
                f" (first call, building its indexes: {r['ours_raster_cold_s']:.2f} s)"
            )
            print(
                f"  firegrid vector  {r['ours_vector_s']:6.2f} s  area {r['ours_vector_km2']:.2f} km²"
            )
            print(f"  naive geopandas  {r['naive_s']:6.2f} s  area {r['naive_km2']:.2f} km² "
                  "(buffer + dissolve, same reached pieces; routing included)")  # fmt: skip
            print(f"  ratio naive / firegrid raster = {r['naive_s'] / r['ours_raster_s']:.1f}×, "
                  f"naive / vector = {r['naive_s'] / r['ours_vector_s']:.1f}×")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
