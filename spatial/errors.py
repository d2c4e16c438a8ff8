"""Project error types: every error a user can cause is one of these, printed as one line."""

from __future__ import annotations


class FireGridError(Exception):
    """Base class for errors the command line prints as one line and exits 2."""


class ConfigError(FireGridError):
    """The TOML config is missing, malformed or names something that does not exist."""


class NetworkError(FireGridError):
    """The road network cannot be read, downloaded or routed on."""


class InputError(FireGridError):
    """A layer file holds bad data.

    The message always names the file, and where known the feature (row number and/or id)
    and the column, so a user can find and fix the problem in their own spreadsheet or GIS.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        feature: str | None = None,
        column: str | tuple[str, str] | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.feature = feature
        self.column = column
        super().__init__(format_location(problem, file=file, feature=feature, column=column))


def format_location(
    problem: str,
    *,
    file: str | None = None,
    feature: str | None = None,
    column: str | tuple[str, str] | None = None,
) -> str:
    """Build ``file: feature, column 'c': problem`` from whichever parts are known.

    ``column`` may be a pair (the user's header, the canonical name), shown as
    ``column '状态' (status)`` so the user finds it in their own file.
    """
    where = []
    if file:
        where.append(str(file))
    detail = []
    if feature:
        detail.append(str(feature))
    if isinstance(column, tuple):
        detail.append(f"column '{column[0]}' ({column[1]})")
    elif column:
        detail.append(f"column '{column}'")
    head = ": ".join(where)
    if detail:
        head = f"{head}: {', '.join(detail)}" if head else ", ".join(detail)
    return f"{head}: {problem}" if head else problem
