"""``firegrid map``: write only the interactive map, from a config or an existing output folder."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from firegrid.commands import command, progress, threads_arg


def _map_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        metavar="CONFIG_OR_FOLDER",
        help="the district's TOML config (runs the analysis), or an output folder of an "
        "earlier run (redraws its map from results.gpkg and summary.json in seconds)",
    )
    parser.add_argument(
        "--out", metavar="FILE", help="HTML file (default: map.html in the output folder)"
    )
    parser.add_argument(
        "--config",
        dest="map_config",
        metavar="CONFIG",
        help="with an output folder: take the map options ([map], allow_fields included) "
        "from this config; without it only FireGrid's own columns are shown",
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

    Given a config, runs every analysis step first. Given an output folder of an earlier run,
    redraws the map from its results.gpkg and summary.json without rerunning anything; the
    folder does not carry the config, so only canonical and computed columns are shown unless
    --config names the config whose [map] allow_fields allows more. Personal-looking columns
    (names, phone and ID numbers) are always dropped unless named explicitly. An existing file
    is replaced only when FireGrid wrote it (listed unchanged in its folder's
    .firegrid-manifest.json) or with --force.
    """
    source = Path(args.config)
    if source.is_dir():
        return _redraw(source, args)
    if args.map_config:
        from firegrid.spatial.errors import ConfigError

        raise ConfigError(f"{source}: --config goes with an output folder, not with a config")
    return _run_and_draw(args)


def _options(config, args: argparse.Namespace):
    """The config's ``[map]`` options (defaults without a config) with the command's own."""
    from dataclasses import replace

    from firegrid.maps.options import MapOptions

    options = config.params["map"] if config is not None else MapOptions()
    changes = {k: v for k, v in (("language", args.language), ("basemap", args.basemap)) if v}
    return replace(options, **changes) if changes else options


def _run_and_draw(args: argparse.Namespace) -> int:
    from firegrid.config import load_config
    from firegrid.outputs import check_output_file, write_file
    from firegrid.pipeline import default_output_folder, map_html, run_pipeline
    from firegrid.reports import MAP_FILE

    config = load_config(args.config)
    options = _options(config, args)
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


def _redraw(folder: Path, args: argparse.Namespace) -> int:
    """Redraw ``folder``'s map from its results.gpkg and summary.json."""
    from firegrid.config import load_config
    from firegrid.maps.district_map import MAP_LAYERS, risk_map
    from firegrid.maps.export import to_html
    from firegrid.outputs import check_output_file, write_file
    from firegrid.reports import MAP_FILE, read_result_layers, read_summary

    config = load_config(args.map_config) if args.map_config else None
    options = _options(config, args)
    path = Path(args.out) if args.out else folder / MAP_FILE
    check_output_file(path, force=args.force)
    summary = read_summary(folder)
    m = risk_map(
        read_result_layers(folder, MAP_LAYERS),
        options=options,
        title=options.title or summary.get("district"),
        as_of=_as_of(summary),
        values=summary_values(summary),
    )
    path = write_file(path, to_html(m), force=args.force)
    print(f"map redrawn from {folder} and written to {path}")
    return 0


def _as_of(summary: dict) -> date | None:
    try:
        return date.fromisoformat(str(summary["as_of"]))
    except (KeyError, ValueError):
        return None


def summary_values(summary: dict) -> dict[str, float]:
    """The run's parameters the legend quotes, from its summary.json figures (response
    targets in seconds and minutes, hydrant protection radius in metres); what the summary
    lacks keeps the defaults of :func:`firegrid.maps.options.parameter_values`."""
    figures = summary.get("figures") or {}
    access, water = figures.get("access") or {}, figures.get("water") or {}
    values: dict[str, float] = {}
    for key in ("target_micro_s", "target_fire_s"):
        if isinstance(access.get(key), int | float):
            values[key] = float(access[key])
            values[key.replace("_s", "_min")] = float(access[key]) / 60.0
    if isinstance(water.get("hydrant_radius_m"), int | float):
        values["hydrant_radius_m"] = float(water["hydrant_radius_m"])
    return values
