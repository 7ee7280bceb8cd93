"""Hand edits of grids (the browser's edit panel and ``POST /grids/edits``): move a
building or a street block to a neighbouring grid, merge two grids, split one along a
drawn line or a road; a preview before saving; saving as new versions; undo.

The operations are pure: they take the grids frame and return the edited frame. Only the
grids involved change; every other grid keeps its geometry bit for bit, so a save records
new versions for the involved grids only. Geometry is cut and joined in the storage CRS
(what is cut from one grid is added to the other, so the grids still tile exactly);
lengths and areas are measured in the metric CRS of the data.

- **move_building**: the piece moved is the building's cell in its grid: the part of the
  grid nearer to that building than to any other building of the grid (Voronoi cell of
  the buildings' representative points), together with the building's footprint in the
  grid. It is cut from the source grid and joined to the target grid.
- **move_block**: the street block under a clicked point (the community cut by every
  road), the part of it in the source grid, joined to the target grid.
- **merge**: two adjacent grids of one community become one (attributes of the first).
- **split**: a grid cut by a line (drawn, or a road's geometry) into two parts: the
  largest part keeps the row, the rest becomes a new grid without a code (a refresh numbers
  it).

Every edit is previewed by :func:`preview`: households and buildings of the grids
involved before and after, recounted from the buildings with the assignment rule
(largest footprint overlap, :func:`gridgis.spatial.largest_overlap`; buildings without
area by :func:`gridgis.spatial.points_in_polygons`), and three checks: band
(``grid.min_households``–``grid.max_households`` for residential grids), contiguity
(each grid involved is one polygon) and tiling (the grids involved cover what they
covered before, and the edit adds no more than :data:`MAX_OVERLAP_M2` of overlap between
grids of the community).

Saving (:func:`apply_edit`) refuses an edit that breaks contiguity or tiling (a band
outside the rule is saved and flagged by the refresh), then runs
:func:`gridgis.workflows.refresh.refresh` on the edited grids in the same single store
write as the grids themselves and an ``edit_log`` row: versions closed and opened,
figures recomputed, audit.

A save refreshes the whole workspace: hand changes made elsewhere and not yet refreshed
(e.g. in QGIS) are recorded with the edit, and the log keeps every grid whose geometry the
save changed, so an undo restores those too.

Undo (:func:`undo_last`): the ``edit_log`` layer keeps, per edit, the grids as they were
before it (geometry and attributes) and the versions it opened and closed. Undoing the
last edit not yet undone removes the versions it opened, reopens those it closed,
restores the grids' rows and refreshes (one write) — as if the edit had not been made;
the log row is kept with ``undone`` set. Refused (conflict) when a version the edit opened
has since been closed by another change.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS, metric_crs_for
from gridgis.errors import ConflictError, InputError, NotFoundError, RuleError
from gridgis.spatial import largest_overlap, points_in_polygons, rank_of
from gridgis.standards import Settings

log = logging.getLogger(__name__)

OPS = ("move_building", "move_block", "merge", "split")
"""Edit operations."""

MAX_OVERLAP_M2 = 1.0
"""Largest overlap (m²) tolerated between two grids, and largest change of the area the
grids involved cover, before tiling is reported broken (coordinates round at about 1e-9°,
i.e. 0.1 mm; a square metre is far above rounding and far below any real mistake)."""

MIN_PART_M2 = 1.0
"""Parts of a grid smaller than this (m²) are slivers of rounding, not a second part, in
the contiguity check."""

EMPTIED_SHARE = 1e-4
"""A move that leaves less than this share of the source grid's area empties it (what is
left is a sliver along the moved piece): refused, merge the grids instead."""

EDIT_LOG_COLUMNS = [
    "edit_id",
    "op",
    "parameters",
    "reason",
    "made_at",
    "opened",
    "closed",
    "made",
    "undone",
    "grid_code",
    "name",
    "kind",
    "community_code",
    "street_code",
]
"""Columns of layer ``edit_log`` (plus the geometry of a grid before the edit)."""


@dataclass
class EditResult:
    """An edited grids frame with its preview."""

    grids: gpd.GeoDataFrame
    involved_before: list[int]
    involved_after: list[int]
    preview: dict[str, Any] = field(default_factory=dict)


# -- helpers --------------------------------------------------------------------------------
def _codes(grids: gpd.GeoDataFrame) -> pd.Series:
    return grids["grid_code"].astype("string")


def _row_of(grids: gpd.GeoDataFrame, code: str) -> int:
    hit = np.flatnonzero((_codes(grids) == str(code)).fillna(False).to_numpy())
    if len(hit) == 0:
        raise NotFoundError(f"grids: no grid '{code}'")
    return int(hit[0])


def _metric(geoms: gpd.GeoSeries, crs) -> np.ndarray:
    """*geoms* in the metric CRS, made valid (a projection can fold a near-duplicate
    vertex into a self-touch that overlay operations refuse)."""
    return shapely.make_valid(geoms.to_crs(crs).to_numpy())


def _polygon(geom) -> Any:
    """*geom* made valid, polygonal parts only."""
    geom = shapely.make_valid(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _shared_m(grids: gpd.GeoDataFrame, a: int, b: int, crs) -> float:
    m = _metric(grids.geometry.iloc[[a, b]], crs)
    return float(shapely.length(shapely.intersection(m[0].boundary, m[1].boundary)))


def _need_neighbours(grids: gpd.GeoDataFrame, a: int, b: int, crs) -> None:
    ca, cb = (str(grids["grid_code"].iloc[i]) for i in (a, b))
    if a == b:
        raise InputError(f"grids: '{ca}' twice: choose two different grids")
    comm = grids["community_code"].astype("string") if "community_code" in grids else None
    if comm is not None and comm.iloc[a] != comm.iloc[b]:
        raise InputError(
            f"grids: '{ca}' and '{cb}' lie in different communities "
            f"({comm.iloc[a]}, {comm.iloc[b]}): grids never cross a community boundary"
        )
    if _shared_m(grids, a, b, crs) <= 0:
        raise InputError(f"grids: '{ca}' and '{cb}' share no boundary (not neighbours)")


def _transfer(grids: gpd.GeoDataFrame, src: int, dst: int, piece) -> gpd.GeoDataFrame:
    """Cut *piece* from grid row *src* and join it to row *dst* (storage CRS)."""
    geo = grids.geometry.to_numpy().copy()
    piece = _polygon(shapely.intersection(geo[src], piece))
    if piece.is_empty or piece.area == 0:
        raise InputError(f"grids: nothing of grid '{grids['grid_code'].iloc[src]}' to move")
    whole = geo[src]
    geo[src] = _polygon(shapely.difference(geo[src], piece))
    geo[dst] = _polygon(shapely.union(geo[dst], piece))
    if geo[src].is_empty or geo[src].area < EMPTIED_SHARE * whole.area:
        raise InputError(
            f"grids: moving that empties grid '{grids['grid_code'].iloc[src]}': merge it instead"
        )
    out = grids.copy()
    out.geometry = gpd.GeoSeries(geo, index=grids.index, crs=grids.crs)
    return out


def _storage(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if grids.crs is None:
        raise InputError("layer 'grids' has no CRS")
    return grids.to_crs(STORAGE_CRS).reset_index(drop=True)


def locate_buildings(grids: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> np.ndarray:
    """Row of the grid of each building (-1: none), by the assignment rule: the grid
    holding most of the footprint (metric CRS, ties to the smallest code); buildings
    without area by their point (:func:`gridgis.spatial.points_in_polygons`)."""
    crs = metric_crs_for(grids)
    rank = rank_of(_codes(grids).fillna("~").to_numpy())
    gm = grids.geometry.to_crs(crs).to_numpy()
    bm = buildings.geometry.to_crs(crs).to_numpy()
    out = np.full(len(bm), -1, dtype=np.int64)
    area = shapely.area(bm)
    poly = area > 0
    if poly.any():
        out[poly], _ = largest_overlap(bm[poly], gm, rank)
    rest = ~poly & ~(shapely.is_missing(bm) | shapely.is_empty(bm))
    if rest.any():
        pts = shapely.point_on_surface(bm[rest])
        out[rest] = points_in_polygons(pts, gm, rank)
    return out


def locate_near(
    grids: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, rows: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The buildings that touch grid rows *rows* and the row of the grid of each
    (:func:`locate_buildings` over the grids near them only: the same answer as over the
    whole city, ties included, at the cost of a neighbourhood).

    Returns
    -------
    building_rows, grid_rows
        Positions in *buildings* and, for each, its grid's row in *grids* (-1: none).
    """
    empty = np.empty(0, dtype=np.int64)
    area = shapely.union_all(grids.geometry.to_numpy()[rows])
    bidx = np.sort(buildings.sindex.query(area, predicate="intersects"))
    if len(bidx) == 0:
        return empty, empty
    near = shapely.box(*buildings.iloc[bidx].total_bounds)
    gidx = np.sort(grids.sindex.query(near, predicate="intersects"))
    loc = locate_buildings(grids.iloc[gidx], buildings.iloc[bidx])
    return bidx, np.where(loc >= 0, gidx[np.maximum(loc, 0)], -1)


def _building_row(buildings: gpd.GeoDataFrame, building_id: str) -> int:
    if "building_id" not in buildings:
        raise InputError("layer 'buildings' has no field 'building_id'")
    hit = np.flatnonzero(buildings["building_id"].astype(str).to_numpy() == str(building_id))
    if len(hit) == 0:
        raise NotFoundError(f"buildings: no building '{building_id}'")
    return int(hit[0])


# -- operations -----------------------------------------------------------------------------
def move_building(
    grids: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, building_id: str, to_grid: str
) -> tuple[gpd.GeoDataFrame, list[int]]:
    """Move a building's cell (see the module docstring) from its grid to the
    neighbouring grid *to_grid*.

    Returns
    -------
    grids, rows
        The edited grids (storage CRS) and the rows of the source and target grids.
    """
    grids = _storage(grids)
    b = buildings.to_crs(STORAGE_CRS).reset_index(drop=True)
    i = _building_row(b, building_id)
    near = np.sort(grids.sindex.query(b.geometry.iloc[i], predicate="intersects"))
    found = locate_buildings(grids.iloc[near], b.iloc[[i]])[0] if len(near) else -1
    src, dst = (int(near[found]) if found >= 0 else -1), _row_of(grids, to_grid)
    if src < 0:
        raise InputError(f"buildings: building '{building_id}' lies in no grid")
    if src == dst:
        raise InputError(f"buildings: building '{building_id}' is already in grid '{to_grid}'")
    crs = metric_crs_for(grids)
    _need_neighbours(grids, src, dst, crs)
    bidx, where = locate_near(grids, b, [src])
    mates = bidx[where == src]
    pts = gpd.GeoSeries(shapely.point_on_surface(b.geometry.to_numpy()[mates]), crs=STORAGE_CRS)
    pts_m = pts.to_crs(crs).to_numpy()
    src_m = grids.geometry.iloc[[src]].to_crs(crs).iloc[0]
    if len(mates) > 1:
        cells = shapely.voronoi_polygons(shapely.MultiPoint(list(pts_m)), extend_to=src_m)
        mine = pts_m[int(np.flatnonzero(mates == i)[0])]
        cell = next(c for c in cells.geoms if c.covers(mine))
    else:
        cell = src_m
    cell_deg = gpd.GeoSeries([cell], crs=crs).to_crs(STORAGE_CRS).iloc[0]
    piece = shapely.union(_polygon(cell_deg), _polygon(b.geometry.iloc[i]))
    return _transfer(grids, src, dst, piece), [src, dst]


def street_blocks(community, roads: gpd.GeoDataFrame | None) -> list:
    """Street blocks of a community polygon: the polygon cut by every road (storage CRS)."""
    if roads is None or len(roads) == 0:
        return [community]
    lines = shapely.intersection(roads.to_crs(STORAGE_CRS).geometry.to_numpy(), community)
    lines = [g for g in lines if not g.is_empty]
    noded = shapely.union_all([community.boundary, *lines])
    faces = shapely.polygonize(list(getattr(noded, "geoms", [noded])))
    return [f for f in faces.geoms if community.contains(f.representative_point())] or [community]


def move_block(
    grids: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    point: tuple[float, float],
    to_grid: str,
) -> tuple[gpd.GeoDataFrame, list[int]]:
    """Move the street block under *point* (lon, lat in degrees, EPSG:4326) — its part in
    the grid under the point — to the neighbouring grid *to_grid*."""
    grids = _storage(grids)
    dst = _row_of(grids, to_grid)
    pt = shapely.Point(float(point[0]), float(point[1]))
    rank = rank_of(_codes(grids).fillna("~").to_numpy())
    src = int(points_in_polygons(np.array([pt], dtype=object), grids.geometry.to_numpy(), rank)[0])
    if src < 0:
        raise InputError(f"point {point[0]:.6f}, {point[1]:.6f} lies in no grid")
    if src == dst:
        raise InputError(f"the point lies in grid '{to_grid}' already: click a block of another")
    _need_neighbours(grids, src, dst, metric_crs_for(grids))
    comm = grids["community_code"].astype("string")
    area = shapely.union_all(grids.geometry.to_numpy()[(comm == comm.iloc[src]).to_numpy()])
    blocks = street_blocks(_polygon(area), roads)
    block = next((f for f in blocks if f.covers(pt)), None)
    if block is None:
        raise InputError("the point lies on a road: click inside a block")
    return _transfer(grids, src, dst, block), [src, dst]


def merge_grids(grids: gpd.GeoDataFrame, a: str, b: str) -> tuple[gpd.GeoDataFrame, list[int]]:
    """Merge the adjacent grids *a* and *b* of one community into one row (attributes of
    *a*). Returns the grids and the rows of *a*, *b* before the merge."""
    grids = _storage(grids)
    ia, ib = _row_of(grids, a), _row_of(grids, b)
    _need_neighbours(grids, ia, ib, metric_crs_for(grids))
    geo = grids.geometry.to_numpy().copy()
    geo[ia] = _polygon(shapely.union(geo[ia], geo[ib]))
    out = grids.copy()
    out.geometry = gpd.GeoSeries(geo, index=grids.index, crs=grids.crs)
    return out.drop(index=ib).reset_index(drop=True), [ia, ib]


def split_grid(grids: gpd.GeoDataFrame, code: str, line) -> tuple[gpd.GeoDataFrame, list[int]]:
    """Split grid *code* along *line* (a LineString/MultiLineString in EPSG:4326, drawn or
    a road) into two grids: the largest part keeps the row, the other parts form a new row
    without ``grid_code`` (numbered by the refresh)."""
    from shapely.ops import split

    grids = _storage(grids)
    i = _row_of(grids, code)
    poly = grids.geometry.iloc[i]
    if line is None or line.is_empty:
        raise InputError("split: the line is empty")
    pieces: list = [poly]
    for seg in getattr(line, "geoms", [line]):
        pieces = [p for q in pieces for p in split(q, seg).geoms if p.area > 0]
    if len(pieces) < 2:
        raise InputError(
            f"split: the line does not cross grid '{code}' (draw it from outside the grid "
            f"to outside the grid)"
        )
    crs = metric_crs_for(grids)
    areas = shapely.area(gpd.GeoSeries(pieces, crs=STORAGE_CRS).to_crs(crs).to_numpy())
    order = np.argsort(-areas, kind="stable")
    keep = pieces[order[0]]
    rest = _polygon(shapely.union_all([pieces[k] for k in order[1:]]))
    out = grids.copy()
    geo = out.geometry.to_numpy().copy()
    geo[i] = keep
    out.geometry = gpd.GeoSeries(geo, index=out.index, crs=out.crs)
    new = out.iloc[[i]].copy()
    new["grid_code"] = pd.NA
    if "name" in new:
        new["name"] = pd.NA
    new.geometry = gpd.GeoSeries([rest], index=new.index, crs=out.crs)
    out = pd.concat([out, new], ignore_index=True)
    return gpd.GeoDataFrame(out, geometry=grids.geometry.name, crs=grids.crs), [i, len(out) - 1]


# -- preview --------------------------------------------------------------------------------
def _figures(grids, rows, buildings, crs) -> list[dict[str, Any]]:
    where, hh = np.empty(0, dtype=np.int64), None
    if buildings is not None:
        bidx, where = locate_near(grids, buildings, list(rows))
        hh = pd.to_numeric(buildings["households"], errors="coerce").fillna(0).to_numpy()[bidx]
    geo_m = grids.geometry.iloc[list(rows)].to_crs(crs).to_numpy()
    out = []
    for n, r in enumerate(rows):
        on = where == r
        code = grids["grid_code"].iloc[r]
        out.append(
            {
                "grid_code": None if pd.isna(code) else str(code),
                "kind": str(grids["kind"].iloc[r]) if "kind" in grids else "residential",
                "households": int(hh[on].sum()) if hh is not None else 0,
                "building_count": int(on.sum()),
                "area_m2": round(float(shapely.area(geo_m[n])), 1),
                "parts": _parts(geo_m[n]),
            }
        )
    return out


def _parts(geom_m) -> int:
    parts = getattr(geom_m, "geoms", [geom_m])
    return sum(1 for p in parts if p.area >= MIN_PART_M2)


def _overlap_m2(grids, crs, community: str | None) -> float:
    g = grids
    if community is not None and "community_code" in g:
        g = g[(g["community_code"].astype("string") == community).fillna(False).to_numpy()]
    m = _metric(g.geometry, crs)
    tree = shapely.STRtree(m)
    a, b = tree.query(m, predicate="intersects")
    keep = a < b
    if not keep.any():
        return 0.0
    return float(shapely.area(shapely.intersection(m[a[keep]], m[b[keep]])).sum())


def preview(
    before: gpd.GeoDataFrame,
    result: tuple[gpd.GeoDataFrame, list[int]],
    op: str,
    buildings: gpd.GeoDataFrame | None,
    settings: Settings,
) -> EditResult:
    """Households before/after and the band, contiguity and tiling checks of an edit.

    Parameters
    ----------
    before
        The grids before the edit.
    result
        What an operation returned: the edited grids and the rows involved (before).
    op
        The operation's name (:data:`OPS`).
    """
    before = _storage(before)
    after, rows = result
    crs = metric_crs_for(before)
    b = buildings.to_crs(STORAGE_CRS).reset_index(drop=True) if buildings is not None else None
    rows_after = list(rows)
    if op == "merge":  # the second row was dropped
        rows_after = [rows[0] - (1 if rows[1] < rows[0] else 0)]
    if op == "split":  # the second row is new
        rows = rows[:1]
    fig_before = _figures(before, rows, b, crs)
    fig_after = _figures(after, rows_after, b, crs)
    lo, hi = settings.grid.min_households, settings.grid.max_households
    band = all(f["kind"] != "residential" or lo <= f["households"] <= hi for f in fig_after)
    contiguous = all(f["parts"] == 1 for f in fig_after)
    union_b = shapely.union_all(_metric(before.geometry.iloc[rows], crs))
    union_a = shapely.union_all(_metric(after.geometry.iloc[rows_after], crs))
    moved = float(shapely.area(shapely.symmetric_difference(union_a, union_b)))
    comm = str(before["community_code"].iloc[rows[0]]) if "community_code" in before else None
    overlap = _overlap_m2(after, crs, comm) - _overlap_m2(before, crs, comm)
    tiling = moved <= MAX_OVERLAP_M2 and overlap <= MAX_OVERLAP_M2
    geoms = json.loads(after.iloc[rows_after][["grid_code", after.geometry.name]].to_json())
    info = {
        "op": op,
        "before": fig_before,
        "after": fig_after,
        "band": [lo, hi],
        "checks": {"band": band, "contiguity": contiguous, "tiling": tiling},
        "tiling_change_m2": round(moved, 2),
        "overlap_added_m2": round(max(overlap, 0.0), 2),
        "geometry": geoms,
    }
    return EditResult(after, list(rows), rows_after, info)


# -- edits as requests ----------------------------------------------------------------------
def _line(value) -> Any:
    try:
        coords = [(float(x), float(y)) for x, y in value]
    except (TypeError, ValueError):
        raise InputError("line: a list of [lon, lat] pairs (at least two)") from None
    if len(coords) < 2:
        raise InputError("line: at least two points")
    return shapely.LineString(coords)


def _road_line(roads, road_id: str) -> Any:
    if roads is None or "road_id" not in roads:
        raise NotFoundError("the workspace has no roads with 'road_id'")
    hit = roads[roads["road_id"].astype(str) == str(road_id)]
    if len(hit) == 0:
        raise NotFoundError(f"roads: no road '{road_id}'")
    return shapely.line_merge(shapely.union_all(hit.to_crs(STORAGE_CRS).geometry.to_numpy()))


def _need(edit: dict, *keys: str) -> list:
    missing = [k for k in keys if edit.get(k) in (None, "", [])]
    if missing:
        raise InputError(f"edit '{edit.get('op')}': missing {', '.join(missing)}")
    return [edit[k] for k in keys]


def run_edit(
    grids: gpd.GeoDataFrame,
    edit: dict[str, Any],
    settings: Settings,
    buildings: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
) -> EditResult:
    """Run one edit given as a request and preview it.

    Parameters
    ----------
    edit
        ``{"op": "move_building", "building_id", "to_grid"}``,
        ``{"op": "move_block", "point": [lon, lat], "to_grid"}``,
        ``{"op": "merge", "grids": [a, b]}`` or
        ``{"op": "split", "grid_code", "line": [[lon, lat], …]}`` (or ``"road_id"``
        instead of ``line``); coordinates in degrees, EPSG:4326.
    """
    op = edit.get("op")
    if op == "move_building":
        if buildings is None:
            raise NotFoundError("the workspace has no buildings layer")
        bid, to = _need(edit, "building_id", "to_grid")
        res = move_building(grids, buildings, bid, to)
    elif op == "move_block":
        pt, to = _need(edit, "point", "to_grid")
        if len(pt) != 2:
            raise InputError("point: [lon, lat]")
        res = move_block(grids, roads, (pt[0], pt[1]), to)
    elif op == "merge":
        (pair,) = _need(edit, "grids")
        if len(pair) != 2:
            raise InputError("merge: exactly two grid codes")
        res = merge_grids(grids, str(pair[0]), str(pair[1]))
    elif op == "split":
        (code,) = _need(edit, "grid_code")
        if edit.get("line"):
            line = _line(edit["line"])
        elif edit.get("road_id"):
            line = _road_line(roads, edit["road_id"])
        else:
            raise InputError("split: give a line ([[lon, lat], …]) or a road_id")
        res = split_grid(grids, str(code), line)
    else:
        raise InputError(f"op '{op}': use one of {', '.join(OPS)}")
    return preview(grids, res, op, buildings, settings)


def _read(store, name: str):
    return store.read(name) if store.has(name) else None


def preview_edit(store, settings: Settings, edit: dict[str, Any]) -> EditResult:
    """:func:`run_edit` on a workspace's grids, buildings and roads (nothing written)."""
    if not store.has("grids"):
        raise NotFoundError(f"{store.location}: no grids to edit")
    return run_edit(
        store.read("grids"), edit, settings, _read(store, "buildings"), _read(store, "roads")
    )


# -- saving and undo ------------------------------------------------------------------------
class _Overlay:
    """A store whose ``read`` answers some layers from memory and whose ``write_many``
    adds some frames: refresh then reads the edited grids and writes them, its derived
    layers and the edit log in one atomic write."""

    def __init__(self, store, frames: dict[str, Any], extra) -> None:
        self._store, self._frames, self._extra = store, frames, extra

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def read(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self._frames and not args and not kwargs:
            return self._frames[name].copy()
        return self._store.read(name, *args, **kwargs)

    def write_many(self, frames: dict[str, Any], **kwargs: Any) -> Any:
        return self._store.write_many({**frames, **self._extra(frames)}, **kwargs)


def _empty_log() -> gpd.GeoDataFrame:
    cols = {c: pd.Series(dtype="string") for c in EDIT_LOG_COLUMNS}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=STORAGE_CRS), crs=STORAGE_CRS)


def _version_keys(versions, open_only: bool) -> set[tuple[str, int]]:
    if versions is None or len(versions) == 0:
        return set()
    v = versions
    if open_only:
        end = v["valid_to"].astype("string").fillna("")
        v = v[(end == "").to_numpy()]
    return set(zip(v["grid_code"].astype(str), v["version"].astype(int), strict=True))


def _shapes(frame) -> list[bytes]:
    geo = shapely.normalize(frame.geometry.to_crs(STORAGE_CRS).to_numpy())
    return list(shapely.to_wkb(geo))


def _changed(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame) -> tuple[np.ndarray, list[str]]:
    """Rows of *before* whose geometry is gone after the edit, and the codes of the grids
    whose geometry is new (compared exactly: grids not involved pass unchanged)."""
    old, new = _shapes(before), _shapes(after)
    gone = np.array([w not in set(new) for w in old], dtype=bool)
    made = [str(c) for c, w in zip(after["grid_code"], new, strict=True) if w not in set(old)]
    return gone, made


def _log_rows(edit_id, edit, reason, before_rows: gpd.GeoDataFrame, opened, closed, made):
    rows = pd.DataFrame(
        {
            "grid_code": before_rows["grid_code"].astype("string").to_numpy(),
            **{
                c: (
                    before_rows[c].astype("string").to_numpy()
                    if c in before_rows
                    else pd.array([pd.NA] * len(before_rows), dtype="string")
                )
                for c in ("name", "kind", "community_code", "street_code")
            },
        }
    )
    rows["edit_id"] = edit_id
    rows["op"] = str(edit.get("op"))
    rows["parameters"] = json.dumps(edit, ensure_ascii=False, sort_keys=True, default=str)
    rows["reason"] = reason if reason else pd.NA
    rows["made_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    rows["opened"] = json.dumps(sorted(opened))
    rows["closed"] = json.dumps(sorted(closed))
    rows["made"] = json.dumps(sorted(made))
    rows["undone"] = pd.NA
    rows = rows[EDIT_LOG_COLUMNS].astype("string")
    rows["geometry"] = before_rows.geometry.to_crs(STORAGE_CRS).to_numpy()
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=STORAGE_CRS)


def _append_log(log_frame, rows):
    if log_frame is None or len(log_frame) == 0:
        return rows
    out = pd.concat([log_frame.to_crs(STORAGE_CRS), rows], ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=STORAGE_CRS)


def apply_edit(
    store,
    settings: Settings,
    edit: dict[str, Any],
    reason: str | None = None,
    effective: str | None = None,
):
    """Save an edit: the edited grids, refreshed (versions, figures, audit) and logged in
    ``edit_log``, in one atomic store write.

    Returns
    -------
    preview, job
        The :class:`EditResult` and the refresh's :class:`gridgis.workflows.base.JobResult`.

    Raises
    ------
    RuleError
        The edit breaks contiguity or tiling (nothing written).
    """
    from gridgis.workflows.refresh import refresh

    res = preview_edit(store, settings, edit)
    bad = [k for k in ("contiguity", "tiling") if not res.preview["checks"][k]]
    if bad:
        names = {"contiguity": "连续性 (each grid one polygon)", "tiling": "无缝覆盖 (tiling)"}
        raise RuleError(f"edit not saved: it breaks {', '.join(names[k] for k in bad)}")
    before = _storage(store.read("grids"))
    old_versions = _read(store, "grid_versions")
    old_log = _read(store, "edit_log")
    edit_id = str(1 + (int(pd.to_numeric(old_log["edit_id"]).max()) if old_log is not None else 0))

    def extra(frames):
        new_v = frames.get("grid_versions")
        opened = _version_keys(new_v, False) - _version_keys(old_versions, False)
        closed = _version_keys(old_versions, True) - _version_keys(new_v, True)
        gone, made = _changed(before, frames["grids"])
        rows = _log_rows(edit_id, edit, reason, before[gone], opened, closed, made)
        return {"edit_log": _append_log(old_log, rows)}

    job = refresh(
        _Overlay(store, {"grids": res.grids}, extra),
        settings,
        command="edit",
        parameters={"edit_id": edit_id, "edit": edit},
        reason=reason,
        effective=effective,
    )
    return res, job


def undo_last(store, settings: Settings, reason: str | None = None):
    """Undo the last edit not yet undone (see the module docstring).

    Raises
    ------
    NotFoundError
        No edit to undo.
    ConflictError
        A version the edit opened has been closed since (the grids changed after it).
    """
    from gridgis.workflows.refresh import refresh

    log_frame = _read(store, "edit_log")
    if log_frame is None or len(log_frame) == 0:
        raise NotFoundError(f"{store.location}: no edit to undo")
    log_frame = log_frame.to_crs(STORAGE_CRS).reset_index(drop=True)
    live = log_frame[log_frame["undone"].astype("string").fillna("") == ""]
    if len(live) == 0:
        raise NotFoundError(f"{store.location}: every edit has been undone already")
    edit_id = str(max(live["edit_id"].astype(int)))
    mine = log_frame[(log_frame["edit_id"].astype(str) == edit_id).to_numpy()]
    opened = {(c, int(v)) for c, v in json.loads(mine["opened"].iloc[0])}
    closed = {(c, int(v)) for c, v in json.loads(mine["closed"].iloc[0])}
    versions = store.read("grid_versions").to_crs(STORAGE_CRS).reset_index(drop=True)
    still_open = _version_keys(versions, True)
    if not opened <= still_open:
        raise ConflictError(
            f"edit {edit_id}: the grids it made have changed since "
            f"({', '.join(sorted(c for c, _ in opened - still_open))}): undo by a new edit"
        )
    keys = list(
        zip(versions["grid_code"].astype(str), versions["version"].astype(int), strict=True)
    )
    drop = np.array([k in opened for k in keys])
    reopen = np.array([k in closed for k in keys])
    versions.loc[reopen, "valid_to"] = pd.NA
    versions = versions[~drop].reset_index(drop=True)
    grids = _storage(store.read("grids"))
    gone = set(json.loads(mine["made"].iloc[0]))
    kept = grids[~grids["grid_code"].astype(str).isin(gone).to_numpy()]
    restored = mine.drop(
        columns=[
            c
            for c in EDIT_LOG_COLUMNS
            if c not in ("grid_code", "name", "kind", "community_code", "street_code")
        ]
    )
    restored = restored.dropna(axis=1, how="all")
    out = gpd.GeoDataFrame(
        pd.concat([kept, restored], ignore_index=True), geometry="geometry", crs=STORAGE_CRS
    )
    out = out.sort_values("grid_code", kind="stable").reset_index(drop=True)
    for col in ("households", "building_count"):  # recounted by the refresh
        if col in out:
            out[col] = pd.to_numeric(out[col], errors="coerce").fillna(0).astype(np.int64)
    log_frame.loc[(log_frame["edit_id"].astype(str) == edit_id).to_numpy(), "undone"] = (
        datetime.now(UTC).isoformat(timespec="seconds")
    )
    return refresh(
        _Overlay(
            store, {"grids": out, "grid_versions": versions}, lambda f: {"edit_log": log_frame}
        ),
        settings,
        command="undo",
        parameters={"edit_id": edit_id},
        reason=reason,
    )
