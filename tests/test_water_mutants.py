"""Water figures per grid and per source, hand-computed (kills mutants mutmut left alive)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from firegrid.spatial.water.by_grid import water_by_grid
from firegrid.spatial.water.coverage import deficiency_score, hydrant_coverage
from firegrid.spatial.water.params import WaterParams
from firegrid.spatial.water.sources import water_source_status

CRS = "EPSG:32651"
X0, Y0 = 350_000.0, 3_460_000.0


def P(x, y):
    return shapely.Point(X0 + x, Y0 + y)


def B(x0, y0, x1, y1):
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def grids() -> gpd.GeoDataFrame:
    # D (level 1) = C1 | C2 | C3 (level 2), each 100 m x 100 m.
    return gpd.GeoDataFrame(
        {
            "grid_id": ["D", "C1", "C2", "C3"],
            "name": ["District", "One", "Two", "Three"],
            "level": [1, 2, 2, 2],
            "parent_id": [None, "D", "D", "D"],
        },
        geometry=[B(0, 0, 300, 100), B(0, 0, 100, 100), B(100, 0, 200, 100), B(200, 0, 300, 100)],
        crs=CRS,
    )


def covered_buildings() -> gpd.GeoDataFrame:
    # C1: one covered (score 0), one deficient (0.75); C2: one deficient (1.0) and one whose
    # flag is unknown (counts as deficient) with no score; C3: no buildings.
    return gpd.GeoDataFrame(
        {
            "building_id": ["b0", "b1", "b2", "b3"],
            "water_deficient": pd.array([False, True, True, pd.NA], dtype="boolean"),
            "water_deficiency": [0.0, 0.75, 1.0, np.nan],
        },
        geometry=[P(20, 50), P(70, 50), P(120, 50), P(170, 50)],
        crs=CRS,
    )


def hydrant_layer() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "hydrant_id": ["h0", "h1", "h2", "h3"],
            "status": ["ok", "broken", "missing", " OK "],
        },
        geometry=[P(10, 10), P(90, 90), P(110, 10), P(190, 90)],
        crs=CRS,
    )


def source_layer() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "source_id": ["pool", "roof_tank", "river", "pool_small"],
            "kind": ["fire_pool", "tank", "natural", "fire_pool"],
            "capacity_m3": pd.array([300.0, 36.0, None, 20.0], dtype="Float64"),
            "truck_access": pd.array([None, False, True, True], dtype="boolean"),
        },
        geometry=[P(30, 30), P(60, 60), P(150, 50), P(250, 50)],
        crs=CRS,
    )


def test_water_by_grid_hand_computed_table():
    zones = gpd.GeoDataFrame({"zone_id": ["z"]}, geometry=[B(50, 0, 150, 100)], crs=CRS)
    t = water_by_grid(
        covered_buildings(), grids(), source_layer(), hydrants=hydrant_layer(), zones=zones
    ).set_index("grid_id")
    assert list(t.index) == ["D", "C1", "C2", "C3"]
    assert t["name"].tolist() == ["District", "One", "Two", "Three"]
    assert t["level"].tolist() == [1, 2, 2, 2]
    assert t.loc["C1", "parent_id"] == "D" and pd.isna(t.loc["D", "parent_id"])

    assert t["n_buildings"].tolist() == [4, 2, 2, 0]
    assert t["n_water_deficient"].tolist() == [3, 1, 2, 0]
    assert t["n_water_covered"].tolist() == [1, 1, 0, 0]
    share = t["share_water_deficient"]
    assert share.loc[["D", "C1", "C2"]].tolist() == pytest.approx([0.75, 0.5, 1.0])
    assert np.isnan(share.loc["C3"])
    score = t["water_deficiency_score"]
    # mean over buildings with a score: D (0 + 0.75 + 1) / 3, C1 (0 + 0.75) / 2, C2 1 / 1
    assert score.loc[["D", "C1", "C2"]].tolist() == pytest.approx([1.75 / 3, 0.375, 1.0])
    assert np.isnan(score.loc["C3"])

    assert t["n_hydrants"].tolist() == [4, 2, 2, 0]
    assert t["n_hydrants_ok"].tolist() == [2, 1, 1, 0]
    assert t["n_hydrants_broken"].tolist() == [1, 1, 0, 0]
    assert t["n_hydrants_missing"].tolist() == [1, 0, 1, 0]

    assert t["n_water_sources"].tolist() == [4, 2, 1, 1]
    assert t["n_water_sources_usable"].tolist() == [2, 1, 1, 0]
    assert t["capacity_m3"].tolist() == pytest.approx([356.0, 336.0, 0.0, 20.0])
    assert t["capacity_usable_m3"].tolist() == pytest.approx([300.0, 300.0, 0.0, 0.0])

    assert t["deficient_area_m2"].tolist() == pytest.approx([10_000.0, 5_000.0, 5_000.0, 0.0])
    assert t["deficient_area_share"].tolist() == pytest.approx([1 / 3, 0.5, 0.5, 0.0])


def test_water_by_grid_without_hydrants_sources_or_zones():
    t = water_by_grid(covered_buildings(), grids()).set_index("grid_id")
    for col in ("n_hydrants", "n_hydrants_ok", "n_hydrants_broken", "n_hydrants_missing"):
        assert t[col].tolist() == [0, 0, 0, 0]
    assert t["n_water_sources"].tolist() == [0, 0, 0, 0]
    assert t["n_water_sources_usable"].tolist() == [0, 0, 0, 0]
    assert t["capacity_m3"].tolist() == [0.0] * 4
    assert t["capacity_usable_m3"].tolist() == [0.0] * 4
    assert "deficient_area_m2" not in t and "deficient_area_share" not in t
    assert t["n_water_deficient"].tolist() == [3, 1, 2, 0]


def test_water_by_grid_empty_zones_give_zero_area():
    zones = gpd.GeoDataFrame({"zone_id": []}, geometry=[], crs=CRS)
    t = water_by_grid(covered_buildings(), grids(), zones=zones).set_index("grid_id")
    assert t["deficient_area_m2"].tolist() == [0.0] * 4
    assert t["deficient_area_share"].tolist() == [0.0] * 4


def test_water_source_issue_texts():
    ws = gpd.GeoDataFrame(
        {
            "source_id": ["ok", "nt", "riv", "tank", "small", "unk", "well", "nogeom"],
            "kind": [
                "Fire_Pool ",
                "fire_pool",
                "natural",
                "tank",
                "tank",
                "fire_pool",
                "well",
                "natural",
            ],  # fmt: skip
            "capacity_m3": pd.array(
                [60.0, 300.0, None, 100.0, 20.4, None, 500.0, None], dtype="Float64"
            ),  # fmt: skip
            "truck_access": pd.array(
                [None, False, None, False, True, True, True, True], dtype="boolean"
            ),  # fmt: skip
        },
        geometry=[P(0, 0)] * 7 + [None],
        crs=CRS,
    )
    st = water_source_status(ws).set_index("source_id")
    assert st["source_issue"].to_dict() == {
        "ok": "",
        "nt": "no engine access to the intake",
        "riv": "natural water without a recorded engine intake",
        "tank": "tank without an engine intake (indoor supply only)",
        "small": "capacity 20 m³ under 50 m³",
        "unk": "",
        "well": "unknown kind",
        "nogeom": "no geometry",
    }
    assert st["source_counts"].to_dict() == {
        "ok": True,
        "nt": False,
        "riv": False,
        "tank": False,
        "small": False,
        "unk": True,
        "well": False,
        "nogeom": False,
    }
    strict = water_source_status(
        ws, params=WaterParams(count_unknown_capacity=False, min_source_capacity_m3=70.0)
    ).set_index("source_id")
    assert strict.loc["unk", "source_issue"] == "capacity not recorded"
    assert strict.loc["ok", "source_issue"] == "capacity 60 m³ under 70 m³"
    # natural water has no capacity rule: an unknown capacity never matters there
    assert strict.loc["riv", "source_issue"] == "natural water without a recorded engine intake"


def test_water_source_capacity_exactly_the_minimum_counts():
    ws = gpd.GeoDataFrame(
        {"source_id": ["p", "q"], "kind": ["fire_pool", "fire_pool"], "capacity_m3": [50.0, 49.6]},
        geometry=[P(0, 0), P(1, 1)],
        crs=CRS,
    )
    st = water_source_status(ws).set_index("source_id")
    assert st["source_counts"].to_dict() == {"p": True, "q": False}
    assert st.loc["q", "source_issue"] == "capacity 50 m³ under 50 m³"  # rounded for the text


def test_water_sources_without_truck_access_column():
    ws = gpd.GeoDataFrame(
        {"source_id": ["pool", "river", "tank"], "kind": ["fire_pool", "natural", "tank"]},
        geometry=[P(0, 0)] * 3,
        crs=CRS,
    )
    st = water_source_status(ws).set_index("source_id")
    # no capacity recorded counts by default; without an engine intake on record only pools do
    assert st["source_counts"].to_dict() == {"pool": True, "river": False, "tank": False}
    assert st.loc["tank", "source_issue"] == "tank without an engine intake (indoor supply only)"


def test_water_source_status_without_a_layer():
    st = water_source_status(None)
    assert len(st) == 0
    assert {"source_id", "source_counts", "source_issue"} <= set(st.columns)


def test_deficiency_score_with_another_full_ratio():
    s = deficiency_score(np.array([1.0 + 1e-12, 1.5, 2.0, 3.0, 4.0]), full_ratio=3.0)
    # just past the radius within tolerance: covered; then 0.5 + 0.5 * (r - 1) / (3 - 1)
    assert s.tolist() == pytest.approx([0.0, 0.625, 0.75, 1.0, 1.0])


def test_water_by_grid_without_name_or_parent_columns():
    g = grids().drop(columns=["name", "parent_id"])
    t = water_by_grid(covered_buildings(), g)
    assert t["name"].isna().all() and len(t["name"]) == 4
    assert t["parent_id"].isna().all() and len(t["parent_id"]) == 4
    assert t["n_buildings"].tolist() == [4, 2, 2, 0]


def test_hydrant_far_from_every_street_is_named_in_a_warning():
    from tests.test_water import buildings, hydrants, straight_street

    with pytest.warns(UserWarning) as caught:
        hydrant_coverage(straight_street(), buildings([(100, 10)]), hydrants([(200, 80)]))
    texts = [str(w.message) for w in caught]
    assert any(
        t.startswith("hydrants farther than 50 m from every street") and "H0 (80 m)" in t
        for t in texts
    ), texts


def test_building_with_an_empty_geometry_is_reported_as_such():
    from tests.test_water import hydrants, straight_street

    b = gpd.GeoDataFrame(
        {"building_id": ["near", "empty", "none"]},
        geometry=[P(100, 10), shapely.Point(), None],
        crs=CRS,
    )
    cov = hydrant_coverage(straight_street(), b, hydrants([(100, 0)])).set_index("building_id")
    assert cov.loc["empty", "water_issue"] == "no geometry"
    assert cov.loc["none", "water_issue"] == "no geometry"
    assert cov.loc["near", "water_issue"] == ""
    assert cov["water_deficient"].to_dict() == {"near": False, "empty": True, "none": True}
    assert cov["water_deficiency"].to_dict() == {"near": 0.0, "empty": 1.0, "none": 1.0}


def test_water_by_grid_names_the_layer_in_another_crs():
    from firegrid.spatial.errors import InputError

    with pytest.raises(InputError, match=r"^grids: is in .*UTM zone 50N but buildings is in"):
        water_by_grid(covered_buildings(), grids().to_crs("EPSG:32650"))
