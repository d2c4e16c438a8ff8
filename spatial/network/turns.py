"""Turn restrictions (OSM ``type=restriction`` relations) in a compiled road graph.

Routing stays node-based (one multi-source scipy Dijkstra) everywhere except at the via nodes of
restrictions, where it becomes edge-based by *node splitting*: every restricted arriving edge
gets its own copy of the via node, and that copy leaves only by the moves the restrictions
allow (for ``no_*`` every move but the forbidden ones, for ``only_*`` the named move alone).
Arriving edges without a restriction keep the original node and every move. A U-turn at the
via node is a move like any other: ``no_u_turn`` forbids it and an ``only_*`` restriction
forbids it with every other move.

States ``0 .. N-1`` of the compiled CSR are the nodes, ``N ..`` the copies. Routing reports
costs per node (the cheapest of its states); a point on a street is reached from a state
allowed to enter that street; points snap onto the original segments as before. Only
via-node restrictions apply (via-way ones are counted by the reader and skipped).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from firegrid.spatial.errors import NetworkError
from firegrid.spatial.network.csr import min_cost_csr

if TYPE_CHECKING:
    from firegrid.spatial.network.routing import RoutingGraph

RESTRICTION_COLUMNS = ("from_edge", "via_node", "to_edge", "kind")


@dataclass(eq=False)
class TurnStates:
    """Node copies compiled into a RoutingGraph's CSR for its turn restrictions.

    Directed *arcs* of the graph's segments are numbered ``2 * s`` (``a → b``) and
    ``2 * s + 1`` (``b → a``).

    Attributes
    ----------
    n_nodes : int
        Number of original nodes ``N`` (states ``0 .. N-1``).
    copy_node : numpy.ndarray
        Original node of each copy (state ``N + i``).
    copy_arc : numpy.ndarray
        The restricted arc arriving at each copy.
    head_state : numpy.ndarray
        Per arc, the state it arrives at (its head node, or the copy of a restricted arc).
    allow_ptr, allow_state : numpy.ndarray
        Per arc (CSR-like), the copies allowed to leave by it; the head node's original state
        allows every move.
    n_applied, n_skipped : int
        Restriction rows compiled, and rows dropped (edges not meeting at the via node, or
        not usable by the profile).
    """

    n_nodes: int
    copy_node: np.ndarray
    copy_arc: np.ndarray
    head_state: np.ndarray
    allow_ptr: np.ndarray
    allow_state: np.ndarray
    n_applied: int = 0
    n_skipped: int = 0

    @property
    def n_states(self) -> int:
        return self.n_nodes + len(self.copy_node)


def apply_turn_restrictions(rg: RoutingGraph, restrictions: pd.DataFrame) -> RoutingGraph:
    """The graph with its turn restrictions compiled in (a new RoutingGraph; ``rg`` untouched).

    Parameters
    ----------
    rg : RoutingGraph
        Compiled from the table the restrictions index (``rg.edge_seg``/``edge_fwd`` map the
        table's edges onto segments).
    restrictions : pandas.DataFrame
        ``from_edge`` (edge arriving at the via node), ``via_node`` (node index), ``to_edge``
        (edge leaving the via node) and ``kind`` (``"no"`` or ``"only"``), one row per move;
        several ``only`` rows from one edge allow each of their moves.

    Returns
    -------
    RoutingGraph
        Same segments, costs and snapping; ``csr`` has one extra state per restricted arriving
        arc and ``turns`` describes them. Without applicable rows, ``rg`` itself.
    """
    _check(rg, restrictions)
    arcs = _Arcs.of(rg)
    fa, ta, kind, ok = _restricted_moves(rg, arcs, restrictions)
    if len(fa) == 0:
        return rg
    n = rg.n_nodes
    copy_arc, copy_of = np.unique(fa, return_inverse=True)
    copy_node = arcs.head[copy_arc]
    head_state = arcs.head.copy()
    head_state[copy_arc] = n + np.arange(len(copy_arc))
    a_arc, a_copy = _allowed_moves(rg, arcs, copy_node, copy_of, ta, kind)
    # The CSR over states: every usable arc from its tail node, and the allowed moves out of
    # each copy; each arc arrives at its head state.
    usable = np.flatnonzero(arcs.usable)
    rows = np.concatenate([arcs.tail[usable], n + a_copy])
    cols = np.concatenate([head_state[usable], head_state[a_arc]])
    w = np.concatenate([arcs.cost[usable], arcs.cost[a_arc]])
    csr = min_cost_csr(rows, cols, w, n + len(copy_arc))
    order = np.argsort(a_arc, kind="stable")
    allow_ptr = np.zeros(len(arcs.cost) + 1, dtype=np.int64)
    np.cumsum(np.bincount(a_arc, minlength=len(arcs.cost)), out=allow_ptr[1:])
    turns = TurnStates(
        n_nodes=n,
        copy_node=copy_node,
        copy_arc=copy_arc,
        head_state=head_state,
        allow_ptr=allow_ptr,
        allow_state=n + a_copy[order],
        n_applied=int(ok.sum()),
        n_skipped=int(len(restrictions) - ok.sum()),
    )
    return dataclasses.replace(rg, csr=csr, turns=turns)


def _check(rg: RoutingGraph, restrictions: pd.DataFrame) -> None:
    missing = [c for c in RESTRICTION_COLUMNS if c not in restrictions]
    if missing:
        raise NetworkError(f"turn restrictions lack the columns {missing}")
    if rg.edge_seg is None or rg.edge_fwd is None:
        raise NetworkError("the routing graph does not map edges onto segments")
    if rg.turns is not None:
        raise NetworkError("turn restrictions are already compiled into this graph")


@dataclass(frozen=True, eq=False)
class _Arcs:
    """The directed arcs of a graph's segments: arc ``2 s`` runs a → b, ``2 s + 1`` b → a."""

    tail: np.ndarray
    head: np.ndarray
    cost: np.ndarray  # travelling the arc, arrival delay at its head included
    usable: np.ndarray

    @classmethod
    def of(cls, rg: RoutingGraph) -> _Arcs:
        n_arcs = 2 * rg.n_segments
        tail = np.empty(n_arcs, dtype=np.int64)
        head = np.empty(n_arcs, dtype=np.int64)
        tail[0::2], head[0::2] = rg.seg_a, rg.seg_b
        tail[1::2], head[1::2] = rg.seg_b, rg.seg_a
        loop = rg.seg_a == rg.seg_b
        # The backward arc of a self-loop is its forward arc (as in RoutingGraph.from_arrays).
        cost = np.empty(n_arcs)
        cost[0::2] = rg.run_fwd + rg.fix_fwd
        cost[1::2] = np.where(loop, np.inf, rg.run_back + rg.fix_back)
        return cls(tail, head, cost, np.isfinite(cost))


def _restricted_moves(rg: RoutingGraph, arcs: _Arcs, r: pd.DataFrame):
    """The applicable restriction rows as arcs: (from arc, to arc, kind) of those rows, and
    the mask of applicable rows. Both edges must meet at the via node and the profile must be
    able to arrive that way (a restriction on a street the profile cannot use changes
    nothing)."""
    fe = r["from_edge"].to_numpy(dtype=np.int64)
    te = r["to_edge"].to_numpy(dtype=np.int64)
    via = r["via_node"].to_numpy(dtype=np.int64)
    kind = r["kind"].astype(str).str.lower().to_numpy()
    n_edges = len(rg.edge_seg)
    ok = (fe >= 0) & (fe < n_edges) & (te >= 0) & (te < n_edges) & np.isin(kind, ["no", "only"])
    fe, te = np.clip(fe, 0, n_edges - 1), np.clip(te, 0, n_edges - 1)
    fa = np.where(ok, 2 * rg.edge_seg[fe] + ~rg.edge_fwd[fe], -1)
    ta = np.where(ok, 2 * rg.edge_seg[te] + ~rg.edge_fwd[te], -1)
    fa_c, ta_c = np.clip(fa, 0, None), np.clip(ta, 0, None)
    ok &= (arcs.head[fa_c] == via) & (arcs.tail[ta_c] == via) & arcs.usable[fa_c]
    return fa[ok], ta[ok], kind[ok], ok


def _allowed_moves(rg: RoutingGraph, arcs: _Arcs, copy_node, copy_of, ta, kind):
    """Every usable move out of each copy's node that its rows allow: (arc, copy)."""
    n_arcs = len(arcs.cost)
    rep, segs = rg.incident_segments(copy_node)
    from_a, from_b = rg.seg_a[segs] == copy_node[rep], rg.seg_b[segs] == copy_node[rep]
    cand_arc = np.concatenate([2 * segs[from_a], 2 * segs[from_b] + 1])
    cand_copy = np.concatenate([rep[from_a], rep[from_b]])
    keep = arcs.usable[cand_arc]
    cand_arc, cand_copy = cand_arc[keep], cand_copy[keep]
    key = cand_copy * np.int64(n_arcs) + cand_arc
    is_no = kind == "no"
    banned = np.isin(key, copy_of[is_no] * np.int64(n_arcs) + ta[is_no])
    has_only = np.zeros(len(copy_node), dtype=bool)
    has_only[copy_of[~is_no]] = True
    named = np.isin(key, copy_of[~is_no] * np.int64(n_arcs) + ta[~is_no])
    allowed = ~banned & (~has_only[cand_copy] | named)
    return cand_arc[allowed], cand_copy[allowed]
