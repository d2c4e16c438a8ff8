"""The Python API for analysts: run FireGrid on a district built from GeoDataFrames, no TOML.

:func:`run` runs the very steps the command line runs (:func:`firegrid.pipeline.run_pipeline`
over a :class:`~firegrid.config.Config` built in memory): the district's layers are validated
again on the way in, so a layer changed in the notebook since ``from_layers`` (a station
moved, a turnout shortened) is checked like a file, and parameters are read by the same
parameter classes as a config's ``[access]``, ``[water]`` … tables.

Examples
--------
>>> district = District.from_layers(grids=g, buildings=b, stations=s, network=G, as_of="2026-06-30")
>>> results = run(district, steps=("access", "water"), water={"hydrant_radius_m": 200})
>>> results.figures["access"]["buildings_covered_3min"]
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from firegrid.config import PARAM_SECTIONS, Config, parse_config
from firegrid.context import STEPS, RunContext
from firegrid.pipeline import PLANS, build_map, run_pipeline, write_run_outputs
from firegrid.spatial.errors import ConfigError
from firegrid.spatial.io.district import District, LayerSpec
from firegrid.spatial.network.load import save_network

# Where messages about an in-memory run point instead of a config file.
API_PATH = Path("firegrid.run")
ANALYSIS_STEPS = tuple(s for s in STEPS if s not in ("load", "network"))


@dataclass(repr=False)
class Results:
    """What :func:`run` returns: the run's layers, tables and figures.

    Attributes
    ----------
    context : RunContext
        The run itself (each step's result in ``context.steps``).
    """

    context: RunContext

    @property
    def config(self) -> Config:
        """The config built in memory for the run (its parameters in ``config.params``)."""
        return self.context.config

    @property
    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Input layers with the steps' columns joined in (``buildings`` gains ``t_micro_s``,
        ``covered_3min``, ``water_deficient``, ``risk_index`` …) and the layers the steps made
        (``isochrones``, ``water_deficient``, ``sites`` …); working CRS, metres. Read-only:
        copy before changing one."""
        return self.context.layers

    @property
    def buildings(self) -> gpd.GeoDataFrame:
        return self.context.buildings

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Tables without geometry (``water_by_grid``, ``siting_gain_curve`` …)."""
        return self.context.tables

    @property
    def figures(self) -> dict[str, dict[str, Any]]:
        """Headline figures by section (``district``, ``access``, ``water``, ``risk`` …), as in
        ``summary.json``."""
        return self.context.figures

    @property
    def headline(self) -> list[str]:
        """The headline as one line per figure, as the command line prints it."""
        return self.context.headline

    @property
    def notes(self) -> list[str]:
        """What was skipped or degraded, and why."""
        return self.context.notes

    @property
    def results(self) -> dict[str, Any]:
        """The analyses' own result objects (``access``, ``water`` …)."""
        return self.context.results

    def summary(self) -> dict[str, Any]:
        """Headline figures, notes and timings, JSON-ready (``summary.json``)."""
        return self.context.summary()

    def map(self, **options: Any):
        """The run's interactive folium map; ``options`` are ``[map]`` keys (``title`` …).

        Save it for offline use with :func:`firegrid.save_html`."""
        config = self.context.config
        chosen = PARAM_SECTIONS["map"].from_mapping({**config.section("map"), **options})
        return build_map(self.context, options=chosen)

    def write(self, folder: str | Path, *, with_map: bool | None = None, force: bool = False):
        """Write the run's outputs into ``folder`` as ``firegrid run`` does (atomically):
        ``map.html``, ``results.gpkg``, ``grid_summary.csv``/``.xlsx``, ``summary.md``/``.json``.

        Returns file name → path."""
        return write_run_outputs(self.context, folder, with_map=with_map, force=force)

    def __repr__(self) -> str:
        lines = "\n".join(f"  {line}" for line in self.headline)
        return f"Results of {self.context.config.name!r} ({', '.join(self.context.done)}):\n{lines}"

    def _repr_markdown_(self) -> str:
        return "\n".join(f"- {line}" for line in self.headline) or "(no figures)"


def run(
    district: District,
    *,
    steps: Iterable[str] = ANALYSIS_STEPS,
    progress: bool | None = False,
    threads: int | None = None,
    **params: Mapping[str, Any],
) -> Results:
    """Run analysis steps on a district, as ``firegrid run`` does on a config.

    Parameters
    ----------
    district : District
        From :meth:`District.from_layers` (or :func:`firegrid.config.district_from_config`).
        Its layers may have been changed since: they are validated again.
    steps : iterable of str
        Any of ``access``, ``water``, ``risk``, ``siting``; the steps they need run too
        (``risk`` runs ``access`` and ``water``; ``siting`` runs everything). Reading the
        layers and the road network always runs.
    progress : bool or None
        Show a progress bar (None: when stderr is a terminal).
    threads : int, optional
        Threads per analysis (default: the cores this process may use).
    **params : mapping
        Parameters by config section, the keys of the config's tables:
        ``access={"target_micro_s": 150}``, ``water={"hydrant_radius_m": 200}``,
        ``risk={...}``, ``siting={"k": 3}``, ``map={...}``, ``output={...}``.
        An unknown section or key stops with the known ones named.

    Returns
    -------
    Results
        Layers (GeoDataFrames, working CRS), tables, figures, headline and notes.

    Raises
    ------
    FireGridError
        Bad input (InputError naming the layer and row), a bad parameter (ConfigError), an
        unreadable network (NetworkError).
    """
    plan = plan_steps(steps)
    if "risk" in plan and district.as_of is None:
        raise ConfigError(
            "firegrid.run: the risk step judges hazard deadlines against the district's date: "
            'give District.from_layers(..., as_of="2026-06-30")'
        )
    with tempfile.TemporaryDirectory(prefix="firegrid-api-") as tmp:
        config = api_config(district, network=_network_file(district.network_source, tmp), **params)
        context = run_pipeline(config, steps=plan, progress=progress, threads=threads)
    return Results(context)


def plan_steps(steps: Iterable[str]) -> list[str]:
    """The steps to run for the analyses asked for, in run order (their inputs included)."""
    if isinstance(steps, str):
        steps = (steps,)
    asked = list(steps)
    unknown = [s for s in asked if s not in PLANS or s in ("run", "load")]
    if unknown:
        raise ConfigError(
            f"firegrid.run: unknown step(s) {unknown}; steps are {list(ANALYSIS_STEPS)}"
        )
    needed = {step for s in asked for step in PLANS[s]} | {"load", "network"}
    return [s for s in STEPS if s in needed]


def api_config(district: District, *, network: str | None = None, **params: Any) -> Config:
    """A :class:`Config` in memory for ``district``: its layers as frames, ``params`` read by
    the config's own parser (the same checks and messages as a TOML file's sections)."""
    unknown = [k for k in params if k not in PARAM_SECTIONS]
    if unknown:
        raise ConfigError(
            f"firegrid.run: unknown parameter section(s) {unknown}; sections are "
            f"{list(PARAM_SECTIONS)} (e.g. access={{'target_micro_s': 150}})"
        )
    for name, table in params.items():
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"firegrid.run: {name}= takes a mapping of [{name}] keys, not "
                f"{type(table).__name__}"
            )
    data: dict[str, Any] = {
        "district": {"name": district.name},
        # The parser wants the required layers named; the frames replace them below.
        "layers": {n: {"file": n} for n in ("grids", "buildings", "stations")},
        **{k: dict(v) for k, v in params.items()},
    }
    if network is not None:
        data["network"] = {"source": network}
    config = parse_config(data, path=API_PATH)
    return replace(
        config,
        crs=district.crs,
        as_of=district.as_of,
        layers={n: LayerSpec(file=g) for n, g in district.layers.items()},
    )


def _network_file(source: Any, folder: str) -> str | None:
    """The network as a path or place name; an osmnx graph is saved as GraphML for the step,
    which reads it as it reads a GraphML file of a config."""
    if source is None or isinstance(source, str | Path):
        return None if source is None else str(source)
    if not hasattr(source, "graph") or not hasattr(source, "edges"):
        raise ConfigError(
            "the district's network must be an osmnx graph (networkx.MultiDiGraph), a file "
            f"path or a place name, not {type(source).__name__}"
        )
    return str(save_network(source, Path(folder) / "network.graphml"))


__all__ = ["Results", "api_config", "plan_steps", "run"]
