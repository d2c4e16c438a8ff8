"""Inspection lists: ranking, reasons, cell membership, the workbook and the PDF."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from firegrid.cli import main
from firegrid.risk.inspection import inspection_list, top_reasons
from firegrid.risk.params import FACTORS
from firegrid.spatial import columns
from firegrid.spatial.errors import InputError


def _buildings(n: int = 300, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # coarse values so that ties in the index and the hazards happen and must be broken
    contrib = rng.integers(0, 4, (n, len(FACTORS))).astype(float) * 2.5
    contrib[rng.random((n, len(FACTORS))) < 0.1] = np.nan  # a factor not assessed here
    frame = pd.DataFrame({f"c_{f}": contrib[:, k] for k, f in enumerate(FACTORS)})
    frame["risk_index"] = np.nansum(contrib, axis=1)
    frame["building_id"] = [f"B{i:04d}" for i in rng.permutation(n)]
    frame["hazards_open"] = rng.integers(0, 3, n)
    frame["hazards_overdue"] = np.minimum(frame["hazards_open"], rng.integers(0, 2, n))
    frame["risk_grade"] = pd.array(rng.integers(1, 5, n), dtype="Int64")
    frame["grid_id_l2"] = rng.choice(["C1", "C2"], n)
    frame["grid_id_l3"] = frame["grid_id_l2"] + "-" + rng.choice(["1", "2", "3"], n)
    frame.loc[[3, 17], "grid_id_l3"] = None  # in no cell of level 3
    frame["name"] = [f"{i}号楼" for i in range(n)]
    return frame


def test_ranking_is_the_brute_force_sort_in_every_cell():
    b = _buildings()
    with pytest.warns(UserWarning, match="2 building"):
        out = inspection_list(b)
    for cell, rows in out.groupby("grid_id"):
        mine = b[b["grid_id_l3"] == cell]
        expected = sorted(
            mine.itertuples(),
            key=lambda r: (-r.risk_index, -r.hazards_open, -r.hazards_overdue, r.building_id),
        )
        assert rows["building_id"].tolist() == [r.building_id for r in expected]
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))


def test_a_cells_list_holds_exactly_its_buildings():
    b = _buildings()
    with pytest.warns(UserWarning):
        out = inspection_list(b, level=3)
    for cell in b["grid_id_l3"].dropna().unique():
        listed = set(out.loc[out["grid_id"] == cell, "building_id"])
        assert listed == set(b.loc[b["grid_id_l3"] == cell, "building_id"])
    assert len(out) == b["grid_id_l3"].notna().sum()
    coarse = inspection_list(b, level=2)  # every building is in a level-2 cell
    assert sorted(coarse["grid_id"].unique()) == ["C1", "C2"] and len(coarse) == len(b)
    with pytest.raises(InputError, match=r"no grid cell of level 4; levels present: \[2, 3\]"):
        inspection_list(b, level=4)


def test_reasons_name_the_largest_contributions():
    b = _buildings(120)
    reasons = top_reasons(b, language="en")
    for i, row in b.iterrows():
        items = [(row[f"c_{f}"], -k, f) for k, f in enumerate(FACTORS) if row[f"c_{f}"] > 0]
        best = sorted(items, reverse=True)[:3]  # largest first; ties in the index's order
        want = [f"{columns.FACTOR_LABELS['en'][f]} {v:.1f}" for v, _, f in best]
        want += [""] * (3 - len(want))
        assert reasons.loc[i].tolist() == want, i


def test_workbook_and_pdf_of_a_run_folder(tmp_path):
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the list's PDF text")
    import geopandas as gpd
    from openpyxl import load_workbook
    from shapely.geometry import box

    b = _buildings(60).dropna(subset=["grid_id_l3"])
    b.loc[b.index[0], "name"] = '=HYPERLINK("http://x")'  # text, never a formula
    grids = gpd.GeoDataFrame(
        {
            "grid_id": ["C1-1", "C1-2", "C1-3", "C2-1", "C2-2", "C2-3"],
            "name": ["东一网格", "东二网格", "东三网格", "西一网格", "西二网格", "西三网格"],
            "level": 3,
        },
        geometry=[box(k, 0, k + 1, 1) for k in range(6)],
        crs="EPSG:32651",
    )
    run = tmp_path / "run"
    run.mkdir()
    grids.to_file(run / "results.gpkg", layer="grids", driver="GPKG")
    gpd.GeoDataFrame(b, geometry=[box(0, 0, 1, 1)] * len(b), crs="EPSG:32651").to_file(
        run / "results.gpkg", layer="buildings", driver="GPKG"
    )
    out = tmp_path / "lists"
    assert main(["inspection", str(run), "--out", str(out), "-q"]) == 0
    book = load_workbook(out / "inspection.xlsx")
    assert book.sheetnames[0] == "全部" and set(book.sheetnames[1:]) == set(grids["name"])
    sheet = book["东一网格"]
    headers = [c.value for c in sheet[2]]
    assert headers[:3] == ["网格编号 (grid_id)", "排查顺序 (rank)", "建筑编号 (building_id)"]
    assert "首要风险因素 (reason_1)" in headers
    assert "东一网格" in sheet["A1"].value
    every = [c.value for row in book["全部"].iter_rows() for c in row]
    assert not any(isinstance(v, str) and v.startswith("=") for v in every)
    assert sheet.print_title_rows == "$2:$2"
    reader = pypdf.PdfReader(str(out / "inspection.pdf"))
    first = reader.pages[0].extract_text()
    assert "东一网格" in first and "首要风险因素" in first
    top = inspection_list(b).iloc[0]
    assert top["building_id"] in first and top["reason_1"].split(" ")[0] in first


def test_inspection_command_runs_a_config(tiny_district, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "lists"
    code = main(["inspection", str(tiny_district), "--out", str(out), "--format", "xlsx", "-q"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "inspection.xlsx"
    ]
    book = load_workbook(out / "inspection.xlsx")
    rows = list(book["全部"].iter_rows(values_only=True))
    assert rows[0][1] == "排查顺序 (rank)"
    cells = {r[0] for r in rows[1:]}
    assert cells and cells <= {"C1-1", "C1-2", "C2-1", "C2-2"}  # the finest level, 3
    assert book.sheetnames[1:] and set(book.sheetnames[1:]) <= {
        "网格11",
        "网格12",
        "网格21",
        "网格22",
    }
