"""The config is checked whole when it is read: every key typed, unknown keys stop the run,
each message names the config file, the section and key, what was given and what belongs."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pytest

import firegrid.pipeline
from firegrid.cli import main
from firegrid.config import PARAM_SECTIONS, load_config
from firegrid.spatial.errors import ConfigError
from firegrid.spatial.siting.stations import SitingParams
from firegrid.spatial.water.params import WaterParams
from tests.conftest import CONFIG


def _config(tmp_path, text: str):
    path = tmp_path / "district.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("firegrid: error: ") and "Traceback" not in err[0]
    return err[0].removeprefix("firegrid: error: ")


ADD = "\n[{section}]\n{line}\n"  # a section appended to the valid tiny config

# (how the valid config is changed, what the one line must say after "<config path>: ")
WRONG = [
    # [district]
    (("as_of = \"2026-06-30\"", "as_of = 5"), r"\[district\] as_of must be a date .*not 5$"),
    (("as_of = \"2026-06-30\"", "as_of = \"30/06/2026\""), r"\[district\] as_of must be a date"),
    (("as_of = \"2026-06-30\"", "as_of = 2026-06-30T08:00:00"), r"\[district\] as_of must be a date"),
    (("name = \"tiny test district\"", "name = [\"x\"]"), r"\[district\] name must be a string, not \['x'\]"),
    (("name = \"tiny test district\"", "name = \"\""), r"\[district\] name must be a non-empty string"),
    (("[district]", "[district]\ncrs = {epsg = 32651}"), r"\[district\] crs must be a coordinate system"),
    (("[district]", "[district]\ncrs = \"EPSG:4326\""), r"\[district\] crs 'EPSG:4326' is not a projected CRS"),
    (("[district]", "[district]\ncrs = \"EPSG:99999\""), r"\[district\] crs: unknown coordinate system 'EPSG:99999'"),
    (("[district]", "[district]\nnmae = \"x\""), r"\[district\] has unknown key 'nmae' \(did you mean 'name'\?\)"),
    # [network]
    (("[district]", "[network]\nsorce = \"roads.osm\"\n[district]"),
     r"\[network\] has unknown key 'sorce' \(did you mean 'source'\?\); known keys are place, source$"),
    (("[district]", "[network]\nsource = 5\n[district]"), r"\[network\] source must be a string, not 5$"),
    (("[district]", "[network]\nsource = [\"a.osm\"]\n[district]"), r"\[network\] source must be a string"),
    (("[district]", "[network]\nsource = \"\"\n[district]"), r"\[network\] source must be a non-empty string"),
    (("[district]", "[network]\nsource = \"" + "x" * 5000 + "\"\n[district]"),
     r"\[network\] source must be a usable file path \(.*name too long"),
    (("[district]", "network = \"roads.osm\"\n[district]"), r"\[network\] must be a table, not 'roads.osm'"),
    # [layers.*]
    (("file = \"hydrants.csv\"", "file = 7"), r"\[layers.hydrants\] file must be a string, not 7$"),
    (("file = \"hydrants.csv\"", "file = \"a\\u0000b.csv\""), r"\[layers.hydrants\] file must be a non-empty string"),
    (("lon = \"经度\"", "lon = [\"经度\"]"), r"\[layers.hydrants\] lon must be a string"),
    (("crs = \"GCJ-02\"", "crs = true"), r"\[layers.hydrants\] crs must be a coordinate system"),
    (("crs = \"GCJ-02\"", "crs = \"Atlantis-1900\""), r"\[layers.hydrants\] crs: unknown coordinate system"),
    (("\"编号\" = \"hydrant_id\"", "\"编号\" = 5"), r"\[layers.hydrants\] columns '编号' must be a string, not 5$"),
    (("\"状态\" = \"status\"", "\"状态\" = \"hydrant_id\""),
     r"\[layers.hydrants\] columns maps both '编号' and '状态' onto 'hydrant_id'"),
    (("[layers.hydrants.columns]", "columns = \"编号\"\n[layers.hydrantz]"),
     r"\[layers\] has unknown layer 'hydrantz' \(did you mean 'hydrants'\?\)"),
    (("lat = \"纬度\"", "lat = \"纬度\"\nlongitude = \"经度\""),
     r"\[layers.hydrants\] has unknown key 'longitude'"),
    (("[layers.grids]\nfile = \"grids.gpkg\"", "[layers.grids]\nlayer = \"grids\""),
     r"\[layers.grids\] needs file = "),
    (("[layers.grids]\nfile = \"grids.gpkg\"", "[layers.roads]\nfile = \"grids.gpkg\""),
     r"\[layers\] has unknown layer 'roads'"),
    (("[layers.grids]\nfile = \"grids.gpkg\"", "[layers.hazards]\nfile = \"h.csv\""),
     r"the config must name a file for layer\(s\) grids"),
    (("[layers.grids]", "[layers.grids]\nvalues = {level = 1}"), r"\[layers.grids\] values.level must be a table"),
    ((CONFIG + '[layers.hydrants.values.statu]\n"好" = "ok"\n'),
     r"\[layers.hydrants.values\] has unknown column 'statu' \(did you mean 'status'\?\); known columns are status$"),
    ((CONFIG + '[layers.hydrants.values.status]\n"好" = "good"\n'),
     r"\[layers.hydrants.values.status\] '好' = 'good': status takes one of ok, broken, missing$"),
    (CONFIG.replace("[layers.grids]", '[layers.grids.values.level]\n"一" = "1"\n[layers.grids]'),
     r"\[layers.grids.values\] has unknown column 'level'; known columns are \(none\)$"),
    # the analysis sections, each checked by its parameter class
    (ADD.format(section="water", line="hydrant_radius_m = \"150\""), r"\[water\] hydrant_radius_m must be a number, not '150'$"),
    (ADD.format(section="water", line="hydrant_radius_m = inf"), r"\[water\] hydrant_radius_m must be a finite number, not inf$"),
    (ADD.format(section="water", line="hydrant_radius_m = nan"), r"\[water\] hydrant_radius_m must be a finite number"),
    (ADD.format(section="water", line="hydrant_radius_m = {m = 1}"), r"\[water\] hydrant_radius_m must be a number, not \{"),
    (ADD.format(section="water", line="hydrant_radious_m = 100"), r"did you mean 'hydrant_radius_m'"),
    (ADD.format(section="siting", line="k = [5]"), r"\[siting\] k must be a whole number, not \[5\]$"),
    (ADD.format(section="siting", line="k = 2.5"), r"\[siting\] k must be a whole number"),
    (ADD.format(section="access", line="isochrone_minutes = [1, \"3\"]"), r"\[access\] isochrone_minutes must be a list of numbers"),
    (ADD.format(section="access.engine", line="speeds_kmh = {primary = \"fast\"}"),
     r"\[access.engine\] speeds_kmh.primary must be a number, not 'fast'$"),
    (ADD.format(section="access.engine", line="speed_kmh = {}"), r"\[access.engine\] has unknown key 'speed_kmh' \(did you mean 'speeds_kmh'\?\)"),
    (ADD.format(section="risk", line="weights = \"equal\""), r"\[risk\] weights must be a table, not 'equal'$"),
    (ADD.format(section="risk.weights", line="age = \"high\""), r"\[risk\] weights.age must be a number"),
    (ADD.format(section="risk.grading", line="thresholds = [60, 45]"), r"\[risk.grading\] thresholds must be a list of 3 numbers"),
    (ADD.format(section="risk", line="high_risk_grade = 7"), r"\[risk\] high_risk_grade must be 1–4"),
    (ADD.format(section="map", line="allow_fields = [{a = 1}]"), r"\[map\] allow_fields must be a list of strings"),
    (ADD.format(section="map", line="language = 1"), r"\[map\] language must be a string, not 1$"),
    (ADD.format(section="output", line="folder = 3"), r"\[output\] folder must be a string, not 3$"),
    (ADD.format(section="output", line="excel = \"yes\""), r"\[output\] excel must be true or false, not 'yes'$"),
    (ADD.format(section="colours", line="red = 1"), r"unknown section 'colours'; known sections are access, district"),
    ("siting = 5\n" + CONFIG, r"\[siting\] must be a table, not 5$"),
]  # fmt: skip


def _apply(change) -> str:
    if isinstance(change, tuple):
        old, new = change
        assert old in CONFIG, old
        return CONFIG.replace(old, new, 1)
    return change if change.startswith(("siting", CONFIG[:10])) else CONFIG + change


@pytest.mark.parametrize("change, words", WRONG)
def test_wrong_config_value_is_one_line_naming_file_section_and_key(
    tmp_path, capsys, change, words
):
    path = _config(tmp_path, _apply(change))
    assert main(["validate", str(path)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"{path}: "), line
    assert re.search(words, line.removeprefix(f"{path}: ")), line


def test_bad_analysis_value_stops_before_the_analysis(tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the analysis started with a bad config")

    monkeypatch.setattr(firegrid.pipeline, "run_pipeline", never)
    path = _config(tmp_path, CONFIG + "\n[siting]\nweight = 3\n")
    assert main(["run", str(path), "-q", "--out", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys)
    assert line == f"{path}: [siting] weight must be a string, not 3"
    assert not (tmp_path / "out").exists()


def test_every_section_is_built_once_at_load(tmp_path):
    extra = '\n[water]\nhydrant_radius_m = 120\n[siting]\nk = 3\n[output]\nfolder = "out"\n'
    path = _config(tmp_path, CONFIG + extra)
    config = load_config(path)
    assert set(config.params) == set(PARAM_SECTIONS)
    assert config.params["water"] == WaterParams(hydrant_radius_m=120.0)
    assert config.params["siting"] == SitingParams(k=3)
    assert config.params["output"].folder == str(tmp_path / "out")
    assert config.section("output")["folder"] == str(tmp_path / "out")  # relative to the file


def test_dates_paths_and_coordinate_systems_accepted_as_users_write_them(tmp_path):
    text = CONFIG.replace('as_of = "2026-06-30"', "as_of = 2026-06-30\ncrs = 32651")
    text = text.replace('crs = "GCJ-02"', "crs = 4326", 1)
    config = load_config(_config(tmp_path, text + '[network]\nsource = "roads/city.osm"\n'))
    assert config.as_of == date(2026, 6, 30) and config.crs == 32651
    assert config.layers["hydrants"].crs == 4326
    assert config.network_source == str(tmp_path / "roads" / "city.osm")
    assert config.layers["grids"].file == tmp_path / "grids.gpkg"


@pytest.mark.parametrize(
    "content, words",
    [
        (b"[district\nname = 1", "not valid TOML"),
        (b"\xff\xfe[\x00d\x00", "not UTF-8 text"),
    ],
)
def test_unreadable_config(tmp_path, content, words):
    path = tmp_path / "district.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {words}"):
        load_config(path)


def test_config_that_is_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path)


def _scored(tmp_path, extra: str, name: str):
    """The synthetic district scored with the risk parameters of CONFIG + ``extra``."""
    from firegrid.risk.score import score_district
    from tests import risk_synthetic as rs

    sub = tmp_path / name
    sub.mkdir()
    params = load_config(_config(sub, CONFIG + extra)).params["risk"]
    # Only the times and network distances: the risk step derives shortfall and deficiency.
    b = rs.buildings(400).drop(
        columns=[
            "covered_3min",
            "covered_5min",
            "shortfall_3min_s",
            "shortfall_5min_s",
            "water_covered",
            "water_deficient",
        ]
    )
    return b, score_district(b, as_of="2025-06-30", params=params).buildings


def test_risk_reads_the_water_radius_and_access_targets_set_once(tmp_path):
    b, base = _scored(tmp_path, "", "base")
    _, wider = _scored(tmp_path, "\n[water]\nhydrant_radius_m = 250\n", "water")
    d = b["d_hydrant_net_m"].to_numpy()
    # [water] hydrant_radius_m alone moves the risk index's water factor.
    assert (base["s_water"].to_numpy() == (d > 150)).all()
    assert (wider["s_water"].to_numpy() == (d > 250)).all()
    changed = (d > 150) & (d <= 250)
    assert changed.any()
    assert (wider["risk_index"][changed] < base["risk_index"][changed]).all()
    _, slower = _scored(tmp_path, "\n[access]\ntarget_micro_s = 240\n", "access")
    t = b["t_micro_s"]
    expect = ((t - 240).clip(lower=0) / 240).clip(0, 1).fillna(1.0)
    assert np.allclose(slower["s_shortfall_3min"], expect)
    assert not np.allclose(base["s_shortfall_3min"], expect)


@pytest.mark.parametrize(
    "key, where",
    [
        ("target_3min_s = 200", r"\[access\] target_micro_s"),
        ("target_5min_s = 400", r"\[access\] target_fire_s"),
        ("hydrant_radius_m = 120", r"\[water\] hydrant_radius_m"),
    ],
)
def test_risk_features_no_longer_hold_targets_or_radius(tmp_path, key, where):
    path = _config(tmp_path, CONFIG + f"\n[risk.features]\n{key}\n")
    with pytest.raises(
        ConfigError, match=rf"\[risk.features\] {key.split()[0]} is not set here: set {where}"
    ):
        load_config(path)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://gis@db.local:5432/city",
        "postgresql+psycopg://gis:pw@localhost/city?sslmode=require",
    ],
)
def test_a_layer_file_may_be_a_database_table(tmp_path, url):
    text = CONFIG.replace('file = "hydrants.csv"', f'file = "{url}"\nlayer = "fire.hydrants"')
    config = load_config(_config(tmp_path, text))
    spec = config.layers["hydrants"]
    assert spec.file == url and spec.layer == "fire.hydrants"  # not a path beside the config
    assert config.layers["grids"].file == tmp_path / "grids.gpkg"


@pytest.mark.parametrize(
    "layer, message",
    [
        ("", r"\[layers.hydrants\] layer must be the table"),
        ("layer = 0", r"\[layers.hydrants\] layer must be the table"),
        ('layer = "a.b.c"', r"\[layers.hydrants\] layer = 'a.b.c' is no \"schema.table\" name"),
        ('layer = "fire."', r"\[layers.hydrants\] layer = 'fire.' is no \"schema.table\" name"),
    ],
)
def test_a_database_layer_names_its_table(tmp_path, layer, message):
    url = "postgresql://gis:secret@db.local/city"
    text = CONFIG.replace('file = "hydrants.csv"', f'file = "{url}"\n{layer}')
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(_config(tmp_path, text))
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    "written, reason",
    [
        ('"2026年6月30日"', None),
        ('"2026/6/30"', None),
        ('"30/06/2026"', "day/month order is ambiguous"),
        ('"26.6.30"', "a two-digit year is ambiguous"),
        ('"2026-02-30"', "no such day"),
    ],
)
def test_as_of_text_is_read_as_ledger_dates_are(tmp_path, written, reason):
    path = _config(tmp_path, CONFIG.replace('as_of = "2026-06-30"', f"as_of = {written}"))
    if reason is None:
        assert load_config(path).as_of == date(2026, 6, 30)
    else:
        with pytest.raises(ConfigError, match=rf"\[district\] as_of must be a date \({reason}"):
            load_config(path)
