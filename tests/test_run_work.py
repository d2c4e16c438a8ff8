"""One demo run compiles each distinct graph once and snaps each point set once per graph.

The real build functions are wrapped with counters (``RoutingGraph.from_table``,
``RoutingGraph.from_arrays`` and the uncached snap, ``routing._snap_xy``) and the whole demo
pipeline runs once; every call records what it built, so a second build of the same thing
fails the test whichever step made it.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest

import firegrid.spatial.io.grids as grids_module
import firegrid.spatial.network.routing as routing
from firegrid.spatial.network.routing import RoutingGraph
from tests._demo import requires_demo


def _digest(*arrays) -> str:
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.asarray(a)
        if a.dtype == object:
            h.update(repr(a.tolist()).encode())
        else:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class _Recorder:
    """Calls of the real builders, each with a description of what it built."""

    def __init__(self):
        self.compiles: list[tuple] = []
        self.arrays: list[tuple] = []
        self.snaps: list[tuple] = []
        self.assignments: list[tuple] = []
        self.graphs: list[RoutingGraph] = []  # kept alive so graph ids are never reused
        self._depth = 0

    def install(self, monkeypatch):
        from_table = RoutingGraph.from_table.__func__
        from_arrays = RoutingGraph.from_arrays.__func__
        snap_xy = routing._snap_xy
        rec = self

        def counting_from_table(cls, table, profile=None, *, weight="time", directed=None):
            if directed is None:
                directed = bool(profile.respect_oneway) if profile is not None else False
            name = profile.name if profile is not None else None
            rec.compiles.append((id(table), name, hash(profile), weight, directed))
            rec._depth += 1
            try:
                return from_table(cls, table, profile, weight=weight, directed=directed)
            finally:
                rec._depth -= 1

        def counting_from_arrays(cls, edges, run, **kw):
            if rec._depth == 0:  # not the inside of from_table
                e = edges
                what = _digest(e.node_x, e.node_y, e.u, e.v, e.length_m, run, kw.get("node_delay"))
                rec.arrays.append((what, kw.get("directed", True), kw.get("weight", "length")))
            return from_arrays(cls, edges, run, **kw)

        def counting_snap(rg, px, py, max_snap_m):
            rec.graphs.append(rg)
            name = rg.profile.name if rg.profile is not None else None
            rec.snaps.append((id(rg), name, rg.weight, len(px), _digest(px, py), max_snap_m))
            return snap_xy(rg, px, py, max_snap_m)

        assign = grids_module.assign_grids

        def counting_assign(features, grids, *args, **kwargs):
            rec.assignments.append((kwargs.get("what", "buildings"), len(features)))
            return assign(features, grids, *args, **kwargs)

        # Every module that imported assign_grids by name, found rather than listed, so a new
        # caller is counted too.
        for module in list(sys.modules.values()):
            if getattr(module, "assign_grids", None) is assign:
                monkeypatch.setattr(module, "assign_grids", counting_assign)
        monkeypatch.setattr(RoutingGraph, "from_table", classmethod(counting_from_table))
        monkeypatch.setattr(RoutingGraph, "from_arrays", classmethod(counting_from_arrays))
        monkeypatch.setattr(routing, "_snap_xy", counting_snap)


@pytest.fixture(scope="module")
def demo_work():
    from firegrid.pipeline import demo_config_path, run_pipeline

    rec = _Recorder()
    with pytest.MonkeyPatch.context() as mp:
        rec.install(mp)
        run = run_pipeline(demo_config_path())
    return run, rec


def _repeated(calls: list[tuple]) -> dict:
    return {k: n for k, n in Counter(calls).items() if n > 1}


@requires_demo()
def test_demo_compiles_each_profile_once(demo_work):
    run, rec = demo_work
    compiled = {(name, weight) for _, name, _, weight, _ in rec.compiles}
    # The run needs all three responders and the hose graph: the counters saw them.
    assert {("engine", "time"), ("ebike", "time"), ("foot", "time")} <= compiled
    assert _repeated(rec.compiles) == {}, "a profile was compiled more than once"
    assert len({t for t, *_ in rec.compiles}) == 1, "the run read its network more than once"
    assert _repeated(rec.arrays) == {}, "the same graph was built from arrays more than once"
    # The table counts its compilations itself (GraphTable.memo).
    assert run.network.work["compile"] == len(rec.compiles)


@requires_demo()
def test_demo_snaps_each_layer_once_per_graph(demo_work):
    run, rec = demo_work
    assert rec.snaps, "the run snapped nothing: the counter is not on the real snap"
    per_graph = [(g, n, digest, limit) for g, _, _, n, digest, limit in rec.snaps]
    repeated = {
        (name, weight, n): k
        for (g, name, weight, n, digest, limit), k in Counter(rec.snaps).items()
        if k > 1
    }
    assert _repeated(per_graph) == {}, f"point sets snapped again onto one graph: {repeated}"
    # Buildings (2,560 in the demo) are snapped onto each responder graph at most once.
    n_buildings = len(run.buildings)
    building_snaps = Counter(
        (name, weight) for _, name, weight, n, _, _ in rec.snaps if n == n_buildings
    )
    assert building_snaps and max(building_snaps.values()) == 1, building_snaps
    # Snaps onto graphs compiled from the run's network are counted on the network too.
    table_snaps = sum(1 for g in rec.graphs if g.work is run.network.work)
    assert table_snaps and run.network.work["snap"] == table_snaps


@requires_demo()
def test_demo_assigns_each_layer_to_grid_cells_once(demo_work):
    run, rec = demo_work
    layers = Counter(what for what, _ in rec.assignments)
    assert layers["buildings"] == 1, rec.assignments  # validation, access, water, risk share it
    assert max(layers.values()) == 1, rec.assignments
    assert run.cells is run.district.cells and len(run.cells) == len(run.buildings)


@requires_demo()
def test_a_finished_run_keeps_no_snaps_and_a_later_step_snaps_again_the_same():
    """Snaps are kept while a run's steps need them and dropped when they are done (a
    city's are half a GiB while its outputs are written); a step run later snaps again and
    gives the same results."""
    from firegrid.pipeline import demo_config_path, run_pipeline, run_step

    run = run_pipeline(demo_config_path(), until="access", progress=False)
    before = run.buildings.copy()
    snapped = run.network.work["snap"]
    run_step(run, "access")
    assert run.network.work["snap"] > snapped, "a dropped snap was not made again"
    pd.testing.assert_frame_equal(run.buildings, before)
