"""Open a Dask client from a cluster spec: the one way gridgis reaches more than one core.

Specs
-----
``None`` (or ``""``, ``"none"``)
    No cluster: every analysis runs in this process (the default and the reference).
``"local"`` / ``"local:N"``
    A :class:`distributed.LocalCluster` of N worker *processes* (default: the CPUs this
    process may use), one thread each, no dashboard, loopback only — the way to use every
    core of one machine.
``"tcp://host:8786"``
    An existing scheduler (``dask scheduler`` on one machine, ``dask worker
    tcp://host:8786`` on each node).

Partitioned analyses (:mod:`gridgis.partitioned`) take the client this yields.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridgis.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

log = logging.getLogger(__name__)

_LOCAL = re.compile(r"^local(?::(\d+))?$")
_TCP = re.compile(r"^(tcp|tls)://[^\s/:]+(:\d+)?/?$")


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed cluster spec.

    Attributes
    ----------
    kind
        ``"none"``, ``"local"`` or ``"remote"``.
    workers
        Worker processes of a local cluster (None for the CPU count); unused otherwise.
    address
        Scheduler address of a remote cluster.
    """

    kind: str
    workers: int | None = None
    address: str | None = None

    @property
    def text(self) -> str:
        if self.kind == "local":
            return "local" if self.workers is None else f"local:{self.workers}"
        return self.address or "none"


def parse_cluster(spec: str | None) -> ClusterSpec:
    """Parse ``None``, ``"local"``, ``"local:N"`` or ``"tcp://host:port"``.

    Raises
    ------
    InputError
        For any other text (the message lists the accepted forms).
    """
    text = (spec or "").strip()
    if text.lower() in ("", "none", "off"):
        return ClusterSpec("none")
    m = _LOCAL.match(text.lower())
    if m:
        n = int(m.group(1)) if m.group(1) else None
        if n is not None and n < 1:
            raise InputError(f"cluster '{text}': a local cluster needs at least 1 worker")
        return ClusterSpec("local", workers=n)
    if _TCP.match(text):
        return ClusterSpec("remote", address=text.rstrip("/"))
    raise InputError(
        f"cluster '{text}': expected local, local:N (N worker processes) or "
        "tcp://host:port (a running dask scheduler)"
    )


def default_workers() -> int:
    """Worker processes of ``"local"``: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def open_client(
    spec: str | ClusterSpec | None,
    memory_limit: str | int | None = None,
    threads_per_worker: int = 1,
) -> Iterator[Client | None]:
    """Yield a connected :class:`distributed.Client`, or ``None`` for no cluster.

    A local cluster is started here and shut down on exit (workers are processes, no
    dashboard, bound to loopback); a remote scheduler is only connected to.

    Parameters
    ----------
    spec
        See the module docstring.
    memory_limit
        Per-worker memory limit of a local cluster (bytes or ``"4GB"``; default: the
        machine's memory divided among the workers, Dask's own default).
    threads_per_worker
        Threads per local worker process (1: the analyses are CPU-bound Python).
    """
    parsed = spec if isinstance(spec, ClusterSpec) else parse_cluster(spec)
    if parsed.kind == "none":
        yield None
        return
    from distributed import Client, LocalCluster

    if parsed.kind == "remote":
        with Client(parsed.address, timeout="30s") as client:
            log.info("connected to dask scheduler %s", parsed.address)
            yield client
        return
    n = parsed.workers or default_workers()
    kwargs = {"memory_limit": memory_limit} if memory_limit is not None else {}
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            silence_logs=logging.ERROR,
            **kwargs,
        ) as cluster,
        Client(cluster) as client,
    ):
        log.info("local dask cluster: %d worker processes", n)
        yield client


def n_workers(client: Client) -> int:
    """Workers currently connected to the client's scheduler (at least 1)."""
    return max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
