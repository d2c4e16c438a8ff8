"""Fire water along real streets: the hose keeps its profile's exclusions, and a building
fronting several streets is measured from the best of them (issue 11, item 7).

References are computed independently: networkx shortest paths on graphs built here from the
raw edge lists, with the start points on each street worked out by hand.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from spatial.hydrant_siting import propose_hydrants
from spatial.profiles import default_profile
from spatial.routing import RoutingGraph, graph_table
from spatial.water import WaterParams, hose_graph, hydrant_coverage, street_starts

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
