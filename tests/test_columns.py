"""The column registry: it covers every output column, names its computing module, and is the
README glossary."""

from __future__ import annotations

import importlib
import inspect
import re

import pandas as pd
import pytest

from firegrid.spatial import columns as C
from firegrid.spatial.io.layers import SCHEMAS
from tests._demo import REPO, demo_cli_run, requires_demo

CANONICAL = {c.name for schema in SCHEMAS.values() for c in schema.columns}


def _input_columns() -> dict[str, set[str]]:
    """The demo's input layers' own columns (canonical and the user's extra ones)."""
    from firegrid.config import district_from_config, load_config
    from tests._demo import DEMO_CONFIG

    district, _ = district_from_config(load_config(DEMO_CONFIG))
    return {name: set(gdf.columns) for name, gdf in district.layers.items()}


def _unregistered(layer: str, names, inputs: set[str]) -> list[str]:
    return [
        n
        for n in names
        if n != "geometry" and n not in CANONICAL and n not in inputs and C.column(n, layer) is None
    ]


@requires_demo()
@pytest.mark.slow
def test_every_column_of_the_demo_outputs_is_registered_or_an_input_column():
    import pyogrio

    folder, code, _, err = demo_cli_run()
    assert code == 0, err
    inputs = _input_columns()
    every_input = set().union(*inputs.values())
    missing = {}
    gpkg = folder / "results.gpkg"
    for layer, _geom in pyogrio.list_layers(gpkg):
        fields = pyogrio.read_info(gpkg, layer=layer)["fields"]
        own = inputs.get(layer, every_input if layer == "access_missing" else set())
        bad = _unregistered(layer, fields, own)
        if bad:
            missing[layer] = bad
    table = pd.read_csv(folder / "grid_summary.csv", nrows=1)
    bad = _unregistered("grids", table.columns, inputs["grids"])
    if bad:
        missing["grid_summary.csv"] = bad
    assert missing == {}, f"output columns missing from firegrid.spatial.columns: {missing}"


@requires_demo()
@pytest.mark.slow
def test_the_demo_workbook_explains_every_column():
    folder, code, _, err = demo_cli_run()
    assert code == 0, err
    csv = list(pd.read_csv(folder / "grid_summary.csv", nrows=1).columns)
    book = pd.read_excel(folder / "grid_summary.xlsx", sheet_name=None)
    sheet = book["columns"].set_index("column")
    assert list(sheet.index) == csv
    computed = [c for c in csv if c not in _input_columns()["grids"]]
    assert sheet.loc[computed, "meaning"].notna().all()
    assert sheet.loc[computed, "中文"].ne(pd.Series(computed, index=computed)).all()
    headers = list(book["grid_summary"].columns)
    assert "3分钟覆盖率 (share_covered_3min)" in headers
    assert [h.rsplit(" (", 1)[-1].rstrip(")") for h in headers] == csv


def test_a_registered_name_is_a_string_literal_of_its_module():
    """Grepping an output column's name finds the line that computes it."""
    sources: dict[str, str] = {}
    missing = []
    for col in C.COLUMNS.values():
        if col.module not in sources:
            sources[col.module] = inspect.getsource(importlib.import_module(col.module))
        source = sources[col.module]
        if col.is_family:
            # f"c_{f}" / f"imputed_{name}": the literal up to the placeholder, then "{"; or
            # the family's own name ("c_{factor}_mean").
            stem = re.escape(col.name.split("{", 1)[0]) + r"\{"
            found = re.search(r"f[\"']" + stem, source) or f'"{col.name}"' in source
        else:
            found = re.search(rf"[\"']{re.escape(col.name)}[\"']|\b{col.name}=", source)
        if not found:
            missing.append((col.layer, col.name, col.module))
    assert missing == []


def test_a_family_matches_only_its_own_members():
    assert C.column("c_age", "buildings").name == "c_{factor}"
    assert C.column("c_age_mean", "grids").name == "c_{factor}_mean"
    assert C.column("c_age_mean", "buildings") is None
    assert C.column("c_nothing", "buildings") is None
    assert C.column("n_grade_5", "grids") is None
    assert set(C.column("imputed_floors").members()) >= {"imputed_floors", "imputed_use"}


def test_a_name_with_two_meanings_is_two_entries():
    grid = C.column("n_buildings", "grids")
    band = C.column("n_buildings", "isochrones")
    assert grid is not band and grid.description != band.description
    # A hydrant's status is an input column; a hazard's is computed by the ledger.
    assert C.label("status", "zh") == C.INPUT_LABELS["status"][0]
    assert C.label("status", "zh", layer="hazards") == C.column("status", "hazards").zh


def test_labels_fill_family_placeholders_from_the_one_definition():
    assert C.label("c_wiring", "zh") == "贡献·" + C.FACTOR_LABELS["zh"]["wiring"]
    assert C.label("n_grade_1", "zh").startswith("1级（" + C.GRADE_LABELS["zh"][1])
    assert C.label("n_grade_4", "en") == "grade 4 (low) buildings"
    assert C.label("unknown_column", "en") == "unknown_column"


def test_every_canonical_input_column_has_labels():
    assert CANONICAL <= set(C.INPUT_LABELS)


def test_every_column_is_fully_described():
    for col in C.COLUMNS.values():
        assert col.zh and col.en and col.description.endswith("."), col
        assert col.rollup is None or col.rollup in C.ROLLUPS, col
        assert col.group in C.GROUPS, col
        if col.rollup not in (None, "count"):
            assert col.source, col


def test_factor_labels_cover_exactly_the_index_factors():
    from firegrid.risk.params import FACTORS

    assert tuple(C.FACTOR_LABELS["zh"]) == tuple(FACTORS)
    assert tuple(C.FACTOR_LABELS["en"]) == tuple(FACTORS)


def test_descriptions_take_the_run_parameters():
    text = C.describe("water_covered", {"hydrant_radius_m": 120.0, "source_radius_m": 200.0})
    assert "120 m" in text and "200 m" in text
    # A placeholder without a value stays readable instead of failing.
    assert "{hydrant_radius_m:g}" in C.describe("water_covered", {})


def test_readme_glossary_is_the_registry():
    from firegrid.maps.options import parameter_values as glossary_values

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert C.GLOSSARY_START in readme and C.GLOSSARY_END in readme
    assert C.replace_glossary(readme, glossary_values()) == readme, (
        "README glossary differs from firegrid.spatial.columns; regenerate it with "
        "python -m firegrid.reports --glossary README.md"
    )


def test_the_glossary_changes_when_the_registry_does(monkeypatch):
    from firegrid.maps.options import parameter_values as glossary_values

    before = C.glossary_markdown(glossary_values())
    key = ("buildings", "t_micro_s")
    changed = C.Column(**{**C.COLUMNS[key].__dict__, "en": "something else"})
    monkeypatch.setitem(C.COLUMNS, key, changed)
    assert C.glossary_markdown(glossary_values()) != before


def test_grade_and_factor_labels_have_one_definition():
    from firegrid.maps import privacy, styles
    from firegrid.risk import grading, index

    assert grading.GRADE_LABELS is C.GRADE_LABELS["zh"]
    assert grading.GRADE_LABELS_EN is C.GRADE_LABELS["en"]
    assert styles.GRADE_NAMES is C.GRADE_LABELS
    assert index.FACTOR_LABELS is C.FACTOR_LABELS["en"]
    assert styles.FACTOR_LABELS is C.FACTOR_LABELS
    # The privacy allow-list of computed columns is the registry's public columns.
    assert privacy.COMPUTED_COLUMNS == C.public_names()
    assert "c_wiring" in privacy.ALLOWED_BY_DEFAULT and "grid_id_l3" in privacy.ALLOWED_BY_DEFAULT


def test_a_personal_output_column_is_left_out_of_the_public_names(monkeypatch):
    key = ("buildings", "access_issue")
    monkeypatch.setitem(C.COLUMNS, key, C.Column(**{**C.COLUMNS[key].__dict__, "personal": True}))
    assert "access_issue" not in C.public_names() and not C.is_public("access_issue")
