"""Water supply: hydrant coverage along streets, spacing gaps, water sources, zones, grids, siting."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.network.profiles import default_profile
from firegrid.spatial.network.routing import RoutingGraph, Snap, nearest_cost, snap
from firegrid.spatial.siting.cover import greedy_set_cover, set_cover
from firegrid.spatial.siting.hydrants import hydrant_candidates, propose_hydrants
from firegrid.spatial.water.by_grid import water_by_grid
from firegrid.spatial.water.coverage import analyse_water, deficiency_score, hydrant_coverage
from firegrid.spatial.water.hose import (
    hose_graph,
    nearest_per_owner,
    street_starts,
    street_subgraph,
)
from firegrid.spatial.water.params import WaterParams
from firegrid.spatial.water.sources import water_source_status
from firegrid.spatial.water.spacing import hydrant_spacing_gaps, substrings
from firegrid.spatial.water.zones import water_deficient_zones

CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_460_000.0
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "demo.toml"


# ---------------------------------------------------------------------- builders
def graph(nodes: dict, edges: list, *, oneway: tuple = ()) -> nx.MultiDiGraph:
    """An osmnx-like projected graph. ``edges``: (u, v[, highway[, name]]); coordinates are
    metres from (X0, Y0)."""
    G = nx.MultiDiGraph(crs=CRS)
    for k, (x, y) in nodes.items():
        G.add_node(k, x=X0 + x, y=Y0 + y)
    for u, v, *rest in edges:
        hw = rest[0] if rest else "residential"
        name = rest[1] if len(rest) > 1 else f"street {u}-{v}"
        a = (G.nodes[u]["x"], G.nodes[u]["y"])
        b = (G.nodes[v]["x"], G.nodes[v]["y"])
        line = shapely.LineString([a, b])
        data = dict(highway=hw, name=name, length=line.length)
        G.add_edge(u, v, 0, geometry=line, **data)
        if (u, v) not in oneway:
            G.add_edge(v, u, 0, geometry=line.reverse(), **data)
    return G


def points(xy) -> gpd.GeoSeries:
    return gpd.GeoSeries([shapely.Point(X0 + x, Y0 + y) for x, y in xy], crs=CRS)


def hydrants(xy, status=None, ids=None) -> gpd.GeoDataFrame:
    n = len(xy)
    return gpd.GeoDataFrame(
        {
            "hydrant_id": ids or [f"H{i}" for i in range(n)],
            "status": status or ["ok"] * n,
        },
        geometry=points(xy),
    )


def buildings(xy, ids=None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"building_id": ids or [f"B{i}" for i in range(len(xy))]}, geometry=points(xy)
    )


def straight_street(length: float = 1000.0, hw: str = "residential") -> nx.MultiDiGraph:
    return graph(
        {0: (0, 0), 1: (length / 2, 0), 2: (length, 0)}, [(0, 1, hw, "A"), (1, 2, hw, "A")]
    )


# ---------------------------------------------------------------------- parameters
def test_params_defaults_and_from_mapping():
    p = WaterParams()
    assert (p.hydrant_radius_m, p.hydrant_spacing_m, p.source_radius_m) == (150.0, 120.0, 150.0)
    q = WaterParams.from_mapping(
        {"hydrant_radius_m": 120, "spacing_highways": ["primary"], "max_new_hydrants": 5}
    )
    assert q.hydrant_radius_m == 120.0 and q.spacing_highways == ("primary",)
    assert q.max_new_hydrants == 5
    with pytest.raises(ConfigError, match="unknown key.*radius"):
        WaterParams.from_mapping({"radius": 100})
    with pytest.raises(ConfigError, match="hydrant_radius_m"):
        WaterParams.from_mapping({"hydrant_radius_m": "far"})
    with pytest.raises(ConfigError, match="> 0"):
        WaterParams.from_mapping({"hydrant_spacing_m": 0})
    with pytest.raises(ConfigError, match="siting_method"):
        WaterParams.from_mapping({"siting_method": "magic"})
    with pytest.raises(ConfigError, match="count_unknown_capacity"):
        WaterParams.from_mapping({"count_unknown_capacity": "yes"})


def test_deficiency_score():
    s = deficiency_score(np.array([0.0, 1.0, 1.0001, 1.5, 2.0, 5.0, np.inf, np.nan]))
    assert s[0] == 0 and s[1] == 0
    assert s[2] == pytest.approx(0.5, abs=1e-3)
    assert s[3] == pytest.approx(0.75)
    assert list(s[4:]) == [1.0, 1.0, 1.0, 1.0]


# ---------------------------------------------------------------------- coverage, hand-built
def test_149_vs_151_m_along_the_street():
    # Hydrant 5 m off the street at x=100; buildings 5 m off at x=239 / 241: 5 + 139 + 5 = 149,
    # 5 + 141 + 5 = 151 metres of hose.
    G = straight_street()
    b = buildings([(239, 5), (241, 5)]).set_axis([10, 20])  # index kept, columns aligned
    out = hydrant_coverage(G, b, hydrants([(100, 5)]))
    assert list(out.index) == [10, 20]
    assert out["d_hydrant_net_m"].to_numpy() == pytest.approx([149.0, 151.0])
    assert out["d_hydrant_m"].to_numpy() == pytest.approx([139.0, 141.0])
    assert out["water_covered"].tolist() == [True, False]
    assert out["water_deficient"].tolist() == [False, True]
    assert out["hydrant_id_nearest"].tolist() == ["H0", "H0"]
    assert out["water_issue"].iloc[0] == ""
    assert "151 m" in out["water_issue"].iloc[1]
    assert out["water_deficiency"].iloc[0] == 0 and out["water_deficiency"].iloc[1] > 0.5
    # inputs untouched
    assert "water_covered" not in b
    # configurable radius
    out2 = hydrant_coverage(G, b, hydrants([(100, 5)]), params=WaterParams(hydrant_radius_m=152))
    assert out2["water_covered"].tolist() == [True, True]


def test_broken_and_missing_hydrants_are_ignored():
    G = straight_street()
    b = buildings([(500, 5)])
    h = hydrants([(500, -5), (510, 5), (800, 5)], status=["broken", "missing", "ok"])
    out = hydrant_coverage(G, b, h)
    assert out["hydrant_id_nearest"].iloc[0] == "H2"
    assert out["d_hydrant_net_m"].iloc[0] == pytest.approx(310.0)
    assert out["d_hydrant_m"].iloc[0] == pytest.approx(300.0)
    assert not out["water_covered"].iloc[0]
    # with no working hydrant at all: NaN distances, deficient, explained
    out = hydrant_coverage(G, b, h.assign(status=["broken", "missing", "broken"]))
    assert np.isnan(out["d_hydrant_net_m"].iloc[0]) and np.isnan(out["d_hydrant_m"].iloc[0])
    assert out["water_deficient"].iloc[0]
    assert out["hydrant_id_nearest"].isna().iloc[0]
    assert out["water_deficiency"].iloc[0] == 1.0
    assert "no working hydrant" in out["water_issue"].iloc[0]


def test_hydrant_across_the_river_is_far_along_streets():
    # South bank road y=0, north bank road y=100, river between, one bridge at x=1000.
    nodes = {0: (0, 0), 1: (1000, 0), 2: (0, 100), 3: (1000, 100)}
    G = graph(nodes, [(0, 1), (2, 3), (1, 3, "residential", "bridge")])
    b = buildings([(10, 5)])
    out = hydrant_coverage(G, b, hydrants([(10, 95)]))
    assert out["d_hydrant_m"].iloc[0] == pytest.approx(90.0)
    assert out["d_hydrant_net_m"].iloc[0] == pytest.approx(5 + 990 + 100 + 990 + 5)
    assert out["water_deficient"].iloc[0]
    # a second bridge at x = 0 makes it covered
    G2 = graph(nodes, [(0, 1), (2, 3), (1, 3), (0, 2)])
    only_nearest = WaterParams(street_facing_m=0.0)
    out2 = hydrant_coverage(G2, b, hydrants([(10, 95)]), params=only_nearest)
    assert out2["d_hydrant_net_m"].iloc[0] == pytest.approx(5 + 10 + 100 + 10 + 5)
    assert out2["water_covered"].iloc[0]
    # the building and the hydrant also front the x = 0 street (10 m away, within 20 m):
    # the hose runs along it, 10 + 90 + 10
    out3 = hydrant_coverage(G2, b, hydrants([(10, 95)]))
    assert out3["d_hydrant_net_m"].iloc[0] == pytest.approx(10 + 90 + 10)


def test_polygon_building_measured_from_its_street_facing_edge():
    G = straight_street()
    # A diamond whose lowest vertex points at the street at (300, 10); hydrant at (100, 0).
    diamond = shapely.Polygon([(300, 10), (320, 30), (300, 50), (280, 30)])
    diamond = shapely.transform(diamond, lambda xy: xy + [X0, Y0])
    b = gpd.GeoDataFrame({"building_id": ["D"]}, geometry=[diamond], crs=CRS)
    out = hydrant_coverage(G, b, hydrants([(100, 0)]))
    assert out["d_hydrant_net_m"].iloc[0] == pytest.approx(200 + 10)
    # straight line from the outline: the corner (280, 30) is nearer than the tip
    assert out["d_hydrant_m"].iloc[0] == pytest.approx(np.hypot(180, 30))
    # a hydrant inside the footprint: straight-line distance 0
    out = hydrant_coverage(G, b, hydrants([(300, 30)]))
    assert out["d_hydrant_m"].iloc[0] == 0.0


def test_one_way_streets_do_not_bind_a_hose():
    nodes = {0: (0, 0), 1: (100, 0), 2: (100, 300), 3: (0, 300)}
    edges = [(0, 1, "primary"), (1, 2, "primary"), (2, 3, "primary"), (3, 0, "primary")]
    G = graph(nodes, edges, oneway=((0, 1), (1, 2), (2, 3), (3, 0)))
    engine = RoutingGraph.from_graph(G, default_profile("engine"), weight="time")
    rg = hose_graph(engine)
    assert rg.weight == "length" and np.array_equal(rg.run_fwd, rg.run_back)
    # hydrant at (80, 0), building at (20, 0): 60 m against the one-way direction
    out = hydrant_coverage(engine, buildings([(20, 0)]), hydrants([(80, 0)]))
    assert out["d_hydrant_net_m"].iloc[0] == pytest.approx(60.0)
    # an already undirected metre graph is used as it is
    assert hose_graph(rg) is rg


def test_crs_checks():
    G = straight_street()
    b = buildings([(10, 5)]).to_crs("EPSG:4326")
    with pytest.raises(InputError, match="degrees"):
        hydrant_coverage(G, b, hydrants([(0, 0)]))
    b = buildings([(10, 5)]).to_crs("EPSG:32650")
    with pytest.raises(InputError, match="reproject"):
        hydrant_coverage(G, b, hydrants([(0, 0)]))


# ---------------------------------------------------------------------- water sources
def sources(rows) -> gpd.GeoDataFrame:
    ids, kinds, caps, trucks, geoms = zip(*rows, strict=True)
    return gpd.GeoDataFrame(
        {
            "source_id": list(ids),
            "kind": list(kinds),
            "capacity_m3": pd.array(caps, dtype="Float64"),
            "truck_access": pd.array(trucks, dtype="boolean"),
        },
        geometry=list(geoms),
        crs=CRS,
    )


def P(x, y):
    return shapely.Point(X0 + x, Y0 + y)


def test_which_water_sources_count():
    ws = sources(
        [
            ("pool", "fire_pool", 300.0, None, P(0, 0)),
            ("pool_no_truck", "fire_pool", 300.0, False, P(0, 0)),
            ("pool_small", "fire_pool", 20.0, True, P(0, 0)),
            ("pool_unknown_cap", "fire_pool", None, True, P(0, 0)),
            ("river", "natural", None, True, P(0, 0)),
            ("river_no_truck", "natural", None, False, P(0, 0)),
            ("river_unknown", "natural", None, None, P(0, 0)),
            ("roof_tank", "tank", 36.0, False, P(0, 0)),
            ("ground_tank", "tank", 200.0, True, P(0, 0)),
        ]
    )
    st = water_source_status(ws)
    counts = dict(zip(st["source_id"], st["source_counts"], strict=True))
    assert counts == {
        "pool": True,
        "pool_no_truck": False,
        "pool_small": False,
        "pool_unknown_cap": True,
        "river": True,
        "river_no_truck": False,
        "river_unknown": False,
        "roof_tank": False,
        "ground_tank": True,
    }
    assert (st["source_issue"] == "").tolist() == st["source_counts"].tolist()
    strict = water_source_status(ws, params=WaterParams(count_unknown_capacity=False))
    assert not strict.set_index("source_id").loc["pool_unknown_cap", "source_counts"]


def test_water_source_intake_counts_like_a_hydrant():
    G = straight_street()
    b = buildings([(400, 5), (700, 5)])
    ws = sources(
        [
            ("pool", "fire_pool", 300.0, True, P(260, 5)),  # 5 + 140 + 5 = 150 to B0
            ("river", "natural", None, False, P(700, 20)),  # right by B1, no engine intake
        ]
    )
    out = hydrant_coverage(G, b, None, ws)
    assert out["d_water_source_m"].to_numpy() == pytest.approx([150.0, 450.0])
    assert out["water_source_id_nearest"].tolist() == ["pool", "pool"]
    assert out["water_covered"].tolist() == [True, False]
    assert out["d_hydrant_net_m"].isna().all()


def test_polygon_source_intake_is_its_bank_nearest_a_street():
    G = straight_street()
    # A pond whose bank comes nearest the street (y = 0) at one corner, (530, 30).
    pond = shapely.transform(
        shapely.Polygon([(470, 40), (530, 30), (540, 80), (480, 90)]), lambda xy: xy + [X0, Y0]
    )
    ws = sources([("pond", "natural", None, True, pond)])
    b = buildings([(600, 5), (700, 5)])
    out = hydrant_coverage(G, b, None, ws)
    # intake (530, 30) -> street (530, 0): 30; along to x = 600 / 690 ... 700: 70 / 170; 5 out.
    assert out["d_water_source_m"].to_numpy() == pytest.approx([105.0, 205.0], abs=1e-9)
    assert out["water_covered"].tolist() == [True, False]
    # a pond right at a 150 m boundary: a building 115 m along the street from the intake
    out = hydrant_coverage(G, buildings([(645, 5), (646, 5)]), None, ws)
    assert out["d_water_source_m"].to_numpy() == pytest.approx([150.0, 151.0], abs=1e-9)
    assert out["water_covered"].tolist() == [True, False]


# ---------------------------------------------------------------------- spacing gaps
def test_spacing_gaps_on_a_straight_street():
    G = straight_street()
    h = hydrants(
        [(0, 2), (100, 2), (300, 2), (420, 2), (700, 2), (1000, 2)],
        status=["ok", "ok", "ok", "ok", "broken", "ok"],
        ids=["a", "b", "c", "d", "x", "e"],
    )
    gaps = hydrant_spacing_gaps(G, h)
    assert sorted(gaps["gap_m"].round(6)) == [200.0, 580.0]
    by = gaps.set_index("hydrants")
    assert by.loc["b, c", "length_m"] == pytest.approx(200.0)
    assert by.loc["d, e", "length_m"] == pytest.approx(580.0)
    assert by.loc["d, e", "max_dist_m"] == pytest.approx(290.0)
    x0, _, x1, _ = by.loc["b, c"].geometry.bounds
    assert (x0 - X0, x1 - X0) == pytest.approx((100.0, 300.0))
    assert gaps.geometry.length.sum() == pytest.approx(780.0)
    assert not gaps["no_hydrant"].any()
    # exactly 120 m apart is within the rule; 121 m is not
    ok = hydrant_spacing_gaps(G, hydrants([(x, 0) for x in np.arange(0, 1001, 125)]))
    assert len(ok) == 8
    assert hydrant_spacing_gaps(G, hydrants([(x, 0) for x in np.linspace(0, 960, 9)])).empty
    # a dead end: the last 160 m beyond the hydrant at 840 (farthest point 160 m > 60 m)
    dead = hydrant_spacing_gaps(G, hydrants([(x, 0) for x in np.arange(0, 841, 120)]))
    assert len(dead) == 1
    assert dead["max_dist_m"].iloc[0] == pytest.approx(160.0)
    assert dead["gap_m"].iloc[0] == pytest.approx(320.0)
    assert dead["length_m"].iloc[0] == pytest.approx(160.0)


def test_spacing_gap_without_hydrants_builtup_and_classes():
    # Street A (residential) with no hydrant; street S (service) likewise: only A is checked.
    nodes = {0: (0, 0), 1: (400, 0), 2: (0, 500), 3: (400, 500)}
    G = graph(nodes, [(0, 1, "residential", "A"), (2, 3, "service", "S")])
    gaps = hydrant_spacing_gaps(G, hydrants([(0, 500)]))
    assert len(gaps) == 1
    assert gaps["no_hydrant"].iloc[0] and gaps["gap_m"].iloc[0] == pytest.approx(400.0)
    assert np.isnan(gaps["max_dist_m"].iloc[0]) and gaps["streets"].iloc[0] == "A"
    # outside the built-up area (no building within 50 m of A): nothing to report
    far = buildings([(200, 300)])
    assert hydrant_spacing_gaps(G, None, buildings=far).empty
    near = buildings([(200, 40)])
    assert len(hydrant_spacing_gaps(G, None, buildings=near)) == 1
    # clipped to the district boundary
    half = shapely.transform(box(0, -50, 200, 50), lambda xy: xy + [X0, Y0])
    clipped = hydrant_spacing_gaps(G, None, boundary=half)
    assert clipped["length_m"].iloc[0] == pytest.approx(200.0)


def test_spacing_without_spacing_streets_warns_and_returns_nothing():
    G = straight_street(hw="footway")
    with pytest.warns(UserWarning, match="spacing not checked"):
        gaps = hydrant_spacing_gaps(G, hydrants([(0, 0)]))
    assert gaps.empty and "gap_m" in gaps


def test_spacing_gaps_follow_streets_through_intersections():
    # Street A west-east through a crossing with street B; hydrants at both ends of A only.
    nodes = {0: (0, 0), 1: (200, 0), 2: (400, 0), 3: (200, -40), 4: (200, 40)}
    edges = [(0, 1, "residential", "A"), (1, 2, "residential", "A"),
             (3, 1, "residential", "B"), (1, 4, "residential", "B")]  # fmt: skip
    G = graph(nodes, edges)
    gaps = hydrant_spacing_gaps(G, hydrants([(0, 0), (400, 0)]))
    a = gaps[gaps["streets"] == "A"]
    assert len(a) == 1  # one gap along A, through the crossing
    assert a["gap_m"].iloc[0] == pytest.approx(400.0)
    assert a["length_m"].iloc[0] == pytest.approx(400.0)
    b = gaps[gaps["streets"] == "B"]
    # B's ends are 240 m from a hydrant: both arms are gaps, joined at the crossing
    assert len(b) == 1 and b["max_dist_m"].iloc[0] == pytest.approx(240.0)
    # a hydrant at the crossing splits A in two 200 m gaps and clears B (40 m arms)
    gaps = hydrant_spacing_gaps(G, hydrants([(0, 0), (400, 0), (200, 0)]))
    assert sorted(gaps["gap_m"].round(6)) == [200.0, 200.0]
    assert set(gaps["streets"]) == {"A"}


def test_substrings():
    line = shapely.LineString([(0, 0), (10, 0), (10, 10)])
    out = substrings(np.array([line, line, line]), np.r_[0.0, 0.25, 0.0], np.r_[1.0, 0.75, 0.5])
    assert out[0].equals(line)
    assert out[1].equals(shapely.LineString([(5, 0), (10, 0), (10, 5)]))
    assert out[2].length == pytest.approx(10.0)


# ---------------------------------------------------------------------- zones and grids
def block_district():
    """Two rows of point-like square buildings along a street; hydrant at the west end."""
    G = straight_street(1000.0)
    xs = np.arange(20, 1000, 40.0)
    geoms = [box(X0 + x - 6, Y0 + y, X0 + x + 6, Y0 + y + 12) for y in (10, -22) for x in xs]
    b = gpd.GeoDataFrame(
        {"building_id": [f"B{i:03d}" for i in range(len(geoms))], "residents": 10},
        geometry=geoms,
        crs=CRS,
    )
    cells = []
    for i, (x0, x1) in enumerate([(0, 500), (500, 1000)]):
        cells.append((f"C{i + 1}", 2, "D", box(X0 + x0, Y0 - 100, X0 + x1, Y0 + 100)))
    cells.append(("D", 1, None, box(X0, Y0 - 100, X0 + 1000, Y0 + 100)))
    grids = gpd.GeoDataFrame(
        pd.DataFrame(cells, columns=["grid_id", "level", "parent_id", "geometry"]),
        geometry="geometry",
        crs=CRS,
    )
    h = hydrants([(0, 2), (600, 2)], status=["ok", "broken"])
    ws = sources(
        [("pool", "fire_pool", 400.0, True, P(900, 30)), ("tank", "tank", 20.0, True, P(700, 30))]
    )
    return G, b, grids, h, ws


def test_zones_and_grid_summary_agree_with_building_flags():
    G, b, grids, h, ws = block_district()
    cov = hydrant_coverage(G, b, h, ws)
    deficient = cov["water_deficient"].to_numpy()
    assert 0 < deficient.sum() < len(cov)
    zones = water_deficient_zones(cov, grids=grids)
    assert zones["n_buildings"].sum() == deficient.sum()
    rep = cov.geometry.representative_point()
    in_zone = rep.apply(lambda p: zones.geometry.contains(p).any()).to_numpy()
    assert (in_zone == deficient).all()
    assert zones["area_m2"].to_numpy() == pytest.approx(zones.geometry.area.to_numpy())
    assert (zones["residents"] == 10 * zones["n_buildings"]).all()

    summary = water_by_grid(cov, grids, ws, hydrants=h, zones=zones).set_index("grid_id")
    assert summary.loc["D", "n_buildings"] == len(cov)
    assert summary.loc["D", "n_water_deficient"] == deficient.sum()
    assert summary.loc[["C1", "C2"], "n_water_deficient"].sum() == deficient.sum()
    assert summary.loc["D", "share_water_deficient"] == pytest.approx(deficient.mean())
    assert summary.loc["D", "water_deficiency_score"] == pytest.approx(
        cov["water_deficiency"].mean()
    )
    assert (summary["n_hydrants_ok"] + summary["n_hydrants_broken"]).loc["D"] == 2
    assert summary.loc["C2", "n_hydrants_broken"] == 1
    assert summary.loc["C2", "capacity_m3"] == 420.0
    assert summary.loc["C2", "capacity_usable_m3"] == 400.0  # the 20 m³ tank does not count
    assert summary.loc["C2", "n_water_sources_usable"] == 1
    assert summary.loc["D", "deficient_area_m2"] == pytest.approx(zones.area.sum(), rel=1e-9)
    has = summary["n_water_deficient"] > 0
    assert (summary.loc[has, "deficient_area_m2"] > 0).all()
    assert ((summary["water_deficiency_score"] > 0) == has).all()


def test_no_deficient_buildings_gives_empty_zones():
    G = straight_street()
    cov = hydrant_coverage(G, buildings([(10, 5)]), hydrants([(0, 0)]))
    zones = water_deficient_zones(cov)
    assert zones.empty and "zone_id" in zones


# ---------------------------------------------------------------------- siting
def test_siting_on_a_straight_street_known_optimum():
    # 20 buildings 5 m off the street at x = 25, 75, …, 975; no hydrant. A hydrant on the
    # street covers buildings within 145 m along it, i.e. at most 6 of them: 4 are needed.
    G = straight_street()
    b = buildings([(x, 5) for x in np.arange(25, 1000, 50.0)])
    cov = hydrant_coverage(G, b, None)
    assert cov["water_deficient"].all()
    proposed, siting = propose_hydrants(G, cov, method="exact")
    assert siting.n_new == 4 and siting.optimal and siting.n_new_exact == 4
    assert siting.n_new_greedy >= siting.n_new
    assert siting.n_uncoverable == 0 and len(siting.covered_ids) == 20
    assert proposed["n_new_covered"].sum() == 20
    # re-run the coverage with the proposals as hydrants: every claimed building is covered
    new = proposed.assign(hydrant_id=proposed["proposal_id"], status="ok")
    again = hydrant_coverage(G, b, new)
    assert again["water_covered"].all()


def random_grid(seed: int, n: int = 7, spacing: float = 110.0):
    rng = np.random.default_rng(seed)
    nodes = {i * n + j: (i * spacing, j * spacing) for i in range(n) for j in range(n)}
    edges = []
    for i in range(n):
        for j in range(n):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < n and j + dj < n and rng.random() > 0.15:
                    hw = rng.choice(["residential", "tertiary", "footway", "service"])
                    edges.append((i * n + j, (i + di) * n + j + dj, str(hw), f"s{i}{j}{di}"))
    G = graph(nodes, edges)
    size = (n - 1) * spacing
    xy = rng.uniform(-20, size + 20, (120, 2))
    b = buildings([tuple(p) for p in xy])
    h = hydrants([tuple(p) for p in rng.uniform(0, size, (4, 2))])
    return G, b, h


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_siting_claims_hold_and_exact_never_worse_than_greedy(seed):
    G, b, h = random_grid(seed)
    params = WaterParams(hydrant_radius_m=100.0, candidate_spacing_m=30.0)
    cov = hydrant_coverage(G, b, h, params=params)
    proposed, siting = propose_hydrants(G, cov, params=params, method="exact")
    assert siting.method == "milp"
    assert siting.n_new <= siting.n_new_greedy
    assert siting.n_new == len(proposed)
    assert siting.lower_bound <= siting.n_new
    # independent check of the claim: distances from the proposed sites alone
    rg = hose_graph(G, params=params)
    deficient = cov[cov["water_deficient"]]
    owner, starts = street_starts(
        rg, np.asarray(deficient.geometry.values, dtype=object), reach_m=params.street_facing_m
    )
    d, w = nearest_cost(rg, snap(rg, proposed.geometry), starts)
    d, _ = nearest_per_owner(d, w, owner, len(deficient))
    reached = set(deficient["building_id"][d <= params.hydrant_radius_m + 1e-6])
    assert set(siting.covered_ids) <= reached
    assert len(siting.covered_ids) + len(siting.uncoverable_ids) == len(deficient)
    # uncoverable buildings really are out of reach of every candidate
    cand = hydrant_candidates(rg, params=params)
    cands = Snap.at(rg, cand["seg"].to_numpy(), cand["frac"].to_numpy())
    unc = deficient[deficient["building_id"].isin(siting.uncoverable_ids)]
    if len(unc):
        owner_u, starts_u = street_starts(
            rg, np.asarray(unc.geometry.values, dtype=object), reach_m=params.street_facing_m
        )
        du, _ = nearest_cost(rg, cands, starts_u)
        assert (du > params.hydrant_radius_m).all()
        assert set(owner_u) == set(range(len(unc)))
    # greedy run on its own is never better than the exact optimum
    _, greedy = propose_hydrants(G, cov, params=params, method="greedy")
    assert greedy.method == "greedy" and greedy.n_new >= siting.n_new
    assert greedy.n_new_exact is None


def test_hydrant_candidates_only_on_candidate_streets():
    nodes = {0: (0, 0), 1: (200, 0), 2: (400, 0), 3: (200, 300)}
    G = graph(nodes, [(0, 1, "residential", "A"), (1, 2, "footway", "F"), (1, 3, "service", "S")])
    rg = hose_graph(G)
    cand = hydrant_candidates(rg, params=WaterParams(candidate_spacing_m=50.0))
    x = cand.geometry.x.to_numpy() - X0
    y = cand.geometry.y.to_numpy() - Y0
    on_a = np.isclose(y, 0) & (x <= 200 + 1e-9)
    on_s = np.isclose(x, 200) & (y >= 0)
    assert (on_a | on_s).all()  # nothing on the footway beyond x = 200
    assert np.allclose(np.sort(x[np.isclose(y, 0)]), [0, 50, 100, 150, 200])
    assert np.allclose(np.sort(y[on_s & (y > 0)]), [50, 100, 150, 200, 250, 300])
    # restricted to streets within the radius of some building
    near = hydrant_candidates(rg, near=points([(0, -10)]).values, params=WaterParams())
    assert len(near) and np.allclose(near.geometry.y.to_numpy() - Y0, 0.0)


def test_analyse_water_without_any_water_layer():
    G, b, grids, _, _ = block_district()
    res = analyse_water(G, b, grids=grids)
    assert res.buildings["water_deficient"].all()
    assert res.buildings["water_deficiency"].eq(1.0).all()
    assert res.hydrants is None and res.water_sources is None
    assert len(res.gaps) == 1 and res.gaps["no_hydrant"].all()
    assert res.zones["n_buildings"].sum() == len(b)
    top = res.grid_summary.set_index("grid_id").loc["D"]
    assert top["n_water_deficient"] == len(b) and top["n_hydrants"] == 0
    head = res.headline()
    assert head["water_deficient"] == len(b) and "new_hydrants_needed" not in head
    proposed, siting = propose_hydrants(G, res.buildings)
    assert siting.figures()["new_hydrants_needed"] == siting.n_new == len(proposed) > 0
    assert siting.n_deficient == len(b)


def test_cover_exact_never_larger_than_greedy_random_matrices():
    rng = np.random.default_rng(3)
    for _ in range(20):
        A = rng.random((40, 25)) < 0.12
        exact = set_cover(A, method="exact")
        greedy = greedy_set_cover(A)
        assert exact.objective <= len(greedy)


def test_siting_budget_max_cover():
    G = straight_street()
    b = buildings([(x, 5) for x in np.arange(25, 1000, 50.0)])
    cov = hydrant_coverage(G, b, None)
    _, siting = propose_hydrants(G, cov, params=WaterParams(max_new_hydrants=2))
    assert siting.budget == 2 and siting.budget_covered == 12


# ---------------------------------------------------------------------- the demo
@pytest.fixture(scope="module")
def demo():
    if not DEMO.exists():
        pytest.skip(f"demo district not found at {DEMO}")
    from firegrid.config import district_from_config, load_config
    from firegrid.spatial.network.load import read_network

    cfg = load_config(DEMO)
    district, report = district_from_config(cfg)
    assert report.ok, report.errors
    G = read_network(cfg.network_source, crs=district.crs)
    params = WaterParams.from_mapping(cfg.section("water"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyse_water(
            G,
            district.buildings,
            hydrants=district.hydrants,
            water_sources=district.water_sources,
            grids=district.grids,
            params=params,
        )
    return district, G, result


@pytest.mark.slow
def test_demo_building_flags_are_consistent(demo):
    district, _, res = demo
    b = res.buildings
    p = res.params
    assert len(b) == len(district.buildings)
    assert (b["water_deficient"] == ~b["water_covered"]).all()
    by_h = b["d_hydrant_net_m"].fillna(np.inf) <= p.hydrant_radius_m
    by_s = b["d_water_source_m"].fillna(np.inf) <= p.source_radius_m
    assert (b["water_covered"] == (by_h | by_s)).all()
    # a hose is never shorter than the straight line (0.1 % slack: OSM great-circle lengths)
    both = b["d_hydrant_net_m"].notna()
    assert (b.loc[both, "d_hydrant_m"] <= b.loc[both, "d_hydrant_net_m"] * 1.001 + 0.01).all()
    working = set(district.hydrants.loc[district.hydrants["status"] == "ok", "hydrant_id"])
    assert set(b["hydrant_id_nearest"].dropna()) <= working
    usable = set(res.water_sources.loc[res.water_sources["source_counts"], "source_id"])
    assert set(b["water_source_id_nearest"].dropna()) <= usable
    assert ((b["water_deficiency"] > 0) == b["water_deficient"]).all()
    # the demo's built-in problem: the river intake without truck access does not count
    ws = res.water_sources.set_index("source_id")
    assert not ws.loc[ws["kind"] == "natural", "source_counts"].all()
    assert 0 < b["water_deficient"].mean() < 1
    # ... and the corner beyond the river whose only hydrant is broken is water-deficient
    h = district.hydrants
    ok = (h["status"] == "ok").to_numpy()
    _, gap = shapely.STRtree(h.geometry.values[ok]).query_nearest(
        h.geometry.values[~ok], all_matches=False, return_distance=True
    )
    lone = h[~ok].iloc[int(np.argmax(gap))]
    assert gap.max() > 2 * p.hydrant_radius_m
    near = b.geometry.distance(lone.geometry) < 100
    assert near.sum() >= 5 and b.loc[near, "water_deficient"].all()
    assert not (b["hydrant_id_nearest"] == lone["hydrant_id"]).any()


@pytest.mark.slow
def test_demo_zones_and_grid_summaries_agree(demo):
    district, _, res = demo
    b, zones, summary = res.buildings, res.zones, res.grid_summary
    bad = b["water_deficient"].to_numpy()
    # every deficient building in exactly one zone, no covered building in any
    rep = gpd.GeoDataFrame(geometry=b.geometry.representative_point(), crs=b.crs)
    hit = gpd.sjoin(rep, zones[["zone_id", "geometry"]], how="left", predicate="within")
    hit = hit.groupby(level=0)["zone_id"].count().reindex(b.index, fill_value=0).to_numpy()
    assert (hit[bad] == 1).all()
    covered_in_zone = hit[~bad] > 0
    # a covered building may only sit in a zone where it overlaps a deficient footprint
    assert covered_in_zone.sum() <= 0.01 * (~bad).sum()
    assert zones["n_buildings"].sum() == bad.sum()
    # grid summaries: level 1 = all buildings; each level sums to the level above
    s = summary.set_index("grid_id")
    top = s[s["level"] == 1]
    assert top["n_buildings"].sum() == len(b)
    assert top["n_water_deficient"].sum() == bad.sum()
    for level in (2, 3):
        rows = s[s["level"] == level]
        if rows.empty:
            continue
        per_parent = rows.groupby("parent_id")["n_water_deficient"].sum()
        parent = s.loc[per_parent.index, "n_water_deficient"]
        assert (per_parent <= parent).all()
    assert top["deficient_area_m2"].sum() == pytest.approx(zones.area.sum(), rel=1e-6)
    has = s["n_water_deficient"] > 0
    assert (s.loc[has, "deficient_area_m2"] > 0).all()
    assert ((s["water_deficiency_score"] > 0) == has)[s["n_buildings"] > 0].all()
    assert s["water_deficiency_score"].dropna().between(0, 1).all()
    assert np.allclose(
        s["share_water_deficient"].dropna(),
        (s["n_water_deficient"] / s["n_buildings"])[s["n_buildings"] > 0],
    )
    # capacities per grid add up to the layer's
    cap = pd.to_numeric(district.water_sources["capacity_m3"], errors="coerce").sum()
    assert top["capacity_m3"].sum() == pytest.approx(cap)


@pytest.mark.slow
def test_demo_proposed_hydrants_cover_what_they_claim(demo):
    _, G, res = demo
    proposed, siting = propose_hydrants(G, res.buildings, params=res.params)
    b = res.buildings
    assert siting.n_deficient == int(b["water_deficient"].sum())
    assert siting.n_new == len(proposed) and siting.n_new <= siting.n_new_greedy
    assert siting.lower_bound <= siting.n_new
    new = proposed.assign(hydrant_id=proposed["proposal_id"], status="ok")
    again = hydrant_coverage(G, b[b["water_deficient"]], new, params=res.params)
    reached = set(again.loc[again["water_covered"], "building_id"])
    assert set(siting.covered_ids) <= reached
    assert set(siting.covered_ids).isdisjoint(siting.uncoverable_ids)


@pytest.mark.slow
def test_demo_spacing_gaps(demo):
    district, G, res = demo
    gaps = res.gaps
    assert len(gaps) > 0
    assert (gaps["gap_m"] > res.params.hydrant_spacing_m).all()
    assert gaps["length_m"].to_numpy() == pytest.approx(gaps.geometry.length.to_numpy())
    assert gaps.geometry.within(district.boundary.buffer(1e-6)).all()
    nh = ~gaps["no_hydrant"]
    assert gaps.loc[nh, "gap_m"].to_numpy() == pytest.approx(2 * gaps.loc[nh, "max_dist_m"])
    assert (gaps.loc[nh, "max_dist_m"] > res.params.hydrant_spacing_m / 2).all()
    # Independent check: sample every spacing street each 10 m, measure along those streets to
    # the nearest working hydrant; every built-up sample farther than half the spacing lies on
    # a reported gap.
    p = res.params
    st = street_subgraph(hose_graph(G, params=p), p.spacing_highways)
    k = np.maximum(1, np.ceil(st.seg_length_m / 10.0)).astype(int)
    seg = np.repeat(np.arange(st.n_segments), k + 1)
    frac = (np.arange(len(seg)) - np.repeat(np.cumsum(k + 1) - (k + 1), k + 1)) / k[seg]
    samples = Snap.at(st, seg, frac)
    hs = snap(st, res.hydrants[res.hydrants["working"]].geometry, max_snap_m=p.street_snap_m)
    d, _ = nearest_cost(st, Snap.at(st, hs.seg[hs.ok], hs.frac[hs.ok]), samples)
    near_building = district.buildings.sindex.query(
        st.seg_geom, predicate="dwithin", distance=p.built_up_m
    )[0]
    built = np.isin(seg, near_building)
    pts = shapely.points(samples.x, samples.y)
    inside = shapely.contains_xy(district.boundary, samples.x, samples.y)
    far = built & inside & (d > p.hydrant_spacing_m / 2 + 1e-6)
    assert far.sum() > 0
    on_gap = shapely.distance(pts[far], shapely.union_all(gaps.geometry.values)) < 0.01
    assert on_gap.all()


# ---------------------------------------------------------------------- one network, built once
def test_hose_graphs_are_built_once_per_network_table():
    from firegrid.spatial.network.routing import graph_table
    from firegrid.spatial.water.hose import spacing_streets

    G, b, grids, h, ws = block_district()
    table = graph_table(G)
    res = analyse_water(table, b, hydrants=h, water_sources=ws, grids=grids)
    proposed, siting = propose_hydrants(table, res.buildings)
    assert siting.n_new == len(proposed) > 0
    # The hose graph is one compilation of the table, the spacing streets one derived graph.
    assert table.work["compile"] == 1 and table.work["hose"] == 1
    assert hose_graph(table) is hose_graph(table) and spacing_streets(table) is spacing_streets(
        table
    )
    assert table.work["compile"] == 1 and table.work["hose"] == 1
    # Another hose profile or spacing classes is another graph.
    spacing_streets(table, params=WaterParams(spacing_highways=("residential", "primary")))
    assert table.work["hose"] == 2
    # The same figures from the osmnx graph (compiled anew each time) and the table.
    again = analyse_water(G, b, hydrants=h, water_sources=ws, grids=grids)
    pd.testing.assert_frame_equal(again.buildings, res.buildings)
    pd.testing.assert_frame_equal(again.gaps, res.gaps)


def test_water_never_imports_siting():
    """Imports flow siting → water only (siting.hydrants uses the water coverage)."""
    import ast

    import firegrid.spatial.water

    # The installed package's folder (the checkout's spatial/water, or a mutation copy's).
    root = Path(firegrid.spatial.water.__file__).parent
    paths = sorted(root.glob("*.py"))
    assert len(paths) > 3, root
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [
            n.module if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in (n.names if isinstance(n, ast.Import) else [None])
        ]
        assert not [m for m in names if m and "siting" in m], path.name


def test_far_hydrants_are_a_note_of_the_run_not_a_warning():
    import warnings

    from firegrid.spatial.runtime import collecting_notes

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with collecting_notes() as notes:
            hydrant_coverage(straight_street(), buildings([(100, 10)]), hydrants([(200, 80)]))
    assert len(notes) == 1 and notes[0].startswith("hydrants farther than 50 m from every street")
