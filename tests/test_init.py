"""``firegrid init``: a folder of ledgers and files becomes a config that validates and runs.

The folder holds the demo's files as a district hands them over: buildings with Chinese headers
and values, ledgers in GCJ-02 (GBK and UTF-8), GIS layers in WGS84, plus files that are no
layer. The drafted config must validate and give the figures of the demo's own config.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tomllib

import geopandas as gpd
import pandas as pd
import pytest

from firegrid.cli import main
from firegrid.config import load_config
from firegrid.drafting import draft_district, draft_toml, write_draft
from firegrid.pipeline import run_pipeline
from firegrid.spatial.errors import ConfigError
from firegrid.spatial.io.crs import from_wgs84
from firegrid.spatial.io.headers import canonical_headers, normalised
from firegrid.spatial.io.layers import VALUE_SYNONYMS
from tests._demo import DEMO, demo_pipeline_run, requires_demo

pytestmark = requires_demo()

COPIED = (
    "grids.gpkg",
    "hydrants.csv",
    "stations.csv",
    "water_sources.geojson",
    "hazards.csv",
    "incidents.gpkg",
    "roads.osm",
    "water.geojson",  # the river: no layer of the data model
    "truth.csv",  # no coordinates: no layer
)
BUILDINGS_ZH = {
    "building_id": "建筑编号",
    "use": "用途",
    "floors": "层数",
    "height_m": "建筑高度(m)",
    "year_built": "建成年代",
    "residents": "居住人数",
}


def _chinese_buildings(path) -> None:
    b = gpd.read_file(DEMO / "buildings.gpkg", layer="buildings")
    zh = {}
    for word, value in VALUE_SYNONYMS["use"].items():
        if not word.isascii():
            zh.setdefault(value, word)
    b["use"] = b["use"].map(lambda v: zh.get(v, v))
    b.rename(columns=BUILDINGS_ZH).to_file(path / "楼栋.gpkg", layer="楼栋")


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("init") / "新街道"
    folder.mkdir()
    for name in COPIED:
        shutil.copy(DEMO / name, folder / name)
    _chinese_buildings(folder)
    return folder


@pytest.fixture(scope="module")
def drafted(ledgers):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["init", str(ledgers), "--as-of", "2026-06-30"])
    return code, out.getvalue(), ledgers / "district.toml"


def test_the_draft_validates(drafted):
    code, printed, path = drafted
    assert code == 0, printed
    assert "OK: 新街道: 7 layers valid" in printed
    assert path.exists()


def test_the_draft_recognises_layers_headers_and_systems(drafted):
    _, _, path = drafted
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    layers = data["layers"]
    assert layers["buildings"]["file"] == "楼栋.gpkg"
    assert layers["buildings"]["columns"] == {v: k for k, v in BUILDINGS_ZH.items()}
    assert layers["hydrants"]["crs"] == "GCJ-02" and layers["stations"]["crs"] == "GCJ-02"
    assert layers["hazards"]["crs"] == "WGS84" and "crs" not in layers["grids"]
    assert layers["stations"]["columns"]["出动时间(秒)"] == "turnout_s"
    assert (layers["hydrants"]["lon"], layers["hydrants"]["lat"]) == ("经度", "纬度")
    assert data["network"]["source"] == "roads.osm"
    # every guess is explained, the files that are no layer named
    assert "m as GCJ-02" in text and "# not used: truth.csv" in text
    assert "# not used: water.geojson" in text


@pytest.mark.slow
def test_the_draft_reproduces_the_demo_figures(drafted):
    _, _, path = drafted
    ours = run_pipeline(load_config(path), until="risk", progress=False).figures
    reference = demo_pipeline_run().figures
    for section in ("access", "water", "risk"):
        assert ours[section] == {k: v for k, v in reference[section].items() if k in ours[section]}
    assert ours["access"]["buildings_covered_3min"] == 826


def _hydrants_folder(tmp_path, system: str):
    """grids, buildings, stations, the streets, and the hydrants in ``system`` as a ledger."""
    for name in ("grids.gpkg", "buildings.gpkg", "stations.csv", "roads.osm"):
        shutil.copy(DEMO / name, tmp_path / name)
    truth = gpd.read_file(DEMO / "hydrants_wgs84.gpkg")
    shifted = truth if system == "WGS84" else from_wgs84(truth, system)
    pd.DataFrame(
        {
            "消火栓编号": truth["hydrant_id"],
            "状态": truth["status"],
            "经度": shifted.geometry.x.round(6),
            "纬度": shifted.geometry.y.round(6),
        }
    ).to_csv(tmp_path / "消火栓台账.csv", index=False, encoding="gbk")
    return tmp_path


@pytest.mark.parametrize("system", ["WGS84", "GCJ-02", "BD-09"])
def test_the_coordinate_system_is_guessed_from_the_streets(tmp_path, system):
    draft = draft_district(_hydrants_folder(tmp_path, system))
    hydrants = draft.layers["hydrants"]
    assert hydrants.path.name == "消火栓台账.csv"
    assert hydrants.columns == {"消火栓编号": "hydrant_id", "状态": "status"}
    assert hydrants.crs == system, hydrants.crs_why


def test_an_existing_config_is_never_overwritten(tmp_path):
    folder = _hydrants_folder(tmp_path, "GCJ-02")
    (folder / "district.toml").write_text("# mine\n", encoding="utf-8")
    draft = draft_district(folder)
    assert write_draft(draft) == folder / "district.toml.new"
    with pytest.raises(ConfigError, match="never overwrites"):
        write_draft(draft)
    assert (folder / "district.toml").read_text(encoding="utf-8") == "# mine\n"
    assert tomllib.loads((folder / "district.toml.new").read_text(encoding="utf-8"))
    assert draft_toml(draft) == (folder / "district.toml.new").read_text(encoding="utf-8")


def test_a_folder_without_stations_is_refused(tmp_path):
    for name in ("grids.gpkg", "buildings.gpkg"):
        shutil.copy(DEMO / name, tmp_path / name)
    with pytest.raises(ConfigError, match=r"no file for layer\(s\) \['stations'\]"):
        draft_district(tmp_path)


def test_unknown_values_are_pointed_out(tmp_path):
    folder = _hydrants_folder(tmp_path, "WGS84")
    csv = folder / "消火栓台账.csv"
    df = pd.read_csv(csv, encoding="gbk", dtype=str)
    df.loc[3, "状态"] = "待修"
    df.to_csv(csv, index=False, encoding="gbk")
    text = draft_toml(draft_district(folder))
    assert "状态 has values FireGrid does not know: '待修'" in text
    assert "[layers.hydrants.values.status]" in text


def test_headers_match_without_units_and_case():
    assert normalised("出动时间（秒）") == "出动时间" and normalised(" Level ") == "level"
    assert canonical_headers("stations", ["编号", "出动时间（秒）", "人数", "经度"]) == {
        "编号": "station_id",
        "出动时间（秒）": "turnout_s",
        "人数": "staff",
    }
    # the same word is another column in another layer; a canonical header stays as it is
    assert canonical_headers("buildings", ["人数", "居住人数", "floors"]) == {
        "居住人数": "residents"
    }


def test_a_workbook_of_building_points_in_gcj02_is_recognised(tmp_path):
    """Buildings as an Excel ledger of points (楼栋台账.xlsx), shifted to GCJ-02."""
    for name in ("grids.gpkg", "stations.csv", "roads.osm"):
        shutil.copy(DEMO / name, tmp_path / name)
    b = gpd.read_file(DEMO / "buildings.gpkg", layer="buildings")
    points = from_wgs84(b.set_geometry(b.representative_point()), "GCJ-02")
    pd.DataFrame(
        {
            "楼栋编号": b["building_id"],
            "层数": b["floors"],
            "建成年份": b["year_built"],
            "经度": points.geometry.x.round(6),
            "纬度": points.geometry.y.round(6),
        }
    ).to_excel(tmp_path / "楼栋台账.xlsx", index=False)
    draft = draft_district(tmp_path)
    buildings = draft.layers["buildings"]
    assert buildings.path.name == "楼栋台账.xlsx"
    assert buildings.columns == {
        "楼栋编号": "building_id",
        "层数": "floors",
        "建成年份": "year_built",
    }
    assert buildings.crs == "GCJ-02", buildings.crs_why
    # the grid outlines keep the system their file is labelled in (WGS84)
    assert draft.layers["grids"].crs is None and "EPSG:4326" in draft.layers["grids"].crs_why
