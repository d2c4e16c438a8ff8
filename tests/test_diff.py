"""``firegrid diff``: the changes between two runs, checked on the demo's before/after-siting
scenario against the runs' own summaries and grid tables, and on small hand-made runs."""

from __future__ import annotations

import contextlib
import io
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from firegrid.diff import RunResults, compare, read_run, write_diff
from firegrid.diff_tables import GRID_FIGURES
from firegrid.spatial import columns
from firegrid.spatial.errors import InputError
from tests._demo import DEMO, demo_cli_run, requires_demo

AFTER_CONFIG = DEMO / "after_siting.toml"
# The after-siting run of the scenario fixture, kept in memory.
IN_MEMORY: dict = {}


def _cli(*argv: str) -> tuple[int, str, str]:
    from firegrid.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------------------------
# The demo scenario: the demo, and the demo with the 5 micro-stations its siting proposes.


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """(before folder, after folder, changes folder): the shared demo run, the after-siting run
    (the steps up to risk, no map) and ``firegrid diff`` of the two."""
    from firegrid.pipeline import run_pipeline, write_run_outputs

    before, code, _, err = demo_cli_run()
    assert code == 0, err
    root = tmp_path_factory.mktemp("diff")
    run = run_pipeline(AFTER_CONFIG, until="risk", progress=False)
    after = root / "after"
    write_run_outputs(run, after, with_map=False)
    changes = root / "changes"
    code, out, err = _cli("diff", str(before), str(after), "--out", str(changes))
    assert code == 0, err
    IN_MEMORY["after"] = run
    return before, after, changes


def _summary(folder):
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


@requires_demo()
@pytest.mark.slow
def test_the_scenario_adds_the_proposed_sites_to_the_demo_stations():
    demo = pd.read_csv(DEMO / "stations.csv", encoding="utf-8")
    after = pd.read_csv(DEMO / "stations_after_siting.csv", encoding="utf-8")
    assert list(after.columns) == list(demo.columns)
    pd.testing.assert_frame_equal(after.iloc[: len(demo)], demo)
    assert len(after) == len(demo) + 5
    assert set(after.iloc[len(demo) :]["类型"]) == {"微型消防站"}


@requires_demo()
@pytest.mark.slow
def test_coverage_gained_is_what_the_two_summaries_imply(scenario):
    before, after, changes = scenario
    old = _summary(before)["figures"]["access"]["buildings_covered_3min"]
    new = _summary(after)["figures"]["access"]["buildings_covered_3min"]
    diff = json.loads((changes / "diff_summary.json").read_text(encoding="utf-8"))
    cover = diff["figures"]["covered_3min"]
    assert (cover["before"], cover["after"]) == (old, new)
    # New stations only add reach: every building's coverage is kept or gained.
    assert cover["lost"] == 0
    assert cover["gained"] == new - old
    # The siting step proposed these sites for 32.3 % → 70.4 %; the stations bring most of it.
    assert old == 826 and new > 1700
    assert diff["figures"]["covered_5min"]["gained"] == 0  # no fire station changed
    stations = diff["figures"]["stations"]
    assert stations["added"] == [f"XJ-N0{k}" for k in range(1, 6)]
    assert (stations["before"], stations["after"], stations["removed"], stations["moved"]) == (
        7,
        12,
        [],
        [],
    )
    table = pd.read_csv(changes / "changes_buildings.csv", dtype={"building_id": str})
    assert (table["change_3min"] == 1).sum() == new - old
    assert (table["d_t_micro_s"] <= 1e-6).all()  # nobody is reached later
    assert f"{old:,} → {new:,}" in (changes / "diff_summary.md").read_text(encoding="utf-8")


@requires_demo()
@pytest.mark.slow
def test_grid_changes_are_the_difference_of_the_two_grid_tables(scenario):
    before, after, changes = scenario
    old = pd.read_csv(before / "grid_summary.csv").set_index("grid_id")
    new = pd.read_csv(after / "grid_summary.csv").set_index("grid_id")
    got = pd.read_csv(changes / "changes_grids.csv").set_index("grid_id")
    assert set(got.index) == set(old.index) == set(new.index)
    for figure, was, now, change in GRID_FIGURES:
        expected = new[figure] - old[figure]
        # both tables are rounded to 3 decimals; the change is of the unrounded figures
        np.testing.assert_allclose(got.loc[expected.index, change], expected, atol=2e-3)
        np.testing.assert_allclose(got.loc[old.index, was], old[figure], atol=1e-3)
        np.testing.assert_allclose(got.loc[new.index, now], new[figure], atol=1e-3)
    # Cell counts of changed buildings add up: the top cell holds them all, level 3 splits them.
    buildings = pd.read_csv(changes / "changes_buildings.csv", dtype=str)
    gained = (buildings["change_3min"] == "1").groupby(buildings["grid_id_l3"]).sum()
    level3 = got[got["level"] == 3]
    assert (level3["n_gained_3min"] == gained.reindex(level3.index).fillna(0)).all()
    assert got.loc[got["level"] == 1, "n_gained_3min"].sum() == gained.sum()


@requires_demo()
@pytest.mark.slow
def test_a_run_in_memory_compares_as_its_output_folder(scenario):
    before, after, _ = scenario
    from_folder = compare(before, after)
    in_memory = compare(before, IN_MEMORY["after"])
    assert in_memory.figures == from_folder.figures
    cols = [c for c in from_folder.grids.columns if c.startswith(("d_", "n_"))]
    pd.testing.assert_frame_equal(
        in_memory.grids.set_index("grid_id")[cols],
        from_folder.grids.set_index("grid_id")[cols],
        check_dtype=False,
    )


@pytest.fixture(scope="module")
def three_months_later():
    """The demo run (folder) and the demo judged three months later (in memory, to risk)."""
    import tomllib

    from firegrid.config import parse_config
    from firegrid.pipeline import run_pipeline

    before, code, _, err = demo_cli_run()
    assert code == 0, err
    config = DEMO / "demo.toml"
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    data["district"]["as_of"] = "2026-09-30"
    return before, run_pipeline(parse_config(data, path=config), until="risk", progress=False)


def _overdue_in_ledger(as_of: str) -> set[str]:
    """Hazards of the demo's own ledger past their deadline and not rectified on ``as_of``."""
    raw = pd.read_csv(DEMO / "hazards.csv", encoding="utf-8-sig", dtype=str)
    deadline = pd.to_datetime(raw["整改期限"])
    rectified = pd.to_datetime(raw["整改日期"])
    day = pd.Timestamp(as_of)
    late = (deadline < day) & (rectified.isna() | (rectified > day))
    return set(raw.loc[late, "隐患编号"])


@requires_demo()
@pytest.mark.slow
def test_hazards_are_judged_on_each_runs_own_date(three_months_later):
    before, later = three_months_later
    diff = compare(before, later)
    expected = _overdue_in_ledger("2026-09-30") - _overdue_in_ledger("2026-06-30")
    hazards = diff.hazards.set_index("hazard_id")["hazard_change"]
    assert set(hazards[hazards == "newly_overdue"].index) == expected
    assert len(expected) == 20 and set(hazards) == {"unchanged", "newly_overdue"}
    assert diff.figures["hazards"]["overdue_before"] == 19
    assert diff.figures["hazards"]["overdue_after"] == len(_overdue_in_ledger("2026-09-30"))
    top = diff.grids.set_index("grid_id").loc["DEMO"]
    assert top["n_hazards_newly_overdue"] == 20 and top["d_hazards_overdue"] == 20
    assert diff.figures["covered_3min"]["gained"] == diff.figures["covered_3min"]["lost"] == 0


@requires_demo()
@pytest.mark.slow
def test_the_workbook_has_chinese_headers_and_explains_every_column(scenario):
    _, _, changes = scenario
    book = pd.read_excel(changes / "changes.xlsx", sheet_name=None)
    assert set(book) == {"buildings", "grids", "hazards", "stations", "columns"}
    assert "3分钟到场变化 (change_3min)" in book["buildings"].columns
    assert "平均风险指数变化 (d_risk_index_mean)" in book["grids"].columns
    glossary = book["columns"]
    for sheet in ("buildings", "grids", "hazards", "stations"):
        codes = [h.rsplit(" (", 1)[-1].rstrip(")") for h in book[sheet].columns]
        explained = glossary[glossary["sheet"] == sheet]
        assert list(explained["column"]) == codes
        assert explained["meaning"].notna().all()


@requires_demo()
@pytest.mark.slow
def test_the_change_map_works_offline(scenario):
    from firegrid.maps.export import external_references

    _, _, changes = scenario
    html = (changes / "change_map.html").read_text(encoding="utf-8")
    assert external_references(html) == []
    assert "preferCanvas" in html and "gained 3-min reach" in html


@requires_demo()
@pytest.mark.slow
def test_diff_refuses_a_folder_that_is_not_a_run_and_a_foreign_file(scenario, tmp_path):
    before, after, changes = scenario
    code, _, err = _cli("diff", str(tmp_path), str(after), "--out", str(tmp_path / "x"))
    assert code == 2 and "not a FireGrid output folder" in err and str(tmp_path) in err
    assert err.count("\n") == 1
    # The comparison never replaces a run's outputs, a compared run's above all.
    listed = sorted(p.name for p in after.iterdir())
    code, _, err = _cli("diff", str(before), str(after), "--out", str(after))
    assert code == 2 and "holds the outputs of a run" in err
    assert sorted(p.name for p in after.iterdir()) == listed
    (changes / "notes.txt").write_text("mine", encoding="utf-8")
    try:
        code, _, err = _cli("diff", str(before), str(after), "--out", str(changes))
        assert code == 2 and "notes.txt" in err
        assert (changes / "notes.txt").read_text(encoding="utf-8") == "mine"
    finally:
        (changes / "notes.txt").unlink()


# --------------------------------------------------------------------------------------------
# Small hand-made runs


def _run(ids, covered, grades, hazards, *, crs="EPSG:32651", district="D", as_of="2026-01-01"):
    """A run of buildings in two level-2 cells (A: the first two ids, B: the rest)."""
    n = len(ids)
    cells = ["A" if i < 2 else "B" for i in range(n)]
    buildings = gpd.GeoDataFrame(
        {
            "building_id": ids,
            "grid_id_l1": "T",
            "grid_id_l2": cells,
            "covered_3min": covered,
            "covered_5min": [True] * n,
            "t_micro_s": [150.0 if c else 240.0 for c in covered],
            "t_fire_s": [200.0] * n,
            "water_covered": [True] * n,
            "risk_index": [10.0 * g for g in grades],
            "risk_grade": grades,
            "hazards_open": [0] * n,
            "hazards_overdue": [0] * n,
        },
        geometry=[box(10 * i, 0, 10 * i + 5, 5) for i in range(n)],
        crs=crs,
    )
    grids = gpd.GeoDataFrame(
        {
            "grid_id": ["T", "A", "B"],
            "name": ["街道", '=HYPERLINK("http://x")', "<script>alert(1)</script>"],
            "level": [1, 2, 2],
            "parent_id": [None, "T", "T"],
            "risk_index_mean": [1.0, 2.0, 3.0],
        },
        geometry=[box(0, 0, 10 * n, 5), box(0, 0, 20, 5), box(20, 0, 10 * n, 5)],
        crs=crs,
    )
    ledger = pd.DataFrame(hazards, columns=["hazard_id", "building_id", "status"])
    summary = {"district": district, "as_of": as_of, "crs": crs, "figures": {}}
    return RunResults(buildings, grids, ledger, summary, source=f"run-{as_of}")


OLD_HAZARDS = [
    ("H1", "b1", "open"),
    ("H2", "b2", "open"),
    ("H3", "b3", "overdue"),
    ("H4", "b3", "open"),
]
NEW_HAZARDS = [
    ("H1", "b1", "rectified"),
    ("H2", "b2", "overdue"),
    ("H3", "b3", "overdue"),
    ("H5", "=b4", "open"),
]


def _stations(rows) -> gpd.GeoDataFrame:
    ids, names, xs = zip(*rows, strict=True)
    return gpd.GeoDataFrame(
        {"station_id": ids, "name": names, "kind": "micro_station"},
        geometry=gpd.points_from_xy(xs, [0.0] * len(xs)),
        crs="EPSG:32651",
    )


def _pair():
    from dataclasses import replace

    old = _run(["b1", "b2", "b3"], [True, False, False], [2, 3, 3], OLD_HAZARDS)
    new = _run(["b1", "b2", "=b4"], [False, True, True], [3, 2, 3], NEW_HAZARDS, as_of="2026-06-01")
    old = replace(old, stations=_stations([("S1", "一站", 0.0), ("S2", "二站", 50.0)]))
    new = replace(new, stations=_stations([("S2", "二站", 60.0), ("S3", "<b>三站</b>", 5.0)]))
    return old, new


def test_stations_added_removed_and_moved_by_hand():
    diff = compare(*_pair())
    s = diff.stations.set_index("station_id")
    assert s["presence"].to_dict() == {"S2": "both", "S3": "added", "S1": "removed"}
    assert s.loc["S2", "moved_m"] == pytest.approx(10.0) and pd.isna(s.loc["S3", "moved_m"])
    assert diff.figures["stations"] == {
        "before": 2,
        "after": 2,
        "added": ["S3"],
        "removed": ["S1"],
        "moved": ["S2"],
    }
    assert "stations: 2 → 2 (added: S3; removed: S1; moved: S2)" in diff.headline


def test_buildings_changes_by_hand():
    diff = compare(*_pair())
    b = diff.buildings.set_index("building_id")
    assert b["presence"].to_dict() == {"b1": "both", "b2": "both", "=b4": "added", "b3": "removed"}
    assert b.loc["b1", "change_3min"] == -1 and b.loc["b2", "change_3min"] == 1
    assert b.loc["b1", "d_t_micro_s"] == 90.0
    assert b.loc["b1", "d_risk_grade"] == 1 and b.loc["b2", "d_risk_grade"] == -1
    assert pd.isna(b.loc["=b4", "change_3min"]) and pd.isna(b.loc["b3", "covered_3min_after"])
    f = diff.figures
    assert f["buildings"] == {"before": 3, "after": 3, "both": 2, "added": 1, "removed": 1}
    assert (f["covered_3min"]["before"], f["covered_3min"]["after"]) == (1, 2)
    assert (f["covered_3min"]["gained"], f["covered_3min"]["lost"]) == (1, 1)
    assert (f["risk"]["riskier"], f["risk"]["safer"]) == (1, 1)


def test_hazards_new_rectified_and_newly_overdue_by_hand():
    diff = compare(*_pair())
    h = diff.hazards.set_index("hazard_id")["hazard_change"].to_dict()
    assert h == {
        "H1": "rectified",
        "H2": "newly_overdue",
        "H3": "unchanged",
        "H4": "removed",
        "H5": "new",
    }
    hz = diff.figures["hazards"]
    assert (hz["open_before"], hz["open_after"], hz["overdue_before"], hz["overdue_after"]) == (
        4,
        3,
        1,
        2,
    )
    g = diff.grids.set_index("grid_id")
    # Cell A holds b1 and b2; cell B holds b3 (earlier) and =b4 (later).
    assert g.loc[
        "A", ["n_hazards_rectified", "n_hazards_newly_overdue", "n_hazards_new"]
    ].tolist() == [1, 1, 0]
    assert g.loc["B", ["n_hazards_new", "n_added", "n_removed"]].tolist() == [1, 1, 1]
    assert g.loc["T", ["n_gained_3min", "n_lost_3min", "n_riskier", "n_safer"]].tolist() == [
        1,
        1,
        1,
        1,
    ]


def test_runs_that_cannot_be_compared_are_refused():
    old, new = _pair()
    with pytest.raises(InputError, match="CRS"):
        compare(old, _run(["b1"], [True], [1], [], crs="EPSG:4547"))
    with pytest.raises(InputError, match="no building_id in common"):
        compare(old, _run(["x1", "x2"], [True, True], [1, 1], []))
    other = _run(["b1", "b2"], [True, True], [1, 1], [], district="E")
    other.grids["grid_id"] = ["U", "C", "D"]
    with pytest.raises(InputError, match="no grid cell in common"):
        compare(old, other)


def test_read_run_names_the_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(InputError, match="not a FireGrid output folder") as info:
        read_run(tmp_path)
    assert str(tmp_path) in str(info.value)
    (tmp_path / "summary.json").write_text("{}", encoding="utf-8")
    (tmp_path / "results.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(InputError, match="summary"):
        read_run(tmp_path)


def test_user_text_stays_text_in_the_tables_and_escaped_in_the_map(tmp_path):
    from openpyxl import load_workbook

    written = write_diff(compare(*_pair(), language="zh"), tmp_path / "out")
    csv = written["changes_buildings.csv"].read_text(encoding="utf-8-sig")
    assert "'=b4" in csv
    sheet = load_workbook(written["changes.xlsx"])["buildings"]
    cells = [c for row in sheet.iter_rows() for c in row if c.value == "=b4"]
    assert cells and all(c.data_type == "s" and c.quotePrefix for c in cells)
    grids = load_workbook(written["changes.xlsx"])["grids"]
    assert any(
        c.value == '=HYPERLINK("http://x")' and c.data_type == "s"
        for r in grids.iter_rows()
        for c in r
    )
    html = written["change_map.html"].read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    # escaped for HTML, then embedded in the script as JSON (& written \u0026)
    assert "\\u0026lt;script\\u0026gt;alert(1)" in html
    md = written["diff_summary.md"].read_text(encoding="utf-8")
    assert md.startswith("# FireGrid — 两次分析的变化") and "3分钟到场覆盖：1 → 2 栋" in md


def test_every_change_column_is_registered():
    diff = compare(*_pair())
    for frame, layer in (
        (diff.stations, "changes_stations"),
        (diff.buildings, "changes_buildings"),
        (diff.grids, "changes_grids"),
        (diff.hazards, "changes_hazards"),
    ):
        for name in frame.columns:
            if name in ("geometry", *columns.INPUT_LABELS):
                continue
            found = columns.change_column(name, layer) or columns.column(name, layer.split("_")[1])
            assert found is not None, (layer, name)


def test_a_change_column_name_is_a_string_literal_of_its_module():
    """Grepping a change column's name in firegrid.diff_tables finds where it is made."""
    import inspect

    from firegrid import diff_tables

    source = inspect.getsource(diff_tables)
    for col in columns.CHANGE_COLUMNS.values():
        assert col.module == "firegrid.diff_tables"
        literal = 'f"' + col.name.split("{", 1)[0] + "{" if col.is_family else f'"{col.name}"'
        assert literal in source, col.name
        assert col.zh and col.en and col.description.endswith("."), col


def test_the_docs_list_every_change_column():
    from tests._demo import REPO

    text = (REPO / "docs" / "diff.md").read_text(encoding="utf-8")
    for layer, name in columns.CHANGE_COLUMNS:
        assert f"`{name.replace('{grade}', '<grade>')}`" in text, (layer, name)


# The features' tooltips as a hover shows them, and what went wrong on the page.
HOVER = """
const map = Object.values(window).find(v => v instanceof L.Map);
let texts = [];
map.eachLayer(layer => {
  if (!(layer instanceof L.GeoJSON)) return;
  layer.eachLayer(f => {
    const ll = f.getBounds ? f.getBounds().getCenter() : f.getLatLng();
    f.fire('mouseover', {latlng: ll}, true);
    const t = layer.getTooltip();  // folium binds one tooltip to the layer
    if (t && t.getElement()) texts.push(t.getElement().innerText);
    f.fire('mouseout', {latlng: ll}, true);
  });
});
return {texts: texts, canvas: document.querySelectorAll('canvas').length,
        alerts: window.__alerts, errors: window.__errors};
"""
CAPTURE = """
window.__errors = []; window.__alerts = [];
window.alert = window.confirm = window.prompt = m => { window.__alerts.push(String(m)); };
window.addEventListener('error', e => window.__errors.push(String(e.message)), true);
"""


@pytest.mark.browser
@pytest.mark.slow
def test_the_change_map_draws_on_canvas_and_shows_user_text_as_text(tmp_path):
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver")
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if chromium is None or shutil.which("chromedriver") is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    written = write_diff(compare(*_pair(), language="zh"), tmp_path / "out")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=390,844",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path / 'p'}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CAPTURE})
        driver.get(written["change_map.html"].as_uri())
        state = driver.execute_script(HOVER)
    finally:
        driver.quit()
    assert state["errors"] == [] and state["alerts"] == []
    assert state["canvas"] >= 1
    tips = "\n".join(state["texts"])
    assert "<script>alert(1)</script>" in tips  # shown as the grid's name, not run
    assert '=HYPERLINK("http://x")' in tips
    # each building's tooltip names what changed for it
    assert "建筑\t=b4\n变化\t新增建筑" in tips
    assert "建筑\tb1\n变化\t失去3分钟到场" in tips and "建筑\tb2\n变化\t新增3分钟到场" in tips


def test_a_run_without_some_steps_compares_what_both_have():
    from dataclasses import replace

    old, new = _pair()
    lacking = ["water_covered", "risk_index", "risk_grade", "hazards_open", "hazards_overdue"]
    old = replace(old, buildings=old.buildings.drop(columns=lacking))
    old = replace(old, hazards=old.hazards.drop(columns="status"))  # ledger never judged
    diff = compare(old, new)
    assert diff.figures["covered_3min"]["gained"] == 1
    assert diff.figures["water_covered"] is None and diff.hazards.empty
    assert not any(
        line.startswith(("risk", "hazards", "buildings with fire")) for line in diff.headline
    )
    assert "hazards not compared: the earlier run has no judged hazard ledger" in diff.notes
    assert "risk_index not compared: the earlier run has no risk_index" in diff.notes
    assert diff.buildings["d_risk_index"].isna().all()
