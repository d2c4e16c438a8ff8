"""``firegrid map``: write only the interactive map."""

from __future__ import annotations

import argparse

from firegrid.commands import command, config_arg, progress, threads_arg


def _map_args(parser: argparse.ArgumentParser) -> None:
    config_arg(parser)
    parser.add_argument(
        "--out", metavar="FILE", help="HTML file (default: map.html in the output folder)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite the HTML file even though FireGrid did not write it",
    )
    parser.add_argument(
        "--language", choices=("zh", "en"), help="labels (default [map] language, zh)"
    )
    parser.add_argument(
        "--basemap",
        choices=("none", "osm", "amap"),
        help="background tiles: none, OpenStreetMap, or Amap (GCJ-02; layers shifted to match)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    threads_arg(parser)


@command("map", setup=_map_args)
def cmd_map(args: argparse.Namespace) -> int:
    """Write only the interactive map: one self-contained HTML file that works offline.

    Runs every analysis step first. Only canonical and computed columns reach the HTML unless
    [map] allow_fields names more; personal-looking columns (names, phone and ID numbers) are
    always dropped unless named explicitly. An existing file is replaced only when FireGrid
    wrote it (listed unchanged in its folder's .firegrid-manifest.json) or with --force.
    """
    from dataclasses import replace
    from pathlib import Path

    from firegrid.config import load_config
    from firegrid.outputs import check_output_file, write_file
    from firegrid.pipeline import default_output_folder, map_html, run_pipeline
    from firegrid.reports import MAP_FILE

    config = load_config(args.config)
    options = config.params["map"]
    changes = {k: v for k, v in (("language", args.language), ("basemap", args.basemap)) if v}
    options = replace(options, **changes) if changes else options
    # map.html in the run's output folder by default, recorded in its manifest
    path = Path(args.out) if args.out else default_output_folder(config) / MAP_FILE
    # Refuse a file FireGrid did not write before spending the analysis time.
    check_output_file(path, force=args.force)
    run = run_pipeline(config, until="run", progress=progress(args), threads=args.threads)
    path = write_file(path, map_html(run, options=options), force=args.force)
    print(f"map written to {path}")
    for note in run.notes:
        print(f"note: {note}")
    return 0
