"""The ``firegrid`` command line: bad input ends in one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import inspect
import sys
import warnings
from collections.abc import Callable, Sequence

from firegrid.spatial.errors import FireGridError

EXIT_BAD_INPUT = 2

COMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}


def command(name: str, *, setup: Callable[[argparse.ArgumentParser], None]):
    """Register a sub-command: ``setup`` adds its arguments, the decorated function runs it."""

    def register(func: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (setup, func)
        return func

    return register


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="path to the district's TOML config")


@command("validate", setup=_config_arg)
def cmd_validate(args: argparse.Namespace) -> int:
    """Check every layer of a config and its road network in one pass; print every problem on
    one line naming its file, row/feature and column, then the count (exit 2 on errors)."""
    from firegrid.config import district_from_config, load_config

    config = load_config(args.config)
    district, report = district_from_config(config)
    network_line = _check_network(config, district, report)
    for line in report.lines():
        print(line)
    if network_line:
        print(network_line)
    n_warn = len(report.warnings)
    warned = f"; {n_warn} warning(s)" if n_warn else ""
    if report.ok:
        print(
            f"OK: {config.name}: {len(district.layers)} layers valid, working CRS "
            f"{district.crs.to_string()}{warned}"
        )
        return 0
    print(f"{len(report.errors)} error(s){warned}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _check_network(config, district, report) -> str | None:
    """Read the network file the config names and report what the analysis will meet.

    Ways cut at the extract's edge, disconnected pieces of the engine graph, unknown highway
    values, one-way edges, and the district's buildings that the cut (or a disconnected piece)
    leaves unreachable by engine. A place name is only downloaded by a run.
    """
    from pathlib import Path

    from firegrid.spatial.errors import ConfigError, NetworkError
    from firegrid.spatial.network.load import network_report, read_network, require_near

    source = config.network_source
    if source is None:
        report.warn(
            "the config names no road network ([network] source or place): "
            "access, water along streets and siting will be skipped"
        )
        return None
    if "place" in config.network and "source" not in config.network:
        return f"network: place {source!r}, downloaded from OpenStreetMap when a run needs it"
    if not Path(source).exists():
        report.error("road network file not found", file=source)
        return None
    try:
        table = read_network(source, crs=district.crs if district.layers else None)
        require_near(table, district.layers.get("grids"), source=source)
        facts = network_report(
            table,
            buildings=district.layers.get("buildings"),
            stations=district.layers.get("stations"),
            params=config.params["access"],
        )
    except (NetworkError, ConfigError) as exc:
        report.error(str(exc))
        return None
    for line in facts.warnings:
        report.warn(f"road network {source}: {line}")
    return f"network: {source}: {facts.summary}"


# --------------------------------------------------------------------------------------------
# Pipeline commands: each runs the steps it needs and writes its outputs atomically.


def _out_arg(parser: argparse.ArgumentParser, *, default_help: str) -> None:
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
    _threads_arg(parser)


def _threads_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help="threads each analysis may use for its parallel parts (default: every core "
        "this process may run on)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _step_args(parser: argparse.ArgumentParser) -> None:
    _config_arg(parser)
    _out_arg(
        parser,
        default_help="default: [output] folder of the config, else firegrid-output/ beside it",
    )


def _progress(args: argparse.Namespace) -> bool | None:
    return False if getattr(args, "quiet", False) else None


def _report(run, written: dict, *, kept: Sequence[str] = ()) -> None:
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


def _run_and_write(args: argparse.Namespace, config_path, plan: str) -> int:
    from pathlib import Path

    from firegrid.config import load_config
    from firegrid.outputs import foreign_entries, prepare_output_folder
    from firegrid.pipeline import default_output_folder, run_pipeline, write_run_outputs
    from firegrid.reports import OUTPUT_FILES

    config = load_config(config_path)
    # Refuse an unusable output folder, or one holding files FireGrid did not write, before
    # spending the analysis time (checked again just before the swap).
    folder = prepare_output_folder(
        Path(args.out) if args.out else default_output_folder(config),
        force=args.force,
        reserved=OUTPUT_FILES,
    )
    run = run_pipeline(config, until=plan, progress=_progress(args), threads=args.threads)
    written = write_run_outputs(run, folder, force=args.force)
    # Without --force a foreign file stops the run before the swap, so only --force can have
    # kept one; listing them re-hashes every output, which is not free at city size.
    _report(run, written, kept=foreign_entries(folder) if args.force else [])
    return 0


@command("demo", setup=lambda p: _out_arg(p, default_help="default: ./firegrid-demo-output"))
def cmd_demo(args: argparse.Namespace) -> int:
    """Run the embedded (synthetic) demo district end to end and write every output.

    Writes map.html (self-contained, works offline), results.gpkg, grid_summary.csv and
    grid_summary.xlsx, summary.md and summary.json into the output folder
    (default ./firegrid-demo-output) and prints the headline figures.
    """
    from firegrid.pipeline import demo_config_path

    if args.out is None:
        args.out = "firegrid-demo-output"
    return _run_and_write(args, demo_config_path(), "run")


@command("run", setup=_step_args)
def cmd_run(args: argparse.Namespace) -> int:
    """Run every step on a district: access, water, risk, siting, map and reports.

    Writes map.html, results.gpkg, grid_summary.csv/.xlsx, summary.md and summary.json.
    """
    return _run_and_write(args, args.config, "run")


@command("access", setup=_step_args)
def cmd_access(args: argparse.Namespace) -> int:
    """Response times: seconds from the fastest micro-station and fire station to each building.

    Times include each station's turnout; targets are 180 s (micro-station, "3 minutes on
    scene") and 300 s (fire station, "5 minutes"). Adds t_micro_s, t_fire_s, covered_3min,
    covered_5min, shortfall_*_s (seconds over target) and access_m (metres to the street);
    draws 1/3/5-minute isochrones and areas of responsibility.
    """
    return _run_and_write(args, args.config, "access")


@command("water", setup=_step_args)
def cmd_water(args: argparse.Namespace) -> int:
    """Fire water: buildings within 150 m of a working hydrant or usable source, along streets.

    Distances are metres along the street network (GB 50974-2014: hydrant protection radius
    150 m, spacing 120 m). Adds d_hydrant_m, d_hydrant_net_m, water_covered, water_deficient;
    outputs water-deficient zones, spacing gaps and the fewest new hydrants needed.
    """
    return _run_and_write(args, args.config, "water")


@command("risk", setup=_step_args)
def cmd_risk(args: argparse.Namespace) -> int:
    """Risk index (0–100), per-factor contributions, grades 1 重大 … 4 低, grid roll-up.

    Runs access and water first (their shortfalls feed the index); the hazard ledger is judged
    on [district] as_of; with an incidents layer a fire model adds p_fire (fires per year).
    """
    return _run_and_write(args, args.config, "risk")


@command("siting", setup=_step_args)
def cmd_siting(args: argparse.Namespace) -> int:
    """Where new micro-stations reach the most buildings within 3 minutes (180 s, turnout 60 s).

    Maximal coverage for [siting] k sites, the marginal gain curve and the minimal count.
    """
    return _run_and_write(args, args.config, "siting")


def _map_args(parser: argparse.ArgumentParser) -> None:
    _config_arg(parser)
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
    _threads_arg(parser)


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
    run = run_pipeline(config, until="run", progress=_progress(args), threads=args.threads)
    path = write_file(path, map_html(run, options=options), force=args.force)
    print(f"map written to {path}")
    for note in run.notes:
        print(f"note: {note}")
    return 0


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
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firegrid",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a Python warning as one prefixed line (not the source path and code line)."""
    text = " ".join(str(message).split())
    print(f"firegrid: warning: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _warning_line  # restored when the block ends
            return int(args.func(args) or 0)
    except FireGridError as exc:
        # One line whatever the message holds (a library's text may span several).
        text = " ".join(str(exc).splitlines())
        print(f"firegrid: error: {text}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("firegrid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
