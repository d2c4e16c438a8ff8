"""Partitions of a region: one grid cell each, plus a halo wide enough to make them exact.

The halo
--------
Every response time a region run reports is at most the *horizon* ``H`` (seconds; by default
twice the longest target, 600 s, beyond which no figure FireGrid reports changes — coverage
counts within the targets, the risk index's shortfall score is capped at one target's
shortfall; ``[region] horizon_s`` may set it, down to the longest target); a longer time is
reported as "beyond the horizon" (NaN), see :mod:`firegrid.region.horizon`. A responder never moves
faster than ``v`` (m/s), the fastest speed any vehicle profile allows: its ceiling
``max_speed_kmh × congestion_factor / 3.6``, or ``access_speed_mps`` on the legs between a
point and its street, whichever is larger (engine defaults: 60 km/h × 0.75 = 12.5 m/s).
Turnout adds time, not distance. So a station that reaches a building within ``H`` lies
within ``R = v × H`` metres of it in a straight line (7,500 m by default), and so does every
street the route uses and the station's own access leg.

A partition therefore reads

- its **buildings**: those whose representative point lies in its cell (the grid assignment
  every per-grid figure uses), so each building is in exactly one partition;
- **stations, hydrants and water sources** within ``R`` of the cell (the water reach, twice
  the larger protection radius plus the snapping legs, is far below ``R`` with any sane
  parameters; the larger of the two is used);
- the **street network** whose edges come within ``2 R`` of the cell. ``2 R``, not ``R``:
  a station inside ``R`` whose nearest street lies beyond ``2 R`` would otherwise snap onto
  another street; with ``2 R`` kept, such a station's access leg alone is longer than ``R``,
  so it is beyond the horizon in both runs. Every node within ``2 R`` keeps all its streets,
  so intersection delays and turn restrictions on any route shorter than ``R`` are those of
  the whole network.

The **water step** reads less: every distance to fire water it reports is at most the water
horizon ``W`` (metres along streets, access legs included, see :func:`water_horizon_m`), so a
hose route it reports lies within ``W`` of a building, and a hydrant it counts has its nearest
street within ``2 W``. Its streets are those within ``2 × (W + 2 × max_snap_m)`` of the extent
of the cell and its buildings (1.2 km with the defaults, against 15 km for travel times),
clipped on the worker from the window's streets, with the hydrants and water sources within
``W + 2 × max_snap_m`` (:meth:`Window.water_reach`).

Within the horizon a partition's times are therefore those of the whole region to the bit
(the same route over the same edge costs). Ties between equally near streets when snapping
are the one exception the proof does not cover (measure zero with real coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.grids import surface_points
from firegrid.spatial.network.profiles import PROFILE_NAMES, AccessParams, TagColumn
from firegrid.spatial.network.routing import GraphTable
from firegrid.spatial.water.params import WaterParams

# Layers a partition reads inside its halo (the others stay with the client: hazards and
# incidents only feed the risk step, which runs once over the whole region).
HALO_LAYERS = ("stations", "hydrants", "water_sources")


@dataclass(frozen=True)
class Halo:
    """How far a partition reads beyond its cell, and why.

    Attributes
    ----------
    horizon_s : float
        Longest time (seconds, turnout included) the run reports exactly.
    speed_mps : float
        Fastest speed of any profile (m/s).
    points_m : float
        Stations, hydrants and water sources within this many metres of the cell are read.
    network_m : float
        Street edges within this many metres of the cell are read (``2 × points_m``).
    water_m : float
        Distances to fire water reported exactly up to this many metres (along streets).
    water_network_m : float
        Street edges within this many metres of the cell and its buildings are what the water
        step reads (``2 × (water_m + 2 × max_snap_m)``).
    """

    horizon_s: float
    speed_mps: float
    points_m: float
    network_m: float
    water_m: float
    water_network_m: float


def region_halo(
    access: AccessParams, water: WaterParams, *, horizon_s: float | None = None
) -> Halo:
    """The halo of every partition of a run with these parameters (see the module notes).

    Parameters
    ----------
    access, water : AccessParams, WaterParams
        The run's ``[access]`` and ``[water]``.
    horizon_s : float, optional
        Longest time reported exactly (seconds); at least the longest target. Default
        :func:`default_horizon_s`: twice the longest target.

    Returns
    -------
    Halo
        ``points_m = max(v × H, water_m + 2 × max_snap_m)``, ``network_m = 2 × points_m`` and
        ``water_network_m = 2 × (water_m + 2 × max_snap_m)``, metres; ``v`` the fastest
        profile speed (m/s), ``H`` the horizon (s).

    Raises
    ------
    ConfigError
        A horizon shorter than the longest target (coverage would not be exact).
    """
    longest = max(access.target_micro_s, access.target_fire_s)
    horizon = default_horizon_s(access) if horizon_s is None else float(horizon_s)
    if not horizon >= longest:
        raise ConfigError(
            f"[region] horizon_s = {horizon_s!r} is shorter than the longest target "
            f"({longest:g} s): coverage within the targets would not be exact"
        )
    speed = max(
        max(p.max_speed_kmh * p.congestion_factor / 3.6, p.access_speed_mps)
        for p in (access.profile(name) for name in PROFILE_NAMES)
    )
    water_m = water_horizon_m(water)
    snap_legs = 2.0 * access.max_snap_m
    points = max(speed * horizon, water_m + snap_legs)
    return Halo(horizon, speed, points, 2.0 * points, water_m, 2.0 * (water_m + snap_legs))


def default_horizon_s(access: AccessParams) -> float:
    """Twice the longest target (seconds): the risk index scores a response shortfall as
    ``min(shortfall / target, 1)``, so every time up to twice its target changes the index
    and none beyond it does — with this horizon a region's risk index is that of a run
    without one."""
    return 2.0 * max(access.target_micro_s, access.target_fire_s)


def water_horizon_m(water: WaterParams) -> float:
    """Distances to fire water reported exactly (metres along streets): the larger protection
    radius × ``score_full_ratio`` (2), where a building's ``water_deficiency`` reaches 1."""
    return water.score_full_ratio * max(water.hydrant_radius_m, water.source_radius_m)


@dataclass
class Window:
    """What one partition reads: its cell, its buildings, the layers and streets of its halo.

    Attributes
    ----------
    name : str
        The subdistrict's name (the cell's ``name``, else its ``grid_id``).
    grid_id : str
        The cell's ``grid_id``.
    cell : shapely geometry
        The cell's polygon (working CRS, metres).
    layers : dict name -> GeoDataFrame
        ``grids`` (the cell), ``buildings`` (those in the cell) and the halo layers.
    cells : DataFrame
        The buildings' cell at the partition level (``grid_id_l<level>``).
    network : GraphTable or None
        The streets within ``Halo.network_m`` of the cell.
    water_network_m : float
        The water step's streets are those within this many metres (``Halo.water_network_m``)
        of the cell and its buildings.
    owned : dict name -> Index
        Of each halo layer, the rows lying in the cell: the partition reports their columns.
    """

    name: str
    grid_id: str
    cell: Any
    layers: dict[str, gpd.GeoDataFrame]
    cells: pd.DataFrame
    network: GraphTable | None
    water_network_m: float
    owned: dict[str, pd.Index] = field(default_factory=dict)

    @property
    def size(self) -> dict[str, int]:
        """Rows per layer and the network's nodes and edges, for the run's report."""
        out = {k: len(v) for k, v in self.layers.items() if k != "grids"}
        if self.network is not None:
            out.update(nodes=self.network.n_nodes, edges=self.network.n_edges)
        return out

    def water_reach(self) -> tuple[GraphTable | None, dict[str, gpd.GeoDataFrame]]:
        """What the water step reads (see the module notes): the streets of :attr:`network`
        within :attr:`water_network_m` of the cell and its buildings' extent, and the hydrants
        and water sources within half that (a hydrant farther away reaches no building of the
        cell within the water horizon; read with the shorter streets, it would only be noted
        as far from every street).

        Returns
        -------
        network : GraphTable or None
        layers : dict name -> GeoDataFrame
            ``hydrants`` and ``water_sources`` where the window has them.
        """
        points = {k: v for k, v in self.layers.items() if k in ("hydrants", "water_sources")}
        if self.network is None:
            return None, points
        bounds = np.vstack([self.cell.bounds, self.layers["buildings"].total_bounds])
        extent = shapely.box(*np.nanmin(bounds[:, :2], axis=0), *np.nanmax(bounds[:, 2:], axis=0))
        near = {k: v[shapely.dwithin(v.geometry.to_numpy(), extent, self.water_network_m / 2)]
                for k, v in points.items()}  # fmt: skip
        return NetworkClipper(self.network).within(extent, self.water_network_m), near


def partition_cells(grids: gpd.GeoDataFrame, level: int, *, source: str = "grids layer"):
    """The cells of grid level ``level``: one partition each, with a unique name.

    Raises
    ------
    InputError
        When the grids layer has no cell of that level (naming the levels it has).
    """
    lv = pd.to_numeric(grids["level"], errors="coerce")
    cells = grids[lv == level]
    if not len(cells):
        have = sorted(int(v) for v in lv.dropna().unique())
        raise InputError(
            f"[region] partition_level = {level}, but the grids have no cell of that level "
            f"(levels present: {have})",
            file=source,
        )
    ids = cells["grid_id"].astype(str)
    names = cells["name"].astype("string").fillna(ids) if "name" in cells else ids
    names = names.where(~names.duplicated(keep=False), names + " (" + ids + ")")
    return cells.assign(partition=names.to_numpy())


def iter_windows(district, network: GraphTable | None, *, level: int, halo: Halo):
    """One :class:`Window` per cell of grid level ``level`` of a loaded region, made as needed.

    A generator: the runner takes a window only when a worker is free for it, so the client
    holds a few windows at a time, never all of them (each carries the streets of its halo,
    a large share of a region's network).

    Parameters
    ----------
    district : District
        The whole region, read and validated once (layers in the working CRS, metres; its
        ``cells`` assign each building to a cell at every level).
    network : GraphTable or None
        The whole region's streets, read once.
    level : int
        The partition level.
    halo : Halo
        From :func:`region_halo`.

    Yields
    ------
    Window, in the grids layer's order (as many as :func:`partition_cells` has rows).
    """
    cells = partition_cells(district.layers["grids"], level)
    column = f"grid_id_l{level}"
    members = _members(district.cells[column])
    clipper = NetworkClipper(network) if network is not None else None
    for row in cells.itertuples():  # one pass per partition, not per building
        cell = row.geometry
        mine = members.get(str(row.grid_id), np.zeros(0, dtype=np.int64))
        layers = {"grids": cells.loc[[row.Index]].drop(columns="partition")}
        layers["buildings"] = district.layers["buildings"].iloc[mine]
        owned = {}
        for name in HALO_LAYERS:
            if name in district.layers:
                layer = district.layers[name]
                geoms = layer.geometry.to_numpy()
                near = shapely.dwithin(geoms, cell, halo.points_m)
                layers[name] = layer[near]
                inside = shapely.intersects(cell, surface_points(geoms[near]))
                owned[name] = layer.index[near][inside]
        net = clipper.within(cell, halo.network_m) if clipper is not None else None
        subset = district.cells.iloc[mine][[column]]
        yield Window(row.partition, str(row.grid_id), cell, layers, subset, net,
                     halo.water_network_m, owned)  # fmt: skip


def _members(cell_of: pd.Series) -> dict[str, np.ndarray]:
    """Row positions of the buildings of each cell (one sort, not one scan per cell)."""
    codes, ids = pd.factorize(cell_of.astype(object), use_na_sentinel=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(ids) + 1))
    return {str(ids[i]): order[bounds[i] : bounds[i + 1]] for i in range(len(ids))}


class NetworkClipper:
    """Cuts windows out of one GraphTable: the edges that come within a distance of a cell."""

    def __init__(self, table: GraphTable) -> None:
        self.table = table
        lines = np.asarray(table.geom, dtype=object).copy()
        straight = np.flatnonzero(pd.isna(lines))
        if len(straight):
            ends = np.stack([table.xy[table.u[straight]], table.xy[table.v[straight]]], axis=1)
            lines[straight] = shapely.linestrings(ends)
        self.tree = shapely.STRtree(lines)

    def within(self, cell, distance_m: float) -> GraphTable:
        edges = np.sort(self.tree.query(cell, predicate="dwithin", distance=distance_m))
        return clip_network(self.table, edges)


def clip_network(table: GraphTable, edges: np.ndarray) -> GraphTable:
    """The network of the edges at positions ``edges`` (and their end nodes) only.

    Node order, edge order, tags and geometry are those of ``table`` (so costs are the same
    floats); turn restrictions and barrier nodes are kept where all their edges and nodes are.
    """
    edges = np.asarray(edges, dtype=np.int64)
    nodes = np.unique(np.concatenate([table.u[edges], table.v[edges]]))
    new_node = np.full(table.n_nodes, -1, dtype=np.int64)
    new_node[nodes] = np.arange(len(nodes))
    new_edge = np.full(table.n_edges, -1, dtype=np.int64)
    new_edge[edges] = np.arange(len(edges))
    tags = {k: _take_tag(c, edges) for k, c in table.tags.items()}
    return GraphTable(
        node_ids=table.node_ids[nodes],
        xy=table.xy[nodes],
        edges=table.edges.iloc[edges].reset_index(drop=True),
        u=new_node[table.u[edges]],
        v=new_node[table.v[edges]],
        geom=np.asarray(table.geom, dtype=object)[edges],
        length=table.length[edges],
        crs=table.crs,
        highway=tags["highway"],
        service=tags["service"],
        maxspeed=tags["maxspeed"],
        tags=tags,
        restrictions=_kept_restrictions(table.restrictions, new_edge, new_node),
        barrier_nodes=_kept(new_node, table.barrier_nodes),
        node_tags={k: _take_tag(c, nodes) for k, c in table.node_tags.items()},
        lonlat=None if table.lonlat is None else table.lonlat[nodes],
        stats=dict(table.stats),
        edge_segment=None
        if table.edge_segment is None
        else np.unique(np.asarray(table.edge_segment)[edges], return_inverse=True)[1],
    )


def _take_tag(column: TagColumn, idx: np.ndarray) -> TagColumn:
    return TagColumn(column.codes[idx], column.uniques)


def _kept(new_index: np.ndarray, old: np.ndarray) -> np.ndarray:
    mapped = new_index[np.asarray(old, dtype=np.int64)]
    return mapped[mapped >= 0]


def _kept_restrictions(r: pd.DataFrame, new_edge: np.ndarray, new_node: np.ndarray):
    f = new_edge[r["from_edge"].to_numpy(dtype=np.int64)]
    t = new_edge[r["to_edge"].to_numpy(dtype=np.int64)]
    via = new_node[r["via_node"].to_numpy(dtype=np.int64)]
    keep = (f >= 0) & (t >= 0) & (via >= 0)
    return (
        r[keep]
        .assign(from_edge=f[keep], to_edge=t[keep], via_node=via[keep])
        .reset_index(drop=True)
    )
