"""Partitioned siting: the candidate × household walking distances in spatial blocks, each
with a halo as wide as the radius; the greedy stays global."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.sparse import csr_array

from gridgis.partitioned.runner import Runner, n_parts
from gridgis.siting import bounded_cover, demand_blocks, demand_of, halo_piece, node_xy
from gridgis.standards import CLUSTER, DEFAULT, ClusterRules, Settings

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from gridgis.coverage import Access
    from gridgis.siting import CoverSets, Siting

log = logging.getLogger(__name__)


def cover_sets_partitioned(
    client: Client,
    rules: ClusterRules = CLUSTER,
    report: dict[str, Any] | None = None,
):
    """A ``cover(access, category, candidate_nodes, radius_m)`` for
    :func:`gridgis.siting.propose_sites` that computes the same
    :class:`~gridgis.siting.CoverSets` as :func:`gridgis.siting.cover_sets` on the
    cluster: the uncovered households in spatial blocks, each searched (radius-bounded
    Dijkstra) on the piece of the walking graph within the radius (plus
    ``rules.halo_extra_m``) of the block. Every path no longer than the radius lies in
    that piece, so the reached candidates are exactly the whole graph's. ``report``
    receives the :class:`RunReport` as a dict."""

    def cover(
        access: Access, category: str, candidate_nodes: NDArray[np.int64], radius_m: float
    ) -> CoverSets:
        from gridgis.siting import CoverSets

        demand, hh, col_of = demand_of(access, category, candidate_nodes)
        node = access.node
        graph = access.graph
        shape = (len(candidate_nodes), len(demand))
        run = Runner(client, "siting", rules)
        xy = node_xy(graph)
        halo = float(radius_m) + float(rules.halo_extra_m) + 1.0
        items = []
        for k, pos in enumerate(
            demand_blocks(xy[node[demand]], n_parts(client, rules, len(demand)))
        ):
            piece, src, cols = halo_piece(graph.matrix, xy, node[demand[pos]], col_of, halo)
            items.append((f"block{k}", (piece, src, cols, pos, float(radius_m))))
        parts = run.run(bounded_cover, items)
        got = run.finish()
        if report is not None:
            report.update(got.as_dict())
        r = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        c = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
        m = csr_array((np.ones(len(r), dtype=bool), (r, c)), shape=shape)
        return CoverSets(matrix=m, households=hh, buildings=demand)

    return cover


def site_partitioned(
    client: Client,
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    category: str,
    count: int,
    settings: Settings = DEFAULT,
    candidates: gpd.GeoDataFrame | None = None,
    candidate_id: str | None = None,
    rules: ClusterRules = CLUSTER,
) -> Siting:
    """:func:`gridgis.siting.site_from_layers` with the costly part on the cluster: the
    same sites, in the same order, bringing the same households.

    Siting is a global greedy (each pick depends on every household the earlier picks
    covered), so it is not split by district. What grows with the city is the table of
    which candidate brings which uncovered household within the radius — one
    radius-bounded walking search per uncovered building; that table is computed in
    spatial blocks of buildings on the workers, each on the walking graph within a halo as
    wide as the radius (:func:`cover_sets_partitioned`, exact at block edges). The one
    search for today's coverage and the lazy greedy over the whole table run here.

    Returns
    -------
    Siting
        As :func:`gridgis.siting.site_from_layers`; ``params["cluster"]`` is the run
        report.
    """
    from gridgis.siting import site_from_layers

    report: dict[str, Any] = {}
    result = site_from_layers(
        layers,
        category,
        count,
        settings,
        candidates,
        candidate_id,
        cover=cover_sets_partitioned(client, rules, report),
    )
    result.params["cluster"] = report
    return result
