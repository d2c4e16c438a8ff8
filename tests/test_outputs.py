"""Output folder safety: manifest, foreign files, atomic swap, cleanup after kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import firegrid.outputs as outputs
from firegrid.outputs import (
    MANIFEST,
    check_output_file,
    clean_leftovers,
    exchange,
    foreign_entries,
    prepare_output_folder,
    read_manifest,
    write_file,
    write_folder_atomically,
)
from firegrid.spatial.errors import ConfigError
from tests._demo import DEMO_CONFIG, demo_cli_run, requires_demo


def _writer(**files: str):
    """A write step that puts ``files`` (name → text) into the temporary folder."""
    calls = []

    def write(tmp: Path) -> None:
        calls.append(tmp)
        for name, text in files.items():
            (tmp / name.replace("_", ".")).write_text(text, encoding="utf-8")

    write.calls = calls
    return write


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_writes_a_manifest_of_its_files(tmp_path):
    folder = write_folder_atomically(tmp_path / "out", _writer(map_html="m", summary_md="s"))
    listed = read_manifest(folder)
    assert set(listed) == {"map.html", "summary.md"}
    assert listed["map.html"]["size"] == 1 and len(listed["map.html"]["sha256"]) == 64
    assert json.loads((folder / MANIFEST).read_text())["written_by"] == "firegrid"
    assert foreign_entries(folder) == []
    assert _hidden(tmp_path) == []  # no temporary left beside it


def test_a_rerun_replaces_only_the_previous_outputs(tmp_path):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(map_html="old", summary_md="old"))
    write_folder_atomically(folder, _writer(summary_md="new"))
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "summary.md"]
    assert (folder / "summary.md").read_text() == "new"
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize("foreign", ["ledger.xlsx", "sub/notes.txt"])
def test_a_foreign_file_stops_the_run_before_any_work(tmp_path, foreign):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(map_html="old"))
    (folder / foreign).parent.mkdir(exist_ok=True)
    (folder / foreign).write_text("the user's")
    write = _writer(map_html="new")
    with pytest.raises(ConfigError, match=f"{foreign.split('/')[0]}: FireGrid did not write"):
        write_folder_atomically(folder, write)
    assert write.calls == []  # refused before the work started
    assert (folder / foreign).read_text() == "the user's"
    assert (folder / "map.html").read_text() == "old"


def test_an_output_edited_since_counts_as_foreign(tmp_path):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(grid_summary_xlsx="table"))
    (folder / "grid_summary.xlsx").write_text("table with a leader's notes")
    assert foreign_entries(folder) == ["grid_summary.xlsx"]
    with pytest.raises(ConfigError, match="grid_summary.xlsx: FireGrid did not write"):
        prepare_output_folder(folder)


def test_a_foreign_file_arriving_during_the_run_stops_the_swap(tmp_path):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(map_html="old"))

    def write(tmp: Path) -> None:
        (tmp / "map.html").write_text("new")
        (folder / "ledger.csv").write_text("saved here meanwhile")

    with pytest.raises(ConfigError, match="ledger.csv: FireGrid did not write"):
        write_folder_atomically(folder, write)
    assert (folder / "map.html").read_text() == "old"
    assert (folder / "ledger.csv").read_text() == "saved here meanwhile"
    assert _hidden(tmp_path) == []


def test_force_carries_foreign_files_into_the_new_outputs(tmp_path):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(map_html="old"))
    (folder / "ledger.csv").write_text("the user's")
    (folder / "photos").mkdir()
    (folder / "photos" / "a.jpg").write_bytes(b"\xff\xd8")
    inode = (folder / "ledger.csv").stat().st_ino
    write_folder_atomically(folder, _writer(map_html="new"), force=True)
    assert (folder / "map.html").read_text() == "new"
    assert (folder / "ledger.csv").read_text() == "the user's"
    assert (folder / "ledger.csv").stat().st_ino == inode  # the same file, hard-linked
    assert (folder / "photos" / "a.jpg").read_bytes() == b"\xff\xd8"
    assert set(read_manifest(folder)) == {"map.html"}  # still not FireGrid's
    assert foreign_entries(folder) == ["ledger.csv", "photos"]
    assert _hidden(tmp_path) == []


def test_force_never_overwrites_a_foreign_file_named_like_an_output(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "summary.md").write_text("my own summary")
    with pytest.raises(ConfigError, match="summary.md: FireGrid did not write"):
        prepare_output_folder(folder, force=True, reserved=["summary.md"])
    with pytest.raises(ConfigError, match="summary.md: FireGrid did not write"):
        write_folder_atomically(folder, _writer(summary_md="ours"), force=True)
    assert (folder / "summary.md").read_text() == "my own summary"


def test_a_folder_of_an_earlier_version_is_replaced_by_its_file_names(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / ".firegrid-output").write_text("{}")
    (folder / "map.html").write_text("old")
    assert foreign_entries(folder) == []
    (folder / "input.csv").write_text("ledger")
    with pytest.raises(ConfigError, match="input.csv"):
        prepare_output_folder(folder)
    (folder / "input.csv").unlink()
    write_folder_atomically(folder, _writer(summary_md="new"))
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "summary.md"]


def test_exchange_swaps_two_folders_in_one_step(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) not available here")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def test_the_swap_uses_the_exchange(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(map_html="old"))
    used = []
    real = outputs.exchange
    monkeypatch.setattr(outputs, "exchange", lambda a, b: used.append(b) or real(a, b))
    monkeypatch.setattr(outputs.os, "rename", None)  # no rename may be needed
    write_folder_atomically(folder, _writer(map_html="new"))
    assert used == [folder]
    assert (folder / "map.html").read_text() == "new"


def test_the_two_rename_fallback_swaps_too(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(map_html="old"))
    monkeypatch.setattr(outputs, "exchange", lambda a, b: False)
    write_folder_atomically(folder, _writer(map_html="new"))
    assert (folder / "map.html").read_text() == "new"
    assert _hidden(tmp_path) == []


def test_an_output_edited_in_the_last_moment_is_kept_not_deleted(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(map_html="old", summary_md="old"))
    real = outputs._swap_in

    def edit_then_swap(tmp, target):
        # after the last check, before the swap: a leader saves notes into two outputs
        (target / "map.html").write_text("old + notes")
        (target / "summary.md").write_text("old + notes")
        return real(tmp, target)

    monkeypatch.setattr(outputs, "_swap_in", edit_then_swap)
    with pytest.warns(UserWarning, match="could not be put back"):
        write_folder_atomically(folder, _writer(summary_md="new"))
    assert (folder / "summary.md").read_text() == "new"
    assert (folder / "map.html").read_text() == "old + notes"  # moved back: name was free
    kept = [p for p in tmp_path.iterdir() if ".kept-" in p.name]
    assert len(kept) == 1 and (kept[0] / "summary.md").read_text() == "old + notes"


def test_cleanup_restores_a_folder_moved_aside_and_removes_stale_temporaries(tmp_path):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(map_html="old", summary_md="old"))
    (folder / "ledger.csv").write_text("the user's")
    pid = _dead_pid()
    # an interrupted two-rename swap: previous outputs aside, the new folder not yet in place
    aside = tmp_path / f".out.firegrid-{pid}-old-00aa"
    os.rename(folder, aside)
    new = tmp_path / f".out.firegrid-{pid}-new-00bb"
    new.mkdir()
    (new / "map.html").write_text("half")
    (new / "results.gpkg-journal").write_text("")
    (new / f".{MANIFEST}.firegrid-{pid}-file-00ff").write_text("{")  # manifest half-written
    os.link(aside / "ledger.csv", new / "ledger.csv")  # carried under --force
    live = tmp_path / f".out.firegrid-{os.getpid()}-new-00cc"  # a run in progress: untouched
    live.mkdir()
    cleaned = clean_leftovers(folder)
    assert {p.name for p in cleaned} == {aside.name, new.name}
    assert (folder / "map.html").read_text() == "old"
    assert (folder / "ledger.csv").read_text() == "the user's"
    assert foreign_entries(folder) == ["ledger.csv"]
    assert _hidden(folder) == [MANIFEST]  # nothing half-written moved into the folder
    assert _hidden(tmp_path) == [live.name]


def test_cleanup_puts_an_unknown_file_of_a_stale_temporary_back(tmp_path):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(map_html="x"))
    stale = tmp_path / f".out.firegrid-{_dead_pid()}-new-00dd"
    stale.mkdir()
    (stale / "only-copy.txt").write_text("a file whose original went meanwhile")
    clean_leftovers(folder)
    assert (folder / "only-copy.txt").read_text() == "a file whose original went meanwhile"
    assert _hidden(tmp_path) == []


def test_write_file_refuses_a_file_it_did_not_write(tmp_path):
    path = tmp_path / "ledger.html"
    path.write_text("the user's")
    with pytest.raises(ConfigError, match="ledger.html: exists and FireGrid did not write it"):
        write_file(path, "<html>")
    assert path.read_text() == "the user's"
    write_file(path, "<html>1", force=True)
    assert path.read_text() == "<html>1"
    write_file(path, "<html>2")  # now FireGrid's: rewriting it needs no --force
    assert path.read_text() == "<html>2"
    path.write_text("edited by hand")
    with pytest.raises(ConfigError, match="did not write"):
        check_output_file(path)
    assert _hidden(tmp_path) == [MANIFEST]


def test_write_file_into_an_output_folder_keeps_the_folder_replaceable(tmp_path):
    folder = tmp_path / "out"
    write_folder_atomically(folder, _writer(map_html="run", summary_md="run"))
    write_file(folder / "map.html", "map command")
    assert foreign_entries(folder) == []
    stale = folder / f".map.html.firegrid-{_dead_pid()}-file-00ee"
    stale.write_text("half a map")
    assert foreign_entries(folder) == []  # FireGrid's own temporary …
    check_output_file(folder / "map.html")
    assert not stale.exists()  # … cleaned at the next start
    write_folder_atomically(folder, _writer(summary_md="rerun"))
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "summary.md"]


# --------------------------------------------------------------------------------------------
# kill -9 of a real `firegrid` process on the demo


# The child patches one step of firegrid.outputs so that the process SIGKILLs itself there,
# then runs the command line; "timer" is killed from outside instead.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import firegrid.outputs as o
    import firegrid.reports as r
    from firegrid.cli import main

    point, argv = sys.argv[1], sys.argv[2:]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def after(module, name, n=1):
        real, calls = getattr(module, name), []
        def wrapped(*a, **k):
            out = real(*a, **k)
            calls.append(1)
            if len(calls) >= n:
                die()
            return out
        setattr(module, name, wrapped)

    def before(module, name):
        def wrapped(*a, **k):
            die()
        setattr(module, name, wrapped)

    if point == "writing":          # half the outputs in the temporary folder
        after(r, "write_grid_summary")
    elif point == "before-swap":    # complete new folder, not yet swapped
        before(o, "_swap_in")
    elif point == "after-exchange": # swapped, previous outputs not yet deleted
        before(o, "_retire")
    elif point == "mid-retire":     # previous outputs half deleted
        after(o, "_remove", n=2)
    elif point == "between-renames":  # two-rename fallback: output path missing
        o.exchange = lambda a, b: False
        after(o.os, "rename", n=1)
    sys.exit(main(argv))
    """
)


def _manifest_state(folder: Path) -> dict:
    """The manifest, after checking that every file it lists is there, complete."""
    listed = read_manifest(folder)
    assert listed, f"{folder} holds no complete outputs"
    for name, entry in listed.items():
        assert outputs.file_digest(folder / name) == entry, name
    return listed


@pytest.fixture(scope="module")
def previous_outputs():
    """Complete outputs of the demo (the previous run) and their manifest."""
    folder, code, _, err = demo_cli_run()
    assert code == 0, err
    return folder, _manifest_state(folder)


def _env() -> dict:
    return {**os.environ, "PYTHONWARNINGS": "ignore"}


def _kill_run(point: str, folder: Path) -> int:
    """``firegrid access`` on the demo, killed by itself at ``point``; its exit code."""
    cmd = [sys.executable, "-c", CHILD, point, "access", str(DEMO_CONFIG)]
    cmd += ["--out", str(folder), "--quiet", "--force"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, timeout=600)
    return proc.returncode  # reaped: its pid is no longer alive


def _check_after_kill(folder: Path) -> dict:
    """The output path holds complete outputs, the user's file, and no temporary; the next
    start cleans what the kill left beside it. Returns the manifest found."""
    now = _manifest_state(folder)
    assert (folder / "ledger.csv").read_text() == "the user's"
    assert not [p for p in folder.iterdir() if p.name.startswith(".") and p.name != MANIFEST]
    prepare_output_folder(folder, force=True)
    assert _hidden(folder.parent) == []
    assert _manifest_state(folder) == now
    assert (folder / "ledger.csv").read_text() == "the user's"
    return now


@pytest.fixture
def previous_copy(tmp_path, previous_outputs):
    source, before = previous_outputs
    folder = tmp_path / "out"
    shutil.copytree(source, folder)
    (folder / "ledger.csv").write_text("the user's")  # carried along by --force
    return folder, before


@requires_demo()
@pytest.mark.slow
@pytest.mark.parametrize(
    "point, new",
    [
        ("writing", False),  # half the outputs in the temporary folder
        ("before-swap", False),  # the complete new folder beside, not yet swapped
        ("after-exchange", True),  # swapped, the previous outputs not yet deleted
        ("mid-retire", True),  # the previous outputs half deleted
        ("between-renames", False),  # two-rename fallback: the output path missing
    ],
)
def test_kill_9_inside_the_swap_leaves_previous_or_new_outputs(previous_copy, point, new):
    folder, before = previous_copy
    assert _kill_run(point, folder) == -signal.SIGKILL
    if point == "between-renames":
        assert not folder.exists()  # the one moment the fallback leaves no folder …
        clean_leftovers(folder)  # … repaired at the next start
    now = _check_after_kill(folder)
    assert (now != before) is new, point
    if new:  # the access-only outputs, complete
        assert now["map.html"] != before["map.html"]


@requires_demo()
@pytest.mark.slow
@pytest.mark.parametrize("delay", [3.0, 10.0, 18.0, 26.0])
def test_kill_9_of_firegrid_run_at_any_moment(previous_copy, delay):
    folder, before = previous_copy
    exe = shutil.which("firegrid")
    cmd = [exe] if exe else [sys.executable, "-m", "firegrid.cli"]
    cmd += ["run", str(DEMO_CONFIG), "--out", str(folder), "-q", "--force"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=600)
    now = _check_after_kill(folder)
    if now != before:  # the run got as far as the swap: its outputs, complete
        assert json.loads((folder / "summary.json").read_text())["steps"][-1] == "siting"


@requires_demo()
@pytest.mark.slow
def test_the_next_run_after_a_kill_cleans_up_and_succeeds(tmp_path, previous_outputs):
    source, _ = previous_outputs
    folder = tmp_path / "out"
    shutil.copytree(source, folder)
    assert _kill_run("after-exchange", folder) == -signal.SIGKILL
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # a leftover
    cmd = [sys.executable, "-m", "firegrid.cli", "access", str(DEMO_CONFIG)]
    done = subprocess.run(
        [*cmd, "--out", str(folder), "-q"], env=_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert _hidden(tmp_path) == []
    assert foreign_entries(folder) == []
    _manifest_state(folder)


def test_file_digest_reads_a_file_again_once_it_changed(tmp_path):
    import time

    from firegrid.outputs import file_digest

    path = tmp_path / "results.gpkg"
    path.write_bytes(b"first content")
    first = file_digest(path)
    assert file_digest(path) == first
    time.sleep(0.05)  # a later change time, even where the clock ticks coarsely
    path.write_bytes(b"other content")  # the same size
    again = file_digest(path)
    assert again["size"] == first["size"] and again["sha256"] != first["sha256"]
    assert again["sha256"] == hashlib.sha256(b"other content").hexdigest()
