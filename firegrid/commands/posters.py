"""``firegrid posters``: printable A3 grid posters from a config or a finished run's folder."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from firegrid.commands import command, positive_int, progress, threads_arg


@dataclass
class RunResults:
    """The layers of a run, read from its output folder or computed from its config.

    ``where`` names the source in messages; ``config`` is None for an output folder.
    """

    layers: dict[str, Any]
    district: str
    as_of: str | None
    where: str
    config: Any = None


def source_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="CONFIG_OR_FOLDER",
        help="the district's TOML config (the analysis runs first, up to the risk step), or "
        "the output folder of a finished 'firegrid run' holding results.gpkg (seconds)",
    )


def print_args(parser: argparse.ArgumentParser) -> None:
    """The arguments ``posters`` and ``inspection`` share: source, output folder, level."""
    source_arg(parser)
    parser.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="output folder (FireGrid's previous files there are swapped for the new ones; "
        "it may not be, or lie inside, the source output folder)",
    )
    parser.add_argument(
        "--level", type=positive_int, metavar="N", help="grid level (default: the finest)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write even though the output folder holds files FireGrid did not write "
        "(they are kept, never deleted)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    threads_arg(parser)


def load_results(source: str | Path, *, args: argparse.Namespace | None = None) -> RunResults:
    """A run's layers: read from an output folder's ``results.gpkg``, else run the config.

    A config runs the pipeline up to the risk step (buildings graded, isochrones drawn).

    Raises
    ------
    ConfigError
        A folder without ``results.gpkg``, or a bad config (naming it).
    """
    path = Path(source)
    if path.is_dir():
        return _from_folder(path)
    from firegrid.config import load_config
    from firegrid.pipeline import run_pipeline

    config = load_config(path)
    run = run_pipeline(
        config,
        until="risk",
        progress=progress(args) if args is not None else False,
        threads=getattr(args, "threads", None),
    )
    as_of = run.district.as_of if run.district is not None else config.as_of
    return RunResults(
        layers={k: v for k, v in run.layers.items() if v is not None},
        district=config.name,
        as_of=str(as_of) if as_of else None,
        where=str(config.path),
        config=config,
    )


def _from_folder(folder: Path) -> RunResults:
    from firegrid.maps.posters import POSTER_LAYERS
    from firegrid.reports import GPKG_FILE, read_result_layers, read_summary

    layers = read_result_layers(folder, POSTER_LAYERS, required=("grids",))
    summary = read_summary(folder)
    return RunResults(
        layers=layers,
        district=str(summary.get("district") or folder.name),
        as_of=summary.get("as_of"),
        where=str(folder / GPKG_FILE),
    )


def check_out(args: argparse.Namespace) -> Path:
    """The output folder, refused early when unusable, foreign, or the source's own folder."""
    from firegrid.outputs import prepare_output_folder
    from firegrid.spatial.errors import ConfigError

    out = prepare_output_folder(args.out, force=args.force)
    source = Path(args.source).expanduser().resolve()
    if source.is_dir() and (out == source or source in out.parents):
        raise ConfigError(
            f"{out}: is (or lies inside) the output folder being read; choose another --out "
            "(the next 'firegrid run' there would refuse the foreign folder)"
        )
    return out


def _poster_args(parser: argparse.ArgumentParser) -> None:
    print_args(parser)
    parser.add_argument(
        "--format", choices=("pdf", "png"), help="pdf (default, searchable) or png images"
    )
    parser.add_argument(
        "--dpi", type=positive_int, help="resolution of PNG pages (default [posters] dpi, 150)"
    )
    parser.add_argument(
        "--public-fields",
        metavar="A,B,…",
        help="grids columns printed in the contact block (default [posters] public_fields); "
        "personal data reaches a poster only through this list",
    )


def poster_options(results: RunResults, args: argparse.Namespace | None = None):
    """The ``[posters]`` options of the config (when there is one), overridden by the
    command line's ``--level``, ``--format``, ``--dpi`` and ``--public-fields``."""
    from firegrid.maps.poster_options import PosterOptions
    from firegrid.spatial.errors import ConfigError

    table = results.config.section("posters") if results.config is not None else {}
    try:
        options = PosterOptions.from_mapping(table)
        changes = _changes(args)
        return replace(options, **changes) if changes else options
    except ConfigError as exc:
        raise ConfigError(f"{results.where}: {exc}") from exc


def _changes(args: argparse.Namespace | None) -> dict[str, Any]:
    if args is None:
        return {}
    changes = {k: getattr(args, k, None) for k in ("level", "format", "dpi")}
    fields = getattr(args, "public_fields", None)
    if fields is not None:
        changes["public_fields"] = tuple(f.strip() for f in fields.split(",") if f.strip())
    return {k: v for k, v in changes.items() if v is not None}


@command("posters", setup=_poster_args)
def cmd_posters(args: argparse.Namespace) -> int:
    """Printable A3 posters: one page per grid cell of a level and one for the subdistrict.

    Each page: title, map (streets and their names, buildings by risk grade, hydrants and
    water sources, micro-stations with their 3-minute areas, north arrow, scale bar), legend,
    the cell's figures and its public contact block ([posters] public_fields or
    --public-fields). Drawn offline, Chinese embedded as searchable text (PDF).
    """
    from firegrid.maps.posters import check_public_fields, write_posters
    from firegrid.outputs import write_folder_atomically

    out = check_out(args)
    results = load_results(args.source, args=args)
    options = poster_options(results, args)
    check_public_fields(results.layers["grids"], options.public_fields, where=results.where)
    written: list[Path] = []

    def write(tmp: Path) -> None:
        written.extend(
            write_posters(
                results.layers, tmp, district=results.district, options=options, as_of=results.as_of
            )
        )

    write_folder_atomically(out, write, force=args.force)
    print(f"{len(written)} poster pages ({options.format}) written to {out}")
    return 0
