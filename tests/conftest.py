"""Shared fixtures: a tiny synthetic district written to disk the way users hand data over."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import settings
from shapely.geometry import box

from firegrid.spatial.io.crs import wgs84_to_gcj02

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHANGHAI_OSM = SHARED_DATA / "shanghai_roads" / "shanghai_center.osm"
DEMO = REPO / "data" / "demo"

# About 1 km × 1 km in central Shanghai.
LON0, LAT0 = 121.44, 31.21
DLON, DLAT = 0.0105, 0.009


# CI (`.ci/run` exports CI=true) installs Chromium, chromedriver and selenium: there a browser
# test that skips is a broken CI environment, reported as a failure, never a silent pass.
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
MUST_RUN_IN_CI = ("browser",)  # markers of tests whose skip fails CI

# In CI the property tests draw the same examples every run, so whether a commit lands does not
# depend on luck; run them locally (random draws) to search further.
settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    settings.load_profile("ci")


def pytest_report_header(config):
    data = "present" if SHARED_DATA.exists() else f"ABSENT ({SHARED_DATA}): real-OSM tests skip"
    mode = "on: a skipped browser test fails" if IN_CI else "off"
    return [f"firegrid: CI mode {mode}; shared OSM data {data}"]


def _fail_skip_in_ci(report, what: str) -> None:
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"CI must run {what}, but it skipped: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (
        IN_CI
        and report.skipped
        and not hasattr(report, "wasxfail")
        and any(item.get_closest_marker(m) for m in MUST_RUN_IN_CI)
    ):
        _fail_skip_in_ci(report, f"the {item.nodeid} test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # A module that skips as a whole (e.g. importorskip("selenium")) never reaches the hook above.
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and Path(str(collector.path)).name == "test_browser.py":
        _fail_skip_in_ci(report, "the browser tests")


def requires_shanghai():
    return pytest.mark.skipif(
        not SHANGHAI_OSM.exists(), reason=f"shared OSM extract not found at {SHANGHAI_OSM}"
    )


def tiny_grids() -> gpd.GeoDataFrame:
    rows = [("S1", "示范街道", 1, None, box(LON0, LAT0, LON0 + DLON, LAT0 + DLAT))]
    for i, (x0, x1) in enumerate([(0, 0.5), (0.5, 1)]):
        cid = f"C{i + 1}"
        rows.append(
            (
                cid,
                f"社区{i + 1}",
                2,
                "S1",
                box(LON0 + x0 * DLON, LAT0, LON0 + x1 * DLON, LAT0 + DLAT),
            )
        )
        for j, (y0, y1) in enumerate([(0, 0.5), (0.5, 1)]):
            rows.append(
                (
                    f"{cid}-{j + 1}",
                    f"网格{i + 1}{j + 1}",
                    3,
                    cid,
                    box(LON0 + x0 * DLON, LAT0 + y0 * DLAT, LON0 + x1 * DLON, LAT0 + y1 * DLAT),
                )
            )
    return gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["grid_id", "name", "level", "parent_id", "geometry"]),
        geometry="geometry",
        crs="EPSG:4326",
    )


def tiny_buildings(n: int = 12) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(7)
    x = LON0 + rng.uniform(0.1, 0.9, n) * DLON
    y = LAT0 + rng.uniform(0.1, 0.9, n) * DLAT
    geoms = [box(a, b, a + 0.0002, b + 0.00015) for a, b in zip(x, y, strict=True)]
    return gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:03d}" for i in range(n)],
            "use": ["residential"] * (n - 2) + ["shop", "office"],
            "floors": rng.integers(2, 8, n),
            "year_built": rng.integers(1960, 2020, n),
            "wood_stairs": rng.integers(0, 2, n).astype(bool),
            "residents": rng.integers(0, 80, n),
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


def tiny_hydrants_wgs84(n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0.15, 0.85, n)
    return LON0 + t * DLON, LAT0 + (1 - t) * DLAT


def write_hydrants_csv(path: Path, lon, lat, *, encoding: str = "gbk", statuses=None) -> Path:
    n = len(lon)
    df = pd.DataFrame(
        {
            "编号": [f"H{i:02d}" for i in range(n)],
            "状态": statuses or (["完好"] * (n - 1) + ["损坏"]),
            "流量(L/s)": ["15"] * n,
            "经度": [f"{v:.8f}" for v in lon],
            "纬度": [f"{v:.8f}" for v in lat],
        }
    )
    df.to_csv(path, index=False, encoding=encoding)
    return path


def write_stations_csv(path: Path) -> Path:
    lon, lat = wgs84_to_gcj02(
        np.array([LON0 + 0.3 * DLON, LON0 + 0.7 * DLON]),
        np.array([LAT0 + 0.5 * DLAT, LAT0 + 0.4 * DLAT]),
    )
    pd.DataFrame(
        {
            "编号": ["F1", "M1"],
            "名称": ["消防救援站", "一号微站"],
            "类型": ["消防救援站", "微型消防站"],
            "车辆": ["消防车", "电动车"],
            "出动时间(秒)": ["60", "45"],
            "经度": lon,
            "纬度": lat,
        }
    ).to_csv(path, index=False, encoding="utf-8-sig")
    return path


CONFIG = """\
[district]
name = "tiny test district"
as_of = "2026-06-30"

[layers.grids]
file = "grids.gpkg"

[layers.buildings]
file = "buildings.geojson"

[layers.hydrants]
file = "hydrants.csv"
crs = "GCJ-02"
lon = "经度"
lat = "纬度"
[layers.hydrants.columns]
"编号" = "hydrant_id"
"状态" = "status"
"流量(L/s)" = "flow_lps"

[layers.stations]
file = "stations.csv"
crs = "GCJ-02"
[layers.stations.columns]
"编号" = "station_id"
"名称" = "name"
"类型" = "kind"
"车辆" = "vehicle"
"出动时间(秒)" = "turnout_s"
"""


@pytest.fixture
def tiny_district(tmp_path: Path) -> Path:
    """A folder holding a valid tiny district and its config; returns the config path."""
    tiny_grids().to_file(tmp_path / "grids.gpkg", layer="grids")
    tiny_buildings().to_file(tmp_path / "buildings.geojson", driver="GeoJSON")
    lon, lat = wgs84_to_gcj02(*tiny_hydrants_wgs84())
    write_hydrants_csv(tmp_path / "hydrants.csv", lon, lat)
    write_stations_csv(tmp_path / "stations.csv")
    (tmp_path / "district.toml").write_text(CONFIG, encoding="utf-8")
    return tmp_path / "district.toml"
