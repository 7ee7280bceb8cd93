"""The walking network: roads noded at real intersections, points snapped onto edges.

Every road class is walkable. Roads are noded where they actually meet (crossings and
T-junctions, found with an STRtree and a DE-9IM test, then ``shapely.union_all`` of only
the lines involved), the unique line ends become nodes and every noded piece an edge
weighted by its length in metres in the metric CRS (CGCS2000 3-degree Gauss–Krüger zone
of the data, :func:`gridgis.crs.metric_crs_for`). Disconnected pieces are reported and
only the largest connected component is kept.

Points (residential buildings' representative points, facilities, park and green entry
points) are snapped **once** to the nearest point on an edge (STRtree nearest), and the
edge is split there: the snap becomes a virtual node with two partial edges, and the point
itself a node joined to it by a leg whose length is the snap distance. A shortest path
to a point's node is therefore leg + network path + leg, never shorter than the straight
line. Snaps farther than ``settings.coverage.max_snap_m`` are findings, not matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components

from gridgis.crs import metric_crs_for
from gridgis.standards import DEFAULT, Settings

FINDING_COLUMNS = ["kind", "layer", "id", "value_m", "note"]


@dataclass
class RoadNetwork:
    """The noded walking network (largest connected component), metric CRS.

    Attributes
    ----------
    crs
        The metric CRS every coordinate and length is in (metres).
    node_xy
        ``(n, 2)`` node coordinates, metres.
    edge_u, edge_v
        Node indices of each edge's start and end (the start is the edge line's first
        vertex, so offsets along the line are measured from ``edge_u``).
    edge_m
        Edge length, metres (the length of the edge's line, not the chord).
    edge_geom
        The edge lines (shapely array), metric CRS.
    findings
        Disconnected pieces dropped (kind ``disconnected_piece``) and other notes, one
        row each: kind, layer, id, value_m (length of the piece), note.
    stats
        Counts for output metadata: road lines in, noded edges, components, kept edges…
    """

    crs: pyproj.CRS
    node_xy: NDArray[np.float64]
    edge_u: NDArray[np.int64]
    edge_v: NDArray[np.int64]
    edge_m: NDArray[np.float64]
    edge_geom: NDArray[np.object_]
    findings: pd.DataFrame
    stats: dict = field(default_factory=dict)
    _tree: shapely.STRtree | None = None

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    @property
    def tree(self) -> shapely.STRtree:
        """STRtree over the edge lines (built once)."""
        if self._tree is None:
            self._tree = shapely.STRtree(self.edge_geom)
        return self._tree

    def node_points(self) -> NDArray[np.object_]:
        """Road nodes as shapely points (metric CRS)."""
        return shapely.points(self.node_xy)


def _node_lines(lines: NDArray[np.object_]) -> NDArray[np.object_]:
    """Split lines at every point where they meet another line (or themselves) anywhere
    but at both lines' ends. Only the lines that need it go through ``union_all``."""
    tree = shapely.STRtree(lines)
    left, right = tree.query(lines, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    needs = np.zeros(len(lines), dtype=bool)
    if len(left):
        rel = shapely.relate(lines[left], lines[right])
        rel = np.asarray(rel, dtype="U9").view("U1").reshape(-1, 9)
        # II, IB, BI: interiors meet, or one's end lies inside the other -> split needed
        crossing = (rel[:, 0] != "F") | (rel[:, 1] != "F") | (rel[:, 3] != "F")
        needs[left[crossing]] = True
        needs[right[crossing]] = True
    needs |= ~shapely.is_simple(lines)
    if not needs.any():
        return lines
    noded = shapely.union_all(lines[needs])
    pieces = shapely.get_parts(noded)
    pieces = pieces[shapely.get_type_id(pieces) == 1]
    return np.concatenate([lines[~needs], pieces])


def build_network(
    roads: gpd.GeoDataFrame, settings: Settings = DEFAULT, crs: pyproj.CRS | None = None
) -> RoadNetwork:
    """Build the walking network from the roads layer.

    Parameters
    ----------
    roads
        Roads layer (any CRS; canonical layers are EPSG:4326), LineString or
        MultiLineString; every ``road_class`` is walkable.
    settings
        Rule parameters (not used for the graph itself; kept for a uniform signature).
    crs
        Metric CRS to compute in; default :func:`gridgis.crs.metric_crs_for` of ``roads``.

    Returns
    -------
    RoadNetwork
        Largest connected component, with the dropped pieces in ``findings``.

    Raises
    ------
    ValueError
        When the roads layer is empty or has no line geometry.
    """
    if roads is None or len(roads) == 0:
        raise ValueError("layer 'roads': empty, a walking network needs roads")
    crs = pyproj.CRS(crs) if crs is not None else metric_crs_for(roads)
    geoms = roads.geometry.to_crs(crs).values
    lines = shapely.get_parts(np.asarray(geoms))
    lines = lines[(shapely.get_type_id(lines) == 1) & ~shapely.is_empty(lines)]
    if len(lines) == 0:
        raise ValueError("layer 'roads': no LineString geometry to walk on")
    lines = shapely.force_2d(lines)
    lines_in = len(lines)
    lines = _node_lines(lines)
    lengths = shapely.length(lines)
    lines, lengths = lines[lengths > 0], lengths[lengths > 0]

    first = shapely.get_coordinates(shapely.get_point(lines, 0))
    last = shapely.get_coordinates(shapely.get_point(lines, -1))
    ends = np.round(np.vstack([first, last]), 6)
    node_xy, inverse = np.unique(ends, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    u, v = inverse[: len(lines)], inverse[len(lines) :]
    loop = u == v
    lines, lengths, u, v = lines[~loop], lengths[~loop], u[~loop], v[~loop]

    n = len(node_xy)
    graph = csr_array((np.ones(len(u)), (u, v)), shape=(n, n))
    n_comp, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels[u], weights=lengths, minlength=n_comp)
    main = int(np.argmax(sizes))
    keep = labels[u] == main

    findings = []
    if n_comp > 1:
        piece_edges = np.bincount(labels[u], minlength=n_comp)
        for comp in np.flatnonzero((np.arange(n_comp) != main) & (piece_edges > 0)):
            findings.append(
                {
                    "kind": "disconnected_piece",
                    "layer": "roads",
                    "id": f"piece-{comp}",
                    "value_m": float(sizes[comp]),
                    "note": f"{int(piece_edges[comp])} edges not connected to the main network; "
                    "not used for walking distances",
                    "geometry": shapely.union_all(lines[labels[u] == comp]),
                }
            )
    # renumber the kept nodes 0..k-1
    used = np.zeros(n, dtype=bool)
    used[u[keep]] = True
    used[v[keep]] = True
    new_id = np.cumsum(used) - 1
    net = RoadNetwork(
        crs=crs,
        node_xy=node_xy[used],
        edge_u=new_id[u[keep]].astype(np.int64),
        edge_v=new_id[v[keep]].astype(np.int64),
        edge_m=lengths[keep],
        edge_geom=lines[keep],
        findings=_findings_frame(findings, crs),
        stats={
            "road_lines": int(lines_in),
            "noded_edges": int(len(lines)),
            "components": int(n_comp),
            "kept_edges": int(keep.sum()),
            "kept_nodes": int(used.sum()),
            "kept_length_m": float(lengths[keep].sum()),
            "dropped_length_m": float(lengths[~keep].sum()),
        },
    )
    return net


def _findings_frame(rows: list[dict], crs: pyproj.CRS) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype="object") for c in FINDING_COLUMNS},
            geometry=gpd.GeoSeries([], crs=crs),
            crs=crs,
        )
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    return frame[[*FINDING_COLUMNS, "geometry"]]


@dataclass
class Snaps:
    """Where points meet the network.

    Attributes
    ----------
    edge
        Index of the edge each point snapped to, -1 when beyond ``max_snap_m``.
    offset_m
        Distance along that edge from its start node to the snap point, metres.
    snap_m
        Straight distance from the point to its snap point, metres (the leg); for points
        beyond ``max_snap_m`` the distance to the nearest edge anyway (for the finding).
    """

    edge: NDArray[np.int64]
    offset_m: NDArray[np.float64]
    snap_m: NDArray[np.float64]

    @property
    def matched(self) -> NDArray[np.bool_]:
        return self.edge >= 0


def snap_points(net: RoadNetwork, points: NDArray[np.object_], max_snap_m: float) -> Snaps:
    """Snap points (metric CRS) to the nearest point on the nearest edge.

    Parameters
    ----------
    net
        The walking network.
    points
        Shapely points in ``net.crs``.
    max_snap_m
        Points farther than this from every edge are not matched (``edge == -1``).
    """
    points = np.asarray(points, dtype=object)
    n = len(points)
    edge = np.full(n, -1, dtype=np.int64)
    offset = np.zeros(n)
    snap = np.full(n, np.nan)
    if n == 0:
        return Snaps(edge, offset, snap)
    idx_p, idx_e = net.tree.query_nearest(points, max_distance=max_snap_m, all_matches=False)
    edge[idx_p] = idx_e
    lines = net.edge_geom[idx_e]
    offset[idx_p] = shapely.line_locate_point(lines, points[idx_p])
    on_line = shapely.line_interpolate_point(lines, offset[idx_p])
    snap[idx_p] = shapely.distance(points[idx_p], on_line)
    far = np.flatnonzero(edge < 0)
    if len(far):
        (far_idx, _), dist = net.tree.query_nearest(
            points[far], all_matches=False, return_distance=True
        )
        snap[far[far_idx]] = dist
    return Snaps(edge, offset, snap)


@dataclass
class WalkGraph:
    """The network with points attached: one sparse graph for every search.

    Nodes ``0 .. net.n_nodes-1`` are road nodes, then one virtual node per matched
    snap, then one node per matched point. ``point_node[i]`` is the node of input point
    ``i`` (-1 when it was not matched).
    """

    net: RoadNetwork
    matrix: csr_array
    point_node: NDArray[np.int64]
    snaps: Snaps
    point_xy: NDArray[np.float64]

    @property
    def n_nodes(self) -> int:
        return self.matrix.shape[0]

    def edge_list(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """Undirected edges (u < v) with their lengths in metres."""
        coo = self.matrix.tocoo()
        return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(float)


def attach_points(net: RoadNetwork, points: NDArray[np.object_], max_snap_m: float) -> WalkGraph:
    """Snap points once and split their edges: the graph every search runs on.

    Parameters
    ----------
    net
        The walking network.
    points
        Shapely points in ``net.crs`` (buildings, facilities, entry points, candidates).
    max_snap_m
        Maximum snap distance, metres; farther points get ``point_node == -1``.
    """
    points = np.asarray(points, dtype=object)
    snaps = snap_points(net, points, max_snap_m)
    matched = np.flatnonzero(snaps.matched)
    k = len(matched)
    n_road = net.n_nodes
    e = snaps.edge[matched]
    t = np.clip(snaps.offset_m[matched], 0.0, net.edge_m[e])
    order = np.lexsort((t, e))
    e_s, t_s = e[order], t[order]
    virt = n_road + np.arange(k)  # virtual node of the i-th sorted snap
    first_on_edge = np.ones(k, dtype=bool)
    first_on_edge[1:] = e_s[1:] != e_s[:-1]
    last_on_edge = np.ones(k, dtype=bool)
    last_on_edge[:-1] = e_s[1:] != e_s[:-1]
    prev_node = np.where(first_on_edge, net.edge_u[e_s], np.r_[-1, virt[:-1]])
    prev_t = np.where(first_on_edge, 0.0, np.r_[0.0, t_s[:-1]])
    split_edges = np.zeros(len(net.edge_m), dtype=bool)
    split_edges[e_s] = True
    point_node = np.full(len(points), -1, dtype=np.int64)
    point_ids = n_road + k + np.arange(k)
    sorted_points = matched[order]
    point_node[sorted_points] = point_ids

    us = [net.edge_u[~split_edges], prev_node, virt[last_on_edge], virt]
    vs = [net.edge_v[~split_edges], virt, net.edge_v[e_s[last_on_edge]], point_ids]
    ws = [
        net.edge_m[~split_edges],
        t_s - prev_t,
        net.edge_m[e_s[last_on_edge]] - t_s[last_on_edge],
        snaps.snap_m[sorted_points],
    ]
    u = np.concatenate(us)
    v = np.concatenate(vs)
    w = np.maximum(np.concatenate(ws), 0.0)
    n = n_road + 2 * k
    matrix = _undirected_matrix(u, v, w, n)
    xy = shapely.get_coordinates(points) if len(points) else np.zeros((0, 2))
    return WalkGraph(net=net, matrix=matrix, point_node=point_node, snaps=snaps, point_xy=xy)


def _undirected_matrix(u: NDArray, v: NDArray, w: NDArray, n: int) -> csr_array:
    """Upper-triangular CSR of an undirected graph, keeping the shortest of parallel
    edges (a sparse matrix would otherwise add them) and explicit zero lengths."""
    a = np.minimum(u, v)
    b = np.maximum(u, v)
    order = np.lexsort((w, b, a))
    a, b, w = a[order], b[order], w[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return csr_array((w[first], (a[first], b[first])), shape=(n, n))


def far_snap_findings(
    snaps: Snaps,
    ids: pd.Series,
    layer: str,
    max_snap_m: float,
    geometry: NDArray[np.object_],
    crs: pyproj.CRS,
) -> gpd.GeoDataFrame:
    """Findings for points beyond ``max_snap_m`` from the network (kind ``far_from_network``)."""
    far = ~snaps.matched
    rows = [
        {
            "kind": "far_from_network",
            "layer": layer,
            "id": str(i),
            "value_m": float(d),
            "note": f"more than {max_snap_m:g} m from the walking network; not matched",
            "geometry": g,
        }
        for i, d, g in zip(np.asarray(ids)[far], snaps.snap_m[far], geometry[far], strict=True)
    ]
    return _findings_frame(rows, crs)
