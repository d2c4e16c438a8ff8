"""Config sections onto parameter dataclasses: one parser, the same checks and messages everywhere."""

from __future__ import annotations

import numbers
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields, is_dataclass, replace
from typing import Any, TypeVar

from spatial.errors import ConfigError

T = TypeVar("T")
_NO_DEFAULT = object()


def params_from_mapping(
    cls: type[T], d: Mapping[str, Any] | None, *, section: str, base: T | None = None
) -> T:
    """Build a frozen parameter dataclass from a config table (a TOML section).

    Each value is checked against the type of the field's default: a bool field takes only
    true/false; an int field whole numbers; a float field numbers (not booleans); a tuple or
    frozenset field a list; a str field text; a mapping field a table (kept as a dict); a
    field holding a nested parameter object an instance of it. A field whose default is None
    is checked against the other type of its annotation (``float | None`` takes numbers or
    None). Range checks stay in the class's ``__post_init__``.

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
        Naming the section and the unknown key (with the known keys), or the key whose value
        has the wrong type or is out of range.
    """
    if d is None:
        return base if base is not None else cls()
    if not isinstance(d, Mapping):
        raise ConfigError(f"[{section}] must be a table, not {type(d).__name__}")
    known = {f.name: f for f in fields(cls) if f.init}
    unknown = sorted(str(k) for k in d if k not in known)
    if unknown:
        keys = "key" if len(unknown) == 1 else "keys"
        raise ConfigError(
            f"[{section}] has unknown {keys} {', '.join(map(repr, unknown))}; "
            f"known keys are {', '.join(sorted(known))}"
        )
    hints = _type_hints(cls)
    kw = {
        key: _convert(value, _default(known[key], base), hints.get(key), f"[{section}] {key}")
        for key, value in d.items()
    }
    try:
        return replace(base, **kw) if base is not None else cls(**kw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{section}]: {exc}") from exc


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


def _kind_of_hint(hint: Any) -> type | None:
    """The one non-None type of an optional annotation (``float | None`` → float)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            return None
        hint = args[0]
    origin = typing.get_origin(hint) or hint
    if origin in (bool, int, float, str, tuple, frozenset):
        return origin
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return dict
    return None


def _convert(value: Any, default: Any, hint: Any, where: str) -> Any:
    if default is None or default is _NO_DEFAULT:
        if value is None:
            return None
        kind = _kind_of_hint(hint)
    elif isinstance(default, Mapping):
        kind = dict
    else:
        kind = type(default)

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where} must be {expected}, not {value!r}")

    if kind is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind is int:
        whole = isinstance(value, numbers.Integral) or (
            isinstance(value, float) and value.is_integer()
        )
        if isinstance(value, bool) or not whole:
            raise bad("a whole number")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise bad("a number")
        return float(value)
    if kind in (tuple, frozenset):
        if isinstance(value, str | bytes | Mapping) or not isinstance(
            value, list | tuple | set | frozenset
        ):
            raise bad("a list")
        return kind(value)
    if kind is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if kind is dict:
        if not isinstance(value, Mapping):
            raise bad("a table")
        return dict(value)
    if kind is not None and is_dataclass(kind):
        # A nested parameter object: the owning class turns its sub-table into one first.
        if not isinstance(value, kind):
            raise bad("a table")
        return value
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value
