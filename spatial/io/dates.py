"""Reading dates from ledgers strictly: only forms whose day, month and year cannot be misread.

Chinese ledgers write dates as ``2024-03-05``, ``2024/3/5``, ``2024.3.5``, ``2024年3月5日`` or
``20240305``, and Excel date cells arrive as ``2024-03-05 00:00:00``. Forms with a two-digit
year (``24.3.5``: 2024-03-05 or 2005-03-24?), with the year last (``5/3/2024``: 5 March or
May 3?) or without a year are refused rather than guessed, because a wrong guess silently
changes which hazards are overdue.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ACCEPTED_DATE_FORMATS = (
    "YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, YYYY年M月D日, YYYYMMDD or an Excel date"
)
# Years a ledger date may plausibly carry; outside this a digit is missing or mistyped.
MIN_YEAR, MAX_YEAR = 1900, 2100

_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_YMD = (
    rf"^(?P<y>\d{{4}})(?P<sep>[-/.])(?P<m>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}}){_TIME}$"
    rf"|^(?P<y2>\d{{4}})年(?P<m2>\d{{1,2}})月(?P<d2>\d{{1,2}})日?$"
    rf"|^(?P<y3>\d{{4}})(?P<m3>\d{{2}})(?P<d3>\d{{2}})$"
)
# Recognised but refused, each with the reason the user is told.
_REFUSED = (
    (r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{2}年", "a two-digit year is ambiguous"),
    (r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}$", "day/month order is ambiguous"),
    (r"^\d{1,2}[-/.月]\d{1,2}日?$", "the year is missing"),
)


def parse_dates(values: pd.Series) -> tuple[pd.Series, np.ndarray, pd.Series]:
    """Parse a column of dates written in an unambiguous form.

    Parameters
    ----------
    values : Series
        Text cells, datetimes (GIS date fields, Excel cells) or numbers (``20240305``).

    Returns
    -------
    dates : Series
        ``datetime64[ns]`` at midnight, NaT where blank or refused.
    bad : ndarray of bool
        Cells that hold something but not an accepted date.
    why : Series of str
        For each bad cell, why it was refused (empty elsewhere).
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values.dt.tz_localize(None) if getattr(values.dt, "tz", None) else values
        ok = np.zeros(len(values), bool)
        return out.astype("datetime64[ns]").dt.normalize(), ok, pd.Series("", index=values.index)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        # A GIS integer field holding 20240305; a fractional number is no date.
        num = pd.to_numeric(values, errors="coerce").astype(float)
        whole = num.where((num % 1 == 0) & (num.abs() < 1e9))  # YYYYMMDD fits; 1e300 never
        text = whole.astype("Int64").astype("string")
        text = text.where(whole.notna() | num.isna(), num.astype("string"))
    else:
        text = values.astype("string").str.strip()
    blank = (text.isna() | (text == "")).to_numpy(dtype=bool)
    parts = text.str.extract(_YMD)
    year = parts["y"].fillna(parts["y2"]).fillna(parts["y3"])
    month = parts["m"].fillna(parts["m2"]).fillna(parts["m3"])
    day = parts["d"].fillna(parts["d2"]).fillna(parts["d3"])
    y, m, d = (pd.to_numeric(v, errors="coerce").astype(float) for v in (year, month, day))
    in_range = ((y >= MIN_YEAR) & (y <= MAX_YEAR)).fillna(False)
    dates = pd.to_datetime(
        pd.DataFrame({"year": y.where(in_range), "month": m, "day": d}),
        errors="coerce",
    )
    bad = dates.isna().to_numpy() & ~blank
    why = pd.Series("", index=values.index, dtype=object)
    why[bad & year.notna().to_numpy()] = "no such day"
    why[bad & year.notna().to_numpy() & ~in_range.to_numpy()] = (
        f"the year is outside {MIN_YEAR}–{MAX_YEAR}"
    )
    for pattern, reason in _REFUSED:
        hit = text.str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)
        why[bad & hit & (why == "").to_numpy()] = reason
    why[bad & (why == "").to_numpy()] = "not a date"
    return dates.astype("datetime64[ns]"), bad, why


__all__ = ["ACCEPTED_DATE_FORMATS", "parse_dates"]
