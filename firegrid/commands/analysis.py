"""The analysis commands: validate a district, run the demo, the whole run or one step of it."""

from __future__ import annotations

import argparse
import sys

from firegrid.commands import (
    EXIT_BAD_INPUT,
    command,
    config_arg,
    out_arg,
    run_and_write,
    step_args,
)
from firegrid.commands.region import region_args, run_region_and_write


@command("validate", setup=config_arg)
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


def _demo_args(parser: argparse.ArgumentParser) -> None:
    out_arg(parser, default_help="default: ./firegrid-demo-output")
    parser.add_argument(
        "--region",
        action="store_true",
        help="run the embedded demo region (data/region/region.toml: synthetic subdistricts "
        "sharing streets and stations) as a region run, see 'firegrid region'",
    )
    region_args(parser)


@command("demo", setup=_demo_args)
def cmd_demo(args: argparse.Namespace) -> int:
    """Run the embedded (synthetic) demo district end to end and write every output.

    Writes map.html (self-contained, works offline), results.gpkg, grid_summary.csv and
    grid_summary.xlsx, summary.md and summary.json into the output folder
    (default ./firegrid-demo-output) and prints the headline figures. With --region, runs the
    demo region instead, each subdistrict a partition (--workers, --scheduler, --threads).
    """
    from firegrid.demo import demo_config_path, demo_region_path

    if args.out is None:
        args.out = "firegrid-demo-output"
    if args.region:
        return run_region_and_write(args, demo_region_path())
    return run_and_write(args, demo_config_path(), "run")


@command("run", setup=step_args)
def cmd_run(args: argparse.Namespace) -> int:
    """Run every step on a district: access, water, risk, siting, map and reports.

    Writes map.html, results.gpkg, grid_summary.csv/.xlsx, summary.md and summary.json.
    """
    return run_and_write(args, args.config, "run")


@command("access", setup=step_args)
def cmd_access(args: argparse.Namespace) -> int:
    """Response times: seconds from the fastest micro-station and fire station to each building.

    Times include each station's turnout; targets are 180 s (micro-station, "3 minutes on
    scene") and 300 s (fire station, "5 minutes"). Adds t_micro_s, t_fire_s, covered_3min,
    covered_5min, shortfall_*_s (seconds over target) and access_m (metres to the street);
    draws 1/3/5-minute isochrones and areas of responsibility.
    """
    return run_and_write(args, args.config, "access")


@command("water", setup=step_args)
def cmd_water(args: argparse.Namespace) -> int:
    """Fire water: buildings within 150 m of a working hydrant or usable source, along streets.

    Distances are metres along the street network (GB 50974-2014: hydrant protection radius
    150 m, spacing 120 m). Adds d_hydrant_m, d_hydrant_net_m, water_covered, water_deficient;
    outputs water-deficient zones, spacing gaps and the fewest new hydrants needed.
    """
    return run_and_write(args, args.config, "water")


@command("risk", setup=step_args)
def cmd_risk(args: argparse.Namespace) -> int:
    """Risk index (0–100), per-factor contributions, grades 1 重大 … 4 低, grid roll-up.

    Runs access and water first (their shortfalls feed the index); the hazard ledger is judged
    on [district] as_of; with an incidents layer a fire model adds p_fire (fires per year).
    """
    return run_and_write(args, args.config, "risk")


@command("siting", setup=step_args)
def cmd_siting(args: argparse.Namespace) -> int:
    """Where new micro-stations reach the most buildings within 3 minutes (180 s, turnout 60 s).

    Maximal coverage for [siting] k sites, the marginal gain curve and the minimal count.
    """
    return run_and_write(args, args.config, "siting")
