"""Reading OSM files into routing graphs: FireGrid's reader against osmnx and a bare scan.

Cases, each in its own process (time and peak RSS of that process):

- *scan* (the floor): one pyosmium pass with a node-location cache collecting every highway
  way's node pairs and coordinates into numpy arrays; nothing else.
- *firegrid*: ``read_network`` (pyosmium → GraphTable) and ``RoutingGraph.from_table`` for the
  engine, e-bike and foot profiles.
- *validate*: what ``firegrid validate`` does with the network: ``read_network`` and
  ``network_report`` (engine graph, weak and strong components, unknown values).
- *osmnx*: the previous path: PBF → OSM XML (pyosmium) → ``osmnx.graph_from_xml`` →
  ``graph_table`` → ``RoutingGraph.from_table`` for the three profiles.

- *access_floor* / *access* (``--access``): the whole ``firegrid access`` command from files
  (GeoParquet buildings and stations over the grid) in a child process, against its floor:
  the scan, nearest-node snapping and one min-only Dijkstra per station kind. Printed: time,
  peak RSS, the ratio to the floor, the command's own step timings and the size it wrote.

Files: a synthetic street grid written as PBF with pyosmium (100 m blocks, ways of 10 blocks,
every 10th street primary, every 4th residential street one-way; 500k nodes, ``--quick`` 50k)
and the clipped Lujiazui extract (``../shared/data/shanghai_roads/lujiazui_clipped.osm.pbf``,
skipped when absent).

    python benchmarks/bench_network.py [--quick] [--nodes 500000] [--no-osmnx-grid]
    python benchmarks/bench_network.py --access --access-only --nodes 100000 \
        --buildings 1000000 --stations 1000
    python benchmarks/bench_network.py --access --access-only --nodes 30000 \
        --buildings 300000 --keep /tmp/b30k   # keep the files to profile the command on
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPPED = ROOT.parent / "shared" / "data" / "shanghai_roads" / "lujiazui_clipped.osm.pbf"
PROFILES = ("engine", "ebike", "foot")


# ---------------------------------------------------------------------- the synthetic file
def write_grid_pbf(path: Path, n_nodes: int) -> Path:
    """A square street grid of about ``n_nodes`` nodes, 100 m blocks, near Shanghai."""
    import math

    import osmium
    from osmium.osm.mutable import Node, Way

    side = int(math.isqrt(n_nodes))
    lon0, lat0 = 121.30, 31.00
    dlon = 100.0 / (111_320.0 * math.cos(math.radians(lat0)))
    dlat = 100.0 / 110_574.0
    with osmium.SimpleWriter(str(path), overwrite=True) as w:
        for i in range(side):
            for j in range(side):
                w.add_node(Node(id=1 + i * side + j, location=(lon0 + j * dlon, lat0 + i * dlat)))
        wid = 1
        for horizontal in (True, False):
            for i in range(side):
                ids = [1 + (i * side + j if horizontal else j * side + i) for j in range(side)]
                if i % 10 == 0:
                    tags = {"highway": "primary", "name": f"干路{i}"}
                elif i % 4 == 1:
                    tags = {"highway": "residential", "oneway": "yes"}
                else:
                    tags = {"highway": "residential"}
                for k in range(0, side - 1, 10):
                    w.add_way(Way(id=wid, nodes=ids[k : k + 11], tags=tags))
                    wid += 1
    return path


# ---------------------------------------------------------------------- cases (subprocess)
def _scan_ways(path: str) -> tuple[list, list, list, list]:
    """One pyosmium pass over the highway ways: node refs, x and y (1e-7 degrees), way lengths."""
    import osmium

    refs, xs, ys, lens = [], [], [], []
    proc = (
        osmium.FileProcessor(path)
        .with_locations("flex_mem")
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for obj in proc:
        if obj.is_way():
            nodes = obj.nodes
            refs.extend([n.ref for n in nodes])
            xs.extend([n.x for n in nodes])
            ys.extend([n.y for n in nodes])
            lens.append(len(nodes))
    return refs, xs, ys, lens


def case_scan(path: str) -> dict:
    import numpy as np

    refs, xs, ys, lens = _scan_ways(path)
    refs = np.asarray(refs, dtype=np.int64)
    xy = np.column_stack([np.asarray(xs), np.asarray(ys)]) * 1e-7
    last = np.cumsum(lens) - 1
    pair = np.ones(len(refs), dtype=bool)
    pair[last] = False
    uv = np.column_stack([refs[pair], refs[np.flatnonzero(pair) + 1]])
    return {"pairs": int(len(uv)), "coords": int(len(xy))}


def case_firegrid(path: str) -> dict:
    from firegrid.spatial.network.load import read_network
    from firegrid.spatial.network.profiles import default_profile
    from firegrid.spatial.network.routing import RoutingGraph

    t0 = time.perf_counter()
    table = read_network(path)
    t_read = time.perf_counter() - t0
    edges = 0
    for p in PROFILES:
        edges += RoutingGraph.from_table(table, default_profile(p)).csr.nnz
    return {"nodes": table.n_nodes, "edges": table.n_edges, "read_s": t_read, "csr_edges": edges}


def case_validate(path: str) -> dict:
    from firegrid.spatial.network.load import network_report, read_network

    rep = network_report(read_network(path))
    return {"summary": rep.summary}


def case_osmnx(path: str) -> dict:
    import osmium
    import osmnx as ox

    from firegrid.spatial.network.load import project_network
    from firegrid.spatial.network.profiles import WAY_TAGS, default_profile
    from firegrid.spatial.network.routing import RoutingGraph, graph_table

    ox.settings.useful_tags_way = list(dict.fromkeys([*ox.settings.useful_tags_way, *WAY_TAGS]))
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "roads.osm"
        node_ids: set[int] = set()
        for way in osmium.FileProcessor(path, osmium.osm.WAY).with_filter(
            osmium.filter.KeyFilter("highway")
        ):
            node_ids.update(n.ref for n in way.nodes)
        with osmium.SimpleWriter(str(xml), overwrite=True) as writer:
            for obj in osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY):
                if obj.is_node():
                    if obj.id in node_ids:
                        writer.add_node(obj)
                elif "highway" in obj.tags:
                    writer.add_way(obj)
        try:
            G = ox.graph_from_xml(xml, simplify=True, retain_all=True)
        except Exception as exc:  # the clipped extract: osmnx refuses missing nodes
            return {"error": f"{type(exc).__name__}: {exc}"[:160]}
    table = graph_table(project_network(G))
    edges = 0
    for p in PROFILES:
        edges += RoutingGraph.from_table(table, default_profile(p)).csr.nnz
    return {"nodes": table.n_nodes, "edges": table.n_edges, "csr_edges": edges}


def write_district(folder: Path, pbf: Path, n_buildings: int, n_stations: int) -> Path:
    """Buildings and stations scattered over the grid's extent, a grid cell, and a config."""
    import geopandas as gpd
    import numpy as np
    import osmium
    import shapely

    lon, lat = [], []
    for obj in osmium.FileProcessor(str(pbf), osmium.osm.NODE):
        lon.append(obj.location.lon)
        lat.append(obj.location.lat)
    x0, x1, y0, y1 = min(lon), max(lon), min(lat), max(lat)
    rng = np.random.default_rng(0)
    b = shapely.points(rng.uniform(x0, x1, n_buildings), rng.uniform(y0, y1, n_buildings))
    gpd.GeoDataFrame({"building_id": np.arange(n_buildings)}, geometry=b, crs=4326).to_parquet(
        folder / "buildings.parquet"
    )
    n_fire = max(1, n_stations // 10)
    s = shapely.points(rng.uniform(x0, x1, n_stations), rng.uniform(y0, y1, n_stations))
    gpd.GeoDataFrame(
        {
            "station_id": [f"S{i}" for i in range(n_stations)],
            "kind": ["fire_station"] * n_fire + ["micro_station"] * (n_stations - n_fire),
            "vehicle": ["engine"] * n_fire + ["ebike"] * (n_stations - n_fire),
        },
        geometry=s,
        crs=4326,
    ).to_parquet(folder / "stations.parquet")
    gpd.GeoDataFrame({"grid_id": ["G1"], "name": ["grid"], "level": [1]},
                     geometry=[shapely.box(x0, y0, x1, y1)], crs=4326).to_parquet(
        folder / "grids.parquet"
    )  # fmt: skip
    cfg = folder / "district.toml"
    cfg.write_text(
        '[district]\nname = "benchmark grid"\n\n'
        f'[network]\nsource = "{pbf}"\n\n'
        + "".join(f'[layers.{k}]\nfile = "{k}.parquet"\n\n'
                  for k in ("grids", "buildings", "stations"))
        + "[output]\nmap = false\nexcel = false\n",
        encoding="utf-8",
    )  # fmt: skip
    return cfg


def case_access_floor(cfg_path: str) -> dict:
    """Floor of ``firegrid access``: scan, nearest-node snapping, one min-only Dijkstra per
    station kind (engine for fire stations, e-bike for micro-stations), lengths / class speed."""
    import geopandas as gpd
    import numpy as np
    import pyproj
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra
    from scipy.spatial import cKDTree

    folder = Path(cfg_path).parent
    pbf = next(line.split('"')[1] for line in Path(cfg_path).read_text().splitlines()
               if line.startswith("source"))  # fmt: skip
    refs, xs, ys, lens = _scan_ways(pbf)
    refs = np.asarray(refs, dtype=np.int64)
    ids, idx = np.unique(refs, return_inverse=True)
    lon = np.zeros(len(ids))
    lat = np.zeros(len(ids))
    lon[idx], lat[idx] = np.asarray(xs) * 1e-7, np.asarray(ys) * 1e-7
    crs = pyproj.CRS.from_epsg(32651)
    x, y = pyproj.Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    last = np.cumsum(lens) - 1
    pair = np.ones(len(refs), dtype=bool)
    pair[last] = False
    u, v = idx[pair], idx[np.flatnonzero(pair) + 1]
    w = np.hypot(x[u] - x[v], y[u] - y[v])
    n = len(ids)
    tree = cKDTree(np.c_[x, y])
    b = gpd.read_parquet(folder / "buildings.parquet").to_crs(crs)
    s = gpd.read_parquet(folder / "stations.parquet").to_crs(crs)
    _, bn = tree.query(np.c_[b.geometry.x, b.geometry.y])
    _, sn = tree.query(np.c_[s.geometry.x, s.geometry.y])
    reached = 0
    for kind, mps in (("fire_station", 30 / 3.6), ("micro_station", 18 / 3.6)):
        g = sp.csr_matrix((np.r_[w, w] / mps, (np.r_[u, v], np.r_[v, u])), shape=(n, n))
        d = dijkstra(g, indices=np.unique(sn[(s["kind"] == kind).to_numpy()]), min_only=True)
        reached += int(np.isfinite(d[bn]).sum())
    return {"buildings": len(b), "reached": reached}


def _process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux /proc)."""
    pids, i = [pid], 0
    while i < len(pids):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pids[i]}/task"):
                with open(f"/proc/{pids[i]}/task/{task}/children") as f:
                    pids += [int(c) for c in f.read().split()]
        i += 1
    return pids


def _kib(path: str, key: str) -> int:
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def _tree_memory_mib(pid: int) -> float:
    """Memory of the command's processes: its RSS alone, or, while it has forked children
    (which share its pages until either writes them), the sum of their proportional set
    sizes (each shared page counted once in all)."""
    pids = _process_tree(pid)
    if len(pids) == 1:
        return _kib(f"/proc/{pid}/status", "VmRSS:") / 1024
    return sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids) / 1024


def case_access_command(cfg_path: str) -> dict:
    out = Path(cfg_path).parent / "out"
    proc = subprocess.Popen(["firegrid", "access", cfg_path, "--out", str(out), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    # Sampled every 0.5 s (reading a process's page map slows it, so not more often); the
    # command forks a second process for parts of a city's run.
    tree_mib = 0.0
    while proc.poll() is None:
        tree_mib = max(tree_mib, _tree_memory_mib(proc.pid))
        time.sleep(0.5)
    _, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(err.strip()[-300:])
    # The command runs in a child process: its own peak RSS, and its processes' sampled sum.
    found = {"child_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
             "tree_mib": tree_mib}  # fmt: skip
    summary = out / "summary.json"
    if summary.exists():  # the command's own step timings, to see where the time goes
        found["steps_s"] = json.loads(summary.read_text(encoding="utf-8")).get("timings_s")
    found["written_mib"] = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    return found


CASES = {"scan": case_scan, "firegrid": case_firegrid, "validate": case_validate,
         "osmnx": case_osmnx, "access_floor": case_access_floor,
         "access": case_access_command}  # fmt: skip


def run_case(name: str, path: Path) -> dict:
    """Run one case in a fresh process: wall time and peak RSS of that process alone."""
    code = (
        "import json, resource, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from benchmarks.bench_network import CASES\n"
        "t0 = time.perf_counter()\n"
        f"out = CASES[{name!r}]({str(path)!r})\n"
        "out['time_s'] = time.perf_counter() - t0\n"
        "out['rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1][:160] if res.stderr else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_access_command(cfg: Path, *, repeat: int = 1) -> list[dict]:
    """Time ``firegrid access`` against its floor ``repeat`` times, floor and command back to
    back each time (the shared machine's speed drifts by tens of percent within minutes, so
    each ratio compares a pair run together); print each pair, and the median over pairs."""
    pairs, found = [], []
    for i in range(repeat):
        if repeat > 1:
            print(f"  pair {i + 1} of {repeat}:")
        pairs.append({k: run_case(k, cfg) for k in ("access_floor", "access")})
        if (got := _print_pair(pairs[-1])) is not None:
            found.append(got)
    if len(found) > 1:
        ratios = sorted(r for r, _ in found)
        peak = max(m for _, m in found)
        print(
            f"  median of {len(found)} pairs: {statistics.median(ratios):.2f}× the floor "
            f"(range {ratios[0]:.2f}–{ratios[-1]:.2f}×; target ≤ 3×); largest peak "
            f"{peak / 1024:.2f} GiB (target < 6 GiB)"
        )
    return pairs


def _print_pair(a: dict) -> tuple[float, float] | None:
    """Print a floor and command pair; their ratio and the command's peak (MiB)."""
    floor = a["access_floor"]
    for k, r in a.items():
        if "error" in r:
            print(f"  {k:<13} fails: {r['error']}")
            continue
        # The command's peak is its processes' (sampled sum, or its own peak RSS if larger);
        # the floor runs in the case process.
        rss = max(r["rss_mib"], r.get("child_rss_mib", 0), r.get("tree_mib", 0))
        ratio = f"{r['time_s'] / floor['time_s']:6.2f}× floor" if "time_s" in floor else ""
        print(f"  {k:<13} {r['time_s']:8.2f} s {rss:8.0f} MiB peak RSS  {ratio}")
        if r.get("steps_s"):
            steps = ", ".join(f"{s} {t:.1f} s" for s, t in r["steps_s"].items())
            print(f"  {'':<13} steps: {steps}; outputs {r['written_mib']:.0f} MiB")
    if not all("time_s" in r for r in a.values()):
        return None
    cmd = a["access"]
    rss = max(cmd["rss_mib"], cmd.get("child_rss_mib", 0), cmd.get("tree_mib", 0))
    ratio = cmd["time_s"] / floor["time_s"]
    print(
        f"  access / floor: {ratio:.2f}× (target ≤ 3×: {'met' if ratio <= 3 else 'NOT met'}); "
        f"peak {rss / 1024:.2f} GiB (target < 6 GiB: {'met' if rss < 6144 else 'NOT met'})"
    )
    return ratio, rss


def _row(label: str, r: dict, floor: dict | None) -> str:
    if "error" in r:
        return f"  {label:<10} fails: {r['error']}"
    ratio = f"{r['time_s'] / floor['time_s']:6.2f}× scan" if floor and "time_s" in floor else ""
    extra = ""
    if "nodes" in r:
        extra = f"  {r['nodes']:,} nodes, {r['edges']:,} edges"
    if "read_s" in r:
        extra += f" (read {r['read_s']:.2f} s)"
    return f"  {label:<10} {r['time_s']:8.2f} s {r['rss_mib']:8.0f} MiB  {ratio}{extra}"


def bench_file(title: str, path: Path, cases: list[str]) -> dict:
    print(f"\n{title}: {path.name} ({path.stat().st_size / 2**20:.1f} MiB)")
    results = {}
    for name in cases:
        results[name] = run_case(name, path)
        print(_row(name, results[name], results.get("scan")), flush=True)
    return results


@contextlib.contextmanager
def _work_folder(keep: Path | None):
    """A temporary folder, or ``keep`` (created, left in place) to profile the files later."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="firegrid_bench_") as tmp:
            yield tmp
        return
    keep.mkdir(parents=True, exist_ok=True)
    yield str(keep)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50k-node grid instead of 500k")
    ap.add_argument("--nodes", type=int, default=None, help="grid size (nodes)")
    ap.add_argument(
        "--access",
        action="store_true",
        help="also time the whole `firegrid access` command against its floor",
    )
    ap.add_argument(
        "--buildings",
        type=int,
        default=None,
        help="buildings for --access (default: one per 5 grid nodes)",
    )
    ap.add_argument("--stations", type=int, default=1000, help="stations for --access")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="with --access: N floor and command pairs, and their median ratio")  # fmt: skip
    ap.add_argument(
        "--access-only",
        action="store_true",
        help="with --access: only the command and its floor (no reader cases)",
    )
    ap.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="write the files into FOLDER and keep them (to profile the command on them)",
    )
    ap.add_argument("--no-osmnx-grid", action="store_true",
                    help="skip the osmnx path on the grid (minutes and GiB at 500k)")  # fmt: skip
    args = ap.parse_args(argv)
    n = args.nodes or (50_000 if args.quick else 500_000)
    with _work_folder(args.keep) as tmp:
        grid = Path(tmp) / f"grid_{n}.osm.pbf"
        t0 = time.perf_counter()
        write_grid_pbf(grid, n)
        print(f"synthetic grid written in {time.perf_counter() - t0:.1f} s")
        cases = [] if args.access_only else ["scan", "firegrid", "validate"]
        if not (args.no_osmnx_grid or args.access_only):
            cases.append("osmnx")
        g = bench_file(f"synthetic grid, {n:,} nodes", grid, cases) if cases else {}
        if args.access:
            n_b = args.buildings or n // 5
            t0 = time.perf_counter()
            cfg = write_district(Path(tmp), grid, n_b, args.stations)
            print(f"\nfiregrid access on the grid ({n_b:,} buildings, {args.stations:,} "
                  f"stations; inputs written in {time.perf_counter() - t0:.1f} s):")  # fmt: skip
            bench_access_command(cfg, repeat=args.repeat)
        if args.access_only:
            pass
        elif CLIPPED.exists():
            bench_file("clipped Lujiazui extract", CLIPPED, ["scan", "firegrid", "validate",
                                                             "osmnx"])  # fmt: skip
        else:
            print(f"\nclipped extract absent ({CLIPPED}): skipped")
    if "time_s" in g.get("validate", {}) and "time_s" in g.get("scan", {}):
        r = g["validate"]["time_s"] / g["scan"]["time_s"]
        print(f"\nvalidate / scan on the grid: {r:.2f}× (target ≤ 2.5×), "
              f"{g['validate']['rss_mib']:.0f} MiB (target < 2048)")  # fmt: skip
    if "time_s" in g.get("osmnx", {}) and "time_s" in g.get("firegrid", {}):
        r = g["osmnx"]["time_s"] / g["firegrid"]["time_s"]
        print(f"osmnx path / firegrid on the grid: {r:.1f}× slower")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
