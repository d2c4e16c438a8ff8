"""The OSM reader (pyosmium → arrays): ways, cuts, segments, directions, restrictions, real files."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import osmnx as ox
import pyproj
import pytest
import shapely
from scipy.sparse.csgraph import dijkstra

from firegrid.spatial.errors import NetworkError
from firegrid.spatial.network.load import read_network
from firegrid.spatial.network.osm import read_osm
from firegrid.spatial.network.profiles import ENGINE_SPEEDS_KMH, default_profile
from firegrid.spatial.network.routing import RoutingGraph
from tests._osmxml import node, restriction, way, write_osm

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "shanghai_roads"
CLIPPED = SHARED / "lujiazui_clipped.osm.pbf"
UTM51 = pyproj.CRS.from_epsg(32651)
needs_clipped = pytest.mark.skipif(
    not CLIPPED.exists(), reason=f"shared clipped Lujiazui extract absent: {CLIPPED}"
)


def _ways_of(t, profile=None):
    """Way id per edge (optionally only the edges a profile may use)."""
    w = t.edges["way_id"].to_numpy()
    return w if profile is None else w[profile.usable(t)]


# ---------------------------------------------------------------------- structure
def test_only_highway_ways_become_streets(tmp_path):
    items = [node(1, 0, 0), node(2, 1, 0), node(3, 2, 0), node(4, 1, 1), node(5, 1, -1),
             way(10, [1, 2, 3], highway="residential"),
             way(11, [4, 2, 5], waterway="river"),  # crosses the street at node 2
             way(12, [4, 1], railway="rail"),
             way(13, [1, 4, 3, 1], building="yes")]  # fmt: skip
    t = read_osm(write_osm(tmp_path / "a.osm", items))
    assert set(t.edges["way_id"]) == {10}
    # The river shares node 2 but does not split the street: one segment 1-3, both directions.
    assert t.n_edges == 2 and set(t.node_ids) == {1, 3}
    assert t.stats["ways_read"] == 1


def test_segment_keeps_its_own_way_class(tmp_path):
    # A residential street continuing as a footway at a degree-2 node: never merged.
    items = [node(1, 0, 0), node(2, 1, 0), node(3, 2, 0), node(4, 3, 0),
             way(10, [1, 2], highway="residential", name="A路"),
             way(11, [2, 3, 4], highway="footway")]  # fmt: skip
    t = read_osm(write_osm(tmp_path / "a.osm", items))
    assert sorted(set(zip(t.edges["way_id"], t.highway.values(), strict=True))) == [
        (10, "residential"), (11, "footway")]  # fmt: skip
    assert set(_ways_of(t, default_profile("engine"))) == {10}
    assert set(_ways_of(t, default_profile("foot"))) == {10, 11}


def test_chain_contracted_within_a_way_with_geometry_and_length(tmp_path):
    items = [node(1, 0, 0), node(2, 1, 0), node(3, 1, 1), node(4, 2, 1), node(5, 2, 2),
             way(10, [1, 2, 3, 4, 5], highway="tertiary")]  # fmt: skip
    path = write_osm(tmp_path / "a.osm", items)
    t = read_osm(path, crs=UTM51)
    assert t.n_edges == 2 and set(t.node_ids) == {1, 5}
    # Independent length: the five points projected with pyproj, summed piecewise.
    tr = pyproj.Transformer.from_crs(4326, UTM51, always_xy=True)
    lon = [it[2] for it in items[:5]]
    lat = [it[3] for it in items[:5]]
    x, y = tr.transform(np.round(lon, 7), np.round(lat, 7))
    expect = np.hypot(np.diff(x), np.diff(y)).sum()
    np.testing.assert_allclose(t.length, expect, rtol=0, atol=1e-6)
    fwd = np.flatnonzero(t.node_ids[t.u] == 1)[0]
    np.testing.assert_allclose(shapely.get_coordinates(t.geom[fwd]), np.c_[x, y], atol=1e-6)
    # The reverse edge runs the other way.
    back = np.flatnonzero(t.node_ids[t.u] == 5)[0]
    np.testing.assert_allclose(shapely.get_coordinates(t.geom[back]), np.c_[x, y][::-1], atol=1e-6)


def test_clipped_way_is_cut_where_it_leaves_the_file(tmp_path):
    # Way 10 refers to nodes 90 and 91, not in the file: pieces 1-2 and 3-4, the single node 5
    # between two missing nodes is no street.
    items = [node(1, 0, 0), node(2, 1, 0), node(3, 3, 0), node(4, 4, 0), node(5, 6, 0),
             node(6, 1, 1),
             way(10, [1, 2, 90, 3, 4, 91, 5, 92], highway="primary"),
             way(11, [2, 6], highway="residential")]  # fmt: skip
    t = read_osm(write_osm(tmp_path / "a.osm", items))
    assert t.stats["ways_cut_at_edge"] == 1 and t.stats["missing_node_refs"] == 3
    pairs = {tuple(sorted(p)) for p in zip(t.node_ids[t.u], t.node_ids[t.v], strict=True)}
    assert pairs == {(1, 2), (3, 4), (2, 6)}


def test_repeated_node_and_closed_way(tmp_path):
    # Node 2 listed twice in a row; way 11 a closed ring touching way 10 at node 3 only.
    items = [node(1, 0, 0), node(2, 1, 0), node(3, 2, 0), node(4, 3, 0), node(5, 3, 1),
             way(10, [1, 2, 2, 3], highway="residential"),
             way(11, [3, 4, 5, 3], highway="service")]  # fmt: skip
    t = read_osm(write_osm(tmp_path / "a.osm", items))
    assert (t.length > 0).all() and set(t.node_ids) == {1, 3}
    ring = t.edges["way_id"].to_numpy() == 11
    assert (t.u[ring] == t.v[ring]).all() and ring.sum() == 2  # a loop, both directions
    rg = RoutingGraph.from_table(t, default_profile("engine"))
    # Three street pieces meet at node 3 (the street and both ends of the ring): a junction.
    assert rg.fix_fwd[rg.seg_b == np.searchsorted(t.node_ids, 3)].max() == 3.0


@pytest.mark.parametrize(
    ("tags", "forward", "backward"),
    [
        ({}, True, True),
        ({"oneway": "yes"}, True, False),
        ({"oneway": "true"}, True, False),
        ({"oneway": "1"}, True, False),
        ({"oneway": "-1"}, False, True),
        ({"oneway": "reverse"}, False, True),
        ({"oneway": "no"}, True, True),
        ({"oneway": "reversible"}, True, True),  # direction changes by the hour: both kept
        ({"junction": "roundabout"}, True, False),
        ({"junction": "circular"}, True, False),
        ({"junction": "roundabout", "oneway": "no"}, True, True),
        ({"highway": "motorway"}, True, False),  # one-way by OSM convention
        ({"highway": "motorway", "oneway": "no"}, True, True),
    ],
)
def test_oneway_variants(tmp_path, tags, forward, backward):
    tags = {"highway": "secondary", **tags}
    items = [node(1, 0, 0), node(2, 1, 0), way(10, [1, 2], **tags)]
    t = read_osm(write_osm(tmp_path / "a.osm", items))
    pairs = set(zip(t.node_ids[t.u].tolist(), t.node_ids[t.v].tolist(), strict=True))
    assert ((1, 2) in pairs) == forward and ((2, 1) in pairs) == backward
    assert bool(t.edges["oneway"].all()) == (forward != backward)
    # Engines obey the direction; crews on foot use a one-way street both ways.
    if tags["highway"] != "motorway":  # not for crews on foot
        eng = RoutingGraph.from_table(t, default_profile("engine"), weight="length")
        foot = RoutingGraph.from_table(t, default_profile("foot"), weight="length")
        i1, i2 = np.searchsorted(t.node_ids, [1, 2])
        d = dijkstra(eng.csr, indices=[i1, i2])
        assert np.isfinite(d[0, i2]) == forward and np.isfinite(d[1, i1]) == backward
        assert np.isfinite(dijkstra(foot.csr, indices=[i1, i2])).all()


def test_compressed_xml_and_pbf_read_identically(tmp_path):
    items = [node(1, 0, 0), node(2, 1, 0), node(3, 1, 1), node(4, 2, 0),
             way(10, [1, 2, 3], highway="residential"), way(11, [2, 4], highway="service")]  # fmt: skip
    xml = write_osm(tmp_path / "a.osm", items)
    (tmp_path / "a.osm.bz2").write_bytes(bz2.compress(xml.read_bytes()))
    (tmp_path / "a.osm.gz").write_bytes(gzip.compress(xml.read_bytes()))
    pbf = tmp_path / "a.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as w:
        for obj in osmium.FileProcessor(str(xml)):
            w.add(obj)
    ref = read_network(xml)
    for p in ("a.osm.bz2", "a.osm.gz", "a.osm.pbf"):
        t = read_network(tmp_path / p)
        assert np.array_equal(t.node_ids, ref.node_ids)
        np.testing.assert_array_equal(t.length, ref.length)
        assert t.edges[["u", "v", "way_id"]].equals(ref.edges[["u", "v", "way_id"]])


def test_errors_name_the_users_file(tmp_path):
    bad = tmp_path / "城区.osm"
    bad.write_text("<osm><node id='1' lat='x'")
    with pytest.raises(NetworkError, match="城区.osm") as exc:
        read_network(bad)
    assert "tmp" not in str(exc.value).replace(str(tmp_path), "")
    empty = write_osm(tmp_path / "rivers.osm", [node(1, 0, 0), node(2, 1, 0),
                                               way(5, [1, 2], waterway="river")])  # fmt: skip
    with pytest.raises(NetworkError, match=r"rivers\.osm: .*no highway"):
        read_network(empty)
    with pytest.raises(NetworkError, match="projected"):
        read_network(write_osm(tmp_path / "ok.osm", [node(1, 0, 0), node(2, 1, 0),
                     way(5, [1, 2], highway="primary")]), crs="EPSG:4326")  # fmt: skip


# ---------------------------------------------------------------------- restrictions
def _cross(tmp_path, *relations, split: bool = True):
    """A crossing at node 5: west 1, east 2, south 3, north 4; ways end at node 5 (OSM's rule
    for restriction members) unless ``split`` is False (ways 10 and 20 pass through)."""
    items = [node(1, 0, 1), node(5, 1, 1), node(2, 2, 1), node(3, 1, 0), node(4, 1, 2)]
    if split:
        items += [way(11, [1, 5], highway="secondary"), way(12, [5, 2], highway="secondary"),
                  way(21, [3, 5], highway="secondary"), way(22, [5, 4], highway="secondary")]  # fmt: skip
    else:
        items += [way(10, [1, 5, 2], highway="secondary"), way(20, [3, 5, 4], highway="secondary")]
    return read_osm(write_osm(tmp_path / "x.osm", [*items, *relations]))


def _edge(t, a, b):
    hit = np.flatnonzero((t.node_ids[t.u] == a) & (t.node_ids[t.v] == b))
    assert len(hit) == 1
    return int(hit[0])


def _turns(t, relation_id):
    r = t.restrictions[t.restrictions["relation_id"] == relation_id]
    return {(int(t.node_ids[t.u[f]]), int(t.node_ids[t.v[o]]), k)
            for f, o, k in zip(r.from_edge, r.to_edge, r.kind, strict=True)}  # fmt: skip


def test_restriction_no_maps_to_directed_edges(tmp_path):
    # Arriving from the west (way 11), no left turn north onto way 22.
    t = _cross(tmp_path, restriction(100, "no_left_turn", 11, 5, 22))
    r = t.restrictions
    assert len(r) == 1
    row = r.iloc[0]
    assert row.from_edge == _edge(t, 1, 5) and row.to_edge == _edge(t, 5, 4)
    assert t.node_ids[row.via_node] == 5 and row.relation_id == 100
    assert (row.kind, row.restriction) == ("no", "no_left_turn")


def test_restriction_only_maps_to_one_row(tmp_path):
    t = _cross(tmp_path, restriction(101, "only_straight_on", 21, 5, 22))
    assert _turns(t, 101) == {(3, 4, "only")}


def test_restriction_no_u_turn_is_the_edge_straight_back(tmp_path):
    t = _cross(tmp_path, restriction(104, "no_u_turn", 11, 5, 11))
    assert _turns(t, 104) == {(1, 1, "no")}
    row = t.restrictions.iloc[0]
    assert t.u[row.to_edge] == t.v[row.from_edge] and t.v[row.to_edge] == t.u[row.from_edge]


def test_restrictions_skipped_and_counted(tmp_path):
    t = _cross(
        tmp_path,
        restriction(102, "no_right_turn", 11, 21, 22, via_type="way"),
        restriction(103, "no_left_turn", 11, 5, 22, **{"except": "emergency"}),
        restriction(105, "no_left_turn", 11, 5, 22, **{"restriction:hgv": "x"}),
        restriction(106, "no_entry", 11, 9999, 22),
    )
    assert t.stats["restrictions_via_way_skipped"] == 1
    assert _turns(t, 103) == set()  # engines exempt
    assert _turns(t, 105) == {(1, 4, "no")}
    assert t.stats["restrictions_unmatched"] == 1  # via node 9999 not in the file
    # Ways passing through the via node leave the side of the turn open: dropped, counted.
    t2 = _cross(tmp_path, restriction(107, "no_left_turn", 10, 5, 20), split=False)
    assert len(t2.restrictions) == 0 and t2.stats["restrictions_unmatched"] == 1


# ---------------------------------------------------------------------- osmnx for analysts
def test_to_networkx_is_osmnx_compatible(tmp_path):
    items = [node(1, 0, 0), node(2, 1, 0), node(3, 1, 1), node(4, 2, 1), node(6, 0, 1),
             way(10, [1, 2, 3], highway="residential", name="一路"),
             way(11, [3, 4], highway="primary", oneway="yes"),
             way(12, [1, 6, 3], highway="service")]  # fmt: skip
    t = read_osm(write_osm(tmp_path / "a.osm", items), crs=UTM51)
    G = t.to_networkx()
    nodes, edges = ox.convert.graph_to_gdfs(G)
    assert len(nodes) == t.n_nodes and len(edges) == t.n_edges
    assert {"osmid", "highway", "oneway", "length", "geometry"} <= set(edges.columns)
    path = ox.routing.shortest_path(G, 1, 4, weight="length")
    assert path[0] == 1 and path[-1] == 4
    rg = RoutingGraph.from_table(t, None, weight="length")
    i1, i4 = np.searchsorted(t.node_ids, [1, 4])
    d = dijkstra(rg.csr, indices=i1)[i4]
    ox_len = sum(min(d["length"] for d in G[a][b].values())
                 for a, b in zip(path[:-1], path[1:], strict=True))  # fmt: skip
    assert d == pytest.approx(ox_len, abs=1e-9)
    roads = t.roads_layer()
    assert len(roads) == 3 and roads["oneway"].sum() == 1


# ---------------------------------------------------------------------- the clipped extract
class _RawWays(osmium.SimpleHandler):
    """A separate minimal pass: node coordinates, highway ways with refs and tags, barriers."""

    def __init__(self):
        super().__init__()
        self.nodes, self.ways, self.barriers = {}, [], {}

    def node(self, n):
        self.nodes[n.id] = (n.location.lon, n.location.lat)
        if "barrier" in n.tags:
            self.barriers[n.id] = dict(n.tags)

    def way(self, w):
        if "highway" in w.tags:
            self.ways.append((w.id, [n.ref for n in w.nodes], dict(w.tags)))


def _engine_reference(raw: _RawWays) -> tuple[nx.DiGraph, int]:
    """Engine travel times on the raw OSM ways, written without the reader or profile rules.

    Each consecutive pair of nodes both in the file is an edge carrying its own way's class and
    tags; a way is cut where a node is missing. Engine rules re-implemented here: the first of
    motorcar/motor_vehicle/vehicle/access set decides (no/private… close); gates follow their
    access tags, kissing gates and bollards stop engines; oneway yes/-1 and roundabouts;
    speed = min(maxspeed or class speed, 60) × 0.75; 3 s on arriving at a node with three or
    more distinct neighbours on engine streets.
    """
    tr = pyproj.Transformer.from_crs(4326, UTM51, always_xy=True)
    ids = np.array(list(raw.nodes))
    x, y = tr.transform(*np.array([raw.nodes[i] for i in ids]).T)
    xy = dict(zip(ids.tolist(), zip(x.tolist(), y.tolist(), strict=True), strict=True))
    closed = {"no", "private", "agricultural", "forestry", "military"}
    blocked = set()
    for nid, tags in raw.barriers.items():
        kind = tags.get("barrier")
        val = next((tags[k] for k in ("motorcar", "motor_vehicle", "vehicle", "access")
                    if k in tags), "")  # fmt: skip
        if kind in ("kissing_gate", "bollard", "block") or (
            kind in ("gate", "lift_gate") and val in closed
        ):
            blocked.add(nid)
    D = nx.DiGraph()
    cut = 0
    for _, refs, tags in raw.ways:
        if tags.get("highway") not in ENGINE_SPEEDS_KMH:
            continue
        val = next((tags[k] for k in ("motorcar", "motor_vehicle", "vehicle", "access")
                    if k in tags), "")  # fmt: skip
        if val in closed:
            continue
        cut += any(r not in xy for r in refs)
        kmh = ENGINE_SPEEDS_KMH[tags["highway"]]
        try:
            kmh = float(tags.get("maxspeed", ""))
        except ValueError:
            pass
        mps = min(kmh, 60.0) * 0.75 / 3.6
        ow = tags.get("oneway")
        fwd = ow != "-1"
        back = ow not in ("yes", "true", "1", "-1") and tags.get("junction") != "roundabout"
        if ow == "-1":
            back = True
        for a, b in zip(refs[:-1], refs[1:], strict=True):
            if a not in xy or b not in xy or a == b:
                continue
            t = float(np.hypot(xy[b][0] - xy[a][0], xy[b][1] - xy[a][1])) / mps
            for p, q, ok in ((a, b, fwd), (b, a, back)):
                if ok and (not D.has_edge(p, q) or D[p][q]["t"] > t):
                    D.add_edge(p, q, t=t)
    und = D.to_undirected()
    for _, q, d in D.edges(data=True):
        delay = 3.0 if und.degree(q) >= 3 else 0.0
        d["cost"] = np.inf if q in blocked else d["t"] + delay
    return D, cut


@pytest.mark.slow
@needs_clipped
def test_clipped_extract_loads_and_times_equal_networkx_reference():
    t = read_network(CLIPPED, crs=UTM51)
    raw = _RawWays()
    raw.apply_file(str(CLIPPED))
    ref, _ = _engine_reference(raw)
    # Ways cut at the edge, counted on the raw ways independently.
    cut = sum(any(r not in raw.nodes for r in refs) for _, refs, _ in raw.ways)
    assert t.stats["ways_cut_at_edge"] == cut == 56
    assert t.stats["missing_node_refs"] == 398
    assert t.stats["ways_read"] == 870 == len(raw.ways)
    rg = RoutingGraph.from_table(t, default_profile("engine"))
    # Sources spread over the extract; every graph node compared where the reference has it.
    rng = np.random.default_rng(3)
    src = rng.choice(t.n_nodes, 12, replace=False)
    ours = dijkstra(rg.csr, indices=src)
    compared = 0
    for row, s in enumerate(src):
        sid = int(t.node_ids[s])
        if sid not in ref:
            assert np.isinf(ours[row]).sum() >= t.n_nodes - 1
            continue
        theirs = nx.single_source_dijkstra_path_length(ref, sid, weight="cost")
        theirs = {k: v for k, v in theirs.items() if np.isfinite(v)}
        got = {int(t.node_ids[i]): ours[row, i] for i in np.flatnonzero(np.isfinite(ours[row]))}
        assert set(got) == set(theirs) & set(t.node_ids.tolist())
        for k, v in got.items():
            assert v == pytest.approx(theirs[k], abs=1e-6)
        compared += len(got)
    assert compared > 2000
