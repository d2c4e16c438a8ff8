"""Response times per building from fire and micro-stations, coverage per grid, buildings that miss.

Each station kind travels with its own profile: fire stations with the engine profile,
micro-stations with their ``vehicle`` (e-bike or foot). A building joins the network at the
nearest point of the nearest usable street; its straight access leg is walked at the profile's
``access_speed_mps``. Each station adds its own ``turnout_s``. Times come from one multi-source
Dijkstra pass per vehicle (fastest station) and a cut-off pass (how many stations reach within
target), both on the compiled graph of :mod:`firegrid.spatial.network.routing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from firegrid.spatial.errors import InputError
from firegrid.spatial.io.crs import require_projected, require_same_crs
from firegrid.spatial.io.grids import aggregate_by_grid, assign_grids
from firegrid.spatial.io.layers import ACCESS_COLUMNS
from firegrid.spatial.network.profiles import PROFILE_NAMES, AccessParams
from firegrid.spatial.network.routing import (
    GraphTable,
    RoutingGraph,
    Snap,
    cost_matrix,
    graph_table,
    nearest_cost,
    snap,
    snap_graphs,
    warn_far,
)

KINDS = ("fire_station", "micro_station")
# Output column names per kind (canonical names of the brief; targets are configurable but the
# names keep the "3min"/"5min" of the standard's wording). Public: isochrones and areas read
# the same columns.
COLS = {
    "fire_station": dict(t="t_fire_s", sid="fire_station_id", n="n_fire_5min",
                         cov="covered_5min", short="shortfall_5min_s", label="fire"),
    "micro_station": dict(t="t_micro_s", sid="micro_station_id", n="n_micro_3min",
                          cov="covered_3min", short="shortfall_3min_s", label="micro"),
}  # fmt: skip


@dataclass
class StationGroup:
    """Stations of one kind travelling with one vehicle profile."""

    kind: str
    vehicle: str
    rows: np.ndarray  # positions in the stations layer
    turnout_s: np.ndarray
    station_id: np.ndarray


# ---------------------------------------------------------------------- graphs and stations
def compile_graphs(
    network: GraphTable | nx.MultiDiGraph | Mapping[str, RoutingGraph],
    params: AccessParams | None = None,
    *,
    vehicles: tuple[str, ...] = PROFILE_NAMES,
) -> dict[str, RoutingGraph]:
    """Compile the road network once per vehicle profile (seconds as cost).

    Parameters
    ----------
    network : GraphTable, networkx.MultiDiGraph or mapping of vehicle -> RoutingGraph
        The network read once (:func:`firegrid.spatial.network.load.read_network`), a projected osmnx graph
        (metres), or graphs already compiled (returned as they are, compiling only vehicles
        still missing is impossible without the network).
    params : AccessParams, optional
    vehicles : tuple of str
        Which of ``engine``, ``ebike``, ``foot`` to compile.

    Returns
    -------
    dict
        vehicle name -> RoutingGraph; all share the table's segments. Compiled once per
        table and profile (:meth:`GraphTable.compiled`): asking again returns the same graphs.
    """
    params = params or AccessParams()
    if isinstance(network, Mapping):
        missing = [v for v in vehicles if v not in network]
        if missing:
            raise InputError(f"no compiled road graph for vehicle(s) {missing}")
        return dict(network)
    table = graph_table(network)  # an osmnx graph is read once for all profiles
    return {v: table.compiled(params.profile(v)) for v in vehicles}


def station_groups(stations: gpd.GeoDataFrame, params: AccessParams) -> list[StationGroup]:
    """Split the stations layer by kind and vehicle, resolving defaults.

    Fire stations travel by engine; micro-stations by their ``vehicle`` (``ebike`` or ``foot``,
    ``engine`` allowed for a micro-station with a small truck), ``params.default_micro_vehicle``
    when missing. A missing ``turnout_s`` takes the profile's ``turnout_s``.
    """
    if "kind" not in stations:
        raise InputError("the stations layer has no 'kind' column", column="kind")
    kind = stations["kind"].astype(object).to_numpy()
    unknown = sorted({str(k) for k in kind if k not in KINDS})
    if unknown:
        raise InputError(
            f"station kind(s) {unknown} unknown; expected fire_station or micro_station",
            column="kind",
        )
    if "vehicle" in stations:
        vehicle = stations["vehicle"].astype(object).to_numpy()
    else:
        vehicle = np.full(len(stations), None, dtype=object)
    vehicle = np.where(pd.isna(vehicle) | (vehicle == ""), None, vehicle)
    vehicle = np.where(
        kind == "fire_station",
        "engine",
        np.where(vehicle == None, params.default_micro_vehicle, vehicle),  # noqa: E711
    )
    bad = sorted({str(v) for v in vehicle if v not in PROFILE_NAMES})
    if bad:
        raise InputError(f"station vehicle(s) {bad} unknown; expected {list(PROFILE_NAMES)}",
                         column="vehicle")  # fmt: skip
    if "turnout_s" in stations:
        turnout = pd.to_numeric(stations["turnout_s"], errors="coerce").to_numpy(dtype=float)
    else:
        turnout = np.full(len(stations), np.nan)
    ids = station_ids(stations)
    groups = []
    for k in KINDS:
        for v in PROFILE_NAMES:
            rows = np.flatnonzero((kind == k) & (vehicle == v))
            if len(rows):
                t = turnout[rows]
                t = np.where(np.isfinite(t), t, params.profile(v).turnout_s)
                groups.append(StationGroup(k, v, rows, t, ids[rows]))
    return groups


def snap_stations(
    rg: RoutingGraph, stations: gpd.GeoDataFrame, group: StationGroup, params: AccessParams
) -> Snap:
    """Snap a station group onto its graph, warning about any station off the network."""
    s = snap(rg, stations.geometry.iloc[group.rows])
    warn_far(group.station_id, s.access_m, params.station_snap_warn_m, f"{group.kind}(s)")
    return s


# ---------------------------------------------------------------------- building access
def building_access(
    buildings: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame,
    network: nx.MultiDiGraph | Mapping[str, RoutingGraph],
    *,
    params: AccessParams | None = None,
) -> gpd.GeoDataFrame:
    """Travel time to every building from the fastest fire station and micro-station.

    Parameters
    ----------
    buildings : GeoDataFrame
        Polygons or points in the working (projected, metric) CRS. Polygons join the network
        from a point on their surface.
    stations : GeoDataFrame
        Points with ``station_id``, ``kind`` and optionally ``vehicle``, ``turnout_s``
        (seconds), same CRS.
    network : networkx.MultiDiGraph or mapping vehicle -> RoutingGraph
        Projected osmnx graph, or graphs from :func:`compile_graphs`.
    params : AccessParams, optional
        Targets, snapping limits and vehicle profiles (config ``[access]``).

    Returns
    -------
    GeoDataFrame
        A copy of ``buildings`` with :data:`ACCESS_COLUMNS`: ``t_fire_s``/``t_micro_s``
        (seconds, turnout included; NaN where unreachable), ``fire_station_id``/
        ``micro_station_id``, ``n_fire_5min``/``n_micro_3min`` (stations reaching within
        target), ``covered_5min``/``covered_3min``, ``shortfall_5min_s``/``shortfall_3min_s``
        (seconds beyond target, 0 when covered, NaN if unreachable), ``access_m`` (metres to the
        nearest street any responder uses) and ``access_issue`` ("" or the reason).

    Warns
    -----
    UserWarning
        For each station farther than ``params.station_snap_warn_m`` from the network, naming
        it and its snapping distance.
    """
    params = params or AccessParams()
    out, _ = _building_access(buildings, stations, network, params)
    return out


def _building_access(buildings, stations, network, params):
    require_projected(buildings, "buildings")
    require_projected(stations, "stations")
    groups = station_groups(stations, params)
    needed = tuple(sorted({g.vehicle for g in groups} | {"engine"}))
    graphs = compile_graphs(network, params, vehicles=needed)
    crs = next(iter(graphs.values())).crs
    require_same_crs(buildings, crs, "buildings", "the road network")
    require_same_crs(stations, crs, "stations", "the road network")
    n = len(buildings)
    geoms = buildings.geometry.to_numpy()
    snaps = snap_graphs({v: graphs[v] for v in needed}, geoms, max_snap_m=params.max_snap_m)
    # The input's columns shared, not copied (pandas copies one on write): a city's frame
    # is not held twice.
    out = buildings.copy(deep=False)
    issues = {}
    for kind in KINDS:
        cols = COLS[kind]
        target = kind_target_s(kind, params)
        kind_groups = [g for g in groups if g.kind == kind]
        best, who, count, ids = first_station_and_count(
            kind_groups, graphs, stations, snaps, params=params, target_s=target
        )
        reach = np.isfinite(best)
        t_s = np.where(reach, best, np.nan)
        sid = np.full(n, None, dtype=object)
        sid[reach] = ids[who[reach]]
        out[cols["t"]] = t_s
        out[cols["sid"]] = pd.Series(sid, index=out.index, dtype="str")
        out[cols["n"]] = count
        out[cols["cov"]] = reach & (best <= target)
        out[cols["short"]] = np.where(reach, np.maximum(0.0, t_s - target), np.nan)
        if kind_groups:
            snapped = np.zeros(n, dtype=bool)
            far = np.full(n, np.inf)
            for v in {g.vehicle for g in kind_groups}:
                snapped |= snaps[v].ok
                far = np.fmin(far, snaps[v].access_m)
            issues[kind] = _issue_text(reach, snapped, far)
        else:
            issues[kind] = (
                np.full(n, f"no {kind} in the stations layer", dtype=object),
                np.ones(n, dtype=bool),
            )
    access_m = np.full(n, np.nan)
    for s in snaps.values():
        access_m = np.fmin(access_m, s.access_m)
    out["access_m"] = access_m
    out["access_issue"] = pd.Series(
        _combine_issues(issues["fire_station"], issues["micro_station"], geoms),
        index=out.index,
        dtype="str",
    )
    out = out[[c for c in out.columns if c not in ACCESS_COLUMNS] + list(ACCESS_COLUMNS)]
    return out, dict(graphs=graphs, snaps=snaps, groups=groups)


def kind_target_s(kind: str, params: AccessParams) -> float:
    """The response target of a station kind, seconds (turnout included)."""
    return params.target_fire_s if kind == "fire_station" else params.target_micro_s


def first_station_and_count(
    groups: list[StationGroup],
    graphs: Mapping[str, RoutingGraph],
    stations: gpd.GeoDataFrame,
    places: Mapping[str, Snap],
    *,
    params: AccessParams,
    target_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fastest station of ``groups`` to each place, and how many arrive within a target.

    Parameters
    ----------
    groups : list of StationGroup
        Stations of one kind, grouped by vehicle (:func:`station_groups`).
    graphs : mapping vehicle -> RoutingGraph
        Compiled profiles, projected CRS (metres).
    stations : GeoDataFrame
    places : mapping vehicle -> Snap
        The places snapped onto each vehicle's graph (one point set, the same order).
    params : AccessParams
    target_s : float
        Seconds (turnout included) within which a station counts.

    Returns
    -------
    best : numpy.ndarray
        Seconds from the fastest station (inf where none arrives).
    who : numpy.ndarray
        Index of that station into ``ids`` (-1 where none).
    count : numpy.ndarray
        Stations arriving within ``target_s``.
    ids : numpy.ndarray
        Station ids, the groups' stations one group after another.
    """
    n = len(next(iter(places.values()))) if places else 0
    best = np.full(n, np.inf)
    who = np.full(n, -1, dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    ids = np.empty(0, dtype=object)
    for g in groups:
        rg, to = graphs[g.vehicle], places[g.vehicle]
        ss = snap_stations(rg, stations, g, params)
        t, w = nearest_cost(rg, ss, to, source_offset=g.turnout_s)
        better = t < best
        best[better] = t[better]
        who[better] = w[better] + len(ids)
        count += cost_matrix(rg, ss, to, cutoff=target_s, source_offset=g.turnout_s).getnnz(axis=0)
        ids = np.concatenate([ids, g.station_id.astype(object)])
    return best, who, count, ids


def _issue_text(reach: np.ndarray, snapped: np.ndarray, far_m: np.ndarray):
    """Reason per building (object array, "" when fine) and the mask of flagged buildings."""
    text = np.full(len(reach), "", dtype=object)
    too_far = ~snapped & np.isfinite(far_m)
    if too_far.any():
        metres = pd.Series(np.round(far_m[too_far]).astype(np.int64)).astype(str)
        text[too_far] = ("too far from road (" + metres + " m)").to_numpy(dtype=object)
    cut_off = snapped & ~reach
    text[cut_off] = "disconnected"
    return text, too_far | cut_off


def _combine_issues(fire, micro, geoms: np.ndarray) -> np.ndarray:
    """One reason per building: shared reasons once, else prefixed by station kind."""
    (f_txt, f_flag), (m_txt, m_flag) = fire, micro
    out = np.full(len(f_txt), "", dtype=object)
    idx = np.flatnonzero(f_flag | m_flag)  # only flagged buildings need strings
    if len(idx):
        f = pd.Series(f_txt[idx], dtype=object)
        m = pd.Series(m_txt[idx], dtype=object)
        txt = np.where(
            f == m,
            f,
            np.where(
                (f != "") & (m != ""),
                "fire: " + f + "; micro: " + m,
                np.where(f != "", "fire: " + f, "micro: " + m),
            ),
        )
        out[idx] = txt
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    out[missing] = "no geometry"
    return out


def station_ids(stations: gpd.GeoDataFrame) -> np.ndarray:
    """Station ids as text (object array); ``"station 1"``, … when the layer has none."""
    if "station_id" in stations:
        return stations["station_id"].astype(str).to_numpy(dtype=object)
    return np.array([f"station {i + 1}" for i in range(len(stations))], dtype=object)


# ---------------------------------------------------------------------- grid summaries
def coverage_by_grid(
    buildings: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    *,
    cells: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Coverage shares per grid cell, every level (buildings placed in cells by
    :func:`firegrid.spatial.io.grids.assign_grids`).

    Parameters
    ----------
    buildings : GeoDataFrame
        Output of :func:`building_access` (needs ``covered_3min``, ``covered_5min``; uses
        ``residents``, travel times and shortfalls when present).
    grids : GeoDataFrame
        ``grid_id``, ``level`` (and ``name``, ``parent_id``), polygons, same CRS.
    cells : DataFrame, optional
        Building → cell table (``grid_id_l<level>`` columns, same row order), default
        :func:`firegrid.spatial.io.grids.assign_grids`.

    Returns
    -------
    GeoDataFrame
        One row per grid: ``grid_id``, ``name``, ``level``, ``parent_id``, ``n_buildings``,
        ``n_covered_3min``, ``residents``, ``share_residents_3min``, ``n_covered_5min``,
        ``share_residents_5min_fire``, ``n_unreachable``, ``max_shortfall_3min_s``,
        ``max_shortfall_5min_s`` (shares 0..1, NaN for no buildings). The shares of buildings
        and of old residential buildings covered are the risk roll-up's
        (``share_covered_3min``, ``share_covered_5min``, ``share_old_res_3min``,
        ``share_old_res_5min_fire`` of :func:`firegrid.risk.rollup.rollup`: old residential
        is defined once, by the risk features), not repeated here.
    """
    for col in ("covered_3min", "covered_5min"):
        if col not in buildings:
            raise InputError(f"buildings lack '{col}': run building_access first", column=col)
    if cells is None:
        cells, _ = assign_grids(buildings, grids)
    members, how = _coverage_members(buildings)
    agg = aggregate_by_grid(cells, members, how, grid_ids=grids["grid_id"])
    out = _coverage_table(grids, agg)
    return gpd.GeoDataFrame(out, geometry=grids.geometry.to_numpy(), crs=grids.crs)


def _coverage_members(buildings: gpd.GeoDataFrame):
    """Per building, what it adds to its cells' coverage figures, and how each rolls up."""
    n = len(buildings)
    b = pd.DataFrame(index=pd.RangeIndex(n))
    c3 = buildings["covered_3min"].fillna(False).astype(bool).to_numpy()
    c5 = buildings["covered_5min"].fillna(False).astype(bool).to_numpy()
    res = (
        pd.to_numeric(buildings["residents"], errors="coerce").fillna(0).to_numpy(dtype=float)
        if "residents" in buildings
        else np.zeros(n)
    )
    unreach = np.zeros(n, dtype=bool)
    for c in ("t_micro_s", "t_fire_s"):
        if c in buildings:
            unreach |= pd.to_numeric(buildings[c], errors="coerce").isna().to_numpy()
    b["n_buildings"] = 1
    b["n_covered_3min"], b["n_covered_5min"] = c3, c5
    b["residents"], b["res3"], b["res5"] = res, res * c3, res * c5
    b["n_unreachable"] = unreach
    how = dict.fromkeys(b.columns, "sum")
    for c, src in (("max_shortfall_3min_s", "shortfall_3min_s"),
                   ("max_shortfall_5min_s", "shortfall_5min_s")):  # fmt: skip
        b[c] = (
            pd.to_numeric(buildings[src], errors="coerce").to_numpy(dtype=float)
            if src in buildings
            else np.nan
        )
        how[c] = "max"
    return b, how


def _coverage_table(grids: gpd.GeoDataFrame, agg: pd.DataFrame) -> pd.DataFrame:
    """The per-grid coverage table from the members' sums (shares NaN for no members)."""
    count_cols = ["n_buildings", "n_covered_3min", "n_covered_5min", "n_unreachable"]
    agg[count_cols] = agg[count_cols].fillna(0).astype(np.int64)
    agg[["residents", "res3", "res5"]] = agg[["residents", "res3", "res5"]].fillna(0.0)
    return pd.DataFrame(
        {
            "grid_id": grids["grid_id"].to_numpy(),
            "name": grids["name"].to_numpy() if "name" in grids else None,
            "level": grids["level"].to_numpy(),
            "parent_id": grids["parent_id"].to_numpy() if "parent_id" in grids else None,
            "n_buildings": agg["n_buildings"].to_numpy(),
            "n_covered_3min": agg["n_covered_3min"].to_numpy(),
            "residents": agg["residents"].to_numpy(),
            "share_residents_3min": _share(agg["res3"], agg["residents"]),
            "n_covered_5min": agg["n_covered_5min"].to_numpy(),
            "share_residents_5min_fire": _share(agg["res5"], agg["residents"]),
            "n_unreachable": agg["n_unreachable"].to_numpy(),
            "max_shortfall_3min_s": agg["max_shortfall_3min_s"].to_numpy(),
            "max_shortfall_5min_s": agg["max_shortfall_5min_s"].to_numpy(),
        }
    )


def _share(num, den):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def missing_order(
    buildings: pd.DataFrame, *, target: str = "3min"
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the buildings missing a target, worst first, and their shortfalls.

    Parameters
    ----------
    buildings : DataFrame
        Output of :func:`building_access`.
    target : {"3min", "5min", "any"}
        As :func:`missing_buildings`.

    Returns
    -------
    rows : numpy.ndarray
        Positions into ``buildings``: by shortfall descending, unreachable first, ties in
        the buildings' order.
    shortfall_s : numpy.ndarray
        The larger of the relevant shortfalls of each row, seconds (inf when unreachable).
    """
    if target not in ("3min", "5min", "any"):
        raise InputError(f"target must be '3min', '5min' or 'any', got {target!r}")
    cols = {"3min": ["shortfall_3min_s"], "5min": ["shortfall_5min_s"],
            "any": ["shortfall_3min_s", "shortfall_5min_s"]}[target]  # fmt: skip
    short = np.zeros(len(buildings))
    for c in cols:
        s = pd.to_numeric(buildings[c], errors="coerce").to_numpy(dtype=float)
        short = np.maximum(short, np.where(np.isnan(s), np.inf, s))
    rows = np.flatnonzero(short > 0)
    rows = rows[np.argsort(-short[rows], kind="stable")]
    return rows, short[rows]


def missing_buildings(
    buildings: gpd.GeoDataFrame,
    *,
    target: str = "3min",
    grids: gpd.GeoDataFrame | None = None,
    cells: pd.DataFrame | None = None,
    order: tuple[np.ndarray, np.ndarray] | None = None,
) -> gpd.GeoDataFrame:
    """The buildings that miss a target, worst first.

    Parameters
    ----------
    buildings : GeoDataFrame
        Output of :func:`building_access`.
    target : {"3min", "5min", "any"}
        Micro-station 3-minute target, fire-station 5-minute target, or either.
    grids : GeoDataFrame, optional
        If given, ``grid_id_l1``, ``grid_id_l2``, … name the cell of each level holding each
        building.
    cells : DataFrame, optional
        Building → cell table of all ``buildings`` (``grid_id_l<level>`` columns, same row
        order), used with ``grids``; default :func:`firegrid.spatial.io.grids.assign_grids`.
    order : (rows, shortfall_s), optional
        :func:`missing_order` of ``buildings`` and ``target``, when computed already.

    Returns
    -------
    GeoDataFrame
        The missing buildings sorted by shortfall in seconds, descending; unreachable
        buildings (shortfall NaN, ``access_issue`` says why) first. Column ``shortfall_s`` is
        the larger of the relevant shortfalls (inf when unreachable).
    """
    rows, short = missing_order(buildings, target=target) if order is None else order
    # One take of every column: at city size most buildings miss a target, and each further
    # copy of the frame costs seconds and a city's columns in memory.
    out = buildings.take(rows)
    out["shortfall_s"] = short
    if grids is not None and len(out):
        cells = assign_grids(out, grids)[0] if cells is None else cells.iloc[rows]
        for col in sorted(cells.columns):
            out[col] = cells[col].set_axis(out.index)
    return out
