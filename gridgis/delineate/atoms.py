"""Atoms and adjacency: street-block faces, building cells and who touches whom.

The area polygon is cut by the road centrelines inside it, by the boundaries of any
alignment layer and by the outlines of institutions that qualify as unit grids: the noded
linework is polygonised into *faces* (street blocks) that tile the area exactly. A face
holding too many households is subdivided into *building cells* (:func:`cell_edges`).
All faces come out of one noded arrangement, so two faces are neighbours exactly when they
share a boundary segment (:func:`adjacency`).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from gridgis.delineate.graph import UnitGraph
from gridgis.spatial import points_in_polygons
from gridgis.standards import DEFAULT, Settings

SNAP_M = 0.01
"""Distance (m) within which a shared face boundary is taken to lie on an avoided line."""
GRID_M = 1e-3
"""Linework is noded on a 1 mm grid, so lines within a millimetre (a road drawn on a
community boundary) coincide instead of leaving sliver faces."""
PRECISION_M = 1e-4
"""Coordinates are compared at this precision (m) when matching shared face boundaries."""


def locate(polygons: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Index of the polygon holding each point (-1 when none), by the one boundary rule
    (:func:`gridgis.spatial.points_in_polygons`): a point on a shared edge goes to the
    polygon of smallest index."""
    return points_in_polygons(
        np.asarray(points, dtype=object),
        np.asarray(polygons, dtype=object),
        np.arange(len(polygons), dtype=np.int64),
    )


def lines_only(geoms: np.ndarray) -> np.ndarray:
    """The line parts of ``geoms`` (points and empties dropped)."""
    parts = shapely.get_parts(geoms[~shapely.is_empty(geoms)])
    if len(parts) == 0:
        return parts
    return parts[shapely.get_type_id(parts) == 1]


def polygonize(area, lines: list[np.ndarray]) -> np.ndarray:
    """Faces of ``area`` cut by ``lines`` (already clipped to it), tiling it exactly."""
    pieces = [np.asarray(shapely.get_parts(shapely.boundary(area)))]
    pieces += [np.asarray(x) for x in lines if len(x)]
    noded = shapely.union_all(np.concatenate(pieces), grid_size=GRID_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(faces) == 0:
        return np.array([area])
    inside = shapely.intersects(area, shapely.point_on_surface(faces))
    shapely.prepare(area)
    return faces[inside]


def unique_rows(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(xy, axis=0, return_index=True)`` of an (n, 2) float array, without the
    structured-dtype sort: rows sorted by x then y, the index of each row's first
    occurrence (a stable sort, as numpy's)."""
    if len(xy) == 0:
        return xy, np.empty(0, dtype=np.int64)
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    s = xy[order]
    first = np.ones(len(s), dtype=bool)
    first[1:] = (s[1:, 0] != s[:-1, 0]) | (s[1:, 1] != s[:-1, 1])
    return s[first], order[first]


def cell_edges(
    face,
    footprints: np.ndarray,
    points: np.ndarray,
    step_m: float,
    inner: np.ndarray | None = None,
) -> np.ndarray:
    """Borders of the building cells of ``face``: each cell is the ground nearer to one
    building's outline than to any other's (Voronoi of the outlines densified every
    ``step_m`` metres, ``grid.cell_step_m``, merged per building), clipped to the face.
    Cells follow the gaps between buildings, so a cell holds its whole building (to half a
    step). ``inner``: the footprints shrunk by ``WALL_M``, one per footprint, when already
    computed (``shapely.buffer(footprints, -WALL_M)``)."""
    if len(points) < 2:
        return np.empty(0, dtype=object)
    rings = shapely.segmentize(shapely.get_exterior_ring(shapely.get_parts(footprints)), step_m)
    coords, owner = shapely.get_coordinates(rings, return_index=True)
    _, pi = shapely.get_parts(footprints, return_index=True)
    owner = pi[owner]
    # footprints missing or degenerate: fall back to the representative point
    coords = np.vstack([coords, shapely.get_coordinates(points)])
    owner = np.concatenate([owner, np.arange(len(points))])
    coords, first = unique_rows(np.round(coords, 3))
    owner = owner[first]
    if len(np.unique(owner)) < 2:
        return np.empty(0, dtype=object)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(coords), extend_to=face, ordered=True)
    )
    if len(cells) != len(coords):  # GEOS dropped near-duplicates: plain point cells
        edges = shapely.voronoi_polygons(
            shapely.multipoints(np.unique(np.round(shapely.get_coordinates(points), 3), axis=0)),
            extend_to=face,
            only_edges=True,
        )
        return lines_only(np.array([shapely.intersection(edges, face)]))
    # borders between cells of different buildings (cells of one building share theirs)
    seg, ca, cb = _shared_segments(cells)
    seg = seg[owner[ca] != owner[cb]]
    if len(seg) == 0:
        return np.empty(0, dtype=object)
    lines = shapely.line_merge(shapely.multilinestrings(shapely.linestrings(seg.reshape(-1, 2, 2))))
    edges = lines_only(np.array([shapely.intersection(lines, face)], dtype=object))
    # outlines are sampled every step_m, so a border may cut a corner of a building or run
    # beside a shared wall: the stretches inside buildings are dropped, and buildings that
    # touch another are outlined, so touching buildings part exactly along their wall
    foot = np.asarray(footprints, dtype=object)
    i, j = STRtree(foot).query(foot, predicate="intersects")
    touching = np.unique(i[i != j])
    walls = lines_only(
        shapely.intersection(shapely.get_exterior_ring(shapely.get_parts(foot[touching])), face)
    )
    if inner is None:
        inner = inner_footprints(foot)
    else:
        inner = np.asarray(inner, dtype=object)
        inner = inner[~shapely.is_empty(inner)]
    edges = np.concatenate([spare_buildings(edges, inner), walls])
    return edges


@dataclass
class OnLine:
    """Shared face-boundary segments that lie on avoided lines (metric CRS)."""

    xy: np.ndarray  # (k, 4) x0, y0, x1, y1 of each segment (m)
    edge: np.ndarray  # (k,) the face pair (edge index) the segment separates
    line: np.ndarray  # (k,) the avoided line it lies on

    @staticmethod
    def empty() -> OnLine:
        return OnLine(np.empty((0, 4)), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))


@dataclass
class FaceAdjacency:
    """Neighbouring faces of one noded arrangement.

    Attributes
    ----------
    edges
        (m, 2) face index pairs, ``a < b``.
    length
        Shared boundary length (m).
    avoid
        True where less than 1 m of the shared boundary is off avoided lines.
    avoid_length
        Metres of each edge's shared boundary on avoided lines.
    on_line
        The shared boundary segments lying on avoided lines.
    """

    edges: np.ndarray
    length: np.ndarray
    avoid: np.ndarray
    avoid_length: np.ndarray
    on_line: OnLine

    @staticmethod
    def empty() -> FaceAdjacency:
        return FaceAdjacency(
            np.empty((0, 2), dtype=np.int64),
            np.empty(0),
            np.empty(0, dtype=bool),
            np.empty(0),
            OnLine.empty(),
        )


def _lexsort_rows(key: np.ndarray) -> np.ndarray:
    """``np.lexsort(key.T[::-1])`` of (n, 4) integer rows (x0, y0, x1, y1): the same
    stable order, sorting two packed keys ((x, y) of each end as one integer) instead of
    four when the coordinate ranges allow it."""
    if len(key) == 0:
        return np.lexsort(key.T[::-1])
    lo = key.min(axis=0)
    span = key.max(axis=0) - lo + 1
    if max(int(span[0]) * int(span[1]), int(span[2]) * int(span[3])) >= 2**62:
        return np.lexsort(key.T[::-1])
    k = key - lo
    first = k[:, 0] * span[1] + k[:, 1]
    second = k[:, 2] * span[3] + k[:, 3]
    return np.lexsort((second, first))


def _shared_segments(faces: np.ndarray):
    """Boundary segments that two faces share: (segments (k, 4) m, face a, face b)."""
    rings, ring_face = shapely.get_rings(faces, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    same = ring_of[:-1] == ring_of[1:]
    p = np.round(coords[:-1][same] / PRECISION_M).astype(np.int64)
    q = np.round(coords[1:][same] / PRECISION_M).astype(np.int64)
    face = ring_face[ring_of[:-1][same]]
    swap = (p[:, 0] > q[:, 0]) | ((p[:, 0] == q[:, 0]) & (p[:, 1] > q[:, 1]))
    a = np.where(swap[:, None], q, p)
    b = np.where(swap[:, None], p, q)
    key = np.ascontiguousarray(np.hstack([a, b]))
    order = _lexsort_rows(key)
    key, face = key[order], face[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = np.any(key[1:] != key[:-1], axis=1)
    group = np.cumsum(first) - 1
    pair_pos = np.flatnonzero(~first)  # second member of a shared segment
    pair_pos = pair_pos[group[pair_pos] == group[pair_pos - 1]]
    fa, fb = face[pair_pos - 1], face[pair_pos]
    keep = fa != fb
    pair_pos, fa, fb = pair_pos[keep], fa[keep], fb[keep]
    return key[pair_pos].astype(float) * PRECISION_M, fa, fb


def adjacency(faces: np.ndarray, avoid_lines: np.ndarray) -> FaceAdjacency:
    """Neighbouring faces of one noded arrangement, from their identical boundary
    segments; an edge whose shared boundary lies (within ``SNAP_M``) on an avoided line
    for all but less than 1 m is an *avoid* edge."""
    if len(faces) < 2:
        return FaceAdjacency.empty()
    seg, fa, fb = _shared_segments(faces)
    if len(seg) == 0:
        return FaceAdjacency.empty()
    seg_len = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    lo_f, hi_f = np.minimum(fa, fb), np.maximum(fa, fb)
    on_line = np.full(len(seg), -1, dtype=np.int64)
    if len(avoid_lines):
        mids = shapely.points((seg[:, 0] + seg[:, 2]) / 2, (seg[:, 1] + seg[:, 3]) / 2)
        si, li = STRtree(avoid_lines).query(mids, predicate="dwithin", distance=SNAP_M)
        on_line[si] = li
    # unique (lo, hi) pairs in lexicographic order: one integer key each (hi < len(faces))
    keys, inv = np.unique(lo_f.astype(np.int64) * len(faces) + hi_f, return_inverse=True)
    pairs = np.stack([keys // len(faces), keys % len(faces)], axis=1)
    inv = inv.ravel()
    length = np.bincount(inv, weights=seg_len, minlength=len(pairs))
    hit = on_line >= 0
    on = np.bincount(inv, weights=np.where(hit, seg_len, 0.0), minlength=len(pairs))
    return FaceAdjacency(
        pairs.astype(np.int64),
        length,
        (length - on) < 1.0,
        on,
        OnLine(seg[hit], inv[hit].astype(np.int64), on_line[hit]),
    )


def avoid_lines(
    roads: gpd.GeoDataFrame | None, alignment: dict[str, gpd.GeoDataFrame], settings: Settings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(all cut lines, avoided lines, labels of avoided lines), metric.

    Labels are ``"road:<class> <name>"`` for roads of ``grid.avoid_road_classes`` and
    ``"alignment:<layer>"`` for alignment boundaries."""
    cut, avoid, labels = [], [], []
    if roads is not None and len(roads):
        geoms = roads.geometry.to_numpy()
        cls = roads["road_class"].astype("string").fillna("").to_numpy()
        names = (
            roads["name"].astype("string").fillna("").to_numpy()
            if "name" in roads
            else np.full(len(roads), "")
        )
        cut.append(geoms)
        av = np.isin(cls, settings.grid.avoid_road_classes)
        avoid.append(geoms[av])
        labels.append(
            np.array(
                [f"road:{c} {n}".strip() for c, n in zip(cls[av], names[av], strict=True)],
                dtype=object,
            )
        )
    for lname, frame in (alignment or {}).items():
        if frame is None or len(frame) == 0:
            continue
        b = shapely.boundary(frame.geometry.to_numpy())
        b = b[~shapely.is_empty(b) & ~shapely.is_missing(b)]
        cut.append(b)
        avoid.append(b)
        labels.append(np.full(len(b), f"alignment:{lname}", dtype=object))

    def cat(xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs) if xs else np.empty(0, dtype=object)

    return cat(cut), cat(avoid), cat(labels)


def clip_lines(lines: np.ndarray, tree: STRtree | None, poly) -> np.ndarray:
    """The line parts of ``lines`` inside ``poly``."""
    if tree is None:
        return np.empty(0, dtype=object)
    idx = tree.query(poly, predicate="intersects")
    if len(idx) == 0:
        return np.empty(0, dtype=object)
    return lines_only(shapely.intersection(lines[idx], poly))


def building_arrays(buildings: gpd.GeoDataFrame):
    """(footprints, representative points, households, ids) of a building layer."""
    if len(buildings) == 0:
        e = np.empty(0, dtype=object)
        return e, e, np.empty(0, dtype=np.int64), e
    foot = buildings.geometry.to_numpy()
    hh = pd.to_numeric(buildings["households"], errors="coerce").fillna(0).astype(np.int64)
    ids = (
        buildings["building_id"].astype(str).to_numpy()
        if "building_id" in buildings
        else np.array([f"row {i + 1}" for i in range(len(buildings))], dtype=object)
    )
    return foot, shapely.point_on_surface(foot), hh.to_numpy(), ids


def unit_graph(
    polygon,
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    settings: Settings = DEFAULT,
    split_above: int = 0,
) -> UnitGraph:
    """Atoms of ``polygon`` (metric): faces cut by roads, every face holding more than
    ``split_above`` households (and 2+ buildings) split into building cells. Used by the
    benchmark to hand gridgis and a peer the very same units."""
    cut, avoid, _ = avoid_lines(roads, {}, settings)
    shapely.prepare(polygon)
    lines = clip_lines(cut, STRtree(cut) if len(cut) else None, polygon)
    alines = clip_lines(avoid, STRtree(avoid) if len(avoid) else None, polygon)
    foot, pts, hh, _ = building_arrays(buildings)
    inside = shapely.intersects(polygon, pts)
    foot, pts, hh = foot[inside], pts[inside], hh[inside]
    faces = polygonize(polygon, [lines])
    bf = locate(faces, pts)
    fh = np.bincount(bf[bf >= 0], weights=hh[bf >= 0], minlength=len(faces))
    fn = np.bincount(bf[bf >= 0], minlength=len(faces))
    step = float(settings.grid.cell_step_m)
    extra = [
        cell_edges(faces[f], foot[bf == f], pts[bf == f], step)
        for f in np.flatnonzero((fh > split_above) & (fn >= 2))
    ]
    faces = polygonize(polygon, [lines, *extra]) if extra else faces
    bf = locate(faces, pts)
    fh = np.bincount(bf[bf >= 0], weights=hh[bf >= 0], minlength=len(faces)).astype(np.int64)
    adj = adjacency(faces, alines)
    return UnitGraph(faces, fh, adj.edges, adj.length, adj.avoid)


WALL_M = 0.5
"""A line within this distance (m) inside a building's outline runs along its wall, not
through it (digitising noise between a road and a wall drawn on it)."""


def inner_footprints(footprints: np.ndarray) -> np.ndarray:
    """Building interiors: outlines shrunk by ``WALL_M`` (empty ones dropped)."""
    inner = shapely.buffer(np.asarray(footprints, dtype=object), -WALL_M)
    return inner[~shapely.is_empty(inner)]


def spare_buildings(lines: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``lines`` less their stretches through building interiors (``inner``,
    :func:`inner_footprints`), so no cut line (a road drawn under a building, a path
    through an arcade) divides a building: the grids on either side of such a road meet
    around the building, which stays whole."""
    if len(lines) == 0 or len(inner) == 0:
        return lines
    li, bi = STRtree(inner).query(lines, predicate="intersects")
    if len(li) == 0:
        return lines
    out = np.asarray(lines, dtype=object).copy()
    order = np.argsort(li, kind="stable")
    li, bi = li[order], bi[order]
    starts = np.flatnonzero(np.r_[True, li[1:] != li[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], len(li)], strict=True):
        out[li[s]] = shapely.difference(out[li[s]], shapely.union_all(inner[bi[s:e]]))
    return lines_only(out)


def whole_buildings(polygon, footprints: np.ndarray, tree: STRtree | None):
    """``polygon`` (an institution's outline) moved to the walls of the buildings it
    cuts: a building at least half inside joins it, one mostly outside leaves it, so the
    unit grid's border never cuts a building."""
    if tree is None:
        return polygon
    idx = tree.query(shapely.boundary(polygon), predicate="intersects")
    if len(idx) == 0:
        return polygon
    foot = footprints[idx]
    share = shapely.area(shapely.intersection(foot, polygon)) / np.maximum(shapely.area(foot), 1e-9)
    add, cut = foot[share >= 0.5], foot[share < 0.5]
    out = shapely.union_all([polygon, *add]) if len(add) else polygon
    if len(cut):
        out = shapely.difference(out, shapely.union_all(cut))
    parts = shapely.get_parts(out)
    parts = parts[shapely.get_type_id(parts) == 3]
    return parts[np.argmax(shapely.area(parts))] if len(parts) else polygon
