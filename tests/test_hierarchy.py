"""Grid hierarchies of any depth: validation, assignment, roll-up and the per-grid table.

A five-level hierarchy (city → district → subdistrict → community → cell) is built here as a
quadtree over synthetic buildings; every cell's figures are checked against brute force (the
buildings whose representative point lies in its polygon). The demo district is run end to end
with a fourth level inserted between its subdistrict and its communities: its headline figures
must not move, and the new level's rows must combine its communities' rows.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from firegrid.config import load_config, parse_config
from firegrid.context import RunContext
from firegrid.demo import demo_config_path
from firegrid.pipeline import run_step, write_run_outputs
from firegrid.reports import grid_summary_table
from firegrid.risk import score_district
from firegrid.risk.params import FACTORS
from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.grids import MAX_LEVELS, GridLevels, assign_grids
from firegrid.spatial.io.sources import LayerSource
from firegrid.spatial.io.validate import check_grid_hierarchy
from tests import risk_synthetic as rs

AS_OF = "2025-06-30"
FIVE = ["市", "区", "街道", "社区", "网格"]


def quadtree(levels: int) -> gpd.GeoDataFrame:
    """One level-1 square, each cell split in four at the next level, down to ``levels``."""
    rows = [("L1", "city", 1, None, box(rs.X0, rs.Y0, rs.X0 + rs.SIDE, rs.Y0 + rs.SIDE))]
    parents = rows[:]
    for level in range(2, levels + 1):
        children = []
        for gid, _, _, _, cell in parents:
            x0, y0, x1, y1 = cell.bounds
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2
            quarters = [(x0, y0, mx, my), (mx, y0, x1, my), (x0, my, mx, y1), (mx, my, x1, y1)]
            for k, q in enumerate(quarters):
                children.append((f"{gid}.{k}", f"{gid}.{k}", level, gid, box(*q)))
        rows += children
        parents = children
    frame = pd.DataFrame(rows, columns=["grid_id", "name", "level", "parent_id", "geometry"])
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=rs.CRS)


@pytest.fixture(scope="module")
def five_levels():
    grids = quadtree(5)
    b = rs.buildings(600, seed=41)
    inc, _ = rs.incidents(b, range(2017, 2025), seed=42)
    return score_district(b, grids, rs.hazards(b, n=80), inc, as_of=AS_OF)


def test_five_levels_validate_and_every_building_has_a_cell_per_level(five_levels):
    grids = quadtree(5)
    assert check_grid_hierarchy(grids, LayerSource("grids.gpkg")).lines() == []
    b = five_levels.buildings
    assert [f"grid_id_l{k}" for k in range(5, 0, -1)] == [c for c in b if c.startswith("grid_id_l")]
    for level in range(1, 6):
        assert b[f"grid_id_l{level}"].notna().all()
        assert five_levels.assignment.unassigned[level] == 0
    # The parent chain: a building's level-k cell is the parent of its level-(k+1) cell.
    parent = grids.set_index("grid_id")["parent_id"]
    for level in range(1, 5):
        up = b[f"grid_id_l{level + 1}"].map(parent)
        assert (up == b[f"grid_id_l{level}"]).all()


def test_five_levels_every_cell_equals_its_members(five_levels):
    b, g = five_levels.buildings, five_levels.grids
    assert sorted(set(g["level"])) == [1, 2, 3, 4, 5]
    pts = b.geometry.representative_point()
    for level, cells in g.groupby("level"):
        assert cells["n_buildings"].sum() == len(b), level
        assert cells["hazards_open"].sum() == b["hazards_open"].sum(), level
    for _, row in g.iterrows():
        members = b[pts.within(row.geometry).to_numpy()]
        assert row["n_buildings"] == len(members), row.grid_id
        assert row["n_high_risk"] == (members["risk_grade"] <= 2).sum()
        assert row["residents"] == members["residents"].astype(float).sum()
        assert row["expected_fires"] == pytest.approx(members["p_fire"].sum())
        if len(members):
            assert row["risk_index_mean"] == pytest.approx(members["risk_index"].mean())
            assert row["risk_index_max"] == pytest.approx(members["risk_index"].max())
            for f in FACTORS:
                assert row[f"c_{f}_mean"] == pytest.approx(members[f"c_{f}"].mean()), f
        else:
            assert np.isnan(row["risk_index_mean"])


def test_five_levels_parents_are_building_weighted_sums_of_children(five_levels):
    g = five_levels.grids
    for _, parent in g[g["level"] < 5].iterrows():
        kids = g[g["parent_id"] == parent["grid_id"]]
        assert len(kids) == 4
        assert parent["n_buildings"] == kids["n_buildings"].sum()
        assert parent["n_grade_1"] == kids["n_grade_1"].sum()
        weighted = (kids["risk_index_mean"].fillna(0) * kids["n_buildings"]).sum()
        assert parent["risk_index_mean"] == pytest.approx(weighted / parent["n_buildings"])


def test_five_levels_grid_summary_lists_every_level(five_levels):
    table = grid_summary_table(five_levels.grids, user_columns=quadtree(5).columns)
    assert table["level"].tolist() == sorted(table["level"])
    assert table.groupby("level").size().to_dict() == {1: 1, 2: 4, 3: 16, 4: 64, 5: 256}
    assert (table.groupby("level")["n_buildings"].sum() == 600).all()


def test_hierarchy_errors_name_the_cell():
    grids = quadtree(4)
    # A level-4 cell filed under the level-2 cell: its parent is two levels up.
    pos = int(np.flatnonzero(grids["level"] == 4)[0])
    grids.loc[pos, "parent_id"] = "L1.0"
    lines = check_grid_hierarchy(grids, LayerSource("grids.gpkg")).lines()
    assert any("'L1.0' is level 2, expected level 3" in line for line in lines), lines
    for bad in (0, MAX_LEVELS + 1, 2.5, "二"):
        g = quadtree(2)
        g["level"] = g["level"].astype(object)
        g.loc[1, "level"] = bad
        with pytest.raises(InputError, match=f"no whole number from 1 to {MAX_LEVELS}"):
            assign_grids(g.iloc[[2]], g)


def test_level_names():
    levels = GridLevels.from_mapping({"level_names": FIVE})
    assert levels.name(3) == "街道" and levels.name(6) == "level 6"
    assert levels.level("社区") == 4 and levels.level(2) == 2
    assert GridLevels().name(2) == "level 2"
    with pytest.raises(ConfigError, match="no grid level '村'"):
        levels.level("村")
    with pytest.raises(ConfigError, match=r"\[grids\] level_names names a level twice"):
        GridLevels.from_mapping({"level_names": ["区", "区"]})
    with pytest.raises(ConfigError, match=r"\[grids\] level_names must be"):
        GridLevels.from_mapping({"level_names": "区"})
    with pytest.raises(ConfigError, match="at most 9"):
        GridLevels.from_mapping({"level_names": [str(k) for k in range(10)]})
    levels.check(quadtree(5))
    with pytest.raises(InputError, match=r"level-5 cell, but \[grids\] level_names names 4"):
        GridLevels(tuple(FIVE[:4])).check(quadtree(5))


def _demo_config(tmp_path: Path, **sections):
    path = Path(demo_config_path())
    data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    data.update(sections)
    return parse_config(data, path=path)


def test_level_names_in_config_are_checked_against_the_grids(tmp_path):
    config = _demo_config(tmp_path, grids={"level_names": ["街道", "社区"]})
    ctx = RunContext(config)
    with pytest.raises(InputError) as caught:
        run_step(ctx, "load")
    message = str(caught.value)
    assert "grids.gpkg" in message and "level-3 cell" in message and "街道, 社区" in message


def _with_areas(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The demo grids with a level of two areas (片区) between the subdistrict and its eight
    communities: levels 1 subdistrict, 2 area, 3 community, 4 cell."""
    level = grids["level"].astype(int)
    communities = grids.loc[level == 2, "grid_id"].tolist()
    halves = {"AREA-A": communities[:4], "AREA-B": communities[4:]}
    top = grids.loc[level == 1, "grid_id"].iloc[0]
    out = grids.copy()
    out["level"] = level.where(level == 1, level + 1)
    for area, members in halves.items():
        out.loc[out["grid_id"].isin(members), "parent_id"] = area
    areas = gpd.GeoDataFrame(
        {
            "grid_id": list(halves),
            "name": ["片区甲", "片区乙"],
            "level": 2,
            "parent_id": top,
        },
        geometry=[grids[grids["grid_id"].isin(m)].geometry.union_all() for m in halves.values()],
        crs=grids.crs,
    )
    return gpd.GeoDataFrame(pd.concat([out, areas], ignore_index=True), crs=grids.crs)


@pytest.mark.slow
def test_demo_with_four_levels_end_to_end(tmp_path):
    config = _demo_config(tmp_path, grids={"level_names": ["街道", "片区", "社区", "网格"]})
    ctx = RunContext(config)
    run_step(ctx, "load")
    assert ctx.figures["district"]["grid_levels"] == {1: "街道", 2: "片区", 3: "社区"}
    # The grids layer's schema takes levels 1-3 only (spatial/io/layers.py), so the fourth
    # level is inserted after reading; everything downstream runs as in a run.
    grids = _with_areas(ctx.district.layers["grids"])
    assert check_grid_hierarchy(grids, LayerSource("grids")).lines() == []
    ctx.district.layers["grids"] = grids
    ctx.cells, _ = assign_grids(ctx.district.layers["buildings"], grids)
    for step in ("network", "access", "water", "risk"):
        run_step(ctx, step)
    headline = " ".join(ctx.headline)
    for figure in ("826 of 2,560", "768 of 2,560", "792 (30.9 %) in 124", "41 · 2 较大 425"):
        assert figure in headline
    written = write_run_outputs(ctx, tmp_path / "out", with_map=False)
    table = pd.read_csv(written["grid_summary.csv"], encoding="utf-8-sig", dtype={"grid_id": str})
    assert table.groupby("level").size().to_dict() == {1: 1, 2: 2, 3: 8, 4: 66}
    assert (table.groupby("level")["n_buildings"].sum() == 2560).all()
    rows = table.set_index("grid_id")
    assert rows.loc["DEMO", "n_covered_3min"] == 826
    for area in ("AREA-A", "AREA-B"):
        kids = table[table["parent_id"] == area]
        a = rows.loc[area]
        for col in ("n_buildings", "n_covered_3min", "n_water_deficient", "n_grade_1"):
            assert a[col] == kids[col].sum(), (area, col)
        mean = (kids["risk_index_mean"] * kids["n_buildings"]).sum() / a["n_buildings"]
        assert a["risk_index_mean"] == pytest.approx(mean, abs=1e-3)  # the CSV keeps 3 decimals
    gpkg = gpd.read_file(written["results.gpkg"], layer="buildings")
    assert {"grid_id_l1", "grid_id_l2", "grid_id_l3", "grid_id_l4"} <= set(gpkg.columns)


def test_demo_config_reads_without_grids_section():
    assert load_config(demo_config_path()).params["grids"] == GridLevels()
