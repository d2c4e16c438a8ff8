"""What may reach a shared HTML map: an allow-list of columns, personal-data detection, escaping.

An exported map is handed around (to leaders, other departments, sometimes the public), so two
rules hold for every value that enters it:

- **Only allowed columns.** By default only FireGrid's canonical input columns and its computed
  result columns reach the HTML; a user's extra columns stay out unless the config's
  ``[map] allow_fields`` names them (or says ``"all"``). Columns that look personal — resident
  names, phone and ID numbers, by header or by content — are dropped even under ``"all"``; only
  naming such a column explicitly lets it through.
- **Escaped text.** Leaflet renders tooltips, popups and layer names as HTML, and folium puts
  some of them into JavaScript template literals, so every text value is HTML-escaped and has
  the template-literal metacharacters (backtick, ``$``, backslash) replaced by entities before it
  is written. A ``<script>`` in a building name is then shown, never run.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from risk.params import FACTORS
from spatial.layers import ACCESS_COLUMNS, SCHEMAS

# Results FireGrid computes (see the README's glossary); they are safe to show.
COMPUTED_COLUMNS: frozenset[str] = frozenset(
    {
        # access
        *ACCESS_COLUMNS,
        "minutes",
        "t_s",
        "area_km2",
        "n_buildings",
        # water
        "d_hydrant_m",
        "d_hydrant_net_m",
        "hydrant_id_nearest",
        "d_water_source_m",
        "water_covered",
        "water_deficient",
        # risk
        "risk_index",
        "risk_grade",
        "risk_grade_label",
        "top_factors",
        "p_fire",
        "hazards_open",
        "hazards_overdue",
        "hazards_major_open",
        "days_open",
        "days_overdue",
        "escalation_label",
        "escalation_to",
        "hazard_state",
        "risk_index_mean",
        "risk_index_max",
        "share_high_risk",
        "n_high_risk",
        # siting (micro-stations, spatial.siting; hydrants, spatial.hydrant_siting)
        "site_id",
        "rank",
        "candidate_id",
        "gain_buildings",
        "gain_residents",
        "covered_after",
        "covered_share_after",
        "road_name",
        "proposal_id",
        "n_new_covered",
        "street",
        "highway",
    }
    | {f"c_{f}" for f in FACTORS}
)

CANONICAL_COLUMNS: frozenset[str] = frozenset(
    c.name for schema in SCHEMAS.values() for c in schema.columns
)

ALLOWED_BY_DEFAULT: frozenset[str] = CANONICAL_COLUMNS | COMPUTED_COLUMNS

# Header fragments that mark a column as personal (matched case-insensitively, anywhere in the
# header). Chinese ledgers name residents, contacts, owners and landlords, with their numbers.
PERSONAL_NAME_PARTS: tuple[str, ...] = (
    "联系人",
    "联系方式",
    "电话",
    "手机",
    "号码",
    "姓名",
    "身份证",
    "证件",
    "户主",
    "房东",
    "房主",
    "业主",
    "租户",
    "住户",
    "居民",
    "负责人",
    "责任人",
    "微信",
    "邮箱",
    "phone",
    "mobile",
    "cell",
    "contact",
    "owner",
    "landlord",
    "tenant",
    "id_card",
    "idcard",
    "id_no",
    "id_number",
    "passport",
    "email",
    "e-mail",
    "wechat",
    "person",
    "surname",
    "first_name",
    "last_name",
    "full_name",
    "resident_name",
)
# Whole-word header tokens (split on non-letters) that mark a personal column.
PERSONAL_TOKENS: frozenset[str] = frozenset({"tel", "telephone", "fax", "sfz", "lxr", "dh", "xm"})

# Content patterns: a mainland mobile number (11 digits starting 13–19), an 18-digit resident
# ID number (GB 11643, last digit may be X), a landline with area code, an e-mail address.
PERSONAL_VALUE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)"),
    re.compile(r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dXx](?!\d)"),
    re.compile(r"(?<!\d)0\d{2,3}-\d{7,8}(?!\d)"),
    re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),
)


def personal_by_name(column: str) -> bool:
    """True when a column header looks like it holds personal data."""
    name = str(column).strip().lower()
    if any(part in name for part in PERSONAL_NAME_PARTS):
        return True
    tokens = set(re.split(r"[^a-z]+", name)) - {""}
    return bool(tokens & PERSONAL_TOKENS)


def personal_by_content(values: pd.Series) -> bool:
    """True when any value of a text or integer column looks like a phone, ID or e-mail."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return False
    if pd.api.types.is_float_dtype(values):
        # A phone column with gaps is read as floats (13812345678.0): check whole numbers.
        v = values.to_numpy(dtype=float, na_value=np.nan)
        whole = v[np.isfinite(v) & (v == np.trunc(v)) & (np.abs(v) < 1e18)]
        text = pd.Series(whole.astype(np.int64).astype(str))
    else:
        text = values.dropna().astype(str)
    if text.empty:
        return False
    joined = "\n".join(pd.unique(text.to_numpy()))
    return any(p.search(joined) for p in PERSONAL_VALUE_PATTERNS)


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


def html_columns(
    df: pd.DataFrame,
    *,
    allow: Iterable[str] = (),
    wanted: Sequence[str] | None = None,
) -> list[str]:
    """The columns of ``df`` that may be written into the HTML, in ``wanted`` order.

    Parameters
    ----------
    df : DataFrame or GeoDataFrame
    allow : iterable of str
        The config's ``[map] allow_fields``: extra column names, or ``"all"``.
    wanted : sequence of str, optional
        The columns a layer would like to show (default: every column of ``df``).

    Returns
    -------
    Columns that are canonical/computed or allowed, minus any that look personal unless named
    explicitly in ``allow``.
    """
    allow = set(allow)
    geom = getattr(df, "_geometry_column_name", None)
    candidates = [
        c for c in (wanted if wanted is not None else df.columns) if c in df and c != geom
    ]
    allowed = [c for c in candidates if c in ALLOWED_BY_DEFAULT or c in allow or "all" in allow]
    # A canonical column that holds a phone number (a user mapped the wrong header) is caught
    # by content; naming a column explicitly is the only way past the check.
    personal = set(personal_columns(df[[c for c in allowed if c not in allow]]))
    return [c for c in allowed if c not in personal]


def escape_text(value: object) -> str:
    """HTML-escape a value and neutralise JavaScript template-literal metacharacters."""
    out = html.escape(str(value), quote=True)
    return out.replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


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
        text = series.astype("string")
        if labels:
            text = text.map(lambda v: labels.get(v, v), na_action="ignore")
        out = text.astype(object).map(escape_text, na_action="ignore")
    out = out.astype(object)
    out[missing] = None
    return out


# Decimal places of floats written to popups: probabilities need more than metres or seconds.
DECIMALS: dict[str, int] = {
    "p_fire": 3,
    "share_high_risk": 3,
    "area_km2": 3,
    "covered_share_after": 3,
}


def safe_properties(
    df: pd.DataFrame,
    columns: Sequence[str],
    *,
    value_labels: dict[str, str] | None = None,
    translate: Iterable[str] = (),
) -> list[dict[str, object]]:
    """Rows of ``df[columns]`` as JSON-ready property dicts for the HTML.

    Text is escaped with :func:`escape_text`; floats are rounded (1 decimal; probabilities
    and shares 3); missing values become ``None``. Columns named in ``translate`` have their
    values (and booleans their yes/no) replaced by ``value_labels`` (e.g. ``ok`` → 完好).
    The caller is responsible for choosing ``columns`` with :func:`html_columns`.
    """
    translate = set(translate)
    data = {}
    for col in columns:
        labels = value_labels if (col in translate or pd.api.types.is_bool_dtype(df[col])) else None
        data[col] = _display_values(df[col], decimals=DECIMALS.get(col, 1), labels=labels)
    frame = pd.DataFrame(data, index=df.index)
    return frame.to_dict("records")
