"""Per-grid tables compared value by value, per ``grid_id``, with an independent reference.

Each table (water per grid, access coverage per grid, the risk roll-up and the grid summary table
that joins them) is computed on a small district, then again after shuffling the row order of
every input (buildings, grids, hydrants, water sources, the tables being joined). Every figure of
every cell must equal a reference computed here from first principles: buildings sit well
inside the square cells of ``tests.risk_synthetic.grids``, so the cell of each one follows from
its coordinates by integer division, with no spatial join; each figure is then a plain
sum / mean / max over the members of a cell.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from firegrid.reports import grid_summary_table
from firegrid.risk.rollup import rollup
from firegrid.spatial.access.travel_times import coverage_by_grid
from firegrid.spatial.io.grids import aggregate_by_grid, assign_grids
from firegrid.spatial.water.by_grid import water_by_grid
from tests import risk_synthetic as rs

N = 160
OLD_UP_TO = 1995  # the fixture's [risk.features] old_built_up_to


def _cells_of(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Reference cell of each point: 1000 m communities, 500 m cells; C11's NE quarter has none."""
    i = ((x - rs.X0) // 1000).astype(int)
    j = ((y - rs.Y0) // 1000).astype(int)
    a = (((x - rs.X0) % 1000) // 500).astype(int)
    b = (((y - rs.Y0) % 1000) // 500).astype(int)
    l2 = np.array([f"C{p}{q}" for p, q in zip(i, j, strict=True)], dtype=object)
    l3 = np.array(
        [
            None if (p, q, r, s) == (1, 1, 1, 1) else f"C{p}{q}-{r}{s}"
            for p, q, r, s in zip(i, j, a, b, strict=True)
        ],
        dtype=object,
    )
    return pd.DataFrame({"l1": "S", "l2": l2, "l3": l3})


def _points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points at least 30 m inside a 500 m cell, none in cell C00-00 (kept empty on purpose)."""
    cell_x = rng.integers(0, 4, n) * 500.0
    cell_y = rng.integers(0, 4, n) * 500.0
    cell_x[(cell_x == 0) & (cell_y == 0)] = 500.0
    x = rs.X0 + cell_x + rng.uniform(30, 450, n)
    y = rs.Y0 + cell_y + rng.uniform(30, 450, n)
    return x, y


@pytest.fixture(scope="module")
def district():
    rng = np.random.default_rng(16)
    x, y = _points(rng, N)
    covered3 = rng.random(N) < 0.6
    t_micro = np.where(covered3, rng.uniform(60, 180, N), rng.uniform(181, 400, N))
    t_micro[rng.random(N) < 0.05] = np.nan  # unreachable
    t_fire = rng.uniform(100, 500, N)
    grade = rng.integers(1, 5, N)
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"B{k:03d}" for k in range(N)],
            "use": rng.choice(["residential", "shop", "office"], N, p=[0.7, 0.2, 0.1]),
            "year_built": rng.integers(1970, 2020, N),
            "residents": rng.integers(0, 90, N).astype(float),
            "t_micro_s": t_micro,
            "t_fire_s": t_fire,
            "covered_3min": t_micro <= 180,
            "covered_5min": t_fire <= 300,
            "shortfall_3min_s": np.maximum(t_micro - 180, 0),
            "shortfall_5min_s": np.maximum(t_fire - 300, 0),
            "water_deficient": rng.random(N) < 0.3,
            "water_deficiency": np.where(rng.random(N) < 0.1, np.nan, rng.uniform(0, 1, N)),
            "risk_index": rng.uniform(0, 100, N),
            "risk_grade": grade,
            "c_age": rng.uniform(0, 7, N),
            "c_wiring": rng.uniform(0, 10, N),
            "hazards_open": rng.integers(0, 3, N),
            "hazards_overdue": rng.integers(0, 2, N),
            "p_fire": rng.uniform(0, 0.05, N),
        },
        geometry=[box(a, b, a + 15, b + 12) for a, b in zip(x, y, strict=True)],
        crs=rs.CRS,
    )
    # As the risk features write it with [risk.features] old_built_up_to = 1995: the one
    # definition every per-grid old-residential figure follows (not the raw-year 2000 default).
    buildings["old_residential"] = (
        (buildings["use"] == "residential") & (buildings["year_built"] <= OLD_UP_TO)
    ).astype(float)
    hx, hy = _points(rng, 40)
    hydrants = gpd.GeoDataFrame(
        {
            "hydrant_id": [f"H{k}" for k in range(40)],
            "status": rng.choice(["ok", "broken", "missing"], 40, p=[0.6, 0.25, 0.15]),
        },
        geometry=[Point(a, b) for a, b in zip(hx, hy, strict=True)],
        crs=rs.CRS,
    )
    sx, sy = _points(rng, 12)
    sources = gpd.GeoDataFrame(
        {
            "source_id": [f"W{k}" for k in range(12)],
            # fire_pool ≥ 50 m³ counts; a 30 m³ pool and a tank without truck access do not;
            # natural water counts with truck access.
            "kind": ["fire_pool", "fire_pool", "tank", "natural"] * 3,
            "capacity_m3": [100.0, 30.0, 200.0, np.nan] * 3,
            "truck_access": [True, True, False, True] * 3,
        },
        geometry=[Point(a, b) for a, b in zip(sx, sy, strict=True)],
        crs=rs.CRS,
    )
    return rs.grids(), buildings, hydrants, sources


def _shuffle(frame, seed):
    perm = np.random.default_rng(seed).permutation(len(frame))
    out = frame.iloc[perm].copy()
    out.index = pd.Index(np.random.default_rng(seed + 1).permutation(len(frame)) + 1000)
    return out


def _members(points_x, points_y, grid_ids) -> dict[str, np.ndarray]:
    cells = _cells_of(points_x, points_y)
    return {
        g: ((cells["l1"] == g) | (cells["l2"] == g) | (cells["l3"] == g)).to_numpy()
        for g in grid_ids
    }


def _xy(frame) -> tuple[np.ndarray, np.ndarray]:
    p = frame.geometry.representative_point()
    return p.x.to_numpy(), p.y.to_numpy()


def _check(table: pd.DataFrame, expected: dict[str, dict[str, float]]) -> None:
    """Every expected figure of every grid, looked up by grid_id in ``table``."""
    t = table.set_index(table["grid_id"].astype(str))
    assert sorted(t.index) == sorted(expected)
    for gid, figures in expected.items():
        for col, value in figures.items():
            got = t.loc[gid, col]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                assert pd.isna(got), (gid, col, got)
            else:
                assert got == pytest.approx(value, rel=1e-12, abs=1e-9), (gid, col, got, value)


def _share(num: float, den: float) -> float:
    return num / den if den > 0 else np.nan


def _reference_water(buildings, hydrants, sources, grid_ids):
    mb = _members(*_xy(buildings), grid_ids)
    mh = _members(*_xy(hydrants), grid_ids)
    ms = _members(*_xy(sources), grid_ids)
    bad = buildings["water_deficient"].to_numpy(dtype=bool)
    score = buildings["water_deficiency"].to_numpy(dtype=float)
    st = hydrants["status"].to_numpy()
    kind, cap = sources["kind"].to_numpy(), sources["capacity_m3"].to_numpy(dtype=float)
    counts = ((kind == "fire_pool") & (cap >= 50)) | (kind == "natural")
    out = {}
    for g in grid_ids:
        m, h, s = mb[g], mh[g], ms[g]
        known = m & ~np.isnan(score)
        out[g] = {
            "n_buildings": m.sum(),
            "n_water_deficient": (bad & m).sum(),
            "n_water_covered": (~bad & m).sum(),
            "share_water_deficient": _share((bad & m).sum(), m.sum()),
            "water_deficiency_score": score[known].mean() if known.any() else np.nan,
            "n_hydrants": h.sum(),
            "n_hydrants_ok": (h & (st == "ok")).sum(),
            "n_hydrants_broken": (h & (st == "broken")).sum(),
            "n_hydrants_missing": (h & (st == "missing")).sum(),
            "n_water_sources": s.sum(),
            "n_water_sources_usable": (s & counts).sum(),
            "capacity_m3": np.nansum(np.where(s, cap, 0.0)),
            "capacity_usable_m3": np.nansum(np.where(s & counts, cap, 0.0)),
        }
    return out


def _reference_coverage(buildings, grid_ids):
    mb = _members(*_xy(buildings), grid_ids)
    c3 = buildings["covered_3min"].to_numpy(dtype=bool)
    c5 = buildings["covered_5min"].to_numpy(dtype=bool)
    res = buildings["residents"].to_numpy(dtype=float)
    unreach = np.isnan(buildings["t_micro_s"].to_numpy(dtype=float)) | np.isnan(
        buildings["t_fire_s"].to_numpy(dtype=float)
    )
    sf3 = buildings["shortfall_3min_s"].to_numpy(dtype=float)
    sf5 = buildings["shortfall_5min_s"].to_numpy(dtype=float)
    out = {}
    for g in grid_ids:
        m = mb[g]

        def mx(v, m=m):
            v = v[m & ~np.isnan(v)]
            return v.max() if len(v) else np.nan

        out[g] = {
            "n_buildings": m.sum(),
            "n_covered_3min": (c3 & m).sum(),
            "residents": res[m].sum(),
            "share_residents_3min": _share(res[m & c3].sum(), res[m].sum()),
            "n_covered_5min": (c5 & m).sum(),
            "share_residents_5min_fire": _share(res[m & c5].sum(), res[m].sum()),
            "n_unreachable": (unreach & m).sum(),
            "max_shortfall_3min_s": mx(sf3),
            "max_shortfall_5min_s": mx(sf5),
        }
    return out


def _reference_rollup(buildings, grid_ids):
    mb = _members(*_xy(buildings), grid_ids)
    b = {c: buildings[c].to_numpy(dtype=float) for c in buildings.columns if c != "geometry"
         and c not in ("building_id", "use")}  # fmt: skip
    out = {}
    for g in grid_ids:
        m = mb[g]
        n = m.sum()
        ri = b["risk_index"][m]
        grade = b["risk_grade"][m]
        old, c3, c5 = (
            b[c].astype(bool) for c in ("old_residential", "covered_3min", "covered_5min")
        )
        out[g] = {
            "n_buildings": n,
            "residents": b["residents"][m].sum(),
            "risk_index_mean": ri.mean() if n else np.nan,
            "risk_index_median": np.median(ri) if n else np.nan,
            "risk_index_max": ri.max() if n else np.nan,
            "n_high_risk": (grade <= 2).sum(),  # grades 1 and 2 by default
            "share_high_risk": _share((grade <= 2).sum(), n),
            **{f"n_grade_{k}": (grade == k).sum() for k in (1, 2, 3, 4)},
            "n_old_residential": b["old_residential"][m].sum(),
            "hazards_open": b["hazards_open"][m].sum(),
            "hazards_overdue": b["hazards_overdue"][m].sum(),
            "share_covered_3min": b["covered_3min"][m].mean() if n else np.nan,
            "share_covered_5min": b["covered_5min"][m].mean() if n else np.nan,
            "share_old_res_3min": _share((old & m & c3).sum(), (old & m).sum()),
            "share_old_res_5min_fire": _share((old & m & c5).sum(), (old & m).sum()),
            "n_water_deficient": b["water_deficient"][m].sum(),
            "share_water_deficient": b["water_deficient"][m].mean() if n else np.nan,
            "expected_fires": b["p_fire"][m].sum(),
            "c_age_mean": b["c_age"][m].mean() if n else np.nan,
            "c_wiring_mean": b["c_wiring"][m].mean() if n else np.nan,
        }
    return out


def test_reference_cells_hold_buildings_and_one_is_empty(district):
    grids, buildings, _, _ = district
    ref = _reference_coverage(buildings, grids["grid_id"])
    assert ref["S"]["n_buildings"] == N
    assert ref["C00-00"]["n_buildings"] == 0  # the empty cell: shares must be NaN there
    assert ref["C11"]["n_buildings"] > ref["C11-00"]["n_buildings"] + ref["C11-01"]["n_buildings"]
    assert sum(ref[f"C{i}{j}"]["n_buildings"] for i in (0, 1) for j in (0, 1)) == N


@pytest.mark.parametrize("shuffled", [False, True])
def test_water_by_grid_per_grid_id(district, shuffled):
    grids, buildings, hydrants, sources = district
    if shuffled:
        grids, buildings = _shuffle(grids, 1), _shuffle(buildings, 2)
        hydrants, sources = _shuffle(hydrants, 3), _shuffle(sources, 4)
    table = water_by_grid(buildings, grids, sources, hydrants=hydrants)
    _check(table, _reference_water(buildings, hydrants, sources, grids["grid_id"]))
    # Each row carries its own grid's name and level, not its neighbour's.
    t = table.set_index("grid_id")
    g = grids.set_index("grid_id")
    assert (t.loc[g.index, "name"].to_numpy() == g["name"].to_numpy()).all()
    assert (t.loc[g.index, "level"].to_numpy() == g["level"].to_numpy()).all()


@pytest.mark.parametrize("shuffled", [False, True])
def test_coverage_by_grid_per_grid_id(district, shuffled):
    grids, buildings, _, _ = district
    if shuffled:
        grids, buildings = _shuffle(grids, 5), _shuffle(buildings, 6)
    table = coverage_by_grid(buildings, grids)
    _check(table, _reference_coverage(buildings, grids["grid_id"]))
    # The geometry stays with its own grid.
    t = table.set_index("grid_id")
    for gid, geom in zip(grids["grid_id"], grids.geometry, strict=True):
        assert t.loc[gid, "geometry"].equals(geom), gid


@pytest.mark.parametrize("shuffled", [False, True])
def test_rollup_per_grid_id(district, shuffled):
    grids, buildings, _, _ = district
    if shuffled:
        grids, buildings = _shuffle(grids, 7), _shuffle(buildings, 8)
    table, _ = rollup(buildings, grids)
    _check(table, _reference_rollup(buildings, grids["grid_id"]))


def test_grid_summary_table_joins_by_grid_id(district):
    grids, buildings, hydrants, sources = district
    base, _ = rollup(_shuffle(buildings, 9), _shuffle(grids, 10))
    cover = _shuffle(coverage_by_grid(buildings, grids), 11)
    water = _shuffle(water_by_grid(buildings, grids, sources, hydrants=hydrants), 12)
    table = grid_summary_table(base, extra=[None, cover, water])  # a step that did not run: None
    assert len(table) == len(grids) and table["grid_id"].is_unique
    # Exactly the columns of the three tables, each once, geometry dropped: nothing invented.
    expected_cols = (set(base.columns) | set(cover.columns) | set(water.columns)) - {"geometry"}
    assert set(table.columns) == expected_cols and table.columns.is_unique
    ids = grids["grid_id"]
    expected = {
        g: _reference_rollup(buildings, ids)[g]
        | {k: v for k, v in _reference_coverage(buildings, ids)[g].items()
           if k not in ("n_buildings", "residents")}
        | {k: v for k, v in _reference_water(buildings, hydrants, sources, ids)[g].items()
           if k not in ("n_buildings", "n_water_deficient", "share_water_deficient")}
        for g in ids
    }  # fmt: skip
    _check(table, expected)
    # Sorted by level, then grid id; no geometry.
    assert table["level"].tolist() == sorted(table["level"].tolist())
    assert "geometry" not in table
    first_l3 = table.loc[table["level"] == 3, "grid_id"].tolist()
    assert first_l3 == sorted(first_l3)


def test_old_residential_figures_follow_the_one_per_building_flag(district):
    """The per-grid table counts old residential buildings once: its shares reached in time are
    of the same buildings as ``n_old_residential`` (the risk features' flag, with the configured
    year), whatever ``use`` and ``year_built`` alone would say."""
    grids, buildings, _, _ = district
    ids = grids["grid_id"]
    members = _members(*_xy(buildings), ids)
    raw = (buildings["use"] == "residential").to_numpy() & (buildings["year_built"] <= 2000)
    c3 = buildings["covered_3min"].to_numpy(dtype=bool)
    # The flag as imputation may set it: also every shop built before 1980.
    flagged = buildings.assign(
        old_residential=buildings["old_residential"].astype(bool)
        | ((buildings["use"] == "shop") & (buildings["year_built"] < 1980))
    )
    old = flagged["old_residential"].to_numpy(dtype=bool)
    cover = coverage_by_grid(flagged, grids)
    assert not [c for c in cover.columns if "old" in c]  # defined by the roll-up alone
    table = grid_summary_table(rollup(flagged, grids)[0], extra=[cover]).set_index("grid_id")
    differ = 0
    for g in ids:
        m = members[g]
        assert table.loc[g, "n_old_residential"] == (old & m).sum(), g
        expect = _share((old & m & c3).sum(), (old & m).sum())
        assert table.loc[g, "share_old_res_3min"] == pytest.approx(expect, nan_ok=True), g
        differ += (old & m).sum() != (raw & m).sum()
    assert differ > 0  # the raw-year definition would have counted other buildings


def test_rollup_reads_yes_no_words_like_booleans(district):
    grids, buildings, _, _ = district
    words = buildings.copy()
    for col in ("covered_3min", "covered_5min", "water_deficient"):
        words[col] = np.where(buildings[col], "是", "否")  # yes / no, as a ledger writes them
    a, _ = rollup(buildings, grids)
    b, _ = rollup(words, grids)
    for col in ("share_covered_3min", "share_covered_5min", "n_water_deficient",
                "share_water_deficient"):  # fmt: skip
        np.testing.assert_array_equal(a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float))
    assert np.nanmax(a["share_covered_3min"].to_numpy(dtype=float)) > 0


def test_assignment_report_counts_buildings_outside_the_cells(district):
    grids, buildings, _, _ = district
    out = buildings.iloc[:1].copy()
    out["geometry"] = [box(rs.X0 - 500, rs.Y0 - 500, rs.X0 - 480, rs.Y0 - 480)]  # outside S
    b = pd.concat([buildings, out], ignore_index=True)
    _, report = rollup(b, grids)
    ref = _cells_of(*_xy(buildings))
    ne = int(ref["l3"].isna().sum())  # in community C11's north-east quarter: no level-3 cell
    assert ne > 0
    assert report.unassigned == {3: ne + 1, 2: 1, 1: 1}
    assert report.direct == {3: 0, 2: ne, 1: 0}
    assert report.lines() == [
        "level 1: 1 buildings in no grid cell",
        "level 2: 1 buildings in no grid cell",
        f"level 2: {ne} buildings outside every finer cell, assigned by their point",
        f"level 3: {ne + 1} buildings in no grid cell",
    ]


def test_a_cell_with_one_building_and_count_columns_are_integers(district):
    grids, buildings, _, _ = district
    one = buildings.iloc[:1].copy()
    one["geometry"] = [box(rs.X0 + 100, rs.Y0 + 100, rs.X0 + 115, rs.Y0 + 112)]  # into C00-00
    one["risk_grade"] = 2  # high risk (grade ≤ 2)
    table, _ = rollup(pd.concat([buildings, one], ignore_index=True), grids)
    cell = table.set_index("grid_id").loc["C00-00"]
    assert cell["n_buildings"] == 1 and cell["n_high_risk"] == 1
    assert cell["share_high_risk"] == 1.0  # 1 / 1
    assert cell["risk_index_mean"] == one["risk_index"].iloc[0]
    # Counts stay integers (the CSV shows 3, not 3.0).
    for col in [c for c in table.columns if c.startswith("n_")]:
        assert pd.api.types.is_integer_dtype(table[col]), col


def test_aggregate_by_grid_without_grid_ids_lists_only_cells_with_members(district):
    grids, buildings, _, _ = district
    cells, _ = assign_grids(buildings, grids)
    out = aggregate_by_grid(cells, pd.DataFrame({"n": np.ones(len(buildings))}), "sum")
    ref = _reference_coverage(buildings, grids["grid_id"])
    expected = {g for g, v in ref.items() if v["n_buildings"] > 0}
    assert set(out.index) == expected  # no row for buildings in no cell (a NaN key)
    for g in expected:
        assert out.loc[g, "n"] == ref[g]["n_buildings"]


def test_grid_errors_name_the_grids_layer_and_column(district):
    from firegrid.spatial.errors import InputError

    grids, buildings, _, _ = district
    bad = grids.copy()
    bad["level"] = bad["level"].astype(object)
    bad.loc[bad.index[2], "level"] = "community"
    with pytest.raises(InputError) as exc:
        assign_grids(buildings, bad)
    assert exc.value.column == "level" and "grids" in exc.value.file
    assert "grids" in str(exc.value)
    with pytest.raises(Exception, match=r"\bgrids\b"):  # the layer's own name, as a word
        assign_grids(buildings, grids.to_crs("EPSG:4326"))


def test_cell_assignment_and_rollup_raise_no_warnings(district):
    # An analyst's notebook shows every warning: none is expected from a clean district, empty
    # cells (C00-00) and buildings in no level-3 cell included.
    import warnings

    grids, buildings, _, _ = district
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cells, _ = assign_grids(buildings, grids)
        table, _ = rollup(buildings, grids, cells=cells)
    assert table.set_index("grid_id").loc["C00-00", "n_buildings"] == 0


def test_grid_summary_keeps_every_grid_and_leads_with_its_identity(district):
    grids, buildings, _, _ = district
    shuffled_columns = grids[["level", "geometry", "name", "parent_id", "grid_id"]]
    base, _ = rollup(buildings, shuffled_columns)
    cover = coverage_by_grid(buildings, grids)
    partial = cover[cover["grid_id"] != "C00-01"]  # a table that lacks one grid
    table = grid_summary_table(base, extra=[partial])
    assert sorted(table["grid_id"]) == sorted(grids["grid_id"])  # no grid dropped
    row = table.set_index("grid_id").loc["C00-01"]
    assert pd.isna(row["share_residents_3min"])  # its missing figures are blank, not invented
    assert row["n_buildings"] == _reference_rollup(buildings, ["C00-01"])["C00-01"]["n_buildings"]
    # The grid's identity comes first, as in the CSV users open.
    assert list(table.columns[:4]) == ["grid_id", "name", "level", "parent_id"]


def test_water_and_coverage_tables_carry_each_grids_identity_and_crs(district):
    grids, buildings, _, _ = district
    parent = dict(zip(grids["grid_id"], grids["parent_id"], strict=True))
    water = water_by_grid(buildings, grids)  # no hydrants, no water sources
    cover = coverage_by_grid(buildings, grids)
    assert cover.crs == grids.crs
    for table in (water, cover):
        got = dict(zip(table["grid_id"], table["parent_id"], strict=True))
        assert {g: (None if pd.isna(p) else p) for g, p in got.items()} == {
            g: (None if pd.isna(p) else p) for g, p in parent.items()
        }
    # Without hydrants or sources their counts are present and zero, not missing columns.
    for col in ("n_hydrants", "n_hydrants_ok", "n_hydrants_broken", "n_hydrants_missing",
                "n_water_sources", "n_water_sources_usable", "capacity_m3", "capacity_usable_m3"):  # fmt: skip
        assert (water[col] == 0).all(), col
