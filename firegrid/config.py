"""The TOML config: which file holds each layer, in which coordinate system, with which headers."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from spatial.district import District, LayerSpec, load_district
from spatial.errors import ConfigError
from spatial.layers import LAYER_NAMES
from spatial.validate import ValidationReport

SECTIONS = ("district", "network", "layers", "access", "water", "risk", "siting", "map", "output")
LAYER_KEYS = {"file", "layer", "crs", "lon", "lat", "columns", "values"}


@dataclass
class Config:
    """A parsed config. Paths are absolute; analysis sections are kept as plain mappings
    and turned into parameter objects by the step that uses them."""

    path: Path
    name: str
    crs: str | None
    as_of: date | None
    network: dict[str, Any]
    layers: dict[str, LayerSpec]
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name, {}))

    @property
    def network_source(self) -> str | None:
        """A file path (absolute) or a place name for online download."""
        if "source" in self.network:
            return str(self.network["source"])
        if "place" in self.network:
            return str(self.network["place"])
        return None


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _str_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f'{where} must be a table of "user header" = "canonical name"')
    return {str(k): str(v) for k, v in value.items()}


def parse_config(data: Mapping[str, Any], *, path: Path) -> Config:
    """Turn a parsed TOML mapping into a :class:`Config`; raises ConfigError naming the key."""
    base = path.parent
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; sections are {list(SECTIONS)}")
    district = dict(data.get("district", {}))
    as_of = district.get("as_of")
    if isinstance(as_of, str):
        try:
            as_of = date.fromisoformat(as_of)
        except ValueError as exc:
            raise ConfigError(
                f"{path}: [district] as_of {as_of!r} is not a date (YYYY-MM-DD)"
            ) from exc
    network = dict(data.get("network", {}))
    if "source" in network:
        network["source"] = str(_resolve(base, network["source"]))
    layers: dict[str, LayerSpec] = {}
    for name, spec in dict(data.get("layers", {})).items():
        where = f"{path}: [layers.{name}]"
        if name not in LAYER_NAMES:
            raise ConfigError(f"{where}: unknown layer; layers are {list(LAYER_NAMES)}")
        if not isinstance(spec, Mapping) or "file" not in spec:
            raise ConfigError(f'{where}: needs file = "..."')
        bad = [k for k in spec if k not in LAYER_KEYS]
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {bad}; keys are {sorted(LAYER_KEYS)}")
        values = spec.get("values", {})
        layers[name] = LayerSpec(
            file=_resolve(base, spec["file"]),
            layer=spec.get("layer"),
            crs=spec.get("crs"),
            lon=spec.get("lon"),
            lat=spec.get("lat"),
            columns=_str_map(spec.get("columns", {}), f"{where}.columns"),
            values={str(c): _str_map(m, f"{where}.values.{c}") for c, m in values.items()},
        )
    sections = {
        k: dict(data.get(k, {})) for k in SECTIONS if k not in ("district", "network", "layers")
    }
    if "output" in sections and "folder" in sections["output"]:
        sections["output"]["folder"] = str(_resolve(base, sections["output"]["folder"]))
    return Config(
        path,
        str(district.get("name", path.stem)),
        district.get("crs"),
        as_of,
        network,
        layers,
        sections,
    )


def load_config(path: str | Path) -> Config:
    """Read a FireGrid TOML config file."""
    path = Path(path).resolve()
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return parse_config(data, path=path)


def district_from_config(config: Config) -> tuple[District, ValidationReport]:
    """Read and validate every layer the config names."""
    return load_district(
        config.layers,
        name=config.name,
        crs=config.crs,
        network_source=config.network_source,
        as_of=config.as_of,
    )
