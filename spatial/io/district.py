"""The district container: validated layers in one metric CRS, plus the road-network source."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from firegrid.spatial.errors import ConfigError, FireGridError, InputError
from firegrid.spatial.io.crs import (
    WGS84,
    CoordSystem,
    parse_coord_system,
    point_xy,
    project,
    project_xy,
    to_wgs84,
    with_points,
    working_crs_for,
)
from firegrid.spatial.io.grids import assign_grids
from firegrid.spatial.io.layers import LAYER_NAMES, SCHEMAS
from firegrid.spatial.io.readers import read_layer
from firegrid.spatial.io.sources import LayerSource, attach_source
from firegrid.spatial.io.validate import (
    ValidationReport,
    check_alignment,
    check_coordinates_range,
    check_extent,
    check_grid_coverage,
    check_grid_hierarchy,
    check_grid_overlaps,
    check_references,
    coerce_layer,
)
from firegrid.spatial.runtime import collector_paused

META_TABLE = "firegrid_meta"


@dataclass(frozen=True)
class LayerSpec:
    """How to read one layer: the file, and how its contents map onto the data model.

    ``file`` is a path, or a database URL (``postgresql://…``) kept as written; ``layer`` is
    then the table (``schema.table``), otherwise a GeoPackage layer or an Excel sheet. An
    analyst's GeoDataFrame may stand in for the file (:meth:`District.from_layers`).
    """

    file: Path | str | gpd.GeoDataFrame
    layer: str | None = None
    crs: str | None = None
    lon: str | None = None
    lat: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass
class District:
    """A subdistrict: its layers (GeoDataFrames in ``crs``, metres) and road-network source.

    ``network_source`` is a path (OSM XML/PBF, GraphML), a place name, or an osmnx graph
    (``networkx.MultiDiGraph``) given to :meth:`from_layers`; ``as_of`` is the date
    the analysis speaks for (hazard deadlines are judged against it); ``cells`` is each
    building's grid cell at every level (:func:`firegrid.spatial.io.grids.assign_grids`),
    assigned once when the district is loaded.
    """

    name: str
    crs: pyproj.CRS
    layers: dict[str, gpd.GeoDataFrame]
    network_source: Any = None
    as_of: date | None = None
    cells: pd.DataFrame | None = None
    report: ValidationReport | None = field(default=None, repr=False, compare=False)

    def __getattr__(self, item: str) -> gpd.GeoDataFrame:
        layers = self.__dict__.get("layers", {})
        if item in LAYER_NAMES:
            if item not in layers:
                raise AttributeError(f"the district has no {item} layer")
            return layers[item]
        raise AttributeError(item)

    def has(self, name: str) -> bool:
        return name in self.layers and len(self.layers[name]) > 0

    @property
    def boundary(self) -> shapely.Geometry:
        """The district outline in ``crs``: the union of its level-1 grids (all grids if none)."""
        grids = self.layers["grids"]
        top = grids[grids["level"] == grids["level"].min()]
        return shapely.union_all(top.geometry.values)

    def to_gpkg(self, path: str | Path) -> Path:
        """Save every layer and the district's metadata into one GeoPackage, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".gpkg", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
        try:
            for name, gdf in self.layers.items():
                gdf.to_file(tmp, layer=name, driver="GPKG")
            meta = {
                "name": self.name,
                "crs": self.crs.to_wkt(),
                # An in-memory graph is not saved; save it with save_network and name the file.
                "network_source": self.network_source
                if isinstance(self.network_source, str)
                else None,
                "as_of": self.as_of.isoformat() if self.as_of else None,
                "dtypes": {
                    n: {c: str(t) for c, t in g.dtypes.items()} for n, g in self.layers.items()
                },
            }
            with sqlite3.connect(tmp) as con:
                con.execute(f"CREATE TABLE {META_TABLE} (key TEXT PRIMARY KEY, value TEXT)")
                con.executemany(
                    f"INSERT INTO {META_TABLE} VALUES (?, ?)",
                    [(k, json.dumps(v)) for k, v in meta.items()],
                )
            con.close()
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def from_gpkg(cls, path: str | Path) -> District:
        """Load a district saved with :meth:`to_gpkg`, restoring column dtypes."""
        path = Path(path)
        if not path.exists():
            raise InputError("file not found", file=str(path))
        try:
            con = sqlite3.connect(path)
            meta = {
                k: json.loads(v) for k, v in con.execute(f"SELECT key, value FROM {META_TABLE}")
            }
            con.close()
        except sqlite3.Error as exc:
            raise InputError(f"not a FireGrid district GeoPackage ({exc})", file=str(path)) from exc
        layers = {}
        for name, dtypes in meta["dtypes"].items():
            gdf = gpd.read_file(path, layer=name)
            for col, dtype in dtypes.items():
                if col in gdf.columns and col != gdf.geometry.name and str(gdf[col].dtype) != dtype:
                    gdf[col] = (
                        gdf[col].astype(dtype)
                        if not dtype.startswith("datetime")
                        else pd.to_datetime(gdf[col]).astype(dtype)
                    )
            layers[name] = gdf
        as_of = date.fromisoformat(meta["as_of"]) if meta.get("as_of") else None
        return cls(
            meta["name"],
            pyproj.CRS.from_wkt(meta["crs"]),
            layers,
            meta.get("network_source"),
            as_of,
        )

    def with_layers(self, **layers: gpd.GeoDataFrame) -> District:
        """A copy with some layers replaced or added, for a what-if (a station added, a
        turnout shortened, a hydrant repaired); the others are shared, not copied.

        The new layers may be in any CRS; :func:`firegrid.run` validates every layer again.
        """
        unknown = [n for n in layers if n not in SCHEMAS]
        if unknown:
            raise ConfigError(f"unknown layer(s) {unknown}; layers are {list(LAYER_NAMES)}")
        return replace(self, layers={**self.layers, **layers}, cells=None, report=None)

    @classmethod
    def from_layers(
        cls,
        *,
        grids: LayerInput,
        buildings: LayerInput,
        stations: LayerInput,
        network: Any = None,
        crs: str | int | pyproj.CRS | None = None,
        as_of: date | str | None = None,
        name: str = "district",
        **options: Any,
    ) -> District:
        """A district from an analyst's GeoDataFrames, validated as a config's files are.

        Each layer goes through the readers and checks of :func:`load_district` (the same
        canonical columns, Chinese header and value mapping, coordinate systems and messages);
        the first error is raised, the warnings are in ``district.report``.

        Parameters
        ----------
        grids, buildings, stations
            The required layers: GeoDataFrames in any CRS (or layer file paths).
        network
            The road network: an osmnx graph (``networkx.MultiDiGraph``, any CRS osmnx
            projects), an OSM ``.pbf``/``.osm`` or ``.graphml`` file path, or a place name
            (downloaded; needs internet). None: no travel times.
        crs
            Working CRS (projected, metres); default: the UTM zone of the district.
        as_of
            The date the analysis speaks for (``"2026-06-30"``); the risk step needs it.
        name
            The district's name in outputs.
        **options
            The optional layers ``hydrants``, ``water_sources``, ``hazards``, ``incidents``
            (GeoDataFrames or paths), and per layer what a config's ``[layers.NAME]`` table
            says: ``layer_crs={"hydrants": "GCJ-02"}`` (the system the coordinates are really
            in, overriding the frame's own CRS: GCJ-02 and BD-09 points are stored as
            EPSG:4326 by most tools), ``columns={"hydrants": {"编号": "hydrant_id"}}``
            (user header → canonical column) and ``values={"hydrants": {"status": {"好":
            "ok"}}}`` (user value → canonical choice; common Chinese values are known
            already).

        Raises
        ------
        InputError
            The first validation error, naming the layer, the row and the user's header.
        ConfigError
            An unknown layer or option, a required layer missing, a bad coordinate system.
        """
        specs = _layer_specs(dict(grids=grids, buildings=buildings, stations=stations), options)
        if isinstance(as_of, str):
            as_of = _as_of(as_of)
        district, report = load_district(
            specs, name=name, crs=crs, network_source=_network(network), as_of=as_of
        )
        report.raise_if_errors()
        district.report = report
        return district


LayerInput = gpd.GeoDataFrame | str | Path
LAYER_OPTIONS = ("layer_crs", "columns", "values")


def _layer_specs(required: dict[str, Any], options: dict[str, Any]) -> dict[str, LayerSpec]:
    """One :class:`LayerSpec` per layer given to :meth:`District.from_layers`."""
    extra = {k: v for k, v in options.items() if k not in LAYER_OPTIONS}
    unknown = [k for k in extra if k not in SCHEMAS]
    if unknown:
        raise ConfigError(
            f"District.from_layers: unknown argument(s) {unknown}; layers are "
            f"{list(LAYER_NAMES)}, per-layer options {list(LAYER_OPTIONS)}"
        )
    frames = {k: v for k, v in {**required, **extra}.items() if v is not None}
    per_layer = {}
    for option in LAYER_OPTIONS:
        table = options.get(option) or {}
        stray = [k for k in table if k not in frames]
        if stray:
            raise ConfigError(
                f"District.from_layers: {option} names layer(s) {stray} that were not given; "
                f"layers given: {list(frames)}"
            )
        per_layer[option] = table
    specs = {}
    for layer_name, frame in frames.items():
        if not isinstance(frame, gpd.GeoDataFrame | str | Path):
            raise ConfigError(
                f"District.from_layers: {layer_name} must be a GeoDataFrame or a file path, "
                f"not {type(frame).__name__} (make points with geopandas.points_from_xy)"
            )
        crs = per_layer["layer_crs"].get(layer_name)
        if crs is not None:
            parse_coord_system(crs)  # a bad name stops here, with the list of known systems
        specs[layer_name] = LayerSpec(
            file=frame if isinstance(frame, gpd.GeoDataFrame) else Path(frame),
            crs=crs,
            columns=dict(per_layer["columns"].get(layer_name, {})),
            values={k: dict(v) for k, v in per_layer["values"].get(layer_name, {}).items()},
        )
    return specs


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"as_of must be a date like 2026-06-30, not {text!r}") from exc


# A network given by one of these names is a file, never a place name to download.
NETWORK_FILE_SUFFIXES = (".pbf", ".osm", ".xml", ".bz2", ".gz", ".graphml")


def _network(network: Any) -> Any:
    """A path as text (made absolute), a graph or place name as given."""
    if isinstance(network, Path) or (
        isinstance(network, str) and network.lower().endswith(NETWORK_FILE_SUFFIXES)
    ):
        path = Path(network).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"{path}: road network file not found")
        return str(path)
    return network


def _coord_system(spec: LayerSpec, raw: gpd.GeoDataFrame) -> CoordSystem:
    """The layer's coordinate system: the config's ``crs``, else the file's own, else the default."""
    if spec.crs:
        return parse_coord_system(spec.crs)
    if raw.crs is not None:
        return CoordSystem(raw.crs.to_string(), raw.crs)
    return parse_coord_system(None)


def load_district(
    specs: Mapping[str, LayerSpec],
    *,
    name: str = "district",
    crs: str | pyproj.CRS | None = None,
    network_source: str | None = None,
    as_of: date | None = None,
) -> tuple[District, ValidationReport]:
    """Read, validate and project every layer of a district.

    Parameters
    ----------
    specs
        Layer name → :class:`LayerSpec`. ``grids``, ``buildings`` and ``stations`` are required.
    crs
        Working metric CRS; default: the UTM zone of the district.

    Returns
    -------
    The district (layers in the working CRS, canonical dtypes) and the validation report.
    Layers with errors are left out of the district; check ``report.ok``.
    """
    _check_specs(specs)
    # Millions of geometries are made here (read, projected): see collector_paused.
    with collector_paused():
        report = ValidationReport()
        read = _read_layers(specs, report)
        if "grids" not in read:
            return District(name, pyproj.CRS.from_epsg(3857), {}, network_source, as_of), report
        work = _working_crs(crs, read["grids"].gdf)
        # Projected once: the extent check reuses these points instead of projecting them again.
        projected = {
            n: _project_layer(read, n, work) for n in list(read) if not report.has_error(layer=n)
        }
        _check_placement(read, work, report, projected=projected)
        # Layers with errors were checked as far as they could be, but are not in the district.
        layers = {n: g for n, g in projected.items() if not report.has_error(layer=n)}
        sources = {n: r.source for n, r in read.items()}
        cells = _check_between_layers(layers, sources, report)
        # Analyses expect a plain 0..n-1 index; the source keeps the way back to the file's rows.
        layers = {n: attach_source(g, sources[n]) for n, g in layers.items()}
        if cells is not None:
            cells = cells.set_axis(layers["buildings"].index)
        return District(name, work, layers, network_source, as_of, cells), report


@dataclass(frozen=True)
class _ReadLayer:
    """One layer read and checked on its own, in WGS84.

    ``lonlat`` holds the coordinates of a points layer whose WGS84 points were let go once
    projected (:func:`_project_layer`); ``gdf`` then has no geometries, only its rows.
    """

    gdf: gpd.GeoDataFrame
    source: LayerSource
    system: CoordSystem
    lonlat: tuple[np.ndarray, np.ndarray] | None = None


# Layers whose WGS84 points the placement checks read again (check_alignment).
ALIGNED_LAYERS = ("hazards", "incidents")


def _project_layer(read: dict[str, _ReadLayer], name: str, work: pyproj.CRS) -> gpd.GeoDataFrame:
    """``project(read[name].gdf, work)``; a layer of plain points is made from its
    coordinates after its WGS84 points are let go (``read[name]`` keeps the coordinates).

    A city's buildings as points are millions of geometries: made while the WGS84 ones still
    lived, the projected ones took fresh memory (about 1 GiB and 0.5 s of page faults for
    5 M points); made after, they reuse it.
    """
    r = read[name]
    lonlat = None
    if name not in ALIGNED_LAYERS and not r.gdf.crs.is_exact_same(work):
        lonlat = point_xy(r.gdf.geometry)
    if lonlat is None:
        return project(r.gdf, work)
    x, y = project_xy(*lonlat, r.gdf.crs, work)
    column = r.gdf.geometry.name
    missing = gpd.GeoSeries(np.full(len(r.gdf), None), index=r.gdf.index, crs=r.gdf.crs)
    rows = r.gdf.set_geometry(missing.rename(column))
    read[name] = replace(r, gdf=rows, lonlat=lonlat)
    del r  # the last reference to the WGS84 points: they are freed here
    return with_points(rows, x, y, work)


def _check_specs(specs: Mapping[str, LayerSpec]) -> None:
    unknown = [n for n in specs if n not in SCHEMAS]
    if unknown:
        raise ConfigError(f"unknown layer(s) {unknown}; layers are {list(LAYER_NAMES)}")
    missing = [n for n, s in SCHEMAS.items() if s.required_layer and n not in specs]
    if missing:
        raise ConfigError(f"the config must name a file for layer(s) {missing}")


def _read_layers(specs: Mapping[str, LayerSpec], report: ValidationReport) -> dict[str, _ReadLayer]:
    """Every layer whose geometries could be placed, in WGS84; findings go to ``report``."""
    read = {}
    for layer_name, spec in specs.items():
        # A layer's error never stops the others: validate reports every problem in one pass.
        try:
            layer = _read_layer(spec, layer_name, report)
        except FireGridError as exc:
            report.add("error", str(exc), layer_name)
            continue
        if layer is not None:
            read[layer_name] = _ReadLayer(*layer)
    return read


def _working_crs(crs: str | pyproj.CRS | None, grids: gpd.GeoDataFrame) -> pyproj.CRS:
    work = parse_coord_system(crs).crs if crs else working_crs_for(grids)
    if not work.is_projected:
        raise ConfigError(f"the working crs {work.to_string()} is not projected (metres)")
    return work


def _check_placement(
    read: Mapping[str, _ReadLayer],
    work: pyproj.CRS,
    report: ValidationReport,
    *,
    projected: Mapping[str, gpd.GeoDataFrame],
) -> None:
    """Each layer lies in the district, and hazard and incident points on their buildings.

    ``projected`` holds the layers already in ``work`` (those without errors so far).
    """
    boundary = shapely.union_all(read["grids"].gdf.geometry.values)
    for layer_name, r in read.items():
        if layer_name != "grids":
            in_work = projected.get(layer_name)
            report.extend(
                check_extent(
                    r.gdf,
                    SCHEMAS[layer_name],
                    r.source,
                    boundary,
                    work,
                    declared_offset=r.system.offset,
                    projected=None if in_work is None else in_work.geometry,
                    coordinates=r.lonlat,
                )
            )
    if "buildings" not in read:
        return
    buildings = read["buildings"]
    # The footprints in the working CRS, projected once for the district when they could be.
    footprints = projected.get("buildings", buildings.gdf)
    for layer_name in ("hazards", "incidents"):
        if layer_name in read:
            points = read[layer_name]
            report.extend(
                check_alignment(
                    points.gdf,
                    footprints,
                    work,
                    schema=SCHEMAS[layer_name],
                    source=points.source,
                    points_offset=points.system.offset,
                    buildings_offset=buildings.system.offset,
                )
            )


def _check_between_layers(
    layers: Mapping[str, gpd.GeoDataFrame],
    sources: Mapping[str, LayerSource],
    report: ValidationReport,
) -> pd.DataFrame | None:
    """The grid hierarchy, and buildings and hazards against grids and buildings.

    Returns the buildings' grid cells, assigned once here for the check and for the analyses.
    """
    if "grids" in layers:
        report.extend(check_grid_hierarchy(layers["grids"], sources["grids"]))
        report.extend(check_grid_overlaps(layers["grids"], sources["grids"]))
    cells = None
    if "grids" in layers and "buildings" in layers:
        cells, _ = assign_grids(layers["buildings"], layers["grids"])
        report.extend(
            check_grid_coverage(
                layers["buildings"], layers["grids"], sources["buildings"], cells=cells
            )
        )
    if "hazards" in layers and "buildings" in layers:
        report.extend(check_references(layers["hazards"], layers["buildings"], sources["hazards"]))
    return cells


def _read_layer(
    spec: LayerSpec, layer_name: str, report: ValidationReport
) -> tuple[gpd.GeoDataFrame, LayerSource, CoordSystem] | None:
    """Read, check and convert one layer to WGS84, adding its findings to ``report``.

    Returns None when its geometries cannot be placed (the attribute problems found are
    still in the report).
    """
    schema = SCHEMAS[layer_name]
    raw, source = _read_spec(spec, layer_name)
    cs = _coord_system(spec, raw)
    gdf, layer_report = coerce_layer(raw, schema, source, values=spec.values)
    report.extend(layer_report)
    if layer_report.has_error(layer=layer_name, column="geometry") or len(gdf) == 0:
        return None
    gdf = to_wgs84(gdf, cs)
    range_report = check_coordinates_range(gdf, schema, source)
    report.extend(range_report)
    if not range_report.ok:
        return None
    if layer_report.ok:
        report.info(f"{source.file}: {len(gdf)} {layer_name} read ({cs.name})", layer=layer_name)
    return gdf, source, cs


def _read_spec(spec: LayerSpec, layer_name: str) -> tuple[gpd.GeoDataFrame, LayerSource]:
    raw, source = read_layer(
        spec.file, layer=spec.layer, lon=spec.lon, lat=spec.lat, columns=spec.columns
    )
    if isinstance(spec.file, gpd.GeoDataFrame):
        # Messages name the layer the analyst passed, not just "a frame".
        source.file = f"the {layer_name} GeoDataFrame"
    return raw, source


def read_district_layer(spec: LayerSpec, layer_name: str, *, crs=None) -> gpd.GeoDataFrame:
    """Read and validate one layer on its own (for notebooks); raises on the first error.

    Returned in ``crs`` when given, otherwise in WGS84.
    """
    raw, source = _read_spec(spec, layer_name)
    cs = _coord_system(spec, raw)
    gdf, report = coerce_layer(raw, SCHEMAS[layer_name], source, values=spec.values)
    report.raise_if_errors()
    gdf = to_wgs84(gdf, cs)
    check_coordinates_range(gdf, SCHEMAS[layer_name], source).raise_if_errors()
    return attach_source(project(gdf, crs) if crs is not None else gdf, source)


__all__ = ["District", "LayerSpec", "load_district", "read_district_layer", "WGS84"]
