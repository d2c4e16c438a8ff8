"""The access step as one call: building times, isochrones, areas of responsibility, summaries.

It sits above :mod:`firegrid.spatial.access.isochrones` and
:mod:`firegrid.spatial.access.travel_times`, so imports flow analysis → isochrones →
travel_times. Every part works on the same compiled graphs (one per vehicle profile).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial

import geopandas as gpd
import networkx as nx
import pandas as pd

from firegrid.spatial import runtime
from firegrid.spatial.access.isochrones import (
    Areas,
    areas_of_responsibility,
    isochrone_mode,
    station_isochrones,
)
from firegrid.spatial.access.travel_times import (
    building_access,
    compile_graphs,
    coverage_by_grid,
    missing_buildings,
    missing_order,
    station_groups,
)
from firegrid.spatial.network.profiles import AccessParams
from firegrid.spatial.network.routing import GraphTable, RoutingGraph


@dataclass
class AccessResult:
    """Everything the access step produces (all GeoDataFrames in the working CRS).

    Attributes
    ----------
    buildings : GeoDataFrame
        Input buildings plus :data:`firegrid.spatial.io.layers.ACCESS_COLUMNS`.
    isochrones : GeoDataFrame
        Per station and threshold: ``station_id``, ``name``, ``kind``, ``vehicle``,
        ``minutes``, ``t_s``, ``length_m``, polygon.
    areas : GeoDataFrame or None
        Areas of responsibility: per station ``station_id``, ``name``, ``kind``,
        ``n_buildings``, ``area_km2``, polygon (``responsibility.areas``).
    streets : GeoDataFrame or None
        Street pieces with, per kind, the first station and its time and how many stations
        reach the piece within target (``kind``, ``station_id``, ``t_s``, ``n_stations``,
        ``length_m``); drawn when first read.
    overlaps : GeoDataFrame or None
        Polygons by ``kind`` and ``n_stations``: how many stations reach a place within
        target; drawn when first read.
    grid_summary : GeoDataFrame or None
        Coverage per grid at every level (see
        :func:`firegrid.spatial.access.travel_times.coverage_by_grid`).
    missing : GeoDataFrame
        Buildings missing a target, sorted by shortfall (see
        :func:`firegrid.spatial.access.travel_times.missing_buildings`).
    params : AccessParams
    responsibility : Areas or None
        What :func:`~firegrid.spatial.access.isochrones.areas_of_responsibility` returned.
    """

    buildings: gpd.GeoDataFrame
    isochrones: gpd.GeoDataFrame | None = None
    grid_summary: gpd.GeoDataFrame | None = None
    missing: gpd.GeoDataFrame | None = None
    params: AccessParams = field(default_factory=AccessParams)
    responsibility: Areas | None = field(default=None, repr=False)

    @property
    def areas(self) -> gpd.GeoDataFrame | None:
        return None if self.responsibility is None else self.responsibility.areas

    @property
    def streets(self) -> gpd.GeoDataFrame | None:
        return None if self.responsibility is None else self.responsibility.streets

    @property
    def overlaps(self) -> gpd.GeoDataFrame | None:
        return None if self.responsibility is None else self.responsibility.overlaps


def analyse_access(
    network: GraphTable | nx.MultiDiGraph | Mapping[str, RoutingGraph],
    buildings: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame,
    *,
    params: AccessParams | None = None,
    grids: gpd.GeoDataFrame | None = None,
    cells: pd.DataFrame | None = None,
    isochrones: bool = True,
    areas: bool = True,
) -> AccessResult:
    """The access step of the pipeline: building times, isochrones, areas, overlaps, summaries.

    Parameters
    ----------
    network : GraphTable, networkx.MultiDiGraph or mapping vehicle -> RoutingGraph
        The network read once, a projected osmnx graph (metres) or compiled graphs.
    buildings, stations : GeoDataFrame
        In the network's projected CRS.
    params : AccessParams, optional
    grids : GeoDataFrame, optional
        When given, ``grid_summary`` and grid ids on ``missing`` are filled.
    cells : DataFrame, optional
        Building → grid cell table of ``buildings``
        (:func:`firegrid.spatial.io.grids.assign_grids`, same row order), assigned once by the
        run; assigned here from ``grids`` when not given.
    isochrones, areas : bool
        Compute isochrone polygons / areas of responsibility and overlaps.

    Returns
    -------
    AccessResult
    """
    params = params or AccessParams()
    graphs = _graphs(network, stations, params)
    out = building_access(buildings, stations, graphs, params=params)
    result = AccessResult(buildings=out, params=params)
    # The last station kind's isochrones (micro-stations') are drawn in a forked process
    # beside the areas, the grid summary and then the other kinds' isochrones (SciPy's
    # Dijkstra and the contouring hold Python's lock, so threads would take turns); notes keep
    # their order (stations off the network are noted again there in the building pass's
    # words: a run keeps a note once). The missing buildings are ordered beside the child but
    # taken after it: taken beside it, a city's objects would be copied page by page for the
    # parent (each object's reference count changes), and both processes' memory would peak
    # together.
    kinds = _by_kind(stations, graphs, out, params)
    draw = isochrones and bool(kinds)
    worth = len(buildings) >= runtime.FORK_MIN_ROWS
    with runtime.forked(kinds[-1], worth=worth) if draw else contextlib.nullcontext() as child:
        with runtime.collecting_notes() as later:
            if areas and len(stations):
                result.responsibility = areas_of_responsibility(
                    stations, graphs, params=params, buildings=out
                )
            if grids is not None:
                result.grid_summary = coverage_by_grid(out, grids, cells=cells)
            order = missing_order(out, target="any")  # numbers only: no object touched
            first = [draw_kind() for draw_kind in kinds[:-1]] if draw else []
        if child is not None:
            result.isochrones = _one_after_other([*first, child.result()])
    for text in later:
        runtime.note(text)
    result.missing = missing_buildings(out, target="any", grids=grids, cells=cells, order=order)
    return result


def _by_kind(stations, graphs, out, params: AccessParams) -> list[partial]:
    """One call drawing the isochrones of each station kind (in the order of
    :data:`~firegrid.spatial.access.travel_times.KINDS`), the mode chosen from all the
    stations: one after the other they give the rows one call for every station gives."""
    params = replace(params, isochrones=isochrone_mode(params, stations))
    kinds = dict.fromkeys(g.kind for g in station_groups(stations, params))
    return [
        partial(station_isochrones, stations[(stations["kind"] == kind).to_numpy()], graphs,
                params=params, buildings=out)
        for kind in kinds
    ]  # fmt: skip


def _one_after_other(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Isochrone frames as one, their rows one after the other."""
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _graphs(network, stations: gpd.GeoDataFrame, params: AccessParams) -> dict[str, RoutingGraph]:
    """The graphs of every vehicle the stations use, and the engine's (fire stations)."""
    vehicles = {g.vehicle for g in station_groups(stations, params)} | {"engine"}
    return compile_graphs(network, params, vehicles=tuple(sorted(vehicles)))
