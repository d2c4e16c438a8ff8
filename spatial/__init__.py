"""Spatial analysis of a district: layers and coordinate systems, the street network, travel times, fire water and siting."""
