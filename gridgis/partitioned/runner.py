"""Running partitions on a Dask cluster: retries, reports and the shared cutting helpers."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely

from gridgis.errors import GridgisError
from gridgis.standards import ClusterRules

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client


log = logging.getLogger(__name__)


class PartitionError(GridgisError):
    """A partition failed on every attempt: the run stopped and nothing was written."""

    exit_code = 4
    http_status = 503


# ======================================================================================
# Running partitions
# ======================================================================================


@dataclass
class RunReport:
    """What a partitioned run did: partitions, attempts of each, time.

    Attributes
    ----------
    analysis
        ``delineate``, ``assign``, ``coverage``, ``siting``, ``audit``, ``export`` or
        ``lookup``.
    partitions
        Tasks run (for coverage: over every halo round).
    attempts
        Partition key -> attempts started (more than 1: retried after an error or a
        lost worker).
    lost
        Partition key -> workers that died while running it (it then ran elsewhere).
    seconds
        Wall time of the run, s.
    workers
        Workers connected when the run started.
    notes
        Anything else worth recording (halo rounds of coverage…).
    """

    analysis: str
    partitions: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 0
    notes: list[str] = field(default_factory=list)
    lost: dict[str, int] = field(default_factory=dict)

    @property
    def retried(self) -> list[str]:
        """Partitions that needed more than one attempt."""
        return sorted(k for k, n in self.attempts.items() if n > 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": "dask.distributed",
            "analysis": self.analysis,
            "workers": self.workers,
            "partitions": self.partitions,
            "retried": {k: self.attempts[k] for k in self.retried},
            "workers_lost": dict(self.lost),
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }


@contextmanager
def _single_process() -> Iterator[None]:
    """Inside a worker: analyses must not fork pools of their own (worker processes are
    daemonic and the cluster already spreads the work)."""
    old = os.environ.get("GRIDGIS_WORKERS")
    os.environ["GRIDGIS_WORKERS"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("GRIDGIS_WORKERS", None)
        else:
            os.environ["GRIDGIS_WORKERS"] = old


def _suspicious(keys: list[str], dask_scheduler=None) -> dict[str, int]:
    """On the scheduler: how many workers died while running each task."""
    tasks = dask_scheduler.tasks
    return {k: int(tasks[k].suspicious) for k in keys if k in tasks}


def _attempt(topic: str, key: str, fn: Callable, *args: Any) -> Any:
    """Run one partition on a worker, recording the attempt (for the run report)."""
    try:
        from distributed import get_worker

        get_worker().log_event(topic, {"partition": key, "pid": os.getpid()})
    except (ImportError, ValueError):  # pragma: no cover - not on a worker
        pass
    with _single_process():
        return fn(*args)


class Runner:
    """Submits partitions with retries, gathers them in order, fills the report."""

    def __init__(self, client: Client, analysis: str, rules: ClusterRules) -> None:
        from gridgis.cluster import n_workers

        self.client = client
        self.rules = rules
        self.topic = f"gridgis-{analysis}-{uuid.uuid4().hex[:8]}"
        self.report = RunReport(analysis, workers=n_workers(client))
        self.start = time.perf_counter()

    def broadcast(self, value: Any) -> Any:
        """Send ``value`` (sent whole) to every worker once; a future. Each worker holds a
        copy, so a worker lost mid-run does not lose it. (Inputs of one partition travel
        with its task instead, so a retry can resend them.)"""
        return self.client.scatter([value], broadcast=True, hash=False)[0]

    def run(
        self,
        fn: Callable,
        items: Iterable[tuple[str, tuple]],
        window: int | None = None,
    ) -> list[Any]:
        """``fn(*args)`` for every ``(key, args)`` on the cluster; results in order.

        ``items`` may be a generator: with ``window`` (tasks in flight at once) only that
        many are drawn from it, submitted and held (their inputs and, on the scheduler,
        their pickled specs kept for retries) at any time; the next is drawn when one
        finishes, and a finished task is released as soon as its result is here. Without
        ``window`` every item is submitted at once.

        Raises
        ------
        PartitionError
            When a partition fails after ``rules.retries`` retries (or its worker keeps
            dying): the message names it and the cause.
        """
        if window is None:
            return self._run_all(fn, list(items))
        return self._run_window(fn, iter(items), max(1, int(window)))

    def _submit(self, fn: Callable, key: str, args: tuple):
        return self.client.submit(
            _attempt,
            self.topic,
            key,
            fn,
            *args,
            key=f"{self.topic}-{key}",
            retries=self.rules.retries,
            pure=False,
        )

    def _failed(self, futures: list, exc: Exception) -> PartitionError:
        failed = [f.key for f in futures if f.status == "error"] or ["?"]
        self._lost([f.key for f in futures])
        self._count()
        return PartitionError(
            f"{self.report.analysis}: partition {failed[0].removeprefix(self.topic + '-')}"
            f" failed after {self.rules.retries} retries ({type(exc).__name__}: {exc}); "
            "nothing was written"
        )

    def _run_all(self, fn: Callable, items: Sequence[tuple[str, tuple]]) -> list[Any]:
        futures = [self._submit(fn, key, args) for key, args in items]
        self.report.partitions += len(items)
        try:
            return self.client.gather(futures)
        except Exception as exc:
            raise self._failed(futures, exc) from exc
        finally:
            self._lost([f.key for f in futures])
            for f in futures:
                f.release()

    def _run_window(self, fn: Callable, items: Iterator[tuple[str, tuple]], window: int) -> list:
        """:meth:`run` with at most ``window`` tasks in flight (see there)."""
        from distributed import as_completed

        results: dict[int, Any] = {}
        index: dict[str, int] = {}
        keys: list[str] = []
        live: dict[str, Any] = {}

        def more() -> Any:
            item = next(items, None)
            if item is None:
                return None
            f = self._submit(fn, item[0], item[1])
            index[f.key] = len(keys)
            keys.append(f.key)
            live[f.key] = f
            self.report.partitions += 1
            return f

        try:
            done = as_completed([f for f in (more() for _ in range(window)) if f is not None])
            for f in done:
                try:
                    results[index[f.key]] = f.result()
                except Exception as exc:
                    raise self._failed(list(live.values()), exc) from exc
                self._lost([f.key])
                live.pop(f.key).release()
                nxt = more()
                if nxt is not None:
                    done.add(nxt)
        finally:
            self._lost(list(live))
            for f in live.values():
                f.release()
        return [results[i] for i in range(len(keys))]

    def _lost(self, keys: list[str]) -> None:
        """Record partitions whose worker died while running them (the scheduler's
        ``suspicious`` count of the task): they ran again elsewhere."""
        got = self.client.run_on_scheduler(_suspicious, keys)
        for key, n in got.items():
            if n:
                name = key.removeprefix(self.topic + "-")
                self.report.lost[name] = max(self.report.lost.get(name, 0), int(n))

    def _count(self) -> None:
        counts: dict[str, int] = {}
        for _, msg in self.client.get_events(self.topic):
            counts[msg["partition"]] = counts.get(msg["partition"], 0) + 1
        for name, n in self.report.lost.items():
            counts[name] = max(counts.get(name, 0), n + 1)
        self.report.attempts = counts

    def finish(self) -> RunReport:
        self._count()
        self.report.seconds = time.perf_counter() - self.start
        if self.report.retried:
            log.warning(
                "%s: partitions retried: %s", self.report.analysis, ", ".join(self.report.retried)
            )
        return self.report


def release_memory() -> None:
    """Give memory freed so far back to the system: collect garbage cycles (Dask's
    messages and futures hold the frames of results received) and, with glibc, trim the
    heap (``malloc_trim``), so the client's next big step starts from what it really
    holds rather than from a fragmented heap. A no-op where glibc is absent."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        pass


def balanced_cuts(weights: np.ndarray, parts: int, breaks: np.ndarray | None = None) -> list:
    """Split positions 0..n-1 (already in the wanted order) into at most ``parts``
    contiguous ranges of about equal total weight, cutting only where ``breaks`` is True
    (default: anywhere). Returns a list of (start, stop)."""
    n = len(weights)
    if n == 0:
        return []
    ok = np.ones(n, bool) if breaks is None else np.asarray(breaks, bool)
    ok[0] = True
    cum = np.cumsum(np.asarray(weights, float))
    total = cum[-1] if cum[-1] > 0 else 1.0
    starts = [0]
    for k in range(1, max(1, parts)):
        goal = total * k / parts
        cand = np.flatnonzero(ok & (np.r_[0.0, cum[:-1]] >= goal))
        if len(cand) and cand[0] > starts[-1]:
            starts.append(int(cand[0]))
    return list(zip(starts, [*starts[1:], n], strict=True))


def nearest_cuts(weights: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """At most ``parts`` contiguous ranges ``(start, stop)`` of positions 0..n-1 of about
    equal total weight, each cut where the running total comes nearest to its share
    (never empty; unlike :func:`balanced_cuts`, a cut may come before its share)."""
    n = len(weights)
    if n == 0:
        return []
    cum = np.cumsum(np.asarray(weights, float))
    starts = [0]
    for k in range(1, max(1, parts)):
        i = int(np.argmin(np.abs(cum - cum[-1] * k / parts))) + 1
        if starts[-1] < i < n:
            starts.append(i)
    return list(zip(starts, [*starts[1:], n], strict=True))


def n_workers_of(client: Client) -> int:
    from gridgis.cluster import n_workers

    return n_workers(client)


def n_parts(client: Client, rules: ClusterRules, n_items: int) -> int:
    from gridgis.cluster import n_workers

    return max(1, min(n_items, n_workers(client) * rules.partitions_per_worker))


def hilbert_order(xy: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    """Hilbert distance of points within ``bounds`` (geopandas' implementation)."""
    if len(xy) == 0:
        return np.empty(0, np.int64)
    pts = gpd.GeoSeries(shapely.points(xy))
    return np.asarray(pts.hilbert_distance(total_bounds=tuple(bounds), level=16), np.int64)
