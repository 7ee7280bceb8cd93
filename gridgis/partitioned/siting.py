"""Partitioned siting: the candidate × household walking distances in spatial blocks, each
with a halo as wide as the radius; the greedy stays global."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from gridgis.partitioned.runner import Runner, balanced_cuts, hilbert_order, n_parts
from gridgis.standards import CLUSTER, DEFAULT, ClusterRules, Settings

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from gridgis.coverage import Access
    from gridgis.network import WalkGraph
    from gridgis.siting import CoverSets, Siting

log = logging.getLogger(__name__)

#: Demand buildings per bounded search call on a worker (as :func:`gridgis.siting.cover_sets`).
SEARCH_CHUNK = 64


def node_xy(graph: WalkGraph) -> NDArray[np.float64]:
    """(n, 2) metric coordinates of every node of the walking graph: road nodes, the
    virtual nodes where points meet their edges (``virt_t`` m along the edge), and the
    attached points themselves. Every graph edge is at least as long as the straight line
    between its ends (a piece of a road, or a point's straight leg to the road), so a
    path no longer than ``r`` never leaves the disc of radius ``r`` around its start."""
    net = graph.net
    k = len(graph.virt_edge)
    out = np.zeros((graph.n_nodes, 2))
    out[: net.n_nodes] = net.node_xy
    if k:
        virt = shapely.line_interpolate_point(net.edge_geom[graph.virt_edge], graph.virt_t)
        out[net.n_nodes : net.n_nodes + k] = shapely.get_coordinates(virt)
        matched = np.flatnonzero(graph.point_node >= 0)
        out[graph.point_node[matched]] = graph.point_xy[matched]
    return out


def _cover_part(
    matrix: csr_array,
    sources: NDArray[np.int64],
    col_of: NDArray[np.int64],
    columns: NDArray[np.int64],
    radius: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """On a worker: candidates (rows) and demand columns (``columns[i]`` for source
    ``i``) within ``radius`` m walking of each source node, on the halo's piece of the
    graph (local node numbers; ``col_of`` maps a local node to its candidate, -1 none)."""
    rows, cols = [], []
    for start in range(0, len(sources), SEARCH_CHUNK):
        idx = sources[start : start + SEARCH_CHUNK]
        dist = dijkstra(matrix, directed=False, indices=idx, limit=radius * (1 + 1e-12))
        b, reached = np.nonzero(dist <= radius)
        cand = col_of[reached]
        ok = cand >= 0
        rows.append(cand[ok])
        cols.append(columns[b[ok] + start])
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    return r.astype(np.int64), c.astype(np.int64)


def _blocks(xy: NDArray[np.float64], parts: int) -> list[NDArray[np.int64]]:
    """Positions of demand points in ``parts`` spatial blocks (Hilbert order), each sorted."""
    if len(xy) == 0:
        return []
    bounds = (*xy.min(axis=0), *xy.max(axis=0))
    order = np.lexsort((np.arange(len(xy)), hilbert_order(xy, bounds)))
    return [np.sort(order[a:b]) for a, b in balanced_cuts(np.ones(len(xy)), parts)]


def _halo_piece(
    graph_matrix: csr_array,
    xy: NDArray[np.float64],
    sources: NDArray[np.int64],
    col_of: NDArray[np.int64],
    halo: float,
) -> tuple[csr_array, NDArray[np.int64], NDArray[np.int64]]:
    """The graph restricted to the nodes within ``halo`` m of the sources' bounding box,
    renumbered in the same order; the sources and the candidate map in that numbering."""
    lo = xy[sources].min(axis=0) - halo
    hi = xy[sources].max(axis=0) + halo
    keep = np.flatnonzero(np.all((xy >= lo) & (xy <= hi), axis=1))
    local = graph_matrix[keep][:, keep]
    return csr_array(local), np.searchsorted(keep, sources), col_of[keep]


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

        t = access.table[access.table["category"] == category]
        node = access.node
        demand = np.flatnonzero(~t["covered"].to_numpy() & (node >= 0))
        hh = access.buildings["households"].to_numpy()[demand].astype(np.int64)
        graph = access.graph
        col_of = np.full(graph.n_nodes, -1, dtype=np.int64)
        col_of[candidate_nodes] = np.arange(len(candidate_nodes))
        shape = (len(candidate_nodes), len(demand))
        run = Runner(client, "siting", rules)
        xy = node_xy(graph)
        halo = float(radius_m) + float(rules.halo_extra_m) + 1.0
        items = []
        for k, pos in enumerate(_blocks(xy[node[demand]], n_parts(client, rules, len(demand)))):
            piece, src, cols = _halo_piece(graph.matrix, xy, node[demand[pos]], col_of, halo)
            items.append((f"block{k}", (piece, src, cols, pos, float(radius_m))))
        parts = run.run(_cover_part, items)
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
