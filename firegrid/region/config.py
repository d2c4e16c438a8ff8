"""The region config: a TOML naming the subdistricts a region run analyses as partitions.

A region file has one ``[region]`` table and then either

(a) one ``[[region.subdistricts]]`` entry per subdistrict, each naming its own district config
    (``config = "qingpu/zhujiajiao.toml"``), analysed as it stands; or
(b) region-wide ``[network]``, ``[layers.*]`` and parameter sections (``[access]``,
    ``[water]``, ``[risk]``, ``[map]``, ``[output]`` …) exactly as a district config has
    them, split into partitions by the cells of the grid level ``partition_level``.

Form (b) is read by the district config's own parser (:func:`firegrid.config.parse_config`)
with ``[region] name / as_of / crs`` standing in for ``[district]``, so every layer, header
map and parameter is checked the same way and the messages are the same.

Example (form b)::

    [region]
    name = "演示区（合成数据）"
    as_of = "2026-06-30"
    partition_level = 1            # the grid level whose cells are the partitions
    level_names = ["街道", "社区", "网格"]   # optional: names of levels 1, 2, 3 …

    [network]
    source = "roads.osm"

    [layers.grids]
    file = "grids.gpkg"
    ...
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from firegrid.config import SECTIONS, Config, load_config, parse_config
from firegrid.maps.options import MapOptions
from firegrid.reports import OutputOptions
from firegrid.spatial.errors import ConfigError
from firegrid.spatial.params import check_keys

REGION_KEYS = (
    "name", "as_of", "crs", "partition_level", "level_names", "horizon_s", "subdistricts",
)  # fmt: skip
SUBDISTRICT_KEYS = ("config", "name")
# Sections of form (a), beside [region]: what the region's own outputs need.
SUBDISTRICT_FORM_SECTIONS = ("region", "map", "output")


@dataclass(frozen=True)
class Subdistrict:
    """One entry of ``[[region.subdistricts]]``: a name and its own district config."""

    name: str
    config: Config


@dataclass
class RegionConfig:
    """A parsed region config. Paths are absolute.

    Attributes
    ----------
    path : Path
        The region file.
    name : str
        ``[region] name`` (default: the file's stem).
    as_of : date or None
        ``[region] as_of``: the date hazards are judged against, in every partition.
    partition_level : int
        The grid level whose cells are the partitions (form b); 1 by default.
    level_names : list of str
        Names of grid levels 1, 2, … (``["街道", "社区", "网格"]``); may be empty.
    horizon_s : float or None
        Longest time reported exactly (seconds; None: twice the longest target, see
        :func:`firegrid.region.partitions.region_halo`).
    base : Config or None
        Form (b): the region-wide layers, network and parameters, as a district config.
    subdistricts : list of Subdistrict
        Form (a): each subdistrict's own config (empty in form b).
    map, output : MapOptions, OutputOptions
        ``[map]`` and ``[output]`` of the region's own outputs.
    """

    path: Path
    name: str
    as_of: date | None
    partition_level: int = 1
    level_names: list[str] = field(default_factory=list)
    horizon_s: float | None = None
    base: Config | None = None
    subdistricts: list[Subdistrict] = field(default_factory=list)
    map: MapOptions = field(default_factory=MapOptions)
    output: OutputOptions = field(default_factory=OutputOptions)

    @property
    def split(self) -> bool:
        """True for form (b): one set of layers split by ``partition_level``."""
        return self.base is not None

    def level_name(self, level: int) -> str:
        """The name of grid level ``level`` (``"level 2"`` when ``level_names`` is silent)."""
        if 1 <= level <= len(self.level_names):
            return self.level_names[level - 1]
        return f"level {level}"


def load_region_config(path: str | Path) -> RegionConfig:
    """Read a region TOML and check every value (see :func:`parse_region_config`)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: region config file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the region config ({exc.strerror})") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a UTF-8 TOML file ({exc})") from exc
    return parse_region_config(data, path=path)


def is_region_config(path: str | Path) -> bool:
    """True when the TOML file at ``path`` has a ``[region]`` table (False if unreadable)."""
    try:
        return "region" in tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def parse_region_config(data: Mapping[str, Any], *, path: Path) -> RegionConfig:
    """Turn a parsed region TOML mapping into a :class:`RegionConfig`.

    Raises
    ------
    ConfigError
        Naming the region file, the section and key, the value given and what belongs there.
    """
    region = data.get("region")
    if not isinstance(region, Mapping):
        raise ConfigError(f"{path}: a region config needs a [region] table")
    _checked(check_keys, region, REGION_KEYS, section="region", path=path)
    name = _text(region.get("name", path.stem), "[region] name", path)
    level = region.get("partition_level", 1)
    if isinstance(level, bool) or not isinstance(level, int) or level < 1:
        raise ConfigError(
            f"{path}: [region] partition_level must be a grid level 1, 2 …, not {level!r}"
        )
    names = region.get("level_names", [])
    if not isinstance(names, list):
        raise ConfigError(f"{path}: [region] level_names must be a list of names, not {names!r}")
    names = [_text(n, "[region] level_names", path) for n in names]
    horizon = region.get("horizon_s")
    if horizon is not None and (
        isinstance(horizon, bool) or not isinstance(horizon, int | float) or not horizon > 0
    ):
        raise ConfigError(f"{path}: [region] horizon_s must be seconds > 0, not {horizon!r}")
    if "subdistricts" in region:
        out = _subdistrict_form(data, region, path=path, name=name, level=level, names=names)
    else:
        out = _split_form(data, region, path=path, name=name, level=level, names=names)
    out.horizon_s = None if horizon is None else float(horizon)
    return out


def _split_form(data, region, *, path: Path, name: str, level: int, names: list[str]):
    """Form (b): region-wide layers, read by the district config's parser."""
    if "district" in data:
        raise ConfigError(
            f"{path}: a region config names its area in [region], not [district] "
            "(move name, as_of and crs there)"
        )
    district = {k: region[k] for k in ("name", "as_of", "crs") if k in region}
    rest = {k: v for k, v in data.items() if k != "region"}
    grids = rest.get("grids", {})
    if names and isinstance(grids, Mapping):
        # One setting: [region] level_names is the district config's [grids] level_names,
        # checked against the grids layer when it is read.
        if "level_names" in grids and list(grids["level_names"]) != names:
            raise ConfigError(
                f"{path}: [region] level_names and [grids] level_names differ; give one"
            )
        rest["grids"] = {**grids, "level_names": names}
    _checked(check_keys, rest, [s for s in SECTIONS if s != "district"], section=None,
             noun="section", path=path)  # fmt: skip
    try:
        base = parse_config({**rest, "district": district}, path=path)
    except ConfigError as exc:
        # The district parser speaks of [district]; in a region file those keys are [region].
        raise ConfigError(str(exc).replace("[district]", "[region]")) from exc
    names = list(base.params["grids"].level_names) if "grids" in base.params else names
    return RegionConfig(
        path, name, base.as_of, level, names, base=base,
        map=base.params["map"], output=base.params["output"],
    )  # fmt: skip


def _subdistrict_form(data, region, *, path: Path, name: str, level: int, names: list[str]):
    """Form (a): one district config per subdistrict, each analysed as it stands."""
    _checked(check_keys, data, SUBDISTRICT_FORM_SECTIONS, section=None, noun="section", path=path)
    entries = region["subdistricts"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f'{path}: [[region.subdistricts]] must list one or more entries, each config = "..."'
        )
    subs: list[Subdistrict] = []
    for i, entry in enumerate(entries, start=1):
        where = f"[[region.subdistricts]] entry {i}"
        if not isinstance(entry, Mapping) or "config" not in entry:
            raise ConfigError(f'{path}: {where} needs config = "path/to/district.toml"')
        _checked(check_keys, entry, SUBDISTRICT_KEYS, section=f"region.subdistricts {i}", path=path)
        file = Path(_text(entry["config"], f"{where} config", path)).expanduser()
        file = file if file.is_absolute() else path.parent / file
        if not file.is_file():
            raise ConfigError(f"{path}: {where} config = {str(entry['config'])!r}: "
                              f"config file not found ({file})")  # fmt: skip
        config = load_config(file)
        subs.append(
            Subdistrict(_text(entry.get("name", config.name), f"{where} name", path), config)
        )
    seen = [s.name for s in subs]
    dup = sorted({n for n in seen if seen.count(n) > 1})
    if dup:
        raise ConfigError(
            f"{path}: [[region.subdistricts]] names {dup[0]!r} twice; names must differ"
        )
    as_of = region.get("as_of")
    if as_of is not None and not isinstance(as_of, date):
        raise ConfigError(
            f"{path}: [region] as_of must be a date (as_of = 2026-06-30), not {as_of!r}"
        )
    try:
        map_options = MapOptions.from_mapping(data.get("map", {}))
        output = OutputOptions.from_mapping(data.get("output", {}))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return RegionConfig(path, name, as_of, level, names, subdistricts=subs, map=map_options,
                        output=output)  # fmt: skip


def _checked(check, d, known, *, section, path: Path, noun: str = "key") -> None:
    try:
        check(d, known, section=section, noun=noun)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _text(value: Any, where: str, path: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: {where} must be a non-empty string, not {value!r}")
    return value
