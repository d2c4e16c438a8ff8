"""What a GeoPackage holds, table by table, to compare two files written two ways."""

from __future__ import annotations

import contextlib
import sqlite3


def gpkg_content(path) -> dict:
    """Every schema object and the rows of every table of a GeoPackage (row order kept;
    gpkg_contents' time stamps left out)."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        schema = sorted(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
        tables = [n for t, n, _, sql in schema if t == "table" and "VIRTUAL" not in (sql or "")]
        rows = {}
        for name in tables:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{name}")')]
            keep = ", ".join(f'"{c}"' for c in cols if c != "last_change")
            rows[name] = con.execute(f'SELECT {keep} FROM "{name}" ORDER BY rowid').fetchall()
        checks = con.execute("PRAGMA integrity_check").fetchall()
        trees = [n for t, n, _, sql in schema if t == "table" and "USING rtree" in (sql or "")]
        rtree = [con.execute(f"SELECT rtreecheck('{n}')").fetchone()[0] for n in trees]
    assert checks == [("ok",)] and set(rtree) <= {"ok"}
    return {"schema": schema, "rows": rows}
