"""Delineation of communities into responsibility grids (责任网格) of 250–500 households.

The algorithm, community by community, in the metric CRS (:func:`gridgis.crs.metric_crs_for`):

1. **Atoms** (:mod:`~gridgis.delineate.atoms`). The community polygon is cut by the road
   centrelines inside it, by the boundaries of any alignment layer and by the outlines of
   institutions that qualify as unit grids; the noded linework is polygonised into
   *faces* (street blocks) that tile the community exactly. A face holding too many
   households is subdivided into building cells (Voronoi of the outlines), so grids can
   split it along the gaps between buildings and still tile.
2. **Graph** (:mod:`~gridgis.delineate.graph`): faces sharing a boundary segment are
   neighbours; an edge lying on an avoided line (``grid.avoid_road_classes``, alignment
   boundaries) is an *avoid* edge.
3. **Partition** (:mod:`~gridgis.delineate.partition`, :mod:`~gridgis.delineate.phases`):
   split by recursive sweep bisection, repair, compact.
4. **Unit grids** (:mod:`~gridgis.delineate.units`): qualifying institutions; one holding
   more households than a grid may is divided within the band.
5. **Crossings** (:mod:`~gridgis.delineate.crossings`): the one rule shared with
   :func:`gridgis.audit.audit_grids`.
6. **Runner** (:mod:`~gridgis.delineate.runner`): one area at a time, a fork pool on large
   inputs; **flags** (:mod:`~gridgis.delineate.flags`) typed, rendered as text.
7. **Public API** (:mod:`~gridgis.delineate.api`, :mod:`~gridgis.delineate.communities`):
   :func:`delineate`, :func:`recount`, :func:`make_communities` (in a real street:
   :mod:`~gridgis.delineate.streets`); per-community statistics
   (:mod:`~gridgis.delineate.stats`); minimal-change re-grid :func:`regrid`
   (:mod:`~gridgis.delineate.regrid`).

Infeasible cases still produce grids, with a flag naming the reason.
"""

from gridgis.delineate.api import (
    FINDING_COLUMNS,
    GRID_COLUMNS,
    DelineationResult,
    delineate,
    grid_crossings,
    recount,
)
from gridgis.delineate.atoms import unit_graph
from gridgis.delineate.communities import make_communities
from gridgis.delineate.crossings import line_crossings, median_length
from gridgis.delineate.flags import Flag, FlagKind
from gridgis.delineate.graph import Adjacency, UnitGraph
from gridgis.delineate.partition import GridPartitioner
from gridgis.delineate.regrid import changed_communities, regrid
from gridgis.delineate.stats import STATS_COLUMNS, community_stats
from gridgis.delineate.units import qualifies_as_unit

__all__ = [
    "FINDING_COLUMNS",
    "GRID_COLUMNS",
    "STATS_COLUMNS",
    "Adjacency",
    "DelineationResult",
    "Flag",
    "FlagKind",
    "GridPartitioner",
    "UnitGraph",
    "community_stats",
    "delineate",
    "grid_crossings",
    "line_crossings",
    "make_communities",
    "median_length",
    "qualifies_as_unit",
    "recount",
    "regrid",
    "changed_communities",
    "unit_graph",
]
