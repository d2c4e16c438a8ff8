"""``firegrid init FOLDER``: draft a config for a district that has only ledgers and files."""

from __future__ import annotations

import argparse
from datetime import date

from firegrid.commands import command


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"must be a date like 2026-06-30, not {text!r}") from exc


def init_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="the folder holding the district's ledgers and files")
    parser.add_argument("--name", help="the district's name (default: the folder's name)")
    parser.add_argument(
        "--as-of",
        type=_as_of,
        metavar="YYYY-MM-DD",
        help="the date hazard deadlines are judged against (default: today)",
    )


@command("init", setup=init_args)
def cmd_init(args: argparse.Namespace) -> int:
    """Recognise the folder's layers, map their headers, guess their coordinate systems, write
    a commented district.toml (district.toml.new when one exists; never over a file) and
    validate it."""
    from firegrid.commands.analysis import cmd_validate
    from firegrid.drafting import draft_district, write_draft

    draft = draft_district(args.folder, name=args.name, as_of=args.as_of)
    path = write_draft(draft)
    print(f"drafted {path}: check the guesses its comments explain")
    for layer in draft.layers.values():
        crs = f"{layer.crs}; " if layer.crs else ""
        print(f"  {layer.layer}: {layer.path.name} ({crs}{layer.crs_why})")
    if draft.network is not None:
        print(f"  network: {draft.network.name}")
    for text in draft.unused:
        print(f"  not used: {text}")
    print(f"firegrid validate {path}:")
    return cmd_validate(argparse.Namespace(config=str(path)))
