"""The one definition of old residential (老旧小区) used by access, risk and the roll-ups."""

from __future__ import annotations

import numpy as np
import pandas as pd

from firegrid.spatial.io.buildings import is_old_residential


def test_built_in_or_before_2000_counts():
    b = pd.DataFrame(
        {
            "use": ["residential", "residential", "residential", "shop", None, "residential"],
            "year_built": [1985, 2000, 2001, 1980, 1990, None],
        }
    )
    assert is_old_residential(b).tolist() == [True, True, False, False, False, False]
    assert is_old_residential(b, built_by=1990).tolist() == [
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    assert not is_old_residential(b.drop(columns="year_built")).any()
    assert is_old_residential(b.iloc[:0]).dtype == np.bool_
