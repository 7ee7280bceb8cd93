"""Phases of :class:`~gridgis.delineate.partition.GridPartitioner`: split, repair, compact.

1. **Split.** Zones are the components of the graph without avoided edges; zones below the
   minimum merge into a neighbouring zone (:func:`merge_small_zones`). Each zone is cut
   into ``k`` regions by recursive bisection (:func:`bisect`): grow from the extreme unit
   along the zone's longer axis in sweep order (every prefix of that order is contiguous)
   and cut at the prefix whose households are closest to the proportional share while both
   sides stay feasible.
2. **Repair** (:func:`repair`): move single units across region borders or re-split a pair
   of neighbouring regions wherever that reduces the total violation of the bounds, first
   without crossing avoided lines, then allowing it.
3. **Compact** (:func:`improve_compactness`): border units move where that raises the two
   regions' Polsby-Popper without leaving the bounds, drifting from the target (beyond a
   fifth of the band), adding crossings or breaking contiguity.

Every function takes the partitioner ``p`` (its graph, households and regions).
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gridgis.delineate.partition import GridPartitioner


# -- split ------------------------------------------------------------------------------


def merge_small_zones(p: GridPartitioner, zones: list[list[int]]) -> list[list[int]]:
    """Merge zones below the minimum into a neighbouring zone across an avoid edge:
    a zone without households into the one it shares most boundary with, others into the
    smallest neighbour (keeps the merged zone near the bounds)."""
    zid = np.empty(p.n, dtype=np.int64)
    members = {i: set(z) for i, z in enumerate(zones)}
    for i, z in enumerate(zones):
        zid[z] = i
    hh = {i: int(p.h[z].sum()) for i, z in enumerate(zones)}
    while True:
        small = sorted((hh[i], i) for i in members if hh[i] < p.lo)
        merged = False
        for _, i in small:
            shared: dict[int, float] = {}
            for u in members[i]:
                for v, length in p.graph.nbr[u].items():
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


def sweep_order(p: GridPartitioner, units: list[int], proj: np.ndarray) -> list[int]:
    """Units in the order a sweep along ``proj`` (one value per unit, ascending) reaches
    them through the graph: every prefix of the order is contiguous."""
    key = {u: float(v) for u, v in zip(units, proj, strict=True)}
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
            for v in p.graph.nbr[u]:
                if v in inside and v not in seen:
                    seen.add(v)
                    heapq.heappush(heap, (key[v], v))
    return order


def cut(
    p: GridPartitioner, units: list[int], proj: np.ndarray, goal: float, lo: float, hi: float
) -> tuple[bool, float, set[int], list[int]]:
    """Best contiguous cut of one sweep: (feasible, deviation, part A, part B)."""
    order = sweep_order(p, units, proj)
    cum = np.cumsum(p.h[order])[:-1]  # households of prefix i+1, i = 0..n-2
    dev = np.abs(cum - goal)
    feasible = (cum >= lo) & (cum <= hi)
    if feasible.any():
        dev = np.where(feasible, dev, np.inf)
    i = int(np.argmin(dev)) + 1
    a = set(order[:i])
    b_comps = p.graph.components(order[i:])
    if len(b_comps) > 1:  # enclosed pieces of B join A (they only touch A)
        b_comps.sort(key=lambda c: (int(p.h[c].sum()), len(c)), reverse=True)
        for c in b_comps[1:]:
            a.update(c)
    ha = int(p.h[list(a)].sum())
    return lo <= ha <= hi, abs(ha - goal), a, b_comps[0]


def bisect(p: GridPartitioner, units: list[int], k: int) -> list[list[int]]:
    """Split ``units`` into ``k`` contiguous regions of near-equal households.

    Sweeps along the longer axis first (compact halves); when no feasible cut exists
    there, along the longer axis backwards and the shorter axis both ways.
    """
    if k <= 1 or len(units) < 2:
        return [list(units)]
    k1 = k // 2
    k2 = k - k1
    total = int(p.h[units].sum())
    goal = total * k1 / k
    lo = max(k1 * p.lo, total - k2 * p.hi)
    hi = min(k1 * p.hi, total - k2 * p.lo)
    xs, ys = p.xs[units], p.ys[units]
    long_, short = (xs, ys) if (np.ptp(xs) >= np.ptp(ys)) else (ys, xs)
    best = None
    for proj in (long_, -long_, short, -short):
        ok, dev, a, b = cut(p, units, proj, goal, lo, hi)
        if best is None or (ok, -dev) > (best[0], -best[1]):
            best = (ok, dev, a, b)
        if ok:
            break
    _, _, a, b = best
    ka, kb = k1, k2
    ha, hb = int(p.h[list(a)].sum()), int(p.h[b].sum())
    if hb < kb * p.lo and kb > 1:  # absorbed parts left B too small for k2 regions
        kb = max(1, p.choose_k(hb))
    if ha > ka * p.hi:
        ka = max(ka, p.choose_k(ha))
    return bisect(p, sorted(a), ka) + bisect(p, sorted(b), kb)


# -- repair -----------------------------------------------------------------------------


def _move_candidates(p: GridPartitioner, r: int, allow_avoid: bool) -> list[tuple[int, int, int]]:
    """(unit, from, to) moves across r's border that could lower r's violation."""
    out = []
    for u in p.members[r]:
        for v in p.graph.nbr[u]:
            s = int(p.label[v])
            if s == r or not p.graph.ok(u, v, allow_avoid):
                continue
            if p.H[r] > p.hi:
                out.append((u, r, s))  # give u to s
            else:
                out.append((v, s, r))  # take v from s
    return out


def try_moves(p: GridPartitioner, r: int, allow_avoid: bool) -> bool:
    """Move one unit across r's border where it lowers the violation of r and the
    other region; pick the largest drop, then the most compact (longest shared border)."""
    best = None
    seen = set()
    for w, src, dst in _move_candidates(p, r, allow_avoid):
        if (w, src, dst) in seen or p.h[w] == 0:
            continue
        seen.add((w, src, dst))
        hw = int(p.h[w])
        before = p.violation(p.H[src]) + p.violation(p.H[dst])
        after = p.violation(p.H[src] - hw) + p.violation(p.H[dst] + hw)
        if after >= before or len(p.members[src]) < 2:
            continue
        nb = p.graph.nbr[w]
        to_dst = sum(length for z, length in nb.items() if p.label[z] == dst)
        to_src = sum(length for z, length in nb.items() if p.label[z] == src)
        score = (before - after, to_dst - to_src)
        if (best is None or score > best[0]) and p.graph.connected(p.members[src] - {w}):
            best = (score, w, src, dst)
    if best is None:
        return False
    _, w, src, dst = best
    p.move(w, src, dst)
    return True


def try_resplit(p: GridPartitioner, r: int, allow_avoid: bool) -> bool:
    """Pool r with one neighbouring region and bisect the pool afresh (into 1, 2 or more
    regions); keep the best pool that lowers the total violation."""
    best = None
    for s, _ in sorted(p.neighbour_regions(r, allow_avoid).items(), key=lambda kv: -kv[1]):
        pool = sorted(p.members[r] | p.members[s])
        total = p.H[r] + p.H[s]
        before = p.violation(p.H[r]) + p.violation(p.H[s])
        k0 = p.choose_k(total)
        for k in sorted({k0, max(1, k0 - 1), k0 + 1}):
            if k > len(pool):
                continue
            parts = bisect(p, pool, k)
            after = sum(p.violation(int(p.h[q].sum())) for q in parts)
            if after < before and (best is None or after < best[0]):
                best = (after, r, s, parts)
    if best is None:
        return False
    _, r, s, parts = best
    p.drop_region(r)
    p.drop_region(s)
    for q in parts:
        p.new_region(q)
    return True


def repair(p: GridPartitioner, allow_avoid: bool, max_rounds: int = 200) -> None:
    """Rounds of :func:`try_moves` / :func:`try_resplit` on the regions out of the bounds,
    worst first, until none is or nothing changes."""
    for _ in range(max_rounds):
        bad = sorted(
            (r for r in p.members if p.violation(p.H[r]) > 0),
            key=lambda r: (-p.violation(p.H[r]), r),
        )
        if not bad:
            return
        changed = False
        for r in bad:
            if r not in p.members or p.violation(p.H[r]) == 0:
                continue
            if try_moves(p, r, allow_avoid) or try_resplit(p, r, allow_avoid):
                changed = True
        if not changed:
            return


# -- compact ----------------------------------------------------------------------------


def _pp(a: float, per: float) -> float:
    """Polsby-Popper 4πA/P² (0 for no perimeter)."""
    return 4 * math.pi * a / (per * per) if per > 0 else 0.0


class _Shape:
    """Areas and perimeters of the regions, kept up to date by the compaction moves."""

    def __init__(self, p: GridPartitioner) -> None:
        self.A = {r: float(p.area_[list(m)].sum()) for r, m in p.members.items()}
        self.P = {}
        for r, m in p.members.items():
            internal = sum(length for u in m for v, length in p.graph.nbr[u].items() if v in m)
            self.P[r] = float(p.perim[list(m)].sum()) - internal  # each edge counted twice
        self.lab = p.label.tolist()  # plain lists: fast scalar access in the loop
        self.hh = p.h.tolist()
        self.area = p.area_.tolist()
        self.perim = p.perim.tolist()


def _best_compact_move(p: GridPartitioner, sh: _Shape, u: int):
    """The move of unit ``u`` to a neighbouring region with the largest Polsby-Popper gain
    that keeps bounds, balance and crossings: (gain, region, pr, ps, ar, as) or None."""
    lab, H = sh.lab, p.H
    r = lab[u]
    nb = p.graph.nbr[u]
    if not any(lab[v] != r for v in nb) or len(p.members[r]) < 2:
        return None  # an inner unit: no move to make
    to: dict[int, float] = {}
    for v, length in nb.items():
        to[lab[v]] = to.get(lab[v], 0.0) + length
    hu, to_r = sh.hh[u], to.get(r, 0.0)
    av: dict[int, float] = {}
    for v, length in p.graph.avoid_len[u].items():
        av[lab[v]] = av.get(lab[v], 0.0) + length
    av_r, base_v, base_i = av.get(r, 0.0), p.violation(H[r]), p.imbalance(H[r])
    pp_r = _pp(sh.A[r], sh.P[r])
    best = None
    for s_ in sorted(to):
        if s_ == r or p.violation(H[r] - hu) + p.violation(H[s_] + hu) > base_v + p.violation(
            H[s_]
        ):
            continue
        if hu and p.imbalance(H[r] - hu) + p.imbalance(H[s_] + hu) > base_i + p.imbalance(H[s_]):
            continue
        if av.get(s_, 0.0) > av_r + 1e-6:
            continue
        pr = sh.P[r] - sh.perim[u] + 2 * to_r
        ps = sh.P[s_] + sh.perim[u] - 2 * to[s_]
        ar, as_ = sh.A[r] - sh.area[u], sh.A[s_] + sh.area[u]
        gain = _pp(ar, pr) + _pp(as_, ps) - pp_r - _pp(sh.A[s_], sh.P[s_])
        if gain > 1e-4 and (best is None or gain > best[0]):
            best = (gain, s_, pr, ps, ar, as_)
    return best


def improve_compactness(p: GridPartitioner, max_passes: int = 6) -> None:
    """Local moves of border units that raise the two regions' summed Polsby-Popper
    (4πA/P², perimeters kept from unit perimeters and shared lengths) without worsening
    the bounds or the balance (:meth:`GridPartitioner.imbalance`), lengthening avoided-line
    crossings or breaking contiguity."""
    sh = _Shape(p)
    for _ in range(max_passes):
        moved = 0
        for u in range(p.n):
            best = _best_compact_move(p, sh, u)
            r = sh.lab[u]
            if best is None or not p.graph.connected(p.members[r] - {u}):
                continue
            _, s_, pr, ps, ar, as_ = best
            p.move(u, r, s_)
            sh.lab[u] = s_
            sh.P[r], sh.P[s_], sh.A[r], sh.A[s_] = pr, ps, ar, as_
            moved += 1
        if not moved:
            return
