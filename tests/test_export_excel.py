"""The per-grid workbook and CSV for planners: number formats by unit, frozen header, filter,
fitted widths; the CSV's encoding (``[output] csv_encoding``) through the API and the CLI."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest

from firegrid.cli import main
from firegrid.reports import (
    NUMBER_FORMATS,
    OutputOptions,
    display_width,
    excel_header,
    write_grid_summary,
)
from firegrid.spatial import columns
from firegrid.spatial.errors import ConfigError


def _table() -> pd.DataFrame:
    """A small per-grid table with registered columns of several units and two text columns
    of the same length in characters, one Chinese, one ASCII."""
    return pd.DataFrame(
        {
            "grid_id": ["G1", "G2", "G3"],
            "name": ["示范街道第一社区网格", "社区2", "网格3"],  # 10 characters, CJK
            "level": [1, 2, 2],
            "n_buildings": [12345, 20, 0],
            "share_covered_3min": [0.32265625, 1.0, 0.0],
            "max_shortfall_3min_s": [409.93, 0.0, float("nan")],
            "risk_index_mean": [33.405, 12.0, 50.5],
            "code": ["abcdefghij", "k", "l"],  # 10 characters, ASCII
        }
    )


@pytest.fixture
def book(tmp_path):
    write_grid_summary(_table(), tmp_path / "t.csv", tmp_path / "t.xlsx")
    return openpyxl.load_workbook(tmp_path / "t.xlsx")


def _column_of(sheet, code: str) -> str:
    """The letter of the workbook column whose header carries ``code``."""
    for cell in sheet[1]:
        if cell.value in (code, excel_header(code)):
            return cell.column_letter
    raise KeyError(code)


def test_the_units_of_the_registry_are_what_the_formats_assume():
    assert columns.column("share_covered_3min", "grids").unit == "share"
    assert columns.column("n_buildings", "grids").unit == "count"
    assert columns.column("max_shortfall_3min_s", "grids").unit == "s"
    assert columns.column("risk_index_mean", "grids").unit == "0–100"
    # every unit a grid column has is formatted, except text/identifiers (no unit)
    units = {c.unit for c in columns.COLUMNS.values() if c.layer == "grids"} - {""}
    assert units <= set(NUMBER_FORMATS)


def test_numbers_are_formatted_by_unit_and_keep_their_values(book):
    sheet = book["grid_summary"]
    share = sheet[f"{_column_of(sheet, 'share_covered_3min')}2"]
    assert share.number_format == "0.0%"
    assert share.value == pytest.approx(0.323)  # the fraction: sums and filters work
    count = sheet[f"{_column_of(sheet, 'n_buildings')}2"]
    assert count.number_format == "#,##0" and count.value == 12345
    seconds = sheet[f"{_column_of(sheet, 'max_shortfall_3min_s')}2"]
    assert seconds.number_format == "0" and seconds.value == pytest.approx(409.93)
    index = sheet[f"{_column_of(sheet, 'risk_index_mean')}2"]
    assert index.number_format == "0.0"
    # text and unregistered columns are left alone; the header is text, not a number
    assert sheet[f"{_column_of(sheet, 'code')}2"].number_format == "General"
    assert sheet[f"{_column_of(sheet, 'n_buildings')}1"].number_format == "General"


def test_header_and_id_columns_are_frozen_and_the_table_filtered(book):
    grid = book["grid_summary"]
    assert grid.freeze_panes == "C2"  # header row, grid id and name stay in view
    assert grid.auto_filter.ref == "A1:H4"
    glossary = book["columns"]
    assert glossary.freeze_panes == "B2"
    assert glossary.auto_filter.ref == f"A1:F{len(_table().columns) + 1}"


def test_widths_fit_content_with_cjk_counting_double(book):
    sheet = book["grid_summary"]
    width = {c: sheet.column_dimensions[_column_of(sheet, c)].width for c in ("name", "code")}
    assert display_width("示范街道第一社区网格") == 20 and display_width("abcdefghij") == 10
    assert width["name"] > width["code"] >= 10
    assert width["name"] >= 20
    # a long header wraps between its label and its code; the row grows to show both lines
    header = sheet[f"{_column_of(sheet, 'share_covered_3min')}1"]
    assert header.alignment.wrap_text
    assert sheet.row_dimensions[1].height >= 30
    # the columns sheet: long meanings are wrapped within the widest column allowed
    glossary = book["columns"]
    assert max(d.width for d in glossary.column_dimensions.values()) <= 60


def test_formats_leave_formula_safety_alone(tmp_path):
    table = _table().assign(name=["=1+1", "＝2", "@A1"])
    write_grid_summary(table, tmp_path / "t.csv", tmp_path / "t.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx")["grid_summary"]
    for row in (2, 3, 4):
        cell = sheet[f"B{row}"]
        assert cell.data_type == "s" and cell.quotePrefix


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_the_csv_is_written_in_the_chosen_encoding(tmp_path, encoding):
    path = tmp_path / "t.csv"
    write_grid_summary(_table(), path, None, encoding=encoding)
    raw = path.read_bytes()
    back = pd.read_csv(path, encoding=encoding)
    assert back["name"].tolist() == _table()["name"].tolist()  # the Chinese names survive
    if encoding == "gb18030":
        # what older Excel on Chinese Windows reads: GB bytes, no byte-order mark
        assert not raw.startswith(b"\xef\xbb\xbf")
        assert "示范街道".encode("gb18030") in raw
        assert "示范街道".encode() not in raw
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
    else:
        assert raw.startswith(b"\xef\xbb\xbf") and "示范街道".encode() in raw


def test_csv_encoding_option():
    assert OutputOptions().csv_encoding == "utf-8-sig"
    assert OutputOptions.from_mapping({"csv_encoding": "gb18030"}).csv_encoding == "gb18030"
    with pytest.raises(ConfigError) as exc:
        OutputOptions.from_mapping({"csv_encoding": "gbk"})
    message = str(exc.value)
    assert "[output] csv_encoding" in message and "'gbk'" in message
    assert "utf-8-sig" in message and "gb18030" in message


@pytest.mark.parametrize(
    "line, words",
    [
        ('csv_encoding = "latin-1"', ("csv_encoding", "utf-8-sig", "gb18030", "latin-1")),
        ('language = "fr"', ("language", "'en'", "'zh'", "'fr'")),
    ],
)
def test_a_bad_output_option_is_one_line_and_exit_2(tiny_district, capsys, line, words):
    text = tiny_district.read_text(encoding="utf-8")
    tiny_district.write_text(text + f"\n[output]\n{line}\n", encoding="utf-8")
    assert main(["validate", str(tiny_district)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(tiny_district) in err and all(w in err for w in words), err


def test_a_run_writes_gb18030_csv_and_a_chinese_summary(tiny_district, capsys):
    text = tiny_district.read_text(encoding="utf-8")
    tiny_district.write_text(
        text + '\n[output]\ncsv_encoding = "gb18030"\nlanguage = "zh"\nmap = false\n',
        encoding="utf-8",
    )
    out = tiny_district.parent / "out"
    assert main(["run", str(tiny_district), "-q", "--out", str(out)]) == 0, capsys.readouterr()
    raw = (out / "grid_summary.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(out / "grid_summary.csv", encoding="gb18030")
    assert {"示范街道", "社区1", "网格11"} <= set(table["name"])  # the tiny district's grids
    assert "示范街道".encode("gb18030") in raw
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert md.startswith("# FireGrid 消防安全分析摘要") and "| 指标 | 数值 |" in md
    assert "## Headline" not in md and "| figure | value |" not in md
