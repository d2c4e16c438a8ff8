"""Small hand-written OSM XML files for reader and access-rule tests."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

LON0, LAT0 = 121.50, 31.23
STEP = 0.001  # degrees: about 95 m east-west, 111 m north-south at Shanghai


def node(nid: int, i: float, j: float, **tags: str) -> tuple:
    """A node ``i`` steps east and ``j`` steps north of the origin."""
    return ("node", nid, LON0 + i * STEP, LAT0 + j * STEP, tags)


def way(wid: int, refs: list[int], **tags: str) -> tuple:
    return ("way", wid, refs, tags)


def restriction(rid: int, value: str, frm: int, via: int, to: int, *, via_type: str = "node",
                **tags: str) -> tuple:  # fmt: skip
    return ("relation", rid, [("way", frm, "from"), (via_type, via, "via"), ("way", to, "to")],
            {"type": "restriction", "restriction": value, **tags})  # fmt: skip


def _tags(tags: dict) -> str:
    return "".join(f"<tag k={quoteattr(k)} v={quoteattr(str(v))}/>" for k, v in tags.items())


def osm_xml(items: list[tuple]) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="tests">']
    for it in items:
        if it[0] == "node":
            _, nid, lon, lat, tags = it
            lines.append(f'<node id="{nid}" version="1" lat="{lat:.7f}" lon="{lon:.7f}">'
                         f"{_tags(tags)}</node>")  # fmt: skip
    for it in items:
        if it[0] == "way":
            _, wid, refs, tags = it
            nds = "".join(f'<nd ref="{r}"/>' for r in refs)
            lines.append(f'<way id="{wid}" version="1">{nds}{_tags(tags)}</way>')
    for it in items:
        if it[0] == "relation":
            _, rid, members, tags = it
            mem = "".join(f'<member type="{t}" ref="{r}" role="{role}"/>' for t, r, role in members)
            lines.append(f'<relation id="{rid}" version="1">{mem}{_tags(tags)}</relation>')
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


def write_osm(path: Path, items: list[tuple]) -> Path:
    path.write_text(osm_xml(items), encoding="utf-8")
    return path
