"""The outputs of a region run, written into one folder atomically.

``results.gpkg`` (every region layer, the subdistricts' ranking and the partitions' sizes),
``parquet/<layer>/subdistrict=<name>/part-0.parquet`` (GeoParquet per layer, hive-partitioned
by subdistrict by :func:`firegrid.store.write_geoparquet`, readable whole with
``geopandas.read_parquet(DIR / "parquet" / layer)``),
``grid_summary.csv``/``.xlsx`` over every grid level, ``summary.md``/``.json`` with one ranked
row per subdistrict and the region's totals, and ``map.html``: an overview drawn per grid cell
(never per building), so it opens fast for a whole city. With ``[output] database`` every
layer is also written to a new PostGIS schema, in one transaction, after the files.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from firegrid.maps.html import escape_html
from firegrid.outputs import (
    file_digest,
    foreign_entries,
    prepare_output_folder,
    write_folder_atomically,
)
from firegrid.region.merge import SUBDISTRICT, RegionResult
from firegrid.reports import (
    CSV_FILE,
    GPKG_FILE,
    MAP_FILE,
    OUTPUT_FILES,
    SUMMARY_JSON,
    SUMMARY_MD,
    XLSX_FILE,
    grid_summary_table,
    summary_json,
    summary_markdown,
    write_grid_summary,
    write_results_gpkg,
)
from firegrid.spatial.io.database import shown_url
from firegrid.store import run_schema_name, write_geoparquet, write_postgis
from firegrid.wording import percent

PARQUET_DIR = "parquet"
# The GeoParquet files a run wrote (relative path -> size and SHA-256): the folder's manifest
# lists top-level files only, so this list (itself in the manifest) tells a later run that the
# parquet folder is FireGrid's, to be replaced, not a foreign folder to be kept.
PARQUET_LIST = "parquet_files.json"
# Layers drawn on the overview map: grid cells (coloured by their roll-ups) and the stations.
MAP_LAYERS = ("grids", "stations")


def write_region_outputs(
    result: RegionResult, folder: str | os.PathLike, *, force: bool = False
) -> dict[str, Path]:
    """Write a region run's outputs into ``folder`` atomically (:mod:`firegrid.outputs`).

    Personal columns are left out of every output unless ``[map] allow_fields`` names them
    (``[output] personal = "keep"`` keeps them in ``results.gpkg`` and the GeoParquet files,
    as for a district run).

    Returns
    -------
    Output name → path (``parquet`` is the folder of the GeoParquet layers).
    """
    options, allow = result.region.output, result.region.map.allow_fields
    summary = region_summary(result)
    grid_table = _grid_table(result, allow)
    layers = dict(result.layers)
    layers["subdistricts"] = result.subdistricts
    if result.partitions is not None and len(result.partitions):
        layers["partitions"] = result.partitions
    html = region_map_html(result) if options.map else None
    names = [MAP_FILE] * (html is not None) + [GPKG_FILE, PARQUET_DIR, PARQUET_LIST]
    if grid_table is not None and len(grid_table):
        names += [CSV_FILE] + [XLSX_FILE] * options.excel
    names += [SUMMARY_MD, SUMMARY_JSON]
    summary["outputs"] = names

    def write(tmp: Path) -> None:
        if html is not None:
            (tmp / MAP_FILE).write_text(html, encoding="utf-8")
        write_results_gpkg(layers, tmp / GPKG_FILE, personal=options.personal, allow=allow)
        write_geoparquet(result.layers, tmp / PARQUET_DIR, partition_by=SUBDISTRICT,
                         personal=options.personal, allow=allow)  # fmt: skip
        files = sorted(p for p in (tmp / PARQUET_DIR).rglob("*") if p.is_file())
        listing = {p.relative_to(tmp).as_posix(): file_digest(p) for p in files}
        (tmp / PARQUET_LIST).write_text(json.dumps(listing, indent=1), encoding="utf-8")
        if CSV_FILE in names:
            xlsx = tmp / XLSX_FILE if options.excel else None
            write_grid_summary(grid_table, tmp / CSV_FILE, xlsx, encoding=options.csv_encoding)
        (tmp / SUMMARY_JSON).write_text(summary_json(summary), encoding="utf-8")
        (tmp / SUMMARY_MD).write_text(region_markdown(summary, language=options.language),
                                      encoding="utf-8")  # fmt: skip

    # The previous run's parquet folder (verified as written) is moved aside first: the swap
    # refuses folders its manifest does not list. It is put back if the writing fails.
    target = Path(folder).expanduser().resolve()
    aside = _set_aside_parquet(target)
    try:
        final = write_folder_atomically(target, write, force=force)
    except BaseException:
        if aside is not None and not (target / PARQUET_DIR).exists():
            aside.rename(target / PARQUET_DIR)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    if options.database:
        _write_database(result, layers, options, allow=allow)
    return {name: final / name for name in names}


def _write_database(result: RegionResult, layers, options, *, allow) -> str:
    """Every region layer into a new PostGIS schema (``[output] database``), after the files,
    in one transaction (:func:`firegrid.store.write_postgis`); the schema joins the notes."""
    schema = options.database_schema or run_schema_name(result.region.name)
    write_postgis(layers, options.database, schema=schema, personal=options.personal, allow=allow)
    result.notes.append(
        f"database: {len(layers)} result layers in schema {schema} of {shown_url(options.database)}"
    )
    return schema


def prepare_region_folder(folder: str | os.PathLike, *, force: bool = False) -> Path:
    """:func:`firegrid.outputs.prepare_output_folder` for a region's folder: a previous
    region run's parquet folder, exactly as that run listed it, counts as FireGrid's."""
    target = Path(folder).expanduser().resolve()
    foreign = foreign_entries(target)
    if foreign == [PARQUET_DIR] and _listed_parquet(target):
        return prepare_output_folder(target, force=True, reserved=OUTPUT_FILES)
    return prepare_output_folder(target, force=force, reserved=OUTPUT_FILES)


def _listed_parquet(folder: Path) -> bool:
    """Whether ``folder/parquet`` holds exactly the files its run listed, unchanged."""
    old = folder / PARQUET_DIR
    if not old.is_dir() or PARQUET_LIST in foreign_entries(folder):
        return False
    try:
        listing = json.loads((folder / PARQUET_LIST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    present = {p.relative_to(folder).as_posix(): p for p in old.rglob("*") if not p.is_dir()}
    return set(present) == set(listing) and all(
        not p.is_symlink() and file_digest(p) == listing[k] for k, p in present.items()
    )


def _set_aside_parquet(folder: Path) -> Path | None:
    """Move a listed parquet folder beside ``folder`` (hidden); None when there is none."""
    if not _listed_parquet(folder):
        return None
    aside = folder.parent / f".{folder.name}.firegrid-parquet-{os.getpid()}-{secrets.token_hex(4)}"
    (folder / PARQUET_DIR).rename(aside)
    return aside


def _grid_table(result: RegionResult, allow) -> pd.DataFrame | None:
    grids = result.layers.get("grids")
    if grids is None:
        return None
    return grid_summary_table(
        grids,
        extra=[result.tables.get("access_by_grid"), result.tables.get("water_by_grid")],
        user_columns=result.grid_columns,
        allow=allow,
    )


# --------------------------------------------------------------------------------------------
# Summary


def region_summary(result: RegionResult) -> dict[str, Any]:
    """Headline figures, the ranked subdistricts, totals, failures and notes, JSON-ready."""
    region, run = result.region, result.run
    figures = dict(run.figures) if run is not None else {}
    figures["region"] = result.totals
    return {
        "district": region.name,
        "config": str(region.path),
        "as_of": region.as_of.isoformat() if region.as_of else None,
        "crs": run.district.crs.to_string() if run is not None and run.district else None,
        "run_at": datetime.now().isoformat(timespec="seconds"),
        "partition_level": region.partition_level,
        "partition_level_name": region.level_name(region.partition_level),
        "halo": asdict(result.halo) if result.halo is not None else None,
        "figures": figures,
        "subdistricts": result.subdistricts.to_dict(orient="records"),
        "failures": list(result.failures),
        "partitions": result.partitions.to_dict(orient="records")
        if result.partitions is not None
        else [],
        "headline": result.headline,
        "notes": list(result.notes),
        "timings_s": {"region": round(result.seconds, 2)},
    }


_RANKING_HEAD = {
    "en": ("rank", "subdistrict", "buildings", "3-min coverage", "5-min coverage",
           "water-deficient", "mean risk index", "hazards unrectified (overdue)"),
    "zh": ("排名", "街道", "建筑数", "3分钟覆盖率", "5分钟覆盖率", "消防缺水比例", "平均风险指数",
           "未整改隐患（逾期）"),
}  # fmt: skip
_TITLES = {
    "en": ("Subdistricts, ranked by mean risk index (worst first)", "Region totals", "Failed"),
    "zh": ("各街道排名（按平均风险指数，高者在前）", "全区合计", "未完成的街道"),
}


def region_markdown(summary: dict[str, Any], *, language: str = "en") -> str:
    """The district summary's Markdown with the ranking table and the region's totals.

    Subdistrict names are user text: they are HTML-escaped and their ``|`` written ``\\|``,
    so a name cannot break the table or inject markup where the Markdown is rendered.
    """
    head = _RANKING_HEAD.get(language, _RANKING_HEAD["en"])
    ranked, totals_title, failed_title = _TITLES.get(language, _TITLES["en"])
    title = {**summary, "district": _md_text(summary.get("district", ""))}
    lines = [summary_markdown(title, language=language), "", f"## {ranked}", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary["subdistricts"]:
        lines.append("| " + " | ".join(_ranking_cells(row)) + " |")
    t = summary["figures"]["region"]
    total = {**t, "rank": "", SUBDISTRICT: summary["district"]}
    lines += ["", f"## {totals_title}", "", "| " + " | ".join(head[1:]) + " |",
              "|" + "---|" * (len(head) - 1), "| " + " | ".join(_ranking_cells(total)[1:]) + " |"]  # fmt: skip
    if summary["failures"]:
        lines += ["", f"## {failed_title}", ""]
        lines += [f"- {_md_text(line)}" for line in summary["failures"]]
    return "\n".join(lines) + "\n"


def _ranking_cells(row: dict[str, Any]) -> list[str]:
    def num(v, fmt="{:,.0f}"):
        return "–" if v is None or pd.isna(v) else fmt.format(v)

    return [
        str(row.get("rank", "")),
        _md_text(row.get(SUBDISTRICT, "")),
        num(row.get("buildings")),
        percent(row.get("share_covered_3min")),
        percent(row.get("share_covered_5min")),
        percent(row.get("share_water_deficient")),
        num(row.get("risk_index_mean"), "{:.1f}"),
        f"{num(row.get('hazards_open'))} ({num(row.get('hazards_overdue'))})",
    ]


def _md_text(value: Any) -> str:
    return escape_html(value).replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------------------------
# Overview map


def region_map_html(result: RegionResult) -> str:
    """The overview map: every grid cell coloured by its mean risk index, and the stations.

    Drawn with the district map's own layers (:func:`firegrid.maps.district_map.risk_map`), so
    every name, tooltip and popup is escaped the same way (:mod:`firegrid.maps.html`); the
    buildings are left out, which keeps the page small for a whole city.
    """
    from firegrid.maps.district_map import risk_map
    from firegrid.maps.export import to_html

    layers = {k: result.layers[k] for k in MAP_LAYERS if k in result.layers}
    options = result.region.map
    m = risk_map(layers, options=options, title=options.title or result.region.name,
                 as_of=result.region.as_of)  # fmt: skip
    return to_html(m)
