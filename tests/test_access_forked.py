"""The access step with its isochrones drawn in a forked process (a city's run) gives what
it gives in one process: the same isochrones, building columns, areas, missing buildings
and notes, in the same order."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from firegrid.spatial import runtime
from tests._demo import requires_demo

pytestmark = requires_demo()


def _access(monkeypatch, *, fork: bool):
    from firegrid.pipeline import demo_config_path, run_pipeline

    forks = []
    start = runtime.Forked._start

    def counted(self):
        forks.append(1)
        start(self)

    with monkeypatch.context() as mp:
        mp.setattr(runtime, "FORK_MIN_ROWS", 0 if fork else 10**12)
        mp.setattr(runtime, "can_fork", lambda: hasattr(os, "fork"))
        mp.setattr(runtime.Forked, "_start", counted)
        run = run_pipeline(demo_config_path(), until="access", progress=False)
    return run, len(forks)


@pytest.fixture(scope="module")
def both():
    with pytest.MonkeyPatch.context() as mp:
        return _access(mp, fork=False), _access(mp, fork=True)


def test_forked_access_step_gives_what_one_process_gives(both):
    (one, forks_one), (two, forks_two) = both
    assert forks_one == 0 and forks_two >= 1
    for name in ("buildings", "isochrones", "areas", "access_missing"):
        pd.testing.assert_frame_equal(two.layers[name], one.layers[name], check_exact=True)
    assert two.notes == one.notes
    assert two.figures == one.figures


def test_isochrones_drawn_kind_by_kind_are_those_of_one_call(both):
    """The step draws each station kind's isochrones apart (the last kind forked); one call
    of station_isochrones for every station gives the same rows, per station or united."""
    from firegrid.spatial.access.isochrones import station_isochrones

    (one, _), (two, _) = both
    access = one.steps["access"].results["access"]
    stations = one.layers["stations"]
    assert set(stations["kind"]) == {"fire_station", "micro_station"}
    whole = station_isochrones(
        stations, one.network, params=access.params, buildings=access.buildings
    )
    pd.testing.assert_frame_equal(two.layers["isochrones"], whole, check_exact=True)
    pd.testing.assert_frame_equal(one.layers["isochrones"], whole, check_exact=True)


def test_united_isochrones_drawn_kind_by_kind_are_those_of_one_call(both, monkeypatch):
    from dataclasses import replace

    from firegrid.spatial.access.analysis import analyse_access
    from firegrid.spatial.access.isochrones import station_isochrones

    (one, _), _ = both
    access = one.steps["access"].results["access"]
    params = replace(access.params, isochrones="union")
    buildings, stations = one.layers["buildings"], one.layers["stations"]
    monkeypatch.setattr(runtime, "FORK_MIN_ROWS", 0)
    monkeypatch.setattr(runtime, "can_fork", lambda: hasattr(os, "fork"))
    result = analyse_access(one.network, buildings, stations, params=params, areas=False)
    whole = station_isochrones(stations, one.network, params=params, buildings=result.buildings)
    assert len(whole) == 2 * len(params.isochrone_minutes)  # a row per kind and threshold
    pd.testing.assert_frame_equal(result.isochrones, whole, check_exact=True)
