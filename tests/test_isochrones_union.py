"""Union isochrones (``[access] isochrones = "union"``, issue 11 item 8): one polygon per station
kind and threshold, contoured from the fastest-station travel-time field, holding every building
reached in time and tight like the per-station ones; ``"auto"`` switches to it beyond
``PER_STATION_MAX`` stations; at city size its grid coarsens to ``UNION_MAX_CELLS`` cells.

Measured on central Shanghai's real streets (the shared OSM extract, skipped when absent) with
the synthetic buildings and stations of tests/test_isochrone_tightness.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

import firegrid.spatial.access.isochrones as iso_mod
from firegrid.spatial.access.analysis import analyse_access
from firegrid.spatial.access.isochrones import station_isochrones
from firegrid.spatial.access.travel_times import building_access
from firegrid.spatial.errors import ConfigError
from firegrid.spatial.network.profiles import AccessParams
from tests.test_isochrone_tightness import shanghai, synthetic_district  # noqa: F401

TIME = {"micro_station": "t_micro_s", "fire_station": "t_fire_s"}


@pytest.fixture(scope="module")
def district(shanghai):  # noqa: F811
    b, stations = synthetic_district(shanghai, 2)
    return shanghai, building_access(b, stations, shanghai), stations


# The isochrone mode is the [access] isochrones key.
PER_STATION = AccessParams(isochrones="per_station")
UNION = AccessParams(isochrones="union")


def _row(iso, kind, minutes):
    sel = iso[(iso["kind"] == kind) & (iso["minutes"] == minutes)]
    assert len(sel) == 1, (kind, minutes)
    return sel.iloc[0]


@pytest.mark.slow
def test_union_is_the_union_of_the_station_isochrones_and_holds_its_buildings(district):
    graphs, acc, stations = district
    with pytest.warns(UserWarning, match="off the road network"):
        per = station_isochrones(stations, graphs, buildings=acc, params=PER_STATION)
        uni = station_isochrones(stations, graphs, buildings=acc, params=UNION)
    assert len(uni) == 2 * 3  # one row per kind and threshold
    assert uni["station_id"].isna().all()
    pts = shapely.point_on_surface(acc.geometry.to_numpy())
    for kind, tcol in TIME.items():
        n_kind = int((stations["kind"] == kind).sum())
        for minutes in (3.0, 5.0):
            row = _row(uni, kind, minutes)
            per_union = shapely.union_all(
                per[(per["kind"] == kind) & (per["minutes"] == minutes)].geometry.to_numpy()
            )
            # The minimum of the station fields contoured once is the union of their contours
            # (up to the slivers of access legs joined to hold a building).
            diff = shapely.symmetric_difference(row.geometry, per_union).area
            assert diff < 1e-4 * per_union.area, (kind, minutes, diff)
            ok = (acc[tcol] <= minutes * 60).to_numpy()
            inside = shapely.contains(row.geometry, pts)
            assert ok.sum() > 50
            assert inside[ok].all(), (kind, minutes)  # containment 100 %
            assert ok[inside].mean() >= 0.95, (kind, minutes)
            assert row["n_buildings"] == ok.sum()
            assert row["n_stations"] == n_kind
    micro = _row(uni, "micro_station", 3.0)
    assert micro["vehicle"] == "ebike+engine+foot"
    # Street metres: no more than the stations' own sum (shared streets counted once).
    per3 = per[(per["kind"] == "micro_station") & (per["minutes"] == 3.0)]
    assert per3["length_m"].max() <= micro["length_m"] <= per3["length_m"].sum()


@pytest.mark.slow
def test_a_coarse_union_grid_still_holds_every_building_reached(district, monkeypatch):
    graphs, acc, stations = district
    # A tiny cell budget forces cells far larger than 5 m (as at city size).
    monkeypatch.setattr(iso_mod, "UNION_MAX_CELLS", 20_000)
    with pytest.warns(UserWarning, match="off the road network"):
        uni = station_isochrones(stations, graphs, buildings=acc, params=UNION)
    pts = shapely.point_on_surface(acc.geometry.to_numpy())
    for kind, tcol in TIME.items():
        row = _row(uni, kind, 3.0)
        ok = (acc[tcol] <= 180).to_numpy()
        assert shapely.contains(row.geometry, pts[ok]).all(), kind
        assert ok[shapely.contains(row.geometry, pts)].mean() >= 0.8, kind


def test_union_cell_grows_to_the_cell_budget():
    lines = np.array([shapely.LineString([(0, 0), (10_000, 10_000)])], dtype=object)
    assert iso_mod._union_cell(lines, 5.0, 150.0) == pytest.approx(
        np.sqrt(10_300**2 / iso_mod.UNION_MAX_CELLS)
    )
    small = np.array([shapely.LineString([(0, 0), (100, 100)])], dtype=object)
    assert iso_mod._union_cell(small, 5.0, 150.0) == 5.0


@pytest.mark.slow
def test_auto_mode_follows_the_number_of_stations(district, monkeypatch):
    graphs, acc, stations = district
    with pytest.warns(UserWarning, match="off the road network"):
        few = station_isochrones(stations, graphs, minutes=(3,))
        monkeypatch.setattr(iso_mod, "PER_STATION_MAX", len(stations) - 1)
        many = station_isochrones(stations, graphs, minutes=(3,))
        # The config key decides when no mode is given; analyse_access passes it on.
        forced = station_isochrones(
            stations, graphs, minutes=(3,), params=AccessParams(isochrones="per_station")
        )
        res = analyse_access(
            graphs, acc, stations, areas=False,
            params=AccessParams(isochrones="union", isochrone_minutes=(3,)),
        )  # fmt: skip
    assert sorted(few["station_id"]) == sorted(stations["station_id"])
    assert len(many) == 2 and many["station_id"].isna().all()
    assert len(forced) == len(stations)
    assert len(res.isochrones) == 2 and "n_stations" in res.isochrones


def test_isochrones_key_is_checked():
    assert AccessParams.from_mapping({"isochrones": "union"}).isochrones == "union"
    assert AccessParams().isochrones == "auto"
    with pytest.raises(ConfigError, match="isochrones"):
        AccessParams.from_mapping({"isochrones": "every"})
    with pytest.raises(ValueError, match="raster"):
        station_isochrones(None, {}, params=UNION, method="vector")
