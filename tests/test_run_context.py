"""One run context: steps return their own results; running a step again replaces them."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from firegrid.pipeline import run_pipeline, run_step
from firegrid.spatial import runtime
from tests._demo import requires_demo


@requires_demo()
@pytest.mark.slow
def test_rerunning_a_step_replaces_its_results_and_drops_the_steps_after_it(demo_run):
    run = demo_run
    headline = list(run.headline)
    figures = run.figures
    columns = list(run.buildings.columns)
    covered = figures["access"]["buildings_covered_3min"]
    config = run.config
    # A longer micro-station target: the access step again, over the same context.
    access = config.params["access"]
    config.params["access"] = dataclasses.replace(access, target_micro_s=240.0)
    try:
        run_step(run, "access")
        assert run.done == ["load", "network", "access"]  # water, risk, siting read old times
        assert run.figures["access"]["target_micro_s"] == 240.0
        assert run.figures["access"]["buildings_covered_3min"] > covered
        assert run.headline[0].startswith("4-minute micro-station coverage")
        assert len(run.headline) == 2  # replaced, not appended
        b = run.buildings
        assert b["covered_3min"].sum() == run.figures["access"]["buildings_covered_3min"]
        assert "risk_index" not in b and b.columns.is_unique
    finally:
        config.params["access"] = access
    for step in ("access", "water", "risk", "siting"):
        run_step(run, step)
    assert run.headline == headline
    assert run.figures == figures
    assert list(run.buildings.columns) == columns


@pytest.fixture(scope="module")
def demo_run():
    from firegrid.pipeline import demo_config_path

    return run_pipeline(demo_config_path(), progress=False)


def test_notes_of_two_threads_stay_apart():
    seen: dict[str, list[str]] = {}
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        with runtime.collecting_notes() as notes:
            barrier.wait()
            runtime.note(f"from {name}")
            barrier.wait()
        seen[name] = notes

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": ["from a"], "b": ["from b"]}


def test_a_note_outside_a_run_is_a_warning():
    with pytest.warns(UserWarning, match="far from every street"):
        runtime.note("hydrant H1 is far from every street")


def test_threads_setting_is_per_context():
    with runtime.using_threads(3):
        assert runtime.threads() == 3
        with runtime.using_threads(1):
            assert runtime.threads() == 1
        assert runtime.threads() == 3
    assert runtime.threads() >= 1
    with pytest.raises(ValueError):
        with runtime.using_threads(0):
            pass


def test_the_command_line_takes_a_thread_count(capsys):
    from firegrid.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["run", "district.toml", "--threads", "0"])
    assert stop.value.code == 2
    assert "--threads: must be 1 or more, not 0" in capsys.readouterr().err


@requires_demo()
def test_a_run_uses_the_thread_count_it_is_given(monkeypatch):
    import firegrid.pipeline as pipeline
    from firegrid.context import StepResult

    seen = []

    def load(ctx):
        seen.append(runtime.threads())
        runtime.note("read nothing")
        return StepResult()

    monkeypatch.setitem(pipeline.STEP_FUNCTIONS, "load", load)
    run = run_pipeline(pipeline.demo_config_path(), steps=["load"], threads=1, progress=False)
    assert seen == [1] and runtime.threads() >= 1
    assert run.notes == ["load: read nothing"]  # the step's note, not a process-wide warning


def test_a_steps_columns_are_held_once_and_stay_apart_when_changed():
    """The columns a step adds to a layer are its result's arrays, not copies (a city's
    columns would be held twice); changing either frame afterwards leaves the other as it was
    (pandas' copy-on-write)."""
    import numpy as np
    import pandas as pd

    from firegrid.context import StepResult

    before = pd.DataFrame({"building_id": ["a", "b", "c"]})
    after = before.assign(t_s=[1.0, 2.0, np.nan], ok=[True, False, True], n=[1, 2, 3])
    out = StepResult()
    out.add_columns("buildings", before, after)
    held = out.columns["buildings"]
    assert list(held.columns) == ["t_s", "ok", "n"]
    for c in held:
        assert np.shares_memory(held[c].to_numpy(), after[c].to_numpy())
    after.loc[0, "t_s"] = 9.0
    held.loc[1, "n"] = 7
    assert held["t_s"].tolist()[:2] == [1.0, 2.0]
    assert after["n"].tolist() == [1, 2, 3]


def test_the_collector_is_paused_inside_and_back_after_overlapping_runs():
    """Runs in two threads overlapping: the collector stays paused until the last ends, and
    is back as it was (on, or off when the caller had turned it off)."""
    import gc

    seen = []
    first_in, second_done = threading.Event(), threading.Event()

    def first():
        with runtime.collector_paused():
            first_in.set()
            second_done.wait(10)
            seen.append(("first, after the second ended", gc.isenabled()))

    for was in (True, False):
        (gc.enable if was else gc.disable)()
        try:
            seen.clear()
            first_in.clear()
            second_done.clear()
            t = threading.Thread(target=first)
            t.start()
            first_in.wait(10)
            with runtime.collector_paused():
                seen.append(("second, inside", gc.isenabled()))
            second_done.set()
            t.join(10)
            assert seen == [("second, inside", False), ("first, after the second ended", False)]
            assert gc.isenabled() is was
        finally:
            gc.enable()


def test_a_step_runs_with_the_collector_paused(monkeypatch):
    import gc

    from firegrid import pipeline
    from firegrid.context import StepResult

    state = []
    monkeypatch.setitem(pipeline.STEP_FUNCTIONS, "load",
                        lambda ctx: state.append(gc.isenabled()) or StepResult())  # fmt: skip
    run = pipeline.RunContext(config=None)
    pipeline.run_step(run, "load")
    assert state == [False] and gc.isenabled()
