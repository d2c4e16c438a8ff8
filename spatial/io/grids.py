"""Which grid cell each building (or hydrant, water source …) lies in, at every grid level.

The hierarchy has as many levels as the user's grids: level 1 is the top (a subdistrict in a
district run; a city, district, subdistrict, community, cell in a five-level one), each cell
below it names its ``parent_id`` one level up, up to :data:`MAX_LEVELS`. Each feature is placed
in the finest grid cell that holds its representative point (a point guaranteed inside a
polygon; a point feature is its own). Its cells at coarser levels follow the ``parent_id``
chain, so a cell's members are exactly its child cells' members plus any features lying in it
but in no child cell (those are assigned to the coarser level directly by their point, and
counted). A point on an edge shared by two cells
goes to the smaller ``grid_id``. Every per-grid figure of access, water and risk uses this one
assignment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.crs import require_projected, require_same_crs
from firegrid.spatial.io.layers import clean_text
from firegrid.spatial.io.sources import locate, shown
from firegrid.spatial.params import params_from_mapping

# Deepest grid level (the column registry names grid_id_l1 … grid_id_l9): deeper than the
# country → province → city → district → subdistrict → community → cell chain needs.
MAX_LEVELS = 9


@dataclass(frozen=True)
class GridLevels:
    """The ``[grids]`` section: what each grid level is called.

    Attributes
    ----------
    level_names : tuple of str
        Names of the levels, level 1 (the top) first: ``["区", "街道", "社区", "网格"]``.
        Empty (the default): levels are called by number. When given, it names every level
        the grids layer holds (a grid of a deeper level is an error).
    """

    level_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [str(n).strip() for n in self.level_names]
        if len(names) > MAX_LEVELS:
            raise ConfigError(f"level_names names {len(names)} levels; at most {MAX_LEVELS}")
        if any(not n for n in names):
            raise ConfigError("level_names holds an empty name")
        if len(set(names)) != len(names):
            raise ConfigError(f"level_names names a level twice: {list(self.level_names)}")
        object.__setattr__(self, "level_names", tuple(names))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Self:
        """Build from the ``[grids]`` table; raises ConfigError naming an unknown or bad key."""
        return params_from_mapping(cls, d, section="grids")

    def name(self, level: int) -> str:
        """The name of ``level`` (1 = top): its configured name, else ``"level <n>"``."""
        if 1 <= level <= len(self.level_names):
            return self.level_names[level - 1]
        return f"level {level}"

    def level(self, name: str | int) -> int:
        """The level number of a configured level name (or of a level number itself)."""
        if isinstance(name, int) and not isinstance(name, bool) and 1 <= name <= MAX_LEVELS:
            return name
        if name in self.level_names:
            return self.level_names.index(name) + 1
        raise ConfigError(
            f"no grid level {name!r}; the levels are {list(self.level_names) or 'numbered'}"
        )

    def check(self, grids: gpd.GeoDataFrame) -> None:
        """InputError when the grids hold a level deeper than the configured names."""
        if not self.level_names:
            return
        levels = grid_levels(grids)
        deeper = np.flatnonzero((levels > len(self.level_names)).to_numpy())
        if len(deeper):
            first = int(deeper[0])
            raise InputError(
                f"a level-{levels.iloc[first]} cell, but [grids] level_names names "
                f"{len(self.level_names)} levels ({', '.join(self.level_names)}); "
                "name every level",
                **locate(grids, first, "level", layer="grids"),
            )


@dataclass
class AssignmentReport:
    """How features were placed in grid cells, per level.

    Attributes
    ----------
    unassigned : dict level → number of features in no cell of that level
    direct : dict level → features assigned by their own point because the finer level had
        no cell (or the cell's parent was missing)
    disagree : dict level → features whose parent-chain cell differs from the cell their point
        falls in (grid polygons and parent_id disagree; the chain wins)
    """

    unassigned: dict[int, int] = field(default_factory=dict)
    direct: dict[int, int] = field(default_factory=dict)
    disagree: dict[int, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = []
        for level in sorted(self.unassigned):
            if self.unassigned[level]:
                out.append(f"level {level}: {self.unassigned[level]} buildings in no grid cell")
            if self.direct.get(level):
                out.append(
                    f"level {level}: {self.direct[level]} buildings outside every finer cell, "
                    "assigned by their point"
                )
            if self.disagree.get(level):
                out.append(
                    f"level {level}: {self.disagree[level]} buildings whose cell's parent_id "
                    "differs from the cell their point lies in (parent_id used)"
                )
        return out


def grid_levels(grids: gpd.GeoDataFrame) -> pd.Series:
    """The ``level`` column of the grids layer as ints; InputError naming a cell whose level is
    missing or no whole number from 1 to :data:`MAX_LEVELS`."""
    if "level" not in grids:
        raise InputError("required column missing", file="grids layer", column="level")
    lv = pd.to_numeric(grids["level"], errors="coerce")
    bad = lv.isna() | (lv % 1 != 0) | (lv < 1) | (lv > MAX_LEVELS)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"level is no whole number from 1 to {MAX_LEVELS}: {shown(grids['level'].iloc[first])}",
            **locate(grids, first, "level", layer="grids"),
        )
    return lv.astype(int)


def assign_grids(
    features: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, *, what: str = "buildings"
) -> tuple[pd.DataFrame, AssignmentReport]:
    """The grid cell of each feature at every level present.

    Parameters
    ----------
    features : GeoDataFrame
        Buildings (polygons or points), hydrants, water sources …, projected CRS. Features
        without geometry lie in no cell.
    grids : GeoDataFrame
        The ``grids`` layer (``grid_id``, ``level``, optionally ``parent_id``), same CRS.
    what : str
        Name of the ``features`` layer in error messages.

    Returns
    -------
    cells : DataFrame
        Indexed like ``features``, one column ``grid_id_l<level>`` per level present, finest
        first (string dtype, <NA> where the feature lies in no cell of that level).
    report : AssignmentReport
    """
    require_projected(features, what)
    require_projected(grids, "grids")
    require_same_crs(features, grids, what, "grids")
    table = _grid_table(grids)
    positions, points = _feature_points(features)
    report = AssignmentReport()
    cells = pd.DataFrame(index=features.index)
    # Cells are handled as positions in ``grids`` (-1: none) and spelled out as ids once per
    # level: a city's buildings are millions of rows and grid cells a few thousand.
    finer: np.ndarray | None = None
    for level in sorted(table.levels.unique(), reverse=True):
        direct = _cells_holding(positions, points, grids, table, level, len(features))
        if finer is None:  # the finest level: every feature by its own point
            chosen = direct
            report.direct[level] = report.disagree[level] = 0
        else:
            chosen = _up_the_chain(finer, direct, table, level, report)
        report.unassigned[level] = int((chosen < 0).sum())
        cells[f"grid_id_l{level}"] = table.ids.array.take(chosen, allow_fill=True)
        finer = chosen
    return cells, report


@dataclass(frozen=True)
class _GridTable:
    """Each grid cell's id, level and parent, as read from the grids layer (row for row)."""

    ids: pd.Series
    levels: pd.Series
    parents: pd.Series  # parent_id, <NA> where none

    def parent_positions(self) -> np.ndarray:
        """Each cell's parent as a position in the grids layer; -1 where it names none.

        Looked up by id, as ``parent_id`` names it (grid ids must be unique for that).
        """
        found = pd.Index(self.ids.to_numpy()).get_indexer(self.parents.to_numpy())
        return np.where(self.parents.isna().to_numpy(), -1, found)


def _grid_table(grids: gpd.GeoDataFrame) -> _GridTable:
    levels = grid_levels(grids)
    if "grid_id" not in grids:
        raise InputError("required column missing", file="grids layer", column="grid_id")
    ids = clean_text(grids["grid_id"])
    parents = (
        clean_text(grids["parent_id"])
        if "parent_id" in grids
        else pd.Series(pd.NA, index=grids.index, dtype="string")
    )
    return _GridTable(ids, levels, parents)


def _feature_points(features: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The positions in ``features`` of the features with a geometry, and a point inside each."""
    geoms = np.asarray(features.geometry.values, dtype=object)
    valid = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    return np.flatnonzero(valid), surface_points(geoms[valid])


def surface_points(geoms: np.ndarray) -> np.ndarray:
    """A point on each geometry: ``shapely.point_on_surface``, but points (most buildings of
    a city-size layer) are taken as they are instead of going through GEOS (same points).

    Parameters
    ----------
    geoms : array-like of shapely geometries (any CRS; missing stay missing)

    Returns
    -------
    numpy.ndarray of shapely Points, in the geometries' CRS
    """
    geoms = np.asarray(geoms, dtype=object)
    out = geoms.copy()
    other = shapely.get_type_id(geoms) != 0
    out[other] = shapely.point_on_surface(geoms[other])
    return out


def _cells_holding(
    positions: np.ndarray,
    points: np.ndarray,
    grids: gpd.GeoDataFrame,
    table: _GridTable,
    level: int,
    n: int,
) -> np.ndarray:
    """The cell of ``level`` (a position in ``grids``) each feature's point lies in, for the
    features at ``positions`` of ``n``; -1 where in none."""
    at_level = np.flatnonzero((table.levels == level).to_numpy())
    cells = np.asarray(grids.geometry.values, dtype=object)[at_level]
    point, cell = _intersecting(points, cells)
    first = np.ones(len(point), dtype=bool)
    # Hits come point by point; a point on a shared edge touches two cells: keep the smaller
    # id, deterministically (nothing to sort when every point lies in one cell at most).
    if len(point) > 1 and not bool((point[1:] > point[:-1]).all()):
        ids = table.ids.iloc[at_level].reset_index(drop=True)
        rank = np.empty(len(ids), dtype=np.int64)
        by_id = ids.sort_values(na_position="last", kind="stable").index.to_numpy()
        rank[by_id] = np.arange(len(ids))
        order = np.lexsort((rank[cell], point))
        point, cell = point[order], cell[order]
        first[1:] = point[1:] != point[:-1]
    direct = np.full(n, -1, dtype=np.int64)
    direct[positions[point[first]]] = at_level[cell[first]]
    # A cell without an id names nothing a feature could belong to.
    unnamed = table.ids.isna().to_numpy()
    direct[(direct >= 0) & unnamed[np.maximum(direct, 0)]] = -1
    return direct


def _intersecting(points: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``STRtree(cells).query(points, predicate="intersects")``, the same pairs in the same
    order, about three times faster for millions of points.

    The tree gives the pairs whose boxes meet; each is then tested with the cell prepared
    (intersects is symmetric and exact for a point), where the tree's own predicate would
    prepare every point it tests.
    """
    point, cell = shapely.STRtree(cells).query(points)
    # Copies: preparing the grids layer's own geometries would change the caller's objects.
    prepared = shapely.from_wkb(shapely.to_wkb(cells))
    shapely.prepare(prepared)
    hit = shapely.intersects(prepared[cell], points[point])
    return point[hit], cell[hit]


def _up_the_chain(
    finer: np.ndarray,
    direct: np.ndarray,
    table: _GridTable,
    level: int,
    report: AssignmentReport,
) -> np.ndarray:
    """The parent at ``level`` of each feature's finer cell, else the cell its point lies in;
    counts both cases in ``report`` (cells as positions in the grids layer, -1 for none)."""
    parent = table.parent_positions()
    up = np.where(finer >= 0, parent[np.maximum(finer, 0)], -1)
    levels = table.levels.to_numpy()
    up = np.where((up >= 0) & (levels[np.maximum(up, 0)] == level), up, -1)
    report.direct[level] = int(((up < 0) & (direct >= 0)).sum())
    report.disagree[level] = int(((up >= 0) & (direct >= 0) & (up != direct)).sum())
    return np.where(up >= 0, up, direct)


def aggregate_by_grid(
    cells: pd.DataFrame,
    values: pd.DataFrame,
    how: str | dict[str, str] = "sum",
    *,
    grid_ids: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """Aggregate per-feature ``values`` into every cell of every level.

    Parameters
    ----------
    cells : DataFrame
        :func:`assign_grids` result for the same features (same row order).
    values : DataFrame
        One row per feature.
    how : str or dict column → str
        A pandas groupby reduction (``"sum"``, ``"mean"``, ``"max"``, ``"count"`` …), or one
        per column.
    grid_ids : array-like, optional
        Reindex the result on these grid ids (cells without members get NaN).

    Returns
    -------
    DataFrame
        Indexed by ``grid_id``, the columns of ``values`` reduced over each cell's members.
    """
    parts = []
    for col in cells.columns:
        if str(col).startswith("grid_id_l"):
            key = cells[col].astype(object).to_numpy()
            parts.append(values.groupby(key, dropna=True).agg(how))
    out = pd.concat(parts) if parts else pd.DataFrame(columns=values.columns, dtype=float)
    out = out[~out.index.duplicated()]
    if grid_ids is not None:
        out = out.reindex(pd.Index(clean_text(pd.Series(grid_ids)).astype(object).to_numpy()))
    return out
