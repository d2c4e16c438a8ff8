import re

import pandas as pd

from firegrid.cli import main
from firegrid.config import district_from_config, load_config
from firegrid.spatial.io.district import District
from tests.conftest import SHANGHAI_OSM, requires_shanghai


def test_gpkg_round_trip_keeps_layers_dtypes_and_meta(tiny_district, tmp_path):
    district, report = district_from_config(load_config(tiny_district))
    assert report.ok
    path = district.to_gpkg(tmp_path / "out" / "district.gpkg")
    back = District.from_gpkg(path)
    assert back.name == district.name and back.crs == district.crs and back.as_of == district.as_of
    assert sorted(back.layers) == sorted(district.layers)
    for name, gdf in district.layers.items():
        other = back.layers[name]
        assert other.crs == gdf.crs, name
        # Every column, every row, same order, same dtypes: the whole table, not a sample.
        assert list(other.columns) == list(gdf.columns), name
        assert len(gdf) > 0, name
        pd.testing.assert_frame_equal(
            pd.DataFrame(other.drop(columns=other.geometry.name)).reset_index(drop=True),
            pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).reset_index(drop=True),
            check_exact=True,
            obj=name,
        )
        # Geometry: every row, within a micrometre of the original (metres, working CRS).
        assert other.geometry.name == gdf.geometry.name, name
        same = other.geometry.reset_index(drop=True).geom_equals_exact(
            gdf.geometry.reset_index(drop=True), tolerance=1e-6
        )
        assert same.all(), (name, list(same[~same].index))


def test_boundary_is_level_one_outline(tiny_district):
    district, _ = district_from_config(load_config(tiny_district))
    assert abs(district.boundary.area - 1e6) / 1e6 < 0.05  # about 1 km²


@requires_shanghai()
def test_shanghai_extract_as_network_source(tiny_district, capsys):
    text = tiny_district.read_text(encoding="utf-8").replace(
        "[district]", f"[network]\nsource = '{SHANGHAI_OSM.as_posix()}'\n\n[district]"
    )
    tiny_district.write_text(text, encoding="utf-8")
    config = load_config(tiny_district)
    assert config.network_source == str(SHANGHAI_OSM)
    assert main(["validate", str(tiny_district)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("network:"))
    nodes, edges, oneway = (
        int(n.replace(",", "")) for n in re.findall(r"([\d,]+) (?:nodes|edges|one-way)", line)
    )
    assert nodes > 3000 and edges > 2 * nodes * 0.9 and oneway > 2000


def test_missing_network_file_is_an_error(tiny_district, capsys):
    text = tiny_district.read_text(encoding="utf-8").replace(
        "[district]", "[network]\nsource = 'roads.osm'\n\n[district]"
    )
    tiny_district.write_text(text, encoding="utf-8")
    assert main(["validate", str(tiny_district)]) == 2
    assert "roads.osm: road network file not found" in capsys.readouterr().out


def test_layers_remember_file_rows_after_a_dropped_footprint(tiny_district):
    # A collapsed footprint is dropped; later messages about the rows after it must still name
    # their own feature numbers in the file, and the analyses get a plain 0..n-1 index.
    from shapely.geometry import Polygon

    from firegrid.spatial.io.sources import locate
    from tests.conftest import DLAT, DLON, LAT0, LON0, tiny_buildings

    b = tiny_buildings()
    x, y = LON0 + 0.5 * DLON, LAT0 + 0.5 * DLAT
    b.loc[2, "geometry"] = Polygon([(x, y), (x + 0.001, y), (x + 0.002, y), (x, y)])
    b.to_file(tiny_district.parent / "buildings.geojson", driver="GeoJSON")
    district, report = district_from_config(load_config(tiny_district))
    assert report.ok
    kept = district.buildings
    assert list(kept.index) == list(range(len(b) - 1))
    where = locate(kept, 5, "floors", layer="buildings")
    assert where["file"].endswith("buildings.geojson")
    assert where["feature"] == "feature 7 (building_id B006)"
    assert where["column"] == "floors"


def test_a_layer_from_a_database_table_joins_the_district_as_its_file(tmp_path):
    import geopandas as gpd

    from tests._demo import DEMO, DEMO_CONFIG
    from tests._postgis import postgis_server, write_table

    text = DEMO_CONFIG.read_text(encoding="utf-8")
    # The same config beside the test, its files named by absolute path.
    text = re.sub(r'file = "([^"]+)"', lambda m: f'file = "{(DEMO / m[1]).as_posix()}"', text)
    files, _ = district_from_config(load_config(_write(tmp_path / "files.toml", text)))
    with postgis_server() as server:
        with server.connect() as conn:
            write_table(
                conn, gpd.read_file(DEMO / "buildings.gpkg", layer="buildings"), "demo", "b"
            )
        url = server.url_with(password="s3cret")
        text = text.replace(
            f'file = "{(DEMO / "buildings.gpkg").as_posix()}"\nlayer = "buildings"',
            f'file = "{url}"\nlayer = "demo.b"',
        )
        config = load_config(_write(tmp_path / "table.toml", text))
        assert config.layers["buildings"].file == url  # kept as written, not made a path
        tables, report = district_from_config(config)
    assert report.ok, report.lines()
    assert "s3cret" not in "\n".join(report.lines())
    got, expected = tables.buildings.drop(columns="fid"), files.buildings
    pd.testing.assert_frame_equal(
        pd.DataFrame(got.drop(columns="geometry")), pd.DataFrame(expected.drop(columns="geometry"))
    )
    assert got.geometry.geom_equals_exact(expected.geometry, tolerance=1e-6).all()
    assert sorted(tables.layers) == sorted(files.layers)


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path
