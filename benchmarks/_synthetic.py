"""Synthetic layers along a real street network, shared by the benchmarks (run as scripts)."""

from __future__ import annotations

import json
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


# ---------------------------------------------------------------------- a synthetic region
#: Per subdistrict at ``scale`` 1: street nodes, buildings, stations, hydrants. 200
#: subdistricts make the benchmark region of about 1 M nodes, 5 M buildings, 2,000 stations.
PER_SUBDISTRICT = {"nodes": 5_000, "buildings": 25_000, "stations": 10, "hydrants": 2_500}
REGION_LON0, REGION_LAT0 = 121.00, 30.70  # south-west corner, inside UTM zone 51N
BLOCK_M = 100.0


def _divisors_near_square(n: int) -> tuple[int, int]:
    """(rows, cols) with rows × cols = n and rows ≤ cols as close to square as n allows."""
    rows = max(r for r in range(1, int(np.sqrt(n)) + 1) if n % r == 0)
    return rows, n // rows


def region_layout(subdistricts: int, scale: float = 1.0) -> dict[str, int]:
    """Sizes of a synthetic region: subdistricts on a rows × cols lattice, each ``side`` ×
    ``side`` street nodes 100 m apart, and the layer counts."""
    rows, cols = _divisors_near_square(subdistricts)
    side = max(4, round(float(np.sqrt(PER_SUBDISTRICT["nodes"] * scale))))
    counts = {k: max(1, round(v * scale * subdistricts)) for k, v in PER_SUBDISTRICT.items()}
    counts["stations"] = max(2 * subdistricts, counts["stations"])
    counts["hydrants"] = cols * side * rows * side // 2
    return {"rows": rows, "cols": cols, "side": side, **counts,
            "nx": cols * side, "ny": rows * side}  # fmt: skip


def _degrees_per_metre(lat: float) -> tuple[float, float]:
    return 1.0 / (111_320.0 * np.cos(np.radians(lat))), 1.0 / 110_574.0


def write_street_grid_pbf(path: Path, nx_: int, ny: int) -> Path:
    """A street grid of ``nx_`` × ``ny`` nodes 100 m apart as PBF (pyosmium): ways of 10
    blocks, every 10th street primary, every 4th residential street one-way."""
    import osmium
    from osmium.osm.mutable import Node, Way

    dlon, dlat = (BLOCK_M * d for d in _degrees_per_metre(REGION_LAT0))
    lon = REGION_LON0 + np.arange(nx_) * dlon
    lat = REGION_LAT0 + np.arange(ny) * dlat
    with osmium.SimpleWriter(str(path), overwrite=True) as w:
        for j in range(ny):
            for i in range(nx_):
                w.add_node(Node(id=1 + j * nx_ + i, location=(lon[i], lat[j])))
        wid = 1
        for horizontal, n_lines, n_along in ((True, ny, nx_), (False, nx_, ny)):
            for line in range(n_lines):
                k = np.arange(n_along)
                ids = 1 + (line * nx_ + k if horizontal else k * nx_ + line)
                if line % 10 == 0:
                    tags = {"highway": "primary"}
                elif line % 4 == 1:
                    tags = {"highway": "residential", "oneway": "yes"}
                else:
                    tags = {"highway": "residential"}
                for a in range(0, n_along - 1, 10):
                    w.add_way(Way(id=wid, nodes=ids[a : a + 11].tolist(), tags=tags))
                    wid += 1
    return path


def _lonlat(x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local metres east/north of the region's south-west node → lon/lat (degrees)."""
    dlon, dlat = _degrees_per_metre(REGION_LAT0)
    return REGION_LON0 + x_m * dlon, REGION_LAT0 + y_m * dlat


def region_layers(layout: dict[str, int], rng: np.random.Generator) -> dict:
    """The region's layers as GeoDataFrames in WGS84: grids (one level, the subdistricts),
    buildings (8–20 m boxes inside the blocks, clear of the streets), stations (10 % fire
    stations with engines, the rest e-bike micro-stations, 6 m off a street node) and
    hydrants (4 m off every other street node)."""
    import geopandas as gpd

    nx_, ny, side = layout["nx"], layout["ny"], layout["side"]
    # subdistricts: boxes of side - 1 blocks; the outer ones reach the outermost streets
    c, r = np.meshgrid(np.arange(layout["cols"]), np.arange(layout["rows"]))
    c, r = c.ravel(), r.ravel()
    x0 = np.where(c == 0, 0.0, (c * side - 0.5) * BLOCK_M)
    x1 = np.where(c == layout["cols"] - 1, (nx_ - 1) * BLOCK_M, ((c + 1) * side - 0.5) * BLOCK_M)
    y0 = np.where(r == 0, 0.0, (r * side - 0.5) * BLOCK_M)
    y1 = np.where(r == layout["rows"] - 1, (ny - 1) * BLOCK_M, ((r + 1) * side - 0.5) * BLOCK_M)
    lon0, lat0 = _lonlat(x0, y0)
    lon1, lat1 = _lonlat(x1, y1)
    grids = gpd.GeoDataFrame(
        {"grid_id": [f"S{k:04d}" for k in range(len(c))], "level": 1},
        geometry=shapely.box(lon0, lat0, lon1, lat1),
        crs=4326,
    )
    grids["name"] = [f"街道{k + 1}" for k in range(len(grids))]

    n = layout["buildings"]
    bx = (rng.integers(0, nx_ - 1, n) + rng.uniform(0.2, 0.8, n)) * BLOCK_M
    by = (rng.integers(0, ny - 1, n) + rng.uniform(0.2, 0.8, n)) * BLOCK_M
    half = rng.uniform(4.0, 10.0, (n, 2))
    blon0, blat0 = _lonlat(bx - half[:, 0], by - half[:, 1])
    blon1, blat1 = _lonlat(bx + half[:, 0], by + half[:, 1])
    buildings = gpd.GeoDataFrame(
        {"building_id": np.arange(n), "floors": rng.integers(1, 30, n)},
        geometry=shapely.box(blon0, blat0, blon1, blat1),
        crs=4326,
    )

    def off_nodes(m: int, off_m: float) -> np.ndarray:
        i, j = rng.integers(0, nx_, m), rng.integers(0, ny, m)
        return shapely.points(*_lonlat(i * BLOCK_M + off_m, j * BLOCK_M + off_m))

    m = layout["stations"]
    fire = np.arange(m) < max(1, m // 10)
    stations = gpd.GeoDataFrame(
        {
            "station_id": [f"ST{k:05d}" for k in range(m)],
            "kind": np.where(fire, "fire_station", "micro_station"),
            "vehicle": np.where(fire, "engine", "ebike"),
            "turnout_s": np.where(fire, 60, 45),
        },
        geometry=off_nodes(m, 6.0),
        crs=4326,
    )
    # hydrants on every other street node (a checkerboard, about 140 m apart), 5 % broken
    i, j = np.meshgrid(np.arange(nx_), np.arange(ny))
    on = ((i + j) % 2 == 0).ravel()
    i, j = i.ravel()[on], j.ravel()[on]
    h = len(i)
    hydrants = gpd.GeoDataFrame(
        {
            "hydrant_id": [f"H{k:07d}" for k in range(h)],
            "status": np.where(rng.random(h) < 0.05, "broken", "ok"),
            "flow_lps": 15.0,
        },
        geometry=shapely.points(*_lonlat(i * BLOCK_M + 4.0, j * BLOCK_M + 4.0)),
        crs=4326,
    )
    return {"grids": grids, "buildings": buildings, "stations": stations, "hydrants": hydrants}


def write_region(folder: Path, subdistricts: int, *, scale: float = 1.0, seed: int = 0) -> Path:
    """Write a synthetic region (streets PBF, GeoParquet layers, ``region.toml``) into
    ``folder``; returns the region config's path. See :func:`region_layout` for the sizes."""
    layout = region_layout(subdistricts, scale)
    folder.mkdir(parents=True, exist_ok=True)
    write_street_grid_pbf(folder / "streets.osm.pbf", layout["nx"], layout["ny"])
    layers = region_layers(layout, np.random.default_rng(seed))
    for name, gdf in layers.items():
        gdf.to_parquet(folder / f"{name}.parquet")
    cfg = folder / "region.toml"
    cfg.write_text(
        '[region]\nname = "benchmark region"\nas_of = "2026-06-30"\npartition_level = 1\n\n'
        '[network]\nsource = "streets.osm.pbf"\n\n'
        + "".join(f'[layers.{k}]\nfile = "{k}.parquet"\n\n' for k in layers)
        + "[output]\nmap = false\nexcel = false\n",
        encoding="utf-8",
    )
    (folder / "layout.json").write_text(json.dumps(layout), encoding="utf-8")
    return cfg
