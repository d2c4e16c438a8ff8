"""The bulk-loaded GeoPackage R-tree (firegrid.gpkg_index) against GDAL, SQLite and brute force.

GDAL (pyogrio's) writes the reference files: the same frame with GDAL's own index must have
the same schema, triggers, extension row and leaf boxes; SQLite's rtreecheck judges the tree;
bbox reads through GDAL (with and without Arrow, and Debian's ogrinfo when installed) must
return exactly the features a brute-force test of every geometry returns.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import struct
import subprocess

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from firegrid.gpkg_index import add_spatial_index, rtree_name

CRS = 32651
# Projected coordinates of Shanghai: float64 values float32 cannot hold, so every box is
# rounded and a box rounded inwards would lose the features on its edge.
X0, Y0 = 351_234.56789, 3_456_789.01234


def _points(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = np.column_stack([X0 + rng.uniform(0, 2000, n), Y0 + rng.uniform(0, 2000, n)])
    xy[: n // 10] = np.round(xy[: n // 10], 1)  # shared coordinates: ties in the sort
    return shapely.points(xy)


def _frame(geoms) -> gpd.GeoDataFrame:
    geoms = np.asarray(geoms, dtype=object)
    return gpd.GeoDataFrame({"k": np.arange(len(geoms))}, geometry=list(geoms), crs=CRS)


def _with_empties(geoms: np.ndarray, empty) -> np.ndarray:
    """``geoms`` with every 7th empty and every 11th missing."""
    out = np.array(geoms, dtype=object)
    out[3::7] = empty
    out[5::11] = None
    return out


def _write(frame: gpd.GeoDataFrame, path, layer: str = "layer", *, gdal_index: bool, **options):
    layer_options = dict(options)
    if not gdal_index:
        layer_options["SPATIAL_INDEX"] = "NO"
    pyogrio.write_dataframe(
        frame, path, layer=layer, driver="GPKG", use_arrow=True, layer_options=layer_options
    )
    return path


def _ours(frame: gpd.GeoDataFrame, path, layer: str = "layer", **options):
    _write(frame, path, layer, gdal_index=False, **options)
    indexed = add_spatial_index(path, layer, bounds=shapely.bounds(frame.geometry.to_numpy()))
    present = ~(shapely.is_missing(frame.geometry.to_numpy()) | frame.geometry.is_empty)
    assert indexed == int(present.sum())
    return path


def _sql(path, query: str, params=()) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as con:
        return con.execute(query, params).fetchall()


def _rtreecheck(path, table: str = "layer", geom: str = "geom") -> str:
    quoted = "'" + rtree_name(table, geom).replace("'", "''") + "'"
    return _sql(path, f"SELECT rtreecheck({quoted})")[0][0]


def _depth(path, table: str = "layer", geom: str = "geom") -> int:
    node = '"' + rtree_name(table, geom).replace('"', '""') + '_node"'
    root = _sql(path, f"SELECT data FROM {node} WHERE nodeno = 1")[0][0]
    return struct.unpack(">H", root[:2])[0]


def _random_boxes(frame: gpd.GeoDataFrame, count: int, seed: int) -> list[tuple]:
    """Boxes of many sizes; a third with an edge on a vertex of the layer."""
    rng = np.random.default_rng(seed)
    xy = shapely.get_coordinates(frame.geometry.to_numpy())
    boxes = []
    for k in range(count):
        x0, y0 = X0 + rng.uniform(-100, 2000), Y0 + rng.uniform(-100, 2000)
        w, h = rng.uniform(0.5, 600, 2)
        if k % 3 == 0 and len(xy):
            x0, y0 = xy[rng.integers(len(xy))]  # the vertex lies on the box's corner
        boxes.append((float(x0), float(y0), float(x0 + w), float(y0 + h)))
    return boxes


def _brute_force(frame: gpd.GeoDataFrame, box: tuple) -> set[int]:
    """The rows whose geometry meets the box, testing every geometry."""
    hit = shapely.intersects(frame.geometry.to_numpy(), shapely.box(*box))
    return set(frame["k"].to_numpy()[hit].tolist())


def _read_bbox(path, box: tuple, *, arrow: bool, layer: str = "layer") -> set[int]:
    found = pyogrio.read_dataframe(path, layer=layer, bbox=box, columns=["k"], use_arrow=arrow)
    return set(found["k"].tolist())


def _assert_bbox_reads(path, frame: gpd.GeoDataFrame, *, boxes: int, seed: int) -> None:
    hits = 0
    for box in _random_boxes(frame, boxes, seed):
        expected = _brute_force(frame, box)
        hits += len(expected)
        assert _read_bbox(path, box, arrow=False) == expected, box
        assert _read_bbox(path, box, arrow=True) == expected, box
    assert hits > 0  # the boxes did find features


def test_points_lines_and_polygons_read_by_box_exactly_as_brute_force(tmp_path):
    points = _points(3000)
    lines = shapely.get_exterior_ring(shapely.buffer(_points(800, seed=1), 30))
    polygons = shapely.buffer(_points(800, seed=2), 25, quad_segs=2)
    for kind, geoms, empty in (
        ("points", points, shapely.Point()),
        ("lines", lines, shapely.LineString()),
        ("polygons", polygons, shapely.Polygon()),
    ):
        frame = _frame(_with_empties(geoms, empty))
        path = _ours(frame, tmp_path / f"{kind}.gpkg")
        assert _rtreecheck(path) == "ok"
        assert _sql(path, "PRAGMA integrity_check") == [("ok",)]
        _assert_bbox_reads(path, frame, boxes=60, seed=3)


def test_a_multi_level_tree_of_200k_points_reads_by_box_exactly_as_brute_force(tmp_path):
    frame = _frame(_with_empties(_points(200_000, seed=4), shapely.Point()))
    path = _ours(frame, tmp_path / "big.gpkg")
    assert _depth(path) >= 2  # a root above branches above leaves
    # packed: every node full (51 cells of a 4 KiB page's node) but the last of each level
    count, nodes = _sql(path, 'SELECT count(*) FROM "rtree_layer_geom"')[0][0], 0
    while count > 1:
        count = -(-count // 51)
        nodes += count
    assert _sql(path, 'SELECT count(*) FROM "rtree_layer_geom_node"') == [(max(nodes, 1),)]
    assert _rtreecheck(path) == "ok"
    assert _sql(path, "PRAGMA integrity_check") == [("ok",)]
    _assert_bbox_reads(path, frame, boxes=40, seed=5)


def test_a_layer_of_one_feature_and_layers_with_nothing_to_index(tmp_path):
    one = _frame([shapely.Point(X0, Y0)])
    path = _ours(one, tmp_path / "one.gpkg")
    assert _rtreecheck(path) == "ok" and _depth(path) == 0
    assert _read_bbox(path, (X0 - 1, Y0 - 1, X0, Y0), arrow=True) == {0}
    assert _read_bbox(path, (X0 + 1e-3, Y0, X0 + 1, Y0 + 1), arrow=True) == set()
    nothing = _frame([shapely.Point(), None])
    path = _ours(nothing, tmp_path / "empty.gpkg")
    assert _rtreecheck(path) == "ok"
    assert _sql(path, 'SELECT count(*) FROM "rtree_layer_geom"') == [(0,)]


def test_the_leaf_boxes_are_those_gdal_writes(tmp_path):
    """Every feature id with the same float32 box GDAL's own index gives it (the float64
    envelope rounded outwards as SQLite rounds), empty and missing geometries left out."""
    geoms = _with_empties(shapely.buffer(_points(2000, seed=6), 3.3, quad_segs=1), None)
    geoms[::5] = shapely.points(
        np.random.default_rng(7).normal(0, 1e6, (len(geoms[::5]), 2)) * [-1, 1]
    )  # negative coordinates and other magnitudes
    frame = _frame(geoms)
    ours = _ours(frame, tmp_path / "ours.gpkg")
    gdal = _write(frame, tmp_path / "gdal.gpkg", gdal_index=True)
    query = 'SELECT id, minx, maxx, miny, maxy FROM "rtree_layer_geom" ORDER BY id'
    assert _sql(ours, query) == _sql(gdal, query)
    leaves = np.array(_sql(ours, query))
    boxes = leaves[:, 1:]
    envelopes = shapely.bounds(frame.geometry.to_numpy()[leaves[:, 0].astype(np.int64) - 1])
    assert (boxes[:, 0] <= envelopes[:, 0]).all() and (boxes[:, 1] >= envelopes[:, 2]).all()
    assert (boxes[:, 2] <= envelopes[:, 1]).all() and (boxes[:, 3] >= envelopes[:, 3]).all()


def test_boxes_are_rounded_as_sqlite_rounds_its_own_inserts(tmp_path):
    """The same doubles inserted through SQL into an R*Tree SQLite builds itself."""
    rng = np.random.default_rng(8)
    xy = np.concatenate(
        [
            rng.normal(0, 1e5, (500, 2)),
            rng.uniform(-1, 1, (200, 2)) * 2.0 ** rng.integers(-30, 60, (200, 2)),
            [[2.0**24 + 1, -(2.0**24) - 1], [1 / 3, -1 / 3], [0.0, -0.0]],
        ]
    )
    frame = _frame(shapely.points(xy))
    path = _ours(frame, tmp_path / "round.gpkg")
    with contextlib.closing(sqlite3.connect(":memory:")) as con:
        con.execute("CREATE VIRTUAL TABLE t USING rtree(id, minx, maxx, miny, maxy)")
        con.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            [(i + 1, x, x, y, y) for i, (x, y) in enumerate(xy.tolist())],
        )
        sqlite_boxes = con.execute("SELECT * FROM t ORDER BY id").fetchall()
    assert _sql(path, 'SELECT * FROM "rtree_layer_geom" ORDER BY id') == sqlite_boxes


def _schema(path) -> set[tuple]:
    return set(_sql(path, "SELECT type, name, tbl_name, sql FROM sqlite_master"))


def test_schema_triggers_and_extension_row_are_gdals_even_for_awkward_names(tmp_path):
    frame = _frame(_points(300))
    names = ["Bu\"il 'dings 楼", {"GEOMETRY_NAME": 'Ge"o m', "FID": 'F"id'}]
    for layer, options in (("buildings", {}), tuple(names)):
        ours = _ours(frame, tmp_path / "ours.gpkg", layer, **options)
        gdal = _write(frame, tmp_path / "gdal.gpkg", layer, gdal_index=True, **options)
        assert _schema(ours) == _schema(gdal)
        extensions = "SELECT * FROM gpkg_extensions"
        assert _sql(ours, extensions) == _sql(gdal, extensions)
        assert any(kind == "trigger" and "_update6" in name for kind, name, *_ in _schema(ours))
        geom = options.get("GEOMETRY_NAME", "geom")
        assert _rtreecheck(ours, layer, geom) == "ok"
        assert _read_bbox(ours, (X0, Y0, X0 + 300, Y0 + 300), arrow=True, layer=layer) == (
            _brute_force(frame, (X0, Y0, X0 + 300, Y0 + 300))
        )
        (tmp_path / "ours.gpkg").unlink()
        (tmp_path / "gdal.gpkg").unlink()


def _gpkg_geometry(blob):
    """A GeoPackage geometry blob's shapely geometry (header flags: envelope size in bits
    1–3); None for NULL."""
    if blob is None:
        return None
    envelope = (0, 32, 48, 48, 64)[(blob[3] >> 1) & 7]
    return shapely.from_wkb(bytes(blob[8 + envelope :]))


def _gpkg_blob(geom, srs_id: int = CRS) -> bytes:
    """A little-endian GeoPackage blob without envelope; the empty flag set when empty."""
    flags = 0x01 | (0x10 if geom.is_empty else 0)
    return b"GP\x00" + bytes([flags]) + struct.pack("<i", srs_id) + shapely.to_wkb(geom)


def _with_st_functions(con: sqlite3.Connection) -> sqlite3.Connection:
    """The SQL functions GDAL's triggers call, as GDAL defines them (NULL in, NULL out)."""

    def bound(k):
        def f(blob):
            geom = _gpkg_geometry(blob)
            return None if geom is None or geom.is_empty else float(geom.bounds[k])

        return f

    def is_empty(blob):
        geom = _gpkg_geometry(blob)
        return None if geom is None else int(geom.is_empty)

    con.create_function("ST_IsEmpty", 1, is_empty)
    for k, name in enumerate(("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")):
        con.create_function(name, 1, bound(k))
    return con


def test_edits_through_sql_keep_the_index_right(tmp_path):
    frame = _frame(_with_empties(_points(5000, seed=9), shapely.Point()))
    path = _ours(frame, tmp_path / "edit.gpkg")
    moved = shapely.Point(X0 + 5000, Y0 + 5000)
    with contextlib.closing(_with_st_functions(sqlite3.connect(path))) as con:
        edits = [
            ("INSERT INTO layer (geom, k) VALUES (?, 5000)", (_gpkg_blob(moved),)),
            ("UPDATE layer SET geom = ? WHERE fid = 1", (_gpkg_blob(moved),)),  # update6
            ("UPDATE layer SET geom = ? WHERE fid = 4", (_gpkg_blob(moved),)),  # empty → point
            ("UPDATE layer SET geom = NULL WHERE fid = 2", ()),  # update2
            ("UPDATE layer SET fid = 9000 WHERE fid = 3", ()),  # update5
            ("DELETE FROM layer WHERE fid BETWEEN 100 AND 1099", ()),  # condenses the tree
        ]
        for statement, params in edits:
            con.execute(statement, params)
        con.commit()
    assert _rtreecheck(path) == "ok"
    rows = _sql(path, "SELECT fid, geom FROM layer")
    table = _frame([_gpkg_geometry(blob) for _, blob in rows])
    table["k"] = [fid for fid, _ in rows]
    indexed = {fid for (fid,) in _sql(path, 'SELECT id FROM "rtree_layer_geom"')}
    kept = ~shapely.is_missing(table.geometry.to_numpy()) & ~table.geometry.is_empty
    assert indexed == set(table["k"][kept])
    far = (X0 + 4999, Y0 + 4999, X0 + 5001, Y0 + 5001)
    assert _read_bbox(path, far, arrow=True) == {5000, 0, 3}  # k of the new, fid 1 and fid 4
    for box in _random_boxes(table, 30, seed=10):
        found = pyogrio.read_dataframe(path, bbox=box, columns=[], fid_as_index=True)
        assert set(found.index) == _brute_force(table, box), box


def test_gdal_appending_features_afterwards_keeps_the_index_right(tmp_path):
    frame = _frame(_points(2000, seed=11))
    path = _ours(frame, tmp_path / "append.gpkg")
    more = _frame(_points(700, seed=12))
    more["k"] += len(frame)
    pyogrio.write_dataframe(more, path, layer="layer", driver="GPKG", append=True)
    both = _frame(np.concatenate([frame.geometry.to_numpy(), more.geometry.to_numpy()]))
    assert _rtreecheck(path) == "ok"
    assert _sql(path, 'SELECT count(*) FROM "rtree_layer_geom"') == [(2700,)]
    _assert_bbox_reads(path, both, boxes=20, seed=13)


def test_bounds_read_back_from_the_table_give_the_same_index(tmp_path):
    frame = _frame(_with_empties(shapely.buffer(_points(3000, seed=14), 2.0), shapely.Polygon()))
    given = _ours(frame, tmp_path / "given.gpkg")
    read = _write(frame, tmp_path / "read.gpkg", gdal_index=False)
    add_spatial_index(read, "layer")
    for query in (
        'SELECT * FROM "rtree_layer_geom_node" ORDER BY nodeno',
        'SELECT * FROM "rtree_layer_geom_rowid" ORDER BY rowid',
        'SELECT * FROM "rtree_layer_geom_parent" ORDER BY nodeno',
    ):
        assert _sql(given, query) == _sql(read, query)


def test_sparse_feature_ids_left_by_deletes(tmp_path):
    """A table whose ids are far apart (rows deleted before indexing), bounds read back."""
    frame = _frame(_points(3000, seed=18))
    path = _write(frame, tmp_path / "sparse.gpkg", gdal_index=False)
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("DELETE FROM layer WHERE fid % 7 != 0")
        con.commit()
    assert add_spatial_index(path, "layer") == 3000 // 7
    assert _rtreecheck(path) == "ok"
    kept = frame[(frame["k"] + 1) % 7 == 0]
    _assert_bbox_reads(path, kept, boxes=20, seed=19)


def test_refuses_an_indexed_table_or_ids_that_are_not_its_features(tmp_path):
    frame = _frame(_points(100))
    bounds = shapely.bounds(frame.geometry.to_numpy())
    gdal = _write(frame, tmp_path / "gdal.gpkg", gdal_index=True)
    with pytest.raises(ValueError, match="already has a spatial index"):
        add_spatial_index(gdal, "layer", bounds=bounds)
    plain = _write(frame, tmp_path / "plain.gpkg", gdal_index=False)
    before = _schema(plain)
    for fids in (np.arange(2, 102), np.arange(1, 100), np.r_[1, np.arange(1, 100)]):
        with pytest.raises(ValueError):
            add_spatial_index(plain, "layer", bounds=bounds[: len(fids)], fids=fids)
    with pytest.raises(ValueError, match="not \\(features, 4\\)"):
        add_spatial_index(plain, "layer", bounds=bounds[:, :2])
    with pytest.raises(ValueError, match="not a features table"):
        add_spatial_index(plain, "nothing", bounds=bounds)
    assert _schema(plain) == before
    # ids in any order; the table named in another case (SQLite names ignore case)
    add_spatial_index(plain, "LAYER", bounds=bounds[::-1], fids=np.arange(100, 0, -1))
    assert _rtreecheck(plain) == "ok"
    assert ("layer", "geom") in _sql(plain, "SELECT table_name, column_name FROM gpkg_extensions")
    _assert_bbox_reads(plain, frame, boxes=10, seed=15)


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="no ogrinfo (GDAL) on PATH")
def test_the_system_gdal_ogrinfo_reads_the_same_features_by_box(tmp_path):
    frame = _frame(_with_empties(_points(20_000, seed=16), shapely.Point()))
    path = _ours(frame, tmp_path / "ogr.gpkg")
    for box in _random_boxes(frame, 5, seed=17):
        out = subprocess.run(
            ["ogrinfo", "-ro", "-q", "-geom=NO", "-spat", *map(repr, box), str(path), "layer"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        fids = {int(f) - 1 for f in re.findall(r"OGRFeature\(layer\):(\d+)", out)}
        assert fids == _brute_force(frame, box), box
