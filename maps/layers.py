"""One function per map layer: each turns a GeoDataFrame into a folium layer, safe to share.

Every function takes the data first (a GeoDataFrame in any CRS with a CRS set; analysis
layers normally come in the district's metric CRS) and keyword options. Geometries are
simplified in metres, converted to WGS84 — or shifted to GCJ-02 when the basemap is Amap — and
rounded; only allowed columns are written (see :mod:`firegrid.maps.privacy`), as data that is never
compiled as a template (see :mod:`firegrid.maps.html`). A function
returns ``None`` when its layer is empty, so the caller can simply skip it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import JsCode

from firegrid.maps import html, popups, styles
from firegrid.maps.options import MapOptions
from firegrid.maps.privacy import html_columns, safe_properties
from firegrid.risk.params import FACTORS
from firegrid.spatial.errors import InputError
from firegrid.spatial.io.crs import WGS84, from_wgs84, working_crs_for

FACTOR_COLUMNS = [f"c_{f}" for f in FACTORS]

# Columns each layer would like in its tooltip (short) and popup, in display order. A
# building's popup is what a leader asks of one building (about eight rows): grade, index and
# the three main factors, the response times, water, open hazards.
BUILDING_TOOLTIP = ["name", "building_id", "risk_grade_label"]
BUILDING_POPUP = [
    "building_id",
    "name",
    "risk_grade_label",
    "risk_index",
    "top_factors",
    "t_micro_s",
    "t_fire_s",
    "water_deficient",
    "hazards_open",
    "hazards_overdue",
]
# A grid cell's popup: its key figures (the per-grid table has them all).
GRID_FIELDS = [
    "name",
    "grid_id",
    "n_buildings",
    "risk_index_mean",
    *popups.GRADE_COUNT_COLUMNS,
    "share_covered_3min",
    "share_covered_5min",
    "share_water_deficient",
    "hazards_open",
    "hazards_overdue",
]
GRID_TOOLTIP = ["name", "grid_id", "risk_index_mean"]
STATION_FIELDS = ["station_id", "name", "kind", "vehicle", "turnout_s", "staff"]
HYDRANT_FIELDS = ["hydrant_id", "status", "flow_lps"]
SOURCE_FIELDS = ["source_id", "name", "kind", "capacity_m3", "truck_access"]
HAZARD_FIELDS = [
    "hazard_id",
    "building_id",
    "category",
    "hazard_state",
    "found_on",
    "deadline",
    "days_overdue",
    "escalation_label",
]
SITE_FIELDS = [
    "site_id",
    "rank",
    "gain_buildings",
    "gain_residents",
    "covered_after",
    "covered_share_after",
    "road_name",
]
PROPOSED_HYDRANT_FIELDS = ["proposal_id", "rank", "n_buildings", "n_new_covered", "street"]
# Columns whose canonical values are shown translated (ok → 完好 …).
TRANSLATED = {
    "use",
    "kind",
    "vehicle",
    "status",
    "category",
    "hazard_state",
    "wiring_condition",
}

# Buildings from this many on are written under short property keys (Shown.compact): the
# column names repeated in every feature would be a fifth of a large district's page. Smaller
# layers keep the names, readable to whoever opens the page's data.
COMPACT_FROM = 5000

TOOLTIP_STYLE = "font-size: 12px;"  # widths: the map's style sheet (district_map.CSS)
POPUP_MAX_WIDTH = 280  # px: with its frame, fits a 390 px phone screen


# --------------------------------------------------------------------------------------------
# Shared helpers


def display_frame(
    gdf: gpd.GeoDataFrame, options: MapOptions, *, tolerance_m: float | None = None
) -> gpd.GeoDataFrame:
    """Simplify in metres, convert to WGS84 (or GCJ-02 for Amap) and round the coordinates.

    ``tolerance_m`` overrides ``options.simplify_m`` (area layers use ``simplify_areas_m``).

    Raises
    ------
    InputError
        When the layer has no CRS (the map cannot know where it is).
    """
    if gdf.crs is None:
        raise InputError("a map layer has no coordinate reference system; set one with set_crs")
    out = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    tolerance = options.simplify_m if tolerance_m is None else tolerance_m
    if tolerance > 0 and len(out) and not (out.geom_type == "Point").all():
        metric = out if out.crs.is_projected else out.to_crs(working_crs_for(out))
        simple = metric.geometry.simplify(tolerance, preserve_topology=True)
        out = metric.set_geometry(simple)
    out = out.to_crs(WGS84)
    if options.basemap == "amap":
        out = from_wgs84(out, "GCJ-02")
    digits = int(options.precision)
    rounded = shapely.transform(np.asarray(out.geometry.values), lambda xy: np.round(xy, digits))
    return out.set_geometry(gpd.GeoSeries(rounded, index=out.index, crs=WGS84))


def feature_collection(
    gdf: gpd.GeoDataFrame,
    columns: Sequence[str],
    options: MapOptions,
    *,
    ids: bool = True,
) -> dict:
    """A GeoJSON FeatureCollection of ``gdf`` (already :func:`display_frame`-d) with escaped,
    translated properties; feature ids are positions 0…n-1 (none with ``ids=False``).

    Figures are written as given; :func:`display_table` turns them into the text popups show
    (minutes, percentages …) beforehand."""
    labels = styles.VALUE_LABELS[options.language]
    props = safe_properties(gdf, list(columns), value_labels=labels, translate=TRANSLATED)
    geoms = shapely.to_geojson(np.asarray(gdf.geometry.values))
    features = [
        {"type": "Feature", "properties": p, "geometry": json.loads(g)}
        for p, g in zip(props, geoms, strict=True)
    ]
    if ids:
        features = [{"type": "Feature", "id": i, **f} for i, f in enumerate(features)]
    return {"type": "FeatureCollection", "features": features}


def _fields(gdf: gpd.GeoDataFrame, wanted: Sequence[str], options: MapOptions) -> list[str]:
    """The layer's wanted columns that are present and allowed, then the extra columns the
    config allows (by name, or all non-personal ones under ``"all"``)."""
    allow = set(options.allow_fields)
    extra = [
        c
        for c in gdf.columns
        if c not in wanted and (c in allow or "all" in allow) and not str(c).startswith("s_")
    ]
    return html_columns(gdf, allow=allow, wanted=[*wanted, *extra])


def display_table(
    gdf: gpd.GeoDataFrame, fields: Sequence[str], options: MapOptions, layer: str | None = None
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The allowed ``fields`` of ``gdf`` as the text a reader expects (seconds as minutes,
    shares as %, joined rows; :func:`firegrid.maps.popups.display_table`) and the fields
    to show."""
    return popups.display_table(gdf, fields, language=options.language, layer=layer)


def _aliases(columns: Sequence[str], options: MapOptions, layer: str | None) -> list[str]:
    return [
        html.escape_html(popups.display_label(c, options.language, layer=layer)) for c in columns
    ]


def _tooltip(
    columns: Sequence[str],
    options: MapOptions,
    layer: str | None = None,
    keys: Sequence[str] | None = None,
) -> folium.GeoJsonTooltip | None:
    """A tooltip of ``columns`` (labelled by them), read from properties ``keys`` (default
    the columns' names)."""
    if not columns:
        return None
    return html.GeoJsonTooltip(
        fields=list(columns if keys is None else keys),
        aliases=_aliases(columns, options, layer),
        sticky=True,
        localize=False,  # years and ids must not get thousands separators (1,991)
        style=TOOLTIP_STYLE,
    )


def _popup(
    columns: Sequence[str],
    options: MapOptions,
    layer: str | None = None,
    keys: Sequence[str] | None = None,
) -> folium.GeoJsonPopup | None:
    """A popup of ``columns`` (labelled by them), read from properties ``keys``."""
    if not columns:
        return None
    return html.GeoJsonPopup(
        fields=list(columns if keys is None else keys),
        aliases=_aliases(columns, options, layer),
        localize=False,
        max_width=POPUP_MAX_WIDTH,
        # pans the map so an opening popup clears the zoom buttons (top left)
        auto_pan_padding_top_left=[10, 80],
    )


@dataclass(frozen=True)
class Shown:
    """What a map layer shows and how it reacts.

    ``layer`` names the layer in :mod:`firegrid.spatial.columns` (labels of a name that means
    different things in two layers); ``tooltip`` lists the tooltip's columns (of ``fields``).
    ``compact`` writes the properties under short keys ("0", "1" …; the labels stay the
    columns'): for a layer of thousands of features (buildings) the column names would be a
    fifth of the page.
    """

    name: str
    fields: Sequence[str]
    layer: str | None = None
    tooltip: Sequence[str] | None = None
    popup: bool = False
    interactive: bool = True
    show: bool = True
    compact: bool = False


@dataclass(frozen=True)
class Look:
    """How a map layer's features are drawn: a style (or a row position → style), the
    marker of point features and the style on hover."""

    style: Callable[[int], dict] | dict
    marker: folium.Marker | folium.CircleMarker | None = None
    highlight: dict | None = None


def _geojson(
    gdf: gpd.GeoDataFrame, shown: Shown, look: Look, options: MapOptions
) -> folium.FeatureGroup:
    """A FeatureGroup holding the layer: one GeoJson per distinct style (buildings: one per
    grade), so no feature carries an id and no style is looked up per feature — on a page of
    20k buildings that lookup cost a second and a quarter of a megabyte."""
    frame, fields = display_table(gdf.reset_index(drop=True), shown.fields, options, shown.layer)
    key = {c: str(k) if shown.compact else c for k, c in enumerate(fields)}
    frame = frame[[*fields, frame.geometry.name]].rename(columns=key)
    group = html.FeatureGroup(name=html.escape_html(shown.name), show=shown.show)
    kwargs = {}
    if shown.interactive and shown.tooltip:
        wanted = [c for c in shown.tooltip if c in fields]
        kwargs["tooltip"] = lambda: _tooltip(wanted, options, shown.layer, [key[c] for c in wanted])
    if shown.interactive and shown.popup:
        kwargs["popup"] = lambda: _popup(fields, options, shown.layer, [key[c] for c in fields])
    for style, rows in _by_style(look.style, len(frame)):
        extra = {k: make() for k, make in kwargs.items()}  # one element per GeoJson
        if look.highlight and shown.interactive:
            extra["highlight_function"] = lambda _f: look.highlight
        html.GeoJson(
            feature_collection(frame.iloc[rows], [key[c] for c in fields], options, ids=False),
            name=html.escape_html(shown.name),
            style_function=lambda _f, style=style: style,
            marker=look.marker,
            interactive=shown.interactive,
            control=False,
            # names the layer for scripts and tests (no effect on a canvas)
            className=f"fg-{shown.layer or 'layer'}",
            **extra,
        ).add_to(group)
    return group


def _by_style(style: Callable[[int], dict] | dict, n: int) -> list[tuple[dict, np.ndarray]]:
    """Rows 0…n-1 grouped by their style (in order of first appearance)."""
    if not callable(style):
        return [(style, np.arange(n))]
    looks = [style(i) for i in range(n)]
    codes, firsts = pd.factorize(pd.Series([json.dumps(s, sort_keys=True) for s in looks]))
    return [
        (looks[int(np.argmax(codes == k))], np.flatnonzero(codes == k)) for k in range(len(firsts))
    ]


def _prepared(
    gdf: gpd.GeoDataFrame | None, options: MapOptions, *, area: bool = False
) -> gpd.GeoDataFrame | None:
    if gdf is None or len(gdf) == 0:
        return None
    frame = display_frame(gdf, options, tolerance_m=options.simplify_areas_m if area else None)
    return html.page_text(frame) if len(frame) else None


def _div_icon(svg: str, size: int) -> folium.DivIcon:
    return folium.DivIcon(
        html=svg, icon_size=(size, size), icon_anchor=(size // 2, size // 2), class_name="fg-icon"
    )


# --------------------------------------------------------------------------------------------
# Layers


def grid_layer(
    grids: gpd.GeoDataFrame,
    *,
    level: int,
    value: str = "risk_index_mean",
    options: MapOptions | None = None,
    show: bool = True,
) -> folium.FeatureGroup | None:
    """Choropleth of one grid level coloured by ``value`` (a 0–100 risk index roll-up).

    Parameters
    ----------
    grids : GeoDataFrame
        Grid polygons with ``grid_id``, ``level`` and ``value`` (any CRS).
    level : int
        Grid level to draw (1 subdistrict, 2 community, 3 resident-group cell).
    value : str
        Column to colour by; grey where missing.
    """
    options = options or MapOptions()
    if value not in grids or "level" not in grids:
        return None
    frame = _prepared(grids[grids["level"] == level], options)
    if frame is None:
        return None
    colours = styles.index_colours(frame[value].to_numpy(dtype=float, na_value=np.nan))
    weight = {1: 3.0, 2: 2.0, 3: 1.0}.get(level, 1.0)
    wanted = GRID_FIELDS if value in GRID_FIELDS else [*GRID_FIELDS[:4], value, *GRID_FIELDS[4:]]
    fields = _fields(frame, wanted, options)
    shown = Shown(
        styles.text("grids", options.language, level=level),
        fields,
        layer="grids",
        tooltip=GRID_TOOLTIP if value in GRID_TOOLTIP else [*GRID_TOOLTIP, value],
        popup=True,
        show=show,
    )
    look = Look(
        lambda i: {
            "fillColor": colours[i],
            "fillOpacity": 0.45,
            "color": styles.GRID_OUTLINE,
            "weight": weight,
        },
        highlight={"weight": weight + 2, "fillOpacity": 0.6},
    )
    return _geojson(frame, shown, look, options)


def label_level(grids: gpd.GeoDataFrame) -> int | None:
    """The grid level named on the map when it opens: the coarsest with more than one cell
    (communities under one subdistrict), else the only one."""
    if "level" not in grids or not len(grids):
        return None
    counts = grids["level"].dropna().astype(int).value_counts().sort_index()
    several = counts[counts > 1]
    return int(several.index[0] if len(several) else counts.index[0])


def grid_label_layer(
    grids: gpd.GeoDataFrame, *, options: MapOptions | None = None, show: bool = True
) -> folium.FeatureGroup | None:
    """Grid names written on the map at each cell's representative point (inside the cell).

    The cells of :func:`label_level` are named at every zoom; finer cells from zoom 16 in
    (the map's style sheet hides ``fg-label-fine`` below), so the names never crowd the map.
    The name is ``name`` (else ``grid_id``), shown as text (escaped).
    """
    options = options or MapOptions()
    level = label_level(grids)
    if level is None:
        return None
    cells = grids[grids["level"].astype(float) >= level]
    key = "name" if "name" in cells else "grid_id"
    if key not in cells or key not in _fields(cells, [key], options):
        return None
    names = cells[key].astype(object).where(cells[key].notna(), cells.get("grid_id"))
    metric = cells if cells.crs.is_projected else cells.to_crs(working_crs_for(cells))
    points = gpd.GeoDataFrame(
        {key: names.to_numpy(), "coarse": (cells["level"].astype(float) == level).to_numpy()},
        geometry=metric.geometry.representative_point().to_numpy(),
        crs=metric.crs,
    )
    frame = _prepared(points, options)
    if frame is None:
        return None
    group = html.FeatureGroup(
        name=html.escape_html(styles.text("grid_names", options.language)), show=show
    )
    for coarse, css in ((True, "fg-label"), (False, "fg-label fg-label-fine")):
        part = frame[frame["coarse"].to_numpy() == coarse].reset_index(drop=True)
        if not len(part):
            continue
        html.GeoJson(
            feature_collection(part, [key], options),
            marker=folium.CircleMarker(radius=0, stroke=False, fill=False),
            on_each_feature=JsCode(LABEL_JS.replace("KEY", key).replace("CLASS", css)),
            interactive=False,
            control=False,
        ).add_to(group)
    return group


# A permanent label per feature (bound to the group, Leaflet would open one for all). The
# property is escaped text (feature_collection), as Leaflet shows tooltip strings as HTML.
LABEL_JS = """function(feature, layer) {
    layer.bindTooltip(String(feature.properties["KEY"]), {
        permanent: true, direction: "center", className: "CLASS", interactive: false
    });
}"""


def grid_outline_layer(
    grids: gpd.GeoDataFrame, *, options: MapOptions | None = None, show: bool = True
) -> folium.FeatureGroup | None:
    """Outlines of every grid level (thicker for higher levels, finest level dashed);
    non-interactive. Each level's boundaries are dissolved into lines, so an edge two cells
    share is written once."""
    options = options or MapOptions()
    frame = _prepared(grids, options)
    if frame is None:
        return None
    levels = (
        frame["level"].to_numpy(dtype=float, na_value=3)
        if "level" in frame
        else np.full(len(frame), 3.0)
    )
    geoms = np.asarray(frame.geometry.values)
    present = sorted(set(levels.tolist()))
    lines = [
        shapely.line_merge(shapely.union_all(shapely.boundary(geoms[levels == lv])))
        for lv in present
    ]
    outlines = gpd.GeoDataFrame({"level": present}, geometry=lines, crs=frame.crs)
    look = Look(
        lambda i: {
            "color": styles.GRID_OUTLINE,
            "weight": {1: 3.0, 2: 2.0}.get(int(present[i]), 1.0),
            "dashArray": None if present[i] < 3 else "4 3",
            "opacity": 0.8,
        }
    )
    shown = Shown(styles.text("grid_outline", options.language), [], interactive=False, show=show)
    return _geojson(outlines, shown, look, options)


def buildings_layer(
    buildings: gpd.GeoDataFrame, *, options: MapOptions | None = None, show: bool = True
) -> folium.FeatureGroup | None:
    """Buildings coloured by risk grade (1 重大 red, 2 较大 orange, 3 一般 yellow, 4 低 blue).

    The tooltip names the building and its grade; the popup (about eight rows) adds the risk
    index, the three largest factor contributions (index points), the micro-station and fire
    station arrival times in minutes, whether water is deficient and the open (overdue)
    hazards. Point buildings are drawn as small circles.
    """
    options = options or MapOptions()
    frame = _prepared(buildings, options)
    if frame is None:
        return None
    frame = frame.copy()
    lang = options.language
    if "risk_grade" in frame:
        grades = pd.to_numeric(frame["risk_grade"], errors="coerce").astype("Int64")
        frame["risk_grade_label"] = _grade_labels(grades, lang)
        colours = grades.map(styles.GRADE_COLOURS, na_action="ignore")
        colours = colours.astype(object).fillna(styles.UNGRADED_COLOUR).tolist()
    else:
        colours = [styles.UNGRADED_COLOUR] * len(frame)
    present = [c for c in FACTOR_COLUMNS if c in frame]
    if present:
        # Recomputed from the contributions so the factor names are in the map's language.
        frame["top_factors"] = _top_factors(frame[present], lang)
    fields = _fields(frame, BUILDING_POPUP, options)
    points = (frame.geom_type == "Point").all()
    style = lambda i: {  # noqa: E731
        "fill": True,
        "fillColor": colours[i],
        "fillOpacity": 0.8,
        "color": "#424242",
        "weight": 0.6 if not points else 1,
    }
    shown = Shown(
        styles.text("buildings", lang),
        fields,
        layer="buildings",
        tooltip=BUILDING_TOOLTIP,
        popup=True,
        show=show,
        compact=len(frame) >= COMPACT_FROM,
    )
    # No hover highlight: two handlers per building cost more load time than they help.
    look = Look(style, marker=folium.CircleMarker(radius=4) if points else None)
    return _geojson(frame, shown, look, options)


def _grade_labels(grades: pd.Series, language: str) -> pd.Series:
    """Grade 1–4 → its one label (:func:`firegrid.maps.styles.grade_label`), missing stays."""
    labels = {g: styles.grade_label(g, language) for g in styles.GRADE_COLOURS}
    return grades.map(labels, na_action="ignore").astype("string")


def _top_factors(contributions: pd.DataFrame, language: str, n: int = 3) -> pd.Series:
    """The ``n`` largest contributions of each building by name, largest first ("电气线路、
    隐患"); the index points are in the per-building table."""
    names = np.array(
        [styles.FACTOR_LABELS[language].get(c[2:], c[2:]) for c in contributions.columns]
    )
    values = contributions.to_numpy(dtype=float, na_value=np.nan)
    filled = np.where(np.isnan(values), -1.0, values)
    order = np.argsort(-filled, axis=1)[:, :n]
    picked = np.take_along_axis(filled, order, axis=1)
    parts = np.where(picked > 0, names[order], "")
    sep = "、" if language == "zh" else ", "
    joined = [sep.join(p for p in row if p) for row in parts]
    return pd.Series(joined, index=contributions.index, dtype="string")


def isochrone_layer(
    isochrones: gpd.GeoDataFrame,
    *,
    kind: str,
    minutes: Sequence[float] | None = None,
    options: MapOptions | None = None,
    show: bool = True,
) -> folium.FeatureGroup | None:
    """Drive/ride-time bands of one station kind: nested polygons, darker = reached sooner.

    Parameters
    ----------
    isochrones : GeoDataFrame
        Polygons with ``minutes`` (or ``t_s`` seconds) and, when several kinds are mixed,
        ``kind`` (``fire_station`` / ``micro_station``). Times include turnout.
    kind : str
        Which station kind to draw.
    minutes : sequence of float, optional
        Bands to draw (others are left out); default every band present.
    """
    options = options or MapOptions()
    iso = isochrones
    if "minutes" not in iso and "t_s" in iso:
        iso = iso.assign(minutes=iso["t_s"].astype(float) / 60.0)
    if "minutes" not in iso:
        return None
    if "kind" in iso:
        iso = iso[iso["kind"] == kind]
    if minutes is not None:
        iso = iso[np.isin(np.round(iso["minutes"].astype(float), 3), np.round(minutes, 3))]
    # Larger bands first, so nearer (darker) bands are drawn on top.
    iso = iso.sort_values("minutes", ascending=False)
    frame = _prepared(iso, options, area=True)
    if frame is None:
        return None
    bands = sorted(set(np.round(frame["minutes"].astype(float), 3)))
    colour_of = {
        m: styles.ISOCHRONE_COLOURS[min(k, len(styles.ISOCHRONE_COLOURS) - 1)]
        for k, m in enumerate(bands)
    }
    colours = [colour_of[round(float(m), 3)] for m in frame["minutes"]]
    lang = options.language
    label = styles.text(
        "isochrones", lang, minutes="/".join(f"{m:g}" for m in bands), kind=styles.text(kind, lang)
    )
    fields = _fields(frame, ["minutes", "station_id", "kind"], options)
    look = Look(
        lambda i: {
            "fillColor": colours[i],
            "fillOpacity": 0.18,
            "color": colours[i],
            "weight": 1.2,
        }
    )
    shown = Shown(label, fields, layer="isochrones", tooltip=fields, show=show)
    return _geojson(frame, shown, look, options)


def responsibility_layer(
    areas: gpd.GeoDataFrame,
    *,
    kind: str | None = None,
    options: MapOptions | None = None,
    show: bool = False,
) -> folium.FeatureGroup | None:
    """Areas of responsibility: the part of the district each station reaches first.

    ``areas`` holds polygons with ``station_id`` (and ``kind`` when kinds are mixed).
    """
    options = options or MapOptions()
    if kind is not None and "kind" in areas:
        areas = areas[areas["kind"] == kind]
    frame = _prepared(areas, options, area=True)
    if frame is None:
        return None
    ids = (
        frame["station_id"].astype(str).to_numpy()
        if "station_id" in frame
        else np.arange(len(frame)).astype(str)
    )
    codes = pd.factorize(ids)[0]
    colours = [styles.AREA_COLOURS[c % len(styles.AREA_COLOURS)] for c in codes]
    lang = options.language
    name = styles.text("areas", lang, kind=styles.text(kind, lang) if kind else "")
    fields = _fields(frame, ["station_id", "name", "kind", "n_buildings", "area_km2"], options)
    look = Look(
        lambda i: {
            "fillColor": colours[i],
            "fillOpacity": 0.2,
            "color": colours[i],
            "weight": 2,
            "dashArray": "6 4",
        }
    )
    shown = Shown(name, fields, layer="areas", tooltip=fields, show=show)
    return _geojson(frame, shown, look, options)


def station_layer(
    stations: gpd.GeoDataFrame,
    *,
    kind: str,
    options: MapOptions | None = None,
    show: bool = True,
) -> folium.FeatureGroup | None:
    """Stations of one kind with their own inline-SVG icon (fire station: red shield with a
    cross; micro-station: orange square with a flame), usable offline."""
    options = options or MapOptions()
    sel = stations[stations["kind"] == kind] if "kind" in stations else stations
    frame = _prepared(sel, options)
    if frame is None:
        return None
    svg = styles.FIRE_STATION_SVG if kind == "fire_station" else styles.MICRO_STATION_SVG
    icon = _div_icon(svg, styles.SVG_SIZES.get(kind, 20))
    fields = _fields(frame, STATION_FIELDS, options)
    lang = options.language
    shown = Shown(
        styles.text("fire_stations" if kind == "fire_station" else "micro_stations", lang),
        fields,
        layer="stations",
        tooltip=fields,
        show=show,
    )
    return _geojson(frame, shown, Look({}, marker=folium.Marker(icon=icon)), options)


# Clusters coloured like the hydrants they hold (the plugin's default green/yellow/orange by
# count would read as working/broken): green when all work, orange with the number not working
# otherwise. Status is read from each marker's fill colour, set from ``status`` above.
HYDRANT_CLUSTER_JS = f"""function(cluster) {{
    var ms = cluster.getAllChildMarkers(), bad = 0;
    for (var i = 0; i < ms.length; i++) {{
        if (ms[i].options.fillColor !== "{styles.HYDRANT_COLOURS["ok"]}") bad++;
    }}
    var colour = bad ? "{styles.HYDRANT_COLOURS["broken"]}" : "{styles.HYDRANT_COLOURS["ok"]}";
    var text = bad ? ms.length + "<small>/" + bad + "✕</small>" : String(ms.length);
    return L.divIcon({{
        html: '<div style="background:' + colour + '"><span>' + text + '</span></div>',
        className: "marker-cluster fg-hydrant-cluster",
        iconSize: L.point(36, 36)
    }});
}}"""


def hydrant_layer(
    hydrants: gpd.GeoDataFrame, *, options: MapOptions | None = None, show: bool = True
) -> folium.plugins.MarkerCluster | None:
    """Hydrants coloured by status (working green, broken orange, missing grey), clustered
    when zoomed out and shown one by one from street zoom (17) in."""
    options = options or MapOptions()
    frame = _prepared(hydrants, options)
    if frame is None:
        return None
    status = (
        frame["status"].astype("string").fillna("missing").to_numpy()
        if "status" in frame
        else np.full(len(frame), "ok")
    )
    colours = [styles.HYDRANT_COLOURS.get(s, styles.HYDRANT_COLOURS["missing"]) for s in status]
    fields = _fields(frame, HYDRANT_FIELDS, options)
    cluster = html.MarkerCluster(
        name=html.escape_html(styles.text("hydrants", options.language)),
        show=show,
        options={"disableClusteringAtZoom": 17, "maxClusterRadius": 40},
        icon_create_function=HYDRANT_CLUSTER_JS,
    )
    data = feature_collection(frame.reset_index(drop=True), fields, options)
    html.GeoJson(
        data,
        style_function=lambda f: {
            "fill": True,
            "fillColor": colours[int(f["id"])],
            "color": "#ffffff",
            "weight": 1.5,
            "fillOpacity": 0.95,
        },
        marker=folium.CircleMarker(radius=6),
        tooltip=_tooltip(fields, options, "hydrants"),
        control=False,
    ).add_to(cluster)
    return cluster


def water_source_layer(
    sources: gpd.GeoDataFrame, *, options: MapOptions | None = None, show: bool = True
) -> folium.FeatureGroup | None:
    """Fire water sources (pools, natural water, tanks): blue points or outlines."""
    options = options or MapOptions()
    frame = _prepared(sources, options)
    if frame is None:
        return None
    fields = _fields(frame, SOURCE_FIELDS, options)
    look = Look(
        {
            "fill": True,
            "fillColor": styles.WATER_SOURCE_COLOUR,
            "color": "#ffffff",
            "weight": 1.5,
            "fillOpacity": 0.9,
        },
        marker=folium.CircleMarker(radius=7),
    )
    shown = Shown(
        styles.text("water_sources", options.language),
        fields,
        layer="water_sources",
        tooltip=fields,
        show=show,
    )
    return _geojson(frame, shown, look, options)


def water_deficient_layer(
    zones: gpd.GeoDataFrame, *, options: MapOptions | None = None, show: bool = True
) -> folium.FeatureGroup | None:
    """Water-deficient zones (消防缺水区域): where no working hydrant or usable water source is
    within the protection radius along the streets."""
    options = options or MapOptions()
    frame = _prepared(zones, options, area=True)
    if frame is None:
        return None
    fields = _fields(frame, ["grid_id", "n_buildings", "area_km2"], options)
    look = Look(
        {
            "fillColor": styles.DEFICIENT_COLOUR,
            "fillOpacity": 0.25,
            "color": styles.DEFICIENT_COLOUR,
            "weight": 1.5,
            "dashArray": "3 3",
        }
    )
    shown = Shown(
        styles.text("deficient", options.language),
        fields,
        layer="water_deficient",
        tooltip=fields,
        show=show,
    )
    return _geojson(frame, shown, look, options)


def hazard_layer(
    hazards: gpd.GeoDataFrame, *, options: MapOptions | None = None, show: bool = True
) -> folium.FeatureGroup | None:
    """Unrectified hazards from the ledger: open (amber warning sign) and overdue (red).

    ``hazards`` is the ledger of :func:`firegrid.risk.hazards.hazard_ledger` (its ``status`` is
    ``future`` / ``open`` / ``overdue`` / ``rectified``); rectified ones are left out. Major
    hazards get a larger sign.
    """
    options = options or MapOptions()
    if "status" not in hazards:
        return None
    sel = hazards[hazards["status"].isin(["open", "overdue"]).to_numpy()]
    sel = sel.assign(hazard_state=sel["status"].astype("string")).drop(columns=["status"])
    frame = _prepared(sel, options)
    if frame is None:
        return None
    fields = _fields(frame, HAZARD_FIELDS, options)
    group = html.FeatureGroup(
        name=html.escape_html(styles.text("hazards", options.language)), show=show
    )
    major = (
        (frame["category"].astype("string") == "major").fillna(False).to_numpy()
        if "category" in frame
        else np.zeros(len(frame), bool)
    )
    for hstate in ("open", "overdue"):
        for is_major in (False, True):
            part = frame[(frame["hazard_state"] == hstate).to_numpy() & (major == is_major)]
            if not len(part):
                continue
            size = 22 if is_major else 16
            icon = _div_icon(styles.hazard_svg(styles.HAZARD_COLOURS[hstate], size), size)
            data = feature_collection(part.reset_index(drop=True), fields, options)
            html.GeoJson(
                data,
                marker=folium.Marker(icon=icon),
                tooltip=_tooltip(fields, options, "hazards"),
                control=False,
            ).add_to(group)
    return group


def sites_layer(
    sites: gpd.GeoDataFrame, *, options: MapOptions | None = None, show: bool = True
) -> folium.FeatureGroup | None:
    """New micro-station sites proposed by the siting step, in rank order (a green star each)."""
    options = options or MapOptions()
    frame = _prepared(sites, options)
    if frame is None:
        return None
    fields = _fields(frame, SITE_FIELDS, options)
    icon = _div_icon(styles.SITE_SVG, styles.SVG_SIZES["site"])
    shown = Shown(
        styles.text("sites", options.language), fields, layer="sites", tooltip=fields, show=show
    )
    return _geojson(frame, shown, Look({}, marker=folium.Marker(icon=icon)), options)


def proposed_hydrants_layer(
    proposed: gpd.GeoDataFrame, *, options: MapOptions | None = None, show: bool = True
) -> folium.FeatureGroup | None:
    """New hydrants proposed by the water step (fewest that cover every coverable
    water-deficient building within the protection radius along the streets): a green ring with a plus."""
    options = options or MapOptions()
    frame = _prepared(proposed, options)
    if frame is None:
        return None
    fields = _fields(frame, PROPOSED_HYDRANT_FIELDS, options)
    size = styles.SVG_SIZES["proposed_hydrant"]
    icon = _div_icon(styles.PROPOSED_HYDRANT_SVG, size)
    shown = Shown(
        styles.text("proposed_hydrants", options.language),
        fields,
        layer="proposed_hydrants",
        tooltip=fields,
        show=show,
    )
    return _geojson(frame, shown, Look({}, marker=folium.Marker(icon=icon)), options)


ROAD_WEIGHTS = {
    "motorway": 3.0,
    "trunk": 3.0,
    "primary": 2.5,
    "secondary": 2.0,
    "tertiary": 1.6,
}


def road_layer(
    roads: gpd.GeoDataFrame, *, options: MapOptions | None = None, show: bool = True
) -> folium.FeatureGroup | None:
    """The road network as thin grey lines (wider for main roads), merged per road class so
    thousands of street segments cost a few features; non-interactive."""
    options = options or MapOptions()
    frame = _prepared(roads, options)
    if frame is None:
        return None
    cls = (
        frame["highway"].astype(str).str.replace(r"[\[\]' ]", "", regex=True).str.split(",").str[0]
        if "highway" in frame
        else pd.Series("road", index=frame.index)
    )
    cls = cls.str.replace("_link", "", regex=False)
    codes, uniques = pd.factorize(cls)
    geoms = np.asarray(frame.geometry.values)
    lines = shapely.get_parts(geoms)
    line_codes = np.repeat(codes, shapely.get_num_geometries(geoms))
    order = np.argsort(line_codes, kind="stable")  # multilinestrings wants sorted indices
    merged = shapely.multilinestrings(lines[order], indices=line_codes[order])
    # Street segments end where the next begins: joined into runs, each shared vertex is
    # written once instead of twice (about half the layer's bytes).
    merged = shapely.line_merge(merged)
    merged_frame = gpd.GeoDataFrame(
        {"road_class": list(uniques)}, geometry=list(merged), crs=frame.crs
    )
    weights = [ROAD_WEIGHTS.get(c, 1.0) for c in uniques]
    look = Look(lambda i: {"color": styles.ROAD_COLOUR, "weight": weights[i], "opacity": 0.8})
    shown = Shown(styles.text("roads", options.language), [], interactive=False, show=show)
    return _geojson(merged_frame, shown, look, options)
