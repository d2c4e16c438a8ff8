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

import functools
import re
import sys
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
# The fewest characters ``\d`` matches (any Unicode decimal digit) in a match of each pattern:
# a mobile number 11, a landline 10 (area code 0xx and 3 + 4 digits), ID numbers 15 and 17 (the
# last of 18 may be X), an e-mail none. Text with fewer digits is not scanned for the pattern
# (checked against the patterns' structure in tests/test_privacy_speed.py).
PATTERN_MIN_DIGITS: dict[str, int] = {
    "mobile": 11,
    "landline": 10,
    "id18": 17,
    "id15": 15,
    "email": 0,
}
# Text values are checked in blocks of this many for their digits (bounds the scratch memory).
_DIGIT_BLOCK = 1 << 16


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
        # fmax/fmin skip NaN; an infinity counts as large and leaves the column to the scan
        # (which takes whole finite numbers only): the same verdict, without a filtered copy.
        v = values.to_numpy(dtype=float, na_value=np.nan)
        largest = max(np.fmax.reduce(v, initial=-np.inf), -np.fmin.reduce(v, initial=np.inf))
    else:
        return False
    return largest < 10 ** (NUMBER_MIN_DIGITS - 1)


def _as_text(values: pd.Series) -> pd.Series:
    """The distinct values of a column as strings (numbers as whole numbers), for the plain scan.

    Numbers too small to have :data:`NUMBER_MIN_DIGITS` digits are left out: their text (a
    ``-`` and at most 10 digits) cannot hold a match.
    """
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return pd.Series([], dtype=object)
    smallest = 10 ** (NUMBER_MIN_DIGITS - 1)
    if pd.api.types.is_float_dtype(values):
        # A phone column with gaps is read as floats (13812345678.0): check whole numbers.
        v = values.to_numpy(dtype=float, na_value=np.nan)
        size = np.abs(v)
        whole = v[np.isfinite(v) & (v == np.trunc(v)) & (size < 1e18) & (size >= smallest)]
        return pd.Series(pd.unique(whole.astype(np.int64)).astype(str), dtype=object)
    present = values.dropna()
    if pd.api.types.is_integer_dtype(values):
        # Distinct numbers first: writing out millions of ids as text is the slow part.
        present = pd.Series(present[(present >= smallest) | (present <= -smallest)].unique())
    # The same text as astype(str) (pandas writes both out alike), but Python-backed: the
    # Arrow-backed "str" refuses lone surrogates.
    text = present.astype(pd.StringDtype("python")).to_numpy()
    return pd.Series(pd.unique(text), dtype=object)


def _plain_texts(text: pd.Series) -> dict[str, str]:
    """Per pattern worth searching, the text to search: every value, one per line."""
    if text.empty:
        return {}
    joined = "\n".join(text)
    longest = int(text.str.len().max())
    return {
        name: joined
        for name in PERSONAL_VALUE_PATTERNS
        if longest >= PATTERN_MIN_CHARS[name] and PATTERN_REQUIRED_CHAR.get(name, "") in joined
    }


def _arrow_strings(values: pd.Series) -> pa.ChunkedArray | None:
    """A column of text as Arrow strings (missing values as nulls), else None.

    None for anything but text (numbers, categories, mixed objects, bytes) and for text Arrow
    cannot hold (lone surrogates): those take the plain scan.
    """
    if not pd.api.types.is_string_dtype(values.dtype):
        return None
    try:
        if values.dtype == object:
            present = values.dropna()
            if pd.api.types.infer_dtype(present, skipna=False) != "string":
                return None
            strings = pa.array(present.to_numpy(dtype=object), type=pa.large_string())
        else:
            # Arrow-backed text (pandas' "str") is taken as it is, without a copy.
            strings = pa.array(values.array)
    except (pa.ArrowException, UnicodeError, TypeError):
        return None
    if not (pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type)):
        return None
    return strings if isinstance(strings, pa.ChunkedArray) else pa.chunked_array([strings])


@functools.cache
def _digit_lead_bytes() -> np.ndarray:
    """Which bytes start, in UTF-8, a character that ``\\d`` matches (256 booleans).

    Read from the regular-expression engine itself, so the table holds for the Python that runs
    the patterns. Continuation bytes (0x80-0xBF) never start a character and ASCII bytes never
    occur inside one, so counting these bytes in a value counts at least its digits.
    """
    digits = re.findall(r"\d", "".join(map(chr, range(sys.maxunicode + 1))))
    table = np.zeros(256, dtype=bool)
    table[[d.encode("utf-8")[0] for d in digits]] = True
    return table


def _digit_bound(strings: pa.ChunkedArray) -> np.ndarray:
    """Per value (no nulls), at least the number of its characters that ``\\d`` matches."""
    table = _digit_lead_bytes()
    blocks = [
        chunk.slice(start, _DIGIT_BLOCK)
        for chunk in strings.chunks
        for start in range(0, len(chunk), _DIGIT_BLOCK)
    ]
    counts = [np.zeros(0, dtype=np.int64)]
    for block in blocks:
        _, offsets, data = block.buffers()
        wide = pa.types.is_large_string(block.type)
        ends = np.frombuffer(offsets, dtype=np.int64 if wide else np.int32)
        ends = ends[block.offset : block.offset + len(block) + 1]
        first, last = int(ends[0]), int(ends[-1])
        # Running count of digit bytes; a value's count is the difference across its bytes.
        running = np.zeros(last - first + 1, dtype=np.int32 if last - first < 2**31 else np.int64)
        np.cumsum(table[np.frombuffer(data, dtype=np.uint8)[first:last]], out=running[1:])
        counts.append(np.diff(running[ends - first]))
    return np.concatenate(counts)


def _patterns_left(strings: pa.ChunkedArray) -> list[str]:
    """The patterns a column as a whole may hold: its longest value and its characters allow.

    A character takes at least one byte, so the longest value in bytes (read from the offsets,
    no text decoded) rules patterns out first.
    """
    longest = pc.max(pc.binary_length(strings)).as_py() or 0
    left = [name for name in PERSONAL_VALUE_PATTERNS if longest >= PATTERN_MIN_CHARS[name]]
    absent = {
        char
        for char in {PATTERN_REQUIRED_CHAR[n] for n in left if n in PATTERN_REQUIRED_CHAR}
        if not pc.any(pc.match_substring(strings, char)).as_py()
    }
    return [name for name in left if PATTERN_REQUIRED_CHAR.get(name) not in absent]


def _pattern_masks(strings: pa.ChunkedArray) -> dict[str, np.ndarray]:
    """Per pattern, the values that could hold a match of it (patterns none can hold left out).

    A match lies inside one value and needs :data:`PATTERN_MIN_CHARS` characters,
    :data:`PATTERN_MIN_DIGITS` digits and :data:`PATTERN_REQUIRED_CHAR`; values without them
    cannot hold one. Each test runs only where the cheaper ones left a value in.
    """
    left = _patterns_left(strings)
    if not left:
        return {}
    lengths = pc.utf8_length(strings).fill_null(0).to_numpy()
    masks = {name: lengths >= PATTERN_MIN_CHARS[name] for name in left}
    for name in set(left) & set(PATTERN_REQUIRED_CHAR):
        found = pc.match_substring(strings, PATTERN_REQUIRED_CHAR[name])
        masks[name] &= found.fill_null(False).to_numpy()
    counted = np.zeros(len(lengths), dtype=bool)
    for name in left:
        counted |= masks[name] & (PATTERN_MIN_DIGITS[name] > 0)
    if counted.any():
        digits = np.zeros(len(lengths), dtype=np.int64)
        digits[counted] = _digit_bound(strings if counted.all() else strings.filter(counted))
        for name, mask in masks.items():
            mask &= digits >= PATTERN_MIN_DIGITS[name]
    return {name: mask for name, mask in masks.items() if mask.any()}


def _arrow_texts(strings: pa.ChunkedArray) -> dict[str, str]:
    """Per pattern worth searching, the text to search: the distinct values that could match."""
    masks = _pattern_masks(strings)
    if not masks:
        return {}
    keep = np.logical_or.reduce(list(masks.values()))
    distinct = pa.chunked_array([pc.unique(strings.filter(pa.array(keep)))])
    return {
        name: "\n".join(distinct.filter(pa.array(mask)).to_pylist())
        for name, mask in _pattern_masks(distinct).items()
    }


def personal_by_content(values: pd.Series) -> bool:
    """True when any value of a text or integer column looks like a phone, ID or e-mail."""
    if _too_short_for_patterns(values):
        return False
    strings = _arrow_strings(values)
    texts = _plain_texts(_as_text(values)) if strings is None else _arrow_texts(strings)
    return any(PERSONAL_VALUE_PATTERNS[name].search(text) for name, text in texts.items())


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
