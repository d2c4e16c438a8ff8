"""Assemble a region from its partitions: region-wide layers, grid tables, risk, the ranking.

A split region (form b) is merged into the region's own run context: the partitions' building
columns are joined onto the region's buildings, the horizon rule is applied
(:mod:`firegrid.region.horizon`), the per-grid tables and water-deficient zones are computed
over the whole region from those buildings, and the risk step runs once over the whole region
(its imputation, grading and fire model use region-wide statistics, as a whole-region run
does). A region of district configs (form a) is the union of its subdistricts' own runs.

Either way each subdistrict gets one row: buildings, 3- and 5-minute coverage, the share of
water-deficient buildings, the mean risk index and unrectified (of which overdue) hazards,
ranked by mean risk, worst first; and the region gets its totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from firegrid.context import RunContext, StepResult
from firegrid.pipeline import run_step
from firegrid.region.config import RegionConfig
from firegrid.region.horizon import beyond_horizon
from firegrid.region.partitions import Halo, partition_cells
from firegrid.region.work import PartitionResult
from firegrid.spatial.access.travel_times import coverage_by_grid
from firegrid.spatial.io.grids import surface_points
from firegrid.spatial.io.layers import ACCESS_COLUMNS
from firegrid.spatial.water.by_grid import water_by_grid
from firegrid.spatial.water.zones import water_deficient_zones
from firegrid.steps import coverage_headline, water_headline
from firegrid.wording import share

# The column naming each feature's subdistrict in every region layer (GeoParquet partitions).
SUBDISTRICT = "subdistrict"
# One row per subdistrict: these figures, ranked by mean risk (worst first).
RANKING_COLUMNS = (
    "rank",
    SUBDISTRICT,
    "buildings",
    "share_covered_3min",
    "share_covered_5min",
    "share_water_deficient",
    "risk_index_mean",
    "hazards_open",
    "hazards_overdue",
)


@dataclass
class RegionResult:
    """A region run.

    Attributes
    ----------
    region : RegionConfig
    layers : dict name -> GeoDataFrame or DataFrame
        Region-wide layers in the working CRS (metres), each with a ``subdistrict`` column
        where a feature lies in one; tables without geometry (``hazard_escalation`` …).
    tables : dict name -> DataFrame
        Per-grid tables over every level (``access_by_grid``, ``water_by_grid``).
    subdistricts : DataFrame
        One ranked row per subdistrict (:data:`RANKING_COLUMNS`).
    totals : dict
        The region's figures (the same as the ranking's, over every building).
    failures : list of str
        One line per subdistrict that failed on bad input (naming it and the file).
    notes : list of str
    partitions : DataFrame
        Per partition: its window's size and the wall time of its work.
    halo : Halo or None
        The halo of a split region.
    run : RunContext or None
        A split region's context (its ``figures``, ``headline`` and ``layers``).
    grid_columns : list of str
        The columns of the input grids layer(s) as read: those beyond the data model are the
        user's, shared in the grid table only when ``[map] allow_fields`` names them.
    seconds : float
        Wall time of the run.
    """

    region: RegionConfig
    layers: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    subdistricts: pd.DataFrame
    totals: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    partitions: pd.DataFrame | None = None
    halo: Halo | None = None
    run: RunContext | None = None
    seconds: float = 0.0
    grid_columns: list[str] = field(default_factory=list)

    @property
    def buildings(self) -> gpd.GeoDataFrame:
        return self.layers["buildings"]

    @property
    def headline(self) -> list[str]:
        t = self.totals
        return [
            f"{t['subdistricts']} subdistricts, {t['buildings']:,} buildings"
            + (f" ({t['failed']} subdistrict(s) failed)" if t["failed"] else ""),
            *(self.run.headline if self.run is not None else []),
        ]


# --------------------------------------------------------------------------------------------
# Form (b): windows of one region


def merge_windows(
    ctx: RunContext,
    region: RegionConfig,
    results: list[PartitionResult],
    *,
    halo: Halo,
    whole: bool = False,
) -> RegionResult:
    """Merge the windows' results into ``ctx`` (the region's context, load and network done).

    With ``whole`` the context has run the access and water steps itself over the whole
    region (``results`` is empty): the same finishing then makes the reference a partitioned
    run equals.
    """
    ok = [r for r in results if r.error is None]
    if whole:
        columns = _joined([ctx.steps[s].columns for s in ("access", "water") if s in ctx.steps])
        extra = {k: v for k, v in ctx.steps["water"].layers.items()
                 if k in ("hydrant_gaps", "proposed_hydrants")}  # fmt: skip
    else:
        columns = _joined_columns(ok)
        extra = _joined_layers(ok)
    cells = partition_cells(ctx.district.layers["grids"], region.partition_level)
    _finish(ctx, columns, extra, halo=halo)
    run_step(ctx, "risk")
    layers = _labelled(ctx, cells, region.partition_level, extra)
    failures = [r.error for r in results if r.error is not None]
    notes = list(ctx.notes) + partition_notes(ok)
    if failures:
        notes.append(f"no access or water figures for {len(failures)} failed subdistrict(s)")
    ranking, totals = rank_subdistricts(layers, failed=len(failures))
    return RegionResult(
        region,
        layers,
        {k: v for k, v in ctx.tables.items() if k.endswith("_by_grid")},
        ranking,
        totals,
        failures=failures,
        notes=_unique(notes),
        partitions=_partition_table(results),
        halo=halo,
        run=ctx,
        grid_columns=list(ctx.district.layers["grids"].columns),
    )


def _joined_columns(results: list[PartitionResult]) -> dict[str, pd.DataFrame]:
    """Each layer's added columns, the partitions' rows one after another; a hydrant or source
    on the border of two cells is reported by both partitions, alike, and kept once."""
    out: dict[str, pd.DataFrame] = {}
    for name in dict.fromkeys(k for r in results for k in r.columns):
        joined = pd.concat([r.columns[name] for r in results if name in r.columns])
        out[name] = joined[~joined.index.duplicated()]
    return out


def _joined(blocks: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """Each layer's columns from several steps side by side (same rows)."""
    out: dict[str, pd.DataFrame] = {}
    for block in blocks:
        for name, cols in block.items():
            out[name] = cols if name not in out else out[name].join(cols)
    return out


def _joined_layers(results: list[PartitionResult]) -> dict[str, gpd.GeoDataFrame]:
    out = {}
    for name in {k for r in results for k in r.layers}:
        blocks = [r.layers[name].assign(**{SUBDISTRICT: r.name}) for r in results
                  if name in r.layers and len(r.layers[name])]  # fmt: skip
        if blocks:
            out[name] = pd.concat(blocks, ignore_index=True)
    return out


def _finish(ctx: RunContext, columns, extra, *, halo: Halo) -> None:
    """Record the region's access and water results: horizon applied, region-wide tables."""
    access, water = StepResult(), StepResult()
    if ctx.network is not None:
        layers = ctx.district.layers
        index = layers["buildings"].index
        added = columns.get("buildings", pd.DataFrame(index=index)).reindex(index)
        b = beyond_horizon(layers["buildings"].join(added), horizon_s=halo.horizon_s,
                           water_m=halo.water_m)  # fmt: skip
        access.columns["buildings"] = b[[c for c in added if c in ACCESS_COLUMNS]]
        water.columns["buildings"] = b[[c for c in added if c not in ACCESS_COLUMNS]]
        for name in ("hydrants", "water_sources"):
            if name in columns and name in layers:
                water.columns[name] = columns[name].reindex(layers[name].index)
        _region_tables(ctx, b, access, water, extra)
        _region_figures(ctx, b, access, water)
    ctx.record("access", access)
    ctx.record("water", water)


def _region_tables(ctx: RunContext, b, access: StepResult, water: StepResult, extra) -> None:
    """Per-grid tables and water-deficient zones over the whole region's buildings."""
    layers, cells, params = ctx.district.layers, ctx.cells, ctx.config.params["water"]
    grids = layers.get("grids")
    access.tables["access_by_grid"] = pd.DataFrame(coverage_by_grid(b, grids, cells=cells)).drop(
        columns="geometry", errors="ignore"
    )
    zones = water_deficient_zones(b, grids=grids, params=params)
    water.layers.update({"water_deficient": zones, **extra})
    hydrants = _with(layers.get("hydrants"), water.columns.get("hydrants"))
    sources = _with(layers.get("water_sources"), water.columns.get("water_sources"))
    water.tables["water_by_grid"] = water_by_grid(
        b, grids, sources, hydrants=hydrants, zones=zones, cells=cells, params=params
    )


def _region_figures(ctx: RunContext, b, access: StepResult, water: StepResult) -> None:
    """The headline figures and lines of the access and water steps, over the whole region."""
    p, w = ctx.config.params["access"], ctx.config.params["water"]
    n = len(b)
    fig: dict[str, Any] = {"target_micro_s": p.target_micro_s, "target_fire_s": p.target_fire_s}
    for col in ("covered_3min", "covered_5min"):
        k = int(_flag(b, col).sum())
        fig[f"buildings_{col}"], fig[f"share_{col}"] = k, share(k, n)
    access.figures["access"] = fig
    access.headline.extend(coverage_headline(fig, p, n))
    k = int(_flag(b, "water_deficient").sum())
    zones = len(water.layers.get("water_deficient", ()))
    water.figures["water"] = {"hydrant_radius_m": w.hydrant_radius_m, "water_deficient": k,
                              "share_water_deficient": share(k, n), "deficient_zones": zones}  # fmt: skip
    water.headline.append(water_headline(water.figures["water"]))


def _with(layer, cols):
    if layer is None or cols is None:
        return layer
    return layer.drop(columns=[c for c in cols if c in layer]).join(cols)


def _labelled(ctx: RunContext, cells: gpd.GeoDataFrame, level: int, extra) -> dict[str, Any]:
    """The region's layers, each feature labelled with the subdistrict it lies in."""
    out: dict[str, Any] = {}
    name_of = pd.Series(cells["partition"].to_numpy(), index=cells["grid_id"].astype(str))
    for name, layer in ctx.layers.items():
        if layer is None or not len(layer) or name in extra:
            out[name] = layer
            continue
        if name == "buildings":
            label = ctx.cells[f"grid_id_l{level}"].astype(object).map(name_of)
        else:
            label = _cell_of(layer, cells)
        out[name] = layer.assign(**{SUBDISTRICT: pd.array(np.asarray(label, dtype=object),
                                                          dtype="string")})  # fmt: skip
    for name, table in ctx.tables.items():
        if not name.endswith("_by_grid"):
            out[name] = table
    return out


def _cell_of(layer: gpd.GeoDataFrame, cells: gpd.GeoDataFrame) -> np.ndarray:
    """The partition whose cell holds each feature's representative point (None: none)."""
    points = surface_points(layer.geometry.to_numpy())
    tree = shapely.STRtree(cells.geometry.to_numpy())
    where, which = tree.query(points, predicate="intersects")
    out = np.full(len(layer), None, dtype=object)
    first = np.unique(where, return_index=True)[1]  # a point on a shared edge: the first cell
    out[where[first]] = cells["partition"].to_numpy()[which[first]]
    return out


def _partition_table(results: list[PartitionResult]) -> pd.DataFrame:
    rows = [{SUBDISTRICT: r.name, "seconds": round(r.seconds, 2), "error": r.error, **r.size}
            for r in results]  # fmt: skip
    return pd.DataFrame(rows)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def partition_notes(results: list[PartitionResult]) -> list[str]:
    """The partitions' notes, each once: a station or hydrant in several halos is noted by
    each of them in the same words, so a note names the subdistricts that made it."""
    where: dict[str, list[str]] = {}
    for r in results:
        for text in r.notes:
            where.setdefault(text, []).append(r.name)
    out = []
    for text, names in where.items():
        if len(names) == 1:
            out.append(f"{names[0]}: {text}")
        else:
            out.append(f"{text} (noted by {len(names)} subdistricts)")
    return out


# --------------------------------------------------------------------------------------------
# Form (a): subdistricts analysed as they stand


def merge_subdistricts(region: RegionConfig, results: list[PartitionResult]) -> RegionResult:
    """The union of the subdistricts' own runs, each feature labelled with its subdistrict."""
    ok = [r for r in results if r.error is None]
    layers: dict[str, Any] = {}
    for name in dict.fromkeys(k for r in ok for k in r.layers):
        blocks = [r.layers[name].assign(**{SUBDISTRICT: r.name}) for r in ok if name in r.layers]
        crs = getattr(blocks[0], "crs", None)
        if crs is not None:
            blocks = [b.to_crs(crs) for b in blocks]
        layers[name] = pd.concat(blocks, ignore_index=True)
    tables = {}
    for name in ("access_by_grid", "water_by_grid"):
        blocks = [r.tables[name].assign(**{SUBDISTRICT: r.name}) for r in ok if name in r.tables]
        if blocks:
            tables[name] = pd.concat(blocks, ignore_index=True)
    failures = [r.error for r in results if r.error is not None]
    ranking, totals = rank_subdistricts(layers, failed=len(failures))
    return RegionResult(
        region,
        layers,
        tables,
        ranking,
        totals,
        failures=failures,
        notes=partition_notes(ok) + _duplicate_grid_note(layers.get("grids")),
        partitions=_partition_table(results),
        grid_columns=list(dict.fromkeys(c for r in ok for c in r.grid_columns)),
    )


def _duplicate_grid_note(grids) -> list[str]:
    """Subdistricts analysed as they stand may reuse grid ids; the grid table joins on them."""
    if grids is None or "grid_id" not in grids:
        return []
    dup = grids["grid_id"].astype("string").duplicated(keep=False)
    if not dup.any():
        return []
    return [
        f"{int(dup.sum())} grid cells share a grid_id with a cell of another subdistrict "
        f"(e.g. {grids.loc[dup, 'grid_id'].iloc[0]!r}): their rows of grid_summary may mix "
        "figures; give each subdistrict its own grid ids"
    ]


# --------------------------------------------------------------------------------------------
# The ranking


def rank_subdistricts(layers: dict[str, Any], *, failed: int = 0) -> tuple[pd.DataFrame, dict]:
    """One row per subdistrict, ranked by mean risk index (worst first), and region totals.

    Parameters
    ----------
    layers : dict
        Region layers with a ``subdistrict`` column: ``buildings`` (``covered_3min``,
        ``covered_5min``, ``water_deficient``, ``risk_index`` where computed) and, optionally,
        ``hazards`` (``status``: open / overdue / rectified).
    failed : int
        Subdistricts that failed (counted in the totals).

    Returns
    -------
    ranking : DataFrame
        :data:`RANKING_COLUMNS`; shares 0–1, NaN where the figure was not computed.
    totals : dict
        The same figures over the whole region, plus ``subdistricts`` and ``failed``.
    """
    b = pd.DataFrame(layers.get("buildings", pd.DataFrame(columns=[SUBDISTRICT])))
    b = b[b[SUBDISTRICT].notna()] if len(b) else b
    figures = pd.DataFrame(index=pd.Index(b[SUBDISTRICT].unique() if len(b) else [],
                                          name=SUBDISTRICT))  # fmt: skip
    groups = b.groupby(SUBDISTRICT, sort=False)
    figures["buildings"] = groups.size()
    for col, out in (("covered_3min", "share_covered_3min"),
                     ("covered_5min", "share_covered_5min"),
                     ("water_deficient", "share_water_deficient")):  # fmt: skip
        figures[out] = _flag(b, col).groupby(b[SUBDISTRICT]).mean() if col in b else np.nan
    figures["risk_index_mean"] = (
        pd.to_numeric(b["risk_index"], errors="coerce").groupby(b[SUBDISTRICT]).mean()
        if "risk_index" in b
        else np.nan
    )
    hz = layers.get("hazards")
    status = _hazard_status(hz)
    for key, states in (("hazards_open", ("open", "overdue")), ("hazards_overdue", ("overdue",))):
        if status is None:
            figures[key] = pd.NA
        else:
            hit = status.isin(states)
            figures[key] = hit.groupby(hz[SUBDISTRICT]).sum().reindex(figures.index).fillna(0)
    figures = figures.sort_values(["risk_index_mean", "share_covered_3min"],
                                  ascending=[False, True], na_position="last")  # fmt: skip
    figures.insert(0, "rank", np.arange(1, len(figures) + 1))
    ranking = figures.reset_index()[list(RANKING_COLUMNS)]
    totals = _totals(b, status, subdistricts=len(figures), failed=failed)
    return ranking, totals


def _flag(b: pd.DataFrame, col: str) -> pd.Series:
    return b[col].astype("boolean").fillna(False).astype(float)


def _hazard_status(hz) -> pd.Series | None:
    if hz is None or not len(hz) or "status" not in hz or SUBDISTRICT not in hz:
        return None
    return hz["status"].astype("string")


def _totals(b: pd.DataFrame, status, *, subdistricts: int, failed: int) -> dict[str, Any]:
    n = len(b)
    out: dict[str, Any] = {"subdistricts": subdistricts, "failed": failed, "buildings": n}
    for col in ("covered_3min", "covered_5min", "water_deficient"):
        if col in b:
            k = int(_flag(b, col).sum())
            out[f"buildings_{col}"] = k
            out[f"share_{col}"] = share(k, n)
    if "risk_index" in b:
        out["risk_index_mean"] = float(pd.to_numeric(b["risk_index"], errors="coerce").mean())
    if status is not None:
        out["hazards_open"] = int(status.isin(("open", "overdue")).sum())
        out["hazards_overdue"] = int((status == "overdue").sum())
    return out
