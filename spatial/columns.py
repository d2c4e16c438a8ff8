"""The one registry of output columns: name, unit, labels, meaning, grid roll-up, privacy.

Every column FireGrid computes has one :class:`Column` here, keyed by its layer and name
(``n_buildings`` of a grid cell and of a reach band are different entries). The README glossary
(:func:`glossary_markdown`), the map's legends, popups and tooltips, the workbook's headers and
``columns`` sheet, the grid roll-up (:attr:`Column.rollup` of the ``grids`` entries) and the
privacy allow-list (:attr:`Column.personal`) all read it. The risk grade labels
(:data:`GRADE_LABELS`) and the risk factor labels (:data:`FACTOR_LABELS`) are named here once.

The canonical *input* columns (the data model) are defined by
:mod:`firegrid.spatial.io.layers`; only their display labels live here
(:data:`INPUT_LABELS`). This module imports nothing but the standard library.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

LANGUAGES = ("zh", "en")

# The four risk grades of differentiated supervision, worst first (values of ``risk_grade``).
GRADE_LABELS: dict[str, dict[int, str]] = {
    "zh": {1: "重大", 2: "较大", 3: "一般", 4: "低"},
    "en": {1: "major", 2: "high", 3: "moderate", 4: "low"},
}

# The factors of the transparent risk index (``c_<factor>``, ``s_<factor>``), in index order.
FACTOR_LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "age": "建筑年代",
        "old_residential": "老旧小区",
        "wood_stairs": "木质楼梯",
        "wiring": "电气线路",
        "high_rise": "高层建筑",
        "use": "使用性质",
        "ebike_indoor": "电动车入户",
        "group_rental": "群租",
        "elderly_alone": "独居老人",
        "residents": "居住人数",
        "hazards": "未整改隐患",
        "shortfall_3min": "3分钟到场缺口",
        "shortfall_5min": "5分钟到场缺口",
        "water": "消防缺水",
    },
    "en": {
        "age": "building age",
        "old_residential": "old residential block",
        "wood_stairs": "wooden stairs",
        "wiring": "wiring",
        "high_rise": "high-rise",
        "use": "use / occupancy",
        "ebike_indoor": "e-bikes indoors",
        "group_rental": "group rental",
        "elderly_alone": "elderly living alone",
        "residents": "residents",
        "hazards": "unrectified hazards",
        "shortfall_3min": "3-min response shortfall",
        "shortfall_5min": "5-min response shortfall",
        "water": "fire water deficiency",
    },
}

# Display labels of the canonical input columns (the data model of spatial/io/layers.py).
INPUT_LABELS: dict[str, tuple[str, str]] = {
    "grid_id": ("网格编号", "grid"),
    "name": ("名称", "name"),
    "level": ("网格级别", "grid level"),
    "parent_id": ("上级网格", "parent grid"),
    "building_id": ("建筑编号", "building"),
    "use": ("使用性质", "use"),
    "floors": ("层数", "floors"),
    "height_m": ("高度 (m)", "height (m)"),
    "year_built": ("建成年份", "year built"),
    "wood_stairs": ("木质楼梯", "wooden stairs"),
    "wiring_condition": ("电气线路", "wiring"),
    "ebike_indoor": ("电动车入户", "e-bikes indoors"),
    "group_rental": ("群租", "group rental"),
    "elderly_alone": ("独居老人 (人)", "elderly living alone"),
    "residents": ("居住人数 (人)", "residents"),
    "hydrant_id": ("消火栓编号", "hydrant"),
    "status": ("状态", "status"),
    "flow_lps": ("流量 (L/s)", "flow (L/s)"),
    "source_id": ("水源编号", "water source"),
    "kind": ("类型", "kind"),
    "capacity_m3": ("容量 (m³)", "capacity (m³)"),
    "truck_access": ("消防车可达", "engine access"),
    "station_id": ("站点编号", "station"),
    "vehicle": ("出动方式", "vehicle"),
    "turnout_s": ("出动时间 (s)", "turnout (s)"),
    "staff": ("人员 (人)", "staff"),
    "hazard_id": ("隐患编号", "hazard"),
    "category": ("隐患类别", "category"),
    "found_on": ("发现日期", "found on"),
    "deadline": ("整改期限", "deadline"),
    "rectified_on": ("整改日期", "rectified on"),
    "incident_id": ("警情编号", "incident"),
    "date": ("日期", "date"),
}

# Ways a grid column aggregates its ``source`` building column over a cell's buildings, in
# words (``{grade}`` comes from the column's name, ``{high_risk_grade}`` from the run).
ROLLUPS = {
    "count": "number of buildings",
    "sum": "sum of `{source}`",
    "mean": "mean of `{source}`",
    "median": "median of `{source}`",
    "max": "maximum of `{source}`",
    "count_true": "number of buildings with `{source}`",
    "share_true": "share of buildings with `{source}`",
    "count_grade": "number of buildings with `{source}` = {grade}",
    "count_graded": "number of buildings with `{source}` ≤ {high_risk_grade}",
    "share_graded": "share of buildings with `{source}` ≤ {high_risk_grade}",
    "share_true_of_old_residential": "share of the buildings with `old_residential` that have "
    "`{source}`",
}

# Placeholders a column name may hold, and the values each stands for.
FAMILY_VALUES: dict[str, tuple[str, ...]] = {
    "factor": tuple(FACTOR_LABELS["en"]),
    # Building attributes that are imputed when missing (risk.features).
    "attr": (
        "use",
        "year_built",
        "height_m",
        "floors",
        "wood_stairs",
        "ebike_indoor",
        "group_rental",
        "wiring_condition",
        "residents",
        "elderly_alone",
    ),
    "grade": tuple(str(g) for g in GRADE_LABELS["en"]),
    # Grid levels 1 (the top of the hierarchy) … 9: as many as the user has
    # (firegrid.spatial.io.grids.MAX_LEVELS).
    "level": tuple(str(n) for n in range(1, 10)),
}

# Module paths, spelled once.
ACCESS = "firegrid.spatial.access.travel_times"
ISOCHRONES = "firegrid.spatial.access.isochrones"
WATER = "firegrid.spatial.water.coverage"
WATER_BY_GRID = "firegrid.spatial.water.by_grid"
WATER_SOURCES = "firegrid.spatial.water.sources"
WATER_ZONES = "firegrid.spatial.water.zones"
WATER_SPACING = "firegrid.spatial.water.spacing"
GRIDS = "firegrid.spatial.io.grids"
ROUTING = "firegrid.spatial.network.routing"
STATIONS = "firegrid.spatial.siting.stations"
HYDRANTS = "firegrid.spatial.siting.hydrants"
FEATURES = "firegrid.risk.features"
INDEX = "firegrid.risk.index"
GRADING = "firegrid.risk.grading"
SCORE = "firegrid.risk.score"
HAZARDS = "firegrid.risk.hazards"
ROLLUP = "firegrid.risk.rollup"
MAP_LAYERS = "firegrid.maps.layers"


@dataclass(frozen=True)
class Column:
    """One output column.

    Attributes
    ----------
    name : str
        The column's name; may hold one placeholder — ``{factor}`` (a risk factor),
        ``{attr}`` (a building attribute), ``{grade}`` (1–4) or ``{level}`` (grid level 1–3)
        — standing for a family such as ``c_{factor}``.
    layer : str
        The layer (or table) holding it: ``buildings``, ``grids``, ``hazards`` …
    unit : str
        ``s``, ``m``, ``km²``, ``count``, ``share`` (0–1), ``bool``, ``0–100`` …; empty for
        text and identifiers.
    zh, en : str
        Short labels (popups, tooltips, spreadsheet headers). ``{factor}``/``{attr}``/
        ``{grade}``/``{level}`` are filled with the matched part's own label.
    description : str
        One sentence; may hold the run's parameters as ``{hydrant_radius_m:g}``-style
        placeholders (:func:`describe`).
    module : str
        The dotted module that computes it (grepping the name there finds the line).
    group : str
        Heading of the README glossary section that lists it.
    rollup : str or None
        For grid columns rolled up from buildings: how ``source`` aggregates over a cell's
        buildings (a key of :data:`ROLLUPS`); None otherwise.
    source : str or None
        The building column a grid column rolls up.
    personal : bool
        Holds personal data (then it never reaches leaders' outputs unless the config names
        it in ``[map] allow_fields``).
    """

    name: str
    layer: str
    unit: str
    zh: str
    en: str
    description: str
    module: str
    group: str
    rollup: str | None = None
    source: str | None = None
    personal: bool = False

    @property
    def pattern(self) -> re.Pattern[str]:
        """The names this entry stands for, as a regular expression."""
        parts = re.split(r"\{(\w+)\}", self.name)
        regex = "".join(
            f"(?P<{p}>{'|'.join(map(re.escape, FAMILY_VALUES[p]))})" if k % 2 else re.escape(p)
            for k, p in enumerate(parts)
        )
        return re.compile(f"^{regex}$")

    def members(self) -> tuple[str, ...]:
        """The concrete names of this entry (``c_age``, ``c_wiring`` … for ``c_{factor}``)."""
        fields = re.findall(r"\{(\w+)\}", self.name)
        if not fields:
            return (self.name,)
        (field,) = fields
        return tuple(self.name.replace("{" + field + "}", v) for v in FAMILY_VALUES[field])

    @property
    def is_family(self) -> bool:
        """True when the name holds a placeholder (``c_{factor}``)."""
        return "{" in self.name

    def label(self, language: str = "zh", name: str | None = None) -> str:
        """The label in ``language``; for a family, that of the member ``name``."""
        template = self.zh if language == "zh" else self.en
        if not self.is_family or name is None:
            return template
        match = self.pattern.match(name)
        if match is None:
            return template
        return template.format(**_field_labels(match.groupdict(), language))


def _field_labels(fields: Mapping[str, str], language: str) -> dict[str, str]:
    out = {}
    for key, value in fields.items():
        if key == "factor":
            out[key] = FACTOR_LABELS[language].get(value, value)
        elif key == "attr":
            pair = INPUT_LABELS.get(value)
            out[key] = (pair[0] if language == "zh" else pair[1]) if pair else value
        else:
            out[key] = value
    if "grade" in fields:
        out["grade_label"] = GRADE_LABELS[language].get(int(fields["grade"]), "")
    return out


def _entries(layer: str, group: str, module: str, rows: Iterable[tuple]) -> list[Column]:
    """Columns from ``(name, unit, zh, en, description[, options])`` rows."""
    out = []
    for row in rows:
        name, unit, zh, en, description, *rest = row
        extra = rest[0] if rest else {}
        out.append(
            Column(
                name=name,
                layer=layer,
                unit=unit,
                zh=zh,
                en=en,
                description=description,
                module=extra.get("module", module),
                group=group,
                rollup=extra.get("rollup"),
                source=extra.get("source"),
                personal=extra.get("personal", False),
            )
        )
    return out


G_ACCESS = "Buildings — access"
G_WATER = "Buildings — water"
G_RISK = "Buildings — risk"
G_SITING = "Buildings — siting"
G_HAZARDS = "Hazard ledger"
G_GRIDS = "Grids"
G_OTHER = "Other layers"
GROUPS = (G_ACCESS, G_WATER, G_RISK, G_SITING, G_HAZARDS, G_GRIDS, G_OTHER)

_BUILDINGS_ACCESS = _entries(
    "buildings",
    G_ACCESS,
    ACCESS,
    [
        (
            "t_micro_s",
            "s",
            "微站到场时间 (s)",
            "micro-station arrival (s)",
            "Travel time from the fastest micro-station: turnout, ride along the streets and "
            "the access legs on foot.",
        ),
        (
            "t_fire_s",
            "s",
            "消防站到场时间 (s)",
            "fire-station arrival (s)",
            "Travel time from the fastest fire rescue station: turnout, drive along the streets "
            "and the access legs on foot.",
        ),
        (
            "micro_station_id",
            "",
            "最近微站",
            "nearest micro-station",
            "The micro-station giving `t_micro_s`.",
        ),
        (
            "fire_station_id",
            "",
            "最近消防站",
            "nearest fire station",
            "The fire station giving `t_fire_s`.",
        ),
        (
            "n_micro_3min",
            "count",
            "3分钟内可达微站数",
            "micro-stations within 3 min",
            "How many micro-stations reach the building within {target_micro_s:g} s.",
        ),
        (
            "n_fire_5min",
            "count",
            "5分钟内可达消防站数",
            "fire stations within 5 min",
            "How many fire stations reach the building within {target_fire_s:g} s.",
        ),
        (
            "covered_3min",
            "bool",
            "3分钟到场",
            "reached in 3 min",
            "`t_micro_s` ≤ {target_micro_s:g} s.",
        ),
        (
            "covered_5min",
            "bool",
            "5分钟到场",
            "reached in 5 min",
            "`t_fire_s` ≤ {target_fire_s:g} s.",
        ),
        (
            "shortfall_3min_s",
            "s",
            "超出3分钟 (s)",
            "over 3 min by (s)",
            "How far `t_micro_s` is beyond {target_micro_s:g} s (0 when met; empty when "
            "unreachable).",
        ),
        (
            "shortfall_5min_s",
            "s",
            "超出5分钟 (s)",
            "over 5 min by (s)",
            "How far `t_fire_s` is beyond {target_fire_s:g} s (0 when met; empty when "
            "unreachable).",
        ),
        (
            "access_m",
            "m",
            "距道路 (m)",
            "to road (m)",
            "Distance from the building to its snap point on the nearest street.",
        ),
        (
            "access_issue",
            "",
            "可达性问题",
            "access issue",
            "Empty when fine, else why there is no time: disconnected, too far from a road.",
        ),
    ],
)

_BUILDINGS_WATER = _entries(
    "buildings",
    G_WATER,
    WATER,
    [
        (
            "d_hydrant_m",
            "m",
            "最近可用消火栓直线距离 (m)",
            "nearest working hydrant, straight (m)",
            "Straight line from the building outline to the nearest working hydrant.",
        ),
        (
            "d_hydrant_net_m",
            "m",
            "最近可用消火栓沿路距离 (m)",
            "nearest working hydrant, by street (m)",
            "Hose metres along streets (both access legs) to the nearest working hydrant, from "
            "the best of the ground-level streets the building fronts within "
            "{street_facing_m:g} m.",
        ),
        (
            "hydrant_id_nearest",
            "",
            "最近消火栓",
            "nearest hydrant",
            "The hydrant giving `d_hydrant_net_m`.",
        ),
        (
            "d_water_source_m",
            "m",
            "最近消防水源距离 (m)",
            "nearest water source (m)",
            "Along streets to the nearest usable water-source intake.",
        ),
        (
            "water_source_id_nearest",
            "",
            "最近消防水源",
            "nearest water source",
            "The water source giving `d_water_source_m`.",
        ),
        (
            "water_covered",
            "bool",
            "消防供水覆盖",
            "fire water covered",
            "Within {hydrant_radius_m:g} m along streets of a working hydrant, or "
            "{source_radius_m:g} m of a usable water-source intake.",
        ),
        (
            "water_deficient",
            "bool",
            "消防缺水",
            "water deficient",
            "Not `water_covered`: a building of a water-deficient zone (消防缺水区域).",
        ),
        (
            "water_deficiency",
            "0–1",
            "缺水程度",
            "water deficiency",
            "0 covered, 0.5 just beyond the protection radius, rising to 1 at twice the radius "
            "or when nothing is reachable.",
        ),
        ("water_issue", "", "供水问题", "water issue", "Why the building is not covered."),
    ],
)

_BUILDINGS_RISK = _entries(
    "buildings",
    G_RISK,
    INDEX,
    [
        (
            "risk_index",
            "0–100",
            "风险指数 (0–100)",
            "risk index (0–100)",
            "The transparent risk index: the sum of the factor contributions `c_<factor>`.",
        ),
        (
            "c_{factor}",
            "index points",
            "贡献·{factor}",
            "contribution: {factor}",
            "Contribution of one factor to `risk_index` (they sum to it); empty when the factor "
            "is not assessed.",
        ),
        (
            "s_{factor}",
            "0–1",
            "评分·{factor}",
            "score: {factor}",
            "Score of one factor, never decreasing as its attribute worsens.",
        ),
        (
            "top_factors",
            "",
            "主要风险因素",
            "main risk factors",
            "The three largest contributions.",
            {"module": SCORE},
        ),
        (
            "risk_grade",
            "grade",
            "风险等级",
            "risk grade",
            "1 重大 (major, red), 2 较大 (high, orange), 3 一般 (moderate, yellow), 4 低 (low, "
            "blue), from `risk_index`.",
            {"module": GRADING},
        ),
        (
            "risk_grade_label",
            "",
            "风险等级",
            "risk grade",
            "The grade's name (重大 / 较大 / 一般 / 低).",
            {"module": GRADING},
        ),
        (
            "p_fire",
            "per year",
            "火灾概率（模型）",
            "fire probability (model)",
            "Model probability of a fire in a year (only when incidents exist).",
            {"module": SCORE},
        ),
        (
            "hazards_open",
            "count",
            "未整改隐患 (项)",
            "open hazards",
            "Unrectified hazards on `as_of`, overdue ones included.",
            {"module": FEATURES},
        ),
        (
            "hazards_overdue",
            "count",
            "逾期隐患 (项)",
            "overdue hazards",
            "Unrectified hazards past their deadline on `as_of`.",
            {"module": FEATURES},
        ),
        (
            "age_years",
            "years",
            "建筑年龄 (年)",
            "age (years)",
            "Years from `year_built` to `as_of`.",
            {"module": FEATURES},
        ),
        (
            "old_residential",
            "0/1",
            "老旧小区",
            "old residential block",
            "Residential and built in or before the old-block cut-off year (老旧小区).",
            {"module": FEATURES},
        ),
        (
            "high_rise",
            "0/1",
            "高层建筑",
            "high-rise",
            "High-rise per GB 50016 (over 27 m residential, over 24 m other).",
            {"module": FEATURES},
        ),
        (
            "imputed_{attr}",
            "bool",
            "估算·{attr}",
            "imputed: {attr}",
            "The attribute was missing and imputed from similar buildings.",
            {"module": FEATURES},
        ),
        (
            "grid_id_l{level}",
            "",
            "第{level}级网格",
            "level {level} grid",
            "The building's grid cell at that level: the finest cell holding its representative "
            "point, coarser levels along `parent_id` (every per-grid figure uses it).",
            {"module": GRIDS},
        ),
    ],
)

_BUILDINGS_SITING = _entries(
    "buildings",
    G_SITING,
    STATIONS,
    [
        (
            "siting_coverable",
            "bool",
            "新站可覆盖",
            "coverable by a new site",
            "Some candidate site would reach the building within the siting target.",
        ),
        (
            "siting_covered_before",
            "bool",
            "选址前3分钟覆盖",
            "covered before siting",
            "Reached within the siting target by an existing micro-station.",
        ),
        (
            "siting_covered_after",
            "bool",
            "选址后3分钟覆盖",
            "covered after siting",
            "Reached within the siting target once the proposed sites are built.",
        ),
        (
            "siting_site_id",
            "",
            "覆盖它的新站",
            "new site reaching it",
            "The proposed site that first brings the building within the target.",
        ),
        (
            "siting_t_new_s",
            "s",
            "新站到场时间 (s)",
            "arrival from new sites (s)",
            "Travel time from the nearest proposed site, turnout included.",
        ),
    ],
)

_ACCESS_MISSING = _entries(
    "access_missing",
    G_OTHER,
    ACCESS,
    [
        (
            "shortfall_s",
            "s",
            "超出目标 (s)",
            "over target by (s)",
            "Layer `access_missing` (buildings missing a response target): how far beyond the "
            "target the building is reached.",
        ),
    ],
)

_HAZARDS = _entries(
    "hazards",
    G_HAZARDS,
    HAZARDS,
    [
        ("status", "", "整改状态", "state", "future / open / overdue / rectified on `as_of`."),
        (
            "building_id_matched",
            "",
            "所属建筑",
            "building matched",
            "The building the hazard counts against (by `building_id`, else the nearest).",
        ),
        ("match", "", "匹配方式", "matched by", "How it was matched: id / nearest / none."),
        (
            "deadline_used",
            "date",
            "采用的整改期限",
            "deadline used",
            "`deadline`, or the default rectification period after `found_on` when missing.",
        ),
        (
            "imputed_deadline",
            "bool",
            "期限为估算",
            "deadline imputed",
            "The deadline was missing and the default period was used.",
        ),
        ("days_open", "days", "未整改天数", "days open", "Days from `found_on` to `as_of`."),
        (
            "days_overdue",
            "days",
            "逾期天数",
            "days overdue",
            "Days past the deadline on `as_of` (0 when not overdue).",
        ),
        ("rectified_late", "bool", "逾期整改", "rectified late", "Rectified after the deadline."),
        (
            "escalation_level",
            "level",
            "督办层级",
            "escalation level",
            "0–4: how far up the hazard is escalated by its days overdue.",
        ),
        (
            "escalation_to",
            "",
            "督办对象",
            "escalated to",
            "Who it is escalated to (grid worker, grid head, subdistrict, district).",
        ),
        (
            "escalation_label",
            "",
            "督办层级名称",
            "escalation",
            "The level's name (网格员 / 网格长 / 街道 / 区).",
        ),
        (
            "hazard_weight",
            "weight",
            "隐患权重",
            "hazard weight",
            "Weight in the building's hazard load (major and overdue weigh more).",
        ),
        (
            "hazard_state",
            "",
            "整改状态",
            "state",
            "Map popups: `status` of an unrectified hazard (open / overdue).",
            {"module": MAP_LAYERS},
        ),
    ],
)

_HAZARD_ESCALATION = _entries(
    "hazard_escalation",
    G_HAZARDS,
    HAZARDS,
    [
        (
            "escalation_level",
            "level",
            "督办层级",
            "escalation level",
            "Table `hazard_escalation`: one row per escalation level.",
        ),
        ("escalation_to", "", "督办对象", "escalated to", "Who the level escalates to."),
        ("escalation_label", "", "督办层级名称", "escalation", "The level's name."),
        (
            "general",
            "count",
            "一般隐患",
            "general hazards",
            "Unrectified general hazards at the level.",
        ),
        ("major", "count", "重大隐患", "major hazards", "Unrectified major hazards at the level."),
        ("total", "count", "合计", "total", "All unrectified hazards at the level."),
    ],
)

_GRIDS = _entries(
    "grids",
    G_GRIDS,
    ROLLUP,
    [
        (
            "n_buildings",
            "count",
            "建筑数",
            "buildings",
            "Buildings in the cell.",
            {"rollup": "count"},
        ),
        (
            "residents",
            "count",
            "居住人数 (人)",
            "residents",
            "Residents (sum of known).",
            {"rollup": "sum", "source": "residents"},
        ),
        (
            "risk_index_mean",
            "0–100",
            "平均风险指数 (0–100)",
            "mean risk index (0–100)",
            "Mean building risk index.",
            {"rollup": "mean", "source": "risk_index"},
        ),
        (
            "risk_index_median",
            "0–100",
            "风险指数中位数 (0–100)",
            "median risk index (0–100)",
            "Median building risk index.",
            {"rollup": "median", "source": "risk_index"},
        ),
        (
            "risk_index_max",
            "0–100",
            "最高风险指数 (0–100)",
            "max risk index (0–100)",
            "Highest building risk index.",
            {"rollup": "max", "source": "risk_index"},
        ),
        (
            "n_high_risk",
            "count",
            "高风险建筑数",
            "high-risk buildings",
            "Buildings of grade {high_risk_grade} or worse.",
            {"rollup": "count_graded", "source": "risk_grade"},
        ),
        (
            "share_high_risk",
            "share",
            "高风险建筑占比",
            "share of high-risk buildings",
            "`n_high_risk` / `n_buildings`.",
            {"rollup": "share_graded", "source": "risk_grade"},
        ),
        (
            "n_grade_{grade}",
            "count",
            "{grade}级（{grade_label}）建筑数",
            "grade {grade} ({grade_label}) buildings",
            "Buildings of that risk grade.",
            {"rollup": "count_grade", "source": "risk_grade"},
        ),
        (
            "n_old_residential",
            "count",
            "老旧小区建筑数",
            "old residential buildings",
            "Buildings with `old_residential`: residential, built in or before "
            "`[risk.features] old_built_up_to` (missing years imputed).",
            {"rollup": "count_true", "source": "old_residential"},
        ),
        (
            "hazards_open",
            "count",
            "未整改隐患 (项)",
            "open hazards",
            "Unrectified hazards of the cell's buildings.",
            {"rollup": "sum", "source": "hazards_open"},
        ),
        (
            "hazards_overdue",
            "count",
            "逾期隐患 (项)",
            "overdue hazards",
            "Overdue hazards of the cell's buildings.",
            {"rollup": "sum", "source": "hazards_overdue"},
        ),
        (
            "share_covered_3min",
            "share",
            "3分钟覆盖率",
            "share reached in 3 min",
            "Share of buildings with `covered_3min`.",
            {"rollup": "share_true", "source": "covered_3min"},
        ),
        (
            "share_covered_5min",
            "share",
            "5分钟覆盖率",
            "share reached in 5 min",
            "Share of buildings with `covered_5min`.",
            {"rollup": "share_true", "source": "covered_5min"},
        ),
        (
            "share_old_res_3min",
            "share",
            "老旧住宅3分钟到场占比",
            "share of old residential in 3 min",
            "Share of the cell's `n_old_residential` old residential buildings reached by a "
            "micro-station in time.",
            {"rollup": "share_true_of_old_residential", "source": "covered_3min"},
        ),
        (
            "share_old_res_5min_fire",
            "share",
            "老旧住宅5分钟到场占比",
            "share of old residential in 5 min",
            "Share of the cell's `n_old_residential` old residential buildings reached by a "
            "fire station in time.",
            {"rollup": "share_true_of_old_residential", "source": "covered_5min"},
        ),
        (
            "n_water_deficient",
            "count",
            "缺水建筑数",
            "water-deficient buildings",
            "Buildings with `water_deficient`.",
            {"rollup": "count_true", "source": "water_deficient"},
        ),
        (
            "share_water_deficient",
            "share",
            "缺水建筑占比",
            "share water-deficient",
            "Share of buildings with `water_deficient`.",
            {"rollup": "share_true", "source": "water_deficient"},
        ),
        (
            "expected_fires",
            "per year",
            "预期火灾数 (起/年)",
            "expected fires (per year)",
            "Sum of `p_fire`: fires expected per year.",
            {"rollup": "sum", "source": "p_fire"},
        ),
        (
            "c_{factor}_mean",
            "index points",
            "平均贡献·{factor}",
            "mean contribution: {factor}",
            "Mean contribution of the factor; they sum to `risk_index_mean`.",
            {"rollup": "mean", "source": "c_{factor}"},
        ),
        (
            "risk_grade",
            "grade",
            "风险等级",
            "risk grade",
            "The cell's grade 1–4 from its `risk_index_mean`, among cells of its level.",
            {"module": GRADING},
        ),
        (
            "risk_grade_label",
            "",
            "风险等级",
            "risk grade",
            "The grade's name.",
            {"module": GRADING},
        ),
        (
            "n_covered_3min",
            "count",
            "3分钟到场建筑数",
            "buildings reached in 3 min",
            "Buildings with `covered_3min`.",
            {"module": ACCESS, "rollup": "count_true", "source": "covered_3min"},
        ),
        (
            "share_residents_3min",
            "share",
            "3分钟到场居民占比",
            "share of residents in 3 min",
            "Share of the cell's residents living in buildings reached in time.",
            {"module": ACCESS},
        ),
        (
            "n_covered_5min",
            "count",
            "5分钟到场建筑数",
            "buildings reached in 5 min",
            "Buildings with `covered_5min`.",
            {"module": ACCESS, "rollup": "count_true", "source": "covered_5min"},
        ),
        (
            "share_residents_5min_fire",
            "share",
            "5分钟到场居民占比",
            "share of residents in 5 min",
            "Share of the cell's residents reached by a fire station in time.",
            {"module": ACCESS},
        ),
        (
            "n_unreachable",
            "count",
            "无法到达建筑数",
            "unreachable buildings",
            "Buildings no station reaches at all.",
            {"module": ACCESS},
        ),
        (
            "max_shortfall_3min_s",
            "s",
            "最大3分钟缺口 (s)",
            "largest 3-min shortfall (s)",
            "Largest `shortfall_3min_s` of the cell.",
            {"module": ACCESS, "rollup": "max", "source": "shortfall_3min_s"},
        ),
        (
            "max_shortfall_5min_s",
            "s",
            "最大5分钟缺口 (s)",
            "largest 5-min shortfall (s)",
            "Largest `shortfall_5min_s` of the cell.",
            {"module": ACCESS, "rollup": "max", "source": "shortfall_5min_s"},
        ),
        (
            "n_water_covered",
            "count",
            "供水覆盖建筑数",
            "buildings with fire water",
            "Buildings with `water_covered`.",
            {"module": WATER_BY_GRID, "rollup": "count_true", "source": "water_covered"},
        ),
        (
            "water_deficiency_score",
            "0–1",
            "缺水程度",
            "water deficiency score",
            "Mean `water_deficiency` of the cell's buildings.",
            {"module": WATER_BY_GRID, "rollup": "mean", "source": "water_deficiency"},
        ),
        (
            "n_hydrants",
            "count",
            "消火栓数",
            "hydrants",
            "Hydrants in the cell.",
            {"module": WATER_BY_GRID},
        ),
        (
            "n_hydrants_ok",
            "count",
            "完好消火栓数",
            "working hydrants",
            "Working hydrants in the cell.",
            {"module": WATER_BY_GRID},
        ),
        (
            "n_hydrants_broken",
            "count",
            "损坏消火栓数",
            "broken hydrants",
            "Broken hydrants in the cell.",
            {"module": WATER_BY_GRID},
        ),
        (
            "n_hydrants_missing",
            "count",
            "缺失消火栓数",
            "missing hydrants",
            "Hydrants on record but missing.",
            {"module": WATER_BY_GRID},
        ),
        (
            "n_water_sources",
            "count",
            "消防水源数",
            "water sources",
            "Water sources in the cell.",
            {"module": WATER_BY_GRID},
        ),
        (
            "n_water_sources_usable",
            "count",
            "可用消防水源数",
            "usable water sources",
            "Water sources usable for fire fighting.",
            {"module": WATER_BY_GRID},
        ),
        (
            "capacity_m3",
            "m³",
            "水源容量 (m³)",
            "water capacity (m³)",
            "Capacity of the cell's water sources.",
            {"module": WATER_BY_GRID},
        ),
        (
            "capacity_usable_m3",
            "m³",
            "可用水源容量 (m³)",
            "usable capacity (m³)",
            "Capacity of the usable water sources.",
            {"module": WATER_BY_GRID},
        ),
        (
            "deficient_area_m2",
            "m²",
            "缺水区域面积 (m²)",
            "water-deficient area (m²)",
            "Area of water-deficient zones inside the cell.",
            {"module": WATER_BY_GRID},
        ),
        (
            "deficient_area_share",
            "share",
            "缺水区域面积占比",
            "share of area water-deficient",
            "`deficient_area_m2` over the cell's area.",
            {"module": WATER_BY_GRID},
        ),
    ],
)

_OTHER = [
    *_entries(
        "hydrants",
        G_OTHER,
        WATER,
        [
            ("working", "bool", "可用", "working", "Hydrants: `status` is ok."),
            (
                "street_m",
                "m",
                "距道路 (m)",
                "to street (m)",
                "Hydrants: distance to the street the hose leaves along.",
            ),
        ],
    ),
    *_entries(
        "water_sources",
        G_OTHER,
        WATER_SOURCES,
        [
            (
                "source_counts",
                "bool",
                "计入供水",
                "counts as fire water",
                "Water sources: usable (capacity ≥ {min_source_capacity_m3:g} m³, engine access).",
            ),
            (
                "source_issue",
                "",
                "水源问题",
                "source issue",
                "Water sources: why a source does not count.",
            ),
        ],
    ),
    *_entries(
        "roads",
        G_OTHER,
        ROUTING,
        [
            ("highway", "", "道路等级", "road class", "Roads: OSM `highway` class."),
            ("name", "", "路名", "street name", "Roads: OSM street name."),
            ("oneway", "bool", "单行", "one-way", "Roads: one-way street."),
            ("length_m", "m", "长度 (m)", "length (m)", "Roads: segment length."),
            ("way_id", "", "OSM路段编号", "OSM way", "Roads: the OSM way it comes from."),
        ],
    ),
    *_entries(
        "isochrones",
        G_OTHER,
        ISOCHRONES,
        [
            (
                "minutes",
                "min",
                "时间 (分钟)",
                "minutes",
                "Reach bands: minutes of the band, turnout included.",
            ),
            ("t_s", "s", "时间 (s)", "time (s)", "Reach bands: the band's time in seconds."),
            (
                "length_m",
                "m",
                "可达道路长度 (m)",
                "street length (m)",
                "Reach bands: street metres reached in time.",
            ),
            (
                "n_buildings",
                "count",
                "范围内建筑数",
                "buildings inside",
                "Reach bands: buildings reached in time.",
            ),
            (
                "n_stations",
                "count",
                "站点数",
                "stations",
                "Reach bands (union mode): stations of the kind merged into the band.",
            ),
        ],
    ),
    *_entries(
        "areas",
        G_OTHER,
        ISOCHRONES,
        [
            (
                "n_buildings",
                "count",
                "责任区建筑数",
                "buildings in area",
                "Areas of responsibility: buildings the station reaches first.",
            ),
            (
                "street_km",
                "km",
                "责任区道路 (km)",
                "streets (km)",
                "Areas of responsibility: street kilometres the station reaches first.",
            ),
            ("area_km2", "km²", "面积 (km²)", "area (km²)", "Areas of responsibility: area."),
        ],
    ),
    *_entries(
        "water_deficient",
        G_OTHER,
        WATER_ZONES,
        [
            ("zone_id", "", "缺水区域编号", "zone", "Water-deficient zones: zone id."),
            (
                "n_buildings",
                "count",
                "缺水建筑数",
                "buildings",
                "Water-deficient zones: deficient buildings in the zone.",
            ),
            (
                "residents",
                "count",
                "居住人数 (人)",
                "residents",
                "Water-deficient zones: residents of those buildings.",
            ),
            ("area_m2", "m²", "面积 (m²)", "area (m²)", "Water-deficient zones: area."),
            ("grid_ids", "", "所在网格", "grids", "Water-deficient zones: the cells it touches."),
        ],
    ),
    *_entries(
        "hydrant_gaps",
        G_OTHER,
        WATER_SPACING,
        [
            ("gap_id", "", "间距缺口编号", "gap", "Hydrant gaps: gap id."),
            (
                "gap_m",
                "m",
                "消火栓间距 (m)",
                "hydrant spacing (m)",
                "Hydrant gaps: effective spacing along the street (limit {hydrant_spacing_m:g} m).",
            ),
            (
                "max_dist_m",
                "m",
                "最远距离 (m)",
                "farthest (m)",
                "Hydrant gaps: farthest point of the stretch from a working hydrant.",
            ),
            ("length_m", "m", "长度 (m)", "length (m)", "Hydrant gaps: length of the stretch."),
            (
                "no_hydrant",
                "bool",
                "无消火栓",
                "no hydrant",
                "Hydrant gaps: no working hydrant along the stretch at all.",
            ),
            ("hydrants", "", "两端消火栓", "hydrants", "Hydrant gaps: the hydrants at its ends."),
            ("streets", "", "所在道路", "streets", "Hydrant gaps: street names."),
        ],
    ),
    *_entries(
        "proposed_hydrants",
        G_OTHER,
        HYDRANTS,
        [
            ("proposal_id", "", "建议编号", "proposal", "Proposed hydrants: proposal id."),
            ("rank", "", "优先顺序", "priority", "Proposed hydrants: order of proposal."),
            (
                "n_buildings",
                "count",
                "覆盖建筑数",
                "buildings covered",
                "Proposed hydrants: deficient buildings within {hydrant_radius_m:g} m along "
                "streets.",
            ),
            (
                "n_new_covered",
                "count",
                "新增供水覆盖建筑数",
                "buildings newly with fire water",
                "Proposed hydrants: deficient buildings it covers first.",
            ),
            ("kind", "", "类型", "kind", "Proposed hydrants: where the candidate stands."),
            ("street", "", "所在道路", "street", "Proposed hydrants: street name."),
            ("highway", "", "道路等级", "road class", "Proposed hydrants: OSM road class."),
        ],
    ),
    *_entries(
        "sites",
        G_OTHER,
        STATIONS,
        [
            ("site_id", "", "站点编号", "site", "Proposed micro-stations: site id."),
            ("rank", "", "优先顺序", "priority", "Proposed micro-stations: order of opening."),
            ("candidate_id", "", "候选点编号", "candidate", "Proposed micro-stations: candidate."),
            (
                "gain_buildings",
                "count",
                "新增3分钟覆盖建筑数",
                "buildings newly within 3 min",
                "Proposed micro-stations: buildings it brings within the target.",
            ),
            (
                "gain_weight",
                "weight",
                "新增覆盖权重",
                "weight newly covered",
                "Proposed micro-stations: weight (`[siting] weight`) it brings within target.",
            ),
            (
                "gain_residents",
                "count",
                "新增3分钟覆盖人数",
                "residents newly within 3 min",
                "Proposed micro-stations: residents it brings within the target.",
            ),
            (
                "covered_after",
                "count",
                "累计覆盖建筑数",
                "buildings covered (cumulative)",
                "Proposed micro-stations: buildings within target once this and earlier sites "
                "open.",
            ),
            (
                "covered_weight_after",
                "weight",
                "累计覆盖权重",
                "weight covered (cumulative)",
                "Proposed micro-stations: weight within target, cumulative.",
            ),
            (
                "covered_share_after",
                "share",
                "累计覆盖比例",
                "share covered (cumulative)",
                "Proposed micro-stations: share within target, cumulative.",
            ),
            ("road_name", "", "所在道路", "street", "Proposed micro-stations: street name."),
            ("highway", "", "道路等级", "road class", "Proposed micro-stations: OSM road class."),
            ("kind", "", "类型", "kind", "Proposed micro-stations: candidate kind."),
        ],
    ),
    *_entries(
        "siting_gain_curve",
        G_OTHER,
        STATIONS,
        [
            (
                "n_new",
                "count",
                "新增站点数",
                "new sites",
                "Table `siting_gain_curve`: number of new sites.",
            ),
            (
                "covered_buildings",
                "count",
                "覆盖建筑数",
                "buildings covered",
                "Gain curve: buildings within target.",
            ),
            (
                "covered_weight",
                "weight",
                "覆盖权重",
                "weight covered",
                "Gain curve: weight within target.",
            ),
            (
                "covered_share",
                "share",
                "覆盖比例",
                "share covered",
                "Gain curve: share within target.",
            ),
            (
                "gain_weight",
                "weight",
                "新增覆盖权重",
                "weight gained",
                "Gain curve: weight the last site adds.",
            ),
            (
                "greedy_weight",
                "weight",
                "贪心解权重",
                "greedy weight",
                "Gain curve: weight the greedy solution covers.",
            ),
            ("bound", "weight", "上界", "bound", "Gain curve: upper bound of the optimum."),
            ("gap", "share", "最优性差距", "gap", "Gain curve: relative gap to the bound."),
            ("method", "", "求解方法", "method", "Gain curve: exact or greedy."),
            (
                "optimal",
                "bool",
                "已证最优",
                "proven optimal",
                "Gain curve: the solution is proven optimal.",
            ),
        ],
    ),
]


def _registry(columns: Iterable[Column]) -> dict[tuple[str, str], Column]:
    out: dict[tuple[str, str], Column] = {}
    for col in columns:
        key = (col.layer, col.name)
        if key in out:
            raise ValueError(f"column {key} is registered twice")
        out[key] = col
    return out


# (layer, name) → Column.
COLUMNS: dict[tuple[str, str], Column] = _registry(
    [
        *_BUILDINGS_ACCESS,
        *_BUILDINGS_WATER,
        *_BUILDINGS_RISK,
        *_BUILDINGS_SITING,
        *_ACCESS_MISSING,
        *_HAZARDS,
        *_HAZARD_ESCALATION,
        *_GRIDS,
        *_OTHER,
    ]
)
# Layers that hold a copy of the buildings' columns.
_BUILDING_LIKE = {"buildings", "access_missing"}

# --------------------------------------------------------------------------------------------
# Changes between two runs (``firegrid diff``): each compared figure's value in the earlier and
# the later run (``<name>_before``, ``<name>_after``, labelled from the figure's own entry) and
# its change; then the per-cell counts of changed buildings and hazards. A registry of their
# own (:data:`CHANGE_COLUMNS`, :func:`change_column`): they are outputs of the comparison, not
# columns of a run's layers, and are explained in docs/diff.md and the comparison's workbook
# rather than in the README glossary of a run's outputs.

G_CHANGES = "Changes between two runs"
DIFF = "firegrid.diff_tables"
_RUNS = {
    "before": ("（前）", " (before)", "in the earlier run"),
    "after": ("（后）", " (after)", "in the later run"),
}


def _change_entries(layer: str, base: Iterable[Column], changes: Mapping[str, tuple]) -> list:
    """``<name>_before``, ``<name>_after`` and the change row (``changes[name]``) of each
    column of ``base`` that ``changes`` names, as entries of ``layer``."""
    rows = []
    for col in base:
        if col.name not in changes:
            continue
        for run, (zh, en, when) in _RUNS.items():
            rows.append(
                (f"{col.name}_{run}", col.unit, col.zh + zh, col.en + en, f"`{col.name}` {when}.")
            )
        rows.append(changes[col.name])
    return _entries(layer, G_CHANGES, DIFF, rows)


_GAINED = "+1: {what} only in the later run (gained); −1: only in the earlier run (lost); 0: same."
_CHANGES_BUILDINGS = [
    *_entries(
        "changes_buildings",
        G_CHANGES,
        DIFF,
        [
            (
                "presence",
                "",
                "建筑变动",
                "in which runs",
                "both: the building is in both runs; added: only in the later; removed: only in "
                "the earlier.",
            )
        ],
    ),
    *_change_entries(
        "changes_buildings",
        [*_BUILDINGS_ACCESS, *_BUILDINGS_WATER, *_BUILDINGS_RISK],
        {
            "covered_3min": (
                "change_3min",
                "±1",
                "3分钟到场变化",
                "3-min reach change",
                _GAINED.format(what="reached within {target_micro_s:g} s"),
            ),
            "covered_5min": (
                "change_5min",
                "±1",
                "5分钟到场变化",
                "5-min reach change",
                _GAINED.format(what="reached within {target_fire_s:g} s"),
            ),
            "t_micro_s": (
                "d_t_micro_s",
                "s",
                "微站到场时间变化 (s)",
                "micro-station arrival change (s)",
                "`t_micro_s` of the later run minus the earlier; negative: reached sooner.",
            ),
            "t_fire_s": (
                "d_t_fire_s",
                "s",
                "消防站到场时间变化 (s)",
                "fire-station arrival change (s)",
                "`t_fire_s` of the later run minus the earlier; negative: reached sooner.",
            ),
            "water_covered": (
                "change_water",
                "±1",
                "消防供水覆盖变化",
                "fire water change",
                _GAINED.format(what="covered by fire water"),
            ),
            "risk_index": (
                "d_risk_index",
                "index points",
                "风险指数变化",
                "risk index change",
                "`risk_index` of the later run minus the earlier.",
            ),
            "risk_grade": (
                "d_risk_grade",
                "grade",
                "风险等级变化",
                "risk grade change",
                "`risk_grade` of the later run minus the earlier; negative: a higher-risk grade "
                "(1 is the highest).",
            ),
            "hazards_open": (
                "d_hazards_open",
                "count",
                "未整改隐患变化 (项)",
                "open hazards change",
                "`hazards_open` of the later run minus the earlier.",
            ),
            "hazards_overdue": (
                "d_hazards_overdue",
                "count",
                "逾期隐患变化 (项)",
                "overdue hazards change",
                "`hazards_overdue` of the later run minus the earlier.",
            ),
        },
    ),
]


def _grid_change(name: str, unit: str, zh: str, en: str) -> tuple:
    return (f"d_{name}", unit, zh, en, f"`{name}` of the later run minus the earlier.")


def _grid_count(name: str, zh: str, en: str, what: str) -> tuple:
    return (name, "count", zh, en, f"Buildings of the cell that {what}.")


_CHANGES_GRIDS = [
    *_change_entries(
        "changes_grids",
        _GRIDS,
        {
            "n_buildings": _grid_change("n_buildings", "count", "建筑数变化", "buildings change"),
            "share_covered_3min": _grid_change(
                "share_covered_3min", "share", "3分钟覆盖率变化", "3-min share change"
            ),
            "share_covered_5min": _grid_change(
                "share_covered_5min", "share", "5分钟覆盖率变化", "5-min share change"
            ),
            "share_water_deficient": _grid_change(
                "share_water_deficient", "share", "缺水建筑比例变化", "water-deficient share change"
            ),
            "risk_index_mean": _grid_change(
                "risk_index_mean", "index points", "平均风险指数变化", "mean risk index change"
            ),
            "n_grade_{grade}": _grid_change(
                "n_grade_{grade}",
                "count",
                "{grade}级（{grade_label}）建筑数变化",
                "grade {grade} ({grade_label}) buildings change",
            ),
            "hazards_open": _grid_change(
                "hazards_open", "count", "未整改隐患变化 (项)", "open hazards change"
            ),
            "hazards_overdue": _grid_change(
                "hazards_overdue", "count", "逾期隐患变化 (项)", "overdue hazards change"
            ),
        },
    ),
    *_entries(
        "changes_grids",
        G_CHANGES,
        DIFF,
        [
            _grid_count("n_added", "新增建筑数", "buildings added", "are only in the later run"),
            _grid_count("n_removed", "删除建筑数", "buildings removed", "are only in the earlier"),
            _grid_count(
                "n_gained_3min", "新增3分钟到场建筑数", "gained 3-min reach", "gained 3-min reach"
            ),
            _grid_count("n_lost_3min", "失去3分钟到场建筑数", "lost 3-min reach", "lost it"),
            _grid_count(
                "n_gained_5min", "新增5分钟到场建筑数", "gained 5-min reach", "gained 5-min reach"
            ),
            _grid_count("n_lost_5min", "失去5分钟到场建筑数", "lost 5-min reach", "lost it"),
            _grid_count(
                "n_gained_water", "新增供水覆盖建筑数", "gained fire water", "gained fire water"
            ),
            _grid_count("n_lost_water", "失去供水覆盖建筑数", "lost fire water", "lost it"),
            _grid_count(
                "n_riskier",
                "风险等级升高建筑数",
                "to a higher-risk grade",
                "moved to a higher-risk grade",
            ),
            _grid_count(
                "n_safer",
                "风险等级降低建筑数",
                "to a lower-risk grade",
                "moved to a lower-risk grade",
            ),
            (
                "n_hazards_new",
                "count",
                "新增隐患 (项)",
                "new hazards",
                "Hazards of the cell's buildings only in the later run's ledger and not rectified.",
            ),
            (
                "n_hazards_rectified",
                "count",
                "新整改隐患 (项)",
                "newly rectified hazards",
                "Hazards of the cell's buildings open in the earlier run and rectified in the "
                "later.",
            ),
            (
                "n_hazards_newly_overdue",
                "count",
                "新逾期隐患 (项)",
                "newly overdue hazards",
                "Hazards of the cell's buildings overdue on the later run's date and not on the "
                "earlier's.",
            ),
        ],
    ),
]

_CHANGES_HAZARDS = _entries(
    "changes_hazards",
    G_CHANGES,
    DIFF,
    [
        ("status_before", "", "状态（前）", "status (before)", "`status` in the earlier run."),
        ("status_after", "", "状态（后）", "status (after)", "`status` in the later run."),
        (
            "hazard_change",
            "",
            "隐患变化",
            "hazard change",
            "new (only in the later ledger, unrectified), new_rectified, rectified, "
            "newly_overdue, reopened, removed (only in the earlier ledger) or unchanged; each "
            "run judges its hazards on its own date.",
        ),
    ],
)
_CHANGES_STATIONS = _entries(
    "changes_stations",
    G_CHANGES,
    DIFF,
    [
        (
            "presence",
            "",
            "站点变动",
            "in which runs",
            "both: the station is in both runs; added: only in the later; removed: only in the "
            "earlier.",
        ),
        (
            "moved_m",
            "m",
            "位置变化 (m)",
            "moved (m)",
            "How far a station in both runs moved between them.",
        ),
    ],
)
# (layer, name) → Column of the comparison's tables.
CHANGE_COLUMNS: dict[tuple[str, str], Column] = _registry(
    [*_CHANGES_BUILDINGS, *_CHANGES_GRIDS, *_CHANGES_HAZARDS, *_CHANGES_STATIONS]
)


def change_column(name: str, layer: str) -> Column | None:
    """The column ``name`` of the comparison's table ``layer`` (``changes_buildings``,
    ``changes_grids``, ``changes_hazards`` or ``changes_stations``; families like
    ``n_grade_{grade}_before`` included); None when it is not a change column."""
    for (where, _), col in CHANGE_COLUMNS.items():
        if where == layer and (col.name == name or (col.is_family and col.pattern.match(name))):
            return col
    return None


def column(name: str, layer: str | None = None) -> Column | None:
    """The registered column ``name`` of ``layer`` (families like ``c_{factor}`` included).

    Without ``layer`` the first registered entry of that name wins (buildings first).
    ``access_missing`` holds building rows and finds the buildings' columns too.
    """
    layers = [layer] if layer is not None else None
    if layer in _BUILDING_LIKE:
        layers = [layer, "buildings"]
    for col in COLUMNS.values():
        if layers is not None and col.layer not in layers:
            continue
        if col.name == name or (col.is_family and col.pattern.match(name)):
            return col
    return None


def label(name: str, language: str = "zh", *, layer: str | None = None) -> str:
    """The display label of a column in ``language``; the name itself when unknown.

    With ``layer``, that layer's output column wins over an input column of the same name
    (a hazard's computed ``status``); without, the input column's label does (a hydrant's
    ``status``).
    """
    pair = INPUT_LABELS.get(name)
    col = column(name, layer) if layer is not None or pair is None else None
    if col is not None:
        return col.label(language, name)
    if pair is not None:
        return pair[0] if language == "zh" else pair[1]
    return name


class _Formatter(string.Formatter):
    """``str.format`` that leaves placeholders without a value as they are."""

    def get_value(self, key, args, kwargs):
        if isinstance(key, str) and key not in kwargs:
            return _Unfilled(key)
        return super().get_value(key, args, kwargs)


class _Unfilled:
    """A placeholder without a value: formats as itself."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __format__(self, spec: str) -> str:
        return "{" + self.key + (":" + spec if spec else "") + "}"


def fill(template: str, values: Mapping[str, object] | None = None) -> str:
    """``template`` with ``{name}``/``{name:g}`` placeholders filled from ``values``.

    Placeholders without a value stay as written, so a text never fails to render.
    """
    return _Formatter().vformat(template, (), dict(values or {}))


def describe(
    name: str, values: Mapping[str, object] | None = None, *, layer: str | None = None
) -> str:
    """The description of a column with the run's parameters (``values``) filled in."""
    col = column(name, layer)
    return fill(col.description, values) if col is not None else ""


def rollup_text(
    col: Column, name: str | None = None, values: Mapping[str, object] | None = None
) -> str:
    """How a grid column rolls up from the buildings, in words (empty when it does not);
    ``name`` picks a family member (``n_grade_1``), ``values`` the run's parameters."""
    if col.rollup is None:
        return ""
    match = col.pattern.match(name) if name is not None else None
    fields = match.groupdict() if match else {}
    # The family's source of a member (c_age of c_age_mean), else its pattern (c_<factor>).
    source = re.sub(r"\{(\w+)\}", r"<\1>", fill(col.source or "", fields))
    return fill(ROLLUPS[col.rollup], {**(values or {}), **fields, "source": source})


def public_names() -> frozenset[str]:
    """Names of the registered output columns that are public (families expanded)."""
    return frozenset(n for c in COLUMNS.values() if not c.personal for n in c.members())


def is_public(name: str, layer: str | None = None) -> bool:
    """True when ``name`` is a registered output column that is not personal."""
    col = column(name, layer)
    return col is not None and not col.personal


# --------------------------------------------------------------------------------------------
# The README glossary

GLOSSARY_START = "<!-- glossary: generated from firegrid.spatial.columns; do not edit -->"
GLOSSARY_END = "<!-- glossary end -->"


def _md_name(name: str) -> str:
    return "`" + re.sub(r"\{(\w+)\}", r"<\1>", name) + "`"


def _md_label(text: str) -> str:
    """A family's label with its placeholders in italics (``贡献·*factor*``)."""
    return re.sub(r"\{(\w+)\}", r"*\1*", text)


def _glossary_rows(cols: list[Column], values: Mapping[str, object] | None) -> Iterator[str]:
    grids = any(c.layer == "grids" for c in cols)
    layered = len({c.layer for c in cols}) > 1 and not grids
    head = ["column", *(["layer"] if layered else []), "标签", "label", "meaning", "unit"]
    if grids:
        head.append("roll-up")
    yield "| " + " | ".join(head) + " |"
    yield "|" + "---|" * len(head)
    for c in cols:
        cells = [_md_name(c.name), *([f"`{c.layer}`"] if layered else [])]
        cells += [_md_label(c.zh), _md_label(c.en), fill(c.description, values), c.unit or "–"]
        if grids:
            how = _md_label(rollup_text(c, values=values))
            cells.append(how or f"`{c.module.rsplit('.', 1)[-1]}`")
        yield "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def glossary_markdown(values: Mapping[str, object] | None = None) -> str:
    """The README's glossary of output columns as Markdown, one table per group.

    ``values`` fills the parameter placeholders of the descriptions (the defaults of the
    parameter classes in the README).
    """
    lines = [GLOSSARY_START, ""]
    for group in GROUPS:
        cols = [c for c in COLUMNS.values() if c.group == group]
        modules = sorted({c.module for c in cols})
        lines.append(f"**{group}** ({', '.join(f'`{m}`' for m in modules)})")
        lines.append("")
        lines.extend(_glossary_rows(cols, values))
        lines.append("")
    lines.append(GLOSSARY_END)
    return "\n".join(lines)


def replace_glossary(readme: str, values: Mapping[str, object] | None = None) -> str:
    """``readme`` with the text between the glossary markers regenerated."""
    start, end = readme.index(GLOSSARY_START), readme.index(GLOSSARY_END) + len(GLOSSARY_END)
    return readme[:start] + glossary_markdown(values) + readme[end:]


__all__ = [
    "CHANGE_COLUMNS",
    "COLUMNS",
    "FACTOR_LABELS",
    "GRADE_LABELS",
    "GROUPS",
    "INPUT_LABELS",
    "ROLLUPS",
    "Column",
    "change_column",
    "column",
    "describe",
    "fill",
    "glossary_markdown",
    "is_public",
    "label",
    "public_names",
    "replace_glossary",
    "rollup_text",
]
