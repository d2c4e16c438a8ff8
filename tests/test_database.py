"""Layers read from PostGIS tables, against a real server started for the session.

Without PostgreSQL and PostGIS installed the tests skip with the reason (``apt-get install
postgresql postgis``); under CI they fail instead (tests/_postgis.py).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from psycopg import sql

from firegrid.cli import main
from firegrid.spatial.errors import InputError
from firegrid.spatial.io.layers import SCHEMAS
from firegrid.spatial.io.readers import read_layer
from firegrid.spatial.io.validate import coerce_layer
from tests import _postgis as postgis
from tests._postgis import PostGIS, postgis_server, write_table
from tests.conftest import DEMO

PASSWORD = "s3cret-Pw"  # trust auth ignores it: it is there to be kept out of messages

DEMO_LAYERS = {
    "grids": ("grids.gpkg", "grids"),
    "buildings": ("buildings.gpkg", "buildings"),
    "water_sources": ("water_sources.geojson", None),
    "incidents": ("incidents.gpkg", "incidents"),
    "hydrants": ("hydrants_wgs84.gpkg", None),
}


@pytest.fixture(scope="session")
def server():
    with postgis_server() as running:
        yield running


@pytest.fixture(scope="session")
def demo_tables(server: PostGIS) -> dict[str, gpd.GeoDataFrame]:
    """The demo's GIS layers as read from their files, each also written to ``demo.<name>``."""
    files = {}
    with server.connect() as conn:
        for name, (file, layer) in DEMO_LAYERS.items():
            files[name] = read_layer(DEMO / file, layer=layer)[0]
            write_table(conn, files[name], "demo", name)
    return files


def _same_layer(table: gpd.GeoDataFrame, file: gpd.GeoDataFrame) -> None:
    table = table.drop(columns="fid")  # the key write_table and write_postgis add
    assert list(table.columns) == list(file.columns)
    assert table.crs == file.crs
    attributes = [c for c in file.columns if c != "geometry"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(table[attributes]), pd.DataFrame(file[attributes]), check_dtype=False
    )
    assert shapely.equals_exact(table.geometry.values, file.geometry.values, tolerance=1e-9).all()


@pytest.mark.parametrize("name", list(DEMO_LAYERS))
def test_demo_table_reads_as_its_file(server, demo_tables, name):
    table, source = read_layer(server.url, layer=f"demo.{name}")
    _same_layer(table, demo_tables[name])
    assert source.file == f"{server.url} demo.{name}"
    assert source.feature(0) == "row 1"


def test_sqlalchemy_spelling_of_the_url_reads_the_same_table(server, demo_tables):
    url = server.url.replace("postgresql:", "postgresql+psycopg:")
    table, source = read_layer(url, layer="demo.grids")
    assert table.equals(read_layer(server.url, layer="demo.grids")[0])
    assert source.file.startswith("postgresql+psycopg://postgres@/postgres?")


def test_config_headers_map_for_a_table_as_for_a_file(server, demo_tables):
    columns = {"hydrant_id": "编号", "status": "状态"}
    table, source = read_layer(server.url, layer="demo.hydrants", columns=columns)
    assert {"编号", "状态"} <= set(table.columns) and "status" not in table
    assert source.column("状态") == ("status", "状态")
    with pytest.raises(InputError, match="maps header"):
        read_layer(server.url, layer="demo.hydrants", columns={"编号": "hydrant_id"})


def test_bad_value_names_url_table_and_row_without_password(server, demo_tables, tmp_path):
    buildings = demo_tables["buildings"].copy()
    buildings.loc[4, "floors"] = 999.0  # above the schema's 200
    with server.connect() as conn:
        write_table(conn, buildings, "bad", "buildings")
    url = server.url_with(password=PASSWORD)
    table, source = read_layer(url, layer="bad.buildings")
    _, report = coerce_layer(table, SCHEMAS["buildings"], source)
    [line] = [e for e in report.errors if "floors" in e]
    ident = buildings["building_id"].iloc[4]
    assert line.startswith(f"{server.url} bad.buildings: row 5 (building_id {ident})")
    assert PASSWORD not in line and "\n" not in line
    # The same value in a file is named the same way, by its path and feature.
    path = tmp_path / "bad.gpkg"
    buildings.to_file(path, layer="buildings")
    from_file, file_source = read_layer(path)
    _, file_report = coerce_layer(from_file, SCHEMAS["buildings"], file_source)
    [file_line] = [e for e in file_report.errors if "floors" in e]
    assert file_line.replace(f"{path}: feature 5", "") == line.replace(
        f"{server.url} bad.buildings: row 5", ""
    )
    with pytest.raises(InputError) as exc:
        report.raise_if_errors()
    assert "bad.buildings: row 5" in str(exc.value) and PASSWORD not in str(exc.value)


HAZARD_HEADERS = {
    "隐患编号": "hazard_id",
    "建筑编号": "building_id",
    "类别": "category",
    "发现日期": "found_on",
    "整改期限": "deadline",
    "整改日期": "rectified_on",
    "描述": "description",
}


def test_hazard_ledger_as_a_table_validates_as_its_csv(server):
    # The ledger kept in the database: points instead of 经度/纬度, real date columns.
    raw, source = read_layer(DEMO / "hazards.csv", columns=HAZARD_HEADERS)
    expected, report = coerce_layer(raw.set_crs("EPSG:4326"), SCHEMAS["hazards"], source)
    assert report.ok
    ledger = raw.set_crs("EPSG:4326").rename(columns={v: k for k, v in HAZARD_HEADERS.items()})
    dates = ["发现日期", "整改期限", "整改日期"]
    with server.connect() as conn:
        write_table(conn, ledger, "ledger", "hazards")
        alter = sql.SQL(", ").join(
            sql.SQL("ALTER COLUMN {0} TYPE date USING nullif({0}, '')::date").format(
                sql.Identifier(c)
            )
            for c in dates
        )
        conn.execute(sql.SQL("ALTER TABLE ledger.hazards {}").format(alter))
    table, table_source = read_layer(server.url, layer="ledger.hazards", columns=HAZARD_HEADERS)
    assert all(table[HAZARD_HEADERS[c]].dropna().map(type).eq(date).all() for c in dates)
    validated, table_report = coerce_layer(table, SCHEMAS["hazards"], table_source)
    assert table_report.ok, table_report.lines()
    pd.testing.assert_frame_equal(
        pd.DataFrame(validated.drop(columns=["geometry", "fid"])),
        pd.DataFrame(expected.drop(columns="geometry")),
        check_dtype=False,
    )
    assert shapely.equals_exact(
        validated.geometry.values, expected.geometry.values, tolerance=1e-9
    ).all()


def test_rows_come_in_primary_key_order(server, demo_tables):
    grids = demo_tables["grids"]
    with server.connect() as conn:
        write_table(conn, grids, "keyed", "grids", key="gid")
        # An update writes a new row version at the end of the heap: without ORDER BY on the
        # key, the first row would come back last.
        conn.execute(sql.SQL("UPDATE keyed.grids SET name = name || '' WHERE gid = 1"))
    table, _ = read_layer(server.url, layer="keyed.grids")
    assert table["gid"].tolist() == list(range(1, len(grids) + 1))
    _same_layer(table.drop(columns="gid").assign(fid=0), grids)


def test_srid_gives_the_crs(server, demo_tables):
    utm = demo_tables["water_sources"].to_crs("EPSG:32651")
    with server.connect() as conn:
        write_table(conn, utm, "srid", "utm")
        write_table(
            conn, demo_tables["water_sources"].set_crs(None, allow_override=True), "srid", "none"
        )
    table, _ = read_layer(server.url, layer="srid.utm")
    assert table.crs == "EPSG:32651"
    assert shapely.equals_exact(table.geometry.values, utm.geometry.values, tolerance=1e-9).all()
    assert read_layer(server.url, layer="srid.none")[0].crs is None  # the config declares it


def test_mixed_srids_are_refused(server, demo_tables):
    with server.connect() as conn:
        write_table(conn, demo_tables["water_sources"], "srid", "mixed")
        conn.execute("ALTER TABLE srid.mixed ALTER COLUMN geom TYPE geometry")
        conn.execute(
            "UPDATE srid.mixed SET geom = ST_Transform(geom, 32651) WHERE kind = %s", ("natural",)
        )
    with pytest.raises(
        InputError, match=r"srid\.mixed: the geometries have different SRIDs \[4326, 32651\]"
    ):
        read_layer(server.url, layer="srid.mixed")


def test_missing_table_is_named_with_the_tables_there(server, demo_tables):
    with pytest.raises(InputError) as exc:
        read_layer(server.url_with(password=PASSWORD), layer="demo.bulidings")
    message = str(exc.value)
    assert message.startswith(f"{server.url} demo.bulidings: no table 'demo.bulidings'")
    assert "'demo.buildings'" in message and PASSWORD not in message


def test_table_without_geometry(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE plain (id int, name text)")
    with pytest.raises(
        InputError,
        match=r"public\.plain: the table has no geometry column; it has columns \['id', 'name'\]",
    ):
        read_layer(server.url, layer="plain")


def test_sql_in_a_table_name_is_only_ever_a_name(server, demo_tables):
    water = demo_tables["water_sources"]
    with server.connect() as conn:
        write_table(conn, water, "public", "victim")
        write_table(conn, water, "public", "x; drop table victim")
    # A table whose name is SQL is quoted: it is read like any other.
    table, source = read_layer(server.url, layer="x; drop table victim")
    _same_layer(table, water)
    assert source.file == f"{server.url} public.x; drop table victim"
    for attack in ('public.x"; drop table victim; --', "victim; drop table victim"):
        with pytest.raises(InputError, match="no table"):
            read_layer(server.url, layer=attack)
    for refused in ("a.b.c", ".victim", "public.\x00victim", "public." + "v" * 64):
        with pytest.raises(InputError, match='is no "schema.table" name'):
            read_layer(server.url, layer=refused)
    with server.connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.victim").fetchone()[0] == len(water)


def test_skipping_fails_under_ci(monkeypatch):
    # CI installs PostgreSQL and PostGIS: there a missing server is a broken CI, not a skip.
    monkeypatch.setattr(postgis, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI must run the PostGIS tests, but no initdb"):
        postgis.unavailable("no initdb")
    monkeypatch.setattr(postgis, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="no initdb"):
        postgis.unavailable("no initdb")


def test_reading_is_read_only(server, demo_tables, monkeypatch):
    # Even a query the reader did not mean to send could not change the database.
    import firegrid.spatial.io.database as database

    delete = "WITH gone AS (DELETE FROM demo.grids RETURNING 1) SELECT 'x' WHERE %s::oid > 0"
    monkeypatch.setattr(database, "_PRIMARY_KEY", delete)
    with pytest.raises(InputError, match="in a read-only transaction"):
        read_layer(server.url, layer="demo.grids")
    monkeypatch.undo()
    assert len(read_layer(server.url, layer="demo.grids")[0]) == len(demo_tables["grids"])


def test_no_connection_names_the_url_without_password(server, tmp_path):
    url = f"postgresql://postgres:{PASSWORD}@/postgres?host={tmp_path}&port={server.port}"
    with pytest.raises(InputError) as exc:
        read_layer(url, layer="demo.grids")
    message = str(exc.value)
    assert message.startswith(f"postgresql://postgres@/postgres?host={tmp_path}&port=")
    assert "cannot connect to the database" in message and PASSWORD not in message


def test_lon_lat_are_for_ledgers_only(server, demo_tables):
    with pytest.raises(InputError, match="lon = / lat = name the coordinate columns"):
        read_layer(server.url, layer="demo.hydrants", lon="经度", lat="纬度")


def test_database_without_postgis(server):
    with server.connect() as conn:
        conn.execute("CREATE DATABASE bare")
    url = server.url.replace("@/postgres?", "@/bare?")
    with pytest.raises(InputError, match="the database has no PostGIS extension"):
        read_layer(url, layer="public.t")


def test_null_geometry_and_numbers_read_as_a_file_reads_them(server, demo_tables):
    water = demo_tables["water_sources"].copy()
    water.loc[1, "capacity_m3"] = np.nan
    water.loc[2, "geometry"] = None
    with server.connect() as conn:
        write_table(conn, water, "nulls", "water")
        conn.execute("ALTER TABLE nulls.water ALTER COLUMN capacity_m3 TYPE numeric(10, 2)")
    table, _ = read_layer(server.url, layer="nulls.water")
    assert table["capacity_m3"].dtype.kind == "f" and np.isnan(table["capacity_m3"].iloc[1])
    assert table.geometry.iloc[2] is None and table.crs == "EPSG:4326"


def _demo_config_with_buildings_in(url: str, table: str, folder: Path) -> Path:
    """The demo's config with every file absolute and the buildings layer read from ``table``."""
    text = (DEMO / "demo.toml").read_text(encoding="utf-8")
    text = re.sub(r'(file|source) = "([^"]+)"', lambda m: f'{m[1]} = "{DEMO / m[2]}"', text)
    buildings = '[layers.buildings]\nfile = "{}"\nlayer = "{}"\ncrs = "WGS84"\n'
    text = re.sub(
        r"\[layers\.buildings\][^\[]*", buildings.format(url, table) + "\n", text, count=1
    )
    path = folder / "district.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_a_config_whose_buildings_are_a_table(server, demo_tables, tmp_path, capsys):
    url = server.url_with(password=PASSWORD)
    config = _demo_config_with_buildings_in(url, "demo.buildings", tmp_path)
    assert main(["validate", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"{server.url} demo.buildings: {len(demo_tables['buildings'])} buildings read" in out
    assert PASSWORD not in out
    buildings = demo_tables["buildings"].copy()
    buildings.loc[9, "floors"] = 999.0
    with server.connect() as conn:
        write_table(conn, buildings, "broken", "buildings")
    config = _demo_config_with_buildings_in(url, "broken.buildings", tmp_path)
    assert main(["validate", str(config)]) == 2
    captured = capsys.readouterr()
    ident = buildings["building_id"].iloc[9]
    line = f"{server.url} broken.buildings: row 10 (building_id {ident}), column 'floors'"
    assert line in captured.out and PASSWORD not in captured.out + captured.err


# --------------------------------------------------------------------------------------------
# PostGIS as the sink of a run's results (firegrid.store.write_postgis)


def _results() -> dict[str, pd.DataFrame]:
    """Layers holding every kind of column a run writes, and a table without geometry."""
    n = 6
    points = gpd.GeoDataFrame(
        {
            "hydrant_id": [f"H{i}" for i in range(n)],
            "flow_lps": [10.0, np.nan, 15.0, 20.0, 25.0, 30.0],
            "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
            "ok": [True, False, True, True, False, True],
            "found_on": pd.to_datetime(["2026-01-02", None, "2026-03-04"] * 2),
            "turnout": pd.to_timedelta([60, 90, 120, 30, 45, None], unit="s"),
            "tags": [["a", 1], None, "x", 2, None, "y"],
        },
        geometry=[shapely.Point(500_000 + i, 3_450_000 + i) for i in range(n - 1)] + [None],
        crs="EPSG:32651",
    )
    table = pd.DataFrame({"level": [1, 2, 3], "category": ["general", "major", None]})
    return {"hydrants": points, "escalation": table}


def _schemas(server: PostGIS) -> set[str]:
    with server.connect() as conn:
        return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}


def test_results_written_in_one_schema_read_back_as_sources(server, demo_tables):
    from firegrid.store import write_postgis

    layers = {**_results(), "buildings": demo_tables["buildings"]}
    url = server.url_with(password=PASSWORD)
    written = write_postgis(layers, url, schema="run_a")
    assert written == {n: f"run_a.{n}" for n in layers}
    # The demo's buildings, through the existing PostGIS layer source, as read from the file.
    table, _ = read_layer(server.url, layer="run_a.buildings")
    # Without its personal column (contact_phone), as results.gpkg.
    _same_layer(table, demo_tables["buildings"].drop(columns="contact_phone"))
    back, _ = read_layer(server.url, layer="run_a.hydrants")
    want = layers["hydrants"]
    assert back.crs == "EPSG:32651" and back.geometry.iloc[-1] is None
    assert shapely.equals_exact(back.geometry.values[:-1], want.geometry.values[:-1], 0).all()
    assert back["hydrant_id"].tolist() == want["hydrant_id"].tolist()
    assert back["flow_lps"].iloc[0] == 10.0 and np.isnan(back["flow_lps"].iloc[1])
    assert back["n"].iloc[[0, 2]].tolist() == [1, 3] and pd.isna(back["n"].iloc[1])
    assert back["ok"].tolist() == want["ok"].tolist()
    assert back["turnout"].tolist()[:5] == [60.0, 90.0, 120.0, 30.0, 45.0]
    assert back["tags"].iloc[[0, 2, 3]].tolist() == ['["a", 1]', "x", "2"]
    assert pd.isna(back["tags"].iloc[1])
    with server.connect() as conn:
        kinds = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'run_a' AND table_name = 'hydrants'"
            ).fetchall()
        )
        indexes = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'run_a' AND indexdef LIKE '%gist%'"
        ).fetchall()
        rows = conn.execute("SELECT level, category FROM run_a.escalation ORDER BY fid").fetchall()
    assert kinds["n"] == "bigint" and kinds["ok"] == "boolean"
    assert (
        kinds["found_on"] == "timestamp without time zone"
        and kinds["flow_lps"] == "double precision"
    )
    assert len(indexes) == 2  # hydrants and buildings; the table without geometry has none
    assert rows == [(1, "general"), (2, "major"), (3, None)]


def test_a_failing_layer_leaves_no_table_and_no_schema(server):
    from firegrid.store import write_postgis

    layers = _results()
    # PostgreSQL text cannot hold a NUL character: the third layer fails mid-way, after the
    # schema and two tables were created in the transaction.
    bad = pd.DataFrame({"note": ["fine", "nul \x00 inside"]})
    url = server.url_with(password=PASSWORD)
    with pytest.raises(InputError) as caught:
        write_postgis({**layers, "notes": bad}, url, schema="run_fails")
    message = str(caught.value)
    assert "layer 'notes'" in message and "nothing was written" in message
    assert PASSWORD not in message and message.startswith("postgresql://postgres@")
    assert "run_fails" not in _schemas(server)
    # A schema that exists is never written into.
    write_postgis(layers, url, schema="run_b")
    with pytest.raises(InputError, match='schema "run_b" already exists'):
        write_postgis({"other": bad.iloc[:1]}, url, schema="run_b")
    with server.connect() as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'run_b'"
        ).fetchall()
    assert sorted(t[0] for t in tables) == ["escalation", "hydrants"]


def test_names_from_the_data_are_only_names(server):
    from firegrid.store import write_postgis

    name = 'x"; DROP SCHEMA public CASCADE; --'
    frame = gpd.GeoDataFrame(
        {name: [1], "联系电话": ["13912345678"]}, geometry=[shapely.Point(1, 2)], crs=4326
    )
    write_postgis({name: frame}, server.url, schema=name)
    assert "public" in _schemas(server) and name in _schemas(server)
    back, _ = read_layer(server.url, layer=f"{name}.{name}")
    assert back[name].tolist() == [1] and "联系电话" not in back  # personal: dropped
    with pytest.raises(InputError, match="longer than PostgreSQL's 63 bytes"):
        write_postgis({"t" * 64: frame}, server.url, schema="run_long")
    assert "run_long" not in _schemas(server)


def test_run_writes_its_layers_to_the_configured_database(server, tmp_path):
    import tomllib

    from firegrid.config import parse_config
    from firegrid.context import RunContext
    from firegrid.pipeline import run_step, write_run_outputs

    data = tomllib.loads((DEMO / "demo.toml").read_text(encoding="utf-8-sig"))
    data["output"] = {"database": server.url_with(password=PASSWORD)}
    ctx = RunContext(parse_config(data, path=DEMO / "demo.toml"))
    run_step(ctx, "load")
    written = write_run_outputs(ctx, tmp_path / "out", with_map=False)
    assert written["results.gpkg"].exists()
    (note,) = [n for n in ctx.notes if n.startswith("database:")]
    schema = re.search(r"schema (firegrid_demo_subdistrict_synthetic_\d{8}_\d{6}) of", note)[1]
    assert PASSWORD not in note
    grids, _ = read_layer(server.url, layer=f"{schema}.grids")
    assert len(grids) == len(ctx.layers["grids"]) == 75
    assert sorted(gpd.list_layers(written["results.gpkg"])["name"]) == sorted(
        r[0]
        for r in server.connect().execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        )
    )
