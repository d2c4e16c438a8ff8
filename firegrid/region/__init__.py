"""Regions: many subdistricts analysed as partitions on dask.distributed, with halos."""
