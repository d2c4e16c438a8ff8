"""A layer of 2-D points written from its coordinates (``write_point_layer``) holds exactly
what GeoPandas' ``to_file`` with pyogrio and Arrow writes; any other layer is left to
``to_file``, with nothing written."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from firegrid.geopackage import write_point_layer
from firegrid.reports import write_results_gpkg
from tests._demo import requires_demo
from tests._gpkg import gpkg_content

N = 500
RNG = np.random.default_rng(7)
OPTIONS = {"SPATIAL_INDEX": "NO"}


def _points(n: int = N, *, scale: float = 1e5, offset: float = 3e5) -> np.ndarray:
    return shapely.points(RNG.uniform(-1, 1, n) * scale + offset, RNG.uniform(-1, 1, n) * scale)


WRITTEN = {
    "every kind of column": lambda: gpd.GeoDataFrame(
        {
            "building_id": pd.array([f"B{i}" for i in range(N)], dtype="string"),
            "name": pd.Series([f"楼{i}" if i % 3 else None for i in range(N)], dtype="str"),
            "t_s": RNG.random(N) * 300,
            "n": RNG.integers(0, 5, N),
            "covered": RNG.random(N) > 0.5,
            "count": pd.array([1, None] * (N // 2), dtype="Int64"),
            "gap": np.where(RNG.random(N) > 0.5, np.nan, RNG.random(N)),
            "seen": pd.date_range("2024-01-01", periods=N, freq="h"),
        },
        geometry=_points(),
        crs=32651,
    ),
    "geometry between columns, degrees": lambda: gpd.GeoDataFrame(
        {"a": np.arange(N), "geometry": _points(scale=1, offset=121), "z": RNG.random(N)},
        crs=4326,
    ),
    "a CRS without an EPSG code": lambda: gpd.GeoDataFrame(
        {"a": np.arange(N)},
        geometry=_points(),
        crs="+proj=tmerc +lat_0=0 +lon_0=121.3 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80",
    ),
    "negative zero and large values": lambda: gpd.GeoDataFrame(
        {"a": np.arange(3)},
        geometry=shapely.points([-0.0, 1e15, -123456.789], [0.0, -1e15, 5e-9]),
        crs=3857,
    ),
}


@pytest.mark.parametrize("case", list(WRITTEN))
def test_points_written_from_coordinates_equal_to_file(case, tmp_path):
    frame = WRITTEN[case]()
    frame.to_file(tmp_path / "a.gpkg", layer="L", driver="GPKG", engine="pyogrio",
                  use_arrow=True, layer_options=OPTIONS)  # fmt: skip
    xy = write_point_layer(frame, tmp_path / "b.gpkg", "L", layer_options=OPTIONS)
    assert xy is not None
    assert np.array_equal(xy, shapely.get_coordinates(frame.geometry.to_numpy()))
    assert gpkg_content(tmp_path / "b.gpkg") == gpkg_content(tmp_path / "a.gpkg")


def _plain() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"a": np.arange(4)}, geometry=_points(4), crs=32651)


LEFT_TO_TO_FILE = {
    "an empty point": lambda: _plain().set_geometry([shapely.Point(), *_points(3)], crs=32651),
    "a missing geometry": lambda: _plain().set_geometry([None, *_points(3)], crs=32651),
    "3-D points": lambda: _plain().set_geometry(shapely.points(np.ones((4, 3))), crs=32651),
    "a polygon": lambda: _plain().set_geometry([shapely.box(0, 0, 1, 1), *_points(3)]),
    "an object column": lambda: _plain().assign(o=pd.Series(["x", 1, 2.0, None], dtype=object)),
    "a category column": lambda: _plain().assign(c=pd.Categorical(list("abab"))),
    "a time-zone column": lambda: _plain().assign(
        d=pd.date_range("2024-01-01", periods=4, freq="h", tz="Asia/Shanghai")
    ),
    "a named index": lambda: _plain().rename_axis("row"),
    "a text index": lambda: _plain().set_axis(list("abcd")),
    "no rows": lambda: _plain().iloc[:0],
}


@pytest.mark.parametrize("case", list(LEFT_TO_TO_FILE))
def test_other_layers_are_left_to_to_file_with_nothing_written(case, tmp_path):
    path = tmp_path / "x.gpkg"
    assert write_point_layer(LEFT_TO_TO_FILE[case](), path, "L", layer_options=OPTIONS) is None
    assert not path.exists()


@requires_demo()
def test_the_demo_results_are_the_same_file_either_way(tmp_path, monkeypatch):
    """The demo's point layers (stations, hydrants …) go the fast way; ``results.gpkg`` holds
    what it holds when ``to_file`` writes every layer."""
    import firegrid.reports as reports
    from firegrid.pipeline import demo_config_path, run_pipeline

    run = run_pipeline(demo_config_path(), until="access", progress=False)
    layers = {k: v for k, v in run.layers.items() if v is not None and len(v)}
    fast = []
    monkeypatch.setattr(reports, "write_point_layer", _noting(write_point_layer, fast))
    write_results_gpkg(layers, tmp_path / "fast.gpkg", personal="keep")
    assert "stations" in fast
    monkeypatch.setattr(reports, "write_point_layer", lambda *a, **k: None)
    write_results_gpkg(layers, tmp_path / "to_file.gpkg", personal="keep")
    assert gpkg_content(tmp_path / "fast.gpkg") == gpkg_content(tmp_path / "to_file.gpkg")


def _noting(write, names: list):
    def noted(frame, path, name, **kw):
        xy = write(frame, path, name, **kw)
        if xy is not None:
            names.append(name)
        return xy

    return noted
