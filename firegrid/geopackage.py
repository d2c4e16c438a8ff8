"""What GDAL needs of a frame to write it into a GeoPackage, and spatial views over its layers.

A layer whose rows are rows of another layer of the same file (``access_missing``: the
buildings that miss a response target) can be written as a GeoPackage spatial view over that
layer's table, joined to a small table of what the base lacks and the row order, instead of a
second copy of every row. :func:`view_plan` says whether a frame is exactly such a subset;
:func:`write_view` writes the view, or leaves nothing written and says so.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from firegrid.gpkg_index import (
    add_extensions_table,
    feature_count,
    feature_id_range,
    sql_name,
    sql_text,
    table_exists,
)


def _may_hold_nested(values: pd.Series) -> bool:
    """False for an object column of text only (or nothing): pandas' C type scan answers for
    a city's million ids in a fraction of the per-value check it replaces (2.8 s at 5 M)."""
    return pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty")


def gpkg_ready(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A frame GDAL can write: durations as seconds, nested values (OSM tag lists) as text.

    A shallow copy: converted columns are replaced in it, never in ``gdf``, and a city's
    buildings are not copied whole at the moment the writer needs memory most.
    """
    out = gdf.copy(deep=False)
    geom = out.geometry.name
    for col in out.columns:
        if col == geom:
            continue
        s = out[col]
        if pd.api.types.is_timedelta64_dtype(s):
            out[col] = s.dt.total_seconds()
        elif s.dtype == object and _may_hold_nested(s):
            nested = s.map(lambda v: isinstance(v, list | tuple | set | dict), na_action="ignore")
            if nested.fillna(False).astype(bool).any():
                out[col] = s.map(
                    lambda v: (
                        json.dumps(list(v) if isinstance(v, set) else v, ensure_ascii=False)
                        if isinstance(v, list | tuple | set | dict)
                        else v
                    ),
                    na_action="ignore",
                )
    # SQLite column names are case-insensitive and GPKG reserves "fid".
    seen: set[str] = set()
    renames = {}
    for col in out.columns:
        key = str(col).lower()
        if key == "fid" or key in seen:
            renames[col] = f"{col}_{len(seen)}"
        seen.add(key)
    return out.rename(columns=renames) if renames else out


# The WKB of a 2-D point as GEOS writes it (shapely.to_wkb): little-endian byte order mark 1,
# geometry type 1, x, y; 21 bytes, unpadded.
_POINT_WKB = np.dtype([("order", "u1"), ("kind", "<u4"), ("x", "<f8"), ("y", "<f8")])


def write_point_layer(
    frame: gpd.GeoDataFrame, path: str | Path, name: str, *, layer_options: dict[str, str]
) -> np.ndarray | None:
    """Write ``frame`` (made :func:`gpkg_ready`) as layer ``name`` of the GeoPackage ``path``
    as ``frame.to_file(path, layer=name, engine="pyogrio", use_arrow=True)`` writes it, when
    every geometry is a 2-D point and no column needs pyogrio's own conversion.

    The points' WKB is built from their coordinates in one array: pyogrio makes a Python
    bytes object per point and checks each point's type, emptiness and dimension in four
    passes (5 M buildings: about 2.5 s and 350 MB, against a fraction of a second here).

    Returns
    -------
    numpy.ndarray or None
        The points' coordinates, shape ``(n, 2)``, in the frame's CRS units; None, and
        nothing written, when the frame is not such a layer (a missing, empty, 3-D or other
        geometry, an object or time-zone column, or an index ``to_file`` would write).
    """
    import pyarrow as pa
    import pyogrio
    import shapely

    geoms = frame.geometry.to_numpy()
    if not _plain_columns(frame) or not len(geoms):
        return None
    if (shapely.get_type_id(geoms) != 0).any() or shapely.is_empty(geoms).any():
        return None  # a missing geometry's type id is -1
    if shapely.has_z(geoms).any():
        return None
    xy = shapely.get_coordinates(geoms)
    cells = np.empty(len(xy), dtype=_POINT_WKB)
    cells["order"], cells["kind"], cells["x"], cells["y"] = 1, 1, xy[:, 0], xy[:, 1]
    large = (len(xy) + 1) * _POINT_WKB.itemsize > np.iinfo(np.int32).max
    offsets = np.arange(len(xy) + 1, dtype=np.int64 if large else np.int32) * _POINT_WKB.itemsize
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(cells.view(np.uint8))]
    wkb = pa.Array.from_buffers(pa.large_binary() if large else pa.binary(), len(xy), buffers)
    geom = frame.geometry.name
    table = pa.Table.from_pandas(pd.DataFrame(frame.drop(columns=geom)), preserve_index=False)
    if any(pa.types.is_null(f.type) or pa.types.is_dictionary(f.type) for f in table.schema):
        return None  # pyogrio converts these first
    table = table.add_column(list(frame.columns).index(geom), geom, wkb)
    pyogrio.write_arrow(table, path, layer=name, driver="GPKG", geometry_name=geom,
                        geometry_type="Point", crs=_gdal_crs(frame.crs),
                        layer_options=layer_options)  # fmt: skip
    return xy


def _gdal_crs(crs) -> str | None:
    """The CRS as pyogrio's ``write_dataframe`` names it to GDAL: its EPSG code, else WKT1."""
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt("WKT1_GDAL")


def _plain_columns(frame: gpd.GeoDataFrame) -> bool:
    """No object or time-zone column (pyogrio converts those), one geometry column, and an
    index ``to_file`` leaves out (unnamed integers)."""
    if list(frame.index.names) != [None] or not pd.api.types.is_integer_dtype(frame.index):
        return False
    geom = frame.geometry.name
    for col, dtype in frame.dtypes.items():
        if col == geom:
            continue
        if pd.api.types.is_object_dtype(dtype) or isinstance(
            dtype, pd.DatetimeTZDtype | gpd.array.GeometryDtype
        ):
            return False
    return frame.columns.is_unique


# Layers whose rows are rows of another layer of the same run, written as a view over it:
# ``access_missing`` holds the buildings that miss a response target.
VIEW_BASES = {"access_missing": "buildings"}
# Registers the tables that hold a view's own columns (gpkg_contents ``data_type`` and
# gpkg_extensions ``extension_name``, GeoPackage "Extended GeoPackage" clause): not a layer.
_VIEW_ROWS_TYPE = "firegrid_view_rows"
# The rows table's own columns besides the frame's (SQLite names are case-insensitive).
_VIEW_ROWS_COLUMNS = {"rank", "base_fid"}
_VIEW_ROWS_DEFINITION = (
    "FireGrid: the rows of a spatial view (its row order and the columns its base table "
    "lacks); rank is the view's row order, base_fid the base table's feature id"
)


@dataclass
class ViewPlan:
    """What a view over a base layer needs: the frame's written columns in order, which of
    them come from the base table, and the base row (0-based position) of every row."""

    frame: gpd.GeoDataFrame
    base: gpd.GeoDataFrame
    columns: list[str]
    own: list[str]
    positions: np.ndarray


def view_plan(
    raw: pd.DataFrame,
    kept: pd.DataFrame,
    base_raw: pd.DataFrame | None,
    base_kept: pd.DataFrame | None,
) -> ViewPlan | None:
    """The plan of writing ``kept`` as a view over ``base_kept`` (written before it), or None
    when any of its rows, columns or geometries is not exactly the base layer's.

    ``raw``/``base_raw`` are the frames before the personal-column filter, which must have
    dropped the same columns from both.
    """
    if not _view_shapes_match(kept, base_kept) or not _same_filter(raw, kept, base_raw, base_kept):
        return None
    if not (base_kept.index.is_unique and _index_not_written(kept, base_kept)):
        return None
    positions = base_kept.index.get_indexer(kept.index)
    if (positions < 0).any() or not _same_geometries(kept, base_kept, positions):
        return None
    if not _same_geometry_kinds(base_kept, positions):
        return None
    geom = kept.geometry.name
    columns = [c for c in kept.columns if c != geom]
    shared = [c for c in columns if c in base_kept.columns and c != base_kept.geometry.name]
    if not all(_same_values(kept[c], base_kept[c], positions) for c in shared):
        return None
    own = [c for c in columns if c not in shared]
    if {str(c).lower() for c in own} & _VIEW_ROWS_COLUMNS:
        return None
    return ViewPlan(frame=kept, base=base_kept, columns=columns, own=own, positions=positions)


def _view_shapes_match(kept: pd.DataFrame, base: pd.DataFrame | None) -> bool:
    """Both are GeoDataFrames in one CRS, and neither has a column the writer renames."""
    if not (isinstance(kept, gpd.GeoDataFrame) and isinstance(base, gpd.GeoDataFrame)):
        return False
    if kept.crs is None or kept.crs != base.crs:
        return False
    return all(list(gpkg_ready(f.iloc[:0]).columns) == list(f.columns) for f in (kept, base))


def _same_geometry_kinds(base: gpd.GeoDataFrame, positions: np.ndarray) -> bool:
    """The rows at ``positions`` hold the same geometry types as all of ``base`` (so the
    writer would give the subset the base table's geometry type).

    Asked of the base rows after :func:`_same_geometries` (identical geometries have one
    type and Z): one pass over the base in its own order, where a subset's geometries lie
    scattered in memory (0.5 s a pass for 5 M buildings)."""
    import shapely

    geoms = base.geometry.to_numpy()
    types, z = shapely.get_type_id(geoms), shapely.has_z(geoms)
    return _geometry_kinds(types, z) == _geometry_kinds(types[positions], z[positions])


def _geometry_kinds(types: np.ndarray, z: np.ndarray) -> tuple[list[int], bool]:
    """The geometry types present (shapely type ids, missing left out) and whether any
    geometry has Z: what the writer's layer geometry type follows from."""
    # counted, not np.unique'd: a city's type ids sort in twice the time they count in
    counts = np.bincount(types + 1, minlength=1)
    return np.flatnonzero(counts[1:]).tolist(), bool(z.any())


def _same_filter(raw, kept, base_raw, base_kept) -> bool:
    """The personal-column filter dropped a column shared by both layers from both or from
    neither (it also looks at values, which differ between a layer and its subset)."""
    dropped = set(raw.columns) - set(kept.columns)
    base_dropped = set(base_raw.columns) - set(base_kept.columns)
    both = set(raw.columns) & set(base_raw.columns)
    return dropped & both == base_dropped & both


def _index_not_written(*frames: pd.DataFrame) -> bool:
    """GeoPandas writes an index that is named or not integer as columns: only an unnamed
    integer index leaves the written columns those of the frame."""
    return all(
        list(f.index.names) == [None] and pd.api.types.is_integer_dtype(f.index.dtype)
        for f in frames
    )


def _same_geometries(kept: gpd.GeoDataFrame, base: gpd.GeoDataFrame, positions) -> bool:
    """Every geometry identical (coordinates, type, emptiness) to its base row's.

    A subset taken from the base frame holds the base's geometry objects themselves: only
    rows holding another object are compared coordinate by coordinate (3.8 s for 5 M
    buildings when every row was)."""
    import shapely

    ours = kept.geometry.to_numpy()
    theirs = base.geometry.to_numpy()
    rest = np.flatnonzero(~same_objects(ours, theirs, positions))
    if not len(rest):
        return True
    ours, theirs = ours[rest], theirs[positions[rest]]
    missing = shapely.is_missing(ours)
    same = shapely.equals_identical(ours, theirs) | (missing & shapely.is_missing(theirs))
    return bool(same.all())


def same_objects(ours: np.ndarray, theirs: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Whether ``ours[i]`` is the very object ``theirs[positions[i]]`` (object arrays).

    Compares the objects' addresses, read as integers, so a subset taken from a city's
    frame is recognised without touching its millions of objects; the same object is
    identical to itself, so a True is exact. All False when an array is not one contiguous
    block (the caller then compares values)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if not (
        ours.dtype == theirs.dtype == object
        and ours.flags.c_contiguous
        and theirs.flags.c_contiguous
        and len(ours) == len(positions)
    ):
        return np.zeros(len(positions), dtype=bool)
    if not len(ours):
        return np.zeros(0, dtype=bool)
    # views of the arrays' own pointer cells (both arrays live until this returns): no copy
    # of a city's pointers, no reference taken or dropped
    return _addresses(ours) == np.take(_addresses(theirs), positions)


def _addresses(values: np.ndarray) -> np.ndarray:
    """The object pointers of a non-empty contiguous 1-D object array, as a view of intp
    (valid while ``values`` lives)."""
    import ctypes

    cells = (ctypes.c_ssize_t * len(values)).from_address(values.ctypes.data)
    return np.ctypeslib.as_array(cells)


def _same_values(ours: pd.Series, theirs: pd.Series, positions) -> bool:
    """Same values (NaN equal to NaN) as the base column at ``positions``, of the same dtype
    or both of a pandas string dtype (missing as NaN or NA: GDAL writes both as text)."""
    if ours.dtype == theirs.dtype == object:
        return _same_object_values(ours, theirs, positions)
    # the column's own take, without pandas taking the base's index too
    theirs = pd.Series(theirs.array.take(positions), index=ours.index, name=theirs.name)
    if ours.dtype != theirs.dtype:
        if not (
            isinstance(ours.dtype, pd.StringDtype) and isinstance(theirs.dtype, pd.StringDtype)
        ):
            return False
        theirs = theirs.astype(ours.dtype)
    return ours.equals(theirs)


def _same_object_values(ours: pd.Series, theirs: pd.Series, positions) -> bool:
    """:func:`_same_values` of two object columns: rows holding the base row's very object
    are equal; the others are compared as values."""
    rest = np.flatnonzero(~same_objects(ours.to_numpy(), theirs.to_numpy(), positions))
    if not len(rest):
        return True
    return pd.Series(ours.to_numpy()[rest]).equals(pd.Series(theirs.to_numpy()[positions[rest]]))


def write_view(plan: ViewPlan, path: Path, name: str, *, base: str) -> bool:
    """``plan`` as a spatial view ``name`` over the table ``base``: its own columns and row
    order in a table registered as view rows, the rest read from ``base``. False (nothing
    left written) when the base table is not as its frame was (feature ids 1 … rows) or
    SQLite would not read the view in the frame's row order."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as con:
        layout = _base_layout(con, base, rows=len(plan.base), columns=plan.columns,
                              free=rows_table(name))  # fmt: skip
    if layout is None:
        return False
    return create_view(write_view_rows(plan, path, name, base=base), path)


@dataclass
class ViewRows:
    """A view's rows table, written (:func:`write_view_rows`): what making the view over its
    base table needs (:func:`create_view`)."""

    name: str
    base: str
    base_rows: int
    columns: list[str]
    own: list[str]
    bounds: np.ndarray

    @property
    def table(self) -> str:
        return rows_table(self.name)


def write_view_rows(plan: ViewPlan, path: Path, name: str, *, base: str) -> ViewRows:
    """The rows table of the view ``name`` of ``plan`` (and its index by base row) in
    ``path``, which need not hold the base table yet (it may be copied into the base's file,
    :func:`firegrid.gpkg_copy.copy_layers`)."""
    import sqlite3

    rows = rows_table(name)
    _write_view_rows(plan, path, rows)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as con:
        con.execute("PRAGMA synchronous = OFF")
        con.execute("BEGIN")
        # the base table's R-tree finds base rows, this index their view rows
        con.execute(f"CREATE INDEX {sql_name(rows + '_base_fid')} ON {sql_name(rows)} (base_fid)")
        # Registered at once: GDAL leaves every later attribute table of a file out of
        # gpkg_contents once it finds one table there unregistered.
        _register_rows_table(con, name=name, base=base)
        con.execute("COMMIT")
    return ViewRows(name=name, base=base, base_rows=len(plan.base), columns=plan.columns,
                    own=plan.own, bounds=_total_bounds(plan))  # fmt: skip


def create_view(rows: ViewRows, path: Path) -> bool:
    """The view of ``rows`` over its base table, both in ``path``. False, and the rows table
    dropped, when the base table is not as its frame was (feature ids 1 … rows) or SQLite
    would not read the view in the frame's row order."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as con:
        con.execute("PRAGMA synchronous = OFF")
        layout = _base_layout(con, rows.base, rows=rows.base_rows, columns=rows.columns)
        if layout is None:
            _drop_rows_table(con, rows.table)
            return False
        con.execute("BEGIN")
        _create_view(con, rows, layout=layout)
        if not _reads_in_rank_order(con, rows.name):
            con.execute("ROLLBACK")
            _drop_rows_table(con, rows.table)
            return False
        _register_view(con, rows, layout=layout)
        con.execute("COMMIT")
    return True


def _reads_in_rank_order(con, name: str) -> bool:
    """SQLite reads the whole view by scanning its rows table (in rank order) and looking
    each base row up by its feature id.

    The view has no ORDER BY: with one, SQLite reads it whole before GDAL's spatial filter
    on an Arrow read applies (14 s instead of 0.03 s for a 1/400 window of 1 M buildings).
    """
    plan = [row[-1] for row in con.execute(f"EXPLAIN QUERY PLAN SELECT * FROM {sql_name(name)}")]
    if len(plan) != 2:
        return False
    # "SCAN r" / "SEARCH b USING …"; SQLite before 3.36 says "SCAN TABLE rows AS r"
    scan, search = plan
    return (
        scan.startswith("SCAN ")
        and scan.split()[-1] == "r"
        and search.startswith("SEARCH ")
        and "b USING INTEGER PRIMARY KEY" in search
    )


def _drop_rows_table(con, rows: str) -> None:
    """Drop the rows table, and what GDAL and FireGrid keep of it in the gpkg_* tables."""
    con.execute(f"DROP TABLE {sql_name(rows)}")
    for meta in ("gpkg_ogr_contents", "gpkg_contents", "gpkg_extensions"):
        if table_exists(con, meta):
            con.execute(f"DELETE FROM {meta} WHERE lower(table_name) = lower(?)", (rows,))


def rows_table(name: str) -> str:
    """The table of a view's own columns and row order."""
    return f"{name}_view_rows"


def _base_layout(
    con, base: str, *, rows: int, columns, free: str | None = None
) -> dict[str, Any] | None:
    """The base table's geometry column, type, SRS and feature-id column, or None unless
    its feature ids are 1 … ``rows`` (row ``i`` of its frame is feature ``i + 1``), the
    file registers extensions, no table is called ``free``, and the view's ``columns`` do
    not hold the geometry column's name."""
    if (free and table_exists(con, free)) or not table_exists(con, "gpkg_extensions"):
        return None
    found = con.execute(
        "SELECT column_name, geometry_type_name, srs_id, z, m FROM gpkg_geometry_columns "
        "WHERE table_name = ?",
        (base,),
    ).fetchone()
    pk = con.execute(
        f"SELECT name FROM pragma_table_info({sql_text(base)}) WHERE pk = 1"
    ).fetchall()
    if found is None or len(pk) != 1:
        return None
    fid = pk[0][0]
    # GDAL's kept count and the two ends of the id B-tree: counting reads every base row
    # (0.5 s for 5 M buildings)
    low, high = feature_id_range(con, base, fid)
    if not (low == 1 and high == rows and feature_count(con, base) == rows):
        return None
    if found[0].lower() in {str(c).lower() for c in columns}:
        return None
    return dict(zip(("geom", "kind", "srs", "z", "m"), found, strict=True)) | {"fid": fid}


def _write_view_rows(plan: ViewPlan, path: Path, rows: str) -> None:
    """The table ``rows``: ``rank`` (1, 2, … in the frame's order), ``base_fid`` (the base
    table's feature id) and the view's own columns, written as GDAL writes them in a layer."""
    import pyogrio

    frame = plan.frame
    own = gpkg_ready(frame[[*plan.own, frame.geometry.name]])
    table = pd.DataFrame(own.drop(columns=own.geometry.name)).reset_index(drop=True)
    table.insert(0, "base_fid", plan.positions.astype(np.int64) + 1)
    pyogrio.write_dataframe(
        table,
        path,
        layer=rows,
        driver="GPKG",
        use_arrow=True,
        layer_options={"FID": "rank", "ASPATIAL_VARIANT": "NOT_REGISTERED"},
    )


def _create_view(con, rows: ViewRows, *, layout: dict) -> None:
    """The view: the rows table joined to the base table by feature id."""
    q = sql_name
    fid, geom = layout["fid"], layout["geom"]
    own = set(rows.own)
    selected = ", ".join(
        [f"b.{q(fid)} AS {q(fid)}", f"b.{q(geom)} AS {q(geom)}"]
        + [f"{'r' if c in own else 'b'}.{q(c)} AS {q(c)}" for c in rows.columns]
    )
    # The base table's feature id as the view's (its first, integer column) lets GDAL filter
    # by the base table's R-tree.
    con.execute(
        f"CREATE VIEW {q(rows.name)} AS SELECT {selected} FROM {q(rows.table)} AS r "
        f"JOIN {q(rows.base)} AS b ON b.{q(fid)} = r.base_fid"
    )


def _register_view(con, rows: ViewRows, *, layout: dict) -> None:
    """The view as a features layer (gpkg_contents, gpkg_geometry_columns)."""
    # 16 significant digits, as GDAL records a table's extent
    bounds = [float(f"{v:.16g}") for v in rows.bounds]
    con.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, min_x, min_y, max_x, "
        "max_y, srs_id) VALUES (?, 'features', ?, ?, ?, ?, ?, ?)",
        (rows.name, rows.name, *bounds, layout["srs"]),
    )
    con.execute(
        "INSERT INTO gpkg_geometry_columns (table_name, column_name, geometry_type_name, "
        "srs_id, z, m) VALUES (?, ?, ?, ?, ?, ?)",
        (rows.name, layout["geom"], layout["kind"], layout["srs"], layout["z"], layout["m"]),
    )


def _register_rows_table(con, *, name: str, base: str) -> None:
    """The rows table of view ``name`` as view rows, an extension's data type, which GDAL
    does not list as a layer."""
    rows = rows_table(name)
    add_extensions_table(con)
    con.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
        "VALUES (?, ?, ?, ?)",
        (rows, _VIEW_ROWS_TYPE, rows, f"rows of the view {name} over {base}"),
    )
    con.execute(
        "INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, "
        "scope) VALUES (?, NULL, ?, ?, 'write-only')",
        (rows, _VIEW_ROWS_TYPE, _VIEW_ROWS_DEFINITION),
    )


def _total_bounds(plan: ViewPlan) -> np.ndarray:
    """The frame's ``total_bounds``, from the envelopes of its base rows (its geometries are
    theirs) read in the base's order: a subset's geometries lie scattered in memory (1.4 s
    instead of 0.15 s for 5 M buildings)."""
    import shapely

    rows = np.zeros(len(plan.base), dtype=bool)
    rows[plan.positions] = True
    bounds = shapely.bounds(plan.base.geometry.to_numpy()[rows])
    with warnings.catch_warnings():  # as GeoPandas: NaN when no geometry has an envelope
        warnings.filterwarnings("ignore", "All-NaN slice encountered")
        lows = np.nanmin(bounds[:, :2], axis=0)
        highs = np.nanmax(bounds[:, 2:], axis=0)
    return np.concatenate([lows, highs])
