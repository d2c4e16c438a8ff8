"""Validation of layers: columns, types, allowed values, geometries, ids, extent, grid hierarchy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from firegrid.spatial.errors import InputError, format_location
from firegrid.spatial.io.crs import (
    WGS84,
    bd09_to_wgs84,
    gcj02_to_wgs84,
    project,
    project_xy,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from firegrid.spatial.io.dates import ACCEPTED_DATE_FORMATS, parse_dates
from firegrid.spatial.io.grids import assign_grids, surface_points
from firegrid.spatial.io.layers import (
    FALSE_WORDS,
    POLYGON,
    SCHEMAS,
    TRUE_WORDS,
    VALUE_SYNONYMS,
    Column,
    LayerSchema,
)
from firegrid.spatial.io.sources import LayerSource, shown

# How far outside the district boundary a feature may lie before it is called an error: ledgers
# legitimately list a neighbour's hydrant across the street, not one kilometres away.
MAX_OUTSIDE_M = 1000.0
# Below this a feature counts as inside (boundary digitising slack).
EDGE_TOLERANCE_M = 50.0
# Web-map offsets by their config name: (WGS84 → offset system, offset system → WGS84).
_OFFSET_NAMES = {"gcj02": "GCJ-02", "bd09": "BD-09"}
_RELATIVE_SHIFTS = {
    "gcj02": (wgs84_to_gcj02, gcj02_to_wgs84),
    "bd09": (wgs84_to_bd09, bd09_to_wgs84),
}
# A cell may stick out of its parent by this share of its area (digitising slack).
PARENT_OVERLAP_TOLERANCE = 0.01


@dataclass
class Finding:
    """One validation message; ``level`` is ``error``, ``warning`` or ``info``; ``column`` is
    the canonical column (``geometry`` for shapes) when the message is about one."""

    level: str
    message: str
    layer: str = ""
    column: str = ""


def _canonical(column) -> str:
    return column[1] if isinstance(column, tuple) else (column or "")


@dataclass
class ValidationReport:
    """All findings of a validation run, errors first when printed."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, level: str, message: str, layer: str = "", column: str = "") -> None:
        self.findings.append(Finding(level, message, layer, column))

    def error(self, problem: str, *, layer: str = "", **where) -> None:
        self.add("error", format_location(problem, **where), layer, _canonical(where.get("column")))

    def warn(self, problem: str, *, layer: str = "", **where) -> None:
        self.add(
            "warning", format_location(problem, **where), layer, _canonical(where.get("column"))
        )

    def info(self, message: str, *, layer: str = "") -> None:
        self.add("info", message, layer)

    def extend(self, other: ValidationReport) -> None:
        self.findings.extend(other.findings)

    @property
    def errors(self) -> list[str]:
        return [f.message for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[str]:
        return [f.message for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def has_error(self, *, layer: str, column: str | None = None) -> bool:
        """Whether an error was found in ``layer`` (in its ``column``, when given)."""
        return any(
            f.level == "error" and f.layer == layer and (column is None or f.column == column)
            for f in self.findings
        )

    def raise_if_errors(self) -> None:
        """Raise the first error as an InputError (the rest are counted in the message)."""
        errors = self.errors
        if errors:
            more = (
                f" (and {len(errors) - 1} more problems: run 'firegrid validate')"
                if len(errors) > 1
                else ""
            )
            raise InputError(errors[0] + more)

    def lines(self) -> list[str]:
        order = {"error": 0, "warning": 1, "info": 2}
        return [
            f"{f.level.upper()}: {f.message}"
            for f in sorted(self.findings, key=lambda f: order[f.level])
        ]


def _first_rows(mask: np.ndarray) -> tuple[int, int]:
    bad = np.flatnonzero(mask)
    return int(bad[0]), len(bad)


def _feature_at(gdf: pd.DataFrame, schema: LayerSchema, source: LayerSource, i: int) -> str:
    """The ``i``-th feature of a validated layer as the user sees it: its index is the
    feature's position in the file (see :func:`coerce_layer`)."""
    ident = gdf[schema.id_column].iloc[i] if schema.id_column in gdf else None
    ident = None if ident is None or pd.isna(ident) else ident
    return source.feature(int(gdf.index[i]), ident, schema.id_column)


def _more(n: int) -> str:
    return f"; {n - 1} more rows like it" if n > 1 else ""


def _stripped(series: pd.Series) -> pd.Series:
    """Each cell as text without surrounding blanks (pandas ``string``; missing: <NA>)."""
    return series.astype("string").str.strip()


def _blank(series: pd.Series, text: pd.Series | None = None) -> np.ndarray:
    """Missing or empty-text cells; ``text`` is ``_stripped(series)`` when already at hand."""
    text = _stripped(series) if text is None else text
    return (series.isna() | text.isna() | (text == "")).to_numpy(dtype=bool)


def _problems(n: int) -> np.ndarray:
    return np.full(n, "", dtype=object)


def _coerce_number(
    values: pd.Series, col: Column, blank: np.ndarray, text: pd.Series | None
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """A numeric column; ``text`` is None when its cells are numbers already (see
    :func:`_holds_numbers`)."""
    if text is None:
        # A float's text is its shortest round-trip spelling, so parsing it back gives the
        # same float: skip spelling out millions of them.
        numbers = values.astype(float)
    else:
        if pd.api.types.is_bool_dtype(values):
            values = values.astype(float)
            text = _stripped(values)
        numbers = pd.to_numeric(text.where(~blank, None), errors="coerce").astype(float)
    problems, notes = _problems(len(values)), _problems(len(values))
    problems[numbers.isna().to_numpy() & ~blank] = "not a number"
    # "inf"/"nan" parse as floats but are no measurement.
    problems[~np.isfinite(numbers.fillna(0.0).to_numpy()) & ~blank] = "not a finite number"
    numbers = numbers.where(np.isfinite(numbers))
    num = numbers.to_numpy()
    with np.errstate(invalid="ignore"):
        if col.kind == "int":
            problems[(problems == "") & (num % 1 != 0) & ~np.isnan(num)] = "not a whole number"
        out_of_range = np.zeros(len(values), bool)
        if col.lo is not None:
            out_of_range |= num < col.lo
        if col.hi is not None:
            out_of_range |= num > col.hi
        problems[(problems == "") & out_of_range] = (
            f"outside the plausible range {col.lo:g}–{col.hi:g}"
            if col.lo is not None and col.hi is not None
            else "outside the plausible range"
        )
        if col.warn_lo is not None:
            notes[(problems == "") & (num < col.warn_lo)] = (
                f"below {col.warn_lo:g} (accepted: rare but real; check it is not a typo)"
            )
    numbers = numbers.where(problems == "")
    if col.kind == "int":
        return numbers.round().astype("Int64"), problems, notes
    return numbers, problems, notes


def _coerce_column(
    values: pd.Series,
    col: Column,
    extra_values: Mapping[str, str] | None,
    text: pd.Series | None = None,
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Convert one column (``text``: its cells already stripped, when at hand).

    Returns the converted series, and per cell why it cannot be used (an error) and what is
    unusual but accepted (a warning); ``""`` where there is nothing to say.
    """
    if col.kind in ("int", "float") and _holds_numbers(values):
        return _coerce_number(values, col, values.isna().to_numpy(dtype=bool), None)
    text = _stripped(values) if text is None else text
    blank = _blank(values, text)
    none = _problems(len(values))
    if col.kind == "str":
        return text.where(~blank, pd.NA).astype("string"), none, none
    if col.kind in ("int", "float"):
        return _coerce_number(values, col, blank, text)
    if col.kind == "bool":
        if pd.api.types.is_bool_dtype(values):
            return values.astype("boolean"), none, none
        lowered = text.str.lower()
        is_true = lowered.isin(TRUE_WORDS).fillna(False).to_numpy()
        is_false = lowered.isin(FALSE_WORDS).fillna(False).to_numpy()
        out = pd.Series(pd.NA, index=values.index, dtype="boolean")
        out[is_true] = True
        out[is_false & ~blank] = False
        problems = _problems(len(values))
        problems[~(is_true | is_false | blank)] = "not yes/no (use 1/0, true/false, 是/否)"
        return out, problems, none
    if col.kind == "date":
        dates, bad, why = parse_dates(values)
        problems = _problems(len(values))
        problems[bad] = (
            "not an accepted date (" + why[bad].astype(str) + f"; write {ACCEPTED_DATE_FORMATS})"
        ).to_numpy()
        return dates.where(~bad), problems, none
    if col.kind == "category":
        mapping = {k.lower(): v for k, v in VALUE_SYNONYMS.get(col.name, {}).items()}
        mapping.update({str(k).strip().lower(): v for k, v in (extra_values or {}).items()})
        out = _mapped(text.str.lower(), mapping).where(~blank, pd.NA).astype("string")
        problems = _problems(len(values))
        problems[~out.isin(col.choices).fillna(False).to_numpy() & ~blank] = (
            f"not one of {list(col.choices)}"
        )
        return out, problems, none
    raise ValueError(f"unknown column kind {col.kind!r}")


def _holds_numbers(values: pd.Series) -> bool:
    """Whether a column is stored as plain numbers: NumPy bool, integer or float64 (a blank
    cell can only be NaN). Not float32: its text is float32's shortest spelling, which
    parses to another float64 than the float32 value itself."""
    dtype = values.dtype
    return isinstance(dtype, np.dtype) and (dtype.kind in "biu" or dtype == np.float64)


def _mapped(text: pd.Series, mapping: Mapping[str, str]) -> pd.Series:
    """``text`` with each value found in ``mapping`` replaced by its mapped value (others
    kept); the mapping is looked up once per distinct value, not once per cell."""
    codes, distinct = pd.factorize(text)
    replaced = pd.array([mapping.get(v, v) for v in distinct], dtype="string")
    return pd.Series(replaced.take(codes, allow_fill=True), index=text.index)


def _report_cells(
    report: ValidationReport,
    reasons: np.ndarray,
    raw: pd.Series,
    where,
    *,
    level: str,
    **location,
) -> None:
    """One line per distinct reason: the first cell (as the user wrote it) and how many more."""
    for reason in pd.unique(reasons[reasons != ""]):
        rows = np.flatnonzero(reasons == reason)
        first = int(rows[0])
        value = raw.iloc[first]
        cell = "" if _blank(pd.Series([value], dtype=object))[0] else f": {shown(value)}"
        problem = f"{reason}{cell}{_more(len(rows))}"
        add = report.error if level == "error" else report.warn
        add(problem, feature=where(first), **location)


def _duplicate_columns(out: pd.DataFrame, source: LayerSource) -> list[str]:
    """Columns present twice after renaming: the config maps two headers onto one column, or
    a header the config maps is already a canonical name in the file."""
    names = pd.Series([str(c) for c in out.columns])
    return [source.headers.get(c, c) for c in pd.unique(names[names.duplicated()])]


def _indexed_by_file_row(gdf: pd.DataFrame) -> bool:
    """Whether the index gives each feature's 0-based data-row position in its file.

    The readers promise this (a GIS layer's RangeIndex; a ledger's rows keep their position
    when blank lines are skipped), so messages name the row a spreadsheet shows.
    """
    index = gdf.index
    return (
        pd.api.types.is_integer_dtype(index)
        and index.is_unique
        and index.is_monotonic_increasing
        and (len(index) == 0 or index[0] >= 0)
    )


def coerce_layer(
    gdf: gpd.GeoDataFrame,
    schema: LayerSchema,
    source: LayerSource,
    *,
    values: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[gpd.GeoDataFrame, ValidationReport]:
    """Check one layer against its schema and convert its canonical columns to their dtypes.

    Every problem is reported, one line per kind and column (the first cell and how many
    more): missing required columns, duplicated headers, unconvertible or ambiguous values,
    out-of-range numbers, unknown category values, dates out of order, duplicate ids and
    geometries. Invalid geometries are repaired with ``make_valid`` and counted, collapsed
    ones (no area left) dropped and counted. Unknown extra columns pass through unchanged.

    Returns
    -------
    The converted layer (a copy; CRS unchanged; the index is each feature's 0-based data-row
    position in the file, so messages after dropped rows still name the right row) and the
    findings.
    """
    report = ValidationReport()
    # A shallow copy: columns are replaced, never written into (and pandas copies on write),
    # so the caller's frame is untouched without a second copy of a city's layer in memory.
    out = gdf.copy(deep=False) if _indexed_by_file_row(gdf) else gdf.reset_index(drop=True)
    if len(out) == 0:
        report.error("the layer is empty", layer=schema.name, file=source.file)
        return out, report
    out = _check_headers(out, schema, source, report)
    # The ids as text serve the messages, the duplicate check and the id column's conversion.
    ids = _stripped(out[schema.id_column]) if schema.id_column in out else None
    repeated = None if ids is None else _repeated(out[schema.id_column], ids)
    where = _feature_namer(out.index.to_numpy(), ids, schema, source)
    texts = {} if ids is None else {schema.id_column: ids}
    _coerce_columns(out, schema, source, report, where, values or {}, texts)
    if ids is not None:
        _check_duplicate_ids(ids, repeated, schema, source, report, where)
    _check_date_order(out, schema, source, report, where)
    out = _check_geometries(out, schema, source, report, where)
    return out, report


def _check_headers(
    out: gpd.GeoDataFrame, schema: LayerSchema, source: LayerSource, report: ValidationReport
) -> gpd.GeoDataFrame:
    """Report headers that collide and required columns that are missing; keep one of each."""
    name, file = schema.name, source.file
    for header in _duplicate_columns(out, source):
        report.error(
            "two columns of the file would both become this column, so which to use is "
            "ambiguous: map only one of them under [layers.*.columns]",
            layer=name,
            file=file,
            column=header,
        )
    out = out.loc[:, ~out.columns.duplicated()]
    for col_name in schema.required_columns:
        if col_name not in out.columns:
            present = [c for c in out.columns if c != out.geometry.name]
            report.error(
                f"required column missing (map your header onto it under "
                f"[layers.{name}.columns]); the file has columns {present}",
                layer=name,
                file=file,
                column=col_name,
            )
    return out


def _feature_namer(
    rows: np.ndarray, ids: pd.Series | None, schema: LayerSchema, source: LayerSource
) -> Callable[..., str]:
    """``where(pos, with_id=True)``: the feature at ``pos`` as the user sees it (file row, id)."""

    def where(pos: int, *, with_id: bool = True) -> str:
        ident = ids.iloc[pos] if ids is not None and not pd.isna(ids.iloc[pos]) else None
        return source.feature(int(rows[pos]), ident if with_id else None, schema.id_column)

    return where


def _coerce_columns(
    out: gpd.GeoDataFrame,
    schema: LayerSchema,
    source: LayerSource,
    report: ValidationReport,
    where: Callable[..., str],
    values: Mapping[str, Mapping[str, str]],
    texts: Mapping[str, pd.Series],
) -> None:
    """Convert each canonical column in place, reporting cells that cannot be converted;
    ``texts`` holds columns already stripped (:func:`_stripped`), by name."""
    for col in schema.columns:
        if col.name not in out.columns:
            continue
        raw = out[col.name]
        converted, problems, notes = _coerce_column(
            raw, col, values.get(col.name), texts.get(col.name)
        )
        location = {"layer": schema.name, "file": source.file, "column": source.column(col.name)}
        _report_cells(report, problems, raw, where, level="error", **location)
        _report_cells(report, notes, raw, where, level="warning", **location)
        if col.required:
            empty = converted.isna().to_numpy() & (problems == "")
            if empty.any():  # (a text array per cell otherwise: 0.5 GB for 5 M rows)
                reasons = np.where(empty, "required value is empty", "")
                _report_cells(report, reasons, raw, where, level="error", **location)
        out[col.name] = converted


def _repeated(raw: pd.Series, ids: pd.Series) -> np.ndarray:
    """Rows whose id (``ids``: ``raw`` stripped) another row has too; missing ids never.

    Whole-number ids are compared as numbers: the same answer as their text (each number
    has one spelling), without hashing millions of strings. Ascending ones (ids numbered in
    file order, the common case) repeat none.
    """
    if isinstance(raw.dtype, np.dtype) and raw.dtype.kind in "iu":  # not nullable Int64
        numbers = raw.to_numpy()
        if len(numbers) < 2 or bool((numbers[1:] > numbers[:-1]).all()):
            return np.zeros(len(numbers), dtype=bool)
        return pd.Series(numbers).duplicated(keep=False).to_numpy()
    return ids.duplicated(keep=False).to_numpy() & ids.notna().to_numpy()


def _check_duplicate_ids(ids: pd.Series, dup: np.ndarray, schema, source, report, where) -> None:
    if not dup.any():
        return
    rows = np.flatnonzero(dup)
    first_id = ids.iloc[rows[0]]
    same = rows[(ids.iloc[rows] == first_id).to_numpy()]
    n_ids = int(ids[dup].nunique())
    report.error(
        f"duplicate id {first_id!r} at {' and '.join(where(r, with_id=False) for r in same[:3])}"
        + (
            f"; {n_ids - 1} more duplicated ids ({int(dup.sum())} rows in all)" if n_ids > 1 else ""
        ),
        layer=schema.name,
        file=source.file,
        feature=where(rows[0], with_id=False),
        column=source.column(schema.id_column),
    )


def _check_date_order(out, schema, source, report, where) -> None:
    for earlier, later in schema.date_order:
        if earlier not in out or later not in out:
            continue
        a, b = out[earlier], out[later]
        if not (
            pd.api.types.is_datetime64_any_dtype(a) and pd.api.types.is_datetime64_any_dtype(b)
        ):
            continue
        before = (b < a).fillna(False).to_numpy(dtype=bool)
        if before.any():
            first, n = _first_rows(before)
            user = source.column(earlier)
            user = user[0] if isinstance(user, tuple) else user
            report.error(
                f"{b.iloc[first].date()} is before {user!r} {a.iloc[first].date()}{_more(n)}",
                layer=schema.name,
                file=source.file,
                feature=where(first),
                column=source.column(later),
            )


def _check_geometries(out, schema, source, report, where) -> gpd.GeoDataFrame:
    """Report missing, unrepairable and wrongly typed geometries; repair the rest.

    Returns the layer with repaired geometries and without collapsed ones.
    """
    name, file = schema.name, source.file
    location = {"layer": name, "file": file, "column": "geometry"}
    geoms = np.asarray(out.geometry.values, dtype=object)
    missing = np.asarray(shapely.is_missing(geoms) | shapely.is_empty(geoms), dtype=bool)
    if missing.any():
        first, n = _first_rows(missing)
        report.error(
            f"geometry is missing or empty{_more(n)}",
            feature=where(first),
            **location,
        )
    # The other features are still checked, so that one pass reports every problem.
    invalid = ~np.asarray(shapely.is_valid(geoms), dtype=bool) & ~missing
    if invalid.any() and not schema.repair_geometry:
        bad_pos = np.flatnonzero(invalid)
        report.error(
            f"invalid polygon ({shapely.is_valid_reason(geoms[bad_pos[0]])}); fix it in the "
            "file: a cell's shape decides which buildings it holds, so it is not repaired "
            "automatically" + _more(len(bad_pos)),
            feature=where(int(bad_pos[0])),
            **location,
        )
    dropped = np.zeros(len(out), bool)
    if invalid.any() and schema.repair_geometry:
        out, dropped = _repair(out, geoms, np.flatnonzero(invalid), report, where, location)
    # Type ids, not geom_type: that spells out one Python string per feature (5 M of them).
    types = shapely.get_type_id(np.asarray(out.geometry.values, dtype=object))
    wrong = ~np.isin(types, _type_ids(schema.geometry)) & ~missing & ~dropped
    if wrong.any():
        first, n = _first_rows(wrong)
        report.error(
            f"geometry type {out.geometry.iloc[first].geom_type} not allowed here (expected "
            f"{'/'.join(schema.geometry)}){_more(n)}",
            feature=where(first),
            **location,
        )
    # Selecting every row would copy the whole layer for nothing.
    return out[~dropped] if dropped.any() else out


def _type_ids(names: tuple[str, ...]) -> list[int]:
    """shapely's type ids of geometry type names (``"MultiPolygon"`` → 6)."""
    ids = {t.name.replace("_", "").lower(): int(t) for t in shapely.GeometryType}
    return [ids[name.lower()] for name in names]


def _repair(out, geoms, bad_pos, report, where, location) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Repair invalid geometries in place of the originals; returns the layer and a mask of
    the features with no area left, to be dropped."""
    # Read why before repairing: afterwards every geometry reads "Valid Geometry".
    reasons = shapely.is_valid_reason(geoms[bad_pos])
    repaired = shapely.make_valid(geoms[bad_pos], method="structure", keep_collapsed=False)
    collapsed = shapely.is_empty(repaired) | ~np.isin(shapely.get_type_id(repaired), [0, 3, 4, 6])
    values = geoms.copy()
    values[bad_pos] = repaired
    out = out.set_geometry(gpd.GeoSeries(values, index=out.index, crs=out.crs))
    fixed = bad_pos[~collapsed]
    if len(fixed):
        k = int(np.flatnonzero(~collapsed)[0])
        report.warn(
            f"repaired {len(fixed)} invalid geometries (first: {where(int(fixed[0]))}: "
            f"{reasons[k]})",
            **location,
        )
    if collapsed.any():
        dropped = bad_pos[collapsed]
        k = int(np.flatnonzero(collapsed)[0])
        report.warn(
            f"dropped {len(dropped)} feature(s) whose outline has no area "
            f"(first: {where(int(dropped[0]))}: {reasons[k]}); typical of footprints cut at "
            "an extract's edge",
            **location,
        )
    gone = np.zeros(len(out), bool)
    gone[bad_pos[collapsed]] = True
    return out, gone


def check_coordinates_range(
    gdf_wgs84: gpd.GeoDataFrame, schema: LayerSchema, source: LayerSource
) -> ValidationReport:
    """Longitude/latitude must be finite degrees; |lat| > 90 is nearly always a swap."""
    report = ValidationReport()
    b = gdf_wgs84.geometry.bounds
    bad = (
        (~np.isfinite(b.to_numpy()).all(axis=1))
        | (b["miny"].abs() > 90).to_numpy()
        | (b["maxy"].abs() > 90).to_numpy()
        | (b["minx"].abs() > 180).to_numpy()
        | (b["maxx"].abs() > 180).to_numpy()
    )
    if bad.any():
        first, n = _first_rows(bad)
        swapped = (b["minx"].abs() <= 90).iloc[first] and (b["miny"].abs() <= 180).iloc[first]
        cause = (
            "latitude and longitude look swapped"
            if swapped
            else "coordinates are not degrees: declare the file's crs"
        )
        report.error(
            f"coordinates out of range ({cause}){_more(n)}",
            layer=schema.name,
            file=source.file,
            feature=_feature_at(gdf_wgs84, schema, source, first),
            column="geometry",
        )
    return report


def check_extent(
    gdf_wgs84: gpd.GeoDataFrame,
    schema: LayerSchema,
    source: LayerSource,
    boundary_wgs84: shapely.Geometry,
    crs,
    *,
    declared_offset: str | None = None,
    projected: gpd.GeoSeries | None = None,
    coordinates: tuple[np.ndarray, np.ndarray] | None = None,
) -> ValidationReport:
    """Find features outside the district and name the likely cause.

    Features more than :data:`MAX_OUTSIDE_M` metres outside the boundary are errors. When undoing
    a GCJ-02 or BD-09 offset (or swapping latitude/longitude) would bring the layer's outside
    features inside, the layer was most likely declared in the wrong coordinate system, and
    that is said even for features only a few hundred metres out.

    ``projected``, when given, is ``gdf_wgs84.geometry`` already projected to ``crs`` (row for
    row): its points are used as they are instead of being projected a second time (the same
    coordinates; only the surface points of lines and polygons are still projected here).
    ``coordinates``, when given with ``projected``, are the longitudes and latitudes of a
    layer of points only: then ``gdf_wgs84`` serves for its rows and ids, and its geometries
    are not read (a city's load lets them go once projected, see
    :func:`firegrid.spatial.io.district.load_district`).
    """
    report = ValidationReport()
    boundary_m = gpd.GeoSeries([boundary_wgs84], crs=WGS84).to_crs(crs).iloc[0]
    pts = None if coordinates is not None else _surface_series(gdf_wgs84.geometry)
    dist = _metres_outside(pts, boundary_m, crs, projected=projected)
    out = dist > EDGE_TOLERANCE_M
    if out.sum() == 0:
        return report
    x, y = coordinates if coordinates is not None else _xy(pts)
    cause = _reading_bringing_in(x, y, out, _other_readings(declared_offset), boundary_m, crs)
    far = dist > MAX_OUTSIDE_M
    if cause is None and not far.any():
        return report
    first, n = _first_rows(out if cause else far)
    likely = (
        f"; likely cause: {cause}"
        if cause
        else ("; check the coordinates and the declared coordinate system")
    )
    report.error(
        f"{n} feature(s) lie outside the district (this one {dist[first]:.0f} m outside){likely}",
        layer=schema.name,
        file=source.file,
        feature=_feature_at(gdf_wgs84, schema, source, first),
        column="geometry",
    )
    return report


def _metres_outside(
    points: gpd.GeoSeries | None,
    boundary_m: shapely.Geometry,
    crs,
    *,
    projected: gpd.GeoSeries | None = None,
) -> np.ndarray:
    """Distance in metres (in ``crs``) from each WGS84 point to the district; 0 inside.

    Where ``projected`` (the layer's geometry in ``crs``) holds a point, that point is the
    projected surface point already (a point is its own surface point), so only the others are
    projected here (``points`` may be None when ``projected`` holds points only).
    """
    if projected is None:
        pts_m = np.asarray(project(points, crs).to_numpy(), dtype=object)
    else:
        pts_m = np.asarray(projected.to_numpy(), dtype=object).copy()
        todo = shapely.get_type_id(pts_m) != 0
        if todo.any():
            pts_m[todo] = project(points[todo], crs).to_numpy()
    # A point inside is 0 m out; the prepared boundary answers that without measuring.
    shapely.prepare(boundary_m)
    dist = np.zeros(len(pts_m))
    rest = ~shapely.contains(boundary_m, pts_m)
    dist[rest] = shapely.distance(pts_m[rest], boundary_m)
    return dist


def _metres_outside_xy(x: np.ndarray, y: np.ndarray, boundary_m: shapely.Geometry) -> np.ndarray:
    """:func:`_metres_outside` of points given by their coordinates in the boundary's CRS:
    only those the boundary does not contain are made into points, to be measured."""
    shapely.prepare(boundary_m)
    dist = np.zeros(len(x))
    # On the edge, contains_xy may say inside where contains says not: 0 m out either way.
    rest = ~shapely.contains_xy(boundary_m, x, y)
    dist[rest] = shapely.distance(shapely.points(x[rest], y[rest]), boundary_m)
    return dist


def _xy(points: gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray]:
    """``points.x``, ``points.y`` (NaN where missing), without GeoSeries.x's check that
    spells out every geometry's type (seconds for a city's buildings)."""
    geoms = np.asarray(points.values, dtype=object)
    return shapely.get_x(geoms), shapely.get_y(geoms)


def _surface_series(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    """``geoms.representative_point()``, points taken as they are (see :func:`surface_points`)."""
    return gpd.GeoSeries(surface_points(geoms.to_numpy()), index=geoms.index, crs=geoms.crs)


def _other_readings(declared_offset: str | None) -> dict[str, Callable]:
    """Each likely mistake (label → function of lon, lat giving the coordinates under it)."""
    readings: dict[str, Callable] = {"latitude/longitude swapped": lambda x, y: (y, x)}
    if declared_offset is None:
        readings['GCJ-02 (Amap/Tencent) data declared as WGS84/CGCS2000 — set crs = "GCJ-02"'] = (
            gcj02_to_wgs84
        )
        readings['BD-09 (Baidu) data declared as WGS84/CGCS2000 — set crs = "BD-09"'] = (
            bd09_to_wgs84
        )
    else:
        # The symmetric mistake: plain WGS84 declared as a web-map system. Removing an offset
        # that was never there moves every feature by the same few hundred metres; putting
        # it back gives the file's own coordinates read as WGS84.
        declared = _OFFSET_NAMES[declared_offset]
        readings[
            f'WGS84/CGCS2000 data declared as {declared} — set crs = "WGS84" '
            "(or the file's own system)"
        ] = _RELATIVE_SHIFTS[declared_offset][0]
    return readings


# Points moved per block when trying a reading: a wrong reading is usually refuted by the
# outliers alone (it leaves them out) or within the first block of the others (it pushes
# inside points out), so a city's layer is not moved whole.
READING_BLOCK = 262_144
# The others are moved in blocks growing from this size: a wrong reading pushing edge features
# out is refuted after a few thousand of them, a right one still moves every feature.
READING_FIRST_BLOCK = 8_192


def _reading_bringing_in(
    x: np.ndarray,
    y: np.ndarray,
    out: np.ndarray,
    readings: Mapping[str, Callable],
    boundary_m: shapely.Geometry,
    crs,
) -> str | None:
    """The first reading that explains the features outside (``out``), or None.

    A reading explains the data when it brings (nearly) all outliers in without pushing the
    others out: at most a fifth as many features outside as ``out`` counts. The outliers are
    moved first, on their own (a wrong reading usually leaves them out), then the others block
    by block, and a reading stops as soon as it has pushed more than that out. The blocks only
    decide how soon: the answer is that of all features moved at once.
    """
    n_out = int(out.sum())
    work = pyproj.CRS.from_user_input(crs)
    blocks = _blocks(np.flatnonzero(out), READING_BLOCK) + _blocks(
        np.flatnonzero(~out), min(READING_FIRST_BLOCK, READING_BLOCK)
    )
    for label, move in readings.items():
        n_alt = 0
        for rows in blocks:
            ax, ay = move(x[rows], y[rows])
            if not (np.all(np.isfinite(ax)) and np.all(np.abs(ay) <= 90)):
                n_alt = n_out + 1
                break
            mx, my = project_xy(ax, ay, WGS84, work)
            n_alt += int((_metres_outside_xy(mx, my, boundary_m) > EDGE_TOLERANCE_M).sum())
            if n_alt > 0.2 * n_out:
                break
        if n_out >= 1 and n_alt <= 0.2 * n_out:
            return label
    return None


def _blocks(rows: np.ndarray, first: int) -> list[np.ndarray]:
    """``rows`` cut into blocks of ``first`` rows, each twice the one before up to
    :data:`READING_BLOCK`."""
    blocks, start, size = [], 0, first
    while start < len(rows):
        blocks.append(rows[start : start + size])
        start, size = start + size, min(2 * size, READING_BLOCK)
    return blocks


# Share of point records (hazards, incidents) that must lie on a building footprint under a
# shifted reading, with at most half of them there as declared, before the coordinate systems
# are called wrong: geocoded ledgers put some points beside their building, never ~500 m off.
ALIGNED_SHARE = 0.8


def check_alignment(
    points_wgs84: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    crs,
    *,
    schema: LayerSchema,
    source: LayerSource,
    points_offset: str | None,
    buildings_offset: str | None,
    tolerance_m: float = 1.0,
) -> ValidationReport:
    """Records placed at buildings (hazards, incidents) must lie on the buildings.

    When hardly any do as declared but nearly all would after a GCJ-02 or BD-09 shift of one
    layer against the other, one of the two layers was declared in the wrong system: a
    mistake that moves features by a few hundred metres and may leave them all inside the
    district, where :func:`check_extent` cannot see it.

    ``buildings`` may be in any CRS (in ``crs`` already, its footprints are used as they are);
    the other layer is WGS84 as declared, and ``crs`` the working CRS.
    """
    report = ValidationReport()
    shapes = shapely.get_type_id(np.asarray(buildings.geometry.values, dtype=object))
    if len(points_wgs84) < 5 or not np.isin(shapes, _type_ids(POLYGON)).all():
        return report
    footprints = project(buildings.geometry, crs)
    tree = shapely.STRtree(np.asarray(footprints.values, dtype=object))
    pts = _surface_series(points_wgs84.geometry)
    x, y = _xy(pts)
    declared = _share_on(tree, x, y, crs, tolerance_m)
    if declared > 0.5:
        return report
    for offset, (forward, inverse) in _RELATIVE_SHIFTS.items():
        name = _OFFSET_NAMES[offset]
        for direction, shift in (("forward", forward), ("inverse", inverse)):
            shifted = _share_on(tree, *shift(x, y), crs, tolerance_m)
            if shifted < ALIGNED_SHARE or shifted < 2 * declared:
                continue
            cause = _misdeclared(direction, offset, schema.name, points_offset, buildings_offset)
            report.error(
                f"only {declared:.0%} of {schema.name} lie on a building, {shifted:.0%} would "
                f"after a {name} shift: likely {cause}; check the crs of both layers",
                layer=schema.name,
                file=source.file,
                column="geometry",
            )
            return report
    return report


def _share_on(
    tree: shapely.STRtree, x: np.ndarray, y: np.ndarray, crs, tolerance_m: float
) -> float:
    """Share of the WGS84 points within ``tolerance_m`` metres of a footprint in ``tree``."""
    moved = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=WGS84).to_crs(crs)
    hit = tree.query(np.asarray(moved.values, dtype=object), "dwithin", tolerance_m)[0]
    return len(np.unique(hit)) / len(moved)


def _misdeclared(
    direction: str,
    offset: str,
    layer: str,
    points_offset: str | None,
    buildings_offset: str | None,
) -> str:
    """Which declaration a shift of the points ``direction`` by ``offset`` points at."""
    name = _OFFSET_NAMES[offset]
    # Shifting the points forward = the points are really WGS84 but were declared in
    # the offset system, or the buildings are in the offset system declared as WGS84.
    culprits = []
    if direction == "forward":
        if points_offset == offset:
            culprits.append(f"{layer} are WGS84 but declared {name}")
        if buildings_offset is None:
            culprits.append(f"buildings are {name} but declared WGS84")
    else:
        if points_offset is None:
            culprits.append(f"{layer} are {name} but declared WGS84")
        if buildings_offset == offset:
            culprits.append(f"buildings are WGS84 but declared {name}")
    return " or ".join(culprits) or "the two layers' coordinate systems disagree"


def check_grid_hierarchy(grids: gpd.GeoDataFrame, source: LayerSource) -> ValidationReport:
    """Every cell below level 1 names an existing parent one level up and lies inside it.

    Any number of levels (1 = the top, up to :data:`firegrid.spatial.io.grids.MAX_LEVELS`):
    a level-5 cell's parent is a level-4 cell, and so on up to level 1, which has no parent.

    ``grids`` must be in a projected CRS (areas in m²).
    """
    report = ValidationReport()
    t = _parent_links(grids)

    def error(problem: str, pos: int, column: str = "parent_id") -> None:
        report.error(
            problem,
            layer="grids",
            file=source.file,
            feature=_feature_at(grids, SCHEMAS["grids"], source, pos),
            column=source.column(column) if column == "parent_id" else column,
        )

    needs_parent = (t.level > 1).fillna(False).to_numpy()
    no_parent = needs_parent & t.parent.isna().to_numpy()
    if no_parent.any():
        first, n = _first_rows(no_parent)
        error(f"a level-{t.level.iloc[first]} cell needs a parent_id{_more(n)}", first)
    has_parent = needs_parent & t.parent.notna().to_numpy()
    missing = has_parent & ~t.parent.isin(t.ids).fillna(False).to_numpy()
    if missing.any():
        first, n = _first_rows(missing)
        error(f"parent {t.parent.iloc[first]!r} does not exist{_more(n)}", first)
    linked = np.flatnonzero(has_parent & ~missing)
    if not len(linked):
        return report
    wrong_level = t.level_by_id.loc[t.parent.iloc[linked].to_numpy()].to_numpy() != (
        t.level.iloc[linked].to_numpy() - 1
    )
    if wrong_level.any():
        first = int(linked[np.flatnonzero(wrong_level)[0]])
        p = t.parent.iloc[first]
        error(
            f"parent {p!r} is level {t.level_by_id[p]}, expected level {t.level.iloc[first] - 1}",
            first,
        )
    share = _share_outside_parent(grids, t, linked)
    bad = share > PARENT_OVERLAP_TOLERANCE
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        first = int(linked[k])
        error(
            f"cell lies {share[k]:.0%} outside its parent {t.parent.iloc[first]!r}"
            + (f"; {int(bad.sum()) - 1} more cells like it" if bad.sum() > 1 else ""),
            first,
            "geometry",
        )
    return report


@dataclass(frozen=True)
class _ParentLinks:
    """Each grid cell's id, level and parent (blank parents as <NA>), and lookups by id."""

    ids: pd.Series
    level: pd.Series
    parent: pd.Series
    position_by_id: pd.Series
    level_by_id: pd.Series


def _parent_links(grids: gpd.GeoDataFrame) -> _ParentLinks:
    ids = grids["grid_id"].astype("string")
    level = grids["level"].astype("Int64")
    parent = (
        grids["parent_id"].astype("string")
        if "parent_id" in grids
        else pd.Series(pd.NA, index=grids.index, dtype="string")
    )
    parent = parent.where(parent.str.strip() != "", pd.NA)
    return _ParentLinks(
        ids,
        level,
        parent,
        pd.Series(np.arange(len(grids)), index=ids.to_numpy()),
        pd.Series(level.to_numpy(), index=ids.to_numpy()),
    )


def _share_outside_parent(
    grids: gpd.GeoDataFrame, t: _ParentLinks, linked: np.ndarray
) -> np.ndarray:
    """Share of the area of each linked cell (positions ``linked``) outside its parent."""
    child_geom = grids.geometry.values[linked]
    parent_pos = t.position_by_id.loc[t.parent.iloc[linked].to_numpy()].to_numpy()
    parent_geom = grids.geometry.values[parent_pos]
    outside = shapely.area(shapely.difference(child_geom, parent_geom))
    return outside / np.maximum(shapely.area(child_geom), 1e-9)


def check_grid_overlaps(grids: gpd.GeoDataFrame, source: LayerSource) -> ValidationReport:
    """Cells of one level must not overlap: a building in the overlap would belong to both.

    Overlaps up to ``PARENT_OVERLAP_TOLERANCE`` of the smaller cell are digitising slack and
    pass. ``grids`` must be in a projected CRS (areas in m²).
    """
    report = ValidationReport()
    level = grids["level"].to_numpy()
    geoms = np.asarray(grids.geometry.values, dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pair = (left < right) & (level[left] == level[right])
    left, right = left[pair], right[pair]
    if not len(left):
        return report
    shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
    share = shared / np.maximum(smaller, 1e-9)
    bad = share > PARENT_OVERLAP_TOLERANCE
    if not bad.any():
        return report
    ids = grids["grid_id"].astype("string")
    k = int(np.flatnonzero(bad)[0])
    a, b = int(left[k]), int(right[k])
    report.error(
        f"level-{level[a]} cells {ids.iloc[a]!r} and {ids.iloc[b]!r} overlap by "
        f"{shared[k]:,.0f} m² ({share[k]:.0%} of the smaller): a building there would "
        "belong to both"
        + (f"; {int(bad.sum()) - 1} more overlapping pairs" if bad.sum() > 1 else ""),
        layer="grids",
        file=source.file,
        feature=_feature_at(grids, SCHEMAS["grids"], source, a),
        column="geometry",
    )
    return report


def check_grid_coverage(
    features: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    source: LayerSource,
    *,
    layer: str = "buildings",
    cells: pd.DataFrame | None = None,
) -> ValidationReport:
    """Warn, with counts, about features in no finest-level cell and in no cell at all.

    Both are accepted: the first are counted in their coarser cell only, the second in no
    per-grid figure. Layers in the same projected CRS; ``cells`` is the features' grid cells
    when already assigned (:func:`firegrid.spatial.io.grids.assign_grids`).
    """
    report = ValidationReport()
    if cells is None:
        cells, _ = assign_grids(features, grids, what=layer)
    columns = sorted(cells.columns, key=lambda c: int(c.rsplit("l", 1)[1]))
    if not columns:
        return report
    schema = SCHEMAS[layer]
    nowhere = cells[columns[0]].isna().to_numpy()
    not_finest = cells[columns[-1]].isna().to_numpy() & ~nowhere
    for mask, problem in (
        (nowhere, "lie in no grid cell: they count in no per-grid figure"),
        (
            not_finest,
            f"lie in no level-{columns[-1].rsplit('l', 1)[1]} cell: they count only in the "
            "coarser cell around them",
        ),
    ):
        if mask.any():
            first, n = _first_rows(mask)
            report.warn(
                f"{n} of {len(features)} {layer} {problem} (first: "
                f"{_feature_at(features, schema, source, first)})",
                layer=layer,
                file=source.file,
                column="geometry",
            )
    return report


def check_references(
    hazards: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, source: LayerSource
) -> ValidationReport:
    """Hazards that name a building_id the buildings layer does not have (a warning: the
    hazard still counts at its location)."""
    report = ValidationReport()
    if "building_id" not in hazards:
        return report
    named = hazards["building_id"].astype("string")
    unknown = (named.notna() & ~named.isin(buildings["building_id"].astype("string"))).to_numpy(
        dtype=bool
    )
    if unknown.any():
        first, n = _first_rows(unknown)
        report.warn(
            f"building {named.iloc[first]!r} is not in the buildings layer{_more(n)}; "
            "the hazard is matched to the nearest building instead",
            layer="hazards",
            file=source.file,
            feature=_feature_at(hazards, SCHEMAS["hazards"], source, first),
            column=source.column("building_id"),
        )
    return report
