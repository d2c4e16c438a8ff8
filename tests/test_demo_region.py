"""The embedded synthetic demo region: reproducible, four tiling grid levels, streets and
stations that cross subdistrict borders, and loadable by the district and region readers."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

REGION = Path(__file__).resolve().parents[1] / "data" / "region"
UTM = "EPSG:32651"

pytestmark = pytest.mark.skipif(
    not (REGION / "region.toml").exists(),
    reason=f"demo region not found at {REGION} (python data/make_region.py)",
)


def _grid_levels_beyond_three() -> bool:
    from firegrid.spatial.io.layers import SCHEMAS

    level = SCHEMAS["grids"].column("level")
    return level.hi is None or level.hi >= 4


needs_four_levels = pytest.mark.skipif(
    not _grid_levels_beyond_three(),
    reason="the grids layer schema (spatial/io/layers.py) still caps level at 3; the demo "
    "region has 4 levels",
)


def _load_make_region():
    spec = importlib.util.spec_from_file_location("make_region", REGION.parent / "make_region.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return gpd.read_file(REGION / "grids.gpkg", layer="grids").to_crs(UTM)


@pytest.fixture(scope="module")
def subdistricts(grids) -> gpd.GeoDataFrame:
    return grids.loc[grids["level"] == 2, ["grid_id", "geometry"]].rename(
        columns={"grid_id": "sub"}
    )


def _subdistrict_of(points: gpd.GeoSeries, subdistricts: gpd.GeoDataFrame) -> np.ndarray:
    """Subdistrict of each point by a plain spatial join (not FireGrid's grid assignment)."""
    pts = gpd.GeoDataFrame(geometry=points.reset_index(drop=True), crs=points.crs)
    hit = gpd.sjoin(pts, subdistricts, predicate="within", how="left")
    assert not hit.index.duplicated().any()
    return hit["sub"].to_numpy()


def test_regeneration_is_byte_identical_to_the_committed_copy(tmp_path):
    _load_make_region().generate(tmp_path)
    committed = sorted(p.name for p in REGION.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == committed
    changed = [n for n in committed if (tmp_path / n).read_bytes() != (REGION / n).read_bytes()]
    assert changed == []


def test_the_region_is_small_enough_to_carry():
    assert sum(p.stat().st_size for p in REGION.iterdir()) < 3_000_000


def test_four_grid_levels_chain_and_tile_their_parents(grids):
    counts = grids["level"].value_counts().sort_index().to_dict()
    assert counts[1] == 1 and counts[2] == 4 and counts[3] >= 8 and counts[4] > counts[3]
    ids = set(grids["grid_id"])
    assert len(ids) == len(grids)
    by_id = grids.set_index("grid_id")
    for level in (2, 3, 4):
        children = grids[grids["level"] == level]
        assert children["parent_id"].isin(ids).all()
        assert (by_id.loc[children["parent_id"], "level"].to_numpy() == level - 1).all()
        for parent_id, group in children.groupby("parent_id"):
            parent = by_id.loc[parent_id, "geometry"]
            # exact tiling: children cover the parent without gaps or overlaps
            assert abs(group.area.sum() - parent.area) < 1e-3
            assert shapely.union_all(group.geometry.values).symmetric_difference(parent).area < 1e-3


def test_streets_cross_every_internal_border(subdistricts):
    root = ET.parse(REGION / "roads.osm").getroot()
    xy = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    lines = [
        shapely.LineString([xy[nd.get("ref")] for nd in w.iter("nd")]) for w in root.iter("way")
    ]
    ways = gpd.GeoDataFrame(geometry=lines, crs="EPSG:4326").to_crs(UTM)
    hit = gpd.sjoin(ways, subdistricts, predicate="crosses")
    pairs = {}
    for _, subs in hit.groupby(level=0)["sub"]:
        for a in subs:
            for b in subs:
                if a < b:
                    pairs[(a, b)] = pairs.get((a, b), 0) + 1
    # every pair of neighbouring subdistricts is joined by several streets
    touching = {
        (a.sub, b.sub)
        for a in subdistricts.itertuples()
        for b in subdistricts.itertuples()
        if a.sub < b.sub and a.geometry.intersection(b.geometry).length > 0
    }
    assert len(touching) >= 4
    assert all(pairs.get(p, 0) >= 5 for p in touching), pairs


def test_no_building_straddles_a_cell_edge(grids):
    buildings = gpd.read_file(REGION / "buildings.gpkg", layer="buildings").to_crs(UTM)
    assert 2000 <= len(buildings) <= 6000
    cells = grids.loc[grids["level"] == 4, ["grid_id", "geometry"]]
    inside = gpd.sjoin(buildings[["building_id", "geometry"]], cells, predicate="within")
    assert inside["building_id"].is_unique
    assert len(inside) == len(buildings)


@needs_four_levels
def test_the_district_style_config_validates():
    from firegrid.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(REGION / "district.toml")])
    assert code == 0, out.getvalue() + err.getvalue()


def test_the_region_config_splits_by_the_subdistrict_level():
    from firegrid.region.config import load_region_config

    cfg = load_region_config(REGION / "region.toml")
    assert cfg.split and cfg.partition_level == 2
    assert cfg.level_name(2) == "街道"
    assert cfg.as_of is not None and cfg.as_of.isoformat() == "2026-06-30"


@pytest.fixture(scope="module")
def region_access(subdistricts):
    """Access on the whole region in one process, plus each building's and station's
    subdistrict by a plain spatial join."""
    from firegrid.pipeline import run_pipeline

    ctx = run_pipeline(REGION / "district.toml", until="access", progress=False)
    b = ctx.layers["buildings"]
    st = ctx.layers["stations"]
    subs = subdistricts.to_crs(b.crs)
    b_sub = _subdistrict_of(b.representative_point(), subs)
    st_sub = dict(zip(st["station_id"], _subdistrict_of(st.geometry, subs), strict=True))
    return ctx, b, st, b_sub, st_sub


@needs_four_levels
@pytest.mark.parametrize(
    ("kind", "station_col", "time_col", "covered_col"),
    [
        ("fire_station", "fire_station_id", "t_fire_s", "covered_5min"),
        ("micro_station", "micro_station_id", "t_micro_s", "covered_3min"),
    ],
)
def test_a_station_serves_buildings_across_a_border(
    region_access, kind, station_col, time_col, covered_col
):
    from firegrid.spatial.access.travel_times import building_access, compile_graphs

    ctx, b, st, b_sub, st_sub = region_access
    assert not any(s is None or s != s for s in st_sub.values())  # every station in the region
    served_from = b[station_col].map(st_sub).to_numpy()
    across = b[covered_col].to_numpy(bool) & (served_from != b_sub)
    assert across.sum() >= 10, f"{kind}: {across.sum()} buildings served across a border"

    # Within their own subdistrict's stations only (what a partition without a halo would
    # see), those buildings are reached later, and some of them not within the target.
    params = ctx.config.params["access"]
    graphs = compile_graphs(ctx.network, params)
    worse = lost = 0
    for sub in np.unique(b_sub[across]):
        rows = np.flatnonzero(across & (b_sub == sub))
        own = st[st["station_id"].map(st_sub).eq(sub).to_numpy()]
        alone = building_access(
            b.iloc[rows][["building_id", "geometry"]], own, graphs, params=params
        )
        t_alone = alone[time_col].to_numpy(float)
        t_region = b[time_col].to_numpy(float)[rows]
        assert (np.nan_to_num(t_alone, nan=np.inf) >= t_region - 1e-6).all()
        worse += int((np.nan_to_num(t_alone, nan=np.inf) > t_region + 1e-6).sum())
        lost += int((~alone[covered_col].to_numpy(bool)).sum())
    assert worse == across.sum()
    assert lost >= 1
