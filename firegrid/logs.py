"""Logging for the command line: ``-v`` on the terminal, ``--log-file`` for scheduled runs.

FireGrid logs through the standard :mod:`logging` module under the ``firegrid`` logger (each
module uses ``logging.getLogger(__name__)``); a library user configures logging as for any
other package. The command line attaches its handlers for the length of one command with
:func:`logging_to`: records go to stderr only with ``-v`` (INFO) or ``-vv`` (DEBUG), and to the
log file (appended, never overwritten) at INFO, or DEBUG with ``-vv``. Progress bars stay on
the terminal and never reach the file. Records carry figures, file names and timings, not the
content of a layer; as a second guard, every record is passed through the privacy module's
redaction (telephone, ID numbers and e-mail addresses become ``***``) before it is written.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from firegrid.spatial.errors import ConfigError

LOGGER_NAME = "firegrid"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONSOLE_FORMAT = "firegrid: %(levelname)s: %(message)s"
# A record with this attribute set to True was already printed on stderr (a warning or an
# error line of the command line): the console handler skips it, the log file keeps it.
PRINTED = "firegrid_printed"

# A library's logger has a NullHandler, so that with no logging configured Python's last-resort
# handler does not print FireGrid's warnings a second time beside the command line's own line.
logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())


def level_for(verbosity: int) -> int:
    """The console level for ``verbosity`` ``-v`` flags: 0 none, 1 INFO, 2 or more DEBUG."""
    if verbosity <= 0:
        return logging.CRITICAL + 1
    return logging.INFO if verbosity == 1 else logging.DEBUG


@contextlib.contextmanager
def logging_to(verbosity: int = 0, *, log_file: str | Path | None = None) -> Iterator[None]:
    """Send the ``firegrid`` logger's records to stderr and/or a file while the block runs.

    Parameters
    ----------
    verbosity : int
        Number of ``-v`` flags: 0 logs nothing on the terminal, 1 INFO, 2 or more DEBUG.
    log_file : str or Path, optional
        File the records are appended to (UTF-8, one timestamped line each), at INFO, or
        DEBUG from ``verbosity`` 2.

    Raises
    ------
    ConfigError
        The log file cannot be opened for appending.
    """
    logger = logging.getLogger(LOGGER_NAME)
    handlers = _handlers(verbosity, log_file)
    saved = logger.level
    logger.setLevel(min(h.level for h in handlers) if handlers else saved)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(saved)


def log_run(run: Any, written: Mapping[str, Path] | None = None) -> None:
    """Log a finished run: each step with its seconds, the headline, the notes, the outputs.

    Parameters
    ----------
    run : firegrid.context.RunContext
        The run (its ``timings`` in seconds, ``headline`` and ``notes``).
    written : mapping of file name to path, optional
        The outputs written (:func:`firegrid.pipeline.write_run_outputs`).

    Notes
    -----
    The command line prints the headline and notes itself, so on the terminal (``-v``) these
    records are not repeated; the log file gets them all.
    """
    log = logging.getLogger(LOGGER_NAME)
    for step, seconds in run.timings.items():
        log.info("step %s: %.1f s", step, seconds)
    for line in run.headline:
        log.info("%s", line, extra={PRINTED: True})
    for note in run.notes:
        log.warning("note: %s", note, extra={PRINTED: True})
    for path in (written or {}).values():
        log.info("wrote %s", path)


def _redacted(record: logging.LogRecord) -> bool:
    """Mask telephone, ID numbers and e-mail addresses in the record's message (kept)."""
    # Imported here: the firegrid.maps package loads folium (about a second), which a
    # command that writes no map and logs nothing should not pay for.
    from firegrid.maps.privacy import redact_text

    record.msg, record.args = redact_text(record.getMessage()), None
    return True


def _handlers(verbosity: int, log_file: str | Path | None) -> list[logging.Handler]:
    handlers: list[logging.Handler] = []
    if verbosity > 0:
        console = _AboveProgressBars()
        console.setLevel(level_for(verbosity))
        console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
        console.addFilter(lambda record: not getattr(record, PRINTED, False))
        handlers.append(console)
    if log_file is not None:
        handlers.append(_file_handler(Path(log_file), verbosity))
    for handler in handlers:
        handler.addFilter(_redacted)
    return handlers


def _file_handler(path: Path, verbosity: int) -> logging.Handler:
    try:
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the log file {path}: {exc.strerror or exc}") from None
    handler.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    return handler


class _AboveProgressBars(logging.Handler):
    """Write each record on stderr above any running progress bar, not through it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a logging handler must not raise (logging's own contract)
            self.handleError(record)
