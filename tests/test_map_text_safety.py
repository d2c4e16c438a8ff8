"""No user text is ever evaluated as a template, markup or script in map.html.

Text from input files (names, ids, notes, extra columns and their headers, street names) and
from the config (the district name, ``[map] title``) must reach the page as data and show as
itself: ``{{ 7*7 }}`` as ``{{ 7*7 }}``, never ``49``; ``<b>x</b>`` as that text; ``{#`` must not
stop the run. Each map is decoded the way the browser reads it (embedded JSON, HTML text) and
compared with the text that went in.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Sequence
from datetime import date

import folium
import folium.plugins
import geopandas as gpd
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from firegrid.maps import layers as L
from firegrid.maps.district_map import risk_map
from firegrid.maps.export import to_html
from firegrid.maps.html import Literal, VerbatimMacro, escape_html, script_json
from firegrid.maps.options import MapOptions
from firegrid.maps.privacy import personal_by_content
from firegrid.spatial.io.crs import WGS84
from tests._mapdata import (
    HOSTILE,
    HOSTILE_HEADER,
    HOSTILE_IN_MEMORY,
    HOSTILE_SUFFIX,
    HOSTILE_TEXT,
    hostile_demo_map,
    hostile_results,
    map_texts,
    shown,
)

OPTIONS = MapOptions(allow_fields=("all",), basemap="none")


def _literal(value: str) -> str:
    """What the browser shows for ``value`` found in the page (HTML text or escaped data)."""
    return shown(html.unescape(value))


ALL_TEXTS = (*HOSTILE, *HOSTILE_IN_MEMORY, HOSTILE_TEXT)


def assert_shows_literally(page: str, texts: Sequence[str], columns: set[str]) -> int:
    """Every field of ``columns`` shows one of ``texts`` exactly, each text shows in the
    buildings, and every alias and layer name is plain text; returns the number of hostile
    fields checked."""
    decoded = map_texts(page)
    expected = {shown(t) for t in texts}
    seen: set[str] = set()
    checked = 0
    for props in decoded["features"]:
        for key in columns & props.keys():
            assert _literal(props[key]) in expected, (key, props[key])
            seen.add(key)
            checked += 1
    # every hostile column reached the map (a test that checks nothing cannot pass) …
    assert seen == columns
    # … and every text, in the buildings' names and in the extra column
    buildings = [p for p in decoded["features"] if "risk_index" in p]
    assert sorted(_literal(p["name"]) for p in buildings) == sorted(map(shown, texts))
    assert sorted(_literal(p[HOSTILE_HEADER]) for p in buildings) == sorted(map(shown, texts))
    # the extra column's header is a field name and, escaped, a label
    assert any(HOSTILE_HEADER in fields for fields in decoded["fields"])
    assert shown(HOSTILE_HEADER) in {_literal(a) for al in decoded["aliases"] for a in al}
    assert decoded["overlays"] and all("{{" not in n for n in decoded["overlays"])
    return checked


def assert_title(page: str, title: str) -> None:
    decoded = map_texts(page)
    assert [_literal(t) for t in decoded["title"]] == [shown(title)]
    assert [_literal(t) for t in decoded["heading"]] == [shown(title)]


# ------------------------------------------------------------------------------ the helpers


@pytest.mark.parametrize("text", ALL_TEXTS, ids=lambda t: repr(t)[:30])
def test_escape_html_is_inert_and_reversible(text):
    out = escape_html(text)
    assert html.unescape(out) == shown(text)
    # nothing left that HTML, a template engine or a template literal would act on
    assert not set(out) & set("<>\"'`${}\\\u2028\u2029\x00")
    out.encode("utf-8")  # writable to a page


def test_script_json_round_trips_and_escapes_separators():
    import json

    value = {"a": "\u2028\u2029 中文 </script>", "b": "x\ud800"}
    text = script_json(value)
    assert "\u2028" not in text and "\u2029" not in text and "中文" in text
    assert json.loads(text) == value
    text.encode("utf-8")


def test_every_element_carrying_text_writes_verbatim():
    # a folium.GeoJson (or tooltip, popup, group, cluster, layer control) used directly would
    # compile its rendered data as a template again; every one in the map is a firegrid.maps.html class
    layers, _ = hostile_results(["x"])
    buildings = layers.pop("buildings")
    m = risk_map(buildings, **layers, options=OPTIONS, title="t")
    carrying = (
        folium.GeoJson,
        folium.GeoJsonTooltip,
        folium.GeoJsonPopup,
        folium.FeatureGroup,
        folium.plugins.MarkerCluster,
        folium.LayerControl,
    )

    def walk(element):
        yield element
        for child in element._children.values():
            yield from walk(child)

    found = [e for e in walk(m) if isinstance(e, carrying)]
    assert len(found) > 20 and all(isinstance(e, VerbatimMacro) for e in found)
    root = m.get_root()
    added = [*root.header._children.values(), *root.html._children.values()]
    assert sum(isinstance(e, Literal) for e in added) == 4  # <title>, style, title box, legend


def test_literal_text_is_never_compiled():
    m = folium.Map(tiles=None)
    m.get_root().html.add_child(Literal("<p>{{ 7*7 }} {# {% raw %}</p>"))
    page = m.get_root().render()
    assert "<p>{{ 7*7 }} {# {% raw %}</p>" in page


# --------------------------------------------------------------------------- maps functions


def test_hostile_text_in_every_field_shows_literally(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a unique working directory: its path must not leak
    layers, columns = hostile_results(ALL_TEXTS)
    buildings = layers.pop("buildings")
    m = risk_map(buildings, **layers, options=OPTIONS, title=HOSTILE_TEXT)
    assert set(m.firegrid_layers) >= {"buildings", "grids", "hazards", "hydrants", "sites"}
    page = to_html(m)
    # ids, names, street names and the extra column of buildings, grids, stations, hydrants,
    # water sources, hazards, reach bands, areas, sites and proposed hydrants
    assert columns >= {
        "building_id",
        "name",
        "grid_id",
        "parent_id",
        "station_id",
        "hydrant_id",
        "source_id",
        "hazard_id",
        "site_id",
        "road_name",
        "proposal_id",
        "street",
        "micro_station_id",
        "fire_station_id",
        "access_issue",
        HOSTILE_HEADER,
    }
    checked = assert_shows_literally(page, ALL_TEXTS, columns)
    assert checked >= len(ALL_TEXTS) * 7  # every building alone carries seven
    assert_title(page, HOSTILE_TEXT)
    assert str(tmp_path) not in page


@pytest.mark.parametrize("text", ALL_TEXTS, ids=lambda t: repr(t)[:30])
def test_hostile_title_shows_literally(text):
    b = gpd.GeoDataFrame(
        {"building_id": ["B1"]}, geometry=[box(121.44, 31.21, 121.4402, 31.2102)], crs=WGS84
    )
    assert_title(to_html(risk_map(b, options=OPTIONS, title=text, as_of=date(2026, 6, 30))), text)
    # the config's [map] title is the same text on the same path
    options = MapOptions(basemap="none", title=text)
    assert_title(to_html(risk_map(b, options=options)), text)


def test_evaluated_forms_are_absent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    b = gpd.GeoDataFrame(
        {"building_id": ["{{ 7*7 }}", "{{ lipsum.__globals__.os.getcwd() }}", "{{x}}|"]},
        geometry=[box(121.44, 31.21, 121.4402, 31.2102)] * 3,
        crs=WGS84,
    )
    page = to_html(risk_map(b, options=OPTIONS, title="{{ 6*7 }}"))
    ids = [p["building_id"] for p in map_texts(page)["features"]]
    assert [html.unescape(i) for i in ids] == list(b["building_id"])
    assert '"49"' not in page and ">42<" not in page and '"|"' not in page
    assert str(tmp_path) not in page


# ------------------------------------------------------------------------- property-based

_FRAGMENTS = st.sampled_from(
    ["{{", "}}", "{%", "%}", "{#", "#}", "${", "`", "\\", "</script>", "<!--", "&amp;", "\u2028"]
)
# Unpaired surrogates (category Cs) cannot sit in a default (Arrow) string column at all: no
# reader yields them, and HOSTILE_IN_MEMORY covers them in object columns.
_ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_FRAGMENTS, _ANY_TEXT), min_size=1, max_size=6).map("".join))
def test_any_name_shows_as_itself(text):
    # a name that looks like a phone number or e-mail is kept out of the map (firegrid.maps.privacy)
    if personal_by_content(pd.Series([text])):
        return
    b = gpd.GeoDataFrame(
        {"building_id": ["B1"], "name": [text]},
        geometry=[box(121.44, 31.21, 121.4402, 31.2102)],
        crs=WGS84,
    )
    page = to_html(risk_map(b, options=OPTIONS, title=text or None))
    texts = map_texts(page)
    assert [_literal(p["name"]) for p in texts["features"]] == [shown(text)]
    if text:
        assert [_literal(t) for t in texts["title"]] == [shown(text)]


def test_a_layer_alone_carries_hostile_text_as_data():
    # the layer functions on their own (a notebook adds them to its own folium map)
    layers, _ = hostile_results(["{{ 7*7 }}{#"])
    m = folium.Map(tiles=None)
    L.station_layer(layers["stations"], kind="micro_station", options=OPTIONS).add_to(m)
    L.hydrant_layer(layers["hydrants"], options=OPTIONS).add_to(m)
    texts = map_texts(to_html(m))
    names = [html.unescape(p["name"]) for p in texts["features"] if "name" in p]
    ids = [html.unescape(p["hydrant_id"]) for p in texts["features"] if "hydrant_id" in p]
    assert names == ["{{ 7*7 }}{#"] * 2 and ids == ["{{ 7*7 }}{#"] * 8


# ------------------------------------------------------------------ the pipeline on a demo copy

# Fields of the hostile demo's map that hold the suffix: the ids and names of every input
# layer, the hazards' notes and the extra buildings column (allowed by allow_fields = ["all"]),
# street names from the road network, and the ids the analysis copies from the inputs.
DEMO_HOSTILE_KEYS = {
    "building_id",
    "name",
    "grid_id",
    "parent_id",
    "station_id",
    "hydrant_id",
    "source_id",
    "hazard_id",
    "description",
    "street",
    "road_name",
    "micro_station_id",
    "fire_station_id",
    "hydrant_id_nearest",
    HOSTILE_HEADER,
}


@pytest.mark.slow
def test_hostile_demo_run_shows_every_text_literally():
    from firegrid.pipeline import map_html

    path, run = hostile_demo_map()
    page = path.read_bytes().decode("utf-8")  # read_text would turn a CR into LF
    counts: Counter[str] = Counter()
    for props in map_texts(page)["features"]:
        for key, value in props.items():
            if not isinstance(value, str):
                continue
            text = html.unescape(value)
            if key in DEMO_HOSTILE_KEYS and text:  # unnamed streets stay empty
                assert text.endswith(HOSTILE_SUFFIX), (key, text)
                counts[key] += 1
            if "lipsum" in text:  # wherever the text went (lists of ids …), it went whole
                assert HOSTILE_SUFFIX in text, (key, text)
    assert set(counts) == DEMO_HOSTILE_KEYS, DEMO_HOSTILE_KEYS - set(counts)
    assert counts["building_id"] >= 2560 and counts[HOSTILE_HEADER] == 2560
    assert sum(counts.values()) > 10_000
    assert_title(page, "Demo " + HOSTILE_SUFFIX)  # the district name
    assert os.getcwd() not in page
    # the config's [map] title takes the same path
    options = MapOptions.from_mapping({"basemap": "none", "title": "T " + HOSTILE_SUFFIX})
    assert_title(map_html(run, options=options), "T " + HOSTILE_SUFFIX)
