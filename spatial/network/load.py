"""Road networks from OpenStreetMap: OSM files (PBF/XML), GraphML, place name or polygon (online).

Every reader returns a :class:`~firegrid.spatial.network.routing.GraphTable` in the working CRS (metres): OSM
files are read straight into arrays with pyosmium (:mod:`firegrid.spatial.network.osm`: no networkx, each segment
with its own way's tags, clipped extracts cut at their edge); osmnx reads GraphML and downloads
by place or polygon, and its graph is then read into the same table. Which ways a vehicle may use
is decided later by its profile (:mod:`firegrid.spatial.network.profiles`), so one table serves engines, e-bikes
and crews on foot. ``GraphTable.to_networkx()`` gives analysts an osmnx MultiDiGraph back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pyproj
import shapely
from scipy.sparse.csgraph import connected_components, dijkstra
from shapely.geometry.base import BaseGeometry

from firegrid.spatial.errors import NetworkError
from firegrid.spatial.io.crs import WGS84, utm_crs_for
from firegrid.spatial.network.osm import osm_format, read_osm
from firegrid.spatial.network.profiles import WAY_TAGS, AccessParams, unknown_highways
from firegrid.spatial.network.routing import (
    GraphTable,
    RoutingGraph,
    graph_table,
    nearest_cost,
    snap,
)

# osmnx is imported inside the functions that need it (GraphML, downloads, projection of an
# osmnx graph): it takes seconds to import, longer than reading a district's OSM file.
GRAPHML_SUFFIXES = (".graphml",)


def read_network(
    source: str | os.PathLike | BaseGeometry,
    *,
    crs: Any = None,
    network_type: str = "all",
    source_crs: Any = None,
) -> GraphTable:
    """Read a road network in the working CRS.

    Parameters
    ----------
    source : str, path or shapely Polygon/MultiPolygon
        A file path (OSM ``.pbf``, ``.osm``/``.xml`` and their ``.bz2``/``.gz`` forms, read with
        pyosmium; ``.graphml`` saved osmnx graph), a place name to geocode and download (e.g.
        ``"陆家嘴街道, 浦东新区, 上海市"``, needs internet), or a polygon whose streets to download
        (WGS84 degrees unless ``source_crs``).
    crs : CRS-like, optional
        Working CRS (projected, metres). Default: the UTM zone of the network's centre.
    network_type : str
        osmnx network type for downloads (``"all"`` keeps footways and service roads so crews on
        foot can use them; engine profiles drop what engines cannot use). Files are read whole.
    source_crs : CRS-like, optional
        CRS of a polygon ``source`` (default WGS84).

    Returns
    -------
    GraphTable
        Directed edges and nodes in the working CRS, with ``stats`` for validation.

    Raises
    ------
    NetworkError
        The file is missing or unreadable, the download fails, or the network is empty; the
        message names the user's file.
    """
    if not isinstance(source, BaseGeometry):
        text = os.fspath(source)
        path = Path(text)
        if osm_format(text) is not None:
            return read_osm(path, crs=crs)
        if text.lower().endswith(GRAPHML_SUFFIXES):
            return graph_table(project_network(_from_graphml(path), crs=crs))
        if path.exists():
            raise NetworkError(
                f"{path}: unknown road-network file type; use .pbf, .osm/.xml (OSM, also "
                ".bz2/.gz) or .graphml"
            )
    _configure_osmnx()
    if isinstance(source, BaseGeometry):
        G = _from_polygon(source, source_crs, network_type)
    else:
        G = _from_place(os.fspath(source), network_type)
    if G.number_of_nodes() == 0 or G.number_of_edges() == 0:
        raise NetworkError(f"{_label(source)}: the road network is empty (no usable ways)")
    return graph_table(project_network(G, crs=crs))


def project_network(G: nx.MultiDiGraph, *, crs: Any = None) -> nx.MultiDiGraph:
    """Project a graph to ``crs`` (default: UTM zone of its centre); a copy, metres."""
    import osmnx as ox

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


def save_network(network: nx.MultiDiGraph | GraphTable, path: str | os.PathLike) -> Path:
    """Save a network as osmnx GraphML (reload with :func:`read_network`). Returns the path."""
    import osmnx as ox

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    G = network.to_networkx() if isinstance(network, GraphTable) else network
    ox.save_graphml(G, path)
    return path


# ---------------------------------------------------------------------- readers
def _configure_osmnx() -> None:
    import osmnx as ox

    tags = list(ox.settings.useful_tags_way)
    for tag in WAY_TAGS:
        if tag not in tags:
            tags.append(tag)
    ox.settings.useful_tags_way = tags


def _label(source: Any) -> str:
    return "polygon" if isinstance(source, BaseGeometry) else os.fspath(source)


def _from_graphml(path: Path) -> nx.MultiDiGraph:
    import osmnx as ox

    if not path.exists():
        raise NetworkError(f"{path}: road network file not found")
    try:
        G = ox.load_graphml(path)
    except Exception as exc:
        raise NetworkError(f"{path}: cannot read GraphML ({type(exc).__name__}: {exc})") from exc
    if "crs" not in G.graph:
        raise NetworkError(f"{path}: GraphML has no 'crs' graph attribute (not an osmnx graph?)")
    return G


def _from_place(query: str, network_type: str):
    import osmnx as ox

    if not query.strip():
        raise NetworkError("empty road-network source: give a file path, place name or polygon")
    try:
        # Unsimplified: each edge keeps its own way's tags (osmnx simplification merges ways
        # of different classes into one edge); retain_all keeps disconnected pieces to report.
        return ox.graph_from_place(
            query, network_type=network_type, simplify=False, retain_all=True
        )
    except Exception as exc:
        raise NetworkError(
            f"cannot download the road network of place '{query}' "
            f"({type(exc).__name__}: {exc}); if this was meant as a file path, it does not exist; "
            "offline, use an OSM XML/PBF or GraphML file"
        ) from exc


def _from_polygon(polygon, source_crs, network_type):
    import osmnx as ox

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
            polygon, network_type=network_type, simplify=False, retain_all=True
        )
    except Exception as exc:
        raise NetworkError(
            f"cannot download the road network inside the polygon ({type(exc).__name__}: {exc}); "
            "offline, use an OSM XML/PBF or GraphML file"
        ) from exc


# ---------------------------------------------------------------------- validation
@dataclass(frozen=True)
class NetworkReport:
    """What ``firegrid validate`` says about a road network.

    Attributes
    ----------
    summary : str
        One line: nodes, edges, one-way edges, ways cut, engine components.
    warnings : list of str
        Problems a user should act on (cut ways stranding buildings, unknown highway values).
    figures : dict
        The numbers behind them (keys as in :func:`network_report`).
    """

    summary: str
    warnings: list[str]
    figures: dict


def require_near(
    network: GraphTable | nx.MultiDiGraph,
    area: gpd.GeoDataFrame,
    *,
    source: str | os.PathLike | None = None,
) -> None:
    """Stop when the road network lies nowhere near the district.

    A network file of another city (or one read in the wrong coordinate system) would
    otherwise run to the end with every building unreachable.

    Parameters
    ----------
    network : GraphTable or osmnx graph
        The network in the working CRS (metres).
    area : GeoDataFrame
        A layer spanning the district (its grid cells), in the same CRS.
    source : str or path, optional
        The user's network file or place name, for the message.

    Raises
    ------
    NetworkError
        When the bounding boxes of the network's nodes and of ``area`` do not overlap.
    """
    table = graph_table(network)
    if area is None or not len(area) or not table.n_nodes:
        return
    x, y = table.xy[:, 0], table.xy[:, 1]
    net_box = shapely.box(x.min(), y.min(), x.max(), y.max())
    area_box = shapely.box(*area.total_bounds)
    if net_box.intersects(area_box):
        return
    gap_km = net_box.distance(area_box) / 1000.0
    raise NetworkError(
        f"{source or 'the road network'}: the streets lie {gap_km:,.1f} km from the district "
        "and do not overlap it; is this the network of another place, or in another "
        "coordinate system?"
    )


def network_report(
    network: GraphTable | nx.MultiDiGraph,
    *,
    buildings: gpd.GeoDataFrame | None = None,
    stations: gpd.GeoDataFrame | None = None,
    params: AccessParams | None = None,
) -> NetworkReport:
    """Check a road network for what would silently distort the analysis.

    Parameters
    ----------
    network : GraphTable or osmnx graph
        The network in the working CRS (metres).
    buildings, stations : GeoDataFrame, optional
        The district's layers in the same CRS. Fire stations (``kind`` ``fire_station``) and
        stations whose ``vehicle`` is ``engine`` are the engine sources.
    params : AccessParams, optional
        Access parameters (engine profile, ``max_snap_m``).

    Returns
    -------
    NetworkReport
        Figures: ``ways_cut_at_edge``, ``missing_node_refs``, ``components`` (weakly connected
        pieces of the engine graph), ``largest_share`` (share of engine nodes in the largest
        strongly connected piece, where an engine can get anywhere and back),
        ``unknown_highway_values`` (value -> ways), ``oneway_edges``, and with buildings
        ``buildings_stranded`` (snapped buildings an engine from the largest piece cannot
        reach) and with engine stations ``buildings_unreachable_by_engine``.
    """
    params = params or AccessParams()
    table = graph_table(network)
    rg = table.compiled(params.engine)
    figures, main_nodes, share = _graph_figures(table, rg)
    if buildings is not None and len(buildings):
        figures.update(_building_figures(rg, main_nodes, buildings, stations, params))
    warnings = _report_warnings(figures, params)
    return NetworkReport(_report_summary(figures, share), warnings, figures)


def _graph_figures(table: GraphTable, rg: RoutingGraph):
    """Figures of the table and the engine graph's pieces; the nodes of its largest strongly
    connected piece; the share of engine nodes that piece holds."""
    stats = table.stats
    on_net = np.zeros(rg.n_nodes, dtype=bool)
    ok = rg.usable
    on_net[rg.seg_a[ok]] = True
    on_net[rg.seg_b[ok]] = True
    _, weak = connected_components(rg.csr, directed=True, connection="weak")
    n_strong, strong = connected_components(rg.csr, directed=True, connection="strong")
    weak_pieces = np.unique(weak[on_net]).size
    sizes = np.bincount(strong[on_net], minlength=n_strong)
    main = int(np.argmax(sizes))
    share = float(sizes[main] / max(on_net.sum(), 1))
    figures: dict[str, Any] = {
        "nodes": table.n_nodes,
        "edges": table.n_edges,
        "oneway_edges": int(table.edges["oneway"].sum()),
        "ways_cut_at_edge": int(stats.get("ways_cut_at_edge", 0)),
        "missing_node_refs": int(stats.get("missing_node_refs", 0)),
        "components": int(weak_pieces),
        "largest_share": round(share, 4),
        "unknown_highway_values": unknown_highways(table),
    }
    return figures, np.flatnonzero((strong == main) & on_net), share


def _building_figures(rg: RoutingGraph, main_nodes, buildings, stations, params) -> dict:
    """Buildings off the network, stranded off the main piece, unreachable by engine."""
    figures = {}
    b = snap(rg, buildings.geometry, max_snap_m=params.max_snap_m)
    # Reachable from the main piece: Dijkstra from all its nodes at once (cost 0 there).
    reach = _reachable(rg, main_nodes)
    figures["buildings_stranded"] = int((b.ok & ~_snap_reached(rg, b, reach)).sum())
    figures["buildings_off_network"] = int((~b.ok).sum())
    engine_src = _engine_stations(stations)
    if engine_src is not None and len(engine_src):
        s = snap(rg, engine_src.geometry, max_snap_m=params.max_snap_m)
        cost, _ = nearest_cost(rg, s, b)
        figures["buildings_unreachable_by_engine"] = int((b.ok & ~np.isfinite(cost)).sum())
    figures["buildings"] = len(buildings)
    return figures


def _report_warnings(figures: dict, params: AccessParams) -> list[str]:
    """What would silently distort the analysis, one sentence each."""
    warnings: list[str] = []
    cut = figures["ways_cut_at_edge"]
    stranded = figures.get("buildings_stranded", 0)
    unreachable = figures.get("buildings_unreachable_by_engine", 0)
    if cut and (stranded or unreachable):
        warnings.append(
            f"{cut:,} ways are cut at the edge of the extract and {stranded:,} buildings lie "
            f"on streets an engine cannot reach from the main network"
            + (f" ({unreachable:,} unreachable from any fire station)" if unreachable else "")
            + "; use a larger extract that contains the streets around the district"
        )
    elif stranded or unreachable:
        warnings.append(
            f"{max(stranded, unreachable):,} buildings lie on streets an engine cannot reach "
            "(one-way streets or access rules cut them off)"
        )
    off = figures.get("buildings_off_network", 0)
    if off:
        warnings.append(
            f"{off:,} of {figures['buildings']:,} buildings lie farther than "
            f"{params.max_snap_m:g} m from any street an engine may join; they get no engine "
            "time (is the extract large enough, and in the right place?)"
        )
    unknown = figures["unknown_highway_values"]
    if unknown:
        listed = ", ".join(f"{k} ({n})" for k, n in list(unknown.items())[:8])
        warnings.append(
            f"highway values no profile knows, not used by engines: {listed}; add them to "
            "[access.engine] allowed_highways if engines can drive them"
        )
    return warnings


def _report_summary(figures: dict, share: float) -> str:
    summary = (
        f"{figures['nodes']:,} nodes, {figures['edges']:,} edges "
        f"({figures['oneway_edges']:,} one-way); {figures['ways_cut_at_edge']:,} ways cut at "
        f"the extract's edge; engine graph in {figures['components']:,} piece(s), the largest "
        f"holding {share:.1%} of its nodes"
    )
    if "buildings_stranded" in figures:
        summary += (
            f"; {figures['buildings_stranded']:,} of {figures['buildings']:,} buildings "
            "unreachable by engine"
        )
    return summary


def _reachable(rg: RoutingGraph, nodes: np.ndarray) -> np.ndarray:
    if not len(nodes):
        return np.zeros(rg.n_nodes, dtype=bool)
    dist = dijkstra(rg.csr, directed=True, indices=nodes, min_only=True)
    return np.isfinite(dist)


def _snap_reached(rg: RoutingGraph, s, reach: np.ndarray) -> np.ndarray:
    """Per snapped point: an engine reaching the nodes in ``reach`` can drive onto its segment."""
    out = np.zeros(len(s.seg), dtype=bool)
    ok = s.ok
    seg = s.seg[ok]
    out[ok] = (reach[rg.seg_a[seg]] & np.isfinite(rg.run_fwd[seg])) | (
        reach[rg.seg_b[seg]] & np.isfinite(rg.run_back[seg])
    )
    return out


def _engine_stations(stations: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    if stations is None or not len(stations):
        return None
    engine = np.zeros(len(stations), dtype=bool)
    if "kind" in stations:
        engine |= (stations["kind"] == "fire_station").to_numpy()
    if "vehicle" in stations:
        engine |= (stations["vehicle"] == "engine").to_numpy()
    return stations[engine]
