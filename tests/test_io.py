import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from firegrid.spatial.errors import InputError
from firegrid.spatial.io.readers import read_csv_any_encoding, read_layer_file
from tests.conftest import tiny_buildings, tiny_hydrants_wgs84, write_hydrants_csv


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings_read_without_being_named(tmp_path, encoding):
    lon, lat = tiny_hydrants_wgs84()
    path = write_hydrants_csv(tmp_path / "h.csv", lon, lat, encoding=encoding)
    df, used = read_csv_any_encoding(path)
    assert list(df.columns[:2]) == ["编号", "状态"]
    assert df["状态"].iloc[-1] == "损坏"
    assert used in ("utf-8-sig", "gb18030")


def test_ledger_with_chinese_headers_becomes_points(tmp_path):
    lon, lat = tiny_hydrants_wgs84()
    path = write_hydrants_csv(tmp_path / "h.csv", lon, lat)
    gdf, source = read_layer_file(path, columns={"编号": "hydrant_id", "状态": "status"})
    assert gdf.crs is None  # the config declares a ledger's coordinate system
    np.testing.assert_allclose(gdf.geometry.x, lon)
    assert source.column("status") == ("状态", "status")
    assert source.feature(0) == "row 2"


def test_excel_ledger(tmp_path):
    lon, lat = tiny_hydrants_wgs84()
    pd.DataFrame({"编号": ["H1", "H2"], "lon": lon[:2], "lat": lat[:2]}).to_excel(
        tmp_path / "h.xlsx", index=False
    )
    gdf, _ = read_layer_file(tmp_path / "h.xlsx")
    assert len(gdf) == 2 and gdf.geometry.x.iloc[1] == pytest.approx(lon[1])


@pytest.mark.parametrize(
    "suffix,driver",
    [(".gpkg", "GPKG"), (".geojson", "GeoJSON"), (".shp", "ESRI Shapefile"), (".parquet", None)],
)
def test_vector_formats(tmp_path, suffix, driver):
    b = tiny_buildings()
    path = tmp_path / f"b{suffix}"
    if driver:
        b.to_file(path, driver=driver)
    else:
        b.to_parquet(path)
    gdf, source = read_layer_file(path)
    assert len(gdf) == len(b) and gdf.crs.to_epsg() == 4326
    assert source.feature(0) == "feature 1"


def test_bad_coordinate_names_row_and_column(tmp_path):
    lon, lat = tiny_hydrants_wgs84()
    path = write_hydrants_csv(tmp_path / "h.csv", lon, lat)
    df = pd.read_csv(path, encoding="gbk", dtype=str)
    df.loc[2, "纬度"] = "三十一"
    df.to_csv(path, index=False, encoding="gbk")
    with pytest.raises(InputError) as exc:
        read_layer_file(path)
    msg = str(exc.value)
    assert "h.csv" in msg and "row 4" in msg and "纬度" in msg


def test_missing_file_and_unmapped_header(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_layer_file(tmp_path / "nope.gpkg")
    lon, lat = tiny_hydrants_wgs84()
    path = write_hydrants_csv(tmp_path / "h.csv", lon, lat)
    with pytest.raises(InputError, match="编码"):
        read_layer_file(path, columns={"编码": "hydrant_id"})


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_geodataframe_without_crs_is_kept(tmp_path):
    # A GeoPackage can store a layer with no coordinate system: it reads back with none (the
    # config declares it), every row and coordinate untouched. (GeoJSON cannot: RFC 7946 makes
    # every GeoJSON file WGS84, so it reads back as EPSG:4326.)
    b = tiny_buildings().set_crs(None, allow_override=True)
    b.to_file(tmp_path / "b.gpkg", layer="buildings", driver="GPKG")
    gdf, _ = read_layer_file(tmp_path / "b.gpkg")
    assert isinstance(gdf, gpd.GeoDataFrame)
    assert gdf.crs is None
    assert len(gdf) == len(b) and list(gdf["building_id"]) == list(b["building_id"])
    assert gdf.geometry.geom_equals_exact(b.geometry.reset_index(drop=True), 1e-12).all()
    b.to_file(tmp_path / "b.geojson", driver="GeoJSON")
    assert read_layer_file(tmp_path / "b.geojson")[0].crs == "EPSG:4326"


# --------------------------------------------------------------------------------------------
# Files a reader cannot take end in an InputError naming the file (and row, sheet or header).


def _hydrants_text(tmp_path) -> list[str]:
    lon, lat = tiny_hydrants_wgs84()
    path = write_hydrants_csv(tmp_path / "h.csv", lon, lat, encoding="utf-8")
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("content", [b"", b"   \r\n\r\n", "\ufeff".encode()])
def test_empty_or_blank_csv(tmp_path, content):
    (tmp_path / "h.csv").write_bytes(content)
    with pytest.raises(InputError, match=r"h\.csv: the file is empty"):
        read_layer_file(tmp_path / "h.csv")


def test_row_with_an_extra_field_names_the_spreadsheet_row(tmp_path):
    lines = _hydrants_text(tmp_path)
    lines[3] += ",surplus"  # the 4th line: spreadsheet row 4 (header = row 1)
    (tmp_path / "h.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"h\.csv: row 4: the row has 6 fields but the header"):
        read_layer_file(tmp_path / "h.csv")


def test_unclosed_quote_names_the_row_where_it_opens(tmp_path):
    lines = _hydrants_text(tmp_path)
    lines[2] = '"' + lines[2]
    (tmp_path / "h.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"h\.csv: row 3: a double quote opens a value"):
        read_layer_file(tmp_path / "h.csv")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le-bom"])
def test_utf16_csv_comma_or_tab_separated(tmp_path, encoding):
    text = "\n".join(_hydrants_text(tmp_path)) + "\n"
    if encoding == "utf-16-le-bom":  # Excel's "Unicode text": tab-separated UTF-16
        raw = b"\xff\xfe" + text.replace(",", "\t").encode("utf-16-le")
    else:
        raw = text.encode("utf-16")
    (tmp_path / "h.csv").write_bytes(raw)
    gdf, source = read_layer_file(tmp_path / "h.csv")
    assert len(gdf) == 6 and source.encoding == "utf-16"
    assert gdf["状态"].iloc[-1] == "损坏"


def test_duplicated_header_stops_naming_both_columns(tmp_path):
    lines = _hydrants_text(tmp_path)
    lines = [line + (",状态" if i == 0 else ",x") for i, line in enumerate(lines)]
    (tmp_path / "h.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_layer_file(tmp_path / "h.csv")
    assert str(exc.value) == (
        f"{tmp_path / 'h.csv'}: row 1, column '状态': the header appears twice, "
        "in columns B and F; rename one"
    )


def test_mapping_onto_a_column_the_file_already_has(tmp_path):
    lines = _hydrants_text(tmp_path)
    lines = [line + (",hydrant_id" if i == 0 else ",x") for i, line in enumerate(lines)]
    (tmp_path / "h.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"column '编号': the config maps this header onto"):
        read_layer_file(tmp_path / "h.csv", columns={"编号": "hydrant_id"})


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "Infinity"])
def test_non_finite_coordinate(tmp_path, value):
    lines = _hydrants_text(tmp_path)
    cells = lines[2].split(",")
    cells[-2] = value  # the longitude column (the header is 编号,状态,经度,纬度)
    lines[2] = ",".join(cells)
    (tmp_path / "h.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_layer_file(tmp_path / "h.csv")
    assert "row 3, column '经度': coordinate is not a finite number" in str(exc.value)


def _excel(tmp_path) -> bytes:
    lon, lat = tiny_hydrants_wgs84()
    path = tmp_path / "h.xlsx"
    pd.DataFrame({"编号": ["H1", "H2"], "lon": lon[:2], "lat": lat[:2]}).to_excel(
        path, index=False, sheet_name="台账"
    )
    return path.read_bytes()


def test_legacy_xls_says_how_to_save_it(tmp_path):
    # An Excel 97-2003 file starts with the OLE2 signature; xlrd is not a dependency.
    (tmp_path / "h.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(InputError, match=r"h\.xls: legacy Excel .*save it as \.xlsx or CSV"):
        read_layer_file(tmp_path / "h.xls")


@pytest.mark.parametrize("damage", ["truncated", "not a workbook", "empty"])
def test_damaged_xlsx(tmp_path, damage):
    raw = _excel(tmp_path)
    raw = {"truncated": raw[: len(raw) // 2], "not a workbook": b"hello", "empty": b""}[damage]
    (tmp_path / "h.xlsx").write_bytes(raw)
    with pytest.raises(InputError, match=r"h\.xlsx: cannot read as an Excel workbook"):
        read_layer_file(tmp_path / "h.xlsx")


def test_missing_sheet_lists_the_sheets(tmp_path):
    _excel(tmp_path)
    with pytest.raises(
        InputError, match=r"h\.xlsx: no sheet '汇总'; the workbook has sheets \['台账'\]"
    ):
        read_layer_file(tmp_path / "h.xlsx", layer="汇总")
    gdf, source = read_layer_file(tmp_path / "h.xlsx", layer="台账")
    assert len(gdf) == 2 and source.feature(0) == "row 2"


def test_excel_duplicated_header(tmp_path):
    pd.DataFrame([["编号", "lon", "lat", "编号"], ["H1", 121.5, 31.2, "H9"]]).to_excel(
        tmp_path / "h.xlsx", index=False, header=False
    )
    with pytest.raises(
        InputError, match=r"column '编号': the header appears twice, in columns A and D"
    ):
        read_layer_file(tmp_path / "h.xlsx")


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("b.gpkg", b"SQLite format 3\x00" + bytes(200), "cannot read as a GIS layer"),
        (
            "b.geojson",
            b'{"type": "FeatureCollection", "features": [{',
            "cannot read as a GIS layer",
        ),
        ("b.geojson", b"", "cannot read as a GIS layer"),
        ("b.parquet", b"PAR1garbage", "cannot read as a GIS layer"),
        ("b.shp", bytes(100), "cannot read as a GIS layer"),
    ],
    ids=["gpkg", "geojson-cut", "geojson-empty", "parquet", "shp-alone"],
)
def test_unreadable_gis_files(tmp_path, name, content, words):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError) as exc:
        read_layer_file(tmp_path / name)
    assert str(exc.value).startswith(f"{tmp_path / name}: {words}")


def test_missing_gpkg_layer_lists_the_layers(tmp_path):
    tiny_buildings().to_file(tmp_path / "b.gpkg", layer="buildings")
    with pytest.raises(
        InputError, match=r"b\.gpkg: no layer 'bldg'; the file has layers \['buildings'\]"
    ):
        read_layer_file(tmp_path / "b.gpkg", layer="bldg")
    with pytest.raises(InputError, match=r"b\.gpkg: no layer 9223372036854775807; the file has"):
        read_layer_file(tmp_path / "b.gpkg", layer=2**63 - 1)  # by position: beyond any index
    assert len(read_layer_file(tmp_path / "b.gpkg", layer=0)[0]) == len(tiny_buildings())


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(InputError, match="is a folder, not a layer file"):
        read_layer_file(tmp_path)


def test_parquet_without_geometry_is_one_line(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(InputError) as exc:
        read_layer_file(tmp_path / "b.parquet")
    msg = str(exc.value)
    assert msg.startswith(f"{tmp_path / 'b.parquet'}: cannot read as a GIS layer: Missing geo")
    assert "\n" not in msg and "  " not in msg


def test_rows_after_blank_lines_keep_their_spreadsheet_numbers(tmp_path):
    # A blank line above the header and one inside the data: each data row's index stays its
    # position in the file, so validation names the row a spreadsheet shows (header = row 2).
    from firegrid.spatial.io.layers import SCHEMAS
    from firegrid.spatial.io.validate import coerce_layer

    lines = _hydrants_text(tmp_path)
    header, rows = lines[0], lines[1:]
    bad = rows[3].split(",")
    status = header.split(",").index("状态")
    bad[status] = "坏了一半"  # not a status FireGrid knows
    rows[3] = ",".join(bad)
    text = "\n".join(["", header, rows[0], "", *rows[1:]]) + "\n"
    (tmp_path / "h.csv").write_text(text, encoding="utf-8")
    raw, source = read_layer_file(
        tmp_path / "h.csv", lon="经度", lat="纬度", columns={"编号": "hydrant_id", "状态": "status"}
    )
    assert len(raw) == len(rows)
    # file lines: 1 blank, 2 header, 3 rows[0], 4 blank, 5 rows[1], 6 rows[2], 7 rows[3]
    _, report = coerce_layer(raw.set_crs("EPSG:4326"), SCHEMAS["hydrants"], source)
    assert any("row 7" in e and "状态" in e for e in report.errors), report.errors
