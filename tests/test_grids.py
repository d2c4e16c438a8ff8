"""Grid-cell assignment shared by access, water and risk: one rule, any feature layer."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from firegrid.spatial.errors import InputError
from firegrid.spatial.io.grids import aggregate_by_grid, assign_grids

CRS = "EPSG:32651"


@pytest.fixture
def grids():
    # S holds A and B; cell A3 lies in A. B has no level-3 cell.
    return gpd.GeoDataFrame(
        {
            "grid_id": ["S", "A", "B", "A3"],
            "level": [1, 2, 2, 3],
            "parent_id": [None, "S", "S", "A"],
        },
        geometry=[box(0, 0, 20, 10), box(0, 0, 10, 10), box(10, 0, 20, 10), box(0, 0, 5, 5)],
        crs=CRS,
    )


def test_points_polygons_and_missing_geometry(grids):
    feats = gpd.GeoDataFrame(
        {"hydrant_id": ["h1", "h2", "h3", "h4", "h5"]},
        geometry=[Point(2, 2), box(12, 2, 14, 4), None, Point(30, 30), Point(10, 5)],
        crs=CRS,
    )
    cells, rep = assign_grids(feats, grids, what="hydrants")
    assert list(cells.columns) == ["grid_id_l3", "grid_id_l2", "grid_id_l1"]
    assert cells["grid_id_l3"].tolist()[:2] == ["A3", pd.NA]
    assert cells["grid_id_l2"].tolist() == ["A", "B", pd.NA, pd.NA, "A"]  # edge: smaller id
    assert cells["grid_id_l1"].tolist() == ["S", "S", pd.NA, pd.NA, "S"]
    assert rep.unassigned == {3: 4, 2: 2, 1: 2}
    assert rep.direct[2] == 2 and rep.disagree[2] == 0


def test_aggregate_by_grid_every_level(grids):
    feats = gpd.GeoDataFrame(
        {"n": [1.0, 2.0, 4.0]}, geometry=[Point(1, 1), Point(8, 8), Point(15, 5)], crs=CRS
    )
    cells, _ = assign_grids(feats, grids)
    out = aggregate_by_grid(cells, feats[["n"]], {"n": "sum"}, grid_ids=grids["grid_id"])
    assert out["n"].to_dict() == {"S": 7.0, "A": 3.0, "B": 4.0, "A3": 1.0}
    empty = aggregate_by_grid(cells.iloc[:0], feats[["n"]].iloc[:0], grid_ids=["S"])
    assert np.isnan(empty.loc["S", "n"])


def test_crs_and_column_checks(grids):
    feats = gpd.GeoDataFrame({"x": [1]}, geometry=[Point(1, 1)], crs=CRS)
    with pytest.raises(InputError, match="hydrants.*degrees"):
        assign_grids(feats.to_crs(4326), grids, what="hydrants")
    with pytest.raises(InputError, match="reproject"):
        assign_grids(feats.to_crs("EPSG:32650"), grids)
    with pytest.raises(InputError, match="grid_id"):
        assign_grids(feats, grids.drop(columns="grid_id"))


def test_bad_level_names_the_cell_and_the_value(grids):
    grids["level"] = grids["level"].astype(object)
    grids.loc[1, "level"] = "二"
    with pytest.raises(InputError) as caught:
        assign_grids(grids.iloc[[3]], grids)
    msg = str(caught.value)
    assert "grids layer: index 1 (grid_id A), column 'level'" in msg and "'二'" in msg
