"""Delineation of communities into responsibility grids (责任网格) of 250–500 households.

The algorithm, community by community, in the metric CRS (:func:`gridgis.crs.metric_crs_for`):

1. **Atoms.** The community polygon is cut by the road centrelines inside it, by the
   boundaries of any alignment layer (residents' groups, property-management areas, police
   areas, school catchments…) and by the outlines of institutions that qualify as unit grids:
   the noded linework is polygonised into *faces* (street blocks). The faces tile the
   community exactly, roads' ground and open land included (they are faces too, or parts of
   the blocks on either side of a centreline).
2. **Building cells.** A face holding more households than a grid may (``max_households``)
   is subdivided into building cells — the ground nearer one building's outline than any
   other's (Voronoi of the outlines densified every 10 m, merged per building), clipped to
   the face — so grids can split it along the gaps between buildings and still tile. When
   a community cannot be partitioned within the bounds with those atoms, it is rerun with
   finer subdivision (faces above ``min_households``, then every face with 2+ buildings).
3. **Adjacency.** All faces of a community come out of one noded arrangement, so two faces
   are neighbours exactly when they share a boundary segment; the shared length is kept.
   Linework is noded on a 1 mm grid. An edge whose shared boundary lies (within 1 cm) on an
   avoided line — a road of
   ``settings.grid.avoid_road_classes`` or an alignment boundary — is an *avoid* edge.
4. **Regionalisation** (:class:`GridPartitioner`): zones are the components of the graph
   without avoid edges; zones below the minimum are merged into a neighbouring zone (the
   crossing is reported). Each zone is cut into ``k`` regions (``k`` the count nearest
   ``total / target_households`` that keeps ``total / k`` inside the bounds) by recursive
   bisection: grow from the extreme unit along the zone's longer axis in sweep order (every
   prefix of that order is contiguous) and cut at the prefix whose households are closest to
   the proportional share while both sides stay feasible. A repair pass then moves single
   units across region borders or re-splits a pair of neighbouring regions wherever that
   reduces the total violation of the bounds, first without crossing avoided lines, then
   allowing it. Last, border units move where that raises the two regions' Polsby-Popper
   without leaving the bounds, drifting from the target (beyond a fifth of the band),
   adding crossings or breaking contiguity.
5. **Unit grids.** Faces inside an institution meeting the unit-grid criteria
   (:func:`qualifies_as_unit`) form a ``unit`` grid of their own, with the household-free
   margin of its block unless that would cut the housing apart; smaller institutions stay
   in the residential faces and so join a residential grid.
6. Grids are the unions of their faces (one Polygon each), numbered by
   :func:`gridgis.codes.number_grids`, and every building gets the ``grid_code`` of the face
   holding its representative point.

Infeasible cases still produce grids, with a flag naming the reason: a community (or a part
cut off by unit grids) below the minimum, a building above the maximum.

A grid's *crossings* (column ``crossings``, the ``crosses`` findings) are the avoided lines
that separate two of its own faces, per line label, less the stretches of avoided roads
along a median strip at the grid's edge: a divided arterial is two carriageways, the strip
between them goes to the grid on one side, and the nearer carriageway then lies inside that
grid without the grid straddling the road. That rule is the audit's
(:func:`gridgis.audit.median_length`, ``settings.grid.median_width_m``), so delineation and
``gridgis audit`` agree. The partitioner's penalty still counts every avoided face edge.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from gridgis.crs import STORAGE_CRS, metric_crs_for
from gridgis.standards import DEFAULT, Settings

GRID_COLUMNS = [
    "grid_code",
    "community_code",
    "street_code",
    "kind",
    "households",
    "building_count",
    "area_m2",
    "polsby_popper",
    "crossings",
    "flags",
]
FINDING_COLUMNS = ["grid_code", "community_code", "finding", "line", "length_m", "detail"]

_SNAP_M = 0.01
"""Distance (m) within which a shared face boundary is taken to lie on an avoided line."""
_GRID_M = 1e-3
"""Linework is noded on a 1 mm grid, so lines within a millimetre (a road drawn on a
community boundary) coincide instead of leaving sliver faces."""
_CELL_STEP_M = 10.0
"""Building outlines are densified to this step (m) for the building cells."""
_PRECISION_M = 1e-4
"""Coordinates are compared at this precision (m) when matching shared face boundaries."""

Progress = Callable[[int, int], None]


# ======================================================================================
# Regionalisation on an adjacency graph
# ======================================================================================


class GridPartitioner:
    """Contiguous regions with ``min ≤ households ≤ max`` on an adjacency graph.

    Parameters
    ----------
    households
        Households of each unit (atom or building cell), shape (n,).
    x, y
        Unit centroids in a metric CRS (m), shape (n,).
    edges
        Array (m, 2) of unit index pairs sharing a boundary.
    edge_length
        Shared boundary length of each edge (m), shape (m,).
    edge_avoid
        True where the shared boundary lies on an avoided line (arterial road, alignment
        boundary): regions cross such edges only when nothing else works.
    min_households, max_households, target_households
        The bounds and the balance point of a region.

    Notes
    -----
    Call :meth:`solve`; it returns a region label per unit and sets ``labels_`` and
    ``region_households_``. Deterministic: same input, same regions.
    """

    def __init__(
        self,
        households: Sequence[int] | np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        edges: np.ndarray,
        edge_length: np.ndarray,
        edge_avoid: np.ndarray,
        min_households: int,
        max_households: int,
        target_households: int,
        area: np.ndarray | None = None,
        perimeter: np.ndarray | None = None,
        edge_avoid_length: np.ndarray | None = None,
    ) -> None:
        self.h = np.asarray(households, dtype=np.int64)
        self.area = None if area is None else np.asarray(area, dtype=float)
        self.perim = None if perimeter is None else np.asarray(perimeter, dtype=float)
        self.n = len(self.h)
        self.x = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.lo = int(min_households)
        self.hi = int(max_households)
        self.target = int(target_households)
        self.nbr: list[dict[int, float]] = [{} for _ in range(self.n)]
        self.avoid: list[set[int]] = [set() for _ in range(self.n)]
        self.avoid_len: list[dict[int, float]] = [{} for _ in range(self.n)]
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        if edge_avoid_length is None:
            edge_avoid_length = np.where(
                np.asarray(edge_avoid, dtype=bool), np.asarray(edge_length, dtype=float), 0.0
            )
        for (a, b), length, av, al in zip(
            edges,
            np.asarray(edge_length, dtype=float),
            np.asarray(edge_avoid, dtype=bool),
            np.asarray(edge_avoid_length, dtype=float),
            strict=True,
        ):
            a, b = int(a), int(b)
            if a == b:
                continue
            self.nbr[a][b] = self.nbr[a].get(b, 0.0) + float(length)
            self.nbr[b][a] = self.nbr[b].get(a, 0.0) + float(length)
            if al > 0:
                self.avoid_len[a][b] = self.avoid_len[a].get(b, 0.0) + float(al)
                self.avoid_len[b][a] = self.avoid_len[b].get(a, 0.0) + float(al)
            if av:
                self.avoid[a].add(b)
                self.avoid[b].add(a)
        self.labels_: np.ndarray | None = None
        self.region_households_: dict[int, int] = {}

    # -- public -------------------------------------------------------------------------
    def solve(self) -> np.ndarray:
        """Partition the units into contiguous regions within the bounds where possible.

        Returns
        -------
        numpy.ndarray
            Region label (0..R-1) of every unit, regions numbered in order of creation.
        """
        zones = self._merge_small_zones(self._components(range(self.n), allow_avoid=False))
        regions: list[list[int]] = []
        for zone in zones:
            regions.extend(self._bisect(zone, self.choose_k(int(self.h[zone].sum()))))
        self.label = np.full(self.n, -1, dtype=np.int64)
        self.members: dict[int, set[int]] = {}
        self.H: dict[int, int] = {}
        self._next = 0
        for reg in regions:
            self._new_region(reg)
        for allow in (False, True):
            self._repair(allow)
        if self.area is not None and self.perim is not None:
            self._improve_compactness()
        # compact labels 0..R-1 in creation order
        ids = sorted(self.members)
        remap = {r: i for i, r in enumerate(ids)}
        labels = np.array([remap[r] for r in self.label], dtype=np.int64)
        self.labels_ = labels
        self.region_households_ = {remap[r]: self.H[r] for r in ids}
        return labels

    def choose_k(self, total: int) -> int:
        """Number of regions for ``total`` households: nearest ``total / target`` that keeps
        the mean inside ``[min, max]`` (1 when ``total < 2·min``)."""
        if total < 2 * self.lo:
            return 1
        kmin = math.ceil(total / self.hi)
        kmax = total // self.lo
        k = max(1, round(total / self.target))
        return int(min(max(k, kmin), kmax)) if kmin <= kmax else int(kmin)

    def _imbalance(self, households: int) -> float:
        """Households beyond a tolerance of a fifth of the band around the target: moves
        for compactness may not add to it (balance before shape)."""
        tol = (self.hi - self.lo) / 5
        return max(0.0, abs(households - self.target) - tol)

    def violation(self, households: int) -> int:
        """Households outside the bounds (0 when ``min ≤ households ≤ max``)."""
        return max(0, self.lo - households) + max(0, households - self.hi)

    # -- graph helpers ------------------------------------------------------------------
    def _ok(self, u: int, v: int, allow_avoid: bool) -> bool:
        return allow_avoid or v not in self.avoid[u]

    def _components(self, nodes, allow_avoid: bool = True) -> list[list[int]]:
        nodes = list(nodes)
        inside = set(nodes)
        seen: set[int] = set()
        out = []
        for s in nodes:
            if s in seen:
                continue
            comp = [s]
            seen.add(s)
            stack = [s]
            while stack:
                u = stack.pop()
                for v in self.nbr[u]:
                    if v in inside and v not in seen and self._ok(u, v, allow_avoid):
                        seen.add(v)
                        comp.append(v)
                        stack.append(v)
            out.append(sorted(comp))
        return out

    def _connected(self, nodes: set[int]) -> bool:
        if not nodes:
            return False
        start = next(iter(nodes))
        seen = {start}
        stack = [start]
        while stack:
            u = stack.pop()
            for v in self.nbr[u]:
                if v in nodes and v not in seen:
                    seen.add(v)
                    stack.append(v)
        return len(seen) == len(nodes)

    def _merge_small_zones(self, zones: list[list[int]]) -> list[list[int]]:
        """Merge zones below the minimum into a neighbouring zone across an avoid edge:
        a zone without households into the one it shares most boundary with, others into the
        smallest neighbour (keeps the merged zone near the bounds)."""
        zid = np.empty(self.n, dtype=np.int64)
        members = {i: set(z) for i, z in enumerate(zones)}
        for i, z in enumerate(zones):
            zid[z] = i
        hh = {i: int(self.h[z].sum()) for i, z in enumerate(zones)}
        while True:
            small = sorted((hh[i], i) for i in members if hh[i] < self.lo)
            merged = False
            for _, i in small:
                shared: dict[int, float] = {}
                for u in members[i]:
                    for v, length in self.nbr[u].items():
                        j = int(zid[v])
                        if j != i:
                            shared[j] = shared.get(j, 0.0) + length
                if not shared:
                    continue
                if hh[i] == 0:
                    j = max(shared, key=lambda k: (shared[k], -k))
                else:
                    j = min(shared, key=lambda k: (hh[k], -shared[k], k))
                members[j] |= members.pop(i)
                zid[list(members[j])] = j
                hh[j] += hh.pop(i)
                merged = True
                break
            if not merged:
                break
        return [sorted(m) for _, m in sorted(members.items())]

    # -- bisection ----------------------------------------------------------------------
    def _sweep_order(self, units: list[int], proj: np.ndarray) -> list[int]:
        """Units in the order a sweep along ``proj`` (one value per unit, ascending) reaches
        them through the graph: every prefix of the order is contiguous."""
        key = {u: float(p) for u, p in zip(units, proj, strict=True)}
        inside = set(units)
        order: list[int] = []
        seen: set[int] = set()
        remaining = sorted(units, key=lambda u: (key[u], u))
        ri = 0
        while len(order) < len(units):
            while remaining[ri] in seen:
                ri += 1
            s = remaining[ri]
            heap = [(key[s], s)]
            seen.add(s)
            while heap:
                _, u = heapq.heappop(heap)
                order.append(u)
                for v in self.nbr[u]:
                    if v in inside and v not in seen:
                        seen.add(v)
                        heapq.heappush(heap, (key[v], v))
        return order

    def _cut(
        self, units: list[int], proj: np.ndarray, goal: float, lo: float, hi: float
    ) -> tuple[bool, float, set[int], list[int]]:
        """Best contiguous cut of one sweep: (feasible, deviation, part A, part B)."""
        order = self._sweep_order(units, proj)
        cum = np.cumsum(self.h[order])[:-1]  # households of prefix i+1, i = 0..n-2
        dev = np.abs(cum - goal)
        feasible = (cum >= lo) & (cum <= hi)
        if feasible.any():
            dev = np.where(feasible, dev, np.inf)
        i = int(np.argmin(dev)) + 1
        a = set(order[:i])
        b_comps = self._components(order[i:])
        if len(b_comps) > 1:  # enclosed pieces of B join A (they only touch A)
            b_comps.sort(key=lambda c: (int(self.h[c].sum()), len(c)), reverse=True)
            for c in b_comps[1:]:
                a.update(c)
        ha = int(self.h[list(a)].sum())
        return lo <= ha <= hi, abs(ha - goal), a, b_comps[0]

    def _bisect(self, units: list[int], k: int) -> list[list[int]]:
        """Split ``units`` into ``k`` contiguous regions of near-equal households.

        Sweeps along the longer axis first (compact halves); when no feasible cut exists
        there, along the longer axis backwards and the shorter axis both ways.
        """
        if k <= 1 or len(units) < 2:
            return [list(units)]
        k1 = k // 2
        k2 = k - k1
        total = int(self.h[units].sum())
        goal = total * k1 / k
        lo = max(k1 * self.lo, total - k2 * self.hi)
        hi = min(k1 * self.hi, total - k2 * self.lo)
        xs, ys = self.x[units], self.y[units]
        long_, short = (xs, ys) if (np.ptp(xs) >= np.ptp(ys)) else (ys, xs)
        best = None
        for proj in (long_, -long_, short, -short):
            ok, dev, a, b = self._cut(units, proj, goal, lo, hi)
            if best is None or (ok, -dev) > (best[0], -best[1]):
                best = (ok, dev, a, b)
            if ok:
                break
        _, _, a, b = best
        ka, kb = k1, k2
        ha, hb = int(self.h[list(a)].sum()), int(self.h[b].sum())
        if hb < kb * self.lo and kb > 1:  # absorbed parts left B too small for k2 regions
            kb = max(1, self.choose_k(hb))
        if ha > ka * self.hi:
            ka = max(ka, self.choose_k(ha))
        return self._bisect(sorted(a), ka) + self._bisect(sorted(b), kb)

    # -- repair -------------------------------------------------------------------------
    def _new_region(self, units) -> int:
        r = self._next
        self._next += 1
        self.members[r] = set(int(u) for u in units)
        self.label[list(self.members[r])] = r
        self.H[r] = int(self.h[list(self.members[r])].sum())
        return r

    def _neighbour_regions(self, r: int, allow_avoid: bool) -> dict[int, float]:
        out: dict[int, float] = {}
        for u in self.members[r]:
            for v, length in self.nbr[u].items():
                s = int(self.label[v])
                if s != r and self._ok(u, v, allow_avoid):
                    out[s] = out.get(s, 0.0) + length
        return out

    def _move(self, u: int, r: int, s: int) -> None:
        self.members[r].discard(u)
        self.members[s].add(u)
        self.label[u] = s
        self.H[r] -= int(self.h[u])
        self.H[s] += int(self.h[u])

    def _try_moves(self, r: int, allow_avoid: bool) -> bool:
        """Move one unit across r's border where it lowers the violation of r and the
        other region; pick the largest drop, then the most compact (longest shared border)."""
        best = None
        candidates = []
        for u in self.members[r]:
            for v in self.nbr[u]:
                s = int(self.label[v])
                if s == r or not self._ok(u, v, allow_avoid):
                    continue
                if self.H[r] > self.hi:
                    candidates.append((u, r, s))  # give u to s
                else:
                    candidates.append((v, s, r))  # take v from s
        seen = set()
        for w, src, dst in candidates:
            if (w, src, dst) in seen or self.h[w] == 0:
                continue
            seen.add((w, src, dst))
            hw = int(self.h[w])
            before = self.violation(self.H[src]) + self.violation(self.H[dst])
            after = self.violation(self.H[src] - hw) + self.violation(self.H[dst] + hw)
            if after >= before or len(self.members[src]) < 2:
                continue
            to_dst = sum(length for z, length in self.nbr[w].items() if self.label[z] == dst)
            to_src = sum(length for z, length in self.nbr[w].items() if self.label[z] == src)
            score = (before - after, to_dst - to_src)
            if best is None or score > best[0]:
                rest = self.members[src] - {w}
                if self._connected(rest):
                    best = (score, w, src, dst)
        if best is None:
            return False
        _, w, src, dst = best
        self._move(w, src, dst)
        return True

    def _try_resplit(self, r: int, allow_avoid: bool) -> bool:
        """Pool r with one neighbouring region and bisect the pool afresh (into 1, 2 or more
        regions); keep the best pool that lowers the total violation."""
        best = None
        for s, _ in sorted(self._neighbour_regions(r, allow_avoid).items(), key=lambda kv: -kv[1]):
            pool = sorted(self.members[r] | self.members[s])
            total = self.H[r] + self.H[s]
            before = self.violation(self.H[r]) + self.violation(self.H[s])
            for k in sorted(
                {self.choose_k(total), max(1, self.choose_k(total) - 1), self.choose_k(total) + 1}
            ):
                if k > len(pool):
                    continue
                parts = self._bisect(pool, k)
                after = sum(self.violation(int(self.h[p].sum())) for p in parts)
                if after < before and (best is None or after < best[0]):
                    best = (after, r, s, parts)
        if best is None:
            return False
        _, r, s, parts = best
        for q in (r, s):
            del self.members[q]
            del self.H[q]
        for p in parts:
            self._new_region(p)
        return True

    def _improve_compactness(self, max_passes: int = 6) -> None:
        """Local moves of border units that raise the two regions' summed Polsby-Popper
        (4πA/P², perimeters kept from unit perimeters and shared lengths) without worsening
        the bounds or the balance (:meth:`_imbalance`), lengthening avoided-line crossings
        or breaking contiguity."""
        assert self.area is not None and self.perim is not None
        A = {r: float(self.area[list(m)].sum()) for r, m in self.members.items()}
        P = {}
        for r, m in self.members.items():
            internal = sum(length for u in m for v, length in self.nbr[u].items() if v in m)
            P[r] = float(self.perim[list(m)].sum()) - internal  # each edge counted twice

        def pp(a: float, p: float) -> float:
            return 4 * math.pi * a / (p * p) if p > 0 else 0.0

        lab = self.label.tolist()  # plain lists: fast scalar access in the loop
        hh = self.h.tolist()
        area = self.area.tolist()
        perim = self.perim.tolist()
        H, viol, imb = self.H, self.violation, self._imbalance
        for _ in range(max_passes):
            moved = 0
            for u in range(self.n):
                r = lab[u]
                nb = self.nbr[u]
                to: dict[int, float] = {}
                for v, length in nb.items():
                    to[lab[v]] = to.get(lab[v], 0.0) + length
                if len(to) < 2 and r in to or not to or len(self.members[r]) < 2:
                    continue
                hu = hh[u]
                to_r = to.get(r, 0.0)
                av: dict[int, float] = {}
                for v, length in self.avoid_len[u].items():
                    av[lab[v]] = av.get(lab[v], 0.0) + length
                av_r = av.get(r, 0.0)
                base_v = viol(H[r])
                base_i = imb(H[r])
                pp_r = pp(A[r], P[r])
                best = None
                for s_ in sorted(to):
                    if s_ == r:
                        continue
                    if viol(H[r] - hu) + viol(H[s_] + hu) > base_v + viol(H[s_]):
                        continue
                    if hu and imb(H[r] - hu) + imb(H[s_] + hu) > base_i + imb(H[s_]):
                        continue
                    if av.get(s_, 0.0) > av_r + 1e-6:
                        continue
                    pr = P[r] - perim[u] + 2 * to_r
                    ps = P[s_] + perim[u] - 2 * to[s_]
                    ar, as_ = A[r] - area[u], A[s_] + area[u]
                    gain = pp(ar, pr) + pp(as_, ps) - pp_r - pp(A[s_], P[s_])
                    if gain > 1e-4 and (best is None or gain > best[0]):
                        best = (gain, s_, pr, ps, ar, as_)
                if best is None or not self._connected(self.members[r] - {u}):
                    continue
                _, s_, pr, ps, ar, as_ = best
                self._move(u, r, s_)
                lab[u] = s_
                P[r], P[s_], A[r], A[s_] = pr, ps, ar, as_
                moved += 1
            if not moved:
                return

    def _repair(self, allow_avoid: bool, max_rounds: int = 200) -> None:
        for _ in range(max_rounds):
            bad = sorted(
                (r for r in self.members if self.violation(self.H[r]) > 0),
                key=lambda r: (-self.violation(self.H[r]), r),
            )
            if not bad:
                return
            changed = False
            for r in bad:
                if r not in self.members or self.violation(self.H[r]) == 0:
                    continue
                if self._try_moves(r, allow_avoid) or self._try_resplit(r, allow_avoid):
                    changed = True
            if not changed:
                return


# ======================================================================================
# Geometry: faces, cells, adjacency
# ======================================================================================


def _lines_only(geoms: np.ndarray) -> np.ndarray:
    parts = shapely.get_parts(geoms[~shapely.is_empty(geoms)])
    if len(parts) == 0:
        return parts
    return parts[shapely.get_type_id(parts) == 1]


def _polygonize(area, lines: list[np.ndarray]) -> np.ndarray:
    """Faces of ``area`` cut by ``lines`` (already clipped to it), tiling it exactly."""
    pieces = [np.asarray(shapely.get_parts(shapely.boundary(area)))]
    pieces += [np.asarray(x) for x in lines if len(x)]
    noded = shapely.union_all(np.concatenate(pieces), grid_size=_GRID_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(faces) == 0:
        return np.array([area])
    inside = shapely.intersects(area, shapely.point_on_surface(faces))
    shapely.prepare(area)
    return faces[inside]


def _cell_edges(face, footprints: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Borders of the building cells of ``face``: each cell is the ground nearer to one
    building's outline than to any other's (Voronoi of the outlines densified every
    ``_CELL_STEP_M`` metres, merged per building), clipped to the face. Cells follow the
    gaps between buildings, so a cell holds its whole building (to half a step)."""
    if len(points) < 2:
        return np.empty(0, dtype=object)
    rings = shapely.segmentize(
        shapely.get_exterior_ring(shapely.get_parts(footprints)), _CELL_STEP_M
    )
    coords, owner = shapely.get_coordinates(rings, return_index=True)
    _, pi = shapely.get_parts(footprints, return_index=True)
    owner = pi[owner]
    # footprints missing or degenerate: fall back to the representative point
    coords = np.vstack([coords, shapely.get_coordinates(points)])
    owner = np.concatenate([owner, np.arange(len(points))])
    coords, first = np.unique(np.round(coords, 3), axis=0, return_index=True)
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
        return _lines_only(np.array([shapely.intersection(edges, face)]))
    order = np.argsort(owner, kind="stable")
    starts = np.flatnonzero(np.r_[True, owner[order][1:] != owner[order][:-1]])
    merged = [shapely.coverage_union_all(g) for g in np.split(cells[order], starts[1:])]
    return _lines_only(shapely.intersection(shapely.boundary(np.array(merged)), face))


@dataclass
class _OnLine:
    """Shared face-boundary segments that lie on avoided lines (metric CRS)."""

    xy: np.ndarray  # (k, 4) x0, y0, x1, y1 of each segment (m)
    edge: np.ndarray  # (k,) the face pair (edge index) the segment separates
    line: np.ndarray  # (k,) the avoided line it lies on

    @staticmethod
    def empty() -> _OnLine:
        return _OnLine(np.empty((0, 4)), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))


def _adjacency(
    faces: np.ndarray, avoid_lines: np.ndarray, avoid_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, float]], _OnLine]:
    """Neighbouring faces of one noded arrangement, from their identical boundary segments.

    Returns
    -------
    edges
        (m, 2) face index pairs, ``a < b``.
    length
        Shared boundary length (m).
    avoid
        True where less than 1 m of the shared boundary is off avoided lines.
    crossed
        Per edge, avoided line label -> metres of shared boundary on it.
    on_line
        The shared boundary segments lying on avoided lines.
    """
    empty = (
        np.empty((0, 2), dtype=np.int64),
        np.empty(0),
        np.empty(0, dtype=bool),
        [],
        _OnLine.empty(),
    )
    if len(faces) < 2:
        return empty
    rings, ring_face = shapely.get_rings(faces, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    same = ring_of[:-1] == ring_of[1:]
    p = np.round(coords[:-1][same] / _PRECISION_M).astype(np.int64)
    q = np.round(coords[1:][same] / _PRECISION_M).astype(np.int64)
    face = ring_face[ring_of[:-1][same]]
    swap = (p[:, 0] > q[:, 0]) | ((p[:, 0] == q[:, 0]) & (p[:, 1] > q[:, 1]))
    a = np.where(swap[:, None], q, p)
    b = np.where(swap[:, None], p, q)
    key = np.ascontiguousarray(np.hstack([a, b]))
    order = np.lexsort(key.T[::-1])
    key, face = key[order], face[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = np.any(key[1:] != key[:-1], axis=1)
    group = np.cumsum(first) - 1
    pair_pos = np.flatnonzero(~first)  # second member of a shared segment
    pair_pos = pair_pos[group[pair_pos] == group[pair_pos - 1]]
    fa, fb = face[pair_pos - 1], face[pair_pos]
    keep = fa != fb
    pair_pos, fa, fb = pair_pos[keep], fa[keep], fb[keep]
    if len(pair_pos) == 0:
        return empty
    seg = key[pair_pos].astype(float) * _PRECISION_M
    seg_len = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    lo_f, hi_f = np.minimum(fa, fb), np.maximum(fa, fb)
    on_line = np.full(len(seg), -1, dtype=np.int64)
    if len(avoid_lines):
        mids = shapely.points((seg[:, 0] + seg[:, 2]) / 2, (seg[:, 1] + seg[:, 3]) / 2)
        si, li = STRtree(avoid_lines).query(mids, predicate="dwithin", distance=_SNAP_M)
        on_line[si] = li
    pairs, inv = np.unique(np.stack([lo_f, hi_f], axis=1), axis=0, return_inverse=True)
    inv = inv.ravel()
    length = np.bincount(inv, weights=seg_len, minlength=len(pairs))
    free = np.bincount(inv, weights=np.where(on_line < 0, seg_len, 0.0), minlength=len(pairs))
    avoid = free < 1.0
    crossed: list[dict[str, float]] = [{} for _ in range(len(pairs))]
    for e, li, sl in zip(
        inv[on_line >= 0], on_line[on_line >= 0], seg_len[on_line >= 0], strict=True
    ):
        lab = str(avoid_labels[li])
        crossed[e][lab] = crossed[e].get(lab, 0.0) + float(sl)
    hit = on_line >= 0
    return (
        pairs.astype(np.int64),
        length,
        avoid,
        crossed,
        _OnLine(seg[hit], inv[hit].astype(np.int64), on_line[hit]),
    )


# ======================================================================================
# One area (community, street or whole city) -> regions
# ======================================================================================


@dataclass
class _Area:
    """Inputs of one area to partition, all metric."""

    polygon: Any
    lines: np.ndarray  # cut lines clipped to the polygon (roads, alignment…)
    avoid_lines: np.ndarray  # avoided lines clipped (subset of the cut lines)
    avoid_labels: np.ndarray  # label per avoided line ("arterial 中山路", "police_areas")
    points: np.ndarray  # building representative points
    footprints: np.ndarray  # building polygons
    households: np.ndarray  # per building
    building_ids: np.ndarray
    units: list[tuple[Any, str]] = field(default_factory=list)  # (unit-grid polygon, name)
    median_roads: np.ndarray = field(  # avoided roads within median_width_m, unclipped
        default_factory=lambda: np.empty(0, dtype=object)
    )
    median_width_m: float = 0.0  # settings.grid.median_width_m


@dataclass
class _Region:
    geometry: Any
    kind: str
    households: int
    building_count: int
    flags: list[str]
    crossed: dict[str, float]
    name: str | None = None
    along_median: dict[str, float] = field(default_factory=dict)  # label -> m not counted


def _partition_area(area: _Area, lo: int, hi: int, target: int) -> tuple[list[_Region], np.ndarray]:
    """Regions of one area and the region index of each of its buildings."""
    unit_lines = [
        _lines_only(
            shapely.intersection(
                np.asarray(shapely.get_parts(shapely.boundary(u)), dtype=object), area.polygon
            )
        )
        for u, _ in area.units
    ]
    base_lines = [area.lines, *unit_lines]
    faces = _polygonize(area.polygon, base_lines)
    nb = len(area.points)
    levels = [hi, lo, 0]
    best: tuple | None = None
    for level in levels:
        if level != hi:
            # finer subdivision only helps when the previous one left fixable violations
            if best is None or best[0] == 0:
                break
        extra = []
        if nb:
            bf = _locate(faces, area.points)
            fh = np.bincount(bf[bf >= 0], weights=area.households[bf >= 0], minlength=len(faces))
            fn = np.bincount(bf[bf >= 0], minlength=len(faces))
            split = np.flatnonzero((fh > level) & (fn >= 2))
            for f in split:
                extra.append(_cell_edges(faces[f], area.footprints[bf == f], area.points[bf == f]))
        fine = _polygonize(area.polygon, base_lines + extra) if extra else faces
        result = _regions_from_faces(area, fine, lo, hi, target)
        if best is None or result[0] < best[0]:
            best = result
    assert best is not None
    return best[1], best[2]


def _set_crossings(
    regions: list[_Region],
    face_region: np.ndarray,
    edges: np.ndarray,
    on_line: _OnLine,
    area: _Area,
) -> None:
    """Set ``crossed`` and ``along_median`` of every region (label -> m).

    A region crosses an avoided line where the line separates two of its own faces. For
    roads, the stretches along a median strip at the region's edge are not crossings
    (:func:`gridgis.audit.median_length`, the audit's rule): they go to ``along_median``.
    Crossings under 1 m are dropped here; the grids report those longer than
    ``settings.grid.min_crossing_m``.
    """
    from gridgis.audit import median_length

    for reg in regions:
        reg.crossed, reg.along_median = {}, {}
    if len(on_line.edge) == 0:
        return
    ra = face_region[edges[on_line.edge, 0]]
    inside = (ra == face_region[edges[on_line.edge, 1]]) & (ra >= 0)
    if not inside.any():
        return
    xy = on_line.xy[inside]
    keys = pd.DataFrame(
        {"region": ra[inside], "label": area.avoid_labels[on_line.line[inside]].astype(str)}
    )
    group = keys.groupby(["region", "label"], sort=True).ngroup().to_numpy()
    order = np.argsort(group, kind="stable")
    group, xy = group[order], xy[order]
    first = keys.iloc[order].drop_duplicates(["region", "label"])
    pieces = shapely.multilinestrings(shapely.linestrings(xy.reshape(-1, 2, 2)), indices=group)
    total = shapely.length(pieces)
    along = np.zeros(len(pieces))
    road = first["label"].str.startswith("road:").to_numpy()
    if road.any():
        holder = np.array([regions[r].geometry for r in first["region"]], dtype=object)
        along[road] = median_length(
            pieces[road], holder[road], area.median_roads, area.median_width_m
        )
    for r, lab, m, med in zip(first["region"], first["label"], total - along, along, strict=True):
        if m >= 1.0:
            regions[r].crossed[lab] = float(m)
        if med >= 1.0:
            regions[r].along_median[lab] = float(med)


def _locate(faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Index of the face containing each point (-1 when none)."""
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or len(faces) == 0:
        return out
    pi, fi = STRtree(faces).query(points, predicate="intersects")
    # first hit wins for a point on a shared edge
    order = np.lexsort((fi, pi))
    pi, fi = pi[order], fi[order]
    first = np.ones(len(pi), dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    out[pi[first]] = fi[first]
    return out


def _n_components(mask: np.ndarray, edges: np.ndarray) -> int:
    """Connected components among the faces where ``mask`` is True."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return 0
    pos = np.full(len(mask), -1, dtype=np.int64)
    pos[idx] = np.arange(len(idx))
    e = edges[mask[edges[:, 0]] & mask[edges[:, 1]]] if len(edges) else edges
    graph = coo_matrix((np.ones(len(e)), (pos[e[:, 0]], pos[e[:, 1]])), shape=(len(idx), len(idx)))
    return int(connected_components(graph, directed=False)[0])


def _regions_from_faces(area: _Area, faces: np.ndarray, lo: int, hi: int, target: int):
    bf = _locate(faces, area.points)
    inside = bf >= 0
    fh = np.bincount(bf[inside], weights=area.households[inside], minlength=len(faces)).astype(
        np.int64
    )
    fn = np.bincount(bf[inside], minlength=len(faces))
    fmax = np.zeros(len(faces), dtype=np.int64)
    if inside.any():
        np.maximum.at(fmax, bf[inside], area.households[inside].astype(np.int64))
    # unit grids: faces whose interior point lies in a qualifying institution
    face_unit = np.full(len(faces), -1, dtype=np.int64)
    if area.units:
        rp = shapely.point_on_surface(faces)
        ui = np.array([u for u, _ in area.units], dtype=object)
        fi, uj = STRtree(ui).query(rp, predicate="within")
        face_unit[fi] = uj
    edges, elen, eavoid, ecross, on_line = _adjacency(faces, area.avoid_lines, area.avoid_labels)
    regions: list[_Region] = []
    face_region = np.full(len(faces), -1, dtype=np.int64)
    # -- unit grids (largest connected part of each institution's faces) ----------------
    for j, (_, name) in enumerate(area.units):
        fs = np.flatnonzero(face_unit == j)
        if len(fs) == 0:
            continue
        sub = GridPartitioner(
            np.zeros(len(faces)),
            np.zeros(len(faces)),
            np.zeros(len(faces)),
            edges,
            elen,
            np.zeros(len(edges), bool),
            1,
            1,
            1,
        )
        comps = sub._components(fs.tolist())
        comp = max(comps, key=lambda c: float(shapely.area(faces[c]).sum()))
        others = [f for c in comps if c is not comp for f in c]
        face_unit[others] = -1
        face_region[comp] = len(regions)
        regions.append(
            _Region(None, "unit", int(fh[comp].sum()), int(fn[comp].sum()), [], {}, name)
        )
    # open ground around an institution (a block's margin without households) that shares
    # ≥ 30% of its outline with a unit grid belongs to that unit grid
    # unless that would cut the residential faces apart
    if regions and len(edges):
        perim = shapely.length(faces)
        for _ in range(2):
            ra, rb = face_region[edges[:, 0]], face_region[edges[:, 1]]
            grab = np.full(len(faces), -1, dtype=np.int64)
            best_len = np.zeros(len(faces))
            for (fa, fb), length, ga, gb in zip(edges, elen, ra, rb, strict=True):
                for f, g_ in ((fa, gb), (fb, ga)):
                    if (
                        face_region[f] < 0
                        and g_ >= 0
                        and fh[f] == 0
                        and length >= 0.3 * perim[f]
                        and length > best_len[f]
                    ):
                        grab[f], best_len[f] = g_, length
            changed = False
            for g_ in np.unique(grab[grab >= 0]):
                trial = face_region.copy()
                trial[grab == g_] = g_
                if _n_components(trial < 0, edges) <= _n_components(face_region < 0, edges):
                    face_region = trial
                    changed = True
            if not changed:
                break
    # -- residential ---------------------------------------------------------------------
    res = np.flatnonzero(face_region < 0)
    if len(res):
        pos = np.full(len(faces), -1, dtype=np.int64)
        pos[res] = np.arange(len(res))
        emask = (
            (pos[edges[:, 0]] >= 0) & (pos[edges[:, 1]] >= 0) if len(edges) else np.zeros(0, bool)
        )
        cen = shapely.centroid(faces[res])
        avlen = np.array([sum(c.values()) for c in ecross]) if len(edges) else np.zeros(0)
        part = GridPartitioner(
            fh[res],
            shapely.get_x(cen),
            shapely.get_y(cen),
            pos[edges[emask]] if len(edges) else edges,
            elen[emask],
            eavoid[emask],
            lo,
            hi,
            target,
            area=shapely.area(faces[res]),
            perimeter=shapely.length(faces[res]),
            edge_avoid_length=avlen[emask],
        )
        labels = part.solve()
        base = len(regions)
        face_region[res] = labels + base
        comp_of = np.empty(len(res), dtype=np.int64)
        comp_total = {}
        for ci, comp in enumerate(part._components(range(len(res)))):
            comp_of[comp] = ci
            comp_total[ci] = int(fh[res][comp].sum())
        n_comp = len(comp_total)
        for r in range(labels.max() + 1):
            m = labels == r
            hh = int(fh[res][m].sum())
            flags = []
            if hh < lo:
                ct = comp_total[int(comp_of[np.flatnonzero(m)[0]])]
                if ct < lo and n_comp == 1 and not area.units:
                    flags.append(f"below_min: area total {ct} households < {lo}")
                elif ct < lo:
                    flags.append(
                        f"below_min: part cut off by unit grids or a detached piece "
                        f"holds {ct} households < {lo}"
                    )
                else:
                    flags.append(f"below_min: {hh} households, no valid partition found")
            elif hh > hi:
                big = int(fmax[res][m].max())
                if big > hi and fn[res][m].sum() >= 1:
                    bi = np.flatnonzero((area.households == big) & np.isin(bf, res[m]))
                    bid = area.building_ids[bi[0]] if len(bi) else "?"
                    flags.append(f"above_max: building {bid} holds {big} households > {hi}")
                else:
                    flags.append(f"above_max: {hh} households, no valid partition found")
            regions.append(_Region(None, "residential", hh, int(fn[res][m].sum()), flags, {}))
    # -- geometry and crossings ----------------------------------------------------------
    for r, reg in enumerate(regions):
        fs = np.flatnonzero(face_region == r)
        geom = shapely.coverage_union_all(faces[fs]) if len(fs) > 1 else faces[fs[0]]
        if geom.geom_type != "Polygon":
            geom = shapely.union_all(faces[fs], grid_size=None)
        if geom.geom_type != "Polygon":
            reg.flags.append("multipart: faces do not join into one polygon")
        reg.geometry = geom
    _set_crossings(regions, face_region, edges, on_line, area)
    violation = sum(
        max(0, lo - g.households) + max(0, g.households - hi)
        for g in regions
        if g.kind == "residential"
        and not any(
            f.startswith(("above_max: building", "below_min: area", "below_min: part"))
            for f in g.flags
        )
    )
    building_region = np.where(bf >= 0, face_region[np.clip(bf, 0, None)], -1)
    return violation, regions, building_region


# ======================================================================================
# Public API
# ======================================================================================


@dataclass
class DelineationResult:
    """What :func:`delineate` produces.

    Attributes
    ----------
    grids
        Layer ``grids`` in EPSG:4326 with :data:`GRID_COLUMNS`.
    buildings
        The buildings with ``community_code`` and ``grid_code`` set.
    findings
        One row per avoided line crossed inside a grid and per flagged grid
        (:data:`FINDING_COLUMNS`).
    params
        Settings used, the metric CRS and what was done (for the layer metadata).
    communities
        The communities made by ``make_communities=True`` (else ``None``).
    registry
        The ``code_registry`` table after (re)coding.
    """

    grids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    findings: pd.DataFrame
    params: dict[str, Any]
    communities: gpd.GeoDataFrame | None = None
    registry: pd.DataFrame | None = None


def qualifies_as_unit(institutions: gpd.GeoDataFrame, settings: Settings = DEFAULT) -> np.ndarray:
    """Institutions that become unit grids (单位网格).

    An institution qualifies when its ``kind`` is in ``settings.grid.unit_kinds``, its area
    is at least ``unit_min_area_m2`` and its management scale is large: ``staff`` ≥
    ``unit_min_staff`` when staff is known, else ``floor_area_m2`` ≥
    ``unit_min_floor_area_m2`` when that is known (area alone decides when neither is).

    Parameters
    ----------
    institutions
        Layer ``institutions`` in a metric CRS (areas in m²).
    """
    g = settings.grid
    if institutions is None or len(institutions) == 0:
        return np.zeros(0, dtype=bool)
    kind_ok = institutions["kind"].astype("string").isin(g.unit_kinds).fillna(False).to_numpy()
    area_ok = institutions.geometry.area.to_numpy() >= g.unit_min_area_m2
    staff = (
        pd.to_numeric(institutions.get("staff"), errors="coerce")
        if "staff" in institutions
        else pd.Series(np.nan, index=institutions.index)
    )
    floor = (
        pd.to_numeric(institutions.get("floor_area_m2"), errors="coerce")
        if "floor_area_m2" in institutions
        else pd.Series(np.nan, index=institutions.index)
    )
    staff = staff.astype(float).to_numpy()
    floor = floor.astype(float).to_numpy()
    scale_ok = np.where(
        ~np.isnan(staff),
        staff >= g.unit_min_staff,
        np.where(~np.isnan(floor), floor >= g.unit_min_floor_area_m2, True),
    )
    return kind_ok & area_ok & scale_ok


def _avoid_lines(
    roads: gpd.GeoDataFrame | None, alignment: dict[str, gpd.GeoDataFrame], settings: Settings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(all cut lines, avoided lines, labels of avoided lines), metric."""
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


def _clip_lines(lines: np.ndarray, tree: STRtree | None, poly) -> np.ndarray:
    if tree is None:
        return np.empty(0, dtype=object)
    idx = tree.query(poly, predicate="intersects")
    if len(idx) == 0:
        return np.empty(0, dtype=object)
    return _lines_only(shapely.intersection(lines[idx], poly))


def _clip_labelled(
    lines: np.ndarray, labels: np.ndarray, tree: STRtree | None, poly
) -> tuple[np.ndarray, np.ndarray]:
    if tree is None:
        return np.empty(0, dtype=object), np.empty(0, dtype=object)
    idx = tree.query(poly, predicate="intersects")
    if len(idx) == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=object)
    parts, pi = shapely.get_parts(shapely.intersection(lines[idx], poly), return_index=True)
    keep = shapely.get_type_id(parts) == 1
    return parts[keep], labels[idx][pi[keep]]


def _partition_areas(
    areas: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    alignment: dict[str, gpd.GeoDataFrame],
    units: gpd.GeoDataFrame | None,
    settings: Settings,
    lo: int,
    hi: int,
    target: int,
    progress: Progress | None,
) -> tuple[list[tuple[int, _Region]], np.ndarray, np.ndarray]:
    """Partition every area polygon. Returns (area index, region) list, the global region
    index of each building (-1 outside every area) and the area index of each building."""
    cut, avoid, labels = _avoid_lines(roads, alignment, settings)
    cut_tree = STRtree(cut) if len(cut) else None
    avoid_tree = STRtree(avoid) if len(avoid) else None
    # avoided roads, whole, for the median-strip rule (the other carriageway of a divided
    # road may lie just outside the area)
    width = float(settings.grid.median_width_m)
    avoid_roads = avoid[np.array([str(lab).startswith("road:") for lab in labels], bool)]
    road_tree = STRtree(avoid_roads) if len(avoid_roads) else None
    footprints = buildings.geometry.to_numpy() if len(buildings) else np.empty(0, dtype=object)
    pts = shapely.point_on_surface(footprints) if len(buildings) else np.empty(0, dtype=object)
    hh = (
        pd.to_numeric(buildings["households"], errors="coerce")
        .fillna(0)
        .astype(np.int64)
        .to_numpy()
        if len(buildings)
        else np.empty(0, dtype=np.int64)
    )
    bids = (
        buildings["building_id"].astype(str).to_numpy()
        if len(buildings)
        else np.empty(0, dtype=object)
    )
    area_geoms = areas.geometry.to_numpy()
    b_area = _locate(area_geoms, pts)
    unit_geoms = units.geometry.to_numpy() if units is not None and len(units) else None
    unit_names = (
        units["name"].astype("string").fillna("").to_numpy()
        if unit_geoms is not None and "name" in units
        else None
    )
    unit_tree = STRtree(unit_geoms) if unit_geoms is not None else None
    total = len(area_geoms)
    by_area = np.argsort(b_area, kind="stable")
    bounds = np.searchsorted(b_area[by_area], np.arange(total + 1))

    def build(ai: int) -> _Area:
        poly = area_geoms[ai]
        shapely.prepare(poly)
        sel = by_area[bounds[ai] : bounds[ai + 1]]
        alines, alabels = _clip_labelled(avoid, labels, avoid_tree, poly)
        area_units = []
        if unit_tree is not None:
            for ui in unit_tree.query(poly, predicate="intersects"):
                part = shapely.intersection(unit_geoms[ui], poly)
                if shapely.area(part) > 1.0:
                    polys = shapely.get_parts(part)
                    polys = polys[shapely.get_type_id(polys) == 3]
                    if len(polys):
                        big = polys[np.argmax(shapely.area(polys))]
                        area_units.append((big, unit_names[ui] if unit_names is not None else None))
        near = (
            avoid_roads[road_tree.query(poly, predicate="dwithin", distance=width)]
            if road_tree is not None and width > 0
            else np.empty(0, dtype=object)
        )
        return _Area(
            poly,
            _clip_lines(cut, cut_tree, poly),
            alines,
            alabels,
            pts[sel],
            footprints[sel],
            hh[sel],
            bids[sel],
            area_units,
            near,
            width,
        )

    out: list[tuple[int, _Region]] = []
    b_region = np.full(len(pts), -1, dtype=np.int64)
    workers = _workers(total)
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        results = pool.map(
            _partition_area_args, ((build(ai), lo, hi, target) for ai in range(total)), chunksize=4
        )
    else:
        pool = None
        results = (_partition_area(build(ai), lo, hi, target) for ai in range(total))
    try:
        for ai, (regions, local) in enumerate(results):
            sel = by_area[bounds[ai] : bounds[ai + 1]]
            base = len(out)
            out.extend((ai, r) for r in regions)
            b_region[sel] = np.where(local >= 0, local + base, -1)
            if progress is not None:
                progress(ai + 1, total)
    finally:
        if pool is not None:
            pool.shutdown()
    return out, b_region, b_area


def _partition_area_args(args: tuple) -> tuple[list[_Region], np.ndarray]:
    return _partition_area(*args)


def _workers(areas: int) -> int:
    """Processes for partitioning: one per CPU (at most 8) when there are at least 40
    areas, else 1; 1 when other non-daemon threads run (a server), where forking is unsafe.
    ``GRIDGIS_WORKERS`` overrides."""
    import os
    import threading

    env = os.environ.get("GRIDGIS_WORKERS")
    if env:
        return max(1, int(env))
    if areas < 40 or sum(not t.daemon for t in threading.enumerate()) > 1:
        return 1
    return max(1, min(8, len(os.sched_getaffinity(0))))


def make_communities(
    layers: dict[str, Any],
    settings: Settings = DEFAULT,
    county_code: str | None = None,
    progress: Progress | None = None,
    close_m: float = 100.0,
    margin_m: float = 30.0,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Divide each street (or, without streets, the whole area) into communities of
    ``settings.grid.community_min_households``–``community_max_households`` by the same
    engine as grids (roads as atoms, arterials avoided).

    The whole area is the built-up area: the union of the buildings grown by ``close_m``
    metres then shrunk back to a ``margin_m`` margin (gaps narrower than ``2 · close_m``
    close; holes are filled); each separate piece is divided on its own. Roads far from
    any building (trunk roads across fields) stay outside. Codes are synthetic but valid 12-digit
    codes: the street's code (or ``county_code`` + ``001`` without streets) + a village
    sequence 001–199 numbered like grids. Every row is marked ``synthetic = True``.

    Parameters
    ----------
    county_code
        6-digit code of the county or district the area lies in (110108 for 海淀区,
        320102 for 玄武区). Required when there is no streets layer: it is the first
        6 digits of every community and grid code, and no default can know the place.

    Raises
    ------
    ValueError
        No buildings; or no streets and no ``county_code``.

    Returns
    -------
    (communities, params)
        Communities in EPSG:4326 (community_code, name, street_code, urban_rural_class,
        synthetic, households, flags) and what was done.
    """
    from gridgis.codes import number_grids, validate_street_code

    buildings = layers.get("buildings")
    roads = layers.get("roads")
    streets = layers.get("streets")
    if buildings is None or len(buildings) == 0:
        raise ValueError("layer 'buildings' is empty: communities are made from buildings")
    crs = metric_crs_for(buildings)
    bm = buildings.to_crs(crs)
    rm = roads.to_crs(crs) if roads is not None and len(roads) else None
    if streets is not None and len(streets):
        areas = streets.to_crs(crs)[["street_code", "name", "geometry"]].reset_index(drop=True)
        source = "streets"
    else:
        grown = shapely.union_all(shapely.buffer(bm.geometry.to_numpy(), close_m))
        whole = shapely.buffer(grown, -(close_m - margin_m))
        parts = shapely.get_parts(whole)
        parts = shapely.polygons(shapely.get_exterior_ring(parts[shapely.get_type_id(parts) == 3]))
        if not county_code:
            raise ValueError(
                "no streets layer: communities made from the whole area need "
                "the 6-digit code of the county/district they lie in for their "
                "codes (e.g. 110108 海淀区, 320102 玄武区): pass county_code "
                "(CLI: --county)"
            )
        street = validate_street_code(f"{county_code}001", settings)
        areas = gpd.GeoDataFrame(
            {
                "street_code": [street] * len(parts),
                "name": [f"区域{i + 1}" for i in range(len(parts))],
            },
            geometry=list(parts),
            crs=crs,
        )
        source = (
            f"built-up area: union of buildings grown {close_m:g} m, shrunk to a "
            f"{margin_m:g} m margin, holes filled"
        )
    g = settings.grid
    regions, _, _ = _partition_areas(
        areas,
        bm,
        rm,
        {},
        None,
        settings,
        g.community_min_households,
        g.community_max_households,
        g.community_target_households,
        progress,
    )
    rows = []
    for ai, reg in regions:
        flags = [
            f.replace("below_min", "community_below_min").replace(
                "above_max", "community_above_max"
            )
            for f in reg.flags
        ]
        rows.append(
            {
                "street_code": areas["street_code"].iloc[ai],
                "households": reg.households,
                "flags": "; ".join(flags),
                "geometry": reg.geometry,
            }
        )
    comm = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    seq = number_grids(comm, group="street_code")
    lo_v, hi_v = settings.codes.residents_committee_range
    if (seq > hi_v - lo_v + 1).any():
        raise ValueError(f"a street would need more than {hi_v - lo_v + 1} communities")
    comm["community_code"] = [
        f"{s}{lo_v + q - 1:03d}" for s, q in zip(comm["street_code"], seq, strict=True)
    ]
    comm["name"] = [f"社区{q}(生成)" for q in seq]
    comm["urban_rural_class"] = pd.NA
    comm["synthetic"] = True
    comm = comm.sort_values("community_code").reset_index(drop=True)
    comm = comm[
        [
            "community_code",
            "name",
            "street_code",
            "urban_rural_class",
            "synthetic",
            "households",
            "flags",
            "geometry",
        ]
    ].to_crs(STORAGE_CRS)
    params = {
        "communities_made_from": source,
        "county_code": county_code,
        "community_households": [
            g.community_min_households,
            g.community_max_households,
            g.community_target_households,
        ],
        "synthetic_codes": True,
        "computed_crs": crs.to_string(),
    }
    return comm, params


def delineate(
    layers: dict[str, Any],
    settings: Settings = DEFAULT,
    alignment: dict[str, gpd.GeoDataFrame] | None = None,
    progress: Progress | None = None,
    previous: gpd.GeoDataFrame | None = None,
    registry: pd.DataFrame | None = None,
    issued_at: str | None = None,
) -> DelineationResult:
    """Divide every community into responsibility grids and give every building its grid.

    Parameters
    ----------
    layers
        Canonical layers (EPSG:4326): ``communities`` and ``buildings`` are required;
        ``roads`` (cut lines; ``settings.grid.avoid_road_classes`` avoided), ``institutions``
        (unit grids, :func:`qualifies_as_unit`) and ``streets`` are used when present.
    settings
        ``settings.grid``: min/max/target households, unit-grid criteria, avoided road
        classes, ``recode_min_iou``.
    alignment
        Layer name -> polygons whose boundaries grids should follow (residents' groups,
        police areas, school catchments…). Boundaries are cut lines and avoided.
    progress
        ``callback(done, total)`` per community.
    previous, registry
        Grids of an earlier run and the ``code_registry``: codes are kept where a new grid
        overlaps its predecessor with IoU ≥ ``settings.grid.recode_min_iou``
        (:func:`gridgis.codes.recode`).
    issued_at
        Timestamp recorded in the registry (default: now, UTC).

    Returns
    -------
    DelineationResult
    """
    from gridgis.codes import recode

    communities = layers.get("communities")
    buildings = layers.get("buildings")
    if communities is None or len(communities) == 0:
        raise ValueError(
            "layer 'communities' is empty: import communities or run "
            "delineate --communities to make them"
        )
    if buildings is None:
        buildings = gpd.GeoDataFrame(
            {"building_id": [], "households": []}, geometry=[], crs=STORAGE_CRS
        )
    crs = metric_crs_for(communities)
    cm = communities.to_crs(crs).reset_index(drop=True)
    bm = buildings.to_crs(crs) if len(buildings) else buildings.set_crs(crs, allow_override=True)
    roads = layers.get("roads")
    rm = roads.to_crs(crs) if roads is not None and len(roads) else None
    am = {k: v.to_crs(crs) for k, v in (alignment or {}).items() if v is not None and len(v)}
    inst = layers.get("institutions")
    units = None
    if inst is not None and len(inst):
        im = inst.to_crs(crs)
        units = im[qualifies_as_unit(im, settings)].reset_index(drop=True)
    g = settings.grid
    regions, b_region, b_area = _partition_areas(
        cm,
        bm,
        rm,
        am,
        units,
        settings,
        g.min_households,
        g.max_households,
        g.target_households,
        progress,
    )
    street = (
        cm["street_code"].astype("string")
        if "street_code" in cm
        else pd.Series(pd.NA, index=cm.index, dtype="string")
    )
    rows = []
    for ai, reg in regions:
        name = reg.name
        # reported crossings: longer than a corner clipped at a junction (the audit's rule)
        crossed = {lab: m for lab, m in reg.crossed.items() if m > g.min_crossing_m}
        area = float(reg.geometry.area)
        perim = float(reg.geometry.length)
        rows.append(
            {
                "community_code": str(cm["community_code"].iloc[ai]),
                "street_code": street.iloc[ai],
                "kind": reg.kind,
                "name": name if name else pd.NA,
                "households": reg.households,
                "building_count": reg.building_count,
                "area_m2": round(area, 1),
                "polsby_popper": round(4 * math.pi * area / perim**2, 4) if perim else 0.0,
                "crossings": len(crossed),
                "flags": "; ".join(reg.flags),
                "_crossed": crossed,
                "_along": reg.along_median,
                "geometry": reg.geometry,
            }
        )
    grids = (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
        if rows
        else gpd.GeoDataFrame({c: [] for c in GRID_COLUMNS}, geometry=[], crs=crs)
    )
    rec = recode(
        grids,
        previous.to_crs(crs) if previous is not None and len(previous) else None,
        settings,
        registry=registry,
        issued_at=issued_at,
        communities=cm,
    )
    grids["grid_code"] = rec.codes
    # findings: crossings and flags
    frows = []
    for gc, cc, crossed, along, flags in zip(
        grids["grid_code"],
        grids["community_code"],
        grids["_crossed"],
        grids["_along"],
        grids["flags"],
        strict=True,
    ):
        for lab, m in sorted(crossed.items()):
            skip = (
                f"; {along[lab]:.0f} m along median strips (carriageways ≤ "
                f"{g.median_width_m:g} m apart) not counted"
                if lab in along
                else ""
            )
            frows.append(
                {
                    "grid_code": gc,
                    "community_code": cc,
                    "finding": "crosses",
                    "line": lab,
                    "length_m": round(m, 1),
                    "detail": f"grid runs across {lab} for {m:.0f} m{skip}",
                }
            )
        for f in filter(None, str(flags).split("; ")):
            frows.append(
                {
                    "grid_code": gc,
                    "community_code": cc,
                    "finding": f.split(":")[0],
                    "line": pd.NA,
                    "length_m": np.nan,
                    "detail": f,
                }
            )
    findings = pd.DataFrame(frows, columns=FINDING_COLUMNS)
    grids = grids.drop(columns=["_crossed", "_along"])
    cols = GRID_COLUMNS[:4] + ["name"] + GRID_COLUMNS[4:]
    grids = grids[cols + ["geometry"]].sort_values("grid_code").reset_index(drop=True)
    grids = grids.to_crs(STORAGE_CRS)
    # buildings
    out_b = buildings.copy()
    codes_by_region = np.asarray(rec.codes, dtype=object)
    out_b["grid_code"] = pd.array(
        np.where(b_region >= 0, codes_by_region[np.clip(b_region, 0, None)], None)
        if len(codes_by_region)
        else [None] * len(out_b),
        dtype="string",
    )
    ccodes = cm["community_code"].astype(str).to_numpy().astype(object)
    out_b["community_code"] = pd.array(
        np.where(b_area >= 0, ccodes[np.clip(b_area, 0, None)], None), dtype="string"
    )
    params = {
        "grid": {
            k: v
            for k, v in settings.to_dict()["grid"].items()
            if k
            in (
                "min_households",
                "max_households",
                "target_households",
                "unit_min_area_m2",
                "unit_min_staff",
                "unit_min_floor_area_m2",
                "unit_kinds",
                "avoid_road_classes",
                "median_width_m",
                "min_crossing_m",
                "recode_min_iou",
            )
        },
        "computed_crs": crs.to_string(),
        "alignment_layers": sorted(am),
        "algorithm": "gridgis.delineate: street-block faces + building Voronoi cells, "
        "recursive sweep bisection + repair",
        "numbering": "rows north to south (band height sqrt(community area / grids)), "
        "west to east within a row",
    }
    return DelineationResult(
        grids=grids, buildings=out_b, findings=findings, params=params, registry=rec.registry
    )


def recount(
    grids: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, settings: Settings = DEFAULT
) -> gpd.GeoDataFrame:
    """Households and building counts of grids from the buildings' ``grid_code``.

    Used after :func:`gridgis.assign.assign_all`, which puts a building in the grid
    holding most of its footprint: where that differs from the grid of its representative
    point the counts follow the assignment, and a residential grid that so leaves the
    bounds gets a flag saying why (never silently out of range).
    """
    out = grids.copy()
    hh = pd.to_numeric(buildings["households"], errors="coerce").fillna(0)
    code = buildings["grid_code"].astype("string")
    sums = hh.groupby(code).sum()
    counts = code.value_counts()
    keys = out["grid_code"].astype(str)
    new_hh = keys.map(sums).fillna(0).astype(np.int64).to_numpy()
    new_n = keys.map(counts).fillna(0).astype(np.int64).to_numpy()
    changed = new_hh != out["households"].to_numpy(dtype=np.int64)
    lo, hi = settings.grid.min_households, settings.grid.max_households
    flags = out["flags"].fillna("").astype(str).to_numpy().astype(object)
    for i in np.flatnonzero(changed & (out["kind"].to_numpy() == "residential")):
        if (new_hh[i] < lo or new_hh[i] > hi) and not flags[i]:
            side = "below_min" if new_hh[i] < lo else "above_max"
            flags[i] = (
                f"{side}: {new_hh[i]} households after buildings straddling the "
                f"grid border were assigned by largest overlap"
            )
    out["households"] = new_hh
    out["building_count"] = new_n
    out["flags"] = flags
    return out


@dataclass
class UnitGraph:
    """The atoms of one area as :class:`GridPartitioner` sees them (metric CRS).

    Attributes
    ----------
    faces
        Unit polygons (street blocks and building cells) tiling the area.
    households
        Households per unit (buildings located by representative point).
    edges, length, avoid
        Neighbouring unit pairs, shared boundary length (m), avoided-line flag.
    """

    faces: np.ndarray
    households: np.ndarray
    edges: np.ndarray
    length: np.ndarray
    avoid: np.ndarray

    def partitioner(self, settings: Settings = DEFAULT) -> GridPartitioner:
        """A :class:`GridPartitioner` on this graph with the settings' bounds."""
        cen = shapely.centroid(self.faces)
        g = settings.grid
        return GridPartitioner(
            self.households,
            shapely.get_x(cen),
            shapely.get_y(cen),
            self.edges,
            self.length,
            self.avoid,
            g.min_households,
            g.max_households,
            g.target_households,
            area=shapely.area(self.faces),
            perimeter=shapely.length(self.faces),
        )


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
    cut, avoid, labels = _avoid_lines(roads, {}, settings)
    shapely.prepare(polygon)
    lines = _clip_lines(cut, STRtree(cut) if len(cut) else None, polygon)
    alines, alabels = _clip_labelled(avoid, labels, STRtree(avoid) if len(avoid) else None, polygon)
    foot = buildings.geometry.to_numpy()
    pts = shapely.point_on_surface(foot)
    inside = shapely.intersects(polygon, pts)
    foot, pts = foot[inside], pts[inside]
    hh = (
        pd.to_numeric(buildings["households"], errors="coerce")
        .fillna(0)
        .astype(np.int64)
        .to_numpy()[inside]
    )
    faces = _polygonize(polygon, [lines])
    bf = _locate(faces, pts)
    fh = np.bincount(bf[bf >= 0], weights=hh[bf >= 0], minlength=len(faces))
    fn = np.bincount(bf[bf >= 0], minlength=len(faces))
    extra = [
        _cell_edges(faces[f], foot[bf == f], pts[bf == f])
        for f in np.flatnonzero((fh > split_above) & (fn >= 2))
    ]
    faces = _polygonize(polygon, [lines, *extra]) if extra else faces
    bf = _locate(faces, pts)
    fh = np.bincount(bf[bf >= 0], weights=hh[bf >= 0], minlength=len(faces)).astype(np.int64)
    edges, length, av, *_ = _adjacency(faces, alines, alabels)
    return UnitGraph(faces, fh, edges, length, av)
