"""The state of one run over one area: its inputs, the work shared by steps, each step's result.

A run reads the district and the street network once, compiles each vehicle profile once (the
network object keeps them, :meth:`firegrid.spatial.network.routing.GraphTable.memo`), snaps each
layer once per profile and assigns grid cells once. Each step takes the context and returns a
:class:`StepResult`; the context keeps one result per step, so running a step again replaces its
columns, layers, figures and headline lines instead of adding to them. Nothing here is
process-wide: two contexts in two threads do not share state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import geopandas as gpd
import pandas as pd

from firegrid.config import Config
from firegrid.spatial.io.district import District

# The order steps run in; a step's inputs come from those before it.
STEPS = ("load", "network", "access", "water", "risk", "siting")


@dataclass
class StepResult:
    """What one step produced.

    Attributes
    ----------
    columns : dict name -> DataFrame
        Columns the step adds to an input layer (``buildings``, ``hydrants``, ``grids`` …),
        indexed like that layer.
    layers : dict name -> GeoDataFrame
        Layers the step makes (``isochrones``, ``water_deficient``, ``sites`` …), in the
        district's working CRS (metres).
    tables : dict name -> DataFrame
        Tables without geometry (``water_by_grid``, ``siting_gain_curve`` …).
    figures : dict section -> dict
        Headline figures, JSON-ready, by summary section (``"access"``, ``"water"`` …).
    headline : list of str
        One-line headline figures for the console and ``summary.md``.
    notes : list of str
        What was skipped or degraded, and why.
    results : dict name -> object
        The analyses' own result objects (``access``: ``AccessResult``, ``water``:
        ``WaterResult``, ``hydrant_siting``: ``HydrantSiting`` …) for notebooks.
    seconds : float
        Wall time of the step.
    """

    columns: dict[str, pd.DataFrame] = field(default_factory=dict)
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    headline: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def add_columns(self, name: str, before: pd.DataFrame, after: pd.DataFrame) -> None:
        """Keep the columns of ``after`` that ``before`` (the same layer as input) lacks."""
        new = [c for c in after.columns if c not in before.columns]
        if not after.index.equals(before.index):
            raise ValueError(f"the {name} layer came back with other rows than it went in with")
        # The step's own arrays, not copies: a city's columns would otherwise be held twice
        # (copy-on-write keeps them apart should either frame change).
        self.columns[name] = pd.DataFrame({c: after[c] for c in new}, index=after.index,
                                          copy=False)  # fmt: skip


@dataclass
class RunContext:
    """One run over one area.

    Attributes
    ----------
    config : Config
    district : District or None
        Validated layers in the working CRS (metres); set by the load step.
    network : GraphTable or None
        The street network read once; compiled profiles and snaps are kept with it.
    cells : DataFrame or None
        Building -> grid cell at each level (:func:`firegrid.spatial.io.grids.assign_grids`),
        assigned once by the load step and read by every per-grid figure.
    steps : dict step -> StepResult
        The result of each step that ran, in :data:`STEPS` order.
    run_notes : list of str
        Notes of the run itself, before the steps' own.
    running : str or None
        The step running now, if any.
    """

    config: Config
    district: District | None = None
    network: Any = None
    cells: pd.DataFrame | None = None
    steps: dict[str, StepResult] = field(default_factory=dict)
    run_notes: list[str] = field(default_factory=list)
    running: str | None = None
    _composed: dict[str | None, dict[str, gpd.GeoDataFrame]] = field(
        default_factory=dict, repr=False
    )

    # ------------------------------------------------------------------ steps
    def record(self, step: str, result: StepResult) -> None:
        """Keep ``result`` as the step's result, replacing an earlier run of the step.

        The results of later steps are dropped: they were computed from the old one (the risk
        index from the old response times …), so they are run again, not kept stale.
        """
        after = STEPS.index(step)
        self.steps = {s: r for s, r in self.steps.items() if STEPS.index(s) < after}
        self.steps[step] = result
        self._composed.clear()

    @property
    def done(self) -> list[str]:
        return list(self.steps)

    @property
    def timings(self) -> dict[str, float]:
        return {s: r.seconds for s, r in self.steps.items()}

    @property
    def results(self) -> dict[str, Any]:
        """The analyses' own result objects (``access``, ``water``, ``risk`` …)."""
        return {k: v for r in self.steps.values() for k, v in r.results.items()}

    # ------------------------------------------------------------------ layers
    @property
    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Every layer as the steps leave it: input layers with each step's columns joined in
        step order, then the layers the steps made. While a step runs, only the steps before
        it count, so a step run again sees its inputs, not its own earlier output.

        The frames are shared with the steps' results: treat them as read-only (copy before
        changing one)."""
        key = self.running
        if key not in self._composed:
            before = STEPS.index(key) if key else len(STEPS)
            self._composed[key] = self._compose_layers(
                [r for s, r in self.steps.items() if STEPS.index(s) < before]
            )
        return dict(self._composed[key])

    def _compose_layers(self, results: list[StepResult]) -> dict[str, gpd.GeoDataFrame]:
        layers: dict[str, gpd.GeoDataFrame] = dict(self.district.layers) if self.district else {}
        for result in results:
            layers.update(result.layers)
        for result in results:
            for name, block in result.columns.items():
                base = layers[name]
                layers[name] = base.drop(columns=[c for c in block if c in base]).join(block)
        return layers

    @property
    def buildings(self) -> gpd.GeoDataFrame:
        return self.layers["buildings"]

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {k: v for r in self.steps.values() for k, v in r.tables.items()}

    # ------------------------------------------------------------------ figures
    @property
    def figures(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for result in self.steps.values():
            for section, values in result.figures.items():
                out.setdefault(section, {}).update(values)
        return out

    @property
    def headline(self) -> list[str]:
        return [line for r in self.steps.values() for line in r.headline]

    @property
    def notes(self) -> list[str]:
        out: list[str] = []
        for text in [*self.run_notes, *(n for r in self.steps.values() for n in r.notes)]:
            if text not in out:
                out.append(text)
        return out

    def summary(self) -> dict[str, Any]:
        """Headline figures, notes and timings of the run, JSON-ready (see firegrid.reports)."""
        district = self.district
        return {
            "district": self.config.name,
            "config": str(self.config.path),
            "as_of": district.as_of.isoformat() if district and district.as_of else None,
            "crs": district.crs.to_string() if district else None,
            "run_at": datetime.now().isoformat(timespec="seconds"),
            "steps": self.done,
            "figures": self.figures,
            "headline": self.headline,
            "notes": self.notes,
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
        }
