"""Assemble the interactive fire-risk map: every layer, a layer control, a legend with units."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import folium
import geopandas as gpd
import numpy as np

from firegrid.maps import layers as L
from firegrid.maps import styles
from firegrid.maps.html import LayerControl, Literal, escape_html
from firegrid.maps.options import MapOptions
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
.folium-map.leaflet-container {{ background: {styles.BACKGROUND}; font-family: "Helvetica Neue", Arial,
  "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }}
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
.leaflet-popup-content {{ max-height: 55vh; overflow-y: auto; }}
.leaflet-popup-content th {{ text-align: left; padding-right: 8px; font-weight: 500; color: #444; }}
</style>
"""


def _row(swatch: str, label: str) -> str:
    return f'<div class="row">{swatch}<span>{escape_html(label)}</span></div>'


def _sw(colour: str, *, opacity: float = 1.0, dashed: bool = False) -> str:
    border = "border-style: dashed;" if dashed else ""
    return f'<span class="sw" style="background:{colour};opacity:{opacity};{border}"></span>'


def _dot(colour: str) -> str:
    return f'<span class="dot" style="background:{colour}"></span>'


def legend_html(present: set[str], *, options: MapOptions, minutes: Sequence[float]) -> str:
    """The legend as an HTML fragment (a collapsible box), listing only layers on the map."""
    lang = options.language
    t = lambda key, **kw: styles.text(key, lang, **kw)  # noqa: E731
    parts = [
        f'<details class="fg-box fg-legend" open><summary>{escape_html(t("legend"))}</summary>'
    ]
    if "buildings" in present:
        parts.append(f"<h4>{escape_html(t('grade'))}</h4>")
        for g, colour in styles.GRADE_COLOURS.items():
            parts.append(_row(_sw(colour), styles.grade_label(g, lang)))
    if "grids" in present:
        parts.append(f"<h4>{escape_html(t('index'))}</h4>")
        bins = styles.INDEX_BINS
        for k, colour in enumerate(styles.INDEX_COLOURS):
            parts.append(_row(_sw(colour, opacity=0.8), f"{bins[k]:g}–{bins[k + 1]:g}"))
    if "isochrones" in present:
        parts.append(f"<h4>{escape_html(t('iso_title'))}</h4>")
        for k, m in enumerate(minutes):
            colour = styles.ISOCHRONE_COLOURS[min(k, len(styles.ISOCHRONE_COLOURS) - 1)]
            unit = "分钟" if lang == "zh" else "min"
            parts.append(_row(_sw(colour, opacity=0.6), f"≤ {m:g} {unit}"))
    station_rows = []
    if "fire_station" in present:
        station_rows.append(_row(styles.FIRE_STATION_SVG, t("fire_station")))
    if "micro_station" in present:
        station_rows.append(_row(styles.MICRO_STATION_SVG, t("micro_station")))
    if "sites" in present:
        station_rows.append(_row(styles.SITE_SVG, t("site_legend")))
    if "proposed_hydrants" in present:
        station_rows.append(_row(styles.PROPOSED_HYDRANT_SVG, t("proposed_hydrant_legend")))
    if station_rows:
        parts.append(f"<h4>{escape_html(t('station_title'))}</h4>")
        parts.extend(station_rows)
    if "hydrants" in present:
        parts.append(f"<h4>{escape_html(t('hydrant_title'))}</h4>")
        for status, colour in styles.HYDRANT_COLOURS.items():
            parts.append(_row(_dot(colour), t(status)))
        parts.append(_row(_dot(styles.HYDRANT_COLOURS["broken"]), t("hydrant_cluster")))
    if "hazards" in present:
        parts.append(f"<h4>{escape_html(t('hazard_title'))}</h4>")
        for state, colour in styles.HAZARD_COLOURS.items():
            parts.append(_row(styles.hazard_svg(colour, 14), t(state)))
    other = []
    if "water_sources" in present:
        other.append(_row(_dot(styles.WATER_SOURCE_COLOUR), t("water_sources")))
    if "deficient" in present:
        other.append(
            _row(_sw(styles.DEFICIENT_COLOUR, opacity=0.5, dashed=True), t("deficient_legend"))
        )
    if "roads" in present:
        other.append(_row('<span class="line"></span>', t("road_legend")))
    if other:
        parts.append(f"<h4>{escape_html(t('other'))}</h4>")
        parts.extend(other)
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


def risk_map(
    buildings: gpd.GeoDataFrame,
    *,
    grids: gpd.GeoDataFrame | None = None,
    stations: gpd.GeoDataFrame | None = None,
    hydrants: gpd.GeoDataFrame | None = None,
    water_sources: gpd.GeoDataFrame | None = None,
    hazards: gpd.GeoDataFrame | None = None,
    isochrones: gpd.GeoDataFrame | None = None,
    areas: gpd.GeoDataFrame | None = None,
    water_deficient: gpd.GeoDataFrame | None = None,
    sites: gpd.GeoDataFrame | None = None,
    proposed_hydrants: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
    options: MapOptions | None = None,
    title: str | None = None,
    as_of: date | None = None,
) -> folium.Map:
    """The fire-risk map of a district as a folium Map.

    Parameters
    ----------
    buildings : GeoDataFrame
        Buildings, with the risk (``risk_index``, ``risk_grade``, ``c_<factor>``), access and
        water columns where computed. Any CRS (normally the district's metric CRS).
    grids : GeoDataFrame, optional
        Grid cells with ``level`` and the roll-up columns (``risk_index_mean`` …): one
        choropleth per level (``options.grid_level`` shown, the others switchable) and outlines.
    stations, hydrants, water_sources : GeoDataFrame, optional
        Input layers (stations by ``kind``; hydrants by ``status``).
    hazards : GeoDataFrame, optional
        The hazard ledger (with ``status`` open/overdue/…); unrectified hazards are drawn.
    isochrones : GeoDataFrame, optional
        Reach polygons with ``kind`` and ``minutes`` (or ``t_s`` seconds), turnout included.
    areas : GeoDataFrame, optional
        Areas of responsibility with ``station_id`` and ``kind``.
    water_deficient : GeoDataFrame, optional
        Water-deficient zones (polygons).
    sites : GeoDataFrame, optional
        Proposed new micro-station sites (:func:`firegrid.spatial.siting.stations.site_micro_stations`).
    proposed_hydrants : GeoDataFrame, optional
        Proposed new hydrants (:func:`firegrid.spatial.siting.hydrants.propose_hydrants`).
    roads : GeoDataFrame, optional
        Road segments (lines, optionally with OSM ``highway``).
    options : MapOptions, optional
        Language, basemap, grid level, allowed fields … (the config's ``[map]``).
    title : str, optional
        Map title (default ``options.title``); escaped.
    as_of : date, optional
        Date the data speaks for, shown under the title.

    Returns
    -------
    folium.Map. Save it for sharing with :func:`firegrid.maps.export.save_html` (self-contained,
    offline); in a notebook it displays inline.
    """
    options = options or MapOptions()
    lang = options.language
    bounds = _bounds([grids, buildings], options)
    center = (
        [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
        if bounds
        else [0.0, 0.0]
    )
    # maxZoom on the map itself: without tiles (basemap "none") Leaflet has none, and the
    # hydrant clusters need one.
    m = folium.Map(location=center, zoom_start=15, tiles=None, control_scale=True, maxZoom=19)
    if options.basemap == "osm":
        folium.TileLayer(
            tiles=OSM_TILES, attr=OSM_ATTRIBUTION, name="OpenStreetMap", max_zoom=19
        ).add_to(m)
    elif options.basemap == "amap":
        folium.TileLayer(
            tiles=AMAP_TILES,
            attr=AMAP_ATTRIBUTION,
            name="高德地图 Amap" if lang == "zh" else "Amap",
            subdomains="1234",
            max_zoom=18,
        ).add_to(m)

    present: set[str] = set()

    def add(layer, key: str) -> None:
        if layer is not None:
            layer.add_to(m)
            present.add(key)

    if grids is not None and len(grids) and "level" in grids:
        levels = sorted(int(v) for v in grids["level"].dropna().unique())
        shown = options.grid_level if options.grid_level in levels else levels[-1]
        for level in levels:
            add(
                L.grid_layer(
                    grids,
                    level=level,
                    value=options.grid_value,
                    options=options,
                    show=level == shown,
                ),
                "grids",
            )
        add(L.grid_outline_layer(grids, options=options), "grid_outline")
    if water_deficient is not None:
        add(L.water_deficient_layer(water_deficient, options=options), "deficient")
    minutes: list[float] = []
    if isochrones is not None:
        minutes = iso_minutes(isochrones, options)
        for kind in ("micro_station", "fire_station"):
            add(
                L.isochrone_layer(
                    isochrones,
                    kind=kind,
                    minutes=options.isochrone_minutes,
                    options=options,
                    show=False,
                ),
                "isochrones",
            )
    if areas is not None:
        for kind in ("micro_station", "fire_station"):
            add(L.responsibility_layer(areas, kind=kind, options=options, show=False), "areas")
    if roads is not None and options.roads:
        add(L.road_layer(roads, options=options), "roads")
    add(L.buildings_layer(buildings, options=options), "buildings")
    if water_sources is not None:
        add(L.water_source_layer(water_sources, options=options), "water_sources")
    if hazards is not None:
        add(L.hazard_layer(hazards, options=options), "hazards")
    if hydrants is not None:
        add(L.hydrant_layer(hydrants, options=options), "hydrants")
    if stations is not None:
        for kind in ("fire_station", "micro_station"):
            add(L.station_layer(stations, kind=kind, options=options), kind)
    if proposed_hydrants is not None:
        # Often a hundred or more symbols: listed in the layer control, off when the map opens.
        add(
            L.proposed_hydrants_layer(proposed_hydrants, options=options, show=False),
            "proposed_hydrants",
        )
    if sites is not None:
        add(L.sites_layer(sites, options=options), "sites")

    LayerControl(collapsed=False, position="topright").add_to(m)
    if bounds:
        m.fit_bounds(bounds)

    root = m.get_root()
    heading = title or options.title
    if heading:
        root.header.add_child(Literal(f"<title>{escape_html(heading)}</title>"))
    root.header.add_child(Literal(CSS), name="firegrid_css")
    if heading:
        sub = (
            f"<br><small>{escape_html(styles.text('as_of', lang))} {as_of.isoformat()}</small>"
            if as_of
            else ""
        )
        root.html.add_child(
            Literal(f'<div class="fg-box fg-title">{escape_html(heading)}{sub}</div>')
        )
    root.html.add_child(Literal(legend_html(present, options=options, minutes=minutes)))
    m.firegrid_layers = sorted(present)  # what was drawn, for callers and tests
    return m
