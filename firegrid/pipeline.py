"""The one pipeline run: config → district → network → access → water → risk → siting → outputs.

Each step is a function over a :class:`PipelineRun` (the run's state: the district, the road
network, the result layers and tables, headline figures and notes); the command line's step
commands reuse them. A step whose input is absent (no road network, no hydrant layer …) is
skipped or degraded with a note saying what is missing and what the outputs therefore lack —
results are never invented.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from firegrid.config import Config, district_from_config, load_config
from firegrid.spatial.errors import ConfigError, FireGridError
from firegrid.spatial.io.district import District

STEPS = ("load", "network", "access", "water", "risk", "siting")
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


@dataclass
class PipelineRun:
    """The state of one run.

    Attributes
    ----------
    config : Config
    district : District or None
        Validated layers in the working CRS (metres).
    network : networkx.MultiDiGraph or None
        The projected road network.
    layers : dict name → GeoDataFrame
        Result layers in the working CRS: ``buildings`` (accumulating each step's columns),
        ``grids`` (with the roll-up once risk ran), ``stations``, ``hydrants``,
        ``water_sources``, ``hazards`` (the ledger once risk ran), ``incidents``, ``roads``,
        ``isochrones``, ``areas``, ``water_deficient``, ``hydrant_gaps``, ``sites``,
        ``proposed_hydrants``.
    tables : dict name → DataFrame
        Tables without geometry (``water_by_grid``, ``gain_curve``, ``escalation`` …).
    figures : dict step → dict
        Headline figures per step (JSON-ready).
    headline : list of str
        One-line headline figures, printed by the command line.
    notes : list of str
        What was skipped or degraded, and why.
    done : list of str
        Steps that ran.
    timings : dict step → seconds
    results : dict step → result object
        The analyses' own result objects (``AccessResult``, ``WaterResult``, ``RiskResult``,
        ``SitingResult``) for notebooks that want more than the layers.
    """

    config: Config
    district: District | None = None
    network: Any = None
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    headline: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def buildings(self) -> gpd.GeoDataFrame:
        return self.layers["buildings"]

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def summary(self) -> dict[str, Any]:
        """Headline figures, notes and timings of the run, JSON-ready (see firegrid.reports)."""
        district = self.district
        return {
            "district": self.config.name,
            "config": str(self.config.path),
            "as_of": district.as_of.isoformat() if district and district.as_of else None,
            "crs": district.crs.to_string() if district else None,
            "run_at": datetime.now().isoformat(timespec="seconds"),
            "steps": list(self.done),
            "figures": self.figures,
            "headline": list(self.headline),
            "notes": list(self.notes),
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
        }


def _share(n: int, total: int) -> float:
    return n / total if total else float("nan")


def _pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f} %"


# --------------------------------------------------------------------------------------------
# Steps


def load_step(run: PipelineRun) -> None:
    """Read and validate every layer; bad input raises InputError with the first problem."""
    district, report = district_from_config(run.config)
    report.raise_if_errors()
    for warning in report.warnings:
        run.note(f"validation: {warning}")
    run.district = district
    run.layers.update({name: gdf for name, gdf in district.layers.items()})
    b = district.layers["buildings"]
    figures: dict[str, Any] = {
        "buildings": len(b),
        "residents": int(pd.to_numeric(b.get("residents"), errors="coerce").sum())
        if "residents" in b
        else None,
    }
    grids = district.layers["grids"]
    figures["grids_by_level"] = {
        int(k): int(v) for k, v in grids["level"].value_counts().sort_index().items()
    }
    stations = district.layers["stations"]
    figures["stations"] = {
        str(k): int(v) for k, v in stations["kind"].value_counts().sort_index().items()
    }
    if district.has("hydrants"):
        h = district.layers["hydrants"]
        figures["hydrants"] = {
            str(k): int(v) for k, v in h["status"].value_counts().sort_index().items()
        }
    for name in ("water_sources", "hazards", "incidents"):
        if district.has(name):
            figures[name] = len(district.layers[name])
    run.figures["district"] = figures


def network_step(run: PipelineRun) -> None:
    """Read the road network (OSM PBF/XML, GraphML or a place name) in the working CRS.

    ``run.network`` is a :class:`firegrid.spatial.network.routing.GraphTable` read once for every profile.
    """
    source = run.config.network_source
    if source is None:
        run.note(
            "no road network: the config has no [network] source, so response times, "
            "isochrones, water coverage along streets and siting were not computed"
        )
        return
    from firegrid.spatial.network.load import read_network, require_near

    run.network = read_network(source, crs=run.district.crs)
    require_near(run.network, run.district.layers.get("grids"), source=source)
    run.layers["roads"] = run.network.roads_layer()
    run.figures.setdefault("district", {})["road_km"] = round(
        float(run.layers["roads"]["length_m"].sum()) / 1000.0, 1
    )
    cut = run.network.stats.get("ways_cut_at_edge", 0)
    if cut:
        run.note(
            f"road network: {cut:,} ways are cut at the edge of the extract; buildings near "
            "the edge may be reachable only from outside it (firegrid validate counts them)"
        )


def access_step(run: PipelineRun) -> None:
    """Travel times from every station to every building, coverage, isochrones, areas."""
    if run.network is None:
        return
    from firegrid.spatial.access.analysis import analyse_access

    params = run.config.params["access"]
    result = analyse_access(
        run.network,
        run.buildings,
        run.layers["stations"],
        params=params,
        grids=run.layers.get("grids"),
    )
    run.results["access"] = result
    run.layers["buildings"] = result.buildings
    for name, layer in (
        ("isochrones", result.isochrones),
        ("areas", result.areas),
        ("access_missing", result.missing),
    ):
        if layer is not None and len(layer):
            run.layers[name] = layer
    if result.grid_summary is not None:
        run.tables["access_by_grid"] = pd.DataFrame(
            result.grid_summary.drop(columns=result.grid_summary.geometry.name)
            if isinstance(result.grid_summary, gpd.GeoDataFrame)
            else result.grid_summary
        )
    _access_figures(run, params)


def _access_figures(run: PipelineRun, params) -> None:
    b = run.buildings
    n = len(b)
    figures: dict[str, Any] = {"target_micro_s": params.target_micro_s}
    figures["target_fire_s"] = params.target_fire_s
    for col in ("covered_3min", "covered_5min"):
        if col in b:
            k = int(b[col].fillna(False).astype(bool).sum())
            figures[f"buildings_{col}"] = k
            figures[f"share_{col}"] = _share(k, n)
    for col in ("t_micro_s", "t_fire_s"):
        if col in b:
            t = pd.to_numeric(b[col], errors="coerce")
            figures[f"median_{col}"] = float(t.median())
            figures[f"unreachable_{col.split('_')[1]}"] = int(t.isna().sum())
    if "residents" in b and "covered_3min" in b:
        outside = ~b["covered_3min"].fillna(False).astype(bool)
        figures["residents_outside_3min"] = int(
            pd.to_numeric(b.loc[outside, "residents"], errors="coerce").sum()
        )
    if "access_issue" in b:
        figures["buildings_with_access_issue"] = int((b["access_issue"].fillna("") != "").sum())
    run.figures["access"] = figures
    if "buildings_covered_3min" in figures:
        run.headline.append(
            f"3-minute micro-station coverage: {figures['buildings_covered_3min']:,} of {n:,} "
            f"buildings ({_pct(figures['share_covered_3min'])})"
        )
    if "buildings_covered_5min" in figures:
        run.headline.append(
            f"5-minute fire-station coverage: {figures['buildings_covered_5min']:,} of {n:,} "
            f"buildings ({_pct(figures['share_covered_5min'])})"
        )


def water_step(run: PipelineRun) -> None:
    """Hydrant and water-source coverage along streets, water-deficient zones, new hydrants."""
    if run.network is None:
        return
    from firegrid.spatial.siting.hydrants import propose_hydrants
    from firegrid.spatial.water.coverage import analyse_water

    d = run.district
    if not d.has("hydrants") and not d.has("water_sources"):
        run.note(
            "no hydrants or water sources layer: every building counts as water-deficient "
            "(no fire water within reach is on record)"
        )
    params = run.config.params["water"]
    result = analyse_water(
        run.network,
        run.buildings,
        hydrants=run.layers.get("hydrants"),
        water_sources=run.layers.get("water_sources"),
        grids=run.layers.get("grids"),
        params=params,
    )
    proposed, siting = propose_hydrants(run.network, result.buildings, params=params)
    run.results["water"] = result
    run.results["hydrant_siting"] = siting
    run.layers["buildings"] = result.buildings
    if result.hydrants is not None:
        run.layers["hydrants"] = result.hydrants
    if result.water_sources is not None:
        run.layers["water_sources"] = result.water_sources
    if len(result.zones):
        run.layers["water_deficient"] = result.zones
    if len(result.gaps):
        run.layers["hydrant_gaps"] = result.gaps
    if len(proposed):
        run.layers["proposed_hydrants"] = proposed
    if result.grid_summary is not None:
        run.tables["water_by_grid"] = result.grid_summary
    figures = {
        "hydrant_radius_m": params.hydrant_radius_m,
        **result.headline(),
        **siting.figures(),
    }
    run.figures["water"] = figures
    run.headline.append(
        f"water-deficient buildings (no working hydrant or source within "
        f"{params.hydrant_radius_m:g} m along streets): {figures['water_deficient']:,} "
        f"({_pct(figures['share_water_deficient'])}) in {figures['deficient_zones']} zone(s)"
    )
    run.headline.append(
        f"new hydrants needed to cover every coverable deficient building: "
        f"{figures['new_hydrants_needed']}"
    )


def risk_step(run: PipelineRun) -> None:
    """Risk index, grades, hazard ledger, fire model (with incidents) and grid roll-up."""
    from firegrid.risk.params import FACTORS
    from firegrid.risk.score import score_district

    d = run.district
    as_of = d.as_of
    _require_as_of(run.config, ["risk"])
    params = run.config.params["risk"]
    result = score_district(
        run.buildings,
        run.layers.get("grids"),
        run.layers.get("hazards"),
        run.layers.get("incidents"),
        as_of=as_of,
        params=params,
    )
    run.results["risk"] = result
    run.layers["buildings"] = result.buildings
    if result.grids is not None:
        run.layers["grids"] = result.grids
    if result.hazards is not None:
        run.layers["hazards"] = result.hazards
    if result.escalation is not None and len(result.escalation):
        run.tables["hazard_escalation"] = result.escalation
    b = result.buildings
    grades = b["risk_grade"].value_counts().reindex([1, 2, 3, 4], fill_value=0)
    figures: dict[str, Any] = {
        "risk_index_mean": float(b["risk_index"].mean()),
        "risk_index_max": float(b["risk_index"].max()),
        "grades": {int(g): int(n) for g, n in grades.items()},
        "factors_assessed": list(result.assessed_factors),
    }
    if result.hazards is not None:
        st = result.hazards["status"].value_counts()
        figures["hazards_open"] = int(st.get("open", 0)) + int(st.get("overdue", 0))
        figures["hazards_overdue"] = int(st.get("overdue", 0))
    if "p_fire" in b:
        figures["expected_fires_per_year"] = float(pd.to_numeric(b["p_fire"]).sum())
    if result.evaluation is not None:
        ev = result.evaluation
        for key in ("auc", "roc_auc", "brier"):
            if hasattr(ev, key):
                figures[f"model_{key}"] = float(getattr(ev, key))
    elif result.model_note:
        run.note(f"fire model: {result.model_note}")
    if result.grids is not None and "risk_index_mean" in result.grids:
        g = result.grids
        finest = g[g["level"] == g["level"].max()].dropna(subset=["risk_index_mean"])
        top = finest.nlargest(3, "risk_index_mean")
        figures["highest_risk_grids"] = {
            str(r.grid_id): round(float(r.risk_index_mean), 1) for r in top.itertuples()
        }
    missing = [f for f in FACTORS if f not in figures["factors_assessed"]]
    if missing:
        run.note(
            "risk factors not assessed (no input for them; left out of the index): "
            + ", ".join(missing)
        )
    run.figures["risk"] = figures
    labels = {1: "重大", 2: "较大", 3: "一般", 4: "低"}
    run.headline.append(
        "risk grades (buildings): "
        + " · ".join(f"{g} {labels[g]} {n:,}" for g, n in figures["grades"].items())
        + f"; index mean {figures['risk_index_mean']:.1f}, max {figures['risk_index_max']:.1f}"
    )
    if "hazards_open" in figures:
        run.headline.append(
            f"hazards unrectified: {figures['hazards_open']:,} (of which overdue "
            f"{figures['hazards_overdue']:,})"
        )


def siting_step(run: PipelineRun) -> None:
    """Where new micro-stations add the most 3-minute coverage (maximal coverage, gain curve)."""
    if run.network is None:
        return
    from firegrid.spatial.siting.stations import site_micro_stations

    params = run.config.params["siting"]
    if params.weight and params.weight not in run.buildings:
        raise ConfigError(
            f"[siting] weight = {params.weight!r} is not a building column "
            "(risk_index needs the risk step)"
        )
    if "t_micro_s" not in run.buildings:
        run.note(
            "siting counted existing micro-station coverage itself (the access step did not run)"
        )
    result = site_micro_stations(
        run.network,
        run.buildings,
        run.layers.get("stations"),
        params=params,
        access=run.config.params["access"],
    )
    run.results["siting"] = result
    # The per-building siting columns (README "Buildings — siting") reach the outputs.
    run.layers["buildings"] = result.buildings
    if len(result.sites):
        run.layers["sites"] = result.sites
    if result.curve is not None and len(result.curve):
        run.tables["siting_gain_curve"] = result.curve
    figures = result.summary()
    run.figures["siting"] = figures
    n = figures["buildings"]
    run.headline.append(
        f"{figures['new_sites']} new micro-station site(s) proposed: 3-minute coverage "
        f"{_pct(_share(figures['covered_before'], n))} → {_pct(_share(figures['covered_after'], n))}"
        + (
            f"; {figures['min_count']} would reach every reachable building"
            if "min_count" in figures
            else ""
        )
    )


STEP_FUNCTIONS: dict[str, Callable[[PipelineRun], None]] = {
    "load": load_step,
    "network": network_step,
    "access": access_step,
    "water": water_step,
    "risk": risk_step,
    "siting": siting_step,
}


def run_pipeline(
    config: Config | str | Path,
    *,
    until: str = "run",
    steps: Sequence[str] | None = None,
    progress: bool | None = None,
) -> PipelineRun:
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

    Returns
    -------
    PipelineRun
        Its ``layers``, ``tables``, ``figures``, ``headline`` and ``notes``. Write outputs with
        :func:`write_run_outputs`.

    Raises
    ------
    FireGridError
        On bad input (ConfigError, InputError, NetworkError): one message naming the problem.
    """
    if steps is None:
        if until not in PLANS:
            raise ConfigError(f"unknown pipeline plan {until!r}; plans are {list(PLANS)}")
        steps = PLANS[until]
    unknown = [s for s in steps if s not in STEP_FUNCTIONS]
    if unknown:
        raise ConfigError(f"unknown step(s) {unknown}; steps are {list(STEPS)}")
    if not isinstance(config, Config):
        config = load_config(config)
    run = PipelineRun(config)
    _run_steps(run, [s for s in STEPS if s in steps], progress=progress)
    return run


def _require_as_of(config: Config, steps: Sequence[str]) -> None:
    """Stop before any analysis when the risk step will run without ``[district] as_of``."""
    if "risk" in steps and config.as_of is None:
        raise ConfigError(
            f"{config.path}: [district] as_of is needed for the risk step "
            '(the date hazard deadlines are judged against), e.g. as_of = "2026-06-30"'
        )


def _run_steps(run: PipelineRun, steps: Iterable[str], *, progress: bool | None) -> None:
    from tqdm.auto import tqdm

    steps = list(steps)
    _require_as_of(run.config, steps)
    bar = tqdm(
        total=len(steps),
        desc="firegrid",
        unit="step",
        disable=None if progress is None else not progress,
        leave=False,
    )
    try:
        for step in steps:
            bar.set_postfix_str(STEP_LABELS[step])
            t0 = time.perf_counter()
            # Warnings of the analyses (a station off the network, a hydrant far from any
            # street …) become notes of the run, so they reach summary.md and the console.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                STEP_FUNCTIONS[step](run)
            for w in caught:
                if type(w.message) is UserWarning:
                    run.note(f"{step}: {w.message}")
                else:  # library deprecations etc. go on to the caller's warning filters
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            run.timings[step] = time.perf_counter() - t0
            run.done.append(step)
            bar.update(1)
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------
# Outputs


def build_map(run: PipelineRun, *, options=None):
    """The interactive map of a run (``[map]`` options from the config unless given)."""
    from firegrid.maps.risk_map import risk_map

    options = options or run.config.params["map"]
    L = run.layers
    return risk_map(
        L["buildings"],
        grids=L.get("grids"),
        stations=L.get("stations"),
        hydrants=L.get("hydrants"),
        water_sources=L.get("water_sources"),
        hazards=L.get("hazards") if "status" in L.get("hazards", pd.DataFrame()) else None,
        isochrones=L.get("isochrones"),
        areas=L.get("areas"),
        water_deficient=L.get("water_deficient"),
        sites=L.get("sites"),
        proposed_hydrants=L.get("proposed_hydrants"),
        roads=L.get("roads"),
        options=options,
        title=options.title or run.config.name,
        as_of=run.district.as_of if run.district else None,
    )


def map_html(run: PipelineRun, *, options=None) -> str:
    """The self-contained HTML of the run's map."""
    from firegrid.maps.export import to_html

    return to_html(build_map(run, options=options))


def default_output_folder(config: Config) -> Path:
    """``[output] folder`` of the config, else ``firegrid-output`` beside the config file."""
    folder = config.section("output").get("folder")
    return Path(folder) if folder else config.path.parent / "firegrid-output"


def write_run_outputs(
    run: PipelineRun,
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
    ``summary.md``, ``summary.json`` (those the run has material for).
    """
    from firegrid.reports import grid_summary_table, write_outputs

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
    return write_outputs(
        folder,
        layers=layers,
        grid_table=table,
        summary=run.summary(),
        map_html=html,
        excel=out_opts.excel,
        personal=out_opts.personal,
        allow=allow,
        force=force,
    )


def demo_config_path() -> Path:
    """The embedded demo district's config (``data/demo/demo.toml`` of the source tree)."""
    path = Path(__file__).resolve().parents[1] / "data" / "demo" / "demo.toml"
    if not path.exists():
        raise ConfigError(
            f"the demo district is not installed at {path.parent}: install FireGrid from a "
            "clone of its repository with pip install -e . (or run python data/make_demo.py)"
        )
    return path


__all__ = [
    "PLANS",
    "STEPS",
    "FireGridError",
    "PipelineRun",
    "access_step",
    "build_map",
    "default_output_folder",
    "demo_config_path",
    "load_step",
    "map_html",
    "network_step",
    "risk_step",
    "run_pipeline",
    "siting_step",
    "water_step",
    "write_run_outputs",
]
