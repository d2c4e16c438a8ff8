"""One parser for every config section: unknown keys and wrong types named the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from firegrid.maps.options import MapOptions
from firegrid.reports import OutputOptions
from firegrid.risk.params import RiskParams
from firegrid.spatial.errors import ConfigError
from firegrid.spatial.network.profiles import AccessParams
from firegrid.spatial.params import params_from_mapping
from firegrid.spatial.siting.stations import SitingParams
from firegrid.spatial.water.params import WaterParams


@dataclass(frozen=True)
class Inner:
    x: float = 1.0


@dataclass(frozen=True)
class P:
    flag: bool = True
    count: int = 3
    size: float = 1.5
    name: str = "a"
    items: tuple[str, ...] = ("x",)
    limit: float | None = None
    level: int | None = None
    table: dict = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    anything: object = None


def test_values_are_converted_by_the_type_of_the_default():
    assert params_from_mapping(P, None, section="p") == P()
    p = params_from_mapping(
        P,
        {"flag": False, "count": 4.0, "size": 2, "items": ["y", "z"], "limit": 7,
         "level": 2, "table": {"k": 1}, "anything": [1, 2]},
        section="p",
    )  # fmt: skip
    assert p.flag is False and p.count == 4 and type(p.count) is int
    assert p.size == 2.0 and type(p.size) is float
    assert p.items == ("y", "z") and p.limit == 7.0 and p.level == 2
    assert p.table == {"k": 1} and p.anything == (1, 2)
    assert params_from_mapping(P, {"limit": None}, section="p").limit is None


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("flag", "yes", "true or false"),
        ("flag", 1, "true or false"),
        ("count", 2.5, "a whole number"),
        ("count", True, "a whole number"),
        ("size", True, "a number"),
        ("size", "far", "a number"),
        ("name", 5, "a string"),
        ("items", "x", "a list"),
        ("limit", "big", "a number"),
        ("level", 1.5, "a whole number"),
        ("table", 3, "a table"),
        ("inner", {"x": 2}, "a table"),
    ],
)
def test_wrong_types_name_section_key_and_expectation(key, value, words):
    with pytest.raises(ConfigError, match=rf"^\[p\] {key} must be {words}, not "):
        params_from_mapping(P, {key: value}, section="p")


def test_unknown_keys_and_non_tables():
    with pytest.raises(ConfigError, match=r"^\[p\] has unknown key 'colour'; known keys are "):
        params_from_mapping(P, {"colour": 1}, section="p")
    with pytest.raises(ConfigError, match=r"unknown keys 'a', 'b'"):
        params_from_mapping(P, {"b": 1, "a": 2}, section="p")
    with pytest.raises(ConfigError, match=r"^\[p\] must be a table, not list"):
        params_from_mapping(P, [1], section="p")


@pytest.mark.parametrize(
    "cls, section",
    [(WaterParams, "water"), (SitingParams, "siting"), (AccessParams, "access"),
     (MapOptions, "map"), (OutputOptions, "output"), (RiskParams, "risk")],
)  # fmt: skip
def test_every_section_reports_unknown_keys_alike(cls, section):
    with pytest.raises(ConfigError, match=rf"^\[{section}\] has unknown key 'nope'; known keys"):
        cls.from_mapping({"nope": 1})
    assert cls.from_mapping({}) == cls.from_mapping(None) == cls()


def test_sections_keep_their_own_conveniences():
    assert SitingParams.from_mapping({"weight": "none", "capacity": 0}) == SitingParams()
    assert MapOptions.from_mapping({"allow_fields": "all"}).allow_fields == ("all",)
    assert AccessParams.from_mapping({"isochrone_minutes": 3}).isochrone_minutes == (3.0,)
    p = AccessParams.from_mapping({"ebike": {"respect_oneway": True}})
    assert p.ebike.respect_oneway and p.ebike.default_speed_kmh == 18.0  # rest from the default
    with pytest.raises(ConfigError, match=r"^\[access.ebike\] respect_oneway must be true"):
        AccessParams.from_mapping({"ebike": {"respect_oneway": "yes"}})
    with pytest.raises(ConfigError, match=r"^\[risk.model\] min_fires must be a whole number"):
        RiskParams.from_mapping({"model": {"min_fires": 2.5}})
    with pytest.raises(ConfigError, match=r"^\[map\] isochrone_minutes must be a list"):
        MapOptions.from_mapping({"isochrone_minutes": "3"})


@dataclass(frozen=True)
class Q:
    minutes: tuple[float, ...] = (1.0, 3.0)
    grades: tuple[float, float, float] = (60.0, 45.0, 30.0)
    names: frozenset[str] = frozenset()
    speeds: Mapping[str, float] = field(default_factory=dict)
    radius: float = 150.0

    def __post_init__(self):
        if self.radius > 1000:
            raise ConfigError(f"radius must be at most 1000 m, not {self.radius}")


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("radius", float("inf"), "a finite number, not inf"),
        ("radius", float("nan"), "a finite number, not nan"),
        ("minutes", [1, "3"], "a list of numbers, not"),
        ("minutes", [1, float("inf")], "a list of numbers"),
        ("grades", [60, 45], "a list of 3 numbers, not"),
        ("names", ["a", 1], "a list of strings"),
        ("names", [{"a": 1}], "a list of strings"),
        ("speeds", {"primary": "fast"}, None),
    ],
)
def test_items_of_lists_and_tables_are_checked(key, value, words):
    with pytest.raises(ConfigError) as exc:
        params_from_mapping(Q, {key: value}, section="q")
    if words is None:  # a table's item is named with its key
        assert str(exc.value) == "[q] speeds.primary must be a number, not 'fast'"
    else:
        assert str(exc.value).startswith(f"[q] {key} must be {words}")
    q = params_from_mapping(Q, {"minutes": [2], "grades": [3, 2, 1], "names": ["x"]}, section="q")
    assert q.minutes == (2.0,) and q.grades == (3.0, 2.0, 1.0) and q.names == frozenset({"x"})


def test_typo_gets_a_suggestion_and_range_messages_the_section():
    with pytest.raises(ConfigError) as exc:
        params_from_mapping(Q, {"raduis": 1}, section="q")
    assert str(exc.value) == (
        "[q] has unknown key 'raduis' (did you mean 'radius'?); "
        "known keys are grades, minutes, names, radius, speeds"
    )
    with pytest.raises(ConfigError, match=r"^\[q\] radius must be at most 1000 m, not 5000.0$"):
        params_from_mapping(Q, {"radius": 5000}, section="q")
    with pytest.raises(ConfigError, match=r"^\[water\] has unknown key 'hydrant_radious_m' \(did"):
        WaterParams.from_mapping({"hydrant_radious_m": 100})


@pytest.mark.parametrize(
    ("cls_path", "values", "key"),
    [
        ("firegrid.spatial.siting.stations.SitingParams", {"k": 10**15}, "k"),
        (
            "firegrid.spatial.siting.stations.SitingParams",
            {"candidate_spacing_m": 1e-300},
            "candidate_spacing_m",
        ),
        (
            "firegrid.spatial.siting.stations.SitingParams",
            {"candidate_buffer_m": 1e308},
            "candidate_buffer_m",
        ),
        ("firegrid.spatial.siting.stations.SitingParams", {"time_limit_s": 1e12}, "time_limit_s"),
        ("firegrid.spatial.water.params.WaterParams", {"zone_buffer_m": 1e308}, "zone_buffer_m"),
        (
            "firegrid.spatial.water.params.WaterParams",
            {"candidate_spacing_m": 0},
            "candidate_spacing_m",
        ),
        (
            "firegrid.spatial.water.params.WaterParams",
            {"candidate_spacing_m": 4.9},
            "candidate_spacing_m",
        ),
        (
            "firegrid.spatial.water.params.WaterParams",
            {"hydrant_radius_m": 60_000},
            "hydrant_radius_m",
        ),
        ("firegrid.risk.params.FeatureParams", {"old_built_up_to": -1}, "old_built_up_to"),
        ("firegrid.risk.params.FeatureParams", {"old_built_up_to": 2101}, "old_built_up_to"),
    ],
)
def test_values_that_would_hang_or_exhaust_memory_are_refused(cls_path, values, key):
    import importlib

    module, name = cls_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    with pytest.raises(ConfigError, match=key):
        cls(**values)


@pytest.mark.parametrize(
    ("cls_path", "values"),
    [
        ("firegrid.spatial.siting.stations.SitingParams", {"k": 10_000, "candidate_spacing_m": 0}),
        ("firegrid.spatial.siting.stations.SitingParams", {"candidate_spacing_m": 5.0}),
        (
            "firegrid.spatial.water.params.WaterParams",
            {"candidate_spacing_m": 5.0, "zone_buffer_m": 50_000},
        ),
        ("firegrid.risk.params.FeatureParams", {"old_built_up_to": 1800}),
    ],
)
def test_bounds_are_inclusive(cls_path, values):
    import importlib

    module, name = cls_path.rsplit(".", 1)
    getattr(importlib.import_module(module), name)(**values)


def test_a_field_set_by_the_program_is_no_config_key():
    @dataclass(frozen=True)
    class Inner:
        x: float = 1.0

    @dataclass(frozen=True)
    class Outer:
        radius_m: float = 150.0
        inner: Inner = field(default_factory=Inner, metadata={"config": False})

    assert params_from_mapping(Outer, {"radius_m": 100}, section="s") == Outer(radius_m=100.0)
    with pytest.raises(ConfigError, match=r"unknown key 'inner'; known keys are radius_m$"):
        params_from_mapping(Outer, {"inner": Inner()}, section="s")
