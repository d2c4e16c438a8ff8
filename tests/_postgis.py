"""A real PostgreSQL + PostGIS server for the database tests, in a temporary folder.

:func:`postgis_server` runs ``initdb`` and ``pg_ctl`` from Debian's packages (``postgresql``,
``postgis``; the binaries live in ``/usr/lib/postgresql/<version>/bin``), listening only on a
unix socket in that folder, so it never touches a system cluster. PostgreSQL refuses to run as
root: as root (CI) the server runs as the ``postgres`` user. Without the binaries or the
extension the tests skip with the reason, except under CI, where they fail (as the browser
tests do, see tests/conftest.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from tests.conftest import IN_CI

PORT = 55432  # names the socket file only: the server listens on no TCP port
INSTALL = "apt-get install postgresql postgis"


@dataclass(frozen=True)
class PostGIS:
    """A running test server: connect with :meth:`connect`, read layers through :attr:`url`."""

    socket_dir: Path
    port: int

    @property
    def url(self) -> str:
        return self.url_with()

    def url_with(self, *, password: str | None = None) -> str:
        """The libpq URL (socket folder as ``?host=``); trust auth ignores a password."""
        user = "postgres" + (f":{password}" if password else "")
        return f"postgresql://{user}@/postgres?host={self.socket_dir}&port={self.port}"

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)


def unavailable(reason: str) -> None:
    """Skip, or under CI fail: CI installs the server, so a missing one is a broken CI."""
    if IN_CI:
        pytest.fail(f"CI must run the PostGIS tests, but {reason}", pytrace=False)
    pytest.skip(reason)


def bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, else Debian's newest version folder."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


@contextmanager
def postgis_server() -> Iterator[PostGIS]:
    """Start a throw-away server with PostGIS; stop it and delete its folder afterwards."""
    bins = bin_dir()
    if bins is None:
        unavailable(f"initdb not found (on PATH or in /usr/lib/postgresql/*/bin): {INSTALL}")
    owner = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="firegrid-pg-"))  # short: a socket path is ≤ 107 bytes
    try:
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        _start(bins, folder, owner)
        server = PostGIS(folder, PORT)
        try:
            _create_postgis(server, bins)
            yield server
        finally:
            _run(bins, owner, folder, "pg_ctl", "-D", "data", "-m", "immediate", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _server_user() -> pwd.struct_passwd | None:
    """The user to run the server as: None (this one) unless root, then ``postgres``."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        unavailable("running as root, and there is no 'postgres' user to run the server as")
    return None


def _run(bins: Path, owner, folder: Path, tool: str, *args: str) -> None:
    as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []} if owner else {}
    done = subprocess.run(
        [str(bins / tool), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        **as_user,
    )
    if done.returncode != 0:
        log = folder / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        pytest.fail(f"{tool} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")


def _start(bins: Path, folder: Path, owner) -> None:
    _run(bins, owner, folder, "initdb", "-D", "data", "--auth=trust", "-U", "postgres",
         "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
    options = f"-k {folder} -p {PORT} -c listen_addresses='' -c fsync=off"
    _run(bins, owner, folder, "pg_ctl", "-D", "data", "-l", "server.log", "-w", "-t", "60",
         "-o", options, "start")  # fmt: skip


def _create_postgis(server: PostGIS, bins: Path) -> None:
    with server.connect() as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
        ).fetchone()
        if available is None:
            unavailable(
                f"the PostGIS extension is not installed for the PostgreSQL in {bins} "
                "(Debian: apt-get install postgis)"
            )
        conn.execute("CREATE EXTENSION postgis")


_SQL_TYPES = {"i": "bigint", "u": "bigint", "f": "double precision", "b": "boolean"}


def write_table(
    conn: psycopg.Connection,
    gdf: gpd.GeoDataFrame,
    schema: str,
    table: str,
    *,
    geometry: str = "geom",
    key: str | None = "fid",
) -> None:
    """Create ``schema.table`` holding ``gdf`` (rows in order; missing cells NULL), its geometry
    as WKB parameters in column ``geometry`` with the frame's EPSG code as SRID; ``key`` names
    a ``serial`` primary key column added first (1, 2, … in row order), so the rows read back
    in the frame's order (a heap's own order is not the order rows were inserted in)."""
    srid = gdf.crs.to_epsg() if gdf.crs is not None else 0
    attributes = [c for c in gdf.columns if c != gdf.geometry.name]
    name = sql.Identifier(schema, table)
    defs = [sql.SQL("{} serial PRIMARY KEY").format(sql.Identifier(key))] if key else []
    defs += [
        sql.SQL("{} {}").format(
            sql.Identifier(c), sql.SQL(_SQL_TYPES.get(gdf[c].dtype.kind, "text"))
        )
        for c in attributes
    ]
    defs.append(sql.SQL("{} geometry(Geometry, {})").format(sql.Identifier(geometry), srid))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(name, sql.SQL(", ").join(defs)))
    fields = sql.SQL(", ").join(map(sql.Identifier, [*attributes, geometry]))
    values = sql.SQL(", ").join(
        [sql.Placeholder()] * len(attributes) + [sql.SQL("ST_GeomFromWKB(%s, %s)")]
    )
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(name, fields, values)
    cells = gdf[attributes].astype(object).where(gdf[attributes].notna(), None)
    wkb = gdf.geometry.to_wkb()
    rows = [
        (*row, None if pd.isna(shape) else shape, srid)
        for row, shape in zip(cells.itertuples(index=False), wkb, strict=True)
    ]
    with conn.cursor() as cur:
        cur.executemany(insert, rows)
