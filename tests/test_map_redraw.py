"""``firegrid map OUTPUT_DIR``: the map redrawn from a run's results, without the analysis."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest

from firegrid.cli import main
from firegrid.outputs import file_digest, read_manifest
from tests._demo import DEMO, demo_cli_run, requires_demo

pytestmark = [requires_demo()]

PHONES = [f"139{k:08d}" for k in range(2560)]


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> Path:
    folder, code, _, err = demo_cli_run()
    assert code == 0, err
    copy = tmp_path_factory.mktemp("redraw") / "out"
    shutil.copytree(folder, copy)
    return copy


def _fresh(demo_output: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    shutil.copytree(demo_output, folder)
    return folder


def _feature_count(html: str, marker: str) -> int:
    """Features of the GeoJSON layers whose Leaflet class is ``marker`` (fg-buildings …)."""
    decoder = json.JSONDecoder()
    total = 0
    for match in re.finditer(r"(geo_json_[0-9a-f]+)_add\(", html):
        data, _ = decoder.raw_decode(html, match.end())
        options = html[html.index(f"var {match.group(1)} = L.geoJson") :][:2000]
        if f'"className": "{marker}"' in options:
            total += len(data["features"])
    return total


def test_redraw_from_an_output_folder(demo_output, tmp_path, capsys):
    folder = _fresh(demo_output, tmp_path)
    (folder / "map.html").write_text("old", encoding="utf-8")  # changed since: not FireGrid's
    assert main(["map", str(folder)]) == 2  # a file FireGrid did not write is refused …
    assert "map.html" in capsys.readouterr().err
    shutil.copy(demo_output / "map.html", folder / "map.html")
    assert main(["map", str(folder), "--language", "en"]) == 0  # … its own is replaced
    assert "redrawn" in capsys.readouterr().out
    html = (folder / "map.html").read_text(encoding="utf-8")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    # every building of the run is drawn, under the run's title and date
    buildings = summary["figures"]["district"]["buildings"]
    assert _feature_count(html, "fg-buildings") == buildings
    assert f"<title>{summary['district']}</title>" in html
    assert summary["as_of"] in html and "Legend" in html  # --language en
    # the legend quotes the run's radius from summary.json
    assert f"protection radius {summary['figures']['water']['hydrant_radius_m']:g} m" in html
    # recorded in the folder's manifest, so the next run may replace it
    assert read_manifest(folder)["map.html"]["sha256"] == file_digest(folder / "map.html")["sha256"]


def test_redraw_keeps_personal_columns_out_unless_a_config_allows_them(
    demo_output, tmp_path, capsys
):
    folder = _fresh(demo_output, tmp_path)
    gpkg = folder / "results.gpkg"
    # results.gpkg with personal data kept ([output] personal = "keep") and a user's column
    buildings = gpd.read_file(gpkg, layer="buildings")
    buildings["户主电话"] = PHONES[: len(buildings)]
    buildings["备注"] = "北侧通道堆物"
    layers = {str(n) for n, _ in pyogrio.list_layers(gpkg)}
    assert "buildings" in layers
    buildings.to_file(gpkg, layer="buildings", driver="GPKG", mode="w")
    assert main(["map", str(folder), "--out", str(tmp_path / "plain.html")]) == 0
    plain = (tmp_path / "plain.html").read_text(encoding="utf-8")
    assert "北侧通道堆物" not in plain and "户主电话" not in plain
    assert not any(p in plain for p in PHONES[:50])
    # the config's [map] allow_fields lets the named column in; the phones stay out
    config_folder = tmp_path / "demo"
    shutil.copytree(DEMO, config_folder)
    config = config_folder / "demo.toml"
    text = config.read_text(encoding="utf-8")
    assert "allow_fields = []" in text
    config.write_text(text.replace("allow_fields = []", 'allow_fields = ["备注"]'), "utf-8")
    out = tmp_path / "allowed.html"
    assert main(["map", str(folder), "--config", str(config), "--out", str(out)]) == 0
    allowed = out.read_text(encoding="utf-8")
    assert "北侧通道堆物" in allowed and "备注" in allowed
    assert not any(p in allowed for p in PHONES[:50])
    capsys.readouterr()


def test_redraw_of_a_folder_without_results_is_one_clear_line(tmp_path, capsys):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    assert main(["map", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "results.gpkg" in err and str(empty) in err
    assert not (empty / "map.html").exists()
