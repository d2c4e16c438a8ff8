"""``firegrid diff``: what changed between two runs of one district."""

from __future__ import annotations

import argparse

from firegrid.commands import command


def _diff_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD_DIR", help="output folder of the earlier run")
    parser.add_argument("new", metavar="NEW_DIR", help="output folder of the later run")
    parser.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="folder for the changes; FireGrid's previous outputs there are swapped for the new",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write even though the folder holds files FireGrid did not write (they are kept)",
    )
    parser.add_argument(
        "--language",
        choices=("zh", "en"),
        help="of the summary and the map (default: that of NEW_DIR's summary.md)",
    )
    parser.add_argument(
        "--csv-encoding",
        choices=("utf-8-sig", "gb18030"),
        default="utf-8-sig",
        help="of the CSV tables (default utf-8-sig; gb18030 for older Excel)",
    )


@command("diff", setup=_diff_args)
def cmd_diff(args: argparse.Namespace) -> int:
    """Compare two runs: coverage gained or lost, risk and grade changes, hazards new,
    rectified and newly overdue, per building and per grid cell.

    Writes changes_buildings.csv, changes_grids.csv, changes_hazards.csv, changes.xlsx,
    change_map.html and diff_summary.md/.json.
    """
    from pathlib import Path

    from firegrid.diff import compare, write_diff
    from firegrid.diff_outputs import DIFF_FILES, check_diff_folder
    from firegrid.outputs import prepare_output_folder

    # Refuse an unusable output folder (a run's among them) before reading the runs.
    check_diff_folder(args.out)
    folder = prepare_output_folder(Path(args.out), force=args.force, reserved=DIFF_FILES)
    diff = compare(args.old, args.new, language=args.language)
    written = write_diff(diff, folder, force=args.force, csv_encoding=args.csv_encoding)
    print(f"FireGrid: changes {args.old} → {args.new}")
    print(f"outputs in {folder}:")
    for name in written:
        print(f"  {name}")
    for line in diff.headline:
        print(f"- {line}")
    for note in diff.notes:
        print(f"note: {note}")
    return 0
