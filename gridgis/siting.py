"""Where one more site helps most: maximal covering location by lazy greedy.

Given the walking access of :func:`gridgis.coverage.compute_access` for one category,
:func:`propose_sites` picks ``count`` new sites among candidates (the walking network's
nodes, or supplied parcels/points attached to the same graph) that maximise the
households newly brought within the category's service radius. Existing facilities are
kept: households they already cover do not count. Coverage sets come from bounded
Dijkstra searches (radius-limited) from the uncovered buildings only; the greedy is lazy
(gains only shrink as households get covered, so a stale upper bound that still tops the
heap after being refreshed is the true best). Greedy maximal coverage is within
1 - 1/e of the optimum in theory and usually within a few percent in practice
(``tests/test_siting.py`` compares it with spopt's exact MCLP).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from gridgis.coverage import Access
from gridgis.standards import DEFAULT, Settings

SITING_METHOD = (
    "lazy-greedy maximal coverage over walking distance; demand = residential "
    "households not covered by existing facilities; coverage sets by "
    "radius-limited Dijkstra from the uncovered buildings"
)


@dataclass
class CoverSets:
    """Which uncovered buildings each candidate would cover.

    Attributes
    ----------
    matrix
        Sparse boolean (candidates × uncovered buildings).
    households
        Households of each uncovered building.
    buildings
        Positions (in ``access.buildings``) of the uncovered buildings.
    """

    matrix: csr_array
    households: NDArray[np.int64]
    buildings: NDArray[np.int64]


#: Uncovered buildings searched per call of the bounded Dijkstra (the call returns a table
#: of these sources × the nodes of the graph it is given).
SEARCH_CHUNK = 64

#: Uncovered buildings per spatial block: each block is searched on the piece of the
#: walking graph within the radius of it (:func:`halo_piece`), so a search costs its
#: neighbourhood, not the whole graph. Searching the whole graph filled a table of 64 ×
#: every node per call, which grows with the square of the city: 151 s for 3 sites at
#: 20,000,000 households, over 30 minutes at 50,000,000 (issue #19).
SEARCH_BLOCK = 4_096


def node_xy(graph) -> NDArray[np.float64]:
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


def demand_blocks(xy: NDArray[np.float64], parts: int) -> list[NDArray[np.int64]]:
    """Positions of demand points (metric ``xy``) in ``parts`` spatial blocks of about
    equal size (Hilbert order), each sorted."""
    from gridgis.partitioned.runner import balanced_cuts, hilbert_order

    if len(xy) == 0:
        return []
    bounds = (*xy.min(axis=0), *xy.max(axis=0))
    order = np.lexsort((np.arange(len(xy)), hilbert_order(xy, bounds)))
    return [np.sort(order[a:b]) for a, b in balanced_cuts(np.ones(len(xy)), parts)]


def halo_piece(
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


def bounded_cover(
    matrix: csr_array,
    sources: NDArray[np.int64],
    col_of: NDArray[np.int64],
    columns: NDArray[np.int64],
    radius: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Candidates (rows) and demand columns (``columns[i]`` for source ``i``) within
    ``radius`` m walking of each source node of ``matrix`` (``col_of`` maps a node to its
    candidate, -1 none)."""
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


def demand_of(
    access: Access, category: str, candidate_nodes: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The uncovered buildings on the network (positions in ``access.buildings``), their
    households, and the candidate of every graph node (-1 none)."""
    t = access.table[access.table["category"] == category]
    demand = np.flatnonzero(~t["covered"].to_numpy() & (access.node >= 0))
    hh = access.buildings["households"].to_numpy()[demand].astype(np.int64)
    col_of = np.full(access.graph.n_nodes, -1, dtype=np.int64)
    col_of[candidate_nodes] = np.arange(len(candidate_nodes))
    return demand, hh, col_of


def cover_sets(
    access: Access,
    category: str,
    candidate_nodes: NDArray[np.int64],
    radius_m: float,
) -> CoverSets:
    """Candidates × uncovered buildings within ``radius_m`` walking (metres): the
    uncovered buildings in spatial blocks of ``SEARCH_BLOCK``, each searched on the piece
    of the graph within the radius (+1 m) of the block — every path no longer than the
    radius lies in it (:func:`node_xy`), so the sets are the whole graph's."""
    demand, hh, col_of = demand_of(access, category, candidate_nodes)
    graph = access.graph
    xy = node_xy(graph)
    at = access.node[demand]
    rows, cols = [], []
    for pos in demand_blocks(xy[at], -(-len(demand) // SEARCH_BLOCK)):
        piece, src, cand = halo_piece(graph.matrix, xy, at[pos], col_of, float(radius_m) + 1.0)
        r, c = bounded_cover(piece, src, cand, pos, float(radius_m))
        rows.append(r)
        cols.append(c)
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    m = csr_array((np.ones(len(r), dtype=bool), (r, c)), shape=(len(candidate_nodes), len(demand)))
    return CoverSets(matrix=m, households=hh, buildings=demand)


def lazy_greedy(sets: CoverSets, count: int) -> list[tuple[int, int, int]]:
    """Pick up to ``count`` candidates by lazy greedy.

    Returns
    -------
    list of (candidate, households newly covered, buildings newly covered)
        In the order chosen; stops early when no candidate adds anything.
    """
    m = sets.matrix
    w = sets.households
    indptr, indices = m.indptr, m.indices
    gains = m.astype(np.int64) @ w
    heap = [(-int(g), int(c)) for c, g in enumerate(gains) if g > 0]
    heapq.heapify(heap)
    done = np.zeros(m.shape[1], dtype=bool)
    chosen = []
    while heap and len(chosen) < count:
        neg, c = heapq.heappop(heap)
        members = indices[indptr[c] : indptr[c + 1]]
        fresh = members[~done[members]]
        gain = int(w[fresh].sum())
        if gain == -neg:
            if gain <= 0:
                break
            done[fresh] = True
            chosen.append((c, gain, len(fresh)))
        elif gain > 0:
            heapq.heappush(heap, (-gain, c))
    return chosen


@dataclass
class Siting:
    """Proposed sites and the numbers behind them."""

    sites: gpd.GeoDataFrame
    households_uncovered_before: int
    households_total: int
    params: dict[str, Any] = field(default_factory=dict)


def propose_sites(
    access: Access,
    category: str,
    count: int,
    settings: Settings = DEFAULT,
    candidate_nodes: NDArray[np.int64] | None = None,
    candidate_ids: list[str] | None = None,
    cover: Callable[..., CoverSets] | None = None,
) -> Siting:
    """Propose ``count`` new sites for ``category`` maximising newly covered households.

    Parameters
    ----------
    access
        Walking access computed for (at least) ``category``.
    category
        Facility category; its radius is ``settings.coverage.radius_m[category]`` (m).
    count
        Number of new sites.
    settings
        Rule parameters.
    candidate_nodes
        Graph nodes allowed as sites (default: every road node of the walking network).
    candidate_ids
        Labels of those candidates (e.g. parcel ids); default ``node-<n>``.
    cover
        ``cover(access, category, candidate_nodes, radius_m)`` computing the
        :class:`CoverSets` (default :func:`cover_sets`; the partitioned run,
        :func:`gridgis.partitioned.siting.site_partitioned`, gives one that computes them
        on a cluster). The greedy itself always runs here, over the whole city.

    Returns
    -------
    Siting
        ``sites`` (EPSG:4326): rank, category, candidate, households_new, buildings_new,
        households_covered_after, rate_after, radius_m, geometry (the candidate's point).
    """
    if category not in access.sources:
        raise KeyError(f"category '{category}' was not computed; run access for it first")
    if count < 1:
        raise ValueError("count must be at least 1")
    radius = float(settings.coverage.radius_m[category])
    graph = access.graph
    if candidate_nodes is None:
        candidate_nodes = np.arange(graph.net.n_nodes, dtype=np.int64)
        candidate_ids = [f"node-{i}" for i in candidate_nodes]
    candidate_nodes = np.asarray(candidate_nodes, dtype=np.int64)
    if candidate_ids is None:
        candidate_ids = [f"node-{i}" for i in candidate_nodes]
    keep = candidate_nodes >= 0
    candidate_nodes = candidate_nodes[keep]
    candidate_ids = [c for c, k in zip(candidate_ids, keep, strict=True) if k]
    sets = (cover or cover_sets)(access, category, candidate_nodes, radius)
    chosen = lazy_greedy(sets, count)

    t = access.table[access.table["category"] == category]
    total = int(t["households"].sum())
    before = int(t.loc[t["covered"], "households"].sum())
    xy = _node_xy(access, candidate_nodes[[c for c, _, _ in chosen]])
    gains = np.array([g for _, g, _ in chosen], dtype=np.int64)
    after = before + np.cumsum(gains)
    sites = gpd.GeoDataFrame(
        {
            "rank": np.arange(1, len(chosen) + 1, dtype=np.int64),
            "category": category,
            "candidate": [candidate_ids[c] for c, _, _ in chosen],
            "households_new": gains,
            "buildings_new": np.array([n for _, _, n in chosen], dtype=np.int64),
            "households_covered_after": after.astype(np.int64),
            "rate_after": after / total if total else np.full(len(chosen), np.nan),
            "radius_m": radius,
        },
        geometry=shapely.points(xy) if len(xy) else gpd.GeoSeries([]).values,
        crs=access.buildings.crs,
    ).to_crs("EPSG:4326")
    params = {
        "category": category,
        "count": count,
        "radius_m": radius,
        "method": SITING_METHOD,
        "candidates": int(len(candidate_nodes)),
        "existing_sources": int(len(access.sources[category])),
        "households_total": total,
        "households_covered_before": before,
        "computed_crs": access.params.get("computed_crs"),
    }
    return Siting(
        sites=sites,
        households_uncovered_before=total - before,
        households_total=total,
        params=params,
    )


def site_from_layers(
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    category: str,
    count: int,
    settings: Settings = DEFAULT,
    candidates: gpd.GeoDataFrame | None = None,
    candidate_id: str | None = None,
    cover: Callable[..., CoverSets] | None = None,
) -> Siting:
    """Access for one category from the canonical layers, then :func:`propose_sites`.

    Parameters
    ----------
    layers
        buildings, roads, facilities, green_spaces, optional compounds and gates (as in
        a workspace).
    category
        Category to site (any with a radius in ``settings.coverage.radius_m``).
    count
        Number of new sites.
    candidates
        Optional parcels or points allowed as sites (representative point, snapped to the
        network like a facility); default: the network's nodes.
    candidate_id
        Column naming the candidates (default: the first column ending in ``_id``).
    cover
        How the coverage sets are computed (see :func:`propose_sites`).
    """
    access, nodes, ids, crs = siting_access(layers, category, settings, candidates, candidate_id)
    result = propose_sites(access, category, count, settings, nodes, ids, cover)
    result.sites["at"] = road_names_at(result.sites, layers["roads"], crs)
    result.params["candidate_source"] = (
        "supplied layer" if nodes is not None else "walking network nodes"
    )
    return result


def siting_access(
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    category: str,
    settings: Settings = DEFAULT,
    candidates: gpd.GeoDataFrame | None = None,
    candidate_id: str | None = None,
) -> tuple[Access, NDArray[np.int64] | None, list[str] | None, Any]:
    """The walking access of one category that siting starts from (one search over the
    whole city), with the candidates attached to the same graph.

    Returns
    -------
    access, candidate_nodes, candidate_ids, crs
        ``candidate_nodes``/``candidate_ids`` are None when no candidates layer is given
        (the network's nodes are the candidates); ``crs`` is the metric CRS used.
    """
    from gridgis.coverage import compute_access
    from gridgis.crs import metric_crs_for

    if category not in settings.coverage.radius_m:
        raise KeyError(
            f"category '{category}': no service radius; choose one of "
            f"{', '.join(settings.coverage.radius_m)}"
        )
    extra = None
    ids = None
    crs = metric_crs_for(layers["roads"])
    if candidates is not None:
        if len(candidates) == 0:
            raise ValueError("candidates layer is empty")
        cand = candidates.to_crs(crs)
        extra = shapely.point_on_surface(cand.geometry.values)
        col = candidate_id or next((c for c in cand.columns if str(c).endswith("_id")), None)
        ids = (
            cand[col].astype(str).tolist() if col else [f"candidate-{i}" for i in range(len(cand))]
        )
    access = compute_access(
        layers["buildings"],
        layers["roads"],
        layers.get("facilities"),
        layers.get("green_spaces"),
        settings,
        categories=[category],
        crs=crs,
        extra_points=extra,
        compounds=layers.get("compounds"),
        gates=layers.get("gates"),
    )
    nodes = None
    if extra is not None:
        nodes = access.graph.point_node[-len(extra) :]
    return access, nodes, ids, crs


def road_names_at(
    sites: gpd.GeoDataFrame, roads: gpd.GeoDataFrame, crs, within_m: float = 30.0
) -> list[str]:
    """Names of the roads within ``within_m`` metres of each site, joined with " × " (a
    planner's way to say where an intersection is); "" when none is named."""
    if len(sites) == 0 or "name" not in roads.columns:
        return [""] * len(sites)
    pts = sites.to_crs(crs).geometry.values
    r = roads.to_crs(crs)
    names = r["name"].astype("object").where(r["name"].notna(), None).to_numpy()
    si, ri = shapely.STRtree(r.geometry.values).query(pts, predicate="dwithin", distance=within_m)
    found: dict[int, list[str]] = {}
    for i, j in zip(si, ri, strict=True):
        name = names[j]
        if name and str(name).strip() and str(name) not in found.setdefault(int(i), []):
            found[int(i)].append(str(name))
    return [" × ".join(sorted(found.get(i, []))) for i in range(len(sites))]


def _node_xy(access: Access, nodes: NDArray[np.int64]) -> NDArray[np.float64]:
    """Coordinates (metric) of graph nodes: road nodes, or attached points' own nodes."""
    graph = access.graph
    net = graph.net
    out = np.zeros((len(nodes), 2))
    road = nodes < net.n_nodes
    out[road] = net.node_xy[nodes[road]]
    if (~road).any():
        pos = pd.Series(np.arange(len(graph.point_node)), index=graph.point_node)
        out[~road] = graph.point_xy[pos.loc[nodes[~road]].to_numpy()]
    return out


# --------------------------------------------------------------------------------------
# Proposed gates: open a wall instead of building
# --------------------------------------------------------------------------------------

GATE_METHOD = (
    "candidate gates every network.gate_candidate_spacing_m along each walled "
    "compound's boundary (existing gates excluded); a gate at g brings building b of its "
    "compound within the radius when walk(b → g inside, along the compound's paths, or "
    "straight when it has none) + walk(g → nearest facility outside) ≤ radius; "
    "lazy-greedy maximal coverage over the uncovered households"
)


def gate_candidates(walls, spacing_m: float, gate_snap_m: float):
    """Points every ``spacing_m`` along each walled compound's boundary, away from its
    existing gates (farther than ``gate_snap_m``).

    Returns
    -------
    points, compound
        Candidate points (metric CRS) and the index of the compound of each.
    """
    ring = shapely.boundary(walls.polygons)
    perim = shapely.length(ring)
    n = np.maximum(np.floor(perim / spacing_m).astype(int), 1)
    comp = np.repeat(np.arange(len(ring)), n)
    start = np.repeat(np.cumsum(n) - n, n)
    along = (np.arange(len(comp)) - start) * spacing_m
    pts = shapely.line_interpolate_point(ring[comp], along)
    if len(walls.gates):
        near, _ = shapely.STRtree(pts).query(walls.gates, predicate="dwithin", distance=gate_snap_m)
        keep = np.ones(len(pts), dtype=bool)
        keep[_] = False
        pts, comp = pts[keep], comp[keep]
    return pts, comp.astype(np.int64)


def propose_gates(
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    category: str,
    count: int,
    settings: Settings = DEFAULT,
) -> Siting:
    """Propose ``count`` new gates in compound walls that bring the most uncovered
    households within the walking radius of ``category`` (method :data:`GATE_METHOD`).

    Parameters
    ----------
    layers
        buildings, roads, facilities, green_spaces, compounds and gates.
    category
        Facility category; its radius is ``settings.coverage.radius_m[category]`` (m).
    count
        Number of gates to propose.

    Returns
    -------
    Siting
        ``sites`` (EPSG:4326): rank, category, candidate (``<compound_id>@<metres along
        its boundary>``), compound_id, households_new, buildings_new,
        households_covered_after, rate_after, radius_m, geometry (the gate).

    Raises
    ------
    InputError
        When the workspace has no walled compound (compounds with at least one gate).
    """
    from gridgis.coverage import compute_access
    from gridgis.crs import metric_crs_for
    from gridgis.errors import InputError
    from gridgis.network import make_walls

    if category not in settings.coverage.radius_m:
        raise KeyError(f"category '{category}': no service radius")
    if count < 1:
        raise ValueError("count must be at least 1")
    crs = metric_crs_for(layers["roads"])
    rules = settings.network
    walls, _ = make_walls(layers.get("compounds"), layers.get("gates"), crs, rules)
    if walls is None:
        raise InputError(
            "no walled compound: gates are proposed in the walls of layer 'compounds' "
            "(compounds with at least one gate in layer 'gates')"
        )
    cand, comp = gate_candidates(walls, rules.gate_candidate_spacing_m, rules.gate_snap_m)
    access = compute_access(
        layers["buildings"],
        layers["roads"],
        layers.get("facilities"),
        layers.get("green_spaces"),
        settings,
        categories=[category],
        crs=crs,
        extra_points=np.concatenate([cand, cand]),
        compounds=layers.get("compounds"),
        gates=layers.get("gates"),
        extra_zones=np.r_[np.full(len(cand), -1), -2 - comp],
    )
    radius = float(settings.coverage.radius_m[category])
    sets = _gate_cover_sets(access, category, cand, comp, walls, radius)
    chosen = lazy_greedy(sets, count)
    t = access.table[access.table["category"] == category]
    total = int(t["households"].sum())
    before = int(t.loc[t["covered"], "households"].sum())
    pick = np.array([c for c, _, _ in chosen], dtype=np.int64)
    gains = np.array([g for _, g, _ in chosen], dtype=np.int64)
    after = before + np.cumsum(gains)
    ring = shapely.boundary(walls.polygons)
    along = shapely.line_locate_point(ring[comp[pick]], cand[pick]) if len(pick) else []
    ids = walls.ids[comp[pick]] if len(pick) else np.array([], dtype=object)
    sites = gpd.GeoDataFrame(
        {
            "rank": np.arange(1, len(chosen) + 1, dtype=np.int64),
            "category": category,
            "candidate": [f"{i}@{a:.0f}m" for i, a in zip(ids, along, strict=True)],
            "compound_id": ids,
            "households_new": gains,
            "buildings_new": np.array([n for _, _, n in chosen], dtype=np.int64),
            "households_covered_after": after.astype(np.int64),
            "rate_after": after / total if total else np.full(len(chosen), np.nan),
            "radius_m": radius,
        },
        geometry=cand[pick] if len(pick) else gpd.GeoSeries([]).values,
        crs=crs,
    ).to_crs("EPSG:4326")
    params = {
        "category": category,
        "count": count,
        "radius_m": radius,
        "method": GATE_METHOD,
        "candidates": int(len(cand)),
        "walled_compounds": int(len(walls.polygons)),
        "households_total": total,
        "households_covered_before": before,
        "computed_crs": access.params.get("computed_crs"),
    }
    return Siting(
        sites=sites,
        households_uncovered_before=total - before,
        households_total=total,
        params=params,
    )


def _walk_to(dist: NDArray[np.float64], keep: NDArray[np.int64], nodes: NDArray[np.int64]):
    """Distances (m) of a search on a piece of the graph (``dist`` by piece node; ``keep``:
    the whole graph's number of each piece node, ascending) to ``nodes`` of the whole
    graph: inf for a node outside the piece or not a node (-1)."""
    i = np.clip(np.searchsorted(keep, nodes), 0, max(len(keep) - 1, 0))
    inside = (nodes >= 0) & (len(keep) > 0) & (keep[i] == nodes)
    return np.where(inside, dist[i], np.inf)


def _gate_cover_sets(
    access: Access,
    category: str,
    cand: NDArray[np.object_],
    comp: NDArray[np.int64],
    walls,
    radius: float,
) -> CoverSets:
    """Candidate gates × uncovered buildings of their compound brought within ``radius``
    (the uncovered buildings searched in spatial blocks, as :func:`cover_sets`)."""
    graph = access.graph
    n = len(cand)
    out_node = graph.point_node[-2 * n : -n]
    in_node = graph.point_node[-n:]
    d_out = np.full(n, np.inf)
    src = access.sources[category]
    if len(src):
        dist = dijkstra(graph.matrix, directed=False, indices=src, min_only=True)
        d_out[out_node >= 0] = dist[out_node[out_node >= 0]]
    t = access.table[access.table["category"] == category]
    zone = walls.zone_of(access.buildings["point"].to_numpy())
    demand = np.flatnonzero(~t["covered"].to_numpy() & (access.node >= 0) & (zone >= 0))
    hh = access.buildings["households"].to_numpy()[demand].astype(np.int64)
    order = np.argsort(comp, kind="stable")
    lo = np.searchsorted(comp[order], zone[demand], "left")
    hi = np.searchsorted(comp[order], zone[demand], "right")
    pts = access.buildings["point"].to_numpy()
    xy = node_xy(graph)
    at = access.node[demand]
    ident = np.arange(graph.n_nodes)
    rows, cols = [], []
    for pos in demand_blocks(xy[at], -(-len(demand) // SEARCH_BLOCK)):
        # the graph within the radius of the block (every walk of at most the radius stays
        # in it); ``keep`` holds the whole graph's number of each of its nodes
        piece, local, keep = halo_piece(graph.matrix, xy, at[pos], ident, radius + 1.0)
        for start in range(0, len(pos), SEARCH_CHUNK):
            dist = dijkstra(
                piece,
                directed=False,
                indices=local[start : start + SEARCH_CHUNK],
                limit=radius * (1 + 1e-12),
            )
            for j, k in enumerate(pos[start : start + SEARCH_CHUNK]):
                g = order[lo[k] : hi[k]]  # candidates on this building's walls
                if len(g) == 0:
                    continue
                walk = _walk_to(dist[j], keep, in_node[g])
                inside = np.where(in_node[g] >= 0, walk, shapely.distance(pts[demand[k]], cand[g]))
                hit = g[inside + d_out[g] <= radius]
                rows.append(hit)
                cols.append(np.full(len(hit), k))
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    m = csr_array((np.ones(len(r), dtype=bool), (r, c)), shape=(n, len(demand)))
    return CoverSets(matrix=m, households=hh, buildings=demand)
