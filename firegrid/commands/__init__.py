"""The command registry and the arguments and steps the ``firegrid`` commands share.

Each command lives in a module of this package named for what it does and registers itself
with :func:`command`; :mod:`firegrid.cli` imports them all and builds the parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

EXIT_BAD_INPUT = 2
# The argument namespace's attribute holding the run a command wrote (see run_and_write).
FINISHED_RUN = "finished_run"

COMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}


def command(name: str, *, setup: Callable[[argparse.ArgumentParser], None]):
    """Register a sub-command: ``setup`` adds its arguments, the decorated function runs it."""

    def register(func: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (setup, func)
        return func

    return register


def config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="path to the district's TOML config")


# --------------------------------------------------------------------------------------------
# Pipeline commands: each runs the steps it needs and writes its outputs atomically.


def out_arg(parser: argparse.ArgumentParser, *, default_help: str) -> None:
    parser.add_argument(
        "--out",
        metavar="DIR",
        help=f"output folder; FireGrid's previous outputs there are swapped for the new ones "
        f"when the run succeeds ({default_help})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run even though the output folder holds files FireGrid did not write "
        "(they are kept, never deleted)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar (it goes to stderr)"
    )
    threads_arg(parser)


def threads_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="threads each analysis may use for its parallel parts (default: every core "
        "this process may run on); with 2 or more, a city's run forks a second process for "
        "the isochrones and for writing results.gpkg, 1 keeps it in one process",
    )


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value

    return parse


positive_int = int_at_least(1)


def step_args(parser: argparse.ArgumentParser) -> None:
    config_arg(parser)
    out_arg(
        parser,
        default_help="default: [output] folder of the config, else firegrid-output/ beside it",
    )


def progress(args: argparse.Namespace) -> bool | None:
    return False if getattr(args, "quiet", False) else None


def print_run(run, written: dict, *, kept: Sequence[str] = ()) -> None:
    folder = next(iter(written.values())).parent if written else None
    print(f"FireGrid: {run.config.name}")
    if folder is not None:
        print(f"outputs in {folder}:")
        for name in written:
            print(f"  {name}")
        if kept:
            print(f"kept (not FireGrid's, --force): {', '.join(kept)}")
    for line in run.headline:
        print(f"- {line}")
    for note in run.notes:
        print(f"note: {note}")


def run_and_write(args: argparse.Namespace, config_path, plan: str) -> int:
    from pathlib import Path

    from firegrid.config import load_config
    from firegrid.logs import log_run
    from firegrid.outputs import foreign_entries, prepare_output_folder
    from firegrid.pipeline import default_output_folder, run_pipeline, write_run_outputs
    from firegrid.reports import OUTPUT_FILES
    from firegrid.spatial import runtime

    config = load_config(config_path)
    # Refuse an unusable output folder, or one holding files FireGrid did not write, before
    # spending the analysis time (checked again just before the swap).
    folder = prepare_output_folder(
        Path(args.out) if args.out else default_output_folder(config),
        force=args.force,
        reserved=OUTPUT_FILES,
    )
    run = run_pipeline(config, until=plan, progress=progress(args), threads=args.threads)
    with runtime.using_threads(args.threads):
        written = write_run_outputs(run, folder, force=args.force)
    log_run(run, written)
    # Without --force a foreign file stops the run before the swap, so only --force can have
    # kept one; listing them re-hashes every output, which is not free at city size.
    print_run(run, written, kept=foreign_entries(folder) if args.force else [])
    # Kept with the arguments, so a process ending right after (firegrid.cli.entry) does
    # not first free a city's objects one by one.
    setattr(args, FINISHED_RUN, run)
    return 0
