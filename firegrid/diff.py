"""What changed between two runs of one district: coverage, fire water, risk and hazards.

Read two output folders of ``firegrid run`` (or take two runs in memory), compare them building
by building, cell by cell and hazard by hazard (:mod:`firegrid.diff_tables`), and write the
changes: ``changes_buildings.csv``, ``changes_grids.csv``, ``changes_hazards.csv``, the
workbook ``changes.xlsx``, the offline map ``change_map.html`` and ``diff_summary.md``/``.json``.

>>> diff = compare("before/", "after/")          # doctest: +SKIP
>>> diff.headline                                 # doctest: +SKIP
>>> write_diff(diff, "changes/")                  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from firegrid.diff_outputs import DIFF_FILES, write_diff
from firegrid.diff_tables import (
    BUILDING_FIGURES,
    building_changes,
    grid_changes,
    hazard_changes,
    station_changes,
)
from firegrid.maps.options import parameter_values
from firegrid.reports import (
    GPKG_FILE,
    SUMMARY_JSON,
    SUMMARY_MD,
    read_result_layers,
    read_summary,
)
from firegrid.spatial import columns
from firegrid.spatial.errors import InputError
from firegrid.wording import minutes, percent, share

# A station that moved less than this (metres) between two runs has not moved (coordinates
# written and read back differ by far less).
MOVED_M = 1.0
# The line summary.md starts with when the run wrote it in Chinese (firegrid.reports).
_ZH_TITLE = "# FireGrid 消防安全分析摘要"


@dataclass(frozen=True)
class RunResults:
    """What a comparison needs of one run.

    Attributes
    ----------
    buildings, grids : GeoDataFrame
        The run's ``buildings`` and ``grids`` layers (its working CRS, metres), ids as text.
    hazards : GeoDataFrame or None
        The hazard ledger with each hazard's ``status`` on the run's date, if the run had one.
    summary : dict
        The run's ``summary.json`` (``district``, ``as_of``, ``crs``, ``figures`` …).
    source : str
        Where it came from (the output folder), for messages.
    language : {"en", "zh"}
        The language of the run's ``summary.md``.
    stations : GeoDataFrame or None
        The run's fire and micro-stations.
    """

    buildings: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    hazards: gpd.GeoDataFrame | None
    summary: dict[str, Any]
    source: str
    language: str = "en"
    stations: gpd.GeoDataFrame | None = None


@dataclass(frozen=True)
class RunDiff:
    """The changes between an earlier and a later run.

    Attributes
    ----------
    buildings : GeoDataFrame
        Per building (:func:`firegrid.diff_tables.building_changes`).
    grids : GeoDataFrame
        Per grid cell of every level (:func:`firegrid.diff_tables.grid_changes`).
    hazards : DataFrame
        Per hazard (:func:`firegrid.diff_tables.hazard_changes`).
    stations : GeoDataFrame
        Per station (:func:`firegrid.diff_tables.station_changes`): added, removed, moved.
    figures : dict
        The totals: buildings, coverage, fire water, risk and hazards before and after.
    runs : dict
        ``before`` and ``after``: each run's source, district, date, CRS and time of run.
    headline : list of str
        The totals in one line each, in ``language``.
    notes : list of str
        What could not be compared, and why.
    language : {"en", "zh"}
        Language of the headline and of the written summary and map.
    """

    buildings: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    hazards: pd.DataFrame
    stations: gpd.GeoDataFrame
    figures: dict[str, Any]
    runs: dict[str, dict[str, Any]]
    headline: list[str]
    notes: list[str] = field(default_factory=list)
    language: str = "en"


# --------------------------------------------------------------------------------------------
# Reading the runs


def read_run(folder: str | os.PathLike) -> RunResults:
    """Read an output folder of ``firegrid run``: ``summary.json`` and ``results.gpkg``.

    Raises
    ------
    InputError
        Naming the folder, when it is not a FireGrid output folder (no summary or GeoPackage,
        or they lack the buildings and grid cells).
    """
    folder = Path(folder).expanduser()
    summary = _read_summary(folder)
    layers = _read_layers(folder)
    md = folder / SUMMARY_MD
    zh = md.is_file() and md.read_text(encoding="utf-8").startswith(_ZH_TITLE)
    return RunResults(**layers, summary=summary, source=str(folder), language="zh" if zh else "en")


def _read_summary(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise InputError("no such folder (give an output folder of `firegrid run`)", file=folder)
    if not (folder / SUMMARY_JSON).is_file() or not (folder / GPKG_FILE).is_file():
        raise InputError(
            f"not a FireGrid output folder: it has no {SUMMARY_JSON} and {GPKG_FILE} "
            "(write one with `firegrid run CONFIG --out FOLDER`)",
            file=folder,
        )
    summary = read_summary(folder)
    if "figures" not in summary:
        raise InputError("not a FireGrid summary (no 'figures')", file=folder / SUMMARY_JSON)
    return summary


def _read_layers(folder: Path) -> dict[str, Any]:
    path = folder / GPKG_FILE
    found = read_result_layers(
        folder, ("buildings", "grids", "hazards", "stations"), required=("buildings", "grids")
    )
    out = {name: found.get(name) for name in ("buildings", "grids", "hazards", "stations")}
    for name, key in (("buildings", "building_id"), ("grids", "grid_id")):
        _check_ids(out[name], key, path, name)
    return out


def _check_ids(frame: pd.DataFrame, key: str, path: Path | str, layer: str) -> None:
    if key not in frame:
        raise InputError(f"layer {layer!r} has no {key!r} column", file=str(path))
    ids = frame[key].astype(str)
    twice = ids[ids.duplicated()]
    if len(twice):
        raise InputError(
            f"layer {layer!r}: {key} {twice.iloc[0]!r} appears more than once; buildings and "
            "cells are matched by id",
            file=str(path),
        )


def run_results(run) -> RunResults:
    """A run in memory (:class:`firegrid.context.RunContext`) as :class:`RunResults`."""
    layers = run.layers
    summary = run.summary()
    return RunResults(
        buildings=layers["buildings"],
        grids=layers["grids"],
        hazards=layers.get("hazards"),
        stations=layers.get("stations"),
        summary=summary,
        source=f"run of {summary.get('config') or summary.get('district')}",
        language=run.config.params["output"].language,
    )


def _results(run) -> RunResults:
    if isinstance(run, RunResults):
        return run
    if isinstance(run, str | os.PathLike):
        return read_run(run)
    # firegrid.api.Results carries its run as .context
    return run_results(getattr(run, "context", run))


# --------------------------------------------------------------------------------------------
# Comparing


def compare(old, new, *, language: str | None = None) -> RunDiff:
    """Compare two runs of one district.

    Parameters
    ----------
    old, new : path, RunResults, RunContext or firegrid.api.Results
        The earlier and the later run: output folders of ``firegrid run``, results read by
        :func:`read_run`, or runs in memory (:func:`firegrid.pipeline.run_pipeline`,
        :func:`firegrid.api.run`).
    language : {"en", "zh"}, optional
        Of the headline, summary and map; default: that of the later run's ``summary.md``.

    Returns
    -------
    RunDiff

    Raises
    ------
    InputError
        Naming the later run, when the two are not comparable: other working CRS, or no
        building (or, for runs of differently named districts, no grid cell) in common.
    """
    old, new = _results(old), _results(new)
    notes = _comparable(old, new)
    buildings = building_changes(_with_text_ids(old.buildings), _with_text_ids(new.buildings))
    hazards = hazard_changes(*_ledgers(old, new, notes))
    grids = grid_changes(
        _with_text_ids(old.grids, "grid_id"),
        _with_text_ids(new.grids, "grid_id"),
        buildings,
        hazards,
    )
    stations = station_changes(old.stations, new.stations)
    figures = diff_figures(buildings, hazards, stations)
    runs = {"before": _run_info(old), "after": _run_info(new)}
    language = language or new.language
    notes += _missing_figures(buildings)
    return RunDiff(
        buildings=buildings,
        grids=grids,
        hazards=hazards,
        stations=stations,
        figures=figures,
        runs=runs,
        headline=diff_headline(figures, new.summary, language=language),
        notes=notes,
        language=language,
    )


def _ledgers(old: RunResults, new: RunResults, notes: list[str]) -> tuple:
    """The two hazard ledgers, or neither when a run has none judged on its date (a run
    without the risk step): a ledger cannot be compared with no ledger."""
    judged = [r.hazards is not None and "status" in r.hazards for r in (old, new)]
    if all(judged):
        return old.hazards, new.hazards
    if any(r.hazards is not None and len(r.hazards) for r in (old, new)):
        which = "earlier" if not judged[0] else "later"
        notes.append(f"hazards not compared: the {which} run has no judged hazard ledger")
    return None, None


def _with_text_ids(frame: gpd.GeoDataFrame, key: str = "building_id") -> gpd.GeoDataFrame:
    out = frame.copy()
    out[key] = out[key].astype(str)
    return out


def _comparable(old: RunResults, new: RunResults) -> list[str]:
    """Refuse two runs that cannot be compared; notes on what differs but can be."""
    if old.buildings.crs != new.buildings.crs:
        raise InputError(
            f"its working CRS {_crs_name(new)} differs from {_crs_name(old)} of {old.source}; "
            "compare runs of one district made in one CRS",
            file=new.source,
        )
    common = set(old.buildings["building_id"].astype(str)) & set(
        new.buildings["building_id"].astype(str)
    )
    if not common:
        raise InputError(
            f"no building_id in common with {old.source}; are they runs of one district?",
            file=new.source,
        )
    names = (old.summary.get("district"), new.summary.get("district"))
    if names[0] == names[1]:
        return []
    cells = set(old.grids["grid_id"].astype(str)) & set(new.grids["grid_id"].astype(str))
    if not cells:
        raise InputError(
            f"district {names[1]!r} has no grid cell in common with {names[0]!r} of "
            f"{old.source}; compare runs of one district",
            file=new.source,
        )
    return [f"the runs name their district differently: {names[0]!r} → {names[1]!r}"]


def _crs_name(run: RunResults) -> str:
    crs = run.buildings.crs
    return crs.to_string() if crs is not None else "none"


def _run_info(run: RunResults) -> dict[str, Any]:
    keys = ("district", "as_of", "run_at", "crs", "config")
    return {"source": run.source, **{k: run.summary.get(k) for k in keys}}


def _missing_figures(buildings: pd.DataFrame) -> list[str]:
    """Notes for figures one of the runs lacks (a run without that step)."""
    notes = []
    for figure, before, after, _change in BUILDING_FIGURES:
        for name, which in ((before, "earlier"), (after, "later")):
            if buildings[name].isna().all() and len(buildings):
                notes.append(f"{figure} not compared: the {which} run has no {figure}")
    return notes


# --------------------------------------------------------------------------------------------
# Totals and headline


def diff_figures(
    buildings: pd.DataFrame, hazards: pd.DataFrame, stations: pd.DataFrame | None = None
) -> dict[str, Any]:
    """The totals of a comparison: buildings, stations, coverage, water, risk and hazards."""
    presence = buildings["presence"].value_counts()
    figures: dict[str, Any] = {
        "buildings": {
            "before": int(presence.get("both", 0) + presence.get("removed", 0)),
            "after": int(presence.get("both", 0) + presence.get("added", 0)),
            "both": int(presence.get("both", 0)),
            "added": int(presence.get("added", 0)),
            "removed": int(presence.get("removed", 0)),
        }
    }
    for figure, change in (
        ("covered_3min", "change_3min"),
        ("covered_5min", "change_5min"),
        ("water_covered", "change_water"),
    ):
        figures[figure] = _flag_totals(buildings, figure, change, figures["buildings"])
    figures["risk"] = _risk_totals(buildings)
    figures["hazards"] = _hazard_totals(hazards)
    figures["stations"] = _station_totals(stations)
    return figures


def _station_totals(stations: pd.DataFrame | None) -> dict[str, Any]:
    if stations is None:
        stations = pd.DataFrame({"station_id": [], "presence": [], "moved_m": []})
    ids = stations["station_id"].astype(str)
    moved = stations["moved_m"].astype(float) > MOVED_M
    return {
        "before": int(stations["presence"].isin(("both", "removed")).sum()),
        "after": int(stations["presence"].isin(("both", "added")).sum()),
        "added": ids[stations["presence"].eq("added")].tolist(),
        "removed": ids[stations["presence"].eq("removed")].tolist(),
        "moved": ids[moved.to_numpy()].tolist(),
    }


def _flag_totals(
    buildings: pd.DataFrame, figure: str, change: str, counts
) -> dict[str, Any] | None:
    """Before and after counts, shares, gained and lost; None when a run lacks the figure."""
    if any(buildings[f"{figure}_{run}"].isna().all() for run in ("before", "after")):
        return None
    before = int(buildings[f"{figure}_before"].fillna(0).sum())
    after = int(buildings[f"{figure}_after"].fillna(0).sum())
    return {
        "before": before,
        "after": after,
        "share_before": share(before, counts["before"]),
        "share_after": share(after, counts["after"]),
        "gained": int(buildings[change].eq(1).sum()),
        "lost": int(buildings[change].eq(-1).sum()),
    }


def _risk_totals(buildings: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for run in ("before", "after"):
        index = buildings[f"risk_index_{run}"]
        grades = buildings[f"risk_grade_{run}"].dropna().astype(int).value_counts()
        out[f"risk_index_mean_{run}"] = float(index.mean()) if index.notna().any() else None
        out[f"grades_{run}"] = {str(g): int(grades.get(g, 0)) for g in columns.GRADE_LABELS["en"]}
    out["riskier"] = int(buildings["d_risk_grade"].lt(0).sum())
    out["safer"] = int(buildings["d_risk_grade"].gt(0).sum())
    return out


def _hazard_totals(hazards: pd.DataFrame) -> dict[str, Any]:
    changes = hazards["hazard_change"].value_counts()
    out = {
        f"{state}_{run}": int(hazards[f"status_{run}"].isin(states).sum())
        for state, states in (("open", ("open", "overdue")), ("overdue", ("overdue",)))
        for run in ("before", "after")
    }
    for kind in ("new", "rectified", "newly_overdue", "reopened", "removed"):
        out[kind] = int(changes.get(kind, 0))
    out["in_ledgers"] = len(hazards)
    return out


def diff_headline(
    figures: Mapping[str, Any], summary: Mapping[str, Any] | None = None, *, language: str = "en"
) -> list[str]:
    """The totals in one line each, in English or Chinese (``language="zh"``); ``summary``
    (the later run's) gives the response targets the lines quote (else the defaults). Risk
    and hazards have a line when a run has them."""
    access = (summary or {}).get("figures", {}).get("access", {})
    defaults = parameter_values()
    micro = float(access.get("target_micro_s", defaults["target_micro_s"]))
    fire = float(access.get("target_fire_s", defaults["target_fire_s"]))
    words = _ZH if language == "zh" else _EN
    b, risk, haz = figures["buildings"], figures["risk"], figures["hazards"]
    lines = [words["buildings"].format(**b), *_station_line(figures.get("stations"), words)]
    for key, target in (("covered_3min", micro), ("covered_5min", fire)):
        f = figures[key]
        if f is None:
            continue
        lines.append(
            words["coverage"].format(
                what=_target(target, language),
                pb=_pc(f["share_before"], language),
                pa=_pc(f["share_after"], language),
                **f,
            )
        )
    if figures["water_covered"] is not None:
        lines.append(words["water"].format(**figures["water_covered"]))
    lines += _risk_line(risk, words) + _hazard_line(haz, words)
    return lines


def _station_line(stations: Mapping[str, Any] | None, words: Mapping[str, str]) -> list[str]:
    if not stations or not (stations["added"] or stations["removed"] or stations["moved"]):
        return []
    ids = {k: ", ".join(stations[k]) or "–" for k in ("added", "removed", "moved")}
    return [words["stations"].format(before=stations["before"], after=stations["after"], **ids)]


def _risk_line(risk: Mapping[str, Any], words: Mapping[str, str]) -> list[str]:
    if risk["risk_index_mean_before"] is None or risk["risk_index_mean_after"] is None:
        return []
    grade_names = columns.GRADE_LABELS["zh"]
    grades = " · ".join(
        f"{g} {grade_names[int(g)]} {risk['grades_before'][g]:,} → {risk['grades_after'][g]:,}"
        for g in risk["grades_before"]
    )
    return [
        words["risk"].format(
            mb=_one(risk["risk_index_mean_before"]),
            ma=_one(risk["risk_index_mean_after"]),
            grades=grades,
            **risk,
        )
    ]


def _hazard_line(haz: Mapping[str, Any], words: Mapping[str, str]) -> list[str]:
    if not haz["in_ledgers"]:
        return []
    return [
        words["hazards"].format(
            open=f"{haz['open_before']:,} → {haz['open_after']:,}",
            overdue=f"{haz['overdue_before']:,} → {haz['overdue_after']:,}",
            **haz,
        )
    ]


def _target(seconds: float, language: str) -> str:
    return f"{seconds / 60:g}分钟" if language == "zh" else minutes(seconds)


def _pc(value: float, language: str) -> str:
    return percent(value, space="" if language == "zh" else " ")


def _one(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


_EN = {
    "buildings": "buildings: {before:,} → {after:,} ({both:,} in both runs, {added:,} added, "
    "{removed:,} removed)",
    "stations": "stations: {before} → {after} (added: {added}; removed: {removed}; moved: {moved})",
    "coverage": "{what} coverage: {before:,} → {after:,} buildings ({pb} → {pa}; "
    "{gained:,} gained, {lost:,} lost)",
    "water": "buildings with fire water: {before:,} → {after:,} ({gained:,} gained, {lost:,} lost)",
    "risk": "risk index mean {mb} → {ma}; grades {grades}; {riskier:,} building(s) to a "
    "higher-risk grade, {safer:,} to a lower",
    "hazards": "hazards unrectified: {open} (overdue {overdue}): {new:,} new, "
    "{rectified:,} rectified, {newly_overdue:,} newly overdue",
}
_ZH = {
    "buildings": "建筑：{before:,} → {after:,} 栋（两次均有 {both:,} 栋，新增 {added:,} 栋，"
    "删除 {removed:,} 栋）",
    "stations": "消防站点：{before} → {after} 处（新增：{added}；撤除：{removed}；"
    "位置变动：{moved}）",
    "coverage": "{what}到场覆盖：{before:,} → {after:,} 栋（{pb} → {pa}；"
    "新增覆盖 {gained:,} 栋，失去覆盖 {lost:,} 栋）",
    "water": "有消防供水的建筑：{before:,} → {after:,} 栋（新增 {gained:,} 栋，失去 {lost:,} 栋）",
    "risk": "风险指数平均 {mb} → {ma}；各等级建筑 {grades}；风险等级升高 {riskier:,} 栋，"
    "降低 {safer:,} 栋",
    "hazards": "未整改隐患：{open} 项（逾期 {overdue}）：新增 {new:,} 项，"
    "新整改 {rectified:,} 项，新逾期 {newly_overdue:,} 项",
}


__all__ = [
    "DIFF_FILES",
    "RunDiff",
    "RunResults",
    "compare",
    "diff_figures",
    "diff_headline",
    "read_run",
    "run_results",
    "write_diff",
]
