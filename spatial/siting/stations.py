"""Siting new micro-stations: candidate sites, maximal coverage, minimal count, gain curve.

The question planners ask is "where do the next micro-stations go, and when does adding more
stop paying off?". Travel times come from the routing engine (:mod:`firegrid.spatial.network.routing`): every
candidate site is a source of one bounded multi-source Dijkstra batch
(:func:`firegrid.spatial.network.routing.cost_matrix` with cutoff = target − turnout), giving a sparse
candidates × buildings matrix of the pairs within the target. The covering problems are then
solved by :mod:`firegrid.spatial.siting.cover` (HiGHS MILP under a time limit, greedy with a reported gap
otherwise):

- **maximal coverage**: add ``k`` stations to maximise the buildings (or risk-weighted
  buildings) reached within the target, existing micro-stations kept;
- **minimal count**: the fewest new stations so that every building some candidate can reach
  within the target is reached;
- optional **capacities**: a new station is responsible for at most N buildings or residents
  (single-sourcing assignment MILP, :func:`firegrid.spatial.siting.cover.max_cover_capacitated`).

Buildings an existing micro-station already reaches within the target count as covered and
credit no new site. All geometry is in the district's projected working CRS (metres).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Self

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from firegrid.spatial.access.travel_times import station_groups
from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.crs import require_projected
from firegrid.spatial.network.profiles import AccessParams
from firegrid.spatial.network.routing import (
    GraphTable,
    RoutingGraph,
    graph_table,
    nearest_cost,
    snap,
)
from firegrid.spatial.params import (
    MAX_LENGTH_M,
    MAX_TIME_LIMIT_S,
    MIN_SPACING_M,
    params_from_mapping,
)
from firegrid.spatial.siting.candidates import (
    candidate_sites,
    candidate_times,
    coverage_from_times,
    dominated_candidates,
    snap_candidates,
)
from firegrid.spatial.siting.cover import (
    METHODS,
    CoverSolution,
    auto_bound,
    auto_method,
    covered_by,
    greedy_max_cover,
    max_cover,
    max_cover_capacitated,
    open_pairs,
    prepare_cover,
    set_cover,
    set_cover_capacitated,
)

CREW_VEHICLES = ("ebike", "foot")
# More new stations than any district could site: a larger k is a typo (and a huge model).
MAX_K = 10_000
# Columns siting adds to the buildings (README "Buildings — siting").
SITING_COLUMNS = (
    "siting_coverable",
    "siting_covered_before",
    "siting_covered_after",
    "siting_site_id",
    "siting_t_new_s",
)


@dataclass(frozen=True)
class SitingParams:
    """Parameters of micro-station siting: the config's ``[siting]`` section.

    Parameters
    ----------
    k : int
        New micro-stations to place in the maximal-coverage problem (and the length of the gain
        curve). 5 is a planning assumption (a subdistrict plan period adds a handful); the gain
        curve shows whether more would pay off.
    target_s : float or None
        Coverage target (seconds, turnout included). Not a key of ``[siting]``: None takes
        ``[access] target_micro_s`` (180 s, "3 minutes to the scene", 公消〔2015〕301号), the
        target existing coverage is judged by, so before and after count the same way.
    candidate_spacing_m : float
        Candidate sites are every intersection plus points at most this many metres apart along
        every street the crews can use; 0 gives intersections only. 100 m is a planning
        assumption (about one urban block face; finer spacing barely changes the optimum).
    candidate_buffer_m : float
        Generated candidates lie within this many metres of the buildings' convex hull (a station
        belongs in or next to the district it serves). 100 m, planning assumption.
    vehicle : {"ebike", "foot"} or None
        How the crews of new stations travel (profiles of
        :mod:`firegrid.spatial.network.profiles`). None (default) takes ``[access]
        default_micro_vehicle`` (``"ebike"``: micro-stations are equipped with electric
        bikes/tricycles, 公消〔2015〕301号 lists "消防电动车" among their equipment).
    turnout_s : float or None
        Seconds from alarm to departure at a new station. None (default) takes the turnout of
        the vehicle's ``[access.<vehicle>]`` profile (60 s, "1 minute to respond").
    weight : str or None
        Building column weighting coverage (e.g. ``"risk_index"``); ``None`` counts buildings.
    capacity : float or None
        Most a new station may be responsible for, in ``capacity_unit``; ``None`` (default) is
        uncapacitated. No standard fixes it; a plan may e.g. size a micro-station for about
        1,000 households.
    capacity_unit : str
        ``"buildings"`` (each building counts 1) or a numeric building column such as
        ``"residents"``.
    method : {"auto", "exact", "greedy"}
        ``"exact"`` MILP (HiGHS) under ``time_limit_s``; ``"greedy"`` heuristic with its gap
        against a bound (LP, or Lagrangian on large problems); ``"auto"`` decides by the
        problem's size (:func:`firegrid.spatial.siting.cover.auto_method`: the MILP up to
        :data:`firegrid.spatial.siting.cover.AUTO_EXACT_MAX_PAIRS` candidate-building pairs,
        :data:`firegrid.spatial.siting.cover.AUTO_EXACT_MAX_PAIRS_CAPACITATED` assignment pairs
        with capacities; greedy beyond).
    time_limit_s : float
        Wall-clock limit (seconds) of each MILP solve; 30 s. On timeout the best solution found
        is kept with the solver's gap.
    gain_curve : bool
        Solve every k' = 1 … k separately (exact where ``method`` allows) for the marginal gain
        curve; when False the curve is the greedy one (nested, cheap) plus the exact k.
    min_count : bool
        Also solve the minimal-count problem (fewest stations covering every reachable
        building).
    """

    k: int = 5
    target_s: float | None = field(default=None, metadata={"config": False})
    candidate_spacing_m: float = 100.0
    candidate_buffer_m: float = 100.0
    vehicle: str | None = None
    turnout_s: float | None = None
    weight: str | None = None
    capacity: float | None = None
    capacity_unit: str = "buildings"
    method: str = "auto"
    time_limit_s: float = 30.0
    gain_curve: bool = True
    min_count: bool = True

    def __post_init__(self) -> None:
        if (
            not (isinstance(self.k, int | np.integer) and not isinstance(self.k, bool))
            or not 0 <= self.k <= MAX_K
        ):
            raise ConfigError(
                f"[siting] k must be a whole number from 0 to {MAX_K}, got {self.k!r}"
            )
        target = np.inf if self.target_s is None else self.target_s
        checks = {
            "target_s": target > 0,
            # 0 = intersections only; below a few metres the candidates would outnumber memory.
            "candidate_spacing_m": self.candidate_spacing_m == 0
            or MIN_SPACING_M <= self.candidate_spacing_m <= MAX_LENGTH_M,
            "candidate_buffer_m": 0 <= self.candidate_buffer_m <= MAX_LENGTH_M,
            "turnout_s": self.turnout_s is None or 0 <= self.turnout_s < target,
            "time_limit_s": 0 < self.time_limit_s <= MAX_TIME_LIMIT_S,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"[siting] {key} = {getattr(self, key)!r} is out of range")
        if self.vehicle is not None and self.vehicle not in CREW_VEHICLES:
            raise ConfigError(
                f"[siting] vehicle must be one of {list(CREW_VEHICLES)}, got {self.vehicle!r}"
            )
        if self.method not in METHODS:
            raise ConfigError(
                f"[siting] method must be one of {list(METHODS)}, got {self.method!r}"
            )
        if self.capacity is not None and not self.capacity > 0:
            raise ConfigError(f"[siting] capacity must be > 0, got {self.capacity!r}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[siting]`` table; raises ConfigError naming an unknown or bad key.

        ``weight`` and ``capacity`` may be ``"none"`` (or ``""``; ``capacity`` also 0) for None.
        """
        d = dict(d or {})
        if "target_s" in d:
            raise ConfigError(
                "[siting] target_s is not set here: new stations are judged by the target of "
                "existing ones, [access] target_micro_s"
            )
        if d.get("weight") in ("", "none"):
            d["weight"] = None
        if d.get("capacity") in ("", "none", 0):
            d["capacity"] = None
        return params_from_mapping(cls, d, section="siting")

    def using(self, access: AccessParams) -> SitingParams:
        """These parameters with what ``[access]`` defines filled in where they are None: the
        target (``target_micro_s``), the crews' vehicle (``default_micro_vehicle``) and its
        profile's turnout."""
        vehicle = self.vehicle or access.default_micro_vehicle
        return replace(
            self,
            target_s=access.target_micro_s if self.target_s is None else self.target_s,
            vehicle=vehicle,
            turnout_s=access.profile(vehicle).turnout_s
            if self.turnout_s is None
            else self.turnout_s,
        )


@dataclass(eq=False)
class SitingResult:
    """Everything :func:`site_micro_stations` found.

    Attributes
    ----------
    sites : GeoDataFrame
        The maximal-coverage proposal, one point per new station (see :func:`sites_layer`).
    min_count_sites : GeoDataFrame or None
        The minimal-count proposal (same columns), when ``params.min_count``.
    curve : DataFrame
        The marginal gain curve (see :func:`gain_curve`).
    buildings : GeoDataFrame
        A copy of the buildings with ``siting_coverable``, ``siting_covered_before``,
        ``siting_covered_after``, ``siting_site_id``, ``siting_t_new_s``.
    candidates : GeoDataFrame
        Every candidate site with ``reach_buildings`` and ``reach_weight`` (what it alone would
        reach within the target, existing coverage ignored).
    max_cover, min_count : CoverSolution
        The raw solutions (indices refer to ``candidates`` rows and ``buildings`` rows).
    times : scipy.sparse.csr_matrix
        Candidates × buildings seconds (turnout included) for pairs within the target.
    params : SitingParams
    timings : dict
        Seconds spent per stage.
    n_candidates_solved : int
        Candidates left in the optimisation once dominated ones are dropped (uncapacitated).
    """

    sites: gpd.GeoDataFrame
    min_count_sites: gpd.GeoDataFrame | None
    curve: pd.DataFrame
    buildings: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    max_cover: CoverSolution
    min_count: CoverSolution | None
    times: sp.csr_matrix
    params: SitingParams
    timings: dict[str, float] = field(default_factory=dict)
    n_candidates_solved: int = 0

    def building_columns(self) -> pd.DataFrame:
        """The siting columns (:data:`SITING_COLUMNS`) per building, on the buildings' index.

        ``siting_coverable`` (bool): some candidate, or an existing micro-station, reaches it
        within the target; ``siting_covered_before`` / ``siting_covered_after`` (bool):
        reached before / after the proposed sites; ``siting_site_id``: the proposed site
        serving it ("" if none); ``siting_t_new_s``: seconds from that site (NaN if none).
        """
        return pd.DataFrame(self.buildings[list(SITING_COLUMNS)])

    def summary(self) -> dict[str, Any]:
        """Headline figures: coverage before/after, sites, method, gap, minimal count."""
        b = self.buildings
        n = len(b)
        out = {
            "buildings": n,
            "candidates": len(self.candidates),
            "candidates_solved": self.n_candidates_solved,
            "covered_before": int(b["siting_covered_before"].sum()),
            "covered_after": int(b["siting_covered_after"].sum()),
            "coverable": int(b["siting_coverable"].sum()),
            "new_sites": len(self.sites),
            "method": self.max_cover.method,
            "optimal": bool(self.max_cover.optimal),
            "gap": float(self.max_cover.gap),
            "objective": float(self.max_cover.objective),
        }
        if self.min_count is not None:
            out.update(
                min_count=int(self.min_count.objective),
                min_count_method=self.min_count.method,
                min_count_optimal=bool(self.min_count.optimal),
                min_count_gap=float(self.min_count.gap),
            )
        return out


# ---------------------------------------------------------------------- existing coverage
def existing_micro_times(
    network: nx.MultiDiGraph | GraphTable,
    buildings: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame | None,
    *,
    access: AccessParams | None = None,
    graphs: dict[str, RoutingGraph] | None = None,
) -> np.ndarray:
    """Seconds from the fastest existing micro-station to each building (``inf`` if none).

    The access step's model (:func:`firegrid.spatial.access.travel_times.station_groups`): each station travels with
    its own ``vehicle`` profile (``access.default_micro_vehicle`` when missing) and adds its own
    ``turnout_s`` (its profile's turnout when missing); buildings farther than
    ``access.max_snap_m`` from every street get ``inf``. Equals the access step's ``t_micro_s``.
    """
    access = access or AccessParams()
    best = np.full(len(buildings), np.inf)
    if stations is None or len(stations) == 0:
        return best
    groups = [g for g in station_groups(stations, access) if g.kind == "micro_station"]
    graphs = graphs if graphs is not None else {}
    table = graph_table(network) if groups else None  # an osmnx graph is read once, here
    for g in groups:
        rg = graphs.get(g.vehicle)
        if rg is None:
            rg = graphs[g.vehicle] = table.compiled(access.profile(g.vehicle))
        bsnap = snap(rg, buildings, max_snap_m=access.max_snap_m)
        ssnap = snap(rg, stations.geometry.iloc[g.rows])
        t, _ = nearest_cost(rg, ssnap, bsnap, source_offset=g.turnout_s)
        best = np.minimum(best, t)
    return best


# ---------------------------------------------------------------------- curve and layers
def gain_curve(
    cover,
    k: int,
    *,
    weights: np.ndarray | None = None,
    existing_covered: np.ndarray | None = None,
    method: str = "auto",
    time_limit_s: float = 30.0,
    exact_per_k: bool = True,
    bound: str = "lp",
) -> tuple[pd.DataFrame, list[CoverSolution]]:
    """Coverage after 0, 1, …, k new sites (the marginal gain curve).

    Every k' is solved on its own by :func:`firegrid.spatial.siting.cover.max_cover` (exact per k' when
    ``method`` allows: optimal sets need not be nested), next to the greedy curve (nested: the
    first k' greedy picks). The ``method``/``optimal``/``bound`` columns say which is which.

    Parameters
    ----------
    cover
        Boolean demands (buildings) × candidates.
    k
        Largest number of new sites.
    weights, existing_covered, method, time_limit_s, bound
        As in :func:`firegrid.spatial.siting.cover.max_cover` (``time_limit_s`` per k').
    exact_per_k
        Solve every k'; if False only k' = k is solved and the rest is greedy.

    Returns
    -------
    (DataFrame, list of CoverSolution)
        One row per k' = 0 … k: ``n_new``, ``covered_buildings``, ``covered_weight``,
        ``covered_share`` (of all buildings), ``gain_weight`` (over k' − 1), ``greedy_weight``
        (greedy curve), ``bound`` (upper bound on the optimum), ``gap``, ``method``,
        ``optimal``; and the solutions for k' = 1 … k (``None`` where greedy only).
    """
    A, w, pre, _ = prepare_cover(cover, weights, existing_covered)
    n = A.shape[0]
    g_sel, g_gain = greedy_max_cover(A, k, weights=w, existing_covered=pre)
    greedy_w = _greedy_curve(float(w[pre].sum()), g_gain, k)
    rows = [_existing_row(w, pre)]
    sols: list[CoverSolution | None] = []
    for kk in range(1, k + 1):
        if exact_per_k or kk == k:
            # HiGHS presolve spends longer hunting dominated columns than solving these.
            sol = max_cover(
                A, kk, weights=w, existing_covered=pre, method=method,
                time_limit_s=time_limit_s, presolve=False, bound=bound,
            )  # fmt: skip
            sols.append(sol)
            rows.append(_curve_row(kk, sol))
        else:
            covered = pre | covered_by(A, g_sel[:kk])
            sols.append(None)
            rows.append(_curve_row(kk, None, int(covered.sum()), greedy_w[kk]))
    return _curve_frame(rows, greedy_w, n), sols


def _greedy_curve(base: float, gains: np.ndarray, k: int) -> np.ndarray:
    """Weight covered after 0 … k greedy picks (flat once greedy stops adding)."""
    greedy_w = base + np.concatenate([[0.0], np.cumsum(gains)])
    return np.concatenate([greedy_w, np.full(k + 1 - len(greedy_w), greedy_w[-1])])


def _existing_row(w: np.ndarray, pre: np.ndarray) -> dict[str, Any]:
    """The gain curve's first row: existing stations only."""
    base = float(w[pre].sum())
    return dict(n_new=0, covered_buildings=int(pre.sum()), covered_weight=base, bound=base,
                gap=0.0, method="existing", optimal=True)  # fmt: skip


def _curve_frame(rows: list[dict[str, Any]], greedy_w: np.ndarray, n: int) -> pd.DataFrame:
    """The gain curve's rows as a table with shares, marginal gains and the greedy curve."""
    df = pd.DataFrame(rows)
    df["covered_share"] = df["covered_buildings"] / max(n, 1)
    df["gain_weight"] = df["covered_weight"].diff().fillna(0.0)
    df["greedy_weight"] = greedy_w
    cols = ["n_new", "covered_buildings", "covered_weight", "covered_share", "gain_weight",
            "greedy_weight", "bound", "gap", "method", "optimal"]  # fmt: skip
    return df[cols]


def rank_sites(
    cover,
    selected: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    existing_covered: np.ndarray | None = None,
    assignment: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Order chosen sites by what each adds, and the buildings each adds at its rank.

    Without ``assignment``: greedy order within the chosen set (each next site adds the most
    weight not yet covered); with a capacitated ``assignment``: by weight assigned, descending.
    Sites that add nothing are dropped (they change no building's coverage).

    Returns
    -------
    (order, newly)
        Site indices in rank order, and a boolean buildings × ranks matrix of the buildings each
        rank adds (dense ``bool``, one column per kept site).
    """
    A, w, pre, _ = prepare_cover(cover, weights, existing_covered)
    n = A.shape[0]
    selected = np.asarray(selected, dtype=int)
    if len(selected) == 0:
        return selected, np.zeros((n, 0), bool)
    if assignment is not None:
        got = np.array([w[assignment == j].sum() for j in selected])
        cnt = np.array([(assignment == j).sum() for j in selected])
        keep = cnt > 0
        order = selected[keep][np.argsort(-got[keep], kind="stable")]
        newly = np.stack([assignment == j for j in order], 1) if len(order) else None
        return order, newly if newly is not None else np.zeros((n, 0), bool)
    # Greedy order by weight; ties and zero-weight additions broken by building count, so a
    # site covering only zero-weight buildings still ranks (it does change coverage).
    sub = A[:, selected]
    score_w = w + 1e-9 * max(float(w.max(initial=0.0)), 1.0) / max(n, 1)
    order_local, _ = greedy_max_cover(sub, len(selected), weights=score_w, existing_covered=pre)
    order = selected[order_local]
    covered = pre.copy()
    newly = np.zeros((n, len(order)), bool)
    for r, j in enumerate(order):  # loop over a handful of sites, vectorised over buildings
        col = A.indices[A.indptr[j] : A.indptr[j + 1]]
        add = col[~covered[col]]
        newly[add, r] = True
        covered[add] = True
    return order, newly


def sites_layer(
    candidates: gpd.GeoDataFrame,
    order: np.ndarray,
    newly: np.ndarray,
    *,
    weights: np.ndarray,
    residents: np.ndarray | None,
    existing_covered: np.ndarray,
    prefix: str = "N",
) -> gpd.GeoDataFrame:
    """The proposed sites as a point layer, one row per site in rank order.

    Columns: ``site_id`` (``N01`` …), ``rank`` (1 = adds most), ``candidate_id``,
    ``gain_buildings``, ``gain_weight``, ``gain_residents`` (what this site adds after the
    higher ranks; NaN residents without a ``residents`` column), ``covered_after`` (buildings
    within the target once sites up to this rank are added, existing stations included),
    ``covered_weight_after``, ``covered_share_after`` (fraction of all buildings),
    ``road_name``, ``highway``, ``kind``, geometry (working CRS).
    """
    n = len(existing_covered)
    gain_b = newly.sum(axis=0).astype(int)
    gain_w = weights @ newly if newly.shape[1] else np.zeros(0)
    if residents is not None:
        gain_r = np.nan_to_num(residents) @ newly if newly.shape[1] else np.zeros(0)
    else:
        gain_r = np.full(len(order), np.nan)
    cov_after = int(existing_covered.sum()) + np.cumsum(gain_b)
    cov_w_after = float(weights[existing_covered].sum()) + np.cumsum(gain_w)
    src = candidates.iloc[order]
    width = max(2, len(str(len(order))))
    out = gpd.GeoDataFrame(
        {
            "site_id": [f"{prefix}{i + 1:0{width}d}" for i in range(len(order))],
            "rank": np.arange(1, len(order) + 1),
            "candidate_id": src["candidate_id"].astype(str).to_numpy(),
            "gain_buildings": gain_b,
            "gain_weight": np.asarray(gain_w, float),
            "gain_residents": np.asarray(gain_r, float),
            "covered_after": cov_after.astype(int),
            "covered_weight_after": np.asarray(cov_w_after, float),
            "covered_share_after": cov_after / max(n, 1),
            "road_name": src["road_name"].astype(str).to_numpy(),
            "highway": src["highway"].astype(str).to_numpy(),
            "kind": src["kind"].astype(str).to_numpy() if "kind" in src else "user",
        },
        geometry=src.geometry.to_numpy(),
        crs=candidates.crs,
    )
    return out


# ---------------------------------------------------------------------- the pipeline step
def site_micro_stations(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph,
    buildings: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame | None,
    *,
    params: SitingParams | None = None,
    candidates: gpd.GeoDataFrame | None = None,
    access: AccessParams | None = None,
    existing_covered: np.ndarray | None = None,
) -> SitingResult:
    """Propose new micro-stations: maximal coverage for ``k`` sites, gain curve, minimal count.

    Parameters
    ----------
    network : GraphTable, networkx.MultiDiGraph or RoutingGraph
        The road network read once (:func:`firegrid.spatial.network.load.read_network`), a projected osmnx
        graph, or a graph already compiled for ``params.vehicle`` (then existing coverage needs ``t_micro_s`` or
        ``existing_covered``).
    buildings : GeoDataFrame
        Buildings in the working CRS (metres). Optional columns used: ``t_micro_s`` (from the
        access step: existing coverage is ``t_micro_s <= target_s``), ``residents``, the
        ``params.weight`` column, the ``params.capacity_unit`` column.
    stations : GeoDataFrame or None
        Station layer; its ``micro_station`` rows are kept and their coverage counted (used only
        when ``t_micro_s`` is absent and ``existing_covered`` not given).
    params : SitingParams, optional
    candidates : GeoDataFrame, optional
        The user's own candidate points (working CRS; optional ``candidate_id``); default:
        generated along the streets (:func:`firegrid.spatial.siting.candidates.candidate_sites`).
    access : AccessParams, optional
        Vehicle profiles and ``max_snap_m`` (buildings farther from every street are not
        reachable); default :class:`firegrid.spatial.network.profiles.AccessParams`.
    existing_covered : array of bool, optional
        Buildings already covered, overriding both ``t_micro_s`` and ``stations``.

    Returns
    -------
    SitingResult
    """
    access = access or AccessParams()
    params = (params or SitingParams()).using(access)
    timings: dict[str, float] = {}
    with _timed(timings, "compile_and_snap_s"):
        network, rg = _crew_graph(network, params, access)
        require_projected(buildings, "buildings", rg.crs)
        weights = _weights(buildings, params.weight)
        bsnap = snap(rg, buildings, max_snap_m=access.max_snap_m)
    with _timed(timings, "existing_s"):
        pre = _existing_coverage(network, buildings, stations, params, access, existing_covered)
    with _timed(timings, "candidates_s"):
        cand = candidates if candidates is not None else _street_candidates(rg, buildings, params)
        cand, csnap = snap_candidates(rg, cand, max_snap_m=access.max_snap_m)
    with _timed(timings, "travel_times_s"):
        T = candidate_times(rg, csnap, bsnap, target_s=params.target_s, turnout_s=params.turnout_s)
    demand = _Demand.of(buildings, T, pre, weights, params)
    with _timed(timings, "max_cover_s"):
        curve, sol, keep = _solve_max_cover(demand, params)
    sites, order = _proposal(cand, demand, sol)
    mc_sol, mc_sites = None, None
    if params.min_count:
        with _timed(timings, "min_count_s"):
            mc_sol = _solve_min_count(demand, keep, params)
        mc_sites, _ = _proposal(cand, demand, mc_sol, prefix="M")
    return SitingResult(
        sites=sites,
        min_count_sites=mc_sites,
        curve=curve,
        buildings=_siting_columns(buildings, demand, sites, order, sol.assignment),
        candidates=_with_reach(cand, T, demand.weights),
        max_cover=sol,
        min_count=mc_sol,
        times=T,
        params=params,
        timings=timings,
        n_candidates_solved=len(keep),
    )


# ---------------------------------------------------------------------- steps of the siting
@contextlib.contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - t0


def _crew_graph(
    network: nx.MultiDiGraph | GraphTable | RoutingGraph, params: SitingParams, access: AccessParams
) -> tuple[GraphTable | RoutingGraph, RoutingGraph]:
    """The network read once (a compiled graph stays as it is) and the crews' compiled graph."""
    if isinstance(network, RoutingGraph):
        return network, network
    table = graph_table(network)  # an osmnx graph is read once, here
    return table, table.compiled(access.profile(params.vehicle))


def _existing_coverage(
    network: GraphTable | RoutingGraph,
    buildings: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame | None,
    params: SitingParams,
    access: AccessParams,
    existing_covered: np.ndarray | None,
) -> np.ndarray:
    """Buildings existing micro-stations reach within the target: given, from the access
    step's ``t_micro_s``, or (neither) counted here with :func:`existing_micro_times`."""
    n = len(buildings)
    if existing_covered is not None:
        pre = np.asarray(existing_covered, bool)
        if pre.shape != (n,):
            raise InputError(f"existing_covered has {pre.shape[0]} entries for {n} buildings")
        return pre
    if "t_micro_s" in buildings.columns:
        t_exist = pd.to_numeric(buildings["t_micro_s"], errors="coerce").to_numpy(dtype=float)
        return np.nan_to_num(t_exist, nan=np.inf) <= params.target_s
    if isinstance(network, RoutingGraph):
        raise InputError(
            "existing coverage unknown: pass the road network, a 't_micro_s' column from the "
            "access step, or existing_covered"
        )
    return existing_micro_times(network, buildings, stations, access=access) <= params.target_s


def _street_candidates(
    rg: RoutingGraph, buildings: gpd.GeoDataFrame, params: SitingParams
) -> gpd.GeoDataFrame:
    """Candidate sites along the crews' streets near the buildings (:func:`firegrid.spatial.siting.candidates.candidate_sites`)."""
    area = None
    if len(buildings):
        hull = shapely.convex_hull(shapely.union_all(_points(buildings)))
        area = shapely.buffer(hull, max(params.candidate_buffer_m, 1e-6))
    return candidate_sites(rg, spacing_m=params.candidate_spacing_m, area=area)


@dataclass(frozen=True)
class _Demand:
    """The buildings as a covering problem: who reaches whom, what counts, what is covered."""

    cover: sp.csc_matrix  # buildings × candidates, within the target
    times: sp.csr_matrix  # candidates × buildings, seconds
    pre: np.ndarray  # covered by existing micro-stations
    weights: np.ndarray
    residents: np.ndarray | None
    size: np.ndarray | None  # capacity used per building (capacitated problems only)

    @classmethod
    def of(
        cls,
        buildings: gpd.GeoDataFrame,
        T: sp.csr_matrix,
        pre: np.ndarray,
        weights: np.ndarray,
        params: SitingParams,
    ) -> _Demand:
        residents = (
            pd.to_numeric(buildings["residents"], errors="coerce").to_numpy(dtype=float)
            if "residents" in buildings.columns
            else None
        )
        size = (
            _capacity_sizes(buildings, params.capacity_unit)
            if params.capacity is not None
            else None
        )
        return cls(coverage_from_times(T), T, pre, weights, residents, size)


def _solve_max_cover(
    d: _Demand, params: SitingParams
) -> tuple[pd.DataFrame, CoverSolution, np.ndarray]:
    """The gain curve and the ``k``-site solution, and the candidates the solvers kept."""
    A, pre, weights, k = d.cover, d.pre, d.weights, int(params.k)
    if params.capacity is not None:
        # Capacitated: every candidate stays (a second site adds capacity).
        curve, sols = _capacitated_curve(A, k, weights, pre, d.size, params)
        sol = sols[-1] if sols else max_cover_capacitated(
            A, 0, capacity=params.capacity, demand=d.size, weights=weights, existing_covered=pre
        )  # fmt: skip
        return curve, sol, np.arange(A.shape[1])
    # Uncapacitated problems only need the non-dominated candidates (same optimum, much
    # smaller MILP).
    keep = np.flatnonzero(~dominated_candidates(A, existing_covered=pre))
    Ak = A[:, keep]
    method, bound = _solver(params, d)
    curve, sols = gain_curve(
        Ak, k, weights=weights, existing_covered=pre, method=method,
        time_limit_s=params.time_limit_s, exact_per_k=params.gain_curve, bound=bound,
    )  # fmt: skip
    sol = sols[-1] if sols else max_cover(Ak, 0, weights=weights, existing_covered=pre)
    return curve, replace(sol, selected=keep[sol.selected]), keep


def _solver(params: SitingParams, d: _Demand) -> tuple[str, str]:
    """One solver and bound for the whole run (gain curve and minimal count), decided on the
    full problem by the covering module's one rule (:func:`firegrid.spatial.siting.cover.auto_method`)."""
    pairs = open_pairs(d.cover, d.pre)
    return auto_method(params.method, pairs), auto_bound(pairs)


def _solve_min_count(d: _Demand, keep: np.ndarray, params: SitingParams) -> CoverSolution:
    """The fewest new stations reaching every building some candidate reaches."""
    A, pre = d.cover, d.pre
    if params.capacity is not None:
        return set_cover_capacitated(
            A, capacity=params.capacity, demand=d.size, existing_covered=pre,
            method=params.method, time_limit_s=params.time_limit_s,
        )  # fmt: skip
    method, bound = _solver(params, d)
    sol = set_cover(
        A[:, keep], existing_covered=pre, method=method,
        time_limit_s=params.time_limit_s, presolve=False, bound=bound,
    )  # fmt: skip
    sol = replace(sol, selected=keep[sol.selected])
    return sol if sol.optimal else _without_redundant(A, sol, pre)


def _proposal(
    cand: gpd.GeoDataFrame, d: _Demand, sol: CoverSolution, *, prefix: str = "N"
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """The chosen sites of ``sol`` ranked by what each adds (:func:`sites_layer`), and their
    candidate rows in that order."""
    order, newly = rank_sites(
        d.cover, sol.selected, weights=d.weights, existing_covered=d.pre,
        assignment=sol.assignment,
    )  # fmt: skip
    layer = sites_layer(
        cand, order, newly, weights=d.weights, residents=d.residents, existing_covered=d.pre,
        prefix=prefix,
    )  # fmt: skip
    return layer, order


def _siting_columns(
    buildings: gpd.GeoDataFrame,
    d: _Demand,
    sites: gpd.GeoDataFrame,
    order: np.ndarray,
    assignment: np.ndarray | None,
) -> gpd.GeoDataFrame:
    """A copy of the buildings with the siting columns (:data:`SITING_COLUMNS`); ``order``:
    the candidate rows of ``sites``."""
    out = buildings.copy()
    site_of, t_new = _nearest_new_site(d.times, order, len(buildings), assignment)
    out["siting_coverable"] = d.pre | (np.asarray(d.cover.sum(axis=1)).ravel() > 0)
    out["siting_covered_before"] = d.pre
    out["siting_covered_after"] = d.pre | (site_of < len(order))
    ids = np.concatenate([sites["site_id"].to_numpy(dtype=object), np.array([""], dtype=object)])
    out["siting_site_id"] = pd.array(ids[site_of], dtype=object).astype(str)
    out["siting_t_new_s"] = t_new
    return out


def _with_reach(cand: gpd.GeoDataFrame, T: sp.csr_matrix, weights: np.ndarray) -> gpd.GeoDataFrame:
    """Candidates with what each alone reaches within the target (existing coverage ignored)."""
    cand = cand.copy()
    cand["reach_buildings"] = np.diff(T.indptr).astype(int)
    cand["reach_weight"] = (
        np.asarray(sp.csr_matrix((np.ones(T.nnz), T.indices, T.indptr), shape=T.shape) @ weights)
        if T.nnz
        else np.zeros(len(cand))
    )
    return cand


# ---------------------------------------------------------------------- internals
def prune_redundant(cover, selected: np.ndarray, *, existing_covered=None) -> np.ndarray:
    """Drop sites of a cover whose buildings all stay covered by the others.

    Sites are tried last-chosen first (a greedy cover's late picks are the likeliest to be
    made redundant by the rest). The result covers exactly what ``selected`` covered.
    """
    A = sp.csc_matrix(cover, dtype=bool)
    pre = np.zeros(A.shape[0], bool) if existing_covered is None else np.asarray(existing_covered)
    sel = np.asarray(selected, dtype=int)
    if len(sel) == 0:
        return sel
    count = np.asarray(A[:, sel].sum(axis=1)).ravel() + pre  # covers per building
    keep = np.ones(len(sel), bool)
    for pos in range(len(sel) - 1, -1, -1):  # a loop over chosen sites, not buildings
        j = sel[pos]
        rows = A.indices[A.indptr[j] : A.indptr[j + 1]]
        if (count[rows] >= 2).all():
            count[rows] -= 1
            keep[pos] = False
    return sel[keep]


def _without_redundant(A, sol: CoverSolution, pre: np.ndarray) -> CoverSolution:
    sel = prune_redundant(A, sol.selected, existing_covered=pre)
    if len(sel) == len(sol.selected):
        return sol
    obj = float(len(sel))
    gap = (obj - sol.bound) / max(obj, 1e-9)
    return replace(sol, selected=sel, objective=obj, gap=gap, optimal=obj == sol.bound)


def _capacitated_curve(A, k, weights, pre, size, params: SitingParams):
    rows = [_existing_row(weights, pre)]
    greedy = max_cover_capacitated(
        A, k, capacity=params.capacity, demand=size, weights=weights, existing_covered=pre,
        method="greedy",
    )  # fmt: skip
    gains = np.array([weights[greedy.assignment == j].sum() for j in greedy.selected])
    greedy_w = _greedy_curve(float(weights[pre].sum()), gains, k)
    sols = []
    for kk in range(1, k + 1):
        if params.gain_curve or kk == k:
            sol = max_cover_capacitated(
                A, kk, capacity=params.capacity, demand=size, weights=weights,
                existing_covered=pre, method=params.method, time_limit_s=params.time_limit_s,
            )  # fmt: skip
            sols.append(sol)
            rows.append(_curve_row(kk, sol))
        else:
            sols.append(None)
            rows.append(_curve_row(kk, None, np.nan, greedy_w[kk]))
    return _curve_frame(rows, greedy_w, len(pre)), sols


def _nearest_new_site(T: sp.csr_matrix, order: np.ndarray, n: int, assignment):
    """Per building: rank index of the proposed site serving it (``len(order)`` if none) and
    seconds from it (NaN if none). Capacitated: the assigned site; else the fastest."""
    none = len(order)
    site_of = np.full(n, none, dtype=np.int64)
    t_new = np.full(n, np.nan)
    if len(order) == 0:
        return site_of, t_new
    sub = T[order].tocoo()
    if assignment is not None:
        mine = assignment[sub.col] == order[sub.row]
        site_of[sub.col[mine]] = sub.row[mine]
        t_new[sub.col[mine]] = sub.data[mine]
        return site_of, t_new
    o = np.lexsort((sub.data, sub.col))
    col, row, val = sub.col[o], sub.row[o], sub.data[o]
    first = np.ones(len(col), bool)
    first[1:] = col[1:] != col[:-1]
    site_of[col[first]] = row[first]
    t_new[col[first]] = val[first]
    return site_of, t_new


def _weights(buildings: gpd.GeoDataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.ones(len(buildings))
    if column not in buildings.columns:
        raise InputError(
            "weight column not found in buildings (run the step that makes it, e.g. risk for "
            "'risk_index', or set [siting] weight)",
            column=column,
        )
    w = pd.to_numeric(buildings[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        ids = _ids(buildings)[bad][:5]
        raise InputError(
            f"{int(bad.sum())} building(s) have a missing, non-numeric or negative weight "
            f"(e.g. {', '.join(map(str, ids))})",
            column=column,
        )
    return w


def _curve_row(
    k: int, sol: CoverSolution | None, covered: float = np.nan, weight: float = np.nan
) -> dict[str, Any]:
    """One row of a gain curve: a solved ``k`` (``sol``), or the greedy prefix's figures."""
    if sol is not None:
        return dict(n_new=k, covered_buildings=int(sol.covered.sum()),
                    covered_weight=sol.objective, bound=sol.bound, gap=sol.gap,
                    method=sol.method, optimal=bool(sol.optimal))  # fmt: skip
    return dict(n_new=k, covered_buildings=covered, covered_weight=weight, bound=np.nan,
                gap=np.nan, method="greedy", optimal=False)  # fmt: skip


def _capacity_sizes(buildings: gpd.GeoDataFrame, unit: str) -> np.ndarray:
    if unit == "buildings":
        return np.ones(len(buildings))
    if unit not in buildings.columns:
        raise InputError("capacity unit column not found in buildings", column=unit)
    size = pd.to_numeric(buildings[unit], errors="coerce").to_numpy(dtype=float)
    # A building without a count takes no capacity, but is still assigned to a station.
    return np.where(np.isfinite(size) & (size > 0), size, 0.0)


def _ids(buildings: gpd.GeoDataFrame) -> np.ndarray:
    if "building_id" in buildings.columns:
        return buildings["building_id"].astype(str).to_numpy()
    return np.array([f"row {i}" for i in range(len(buildings))], dtype=object)


def _points(gdf: gpd.GeoDataFrame) -> np.ndarray:
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out = geoms[ok]
    poly = shapely.get_type_id(out) != 0
    out = out.copy()
    out[poly] = shapely.point_on_surface(out[poly])
    return out
