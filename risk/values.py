"""Small shared helpers of the risk package: dates, date columns, yes/no and numeric columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from firegrid.spatial.errors import ConfigError, InputError
from firegrid.spatial.io.dates import ACCEPTED_DATE_FORMATS, parse_dates
from firegrid.spatial.io.layers import FALSE_WORDS, TRUE_WORDS
from firegrid.spatial.io.sources import locate, shown


def as_timestamp(
    value: str | dt.date | pd.Timestamp | None, *, what: str = "as_of"
) -> pd.Timestamp:
    """A day-precision timestamp from a date, datetime or unambiguous date text (the forms of
    :func:`firegrid.spatial.io.dates.parse_dates`); never "today" implicitly."""
    if value is None:
        raise ConfigError(f"{what} must be given explicitly (a date such as '2025-06-30')")
    if isinstance(value, str):
        # The same rules as ledger cells: '24.3.5' is refused, not read as 2005-03-24.
        dates, bad, why = parse_dates(pd.Series([value]))
        if bad[0] or pd.isna(dates.iloc[0]):
            reason = why.iloc[0] or "empty"
            raise ConfigError(
                f"{what} is not an accepted date ({reason}; write {ACCEPTED_DATE_FORMATS}): "
                f"{value!r}"
            )
        return dates.iloc[0]
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} is not a date: {value!r}") from exc
    if pd.isna(ts):
        raise ConfigError(f"{what} is not a date: {value!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def date_column(frame: pd.DataFrame, column: str, *, layer: str) -> pd.Series:
    """A column of dates read by :func:`firegrid.spatial.io.dates.parse_dates` (the one reader
    of dates), ``datetime64[ns]`` at midnight, NaT where blank or where the column is absent.

    Raises
    ------
    InputError
        Naming the layer's file, row and header of the first cell that holds something other
        than an accepted date, and why it was refused (a two-digit year, day/month order …).
    """
    if column not in frame:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    raw = frame[column]
    out, bad, why = parse_dates(raw)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"not an accepted date ({why.iloc[first]}; write {ACCEPTED_DATE_FORMATS}): "
            f"{shown(raw.iloc[first])}",
            **locate(frame, first, column, layer=layer),
        )
    return out


def yes_no_to_float(series: pd.Series, *, column: str, layer: str = "buildings") -> np.ndarray:
    """1.0 for yes, 0.0 for no, NaN for missing; accepts bool, 0/1 numbers and yes/no words."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        out = pd.to_numeric(series, errors="coerce").astype("Float64")
        values = out.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isnan(values) & ~np.isin(values, (0.0, 1.0))
    else:
        text = series.astype("string").str.strip().str.lower()
        is_true = text.isin(TRUE_WORDS).fillna(False).to_numpy(dtype=bool)
        is_false = (text.isin(FALSE_WORDS - {""}).fillna(False)).to_numpy(dtype=bool)
        blank = (text.isna() | (text == "")).to_numpy(dtype=bool)
        values = np.where(is_true, 1.0, np.where(is_false, 0.0, np.nan))
        bad = ~(is_true | is_false | blank)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"not yes/no: {shown(series.iloc[first])} ({int(bad.sum())} such rows)",
            **locate(series, first, column, layer=layer),
        )
    return values


def numeric(series: pd.Series, *, column: str, layer: str = "buildings") -> np.ndarray:
    """Float values of a numeric column (NaN for missing); InputError naming a non-number."""
    text_missing = series.isna().to_numpy(dtype=bool)
    out = (
        pd.to_numeric(series, errors="coerce")
        .astype("Float64")
        .to_numpy(dtype=float, na_value=np.nan)
    )
    bad = np.isnan(out) & ~text_missing
    if bad.any():
        # Empty text cells count as missing, anything else is a typing error worth naming.
        text = series.astype("string").str.strip()
        bad &= ~(text == "").fillna(True).to_numpy(dtype=bool)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"not a number: {shown(series.iloc[first])}",
                **locate(series, first, column, layer=layer),
            )
    return out
