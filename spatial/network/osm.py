"""OpenStreetMap files (PBF, XML, compressed XML) read straight into a routing table.

One pyosmium pass collects the ``highway=*`` ways (node references, node locations, a few tags),
the tagged barrier nodes and the ``type=restriction`` relations; everything after that is numpy:

- **Clipped extracts.** Extract services keep every reference of a way that crosses the boundary
  although the nodes outside are not in the file. A way is cut where it leaves the file: each run
  of consecutive nodes present in the file becomes its own piece (``stats["ways_cut_at_edge"]``,
  ``stats["missing_node_refs"]``).
- **Segments.** A piece is split at every node it shares with another piece (or with itself), at
  barrier nodes and at the via nodes of turn restrictions. Chains of degree-2 nodes are thus only
  contracted inside one way, so each segment keeps the tags of its own way.
- **Directions.** ``oneway=yes|true|1`` and ``junction=roundabout|circular`` (and
  ``highway=motorway``, one-way by OSM convention) give one edge in the way's direction,
  ``oneway=-1|reverse`` one edge against it; ``oneway=reversible|alternating`` (direction changes
  with the time of day) is kept as two-way, as osmnx does, because the network is static.
- **Lengths** are geodesic-free planar lengths in the projected working CRS (metres, float64).

The ways never become Python objects (iterating their nodes in Python was most of the read's
time): libosmium writes them with their node locations as OPL text into a temporary folder,
which pandas parses as one CSV of nodes; each distinct tag set is decoded once.

Only ways tagged ``highway`` become streets: rivers, railways, fences and building outlines in the
same file are ignored. Which street a vehicle may use is decided later by its profile
(:mod:`firegrid.spatial.network.profiles`) from the tags kept here.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely

from firegrid.spatial.errors import NetworkError
from firegrid.spatial.io.crs import WGS84, utm_crs_for
from firegrid.spatial.network.profiles import NODE_TAGS, WAY_TAGS, TagColumn
from firegrid.spatial.network.routing import GraphTable

# File suffixes libosmium reads, and the format name it needs when the suffix is not its own.
FORMATS = {
    ".osm.pbf": "pbf",
    ".pbf": "pbf",
    ".osm.bz2": "osm.bz2",
    ".osm.gz": "osm.gz",
    ".xml.bz2": "osm.bz2",
    ".xml.gz": "osm.gz",
    ".osm.xml": "osm",
    ".osm": "osm",
    ".xml": "osm",
}

_ONEWAY_FWD = frozenset({"yes", "true", "1"})
_ONEWAY_BACK = frozenset({"-1", "reverse"})
_ONEWAY_NO = frozenset({"no", "false", "0"})
_ROUNDABOUT = frozenset({"roundabout", "circular"})
# Vehicles whose exemption (restriction ``except=*``) means an engine is not bound.
_ENGINE_EXCEPT = frozenset({"motorcar", "motor_vehicle", "emergency"})
# libosmium's coordinate for a node location it does not know (the node is not in the file).
_UNDEFINED = 2**31 - 1


def osm_format(path: str | os.PathLike) -> str | None:
    """The libosmium format name for a file path, or None when the suffix is not an OSM file."""
    lower = os.fspath(path).lower()
    for suffix, fmt in FORMATS.items():
        if lower.endswith(suffix):
            return fmt
    return None


def read_osm(path: str | os.PathLike, *, crs: Any = None) -> GraphTable:
    """Read the streets of an OSM file (PBF, XML, ``.osm.bz2``/``.osm.gz``) into a GraphTable.

    Parameters
    ----------
    path : str or path
        The OSM file; whole or clipped at an extract boundary.
    crs : CRS-like, optional
        Projected working CRS (metres). Default: the UTM zone of the streets' centre.

    Returns
    -------
    GraphTable
        Directed edges (a two-way street is two edges) with per-edge tags of their own way,
        barrier nodes, turn restrictions (via-node ones) and ``stats`` for validation.

    Raises
    ------
    NetworkError
        The file is missing, unreadable, holds no streets, or ``crs`` is not projected; the
        message names ``path``.
    """
    path = Path(path)
    fmt = osm_format(path)
    if fmt is None:
        raise NetworkError(f"{path}: not an OSM file (.osm, .xml, .pbf, .osm.bz2, .osm.gz)")
    if not path.is_file():
        raise NetworkError(f"{path}: road network file not found")
    try:
        raw = _scan(path, fmt)
    except NetworkError:
        raise
    except Exception as exc:  # libosmium reports bad data as RuntimeError and others
        raise NetworkError(f"{path}: cannot read OSM data ({type(exc).__name__}: {exc})") from exc
    try:
        return _build(raw, crs)
    except NetworkError as exc:
        raise NetworkError(f"{path}: {exc}") from exc


# ---------------------------------------------------------------------- the pass over the file
class _Raw:
    """What the pass over the file collects (lists, and numpy arrays for the way nodes)."""

    def __init__(self) -> None:
        self.way_ids: list[int] = []
        self.way_sig: list[int] = []  # index into sigs: ways with equal kept tags share one
        self.way_len: list[int] = []
        self.refs: np.ndarray = np.zeros(0, dtype=np.int64)
        # Fixed-point 1e-7 degrees, _UNDEFINED when not in the file.
        self.x: np.ndarray = np.zeros(0, dtype=np.int64)
        self.y: np.ndarray = np.zeros(0, dtype=np.int64)
        self.sigs: dict[tuple, int] = {}
        self.barrier_ids: list[int] = []
        self.barrier_tags: list[tuple] = []
        self.restrictions: list[tuple] = []  # (relation id, value, from way, via node, to way)
        self.via_way_skipped = 0
        self.restrictions_malformed = 0


def _scan(path: Path, fmt: str) -> _Raw:
    """One pass: libosmium writes the candidate ways with their node locations as OPL text
    (C++ speed), Python sees only the tagged nodes and relations. Iterating the node lists of
    the ways in Python cost a few Python calls per node, most of the read's time."""
    import osmium

    raw = _Raw()
    with tempfile.TemporaryDirectory(prefix="firegrid_osm_") as tmp:
        opl = os.path.join(tmp, "ways.opl")
        writer = osmium.SimpleWriter(osmium.io.File(opl, _OPL_FORMAT))
        try:
            # KeyFilter lets through only objects with one of these keys; the location cache
            # before it still sees every node, so ways get the coordinates of untagged nodes.
            # The writer passes everything on; only nodes and relations reach Python.
            proc = (
                osmium.FileProcessor(osmium.io.File(str(path), fmt))
                .with_locations("flex_mem")
                .with_filter(osmium.filter.KeyFilter("highway", "barrier", "restriction", "type"))
                .with_filter(writer)
                .with_filter(osmium.filter.EntityFilter(osmium.osm.NODE | osmium.osm.RELATION))
            )
            for obj in proc:
                if obj.is_node():
                    _collect_barrier(obj, raw)
                else:
                    _collect_restriction(obj, raw)
        finally:
            writer.close()
        text = Path(opl).read_bytes()
    node_fields = _collect_ways(text, raw)
    del text
    raw.refs, raw.x, raw.y = _way_nodes(node_fields)
    return raw


# libosmium's OPL writer: one line per object, ``w<id> T<k>=<v>,… Nn<ref>x<lon>y<lat>,…``
# (``n<ref>xy`` for a node not in the file; spaces, commas, ``=`` and newlines inside tags are
# escaped, so they split fields safely); no metadata (version, user, …).
_OPL_FORMAT = "opl,add_metadata=false,locations_on_ways=true"
# OPL writes a character outside its plain set as its Unicode code point in hex: %5e72%.
_OPL_ESCAPE = re.compile(rb"%([0-9a-fA-F]+)%")


def _collect_barrier(node: Any, raw: _Raw) -> None:
    tags = node.tags
    if "barrier" in tags:
        raw.barrier_ids.append(node.id)
        raw.barrier_tags.append(tuple(tags.get(k, "") for k in NODE_TAGS))


def _collect_ways(text: bytes, raw: _Raw) -> list[bytes]:
    """Way ids, tag sets and node counts of the ``highway=*`` ways of the OPL text; returns
    their node lists (OPL, without the ``N``). Each distinct tag text is decoded once."""
    sigs, by_text, node_fields = raw.sigs, {}, []
    for line in text.split(b"\n"):
        if not line.startswith(b"w"):
            continue
        wid, tag_field, node_field = line.split(b" ")
        code = by_text.get(tag_field)
        if code is None:
            code = by_text[tag_field] = _signature(tag_field, sigs)
        if code < 0:
            continue
        raw.way_ids.append(int(wid[1:]))
        raw.way_sig.append(code)
        raw.way_len.append(node_field.count(b",") + 1 if len(node_field) > 1 else 0)
        node_fields.append(node_field[1:])
    return node_fields


def _signature(tag_field: bytes, sigs: dict[tuple, int]) -> int:
    """The code of an OPL tag field's kept tags (WAY_TAGS, "" when absent) in ``sigs``, added
    when new; -1 when the way has no ``highway`` tag."""
    tags: dict[str, str] = {}
    for pair in tag_field[1:].split(b","):
        key, _, value = pair.partition(b"=")
        tags.setdefault(_opl_text(key), _opl_text(value))  # the first of a repeated key
    if "highway" not in tags:
        return -1
    sig = tuple(tags.get(k, "") for k in WAY_TAGS)
    code = sigs.get(sig)
    if code is None:
        code = sigs[sig] = len(sigs)
    return code


def _opl_text(escaped: bytes) -> str:
    return _OPL_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)).encode(), escaped).decode()


def _way_nodes(node_fields: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node refs and fixed-point x / y (1e-7 degrees, _UNDEFINED where the file lacks the
    node) of OPL node lists, parsed as one CSV of ``ref,lon,lat`` lines."""
    if not any(node_fields):
        return (np.zeros(0, dtype=np.int64),) * 3
    csv = b"\n".join(node_fields).translate(_NODE_CSV, delete=b"n")
    del node_fields[:]
    nodes = pd.read_csv(
        io.BytesIO(csv),
        header=None,
        names=["ref", "lon", "lat"],
        dtype={"ref": np.int64, "lon": np.float64, "lat": np.float64},
        engine="c",
    )
    # OPL prints the fixed-point coordinate exactly (121.3047 is 1213047000): rounding the
    # parsed degrees x 1e7 recovers it.
    fixed = np.rint(nodes[["lon", "lat"]].to_numpy() * 1e7)
    fixed[np.isnan(fixed)] = _UNDEFINED
    fixed = fixed.astype(np.int64)
    return nodes["ref"].to_numpy(), fixed[:, 0].copy(), fixed[:, 1].copy()


# ``n12x121.3y31.2,n13xy`` -> lines ``12,121.3,31.2`` and ``13,,`` (``n`` deleted).
_NODE_CSV = bytes.maketrans(b",xy", b"\n,,")


def _collect_restriction(rel: Any, raw: _Raw) -> None:
    tags = rel.tags
    if tags.get("type") != "restriction":
        return
    # The general value, else the one for cars: both bind a fire engine.
    value = (
        tags.get("restriction")
        or tags.get("restriction:motorcar")
        or tags.get("restriction:motor_vehicle")
        or tags.get("restriction:vehicle")
    )
    if not value or not value.startswith(("no_", "only_")):
        return
    exempt = {e.strip() for e in tags.get("except", "").split(";")}
    if exempt & _ENGINE_EXCEPT:
        return
    frm, to, via_nodes, via_ways = [], [], [], []
    for m in rel.members:
        if m.role == "from" and m.type == "w":
            frm.append(m.ref)
        elif m.role == "to" and m.type == "w":
            to.append(m.ref)
        elif m.role == "via":
            (via_nodes if m.type == "n" else via_ways).append(m.ref)
    if via_ways:
        raw.via_way_skipped += 1
    elif len(frm) == 1 and len(to) == 1 and len(via_nodes) == 1:
        raw.restrictions.append((rel.id, value, frm[0], via_nodes[0], to[0]))
    else:
        raw.restrictions_malformed += 1


# ---------------------------------------------------------------------- arrays
def _build(raw: _Raw, crs: Any) -> GraphTable:
    if len(raw.way_ids) == 0:
        raise NetworkError("the file holds no highway=* ways (no streets)")
    p = _pieces_of(raw)
    nodes = _Nodes.of(p, crs)
    split = _SplitNodes.of(raw, nodes)
    seg = _Segments.of(p, nodes, split.split)
    seg, nodes, split = _segment_ends(seg, nodes, split)
    e = _DirectedEdges.of(seg, p.sig_table)
    tags = {}
    for key in WAY_TAGS:
        codes, uniques = pd.factorize(p.sig_table[key].to_numpy(dtype=object))
        small = codes.astype(_code_type(len(uniques)))
        tags[key] = TagColumn(small[e.sig], np.asarray(uniques, dtype=object))
    e_way = p.way_ids[seg.way[e.seg]]
    node_tags = _node_tags(len(nodes.ids), split.barrier_nodes, raw.barrier_tags, split.on_net)
    restrictions = _restrictions(split.rest, split.via_ok, split.vpos, e_way, e.u, e.v)
    return GraphTable(
        node_ids=nodes.ids,
        xy=nodes.xy,
        edges=_edge_frame(nodes.ids, e, tags, e_way),
        u=e.u,
        v=e.v,
        geom=e.geom,
        length=e.length,
        crs=nodes.crs,
        highway=tags["highway"],
        service=tags["service"],
        maxspeed=tags["maxspeed"],
        tags=tags,
        restrictions=restrictions,
        barrier_nodes=split.barrier_nodes,
        node_tags=node_tags,
        lonlat=np.column_stack([nodes.lon, nodes.lat]),
        stats=_read_stats(raw, p, nodes, seg, e, split, restrictions),
        edge_segment=e.seg,
    )


@dataclass(frozen=True, eq=False)
class _Pieces:
    """The ways' node lists cut into pieces: runs of consecutive nodes present in the file
    (an extract's edge cuts a way), pieces of fewer than two nodes dropped. ``k_*`` are per
    kept node: OSM id, piece, way, first / last of its piece, fixed-point lon / lat."""

    way_ids: np.ndarray
    way_sig: np.ndarray
    sig_table: pd.DataFrame
    k_refs: np.ndarray
    k_piece: np.ndarray
    k_way: np.ndarray
    k_first: np.ndarray
    k_last: np.ndarray
    k_fx: np.ndarray
    k_fy: np.ndarray
    n_missing: int  # node references the file does not hold
    n_cut_ways: int
    n_dropped: int  # pieces of one node


def _pieces_of(raw: _Raw) -> _Pieces:
    n_ways = len(raw.way_ids)
    way_len = np.asarray(raw.way_len, dtype=np.int64)
    refs = np.asarray(raw.refs, dtype=np.int64)
    fx = np.asarray(raw.x, dtype=np.int64)
    fy = np.asarray(raw.y, dtype=np.int64)
    del raw.refs, raw.x, raw.y
    way_of = np.repeat(np.arange(n_ways), way_len)
    # A node listed twice in a row (a mapping slip) would make a zero-length step: drop it.
    dup = np.r_[False, (refs[1:] == refs[:-1]) & (way_of[1:] == way_of[:-1])]
    if dup.any():
        refs, fx, fy, way_of = refs[~dup], fx[~dup], fy[~dup], way_of[~dup]
        way_len = np.bincount(way_of, minlength=n_ways)
    present = (fx != _UNDEFINED) & (fy != _UNDEFINED)
    starts = np.r_[0, np.cumsum(way_len)[:-1]]
    is_first = np.zeros(len(refs), dtype=bool)
    is_first[starts[way_len > 0]] = True
    # Pieces: runs of consecutive present nodes of one way.
    run_start = present & (is_first | ~np.r_[False, present[:-1]])
    piece = np.cumsum(run_start) - 1
    piece_size = np.bincount(piece[present], minlength=int(piece[-1]) + 1 if len(piece) else 0)
    keep = present & (piece_size[np.maximum(piece, 0)] >= 2)
    if not keep.any():
        raise NetworkError("no street has two nodes inside the file")
    k_piece = piece[keep]
    return _Pieces(
        way_ids=np.asarray(raw.way_ids, dtype=np.int64),
        way_sig=np.asarray(raw.way_sig, dtype=np.int64),
        sig_table=pd.DataFrame.from_records(list(raw.sigs), columns=list(WAY_TAGS)),
        k_refs=refs[keep],
        k_piece=k_piece,
        k_way=way_of[keep],
        k_first=np.r_[True, k_piece[1:] != k_piece[:-1]],
        k_last=np.r_[k_piece[1:] != k_piece[:-1], True],
        k_fx=fx[keep],
        k_fy=fy[keep],
        n_missing=int((~present).sum()),
        n_cut_ways=len(np.unique(way_of[~present])),
        n_dropped=int((piece_size == 1).sum()),
    )


@dataclass(frozen=True, eq=False)
class _Nodes:
    """Distinct nodes: OSM ids (sorted), WGS84 lon / lat, coordinates in the projected
    ``crs`` (metres); ``index`` maps each kept node of the pieces onto them."""

    ids: np.ndarray
    index: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    xy: np.ndarray
    crs: pyproj.CRS

    @classmethod
    def of(cls, p: _Pieces, crs: Any) -> _Nodes:
        node_ids, node_of = _sorted_ids(p.k_refs)
        n_nodes = len(node_ids)
        lon = np.empty(n_nodes)
        lat = np.empty(n_nodes)
        lon[node_of] = p.k_fx.astype(float) * 1e-7
        lat[node_of] = p.k_fy.astype(float) * 1e-7
        if crs is None:
            crs = utm_crs_for(
                float((lon.min() + lon.max()) / 2), float((lat.min() + lat.max()) / 2)
            )
        crs = pyproj.CRS.from_user_input(crs)
        if not crs.is_projected:
            raise NetworkError(f"the working CRS must be projected (metres), got {crs.name}")
        tr = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True)
        nx_, ny_ = tr.transform(lon, lat)
        xy = np.column_stack([nx_, ny_]).astype(np.float64)
        return cls(node_ids, node_of, lon, lat, xy, crs)

    def take(self, keep: np.ndarray) -> _Nodes:
        return replace(self, ids=self.ids[keep], lon=self.lon[keep], lat=self.lat[keep],
                       xy=self.xy[keep])  # fmt: skip


@dataclass(frozen=True, eq=False)
class _SplitNodes:
    """Barrier nodes and restriction via nodes end segments, as do nodes shared by pieces.

    ``barrier_nodes``: node positions of the barriers on the network (``on_net`` per barrier
    read); ``rest``: the restriction relations read, ``vpos`` / ``via_ok`` their via node's
    position and whether it is on the network; ``split`` per node."""

    barrier_nodes: np.ndarray
    on_net: np.ndarray
    rest: pd.DataFrame
    vpos: np.ndarray
    via_ok: np.ndarray
    split: np.ndarray | None

    @classmethod
    def of(cls, raw: _Raw, nodes: _Nodes) -> _SplitNodes:
        n_nodes = len(nodes.ids)
        barrier_ids = np.asarray(raw.barrier_ids, dtype=np.int64)
        bpos = np.minimum(np.searchsorted(nodes.ids, barrier_ids), n_nodes - 1)
        on_net = nodes.ids[bpos] == barrier_ids if len(barrier_ids) else np.zeros(0, dtype=bool)
        barrier_nodes = bpos[on_net]
        rest = pd.DataFrame.from_records(
            raw.restrictions,
            columns=["relation_id", "restriction", "from_way", "via_id", "to_way"],
        )
        via = rest["via_id"].to_numpy(np.int64)
        vpos = np.minimum(np.searchsorted(nodes.ids, via), n_nodes - 1)
        via_ok = nodes.ids[vpos] == via
        split = np.bincount(nodes.index, minlength=n_nodes) >= 2
        split[barrier_nodes] = True
        split[vpos[via_ok]] = True
        return cls(barrier_nodes, on_net, rest, vpos, via_ok, split)


@dataclass(frozen=True, eq=False)
class _Segments:
    """Street pieces between split nodes: end nodes ``a`` / ``b``, length (metres), way and
    tag set, geometry where a segment bends (straight ones None)."""

    a: np.ndarray
    b: np.ndarray
    length: np.ndarray
    way: np.ndarray
    sig: np.ndarray
    geom: np.ndarray

    @classmethod
    def of(cls, p: _Pieces, nodes: _Nodes, split: np.ndarray) -> _Segments:
        node_of, xy = nodes.index, nodes.xy
        # Steps i -> i+1 inside a piece; a segment starts at a piece's first node or a split
        # node.
        step = ~p.k_last
        seg_start = (p.k_first | split[node_of]) & step
        seg_id_all = np.cumsum(seg_start) - 1
        s_idx = np.flatnonzero(step)
        s_seg = seg_id_all[s_idx]
        n_seg = int(s_seg[-1]) + 1
        a_node = node_of[s_idx]
        b_node = node_of[s_idx + 1]
        d = xy[b_node] - xy[a_node]
        seg_len = np.bincount(s_seg, weights=np.hypot(d[:, 0], d[:, 1]), minlength=n_seg)
        first_step = np.flatnonzero(np.r_[True, s_seg[1:] != s_seg[:-1]])
        last_step = np.r_[first_step[1:] - 1, len(s_idx) - 1]
        seg_b = b_node[last_step]
        seg_way = p.k_way[s_idx[first_step]]
        geom = _bent_lines(xy, s_seg, s_idx, a_node, seg_b, last_step,
                           last_step - first_step + 1)  # fmt: skip
        return cls(a_node[first_step], seg_b, seg_len, seg_way, p.way_sig[seg_way], geom)


def _bent_lines(xy, s_seg, s_idx, a_node, seg_b, last_step, seg_steps) -> np.ndarray:
    """Geometry only where a segment bends (more than one step); straight ones stay None."""
    n_seg = len(seg_b)
    geom = np.full(n_seg, None, dtype=object)
    bent = np.flatnonzero(seg_steps > 1)
    if len(bent):
        bent_mask = np.zeros(n_seg, dtype=bool)
        bent_mask[bent] = True
        st = bent_mask[s_seg]
        pts_node = np.concatenate([a_node[st], seg_b[bent]])
        pts_seg = np.concatenate([s_seg[st], bent])
        pts_pos = np.concatenate([s_idx[st], s_idx[last_step[bent]] + 1])
        order = np.lexsort((pts_pos, pts_seg))
        pts_seg = pts_seg[order]
        geom[bent] = shapely.linestrings(
            xy[pts_node[order]], indices=np.unique(pts_seg, return_inverse=True)[1]
        )
    return geom


def _segment_ends(seg: _Segments, nodes: _Nodes, split: _SplitNodes):
    """Graph nodes are segment ends only; interior nodes live on in the geometry. Returns the
    segments, nodes, barriers and via nodes with the nodes renumbered."""
    n_seg = len(seg.a)
    ends, end_of = _used(np.concatenate([seg.a, seg.b]), len(nodes.ids))
    seg = replace(seg, a=end_of[:n_seg], b=end_of[n_seg:])
    barrier_keep = np.isin(split.barrier_nodes, ends)
    on_net = split.on_net.copy()
    on_net[np.flatnonzero(on_net)[~barrier_keep]] = False
    split = replace(
        split,
        barrier_nodes=np.searchsorted(ends, split.barrier_nodes[barrier_keep]),
        on_net=on_net,
        vpos=np.searchsorted(ends, split.vpos),
        split=None,
    )
    return seg, nodes.take(ends), split


def _sorted_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids, return_inverse=True)`` by hashing, then sorting only the distinct ids
    (each node is listed about twice: a third of the time of sorting them all)."""
    codes, distinct = pd.factorize(ids)
    order = np.argsort(distinct)
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[order] = np.arange(len(distinct))
    return distinct[order], rank[codes]


def _used(index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(index, return_inverse=True)`` for indices into ``size`` items: a mask of the
    used ones and their running count instead of a sort."""
    used = np.zeros(size, dtype=bool)
    used[index] = True
    return np.flatnonzero(used), np.cumsum(used)[index] - 1


@dataclass(frozen=True, eq=False)
class _DirectedEdges:
    """Each segment as one or two directed edges ``u → v`` (by the way's own one-way tags):
    its segment, geometry ``u → v``, length (metres), tag set, one-way."""

    u: np.ndarray
    v: np.ndarray
    seg: np.ndarray
    geom: np.ndarray
    length: np.ndarray
    sig: np.ndarray
    oneway: np.ndarray

    @classmethod
    def of(cls, seg: _Segments, sig_table: pd.DataFrame) -> _DirectedEdges:
        direction = _directions(sig_table)  # per sig: 0 both, 1 forward only, -1 backward only
        seg_dir = direction[seg.sig]
        fwd = np.flatnonzero(seg_dir >= 0)
        back = np.flatnonzero(seg_dir <= 0)
        e_seg = np.concatenate([fwd, back])
        e_fwd = np.r_[np.ones(len(fwd), bool), np.zeros(len(back), bool)]
        u = np.where(e_fwd, seg.a[e_seg], seg.b[e_seg])
        v = np.where(e_fwd, seg.b[e_seg], seg.a[e_seg])
        e_geom = seg.geom[e_seg]
        rev = ~e_fwd & ~pd.isna(e_geom)
        if rev.any():
            e_geom[rev] = shapely.reverse(e_geom[rev])
        return cls(u, v, e_seg, e_geom, seg.length[e_seg], seg.sig[e_seg], seg_dir[e_seg] != 0)


def _edge_frame(node_ids, e: _DirectedEdges, tags: dict, e_way) -> pd.DataFrame:
    """One row per directed edge: ``u``, ``v`` (OSM ids), ``key``, ``highway``, ``name``,
    ``oneway``, ``way_id``."""
    return pd.DataFrame(
        {
            "u": node_ids[e.u],
            "v": node_ids[e.v],
            "key": _parallel_keys(e.u, e.v, len(node_ids)),
            "highway": _text_column(tags["highway"]),
            "name": _text_column(tags["name"]),
            "oneway": e.oneway,
            "way_id": e_way,
        }
    )


def _parallel_keys(u: np.ndarray, v: np.ndarray, n_nodes: int) -> np.ndarray:
    """Parallel edges between the same nodes get distinct keys 0, 1, … in edge order, as in a
    MultiDiGraph (a stable sort by node pair, then the rank inside each run)."""
    pair = u.astype(np.int64) * n_nodes + v
    order = np.argsort(pair, kind="stable")
    sorted_pair = pair[order]
    run_start = np.r_[True, sorted_pair[1:] != sorted_pair[:-1]]
    rank = np.arange(len(pair))
    first = np.maximum.accumulate(np.where(run_start, rank, 0))
    keys = np.empty(len(pair), dtype=np.int64)
    keys[order] = rank - first
    return keys


def _text_column(column: TagColumn) -> pd.api.extensions.ExtensionArray:
    """A tag's values per edge as pandas text: the few distinct values converted once, then
    taken by code (converting one Python string per edge was most of the frame's time)."""
    return pd.Series(column.uniques).take(column.codes).array


def _read_stats(raw, p: _Pieces, nodes, seg, e, split, restrictions) -> dict:
    """Figures of the read for validation (``GraphTable.stats``)."""
    return {
        "ways_read": int(len(raw.way_ids)),
        "ways_cut_at_edge": int(p.n_cut_ways),
        "missing_node_refs": p.n_missing,
        "pieces_dropped": p.n_dropped,
        "nodes": int(len(nodes.ids)),
        "edges": int(len(e.u)),
        "segments": int(len(seg.a)),
        "oneway_edges": int(e.oneway.sum()),
        "barrier_nodes": int(len(split.barrier_nodes)),
        "restrictions": int(len(restrictions)),
        "restrictions_via_way_skipped": int(raw.via_way_skipped),
        "restrictions_unmatched": int(raw.restrictions_malformed)
        + int(len(split.rest) - restrictions["relation_id"].nunique()),
    }


def _directions(sig_table: pd.DataFrame) -> np.ndarray:
    """Per distinct tag set: 0 two-way, 1 one-way along the way, -1 one-way against it."""
    oneway = sig_table["oneway"].str.strip().str.lower().to_numpy(dtype=object)
    junction = sig_table["junction"].to_numpy(dtype=object)
    highway = sig_table["highway"].to_numpy(dtype=object)
    implied = np.isin(junction, list(_ROUNDABOUT)) | (highway == "motorway")
    out = np.zeros(len(sig_table), dtype=np.int64)
    out[np.isin(oneway, list(_ONEWAY_FWD)) | (implied & ~np.isin(oneway, list(_ONEWAY_NO)))] = 1
    out[np.isin(oneway, list(_ONEWAY_BACK))] = -1
    return out


def _node_tags(n_nodes, barrier_nodes, barrier_tags, on_net) -> dict[str, TagColumn]:
    """Per node TagColumns of the barrier tags ("" on nodes without a barrier)."""
    rows = [t for t, ok in zip(barrier_tags, on_net, strict=True) if ok]
    out = {}
    for i, key in enumerate(NODE_TAGS):
        vals = [r[i] for r in rows]
        c, uniq = pd.factorize(np.asarray([""] + vals, dtype=object))
        codes = np.zeros(n_nodes, dtype=_code_type(len(uniq)))
        codes[barrier_nodes] = c[1:]
        out[key] = TagColumn(codes, np.asarray(uniq, dtype=object))
    return out


def _code_type(n_values: int) -> np.dtype:
    """The smallest signed integer type for the codes of ``n_values`` distinct tag values: a
    graph keeps 21 tags per edge, and as int64 their codes were most of its memory (280 MiB of
    457 at 1.7 M edges); the values, and indexing ``uniques`` with them, are unchanged."""
    return np.min_scalar_type(-max(n_values, 1))


def _restrictions(rest, via_ok, vpos, e_way, u, v) -> pd.DataFrame:
    """Via-node restrictions as directed edges: arriving along the from-way, leaving on the to-way.

    A restriction whose ways do not touch its via node in the file (cut off by the extract,
    or mis-tagged) is dropped and counted in ``stats["restrictions_unmatched"]``.
    """
    cols = ["from_edge", "via_node", "to_edge", "kind", "restriction", "relation_id"]
    rest = rest[via_ok].assign(via_node=vpos[via_ok])
    if not len(rest):
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c in ("kind", "restriction") else np.int64) for c in cols}
        )
    arrive = pd.DataFrame({"from_way": e_way, "via_node": v, "from_edge": np.arange(len(u))})
    leave = pd.DataFrame({"to_way": e_way, "via_node": u, "to_edge": np.arange(len(u))})
    m = rest.merge(arrive, on=["from_way", "via_node"]).merge(leave, on=["to_way", "via_node"])
    # from == to (no_u_turn): only the edge straight back is meant, not the way's continuation.
    same = (m["from_way"] == m["to_way"]).to_numpy()
    back = u[m["from_edge"].to_numpy()] == v[m["to_edge"].to_numpy()]
    m = m[~same | back].copy()
    # A from- or to-way passing through its via node (OSM asks for ways that end there) leaves
    # the side of the turn ambiguous: such relations are dropped and counted as unmatched.
    per = m.groupby("relation_id").agg(f=("from_edge", "nunique"), t=("to_edge", "nunique"))
    ambiguous = per.index[(per["f"] > 1) | (per["t"] > 1)]
    m = m[~m["relation_id"].isin(ambiguous) | (m["from_way"] == m["to_way"])].copy()
    m["kind"] = np.where(m["restriction"].str.startswith("only_"), "only", "no")
    return m[cols].drop_duplicates(["from_edge", "via_node", "to_edge"]).reset_index(drop=True)
