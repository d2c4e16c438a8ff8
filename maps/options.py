"""Map options: the config's ``[map]`` section as a frozen dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from firegrid.risk.params import RiskParams
from firegrid.spatial.errors import ConfigError
from firegrid.spatial.network.profiles import AccessParams
from firegrid.spatial.params import params_from_mapping
from firegrid.spatial.water.params import WaterParams

LANGUAGES = ("zh", "en")
BASEMAPS = ("none", "osm", "amap")


@dataclass(frozen=True)
class MapOptions:
    """How the interactive map is drawn and what it may show.

    Attributes
    ----------
    language : {"zh", "en"}
        Labels, legend and popups in Chinese (default: the plans and ledgers are Chinese) or
        English.
    basemap : {"osm", "amap", "none"}
        Background tiles. ``osm``: OpenStreetMap (WGS84). ``amap``: 高德 Amap tiles, which are
        in GCJ-02, so every layer is shifted to GCJ-02 to line up. ``none``: no tiles (a plain
        light background; roads and grid outlines still make the map legible). Tiles are the
        only part of the exported map that needs a network.
    grid_level : int or None
        Grid level shown by the risk choropleth when the map opens (1 subdistrict,
        2 community, 3 resident-group cell); the other levels are in the layer control,
        switched off. None: the finest level present.
    grid_value : str
        Grid column the choropleth colours, on the 0–100 index scale (default
        ``risk_index_mean``, the grid's mean building risk index; ``risk_index_max`` and
        ``risk_index_median`` fit too).
    isochrone_minutes : tuple of float or None
        Reach bands drawn around the stations, minutes, turnout included. None (default): every
        band the access step computed (its ``[access] isochrone_minutes``, by default 1, 3, 5:
        the "1 minute response, 3 minutes on scene, 5 minutes handling" target).
    allow_fields : tuple of str
        Extra columns allowed into the leaders' outputs (the HTML map and
        ``grid_summary.csv/.xlsx``) beyond FireGrid's canonical and computed columns, by name,
        or ``"all"`` for every column. A column that looks personal (resident names,
        phone or ID numbers, by header or by content) is only let through when named here
        explicitly; ``"all"`` never includes it.
    simplify_m : float
        Tolerance in metres for simplifying outlines before drawing (default 1 m: the size of
        the coordinates' rounding, invisible at street zoom, keeps the HTML small).
    simplify_areas_m : float
        Tolerance in metres for the large area layers — reach bands (isochrones), areas of
        responsibility, water-deficient zones — whose outlines come from 20–25 m street
        buffers (default 10 m: half a street's buffer, invisible at district zoom, and a
        quarter fewer bytes than 5 m).
    precision : int
        Decimal places of the coordinates written into the HTML (default 5: 1e-5 degrees,
        about 1 m; 6 for 0.1 m at about 10 % more bytes).
    title : str or None
        Title shown on the map and as the page title; None: the district name. Shown as plain
        text (never markup or template syntax), like every user text on the map.
    roads : bool
        Draw the road network as a thin layer (default True).
    """

    language: str = "zh"
    basemap: str = "osm"
    grid_level: int | None = None
    grid_value: str = "risk_index_mean"
    isochrone_minutes: tuple[float, ...] | None = None
    allow_fields: tuple[str, ...] = ()
    simplify_m: float = 1.0
    simplify_areas_m: float = 10.0
    precision: int = 5
    title: str | None = None
    roads: bool = True

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ConfigError(
                f"[map] language must be one of {list(LANGUAGES)}, not {self.language!r}"
            )
        if self.basemap not in BASEMAPS:
            raise ConfigError(
                f"[map] basemap must be one of {list(BASEMAPS)}, not {self.basemap!r}"
            )
        if self.grid_level is not None and self.grid_level not in (1, 2, 3):
            raise ConfigError(f"[map] grid_level must be 1, 2 or 3, not {self.grid_level!r}")
        if self.isochrone_minutes is not None:
            minutes = tuple(float(m) for m in self.isochrone_minutes)
            if not minutes or any(m <= 0 for m in minutes):
                raise ConfigError(
                    f"[map] isochrone_minutes must be positive minutes, not {minutes}"
                )
            object.__setattr__(self, "isochrone_minutes", tuple(sorted(set(minutes))))
        allow = self.allow_fields
        if isinstance(allow, str):
            allow = (allow,)
        object.__setattr__(self, "allow_fields", tuple(str(a) for a in allow))
        for key in ("simplify_m", "simplify_areas_m"):
            if not 0 <= getattr(self, key) <= 50:
                raise ConfigError(f"[map] {key} must be 0–50 metres, not {getattr(self, key)!r}")
        if not 4 <= int(self.precision) <= 9:
            raise ConfigError(f"[map] precision must be 4–9 decimals, not {self.precision!r}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the config's ``[map]`` table; ConfigError names an unknown or bad key."""
        d = dict(d or {})
        if isinstance(d.get("allow_fields"), str):  # allow_fields = "all"
            d["allow_fields"] = (d["allow_fields"],)
        return params_from_mapping(cls, d, section="map")


def parameter_values(*, access=None, water=None, risk=None) -> dict[str, float]:
    """The run's parameters that legends and column descriptions quote.

    Parameters
    ----------
    access : AccessParams, optional
        Response targets (seconds); default :class:`~firegrid.spatial.network.profiles.AccessParams`.
    water : WaterParams, optional
        Hydrant protection radius, spacing (metres) …; default
        :class:`~firegrid.spatial.water.params.WaterParams`.
    risk : RiskParams, optional
        ``high_risk_grade``; default :class:`~firegrid.risk.params.RiskParams`.

    Returns
    -------
    dict
        ``target_micro_s``, ``target_fire_s`` (s) and ``target_micro_min``,
        ``target_fire_min`` (minutes); ``hydrant_radius_m``, ``source_radius_m``,
        ``hydrant_spacing_m``, ``street_facing_m`` (m), ``min_source_capacity_m3`` (m³);
        ``high_risk_grade``. The keys of the ``{name}`` placeholders of
        :mod:`firegrid.spatial.columns` descriptions and of the map's legend.
    """
    access = access or AccessParams()
    water = water or WaterParams()
    risk = risk or RiskParams()
    return {
        "target_micro_s": float(access.target_micro_s),
        "target_fire_s": float(access.target_fire_s),
        "target_micro_min": float(access.target_micro_s) / 60.0,
        "target_fire_min": float(access.target_fire_s) / 60.0,
        "hydrant_radius_m": float(water.hydrant_radius_m),
        "source_radius_m": float(water.source_radius_m),
        "hydrant_spacing_m": float(water.hydrant_spacing_m),
        "street_facing_m": float(water.street_facing_m),
        "min_source_capacity_m3": float(water.min_source_capacity_m3),
        "high_risk_grade": int(risk.high_risk_grade),
    }
