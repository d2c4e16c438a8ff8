"""Run a region: partitions scheduled on dask.distributed (or in process), then merged.

:func:`run_region` reads the region once on the client (layers validated once, the street
network read once), cuts one window per subdistrict (:mod:`firegrid.region.partitions`),
submits one task per window as workers free up (the windows are cut as they are submitted,
not all at once), and merges what comes back (:mod:`firegrid.region.merge`).

Scheduling: ``workers=0`` runs the partitions one after another in this process, without
Dask; ``scheduler="tcp://host:8786"`` uses an existing cluster; otherwise a LocalCluster of
``workers`` processes (default: 2, or the cores if fewer) is started and closed. Each task is
submitted with retries; a worker killed mid-run is replaced by Dask and its partitions are run
again, so the result does not change. A partition that fails on bad input comes back as an
error naming its subdistrict and file; the others are kept.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from firegrid.context import RunContext
from firegrid.pipeline import run_step
from firegrid.region.config import RegionConfig, load_region_config
from firegrid.region.merge import RegionResult, merge_subdistricts, merge_windows
from firegrid.region.partitions import iter_windows, partition_cells, region_halo
from firegrid.region.work import PartitionResult, analyse_subdistrict, analyse_window
from firegrid.spatial.errors import ConfigError
from firegrid.steps import require_as_of

DEFAULT_WORKERS = 2
# A task is run again this many times when it raises something other than bad input (a
# worker's death is handled by the scheduler itself: it reschedules the task elsewhere).
RETRIES = 2
# Partitions submitted per worker at a time: one running and one waiting, so a worker never
# waits for the client to cut the next window, and the client holds few windows at once.
IN_FLIGHT_PER_WORKER = 2


def run_region(
    config: RegionConfig | str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    whole: bool = False,
) -> RegionResult:
    """Analyse every subdistrict of a region as a partition and merge the results.

    Parameters
    ----------
    config : RegionConfig or path
        The region TOML (:mod:`firegrid.region.config`).
    workers : int, optional
        Dask worker processes of a LocalCluster (default 2, at most the cores); 0 runs the
        partitions in this process without Dask.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); ``workers`` is then
        ignored.
    threads : int, optional
        Threads per partition for its parallel parts (default: cores // workers, at least 1).
    progress : bool or None
        Partitions done / total and the Dask dashboard address on stderr (None: when stderr
        is a terminal).
    whole : bool
        Form (b) only: analyse the region in one piece in this process, without windows (the
        reference a partitioned run equals within the horizon).

    Returns
    -------
    RegionResult
        Region-wide layers, per-grid tables, one row per subdistrict, totals, failures.

    Raises
    ------
    FireGridError
        Bad input the whole region shares (the region config, a layer of a split region):
        one line naming the file. A partition's own bad input is a failure in the result.
    """
    region = config if isinstance(config, RegionConfig) else load_region_config(config)
    t0 = time.perf_counter()
    if region.split:
        result = _run_split(region, workers, scheduler, threads, progress, whole)
    else:
        result = _run_subdistricts(region, workers, scheduler, threads, progress)
    result.seconds = time.perf_counter() - t0
    return result


def _run_split(region: RegionConfig, workers, scheduler, threads, progress, whole: bool):
    try:
        require_as_of(region.base, ["risk"])
    except ConfigError as exc:  # the district's words; a region file has [region] as_of
        raise ConfigError(str(exc).replace("[district]", "[region]")) from exc
    ctx = RunContext(region.base)
    for step in ("load", "network"):
        run_step(ctx, step)
    p = region.base.params
    halo = region_halo(p["access"], p["water"], horizon_s=region.horizon_s)
    if whole:
        for step in ("access", "water"):
            run_step(ctx, step)
        return merge_windows(ctx, region, [], halo=halo, whole=True)
    level = region.partition_level
    windows = iter_windows(ctx.district, ctx.network, level=level, halo=halo)
    tasks = ((w.name, analyse_window, (w, region.base)) for w in windows)
    total = len(partition_cells(ctx.district.layers["grids"], level))
    results = schedule(tasks, total=total, workers=workers, scheduler=scheduler,
                       threads=threads, progress=progress)  # fmt: skip
    return merge_windows(ctx, region, results, halo=halo)


def _run_subdistricts(region: RegionConfig, workers, scheduler, threads, progress):
    tasks = [
        (s.name, _subdistrict_task, (s.name, s.config, region.as_of)) for s in region.subdistricts
    ]
    results = schedule(tasks, total=len(tasks), workers=workers, scheduler=scheduler,
                       threads=threads, progress=progress)  # fmt: skip
    return merge_subdistricts(region, results)


def _subdistrict_task(name, config, as_of, *, threads=None) -> PartitionResult:
    return analyse_subdistrict(name, config, as_of=as_of, threads=threads)


# --------------------------------------------------------------------------------------------
# Scheduling


def schedule(
    tasks: Iterable[tuple[str, Callable[..., PartitionResult], tuple]],
    *,
    total: int,
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    progress: bool | None = None,
) -> list[PartitionResult]:
    """Run ``fn(*args, threads=…)`` for each ``(name, fn, args)``; results in task order.

    ``tasks`` may be a generator (``total`` of them): a task is taken from it only when it can
    start soon — in process, one at a time; on Dask, :data:`IN_FLIGHT_PER_WORKER` per worker —
    so the client never holds every partition's input at once. See :func:`run_region` for
    ``workers``, ``scheduler``, ``threads`` and ``progress``.
    """
    if workers is not None and workers < 0:
        raise ConfigError(f"--workers must be 0 or more, not {workers}")
    if scheduler is None and workers == 0:
        return _in_process(tasks, total, threads, progress)
    return _on_dask(tasks, total, workers, scheduler, threads, progress)


def _in_process(tasks, total, threads, progress) -> list[PartitionResult]:
    bar = _Progress(total, progress, where="in process (no Dask)")
    out = []
    for _, fn, args in tasks:
        out.append(fn(*args, threads=threads))
        bar.done(out[-1])
    bar.close()
    return out


def _on_dask(tasks, total, workers, scheduler, threads, progress) -> list[PartitionResult]:
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler is None:
        n = workers or min(DEFAULT_WORKERS, os.cpu_count() or 1)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)  # fmt: skip
        client = Client(cluster)
    else:
        client = _connect(Client, scheduler)
    try:
        n = max(1, len(client.scheduler_info().get("workers", {})))
        per_task = threads or max(1, (os.cpu_count() or 1) // n)
        bar = _Progress(total, progress, where=f"dashboard {client.dashboard_link}")
        with warnings.catch_warnings():
            # A window carries its own streets: Dask's advice to scatter large arguments or
            # load them through Dask does not apply (scattered data would die with its worker,
            # with no rescheduling), and a user would get one warning per partition.
            warnings.filterwarnings("ignore", message=r".*[Ll]arge (object|graph).*")
            out = _Submitter(client, tasks, threads=per_task).run(IN_FLIGHT_PER_WORKER * n, bar)
        bar.close()
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


class _Submitter:
    """Submits tasks as earlier ones complete, keeping ``in_flight`` of them on the cluster.

    Each future is keyed by this run and the partition's name, and released once its result
    is fetched: Dask keeps a result in its worker's memory while the client holds the future,
    so a worker's memory would grow with the partitions it ran.
    """

    def __init__(self, client, tasks, *, threads: int) -> None:
        self.client = client
        self.tasks = enumerate(tasks)
        self.threads = threads
        self.run_id = uuid.uuid4().hex[:8]  # keys of this run only, on a cluster shared by runs
        self.names: dict[str, tuple[int, str]] = {}

    def run(self, in_flight: int, bar: _Progress) -> list[PartitionResult]:
        from distributed import as_completed

        running = as_completed()
        for _ in range(in_flight):
            self._submit_next(running)
        out: dict[int, PartitionResult] = {}
        for future in running:
            i, result = self._fetched(future)
            out[i] = result
            bar.done(result)
            self._submit_next(running)
        return [out[i] for i in range(len(out))]

    def _submit_next(self, running) -> None:
        task = next(self.tasks, None)
        if task is None:
            return
        i, (name, fn, args) = task
        future = self.client.submit(
            fn, *args, threads=self.threads, key=f"firegrid-{self.run_id}-{i}-{_slug(name)}",
            retries=RETRIES, pure=False,
        )  # fmt: skip
        self.names[future.key] = (i, name)
        running.add(future)

    def _fetched(self, future) -> tuple[int, PartitionResult]:
        """The result; a partition whose workers kept dying (Dask gives up after
        ``distributed.scheduler.allowed-failures``) is a failure naming it; any other
        exception is a bug and is raised."""
        from distributed.scheduler import KilledWorker

        i, name = self.names.pop(future.key)
        try:
            result = future.result()
        except KilledWorker:
            result = PartitionResult(name, error=f"{name}: every worker that ran this partition "
                                     "died (out of memory?); the other partitions are kept")  # fmt: skip
        future.release()
        return i, result


def _connect(client_class, address: str):
    try:
        return client_class(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"--scheduler {address}: cannot reach a Dask scheduler ({exc})") from exc


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)[:40]


class _Progress:
    """``partitions 3/12 done`` on stderr, with where they run (the dashboard address)."""

    def __init__(self, total: int, progress: bool | None, *, where: str) -> None:
        from tqdm.auto import tqdm

        show = sys.stderr.isatty() if progress is None else progress
        if show:
            print(f"firegrid region: {total} partitions, {where}", file=sys.stderr)
        self.bar = tqdm(total=total, desc="partitions", unit="partition", disable=not show,
                        leave=False, file=sys.stderr)  # fmt: skip

    def done(self, result: PartitionResult) -> None:
        self.bar.set_postfix_str(result.name[:30])
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
