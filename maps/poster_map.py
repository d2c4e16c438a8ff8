"""The map of a printed poster: streets and their names, buildings by risk grade, water,
stations with their 3-minute areas, a north arrow and a scale bar, drawn with matplotlib.

Every layer is drawn from the run's own data in its projected working CRS (metres), so the
poster needs no tiles and no network connection. Colours and words are the interactive map's
(:mod:`firegrid.maps.styles`).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib import patheffects
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from firegrid.maps import styles

# Stroke widths (points) of streets by OSM highway class; the rest draw thin.
MAJOR_ROADS = frozenset({"motorway", "trunk", "primary", "secondary"})
MINOR_ROADS = frozenset({"tertiary", "unclassified", "residential", "living_street"})
ROAD_WIDTHS = {"major": 2.4, "minor": 1.3, "other": 0.6}
FIRE_STATION_COLOUR = "#c62828"
MICRO_STATION_COLOUR = "#ef6c00"
# The reach band posters show: the micro-stations' 3-minute areas ("3 minutes on scene").
REACH_MINUTES = 3.0
# A white outline under map labels; the label itself is drawn again on top as plain text, so a
# PDF keeps it searchable (matplotlib draws text with path effects as outlines).
HALO = [patheffects.Stroke(linewidth=3, foreground="white")]


def haloed(draw, *args, zorder: float = 9, **kwargs):
    """Draw a label with ``draw`` (``ax.text`` or ``ax.annotate``) twice: a white halo as
    outlines, then the text. Returns the text artist."""
    draw(*args, path_effects=HALO, zorder=zorder, **kwargs)
    return draw(*args, zorder=zorder + 0.01, **kwargs)


def framed_view(bounds, aspect: float, *, margin: float = 0.06) -> tuple[float, ...]:
    """The window (xmin, ymin, xmax, ymax) around ``bounds`` with a margin, widened to the
    axes' width/height ``aspect`` so the map fills its frame at one scale."""
    xmin, ymin, xmax, ymax = bounds
    w, h = max(xmax - xmin, 1.0), max(ymax - ymin, 1.0)
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    w, h = (h * aspect, h) if w / h < aspect else (w, w / aspect)
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def in_view(gdf: gpd.GeoDataFrame | None, view) -> gpd.GeoDataFrame | None:
    """The features of ``gdf`` whose bounds meet the window (None when there are none)."""
    if gdf is None or gdf.empty:
        return None
    xmin, ymin, xmax, ymax = view
    part = gdf.cx[xmin:xmax, ymin:ymax]
    return part if len(part) else None


def road_class(highway: pd.Series) -> pd.Series:
    """``major``, ``minor`` or ``other`` for each street's OSM highway value."""
    hw = highway.astype(str)
    return pd.Series(
        np.where(hw.isin(MAJOR_ROADS), "major", np.where(hw.isin(MINOR_ROADS), "minor", "other")),
        index=highway.index,
    )


def draw_roads(ax, roads: gpd.GeoDataFrame | None) -> None:
    """Streets as grey lines, wider for main roads (a white casing keeps them legible)."""
    if roads is None:
        return
    cls = road_class(roads["highway"]) if "highway" in roads else pd.Series("other", roads.index)
    for name in ("other", "minor", "major"):
        part = roads[cls == name]
        if part.empty:
            continue
        width = ROAD_WIDTHS[name]
        part.plot(ax=ax, color="white", linewidth=width + 1.2, zorder=2)
        part.plot(ax=ax, color=styles.ROAD_COLOUR, linewidth=width, zorder=3)


def street_labels(roads: gpd.GeoDataFrame | None, area, *, limit: int) -> pd.DataFrame:
    """Where to write the names of the main named streets meeting ``area``.

    The streets with the most length in the area, main roads first, at most ``limit``; each
    is labelled once, at the middle of its longest segment there, turned along it.

    Returns
    -------
    DataFrame with ``name``, ``x``, ``y`` (working CRS, metres) and ``angle`` (degrees).
    """
    empty = pd.DataFrame(columns=["name", "x", "y", "angle"])
    if roads is None or "name" not in roads:
        return empty
    named = roads[roads["name"].notna() & (roads["name"].astype(str).str.strip() != "")]
    if named.empty:
        return empty
    clipped = named.geometry.intersection(area)
    lengths = clipped.length
    named = named.assign(
        _len=lengths, _geom=clipped, _major=road_class(named["highway"]) == "major"
    )
    named = named[named["_len"] > 0]
    if named.empty:
        return empty
    totals = named.groupby("name")[["_len", "_major"]].agg({"_len": "sum", "_major": "max"})
    chosen = totals.sort_values(["_major", "_len"], ascending=False).head(limit).index
    best = named[named["name"].isin(chosen)].sort_values("_len").groupby("name").tail(1)
    geoms = shapely.line_merge(best["_geom"].to_numpy())
    mid = shapely.line_interpolate_point(geoms, 0.5, normalized=True)
    ahead = shapely.line_interpolate_point(geoms, 0.55, normalized=True)
    behind = shapely.line_interpolate_point(geoms, 0.45, normalized=True)
    dx = shapely.get_x(ahead) - shapely.get_x(behind)
    dy = shapely.get_y(ahead) - shapely.get_y(behind)
    angle = np.degrees(np.arctan2(dy, dx))
    # text reads left to right: turn labels that would stand upside down
    angle = np.where(angle > 90, angle - 180, np.where(angle < -90, angle + 180, angle))
    return pd.DataFrame(
        {
            "name": best["name"].astype(str).to_numpy(),
            "x": shapely.get_x(mid),
            "y": shapely.get_y(mid),
            "angle": angle,
        }
    ).dropna()


def draw_street_names(ax, labels: pd.DataFrame, *, size: float) -> None:
    for row in labels.itertuples(index=False):
        haloed(
            ax.text,
            row.x,
            row.y,
            row.name,
            rotation=row.angle,
            rotation_mode="anchor",
            ha="center",
            va="center",
            fontsize=size,
            color="#37474f",
            clip_on=True,
        )


def draw_reach(ax, isochrones: gpd.GeoDataFrame | None) -> None:
    """The micro-stations' 3-minute areas, light green with a green outline."""
    reach = micro_reach(isochrones)
    if reach is None:
        return
    reach.plot(ax=ax, color=styles.ISOCHRONE_COLOURS[2], alpha=0.35, linewidth=0, zorder=1)
    reach.boundary.plot(ax=ax, color=styles.ISOCHRONE_COLOURS[1], linewidth=1.2, zorder=4)


def micro_reach(isochrones: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    if isochrones is None or not {"kind", "minutes"} <= set(isochrones.columns):
        return None
    part = isochrones[
        (isochrones["kind"] == "micro_station") & np.isclose(isochrones["minutes"], REACH_MINUTES)
    ]
    part = part[~part.geometry.is_empty]
    return part if len(part) else None


def draw_buildings(ax, buildings: gpd.GeoDataFrame | None) -> None:
    """Buildings filled by risk grade (grey when ungraded)."""
    if buildings is None:
        return
    grades = (
        buildings["risk_grade"] if "risk_grade" in buildings else pd.Series(np.nan, buildings.index)
    )
    colours = [styles.grade_colour(g) for g in grades.to_numpy()]
    buildings.plot(ax=ax, color=colours, edgecolor="#455a64", linewidth=0.25, zorder=5)


def draw_water(ax, hydrants: gpd.GeoDataFrame | None, sources: gpd.GeoDataFrame | None) -> None:
    """Hydrants by status (working, broken, missing) and fire water sources."""
    if hydrants is not None:
        status = hydrants["status"].astype(str) if "status" in hydrants else "ok"
        colours = pd.Series(status, index=hydrants.index).map(styles.HYDRANT_COLOURS)
        colours = colours.fillna(styles.HYDRANT_COLOURS["ok"])
        hydrants.plot(
            ax=ax, color=colours.tolist(), markersize=40, edgecolor="white", linewidth=0.6, zorder=7
        )
    if sources is not None:
        points = sources.geometry.representative_point()
        gpd.GeoSeries(points, crs=sources.crs).plot(
            ax=ax,
            color=styles.WATER_SOURCE_COLOUR,
            marker="s",
            markersize=46,
            edgecolor="white",
            linewidth=0.8,
            zorder=7,
        )


def draw_stations(ax, stations: gpd.GeoDataFrame | None, *, size: float) -> None:
    """Fire rescue stations (red squares) and micro-stations (orange diamonds), named."""
    if stations is None:
        return
    kind = stations["kind"].astype(str) if "kind" in stations else pd.Series("", stations.index)
    for value, colour, marker in (
        ("fire_station", FIRE_STATION_COLOUR, "s"),
        ("micro_station", MICRO_STATION_COLOUR, "D"),
    ):
        part = stations[kind == value]
        if part.empty:
            continue
        part.plot(
            ax=ax,
            color=colour,
            marker=marker,
            markersize=90,
            edgecolor="white",
            linewidth=1.2,
            zorder=8,
        )
        if "name" not in part:
            continue
        for point, name in zip(part.geometry, part["name"], strict=True):
            if pd.isna(name):
                continue
            haloed(
                ax.annotate,
                str(name),
                (point.x, point.y),
                xytext=(7, 7),
                textcoords="offset points",
                fontsize=size,
                color=colour,
                zorder=10,
                annotation_clip=True,
            )


def draw_outside_mask(ax, view, cell) -> None:
    """Fade everything outside the cell, so the cell stands out among its neighbours."""
    box = shapely.box(*view)
    outside = box.difference(cell)
    if outside.is_empty:
        return
    gpd.GeoSeries([outside]).plot(ax=ax, color="white", alpha=0.55, linewidth=0, zorder=6)


def draw_north_arrow(ax, *, label: str = "北\nN") -> None:
    """An arrow pointing up (grid north of the working CRS) in the map's top right corner."""
    ax.annotate(
        "",
        xy=(0.95, 0.97),
        xytext=(0.95, 0.89),
        xycoords="axes fraction",
        arrowprops={"arrowstyle": "simple,head_width=1.2,head_length=1.2", "color": "#263238"},
        zorder=11,
    )
    haloed(
        ax.text,
        0.95,
        0.875,
        label,
        transform=ax.transAxes,
        ha="center",
        va="top",
        fontsize=11,
        zorder=11,
    )


def nice_length(width_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k metres) near a fifth of the map's width."""
    target = max(width_m / 5.0, 1.0)
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def length_text(metres: float) -> str:
    return f"{metres / 1000:g} 千米" if metres >= 1000 else f"{metres:g} 米"


def draw_scale_bar(ax, view) -> None:
    """A two-part black and white scale bar in the map's bottom left corner (metres)."""
    xmin, ymin, xmax, ymax = view
    length = nice_length(xmax - xmin)
    x0, y0 = xmin + 0.03 * (xmax - xmin), ymin + 0.03 * (ymax - ymin)
    height = 0.008 * (ymax - ymin)
    ax.add_patch(
        Rectangle(
            (xmin + 0.015 * (xmax - xmin), y0 - 2.2 * height),
            length + 0.03 * (xmax - xmin),
            6.5 * height,
            facecolor="white",
            alpha=0.8,
            edgecolor="none",
            zorder=11,
        )
    )
    for i, colour in enumerate(("#212121", "white")):
        ax.add_patch(
            Rectangle(
                (x0 + i * length / 2, y0),
                length / 2,
                height,
                facecolor=colour,
                edgecolor="#212121",
                linewidth=0.8,
                zorder=12,
            )
        )
    for x, text in ((x0, "0"), (x0 + length, length_text(length))):
        ax.text(x, y0 + 1.6 * height, text, ha="center", va="bottom", fontsize=9, zorder=12)


def t(key: str, **fmt) -> str:
    """A word of the poster: the interactive map's Chinese wording (:func:`styles.text`)."""
    return styles.text(key, "zh", **fmt)


def _point_entry(marker: str, size: float, colour: str, label: str) -> Line2D:
    """A legend entry for point symbols: a marker alone, white-edged as drawn on the map."""
    return Line2D(
        [],
        [],
        linestyle="",
        marker=marker,
        markersize=size,
        markerfacecolor=colour,
        markeredgecolor="white",
        label=label,
    )


def legend_handles(*, has_reach: bool) -> list:
    """The legend's entries: grades, streets, water, stations, reach, cell boundary."""
    handles: list = [
        Patch(
            facecolor=styles.grade_colour(g),
            edgecolor="#455a64",
            label=t("grade_n", grade=g, label=styles.grade_label(g, "zh")),
        )
        for g in (1, 2, 3, 4)
    ]
    handles.append(
        Patch(facecolor=styles.grade_colour(None), edgecolor="#455a64", label=t("ungraded"))
    )
    handles.append(Line2D([], [], color=styles.ROAD_COLOUR, linewidth=2.4, label=t("road_legend")))
    handles += [
        _point_entry("o", 7, styles.HYDRANT_COLOURS[status], f"{t('hydrants')}（{t(status)}）")
        for status in ("ok", "broken", "missing")
    ]
    handles += [
        _point_entry("s", 8, styles.WATER_SOURCE_COLOUR, t("water_sources")),
        _point_entry("s", 10, FIRE_STATION_COLOUR, t("fire_station")),
        _point_entry("D", 9, MICRO_STATION_COLOUR, t("micro_station")),
    ]
    if has_reach:
        handles.append(
            Patch(
                facecolor=styles.ISOCHRONE_COLOURS[2],
                edgecolor=styles.ISOCHRONE_COLOURS[1],
                alpha=0.6,
                label=t("isochrones", minutes=f"{REACH_MINUTES:g}", kind=t("micro_station")),
            )
        )
    handles.append(
        Line2D([], [], color=styles.GRID_OUTLINE, linewidth=2.5, label=t("grid_outline"))
    )
    return handles


__all__ = [
    "draw_buildings",
    "draw_north_arrow",
    "draw_outside_mask",
    "draw_reach",
    "draw_roads",
    "draw_scale_bar",
    "draw_stations",
    "draw_street_names",
    "draw_water",
    "framed_view",
    "haloed",
    "in_view",
    "legend_handles",
    "micro_reach",
    "nice_length",
    "street_labels",
]
