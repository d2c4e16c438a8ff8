"""The ``region`` command: every subdistrict of a region as a partition on dask.distributed."""

from __future__ import annotations

import argparse
import sys

from firegrid.commands import (
    EXIT_BAD_INPUT,
    command,
    int_at_least,
    out_arg,
    progress,
)


def region_args(parser: argparse.ArgumentParser) -> None:
    """``--workers N | --scheduler ADDRESS`` of a region run (``out_arg`` adds ``--threads``)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int_at_least(0),
        metavar="N",
        help="Dask worker processes of a local cluster (default: 2, or the cores if fewer); "
        "0 runs the partitions one after another in this process, without Dask",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="use an existing Dask cluster, e.g. tcp://host:8786, instead of a local one",
    )


def _setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="path to the region's TOML config (see docs/region.md)")
    out_arg(parser, default_help="default: [output] folder, else firegrid-region-output "
            "beside the config")  # fmt: skip
    region_args(parser)


@command("region", setup=_setup)
def cmd_region(args: argparse.Namespace) -> int:
    """Analyse every subdistrict of a region, each as a partition on dask.distributed.

    Stations serve buildings across subdistrict borders. Writes results.gpkg, parquet/<layer>/
    (GeoParquet partitioned by subdistrict), grid_summary.csv/.xlsx over every level,
    summary.md/.json ranking the subdistricts, and map.html (one overview drawn per grid
    cell). A subdistrict that fails on bad input is named on one line (exit 2); the others
    are written.
    """
    return run_region_and_write(args, args.config)


def run_region_and_write(args: argparse.Namespace, config_path) -> int:
    """Run a region (``--workers``/``--scheduler``/``--threads``) and write its outputs."""
    from pathlib import Path

    from firegrid.region import load_region_config, run_region
    from firegrid.region.report import prepare_region_folder, write_region_outputs

    region = load_region_config(config_path)
    default = region.output.folder or region.path.parent / "firegrid-region-output"
    # Refuse an unusable folder before spending the analysis time (checked again at the swap).
    folder = prepare_region_folder(Path(args.out) if args.out else Path(default), force=args.force)
    result = run_region(region, workers=args.workers, scheduler=args.scheduler,
                        threads=args.threads, progress=progress(args))  # fmt: skip
    written = write_region_outputs(result, folder, force=args.force)
    _print_region(result, written)
    for line in result.failures:
        print(line, file=sys.stderr)
    return EXIT_BAD_INPUT if result.failures else 0


def _print_region(result, written: dict) -> None:
    print(f"FireGrid region: {result.region.name}")
    folder = next(iter(written.values())).parent if written else None
    if folder is not None:
        print(f"outputs in {folder}:")
        for name in written:
            print(f"  {name}")
    for line in result.headline:
        print(f"- {line}")
    for row in result.subdistricts.itertuples():  # one line per subdistrict, not per building
        print(f"  {row.rank}. {row.subdistrict}: {row.buildings:,} buildings, mean risk "
              f"{row.risk_index_mean:.1f}")  # fmt: skip
    for note in result.notes:
        print(f"note: {note}")


__all__ = ["cmd_region", "region_args", "run_region_and_write"]
