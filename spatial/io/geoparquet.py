"""GeoParquet files read as :func:`geopandas.read_parquet` reads them, city-size point layers faster.

A city's buildings are often stored as points: millions of 21-byte WKB records. GeoPandas
turns each record into a Python ``bytes`` object and each of those into a geometry; here the
coordinates are read straight out of the column's buffer and the points made from them in
one call (the same points). Any file this does not cover (other geometry types, missing or
empty points, big-endian or Z records, several geometry columns, a bounding-box covering
column, GeoArrow encodings) is read by :func:`geopandas.read_parquet` itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from geopandas.array import from_shapely

# A little-endian ISO WKB 2-D point: byte order 1, type 1 (uint32), x and y (float64).
POINT_RECORD = 21
_LITTLE_ENDIAN, _POINT = 1, 1


def read_parquet_file(path: str | Path) -> gpd.GeoDataFrame:
    """``geopandas.read_parquet(path)``: the same frame (columns, dtypes, index, CRS, attrs,
    geometries), a layer of plain 2-D points read without a ``bytes`` object per point.

    Parameters
    ----------
    path : str or Path
        A GeoParquet file (any version GeoPandas reads; any CRS).

    Returns
    -------
    GeoDataFrame
        As :func:`geopandas.read_parquet` returns it; its errors are raised as it raises them.
    """
    frame = _points_frame(Path(path))
    return frame if frame is not None else gpd.read_parquet(path)


def _points_frame(path: Path) -> gpd.GeoDataFrame | None:
    """The file's frame when its one geometry column holds plain 2-D WKB points; else None."""
    try:
        file = pq.ParquetFile(path)
        geo = json.loads(file.schema_arrow.metadata[b"geo"])
        name = _plain_wkb_column(geo)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, pa.ArrowException):
        name = None
    if name is None:
        return None  # geopandas.read_parquet reads it, warns, or says what is wrong
    column = geo["columns"][name]
    table = file.read(use_pandas_metadata=True)
    xy = _point_coordinates(table.column(name))
    if xy is None:
        return None
    return _frame(table, name, shapely.points(xy), _crs(column), file.schema_arrow.metadata)


def _plain_wkb_column(geo: dict[str, Any]) -> str | None:
    """The one geometry column of valid GeoParquet metadata when it is WKB that GeoPandas
    reads without a word (planar edges, no covering column); else None."""
    columns = geo["columns"]
    if not (geo.get("version") or geo.get("schema_version")) or len(columns) != 1:
        return None
    (name,) = columns
    column = columns[name]
    plain = (
        geo.get("primary_column") == name
        and column.get("encoding") == "WKB"
        and column.get("edges", "planar") == "planar"
        and "covering" not in column
    )
    return name if plain else None


def _point_coordinates(wkb: pa.ChunkedArray) -> np.ndarray | None:
    """The (n, 2) coordinates of a WKB column of plain 2-D little-endian points, else None."""
    if not (pa.types.is_binary(wkb.type) or pa.types.is_large_binary(wkb.type)):
        return None
    array = wkb.combine_chunks()
    if array.null_count or len(array) == 0:
        return None
    offsets_type = np.int64 if pa.types.is_large_binary(wkb.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=offsets_type)
    offsets = offsets[array.offset : array.offset + len(array) + 1]
    if not bool((np.diff(offsets) == POINT_RECORD).all()):
        return None
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    records = data[offsets[0] : offsets[-1]].reshape(len(array), POINT_RECORD)
    kind = records[:, 1:5].copy().view("<u4")[:, 0]
    if not (bool((records[:, 0] == _LITTLE_ENDIAN).all()) and bool((kind == _POINT).all())):
        return None
    xy = records[:, 5:].copy().view("<f8")
    # NaN coordinates are an empty point in WKB: left to GeoPandas.
    return xy if bool(np.isfinite(xy).all()) else None


def _crs(column: dict[str, Any]) -> Any:
    """The column's CRS as GeoPandas takes it: OGC:CRS84 when the metadata names none."""
    crs = column.get("crs", "OGC:CRS84")
    if isinstance(crs, dict):
        _without_member_ids(crs)
    return crs


def _without_member_ids(projjson: dict[str, Any]) -> None:
    """Drop the ids of datum-ensemble members, as GeoPandas does (older PROJ databases
    do not know the newer members' ids)."""
    for key, value in projjson.items():
        if isinstance(value, dict):
            _without_member_ids(value)
        elif key == "members" and isinstance(value, list):
            for member in value:
                member.pop("id", None)


def _frame(
    table: pa.Table, name: str, points: np.ndarray, crs: Any, metadata: dict[bytes, bytes]
) -> gpd.GeoDataFrame:
    """The table's other columns as pandas makes them, the points in the geometry's place."""
    place = list(table.slice(0, 0).to_pandas().columns).index(name)
    frame = table.drop_columns([name]).to_pandas()
    frame.insert(place, name, from_shapely(points, crs=crs))
    if b"PANDAS_ATTRS" in metadata:
        frame.attrs = json.loads(metadata[b"PANDAS_ATTRS"])
    return gpd.GeoDataFrame(frame, geometry=name)


__all__ = ["read_parquet_file"]
