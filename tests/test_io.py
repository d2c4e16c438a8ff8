import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from spatial.errors import InputError
from spatial.io import read_csv_any_encoding, read_layer_file
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


def test_geodataframe_without_crs_is_kept(tmp_path):
    b = tiny_buildings().set_crs(None, allow_override=True)
    b.to_file(tmp_path / "b.geojson", driver="GeoJSON")
    gdf, _ = read_layer_file(tmp_path / "b.geojson")
    assert isinstance(gdf, gpd.GeoDataFrame)
