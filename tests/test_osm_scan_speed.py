"""The fast OSM scan (libosmium writes the ways as OPL text, numpy parses it) builds exactly the
graph of the per-node pyosmium scan it replaced (tests/_osm_reference.py): every array, tag,
cut-way count and turn restriction, on the demo, the region, the clipped Lujiazui extract, a
synthetic grid PBF and a hand-written file of awkward cases in each format."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import numpy as np
import osmium
import pandas as pd
import pytest
from osmium.osm.mutable import Node, Relation, Way

import firegrid.spatial.network.osm as osm_module
from firegrid.spatial.network.osm import read_osm
from firegrid.spatial.network.profiles import WAY_TAGS
from tests._osm_reference import graph_differences, reference_scan
from tests._osmxml import node, osm_xml, restriction, way

ROOT = Path(__file__).resolve().parents[1]
CLIPPED = ROOT.parent / "shared" / "data" / "shanghai_roads" / "lujiazui_clipped.osm.pbf"


def _old_and_new(path: Path, monkeypatch, **kw):
    new = read_osm(path, **kw)
    with monkeypatch.context() as m:
        m.setattr(osm_module, "_scan", reference_scan)
        old = read_osm(path, **kw)
    return old, new


def _assert_identical(path: Path, monkeypatch, **kw):
    old, new = _old_and_new(path, monkeypatch, **kw)
    assert graph_differences(old, new) == []
    return new


# ---------------------------------------------------------------------- files
def _awkward_items() -> list[tuple]:
    """Escapes in tags, cut ways, repeated and missing nodes, parallel ways, a loop, big and
    negative ids, barriers on and off the streets, restrictions of every kind the reader sorts."""
    big = 5_000_000_000
    barriers = {4: {"barrier": "gate", "access": "private", "motor_vehicle": "yes"},
                11: {"barrier": "bollard"}}  # fmt: skip
    nodes = [node(i, i % 4, i // 4, **barriers.get(i, {})) for i in range(1, 13)]
    nodes += [node(-1, -1, 0), node(-2, -1, 1), node(big + 1, 5, 0), node(big + 2, 5, 1),
              node(100, 9, 9, barrier="gate"), node(13, 0.1234567, 3.7654321)]  # fmt: skip
    ways = [
        way(10, [1, 2, 3], highway="residential", name="中山南路",
            **{"name:en": "Zhongshan Rd, South=1 %20 @x"}),
        way(11, [3, 4, 5], highway="primary", name="a,b=c%d e@f\tg\nh 🚒 \\ ' \" <&>",
            maxspeed="40", oneway="yes"),
        way(12, [5, 6, 6, 7], highway="tertiary", oneway="-1"),
        way(13, [2, 99, 98, 4, 8, 97], highway="service", service="alley"),
        way(14, [96, 1], highway="residential"),
        way(15, [1, 9], highway="residential", name="甲"),
        way(16, [1, 9], highway="residential", name="乙"),
        way(17, [9, 10, 11, 9], highway="primary", junction="roundabout"),
        way(18, [4, 10], barrier="fence"),
        way(19, [8, 11, 13], highway="unclassified", name="", maxspeed=""),
        way(20, [], highway="residential"),
        way(-5, [-1, -2, 1], highway="footway", access="no", foot="yes"),
        way(21, [big + 1, big + 2, 12], highway="motorway", ref="G2"),
        way(22, [5, 12], type="multipolygon"),
        way(23, [7, 8], highway="living_street", oneway="reversible", layer="-1", tunnel="yes"),
    ]  # fmt: skip
    rels = [
        restriction(1, "no_left_turn", 10, 3, 11),
        restriction(2, "only_straight_on", 11, 12, 12, via_type="way"),
        restriction(3, "no_right_turn", 11, 5, 12, except_="motorcar"),
        ("relation", 4, [("way", 11, "from"), ("node", 5, "via"), ("way", 11, "to")],
         {"type": "restriction", "restriction:motorcar": "no_u_turn"}),
        ("relation", 5, [("way", 10, "from"), ("way", 15, "from"), ("node", 1, "via"),
                         ("way", 16, "to")], {"type": "restriction", "restriction": "no_entry"}),
        restriction(6, "no_straight_on", 15, 100, 16),
        ("relation", 7, [("way", 10, "")], {"type": "route", "route": "bus"}),
        restriction(8, "only_left_turn", 17, 9, 15),
    ]  # fmt: skip
    rels = [(r[0], r[1], r[2], {k.rstrip("_"): v for k, v in r[3].items()}) for r in rels]
    return nodes + ways + rels


def _write_awkward(folder: Path, suffix: str) -> Path:
    text = osm_xml(_awkward_items())
    # A key repeated on one way (invalid OSM, seen in old edits): the first value counts.
    text = text.replace('<tag k="highway" v="living_street"/>',
                        '<tag k="name" v="first"/><tag k="name" v="second"/>'
                        '<tag k="highway" v="living_street"/>')  # fmt: skip
    xml = folder / "awkward.osm"
    xml.write_text(text, encoding="utf-8")
    if suffix == ".osm":
        return xml
    if suffix == ".osm.gz":
        (path := folder / "awkward.osm.gz").write_bytes(gzip.compress(text.encode()))
    elif suffix == ".osm.bz2":
        (path := folder / "awkward.osm.bz2").write_bytes(bz2.compress(text.encode()))
    else:
        path = folder / "awkward.osm.pbf"
        with osmium.SimpleWriter(str(path)) as w:
            for obj in osmium.FileProcessor(str(xml)):
                w.add(obj)
    return path


def _write_grid(path: Path, side: int = 40) -> Path:
    """A street grid as PBF, like benchmarks/bench_network.py's: 100 m blocks, ways of five
    blocks, every 10th street primary, every 4th one-way; a few gates and one restriction."""
    # Fixed-point coordinates (1e-7 degrees) jittered so that every last digit occurs.
    rng = np.random.default_rng(0)
    fx = 1_213_000_000 + np.arange(side) * 10_000 + rng.integers(0, 1000, (side, side))
    fy = 310_000_000 + np.arange(side)[:, None] * 10_000 + rng.integers(0, 1000, (side, side))
    with osmium.SimpleWriter(str(path)) as w:
        for i in range(side):
            for j in range(side):
                nid = 1 + i * side + j
                tags = {"barrier": "gate", "access": "no"} if nid % 97 == 0 else {}
                loc = osmium.osm.Location(fx[i, j] / 1e7, fy[i, j] / 1e7)
                w.add_node(Node(id=nid, location=loc, tags=tags))
        wid = 1
        for horizontal in (True, False):
            for i in range(side):
                ids = [1 + (i * side + j if horizontal else j * side + i) for j in range(side)]
                tags = {"highway": "primary", "name": f"干路{i}"} if i % 10 == 0 else (
                    {"highway": "residential", "oneway": "yes"} if i % 4 == 1
                    else {"highway": "residential"})  # fmt: skip
                for k in range(0, side - 1, 5):
                    w.add_way(Way(id=wid, nodes=ids[k : k + 6], tags=tags))
                    wid += 1
        # Ways 1 and 2 run east along the first row, meeting at node 6.
        w.add_relation(Relation(id=1, members=[("w", 1, "from"), ("n", 6, "via"),
                                               ("w", 2, "to")],
                                tags={"type": "restriction", "restriction": "no_u_turn"}))  # fmt: skip
    return path


# ---------------------------------------------------------------------- equality
@pytest.mark.parametrize("suffix", [".osm", ".osm.gz", ".osm.bz2", ".osm.pbf"])
def test_awkward_file_identical_to_the_per_node_scan(tmp_path, monkeypatch, suffix):
    t = _assert_identical(_write_awkward(tmp_path, suffix), monkeypatch, crs=32651)
    s = t.stats
    # The file exercises what it claims to: cuts, a dropped piece, barriers, restrictions.
    # Ways 13 and 14 lack nodes 96-99; way -5 its negative nodes, which libosmium's location
    # cache does not hold.
    assert s["ways_cut_at_edge"] == 3 and s["missing_node_refs"] == 6
    assert s["pieces_dropped"] >= 1 and s["barrier_nodes"] == 2
    assert s["restrictions"] >= 2 and s["restrictions_via_way_skipped"] == 1
    assert s["restrictions_unmatched"] >= 2
    names = set(t.tags["name"].uniques)
    assert {"中山南路", "a,b=c%d e@f\tg\nh 🚒 \\ ' \" <&>", "first", ""} <= names
    assert {10, 11, 12, 13, 15, 16, 17, 19, 21, 23} == set(t.edges["way_id"])
    assert 5_000_000_001 in set(t.node_ids)  # an end of way 21


def test_demo_and_region_identical(monkeypatch):
    for path in (ROOT / "data" / "demo" / "roads.osm", ROOT / "data" / "region" / "roads.osm"):
        _assert_identical(path, monkeypatch)


@pytest.mark.skipif(
    not CLIPPED.exists(), reason=f"shared clipped Lujiazui extract absent: {CLIPPED}"
)
def test_clipped_extract_identical(monkeypatch):
    t = _assert_identical(CLIPPED, monkeypatch)
    assert t.stats["ways_cut_at_edge"] > 0 and t.stats["barrier_nodes"] > 0


def test_grid_pbf_identical(tmp_path, monkeypatch):
    t = _assert_identical(_write_grid(tmp_path / "grid.osm.pbf"), monkeypatch)
    assert len(np.unique(np.rint(t.lonlat * 1e7) % 10)) == 10
    assert t.stats["barrier_nodes"] > 0 and t.stats["restrictions"] == 1


def test_coordinates_exact_worldwide(tmp_path, monkeypatch):
    # Fixed-point coordinates anywhere on earth come back to the last 1e-7 degree (parsing
    # OPL's decimal degrees and truncating instead of rounding would miss some of them).
    rng = np.random.default_rng(1)
    n = 400
    fixed = np.column_stack([rng.integers(-1_799_999_999, 1_800_000_000, n),
                             rng.integers(-850_000_000, 850_000_000, n)])  # fmt: skip
    path = tmp_path / "world.osm.pbf"
    with osmium.SimpleWriter(str(path)) as w:
        for i, (fx, fy) in enumerate(fixed, start=1):
            w.add_node(Node(id=i, location=osmium.osm.Location(fx / 1e7, fy / 1e7)))
        for k in range(n // 2):
            w.add_way(Way(id=k + 1, nodes=[2 * k + 1, 2 * k + 2], tags={"highway": "road"}))
    t = _assert_identical(path, monkeypatch, crs=3857)
    np.testing.assert_array_equal(np.rint(t.lonlat * 1e7).astype(np.int64), fixed[t.node_ids - 1])


@pytest.mark.parametrize("which", ["awkward", "grid", "clipped"])
def test_node_numbering_identical_to_numpy_unique(tmp_path, monkeypatch, which):
    # The build numbers nodes by hashing (ids) and by a mask (segment ends) instead of
    # np.unique's sort: the same numbering, so the same graph.
    if which == "clipped" and not CLIPPED.exists():
        pytest.skip(f"shared clipped Lujiazui extract absent: {CLIPPED}")
    path = {"awkward": lambda: _write_awkward(tmp_path, ".osm.pbf"),
            "grid": lambda: _write_grid(tmp_path / "grid.osm.pbf"),
            "clipped": lambda: CLIPPED}[which]()  # fmt: skip
    fast = read_osm(path, crs=32651)
    with monkeypatch.context() as m:
        m.setattr(osm_module, "_sorted_ids", lambda ids: np.unique(ids, return_inverse=True))
        m.setattr(osm_module, "_used", lambda index, size: np.unique(index, return_inverse=True))
        plain = read_osm(path, crs=32651)
    assert graph_differences(plain, fast) == []


# ---------------------------------------------------------------------- the edge frame
def test_edge_keys_and_text_columns_match_pandas(tmp_path):
    t = read_osm(_write_awkward(tmp_path, ".osm"), crs=32651)
    e = t.edges
    keys = e.groupby(["u", "v"], sort=False).cumcount().to_numpy()
    assert keys.max() >= 1  # parallel ways 15 and 16 give parallel edges
    np.testing.assert_array_equal(e["key"].to_numpy(), keys)
    for col, tag in (("highway", t.highway), ("name", t.tags["name"])):
        expected = pd.DataFrame({col: tag.values()})[col]
        pd.testing.assert_series_equal(e[col], expected, check_exact=True)


def test_edge_tags_are_their_own_ways_tags(tmp_path):
    # Against pyosmium's own tag lists: every kept tag of every edge is its way's value ("" when
    # absent; the first of a repeated key), whatever integer type holds the codes.
    path = _write_awkward(tmp_path, ".osm")
    t = read_osm(path, crs=32651)
    way_tags = {}
    for w in osmium.FileProcessor(str(path), osmium.osm.WAY):
        tags: dict[str, str] = {}
        for tag in w.tags:
            tags.setdefault(tag.k, tag.v)
        way_tags[w.id] = tags
    ways = t.edges["way_id"].to_numpy()
    for key in WAY_TAGS:
        expected = [way_tags[w].get(key, "") for w in ways]
        assert t.tags[key].values().tolist() == expected, key
        assert t.tags[key].codes.dtype.kind == "i" and t.tags[key].codes.itemsize == 1


def test_no_street_inside_the_file_is_one_clear_error(tmp_path):
    from firegrid.spatial.errors import NetworkError

    path = tmp_path / "cut.osm"
    path.write_text(osm_xml([node(1, 0, 0), way(10, [1, 2, 3], highway="residential")]),
                    encoding="utf-8")  # fmt: skip
    with pytest.raises(NetworkError, match="cut.osm: no street has two nodes"):
        read_osm(path)
