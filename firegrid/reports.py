"""Run outputs: results GeoPackage, per-grid summary (CSV + Excel), headline summary.

What is meant for leaders — the per-grid table and the summaries — passes the privacy
allow-list of :mod:`firegrid.maps.privacy`; the GeoPackage drops personal columns unless the config
keeps them. Spreadsheet cells that would start a formula are written as text. The folder is
written as a whole and swapped in atomically by :mod:`firegrid.outputs`.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any, Self

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from firegrid.geopackage import (
    VIEW_BASES,
    ViewRows,
    create_view,
    gpkg_ready,
    rows_table,
    view_plan,
    write_point_layer,
    write_view,
    write_view_rows,
)
from firegrid.gpkg_copy import copy_layers, order_layers
from firegrid.gpkg_index import add_spatial_index
from firegrid.maps.options import parameter_values
from firegrid.maps.privacy import personal_columns, redact_text, shared_columns
from firegrid.outputs import write_folder_atomically
from firegrid.spatial import columns, runtime
from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.database import identifier_problem, is_database_url
from firegrid.spatial.io.layers import SCHEMAS
from firegrid.spatial.params import params_from_mapping
from firegrid.wording import percent, share

MAP_FILE = "map.html"
GPKG_FILE = "results.gpkg"
CSV_FILE = "grid_summary.csv"
XLSX_FILE = "grid_summary.xlsx"
SUMMARY_MD = "summary.md"
SUMMARY_JSON = "summary.json"
OUTPUT_FILES = (MAP_FILE, GPKG_FILE, CSV_FILE, XLSX_FILE, SUMMARY_MD, SUMMARY_JSON)
PERSONAL_CHOICES = ("drop", "keep")
# First characters that make Excel, LibreOffice or WPS read a cell as a formula (OWASP CSV
# injection), the full-width forms included: WPS and Excel on Chinese systems accept them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")

# Order of the leading columns of the per-grid table; the rest follow as they come.
GRID_ID_COLUMNS = ("grid_id", "name", "level", "parent_id")
# The leading columns that stay in view when a planner scrolls the workbook sideways.
FROZEN_COLUMNS = ("grid_id", "name")
# Encodings of grid_summary.csv: UTF-8 with a BOM (Excel 2016+, WPS, LibreOffice), or GB 18030
# without a BOM, which older Excel on Chinese Windows opens by double-click.
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
LANGUAGES = ("en", "zh")
# How the workbook shows a column of each unit of the column registry: Excel's number format,
# and the same as a Python format spec (to measure how wide the shown value is). The cells keep
# their full values: a share stays the fraction 0.323 shown as 32.3 %, so sums and filters work.
NUMBER_FORMATS: dict[str, tuple[str, str]] = {
    "share": ("0.0%", ".1%"),
    "count": ("#,##0", ",.0f"),
    "s": ("0", ".0f"),
    "min": ("0.0", ".1f"),
    "days": ("0", ".0f"),
    "years": ("0", ".0f"),
    "m": ("0", ".0f"),
    "km": ("0.0", ".1f"),
    "m²": ("#,##0", ",.0f"),
    "km²": ("0.00", ".2f"),
    "m³": ("#,##0", ",.0f"),
    "0–100": ("0.0", ".1f"),
    "index points": ("0.0", ".1f"),
    "0–1": ("0.00", ".2f"),
    "weight": ("0.00", ".2f"),
    "per year": ("0.0", ".1f"),
    "grade": ("0", ".0f"),
    "level": ("0", ".0f"),
    "0/1": ("0", ".0f"),
}
# Widths of workbook columns in characters (a CJK character counts two): never narrower
# than a short number, never so wide that a long description pushes the rest off screen.
MIN_WIDTH, MAX_WIDTH = 6, 60
# Height of one line of wrapped text in a workbook row, in points (11-point default font).
LINE_HEIGHT = 15


@dataclass(frozen=True)
class OutputOptions:
    """The config's ``[output]`` section.

    Attributes
    ----------
    folder : str or None
        Output folder (relative to the config file). None: ``firegrid-output`` beside the
        config; the command line's ``--out`` overrides it.
    map : bool
        Write ``map.html`` (default True).
    excel : bool
        Write ``grid_summary.xlsx`` beside the CSV (default True).
    personal : {"drop", "keep"}
        ``results.gpkg`` drops columns that look personal (names, phone and ID numbers,
        addresses; by header or content) unless ``[map] allow_fields`` names them (default
        ``"drop"``); ``"keep"`` keeps every input column: then share the GeoPackage only like
        the input ledgers. Outputs meant for leaders never depend on this.
    csv_encoding : {"utf-8-sig", "gb18030"}
        Encoding of ``grid_summary.csv``: UTF-8 with a byte-order mark (default; Excel 2016
        and later, WPS and LibreOffice show the Chinese names), or GB 18030 without one, for
        older Excel on Chinese Windows, which reads a CSV in the system's code page.
    language : {"en", "zh"}
        Language of ``summary.md`` (default ``"en"``); ``"zh"`` writes its headings, figure
        labels and headline in Chinese, with the same figures.
    database : str or None
        A PostgreSQL URL (``"postgresql://user@host/db"``): every result layer is also written
        there, into a new schema per run, in one transaction (:func:`firegrid.store.write_postgis`),
        with the same columns as ``results.gpkg``.
    database_schema : str or None
        The schema's name; default ``firegrid_<run name>_<UTC time>``
        (:func:`firegrid.store.run_schema_name`). It must not exist yet.
    """

    folder: str | None = None
    map: bool = True
    excel: bool = True
    personal: str = "drop"
    csv_encoding: str = "utf-8-sig"
    language: str = "en"
    database: str | None = None
    database_schema: str | None = None

    def __post_init__(self) -> None:
        if self.database is not None and not is_database_url(self.database):
            # Not echoed: the text may hold a password.
            raise ConfigError(
                "[output] database must be a PostgreSQL URL (postgresql://user@host/db)"
            )
        if self.database_schema is not None:
            problem = identifier_problem(self.database_schema)
            if problem:
                raise ConfigError(f"[output] database_schema {self.database_schema!r}: {problem}")
        for key, allowed in (
            ("personal", PERSONAL_CHOICES),
            ("csv_encoding", CSV_ENCODINGS),
            ("language", LANGUAGES),
        ):
            value = getattr(self, key)
            if value not in allowed:
                raise ConfigError(f"[output] {key} must be one of {list(allowed)}, not {value!r}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[output]`` table; ConfigError names an unknown or bad key."""
        return params_from_mapping(cls, d, section="output")


# --------------------------------------------------------------------------------------------
# GeoPackage


def without_personal(frame: pd.DataFrame, *, allow: Iterable[str] = ()) -> pd.DataFrame:
    """``frame`` without the columns that look personal, except those named in ``allow``."""
    allow = set(allow)
    drop = [c for c in personal_columns(frame) if c not in allow]
    return frame.drop(columns=drop) if drop else frame


def read_result_layers(
    folder: str | os.PathLike, names: Iterable[str], *, required: Iterable[str] = ()
) -> dict[str, gpd.GeoDataFrame]:
    """The layers ``names`` of the ``results.gpkg`` in a run's output folder (those it holds).

    Raises
    ------
    InputError
        Naming the folder or file: no ``results.gpkg``, an unreadable one, or a layer of
        ``required`` missing.
    """
    import pyogrio

    gpkg = Path(folder).expanduser() / GPKG_FILE
    if not gpkg.is_file():
        raise InputError(
            f"not a FireGrid output folder: it has no {GPKG_FILE} "
            "(write one with `firegrid run CONFIG --out FOLDER`)",
            file=str(gpkg.parent),
        )
    try:
        present = {str(n) for n, _ in pyogrio.list_layers(gpkg)}
    except Exception as exc:  # GDAL's error types differ by version; any means unreadable
        raise InputError(f"not a readable GeoPackage ({exc})", file=str(gpkg)) from exc
    missing = [n for n in required if n not in present]
    if missing:
        raise InputError(f"not a FireGrid result: it has no {missing[0]!r} layer", file=str(gpkg))
    return {n: gpd.read_file(gpkg, layer=n, engine="pyogrio") for n in names if n in present}


def read_summary(folder: str | os.PathLike) -> dict[str, Any]:
    """``summary.json`` of a run's output folder; empty when the folder has none (or it holds
    no JSON object).

    Raises
    ------
    InputError
        Naming the file, when it is no JSON.
    """
    path = Path(folder).expanduser() / SUMMARY_JSON
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a FireGrid summary ({exc})", file=str(path)) from exc
    return data if isinstance(data, dict) else {}


def write_results_gpkg(
    layers: Mapping[str, gpd.GeoDataFrame],
    path: str | os.PathLike,
    *,
    personal: str = "drop",
    allow: Iterable[str] = (),
    views: bool = True,
) -> Path:
    """Write every layer (with its computed columns) into one GeoPackage, one layer each.

    Layers keep their CRS (the district's metric working CRS); empty layers are skipped.
    Tables without geometry (``pandas.DataFrame``) are written as attribute-only layers.
    With ``personal="drop"`` (default) columns that look personal are left out unless named
    in ``allow`` (the config's ``[map] allow_fields``); ``"keep"`` writes them too.

    ``access_missing`` repeats rows of ``buildings``; when it is verifiably a row subset of
    the ``buildings`` written before it (same index labels, equal values and dtypes of every
    shared column — pandas' string dtypes alike —, identical geometries, same CRS, the same
    personal columns left out), it is written as a GeoPackage spatial
    view over the ``buildings`` table joined to a small table of what ``buildings`` lacks
    (``shortfall_s`` …) and the row order, instead of a second copy of every building. GDAL
    (GeoPandas, pyogrio, QGIS) reads the same columns, values, geometries and row order; the
    feature ids are those of the buildings. ``views=False`` writes every layer as a table.

    GDAL holds Python's lock while it writes, so when the largest layer and the others each
    hold :data:`~firegrid.spatial.runtime.FORK_MIN_ROWS` rows or more (a city) and the run
    may use two cores (:func:`firegrid.spatial.runtime.can_fork`), a forked process writes
    the others into a second file meanwhile, and they are copied in as SQLite stores them
    (:mod:`firegrid.gpkg_copy`): the same layers, rows, indexes and layer order.
    """
    path = Path(path)
    kept = {
        name: frame if personal == "keep" else without_personal(frame, allow=allow)
        for name, frame in layers.items()
        if frame is not None and len(frame)
    }
    before = _sqlite_settings(_writing_settings())
    try:
        big = _parallel_layer(kept)
        if big is None:
            _write_in_order(layers, kept, path, views=views)
        else:
            _write_in_two(layers, kept, path, big=big, views=views)
    finally:
        _sqlite_settings(before)
    if path.exists():
        _fsync(path)
    return path


def _parallel_layer(kept: Mapping[str, pd.DataFrame]) -> str | None:
    """The layer this process writes while a forked one writes the others into a second file
    (:func:`firegrid.spatial.runtime.forked`), or None to write them all here."""
    if len(kept) < 2 or not runtime.can_fork():
        return None
    big = max(kept, key=lambda name: len(kept[name]))
    rest = sum(len(frame) for name, frame in kept.items() if name != big)
    return big if min(len(kept[big]), rest) >= runtime.FORK_MIN_ROWS else None


def _write_in_order(
    layers, kept, path: Path, *, views: bool, only=None, defer_views: bool = False
) -> list[ViewRows]:
    """Write the layers of ``kept`` (those in ``only``, when given) into ``path`` in order.

    A layer that repeats rows of one before it (``access_missing``) becomes a view over it.
    With ``defer_views`` its base may be written into another file: only the view's rows
    table is written here and the view returned, to be made once both are in one file."""
    written, deferred = {}, []
    for name, frame in kept.items():
        if only is None or name in only:
            base = VIEW_BASES.get(name) if views and rows_table(name) not in layers else None
            plan = (
                view_plan(layers[name], frame, layers.get(base), written.get(base))
                if base
                else None
            )
            if plan is not None and defer_views:
                deferred.append(write_view_rows(plan, path, name, base=base))
            elif plan is None or not write_view(plan, path, name, base=base):
                _write_layer(frame, path, name)
        written[name] = frame
    return deferred


def _write_in_two(layers, kept, path: Path, *, big: str, views: bool) -> None:
    """``big`` written into ``path`` here while a forked process writes the other layers into
    a second file; those are then copied into ``path`` as SQLite stores them, and the layers
    listed in ``layers``' order, as when one process writes them all."""
    # named like the file's own side files (an interrupted run's are cleaned as ours)
    side = path.with_name(f"{path.name}-part-{secrets.token_hex(4)}.gpkg")
    rest = [name for name in kept if name != big]

    def write_rest() -> list[ViewRows]:
        # from an empty file, also when a child that failed is run again here (Forked.result)
        side.unlink(missing_ok=True)
        return _write_in_order(layers, kept, side, views=views, only=rest, defer_views=True)

    try:
        with runtime.forked(write_rest) as child:
            _write_layer(kept[big], path, big)
            # synced while the child may still write: the last sync has only the copy left
            _fsync(path)
            deferred = {rows.name: rows for rows in child.result()}
        try:
            copy_layers(side, path, [deferred[n].table if n in deferred else n for n in rest])
        except ValueError:  # the files differ in a way the copy does not handle: write here
            deferred = {}
            _write_in_order(layers, kept, path, views=views, only=rest)
    finally:
        side.unlink(missing_ok=True)
    for name, rows in deferred.items():
        if not create_view(rows, path):
            _write_layer(kept[name], path, name)
    # a view's rows table is registered just before it (write_view_rows, then create_view)
    order_layers(path, [t for name in kept for t in (rows_table(name), name)])


def _write_layer(frame, path: Path, name: str) -> None:
    import pyogrio

    if isinstance(frame, gpd.GeoDataFrame):
        ready = gpkg_ready(frame)
        # Arrow hands GDAL whole columns instead of one feature at a time; same file content.
        # GDAL's R-tree costs more than the rows at city size (16 s of 27 s for 5 M
        # buildings): the same index is bulk-loaded from the envelopes instead.
        options = {"SPATIAL_INDEX": "NO"}
        xy = write_point_layer(ready, path, name, layer_options=options)
        if xy is None:
            ready.to_file(path, layer=name, driver="GPKG", engine="pyogrio", use_arrow=True,
                          layer_options=options)  # fmt: skip
            bounds = shapely.bounds(ready.geometry.to_numpy())
        else:
            bounds = np.concatenate([xy, xy], axis=1)
        add_spatial_index(path, name, bounds=bounds)
    else:
        pyogrio.write_dataframe(pd.DataFrame(frame), path, layer=name, driver="GPKG",
                                use_arrow=True)  # fmt: skip


# SQLite pages of 32 KiB (GDAL's and SQLite's default is 4 KiB): GDAL inserts a city's rows
# and the R-tree is bulk-loaded in about 3/4 of the time (5 M buildings: 13 s instead of
# 17 s, 3 s instead of 5 s); a bbox read of 1/400 of a city reads as fast (64 KiB pages
# read it slower). The R-tree's nodes keep their size (SQLite caps it at 51 entries).
_PAGE_SIZE = "page_size=32768"


def _writing_settings() -> dict[str, str]:
    """GDAL's SQLite options while ``results.gpkg`` is written.

    GDAL's SQLite writes without waiting for the disk after every transaction (15 % of
    writing a city's GeoPackage); the finished file is synced once instead, so it is as
    durable as before, and a half-written one is only ever a temporary of the run. The
    file is made with :data:`_PAGE_SIZE`, unless the user's own ``OGR_SQLITE_PRAGMA`` sets a
    page size (their other pragmas are kept).
    """
    import pyogrio

    pragma = pyogrio.get_gdal_config_option("OGR_SQLITE_PRAGMA")
    if not isinstance(pragma, str) or not pragma.strip():
        pragma = _PAGE_SIZE
    elif "page_size" not in pragma.lower():
        pragma = f"{pragma},{_PAGE_SIZE}"
    return {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_PRAGMA": pragma}


def _sqlite_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Set GDAL configuration options (None: GDAL's default); returns the ones before."""
    import pyogrio

    before = {name: pyogrio.get_gdal_config_option(name) for name in settings}
    pyogrio.set_gdal_config_options(dict(settings))
    return before


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Per-grid summary


def grid_summary_table(
    grids: pd.DataFrame | None,
    *,
    extra: Sequence[pd.DataFrame | None] = (),
    user_columns: Iterable[str] = (),
    allow: Iterable[str] = (),
) -> pd.DataFrame | None:
    """The per-grid table for leaders: one row per grid cell, every roll-up figure, no geometry.

    Parameters
    ----------
    grids : DataFrame or GeoDataFrame, optional
        Grids with the risk roll-up (:func:`firegrid.risk.rollup.rollup`) or plain grids.
    extra : sequence of DataFrame
        Other per-grid tables keyed by ``grid_id`` (:func:`firegrid.spatial.access.travel_times.coverage_by_grid`,
        :func:`firegrid.spatial.water.coverage.water_by_grid`); their columns not already present are joined.
    user_columns : iterable of str
        The columns of the input grids layer: those beyond the data model are the user's own
        and appear only when ``allow`` names them; every other column is FireGrid's.
    allow : iterable of str
        The config's ``[map] allow_fields`` (see :func:`firegrid.maps.privacy.shared_columns`): columns
        that look personal, by header or content, appear only when named explicitly.

    Returns
    -------
    DataFrame sorted by level then grid id, or None without grids.
    """
    if grids is None:
        return None
    base = pd.DataFrame(grids)
    if isinstance(grids, gpd.GeoDataFrame):
        base = base.drop(columns=grids.geometry.name)
    base["grid_id"] = base["grid_id"].astype("string")
    for table in extra:
        if table is None or "grid_id" not in table:
            continue
        table = pd.DataFrame(table)
        if isinstance(table, gpd.GeoDataFrame) or "geometry" in table:
            table = table.drop(columns=["geometry"], errors="ignore")
        cols = [c for c in table.columns if c not in base.columns]
        if cols:
            right = table[["grid_id", *cols]].assign(grid_id=table["grid_id"].astype("string"))
            base = base.merge(right, on="grid_id", how="left")
    lead = [c for c in GRID_ID_COLUMNS if c in base]
    order = lead + [c for c in base.columns if c not in lead]
    computed = set(base.columns) - set(user_columns)
    base = base[shared_columns(base, allow=allow, computed=computed, wanted=order)]
    sort = [c for c in ("level", "grid_id") if c in base]
    return base.sort_values(sort, kind="stable").reset_index(drop=True)


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(3)
    return out


def _formula_like(text: pd.Series) -> pd.Series:
    """Which strings a spreadsheet would read as a formula."""
    return text.str.startswith(FORMULA_STARTS).fillna(False).astype(bool)


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every text cell (and header) that would start a formula prefixed with
    a single quote ``'`` (OWASP): spreadsheets then show it as text, never run it."""
    out = table.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
            text = s.astype("string")
            risky = _formula_like(text) & s.map(lambda v: isinstance(v, str)).astype(bool)
            if risky.any():
                out[col] = s.where(~risky, "'" + text.astype(object))
    header = pd.Series([str(c) for c in out.columns], dtype="string")
    risky = _formula_like(header).to_numpy()
    out.columns = ["'" + h if r else h for h, r in zip(header, risky, strict=True)]
    return out


def _cells_as_text(sheet) -> None:
    """Mark string cells of an openpyxl sheet that would start a formula as text.

    openpyxl stores any string starting with ``=`` as a formula; the cell keeps its visible
    value but gets the text type and Excel's quote prefix (the ``'`` a user would type).
    """
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith(FORMULA_STARTS):
                cell.data_type = "s"
                cell.quotePrefix = True


def excel_header(column: str) -> str:
    """A workbook header: the Chinese label with the CSV's column code, e.g.
    ``3分钟覆盖率 (share_covered_3min)``; the code alone when it has no label."""
    zh = columns.label(column, "zh", layer="grids")
    return f"{zh} ({column})" if zh != column else column


def columns_sheet(table: pd.DataFrame, *, values: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The workbook's ``columns`` sheet: every column of ``table`` with its labels, unit,
    meaning (the run's parameters filled in) and how it rolls up from the buildings."""
    rows = []
    for name in table.columns:
        col = columns.column(name, "grids")
        schema = SCHEMAS["grids"].column(name)
        rows.append(
            {
                "column": name,
                "中文": columns.label(name, "zh", layer="grids"),
                "English": columns.label(name, "en", layer="grids"),
                "unit": col.unit if col else "",
                "meaning": columns.fill(col.description, values)
                if col
                else (schema.doc if schema else ""),
                "roll-up": columns.rollup_text(col, name, values) if col else "",
            }
        )
    return pd.DataFrame(rows, columns=["column", "中文", "English", "unit", "meaning", "roll-up"])


def write_grid_summary(
    table: pd.DataFrame,
    csv_path: str | os.PathLike,
    xlsx_path: str | os.PathLike | None,
    *,
    values: Mapping[str, Any] | None = None,
    encoding: str = "utf-8-sig",
) -> list[Path]:
    """Write the per-grid table as CSV and .xlsx.

    The CSV's headers are the column codes (``share_covered_3min``); ``encoding`` is the
    config's ``[output] csv_encoding`` (UTF-8 with BOM by default, so Excel shows Chinese;
    ``"gb18030"`` for older Excel). The workbook's headers read ``3分钟覆盖率
    (share_covered_3min)`` and its second sheet, ``columns``, explains every column
    (:func:`columns_sheet`, from :mod:`firegrid.spatial.columns`; ``values`` are the run's
    parameters its descriptions quote, :func:`firegrid.maps.options.parameter_values`). Both
    sheets have a frozen header, a filter and fitted column widths; numbers are shown by
    their registry unit (:data:`NUMBER_FORMATS`: shares as ``32.3%``, counts as ``1,102``).
    Text that would start a formula (``= + - @``, tab, carriage return, and the full-width
    ``＝ ＋ － ＠``) stays text: in the workbook a text cell with Excel's quote prefix (the value
    unchanged), in the CSV the value prefixed with ``'``.
    """
    table = _rounded(table)
    written = [Path(csv_path)]
    # CRLF line ends (RFC 4180): a field holding a lone CR is then quoted, not split.
    csv_safe(table).to_csv(csv_path, index=False, encoding=encoding, lineterminator="\r\n")
    if xlsx_path is not None:
        write_workbook(table, xlsx_path, values=values)
        written.append(Path(xlsx_path))
    return written


def write_workbook(
    table: pd.DataFrame, path: str | os.PathLike, *, values: Mapping[str, Any] | None = None
) -> Path:
    """Write ``grid_summary.xlsx``: the ``grid_summary`` sheet (Chinese headers with the
    code, numbers formatted by unit, grid id and name frozen) and the ``columns`` sheet."""
    glossary = columns_sheet(table, values=values or parameter_values())
    headed = table.set_axis([excel_header(c) for c in table.columns], axis=1)
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        headed.to_excel(xl, sheet_name="grid_summary", index=False)
        glossary.to_excel(xl, sheet_name="columns", index=False)
        grid, cols = xl.sheets["grid_summary"], xl.sheets["columns"]
        formats = [_number_format(c) for c in table.columns]
        _format_numbers(grid, formats)
        _fit_widths(grid, headed, formats)
        _freeze_and_filter(grid, frozen=_leading(table.columns, FROZEN_COLUMNS))
        _fit_widths(cols, glossary, [None] * glossary.shape[1])
        _freeze_and_filter(cols, frozen=1)
        for sheet in (grid, cols):
            _wrap_long_text(sheet)
            _cells_as_text(sheet)
    return Path(path)


def _number_format(column: str) -> tuple[str, str] | None:
    """The (Excel, Python) number formats of a per-grid column by its registry unit."""
    col = columns.column(column, "grids")
    return NUMBER_FORMATS.get(col.unit) if col is not None else None


def _leading(names: Iterable[str], wanted: Sequence[str]) -> int:
    """How many of ``names`` at the start are, in order, the first of ``wanted``."""
    count = 0
    for name, want in zip(names, wanted, strict=False):
        if name != want:
            break
        count += 1
    return count


def _format_numbers(sheet, formats: Sequence[tuple[str, str] | None]) -> None:
    """Give the numeric cells of each column (below the header) its number format."""
    for index, fmt in enumerate(formats, start=1):
        if fmt is None:
            continue
        for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
            if isinstance(cell.value, int | float) and not isinstance(cell.value, bool):
                cell.number_format = fmt[0]


def display_width(text: str) -> int:
    """Columns ``text`` takes on screen: East Asian wide and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _shown(values: pd.Series, fmt: tuple[str, str] | None) -> pd.Series:
    """The column's cells as the workbook shows them (numbers in their format), as text."""
    if fmt is not None and pd.api.types.is_numeric_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        return numbers.map(lambda v: format(float(v), fmt[1]))
    return values.dropna().astype(str)


def _fit_widths(sheet, frame: pd.DataFrame, formats: Sequence[tuple[str, str] | None]) -> None:
    """Set each column's width to its widest cell (CJK counting double), within
    :data:`MIN_WIDTH` … :data:`MAX_WIDTH` characters; a header counts by its widest part, the
    label or the ``(code)`` (:func:`_header_parts`), as long headers wrap between them."""
    from openpyxl.utils import get_column_letter

    for index, (name, fmt) in enumerate(zip(frame.columns, formats, strict=True), start=1):
        texts = [*_header_parts(str(name)), *_shown(frame.iloc[:, index - 1], fmt)]
        widest = max(display_width(line) for text in texts for line in text.splitlines() or [""])
        width = min(max(widest + 2, MIN_WIDTH), MAX_WIDTH)
        sheet.column_dimensions[get_column_letter(index)].width = width


def _header_parts(header: str) -> list[str]:
    """A workbook header's label and ``(code)`` (:func:`excel_header`), the lines it wraps to."""
    label, sep, code = header.rpartition(" (")
    return [label, sep.strip() + code] if sep and code.endswith(")") else [header]


def _wrap_long_text(sheet) -> None:
    """Wrap text cells wider than their column and make their rows tall enough to show it
    (spreadsheets do not grow a row for wrapped text written by a program)."""
    from openpyxl.styles import Alignment

    widths = {k: d.width for k, d in sheet.column_dimensions.items()}
    for row in sheet.iter_rows():
        lines = 1
        for cell in row:
            if not isinstance(cell.value, str):
                continue
            room = widths.get(cell.column_letter, MAX_WIDTH) - 2
            if display_width(cell.value) > room:
                keep = cell.alignment.horizontal  # the header's centring
                cell.alignment = Alignment(horizontal=keep, vertical="top", wrap_text=True)
                lines = max(lines, _line_count(cell.value, room))
        if lines > 1:
            sheet.row_dimensions[row[0].row].height = LINE_HEIGHT * lines


def _line_count(text: str, room: int) -> int:
    """Lines ``text`` wraps to in ``room`` characters, breaking at spaces (a longer word
    breaks anywhere), as spreadsheets do."""
    room = max(room, 1)
    count = 0
    for paragraph in text.split("\n"):
        used = 0
        count += 1
        for word in paragraph.split(" "):
            wide = display_width(word)
            if used and used + 1 + wide <= room:
                used += 1 + wide
                continue
            if used:
                count += 1
            count += (wide - 1) // room if wide else 0
            used = (wide - 1) % room + 1 if wide else 0
    return count


def _freeze_and_filter(sheet, *, frozen: int) -> None:
    """Freeze the header row and the first ``frozen`` columns; filter over the whole table."""
    from openpyxl.utils import get_column_letter

    sheet.freeze_panes = f"{get_column_letter(frozen + 1)}2"
    sheet.auto_filter.ref = sheet.dimensions


# --------------------------------------------------------------------------------------------
# Headline summary


def _jsonable(value: Any) -> Any:
    """JSON-ready values; text has phone/ID numbers and e-mails redacted (notes may quote a
    user's value)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {redact_text(str(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date | datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Path):
        return redact_text(str(value))
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def summary_json(summary: Mapping[str, Any]) -> str:
    """The summary as JSON (NaN → null, dates ISO)."""
    return json.dumps(_jsonable(summary), ensure_ascii=False, indent=2)


@dataclass(frozen=True)
class _Words:
    """The fixed wording of ``summary.md`` in one language."""

    title: str
    as_of: str
    table_head: str
    headline: str
    notes: str
    files: str
    yes: str
    no: str


SUMMARY_WORDS = {
    "en": _Words(
        title="FireGrid summary — {district}",
        as_of="Data as of **{as_of}**; run {run_at}.",
        table_head="| figure | value |",
        headline="Headline",
        notes="Notes",
        files="Files",
        yes="yes",
        no="no",
    ),
    "zh": _Words(
        title="FireGrid 消防安全分析摘要 — {district}",
        as_of="数据截至 **{as_of}**；运行时间 {run_at}。",
        table_head="| 指标 | 数值 |",
        headline="主要结论",
        notes="说明",
        files="输出文件",
        yes="是",
        no="否",
    ),
}

# Chinese labels of the summary's figures that are no column of the registry (those that are,
# such as share_covered_3min or hazards_open, take the registry's label).
FIGURE_LABELS_ZH = {
    "buildings": "建筑数",
    "grids_by_level": "各级网格数",
    "grid_levels": "网格层级名称",
    "stations": "消防站点数",
    "hydrants": "消火栓数",
    "water_sources": "消防水源数",
    "hazards": "隐患记录数",
    "incidents": "警情记录数",
    "road_km": "道路里程 (km)",
    "target_micro_s": "微站到场目标 (s)",
    "target_fire_s": "消防站到场目标 (s)",
    "buildings_covered_3min": "3分钟到场建筑数",
    "buildings_covered_5min": "5分钟到场建筑数",
    "median_t_micro_s": "微站到场时间中位数 (s)",
    "unreachable_micro": "微站无法到达建筑数",
    "median_t_fire_s": "消防站到场时间中位数 (s)",
    "unreachable_fire": "消防站无法到达建筑数",
    "residents_outside_3min": "3分钟到场范围外居民 (人)",
    "buildings_with_access_issue": "有可达性问题建筑数",
    "hydrant_radius_m": "消火栓保护半径 (m)",
    "water_deficient": "缺水建筑数",
    "working_hydrants": "完好消火栓数",
    "spacing_gaps": "消火栓间距缺口数",
    "spacing_gap_km": "间距缺口长度 (km)",
    "deficient_zones": "缺水区域数",
    "deficient_area_ha": "缺水区域面积 (公顷)",
    "new_hydrants_needed": "需新增消火栓数",
    "new_hydrants_greedy": "新增消火栓数（贪心法）",
    "new_hydrants_lower_bound": "新增消火栓数下界",
    "new_hydrants_gap": "新增消火栓最优性差距",
    "new_hydrants_method": "新增消火栓求解方法",
    "uncoverable_buildings": "无法覆盖建筑数",
    "grades": "各风险等级建筑数",
    "factors_assessed": "参评风险因素",
    "expected_fires_per_year": "预期火灾数 (起/年)",
    "model_auc": "模型 AUC",
    "model_brier": "模型 Brier 评分",
    "highest_risk_grids": "风险最高网格 (平均风险指数)",
    "candidates": "候选站址数",
    "candidates_solved": "参与求解候选站址数",
    "covered_before": "新建前3分钟到场建筑数",
    "covered_after": "新建后3分钟到场建筑数",
    "coverable": "新站可覆盖建筑数",
    "new_sites": "建议新建站点数",
    "method": "求解方法",
    "optimal": "已证最优",
    "gap": "最优性差距",
    "objective": "目标值 (覆盖建筑数)",
    "min_count": "全覆盖所需站点数",
    "min_count_method": "全覆盖求解方法",
    "min_count_optimal": "全覆盖已证最优",
    "min_count_gap": "全覆盖最优性差距",
}


def _fmt(value: Any, words: _Words = SUMMARY_WORDS["en"]) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return words.yes if value else words.no
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _targets(figures: Mapping[str, Any]) -> tuple[float, float]:
    """The run's response targets in seconds (micro-station, fire station), from its
    figures, else the defaults."""
    values = parameter_values()
    access = figures.get("access") or {}
    micro = float(access.get("target_micro_s", values["target_micro_s"]))
    fire = float(access.get("target_fire_s", values["target_fire_s"]))
    return micro, fire


def _section_titles(figures: Mapping[str, Any], language: str = "en") -> dict[str, str]:
    """Headings of the summary's sections, quoting the run's targets (from its figures, else
    the defaults) and the grade names."""
    micro, fire = _targets(figures)
    grades = " · ".join(f"{g} {name}" for g, name in columns.GRADE_LABELS["zh"].items())
    if language == "zh":
        return {
            "district": "辖区概况",
            "access": (
                f"到场时间（目标：微型消防站 {micro / 60:g} 分钟 = {micro:g} 秒，"
                f"消防站 {fire / 60:g} 分钟 = {fire:g} 秒，含出动时间）"
            ),
            "water": "消防供水（消火栓沿街道的保护半径，米）",
            "risk": f"火灾风险（指数 0–100；等级 {grades}）",
            "siting": "新建微型消防站选址",
        }
    return {
        "district": "District",
        "access": (
            f"Response times (targets: micro-station {micro / 60:g} min = {micro:g} s, "
            f"fire station {fire / 60:g} min = {fire:g} s, turnout included)"
        ),
        "water": "Fire water (hydrant protection radius along streets, metres)",
        "risk": f"Risk (index 0–100; grades {grades})",
        "siting": "Siting of new micro-stations",
    }


def figure_label(key: str, language: str = "en") -> str:
    """How ``summary.md`` names a figure: its key in English; in Chinese the registry's
    label (else :data:`FIGURE_LABELS_ZH`) with the key, ``3分钟覆盖率 (share_covered_3min)``."""
    if language != "zh":
        return key
    zh = columns.label(key, "zh", layer="grids")
    zh = FIGURE_LABELS_ZH.get(key, key) if zh == key else zh
    return f"{zh} ({key})" if zh != key else key


def _one_decimal(value: float | None) -> str:
    """A figure with one decimal as the headline writes it (``–`` when unknown)."""
    return "–" if value is None else f"{value:.1f}"


def _headline_zh(figures: Mapping[str, Any]) -> list[str]:
    """The headline in Chinese, from the same figures the English headline quotes."""
    lines = _access_headline_zh(figures)
    water = figures.get("water") or {}
    if "water_deficient" in water:
        lines.append(
            f"缺水建筑（沿街道 {float(water['hydrant_radius_m']):g} 米内无完好消火栓或消防水源）："
            f"{water['water_deficient']:,} 栋（"
            f"{percent(share(water['water_deficient'], water.get('buildings')), space='')}），"
            f"分布于 {water['deficient_zones']} 个缺水区域"
        )
    if "new_hydrants_needed" in water:
        lines.append(f"覆盖全部可覆盖的缺水建筑需新增消火栓：{water['new_hydrants_needed']} 个")
    lines += _risk_headline_zh(figures.get("risk") or {})
    siting = figures.get("siting") or {}
    if "new_sites" in siting:
        n = siting["buildings"]
        lines.append(
            f"建议新建微型消防站 {siting['new_sites']} 处："
            f"{_targets(figures)[0] / 60:g}分钟到场覆盖率 "
            f"{percent(share(siting['covered_before'], n), space='')} → "
            f"{percent(share(siting['covered_after'], n), space='')}"
            + (
                f"；新建 {siting['min_count']} 处可覆盖全部可到达建筑"
                if "min_count" in siting
                else ""
            )
        )
    return lines


def _access_headline_zh(figures: Mapping[str, Any]) -> list[str]:
    access = figures.get("access") or {}
    n = (figures.get("district") or {}).get("buildings")
    micro, fire = _targets(figures)
    lines = []
    for col, what in (
        ("covered_3min", f"{micro / 60:g}分钟微型消防站"),
        ("covered_5min", f"{fire / 60:g}分钟消防站"),
    ):
        k = access.get(f"buildings_{col}")
        if k is None:
            continue
        shown = percent(share(k, n) if n else access.get(f"share_{col}"), space="")
        among = f"{n:,} 栋建筑中 " if n else ""
        lines.append(f"{what}到场覆盖：{among}{k:,} 栋（{shown}）")
    return lines


def _risk_headline_zh(risk: Mapping[str, Any]) -> list[str]:
    lines = []
    if "grades" in risk:
        names = columns.GRADE_LABELS["zh"]
        lines.append(
            "建筑风险等级："
            + " · ".join(f"{g} {names.get(int(g), '')} {n:,}" for g, n in risk["grades"].items())
            + f"；风险指数平均 {_one_decimal(risk.get('risk_index_mean'))}，"
            f"最高 {_one_decimal(risk.get('risk_index_max'))}"
        )
    if "hazards_open" in risk:
        lines.append(
            f"未整改隐患：{risk['hazards_open']:,} 项（其中逾期 {risk['hazards_overdue']:,} 项）"
        )
    return lines


def _figure_rows(figures: Mapping[str, Any], words: _Words, language: str) -> list[str]:
    """One section's table of figures."""
    lines = [words.table_head, "|---|---|"]
    for key, value in figures.items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}: {_fmt(v, words)}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        lines.append(f"| {figure_label(key, language)} | {_fmt(value, words)} |")
    return lines


def _bullets(title: str, items: Sequence[str]) -> list[str]:
    return [f"## {title}", "", *(f"- {item}" for item in items), ""] if items else []


def summary_markdown(summary: Mapping[str, Any], *, language: str = "en") -> str:
    """The summary as a short Markdown report: headline figures per step, then notes.

    ``language`` is the config's ``[output] language``: ``"zh"`` writes the headings, the
    figures' labels (the column registry's, with the key) and the headline in Chinese, the
    headline made from ``summary["figures"]`` (the same numbers as the English one). Notes
    stay as the run wrote them.
    """
    summary = _jsonable(summary)
    words = SUMMARY_WORDS[language]
    all_figures = summary.get("figures", {})
    lines = [f"# {words.title.format(district=summary.get('district', ''))}", ""]
    if summary.get("as_of"):
        lines += [words.as_of.format(as_of=summary["as_of"], run_at=summary.get("run_at", "")), ""]
    for section, title in _section_titles(all_figures, language).items():
        figures = all_figures.get(section)
        if figures:
            lines += [f"## {title}", "", *_figure_rows(figures, words, language), ""]
    headline = _headline_zh(all_figures) if language == "zh" else summary.get("headline")
    lines += _bullets(words.headline, headline or [])
    lines += _bullets(words.notes, summary.get("notes") or [])
    lines += _bullets(words.files, [f"`{name}`" for name in summary.get("outputs") or []])
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The run's folder


@dataclass(frozen=True)
class RunOutputs:
    """What one run writes.

    Attributes
    ----------
    layers : mapping name → GeoDataFrame or DataFrame
        Every result layer and table (``results.gpkg``).
    grid_table : DataFrame or None
        The per-grid table, already limited to shareable columns (:func:`grid_summary_table`).
    summary : dict
        Headline figures and notes; its ``outputs`` is filled in with the file names.
    map_html : str or None
        The map's self-contained HTML (``map.html``), or None for no map.
    values : mapping or None
        The run's parameters the workbook's ``columns`` sheet quotes
        (:func:`firegrid.maps.options.parameter_values`; None: the defaults).
    """

    layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame]
    grid_table: pd.DataFrame | None
    summary: dict[str, Any]
    map_html: str | None = None
    values: Mapping[str, Any] | None = None


def write_outputs(
    folder: str | os.PathLike,
    outputs: RunOutputs | None = None,
    *,
    options: OutputOptions | None = None,
    allow: Iterable[str] = (),
    force: bool = False,
    **parts: Any,
) -> dict[str, Path]:
    """Write every output of a run into ``folder`` atomically (:mod:`firegrid.outputs`).

    Files: ``map.html`` (when there is map HTML), ``results.gpkg``, ``grid_summary.csv``
    and ``grid_summary.xlsx`` (when there is a grid table), ``summary.md`` and
    ``summary.json``, and the manifest of them. ``summary["outputs"]`` is filled in with the
    file names.

    Parameters
    ----------
    outputs : RunOutputs
        What to write.
    options : OutputOptions, optional
        The config's ``[output]``: ``excel`` (write the workbook), ``personal`` (what
        ``results.gpkg`` does with personal columns, :func:`write_results_gpkg`),
        ``csv_encoding`` (of ``grid_summary.csv``) and ``language`` (of ``summary.md``).
    allow : iterable of str
        The config's ``[map] allow_fields``.
    force : bool
        Proceed even though the folder holds files FireGrid did not write (they are kept).
    **parts
        The fields of :class:`RunOutputs` (``layers=``, ``grid_table=``, ``summary=`` …) and
        of :class:`OutputOptions` (``excel=``, ``personal=`` …) one by one, instead of
        ``outputs`` and ``options``.

    Returns
    -------
    File name → final path.
    """
    outputs, options = _outputs_and_options(outputs, options, parts)
    names = _output_names(outputs, excel=options.excel)
    outputs.summary["outputs"] = names

    def write(tmp: Path) -> None:
        if outputs.map_html is not None:
            (tmp / MAP_FILE).write_text(outputs.map_html, encoding="utf-8")
        if GPKG_FILE in names:
            write_results_gpkg(
                outputs.layers, tmp / GPKG_FILE, personal=options.personal, allow=allow
            )
        if CSV_FILE in names:
            xlsx = tmp / XLSX_FILE if options.excel else None
            write_grid_summary(
                outputs.grid_table,
                tmp / CSV_FILE,
                xlsx,
                values=outputs.values,
                encoding=options.csv_encoding,
            )
        (tmp / SUMMARY_JSON).write_text(summary_json(outputs.summary), encoding="utf-8")
        (tmp / SUMMARY_MD).write_text(
            summary_markdown(outputs.summary, language=options.language), encoding="utf-8"
        )

    final = write_folder_atomically(folder, write, force=force)
    return {name: final / name for name in names}


def _outputs_and_options(
    outputs: RunOutputs | None, options: OutputOptions | None, parts: Mapping[str, Any]
) -> tuple[RunOutputs, OutputOptions]:
    """``outputs`` and ``options``, or both built from their fields given one by one."""
    option_keys = {f.name for f in fields(OutputOptions)}
    given = {k: v for k, v in parts.items() if k not in option_keys}
    chosen = {k: v for k, v in parts.items() if k in option_keys}
    if (outputs is not None and given) or (options is not None and chosen):
        raise TypeError("write_outputs() takes outputs/options or their fields, not both")
    return (
        outputs if outputs is not None else RunOutputs(**given),
        options if options is not None else OutputOptions(**chosen),
    )


def _output_names(outputs: RunOutputs, *, excel: bool) -> list[str]:
    """The files a run's outputs make, in writing order."""
    names = []
    if outputs.map_html is not None:
        names.append(MAP_FILE)
    if any(f is not None and len(f) for f in outputs.layers.values()):
        names.append(GPKG_FILE)
    table = outputs.grid_table
    if table is not None and len(table):
        names.append(CSV_FILE)
        if excel:
            names.append(XLSX_FILE)
    return [*names, SUMMARY_MD, SUMMARY_JSON]


# --------------------------------------------------------------------------------------------
# The README glossary


def write_readme_glossary(path: str | os.PathLike) -> bool:
    """Regenerate the glossary of output columns in the README at ``path`` from
    :mod:`firegrid.spatial.columns` (descriptions quote the parameters' defaults).

    Returns
    -------
    True when the file changed.
    """
    path = Path(path)
    before = path.read_text(encoding="utf-8")
    after = columns.replace_glossary(before, parameter_values())
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


__all__ = [
    "CSV_ENCODINGS",
    "NUMBER_FORMATS",
    "OUTPUT_FILES",
    "read_result_layers",
    "read_summary",
    "OutputOptions",
    "RunOutputs",
    "columns_sheet",
    "csv_safe",
    "display_width",
    "excel_header",
    "figure_label",
    "grid_summary_table",
    "summary_json",
    "summary_markdown",
    "without_personal",
    "write_grid_summary",
    "write_outputs",
    "write_workbook",
    "write_readme_glossary",
    "write_results_gpkg",
]


if __name__ == "__main__":  # python -m firegrid.reports --glossary README.md
    import sys

    if sys.argv[1:2] != ["--glossary"] or len(sys.argv) != 3:
        sys.exit("usage: python -m firegrid.reports --glossary README.md")
    print("updated" if write_readme_glossary(sys.argv[2]) else "up to date")
