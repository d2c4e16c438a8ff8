"""``access_missing`` in ``results.gpkg`` as a spatial view over ``buildings``: read back by
GDAL (pyogrio, GeoPandas) it is the frame the run computed, and the file written the old way
(every layer a table) reads back the same, layer by layer; a frame that is not exactly a row
subset of the buildings is written as a table."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from functools import partial

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

import firegrid.reports as reports
from firegrid.reports import GPKG_FILE, without_personal, write_results_gpkg
from tests._demo import requires_demo

pytestmark = requires_demo()


def _kind(gpkg, name: str) -> str | None:
    """``table`` or ``view``: what SQLite holds under ``name``."""
    with contextlib.closing(sqlite3.connect(gpkg)) as con:
        row = con.execute("SELECT type FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def _same_value(a, b) -> bool:
    """Equal, or both missing (NaN, None, NA)."""
    if pd.isna(a) or pd.isna(b):
        return bool(pd.isna(a) and pd.isna(b))
    return bool(a == b)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(run, folder written with the view, folder written the old way): the demo up to the
    access step, written twice."""
    from firegrid.pipeline import demo_config_path, run_pipeline, write_run_outputs

    run = run_pipeline(demo_config_path(), until="access", progress=False)
    root = tmp_path_factory.mktemp("access_missing_view")
    write_run_outputs(run, root / "view", with_map=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reports, "write_results_gpkg", partial(write_results_gpkg, views=False))
        write_run_outputs(run, root / "table", with_map=False)
    return run, root / "view", root / "table"


def _expected(run) -> gpd.GeoDataFrame:
    """The frame written as ``access_missing``: the run's, without personal columns."""
    allow = run.config.params["map"].allow_fields
    return without_personal(run.layers["access_missing"], allow=allow)


def test_demo_writes_a_view_and_lists_no_extra_layer(demo):
    _, view, table = demo
    assert _kind(view / GPKG_FILE, "access_missing") == "view"
    assert _kind(table / GPKG_FILE, "access_missing") == "table"
    # The table of the view's own columns is no layer (this run has no attribute tables,
    # when GDAL otherwise lists every table of the file).
    assert _kind(view / GPKG_FILE, "access_missing_view_rows") == "table"
    assert pyogrio.list_layers(view / GPKG_FILE).tolist() == (
        pyogrio.list_layers(table / GPKG_FILE).tolist()
    )
    # The view stores no building twice: smaller than the file with the copy.
    assert (view / GPKG_FILE).stat().st_size < (table / GPKG_FILE).stat().st_size


@pytest.mark.parametrize("reader", ["pyogrio", "pyogrio-arrow", "geopandas"])
def test_view_reads_back_as_the_frame(demo, reader):
    run, view, table = demo
    frame = _expected(run)
    read = {
        "pyogrio": partial(pyogrio.read_dataframe, use_arrow=False),
        "pyogrio-arrow": partial(pyogrio.read_dataframe, use_arrow=True),
        "geopandas": partial(gpd.read_file, engine="pyogrio"),
    }[reader]
    got = read(view / GPKG_FILE, layer="access_missing")
    old = read(table / GPKG_FILE, layer="access_missing")
    assert len(frame) == 2256  # buildings missing the 3- or the 5-minute target
    assert list(got.columns) == [*(c for c in frame.columns if c != "geometry"), "geometry"]
    assert got.dtypes.to_dict() == old.dtypes.to_dict()
    assert got.crs == frame.crs
    # Row order: worst first, as computed; geometry exact.
    assert got["building_id"].tolist() == frame["building_id"].tolist()
    assert shapely.equals_identical(got.geometry.to_numpy(), frame.geometry.to_numpy()).all()
    for col in frame.columns.drop("geometry"):
        pairs = zip(got[col].tolist(), frame[col].tolist(), strict=True)
        assert all(_same_value(a, b) for a, b in pairs), col
    assert got["shortfall_s"].is_monotonic_decreasing


def test_every_layer_reads_as_written_the_old_way(demo):
    _, view, table = demo
    for name, _ in pyogrio.list_layers(table / GPKG_FILE):
        for arrow in (False, True):
            old = pyogrio.read_dataframe(table / GPKG_FILE, layer=name, use_arrow=arrow)
            new = pyogrio.read_dataframe(view / GPKG_FILE, layer=name, use_arrow=arrow)
            pd.testing.assert_frame_equal(new, old, check_exact=True)
        info_old = pyogrio.read_info(table / GPKG_FILE, layer=name)
        info_new = pyogrio.read_info(view / GPKG_FILE, layer=name)
        for key in ("crs", "fields", "dtypes", "ogr_types", "ogr_subtypes", "geometry_type"):
            assert np.array_equal(info_new[key], info_old[key]), (name, key)
        assert info_new["features"] == info_old["features"], name
        assert info_new["total_bounds"] == info_old["total_bounds"], name


def test_view_uses_the_buildings_rtree_and_ids(demo):
    _, view, _ = demo
    info = pyogrio.read_info(view / GPKG_FILE, layer="access_missing")
    assert info["capabilities"]["fast_spatial_filter"]
    # Feature ids are the buildings' own: the same building under the same id in both layers.
    missing = pyogrio.read_dataframe(view / GPKG_FILE, layer="access_missing", fid_as_index=True)
    buildings = pyogrio.read_dataframe(view / GPKG_FILE, layer="buildings", fid_as_index=True)
    assert missing.index.is_unique
    assert (buildings.loc[missing.index, "building_id"] == missing["building_id"]).all()


def test_spatial_filter_returns_the_same_rows(demo):
    _, view, table = demo
    x0, y0, x1, y1 = pyogrio.read_info(table / GPKG_FILE, layer="access_missing")["total_bounds"]
    rng = np.random.default_rng(11)
    seen = 0
    for _ in range(8):
        xa, xb = np.sort(rng.uniform(x0, x1, 2))
        ya, yb = np.sort(rng.uniform(y0, y1, 2))
        for arrow in (False, True):
            got = [
                pyogrio.read_dataframe(
                    f / GPKG_FILE, layer="access_missing", bbox=(xa, ya, xb, yb), use_arrow=arrow
                )
                .sort_values("building_id")
                .reset_index(drop=True)
                for f in (view, table)
            ]
            pd.testing.assert_frame_equal(got[0], got[1], check_exact=True)
            seen += len(got[0])
    assert seen > 0


def test_diff_of_the_two_folders(demo, tmp_path):
    from firegrid.cli import main

    _, view, table = demo
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["diff", str(table), str(view), "--out", str(tmp_path / "changes")])
    assert code == 0, err.getvalue()
    summary = json.loads((tmp_path / "changes" / "diff_summary.json").read_text("utf-8"))
    changes = pd.read_csv(tmp_path / "changes" / "changes_buildings.csv")
    assert len(changes) == 2560, summary
    assert (changes.filter(like="change").fillna(0).select_dtypes("number") == 0).all().all()


# --------------------------------------------------------------------------------------------
# Small hand-made frames: when the view must not be written


def _buildings(n: int = 40) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
    return gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:03d}" for i in range(n)],
            "floors": rng.integers(1, 30, n).astype(float),
            "wood_stairs": rng.random(n) < 0.3,
            "note": ["ok"] * n,
            "shortfall_3min_s": np.where(rng.random(n) < 0.2, np.nan, rng.normal(0, 60, n)),
        },
        geometry=shapely.buffer(shapely.points(x, y), 5.0),
        crs=32651,
    )


def _missing(buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    short = buildings["shortfall_3min_s"].fillna(np.inf)
    out = buildings.loc[short > 0].copy()
    out["shortfall_s"] = short[short > 0]
    out["grid_id_l1"] = "G1"
    return out.iloc[np.argsort(-out["shortfall_s"].to_numpy(), kind="stable")]


def _written(path, frames) -> dict[str, str | None]:
    write_results_gpkg(frames, path)
    return {name: _kind(path, name) for name in frames}


def _check_read_back(path, frame):
    got = pyogrio.read_dataframe(path, layer="access_missing")
    assert got["building_id"].tolist() == frame["building_id"].tolist()
    assert shapely.equals_identical(got.geometry.to_numpy(), frame.geometry.to_numpy()).all()
    assert np.array_equal(got["shortfall_s"], frame["shortfall_s"])
    assert np.isinf(got["shortfall_s"]).sum() == np.isinf(frame["shortfall_s"]).sum() > 0


def test_subset_is_a_view(tmp_path):
    buildings = _buildings()
    missing = _missing(buildings)
    kinds = _written(tmp_path / "a.gpkg", {"buildings": buildings, "access_missing": missing})
    assert kinds == {"buildings": "table", "access_missing": "view"}
    _check_read_back(tmp_path / "a.gpkg", missing)


@pytest.mark.parametrize("change", ["value", "dtype", "geometry", "label", "order", "rank"])
def test_not_a_subset_is_a_table(tmp_path, change):
    buildings = _buildings()
    missing = _missing(buildings)
    if change == "value":
        missing.loc[missing.index[5], "floors"] += 1
    elif change == "dtype":
        missing["floors"] = missing["floors"].astype("float32")
    elif change == "geometry":
        geoms = missing.geometry.to_numpy().copy()
        geoms[0] = shapely.set_precision(geoms[0], 0.001)
        missing = missing.set_geometry(geoms)
    elif change == "label":
        missing = missing.rename(index={missing.index[0]: 10_000})
    elif change == "order":  # the buildings written are not the frame of the subset
        buildings = buildings.iloc[::-1]
        buildings.index = range(len(buildings))
    else:  # a column of the subset's own named as one of the view's rows table
        missing["Rank"] = np.arange(len(missing))
    kinds = _written(tmp_path / "b.gpkg", {"buildings": buildings, "access_missing": missing})
    assert kinds["access_missing"] == "table"
    if change != "label":
        _check_read_back(tmp_path / "b.gpkg", missing)


def test_personal_filter_must_agree(tmp_path):
    # A phone number in a building outside the subset: the buildings layer drops the column,
    # the subset keeps it, so the view could not read it from the buildings.
    buildings = _buildings()
    missing = _missing(buildings)
    outside = buildings.index.difference(missing.index)[0]
    buildings.loc[outside, "note"] = "call 13812345678"
    kinds = _written(tmp_path / "c.gpkg", {"buildings": buildings, "access_missing": missing})
    assert kinds["access_missing"] == "table"
    got = pyogrio.read_dataframe(tmp_path / "c.gpkg", layer="access_missing")
    assert "note" in got.columns
    assert "note" not in pyogrio.read_dataframe(tmp_path / "c.gpkg", layer="buildings").columns


def test_no_buildings_or_empty_subset(tmp_path):
    buildings = _buildings()
    missing = _missing(buildings)
    assert _written(tmp_path / "d.gpkg", {"access_missing": missing}) == {"access_missing": "table"}
    kinds = _written(
        tmp_path / "e.gpkg", {"buildings": buildings, "access_missing": missing.iloc[:0]}
    )
    assert kinds == {"buildings": "table", "access_missing": None}


def test_full_demo_run_writes_the_view():
    """The shared ``firegrid demo`` run (every step; ``buildings`` carries the grid ids then):
    ``access_missing`` is the view, and each of its rows is its building's row, with
    ``shortfall_s`` the larger shortfall of the building (infinite when unreachable)."""
    from tests._demo import demo_cli_run

    folder, code, _, err = demo_cli_run()
    assert code == 0, err
    gpkg = folder / GPKG_FILE
    assert _kind(gpkg, "access_missing") == "view"
    missing = pyogrio.read_dataframe(gpkg, layer="access_missing")
    buildings = pyogrio.read_dataframe(gpkg, layer="buildings").set_index("building_id")
    rows = buildings.loc[missing["building_id"]]
    for col in missing.columns.drop(["building_id", "shortfall_s"]):
        if col != "geometry":
            pairs = zip(missing[col].tolist(), rows[col].tolist(), strict=True)
            assert all(_same_value(a, b) for a, b in pairs), col
    short = rows[["shortfall_3min_s", "shortfall_5min_s"]].fillna(np.inf).max(axis=1)
    assert np.array_equal(missing["shortfall_s"].to_numpy(), short.to_numpy())
    assert (
        (short > 0).sum()
        == len(missing)
        == (
            buildings[["shortfall_3min_s", "shortfall_5min_s"]].fillna(np.inf).max(axis=1) > 0
        ).sum()
    )
    assert missing["shortfall_s"].is_monotonic_decreasing


def test_a_view_sqlite_would_read_out_of_order_is_a_table(tmp_path, monkeypatch):
    # The writer's last check (SQLite's plan for reading the view whole) refuses: the view
    # and its rows table are rolled back and dropped, and the layer is written as a table.
    monkeypatch.setattr("firegrid.geopackage._reads_in_rank_order", lambda con, name: False)
    buildings = _buildings()
    missing = _missing(buildings)
    path = tmp_path / "f.gpkg"
    assert _written(path, {"buildings": buildings, "access_missing": missing}) == {
        "buildings": "table",
        "access_missing": "table",
    }
    assert _kind(path, "access_missing_view_rows") is None
    with contextlib.closing(sqlite3.connect(path)) as con:
        counted = dict(con.execute("SELECT table_name, feature_count FROM gpkg_ogr_contents"))
    assert counted == {"buildings": len(buildings), "access_missing": len(missing)}
    _check_read_back(path, missing)
