"""Assemble the interactive fire-risk map: every layer, a layer control, a legend with units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Template

from firegrid.maps import layers as L
from firegrid.maps import styles
from firegrid.maps.html import LayerControl, Literal, VerbatimMacro, escape_html
from firegrid.maps.options import MapOptions, parameter_values
from firegrid.spatial.io.crs import WGS84, from_wgs84

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)
# Amap (高德) road tiles, GCJ-02; style 8 is the standard road map with Chinese labels.
AMAP_TILES = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)
AMAP_ATTRIBUTION = "&copy; 高德地图 AutoNavi"

CSS = f"""
<style>
.folium-map.leaflet-container, .fg-box {{ font-family: "Helvetica Neue", Arial, "PingFang SC",
  "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }}
.folium-map.leaflet-container {{ background: {styles.BACKGROUND}; }}
.fg-icon {{ background: none; border: none; }}
.fg-box {{ background: rgba(255,255,255,0.93); border-radius: 6px; padding: 6px 10px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.35); font-size: 12px; line-height: 1.45; color: #222; }}
.fg-title {{ position: absolute; top: 10px; left: 56px; z-index: 1000; font-size: 15px;
  font-weight: 600; max-width: 55%; }}
.fg-title small {{ font-weight: 400; color: #555; font-size: 12px; }}
.fg-legend {{ position: absolute; bottom: 60px; left: 10px; z-index: 1000; max-height: 70%;
  overflow-y: auto; max-width: 300px; }}
.fg-legend summary {{ font-weight: 600; cursor: pointer; }}
.fg-legend h4 {{ margin: 6px 0 2px; font-size: 12px; }}
.fg-legend .row {{ display: flex; align-items: center; gap: 6px; margin: 1px 0; }}
.fg-legend .sw {{ width: 16px; height: 12px; border: 1px solid #555; flex: none; }}
.fg-legend .dot {{ width: 11px; height: 11px; border-radius: 50%; border: 1px solid #fff;
  box-shadow: 0 0 0 1px #777; flex: none; }}
.fg-legend .line {{ width: 18px; height: 0; border-top: 2px solid {styles.ROAD_COLOUR}; flex: none; }}
.fg-legend .units {{ color: #555; margin-top: 4px; }}
.fg-hydrant-cluster {{ background: rgba(255,255,255,0.6); }}
.fg-hydrant-cluster div {{ color: #fff; font-weight: 600; }}
.fg-hydrant-cluster small {{ font-size: 9px; }}
.leaflet-tooltip table, .leaflet-popup-content table {{ border-collapse: collapse; }}
.leaflet-popup-content {{ max-height: 55vh; overflow-y: auto; font-size: 13px; }}
.leaflet-popup-content th, .leaflet-tooltip th {{ text-align: left; padding-right: 8px;
  font-weight: 500; color: #444; white-space: nowrap; vertical-align: top; }}
/* Tooltips as wide as their text up to a limit, then wrapping: without a width, a tooltip near
   the map's edge shrank to 60-90 px and Chinese stacked one character per line. */
.leaflet-tooltip {{ width: max-content; max-width: min(320px, 80vw); white-space: normal; }}
.leaflet-tooltip td, .leaflet-popup-content td {{ min-width: 4em; }}
/* Grid names: plain text with a halo, centred on the cell, never in the way of a click. */
.leaflet-tooltip.fg-label {{ background: none; border: none; box-shadow: none; padding: 0;
  font-size: 12px; font-weight: 600; color: #263238; white-space: nowrap; pointer-events: none;
  text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 2px #fff; }}
.leaflet-tooltip.fg-label::before {{ display: none; }}
.leaflet-tooltip.fg-label td {{ min-width: 0; padding: 0; }}
.fg-label-fine {{ font-weight: 500; font-size: 11px; }}
.leaflet-container:not(.fg-zoom-fine) .fg-label-fine {{ display: none; }}
.fg-legend summary {{ list-style: none; }}
.fg-legend summary::before {{ content: "▸ "; }}
.fg-legend[open] summary::before {{ content: "▾ "; }}
/* An open popup is what the reader looks at: the title and the legend (above the map's panes,
   so above any popup) step aside until it closes. */
body:has(.leaflet-popup) .fg-title, body:has(.leaflet-popup) .fg-legend {{ visibility: hidden; }}
/* Phones: the legend and the layer control start folded (a script folds them), the title is
   smaller and the open legend leaves the map visible. */
@media (max-width: 600px) {{
  .fg-title {{ font-size: 13px; left: 50px; max-width: calc(100% - 120px); padding: 4px 8px; }}
  .fg-title small {{ font-size: 11px; }}
  .fg-legend {{ max-height: 45%; max-width: 70%; font-size: 11px; }}
  .leaflet-control-layers-expanded {{ font-size: 12px; max-width: 75vw; }}
}}
</style>
"""

# Below this width (px) the legend and the layer control start folded: on a 390 px phone
# either one would cover the map.
SMALL_SCREEN_PX = 600


class ScreenFit(VerbatimMacro):
    """Folds the layer control and the legend on small screens (a tap opens them, a tap on the
    map folds the layer control again) and shows the names of fine grid cells from zoom 16."""

    _template = Template(
        """{% macro script(this, kwargs) %}
(function () {
  var map = {{ this._parent.get_name() }}, ctrl = {{ this.control.get_name() }};
  if (window.matchMedia("(max-width: {{ this.width }}px)").matches) {
    ctrl.collapse();
    map.on("click", function () { ctrl.collapse(); });
    var legend = document.querySelector(".fg-legend");
    if (legend) { legend.open = false; }
  }
  var fine = function () {
    map.getContainer().classList.toggle("fg-zoom-fine", map.getZoom() >= {{ this.fine_zoom }});
  };
  map.on("zoomend", fine);
  fine();
})();
{% endmacro %}"""
    )

    def __init__(self, control: LayerControl, *, width: int = SMALL_SCREEN_PX, fine_zoom: int = 16):
        super().__init__()
        self._name = "ScreenFit"
        self.control = control
        self.width = int(width)
        self.fine_zoom = int(fine_zoom)


def _row(swatch: str, label: str) -> str:
    return f'<div class="row">{swatch}<span>{escape_html(label)}</span></div>'


def _sw(colour: str, *, opacity: float = 1.0, dashed: bool = False) -> str:
    border = "border-style: dashed;" if dashed else ""
    return f'<span class="sw" style="background:{colour};opacity:{opacity};{border}"></span>'


def _dot(colour: str) -> str:
    return f'<span class="dot" style="background:{colour}"></span>'


def _heading(title: str) -> str:
    return f"<h4>{escape_html(title)}</h4>"


def _grade_rows(t, lang: str, minutes: Sequence[float]) -> list[str]:
    return [
        _row(_sw(colour), styles.grade_label(g, lang)) for g, colour in styles.GRADE_COLOURS.items()
    ]


def _index_rows(t, lang: str, minutes: Sequence[float]) -> list[str]:
    bins = styles.INDEX_BINS
    return [
        _row(_sw(colour, opacity=0.8), f"{bins[k]:g}–{bins[k + 1]:g}")
        for k, colour in enumerate(styles.INDEX_COLOURS)
    ]


def _iso_rows(t, lang: str, minutes: Sequence[float]) -> list[str]:
    unit = "分钟" if lang == "zh" else "min"
    rows = [
        _row(
            _sw(styles.ISOCHRONE_COLOURS[min(k, len(styles.ISOCHRONE_COLOURS) - 1)], opacity=0.6),
            f"≤ {m:g} {unit}",
        )
        for k, m in enumerate(minutes)
    ]
    return [*rows, f'<div class="units">{escape_html(t("targets"))}</div>']


def _hydrant_rows(t, lang: str, minutes: Sequence[float]) -> list[str]:
    rows = [_row(_dot(colour), t(status)) for status, colour in styles.HYDRANT_COLOURS.items()]
    return [*rows, _row(_dot(styles.HYDRANT_COLOURS["broken"]), t("hydrant_cluster"))]


def _hazard_rows(t, lang: str, minutes: Sequence[float]) -> list[str]:
    return [
        _row(styles.hazard_svg(colour, 14), t(state))
        for state, colour in styles.HAZARD_COLOURS.items()
    ]


# Legend sections in order: (title key, layers it lists, rows of a layer present). A layer
# listed without rows gets one row of its own (STATION_ROWS, OTHER_ROWS).
STATION_ROWS = {
    "fire_station": (styles.FIRE_STATION_SVG, "fire_station"),
    "micro_station": (styles.MICRO_STATION_SVG, "micro_station"),
    "sites": (styles.SITE_SVG, "site_legend"),
    "proposed_hydrants": (styles.PROPOSED_HYDRANT_SVG, "proposed_hydrant_legend"),
}
OTHER_ROWS = {
    "water_sources": (_dot(styles.WATER_SOURCE_COLOUR), "water_sources"),
    "deficient": (_sw(styles.DEFICIENT_COLOUR, opacity=0.5, dashed=True), "deficient_legend"),
    "roads": ('<span class="line"></span>', "road_legend"),
}
LEGEND_SECTIONS = (
    ("grade", {"buildings": _grade_rows}),
    ("index", {"grids": _index_rows}),
    ("iso_title", {"isochrones": _iso_rows}),
    ("station_title", STATION_ROWS),
    ("hydrant_title", {"hydrants": _hydrant_rows}),
    ("hazard_title", {"hazards": _hazard_rows}),
    ("other", OTHER_ROWS),
)


def _section_rows(layers: dict, present: set[str], t, lang: str, minutes) -> list[str]:
    rows: list[str] = []
    for key, entry in layers.items():
        if key not in present:
            continue
        if callable(entry):
            rows.extend(entry(t, lang, minutes))
        else:
            swatch, text_key = entry
            rows.append(_row(swatch, t(text_key)))
    return rows


def legend_html(
    present: set[str],
    *,
    options: MapOptions,
    minutes: Sequence[float],
    values: Mapping[str, float] | None = None,
) -> str:
    """The legend as an HTML fragment (a collapsible box), listing only layers on the map.

    ``values`` are the run's parameters the legend quotes (hydrant protection radius in
    metres, response targets in minutes; :func:`firegrid.maps.options.parameter_values`,
    whose defaults fill what is not given).
    """
    lang = options.language
    figures = {**parameter_values(), **(values or {})}
    t = lambda key, **kw: styles.text(key, lang, **figures, **kw)  # noqa: E731
    parts = [
        # Open on a wide screen; ScreenFit folds it on a phone (<summary> is its button).
        f'<details class="fg-box fg-legend" open><summary>{escape_html(t("legend"))}</summary>'
    ]
    for title, layers in LEGEND_SECTIONS:
        rows = _section_rows(layers, present, t, lang, minutes)
        if rows:
            parts.append(_heading(t(title)))
            parts.extend(rows)
    parts.append(f'<div class="units">{escape_html(t("units"))}</div></details>')
    return "".join(parts)


def _bounds(frames: Sequence[gpd.GeoDataFrame | None], options: MapOptions):
    boxes = []
    for gdf in frames:
        if gdf is None or len(gdf) == 0 or gdf.crs is None:
            continue
        wgs = gdf.to_crs(WGS84)
        if options.basemap == "amap":
            wgs = from_wgs84(wgs, "GCJ-02")
        boxes.append(wgs.total_bounds)
    if not boxes:
        return None
    b = np.array(boxes)
    if not np.isfinite(b).all():
        return None
    return [[b[:, 1].min(), b[:, 0].min()], [b[:, 3].max(), b[:, 2].max()]]


def iso_minutes(isochrones: gpd.GeoDataFrame, options: MapOptions) -> list[float]:
    """The reach bands (minutes) the map draws: the configured ones that are present."""
    if "minutes" in isochrones:
        present = np.round(isochrones["minutes"].astype(float).to_numpy(), 3)
    elif "t_s" in isochrones:
        present = np.round(isochrones["t_s"].astype(float).to_numpy() / 60.0, 3)
    else:
        return []
    bands = sorted(set(present.tolist()))
    if options.isochrone_minutes is not None:
        wanted = set(np.round(options.isochrone_minutes, 3).tolist())
        bands = [b for b in bands if b in wanted]
    return bands


# The layers the map draws, by the run's layer names.
MAP_LAYERS = (
    "buildings",
    "grids",
    "stations",
    "hydrants",
    "water_sources",
    "hazards",
    "isochrones",
    "areas",
    "water_deficient",
    "sites",
    "proposed_hydrants",
    "roads",
)


def risk_map(
    layers: Mapping[str, gpd.GeoDataFrame | None] | gpd.GeoDataFrame,
    *,
    options: MapOptions | None = None,
    title: str | None = None,
    as_of: date | None = None,
    values: Mapping[str, float] | None = None,
    **named: gpd.GeoDataFrame | None,
) -> folium.Map:
    """The fire-risk map of a district as a folium Map.

    Parameters
    ----------
    layers : mapping of layer name → GeoDataFrame, or the buildings GeoDataFrame
        The run's layers (``run.layers``; other names are ignored), any CRS (normally the
        district's metric CRS). ``buildings`` with the risk (``risk_index``, ``risk_grade``,
        ``c_<factor>``), access and water columns where computed; ``grids`` with ``level``
        and the roll-up columns (one choropleth per level, ``options.grid_level`` shown, the
        others switchable, and outlines); ``stations`` (by ``kind``), ``hydrants`` (by
        ``status``), ``water_sources``; ``hazards``, the ledger (unrectified hazards are
        drawn; a layer without the ledger's ``status`` is skipped); ``isochrones`` (``kind``
        and ``minutes`` or ``t_s``, turnout included); ``areas`` of responsibility;
        ``water_deficient`` zones; ``sites`` (new micro-stations,
        :func:`firegrid.spatial.siting.stations.site_micro_stations`);
        ``proposed_hydrants`` (:func:`firegrid.spatial.siting.hydrants.propose_hydrants`);
        ``roads`` (lines, optionally with OSM ``highway``). Given a GeoDataFrame, it is the
        buildings and the other layers come as keywords (``grids=…``).
    options : MapOptions, optional
        Language, basemap, grid level, allowed fields … (the config's ``[map]``).
    title : str, optional
        Map title (default ``options.title``); escaped.
    as_of : date, optional
        Date the data speaks for, shown under the title.
    values : mapping, optional
        The run's parameters the legend quotes (hydrant protection radius, response targets;
        :func:`firegrid.maps.options.parameter_values`); defaults for what is not given.
    **named : GeoDataFrame
        Layers by name, beside a buildings GeoDataFrame given as ``layers``.

    Returns
    -------
    folium.Map. Save it for sharing with :func:`firegrid.maps.export.save_html` (self-contained,
    offline); in a notebook it displays inline.
    """
    frames = _map_layers(layers, named)
    options = options or MapOptions()
    bounds = _bounds([frames.get("grids"), frames.get("buildings")], options)
    m = _base_map(bounds, options)
    present, minutes = _add_layers(m, frames, options)
    control = LayerControl(collapsed=False, position="topright").add_to(m)
    ScreenFit(control).add_to(m)
    if bounds:
        m.fit_bounds(bounds)
    _add_page_text(m, options, title=title or options.title, as_of=as_of)
    legend = legend_html(present, options=options, minutes=minutes, values=values)
    m.get_root().html.add_child(Literal(legend))
    m.firegrid_layers = sorted(present)  # what was drawn, for callers and tests
    return m


def _map_layers(layers, named: Mapping[str, gpd.GeoDataFrame | None]) -> dict:
    """The drawable layers by name, from a mapping or a buildings frame plus keywords."""
    unknown = sorted(set(named) - set(MAP_LAYERS))
    if unknown:
        raise TypeError(f"risk_map() got unknown layer keyword(s) {unknown}")
    frames = (
        {"buildings": layers, **named} if isinstance(layers, pd.DataFrame) else {**layers, **named}
    )
    return {k: v for k, v in frames.items() if k in MAP_LAYERS and v is not None}


def _base_map(bounds, options: MapOptions) -> folium.Map:
    """An empty map centred on ``bounds`` with the basemap tiles of ``options``."""
    center = (
        [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
        if bounds
        else [0.0, 0.0]
    )
    # maxZoom on the map itself: without tiles (basemap "none") Leaflet has none, and the
    # hydrant clusters need one.
    # Canvas, not one SVG element per building: a 20k-building district draws in seconds.
    m = folium.Map(
        location=center,
        zoom_start=15,
        tiles=None,
        control_scale=True,
        maxZoom=19,
        prefer_canvas=True,
    )
    if options.basemap == "osm":
        folium.TileLayer(
            tiles=OSM_TILES, attr=OSM_ATTRIBUTION, name="OpenStreetMap", max_zoom=19
        ).add_to(m)
    elif options.basemap == "amap":
        folium.TileLayer(
            tiles=AMAP_TILES,
            attr=AMAP_ATTRIBUTION,
            name="高德地图 Amap" if options.language == "zh" else "Amap",
            subdomains="1234",
            max_zoom=18,
        ).add_to(m)
    return m


def _grid_layers(grids: gpd.GeoDataFrame, options: MapOptions) -> list[tuple]:
    if not len(grids) or "level" not in grids:
        return []
    levels = sorted(int(v) for v in grids["level"].dropna().unique())
    shown = options.grid_level if options.grid_level in levels else levels[-1]
    drawn = [
        (
            L.grid_layer(
                grids, level=level, value=options.grid_value, options=options, show=level == shown
            ),
            "grids",
        )
        for level in levels
    ]
    outline = L.grid_outline_layer(grids, options=options, show=False)
    return [
        *drawn,
        (outline, "grid_outline"),
        (L.grid_label_layer(grids, options=options), "grid_names"),
    ]


def _reach_layers(frames: dict, options: MapOptions) -> list[tuple]:
    """Reach bands and areas of responsibility, both off when the map opens."""
    out = []
    kinds = ("micro_station", "fire_station")
    if "isochrones" in frames:
        iso = frames["isochrones"]
        out += [
            (
                L.isochrone_layer(
                    iso, kind=k, minutes=options.isochrone_minutes, options=options, show=False
                ),
                "isochrones",
            )
            for k in kinds
        ]
    if "areas" in frames:
        areas = frames["areas"]
        out += [
            (L.responsibility_layer(areas, kind=k, options=options, show=False), "areas")
            for k in kinds
        ]
    return out


def _point_layers(frames: dict, options: MapOptions) -> list[tuple]:
    """Buildings and the point layers drawn over them, in drawing order.

    A calm map when it opens: buildings by grade, the stations and the roads are on; water,
    hazards and proposals are in the layer control, off."""
    out = []
    if "roads" in frames and options.roads:
        out.append((L.road_layer(frames["roads"], options=options), "roads"))
    if "buildings" in frames:
        out.append((L.buildings_layer(frames["buildings"], options=options), "buildings"))
    one = {
        "water_sources": L.water_source_layer,
        "hazards": L.hazard_layer,
        "hydrants": L.hydrant_layer,
    }
    out += [
        (draw(frames[k], options=options, show=False), k) for k, draw in one.items() if k in frames
    ]
    if "stations" in frames:
        out += [
            (L.station_layer(frames["stations"], kind=k, options=options), k)
            for k in ("fire_station", "micro_station")
        ]
    if "proposed_hydrants" in frames:
        # Often a hundred or more symbols: listed in the layer control, off when the map opens.
        layer = L.proposed_hydrants_layer(frames["proposed_hydrants"], options=options, show=False)
        out.append((layer, "proposed_hydrants"))
    if "sites" in frames:
        out.append((L.sites_layer(frames["sites"], options=options, show=False), "sites"))
    return out


def _add_layers(m: folium.Map, frames: dict, options: MapOptions) -> tuple[set[str], list[float]]:
    """Draw every layer present onto ``m``; returns the legend keys drawn and the reach bands."""
    drawn = _grid_layers(frames["grids"], options) if "grids" in frames else []
    if "water_deficient" in frames:
        zones = L.water_deficient_layer(frames["water_deficient"], options=options, show=False)
        drawn.append((zones, "deficient"))
    drawn += _reach_layers(frames, options)
    drawn += _point_layers(frames, options)
    present: set[str] = set()
    for layer, key in drawn:
        if layer is not None:
            layer.add_to(m)
            present.add(key)
    minutes = iso_minutes(frames["isochrones"], options) if "isochrones" in frames else []
    return present, minutes


def _add_page_text(m: folium.Map, options: MapOptions, *, title: str | None, as_of) -> None:
    """The page title, the CSS and the title box (with the data date) of the map."""
    root = m.get_root()
    if title:
        root.header.add_child(Literal(f"<title>{escape_html(title)}</title>"))
    root.header.add_child(Literal(CSS), name="firegrid_css")
    if title:
        sub = (
            f"<br><small>{escape_html(styles.text('as_of', options.language))} "
            f"{as_of.isoformat()}</small>"
            if as_of
            else ""
        )
        root.html.add_child(
            Literal(f'<div class="fg-box fg-title">{escape_html(title)}{sub}</div>')
        )
