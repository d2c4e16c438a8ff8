"""Reading layers, coordinate systems, validation and the district container."""
