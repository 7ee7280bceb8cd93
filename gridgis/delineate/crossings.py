"""Crossings: avoided lines (arterial roads, alignment boundaries) running through grids.

The one rule, used by delineation (the ``crossings`` column, ``crosses`` findings and the
``crosses_arterial`` flag) and by :func:`gridgis.audit.audit_grids` (``arterial_crossing``)
alike, so both report the same crossings on the same grids:

* the length of an avoided line inside a grid *more than* ``grid.audit_road_tolerance_m``
  from the grid's boundary (a line within that distance follows the boundary);
* less the stretches of avoided roads that run along a median strip at the grid's edge
  (:func:`median_length`): a divided arterial is two carriageways, the strip between them
  belongs to the grid on one side, so the nearer carriageway lies inside that grid without
  the grid straddling the road;
* a grid crosses when the total exceeds ``grid.min_crossing_m`` (shorter runs are corners
  clipped at a junction).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from gridgis.standards import GridRules

PROBE_STEP_M = 5.0
"""An avoided road inside a grid is judged in stretches of at most this length (m), each
either through the grid or along a median strip at its edge (:func:`median_length`)."""

PROBE_START_M = 0.5
"""Probes square to a road start this far (m) from it, so they never meet the road itself."""

#: Columns of :func:`line_crossings`.
CROSSING_COLUMNS = ["grid", "line", "length_m", "median_m"]


def _segments(pieces: np.ndarray):
    """Stretches (≤ ``PROBE_STEP_M``) of the line parts of ``pieces``: (p0, p1, owner)."""
    parts, owner = shapely.get_parts(pieces, return_index=True)
    lines = shapely.get_type_id(parts) == 1
    parts, owner = parts[lines], owner[lines]
    if len(parts) == 0:
        e = np.empty((0, 2))
        return e, e, np.empty(0, dtype=np.int64)
    xy, part = shapely.get_coordinates(shapely.segmentize(parts, PROBE_STEP_M), return_index=True)
    same = part[:-1] == part[1:]
    p0, p1, seg_owner = xy[:-1][same], xy[1:][same], owner[part[:-1][same]]
    real = np.hypot(*(p1 - p0).T) > 0
    return p0[real], p1[real], seg_owner[real]


def median_length(
    pieces: np.ndarray, grids: np.ndarray, avoided: np.ndarray, width_m: float
) -> np.ndarray:
    """Metres of each road piece that run along a median strip at the edge of its grid.

    A stretch of road (at most ``PROBE_STEP_M`` long) lies along a median strip when, on
    one side, a probe square to the road from its midpoint, ``width_m`` long, both leaves
    the grid and meets another avoided-class road: the grid ends across a strip bounded by
    the other carriageway. Where the grid reaches beyond ``width_m`` on both sides, or ends
    on one side without another avoided road there (land of the grid beyond the road), the
    stretch runs through the grid.

    Parameters
    ----------
    pieces
        Parts of avoided-class roads inside grids (lines, metric CRS, m), shape (k,).
    grids
        The grid polygon holding each piece (same CRS), shape (k,).
    avoided
        Every avoided-class road (lines, same CRS).
    width_m
        Widest median strip, m (``grid.median_width_m``).

    Returns
    -------
    numpy.ndarray
        Length (m) of each piece along a median strip, shape (k,), at most the piece's
        length; 0 when ``width_m`` is not above ``PROBE_START_M``.
    """
    out = np.zeros(len(pieces))
    if len(pieces) == 0 or len(avoided) == 0 or width_m <= PROBE_START_M:
        return out
    p0, p1, seg_owner = _segments(pieces)
    if len(p0) == 0:
        return out
    step = p1 - p0
    length = np.hypot(step[:, 0], step[:, 1])
    normal = np.column_stack([-step[:, 1], step[:, 0]]) / length[:, None]
    mid = (p0 + p1) / 2
    holder = np.asarray(grids, dtype=object)[seg_owner]
    shapely.prepare(holder)
    tree = shapely.STRtree(avoided)
    median = np.zeros(len(mid), dtype=bool)
    for side in (1.0, -1.0):
        probes = shapely.linestrings(
            np.stack([mid + side * PROBE_START_M * normal, mid + side * width_m * normal], axis=1)
        )
        ends = ~shapely.covers(holder, probes)
        meets = np.zeros(len(mid), dtype=bool)
        meets[tree.query(probes, predicate="intersects")[0]] = True
        median |= ends & meets
    out += np.bincount(seg_owner[median], weights=length[median], minlength=len(pieces))
    return np.minimum(out, shapely.length(pieces))


def line_crossings(
    grids: np.ndarray,
    lines: np.ndarray,
    rules: GridRules,
    median_roads: np.ndarray | None = None,
) -> pd.DataFrame:
    """Length of each avoided line through each grid (the one crossing rule).

    Parameters
    ----------
    grids
        Grid polygons, metric CRS (m), shape (n,).
    lines
        Avoided lines (roads of ``grid.avoid_road_classes``, alignment boundaries), same
        CRS, shape (k,).
    rules
        ``audit_road_tolerance_m`` (a line nearer the boundary follows it) and
        ``median_width_m``.
    median_roads
        The avoided roads whose stretches along a median strip are not counted (default:
        none, e.g. for alignment boundaries).

    Returns
    -------
    pandas.DataFrame
        One row per (grid, line) pair with a positive length: ``grid`` and ``line`` (row
        positions), ``length_m`` (through the grid, medians subtracted) and ``median_m``
        (along median strips, not counted).
    """
    grids = np.asarray(grids, dtype=object)
    lines = np.asarray(lines, dtype=object)
    empty = pd.DataFrame({c: pd.Series(dtype=float) for c in CROSSING_COLUMNS})
    if len(grids) == 0 or len(lines) == 0:
        return empty.astype({"grid": np.int64, "line": np.int64})
    core = shapely.buffer(grids, -float(rules.audit_road_tolerance_m))
    gi, li = shapely.STRtree(lines).query(core, predicate="intersects")
    pieces = shapely.intersection(lines[li], core[gi])
    roads = np.empty(0, dtype=object) if median_roads is None else median_roads
    median = median_length(pieces, grids[gi], roads, float(rules.median_width_m))
    out = pd.DataFrame(
        {
            "grid": gi.astype(np.int64),
            "line": li.astype(np.int64),
            "length_m": shapely.length(pieces) - median,
            "median_m": median,
        }
    )
    return out[(out["length_m"] > 0.01) | (out["median_m"] >= 1.0)].reset_index(drop=True)


def crossing_grids(per: pd.DataFrame, rules: GridRules) -> pd.Series:
    """Total crossing length (m) of every grid that crosses: those above
    ``grid.min_crossing_m``, indexed by grid position."""
    tot = per[per["length_m"] > 0.01].groupby("grid")["length_m"].sum()
    return tot[tot > rules.min_crossing_m]
