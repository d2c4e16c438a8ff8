"""Where the embedded demo district (and demo region) live."""

from __future__ import annotations

from pathlib import Path

from firegrid.spatial.errors import ConfigError


def demo_config_path() -> Path:
    """The embedded demo district's config (``data/demo/demo.toml`` of the source tree)."""
    path = Path(__file__).resolve().parents[1] / "data" / "demo" / "demo.toml"
    if not path.exists():
        raise ConfigError(
            f"the demo district is not installed at {path.parent}: install FireGrid from a "
            "clone of its repository with pip install -e . (or run python data/make_demo.py)"
        )
    return path
