"""Benchmark of a big layer's GeoPackage spatial index: GDAL's R-tree against ours.

Run on demand: ``python benchmarks/bench_gpkg_index.py [--rows 1000000 5000000] [--repeat 3]
[--source results.gpkg] [--keep DIR]``.

For each size, a buildings-like layer (points and 13 attribute columns, as the ``buildings``
layer of ``results.gpkg``; or the first rows of ``--source``'s ``buildings`` layer) is written
with ``pyogrio.write_dataframe(..., use_arrow=True)`` three ways, each into a new file:

- *gdal*: GDAL's own spatial index (the default; GDAL builds it in a background thread);
- *no index*: ``layer_options={"SPATIAL_INDEX": "NO"}`` (the floor of writing the layer);
- *ours*: no index, then :func:`firegrid.gpkg_index.add_spatial_index` from the envelopes
  (``shapely.bounds`` of the frame's geometries, timed with it).

It prints the best of ``--repeat`` wall times, the index's own cost (ours: the function; GDAL:
its write minus the no-index write), the file sizes, and checks ours: ``rtreecheck`` and
``PRAGMA integrity_check`` say ok, and 200 random boxes read through GDAL (pyogrio with Arrow)
find the same features in both files (also timed: a packed tree reads no slower).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from firegrid.gpkg_index import add_spatial_index, rtree_name

LAYER = "buildings"
SIDE_M = 30_000.0  # a city's buildings over 30 km × 30 km
X0, Y0 = 340_000.0, 3_440_000.0  # UTM 51N, Shanghai


def synthetic(rows: int, *, seed: int = 0) -> gpd.GeoDataFrame:
    """A buildings-like layer: clustered points and 13 columns of the access step's kinds."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, SIDE_M, (max(rows // 2000, 1), 2))
    xy = centres[rng.integers(len(centres), size=rows)] + rng.normal(0, 300, (rows, 2))
    ids = np.char.add("B", np.char.zfill(np.arange(rows).astype(str), 8)).astype(object)
    station = rng.integers(1000, size=rows)
    frame = pd.DataFrame(
        {
            "building_id": ids,
            "use": rng.choice(np.array(["residential", "commercial", "mixed"], object), rows),
            "floors": rng.integers(1, 30, rows),
            "height_m": rng.uniform(3, 90, rows),
            "year_built": rng.integers(1950, 2024, rows),
            "residents": rng.integers(0, 200, rows),
            "t_fire_s": rng.gamma(4.0, 60.0, rows),
            "t_micro_s": rng.gamma(3.0, 50.0, rows),
            "fire_station_id": np.char.add("F", station.astype(str)).astype(object),
            "micro_station_id": np.char.add("M", station.astype(str)).astype(object),
            "within_3min": rng.random(rows) < 0.3,
            "within_5min": rng.random(rows) < 0.6,
            "risk_index": rng.uniform(0, 80, rows),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=shapely.points(xy + [X0, Y0]), crs=32651)


def from_source(path: Path, rows: int) -> gpd.GeoDataFrame:
    """The first ``rows`` features of ``path``'s buildings layer."""
    return pyogrio.read_dataframe(path, layer=LAYER, max_features=rows, use_arrow=True)


def _write(frame: gpd.GeoDataFrame, path: Path, **options) -> float:
    if path.exists():
        path.unlink()
    start = time.perf_counter()
    pyogrio.write_dataframe(frame, path, layer=LAYER, driver="GPKG", use_arrow=True, **options)
    return time.perf_counter() - start


def _ours(frame: gpd.GeoDataFrame, path: Path) -> tuple[float, float]:
    written = _write(frame, path, layer_options={"SPATIAL_INDEX": "NO"})
    start = time.perf_counter()
    add_spatial_index(path, LAYER, bounds=shapely.bounds(frame.geometry.to_numpy()))
    return written, time.perf_counter() - start


def _check(ours: Path, gdal: Path, frame: gpd.GeoDataFrame) -> tuple[float, float]:
    """Ours passes SQLite's checks and finds what GDAL's finds; the time of 200 box reads
    from each file."""
    with closing(sqlite3.connect(ours)) as con:
        tree = rtree_name(LAYER, "geom").replace("'", "''")
        assert con.execute(f"SELECT rtreecheck('{tree}')").fetchone()[0] == "ok"
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rng = np.random.default_rng(1)
    xmin, ymin, xmax, ymax = frame.total_bounds
    corners = rng.uniform([xmin, ymin], [xmax, ymax], (200, 2))
    boxes = np.column_stack([corners, corners + rng.uniform(20, 400, (200, 2))])
    found, times = {}, {}
    for path in (ours, gdal, ours, gdal):  # the second round reads from a warm page cache
        start = time.perf_counter()
        found[path] = [_fids_in(path, tuple(b)) for b in boxes]
        times[path] = time.perf_counter() - start
    assert all(np.array_equal(a, b) for a, b in zip(found[ours], found[gdal], strict=True))
    assert sum(map(len, found[ours])) > 0
    return times[ours], times[gdal]


def _fids_in(path: Path, box: tuple) -> np.ndarray:
    found = pyogrio.read_dataframe(path, bbox=box, columns=[], fid_as_index=True, use_arrow=True)
    return np.sort(found.index.to_numpy())


def run(rows: int, *, repeat: int, source: Path | None, folder: Path) -> None:
    frame = from_source(source, rows) if source else synthetic(rows)
    rows = len(frame)
    gdal, plain, ours = folder / "gdal.gpkg", folder / "plain.gpkg", folder / "ours.gpkg"
    t_gdal, t_plain, t_ours_write, t_index = [], [], [], []
    for k in range(repeat):
        # each way first in turn: the disk is still writing back the file written before
        for way in np.roll(["gdal", "plain", "ours"], -k):
            if way == "gdal":
                t_gdal.append(_write(frame, gdal))
            elif way == "plain":
                t_plain.append(_write(frame, plain, layer_options={"SPATIAL_INDEX": "NO"}))
            else:
                written, indexed = _ours(frame, ours)
                t_ours_write.append(written)
                t_index.append(indexed)
    read_ours, read_gdal = _check(ours, gdal, frame)
    g, p, i = min(t_gdal), min(t_plain), min(t_index)
    total = min(w + x for w, x in zip(t_ours_write, t_index, strict=True))
    size = {k: os.path.getsize(v) / 2**20 for k, v in (("g", gdal), ("p", plain), ("o", ours))}
    print(f"\n{rows:,} points, {frame.shape[1] - 1} attribute columns (best of {repeat})")
    print(f"  write, GDAL's index          {g:7.2f} s   {size['g']:8.1f} MiB")
    print(f"  write, no index (the floor)  {p:7.2f} s   {size['p']:8.1f} MiB")
    print(f"  write + add_spatial_index    {total:7.2f} s   {size['o']:8.1f} MiB")
    print(f"  index alone: GDAL {g - p:6.2f} s, ours {i:6.2f} s  ({(g - p) / i:.1f}x faster)")
    print(f"  whole write: {g / total:.2f}x faster than GDAL's; {total / p:.2f}x the floor")
    print(f"  file: ours {size['o'] - size['g']:+.1f} MiB against GDAL's")
    print(f"  200 box reads (Arrow): ours {read_ours:.2f} s, GDAL's index {read_gdal:.2f} s; same")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--source", type=Path, help="a results.gpkg with a buildings layer")
    parser.add_argument("--keep", type=Path, help="write the files here (else a temp folder)")
    args = parser.parse_args()
    # As FireGrid's writer does: the file is fsynced once at the end, not per transaction.
    pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": "OFF"})
    with tempfile.TemporaryDirectory(dir=args.keep) as tmp:
        for rows in args.rows:
            run(rows, repeat=args.repeat, source=args.source, folder=Path(tmp))


if __name__ == "__main__":
    main()
