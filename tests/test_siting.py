"""Micro-station siting: optimum by enumeration, independent formulations, greedy never better."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import shapely
from scipy.optimize import Bounds, LinearConstraint, milp

from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.network.profiles import AccessParams, default_profile
from firegrid.spatial.network.routing import RoutingGraph, cost_matrix, nearest_cost, snap
from firegrid.spatial.siting.candidates import (
    candidate_sites,
    candidate_times,
    coverage_from_times,
    dominated_candidates,
    snap_candidates,
)
from firegrid.spatial.siting.cover import (
    greedy_max_cover,
    max_cover,
    max_cover_capacitated,
    set_cover,
    set_cover_capacitated,
)
from firegrid.spatial.siting.stations import (
    SitingParams,
    existing_micro_times,
    gain_curve,
    prune_redundant,
    site_micro_stations,
)

CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_450_000.0
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "demo.toml"


# ---------------------------------------------------------------------- fixtures
def lattice(nx_: int = 8, ny_: int = 6, d: float = 100.0) -> nx.MultiDiGraph:
    """An osmnx-like projected street lattice, two-way streets with names and classes."""
    G = nx.MultiDiGraph(crs=CRS)
    for i in range(nx_):
        for j in range(ny_):
            G.add_node(i * ny_ + j, x=X0 + i * d, y=Y0 + j * d)

    def street(a, b, name, hw):
        for u, v in ((a, b), (b, a)):
            G.add_edge(u, v, length=d, highway=hw, name=name, oneway=False)

    for i in range(nx_):
        for j in range(ny_):
            if i + 1 < nx_:
                street(i * ny_ + j, (i + 1) * ny_ + j, f"东{j}路", "residential")
            if j + 1 < ny_:
                street(i * ny_ + j, i * ny_ + j + 1, f"南{i}街", "tertiary")
    return G


def buildings(n: int, seed: int, nx_: int = 8, ny_: int = 6, d: float = 100.0):
    rng = np.random.default_rng(seed)
    x = X0 + rng.uniform(0, (nx_ - 1) * d, n)
    y = Y0 + rng.uniform(0, (ny_ - 1) * d, n)
    return gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:03d}" for i in range(n)],
            "risk_index": rng.uniform(0, 100, n).round(1),
            "residents": rng.integers(0, 60, n),
        },
        geometry=shapely.buffer(shapely.points(x, y), 6.0, cap_style="square"),
        crs=CRS,
    )


def stations(xy, vehicle=("ebike",), turnout=(60.0,)):
    n = len(xy)
    return gpd.GeoDataFrame(
        {
            "station_id": [f"WZ{i}" for i in range(n)] + ["F1"],
            "kind": ["micro_station"] * n + ["fire_station"],
            "vehicle": list(vehicle) * (n // len(vehicle)) + ["engine"],
            "turnout_s": list(turnout) * (n // len(turnout)) + [60.0],
        },
        geometry=gpd.points_from_xy(
            [X0 + p[0] for p in xy] + [X0 + 350], [Y0 + p[1] for p in xy] + [Y0 + 250]
        ),
        crs=CRS,
    )


def user_candidates(n: int, seed: int):
    rng = np.random.default_rng(seed)
    # Points a few metres off the streets (e.g. community rooms), snapped with an access leg.
    i = rng.integers(0, 7, n)
    j = rng.integers(0, 5, n)
    along = rng.uniform(0, 100, n)
    horiz = rng.random(n) < 0.5
    x = X0 + np.where(horiz, i * 100 + along, i * 100) + rng.uniform(-8, 8, n)
    y = Y0 + np.where(horiz, j * 100, j * 100 + along) + rng.uniform(-8, 8, n)
    return gpd.GeoDataFrame(
        {"candidate_id": [f"U{k}" for k in range(n)]}, geometry=gpd.points_from_xy(x, y), crs=CRS
    )


def enumerate_best(T: sp.csr_matrix, w: np.ndarray, pre: np.ndarray, k: int):
    """Best covered weight over every set of ``k`` candidates (rows of T)."""
    cover = [T.indices[T.indptr[j] : T.indptr[j + 1]] for j in range(T.shape[0])]
    best = -1.0
    for combo in itertools.combinations(range(T.shape[0]), min(k, T.shape[0])):
        got = pre.copy()
        for j in combo:
            got[cover[j]] = True
        best = max(best, float(w[got].sum()))
    return best


def enumerate_min_count(T: sp.csr_matrix, pre: np.ndarray):
    cover = [T.indices[T.indptr[j] : T.indptr[j + 1]] for j in range(T.shape[0])]
    target = pre.copy()
    for c in cover:
        target[c] = True
    for r in range(T.shape[0] + 1):
        for combo in itertools.combinations(range(T.shape[0]), r):
            got = pre.copy()
            for j in combo:
                got[cover[j]] = True
            if (got == target).all():
                return r
    raise AssertionError("unreachable")


PARAMS = dict(target_s=100.0, turnout_s=30.0, time_limit_s=20.0)


# ---------------------------------------------------------------------- params
def test_params_defaults_and_from_mapping():
    p = SitingParams()
    assert (p.k, p.target_s, p.turnout_s, p.vehicle, p.method) == (5, None, None, None, "auto")
    # The target, the crews' vehicle and their turnout are [access]'s unless [siting] sets them.
    r = p.using(AccessParams())
    assert (r.target_s, r.turnout_s, r.vehicle) == (180.0, 60.0, "ebike")
    access = AccessParams.from_mapping({"target_micro_s": 240, "default_micro_vehicle": "foot"})
    r = p.using(access)
    assert (r.target_s, r.vehicle, r.turnout_s) == (240.0, "foot", access.foot.turnout_s)
    r = SitingParams(vehicle="ebike", turnout_s=30.0).using(access)
    assert (r.target_s, r.vehicle, r.turnout_s) == (240.0, "ebike", 30.0)
    with pytest.raises(ConfigError, match=r"\[access\] target_micro_s"):
        SitingParams.from_mapping({"target_s": 240})
    q = SitingParams.from_mapping(
        {"k": 3, "weight": "risk_index", "vehicle": "foot", "capacity": 500,
         "capacity_unit": "residents", "candidate_spacing_m": 50, "gain_curve": False}
    )  # fmt: skip
    assert q.k == 3 and q.weight == "risk_index" and q.capacity == 500.0 and q.vehicle == "foot"
    assert q.candidate_spacing_m == 50.0 and q.gain_curve is False
    with pytest.raises(ConfigError, match="candidates_m"):
        SitingParams.from_mapping({"candidates_m": 50})
    for bad in ({"k": 2.5}, {"k": -1}, {"vehicle": "engine"}, {"method": "fast"},
                {"turnout_s": -1}, {"gain_curve": "yes"}, {"time_limit_s": "soon"}):  # fmt: skip
        with pytest.raises(ConfigError):
            SitingParams.from_mapping(bad)
    with pytest.raises(ConfigError, match="turnout_s"):  # not less than the [access] target
        SitingParams.from_mapping({"turnout_s": 200}).using(AccessParams())


# ---------------------------------------------------------------------- candidates and times
def test_candidate_sites_intersections_and_spacing():
    rg = RoutingGraph.from_graph(lattice(), default_profile("ebike"))
    inter = candidate_sites(rg, spacing_m=0)
    # Interior and edge nodes of an 8 × 6 lattice have >= 3 neighbours; the 4 corners have 2.
    assert len(inter) == 8 * 6 - 4 and set(inter["kind"]) == {"intersection"}
    c = candidate_sites(rg, spacing_m=30.0)
    assert len(c) == 8 * 6 + rg.n_segments * 3  # 100 m pieces: 3 inner points each
    # Every candidate lies on a street, consecutive ones along a street at most 30 m apart.
    dist = shapely.distance(c.geometry.values, shapely.union_all(rg.seg_geom))
    assert np.abs(dist).max() < 1e-6
    on_seg = c[c["kind"] == "street"].sort_values(["seg", "frac"])
    gaps = on_seg.groupby("seg")["frac"].diff().dropna() * 100.0
    assert gaps.max() <= 30.0 + 1e-9
    area = shapely.box(X0 - 1, Y0 - 1, X0 + 201, Y0 + 201)
    inside = candidate_sites(rg, spacing_m=30.0, area=area)
    assert 0 < len(inside) < len(c)
    assert shapely.contains_xy(area, *shapely.get_coordinates(inside.geometry.values).T).all()
    assert inside["road_name"].str.match(r"^(东\d路|南\d街)$").all()


def test_candidate_times_match_single_source_routing():
    rg = RoutingGraph.from_graph(lattice(), default_profile("ebike"))
    b = buildings(120, 1)
    bs = snap(rg, b, max_snap_m=150)
    cand, cs = snap_candidates(rg, user_candidates(12, 2))
    T = candidate_times(rg, cs, bs, target_s=100.0, turnout_s=30.0)
    assert T.shape == (12, 120)
    for j in range(12):
        t, _ = nearest_cost(rg, cs.take([j]), bs, source_offset=30.0)
        row = np.full(120, np.inf)
        row[T.indices[T.indptr[j] : T.indptr[j + 1]]] = T.data[T.indptr[j] : T.indptr[j + 1]]
        within = t <= 100.0
        assert np.array_equal(np.isfinite(row), within)
        np.testing.assert_allclose(row[within], t[within], rtol=1e-9)
    A = coverage_from_times(T)
    assert A.shape == (120, 12) and A.nnz == T.nnz


# ---------------------------------------------------------------------- optimum by enumeration
@pytest.mark.parametrize("seed", range(6))
def test_max_cover_and_min_count_match_enumeration(seed):
    G = lattice()
    b = buildings(90, seed)
    st = stations([(150, 100)], vehicle=("foot",))
    k = 1 + seed % 3
    params = SitingParams(k=k, weight="risk_index", **PARAMS)
    res = site_micro_stations(G, b, st, params=params, candidates=user_candidates(9, 10 + seed))
    pre = res.buildings["siting_covered_before"].to_numpy()
    w = b["risk_index"].to_numpy()
    best = enumerate_best(res.times, w, pre, k)
    assert res.max_cover.optimal and res.max_cover.objective == pytest.approx(best)
    # The proposed layer achieves the objective with the candidates it names.
    rows = res.candidates.index[res.candidates["candidate_id"].isin(res.sites["candidate_id"])]
    got = pre | (np.asarray(res.times[rows].getnnz(axis=0)) > 0)
    assert w[got].sum() == pytest.approx(best)
    assert len(res.sites) <= k
    assert res.sites["covered_weight_after"].iloc[-1] == pytest.approx(best)
    # Every k' of the curve is optimal too.
    for kk in range(1, k + 1):
        assert res.curve.loc[kk, "covered_weight"] == pytest.approx(
            enumerate_best(res.times, w, pre, kk)
        )
    assert res.min_count.objective == enumerate_min_count(res.times, pre)
    assert res.min_count.optimal and len(res.min_count_sites) == res.min_count.objective


def test_dropping_dominated_candidates_keeps_the_optimum():
    rng = np.random.default_rng(5)
    for _ in range(10):
        A = sp.csc_matrix(rng.random((40, 15)) < 0.2)
        # Duplicate and shrink some columns so that dominance actually occurs.
        A = sp.hstack([A, A[:, :3], A[:, 3:6].multiply(rng.random((40, 3)) < 0.5)]).tocsc()
        w = rng.integers(1, 9, 40).astype(float)
        pre = rng.random(40) < 0.2
        drop = dominated_candidates(A, existing_covered=pre)
        assert drop.sum() >= 3
        keep = np.flatnonzero(~drop)
        for k in (1, 2, 4):
            full = max_cover(A, k, weights=w, existing_covered=pre, method="exact")
            red = max_cover(A[:, keep], k, weights=w, existing_covered=pre, method="exact")
            assert red.objective == pytest.approx(full.objective)
        assert (
            set_cover(A[:, keep], existing_covered=pre).objective
            == set_cover(A, existing_covered=pre).objective
        )


# ---------------------------------------------------------------------- independent formulations
def independent_max_cover(T_cand, T_exist, w, k):
    """Max coverage written another way: no row merging, no pre-covered reduction; existing
    stations are facility variables fixed open, every building keeps its own y variable."""
    F = sp.vstack([T_cand, T_exist]).tocsr()
    F = sp.csr_matrix((np.ones(F.nnz), F.indices, F.indptr), shape=F.shape).T.tocsr()
    m, n_all = F.shape
    n_c = T_cand.shape[0]
    c = np.concatenate([np.zeros(n_all), -w])
    link = sp.hstack([-F, sp.identity(m)])
    count = sp.csr_matrix(np.r_[np.ones(n_c), np.zeros(n_all - n_c + m)][None, :])
    lb = np.r_[np.zeros(n_c), np.ones(n_all - n_c), np.zeros(m)]
    res = milp(
        c,
        constraints=[LinearConstraint(link, -np.inf, 0), LinearConstraint(count, 0, k)],
        integrality=np.r_[np.ones(n_all), np.ones(m)],
        bounds=Bounds(lb, 1),
    )
    assert res.status == 0
    return -res.fun


def existing_matrix(G, b, st, params):
    """Existing stations' times as their own cost matrix (not via nearest_cost)."""
    access = AccessParams()
    rg = RoutingGraph.from_graph(G, access.profile("foot"))
    micro = st[st["kind"] == "micro_station"]
    return cost_matrix(
        rg, snap(rg, micro), snap(rg, b, max_snap_m=access.max_snap_m),
        cutoff=params.target_s, source_offset=micro["turnout_s"].to_numpy(),
    )  # fmt: skip


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PuLP 3 announcing its 4.0 API
@pytest.mark.parametrize("seed", range(3))
def test_objective_equals_independent_formulations(seed):
    G = lattice()
    b = buildings(200, 20 + seed)
    st = stations([(150, 100), (550, 400)], vehicle=("foot",), turnout=(45.0,))
    k = 3
    params = SitingParams(k=k, weight="risk_index", candidate_spacing_m=50.0, **PARAMS)
    res = site_micro_stations(G, b, st, params=params)
    E = existing_matrix(G, b, st, params)
    # Existing coverage from a cost matrix of the stations equals the nearest_cost one.
    assert np.array_equal(
        res.buildings["siting_covered_before"].to_numpy(), np.asarray(E.getnnz(axis=0)) > 0
    )
    w = b["risk_index"].to_numpy()
    assert res.max_cover.objective == pytest.approx(independent_max_cover(res.times, E, w, k))

    spopt = pytest.importorskip("spopt.locate")
    pulp = pytest.importorskip("pulp")
    dense = np.full((len(b), res.times.shape[0] + E.shape[0]), 1e9)
    for off, M in ((0, res.times.tocoo()), (res.times.shape[0], E.tocoo())):
        dense[M.col, M.row + off] = M.data
    predefined = np.r_[np.zeros(res.times.shape[0]), np.ones(E.shape[0])].astype(int)
    mclp = spopt.MCLP.from_cost_matrix(
        dense, w, service_radius=params.target_s, p_facilities=k + E.shape[0],
        predefined_facilities_arr=predefined,
    )  # fmt: skip
    mclp.solve(pulp.PULP_CBC_CMD(msg=False))
    assert pulp.value(mclp.problem.objective) == pytest.approx(res.max_cover.objective)
    lscp = spopt.LSCP.from_cost_matrix(
        dense[res.buildings["siting_coverable"].to_numpy()], service_radius=params.target_s,
        predefined_facilities_arr=predefined,
    )  # fmt: skip
    lscp.solve(pulp.PULP_CBC_CMD(msg=False))
    assert pulp.value(lscp.problem.objective) - E.shape[0] == res.min_count.objective


# ---------------------------------------------------------------------- greedy and gaps
@pytest.mark.parametrize("seed", range(4))
def test_greedy_never_better_and_gap_is_correct(seed):
    G = lattice(10, 8)
    b = buildings(400, 40 + seed, 10, 8)
    res = site_micro_stations(
        G, b, stations([(250, 250)]), candidates=None,
        params=SitingParams(k=4, weight="risk_index", candidate_spacing_m=50.0, **PARAMS),
    )  # fmt: skip
    A = coverage_from_times(res.times)
    pre = res.buildings["siting_covered_before"].to_numpy()
    w = b["risk_index"].to_numpy()
    curve = res.curve
    assert (curve["covered_weight"] >= curve["greedy_weight"] - 1e-9).all()
    assert curve["optimal"].all() and (np.diff(curve["covered_weight"]) >= -1e-9).all()
    for k in (1, 2, 4, 6):
        exact = max_cover(A, k, weights=w, existing_covered=pre, method="exact")
        greedy = max_cover(A, k, weights=w, existing_covered=pre, method="greedy")
        assert exact.optimal and greedy.method == "greedy"
        assert greedy.objective <= exact.objective + 1e-9
        assert greedy.bound >= exact.objective - 1e-6
        assert greedy.gap == pytest.approx((greedy.bound - greedy.objective) / greedy.objective)
        # The true gap never exceeds the reported one.
        assert (exact.objective - greedy.objective) / greedy.objective <= greedy.gap + 1e-9
    gs = set_cover(A, existing_covered=pre, method="greedy")
    es = set_cover(A, existing_covered=pre, method="exact")
    assert gs.objective >= es.objective >= gs.bound
    assert gs.gap == pytest.approx((gs.objective - gs.bound) / gs.objective)
    # The greedy curve is the nested greedy sequence.
    sel, gains = greedy_max_cover(A, 4, weights=w, existing_covered=pre)
    np.testing.assert_allclose(
        curve["greedy_weight"].to_numpy(), w[pre].sum() + np.r_[0, np.cumsum(gains)]
    )


@pytest.mark.parametrize("seed", range(15))
def test_lagrangian_bounds_are_valid_and_near_the_lp(seed):
    rng = np.random.default_rng(100 + seed)
    m, n = int(rng.integers(30, 120)), int(rng.integers(8, 25))
    A = rng.random((m, n)) < rng.uniform(0.05, 0.2)
    w = rng.integers(0, 10, m).astype(float)
    pre = rng.random(m) < 0.1
    for k in (1, 3, 5):
        exact = max_cover(A, k, weights=w, existing_covered=pre, method="exact")
        lp = max_cover(A, k, weights=w, existing_covered=pre, method="greedy")
        lag = max_cover(A, k, weights=w, existing_covered=pre, method="greedy", bound="lagrangian")
        assert lag.objective == lp.objective <= exact.objective + 1e-9
        assert lag.bound >= exact.objective - 1e-9 and lag.bound >= lp.bound - 1e-6
        assert lag.bound <= lp.bound * 1.05 + 1e-9  # subgradient ends close to the LP bound
        assert lag.gap == pytest.approx((lag.bound - lag.objective) / lag.objective)
    exact = set_cover(A, existing_covered=pre, method="exact")
    lag = set_cover(A, existing_covered=pre, method="greedy", bound="lagrangian")
    lp = set_cover(A, existing_covered=pre, method="greedy")
    assert lag.bound <= exact.objective <= lag.objective
    assert lag.bound >= lp.bound - 1  # rounded-up bounds within one site of the LP's
    with pytest.raises(ValueError, match="bound"):
        max_cover(A, 2, bound="dual")


def test_pruning_a_greedy_cover_keeps_coverage_and_drops_redundant_sites():
    # The classic trap: greedy takes the big middle site first, then needs both halves.
    A = np.zeros((8, 3), bool)
    A[:4, 0] = True
    A[4:, 1] = True
    A[[0, 1, 2, 4, 5], 2] = True
    greedy = set_cover(A, method="greedy")
    assert greedy.selected[0] == 2 and len(greedy.selected) == 3
    assert sorted(prune_redundant(A, greedy.selected)) == [0, 1]
    rng = np.random.default_rng(0)
    for _ in range(20):
        B = rng.random((50, 20)) < 0.15
        pre = rng.random(50) < 0.2
        sel = set_cover(B, existing_covered=pre, method="greedy").selected
        kept = prune_redundant(B, sel, existing_covered=pre)
        assert set(kept) <= set(sel)
        assert np.array_equal(pre | B[:, kept].any(1), pre | B[:, sel].any(1))
        for j in kept:  # every kept site is needed
            others = [x for x in kept if x != j]
            assert not np.array_equal(pre | B[:, others].any(1), pre | B[:, kept].any(1))


def test_gain_curve_without_exact_per_k_labels_greedy_rows():
    rng = np.random.default_rng(3)
    A = sp.csc_matrix(rng.random((60, 12)) < 0.15)
    df, sols = gain_curve(A, 4, exact_per_k=False)
    assert list(df["method"]) == ["existing", "greedy", "greedy", "greedy", "milp"]
    assert sols[:3] == [None, None, None] and sols[3].optimal
    assert df["n_new"].tolist() == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------- existing stations, layers
def test_existing_stations_count_as_covered_and_layers_add_up():
    G = lattice()
    b = buildings(150, 3)
    st = stations([(150, 100), (550, 300)], vehicle=("ebike", "foot"), turnout=(30.0, 45.0))
    params = SitingParams(k=3, **PARAMS)
    res = site_micro_stations(G, b, st, params=params)
    pre = res.buildings["siting_covered_before"].to_numpy()
    assert 0 < pre.sum() < len(b)
    # Same as the access step's figure handed over as t_micro_s, and as an explicit mask.
    t = existing_micro_times(G, b, st)
    assert np.array_equal(pre, t <= params.target_s)
    with_col = site_micro_stations(G, b.assign(t_micro_s=t), None, params=params)
    explicit = site_micro_stations(G, b, None, params=params, existing_covered=pre)
    for other in (with_col, explicit):
        assert other.max_cover.objective == res.max_cover.objective
    s = res.sites
    out = res.buildings
    assert list(s["rank"]) == list(range(1, len(s) + 1))
    assert s["gain_buildings"].sum() == out["siting_covered_after"].sum() - pre.sum()
    assert (np.diff(s["gain_buildings"]) <= 0).all()  # ranked by what each adds
    assert s["covered_after"].iloc[-1] == out["siting_covered_after"].sum()
    assert s["gain_residents"].sum() == pytest.approx(
        b["residents"].to_numpy()[out["siting_covered_after"] & ~out["siting_covered_before"]].sum()
    )
    assert res.curve["covered_buildings"].iloc[-1] == out["siting_covered_after"].sum()
    new = out["siting_site_id"] != ""
    assert np.array_equal(out["siting_covered_after"], pre | new)
    assert (out.loc[new, "siting_t_new_s"] <= params.target_s).all()
    assert out.loc[~new, "siting_t_new_s"].isna().all()
    assert set(out.loc[new, "siting_site_id"]) <= set(s["site_id"])
    assert s.crs == b.crs and s["road_name"].str.len().gt(0).all()
    assert "siting_covered_after" not in b.columns  # input untouched


# ---------------------------------------------------------------------- capacities
def enumerate_capacitated(A, w, d, C, pre, sites):
    """Best weight assignable to ``sites`` (each demand to one covering site, within capacity)."""
    m = A.shape[0]
    options = [
        [-1] if pre[i] else [-1] + [j for j in sites if A[i, j] and d[i] <= C[j]] for i in range(m)
    ]
    best_w, best_n = 0.0, 0
    for a in itertools.product(*options):
        a = np.array(a)
        load = np.zeros(len(C))
        np.add.at(load, a[a >= 0], d[a >= 0])
        if (load <= C + 1e-9).all():
            best_w = max(best_w, float(w[a >= 0].sum()))
            best_n = max(best_n, int((a >= 0).sum()))
    return best_w, best_n


@pytest.mark.parametrize("seed", range(30))
def test_capacitated_cover_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(4, 8)), int(rng.integers(2, 5))
    A = rng.random((m, n)) < 0.4
    w = rng.integers(1, 10, m).astype(float)
    d = rng.integers(0, 4, m).astype(float)
    C = rng.integers(2, 7, n).astype(float)
    pre = rng.random(m) < 0.15
    k = int(rng.integers(1, 3))
    best = w[pre].sum() + max(
        enumerate_capacitated(A, w, d, C, pre, s)[0]
        for s in itertools.combinations(range(n), min(k, n))
    )
    kw = dict(capacity=C, demand=d, weights=w, existing_covered=pre)
    exact = max_cover_capacitated(A, k, method="exact", **kw)
    greedy = max_cover_capacitated(A, k, method="greedy", **kw)
    assert exact.optimal and exact.objective == pytest.approx(best)
    for sol in (exact, greedy):
        a = sol.assignment
        assert set(a[a >= 0]) <= set(sol.selected) and len(sol.selected) <= k
        assert (A[np.flatnonzero(a >= 0), a[a >= 0]]).all() and not (a[pre] >= 0).any()
        load = np.bincount(a[a >= 0], weights=d[a >= 0], minlength=n)
        assert (load <= C + 1e-9).all()
        assert sol.objective == pytest.approx(w[pre | (a >= 0)].sum())
    assert greedy.objective <= best + 1e-9 and greedy.bound >= best - 1e-6
    assert greedy.gap == pytest.approx((greedy.bound - greedy.objective) / greedy.objective)
    # Minimal count: most demands served first, then fewest sites.
    served = enumerate_capacitated(A, np.ones(m), d, C, pre, range(n))[1]
    fewest = next(
        r
        for r in range(n + 1)
        if any(
            enumerate_capacitated(A, np.ones(m), d, C, pre, s)[1] == served
            for s in itertools.combinations(range(n), r)
        )
    )
    sc = set_cover_capacitated(A, capacity=C, demand=d, existing_covered=pre, method="exact")
    assert sc.optimal and sc.objective == fewest and (sc.assignment >= 0).sum() == served
    gs = set_cover_capacitated(A, capacity=C, demand=d, existing_covered=pre, method="greedy")
    assert gs.bound <= fewest
    assert (gs.assignment >= 0).sum() < served or gs.objective >= fewest


def test_unlimited_capacity_equals_uncapacitated():
    rng = np.random.default_rng(11)
    A = rng.random((30, 8)) < 0.25
    w = rng.integers(1, 9, 30).astype(float)
    pre = rng.random(30) < 0.2
    for k in (1, 2, 3):
        cap = max_cover_capacitated(A, k, capacity=np.inf, weights=w, existing_covered=pre)
        assert cap.objective == pytest.approx(
            max_cover(A, k, weights=w, existing_covered=pre).objective
        )
    assert (
        set_cover_capacitated(A, capacity=1e9, existing_covered=pre).objective
        == set_cover(A, existing_covered=pre).objective
    )


def test_siting_with_capacity_respects_it():
    G = lattice()
    b = buildings(150, 8)
    params = SitingParams(k=3, capacity=20, **PARAMS)
    res = site_micro_stations(G, b, stations([(150, 100)]), params=params)
    assert res.max_cover.assignment is not None and res.max_cover.optimal
    assert (res.sites["gain_buildings"] <= 20).all()
    assert res.sites["gain_buildings"].sum() == res.max_cover.objective - res.curve.iloc[0, 1]
    new = res.buildings["siting_site_id"] != ""
    assert (
        res.buildings.groupby("siting_site_id")["building_id"]
        .size()[list(res.sites["site_id"])]
        .le(20)
        .all()
    )
    assert new.sum() == res.sites["gain_buildings"].sum()
    unc = site_micro_stations(
        G, b, stations([(150, 100)]), params=SitingParams(k=3, min_count=False, **PARAMS)
    )
    assert res.max_cover.objective <= unc.max_cover.objective
    # Residents as the unit: a station serves at most 300 residents.
    res_r = site_micro_stations(
        G, b, stations([(150, 100)]),
        params=SitingParams(k=2, capacity=300, capacity_unit="residents", min_count=False,
                            **PARAMS),
    )  # fmt: skip
    assert (res_r.sites["gain_residents"] <= 300).all()


# ---------------------------------------------------------------------- errors
def test_input_errors_name_the_problem():
    G = lattice()
    b = buildings(20, 1)
    with pytest.raises(InputError, match="degrees"):
        site_micro_stations(G, b.to_crs(4326), None, params=SitingParams(**PARAMS))
    with pytest.raises(InputError, match="risk_score"):
        site_micro_stations(G, b, None, params=SitingParams(weight="risk_score", **PARAMS))
    bad = b.copy()
    bad.loc[3, "risk_index"] = np.nan
    with pytest.raises(InputError, match="B003"):
        site_micro_stations(G, bad, None, params=SitingParams(weight="risk_index", **PARAMS))


# ---------------------------------------------------------------------- the demo district
@pytest.mark.slow
@pytest.mark.skipif(not DEMO.exists(), reason=f"demo district not generated at {DEMO}")
def test_demo_district_siting():
    from firegrid.config import district_from_config, load_config
    from firegrid.spatial.network.load import read_network

    cfg = load_config(DEMO)
    district, _ = district_from_config(cfg)
    G = read_network(district.network_source, crs=district.crs)
    b = district.buildings
    res = site_micro_stations(
        G, b, district.stations, params=SitingParams(k=3, min_count=False, time_limit_s=60)
    )
    curve = res.curve
    assert curve["optimal"].all() and (np.diff(curve["covered_buildings"]) > 0).all()
    assert (curve["covered_weight"] >= curve["greedy_weight"]).all()
    assert len(res.sites) == 3 and res.sites.crs == district.crs
    before = res.buildings["siting_covered_before"].sum()
    assert 0 < before < len(b)  # the demo's micro-stations leave gaps (north and east)
    # Existing coverage is the access step's 3-minute coverage, building for building.
    from firegrid.spatial.access.travel_times import building_access

    acc = building_access(b, district.stations, G)
    assert np.array_equal(
        acc["covered_3min"].to_numpy(bool), res.buildings["siting_covered_before"].to_numpy()
    )
    assert res.sites["gain_buildings"].sum() == res.buildings["siting_covered_after"].sum() - before
    hull = shapely.convex_hull(shapely.union_all(b.geometry.values)).buffer(100.0 + 1e-6)
    assert shapely.contains(hull, res.sites.geometry.values).all()
    # The exact k = 3 answer is the optimum of the independent formulation too.
    A = coverage_from_times(res.times)
    pre = res.buildings["siting_covered_before"].to_numpy()
    greedy = max_cover(A, 3, existing_covered=pre, method="greedy")
    assert greedy.objective <= res.max_cover.objective <= greedy.bound + 1e-9


# ---------------------------------------------------------------------- solver time-outs
@pytest.mark.parametrize("seed", [0, 2])
def test_siting_when_highs_gives_no_answer(monkeypatch, seed):
    """HiGHS returns nothing in time: greedy answers, pruned of redundant sites, honest gaps."""
    import firegrid.spatial.siting.stations as siting_module

    def no_answer(c, cons, time_limit_s, integral=True, presolve=True):
        return SimpleNamespace(x=None, status=1, mip_dual_bound=None, fun=None)

    pruned = []

    def recording_prune(cover, selected, *, existing_covered=None):
        kept = prune_redundant(cover, selected, existing_covered=existing_covered)
        pruned.append((len(selected), len(kept)))
        return kept

    monkeypatch.setattr("firegrid.spatial.siting.cover._solve", no_answer)
    monkeypatch.setattr(siting_module, "prune_redundant", recording_prune)
    G = lattice()
    b = buildings(90, seed)
    st = stations([(150, 100)], vehicle=("foot",))
    res = site_micro_stations(
        G, b, st, params=SitingParams(k=2, **PARAMS), candidates=user_candidates(12, 10 + seed)
    )
    pre = res.buildings["siting_covered_before"].to_numpy()
    coverable = res.buildings["siting_coverable"].to_numpy()
    w = np.ones(len(b))
    # Maximal coverage: the greedy answer, feasible, its bound above the enumerated optimum.
    mc = res.max_cover
    best = enumerate_best(res.times, w, pre, 2)
    assert mc.method == "greedy" and len(res.sites) <= 2
    assert mc.objective <= best + 1e-9 and mc.bound >= best - 1e-9
    assert mc.gap >= (best - mc.objective) / mc.objective - 1e-12
    assert not mc.optimal  # timed out: never called optimal, even where greedy meets the bound
    assert mc.gap == pytest.approx((mc.bound - mc.objective) / mc.objective)
    # Fewest stations: greedy pruned of redundant picks; covers every coverable building.
    ms = res.min_count
    fewest = enumerate_min_count(res.times, pre)
    rows = res.candidates.index[
        res.candidates["candidate_id"].isin(res.min_count_sites["candidate_id"])
    ]
    reach = [set(res.times[r].indices) for r in rows]
    got = pre.copy()
    got[list(set().union(*reach))] = True
    assert (got == coverable).all()
    assert ms.objective == len(rows) >= fewest
    assert ms.bound <= fewest
    assert ms.gap == pytest.approx((ms.objective - ms.bound) / ms.objective)
    assert ms.optimal == (ms.objective == ms.bound)
    for r in range(len(rows)):  # no site is redundant after pruning
        others = set().union(set(), *(reach[:r] + reach[r + 1 :]))
        assert not reach[r] <= others | set(np.flatnonzero(pre))
    assert pruned and all(after <= before for before, after in pruned)
    if seed == 0:  # on this district greedy's cover had a redundant site, now dropped
        assert any(after < before for before, after in pruned)


# ---------------------------------------------------------------------- one network, one rule
def test_siting_compiles_through_the_table_and_follows_the_auto_rule(monkeypatch):
    import firegrid.spatial.siting.cover as cover_module
    from firegrid.spatial.network.routing import graph_table
    from firegrid.spatial.siting.stations import SITING_COLUMNS

    table = graph_table(lattice())
    b = buildings(120, 4)
    st = stations([(150, 100)], vehicle=("ebike",))
    params = SitingParams(k=2, **PARAMS)
    exact = site_micro_stations(table, b, st, params=params)
    crews = table.compiled(AccessParams().profile("ebike"))
    assert table.work["compile"] == 1  # the crews' graph, also used for existing coverage
    # Given the table's own compiled graph and the access step's times: nothing is compiled.
    t = existing_micro_times(table, b, st)
    again = site_micro_stations(crews, b.assign(t_micro_s=t), None, params=params)
    assert table.work["compile"] == 1
    assert again.max_cover.objective == exact.max_cover.objective
    assert exact.max_cover.method == "milp" and exact.min_count.method == "milp"
    # Above the covering module's one limit "auto" goes greedy (with the Lagrangian bound).
    monkeypatch.setattr(cover_module, "AUTO_EXACT_MAX_PAIRS", 0)
    greedy = site_micro_stations(table, b, st, params=params)
    assert greedy.max_cover.method == "greedy" and greedy.min_count.method == "greedy"
    assert greedy.max_cover.objective <= exact.max_cover.objective <= greedy.max_cover.bound
    # The per-building columns the pipeline merges into the buildings layer.
    cols = exact.building_columns()
    assert tuple(cols.columns) == SITING_COLUMNS and cols.index.equals(b.index)
    assert int(cols["siting_covered_after"].sum()) == exact.summary()["covered_after"]
