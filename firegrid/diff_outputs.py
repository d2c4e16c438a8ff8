"""Writing a comparison of two runs: change tables (CSV, Excel), change map and summary.

Written as one folder, swapped in atomically by :mod:`firegrid.outputs` (FireGrid never
overwrites a file it did not write). Headers and explanations come from the column registry
(:func:`firegrid.spatial.columns.change_column`, layers ``changes_*``); user text (ids,
names) reaches the spreadsheets as text, never a formula, and the map only escaped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from firegrid.maps.change_map import change_map
from firegrid.maps.export import to_html
from firegrid.maps.options import parameter_values
from firegrid.outputs import write_folder_atomically
from firegrid.reports import (
    FORMULA_STARTS,
    GPKG_FILE,
    NUMBER_FORMATS,
    SUMMARY_JSON,
    csv_safe,
    display_width,
    summary_json,
)
from firegrid.spatial import columns
from firegrid.spatial.errors import ConfigError

BUILDINGS_CSV = "changes_buildings.csv"
GRIDS_CSV = "changes_grids.csv"
HAZARDS_CSV = "changes_hazards.csv"
STATIONS_CSV = "changes_stations.csv"
WORKBOOK = "changes.xlsx"
CHANGE_MAP = "change_map.html"
DIFF_MD = "diff_summary.md"
DIFF_JSON = "diff_summary.json"
CSV_FILES = (BUILDINGS_CSV, GRIDS_CSV, HAZARDS_CSV, STATIONS_CSV)
DIFF_FILES = (*CSV_FILES, WORKBOOK, CHANGE_MAP, DIFF_MD, DIFF_JSON)
# Files that make a folder a run's output folder (firegrid.reports).
RUN_FILES = (GPKG_FILE, SUMMARY_JSON)
# The workbook's sheets: (sheet, RunDiff attribute, registry layer of its columns).
SHEETS = (
    ("buildings", "buildings", "changes_buildings"),
    ("grids", "grids", "changes_grids"),
    ("hazards", "hazards", "changes_hazards"),
    ("stations", "stations", "changes_stations"),
)
# Registry layers that also name a change table's key columns (grid_id_l3, level …).
_KEY_LAYERS = {
    "changes_buildings": "buildings",
    "changes_grids": "grids",
    "changes_hazards": "hazards",
    "changes_stations": "stations",
}
MIN_WIDTH, MAX_WIDTH = 6, 40


def write_diff(
    diff, folder: str | os.PathLike, *, force: bool = False, csv_encoding: str = "utf-8-sig"
) -> dict[str, Path]:
    """Write a comparison (:class:`firegrid.diff.RunDiff`) into ``folder`` atomically.

    Files: ``changes_buildings.csv``, ``changes_grids.csv``, ``changes_hazards.csv``,
    ``changes_stations.csv`` (column codes as headers), ``changes.xlsx`` (one sheet per table
    with Chinese headers and the code,
    numbers formatted by unit, and a ``columns`` sheet explaining every column),
    ``change_map.html`` (self-contained, offline) and ``diff_summary.md``/``.json``.

    Parameters
    ----------
    diff : RunDiff
        What :func:`firegrid.diff.compare` returned.
    folder : path
        Output folder; FireGrid's earlier outputs there are replaced, other files refused
        (kept beside the new ones with ``force``).
    csv_encoding : {"utf-8-sig", "gb18030"}
        As the config's ``[output] csv_encoding``.

    Returns
    -------
    File name → final path.

    Raises
    ------
    ConfigError
        ``folder`` holds a run's outputs (``results.gpkg``, ``summary.json``), or files
        FireGrid did not write (without ``force``), or cannot be written.
    """
    check_diff_folder(folder)
    tables = {name: _plain(getattr(diff, attr)) for name, attr, _layer in SHEETS}
    values = parameter_values()

    def write(tmp: Path) -> None:
        for (name, _attr, _layer), csv in zip(SHEETS, CSV_FILES, strict=True):
            csv_safe(tables[name]).to_csv(
                tmp / csv, index=False, encoding=csv_encoding, lineterminator="\r\n"
            )
        write_change_workbook(tables, tmp / WORKBOOK, values=values)
        html = to_html(
            change_map(
                diff.buildings,
                diff.grids,
                stations=diff.stations,
                language=diff.language,
                title=_title(diff),
            )
        )
        (tmp / CHANGE_MAP).write_text(html, encoding="utf-8")
        summary = diff_summary(diff)
        (tmp / DIFF_JSON).write_text(summary_json(summary), encoding="utf-8")
        (tmp / DIFF_MD).write_text(diff_markdown(summary), encoding="utf-8")

    final = write_folder_atomically(folder, write, force=force)
    return {name: final / name for name in DIFF_FILES}


def check_diff_folder(folder: str | os.PathLike) -> None:
    """Refuse to write into a run's output folder: the swap would replace the run's results
    (a compared run's above all) with the comparison."""
    folder = Path(folder).expanduser()
    held = [name for name in RUN_FILES if (folder / name).exists()]
    if held:
        raise ConfigError(
            f"{folder}: holds the outputs of a run ({held[0]}); write the comparison into a "
            "folder of its own (--out)"
        )


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """A change table without geometry, floats rounded as the run's tables are (3 decimals)."""
    out = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
    floats = out.select_dtypes("float").columns
    out[floats] = out[floats].round(3)
    return out


def _title(diff) -> str:
    district = diff.runs["after"].get("district") or ""
    dates = f"{diff.runs['before'].get('as_of') or '–'} → {diff.runs['after'].get('as_of') or '–'}"
    head = "两次分析的变化" if diff.language == "zh" else "Changes between two runs"
    return f"{head} — {district} ({dates})"


# --------------------------------------------------------------------------------------------
# The workbook


def header(column: str, layer: str) -> str:
    """A workbook header: the Chinese label with the column code, ``3分钟到场变化
    (change_3min)``; the code alone when the registry has no label for it."""
    col = columns.change_column(column, layer)
    zh = col.label("zh", column) if col else columns.label(column, "zh", layer=_KEY_LAYERS[layer])
    return f"{zh} ({column})" if zh != column else column


def _glossary(tables: Mapping[str, pd.DataFrame], values: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    for name, _attr, layer in SHEETS:
        for column in tables[name].columns:
            col = columns.change_column(column, layer) or columns.column(column, _KEY_LAYERS[layer])
            rows.append(
                {
                    "sheet": name,
                    "column": column,
                    "中文": header(column, layer).rsplit(" (", 1)[0],
                    "English": col.label("en", column) if col else columns.label(column, "en"),
                    "unit": col.unit if col else "",
                    "meaning": columns.fill(col.description, values)
                    if col
                    else _KEY_MEANINGS.get(column, ""),
                }
            )
    return pd.DataFrame(rows)


# Meanings of the key columns that are input columns (not in the registry of outputs).
_KEY_MEANINGS = {
    "building_id": "The building's id in the runs' buildings layers.",
    "grid_id": "The grid cell's id.",
    "name": "The grid cell's name (the later run's).",
    "level": "Grid level: 1 subdistrict, 2 community, 3 resident-group cell.",
    "parent_id": "The cell's parent cell.",
    "hazard_id": "The hazard's id in the ledgers.",
    "station_id": "The station's id in the runs' stations layers.",
    "kind": "fire_station or micro_station.",
}


def write_change_workbook(
    tables: Mapping[str, pd.DataFrame],
    path: str | os.PathLike,
    *,
    values: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``changes.xlsx``: the ``buildings``, ``grids`` and ``hazards`` sheets (Chinese
    headers with the code, numbers by registry unit, header frozen, filters) and ``columns``."""
    glossary = _glossary(tables, values or parameter_values())
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        for name, _attr, layer in SHEETS:
            table = tables[name]
            table.set_axis([header(c, layer) for c in table.columns], axis=1).to_excel(
                xl, sheet_name=name, index=False
            )
            sheet = xl.sheets[name]
            _finish(sheet, [_unit_format(c, layer) for c in table.columns])
        glossary.to_excel(xl, sheet_name="columns", index=False)
        _finish(xl.sheets["columns"], [None] * glossary.shape[1])
    return Path(path)


def _unit_format(column: str, layer: str) -> str | None:
    col = columns.change_column(column, layer) or columns.column(column, _KEY_LAYERS[layer])
    fmt = NUMBER_FORMATS.get(col.unit) if col is not None else None
    if col is not None and column.startswith(("d_", "change_")):
        # a change reads with its sign: +12.3% / −4
        return f"+{fmt[0]};-{fmt[0]};0" if fmt else "+0;-0;0"
    return fmt[0] if fmt else None


def _finish(sheet, formats) -> None:
    """Number formats, text cells kept text, widths, frozen header and a filter."""
    from openpyxl.utils import get_column_letter

    for index, fmt in enumerate(formats, start=1):
        widest = MIN_WIDTH
        for (cell,) in sheet.iter_rows(min_col=index, max_col=index):
            value = cell.value
            if isinstance(value, str):
                if value.startswith(FORMULA_STARTS):
                    cell.data_type = "s"
                    cell.quotePrefix = True
                widest = max(widest, max(display_width(p) for p in value.rsplit(" (", 1)))
            elif (
                fmt
                and isinstance(value, int | float)
                and not isinstance(value, bool)
                and cell.row > 1
            ):
                cell.number_format = fmt
                widest = max(widest, len(f"{value:,.1f}"))
        sheet.column_dimensions[get_column_letter(index)].width = min(widest + 2, MAX_WIDTH)
    sheet.freeze_panes = "B2"
    sheet.auto_filter.ref = sheet.dimensions


# --------------------------------------------------------------------------------------------
# The summary


def diff_summary(diff) -> dict[str, Any]:
    """The comparison's summary: the two runs, the totals, the headline, notes and files."""
    return {
        "before": diff.runs["before"],
        "after": diff.runs["after"],
        "figures": diff.figures,
        "headline": diff.headline,
        "notes": diff.notes,
        "outputs": list(DIFF_FILES),
        "language": diff.language,
    }


_MD_WORDS = {
    "en": ("Changes between two runs", "run", "earlier", "later", "district", "data as of",
           "run at", "Changes", "Notes", "Files"),
    "zh": ("两次分析的变化", "运行", "前次", "本次", "街道", "数据截至", "运行时间", "主要变化",
           "说明", "输出文件"),
}  # fmt: skip


def diff_markdown(summary: Mapping[str, Any]) -> str:
    """``diff_summary.md``: the two runs side by side, then the changes, notes and files."""
    title, run, earlier, later, district, as_of, run_at, changes, notes, files = _MD_WORDS[
        summary.get("language", "en")
    ]
    before, after = summary["before"], summary["after"]
    lines = [f"# FireGrid — {title}", "", f"| {run} | {earlier} | {later} |", "|---|---|---|"]
    for label, key in (
        (district, "district"),
        (as_of, "as_of"),
        (run_at, "run_at"),
        ("", "source"),
    ):
        lines.append(f"| {label or key} | {_cell(before.get(key))} | {_cell(after.get(key))} |")
    lines += ["", f"## {changes}", "", *(f"- {line}" for line in summary["headline"]), ""]
    if summary.get("notes"):
        lines += [f"## {notes}", "", *(f"- {n}" for n in summary["notes"]), ""]
    lines += [f"## {files}", "", *(f"- `{name}`" for name in summary["outputs"]), ""]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "–" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


__all__ = [
    "DIFF_FILES",
    "check_diff_folder",
    "diff_markdown",
    "diff_summary",
    "header",
    "write_change_workbook",
    "write_diff",
]
