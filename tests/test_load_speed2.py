"""The load step's second round of fast paths give what the ways they replaced give.

Grid cells by a box query and prepared cells (against the STRtree's own ``intersects``
predicate, points on edges and corners included); the coordinate readings tried on blocks
growing from a small first one (against the whole layer at once); GeoParquet points read
from their WKB buffer (against ``geopandas.read_parquet`` on files of many shapes); points
layers whose WGS84 points are let go once projected (against the load that keeps them);
coordinates projected on several threads (against one pyproj call).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from firegrid.spatial.io import crs as crs_module
from firegrid.spatial.io import district as district_module
from firegrid.spatial.io import geoparquet, validate
from firegrid.spatial.io import grids as grids_module
from firegrid.spatial.io.crs import WGS84, gcj02_to_wgs84, wgs84_to_gcj02
from firegrid.spatial.io.district import LayerSpec, load_district
from firegrid.spatial.io.geoparquet import read_parquet_file
from firegrid.spatial.io.layers import SCHEMAS
from firegrid.spatial.io.sources import LayerSource
from firegrid.spatial.io.validate import check_extent
from firegrid.spatial.runtime import using_threads

X0, Y0, W = 121.40, 31.20, 0.06  # a 0.06° square district in Shanghai


def _edge_points(rng: np.random.Generator, n: int) -> np.ndarray:
    """Points on a 10 m lattice (cell edges and corners) and anywhere in between."""
    on_lattice = rng.integers(0, 11, size=(n, 2)) * 10.0
    anywhere = rng.uniform(-5.0, 115.0, size=(n, 2))
    xy = np.where(rng.random((n, 1)) < 0.5, on_lattice, anywhere)
    return shapely.points(xy)


def test_intersecting_pairs_equal_the_trees_predicate():
    rng = np.random.default_rng(3)
    # Square cells sharing edges and corners, a triangle, a cell with a hole and a
    # multipolygon: points on their boundaries must count as in, as the tree says.
    squares = [
        shapely.box(x, y, x + 20, y + 20) for x in range(0, 100, 20) for y in range(0, 100, 20)
    ]
    holed = shapely.Polygon(
        [(0, 0), (60, 0), (60, 60), (0, 60)], [[(20, 20), (40, 20), (40, 40), (20, 40)]]
    )
    triangle = shapely.Polygon([(0, 0), (100, 0), (0, 100)])
    multi = shapely.MultiPolygon([shapely.box(70, 70, 80, 80), shapely.box(90, 90, 100, 100)])
    cells = np.array([*squares, holed, triangle, multi], dtype=object)
    points = _edge_points(rng, 20_000)
    expected = shapely.STRtree(cells).query(points, predicate="intersects")
    got = grids_module._intersecting(points, cells)
    assert len(expected[0]) > len(points)  # shared edges: many points in two cells or more
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert not shapely.is_prepared(cells).any()  # the caller's cells were not prepared


def test_growing_blocks_cover_every_row_once_in_order(monkeypatch):
    monkeypatch.setattr(validate, "READING_BLOCK", 40)
    rows = np.arange(1000) * 3
    blocks = validate._blocks(rows, 5)
    assert [len(b) for b in blocks[:5]] == [5, 10, 20, 40, 40]
    np.testing.assert_array_equal(np.concatenate(blocks), rows)
    assert validate._blocks(rows[:0], 5) == []


@pytest.mark.parametrize("declared_gcj", [False, True])
@pytest.mark.parametrize("shift", ["gcj02", "far"])
def test_readings_from_small_first_blocks_name_the_whole_layers_cause(
    monkeypatch, declared_gcj, shift
):
    rng = np.random.default_rng(11)
    n = 20_000
    lon, lat = rng.uniform(X0, X0 + W, n), rng.uniform(Y0, Y0 + W, n)
    if shift == "far":
        lon[:30] += 0.03  # ~3 km out: no reading explains them
    else:  # the whole layer shifted: the edge features ~500 m out
        lon, lat = gcj02_to_wgs84(lon, lat) if declared_gcj else wgs84_to_gcj02(lon, lat)
    gdf = gpd.GeoDataFrame(
        {"hydrant_id": np.arange(n).astype(str)}, geometry=shapely.points(lon, lat), crs=WGS84
    )
    boundary = shapely.box(X0, Y0, X0 + W, Y0 + W)
    args = (gdf, SCHEMAS["hydrants"], LayerSource("h.csv"), boundary, "EPSG:32651")
    offset = "gcj02" if declared_gcj else None
    monkeypatch.setattr(validate, "READING_BLOCK", 10**9)
    monkeypatch.setattr(validate, "READING_FIRST_BLOCK", 10**9)
    whole = check_extent(*args, declared_offset=offset).lines()
    monkeypatch.setattr(validate, "READING_BLOCK", 4096)
    monkeypatch.setattr(validate, "READING_FIRST_BLOCK", 16)
    assert check_extent(*args, declared_offset=offset).lines() == whole
    assert len(whole) == 1 and ("likely cause" in whole[0]) == (shift == "gcj02")


# --- GeoParquet points read from their WKB buffer, against geopandas.read_parquet ---


def _points_frame(n: int, rng: np.random.Generator, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "building_id": np.arange(n),
            "名称": pd.array([f"楼{i}" if i % 7 else None for i in range(n)], dtype=object),
            "floors": rng.integers(1, 30, n).astype(float),
            "built": pd.to_datetime("1990-01-01") + pd.to_timedelta(rng.integers(0, 9000, n), "D"),
            "use": pd.Categorical(rng.choice(["residential", "shop"], n)),
            **columns,
        },
        geometry=shapely.points(rng.uniform(X0, X0 + W, n), rng.uniform(Y0, Y0 + W, n)),
        crs=WGS84,
    )


def _cases(rng: np.random.Generator) -> dict[str, tuple[gpd.GeoDataFrame, dict]]:
    """Frames to write (with to_parquet options), and whether the fast way takes them."""
    n = 3000
    base = _points_frame(n, rng)
    named_index = base.set_index(pd.Index(np.arange(n) * 3 + 5, name="行号"))
    with_attrs = base.copy()
    with_attrs.attrs = {"source": "survey 2026"}
    geometry_first = base[["geometry", *[c for c in base.columns if c != "geometry"]]]
    renamed = base.rename_geometry("shape")
    projected = base.to_crs("EPSG:32651")
    polygons = base.set_geometry(shapely.buffer(base.geometry.values, 1e-4))
    empty_point = base.copy()
    empty_point.loc[5, "geometry"] = shapely.Point()
    missing = base.copy()
    missing.loc[8, "geometry"] = None
    with_z = base.set_geometry(shapely.force_3d(base.geometry.values, 2.0))
    return {
        "points": (base, {}, True),
        "named index": (named_index, {}, True),
        "no index": (base, {"index": False}, True),
        "attrs": (with_attrs, {}, True),
        "geometry first": (geometry_first, {}, True),
        "renamed geometry": (renamed, {}, True),
        "projected": (projected, {}, True),
        "no crs": (base.set_crs(None, allow_override=True), {}, True),
        "one point": (base.iloc[:1], {}, True),
        "row groups": (base, {"row_group_size": 700}, True),
        "polygons": (polygons, {}, False),
        "an empty point": (empty_point, {}, False),
        "a missing geometry": (missing, {}, False),
        "3-D points": (with_z, {}, False),
        "bbox covering": (base, {"write_covering_bbox": True}, False),
        "geoarrow encoding": (base, {"geometry_encoding": "geoarrow"}, False),
        "no rows": (base.iloc[:0], {}, False),
    }


def test_geoparquet_reads_as_geopandas_reads(tmp_path):
    rng = np.random.default_rng(5)
    for label, (frame, options, fast) in _cases(rng).items():
        path = tmp_path / f"{label}.parquet"
        frame.to_parquet(path, **options)
        expected = gpd.read_parquet(path)
        got = read_parquet_file(path)
        assert (geoparquet._points_frame(path) is not None) == fast, label
        assert_geodataframe_equal(got, expected, check_crs=True)
        assert got.crs == expected.crs and got.attrs == expected.attrs, label
        assert got.geometry.name == expected.geometry.name, label
        assert list(got.dtypes.astype(str)) == list(expected.dtypes.astype(str)), label
        same = shapely.to_wkb(got.geometry.values) == shapely.to_wkb(expected.geometry.values)
        assert same.all(), label
        if frame.crs is not None:
            assert got.crs.to_wkt() == expected.crs.to_wkt(), label


def test_geoparquet_without_geo_metadata_fails_as_geopandas_does(tmp_path):
    path = tmp_path / "plain.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(path)
    with pytest.raises(ValueError, match="geo metadata") as expected:
        gpd.read_parquet(path)
    with pytest.raises(ValueError) as got:
        read_parquet_file(path)
    assert str(got.value) == str(expected.value)


# --- a points layer let go once projected, against the way that kept it ---


def _point_district(folder, mistake: str, n: int = 20_000):
    """A district with point buildings and stations in GeoParquet; ``mistake`` moves the
    buildings: "none", "gcj02" (GCJ-02 data declared WGS84: edge ones ~500 m out) or "far"."""
    rng = np.random.default_rng(4)
    grids = gpd.GeoDataFrame(
        {"grid_id": ["G1", "G1a", "G1b"], "level": [1, 2, 2], "parent_id": [None, "G1", "G1"]},
        geometry=[
            shapely.box(X0, Y0, X0 + W, Y0 + W),
            shapely.box(X0, Y0, X0 + W / 2, Y0 + W),
            shapely.box(X0 + W / 2, Y0, X0 + W, Y0 + W),
        ],
        crs=4326,
    )
    x, y = rng.uniform(X0, X0 + W, n), rng.uniform(Y0, Y0 + W, n)
    if mistake == "gcj02":
        x, y = wgs84_to_gcj02(x, y)
    elif mistake == "far":
        x[[7, 70, 700]] = X0 + W + 0.05  # ~5 km east
    buildings = gpd.GeoDataFrame(
        {"building_id": np.arange(n), "floors": rng.integers(1, 30, n)},
        geometry=shapely.points(x, y),
        crs=4326,
    )
    stations = buildings.iloc[:40][["geometry"]].assign(
        station_id=[f"S{i}" for i in range(40)], kind="micro_station"
    )
    specs = {}
    for name, frame in (("grids", grids), ("buildings", buildings), ("stations", stations)):
        frame.to_parquet(folder / f"{name}.parquet")
        specs[name] = LayerSpec(folder / f"{name}.parquet")
    return specs


@pytest.mark.parametrize("mistake", ["none", "gcj02", "far"])
def test_points_let_go_once_projected_load_as_when_kept(tmp_path, monkeypatch, mistake):
    specs = _point_district(tmp_path, mistake)
    let_go = []
    real = district_module.with_points
    monkeypatch.setattr(
        district_module, "with_points", lambda rows, *a: let_go.append(len(rows)) or real(rows, *a)
    )
    got, got_report = load_district(specs)
    assert let_go == [20_000, 40]  # buildings and stations took the new way
    # Every layer kept until the end, as before: the layers projected by project().
    monkeypatch.setattr(district_module, "ALIGNED_LAYERS", tuple(SCHEMAS))
    kept, kept_report = load_district(specs)
    assert let_go == [20_000, 40]
    assert got_report.lines() == kept_report.lines()
    assert ("likely cause: GCJ-02" in " ".join(got_report.lines())) == (mistake == "gcj02")
    assert got_report.ok == (mistake == "none")
    assert list(got.layers) == list(kept.layers)
    for name, layer in kept.layers.items():
        assert_geodataframe_equal(got.layers[name], layer, check_crs=True)
        assert got.layers[name].attrs == layer.attrs
        wkb = shapely.to_wkb(got.layers[name].geometry.values)
        assert (wkb == shapely.to_wkb(layer.geometry.values)).all()
    if kept.cells is None:
        assert got.cells is None
    else:
        pd.testing.assert_frame_equal(got.cells, kept.cells)


# --- coordinates projected on several threads, against one pyproj call ---


@pytest.mark.parametrize("n_threads", [2, 3])
def test_projection_on_threads_gives_the_same_numbers(monkeypatch, n_threads):
    monkeypatch.setattr(crs_module, "PARALLEL_POINTS", 1000)
    rng = np.random.default_rng(9)
    lon, lat = rng.uniform(X0, X0 + W, 30_001), rng.uniform(Y0, Y0 + W, 30_001)
    keep = lon.copy(), lat.copy()
    expected = pyproj.Transformer.from_crs(WGS84, 32651, always_xy=True).transform(lon, lat)
    with using_threads(n_threads):
        got = crs_module.project_xy(lon, lat, WGS84, pyproj.CRS.from_epsg(32651))
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(lon, keep[0])  # the caller's coordinates are left as they were
    np.testing.assert_array_equal(lat, keep[1])
