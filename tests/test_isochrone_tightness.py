"""Isochrones hold what they claim (issue 11, item 6): every building reached within 3 minutes
lies inside its station's 3-minute isochrone (containment 100 %), and at least 95 % of the
buildings inside the union of the 3-minute isochrones are truly reached within 180 s (judged
by each building's representative point and its time from firegrid.spatial.access.travel_times.building_access).

Measured on central Shanghai's real streets (the shared OSM extract) with synthetic buildings
near the streets and stations placed at random, and on the embedded demo district.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from firegrid.spatial.access.isochrones import station_isochrones
from firegrid.spatial.access.travel_times import building_access, compile_graphs
from firegrid.spatial.network.load import read_network
from firegrid.spatial.network.profiles import AccessParams
from tests.test_access import demo  # noqa: F401  (module fixture: the demo district)

SHANGHAI = Path(__file__).resolve().parents[2] / "shared" / "data" / "shanghai_roads"
CENTER = SHANGHAI / "shanghai_center.osm"
UTM51 = "EPSG:32651"


def figures(iso: gpd.GeoDataFrame, b: gpd.GeoDataFrame, kind: str, minutes: float = 3.0):
    """(buildings within the time, inside the union, share of those truly in time,
    containment in the own station's isochrone) for one station kind."""
    tcol, scol = {
        "micro_station": ("t_micro_s", "micro_station_id"),
        "fire_station": ("t_fire_s", "fire_station_id"),
    }[kind]
    pts = shapely.point_on_surface(b.geometry.to_numpy())
    sel = iso[(iso["kind"] == kind) & (iso["minutes"] == minutes)].set_index("station_id")
    ok = (b[tcol] <= minutes * 60).to_numpy()
    own = sel.geometry.reindex(b[scol].astype(object)).to_numpy()
    contained = shapely.contains(own[ok], pts[ok]).mean() if ok.any() else 1.0
    inside = shapely.contains(shapely.union_all(sel.geometry.to_numpy()), pts)
    tight = ok[inside].mean() if inside.any() else 1.0
    return int(ok.sum()), int(inside.sum()), float(tight), float(contained)


@pytest.fixture(scope="module")
def shanghai():
    if not CENTER.exists():
        pytest.skip(f"shared OSM extract not found: {CENTER} (see ../shared/data/README.md)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = read_network(CENTER, crs=UTM51)
    return compile_graphs(network, AccessParams())


def synthetic_district(graphs, seed: int, n: int = 3000):
    """Square footprints 8-24 m wide, 5-60 m from random points of streets in Lujiazui, and
    four micro-stations (e-bike, foot, engine, e-bike) and a fire station at random places."""
    rg = graphs["foot"]
    tr = pyproj.Transformer.from_crs("EPSG:4326", UTM51, always_xy=True)
    x0, y0 = tr.transform(121.500, 31.222)
    x1, y1 = tr.transform(121.530, 31.243)
    rng = np.random.default_rng(seed)
    mx, my = shapely.get_coordinates(
        shapely.line_interpolate_point(rg.seg_geom, 0.5, normalized=True)
    ).T
    near = np.flatnonzero((mx > x0) & (mx < x1) & (my > y0) & (my < y1) & rg.usable)
    seg = rng.choice(near, n)
    p = shapely.get_coordinates(
        shapely.line_interpolate_point(rg.seg_geom[seg], rng.random(n), normalized=True)
    )
    ang, off = rng.uniform(0, 2 * np.pi, n), rng.uniform(5, 60, n)
    c = p + np.c_[np.cos(ang), np.sin(ang)] * off[:, None]
    half = rng.uniform(4, 12, n)
    b = gpd.GeoDataFrame(
        {"building_id": [f"B{i}" for i in range(n)]},
        geometry=shapely.box(c[:, 0] - half, c[:, 1] - half, c[:, 0] + half, c[:, 1] + half),
        crs=UTM51,
    )
    sx, sy = rng.uniform(0.1, 0.9, 5), rng.uniform(0.1, 0.9, 5)
    stations = gpd.GeoDataFrame(
        {
            "station_id": ["M1", "M2", "M3", "M4", "F1"],
            "kind": ["micro_station"] * 4 + ["fire_station"],
            "vehicle": ["ebike", "foot", "engine", "ebike", None],
            "turnout_s": [60.0] * 5,
        },
        geometry=shapely.points(x0 + sx * (x1 - x0), y0 + sy * (y1 - y0)),
        crs=UTM51,
    )
    return b, stations


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 11])
def test_real_streets_isochrones_are_tight_and_hold_their_buildings(shanghai, seed):
    b, stations = synthetic_district(shanghai, seed)
    acc = building_access(b, stations, shanghai)
    iso = station_isochrones(stations, shanghai, buildings=acc)
    total = 0
    for kind in ("micro_station", "fire_station"):
        n_ok, n_inside, tight, contained = figures(iso, acc, kind)
        print(f"seed {seed} {kind}: {n_ok} within 180 s, {n_inside} inside the union, "
              f"{tight:.1%} of those within 180 s, containment {contained:.1%}")  # fmt: skip
        assert contained == 1.0, kind
        assert tight >= 0.95, (kind, tight)
        total += n_inside
    assert total > 150  # enough buildings inside for the share to mean something


@pytest.mark.slow
def test_demo_isochrones_are_tight_and_hold_their_buildings(demo):  # noqa: F811
    G, d = demo
    b = building_access(d.buildings, d.stations, G)
    iso = station_isochrones(d.stations, G, buildings=b)
    for kind in ("micro_station", "fire_station"):
        n_ok, n_inside, tight, contained = figures(iso, b, kind)
        print(f"demo {kind}: {n_ok} within 180 s, {n_inside} inside the union, "
              f"{tight:.1%} of those within 180 s, containment {contained:.1%}")  # fmt: skip
        assert n_ok > 50
        assert contained == 1.0, kind
        assert tight >= 0.95, (kind, tight)
