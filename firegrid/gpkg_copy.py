"""Layers copied from one GeoPackage into another as SQLite stores them, and a file's layer order.

GDAL holds Python's lock while it writes a GeoPackage, so two layers of a city are written at
once only by two processes into two files (:func:`firegrid.spatial.runtime.forked`).
:func:`copy_layers` then moves the layers of one file into the other without decoding a row:
each table and its indexes by SQLite's transfer of whole records (``INSERT INTO … SELECT *``
into an empty table of the same definition), its R-tree by its shadow tables, then its
triggers and its rows of the ``gpkg_*`` tables. :func:`order_layers` puts the layers back in
the order they would have been written in one file.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from firegrid.gpkg_index import sql_name, table_exists

# The GeoPackage tables that name a layer by ``table_name``, in the order they are filled.
_LAYER_ROWS = ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents")
# Other gpkg_* tables: a file whose copied layers have rows in them is not copied.
_KNOWN = {*_LAYER_ROWS, "gpkg_spatial_ref_sys", "gpkg_tile_matrix", "gpkg_tile_matrix_set"}
_RTREE_SHADOWS = ("node", "rowid", "parent")


def copy_layers(source: str | Path, target: str | Path, tables: Sequence[str]) -> None:
    """Copy the tables ``tables`` of the GeoPackage ``source`` into ``target``.

    Each table comes with its indexes, triggers, R-tree spatial index, feature count and
    ``gpkg_contents``, ``gpkg_geometry_columns`` and ``gpkg_extensions`` rows, and the
    spatial reference systems its layer uses when ``target`` lacks them. The rows are
    SQLite's records as written, so the copied layer reads back identical.

    Raises
    ------
    ValueError
        When a table exists in ``target`` already, a spatial reference system id means
        another system there, or ``source`` holds metadata of the tables this does not copy
        (``gpkg_data_columns`` …). Nothing is copied then.
    """
    with contextlib.closing(sqlite3.connect(target, isolation_level=None)) as con:
        con.execute("ATTACH DATABASE ? AS src", (str(source),))
        # The target is a run's file being written, synced once finished (as GDAL writes it,
        # firegrid.reports): the rollback journal is kept in memory, not written to disk
        # (5 M buildings' run: the copy in 4.7 s instead of 6.5 s). A refused copy still
        # rolls back; a crash leaves only the unfinished file, which is not swapped in.
        con.execute("PRAGMA main.journal_mode = MEMORY")
        con.execute("PRAGMA synchronous = OFF")
        con.execute("BEGIN")
        try:
            _check_copyable(con, tables)
            _copy_spatial_ref_sys(con, tables)
            for table in tables:
                _copy_table(con, table)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        con.execute("DETACH DATABASE src")


def order_layers(path: str | Path, names: Iterable[str]) -> None:
    """Store the rows that name a table in ``gpkg_contents``, ``gpkg_geometry_columns``,
    ``gpkg_extensions``, ``gpkg_ogr_contents`` and ``sqlite_sequence`` of ``path`` in the
    order of ``names`` (tables not named after them, as they were): as one process writing
    the tables in that order stores them. GDAL, and so GeoPandas and QGIS, list the layers
    in this order."""
    order = [(i, str(n).lower()) for i, n in enumerate(names)]
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as con:
        con.execute("BEGIN")
        con.execute("CREATE TEMP TABLE layer_order (pos INTEGER, name TEXT)")
        con.executemany("INSERT INTO temp.layer_order VALUES (?, ?)", order)
        for table, key in [*((t, "table_name") for t in _LAYER_ROWS), ("sqlite_sequence", "name")]:
            if table_exists(con, table):
                _reorder(con, table, key)
        con.execute("DROP TABLE temp.layer_order")
        con.execute("COMMIT")


def _reorder(con, table: str, key: str) -> None:
    con.execute(f"CREATE TEMP TABLE kept AS SELECT * FROM main.{table}")
    con.execute(f"DELETE FROM main.{table}")
    con.execute(
        f"INSERT INTO main.{table} SELECT k.* FROM temp.kept AS k LEFT JOIN temp.layer_order "
        f"AS o ON o.name = lower(k.{key}) ORDER BY o.pos IS NULL, o.pos, k.rowid"
    )
    con.execute("DROP TABLE temp.kept")


def _check_copyable(con, tables: Sequence[str]) -> None:
    lowered = [t.lower() for t in tables]
    for table in tables:
        if table_exists(con, table):
            raise ValueError(f"table {table!r} exists in the target already")
    others = [
        name
        for (name,) in con.execute(
            "SELECT name FROM src.sqlite_master WHERE type = 'table' AND name LIKE 'gpkg\\_%' "
            "ESCAPE '\\'"
        )
        if name.lower() not in _KNOWN
    ]
    for name in others:
        columns = {r[1].lower() for r in con.execute(f"PRAGMA src.table_info({sql_name(name)})")}
        if "table_name" not in columns:
            continue
        marks = ", ".join("?" * len(lowered))
        found = con.execute(
            f"SELECT 1 FROM src.{sql_name(name)} WHERE lower(table_name) IN ({marks}) LIMIT 1",
            lowered,
        ).fetchone()
        if found:
            raise ValueError(f"{name} of the source describes a copied table; not copied")


def _copy_spatial_ref_sys(con, tables: Sequence[str]) -> None:
    """The source's spatial reference systems the tables use, unless ``target`` has each
    id as the same system; an id meaning another system there stops the copy."""
    marks = ", ".join("?" * len(tables))
    ids = {
        srs
        for (srs,) in con.execute(
            f"SELECT srs_id FROM src.gpkg_contents WHERE srs_id IS NOT NULL AND table_name IN "
            f"({marks}) UNION SELECT srs_id FROM src.gpkg_geometry_columns WHERE table_name IN "
            f"({marks})",
            [*tables, *tables],
        )
    }
    for srs in sorted(ids):
        theirs = con.execute("SELECT * FROM src.gpkg_spatial_ref_sys WHERE srs_id = ?", (srs,))
        theirs = theirs.fetchone()
        ours = con.execute("SELECT * FROM main.gpkg_spatial_ref_sys WHERE srs_id = ?", (srs,))
        ours = ours.fetchone()
        if ours is None:
            con.execute(
                "INSERT INTO main.gpkg_spatial_ref_sys SELECT * FROM src.gpkg_spatial_ref_sys "
                "WHERE srs_id = ?",
                (srs,),
            )
        elif ours != theirs:
            raise ValueError(f"spatial reference system {srs} differs between the files")


def _copy_table(con, table: str) -> None:
    q = sql_name(table)
    objects = con.execute(
        "SELECT type, sql FROM src.sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
        "ORDER BY type = 'trigger', rowid",
        (table,),
    ).fetchall()
    for kind, sql in objects:
        if kind != "trigger":
            con.execute(sql)  # the table, then its indexes
    con.execute(f"INSERT INTO main.{q} SELECT * FROM src.{q}")
    for rtree in _rtrees(con, table):
        _copy_rtree(con, rtree)
    for kind, sql in objects:
        if kind == "trigger":  # after the rows: an R-tree trigger would index each one again
            con.execute(sql)
    for meta in _LAYER_ROWS:
        if not table_exists(con, meta, schema="src"):
            continue
        if not table_exists(con, meta):
            (sql,) = con.execute(
                "SELECT sql FROM src.sqlite_master WHERE name = ?", (meta,)
            ).fetchone()
            con.execute(sql)
        con.execute(
            f"INSERT INTO main.{meta} SELECT * FROM src.{meta} WHERE table_name = ?", (table,)
        )
    if table_exists(con, "sqlite_sequence", schema="src"):
        seq = con.execute("SELECT seq FROM src.sqlite_sequence WHERE name = ?", (table,))
        if (row := seq.fetchone()) is not None:
            con.execute("DELETE FROM main.sqlite_sequence WHERE name = ?", (table,))
            con.execute("INSERT INTO main.sqlite_sequence (name, seq) VALUES (?, ?)", (table, *row))


def _rtrees(con, table: str) -> list[str]:
    if not table_exists(con, "gpkg_extensions", schema="src"):
        return []
    rows = con.execute(
        "SELECT column_name FROM src.gpkg_extensions WHERE table_name = ? AND "
        "extension_name = 'gpkg_rtree_index'",
        (table,),
    )
    return [f"rtree_{table}_{column}" for (column,) in rows]


def _copy_rtree(con, rtree: str) -> None:
    (sql,) = con.execute("SELECT sql FROM src.sqlite_master WHERE name = ?", (rtree,)).fetchone()
    con.execute(sql)
    for shadow in _RTREE_SHADOWS:
        name = sql_name(f"{rtree}_{shadow}")
        con.execute(f"DELETE FROM main.{name}")
        con.execute(f"INSERT INTO main.{name} SELECT * FROM src.{name}")
