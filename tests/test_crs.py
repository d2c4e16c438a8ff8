import geopandas as gpd
import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import Point

from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.crs import (
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_wgs84,
    parse_coord_system,
    require_projected,
    require_same_crs,
    to_wgs84,
    utm_crs_for,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="WGS84")


def metres(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def test_published_gcj02_vector():
    lon, lat = wgs84_to_gcj02(121.5272106, 31.1774276)
    assert lat == pytest.approx(31.17530398364597, abs=1e-6)
    assert lon == pytest.approx(121.531541859215, abs=1e-6)
    back = gcj02_to_wgs84(lon, lat)
    assert metres(*back, 121.5272106, 31.1774276) < 0.5


def test_published_bd09_vector():
    lon, lat = wgs84_to_bd09(120, 30)
    assert lon == pytest.approx(120.011070620552, abs=1e-6)
    assert lat == pytest.approx(30.003883055512777, abs=1e-6)
    assert metres(*bd09_to_wgs84(lon, lat), 120, 30) < 0.5


def test_gcj02_inverse_accurate_across_china():
    rng = np.random.default_rng(0)
    lon = rng.uniform(75, 135, 2000)
    lat = rng.uniform(18, 53, 2000)
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    shift = metres(lon, lat, g_lon, g_lat)
    assert np.median(shift) > 100  # the offset is real, hundreds of metres
    w_lon, w_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert metres(lon, lat, w_lon, w_lat).max() < 0.01
    # The common one-step inverse (subtract the offset taken at the GCJ point) is off by metres.
    one_step = metres(
        lon,
        lat,
        2 * g_lon - wgs84_to_gcj02(g_lon, g_lat)[0],
        2 * g_lat - wgs84_to_gcj02(g_lon, g_lat)[1],
    )
    assert one_step.max() > 0.5


def test_points_outside_china_are_not_shifted():
    for fn in (wgs84_to_gcj02, gcj02_to_wgs84, wgs84_to_bd09, bd09_to_wgs84):
        lon, lat = fn(np.array([2.35, -74.0]), np.array([48.85, 40.7]))
        np.testing.assert_array_equal(lon, [2.35, -74.0])
        np.testing.assert_array_equal(lat, [48.85, 40.7])


@pytest.mark.parametrize(
    "spec,name,offset",
    [
        ("WGS84", "WGS84", None),
        ("gcj-02", "GCJ-02", "gcj02"),
        ("Amap", "GCJ-02", "gcj02"),
        ("baidu", "BD-09", "bd09"),
        ("CGCS2000", "CGCS2000", None),
        ("EPSG:4547", "EPSG:4547", None),
        (32651, "EPSG:32651", None),
    ],
)
def test_parse_coord_system(spec, name, offset):
    cs = parse_coord_system(spec)
    assert cs.name == name and cs.offset == offset


def test_parse_unknown_coord_system():
    with pytest.raises(ConfigError, match="unknown coordinate system"):
        parse_coord_system("mars-99")


def test_geodataframe_round_trip_both_offsets():
    pts = gpd.GeoDataFrame(geometry=[Point(121.47, 31.23), Point(121.5, 31.25)], crs="EPSG:4326")
    for system in ("GCJ-02", "BD-09"):
        shifted = from_wgs84(pts, system)
        assert (
            metres(pts.geometry.x, pts.geometry.y, shifted.geometry.x, shifted.geometry.y).min()
            > 300
        )
        back = to_wgs84(shifted.set_crs(None, allow_override=True), system)
        assert metres(pts.geometry.x, pts.geometry.y, back.geometry.x, back.geometry.y).max() < 0.5


def test_cgcs2000_and_projected_sources():
    pts = gpd.GeoDataFrame(geometry=[Point(121.47, 31.23)], crs="EPSG:4326")
    projected = pts.to_crs(4547)  # CGCS2000 3-degree Gauss-Kruger CM 120E
    back = to_wgs84(projected.set_crs(None, allow_override=True), "EPSG:4547")
    assert metres(121.47, 31.23, back.geometry.x[0], back.geometry.y[0]) < 0.01
    assert to_wgs84(pts.set_crs(None, allow_override=True), "CGCS2000").crs.to_epsg() == 4326


def test_utm_zone():
    assert utm_crs_for(121.47, 31.23).to_epsg() == 32651
    assert utm_crs_for(116.4, 39.9).to_epsg() == 32650


def test_require_projected_and_same_crs():
    utm = gpd.GeoDataFrame(geometry=[Point(350000, 3460000)], crs="EPSG:32651")
    require_projected(utm, "buildings", utm.crs)
    with pytest.raises(InputError, match="^hydrants: must be a GeoDataFrame"):
        require_projected([1], "hydrants")
    with pytest.raises(InputError, match="^grids: has no CRS"):
        require_projected(utm.set_crs(None, allow_override=True), "grids")
    with pytest.raises(InputError, match=r"^grids: is in WGS 84 \(degrees\); reproject"):
        require_projected(utm.to_crs(4326), "grids")
    other = utm.to_crs("EPSG:32650")
    with pytest.raises(
        InputError, match="^stations: is in .* but the road network is in .*reproject"
    ):
        require_projected(other, "stations", utm.crs)
    with pytest.raises(InputError, match="^grids: is in .* but buildings is in"):
        require_same_crs(other, utm, "grids", "buildings")
    require_same_crs(utm, None, "grids", "buildings")  # a missing CRS is require_projected's job
