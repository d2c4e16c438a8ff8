"""Run outputs: results GeoPackage, per-grid summary (CSV + Excel), headline summary; atomic.

All outputs of a run go into one folder, written as a whole: they are first written into a
temporary folder beside it (same parent, so the same file system) and then swapped in with
``os.replace``. A run that fails or is interrupted midway leaves the previous outputs intact.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Self

import geopandas as gpd
import numpy as np
import pandas as pd

from maps.styles import field_label
from spatial.errors import ConfigError
from spatial.params import params_from_mapping

MAP_FILE = "map.html"
GPKG_FILE = "results.gpkg"
CSV_FILE = "grid_summary.csv"
XLSX_FILE = "grid_summary.xlsx"
SUMMARY_MD = "summary.md"
SUMMARY_JSON = "summary.json"
# Marks a folder as FireGrid's own, so a rerun may replace it; a folder without it that holds
# other files is never replaced (it could be the user's home or project folder).
MARKER = ".firegrid-output"

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
    """

    folder: str | None = None
    map: bool = True
    excel: bool = True

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


def write_results_gpkg(layers: Mapping[str, gpd.GeoDataFrame], path: str | os.PathLike) -> Path:
    """Write every layer (with its computed columns) into one GeoPackage, one layer each.

    Layers keep their CRS (the district's metric working CRS); empty layers are skipped.
    Tables without geometry (``pandas.DataFrame``) are written as attribute-only layers.
    """
    import pyogrio

    path = Path(path)
    for name, frame in layers.items():
        if frame is None or len(frame) == 0:
            continue
        if isinstance(frame, gpd.GeoDataFrame):
            _gpkg_ready(frame).to_file(path, layer=name, driver="GPKG")
        else:
            pyogrio.write_dataframe(pd.DataFrame(frame), path, layer=name, driver="GPKG")
    return path


# --------------------------------------------------------------------------------------------
# Per-grid summary


def grid_summary_table(
    grids: pd.DataFrame | None, *, extra: Sequence[pd.DataFrame | None] = ()
) -> pd.DataFrame | None:
    """The per-grid table: one row per grid cell, every roll-up figure, no geometry.

    Parameters
    ----------
    grids : DataFrame or GeoDataFrame, optional
        Grids with the risk roll-up (:func:`risk.rollup.rollup`) or plain grids.
    extra : sequence of DataFrame
        Other per-grid tables keyed by ``grid_id`` (:func:`spatial.access.coverage_by_grid`,
        :func:`spatial.water.water_by_grid`); their columns not already present are joined.

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
    base = base[lead + [c for c in base.columns if c not in lead]]
    sort = [c for c in ("level", "grid_id") if c in base]
    return base.sort_values(sort, kind="stable").reset_index(drop=True)


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(3)
    return out


def write_grid_summary(
    table: pd.DataFrame, csv_path: str | os.PathLike, xlsx_path: str | os.PathLike | None
) -> list[Path]:
    """Write the per-grid table as CSV (UTF-8 with BOM, so Excel shows Chinese) and .xlsx.

    The workbook has a second sheet, ``columns``, explaining each column in Chinese and English.
    """
    table = _rounded(table)
    written = [Path(csv_path)]
    table.to_csv(csv_path, index=False, encoding="utf-8-sig")
    if xlsx_path is not None:
        glossary = pd.DataFrame(
            {
                "column": table.columns,
                "说明": [field_label(c, "zh") for c in table.columns],
                "meaning": [field_label(c, "en") for c in table.columns],
            }
        )
        with pd.ExcelWriter(xlsx_path, engine="openpyxl") as xl:
            table.to_excel(xl, sheet_name="grid_summary", index=False)
            glossary.to_excel(xl, sheet_name="columns", index=False)
        written.append(Path(xlsx_path))
    return written


# --------------------------------------------------------------------------------------------
# Headline summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date | datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def summary_json(summary: Mapping[str, Any]) -> str:
    """The summary as JSON (NaN → null, dates ISO)."""
    return json.dumps(_jsonable(summary), ensure_ascii=False, indent=2)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """The summary as a short Markdown report: headline figures per step, then notes."""
    lines = [f"# FireGrid summary — {summary.get('district', '')}", ""]
    if summary.get("as_of"):
        lines.append(f"Data as of **{summary['as_of']}**; run {summary.get('run_at', '')}.")
        lines.append("")
    for section, title in (
        ("district", None),
        (
            "access",
            "Response times (targets: micro-station 3 min = 180 s, fire station 5 min = 300 s, turnout included)",
        ),
        ("water", "Fire water (hydrant protection radius along streets, metres)"),
        ("risk", "Risk (index 0–100; grades 1 重大 · 2 较大 · 3 一般 · 4 低)"),
        ("siting", "Siting of new micro-stations"),
    ):
        figures = summary.get("figures", {}).get(section)
        if not figures:
            continue
        lines.append(f"## {title or 'District'}")
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
# Atomic output folder


def check_output_folder(folder: str | os.PathLike) -> Path:
    """The output folder, resolved; refuses one FireGrid did not make that holds other files."""
    folder = Path(folder).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: the output path exists and is not a folder")
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise ConfigError(
            f"{folder}: the output folder holds files FireGrid did not write; "
            "choose a new or empty folder with --out (outputs replace the whole folder)"
        )
    if folder.parent == folder:
        raise ConfigError(f"{folder}: cannot use the file-system root as the output folder")
    return folder


def ensure_output_folder(folder: str | os.PathLike) -> Path:
    """The output folder (checked as by :func:`check_output_folder`), created with FireGrid's
    marker when it does not exist, for commands that write a single file into it."""
    folder = check_output_folder(folder)
    if not folder.exists():
        folder.mkdir(parents=True)
        _write_marker(folder)
    return folder


def _write_marker(folder: Path) -> None:
    stamp = {"written_by": "firegrid", "at": datetime.now().isoformat(timespec="seconds")}
    (folder / MARKER).write_text(json.dumps(stamp), encoding="utf-8")


def write_folder_atomically(folder: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` to fill a temporary folder, then swap it in as ``folder``.

    The temporary folder lives in ``folder``'s parent (same file system), so the final step is
    a rename: the previous folder is renamed aside, the new one renamed into place, and the old
    one deleted. If ``write`` raises (or the run is interrupted) the temporary folder is removed
    and ``folder`` is untouched.

    Raises
    ------
    ConfigError
        When the folder cannot be written (permissions, disk full …), naming it.
    """
    folder = check_output_folder(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    except OSError as exc:
        raise ConfigError(
            f"{folder}: cannot write the outputs here ({exc.strerror or exc})"
        ) from exc
    try:
        # mkdtemp makes the folder private (0700); outputs get the usual permissions.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)
        write(tmp)
        _write_marker(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            try:
                os.replace(folder, old / folder.name)
            except BaseException:
                old.rmdir()
                raise
            try:
                os.replace(tmp, folder)
            except BaseException:
                os.replace(old / folder.name, folder)  # put the previous outputs back
                old.rmdir()
                raise
            # Only now, with the new outputs in place, is the previous folder deleted.
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"{folder}: cannot write the outputs ({exc.strerror or exc})") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def write_outputs(
    folder: str | os.PathLike,
    *,
    layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame],
    grid_table: pd.DataFrame | None,
    summary: dict[str, Any],
    map_html: str | None = None,
    excel: bool = True,
) -> dict[str, Path]:
    """Write every output of a run into ``folder`` atomically.

    Files: ``map.html`` (when ``map_html`` is given), ``results.gpkg``, ``grid_summary.csv``
    and ``grid_summary.xlsx`` (when there is a grid table), ``summary.md`` and
    ``summary.json``. ``summary["outputs"]`` is filled in with the file names.

    Returns
    -------
    File name → final path.
    """
    names = []
    if map_html is not None:
        names.append(MAP_FILE)
    if any(f is not None and len(f) for f in layers.values()):
        names.append(GPKG_FILE)
    if grid_table is not None and len(grid_table):
        names.append(CSV_FILE)
        if excel:
            names.append(XLSX_FILE)
    names += [SUMMARY_MD, SUMMARY_JSON]
    summary["outputs"] = names

    def write(tmp: Path) -> None:
        if map_html is not None:
            (tmp / MAP_FILE).write_text(map_html, encoding="utf-8")
        if GPKG_FILE in names:
            write_results_gpkg(layers, tmp / GPKG_FILE)
        if CSV_FILE in names:
            write_grid_summary(grid_table, tmp / CSV_FILE, tmp / XLSX_FILE if excel else None)
        (tmp / SUMMARY_JSON).write_text(summary_json(summary), encoding="utf-8")
        (tmp / SUMMARY_MD).write_text(summary_markdown(summary), encoding="utf-8")

    final = write_folder_atomically(folder, write)
    return {name: final / name for name in names}


__all__ = [
    "OutputOptions",
    "check_output_folder",
    "ensure_output_folder",
    "grid_summary_table",
    "summary_json",
    "summary_markdown",
    "write_folder_atomically",
    "write_grid_summary",
    "write_outputs",
    "write_results_gpkg",
]
