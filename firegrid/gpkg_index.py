"""The GeoPackage spatial index of a big layer, bulk-loaded from numpy.

GDAL's own R-tree for 5 M points costs more than the rest of writing the layer (16 s of
27 s). A layer written without one (``layer_options={"SPATIAL_INDEX": "NO"}``) gets it here
in a few seconds (``benchmarks/bench_gpkg_index.py``: 5.4 s where GDAL's took 21 s): its
envelopes are packed into a sort-tile-recursive tree whose nodes are written straight into
SQLite's R*Tree shadow tables, as GDAL's ``sqlite_rtree_bulk_load.c`` writes its own tree
(which it builds by inserting one feature at a time into an in-memory R*-tree). Readers see what GDAL writes: the virtual table
``rtree_<table>_<geometry column>``, GDAL's triggers that keep it right under later edits,
and the ``gpkg_rtree_index`` row of ``gpkg_extensions``.

The node layout is SQLite's (``ext/rtree/rtree.c``): a node is a blob of ``4 + 24 × cells``
bytes (the root's first two bytes the tree depth, then the cell count, both big-endian), each
cell a big-endian 64-bit id (a feature id in a leaf, a child node number above) and four
big-endian float32 (min x, max x, min y, max y); ``_rowid`` maps each feature id to its leaf,
``_parent`` each node below the root to its parent; the root is node 1.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import NamedTuple

import numpy as np

# The gpkg_extensions row GDAL writes for a layer's R-tree.
_EXTENSION = "gpkg_rtree_index"
_EXTENSION_DEFINITION = "http://www.geopackage.org/spec120/#extension_rtree"
# gpkg_extensions as GDAL creates it (a file written without any index lacks it).
_EXTENSIONS_TABLE = (
    "CREATE TABLE gpkg_extensions (table_name TEXT,column_name TEXT,extension_name TEXT NOT "
    "NULL,definition TEXT NOT NULL,scope TEXT NOT NULL,CONSTRAINT ge_tce UNIQUE (table_name, "
    "column_name, extension_name))"
)
# GDAL 3.12's triggers, statement for statement ({r} the R-tree, {t} the table, {g} the
# geometry column, {i} the feature id column, each a quoted SQL name).
_BOX = "ST_MinX(NEW.{g}), ST_MaxX(NEW.{g}),ST_MinY(NEW.{g}), ST_MaxY(NEW.{g})"
_TRIGGERS = {
    "insert": (
        "AFTER INSERT ON {t} WHEN (new.{g} NOT NULL AND NOT ST_IsEmpty(NEW.{g})) BEGIN "
        "INSERT OR REPLACE INTO {r} VALUES (NEW.{i}," + _BOX + "); END"
    ),
    "update6": (
        "AFTER UPDATE OF {g} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{g} NOTNULL AND NOT "
        "ST_IsEmpty(NEW.{g})) AND (OLD.{g} NOTNULL AND NOT ST_IsEmpty(OLD.{g})) BEGIN UPDATE "
        "{r} SET minx = ST_MinX(NEW.{g}), maxx = ST_MaxX(NEW.{g}),miny = ST_MinY(NEW.{g}), "
        "maxy = ST_MaxY(NEW.{g}) WHERE id = NEW.{i};END"
    ),
    "update7": (
        "AFTER UPDATE OF {g} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{g} NOTNULL AND NOT "
        "ST_IsEmpty(NEW.{g})) AND (OLD.{g} ISNULL OR ST_IsEmpty(OLD.{g})) BEGIN INSERT INTO "
        "{r} VALUES (NEW.{i}," + _BOX + "); END"
    ),
    "update2": (
        "AFTER UPDATE OF {g} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{g} ISNULL OR "
        "ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END"
    ),
    "update5": (
        "AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND (NEW.{g} NOTNULL AND NOT "
        "ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM {r} WHERE id = OLD.{i}; INSERT OR REPLACE "
        "INTO {r} VALUES (NEW.{i}," + _BOX + "); END"
    ),
    "update4": (
        "AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND (NEW.{g} ISNULL OR "
        "ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM {r} WHERE id IN (OLD.{i}, NEW.{i}); END"
    ),
    "delete": (
        "AFTER DELETE ON {t} WHEN old.{g} NOT NULL BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END"
    ),
}
# SQLite's rounding of a float64 coordinate to the float32 below (min) or above (max) it.
_TOWARDS_ZERO = 1.0 - 1.0 / 8388608.0
_AWAY_FROM_ZERO = 1.0 + 1.0 / 8388608.0
# A cell: the id and the box, big-endian, in the virtual table's column order.
_CELL = np.dtype(
    [("id", ">i8"), ("minx", ">f4"), ("maxx", ">f4"), ("miny", ">f4"), ("maxy", ">f4")]
)


def add_spatial_index(
    path: str | Path,
    table: str,
    *,
    bounds: np.ndarray | None = None,
    fids: np.ndarray | None = None,
) -> int:
    """Add the GeoPackage R-tree spatial index of ``table``, written without one.

    Parameters
    ----------
    path
        The GeoPackage file (GDAL wrote ``table`` into it with ``SPATIAL_INDEX=NO``).
    table
        The layer's table.
    bounds
        The envelope of every feature, shape ``(n, 4)``: min x, min y, max x, max y in the
        layer's CRS units (``shapely.bounds`` of the geometries written); NaN for an empty
        or missing geometry, which is not indexed (as GDAL). Read back from the table when
        not given.
    fids
        The feature id of each row of ``bounds`` (int64); ``1 … n`` when not given, the
        ids GDAL gives the rows of a frame written in order.

    Returns
    -------
    int
        The number of features indexed.

    Raises
    ------
    ValueError
        When ``table`` is not a features table of the file, already has a spatial index, or
        does not hold exactly the features ``fids`` names. Nothing is written then.
    """
    path = Path(path)
    if bounds is None:
        bounds, fids = _read_bounds(path, table)
    bounds = np.asarray(bounds, dtype=np.float64)
    if bounds.size == 0:
        bounds = bounds.reshape(0, 4)
    if bounds.ndim != 2 or bounds.shape[1] != 4:
        raise ValueError(f"bounds of shape {bounds.shape}, not (features, 4)")
    fids = np.arange(1, len(bounds) + 1, dtype=np.int64) if fids is None else np.asarray(fids)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as con:
        table, geom, fid = _layout(con, table)
        _check_feature_ids(con, table, fid, fids, len(bounds))
        ids, boxes = _index_boxes(bounds, fids.astype(np.int64, copy=False))
        con.execute("PRAGMA synchronous = OFF")
        con.execute("BEGIN")
        try:
            _write_index(con, table, geom, fid, ids, boxes)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    return len(ids)


def rtree_name(table: str, geometry_column: str) -> str:
    """The name of a layer's R-tree virtual table (GeoPackage ``gpkg_rtree_index``)."""
    return f"rtree_{table}_{geometry_column}"


def _read_bounds(path: Path, table: str) -> tuple[np.ndarray, np.ndarray]:
    """Every feature's envelope (NaN when empty or missing) and feature id, read with GDAL."""
    import pyogrio
    import shapely

    _, fids, geometry, _ = pyogrio.raw.read(path, layer=table, columns=[], return_fids=True)
    return shapely.bounds(shapely.from_wkb(geometry)), np.asarray(fids, dtype=np.int64)


def _layout(con: sqlite3.Connection, table: str) -> tuple[str, str, str]:
    """The table's name as the file spells it (SQLite names ignore case), its geometry and
    feature id columns; it must have no R-tree yet."""
    found = con.execute(
        "SELECT table_name, column_name FROM gpkg_geometry_columns "
        "WHERE lower(table_name) = lower(?)",
        (table,),
    ).fetchone()
    pk = con.execute(f"SELECT name FROM pragma_table_info({sql_text(table)}) WHERE pk = 1")
    pk = pk.fetchall()
    if found is None or len(pk) != 1:
        raise ValueError(f"{table!r} is not a features table with one feature id column")
    table, geom = found
    if table_exists(con, rtree_name(table, geom)):
        raise ValueError(f"{table!r} already has a spatial index")
    return table, geom, pk[0][0]


def _check_feature_ids(con, table: str, fid: str, fids: np.ndarray, rows: int) -> None:
    """``fids`` are as many distinct ids as the table has rows, with its least and greatest
    (a cheap check that they name its features)."""
    if len(fids) != rows:
        raise ValueError(f"{len(fids)} feature ids for {rows} envelopes")
    low, high = feature_id_range(con, table, fid)
    count = feature_count(con, table)
    if count != rows or (rows and (low != fids.min() or high != fids.max())):
        raise ValueError(
            f"{table!r} holds {count} features (ids {low} … {high}), not the {rows} given"
        )
    if (np.diff(fids) <= 0).any() and (np.diff(np.sort(fids)) == 0).any():
        raise ValueError("the feature ids are not distinct")


def feature_id_range(con: sqlite3.Connection, table: str, fid: str) -> tuple[int, int]:
    """The least and greatest feature id of ``table`` (None, None when empty)."""
    q = sql_name(fid)
    # min and max asked apart: each then reads one end of the table's B-tree, not all of it
    low, high = (
        con.execute(f"SELECT {end}({q}) FROM {sql_name(table)}").fetchone()[0]
        for end in ("min", "max")
    )
    return low, high


def feature_count(con: sqlite3.Connection, table: str) -> int:
    """The table's row count: GDAL's own (kept by its triggers in ``gpkg_ogr_contents``)
    when it keeps one; counting scans the whole table (1 s for 5 M buildings)."""
    with contextlib.suppress(sqlite3.OperationalError):  # no gpkg_ogr_contents
        kept = con.execute(
            "SELECT feature_count FROM gpkg_ogr_contents WHERE lower(table_name) = lower(?)",
            (table,),
        ).fetchone()
        if kept is not None and kept[0] is not None:
            return kept[0]
    return con.execute(f"SELECT count(*) FROM {sql_name(table)}").fetchone()[0]


def _index_boxes(bounds: np.ndarray, fids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids and float32 boxes (min x, max x, min y, max y, each containing the float64
    envelope, rounded as SQLite's R*Tree rounds) of the features with an envelope."""
    with np.errstate(invalid="ignore"):
        kept = (bounds[:, 0] <= bounds[:, 2]) & (bounds[:, 1] <= bounds[:, 3])
    if not kept.all():
        bounds, fids = bounds[kept], fids[kept]
    boxes = np.empty((len(bounds), 4), dtype=np.float32)
    for k, (column, up) in enumerate(((0, False), (2, True), (1, False), (3, True))):
        boxes[:, k] = _rounded(bounds[:, column], up=up)
    return fids, boxes


def _rounded(values: np.ndarray, *, up: bool) -> np.ndarray:
    """The float32 at or above (``up``) or at or below each value, as SQLite's
    ``rtreeValueUp`` and ``rtreeValueDown`` compute it."""
    f = values.astype(np.float32)
    # the float32 nearest to the value nudged by 2^-23 of itself away from the wrong side
    outward = np.where((values < 0) == up, _TOWARDS_ZERO, _AWAY_FROM_ZERO)
    nudged = (values * outward).astype(np.float32)
    return np.where(f < values if up else f > values, nudged, f)


def _write_index(con, table: str, geom: str, fid: str, ids: np.ndarray, boxes) -> None:
    """The R-tree of ``boxes``, its triggers and its gpkg_extensions row, in one transaction."""
    rtree = rtree_name(table, geom)
    _register(con, table, geom)
    con.execute(f"CREATE VIRTUAL TABLE {sql_name(rtree)} USING rtree(id, minx, maxx, miny, maxy)")
    if len(ids):
        # SQLite sized the empty root it created from the page size; every node is that size.
        size = con.execute(
            f"SELECT length(data) FROM {sql_name(rtree + '_node')} WHERE nodeno = 1"
        ).fetchone()[0]
        _load_tree(con, rtree, ids, boxes, node_size=size)
    names = {"r": sql_name(rtree), "t": sql_name(table), "g": sql_name(geom)}
    names["i"] = sql_name(fid)
    for suffix, body in _TRIGGERS.items():
        con.execute(f"CREATE TRIGGER {sql_name(f'{rtree}_{suffix}')} " + body.format(**names))


def _register(con, table: str, geom: str) -> None:
    """The ``gpkg_rtree_index`` row of ``gpkg_extensions`` (the table created if missing)."""
    add_extensions_table(con)
    con.execute(
        "INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, "
        "scope) VALUES (?, ?, ?, ?, 'write-only')",
        (table, geom, _EXTENSION, _EXTENSION_DEFINITION),
    )


def _load_tree(con, rtree: str, ids: np.ndarray, boxes: np.ndarray, *, node_size: int) -> None:
    """Replace the empty root of ``rtree`` by a packed tree of ``boxes``: the node, parent
    and rowid shadow tables written directly (one statement per level, not per cell)."""
    capacity = (node_size - 4) // _CELL.itemsize
    levels = _pack(boxes, capacity)
    depth = len(levels) - 1
    # Node numbers: the root is 1, each level's nodes follow those of the level above.
    first = {depth: 1}
    for level in range(depth - 1, -1, -1):
        first[level] = first[level + 1] + len(levels[level + 1].nodes)
    con.execute(f"DELETE FROM {sql_name(rtree + '_node')}")
    for level in range(depth, -1, -1):
        # levels are dropped once written: a city's leaves are hundreds of MB
        order, entries, _ = levels.pop()
        children = ids[order] if level == 0 else order + first[level - 1]
        del order
        owners = _write_nodes(
            con,
            rtree,
            children,
            entries,
            first=first[level],
            node_size=node_size,
            depth=depth if level == depth else 0,
        )
        del entries
        if level == 0:
            _insert_rowids(con, rtree, children, owners)
        else:
            con.executemany(
                f"INSERT INTO {sql_name(rtree + '_parent')} VALUES (?, ?)",
                zip(children.tolist(), owners.tolist(), strict=True),
            )


def _write_nodes(
    con,
    rtree: str,
    children: np.ndarray,
    boxes: np.ndarray,
    *,
    first: int,
    node_size: int,
    depth: int,
) -> np.ndarray:
    """Insert the nodes ``first``, ``first + 1`` … holding ``children`` (``capacity`` per
    node) into the ``_node`` table; the node of each child."""
    capacity = (node_size - 4) // _CELL.itemsize
    blobs = _node_blobs(children, boxes, capacity, node_size, depth=depth)
    nodes = np.arange(first, first + len(blobs), dtype=np.int64)
    # numpy rows bind as blobs: no copy of the 120 MB of 5 M features' leaves
    con.executemany(
        f"INSERT INTO {sql_name(rtree + '_node')} VALUES (?, ?)",
        zip(nodes.tolist(), blobs, strict=True),
    )
    return np.repeat(nodes, capacity)[: len(children)]


def _node_blobs(
    children: np.ndarray, boxes: np.ndarray, capacity: int, node_size: int, *, depth: int
) -> np.ndarray:
    """The blobs (rows of bytes) of the nodes holding ``children``, ``capacity``
    consecutive ones each, zero-padded to ``node_size`` bytes as SQLite writes them."""
    count = -(-len(children) // capacity)
    padded = count * capacity
    buf = np.zeros((count, node_size), dtype=np.uint8)
    width = capacity * _CELL.itemsize
    cells = buf[:, 4 : 4 + width].view(_CELL)
    for name, values in zip(_CELL.names, (children, *boxes.T), strict=True):
        if len(values) < padded:
            values = np.concatenate([values, np.zeros(padded - len(values), values.dtype)])
        cells[name] = values.reshape(count, capacity)
    filled = np.minimum(capacity, len(children) - capacity * np.arange(count))
    buf[:, 2:4] = filled.astype(">u2").view(np.uint8).reshape(count, 2)
    buf[:, 0:2] = np.array([depth], dtype=">u2").view(np.uint8)
    return buf


def _insert_rowids(con, rtree: str, ids: np.ndarray, leaves: np.ndarray) -> None:
    """The ``_rowid`` table: each feature id's leaf node, in feature id order."""
    table = sql_name(rtree + "_rowid")
    low, span = int(ids.min()), int(ids.max()) - int(ids.min()) + 1
    if span > 2 * len(ids) or not _reads_json(con):
        order = np.argsort(ids)
        con.executemany(
            f"INSERT INTO {table} VALUES (?, ?)",
            zip(ids[order].tolist(), leaves[order].tolist(), strict=True),
        )
        return
    # Dense ids (GDAL numbers a frame's rows 1 … n): the leaf of every id in one JSON array,
    # 0 where no feature is indexed, which SQLite reads in order twice as fast as it binds
    # the same rows one by one.
    by_id = np.zeros(span, dtype=leaves.dtype)
    by_id[ids - low] = leaves
    gaps = " WHERE value != 0" if span > len(ids) else ""
    con.execute(
        f"INSERT INTO {table} SELECT key + ?, value FROM json_each(?){gaps}",
        (low, _json_integers(by_id)),
    )


def _reads_json(con) -> bool:
    """SQLite has its JSON functions (built in since 3.38; an option before)."""
    try:
        con.execute("SELECT json('[]')")
    except sqlite3.OperationalError:
        return False
    return True


def _json_integers(values: np.ndarray) -> str:
    """The JSON array of non-negative integers, each right-aligned in a fixed width (JSON
    allows the spaces): numpy writes it in half the time Python prints the numbers."""
    values = values.astype(np.uint32 if values.max() < 2**32 else np.uint64)
    width = len(str(int(values.max())))
    text = np.full((len(values), width + 1), ord(","), dtype=np.uint8)
    rest = values.copy()
    for k in range(width - 1, -1, -1):
        text[:, k] = rest % 10 + ord("0")
        rest //= 10
    for k in range(width - 1):  # leading zeros as spaces (JSON numbers have none)
        text[values < 10 ** (width - 1 - k), k] = ord(" ")
    return "[" + text.tobytes()[:-1].decode("ascii") + "]"


class _Level(NamedTuple):
    """One level of a packed tree: node ``k`` holds entries ``order[k * capacity : (k + 1)
    * capacity]`` of the level below (features for the leaves), whose boxes, in that order,
    are ``entries``; ``nodes`` are the boxes of its nodes."""

    order: np.ndarray
    entries: np.ndarray
    nodes: np.ndarray


def _pack(boxes: np.ndarray, capacity: int) -> list[_Level]:
    """Sort-tile-recursive packing, leaves first; the last level has one node, the root."""
    levels = []
    while True:
        order = _str_order(boxes, capacity)
        entries = np.take(boxes, order, axis=0)  # 6x faster than boxes[order] for 5 M
        levels.append(_Level(order, entries, _group_boxes(entries, capacity)))
        if len(levels[-1].nodes) == 1:
            return levels
        boxes = levels[-1].nodes


def _str_order(boxes: np.ndarray, capacity: int) -> np.ndarray:
    """The sort-tile-recursive order of ``boxes``: by centre x into vertical slices of
    about sqrt(nodes) nodes each, by centre y inside each slice."""
    n = len(boxes)
    if n <= capacity:
        return np.arange(n)
    per_slice = capacity * int(np.ceil(np.sqrt(-(-n // capacity))))
    # The x order sorts integers packing the quantised centre above the position: numpy's
    # vectorised value sort takes half the time of an argsort of the floats. Quantising
    # only ties centres a 2**-40th of the extent apart, which then go by position.
    bits = max((n - 1).bit_length(), 1)
    x = _quantised(boxes[:, 0].astype(np.float64) + boxes[:, 1], 64 - bits)
    by_x = _sorted(x << np.uint64(bits) | np.arange(n, dtype=np.uint64), bits)
    y = boxes[:, 2].astype(np.float64) + boxes[:, 3]
    # One sort per slice (a loop of sqrt(n / capacity) steps): slices that fit in the
    # CPU's cache sort in half the time of all of y at once.
    for start in range(0, n, per_slice):
        part = by_x[start : start + per_slice]
        part[:] = part[np.argsort(y[part])]
    return by_x


def _quantised(values: np.ndarray, bits: int) -> np.ndarray:
    """``values`` scaled onto the integers 0 … 2**bits - 1 (uint64, at most 52 bits: a
    float64 holds those exactly), order kept (infinite or NaN ones anywhere)."""
    top = float(2 ** min(bits, 52) - 1)
    low, high = values.min(), values.max()
    scale = top / (high - low) if high > low else 0.0
    with np.errstate(invalid="ignore"):
        return np.minimum((values - low) * scale, top).astype(np.uint64)


def _sorted(keys: np.ndarray, position_bits: int) -> np.ndarray:
    """The positions held in the low ``position_bits`` of ``keys``, in the keys' order."""
    keys.sort()
    return (keys & np.uint64((1 << position_bits) - 1)).view(np.int64)


def _group_boxes(boxes: np.ndarray, capacity: int) -> np.ndarray:
    """The box of each run of ``capacity`` consecutive boxes."""
    starts = np.arange(0, len(boxes), capacity)
    return np.column_stack(
        [
            np.minimum.reduceat(boxes[:, 0], starts),
            np.maximum.reduceat(boxes[:, 1], starts),
            np.minimum.reduceat(boxes[:, 2], starts),
            np.maximum.reduceat(boxes[:, 3], starts),
        ]
    )


def add_extensions_table(con: sqlite3.Connection) -> None:
    """Create ``gpkg_extensions`` as GDAL creates it, unless the file has it."""
    if not table_exists(con, "gpkg_extensions"):
        con.execute(_EXTENSIONS_TABLE)


def table_exists(con: sqlite3.Connection, name: str, *, schema: str = "main") -> bool:
    """Whether the file (``schema``: an attached one) has a table, view or index ``name``
    (SQLite names ignore case)."""
    found = con.execute(
        f"SELECT 1 FROM {sql_name(schema)}.sqlite_master WHERE lower(name) = lower(?)", (name,)
    )
    return found.fetchone() is not None


def sql_name(name: str) -> str:
    """An SQLite identifier, quoted (as GDAL quotes it: double quotes doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


def sql_text(text: str) -> str:
    """An SQLite string literal."""
    return "'" + str(text).replace("'", "''") + "'"
