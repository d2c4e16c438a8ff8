"""Map layers, styles, options and privacy rules, on synthetic results with canonical columns."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point

from firegrid.maps import layers as L
from firegrid.maps import popups, styles
from firegrid.maps.district_map import legend_html, risk_map
from firegrid.maps.export import to_html
from firegrid.maps.html import escape_html
from firegrid.maps.options import MapOptions
from firegrid.maps.privacy import (
    html_columns,
    personal_by_content,
    personal_by_name,
    personal_columns,
    safe_properties,
)
from firegrid.risk.grading import GRADE_HEX
from firegrid.risk.params import FACTORS
from firegrid.spatial.columns import GRADE_LABELS
from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.crs import wgs84_to_gcj02
from tests._mapdata import XSS, synthetic_results


@pytest.fixture(scope="module")
def results():
    return synthetic_results()


def _render(element) -> str:
    """The element on a bare map, rendered the way the export renders (compact UTF-8 JSON)."""
    import folium

    m = folium.Map(tiles=None)
    element.add_to(m)
    return to_html(m)


def _popup_rows(group) -> list[dict]:
    """What each feature's popup shows, label → value, read from the layer's GeoJson
    elements (the properties may be written under short keys)."""
    import html as html_lib

    import folium

    rows = []
    for gj in group._children.values():
        popup = next((c for c in gj._children.values() if isinstance(c, folium.GeoJsonPopup)), None)
        if not isinstance(gj, folium.GeoJson) or popup is None:
            continue
        labels = [html_lib.unescape(a) for a in popup.aliases]
        for f in gj.data["features"]:
            rows.append(dict(zip(labels, (f["properties"][k] for k in popup.fields), strict=True)))
    return rows


def _features(html: str) -> list[dict]:
    """Every GeoJSON feature embedded in rendered folium HTML."""
    decoder = json.JSONDecoder()
    out = []
    for match in re.finditer(r"geo_json_[0-9a-f]+_add\(", html):
        data, _ = decoder.raw_decode(html, match.end())
        out.extend(data["features"])
    return out


# ------------------------------------------------------------------------------------ options


def test_options_from_mapping_and_errors():
    opts = MapOptions.from_mapping(
        {"language": "en", "basemap": "amap", "allow_fields": ["note"], "grid_level": 2}
    )
    assert opts.language == "en" and opts.basemap == "amap" and opts.allow_fields == ("note",)
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        MapOptions.from_mapping({"colour": "red"})
    with pytest.raises(ConfigError, match="language"):
        MapOptions(language="fr")
    with pytest.raises(ConfigError, match="basemap"):
        MapOptions(basemap="google")
    assert MapOptions(allow_fields="all").allow_fields == ("all",)


# ------------------------------------------------------------------------------------ styles


def test_grade_colours_follow_the_warning_scale():
    assert styles.GRADE_COLOURS == GRADE_HEX
    assert styles.grade_colour(1) == GRADE_HEX[1]
    assert styles.grade_colour(pd.NA) == styles.UNGRADED_COLOUR
    # one wording: the column registry's, as in the tables' risk_grade_label
    assert styles.grade_label(1, "zh") == "重大" == GRADE_LABELS["zh"][1]
    assert styles.grade_label(4, "en") == "low"
    assert styles.grade_label(None, "zh") == "未评级"
    assert [styles.index_colour(v) for v in (0, 19.9, 20, 99, 100)] == [
        styles.INDEX_COLOURS[0],
        styles.INDEX_COLOURS[0],
        styles.INDEX_COLOURS[1],
        styles.INDEX_COLOURS[4],
        styles.INDEX_COLOURS[4],
    ]
    assert styles.index_colour(float("nan")) == styles.UNGRADED_COLOUR
    values = [0, 19.9, 20, 55, 99, 100, 120, float("nan")]
    assert styles.index_colours(values) == [styles.index_colour(v) for v in values]


def test_every_factor_has_labels_in_both_languages():
    for lang in ("zh", "en"):
        for f in FACTORS:
            assert f in styles.FACTOR_LABELS[lang]
            assert styles.field_label(f"c_{f}", lang) != f"c_{f}"
        assert set(styles.TEXT[lang]) == set(styles.TEXT["zh"])


# ------------------------------------------------------------------------------------ privacy


@pytest.mark.parametrize(
    "header",
    ["联系电话", "户主姓名", "contact_phone", "Owner", "身份证号", "mobile_no", "tel", "e-mail"],
)
def test_personal_headers_are_detected(header):
    assert personal_by_name(header)


@pytest.mark.parametrize("header", ["name", "building_id", "hotel_name", "floors", "station_id"])
def test_ordinary_headers_are_not_personal(header):
    assert not personal_by_name(header)


def test_personal_content_is_detected():
    assert personal_by_content(pd.Series(["x", "call 13912345678"]))
    assert personal_by_content(pd.Series([13912345678, 1]))
    assert personal_by_content(pd.Series(["110101199003074578"]))
    assert personal_by_content(pd.Series(["021-63211234"]))
    assert personal_by_content(pd.Series(["a.b@example.cn"]))
    assert not personal_by_content(pd.Series(["3号楼", "B00012", "2026-06-30"]))
    assert not personal_by_content(pd.Series([1.5, 2.5, 1991.0]))
    assert personal_by_content(pd.Series([13912345678.0, np.nan]))  # a phone column with gaps


def test_html_columns_allow_list_and_personal_override(results):
    b = results["buildings"].assign(note=["ok"] * len(results["buildings"]))
    default = html_columns(b)
    assert "risk_index" in default and "c_age" in default and "building_id" in default
    assert "note" not in default  # an extra column needs allowing
    assert "contact_phone" not in default and "户主姓名" not in default
    every = html_columns(b, allow=["all"])
    assert "note" in every
    assert "contact_phone" not in every and "户主姓名" not in every  # personal beats "all"
    named = html_columns(b, allow=["contact_phone"])
    assert "contact_phone" in named  # an explicit name is the one way through
    # a canonical column holding phone numbers (a mis-mapped header) is caught by content
    bad = b.assign(name=["13800001111"] * len(b))
    assert "name" not in html_columns(bad)
    assert personal_columns(bad)[:1] == ["name"]


def test_escape_html_neutralises_html_and_template_literals():
    out = escape_html(XSS)
    assert "<" not in out and ">" not in out and '"' not in out
    assert "`" not in out and "$" not in out and "\\" not in out
    assert "&lt;script&gt;" in out


def test_safe_properties_rounds_escapes_and_translates():
    df = pd.DataFrame(
        {
            "t": [12.0, 12.345, np.nan],
            "n": pd.array([1, None, 3], dtype="Int64"),
            "s": ["<b>x</b>", None, "ok"],
            "flag": pd.array([True, None, False], dtype="boolean"),
        }
    )
    rows = safe_properties(
        df,
        ["t", "n", "s", "flag"],
        value_labels={"ok": "完好", "True": "是", "False": "否"},
        translate=["s"],
    )
    assert rows[0] == {"t": 12, "n": 1, "s": "&lt;b&gt;x&lt;/b&gt;", "flag": "是"}
    assert rows[1] == {"t": 12.3, "n": None, "s": None, "flag": None}
    assert rows[2]["s"] == "完好" and rows[2]["flag"] == "否" and rows[2]["t"] is None
    json.dumps(rows)  # plain Python types only


# ------------------------------------------------------------------------------------ layers


def test_display_frame_wgs84_amap_and_rounding(results):
    b = results["buildings"]
    osm = L.display_frame(b, MapOptions(basemap="osm", precision=6))
    amap = L.display_frame(b, MapOptions(basemap="amap", precision=6))
    assert osm.crs.to_epsg() == 4326 and amap.crs.to_epsg() == 4326
    c = shapely.get_coordinates(np.asarray(osm.geometry.values))
    assert np.allclose(c, np.round(c, 6))
    # Amap layers are shifted by the GCJ-02 offset (a few hundred metres in Shanghai)
    p_osm = osm.geometry.iloc[0].centroid
    p_amap = amap.geometry.iloc[0].centroid
    gx, gy = wgs84_to_gcj02(p_osm.x, p_osm.y)
    assert abs(p_amap.x - gx) < 2e-6 and abs(p_amap.y - gy) < 2e-6
    assert abs(p_amap.x - p_osm.x) > 1e-3


def test_a_layer_without_crs_is_refused(results):
    with pytest.raises(InputError, match="coordinate reference system"):
        L.display_frame(results["stations"].set_crs(None, allow_override=True), MapOptions())


def test_buildings_layer_colours_by_grade_and_has_a_short_popup(results):
    b = results["buildings"]
    layer = L.buildings_layer(b, options=MapOptions())
    rows = {r["建筑编号"]: r for r in _popup_rows(layer)}
    html = _render(layer)
    assert len(_features(html)) == len(b)
    assert len(rows) == len(b)
    first = b.iloc[0]
    row = rows[first["building_id"]]
    # about eight rows: no per-factor contributions, no raw attributes, no personal columns
    assert len(row) <= 9 and not any(k.startswith("贡献") for k in row)
    assert "contact_phone" not in html and "户主姓名" not in html
    assert row["风险等级"] == GRADE_LABELS["zh"][int(first["risk_grade"])]
    assert row["风险指数 (0–100)"] == f"{first['risk_index']:.1f}"
    # times in minutes, one decimal, from the seconds (not the seconds themselves)
    assert row["微站到场时间 (分钟)"] == f"{first['t_micro_s'] / 60:.1f}"
    assert row["消防缺水"] == ("是" if first["water_deficient"] else "否")
    opened, late = int(first["hazards_open"]), int(first["hazards_overdue"])
    assert row["未整改隐患 (项)"] == (f"{opened}（逾期 {late}）" if late else str(opened))
    assert "toLocaleString" not in html  # ids stay as written
    for g in b["risk_grade"].unique():
        assert GRADE_HEX[int(g)] in html
    # top factors: the three largest contributions, largest first
    top = sorted(FACTORS, key=lambda f: -first[f"c_{f}"])[:3]
    assert row["主要风险因素"] == "、".join(styles.FACTOR_LABELS["zh"][f] for f in top)


def test_a_large_buildings_layer_writes_short_keys(results, monkeypatch):
    b = results["buildings"]
    full = _popup_rows(L.buildings_layer(b))
    monkeypatch.setattr(L, "COMPACT_FROM", len(b))
    layer = L.buildings_layer(b)
    html = _render(layer)
    keys = {k for f in _features(html) for k in f["properties"]}
    assert keys == {str(k) for k in range(len(full[0]))}  # no column name in the features
    assert sorted(_popup_rows(layer), key=str) == sorted(full, key=str)  # the same popups


def test_buildings_layer_in_english(results):
    layer = L.buildings_layer(results["buildings"], options=MapOptions(language="en"))
    assert layer.layer_name == "Building risk grade"
    row = _popup_rows(layer)[0]
    html = _render(layer)
    assert "micro-station arrival (min)" in html and "分钟" not in html and "贡献" not in html
    assert float(row["micro-station arrival (min)"]) > 0
    assert row["risk grade"] in {"major", "high", "moderate", "low"}


def test_popup_values_in_the_units_a_reader_expects():
    s = pd.Series([90.0, np.inf, np.nan])
    assert popups.display_values(s, "t_micro_s").tolist() == ["1.5", "不可达", None]
    assert popups.display_values(s, "t_micro_s", language="en").tolist()[1] == "unreachable"
    shares = pd.Series([0.32265625, 1.0])
    assert popups.display_values(shares, "share_covered_3min", layer="grids").tolist() == [
        "32.3 %",
        "100.0 %",
    ]
    flags = pd.Series([True, False, None], dtype="boolean")
    assert popups.display_values(flags, "water_deficient").tolist() == ["是", "否", None]
    assert popups.display_values(pd.Series([212.4]), "d_hydrant_net_m").tolist() == ["212"]
    text = pd.Series(["a", "b"])
    assert popups.display_values(text, "name") is text  # text passes as it is
    assert popups.display_label("t_micro_s", "zh") == "微站到场时间 (分钟)"
    assert popups.display_label("share_covered_3min", "zh", layer="grids") == "3分钟覆盖率"


def test_grid_cells_open_their_figures(results):
    grids = results["grids"].copy()
    level = int(grids["level"].max())
    cells = grids[grids["level"] == level]
    n = len(cells)
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 30, (n, 4))
    for g in range(4):
        grids.loc[cells.index, f"n_grade_{g + 1}"] = counts[:, g]
    grids.loc[cells.index, "share_covered_3min"] = rng.uniform(0, 1, n)
    grids.loc[cells.index, "hazards_open"] = 3
    grids.loc[cells.index, "hazards_overdue"] = [1] + [0] * (n - 1)
    layer = L.grid_layer(grids, level=level)
    rows = {r["网格编号"]: r for r in _popup_rows(layer)}
    assert len(rows) == n
    first = grids.loc[cells.index[0]]
    row = rows[first["grid_id"]]
    assert row["3分钟覆盖率"] == f"{first['share_covered_3min'] * 100:.1f} %"
    a, b, c, d = counts[0]
    assert row["各等级建筑数"] == f"重大 {a} · 较大 {b} · 一般 {c} · 低 {d}"
    assert row["未整改隐患 (项)"] == "3（逾期 1）"
    assert "n_grade_1" not in row and "hazards_overdue" not in row
    html = _render(layer)
    assert "bindPopup" in html
    # the tooltip names the cell and its mean index, once
    tooltip = re.search(r"bindTooltip\(.*?let aliases = (\[.*?\]);", html, re.S).group(1)
    assert json.loads(tooltip) == ["名称", "网格编号", "平均风险指数 (0–100)"]


def test_grid_names_are_written_on_the_map(results):
    grids = results["grids"].copy()
    grids["name"] = [f"{XSS}{i}" for i in range(len(grids))]
    assert L.label_level(grids) == L.label_level(results["grids"])
    layer = L.grid_label_layer(grids)
    html = _render(layer)
    feats = _features(html)
    level = L.label_level(grids)
    named = grids[grids["level"] >= level]
    assert len(feats) == len(named)
    # each name at a point inside its own cell, escaped
    wgs = named.to_crs("EPSG:4326")
    for f in feats:
        name = f["properties"]["name"]
        assert "<" not in name and "&lt;" in name
        cell = wgs[[escape_html(v) == name for v in named["name"]]].geometry.iloc[0]
        assert cell.buffer(1e-5).contains(Point(f["geometry"]["coordinates"]))
    assert "permanent: true" in html and "fg-label-fine" in html
    assert "<script>window.__xss" not in html


def test_a_calm_map_draws_on_a_canvas_and_folds_on_phones(results):
    m = risk_map(dict(results), title="示范街道")
    shown = {
        child.layer_name: child.show
        for child in m._children.values()
        if hasattr(child, "layer_name") and hasattr(child, "show") and child.overlay
    }
    on = {name for name, show in shown.items() if show}
    assert on == {
        styles.text("grids", "zh", level=int(results["grids"]["level"].max())),
        styles.text("grid_names", "zh"),
        styles.text("roads", "zh"),
        styles.text("buildings", "zh"),
        styles.text("fire_stations", "zh"),
        styles.text("micro_stations", "zh"),
    }
    html = to_html(m)
    assert '"preferCanvas": true' in html
    assert "(max-width: 600px)" in html and ".collapse()" in html and "legend.open = false" in html
    assert "width: max-content" in html  # tooltips as wide as their text, up to a limit


def test_station_icons_differ_and_are_inline_svg(results):
    fire = _render(L.station_layer(results["stations"], kind="fire_station"))
    micro = _render(L.station_layer(results["stations"], kind="micro_station"))
    assert "M11 7 H15" in fire and "M11 7 H15" not in micro  # the cross of the fire station
    assert "rect x=" in micro and "rect x=" not in fire
    for html in (fire, micro):
        assert "AwesomeMarkers" not in html and "fa-" not in html
    assert len(_features(micro)) == 2 and len(_features(fire)) == 1


def test_hydrants_clustered_and_coloured_by_status(results):
    cluster = L.hydrant_layer(results["hydrants"])
    html = _render(cluster)
    assert "L.markerClusterGroup" in html
    for status in ("ok", "broken", "missing"):
        assert styles.HYDRANT_COLOURS[status] in html
    statuses = {f["properties"]["status"] for f in _features(html)}
    assert statuses == {"完好", "损坏", "缺失"}
    # clusters are coloured by the status of the hydrants inside, not by their count
    assert "iconCreateFunction" in html and "fg-hydrant-cluster" in html


def test_hazards_show_only_unrectified(results):
    html = _render(L.hazard_layer(results["hazards"]))
    states = sorted(f["properties"]["hazard_state"] for f in _features(html))
    assert states == ["未整改", "逾期未整改"]
    assert styles.HAZARD_COLOURS["overdue"] in html and styles.HAZARD_COLOURS["open"] in html


def test_grid_layer_per_level_and_isochrones(results):
    grids = results["grids"]
    for level, n in ((1, 1), (2, 2), (3, 4)):
        feats = _features(_render(L.grid_layer(grids, level=level)))
        assert len(feats) == n
    assert L.grid_layer(grids.drop(columns="risk_index_mean"), level=3) is None
    iso = results["isochrones"]
    feats = _features(_render(L.isochrone_layer(iso, kind="micro_station")))
    assert sorted({f["properties"]["minutes"] for f in feats}) == [1, 3, 5]
    only3 = _features(_render(L.isochrone_layer(iso, kind="micro_station", minutes=[3])))
    assert {f["properties"]["minutes"] for f in only3} == {3}
    by_seconds = iso.drop(columns="minutes").assign(t_s=iso["minutes"] * 60)
    assert L.isochrone_layer(by_seconds, kind="fire_station") is not None


def test_roads_merged_per_class(results):
    feats = _features(_render(L.road_layer(results["roads"])))
    assert len(feats) == 4  # primary, residential, secondary, service
    # segments joined into runs: one line (or several) per class
    assert all(f["geometry"]["type"] in {"LineString", "MultiLineString"} for f in feats)


def test_empty_layers_are_skipped(results):
    empty = results["hydrants"].iloc[:0]
    assert L.hydrant_layer(empty) is None
    assert L.sites_layer(results["sites"].iloc[:0]) is None
    assert L.water_deficient_layer(results["water_deficient"].iloc[:0]) is None


# ------------------------------------------------------------------------------------ risk map


def test_risk_map_has_every_layer_and_a_legend_with_units(results):
    r = dict(results)
    b = r.pop("buildings")
    m = risk_map(b, **r, title="示范街道")
    expected = {
        "grids",
        "grid_outline",
        "buildings",
        "isochrones",
        "areas",
        "fire_station",
        "micro_station",
        "hydrants",
        "water_sources",
        "deficient",
        "hazards",
        "sites",
        "proposed_hydrants",
        "roads",
    }
    assert set(m.firegrid_layers) == expected | {"grid_names"}
    html = to_html(m)
    assert "L.control.layers" in html
    for key in (
        "buildings",
        "hydrants",
        "deficient",
        "roads",
        "sites",
        "proposed_hydrants",
        "fire_stations",
    ):
        assert styles.text(key, "zh") in html
    assert "分钟" in html and "150 m" in html and "时间：分钟（含出动时间）；距离：米" in html
    assert "<title>示范街道</title>" in html


def test_risk_map_takes_the_runs_layers_as_one_mapping(results):
    layers = dict(results) | {"hydrant_gaps": None, "incidents": results["hydrants"]}
    m = risk_map(layers, title="示范街道")  # layers the map does not draw are left out
    r = dict(results)
    old = risk_map(r.pop("buildings"), **r, title="示范街道")
    assert m.firegrid_layers == old.firegrid_layers
    with pytest.raises(TypeError, match="unknown layer"):
        risk_map(results["buildings"], hydrant=results["hydrants"])


def test_legend_shows_the_configured_radius_and_targets():
    present = {"hydrants", "deficient", "isochrones"}
    values = {"hydrant_radius_m": 120.0, "target_micro_min": 4.0, "target_fire_min": 5.0}
    zh = legend_html(present, options=MapOptions(), minutes=[4, 5], values=values)
    assert "保护半径 120 m" in zh and "120 m 内" in zh and "微站 4 分钟" in zh
    assert "150 m" not in zh
    en = legend_html(present, options=MapOptions(language="en"), minutes=[3])
    assert "protection radius 150 m" in en and "micro-station 3 min" in en  # the defaults
    assert "{" not in zh + en  # every placeholder filled


def test_legend_lists_only_present_layers():
    html = legend_html({"buildings"}, options=MapOptions(language="en"), minutes=[])
    assert "<span>major</span>" in html and "Hydrant status" not in html
    assert "minutes" in html and "metres" in html


def test_user_text_in_titles_and_layers_is_escaped(results):
    r = dict(results)
    b = r.pop("buildings").assign(name=XSS)
    r["stations"] = r["stations"].assign(name=XSS)
    html = to_html(risk_map(b, **r, title=XSS))
    assert "<script>window.__xss" not in html
    assert '<img src=x onerror="window.__xss=1">' not in html
    assert "`${window" not in html


def test_point_buildings_draw_as_circles():
    b = gpd.GeoDataFrame(
        {"building_id": ["A", "B"], "risk_index": [70.0, 10.0], "risk_grade": [1, 4]},
        geometry=[Point(121.44, 31.21), Point(121.441, 31.211)],
        crs="EPSG:4326",
    )
    html = _render(L.buildings_layer(b))
    assert "L.CircleMarker" in html and GRADE_HEX[1] in html and GRADE_HEX[4] in html


def test_map_without_tiles_still_has_a_max_zoom(results):
    # the hydrant clusters throw "Map has no maxZoom specified" when no tile layer gives one
    r = dict(results)
    b = r.pop("buildings")
    m = risk_map(b, **r, options=MapOptions(basemap="none"))
    assert m.options["maxZoom"] == 19
    assert '"maxZoom": 19' in to_html(m)


def test_proposed_sites_and_hydrants(results):
    sites = _features(_render(L.sites_layer(results["sites"])))
    assert sites[0]["properties"]["road_name"] == "青林街"
    assert sites[0]["properties"]["gain_buildings"] == "7"
    hyd = _render(L.proposed_hydrants_layer(results["proposed_hydrants"]))
    assert [f["properties"]["proposal_id"] for f in _features(hyd)] == ["PH001", "PH002"]
    assert "circle cx=" in hyd  # its own inline-SVG symbol
