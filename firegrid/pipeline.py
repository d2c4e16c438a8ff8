"""The one pipeline run: config → district → network → access → water → risk → siting → outputs.

:func:`run_pipeline` runs the steps of a plan over a :class:`~firegrid.context.RunContext`;
each step (:mod:`firegrid.steps`) returns its own result, kept per step in the context. The
command line's step commands reuse them; outputs are written with :func:`write_run_outputs`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from firegrid.config import Config, load_config
from firegrid.context import STEPS, RunContext
from firegrid.demo import demo_config_path
from firegrid.spatial import runtime
from firegrid.spatial.errors import ConfigError, FireGridError
from firegrid.spatial.network.routing import GraphTable
from firegrid.steps import STEP_FUNCTIONS, require_as_of

# The steps each command runs, in order (a step's inputs come from those before it).
PLANS: dict[str, tuple[str, ...]] = {
    "load": ("load",),
    "access": ("load", "network", "access"),
    "water": ("load", "network", "water"),
    "risk": ("load", "network", "access", "water", "risk"),
    "siting": STEPS,
    "run": STEPS,
}
STEP_LABELS = {
    "load": "reading and validating layers",
    "network": "reading the road network",
    "access": "response times and isochrones",
    "water": "fire water coverage",
    "risk": "risk index, grades and grid roll-up",
    "siting": "siting new micro-stations",
}


def run_pipeline(
    config: Config | str | Path,
    *,
    until: str = "run",
    steps: Sequence[str] | None = None,
    progress: bool | None = None,
    threads: int | None = None,
) -> RunContext:
    """Run the pipeline on a config.

    Parameters
    ----------
    config : Config or path
        The district's TOML config (or a parsed :class:`firegrid.config.Config`).
    until : str
        A command name of :data:`PLANS` (``access``, ``water``, ``risk``, ``siting``, ``run``):
        runs exactly the steps it needs.
    steps : sequence of str, optional
        Explicit steps instead of ``until`` (in :data:`STEPS` order).
    progress : bool or None
        Show a progress bar on stderr (None: only when stderr is a terminal).
    threads : int, optional
        Threads per analysis for its parallel parts (default: the cores this process may use).

    Returns
    -------
    RunContext
        Its ``layers``, ``tables``, ``figures``, ``headline`` and ``notes``, and each step's
        result in ``steps``. The snaps the steps shared are dropped at the end
        (:meth:`~firegrid.spatial.network.routing.GraphTable.forget_snaps`): a step run
        on the context later snaps again.

    Raises
    ------
    FireGridError
        On bad input (ConfigError, InputError, NetworkError): one message naming the problem.
    """
    steps = _plan(until, steps)
    if not isinstance(config, Config):
        config = load_config(config)
    require_as_of(config, steps)
    ctx = RunContext(config)
    with runtime.using_threads(threads), runtime.collector_paused():
        _run_steps(ctx, steps, progress=progress)
    if isinstance(ctx.network, GraphTable):
        # The outputs read none of them; writing a city's outputs is the run's memory peak.
        ctx.network.forget_snaps()
    return ctx


def run_step(ctx: RunContext, step: str) -> None:
    """Run one step on the context, replacing the result of an earlier run of the step.

    The analyses' notes (a station off the network, a hydrant far from any street …) become
    the step's notes, so they reach summary.md and the console.
    """
    t0 = time.perf_counter()
    ctx.running = step
    try:
        with runtime.collecting_notes() as notes, runtime.collector_paused():
            result = STEP_FUNCTIONS[step](ctx)
    finally:
        ctx.running = None
    for text in notes:
        result.note(f"{step}: {text}")
    result.seconds = time.perf_counter() - t0
    ctx.record(step, result)


def _plan(until: str, steps: Sequence[str] | None) -> list[str]:
    if steps is None:
        if until not in PLANS:
            raise ConfigError(f"unknown pipeline plan {until!r}; plans are {list(PLANS)}")
        steps = PLANS[until]
    unknown = [s for s in steps if s not in STEP_FUNCTIONS]
    if unknown:
        raise ConfigError(f"unknown step(s) {unknown}; steps are {list(STEPS)}")
    return [s for s in STEPS if s in steps]


def _run_steps(ctx: RunContext, steps: list[str], *, progress: bool | None) -> None:
    from tqdm.auto import tqdm

    disable = None if progress is None else not progress
    with tqdm(total=len(steps), desc="firegrid", unit="step", disable=disable, leave=False) as bar:
        for step in steps:
            bar.set_postfix_str(STEP_LABELS[step])
            run_step(ctx, step)
            bar.update(1)


# --------------------------------------------------------------------------------------------
# Outputs


def build_map(run: RunContext, *, options=None):
    """The interactive map of a run (``[map]`` options from the config unless given)."""
    from firegrid.maps.district_map import risk_map

    options = options or run.config.params["map"]
    return risk_map(
        run.layers,
        options=options,
        title=options.title or run.config.name,
        as_of=run.district.as_of if run.district else None,
        values=parameter_values(run.config),
    )


def parameter_values(config: Config) -> dict[str, float]:
    """The run's targets, radius and thresholds that legends and column descriptions quote."""
    from firegrid.maps.options import parameter_values as values

    p = config.params
    return values(access=p["access"], water=p["water"], risk=p["risk"])


def map_html(run: RunContext, *, options=None) -> str:
    """The self-contained HTML of the run's map."""
    from firegrid.maps.export import to_html

    return to_html(build_map(run, options=options))


def default_output_folder(config: Config) -> Path:
    """``[output] folder`` of the config, else ``firegrid-output`` beside the config file."""
    folder = config.section("output").get("folder")
    return Path(folder) if folder else config.path.parent / "firegrid-output"


def write_run_outputs(
    run: RunContext,
    folder: str | Path | None = None,
    *,
    with_map: bool | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Write the run's outputs into ``folder`` atomically (see :mod:`firegrid.outputs`).

    The per-grid table and the map show only canonical, computed and ``[map] allow_fields``
    columns (personal ones only when named there); ``results.gpkg`` drops personal columns
    unless ``[output] personal = "keep"``. ``force`` proceeds even though the folder holds
    files FireGrid did not write (they are kept).

    Returns
    -------
    File name → path: ``map.html``, ``results.gpkg``, ``grid_summary.csv``/``.xlsx``,
    ``summary.md``, ``summary.json`` (those the run has material for). With ``[output]
    database``, the same layers are then written to a new PostGIS schema in one transaction
    (:func:`firegrid.store.write_postgis`), named in ``run.notes``; a database error raises
    InputError after the files are in place.
    """
    from firegrid.reports import RunOutputs, grid_summary_table, write_outputs

    out_opts = run.config.params["output"]
    allow = run.config.params["map"].allow_fields
    folder = Path(folder) if folder is not None else default_output_folder(run.config)
    draw = out_opts.map if with_map is None else with_map
    html = map_html(run) if draw else None
    inputs = run.district.layers.get("grids") if run.district else None
    table = grid_summary_table(
        run.layers.get("grids"),
        extra=[run.tables.get("access_by_grid"), run.tables.get("water_by_grid")],
        user_columns=inputs.columns if inputs is not None else (),
        allow=allow,
    )
    layers: dict[str, Any] = {k: v for k, v in run.layers.items() if v is not None and len(v)}
    for name, tab in run.tables.items():
        if name not in ("water_by_grid", "access_by_grid"):
            layers[name] = tab
    outputs = RunOutputs(
        layers=layers,
        grid_table=table,
        summary=run.summary(),
        map_html=html,
        values=parameter_values(run.config),
    )
    with runtime.collector_paused():
        written = write_outputs(folder, outputs, options=out_opts, allow=allow, force=force)
    if out_opts.database:
        _write_database(run, layers, out_opts, allow=allow)
    return written


def _write_database(run: RunContext, layers: dict[str, Any], options, *, allow) -> str:
    """Every result layer into a new PostGIS schema (``[output] database``), after the files;
    the schema is named in the run's notes."""
    from firegrid.spatial.io.database import shown_url
    from firegrid.store import run_schema_name, write_postgis

    schema = options.database_schema or run_schema_name(run.config.name)
    write_postgis(layers, options.database, schema=schema, personal=options.personal, allow=allow)
    run.run_notes.append(
        f"database: {len(layers)} result layers in schema {schema} of {shown_url(options.database)}"
    )
    return schema


__all__ = [
    "PLANS",
    "STEPS",
    "FireGridError",
    "RunContext",
    "build_map",
    "default_output_folder",
    "demo_config_path",
    "map_html",
    "run_pipeline",
    "run_step",
    "write_run_outputs",
]
