"""Hydrant and water-source coverage along streets, spacing gaps, water-deficient zones."""
