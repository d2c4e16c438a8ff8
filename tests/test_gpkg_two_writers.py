"""``results.gpkg`` written by two processes (the largest layer here, the others by a forked
process into a second file, copied in as SQLite stores them) holds exactly what one process
writes: every table, index, trigger, R-tree node and gpkg_* row, in the same layer order;
and the forked-run helper passes back values, exceptions, notes and warnings."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import warnings

import numpy as np
import pandas as pd
import pyogrio
import pytest

import firegrid.reports as reports
from firegrid.gpkg_copy import copy_layers, order_layers
from firegrid.reports import write_results_gpkg
from firegrid.spatial import runtime
from tests._demo import requires_demo
from tests._gpkg import gpkg_content

# --------------------------------------------------------------------------------------------
# runtime.forked


@pytest.fixture
def may_fork(monkeypatch):
    """Fork even if the test runner has a thread of its own alive."""
    monkeypatch.setattr(runtime, "can_fork", lambda: hasattr(os, "fork"))


def _child_work(n: int) -> int:
    runtime.note("a note from the child")
    warnings.warn("a warning from the child", UserWarning, stacklevel=1)
    return os.getpid() * 0 + n * 2


def test_forked_runs_in_another_process_and_passes_back_notes_and_warnings(may_fork):
    with runtime.collecting_notes() as notes, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with runtime.forked(os.getpid) as child:
            pid = child.result()
        with runtime.forked(lambda: _child_work(21)) as child:
            value = child.result()
    assert pid != os.getpid()
    assert value == 42
    assert notes == ["a note from the child"]
    assert [str(w.message) for w in caught] == ["a warning from the child"]


def test_forked_raises_the_childs_exception(may_fork):
    def fails():
        raise KeyError("no such layer")

    with pytest.raises(KeyError, match="no such layer"), runtime.forked(fails) as child:
        child.result()


def test_forked_runs_here_when_the_child_dies(may_fork):
    parent = os.getpid()

    def dies_in_child():
        if os.getpid() != parent:
            os._exit(9)
        return "ran here"

    with runtime.forked(dies_in_child) as child:
        assert child.result() == "ran here"


def test_forked_runs_here_on_one_thread():
    with runtime.using_threads(1):
        assert not runtime.can_fork()
        with runtime.forked(os.getpid) as child:
            assert child.result() == os.getpid()


def test_forked_stops_a_child_whose_result_is_not_taken(may_fork):
    with pytest.raises(RuntimeError), runtime.forked(lambda: __import__("time").sleep(60)) as c:
        pid = c._pid
        raise RuntimeError("the parent's own work failed")
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no such child any more


# --------------------------------------------------------------------------------------------
# two writers, one file


@pytest.fixture(scope="module")
def layers():
    from firegrid.pipeline import demo_config_path, run_pipeline

    run = run_pipeline(demo_config_path(), until="access", progress=False)
    out = dict(run.layers)
    out["gain_table"] = pd.DataFrame({"k": np.arange(5), "share": np.linspace(0, 1, 5)})
    return {k: v for k, v in out.items() if v is not None}


def _write(layers, path, monkeypatch, *, min_rows: int):
    with monkeypatch.context() as mp:
        mp.setattr(runtime, "FORK_MIN_ROWS", min_rows)
        mp.setattr(runtime, "can_fork", lambda: hasattr(os, "fork"))
        write_results_gpkg(layers, path)


@requires_demo()
def test_two_writers_write_what_one_writes(layers, tmp_path, monkeypatch):
    _write(layers, tmp_path / "one.gpkg", monkeypatch, min_rows=10**12)
    _write(layers, tmp_path / "two.gpkg", monkeypatch, min_rows=1)
    one, two = gpkg_content(tmp_path / "one.gpkg"), gpkg_content(tmp_path / "two.gpkg")
    assert two["schema"] == one["schema"]
    assert two["rows"].keys() == one["rows"].keys()
    for name in one["rows"]:
        assert two["rows"][name] == one["rows"][name], name
    assert "access_missing_view_rows" in one["rows"]  # the view went through both paths
    listed = pyogrio.list_layers(tmp_path / "one.gpkg").tolist()
    assert pyogrio.list_layers(tmp_path / "two.gpkg").tolist() == listed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.gpkg", "two.gpkg"]


@requires_demo()
def test_a_copy_refused_is_written_here_instead(layers, tmp_path, monkeypatch):
    def refuse(source, target, tables):
        raise ValueError("refused")

    _write(layers, tmp_path / "one.gpkg", monkeypatch, min_rows=10**12)
    monkeypatch.setattr(reports, "copy_layers", refuse)
    _write(layers, tmp_path / "two.gpkg", monkeypatch, min_rows=1)
    one, two = gpkg_content(tmp_path / "one.gpkg"), gpkg_content(tmp_path / "two.gpkg")
    assert two == one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.gpkg", "two.gpkg"]


@requires_demo()
def test_copy_refuses_another_srs_under_the_same_id_and_leaves_the_target(tmp_path, layers):
    stations = layers["stations"]
    pyogrio.write_dataframe(stations, tmp_path / "a.gpkg", layer="stations")
    pyogrio.write_dataframe(stations.to_crs(4326), tmp_path / "b.gpkg", layer="s84")
    with contextlib.closing(sqlite3.connect(tmp_path / "b.gpkg")) as con:
        srs = con.execute("SELECT srs_id FROM gpkg_contents WHERE table_name='s84'").fetchone()
    with contextlib.closing(sqlite3.connect(tmp_path / "a.gpkg")) as con, con:
        # another system under the id the source uses
        con.execute(
            "INSERT OR REPLACE INTO gpkg_spatial_ref_sys VALUES "
            "('other', ?, 'X', 1, 'LOCAL_CS[\"x\"]', NULL)",
            srs,
        )
    before = gpkg_content(tmp_path / "a.gpkg")
    with pytest.raises(ValueError, match="spatial reference system"):
        copy_layers(tmp_path / "b.gpkg", tmp_path / "a.gpkg", ["s84"])
    assert gpkg_content(tmp_path / "a.gpkg") == before
    with pytest.raises(ValueError, match="exists"):
        copy_layers(tmp_path / "a.gpkg", tmp_path / "a.gpkg", ["stations"])


@requires_demo()
def test_copied_layer_reads_back_and_takes_its_place_in_the_order(tmp_path, layers):
    a, b = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    pyogrio.write_dataframe(layers["stations"], a, layer="stations")
    pyogrio.write_dataframe(layers["grids"], b, layer="grids")
    copy_layers(b, a, ["grids"])
    order_layers(a, ["grids", "stations"])
    assert [n for n, _ in pyogrio.list_layers(a)] == ["grids", "stations"]
    back = pyogrio.read_dataframe(a, layer="grids")
    expected = pyogrio.read_dataframe(b, layer="grids")
    pd.testing.assert_frame_equal(back, expected)
    bbox = tuple(layers["grids"].total_bounds)
    assert len(pyogrio.read_dataframe(a, layer="grids", bbox=bbox)) == len(expected)
