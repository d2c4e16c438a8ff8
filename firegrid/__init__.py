"""FireGrid: fire-safety risk analysis of city subdistricts."""
