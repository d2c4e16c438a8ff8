"""Reading layer files: GeoPackage, GeoJSON, Shapefile, GeoParquet, and CSV/Excel ledgers."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from spatial.errors import InputError

VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".zip", ".fgb", ".kml"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet"}
TABLE_SUFFIXES = {".csv", ".txt", ".xlsx", ".xls"}
# Chinese Excel saves "CSV" as GBK; GB18030 is its superset, so it reads both.
CSV_ENCODINGS = ("utf-8-sig", "gb18030")


@dataclass
class LayerSource:
    """Where a layer came from, so every message can point at the user's own file and header.

    ``row_label``/``row_base`` turn a 0-based position into what the user sees: spreadsheet
    rows start at 2 (row 1 is the header); GIS features are numbered from 1.
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


def read_csv_any_encoding(path: str | Path, **kwargs) -> tuple[pd.DataFrame, str]:
    """Read a CSV in UTF-8, UTF-8 with BOM or GBK/GB18030 without being told which.

    Returns the table (all columns as text, so ids like "007" keep their zeros) and the
    encoding that worked.
    """
    raw = Path(path).read_bytes()
    for encoding in CSV_ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, **kwargs)
        df.columns = [str(c).strip() for c in df.columns]
        return df, encoding
    raise InputError(
        "cannot decode the file as UTF-8 or GBK/GB18030; save it as UTF-8 CSV", file=str(path)
    )


def read_table(
    path: str | Path, *, sheet: str | int | None = None
) -> tuple[pd.DataFrame, str | None]:
    """Read a CSV or Excel ledger as text columns; returns the table and the encoding used."""
    path = Path(path)
    if path.suffix.lower() in {".xlsx", ".xls"}:
        df = pd.read_excel(path, sheet_name=0 if sheet is None else sheet, dtype=str)
        df = df.fillna("")
        df.columns = [str(c).strip() for c in df.columns]
        return df, None
    return read_csv_any_encoding(path)


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
        bad = np.flatnonzero(numbers.isna().to_numpy())
        if len(bad):
            first = int(bad[0])
            shown = repr(df[col].iloc[first]) if text.iloc[first] else "empty"
            raise InputError(
                f"coordinate is not a number ({shown})"
                + (f"; {len(bad) - 1} more rows like it" if len(bad) > 1 else ""),
                file=source.file,
                feature=source.feature(first),
                column=col,
            )
        values[col] = numbers.to_numpy(dtype=float)
    geometry = gpd.points_from_xy(values[lon], values[lat])
    return gpd.GeoDataFrame(df.drop(columns=[lon, lat]), geometry=geometry, crs=None)


def read_layer_file(
    path: str | Path,
    *,
    layer: str | None = None,
    lon: str | None = None,
    lat: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> tuple[gpd.GeoDataFrame, LayerSource]:
    """Read one layer file and rename the user's headers to canonical names.

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
    if not path.exists():
        raise InputError("file not found", file=str(path))
    suffix = path.suffix.lower()
    columns = dict(columns or {})
    if suffix in TABLE_SUFFIXES:
        df, encoding = read_table(path, sheet=layer)
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
        gdf = _points_from_lonlat(df, lon, lat, source)
    else:
        source = LayerSource(str(path))
        try:
            if suffix in PARQUET_SUFFIXES:
                gdf = gpd.read_parquet(path)
            else:
                gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
            raise InputError(f"cannot read as a GIS layer: {exc}", file=str(path)) from exc
        if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
            raise InputError("the file has no geometry column", file=str(path))
        gdf.columns = [str(c).strip() if c != gdf.geometry.name else c for c in gdf.columns]
    unknown = [c for c in columns if c not in gdf.columns]
    if unknown:
        raise InputError(
            f"the config maps header(s) {unknown} but the file has columns "
            f"{[c for c in gdf.columns if c != gdf.geometry.name]}",
            file=str(path),
            column=unknown[0],
        )
    gdf = gdf.rename(columns=columns)
    source.headers = {canon: user for user, canon in columns.items()}
    return gdf, source


LON_NAMES = ("lon", "lng", "longitude", "x", "经度", "东经")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "北纬")


def _guess(names, candidates) -> str | None:
    lowered = {str(n).strip().lower(): n for n in names}
    return next((lowered[c] for c in candidates if c in lowered), None)
