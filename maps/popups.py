"""Figures as a reader of the map wants them: minutes, percentages, metres, yes/no.

Popups and tooltips show a column by the unit the column registry
(:mod:`firegrid.spatial.columns`) gives it: seconds as minutes with one decimal (``2.4``, the
label saying ``(分钟)``: on a page of 20k buildings the unit written in every value would cost
a third of a megabyte), shares as percentages (``32.3 %``), metres and counts as whole
numbers, the 0–100 index with one decimal, booleans as yes/no. Two pairs read better as one row: open hazards with the overdue
ones (``3（逾期 1）``) and a grid's buildings per grade (``重大 6 · 较大 26 · …``). The values
are plain text; :func:`firegrid.maps.privacy.safe_properties` escapes them on the way into the
page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from firegrid.spatial import columns

# Words of the formatted values, by language.
WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "min": "分钟",
        "unreachable": "不可达",
        "overdue": "逾期",
        "yes": "是",
        "no": "否",
        "grade_counts": "各等级建筑数",
    },
    "en": {
        "min": "min",
        "unreachable": "unreachable",
        "overdue": "overdue",
        "yes": "yes",
        "no": "no",
        "grade_counts": "buildings by grade",
    },
}
# Column names of the rows that join two or more columns.
GRADE_COUNTS = "grade_counts"
GRADE_COUNT_COLUMNS = tuple(f"n_grade_{g}" for g in (1, 2, 3, 4))
# The unit in brackets at the end of a label ("微站到场时间 (s)").
_LABEL_UNIT = re.compile(r"\s*[(（][^()（）]*[)）]\s*$")


def _unit(name: str, layer: str | None) -> str:
    col = columns.column(name, layer)
    if col is not None:
        return col.unit
    # Canonical input columns are not in the registry: their names carry the unit.
    return {"_s": "s", "_m": "m"}.get(name[-2:], "")


def _numbers(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _text(values: np.ndarray, pattern: str) -> np.ndarray:
    """``pattern % value`` for finite values, None elsewhere (vectorised)."""
    finite = np.isfinite(values)
    out = np.full(values.shape, None, dtype=object)
    out[finite] = np.char.mod(pattern, values[finite]).astype(object)
    return out


def display_values(
    series: pd.Series, name: str, *, language: str = "zh", layer: str | None = None
) -> pd.Series:
    """The values of column ``name`` as text in the unit a reader expects.

    Parameters
    ----------
    series : Series
        The column's values.
    name : str
        The column's name in the column registry (its unit picks the format).
    language : {"zh", "en"}
    layer : str, optional
        The layer holding it (a name that means different things in two layers).

    Returns
    -------
    Series of str (None where missing); ``series`` itself when the unit needs no format
    (text, identifiers, unknown columns).
    """
    words = WORDS[language]
    unit = _unit(name, layer)
    if pd.api.types.is_bool_dtype(series) or unit == "bool":
        if not (pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series)):
            return series
        flags = series.astype("boolean")
        text = flags.map({True: words["yes"], False: words["no"]}).astype(object)
        return text.where(flags.notna().to_numpy(), None)
    if not pd.api.types.is_numeric_dtype(series):
        return series
    values = _numbers(series)
    if unit == "s":
        out = _text(values / 60.0, "%.1f")
        out[np.isinf(values)] = words["unreachable"]
    elif unit == "share":
        out = _text(values * 100.0, "%.1f %%")
    elif unit == "m":
        out = _text(values, "%.0f")
    elif unit == "count":
        out = _text(values, "%.0f")
    elif unit == "0–100":
        out = _text(values, "%.1f")
    else:
        return series
    return pd.Series(out, index=series.index, dtype=object)


def display_label(name: str, language: str = "zh", *, layer: str | None = None) -> str:
    """The label of column ``name`` beside a :func:`display_values` value: the registry's
    label, with the unit of the value — ``微站到场时间 (分钟)`` for a time in seconds, no
    bracket for a share (the value says ``%``)."""
    if name == GRADE_COUNTS:
        return WORDS[language]["grade_counts"]
    text = columns.label(name, language, layer=layer)
    unit = _unit(name, layer)
    if unit == "s":
        return f"{_LABEL_UNIT.sub('', text)} ({WORDS[language]['min']})"
    if unit == "share":
        return _LABEL_UNIT.sub("", text)
    if unit == "m" and not _LABEL_UNIT.search(text):
        return f"{text} (m)"
    return text


def _hazard_text(open_: pd.Series, overdue: pd.Series, language: str) -> pd.Series:
    n_open, n_late = _numbers(open_), _numbers(overdue)
    base = _text(n_open, "%.0f")
    late = np.isfinite(n_late) & (n_late > 0) & np.isfinite(n_open)
    word = WORDS[language]["overdue"]
    suffix = np.char.mod("（" + word + " %.0f）" if language == "zh" else f" ({word} %.0f)", n_late)
    base[late] = (base[late].astype(str) + suffix[late]).astype(object)
    return pd.Series(base, index=open_.index, dtype=object)


def _grade_counts(frame: pd.DataFrame, language: str) -> pd.Series:
    names = columns.GRADE_LABELS[language]
    parts = [
        np.char.add(f"{names[g]} ", np.char.mod("%.0f", np.nan_to_num(_numbers(frame[c]))))
        for g, c in zip((1, 2, 3, 4), GRADE_COUNT_COLUMNS, strict=True)
    ]
    joined = parts[0]
    for part in parts[1:]:
        joined = np.char.add(np.char.add(joined, " · "), part)
    return pd.Series(joined.astype(object), index=frame.index, dtype=object)


def display_table(
    frame: pd.DataFrame,
    fields: Sequence[str],
    *,
    language: str = "zh",
    layer: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The ``fields`` of ``frame`` as display text, with the joined rows.

    ``hazards_open`` with ``hazards_overdue`` become one row (``hazards_open``: ``3（逾期 1）``);
    the four ``n_grade_<g>`` become one row ``grade_counts``. ``fields`` must already be the
    allowed ones (:func:`firegrid.maps.privacy.html_columns`): a joined row only uses them.

    Returns
    -------
    (frame, fields)
        A copy of ``frame`` with the fields as text and the joined columns added, and the
        fields to show, in order.
    """
    out = frame.copy()
    shown = list(fields)
    if "hazards_open" in shown and "hazards_overdue" in shown:
        out["hazards_open"] = _hazard_text(
            frame["hazards_open"], frame["hazards_overdue"], language
        )
        shown.remove("hazards_overdue")
    elif "hazards_open" in shown:
        out["hazards_open"] = display_values(frame["hazards_open"], "hazards_open", layer=layer)
    if all(c in shown for c in GRADE_COUNT_COLUMNS):
        out[GRADE_COUNTS] = _grade_counts(frame, language)
        at = shown.index(GRADE_COUNT_COLUMNS[0])
        shown = [c for c in shown if c not in GRADE_COUNT_COLUMNS]
        shown.insert(at, GRADE_COUNTS)
    for name in shown:
        if name not in (GRADE_COUNTS, "hazards_open"):
            out[name] = display_values(out[name], name, language=language, layer=layer)
    return out, shown


__all__ = ["GRADE_COUNTS", "display_label", "display_table", "display_values"]
