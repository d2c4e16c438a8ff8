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
def test_rerunning_a_step_replaces_its_figures_columns_and_headline(demo_run):
    run = demo_run
    headline = list(run.headline)
    covered = run.figures["access"]["buildings_covered_3min"]
    n_columns = len(run.buildings.columns)
    config = run.config
    # A longer micro-station target: the access step again, over the same context.
    access = config.params["access"]
    config.params["access"] = dataclasses.replace(access, target_micro_s=240.0)
    try:
        run_step(run, "access")
    finally:
        config.params["access"] = access
    assert len(run.headline) == len(headline)  # replaced, not appended
    assert run.figures["access"]["target_micro_s"] == 240.0
    assert run.figures["access"]["buildings_covered_3min"] > covered
    assert len(run.buildings.columns) == n_columns  # the step's columns replaced, not doubled
    assert run.headline[0] != headline[0] and run.headline[1:] == headline[1:]
    assert run.buildings["covered_3min"].sum() == run.figures["access"]["buildings_covered_3min"]
    run_step(run, "access")
    assert run.headline == headline
    assert run.figures["access"]["buildings_covered_3min"] == covered


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
