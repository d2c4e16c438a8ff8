"""The config's ``[posters]`` section: which grid level gets a page, and what the boards show."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from firegrid.spatial.errors import ConfigError
from firegrid.spatial.params import params_from_mapping

FORMATS = ("pdf", "png")
# Printable resolution of PNG pages (dots per inch); A3 at 150 dpi is 1754 × 2480 pixels.
MIN_DPI, MAX_DPI = 50, 600


@dataclass(frozen=True)
class PosterOptions:
    """Options of ``firegrid posters`` (the config's ``[posters]`` section).

    Attributes
    ----------
    public_fields : tuple of str
        Columns of the ``grids`` layer printed in each page's contact block, in this order
        (e.g. ``["grid_worker", "worker_phone", "supervision_phone"]``). The plans require the
        grid worker's name and phone on the grid boards; these columns are personal data, so
        they reach a poster only when named here. Default: none (no contact block).
    level : int or None
        Grid level that gets one page per cell (2 community, 3 resident-group cell); None:
        the finest level of the grids layer.
    format : {"pdf", "png"}
        ``pdf`` (default): vector pages with the font embedded, searchable; ``png``: images.
    dpi : int
        Resolution of PNG pages in dots per inch (default 150; 50–600).
    """

    public_fields: tuple[str, ...] = ()
    level: int | None = None
    format: str = "pdf"
    dpi: int = 150

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"format must be one of {list(FORMATS)}, not {self.format!r}")
        if not MIN_DPI <= self.dpi <= MAX_DPI:
            raise ConfigError(f"dpi must be between {MIN_DPI} and {MAX_DPI}, not {self.dpi}")
        if self.level is not None and self.level < 1:
            raise ConfigError(f"level must be 1 or more, not {self.level}")
        if len(set(self.public_fields)) != len(self.public_fields):
            raise ConfigError(f"public_fields names a column twice: {list(self.public_fields)}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[posters]`` table; ConfigError names an unknown or bad key."""
        return params_from_mapping(cls, d, section="posters")


__all__ = ["FORMATS", "PosterOptions"]
