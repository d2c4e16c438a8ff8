"""Printable A3 posters of a run: one page per grid cell and one for the whole subdistrict.

The plans require grid maps posted in public places (网格区域管理图) with the grid worker's
name and contact and a supervision phone. Each page has a title (district and cell name), the
map of :mod:`firegrid.maps.poster_map` (streets named, buildings by risk grade, hydrants and
water sources, micro-stations with their 3-minute areas, north arrow, scale bar), a legend,
the cell's figures and the public contact block: only the ``grids`` columns that the config's
``[posters] public_fields`` names (personal data reaches a poster through that list alone).

Pages are drawn offline with matplotlib; Chinese text uses a TrueType subset of an OFL font
(:mod:`firegrid.maps.fonts`), embedded in PDFs as searchable text. User text (names, values)
is drawn as plain text: mathtext and TeX are off, so ``$x$`` prints as written.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from firegrid.maps import poster_map as pm
from firegrid.maps import styles
from firegrid.maps.fonts import embed_font, rc_params
from firegrid.maps.poster_options import PosterOptions
from firegrid.spatial import columns
from firegrid.spatial.errors import ConfigError

A3_INCHES = (297 / 25.4, 420 / 25.4)  # portrait, width × height
# Figure fractions of the page: title band, map, and the band below it (legend, figures,
# contacts).
MAP_BOX = (0.04, 0.235, 0.92, 0.675)
TITLE_WIDTH = 0.92  # share of the page width a title may take
STREET_LABELS = {"cell": 14, "district": 24}
# The cell's figures printed under the map (columns of the grids roll-up), in this order.
CELL_FIGURES = (
    "n_buildings",
    "residents",
    "n_grade_1",
    "n_grade_2",
    "share_covered_3min",
    "n_water_deficient",
    "hazards_open",
    "hazards_overdue",
)
POSTER_LAYERS = (
    "grids",
    "buildings",
    "roads",
    "hydrants",
    "water_sources",
    "stations",
    "isochrones",
)


@dataclass(frozen=True)
class PosterPage:
    """One page to draw: the cell (None for the whole subdistrict) and its file stem."""

    stem: str
    grid_id: str | None
    title: str
    subtitle: str
    level: int


def poster_pages(
    grids: gpd.GeoDataFrame, *, district: str, level: int | None = None
) -> list[PosterPage]:
    """The pages of a poster set: the whole subdistrict, then each cell of ``level``.

    Parameters
    ----------
    grids : GeoDataFrame
        The run's ``grids`` layer (``grid_id``, ``name``, ``level``).
    district : str
        The subdistrict's name (the config's ``[district] name``), in every title.
    level : int, optional
        Grid level with one page per cell; default the finest level present.

    Raises
    ------
    ConfigError
        ``level`` has no cells, naming the levels present.
    """
    levels = sorted(pd.to_numeric(grids["level"], errors="coerce").dropna().astype(int).unique())
    level = levels[-1] if level is None and levels else level
    cells = grids[pd.to_numeric(grids["level"], errors="coerce") == level]
    if cells.empty:
        raise ConfigError(
            f"posters: the grids layer has no cell of level {level}; its levels are {levels}"
        )
    pages = [
        PosterPage("poster_000_district", None, district, f"全域网格图（第{level}级网格）", level)
    ]
    for number, (grid_id, name) in enumerate(zip(cells["grid_id"], cells["name"], strict=True), 1):
        shown = str(name) if pd.notna(name) else str(grid_id)
        pages.append(
            PosterPage(
                f"poster_{number:03d}_{_slug(grid_id)}",
                str(grid_id),
                f"{district} · {shown}",
                f"第{level}级网格 {grid_id} · 网格区域管理图",
                level,
            )
        )
    return pages


def _slug(text: object) -> str:
    """A file-name-safe form of a grid id (letters, digits, ``-`` and ``_``; at most 40)."""
    return re.sub(r"[^0-9A-Za-z_-]+", "_", str(text)).strip("_")[:40] or "cell"


def poster_figure(
    layers: Mapping[str, gpd.GeoDataFrame | None],
    page: PosterPage,
    *,
    options: PosterOptions | None = None,
    as_of: str | None = None,
):
    """Draw one A3 page (a matplotlib Figure, not yet saved; see :func:`write_posters`).

    ``layers`` are the run's layers in its projected working CRS (metres): ``grids``,
    ``buildings`` (with ``risk_grade``), ``roads``, ``hydrants``, ``water_sources``,
    ``stations``, ``isochrones``; any may be missing except ``grids``.
    """
    from matplotlib.figure import Figure

    options = options or PosterOptions()
    grids = layers["grids"]
    cell = _cell_row(grids, page.grid_id)
    fig = Figure(figsize=A3_INCHES)
    fig.text(0.5, 0.965, page.title, ha="center", va="center", fontsize=title_size(page.title))
    fig.text(0.5, 0.935, page.subtitle, ha="center", va="center", fontsize=14, color="#455a64")
    ax = fig.add_axes(MAP_BOX)
    has_reach = _draw_map(ax, layers, cell, page)
    _draw_legend(fig, has_reach=has_reach)
    _draw_figures(fig, cell if cell is not None else _district_row(grids))
    _draw_contacts(fig, cell if cell is not None else _district_row(grids), options.public_fields)
    footer = "FireGrid · 离线绘制（无底图）· 道路、建筑、消火栓与站点来自本次分析数据"
    if as_of:
        footer = f"数据截至 {as_of} · " + footer
    fig.text(0.5, 0.015, footer, ha="center", va="bottom", fontsize=9, color="#607d8b")
    return fig


def title_size(title: str, *, largest: float = 26.0) -> float:
    """The title's font size in points: ``largest``, smaller when a long name would not fit
    the page width (a CJK character is about one em wide, other characters about half)."""
    ems = sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.55 for ch in title)
    room = TITLE_WIDTH * A3_INCHES[0] * 72  # points
    return max(min(largest, room / max(ems, 1.0)), 10.0)


def _cell_row(grids: gpd.GeoDataFrame, grid_id: str | None) -> pd.Series | None:
    if grid_id is None:
        return None
    return grids[grids["grid_id"].astype(str) == grid_id].iloc[0]


def _district_row(grids: gpd.GeoDataFrame) -> pd.Series | None:
    """The subdistrict's own row (the coarsest level), for the district page's figures."""
    levels = pd.to_numeric(grids["level"], errors="coerce")
    top = grids[levels == levels.min()]
    return top.iloc[0] if len(top) == 1 else None


def _draw_map(ax, layers, cell: pd.Series | None, page: PosterPage) -> bool:
    """The page's map; returns whether micro-station 3-minute areas were drawn."""
    grids = layers["grids"]
    area = cell.geometry if cell is not None else grids.geometry.union_all()
    width, height = ax.get_position().width * A3_INCHES[0], ax.get_position().height * A3_INCHES[1]
    view = pm.framed_view(area.bounds, width / height)
    near = {name: pm.in_view(layers.get(name), view) for name in POSTER_LAYERS}
    pm.draw_reach(ax, near["isochrones"])
    pm.draw_roads(ax, near["roads"])
    pm.draw_buildings(ax, near["buildings"])
    if cell is not None:
        pm.draw_outside_mask(ax, view, area)
    pm.draw_water(ax, near["hydrants"], near["water_sources"])
    _draw_outlines(ax, near["grids"], cell, area, level=page.level)
    kind = "cell" if cell is not None else "district"
    labels = pm.street_labels(near["roads"], area.buffer(20), limit=STREET_LABELS[kind])
    pm.draw_street_names(ax, labels, size=9 if kind == "cell" else 8)
    pm.draw_stations(ax, near["stations"], size=10)
    ax.set_xlim(view[0], view[2])
    ax.set_ylim(view[1], view[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_facecolor("#fafafa")
    pm.draw_north_arrow(ax)
    pm.draw_scale_bar(ax, view)
    return pm.micro_reach(near["isochrones"]) is not None


def _draw_outlines(ax, grids, cell: pd.Series | None, area, *, level: int) -> None:
    """The cell's boundary and name; on the district page, each cell of the page level."""
    if cell is None and grids is not None:
        cells = grids[pd.to_numeric(grids["level"], errors="coerce") == level]
        cells.boundary.plot(ax=ax, color=styles.GRID_OUTLINE, linewidth=0.8, zorder=6)
        for point, name in zip(cells.geometry.representative_point(), cells["name"], strict=True):
            pm.haloed(
                ax.text,
                point.x,
                point.y,
                str(name),
                ha="center",
                va="center",
                fontsize=8,
                color=styles.GRID_OUTLINE,
            )
    gpd.GeoSeries([area]).boundary.plot(ax=ax, color=styles.GRID_OUTLINE, linewidth=3, zorder=8)
    if cell is not None:
        point = area.representative_point()
        pm.haloed(
            ax.text,
            point.x,
            point.y,
            str(cell["name"]),
            ha="center",
            va="center",
            fontsize=20,
            weight="bold",
            color=styles.GRID_OUTLINE,
            alpha=0.85,
        )


def _draw_legend(fig, *, has_reach: bool) -> None:
    fig.legend(
        handles=pm.legend_handles(has_reach=has_reach),
        loc="upper left",
        bbox_to_anchor=(0.04, 0.225),
        ncols=2,
        fontsize=10,
        title=styles.text("legend", "zh"),
        title_fontsize=12,
        frameon=False,
        alignment="left",
    )


def _draw_figures(fig, row: pd.Series | None) -> None:
    """The cell's figures (buildings, grades, coverage, hazards) from the grid roll-up."""
    if row is None:
        return
    lines = [
        f"{columns.label(name, 'zh', layer='grids')}：{_shown(name, row[name])}"
        for name in CELL_FIGURES
        if name in row.index and pd.notna(row[name])
    ]
    if lines:
        fig.text(0.56, 0.225, "网格概况", fontsize=12, weight="bold", va="top")
        fig.text(0.56, 0.205, "\n".join(lines), fontsize=10, va="top", linespacing=1.6)


def _shown(name: str, value) -> str:
    col = columns.column(name, "grids")
    if col is not None and col.unit == "share":
        return f"{float(value):.1%}"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    return str(value)


def _draw_contacts(fig, row: pd.Series | None, public_fields: Sequence[str]) -> None:
    """The public contact block: the ``[posters] public_fields`` of the cell, as written."""
    fig.text(0.78, 0.225, "联系方式", fontsize=12, weight="bold", va="top")
    if not public_fields:
        text = "未配置公开联系信息\n（[posters] public_fields）"
    elif row is None:
        text = ""
    else:
        text = "\n".join(
            f"{columns.label(name, 'zh', layer='grids')}：{'' if pd.isna(row[name]) else row[name]}"
            for name in public_fields
        )
    fig.text(0.78, 0.205, text, fontsize=11, va="top", linespacing=1.7, wrap=True)


def check_public_fields(
    grids: gpd.GeoDataFrame, public_fields: Sequence[str], *, where: str
) -> None:
    """Refuse a ``[posters] public_fields`` column that the grids layer does not have.

    Raises
    ------
    ConfigError
        Naming ``where`` (the config or output folder), the key and the missing column.
    """
    missing = [name for name in public_fields if name not in grids.columns]
    if missing:
        have = [c for c in grids.columns if c != grids.geometry.name]
        raise ConfigError(
            f"{where}: [posters] public_fields names {missing[0]!r}, which is not a column of "
            f"the grids layer (its columns: {', '.join(map(str, have))}); results.gpkg keeps a "
            "personal column only when [map] allow_fields names it"
        )


def write_posters(
    layers: Mapping[str, gpd.GeoDataFrame | None],
    folder: str | os.PathLike,
    *,
    district: str,
    options: PosterOptions | None = None,
    as_of: str | None = None,
    pages: Sequence[PosterPage] | None = None,
) -> list[Path]:
    """Draw every page and save it into ``folder`` (which must exist), one file a page.

    Parameters
    ----------
    layers : mapping of str to GeoDataFrame
        The run's layers in one projected CRS (metres); see :func:`poster_figure`.
    folder : path
        Where the files go (``poster_000_district.pdf``, ``poster_001_<grid_id>.pdf`` …);
        the command writes into a temporary folder swapped in atomically.
    district : str
        The subdistrict's name, in every title.
    options : PosterOptions, optional
        Level, format (pdf or png), dpi and the public contact columns.
    as_of : str, optional
        The date of the data, in every footer.
    pages : sequence of PosterPage, optional
        Only these pages (default :func:`poster_pages` of the options' level).

    Returns
    -------
    The files written, in page order.
    """
    import matplotlib

    options = options or PosterOptions()
    grids = layers["grids"]
    _require_metric(grids)
    if pages is None:
        pages = poster_pages(grids, district=district, level=options.level)
    written = []
    with matplotlib.rc_context(rc_params()), tempfile.TemporaryDirectory() as fonts:
        for page in pages:
            fig = poster_figure(layers, page, options=options, as_of=as_of)
            embed_font(fig, fonts)
            path = Path(folder) / f"{page.stem}.{options.format}"
            fig.savefig(path, format=options.format, dpi=options.dpi, metadata=_metadata(page))
            written.append(path)
    return written


def _metadata(page: PosterPage) -> dict[str, str]:
    return {"Title": page.title, "Creator": "FireGrid"}


def _require_metric(grids: gpd.GeoDataFrame) -> None:
    if grids.crs is None or not grids.crs.is_projected:
        raise ConfigError(
            "posters: the layers must be in a projected CRS in metres (the run's working CRS), "
            f"not {grids.crs}"
        )


__all__ = [
    "A3_INCHES",
    "PosterPage",
    "check_public_fields",
    "poster_figure",
    "poster_pages",
    "write_posters",
]
