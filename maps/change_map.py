"""The change map of two runs: buildings by what changed, grid cells by their change in risk.

Buildings are coloured by the first that applies of: lost 3-minute reach, gained it, moved to a
higher-risk grade, to a lower one, added, removed, unchanged; the finest grid cells by the
change of their mean risk index (blue: lower, red: higher); stations added or removed as
dots. Drawn on canvas, without tiles, so the exported page
(:func:`firegrid.maps.export.to_html`) works offline; every text reaches the page escaped
(:mod:`firegrid.maps.html`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from firegrid.maps import html
from firegrid.maps.styles import BACKGROUND, GRID_OUTLINE

# What changed for a building, in order of precedence, with its colour and labels (zh, en).
CHANGES: tuple[tuple[str, str, str, str], ...] = (
    ("lost_3min", "#c62828", "失去3分钟到场", "lost 3-min reach"),
    ("gained_3min", "#2e7d32", "新增3分钟到场", "gained 3-min reach"),
    ("riskier", "#ef6c00", "风险等级升高", "higher-risk grade"),
    ("safer", "#1565c0", "风险等级降低", "lower-risk grade"),
    ("added", "#6a1b9a", "新增建筑", "added"),
    ("removed", "#424242", "已删除建筑", "removed"),
    ("unchanged", "#bdbdbd", "无变化", "unchanged"),
)
# Stations added or removed, with their colour and labels (zh, en).
STATION_CHANGES: tuple[tuple[str, str, str, str], ...] = (
    ("added", "#00897b", "新增站点", "station added"),
    ("removed", "#616161", "撤除站点", "station removed"),
)
# Mean-risk change (index points) at which a cell's colour is at full strength.
FULL_CHANGE = 10.0
LOWER, HIGHER = (21, 101, 192), (198, 40, 40)
# Geometry simplification before drawing (metres, in the working CRS): well below a building.
SIMPLIFY_M = 0.5
# Coordinates are written to a grid of this many degrees (about 0.1 m): the file stays small.
GRID_DEG = 1e-6
WORDS = {
    "zh": {
        "buildings": "建筑变化",
        "grids": "网格平均风险指数变化",
        "lower": "降低",
        "higher": "升高",
        "change": "变化",
        "grid": "网格",
        "risk": "平均风险指数",
        "cover3": "3分钟覆盖率",
        "gained": "新增3分钟到场",
        "lost": "失去3分钟到场",
        "hz_new": "新增隐患",
        "hz_fixed": "新整改隐患",
        "building": "建筑",
        "t_micro": "微站到场 (分钟)",
        "grade": "风险等级",
        "stations": "站点变化",
        "station": "站点",
    },
    "en": {
        "buildings": "Buildings: what changed",
        "grids": "Grid cells: change of mean risk",
        "lower": "lower",
        "higher": "higher",
        "change": "change",
        "grid": "grid cell",
        "risk": "mean risk index",
        "cover3": "3-min share",
        "gained": "gained 3-min reach",
        "lost": "lost 3-min reach",
        "hz_new": "new hazards",
        "hz_fixed": "rectified hazards",
        "building": "building",
        "t_micro": "micro-station (min)",
        "grade": "risk grade",
        "stations": "Stations added or removed",
        "station": "station",
    },
}


def building_change(buildings: pd.DataFrame) -> pd.Series:
    """What changed for each building: a key of :data:`CHANGES`, by precedence."""
    presence = buildings["presence"]
    conditions = [
        buildings["change_3min"].eq(-1),
        buildings["change_3min"].eq(1),
        buildings["d_risk_grade"].lt(0),
        buildings["d_risk_grade"].gt(0),
        presence.eq("added"),
        presence.eq("removed"),
    ]
    # a change a run cannot tell (NA) is no change
    conditions = [c.fillna(False).to_numpy(bool) for c in conditions]
    keys = [key for key, *_ in CHANGES]
    return pd.Series(np.select(conditions, keys[:-1], default=keys[-1]), index=buildings.index)


def change_colour(delta: pd.Series) -> pd.Series:
    """A cell's fill colour from its change of mean risk: white at 0, blue lower, red higher."""
    strength = (delta.abs() / FULL_CHANGE).clip(0, 1).fillna(0).to_numpy()[:, None]
    end = np.where(delta.fillna(0).to_numpy()[:, None] < 0, LOWER, HIGHER)
    rgb = np.rint(255 + (end - 255) * strength).astype(int)
    return pd.Series([f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb], index=delta.index)


def change_map(
    buildings: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    *,
    stations: gpd.GeoDataFrame | None = None,
    language: str = "zh",
    title: str | None = None,
) -> folium.Map:
    """The change map of a comparison (:func:`firegrid.diff.compare`).

    Parameters
    ----------
    buildings, grids : GeoDataFrame
        The comparison's change tables per building and per grid cell (any projected CRS;
        drawn in WGS84).
    stations : GeoDataFrame, optional
        The comparison's stations (``presence``): those added or removed are drawn.
    language : {"zh", "en"}
        Of the legend, layer names and tooltips.
    title : str, optional
        Shown at the top (escaped).

    Returns
    -------
    folium.Map without tiles, canvas-rendered; export with :func:`firegrid.maps.export.to_html`.
    """
    words = WORDS["zh" if language == "zh" else "en"]
    cells = _finest(grids)
    m = _base_map(pd.concat([cells.geometry, buildings.geometry]), buildings.crs)
    _grid_layer(cells, words).add_to(m)
    _building_layer(buildings, words, language).add_to(m)
    if stations is not None and stations["presence"].ne("both").any():
        _station_layer(stations, words, language).add_to(m)
    html.LayerControl(collapsed=True).add_to(m)
    m.get_root().html.add_child(html.Literal(_legend(words, language, title)))
    return m


def _finest(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The cells of the finest level (all cells when the table has no levels)."""
    if "level" not in grids or grids["level"].isna().all():
        return grids
    return grids[grids["level"] == grids["level"].max()]


def _base_map(geometry: gpd.GeoSeries, crs) -> folium.Map:
    bounds = gpd.GeoSeries(geometry.dropna().values, crs=crs).to_crs(4326).total_bounds
    m = folium.Map(tiles=None, prefer_canvas=True, control_scale=True, zoom_start=15, maxZoom=19)
    m.get_root().header.add_child(
        html.Literal(f"<style>.leaflet-container{{background:{BACKGROUND}}}</style>")
    )
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return m


def _collection(frame: gpd.GeoDataFrame, props: pd.DataFrame) -> dict:
    """A GeoJSON FeatureCollection in WGS84 with ``props`` (text escaped) as properties."""
    shapes = frame.geometry.simplify(SIMPLIFY_M).to_crs(4326).set_precision(GRID_DEG)
    text = props.astype(object).where(props.notna(), "–").map(html.escape_html)
    # Plain property keys (the labels go to the tooltip's aliases) and the row as the feature
    # id, which the styles switch on.
    text.columns = [f"p{i}" for i in range(text.shape[1])]
    geo = json.loads(shapes.to_json(drop_id=True))
    for i, (feature, row) in enumerate(zip(geo["features"], text.to_dict("records"), strict=True)):
        feature["id"] = str(i)
        feature["properties"] = row
    return geo


def _grid_layer(cells: gpd.GeoDataFrame, words: dict) -> html.FeatureGroup:
    group = html.FeatureGroup(name=html.escape_html(words["grids"]), show=True)
    props = pd.DataFrame(
        {
            "colour": change_colour(cells["d_risk_index_mean"]),
            words["grid"]: cells.get("name", cells["grid_id"]).fillna(cells["grid_id"]),
            words["risk"]: _arrow(
                cells["risk_index_mean_before"], cells["risk_index_mean_after"], 1
            ),
            words["cover3"]: _arrow(
                100 * cells["share_covered_3min_before"],
                100 * cells["share_covered_3min_after"],
                1,
                "%",
            ),
            words["gained"]: cells["n_gained_3min"],
            words["lost"]: cells["n_lost_3min"],
            words["hz_new"]: cells["n_hazards_new"],
            words["hz_fixed"]: cells["n_hazards_rectified"],
        }
    )
    colours = props.pop("colour").tolist()
    html.GeoJson(
        _collection(cells, props),
        style_function=lambda f: {
            "fillColor": colours[int(f["id"])],
            "fillOpacity": 0.55,
            "color": GRID_OUTLINE,
            "weight": 1.2,
        },
        tooltip=_tooltip(list(props.columns)),
        control=False,
    ).add_to(group)
    return group


def _building_layer(buildings: gpd.GeoDataFrame, words: dict, language: str) -> html.FeatureGroup:
    group = html.FeatureGroup(name=html.escape_html(words["buildings"]), show=True)
    drawn = buildings[buildings.geometry.notna() & ~buildings.geometry.is_empty]
    change = building_change(drawn)
    colours = {key: colour for key, colour, *_ in CHANGES}
    labels = {key: (zh if language == "zh" else en) for key, _c, zh, en in CHANGES}
    props = pd.DataFrame(
        {
            "colour": change.map(colours),
            words["building"]: drawn["building_id"],
            words["change"]: change.map(labels),
            words["t_micro"]: _arrow(
                drawn["t_micro_s_before"] / 60, drawn["t_micro_s_after"] / 60, 1
            ),
            words["grade"]: _arrow(drawn["risk_grade_before"], drawn["risk_grade_after"], 0),
        }
    )
    fill = props.pop("colour").tolist()
    html.GeoJson(
        _collection(drawn, props),
        style_function=lambda f: {
            "fillColor": fill[int(f["id"])],
            "fillOpacity": 0.85,
            "color": fill[int(f["id"])],
            "weight": 0.6,
        },
        marker=folium.CircleMarker(radius=3),
        tooltip=_tooltip(list(props.columns)),
        control=False,
    ).add_to(group)
    return group


def _station_layer(stations: gpd.GeoDataFrame, words: dict, language: str) -> html.FeatureGroup:
    group = html.FeatureGroup(name=html.escape_html(words["stations"]), show=True)
    changed = stations[stations["presence"].ne("both") & stations.geometry.notna()]
    labels = {key: (zh if language == "zh" else en) for key, _c, zh, en in STATION_CHANGES}
    props = pd.DataFrame(
        {
            words["station"]: changed.get("name", changed["station_id"]).fillna(
                changed["station_id"]
            ),
            words["change"]: changed["presence"].map(labels),
        }
    )
    colours = changed["presence"].map({k: c for k, c, *_ in STATION_CHANGES}).tolist()
    html.GeoJson(
        _collection(changed, props),
        marker=folium.CircleMarker(radius=8),
        style_function=lambda f: {
            "fill": True,
            "fillColor": colours[int(f["id"])],
            "fillOpacity": 0.95,
            "color": "#ffffff",
            "weight": 2,
        },
        tooltip=_tooltip(list(props.columns)),
        control=False,
    ).add_to(group)
    return group


def _arrow(before: pd.Series, after: pd.Series, digits: int, unit: str = "") -> pd.Series:
    """``before → after`` as text (``–`` for a value a run lacks)."""

    def fmt(s: pd.Series) -> pd.Series:
        text = s.map(lambda v: f"{v:.{digits}f}{unit}" if pd.notna(v) else "–")
        return text.astype(str)

    return fmt(before) + " → " + fmt(after)


def _tooltip(labels: Sequence[str]) -> html.GeoJsonTooltip:
    """A tooltip of the properties ``p0``, ``p1`` … (:func:`_collection`) named ``labels``."""
    return html.GeoJsonTooltip(
        fields=[f"p{i}" for i in range(len(labels))],
        aliases=[html.escape_html(label) for label in labels],
        sticky=True,
        localize=False,
        style="min-width: 14em; white-space: normal;",
    )


def _legend(words: dict, language: str, title: str | None) -> str:
    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;background:{colour};'
        f'margin-right:6px"></span>{html.escape_html(zh if language == "zh" else en)}</div>'
        for _key, colour, zh, en in CHANGES
    )
    ramp = (
        f'<div style="margin-top:6px">{html.escape_html(words["grids"])}</div>'
        f'<div style="height:10px;background:linear-gradient(90deg,rgb{LOWER},#fff,rgb{HIGHER})">'
        f'</div><div style="display:flex;justify-content:space-between;font-size:11px">'
        f"<span>−{FULL_CHANGE:g} {html.escape_html(words['lower'])}</span>"
        f"<span>+{FULL_CHANGE:g} {html.escape_html(words['higher'])}</span></div>"
    )
    rows += "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;border-radius:50%;'
        f'background:{colour};margin-right:6px"></span>'
        f"{html.escape_html(zh if language == 'zh' else en)}</div>"
        for _key, colour, zh, en in STATION_CHANGES
    )
    head = f"<b>{html.escape_html(title)}</b>" if title else ""
    box = (
        "position:fixed;z-index:1000;background:#fff;padding:8px 10px;border-radius:4px;"
        "box-shadow:0 1px 4px rgba(0,0,0,.3);font:12px sans-serif;max-width:min(90vw,22em)"
    )
    return (
        f'<div class="firegrid-change-title" style="{box};top:10px;left:50px">{head}</div>'
        f'<div class="firegrid-change-legend" style="{box};bottom:56px;left:10px">'
        f"<b>{html.escape_html(words['buildings'])}</b>{rows}{ramp}</div>"
    )


__all__ = ["CHANGES", "STATION_CHANGES", "building_change", "change_colour", "change_map"]
