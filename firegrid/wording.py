"""How headline figures are written: shares as percentages, targets in minutes."""

from __future__ import annotations


def share(n: float, total: float | None) -> float:
    """``n / total``, NaN for an empty or unknown total."""
    return n / total if total else float("nan")


def percent(x: float | None, *, space: str = " ") -> str:
    """A share as a headline writes it: ``32.3 %`` (``32.3%`` with ``space=""``, as Chinese
    text writes it); ``–`` when unknown."""
    return "–" if x is None or x != x else f"{100 * x:.1f}{space}%"


def minutes(seconds: float) -> str:
    """A target as the headline names it: ``3-minute`` for 180 s, ``2.5-minute`` for 150 s."""
    return f"{seconds / 60:g}-minute"
