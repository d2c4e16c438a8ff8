"""Regions: many subdistricts analysed as partitions on dask.distributed, with halos.

``run_region(config, workers=…)`` analyses a region (:mod:`firegrid.region.config`) and
returns a :class:`RegionResult`; ``write_region_outputs(result, folder)`` writes its outputs.
"""

from firegrid.region.config import RegionConfig, load_region_config
from firegrid.region.merge import RegionResult
from firegrid.region.partitions import Halo, region_halo
from firegrid.region.runner import run_region

__all__ = [
    "Halo",
    "RegionConfig",
    "RegionResult",
    "load_region_config",
    "region_halo",
    "run_region",
]
