"""The ``firegrid`` command: help, one-line errors with exit code 2, the demo end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pyogrio
import pytest

from firegrid.cli import COMMANDS, build_parser, main
from tests._demo import DEMO_CONFIG, OUTPUT_FILES, demo_cli_run, requires_demo


def _firegrid(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The installed console script when on PATH, else the module (same entry point)."""
    exe = shutil.which("firegrid")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "firegrid.cli", *args]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_every_command_is_registered():
    assert {"validate", "demo", "run", "access", "water", "risk", "siting", "map"} <= set(COMMANDS)


def test_help_explains_units_targets_and_outputs(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for words in ("180 s", "300 s", "150 m", "metres", "seconds", "map.html", "exit code 2"):
        assert words in text
    for name in ("access", "water", "risk", "siting"):
        sub = build_parser()._subparsers._group_actions[0].choices[name].format_help()
        assert "--out" in sub


def test_access_help_names_its_columns(capsys):
    with pytest.raises(SystemExit):
        main(["access", "--help"])
    text = capsys.readouterr().out
    assert "t_micro_s" in text and "turnout" in text and "180 s" in text


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "no/such/config.toml"], "config file not found"),
        (["water", "no/such/config.toml"], "config file not found"),
        (["map", "no/such/config.toml"], "config file not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, words, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_bad_config_content_in_a_subprocess(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[district]\nname = "x"\n[colours]\nred = 1\n', encoding="utf-8")
    result = _firegrid("run", str(bad), "--quiet")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown section" in lines[0] and "colours" in lines[0]
    assert "Traceback" not in result.stderr


def test_broken_layer_file_names_the_file(tmp_path, tiny_district, capsys):
    (tiny_district.parent / "hydrants.csv").write_text("编号,状态\nH1,完好\n", encoding="utf-8")
    code = main(["water", str(tiny_district), "--quiet", "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hydrants.csv" in err[0] and "经度" in err[0]
    assert not (tmp_path / "o").exists()


def test_output_folder_holding_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


@requires_demo()
@pytest.mark.slow
def test_demo_writes_every_output_and_prints_headlines():
    folder, code, out, err = demo_cli_run()
    assert code == 0, err
    assert "Traceback" not in err
    for name in OUTPUT_FILES:
        assert (folder / name).is_file(), name
        assert (folder / name).stat().st_size > 0
    assert str(folder) in out
    assert "risk grades" in out and "water-deficient buildings" in out
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["outputs"] == list(OUTPUT_FILES)
    assert {"load", "network", "water", "risk", "siting"} <= set(summary["steps"])
    layers = {n for n, _ in pyogrio.list_layers(folder / "results.gpkg")}
    assert {"buildings", "grids", "stations", "hydrants", "hazards", "roads"} <= layers
    table = pd.read_csv(folder / "grid_summary.csv", encoding="utf-8-sig")
    assert len(table) == sum(summary["figures"]["district"]["grids_by_level"].values())
    assert (folder / "grid_summary.csv").read_bytes()[:3] == b"\xef\xbb\xbf"


@requires_demo()
def test_validate_on_the_demo(capsys):
    assert main(["validate", str(DEMO_CONFIG)]) == 0
    assert "OK:" in capsys.readouterr().out


def test_map_command_writes_one_self_contained_file(tiny_district, tmp_path, capsys):
    folder = tiny_district.parent / "firegrid-output"  # the default output folder
    assert main(["map", str(tiny_district), "--language", "en", "--basemap", "none", "-q"]) == 0
    html = (folder / "map.html").read_text(encoding="utf-8")
    assert "Building risk grade" in html and "<script src=" not in html
    assert "L.tileLayer" not in html  # --basemap none
    assert f"map written to {folder / 'map.html'}" in capsys.readouterr().out
    # the folder stays FireGrid's own: a later run may replace it
    assert main(["run", str(tiny_district), "-q"]) == 0
    assert (folder / "summary.md").exists()


def test_config_typo_in_a_subprocess_names_file_key_and_suggestion(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[network]\nsorce = "roads.osm"\n', encoding="utf-8")
    result = _firegrid("validate", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"firegrid: error: {bad}: [network] has unknown key 'sorce' (did you mean 'source'?); "
        "known keys are place, source"
    ]


def test_ledger_row_with_an_extra_field_is_one_line(tiny_district, tmp_path, capsys):
    path = tiny_district.parent / "hydrants.csv"
    lines = path.read_text(encoding="gbk").splitlines()
    lines[2] += ",多余"
    path.write_text("\n".join(lines) + "\n", encoding="gbk")
    code = main(["access", str(tiny_district), "-q", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(
        f"firegrid: error: {path}: row 3: the row has 6 fields but the header has 5"
    )


def test_messages_and_warnings_print_as_single_prefixed_lines(monkeypatch, capsys):
    import warnings

    import firegrid.config
    from firegrid.spatial.errors import ConfigError

    def load(path):
        warnings.warn("a library\nwarning", UserWarning, stacklevel=1)
        raise ConfigError("a message a library\nspread over lines")

    monkeypatch.setattr(firegrid.config, "load_config", load)
    assert main(["validate", "any.toml"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "firegrid: warning: a library warning",
        "firegrid: error: a message a library spread over lines",
    ]


def test_map_out_never_overwrites_a_file_firegrid_did_not_write(tiny_district, capsys):
    ledger = tiny_district.parent / "台账.html"
    ledger.write_text("the user's ledger", encoding="utf-8")
    args = ["map", str(tiny_district), "--out", str(ledger), "--basemap", "none", "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FireGrid did not write it" in err and "--force" in err
    assert ledger.read_text(encoding="utf-8") == "the user's ledger"
    assert main([*args, "--force"]) == 0  # said explicitly: overwritten
    assert "Leaflet" in ledger.read_text(encoding="utf-8")
    assert main(args) == 0  # FireGrid's own map now: rewritten without --force


def test_run_force_keeps_the_files_firegrid_did_not_write(tiny_district, capsys):
    out = tiny_district.parent / "out"
    out.mkdir()
    (out / "ledger.csv").write_text("mine", encoding="utf-8")
    assert main(["run", str(tiny_district), "--out", str(out), "-q"]) == 2
    assert "ledger.csv: FireGrid did not write" in capsys.readouterr().err
    assert not (out / "summary.md").exists()
    assert main(["run", str(tiny_district), "--out", str(out), "-q", "--force"]) == 0
    assert "kept (not FireGrid's, --force): ledger.csv" in capsys.readouterr().out
    assert (out / "ledger.csv").read_text(encoding="utf-8") == "mine"
    assert (out / "summary.md").exists() and (out / ".firegrid-manifest.json").exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


@requires_demo()
def test_the_command_ends_at_once_after_writing_with_everything_flushed(tmp_path):
    """The console command ends its process right after a run's outputs are written
    (firegrid.cli.entry): exit status, every printed line, the log file and the outputs are
    all there, as with a normal exit."""
    out, log = tmp_path / "out", tmp_path / "run.log"
    res = _firegrid("--log-file", str(log), "access", str(DEMO_CONFIG), "--out", str(out))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("FireGrid: ") and "results.gpkg" in res.stdout
    assert any(line.startswith("- 3-minute micro-station coverage: ") for line in lines)
    assert res.stdout.endswith("\n")
    assert "firegrid access: end, exit 0" in log.read_text(encoding="utf-8")
    assert len(pyogrio.read_dataframe(out / "results.gpkg", layer="buildings")) == 2560
