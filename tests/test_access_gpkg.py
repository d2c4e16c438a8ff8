"""results.gpkg written through Arrow holds what the feature-by-feature writer would."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from firegrid.reports import write_results_gpkg


def _layers() -> dict[str, pd.DataFrame]:
    n = 50
    rng = np.random.default_rng(7)
    geoms = list(shapely.points(rng.random(n) * 1e3, rng.random(n) * 1e3))
    geoms[3] = None
    geoms[4] = shapely.box(0, 0, 10, 10)  # mixed geometry types in one layer
    buildings = gpd.GeoDataFrame(
        {
            "building_id": [f"b{i}" for i in range(n)],
            "name": ["楼" + str(i) if i % 7 else None for i in range(n)],
            "t_min": np.where(rng.random(n) < 0.2, np.nan, rng.random(n) * 600),
            "floors": pd.array(rng.integers(1, 30, n), dtype="Int64"),
            "covered": rng.random(n) < 0.5,
            "checked": pd.Timestamp("2026-01-02 03:04:05") + pd.to_timedelta(np.arange(n), "D"),
        },
        geometry=geoms,
        crs=32651,
    )
    buildings.loc[5, "floors"] = pd.NA
    table = pd.DataFrame({"k": np.arange(4), "v": [0.5, 1.5, np.nan, 2.0], "s": list("abcd")})
    return {"buildings": buildings, "curve": table}


def test_arrow_written_gpkg_matches_feature_writer(tmp_path):
    layers = _layers()
    got = write_results_gpkg(layers, tmp_path / "arrow.gpkg", personal="keep")
    ref = tmp_path / "ref.gpkg"
    for name, frame in layers.items():
        pyogrio.write_dataframe(frame, ref, layer=name, driver="GPKG", use_arrow=False)
    assert [n for n, _ in pyogrio.list_layers(got)] == [n for n, _ in pyogrio.list_layers(ref)]
    for name in layers:
        a, b = pyogrio.read_info(got, layer=name), pyogrio.read_info(ref, layer=name)
        for key in ("fields", "dtypes", "crs", "geometry_type", "features", "geometry_name"):
            assert np.array_equal(a[key], b[key]) or a[key] == b[key], (name, key, a[key], b[key])
        fa = pyogrio.read_dataframe(got, layer=name)
        fb = pyogrio.read_dataframe(ref, layer=name)
        pd.testing.assert_frame_equal(pd.DataFrame(fa), pd.DataFrame(fb))
    back = pyogrio.read_dataframe(got, layer="buildings")
    assert back.crs.to_epsg() == 32651
    assert back.geometry.isna().sum() == 1
    assert shapely.equals(back.geometry[4], shapely.box(0, 0, 10, 10))
    assert back["floors"].isna().sum() == 1


def test_arrow_writer_leaves_out_personal_columns(tmp_path):
    frame = _layers()["buildings"].assign(contact=["13812345678"] * 50)
    got = write_results_gpkg({"buildings": frame}, tmp_path / "r.gpkg")
    fields = list(pyogrio.read_info(got, layer="buildings")["fields"])
    assert "contact" not in fields and "building_id" in fields


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
