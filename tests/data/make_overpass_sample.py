"""Make overpass_lujiazui.json: a recorded-style Overpass response cut from the Shanghai extract.

Run from the repository root: ``python tests/data/make_overpass_sample.py``. Keeps the highway
ways with a node inside a small box in Lujiazui and every node they use (what Overpass returns
for ``(way["highway"](poly:...);>;);out;``). Data © OpenStreetMap contributors, ODbL.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

SRC = Path(__file__).resolve().parents[2].parent / "shared/data/shanghai_roads/shanghai_center.osm"
OUT = Path(__file__).resolve().parent / "overpass_lujiazui.json"
BOX = (121.500, 31.232, 121.512, 31.240)  # west, south, east, north (degrees)


def main() -> None:
    root = ET.parse(SRC).getroot()
    nodes = {}
    for n in root.iter("node"):
        nodes[int(n.get("id"))] = (float(n.get("lat")), float(n.get("lon")), n)
    west, south, east, north = BOX
    ways = []
    used: set[int] = set()
    for w in root.iter("way"):
        refs = [int(nd.get("ref")) for nd in w.iter("nd")]
        tags = {t.get("k"): t.get("v") for t in w.iter("tag")}
        if "highway" not in tags or not all(r in nodes for r in refs):
            continue
        inside = any(south <= nodes[r][0] <= north and west <= nodes[r][1] <= east for r in refs)
        if inside:
            ways.append({"type": "way", "id": int(w.get("id")), "nodes": refs, "tags": tags})
            used.update(refs)
    elements = [
        {"type": "node", "id": r, "lat": nodes[r][0], "lon": nodes[r][1]} for r in sorted(used)
    ] + ways
    doc = {
        "version": 0.6,
        "generator": "FireGrid test stand-in (cut from shanghai_center.osm)",
        "osm3s": {
            "copyright": "The data included in this document is from www.openstreetmap.org. "
            "The data is made available under ODbL."
        },
        "elements": elements,
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"{OUT}: {len(ways)} ways, {len(used)} nodes, {OUT.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
