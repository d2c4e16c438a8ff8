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
