"""The headers Chinese ledgers use for the data model's columns, and the words that name a layer.

``firegrid init`` (:mod:`firegrid.drafting`) reads them to recognise each file of a new
district and to draft its ``[layers.NAME.columns]`` tables; a header is matched with its unit
in brackets dropped (``出动时间(秒)`` and ``出动时间（秒）`` are ``出动时间``) and case ignored,
and the canonical name itself always matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from firegrid.spatial.io.layers import SCHEMAS

# Canonical column → headers seen in ledgers, per layer (the same word means different columns
# in different layers: 人数 is a station's staff, 类型 a station's or a water source's kind).
HEADER_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "grids": {
        "grid_id": ("网格编号", "网格代码", "编号", "代码", "id"),
        "name": ("网格名称", "名称", "名字"),
        "level": ("层级", "级别", "网格层级", "网格级别"),
        "parent_id": ("上级编号", "上级网格", "上级网格编号", "父级编号", "所属网格"),
    },
    "buildings": {
        "building_id": ("建筑编号", "楼栋编号", "建筑物编号", "编号", "id"),
        "use": ("用途", "建筑用途", "使用性质", "使用功能"),
        "floors": ("层数", "楼层数", "地上层数", "楼层"),
        "height_m": ("高度", "建筑高度", "楼高"),
        "year_built": ("建成年代", "建成年份", "建造年代", "建造年份", "竣工年份", "年代"),
        "wood_stairs": ("木楼梯", "木质楼梯"),
        "wiring_condition": ("电气线路", "线路状况", "电线状况", "电气线路状况"),
        "ebike_indoor": ("电动车入户", "电动车室内充电", "电动自行车入户"),
        "group_rental": ("群租", "是否群租"),
        "elderly_alone": ("独居老人", "独居老人数"),
        "residents": ("居住人数", "常住人口", "人口", "住户人数"),
    },
    "hydrants": {
        "hydrant_id": ("消火栓编号", "编号", "id"),
        "status": ("状态", "完好状态", "使用状态"),
        "flow_lps": ("流量", "出水量", "出水流量"),
    },
    "water_sources": {
        "source_id": ("水源编号", "编号", "id"),
        "kind": ("水源类型", "类型", "类别"),
        "capacity_m3": ("容量", "容积", "储水量", "蓄水量"),
        "truck_access": ("消防车可达", "车辆可达", "可停靠消防车"),
    },
    "stations": {
        "station_id": ("站点编号", "消防站编号", "编号", "id"),
        "name": ("名称", "站点名称", "站名"),
        "kind": ("类型", "站点类型", "性质"),
        "vehicle": ("车辆", "车型", "车辆类型", "出动车辆"),
        "turnout_s": ("出动时间", "出动时长"),
        "staff": ("人数", "队员人数", "人员", "值守人数"),
    },
    "hazards": {
        "hazard_id": ("隐患编号", "编号", "id"),
        "building_id": ("建筑编号", "楼栋编号"),
        "category": ("类别", "隐患类别", "隐患等级", "等级"),
        "found_on": ("发现日期", "检查日期", "发现时间"),
        "deadline": ("整改期限", "整改时限", "限期"),
        "rectified_on": ("整改日期", "整改完成日期", "销号日期"),
    },
    "incidents": {
        "incident_id": ("警情编号", "火警编号", "事故编号", "编号", "id"),
        "date": ("日期", "发生日期", "起火日期", "报警日期", "时间"),
        "kind": ("类型", "起火原因", "警情类型"),
    },
}

# Words in a file's name that point at a layer (消火栓.csv, hydrants.gpkg).
LAYER_WORDS: dict[str, tuple[str, ...]] = {
    "grids": ("grid", "网格", "社区", "街道"),
    "buildings": ("building", "建筑", "楼栋", "房屋"),
    "hydrants": ("hydrant", "消火栓", "消防栓"),
    "water_sources": ("water_source", "水源", "水池"),
    "stations": ("station", "消防站", "微站", "微型消防站"),
    "hazards": ("hazard", "隐患"),
    "incidents": ("incident", "火警", "火灾", "警情"),
}

_UNIT = re.compile(r"[(（\[【].*?[)）\]】]")


def normalised(header: object) -> str:
    """A header as matched: unit in brackets dropped, spaces trimmed, lower case."""
    return _UNIT.sub("", str(header)).strip().lower()


def canonical_headers(layer: str, headers: Iterable[object]) -> dict[str, str]:
    """User header → canonical column of ``layer`` for the headers this module knows.

    A canonical column takes the first header that names it (in the ledger's order); a header
    already canonical maps onto itself and is left out of the result (nothing to rename).
    """
    aliases = HEADER_ALIASES[layer]
    known = {c.name for c in SCHEMAS[layer].columns}
    out: dict[str, str] = {}
    taken: set[str] = {str(h) for h in headers if str(h) in known}
    for header in headers:
        key = normalised(header)
        if str(header) in known:
            continue
        for column, words in aliases.items():
            if column not in taken and (key == column or key in words):
                out[str(header)] = column
                taken.add(column)
                break
    return out


def layers_named_by(filename: str) -> list[str]:
    """The layers whose words appear in a file name (lower case compared)."""
    name = filename.lower()
    return [layer for layer, words in LAYER_WORDS.items() if any(w in name for w in words)]


__all__ = ["HEADER_ALIASES", "LAYER_WORDS", "canonical_headers", "layers_named_by", "normalised"]
