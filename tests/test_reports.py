"""Reports: results GeoPackage, per-grid CSV/Excel, summary; atomic replacement of the folder."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest

import firegrid.reports as reports
from firegrid.outputs import read_manifest
from firegrid.reports import (
    OutputOptions,
    csv_safe,
    grid_summary_table,
    summary_json,
    summary_markdown,
    write_grid_summary,
    write_outputs,
    write_results_gpkg,
)
from firegrid.spatial.errors import ConfigError
from tests._mapdata import synthetic_results


def _inputs():
    r = synthetic_results(n_buildings=20)
    grids = r["grids"].assign(
        name=["示范街道", "社区1", "网格11", "网格12", "社区2", "网格21", "网格22"]
    )
    water = pd.DataFrame(
        {"grid_id": grids["grid_id"], "n_hydrants_ok": range(len(grids)), "level": grids["level"]}
    )
    layers = {k: v for k, v in r.items() if k != "grids"} | {"grids": grids}
    layers["siting_gain_curve"] = pd.DataFrame({"k": [1, 2], "covered": [10, 15]})
    table = grid_summary_table(grids, extra=[water, None])
    summary = {
        "district": "示范街道",
        "as_of": "2026-06-30",
        "figures": {"access": {"share_covered_3min": 0.5, "median_t_micro_s": float("nan")}},
        "headline": ["3-minute micro-station coverage: 10 of 20 buildings (50.0 %)"],
        "notes": ["siting step not available"],
    }
    return layers, table, summary


def test_output_options():
    assert OutputOptions.from_mapping({"excel": False}).excel is False
    with pytest.raises(ConfigError, match="unknown key 'pdf'"):
        OutputOptions.from_mapping({"pdf": True})
    with pytest.raises(ConfigError, match="true or false"):
        OutputOptions.from_mapping({"map": "yes"})


def test_grid_summary_joins_water_figures_and_orders_columns():
    layers, table, _ = _inputs()
    assert list(table.columns[:4]) == ["grid_id", "name", "level", "parent_id"]
    assert "n_hydrants_ok" in table and "risk_index_mean" in table and "geometry" not in table
    assert table["level"].tolist() == sorted(table["level"].tolist())
    assert grid_summary_table(None) is None


def test_every_output_is_written(tmp_path):
    layers, table, summary = _inputs()
    out = write_outputs(
        tmp_path / "out", layers=layers, grid_table=table, summary=summary, map_html="<html></html>"
    )
    assert set(out) == {
        "map.html",
        "results.gpkg",
        "grid_summary.csv",
        "grid_summary.xlsx",
        "summary.md",
        "summary.json",
    }
    folder = tmp_path / "out"
    assert set(read_manifest(folder)) == set(out)  # the manifest lists every file written
    # GeoPackage: every layer with its computed columns
    names = {n for n, _ in pyogrio.list_layers(folder / "results.gpkg")}
    assert {
        "buildings",
        "grids",
        "stations",
        "hydrants",
        "isochrones",
        "siting_gain_curve",
    } <= names
    b = gpd.read_file(folder / "results.gpkg", layer="buildings")
    assert {"risk_index", "c_age", "t_micro_s", "water_deficient"} <= set(b.columns)
    assert len(b) == 20 and b.crs == layers["buildings"].crs
    # CSV: UTF-8 with a BOM so Excel shows the Chinese names
    raw = (folder / "grid_summary.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    csv = pd.read_csv(folder / "grid_summary.csv", encoding="utf-8-sig")
    assert "示范街道" in csv["name"].tolist() and len(csv) == 7
    xl = pd.read_excel(folder / "grid_summary.xlsx", sheet_name=None)
    assert set(xl) == {"grid_summary", "columns"}
    assert xl["grid_summary"].shape == csv.shape
    # Workbook headers: the Chinese label with the CSV's code; every column explained.
    assert "平均风险指数 (0–100) (risk_index_mean)" in xl["grid_summary"].columns
    assert [h.rsplit(" (", 1)[-1].rstrip(")") for h in xl["grid_summary"].columns] == list(
        csv.columns
    )
    sheet = xl["columns"].set_index("column")
    assert list(sheet.index) == list(csv.columns)
    assert sheet.loc["risk_index_mean", "中文"] == "平均风险指数 (0–100)"
    assert sheet.loc["risk_index_mean", "roll-up"] == "mean of `risk_index`"
    computed = [c for c in csv.columns if c not in {"grid_id", "name", "level", "parent_id"}]
    assert sheet.loc[computed, "meaning"].notna().all()
    # summaries
    data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert data["figures"]["access"]["median_t_micro_s"] is None  # NaN → null
    assert data["outputs"][0] == "map.html"
    md = (folder / "summary.md").read_text(encoding="utf-8")
    assert "3-minute micro-station coverage" in md and "siting step not available" in md


def test_a_failure_midway_leaves_the_previous_outputs_intact(tmp_path, monkeypatch):
    layers, table, summary = _inputs()
    folder = tmp_path / "out"
    write_outputs(folder, layers=layers, grid_table=table, summary=dict(summary), map_html="old")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def boom(table, csv_path, xlsx_path, **_):
        table.to_csv(csv_path)  # half the work done …
        raise RuntimeError("disk full")  # … then the step fails

    monkeypatch.setattr(reports, "write_grid_summary", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_outputs(
            folder, layers=layers, grid_table=table, summary=dict(summary), map_html="new"
        )
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after == before
    assert (folder / "map.html").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folder left behind


def test_an_interrupt_midway_leaves_the_previous_outputs_intact(tmp_path, monkeypatch):
    layers, table, summary = _inputs()
    folder = tmp_path / "out"
    write_outputs(folder, layers=layers, grid_table=table, summary=dict(summary))
    before = sorted(p.name for p in folder.iterdir())

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reports, "write_results_gpkg", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(folder, layers=layers, grid_table=table, summary=dict(summary))
    assert sorted(p.name for p in folder.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_rerun_replaces_the_folder_as_a_whole(tmp_path):
    layers, table, summary = _inputs()
    folder = tmp_path / "out"
    write_outputs(folder, layers=layers, grid_table=table, summary=dict(summary), map_html="x")
    write_outputs(folder, layers=layers, grid_table=None, summary=dict(summary))
    names = {p.name for p in folder.iterdir()}
    assert "map.html" not in names and "grid_summary.csv" not in names
    assert {"results.gpkg", "summary.md", "summary.json"} <= names


def test_a_folder_of_other_files_is_never_replaced(tmp_path):
    layers, table, summary = _inputs()
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.docx").write_text("precious")
    with pytest.raises(ConfigError, match="did not write"):
        write_outputs(folder, layers=layers, grid_table=table, summary=summary)
    assert (folder / "thesis.docx").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        write_outputs(tmp_path / "file", layers=layers, grid_table=table, summary=summary)


def test_summary_renderers():
    s = {
        "district": "D",
        "figures": {"risk": {"grades": {1: 3, 2: 4}, "risk_index_mean": 34.25, "share": 0.1234}},
        "headline": ["h1"],
        "notes": [],
    }
    md = summary_markdown(s)
    assert "| grades | 1: 3, 2: 4 |" in md and "| risk_index_mean | 34.2 |" in md
    assert "| share | 0.123 |" in md and "## Headline" in md and "## Notes" not in md
    assert json.loads(summary_json({"x": float("inf"), "y": math.nan}))["x"] is None


def test_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    layers, table, summary = _inputs()
    mask = os.umask(0o022)
    try:
        write_outputs(tmp_path / "out", layers=layers, grid_table=table, summary=summary)
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_an_unwritable_place_is_one_config_error(tmp_path, monkeypatch):
    layers, table, summary = _inputs()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reports, "write_results_gpkg", full_disk)
    with pytest.raises(ConfigError, match="No space left on device"):
        write_outputs(tmp_path / "out", layers=layers, grid_table=table, summary=summary)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_swap_puts_the_previous_outputs_back(tmp_path, monkeypatch):
    import firegrid.outputs as outputs

    layers, table, summary = _inputs()
    folder = tmp_path / "out"
    write_outputs(folder, layers=layers, grid_table=table, summary=dict(summary), map_html="old")
    real = outputs.os.rename

    def swap_fails(src, dst):
        if "-new-" in str(src):  # the new folder cannot be moved into place
            raise OSError(5, "Input/output error")
        return real(src, dst)

    # the two-rename swap (systems without renameat2): the previous folder is put back
    monkeypatch.setattr(outputs, "exchange", lambda a, b: False)
    monkeypatch.setattr(outputs.os, "rename", swap_fails)
    with pytest.raises(ConfigError, match="Input/output error"):
        write_outputs(
            folder, layers=layers, grid_table=table, summary=dict(summary), map_html="new"
        )
    assert (folder / "map.html").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


FORMULAS = ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", "＝1", "＋1", "－1", "＠A1"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_formula_in_a_text_cell_stays_text_in_csv_and_xlsx(tmp_path, formula):
    import csv

    import openpyxl

    table = pd.DataFrame(
        {"grid_id": ["G1", "G2"], "name": [formula, "一居委"], "n": [-1, 2], formula: ["x", "y"]}
    )
    write_grid_summary(table, tmp_path / "t.csv", tmp_path / "t.xlsx")
    with open(tmp_path / "t.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["grid_id", "name", "n", "'" + formula]  # the header too
    assert rows[1][1] == "'" + formula and rows[2][1] == "一居委"  # OWASP: a leading quote
    assert rows[1][2] == "-1"  # numbers stay numbers
    book = openpyxl.load_workbook(tmp_path / "t.xlsx")
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate)
    sheet = book["grid_summary"]
    for cell in (sheet["B2"], sheet["D1"]):
        # (XML reads a lone CR back as LF)
        assert cell.value == formula.replace("\r", "\n")
        assert cell.data_type == "s" and cell.quotePrefix
    assert sheet["C2"].value == -1 and not sheet["B3"].quotePrefix


def test_csv_safe_leaves_ordinary_text_alone():
    table = pd.DataFrame({"name": ["一居委", "a=b", "x-1", None], "v": [1.5, -2.0, 0.0, 1.0]})
    out = csv_safe(table)
    assert out["name"].tolist()[:3] == ["一居委", "a=b", "x-1"] and pd.isna(out["name"][3])
    assert out["v"].tolist() == [1.5, -2.0, 0.0, 1.0]


def test_output_options_personal():
    assert OutputOptions().personal == "drop"
    assert OutputOptions.from_mapping({"personal": "keep"}).personal == "keep"
    with pytest.raises(ConfigError, match=r"\[output\] personal must be one of"):
        OutputOptions.from_mapping({"personal": "publish"})


def test_the_columns_sheet_quotes_the_run_parameters():
    from firegrid.reports import columns_sheet

    table = pd.DataFrame({"grid_id": ["g"], "n_high_risk": [1], "user_extra": [2]})
    sheet = columns_sheet(table, values={"high_risk_grade": 3}).set_index("column")
    assert "grade 3 or worse" in sheet.loc["n_high_risk", "meaning"]
    assert sheet.loc["user_extra", "中文"] == "user_extra"  # a user's column: no label
    assert sheet.loc["n_high_risk", "unit"] == "count"


def test_write_outputs_takes_one_outputs_object_too(tmp_path):
    from firegrid.reports import RunOutputs

    layers, table, summary = _inputs()
    outputs = RunOutputs(layers=layers, grid_table=table, summary=summary)
    out = write_outputs(tmp_path / "out", outputs, options=OutputOptions(excel=False))
    assert "grid_summary.csv" in out and "grid_summary.xlsx" not in out
    with pytest.raises(TypeError, match="not both"):
        write_outputs(tmp_path / "o2", outputs, layers=layers)


def _summary_with_figures() -> dict:
    """A run's summary as the steps make it (figures, English headline), small."""
    return {
        "district": "示范街道",
        "as_of": "2026-06-30",
        "run_at": "2026-12-07T03:00:00",
        "figures": {
            "district": {"buildings": 2560, "grids_by_level": {"1": 1, "2": 2}},
            "access": {
                "target_micro_s": 180.0,
                "target_fire_s": 300.0,
                "buildings_covered_3min": 826,
                "share_covered_3min": 826 / 2560,
                "buildings_covered_5min": 768,
                "share_covered_5min": 768 / 2560,
                "median_t_micro_s": float("nan"),
            },
            "water": {
                "hydrant_radius_m": 150.0,
                "buildings": 2560,
                "water_deficient": 792,
                "share_water_deficient": 792 / 2560,
                "deficient_zones": 124,
                "new_hydrants_needed": 123,
            },
            "risk": {
                "grades": {1: 41, 2: 425, 3: 1102, 4: 992},
                "risk_index_mean": 33.405,
                "risk_index_max": 76.409,
                "hazards_open": 44,
                "hazards_overdue": 19,
                "factors_assessed": ["age", "wiring"],
            },
            "siting": {
                "buildings": 2560,
                "covered_before": 826,
                "covered_after": 1803,
                "new_sites": 5,
                "optimal": True,
                "min_count": 24,
            },
        },
        "headline": [
            "3-minute micro-station coverage: 826 of 2,560 buildings (32.3 %)",
            "5-minute fire-station coverage: 768 of 2,560 buildings (30.0 %)",
        ],
        "notes": ["siting step not available"],
        "outputs": ["summary.md", "summary.json"],
    }


EXPECTED_EN = """# FireGrid summary — 示范街道

Data as of **2026-06-30**; run 2026-12-07T03:00:00.

## District

| figure | value |
|---|---|
| buildings | 2,560 |
| grids_by_level | 1: 1, 2: 2 |

## Response times (targets: micro-station 3 min = 180 s, fire station 5 min = 300 s, turnout included)

| figure | value |
|---|---|
| target_micro_s | 180.0 |
| target_fire_s | 300.0 |
| buildings_covered_3min | 826 |
| share_covered_3min | 0.323 |
| buildings_covered_5min | 768 |
| share_covered_5min | 0.3 |
| median_t_micro_s | – |

## Fire water (hydrant protection radius along streets, metres)

| figure | value |
|---|---|
| hydrant_radius_m | 150.0 |
| buildings | 2,560 |
| water_deficient | 792 |
| share_water_deficient | 0.309 |
| deficient_zones | 124 |
| new_hydrants_needed | 123 |

## Risk (index 0–100; grades 1 重大 · 2 较大 · 3 一般 · 4 低)

| figure | value |
|---|---|
| grades | 1: 41, 2: 425, 3: 1,102, 4: 992 |
| risk_index_mean | 33.4 |
| risk_index_max | 76.4 |
| hazards_open | 44 |
| hazards_overdue | 19 |
| factors_assessed | age, wiring |

## Siting of new micro-stations

| figure | value |
|---|---|
| buildings | 2,560 |
| covered_before | 826 |
| covered_after | 1,803 |
| new_sites | 5 |
| optimal | yes |
| min_count | 24 |

## Headline

- 3-minute micro-station coverage: 826 of 2,560 buildings (32.3 %)
- 5-minute fire-station coverage: 768 of 2,560 buildings (30.0 %)

## Notes

- siting step not available

## Files

- `summary.md`
- `summary.json`
"""


def test_the_english_summary_is_unchanged_by_the_language_option():
    summary = _summary_with_figures()
    assert summary_markdown(summary) == EXPECTED_EN
    assert summary_markdown(summary, language="en") == EXPECTED_EN


def test_the_chinese_summary_has_chinese_headings_labels_and_the_same_figures():
    md = summary_markdown(_summary_with_figures(), language="zh")
    lines = md.splitlines()
    assert lines[0] == "# FireGrid 消防安全分析摘要 — 示范街道"
    assert "数据截至 **2026-06-30**；运行时间 2026-12-07T03:00:00。" in lines
    for heading in ("## 辖区概况", "## 主要结论", "## 说明", "## 输出文件"):
        assert heading in lines
    assert (
        "## 到场时间（目标：微型消防站 3 分钟 = 180 秒，消防站 5 分钟 = 300 秒，含出动时间）"
        in lines
    )
    assert not any(h in md for h in ("## Headline", "## Notes", "## District", "| figure |"))
    # labels: the registry's where it has one, else the summary's own; the key beside it
    assert "| 3分钟覆盖率 (share_covered_3min) | 0.323 |" in lines
    assert "| 未整改隐患 (项) (hazards_open) | 44 |" in lines
    assert "| 建筑数 (buildings) | 2,560 |" in lines
    assert "| 已证最优 (optimal) | 是 |" in lines
    assert "| 微站到场时间中位数 (s) (median_t_micro_s) | – |" in lines
    # the headline in Chinese, made from the figures: the same numbers as the English one
    headline = lines[lines.index("## 主要结论") + 2 : lines.index("## 说明") - 1]
    assert headline == [
        "- 3分钟微型消防站到场覆盖：2,560 栋建筑中 826 栋（32.3%）",
        "- 5分钟消防站到场覆盖：2,560 栋建筑中 768 栋（30.0%）",
        "- 缺水建筑（沿街道 150 米内无完好消火栓或消防水源）：792 栋（30.9%），分布于 124 个缺水区域",
        "- 覆盖全部可覆盖的缺水建筑需新增消火栓：123 个",
        "- 建筑风险等级：1 重大 41 · 2 较大 425 · 3 一般 1,102 · 4 低 992；风险指数平均 33.4，最高 76.4",
        "- 未整改隐患：44 项（其中逾期 19 项）",
        "- 建议新建微型消防站 5 处：3分钟到场覆盖率 32.3% → 70.4%；新建 24 处可覆盖全部可到达建筑",
    ]
    assert "- siting step not available" in lines  # notes stay as the run wrote them


def test_the_chinese_headline_quotes_the_run_targets():
    summary = _summary_with_figures()
    summary["figures"]["access"].update(target_micro_s=150.0, target_fire_s=480.0)
    md = summary_markdown(summary, language="zh")
    assert "2.5分钟微型消防站到场覆盖" in md and "8分钟消防站到场覆盖" in md
    assert "2.5分钟到场覆盖率 32.3% → 70.4%" in md
    assert "微型消防站 2.5 分钟 = 150 秒" in md


def test_language_option():
    assert OutputOptions().language == "en"
    assert OutputOptions.from_mapping({"language": "zh"}).language == "zh"
    with pytest.raises(ConfigError, match=r"\[output\] language must be one of \['en', 'zh'\]"):
        OutputOptions.from_mapping({"language": "cn"})


def test_write_outputs_follows_the_output_options(tmp_path):
    layers, table, summary = _inputs()
    write_outputs(
        tmp_path / "out",
        layers=layers,
        grid_table=table,
        summary=summary,
        csv_encoding="gb18030",
        language="zh",
        excel=False,
    )
    raw = (tmp_path / "out" / "grid_summary.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and "示范街道".encode("gb18030") in raw
    md = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert md.startswith("# FireGrid 消防安全分析摘要 — 示范街道")


def test_nested_values_are_written_as_json_text_and_plain_text_as_it_is(tmp_path):
    # OSM tag lists (osmnx merges ways' tags into lists) and other nested values become JSON
    # text; a column of plain text (a city's ids) skips the per-value check and is kept as is,
    # also when one nested value hides at its very end.
    from shapely.geometry import Point

    n = 1000
    ids = [f"B{i:05d}" for i in range(n)]
    late = [*ids[:-1], ["residential", "service"]]
    frame = gpd.GeoDataFrame(
        {
            "building_id": pd.Series(ids, dtype=object),
            "with_gaps": pd.Series(
                [None if i % 7 == 0 else s for i, s in enumerate(ids)], dtype=object
            ),  # fmt: skip
            "late_list": pd.Series(late, dtype=object),
            "mixed": pd.Series([{"k": "值"}, ("a", "b"), None, *ids[3:]], dtype=object),
        },
        geometry=[Point(i, i) for i in range(n)],
        crs=32651,
    )
    path = write_results_gpkg({"buildings": frame}, tmp_path / "r.gpkg", personal="keep")
    back = pyogrio.read_dataframe(path, layer="buildings")
    assert back["building_id"].tolist() == ids
    assert back["with_gaps"].isna().sum() == len(range(0, n, 7))
    assert json.loads(back["late_list"].iloc[-1]) == ["residential", "service"]
    assert back["late_list"].iloc[:-1].tolist() == ids[:-1]
    assert json.loads(back["mixed"].iloc[0]) == {"k": "值"}
    assert json.loads(back["mixed"].iloc[1]) == ["a", "b"]
    assert back["mixed"].iloc[3:].tolist() == ids[3:]
