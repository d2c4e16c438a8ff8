"""Reading a layer: from a file (GeoPackage, GeoJSON, Shapefile, GeoParquet, CSV/Excel ledger),
a database table or an in-memory GeoDataFrame; :func:`read_layer` picks which."""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from openpyxl.utils.exceptions import InvalidFileException
from shapely.errors import ShapelyError

from firegrid.spatial.errors import InputError
from firegrid.spatial.io.database import is_database_url, read_database_layer
from firegrid.spatial.io.geoparquet import read_parquet_file
from firegrid.spatial.io.sources import LayerSource

VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".zip", ".fgb", ".kml"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet"}
TABLE_SUFFIXES = {".csv", ".txt", ".xlsx", ".xls"}
# Chinese Excel saves "CSV" as GBK; GB18030 is its superset, so it reads both.
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
# What openpyxl and pandas raise on a damaged workbook: a truncated zip, a missing part, bad
# XML (ElementTree's ParseError is a SyntaxError), or content that is no workbook at all.
EXCEL_ERRORS = (
    zipfile.BadZipFile,
    InvalidFileException,
    KeyError,
    ValueError,
    OSError,
    EOFError,
    SyntaxError,
)


def read_csv_any_encoding(path: str | Path, **kwargs) -> tuple[pd.DataFrame, str]:
    """Read a CSV in UTF-8, UTF-8 with BOM, GBK/GB18030 or UTF-16 without being told which.

    Returns the table (all columns as text, so ids like "007" keep their zeros) and the
    encoding that worked. A UTF-16 file (Excel's "Unicode text") may be tab-separated.

    Raises
    ------
    InputError
        Naming the file, and the row as a spreadsheet shows it (header = row 1) when a row
        cannot be parsed; also for an empty file and a header given twice.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", file=str(path)) from exc
    text, encoding = _decode(raw, path)
    # Blank lines above the header: pandas cannot find columns in them, so they are cut off
    # here and counted back into the row positions.
    lines = text.split("\n")
    lead = next((i for i, line in enumerate(lines) if line.strip()), 0)
    text = "\n".join(lines[lead:])
    first = text.split("\n", 1)[0]
    sep = "\t" if "\t" in first and "," not in first else ","
    try:
        grid = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            **kwargs,
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError("the file is empty (no header row)", file=str(path)) from exc
    except pd.errors.ParserError as exc:
        raise _parser_error(exc, path) from exc
    grid.index = grid.index + lead
    return _with_header(grid, path), encoding


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = CSV_ENCODINGS
    for encoding in encodings:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InputError(
        "cannot decode the file as UTF-8, GBK/GB18030 or UTF-16; save it as UTF-8 CSV",
        file=str(path),
    )


def _parser_error(exc: Exception, path: Path) -> InputError:
    """pandas' tokenizer message as the row a spreadsheet shows (header = row 1)."""
    text = str(exc)
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:  # "line" counts from 1 with the header: it is the spreadsheet row
        n, line, saw = fields.groups()
        return InputError(
            f"the row has {saw} fields but the header has {n} "
            "(a comma inside a value needs the value in double quotes)",
            file=str(path),
            feature=f"row {line}",
        )
    quote = re.search(r"inside string starting at row (\d+)", text)
    if quote:  # "row" counts from 0 with the header
        return InputError(
            "a double quote opens a value that is never closed",
            file=str(path),
            feature=f"row {int(quote.group(1)) + 1}",
        )
    return InputError(f"cannot read as CSV: {_said(exc)}", file=str(path))


def _said(exc: BaseException) -> str:
    """A library's message on one line (some span several, indented)."""
    return " ".join(str(exc).split())


def _with_header(grid: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Make the first row of a sheet read without header the header, checking it."""
    # Blank rows are dropped only after the header is found, keeping each data row's index
    # as its position in the file (header = position 0 → index -1): errors then name the row a
    # spreadsheet shows even past a blank line.
    text = grid.astype(object).where(grid.notna(), "").astype(str)
    blank = (text.apply(lambda col: col.str.strip()) == "").all(axis=1).to_numpy()
    grid = grid.set_axis(np.asarray(grid.index, dtype=np.int64) - 1, axis=0)
    first = int(np.argmax(~blank)) if (~blank).any() else len(grid)
    if grid.empty or first == len(grid):
        raise InputError("the file is empty (no header row)", file=str(path))
    grid, blank = grid.iloc[first:], blank[first:]
    header = ["" if pd.isna(h) else str(h).strip() for h in grid.iloc[0].tolist()]
    if not any(header):
        raise InputError("the first row (the header) is blank", file=str(path), feature="row 1")
    # Blank headers get pandas' own names; a header given twice would be renamed x.1 silently.
    names = [h or f"Unnamed: {i}" for i, h in enumerate(header)]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise InputError(
                f"the header appears twice, in columns {_letters(seen[name])} and "
                f"{_letters(i)}; rename one",
                file=str(path),
                feature="row 1",
                column=name,
            )
        seen[name] = i
    df = grid.iloc[1:][~blank[1:]]
    df.columns = names
    return df


def _letters(i: int) -> str:
    """A 0-based column position as a spreadsheet column letter (0 → A, 26 → AA)."""
    out = ""
    i += 1
    while i:
        i, rest = divmod(i - 1, 26)
        out = chr(65 + rest) + out
    return out


def read_table(
    path: str | Path, *, sheet: str | int | None = None
) -> tuple[pd.DataFrame, str | None]:
    """Read a CSV or Excel ledger as text columns; returns the table and the encoding used.

    Raises
    ------
    InputError
        Naming the file (and the sheet or row) when it cannot be read as a table.
    """
    path = Path(path)
    if path.suffix.lower() in {".xlsx", ".xls"}:
        return _read_excel(path, sheet), None
    return read_csv_any_encoding(path)


def _read_excel(path: Path, sheet: str | int | None) -> pd.DataFrame:
    try:
        with pd.ExcelFile(path) as book:
            names = [str(n) for n in book.sheet_names]
            found = (
                sheet is None
                or sheet in names
                or (isinstance(sheet, int) and 0 <= sheet < len(names))
            )
            if not found:
                raise InputError(
                    f"no sheet {sheet!r}; the workbook has sheets {names}", file=str(path)
                )
            grid = pd.read_excel(
                book, sheet_name=0 if sheet is None else sheet, header=None, dtype=str
            )
    except ImportError as exc:  # a legacy .xls needs xlrd
        raise InputError(
            "legacy Excel 97-2003 workbook (.xls): save it as .xlsx or CSV (UTF-8), "
            "or install xlrd",
            file=str(path),
        ) from exc
    except EXCEL_ERRORS as exc:
        raise InputError(
            f"cannot read as an Excel workbook (damaged, truncated or not .xlsx): {_said(exc)}",
            file=str(path),
        ) from exc
    return _with_header(grid.fillna(""), path)


def _points_from_lonlat(
    df: pd.DataFrame, lon: str, lat: str, source: LayerSource
) -> gpd.GeoDataFrame:
    for col in (lon, lat):
        if col not in df.columns:
            raise InputError(
                f"longitude/latitude column missing; the file has columns {list(df.columns)}",
                file=source.file,
                column=col,
            )
    values = {}
    for col in (lon, lat):
        text = df[col].astype(str).str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        # "inf" and "nan" parse as numbers but are no place on Earth.
        bad = np.flatnonzero(~np.isfinite(numbers.to_numpy(dtype=float)))
        if len(bad):
            first = int(bad[0])
            shown = repr(df[col].iloc[first]) if text.iloc[first] else "empty"
            raise InputError(
                f"coordinate is not a finite number ({shown})"
                + (f"; {len(bad) - 1} more rows like it" if len(bad) > 1 else ""),
                file=source.file,
                feature=source.feature(first),
                column=col,
            )
        values[col] = numbers.to_numpy(dtype=float)
    geometry = gpd.points_from_xy(values[lon], values[lat])
    return gpd.GeoDataFrame(df.drop(columns=[lon, lat]), geometry=geometry, crs=None)


def read_layer(
    where: str | Path | gpd.GeoDataFrame,
    *,
    layer: str | int | None = None,
    lon: str | None = None,
    lat: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> tuple[gpd.GeoDataFrame, LayerSource]:
    """Read one layer from a file, a database table or a GeoDataFrame; rename its headers.

    The one place that picks how a layer is read, so every source gives the same kind of
    frame and a :class:`LayerSource` that names it in messages.

    Parameters
    ----------
    where
        A layer file (see :func:`read_layer_file`); a PostgreSQL URL
        (``postgresql://user@host/db``, see
        :func:`firegrid.spatial.io.database.read_database_layer`) whose table ``layer`` names;
        or an in-memory GeoDataFrame (rows are then named by their 0-based position).
    layer
        Layer inside a multi-layer file, sheet of a workbook, or ``schema.table`` in the
        database.
    lon, lat
        Longitude/latitude column headers of a CSV/Excel ledger (default: auto-detect common
        names). A table or a frame has its own geometry column: giving them is an error.
    columns
        Mapping user header → canonical column name.

    Returns
    -------
    The layer with its source's CRS (``None`` for ledgers and tables without SRID, whose
    system the config declares), and a :class:`LayerSource` for error messages.
    """
    if isinstance(where, gpd.GeoDataFrame):
        raw, source = _frame_layer(where)
    elif is_database_url(where):
        raw, source = read_database_layer(str(where), layer)
    else:
        return read_layer_file(where, layer=layer, lon=lon, lat=lat, columns=columns)
    _no_lonlat(lon, lat, source)
    return _renamed(raw, source, columns), source


def read_layer_file(
    path: str | Path,
    *,
    layer: str | int | None = None,
    lon: str | None = None,
    lat: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> tuple[gpd.GeoDataFrame, LayerSource]:
    """Read one layer file and rename the user's headers to canonical names.

    :func:`read_layer` reads database tables and frames too; this is its file engine.

    Parameters
    ----------
    path
        A GeoPackage, GeoJSON, Shapefile, GeoParquet, or CSV/Excel ledger.
    layer
        Layer name inside a multi-layer file (GeoPackage), or sheet name for Excel.
    lon, lat
        Longitude/latitude column headers of a ledger (default: auto-detect common names).
    columns
        Mapping user header → canonical column name.

    Returns
    -------
    The layer with its file's CRS (``None`` for ledgers, whose system the config declares),
    and a :class:`LayerSource` for error messages.
    """
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in TABLE_SUFFIXES:
        raw, source = _read_ledger(path, layer, lon, lat)
    else:
        raw, source = _read_gis(path, layer), LayerSource(str(path))
    return _renamed(raw, source, columns), source


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("file not found", file=str(path))
    if path.is_dir():
        raise InputError("is a folder, not a layer file", file=str(path))


def _read_ledger(
    path: Path, sheet: str | int | None, lon: str | None, lat: str | None
) -> tuple[gpd.GeoDataFrame, LayerSource]:
    """A CSV/Excel ledger as points from its longitude/latitude columns (no CRS)."""
    df, encoding = read_table(path, sheet=sheet)
    source = LayerSource(str(path), row_label="row", row_base=2, encoding=encoding)
    lon = lon or _guess(df.columns, LON_NAMES)
    lat = lat or _guess(df.columns, LAT_NAMES)
    if lon is None or lat is None:
        raise InputError(
            "a ledger needs longitude and latitude columns (name them with lon = / lat = "
            f"in the config); the file has columns {list(df.columns)}",
            file=str(path),
            column=lon or lat or "经度/纬度",
        )
    return _points_from_lonlat(df, lon, lat, source), source


def _frame_layer(gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, LayerSource]:
    """A copy of an analyst's frame, indexed by position (rows are named by it)."""
    source = LayerSource("in-memory GeoDataFrame", row_label="row", row_base=0)
    if gdf.active_geometry_name is None:
        raise InputError("the frame has no geometry column", file=source.file)
    return gdf.reset_index(drop=True), source


def _no_lonlat(lon: str | None, lat: str | None, source: LayerSource) -> None:
    if lon is not None or lat is not None:
        raise InputError(
            "lon = / lat = name the coordinate columns of a CSV/Excel ledger; this layer has "
            "a geometry column, which is read instead (remove lon/lat from the config)",
            file=source.file,
            column=lon or lat,
        )


def _renamed(
    gdf: gpd.GeoDataFrame, source: LayerSource, columns: Mapping[str, str] | None
) -> gpd.GeoDataFrame:
    """The layer with the config's headers renamed to canonical names, remembered in
    ``source.headers``; a mapped header the layer lacks, or one mapped onto a column the layer
    already has, is an error."""
    columns = dict(columns or {})
    unknown = [c for c in columns if c not in gdf.columns]
    if unknown:
        raise InputError(
            f"the config maps header(s) {unknown} but the layer has columns "
            f"{[c for c in gdf.columns if c != gdf.geometry.name]}",
            file=source.file,
            column=unknown[0],
        )
    taken = [(user, canon) for user, canon in columns.items() if canon in gdf.columns]
    taken = [(u, c) for u, c in taken if u != c and c not in columns]  # A→B with B→C is fine
    if taken:
        user, canon = taken[0]
        raise InputError(
            f"the config maps this header onto {canon!r}, but the layer has a column "
            f"{canon!r} too; map only one of them",
            file=source.file,
            column=user,
        )
    source.headers = {canon: user for user, canon in columns.items()}
    return gdf.rename(columns=columns)


def _read_gis(path: Path, layer: str | int | None) -> gpd.GeoDataFrame:
    """A GIS file (GeoPackage, GeoJSON, Shapefile …, GeoParquet) with stripped headers."""
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    if layer is not None and not parquet:
        # Name the layers the file has rather than the library's "could not open".
        layers = _layer_names(path)
        found = str(layer) in (layers or ()) or (
            isinstance(layer, int) and 0 <= layer < len(layers or ())
        )
        if layers is not None and not found:
            raise InputError(f"no layer {layer!r}; the file has layers {layers}", file=str(path))
    try:
        if parquet:
            gdf = read_parquet_file(path)
        else:
            gdf = gpd.read_file(path, layer=layer) if layer is not None else gpd.read_file(path)
    except (
        pyogrio.errors.DataSourceError,
        pyogrio.errors.DataLayerError,
        # pyarrow's errors derive from these builtins; shapely's from ShapelyError.
        ValueError,
        OSError,
        TypeError,
        KeyError,
        NotImplementedError,
        ShapelyError,
    ) as exc:
        raise InputError(f"cannot read as a GIS layer: {_said(exc)}", file=str(path)) from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise InputError("the file has no geometry column", file=str(path))
    names = [str(c).strip() if c != gdf.geometry.name else c for c in gdf.columns]
    twice = pd.Index(names)[pd.Index(names).duplicated()]
    if len(twice):
        raise InputError("the header appears twice; rename one", file=str(path), column=twice[0])
    gdf.columns = names
    return gdf


def _layer_names(path: Path) -> list[str] | None:
    try:
        return [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError):
        return None


LON_NAMES = ("lon", "lng", "longitude", "x", "经度", "东经")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "北纬")


def _guess(names, candidates) -> str | None:
    lowered = {str(n).strip().lower(): n for n in names}
    return next((lowered[c] for c in candidates if c in lowered), None)
