"""The shortcuts that let ``results.gpkg`` be written fast at city size decide exactly what
the checks they replace decide: a subset's rows recognised by object identity (only other
objects compared by value), its geometry kinds read from the base rows, its extent from the
base rows' envelopes, the base's row count from GDAL's kept count; and the file written
with them reads back as the frames written, every layer a table or not."""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import subprocess

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

import firegrid.geopackage as gp
from firegrid.gpkg_index import feature_count, feature_id_range
from firegrid.reports import write_results_gpkg


def _buildings(n: int = 60, *, seed: int = 5) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    label = np.array([f"S{i % 7}" for i in range(n)], dtype=object)
    label[::9] = None
    return gpd.GeoDataFrame(
        {
            "building_id": pd.array([f"B{i:03d}" for i in range(n)], dtype="string"),
            "station": pd.array(np.where(rng.random(n) < 0.2, None, label), dtype="str"),
            "note": pd.Series(label, dtype=object),  # text and None, as Python objects
            "floors": np.where(rng.random(n) < 0.2, np.nan, rng.integers(1, 30, n)),
            "covered": rng.random(n) < 0.5,
            "shortfall_3min_s": np.where(rng.random(n) < 0.2, np.nan, rng.normal(0, 60, n)),
        },
        geometry=shapely.points(x, y),
        crs=32651,
    )


def _missing(buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """As the access step makes it: one take of the buildings, worst first."""
    short = buildings["shortfall_3min_s"].fillna(np.inf).to_numpy()
    rows = np.flatnonzero(short > 0)
    rows = rows[np.argsort(-short[rows], kind="stable")]
    out = buildings.take(rows)
    out["shortfall_s"] = short[rows]
    out["grid_id_l1"] = pd.array(["G1"] * len(rows), dtype="string")
    return out


def _plan(missing, buildings):
    return gp.view_plan(missing, missing, buildings, buildings)


def _reference_same_values(ours: pd.Series, theirs: pd.Series, positions) -> bool:
    """The check before the shortcuts: pandas' take of the base column, then ``equals``."""
    theirs = theirs.iloc[positions].set_axis(ours.index)
    if ours.dtype != theirs.dtype:
        if not (
            isinstance(ours.dtype, pd.StringDtype) and isinstance(theirs.dtype, pd.StringDtype)
        ):
            return False
        theirs = theirs.astype(ours.dtype)
    return ours.equals(theirs)


# --------------------------------------------------------------------------------------------
# object identity


def test_a_take_is_recognised_object_by_object():
    values = np.array([shapely.Point(i, i) for i in range(10)], dtype=object)
    positions = np.array([3, 3, 0, 9])
    assert gp.same_objects(values[positions], values, positions).all()
    # equal but distinct objects are not "the same object": the caller compares them
    copies = shapely.from_wkb(shapely.to_wkb(values[positions]))
    assert not gp.same_objects(copies, values, positions).any()
    mixed = values[positions].copy()
    mixed[1] = copies[1]
    assert gp.same_objects(mixed, values, positions).tolist() == [True, False, True, True]
    # a strided array or numbers: no shortcut, every row left to the exact comparison
    assert not gp.same_objects(values[positions][::-1][::-1][::1], values[::-1], positions).all()
    assert not gp.same_objects(np.arange(4.0), np.arange(10.0), positions).any()
    assert gp.same_objects(values[:0], values, positions[:0]).shape == (0,)


def test_the_subset_as_taken_is_a_view_plan():
    buildings = _buildings()
    missing = _missing(buildings)
    plan = _plan(missing, buildings)
    assert plan is not None
    assert plan.own == ["shortfall_s", "grid_id_l1"]
    np.testing.assert_array_equal(plan.positions, buildings.index.get_indexer(missing.index))


def test_equal_but_distinct_geometries_are_compared_exactly():
    buildings = _buildings()
    missing = _missing(buildings)
    geoms = missing.geometry.to_numpy().copy()
    geoms[::2] = shapely.from_wkb(shapely.to_wkb(geoms[::2]))  # distinct, identical
    equal = missing.set_geometry(gpd.GeoSeries(geoms, index=missing.index, crs=missing.crs))
    assert _plan(equal, buildings) is not None
    moved = geoms.copy()
    x, y = shapely.get_x(moved[3]), shapely.get_y(moved[3])
    moved[3] = shapely.Point(x, np.nextafter(y, np.inf))  # one coordinate, one ulp
    assert _plan(missing.set_geometry(gpd.GeoSeries(moved, crs=missing.crs)), buildings) is None


def test_a_missing_geometry_matches_only_a_missing_one():
    buildings = _buildings()
    geoms = buildings.geometry.to_numpy().copy()
    geoms[[0, 1, 2]] = [None, shapely.Point(), None]
    buildings = buildings.set_geometry(gpd.GeoSeries(geoms, crs=buildings.crs))
    buildings["shortfall_3min_s"] = 1.0
    missing = _missing(buildings)
    assert _plan(missing, buildings) is not None
    swapped = missing.geometry.to_numpy().copy()
    at = missing.index.get_indexer([1])[0]
    swapped[at] = None  # the base row holds an empty point, not a missing geometry
    swapped = gpd.GeoSeries(swapped, index=missing.index, crs=missing.crs)
    assert _plan(missing.set_geometry(swapped), buildings) is None


@pytest.mark.parametrize(
    "change", ["none", "copies", "one value", "none to nan", "text to number", "reordered"]
)
def test_object_columns_agree_with_pandas_equals(change):
    buildings = _buildings()
    missing = _missing(buildings)
    positions = buildings.index.get_indexer(missing.index)
    assert missing["note"].dtype == object
    values = missing["note"].to_numpy().copy() if change != "none" else missing["note"].to_numpy()
    if change == "copies":  # equal text in distinct objects
        values[:] = [None if v is None else "".join([v[:1], v[1:]]) for v in values]
        same = gp.same_objects(values, buildings["note"].to_numpy(), positions)
        assert not same[pd.notna(values)].any() and same[pd.isna(values)].all()  # None is one
    elif change == "one value":
        values[4] = "S99"
    elif change == "none to nan":
        values[np.flatnonzero(pd.isna(values))[0]] = np.nan
    elif change == "text to number":
        values[2] = 3
    elif change == "reordered":
        values[[1, 2]] = values[[2, 1]]
    ours = pd.Series(values, index=missing.index, name="note", dtype=object)
    expected = _reference_same_values(ours, buildings["note"], positions)
    assert gp._same_values(ours, buildings["note"], positions) == expected
    # pandas counts None and NaN as the same missing value (GDAL writes both as NULL)
    same = {"one value": False, "text to number": False, "reordered": values[1] == values[2]}
    assert expected == same.get(change, True)


@pytest.mark.parametrize("column", ["building_id", "station", "floors", "covered"])
@pytest.mark.parametrize("change", ["none", "value", "missing", "dtype"])
def test_typed_columns_agree_with_pandas_equals(column, change):
    buildings = _buildings()
    missing = _missing(buildings)
    positions = buildings.index.get_indexer(missing.index)
    ours = missing[column].copy()
    if change == "value":
        ours.iloc[3] = ours.iloc[4] if ours.iloc[3] != ours.iloc[4] else ours.iloc[5]
    elif change == "missing":
        ours.iloc[0] = None if column != "covered" else (not ours.iloc[0])
    elif change == "dtype":
        other = {"building_id": "str", "station": "string", "floors": "float32"}
        ours = ours.astype(other.get(column, "int64"))
    expected = _reference_same_values(ours, buildings[column], positions)
    assert gp._same_values(ours, buildings[column], positions) == expected
    if change == "none":
        assert expected


# --------------------------------------------------------------------------------------------
# geometry kinds and extent from the base rows


@pytest.mark.parametrize("other", ["polygon outside", "polygon inside", "z outside", "none"])
def test_geometry_kinds_follow_from_the_base_rows(other):
    buildings = _buildings()
    geoms = buildings.geometry.to_numpy().copy()
    buildings["shortfall_3min_s"] = np.where(np.arange(len(buildings)) < 30, 5.0, -5.0)
    # rows 0-29 are the subset, rows 30+ outside it
    at = 40 if "outside" in other else 10
    if other.startswith("polygon"):
        geoms[at] = shapely.buffer(geoms[at], 3.0)
    elif other.startswith("z"):
        geoms[at] = shapely.Point(1.0, 2.0, 3.0)
    buildings = buildings.set_geometry(gpd.GeoSeries(geoms, crs=buildings.crs))
    missing = _missing(buildings)
    # the writer would give a table of the subset its own geometry type: the kinds must agree
    kinds = [
        (sorted(set(shapely.get_type_id(f.geometry.to_numpy()))), bool(f.has_z.any()))
        for f in (missing, buildings)
    ]
    plan = _plan(missing, buildings)
    assert (plan is not None) == (kinds[0] == kinds[1])
    assert (plan is not None) == (other in ("polygon inside", "none"))


@pytest.mark.parametrize("holes", [False, True])
def test_the_view_extent_is_the_frames_total_bounds(holes):
    buildings = _buildings(200, seed=9)
    buildings["shortfall_3min_s"] = np.where(buildings.geometry.x > 400, 10.0, -1.0)
    if holes:
        geoms = buildings.geometry.to_numpy().copy()
        geoms[buildings.geometry.x.to_numpy().argmax()] = shapely.Point()
        geoms[:5] = None
        buildings = buildings.set_geometry(gpd.GeoSeries(geoms, crs=buildings.crs))
    missing = _missing(buildings)
    plan = _plan(missing, buildings)
    np.testing.assert_array_equal(gp._total_bounds(plan), missing.total_bounds)


def test_feature_count_and_id_range_are_sqlites(tmp_path):
    buildings = _buildings()
    path = tmp_path / "c.gpkg"
    write_results_gpkg({"buildings": buildings}, path)
    with contextlib.closing(sqlite3.connect(path)) as con:
        counted = con.execute("SELECT count(*), min(fid), max(fid) FROM buildings").fetchone()
        assert (feature_count(con, "buildings"), *feature_id_range(con, "buildings", "fid")) == (
            counted
        )
        con.execute("DELETE FROM gpkg_ogr_contents")  # no kept count: SQLite counts
        assert feature_count(con, "buildings") == counted[0] == len(buildings)


# --------------------------------------------------------------------------------------------
# the file


def test_the_file_reads_back_as_the_frames(tmp_path):
    buildings = _buildings(300, seed=11)
    missing = _missing(buildings)
    layers = {"buildings": buildings, "access_missing": missing}
    fast, tables = tmp_path / "fast.gpkg", tmp_path / "tables.gpkg"
    write_results_gpkg(layers, fast)
    write_results_gpkg(layers, tables, views=False)
    with contextlib.closing(sqlite3.connect(fast)) as con:
        kind = con.execute("SELECT type FROM sqlite_master WHERE name = 'access_missing'")
        assert kind.fetchone() == ("view",)
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("SELECT rtreecheck('rtree_buildings_geom')").fetchone() == ("ok",)
    for name, frame in layers.items():
        got = pyogrio.read_dataframe(fast, layer=name, use_arrow=True)
        old = pyogrio.read_dataframe(tables, layer=name, use_arrow=True)
        pd.testing.assert_frame_equal(
            pd.DataFrame(got.drop(columns="geometry")), pd.DataFrame(old.drop(columns="geometry"))
        )
        assert shapely.equals_identical(got.geometry.to_numpy(), old.geometry.to_numpy()).all()
        assert shapely.equals_identical(got.geometry.to_numpy(), frame.geometry.to_numpy()).all()
        assert got["building_id"].tolist() == frame["building_id"].tolist()
        info = pyogrio.read_info(fast, layer=name)
        assert info["features"] == len(frame)
        assert np.allclose(info["total_bounds"], frame.total_bounds, rtol=0, atol=1e-9)


@pytest.mark.parametrize("user", [None, "cache_size=-4000", "page_size=8192"])
def test_the_file_has_big_pages_and_the_users_setting_is_restored(tmp_path, user):
    pyogrio.set_gdal_config_options({"OGR_SQLITE_PRAGMA": user})
    try:
        path = write_results_gpkg({"buildings": _buildings()}, tmp_path / "p.gpkg")
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_PRAGMA") == user
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_PRAGMA": None})
    with contextlib.closing(sqlite3.connect(path)) as con:
        size = con.execute("PRAGMA page_size").fetchone()[0]
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("SELECT rtreecheck('rtree_buildings_geom')").fetchone() == ("ok",)
    assert size == (8192 if user == "page_size=8192" else 32768)
    assert len(pyogrio.read_dataframe(path, layer="buildings", bbox=(0, 0, 500, 500))) > 0


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="no ogrinfo (GDAL) on PATH")
def test_the_system_gdal_reads_the_view_by_box(tmp_path):
    buildings = _buildings(400, seed=13)
    missing = _missing(buildings)
    path = write_results_gpkg(
        {"buildings": buildings, "access_missing": missing}, tmp_path / "o.gpkg"
    )
    box = (200.0, 300.0, 700.0, 650.0)
    out = subprocess.run(
        ["ogrinfo", "-ro", "-q", "-geom=NO", "-spat", *map(repr, box), str(path), "access_missing"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ids = set(re.findall(r"building_id \(String\) = (B\d+)", out))
    inside = missing[missing.intersects(shapely.box(*box))]
    assert ids == set(inside["building_id"]) and len(ids) > 10
