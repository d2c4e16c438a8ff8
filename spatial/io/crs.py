"""Coordinate systems: EPSG codes, CGCS2000, and the Chinese web-map offsets GCJ-02 and BD-09.

GCJ-02 (Amap, Tencent) and BD-09 (Baidu) are not EPSG systems: they are WGS84 longitude/latitude
pushed by a deliberate non-linear offset of a few hundred metres, so PROJ cannot convert them.
The forward formulas are public; their inverses are computed by fixed-point iteration, which
reaches millimetre accuracy where the usual one-step inverse is off by metres. Points outside
mainland China's bounding box are never shifted, matching what the map providers do.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.runtime import threads

WGS84 = pyproj.CRS.from_epsg(4326)

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

_GCJ_NAMES = {"gcj-02", "gcj02", "gcj", "amap", "gaode", "tencent", "qq", "mars"}
_BD_NAMES = {"bd-09", "bd09", "bd", "baidu"}
_WGS_NAMES = {"wgs84", "wgs-84", "wgs 84", "epsg:4326", "4326"}
_CGCS_NAMES = {"cgcs2000", "cgcs-2000", "epsg:4490", "4490"}


def in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where a point lies in the rough box the GCJ-02 offset applies to (degrees)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon > 72.004) & (lon < 137.8347) & (lat > 0.8293) & (lat < 55.8271)


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → GCJ-02, longitude/latitude in degrees (arrays or scalars)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def _invert(forward, lon, lat, *, tol_deg: float = 1e-10, max_iter: int = 30):
    """Solve forward(x) = (lon, lat) for x by fixed-point iteration (the offsets are smooth)."""
    tgt_lon = np.asarray(lon, dtype=float)
    tgt_lat = np.asarray(lat, dtype=float)
    x_lon, x_lat = tgt_lon.copy(), tgt_lat.copy()
    for _ in range(max_iter):
        f_lon, f_lat = forward(x_lon, x_lat)
        e_lon, e_lat = f_lon - tgt_lon, f_lat - tgt_lat
        x_lon = x_lon - e_lon
        x_lat = x_lat - e_lat
        if np.all(np.abs(e_lon) < tol_deg) and np.all(np.abs(e_lat) < tol_deg):
            break
    return x_lon, x_lat


def gcj02_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → WGS84 by iteration; accurate to well under a millimetre inside China."""
    return _invert(wgs84_to_gcj02, lon, lat)


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 → BD-09 (Baidu), degrees."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    inside = in_china(x, y)
    return (
        np.where(inside, z * np.cos(theta) + 0.0065, x),
        np.where(inside, z * np.sin(theta) + 0.006, y),
    )


def bd09_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 → GCJ-02 by iteration of the forward formula."""
    return _invert(gcj02_to_bd09, lon, lat)


def wgs84_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 → BD-09 (through GCJ-02, as Baidu does)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 → WGS84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


@dataclass(frozen=True)
class CoordSystem:
    """A coordinate system as a user names it: an EPSG/PROJ CRS, or a Chinese web-map offset.

    ``offset`` is ``"gcj02"`` or ``"bd09"`` for the web-map systems (then ``crs`` is WGS84,
    the frame the offset is applied in), otherwise ``None``.
    """

    name: str
    crs: pyproj.CRS
    offset: str | None = None


def parse_coord_system(spec: str | int | pyproj.CRS | None) -> CoordSystem:
    """Read a user's coordinate-system name.

    Accepts ``WGS84``, ``CGCS2000``, ``GCJ-02`` (also ``amap``, ``tencent``), ``BD-09``
    (also ``baidu``), ``EPSG:NNNN``, a bare EPSG number or anything pyproj understands.
    ``None`` means WGS84.
    """
    if spec is None:
        return CoordSystem("WGS84", WGS84)
    if isinstance(spec, pyproj.CRS):
        return CoordSystem(spec.to_string(), spec)
    key = str(spec).strip().lower()
    if key in _GCJ_NAMES:
        return CoordSystem("GCJ-02", WGS84, "gcj02")
    if key in _BD_NAMES:
        return CoordSystem("BD-09", WGS84, "bd09")
    if key in _WGS_NAMES:
        return CoordSystem("WGS84", WGS84)
    if key in _CGCS_NAMES:
        return CoordSystem("CGCS2000", pyproj.CRS.from_epsg(4490))
    try:
        crs = pyproj.CRS.from_user_input(int(key) if key.isdigit() else str(spec))
    except pyproj.exceptions.CRSError as exc:
        raise ConfigError(
            f"unknown coordinate system {spec!r}: use WGS84, CGCS2000, GCJ-02, BD-09 or EPSG:NNNN"
        ) from exc
    return CoordSystem(crs.to_string(), crs)


def _shift_geometries(geoms: np.ndarray, func) -> np.ndarray:
    def xy(coords: np.ndarray) -> np.ndarray:
        lon, lat = func(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, xy)


_TO_WGS = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_FROM_WGS = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def to_wgs84(gdf: gpd.GeoDataFrame, source: CoordSystem | str | None) -> gpd.GeoDataFrame:
    """Return ``gdf`` in WGS84 (EPSG:4326), removing a GCJ-02/BD-09 offset if declared.

    For an EPSG source the GeoDataFrame's own CRS wins when it has one (a file's .prj is more
    reliable than a config line); ``source`` fills in a missing CRS.
    """
    cs = source if isinstance(source, CoordSystem) else parse_coord_system(source)
    out = gdf.copy()
    if cs.offset:
        if out.crs is not None and not out.crs.equals(WGS84):
            out = project(out, WGS84)
        geoms = _shift_geometries(out.geometry.values._data, _TO_WGS[cs.offset])
        return out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=WGS84))
    if out.crs is None:
        out = out.set_crs(cs.crs)
    return project(out, WGS84)


def from_wgs84(gdf: gpd.GeoDataFrame, target: str) -> gpd.GeoDataFrame:
    """Shift a WGS84 GeoDataFrame into GCJ-02 or BD-09 (for drawing over Amap/Baidu tiles).

    The result keeps the EPSG:4326 label because web maps read it as plain lon/lat degrees.
    """
    cs = parse_coord_system(target)
    out = gdf.to_crs(WGS84) if gdf.crs is not None else gdf.set_crs(WGS84)
    if not cs.offset:
        return out.to_crs(cs.crs)
    geoms = _shift_geometries(out.geometry.values._data, _FROM_WGS[cs.offset])
    return out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=WGS84))


@lru_cache(maxsize=64)
def _transformer(source: pyproj.CRS, target: pyproj.CRS) -> pyproj.Transformer:
    # The transformer GeoSeries.to_crs uses (x = longitude/easting), so the same numbers.
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


def project_xy(
    x: np.ndarray, y: np.ndarray, source: pyproj.CRS, target: pyproj.CRS
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates from ``source`` to ``target``, exactly as :meth:`geopandas.GeoSeries.to_crs`
    computes them, without making geometries.

    Parameters
    ----------
    x, y : array-like of float
        Longitude and latitude (degrees) or easting and northing (metres) in ``source``.
    source, target : pyproj.CRS

    Returns
    -------
    x, y : numpy.ndarray of float
        In ``target``'s units (metres for a projected CRS).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    transformer = _transformer(source, target)
    if x.ndim != 1 or len(x) < PARALLEL_POINTS or threads() < 2:
        tx, ty = transformer.transform(x, y)
        return np.asarray(tx, dtype=float), np.asarray(ty, dtype=float)
    return _transform_in_parts(transformer, x, y, threads())


# From this many points on, project_xy splits them over the run's threads: pyproj lets go of
# the GIL while PROJ computes, and each thread pays once for its own PROJ transformer.
PARALLEL_POINTS = 1 << 20


def _transform_in_parts(
    transformer: pyproj.Transformer, x: np.ndarray, y: np.ndarray, parts: int
) -> tuple[np.ndarray, np.ndarray]:
    """``transformer.transform(x, y)``, the same numbers, computed on ``parts`` threads, each
    in place on its slice of one copy of the coordinates (the calling thread does the first)."""
    tx, ty = x.copy(), y.copy()
    cuts = np.linspace(0, len(tx), parts + 1).astype(int)
    pieces = [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]

    def run(piece: slice) -> None:
        transformer.transform(tx[piece], ty[piece], inplace=True)

    with ThreadPoolExecutor(max_workers=parts - 1) as pool:
        done = [pool.submit(run, piece) for piece in pieces[1:]]
        run(pieces[0])
        for future in done:
            future.result()
    return tx, ty


def project(
    frame: gpd.GeoDataFrame | gpd.GeoSeries, crs: pyproj.CRS | str | int
) -> gpd.GeoDataFrame | gpd.GeoSeries:
    """``frame.to_crs(crs)``: the same frame, coordinates and geometries, faster for points.

    A layer of plain 2-D points (a city's buildings as points, stations, hydrants) is
    projected from its coordinates into new points, instead of cloning each geometry and
    setting its coordinate as GeoPandas does (the same result in about a quarter less
    time); anything else goes through :meth:`~geopandas.GeoDataFrame.to_crs`.

    Parameters
    ----------
    frame : GeoDataFrame or GeoSeries
        With a CRS (degrees or metres).
    crs : pyproj.CRS, str or int
        The target CRS, as ``to_crs`` takes it.

    Returns
    -------
    GeoDataFrame or GeoSeries
        Like ``frame`` (columns, index, ``attrs``, geometry name), its geometries in ``crs``.
    """
    series = frame.geometry if isinstance(frame, gpd.GeoDataFrame) else frame
    target = pyproj.CRS.from_user_input(crs)
    xy = None if series.crs is None or series.crs.is_exact_same(target) else point_xy(series)
    if xy is None:
        return frame.to_crs(target)
    return with_points(frame, *project_xy(*xy, series.crs, target), target)


def point_xy(series: gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray] | None:
    """The coordinates of a layer of plain 2-D points (none missing or empty), else None.

    Parameters
    ----------
    series : GeoSeries
        Any CRS.

    Returns
    -------
    x, y : numpy.ndarray of float, in the series' CRS; None when any geometry is not such a
        point (then :func:`project` uses :meth:`~geopandas.GeoSeries.to_crs`).
    """
    geoms = np.asarray(series.values, dtype=object)
    return (shapely.get_x(geoms), shapely.get_y(geoms)) if _plain_points(geoms) else None


def with_points(
    frame: gpd.GeoDataFrame | gpd.GeoSeries, x: np.ndarray, y: np.ndarray, crs: pyproj.CRS
) -> gpd.GeoDataFrame | gpd.GeoSeries:
    """``frame`` with its geometries replaced by the points ``x``, ``y`` (row for row) in
    ``crs``: how :func:`project` makes its result (columns, index, ``attrs``, geometry name).

    Parameters
    ----------
    frame : GeoDataFrame or GeoSeries
    x, y : numpy.ndarray of float
        In ``crs``'s units (metres for a projected CRS).
    crs : pyproj.CRS
    """
    series = frame.geometry if isinstance(frame, gpd.GeoDataFrame) else frame
    moved = gpd.GeoSeries(shapely.points(x, y), index=series.index, crs=crs, name=series.name)
    if isinstance(frame, gpd.GeoSeries):
        return moved
    out = frame.copy()
    out.geometry = moved
    return out


def _plain_points(geoms: np.ndarray) -> bool:
    """All non-empty 2-D points (none missing)."""
    return bool(
        (shapely.get_type_id(geoms) == 0).all()
        and not shapely.has_z(geoms).any()
        and not shapely.is_empty(geoms).any()
    )


def utm_crs_for(lon: float, lat: float) -> pyproj.CRS:
    """The WGS84 UTM zone (metres) containing a point given in degrees."""
    zone = int(np.floor((lon + 180.0) / 6.0)) % 60 + 1
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def working_crs_for(gdf_wgs84: gpd.GeoDataFrame) -> pyproj.CRS:
    """The metric working CRS for a district: the UTM zone of its bounding-box centre."""
    minx, miny, maxx, maxy = gdf_wgs84.to_crs(WGS84).total_bounds
    return utm_crs_for((minx + maxx) / 2.0, (miny + maxy) / 2.0)


def require_projected(
    gdf: gpd.GeoDataFrame | gpd.GeoSeries,
    what: str,
    crs: pyproj.CRS | None = None,
    *,
    crs_of: str = "the road network",
) -> None:
    """Raise InputError unless a layer carries a projected (metric) CRS, and ``crs`` if given.

    Parameters
    ----------
    gdf : GeoDataFrame or GeoSeries
        The layer to check.
    what : str
        Its name in the message (``"buildings"``, ``"grids"`` …).
    crs : pyproj.CRS, optional
        The CRS it must be in (the road network's, or another layer's).
    crs_of : str
        What ``crs`` belongs to, for the message.
    """
    if not isinstance(gdf, gpd.GeoDataFrame | gpd.GeoSeries):
        raise InputError(f"must be a GeoDataFrame, not {type(gdf).__name__}", file=what)
    if gdf.crs is None:
        raise InputError(
            "has no CRS; set it and reproject the layer to the district's projected metric CRS "
            "(firegrid.spatial.io.crs.working_crs_for)",
            file=what,
        )
    here = pyproj.CRS.from_user_input(gdf.crs)
    if not here.is_projected:
        raise InputError(
            f"is in {here.name} (degrees); reproject it to the district's projected metric CRS "
            "(GeoDataFrame.to_crs with firegrid.spatial.io.crs.working_crs_for)",
            file=what,
        )
    if crs is not None:
        require_same_crs(gdf, crs, what, crs_of)


def require_same_crs(
    a: gpd.GeoDataFrame | gpd.GeoSeries,
    b: gpd.GeoDataFrame | gpd.GeoSeries | pyproj.CRS | None,
    what_a: str,
    what_b: str,
) -> None:
    """Raise InputError when layer ``a`` is not in the CRS of ``b`` (a layer or a CRS).

    A missing CRS on either side is left to :func:`require_projected`.
    """
    other = b.crs if isinstance(b, gpd.GeoDataFrame | gpd.GeoSeries) else b
    if a.crs is None or other is None:
        return
    here, there = pyproj.CRS.from_user_input(a.crs), pyproj.CRS.from_user_input(other)
    if not here.equals(there):
        raise InputError(
            f"is in {here.name} but {what_b} is in {there.name}; reproject both to the "
            "district's working CRS",
            file=what_a,
        )
