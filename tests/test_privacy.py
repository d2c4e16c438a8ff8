"""Privacy of leaders' outputs: every personal-header rule and value pattern, the allow-list of
the per-grid table and the summaries, and a whole run on a demo copy with personal columns and
values planted in every layer (read back from the files, no browser needed)."""

from __future__ import annotations

import csv
import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest

from firegrid.maps.privacy import (
    ALLOWED_BY_DEFAULT,
    PERSONAL_NAME_PARTS,
    PERSONAL_TOKENS,
    PERSONAL_VALUE_PATTERNS,
    header_key,
    personal_by_content,
    personal_by_name,
    redact_text,
    shared_columns,
)
from firegrid.reports import grid_summary_table, summary_json, summary_markdown
from tests._demo import requires_demo, transformed_demo
from tests._mapdata import map_texts

# One realistic header per rule, matched by that rule alone (checked below), so that dropping
# any rule fails a test.
HEADER_RULES: dict[str, str] = {
    "姓名": "姓名",
    "户主": "户主",
    "房东": "房东",
    "房主": "房主",
    "业主": "业主",
    "产权人": "产权人",
    "法定代表人": "法定代表人",
    "法人代表": "法人代表",
    "使用人": "使用人",
    "承租人": "承租人",
    "出租人": "出租人",
    "租户": "租户",
    "住户": "住户",
    "居民": "独居居民",
    "监护人": "监护人",
    "联系人": "紧急联系人",
    "联络人": "紧急联络人",
    "负责人": "消防安全负责人",
    "责任人": "安全责任人",
    "网格员": "网格员",
    "网格长": "网格长",
    "楼长": "楼长",
    "联系方式": "联系方式",
    "电话": "固定电话",
    "手机": "手机",
    "号码": "号码",
    "身份证": "身份证",
    "证件": "证件号",
    "住址": "家庭住址",
    "微信": "微信",
    "邮箱": "邮箱",
    "phone": "Phone",
    "mobile": "mobile_no",
    "cell": "Cell",
    "contact": "Emergency Contact",
    "owner": "Owner Name",
    "landlord": "Landlord",
    "tenant": "Tenant",
    "occupant": "occupant",
    "guardian": "Guardian",
    "id_card": "ID Card",
    "idcard": "IDCard",
    "id_no": "ID-No",
    "id_number": "id number",
    "passport": "Passport",
    "email": "Email",
    "e_mail": "E-mail",
    "wechat": "WeChat",
    "person": "person_in_charge",
    "surname": "Surname",
    "first_name": "First Name",
    "last_name": "last.name",
    "full_name": "full name",
    "resident_name": "resident_name",
    "home_address": "Home Address",
}
TOKEN_RULES: dict[str, str] = {
    "tel": "Tel",
    "fax": "Fax no",
    "sfz": "SFZ",
    "lxr": "lxr",
    "dh": "DH",
    "xm": "xm",
}
# Examples per value pattern (each matched by its pattern alone).
VALUE_RULES: dict[str, list[str]] = {
    "mobile": [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "+86-13812345678",
        "008613812345678",
        "(+86)138 1234 5678",
        "（86）139 1234 5678",
        "房东 158.1234.5678 晚上打",
    ],
    "landline": [
        "021-12345678",
        "(021) 1234 5678",
        "（0571）8888888",
        "0755 8888 8888",
        "电话021-63211234转8",
    ],
    "id18": ["110101199003074578", "11010119900307457X", "身份证 44030620010101123x"],
    "id15": ["110101900307457", "证 440306010101123"],
    "email": ["a.b@example.cn", "wang_x+fire@qq.com"],
}
NOT_PERSONAL_VALUES = [
    "3号楼",
    "B00012",
    "2026-06-30",
    "YH20240001",
    "F2016-001",
    "121.457236",
    "31.204842",
    "1991",
    "20240101 120000",
    "12:30-13:45",
    "138",
    "DEMO-01-03",
]


def _rules_matching(header: str) -> set[str]:
    name = header_key(header)
    parts = {p for p in PERSONAL_NAME_PARTS if p in name}
    tokens = set(re.split(r"[^a-z]+", name)) & PERSONAL_TOKENS
    return parts | tokens


@pytest.mark.parametrize("rule, header", [*HEADER_RULES.items(), *TOKEN_RULES.items()])
def test_each_personal_header_rule(rule, header):
    assert personal_by_name(header)
    assert _rules_matching(header) == {rule}  # this rule alone catches it


def test_every_header_rule_has_its_own_test():
    assert set(PERSONAL_NAME_PARTS) == set(HEADER_RULES)
    assert set(PERSONAL_TOKENS) == set(TOKEN_RULES)


@pytest.mark.parametrize(
    "header",
    ["name", "building_id", "hotel_name", "floors", "station_id", "地址", "备注", "描述", "层数"],
)
def test_ordinary_headers_are_not_personal(header):
    assert not personal_by_name(header)


def test_no_canonical_or_computed_column_looks_personal():
    assert [c for c in ALLOWED_BY_DEFAULT if personal_by_name(c)] == []


@pytest.mark.parametrize(
    "rule, value", [(rule, v) for rule, values in VALUE_RULES.items() for v in values]
)
def test_each_personal_value_pattern(rule, value):
    matched = {name for name, p in PERSONAL_VALUE_PATTERNS.items() if p.search(value)}
    assert matched == {rule}
    assert personal_by_content(pd.Series(["ok", value]))
    assert redact_text(f"note: {value}.").count("***") == 1
    assert not personal_by_content(pd.Series([redact_text(value)]))


def test_every_value_pattern_has_its_own_test():
    assert set(PERSONAL_VALUE_PATTERNS) == set(VALUE_RULES)


@pytest.mark.parametrize("value", NOT_PERSONAL_VALUES)
def test_ordinary_values_are_not_personal(value):
    assert not personal_by_content(pd.Series([value]))
    assert redact_text(value) == value


def test_numbers_read_as_numbers_are_checked_too():
    assert personal_by_content(pd.Series([13912345678, 1]))
    assert personal_by_content(pd.Series([13912345678.0, np.nan]))  # a phone column with gaps
    assert not personal_by_content(pd.Series([1.5, 2.5, 1991.0]))


# --------------------------------------------------------------------------------------------
# The allow-list of leaders' tables and summaries


def _grids():
    return pd.DataFrame(
        {
            "grid_id": ["G1", "G2"],
            "name": ["一居委", "二居委"],
            "level": [2, 2],
            "parent_id": ["S", "S"],
            "网格员": ["PLANTED-WORKER-A", "PLANTED-WORKER-B"],
            "联系电话": ["138 0000 1111", "139-0000-2222"],
            "备注": ["call +86 137 0000 3333", "quiet"],  # an innocent header, a phone inside
            "划片说明": ["east", "west"],  # the user's own, not personal
            "risk_index_mean": [30.0, 40.0],  # computed (the roll-up)
        }
    )


def test_grid_table_shows_only_canonical_computed_and_allowed_columns():
    grids = _grids()
    user = ["grid_id", "name", "level", "parent_id", "网格员", "联系电话", "备注", "划片说明"]
    water = pd.DataFrame({"grid_id": ["G1", "G2"], "n_hydrants_ok": [1, 2]})
    table = grid_summary_table(grids, extra=[water], user_columns=user)
    assert list(table.columns) == [
        "grid_id",
        "name",
        "level",
        "parent_id",
        "risk_index_mean",
        "n_hydrants_ok",
    ]
    every = grid_summary_table(grids, extra=[water], user_columns=user, allow=["all"])
    assert "划片说明" in every  # "all" lets the user's non-personal columns through …
    assert not {"网格员", "联系电话", "备注"} & set(every)  # … never a personal one
    # the grid board: a worker's name and phone published because the config names them
    board = grid_summary_table(
        grids, extra=[water], user_columns=user, allow=["all", "网格员", "联系电话"]
    )
    assert {"网格员", "联系电话", "划片说明"} <= set(board) and "备注" not in board


@pytest.mark.parametrize(
    "allow, shown", [([], False), (["all"], False), (["all", "网格员", "联系电话"], True)]
)
def test_grid_board_contacts_reach_the_map_only_when_named(allow, shown):
    from firegrid.maps.district_map import risk_map
    from firegrid.maps.export import to_html
    from firegrid.maps.options import MapOptions
    from tests._mapdata import synthetic_results

    r = synthetic_results(n_buildings=10)
    grids = r["grids"].assign(网格员="PLANTEDWORKER", 联系电话="138 0000 1111")
    m = risk_map(r["buildings"], grids=grids, options=MapOptions(allow_fields=allow))
    html = to_html(m)
    assert ("PLANTEDWORKER" in html) is shown and ("138 0000 1111" in html) is shown


def test_shared_columns_catch_a_phone_in_a_canonical_column():
    grids = _grids().assign(name=["一居委", "张三 13800001111"])
    assert "name" not in shared_columns(grids)
    assert "name" in shared_columns(grids, allow=["name"])  # named explicitly: published


def test_summaries_redact_personal_values():
    summary = {
        "district": "D",
        "figures": {"risk": {"highest_risk_grids": {"G 13800001111": 50.0}}},
        "headline": ["h"],
        "notes": ["validation: stations row 3: 站长 139-0000-2222 far from any street"],
    }
    for text in (summary_json(summary), summary_markdown(summary)):
        assert "139-0000-2222" not in text and "13800001111" not in text
        assert "站长 *** far" in text


# --------------------------------------------------------------------------------------------
# A whole run with personal data planted in every layer


LAYERS = ("grids", "buildings", "stations", "hydrants", "water_sources", "hazards", "incidents")
FORMULAS = ['=HYPERLINK("http://x.example","open")', "＝1+1", "@SUM(A1)", "+1+2", "-3+4"]


def _planted(layer: str, n: int) -> dict[str, list[str]]:
    """Columns to add to a layer: personal by header, and personal by value under innocent
    headers; every value unique to its layer and row."""
    tag = LAYERS.index(layer)
    return {
        "户主": [f"PLANTEDNAME{tag}x{i}" for i in range(n)],
        "联系电话": [f"13{tag + 3}-0{tag}{i % 10}{i % 7}-{i:04d}" for i in range(n)],
        "证件号": [f"1101011990031{tag}{i % 10}{i % 9}{i % 8}X" for i in range(n)],
        "备注": [f"call +86 15{tag} 1{i % 10}{i % 10}{i % 10} {i:04d}" for i in range(n)],
        "说明": [f"(021) 6{tag}{i % 10}{i % 7} {i:04d}" for i in range(n)],
        "核查人": [f"inspector {i} a{tag}x{i}@example.cn" for i in range(n)],
        "评语": ["PLANTED-PUBLIC-NOTE"] * n,  # not personal: must reach the map under "all"
    }


def _plant(df: pd.DataFrame, layer: str) -> pd.DataFrame:
    out = df.copy()
    for col, values in _planted(layer, len(out)).items():
        out[col] = values
    if layer == "grids":  # a grid worker and formulas in grid names
        out["网格员"] = [f"PLANTEDWORKER{i}" for i in range(len(out))]
        names = out["name"].astype(object).to_numpy().copy()
        names[1 : 1 + len(FORMULAS)] = FORMULAS
        out["name"] = names
    return out


# The shapes of the planted values (see _planted): any match in an output is a leak.
LEAKS = re.compile(
    r"PLANTEDNAME|PLANTEDWORKER"
    r"|13[3-9]-0\d{3}-\d{4}|(?<!\d)13[3-9]0\d{7}(?!\d)"  # 联系电话, also without dashes
    r"|1101011990031\d{4}X"  # 证件号
    r"|\+86 15\d 1\d{3} \d{4}|(?<!\d)15\d1\d{7}(?!\d)"  # 备注
    r"|\(021\) 6\d{3} \d{4}"  # 说明
    r"|a\dx\d+@example\.cn"  # 核查人
)
PLANTED_HEADERS = ("户主", "联系电话", "证件号", "网格员", "核查人")


def test_the_leak_search_finds_every_planted_value():
    for layer in LAYERS:
        for col, values in _planted(layer, 50).items():
            found = [bool(LEAKS.search(v)) for v in values]
            assert all(found) if col != "评语" else not any(found), (layer, col)


@cache
def planted_demo() -> Path:
    """A demo copy with personal columns and values planted in every layer, ``allow_fields =
    ["all"]``, run end to end with ``firegrid run``; returns the output folder."""
    from firegrid.cli import main

    folder = transformed_demo(_plant, prefix="firegrid-privacy-")
    text = (folder / "demo.toml").read_text(encoding="utf-8")
    text = text.replace("allow_fields = []", 'allow_fields = ["all"]\nbasemap = "none"')
    assert 'allow_fields = ["all"]' in text
    (folder / "demo.toml").write_text(text, encoding="utf-8")
    out = folder / "out"
    assert main(["run", str(folder / "demo.toml"), "--out", str(out), "--quiet"]) == 0
    return out


def _texts_of(folder: Path) -> dict[str, str]:
    """Every leaders' output as text (the workbook cell by cell)."""
    book = openpyxl.load_workbook(folder / "grid_summary.xlsx")
    cells = [str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row]
    html = (folder / "map.html").read_text(encoding="utf-8")
    decoded = json.dumps(map_texts(html), ensure_ascii=False)
    return {
        "map.html": html + decoded,
        "grid_summary.csv": (folder / "grid_summary.csv").read_text(encoding="utf-8-sig"),
        "grid_summary.xlsx": "\n".join(cells),
        "summary.md": (folder / "summary.md").read_text(encoding="utf-8"),
        "summary.json": (folder / "summary.json").read_text(encoding="utf-8"),
    }


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@requires_demo()
@pytest.mark.slow
def test_planted_personal_data_reaches_no_leaders_output():
    folder = planted_demo()
    texts = _texts_of(folder)
    # the search can fail: a planted public note does reach the map and the table
    # (allow_fields = ["all"])
    assert "PLANTED-PUBLIC-NOTE" in texts["map.html"]
    assert "PLANTED-PUBLIC-NOTE" in texts["grid_summary.csv"]
    assert "PLANTED-PUBLIC-NOTE" in texts["grid_summary.xlsx"]
    for name, text in texts.items():
        assert LEAKS.findall(text) == [], name
    # nor do the personal columns themselves (their headers appear nowhere as a column)
    shown = map_texts((folder / "map.html").read_text(encoding="utf-8"))
    columns = {k for props in shown["features"] for k in props}
    columns |= {f for fields in shown["fields"] for f in fields}
    columns |= set(pd.read_csv(folder / "grid_summary.csv", encoding="utf-8-sig").columns)
    book = openpyxl.load_workbook(folder / "grid_summary.xlsx")
    columns |= {c.value for c in book["grid_summary"][1]}
    columns |= {row[0].value for row in book["columns"].iter_rows()}
    assert "评语" in columns
    assert not set(PLANTED_HEADERS) & columns


@requires_demo()
@pytest.mark.slow
def test_results_gpkg_drops_planted_personal_columns_by_default():
    folder = planted_demo()
    for layer, _ in pyogrio.list_layers(folder / "results.gpkg"):
        frame = pyogrio.read_dataframe(folder / "results.gpkg", layer=layer, read_geometry=False)
        assert not {*PLANTED_HEADERS, "备注", "说明", "contact_phone"} & set(frame), layer
        assert LEAKS.findall(frame.to_csv()) == [], layer
        if layer == "buildings":
            assert "评语" in frame  # the user's other columns stay


def test_results_gpkg_keeps_personal_columns_when_configured(tmp_path):
    from firegrid.reports import write_results_gpkg
    from tests._mapdata import synthetic_results

    b = synthetic_results(n_buildings=5)["buildings"].assign(联系电话="13800001111", 评语="x")
    write_results_gpkg({"buildings": b}, tmp_path / "drop.gpkg")
    assert "联系电话" not in pyogrio.read_info(tmp_path / "drop.gpkg", layer="buildings")["fields"]
    write_results_gpkg({"buildings": b}, tmp_path / "keep.gpkg", personal="keep")
    assert "联系电话" in pyogrio.read_info(tmp_path / "keep.gpkg", layer="buildings")["fields"]
    write_results_gpkg({"buildings": b}, tmp_path / "named.gpkg", allow=["联系电话"])
    assert "联系电话" in pyogrio.read_info(tmp_path / "named.gpkg", layer="buildings")["fields"]


@requires_demo()
@pytest.mark.slow
def test_formulas_in_grid_names_stay_text_in_csv_and_xlsx():
    from firegrid.reports import excel_header

    folder = planted_demo()
    with open(folder / "grid_summary.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    names = [r["name"] for r in rows]
    for formula in FORMULAS:
        assert "'" + formula in names  # OWASP: a leading quote makes it text
        assert formula not in names
    book = openpyxl.load_workbook(folder / "grid_summary.xlsx")
    sheet = book["grid_summary"]
    header = [c.value for c in sheet[1]]
    col = header.index(excel_header("name"))
    cells = {row[col].value: row[col] for row in sheet.iter_rows(min_row=2)}
    for formula in FORMULAS:
        cell = cells[formula]  # the visible value unchanged …
        assert cell.data_type == "s" and cell.quotePrefix  # … and text, never a formula
    assert not [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]


def test_popup_decimals_follow_the_registered_unit(monkeypatch):
    from firegrid.maps.privacy import decimals
    from firegrid.spatial import columns

    assert decimals("p_fire") == 3 and decimals("share_high_risk") == 3
    assert decimals("t_micro_s") == 1 and decimals("a_users_column") == 1
    key = ("buildings", "t_micro_s")
    as_share = columns.Column(**{**columns.COLUMNS[key].__dict__, "unit": "share"})
    monkeypatch.setitem(columns.COLUMNS, key, as_share)
    assert decimals("t_micro_s") == 3
