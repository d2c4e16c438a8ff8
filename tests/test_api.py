"""The analyst's API: the demo district rebuilt from GeoDataFrames gives the config path's figures.

The reference is the demo run through its TOML config (:func:`tests._demo.demo_pipeline_run`,
shared with the other tests of the session); the API's district is built from the same files
read with geopandas and pandas, in WGS84, GCJ-02 and BD-09, with Chinese headers and values.
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pandas as pd
import pytest

import firegrid
from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.crs import from_wgs84
from firegrid.spatial.io.district import LayerSpec, load_district
from firegrid.spatial.io.layers import VALUE_SYNONYMS
from tests._demo import DEMO, demo_pipeline_run, requires_demo

pytestmark = requires_demo()

STATIONS_ZH = {
    "编号": "station_id",
    "名称": "name",
    "类型": "kind",
    "车辆": "vehicle",
    "出动时间(秒)": "turnout_s",
    "人数": "staff",
}
HAZARDS_ZH = {
    "隐患编号": "hazard_id",
    "建筑编号": "building_id",
    "类别": "category",
    "发现日期": "found_on",
    "整改期限": "deadline",
    "整改日期": "rectified_on",
}
# The sections the access, water and risk steps fill (siting is not run here).
COMPARED = ("district", "access", "water", "risk")


def _ledger(name: str, encoding: str = "utf-8-sig") -> gpd.GeoDataFrame:
    """A CSV ledger read with pandas, its lon/lat made into points labelled EPSG:4326."""
    df = pd.read_csv(DEMO / name, dtype=str, encoding=encoding)
    points = gpd.points_from_xy(df.pop("经度").astype(float), df.pop("纬度").astype(float))
    return gpd.GeoDataFrame(df, geometry=points, crs=4326)


def _chinese(series: pd.Series, column: str) -> pd.Series:
    """Canonical choices written back as a Chinese ledger writes them."""
    zh = {}
    for word, value in VALUE_SYNONYMS[column].items():
        if not word.isascii():
            zh.setdefault(value, word)
    return series.map(lambda v: zh.get(v, v))


def demo_layers() -> dict:
    """The demo's layers as an analyst holds them: mixed systems, Chinese headers and values."""
    buildings = gpd.read_file(DEMO / "buildings.gpkg", layer="buildings")
    buildings["use"] = _chinese(buildings["use"], "use")
    buildings = buildings.rename(columns={"floors": "层数", "year_built": "建成年代"})
    hydrants = gpd.read_file(DEMO / "hydrants_wgs84.gpkg")
    hydrants["status"] = _chinese(hydrants["status"], "status")
    incidents = gpd.read_file(DEMO / "incidents.gpkg", layer="incidents")
    return {
        "grids": gpd.read_file(DEMO / "grids.gpkg", layer="grids"),
        "buildings": buildings,
        "stations": _ledger("stations.csv"),  # GCJ-02 as the ledger holds it
        "hydrants": from_wgs84(hydrants, "GCJ-02"),  # shifted here, labelled EPSG:4326
        "water_sources": gpd.read_file(DEMO / "water_sources.geojson"),
        "hazards": _ledger("hazards.csv"),
        "incidents": from_wgs84(incidents, "BD-09"),
        "layer_crs": {"stations": "GCJ-02", "hydrants": "GCJ-02", "incidents": "BD-09"},
        "columns": {
            "stations": STATIONS_ZH,
            "hazards": HAZARDS_ZH,
            "buildings": {"层数": "floors", "建成年代": "year_built"},
        },
    }


@pytest.fixture(scope="module")
def district():
    return firegrid.District.from_layers(
        **demo_layers(), network=DEMO / "roads.osm", as_of="2026-06-30", name="demo via API"
    )


@pytest.fixture(scope="module")
def results(district):
    return firegrid.run(district, steps=("access", "water", "risk"))


@pytest.mark.slow
def test_the_demo_from_geodataframes_gives_the_config_paths_figures(results):
    reference = demo_pipeline_run().figures
    assert set(COMPARED) <= set(results.figures) <= set(reference)
    for section in results.figures:
        ours = results.figures[section]
        theirs = {k: v for k, v in reference[section].items() if k in ours}
        assert ours.keys() == theirs.keys(), section
        for key, value in ours.items():
            if isinstance(value, float):
                # The config path's hydrants come from a GCJ-02 ledger rounded to 6 decimals
                # (~0.1 m), ours from the WGS84 originals: lengths differ in the centimetres.
                assert value == pytest.approx(theirs[key], rel=1e-5), (section, key)
            else:
                assert value == theirs[key], (section, key)
    assert results.figures["access"]["buildings_covered_3min"] == 826
    assert results.figures["water"]["water_deficient"] == 792
    # the same buildings, with the same risk grades
    ours = results.buildings.set_index("building_id")["risk_grade"]
    theirs = demo_pipeline_run().buildings.set_index("building_id")["risk_grade"]
    assert ours.sort_index().equals(theirs.sort_index())


@pytest.mark.slow
def test_results_carry_layers_headline_and_write_outputs(results, tmp_path):
    assert results.layers["buildings"].crs.to_epsg() == 32651
    assert {"isochrones", "water_deficient"} <= set(results.layers)
    assert any("826 of 2,560" in line for line in results.headline)
    written = results.write(tmp_path / "out", with_map=False)
    summary = json.loads(written["summary.json"].read_text(encoding="utf-8"))
    assert summary["figures"]["access"] == results.figures["access"]
    assert "map.html" not in written


def test_the_district_is_in_the_working_crs_with_canonical_values(district):
    assert district.crs.to_epsg() == 32651
    assert set(district.layers["buildings"]["use"].dropna()) <= {
        "residential", "office", "shop", "three_in_one", "warehouse", "public", "industrial",
        "underground", "other",
    }  # fmt: skip
    assert district.layers["buildings"]["floors"].notna().sum() > 2000
    # the GCJ-02 copy lands where the WGS84 original is (well under a metre)
    truth = gpd.read_file(DEMO / "hydrants_wgs84.gpkg").to_crs(district.crs)
    moved = district.layers["hydrants"].geometry.distance(truth.geometry, align=False)
    assert moved.max() < 0.01
    assert district.report is not None and district.report.ok


@pytest.mark.slow
def test_parameters_override_a_section(district):
    wider = firegrid.run(district, steps=("water",), water={"hydrant_radius_m": 250})
    figures = wider.figures["water"]
    assert figures["hydrant_radius_m"] == 250
    assert figures["water_deficient"] < 792
    assert "access" not in wider.figures  # only what water needs ran


def test_unknown_parameters_and_steps_are_named(district):
    with pytest.raises(ConfigError, match=r"unknown parameter section\(s\) \['acess'\]"):
        firegrid.run(district, acess={"target_micro_s": 150})
    with pytest.raises(ConfigError, match="target_micro"):
        firegrid.run(district, access={"target_micro": 150})
    with pytest.raises(ConfigError, match=r"unknown step\(s\) \['sitting'\]"):
        firegrid.run(district, steps=("sitting",))
    with pytest.raises(ConfigError, match="takes a mapping"):
        firegrid.run(district, water=200)


def test_unknown_layers_and_options_are_named():
    layers = demo_layers()
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) \['hydrant'\]"):
        firegrid.District.from_layers(**{**layers, "hydrant": layers["hydrants"]})
    with pytest.raises(ConfigError, match="names layer"):
        firegrid.District.from_layers(
            grids=layers["grids"],
            buildings=layers["buildings"],
            stations=layers["stations"],
            layer_crs={"hydrants": "GCJ-02"},
        )
    with pytest.raises(ConfigError, match="unknown coordinate system"):
        firegrid.District.from_layers(**{**layers, "layer_crs": {"stations": "GCJ02x"}})


def test_bad_input_gets_the_config_paths_message(tmp_path):
    """A bad status in a frame is refused with the words a file with it gets."""
    layers = demo_layers()
    bad = layers["hydrants"].copy()
    bad.loc[5, "status"] = "坏了"
    with pytest.raises(InputError) as from_frame:
        firegrid.District.from_layers(**{**layers, "hydrants": bad})
    assert "the hydrants GeoDataFrame" in str(from_frame.value)
    path = tmp_path / "hydrants.gpkg"
    bad.to_file(path)
    specs = {
        "grids": LayerSpec(DEMO / "grids.gpkg", layer="grids"),
        "buildings": LayerSpec(DEMO / "buildings.gpkg", layer="buildings"),
        "stations": LayerSpec(layers["stations"], crs="GCJ-02", columns=STATIONS_ZH),
        "hydrants": LayerSpec(path, crs="GCJ-02"),
    }
    _, report = load_district(specs)
    from_file = next(e for e in report.errors if str(path) in e)

    def problem(text: str) -> str:  # the message without where it was found
        return re.split(r"column '?status'?: ", text, maxsplit=1)[1]

    assert problem(str(from_frame.value)) == problem(from_file)
    assert "'坏了'" in problem(from_file)


def test_the_offline_html_helpers_are_public(tmp_path):
    import folium

    from firegrid.maps import export

    assert firegrid.save_html is export.save_html and firegrid.to_html is export.to_html
    assert firegrid.show is export.show
    m = gpd.read_file(DEMO / "water_sources.geojson").explore()
    path = firegrid.save_html(m, tmp_path / "explore.html")
    html = path.read_text(encoding="utf-8")
    assert isinstance(m, folium.Map) and "leaflet" in html.lower()
    assert export.external_references(html) == []


def test_version_and_lazy_names():
    assert isinstance(firegrid.__version__, str) and firegrid.__version__
    assert {"District", "run", "save_html"} <= set(dir(firegrid))
    assert not hasattr(firegrid, "no_such_name")


@pytest.mark.slow
def test_an_osmnx_graph_serves_as_the_network():
    ox = pytest.importorskip("osmnx")
    graph = ox.graph_from_xml(DEMO / "roads.osm", simplify=True, retain_all=True)
    district = firegrid.District.from_layers(**demo_layers(), network=graph)
    access = firegrid.run(district, steps=("access",)).figures["access"]
    reference = demo_pipeline_run().figures["access"]
    # osmnx reads the same streets as FireGrid's own OSM reader: the same coverage
    assert access["buildings_covered_3min"] == reference["buildings_covered_3min"]
    assert access["buildings_covered_5min"] == reference["buildings_covered_5min"]


def test_a_network_of_another_kind_is_refused(district):
    other = firegrid.District(district.name, district.crs, district.layers, network_source=42)
    with pytest.raises(ConfigError, match="osmnx graph"):
        firegrid.run(other, steps=("access",))


def test_a_missing_network_file_is_named(tmp_path):
    layers = demo_layers()
    with pytest.raises(ConfigError, match="road network file not found"):
        firegrid.District.from_layers(**layers, network=tmp_path / "roads.osm.pbf")
    with pytest.raises(ConfigError, match="road network file not found"):
        firegrid.District.from_layers(**layers, network=str(tmp_path / "roads.graphml"))


def test_the_risk_step_asks_for_the_date(district):
    undated = firegrid.District(district.name, district.crs, district.layers)
    with pytest.raises(ConfigError, match="as_of="):
        firegrid.run(undated, steps=("risk",))
