"""mkdocs hook: pages whose tables come from the code, and the package tree for mkdocstrings.

The API reference is rendered by mkdocstrings (griffe), which reads the source files. FireGrid
installs ``spatial/``, ``risk/`` and ``maps/`` as ``firegrid.spatial`` … (pyproject's
``package-dir``), a layout griffe cannot see in the checkout; :func:`on_config` therefore lays
out the installed tree as links in a temporary folder and points mkdocstrings at it.

A page holds a marker comment where a generated block goes:

- ``<!-- firegrid:columns -->`` — the glossary of output columns, from the column registry
  (:func:`firegrid.spatial.columns.glossary_markdown`, descriptions quoting the parameters'
  defaults), the same text as the README's glossary;
- ``<!-- firegrid:config -->`` — every config section and key: the keys of ``[district]``,
  ``[network]`` and ``[layers.*]`` from :mod:`firegrid.config`, and each analysis section from
  its parameter class (``firegrid.config.PARAM_SECTIONS``): key, default, and the description
  from the class docstring's Attributes section.
"""

from __future__ import annotations

import atexit
import dataclasses
import inspect
import math
import re
import shutil
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path

from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[2]

MARKERS = {
    "<!-- firegrid:columns -->": lambda: columns_markdown(),
    "<!-- firegrid:config -->": lambda: config_markdown(),
}


@event_priority(100)  # before mkdocstrings reads its handler's paths
def on_config(config):
    handler = config["plugins"]["mkdocstrings"].config["handlers"].setdefault("python", {})
    handler["paths"] = [str(package_tree())]
    return config


def package_tree() -> Path:
    """A temporary folder where ``firegrid/`` holds the packages as the wheel installs them."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    folder = Path(tempfile.mkdtemp(prefix="firegrid-docs-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    package_dir = setuptools["setuptools"]["package-dir"]
    top = folder / "firegrid"
    top.mkdir()
    for child in (ROOT / package_dir["firegrid"]).iterdir():
        (top / child.name).symlink_to(child)
    for name, source in package_dir.items():
        if name != "firegrid":
            link = folder.joinpath(*name.split("."))
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(ROOT / source)
    return folder


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


# --------------------------------------------------------------------------------------------
# Output columns


def columns_markdown() -> str:
    from firegrid.maps.options import parameter_values
    from firegrid.risk.params import RiskParams
    from firegrid.spatial.columns import glossary_markdown
    from firegrid.spatial.network.profiles import AccessParams
    from firegrid.spatial.water.params import WaterParams

    values = parameter_values(access=AccessParams(), water=WaterParams(), risk=RiskParams())
    return glossary_markdown(values)


# --------------------------------------------------------------------------------------------
# Config reference


def config_markdown() -> str:
    from firegrid.config import DISTRICT_KEYS, LAYER_KEYS, NETWORK_KEYS, PARAM_SECTIONS
    from firegrid.spatial.io.layers import LAYER_NAMES

    parts = [
        _kinds_table("district", DISTRICT_KEYS),
        _kinds_table("network", NETWORK_KEYS),
        _kinds_table("layers.NAME", LAYER_KEYS)
        + f"\n`NAME` is one of {', '.join(f'`{n}`' for n in LAYER_NAMES)}.\n",
    ]
    for name, cls in PARAM_SECTIONS.items():
        parts.extend(_class_tables(name, cls()))
    return "\n".join(parts)


# What the keys of the config's own tables mean (their kinds come from firegrid.config; a key
# added there without a line here fails tests/test_docs.py).
KEY_MEANINGS = {
    "district": {
        "name": "The district's name, shown on the map, the summary and the posters.",
        "as_of": "Date of the analysis (`2026-06-30`): hazards past their deadline on this "
        "day are overdue. Required when the risk step runs (there is no default).",
        "crs": "Working metric CRS of the analysis (`EPSG:32651`). Default: the UTM zone of "
        "the district.",
    },
    "network": {
        "source": "Road network file: OSM PBF or XML (whole or clipped at a boundary), or a "
        "saved GraphML; relative to the config file.",
        "place": "A place name to download from OpenStreetMap with osmnx instead "
        "(`陆家嘴街道, 浦东新区, 上海市`; needs internet).",
    },
    "layers.NAME": {
        "file": "The layer's file (CSV in UTF-8, UTF-8 with BOM or GBK; Excel; GeoPackage; "
        "GeoJSON; Shapefile; GeoParquet), relative to the config file, or a PostgreSQL URL "
        "for a PostGIS table.",
        "layer": "The GeoPackage layer, Excel sheet or database table, by name or position.",
        "crs": "The coordinate system the file's coordinates are in: `WGS84`, `CGCS2000`, "
        "`GCJ-02` (Amap, Tencent), `BD-09` (Baidu) or `EPSG:NNNN`.",
        "lon": "For a table without geometry: the header of its longitude (or x) column.",
        "lat": "For a table without geometry: the header of its latitude (or y) column.",
        "columns": 'Your header → FireGrid\'s column (`"编号" = "hydrant_id"`); each '
        "column from one header only. Unknown extra columns are kept.",
        "values": "Per column, your value → FireGrid's value (`[layers.hydrants.values.status]"
        ' "完好" = "ok"`); common Chinese values are understood without it.',
    },
}


def _kinds_table(section: str, keys: Mapping[str, str]) -> str:
    meanings = KEY_MEANINGS.get(section, {})
    rows = [f"### `[{section}]`", "", "| key | takes | meaning |", "|---|---|---|"]
    rows += [f"| `{k}` | {kind} | {_cell(meanings.get(k, ''))} |" for k, kind in keys.items()]
    return "\n".join(rows) + "\n"


def _class_tables(section: str, params) -> list[str]:
    """The table of ``[section]`` (defaults: ``params``), then one per nested parameter object."""
    cls = type(params)
    docs = attribute_docs(cls)
    summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
    rows = [
        f"### `[{section}]`",
        "",
        f"{summary} (`{cls.__module__}.{cls.__qualname__}`)",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
    ]
    nested = []
    for f in dataclasses.fields(cls):
        if not f.init or not f.metadata.get("config", True):
            continue
        value = getattr(params, f.name)
        if dataclasses.is_dataclass(value):
            nested.extend(_class_tables(f"{section}.{f.name}", value))
            continue
        text = _cell(docs.get(f.name, ""))
        rows.append(f"| `{f.name}` | {_cell(_toml(value))} | {text} |")
    return ["\n".join(rows) + "\n", *nested]


def attribute_docs(cls) -> dict[str, str]:
    """Field name → description, from the numpydoc Attributes (or Parameters) section.

    An entry ``a, b : float`` documents both names; its text is the indented lines under it.
    """
    doc = inspect.getdoc(cls) or ""
    found = re.search(
        r"^(Attributes|Parameters)\n-+\n(.*?)(?=^\w[^\n]*\n-+\n|\Z)", doc, re.M | re.S
    )
    out: dict[str, str] = {}
    if not found:
        return out
    names: list[str] = []
    for line in found.group(2).splitlines():
        if line and not line[0].isspace():
            head, _, rest = line.partition(" : ")
            names = [n.strip() for n in head.split(",")]
            for n in names:
                out[n] = ""
            if rest.startswith("{"):  # a set of choices: {"drop", "keep"}
                for n in names:
                    out[n] = f"One of {rest}."
            elif rest and not re.match(r"^[\w\[\], |→.]+$", rest):  # prose after the colon
                for n in names:
                    out[n] = rest
        elif line.strip():
            for n in names:
                out[n] = f"{out[n]} {line.strip()}".strip()
    return out


def _toml(value) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and math.isinf(value):
        return "(no limit)"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k} = {_plain(v)}" for k, v in value.items())
        return f"`{{ {inner} }}`"
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(value) if isinstance(value, (frozenset, set)) else value
        return f"`[{', '.join(_plain(v) for v in items)}]`"
    return f"`{value}`"


def _plain(value) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _cell(text: str) -> str:
    # Sphinx roles (:func:`x`) read as plain code spans on a Markdown page.
    text = re.sub(r":\w+:(`[^`]+`)", r"\1", text)
    return text.replace("|", "\\|").replace("\n", " ")
