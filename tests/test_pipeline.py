"""The pipeline run: steps wired end to end, graceful degradation, atomic outputs, the demo."""

from __future__ import annotations

import json

import numpy as np
import pytest

import firegrid.pipeline as pipeline
from firegrid.cli import main
from firegrid.pipeline import PLANS, run_pipeline, write_run_outputs
from firegrid.spatial.errors import ConfigError, InputError
from tests._demo import OUTPUT_FILES, demo_cli_run, requires_demo, xss_demo_map
from tests.conftest import DLAT, DLON, LAT0, LON0


def _street_grid_osm(n: int = 6) -> str:
    """OSM XML of an n × n street grid over the tiny district (residential streets)."""
    nodes, ways = [], []
    ids = {}
    for i in range(n):
        for j in range(n):
            nid = 1000 + i * n + j
            ids[i, j] = nid
            lon = LON0 - 0.05 * DLON + 1.1 * DLON * i / (n - 1)
            lat = LAT0 - 0.05 * DLAT + 1.1 * DLAT * j / (n - 1)
            nodes.append(f'<node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}" version="1"/>')
    wid = 1
    for i in range(n):
        for line in ([ids[i, j] for j in range(n)], [ids[j, i] for j in range(n)]):
            refs = "".join(f'<nd ref="{r}"/>' for r in line)
            ways.append(
                f'<way id="{wid}" version="1">{refs}<tag k="highway" v="residential"/>'
                f'<tag k="name" v="路{wid}"/></way>'
            )
            wid += 1
    body = "\n".join(nodes + ways)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n{body}\n</osm>\n'


@pytest.fixture
def tiny_with_network(tiny_district):
    """The tiny district plus a street grid and a hazards layer."""
    folder = tiny_district.parent
    (folder / "roads.osm").write_text(_street_grid_osm(), encoding="utf-8")
    (folder / "hazards.csv").write_text(
        "编号,建筑,类别,发现日期,整改期限,经度,纬度\n"
        f"Z1,B001,重大,2026-01-05,2026-02-05,{LON0 + 0.3 * DLON},{LAT0 + 0.3 * DLAT}\n"
        f"Z2,B002,一般,2026-06-01,2026-08-01,{LON0 + 0.6 * DLON},{LAT0 + 0.6 * DLAT}\n",
        encoding="utf-8",
    )
    text = tiny_district.read_text(encoding="utf-8")
    text = text.replace(
        "[layers.grids]",
        '[network]\nsource = "roads.osm"\n\n'
        '[layers.hazards]\nfile = "hazards.csv"\n[layers.hazards.columns]\n'
        '"编号" = "hazard_id"\n"建筑" = "building_id"\n"类别" = "category"\n'
        '"发现日期" = "found_on"\n"整改期限" = "deadline"\n\n'
        "[siting]\nk = 1\nmin_count = false\n\n[layers.grids]",
    )
    tiny_district.write_text(text, encoding="utf-8")
    return tiny_district


def test_plans_run_exactly_the_steps_they_need():
    assert PLANS["access"] == ("load", "network", "access")
    assert "access" not in PLANS["water"] and "risk" not in PLANS["water"]
    assert PLANS["risk"][-1] == "risk" and "siting" not in PLANS["risk"]
    assert PLANS["run"] == pipeline.STEPS
    with pytest.raises(ConfigError, match="unknown pipeline plan"):
        run_pipeline("x.toml", until="everything")


def test_every_step_is_wired_on_a_tiny_district(tiny_with_network, tmp_path):
    run = run_pipeline(tiny_with_network, progress=False)
    assert run.done == list(pipeline.STEPS)
    b = run.buildings
    for col in ("t_micro_s", "t_fire_s", "covered_3min", "water_deficient", "risk_index"):
        assert col in b, col
    assert {"c_shortfall_3min", "c_water"} <= set(b.columns)
    assert {"isochrones", "areas", "roads", "hazards", "grids"} <= set(run.layers)
    assert "status" in run.layers["hazards"]  # the ledger replaced the raw layer
    assert "risk_index_mean" in run.layers["grids"]
    assert run.figures["access"]["buildings_covered_3min"] == int(b["covered_3min"].sum())
    assert any("3-minute micro-station coverage" in h for h in run.headline)
    # the analyses' warnings (the tiny fire station stands 90 m off the grid) become notes
    assert any(n.startswith("access: ") and "F1" in n for n in run.notes)
    # Siting (k = 1): the district has buildings the existing micro-station misses that a new
    # one can reach, so exactly one site is proposed, listed in the layer, and it covers some.
    sb, fig = run.results["siting"].buildings, run.figures["siting"]
    missed = sb["siting_coverable"] & ~sb["siting_covered_before"]
    assert missed.sum() > 0
    assert fig["new_sites"] == 1 and len(run.layers["sites"]) == 1
    assert fig["covered_before"] == int(sb["siting_covered_before"].sum())
    assert fig["covered_after"] == int(sb["siting_covered_after"].sum()) > fig["covered_before"]
    site_id = run.layers["sites"]["site_id"].iloc[0]
    assert (sb.loc[sb["siting_covered_after"] & ~sb["siting_covered_before"], "siting_site_id"]
            == site_id).all()  # fmt: skip
    # And it is the best single site: enumerate every candidate's reach.
    times, pre = run.results["siting"].times, sb["siting_covered_before"].to_numpy()
    best = max(
        int((pre | np.isin(np.arange(len(pre)), times[j].indices)).sum())
        for j in range(times.shape[0])
    )
    assert fig["covered_after"] == best
    written = write_run_outputs(run, tmp_path / "out")
    assert list(written) == list(OUTPUT_FILES)
    table = (tmp_path / "out" / "grid_summary.csv").read_text(encoding="utf-8-sig")
    header = table.splitlines()[0].split(",")
    assert {"share_covered_3min", "n_hydrants_ok", "risk_index_mean"} <= set(header)


def test_without_a_network_the_street_steps_are_skipped_with_a_note(tiny_district, tmp_path):
    run = run_pipeline(tiny_district, progress=False)
    assert run.network is None
    assert any("no road network" in n for n in run.notes)
    # nothing is invented: no times, no water coverage; risk says what it could not assess
    assert "t_micro_s" not in run.buildings and "water_deficient" not in run.buildings
    assert "risk_index" in run.buildings
    assert any("not assessed" in n and "water" in n for n in run.notes)
    written = write_run_outputs(run, tmp_path / "out")
    summary = json.loads(written["summary.json"].read_text(encoding="utf-8"))
    assert any("no road network" in n for n in summary["notes"])
    assert "access" not in summary["figures"]


def test_risk_without_the_water_step_leaves_water_not_assessed(tiny_with_network):
    run = run_pipeline(
        tiny_with_network, steps=("load", "network", "access", "risk"), progress=False
    )
    assert any("not assessed" in n and "water" in n for n in run.notes)
    assert "water_deficient" not in run.buildings and "d_hydrant_m" not in run.buildings
    assert "water" not in run.figures
    assert run.buildings["c_water"].isna().all()  # the factor is not assessed, not zero


def test_risk_needs_the_as_of_date(tiny_district):
    text = tiny_district.read_text(encoding="utf-8").replace('as_of = "2026-06-30"\n', "")
    tiny_district.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="as_of"):
        run_pipeline(tiny_district, until="risk", progress=False)


def test_a_step_failing_midway_leaves_the_previous_outputs_intact(
    tiny_district, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    assert main(["run", str(tiny_district), "--out", str(out), "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(OUTPUT_FILES) <= set(before)

    def broken_risk(run):
        run.layers["buildings"] = run.buildings.assign(risk_index=-1.0)  # half-done …
        raise InputError("hazard ledger unreadable", file="hazards.csv", column="deadline")

    monkeypatch.setitem(pipeline.STEP_FUNCTIONS, "risk", broken_risk)
    assert main(["run", str(tiny_district), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("firegrid: error: hazards.csv") and "deadline" in err[-1]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no temp


@requires_demo()
@pytest.mark.slow
def test_demo_outputs_are_complete_and_the_map_self_contained():
    folder, code, _, err = demo_cli_run()
    assert code == 0, err
    html = (folder / "map.html").read_text(encoding="utf-8")
    assert "<script src=" not in html and 'rel="stylesheet"' not in html
    assert len(html.encode()) < 8_000_000  # ~2,600 buildings: a few MB, not tens
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["steps"] == list(pipeline.STEPS)
    for step in ("access", "water", "risk", "siting"):
        assert summary["figures"].get(step), step
    md = (folder / "summary.md").read_text(encoding="utf-8")
    assert "3-minute micro-station coverage" in md
    assert "contact_phone" not in html


@requires_demo()
@pytest.mark.slow
def test_xss_payload_in_the_demo_reaches_the_html_only_escaped():
    path, run = xss_demo_map()
    html = path.read_text(encoding="utf-8")
    assert "window.__xss" in html  # the payload is there (allow_fields = ["all"]) …
    for raw in ("<script>window.__xss", 'onerror="window.__xss', "`${window.__xss"):
        assert raw not in html  # … but never as markup or as a template-literal expression
    assert "contact_phone" not in html
    b = run.buildings
    assert b["building_id"].str.contains("<script>", regex=False).all()
    assert run.config.name.startswith("Demo<img")  # the title carries the payload too
    assert "<title>Demo&lt;img src=x" in html


def test_missing_as_of_stops_before_any_step(tmp_path, monkeypatch):
    # The risk step needs [district] as_of: a config without it stops before the layers are
    # even read, not after the access and water analyses have run.
    import shutil
    from pathlib import Path

    import firegrid.pipeline as pipeline
    from firegrid.cli import main

    folder = tmp_path / "demo"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "demo", folder)
    config = folder / "demo.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("as_of")))

    def must_not_run(run):
        raise AssertionError("a step ran although the config lacks as_of")

    monkeypatch.setitem(pipeline.STEP_FUNCTIONS, "load", must_not_run)
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "-q"]) == 2
    assert not (tmp_path / "out").exists()
