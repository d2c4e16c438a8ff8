"""Where the embedded demo district (and demo region) live."""

from __future__ import annotations

from pathlib import Path

from firegrid.spatial.errors import ConfigError

# An installed wheel carries data/demo as firegrid/data/demo (pyproject's package-dir); a
# source checkout (pip install -e .) keeps it in data/demo beside the package folder.
_PLACES = (
    Path(__file__).resolve().parent / "data",
    Path(__file__).resolve().parents[1] / "data",
)


def demo_data_folder(name: str = "demo") -> Path:
    """The folder of the embedded data set ``name`` (``demo``), installed or in the checkout.

    Raises
    ------
    ConfigError
        Neither the installed package nor the source checkout holds it.
    """
    for place in _PLACES:
        if (place / name).is_dir():
            return place / name
    raise ConfigError(
        f"the embedded {name} data is not installed (looked in {', '.join(map(str, _PLACES))}): "
        "reinstall FireGrid (pip install firegrid, or pip install -e . in a clone of its "
        "repository; python data/make_demo.py regenerates the demo district)"
    )


def demo_config_path() -> Path:
    """The embedded demo district's config (``data/demo/demo.toml`` of the source tree).

    Raises
    ------
    ConfigError
        The demo district is not installed.
    """
    return _config_in("demo", "demo.toml", made_by="data/make_demo.py")


def demo_region_path() -> Path:
    """The embedded demo region's config (``data/region/region.toml`` of the source tree).

    Raises
    ------
    ConfigError
        The demo region is not installed.
    """
    return _config_in("region", "region.toml", made_by="data/make_region.py")


def _config_in(name: str, file: str, *, made_by: str) -> Path:
    path = demo_data_folder(name) / file
    if not path.exists():
        raise ConfigError(
            f"the embedded {name}'s config is missing: {path} (python {made_by} makes it)"
        )
    return path
