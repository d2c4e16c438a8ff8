"""The ``firegrid`` command line: bad input ends in one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import pkgutil
import sys
import time
import warnings
from collections.abc import Sequence

import firegrid.commands
from firegrid.commands import COMMANDS, EXIT_BAD_INPUT, FINISHED_RUN
from firegrid.logs import PRINTED, logging_to
from firegrid.spatial.errors import FireGridError

log = logging.getLogger(__name__)

DESCRIPTION = """\
FireGrid: fire-safety risk analysis for a city subdistrict (街道).

Targets checked: a micro fire station reaches every building within 3 minutes (180 s, turnout
included) and a fire rescue station within 5 minutes (300 s); an outdoor hydrant within 150 m
along the streets (GB 50974-2014). Distances are metres, times seconds.
"""

EPILOG = """\
Outputs of demo/run (one folder; FireGrid's previous outputs are swapped for the new ones
atomically when the run succeeds; a file FireGrid did not write stops the run, --force keeps it):
  map.html           interactive map, self-contained (no CDN): works with no network
  results.gpkg       every layer with its computed columns (working CRS, metres; personal
                     columns only with [output] personal = "keep")
  grid_summary.csv   per grid cell figures (UTF-8 with BOM; also grid_summary.xlsx)
  summary.md/.json   headline figures and notes

Bad input (config, layers, network) ends with one line on stderr and exit code 2.
Start with:  firegrid demo     then:  firegrid validate my.toml && firegrid run my.toml
Scheduled runs:  firegrid --log-file runs.log run my.toml   (-v also logs on the terminal)
"""


# The help lists these command modules first, then the others of firegrid.commands by name.
FIRST_COMMANDS = ("analysis", "maps")


def _import_commands() -> None:
    """Import every module of :mod:`firegrid.commands`: each registers its commands."""
    found = {m.name for m in pkgutil.iter_modules(firegrid.commands.__path__)}
    for name in [*FIRST_COMMANDS, *sorted(found - set(FIRST_COMMANDS))]:
        importlib.import_module(f"firegrid.commands.{name}")


_import_commands()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firegrid",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_args(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (setup, func) in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=(func.__doc__ or "").strip().splitlines()[0],
            description=inspect.cleandoc(func.__doc__ or ""),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        setup(p)
        p.set_defaults(func=func)
    return parser


def _global_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"%(prog)s {firegrid.__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log on stderr what --log-file records (-vv: with details)",
    )
    parser.add_argument(
        "--log-file",
        metavar="FILE",
        help="append a timestamped log of the command (start, end with exit code and seconds, "
        "warnings, errors) to FILE, for scheduled runs; progress bars stay on the terminal",
    )


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a Python warning as one prefixed line (not the source path and code line)."""
    text = " ".join(str(message).split())
    print(f"firegrid: warning: {text}", file=sys.stderr)
    log.warning(text, extra={PRINTED: True})


def main(argv: Sequence[str] | None = None, *, exit_at_once: bool = False) -> int:
    """Run one ``firegrid`` command line (``argv``: the arguments, default ``sys.argv[1:]``);
    returns the exit status. With ``exit_at_once`` the process ends right after a command
    that wrote a run's outputs, instead of returning (see :func:`entry`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with logging_to(args.verbose, log_file=args.log_file):
            status = _run_command(args)
    except FireGridError as exc:  # the log file could not be opened
        print(f"firegrid: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if exit_at_once and getattr(args, FINISHED_RUN, None) is not None:
        _end_process(status)
    return status


def entry() -> None:
    """The ``firegrid`` command and ``python -m firegrid``: :func:`main`, ending the process.

    After a command that wrote a run's outputs (written, synced and swapped in, the log
    closed), the process ends without Python freeing what the run holds object by object:
    a city's geometries took 8 s to free at 5 M buildings. Other commands end as usual.
    """
    sys.exit(main(exit_at_once=True))


def _end_process(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            pass
    os._exit(status)


def _run_command(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    log.info("firegrid %s %s: start", firegrid.__version__, args.command)
    status = _call_command(args)
    log.info(
        "firegrid %s: end, exit %d after %.1f s", args.command, status, time.perf_counter() - t0
    )
    return status


def _call_command(args: argparse.Namespace) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _warning_line  # restored when the block ends
            return int(args.func(args) or 0)
    except FireGridError as exc:
        text = _one_line(exc)
        print(f"firegrid: error: {text}", file=sys.stderr)
        log.error(text, extra={PRINTED: True})
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("firegrid: interrupted", file=sys.stderr)
        log.error("interrupted", extra={PRINTED: True})
        return 130


def _one_line(exc: BaseException) -> str:
    # One line whatever the message holds (a library's text may span several).
    return " ".join(str(exc).splitlines())


if __name__ == "__main__":
    entry()
