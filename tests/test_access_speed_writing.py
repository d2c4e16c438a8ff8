"""results.gpkg is written without a disk sync per transaction, but the user's GDAL setting is
left as it was and the file reads back whole."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from firegrid.reports import write_results_gpkg


@pytest.mark.parametrize("setting", [None, "NORMAL"])
def test_the_sqlite_setting_is_restored_and_the_layers_read_back(tmp_path, setting):
    pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": setting})
    try:
        rng = np.random.default_rng(3)
        pts = gpd.GeoDataFrame(
            {"building_id": [f"B{i}" for i in range(500)], "t_s": rng.uniform(0, 600, 500)},
            geometry=shapely.points(rng.uniform(0, 1e3, (500, 2))),
            crs=32651,
        )
        table = pd.DataFrame({"grid_id": ["G1", "G2"], "n": [3, 4]})
        path = write_results_gpkg({"buildings": pts, "table": table}, tmp_path / "r.gpkg")
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS") == (
            None if setting is None else setting
        )
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": None})
    back = gpd.read_file(path, layer="buildings")
    assert back["building_id"].tolist() == pts["building_id"].tolist()
    np.testing.assert_array_equal(back["t_s"].to_numpy(), pts["t_s"].to_numpy())
    assert shapely.equals_exact(back.geometry.to_numpy(), pts.geometry.to_numpy(), 0).all()
    assert pd.DataFrame(gpd.read_file(path, layer="table"))[["grid_id", "n"]].equals(table)
    # The spatial index is still built (QGIS reads city layers through it).
    assert pyogrio.read_info(path, layer="buildings")["capabilities"]["fast_spatial_filter"]
