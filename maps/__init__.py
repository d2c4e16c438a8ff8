"""Folium maps of fire risk: layers, styles and legends, self-contained offline HTML export.

The names below are imported on first use: folium, branca and jinja2 take about a second to
import, and commands that write no map (``firegrid access`` with ``map = false``) import this
package only for its options.
"""

from importlib import import_module

_WHERE = {
    "MapOptions": "firegrid.maps.options",
    "risk_map": "firegrid.maps.risk_map",
    "save_html": "firegrid.maps.export",
    "show": "firegrid.maps.export",
    "to_html": "firegrid.maps.export",
}

__all__ = ["MapOptions", "risk_map", "save_html", "show", "to_html"]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
