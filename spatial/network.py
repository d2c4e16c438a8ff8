"""Road networks from OpenStreetMap: place name or polygon (online), OSM XML/PBF file, GraphML.

Every reader returns an osmnx ``MultiDiGraph`` projected to the working CRS (metres), one-way
streets kept as single-direction edges, and the ``highway``, ``oneway``, ``maxspeed``, ``name``,
``service`` and ``access`` tags kept on edges. Which ways a vehicle may use is decided later by
its profile (:mod:`spatial.profiles`), so one graph serves engines, e-bikes and crews on foot.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import networkx as nx
import osmnx as ox
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from spatial.crs import WGS84, utm_crs_for
from spatial.errors import NetworkError

XML_SUFFIXES = (".osm", ".xml", ".osm.xml")
PBF_SUFFIXES = (".pbf", ".osm.pbf")
GRAPHML_SUFFIXES = (".graphml",)

# Tags osmnx keeps on edges. Profiles need highway/maxspeed/service/access; oneway is needed to
# build directed edges; name labels results.
EDGE_TAGS = ("highway", "oneway", "maxspeed", "name", "service", "access", "junction", "lanes",
             "ref", "bridge", "tunnel", "width")  # fmt: skip


def read_network(
    source: str | os.PathLike | BaseGeometry,
    *,
    crs: Any = None,
    network_type: str = "all",
    simplify: bool = True,
    retain_all: bool = True,
    source_crs: Any = None,
) -> nx.MultiDiGraph:
    """Read a road network and project it to the working CRS.

    Parameters
    ----------
    source : str, path or shapely Polygon/MultiPolygon
        A file path (``.osm``/``.xml`` OSM XML, ``.pbf`` OSM PBF, ``.graphml`` saved osmnx graph),
        a place name to geocode and download (e.g. ``"陆家嘴街道, 浦东新区, 上海市"``, needs
        internet), or a polygon whose streets to download (WGS84 degrees unless ``source_crs``).
    crs : CRS-like, optional
        Working CRS (projected, metres). Default: the UTM zone of the network's centre.
    network_type : str
        osmnx network type for downloads (``"all"`` keeps footways and service roads so crews on
        foot can use them; engine profiles drop what engines cannot use). Files are read whole.
    simplify : bool
        Merge chains of degree-2 nodes into single edges with geometry (osmnx simplification).
    retain_all : bool
        Keep disconnected pieces (buildings on them are flagged later, not silently lost).
    source_crs : CRS-like, optional
        CRS of a polygon ``source`` (default WGS84).

    Returns
    -------
    networkx.MultiDiGraph
        Projected osmnx graph; ``G.graph["crs"]`` is the working CRS.

    Raises
    ------
    NetworkError
        The file is missing or unreadable, the download fails, or the network is empty.
    """
    _configure_osmnx()
    if isinstance(source, BaseGeometry):
        G = _from_polygon(source, source_crs, network_type, simplify, retain_all)
    else:
        text = os.fspath(source)
        path = Path(text)
        lower = text.lower()
        if lower.endswith(GRAPHML_SUFFIXES):
            G = _from_graphml(path)
        elif lower.endswith(PBF_SUFFIXES):
            G = _from_pbf(path, simplify, retain_all)
        elif lower.endswith(XML_SUFFIXES):
            G = _from_xml(path, simplify, retain_all)
        elif path.exists():
            raise NetworkError(
                f"{path}: unknown road-network file type; use .osm/.xml (OSM XML), .pbf or .graphml"
            )
        else:
            G = _from_place(text, network_type, simplify, retain_all)
    if G.number_of_nodes() == 0 or G.number_of_edges() == 0:
        raise NetworkError(f"{_label(source)}: the road network is empty (no usable ways)")
    return project_network(G, crs=crs)


def project_network(G: nx.MultiDiGraph, *, crs: Any = None) -> nx.MultiDiGraph:
    """Project a graph to ``crs`` (default: UTM zone of its centre); a copy, metres."""
    current = pyproj.CRS.from_user_input(G.graph.get("crs", WGS84))
    if crs is None:
        if current.is_projected:
            return G
        xs = [d["x"] for _, d in G.nodes(data=True)]
        ys = [d["y"] for _, d in G.nodes(data=True)]
        crs = utm_crs_for((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
    target = pyproj.CRS.from_user_input(crs)
    if not target.is_projected:
        raise NetworkError(f"the working CRS must be projected (metres), got {target.name}")
    if current.equals(target):
        return G
    return ox.project_graph(G, to_crs=target)


def save_network(G: nx.MultiDiGraph, path: str | os.PathLike) -> Path:
    """Save a graph as GraphML (reload with :func:`read_network`). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ox.save_graphml(G, path)
    return path


# ---------------------------------------------------------------------- readers
def _configure_osmnx() -> None:
    tags = list(ox.settings.useful_tags_way)
    for tag in EDGE_TAGS:
        if tag not in tags:
            tags.append(tag)
    ox.settings.useful_tags_way = tags


def _label(source: Any) -> str:
    return "polygon" if isinstance(source, BaseGeometry) else os.fspath(source)


def _from_xml(path: Path, simplify: bool, retain_all: bool) -> nx.MultiDiGraph:
    if not path.exists():
        raise NetworkError(f"{path}: road network file not found")
    try:
        return ox.graph_from_xml(path, simplify=simplify, retain_all=retain_all)
    except Exception as exc:  # osmnx raises many kinds on bad XML
        raise NetworkError(f"{path}: cannot read OSM XML ({type(exc).__name__}: {exc})") from exc


def _from_graphml(path: Path) -> nx.MultiDiGraph:
    if not path.exists():
        raise NetworkError(f"{path}: road network file not found")
    try:
        G = ox.load_graphml(path)
    except Exception as exc:
        raise NetworkError(f"{path}: cannot read GraphML ({type(exc).__name__}: {exc})") from exc
    if "crs" not in G.graph:
        raise NetworkError(f"{path}: GraphML has no 'crs' graph attribute (not an osmnx graph?)")
    return G


def _from_pbf(path: Path, simplify: bool, retain_all: bool) -> nx.MultiDiGraph:
    """Read OSM PBF by writing its highways to a temporary OSM XML file with pyosmium."""
    if not path.exists():
        raise NetworkError(f"{path}: road network file not found")
    try:
        import osmium
    except ImportError as exc:
        raise NetworkError(
            f"{path}: reading .pbf needs the 'osmium' package (pip install osmium), or convert "
            "it first: osmium cat in.osm.pbf -o out.osm (osmium-tool) or osmconvert in.pbf "
            "-o=out.osm, then read the .osm file"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="firegrid_pbf_") as tmp:
        xml = Path(tmp) / "roads.osm"
        try:
            _pbf_highways_to_xml(osmium, path, xml)
        except Exception as exc:
            raise NetworkError(
                f"{path}: cannot read OSM PBF ({type(exc).__name__}: {exc})"
            ) from exc
        return _from_xml(xml, simplify, retain_all)


def _pbf_highways_to_xml(osmium: Any, pbf: Path, xml: Path) -> None:
    """Copy the highway ways of a PBF, and the nodes they use, into an OSM XML file."""
    node_ids: set[int] = set()
    # First pass: which nodes the highway ways reference (ways come after nodes in PBF order).
    for way in osmium.FileProcessor(str(pbf), osmium.osm.WAY).with_filter(
        osmium.filter.KeyFilter("highway")
    ):
        node_ids.update(n.ref for n in way.nodes)
    writer = osmium.SimpleWriter(str(xml), overwrite=True)
    try:
        for obj in osmium.FileProcessor(str(pbf), osmium.osm.NODE | osmium.osm.WAY):
            if obj.is_node():
                if obj.id in node_ids:
                    writer.add_node(obj)
            elif "highway" in obj.tags:
                writer.add_way(obj)
    finally:
        writer.close()


def _from_place(query: str, network_type: str, simplify: bool, retain_all: bool):
    if not query.strip():
        raise NetworkError("empty road-network source: give a file path, place name or polygon")
    try:
        return ox.graph_from_place(
            query, network_type=network_type, simplify=simplify, retain_all=retain_all
        )
    except Exception as exc:
        raise NetworkError(
            f"cannot download the road network of place '{query}' "
            f"({type(exc).__name__}: {exc}); if this was meant as a file path, it does not exist; "
            "offline, use an OSM XML/PBF or GraphML file"
        ) from exc


def _from_polygon(polygon, source_crs, network_type, simplify, retain_all):
    if not isinstance(polygon, shapely.Polygon | shapely.MultiPolygon):
        raise NetworkError(
            f"a geometry road-network source must be a Polygon, got {polygon.geom_type}"
        )
    if source_crs is not None and not pyproj.CRS.from_user_input(source_crs).equals(WGS84):
        tr = pyproj.Transformer.from_crs(source_crs, WGS84, always_xy=True)
        polygon = shapely.transform(polygon, lambda xy: __import__("numpy").column_stack(
            tr.transform(xy[:, 0], xy[:, 1])))  # fmt: skip
    try:
        return ox.graph_from_polygon(
            polygon, network_type=network_type, simplify=simplify, retain_all=retain_all
        )
    except Exception as exc:
        raise NetworkError(
            f"cannot download the road network inside the polygon ({type(exc).__name__}: {exc}); "
            "offline, use an OSM XML/PBF or GraphML file"
        ) from exc
