"""Access legs and hoses join ground-level streets only: never a tunnel, a bridge or elevated
road, a non-zero layer or a motorway (firegrid.spatial.network.profiles.JoinRules)."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pyproj
import pytest
import shapely

from firegrid.spatial.network.osm import read_osm
from firegrid.spatial.network.profiles import JoinRules, default_profile
from firegrid.spatial.network.routing import (
    EdgeArrays,
    RoutingGraph,
    graph_table,
    nearest_cost,
    snap,
    snap_graphs,
    snappable_segments,
)
from tests._osmxml import node, way, write_osm

CRS = "EPSG:32651"
X0, Y0 = 352_000.0, 3_462_000.0


def streets(lines: list[list[tuple[float, float]]], tags: list[dict]):
    """A RoutingGraph of two-way straight streets (metres relative to X0, Y0; 10 m/s) and the
    per-edge tags of each street, in the graph's edge order."""
    pts = sorted({p for line in lines for p in (line[0], line[-1])})
    index = {p: i for i, p in enumerate(pts)}
    xy = np.array(pts, dtype=float) + (X0, Y0)
    u, v, geom, edge_tags = [], [], [], {}
    for line, tg in zip(lines, tags, strict=True):
        g = shapely.LineString(np.asarray(line, dtype=float) + (X0, Y0))
        for a, b, gg in ((line[0], line[-1], g), (line[-1], line[0], g.reverse())):
            u.append(index[a])
            v.append(index[b])
            geom.append(gg)
        for k in set(edge_tags) | set(tg):
            edge_tags.setdefault(k, [""] * (len(u) - 2))
        for k in edge_tags:
            edge_tags[k] += [tg.get(k, "")] * 2
    length = shapely.length(np.array(geom, dtype=object))
    edges = EdgeArrays(xy[:, 0], xy[:, 1], u, v, length, geometry=np.array(geom, dtype=object),
                       crs=CRS)  # fmt: skip
    rg = RoutingGraph.from_arrays(edges, length / 10.0, access_cost_per_m=1.0, weight="time")
    return rg, edge_tags


def point(x: float, y: float) -> gpd.GeoSeries:
    return gpd.GeoSeries([shapely.Point(X0 + x, Y0 + y)], crs=CRS)


def test_building_above_a_tunnel_joins_the_ground_street():
    # An open-air boulevard along y = 0 and a tunnel under the building at y = 17 whose ramps
    # meet the boulevard 300 m away on either side.
    boulevard = [(-300.0, 0.0), (300.0, 0.0)]
    tunnel = [(-300.0, 0.0), (-250.0, 17.0), (250.0, 17.0), (300.0, 0.0)]
    rg, tags = streets(
        [boulevard, tunnel],
        [{"highway": "primary"}, {"highway": "primary", "tunnel": "yes", "layer": "-1"}],
    )
    building = point(0.0, 17.9)
    # Without the rule the building joins the tunnel 0.9 m below it.
    naive = snap(rg, building)
    assert naive.access_m[0] == pytest.approx(0.9, abs=1e-9)
    rg.snappable = snappable_segments(rg, tags)
    s = snap(rg, building)
    boulevard_seg = int(np.flatnonzero(rg.seg_length_m == 600.0)[0])
    assert s.seg[0] == boulevard_seg
    assert s.access_m[0] == pytest.approx(17.9, abs=1e-9)
    # The building is reached along the boulevard: 300 m at 10 m/s plus its 17.9 m leg.
    station = snap(rg, point(-300.0, 0.0))
    cost, _ = nearest_cost(rg, station, s)
    assert cost[0] == pytest.approx(30.0 + 17.9, abs=1e-9)


def test_building_beside_an_elevated_road_joins_the_street_below():
    # An elevated expressway (高架) 5 m north of the ground street's centre line, a building 12 m
    # north of the ground street: 7 m from the viaduct, 12 m from the street below.
    ground = [(-200.0, 0.0), (200.0, 0.0)]
    elevated = [(-200.0, 5.0), (200.0, 5.0)]
    rg, tags = streets(
        [ground, elevated],
        [{"highway": "secondary"}, {"highway": "trunk", "bridge": "viaduct", "layer": "2"}],
    )
    rg.snappable = snappable_segments(rg, tags)
    s = snap(rg, point(10.0, 12.0))
    assert s.access_m[0] == pytest.approx(12.0, abs=1e-9)
    assert rg.seg_geom[s.seg[0]].coords[0][1] == Y0


@pytest.mark.parametrize(
    ("tag", "joins"),
    [
        ({"highway": "motorway"}, False),
        ({"highway": "motorway_link"}, False),
        ({"highway": "trunk"}, True),
        ({"highway": "service", "tunnel": "building_passage"}, True),
        ({"highway": "residential", "tunnel": "yes"}, False),
        ({"highway": "residential", "bridge": "yes"}, False),
        ({"highway": "residential", "bridge": "no", "tunnel": "no", "layer": "0"}, True),
        ({"highway": "residential", "layer": "-1"}, False),
        ({"highway": "residential", "layer": "1"}, False),
        ({"highway": "residential", "covered": "yes"}, True),
        # osmnx merges ways into one edge and keeps their tags as lists.
        ({"highway": "['residential', 'primary']", "bridge": "['yes', 'no']"}, False),
    ],
)
def test_each_join_rule(tag, joins):
    near = [(-100.0, 2.0), (100.0, 2.0)]  # the street under test, 3 m from the building
    far = [(-100.0, -30.0), (100.0, -30.0)]  # a plain street 35 m away
    rg, tags = streets([near, far], [tag, {"highway": "residential"}])
    rg.snappable = snappable_segments(rg, tags)
    s = snap(rg, point(0.0, 5.0))
    assert s.access_m[0] == pytest.approx(3.0 if joins else 35.0, abs=1e-9)


def test_rules_are_configurable():
    near = [(-100.0, 2.0), (100.0, 2.0)]
    far = [(-100.0, -30.0), (100.0, -30.0)]
    for tag, rules, joins in (
        ({"highway": "motorway"}, JoinRules(exclude_highway=()), True),
        ({"highway": "trunk"}, JoinRules(exclude_highway=("motorway", "trunk")), False),
        ({"highway": "primary", "covered": "yes"}, JoinRules(exclude_covered=True), False),
        ({"highway": "primary", "tunnel": "yes"}, JoinRules(exclude_tunnel=False), True),
        ({"highway": "primary", "bridge": "yes", "layer": "1"},
         JoinRules(exclude_bridge=False, exclude_layer=False), True),
    ):  # fmt: skip
        rg, tags = streets([near, far], [tag, {"highway": "residential"}])
        rg.snappable = snappable_segments(rg, tags, rules=rules)
        s = snap(rg, point(0.0, 5.0))
        assert s.access_m[0] == pytest.approx(3.0 if joins else 35.0, abs=1e-9), (tag, rules)


def osmnx_like() -> nx.MultiDiGraph:
    """An osmnx-style projected graph: a ground street and a tunnel under a building."""
    G = nx.MultiDiGraph(crs=CRS)
    coords = {1: (-300.0, 0.0), 2: (300.0, 0.0)}
    for n, (x, y) in coords.items():
        G.add_node(n, x=X0 + x, y=Y0 + y)
    ground = shapely.LineString([(X0 - 300, Y0), (X0 + 300, Y0)])
    tunnel = shapely.LineString(
        [(X0 - 300, Y0), (X0 - 250, Y0 + 17), (X0 + 250, Y0 + 17), (X0 + 300, Y0)]
    )
    for line, extra in ((ground, {}), (tunnel, {"tunnel": "yes", "layer": "-1"})):
        for a, b, g in ((1, 2, line), (2, 1, line.reverse())):
            G.add_edge(a, b, key=len(G[a].get(b, {})), highway="primary", oneway=False,
                       length=g.length, geometry=g, **extra)  # fmt: skip
    return G


def test_osmnx_graph_tags_and_snap_graphs_follow_the_rules():
    table = graph_table(osmnx_like())
    graphs = {
        p: RoutingGraph.from_graph(osmnx_like(), default_profile(p)) for p in ("engine", "foot")
    }
    for rg in graphs.values():
        rg.snappable = snappable_segments(rg, table)
        assert rg.snappable.sum() == 1
    both = snap_graphs(graphs, point(0.0, 17.9))
    for name, rg in graphs.items():
        one = snap(rg, point(0.0, 17.9))
        assert both[name].access_m[0] == pytest.approx(17.9, abs=1e-9)
        assert one.seg[0] == both[name].seg[0]


def test_osm_file_building_above_a_tunnel_joins_the_ground_street(tmp_path):
    """From an OSM file through the reader: every profile's graph joins ground streets only,
    the tunnel and the elevated road still carry traffic."""
    items = [
        node(1, 0, 0), node(2, 6, 0),  # the open-air boulevard, west to east
        node(3, 1, 0), node(4, 1.5, 0.2), node(5, 4.5, 0.2), node(6, 5, 0),  # tunnel ramps
        node(7, 0, 0.1), node(8, 6, 0.1),  # an elevated road just north of the boulevard
        way(10, [1, 3, 6, 2], highway="primary", name="Boulevard"),
        way(11, [3, 4, 5, 6], highway="primary", tunnel="yes", layer="-1"),
        way(12, [7, 8], highway="trunk", bridge="viaduct", layer="2"),
        way(13, [1, 7], highway="trunk_link"),
        way(14, [8, 2], highway="trunk_link"),
    ]  # fmt: skip
    table = read_osm(write_osm(tmp_path / "tunnel.osm", items))
    graphs = {p: RoutingGraph.from_table(table, default_profile(p)) for p in ("engine", "foot")}
    to_m = pyproj.Transformer.from_crs(4326, table.crs, always_xy=True)
    lonlat = {it[1]: (it[2], it[3]) for it in items if it[0] == "node"}

    def at(nid: int) -> shapely.Point:
        return shapely.Point(*to_m.transform(*lonlat[nid]))

    boulevard = shapely.LineString([at(n) for n in (1, 3, 6, 2)])

    def north_of_middle(a: int, b: int, dy: float) -> shapely.Point:
        mid = shapely.LineString([at(a), at(b)]).interpolate(0.5, normalized=True)
        return shapely.Point(mid.x, mid.y + dy)

    above = north_of_middle(4, 5, 0.9)  # 0.9 m north of the tunnel's middle
    beside = north_of_middle(7, 8, 1.0)  # 1 m north of the viaduct
    tunnel = shapely.LineString([at(n) for n in (3, 4, 5, 6)])
    assert tunnel.distance(above) == pytest.approx(0.9, abs=1e-3)
    for name, rg in graphs.items():
        assert rg.snappable is not None
        for p in (above, beside):
            s = snap(rg, gpd.GeoSeries([p], crs=table.crs))
            assert s.access_m[0] == pytest.approx(boulevard.distance(p), abs=1e-6), name
            assert rg.segments["highway"].to_numpy()[s.seg[0]] == "primary"
    # The tunnel and the viaduct remain usable for travel.
    assert graphs["engine"].usable.all()
