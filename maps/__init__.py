"""Folium maps of fire risk: layers, styles and legends, self-contained offline HTML export."""

from maps.export import save_html, show, to_html
from maps.options import MapOptions
from maps.risk_map import risk_map

__all__ = ["MapOptions", "risk_map", "save_html", "show", "to_html"]
