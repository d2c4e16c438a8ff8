"""Access rules per profile: highway classes, access tags, barriers, construction, unknown values.

Each rule is checked on a tiny OSM file read by the real reader: which profiles may travel the
street (``VehicleProfile.usable``), or pass the barrier node (a route through it exists).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from firegrid.spatial.errors import ConfigError
from firegrid.spatial.network.osm import read_osm
from firegrid.spatial.network.profiles import AccessParams, default_profile, unknown_highways
from firegrid.spatial.network.routing import RoutingGraph
from tests._osmxml import node, way, write_osm

PROFILES = ("engine", "ebike", "foot")


def _street(tmp_path, **tags):
    """One street 1-2 with ``tags`` (highway=residential unless given)."""
    tags = {"highway": "residential", **tags}
    return read_osm(write_osm(tmp_path / "s.osm", [node(1, 0, 0), node(2, 1, 0),
                                                   way(10, [1, 2], **tags)]))  # fmt: skip


def _usable(t) -> tuple[bool, ...]:
    out = []
    for p in PROFILES:
        ok = default_profile(p).usable(t)
        assert ok.all() or not ok.any()  # both directions alike
        out.append(bool(ok.all()))
    return tuple(out)


@pytest.mark.parametrize(
    ("tags", "expect"),  # expect: (engine, ebike, foot)
    [
        ({}, (True, True, True)),
        ({"access": "no"}, (False, False, False)),
        ({"access": "private"}, (False, False, False)),
        ({"access": "agricultural"}, (False, False, False)),
        ({"access": "destination"}, (True, True, True)),
        ({"access": "delivery"}, (True, True, True)),
        ({"access": "emergency"}, (True, False, False)),
        ({"access": "private", "emergency": "yes"}, (True, False, False)),
        ({"vehicle": "no"}, (False, False, True)),
        ({"motor_vehicle": "no"}, (False, True, True)),  # e-bikes are non-motor vehicles
        ({"motorcar": "no"}, (False, True, True)),
        ({"motor_vehicle": "private"}, (False, True, True)),
        ({"bicycle": "no"}, (True, False, True)),
        ({"foot": "no"}, (True, True, False)),
        # The most specific key decides.
        ({"access": "no", "motor_vehicle": "yes"}, (True, False, False)),
        ({"access": "no", "bicycle": "yes"}, (False, True, False)),
        ({"access": "no", "foot": "yes"}, (False, False, True)),
        ({"vehicle": "no", "motorcar": "yes"}, (True, False, True)),
        ({"motor_vehicle": "no", "emergency": "yes"}, (True, True, True)),
        ({"motorroad": "yes"}, (True, False, False)),
        ({"service": "drive-through", "highway": "service"}, (False, True, True)),
    ],
)
def test_access_tags(tmp_path, tags, expect):
    assert _usable(_street(tmp_path, **tags)) == expect


@pytest.mark.parametrize(
    ("tags", "expect"),
    [
        ({"highway": "primary"}, (True, True, True)),
        ({"highway": "motorway"}, (True, False, False)),
        ({"highway": "footway"}, (False, True, True)),
        ({"highway": "steps"}, (False, False, True)),
        ({"highway": "cycleway"}, (False, True, True)),
        ({"highway": "busway"}, (True, False, True)),
        # Pedestrian streets and areas: crews on foot and e-bike; engines only where signed.
        ({"highway": "pedestrian"}, (False, True, True)),
        ({"highway": "pedestrian", "area": "yes"}, (False, True, True)),
        ({"highway": "pedestrian", "motor_vehicle": "destination"}, (True, True, True)),
        ({"highway": "pedestrian", "emergency": "designated"}, (True, True, True)),
        ({"highway": "footway", "access": "yes"}, (False, True, True)),  # generic key: no
        # Closed whatever the tags say.
        ({"highway": "construction"}, (False, False, False)),
        ({"highway": "construction", "construction": "primary"}, (False, False, False)),
        ({"highway": "proposed"}, (False, False, False)),
        ({"highway": "abandoned", "motor_vehicle": "yes"}, (False, False, False)),
        ({"highway": "platform"}, (False, False, False)),
        ({"highway": "raceway"}, (False, False, False)),
        ({"highway": "bus_guideway"}, (False, False, False)),
        ({"highway": "primary", "construction": "yes"}, (False, False, False)),
        ({"highway": "primary", "construction": "minor"}, (True, True, True)),
        # Unknown values are for nobody by default.
        ({"highway": "trail"}, (False, False, False)),
    ],
)
def test_highway_classes(tmp_path, tags, expect):
    assert _usable(_street(tmp_path, **tags)) == expect


def test_unknown_highway_values_are_counted(tmp_path):
    items = [node(1, 0, 0), node(2, 1, 0), node(3, 2, 0), node(4, 3, 0),
             way(10, [1, 2], highway="trail"), way(11, [2, 3], highway="trail"),
             way(12, [3, 4], highway="residential")]  # fmt: skip
    t = read_osm(write_osm(tmp_path / "u.osm", items))
    assert unknown_highways(t) == {"trail": 2}
    # A user who knows engines drive them adds the value to the allow-list.
    p = AccessParams.from_mapping(
        {"engine": {"allowed_highways": [*default_profile("engine").allowed_highways, "trail"]}}
    )
    assert p.engine.usable(t).all()


def _through(tmp_path, **barrier):
    """Street 1-2-3 with a barrier node 2; per profile: can one travel 1 → 3?"""
    items = [node(1, 0, 0), node(2, 1, 0, **barrier), node(3, 2, 0),
             way(10, [1, 2, 3], highway="residential")]  # fmt: skip
    t = read_osm(write_osm(tmp_path / "b.osm", items))
    assert 2 in set(t.node_ids)  # the barrier ends segments
    i1, i3 = np.searchsorted(t.node_ids, [1, 3])
    out = []
    for p in PROFILES:
        rg = RoutingGraph.from_table(t, default_profile(p))
        d = dijkstra(rg.csr, indices=[i1])[0]
        out.append(bool(np.isfinite(d[i3])))
        # Up to the barrier the street stays usable (a building there is reachable).
        assert rg.usable.all()
    return tuple(out)


@pytest.mark.parametrize(
    ("tags", "expect"),
    [
        ({"barrier": "bollard"}, (False, True, True)),
        ({"barrier": "block"}, (False, True, True)),
        ({"barrier": "jersey_barrier"}, (False, False, True)),
        ({"barrier": "chain"}, (False, True, True)),
        ({"barrier": "height_restrictor"}, (False, True, True)),
        ({"barrier": "turnstile"}, (False, False, True)),
        ({"barrier": "kissing_gate"}, (False, False, True)),
        ({"barrier": "wall"}, (False, False, False)),
        ({"barrier": "kerb"}, (True, True, True)),
        ({"barrier": "bollard", "emergency": "yes"}, (True, True, True)),  # removable
        # Gates follow their access tags.
        ({"barrier": "gate"}, (True, True, True)),
        ({"barrier": "gate", "access": "private"}, (False, False, False)),
        ({"barrier": "lift_gate", "access": "no"}, (False, False, False)),
        ({"barrier": "lift_gate", "motor_vehicle": "no"}, (False, True, True)),
        ({"barrier": "gate", "access": "private", "foot": "yes"}, (False, False, True)),
        ({"barrier": "gate", "access": "private", "emergency": "yes"}, (True, False, False)),
    ],
)
def test_barrier_nodes(tmp_path, tags, expect):
    assert _through(tmp_path, **tags) == expect


def test_engine_bound_by_restrictions_crews_not():
    assert default_profile("engine").turn_restrictions
    assert not default_profile("ebike").turn_restrictions
    assert not default_profile("foot").turn_restrictions


def test_rules_configurable_and_checked():
    p = AccessParams.from_mapping(
        {
            "engine": {"denied_access": ["no"], "blocking_barriers": ["block"]},
            "ebike": {"access_keys": ["moped", "vehicle", "access"]},
        }
    )
    assert p.engine.denied_access == frozenset({"no"})
    assert p.ebike.access_keys == ("moped", "vehicle", "access")
    with pytest.raises(ConfigError, match="allowed_highway"):
        AccessParams.from_mapping({"engine": {"allowed_highway": ["primary"]}})
    with pytest.raises(ConfigError, match="excluded_highways"):
        AccessParams.from_mapping({"engine": {"excluded_highways": ["primary"]}})


def test_join_rules_configurable_per_profile(tmp_path):
    # A building's access leg may join ground-level streets only; trunk roads join by default.
    items = [node(1, 0, 0), node(2, 1, 0), node(3, 2, 0), node(4, 3, 0),
             way(10, [1, 2], highway="trunk"),
             way(11, [2, 3], highway="residential", tunnel="yes", layer="-1"),
             way(12, [3, 4], highway="residential")]  # fmt: skip
    t = read_osm(write_osm(tmp_path / "j.osm", items))
    p = AccessParams.from_mapping({"engine": {"join": {"exclude_highway": ["trunk"]}}})
    for prof, expect in ((default_profile("engine"), {10, 12}), (p.engine, {12})):
        rg = RoutingGraph.from_table(t, prof)
        way_of_seg = t.edges["way_id"].to_numpy()[t.grouping.first]
        assert set(way_of_seg[rg.join_ok]) == expect
    with pytest.raises(ConfigError, match=r"access\.engine\.join.*exclude_tunel"):
        AccessParams.from_mapping({"engine": {"join": {"exclude_tunel": True}}})
