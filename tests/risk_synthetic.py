"""Synthetic districts for the risk tests: attributes, grids, hazards and incidents drawn from a
known logistic fire function, so a fitted model can be checked against the truth."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import box

from firegrid.spatial.io.layers import BUILDING_ATTRIBUTES

CRS = "EPSG:32651"  # UTM 51N (Shanghai), metres
X0, Y0 = 350_000.0, 3_450_000.0
SIDE = 2000.0  # the subdistrict is SIDE × SIDE metres

USES = ("residential", "shop", "three_in_one", "warehouse", "office", "underground", "public")
USE_P = (0.70, 0.10, 0.04, 0.04, 0.06, 0.02, 0.04)

# The true annual fire log-odds: intercept plus these effects (features as in firegrid.risk.model).
TRUE_INTERCEPT = -5.6
TRUE_EFFECTS = {
    "old_residential": 0.7,
    "wood_stairs": 0.5,
    "wiring_aged": 0.9,
    "ebike_indoor": 0.8,
    "group_rental": 0.6,
    "log_residents": 0.35,
    "three_in_one": 1.3,
    "warehouse": 0.6,
}


def grids() -> gpd.GeoDataFrame:
    """One level-1 subdistrict, 4 level-2 communities, 16 level-3 cells, except the north-east
    community whose north-east quarter has no level-3 cell (buildings there are assigned to the
    community directly)."""
    rows = [("S", "街道", 1, None, box(X0, Y0, X0 + SIDE, Y0 + SIDE))]
    half, quarter = SIDE / 2, SIDE / 4
    for i in range(2):
        for j in range(2):
            cid = f"C{i}{j}"
            x, y = X0 + i * half, Y0 + j * half
            rows.append((cid, f"社区{i}{j}", 2, "S", box(x, y, x + half, y + half)))
            for a in range(2):
                for b in range(2):
                    if (i, j, a, b) == (1, 1, 1, 1):
                        continue
                    xx, yy = x + a * quarter, y + b * quarter
                    rows.append(
                        (
                            f"{cid}-{a}{b}",
                            f"网格{i}{j}{a}{b}",
                            3,
                            cid,
                            box(xx, yy, xx + quarter, yy + quarter),
                        )
                    )
    return gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["grid_id", "name", "level", "parent_id", "geometry"]),
        geometry="geometry",
        crs=CRS,
    )


def buildings(
    n: int = 2000, *, seed: int = 1, missing: float = 0.0, access: bool = True
) -> gpd.GeoDataFrame:
    """Buildings with every canonical attribute; ``missing`` blanks that share of each."""
    rng = np.random.default_rng(seed)
    x = X0 + rng.uniform(10, SIDE - 30, n)
    y = Y0 + rng.uniform(10, SIDE - 30, n)
    use = rng.choice(USES, size=n, p=USE_P)
    year = rng.integers(1955, 2022, n)
    old = year <= 2000
    floors = np.where(rng.random(n) < 0.2, rng.integers(10, 33, n), rng.integers(1, 8, n))
    height = floors * rng.uniform(2.8, 3.3, n)
    wood = rng.random(n) < np.where(old, 0.5, 0.05)
    wiring = np.where(
        rng.random(n) < np.where(old, 0.5, 0.1),
        "aged",
        np.where(rng.random(n) < 0.5, "fair", "good"),
    )
    ebike = rng.random(n) < 0.3
    group = rng.random(n) < np.where(use == "residential", 0.15, 0.03)
    residents = np.where(
        np.isin(use, ["residential", "three_in_one"]),
        floors * rng.integers(4, 15, n),
        rng.integers(0, 5, n),
    )
    elderly = rng.binomial(residents, 0.05)
    gdf = gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:05d}" for i in range(n)],
            "use": pd.array(use, dtype="string"),
            "floors": pd.array(floors, dtype="Int64"),
            "height_m": height,
            "year_built": pd.array(year, dtype="Int64"),
            "wood_stairs": pd.array(wood, dtype="boolean"),
            "wiring_condition": pd.array(wiring, dtype="string"),
            "ebike_indoor": pd.array(ebike, dtype="boolean"),
            "group_rental": pd.array(group, dtype="boolean"),
            "elderly_alone": pd.array(elderly, dtype="Int64"),
            "residents": pd.array(residents, dtype="Int64"),
        },
        geometry=[box(a, b, a + 15, b + 12) for a, b in zip(x, y, strict=True)],
        crs=CRS,
    )
    if access:
        t_micro = rng.gamma(4, 45, n)
        t_fire = rng.gamma(6, 50, n)
        t_micro[rng.random(n) < 0.01] = np.nan  # unreachable
        gdf["t_micro_s"] = t_micro
        gdf["t_fire_s"] = t_fire
        gdf["covered_3min"] = pd.array(t_micro <= 180, dtype="boolean")
        gdf["covered_5min"] = t_fire <= 300
        gdf["shortfall_3min_s"] = np.maximum(0, t_micro - 180)
        gdf["shortfall_5min_s"] = np.maximum(0, t_fire - 300)
        d = rng.gamma(3, 60, n)
        gdf["d_hydrant_net_m"] = d
        gdf["water_covered"] = d <= 150
        gdf["water_deficient"] = d > 150
    if missing:
        gdf = with_gaps(gdf, missing, seed=seed + 100)
    return gdf


GAP_COLUMNS = BUILDING_ATTRIBUTES


def with_gaps(b: gpd.GeoDataFrame, share: float, *, seed: int = 9) -> gpd.GeoDataFrame:
    """A copy with ``share`` of each attribute blanked at random."""
    rng = np.random.default_rng(seed)
    out = b.copy()
    for col in GAP_COLUMNS:
        blank = rng.random(len(out)) < share
        out.loc[blank, col] = np.nan if out[col].dtype == float else pd.NA
    return out


def true_logit(b: pd.DataFrame) -> np.ndarray:
    """The true annual log-odds of a fire for fully known buildings."""
    use = b["use"].astype(object).to_numpy()
    old = ((b["year_built"].astype(float) <= 2000) & (use == "residential")).to_numpy(dtype=float)
    x = {
        "old_residential": old,
        "wood_stairs": b["wood_stairs"].astype(float).to_numpy(),
        "wiring_aged": (b["wiring_condition"].astype(object) == "aged").to_numpy(dtype=float),
        "ebike_indoor": b["ebike_indoor"].astype(float).to_numpy(),
        "group_rental": b["group_rental"].astype(float).to_numpy(),
        "log_residents": np.log1p(b["residents"].astype(float).to_numpy()),
        "three_in_one": (use == "three_in_one").astype(float),
        "warehouse": (use == "warehouse").astype(float),
    }
    return TRUE_INTERCEPT + sum(TRUE_EFFECTS[k] * x[k] for k in TRUE_EFFECTS)


def incidents(
    b: gpd.GeoDataFrame, years: range, *, seed: int = 2, share_without_id: float = 0.2
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Fires drawn per building-year from the true function; returns (incidents, true p)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / (1.0 + np.exp(-true_logit(b)))
    rows_b, rows_y = [], []
    for year in years:  # a few years, each vectorised over buildings
        built = b["year_built"].astype(float).to_numpy() <= year
        hit = (rng.random(len(b)) < p) & built
        rows_b.append(np.flatnonzero(hit))
        rows_y.append(np.full(hit.sum(), year))
    pos, yr = np.concatenate(rows_b), np.concatenate(rows_y)
    day = rng.integers(0, 365, len(pos))
    dates = pd.to_datetime(yr.astype(str), format="%Y") + pd.to_timedelta(day, unit="D")
    ids = b["building_id"].to_numpy()[pos].astype(object)
    ids[rng.random(len(pos)) < share_without_id] = None
    pts = b.geometry.values[pos].centroid
    inc = gpd.GeoDataFrame(
        {
            "incident_id": [f"F{i:05d}" for i in range(len(pos))],
            "date": dates,
            "kind": "building",
            "building_id": pd.array(ids, dtype="string"),
        },
        geometry=pts,
        crs=b.crs,
    )
    return inc, p


def hazards(b: gpd.GeoDataFrame, *, n: int = 300, seed: int = 3) -> gpd.GeoDataFrame:
    """A hazard ledger spread over 2023–2025, some rectified, some without building_id."""
    rng = np.random.default_rng(seed)
    pos = rng.integers(0, len(b), n)
    found = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    major = rng.random(n) < 0.15
    deadline = found + pd.to_timedelta(np.where(major, 60, 15), unit="D")
    fixed = rng.random(n) < 0.6
    rect = (found + pd.to_timedelta(rng.integers(1, 120, n), unit="D")).where(fixed, pd.NaT)
    ids = b["building_id"].to_numpy()[pos].astype(object)
    ids[rng.random(n) < 0.15] = None
    return gpd.GeoDataFrame(
        {
            "hazard_id": [f"H{i:04d}" for i in range(n)],
            "building_id": pd.array(ids, dtype="string"),
            "category": pd.array(np.where(major, "major", "general"), dtype="string"),
            "found_on": found,
            "deadline": deadline.where(rng.random(n) > 0.1, pd.NaT),
            "rectified_on": rect,
        },
        geometry=b.geometry.values[pos].centroid,
        crs=b.crs,
    )
