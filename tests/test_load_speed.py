"""The load step's fast paths give what the plain GeoPandas ways give.

The load step (read, validate, project, assign grid cells) was made fast for city-size layers
(5 M buildings): grid cells by one STRtree query per level instead of ``geopandas.sjoin``,
point layers projected from their coordinates instead of ``to_crs``, whole-number ids checked
for repeats as numbers, the coordinate-readings check moving outliers first. Each is checked
here against the way it replaced (``sjoin``, ``to_crs``, the ids as text, one block), and a
synthetic 200k-building GeoParquet district (points and polygons, some outside, bad rows) is
loaded end to end and compared with GeoPandas' own reading and projection of the same file.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from firegrid.spatial.io import validate
from firegrid.spatial.io.crs import WGS84, gcj02_to_wgs84, project, wgs84_to_gcj02
from firegrid.spatial.io.district import LayerSpec, load_district
from firegrid.spatial.io.grids import AssignmentReport, assign_grids
from firegrid.spatial.io.layers import SCHEMAS, VALUE_SYNONYMS, clean_text
from firegrid.spatial.io.sources import LayerSource, source_of
from firegrid.spatial.io.validate import check_extent, coerce_layer

UTM51 = "EPSG:32651"
X0, Y0, W = 121.40, 31.20, 0.06  # the synthetic district: 0.06° square in Shanghai


# --- the reference grid assignment: geopandas.sjoin and id lookups, as the load step did it ---


def _sjoin_cells(features: gpd.GeoDataFrame, grids: gpd.GeoDataFrame):
    """Each feature's cell per level by ``geopandas.sjoin`` on its surface point, the finer
    level's parent_id chain winning (the documented rule of assign_grids)."""
    ids = clean_text(grids["grid_id"])
    parents = (
        clean_text(grids["parent_id"])
        if "parent_id" in grids
        else pd.Series(pd.NA, index=grids.index, dtype="string")
    )
    levels = grids["level"].astype(int)
    parent_of = pd.Series(parents.to_numpy(), index=ids.to_numpy())
    level_of = pd.Series(levels.to_numpy(), index=ids.to_numpy())
    geoms = np.asarray(features.geometry.values, dtype=object)
    valid = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    pts = gpd.GeoDataFrame(
        {"_pos": np.flatnonzero(valid)},
        geometry=shapely.point_on_surface(geoms[valid]),
        crs=features.crs,
    )
    report = AssignmentReport()
    cells = pd.DataFrame(index=features.index)
    finer = None
    for level in sorted(levels.unique(), reverse=True):
        layer = gpd.GeoDataFrame(
            {"_gid": ids[levels == level].to_numpy()},
            geometry=grids.geometry[levels == level].values,
            crs=grids.crs,
        )
        hit = gpd.sjoin(pts, layer, how="inner", predicate="intersects")
        hit = hit.sort_values(["_pos", "_gid"]).drop_duplicates("_pos")
        direct = pd.Series(pd.NA, index=range(len(features)), dtype="string")
        direct.iloc[hit["_pos"].to_numpy()] = hit["_gid"].astype("string").to_numpy()
        if finer is None:
            chosen = direct
            report.direct[level] = report.disagree[level] = 0
        else:
            up = finer.map(parent_of).astype("string")
            up = up.where((up.map(level_of) == level).fillna(False).astype(bool), pd.NA)
            report.direct[level] = int((up.isna() & direct.notna()).sum())
            report.disagree[level] = int((up.notna() & direct.notna() & (up != direct)).sum())
            chosen = up.fillna(direct)
        report.unassigned[level] = int(chosen.isna().sum())
        cells[f"grid_id_l{level}"] = pd.array(chosen.to_numpy(), dtype="string")
        finer = chosen
    return cells, report


def _three_level_grids() -> gpd.GeoDataFrame:
    """A 2×2 km top cell, four communities, sixteen cells; one cell's parent_id names the
    wrong community, one community is left without cells in a corner, ids in no
    particular order (the tie on shared edges goes to the smaller id)."""
    rows = [("T", 1, None, shapely.box(0, 0, 2000, 2000))]
    for i in range(2):
        for j in range(2):
            c = f"C{3 - (2 * i + j)}"
            rows.append(
                (c, 2, "T", shapely.box(i * 1000, j * 1000, (i + 1) * 1000, (j + 1) * 1000))
            )
            for a in range(2):
                for b in range(2):
                    if (i, j, a, b) == (1, 1, 1, 1):
                        continue  # a corner of community C0 in no level-3 cell
                    x, y = i * 1000 + a * 500, j * 1000 + b * 500
                    rows.append((f"g{i}{j}{a}{b}", 3, c, shapely.box(x, y, x + 500, y + 500)))
    grids = gpd.GeoDataFrame(
        {
            "grid_id": [r[0] for r in rows],
            "level": [r[1] for r in rows],
            "parent_id": [r[2] for r in rows],
        },
        geometry=[r[3] for r in rows],
        crs=UTM51,
    )
    grids.loc[grids["grid_id"] == "g0000", "parent_id"] = "C2"  # geometry says C3
    return grids


def _features(n: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Points and small squares over and around the grids; some on shared edges and
    corners, some outside every cell, some without geometry."""
    x = rng.uniform(-300, 2300, n)
    y = rng.uniform(-300, 2300, n)
    on_edge = rng.random(n) < 0.1
    x[on_edge] = rng.choice([0.0, 500.0, 1000.0, 1500.0, 2000.0], on_edge.sum())
    geoms = shapely.points(x, y)
    square = rng.random(n) < 0.3
    geoms[square] = shapely.box(x[square] - 3, y[square] - 3, x[square] + 3, y[square] + 3)
    geoms[rng.random(n) < 0.01] = None
    return gpd.GeoDataFrame({"building_id": np.arange(n).astype(str)}, geometry=geoms, crs=UTM51)


def test_grid_cells_match_sjoin_on_three_levels():
    grids = _three_level_grids()
    features = _features(20_000, np.random.default_rng(3))
    cells, report = assign_grids(features, grids)
    expected, expected_report = _sjoin_cells(features, grids)
    pd.testing.assert_frame_equal(cells, expected, check_exact=True)
    assert report == expected_report
    # The cases the reference exercises are really there.
    assert report.disagree[2] > 0 and report.direct[2] > 0
    assert report.unassigned[3] > report.unassigned[1] > 0


def test_grid_cells_match_sjoin_on_one_level_and_in_another_index():
    grids = _three_level_grids()
    grids = grids[grids["level"] == 3].drop(columns="parent_id")
    features = _features(5_000, np.random.default_rng(4))
    features.index = np.arange(len(features))[::-1] * 7  # not 0..n-1
    cells, report = assign_grids(features, grids)
    expected, expected_report = _sjoin_cells(features, grids)
    pd.testing.assert_frame_equal(cells, expected, check_exact=True)
    assert report == expected_report


# --- project: GeoDataFrame.to_crs, faster for points ---


def _same_as_to_crs(frame, crs):
    fast, plain = project(frame, crs), frame.to_crs(crs)
    assert type(fast) is type(plain)
    assert fast.crs == plain.crs
    assert fast.index.equals(plain.index)
    assert fast.attrs == plain.attrs
    a = np.asarray(fast.geometry.values, dtype=object)
    b = np.asarray(plain.geometry.values, dtype=object)
    assert list(shapely.to_wkb(a)) == list(shapely.to_wkb(b))
    if isinstance(frame, gpd.GeoDataFrame):
        assert list(fast.columns) == list(plain.columns)
        assert fast.geometry.name == plain.geometry.name
        pd.testing.assert_frame_equal(
            pd.DataFrame(fast.drop(columns=fast.geometry.name)),
            pd.DataFrame(plain.drop(columns=plain.geometry.name)),
        )
    else:
        assert fast.name == plain.name


def test_project_equals_to_crs():
    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(121.3, 121.6, 2000), rng.uniform(31.1, 31.3, 2000)
    points = gpd.GeoDataFrame(
        {"id": np.arange(2000), "name": ["a"] * 2000},
        geometry=shapely.points(lon, lat),
        crs=WGS84,
        index=np.arange(2000) * 3,
    ).rename_geometry("where")
    points.attrs["firegrid_source"] = {"file": "x"}
    _same_as_to_crs(points, UTM51)
    _same_as_to_crs(points.geometry, UTM51)
    _same_as_to_crs(points, "EPSG:4490")
    _same_as_to_crs(points.to_crs(UTM51), WGS84)
    # Anything but plain 2-D points takes GeoPandas' own way, with the same result.
    mixed = points.copy()
    mixed.loc[mixed.index[:5], "where"] = shapely.buffer(mixed.geometry.iloc[:5].values, 0.001)
    _same_as_to_crs(mixed, UTM51)
    with_z = points.set_geometry(shapely.points(lon, lat, np.ones(2000)), crs=WGS84)
    _same_as_to_crs(with_z, UTM51)
    empty = points.copy()
    empty.loc[empty.index[0], "where"] = shapely.Point()
    _same_as_to_crs(empty, UTM51)


# --- coerce_layer: whole-number ids, category values ---


def _coerced(ids, **columns):
    n = len(ids)
    gdf = gpd.GeoDataFrame(
        {"building_id": ids, **columns},
        geometry=shapely.points(np.linspace(121.4, 121.5, n), np.full(n, 31.2)),
        crs=WGS84,
    )
    return coerce_layer(gdf, SCHEMAS["buildings"], LayerSource("b.parquet"))


@pytest.mark.parametrize(
    "ids",
    [
        np.arange(1000),  # ascending: the common case
        np.arange(1000)[::-1].copy(),
        np.r_[np.arange(500), np.arange(400, 900)],  # 100 repeated, in order
        np.random.default_rng(6).integers(0, 700, 1000),  # many repeats
        np.array([5, 3, 5, 7, 3, 3], dtype=np.uint32),
    ],
)
def test_whole_number_ids_repeat_as_their_text_does(ids):
    as_numbers, report_n = _coerced(ids)
    as_text, report_t = _coerced(ids.astype(str).astype(object))
    assert report_n.lines() == report_t.lines()
    pd.testing.assert_series_equal(as_numbers["building_id"], as_text["building_id"])


def test_nullable_whole_number_ids_keep_the_text_way():
    ids = pd.array([1, 2, None, 2, None, 4], dtype="Int64")
    _, report = _coerced(ids)
    text = pd.Series(["1", "2", None, "2", None, "4"], dtype=object)
    _, report_t = _coerced(text)
    assert report.lines() == report_t.lines()
    assert any("duplicate id '2'" in line for line in report.lines())


@pytest.mark.parametrize(
    "column, values",
    [
        ("height_m", np.r_[np.random.default_rng(9).uniform(0, 700, 5000), np.nan, 1e300]),
        ("height_m", np.array([3.0, np.inf, -np.inf, -1.0, 700.0, 700.0000001, 1e-310])),
        ("floors", np.array([True, False, True])),
        ("floors", 10.0 ** np.random.default_rng(10).uniform(-300, 3, 5000)),
        ("year_built", np.array([1999.0, 1999.5, 1750.0, 999.0, np.nan, 2100.0, 1800.0])),
        ("year_built", np.array([1999, 1750, 999, 2100, 1800], dtype=np.int64)),
        ("residents", np.array([0, 5, 100_000, 100_001, 2**62], dtype=np.uint64)),
        ("elderly_alone", np.random.default_rng(11).integers(-5, 10_005, 5000)),
    ],
)
def test_numbers_stored_as_numbers_convert_as_their_text_does(column, values):
    # The same cells in an object column take the text way (spelled out, parsed back);
    # yes/no cells were always read as 1.0/0.0 first.
    ids = np.arange(len(values))
    as_numbers, report_n = _coerced(ids, **{column: values})
    cells = values.astype(float) if values.dtype == bool else values
    as_objects, report_o = _coerced(ids, **{column: cells.astype(object)})
    assert as_objects[column].dtype == as_numbers[column].dtype
    pd.testing.assert_series_equal(as_numbers[column], as_objects[column], check_exact=True)
    assert report_n.lines() == report_o.lines()


def test_coerce_layer_leaves_the_callers_frame_as_it_was():
    n = 50
    gdf = gpd.GeoDataFrame(
        {
            "building_id": np.arange(n),
            "use": ["住宅"] * n,
            "floors": ["3"] * n,
            "height_m": np.linspace(3, 30, n),
            "extra": ["kept"] * n,
        },
        geometry=[shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])] * n,  # repaired
        crs=WGS84,
    )
    before = gdf.copy(deep=True)
    out, _ = coerce_layer(gdf, SCHEMAS["buildings"], LayerSource("b.gpkg"))
    assert out["use"].iloc[0] == "residential" and out["floors"].dtype == float
    pd.testing.assert_frame_equal(pd.DataFrame(gdf), pd.DataFrame(before))
    assert gdf.geometry.equals(before.geometry)


def test_category_values_map_cell_by_cell():
    rng = np.random.default_rng(7)
    words = np.array(["住宅", " 办公 ", "Residential", "shop", "仓库", "", None, "castle"], object)
    use = words[rng.integers(0, len(words), 3000)]
    out, report = _coerced(np.arange(3000), use=use)
    synonyms = {k.lower(): v for k, v in VALUE_SYNONYMS["use"].items()}
    cells = [None if v is None else v.strip().lower() for v in use]
    expected = [synonyms.get(v, v) if v else None for v in cells]
    assert out["use"].astype(object).where(out["use"].notna(), None).tolist() == expected
    assert any("'castle'" in e for e in report.errors)


# --- the coordinate-readings check: blocks only decide how soon ---


@pytest.mark.parametrize("declared_gcj", [False, True])
def test_readings_answer_does_not_depend_on_blocks(monkeypatch, declared_gcj):
    rng = np.random.default_rng(8)
    boundary = shapely.box(X0, Y0, X0 + W, Y0 + W)
    lon = rng.uniform(X0, X0 + W, 5000)
    lat = rng.uniform(Y0, Y0 + W, 5000)
    lon[:40] += 0.02  # some ~2 km out: an error whatever the reading
    # As loaded (WGS84): plain WGS84 declared GCJ-02 has had an offset removed that was never
    # there; GCJ-02 declared WGS84 keeps its offset. Either moves the edge features ~500 m out.
    x, y = gcj02_to_wgs84(lon, lat) if declared_gcj else wgs84_to_gcj02(lon, lat)
    gdf = gpd.GeoDataFrame(
        {"hydrant_id": np.arange(5000).astype(str)}, geometry=shapely.points(x, y), crs=WGS84
    )
    args = (gdf, SCHEMAS["hydrants"], LayerSource("h.csv"), boundary, UTM51)
    offset = "gcj02" if declared_gcj else None
    whole = check_extent(*args, declared_offset=offset).lines()
    monkeypatch.setattr(validate, "READING_BLOCK", 7)
    assert check_extent(*args, declared_offset=offset).lines() == whole
    assert len(whole) == 1
    assert (
        "likely cause: "
        + (
            "WGS84/CGCS2000 data declared as GCJ-02"
            if declared_gcj
            else "GCJ-02 (Amap/Tencent) data declared as WGS84"
        )
        in whole[0]
    )


# --- a 200k-building GeoParquet district, end to end ---


def _write_district(folder, n, *, bad=False, seed=7):
    rng = np.random.default_rng(seed)
    top = shapely.box(X0, Y0, X0 + W, Y0 + W)
    h = W / 2
    cells = [
        shapely.box(X0 + i * h, Y0 + j * h, X0 + (i + 1) * h, Y0 + (j + 1) * h)
        for i in (0, 1)
        for j in (0, 1)
    ]
    grids = gpd.GeoDataFrame(
        {
            "grid_id": ["G1", "G1a", "G1b", "G1c", "G1d"],
            "level": [1, 2, 2, 2, 2],
            "parent_id": [None, "G1", "G1", "G1", "G1"],
        },
        geometry=[top, *cells],
        crs=4326,
    )
    # 2 % of the buildings up to ~380 m outside (warnings), half of them polygons.
    x = rng.uniform(X0 - 0.004, X0 + W + 0.004, n)
    y = rng.uniform(Y0, Y0 + W, n)
    inside = rng.random(n) < 0.98
    x[inside] = np.clip(x[inside], X0 + 1e-4, X0 + W - 1e-4)
    geoms = shapely.points(x, y)
    poly = np.flatnonzero(rng.random(n) < 0.5)
    d = rng.uniform(5e-5, 2e-4, len(poly))
    geoms[poly] = shapely.box(x[poly] - d, y[poly] - d, x[poly] + d, y[poly] + d)
    bow, flat = poly[:10], poly[10:20]  # self-intersecting (repaired) and collapsed (dropped)
    geoms[bow] = [
        shapely.Polygon([(a, b), (a + 1e-4, b + 1e-4), (a + 1e-4, b), (a, b + 1e-4)])
        for a, b in zip(x[bow], y[bow], strict=True)
    ]
    geoms[flat] = [
        shapely.Polygon([(a, b), (a + 1e-4, b), (a + 2e-4, b), (a, b)])
        for a, b in zip(x[flat], y[flat], strict=True)
    ]
    uses = np.array(["住宅", "办公", "residential", "shop", "仓库", "", "其他"], dtype=object)
    year = rng.integers(1950, 2024, n).astype(float)
    year[rng.random(n) < 0.01] = np.nan
    year[:3] = 1750
    data = {
        "building_id": np.char.add("B", np.arange(n).astype(str)).astype(object),
        "use": uses[rng.integers(0, len(uses), n)],
        "floors": rng.integers(1, 30, n).astype(str).astype(object),
        "height_m": rng.uniform(3, 90, n).round(1),
        "year_built": year,
        "wood_stairs": rng.integers(0, 2, n),
        "wiring_condition": np.array(["良好", "一般", "老化", "good", None], object)[
            rng.integers(0, 5, n)
        ],
        "ebike_indoor": np.array(["是", "否", "1", "0", ""], object)[rng.integers(0, 5, n)],
        "group_rental": rng.random(n) < 0.1,
        "residents": rng.integers(0, 300, n),
    }
    if bad:
        data["floors"][[5, 9, 11]] = ["three", "inf", "500"]
        data["building_id"][20] = "B21"
        data["building_id"][30] = "  "
        data["use"][40] = "castle"
        data["ebike_indoor"][50] = "maybe"
        geoms[70] = shapely.Point(X0 + 0.5, Y0)
    stations = gpd.GeoDataFrame(
        {"station_id": [f"S{i}" for i in range(50)], "kind": "micro_station"},
        geometry=shapely.points(rng.uniform(X0, X0 + W, 50), rng.uniform(Y0, Y0 + W, 50)),
        crs=4326,
    )
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / f"{name}.parquet" for name in ("grids", "buildings", "stations")}
    grids.to_parquet(files["grids"])
    gpd.GeoDataFrame(data, geometry=geoms, crs=4326).to_parquet(files["buildings"])
    stations.to_parquet(files["stations"])
    return files


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    files = _write_district(tmp_path_factory.mktemp("city"), 200_000)
    district, report = load_district({n: LayerSpec(f) for n, f in files.items()})
    return files, district, report


def test_200k_buildings_load_as_geopandas_reads_and_projects_them(city):
    files, district, report = city
    assert report.ok
    b = district.buildings
    raw = gpd.read_parquet(files["buildings"])
    _, rows = source_of(b)
    assert len(b) == len(raw) - 10 and len(rows) == len(b)  # the ten collapsed ones dropped
    kept = raw.iloc[rows]
    valid = shapely.is_valid(np.asarray(kept.geometry.values, dtype=object))
    assert (~valid).sum() == 10  # the ten repaired ones
    expected = np.asarray(kept.geometry.to_crs(district.crs).values, dtype=object)[valid]
    got = np.asarray(b.geometry.values, dtype=object)[valid]
    assert list(shapely.to_wkb(got)) == list(shapely.to_wkb(expected))
    assert b["building_id"].tolist() == kept["building_id"].tolist()
    synonyms = {k.lower(): v for k, v in VALUE_SYNONYMS["use"].items()}
    uses = [synonyms.get(u.lower(), u.lower()) if u else None for u in kept["use"]]
    assert b["use"].astype(object).where(b["use"].notna(), None).tolist() == uses
    cells, _ = _sjoin_cells(b, district.grids)
    pd.testing.assert_frame_equal(district.cells, cells.set_axis(b.index), check_exact=True)
    outside = int(cells["grid_id_l1"].isna().sum())
    assert 0 < outside < 0.02 * len(b)
    name = files["buildings"]
    assert report.warnings == [
        f"{name}: feature 1 (building_id B0), column 'year_built': below 1800 (accepted: rare "
        "but real; check it is not a typo): 1750; 2 more rows like it",
        report.warnings[1],  # repaired …: names the first one and GEOS' reason
        report.warnings[2],  # dropped …
        f"{name}: column 'geometry': {outside} of {len(b)} buildings lie in no grid cell: they "
        f"count in no per-grid figure (first: {report.warnings[3].split('(first: ')[1]}",
    ]
    assert "repaired 10 invalid geometries" in report.warnings[1]
    assert "dropped 10 feature(s) whose outline has no area" in report.warnings[2]


def test_bad_rows_are_reported_in_the_same_words(tmp_path):
    # The words FireGrid used before the load step was made fast (at de12f69), for this file.
    files = _write_district(tmp_path, 200_000, bad=True)
    district, report = load_district({n: LayerSpec(f) for n, f in files.items()})
    f = files["buildings"]
    assert "buildings" not in district.layers
    assert report.errors == [
        f"{f}: feature 31 (building_id ), column 'building_id': required value is empty",
        f"{f}: feature 41 (building_id B40), column 'use': not one of ['residential', 'office', "
        "'shop', 'three_in_one', 'warehouse', 'public', 'industrial', 'underground', 'other']: "
        "'castle'",
        f"{f}: feature 6 (building_id B5), column 'floors': not a number: 'three'",
        f"{f}: feature 10 (building_id B9), column 'floors': not a finite number: 'inf'",
        f"{f}: feature 12 (building_id B11), column 'floors': outside the plausible range "
        "-5–200: '500'",
        f"{f}: feature 51 (building_id B50), column 'ebike_indoor': not yes/no (use 1/0, "
        "true/false, 是/否): 'maybe'",
        f"{f}: feature 21, column 'building_id': duplicate id 'B21' at feature 21 and feature 22",
        f"{f}: feature 71 (building_id B70), column 'geometry': 1 feature(s) lie outside the "
        "district (this one 41925 m outside); check the coordinates and the declared "
        "coordinate system",
    ]
