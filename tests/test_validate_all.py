"""Validation on copies of the demo district: every problem in one pass, one line each naming
the file, the row or feature as the user sees it and the user's own header; ambiguous data
refused; rare but real data accepted with a warning and a count."""

import shutil

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Polygon

from firegrid.cli import main
from firegrid.config import district_from_config, load_config
from firegrid.pipeline import run_pipeline
from firegrid.spatial.io.crs import gcj02_to_wgs84
from firegrid.spatial.io.dates import parse_dates
from firegrid.spatial.io.layers import SCHEMAS
from firegrid.spatial.io.readers import read_csv_any_encoding
from firegrid.spatial.io.sources import LayerSource
from firegrid.spatial.io.validate import check_alignment
from tests._demo import DEMO, requires_demo

pytestmark = requires_demo()


@pytest.fixture
def demo(tmp_path):
    """A writable copy of the demo district; returns its config path."""
    folder = tmp_path / "demo"
    shutil.copytree(DEMO, folder)
    return folder / "demo.toml"


def _edit_csv(config, name: str, edit) -> None:
    path = config.parent / name
    df, _ = read_csv_any_encoding(path)
    edit(df)
    df.to_csv(path, index=False, encoding="utf-8-sig")


def _edit_gpkg(config, name: str, edit) -> None:
    path = config.parent / f"{name}.gpkg"
    gdf = gpd.read_file(path, layer=name)
    edit(gdf)
    gdf.to_file(path, layer=name)


def _validate(config, capsys) -> tuple[int, list[str], list[str], str]:
    """Exit code, ERROR lines, WARNING lines and stderr of ``firegrid validate``."""
    code = main(["validate", str(config)])
    out = capsys.readouterr()
    lines = out.out.splitlines()
    errors = [x for x in lines if x.startswith("ERROR: ")]
    warnings = [x for x in lines if x.startswith("WARNING: ")]
    assert "Traceback" not in out.out + out.err
    return code, errors, warnings, out.err


def _one_error(config, capsys) -> str:
    code, errors, _, err = _validate(config, capsys)
    assert code == 2 and len(errors) == 1, errors
    assert err.strip().splitlines() == ["1 error(s)"]
    return errors[0]


def _set(column: str, row: int, value: str):
    def edit(df):
        df.loc[row, column] = value

    return edit


# --------------------------------------------------------------------------------------------
# Dates: one unambiguous reading or a refusal listing the accepted forms


def test_date_without_a_year_is_one_line_naming_file_row_and_header(demo, capsys):
    # Data row index 4 is the spreadsheet's row 6: the header is row 1.
    _edit_csv(demo, "hazards.csv", _set("整改期限", 4, "3月5日"))
    msg = _one_error(demo, capsys)
    assert "hazards.csv: row 6 (hazard_id YH20240005)" in msg
    assert "column '整改期限' (deadline)" in msg
    assert "the year is missing" in msg and "'3月5日'" in msg
    assert "YYYY-MM-DD" in msg and "YYYY年M月D日" in msg


def test_two_digit_year_is_refused_not_guessed(demo, capsys):
    _edit_csv(demo, "hazards.csv", _set("发现日期", 9, "24.3.5"))
    msg = _one_error(demo, capsys)
    assert "hazards.csv: row 11 (hazard_id YH20240010)" in msg
    assert "column '发现日期' (found_on)" in msg
    assert "two-digit year is ambiguous" in msg and "'24.3.5'" in msg


def test_day_month_order_is_refused(demo, capsys):
    _edit_csv(demo, "hazards.csv", _set("整改日期", 0, "5/3/2024"))
    msg = _one_error(demo, capsys)
    assert "row 2 (hazard_id YH20240001)" in msg and "'整改日期' (rectified_on)" in msg
    assert "day/month order is ambiguous" in msg


def test_accepted_date_forms():
    cells = pd.Series(
        ["2024-03-05", "2024/3/5", "2024.03.05", "2024年3月5日", "20240305", "2024-03-05 00:00:00"]
    )
    dates, bad, _ = parse_dates(cells)
    assert not bad.any()
    assert (dates == pd.Timestamp("2024-03-05")).all()
    dates, bad, why = parse_dates(pd.Series(["24.3.5", "5/3/2024", "3月5日", "2024-02-30", ""]))
    assert bad.tolist() == [True, True, True, True, False]
    assert why.tolist()[:4] == [
        "a two-digit year is ambiguous",
        "day/month order is ambiguous",
        "the year is missing",
        "no such day",
    ]
    assert dates.isna().all()


def test_deadline_before_found_is_named_in_validate(demo, capsys):
    _edit_csv(demo, "hazards.csv", _set("整改期限", 4, "2020-01-01"))
    msg = _one_error(demo, capsys)
    assert "hazards.csv: row 6 (hazard_id YH20240005)" in msg
    assert "column '整改期限' (deadline)" in msg and "before '发现日期'" in msg


# --------------------------------------------------------------------------------------------
# Numbers


def test_inf_in_a_number_column_is_one_line(demo, capsys):
    _edit_csv(demo, "stations.csv", _set("出动时间(秒)", 1, "inf"))
    msg = _one_error(demo, capsys)
    assert "stations.csv: row 3 (station_id WZ01)" in msg
    assert "column '出动时间(秒)' (turnout_s)" in msg and "not a finite number: 'inf'" in msg


def test_inf_in_a_whole_number_column_is_one_line(demo, capsys):
    _edit_csv(demo, "stations.csv", _set("人数", 2, "-inf"))
    msg = _one_error(demo, capsys)
    assert "stations.csv: row 4" in msg and "column '人数' (staff)" in msg
    assert "not a finite number: '-inf'" in msg


def test_numbers_print_as_the_user_wrote_them(demo, capsys):
    def edit(b):
        b.loc[2, "year_built"] = 1987.5

    _edit_gpkg(demo, "buildings", edit)
    msg = _one_error(demo, capsys)
    assert "buildings.gpkg: feature 3 (building_id B00003)" in msg
    assert "column 'year_built'" in msg and "not a whole number: 1987.5" in msg
    assert "np." not in msg


# --------------------------------------------------------------------------------------------
# Coordinate systems and grids


def test_wgs84_declared_as_gcj02_is_caught(demo, capsys):
    text = demo.read_text(encoding="utf-8")
    old = 'layer = "buildings"\ncrs = "WGS84"'
    assert old in text
    demo.write_text(text.replace(old, 'layer = "buildings"\ncrs = "GCJ-02"'), encoding="utf-8")
    code, errors, _, _ = _validate(demo, capsys)
    assert code == 2
    extent = next(e for e in errors if "buildings.gpkg" in e)
    assert "buildings.gpkg: feature" in extent and "column 'geometry'" in extent
    assert "WGS84/CGCS2000 data declared as GCJ-02" in extent
    # The hazards and incidents placed at buildings no longer lie on them.
    hazards = next(e for e in errors if "hazards.csv" in e)
    assert "buildings are WGS84 but declared GCJ-02" in hazards


def test_alignment_sees_a_shift_that_leaves_nothing_outside():
    district, report = district_from_config(load_config(DEMO / "demo.toml"))
    assert report.ok
    hz, b = district.hazards.to_crs(4326), district.buildings.to_crs(4326)
    # WGS84 hazards declared GCJ-02: the conversion removes an offset that was never there.
    x, y = gcj02_to_wgs84(hz.geometry.x.to_numpy(), hz.geometry.y.to_numpy())
    moved = hz.set_geometry(gpd.points_from_xy(x, y, crs=4326))
    where = {"schema": SCHEMAS["hazards"], "source": LayerSource("hazards.csv")}
    found = check_alignment(
        moved, b, district.crs, points_offset="gcj02", buildings_offset=None, **where
    )
    assert len(found.errors) == 1
    assert "hazards.csv" in found.errors[0]
    assert "hazards are WGS84 but declared GCJ-02" in found.errors[0]
    clean = check_alignment(hz, b, district.crs, points_offset=None, buildings_offset=None, **where)
    assert clean.ok


def test_overlapping_level3_cells_are_refused(demo, capsys):
    def edit(g):
        cells = g.index[g["level"] == 3]
        a, b = cells[0], cells[1]
        g.loc[b, "geometry"] = g.loc[b, "geometry"].union(g.loc[a, "geometry"].buffer(-0.0003))

    _edit_gpkg(demo, "grids", edit)
    msg = _one_error(demo, capsys)
    assert "grids.gpkg: feature" in msg and "column 'geometry'" in msg
    assert "overlap by" in msg and "would belong to both" in msg


def test_buildings_outside_every_cell_warn_with_a_count_in_validate_and_run(demo, capsys):
    def edit(b):
        b.loc[[4, 5, 6], "geometry"] = b.loc[[4, 5, 6]].geometry.translate(0.004, 0)

    _edit_gpkg(demo, "buildings", edit)
    code, errors, warnings, _ = _validate(demo, capsys)
    assert code == 0 and errors == []
    line = next(w for w in warnings if "no grid cell" in w)
    assert "buildings.gpkg" in line and "of 2560 buildings" in line and "(first: feature" in line
    run = run_pipeline(demo, until="load", progress=False)
    assert any("no grid cell" in note for note in run.notes)


def test_mapped_header_colliding_with_a_canonical_header_is_refused(demo, capsys):
    # The file already has a "name" column and the config maps 名称 onto name as well.
    def edit(df):
        df["name"] = "another name"

    _edit_csv(demo, "stations.csv", edit)
    msg = _one_error(demo, capsys)
    assert "stations.csv" in msg and "column '名称'" in msg and "'name'" in msg


# --------------------------------------------------------------------------------------------
# Every problem in one pass; run stops at the first


def _seed_four_errors(config) -> None:
    _edit_csv(config, "hazards.csv", _set("整改期限", 4, "3月5日"))
    _edit_csv(config, "stations.csv", _set("出动时间(秒)", 1, "inf"))

    def dup(b):
        b.loc[3, "building_id"] = b.loc[9, "building_id"]

    _edit_gpkg(config, "buildings", dup)
    _edit_csv(config, "hydrants.csv", _set("状态", 7, "半坏"))


def test_validate_reports_every_problem_of_every_layer_in_one_pass(demo, capsys):
    _seed_four_errors(demo)
    code, errors, _, err = _validate(demo, capsys)
    assert code == 2
    assert len(errors) == 4, errors
    files = sorted(e.split(": ")[1].rsplit("/", 1)[-1] for e in errors)
    assert files == ["buildings.gpkg", "hazards.csv", "hydrants.csv", "stations.csv"]
    assert any("row 9" in e and "'状态' (status)" in e and "'半坏'" in e for e in errors)
    assert any("duplicate id 'B00010'" in e and "feature 4 and feature 10" in e for e in errors)
    assert err.strip().splitlines() == ["4 error(s)"]


def test_run_stops_at_the_first_error_with_one_line(demo, capsys):
    _seed_four_errors(demo)
    code = main(["run", str(demo), "--out", str(demo.parent / "out"), "--quiet"])
    out = capsys.readouterr()
    assert code == 2
    err = out.err.strip().splitlines()
    assert len(err) == 1 and "3 more problems" in err[0] and "firegrid validate" in err[0]
    assert "Traceback" not in out.out + out.err


# --------------------------------------------------------------------------------------------
# Real data accepted


def test_real_data_oddities_pass_with_warning_counts(demo, capsys):
    def edit(b):
        b.loc[3, "floors"] = 2.5  # OSM building:levels with a half storey
        b.loc[5, "year_built"] = 1368  # a Ming-era temple
        b.loc[6, "year_built"] = 1780
        x, y = b.geometry.iloc[8].exterior.coords[0]
        # a footprint cut at the extract's edge: a closed line with no area
        b.loc[8, "geometry"] = Polygon([(x, y), (x + 1e-4, y), (x + 2e-4, y), (x, y)])

    _edit_gpkg(demo, "buildings", edit)
    code, errors, warnings, _ = _validate(demo, capsys)
    assert code == 0 and errors == []
    year = next(w for w in warnings if "year_built" in w)
    assert "feature 6 (building_id B00006)" in year and ": 1368; 1 more rows like it" in year
    dropped = next(w for w in warnings if "dropped" in w)
    assert "dropped 1 feature(s)" in dropped and "feature 9 (building_id B00009)" in dropped
    assert "Valid Geometry" not in dropped and "Self-intersection" in dropped
    run = run_pipeline(demo, until="load", progress=False)
    b = run.district.buildings
    assert len(b) == 2559 and "B00009" not in set(b["building_id"])
    assert b.loc[b["building_id"] == "B00004", "floors"].item() == 2.5
    assert b.loc[b["building_id"] == "B00006", "year_built"].item() == 1368
    assert sum("validation:" in n for n in run.notes) == 2


def test_repair_warning_gives_the_reason_before_repair(demo, capsys):
    def edit(b):
        x0, y0, x1, y1 = b.geometry.iloc[2].bounds
        b.loc[2, "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # bow-tie

    _edit_gpkg(demo, "buildings", edit)
    code, _, warnings, _ = _validate(demo, capsys)
    assert code == 0
    line = next(w for w in warnings if "repaired" in w)
    assert "repaired 1 invalid geometries (first: feature 3 (building_id B00003)" in line
    assert "Self-intersection" in line and "Valid Geometry" not in line


def test_excel_ledger_dates_and_rows(demo, capsys):
    # Excel date cells reach validation as 'YYYY-MM-DD 00:00:00'; rows count from 2 as well.
    df, _ = read_csv_any_encoding(demo.parent / "hazards.csv")
    df["发现日期"] = pd.to_datetime(df["发现日期"])
    df.loc[6, "整改期限"] = "24.3.5"
    df.to_excel(demo.parent / "hazards.xlsx", index=False)
    text = demo.read_text(encoding="utf-8").replace('"hazards.csv"', '"hazards.xlsx"')
    demo.write_text(text, encoding="utf-8")
    msg = _one_error(demo, capsys)
    assert "hazards.xlsx: row 8 (hazard_id YH20240007)" in msg
    assert "column '整改期限' (deadline)" in msg and "two-digit year" in msg
