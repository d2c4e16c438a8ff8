"""FireGrid: fire-safety risk analysis of city subdistricts.

The analyst's API, without a TOML config::

    import firegrid

    district = firegrid.District.from_layers(
        grids=grids, buildings=buildings, stations=stations, hydrants=hydrants,
        layer_crs={"hydrants": "GCJ-02"}, network=G, as_of="2026-06-30",
    )
    results = firegrid.run(district, steps=("access", "water"))
    results.figures["access"]["share_covered_3min"]
    firegrid.save_html(results.map(), "map.html")   # any folium map, offline

The names below are imported on first use, so ``import firegrid`` (and every
``firegrid.spatial`` … import, which runs this file first) stays light.
"""

from __future__ import annotations

from importlib import import_module, metadata
from typing import Any

try:
    __version__ = metadata.version("firegrid")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

# Public name → the module that defines it.
_EXPORTS = {
    "District": "firegrid.spatial.io.district",
    "run": "firegrid.api",
    "Results": "firegrid.api",
    "compare": "firegrid.diff",
    "load_config": "firegrid.config",
    "run_pipeline": "firegrid.pipeline",
    "demo_config_path": "firegrid.demo",
    "to_html": "firegrid.maps.export",
    "save_html": "firegrid.maps.export",
    "show": "firegrid.maps.export",
    "FireGridError": "firegrid.spatial.errors",
    "ConfigError": "firegrid.spatial.errors",
    "InputError": "firegrid.spatial.errors",
    "NetworkError": "firegrid.spatial.errors",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'firegrid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = ["__version__", *_EXPORTS]
