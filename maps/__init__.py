"""Folium maps of fire risk: layers, styles and legends, self-contained offline HTML export."""

from firegrid.maps.export import save_html, show, to_html
from firegrid.maps.options import MapOptions
from firegrid.maps.risk_map import risk_map

__all__ = ["MapOptions", "risk_map", "save_html", "show", "to_html"]
