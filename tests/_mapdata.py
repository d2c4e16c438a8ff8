"""Synthetic analysis results with the canonical output columns, for map/export/report tests."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, Point, box

from firegrid.maps.privacy import personal_by_name
from firegrid.risk.params import FACTORS
from firegrid.spatial.io.crs import working_crs_for
from tests.conftest import DLAT, DLON, LAT0, LON0, tiny_grids

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>`${window.__xss=1}`\\'


def synthetic_results(n_buildings: int = 60, seed: int = 3) -> dict[str, gpd.GeoDataFrame]:
    """Every layer the map draws, in the district's UTM CRS, with plausible computed columns."""
    rng = np.random.default_rng(seed)
    grids_wgs = tiny_grids()
    crs = working_crs_for(grids_wgs)
    grids = grids_wgs.to_crs(crs)
    x = LON0 + rng.uniform(0.05, 0.95, n_buildings) * DLON
    y = LAT0 + rng.uniform(0.05, 0.95, n_buildings) * DLAT
    b = gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:03d}" for i in range(n_buildings)],
            "name": [f"{i}号楼" for i in range(n_buildings)],
            "use": rng.choice(["residential", "shop", "three_in_one"], n_buildings),
            "floors": pd.array(rng.integers(2, 20, n_buildings), dtype="Int64"),
            "year_built": pd.array(rng.integers(1960, 2020, n_buildings), dtype="Int64"),
            "wood_stairs": pd.array(rng.integers(0, 2, n_buildings).astype(bool), dtype="boolean"),
            "residents": pd.array(rng.integers(0, 120, n_buildings), dtype="Int64"),
            "contact_phone": [f"138{rng.integers(10**7, 10**8)}" for _ in range(n_buildings)],
            "户主姓名": ["张三"] * n_buildings,
        },
        geometry=[box(a, c, a + 0.00025, c + 0.0002) for a, c in zip(x, y, strict=True)],
        crs="EPSG:4326",
    ).to_crs(crs)
    contrib = rng.uniform(0, 8, (n_buildings, len(FACTORS)))
    for k, f in enumerate(FACTORS):
        b[f"c_{f}"] = contrib[:, k]
    b["risk_index"] = contrib.sum(axis=1)
    b["risk_grade"] = pd.array(
        np.select(
            [b["risk_index"] >= 60, b["risk_index"] >= 45, b["risk_index"] >= 30], [1, 2, 3], 4
        ),
        dtype="Int64",
    )
    b["risk_grade_label"] = (
        b["risk_grade"].map({1: "重大", 2: "较大", 3: "一般", 4: "低"}).astype("string")
    )
    b["t_micro_s"] = rng.uniform(60, 400, n_buildings)
    b["t_fire_s"] = rng.uniform(120, 500, n_buildings)
    b["covered_3min"] = b["t_micro_s"] <= 180
    b["covered_5min"] = b["t_fire_s"] <= 300
    b["shortfall_3min_s"] = np.maximum(0, b["t_micro_s"] - 180)
    b["shortfall_5min_s"] = np.maximum(0, b["t_fire_s"] - 300)
    b["micro_station_id"] = "M1"
    b["fire_station_id"] = "F1"
    b["access_m"] = rng.uniform(2, 60, n_buildings)
    b["access_issue"] = ""
    b["d_hydrant_m"] = rng.uniform(10, 300, n_buildings)
    b["d_hydrant_net_m"] = b["d_hydrant_m"] * 1.3
    b["water_covered"] = b["d_hydrant_net_m"] <= 150
    b["water_deficient"] = ~b["water_covered"]
    b["hazards_open"] = rng.integers(0, 3, n_buildings)
    b["hazards_overdue"] = np.minimum(b["hazards_open"], rng.integers(0, 2, n_buildings))

    grids["risk_index_mean"] = np.linspace(20, 85, len(grids))
    grids["n_buildings"] = 10

    def pts(coords, crs_out=crs, **cols):
        return gpd.GeoDataFrame(
            cols,
            geometry=[Point(LON0 + u * DLON, LAT0 + v * DLAT) for u, v in coords],
            crs="EPSG:4326",
        ).to_crs(crs_out)

    stations = pts(
        [(0.3, 0.5), (0.7, 0.4), (0.5, 0.8)],
        station_id=["F1", "M1", "M2"],
        name=["消防救援站", "一号微站", "二号微站"],
        kind=["fire_station", "micro_station", "micro_station"],
        vehicle=["engine", "ebike", "foot"],
        turnout_s=[60.0, 45.0, 30.0],
    )
    hydrants = pts(
        [(0.1 + 0.1 * k, 0.2 + 0.07 * k) for k in range(8)],
        hydrant_id=[f"H{k}" for k in range(8)],
        status=["ok"] * 5 + ["broken", "missing", "ok"],
        flow_lps=[15.0] * 8,
    )
    sources = pts([(0.9, 0.9)], source_id=["W1"], kind=["fire_pool"], capacity_m3=[300.0])
    hazards = pts(
        [(0.2, 0.3), (0.6, 0.6), (0.8, 0.2)],
        hazard_id=["Z1", "Z2", "Z3"],
        building_id=["B001", "B002", "B003"],
        category=["general", "major", "general"],
        status=["open", "overdue", "rectified"],
        found_on=pd.to_datetime(["2026-01-05", "2025-11-01", "2026-02-01"]),
    )
    iso_rows = []
    for _, s in stations.iterrows():
        speed = 4.0 if s["kind"] == "micro_station" else 8.0
        for minutes in (1.0, 3.0, 5.0):
            iso_rows.append(
                {
                    "station_id": s["station_id"],
                    "kind": s["kind"],
                    "minutes": minutes,
                    "geometry": s.geometry.buffer(speed * 60 * minutes * 0.4),
                }
            )
    isochrones = gpd.GeoDataFrame(iso_rows, crs=crs)
    cells = shapely.voronoi_polygons(
        shapely.multipoints(stations.geometry.values), extend_to=shapely.box(*grids.total_bounds)
    )
    area_geoms = shapely.intersection(
        np.asarray(shapely.get_parts(cells)), shapely.box(*grids.total_bounds)
    )
    areas = gpd.GeoDataFrame(geometry=list(area_geoms), crs=crs)
    areas = areas.sjoin(stations[["station_id", "kind", "geometry"]], predicate="contains").drop(
        columns="index_right"
    )
    deficient = gpd.GeoDataFrame(
        {"n_buildings": [4]},
        geometry=[
            box(LON0 + 0.7 * DLON, LAT0 + 0.7 * DLAT, LON0 + 0.95 * DLON, LAT0 + 0.95 * DLAT)
        ],
        crs="EPSG:4326",
    ).to_crs(crs)
    sites = pts(
        [(0.85, 0.85)],
        site_id=["N01"],
        rank=[1],
        gain_buildings=[7],
        gain_residents=[120.0],
        covered_after=[40],
        covered_share_after=[0.667],
        road_name=["青林街"],
    )
    proposed_hydrants = pts(
        [(0.8, 0.8), (0.9, 0.75)],
        proposal_id=["PH001", "PH002"],
        rank=[1, 2],
        n_buildings=[4, 2],
        n_new_covered=[4, 1],
        street=["湖江路", "青林街"],
    )
    lines = [
        LineString([(LON0, LAT0 + f * DLAT), (LON0 + DLON, LAT0 + f * DLAT)])
        for f in (0.25, 0.5, 0.75)
    ] + [
        LineString([(LON0 + f * DLON, LAT0), (LON0 + f * DLON, LAT0 + DLAT)]) for f in (0.33, 0.66)
    ]
    roads = gpd.GeoDataFrame(
        {"highway": ["primary", "residential", "residential", "secondary", "service"]},
        geometry=lines,
        crs="EPSG:4326",
    ).to_crs(crs)
    return {
        "grids": grids,
        "buildings": b,
        "stations": stations,
        "hydrants": hydrants,
        "water_sources": sources,
        "hazards": hazards,
        "isochrones": isochrones,
        "areas": areas,
        "water_deficient": deficient,
        "sites": sites,
        "proposed_hydrants": proposed_hydrants,
        "roads": roads,
    }


# --------------------------------------------------------------------------------------------
# Hostile text: what a template engine, an HTML parser or a script would act on. A map must
# show each as itself.

HOSTILE = (
    "{{ 7*7 }}",
    "{{ lipsum.__globals__.os.getcwd() }}",
    "{#",
    "{{x}}",
    "{% raw %}",
    "{% endraw %} %} }} #} {%",
    "</script><script>alert(1)</script>",
    "<!--",
    "<b>x</b>",
    "&amp; &lt;",
    "${alert(1)}",
    "`",
    "'\"\\",
    "a\nb\r\tc",
    "\u2028",
    "\u2029",
)
# Only a map built in memory can hold these: no input file format writes them.
HOSTILE_IN_MEMORY = ("\x00", "x\ud800y", "\udfff")
HOSTILE_TEXT = " ".join(HOSTILE)
# Appended to every text cell of the hostile demo; it ends in a mark because the loaders strip
# ids and names (U+2028/U+2029 count as white space).
HOSTILE_SUFFIX = HOSTILE_TEXT + " |"
# The header of an extra (user) column, allowed into the map by ``allow_fields = ["all"]``.
HOSTILE_HEADER = "{{ 7*7 }}{# </script>${x}`"
# Columns whose values are canonical choices: a payload there would drop the row or stop the
# run (validation refuses unknown choices), so they keep their values.
CHOICE_COLUMNS = frozenset(
    {"use", "wiring_condition", "kind", "status", "category", "vehicle", "highway", "level"}
)
# Columns the map computes itself from others (a grade's label in the map's language).
RECOMPUTED = frozenset({"risk_grade_label", "top_factors"})


def shown(text: str) -> str:
    """``text`` as a page can show it: NUL and unpaired surrogates as U+FFFD."""
    return re.sub("[\x00\ud800-\udfff]", "\ufffd", text)


def hostile_results(texts: Sequence[str]) -> tuple[dict[str, gpd.GeoDataFrame], set[str]]:
    """:func:`synthetic_results` (one building per text) with ``texts`` in every free-text cell
    of every layer (row ``i`` holds ``texts[i % len(texts)]``) and in an extra buildings column
    headed :data:`HOSTILE_HEADER`; returns the layers and the names of the columns so filled."""
    layers = synthetic_results(n_buildings=len(texts))
    columns: set[str] = set()

    def cells(gdf):
        # object dtype: an Arrow string column cannot hold an unpaired surrogate
        values = [texts[i % len(texts)] for i in range(len(gdf))]
        return pd.Series(values, index=gdf.index, dtype=object)

    for gdf in layers.values():
        for col in gdf.columns:
            s = gdf[col]
            if col == gdf.geometry.name or col in CHOICE_COLUMNS | RECOMPUTED:
                continue
            if personal_by_name(col):  # kept out of the map whatever it holds
                continue
            if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
                gdf[col] = cells(gdf)
                columns.add(col)
    layers["buildings"][HOSTILE_HEADER] = cells(layers["buildings"])
    return layers, columns | {HOSTILE_HEADER}


def map_texts(html: str) -> dict[str, list]:
    """Every piece of text a rendered map carries, decoded as the browser would read it.

    ``features``: the properties of every embedded GeoJSON feature; ``fields`` and ``aliases``:
    the tooltip/popup field lists; ``overlays``: the layer-control names; ``title`` and
    ``heading``: the page title and the title box (raw HTML).
    """
    decoder = json.JSONDecoder()

    def decoded(marker: str) -> list:
        return [decoder.raw_decode(html, m.end())[0] for m in re.finditer(marker, html)]

    block = re.search(r"overlays :\s*\{(.*?)\},\s*\};", html, re.S)
    names = re.findall(r'^\s*("(?:[^"\\]|\\.)*")\s*:', block.group(1), re.M) if block else []
    return {
        "features": [
            f["properties"]
            for data in decoded(r"geo_json_[0-9a-f]+_add\(")
            for f in data["features"]
        ],
        "fields": decoded(r"let fields = "),
        "aliases": decoded(r"let aliases = "),
        "overlays": [json.loads(n) for n in names],
        "title": re.findall(r"<title>(.*?)</title>", html, re.S),
        "heading": re.findall(r'<div class="fg-box fg-title">(.*?)(?:<br>|</div>)', html, re.S),
    }


# Columns of the demo's input files that keep their values: canonical choices, dates and
# coordinates (under the demo's own Chinese headers too).
_DEMO_KEEP = CHOICE_COLUMNS | {
    "date", "类型", "状态", "类别", "车辆", "发现日期", "整改期限", "整改日期", "经度", "纬度",
}  # fmt: skip


def with_suffix(df: pd.DataFrame, suffix: str) -> pd.DataFrame:
    """``suffix`` appended to every non-empty free-text cell (ids included, so links hold)."""
    out = df.copy()
    geom = getattr(out, "_geometry_column_name", None)
    for col in out.columns:
        s = out[col]
        if col == geom or col in _DEMO_KEEP:
            continue
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        text = s.astype("string")
        filled = text.notna() & (text.str.strip() != "")
        if pd.to_numeric(text[filled], errors="coerce").notna().all():
            continue  # numbers stored as text (CSV ledgers)
        # missing stays None (pd.NA in an object column would be written as the text "<NA>")
        out[col] = text.where(~filled, text + suffix).astype(object).where(text.notna(), None)
    return out


@cache
def hostile_demo_config() -> Path:
    """A copy of the demo with :data:`HOSTILE_SUFFIX` appended to every free-text cell of every
    layer and to every street name of the road network, an extra buildings column headed
    :data:`HOSTILE_HEADER`, the district name ``"Demo " + HOSTILE_SUFFIX`` and
    ``[map] allow_fields = ["all"]`` (so every column but the personal ones reaches the map)."""
    import tomllib
    from xml.sax.saxutils import quoteattr

    from tests._demo import DEMO_CONFIG, transformed_demo

    def hostile(frame, layer):
        frame = with_suffix(frame, HOSTILE_SUFFIX)
        if layer == "buildings":
            frame[HOSTILE_HEADER] = HOSTILE_SUFFIX
        return frame

    folder = transformed_demo(hostile, prefix="firegrid-hostile-")
    config = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    osm = folder / config["network"]["source"]
    suffix = quoteattr(HOSTILE_SUFFIX)[1:-1]
    xml = osm.read_text(encoding="utf-8")
    xml = re.sub(r'(<tag k="name" v=")([^"]*)(")', lambda m: m[1] + m[2] + suffix + m[3], xml)
    osm.write_text(xml, encoding="utf-8")
    text = (folder / "demo.toml").read_text(encoding="utf-8")
    text = text.replace("allow_fields = []", 'allow_fields = ["all"]\nbasemap = "none"')
    # A TOML basic string: JSON's escapes (\n, \", \\, \uXXXX) are TOML's too.
    name = json.dumps("Demo " + HOSTILE_SUFFIX)
    text = re.sub(r'(?m)^name = ".*"$', lambda m: f"name = {name}", text, count=1)
    assert 'allow_fields = ["all"]' in text and HOSTILE_SUFFIX not in DEMO_CONFIG.read_text()
    (folder / "demo.toml").write_text(text, encoding="utf-8")
    return folder / "demo.toml"


@cache
def hostile_demo_map() -> tuple[Path, object]:
    """The whole pipeline on :func:`hostile_demo_config` and its map saved as ``map.html``
    beside the config: (path, run)."""
    from firegrid.pipeline import map_html, run_pipeline

    run = run_pipeline(hostile_demo_config(), progress=False)
    path = hostile_demo_config().parent / "map.html"
    path.write_bytes(map_html(run).encode("utf-8"))
    return path, run
