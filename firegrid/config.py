"""The TOML config: which file holds each layer, in which coordinate system, with which headers.

Every key of every table is checked against a declared schema when the file is read, before
any analysis starts: ``[district]``, ``[network]`` and ``[layers.*]`` against the tables below,
the analysis sections by building their parameter objects (``PARAM_SECTIONS``). A wrong key or
a value of the wrong type stops the run with one line naming the config file, the section and
key, the value given and what belongs there.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from firegrid.maps.options import MapOptions
from firegrid.maps.poster_options import PosterOptions
from firegrid.reports import OutputOptions
from firegrid.risk.params import RiskParams
from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.crs import parse_coord_system
from firegrid.spatial.io.database import TableName, is_database_url, shown_url
from firegrid.spatial.io.dates import ACCEPTED_DATE_FORMATS, parse_dates
from firegrid.spatial.io.district import District, LayerSpec, load_district
from firegrid.spatial.io.grids import GridLevels
from firegrid.spatial.io.layers import LAYER_NAMES, SCHEMAS
from firegrid.spatial.io.validate import ValidationReport
from firegrid.spatial.network.profiles import AccessParams
from firegrid.spatial.params import check_keys
from firegrid.spatial.siting.stations import SitingParams
from firegrid.spatial.water.params import WaterParams

# The analysis sections, each read by its parameter class (firegrid.spatial.params.params_from_mapping).
PARAM_SECTIONS: dict[str, Any] = {
    "grids": GridLevels,
    "access": AccessParams,
    "water": WaterParams,
    "risk": RiskParams,
    "siting": SitingParams,
    "map": MapOptions,
    "posters": PosterOptions,
    "output": OutputOptions,
}
SECTIONS = ("district", "network", "layers", *PARAM_SECTIONS)
# What each key of the config's own tables takes (the checker of each kind is in _CHECKS).
DISTRICT_KEYS = {"name": "text", "as_of": "date", "crs": "crs"}
NETWORK_KEYS = {"source": "path", "place": "text"}
LAYER_KEYS = {
    "file": "file or database",
    "layer": "layer",
    "crs": "crs",
    "lon": "text",
    "lat": "text",
    "columns": "header map",
    "values": "value maps",
}


@dataclass
class Config:
    """A parsed config. Paths are absolute.

    ``sections`` keeps each analysis section as its plain table; ``params`` holds the
    parameter object built from it at load time (``params["water"]`` is a ``WaterParams``),
    so a bad value stops the run before the analysis.
    """

    path: Path
    name: str
    crs: str | int | None
    as_of: date | None
    network: dict[str, Any]
    layers: dict[str, LayerSpec]
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

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


class _Reader:
    """Checks values of one config file; every message starts with the file's path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent

    def error(self, text: str) -> ConfigError:
        return ConfigError(f"{self.path}: {text}")

    def bad(self, where: str, value: Any, expected: str) -> ConfigError:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return self.error(f"{where} must be {expected}, not {shown}")

    def table(
        self, value: Any, where: str, keys: Mapping[str, Any] | None = None, noun: str = "key"
    ) -> dict:
        """``value`` as a table; with ``keys``, holding only those keys."""
        if not isinstance(value, Mapping):
            raise self.bad(where, value, "a table")
        if keys is not None:
            try:
                check_keys(value, keys, section=where.strip("[]") or None, noun=noun)
            except ConfigError as exc:
                raise self.error(str(exc)) from exc
        return dict(value)

    def section(self, data: Mapping[str, Any], name: str, keys: Mapping[str, str]) -> dict:
        """The table ``[name]`` of ``data``, each value checked by its declared kind."""
        where = f"[{name}]"
        return self.checked(self.table(data.get(name, {}), where, keys), keys, where)

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise self.bad(where, value, "a string")
        if not value.strip() or "\x00" in value:
            raise self.bad(where, value, "a non-empty string")
        return value

    def path_value(self, value: Any, where: str) -> str:
        text = self.text(value, where)
        try:
            p = Path(text).expanduser()
            p = p if p.is_absolute() else (self.base / p).resolve()
            p.exists()  # a name the system cannot even look up (too long …) stops here
        except (OSError, RuntimeError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise self.bad(where, value, f"a usable file path ({reason})") from exc
        return str(p)

    def file_or_database(self, value: Any, where: str) -> str:
        """A file path (made absolute) or a database URL, kept as written."""
        text = self.text(value, where)
        return text.strip() if is_database_url(text) else self.path_value(text, where)

    def date_value(self, value: Any, where: str) -> date:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str):
            # Text is read as every ledger date is: 24.3.5 or 5/3/2024 are refused, not guessed.
            dates, bad, why = parse_dates(pd.Series([value]))
            if not bad[0] and not pd.isna(dates.iloc[0]):
                return dates.iloc[0].date()
            if bad[0]:
                raise self.bad(
                    where, value, f"a date ({why.iloc[0]}; write {ACCEPTED_DATE_FORMATS})"
                )
        raise self.bad(where, value, 'a date (as_of = 2026-06-30 or "2026-06-30")')

    def crs_value(self, value: Any, where: str) -> str | int:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.bad(where, value, 'a coordinate system ("WGS84", "GCJ-02", "EPSG:4326" …)')
        if isinstance(value, str):
            self.text(value, where)
        try:
            parse_coord_system(value)
        except ConfigError as exc:
            raise self.error(f"{where}: {exc}") from exc
        return value

    def layer_value(self, value: Any, where: str) -> str | int:
        # A GeoPackage layer or Excel sheet, by name or by position.
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str):
            return self.text(value, where)
        raise self.bad(where, value, "a layer or sheet name")

    def text_map(self, value: Any, where: str) -> dict[str, str]:
        table = self.table(value, where)
        return {str(k): self.text(v, f"{where} {k!r}") for k, v in table.items()}

    def header_map(self, value: Any, where: str) -> dict[str, str]:
        table = self.text_map(value, where)
        targets: dict[str, str] = {}
        for header, name in table.items():
            if name in targets:
                raise self.error(
                    f"{where} maps both {targets[name]!r} and {header!r} onto {name!r}; "
                    "each column may come from one header only"
                )
            targets[name] = header
        return table

    def value_maps(self, value: Any, where: str) -> dict[str, dict[str, str]]:
        table = self.table(value, where)
        return {str(c): self.text_map(m, f"{where}.{c}") for c, m in table.items()}

    def checked(self, table: Mapping[str, Any], keys: Mapping[str, str], where: str) -> dict:
        """Each value of ``table`` by the checker of its declared kind."""
        checks: dict[str, Callable[[Any, str], Any]] = {
            "text": self.text,
            "path": self.path_value,
            "file or database": self.file_or_database,
            "date": self.date_value,
            "crs": self.crs_value,
            "layer": self.layer_value,
            "header map": self.header_map,
            "value maps": self.value_maps,
        }
        return {k: checks[keys[k]](v, f"{where} {k}") for k, v in table.items()}


def parse_config(data: Mapping[str, Any], *, path: Path) -> Config:
    """Turn a parsed TOML mapping into a :class:`Config`.

    Raises
    ------
    ConfigError
        Naming the config file, the section and key, the value given and what belongs there.
    """
    r = _Reader(path)
    r.table(data, "", SECTIONS, noun="section")
    district = r.section(data, "district", DISTRICT_KEYS)
    network = r.section(data, "network", NETWORK_KEYS)
    layers = {
        name: _layer_spec(r, name, spec)
        for name, spec in r.table(data.get("layers", {}), "[layers]", LAYER_NAMES, "layer").items()
    }
    missing = [n for n, s in SCHEMAS.items() if s.required_layer and n not in layers]
    if missing:
        raise r.error(
            f"the config must name a file for layer(s) {', '.join(missing)} "
            f'([layers.{missing[0]}] file = "...")'
        )
    sections = {k: r.table(data.get(k, {}), f"[{k}]") for k in PARAM_SECTIONS}
    params = {}
    for name, cls in PARAM_SECTIONS.items():
        try:
            params[name] = cls.from_mapping(sections[name])
        except ConfigError as exc:
            raise r.error(str(exc)) from exc
    # The risk index scores against the access targets and the hydrant radius set once in
    # [access] and [water], never a copy of its own.
    params["risk"] = params["risk"].using(access=params["access"], water=params["water"])
    folder = params["output"].folder
    if folder is not None:
        folder = r.path_value(folder, "[output] folder")
        sections["output"]["folder"] = folder
        params["output"] = replace(params["output"], folder=folder)
    crs = district.get("crs")
    if crs is not None and not parse_coord_system(crs).crs.is_projected:
        raise r.error(f"[district] crs {crs!r} is not a projected CRS in metres (e.g. EPSG:32651)")
    return Config(
        path,
        district.get("name", path.stem),
        crs,
        district.get("as_of"),
        network,
        layers,
        sections,
        params,
    )


def _layer_spec(r: _Reader, name: str, spec: Any) -> LayerSpec:
    where = f"[layers.{name}]"
    spec = r.table(spec, where, LAYER_KEYS)
    if "file" not in spec:
        raise r.error(f'{where} needs file = "..."')
    values = r.checked(spec, LAYER_KEYS, where)
    _check_value_maps(r, values.get("values", {}), SCHEMAS[name], f"{where.rstrip(']')}.values]")
    database = is_database_url(values["file"])
    if database:
        _check_table_name(r, values.get("layer"), values["file"], where)
    return LayerSpec(
        file=values["file"] if database else Path(values["file"]),
        layer=values.get("layer"),
        crs=values.get("crs"),
        lon=values.get("lon"),
        lat=values.get("lat"),
        columns=values.get("columns", {}),
        values=values.get("values", {}),
    )


def _check_table_name(r: _Reader, layer: Any, url: str, where: str) -> None:
    """A database layer names its table as ``schema.table`` (or ``table``, in ``public``)."""
    if not isinstance(layer, str):
        raise r.bad(
            f"{where} layer", layer, 'the table, as "schema.table", when file is a database URL'
        )
    try:
        TableName.parse(layer, where=shown_url(url))
    except InputError as exc:
        raise r.error(f"{where} {exc.problem}") from exc


def _check_value_maps(r: _Reader, maps: Mapping[str, Mapping[str, str]], schema, where: str):
    """``values`` name columns with a fixed set of choices, and map onto those choices."""
    choices = {c.name: c.choices for c in schema.columns if c.choices}
    r.table(maps, where, choices, "column")
    for column, mapping in maps.items():
        wrong = [(k, v) for k, v in mapping.items() if v not in choices[column]]
        if wrong:
            user_value, value = wrong[0]
            raise r.error(
                f"{where.rstrip(']')}.{column}] {user_value!r} = {value!r}: "
                f"{column} takes one of {', '.join(choices[column])}"
            )


def load_config(path: str | Path) -> Config:
    """Read a FireGrid TOML config file and check every value (see :func:`parse_config`)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8 ({exc})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    return parse_config(data, path=path)


def district_from_config(config: Config) -> tuple[District, ValidationReport]:
    """Read and validate every layer the config names (the grid levels against ``[grids]``)."""
    district, report = load_district(
        config.layers,
        name=config.name,
        crs=config.crs,
        network_source=config.network_source,
        as_of=config.as_of,
    )
    if report.ok:
        try:
            config.params["grids"].check(district.layers["grids"])
        except InputError as exc:
            report.add("error", str(exc), "grids", "level")
    return district, report
