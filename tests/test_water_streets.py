"""Fire water along real streets: the hose keeps its profile's exclusions, and a building
fronting several streets is measured from the best of them (issue 11, item 7).

References are computed independently: networkx shortest paths on graphs built here from the
raw edge lists, with the start points on each street worked out by hand.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from firegrid.spatial.network.profiles import default_profile
from firegrid.spatial.network.routing import RoutingGraph, graph_table
from firegrid.spatial.siting.hydrants import propose_hydrants
from firegrid.spatial.water.coverage import hydrant_coverage
from firegrid.spatial.water.hose import hose_graph, street_starts
from firegrid.spatial.water.params import WaterParams

CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_460_000.0


def graph(nodes: dict, edges: list) -> nx.MultiDiGraph:
    """osmnx-like projected graph, two-way edges ``(u, v, highway)``; metres from (X0, Y0)."""
    G = nx.MultiDiGraph(crs=CRS)
    for k, (x, y) in nodes.items():
        G.add_node(k, x=X0 + x, y=Y0 + y)
    for u, v, hw in edges:
        a = (X0 + nodes[u][0], Y0 + nodes[u][1])
        b = (X0 + nodes[v][0], Y0 + nodes[v][1])
        line = shapely.LineString([a, b])
        data = dict(highway=hw, name=f"{hw} {u}-{v}", length=line.length)
        G.add_edge(u, v, 0, geometry=line, **data)
        G.add_edge(v, u, 0, geometry=line.reverse(), **data)
    return G


def shift(geom):
    return shapely.transform(geom, lambda xy: xy + [X0, Y0])


def layer(geoms, id_col, ids, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({id_col: ids, **cols}, geometry=[shift(g) for g in geoms], crs=CRS)


def reference_hose(nodes: dict, edges: list, starts: list, end: tuple) -> float:
    """Shortest hose by networkx: ``starts`` are (leg_m, street (u, v), point on it); ``end``
    is (leg_m, street (u, v), point on it). Each point splits its street into two edges."""
    U = nx.Graph()
    pts = dict(nodes)
    split: dict[tuple, list] = {}
    for i, (_, street, p) in enumerate([*starts, end]):
        pts[("p", i)] = p
        split.setdefault(street, []).append(("p", i))
    for u, v, _ in edges:
        inner = split.get((u, v), []) + split.get((v, u), [])
        # order the points met along the street from u
        chain = [u, *sorted(inner, key=lambda k: np.hypot(*np.subtract(pts[k], pts[u]))), v]
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            U.add_edge(a, b, weight=float(np.hypot(*np.subtract(pts[a], pts[b]))))
    target = ("p", len(starts))
    best = np.inf
    for i, (leg, _, _) in enumerate(starts):
        try:
            d = nx.shortest_path_length(U, ("p", i), target, weight="weight")
        except nx.NetworkXNoPath:
            continue
        best = min(best, leg + d + end[0])
    return best


# A diamond building whose tips face three streets: south (y = 0, its own piece of network,
# connected to nothing else), east (x = 135) and north (y = 42).
DIAMOND = shapely.Polygon([(110, 10), (122, 20), (110, 30), (98, 20)])
NODES = {1: (0, 0), 2: (300, 0), 3: (135, 5), 4: (135, 200), 5: (20, 42), 6: (250, 42)}
EDGES = [(1, 2, "residential"), (3, 4, "residential"), (5, 6, "residential"), (6, 4, "service")]
HYDRANT = (140, 150)  # 5 m east of the east street
# Hand-worked starts: (leg, street, point on the street) from the tip nearest each street.
STARTS = [(10.0, (1, 2), (110, 0)), (13.0, (3, 4), (135, 20)), (12.0, (5, 6), (110, 42))]
END = (5.0, (3, 4), (135, 150))


def test_building_on_three_streets_takes_the_shortest_start():
    G = graph(NODES, EDGES)
    b = layer([DIAMOND], "building_id", ["D"])
    h = layer([shapely.Point(HYDRANT)], "hydrant_id", ["H"], status=["ok"])
    out = hydrant_coverage(G, b, h)
    expected = reference_hose(NODES, EDGES, STARTS, END)
    assert expected == pytest.approx(13 + 130 + 5)  # via the east street
    assert out["d_hydrant_net_m"].iloc[0] == pytest.approx(expected, abs=1e-9)
    assert out["water_covered"].iloc[0] and out["hydrant_id_nearest"].iloc[0] == "H"
    # each start on its own: south reaches nothing, north runs the long way round
    each = [reference_hose(NODES, EDGES, [s], END) for s in STARTS]
    assert each[0] == np.inf and each[2] > 150 and min(each) == expected
    # The nearest street alone (south, 10 m, disconnected) called it unreachable: that is
    # what a reach of 0 m (nearest street only) still gives.
    alone = hydrant_coverage(G, b, h, params=WaterParams(street_facing_m=0.0))
    assert np.isnan(alone["d_hydrant_net_m"].iloc[0]) and alone["water_deficient"].iloc[0]
    assert "no working hydrant" in alone["water_issue"].iloc[0]


def test_starts_are_one_per_street_within_reach():
    rg = hose_graph(graph(NODES, EDGES))
    owner, s = street_starts(rg, np.array([shift(DIAMOND), None], dtype=object), reach_m=20.0)
    assert (owner == 0).all() and len(owner) == 3  # the missing geometry has none
    got = sorted(zip(s.access_m.round(9), (s.x - X0).round(9), (s.y - Y0).round(9), strict=True))
    assert got == [(10.0, 110.0, 0.0), (12.0, 110.0, 42.0), (13.0, 135.0, 20.0)]
    on_outline = set(zip((s.px - X0).round(9), (s.py - Y0).round(9), strict=True))
    assert on_outline == {(110.0, 10.0), (110.0, 30.0), (122.0, 20.0)}
    # the nearest street always gives a start, however far
    owner, s = street_starts(rg, np.array([shift(shapely.Point(110, -100))]), reach_m=20.0)
    assert len(owner) == 1 and s.access_m[0] == pytest.approx(100.0)


def test_nearest_street_unusable_for_hose_is_skipped():
    # The south street becomes a construction site connected straight to the hydrant's street:
    # a hose may not follow it, so the building is served from the east street as before.
    nodes = {**NODES, 7: (135, 0)}
    edges = [(1, 7, "construction"), (7, 3, "construction"), (3, 4, "residential"),
             (5, 6, "residential"), (6, 4, "service")]  # fmt: skip
    G = graph(nodes, edges)
    b = layer([DIAMOND], "building_id", ["D"])
    h = layer([shapely.Point(HYDRANT)], "hydrant_id", ["H"], status=["ok"])
    out = hydrant_coverage(G, b, h)
    usable = [e for e in edges if e[2] != "construction"]
    starts = [s for s in STARTS if s[1] != (1, 2)]
    expected = reference_hose(nodes, usable, starts, END)
    assert out["d_hydrant_net_m"].iloc[0] == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(148.0)
    assert out["water_covered"].iloc[0]
    # With a reach of 0 m the start is the nearest street a hose may follow (north, 12 m),
    # never the construction site's kerb, and that one runs the long way round.
    alone = hydrant_coverage(G, b, h, params=WaterParams(street_facing_m=0.0))
    north = reference_hose(nodes, usable, [STARTS[2]], END)
    assert alone["d_hydrant_net_m"].iloc[0] == pytest.approx(north, abs=1e-9)
    assert north > 150 and alone["water_deficient"].iloc[0]


def test_street_through_a_building_starts_where_it_leaves_the_footprint():
    # A street runs through a 100 m long footprint (an arcade, or a centre line drawn across
    # a block): the hose leaves the building wherever the street does, here at x = 400.
    nodes = {1: (0, 0), 2: (1000, 0)}
    G = graph(nodes, [(1, 2, "residential")])
    b = layer([shapely.box(300, -10, 400, 10)], "building_id", ["B"])
    h = layer([shapely.Point(520, 5)], "hydrant_id", ["H"], status=["ok"])
    out = hydrant_coverage(G, b, h)
    assert out["d_hydrant_net_m"].iloc[0] == pytest.approx(120 + 5, abs=1e-9)
    h2 = layer([shapely.Point(180, -5)], "hydrant_id", ["H"], status=["ok"])
    out = hydrant_coverage(G, b, h2)
    assert out["d_hydrant_net_m"].iloc[0] == pytest.approx(120 + 5, abs=1e-9)


# A ring of residential streets with a construction shortcut across it.
RING = {1: (0, 0), 2: (200, 0), 3: (200, 200), 4: (0, 200)}
RING_EDGES = [(1, 2, "residential"), (2, 3, "residential"), (3, 4, "residential"),
              (4, 1, "residential"), (1, 3, "construction")]  # fmt: skip


@pytest.mark.parametrize("form", ["networkx", "table", "foot", "foot_directed", "engine"])
def test_excluded_streets_never_carry_hose(form):
    """As soon as one street was unusable the old hose graph made every street usable again:
    the construction diagonal became a hose route."""
    G = graph(RING, RING_EDGES)
    net = {
        "networkx": lambda: G,
        "table": lambda: graph_table(G),
        "foot": lambda: RoutingGraph.from_graph(
            G, default_profile("foot"), weight="length", directed=False
        ),
        "foot_directed": lambda: RoutingGraph.from_graph(G, default_profile("foot")),
        "engine": lambda: RoutingGraph.from_graph(G, default_profile("engine")),
    }[form]()
    rg = hose_graph(net)
    diag = (rg.segments["highway"] == "construction").to_numpy()
    assert diag.sum() == 1 and not rg.usable[diag].any() and rg.usable[~diag].all()
    assert rg.weight == "length" and np.array_equal(rg.run_fwd, rg.run_back)
    assert hose_graph(rg) is rg
    # building 5 m outside corner 1, hydrant 5 m outside corner 3: round the ring, not across
    b = layer([shapely.Point(-5, -5)], "building_id", ["B"])
    h = layer([shapely.Point(205, 205)], "hydrant_id", ["H"], status=["ok"])
    out = hydrant_coverage(net, b, h, params=WaterParams(hydrant_radius_m=500))
    legs = 2 * np.hypot(5, 5)
    ring = reference_hose(RING, RING_EDGES[:4], [(legs / 2, (1, 2), (0, 0))],
                          (legs / 2, (2, 3), (200, 200)))  # fmt: skip
    assert ring == pytest.approx(400 + legs)
    assert out["d_hydrant_net_m"].iloc[0] == pytest.approx(ring, abs=1e-9)


def test_hose_never_joins_a_street_it_may_not_join():
    # A street marked not joinable (a tunnel or elevated road under/over the building, as
    # RoutingGraph.snappable says) gives no start even where it is the nearest.
    G = graph(NODES, EDGES)
    rg = hose_graph(G)
    south = np.flatnonzero((rg.seg_a == 0) & (rg.seg_b == 1))
    assert len(south) == 1
    rg.snappable = np.ones(rg.n_segments, dtype=bool)
    rg.snappable[south] = False
    owner, s = street_starts(rg, np.array([shift(DIAMOND)]), reach_m=20.0)
    assert len(owner) == 2 and south[0] not in s.seg
    owner, s = street_starts(rg, np.array([shift(DIAMOND)]), reach_m=0.0)
    assert s.seg.tolist() == [int(np.flatnonzero((rg.seg_a == 4) & (rg.seg_b == 5))[0])]


def test_siting_counts_every_start_of_a_building():
    # The building fronts the south street (disconnected) and the east street; with no
    # hydrant at all, one new hydrant on the east street covers it.
    G = graph(NODES, EDGES)
    b = layer([DIAMOND], "building_id", ["D"])
    params = WaterParams(candidate_spacing_m=10.0)
    cov = hydrant_coverage(G, b, None, params=params)
    assert cov["water_deficient"].iloc[0]
    proposed, siting = propose_hydrants(G, cov, params=params, method="exact")
    assert siting.n_new == 1 and siting.n_uncoverable == 0
    again = hydrant_coverage(
        G, b, proposed.assign(hydrant_id=proposed["proposal_id"], status="ok"), params=params
    )
    assert again["water_covered"].iloc[0]


# ---------------------------------------------------------------------- real streets
LUJIAZUI = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "shanghai_roads"
    / "lujiazui_clipped.osm.pbf"
)  # fmt: skip


def test_real_streets_hose_is_the_shortest_over_every_fronting_street():
    """On the clipped Lujiazui extract: every building's hose distance equals a networkx
    reference over all (building start, hydrant start) pairs, the starts found by brute force
    from shapely's nearest points on every street within street_facing_m."""
    if not LUJIAZUI.exists():
        pytest.skip(f"shared OSM extract not found: {LUJIAZUI} (see ../shared/data/README.md)")
    from shapely.ops import nearest_points

    from firegrid.spatial.network.load import read_network

    table = read_network(LUJIAZUI, crs=CRS)
    rg = hose_graph(table)
    params = WaterParams()
    rng = np.random.default_rng(3)
    usable = np.flatnonzero(rg.usable)
    mid = shapely.line_interpolate_point(rg.seg_geom[rng.choice(usable, 160)], 0.5, normalized=True)
    xy = shapely.get_coordinates(mid)
    ang, off = rng.uniform(0, 2 * np.pi, 160), rng.uniform(4, 30, 160)
    c = xy + np.c_[np.cos(ang), np.sin(ang)] * off[:, None]
    bgeom = shapely.box(c[:120, 0] - 6, c[:120, 1] - 6, c[:120, 0] + 6, c[:120, 1] + 6)
    hgeom = shapely.points(c[120:])
    b = gpd.GeoDataFrame({"building_id": [f"B{i}" for i in range(120)]}, geometry=bgeom, crs=CRS)
    h = gpd.GeoDataFrame({"hydrant_id": [f"H{i}" for i in range(40)], "status": "ok"},
                         geometry=hgeom, crs=CRS)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hydrants far from streets are expected here
        out = hydrant_coverage(rg, b, h, params=params)

    # Reference: brute-force starts, networkx over the usable streets (metres, both ways).
    join = np.flatnonzero(rg.join_ok)
    geoms = rg.seg_geom

    def starts(g):
        d = np.array([g.distance(geoms[k]) for k in join])
        pick = set(join[d <= params.street_facing_m].tolist()) | {int(join[np.argmin(d)])}
        res = []
        for k in sorted(pick):
            on_street, on_g = nearest_points(geoms[k], g)
            f = geoms[k].project(on_street, normalized=True)
            res.append((k, f, on_street.distance(on_g)))
            if g.geom_type == "Polygon" and g.intersects(geoms[k]):
                # the street runs through the footprint: the hose starts anywhere along it
                fs = [geoms[k].project(shapely.Point(p), normalized=True)
                      for p in shapely.get_coordinates(g.intersection(geoms[k]))]  # fmt: skip
                res += [(k, min(fs), 0.0), (k, max(fs), 0.0)]
        return res

    U = nx.Graph()
    for k in usable:
        a, bb, L = int(rg.seg_a[k]), int(rg.seg_b[k]), float(rg.seg_length_m[k])
        if not U.has_edge(a, bb) or U[a][bb]["weight"] > L:
            U.add_edge(a, bb, weight=L)
    points = [("b", i, s) for i, g in enumerate(bgeom) for s in starts(g)]
    points += [("h", j, s) for j, g in enumerate(hgeom) for s in starts(g)]
    for n_, (kind, _, (k, f, leg)) in enumerate(points):
        v = ("p", n_)
        L = float(rg.seg_length_m[k])
        U.add_edge(v, int(rg.seg_a[k]), weight=f * L)
        U.add_edge(v, int(rg.seg_b[k]), weight=(1 - f) * L)
        if kind == "h":
            U.add_edge("source", v, weight=leg)
    by_seg: dict[int, list] = {}
    for n_, (_, _, (k, f, _)) in enumerate(points):
        by_seg.setdefault(k, []).append((n_, f))
    for pts in by_seg.values():  # points on one street reach each other along it
        for i1, f1 in pts:
            for i2, f2 in pts:
                if i1 < i2:
                    L = float(rg.seg_length_m[points[i1][2][0]])
                    U.add_edge(("p", i1), ("p", i2), weight=abs(f1 - f2) * L)
    # Barriers the hose profile may not pass (reached at infinite cost) are left out.
    blocked = set(rg.seg_b[np.isinf(rg.fix_fwd)].tolist()) | set(
        rg.seg_a[np.isinf(rg.fix_back)].tolist()
    )
    U.remove_nodes_from(blocked)
    dist = nx.single_source_dijkstra_path_length(U, "source", weight="weight")
    ref = np.full(120, np.inf)
    for n_, (kind, i, (_, _, leg)) in enumerate(points):
        if kind == "b":
            ref[i] = min(ref[i], dist.get(("p", n_), np.inf) + leg)
    got = out["d_hydrant_net_m"].fillna(np.inf).to_numpy()
    assert np.isfinite(ref).sum() > 100
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    several = sum(1 for i in range(120) if len([p for p in points if p[:2] == ("b", i)]) > 1)
    assert several > 30  # many buildings front more than one street here
