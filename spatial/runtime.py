"""What one run reads from its own context: where notes go and how many threads to use.

Both live in :mod:`contextvars`, not in process-wide state, so two runs in two threads of one
process (areas of a region on a threaded Dask worker) keep their notes and settings apart. A
notebook that sets nothing gets notes as ``UserWarning`` and the machine's cores.
:func:`collector_paused` is the one process-wide setting: Python has one cyclic collector.
:func:`forked` runs one part of a run in a child process beside the rest, for the parts that
hold Python's lock (GDAL writing a GeoPackage, SciPy's Dijkstra) and so cannot share a
process's cores through threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import pickle
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

T = TypeVar("T")

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


# Threads that hold no lock a forked child needs: tqdm's monitor wakes every 10 s to look at
# the progress bars, which a child never draws.
_FORK_SAFE_THREADS = frozenset({"tqdm_monitor"})


def can_fork() -> bool:
    """Whether :func:`forked` runs its function in a child process: the run may use two
    threads or more, it runs on Linux (macOS's system libraries are not safe to use in a
    forked child: Python's multiprocessing spawns there), and no other Python thread is
    alive but tqdm's monitor (a forked child has no copy of them, and a lock one of them
    held would never be released there)."""
    if not (sys.platform.startswith("linux") and hasattr(os, "fork")) or threads() < 2:
        return False
    me = threading.current_thread()
    others = [t for t in threading.enumerate() if t is not me and t.name not in _FORK_SAFE_THREADS]
    return me is threading.main_thread() and not others


class Forked(Generic[T]):
    """A function running in a forked child process; :meth:`result` waits for it.

    Made by :func:`forked`; use it as a context manager, so a child whose result is not
    taken (the parent's own work raised) is stopped.
    """

    def __init__(self, fn: Callable[[], T], *, worth: bool = True) -> None:
        self._fn = fn
        self._pid: int | None = None
        self._read: int | None = None
        if worth and can_fork():
            self._start()

    def _start(self) -> None:
        _trim_heap()
        read, write = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the parent's code
            os.close(read)
            _run_child(self._fn, write)
        os.close(write)
        self._pid, self._read = pid, read

    def result(self) -> T:
        """The function's value (or its exception, raised here), its notes and warnings
        passed on as if it had run here. When the child ended without a result (killed, out
        of memory) or its result cannot be read back, the function runs here instead."""
        if self._pid is None:
            return self._fn()
        payload = self._collect()
        try:
            status, value, notes, caught = pickle.loads(payload)
        except Exception:  # nothing, or an exception that does not unpickle: run it here
            return self._fn()
        for message in notes:
            note(message)
        for message, category, filename, lineno in caught:
            warnings.warn_explicit(message, category, filename, lineno)
        if status == "error":
            raise value
        return value

    def _collect(self) -> bytes:
        chunks = []
        try:
            while chunk := os.read(self._read, 1 << 20):
                chunks.append(chunk)
        finally:
            self._stop(kill=False)
        return b"".join(chunks)

    def _stop(self, *, kill: bool) -> None:
        if self._pid is None or self._read is None:
            return
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        os.close(self._read)
        os.waitpid(self._pid, 0)
        self._read = None

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop(kill=True)


# Below this many rows (buildings, features) a part of a run is not worth a second process:
# forking a process holding a city takes tens of milliseconds, and the child's result comes
# back through a pipe.
FORK_MIN_ROWS = 100_000


def forked(fn: Callable[[], T], *, worth: bool = True) -> Forked[T]:
    """Start ``fn()`` in a forked child process while this one goes on (when ``worth`` and
    :func:`can_fork`; else ``fn`` runs when its result is asked for).

    The child sees this process's memory as it was at the fork and shares its pages until
    either writes them; ``fn``'s value comes back pickled, so it should be small beside what
    it reads (a few polygons, a file written). Whatever else ``fn`` changes stays in the
    child. Callers pass ``worth=rows >= FORK_MIN_ROWS``.
    """
    return Forked(fn, worth=worth)


def _trim_heap() -> None:
    """Give the C heap's free pages back to the system before forking (glibc): a page freed
    but kept would be copied for the parent or child that reuses it first, although
    neither needs what it held."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _run_child(fn: Callable[[], Any], write: int) -> None:
    status = 1
    try:
        try:
            with collecting_notes() as notes, warnings.catch_warnings(record=True) as caught:
                payload: tuple = ("ok", fn(), notes, [])
        except BaseException as exc:  # every outcome goes back to the parent
            payload = ("error", exc, notes, [])
        payload[3].extend((str(w.message), w.category, w.filename, w.lineno) for w in caught)
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(write, view) :]
        status = 0
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)
