"""The unit graph: units (street-block faces, building cells) and who touches whom.

One implementation of adjacency and connectivity, used by the partitioner, the unit-grid
step and the runner alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


class Adjacency:
    """Undirected graph on ``n`` units with shared boundary lengths.

    Parameters
    ----------
    n
        Number of units.
    edges
        Array (m, 2) of unit index pairs sharing a boundary.
    length
        Shared boundary length of each edge (m), shape (m,).
    avoid
        True where the shared boundary lies on an avoided line, shape (m,); default none.
    avoid_length
        Metres of each edge's shared boundary on avoided lines; default the whole length of
        avoided edges.

    Attributes
    ----------
    nbr
        ``nbr[u][v]`` = shared length (m) of units u and v.
    avoid
        ``avoid[u]`` = neighbours of u across an avoided line.
    avoid_len
        ``avoid_len[u][v]`` = metres of their shared boundary on avoided lines.
    """

    def __init__(
        self,
        n: int,
        edges: np.ndarray,
        length: np.ndarray,
        avoid: np.ndarray | None = None,
        avoid_length: np.ndarray | None = None,
    ) -> None:
        self.n = int(n)
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        length = np.asarray(length, dtype=float)
        avoid = np.zeros(len(edges), bool) if avoid is None else np.asarray(avoid, dtype=bool)
        if avoid_length is None:
            avoid_length = np.where(avoid, length, 0.0)
        self.nbr: list[dict[int, float]] = [{} for _ in range(self.n)]
        self.avoid: list[set[int]] = [set() for _ in range(self.n)]
        self.avoid_len: list[dict[int, float]] = [{} for _ in range(self.n)]
        rows = zip(
            edges[:, 0].tolist(),
            edges[:, 1].tolist(),
            length.tolist(),
            avoid.tolist(),
            np.asarray(avoid_length, dtype=float).tolist(),
            strict=True,
        )
        for a, b, ln, av, al in rows:
            if a == b:
                continue
            self.nbr[a][b] = self.nbr[a].get(b, 0.0) + ln
            self.nbr[b][a] = self.nbr[b].get(a, 0.0) + ln
            if al > 0:
                self.avoid_len[a][b] = self.avoid_len[a].get(b, 0.0) + al
                self.avoid_len[b][a] = self.avoid_len[b].get(a, 0.0) + al
            if av:
                self.avoid[a].add(b)
                self.avoid[b].add(a)

    def ok(self, u: int, v: int, allow_avoid: bool) -> bool:
        """May a region hold both u and v across their edge?"""
        return allow_avoid or v not in self.avoid[u]

    def components(self, nodes: Iterable[int], allow_avoid: bool = True) -> list[list[int]]:
        """Connected components among ``nodes`` (each sorted), in order of first node."""
        nodes = list(nodes)
        inside = set(nodes)
        seen: set[int] = set()
        out = []
        nbr, avoid = self.nbr, self.avoid
        for s in nodes:
            if s in seen:
                continue
            comp = [s]
            seen.add(s)
            stack = [s]
            while stack:
                u = stack.pop()
                # the same test as self.ok(u, v, allow_avoid), inlined (hot loop)
                barred = () if allow_avoid else avoid[u]
                for v in nbr[u]:
                    if v in inside and v not in seen and v not in barred:
                        seen.add(v)
                        comp.append(v)
                        stack.append(v)
            out.append(sorted(comp))
        return out

    def connected(self, nodes: set[int]) -> bool:
        """True when ``nodes`` (non-empty) form one connected piece."""
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

    def n_components(self, mask: np.ndarray) -> int:
        """Number of connected components among the units where ``mask`` is True."""
        return len(self.components(np.flatnonzero(mask).tolist()))


@dataclass
class UnitGraph:
    """The atoms of one area as :class:`~gridgis.delineate.partition.GridPartitioner`
    sees them (metric CRS).

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

    def partitioner(self, settings=None):
        """A :class:`~gridgis.delineate.partition.GridPartitioner` on this graph with the
        settings' bounds."""
        import shapely

        from gridgis.delineate.partition import GridPartitioner
        from gridgis.standards import DEFAULT

        cen = shapely.centroid(self.faces)
        g = (settings or DEFAULT).grid
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
            balance_tolerance=g.balance_tolerance_share,
        )
