"""Reading road networks (place, polygon, XML, PBF, GraphML) and vehicle profiles."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import osmnx as ox
import pandas as pd
import pyproj
import pytest
import requests
import shapely

from firegrid.spatial.errors import ConfigError, NetworkError
from firegrid.spatial.network.load import read_network, save_network
from firegrid.spatial.network.profiles import (
    AccessParams,
    VehicleProfile,
    default_profile,
    parse_maxspeed_kmh,
)
from firegrid.spatial.network.routing import GraphTable, RoutingGraph

DATA = Path(__file__).resolve().parent / "data"
RECORDED = DATA / "overpass_lujiazui.json"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHANGHAI = SHARED / "shanghai_roads" / "shanghai_center.osm"
UTM51 = pyproj.CRS.from_epsg(32651)
# The place polygon the stand-in geocoder returns (inside the recorded box).
PLACE_BOX = shapely.box(121.501, 31.233, 121.511, 31.239)


# ---------------------------------------------------------------------- offline stand-in
class FakeOSMServers:
    """Answers osmnx's HTTP requests from the recorded data, as Overpass and Nominatim would.

    Overpass: returns the recorded highway ways having a node inside the query polygon, with all
    their nodes (the ``(way(poly:...);>;);out;`` semantics). Nominatim: one administrative
    boundary, ``PLACE_BOX``, for any search.
    """

    def __init__(self, *, geocode_ok: bool = True):
        doc = json.loads(RECORDED.read_text(encoding="utf-8"))
        self.nodes = {e["id"]: e for e in doc["elements"] if e["type"] == "node"}
        self.ways = [e for e in doc["elements"] if e["type"] == "way"]
        self.geocode_ok = geocode_ok
        self.overpass_calls: list[str] = []
        self.nominatim_calls: list[dict] = []

    @staticmethod
    def _response(url: str, payload) -> requests.Response:
        r = requests.Response()
        r.status_code = 200
        r.reason = "OK"
        r.url = url
        r._content = json.dumps(payload).encode("utf-8")
        return r

    def post(self, url, data=None, **kwargs):
        query = data["data"]
        self.overpass_calls.append(query)
        assert "interpreter" in url and 'way["highway"]' in query
        coords = [float(v) for v in re.search(r"poly:'([^']+)'", query).group(1).split()]
        poly = shapely.Polygon(list(zip(coords[1::2], coords[0::2], strict=True)))  # lon, lat
        keep = []
        used = set()
        for w in self.ways:
            pts = shapely.points([(self.nodes[n]["lon"], self.nodes[n]["lat"]) for n in w["nodes"]])
            if shapely.intersects(poly, pts).any():
                keep.append(w)
                used.update(w["nodes"])
        elements = [self.nodes[n] for n in sorted(used)] + keep
        return self._response(url, {"version": 0.6, "elements": elements})

    def get(self, url, params=None, **kwargs):
        if url.endswith("/status"):
            return self._response(url, {})
        self.nominatim_calls.append(dict(params or {}))
        if not self.geocode_ok:
            return self._response(url, [])
        minx, miny, maxx, maxy = PLACE_BOX.bounds
        result = {
            "place_id": 1,
            "osm_type": "relation",
            "osm_id": 1,
            "lat": str(PLACE_BOX.centroid.y),
            "lon": str(PLACE_BOX.centroid.x),
            "class": "boundary",
            "type": "administrative",
            "place_rank": 16,
            "importance": 0.5,
            "display_name": params.get("q", ""),
            "boundingbox": [str(miny), str(maxy), str(minx), str(maxx)],
            "geojson": shapely.geometry.mapping(PLACE_BOX),
        }
        return self._response(url, [result])


@pytest.fixture
def fake_osm(monkeypatch):
    server = FakeOSMServers()
    monkeypatch.setattr(requests, "post", server.post)
    monkeypatch.setattr(requests, "get", server.get)
    monkeypatch.setattr(ox._http, "_config_dns", lambda url: None)
    monkeypatch.setattr(ox.settings, "use_cache", False)
    monkeypatch.setattr(ox.settings, "overpass_rate_limit", False)
    return server


def write_osm_xml(path: Path) -> Path:
    """The recorded Overpass elements as an OSM XML file."""
    doc = json.loads(RECORDED.read_text(encoding="utf-8"))
    root = ET.Element("osm", version="0.6", generator="FireGrid tests")
    for e in doc["elements"]:
        if e["type"] == "node":
            ET.SubElement(root, "node", id=str(e["id"]), lat=repr(e["lat"]), lon=repr(e["lon"]),
                          version="1", visible="true")  # fmt: skip
    for e in doc["elements"]:
        if e["type"] == "way":
            w = ET.SubElement(root, "way", id=str(e["id"]), version="1", visible="true")
            for n in e["nodes"]:
                ET.SubElement(w, "nd", ref=str(n))
            for k, v in e["tags"].items():
                ET.SubElement(w, "tag", k=k, v=v)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def assert_osm_graph(T: GraphTable) -> None:
    assert isinstance(T, GraphTable) and T.crs.equals(UTM51)
    G = T.to_networkx()
    assert pyproj.CRS.from_user_input(G.graph["crs"]).equals(UTM51)
    assert G.number_of_nodes() > 30 and G.number_of_edges() > 60
    tags = {k for _, _, d in G.edges(data=True) for k in d}
    assert {"highway", "oneway", "length", "name"} <= tags
    xs = np.array([d["x"] for _, d in G.nodes(data=True)])
    assert xs.min() > 100_000  # metres, not degrees
    # One-way streets kept: edges without a reverse twin exist and carry oneway=True.
    single = [(u, v) for u, v, d in G.edges(data=True) if d.get("oneway") is True]
    assert single and all(not G.has_edge(v, u) or u == v for u, v in single[:50])


# ---------------------------------------------------------------------- online (offline)
def test_place_name_downloads_through_osmnx(fake_osm):
    G = read_network("陆家嘴街道, 浦东新区, 上海市")
    assert len(fake_osm.nominatim_calls) == 1 and len(fake_osm.overpass_calls) >= 1
    assert fake_osm.nominatim_calls[0]["q"] == "陆家嘴街道, 浦东新区, 上海市"
    assert_osm_graph(G)
    # osmnx truncates to the geocoded polygon: every node lies within it (1 m tolerance).
    to_ll = pyproj.Transformer.from_crs(UTM51, 4326, always_xy=True)
    lon, lat = to_ll.transform(G.xy[:, 0], G.xy[:, 1])
    assert shapely.contains_xy(PLACE_BOX.buffer(1e-5), lon, lat).all()


def test_polygon_downloads_and_working_crs(fake_osm):
    G = read_network(PLACE_BOX, crs="EPSG:32651")
    assert_osm_graph(G)
    # The same polygon given in the working CRS gives the same network.
    poly_utm = shapely.transform(
        PLACE_BOX,
        lambda xy: np.column_stack(
            pyproj.Transformer.from_crs(4326, UTM51, always_xy=True).transform(xy[:, 0], xy[:, 1])
        ),
    )
    G2 = read_network(poly_utm, source_crs=UTM51)
    assert set(G2.node_ids) == set(G.node_ids)


def test_download_failure_is_network_error(monkeypatch):
    server = FakeOSMServers(geocode_ok=False)
    monkeypatch.setattr(requests, "get", server.get)
    monkeypatch.setattr(ox.settings, "use_cache", False)
    with pytest.raises(NetworkError, match="cannot download the road network of place 'Nowhere'"):
        read_network("Nowhere")


# ---------------------------------------------------------------------- files
def test_xml_graphml_roundtrip_routes_identically(tmp_path):
    xml = write_osm_xml(tmp_path / "roads.osm")
    G = read_network(xml)
    assert_osm_graph(G)
    path = save_network(G, tmp_path / "roads.graphml")
    G2 = read_network(path)
    assert set(G2.node_ids) == set(G.node_ids) and G2.n_edges == G.n_edges
    for prof in ("engine", "foot"):
        r1 = RoutingGraph.from_graph(G, default_profile(prof))
        r2 = RoutingGraph.from_graph(G2, default_profile(prof))
        assert (r1.csr != r2.csr).nnz == 0
        assert np.array_equal(r1.node_ids, r2.node_ids)


def test_pbf_reads_like_xml(tmp_path):
    osmium = pytest.importorskip("osmium", reason="PBF support needs the osmium package")
    xml = write_osm_xml(tmp_path / "roads.osm")
    pbf = tmp_path / "roads.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(xml)):
            writer.add(obj)
    G_pbf = read_network(pbf)
    G_xml = read_network(xml)
    assert np.array_equal(G_pbf.node_ids, G_xml.node_ids)
    np.testing.assert_array_equal(G_pbf.length, G_xml.length)
    assert G_pbf.edges["oneway"].sum() == G_xml.edges["oneway"].sum() > 0


def test_file_errors(tmp_path):
    with pytest.raises(NetworkError, match="not found"):
        read_network(tmp_path / "missing.osm")
    with pytest.raises(NetworkError, match="not found"):
        read_network(tmp_path / "missing.graphml")
    odd = tmp_path / "roads.shp"
    odd.write_text("x")
    with pytest.raises(NetworkError, match="unknown road-network file type"):
        read_network(odd)
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><node")
    with pytest.raises(NetworkError, match="bad.osm"):
        read_network(bad)
    with pytest.raises(NetworkError, match="Polygon"):
        read_network(shapely.Point(121.5, 31.2))


@pytest.mark.slow
@pytest.mark.skipif(not SHANGHAI.exists(), reason=f"shared Shanghai extract absent: {SHANGHAI}")
def test_shanghai_extract_loads_with_oneways_and_routes():
    G = read_network(SHANGHAI)
    assert G.crs.equals(UTM51)
    ways_oneway = set(G.edges.loc[G.edges["oneway"], "way_id"].tolist())
    # The extract tags 2,803 ways oneway=yes and 3 oneway=-1: every one survives as one-way.
    tagged = {
        int(w.get("id"))
        for w in ET.parse(SHANGHAI).getroot().iter("way")
        for t in w.iter("tag")
        if t.get("k") == "oneway" and t.get("v") in ("yes", "-1")
    }
    assert len(tagged) == 2806
    assert {int(i) for i in ways_oneway} == tagged
    engine = RoutingGraph.from_graph(G, default_profile("engine"))
    foot = RoutingGraph.from_graph(G, default_profile("foot"))
    assert engine.segments["oneway"].sum() > 1000
    assert not foot.segments["oneway"].any()
    assert foot.csr.nnz > engine.csr.nnz


# ---------------------------------------------------------------------- profiles
def test_profiles_defaults_and_exclusions():
    engine = default_profile("engine")
    hw = pd.Series(["primary", "footway", "steps", "residential", ["service", "residential"]])
    assert engine.allowed(hw).tolist() == [True, False, False, True, True]
    assert default_profile("foot").allowed(pd.Series(["motorway", "steps"])).tolist() == [
        False,
        True,
    ]
    assert engine.respect_oneway and not default_profile("ebike").respect_oneway
    assert not default_profile("foot").respect_oneway
    # maxspeed overrides the class speed for engines, capped, times congestion.
    sp = engine.speed_mps(pd.Series(["primary", "primary", "residential"]),
                          pd.Series(["30", None, "200"]))  # fmt: skip
    c = engine.congestion_factor
    np.testing.assert_allclose(sp, [30 * c / 3.6, 45 * c / 3.6, 60 * c / 3.6])
    foot = default_profile("foot")
    np.testing.assert_allclose(foot.speed_mps(pd.Series(["primary"]), pd.Series(["80"])), 1.5)


def test_parse_maxspeed():
    vals = pd.Series(["40", "30 mph", "CN:urban", None, "none", ["40", "60"], "['50', '70']", "x"])
    out = parse_maxspeed_kmh(vals)
    np.testing.assert_allclose(out[:3], [40, 30 * 1.609344, 50])
    assert np.isnan(out[3]) and np.isnan(out[4]) and np.isnan(out[7])
    assert out[5] == 40 and out[6] == 50


def test_access_params_from_mapping():
    p = AccessParams.from_mapping(
        {
            "target_micro_s": 200,
            "isochrone_minutes": [2, 4],
            "engine": {"congestion_factor": 0.6, "speeds_kmh": {"primary": 50}},
            "foot": {"default_speed_kmh": 6.0},
        }
    )
    assert p.target_micro_s == 200 and p.isochrone_minutes == (2.0, 4.0)
    assert p.engine.congestion_factor == 0.6 and p.engine.speeds_kmh["primary"] == 50
    assert p.engine.speeds_kmh["residential"] == 20  # defaults kept
    assert p.engine.respect_oneway and p.foot.default_speed_kmh == 6.0
    assert p.profile("ebike") == default_profile("ebike")
    with pytest.raises(ConfigError, match="target_mikro_s"):
        AccessParams.from_mapping({"target_mikro_s": 1})
    with pytest.raises(ConfigError, match=r"access\.engine.*turbo"):
        AccessParams.from_mapping({"engine": {"turbo": True}})
    with pytest.raises(ConfigError, match="congestion_factor"):
        AccessParams.from_mapping({"engine": {"congestion_factor": 1.5}})
    with pytest.raises(ConfigError, match="unknown vehicle"):
        p.profile("helicopter")
    with pytest.raises(ConfigError):
        VehicleProfile(name="x", speeds_kmh={"primary": -1})


# ---------------------------------------------------------------------- a clipped district
CLIPPED = SHARED / "shanghai_roads" / "lujiazui_clipped.osm.pbf"


def _lujiazui_district(folder: Path) -> Path:
    """A synthetic district over the clipped Lujiazui extract: 400 buildings 8-30 m off its
    streets, six e-bike micro-stations and one fire station, WGS84 GeoJSON and a config."""
    import geopandas as gpd

    from firegrid.spatial.network.osm import read_osm

    t = read_osm(CLIPPED, crs=UTM51)
    rg = RoutingGraph.from_table(t, default_profile("ebike"))
    rng = np.random.default_rng(11)
    inner = shapely.box(121.500, 31.222, 121.530, 31.245)
    to_utm = pyproj.Transformer.from_crs(4326, UTM51, always_xy=True)
    box_utm = shapely.transform(inner, lambda xy: np.column_stack(to_utm.transform(*xy.T)))
    segs = np.flatnonzero(rg.join_ok & shapely.within(rg.seg_geom, box_utm))
    pick = rng.choice(segs, 400)
    pts = shapely.line_interpolate_point(rg.seg_geom[pick], rng.random(400), normalized=True)
    ang, r = rng.uniform(0, 2 * np.pi, 400), rng.uniform(8, 30, 400)
    xy = shapely.get_coordinates(pts) + np.c_[np.cos(ang), np.sin(ang)] * r[:, None]
    b = gpd.GeoDataFrame({"building_id": [f"B{i}" for i in range(400)], "use": "residential"},
                         geometry=shapely.points(xy), crs=UTM51).to_crs(4326)  # fmt: skip
    b.to_file(folder / "buildings.geojson", driver="GeoJSON")
    sx, sy = np.meshgrid(np.linspace(121.505, 121.525, 3), np.linspace(31.227, 31.240, 2))
    kinds = ["micro_station"] * 6 + ["fire_station"]
    s = gpd.GeoDataFrame(
        {"station_id": [f"S{i}" for i in range(7)], "name": [f"站{i}" for i in range(7)],
         "kind": kinds, "vehicle": ["ebike"] * 6 + ["engine"]},
        geometry=shapely.points(np.r_[np.c_[sx.ravel(), sy.ravel()], [[121.515, 31.233]]]),
        crs=4326,
    )  # fmt: skip
    s.to_file(folder / "stations.geojson", driver="GeoJSON")
    g = gpd.GeoDataFrame({"grid_id": ["L1"], "name": ["陆家嘴"], "level": [1]},
                         geometry=[inner], crs=4326)  # fmt: skip
    g.to_file(folder / "grids.geojson", driver="GeoJSON")
    cfg = folder / "lujiazui.toml"
    cfg.write_text(
        '[district]\nname = "陆家嘴（裁剪的路网）"\n\n'
        f"[network]\nsource = {json.dumps(str(CLIPPED))}\n\n"
        + "".join(
            f'[layers.{k}]\nfile = "{k}.geojson"\ncrs = "WGS84"\n\n'
            for k in ("grids", "buildings", "stations")
        ),  # fmt: skip
        encoding="utf-8",
    )
    return cfg


@pytest.mark.slow
@pytest.mark.skipif(not CLIPPED.exists(), reason=f"shared clipped extract absent: {CLIPPED}")
def test_district_on_clipped_extract_validates_and_runs(tmp_path, capsys):
    from firegrid.cli import main
    from firegrid.config import load_config
    from firegrid.pipeline import run_pipeline

    cfg = _lujiazui_district(tmp_path)
    assert main(["validate", str(cfg)]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    # validate reports the cut, the pieces and what they strand.
    assert "56 ways cut at the extract's edge" in text
    assert re.search(r"engine graph in [\d,]+ piece\(s\), the largest holding", text)
    assert re.search(r"[\d,]+ of 400 buildings unreachable by engine", text)
    run = run_pipeline(load_config(cfg), until="access", progress=False)
    t = run.layers["buildings"]["t_micro_s"].to_numpy(dtype=float)
    assert np.isfinite(t).mean() >= 0.95
    assert "roads" in run.layers and run.figures["district"]["road_km"] > 50


def test_network_report_counts_stranded_buildings(tmp_path):
    """A one-way street cut at the extract's edge strands the buildings along it."""
    import geopandas as gpd

    from firegrid.spatial.network.load import network_report
    from tests._osmxml import node, way, write_osm

    # A two-way loop 1-2-3-4 and a one-way street entering it at 2 from outside the file
    # (node 99 missing): 6 → 5 → 2 can only be entered beyond the cut, so a building on it is
    # stranded for engines.
    items = [node(1, 0, 0), node(2, 1, 0), node(3, 1, 1), node(4, 0, 1), node(5, 3, 0),
             node(6, 4, 0),
             way(10, [1, 2, 3, 4, 1], highway="residential"),
             way(11, [99, 6, 5, 2], highway="residential", oneway="yes")]  # fmt: skip
    t = read_network(write_osm(tmp_path / "cut.osm", items), crs=UTM51)
    assert t.stats["ways_cut_at_edge"] == 1
    x6, y6 = t.xy[np.searchsorted(t.node_ids, 6)]
    x1, y1 = t.xy[np.searchsorted(t.node_ids, 1)]
    b = gpd.GeoDataFrame(geometry=shapely.points([[x6 - 40, y6 + 10], [x1 + 20, y1 + 10]]),
                         crs=UTM51)  # fmt: skip
    s = gpd.GeoDataFrame({"kind": ["fire_station"]}, geometry=shapely.points([[x1, y1 - 5]]),
                         crs=UTM51)  # fmt: skip
    rep = network_report(t, buildings=b, stations=s)
    assert rep.figures["buildings_stranded"] == 1
    assert rep.figures["buildings_unreachable_by_engine"] == 1
    assert rep.figures["components"] == 1 and rep.figures["largest_share"] < 1
    assert any("larger extract" in w for w in rep.warnings)


def _far_network_demo(tmp_path: Path) -> Path:
    """A copy of the demo district whose network file holds two streets in Beijing."""
    import shutil

    demo = Path(__file__).resolve().parents[1] / "data" / "demo"
    folder = tmp_path / "demo"
    shutil.copytree(demo, folder)
    (folder / "beijing.osm").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n'
        '<node id="1" lat="39.9042" lon="116.4074"/><node id="2" lat="39.9052" lon="116.4074"/>'
        '<node id="3" lat="39.9052" lon="116.4094"/>\n'
        '<way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/>'
        '<tag k="highway" v="residential"/></way>\n</osm>\n',
        encoding="utf-8",
    )
    config = folder / "demo.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r'(?m)^source = "[^"]*"', 'source = "beijing.osm"', text), "utf-8")
    return config


def test_network_far_from_the_district_stops_validate_and_run(tmp_path, capsys):
    from firegrid.cli import main

    config = _far_network_demo(tmp_path)
    assert main(["validate", str(config)]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert re.search(r"beijing\.osm: the streets lie [\d,]+\.\d km from the district", text)
    assert main(["access", str(config), "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "beijing.osm: the streets lie" in err[0], err
    assert not (tmp_path / "out").exists()
