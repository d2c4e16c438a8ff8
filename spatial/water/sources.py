"""Which hydrants and fire water sources count (GB 50974-2014), and the ids of a layer."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from firegrid.spatial.errors import InputError
from firegrid.spatial.water.params import WaterParams

SOURCE_KINDS = ("fire_pool", "natural", "tank")


def layer_ids(gdf: gpd.GeoDataFrame, column: str) -> np.ndarray:
    """The id column as text ("" where missing), or the row labels when the layer has none."""
    if column in gdf:
        return gdf[column].astype("string").fillna("").to_numpy(dtype=object)
    return np.array([f"{i}" for i in gdf.index], dtype=object)


def working_hydrants(hydrants: gpd.GeoDataFrame | None) -> np.ndarray:
    """True for hydrants whose ``status`` is ``ok`` (broken, missing or unknown do not count)."""
    if hydrants is None or len(hydrants) == 0:
        return np.zeros(0 if hydrants is None else len(hydrants), dtype=bool)
    if "status" not in hydrants:
        raise InputError("required column missing", file="hydrants", column="status")
    st = hydrants["status"].astype("string").str.strip().str.lower()
    geom_ok = ~(hydrants.geometry.isna() | hydrants.geometry.is_empty).to_numpy()
    return st.eq("ok").fillna(False).to_numpy(dtype=bool) & geom_ok


def water_source_status(
    water_sources: gpd.GeoDataFrame | None, *, params: WaterParams | None = None
) -> gpd.GeoDataFrame:
    """Which fire water sources count towards coverage, and why not.

    Rules (GB 50974-2014): a **fire pool** counts unless its ``truck_access`` is recorded as
    false (§4.3.7 gives pools for outdoor water an engine intake; §6.1.5 counts each intake as a
    hydrant); **natural** water counts only with ``truck_access`` true (§4.4.5, §4.4.7); a
    **tank** counts only with ``truck_access`` true — roof and high-level tanks (§5.2) feed
    indoor systems, not engines. A pool or tank under ``min_source_capacity_m3`` does not count
    (§4.3.4); one without a recorded capacity counts if ``count_unknown_capacity``.

    Parameters
    ----------
    water_sources : GeoDataFrame or None
        ``source_id``, ``kind``, optionally ``capacity_m3`` (m³) and ``truck_access``.

    Returns
    -------
    GeoDataFrame
        A copy with ``source_counts`` (bool) and ``source_issue`` (empty when it counts).
    """
    params = params or WaterParams()
    if water_sources is None:
        return gpd.GeoDataFrame(
            {"source_id": pd.Series([], dtype="string"), "source_counts": [], "source_issue": []},
            geometry=gpd.GeoSeries([]),
        )
    out = water_sources.copy()
    if "kind" not in out:
        raise InputError("required column missing", file="water_sources", column="kind")
    kind = out["kind"].astype("string").str.strip().str.lower().fillna("").to_numpy(dtype=object)
    issue = _access_issue(kind, out)
    issue = _capacity_issue(kind, out, issue, params)
    no_geom = (out.geometry.isna() | out.geometry.is_empty).to_numpy()
    issue = np.where(no_geom, "no geometry", issue)
    out["source_counts"] = issue == ""
    out["source_issue"] = pd.array(issue, dtype="string")
    return out


def _access_issue(kind: np.ndarray, sources: gpd.GeoDataFrame) -> np.ndarray:
    """Why a source of a known kind cannot feed engines ("" where it can)."""
    truck = (
        sources["truck_access"].astype("boolean")
        if "truck_access" in sources
        else pd.Series(pd.NA, index=sources.index, dtype="boolean")
    )
    truck_yes = truck.eq(True).fillna(False).to_numpy(dtype=bool)
    truck_no = truck.eq(False).fillna(False).to_numpy(dtype=bool)
    issue = np.full(len(sources), "", dtype=object)
    issue[~np.isin(kind, SOURCE_KINDS)] = "unknown kind"
    issue[(kind == "fire_pool") & truck_no] = "no engine access to the intake"
    issue[(kind == "natural") & ~truck_yes] = "natural water without a recorded engine intake"
    issue[(kind == "tank") & ~truck_yes] = "tank without an engine intake (indoor supply only)"
    return issue


def _capacity_issue(
    kind: np.ndarray, sources: gpd.GeoDataFrame, issue: np.ndarray, params: WaterParams
) -> np.ndarray:
    """``issue`` with, where still empty, a pool or tank too small or of unknown capacity."""
    n = len(sources)
    cap = (
        pd.to_numeric(sources["capacity_m3"], errors="coerce").astype(float).to_numpy()
        if "capacity_m3" in sources
        else np.full(n, np.nan)
    )
    stored = (kind == "fire_pool") | (kind == "tank")
    small = stored & (cap < params.min_source_capacity_m3)
    unknown_cap = stored & np.isnan(cap) & (not params.count_unknown_capacity)
    cap_txt = pd.Series(cap).round(0).astype("Int64").astype("string").fillna("").to_numpy()
    small_msg = np.char.add(
        np.char.add("capacity ", cap_txt.astype(str)),
        f" m³ under {params.min_source_capacity_m3:g} m³",
    )
    issue = np.where((issue == "") & small, small_msg, issue)
    return np.where((issue == "") & unknown_cap, "capacity not recorded", issue)
