"""Access per building: fastest station times, counts within target, flags, grid summaries."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from firegrid.spatial.access.analysis import analyse_access
from firegrid.spatial.access.travel_times import (
    ACCESS_COLUMNS,
    building_access,
    compile_graphs,
    coverage_by_grid,
    missing_buildings,
    station_groups,
)
from firegrid.spatial.errors import InputError
from firegrid.spatial.io.grids import assign_grids
from firegrid.spatial.network.profiles import AccessParams
from firegrid.spatial.network.routing import Snap, node_costs, snap
from tests.test_routing import CRS, grid_graph, profile_weighted, random_points, reference_costs

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "demo.toml"


# ---------------------------------------------------------------------- a small district
@pytest.fixture(scope="module")
def district():
    G = grid_graph(n=7, seed=8)
    x0, y0 = G.nodes[0]["x"], G.nodes[0]["y"]  # south-west corner of the grid
    stations = gpd.GeoDataFrame(
        {
            "station_id": ["F1", "M1", "M2", "M3"],
            "name": ["消防站", "微站一", "微站二", "微站三"],
            "kind": ["fire_station", "micro_station", "micro_station", "micro_station"],
            "vehicle": [None, "ebike", "foot", None],  # M3 takes the default (ebike)
            "turnout_s": [60.0, 30.0, np.nan, 45.0],  # M2 takes its profile's 60 s
        },
        geometry=shapely.points(
            [(x0 + 12, y0 + 40), (x0 + 310, y0 + 290), (x0 + 590, y0 + 130), (x0 + 150, y0 + 520)]
        ),
        crs=CRS,
    )
    rg = compile_graphs(G)["foot"]
    pts = random_points(rg, 200, seed=9, pad=30).to_numpy()
    pts = pts[shapely.within(pts, shapely.box(x0 - 30, y0 - 30, x0 + 630, y0 + 630))][:120]
    island = next(i for i, n in enumerate(rg.node_ids) if n == 10_000)
    extra = [
        shapely.Point(x0 + 3000, y0 + 3000),  # far from every street
        shapely.Point(rg.node_x[island] + 40, rg.node_y[island] + 5),  # on the island
        None,  # missing geometry
        shapely.box(x0 + 200, y0 + 205, x0 + 220, y0 + 225),  # a footprint polygon
    ]
    geoms = np.concatenate([pts, np.array(extra, dtype=object)])
    n = len(geoms)
    rng = np.random.default_rng(2)
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:03d}" for i in range(n)],
            "use": rng.choice(["residential", "shop"], n),
            "year_built": rng.integers(1950, 2020, n),
            "residents": rng.integers(0, 50, n),
        },
        geometry=geoms,
        crs=CRS,
        index=pd.RangeIndex(100, 100 + n),  # a non-default index must survive
    )
    return G, buildings, stations


def test_columns_rows_and_inputs_untouched(district):
    G, buildings, stations = district
    before = buildings.copy()
    out = building_access(buildings, stations, G)
    assert list(out.columns[-len(ACCESS_COLUMNS) :]) == list(ACCESS_COLUMNS)
    assert out.index.equals(buildings.index) and len(out) == len(buildings)
    pd.testing.assert_frame_equal(buildings, before)  # not mutated
    assert out["t_fire_s"].dtype == float and out["n_micro_3min"].dtype == np.int64
    assert out["covered_3min"].dtype == bool and out["access_issue"].dtype == "str"
    # A reason exactly where a time is missing (a random grid has one-way pockets engines
    # cannot reach: "fire: disconnected").
    timed = out["t_fire_s"].notna() & out["t_micro_s"].notna()
    assert ((out["access_issue"] == "") == timed).all()
    assert timed.sum() > 60


def test_times_equal_reference_dijkstra(district):
    """t_*_s, station ids and counts equal networkx Dijkstra with edges split at every point."""
    G, buildings, stations = district
    params = AccessParams()
    out = building_access(buildings, stations, G, params=params)
    graphs = compile_graphs(G, params)
    for kind, tcol, sid, ncol, target in (
        ("fire_station", "t_fire_s", "fire_station_id", "n_fire_5min", params.target_fire_s),
        ("micro_station", "t_micro_s", "micro_station_id", "n_micro_3min", params.target_micro_s),
    ):
        ref_t = np.full(len(buildings), np.inf)
        ref_id = np.full(len(buildings), None, dtype=object)
        ref_n = np.zeros(len(buildings), dtype=int)
        for g in station_groups(stations, params):
            if g.kind != kind:
                continue
            rg = graphs[g.vehicle]
            ss = snap(rg, stations.geometry.iloc[g.rows])
            bs = snap(rg, buildings.geometry, max_snap_m=params.max_snap_m)
            ref = reference_costs(rg, ss, bs, g.turnout_s)
            best = ref.min(axis=0)
            better = best < ref_t
            ref_t[better] = best[better]
            ref_id[better] = g.station_id[ref.argmin(axis=0)[better]]
            ref_n += (ref <= target).sum(axis=0)
        fin = np.isfinite(ref_t)
        got = out[tcol].to_numpy()
        np.testing.assert_allclose(got[fin], ref_t[fin], atol=1e-6, rtol=0)
        assert np.isnan(got[~fin]).all()
        assert (out[sid].to_numpy(dtype=object)[fin] == ref_id[fin]).all()
        assert (out[ncol].to_numpy() == ref_n).all()
    # Turnout defaults: M2 (foot, no turnout) uses 60 s, M3 (no vehicle) rides an e-bike.
    groups = {g.vehicle: g for g in station_groups(stations, params) if g.kind == "micro_station"}
    assert groups["foot"].turnout_s.tolist() == [60.0]
    assert groups["ebike"].station_id.tolist() == ["M1", "M3"]


def test_coverage_and_shortfall_follow_targets(district):
    G, buildings, stations = district
    for target in (180.0, 120.0):
        out = building_access(buildings, stations, G, params=AccessParams(target_micro_s=target))
        t = out["t_micro_s"]
        assert (out["covered_3min"] == (t <= target)).all()
        np.testing.assert_allclose(out["shortfall_3min_s"], np.maximum(0, t - target))
        assert (out["n_micro_3min"][out["covered_3min"]] >= 1).all()
        assert (out["n_micro_3min"][~out["covered_3min"]] == 0).all()
        assert (out["covered_5min"] == (out["t_fire_s"] <= 300)).all()
    assert 0 < out["covered_3min"].sum() < len(out)


def test_unserved_buildings_flagged_never_dropped_or_zero(district):
    G, buildings, stations = district
    out = building_access(buildings, stations, G)
    far, island, missing, footprint = out.iloc[-4], out.iloc[-3], out.iloc[-2], out.iloc[-1]
    assert far["access_issue"].startswith("too far from road (")
    assert abs(float(far["access_issue"].split("(")[1].split(" ")[0]) - far["access_m"]) <= 0.5
    assert island["access_issue"] == "disconnected"
    assert missing["access_issue"] == "no geometry"
    for row in (far, island, missing):
        for col in ("t_fire_s", "t_micro_s", "shortfall_3min_s", "shortfall_5min_s"):
            assert np.isnan(row[col])
        assert not row["covered_3min"] and not row["covered_5min"]
        assert pd.isna(row["micro_station_id"]) and row["n_micro_3min"] == 0
    assert footprint["access_issue"] == "" and np.isfinite(footprint["t_micro_s"])
    # Snapped buildings have the access leg counted: never a zero time.
    assert (out["t_micro_s"].dropna() > 0).all()


def test_station_off_network_warns_with_name_and_distance(district):
    G, buildings, stations = district
    moved = stations.copy()
    p = moved.geometry.iloc[2]
    moved.loc[2, "geometry"] = shapely.Point(p.x + 50, p.y - 400)
    with pytest.warns(
        UserWarning, match=r"micro_station.*placed off the road network.*M2 \(\d+ m\)"
    ):
        building_access(buildings, moved, G)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        building_access(buildings, stations, G)  # stations on streets: silent


def test_only_one_kind_of_station(district):
    G, buildings, stations = district
    out = building_access(buildings, stations[stations["kind"] == "micro_station"], G)
    assert out["t_fire_s"].isna().all() and (out["n_fire_5min"] == 0).all()
    has_geom = out.geometry.notna()
    assert out.loc[has_geom, "access_issue"].str.contains("no fire_station").all()
    assert out["t_micro_s"].notna().sum() == len(out) - 3


def test_bad_inputs(district):
    G, buildings, stations = district
    with pytest.raises(InputError, match="degrees"):
        building_access(buildings.to_crs(4326), stations, G)
    other = buildings.to_crs("EPSG:32650")
    with pytest.raises(InputError, match="reproject"):
        building_access(other, stations, G)
    bad = stations.assign(kind=["fire_station", "micro_station", "tower", "micro_station"])
    with pytest.raises(InputError, match="tower"):
        building_access(buildings, bad, G)


def test_coverage_by_grid_and_missing(district):
    G, buildings, stations = district
    out = building_access(buildings, stations, G)
    x0, y0, x1, y1 = out.total_bounds
    xm = G.nodes[0]["x"] + 300.0  # splits the street grid in two
    grids = gpd.GeoDataFrame(
        {"grid_id": ["S", "W", "E"], "level": [1, 2, 2], "parent_id": [None, "S", "S"]},
        geometry=[
            shapely.box(x0 - 1, y0 - 1, x1 + 1, y1 + 1),
            shapely.box(x0 - 1, y0 - 1, xm, y1 + 1),
            shapely.box(xm, y0 - 1, x1 + 1, y1 + 1),
        ],
        crs=CRS,
    )
    summ = coverage_by_grid(out, grids).set_index("grid_id")
    # Old residential figures are the risk roll-up's (one definition, the configured year).
    assert not {"n_old_res", "share_old_res_3min", "share_old_res_5min_fire"} & set(summ.columns)
    has_geom = out.geometry.notna()
    pts = out[has_geom]
    west = shapely.point_on_surface(pts.geometry.to_numpy())
    west = np.array([p.x < xm for p in west])
    for gid, sel in (("S", np.ones(len(pts), bool)), ("W", west), ("E", ~west)):
        b = pts[sel]
        row = summ.loc[gid]
        assert row["n_buildings"] == len(b)
        assert row["n_covered_3min"] == b["covered_3min"].sum()
        res = b["residents"].astype(float)
        assert row["share_residents_3min"] == pytest.approx(
            (res * b["covered_3min"]).sum() / res.sum()
        )
        assert row["n_covered_5min"] == b["covered_5min"].sum()
        assert row["max_shortfall_3min_s"] == pytest.approx(b["shortfall_3min_s"].max())
    assert (
        summ.loc["W", "n_buildings"] + summ.loc["E", "n_buildings"] == summ.loc["S", "n_buildings"]
    )

    miss = missing_buildings(out, target="3min", grids=grids)
    assert set(miss["building_id"]) == set(out.loc[~out["covered_3min"], "building_id"])
    s = miss["shortfall_s"].to_numpy()
    assert np.isinf(s[:3]).all()  # the unreachable ones first
    assert (np.diff(s[3:]) <= 0).all()
    assert miss["grid_id_l1"].iloc[3:].eq("S").all()


def test_grid_figures_use_the_cells_given(district):
    """A run assigns buildings to cells once; the grid figures then read that table."""
    G, buildings, stations = district
    out = building_access(buildings, stations, G)
    x0, y0, x1, y1 = out.total_bounds
    xm = (x0 + x1) / 2
    grids = gpd.GeoDataFrame(
        {"grid_id": ["W", "E"], "level": [1, 1]},
        geometry=[shapely.box(x0 - 1, y0 - 1, xm, y1 + 1), shapely.box(xm, y0 - 1, x1 + 1, y1 + 1)],
        crs=CRS,
    )
    cells, _ = assign_grids(out, grids)
    same = coverage_by_grid(out, grids, cells=cells)
    pd.testing.assert_frame_equal(pd.DataFrame(same), pd.DataFrame(coverage_by_grid(out, grids)))
    miss = missing_buildings(out, target="any", grids=grids)
    pd.testing.assert_frame_equal(
        pd.DataFrame(missing_buildings(out, target="any", grids=grids, cells=cells)),
        pd.DataFrame(miss),
    )
    # Every building placed in "E" by the table given: the figures follow the table.
    all_east = cells.assign(grid_id_l1=pd.Series("E", index=cells.index, dtype="string"))
    east = coverage_by_grid(out, grids, cells=all_east).set_index("grid_id")
    assert east.loc["E", "n_buildings"] == len(out) and east.loc["W", "n_buildings"] == 0
    moved = missing_buildings(out, target="any", grids=grids, cells=all_east)
    assert len(moved) == len(miss) and moved["grid_id_l1"].eq("E").all()


# ---------------------------------------------------------------------- the demo district
@pytest.fixture(scope="module")
def demo():
    if not DEMO.exists():
        pytest.skip(f"demo district not found at {DEMO} (python data/make_demo.py)")
    from firegrid.config import district_from_config, load_config
    from firegrid.spatial.network.load import read_network

    cfg = load_config(DEMO)
    d, _ = district_from_config(cfg)
    # The osmnx MultiDiGraph of the network: the reference below walks it edge by edge.
    G = read_network(cfg.network_source, crs=d.crs).to_networkx()
    return G, d


@pytest.mark.slow
def test_demo_times_equal_networkx(demo):
    G, d = demo
    params = AccessParams()
    out = building_access(d.buildings, d.stations, G, params=params)
    graphs = compile_graphs(G, params)
    sample = np.random.default_rng(0).choice(len(out), 150, replace=False)
    for g in station_groups(d.stations, params):
        rg = graphs[g.vehicle]
        ss = snap(rg, d.stations.geometry.iloc[g.rows])
        # Node level: the compiled graph against networkx on the osmnx graph, edge by edge.
        ref_g = profile_weighted(G, params.profile(g.vehicle))
        index = {nid: i for i, nid in enumerate(rg.node_ids)}
        for k, row in enumerate(g.rows):
            node = int(rg.seg_a[ss.seg[k]])
            d_nx = nx.single_source_dijkstra_path_length(ref_g, rg.node_ids[node], weight="cost")
            at = Snap.at(rg, ss.seg[k : k + 1], np.zeros(1))
            D = node_costs(rg, at)[0]
            ref = np.array([d_nx.get(n, np.inf) for n in rg.node_ids])
            assert (np.isfinite(D) == np.isfinite(ref)).all(), stations_name(d, row)
            fin = np.isfinite(ref)
            np.testing.assert_allclose(D[fin], ref[fin], atol=1e-6, rtol=0)
            assert len(index) == rg.n_nodes
    # Building level: fastest micro-station time against networkx with edges split.
    best = np.full(len(sample), np.inf)
    for g in station_groups(d.stations, params):
        if g.kind != "micro_station":
            continue
        rg = graphs[g.vehicle]
        ss = snap(rg, d.stations.geometry.iloc[g.rows])
        bs = snap(rg, d.buildings.geometry.iloc[sample], max_snap_m=params.max_snap_m)
        best = np.minimum(best, reference_costs(rg, ss, bs, g.turnout_s).min(axis=0))
    np.testing.assert_allclose(out["t_micro_s"].to_numpy()[sample], best, atol=1e-6, rtol=0)


def stations_name(d, row) -> str:
    return str(d.stations["station_id"].iloc[row])


def test_demo_analyse_access(demo):
    G, d = demo
    res = analyse_access(G, d.buildings, d.stations, grids=d.grids)
    b = res.buildings
    assert len(b) == len(d.buildings)
    assert b["t_micro_s"].notna().all() and b["t_fire_s"].notna().all()
    assert 0 < b["covered_3min"].mean() < 1
    assert set(res.isochrones["minutes"]) == {1.0, 3.0, 5.0}
    assert len(res.isochrones) == 3 * len(d.stations)
    assert set(res.areas["station_id"]) == set(d.stations["station_id"])
    levels = res.grid_summary.groupby("level")["n_buildings"].sum()
    assert levels.loc[1] == len(b)  # the subdistrict holds every building
    assert res.missing["shortfall_s"].is_monotonic_decreasing
