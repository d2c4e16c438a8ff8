"""Result layers in shared stores: GeoParquet datasets and PostGIS schemas.

Both take the layers a run (or a region) writes to ``results.gpkg`` and apply the same privacy
rule: columns that look personal are left out unless the config's ``[map] allow_fields``
names them, or ``[output] personal = "keep"``
(:func:`firegrid.reports.without_personal`).

- :func:`write_geoparquet` writes ``folder/<layer>/`` as a hive-partitioned GeoParquet dataset
  (``<column>=<value>/part-0.parquet``), readable whole with ``geopandas.read_parquet``.
- :func:`write_postgis` writes every layer into a new schema, in one transaction: the run's
  tables appear together or not at all.

No text from the data (layer, column or schema names) is pasted into SQL: names are checked
(:func:`firegrid.spatial.io.database.identifier_problem`) and quoted with
:class:`psycopg.sql.Identifier`; values travel through ``COPY``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.dataset as ds
import shapely
from psycopg import sql

from firegrid.reports import without_personal
from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.database import (
    GEOMETRY_COLUMN,
    MAX_IDENTIFIER_BYTES,
    connect,
    driver_message,
    identifier_problem,
    shown_url,
)

PARQUET_FILE = "part-0.parquet"
# The partition of rows without a value (a building outside every subdistrict). Hive's own
# null partition reads back as a null that pyarrow cannot merge with the other partitions'
# dictionary, so ``geopandas.read_parquet`` of the folder would fail.
NO_PARTITION = "(none)"
KEY_COLUMN = "fid"  # the serial primary key each PostGIS table gets: rows read back in order
SCHEMA_PREFIX = "firegrid"

# Column kinds (numpy dtype.kind) → PostgreSQL type; everything else is written as text.
_SQL_TYPES = {
    "i": "bigint",
    "u": "bigint",
    "f": "double precision",
    "b": "boolean",
    "M": "timestamp",
    "m": "double precision",  # durations, in seconds (as results.gpkg)
}


# --------------------------------------------------------------------------------------------
# GeoParquet


def write_geoparquet(
    layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame],
    folder: str | Path,
    *,
    partition_by: str | None = None,
    personal: str = "drop",
    allow: Iterable[str] = (),
) -> dict[str, Path]:
    """Write each layer as a (hive-partitioned) GeoParquet dataset ``folder/<layer>/``.

    Parameters
    ----------
    layers : mapping name → GeoDataFrame or DataFrame
        The result layers (empty ones are skipped). Geometries keep their CRS (the district's
        metric working CRS), written to each file's ``geo`` metadata.
    folder : path
        Where the datasets go; ``folder/<layer>`` must not exist yet (FireGrid writes into a
        run's new output folder, never over files).
    partition_by : str, optional
        A column (``"subdistrict"``, ``"grid_id_l2"`` …): each of its values gets its own
        folder ``<layer>/<column>=<value>/part-0.parquet`` (the value percent-encoded, rows
        without a value under :data:`NO_PARTITION`). A layer without that column is written
        as one file ``<layer>/part-0.parquet``.
    personal : {"drop", "keep"}
        ``[output] personal``: drop the columns that look personal unless ``allow`` names them.
    allow : iterable of str
        The config's ``[map] allow_fields``.

    Returns
    -------
    Layer name → its dataset folder. ``geopandas.read_parquet(folder)`` reads a dataset whole
    (rows grouped by partition; the partition column comes back as a category whose values
    pyarrow types from their text, so ids such as ``"007"`` may read as numbers when every
    value looks like one); :func:`read_geoparquet` keeps them as written.
    """
    folder = Path(folder)
    written = {}
    for name, frame in layers.items():
        if frame is None or not len(frame):
            continue
        target = _new_folder(folder, name)
        frame = _parquet_ready(
            frame if personal == "keep" else without_personal(frame, allow=allow)
        )
        if partition_by is None or partition_by not in frame:
            _write_part(frame, target)
        else:
            keys = frame[partition_by].astype("string").fillna(NO_PARTITION)
            for value, part in frame.drop(columns=partition_by).groupby(keys.to_numpy()):
                _write_part(part, target / f"{partition_by}={quote(str(value), safe='')}")
        written[name] = target
    return written


def read_geoparquet(path: str | Path) -> gpd.GeoDataFrame | pd.DataFrame:
    """A dataset written by :func:`write_geoparquet`, partition columns as written (text, rows
    without a value as <NA>)."""
    path = Path(path)
    keys = _partition_keys(path)
    if keys:
        partitioning = ds.partitioning(pa.schema([(k, pa.string()) for k in keys]), flavor="hive")
    else:
        partitioning = None
    table = ds.dataset(path, format="parquet", partitioning=partitioning).to_table()
    metadata = table.schema.metadata or {}
    if b"geo" in metadata:
        frame = gpd.read_parquet(path, partitioning=partitioning)
    else:
        frame = table.to_pandas()
    for key in keys:
        frame[key] = frame[key].astype("string").replace(NO_PARTITION, pd.NA)
    return frame


def _partition_keys(path: Path) -> list[str]:
    first = next((p for p in path.iterdir() if p.is_dir() and "=" in p.name), None)
    return [first.name.split("=", 1)[0]] if first is not None else []


def _new_folder(folder: Path, name: str) -> Path:
    problem = _path_problem(name)
    if problem:
        raise ConfigError(f"{folder}: cannot write layer {name!r} as a folder: {problem}")
    target = folder / name
    if target.exists():
        raise ConfigError(f"{target}: exists; GeoParquet datasets are written to a new folder")
    return target


def _path_problem(name: str) -> str | None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        return "a layer name must be a plain file name"
    return None


def _write_part(frame: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True)
    if isinstance(frame, gpd.GeoDataFrame):
        frame.to_parquet(folder / PARQUET_FILE, index=False)
    else:
        pd.DataFrame(frame).to_parquet(folder / PARQUET_FILE, index=False)


def _parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy Parquet can hold: text columns mixing kinds of values (numbers and words, OSM
    tag lists and nothing) as text, nested values as JSON."""
    out = frame.copy()
    geometry = out.geometry.name if isinstance(out, gpd.GeoDataFrame) else None
    for col in out.columns:
        s = out[col]
        if col == geometry or s.dtype != object:
            continue
        kinds = set(s.dropna().map(type))
        if len(kinds) > 1 or kinds & {list, tuple, set, dict}:
            out[col] = s.map(_as_text, na_action="ignore").astype("string")
    return out


def _as_text(value) -> str:
    if isinstance(value, list | tuple | set | dict):
        return json.dumps(list(value) if isinstance(value, set) else value, ensure_ascii=False)
    return str(value)


# --------------------------------------------------------------------------------------------
# PostGIS


def run_schema_name(run_name: str, *, at: datetime | None = None) -> str:
    """``firegrid_<run name slug>_<UTC time>``: the default schema of a run's tables.

    The slug keeps the ASCII letters and digits of the name (lower case, runs of anything
    else as one ``_``), ``run`` when none remain; cut so the whole fits PostgreSQL's 63 bytes.
    """
    at = (at or datetime.now(UTC)).astimezone(UTC)
    text = unicodedata.normalize("NFKD", run_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "run"
    stamp = at.strftime("%Y%m%d_%H%M%S")
    room = MAX_IDENTIFIER_BYTES - len(SCHEMA_PREFIX) - len(stamp) - 2
    return f"{SCHEMA_PREFIX}_{slug[:room].rstrip('_')}_{stamp}"


def write_postgis(
    layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame],
    url: str,
    *,
    schema: str,
    personal: str = "drop",
    allow: Iterable[str] = (),
) -> dict[str, str]:
    """Write every layer into a new PostGIS schema, in one transaction.

    Creates ``schema``, then per layer a table of the same name: a ``fid`` serial primary
    key (rows in the frame's order), the frame's columns (integers as ``bigint``, floats as
    ``double precision``, booleans, timestamps, durations as seconds, everything else as
    text) and, for a GeoDataFrame, a ``geometry`` column typed with the frame's EPSG code as
    SRID and a GiST index. Rows travel by ``COPY``, geometries as WKB. Then commits: on any
    error the transaction is rolled back and no table (nor the schema) exists.

    Parameters
    ----------
    layers : mapping name → GeoDataFrame or DataFrame
        The result layers (empty ones are skipped); names become table names, columns column
        names, both quoted as written.
    url : str
        ``postgresql://user[:password]@host[:port]/db``; the user needs CREATE on the
        database and the PostGIS extension must be installed.
    schema : str
        A schema that does not exist yet (:func:`run_schema_name` makes one per run).
    personal, allow
        As for ``results.gpkg``: ``[output] personal`` and ``[map] allow_fields``.

    Returns
    -------
    Layer name → ``schema.table`` written.

    Raises
    ------
    InputError
        Naming the URL (without password) and the layer: no connection, the schema exists, a
        name PostgreSQL would cut, a CRS without EPSG code, or the database's own message
        (the transaction is rolled back).
    """
    where = shown_url(url)
    tables = {
        name: _table_ready(frame, name, personal=personal, allow=allow, where=where)
        for name, frame in layers.items()
        if frame is not None and len(frame)
    }
    problem = identifier_problem(schema)
    if problem:
        raise InputError(f"schema {schema!r}: {problem}", file=where)
    layer = None
    with connect(url, read_only=False) as conn:
        try:
            with conn.transaction():
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
                for layer, frame in tables.items():
                    _create_table(conn, schema, layer, frame)
        except psycopg.Error as exc:
            at = f" (layer {layer!r})" if layer is not None else ""
            raise InputError(
                f"cannot write the results to schema {schema!r}{at}, nothing was written: "
                f"{driver_message(exc, url)}",
                file=where,
            ) from exc
    return {name: f"{schema}.{name}" for name in tables}


def _table_ready(
    frame: pd.DataFrame, name: str, *, personal: str, allow: Iterable[str], where: str
) -> pd.DataFrame:
    """The layer as it is written: personal columns dropped, names checked."""
    frame = frame if personal == "keep" else without_personal(frame, allow=allow)
    for text, what in [(name, "layer"), *((str(c), "column") for c in frame.columns)]:
        problem = identifier_problem(text)
        if problem:
            raise InputError(f"{what} {text!r} cannot name a table column: {problem}", file=where)
    if KEY_COLUMN in frame.columns:
        raise InputError(
            f"layer {name!r} has a column {KEY_COLUMN!r}, the key FireGrid adds", file=where
        )
    if isinstance(frame, gpd.GeoDataFrame):
        if GEOMETRY_COLUMN in frame.columns and frame.geometry.name != GEOMETRY_COLUMN:
            raise InputError(
                f"layer {name!r} has a column {GEOMETRY_COLUMN!r} besides its geometry",
                file=where,
            )
        if frame.crs is not None and frame.crs.to_epsg() is None:
            raise InputError(
                f"layer {name!r}: its CRS has no EPSG code to use as SRID ({frame.crs.name})",
                file=where,
            )
    return frame


def _create_table(conn: psycopg.Connection, schema: str, name: str, frame: pd.DataFrame) -> None:
    table = sql.Identifier(schema, name)
    geo = isinstance(frame, gpd.GeoDataFrame)
    attributes = [c for c in frame.columns if not (geo and c == frame.geometry.name)]
    defs = [sql.SQL("{} bigserial PRIMARY KEY").format(sql.Identifier(KEY_COLUMN))]
    defs += [
        sql.SQL("{} {}").format(sql.Identifier(str(c)), sql.SQL(_sql_type(frame[c])))
        for c in attributes
    ]
    fields = [str(c) for c in attributes]
    srid = 0
    if geo:
        srid = frame.crs.to_epsg() if frame.crs is not None else 0
        defs.append(sql.SQL("{} geometry(Geometry, {})").format(_geom(), sql.Literal(srid)))
        fields.append(GEOMETRY_COLUMN)
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(defs)))
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        table, sql.SQL(", ").join(map(sql.Identifier, fields))
    )
    columns = [_cells(frame[c]) for c in attributes]
    if geo:
        columns.append(_ewkb(frame.geometry.values, srid))
    with conn.cursor() as cur, cur.copy(copy) as writer:
        for row in zip(*columns, strict=True):
            writer.write_row(row)
    if geo:
        conn.execute(
            sql.SQL("CREATE INDEX ON {} USING GIST ({})").format(table, _geom()),
        )


def _geom() -> sql.Identifier:
    return sql.Identifier(GEOMETRY_COLUMN)


def _sql_type(series: pd.Series) -> str:
    kind = series.dtype.kind
    if kind == "M" and getattr(series.dtype, "tz", None) is not None:
        return "timestamptz"
    return _SQL_TYPES.get(kind, "text")


def _cells(series: pd.Series) -> list:
    """A column's values as Python objects ``COPY`` adapts (missing as None)."""
    kind = series.dtype.kind
    if kind == "m":
        series, kind = series.dt.total_seconds(), "f"
    if kind == "M":
        return [None if pd.isna(v) else v.to_pydatetime() for v in series]
    if kind in "iufb":
        # Python ints, floats and bools in one pass (numpy scalars are no COPY types).
        return series.to_numpy(dtype=object, na_value=None).tolist()
    missing = series.isna().to_numpy()
    values = series.to_numpy(dtype=object)
    return [None if m else _as_text(v) for m, v in zip(missing, values, strict=True)]


def _ewkb(geoms: np.ndarray, srid: int) -> list[str | None]:
    """Hex EWKB of each geometry (its SRID inside; PostGIS reads it as a geometry value)."""
    wkb = shapely.to_wkb(shapely.set_srid(np.asarray(geoms, dtype=object), srid), include_srid=True)
    return [None if w is None else w.hex() for w in wkb]
