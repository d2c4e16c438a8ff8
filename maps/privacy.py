"""What may reach outputs meant for leaders: an allow-list of columns, personal data, escaping.

An exported map, the per-grid table and the summaries are handed around (to leaders, other
departments, sometimes the public), so these rules hold for every value that enters them:

- **Only allowed columns.** By default only FireGrid's canonical input columns and its computed
  result columns are shown; a user's extra columns stay out unless the config's
  ``[map] allow_fields`` names them (or says ``"all"``). Columns that look personal — names of
  residents, owners, occupants, contacts; phone and ID numbers; home addresses — by header or
  by content are dropped even under ``"all"``; only naming such a column explicitly (a grid
  worker's name and phone that the plans require on grid boards) lets it through.
- **Redacted free text.** Text FireGrid writes itself (notes quoting a user's value) has phone
  numbers, ID numbers and e-mail addresses replaced by ``***`` (:func:`redact_text`).
- **Escaped text.** Leaflet renders tooltips, popups and layer names as HTML, and folium puts
  some of them into JavaScript template literals, so every text value is HTML-escaped and has
  the template-literal metacharacters (backtick, ``$``, backslash) replaced by entities before it
  is written. A ``<script>`` in a building name is then shown, never run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from firegrid.spatial import columns
from firegrid.spatial.io.layers import SCHEMAS

# Results FireGrid computes that are not personal: the column registry's public output
# columns (the README's glossary is generated from it); they are safe to show.
COMPUTED_COLUMNS: frozenset[str] = columns.public_names()

CANONICAL_COLUMNS: frozenset[str] = frozenset(
    c.name for schema in SCHEMAS.values() for c in schema.columns
)

ALLOWED_BY_DEFAULT: frozenset[str] = CANONICAL_COLUMNS | COMPUTED_COLUMNS

# Header fragments that mark a column as personal (matched case-insensitively, anywhere in the
# header, after spaces, hyphens and dots became "_"). Chinese ledgers name residents, owners,
# occupants, guardians, landlords, contacts and grid workers, with their numbers and addresses.
# Each fragment is tested on its own in tests/test_privacy.py.
PERSONAL_NAME_PARTS: tuple[str, ...] = (
    # Chinese: who
    "姓名",
    "户主",
    "房东",
    "房主",
    "业主",
    "产权人",
    "法定代表人",
    "法人代表",
    "使用人",
    "承租人",
    "出租人",
    "租户",
    "住户",
    "居民",
    "监护人",
    "联系人",
    "联络人",
    "负责人",
    "责任人",
    "网格员",
    "网格长",
    "楼长",
    # Chinese: how to reach or identify them
    "联系方式",
    "电话",
    "手机",
    "号码",
    "身份证",
    "证件",
    "住址",
    "微信",
    "邮箱",
    # English
    "phone",
    "mobile",
    "cell",
    "contact",
    "owner",
    "landlord",
    "tenant",
    "occupant",
    "guardian",
    "id_card",
    "idcard",
    "id_no",
    "id_number",
    "passport",
    "email",
    "e_mail",
    "wechat",
    "person",
    "surname",
    "first_name",
    "last_name",
    "full_name",
    "resident_name",
    "home_address",
)
# Whole-word header tokens (split on non-letters) that mark a personal column: short words and
# pinyin initials (sfz 身份证, lxr 联系人, dh 电话, xm 姓名) that would match too much as fragments.
PERSONAL_TOKENS: frozenset[str] = frozenset({"tel", "fax", "sfz", "lxr", "dh", "xm"})

# Content patterns, each tested on its own in tests/test_privacy.py. Separators people type
# between digit groups: spaces (also no-break and full-width), hyphens, dots.
_SEP = r"[ \u00a0\u3000\-.]?"
PERSONAL_VALUE_PATTERNS: dict[str, re.Pattern[str]] = {
    # mainland mobile: 1[3-9]x xxxx xxxx in any common spacing, with or without +86 / 0086 / (86)
    "mobile": re.compile(
        r"(?<![\d])(?:(?:\+|00)?86" + _SEP + r"|[(（]\+?86[)）]" + _SEP + r")?"
        r"1[3-9]\d" + _SEP + r"\d{4}" + _SEP + r"\d{4}(?!\d)"
    ),
    # landline with its area code: 021-12345678, (021) 1234 5678, （0571）8888888, 0755 8888 8888
    "landline": re.compile(
        r"(?<!\d)(?:[(（]0[1-9]\d{1,2}[)）]" + _SEP + r"|0[1-9]\d{1,2}[ \u00a0\u3000\-])"
        r"\d{3,4}" + _SEP + r"\d{4}(?!\d)"
    ),
    # resident ID number (GB 11643): 18 digits with the birth date, the last may be X
    "id18": re.compile(
        r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
        r"(?![\dXx])"
    ),
    # first-generation ID number: 15 digits, birth date without the century
    "id15": re.compile(
        r"(?<!\d)[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}(?!\d)"
    ),
    "email": re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
}
REDACTED = "***"
# The fewest characters of a match of each pattern. No pattern matches a line break, so a
# match lies within one value: a column whose values are all shorter is not scanned for it.
# Checked against the patterns' own widths in tests/test_privacy_speed.py.
PATTERN_MIN_CHARS: dict[str, int] = {
    "mobile": 11,
    "landline": 11,
    "id18": 18,
    "id15": 15,
    "email": 5,
}
# A literal every match holds: text without it is not scanned for the pattern.
PATTERN_REQUIRED_CHAR: dict[str, str] = {"email": "@"}
# The fewest digits of any match of PERSONAL_VALUE_PATTERNS in a whole number written out
# ("-" and digits only): a mobile number has 11, a landline needs a separator or a bracket
# after its area code, an ID number 15 or 18 digits, an e-mail an "@". A numeric column whose
# values all have fewer digits cannot match (checked against the patterns in
# tests/test_privacy_speed.py), so it is not written out as text to be scanned.
NUMBER_MIN_DIGITS = 11


def header_key(column: object) -> str:
    """A header as the name rules see it: lower case, spaces, hyphens and dots as ``_``."""
    return re.sub(r"[\s\-.]+", "_", str(column).strip().lower())


def personal_by_name(column: str) -> bool:
    """True when a column header looks like it holds personal data."""
    name = header_key(column)
    if any(part in name for part in PERSONAL_NAME_PARTS):
        return True
    tokens = set(re.split(r"[^a-z]+", name)) - {""}
    return bool(tokens & PERSONAL_TOKENS)


def _as_text(values: pd.Series) -> pd.Series:
    """The distinct values of a text or integer column as strings (numbers as whole numbers)."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return pd.Series([], dtype=object)
    if pd.api.types.is_float_dtype(values):
        # A phone column with gaps is read as floats (13812345678.0): check whole numbers.
        v = values.to_numpy(dtype=float, na_value=np.nan)
        whole = v[np.isfinite(v) & (v == np.trunc(v)) & (np.abs(v) < 1e18)]
        return pd.Series(pd.unique(whole.astype(np.int64).astype(str)), dtype=object)
    return pd.Series(pd.unique(values.dropna().astype(str).to_numpy()), dtype=object)


def _too_short_for_patterns(values: pd.Series) -> bool:
    """True for an integer or float column whose numbers all have too few digits to match.

    Floats count by their magnitude: :func:`_as_text` only writes out whole ones, with the
    same digits as the integer part.
    """
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_integer_dtype(values):
        present = values.dropna()
        # Python ints: the absolute value of the smallest int64 does not overflow.
        largest = max(int(present.max()), -int(present.min())) if len(present) else 0
    elif pd.api.types.is_float_dtype(values):
        v = values.to_numpy(dtype=float, na_value=np.nan)
        finite = v[np.isfinite(v)]
        largest = float(np.abs(finite).max()) if finite.size else 0.0
    else:
        return False
    return largest < 10 ** (NUMBER_MIN_DIGITS - 1)


def personal_by_content(values: pd.Series) -> bool:
    """True when any value of a text or integer column looks like a phone, ID or e-mail."""
    if _too_short_for_patterns(values):
        return False
    text = _as_text(values)
    if text.empty:
        return False
    joined = "\n".join(text)
    longest = int(text.str.len().max())
    return any(
        p.search(joined)
        for name, p in PERSONAL_VALUE_PATTERNS.items()
        if longest >= PATTERN_MIN_CHARS[name] and PATTERN_REQUIRED_CHAR.get(name, "") in joined
    )


def redact_text(text: str) -> str:
    """``text`` with every phone number, ID number and e-mail address replaced by ``***``.

    For free text FireGrid writes itself (notes and headlines of the summary), which may quote a
    user's value.
    """
    for pattern in PERSONAL_VALUE_PATTERNS.values():
        text = pattern.sub(REDACTED, text)
    return text


def personal_columns(df: pd.DataFrame) -> list[str]:
    """Columns that look personal by header or by content (never the geometry)."""
    geom = getattr(df, "_geometry_column_name", None)
    out = []
    for col in df.columns:
        if col == geom:
            continue
        if personal_by_name(col) or personal_by_content(df[col]):
            out.append(col)
    return out


def shared_columns(
    df: pd.DataFrame,
    *,
    allow: Iterable[str] = (),
    computed: Iterable[str] = (),
    wanted: Sequence[str] | None = None,
) -> list[str]:
    """The columns of ``df`` that may reach an output meant for leaders, in ``wanted`` order.

    The one allow-list of the map (through :func:`html_columns`), the per-grid summary table
    (CSV and Excel) and the summaries.

    Parameters
    ----------
    df : DataFrame or GeoDataFrame
    allow : iterable of str
        The config's ``[map] allow_fields``: extra column names, or ``"all"`` for every
        non-personal column. Only a column named here explicitly passes the personal check.
    computed : iterable of str
        Further columns FireGrid computed for this frame (beyond :data:`ALLOWED_BY_DEFAULT`),
        e.g. the per-grid roll-up figures.
    wanted : sequence of str, optional
        The columns the output would like to show (default: every column of ``df``).

    Returns
    -------
    Columns that are canonical/computed or allowed, minus any that look personal (by header
    or by content) unless named explicitly in ``allow``.
    """
    allow = set(allow)
    safe = ALLOWED_BY_DEFAULT | set(computed)
    geom = getattr(df, "_geometry_column_name", None)
    candidates = [
        c for c in (wanted if wanted is not None else df.columns) if c in df and c != geom
    ]
    allowed = [c for c in candidates if c in safe or c in allow or "all" in allow]
    # A canonical column that holds a phone number (a user mapped the wrong header) is caught
    # by content; naming a column explicitly is the only way past the check.
    personal = set(personal_columns(df[[c for c in allowed if c not in allow]]))
    return [c for c in allowed if c not in personal]


def html_columns(
    df: pd.DataFrame,
    *,
    allow: Iterable[str] = (),
    wanted: Sequence[str] | None = None,
) -> list[str]:
    """The columns of ``df`` that may be written into the HTML map: :func:`shared_columns`."""
    return shared_columns(df, allow=allow, wanted=wanted)


def _display_values(
    series: pd.Series, *, decimals: int, labels: dict[str, str] | None
) -> pd.Series:
    """One column as JSON-ready display values: rounded numbers, escaped text, None for gaps."""
    missing = series.isna().to_numpy(dtype=bool)
    if pd.api.types.is_bool_dtype(series):
        words = labels or {}
        out = series.astype(object).map(
            lambda v: words.get(str(bool(v)), str(bool(v))), na_action="ignore"
        )
    elif pd.api.types.is_integer_dtype(series):
        out = series.astype(object)
    elif pd.api.types.is_float_dtype(series):
        values = np.round(series.to_numpy(dtype=float, na_value=np.nan), decimals)
        out = pd.Series(values.astype(object), index=series.index)
        # Whole numbers print without ".0": shorter HTML, and 12 s reads better than 12.0 s.
        whole = np.isfinite(values) & (values == np.trunc(values)) & (np.abs(values) < 2**53)
        out[whole] = values[whole].astype(np.int64).tolist()
        missing = missing | ~np.isfinite(values)
    elif pd.api.types.is_datetime64_any_dtype(series):
        out = series.dt.strftime("%Y-%m-%d").astype(object)
    else:
        # Cells go through str() one by one: a cast to a string dtype refuses lone surrogates.
        text = series.astype(object).map(str, na_action="ignore")
        if labels:
            text = text.map(lambda v: labels.get(v, v), na_action="ignore")
        out = text.map(_escape_html(), na_action="ignore")
    out = out.astype(object)
    out[missing] = None
    return out


def _escape_html():
    """The map's one HTML escaper, :func:`firegrid.maps.html.escape_html`.

    Imported on use: that module loads folium (about a second), which the tables and
    GeoPackage written through this module's column checks do not need.
    """
    from firegrid.maps.html import escape_html

    return escape_html


# Units (of the column registry) whose values popups show with 3 decimals: probabilities,
# shares and square kilometres need more than metres or seconds (1 decimal).
FINE_UNITS = ("share", "0–1", "per year", "km²")


def decimals(column: str) -> int:
    """Decimal places of a float column in popups, by its registered unit."""
    col = columns.column(column)
    return 3 if col is not None and col.unit in FINE_UNITS else 1


def safe_properties(
    df: pd.DataFrame,
    columns: Sequence[str],
    *,
    value_labels: dict[str, str] | None = None,
    translate: Iterable[str] = (),
) -> list[dict[str, object]]:
    """Rows of ``df[columns]`` as JSON-ready property dicts for the HTML.

    Text is escaped with :func:`firegrid.maps.html.escape_html`; floats are rounded (1 decimal; probabilities
    and shares 3); missing values become ``None``. Columns named in ``translate`` have their
    values (and booleans their yes/no) replaced by ``value_labels`` (e.g. ``ok`` → 完好).
    The caller is responsible for choosing ``columns`` with :func:`html_columns`.
    """
    translate = set(translate)
    data = {}
    for col in columns:
        labels = value_labels if (col in translate or pd.api.types.is_bool_dtype(df[col])) else None
        data[col] = _display_values(df[col], decimals=decimals(col), labels=labels)
    frame = pd.DataFrame(data, index=df.index)
    return frame.to_dict("records")
