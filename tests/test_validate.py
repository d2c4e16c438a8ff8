"""One test per bad-input case: each message names the file, the feature and the column."""

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Polygon, box

from firegrid.cli import main
from firegrid.config import district_from_config, load_config
from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.crs import wgs84_to_bd09, wgs84_to_gcj02
from tests.conftest import (
    DLAT,
    DLON,
    LAT0,
    LON0,
    tiny_buildings,
    tiny_grids,
    tiny_hydrants_wgs84,
    write_hydrants_csv,
)


def errors_of(config_path):
    _, report = district_from_config(load_config(config_path))
    return report


def only_error(report) -> str:
    assert report.errors, report.lines()
    return report.errors[0]


def test_tiny_district_is_clean(tiny_district):
    district, report = district_from_config(load_config(tiny_district))
    assert report.ok, report.lines()
    assert set(district.layers) == {"grids", "buildings", "hydrants", "stations"}
    assert district.crs.to_epsg() == 32651
    assert district.hydrants["status"].tolist()[-1] == "broken"
    assert district.stations["kind"].tolist() == ["fire_station", "micro_station"]
    assert district.stations["turnout_s"].dtype == float


def test_missing_required_column(tiny_district):
    df = pd.read_csv(tiny_district.parent / "hydrants.csv", encoding="gbk", dtype=str).drop(
        columns=["状态"]
    )
    df.to_csv(tiny_district.parent / "hydrants.csv", index=False, encoding="gbk")
    text = tiny_district.read_text(encoding="utf-8").replace('"状态" = "status"\n', "")
    tiny_district.write_text(text, encoding="utf-8")
    msg = only_error(errors_of(tiny_district))
    assert "hydrants.csv" in msg and "column 'status'" in msg and "required column missing" in msg


def test_wrong_type_names_row_and_user_header(tiny_district):
    path = tiny_district.parent / "hydrants.csv"
    df = pd.read_csv(path, encoding="gbk", dtype=str)
    df.loc[3, "流量(L/s)"] = "大"
    df.to_csv(path, index=False, encoding="gbk")
    msg = only_error(errors_of(tiny_district))
    assert "hydrants.csv" in msg and "row 5 (hydrant_id H03)" in msg
    assert "column '流量(L/s)' (flow_lps)" in msg
    assert "not a number" in msg


def test_unknown_category_value(tiny_district):
    path = tiny_district.parent / "hydrants.csv"
    df = pd.read_csv(path, encoding="gbk", dtype=str)
    df.loc[1, "状态"] = "半坏"
    df.to_csv(path, index=False, encoding="gbk")
    msg = only_error(errors_of(tiny_district))
    assert "row 3 (hydrant_id H01)" in msg and "状态" in msg and "'ok'" in msg


def test_invalid_geometry_repaired_and_counted(tiny_district):
    b = tiny_buildings()
    x, y = LON0 + 0.5 * DLON, LAT0 + 0.5 * DLAT
    bowtie = Polygon([(x, y), (x + 0.0003, y + 0.0003), (x + 0.0003, y), (x, y + 0.0003)])
    b.loc[4, "geometry"] = bowtie
    b.to_file(tiny_district.parent / "buildings.geojson", driver="GeoJSON")
    district, report = district_from_config(load_config(tiny_district))
    assert report.ok
    warning = next(w for w in report.warnings if "repaired" in w)
    assert "buildings.geojson" in warning and "repaired 1 invalid" in warning
    assert "feature 5 (building_id B004)" in warning and "geometry" in warning
    assert district.buildings.geometry.is_valid.all()


def test_zero_area_footprint_dropped_with_a_warning(tiny_district):
    # Footprints cut at an extract's edge collapse to a line: real data, not a reason to stop.
    b = tiny_buildings()
    x, y = LON0 + 0.5 * DLON, LAT0 + 0.5 * DLAT
    b.loc[2, "geometry"] = Polygon([(x, y), (x + 0.001, y), (x + 0.002, y), (x, y)])  # no area
    b.to_file(tiny_district.parent / "buildings.geojson", driver="GeoJSON")
    district, report = district_from_config(load_config(tiny_district))
    assert report.ok, report.lines()
    warning = next(w for w in report.warnings if "dropped" in w)
    assert "buildings.geojson" in warning and "dropped 1 feature" in warning
    assert "feature 3 (building_id B002)" in warning and "geometry" in warning
    assert "Valid Geometry" not in warning
    assert len(district.buildings) == len(b) - 1
    assert "B002" not in set(district.buildings["building_id"])


def test_self_intersecting_grid_cell_is_named_as_such(tiny_district):
    g = tiny_grids()
    x0, y0 = LON0 + 0.5 * DLON, LAT0
    x1, y1 = LON0 + DLON, LAT0 + 0.5 * DLAT
    g.loc[g["grid_id"] == "C2-1", "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    g.to_file(tiny_district.parent / "grids.gpkg", layer="grids")
    msg = only_error(errors_of(tiny_district))
    assert "grids.gpkg" in msg and "grid_id C2-1" in msg and "column 'geometry'" in msg
    assert "Self-intersection" in msg and "outside its parent" not in msg


def test_empty_layer(tiny_district):
    tiny_buildings().iloc[:0].to_file(tiny_district.parent / "buildings.geojson", driver="GeoJSON")
    msg = only_error(errors_of(tiny_district))
    assert "buildings.geojson" in msg and "empty" in msg


def test_duplicate_ids(tiny_district):
    b = tiny_buildings()
    b.loc[7, "building_id"] = "B002"
    b.to_file(tiny_district.parent / "buildings.geojson", driver="GeoJSON")
    msg = only_error(errors_of(tiny_district))
    assert "buildings.geojson" in msg and "duplicate id 'B002'" in msg
    assert "feature 3" in msg and "feature 8" in msg and "column 'building_id'" in msg


def _write_hydrants(tiny_district, lon, lat, crs_line):
    write_hydrants_csv(tiny_district.parent / "hydrants.csv", lon, lat)
    text = tiny_district.read_text(encoding="utf-8").replace(
        'crs = "GCJ-02"\nlon', f"{crs_line}\nlon", 1
    )
    tiny_district.write_text(text, encoding="utf-8")


def test_latitude_longitude_swapped(tiny_district):
    lon, lat = tiny_hydrants_wgs84()
    _write_hydrants(tiny_district, lat, lon, 'crs = "WGS84"')
    msg = only_error(errors_of(tiny_district))
    assert "hydrants.csv" in msg and "row 2 (hydrant_id H00)" in msg and "geometry" in msg
    assert "swapped" in msg


def test_gcj02_declared_as_wgs84(tiny_district):
    # GCJ-02 hydrants along the east edge, where the ~450 m offset pushes them out,
    # declared as WGS84.
    _, lat = tiny_hydrants_wgs84()
    _write_hydrants(
        tiny_district, *wgs84_to_gcj02(np.full(6, LON0 + 0.97 * DLON), lat), 'crs = "WGS84"'
    )
    msg = only_error(errors_of(tiny_district))
    assert "hydrants.csv" in msg and "row" in msg and "geometry" in msg
    assert "GCJ-02" in msg and "declared as WGS84" in msg


def test_bd09_declared_as_wgs84(tiny_district):
    _, lat = tiny_hydrants_wgs84()
    _write_hydrants(
        tiny_district, *wgs84_to_bd09(np.full(6, LON0 + 0.97 * DLON), lat), 'crs = "WGS84"'
    )
    msg = only_error(errors_of(tiny_district))
    assert "BD-09" in msg and "hydrants.csv" in msg and "hydrant_id" in msg


def test_far_outside(tiny_district):
    lon, lat = tiny_hydrants_wgs84()
    lon = lon.copy()
    lon[4] += 0.2  # ~19 km east
    _write_hydrants(tiny_district, lon, lat, 'crs = "WGS84"')
    msg = only_error(errors_of(tiny_district))
    assert "row 6 (hydrant_id H04)" in msg and "outside the district" in msg and "geometry" in msg


def test_grid_parent_missing(tiny_district):
    g = tiny_grids()
    g.loc[g["grid_id"] == "C2-1", "parent_id"] = "C9"
    g.to_file(tiny_district.parent / "grids.gpkg", layer="grids")
    msg = only_error(errors_of(tiny_district))
    assert (
        "grids.gpkg" in msg
        and "grid_id C2-1" in msg
        and "parent_id" in msg
        and "'C9' does not exist" in msg
    )


def test_grid_cell_outside_parent(tiny_district):
    g = tiny_grids()
    # Cell C1-1 belongs to C1 (west half) but is drawn in the east half.
    g.loc[g["grid_id"] == "C1-1", "geometry"] = box(
        LON0 + 0.6 * DLON, LAT0, LON0 + 0.9 * DLON, LAT0 + 0.4 * DLAT
    )
    g.to_file(tiny_district.parent / "grids.gpkg", layer="grids")
    msg = only_error(errors_of(tiny_district))
    assert (
        "grids.gpkg" in msg
        and "grid_id C1-1" in msg
        and "geometry" in msg
        and "outside its parent 'C1'" in msg
    )


def test_cli_validate_bad_input_one_line_exit_2(tiny_district, capsys):
    b = tiny_buildings()
    b.loc[7, "building_id"] = "B002"
    b.to_file(tiny_district.parent / "buildings.geojson", driver="GeoJSON")
    assert main(["validate", str(tiny_district)]) == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert any(
        "duplicate id" in line and "buildings.geojson" in line for line in out.out.splitlines()
    )


def test_cli_run_time_error_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[layers.grids]\nfile = 'x.gpkg'\n[nonsense]\n", encoding="utf-8")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown section" in err[0] and "bad.toml" in err[0]


def test_config_unknown_layer_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[layers.grids]\nfile = 'x.gpkg'\nencodng = 'gbk'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[layers.grids\].*encodng"):
        load_config(bad)


def test_raise_if_errors_counts_the_rest(tiny_district):
    b = tiny_buildings()
    b.loc[7, "building_id"] = "B002"
    b.to_file(tiny_district.parent / "buildings.geojson", driver="GeoJSON")
    g = tiny_grids()
    g.loc[g["grid_id"] == "C2-1", "parent_id"] = "C9"
    g.to_file(tiny_district.parent / "grids.gpkg", layer="grids")
    with pytest.raises(InputError, match="1 more problems"):
        errors_of(tiny_district).raise_if_errors()


def test_hazard_naming_unknown_building_is_a_warning(tiny_district):
    import geopandas as gpd
    from shapely.geometry import Point

    hz = gpd.GeoDataFrame(
        {
            "hazard_id": ["Z1", "Z2"],
            "building_id": ["B001", "B999"],
            "category": ["一般", "重大"],
            "found_on": ["2026-01-05", "2026年3月1日"],
            "deadline": ["2026-02-05", ""],
            "rectified_on": ["", ""],
        },
        geometry=[Point(LON0 + 0.5 * DLON, LAT0 + 0.5 * DLAT)] * 2,
        crs="EPSG:4326",
    )
    hz.to_file(tiny_district.parent / "hazards.geojson", driver="GeoJSON")
    with open(tiny_district, "a", encoding="utf-8") as f:
        f.write('\n[layers.hazards]\nfile = "hazards.geojson"\n')
    district, report = district_from_config(load_config(tiny_district))
    assert report.ok
    warning = next(w for w in report.warnings if "B999" in w)
    assert (
        "hazards.geojson" in warning
        and "feature 2 (hazard_id Z2)" in warning
        and "building_id" in warning
    )
    assert district.hazards["category"].tolist() == ["general", "major"]
    assert str(district.hazards["found_on"].iloc[1].date()) == "2026-03-01"
    assert district.hazards["deadline"].isna().iloc[1]


def test_rows_follow_the_readers_index_past_skipped_blank_lines():
    # The readers' contract: the index is each row's 0-based data position in the file, so a
    # ledger whose blank line (spreadsheet row 3) was skipped still names rows as shown.
    import geopandas as gpd
    from shapely.geometry import Point

    from firegrid.spatial.io.layers import SCHEMAS
    from firegrid.spatial.io.sources import LayerSource, attach_source, locate
    from firegrid.spatial.io.validate import coerce_layer

    ledger = gpd.GeoDataFrame(
        {
            "hazard_id": ["a", "b", "c"],
            "category": ["一般"] * 3,
            "found_on": ["2024-01-01", "24.1.1", "2024-01-01"],
        },
        geometry=[Point(LON0, LAT0)] * 3,
        crs="EPSG:4326",
        index=[0, 2, 3],
    )
    source = LayerSource("h.csv", row_label="row", row_base=2)
    _, report = coerce_layer(ledger, SCHEMAS["hazards"], source)
    assert len(report.errors) == 1 and "h.csv: row 4 (hazard_id b)" in report.errors[0]
    ledger.loc[2, "found_on"] = "2024-01-02"
    out, report = coerce_layer(ledger, SCHEMAS["hazards"], source)
    assert report.ok
    layer = attach_source(out, source)
    assert list(layer.index) == [0, 1, 2]
    assert locate(layer, 2, "found_on", layer="hazards")["feature"] == "row 5 (hazard_id c)"


def test_wgs84_declared_as_gcj02_is_named(tiny_district):
    # WGS84 hydrants along the west edge declared GCJ-02: removing an offset that was never
    # there moves them ~450 m west, out of the district. The symmetric of the check above.
    _, lat = tiny_hydrants_wgs84()
    _write_hydrants(tiny_district, np.full(6, LON0 + 0.03 * DLON), lat, 'crs = "GCJ-02"')
    msg = only_error(errors_of(tiny_district))
    assert "hydrants.csv" in msg and "row 2 (hydrant_id H00)" in msg and "geometry" in msg
    assert "WGS84/CGCS2000 data declared as GCJ-02" in msg


@pytest.mark.parametrize("block", [1, 4])
@pytest.mark.parametrize(
    ("mistake", "expected"),
    [("gcj02", "GCJ-02"), ("bd09", "BD-09"), ("far", None)],
)
def test_readings_tried_block_by_block_name_the_same_cause(
    tiny_district, monkeypatch, block, mistake, expected
):
    # A city's layer is moved under each reading a block at a time; with blocks smaller than
    # the layer the cause named (or not) is the one the whole layer gives.
    monkeypatch.setattr("firegrid.spatial.io.validate.READING_BLOCK", block)
    lon, lat = tiny_hydrants_wgs84()
    edge = np.full(6, LON0 + 0.97 * DLON)
    coords = {
        "gcj02": wgs84_to_gcj02(edge, lat),
        "bd09": wgs84_to_bd09(edge, lat),
        "far": (np.where(np.arange(6) == 4, lon + 0.2, lon), lat),
    }[mistake]
    _write_hydrants(tiny_district, *coords, 'crs = "WGS84"')
    msg = only_error(errors_of(tiny_district))
    assert "hydrants.csv" in msg and "outside the district" in msg
    if expected is None:
        assert "likely cause" not in msg
    else:
        assert "likely cause" in msg and expected in msg


def test_a_reading_stops_at_the_first_block_it_refutes(tiny_district, monkeypatch):
    # One hydrant 19 km out: undoing a GCJ-02 offset leaves it out, which refutes that
    # reading at once; the other five are never moved under it.
    import firegrid.spatial.io.validate as validate

    moved = []

    def counting(x, y):
        moved.append(len(x))
        return wgs84_to_gcj02(x, y)

    monkeypatch.setattr(validate, "READING_BLOCK", 1)
    monkeypatch.setattr(validate, "gcj02_to_wgs84", counting)
    lon, lat = tiny_hydrants_wgs84()
    _write_hydrants(tiny_district, np.where(np.arange(6) == 4, lon + 0.2, lon), lat,
                    'crs = "WGS84"')  # fmt: skip
    assert "outside the district" in only_error(errors_of(tiny_district))
    assert moved == [1]
