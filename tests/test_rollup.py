"""Grid roll-up: every level's figures equal the sums and means over its member buildings."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from firegrid.risk import score_district
from firegrid.risk.params import FACTORS
from firegrid.risk.rollup import rollup
from firegrid.spatial.errors import InputError
from firegrid.spatial.io.grids import assign_grids
from tests import risk_synthetic as rs

AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def scored():
    b0 = rs.buildings(900, seed=31)
    inc, _ = rs.incidents(b0, range(2017, 2025), seed=32)
    b = rs.with_gaps(b0, 0.03)
    res = score_district(b, rs.grids(), rs.hazards(b, n=200), inc, as_of=AS_OF)
    return res


def _members(buildings, cell) -> np.ndarray:
    """Brute force: buildings whose representative point lies in the cell polygon."""
    pts = buildings.geometry.representative_point()
    return pts.within(cell).to_numpy()


def test_every_level_equals_sums_and_means_of_its_members(scored):
    b, g = scored.buildings, scored.grids.set_index("grid_id")
    assert {1, 2, 3} == set(g["level"])
    checked = 0
    for gid, row in g.iterrows():
        m = _members(b, row.geometry)
        members = b[m]
        assert row["n_buildings"] == m.sum(), gid
        assert row["residents"] == members["residents"].astype(float).sum()
        assert row["hazards_open"] == members["hazards_open"].sum()
        assert row["hazards_overdue"] == members["hazards_overdue"].sum()
        assert row["n_high_risk"] == (members["risk_grade"] <= 2).sum()
        for k in (1, 2, 3, 4):
            assert row[f"n_grade_{k}"] == (members["risk_grade"] == k).sum()
        assert row["n_water_deficient"] == members["water_deficient"].sum()
        assert row["expected_fires"] == pytest.approx(members["p_fire"].sum())
        if m.sum() == 0:
            assert np.isnan(row["risk_index_mean"]) and np.isnan(row["share_high_risk"])
            continue
        checked += 1
        assert row["risk_index_mean"] == pytest.approx(members["risk_index"].mean())
        assert row["risk_index_max"] == pytest.approx(members["risk_index"].max())
        assert row["risk_index_median"] == pytest.approx(members["risk_index"].median())
        assert row["share_high_risk"] == pytest.approx((members["risk_grade"] <= 2).mean())
        assert row["share_covered_3min"] == pytest.approx(
            members["covered_3min"].astype(float).mean()
        )
        assert row["share_covered_5min"] == pytest.approx(members["covered_5min"].mean())
        assert row["share_water_deficient"] == pytest.approx(members["water_deficient"].mean())
        for f in FACTORS:
            assert row[f"c_{f}_mean"] == pytest.approx(members[f"c_{f}"].mean()), f
        # The mean contributions explain the grid's mean index.
        contrib = sum(row[f"c_{f}_mean"] for f in FACTORS)
        assert contrib == pytest.approx(row["risk_index_mean"])
    assert checked >= 15


def test_levels_agree_parent_equals_children_plus_direct(scored):
    b, g = scored.buildings, scored.grids
    rep = scored.assignment
    assert g.loc[g["level"] == 1, "n_buildings"].sum() == len(b)
    additive = {
        "n_buildings": len,
        "residents": lambda d: d["residents"].astype(float).sum(),
        "hazards_open": lambda d: d["hazards_open"].sum(),
        "n_high_risk": lambda d: (d["risk_grade"] <= 2).sum(),
        "n_water_deficient": lambda d: d["water_deficient"].sum(),
    }
    for _, parent in g[g["level"] < 3].iterrows():
        children = g[g["parent_id"] == parent["grid_id"]]
        own, finer = f"grid_id_l{parent['level']}", f"grid_id_l{parent['level'] + 1}"
        # Buildings in the parent but in none of its children (the parent's own direct members).
        direct = b[(b[own] == parent["grid_id"]) & b[finer].isna()]
        for col, total in additive.items():
            assert parent[col] == children[col].sum() + total(direct), (parent["grid_id"], col)
        weighted = (children["risk_index_mean"].fillna(0) * children["n_buildings"]).sum()
        expect = (weighted + direct["risk_index"].sum()) / parent["n_buildings"]
        assert parent["risk_index_mean"] == pytest.approx(expect)
    # The synthetic north-east quarter has no level-3 cell: its buildings were placed directly.
    assert rep.direct[2] == rep.unassigned[3] > 0
    assert rep.unassigned[2] == rep.unassigned[1] == 0
    assert rep.disagree[2] == rep.disagree[1] == 0


def test_parent_chain_wins_over_geometry_and_is_reported():
    grids = rs.grids()
    # Mis-file one level-3 cell under the wrong community.
    wrong = grids.index[grids["grid_id"] == "C00-00"][0]
    grids.loc[wrong, "parent_id"] = "C10"
    b = rs.buildings(300, seed=33, access=False)
    cells, rep = assign_grids(b, grids)
    in_cell = cells["grid_id_l3"] == "C00-00"
    assert in_cell.sum() > 0
    assert (cells.loc[in_cell, "grid_id_l2"] == "C10").all()
    assert rep.disagree[2] == in_cell.sum()
    assert any("parent_id" in line for line in rep.lines())
    out, _ = rollup(b, grids, cells=cells)
    by = out.set_index("grid_id")
    assert by.loc["C10", "n_buildings"] == sum(
        by.loc[c, "n_buildings"] for c in grids.loc[grids["parent_id"] == "C10", "grid_id"]
    )


def test_rollup_without_scores_and_error_cases():
    b = rs.buildings(50, seed=34, access=False)
    out, rep = rollup(b, rs.grids())
    assert "risk_index_mean" not in out and "share_covered_3min" not in out
    assert out.loc[out["level"] == 1, "n_buildings"].iloc[0] == 50
    assert out.loc[out["level"] == 1, "residents"].iloc[0] == b["residents"].sum()
    with pytest.raises(InputError, match="degrees"):
        rollup(b.to_crs(4326), rs.grids().to_crs(4326))
    bad = rs.grids().drop(columns="level")
    with pytest.raises(InputError, match="level"):
        rollup(b, bad)


def test_point_on_shared_edge_is_counted_once():
    grids = gpd.GeoDataFrame(
        {"grid_id": ["S", "A", "B"], "level": [1, 2, 2], "parent_id": [None, "S", "S"]},
        geometry=[box(0, 0, 20, 10), box(0, 0, 10, 10), box(10, 0, 20, 10)],
        crs=rs.CRS,
    )
    b = gpd.GeoDataFrame(
        {"building_id": ["x", "y"], "residents": [5, 7]},
        geometry=[Point(10, 5), Point(15, 5)],
        crs=rs.CRS,
    )
    out, _ = rollup(b, grids)
    n = pd.Series(out["n_buildings"].to_numpy(), index=out["grid_id"])
    assert n.to_dict() == {"S": 2, "A": 1, "B": 1}


def test_how_a_figure_rolls_up_is_read_from_the_column_registry(scored, monkeypatch):
    from firegrid.spatial import columns

    b = scored.buildings
    g = scored.grids[["grid_id", "name", "level", "parent_id", "geometry"]]
    before, _ = rollup(b, g)
    key = ("grids", "residents")
    as_max = columns.Column(**{**columns.COLUMNS[key].__dict__, "rollup": "max"})
    monkeypatch.setitem(columns.COLUMNS, key, as_max)
    after, _ = rollup(b, g)
    cell = after.set_index("grid_id")
    for gid, row in cell[cell["n_buildings"] > 0].iterrows():
        members = b[_members(b, row.geometry)]
        assert row["residents"] == members["residents"].astype(float).max(), gid
    assert (after["residents"] <= before["residents"]).all()
    assert (after["residents"] < before["residents"]).any()
    # every other figure is unchanged
    rest = [c for c in before.columns if c not in ("residents", "geometry")]
    pd.testing.assert_frame_equal(pd.DataFrame(after[rest]), pd.DataFrame(before[rest]))


def test_old_residential_shares_follow_the_configured_year_and_imputed_years():
    """``share_old_res_3min``/``share_old_res_5min_fire`` are of the very buildings counted in
    ``n_old_residential``: the risk features' flag, with ``[risk.features] old_built_up_to``
    and imputed years, not the raw ``year_built`` against 2000."""
    from firegrid.risk.params import RiskParams

    b = rs.with_gaps(rs.buildings(600, seed=35), 0.1, seed=36)
    params = RiskParams.from_mapping({"features": {"old_built_up_to": 1995}})
    res = score_district(b, rs.grids(), as_of=AS_OF, params=params)
    scored, g = res.buildings, res.grids.set_index("grid_id")
    old = scored["old_residential"].eq(1).to_numpy()
    raw = scored["use"].eq("residential") & scored["year_built"].astype(float).le(2000)
    raw = raw.fillna(False).to_numpy(dtype=bool)
    checked, differ = 0, 0
    for gid, row in g.iterrows():
        m = _members(scored, row.geometry)
        assert row["n_old_residential"] == (old & m).sum(), gid
        for share, covered in (("share_old_res_3min", "covered_3min"),
                               ("share_old_res_5min_fire", "covered_5min")):  # fmt: skip
            reached = scored[covered].fillna(False).to_numpy(dtype=bool)
            if not (old & m).any():
                assert np.isnan(row[share]), (gid, share)
                continue
            assert row[share] == pytest.approx(reached[old & m].mean()), (gid, share)
            checked += 1
        differ += (old & m).sum() != (raw & m).sum()
    assert checked >= 20 and differ > 0
    # Buildings without a year count as old once imputation gives them an old year.
    imputed = scored["imputed_year_built"].to_numpy(dtype=bool)
    assert (old & imputed).any()
