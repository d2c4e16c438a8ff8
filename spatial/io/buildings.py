"""Building classes derived from the canonical columns, defined once for every analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd

# 国办发〔2020〕23号 (State Council guideline on renovating old urban residential blocks) targets
# blocks "built before the end of 2000" (2000年底前建成): built in or before 2000. The default of
# ``[risk.features] old_built_up_to`` (firegrid.risk.params.FeatureParams); every per-building and
# per-grid old-residential figure reads that setting, through the risk features' ``old_residential``.
OLD_BUILT_BY = 2000


def is_old_residential(buildings: pd.DataFrame, *, built_by: int = OLD_BUILT_BY) -> np.ndarray:
    """True for old residential buildings (老旧小区): ``use == "residential"`` and ``year_built``
    in or before ``built_by``.

    Parameters
    ----------
    buildings : DataFrame or GeoDataFrame
        With canonical ``use`` and ``year_built`` columns (either may be absent).
    built_by : int
        Last year of construction that counts as old (default 2000, 国办发〔2020〕23号).

    Returns
    -------
    numpy.ndarray of bool
        One per row; False where the use or the year is unknown or absent.
    """
    n = len(buildings)
    if "use" not in buildings or "year_built" not in buildings:
        return np.zeros(n, dtype=bool)
    residential = buildings["use"].astype("string").eq("residential").fillna(False)
    year = pd.to_numeric(buildings["year_built"], errors="coerce").to_numpy(dtype=float)
    return residential.to_numpy(dtype=bool) & (year <= built_by)
