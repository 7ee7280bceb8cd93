"""The walking network: roads noded at real intersections, points snapped onto edges.

Every road class is walkable. Roads are noded where they actually meet (crossings and
T-junctions, found with an STRtree and a DE-9IM test, then ``shapely.union_all`` of only
the lines involved), the unique line ends become nodes and every noded piece an edge
weighted by its length in metres in the metric CRS (CGCS2000 3-degree Gauss–Krüger zone
of the data, :func:`gridgis.crs.metric_crs_for`). Connected pieces with at least
``network.keep_piece_min_m`` of road (towns, islands, the cities of a province) are kept,
shorter loose pieces are reported and dropped.

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
from gridgis.errors import InputError
from gridgis.standards import DEFAULT, NetworkRules, Settings

FINDING_COLUMNS = ["kind", "layer", "id", "value_m", "note"]


@dataclass
class RoadNetwork:
    """The noded walking network (its kept connected pieces), metric CRS.

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
        Counts for output metadata: road lines in, noded edges, components, kept edges,
        repairs by kind, share of road length lost to loose pieces…
    edge_zone
        Compound each edge runs in (-1 outside every walled compound; None: no walls).
    edge_gate
        For the straight paths linking a gate to the roads, the compound of the gate
        (-1 for roads; None: no walls).
    walls
        The walled compounds and open gates (None: no walls).
    warnings
        Problems a planner must see (e.g. much of the road length in loose pieces).
    """

    crs: pyproj.CRS
    node_xy: NDArray[np.float64]
    edge_u: NDArray[np.int64]
    edge_v: NDArray[np.int64]
    edge_m: NDArray[np.float64]
    edge_geom: NDArray[np.object_]
    findings: pd.DataFrame
    stats: dict = field(default_factory=dict)
    edge_zone: NDArray[np.int64] | None = None
    edge_gate: NDArray[np.int64] | None = None
    walls: Walls | None = None
    warnings: list[str] = field(default_factory=list)
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


def _node_by_grade(lines: NDArray[np.object_], grade: NDArray[np.int64]):
    """Node crossings only between lines of one grade (a bridge does not meet the street
    it passes over)."""
    levels = np.unique(grade)
    if len(levels) <= 1:
        return _node_lines(lines), None
    out, out_grade = [], []
    for level in levels:
        noded = _node_lines(lines[grade == level])
        out.append(noded)
        out_grade.append(np.full(len(noded), level, dtype=np.int64))
    return np.concatenate(out), np.concatenate(out_grade)


def build_network(
    roads: gpd.GeoDataFrame,
    settings: Settings = DEFAULT,
    crs: pyproj.CRS | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    gates: gpd.GeoDataFrame | None = None,
) -> RoadNetwork:
    """Build the walking network from the roads layer: repair, node, wall, keep the
    connected pieces of ``network.keep_piece_min_m`` or more.

    Parameters
    ----------
    roads
        Roads layer (any CRS; canonical layers are EPSG:4326), LineString or
        MultiLineString; every ``road_class`` is walkable. Optional ``layer``, ``bridge``
        and ``tunnel`` columns give the grade (:func:`road_grades`).
    settings
        ``settings.network``: snap tolerance, dangle extension, duplicate tolerance,
        largest acceptable share of road length in loose pieces, gates.
    crs
        Metric CRS to compute in; default :func:`gridgis.crs.metric_crs_for` of ``roads``.
    compounds, gates
        Optional walled compounds (polygons) and their gates (points): walks cross a
        wall only at an open gate (:func:`make_walls`).

    Returns
    -------
    RoadNetwork
        The kept connected pieces; repairs, dropped pieces and a loud
        ``network_fragmented`` finding (and warning) in ``findings``/``warnings``.

    Raises
    ------
    InputError
        When the roads layer is empty or has no line geometry.
    """
    if roads is None or len(roads) == 0:
        raise InputError("layer 'roads': empty, a walking network needs roads")
    rules = settings.network
    crs = pyproj.CRS(crs) if crs is not None else metric_crs_for(roads)
    geoms = roads.geometry.to_crs(crs).values
    lines, row = shapely.get_parts(np.asarray(geoms), return_index=True)
    ok = (shapely.get_type_id(lines) == 1) & ~shapely.is_empty(lines)
    lines, row = lines[ok], row[ok]
    if len(lines) == 0:
        raise InputError("layer 'roads': no LineString geometry to walk on")
    lines = shapely.force_2d(lines)
    ok = shapely.length(lines) > 0
    lines, row = lines[ok], row[ok]
    lines_in = len(lines)
    grade = road_grades(roads)[row]
    # a closed way (a loop path, a roundabout drawn as one ring) would be one edge from a
    # node to itself: cut it in two halves
    ring = shapely.is_closed(lines)
    if ring.any():
        idx = np.flatnonzero(ring)
        lines, source = split_lines_at(lines, idx, shapely.length(lines[idx]) / 2)
        grade = grade[source]
    # exact crossings and T-junctions first (GEOS noding, per grade), then the repair
    # joins what misses by less than the tolerance (float slips, CAD gaps)
    noded, noded_grade = _node_by_grade(lines, grade)
    grade = noded_grade if noded_grade is not None else np.full(len(noded), grade[0])
    repair = repair_topology(noded, grade, rules)
    lines, grade = repair.lines, repair.grade
    walls, wall_findings = make_walls(compounds, gates, crs, rules)
    zone = link = None
    closed = np.array([], dtype=object)
    if walls is not None:
        lines, grade, zone, link, closed = cut_at_walls(lines, grade, walls, rules)
    lengths = shapely.length(lines)
    keep = lengths > 0
    lines, lengths = lines[keep], lengths[keep]
    zone = zone[keep] if zone is not None else None
    link = link[keep] if link is not None else None
    u, v, node_xy = _end_nodes(lines, zone, closed)
    return _assemble(
        crs,
        lines,
        lengths,
        u,
        v,
        node_xy,
        zone,
        link,
        walls,
        rules,
        findings=repair.findings + wall_findings,
        stats={"road_lines": int(lines_in), **repair.stats},
    )


def _end_nodes(
    lines: NDArray[np.object_], zone: NDArray | None, closed: NDArray[np.object_]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Node of each line's start and end: unique coordinates (to the micrometre); where a
    wall crossing is closed, the two sides are different nodes."""
    first = shapely.get_coordinates(shapely.get_point(lines, 0))
    last = shapely.get_coordinates(shapely.get_point(lines, -1))
    ends = np.round(np.vstack([first, last]), 6)
    side = np.zeros(len(ends))
    if zone is not None and len(closed):
        p, _ = shapely.STRtree(closed).query(
            shapely.points(ends), predicate="dwithin", distance=1e-6
        )
        side[p] = np.r_[zone, zone][p] + 1.0
    keyed = np.c_[ends, side]
    uniq, inverse = np.unique(keyed, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return inverse[: len(lines)], inverse[len(lines) :], uniq[:, :2]


def _assemble(
    crs, lines, lengths, u, v, node_xy, zone, link, walls, rules, findings, stats
) -> RoadNetwork:
    """Drop loops and duplicates, keep the connected pieces of ``keep_piece_min_m`` or more
    road (and always the largest), renumber, report."""
    keep = u != v
    dup_keep, dup_rows = merge_duplicates(
        u[keep], v[keep], lines[keep], lengths[keep], rules.duplicate_tolerance_m
    )
    keep[np.flatnonzero(keep)[~dup_keep]] = False
    findings = findings + dup_rows
    lines, lengths, u, v = lines[keep], lengths[keep], u[keep], v[keep]
    zone = zone[keep] if zone is not None else None
    link = link[keep] if link is not None else None
    n = len(node_xy)
    graph = csr_array((np.ones(len(u)), (u, v)), shape=(n, n))
    n_comp, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels[u], weights=lengths, minlength=n_comp)
    kept = sizes >= rules.keep_piece_min_m
    kept[int(np.argmax(sizes))] = True  # the largest piece, however short
    keep = kept[labels[u]]
    findings += _piece_findings(lines, u, labels, sizes, kept)
    total = float(lengths.sum())
    lost = float(lengths[~keep].sum())
    share = lost / total if total > 0 else 0.0
    warnings = []
    if share > rules.max_lost_share:
        text = (
            f"the walking network is broken: {share:.0%} of the road length "
            f"({lost / 1000:.1f} of {total / 1000:.1f} km) lies in {int((~kept).sum())} "
            f"pieces shorter than network.keep_piece_min_m = {rules.keep_piece_min_m:g} m "
            f"that are connected to no longer one (more than network.max_lost_share = "
            f"{rules.max_lost_share:.0%}); walking distances there are missing"
        )
        warnings.append(text)
        findings.append(
            {
                "kind": "network_fragmented",
                "layer": "roads",
                "id": "network",
                "value_m": lost,
                "note": text,
                "geometry": shapely.union_all(lines[~keep]),
            }
        )
    used = np.zeros(n, dtype=bool)
    used[u[keep]] = True
    used[v[keep]] = True
    new_id = np.cumsum(used) - 1
    stats = {
        **stats,
        "noded_edges": int(len(lines)),
        "components": int(n_comp),
        "kept_components": int(kept.sum()),
        "kept_edges": int(keep.sum()),
        "kept_nodes": int(used.sum()),
        "kept_length_m": float(lengths[keep].sum()),
        "dropped_length_m": lost,
        "dropped_share": share,
        "merged_duplicate": len(dup_rows),
        "grade_rule": GRADE_NOTE,
    }
    return RoadNetwork(
        crs=crs,
        node_xy=node_xy[used],
        edge_u=new_id[u[keep]].astype(np.int64),
        edge_v=new_id[v[keep]].astype(np.int64),
        edge_m=lengths[keep],
        edge_geom=lines[keep],
        findings=_findings_frame(findings, crs),
        stats=stats,
        edge_zone=zone[keep] if zone is not None else None,
        edge_gate=link[keep] if link is not None else None,
        walls=walls,
        warnings=warnings,
    )


def _piece_findings(lines, u, labels, sizes, kept) -> list[dict]:
    """One ``disconnected_piece`` finding per dropped piece of road."""
    piece_edges = np.bincount(labels[u], minlength=len(sizes))
    rows = []
    for comp in np.flatnonzero(~kept & (piece_edges > 0)):
        rows.append(
            {
                "kind": "disconnected_piece",
                "layer": "roads",
                "id": f"piece-{comp}",
                "value_m": float(sizes[comp]),
                "note": f"{int(piece_edges[comp])} edges not connected to any piece of "
                "network.keep_piece_min_m or more; not used for walking distances",
                "geometry": shapely.union_all(lines[labels[u] == comp]),
            }
        )
    return rows


def _findings_frame(rows: list[dict], crs: pyproj.CRS) -> gpd.GeoDataFrame:
    if not rows:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype="object") for c in FINDING_COLUMNS},
            geometry=gpd.GeoSeries([], crs=crs),
            crs=crs,
        )
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    return frame[[*FINDING_COLUMNS, "geometry"]]


# --------------------------------------------------------------------------------------
# Topology repair: node within a tolerance, extend dangles, merge duplicates
# --------------------------------------------------------------------------------------

GRADE_NOTE = (
    "grade = the road's layer when given, else +1 for a bridge, -1 for a tunnel, 0 "
    "otherwise; crossings and end-to-line joins only within one grade, end-to-end joins "
    "across grades (ramps meet bridges at their ends)"
)


def road_grades(roads: gpd.GeoDataFrame | pd.DataFrame) -> NDArray[np.int64]:
    """Grade of each road row: ``layer`` when given, else +1 bridge, -1 tunnel, else 0.

    Roads of different grades cross without meeting (a bridge over a street); see
    :data:`GRADE_NOTE`.
    """
    from gridgis.layers import parse_bool

    n = len(roads)
    grade = np.zeros(n, dtype=np.int64)

    def flag(col: str) -> NDArray[np.bool_]:
        if col not in roads.columns:
            return np.zeros(n, dtype=bool)
        return np.array([parse_bool(v) is True for v in roads[col].to_numpy()], dtype=bool)

    grade[flag("bridge")] = 1
    grade[flag("tunnel")] = -1
    if "layer" in roads.columns:
        level = pd.to_numeric(roads["layer"], errors="coerce").to_numpy(dtype=float)
        given = np.isfinite(level)
        grade[given] = np.round(level[given]).astype(np.int64)
    return grade


@dataclass
class Repair:
    """Lines after topology repair, with one finding row per repair."""

    lines: NDArray[np.object_]
    grade: NDArray[np.int64]
    findings: list[dict]
    stats: dict
    loose: NDArray = field(default_factory=lambda: np.zeros((0, 2)))
    added: NDArray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def _line_ends(lines: NDArray[np.object_]) -> tuple[NDArray, NDArray, NDArray]:
    """Coordinates of every line's first then last point (2n, 2), the line of each end,
    and the direction each end points to (unit vector away from the line), shape (2n, 2)."""
    n = len(lines)
    first = shapely.get_coordinates(shapely.get_point(lines, 0))
    last = shapely.get_coordinates(shapely.get_point(lines, -1))
    second = shapely.get_coordinates(shapely.get_point(lines, 1))
    before = shapely.get_coordinates(shapely.get_point(lines, -2))
    xy = np.vstack([first, last])
    d = np.vstack([first - second, last - before])
    norm = np.hypot(d[:, 0], d[:, 1])
    d = d / np.where(norm > 0, norm, 1.0)[:, None]
    return xy, np.r_[np.arange(n), np.arange(n)], d


def _cluster_ends(
    xy: NDArray, line_of: NDArray, tol: float, active: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Where each end goes when ends within ``tol`` of each other are merged (NaN: the end
    is alone), and its cluster (-1: alone). A cluster goes to the coordinate most of its
    ends already share (an existing junction), else to the mean of its ends."""
    pts = shapely.points(xy)
    a, b = shapely.STRtree(pts).query(pts, predicate="dwithin", distance=tol)
    keep = (a < b) & (line_of[a] != line_of[b]) & active[a] & active[b]
    a, b = a[keep], b[keep]
    out = np.full_like(xy, np.nan)
    cluster = np.full(len(xy), -1, dtype=np.int64)
    if len(a) == 0:
        return out, cluster
    n = len(xy)
    _, label = connected_components(csr_array((np.ones(len(a)), (a, b)), shape=(n, n)))
    size = np.bincount(label, minlength=label.max() + 1)
    members = np.flatnonzero(size[label] > 1)
    lab = label[members]
    key = np.round(xy[members], 6)
    # the most shared exact coordinate per cluster (ties: the first), else the mean
    _, exact, count = np.unique(np.c_[lab, key], axis=0, return_inverse=True, return_counts=True)
    exact = exact.ravel()
    votes = count[exact]
    order = np.lexsort((members, -votes, lab))
    best = order[np.r_[True, lab[order][1:] != lab[order][:-1]]]
    best_of = np.full(label.max() + 1, -1)
    best_of[lab[best]] = best
    mean = np.c_[
        np.bincount(lab, weights=xy[members, 0]) / np.maximum(np.bincount(lab), 1),
        np.bincount(lab, weights=xy[members, 1]) / np.maximum(np.bincount(lab), 1),
    ]
    shared = votes[best_of[lab]] > 1
    out[members] = np.where(shared[:, None], xy[members[best_of[lab]]], mean[lab])
    cluster[members] = lab
    return out, cluster


def _clusters_on_lines(
    target: NDArray,
    cluster: NDArray,
    own: NDArray,
    grade_pt: NDArray,
    lines: NDArray[np.object_],
    grade: NDArray,
    tree: shapely.STRtree,
    tol: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Clusters of ends within ``tol`` of a line none of their ends belongs to (a junction
    on a through road drawn as one line): the cluster's first end and that line."""
    members = np.flatnonzero(cluster >= 0)
    labs, first = np.unique(cluster[members], return_index=True)
    rep = members[first]
    if len(rep) == 0:
        return rep, rep
    p, e = tree.query(shapely.points(target[rep]), predicate="dwithin", distance=tol)
    n = len(lines)
    own_keys = cluster[members] * n + own[members]
    ok = ~np.isin(labs[p] * n + e, own_keys) & (grade[e] == grade_pt[rep[p]])
    p, e = p[ok], e[ok]
    if len(p) == 0:
        return p, e
    d = shapely.distance(shapely.points(target[rep[p]]), lines[e])
    order = np.lexsort((e, d, p))
    first = order[np.r_[True, p[order][1:] != p[order][:-1]]]
    return rep[p[first]], e[first]


def _nearest_other_line(
    pts: NDArray[np.object_],
    own: NDArray,
    grade_pt: NDArray,
    lines: NDArray[np.object_],
    grade: NDArray,
    tree: shapely.STRtree,
    tol: float,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """For each point, the nearest line of its grade other than ``own`` within ``tol``
    (-1 when none), and the distance."""
    best = np.full(len(pts), -1, dtype=np.int64)
    dist = np.full(len(pts), np.inf)
    if len(pts) == 0:
        return best, dist
    p, e = tree.query(pts, predicate="dwithin", distance=tol)
    ok = (e != own[p]) & (grade[e] == grade_pt[p])
    p, e = p[ok], e[ok]
    if len(p) == 0:
        return best, dist
    d = shapely.distance(pts[p], lines[e])
    order = np.lexsort((e, d, p))
    first = order[np.r_[True, p[order][1:] != p[order][:-1]]]
    best[p[first]] = e[first]
    dist[p[first]] = d[first]
    return best, dist


def _dangle_hits(
    xy: NDArray,
    direction: NDArray,
    own: NDArray,
    grade_pt: NDArray,
    lines: NDArray[np.object_],
    grade: NDArray,
    tree: shapely.STRtree,
    reach: float,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Extend each end straight ahead by ``reach`` metres: the first line of its grade it
    meets (-1 none), the point where (x, y) and the distance."""
    n = len(xy)
    hit = np.full(n, -1, dtype=np.int64)
    where = np.full((n, 2), np.nan)
    dist = np.full(n, np.inf)
    if n == 0 or reach <= 0:
        return hit, where, dist
    rays = shapely.linestrings(
        np.stack([xy, xy + direction * reach], axis=1).reshape(-1, 2),
        indices=np.repeat(np.arange(n), 2),
    )
    p, e = tree.query(rays, predicate="intersects")
    ok = (e != own[p]) & (grade[e] == grade_pt[p])
    p, e = p[ok], e[ok]
    if len(p) == 0:
        return hit, where, dist
    start = shapely.points(xy[p])
    inter = shapely.intersection(rays[p], lines[e])
    d = shapely.distance(start, inter)
    near = shapely.get_point(shapely.shortest_line(start, inter), 1)
    order = np.lexsort((e, d, p))
    first = order[np.r_[True, p[order][1:] != p[order][:-1]]]
    hit[p[first]] = e[first]
    dist[p[first]] = d[first]
    where[p[first]] = shapely.get_coordinates(near[first])
    return hit, where, dist


def _rays_meeting(
    xy: NDArray, direction: NDArray, own: NDArray, grade_pt: NDArray, ends: NDArray, reach: float
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Pairs of dangling ends (of one grade, different lines) whose straight extensions
    of ``reach`` metres cross: the ends and the crossing point (each end in one pair, the
    closest pairs first)."""
    if len(ends) < 2 or reach <= 0:
        return np.zeros(0, np.int64), np.zeros((0, 2))
    start = xy[ends]
    rays = shapely.linestrings(
        np.stack([start, start + direction[ends] * reach], axis=1).reshape(-1, 2),
        indices=np.repeat(np.arange(len(ends)), 2),
    )
    a, b = shapely.STRtree(rays).query(rays, predicate="intersects")
    ok = (a < b) & (own[ends[a]] != own[ends[b]]) & (grade_pt[ends[a]] == grade_pt[ends[b]])
    a, b = a[ok], b[ok]
    if len(a) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 2))
    inter = shapely.intersection(rays[a], rays[b])
    is_pt = shapely.get_type_id(inter) == 0
    a, b, inter = a[is_pt], b[is_pt], inter[is_pt]
    far = np.maximum(
        shapely.distance(shapely.points(start[a]), inter),
        shapely.distance(shapely.points(start[b]), inter),
    )
    used = np.zeros(len(ends), dtype=bool)
    out, where = [], []
    at = shapely.get_coordinates(inter)
    for k in np.argsort(far, kind="stable"):
        if used[a[k]] or used[b[k]]:
            continue
        used[a[k]] = used[b[k]] = True
        out += [ends[a[k]], ends[b[k]]]
        where += [at[k], at[k]]
    return np.asarray(out, np.int64), np.asarray(where, float).reshape(-1, 2)


def split_lines_at(
    lines: NDArray[np.object_], line_idx: NDArray, offsets: NDArray
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Cut lines at distances along them (metres from their first point).

    The cut points are :func:`shapely.line_interpolate_point` of the same offsets, so a
    point made that way elsewhere meets the pieces' ends exactly.

    Returns
    -------
    pieces, source
        The lines not cut, then the pieces of the cut ones, and the input index of each.
    """
    lines = np.asarray(lines, dtype=object)
    line_idx = np.asarray(line_idx, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=float)
    if len(line_idx) == 0:
        return lines, np.arange(len(lines))
    length = shapely.length(lines)
    inside = (offsets > 1e-9) & (offsets < length[line_idx] - 1e-9)
    line_idx, offsets = line_idx[inside], offsets[inside]
    cut = np.unique(line_idx)
    if len(cut) == 0:
        return lines, np.arange(len(lines))
    cut_xy = shapely.get_coordinates(shapely.line_interpolate_point(lines[line_idx], offsets))
    order = np.lexsort((offsets, line_idx))
    line_idx, offsets, cut_xy = line_idx[order], offsets[order], cut_xy[order]
    bounds = np.searchsorted(line_idx, cut, side="left"), np.searchsorted(line_idx, cut, "right")
    coords, which = shapely.get_coordinates(lines[cut], return_index=True)
    starts = np.searchsorted(which, np.arange(len(cut)))
    ends = np.r_[starts[1:], len(which)]
    piece_xy, piece_id, source = [], [], []
    pid = 0
    for k, line in enumerate(cut):
        c = coords[starts[k] : ends[k]]
        along = np.r_[0.0, np.cumsum(np.hypot(*np.diff(c, axis=0).T))]
        offs = offsets[bounds[0][k] : bounds[1][k]]
        pts = cut_xy[bounds[0][k] : bounds[1][k]]
        keep = np.r_[True, np.diff(offs) > 1e-9]
        offs, pts = offs[keep], pts[keep]
        cuts_at = np.searchsorted(along, offs, side="right")  # first vertex after the cut
        prev_pt, prev_v = c[0:1], 1
        for off_v, pt in zip(cuts_at, pts, strict=True):
            seg = np.vstack([prev_pt, c[prev_v:off_v], pt[None, :]])
            piece_xy.append(seg)
            piece_id.append(np.full(len(seg), pid))
            source.append(line)
            pid += 1
            prev_pt, prev_v = pt[None, :], off_v
        seg = np.vstack([prev_pt, c[prev_v:]])
        piece_xy.append(seg)
        piece_id.append(np.full(len(seg), pid))
        source.append(line)
        pid += 1
    pieces = shapely.linestrings(np.vstack(piece_xy), indices=np.concatenate(piece_id))
    rest = np.setdiff1d(np.arange(len(lines)), cut)
    return np.concatenate([lines[rest], pieces]), np.r_[rest, np.asarray(source, np.int64)]


def repair_topology(
    lines: NDArray[np.object_],
    grade: NDArray[np.int64],
    rules: NetworkRules,
    max_passes: int = 3,
) -> Repair:
    """Join road ends that miss each other by less than the tolerance, in passes: a join
    made in one pass (e.g. two opposite arms of a junction extended to each other) is a
    line the next pass can join the other ends to. Stops when a pass joins nothing, or
    after ``max_passes``. See :func:`_repair_pass` for the rules."""
    found: list[dict] = []
    stats: dict = {}
    loose = None
    joined = np.zeros(len(lines), dtype=bool)
    for _ in range(max_passes):
        step = _repair_pass(lines, grade, rules, loose)
        n_before = len(lines)
        lines, grade, loose = step.lines, step.grade, step.loose
        pieces = len(lines) - int(step.added.sum())
        joined = np.r_[joined[: min(pieces, n_before)], np.zeros(max(pieces - n_before, 0), bool)]
        joined = np.r_[joined, np.ones(int(step.added.sum()), dtype=bool)]
        found += step.findings
        for key, value in step.stats.items():
            stats[key] = stats.get(key, 0) + value
        if step.stats["joins"] == 0 or len(loose) == 0:
            break
    stats.pop("joins", None)
    lines, grade = _node_joins(lines, grade, joined)
    return Repair(lines, grade, found, stats)


def _node_joins(
    lines: NDArray[np.object_], grade: NDArray[np.int64], joined: NDArray[np.bool_]
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Node the join lines that cross a line of their grade (e.g. the two extensions
    through a junction whose four arms all stopped short)."""
    conn = np.flatnonzero(joined)
    if len(conn) == 0:
        return lines, grade
    c, e = shapely.STRtree(lines).query(lines[conn], predicate="crosses")
    same = grade[conn[c]] == grade[e]
    involved = np.zeros(len(lines), dtype=bool)
    involved[conn[c[same]]] = True
    involved[e[same]] = True
    if not involved.any():
        return lines, grade
    noded, noded_grade = _node_by_grade(lines[involved], grade[involved])
    if noded_grade is None:
        noded_grade = np.full(len(noded), grade[involved][0])
    return np.concatenate([lines[~involved], noded]), np.r_[grade[~involved], noded_grade]


def _same_points(xy: NDArray, points: NDArray) -> NDArray[np.bool_]:
    """Which rows of ``xy`` are one of ``points`` (to the nanometre)."""
    if len(points) == 0:
        return np.zeros(len(xy), dtype=bool)
    both = np.round(np.vstack([xy, points]), 9)
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return np.isin(inverse[: len(xy)], inverse[len(xy) :])


def _repair_pass(
    lines: NDArray[np.object_],
    grade: NDArray[np.int64],
    rules: NetworkRules,
    loose: NDArray | None,
) -> Repair:
    """Join road ends that miss each other by less than the tolerance (vectorised).

    1. Ends within ``snap_tolerance_m`` of each other (other lines, any grade) merge to
       one point (the coordinate most of them already share, else their mean):
       kind ``snapped_to_node``.
    2. Ends still alone within ``snap_tolerance_m`` of another line of their grade join
       it at its nearest point, which splits that line: kind ``snapped_to_line``.
    3. Ends still alone are extended straight ahead up to ``extend_dangle_m`` to the
       first line of their grade they meet: kind ``extended_dangle``.

    Joins are short straight connector lines (the moved distance), so the roads keep
    their own geometry. A finding lists each repair moving an end by at least
    ``report_min_m`` (kind, location, metres moved); smaller ones are only counted.
    After the first pass only the ends left ``loose`` by the one before move.
    """
    tol, reach = rules.snap_tolerance_m, rules.extend_dangle_m
    xy, own, direction = _line_ends(lines)
    grade_pt = grade[own]
    tree = shapely.STRtree(lines)
    active = np.ones(len(xy), dtype=bool) if loose is None else _same_points(xy, loose)
    target, cluster = _cluster_ends(xy, own, tol, active)
    clustered = cluster >= 0
    c_rep, c_line = _clusters_on_lines(target, cluster, own, grade_pt, lines, grade, tree, tol)
    c_off = shapely.line_locate_point(lines[c_line], shapely.points(target[c_rep]))
    alone = np.flatnonzero(~clustered & active)
    pts = shapely.points(xy[alone])
    near, _ = _nearest_other_line(pts, own[alone], grade_pt[alone], lines, grade, tree, tol)
    snapped = alone[near >= 0]
    snap_line = near[near >= 0]
    snap_off = shapely.line_locate_point(lines[snap_line], pts[near >= 0])
    rest = alone[near < 0]
    hit, hit_xy, _ = _dangle_hits(
        xy[rest], direction[rest], own[rest], grade_pt[rest], lines, grade, tree, reach
    )
    ext = rest[hit >= 0]
    ext_line = hit[hit >= 0]
    ext_off = shapely.line_locate_point(lines[ext_line], shapely.points(hit_xy[hit >= 0]))
    # where each end goes: the cut points are interpolated exactly as the splitter does
    split_line = np.r_[snap_line, ext_line, c_line]
    split_off = np.r_[snap_off, ext_off, c_off]
    length = shapely.length(lines[split_line])
    split_off = np.where(split_off < 1e-6, 0.0, split_off)
    split_off = np.where(split_off > length - 1e-6, length, split_off)
    to_xy = target.copy()
    at = shapely.get_coordinates(shapely.line_interpolate_point(lines[split_line], split_off))
    to_xy[np.r_[snapped, ext]] = at[: len(snapped) + len(ext)]
    if len(c_rep):  # every end of such a cluster goes to the point on the through line
        rep_at = np.full((cluster.max() + 1, 2), np.nan)
        rep_at[cluster[c_rep]] = at[len(snapped) + len(ext) :]
        on_line = clustered & np.isfinite(rep_at[np.maximum(cluster, 0), 0])
        to_xy[on_line] = rep_at[cluster[on_line]]
    moved = np.hypot(*(to_xy - xy).T)
    kind = np.full(len(xy), "", dtype=object)
    kind[clustered] = "snapped_to_node"
    kind[snapped] = "snapped_to_line"
    kind[ext] = "extended_dangle"
    # dangles pointing past each other (a corner whose two arms both stop short): both
    # extended to where their extensions cross
    meet, meet_xy = _rays_meeting(xy, direction, own, grade_pt, rest[hit < 0], reach)
    to_xy[meet] = meet_xy
    kind[meet] = "extended_dangle"
    moved = np.hypot(*(to_xy - xy).T)
    # a piece whose two ends merged into one point (an overshoot's stub beyond the
    # junction, a sliver shorter than the tolerance) is dropped, its ends not joined
    n_lines = len(lines)
    collapsed = (cluster[:n_lines] >= 0) & (cluster[:n_lines] == cluster[n_lines:])
    collapsed &= shapely.length(lines) <= 2 * tol
    join = np.flatnonzero((kind != "") & (moved > 0) & ~np.r_[collapsed, collapsed])
    connectors = shapely.linestrings(
        np.stack([xy[join], to_xy[join]], axis=1).reshape(-1, 2),
        indices=np.repeat(np.arange(len(join)), 2),
    )
    pieces, source = split_lines_at(lines, split_line, split_off)
    pieces, source = pieces[~collapsed[source]], source[~collapsed[source]]
    out_lines = np.concatenate([pieces, connectors])
    out_grade = np.r_[grade[source], grade_pt[join]]
    added = np.r_[np.zeros(len(pieces), dtype=bool), np.ones(len(connectors), dtype=bool)]
    report = join[moved[join] >= rules.report_min_m]
    where = shapely.points(to_xy[report]) if len(report) else np.array([], dtype=object)
    stub_len = shapely.length(lines[collapsed])
    stubs = [
        {
            "kind": "removed_stub",
            "layer": "roads",
            "id": f"piece-{int(i)}",
            "value_m": float(d),
            "note": f"piece of {d:.2f} m whose two ends meet within the tolerance (an "
            "overshoot beyond a junction, or a sliver): removed",
            "geometry": lines[i],
        }
        for i, d in zip(np.flatnonzero(collapsed), stub_len, strict=True)
        if d >= rules.report_min_m
    ]
    findings = [
        {
            "kind": str(kind[i]),
            "layer": "roads",
            "id": f"end-{int(own[i])}-{'first' if i < len(lines) else 'last'}",
            "value_m": float(moved[i]),
            "note": f"road end moved {moved[i]:.2f} m to join the network",
            "geometry": g,
        }
        for i, g in zip(report, where, strict=True)
    ] + stubs
    stats = {
        f"{k}": int((kind[join] == k).sum())
        for k in ("snapped_to_node", "snapped_to_line", "extended_dangle")
    }
    stats["joins_below_report_min"] = int(len(join) - len(report))
    stats["collapsed_pieces"] = int(collapsed.sum())
    stats["joins"] = int(len(join))
    stats["repaired_length_m"] = float(moved[join].sum())
    left = np.setdiff1d(rest[hit < 0], meet)
    return Repair(out_lines, out_grade, findings, stats, loose=xy[left], added=added)


def merge_duplicates(
    u: NDArray, v: NDArray, lines: NDArray[np.object_], lengths: NDArray, tol: float
) -> tuple[NDArray[np.bool_], list[dict]]:
    """Edges digitised twice: same two nodes and Hausdorff distance ≤ ``tol``. Returns a
    keep mask (the shortest of each such group stays) and one finding per dropped edge."""
    a, b = np.minimum(u, v), np.maximum(u, v)
    order = np.lexsort((lengths, b, a))
    same = np.r_[False, (a[order][1:] == a[order][:-1]) & (b[order][1:] == b[order][:-1])]
    keep = np.ones(len(u), dtype=bool)
    rows = []
    if not same.any():
        return keep, rows
    group_first = order[np.maximum.accumulate(np.where(~same, np.arange(len(order)), 0))]
    cand = np.flatnonzero(same)
    dup, first = order[cand], group_first[cand]
    h = shapely.hausdorff_distance(lines[dup], lines[first])
    drop = dup[h <= tol]
    keep[drop] = False
    for i, d in zip(drop, h[h <= tol], strict=True):
        rows.append(
            {
                "kind": "merged_duplicate",
                "layer": "roads",
                "id": f"edge-{int(i)}",
                "value_m": float(d),
                "note": f"road piece digitised twice ({d:.2f} m apart); the shorter kept",
                "geometry": lines[i],
            }
        )
    return keep, rows


# --------------------------------------------------------------------------------------
# Walls and gates: compounds are entered only at their gates
# --------------------------------------------------------------------------------------


@dataclass
class Walls:
    """Walled compounds and their open gates, metric CRS.

    Attributes
    ----------
    polygons
        Compound polygons (walls are their boundaries).
    ids
        ``compound_id`` of each polygon.
    gates
        Open gate points (closed ones are dropped), each on a compound's boundary.
    gate_compound
        Index of the compound each gate opens (-1: on no compound's boundary).
    gate_ids
        ``gate_id`` of each gate.
    """

    polygons: NDArray[np.object_]
    ids: NDArray[np.object_]
    gates: NDArray[np.object_]
    gate_compound: NDArray[np.int64]
    gate_ids: NDArray[np.object_]

    def zone_of(self, points: NDArray[np.object_]) -> NDArray[np.int64]:
        """Compound each point stands in (-1: in none). Points on a wall are outside."""
        out = np.full(len(points), -1, dtype=np.int64)
        if len(self.polygons) == 0 or len(points) == 0:
            return out
        p, c = shapely.STRtree(self.polygons).query(points, predicate="intersects")
        inside = shapely.contains_properly(self.polygons[c], points[p])
        p, c = p[inside], c[inside]
        order = np.lexsort((c, p))  # nested compounds: the first listed
        p, c = p[order], c[order]
        first = np.r_[True, p[1:] != p[:-1]] if len(p) else np.zeros(0, bool)
        out[p[first]] = c[first]
        return out


def make_walls(
    compounds: gpd.GeoDataFrame | None,
    gates: gpd.GeoDataFrame | None,
    crs: pyproj.CRS,
    rules: NetworkRules,
) -> tuple[Walls | None, list[dict]]:
    """Walls from the ``compounds`` layer (polygons) and ``gates`` (points).

    A gate stands on the compound whose boundary lies within ``rules.gate_snap_m``; gates
    whose ``access`` is one of ``rules.closed_access`` are closed. A compound with no gate
    at all in the data is not walled (the data cannot say where it opens): a finding
    ``compound_without_gate``. Returns None when no compound is walled.
    """
    if compounds is None or len(compounds) == 0:
        return None, []
    comp = compounds.to_crs(crs).reset_index(drop=True)
    polys = np.asarray(comp.geometry.values, dtype=object)
    ids = (
        comp["compound_id"].astype(str).to_numpy()
        if "compound_id" in comp.columns
        else np.array([f"c{i}" for i in range(len(comp))], dtype=object)
    )
    ok = ~(shapely.is_missing(polys) | shapely.is_empty(polys))
    polys, ids = polys[ok], ids[ok]
    g_pts = np.array([], dtype=object)
    g_ids = np.array([], dtype=object)
    is_closed = np.zeros(0, dtype=bool)
    if gates is not None and len(gates):
        g = gates.to_crs(crs).reset_index(drop=True)
        g_pts = shapely.force_2d(np.asarray(g.geometry.values, dtype=object))
        g_ids = (
            g["gate_id"].astype(str).to_numpy()
            if "gate_id" in g.columns
            else np.array([f"g{i}" for i in range(len(g))], dtype=object)
        )
        is_closed = np.zeros(len(g), dtype=bool)
        if "access" in g.columns:
            access = g["access"].astype("object").fillna("").astype(str).str.strip().str.lower()
            is_closed = access.isin(rules.closed_access).to_numpy()
    g_comp = np.full(len(g_pts), -1, dtype=np.int64)
    if len(g_pts) and len(polys):
        gi, ci = shapely.STRtree(shapely.boundary(polys)).query_nearest(
            g_pts, max_distance=rules.gate_snap_m, all_matches=False
        )
        g_comp[gi] = ci
    has_gate = np.zeros(len(polys), dtype=bool)
    has_gate[g_comp[g_comp >= 0]] = True
    findings = [
        {
            "kind": "compound_without_gate",
            "layer": "compounds",
            "id": str(ids[i]),
            "value_m": 0.0,
            "note": "no gate in the data: walked as if open (add its gates to wall it)",
            "geometry": shapely.point_on_surface(polys[i]),
        }
        for i in np.flatnonzero(~has_gate)
    ]
    if not has_gate.any():
        return None, findings
    new_index = np.cumsum(has_gate) - 1
    keep_gate = (g_comp >= 0) & ~is_closed
    walls = Walls(
        polys[has_gate],
        ids[has_gate],
        g_pts[keep_gate],
        new_index[g_comp[keep_gate]].astype(np.int64),
        np.asarray(g_ids[keep_gate], dtype=object),
    )
    return walls, findings


def cut_at_walls(
    lines: NDArray[np.object_], grade: NDArray[np.int64], walls: Walls, rules: NetworkRules
) -> tuple[NDArray[np.object_], NDArray, NDArray, NDArray, NDArray[np.object_]]:
    """Cut road lines where they cross a compound wall, except at a gate; link gates.

    Returns
    -------
    lines, grade, zone, link, closed
        Pieces, their grade, the compound each piece runs in (-1 outside), the compound
        whose gate a link path serves (-1 for roads), and the wall crossings left closed
        (points: pieces ending there do not meet across the wall).
    """
    rings = shapely.boundary(walls.polygons)
    li, wi = shapely.STRtree(rings).query(lines, predicate="crosses")
    closed = np.array([], dtype=object)
    if len(li):
        inter = shapely.intersection(lines[li], rings[wi])
        pts, which = shapely.get_parts(inter, return_index=True)
        is_pt = shapely.get_type_id(pts) == 0
        pts, which = pts[is_pt], which[is_pt]
        line_of = li[which]
        off = shapely.line_locate_point(lines[line_of], pts)
        lines, source = split_lines_at(lines, line_of, off)
        grade = grade[source]
        crossing = pts
        if len(walls.gates):
            near, _ = shapely.STRtree(walls.gates).query(
                crossing, predicate="dwithin", distance=rules.gate_snap_m
            )
            is_open = np.zeros(len(crossing), dtype=bool)
            is_open[near] = True
            crossing = crossing[~is_open]
        closed = crossing
    lines, grade, link = _link_gates(lines, grade, walls, rules)
    mid = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    zone = walls.zone_of(mid)
    return lines, grade, zone, link, closed


def _link_gates(
    lines: NDArray[np.object_], grade: NDArray[np.int64], walls: Walls, rules: NetworkRules
) -> tuple[NDArray[np.object_], NDArray[np.int64], NDArray[np.int64]]:
    """A straight path from each gate to the nearest ground-level road inside and outside
    its compound (within ``gate_link_m``), splitting the road where it is joined."""
    gates = walls.gates[walls.gate_compound >= 0]
    if len(gates) == 0:
        return lines, grade, np.full(len(lines), -1, dtype=np.int64)
    comp = walls.gate_compound[walls.gate_compound >= 0]
    mid = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    zone = walls.zone_of(mid)
    tree = shapely.STRtree(lines)
    g, e = tree.query(gates, predicate="dwithin", distance=rules.gate_link_m)
    ok = grade[e] == 0
    g, e = g[ok], e[ok]
    side = np.where(zone[e] == comp[g], 1, np.where(zone[e] == -1, 0, -1))
    g, e, side = g[side >= 0], e[side >= 0], side[side >= 0]
    d = shapely.distance(gates[g], lines[e])
    order = np.lexsort((e, d, side, g))
    g, e, side = g[order], e[order], side[order]
    if len(g) == 0:
        return lines, grade, np.full(len(lines), -1, dtype=np.int64)
    first = np.r_[True, (g[1:] != g[:-1]) | (side[1:] != side[:-1])]
    g, e = g[first], e[first]
    off = shapely.line_locate_point(lines[e], gates[g])
    length = shapely.length(lines[e])
    off = np.where(off < 1e-6, 0.0, np.where(off > length - 1e-6, length, off))
    at = shapely.get_coordinates(shapely.line_interpolate_point(lines[e], off))
    gxy = shapely.get_coordinates(gates[g])
    links = shapely.linestrings(
        np.stack([gxy, at], axis=1).reshape(-1, 2), indices=np.repeat(np.arange(len(g)), 2)
    )
    real = shapely.length(links) > 0
    links, link_comp = links[real], comp[g][real]
    pieces, source = split_lines_at(lines, e, off)
    return (
        np.concatenate([pieces, links]),
        np.r_[grade[source], np.zeros(len(links), np.int64)],
        np.r_[np.full(len(pieces), -1, dtype=np.int64), link_comp],
    )


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


def snap_points(
    net: RoadNetwork,
    points: NDArray[np.object_],
    max_snap_m: float,
    zone: NDArray[np.int64] | None = None,
) -> Snaps:
    """Snap points (metric CRS) to the nearest point on the nearest edge.

    Parameters
    ----------
    net
        The walking network.
    points
        Shapely points in ``net.crs``.
    max_snap_m
        Points farther than this from every edge are not matched (``edge == -1``).
    zone
        Compound of each point (-1 outside; see :meth:`Walls.zone_of`): a point inside a
        walled compound ``c`` snaps only to the paths inside it or to its gates' links,
        a point outside only to edges outside. ``-2 - c`` : compound ``c``'s own paths
        only (a proposed gate's inside). None: any edge.
    """
    points = np.asarray(points, dtype=object)
    n = len(points)
    edge = np.full(n, -1, dtype=np.int64)
    offset = np.zeros(n)
    snap = np.full(n, np.nan)
    if n == 0:
        return Snaps(edge, offset, snap)
    if zone is None or net.edge_zone is None:
        _snap_group(net, points, np.arange(n), None, net.tree, max_snap_m, edge, snap)
    else:
        zone = np.asarray(zone, dtype=np.int64)
        outside = np.flatnonzero(zone == -1)
        sub = np.flatnonzero(net.edge_zone == -1)
        if len(outside) and len(sub):
            tree = shapely.STRtree(net.edge_geom[sub])
            _snap_group(net, points, outside, sub, tree, max_snap_m, edge, snap)
        _snap_inside(net, points, zone, max_snap_m, edge, snap)
    ok = edge >= 0
    offset[ok] = shapely.line_locate_point(net.edge_geom[edge[ok]], points[ok])
    return Snaps(edge, offset, snap)


def _snap_group(net, points, members, sub, tree, max_snap_m, edge, snap) -> None:
    """Nearest edge (of ``sub``, or all) for ``members``, within ``max_snap_m``."""
    pts = points[members]
    (ip, ie), dist = tree.query_nearest(
        pts, max_distance=max_snap_m, all_matches=False, return_distance=True
    )
    edge[members[ip]] = ie if sub is None else sub[ie]
    snap[members[ip]] = dist
    far = np.flatnonzero(edge[members] < 0)
    if len(far):
        (far_idx, _), d = tree.query_nearest(pts[far], all_matches=False, return_distance=True)
        snap[members[far[far_idx]]] = d


def _snap_inside(net, points, zone, max_snap_m, edge, snap) -> None:
    """Points inside walled compounds: every (point, allowed edge) pair of its compound
    at once (compounds hold few paths), the nearest kept."""
    inside = np.flatnonzero(zone != -1)
    if len(inside) == 0:
        return
    comp = np.where(zone[inside] >= 0, zone[inside], -2 - zone[inside])
    links_too = zone[inside] >= 0
    e_all = np.arange(len(net.edge_m))
    owner = np.r_[net.edge_zone, net.edge_gate]
    is_link = np.r_[np.zeros(len(e_all), bool), np.ones(len(e_all), bool)]
    keep = owner >= 0
    owner, is_link, e_of = owner[keep], is_link[keep], np.r_[e_all, e_all][keep]
    order = np.argsort(owner, kind="stable")
    owner, is_link, e_of = owner[order], is_link[order], e_of[order]
    lo = np.searchsorted(owner, comp, "left")
    hi = np.searchsorted(owner, comp, "right")
    count = hi - lo
    p = np.repeat(np.arange(len(inside)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)
    ok = links_too[p] | ~is_link[k]
    p, e = p[ok], e_of[k[ok]]
    if len(p) == 0:
        return
    d = shapely.distance(points[inside[p]], net.edge_geom[e])
    order = np.lexsort((e, d, p))
    first = order[np.r_[True, p[order][1:] != p[order][:-1]]]
    best_p, best_e, best_d = inside[p[first]], e[first], d[first]
    near = best_d <= max_snap_m
    edge[best_p[near]] = best_e[near]
    snap[best_p] = best_d


@dataclass
class WalkGraph:
    """The network with points attached: one sparse graph for every search.

    Nodes ``0 .. net.n_nodes-1`` are road nodes, then one virtual node per matched
    snap, then one node per matched point. ``point_node[i]`` is the node of input point
    ``i`` (-1 when it was not matched). Virtual node ``net.n_nodes + j`` lies on road
    edge ``virt_edge[j]`` at ``virt_t[j]`` metres from its start (sorted by edge, then
    distance).
    """

    net: RoadNetwork
    matrix: csr_array
    point_node: NDArray[np.int64]
    snaps: Snaps
    point_xy: NDArray[np.float64]
    virt_edge: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    virt_t: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @property
    def n_nodes(self) -> int:
        return self.matrix.shape[0]

    def edge_list(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """Undirected edges (u < v) with their lengths in metres."""
        coo = self.matrix.tocoo()
        return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(float)


def attach_points(
    net: RoadNetwork,
    points: NDArray[np.object_],
    max_snap_m: float,
    zone: NDArray[np.int64] | None = None,
) -> WalkGraph:
    """Snap points once and split their edges: the graph every search runs on.

    Parameters
    ----------
    net
        The walking network.
    points
        Shapely points in ``net.crs`` (buildings, facilities, entry points, candidates).
    max_snap_m
        Maximum snap distance, metres; farther points get ``point_node == -1``.
    zone
        Compound of each point (see :func:`snap_points`); default: where it stands.
    """
    points = np.asarray(points, dtype=object)
    if zone is None and net.walls is not None:
        zone = net.walls.zone_of(points)
    snaps = snap_points(net, points, max_snap_m, zone)
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
    return WalkGraph(
        net=net,
        matrix=matrix,
        point_node=point_node,
        snaps=snaps,
        point_xy=xy,
        virt_edge=e_s,
        virt_t=t_s,
    )


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
