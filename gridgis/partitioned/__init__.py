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
* :func:`lookup_addresses_partitioned` — chunks of address queries, matched by
  :meth:`gridgis.lookup.Lookup.addresses` on workers that build the index once each.

A partition that raises or whose worker dies is retried (``ClusterRules.retries``); if it
still fails the run raises :class:`PartitionError` and nothing has been written: these
functions never write, the caller writes the collected result in one atomic store write.
Attempts per partition are reported in :class:`RunReport` (``params["cluster"]``).
"""

from __future__ import annotations

import logging
from typing import Any

from gridgis.partitioned.assign import assign_partitioned
from gridgis.partitioned.coverage import coverage_partitioned
from gridgis.partitioned.delineate import delineate_partitioned
from gridgis.partitioned.lookup import lookup_addresses_partitioned
from gridgis.partitioned.runner import PartitionError, Runner, RunReport
from gridgis.standards import DEFAULT, Settings

__all__ = [
    "PartitionError",
    "RunReport",
    "Runner",
    "assign_on",
    "assign_partitioned",
    "cluster_client",
    "coverage_on",
    "coverage_partitioned",
    "delineate_on",
    "delineate_partitioned",
    "lookup_addresses_partitioned",
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


def delineate_on(cluster, layers: dict[str, Any], settings: Settings = DEFAULT, **kw: Any):
    """:func:`gridgis.delineate.delineate` without a cluster (``None``), else
    :func:`delineate_partitioned` (``cluster``: a spec or a connected Client). ``progress``
    is used by the single-process run only."""
    with cluster_client(cluster) as client:
        if client is None:
            from gridgis.delineate import delineate

            return delineate(layers, settings, **kw)
        kw.pop("progress", None)
        return delineate_partitioned(client, layers, settings, **kw)


def assign_on(cluster, layers: dict[str, Any], grids, settings: Settings = DEFAULT, **kw: Any):
    """:func:`gridgis.assign.assign_all` without a cluster, else :func:`assign_partitioned`."""
    with cluster_client(cluster) as client:
        if client is None:
            from gridgis.assign import assign_all

            return assign_all(layers, grids, settings, **kw)
        return assign_partitioned(client, layers, grids, settings)


def coverage_on(cluster, layers: dict[str, Any], settings: Settings = DEFAULT, **kw: Any):
    """:func:`gridgis.coverage.run_coverage` without a cluster, else
    :func:`coverage_partitioned`."""
    with cluster_client(cluster) as client:
        if client is None:
            from gridgis.coverage import run_coverage

            return run_coverage(layers, settings, **kw)
        kw.pop("progress", None)
        return coverage_partitioned(client, layers, settings, **kw)
