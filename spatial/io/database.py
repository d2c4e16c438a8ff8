"""Reading a layer from a PostGIS table: ``file = "postgresql://user@host/db"``, ``layer =
"schema.table"``.

No text from a config is ever pasted into SQL: the schema and table names are checked, then
quoted with :class:`psycopg.sql.Identifier` or passed as query parameters. The connection is
read-only. Messages name the URL without its password.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from psycopg.types.numeric import FloatLoader
from shapely.errors import ShapelyError

from firegrid.spatial.errors import InputError
from firegrid.spatial.io.sources import LayerSource

# libpq's own two, and SQLAlchemy's name for a psycopg 3 URL (read with libpq's).
DATABASE_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
# PostgreSQL cuts longer identifiers to 63 bytes without a word: a long name could then name
# another table.
MAX_IDENTIFIER_BYTES = 63
CONNECT_TIMEOUT_S = 10
# Relation kinds a layer can be read from: table, view, materialized view, partitioned and
# foreign table.
READABLE_KINDS = ["r", "v", "m", "p", "f"]
GEOMETRY_COLUMN = "geometry"  # the name file readers give the geometry too

_POSTGIS = "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'postgis'"
_RELATION = """
SELECT c.oid FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind = ANY(%s)
"""
_COLUMNS = """
SELECT a.attname, t.typname FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
_PRIMARY_KEY = """
SELECT a.attname FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = %s AND i.indisprimary ORDER BY a.attnum
"""
_GEOMETRY_TABLES = """
SELECT f_table_schema || '.' || f_table_name FROM geometry_columns
ORDER BY 1 LIMIT 20
"""
_SRS = "SELECT auth_name, auth_srid, srtext FROM spatial_ref_sys WHERE srid = %s"


@dataclass(frozen=True)
class TableName:
    """A checked ``schema.table`` (a bare name is a table in ``public``)."""

    schema: str
    table: str

    @classmethod
    def parse(cls, text: object, *, where: str) -> TableName:
        """Split and check ``layer = "schema.table"``; ``where`` names the database in errors.

        Raises
        ------
        InputError
            For no name, more than one dot, an empty part, a control character or a part
            longer than PostgreSQL keeps (63 bytes).
        """
        if text is None or not str(text).strip():
            raise InputError('a database layer needs layer = "schema.table"', file=where)
        parts = str(text).strip().split(".")
        if len(parts) == 1:
            parts.insert(0, "public")
        problem = _name_problem(parts)
        if problem:
            raise InputError(
                f'layer = {str(text)!r} is no "schema.table" name: {problem}', file=where
            )
        return cls(*parts)

    def identifier(self) -> sql.Identifier:
        """The name quoted for SQL."""
        return sql.Identifier(self.schema, self.table)

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"


def _name_problem(parts: list[str]) -> str | None:
    if len(parts) != 2:
        return "it has more than one dot"
    if not all(parts):
        return "the schema or the table is empty"
    problems = [identifier_problem(part) for part in parts]
    return next((f"a part {p[3:]}" if p.startswith("it ") else p for p in problems if p), None)


def identifier_problem(name: str) -> str | None:
    """Why ``name`` cannot name a schema, table or column as written (None: it can).

    Empty names, control characters (NUL included) and names longer than PostgreSQL keeps
    (:data:`MAX_IDENTIFIER_BYTES`, cut without a word) are refused.
    """
    if not name:
        return "it is empty"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "it holds a control character"
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        return f"it is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes"
    return None


def is_database_url(where: object) -> bool:
    """Whether a layer's ``file`` is a PostgreSQL URL (``postgresql://``, ``postgres://`` or
    ``postgresql+psycopg://``)."""
    if not isinstance(where, str):
        return False
    scheme, sep, _ = where.strip().partition("://")
    return bool(sep) and scheme.lower() in DATABASE_SCHEMES


def shown_url(url: str) -> str:
    """The URL as messages show it: without the password (after ``user:`` or ``?password=``)."""
    parts = urlsplit(url.strip())
    userinfo, at, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    netloc = f"{user}@{host}" if at and user else host
    # Kept as written (a socket folder stays readable), less any password parameter.
    query = [p for p in parts.query.split("&") if "password" not in p.split("=", 1)[0].lower()]
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(query), parts.fragment))


def read_database_layer(url: str, layer: object) -> tuple[gpd.GeoDataFrame, LayerSource]:
    """Read one PostGIS table (or view) as a layer, rows in primary-key order.

    Parameters
    ----------
    url
        ``postgresql://user[:password]@host[:port]/db`` (libpq's URL; a socket folder as
        ``?host=/path``).
    layer
        ``"schema.table"`` (a bare name means ``public``).

    Returns
    -------
    The table's columns as they are named there and its first geometry column as
    ``geometry``, with the CRS of the geometries' SRID (``None`` for SRID 0, which the config
    then declares), indexed 0..n-1; and a :class:`LayerSource` naming
    ``<url without password> schema.table``, rows counted from 1 in primary-key order (the
    table's order when it has none).

    Raises
    ------
    InputError
        Naming the URL (without password) and table: no connection, no PostGIS, no such table
        (listing the tables with geometry), no geometry column, mixed SRIDs.
    """
    shown = shown_url(url)
    name = TableName.parse(layer, where=shown)
    source = LayerSource(f"{shown} {name}", row_label="row", row_base=1)
    with connect(url) as conn:
        try:
            gdf = _read_table(conn, name, source.file)
        except psycopg.Error as exc:
            raise InputError(
                f"cannot read the table: {driver_message(exc, url)}", file=source.file
            ) from exc
    return gdf, source


def connect(url: str, *, read_only: bool = True) -> psycopg.Connection:
    """Open a connection (read-only unless told), NUMERIC read as float.

    Raises
    ------
    InputError
        Naming the URL without its password and the driver's message, when there is no
        connection.
    """
    scheme, sep, rest = url.strip().partition("://")
    try:
        conn = psycopg.connect(
            f"{scheme.split('+')[0]}{sep}{rest}", connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.Error as exc:
        raise InputError(
            f"cannot connect to the database: {driver_message(exc, url)}", file=shown_url(url)
        ) from exc
    conn.read_only = read_only
    # NUMERIC as float, as a GIS file's decimal column reads.
    conn.adapters.register_loader("numeric", FloatLoader)
    return conn


def driver_message(exc: BaseException, url: str) -> str:
    """The driver's message on one line, with any password in it blanked out."""
    text = " ".join(str(exc).split())
    for secret in _passwords(url):
        text = text.replace(secret, "***")
    return text


def _passwords(url: str) -> list[str]:
    parts = urlsplit(url.strip())
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if "password" in k.lower() and v]
    return [s for secret in found for s in {secret, unquote(secret)}]


def _read_table(conn: psycopg.Connection, name: TableName, where: str) -> gpd.GeoDataFrame:
    oid = _relation(conn, name, where)
    columns = conn.execute(_COLUMNS, (oid,)).fetchall()
    geometry = [col for col, kind in columns if kind == "geometry"]
    attributes = [col for col, kind in columns if kind not in ("geometry", "geography")]
    if not geometry:
        raise InputError(
            f"the table has no geometry column; it has columns {[c for c, _ in columns]}",
            file=where,
        )
    if GEOMETRY_COLUMN in attributes:
        raise InputError(
            f"the table has a column {GEOMETRY_COLUMN!r} that is no geometry, besides its "
            f"geometry column {geometry[0]!r}; rename one",
            file=where,
        )
    key = [row[0] for row in conn.execute(_PRIMARY_KEY, (oid,))]
    records = conn.execute(_select(name, attributes, geometry[0], key)).fetchall()
    frame = pd.DataFrame([r[:-2] for r in records], columns=attributes)
    wkb = np.array([r[-2] for r in records], dtype=object)
    try:
        shapes = shapely.from_wkb(wkb)
    except ShapelyError as exc:
        raise InputError(f"cannot read a geometry: {exc}", file=where) from exc
    crs = _crs(conn, {r[-1] for r in records if r[-1] is not None}, where)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(shapes, crs=crs), crs=crs)


def _relation(conn: psycopg.Connection, name: TableName, where: str) -> int:
    if conn.execute(_POSTGIS).fetchone() is None:
        raise InputError(
            "the database has no PostGIS extension (CREATE EXTENSION postgis)", file=where
        )
    found = conn.execute(_RELATION, (name.schema, name.table, READABLE_KINDS)).fetchone()
    if found is None:
        tables = [row[0] for row in conn.execute(_GEOMETRY_TABLES)]
        raise InputError(
            f"no table {str(name)!r} in the database; its tables with geometry are {tables}",
            file=where,
        )
    return found[0]


def _select(name: TableName, attributes: list[str], geometry: str, key: list[str]) -> sql.Composed:
    """``SELECT attributes…, ST_AsBinary(geometry), ST_SRID(geometry) FROM table ORDER BY key``."""
    geom = sql.Identifier(geometry)
    fields = [sql.Identifier(col) for col in attributes]
    fields += [sql.SQL("ST_AsBinary({})").format(geom), sql.SQL("ST_SRID({})").format(geom)]
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(fields), name.identifier())
    if key:
        query += sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(map(sql.Identifier, key)))
    return query


def _crs(conn: psycopg.Connection, srids: set[int], where: str) -> str | None:
    """The coordinate system of the geometries' one SRID; None for SRID 0 or no geometry."""
    if len(srids) > 1:
        raise InputError(
            f"the geometries have different SRIDs {sorted(srids)}; give them one "
            "(UPDATE … SET geom = ST_Transform(geom, …))",
            file=where,
        )
    srid = next(iter(srids), 0)
    if srid == 0:
        return None
    row = conn.execute(_SRS, (srid,)).fetchone()
    if row is None:
        raise InputError(f"SRID {srid} is not in the database's spatial_ref_sys", file=where)
    authority, code, wkt = row
    return f"{authority}:{code}" if authority and code else wkt
