"""The steps of a run: each takes the :class:`~firegrid.context.RunContext` and returns a
:class:`~firegrid.context.StepResult` (columns, layers, tables, figures, headline, notes).

A step whose input is absent (no road network, no hydrant layer …) is skipped or degraded with
a note saying what is missing and what the outputs therefore lack — results are never invented.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import pandas as pd

from firegrid.config import district_from_config
from firegrid.context import RunContext, StepResult
from firegrid.risk.grading import GRADE_LABELS
from firegrid.risk.params import FACTORS
from firegrid.spatial.access.analysis import analyse_access
from firegrid.spatial.errors import ConfigError
from firegrid.spatial.io.grids import GridLevels, assign_grids
from firegrid.spatial.network.load import read_network, require_near
from firegrid.spatial.siting.hydrants import propose_hydrants
from firegrid.spatial.siting.stations import site_micro_stations
from firegrid.spatial.water.coverage import analyse_water
from firegrid.wording import minutes, percent, share

NO_NETWORK = (
    "no road network: the config has no [network] source, so response times, isochrones, "
    "water coverage along streets and siting were not computed"
)


def _value_counts(series: pd.Series, key=str) -> dict:
    return {key(k): int(v) for k, v in series.value_counts().sort_index().items()}


# ------------------------------------------------------------------------------------ load
def load_step(ctx: RunContext) -> StepResult:
    """Read and validate every layer, assign buildings to grid cells once."""
    out = StepResult()
    district, report = district_from_config(ctx.config)
    report.raise_if_errors()
    for warning in report.warnings:
        out.note(f"validation: {warning}")
    ctx.district = district
    ctx.cells = district.cells
    if ctx.cells is None:
        ctx.cells, _ = assign_grids(district.layers["buildings"], district.layers["grids"])
    out.figures["district"] = _district_figures(district, ctx.config.params["grids"])
    return out


def _level_names(grids: pd.DataFrame, levels: GridLevels) -> dict[int, str] | None:
    """Level → configured name of each level the grids hold (None without ``[grids]``)."""
    if not levels.level_names:
        return None
    return {int(k): levels.name(int(k)) for k in sorted(grids["level"].dropna().unique())}


def _district_figures(district, levels: GridLevels) -> dict[str, Any]:
    b = district.layers["buildings"]
    figures: dict[str, Any] = {
        "buildings": len(b),
        "residents": int(pd.to_numeric(b["residents"], errors="coerce").sum())
        if "residents" in b
        else None,
        "grids_by_level": _value_counts(district.layers["grids"]["level"], int),
        "stations": _value_counts(district.layers["stations"]["kind"]),
    }
    names = _level_names(district.layers["grids"], levels)
    if names:
        figures["grid_levels"] = names
    if district.has("hydrants"):
        figures["hydrants"] = _value_counts(district.layers["hydrants"]["status"])
    for name in ("water_sources", "hazards", "incidents"):
        if district.has(name):
            figures[name] = len(district.layers[name])
    return figures


# --------------------------------------------------------------------------------- network
def network_step(ctx: RunContext) -> StepResult:
    """Read the street network once (OSM PBF/XML, GraphML or a place name), working CRS."""
    out = StepResult()
    source = ctx.config.network_source
    if source is None:
        out.note(NO_NETWORK)
        return out
    ctx.network = read_network(source, crs=ctx.district.crs)
    require_near(ctx.network, ctx.district.layers.get("grids"), source=source)
    roads = ctx.network.roads_layer()
    out.layers["roads"] = roads
    out.figures["district"] = {"road_km": round(float(roads["length_m"].sum()) / 1000.0, 1)}
    cut = ctx.network.stats.get("ways_cut_at_edge", 0)
    if cut:
        out.note(
            f"road network: {cut:,} ways are cut at the edge of the extract; buildings near "
            "the edge may be reachable only from outside it (firegrid validate counts them)"
        )
    return out


# ---------------------------------------------------------------------------------- access
def access_step(ctx: RunContext) -> StepResult:
    """Travel times from every station to every building, coverage, isochrones, areas."""
    out = StepResult()
    if ctx.network is None:
        return out
    params = ctx.config.params["access"]
    before = ctx.buildings
    result = analyse_access(
        ctx.network,
        before,
        ctx.layers["stations"],
        params=params,
        grids=ctx.layers.get("grids"),
        cells=ctx.cells,
    )
    out.results["access"] = result
    out.add_columns("buildings", before, result.buildings)
    for name, layer in (
        ("isochrones", result.isochrones),
        ("areas", result.areas),
        ("access_missing", result.missing),
    ):
        if layer is not None and len(layer):
            out.layers[name] = layer
    if result.grid_summary is not None:
        out.tables["access_by_grid"] = pd.DataFrame(result.grid_summary).drop(
            columns="geometry", errors="ignore"
        )
    _access_figures(out, result.buildings, params)
    return out


def _access_figures(out: StepResult, b: gpd.GeoDataFrame, params) -> None:
    n = len(b)
    figures: dict[str, Any] = {
        "target_micro_s": params.target_micro_s,
        "target_fire_s": params.target_fire_s,
    }
    for col in ("covered_3min", "covered_5min"):
        if col in b:
            k = int(b[col].fillna(False).astype(bool).sum())
            figures[f"buildings_{col}"] = k
            figures[f"share_{col}"] = share(k, n)
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
    out.figures["access"] = figures
    out.headline.extend(coverage_headline(figures, params, n))


def coverage_headline(figures: Mapping[str, Any], params, n: int) -> list[str]:
    """The headline lines of 3- and 5-minute coverage, from the access figures
    (``buildings_covered_3min`` …) of ``n`` buildings; ``params`` gives the targets (s)."""
    lines = []
    for col, what in (
        ("covered_3min", f"{minutes(params.target_micro_s)} micro-station"),
        ("covered_5min", f"{minutes(params.target_fire_s)} fire-station"),
    ):
        if f"buildings_{col}" in figures:
            lines.append(
                f"{what} coverage: {figures[f'buildings_{col}']:,} of {n:,} "
                f"buildings ({percent(figures[f'share_{col}'])})"
            )
    return lines


# ----------------------------------------------------------------------------------- water
def water_step(ctx: RunContext) -> StepResult:
    """Hydrant and water-source coverage along streets, water-deficient zones, new hydrants."""
    out = StepResult()
    if ctx.network is None:
        return out
    d = ctx.district
    if not d.has("hydrants") and not d.has("water_sources"):
        out.note(
            "no hydrants or water sources layer: every building counts as water-deficient "
            "(no fire water within reach is on record)"
        )
    params = ctx.config.params["water"]
    before = ctx.buildings
    result = analyse_water(
        ctx.network,
        before,
        hydrants=ctx.layers.get("hydrants"),
        water_sources=ctx.layers.get("water_sources"),
        grids=ctx.layers.get("grids"),
        cells=ctx.cells,
        params=params,
    )
    proposed, siting = propose_hydrants(ctx.network, result.buildings, params=params)
    out.results.update(water=result, hydrant_siting=siting)
    out.add_columns("buildings", before, result.buildings)
    for name in ("hydrants", "water_sources"):
        layer = getattr(result, name)
        if layer is not None:
            out.add_columns(name, ctx.layers[name], layer)
    for name, layer in (
        ("water_deficient", result.zones),
        ("hydrant_gaps", result.gaps),
        ("proposed_hydrants", proposed),
    ):
        if len(layer):
            out.layers[name] = layer
    if result.grid_summary is not None:
        out.tables["water_by_grid"] = result.grid_summary
    figures = {
        "hydrant_radius_m": params.hydrant_radius_m,
        **result.headline(),
        **siting.figures(),
    }
    out.figures["water"] = figures
    out.headline.append(water_headline(figures))
    out.headline.append(
        f"new hydrants needed to cover every coverable deficient building: "
        f"{figures['new_hydrants_needed']}"
    )
    return out


# ------------------------------------------------------------------------------------ risk
def risk_step(ctx: RunContext) -> StepResult:
    """Risk index, grades, hazard ledger, fire model (with incidents) and grid roll-up."""
    # Imported here: the fire model needs scikit-learn, which the access and water commands
    # should not pay for (seconds at start-up).
    from firegrid.risk.score import score_district

    out = StepResult()
    require_as_of(ctx.config, ["risk"])
    before = ctx.buildings
    result = score_district(
        before,
        ctx.layers.get("grids"),
        ctx.layers.get("hazards"),
        ctx.layers.get("incidents"),
        as_of=ctx.district.as_of,
        params=ctx.config.params["risk"],
        cells=ctx.cells,
    )
    out.results["risk"] = result
    out.add_columns("buildings", before, result.buildings)
    if result.grids is not None:
        out.add_columns("grids", ctx.layers["grids"], result.grids)
    if result.hazards is not None:
        out.add_columns("hazards", ctx.layers["hazards"], result.hazards)
    if result.escalation is not None and len(result.escalation):
        out.tables["hazard_escalation"] = result.escalation
    if result.evaluation is None and result.model_note:
        out.note(f"fire model: {result.model_note}")
    out.figures["risk"] = figures = _risk_figures(result)
    missing = [f for f in FACTORS if f not in figures["factors_assessed"]]
    if missing:
        out.note(
            "risk factors not assessed (no input for them; left out of the index): "
            + ", ".join(missing)
        )
    _risk_headline(out, figures)
    return out


def _risk_figures(result) -> dict[str, Any]:
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
        for key in ("auc", "roc_auc", "brier"):
            if hasattr(result.evaluation, key):
                figures[f"model_{key}"] = float(getattr(result.evaluation, key))
    if result.grids is not None and "risk_index_mean" in result.grids:
        g = result.grids
        finest = g[g["level"] == g["level"].max()].dropna(subset=["risk_index_mean"])
        top = finest.nlargest(3, "risk_index_mean")
        figures["highest_risk_grids"] = {
            str(r.grid_id): round(float(r.risk_index_mean), 1) for r in top.itertuples()
        }
    return figures


def _risk_headline(out: StepResult, figures: dict[str, Any]) -> None:
    out.headline.append(
        "risk grades (buildings): "
        + " · ".join(f"{g} {GRADE_LABELS[g]} {n:,}" for g, n in figures["grades"].items())
        + f"; index mean {figures['risk_index_mean']:.1f}, max {figures['risk_index_max']:.1f}"
    )
    if "hazards_open" in figures:
        out.headline.append(
            f"hazards unrectified: {figures['hazards_open']:,} (of which overdue "
            f"{figures['hazards_overdue']:,})"
        )


def require_as_of(config, steps) -> None:
    """Stop before any analysis when the risk step will run without ``[district] as_of``."""
    if "risk" in steps and config.as_of is None:
        raise ConfigError(
            f"{config.path}: [district] as_of is needed for the risk step "
            '(the date hazard deadlines are judged against), e.g. as_of = "2026-06-30"'
        )


# ---------------------------------------------------------------------------------- siting
def siting_step(ctx: RunContext) -> StepResult:
    """Where new micro-stations add the most 3-minute coverage (maximal coverage, gain curve)."""
    out = StepResult()
    if ctx.network is None:
        return out
    params = ctx.config.params["siting"]
    buildings = ctx.buildings
    if params.weight and params.weight not in buildings:
        raise ConfigError(
            f"[siting] weight = {params.weight!r} is not a building column "
            "(risk_index needs the risk step)"
        )
    if "t_micro_s" not in buildings:
        out.note(
            "siting counted existing micro-station coverage itself (the access step did not run)"
        )
    result = site_micro_stations(
        ctx.network,
        buildings,
        ctx.layers.get("stations"),
        params=params,
        access=ctx.config.params["access"],
    )
    out.results["siting"] = result
    out.add_columns("buildings", buildings, result.buildings)
    if len(result.sites):
        out.layers["sites"] = result.sites
    if result.curve is not None and len(result.curve):
        out.tables["siting_gain_curve"] = result.curve
    out.figures["siting"] = figures = result.summary()
    n = figures["buildings"]
    out.headline.append(
        f"{figures['new_sites']} new micro-station site(s) proposed: "
        f"{minutes(ctx.config.params['access'].target_micro_s)} coverage "
        f"{percent(share(figures['covered_before'], n))} → "
        f"{percent(share(figures['covered_after'], n))}"
        + (
            f"; {figures['min_count']} would reach every reachable building"
            if "min_count" in figures
            else ""
        )
    )
    return out


STEP_FUNCTIONS = {
    "load": load_step,
    "network": network_step,
    "access": access_step,
    "water": water_step,
    "risk": risk_step,
    "siting": siting_step,
}


def water_headline(figures: Mapping[str, Any]) -> str:
    """The headline line of water-deficient buildings, from the water figures."""
    return (
        f"water-deficient buildings (no working hydrant or source within "
        f"{figures['hydrant_radius_m']:g} m along streets): {figures['water_deficient']:,} "
        f"({percent(figures['share_water_deficient'])}) in {figures['deficient_zones']} zone(s)"
    )
