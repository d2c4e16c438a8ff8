"""A whole region on Dask: wall time, peak memory per worker, per-partition cost, scaling.

A synthetic region (:func:`_synthetic.write_region`: a street grid 100 m apart as PBF, one
grid level of subdistricts, buildings, stations, hydrants as GeoParquet) is written to a
temporary folder and run through the public region runner
(:func:`firegrid.region.runner.run_region`, form b: region-wide layers split by grid level 1)
with each worker count, each in its own process. Printed per run: wall time, the client's
peak RSS, each worker's peak RSS (psutil, sampled every 0.2 s; ``getrusage(RUSAGE_CHILDREN)``
is printed too, but it keeps the high-water mark of a child across ``exec``, so a worker
process forked from a client already holding the region reports the client's size),
per-partition seconds (mean / max) and window sizes; then the scaling ratio (1-worker / 2-worker wall time) and, from these
figures, the estimate for a 100-worker cluster over China's ~40,000 township-level units.

Per subdistrict at ``--scale 1``: 5,000 street nodes (about 7 × 7 km), 25,000 buildings,
10 stations, 2,500 hydrants; 200 subdistricts make about 1 M nodes, 5 M buildings and 2,000
stations.

    python benchmarks/bench_region.py                       # 200 subdistricts (long)
    python benchmarks/bench_region.py --subdistricts 8      # a quick check
    python benchmarks/bench_region.py --subdistricts 8 --scale 0.2 --workers 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHINA_UNITS = 40_000  # township-level units (乡镇级行政区划), about 38,600 in 2023
CLUSTER_WORKERS = 100


# ---------------------------------------------------------------------- one run (subprocess)
class _PeakSampler:
    """Peak RSS of every descendant process, sampled every ``every`` seconds."""

    def __init__(self, every: float = 0.2) -> None:
        import psutil

        self._me = psutil.Process()
        self._every = every
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self._every):
            for child in self._me.children(recursive=True):
                with_rss = self.peaks.get(child.pid, 0)
                try:
                    self.peaks[child.pid] = max(with_rss, child.memory_info().rss)
                except psutil.Error:
                    pass

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_case(cfg: str, workers: int) -> dict:
    """Run the region with ``workers`` (0: in process) and measure it."""
    from firegrid.region.runner import run_region

    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with _PeakSampler() as sampler:
        result = run_region(cfg, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    mib = 1024 * 1024
    # Dask's own helpers (resource tracker …) stay far below a worker's footprint.
    worker_peaks = sorted((v / mib for v in sampler.peaks.values() if v > 150 * mib), reverse=True)
    parts = result.partitions
    secs = parts["seconds"].astype(float)
    size_cols = [c for c in ("buildings", "nodes", "edges", "stations") if c in parts]
    return {
        "workers": workers,
        "load_average": [load0, os.getloadavg()[0]],
        "wall_s": wall,
        "run_s": result.seconds,
        "client_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "worker_peaks_mib": worker_peaks,
        "partitions": len(parts),
        "partition_mean_s": float(secs.mean()),
        "partition_max_s": float(secs.max()),
        "partition_sum_s": float(secs.sum()),
        "window_mean": {c: float(parts[c].mean()) for c in size_cols},
        "failures": len(result.failures),
        "buildings": int(len(result.layers["buildings"])),
    }


# ---------------------------------------------------------------------- driver
def _subprocess_case(cfg: Path, workers: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--case", str(cfg), str(workers)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"workers={workers} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _print_run(r: dict) -> None:
    peaks = ", ".join(f"{p:,.0f}" for p in r["worker_peaks_mib"]) or "-"
    window = ", ".join(f"{k} {v:,.0f}" for k, v in r["window_mean"].items())
    print(
        f"workers={r['workers']}: wall {r['wall_s']:.1f} s (run_region {r['run_s']:.1f} s); "
        f"client peak RSS {r['client_peak_mib']:,.0f} MiB; worker peak RSS [{peaks}] MiB "
        f"(children's ru_maxrss {r['children_peak_mib']:,.0f} MiB); {r['partitions']} partitions: "
        f"mean {r['partition_mean_s']:.2f} s, max {r['partition_max_s']:.2f} s, "
        f"sum {r['partition_sum_s']:.1f} s; mean window: {window}; failures {r['failures']}; "
        f"load average {r['load_average'][0]:.1f} → {r['load_average'][1]:.1f} "
        f"on {os.cpu_count()} cores",
        flush=True,
    )


def estimate(runs: dict[int, dict], subdistricts: int) -> list[str]:
    """The paper estimate for a 100-worker cluster over China's township-level units."""
    one = runs.get(1) or next(iter(runs.values()))
    c = one["partition_mean_s"]
    serial = max(0.0, one["wall_s"] - one["partition_sum_s"] / max(one["workers"], 1))
    lines = [f"per-partition cost c = {c:.2f} s (mean, {one['workers']} worker(s))"]
    e = None
    if 1 in runs and 2 in runs:
        ratio = runs[1]["wall_s"] / runs[2]["wall_s"]
        e = ratio / 2
        lines.append(
            f"scaling ratio T1/T2 = {runs[1]['wall_s']:.1f} / {runs[2]['wall_s']:.1f} = "
            f"{ratio:.2f} (parallel efficiency e = {ratio:.2f} / 2 = {e:.2f})"
        )
    work = CHINA_UNITS * c
    lines.append(
        f"partition work: {CHINA_UNITS:,} units × {c:.2f} s = {work:,.0f} s "
        f"= {work / 3600:.1f} worker-hours"
    )
    for eff, why in ((e, "measured"), (1.0, "dedicated cores"))[e is None :]:
        t = work / (CLUSTER_WORKERS * eff)
        lines.append(
            f"on {CLUSTER_WORKERS} workers, e = {eff:.2f} ({why}): {work:,.0f} s / "
            f"({CLUSTER_WORKERS} × {eff:.2f}) = {t:,.0f} s = {t / 3600:.2f} h"
        )
    lines += [
        f"serial client part here (load, network, windows, merge): {serial:.1f} s for "
        f"{subdistricts} subdistricts = {serial / subdistricts:.2f} s per unit; "
        f"{CHINA_UNITS:,} units × {serial / subdistricts:.2f} s = "
        f"{CHINA_UNITS * serial / subdistricts / 3600:.1f} h on the clients if it stays linear "
        "(one client per province or city, running side by side, divides it)",
        f"memory: each worker needs about {max(one['worker_peaks_mib'], default=0):,.0f} MiB "
        "(the largest sampled worker peak; a worker releases each partition's result once "
        f"fetched); the client peaked at {one['client_peak_mib']:,.0f} MiB holding the "
        f"whole region of {subdistricts} subdistricts",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subdistricts", type=int, default=200)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="size of each subdistrict relative to 5,000 nodes / 25,000 buildings",
    )
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--folder", type=Path, help="write (or reuse) the region here")
    parser.add_argument("--case", nargs=2, metavar=("CONFIG", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]))))
        return 0

    sys.path.insert(0, str(HERE))
    from _synthetic import region_layout, write_region

    layout = region_layout(args.subdistricts, args.scale)
    print(f"region: {json.dumps(layout)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="firegrid-bench-region-") as tmp:
        folder = args.folder or Path(tmp)
        cfg = folder / "region.toml"
        if not cfg.exists():
            t0 = time.perf_counter()
            write_region(folder, args.subdistricts, scale=args.scale)
            print(f"written in {time.perf_counter() - t0:.1f} s to {folder}", flush=True)
        runs = {}
        for w in (int(x) for x in args.workers.split(",")):
            runs[w] = _subprocess_case(cfg, w)
            _print_run(runs[w])
    print("\nestimate, 100 workers, China's township-level units:")
    for line in estimate(runs, args.subdistricts):
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
