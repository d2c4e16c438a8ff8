"""Self-contained HTML export: nothing loaded from a CDN, assets inlined, atomic writes."""

from __future__ import annotations

import re
from pathlib import Path

import folium
import folium.plugins
import pytest

from firegrid.maps.district_map import risk_map
from firegrid.maps.export import (
    ExportError,
    asset_text,
    external_references,
    make_offline,
    save_html,
    to_html,
)
from firegrid.maps.html import script_json
from firegrid.maps.options import MapOptions
from tests._mapdata import synthetic_results

ASSETS = Path(__file__).resolve().parents[1] / "maps" / "assets"


@pytest.fixture(scope="module")
def full_map_html() -> str:
    r = synthetic_results()
    b = r.pop("buildings")
    return to_html(risk_map(b, **r, title="示范街道"))


def test_no_script_or_stylesheet_comes_from_the_network(full_map_html):
    html = full_map_html
    assert external_references(html) == []
    assert not re.search(r"<script[^>]*\ssrc=", html, re.I)
    assert not re.search(r"<link[^>]*stylesheet", html, re.I)
    for cdn in ("cdn.jsdelivr", "cdnjs", "code.jquery", "bootstrapcdn", "unpkg", "fontawesome"):
        assert cdn not in html


def test_vendored_libraries_are_inlined(full_map_html):
    html = full_map_html
    assert 't.version="1.9.4"' in html  # leaflet.js
    assert "MarkerClusterGroup" in html  # leaflet.markercluster.js
    assert ".leaflet-pane" in html and ".marker-cluster-small" in html  # the CSS
    assert "url(images/" not in html and "data:image/png;base64," in html
    assert "sourceMappingURL" not in html
    # jQuery, Bootstrap and Font-Awesome markers are not needed and not shipped
    assert "jQuery" not in html and "AwesomeMarkers.icon" not in html


def test_only_tile_urls_point_at_the_network(full_map_html):
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", full_map_html))
    loads = [u for u in urls if "{z}" in u or "{x}" in u]
    assert loads == ["https://tile.openstreetmap.org/{z}/{x}/{y}.png"]


def test_basemaps_none_and_amap():
    r = synthetic_results(n_buildings=10)
    b = r.pop("buildings")
    none = to_html(risk_map(b, **r, options=MapOptions(basemap="none")))
    assert "L.tileLayer" not in none
    assert "background: #f3f1ec" in none  # legible with no tiles at all
    amap = to_html(risk_map(b, **r, options=MapOptions(basemap="amap")))
    assert "autonavi.com" in amap and "openstreetmap.org/{z}" not in amap


def test_chinese_text_is_written_as_characters(full_map_html):
    # compact UTF-8 JSON keeps the file small: 建筑风险等级 rather than \u5efa...
    assert "建筑风险等级" in full_map_html
    assert "\\u5efa" not in full_map_html
    # the renderer's JSON settings are restored afterwards
    assert folium.GeoJson._template.environment.policies["json.dumps_kwargs"] == {"sort_keys": True}


def test_vendored_files_and_licences_are_present():
    for name in (
        "leaflet.js",
        "leaflet.css",
        "leaflet.markercluster.js",
        "MarkerCluster.css",
        "MarkerCluster.Default.css",
        "LICENSE-leaflet.txt",
        "LICENSE-leaflet.markercluster.txt",
        "VENDORED.md",
    ):
        assert (ASSETS / name).is_file(), name
    assert "Volodymyr Agafonkin" in (ASSETS / "LICENSE-leaflet.txt").read_text()
    assert "</script" not in asset_text("leaflet.js")


def test_elements_needing_unvendored_libraries_are_refused():
    m = folium.Map(tiles=None)
    folium.plugins.Fullscreen().add_to(m)
    with pytest.raises(ExportError, match="Fullscreen"):
        to_html(m)
    m = folium.Map(tiles=None)
    folium.Marker([31.2, 121.4], icon=folium.Icon(color="red")).add_to(m)
    with pytest.raises(ExportError, match="DivIcon"):
        make_offline(m)
    m = folium.Map(tiles=None)
    folium.Marker([31.2, 121.4], popup="jQuery popup").add_to(m)
    with pytest.raises(ExportError, match="GeoJsonPopup"):
        to_html(m)


def test_save_html_is_atomic_and_leaves_no_temp_file(tmp_path):
    r = synthetic_results(n_buildings=5)
    b = r.pop("buildings")
    path = save_html(risk_map(b, **r), tmp_path / "sub" / "map.html")
    assert path.exists() and path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == ["map.html"]
    bad = folium.Map(tiles=None)
    folium.plugins.Fullscreen().add_to(bad)
    before = path.read_bytes()
    with pytest.raises(ExportError):
        save_html(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["map.html"]


def test_saved_map_is_readable_by_others(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        path = save_html(folium.Map(tiles=None), tmp_path / "map.html")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_maps_rendered_in_threads_keep_the_safe_serialiser():
    # The render swaps a policy of Jinja's one shared environment; two threads rendering at
    # once must not see each other's swap (the lock), nor leave the default one behind.
    from concurrent.futures import ThreadPoolExecutor

    r = synthetic_results()
    b = r.pop("buildings")

    def page(i: int) -> str:
        html = to_html(risk_map(b, **r, title=f"图{i % 4}"))
        return re.sub(r"_[0-9a-f]{32}", "_ID", html)  # element ids are random per map

    serial = [page(i) for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(page, range(12)))
    assert threaded == serial * 3
    policies = folium.GeoJson._template.environment.policies
    assert policies.get("json.dumps_function") is not script_json
