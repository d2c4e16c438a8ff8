"""Packaging: the built wheel runs `firegrid demo` in a fresh venv; --version, -m, logging.

The venv is made with ``--system-site-packages`` and the wheel installed with ``--no-deps``:
the dependencies (GeoPandas, osmnx …, hundreds of MB) come from the environment running the
tests instead of being downloaded again, while FireGrid itself, its demo data and its assets
come from the wheel alone. The test checks that the venv imports FireGrid from the wheel, not
from this checkout (an editable install of the checkout is on the system site-packages).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import firegrid
from firegrid import logs
from firegrid.cli import main

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info", "firegrid-output*")
MAX_WHEEL_BYTES = 10 * 2**20  # the demo district is ~1.6 MB; no large data in the wheel


def _source_copy(target: Path) -> Path:
    """What the wheel is built from: pyproject's package folders (build/ stays out of ROOT)."""
    folders = set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())
    for name in ["pyproject.toml", "README.md", *sorted(folders)]:
        src, dst = ROOT / name, target / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=IGNORED)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = _source_copy(tmp / "source")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp), str(source)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (path,) = tmp.glob("firegrid-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(folder)], check=True
    )
    python = folder / "bin" / "python"
    installed = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    return folder


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_wheel_carries_the_demo_district_and_nothing_it_should_not(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    demo = ROOT / "data" / "demo"
    config = tomllib.loads((demo / "demo.toml").read_text(encoding="utf-8"))
    referenced = {config["network"]["source"]}
    referenced |= {layer["file"] for layer in config["layers"].values()}
    assert {f"firegrid/data/demo/{n}" for n in referenced | {"demo.toml"}} <= set(names)
    for name in ("region.toml", "district.toml", "roads.osm", "buildings.gpkg"):
        assert f"firegrid/data/region/{name}" in names
    assert "firegrid/py.typed" in names
    assert "firegrid/maps/assets/leaflet.js" in names
    assert "firegrid/__main__.py" in names
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"firegrid"}
    unwanted = {"tests", "benchmarks", "notebooks", "docs"}
    assert not [n for n in names if unwanted & set(n.split("/")[:-1])]
    # data/demo and data/region ship as data: a script there would ship as a module too
    # (setuptools takes every .py of a listed package); generators belong in data/ itself.
    assert [n for n in names if n.startswith("firegrid/data/") and n.endswith(".py")] == []
    assert wheel.stat().st_size < MAX_WHEEL_BYTES
    largest = max(zipfile.ZipFile(wheel).infolist(), key=lambda i: i.file_size)
    assert largest.file_size < 5 * 2**20, largest.filename


@pytest.mark.slow
def test_the_installed_wheel_runs_the_demo_outside_the_checkout(venv, tmp_path):
    where = _run(
        venv,
        "python",
        "-c",
        "import firegrid, firegrid.demo as d; print(firegrid.__file__); print(d.demo_config_path())",
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    module, config = (Path(line) for line in where.stdout.split())
    assert venv in module.parents and ROOT not in module.parents
    assert venv in config.parents

    shown = _run(venv, "firegrid", "--version", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"firegrid {PYPROJECT['project']['version']}"

    helped = _run(venv, "python", "-m", "firegrid", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "usage: firegrid" in helped.stdout and "demo" in helped.stdout

    log_file = tmp_path / "runs.log"
    ran = _run(venv, "firegrid", "--log-file", str(log_file), "demo", "-q", "--out", "out", cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    # The demo's headline figures (README), computed from the wheel's copy of the demo.
    assert summary["figures"]["access"]["buildings_covered_3min"] == 826
    assert summary["figures"]["water"]["water_deficient"] == 792
    assert venv in Path(summary["config"]).parents
    assert {"map.html", "results.gpkg", "grid_summary.csv"} <= {
        p.name for p in (tmp_path / "out").iterdir()
    }
    logged = log_file.read_text(encoding="utf-8")
    assert "demo: start" in logged and "demo: end, exit 0" in logged


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"firegrid {firegrid.__version__}"
    assert firegrid.__version__ == PYPROJECT["project"]["version"]


def test_python_dash_m_firegrid_is_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    shown = subprocess.run([sys.executable, "-m", "firegrid", "--help"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "--log-file" in shown.stdout and "--verbose" in shown.stdout


def test_the_log_file_is_appended_with_start_end_warnings_and_errors(tmp_path, capsys):
    log_file = tmp_path / "runs.log"
    log_file.write_text("an earlier line\n", encoding="utf-8")
    assert main(["--log-file", str(log_file), "validate", str(tmp_path / "absent.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("firegrid: error:") == 1 and "INFO" not in err  # no -v: nothing else
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "an earlier line"  # appended, never overwritten
    assert "validate: start" in lines[1]
    assert " ERROR firegrid.cli: " in lines[2] and "absent.toml" in lines[2]
    assert "validate: end, exit 2" in lines[3]
    # The handlers are gone once the command ends: a notebook's later logging is its own.
    handlers = logging.getLogger(logs.LOGGER_NAME).handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]


def test_verbose_logs_on_stderr_once(tmp_path, capsys):
    assert main(["-v", "validate", str(tmp_path / "absent.toml")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"firegrid: INFO: firegrid {firegrid.__version__} validate: start"
    assert sum("absent.toml" in line for line in err) == 1  # the error line, not repeated
    assert err[-1].startswith("firegrid: INFO: firegrid validate: end, exit 2")


def test_an_unwritable_log_file_is_one_line_and_exit_2(tmp_path, capsys):
    folder = tmp_path / "no" / "such" / "folder"
    assert main(["--log-file", str(folder / "runs.log"), "validate", "x.toml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the log file" in err


def test_console_levels():
    assert logs.level_for(0) > logging.CRITICAL
    assert logs.level_for(1) == logging.INFO
    assert logs.level_for(3) == logging.DEBUG


def test_log_run_records_steps_headline_notes_and_outputs(tmp_path, capsys):
    run = SimpleNamespace(
        timings={"load": 1.25, "access": 3.5},
        headline=["826 of 2,560 buildings within 3 minutes"],
        notes=["station 微站1 is 80 m from the nearest street"],
    )
    log_file = tmp_path / "runs.log"
    with logs.logging_to(1, log_file=log_file):
        logs.log_run(run, {"map.html": tmp_path / "out" / "map.html"})
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "step load: 1.2 s",
        "step access: 3.5 s",
        "826 of 2,560 buildings within 3 minutes",
        "note: station 微站1 is 80 m from the nearest street",
        f"wrote {tmp_path / 'out' / 'map.html'}",
    ]
    assert " WARNING " in lines[3]
    # On the terminal the headline and notes are already printed: -v adds only the rest.
    err = capsys.readouterr().err
    assert "step access: 3.5 s" in err and "826 of" not in err and "微站1" not in err


def test_personal_numbers_never_reach_the_log(tmp_path):
    log_file = tmp_path / "runs.log"
    with logs.logging_to(0, log_file=log_file):
        logging.getLogger("firegrid.spatial.io").warning(
            "row 7: 联系电话 %s, 身份证 %s", "138 1234 5678", "11010519491231002X"
        )
    text = log_file.read_text(encoding="utf-8")
    assert "1234" not in text and "1949" not in text
    assert "row 7: 联系电话 ***, 身份证 ***" in text
