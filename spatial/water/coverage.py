"""Fire-water coverage of every building along streets, and the whole water step.

The water step (:func:`analyse_water`) puts together this module's per-building coverage and
its siblings: :mod:`~firegrid.spatial.water.hose` (the streets a hose follows, where a hose
joins them), :mod:`~firegrid.spatial.water.sources` (which hydrants and sources count),
:mod:`~firegrid.spatial.water.spacing` (hydrant spacing gaps), :mod:`~firegrid.spatial.water.zones`
(water-deficient zones) and :mod:`~firegrid.spatial.water.by_grid` (per grid cell). New hydrants
are sited by :mod:`firegrid.spatial.siting.hydrants`.

Distances a hose covers are measured **along the street network** in metres, both ways of every
street (a hose is laid on foot; one-way signs do not bind it), from the point of a building's
outline nearest to a street, along that street, to the point on the street nearest to the
hydrant or water-source intake, including both straight access legs. A straight line across a
block, a railway or a river overstates what a hose reaches.

Standards cited (GB 50974-2014《消防给水及消火栓系统技术规范》):

- §7.2.5: a municipal hydrant's protection radius shall not exceed 150 m and hydrants along a
  road shall be at most 120 m apart. §7.3.2 sets the same 150 m radius for outdoor hydrants of
  a building.
- §6.1.5 item 1: each intake of an outdoor fire pool from which engines draw water counts as
  one outdoor hydrant, its protection radius not exceeding 150 m; item 2 counts municipal
  hydrants 5-150 m from a building's outer edge (建筑外缘) towards that building.
- §4.3.4: a fire pool holds at least 50 m³ where it serves hydrants only (100 m³ otherwise).
- §4.3.7: a pool storing outdoor fire water has an intake (取水口) for engines.
- §4.4.5 and §4.4.7: natural water (天然水源) serves fire fighting only where engines can draw
  from it: an intake reached by a fire-engine road with room to turn.

Outputs on buildings (see :func:`hydrant_coverage`): ``d_hydrant_m``, ``d_hydrant_net_m``,
``hydrant_id_nearest``, ``d_water_source_m``, ``water_source_id_nearest``, ``water_covered``,
``water_deficient``, ``water_deficiency`` (0-1) and ``water_issue``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from firegrid.spatial.io.crs import require_projected
from firegrid.spatial.network.routing import (
    GraphTable,
    RoutingGraph,
    Snap,
    far_points,
    graph_table,
    nearest_cost,
    snap,
)
from firegrid.spatial.runtime import note
from firegrid.spatial.water.by_grid import water_by_grid
from firegrid.spatial.water.hose import hose_graph, nearest_per_owner, street_starts
from firegrid.spatial.water.params import WaterParams
from firegrid.spatial.water.sources import layer_ids, water_source_status, working_hydrants
from firegrid.spatial.water.spacing import hydrant_spacing_gaps
from firegrid.spatial.water.zones import district_outline, water_deficient_zones

# Relative slack on "within the radius": floating-point sums of access legs and street pieces
# (a sub-micrometre error at 150 m must not flip a building exactly on the radius).
RATIO_TOL = 1e-9


# ---------------------------------------------------------------------- coverage per building
def deficiency_score(ratio: np.ndarray, *, full_ratio: float = 2.0) -> np.ndarray:
    """Building water-deficiency score (0-1) from its distance ratio to the protection radius.

    ``ratio`` is the smaller of ``d_hydrant_net_m / hydrant_radius_m`` and
    ``d_water_source_m / source_radius_m`` (``inf`` or NaN when nothing is reachable). Covered
    buildings (ratio ≤ 1) score 0; an uncovered building scores 0.5 just beyond the radius,
    rising linearly to 1 at ``full_ratio`` × radius (300 m by default) and beyond, and 1 when
    no water is reachable. The step at the radius keeps the score consistent with the yes/no
    flag (score > 0 exactly when ``water_deficient``); the slope ranks how far the nearest
    hose would have to run.
    """
    r = np.asarray(ratio, dtype=float)
    r = np.where(np.isnan(r), np.inf, r)
    with np.errstate(invalid="ignore"):
        beyond = np.clip((r - 1.0) / (full_ratio - 1.0), 0.0, 1.0)
    return np.where(r <= 1.0 + RATIO_TOL, 0.0, 0.5 + 0.5 * beyond)


def hydrant_coverage(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph,
    buildings: gpd.GeoDataFrame,
    hydrants: gpd.GeoDataFrame | None,
    water_sources: gpd.GeoDataFrame | None = None,
    *,
    params: WaterParams | None = None,
) -> gpd.GeoDataFrame:
    """Distance from every building to the nearest working hydrant and usable water source.

    Parameters
    ----------
    network : networkx.MultiDiGraph, GraphTable or RoutingGraph
        Projected road network (see :func:`firegrid.spatial.water.hose.hose_graph`).
    buildings : GeoDataFrame
        Polygons or points in the network's projected CRS (metres).
    hydrants : GeoDataFrame or None
        ``hydrant_id``, ``status`` (only ``ok`` counts), points in the same CRS.
    water_sources : GeoDataFrame, optional
        ``source_id``, ``kind``, ``capacity_m3``, ``truck_access``; which count is decided by
        :func:`firegrid.spatial.water.sources.water_source_status`.
    params : WaterParams, optional

    Returns
    -------
    GeoDataFrame
        A copy of ``buildings`` with:

        - ``d_hydrant_m``: straight-line metres from the building (its outline; 0 when the
          hydrant stands inside it) to the nearest working hydrant; NaN without one.
        - ``d_hydrant_net_m``: metres of hose from the building's edge facing a street,
          straight to that street, along the street network (both directions), to the street
          point nearest the working hydrant and out to the hydrant; the shortest over every
          street the building and the hydrant front within ``street_facing_m``
          (:func:`firegrid.spatial.water.hose.street_starts`) and over every hydrant; NaN where none is reachable.
        - ``hydrant_id_nearest``: the hydrant giving ``d_hydrant_net_m``.
        - ``d_water_source_m`` and ``water_source_id_nearest``: the same along streets to the
          intake of the nearest usable water source (NaN without one).
        - ``water_covered``: ``d_hydrant_net_m <= hydrant_radius_m`` or
          ``d_water_source_m <= source_radius_m``; ``water_deficient`` = not covered.
        - ``water_deficiency``: 0-1 score (:func:`deficiency_score`).
        - ``water_issue``: empty when covered, else why ("beyond the protection radius along
          streets (nearest hydrant 183 m)", "no working hydrant or usable water source
          reachable", "no geometry").
    """
    params = params or WaterParams()
    rg = hose_graph(network, params=params)
    require_projected(buildings, "buildings", rg.crs)
    out = buildings.copy()
    geoms = np.asarray(out.geometry.values, dtype=object)
    has_geom = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    starts = _Starts(*street_starts(rg, geoms, reach_m=params.street_facing_m), len(out))
    hyd = _nearest_hydrant(rg, hydrants, starts, params)
    src = _nearest_source(rg, water_sources, starts, params)
    ratio = np.minimum(hyd.dist / params.hydrant_radius_m, src.dist / params.source_radius_m)
    covered = has_geom & (ratio <= 1.0 + RATIO_TOL)
    out["d_hydrant_m"] = _straight_to_hydrant(geoms, has_geom, rg, hydrants)
    out["d_hydrant_net_m"] = np.where(np.isfinite(hyd.dist), hyd.dist, np.nan)
    out["hydrant_id_nearest"] = pd.array(hyd.ids, dtype="string")
    out["d_water_source_m"] = np.where(np.isfinite(src.dist), src.dist, np.nan)
    out["water_source_id_nearest"] = pd.array(src.ids, dtype="string")
    out["water_covered"] = covered
    out["water_deficient"] = ~covered
    out["water_deficiency"] = np.where(
        has_geom, deficiency_score(ratio, full_ratio=params.score_full_ratio), 1.0
    )
    out["water_issue"] = _coverage_issue(hyd.dist, src.dist, covered, has_geom, params)
    return out


@dataclass(frozen=True)
class _Starts:
    """Where hoses may leave ``n`` geometries (:func:`firegrid.spatial.water.hose.street_starts`)."""

    owner: np.ndarray
    snap: Snap
    n: int


@dataclass(frozen=True)
class _Nearest:
    """Per building: hose metres to the nearest point of a kind (``inf`` if none) and its id."""

    dist: np.ndarray
    ids: np.ndarray

    @classmethod
    def none(cls, n: int) -> _Nearest:
        return cls(np.full(n, np.inf), np.full(n, None, dtype=object))


def _nearest_along_streets(
    rg: RoutingGraph,
    points: gpd.GeoDataFrame,
    ids: np.ndarray,
    buildings: _Starts,
    params: WaterParams,
    what: str,
) -> _Nearest:
    """One multi-source pass from every street start of ``points`` to every building start,
    then the shortest per building (a building fronting several streets takes the best)."""
    geoms = np.asarray(points.geometry.values, dtype=object)
    owner, starts = street_starts(rg, geoms, reach_m=params.street_facing_m)
    _warn_far(ids, _nearest_leg(owner, starts, len(points)), params.hydrant_snap_warn_m, what)
    cost, who = nearest_cost(rg, starts, buildings.snap)
    source = np.where(who >= 0, owner[who], -1)
    best, who = nearest_per_owner(cost, source, buildings.owner, buildings.n)
    found = np.full(buildings.n, None, dtype=object)
    found[who >= 0] = ids[who[who >= 0]]
    return _Nearest(best, found)


def _nearest_hydrant(
    rg: RoutingGraph,
    hydrants: gpd.GeoDataFrame | None,
    buildings: _Starts,
    params: WaterParams,
) -> _Nearest:
    ok = working_hydrants(hydrants)
    if not ok.any():
        return _Nearest.none(buildings.n)
    require_projected(hydrants, "hydrants", rg.crs)
    work = hydrants[ok]
    ids = layer_ids(work, "hydrant_id")
    return _nearest_along_streets(rg, work, ids, buildings, params, "hydrants")


def _nearest_source(
    rg: RoutingGraph,
    water_sources: gpd.GeoDataFrame | None,
    buildings: _Starts,
    params: WaterParams,
) -> _Nearest:
    """Every intake of a usable source (a pond's bank facing each street within reach)."""
    if water_sources is None or not len(water_sources):
        return _Nearest.none(buildings.n)
    require_projected(water_sources, "water_sources", rg.crs)
    status = water_source_status(water_sources, params=params)
    usable = status[status["source_counts"].to_numpy(dtype=bool)]
    if not len(usable):
        return _Nearest.none(buildings.n)
    ids = layer_ids(usable, "source_id")
    return _nearest_along_streets(rg, usable, ids, buildings, params, "water-source intakes")


def _straight_to_hydrant(
    geoms: np.ndarray,
    has_geom: np.ndarray,
    rg: RoutingGraph,
    hydrants: gpd.GeoDataFrame | None,
) -> np.ndarray:
    """Straight-line metres from each building's outline to the nearest working hydrant."""
    d_line = np.full(len(geoms), np.nan)
    ok = working_hydrants(hydrants)
    idx = np.flatnonzero(has_geom)
    if not ok.any() or not len(idx):
        return d_line
    require_projected(hydrants, "hydrants", rg.crs)
    tree = shapely.STRtree(np.asarray(hydrants[ok].geometry.values, dtype=object))
    (src, _), dist = tree.query_nearest(geoms[idx], all_matches=False, return_distance=True)
    d_line[idx[src]] = dist
    return d_line


def _coverage_issue(
    d_hyd, d_src, covered, has_geom, params: WaterParams
) -> pd.api.extensions.ExtensionArray:
    nearest = np.where(
        d_hyd / params.hydrant_radius_m <= d_src / params.source_radius_m, d_hyd, d_src
    )
    what = np.where(
        d_hyd / params.hydrant_radius_m <= d_src / params.source_radius_m, "hydrant", "source"
    )
    txt = pd.Series(np.where(np.isfinite(nearest), nearest, 0.0)).round(0).astype(int).astype(str)
    far = (
        "beyond the protection radius along streets (nearest "
        + pd.Series(what, dtype=object)
        + " "
        + txt
        + " m)"
    )
    issue = np.where(np.isfinite(nearest), far.to_numpy(dtype=object), "")
    issue = np.where(
        ~np.isfinite(nearest), "no working hydrant or usable water source reachable", issue
    )
    issue = np.where(covered, "", issue)
    issue = np.where(has_geom, issue, "no geometry")
    return pd.array(issue, dtype="string")


def _nearest_leg(owner: np.ndarray, starts: Snap, n: int) -> np.ndarray:
    """Per owner, the straight metres to its nearest hose street (NaN without a geometry)."""
    out = np.full(n, np.nan)
    np.fmin.at(out, owner, starts.access_m)
    return out


def _warn_far(ids: np.ndarray, dist: np.ndarray, threshold: float, what: str) -> None:
    names = far_points(ids, dist, threshold, limit=20)
    if names:
        note(f"{what} farther than {threshold:g} m from every street (check coordinates): {names}")


# ---------------------------------------------------------------------- one call for the pipeline
@dataclass
class WaterResult:
    """Everything the water step produces (all layers in the district's projected CRS).

    Attributes
    ----------
    buildings : GeoDataFrame
        Buildings with the coverage columns of :func:`hydrant_coverage`.
    hydrants : GeoDataFrame or None
        Hydrants with ``working`` (bool) and ``street_m`` (metres to the nearest hose street).
    water_sources : GeoDataFrame or None
        Sources with ``source_counts`` and ``source_issue`` (:func:`firegrid.spatial.water.sources.water_source_status`).
    gaps : GeoDataFrame
        Hydrant spacing gaps (:func:`firegrid.spatial.water.spacing.hydrant_spacing_gaps`).
    zones : GeoDataFrame
        Water-deficient zones (:func:`firegrid.spatial.water.zones.water_deficient_zones`).
    grid_summary : DataFrame or None
        Per grid cell (:func:`firegrid.spatial.water.by_grid.water_by_grid`); None without grids.
    params : WaterParams
    """

    buildings: gpd.GeoDataFrame
    hydrants: gpd.GeoDataFrame | None
    water_sources: gpd.GeoDataFrame | None
    gaps: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame
    grid_summary: pd.DataFrame | None
    params: WaterParams = field(default_factory=WaterParams)

    def headline(self) -> dict[str, Any]:
        """The headline figures for a run summary."""
        b = self.buildings
        n = len(b)
        bad = int(b["water_deficient"].sum())
        out: dict[str, Any] = {
            "buildings": n,
            "water_deficient": bad,
            "share_water_deficient": bad / n if n else float("nan"),
            "working_hydrants": int(self.hydrants["working"].sum())
            if self.hydrants is not None
            else 0,
            "spacing_gaps": len(self.gaps),
            "spacing_gap_km": float(self.gaps["length_m"].sum() / 1000.0),
            "deficient_zones": len(self.zones),
            "deficient_area_ha": float(self.zones["area_m2"].sum() / 1e4),
        }
        return out


def analyse_water(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph,
    buildings: gpd.GeoDataFrame,
    *,
    hydrants: gpd.GeoDataFrame | None = None,
    water_sources: gpd.GeoDataFrame | None = None,
    grids: gpd.GeoDataFrame | None = None,
    boundary: shapely.Geometry | None = None,
    cells: pd.DataFrame | None = None,
    params: WaterParams | None = None,
) -> WaterResult:
    """The whole water step: coverage, spacing gaps, deficient zones, grid summary.

    New hydrants for the deficient buildings are sited afterwards, from this result's
    buildings, by :func:`firegrid.spatial.siting.hydrants.propose_hydrants`.

    Parameters
    ----------
    network : networkx.MultiDiGraph, GraphTable or RoutingGraph
        Projected road network; compiled once for hose laying (:func:`firegrid.spatial.water.hose.hose_graph`).
    buildings, hydrants, water_sources, grids : GeoDataFrame
        District layers in the network's projected CRS.
    boundary : shapely geometry, optional
        District outline (default: union of the coarsest grid level).
    cells : DataFrame, optional
        Building → grid cell table for :func:`firegrid.spatial.water.by_grid.water_by_grid`.
    params : WaterParams, optional

    Returns
    -------
    WaterResult
    """
    params = params or WaterParams()
    network = _read_once(network, params)
    rg = hose_graph(network, params=params)
    if grids is not None and boundary is None:
        require_projected(grids, "grids", rg.crs)
        boundary = district_outline(grids)
    b = hydrant_coverage(network, buildings, hydrants, water_sources, params=params)
    ws = water_source_status(water_sources, params=params) if water_sources is not None else None
    gaps = hydrant_spacing_gaps(
        network, hydrants, buildings=buildings, boundary=boundary, params=params
    )
    zones = water_deficient_zones(b, grids=grids, boundary=boundary, params=params)
    summary = (
        water_by_grid(
            b, grids, water_sources, hydrants=hydrants, zones=zones, cells=cells, params=params
        )
        if grids is not None
        else None
    )
    return WaterResult(b, _hydrant_status(rg, hydrants), ws, gaps, zones, summary, params)


def _read_once(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph, params: WaterParams
) -> GraphTable | RoutingGraph:
    """The network in the form every water function reuses: a GraphTable (its hose graph is
    kept with it), or the hose graph itself for a compiled graph."""
    if isinstance(network, RoutingGraph):
        return hose_graph(network, params=params)
    if isinstance(network, nx.MultiDiGraph | nx.MultiGraph):
        return graph_table(network)
    return network


def _hydrant_status(rg: RoutingGraph, hydrants: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """Hydrants with ``working`` and ``street_m`` (metres to the nearest hose street)."""
    if hydrants is None:
        return None
    h = hydrants.copy()
    h["working"] = working_hydrants(hydrants)
    geoms = np.asarray(h.geometry.values, dtype=object)
    h["street_m"] = snap(rg, geoms).access_m if len(h) else np.zeros(0)
    return h
