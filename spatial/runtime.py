"""What one run reads from its own context: where notes go and how many threads to use.

Both live in :mod:`contextvars`, not in process-wide state, so two runs in two threads of one
process (areas of a region on a threaded Dask worker) keep their notes and settings apart. A
notebook that sets nothing gets notes as ``UserWarning`` and the machine's cores.
:func:`collector_paused` is the one process-wide setting: Python has one cyclic collector.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import warnings
from collections.abc import Iterator
from contextvars import ContextVar

_NOTES: ContextVar[list[str] | None] = ContextVar("firegrid_notes", default=None)
_THREADS: ContextVar[int | None] = ContextVar("firegrid_threads", default=None)
# Runs pausing the cyclic collector now, and whether it ran before the first of them paused it.
_PAUSES = threading.Lock()
_paused = {"runs": 0, "was_enabled": False}


def note(message: str) -> None:
    """Tell the user something the figures depend on (a station far from every street …).

    Inside :func:`collecting_notes` the message goes to that run's list; elsewhere it is a
    ``UserWarning``. Call it from the thread that runs the analysis: worker threads started by
    an analysis do not inherit the context.
    """
    sink = _NOTES.get()
    if sink is None:
        warnings.warn(message, UserWarning, stacklevel=2)
    else:
        sink.append(message)


@contextlib.contextmanager
def collecting_notes() -> Iterator[list[str]]:
    """Collect the :func:`note` messages of the code run inside, in order, into a new list."""
    sink: list[str] = []
    token = _NOTES.set(sink)
    try:
        yield sink
    finally:
        _NOTES.reset(token)


def threads() -> int:
    """Threads an analysis may use for its parallel parts (snapping, isochrone unions).

    The value set by :func:`using_threads`, else the cores this process may run on.
    """
    n = _THREADS.get()
    if n:
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def using_threads(n: int | None) -> Iterator[None]:
    """Run the code inside with at most ``n`` threads per analysis (None: the default)."""
    if n is not None and n < 1:
        raise ValueError(f"threads must be at least 1, not {n}")
    token = _THREADS.set(n)
    try:
        yield
    finally:
        _THREADS.reset(token)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the code inside runs.

    A city's run makes millions of objects the collector tracks (shapely geometries) and
    frees them by reference counting; meanwhile every full collection walks all of them and
    finds next to nothing (a 1 M-building run: 9 full collections, about 1.4 s, and some
    thousand cyclic objects in all). Cyclic garbage made inside is collected afterwards.
    Runs in several threads may overlap: the collector is back as it was when the last
    of them ends.
    """
    with _PAUSES:
        if _paused["runs"] == 0:
            _paused["was_enabled"] = gc.isenabled()
            gc.disable()
        _paused["runs"] += 1
    try:
        yield
    finally:
        with _PAUSES:
            _paused["runs"] -= 1
            if _paused["runs"] == 0 and _paused["was_enabled"]:
                gc.enable()
