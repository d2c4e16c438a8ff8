"""Reading an OSM file into a GraphTable: ``read_osm`` against its own floor and the scan it
replaced.

Run on demand: ``python benchmarks/bench_osm_scan.py [--nodes 500000] [--repeat 3]
[--pbf FILE ...]``.

Cases, each timed ``--repeat`` times in this process (best shown):

- *libosmium pass* (the floor): the one pass ``read_osm`` makes, and nothing else: the file
  decoded, node locations cached, the ``highway``/``barrier``/restriction candidates written
  by libosmium as OPL text; no Python per object, no parsing, no graph.
- *read_osm*: the whole reader (the pass, the OPL parsed with pandas, the graph built).
- *read_osm, per-node scan*: the reader with the scan it had before (frozen in
  tests/_osm_reference.py: pyosmium's Python objects, three Python calls per way node); the
  graph build is today's. Both readers' GraphTables must be identical; the script stops if not.

Files: the synthetic street grid of ``benchmarks/bench_network.py`` (``--nodes``, written to a
temporary folder), the clipped Lujiazui extract when present, and any ``--pbf`` given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench_network import CLIPPED, write_grid_pbf  # benchmarks/bench_network.py (a script)

from firegrid.spatial.network import osm

ROOT = Path(__file__).resolve().parents[1]


def _reference():
    # The frozen per-node scan lives with the tests, which check against it too.
    sys.path.insert(0, str(ROOT))
    import tests._osm_reference as reference

    return reference


def libosmium_pass(path: Path) -> None:
    """The reader's pass alone: locations cached, candidates written as OPL by libosmium."""
    import osmium

    with tempfile.TemporaryDirectory(prefix="firegrid_bench_") as tmp:
        writer = osmium.SimpleWriter(
            osmium.io.File(
                str(Path(tmp) / "ways.opl"), "opl,add_metadata=false,locations_on_ways=true"
            )
        )
        proc = (
            osmium.FileProcessor(osmium.io.File(str(path), osm.osm_format(path)))
            .with_locations("flex_mem")
            .with_filter(osmium.filter.KeyFilter("highway", "barrier", "restriction", "type"))
            .with_filter(writer)
            .with_filter(osmium.filter.EntityFilter(osmium.osm.NODE | osmium.osm.RELATION))
        )
        for _ in proc:
            pass
        writer.close()


def read_with_reference_scan(path: Path):
    """``read_osm`` with the per-node pyosmium scan it had before (the build is today's)."""
    fast = osm._scan
    osm._scan = _reference().reference_scan
    try:
        return osm.read_osm(path)
    finally:
        osm._scan = fast


def best_of(repeat: int, fn, *args):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times), times, out


def bench_file(path: Path, repeat: int) -> None:
    print(f"\n{path.name} ({path.stat().st_size / 2**20:.1f} MiB)")
    floor, floor_all, _ = best_of(repeat, libosmium_pass, path)
    new, new_all, table = best_of(repeat, osm.read_osm, path)
    old, old_all, old_table = best_of(repeat, read_with_reference_scan, path)
    differ = _reference().graph_differences(old_table, table)
    if differ:
        raise SystemExit(f"{path}: the two readers' GraphTables differ in {differ}")
    for label, t, all_t in (("libosmium pass", floor, floor_all), ("read_osm", new, new_all),
                            ("read_osm, per-node scan", old, old_all)):  # fmt: skip
        runs = ", ".join(f"{x:.2f}" for x in all_t)
        print(f"  {label:<24} {t:7.2f} s  {t / floor:6.2f}× floor   (runs: {runs})")
    print(f"  {table.n_nodes:,} nodes, {table.n_edges:,} edges; graphs identical; "
          f"read_osm {old / new:.1f}× faster than with the per-node scan")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=500_000, help="synthetic grid size (nodes)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (best shown)")
    ap.add_argument("--pbf", type=Path, nargs="*", default=[], help="further OSM files")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="firegrid_bench_") as tmp:
        grid = write_grid_pbf(Path(tmp) / f"grid_{args.nodes}.osm.pbf", args.nodes)
        for path in [grid, *([CLIPPED] if CLIPPED.exists() else []), *args.pbf]:
            bench_file(path, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
