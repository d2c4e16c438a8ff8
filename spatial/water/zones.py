"""Water-deficient zones (消防缺水区域): the built-up area no working water source covers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from firegrid.spatial.errors import InputError
from firegrid.spatial.geometry import dissolve_touching, union_by
from firegrid.spatial.io.crs import require_projected
from firegrid.spatial.io.grids import surface_points
from firegrid.spatial.water.params import WaterParams


def water_deficient_zones(
    buildings: gpd.GeoDataFrame,
    *,
    grids: gpd.GeoDataFrame | None = None,
    boundary: shapely.Geometry | None = None,
    params: WaterParams | None = None,
) -> gpd.GeoDataFrame:
    """Water-deficient zones (消防缺水区域): the built-up area no working water source covers.

    The footprints (or points) of water-deficient buildings are grown by ``zone_buffer_m``,
    dissolved, and closed over gaps narrower than ``2 × zone_close_m``; the footprints of
    covered buildings are then cut out, so a zone never claims a covered building — unless its
    footprint overlaps a deficient one's (overlapping footprints in the data). Every deficient
    footprint lies inside a zone. The result is clipped to ``boundary`` (default: the union of
    the coarsest grid level) and split into its connected parts.

    Parameters
    ----------
    buildings : GeoDataFrame
        Output of :func:`firegrid.spatial.water.coverage.hydrant_coverage` (needs ``water_deficient``), projected CRS.
    grids : GeoDataFrame, optional
        The ``grids`` layer: gives the default boundary and each zone's grid cells.
    boundary : shapely geometry, optional
        District outline in the same CRS.

    Returns
    -------
    GeoDataFrame
        Polygons: ``zone_id``, ``n_buildings`` (deficient buildings whose representative point
        lies in the zone), ``residents`` (their sum, when buildings carry ``residents``),
        ``area_m2``, ``grid_ids`` (cells of the finest grid level the zone touches).
    """
    params = params or WaterParams()
    require_projected(buildings, "buildings")
    if "water_deficient" not in buildings:
        raise InputError(
            "column missing: run hydrant_coverage first", file="buildings", column="water_deficient"
        )
    crs = buildings.crs
    if grids is not None:
        require_projected(grids, "grids", crs, crs_of="buildings")
        if boundary is None:
            boundary = district_outline(grids)
    geoms = np.asarray(buildings.geometry.values, dtype=object)
    valid = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    bad = buildings["water_deficient"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    if not (bad & valid).any():
        return _empty_zones(crs)
    grown = _deficient_area(geoms[bad & valid], geoms[~bad & valid], params)
    if boundary is not None:
        shapely.prepare(boundary)
        inside = shapely.contains_properly(boundary, grown)  # most pieces: kept as they are
        grown[~inside] = shapely.intersection(grown[~inside], boundary)
    parts = shapely.get_parts(grown)
    parts = parts[shapely.get_type_id(parts) == 3]
    parts = parts[shapely.area(parts) > 0]
    if len(parts) == 0:
        return _empty_zones(crs)
    zones = gpd.GeoDataFrame(geometry=gpd.GeoSeries(parts, crs=crs))
    zones = _count_in_zones(zones, buildings, np.flatnonzero(bad & valid))
    zones["area_m2"] = zones.geometry.area.to_numpy()
    zones["grid_ids"] = _zone_cells(zones, grids)
    zones = zones.sort_values(["n_buildings", "area_m2"], ascending=False, kind="stable")
    zones = zones.reset_index(drop=True)
    zones.insert(0, "zone_id", pd.array([f"WZ{i + 1:03d}" for i in range(len(zones))], "string"))
    cols = ["zone_id", "n_buildings"] + (["residents"] if "residents" in zones else [])
    return zones[cols + ["area_m2", "grid_ids", "geometry"]]


def _deficient_area(dg: np.ndarray, covered: np.ndarray, params: WaterParams) -> np.ndarray:
    """The deficient footprints ``dg`` grown, dissolved and closed, with the covered
    footprints cut out except where they overlap a deficient one: an array of separate
    pieces (their union is the area), each handled alone (see :mod:`firegrid.spatial.geometry`)."""
    r, c = params.zone_buffer_m, params.zone_close_m
    # Grow by r and close gaps narrower than 2c: dilate by r + c, dissolve, erode by c. The
    # pieces do not touch, so eroding each is eroding their union.
    grown = dissolve_touching(shapely.buffer(dg, r + c, quad_segs=4))
    if c > 0:
        grown = shapely.buffer(grown, -c, quad_segs=4)
    covered = covered[shapely.get_type_id(covered) >= 3]  # only areas can be cut out
    if len(covered):
        clash = shapely.STRtree(dg).query(covered, predicate="intersects")[0]
        covered = np.delete(covered, np.unique(clash))
        piece, cut = shapely.STRtree(covered).query(grown, predicate="intersects")
        if len(piece):
            hit, group = np.unique(piece, return_inverse=True)
            grown[hit] = shapely.difference(grown[hit], union_by(covered[cut], group))
    # Dilation then erosion keeps every footprint inside up to polygon approximation; add back
    # any footprint that slipped out (tiny buffers with large closing).
    rep = surface_points(dg)
    kept = shapely.STRtree(grown).query(rep, predicate="within")[0]
    lost = np.ones(len(dg), dtype=bool)
    lost[kept] = False
    if lost.any():
        grown = dissolve_touching(np.r_[grown, dg[lost]])
    return grown


def _count_in_zones(
    zones: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, rows: np.ndarray
) -> gpd.GeoDataFrame:
    """``n_buildings`` (and ``residents`` when buildings carry it) per zone: the deficient
    buildings ``rows`` whose representative point lies in it (the first zone when several)."""
    geoms = np.asarray(buildings.geometry.values, dtype=object)[rows]
    pts = gpd.GeoDataFrame(
        {"_pos": rows},
        geometry=gpd.GeoSeries(shapely.point_on_surface(geoms), crs=zones.crs),
    )
    if "residents" in buildings:
        res = pd.to_numeric(buildings["residents"], errors="coerce").to_numpy(dtype=float)
        pts["residents"] = res[rows]
    hit = gpd.sjoin(pts, zones, how="inner", predicate="intersects")
    hit = hit.sort_values(["_pos", "index_right"]).drop_duplicates("_pos")
    counts = hit.groupby("index_right").size().reindex(zones.index, fill_value=0)
    zones["n_buildings"] = counts.to_numpy(dtype=np.int64)
    if "residents" in pts:
        zones["residents"] = (
            hit.groupby("index_right")["residents"].sum(min_count=1).reindex(zones.index)
        ).to_numpy(dtype=float)
    return zones


def _zone_cells(zones: gpd.GeoDataFrame, grids: gpd.GeoDataFrame | None) -> pd.array:
    """Per zone: the ids of the finest-level grid cells it overlaps with area, joined by ", "."""
    empty = pd.array([""] * len(zones), dtype="string")
    if grids is None or not len(grids):
        return empty
    finest = grids[grids["level"] == grids["level"].max()] if "level" in grids else grids
    gj = gpd.sjoin(
        zones[["geometry"]],
        gpd.GeoDataFrame(
            {"_gid": finest["grid_id"].astype("string").to_numpy()},
            geometry=finest.geometry.values,
            crs=zones.crs,
        ),
        how="inner",
        predicate="intersects",
    )
    # Touching along a shared edge is not lying in a cell: keep overlaps with area.
    overlap = shapely.intersection(
        zones.geometry.values[gj.index.to_numpy()],
        finest.geometry.values[gj["index_right"].to_numpy()],
    )
    gj = gj[shapely.area(overlap) > 0]
    ids = gj.reset_index().sort_values(["index", "_gid"]).groupby("index")["_gid"]
    return pd.array(
        ids.agg(lambda s: ", ".join(s.astype(str))).reindex(zones.index).fillna("").to_numpy(),
        dtype="string",
    )


def _empty_zones(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "zone_id": pd.Series([], dtype="string"),
            "n_buildings": pd.Series([], dtype=np.int64),
            "area_m2": pd.Series([], dtype=float),
            "grid_ids": pd.Series([], dtype="string"),
        },
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )


def district_outline(grids: gpd.GeoDataFrame) -> shapely.Geometry:
    """The union of the coarsest grid level (every cell without a ``level`` column)."""
    top = grids["level"] == grids["level"].min() if "level" in grids else slice(None)
    return shapely.union_all(np.asarray(grids.geometry[top].values, dtype=object))
