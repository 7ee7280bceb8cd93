"""The per-area runner: one area (community, street or built-up piece) -> regions, and
the executor policy that runs many areas (a fork pool on large inputs).

For one area: faces (:mod:`gridgis.delineate.atoms`), unit grids
(:mod:`gridgis.delineate.units`), the residential faces partitioned by
:class:`~gridgis.delineate.partition.GridPartitioner`, flags
(:mod:`gridgis.delineate.flags`) and region polygons. When an area cannot be partitioned
within the bounds with street blocks, it is rerun with finer atoms (faces above the
maximum, then above the minimum, then every face with 2+ buildings split into building
cells) and the attempt with the least unexplained violation wins.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from gridgis.delineate.atoms import (
    WALL_M,
    adjacency,
    avoid_lines,
    building_arrays,
    cell_edges,
    clip_lines,
    lines_only,
    locate,
    polygonize,
    spare_buildings,
    whole_buildings,
)
from gridgis.delineate.flags import EXPLAINED, Flag, FlagKind
from gridgis.delineate.graph import Adjacency
from gridgis.delineate.partition import GridPartitioner
from gridgis.delineate.units import grab_margins, unit_faces
from gridgis.spatial import points_in_polygons, rank_of
from gridgis.standards import GridRules, Settings

Progress = Callable[[int, int], None]

OPEN_GROUND = "开放用地"
"""Name of a unit grid made of open ground without households."""


@dataclass
class Area:
    """Inputs of one area to partition, all metric."""

    polygon: Any
    lines: np.ndarray  # cut lines clipped to the polygon (roads, alignment…)
    avoid_lines: np.ndarray  # avoided lines clipped (subset of the cut lines)
    points: np.ndarray  # building representative points
    footprints: np.ndarray  # building polygons
    inner: np.ndarray | None  # building polygons shrunk by atoms.WALL_M, per building
    households: np.ndarray  # per building
    building_ids: np.ndarray
    rules: GridRules
    units: list[tuple[Any, str]] = field(default_factory=list)  # (unit-grid polygon, name)


@dataclass
class Region:
    """One grid (or community) of an area, metric."""

    geometry: Any
    kind: str
    households: int
    building_count: int
    flags: list[Flag]
    name: str | None = None


@dataclass
class Bounds:
    """Household band of the regions being made."""

    lo: int
    hi: int
    target: int
    balance: float = 0.2  # grid.balance_tolerance_share


@dataclass
class _Faces:
    """Faces of one attempt with their households and graph."""

    faces: np.ndarray
    bf: np.ndarray  # face of each building (-1 none)
    fh: np.ndarray  # households per face
    fn: np.ndarray  # buildings per face
    fmax: np.ndarray  # largest building's households per face
    edges: np.ndarray
    length: np.ndarray
    avoid: np.ndarray
    avoid_length: np.ndarray
    graph: Adjacency


def _face_stats(area: Area, faces: np.ndarray, bf: np.ndarray | None = None) -> _Faces:
    """Households, buildings and graph of ``faces``; ``bf``: the face of each building when
    already located on these very faces."""
    if bf is None:
        bf = locate(faces, area.points)
    inside = bf >= 0
    n = len(faces)
    hh = area.households[inside].astype(np.int64)
    fh = np.bincount(bf[inside], weights=hh, minlength=n).astype(np.int64)
    fn = np.bincount(bf[inside], minlength=n)
    fmax = np.zeros(n, dtype=np.int64)
    if inside.any():
        np.maximum.at(fmax, bf[inside], hh)
    adj = adjacency(faces, area.avoid_lines)
    graph = Adjacency(n, adj.edges, adj.length, adj.avoid)
    return _Faces(
        faces, bf, fh, fn, fmax, adj.edges, adj.length, adj.avoid, adj.avoid_length, graph
    )


def partition_area(area: Area, b: Bounds) -> tuple[list[Region], np.ndarray]:
    """Regions of one area and the region index of each of its buildings."""
    unit_lines = [
        lines_only(
            shapely.intersection(
                np.asarray(shapely.get_parts(shapely.boundary(u)), dtype=object), area.polygon
            )
        )
        for u, _ in area.units
    ]
    base_lines = [area.lines, *unit_lines]
    faces = polygonize(area.polygon, base_lines)
    best: tuple | None = None
    cells: dict[int, np.ndarray] = {}  # face -> its building-cell borders, once per face
    done = -1  # faces split at the previous level (the sets grow as the level falls)
    bf = locate(faces, area.points)
    fh = np.bincount(bf[bf >= 0], weights=area.households[bf >= 0], minlength=len(faces))
    fn = np.bincount(bf[bf >= 0], minlength=len(faces))
    for level in (b.hi, b.lo, 0):
        # finer subdivision only helps when the previous one left fixable violations
        if level != b.hi and (best is None or best[0] == 0):
            break
        split = np.flatnonzero((fh > level) & (fn >= 2))
        for f in split:
            if f not in cells:
                sel = bf == f
                cells[f] = cell_edges(
                    faces[f],
                    area.footprints[sel],
                    area.points[sel],
                    area.rules.cell_step_m,
                    None if area.inner is None else area.inner[sel],
                )
        if len(split) == done:
            continue  # no more faces to split than at the previous level: same atoms
        done = len(split)
        extra = [cells[f] for f in split]
        if extra:
            stats = _face_stats(area, polygonize(area.polygon, base_lines + extra))
        else:  # the street blocks themselves: buildings already located on them
            stats = _face_stats(area, faces, bf)
        result = _regions_from_faces(area, stats, b)
        if best is None or result[0] < best[0]:
            best = result
    assert best is not None
    return best[1], best[2]


def _unit_regions(area: Area, fs: _Faces, b: Bounds, face_region: np.ndarray) -> list[Region]:
    """Unit grids: each qualifying institution's faces, one grid per piece between
    arterials; a piece holding more households than the maximum (campus dormitories, staff
    housing) is divided into unit grids within the band, or flagged when it cannot be."""
    regions: list[Region] = []
    pieces = unit_faces(fs.faces, area.units, fs.graph, area.rules.unit_min_piece_m2)
    for comps, (_, name) in zip(pieces, area.units, strict=True):
        parts = []
        for comp in comps:
            hh = int(fs.fh[comp].sum())
            parts += _split_faces(fs, np.asarray(comp), b) if hh > b.hi else [comp]
        for i, part in enumerate(parts):
            face_region[part] = len(regions)
            ph = int(fs.fh[part].sum())
            label = name if len(parts) == 1 else f"{name or '单位'} {i + 1}/{len(parts)}"
            flags = []
            if ph > b.hi:
                flags.append(_above_max(area, fs, np.asarray(part), ph, b, FlagKind.UNIT_ABOVE_MAX))
            regions.append(Region(None, "unit", ph, int(fs.fn[part].sum()), flags, label))
    return regions


def _split_faces(fs: _Faces, sel: np.ndarray, b: Bounds) -> list[list[int]]:
    """Partition the faces ``sel`` (global face indices) within the band."""
    pos = np.full(len(fs.faces), -1, dtype=np.int64)
    pos[sel] = np.arange(len(sel))
    em = (pos[fs.edges[:, 0]] >= 0) & (pos[fs.edges[:, 1]] >= 0) if len(fs.edges) else []
    cen = shapely.centroid(fs.faces[sel])
    part = GridPartitioner(
        fs.fh[sel],
        shapely.get_x(cen),
        shapely.get_y(cen),
        pos[fs.edges[em]] if len(fs.edges) else fs.edges,
        fs.length[em] if len(fs.edges) else fs.length,
        fs.avoid[em] if len(fs.edges) else fs.avoid,
        b.lo,
        b.hi,
        b.target,
        area=shapely.area(fs.faces[sel]),
        perimeter=shapely.length(fs.faces[sel]),
        edge_avoid_length=fs.avoid_length[em] if len(fs.edges) else fs.avoid_length,
        balance_tolerance=b.balance,
    )
    labels = part.solve()
    return [sel[labels == r].tolist() for r in range(int(labels.max()) + 1)]


def _above_max(area: Area, fs: _Faces, sel: np.ndarray, hh: int, b: Bounds, kind) -> Flag:
    big = int(fs.fmax[sel].max()) if len(sel) else 0
    if big > b.hi:
        bi = np.flatnonzero((area.households == big) & np.isin(fs.bf, sel))
        bid = area.building_ids[bi[0]] if len(bi) else "?"
        return Flag(FlagKind.ABOVE_MAX_BUILDING, f"楼栋 {bid} 单栋 {big} 户 > {b.hi}（楼栋不拆分）")
    if kind == FlagKind.UNIT_ABOVE_MAX:
        return Flag(kind, f"单位网格 {hh} 户 > {b.hi}，无法在单位内划出合格网格")
    return Flag(FlagKind.ABOVE_MAX, f"{hh} 户 > {b.hi}，未找到合格划分")


def _below_min(area: Area, hh: int, comp_total: int, n_comp: int, b: Bounds) -> Flag:
    if comp_total < b.lo and n_comp == 1 and not area.units:
        return Flag(FlagKind.COMMUNITY_TOO_SMALL, f"全区合计 {comp_total} 户 < {b.lo}")
    if comp_total < b.lo:
        return Flag(
            FlagKind.PART_CUT_OFF,
            f"被单位网格或干道隔开（或不相连）的部分合计 {comp_total} 户 < {b.lo}",
        )
    return Flag(FlagKind.BELOW_MIN, f"{hh} 户 < {b.lo}，未找到合格划分")


def _residential_regions(
    area: Area, fs: _Faces, b: Bounds, face_region: np.ndarray, base: int
) -> list[Region]:
    """Partition the faces in no unit grid; set their ``face_region`` from ``base`` on."""
    res = np.flatnonzero(face_region < 0)
    if len(res) == 0:
        return []
    parts = _split_faces(fs, res, b)
    comp_of = np.empty(len(fs.faces), dtype=np.int64)
    comp_total = {}
    comps = fs.graph.components(res.tolist())
    for ci, comp in enumerate(comps):
        comp_of[comp] = ci
        comp_total[ci] = int(fs.fh[comp].sum())
    out = []
    for r, part in enumerate(parts):
        sel = np.asarray(part)
        face_region[sel] = base + r
        hh = int(fs.fh[sel].sum())
        flags = []
        if hh < b.lo:
            flags.append(_below_min(area, hh, comp_total[int(comp_of[sel[0]])], len(comps), b))
        elif hh > b.hi:
            flags.append(_above_max(area, fs, sel, hh, b, FlagKind.ABOVE_MAX))
        out.append(Region(None, "residential", hh, int(fs.fn[sel].sum()), flags))
    return out


def _shared_with(r: int, face_region: np.ndarray, fs: _Faces) -> dict[int, float]:
    """Regions next to region ``r`` -> shared boundary length (m)."""
    if len(fs.edges) == 0:
        return {}
    ra, rb = face_region[fs.edges[:, 0]], face_region[fs.edges[:, 1]]
    out: dict[int, float] = {}
    for mine, other in ((ra, rb), (rb, ra)):
        sel = (mine == r) & (other != r) & (other >= 0)
        for s_, ln in zip(other[sel].tolist(), fs.length[sel].tolist(), strict=True):
            out[s_] = out.get(s_, 0.0) + ln
    return out


def absorb_open_ground(
    regions: list[Region], face_region: np.ndarray, fs: _Faces, rules: GridRules
) -> list[Region]:
    """Residential regions without households — open ground (a park, a plaza, water, a
    campus without residents) cut off by unit grids or arterials — do not stay empty
    grids: one of at least ``grid.open_ground_unit_min_m2`` becomes a unit grid of its own
    (开放用地); a smaller one joins the neighbouring grid it shares the longest boundary
    with. One with no neighbour (the whole area empty) stays, flagged. ``face_region`` is
    updated in place."""
    for r, reg in enumerate(regions):
        if reg.kind != "residential" or reg.households > 0:
            continue
        sel = face_region == r
        alone = len(regions) == 1  # an empty community: its own flag says so
        if not alone and float(shapely.area(fs.faces[sel]).sum()) >= rules.open_ground_unit_min_m2:
            reg.kind, reg.name, reg.flags = "unit", OPEN_GROUND, []
            continue
        shared = _shared_with(r, face_region, fs)
        if not shared:
            continue
        s_ = max(shared, key=lambda k: (shared[k], -k))
        face_region[sel] = s_
        regions[s_].building_count += reg.building_count
        regions[r] = None  # type: ignore[call-overload]
    keep = [r for r, reg in enumerate(regions) if reg is not None]
    remap = np.full(len(regions) + 1, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    face_region[:] = remap[face_region]
    return [regions[r] for r in keep]


def _unexplained(g: Region, b: Bounds) -> int:
    """Households outside the band not explained by the input (one building too big, a
    community too small…): residential grids both ways, unit grids above the maximum."""
    if any(f.kind in EXPLAINED for f in g.flags):
        return 0
    over = max(0, g.households - b.hi)
    return over if g.kind == "unit" else over + max(0, b.lo - g.households)


def _regions_from_faces(area: Area, fs: _Faces, b: Bounds):
    """(unexplained violation, regions, region of each building) of one attempt."""
    face_region = np.full(len(fs.faces), -1, dtype=np.int64)
    regions = _unit_regions(area, fs, b, face_region)
    face_region = grab_margins(
        fs.faces,
        face_region,
        fs.fh,
        fs.edges,
        fs.length,
        fs.graph,
        area.rules.unit_margin_share,
    )
    regions += _residential_regions(area, fs, b, face_region, len(regions))
    regions = absorb_open_ground(regions, face_region, fs, area.rules)
    for r, reg in enumerate(regions):
        sel = np.flatnonzero(face_region == r)
        geom = shapely.coverage_union_all(fs.faces[sel]) if len(sel) > 1 else fs.faces[sel[0]]
        if geom.geom_type != "Polygon":
            geom = shapely.union_all(fs.faces[sel], grid_size=None)
        if geom.geom_type != "Polygon":
            reg.flags.append(Flag(FlagKind.MULTIPART, "网格由不相连的几块组成"))
        reg.geometry = geom
    violation = sum(_unexplained(g, b) for g in regions)
    building_region = np.where(fs.bf >= 0, face_region[np.clip(fs.bf, 0, None)], -1)
    return violation, regions, building_region


# -- many areas ----------------------------------------------------------------------------


def _units_in(poly, unit_geoms, unit_names, unit_tree, whole) -> list[tuple[Any, str | None]]:
    """(largest polygon part inside ``poly``, name) of each unit grid institution, its
    outline moved to the walls of the buildings it cut (``whole``)."""
    out = []
    if unit_tree is None:
        return out
    for ui in unit_tree.query(poly, predicate="intersects"):
        part = shapely.intersection(whole(unit_geoms[ui]), poly)
        if shapely.area(part) > 1.0:
            polys = shapely.get_parts(part)
            polys = polys[shapely.get_type_id(polys) == 3]
            if len(polys):
                big = polys[np.argmax(shapely.area(polys))]
                out.append((big, unit_names[ui] if unit_names is not None else None))
    return out


class _AreaBuilder:
    """Builds the :class:`Area` of each area polygon from the layers (shared indexes)."""

    def __init__(
        self, areas, area_rank, buildings, roads, alignment, units, settings, inner=None
    ) -> None:
        self.foot, self.pts, self.hh, self.bids = building_arrays(buildings)
        cut, avoid, _ = avoid_lines(roads, alignment, settings)
        # building interiors once for all (cell borders of every area spare them too)
        self.inner = (
            shapely.buffer(np.asarray(self.foot, dtype=object), -WALL_M)
            if inner is None
            else np.asarray(inner, dtype=object)
        )
        inner = self.inner[~shapely.is_empty(self.inner)]
        self.cut, self.avoid = spare_buildings(cut, inner), spare_buildings(avoid, inner)
        self.cut_tree = STRtree(self.cut) if len(self.cut) else None
        self.avoid_tree = STRtree(self.avoid) if len(self.avoid) else None
        self.foot_tree = STRtree(self.foot) if len(self.foot) else None
        self.geoms = areas.geometry.to_numpy()
        self.b_area = points_in_polygons(self.pts, self.geoms, area_rank)
        has = units is not None and len(units)
        self.unit_geoms = units.geometry.to_numpy() if has else None
        self.unit_names = (
            units["name"].astype("string").fillna("").to_numpy()
            if has and "name" in units
            else None
        )
        self.unit_tree = STRtree(self.unit_geoms) if has else None
        self.rules = settings.grid
        self.by_area = np.argsort(self.b_area, kind="stable")
        self.bounds = np.searchsorted(self.b_area[self.by_area], np.arange(len(self.geoms) + 1))

    def whole(self, polygon):
        """``polygon`` moved to the walls of the buildings it cuts."""
        return whole_buildings(polygon, self.foot, self.foot_tree)

    def members(self, ai: int) -> np.ndarray:
        """Buildings of area ``ai`` (row positions)."""
        return self.by_area[self.bounds[ai] : self.bounds[ai + 1]]

    def __call__(self, ai: int) -> Area:
        poly = self.geoms[ai]
        shapely.prepare(poly)
        sel = self.members(ai)
        return Area(
            poly,
            clip_lines(self.cut, self.cut_tree, poly),
            clip_lines(self.avoid, self.avoid_tree, poly),
            self.pts[sel],
            self.foot[sel],
            self.inner[sel],
            self.hh[sel],
            self.bids[sel],
            self.rules,
            _units_in(poly, self.unit_geoms, self.unit_names, self.unit_tree, self.whole),
        )


def partition_areas(
    areas: gpd.GeoDataFrame,
    area_rank: np.ndarray,
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    alignment: dict[str, gpd.GeoDataFrame],
    units: gpd.GeoDataFrame | None,
    settings: Settings,
    b: Bounds,
    progress: Progress | None,
    inner: np.ndarray | None = None,
) -> tuple[list[tuple[int, Region]], np.ndarray, np.ndarray]:
    """Partition every area polygon (metric). Returns (area index, region) pairs, the
    global region index of each building (-1 outside every area) and the area index of
    each building (by the one point-in-polygon rule, ties to the smallest ``area_rank``).
    ``inner``: the buildings shrunk by ``atoms.WALL_M`` (one per building) when the caller
    has them."""
    build = _AreaBuilder(areas, area_rank, buildings, roads, alignment, units, settings, inner)
    total = len(build.geoms)
    out: list[tuple[int, Region]] = []
    b_region = np.full(len(build.pts), -1, dtype=np.int64)
    workers = workers_for(total)
    pool = None
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # the forked workers inherit the builder: each builds its own areas (clipping
        # lines, institutions) instead of the parent building all of them in turn
        _FORKED["build"], _FORKED["bounds"] = build, b
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        results = pool.map(_run, range(total), chunksize=4)
    else:
        results = (partition_area(build(ai), b) for ai in range(total))
    try:
        for ai, (regions, local) in enumerate(results):
            base = len(out)
            out.extend((ai, r) for r in regions)
            b_region[build.members(ai)] = np.where(local >= 0, local + base, -1)
            if progress is not None:
                progress(ai + 1, total)
    finally:
        if pool is not None:
            pool.shutdown()
        _FORKED.clear()
    return out, b_region, build.b_area


_FORKED: dict[str, Any] = {}
"""What forked workers read: the area builder and the bounds of the run."""


def _run(ai: int) -> tuple[list[Region], np.ndarray]:
    return partition_area(_FORKED["build"](ai), _FORKED["bounds"])


def workers_for(areas: int) -> int:
    """Executor policy: processes for partitioning — one per CPU (at most 8) when there
    are at least 40 areas, else 1; 1 when other non-daemon threads run (a server), where
    forking is unsafe. ``GRIDGIS_WORKERS`` overrides."""
    env = os.environ.get("GRIDGIS_WORKERS")
    if env:
        return max(1, int(env))
    if areas < 40 or sum(not t.daemon for t in threading.enumerate()) > 1:
        return 1
    return max(1, min(8, len(os.sched_getaffinity(0))))


def area_rank(codes: pd.Series) -> np.ndarray:
    """Tie-break rank of areas by code (a building on a shared border goes to the area of
    the smallest code)."""
    return rank_of(codes.astype(str).to_numpy())
