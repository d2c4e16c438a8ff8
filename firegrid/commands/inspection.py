"""``firegrid inspection``: each grid cell's buildings, riskiest first, for grid workers.

Writes ``inspection.xlsx`` (a sheet ``全部`` with every cell's list and a filter, then one sheet
per cell set up to print on A4 with its header row repeated) and ``inspection.pdf`` (each
cell's list starting on a new A4 page). The ranking and reasons are
:func:`firegrid.risk.inspection.inspection_list`'s.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import pandas as pd

from firegrid.commands import command
from firegrid.commands.posters import RunResults, check_out, load_results, print_args

XLSX_FILE = "inspection.xlsx"
PDF_FILE = "inspection.pdf"
ALL_SHEET = "全部"
# Building columns a list shows when the privacy allow-list lets them through.
NAME_COLUMNS = ("name", "address")
# Rows of one PDF page (A4 portrait, 8-point text).
ROWS_PER_PAGE = 38
A4_INCHES = (210 / 25.4, 297 / 25.4)
# Relative widths of the PDF table's columns, by kind (reasons are the widest).
PDF_WIDTHS = {"reason": 1.6, "name": 1.8, "address": 2.2, "building_id": 1.1}


def _inspection_args(parser: argparse.ArgumentParser) -> None:
    print_args(parser)
    parser.add_argument(
        "--format",
        choices=("xlsx", "pdf", "both"),
        default="both",
        help="inspection.xlsx, inspection.pdf or both (default)",
    )


@command("inspection", setup=_inspection_args)
def cmd_inspection(args: argparse.Namespace) -> int:
    """Inspection lists for grid workers: per grid cell, buildings ranked by risk with the
    reason (top three factors, open and overdue hazards, grade), as Excel and/or PDF."""
    from firegrid.outputs import write_folder_atomically
    from firegrid.risk.inspection import inspection_list

    out = check_out(args)
    results = load_results(args.source, args=args)
    buildings = results.layers.get("buildings")
    if buildings is None:
        from firegrid.spatial.errors import ConfigError

        raise ConfigError(f"{results.where}: has no buildings layer")
    extra = shown_columns(buildings, results)
    table = inspection_list(buildings, level=args.level, extra=extra)
    names = cell_names(results.layers.get("grids"))

    def write(tmp: Path) -> None:
        if args.format in ("xlsx", "both"):
            write_inspection_workbook(table, tmp / XLSX_FILE, names=names, results=results)
        if args.format in ("pdf", "both"):
            write_inspection_pdf(table, tmp / PDF_FILE, names=names, results=results)

    write_folder_atomically(out, write, force=args.force)
    print(f"inspection lists of {table['grid_id'].nunique()} grid cells written to {out}")
    return 0


def shown_columns(buildings: pd.DataFrame, results: RunResults) -> list[str]:
    """The building name/address columns the privacy allow-list lets onto the lists
    (``[map] allow_fields`` of the config; the canonical ``name`` by default)."""
    from firegrid.maps.privacy import shared_columns

    allow = results.config.params["map"].allow_fields if results.config is not None else ()
    wanted = [c for c in NAME_COLUMNS if c in buildings]
    return shared_columns(buildings, allow=allow, wanted=wanted)


def cell_names(grids: pd.DataFrame | None) -> dict[str, str]:
    if grids is None:
        return {}
    return dict(zip(grids["grid_id"].astype(str), grids["name"].astype(str), strict=True))


def _title(results: RunResults, grid_id: str, names: dict[str, str]) -> str:
    as_of = f" · 数据截至 {results.as_of}" if results.as_of else ""
    return f"{results.district} · {names.get(grid_id, grid_id)}（{grid_id}）消防安全排查清单{as_of}"


def _header(column: str) -> str:
    """A workbook header: the label with the column code, as the grid summary's headers."""
    from firegrid.risk.inspection import list_label

    label = list_label(column)
    return f"{label} ({column})" if label != column else column


# --------------------------------------------------------------------------------------------
# Excel


def write_inspection_workbook(
    table: pd.DataFrame, path: Path, *, names: dict[str, str], results: RunResults
) -> Path:
    """``inspection.xlsx``: the sheet ``全部`` (every list, a filter, frozen header), then
    one sheet per cell with its title, printed on A4 landscape, one page wide, header row
    repeated. Text cells that would start a formula are written as text (csv_safe)."""
    from firegrid.reports import csv_safe

    safe = csv_safe(table)
    headed = safe.set_axis([_header(c) for c in table.columns], axis=1)
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        headed.to_excel(xl, sheet_name=ALL_SHEET, index=False)
        _format_sheet(xl.sheets[ALL_SHEET], table, header_row=1)
        xl.sheets[ALL_SHEET].auto_filter.ref = xl.sheets[ALL_SHEET].dimensions
        used = {ALL_SHEET}
        for grid_id, rows in headed.groupby(table["grid_id"].to_numpy(), sort=False):
            name = _sheet_name(str(grid_id), names, used)
            rows.to_excel(xl, sheet_name=name, index=False, startrow=1)
            sheet = xl.sheets[name]
            title = _title(results, str(grid_id), names)
            sheet["A1"] = csv_safe(pd.DataFrame({"t": [title]}))["t"].iloc[0]
            _format_sheet(sheet, table, header_row=2)
    return path


def _sheet_name(grid_id: str, names: dict[str, str], used: set[str]) -> str:
    """A sheet name for a cell: its name (Excel: ≤ 31 characters, none of ``[]:*?/\\``),
    made unique among ``used``."""
    base = re.sub(r"[\[\]:*?/\\]", "_", names.get(grid_id, grid_id)).strip("'") or "cell"
    name, n = base[:31], 2
    while name in used:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name)
    return name


def _format_sheet(sheet, table: pd.DataFrame, *, header_row: int) -> None:
    """Number formats by the registry's units, column widths, frozen header, print setup."""
    from openpyxl.utils import get_column_letter

    from firegrid.reports import NUMBER_FORMATS, display_width
    from firegrid.spatial import columns

    for index, name in enumerate(table.columns, start=1):
        col = columns.column(name, "buildings")
        fmt = NUMBER_FORMATS.get(col.unit) if col is not None else None
        letter = get_column_letter(index)
        for (cell,) in sheet.iter_rows(min_row=header_row + 1, min_col=index, max_col=index):
            if fmt and isinstance(cell.value, int | float) and not isinstance(cell.value, bool):
                cell.number_format = fmt[0]
        texts = [*_header(name).split(" ("), *table[name].dropna().astype(str).head(500)]
        width = max(display_width(t) for t in texts) + 2
        sheet.column_dimensions[letter].width = min(max(width, 6), 40)
    sheet.freeze_panes = f"D{header_row + 1}"
    sheet.print_title_rows = f"{header_row}:{header_row}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True


# --------------------------------------------------------------------------------------------
# PDF


def write_inspection_pdf(
    table: pd.DataFrame, path: Path, *, names: dict[str, str], results: RunResults
) -> Path:
    """``inspection.pdf``: each cell's list from a new A4 page (long lists run on), the
    title and header row on every page; Chinese embedded as searchable TrueType text."""
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    from firegrid.maps.fonts import rc_params, truetype_subset, use_font

    shown = _pdf_text(table)
    titles = {g: _title(results, str(g), names) for g in table["grid_id"].unique()}
    headers = [_header(c).split(" (")[0] for c in shown.columns]
    page_of = "（第0123456789/页）"
    every = "".join([*titles.values(), *headers, page_of, *shown.to_numpy().ravel().tolist()])
    with (
        matplotlib.rc_context(rc_params()),
        tempfile.TemporaryDirectory() as fonts,
        PdfPages(path, metadata={"Title": "消防安全排查清单", "Creator": "FireGrid"}) as pdf,
    ):
        font = truetype_subset(every, fonts)
        for grid_id, rows in shown.groupby(table["grid_id"].to_numpy(), sort=False):
            pages = range(0, len(rows), ROWS_PER_PAGE)
            for number, start in enumerate(pages, start=1):
                part = rows.iloc[start : start + ROWS_PER_PAGE]
                title = titles[grid_id] + (
                    f"（第{number}/{len(pages)}页）" if len(pages) > 1 else ""
                )
                fig = _table_page(part, headers, title)
                use_font(fig, font)
                pdf.savefig(fig)
    return path


def _pdf_text(table: pd.DataFrame) -> pd.DataFrame:
    """The list as the PDF prints it: numbers rounded, gaps blank, the cell column left out
    (each page names its cell)."""
    out = table.drop(columns=["grid_id", "risk_grade"]).copy()
    out["risk_index"] = table["risk_index"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    return out.astype(object).where(out.notna(), "").astype(str)


def _table_page(rows: pd.DataFrame, headers: list[str], title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=A4_INCHES)
    fig.text(0.5, 0.965, title, ha="center", va="center", fontsize=11, weight="bold", wrap=True)
    ax = fig.add_axes((0.03, 0.04, 0.94, 0.89))
    ax.set_axis_off()
    widths = [_pdf_width(c) for c in rows.columns]
    total = sum(widths)
    height = min(0.025, 0.97 / (len(rows) + 1))
    cells = ax.table(
        cellText=rows.to_numpy().tolist(),
        colLabels=headers,
        colWidths=[w / total for w in widths],
        loc="upper center",
        cellLoc="left",
    )
    cells.auto_set_font_size(False)
    cells.set_fontsize(7)
    for (row, _col), cell in cells.get_celld().items():
        cell.set_height(height)
        cell.set_linewidth(0.3)
        if row == 0:
            cell.set_facecolor("#eceff1")
    return fig


def _pdf_width(column: str) -> float:
    if column.startswith("reason_"):
        return PDF_WIDTHS["reason"]
    return PDF_WIDTHS.get(column, 0.8)
