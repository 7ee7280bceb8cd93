"""The partitioner: contiguous regions within a household band on a unit graph.

spopt-style: ``__init__`` stores the inputs, :meth:`GridPartitioner.solve` builds the graph,
runs the phases of :mod:`gridgis.delineate.phases` (split, repair, compact) and sets
``labels_``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gridgis.delineate import phases
from gridgis.delineate.graph import Adjacency


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
    area, perimeter
        Unit areas (m²) and perimeters (m): when both are given, a last phase moves border
        units to raise compactness (Polsby-Popper).
    edge_avoid_length
        Metres of each edge on avoided lines (default: whole length of avoided edges).
    balance_tolerance
        Share of the band (``max − min``) a region may drift from the target when moved for
        compactness (``grid.balance_tolerance_share``).

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
        balance_tolerance: float = 0.2,
    ) -> None:
        self.households = households
        self.x = x
        self.y = y
        self.edges = edges
        self.edge_length = edge_length
        self.edge_avoid = edge_avoid
        self.min_households = min_households
        self.max_households = max_households
        self.target_households = target_households
        self.area = area
        self.perimeter = perimeter
        self.edge_avoid_length = edge_avoid_length
        self.balance_tolerance = balance_tolerance
        self.labels_: np.ndarray | None = None
        self.region_households_: dict[int, int] = {}
        self.lo = int(min_households)
        self.hi = int(max_households)
        self.target = int(target_households)
        self._tol = (self.hi - self.lo) * float(balance_tolerance)

    # -- public -------------------------------------------------------------------------
    def solve(self) -> np.ndarray:
        """Partition the units into contiguous regions within the bounds where possible.

        Returns
        -------
        numpy.ndarray
            Region label (0..R-1) of every unit, regions numbered in order of creation.
        """
        self._prepare()
        zones = phases.merge_small_zones(
            self, self.graph.components(range(self.n), allow_avoid=False)
        )
        regions: list[list[int]] = []
        for zone in zones:
            regions.extend(phases.bisect(self, zone, self.choose_k(int(self.h[zone].sum()))))
        self.label = np.full(self.n, -1, dtype=np.int64)
        self.members: dict[int, set[int]] = {}
        self.H: dict[int, int] = {}
        self._next = 0
        for reg in regions:
            self.new_region(reg)
        for allow in (False, True):
            phases.repair(self, allow)
        if self.area_ is not None and self.perim is not None:
            phases.improve_compactness(self)
        ids = sorted(self.members)  # compact labels 0..R-1 in creation order
        remap = {r: i for i, r in enumerate(ids)}
        labels = np.array([remap[r] for r in self.label], dtype=np.int64)
        self.labels_ = labels
        self.region_households_ = {remap[r]: self.H[r] for r in ids}
        return labels

    def _prepare(self) -> None:
        """Arrays and the graph from the stored inputs."""
        self.h = np.asarray(self.households, dtype=np.int64)
        self.n = len(self.h)
        self.xs = np.asarray(self.x, dtype=float)
        self.ys = np.asarray(self.y, dtype=float)
        self.area_ = None if self.area is None else np.asarray(self.area, dtype=float)
        self.perim = None if self.perimeter is None else np.asarray(self.perimeter, dtype=float)
        self.lo = int(self.min_households)
        self.hi = int(self.max_households)
        self.target = int(self.target_households)
        self._tol = (self.hi - self.lo) * float(self.balance_tolerance)
        self.graph = Adjacency(
            self.n, self.edges, self.edge_length, self.edge_avoid, self.edge_avoid_length
        )

    def choose_k(self, total: int) -> int:
        """Number of regions for ``total`` households: nearest ``total / target`` that keeps
        the mean inside ``[min, max]`` (1 when ``total < 2·min``)."""
        lo, hi = int(self.min_households), int(self.max_households)
        if total < 2 * lo:
            return 1
        kmin = math.ceil(total / hi)
        kmax = total // lo
        k = max(1, round(total / int(self.target_households)))
        return int(min(max(k, kmin), kmax)) if kmin <= kmax else int(kmin)

    def imbalance(self, households: int) -> float:
        """Households beyond a tolerance (``balance_tolerance`` of the band) around the
        target: moves for compactness may not add to it (balance before shape)."""
        d = abs(households - self.target) - self._tol
        return d if d > 0 else 0.0

    def violation(self, households: int) -> int:
        """Households outside the bounds (0 when ``min ≤ households ≤ max``)."""
        if households < self.lo:
            return self.lo - households
        return households - self.hi if households > self.hi else 0

    # -- region bookkeeping (used by the phases) ----------------------------------------
    def new_region(self, units) -> int:
        """Open a region holding ``units``; returns its id."""
        r = self._next
        self._next += 1
        self.members[r] = set(int(u) for u in units)
        self.label[list(self.members[r])] = r
        self.H[r] = int(self.h[list(self.members[r])].sum())
        return r

    def drop_region(self, r: int) -> None:
        """Forget region ``r`` (its units are about to join new regions)."""
        del self.members[r]
        del self.H[r]

    def move(self, u: int, r: int, s: int) -> None:
        """Move unit ``u`` from region ``r`` to region ``s``."""
        self.members[r].discard(u)
        self.members[s].add(u)
        self.label[u] = s
        self.H[r] -= int(self.h[u])
        self.H[s] += int(self.h[u])

    def neighbour_regions(self, r: int, allow_avoid: bool) -> dict[int, float]:
        """Regions touching ``r`` -> shared boundary length (m)."""
        out: dict[int, float] = {}
        for u in self.members[r]:
            for v, length in self.graph.nbr[u].items():
                s = int(self.label[v])
                if s != r and self.graph.ok(u, v, allow_avoid):
                    out[s] = out.get(s, 0.0) + length
        return out
