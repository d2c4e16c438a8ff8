"""What one partition does on a worker: the access and water steps over its window.

These functions run in a Dask worker (or in process with ``--workers 0``). They take only
picklable inputs, share nothing with other partitions, and never raise on bad input: a
FireGridError becomes :attr:`PartitionResult.error`, naming the subdistrict and, through the
error's own message, the file, so the other partitions' results are kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from firegrid.config import Config
from firegrid.context import RunContext, StepResult
from firegrid.pipeline import run_pipeline, run_step
from firegrid.region.partitions import Window
from firegrid.spatial import runtime
from firegrid.spatial.access.analysis import analyse_access
from firegrid.spatial.errors import FireGridError
from firegrid.spatial.io.district import District
from firegrid.spatial.io.grids import surface_points

# The steps of a subdistrict analysed as it stands (form a); siting is not part of region runs.
SUBDISTRICT_STEPS = ("load", "network", "access", "water", "risk")
# Layers of a window's water step that are kept per partition (limited to the partition's cell).
PARTITION_LAYERS = ("hydrant_gaps", "proposed_hydrants")


@dataclass
class PartitionResult:
    """What one partition sends back.

    Attributes
    ----------
    name : str
        The subdistrict.
    columns : dict layer -> DataFrame
        Columns the steps added to input layers (``buildings`` of the cell; ``hydrants`` and
        ``water_sources`` lying in the cell), indexed like the region's layers.
    layers : dict name -> GeoDataFrame
        Layers made per partition (``hydrant_gaps``, ``proposed_hydrants`` in the cell; for a
        subdistrict analysed as it stands, every layer of its run).
    tables : dict name -> DataFrame
        Tables of a subdistrict analysed as it stands (``access_by_grid`` …).
    figures : dict
        Headline figures of a subdistrict analysed as it stands.
    notes : list of str
        The steps' notes (the merge names the subdistricts that made each).
    size : dict
        Rows per layer and the window's nodes and edges.
    seconds : float
        Wall time of the partition's work.
    error : str or None
        The one-line error of a partition that failed on bad input.
    grid_columns : list of str
        The columns of a subdistrict's own grids layer as read (the user's, beside FireGrid's).
    """

    name: str
    columns: dict[str, pd.DataFrame] = field(default_factory=dict)
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    size: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    grid_columns: list[str] = field(default_factory=list)


def analyse_window(window: Window, config: Config, *, threads: int | None = None):
    """Building times and fire water over one window of a split region.

    The access analysis runs without isochrones and areas of responsibility (station
    polygons are drawn per district run, not per partition); the water step runs as in a
    district run, over the streets within its own, shorter reach
    (:meth:`~firegrid.region.partitions.Window.water_reach`).

    Parameters
    ----------
    window : Window
        From :func:`firegrid.region.partitions.iter_windows`.
    config : Config
        The region's layers and parameters (form b).
    threads : int, optional
        Threads the steps may use (default: the cores this process may use).

    Returns
    -------
    PartitionResult
    """
    t0 = time.perf_counter()
    if not len(window.layers["buildings"]):  # a cell without buildings: nothing to time
        return PartitionResult(window.name, size=window.size)
    try:
        ctx = _window_context(window, config)
        with runtime.using_threads(threads):
            ctx.record("access", _window_access(ctx))
            ctx.network, near = window.water_reach()
            ctx.district.layers.update(near)
            run_step(ctx, "water")
    except FireGridError as exc:
        return PartitionResult(window.name, error=f"{window.name}: {exc}")
    out = PartitionResult(window.name, size=window.size)
    for result in ctx.steps.values():
        for layer, block in result.columns.items():
            rows = window.owned.get(layer, block.index)
            part = block.loc[block.index.intersection(rows)]
            have = out.columns.get(layer)
            out.columns[layer] = part if have is None else have.join(part)
        for name in PARTITION_LAYERS:
            if name in result.layers:
                out.layers[name] = _in_cell(result.layers[name], window.cell)
    out.notes = list(ctx.notes)
    out.seconds = time.perf_counter() - t0
    return out


def _window_access(ctx: RunContext) -> StepResult:
    """The buildings' times, as the access step computes them, without station polygons."""
    out = StepResult()
    if ctx.network is None:
        return out
    before = ctx.buildings
    with runtime.collecting_notes() as notes:
        result = analyse_access(
            ctx.network, before, ctx.layers["stations"], params=ctx.config.params["access"],
            isochrones=False, areas=False,
        )  # fmt: skip
    out.add_columns("buildings", before, result.buildings)
    for text in notes:
        out.note(f"access: {text}")
    return out


def _window_context(window: Window, config: Config) -> RunContext:
    crs = window.layers["buildings"].crs
    ctx = RunContext(config)
    ctx.district = District(window.name, crs, dict(window.layers), as_of=config.as_of,
                            cells=window.cells)  # fmt: skip
    ctx.cells = window.cells
    ctx.network = window.network
    return ctx


def _in_cell(layer: gpd.GeoDataFrame, cell) -> gpd.GeoDataFrame:
    """The features whose representative point lies in ``cell`` (each border feature once)."""
    points = surface_points(layer.geometry.to_numpy())
    return layer[shapely.intersects(cell, points)]


def analyse_subdistrict(name: str, config: Config, *, as_of: date | None = None,
                        threads: int | None = None) -> PartitionResult:  # fmt: skip
    """A subdistrict of a form-(a) region, analysed as ``firegrid run`` would (no siting).

    Returns
    -------
    PartitionResult
        Its every layer in ``layers`` (working CRS), its tables and figures.
    """
    t0 = time.perf_counter()
    if as_of is not None:
        config = replace(config, as_of=as_of)
    try:
        ctx = run_pipeline(config, steps=SUBDISTRICT_STEPS, progress=False, threads=threads)
    except FireGridError as exc:
        return PartitionResult(name, error=f"{name}: {exc}")
    layers = {k: v for k, v in ctx.layers.items() if v is not None and len(v)}
    return PartitionResult(
        name,
        layers=layers,
        tables=dict(ctx.tables),
        figures=ctx.figures,
        notes=list(ctx.notes),
        size={k: len(v) for k, v in layers.items()},
        grid_columns=list(ctx.district.layers["grids"].columns),
        seconds=time.perf_counter() - t0,
    )
