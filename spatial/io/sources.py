"""Where a layer's rows came from, so every message names the user's file or table, row and header.

A :class:`LayerSource` is made by the reader (:func:`firegrid.spatial.io.readers.read_layer`):
a file, a database table (``postgresql://user@host/db schema.table``, never with the password)
or an in-memory frame. A layer read and validated by
:func:`firegrid.spatial.io.district.load_district` carries it in ``attrs``; an error found later
(the hazard ledger, a risk input) is then located as in validation: file or table, row as the
user sees it, own header.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from firegrid.spatial.io.layers import SCHEMAS

SOURCE_ATTR = "firegrid_source"


@dataclass
class LayerSource:
    """Where a layer came from, so every message can point at the user's own file and header.

    ``file`` is the path, or for a database table the URL without password and the table
    (``postgresql://user@host/db schema.table``).
    ``row_label``/``row_base`` turn a 0-based position into what the user sees: spreadsheet
    rows start at 2 (row 1 is the header); GIS features and table rows (in primary-key order)
    are numbered from 1.
    ``headers`` maps canonical column names back to the user's original header.
    """

    file: str
    row_label: str = "feature"
    row_base: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None

    def feature(self, position: int, ident: object = None, id_column: str | None = None) -> str:
        text = f"{self.row_label} {int(position) + self.row_base}"
        if ident is not None and not (isinstance(ident, float) and np.isnan(ident)):
            text += f" ({id_column or 'id'} {ident})"
        return text

    def column(self, canonical: str) -> str | tuple[str, str]:
        """The column as the user knows it: their header and the canonical name, when mapped."""
        original = self.headers.get(canonical)
        return (original, canonical) if original and original != canonical else canonical


def attach_source(gdf: gpd.GeoDataFrame, source: LayerSource) -> gpd.GeoDataFrame:
    """The validated layer with a 0..n-1 index and, in ``attrs``, where it came from.

    Later steps (the hazard ledger) use :func:`source_of` to name the user's file, row and
    header. ``gdf``'s index must hold each feature's position in the file (as
    :func:`firegrid.spatial.io.validate.coerce_layer` returns it); rows dropped there are remembered so positions still
    map back to the file's rows.
    """
    kept = np.asarray(gdf.index, dtype=np.int64)
    dropped = _positions_not_in(kept, kept.max() + 1 if len(kept) else 0)
    out = gdf.reset_index(drop=True)
    out.attrs[SOURCE_ATTR] = {
        "file": source.file,
        "row_label": source.row_label,
        "row_base": source.row_base,
        "headers": dict(source.headers),
        "dropped": dropped.tolist(),
        "n": len(out),
    }
    return out


def source_of(gdf: pd.DataFrame | pd.Series) -> tuple[LayerSource, np.ndarray] | None:
    """Where a layer from :func:`attach_source` came from, and the position in the file of
    each of its index labels (a subset keeps its labels, so it still maps back); None for a
    frame built elsewhere (a notebook's own)."""
    meta = getattr(gdf, "attrs", {}).get(SOURCE_ATTR)
    if not meta:
        return None
    source = LayerSource(
        meta["file"],
        row_label=meta["row_label"],
        row_base=meta["row_base"],
        headers=dict(meta["headers"]),
    )
    dropped = np.asarray(meta["dropped"], dtype=np.int64)
    return source, _positions_not_in(dropped, meta["n"] + len(dropped))


def _positions_not_in(positions: np.ndarray, n: int) -> np.ndarray:
    """The positions 0..n-1 not in ``positions``, ascending (``np.setdiff1d`` without its
    sort or hash: 5 M buildings took seconds)."""
    mask = np.ones(n, dtype=bool)
    mask[positions] = False
    return np.flatnonzero(mask)


def locate(
    frame: pd.DataFrame | pd.Series, pos: int, column: str, *, layer: str
) -> dict[str, object]:
    """``file``, ``feature`` and ``column`` of a cell for :class:`InputError`, as the user sees
    them: for a validated layer (see :func:`attach_source`) the file, the row in the file and
    the user's header; for a frame built in a notebook, the layer name and the index label.
    """
    schema = SCHEMAS.get(layer)
    id_column = schema.id_column if schema else None
    has_id = isinstance(frame, pd.DataFrame) and id_column in frame
    ident = frame[id_column].iloc[pos] if has_id else None
    ident = None if ident is None or pd.isna(ident) else ident
    found = source_of(frame)
    if found is None:
        label = f"index {frame.index[pos]}" + (f" ({id_column} {ident})" if ident else "")
        return {"file": f"{layer} layer", "feature": label, "column": column}
    source, rows = found
    label = frame.index[pos]
    row = rows[label] if isinstance(label, int | np.integer) and 0 <= label < len(rows) else pos
    return {
        "file": source.file,
        "feature": source.feature(int(row), ident, id_column),
        "column": source.column(column),
    }


def shown(value: object) -> str:
    """A cell as the user wrote it: text quoted, numbers plain (``2.5``, not a numpy repr)."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return repr(str(value))
