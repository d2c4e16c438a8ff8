"""Isochrones along reached streets, areas of responsibility and overlap counts."""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.ops import substring

from firegrid.spatial.access.isochrones import (
    areas_of_responsibility,
    cut_segments,
    reached_intervals,
    station_isochrones,
)
from firegrid.spatial.access.travel_times import building_access, compile_graphs
from firegrid.spatial.network.profiles import AccessParams
from firegrid.spatial.network.routing import RoutingGraph, Snap, nearest_cost, node_costs, snap
from tests.test_access import (
    demo,  # noqa: F401  (module fixture: the demo district)
    district,  # noqa: F401  (module fixture: a small district)
)
from tests.test_routing import CRS, grid_graph


def test_cut_segments_matches_shapely_substring():
    rg = RoutingGraph.from_graph(grid_graph(seed=3), None, weight="length")
    rng = np.random.default_rng(0)
    seg = rng.integers(0, rg.n_segments, 300)
    a, b = rng.random(300), rng.random(300)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    lo[:20], hi[:20] = 0.0, 1.0  # whole segments
    hi[20:30] = lo[20:30]  # empty pieces
    got = cut_segments(rg, seg, lo, hi)
    assert all(g is None for g in got[20:30])
    for k in np.r_[0:20, 30:300]:
        ref = substring(rg.seg_geom[seg[k]], lo[k], hi[k], normalized=True)
        assert got[k].length == pytest.approx(ref.length, abs=1e-6)
        assert shapely.hausdorff_distance(got[k], ref) < 1e-6


@pytest.mark.parametrize("profile", ["engine", "foot"])
def test_reached_intervals_are_exactly_the_points_within_threshold(profile):
    """Sample points along every segment: inside a reached piece iff their time <= T."""
    G = grid_graph(seed=5)
    params = AccessParams()
    rg = RoutingGraph.from_graph(G, params.profile(profile))
    stations = snap(rg, gpd.GeoSeries(shapely.points([(350_210, 3_460_190),
                                                      (350_420, 3_460_330)]), crs=CRS))  # fmt: skip
    offset = np.array([30.0, 60.0])
    T = 150.0
    dist = node_costs(rg, stations, source_offset=offset, cutoff=T)
    row, seg, lo, hi = reached_intervals(rg, stations, dist, T, source_offset=offset)
    frac = np.linspace(0.0005, 0.9995, 101)
    s_all = np.repeat(np.arange(rg.n_segments), len(frac))
    f_all = np.tile(frac, rg.n_segments)
    for r in range(2):
        t, _ = nearest_cost(rg, stations.take(np.array([r])), Snap.at(rg, s_all, f_all),
                            source_offset=offset[r : r + 1])  # fmt: skip
        mine = row == r
        covered = np.zeros(len(s_all), dtype=bool)
        for k, a, b in zip(seg[mine], lo[mine], hi[mine], strict=True):
            sel = s_all == k
            covered[sel] |= (f_all[sel] >= a - 1e-9) & (f_all[sel] <= b + 1e-9)
        clear = np.abs(t - T) > 1e-6  # points exactly at the threshold may go either way
        assert (covered[clear] == (t[clear] <= T)).all()
        assert 0 < covered.mean() < 1


@pytest.mark.parametrize("name", ["no_left_turn", "only_straight_on"])
def test_reached_intervals_obey_turn_restrictions(name):
    """With a restriction at the centre crossing, a street is reached only by the turns allowed
    into it: sampled points are inside a reached piece iff nearest_cost (checked by the turn
    tests against a line-graph reference) reaches them in time."""
    from tests.test_turns import FAR_WEST, NORTH, C, E, W, compile_grid, grid, rows, snaps

    edges = grid()
    move = (W, C, NORTH, name) if name.startswith("no") else (W, C, E, name)
    rg = compile_grid(edges, rows(edges, move))
    src = snaps(rg, [FAR_WEST])
    frac = np.linspace(0.0005, 0.9995, 201)
    s_all = np.repeat(np.arange(rg.n_segments), len(frac))
    f_all = np.tile(frac, rg.n_segments)
    t, _ = nearest_cost(rg, src, Snap.at(rg, s_all, f_all))
    mismatch_without_states = 0
    for T in (20.0, 35.0, 50.0):
        dist = node_costs(rg, src, cutoff=T)
        states = node_costs(rg, src, cutoff=T, states=True)
        clear = np.abs(t - T) > 1e-6
        for st in (states, None):
            row, seg, lo, hi = reached_intervals(rg, src, dist, T, source_offset=np.zeros(1),
                                                 states=st)  # fmt: skip
            covered = np.zeros(len(s_all), dtype=bool)
            for k, a, b in zip(seg, lo, hi, strict=True):
                sel = s_all == k
                covered[sel] |= (f_all[sel] >= a - 1e-9) & (f_all[sel] <= b + 1e-9)
            right = covered[clear] == (t[clear] <= T)
            if st is not None:
                assert right.all(), T
            else:
                mismatch_without_states += int((~right).sum())
    assert mismatch_without_states > 0  # the restriction matters for these thresholds


def test_partial_edge_is_cut_at_the_reached_point():
    """One straight 1 km street: a 1-minute isochrone ends where 60 s of travel ends."""
    G = nx.MultiDiGraph(crs=CRS)
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=1000.0, y=0.0)
    line = shapely.LineString([(0, 0), (1000, 0)])
    for u, v, g in ((1, 2, line), (2, 1, line.reverse())):
        G.add_edge(u, v, 0, highway="residential", length=1000.0, geometry=g, oneway=False)
    stations = gpd.GeoDataFrame({"station_id": ["S"], "kind": ["micro_station"],
                                 "vehicle": ["foot"], "turnout_s": [0.0]},
                                geometry=[shapely.Point(0, 0)], crs=CRS)  # fmt: skip
    params = AccessParams(isochrone_minutes=(1.0,), street_buffer_m=10.0)
    reach_m = 60 * params.foot.speeds_kmh.get("residential", params.foot.default_speed_kmh) / 3.6
    assert reach_m == pytest.approx(90.0)
    # vector: a plain 10 m band around the 90 m reached
    iso = station_isochrones(stations, G, params=params, method="vector")
    assert iso["length_m"].iloc[0] == pytest.approx(reach_m)
    x0, _, x1, _ = iso.geometry.iloc[0].bounds
    assert x1 == pytest.approx(reach_m + 10.0, abs=2.5)  # cut, not the whole 1 km edge
    assert x0 == pytest.approx(-10.0, abs=2.5)
    # raster: where a building is reached in 60 s, walking its access leg at the same 1.5 m/s:
    # beside the street x + |y| <= 90, behind its end (joining at the node) a half disc of 90 m
    iso = station_isochrones(stations, G, params=params, method="raster", cell_m=2.0)
    assert iso["length_m"].iloc[0] == pytest.approx(reach_m)
    poly = iso.geometry.iloc[0]
    assert poly.bounds == pytest.approx((-90, -90, 90, 90), abs=2.0)
    exact = shapely.union_all([shapely.Polygon([(0, -90), (90, 0), (0, 90)]),
                               shapely.Point(0, 0).buffer(90, quad_segs=64)
                               .intersection(shapely.box(-90, -90, 0, 90))])  # fmt: skip
    assert shapely.area(shapely.symmetric_difference(poly, exact)) < 2.0 * exact.length
    assert shapely.contains_xy(poly, [30, -60, 10], [50, 60, -75]).all()
    assert not shapely.contains_xy(poly, [50, -70, 0], [45, 60, 95]).any()


def test_isochrones_are_where_a_building_is_reached_in_time(district):  # noqa: F811
    """Random places: inside a station's isochrone exactly when a building standing there is
    reached in time (timed independently: snap + nearest_cost, as building_access does), up
    to the grid cell along the edge."""
    G, buildings, stations = district
    params = AccessParams()
    out = building_access(buildings, stations, G)
    iso = station_isochrones(stations, G, buildings=out)
    assert len(iso) == 3 * len(stations)
    assert set(iso.columns) >= {"station_id", "kind", "vehicle", "minutes", "t_s", "length_m"}
    graphs = compile_graphs(G)
    x0, y0, x1, y1 = shapely.total_bounds(np.asarray(iso.geometry.values, dtype=object))
    rng = np.random.default_rng(4)
    places = shapely.points(
        rng.uniform(x0 - 50, x1 + 50, 3000), rng.uniform(y0 - 50, y1 + 50, 3000)
    )
    turnout = {"F1": 60.0, "M1": 30.0, "M2": 60.0, "M3": 45.0}
    checked = 0
    for _, r in iso.iterrows():
        rg = graphs[r["vehicle"]]
        st = snap(rg, stations.geometry[stations["station_id"] == r["station_id"]])
        t, _ = nearest_cost(rg, st, snap(rg, places, max_snap_m=params.max_snap_m),
                            source_offset=turnout[r["station_id"]])  # fmt: skip
        inside = shapely.contains(r.geometry, places)
        # a 5 m cell: a place within a cell of the edge is at most ~7 s of access leg from it
        clear = np.abs(t - r["t_s"]) > 8.0
        wrong = inside[clear] != (t[clear] <= r["t_s"])
        assert wrong.mean() < 0.01, (r["station_id"], r["minutes"], wrong.mean())
        checked += int((inside & clear).sum())
    assert checked > 1000
    # Nested thresholds: the same field contoured at each.
    for sid, grp in iso.groupby("station_id"):
        g = grp.sort_values("minutes").geometry.to_numpy()
        for a, b in ((g[0], g[1]), (g[1], g[2])):
            assert shapely.area(shapely.difference(a, b)) <= 1e-6 * a.area + 1e-3, sid
    vec = station_isochrones(stations, G, buildings=out, method="vector")
    for sid, grp in vec.groupby("station_id"):
        g = grp.sort_values("minutes").geometry.to_numpy()
        assert shapely.area(shapely.difference(g[1], g[2])) <= 1e-6 * g[1].area + 1e-6, sid


def test_raster_field_lies_within_the_snap_limit_of_reached_streets(district):  # noqa: F811
    """A place a building would be reached from joins a reached street within max_snap_m: the
    raster isochrone lies inside the vector band of that width, up to its grid cell."""
    G, _, stations = district
    params = AccessParams(max_snap_m=60.0)
    ri = station_isochrones(stations, G, params=params)
    wide = dataclasses.replace(params, street_buffer_m=60.0)
    vi = station_isochrones(stations, G, params=wide, method="vector", quad_segs=8)
    for a, b in zip(ri.geometry.to_numpy(), vi.geometry.to_numpy(), strict=True):
        if b.area == 0:  # turnout takes the whole minute
            assert a.area < 1.0
            continue
        assert shapely.area(shapely.difference(a, b)) < 1.0 * b.length
    # with 5 minutes most places within 60 m of a reached street are reached
    five = (ri["minutes"] == 5.0).to_numpy()
    assert ri.geometry[five].area.sum() > 0.7 * vi.geometry[five].area.sum()


def test_areas_of_responsibility_and_overlaps(district):  # noqa: F811
    G, buildings, stations = district
    out = building_access(buildings, stations, G)
    res = areas_of_responsibility(stations, G, buildings=out)
    micro = res.areas[res.areas["kind"] == "micro_station"].set_index("station_id")
    assert set(micro.index) <= {"M1", "M2", "M3"} and len(micro) >= 2
    # Areas of one kind tile without overlapping.
    geoms = micro.geometry.to_numpy()
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            assert shapely.area(shapely.intersection(geoms[i], geoms[j])) < 1.0
    # Each building lies in the area of the station that reaches it first.
    reached = out[out["micro_station_id"].notna()]
    pts = shapely.point_on_surface(reached.geometry.to_numpy())
    own = micro.geometry.reindex(reached["micro_station_id"].astype(object)).to_numpy()
    assert shapely.contains(own, pts).mean() > 0.99
    assert (micro["n_buildings"].sum()) == len(reached)
    # Street pieces carry their first station: the fastest by an independent nearest pass.
    streets = res.streets[res.streets["kind"] == "micro_station"]
    assert streets["length_m"].max() <= 50.0 + 1e-9
    assert set(streets["station_id"].dropna()) <= {"M1", "M2", "M3"}
    # Overlap polygons: every reached building lies where the count equals its own count.
    over = res.overlaps[res.overlaps["kind"] == "micro_station"].set_index("n_stations")
    n = reached["n_micro_3min"].to_numpy()
    poly = over.geometry.reindex(n).to_numpy()
    assert shapely.contains(poly, pts).mean() > 0.99


def test_street_pieces_and_overlaps_are_drawn_when_first_read(district, monkeypatch):  # noqa: F811
    # The access command writes neither: a city's millions of piece lines and its count
    # polygons are drawn only for a caller that reads them, and then the same as at once.
    import firegrid.spatial.access.isochrones as iso

    G, buildings, stations = district
    out = building_access(buildings, stations, G)
    drawn = []
    cut = iso.cut_segments
    monkeypatch.setattr(iso, "cut_segments", lambda *a: drawn.append(1) or cut(*a))
    res = areas_of_responsibility(stations, G, buildings=out)
    assert drawn == [] and "overlaps" not in vars(res)
    streets, overlaps = res.streets, res.overlaps
    assert len(drawn) == 2 and res.streets is streets  # one call per station kind, once
    assert len(streets) > 100 and set(overlaps["kind"]) == {"fire_station", "micro_station"}
    assert streets.crs == overlaps.crs == res.areas.crs


def test_area_street_pieces_are_labelled_with_the_fastest_station(district):  # noqa: F811
    """Each street piece's station is the argmin of per-station networkx Dijkstra times."""
    from tests.test_routing import reference_costs

    G, buildings, stations = district
    res = areas_of_responsibility(stations, G)
    streets = res.streets[res.streets["kind"] == "micro_station"].reset_index(drop=True)
    assert len(streets) > 100
    graphs = compile_graphs(G)
    # The fixture's micro-stations: vehicle and turnout (M2 on foot takes the profile's 60 s).
    micro = {"M1": ("ebike", 30.0), "M2": ("foot", 60.0), "M3": ("ebike", 45.0)}
    mids = shapely.line_interpolate_point(streets.geometry.to_numpy(), 0.5, normalized=True)
    t = np.full((len(micro), len(streets)), np.inf)
    for k, (sid, (vehicle, turnout)) in enumerate(micro.items()):
        rg = graphs[vehicle]
        station = stations.loc[stations["station_id"] == sid, "geometry"]
        src = snap(rg, station)
        tgt = snap(rg, mids, max_snap_m=AccessParams().max_snap_m)
        t[k] = reference_costs(rg, src, tgt, np.array([turnout]))[0]
    best = t.min(axis=0)
    ids = np.array(list(micro), dtype=object)
    expect = np.where(np.isfinite(best), ids[t.argmin(axis=0)], None)
    got = streets["station_id"].where(streets["station_id"].notna(), None).to_numpy(dtype=object)
    # Pieces reached by no station carry no station.
    assert (pd.isna(got) == ~np.isfinite(best)).all()
    # Where the fastest station wins by more than a tenth of a second, labels must agree.
    second = np.sort(t, axis=0)[1]
    with np.errstate(invalid="ignore"):  # inf − inf where no station reaches a piece
        clear = np.isfinite(best) & (second - best > 0.1)
    assert clear.sum() > 0.9 * np.isfinite(best).sum()
    assert len(set(expect[clear])) == 3  # every station owns some street
    mismatch = np.flatnonzero(clear & (got != expect))
    assert len(mismatch) == 0, streets.iloc[mismatch[:5]]
    reached = np.isfinite(best)
    np.testing.assert_allclose(streets["t_s"].to_numpy()[reached], best[reached], atol=1e-6)
    # n_stations: how many stations reach the piece within 180 s (pieces right at 180 s aside).
    sure = np.all(np.abs(t - 180.0) > 1e-6, axis=0)
    n_ref = (t <= 180.0).sum(axis=0)
    assert (streets["n_stations"].to_numpy()[sure] == n_ref[sure]).all()


# ---------------------------------------------------------------------- city-size modes
# (union isochrones: tests/test_isochrones_union.py)
def test_grid_polygons_are_a_valid_tiling_holding_exactly_their_cells():
    import firegrid.spatial.access.isochrones as iso_mod

    rng = np.random.default_rng(3)
    grid = rng.integers(0, 4, (40, 50))
    grid[10:30, 5:45] = 7  # a large block with ragged neighbours: breaks on its edges
    clip = shapely.box(-1e3, -1e3, 1e3, 1e3)
    res = dict(iso_mod._grid_polygons(grid, 10.0, 20.0, 2.0, clip))
    assert sorted(res) == sorted(np.unique(grid).tolist())
    yy, xx = np.mgrid[0:40, 0:50]
    for value, poly in res.items():
        assert poly.is_valid, value
        assert poly.area == pytest.approx(4.0 * (grid == value).sum())
        held = shapely.contains_xy(poly, 10.0 + 2.0 * xx + 1.0, 20.0 + 2.0 * yy + 1.0)
        assert (held == (grid == value)).all(), value
    # Clipped to the boundary.
    half = dict(iso_mod._grid_polygons(grid, 10.0, 20.0, 2.0, shapely.box(0, 0, 60.0, 1e3)))
    assert shapely.union_all(list(half.values())).bounds == (10.0, 20.0, 60.0, 100.0)


def test_areas_on_a_coarse_grid_still_tile_and_count_every_building(district, monkeypatch):  # noqa: F811
    import firegrid.spatial.access.isochrones as iso_mod

    G, buildings, stations = district
    out = building_access(buildings, stations, G)
    fine = areas_of_responsibility(stations, G, buildings=out)
    monkeypatch.setattr(iso_mod, "AREA_MAX_CELLS", 5_000)  # cells far above 5 m, as in a city
    coarse = areas_of_responsibility(stations, G, buildings=out)
    for res in (fine, coarse):
        micro = res.areas[res.areas["kind"] == "micro_station"]
        geoms = micro.geometry.to_numpy()
        union = shapely.union_all(geoms)
        assert abs(union.area - micro["area_km2"].sum() * 1e6) < 1.0  # no overlaps
    # Same labels and counts; the same district covered, drawn on coarser cells.
    pd.testing.assert_frame_equal(
        fine.areas[["station_id", "kind", "n_buildings", "street_km"]],
        coarse.areas[["station_id", "kind", "n_buildings", "street_km"]],
    )
    # Overlap counts (0 included) cover the whole clipped district at any cell size.
    for res in (fine, coarse):
        over = res.overlaps[res.overlaps["kind"] == "micro_station"].geometry
        hull_area = shapely.union_all(over.to_numpy()).area
        assert over.area.sum() == pytest.approx(hull_area, rel=1e-9)
    f_over = fine.overlaps[fine.overlaps["kind"] == "micro_station"].geometry
    c_over = coarse.overlaps[coarse.overlaps["kind"] == "micro_station"].geometry
    assert f_over.area.sum() == pytest.approx(c_over.area.sum(), rel=1e-9)


def test_surface_xy_equals_point_on_surface():
    from firegrid.spatial.access.isochrones import surface_xy

    rng = np.random.default_rng(3)
    pts = list(shapely.points(rng.random((20, 2)) * 100))
    geoms = np.array(
        [
            *pts,
            shapely.Point(1.5, 2.5, 7.0),
            shapely.box(0, 0, 10, 4),
            shapely.Polygon([(0, 0), (10, 0), (10, 10), (9, 10), (9, 1), (0, 1)]),
            shapely.MultiPoint([(0, 0), (4, 4), (5, 5)]),
            shapely.LineString([(0, 0), (3, 4), (6, 0)]),
        ],
        dtype=object,
    )
    rng.shuffle(geoms)
    want = shapely.get_coordinates(shapely.point_on_surface(geoms))
    np.testing.assert_array_equal(surface_xy(geoms), want)
