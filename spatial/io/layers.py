"""The district data model: the seven layers, their canonical columns, dtypes and allowed values."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

POINT = ("Point",)
POLYGON = ("Polygon", "MultiPolygon")
POINT_OR_POLYGON = POINT + POLYGON + ("MultiPoint",)


@dataclass(frozen=True)
class Column:
    """One canonical column.

    ``kind`` is one of ``str``, ``int``, ``float``, ``bool``, ``date`` or ``category``
    (a string restricted to ``choices``). ``lo``/``hi`` bound numeric values (inclusive);
    values below ``warn_lo`` are accepted but counted in a warning (rare yet real, such as a
    Ming-era temple's year of construction).
    """

    name: str
    kind: str
    required: bool = False
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    warn_lo: float | None = None
    doc: str = ""


@dataclass(frozen=True)
class LayerSchema:
    """A layer: its allowed geometry types, id column and canonical columns.

    ``repair_geometry``: invalid geometries are repaired (and collapsed ones dropped) with a
    warning; when False they are errors, because the shape itself is the data (grid cells
    decide which buildings they hold). ``date_order``: pairs of date columns (earlier,
    later) where the later may not precede the earlier.
    """

    name: str
    geometry: tuple[str, ...]
    id_column: str
    columns: tuple[Column, ...] = field(default_factory=tuple)
    required_layer: bool = False
    repair_geometry: bool = True
    date_order: tuple[tuple[str, str], ...] = ()

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


BUILDING_USES = (
    "residential",  # 住宅
    "office",  # 办公
    "shop",  # 沿街商铺
    "three_in_one",  # 三合一场所: living, storage and business under one roof
    "warehouse",  # 仓库
    "public",  # 学校、医院、养老院等公共建筑
    "industrial",
    "underground",  # 地下空间
    "other",
)

SCHEMAS: dict[str, LayerSchema] = {
    "grids": LayerSchema(
        "grids",
        POLYGON,
        "grid_id",
        (
            Column("grid_id", "str", required=True),
            Column("name", "str"),
            Column(
                "level",
                "int",
                required=True,
                lo=1,
                hi=9,
                doc="1 the top level (e.g. subdistrict), each finer level one more (2 "
                "community/village, 3 resident-group cell …), up to 9",
            ),
            Column("parent_id", "str", doc="grid_id of the enclosing cell; empty for level 1"),
        ),
        required_layer=True,
        repair_geometry=False,
    ),
    "buildings": LayerSchema(
        "buildings",
        POINT_OR_POLYGON,
        "building_id",
        (
            Column("building_id", "str", required=True),
            Column("use", "category", choices=BUILDING_USES),
            # OSM's building:levels counts a mezzanine or attic as half a storey (2.5).
            Column("floors", "float", lo=-5, hi=200),
            Column("height_m", "float", lo=0, hi=700, doc="metres"),
            Column("year_built", "int", lo=1000, hi=2100, warn_lo=1800),
            Column("wood_stairs", "bool"),
            Column("wiring_condition", "category", choices=("good", "fair", "aged")),
            Column("ebike_indoor", "bool", doc="e-bikes parked or charged indoors / in stairwells"),
            Column("group_rental", "bool", doc="群租"),
            Column("elderly_alone", "int", lo=0, hi=10_000, doc="elderly residents living alone"),
            Column("residents", "int", lo=0, hi=100_000),
        ),
        required_layer=True,
    ),
    "hydrants": LayerSchema(
        "hydrants",
        POINT,
        "hydrant_id",
        (
            Column("hydrant_id", "str", required=True),
            Column("status", "category", required=True, choices=("ok", "broken", "missing")),
            Column("flow_lps", "float", lo=0, hi=1000, doc="litres per second"),
        ),
    ),
    "water_sources": LayerSchema(
        "water_sources",
        POINT_OR_POLYGON,
        "source_id",
        (
            Column("source_id", "str", required=True),
            Column("kind", "category", required=True, choices=("fire_pool", "natural", "tank")),
            Column("capacity_m3", "float", lo=0, doc="cubic metres"),
            Column("truck_access", "bool", doc="a fire engine can reach the intake"),
        ),
    ),
    "stations": LayerSchema(
        "stations",
        POINT,
        "station_id",
        (
            Column("station_id", "str", required=True),
            Column("name", "str"),
            Column("kind", "category", required=True, choices=("fire_station", "micro_station")),
            Column("vehicle", "category", choices=("engine", "ebike", "foot")),
            Column("turnout_s", "float", lo=0, hi=3600, doc="seconds from alarm to departure"),
            Column("staff", "int", lo=0, hi=1000),
        ),
        required_layer=True,
    ),
    "hazards": LayerSchema(
        "hazards",
        POINT,
        "hazard_id",
        (
            Column("hazard_id", "str", required=True),
            Column("building_id", "str"),
            Column("category", "category", required=True, choices=("general", "major")),
            Column("found_on", "date", required=True),
            Column("deadline", "date"),
            Column("rectified_on", "date"),
        ),
        date_order=(("found_on", "deadline"), ("found_on", "rectified_on")),
    ),
    "incidents": LayerSchema(
        "incidents",
        POINT,
        "incident_id",
        (
            Column("incident_id", "str", required=True),
            Column("date", "date", required=True),
            Column("kind", "str"),
        ),
    ),
}

LAYER_NAMES = tuple(SCHEMAS)

# Values users write in Chinese ledgers, mapped onto canonical choices. A config may add more.
VALUE_SYNONYMS: dict[str, dict[str, str]] = {
    "status": {
        "完好": "ok",
        "正常": "ok",
        "可用": "ok",
        "损坏": "broken",
        "故障": "broken",
        "缺失": "missing",
        "丢失": "missing",
        "ok": "ok",
        "broken": "broken",
        "missing": "missing",
    },
    "kind": {
        "消防站": "fire_station",
        "消防救援站": "fire_station",
        "微型消防站": "micro_station",
        "微站": "micro_station",
        "消防水池": "fire_pool",
        "天然水源": "natural",
        "水箱": "tank",
        "消防水箱": "tank",
    },
    "vehicle": {"消防车": "engine", "电动车": "ebike", "电瓶车": "ebike", "步行": "foot"},
    "category": {"一般": "general", "一般隐患": "general", "重大": "major", "重大隐患": "major"},
    "wiring_condition": {"良好": "good", "一般": "fair", "老化": "aged"},
    "use": {
        "住宅": "residential",
        "办公": "office",
        "商铺": "shop",
        "沿街商铺": "shop",
        "三合一": "three_in_one",
        "三合一场所": "three_in_one",
        "仓库": "warehouse",
        "公共建筑": "public",
        "工业": "industrial",
        "地下空间": "underground",
        "其他": "other",
    },
}

# Columns the access step adds to buildings (see the README's glossary).
ACCESS_COLUMNS = (
    "t_fire_s",
    "t_micro_s",
    "fire_station_id",
    "micro_station_id",
    "n_fire_5min",
    "n_micro_3min",
    "covered_3min",
    "covered_5min",
    "shortfall_3min_s",
    "shortfall_5min_s",
    "access_m",
    "access_issue",
)


TRUE_WORDS = {"1", "true", "yes", "y", "t", "是", "有", "√", "1.0"}
FALSE_WORDS = {"0", "false", "no", "n", "f", "否", "无", "×", "0.0", ""}

# Building attributes of the data model, in display order (everything but the id).
BUILDING_ATTRIBUTES = tuple(c.name for c in SCHEMAS["buildings"].columns if c.name != "building_id")


def clean_text(series):
    """Stripped strings (pandas ``string`` dtype) with missing and empty cells as <NA>."""
    out = series.astype("string").str.strip()
    return out.where(out != "", pd.NA)
