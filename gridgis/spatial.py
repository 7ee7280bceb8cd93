"""Spatial primitives every analysis shares: one point-in-polygon rule, overlaps.

The boundary rule (one, used by assign, delineate, lookup, coverage and audit)
------------------------------------------------------------------------------
A point in a polygon's interior belongs to that polygon. A point lying only on boundaries
(a shared edge or a corner) belongs to exactly one of the polygons whose boundary it is
on: the one of smallest ``rank`` (callers rank by code, so the answer is deterministic and
the same everywhere). A point outside every polygon belongs to none (index ``-1``).
Polygons are compared by largest overlap area in a metric CRS; ties go to the smallest
``rank``.
"""

from __future__ import annotations

import numpy as np
import shapely


def rank_of(keys: np.ndarray) -> np.ndarray:
    """Position of each key in sorted order (ties broken by row), for deterministic picks."""
    order = np.lexsort((np.arange(len(keys)), np.asarray(keys, dtype=str)))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys))
    return rank


def points_in_polygons(
    points: np.ndarray, polygons: np.ndarray, rank: np.ndarray, tree: shapely.STRtree | None = None
) -> np.ndarray:
    """Index of the polygon containing each point, -1 for none.

    A point inside a polygon's interior takes that polygon; a point only on boundaries
    (a shared edge or corner) takes the boundary polygon of smallest ``rank``.

    Parameters
    ----------
    points, polygons
        Shapely geometry arrays in one CRS (any: containment does not need metres).
    rank
        Tie-break order of the polygons (e.g. :func:`rank_of` their codes).
    """
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or len(polygons) == 0:
        return out
    tree = tree if tree is not None else shapely.STRtree(polygons)
    ok = ~(shapely.is_missing(points) | shapely.is_empty(points))
    idx = np.flatnonzero(ok)
    p, g = tree.query(points[idx], predicate="intersects")
    if len(p) == 0:
        return out
    p = idx[p]
    boundary_only = ~shapely.contains_properly(polygons[g], points[p])
    order = np.lexsort((rank[g], boundary_only, p))
    p, g = p[order], g[order]
    first = np.r_[True, p[1:] != p[:-1]]
    out[p[first]] = g[first]
    return out


def overlap_pairs(
    polys_m: np.ndarray, targets_m: np.ndarray, tree: shapely.STRtree | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (polygon, target) pair that overlaps, with the overlap area.

    Polygons lying wholly within a target skip the intersection (area = their own area).

    Parameters
    ----------
    polys_m, targets_m
        Shapely polygon arrays in a metric CRS.

    Returns
    -------
    poly_index, target_index, area_m2
        Pairs with a positive overlap area (m²), ordered by polygon.
    """
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, float))
    if len(polys_m) == 0 or len(targets_m) == 0:
        return empty
    tree = tree if tree is not None else shapely.STRtree(targets_m)
    ok = ~(shapely.is_missing(polys_m) | shapely.is_empty(polys_m))
    idx = np.flatnonzero(ok)
    wp, wg = tree.query(polys_m[idx], predicate="within")
    wp = idx[wp]
    inside = np.zeros(len(polys_m), dtype=bool)
    inside[wp] = True
    rest = np.flatnonzero(ok & ~inside)
    ip, ig = tree.query(polys_m[rest], predicate="intersects")
    ip = rest[ip]
    area_i = shapely.area(shapely.intersection(polys_m[ip], targets_m[ig]))
    p = np.concatenate([wp, ip])
    g = np.concatenate([wg, ig])
    a = np.concatenate([shapely.area(polys_m[wp]), area_i])
    keep = a > 0
    p, g, a = p[keep], g[keep], a[keep]
    order = np.lexsort((g, p))
    return p[order], g[order], a[order]


def largest_overlap(
    polys_m: np.ndarray,
    targets_m: np.ndarray,
    rank: np.ndarray,
    tree: shapely.STRtree | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each polygon, the target holding the largest share of its area.

    Returns
    -------
    target_index, share
        ``-1`` and 0.0 where no target overlaps; ``share`` = overlap area / polygon area.
        Equal overlaps go to the target of smallest ``rank``.
    """
    n = len(polys_m)
    best = np.full(n, -1, dtype=np.int64)
    share = np.zeros(n, dtype=float)
    p, g, a = overlap_pairs(polys_m, targets_m, tree)
    if len(p) == 0:
        return best, share
    order = np.lexsort((rank[g], -a, p))
    p, g, a = p[order], g[order], a[order]
    first = np.r_[True, p[1:] != p[:-1]]
    best[p[first]] = g[first]
    share[p[first]] = a[first] / shapely.area(polys_m[p[first]])
    return best, np.minimum(share, 1.0)


def is_polygonal(geoms: np.ndarray) -> np.ndarray:
    """True for Polygon and MultiPolygon geometries."""
    kinds = shapely.get_type_id(geoms)
    return np.isin(kinds, (3, 6))
