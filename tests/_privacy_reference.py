"""The personal-data content scan as it was before the Arrow scan (commit 47fd64b), frozen as
the reference that ``tests/test_privacy_speed.py`` and ``benchmarks/bench_privacy.py`` check
``firegrid.maps.privacy`` against: every distinct value written out as text and searched."""

from __future__ import annotations

import numpy as np
import pandas as pd

from firegrid.maps.privacy import (
    NUMBER_MIN_DIGITS,
    PATTERN_MIN_CHARS,
    PATTERN_REQUIRED_CHAR,
    PERSONAL_VALUE_PATTERNS,
)


def numbers_too_short(values: pd.Series) -> bool:
    """An integer or float column whose numbers all have under 11 digits (47fd64b)."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_integer_dtype(values):
        present = values.dropna()
        largest = max(int(present.max()), -int(present.min())) if len(present) else 0
    elif pd.api.types.is_float_dtype(values):
        v = values.to_numpy(dtype=float, na_value=np.nan)
        finite = v[np.isfinite(v)]
        largest = float(np.abs(finite).max()) if finite.size else 0.0
    else:
        return False
    return largest < 10 ** (NUMBER_MIN_DIGITS - 1)


def text_scan(values: pd.Series) -> bool:
    """Every distinct value written out as text, joined with line breaks, each pattern
    searched when the longest value and the required character allow (without the shortcut
    for numbers too short: :func:`numbers_too_short`)."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return False
    if pd.api.types.is_float_dtype(values):
        v = values.to_numpy(dtype=float, na_value=np.nan)
        whole = v[np.isfinite(v) & (v == np.trunc(v)) & (np.abs(v) < 1e18)]
        text = pd.Series(pd.unique(whole.astype(np.int64).astype(str)), dtype=object)
    else:
        text = pd.Series(pd.unique(values.dropna().astype(str).to_numpy()), dtype=object)
    if text.empty:
        return False
    joined = "\n".join(text)
    longest = int(text.str.len().max())
    return any(
        p.search(joined)
        for name, p in PERSONAL_VALUE_PATTERNS.items()
        if longest >= PATTERN_MIN_CHARS[name] and PATTERN_REQUIRED_CHAR.get(name, "") in joined
    )


def by_content(values: pd.Series) -> bool:
    """``personal_by_content`` as of 47fd64b."""
    return not numbers_too_short(values) and text_scan(values)
