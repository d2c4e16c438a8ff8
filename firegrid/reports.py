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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Self

import geopandas as gpd
import numpy as np
import pandas as pd

from firegrid.maps.options import parameter_values
from firegrid.maps.privacy import personal_columns, redact_text, shared_columns
from firegrid.outputs import write_folder_atomically
from firegrid.spatial import columns
from firegrid.spatial.errors import ConfigError
from firegrid.spatial.io.layers import SCHEMAS
from firegrid.spatial.params import params_from_mapping

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
    """

    folder: str | None = None
    map: bool = True
    excel: bool = True
    personal: str = "drop"

    def __post_init__(self) -> None:
        if self.personal not in PERSONAL_CHOICES:
            raise ConfigError(
                f"[output] personal must be one of {list(PERSONAL_CHOICES)}, not {self.personal!r}"
            )

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[output]`` table; ConfigError names an unknown or bad key."""
        return params_from_mapping(cls, d, section="output")


# --------------------------------------------------------------------------------------------
# GeoPackage


def _gpkg_ready(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy GDAL can write: durations as seconds, nested values (OSM tag lists) as text."""
    out = gdf.copy()
    geom = out.geometry.name
    for col in out.columns:
        if col == geom:
            continue
        s = out[col]
        if pd.api.types.is_timedelta64_dtype(s):
            out[col] = s.dt.total_seconds()
        elif s.dtype == object:
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


def without_personal(frame: pd.DataFrame, *, allow: Iterable[str] = ()) -> pd.DataFrame:
    """``frame`` without the columns that look personal, except those named in ``allow``."""
    allow = set(allow)
    drop = [c for c in personal_columns(frame) if c not in allow]
    return frame.drop(columns=drop) if drop else frame


def write_results_gpkg(
    layers: Mapping[str, gpd.GeoDataFrame],
    path: str | os.PathLike,
    *,
    personal: str = "drop",
    allow: Iterable[str] = (),
) -> Path:
    """Write every layer (with its computed columns) into one GeoPackage, one layer each.

    Layers keep their CRS (the district's metric working CRS); empty layers are skipped.
    Tables without geometry (``pandas.DataFrame``) are written as attribute-only layers.
    With ``personal="drop"`` (default) columns that look personal are left out unless named
    in ``allow`` (the config's ``[map] allow_fields``); ``"keep"`` writes them too.
    """
    import pyogrio

    path = Path(path)
    for name, frame in layers.items():
        if frame is None or len(frame) == 0:
            continue
        if personal != "keep":
            frame = without_personal(frame, allow=allow)
        if isinstance(frame, gpd.GeoDataFrame):
            _gpkg_ready(frame).to_file(path, layer=name, driver="GPKG")
        else:
            pyogrio.write_dataframe(pd.DataFrame(frame), path, layer=name, driver="GPKG")
    return path


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
) -> list[Path]:
    """Write the per-grid table as CSV (UTF-8 with BOM, so Excel shows Chinese) and .xlsx.

    The CSV's headers are the column codes (``share_covered_3min``); the workbook's read
    ``3分钟覆盖率 (share_covered_3min)`` and its second sheet, ``columns``, explains every
    column (:func:`columns_sheet`, from :mod:`firegrid.spatial.columns`; ``values`` are the
    run's parameters its descriptions quote, :func:`firegrid.maps.options.parameter_values`).
    Text that would start a formula (``= + - @``, tab, carriage return, and the full-width
    ``＝ ＋ － ＠``) stays text: in the workbook a text cell with Excel's quote prefix (the value
    unchanged), in the CSV the value prefixed with ``'``.
    """
    table = _rounded(table)
    written = [Path(csv_path)]
    # CRLF line ends (RFC 4180): a field holding a lone CR is then quoted, not split.
    csv_safe(table).to_csv(csv_path, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    if xlsx_path is not None:
        glossary = columns_sheet(table, values=values or parameter_values())
        headed = table.set_axis([excel_header(c) for c in table.columns], axis=1)
        with pd.ExcelWriter(xlsx_path, engine="openpyxl") as xl:
            headed.to_excel(xl, sheet_name="grid_summary", index=False)
            glossary.to_excel(xl, sheet_name="columns", index=False)
            for sheet in xl.sheets.values():
                _cells_as_text(sheet)
        written.append(Path(xlsx_path))
    return written


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


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _section_titles(figures: Mapping[str, Any]) -> dict[str, str]:
    """Headings of the summary's sections, quoting the run's targets (from its figures, else
    the defaults) and the grade names."""
    values = parameter_values()
    access = figures.get("access") or {}
    micro = float(access.get("target_micro_s", values["target_micro_s"]))
    fire = float(access.get("target_fire_s", values["target_fire_s"]))
    grades = " · ".join(f"{g} {name}" for g, name in columns.GRADE_LABELS["zh"].items())
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


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The summary as a short Markdown report: headline figures per step, then notes."""
    summary = _jsonable(summary)
    lines = [f"# FireGrid summary — {summary.get('district', '')}", ""]
    if summary.get("as_of"):
        lines.append(f"Data as of **{summary['as_of']}**; run {summary.get('run_at', '')}.")
        lines.append("")
    for section, title in _section_titles(summary.get("figures", {})).items():
        figures = summary.get("figures", {}).get(section)
        if not figures:
            continue
        lines.append(f"## {title}")
        lines.append("")
        lines.append("| figure | value |")
        lines.append("|---|---|")
        for key, value in figures.items():
            if isinstance(value, Mapping):
                value = ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
            elif isinstance(value, list | tuple):
                value = ", ".join(str(v) for v in value)
            lines.append(f"| {key} | {_fmt(value)} |")
        lines.append("")
    if summary.get("headline"):
        lines.append("## Headline")
        lines.append("")
        lines.extend(f"- {h}" for h in summary["headline"])
        lines.append("")
    if summary.get("notes"):
        lines.append("## Notes")
        lines.append("")
        lines.extend(f"- {n}" for n in summary["notes"])
        lines.append("")
    if summary.get("outputs"):
        lines.append("## Files")
        lines.append("")
        lines.extend(f"- `{name}`" for name in summary["outputs"])
        lines.append("")
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
        The config's ``[output]``: ``excel`` (write the workbook) and ``personal`` (what
        ``results.gpkg`` does with personal columns, :func:`write_results_gpkg`).
    allow : iterable of str
        The config's ``[map] allow_fields``.
    force : bool
        Proceed even though the folder holds files FireGrid did not write (they are kept).
    **parts
        The fields of :class:`RunOutputs` (``layers=``, ``grid_table=``, ``summary=`` …) and
        of :class:`OutputOptions` (``excel=``, ``personal=``) one by one, instead of
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
            write_grid_summary(outputs.grid_table, tmp / CSV_FILE, xlsx, values=outputs.values)
        (tmp / SUMMARY_JSON).write_text(summary_json(outputs.summary), encoding="utf-8")
        (tmp / SUMMARY_MD).write_text(summary_markdown(outputs.summary), encoding="utf-8")

    final = write_folder_atomically(folder, write, force=force)
    return {name: final / name for name in names}


def _outputs_and_options(
    outputs: RunOutputs | None, options: OutputOptions | None, parts: Mapping[str, Any]
) -> tuple[RunOutputs, OutputOptions]:
    """``outputs`` and ``options``, or both built from their fields given one by one."""
    option_keys = {"excel", "personal"}
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
    "OUTPUT_FILES",
    "OutputOptions",
    "RunOutputs",
    "columns_sheet",
    "csv_safe",
    "excel_header",
    "grid_summary_table",
    "summary_json",
    "summary_markdown",
    "without_personal",
    "write_grid_summary",
    "write_outputs",
    "write_readme_glossary",
    "write_results_gpkg",
]


if __name__ == "__main__":  # python -m firegrid.reports --glossary README.md
    import sys

    if sys.argv[1:2] != ["--glossary"] or len(sys.argv) != 3:
        sys.exit("usage: python -m firegrid.reports --glossary README.md")
    print("updated" if write_readme_glossary(sys.argv[2]) else "up to date")
