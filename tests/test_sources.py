"""Layer sources without a server: which engine reads what, the source kept for messages, the
database URL and table name as checked and shown (the tables themselves: test_database.py)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from firegrid.spatial.errors import InputError
from firegrid.spatial.io.database import TableName, is_database_url, shown_url
from firegrid.spatial.io.layers import SCHEMAS
from firegrid.spatial.io.readers import read_layer, read_layer_file
from firegrid.spatial.io.sources import LayerSource, attach_source, locate, source_of
from firegrid.spatial.io.validate import coerce_layer
from tests.conftest import tiny_buildings, tiny_hydrants_wgs84, write_hydrants_csv


@pytest.mark.parametrize(
    "url,shown",
    [
        ("postgresql://gis:s3cret@db.example:5433/city", "postgresql://gis@db.example:5433/city"),
        ("postgres://gis:p%40ss@db/city?sslmode=require", "postgres://gis@db/city?sslmode=require"),
        ("postgresql://gis:a@b@db/city", "postgresql://gis@db/city"),  # an unescaped @ too
        ("postgresql://:pw@db/city", "postgresql://db/city"),
        (
            "postgresql://gis@/city?host=/tmp/pg&password=s3cret&port=5433",
            "postgresql://gis@/city?host=/tmp/pg&port=5433",
        ),
        ("postgresql://gis@db/city", "postgresql://gis@db/city"),
    ],
)
def test_shown_url_has_no_password(url, shown):
    assert shown_url(url) == shown


@pytest.mark.parametrize(
    "where,expected",
    [
        ("postgresql://u@h/db", True),
        ("  POSTGRES://u@h/db", True),
        ("postgresql+psycopg://u@h/db", True),
        ("postgresql+asyncpg://u@h/db", False),
        ("data/buildings.gpkg", False),
        ("postgresql.gpkg", False),
        (Path("postgresql://u@h/db"), False),  # a Path is a file; a URL is kept as text
        ("https://example.org/b.geojson", False),
    ],
)
def test_database_urls_are_told_from_paths(where, expected):
    assert is_database_url(where) is expected


def test_table_names_are_split_and_checked():
    assert TableName.parse("gis.buildings", where="db") == TableName("gis", "buildings")
    assert TableName.parse("buildings", where="db") == TableName("public", "buildings")
    assert str(TableName.parse(' "Odd" Name.x; y ', where="db")) == '"Odd" Name.x; y'
    for bad, why in [
        (None, 'needs layer = "schema.table"'),
        ("  ", 'needs layer = "schema.table"'),
        ("a.b.c", "more than one dot"),
        ("a.", "empty"),
        ("a.b\nc", "control character"),
        ("a." + "表" * 22, "longer than PostgreSQL's 63 bytes"),  # 66 bytes in UTF-8
    ]:
        with pytest.raises(InputError, match=why) as exc:
            TableName.parse(bad, where="postgresql://u@h/db")
        assert str(exc.value).startswith("postgresql://u@h/db: ")
    assert TableName.parse("a." + "表" * 21, where="db").table == "表" * 21  # 63 bytes


def test_a_database_url_needs_a_table(tmp_path):
    with pytest.raises(InputError, match=r"^postgresql://u@h/db: a database layer needs layer ="):
        read_layer("postgresql://u:pw@h/db")


def test_a_frame_is_read_like_a_file(tmp_path):
    frame = tiny_buildings().set_index("building_id", drop=False)
    gdf, source = read_layer(frame, columns={"use": "kind"})
    assert list(gdf.index) == list(range(len(frame))) and "kind" in gdf and "use" not in gdf
    assert gdf.crs == frame.crs and source.feature(3) == "row 3"
    assert source.column("kind") == ("use", "kind")
    assert "use" in frame  # the analyst's frame is left as it was
    with pytest.raises(InputError, match="^in-memory GeoDataFrame: column 'x': lon = / lat ="):
        read_layer(frame, lon="x", lat="y")
    with pytest.raises(InputError, match="^in-memory GeoDataFrame: the frame has no geometry"):
        read_layer(gpd.GeoDataFrame({"building_id": ["B1"]}))


def test_read_layer_reads_files_as_read_layer_file(tmp_path):
    lon, lat = tiny_hydrants_wgs84()
    path = write_hydrants_csv(tmp_path / "h.csv", lon, lat)
    columns = {"编号": "hydrant_id", "状态": "status"}
    by_layer, source = read_layer(str(path), columns=columns)
    by_file, file_source = read_layer_file(path, columns=columns)
    assert by_layer.equals(by_file) and source == file_source
    assert source.file == str(path) and source.feature(0) == "row 2"


def test_a_bad_cell_in_a_frame_is_named_by_its_row():
    frame = tiny_buildings()
    frame.loc[6, "floors"] = 999
    gdf, source = read_layer(frame)
    _, report = coerce_layer(gdf, SCHEMAS["buildings"], source)
    assert any(
        e.startswith("in-memory GeoDataFrame: row 6 (building_id B006), column 'floors'")
        for e in report.errors
    ), report.errors


def test_the_source_survives_in_attrs_for_later_messages():
    # A table's source (URL and table) is kept like a file's, and a later error names it.
    source = LayerSource("postgresql://gis@db/city gis.hazards", row_label="row", row_base=1)
    source.headers = {"category": "类别"}
    gdf = tiny_buildings().drop(index=[2])  # row 3 of the table was dropped in validation
    kept = attach_source(gdf, source)
    found, rows = source_of(kept)
    assert found == source and rows.tolist() == [0, 1, *range(3, 12)]
    where = locate(kept, 2, "category", layer="buildings")
    assert where == {
        "file": "postgresql://gis@db/city gis.hazards",
        "feature": "row 4 (building_id B003)",
        "column": ("类别", "category"),
    }
    assert np.array_equal(kept.index, np.arange(len(gdf)))
