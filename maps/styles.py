"""Colours, icons and the Chinese/English labels of the map (layers, legend, popups)."""

from __future__ import annotations

import numpy as np

from firegrid.risk.grading import GRADE_HEX
from firegrid.risk.params import FACTORS
from firegrid.spatial import columns

# Risk grades: the usual red/orange/yellow/blue warning scale, shared with the risk package.
GRADE_COLOURS: dict[int, str] = dict(GRADE_HEX)
UNGRADED_COLOUR = "#9e9e9e"

# Risk-index choropleth: five equal bands of the 0–100 index, light yellow to dark red
# (ColorBrewer YlOrRd, colour-blind safe and printable in grey).
INDEX_BINS: tuple[float, ...] = (0.0, 20.0, 40.0, 60.0, 80.0, 100.0)
INDEX_COLOURS: tuple[str, ...] = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")

HYDRANT_COLOURS: dict[str, str] = {"ok": "#1a9641", "broken": "#f57c00", "missing": "#616161"}
HAZARD_COLOURS: dict[str, str] = {"overdue": "#c62828", "open": "#ffc107"}
WATER_SOURCE_COLOUR = "#0277bd"
DEFICIENT_COLOUR = "#8e24aa"
SITE_COLOUR = "#00897b"
ROAD_COLOUR = "#8d8d8d"
GRID_OUTLINE = "#37474f"
BACKGROUND = "#f3f1ec"  # shows where tiles are missing (offline): light, so layers stay legible
# Isochrone bands, nearest first: darker green = reached sooner.
ISOCHRONE_COLOURS: tuple[str, ...] = ("#1b5e20", "#43a047", "#a5d6a7", "#dcedc8")
# Areas of responsibility: a qualitative palette (ColorBrewer Set2/Dark2) cycled by station.
AREA_COLOURS: tuple[str, ...] = (
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
)

# Station icons as inline SVG (no icon font or CDN): a red shield with a white cross for a fire
# rescue station, a smaller orange square with a flame-like drop for a micro-station.
FIRE_STATION_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="26" height="26" viewBox="0 0 26 26">'
    '<path d="M13 1 L24 5 V13 C24 19 19 23.5 13 25 C7 23.5 2 19 2 13 V5 Z" fill="#c62828" '
    'stroke="#fff" stroke-width="1.5"/>'
    '<path d="M11 7 H15 V11 H19 V15 H15 V19 H11 V15 H7 V11 H11 Z" fill="#fff"/></svg>'
)
MICRO_STATION_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" viewBox="0 0 20 20">'
    '<rect x="1" y="1" width="18" height="18" rx="4" fill="#ef6c00" stroke="#fff" '
    'stroke-width="1.5"/>'
    '<path d="M10 4 C13 8 14.5 10 14.5 12.3 A4.5 4.5 0 0 1 5.5 12.3 C5.5 10 7 8 10 4 Z" '
    'fill="#fff"/></svg>'
)
SITE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="22" height="22" viewBox="0 0 22 22">'
    '<path d="M11 1 L13.6 8 H21 L15 12.5 L17.3 20 L11 15.5 L4.7 20 L7 12.5 L1 8 H8.4 Z" '
    'fill="#00897b" stroke="#fff" stroke-width="1.2"/></svg>'
)
# A proposed hydrant: a white disc with a hydrant-green ring and a plus.
PROPOSED_HYDRANT_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">'
    '<circle cx="8" cy="8" r="6.5" fill="#fff" stroke="#1a9641" stroke-width="2.2"/>'
    '<path d="M7 4.5 H9 V7 H11.5 V9 H9 V11.5 H7 V9 H4.5 V7 H7 Z" fill="#1a9641"/></svg>'
)
SVG_SIZES = {"fire_station": 26, "micro_station": 20, "site": 22, "proposed_hydrant": 16}


def hazard_svg(colour: str, size: int = 16) -> str:
    """A warning triangle with an exclamation mark, filled with ``colour``."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        'viewBox="0 0 20 20"><path d="M10 1.5 L19 18 H1 Z" '
        f'fill="{colour}" stroke="#212121" stroke-width="1.2" stroke-linejoin="round"/>'
        '<path d="M9 7 H11 L10.6 13 H9.4 Z M9 14.5 H11 V16.5 H9 Z" fill="#fff"/></svg>'
    )


def index_colour(value: float | None) -> str:
    """Fill colour of a risk index 0–100 (grey when unknown)."""
    if value is None or value != value:  # NaN
        return UNGRADED_COLOUR
    for upper, colour in zip(INDEX_BINS[1:], INDEX_COLOURS, strict=True):
        if value < upper:
            return colour
    return INDEX_COLOURS[-1]


def index_colours(values: np.ndarray) -> list[str]:
    """Fill colours of many risk index values (vectorised :func:`index_colour`)."""
    values = np.asarray(values, dtype=float)
    band = np.clip(np.digitize(values, INDEX_BINS[1:-1]), 0, len(INDEX_COLOURS) - 1)
    palette = np.array(INDEX_COLOURS, dtype=object)
    return np.where(np.isnan(values), UNGRADED_COLOUR, palette[band]).tolist()


def grade_colour(grade) -> str:
    """Colour of a risk grade 1–4 (grey when ungraded)."""
    try:
        return GRADE_COLOURS.get(int(grade), UNGRADED_COLOUR)
    except (TypeError, ValueError):
        return UNGRADED_COLOUR


# Every visible word of the map, in both languages.
TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "grids": "网格风险指数（第{level}级网格）",
        "grid_outline": "网格边界",
        "grid_names": "网格名称",
        "buildings": "建筑风险等级",
        "isochrones": "{minutes} 分钟可达范围（{kind}）",
        "areas": "责任区（{kind}）",
        "fire_stations": "消防救援站",
        "micro_stations": "微型消防站",
        "hydrants": "室外消火栓",
        "water_sources": "消防水源",
        "deficient": "消防缺水区域",
        "hazards": "隐患（未整改/已逾期）",
        "sites": "建议新增微型消防站",
        "proposed_hydrants": "建议新增消火栓",
        "roads": "道路",
        "legend": "图例",
        "grade": "风险等级",
        "index": "网格风险指数（0–100，越高越危险）",
        "iso_title": "行车/步行可达时间（分钟，含出动时间）",
        "targets": "到场目标：微站 {target_micro_min:g} 分钟，消防站 {target_fire_min:g} 分钟",
        "hydrant_title": "消火栓状态（保护半径 {hydrant_radius_m:g} m）",
        "hydrant_cluster": "聚合：总数/不可用数 ✕",
        "hazard_title": "隐患",
        "station_title": "站点",
        "other": "其他",
        "ungraded": "未评级",
        "fire_station": "消防救援站",
        "micro_station": "微型消防站",
        "ok": "完好",
        "broken": "损坏",
        "missing": "缺失",
        "open": "未整改",
        "overdue": "逾期未整改",
        "deficient_legend": "消防缺水区域（{hydrant_radius_m:g} m 内无可用消火栓或水源）",
        "site_legend": "建议新增微型消防站",
        "proposed_hydrant_legend": "建议新增消火栓",
        "road_legend": "道路",
        "as_of": "数据截至",
        "units": "时间：分钟（含出动时间）；距离：米",
        "layers": "图层",
        "grade_n": "{grade}级 {label}",
        "level_n": "第{level}级",
    },
    "en": {
        "grids": "Grid risk index (level {level} grids)",
        "grid_outline": "Grid outlines",
        "grid_names": "Grid names",
        "buildings": "Building risk grade",
        "isochrones": "{minutes}-minute reach ({kind})",
        "areas": "Areas of responsibility ({kind})",
        "fire_stations": "Fire rescue stations",
        "micro_stations": "Micro fire stations",
        "hydrants": "Outdoor hydrants",
        "water_sources": "Fire water sources",
        "deficient": "Water-deficient zones",
        "hazards": "Hazards (open / overdue)",
        "sites": "Proposed new micro-stations",
        "proposed_hydrants": "Proposed new hydrants",
        "roads": "Roads",
        "legend": "Legend",
        "grade": "Risk grade",
        "index": "Grid risk index (0–100, higher is worse)",
        "iso_title": "Travel time (minutes, turnout included)",
        "targets": "targets: micro-station {target_micro_min:g} min, fire station {target_fire_min:g} min",
        "hydrant_title": "Hydrant status (protection radius {hydrant_radius_m:g} m)",
        "hydrant_cluster": "cluster: count / not working ✕",
        "hazard_title": "Hazards",
        "station_title": "Stations",
        "other": "Other",
        "ungraded": "ungraded",
        "fire_station": "fire rescue station",
        "micro_station": "micro fire station",
        "ok": "working",
        "broken": "broken",
        "missing": "missing",
        "open": "open",
        "overdue": "overdue",
        "deficient_legend": (
            "Water-deficient zone (no working hydrant or source within {hydrant_radius_m:g} m)"
        ),
        "site_legend": "Proposed new micro-station",
        "proposed_hydrant_legend": "Proposed new hydrant",
        "road_legend": "Road",
        "as_of": "Data as of",
        "units": "times in minutes (turnout included), distances in metres",
        "layers": "Layers",
        "grade_n": "grade {grade} {label}",
        "level_n": "level {level}",
    },
}

# The one definition of the grade and factor labels is the column registry.
GRADE_NAMES: dict[str, dict[int, str]] = columns.GRADE_LABELS
FACTOR_LABELS: dict[str, dict[str, str]] = columns.FACTOR_LABELS

# Values shown translated in popups (canonical choice → label).
VALUE_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "residential": "住宅",
        "office": "办公",
        "shop": "商铺",
        "three_in_one": "三合一场所",
        "warehouse": "仓库",
        "public": "公共建筑",
        "industrial": "工业",
        "underground": "地下空间",
        "other": "其他",
        "good": "良好",
        "fair": "一般",
        "aged": "老化",
        "fire_station": "消防救援站",
        "micro_station": "微型消防站",
        "engine": "消防车",
        "ebike": "电动车",
        "foot": "步行",
        "ok": "完好",
        "broken": "损坏",
        "missing": "缺失",
        "fire_pool": "消防水池",
        "natural": "天然水源",
        "tank": "消防水箱",
        "general": "一般隐患",
        "major": "重大隐患",
        "open": "未整改",
        "overdue": "逾期未整改",
        "True": "是",
        "False": "否",
    },
    "en": {"True": "yes", "False": "no", "three_in_one": "three-in-one"},
}


def text(key: str, language: str, **fmt) -> str:
    """A visible word of the map in ``language`` (``zh`` or ``en``), formatted with ``fmt``
    (a placeholder without a value stays as written)."""
    template = TEXT[language][key]
    return columns.fill(template, fmt) if fmt else template


def field_label(column: str, language: str, *, layer: str | None = None) -> str:
    """Popup, tooltip and header label of a column, from :mod:`firegrid.spatial.columns`
    (``c_<factor>`` reads "contribution: <factor>"); ``layer`` tells apart a name that means
    different things in two layers."""
    return columns.label(column, language, layer=layer)


def grade_label(grade, language: str) -> str:
    """The one label of a risk grade 1–4: the column registry's (``重大`` / ``major``), the
    same words as the tables' ``risk_grade_label``; ``ungraded`` when missing."""
    try:
        g = int(grade)
    except (TypeError, ValueError):
        return TEXT[language]["ungraded"]
    return GRADE_NAMES[language].get(g, TEXT[language]["ungraded"])


__all__ = [
    "FACTORS",
    "GRADE_COLOURS",
    "INDEX_BINS",
    "INDEX_COLOURS",
    "TEXT",
    "field_label",
    "grade_colour",
    "grade_label",
    "index_colour",
    "text",
]
