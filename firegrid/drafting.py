"""Drafting a district's config from a folder of ledgers and files (``firegrid init``).

Each file (CSV/Excel ledger, GeoPackage layer, GeoJSON, Shapefile …) is read as a run reads
it, recognised as a layer by its geometry, its headers (:mod:`firegrid.spatial.io.headers`),
the values of its category columns and the words of its name; its headers are mapped onto the
canonical columns; and the coordinate system of lon/lat data is guessed by where the points
fall: a GCJ-02 ledger read as WGS84 puts hydrants and stations off the streets and hazards off
their buildings. The draft is a commented TOML: every guess says why, for the user to confirm.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from firegrid.spatial.errors import ConfigError, FireGridError
from firegrid.spatial.io.crs import WGS84, to_wgs84, working_crs_for
from firegrid.spatial.io.headers import canonical_headers, layers_named_by
from firegrid.spatial.io.layers import LAYER_NAMES, SCHEMAS, VALUE_SYNONYMS
from firegrid.spatial.io.readers import (
    LAT_NAMES,
    LON_NAMES,
    PARQUET_SUFFIXES,
    TABLE_SUFFIXES,
    VECTOR_SUFFIXES,
    read_layer_file,
    read_table,
)
from firegrid.spatial.network.load import GRAPHML_SUFFIXES, read_network
from firegrid.spatial.network.osm import osm_format

CONFIG_NAME = "district.toml"
# The readings a lon/lat layer is tried in; the offsets of GCJ-02 and BD-09 from WGS84 are
# hundreds of metres, far more than a hydrant's distance from its street.
READINGS = ("WGS84", "GCJ-02", "BD-09")
# A reading wins when its points sit at most this share as far (on average) from the streets
# and buildings as under every other reading; closer calls are left to the user.
CLEAR_WIN = 0.5
# A building point this close to a street's centre line stands in the road, and one this far
# from every street has no access: both mark a wrong reading (metres).
ON_STREET_M = 3.0
OFF_STREETS_M = 200.0
# Another layer a file fits with at least this share of the chosen layer's score is named.
CLOSE_CALL = 0.75
SKIPPED_FOLDERS = {"firegrid-output", ".git", "__pycache__"}


@dataclass
class LayerDraft:
    """One recognised layer: where it is, how its headers map, what it was recognised by."""

    layer: str
    path: Path
    sheet: str | None = None
    lon: str | None = None
    lat: str | None = None
    crs: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)
    crs_why: str = ""
    comments: list[str] = field(default_factory=list)
    frame: gpd.GeoDataFrame | None = field(default=None, repr=False)


@dataclass
class Draft:
    """What ``firegrid init`` found in a folder."""

    folder: Path
    name: str
    as_of: date
    layers: dict[str, LayerDraft] = field(default_factory=dict)
    network: Path | None = None
    unused: list[str] = field(default_factory=list)


def draft_district(folder: str | Path, *, name: str | None = None, as_of: date | None = None):
    """Recognise the layers and the road network in ``folder`` and guess their coordinates.

    Parameters
    ----------
    folder : path
        The folder holding the district's files (subfolders are searched too).
    name : str, optional
        The district's name (default: the folder's name).
    as_of : date, optional
        The date hazard deadlines are judged against (default: today).

    Returns
    -------
    Draft

    Raises
    ------
    ConfigError
        The folder does not exist, or holds none of the required layers (grids, buildings,
        stations).
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder")
    draft = Draft(folder, name or folder.name, as_of or date.today())
    candidates = _read_candidates(_layer_files(folder, draft), draft)
    _assign_layers(candidates, draft)
    missing = [n for n, s in SCHEMAS.items() if s.required_layer and n not in draft.layers]
    if missing:
        raise ConfigError(
            f"{folder}: found no file for layer(s) {missing} (files seen: "
            f"{[str(p.relative_to(folder)) for p in _files(folder)]}); a layer is recognised "
            "by its headers, e.g. 编号/类型/出动时间 for stations"
        )
    _guess_coordinates(draft)
    return draft


def write_draft(draft: Draft, *, filename: str = CONFIG_NAME) -> Path:
    """Write the draft as a commented TOML beside its files, never over an existing file.

    ``district.toml`` when free, else ``district.toml.new``; when both exist, ConfigError.
    """
    text = draft_toml(draft)
    for path in (draft.folder / filename, draft.folder / f"{filename}.new"):
        if _create(path, text):
            return path
    raise ConfigError(
        f"{draft.folder / filename} and its .new both exist; FireGrid never overwrites a "
        "config: move one away or pass another file name"
    )


def draft_toml(draft: Draft) -> str:
    """The draft as TOML, every guess explained in a comment."""
    lines = [
        f"# FireGrid config drafted by `firegrid init` on {date.today().isoformat()} from the "
        "files in this folder.",
        "# Every guess below says why in a comment: check them, then run",
        f"#   firegrid validate {CONFIG_NAME}",
        "",
        "[district]",
        f"name = {_q(draft.name)}",
        f"as_of = {_q(draft.as_of.isoformat())}   # the date hazard deadlines are judged "
        "against; change it to the date the analysis speaks for",
        "",
    ]
    if draft.network is not None:
        lines += [
            "[network]",
            f"source = {_q(_relative(draft.network, draft.folder))}   # the road network file "
            "found in the folder",
            "",
        ]
    else:
        lines += [
            "# [network]: no OSM (.pbf/.osm) or .graphml file found; without one, response",
            '# times, water along streets and siting are skipped. source = "roads.osm.pbf"',
            "",
        ]
    for layer in LAYER_NAMES:
        if layer in draft.layers:
            lines += _layer_toml(draft.layers[layer], draft.folder)
    for text in draft.unused:
        lines.append(f"# not used: {text}")
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------- finding files
def _files(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS and not d.startswith("."))
        found += [Path(root) / f for f in sorted(files) if not f.startswith((".", "~$"))]
    return found


def _layer_files(folder: Path, draft: Draft) -> list[tuple[Path, str | None]]:
    """(file, layer inside it) for every layer file; the road network goes to the draft."""
    out: list[tuple[Path, str | None]] = []
    readable = TABLE_SUFFIXES | VECTOR_SUFFIXES | PARQUET_SUFFIXES
    for path in _files(folder):
        suffix = path.suffix.lower()
        if osm_format(path) is not None or suffix in GRAPHML_SUFFIXES:
            if draft.network is None:
                draft.network = path
            else:
                draft.unused.append(f"{_relative(path, folder)} (a second road network)")
        elif suffix in readable and not path.name.endswith((".toml", ".toml.new")):
            out += [(path, sheet) for sheet in _sublayers(path)]
    return out


def _sublayers(path: Path) -> list[str | None]:
    """The layers of a GeoPackage (None for a one-layer file or a ledger's first sheet)."""
    if path.suffix.lower() != ".gpkg":
        return [None]
    try:
        names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
    except (pyogrio.errors.DataSourceError, OSError):
        return [None]
    return [None] if len(names) <= 1 else names


@dataclass
class _Candidate:
    path: Path
    sheet: str | None
    frame: gpd.GeoDataFrame
    lonlat: tuple[str | None, str | None] | None
    fits: dict[str, tuple[int, dict[str, str], list[str]]]


def _read_candidates(files, draft: Draft) -> list[_Candidate]:
    out = []
    for path, sheet in files:
        label = _relative(path, draft.folder) + (f" layer {sheet}" if sheet else "")
        try:
            frame, _ = read_layer_file(path, layer=sheet)
        except FireGridError as exc:
            draft.unused.append(f"{label} ({_reason(exc)})")
            continue
        fits = {n: f for n in LAYER_NAMES if (f := _fit(frame, n, path.name)) is not None}
        if not fits:
            draft.unused.append(f"{label} (not recognised as any layer: {_headers(frame)})")
            continue
        out.append(_Candidate(path, sheet, frame, _lonlat(path, sheet), fits))
    return out


def _lonlat(path: Path, sheet: str | None) -> tuple[str | None, str | None] | None:
    """The longitude and latitude headers of a ledger (None for a GIS file)."""
    if path.suffix.lower() not in TABLE_SUFFIXES:
        return None
    headers = list(read_table(path, sheet=sheet)[0].columns)
    return _named(headers, LON_NAMES), _named(headers, LAT_NAMES)


def _reason(exc: FireGridError) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else text


def _headers(frame: gpd.GeoDataFrame) -> str:
    names = [str(c) for c in frame.columns if c != frame.geometry.name]
    return ", ".join(names[:8]) + (" …" if len(names) > 8 else "") or "no columns"


# ------------------------------------------------------------------------- recognising layers
def _fit(frame: gpd.GeoDataFrame, layer: str, filename: str):
    """(score, header map, reasons) when ``frame`` can be ``layer``, else None.

    It can when its geometries are of the layer's kind and every required column is found;
    the score counts the columns found, the category values the layer knows, and the name.
    """
    schema = SCHEMAS[layer]
    kinds = set(frame.geometry.dropna().geom_type)
    if not kinds or not kinds <= set(schema.geometry):
        return None
    mapping = canonical_headers(layer, list(frame.columns))
    present = {mapping.get(str(c), str(c)) for c in frame.columns}
    if any(c not in present for c in schema.required_columns):
        return None
    found = [c.name for c in schema.columns if c.name in present and c.name != schema.id_column]
    reasons = [f"columns {', '.join(found)}" if found else f"id column {schema.id_column}"]
    score = 2 * len(found)
    for column in found:
        share = _known_share(frame, mapping, column, layer)
        if share is not None and share >= 0.5:
            score += 3
            reasons.append(f"{column} values it knows ({share:.0%})")
    if layer in layers_named_by(filename):
        score += 3
        reasons.append(f"the file name {filename!r}")
    return score, mapping, reasons


def _known_share(frame, mapping: dict[str, str], column: str, layer: str) -> float | None:
    """The share of a category column's cells that are its choices or known synonyms."""
    choices = SCHEMAS[layer].column(column).choices
    if not choices:
        return None
    header = next((h for h, c in mapping.items() if c == column), column)
    values = frame[header].dropna().astype(str).str.strip().str.lower()
    if values.empty:
        return None
    synonyms = {k.lower(): v for k, v in VALUE_SYNONYMS.get(column, {}).items()}
    known = values.map(lambda v: v in choices or synonyms.get(v) in choices)
    return float(known.mean())


def _assign_layers(candidates: list[_Candidate], draft: Draft) -> None:
    """Give each layer its best-fitting file, each file to one layer (best scores first)."""
    pairs = sorted(
        ((fit[0], layer, i) for i, c in enumerate(candidates) for layer, fit in c.fits.items()),
        key=lambda p: (-p[0], LAYER_NAMES.index(p[1]), p[2]),
    )
    used: set[int] = set()
    for _, layer, i in pairs:
        cand = candidates[i]
        if i in used:
            continue
        if layer in draft.layers:
            continue
        used.add(i)
        score, mapping, reasons = cand.fits[layer]
        # Points with an id fit buildings too; only a close second is worth a word.
        others = [n for n, f in cand.fits.items() if n != layer and f[0] >= CLOSE_CALL * score]
        why = [f"recognised as {layer} by its {'; '.join(reasons)}"]
        if others:
            why.append(f"it could also be {', '.join(others)}: check")
        draft.layers[layer] = _layer_draft(cand, layer, mapping, why)
    for i, cand in enumerate(candidates):
        if i not in used:
            label = _relative(cand.path, draft.folder) + (
                f" layer {cand.sheet}" if cand.sheet else ""
            )
            taken = ", ".join(
                f"{n} (from {_relative(draft.layers[n].path, draft.folder)})" for n in cand.fits
            )
            draft.unused.append(f"{label} (fits {taken}, which a better-fitting file gives)")


def _layer_draft(cand: _Candidate, layer: str, mapping: dict[str, str], why: list[str]):
    frame = cand.frame
    lon, lat = cand.lonlat or (None, None)
    draft = LayerDraft(layer, cand.path, cand.sheet, lon, lat, None, mapping, why, frame=frame)
    unknown = [str(c) for c in frame.columns if c != frame.geometry.name and str(c) not in mapping]
    unknown = [c for c in unknown if SCHEMAS[layer].column(c) is None]
    if unknown:
        draft.comments.append(
            f"kept as they are (not data-model columns): {', '.join(unknown)}; map one in "
            "[columns] if it is one"
        )
    draft.comments += _unknown_values(frame, mapping, layer)
    return draft


def _named(headers, names) -> str | None:
    lowered = {str(h).strip().lower(): str(h) for h in headers}
    return next((lowered[n] for n in names if n in lowered), None)


def _unknown_values(frame, mapping: dict[str, str], layer: str) -> list[str]:
    """A comment per category column holding values FireGrid cannot map."""
    out = []
    for column in SCHEMAS[layer].columns:
        if not column.choices:
            continue
        header = next((h for h, c in mapping.items() if c == column.name), column.name)
        if header not in frame:
            continue
        synonyms = {k.lower(): v for k, v in VALUE_SYNONYMS.get(column.name, {}).items()}
        values = pd.Series(frame[header].dropna().astype(str).str.strip().unique())
        strange = [
            v
            for v in values
            if v and v.lower() not in column.choices and synonyms.get(v.lower()) is None
        ]
        if strange:
            shown = ", ".join(repr(v) for v in strange[:5])
            out.append(
                f"{header} has values FireGrid does not know: {shown}; map them in "
                f"[layers.{layer}.values.{column.name}] onto {', '.join(column.choices)}"
            )
    return out


# ------------------------------------------------------------------------ coordinate systems
def _guess_coordinates(draft: Draft) -> None:
    """The coordinate system of every layer, by where its features fall (see :data:`READINGS`)."""
    streets = _streets(draft)
    buildings = draft.layers["buildings"]
    if set(buildings.frame.geom_type.dropna()) <= {"Point", "MultiPoint"}:
        _decide(buildings, _building_point_scores(buildings.frame, streets), BUILDING_POINTS)
    else:
        _decide(buildings, _polygon_scores(buildings.frame, streets), FOOTPRINTS)
    reference = _reference(streets, buildings)
    for layer in ("hydrants", "stations", "water_sources", "hazards", "incidents"):
        if layer in draft.layers:
            d = draft.layers[layer]
            _decide(d, _point_scores(d.frame, reference), POINTS)
    grids = draft.layers["grids"]
    if grids.frame.crs is None:
        grids.crs = buildings.crs if buildings.crs in READINGS else "WGS84"
        grids.crs_why = "as the buildings: the file has no CRS, and outlines cannot be checked"
    else:
        grids.crs_why = f"the file's own CRS ({grids.frame.crs.to_string()}): check it"


def _streets(draft: Draft) -> gpd.GeoSeries | None:
    if draft.network is None:
        return None
    try:
        roads = read_network(draft.network).roads_layer()
    except FireGridError as exc:
        draft.unused.append(
            f"{_relative(draft.network, draft.folder)} as a check of coordinates ({_reason(exc)})"
        )
        return None
    return roads.geometry.to_crs(WGS84)


def _geographic(frame: gpd.GeoDataFrame) -> bool:
    """Lon/lat degrees: a ledger (no CRS) or a file labelled geographic."""
    return frame.crs is None or frame.crs.is_geographic


def _readings(frame: gpd.GeoDataFrame, work) -> dict[str, np.ndarray]:
    return {r: to_wgs84(frame, r).to_crs(work).geometry.values for r in READINGS}


def _in_metres(geoms: gpd.GeoSeries | None) -> tuple[np.ndarray, object] | None:
    """WGS84 geometries in the UTM zone of their middle, and that CRS."""
    if geoms is None:
        return None
    work = working_crs_for(geoms.to_frame())
    return geoms.to_crs(work).values, work


def _polygon_scores(frame, streets) -> dict[str, float] | None:
    """Per reading, the share of footprints a street crosses (lower is right)."""
    if streets is None or not _geographic(frame):
        return None
    lines, work = _in_metres(streets)
    tree = shapely.STRtree(lines)
    out = {}
    for reading, geoms in _readings(frame, work).items():
        inner = shapely.buffer(geoms, -1.0)  # a street along a wall only touches it
        hit = np.zeros(len(inner), dtype=bool)
        pairs = tree.query(inner, predicate="intersects")
        hit[np.unique(pairs[0])] = True
        out[reading] = float(hit.mean())
    return out


def _building_point_scores(frame, streets) -> dict[str, float] | None:
    """Per reading, the share of building points that no building can have: in the road
    (within :data:`ON_STREET_M` of a street's centre line) or beyond :data:`OFF_STREETS_M`
    of every street (lower is right). Distance alone tells little here: buildings stand back
    from the streets, by about as much as a wrong reading moves a point in a dense grid."""
    if streets is None or not _geographic(frame):
        return None
    lines, work = _in_metres(streets)
    tree = shapely.STRtree(lines)
    out = {}
    for reading, points in _readings(frame, work).items():
        _, dist = tree.query_nearest(points, return_distance=True, all_matches=False)
        out[reading] = float(np.mean((dist < ON_STREET_M) | (dist > OFF_STREETS_M)))
    return out


def _reference(streets, buildings: LayerDraft) -> tuple[np.ndarray, object] | None:
    """Streets and building footprints (in the buildings' reading), in metres."""
    parts = []
    if streets is not None:
        parts.append(streets)
    reading = buildings.crs if buildings.crs in READINGS else None
    if reading is not None or not _geographic(buildings.frame):
        parts.append(to_wgs84(buildings.frame, reading).geometry)
    if not parts:
        return None
    return _in_metres(gpd.GeoSeries(pd.concat(parts, ignore_index=True), crs=WGS84))


def _point_scores(frame, reference) -> dict[str, float] | None:
    """Per reading, the mean distance (metres) of the features to the nearest street or
    building (lower is right); hydrants stand on streets, hazards in their buildings."""
    if reference is None or not _geographic(frame):
        return None
    geoms, work = reference
    tree = shapely.STRtree(geoms)
    out = {}
    for reading, points in _readings(frame, work).items():
        _, dist = tree.query_nearest(points, return_distance=True, all_matches=False)
        out[reading] = float(np.mean(dist))
    return out


# What a layer's scores measure, and whether they are shares (else metres).
FOOTPRINTS = ("of the footprints crossed by a street", True)
BUILDING_POINTS = ("of the buildings in a street or far from every street", True)
POINTS = ("from the nearest street or building", False)


def _decide(d: LayerDraft, scores: dict[str, float] | None, measure: tuple[str, bool]) -> None:
    """The reading that clearly fits best (``scores``: lower is better), else WGS84 with a
    word to check; ``measure``: what the scores are (:data:`POINTS` …)."""
    if scores is None:
        if _geographic(d.frame):
            d.crs = "WGS84"
            d.crs_why = "assumed: nothing to check the coordinates against (no road network)"
        else:
            d.crs_why = f"the file's own CRS ({d.frame.crs.to_string()})"
        return
    best, second = sorted(scores, key=scores.get)[:2]
    unit, share = measure
    told = ", ".join(
        (f"{scores[r]:.0%}" if share else f"{scores[r]:,.0f} m") + f" as {r}" for r in READINGS
    )
    if scores[second] > 0 and scores[best] <= CLEAR_WIN * scores[second]:
        d.crs = best
        d.crs_why = f"read as each system, {unit}: {told}: {best}"
    else:
        d.crs = "WGS84"
        d.crs_why = f"could not tell ({unit}: {told}); WGS84 assumed: check"


# ------------------------------------------------------------------------------- writing TOML
def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(str(text), ensure_ascii=False)


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _layer_toml(d: LayerDraft, folder: Path) -> list[str]:
    n = len(d.frame)
    kinds = "/".join(sorted(set(d.frame.geometry.dropna().geom_type)))
    lines = [f"[layers.{d.layer}]"]
    lines += [f"# {_relative(d.path, folder)}: {n:,} {kinds}; {text}" for text in d.why[:1]]
    lines += [f"# {text}" for text in d.why[1:]]
    lines.append(f"file = {_q(_relative(d.path, folder))}")
    if d.sheet is not None:
        lines.append(f"layer = {_q(d.sheet)}")
    if d.lon and d.lat:
        lines.append(f"lon = {_q(d.lon)}")
        lines.append(f"lat = {_q(d.lat)}")
    if d.crs is not None:
        lines.append(f"crs = {_q(d.crs)}   # {d.crs_why}")
    else:
        lines.append(f"# crs: {d.crs_why}")
    lines += [f"# {text}" for text in d.comments]
    if d.columns:
        lines.append(f"[layers.{d.layer}.columns]   # your header → FireGrid's column")
        lines += [f"{_q(h)} = {_q(c)}" for h, c in d.columns.items()]
    lines.append("")
    return lines


def _create(path: Path, text: str) -> bool:
    """Write ``path`` whole, only if no such file exists (a link cannot replace a file)."""
    if path.exists():
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


__all__ = ["CONFIG_NAME", "Draft", "LayerDraft", "draft_district", "draft_toml", "write_draft"]
