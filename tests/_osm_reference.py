"""The OSM scan as it was before the OPL pass (frozen at de12f69), as a reference.

It walks every way's node list in Python (``n.ref``, ``n.x``, ``n.y`` per node): slow, but
the plain pyosmium reading the fast scan must reproduce exactly. Returns an object with the
attributes ``read_osm``'s build step reads from its own scan. ``graph_differences`` compares two
GraphTables field by field.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from firegrid.spatial.network.profiles import NODE_TAGS, WAY_TAGS

_ENGINE_EXCEPT = frozenset({"motorcar", "motor_vehicle", "emergency"})


def reference_scan(path: Path, fmt: str) -> SimpleNamespace:
    """The highway ways (ids, kept-tag sets, node refs and fixed-point x / y), the barrier
    nodes and the via-node restrictions of an OSM file, one Python call per way node."""
    import osmium

    raw = SimpleNamespace(way_ids=[], way_sig=[], way_len=[], refs=[], x=[], y=[], sigs={},
                          barrier_ids=[], barrier_tags=[], restrictions=[], via_way_skipped=0,
                          restrictions_malformed=0)  # fmt: skip
    proc = (
        osmium.FileProcessor(osmium.io.File(str(path), fmt))
        .with_locations("flex_mem")
        .with_filter(osmium.filter.KeyFilter("highway", "barrier", "restriction", "type"))
    )
    for obj in proc:
        if obj.is_way():
            tags = obj.tags
            if "highway" not in tags:
                continue
            sig = tuple(tags.get(k, "") for k in WAY_TAGS)
            code = raw.sigs.setdefault(sig, len(raw.sigs))
            nodes = obj.nodes
            raw.refs.extend([n.ref for n in nodes])
            raw.x.extend([n.x for n in nodes])
            raw.y.extend([n.y for n in nodes])
            raw.way_ids.append(obj.id)
            raw.way_sig.append(code)
            raw.way_len.append(len(nodes))
        elif obj.is_node():
            if "barrier" in obj.tags:
                raw.barrier_ids.append(obj.id)
                raw.barrier_tags.append(tuple(obj.tags.get(k, "") for k in NODE_TAGS))
        elif obj.is_relation():
            _restriction(obj, raw)
    return raw


def _restriction(rel: Any, raw: SimpleNamespace) -> None:
    tags = rel.tags
    if tags.get("type") != "restriction":
        return
    value = (
        tags.get("restriction")
        or tags.get("restriction:motorcar")
        or tags.get("restriction:motor_vehicle")
        or tags.get("restriction:vehicle")
    )
    if not value or not value.startswith(("no_", "only_")):
        return
    if {e.strip() for e in tags.get("except", "").split(";")} & _ENGINE_EXCEPT:
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


def graph_differences(a, b, name: str = "") -> list[str]:
    """Names of the parts of two GraphTables (or their members) that are not identical:
    same dtype, same values, geometries equal vertex for vertex (WKB)."""
    if dataclasses.is_dataclass(a):
        return [d for f in dataclasses.fields(a)
                for d in graph_differences(getattr(a, f.name), getattr(b, f.name), f.name)]  # fmt: skip
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return [name]
        return [d for k in a for d in graph_differences(a[k], b[k], f"{name}.{k}")]
    if isinstance(a, pd.DataFrame):
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        except AssertionError:
            return [name]
        return []
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return [name]
        if a.dtype == object:
            wkb = [(x.wkb if hasattr(x, "wkb") else x, y.wkb if hasattr(y, "wkb") else y)
                   for x, y in zip(a.ravel(), b.ravel(), strict=True)]  # fmt: skip
            return [] if all(x == y for x, y in wkb) else [name]
        return [] if np.array_equal(a, b) else [name]
    return [] if a == b else [name]
