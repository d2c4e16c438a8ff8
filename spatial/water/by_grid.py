"""Water supply per grid cell at every level: buildings covered and deficient, hydrants and
water sources by status, deficient area.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from firegrid.spatial.errors import InputError
from firegrid.spatial.io.crs import require_projected
from firegrid.spatial.io.grids import aggregate_by_grid, assign_grids
from firegrid.spatial.water.params import WaterParams
from firegrid.spatial.water.sources import water_source_status, working_hydrants


def water_by_grid(
    buildings: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    water_sources: gpd.GeoDataFrame | None = None,
    *,
    hydrants: gpd.GeoDataFrame | None = None,
    zones: gpd.GeoDataFrame | None = None,
    cells: pd.DataFrame | None = None,
    params: WaterParams | None = None,
) -> pd.DataFrame:
    """Water supply per grid cell at every level.

    Parameters
    ----------
    buildings : GeoDataFrame
        Output of :func:`firegrid.spatial.water.coverage.hydrant_coverage`, projected CRS.
    grids : GeoDataFrame
        ``grid_id``, ``level``, optionally ``name``, ``parent_id``; same CRS.
    water_sources, hydrants : GeoDataFrame, optional
        Counted per cell by their representative point (:func:`firegrid.spatial.io.grids.assign_grids`).
    zones : GeoDataFrame, optional
        Output of :func:`firegrid.spatial.water.zones.water_deficient_zones`; gives the deficient area per cell.
    cells : DataFrame, optional
        Building → cell table, one row per building in the same order (``grid_id_l<level>``
        columns); default :func:`firegrid.spatial.io.grids.assign_grids`.

    Returns
    -------
    DataFrame
        One row per grid cell: ``grid_id``, ``name``, ``level``, ``parent_id``;
        ``n_buildings``; ``n_water_covered``; ``n_water_deficient``; ``share_water_deficient``
        (of buildings, NaN without buildings); ``water_deficiency_score`` (0-1: the mean of the
        buildings' ``water_deficiency``, NaN without buildings); ``n_hydrants``,
        ``n_hydrants_ok``, ``n_hydrants_broken``, ``n_hydrants_missing``;
        ``n_water_sources``, ``n_water_sources_usable``; ``capacity_m3`` (all sources in the
        cell, m³), ``capacity_usable_m3`` (sources that count); ``deficient_area_m2`` and
        ``deficient_area_share`` (of the cell's area) when ``zones`` is given.
    """
    params = params or WaterParams()
    require_projected(buildings, "buildings")
    crs = pyproj.CRS.from_user_input(buildings.crs)
    require_projected(grids, "grids", crs, crs_of="buildings")
    for col in ("water_deficient", "water_deficiency"):
        if col not in buildings:
            raise InputError(
                "column missing: run hydrant_coverage first", file="buildings", column=col
            )
    out = _grid_identity(grids)
    key = pd.Index(out["grid_id"].astype(object))
    bcells = cells if cells is not None else assign_grids(buildings, grids)[0]
    parts = [
        _buildings_per_cell(buildings, bcells, key),
        _hydrants_per_cell(hydrants, grids, key, crs),
        _sources_per_cell(water_sources, grids, key, crs, params),
    ]
    out = pd.concat([out, *(p.set_axis(out.index) for p in parts)], axis=1)
    if zones is not None:
        gg = np.asarray(grids.geometry.values, dtype=object)
        zu = shapely.union_all(np.asarray(zones.geometry.values, dtype=object))
        area = shapely.area(shapely.intersection(gg, zu)) if len(zones) else np.zeros(len(gg))
        out["deficient_area_m2"] = area
        with np.errstate(invalid="ignore", divide="ignore"):
            out["deficient_area_share"] = area / shapely.area(gg)
    return out


def _grid_identity(grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """``grid_id``, ``name``, ``level``, ``parent_id`` of every cell (missing text as NA)."""

    def text(column: str) -> pd.api.extensions.ExtensionArray:
        if column in grids:
            return grids[column].astype("string").to_numpy()
        return pd.array([pd.NA] * len(grids), dtype="string")

    levels = pd.to_numeric(grids["level"], errors="coerce")
    return pd.DataFrame(
        {
            "grid_id": grids["grid_id"].astype("string").to_numpy(),
            "name": text("name"),
            "level": levels.astype("Int64").to_numpy(),
            "parent_id": text("parent_id"),
        }
    )


def _buildings_per_cell(
    buildings: gpd.GeoDataFrame, bcells: pd.DataFrame, key: pd.Index
) -> pd.DataFrame:
    """Buildings, covered and deficient ones, their share and mean deficiency score per cell."""
    bad = buildings["water_deficient"].astype("boolean").fillna(True).to_numpy(dtype=float)
    score = pd.to_numeric(buildings["water_deficiency"], errors="coerce").to_numpy(dtype=float)
    vals = pd.DataFrame(
        {"n_buildings": 1.0, "n_water_deficient": bad, "score": score}, index=buildings.index
    )
    s = aggregate_by_grid(bcells, vals, "sum", grid_ids=key)
    cnt = aggregate_by_grid(bcells, vals[["score"]], "count", grid_ids=key)["score"]
    nb = s["n_buildings"].fillna(0).to_numpy()
    out = pd.DataFrame(index=key)
    out["n_buildings"] = nb.astype(np.int64)
    out["n_water_deficient"] = s["n_water_deficient"].fillna(0).to_numpy().astype(np.int64)
    out["n_water_covered"] = out["n_buildings"] - out["n_water_deficient"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_water_deficient"] = np.where(nb > 0, out["n_water_deficient"] / nb, np.nan)
        c = cnt.fillna(0).to_numpy()
        out["water_deficiency_score"] = np.where(c > 0, s["score"].to_numpy() / c, np.nan)
    return out


def _hydrants_per_cell(
    hydrants: gpd.GeoDataFrame | None, grids: gpd.GeoDataFrame, key: pd.Index, crs
) -> pd.DataFrame:
    """Hydrants per cell: all, working (``ok``), ``broken``, ``missing``."""
    columns = ["n_hydrants", "n_hydrants_ok", "n_hydrants_broken", "n_hydrants_missing"]
    if hydrants is None or not len(hydrants):
        return pd.DataFrame(0, index=key, columns=columns, dtype=np.int64)
    require_projected(hydrants, "hydrants", crs, crs_of="buildings")
    st = hydrants["status"].astype("string").str.strip().str.lower()
    hv = pd.DataFrame(
        {
            "n_hydrants": 1.0,
            "n_hydrants_ok": working_hydrants(hydrants).astype(float),
            "n_hydrants_broken": st.eq("broken").fillna(False).to_numpy(dtype=float),
            "n_hydrants_missing": st.eq("missing").fillna(False).to_numpy(dtype=float),
        },
        index=hydrants.index,
    )
    cells = assign_grids(hydrants, grids, what="hydrants")[0]
    return aggregate_by_grid(cells, hv, "sum", grid_ids=key).fillna(0)[columns].astype(np.int64)


def _sources_per_cell(
    water_sources: gpd.GeoDataFrame | None,
    grids: gpd.GeoDataFrame,
    key: pd.Index,
    crs,
    params: WaterParams,
) -> pd.DataFrame:
    """Water sources per cell, those that count, and their capacities (m³)."""
    out = pd.DataFrame(index=key)
    status = water_source_status(water_sources, params=params)  # checks the layer's columns
    if water_sources is None or not len(water_sources):
        out["n_water_sources"] = 0
        out["n_water_sources_usable"] = 0
        out["capacity_m3"] = 0.0
        out["capacity_usable_m3"] = 0.0
        return out
    require_projected(water_sources, "water_sources", crs, crs_of="buildings")
    cap = (
        pd.to_numeric(status["capacity_m3"], errors="coerce").to_numpy(dtype=float)
        if "capacity_m3" in status
        else np.full(len(status), np.nan)
    )
    counts = status["source_counts"].to_numpy(dtype=bool)
    sv = pd.DataFrame(
        {
            "n_water_sources": 1.0,
            "n_water_sources_usable": counts.astype(float),
            "capacity_m3": cap,
            "capacity_usable_m3": np.where(counts, cap, np.nan),
        },
        index=status.index,
    )
    cells = assign_grids(status, grids, what="water_sources")[0]
    ss = aggregate_by_grid(cells, sv, "sum", grid_ids=key)
    out["n_water_sources"] = ss["n_water_sources"].fillna(0).to_numpy().astype(np.int64)
    out["n_water_sources_usable"] = (
        ss["n_water_sources_usable"].fillna(0).to_numpy().astype(np.int64)
    )
    out["capacity_m3"] = ss["capacity_m3"].fillna(0).to_numpy(dtype=float)
    out["capacity_usable_m3"] = ss["capacity_usable_m3"].fillna(0).to_numpy(dtype=float)
    return out
