"""Turn restrictions: node splitting at via nodes against an independent edge-based reference.

The reference is networkx Dijkstra on the line graph written here from the raw edge list: its
nodes are directed edges, its arcs the turns the restrictions allow (U-turns included), so it
shares nothing with firegrid.spatial.network.turns but the cost model (run of an edge plus the delay on
arriving at its head node).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from firegrid.spatial.network.osm import read_osm
from firegrid.spatial.network.profiles import default_profile
from firegrid.spatial.network.routing import (
    EdgeArrays,
    RoutingGraph,
    Snap,
    cost_matrix,
    nearest_cost,
    node_costs,
    segment_entry_costs,
)
from firegrid.spatial.network.turns import apply_turn_restrictions
from tests._osmxml import node, restriction, way, write_osm

N = 5  # 5 × 5 grid, 100 m spacing; node (i, j) = i * N + j at x = 100 i, y = 100 j
C, W, E, NORTH, S = 12, 7, 17, 13, 11  # the centre crossing and its four neighbours
DELAY = 2.0


def grid(oneway: tuple[tuple[int, int], ...] = ()):
    """Directed edges of the grid: the middle row and column are a fast avenue (20 m/s), the
    rest slow lanes (5 m/s), so the best routes run through the centre crossing; ``oneway``
    lists (u, v) streets open in that direction only."""
    edges = []
    for i in range(N):
        for j in range(N):
            for di, dj in ((1, 0), (0, 1)):
                if i + di >= N or j + dj >= N:
                    continue
                a, b = i * N + j, (i + di) * N + j + dj
                fast = (j == 2 and dj == 0) or (i == 2 and di == 0)
                run = 100.0 / (20.0 if fast else 5.0)
                for u, v in ((a, b), (b, a)):
                    if (v, u) in oneway:
                        continue
                    edges.append((u, v, run))
    return edges


def compile_grid(edges, restrictions=None):
    u = np.array([e[0] for e in edges])
    v = np.array([e[1] for e in edges])
    run = np.array([e[2] for e in edges])
    x = np.repeat(np.arange(N) * 100.0, N)
    y = np.tile(np.arange(N) * 100.0, N)
    delay = node_delay(edges)
    edges = EdgeArrays(x, y, u, v, np.full(len(u), 100.0))
    rg = RoutingGraph.from_arrays(edges, run, node_delay=delay, directed=True, weight="time")
    if restrictions is not None:
        rg = apply_turn_restrictions(rg, restrictions)
    return rg


def node_delay(edges) -> np.ndarray:
    nbrs: dict[int, set] = {}
    for u, v, _ in edges:
        nbrs.setdefault(u, set()).add(v)
        nbrs.setdefault(v, set()).add(u)
    return np.array([DELAY if len(nbrs.get(k, ())) >= 3 else 0.0 for k in range(N * N)])


def edge_index(edges, u: int, v: int) -> int:
    return next(k for k, e in enumerate(edges) if e[0] == u and e[1] == v)


def rows(edges, *moves) -> pd.DataFrame:
    """Restriction rows from (from_node, via, to_node, restriction) moves."""
    recs = []
    for a, via, b, name in moves:
        recs.append(
            dict(
                from_edge=edge_index(edges, a, via),
                via_node=via,
                to_edge=edge_index(edges, via, b),
                kind=name.split("_")[0],
                restriction=name,
                relation_id=len(recs) + 1,
            )
        )
    return pd.DataFrame(recs)


# ---------------------------------------------------------------------- the reference
def reference(edges, moves, source: tuple[int, int, float], targets):
    """Edge-based costs from one source to targets, by networkx on the line graph.

    ``source`` and each target are (u, v, g): a point at fraction g of the street between
    nodes u and v (g = 0: at u); the street may exist in either or both directions.
    """
    delay = node_delay(edges)
    cost = {(u, v): run + delay[v] for u, v, run in edges}
    run = {(u, v): r for u, v, r in edges}
    no: dict = {}
    only: dict = {}
    for a, via, b, name in moves:
        (only if name.startswith("only") else no).setdefault((a, via), set()).add((via, b))

    def allowed(e1, e2) -> bool:
        if e1 in only and e2 not in only[e1]:
            return False
        return e2 not in no.get(e1, set())

    L = nx.DiGraph()
    for e1 in cost:
        for e2 in cost:
            if e1[1] == e2[0] and allowed(e1, e2):
                L.add_edge(e1, e2, w=cost[e2])
    # Setting off: from a node, along any edge leaving it; from inside a street, to either end
    # along the edge that runs there (arriving by that edge, so bound by its restrictions).
    su, sv, sg = source
    start = "start"
    L.add_node(start)
    if sg in (0.0, 1.0):
        node = su if sg == 0.0 else sv
        for e in cost:
            if e[0] == node:
                L.add_edge(start, e, w=cost[e])
    else:
        if (su, sv) in cost:
            L.add_edge(start, (su, sv), w=(1 - sg) * run[(su, sv)] + delay[sv])
        if (sv, su) in cost:
            L.add_edge(start, (sv, su), w=sg * run[(sv, su)] + delay[su])
    d = nx.single_source_dijkstra_path_length(L, start, weight="w")
    out = []
    for tu, tv, tg in targets:
        if tg in (0.0, 1.0):
            node = tu if tg == 0.0 else tv
            if sg in (0.0, 1.0) and node == (su if sg == 0.0 else sv):
                out.append(0.0)
                continue
            out.append(min((d[e] for e in cost if e[1] == node and e in d), default=np.inf))
            continue
        best = np.inf
        for a, b, frac in ((tu, tv, tg), (tv, tu, 1 - tg)):
            if (a, b) not in run:
                continue
            # Entering the street at a: from the source's node, or after an allowed turn.
            enter = [d[x] for x in cost if x[1] == a and x in d and allowed(x, (a, b))]
            if sg in (0.0, 1.0) and a == (su if sg == 0.0 else sv):
                enter.append(0.0)
            if enter:
                best = min(best, min(enter) + frac * run[(a, b)])
        if {tu, tv} == {su, sv} and sg not in (0.0, 1.0):
            # Along the source's own street without passing a node.
            g = tg if (tu, tv) == (su, sv) else 1 - tg
            if g >= sg and (su, sv) in run:
                best = min(best, (g - sg) * run[(su, sv)])
            if g <= sg and (sv, su) in run:
                best = min(best, (sg - g) * run[(sv, su)])
        out.append(best)
    return np.array(out)


# ---------------------------------------------------------------------- checks
def point_on(rg: RoutingGraph, u: int, v: int, g: float) -> tuple[int, float]:
    k = int(
        np.flatnonzero(((rg.seg_a == u) & (rg.seg_b == v)) | ((rg.seg_a == v) & (rg.seg_b == u)))[0]
    )
    return k, (g if rg.seg_a[k] == u else 1.0 - g)


def all_targets(rg: RoutingGraph):
    """Every node, and the middle and a quarter of every street."""
    pts = [(k, 0, 0.0) for k in range(N * N)]
    for s in range(rg.n_segments):
        a, b = int(rg.seg_a[s]), int(rg.seg_b[s])
        pts += [(a, b, 0.5), (a, b, 0.25)]
    return pts


def snaps(rg, pts) -> Snap:
    segs, fracs = [], []
    for u, v, g in pts:
        if g == 0.0:  # a node: any street at it, at that end
            k = int(np.flatnonzero((rg.seg_a == u) | (rg.seg_b == u))[0])
            segs.append(k)
            fracs.append(0.0 if rg.seg_a[k] == u else 1.0)
        else:
            k, f = point_on(rg, u, v, g)
            segs.append(k)
            fracs.append(f)
    return Snap.at(rg, np.array(segs), np.array(fracs))


def check_against_reference(edges, moves, sources):
    rg = compile_grid(edges, rows(edges, *moves) if moves else None)
    tpts = all_targets(rg)
    tgt = snaps(rg, tpts)
    src = snaps(rg, sources)
    ref = np.array([reference(edges, moves, s, tpts) for s in sources])
    for i in range(len(sources)):
        cost, _ = nearest_cost(rg, src.take(np.array([i])), tgt)
        np.testing.assert_allclose(cost, ref[i], atol=1e-9, rtol=0)
    cost, who = nearest_cost(rg, src, tgt)
    np.testing.assert_allclose(cost, ref.min(axis=0), atol=1e-9, rtol=0)
    np.testing.assert_allclose(ref[who, np.arange(len(tpts))], cost, atol=1e-9, rtol=0)
    M = cost_matrix(rg, src, tgt, cutoff=1e9).toarray()
    M[M == 0] = np.where(ref[M == 0] == 0, 0.0, np.inf)  # explicit zeros kept, others absent
    np.testing.assert_allclose(M, ref, atol=1e-9, rtol=0)
    nodes = node_costs(rg, src)
    np.testing.assert_allclose(nodes, ref[:, : N * N], atol=1e-9, rtol=0)
    return rg, ref, tpts


FAR_WEST = (2, 0, 0.0)  # node (0, 2): traffic from the west arrives at C from W
SOURCES = [FAR_WEST, (20, 0, 0.0), (W, C, 0.5), (0, 0, 0.0), (22, 23, 0.3)]


@pytest.mark.parametrize(
    ("name", "to"),
    [
        ("no_left_turn", NORTH),
        ("no_right_turn", S),
        ("no_straight_on", E),
        ("no_u_turn", W),
        ("only_left_turn", NORTH),
        ("only_right_turn", S),
        ("only_straight_on", E),
    ],
)
def test_each_restriction_kind_equals_the_line_graph_reference(name, to):
    edges = grid()
    rg, ref, tpts = check_against_reference(edges, [(W, C, to, name)], SOURCES)
    assert rg.turns is not None and rg.turns.n_applied == 1
    free = compile_grid(edges)
    tgt = snaps(free, tpts)
    src = snaps(free, [FAR_WEST])
    base, _ = nearest_cost(free, src, tgt)
    # From the far west, a point just past the crossing on each arm: dearer exactly where
    # the restriction bars the move (a U-turn back to W is never the best way to W itself).
    arms = {NORTH: (C, NORTH), S: (C, S), E: (C, E)}
    for arm, (a, b) in arms.items():
        j = tpts.index((min(a, b), max(a, b), 0.5))
        barred = (arm == to) if name.startswith("no") else (arm != to)
        assert (ref[0, j] > base[j] + 1e-9) == barred, (name, arm)


def test_only_straight_on_forbids_the_u_turn_and_no_u_turn_binds():
    edges = grid()
    moves = [(W, C, E, "only_straight_on")]
    rg, ref, tpts = check_against_reference(edges, moves, [FAR_WEST])
    # The copy of C for traffic from W may leave by C → E alone: no U-turn back to W.
    tr = rg.turns
    arcs = [x for x in range(2 * rg.n_segments)
            if tr.n_nodes in tr.allow_state[tr.allow_ptr[x]:tr.allow_ptr[x + 1]]]  # fmt: skip
    k, f = point_on(rg, C, E, 0.5)
    assert arcs == [2 * k + (0 if f == 0.5 and rg.seg_a[k] == C else 1)]
    # Barred from turning left at C, traffic from the west goes on to E, turns round there and
    # turns right at C; forbidding that U-turn too forces a slow detour.
    j = tpts.index((C, NORTH, 0.5))
    rg2, ref2, _ = check_against_reference(edges, moves + [(C, E, C, "no_u_turn")], [FAR_WEST])
    assert ref[0, j] == pytest.approx(5 + 2 + 5 + 2 + 5 + 2 + 5 + 2 + 2.5, abs=1e-9)
    assert ref2[0, j] > ref[0, j] + 1.0


def test_two_restrictions_at_one_via_node():
    edges = grid()
    moves = [(W, C, NORTH, "no_left_turn"), (W, C, E, "no_straight_on"),
             (S, C, E, "only_right_turn"), (E, C, W, "no_straight_on")]  # fmt: skip
    rg, _, _ = check_against_reference(edges, moves, SOURCES + [(22, 0, 0.0), (10, 0, 0.0)])
    assert len(rg.turns.copy_node) == 3 and (rg.turns.copy_node == C).all()


def test_restriction_on_a_one_way_street():
    edges = grid(oneway=((W, C),))  # W → C only
    moves = [(W, C, S, "no_right_turn")]
    rg, _, _ = check_against_reference(edges, moves, SOURCES)
    assert rg.turns.n_applied == 1
    # The same restriction written against the forbidden direction does nothing (dropped).
    rows_bad = rows(grid(), (E, C, W, "no_straight_on"))
    rows_bad.loc[0, "to_edge"] = edge_index(edges, C, NORTH)
    rows_bad.loc[0, "via_node"] = W  # the edges do not meet at this via node
    free = compile_grid(edges)
    assert apply_turn_restrictions(free, rows_bad) is free


def test_via_node_that_is_also_a_snap_target():
    edges = grid()
    moves = [(W, C, E, "no_straight_on")]
    rg, ref, tpts = check_against_reference(edges, moves, [FAR_WEST])
    free_rg, free_ref, _ = check_against_reference(edges, [], [FAR_WEST])
    at_c = tpts.index((C, 0, 0.0))
    just_past = tpts.index((C, E, 0.25))
    assert ref[0, at_c] == free_ref[0, at_c]  # arriving at C is allowed
    assert ref[0, just_past] > free_ref[0, just_past]  # going on east from it is not
    # A building snapped exactly onto C (fraction 0 or 1 of each of C's streets).
    for seg in np.flatnonzero((rg.seg_a == C) | (rg.seg_b == C)):
        t = Snap.at(rg, np.array([seg]), np.array([0.0 if rg.seg_a[seg] == C else 1.0]))
        cost, _ = nearest_cost(rg, snaps(rg, [FAR_WEST]), t)
        assert cost[0] == pytest.approx(ref[0, at_c], abs=1e-9)


def test_source_inside_the_from_street_is_bound():
    edges = grid()
    moves = [(W, C, NORTH, "no_left_turn")]
    rg, ref, tpts = check_against_reference(edges, moves, [(W, C, 0.9)])
    _, free_ref, _ = check_against_reference(edges, [], [(W, C, 0.9)])
    j = tpts.index((C, NORTH, 0.5))
    assert ref[0, j] > free_ref[0, j] + 1.0


def test_osm_relations_bind_engines_not_foot_or_ebike(tmp_path):
    """From an OSM file through the reader: a no_left_turn relation changes the engine's time
    (equal to the line-graph reference on the table's own edges) and not the crews' times."""
    # A crossing C (node 5) of an east-west avenue and a north-south street; a slow lane
    # around the north-west corner is the detour.
    items = [
        node(1, -2, 0), node(5, 0, 0), node(2, 2, 0), node(3, 0, 2), node(4, 0, -2),
        node(6, -2, 2),
        way(10, [1, 5], highway="primary", name="West"),
        way(11, [5, 2], highway="primary", name="East"),
        way(12, [5, 3], highway="secondary", name="North"),
        way(13, [5, 4], highway="secondary", name="South"),
        way(14, [1, 6, 3], highway="residential", name="Lane"),
        restriction(20, "no_left_turn", 10, 5, 12),
    ]  # fmt: skip
    table = read_osm(write_osm(tmp_path / "turns.osm", items))
    assert len(table.restrictions) == 1
    free = read_osm(write_osm(tmp_path / "free.osm", items[:-1]))
    idx = {int(n): i for i, n in enumerate(table.node_ids)}
    for name in ("engine", "ebike", "foot"):
        prof = default_profile(name)
        rg = RoutingGraph.from_table(table, prof)
        rg0 = RoutingGraph.from_table(free, prof)
        assert (rg.turns is not None) == (name == "engine")
        at = [Snap.at(g, *_node_snap(g, idx[1])) for g in (rg, rg0)]
        to = [Snap.at(g, *_node_snap(g, idx[3])) for g in (rg, rg0)]
        t, _ = nearest_cost(rg, at[0], to[0])
        t0, _ = nearest_cost(rg0, at[1], to[1])
        if name == "engine":
            assert t[0] > t0[0] + 1.0
            # Reference on the table's own directed edges, costs from the compiled graph.
            cost = {}
            for e in range(table.n_edges):
                k, f = rg.edge_seg[e], rg.edge_fwd[e]
                c = (rg.run_fwd[k] + rg.fix_fwd[k]) if f else (rg.run_back[k] + rg.fix_back[k])
                if np.isfinite(c):
                    cost[(int(table.u[e]), int(table.v[e]), e)] = c
            L = nx.DiGraph()
            r = table.restrictions.iloc[0]
            for x in cost:
                for y in cost:
                    banned = (x[2], y[2]) == (r["from_edge"], r["to_edge"])
                    if x[1] == y[0] and not banned:
                        L.add_edge(x, y, w=cost[y])
            for x in cost:
                if x[0] == idx[1]:
                    L.add_edge("s", x, w=cost[x])
            d = nx.single_source_dijkstra_path_length(L, "s", weight="w")
            ref = min(d[x] for x in cost if x[1] == idx[3] and x in d)
            assert t[0] == pytest.approx(ref, abs=1e-9)
        else:
            assert t[0] == pytest.approx(t0[0], abs=1e-9)


def _node_snap(rg: RoutingGraph, node: int):
    k = int(np.flatnonzero((rg.seg_a == node) | (rg.seg_b == node))[0])
    return np.array([k]), np.array([0.0 if rg.seg_a[k] == node else 1.0])


@pytest.mark.parametrize("name", ["no_left_turn", "only_straight_on"])
def test_segment_entry_costs_for_isochrones(name):
    """Entry costs from per-state node costs reproduce the reference inside every street."""
    edges = grid()
    moves = [(W, C, NORTH, name) if name.startswith("no") else (W, C, E, name)]
    rg, ref, tpts = check_against_reference(edges, moves, [FAR_WEST])
    dist = node_costs(rg, snaps(rg, [FAR_WEST]), states=True)
    assert dist.shape == (1, rg.n_states) and rg.n_states == N * N + 1
    segs = np.arange(rg.n_segments)
    ea, eb = segment_entry_costs(rg, dist, np.zeros(len(segs), dtype=np.int64), segs)
    for j, (u, v, g) in enumerate(tpts):
        if g in (0.0, 1.0):
            continue
        k, f = point_on(rg, u, v, g)
        got = min(ea[k] + f * rg.run_fwd[k], eb[k] + (1 - f) * rg.run_back[k])
        assert got == pytest.approx(ref[0, j], abs=1e-9), (u, v, g)
