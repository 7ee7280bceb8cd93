"""Partitioned runs of the analyses that scale with the city, on a Dask cluster.

Each function here takes a :class:`distributed.Client` (from :func:`gridgis.cluster.
open_client`) and returns exactly what the single-process analysis returns, row for row:
the single-process functions stay the reference, and every partition calls them (or
their public building blocks) on a part of the city.

* :func:`delineate_partitioned` — blocks of whole communities, each delineated by
  :func:`gridgis.delineate.delineate` on a worker (buildings go to the block of the
  community that holds them by the one point-in-polygon rule, :mod:`gridgis.spatial`).
* :func:`assign_partitioned` — buildings, institutions and addresses in spatial chunks
  (Hilbert order), each assigned by :func:`gridgis.assign.assign_all` against the grids
  broadcast to every worker; facilities, staff and the grid summaries are assigned once.
* :func:`coverage_partitioned` — residential buildings in blocks of whole communities
  (spatially ordered), each block searched on the walking network and facilities within a
  halo as wide as the largest walking radius (see :func:`coverage_partitioned` for why the
  distances are exact), then rates, gaps and norms once over the whole table.
* :func:`lookup_addresses_partitioned` — the address index in shards of whole districts,
  one index per shard built once on a worker (a worker holds its shards only); every
  query probed on every shard (:func:`gridgis.address.match.probe`), answered by the
  shard of the first answer, or matched again on the rows of the several shards that
  answer first, or scored by the fuzzy search over all shards.
* :func:`audit_partitioned` — blocks of communities, each audited with a halo of the
  grids, buildings, communities and roads its checks look at; findings of core rows kept.
* :func:`export_partitioned` — the ledger formats (xlsx, csv, shp, gpkg, geojson) in
  blocks of whole streets (rows and their text, sheet XML or frames on the workers, each
  file written once here); the PDF's boards and atlas pages printed by Chromium on the
  workers in ranges of whole books, joined in order.
* :func:`site_partitioned` — siting's candidate × household walking searches in spatial
  blocks with a halo as wide as the radius; the greedy stays global.

A partition that raises or whose worker dies is retried (``ClusterRules.retries``); if it
still fails the run raises :class:`PartitionError` and nothing has been written: these
functions never write, the caller writes the collected result in one atomic store write
(on a shared store, :mod:`gridgis.partitioned.source`, workers may read their partitions
and stage rows, which the caller publishes in that same atomic write).
Attempts per partition are reported in :class:`RunReport` (``params["cluster"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gridgis.partitioned.assign import assign_partitioned
from gridgis.partitioned.audit import audit_partitioned
from gridgis.partitioned.coverage import coverage_partitioned
from gridgis.partitioned.delineate import delineate_partitioned
from gridgis.partitioned.export import export_partitioned
from gridgis.partitioned.lookup import lookup_addresses_partitioned
from gridgis.partitioned.runner import PartitionError, Runner, RunReport
from gridgis.partitioned.siting import site_partitioned
from gridgis.standards import DEFAULT, Settings

__all__ = [
    "PartitionError",
    "RunReport",
    "Runner",
    "assign_on",
    "assign_partitioned",
    "audit_on",
    "audit_partitioned",
    "cluster_client",
    "coverage_on",
    "coverage_partitioned",
    "delineate_on",
    "delineate_partitioned",
    "export_on",
    "export_partitioned",
    "lookup_addresses_partitioned",
    "site_on",
    "site_partitioned",
]

log = logging.getLogger(__name__)


# ======================================================================================
# Routing for the workflows: single process without a cluster, partitioned with one
# ======================================================================================


def cluster_client(cluster):
    """A context yielding a Client (or None) from a spec, or the Client given."""
    from contextlib import nullcontext

    from gridgis.cluster import open_client

    if cluster is None or isinstance(cluster, str):
        return open_client(cluster)
    return nullcontext(cluster)


SINGLE_ONLY = ("progress",)
"""Keywords only the single-process analyses take (a progress callback in this process)."""
CLUSTER_ONLY = ("shared", "stage")
"""Keywords only the partitioned runs take (the shared store of a run, staging writes)."""


def _routed(
    cluster,
    single: Callable,
    partitioned: Callable,
    *args: Any,
    single_only: tuple[str, ...] = SINGLE_ONLY,
    **kw: Any,
):
    """``single(*args, **kw)`` without a cluster (``None``), else ``partitioned(client,
    *args, **kw)`` (``cluster``: a spec or a connected Client); each without the other's
    keywords (``single_only``, :data:`CLUSTER_ONLY`)."""
    with cluster_client(cluster) as client:
        if client is None:
            return single(*args, **{k: v for k, v in kw.items() if k not in CLUSTER_ONLY})
        return partitioned(client, *args, **{k: v for k, v in kw.items() if k not in single_only})


def delineate_on(cluster, layers: dict[str, Any], settings: Settings = DEFAULT, **kw: Any):
    """:func:`gridgis.delineate.delineate` without a cluster, else
    :func:`delineate_partitioned`."""
    from gridgis.delineate import delineate

    return _routed(cluster, delineate, delineate_partitioned, layers, settings, **kw)


def assign_on(cluster, layers: dict[str, Any], grids, settings: Settings = DEFAULT, **kw: Any):
    """:func:`gridgis.assign.assign_all` without a cluster, else :func:`assign_partitioned`."""
    from gridgis.assign import assign_all

    return _routed(cluster, assign_all, assign_partitioned, layers, grids, settings, **kw)


def coverage_on(cluster, layers: dict[str, Any], settings: Settings = DEFAULT, **kw: Any):
    """:func:`gridgis.coverage.run_coverage` without a cluster, else
    :func:`coverage_partitioned`."""
    from gridgis.coverage import run_coverage

    return _routed(cluster, run_coverage, coverage_partitioned, layers, settings, **kw)


def site_on(cluster, layers: dict[str, Any], category: str, count: int, settings=DEFAULT, **kw):
    """:func:`gridgis.siting.site_from_layers` without a cluster, else
    :func:`site_partitioned`."""
    from gridgis.siting import site_from_layers

    return _routed(
        cluster, site_from_layers, site_partitioned, layers, category, count, settings, **kw
    )


def audit_on(cluster, grids, layers: dict[str, Any], settings: Settings = DEFAULT, **kw: Any):
    """:func:`gridgis.audit.audit_grids` without a cluster, else :func:`audit_partitioned`."""
    from gridgis.audit import audit_grids

    return _routed(cluster, audit_grids, audit_partitioned, grids, layers, settings, **kw)


def export_on(cluster, layers: dict[str, Any], fmt: str, out, settings=DEFAULT, **kw: Any):
    """:func:`gridgis.export.export_workspace` without a cluster, else
    :func:`export_partitioned` (every format: the ledger's blocks of streets, the PDF's
    pages)."""
    from gridgis.export import export_workspace

    return _routed(  # the PDF printers on the workers report pages printed here too
        cluster,
        export_workspace,
        export_partitioned,
        layers,
        fmt,
        out,
        settings,
        single_only=(),
        **kw,
    )
