"""Validation of layers: columns, types, allowed values, geometries, ids, extent, grid hierarchy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from spatial.crs import WGS84, bd09_to_wgs84, gcj02_to_wgs84
from spatial.errors import InputError, format_location
from spatial.io import LayerSource
from spatial.layers import FALSE_WORDS, TRUE_WORDS, VALUE_SYNONYMS, Column, LayerSchema

# How far outside the district boundary a feature may lie before it is called an error: ledgers
# legitimately list a neighbour's hydrant across the street, not one kilometres away.
MAX_OUTSIDE_M = 1000.0
# Below this a feature counts as inside (boundary digitising slack).
EDGE_TOLERANCE_M = 50.0
# A cell may stick out of its parent by this share of its area (digitising slack).
PARENT_OVERLAP_TOLERANCE = 0.01


@dataclass
class Finding:
    """One validation message; ``level`` is ``error``, ``warning`` or ``info``."""

    level: str
    message: str
    layer: str = ""


@dataclass
class ValidationReport:
    """All findings of a validation run, errors first when printed."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, level: str, message: str, layer: str = "") -> None:
        self.findings.append(Finding(level, message, layer))

    def error(self, problem: str, *, layer: str = "", **where) -> None:
        self.add("error", format_location(problem, **where), layer)

    def warn(self, problem: str, *, layer: str = "", **where) -> None:
        self.add("warning", format_location(problem, **where), layer)

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


def _more(n: int) -> str:
    return f"; {n - 1} more rows like it" if n > 1 else ""


def _blank(series: pd.Series) -> np.ndarray:
    """Missing or empty-text cells."""
    text = series.astype("string").str.strip()
    return (series.isna() | text.isna() | (text == "")).to_numpy(dtype=bool)


_CN_DATE = {"年": "-", "月": "-", "日": "", ".": "-"}


def _coerce_column(
    values: pd.Series, col: Column, extra_values: Mapping[str, str] | None
) -> tuple[pd.Series, np.ndarray, str]:
    """Convert one column; returns the converted series, a mask of unconvertible cells, and why."""
    blank = _blank(values)
    text = values.astype("string").str.strip()
    if col.kind == "str":
        out = text.where(~blank, pd.NA)
        return out.astype("string"), np.zeros(len(values), bool), ""
    if col.kind in ("int", "float"):
        if pd.api.types.is_bool_dtype(values):
            values = values.astype(float)
        numbers = pd.to_numeric(text.where(~blank, None), errors="coerce").astype(float)
        bad = numbers.isna().to_numpy() & ~blank
        why = "not a number"
        if col.kind == "int":
            fractional = (numbers.notna() & (numbers % 1 != 0)).to_numpy()
            if fractional.any() and not bad.any():
                bad, why = fractional, "not a whole number"
            numbers = numbers.round().astype("Int64")
        range_bad = np.zeros(len(values), bool)
        num = numbers.astype(float)
        if col.lo is not None:
            range_bad |= (num < col.lo).fillna(False).to_numpy()
        if col.hi is not None:
            range_bad |= (num > col.hi).fillna(False).to_numpy()
        if range_bad.any() and not bad.any():
            bad, why = range_bad, f"outside the plausible range {col.lo}–{col.hi}"
        return numbers, bad, why
    if col.kind == "bool":
        if pd.api.types.is_bool_dtype(values):
            return values.astype("boolean"), np.zeros(len(values), bool), ""
        lowered = text.str.lower()
        is_true = lowered.isin(TRUE_WORDS).fillna(False).to_numpy()
        is_false = lowered.isin(FALSE_WORDS).fillna(False).to_numpy()
        out = pd.Series(pd.NA, index=values.index, dtype="boolean")
        out[is_true] = True
        out[is_false & ~blank] = False
        bad = ~(is_true | is_false | blank)
        return out, bad, "not yes/no (use 1/0, true/false, 是/否)"
    if col.kind == "date":
        if pd.api.types.is_datetime64_any_dtype(values):
            out = (
                pd.to_datetime(values).dt.tz_localize(None)
                if getattr(values.dt, "tz", None)
                else values
            )
            return out.astype("datetime64[ns]").dt.normalize(), np.zeros(len(values), bool), ""
        cleaned = text
        for cn, rep in _CN_DATE.items():
            cleaned = cleaned.str.replace(cn, rep, regex=False)
        dates = pd.to_datetime(cleaned.where(~blank, None), errors="coerce", format="mixed")
        bad = dates.isna().to_numpy() & ~blank
        return dates.astype("datetime64[ns]").dt.normalize(), bad, "not a date (use YYYY-MM-DD)"
    if col.kind == "category":
        mapping = {k.lower(): v for k, v in VALUE_SYNONYMS.get(col.name, {}).items()}
        mapping.update({str(k).strip().lower(): v for k, v in (extra_values or {}).items()})
        lowered = text.str.lower()
        mapped = lowered.map(lambda v: mapping.get(v, v) if isinstance(v, str) else v)
        out = mapped.where(~blank, pd.NA).astype("string")
        bad = ~out.isin(col.choices).fillna(False).to_numpy() & ~blank
        return out, bad, f"not one of {list(col.choices)}"
    raise ValueError(f"unknown column kind {col.kind!r}")


def coerce_layer(
    gdf: gpd.GeoDataFrame,
    schema: LayerSchema,
    source: LayerSource,
    *,
    values: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[gpd.GeoDataFrame, ValidationReport]:
    """Check one layer against its schema and convert its canonical columns to their dtypes.

    Invalid geometries are repaired with ``make_valid`` and counted; unrepairable ones,
    missing required columns, unconvertible values, out-of-range numbers, unknown category
    values and duplicate ids are errors naming the file, the feature and the column.
    Unknown extra columns pass through unchanged.

    Returns
    -------
    The converted layer (a copy; CRS unchanged) and the findings.
    """
    report = ValidationReport()
    name = schema.name
    file = source.file
    out = gdf.copy()
    if len(out) == 0:
        report.error("the layer is empty", layer=name, file=file)
        return out, report
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
    if report.errors:
        return out, report

    ids = out[schema.id_column].astype("string").str.strip() if schema.id_column in out else None

    def where(pos: int) -> str:
        ident = ids.iloc[pos] if ids is not None and not pd.isna(ids.iloc[pos]) else None
        return source.feature(pos, ident, schema.id_column)

    for col in schema.columns:
        if col.name not in out.columns:
            continue
        converted, bad, why = _coerce_column(out[col.name], col, (values or {}).get(col.name))
        if bad.any():
            first, n = _first_rows(bad)
            report.error(
                f"{why}: {out[col.name].iloc[first]!r}{_more(n)}",
                layer=name,
                file=file,
                feature=where(first),
                column=source.column(col.name),
            )
            continue
        if col.required:
            missing = converted.isna().to_numpy()
            if missing.any():
                first, n = _first_rows(missing)
                report.error(
                    f"required value is empty{_more(n)}",
                    layer=name,
                    file=file,
                    feature=where(first),
                    column=source.column(col.name),
                )
                continue
        out[col.name] = converted

    if ids is not None and not report.errors:
        dup = ids.duplicated(keep=False).to_numpy() & ids.notna().to_numpy()
        if dup.any():
            rows = np.flatnonzero(dup)
            first_id = ids.iloc[rows[0]]
            same = rows[(ids.iloc[rows] == first_id).to_numpy()]
            report.error(
                f"duplicate id {first_id!r} at {' and '.join(source.feature(r) for r in same[:3])}"
                + (
                    f"; {int(ids[dup].nunique()) - 1} more duplicated ids"
                    if ids[dup].nunique() > 1
                    else ""
                ),
                layer=name,
                file=file,
                feature=source.feature(rows[0]),
                column=source.column(schema.id_column),
            )

    _check_geometries(out, schema, source, report, where)
    return out, report


def _check_geometries(out, schema, source, report, where) -> None:
    name, file = schema.name, source.file
    geoms = out.geometry.values
    missing = np.asarray(shapely.is_missing(geoms) | shapely.is_empty(geoms), dtype=bool)
    if missing.any():
        first, n = _first_rows(missing)
        report.error(
            f"geometry is missing or empty{_more(n)}",
            layer=name,
            file=file,
            feature=where(first),
            column="geometry",
        )
        return
    invalid = ~np.asarray(shapely.is_valid(geoms), dtype=bool)
    if invalid.any():
        repaired = shapely.make_valid(
            np.asarray(geoms)[invalid], method="structure", keep_collapsed=False
        )
        types = shapely.get_type_id(repaired)
        polygonal_ok = np.isin(types, [3, 6]) & ~shapely.is_empty(repaired)
        if set(schema.geometry) & {"Polygon"} and not polygonal_ok.all():
            bad_pos = np.flatnonzero(invalid)[~polygonal_ok]
            report.error(
                f"invalid geometry that cannot be repaired ({shapely.is_valid_reason(geoms[bad_pos[0]])})"
                + _more(len(bad_pos)),
                layer=name,
                file=file,
                feature=where(int(bad_pos[0])),
                column="geometry",
            )
            return
        values = np.asarray(geoms).copy()
        values[invalid] = repaired
        out.geometry.values[:] = values  # keep CRS; replace in place on our own copy
        first = int(np.flatnonzero(invalid)[0])
        report.warn(
            f"repaired {int(invalid.sum())} invalid geometries (first: {where(first)}: "
            f"{shapely.is_valid_reason(geoms[first])})",
            layer=name,
            file=file,
            column="geometry",
        )
    types = np.asarray(out.geometry.geom_type)
    wrong = ~np.isin(types, schema.geometry)
    if wrong.any():
        first, n = _first_rows(wrong)
        report.error(
            f"geometry type {types[first]} not allowed here (expected {'/'.join(schema.geometry)}){_more(n)}",
            layer=name,
            file=file,
            feature=where(first),
            column="geometry",
        )


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
        ident = gdf_wgs84[schema.id_column].iloc[first] if schema.id_column in gdf_wgs84 else None
        report.error(
            f"coordinates out of range ({cause}){_more(n)}",
            layer=schema.name,
            file=source.file,
            feature=source.feature(first, ident, schema.id_column),
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
    max_outside_m: float = MAX_OUTSIDE_M,
) -> ValidationReport:
    """Find features outside the district and name the likely cause.

    Features more than ``max_outside_m`` metres outside the boundary are errors. When undoing
    a GCJ-02 or BD-09 offset (or swapping latitude/longitude) would bring the layer's outside
    features inside, the layer was most likely declared in the wrong coordinate system, and
    that is said even for features only a few hundred metres out.
    """
    report = ValidationReport()
    to_m = gpd.GeoSeries([boundary_wgs84], crs=WGS84).to_crs(crs)
    boundary_m = to_m.iloc[0]
    pts = gdf_wgs84.geometry.representative_point()

    def outside_m(points: gpd.GeoSeries) -> np.ndarray:
        return np.asarray(points.to_crs(crs).distance(boundary_m), dtype=float)

    dist = outside_m(pts)
    out = dist > EDGE_TOLERANCE_M
    if out.sum() == 0:
        return report
    x = pts.x.to_numpy()
    y = pts.y.to_numpy()
    alternatives = {"latitude/longitude swapped": (y, x)}
    if declared_offset is None:
        alternatives[
            'GCJ-02 (Amap/Tencent) data declared as WGS84/CGCS2000 — set crs = "GCJ-02"'
        ] = gcj02_to_wgs84(x, y)
        alternatives['BD-09 (Baidu) data declared as WGS84/CGCS2000 — set crs = "BD-09"'] = (
            bd09_to_wgs84(x, y)
        )
    cause = None
    n_out = int(out.sum())
    for label, (ax, ay) in alternatives.items():
        ok = np.all(np.isfinite(ax)) and np.all(np.abs(ay) <= 90)
        if not ok:
            continue
        alt = outside_m(gpd.GeoSeries(gpd.points_from_xy(ax, ay), crs=WGS84)) > EDGE_TOLERANCE_M
        # The alternative explains the data when it brings (nearly) all outliers in
        # without pushing the others out.
        if n_out >= 1 and alt.sum() <= 0.2 * n_out and alt.sum() < n_out:
            cause = label
            break
    far = dist > max_outside_m
    if cause is None and not far.any():
        return report
    mask = out if cause else far
    first, n = _first_rows(mask)
    ident = gdf_wgs84[schema.id_column].iloc[first] if schema.id_column in gdf_wgs84 else None
    likely = (
        f"; likely cause: {cause}"
        if cause
        else ("; check the coordinates and the declared coordinate system")
    )
    report.error(
        f"{n} feature(s) lie outside the district (this one {dist[first]:.0f} m outside){likely}",
        layer=schema.name,
        file=source.file,
        feature=source.feature(first, ident, schema.id_column),
        column="geometry",
    )
    return report


def check_grid_hierarchy(grids: gpd.GeoDataFrame, source: LayerSource) -> ValidationReport:
    """Every level-2/3 cell names an existing parent one level up and lies inside it.

    ``grids`` must be in a projected CRS (areas in m²).
    """
    report = ValidationReport()
    ids = grids["grid_id"].astype("string")
    level = grids["level"].astype("Int64")
    parent = (
        grids["parent_id"].astype("string")
        if "parent_id" in grids
        else pd.Series(pd.NA, index=grids.index, dtype="string")
    )
    parent = parent.where(parent.str.strip() != "", pd.NA)
    by_id = pd.Series(np.arange(len(grids)), index=ids.to_numpy())
    level_by_id = pd.Series(level.to_numpy(), index=ids.to_numpy())

    def where(pos: int) -> str:
        return source.feature(pos, ids.iloc[pos], "grid_id")

    col = source.column("parent_id")
    needs_parent = (level > 1).fillna(False).to_numpy()
    no_parent = needs_parent & parent.isna().to_numpy()
    if no_parent.any():
        first, n = _first_rows(no_parent)
        report.error(
            f"a level-{level.iloc[first]} cell needs a parent_id{_more(n)}",
            layer="grids",
            file=source.file,
            feature=where(first),
            column=col,
        )
    has_parent = needs_parent & parent.notna().to_numpy()
    missing = has_parent & ~parent.isin(ids).fillna(False).to_numpy()
    if missing.any():
        first, n = _first_rows(missing)
        report.error(
            f"parent {parent.iloc[first]!r} does not exist{_more(n)}",
            layer="grids",
            file=source.file,
            feature=where(first),
            column=col,
        )
    linked = has_parent & ~missing
    if not linked.any():
        return report
    pos = np.flatnonzero(linked)
    parent_level = level_by_id.loc[parent.iloc[pos].to_numpy()].to_numpy()
    wrong_level = parent_level != level.iloc[pos].to_numpy() - 1
    if wrong_level.any():
        first = int(pos[np.flatnonzero(wrong_level)[0]])
        report.error(
            f"parent {parent.iloc[first]!r} is level {level_by_id[parent.iloc[first]]}, expected level {level.iloc[first] - 1}",
            layer="grids",
            file=source.file,
            feature=where(first),
            column=col,
        )
    child_geom = grids.geometry.values[pos]
    parent_geom = grids.geometry.values[by_id.loc[parent.iloc[pos].to_numpy()].to_numpy()]
    outside = shapely.area(shapely.difference(child_geom, parent_geom))
    share = outside / np.maximum(shapely.area(child_geom), 1e-9)
    bad = share > PARENT_OVERLAP_TOLERANCE
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        first = int(pos[k])
        report.error(
            f"cell lies {share[k]:.0%} outside its parent {parent.iloc[first]!r}"
            + (f"; {int(bad.sum()) - 1} more cells like it" if bad.sum() > 1 else ""),
            layer="grids",
            file=source.file,
            feature=where(first),
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
            feature=source.feature(first, hazards["hazard_id"].iloc[first], "hazard_id"),
            column=source.column("building_id"),
        )
    return report
