"""Config sections onto parameter dataclasses: one parser, the same checks and messages everywhere."""

from __future__ import annotations

import difflib
import math
import numbers
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, Field, fields, is_dataclass, replace
from typing import Any, TypeVar

from firegrid.spatial.errors import ConfigError

T = TypeVar("T")
_NO_DEFAULT = object()
# Sanity bounds shared by the analysis sections: a config value beyond them is a typo, and
# would otherwise run for hours or exhaust memory (1e-300 m spacing, a 1e308 m buffer).
MAX_LENGTH_M = 50_000.0  # metres: wider than any district a run covers
MIN_SPACING_M = 5.0  # metres between generated candidate points
MAX_TIME_LIMIT_S = 86_400.0  # seconds a solver may be given


def params_from_mapping(
    cls: type[T], d: Mapping[str, Any] | None, *, section: str, base: T | None = None
) -> T:
    """Build a frozen parameter dataclass from a config table (a TOML section).

    Each value is checked against the type of the field's default: a bool field takes only
    true/false; an int field whole numbers; a float field finite numbers (not booleans, not
    TOML's inf or nan); a tuple or frozenset field a list; a str field text; a mapping field a
    table (kept as a dict); a field holding a nested parameter object an instance of it. The
    items of a list or table are checked against the annotation's item type
    (``tuple[float, ...]``, ``tuple[float, float, float]``, ``frozenset[str]``,
    ``Mapping[str, float]``). A field whose default is None is checked against the other type
    of its annotation (``float | None`` takes numbers or None). Range checks stay in the
    class's ``__post_init__``; their messages get the section in front. A field declared with
    ``metadata={"config": False}`` is no key of the table (the program sets it, e.g. another
    section's parameters).

    Parameters
    ----------
    cls : dataclass type
        The parameter class.
    d : mapping or None
        The table; None gives the defaults.
    section : str
        The config section, as written in messages (``"water"``, ``"access.engine"``).
    base : instance of ``cls``, optional
        Start from this object instead of the class defaults (its values give the types).

    Returns
    -------
    An instance of ``cls``.

    Raises
    ------
    ConfigError
        Naming the section and the unknown key (with the known keys and the nearest one), or
        the key whose value has the wrong type or is out of range.
    """
    if d is None:
        return base if base is not None else cls()
    if not isinstance(d, Mapping):
        raise ConfigError(f"[{section}] must be a table, not {type(d).__name__}")
    known = {f.name: f for f in fields(cls) if f.init and f.metadata.get("config", True)}
    check_keys(d, known, section=section)
    hints = _type_hints(cls)
    kw = {
        key: _convert(value, _default(known[key], base), hints.get(key), f"[{section}] {key}")
        for key, value in d.items()
    }
    try:
        return replace(base, **kw) if base is not None else cls(**kw)
    except ConfigError as exc:
        # A range check in __post_init__ may not know the section it was read from.
        if str(exc).startswith("["):
            raise
        raise ConfigError(f"[{section}] {exc}") from exc
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ConfigError(f"[{section}]: {exc}") from exc


def check_keys(
    d: Mapping[str, Any], known: Iterable[str], *, section: str | None, noun: str = "key"
) -> None:
    """Stop on a key of ``d`` that is not in ``known``, suggesting the nearest known key.

    Parameters
    ----------
    d : mapping
        A config table.
    known : iterable of str
        The keys the table may hold.
    section : str or None
        The table as written in messages (``"network"``, ``"layers.hydrants"``); None for
        the top level of the file.
    noun : str
        What a key is called in the message (``"key"``, ``"section"``, ``"layer"``).

    Raises
    ------
    ConfigError
        ``[network] has unknown key 'sorce' (did you mean 'source'?); known keys are …``.
    """
    known = sorted(known)
    unknown = sorted(str(k) for k in d if k not in known)
    if not unknown:
        return
    nouns = f"{noun}s"
    # A typo must not silently switch a feature off: suggest what it probably meant.
    hints = [difflib.get_close_matches(k, known, n=1) for k in unknown]
    guess = [f"'{h[0]}'" for h in hints if h]
    meant = f" (did you mean {', '.join(guess)}?)" if guess else ""
    head = f"[{section}] has unknown" if section else "unknown"
    raise ConfigError(
        f"{head} {noun if len(unknown) == 1 else nouns} {', '.join(map(repr, unknown))}{meant}; "
        f"known {nouns} are {', '.join(known) or '(none)'}"
    )


def _default(f: Field, base: Any) -> Any:
    if base is not None:
        return getattr(base, f.name)
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return _NO_DEFAULT


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation naming a TYPE_CHECKING-only type: no hints, no checks
        return {}


_BAD = object()
# What a scalar field takes, in messages: one item, and several in a list.
_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
_PLURAL = {bool: "true/false values", int: "whole numbers", float: "numbers", str: "strings"}


def _without_none(hint: Any) -> Any:
    """The one non-None member of an optional annotation (``float | None`` → float)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else None
    return hint


def _kind_of_hint(hint: Any) -> type | None:
    origin = typing.get_origin(hint) or hint
    if origin in (bool, int, float, str, tuple, frozenset):
        return origin
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return dict
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _scalar(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (bool, int, float or str), or _BAD when it is not one."""
    if kind is bool:
        return value if isinstance(value, bool) else _BAD
    if isinstance(value, bool):  # True is an int to Python, never a number to a user
        return _BAD
    if kind is int:
        if isinstance(value, numbers.Integral):
            return int(value)
        return int(value) if isinstance(value, float) and value.is_integer() else _BAD
    if kind is float:
        # TOML has inf and nan; no distance, time or weight can be either.
        ok = isinstance(value, numbers.Real) and math.isfinite(value)
        return float(value) if ok else _BAD
    return value if isinstance(value, str) else _BAD


def _convert(value: Any, default: Any, hint: Any, where: str) -> Any:
    """``value`` checked against (and converted to) the kind of the field's default."""
    hint = _without_none(hint)
    if (default is None or default is _NO_DEFAULT) and value is None:
        return None
    kind = _field_kind(default, hint)
    if kind in _WORDS:
        return _convert_scalar(value, kind, where)
    if kind in (tuple, frozenset):
        return _convert_list(value, kind, hint, where)
    if kind is dict:
        return _convert_table(value, hint, where)
    if kind is not None and is_dataclass(kind):
        # A nested parameter object: the owning class turns its sub-table into one first.
        if not isinstance(value, kind):
            raise _bad(value, where, "a table")
        return value
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _field_kind(default: Any, hint: Any) -> type | None:
    """What a field takes: the type of its default, else (no default, or None) its annotation."""
    if default is None or default is _NO_DEFAULT:
        return _kind_of_hint(hint)
    if isinstance(default, Mapping):
        return dict
    return type(default)


def _bad(value: Any, where: str, expected: str) -> ConfigError:
    return ConfigError(f"{where} must be {expected}, not {_shown(value)}")


def _convert_scalar(value: Any, kind: type, where: str) -> Any:
    out = _scalar(value, kind)
    if out is _BAD:
        finite = not isinstance(value, float) or math.isfinite(value)
        raise _bad(value, where, _WORDS[kind] if finite else f"a finite {_WORDS[kind][2:]}")
    return out


def _convert_list(value: Any, kind: type, hint: Any, where: str) -> Any:
    """A list for a tuple or frozenset field, each item checked against the annotation."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(
        value, list | tuple | set | frozenset
    ):
        raise _bad(value, where, "a list")
    items = list(value)
    kinds = _item_kinds(hint, len(items))
    if len(kinds) != len(items):
        raise _bad(value, where, f"a list of {len(kinds)} {_PLURAL.get(kinds[0], 'values')}")
    items = [_scalar(v, k) if k in _WORDS else v for v, k in zip(items, kinds, strict=True)]
    if any(v is _BAD for v in items):
        raise _bad(value, where, f"a list of {_PLURAL.get(kinds[0], 'suitable values')}")
    try:
        return kind(items)
    except TypeError as exc:  # a table inside a list meant as a set
        raise _bad(value, where, "a list of plain values") from exc


def _item_kinds(hint: Any, n: int) -> list[type | None]:
    """The kind of each of ``n`` list items: ``tuple[float, ...]`` repeats, a fixed
    ``tuple[float, float, float]`` gives its own length."""
    args = typing.get_args(hint)
    if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis):
        return [_kind_of_hint(args[0])] * n
    if args:
        return [_kind_of_hint(a) for a in args]
    return [None] * n


def _convert_table(value: Any, hint: Any, where: str) -> dict:
    if not isinstance(value, Mapping):
        raise _bad(value, where, "a table")
    args = typing.get_args(hint)
    item = _kind_of_hint(args[1]) if len(args) == 2 else None
    if item in _WORDS:
        for k, v in value.items():
            if _scalar(v, item) is _BAD:
                raise ConfigError(f"{where}.{k} must be {_WORDS[item]}, not {_shown(v)}")
    return dict(value)
