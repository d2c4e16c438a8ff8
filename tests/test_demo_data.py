"""The embedded synthetic demo district: reproducible, in range, consistent and loadable."""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import sqlite3
import sys
import tomllib
from datetime import date
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from sklearn.metrics import roc_auc_score

from firegrid.spatial.io.crs import gcj02_to_wgs84
from firegrid.spatial.io.layers import BUILDING_USES, SCHEMAS

DATA = Path(__file__).resolve().parents[1] / "data"
DEMO = DATA / "demo"
UTM = "EPSG:32651"
AS_OF = "2026-06-30"
LAYER_FILES = (
    "grids",
    "buildings",
    "hydrants",
    "water_sources",
    "stations",
    "hazards",
    "incidents",
)


def _load_make_demo():
    spec = importlib.util.spec_from_file_location("make_demo", DATA / "make_demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_demo():
    return _load_make_demo()


@pytest.fixture(scope="module")
def graph():
    return ox.graph_from_xml(DEMO / "roads.osm", simplify=True, retain_all=True)


@pytest.fixture(scope="module")
def edges(graph):
    return ox.graph_to_gdfs(graph, nodes=False).to_crs(UTM)


@pytest.fixture(scope="module")
def river():
    water = gpd.read_file(DEMO / "water.geojson").to_crs(UTM)
    return shapely.union_all(water.geometry.values)


@pytest.fixture(scope="module")
def buildings():
    return gpd.read_file(DEMO / "buildings.gpkg", layer="buildings").to_crs(UTM)


@pytest.fixture(scope="module")
def grids():
    return gpd.read_file(DEMO / "grids.gpkg", layer="grids").to_crs(UTM)


@pytest.fixture(scope="module")
def hydrants():
    return gpd.read_file(DEMO / "hydrants_wgs84.gpkg").to_crs(UTM)


def _csv(path: Path, encoding: str) -> pd.DataFrame:
    text = path.read_bytes().decode(encoding)
    return pd.DataFrame(list(csv.DictReader(io.StringIO(text))))


def _gcj_points(df: pd.DataFrame) -> gpd.GeoSeries:
    lon, lat = gcj02_to_wgs84(df["经度"].astype(float), df["纬度"].astype(float))
    return gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(UTM)


AFTER_SITING_FILES = {"after_siting.toml", "stations_after_siting.csv"}


@pytest.mark.slow
def test_regeneration_is_byte_identical(tmp_path, make_demo):
    a, b = tmp_path / "a", tmp_path / "b"
    make_demo.generate(a)
    make_demo.generate(b)
    # The before/after-siting scenario's files are made by data/make_after_siting.py from a run.
    committed = sorted(p.name for p in DEMO.iterdir() if p.name not in AFTER_SITING_FILES)
    assert sorted(p.name for p in a.iterdir()) == committed
    for name in committed:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
        if Path(name).suffix in {".gpkg", ".geojson"}:
            # Binary layout may vary with the GDAL build; the content may not.
            assert_geodataframe_equal(gpd.read_file(a / name), gpd.read_file(DEMO / name))
        else:
            assert (a / name).read_bytes() == (DEMO / name).read_bytes(), name


def test_demo_is_small_and_labelled_synthetic():
    assert sum(p.stat().st_size for p in DEMO.iterdir()) < 4_000_000
    assert "SYNTHETIC" in (DEMO / "README.md").read_text(encoding="utf-8")
    head = (DEMO / "roads.osm").read_text(encoding="utf-8")[:600]
    assert "synthetic" in head.lower()
    for name in ("grids", "buildings", "incidents"):
        with sqlite3.connect(DEMO / f"{name}.gpkg") as con:
            identifier, description = con.execute(
                "SELECT identifier, description FROM gpkg_contents WHERE table_name = ?", (name,)
            ).fetchone()
        con.close()
        assert "synthetic" in identifier.lower() and "synthetic" in description.lower()


def test_config_names_every_layer_file():
    cfg = tomllib.loads((DEMO / "demo.toml").read_text(encoding="utf-8"))
    assert "合成" in cfg["district"]["name"] and "synthetic" in cfg["district"]["name"]
    assert cfg["district"]["as_of"] == AS_OF
    assert (DEMO / cfg["network"]["source"]).exists()
    assert set(cfg["layers"]) == set(LAYER_FILES)
    for spec in cfg["layers"].values():
        assert (DEMO / spec["file"]).exists()
    assert cfg["layers"]["hydrants"]["crs"] == "GCJ-02"
    assert cfg["layers"]["stations"]["crs"] == "GCJ-02"
    hydrant_headers = next(
        csv.reader(io.StringIO((DEMO / "hydrants.csv").read_bytes().decode("gbk")))
    )
    assert set(cfg["layers"]["hydrants"]["columns"]) | {"经度", "纬度"} == set(hydrant_headers)
    assert cfg["map"]["allow_fields"] == []
    for section in ("access", "water", "risk"):
        assert section in cfg


def test_roads_load_with_osmnx(graph, edges):
    assert 600 <= len(graph) <= 1500
    # Every node reachable from every other, one-way streets included.
    assert nx.is_strongly_connected(graph)
    classes = set(edges["highway"].explode())
    assert {
        "primary",
        "secondary",
        "tertiary",
        "residential",
        "service",
        "living_street",
    } <= classes
    assert edges["maxspeed"].notna().any() and edges["name"].notna().mean() > 0.9
    one_way = edges[edges["oneway"].astype(bool)]
    assert len(one_way) >= 4
    # A one-way edge has no twin in the opposite direction.
    pairs = set(edges.index.droplevel("key"))
    assert all((v, u) not in pairs for u, v, _ in one_way.index)


def test_only_bridges_cross_the_river(graph, edges, river):
    crossing = edges[edges.intersects(river)]
    assert len(crossing) > 0
    assert (crossing["bridge"] == "yes").all()
    bridges = edges[edges["bridge"] == "yes"]
    n_bridges = len({frozenset((u, v)) for u, v, _ in bridges.index})
    assert 2 <= n_bridges <= 4
    assert len({frozenset((u, v)) for u, v, _ in crossing.index}) == n_bridges


def test_river_makes_travel_longer_than_straight_line(graph, river):
    nodes = ox.graph_to_gdfs(graph, edges=False).to_crs(UTM)
    centre = river.centroid
    north = nodes[nodes.geometry.y > centre.y + 200]
    south = nodes[nodes.geometry.y < centre.y - 200]
    # The westernmost nodes on either bank are far from every bridge.
    a = south.geometry.x.idxmin()
    b = north.geometry.x.idxmin()
    straight = nodes.geometry[a].distance(nodes.geometry[b])
    travel = nx.shortest_path_length(graph.to_undirected(), a, b, weight="length")
    assert travel > 1.5 * straight


def test_grid_hierarchy_tiles_exactly(grids):
    levels = grids["level"].value_counts()
    assert levels[1] == 1 and 6 <= levels[2] <= 10 and 60 <= levels[3] <= 80
    assert grids["grid_id"].is_unique
    by_id = grids.set_index("grid_id")
    top = grids[grids["level"] == 1]
    assert top["parent_id"].isna().all() and "合成" in top["name"].iloc[0]
    for level in (2, 3):
        children = grids[grids["level"] == level]
        assert children["parent_id"].isin(by_id.index).all()
        assert (by_id.loc[children["parent_id"], "level"].to_numpy() == level - 1).all()
        for parent_id, group in children.groupby("parent_id"):
            parent = by_id.geometry[parent_id]
            assert group.geometry.difference(parent).area.max() < 1e-3
            assert abs(group.area.sum() - parent.area) < 1e-6 * parent.area
            union = shapely.union_all(group.geometry.values)
            assert union.symmetric_difference(parent).area < 1e-3
    assert grids[grids["level"] == 2]["name"].str.endswith("居委").all()
    assert grids[grids["level"] == 3]["name"].str.match(r"^第\d+网格$").all()


def test_buildings_schema_and_mix(buildings):
    canonical = [c.name for c in SCHEMAS["buildings"].columns]
    assert list(buildings.columns) == canonical[:1] + ["name"] + canonical[1:] + [
        "contact_phone",
        "geometry",
    ]
    assert 2000 <= len(buildings) <= 4000
    assert buildings["building_id"].is_unique
    assert set(buildings["use"]) <= set(BUILDING_USES)
    uses = buildings["use"].value_counts()
    assert {"residential", "office", "shop", "three_in_one", "warehouse", "public"} <= set(
        uses.index
    )
    assert 1 <= uses["warehouse"] <= 30
    old = (buildings["use"] == "residential") & (buildings["year_built"] < 2000)
    assert 0.6 <= old.mean() <= 0.72
    old_b = buildings[old]
    assert old_b["floors"].between(2, 7).mean() > 0.95
    assert old_b["wood_stairs"].eq(1).mean() > 0.1
    assert old_b["wiring_condition"].eq("aged").mean() > 0.2
    assert old_b["ebike_indoor"].eq(1).mean() > 0.1 and old_b["group_rental"].eq(1).any()
    assert old_b["elderly_alone"].sum() > 0
    assert (buildings.loc[buildings["use"] == "office", "height_m"] >= 50).all()
    for col in ("year_built", "floors", "wood_stairs", "wiring_condition", "ebike_indoor"):
        assert 0.005 <= buildings[col].isna().mean() <= 0.05, col
    phones = buildings["contact_phone"].dropna()
    assert len(phones) > 0.9 * len(buildings)
    assert phones.str.fullmatch(r"1[3-9]\d{9}").all()


def test_buildings_clear_of_roads_river_and_each_other(buildings, edges, river):
    roads = shapely.union_all(edges.geometry.values)
    assert not buildings.intersects(roads).any()
    assert not buildings.intersects(river).any()
    left, right = buildings.sindex.query(buildings.geometry, predicate="intersects")
    assert (left == right).all()


def test_shops_face_main_roads(buildings, edges):
    main = edges[edges["highway"].isin(["primary", "secondary", "tertiary"])]
    shops = buildings[buildings["use"] == "shop"]
    assert (shops.distance(shapely.union_all(main.geometry.values)) < 35).mean() > 0.95


def test_hydrant_csv_in_gcj02_reads_back_within_half_a_metre(hydrants):
    raw = (DEMO / "hydrants.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # GBK, as Chinese Excel saves it
    table = _csv(DEMO / "hydrants.csv", "gbk")
    assert list(table.columns) == ["编号", "状态", "流量(L/s)", "经度", "纬度"]
    assert set(table["状态"]) == {"完好", "损坏", "缺失"}
    back = _gcj_points(table)
    ref = hydrants.set_index("hydrant_id").geometry[table["编号"]]
    d = back.distance(gpd.GeoSeries(ref.to_numpy(), crs=UTM))
    assert d.max() < 0.5
    # The CSV really is offset: read as plain WGS84 it would be hundreds of metres off.
    naive = gpd.GeoSeries(
        gpd.points_from_xy(table["经度"].astype(float), table["纬度"].astype(float)),
        crs="EPSG:4326",
    ).to_crs(UTM)
    assert naive.distance(gpd.GeoSeries(ref.to_numpy(), crs=UTM)).min() > 100


def test_hydrants_near_roads_with_a_water_deficient_zone(hydrants, edges, buildings):
    assert 150 <= len(hydrants) <= 250
    status = hydrants["status"].value_counts(normalize=True)
    assert 0.04 <= status["broken"] <= 0.12 and 0.005 <= status["missing"] <= 0.04
    assert hydrants.distance(shapely.union_all(edges.geometry.values)).max() < 15
    working = shapely.union_all(hydrants.loc[hydrants["status"] == "ok"].geometry.values)
    far = buildings.distance(working) > 150
    assert 0.03 <= far.mean() <= 0.3


def test_stations_ledger():
    table = _csv(DEMO / "stations.csv", "utf-8")
    assert list(table.columns) == [
        "编号",
        "名称",
        "类型",
        "车辆",
        "出动时间(秒)",
        "人数",
        "经度",
        "纬度",
    ]
    fire = table[table["类型"] == "消防救援站"]
    micro = table[table["类型"] == "微型消防站"]
    assert (
        len(fire) == 1 and fire["车辆"].iloc[0] == "消防车" and fire["出动时间(秒)"].iloc[0] == "60"
    )
    assert 4 <= len(micro) <= 8
    assert set(micro["车辆"]) <= {"电动车", "步行"}
    assert micro["出动时间(秒)"].astype(int).between(30, 60).all()
    grid = gpd.read_file(DEMO / "grids.gpkg").to_crs(UTM)
    boundary = grid.loc[grid["level"] == 1].geometry.iloc[0]
    assert _gcj_points(table).within(boundary).all()


def test_water_sources():
    ws = gpd.read_file(DEMO / "water_sources.geojson")
    assert list(ws.columns[:5]) == ["source_id", "name", "kind", "capacity_m3", "truck_access"]
    assert {"fire_pool", "tank", "natural"} <= set(ws["kind"])
    assert set(ws["truck_access"]) == {True, False}


def test_hazard_ledger_statuses():
    raw = (DEMO / "hazards.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    hz = _csv(DEMO / "hazards.csv", "utf-8-sig")
    assert list(hz.columns) == [
        "隐患编号",
        "建筑编号",
        "类别",
        "发现日期",
        "整改期限",
        "整改日期",
        "描述",
        "经度",
        "纬度",
    ]
    assert 250 <= len(hz) <= 350 and hz["隐患编号"].is_unique
    assert set(hz["类别"]) == {"一般", "重大"}
    found = pd.to_datetime(hz["发现日期"])
    deadline = pd.to_datetime(hz["整改期限"])
    fixed = pd.to_datetime(hz["整改日期"].replace("", None))
    as_of = pd.Timestamp(AS_OF)
    assert (found <= as_of).all() and (deadline > found).all()
    assert ((fixed >= found) & (fixed <= as_of))[fixed.notna()].all()
    rectified = fixed.notna()
    overdue = ~rectified & (deadline < as_of)
    still_open = ~rectified & (deadline >= as_of)
    assert rectified.sum() >= 100 and overdue.sum() >= 10 and still_open.sum() >= 10
    limit = (deadline - found).dt.days
    assert limit[hz["类别"] == "重大"].min() > limit[hz["类别"] == "一般"].max()
    ids = set(gpd.read_file(DEMO / "buildings.gpkg", columns=["building_id"])["building_id"])
    assert set(hz["建筑编号"]) <= ids


def test_incidents_follow_the_true_risk_function(make_demo, buildings):
    inc = gpd.read_file(DEMO / "incidents.gpkg", layer="incidents").to_crs(UTM)
    truth = pd.read_csv(DEMO / "truth.csv", dtype={"building_id": str})
    assert list(truth["building_id"]) == list(buildings["building_id"])
    p = truth["true_p_annual"].to_numpy()
    assert 400 <= len(inc) <= 800 and inc["incident_id"].is_unique
    assert {"incident_id", "date", "kind", "building_id"} <= set(inc.columns)
    dates = pd.to_datetime(inc["date"])
    assert dates.min() >= pd.Timestamp("2016-01-01") and dates.max() <= pd.Timestamp("2025-12-31")
    assert set(dates.dt.year) == set(range(2016, 2026))
    # Each fire lies inside the building it is attributed to.
    footprints = buildings.set_index("building_id").geometry[inc["building_id"]]
    assert inc.geometry.reset_index(drop=True).within(footprints.reset_index(drop=True)).all()
    # The count agrees with the truth (Poisson-binomial, 4 sigma).
    expected, sd = 10 * p.sum(), np.sqrt(10 * (p * (1 - p)).sum())
    assert abs(len(inc) - expected) < 4 * sd
    # The true function ranks buildings with fires well above chance.
    had_fire = truth["building_id"].isin(inc["building_id"])
    assert roc_auc_score(had_fire, p) > 0.7
    # truth.csv is true_fire_rate of the published attributes wherever none was blanked.
    complete = buildings.drop(columns=["contact_phone", "height_m"]).notna().all(axis=1)
    recomputed = make_demo.true_fire_rate(buildings[complete])
    assert np.allclose(recomputed, p[complete.to_numpy()], atol=1e-8)


def test_true_fire_rate_rises_with_each_risk_factor(make_demo):
    base = pd.DataFrame(
        {
            "use": ["residential"],
            "floors": [6],
            "year_built": [1990],
            "wood_stairs": [False],
            "wiring_condition": ["good"],
            "ebike_indoor": [False],
            "group_rental": [False],
            "elderly_alone": [0],
        }
    )
    p0 = make_demo.true_fire_rate(base)[0]
    for col, value in (
        ("year_built", 1960),
        ("wood_stairs", True),
        ("wiring_condition", "aged"),
        ("ebike_indoor", True),
        ("group_rental", True),
        ("elderly_alone", 3),
        ("use", "three_in_one"),
    ):
        changed = base.assign(**{col: [value]})
        assert make_demo.true_fire_rate(changed)[0] > p0, col
    assert 0 < p0 < 0.05


def test_readme_documents_the_coefficients(make_demo):
    text = (DEMO / "README.md").read_text(encoding="utf-8")
    for name, value in make_demo.TRUE_COEF.items():
        assert re.search(re.escape(f"`{name}` | {value:+.2f}"), text), name
    assert "python data/make_demo.py" in text
    assert date.fromisoformat(AS_OF) == make_demo.AS_OF
