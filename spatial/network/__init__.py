"""The street network: the OSM reader, vehicle profiles and access rules, the compiled graph, snapping."""
