"""Folium maps of fire risk: layers, styles and legends, self-contained offline HTML export.

The names below are imported on first use (PEP 562): folium, branca and jinja2 take about a
second to import, and commands that write no map (``firegrid access`` with ``map = false``)
import this package only for its options and privacy rules.

No submodule may share an exported name: importing a submodule sets the package attribute of
its name to the module, so ``from firegrid.maps import risk_map`` would then give the module
(hence :mod:`firegrid.maps.district_map` for the function :func:`risk_map`).
"""

from importlib import import_module

# Exported name → the module defining it.
_WHERE = {
    "MapOptions": "firegrid.maps.options",
    "risk_map": "firegrid.maps.district_map",
    "save_html": "firegrid.maps.export",
    "show": "firegrid.maps.export",
    "to_html": "firegrid.maps.export",
}

__all__ = ["MapOptions", "risk_map", "save_html", "show", "to_html"]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
