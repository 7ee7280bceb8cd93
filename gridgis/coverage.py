"""Who is left out: walking distance to every facility category, coverage rates, gaps, norms.

For every residential building (households > 0) and every category with a service radius
(``settings.coverage.radius_m``), :func:`compute_access` gives the walking distance to the
nearest facility (one multi-source Dijkstra per category over the walking graph of
:mod:`gridgis.network`, facility leg + network path + building leg) and the straight-line
distance (STRtree nearest). Greens and parks come from ``green_spaces`` and are reached at
their boundary (entry points), not their centroid.

:func:`coverage_rates` sums households covered per street, community and grid, with the
15-minute life-circle completeness (``life_circle``) and the park service-radius coverage
rate against the national floor; :func:`coverage_gaps` draws the uncovered residential
area; :func:`community_norms` checks service floor area, workers and office area.
:func:`run_coverage` does all of it. Everything is computed in the metric CRS of the data
and returned in EPSG:4326 with the parameters used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components, dijkstra

from gridgis.crs import STORAGE_CRS
from gridgis.network import (
    RoadNetwork,
    Snaps,
    WalkGraph,
    attach_points,
    build_network,
    far_snap_findings,
)
from gridgis.spatial import points_in_polygons, rank_of
from gridgis.standards import DEFAULT, Settings

LIFE_CIRCLE = "life_circle"
"""Pseudo-category: every ``settings.coverage.life_circle_categories`` category within the
15-minute walk (``settings.coverage.life_circle_15min_m``)."""
GREEN_CATEGORIES = ("green", "park")
NO_DATA = "no_data"
"""Status of a category with no facility (or green space) in the workspace: its rates,
gaps and norms are unknown, not 0 %."""
NO_NETWORK = "no_network"
"""Status of a building farther than ``coverage.max_snap_m`` from every kept piece of the
walking network: its walks are unknown (the road data does not reach it), so it counts
neither as covered nor as a gap, and rates are over the households whose walks are
known."""
UNKNOWN = (NO_DATA, NO_NETWORK)
"""Statuses whose rows say nothing about coverage."""
"""Categories served by ``green_spaces`` polygons (reached at their boundary)."""

ACCESS_METHOD = (
    "walk_m = facility leg + shortest network path + building leg, one multi-source "
    "Dijkstra (scipy.sparse.csgraph, min_only) per category over the walking graph; "
    "buildings (representative point) and facilities snapped once to the nearest point "
    "on an edge, edge split there; straight_m = STRtree nearest straight-line distance; "
    "greens and parks reached at boundary entry points (boundary ∩ roads, boundary points "
    "near the network, the boundary point nearest the network)"
)
GAP_METHOD = (
    "uncovered residential buildings' footprints buffered by gap_buffer_m, dissolved per "
    "community and category (per cluster of touching buffers), clipped to the community "
    "polygon"
)
PARK_BASIS = (
    "households (residential land use is absent: the park service-radius coverage "
    "rate counts households in residential buildings within the walking radius)"
)


@dataclass
class Access:
    """Walking and straight-line access of every residential building to every category.

    Attributes
    ----------
    table
        Long format: building_id, category, walk_m, straight_m, radius_m, covered,
        covered_straight, walk_min, households. ``walk_m`` is NaN where no facility of the
        category is reachable (none exists, or the building is off the network).
    buildings
        The residential buildings (metric CRS) in the order of the search, with
        ``households`` and their representative ``point``.
    graph
        The walking graph the searches ran on (kept for siting and checks).
    node
        Graph node of each residential building (-1 when not matched).
    sources
        For each category, the graph nodes the search started from.
    findings
        Disconnected road pieces and points too far from the network.
    params
        Parameters and method notes for the output metadata.
    """

    table: pd.DataFrame
    buildings: gpd.GeoDataFrame
    graph: WalkGraph
    node: NDArray[np.int64]
    sources: dict[str, NDArray[np.int64]]
    findings: gpd.GeoDataFrame
    params: dict[str, Any] = field(default_factory=dict)
    facility_nodes: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {"facility_id": [], "category": [], "node": [], "point": []}
        )
    )


def coverage_params(settings: Settings, crs: pyproj.CRS) -> dict[str, Any]:
    """The parameters every coverage output records."""
    cov = settings.coverage
    epsg = crs.to_epsg()
    return {
        "computed_crs": f"EPSG:{epsg}" if epsg else crs.to_string(),
        "coverage": settings.to_dict()["coverage"],
        "walk_speed_kmh": cov.walk_speed_kmh,
        "radius_m": dict(cov.radius_m),
        "life_circle_15min_m": cov.life_circle_15min_m,
        "access_method": ACCESS_METHOD,
    }


def residential_buildings(buildings: gpd.GeoDataFrame, crs: pyproj.CRS) -> gpd.GeoDataFrame:
    """Buildings with households > 0, in ``crs``, with a representative ``point`` column."""
    hh = pd.to_numeric(buildings["households"], errors="coerce").fillna(0)
    res = buildings.loc[hh.to_numpy() > 0].to_crs(crs)
    res = res.assign(households=hh[hh > 0].astype(np.int64).to_numpy())
    res["point"] = shapely.point_on_surface(res.geometry.values)
    return res.reset_index(drop=True)


def green_targets(
    green_spaces: gpd.GeoDataFrame | None, crs: pyproj.CRS, settings: Settings
) -> dict[str, gpd.GeoDataFrame]:
    """Green spaces that count for "300 m to green" and "500 m to a park".

    green: any kind with area ≥ ``green_min_area_m2``; park: kind park with area ≥
    ``park_min_area_m2`` and at least ``park_min_width_m`` wide (a negative buffer of half
    the width leaves something).
    """
    cov = settings.coverage
    if green_spaces is None or len(green_spaces) == 0:
        empty = gpd.GeoDataFrame(
            {"green_id": pd.Series(dtype="object")}, geometry=gpd.GeoSeries([], crs=crs), crs=crs
        )
        return {"green": empty, "park": empty}
    g = green_spaces.to_crs(crs).reset_index(drop=True)
    area = g.geometry.area.to_numpy()
    wide = ~shapely.is_empty(shapely.buffer(g.geometry.values, -cov.park_min_width_m / 2.0))
    is_park = (g["kind"].astype(str).to_numpy() == "park") & (area >= cov.park_min_area_m2) & wide
    return {
        "green": g.loc[area >= cov.green_min_area_m2].reset_index(drop=True),
        "park": g.loc[is_park].reset_index(drop=True),
    }


def entry_points(
    polygons: NDArray[np.object_],
    net: RoadNetwork,
    settings: Settings,
    gates: NDArray[np.object_] | None = None,
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Entry points of polygons from the walking network, on their boundary.

    A polygon with gates (points within ``network.gate_snap_m`` of its boundary) is
    entered at its gates only. Otherwise entries are (1) where the boundary meets a road
    line, (2) boundary points every ``green_entry_spacing_m`` whose nearest edge is
    within ``green_entry_max_m``, and (3) the boundary point nearest the network (so
    every polygon has at least one).

    Returns
    -------
    points, owner
        Entry points (metric CRS) and the index of the polygon each belongs to.
    """
    polygons = np.asarray(polygons, dtype=object)
    if len(polygons) == 0:
        return np.array([], dtype=object), np.array([], dtype=np.int64)
    boundary = shapely.boundary(polygons)
    gated = np.zeros(len(polygons), dtype=bool)
    pts, owner = [], []
    if gates is not None and len(gates):
        gi, pi = shapely.STRtree(boundary).query(
            np.asarray(gates, dtype=object),
            predicate="dwithin",
            distance=settings.network.gate_snap_m,
        )
        gated[pi] = True
        pts.append(np.asarray(gates, dtype=object)[gi])
        owner.append(pi)
        if gated.all():
            return np.concatenate(pts), np.concatenate(owner).astype(np.int64)
    free = np.flatnonzero(~gated)
    entries, of = _boundary_entries(polygons[free], boundary[free], net, settings)
    pts.append(entries)
    owner.append(free[of])
    return np.concatenate(pts), np.concatenate(owner).astype(np.int64)


def _boundary_entries(
    polygons: NDArray[np.object_],
    boundary: NDArray[np.object_],
    net: RoadNetwork,
    settings: Settings,
) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Entries of polygons without gates (see :func:`entry_points`)."""
    cov = settings.coverage
    if len(polygons) == 0:
        return np.array([], dtype=object), np.array([], dtype=np.int64)
    pts, owner = [], []
    # (1) boundary ∩ roads
    bi, ei = net.tree.query(boundary, predicate="intersects")
    if len(bi):
        inter = shapely.intersection(boundary[bi], net.edge_geom[ei])
        coords, which = shapely.get_coordinates(inter, return_index=True)
        pts.append(shapely.points(coords))
        owner.append(bi[which])
    # (2) sampled boundary points near the network
    perim = shapely.length(boundary)
    n_samples = np.maximum(np.ceil(perim / cov.green_entry_spacing_m).astype(int), 1)
    rep = np.repeat(np.arange(len(polygons)), n_samples)
    start = np.repeat(np.cumsum(n_samples) - n_samples, n_samples)
    along = (np.arange(len(rep)) - start) * (perim[rep] / n_samples[rep])
    samples = shapely.line_interpolate_point(boundary[rep], along)
    near, _ = net.tree.query_nearest(samples, max_distance=cov.green_entry_max_m, all_matches=False)
    pts.append(samples[near])
    owner.append(rep[near])
    # (3) the boundary point nearest the network
    pi, ej = net.tree.query_nearest(boundary, all_matches=False)
    nearest = shapely.get_point(shapely.shortest_line(boundary[pi], net.edge_geom[ej]), 0)
    pts.append(nearest)
    owner.append(pi)
    return np.concatenate(pts), np.concatenate(owner).astype(np.int64)


def _straight(points: NDArray[np.object_], targets: NDArray[np.object_]) -> NDArray[np.float64]:
    """Straight-line distance from each point to the nearest target geometry, metres."""
    out = np.full(len(points), np.nan)
    if len(targets) == 0 or len(points) == 0:
        return out
    (pi, _), dist = shapely.STRtree(targets).query_nearest(
        points, all_matches=False, return_distance=True
    )
    out[pi] = dist
    return out


def compute_access(
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame | None,
    green_spaces: gpd.GeoDataFrame | None = None,
    settings: Settings = DEFAULT,
    categories: list[str] | None = None,
    crs: pyproj.CRS | None = None,
    extra_points: NDArray[np.object_] | None = None,
    progress: Callable[[int, int], None] | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    gates: gpd.GeoDataFrame | None = None,
    extra_zones: NDArray[np.int64] | None = None,
    network: RoadNetwork | None = None,
) -> Access:
    """Walking and straight-line distance from every residential building to every category.

    Parameters
    ----------
    buildings, roads, facilities, green_spaces
        Canonical layers (any CRS; EPSG:4326 when read from a workspace).
    settings
        ``settings.coverage``: radii (m), life circle, green/park thresholds, max snap (m).
    categories
        Categories to compute; default every category of ``settings.coverage.radius_m``.
    crs
        Metric CRS; default the 3-degree Gauss–Krüger zone of the roads.
    extra_points
        More points (metric CRS) to attach to the same graph, e.g. siting candidates;
        their nodes are ``graph.point_node[-len(extra_points):]``.
    progress
        Called as ``progress(done, total)`` after each category.
    compounds, gates
        Optional walled compounds and their gates: walks cross a wall only at an open
        gate, buildings inside reach the street only through them
        (:func:`gridgis.network.make_walls`); parks with gates are entered at them.
    extra_zones
        Compound of each of ``extra_points`` as :func:`gridgis.network.snap_points`
        takes it (default: where each stands).
    network
        A walking network already built (a partition's piece of the city's network,
        :mod:`gridgis.partitioned`); ``roads`` is then not read.

    Returns
    -------
    Access
        ``walk_m >= straight_m`` for every building and category (checked).
    """
    cov = settings.coverage
    net = (
        network
        if network is not None
        else build_network(roads, settings, crs, compounds=compounds, gates=gates)
    )
    crs = net.crs
    cats = list(categories) if categories is not None else list(cov.radius_m)
    unknown = [c for c in cats if c not in cov.radius_m]
    if unknown:
        raise KeyError(f"categories {unknown}: no service radius in settings.coverage.radius_m")
    res = residential_buildings(buildings, crs)
    fac = (
        facilities.to_crs(crs).reset_index(drop=True)
        if facilities is not None and len(facilities)
        else None
    )
    fac_cats = [c for c in cats if c not in GREEN_CATEGORIES]
    if fac is not None:
        fac = fac.loc[fac["category"].isin(fac_cats)].reset_index(drop=True)
        fac_pts = shapely.point_on_surface(fac.geometry.values)
    else:
        fac_pts = np.array([], dtype=object)
    greens = green_targets(green_spaces, crs, settings)
    gate_pts = _points_of(gates, crs)
    entries = {}
    for cat in GREEN_CATEGORIES:
        if cat in cats:
            entries[cat] = entry_points(greens[cat].geometry.values, net, settings, gate_pts)

    parts = [res["point"].to_numpy(), fac_pts, *[e[0] for e in entries.values()]]
    if extra_points is not None:
        parts.append(np.asarray(extra_points, dtype=object))
    graph = _attach_all(net, np.concatenate(parts), cov.max_snap_m, extra_zones)
    offsets = np.cumsum([0, *[len(p) for p in parts]])
    node_b = graph.point_node[: len(res)]
    node_f = graph.point_node[offsets[1] : offsets[2]]

    found = _access_findings(net, graph, res, fac, fac_pts, offsets, cov.max_snap_m)

    points = res["point"].to_numpy()
    sources: dict[str, NDArray[np.int64]] = {}
    frames = []
    for cat in cats:
        if cat in GREEN_CATEGORIES:
            i = 2 + list(entries).index(cat)
            src = graph.point_node[offsets[i] : offsets[i + 1]]
            targets = greens[cat].geometry.values
        else:
            mask = fac["category"].to_numpy() == cat if fac is not None else np.zeros(0, bool)
            src = node_f[mask]
            targets = fac.geometry.values[mask] if fac is not None else np.array([], object)
        src = np.unique(src[src >= 0])
        sources[cat] = src
        walk = np.full(len(res), np.nan)
        if len(src) and len(res):
            dist = dijkstra(graph.matrix, directed=False, indices=src, min_only=True)
            ok = node_b >= 0
            walk[ok] = dist[node_b[ok]]
            walk[~np.isfinite(walk)] = np.nan
        straight = _straight(points, targets)
        frame = _access_frame(res, cat, walk, straight, cov.radius_m[cat], cov)
        frame["status"] = NO_DATA if len(src) == 0 else np.where(node_b >= 0, "ok", NO_NETWORK)
        frames.append(frame)
        if progress is not None:
            progress(len(frames), len(cats))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    no_data = [c for c in cats if len(sources[c]) == 0]
    table, lc, lc_missing = _with_life_circle(table, cats, no_data, res, cov)

    params = coverage_params(settings, crs)
    params.update(
        {
            "categories": cats,
            "life_circle_categories": lc,
            "life_circle_no_data": lc_missing,
            "no_data_categories": no_data,
            "network": net.stats,
            "warnings": list(net.warnings),
            "buildings_residential": int(len(res)),
            "buildings_off_network": int((node_b < 0).sum()),
            "sources": {c: int(len(s)) for c, s in sources.items()},
        }
    )
    return Access(
        table=table,
        buildings=res,
        graph=graph,
        node=node_b,
        sources=sources,
        facility_nodes=_facility_nodes(fac, node_f, offsets[1]),
        findings=found,
        params=params,
    )


def _access_findings(net, graph, res, fac, fac_pts, offsets, max_snap_m) -> gpd.GeoDataFrame:
    """The network's findings, then buildings and facilities too far from it."""
    crs = net.crs
    findings = [
        net.findings,
        far_snap_findings(
            _slice_snaps(graph, 0, len(res)),
            res["building_id"],
            "buildings",
            max_snap_m,
            res["point"].to_numpy(),
            crs,
        ),
    ]
    if fac is not None and len(fac):
        findings.append(
            far_snap_findings(
                _slice_snaps(graph, offsets[1], offsets[2]),
                fac["facility_id"],
                "facilities",
                max_snap_m,
                fac_pts,
                crs,
            )
        )
    found = (
        pd.concat([f for f in findings if len(f)], ignore_index=True)
        if any(len(f) for f in findings)
        else findings[0]
    )
    return gpd.GeoDataFrame(found, geometry="geometry", crs=crs)


def _with_life_circle(
    table: pd.DataFrame, cats: list[str], no_data: list[str], res, cov
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The life-circle rows added, completeness over the categories with data (status
    ``partial`` when some have none). Returns the table, the life-circle categories used
    and those without data."""
    lc = list(cov.life_circle_categories)
    if not set(lc) <= set(cats):
        lc = []  # a partial run (e.g. siting one category): no life-circle completeness
    lc_missing = [c for c in lc if c in no_data]
    lc = [c for c in lc if c not in no_data]
    if lc and len(table):
        life = _life_circle_rows(table, lc, res, cov)
        first = table.loc[table["category"] == lc[0], "status"].to_numpy()
        life["status"] = np.where(
            first == NO_NETWORK, NO_NETWORK, "partial" if lc_missing else "ok"
        )
        table = pd.concat([table, life], ignore_index=True)
    return table, lc, lc_missing


def _facility_nodes(fac, node_f: NDArray, first: int) -> pd.DataFrame:
    """facility_id, category, graph node and point position of each facility searched."""
    if fac is None or len(fac) == 0:
        return pd.DataFrame({"facility_id": [], "category": [], "node": [], "point": []})
    return pd.DataFrame(
        {
            "facility_id": fac["facility_id"].astype(str).to_numpy(),
            "category": fac["category"].astype(str).to_numpy(),
            "node": np.asarray(node_f, dtype=np.int64),
            "point": first + np.arange(len(fac)),
        }
    )


def _attach_all(
    net: RoadNetwork, points: NDArray[np.object_], max_snap_m: float, extra_zones
) -> WalkGraph:
    """Attach every point; inside walled compounds by where it stands, the trailing
    ``extra_zones`` points as given."""
    zone = None
    if net.walls is not None:
        zone = net.walls.zone_of(points)
        if extra_zones is not None and len(extra_zones):
            zone[len(points) - len(extra_zones) :] = extra_zones
    return attach_points(net, points, max_snap_m, zone)


def _points_of(frame: gpd.GeoDataFrame | None, crs: pyproj.CRS) -> NDArray[np.object_] | None:
    """2-D points of a point layer in ``crs`` (None when absent or empty)."""
    if frame is None or len(frame) == 0:
        return None
    return shapely.force_2d(np.asarray(frame.to_crs(crs).geometry.values, dtype=object))


def _slice_snaps(graph: WalkGraph, a: int, b: int) -> Snaps:
    s = graph.snaps
    return Snaps(s.edge[a:b], s.offset_m[a:b], s.snap_m[a:b])


def _access_frame(
    res: gpd.GeoDataFrame, cat: str, walk: NDArray, straight: NDArray, radius: float, cov
) -> pd.DataFrame:
    bad = walk < straight - 1e-6
    if bad.any():
        raise AssertionError(
            f"{cat}: walk_m shorter than straight_m for {int(bad.sum())} buildings (network bug)"
        )
    walk = np.where(np.isnan(walk), np.nan, np.maximum(walk, straight))
    return pd.DataFrame(
        {
            "building_id": res["building_id"].astype(str).to_numpy(),
            "category": cat,
            "walk_m": walk,
            "straight_m": straight,
            "radius_m": float(radius),
            "covered": np.nan_to_num(walk, nan=np.inf) <= radius,
            "covered_straight": np.nan_to_num(straight, nan=np.inf) <= radius,
            "walk_min": walk / (cov.walk_speed_kmh * 1000.0 / 60.0),
            "households": res["households"].to_numpy(),
        }
    )


def _life_circle_rows(
    table: pd.DataFrame, lc: list[str], res: gpd.GeoDataFrame, cov
) -> pd.DataFrame:
    """One row per building: walk_m = the walk to the farthest required category (NaN when
    one is unreachable), covered when it is within the 15-minute walk."""
    sub = table[table["category"].isin(lc)]

    def farthest(column: str) -> NDArray:
        d = sub[column].to_numpy().reshape(len(lc), len(res))
        return np.where(
            np.isnan(d).any(axis=0), np.nan, np.max(np.where(np.isnan(d), -np.inf, d), axis=0)
        )

    return _access_frame(
        res, LIFE_CIRCLE, farthest("walk_m"), farthest("straight_m"), cov.life_circle_15min_m, cov
    )


# --------------------------------------------------------------------------------------
# Areas: which street, community and grid each building is in
# --------------------------------------------------------------------------------------


def _located(points, polygons, rank, tree=None) -> tuple[NDArray, NDArray]:
    """(point, polygon) pairs by the one point-in-polygon rule of :mod:`gridgis.spatial`
    (interior wins, boundary points to the smallest rank; each point counted once)."""
    where = points_in_polygons(np.asarray(points, dtype=object), polygons, rank, tree)
    pi = np.flatnonzero(where >= 0)
    return pi, where[pi]


def building_areas(
    res: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame | None,
    grids: gpd.GeoDataFrame | None = None,
) -> pd.DataFrame:
    """street_code, community_code and grid_code of each residential building.

    The building's representative point is located in the communities (STRtree); the
    street comes from the community's ``street_code``. The grid comes from the building's
    own ``grid_code`` when present (written by ``gridgis assign``/delineation), else from
    the grids layer when given, else it is missing.
    """
    out = pd.DataFrame(
        {
            "building_id": res["building_id"].astype(str).to_numpy(),
            "community_code": pd.NA,
            "street_code": pd.NA,
            "grid_code": pd.NA,
        },
        dtype="object",
    )
    pts = res["point"].to_numpy()
    if communities is not None and len(communities):
        comm = communities.to_crs(res.crs).reset_index(drop=True)
        rank = rank_of(comm["community_code"].astype(str).to_numpy())
        pi, ci = _located(pts, comm.geometry.values, rank)
        out.loc[pi, "community_code"] = comm["community_code"].astype(str).to_numpy()[ci]
        out.loc[pi, "street_code"] = comm["street_code"].astype(str).to_numpy()[ci]
    if "grid_code" in res.columns and res["grid_code"].notna().any():
        out["grid_code"] = res["grid_code"].astype("object").to_numpy()
    elif grids is not None and len(grids):
        g = grids.to_crs(res.crs).reset_index(drop=True)
        pi, gi = _located(pts, g.geometry.values, rank_of(g["grid_code"].astype(str).to_numpy()))
        out.loc[pi, "grid_code"] = g["grid_code"].astype(str).to_numpy()[gi]
    return out


def coverage_rates(
    access: Access, areas: pd.DataFrame, settings: Settings = DEFAULT
) -> pd.DataFrame:
    """Households covered per street, community and grid, per category.

    Returns
    -------
    pandas.DataFrame
        level (street | community | grid), code, category, households, households_known
        (those whose walks are known: buildings beyond ``coverage.max_snap_m`` from the
        network, status :data:`NO_NETWORK`, are left out), households_covered, rate
        (walking, over households_known; NaN and status ``no_network`` when none is known),
        households_covered_straight, rate_straight (straight-line buffer, overstates),
        floor and pass (park: rate > ``park_coverage_floor``).
    """
    t = access.table.merge(areas, on="building_id", how="left")
    if "status" not in t.columns:
        t["status"] = "ok"
    walked = t["status"].to_numpy() != NO_NETWORK
    t["hh_known"] = np.where(walked, t["households"], 0)
    t["hh_cov"] = np.where(t["covered"] & walked, t["households"], 0)
    t["hh_cov_s"] = np.where(t["covered_straight"] & walked, t["households"], 0)
    t["status"] = t["status"].where(walked, "ok")  # a category's status, not a building's
    out = []
    for level in ("street", "community", "grid"):
        key = f"{level}_code"
        sub = t[t[key].notna()]
        if sub.empty:
            continue
        g = (
            sub.groupby([key, "category"], sort=True)
            .agg(
                households=("households", "sum"),
                households_known=("hh_known", "sum"),
                households_covered=("hh_cov", "sum"),
                households_covered_straight=("hh_cov_s", "sum"),
                status=("status", "first"),
            )
            .reset_index()
        )
        g = g.rename(columns={key: "code"})
        g.insert(0, "level", level)
        out.append(g)
    cols = [
        "level",
        "code",
        "category",
        "households",
        "households_known",
        "households_covered",
        "rate",
        "households_covered_straight",
        "rate_straight",
        "floor",
        "pass",
        "status",
    ]
    if not out:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    rates = pd.concat(out, ignore_index=True)
    hh = rates["households_known"].to_numpy(dtype=float)
    known = (hh > 0) & (rates["status"].to_numpy() != NO_DATA)
    rates.loc[(hh == 0) & (rates["households"].to_numpy() > 0), "status"] = NO_NETWORK
    rates["rate"] = np.where(known, rates["households_covered"] / np.maximum(hh, 1), np.nan)
    rates["rate_straight"] = np.where(
        known, rates["households_covered_straight"] / np.maximum(hh, 1), np.nan
    )
    floor = settings.coverage.park_coverage_floor
    is_park = rates["category"].to_numpy() == "park"
    rates["floor"] = np.where(is_park, floor, np.nan)
    rates["pass"] = pd.array(np.where(is_park, rates["rate"] > floor, False), dtype="boolean")
    rates.loc[~is_park | ~known, "pass"] = pd.NA
    for c in (
        "households",
        "households_known",
        "households_covered",
        "households_covered_straight",
    ):
        rates[c] = rates[c].astype(np.int64)
    return rates[cols]


def coverage_gaps(
    access: Access,
    areas: pd.DataFrame,
    communities: gpd.GeoDataFrame | None,
    settings: Settings = DEFAULT,
) -> gpd.GeoDataFrame:
    """Uncovered residential area per category and community, as polygons (metric CRS).

    Method: :data:`GAP_METHOD`. Columns: community_code, category, households (uncovered),
    buildings (uncovered), area_m2, geometry.
    """
    crs = access.buildings.crs
    cols = ["community_code", "category", "households", "buildings", "area_m2"]
    uncovered = ~access.table["covered"].to_numpy()
    if "status" in access.table.columns:  # no facility data or no road: unknown, not a gap
        uncovered &= ~access.table["status"].isin(UNKNOWN).to_numpy()
    t = access.table.loc[uncovered, ["building_id", "category", "households"]]
    t = t.merge(areas[["building_id", "community_code"]], on="building_id", how="left")
    t = t[t["community_code"].notna()]
    if t.empty:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype="object") for c in cols},
            geometry=gpd.GeoSeries([], crs=crs),
            crs=crs,
        )
    res = access.buildings
    pos = pd.Series(np.arange(len(res)), index=res["building_id"].astype(str).to_numpy())
    buffered = shapely.buffer(res.geometry.values, settings.coverage.gap_buffer_m, quad_segs=2)
    # clusters of buildings whose buffers touch: a group's dissolved area is the disjoint
    # collection of its per-cluster unions ("chunks"); identical chunks are dissolved once
    a, b = shapely.STRtree(buffered).query(buffered, predicate="intersects")
    _, cluster = connected_components(
        csr_array((np.ones(len(a)), (a, b)), shape=(len(res), len(res))), directed=False
    )
    t["pos"] = pos.loc[t["building_id"].to_numpy()].to_numpy()
    t["cluster"] = cluster[t["pos"].to_numpy()]
    t = t.sort_values(["community_code", "category", "cluster", "pos"]).reset_index(drop=True)
    comm_codes, comm_idx = np.unique(
        t["community_code"].astype(str).to_numpy(), return_inverse=True
    )
    cat_codes, cat_idx = np.unique(t["category"].astype(str).to_numpy(), return_inverse=True)
    group = comm_idx * len(cat_codes) + cat_idx
    # a chunk: the members of one group inside one cluster (consecutive rows)
    cl = t["cluster"].to_numpy()
    new_chunk = np.r_[True, (group[1:] != group[:-1]) | (cl[1:] != cl[:-1])]
    chunk = np.cumsum(new_chunk) - 1
    # identical chunks (same community, same buildings; many categories share them) once
    rng = np.random.default_rng(0)
    tag = rng.integers(1, 2**62, size=len(res), dtype=np.int64)
    members_hash = np.bitwise_xor.reduceat(tag[t["pos"].to_numpy()], np.flatnonzero(new_chunk))
    first = np.flatnonzero(new_chunk)
    chunk_key = np.stack([comm_idx[first], cl[first], members_hash], axis=1)
    _, uniq_first, chunk_uniq = np.unique(chunk_key, axis=0, return_index=True, return_inverse=True)
    chunk_uniq = chunk_uniq.ravel()
    # padded (unique chunk x member) array of buffers, dissolved in one vectorised call
    row_uniq = chunk_uniq[chunk]
    is_rep = np.isin(chunk, uniq_first)
    rows = np.flatnonzero(is_rep)
    starts = np.r_[0, np.flatnonzero(np.diff(chunk[rows])) + 1]
    col = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    pad = np.full((len(uniq_first), int(col.max()) + 1), None, dtype=object)
    pad[row_uniq[rows], col] = buffered[t["pos"].to_numpy()[rows]]
    shapes = shapely.union_all(pad, axis=1)
    if communities is not None and len(communities):
        comm = communities.to_crs(crs)
        lookup = dict(zip(comm["community_code"].astype(str), comm.geometry.values, strict=True))
        clip = np.array([lookup.get(c) for c in comm_codes], dtype=object)
        shapes = shapely.intersection(shapes, clip[comm_idx[first][uniq_first]])
    # each group: the disjoint polygons of its chunks
    group_chunks_first = first[np.r_[True, group[first][1:] != group[first][:-1]]]
    group_of_chunk = np.cumsum(np.r_[True, group[first][1:] != group[first][:-1]]) - 1
    parts, part_idx = shapely.get_parts(shapes[chunk_uniq], return_index=True)
    poly = shapely.get_type_id(parts) == 3
    gi = group[group_chunks_first]
    geoms = np.full(len(gi), None, dtype=object)
    if poly.any():
        shapely.multipolygons(parts[poly], indices=group_of_chunk[part_idx[poly]], out=geoms)
    agg = t.groupby(group, sort=True)["households"].agg(["sum", "size"])
    keys = [(comm_codes[g // len(cat_codes)], cat_codes[g % len(cat_codes)]) for g in gi]
    hh = agg.loc[gi, "sum"].to_numpy()
    nb = agg.loc[gi, "size"].to_numpy()
    gaps = gpd.GeoDataFrame(
        {
            "community_code": [k[0] for k in keys],
            "category": [k[1] for k in keys],
            "households": np.asarray(hh, dtype=np.int64),
            "buildings": np.asarray(nb, np.int64),
        },
        geometry=geoms,
        crs=crs,
    )
    gaps["area_m2"] = gaps.geometry.area.round(1)
    return gaps[[*cols, "geometry"]]


def valid_polygons(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Repair polygons reprojection made invalid (parts touching at a vertex can cross by
    a few nanodegrees); keeps polygonal parts only."""
    bad = ~frame.geometry.is_valid.to_numpy()
    if bad.any():
        geoms = frame.geometry.to_numpy().copy()
        geoms[bad] = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
        frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    return frame


# --------------------------------------------------------------------------------------
# Community norms
# --------------------------------------------------------------------------------------

SERVICE_CATEGORIES = ("community_office", "community_service_station")
"""Facility categories whose floor area counts as community comprehensive service floor."""


def community_norms(
    communities: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame | None,
    staff: pd.DataFrame | None,
    settings: Settings = DEFAULT,
) -> gpd.GeoDataFrame:
    """Staffing and service-facility norms per community.

    Norms (``settings.staffing``):

    * ``service_floor_per_100_households`` — floor area (m²) of community_office and
      community_service_station facilities inside the community per 100 households;
      target ≥ 30; shortfall in m² of floor area to add.
    * ``community_workers`` — staff with role community_worker of the community
      (``community_code``, else the first 12 digits of ``grid_code``); target
      max(6, ceil(households / 300)); shortfall in workers.
    * ``office_area_m2`` — floor area of community_office facilities; target ≥ 300 m².

    Returns
    -------
    geopandas.GeoDataFrame
        community_code, name, households, norm, unit, value, target, pass, shortfall,
        community polygon (EPSG:4326).
    """
    st = settings.staffing
    crs = communities.crs
    comm = communities.reset_index(drop=True)
    codes = comm["community_code"].astype(str).to_numpy()
    hh = pd.to_numeric(buildings["households"], errors="coerce").fillna(0)
    b = buildings.loc[hh.to_numpy() > 0]
    bpts = shapely.point_on_surface(b.to_crs(crs).geometry.values)
    tree = shapely.STRtree(comm.geometry.values)
    rank = rank_of(codes)
    pi, ci = _located(bpts, comm.geometry.values, rank, tree)
    households = np.bincount(ci, weights=hh[hh > 0].to_numpy()[pi], minlength=len(comm))

    office = np.zeros(len(comm))
    service = np.zeros(len(comm))
    if facilities is not None and len(facilities):
        f = facilities.loc[facilities["category"].isin(SERVICE_CATEGORIES)]
        if len(f):
            fpts = shapely.point_on_surface(f.to_crs(crs).geometry.values)
            area = pd.to_numeric(f["floor_area_m2"], errors="coerce").fillna(0).to_numpy()
            is_office = f["category"].to_numpy() == "community_office"
            fi, cj = _located(fpts, comm.geometry.values, rank, tree)
            service = np.bincount(cj, weights=area[fi], minlength=len(comm))
            office = np.bincount(cj, weights=(area * is_office)[fi], minlength=len(comm))
    workers = np.zeros(len(comm))
    if staff is not None and len(staff):
        s = staff.loc[staff["role"].astype(str) == "community_worker"]
        code = (
            s["community_code"].astype("object")
            if "community_code" in s
            else pd.Series(pd.NA, index=s.index, dtype="object")
        )
        if "grid_code" in s:
            code = code.where(code.notna(), s["grid_code"].astype("object").str[:12])
        counts = code.dropna().astype(str).value_counts()
        workers = counts.reindex(codes).fillna(0).to_numpy()

    per100 = np.where(households > 0, service / np.maximum(households, 1) * 100.0, np.nan)
    need_service = st.service_floor_m2_per_100_households * households / 100.0
    need_workers = np.maximum(
        st.min_workers_per_community, np.ceil(households / st.households_per_worker)
    )
    rows = {
        "service_floor_per_100_households": (
            "m2 per 100 households",
            per100,
            np.full(len(comm), st.service_floor_m2_per_100_households),
            service >= need_service,
            np.maximum(need_service - service, 0.0),
        ),
        "community_workers": (
            "workers",
            workers,
            need_workers,
            workers >= need_workers,
            np.maximum(need_workers - workers, 0.0),
        ),
        "office_area_m2": (
            "m2",
            office,
            np.full(len(comm), st.community_office_min_m2),
            office >= st.community_office_min_m2,
            np.maximum(st.community_office_min_m2 - office, 0.0),
        ),
    }
    has_service = facilities is not None and bool(
        facilities["category"].isin(SERVICE_CATEGORIES).any()
    )
    has_office = facilities is not None and bool(
        (facilities["category"] == "community_office").any()
    )
    known = {
        "service_floor_per_100_households": has_service,
        "community_workers": staff is not None and len(staff) > 0,
        "office_area_m2": has_office,
    }
    frames = []
    for norm, (unit, value, target, ok, short) in rows.items():
        status = "ok" if known[norm] else NO_DATA
        nan = np.full(len(comm), np.nan)
        frames.append(
            gpd.GeoDataFrame(
                {
                    "community_code": codes,
                    "name": comm["name"].astype(str).to_numpy() if "name" in comm else "",
                    "households": households.astype(np.int64),
                    "norm": norm,
                    "unit": unit,
                    "value": np.round(value.astype(float), 2) if known[norm] else nan,
                    "target": target.astype(float),
                    "pass": pd.array(ok.astype(bool), dtype="boolean")
                    if known[norm]
                    else pd.array([pd.NA] * len(comm), dtype="boolean"),
                    "shortfall": np.round(short.astype(float), 2) if known[norm] else nan,
                    "status": status,
                },
                geometry=comm.geometry.values,
                crs=crs,
            )
        )
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------
# Everything
# --------------------------------------------------------------------------------------


@dataclass
class CoverageResult:
    """The layers ``gridgis coverage`` writes (all EPSG:4326 except tables) and their
    parameters."""

    access: Access
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame]
    params: dict[str, Any]
    levels: list[str]

    def summary(self) -> str:
        """One line: life-circle and park coverage city-wide, gaps, norms failing."""
        t = self.access.table
        hh = t.groupby("category")["households"].sum()
        cov = t[t["covered"]].groupby("category")["households"].sum()
        rate = cov.reindex(hh.index).fillna(0) / hh
        no_data = list(self.access.params.get("no_data_categories", []))
        lc_missing = list(self.access.params.get("life_circle_no_data", []))

        def pct(cat: str) -> str:
            if cat in no_data or cat not in rate.index:
                return "no data"
            return f"{rate[cat]:.1%}"

        lc = pct(LIFE_CIRCLE)
        if lc_missing and lc != "no data":
            lc += f" (over the categories with data; no data for {', '.join(lc_missing)})"
        norms = self.layers.get("norms")
        failing = (
            int((norms["pass"].astype("boolean") == False).sum())  # noqa: E712
            if norms is not None and len(norms)
            else 0
        )
        missing = f"; no data (no facilities): {', '.join(no_data)}" if no_data else ""
        return (
            f"{len(self.access.buildings):,} residential buildings × "
            f"{t['category'].nunique()} categories; 15-min life circle complete for "
            f"{lc} of households, park within 500 m {pct('park')}; "
            f"{len(self.layers['coverage_gaps']):,} gap polygons; {failing} norm "
            f"failures; levels {', '.join(self.levels) or self._no_levels()}{missing}"
        )

    def _no_levels(self) -> str:
        if len(self.access.buildings) == 0:
            return "none (no residential buildings: households all 0 or missing)"
        return "none (no communities)"


def run_coverage(
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    settings: Settings = DEFAULT,
    categories: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CoverageResult:
    """Walking access, coverage rates, gaps and norms from the canonical layers.

    Parameters
    ----------
    layers
        Needs buildings and roads; uses facilities, green_spaces, communities, streets,
        grids (optional: without it, rates are per street and community only) and staff.
    settings
        Rule parameters.
    categories
        Categories to compute (default: all with a radius).
    progress
        Called as ``progress(done, total)`` per category searched.

    Returns
    -------
    CoverageResult
        ``layers``: access (table), coverage (table), coverage_gaps, norms,
        coverage_findings; all geometries in EPSG:4326.
    """
    for need in ("buildings", "roads"):
        if layers.get(need) is None or len(layers[need]) == 0:
            raise ValueError(f"coverage needs the '{need}' layer (missing or empty)")
    access = compute_access(
        layers["buildings"],
        layers["roads"],
        layers.get("facilities"),
        layers.get("green_spaces"),
        settings,
        categories,
        progress=progress,
        compounds=layers.get("compounds"),
        gates=layers.get("gates"),
    )
    return coverage_from_access(access, layers, settings, access.graph.net)


def coverage_from_access(
    access: Access, layers: dict, settings: Settings = DEFAULT, net: RoadNetwork | None = None
) -> CoverageResult:
    """The layers of :func:`run_coverage` from an access table already computed (in one
    process or partitioned, :mod:`gridgis.partitioned`): rates, gaps, service areas (on
    *net*, the whole walking network; none without it), norms and the parameters.

    Parameters
    ----------
    access
        :func:`compute_access` of every residential building.
    layers
        The workspace's layers (communities, grids, facilities, staff, buildings).
    net
        The walking network service areas are drawn on (``access.graph.net``).
    """
    comm = layers.get("communities")
    grids = layers.get("grids")
    areas = building_areas(access.buildings, comm, grids)
    rates = coverage_rates(access, areas, settings)
    gaps = valid_polygons(coverage_gaps(access, areas, comm, settings).to_crs(STORAGE_CRS))
    out: dict[str, gpd.GeoDataFrame | pd.DataFrame] = {
        "access": access.table.drop(columns=["households"]),
        "coverage": rates,
        "coverage_gaps": gaps,
        "coverage_findings": access.findings.to_crs(STORAGE_CRS),
    }
    walkable, service_note = (
        service_area_layer(net, layers.get("facilities"), settings, access.params.get("categories"))
        if net is not None
        else (None, "not written: no network")
    )
    if walkable is not None:
        out["service_areas"] = walkable
    if comm is not None and len(comm):
        out["norms"] = community_norms(
            comm.to_crs(STORAGE_CRS),
            layers["buildings"],
            layers.get("facilities"),
            layers.get("staff"),
            settings,
        )
    levels = (
        sorted(rates["level"].unique().tolist(), key=["street", "community", "grid"].index)
        if len(rates)
        else []
    )
    params = dict(access.params)
    params.update(
        {
            "levels": levels,
            "park_coverage_basis": PARK_BASIS,
            "park_coverage_floor": settings.coverage.park_coverage_floor,
            "gap_method": GAP_METHOD,
            "service_areas": service_note,
            "gap_buffer_m": settings.coverage.gap_buffer_m,
            "grids_used": bool(grids is not None and len(grids))
            or bool(areas["grid_code"].notna().any()),
            "norms": settings.to_dict()["staffing"],
            "life_circle_note": "share of households with every life-circle "
            "category within life_circle_15min_m walking",
        }
    )
    return CoverageResult(access=access, layers=out, params=params, levels=levels)


# --------------------------------------------------------------------------------------
# Service areas: the walkable area within the radius of each facility
# --------------------------------------------------------------------------------------

SERVICE_AREA_METHOD = (
    "road network reached within the category's radius from the facility (facility leg + "
    "network path; partly reached roads cut where the radius runs out), buffered by "
    "coverage.service_area_buffer_m, clipped to blocks: the buffer is kept outside every "
    "block (road corridor, open edge of the network) and inside the blocks (areas enclosed "
    "by the roads, polygonize of the noded network) flanking a reached road; blocks "
    "behind an unreached road are cut out"
)


@dataclass
class Blocks:
    """The blocks of a walking network (areas enclosed by its roads), built once per run.

    Attributes
    ----------
    geom
        Block polygons (shapely array, metric CRS), from polygonize of the noded edges.
    tree
        STRtree on *geom*.
    edge, block
        Pairs (edge index, block index): the blocks each edge runs along or inside
        (its midpoint within 1 cm of the block).
    """

    geom: NDArray[np.object_]
    tree: shapely.STRtree
    edge: NDArray[np.int64]
    block: NDArray[np.int64]


def road_blocks(net: RoadNetwork) -> Blocks:
    """The blocks of *net* (polygonize of its noded edges) and the edges along each."""
    geom = np.asarray(
        shapely.get_parts(shapely.polygonize(np.asarray(net.edge_geom))), dtype=object
    )
    geom = geom[shapely.area(geom) > 0] if len(geom) else geom
    tree = shapely.STRtree(geom)
    mid = shapely.line_interpolate_point(np.asarray(net.edge_geom), 0.5, normalized=True)
    edge, block = (
        tree.query(mid, predicate="dwithin", distance=0.01)
        if len(geom)
        else np.zeros((2, 0), dtype=np.int64)
    )
    return Blocks(geom=geom, tree=tree, edge=edge.astype(np.int64), block=block.astype(np.int64))


def _clip_to_blocks(
    area: NDArray[np.object_], who: NDArray, edges: NDArray, blocks: Blocks
) -> NDArray[np.object_]:
    """Each facility's buffer (*area*) less the blocks it overlaps that flank none of its
    reached edges (*who*, *edges*: facility row and edge of each reached piece)."""
    if len(blocks.geom) == 0 or len(area) == 0:
        return area
    nb = len(blocks.geom)
    # reached (facility, block) pairs through the edges' flanking blocks
    order = np.argsort(blocks.edge, kind="stable")
    be, bb = blocks.edge[order], blocks.block[order]
    lo = np.searchsorted(be, edges, "left")
    hi = np.searchsorted(be, edges, "right")
    cnt = hi - lo
    rows = np.repeat(who, cnt)
    idx = np.repeat(lo - np.cumsum(np.r_[0, cnt[:-1]]), cnt) + np.arange(cnt.sum())
    reached = np.unique(rows.astype(np.int64) * nb + bb[idx])
    # blocks each buffer overlaps (interiors), minus the reached ones
    fi, bj = blocks.tree.query(area, predicate="intersects")
    if len(fi) == 0:
        return area
    key = fi.astype(np.int64) * nb + bj
    cut = ~np.isin(key, reached)
    fi, bj = fi[cut], bj[cut]
    order = np.argsort(fi, kind="stable")
    fi, bj = fi[order], bj[order]
    groups, start, count = np.unique(fi, return_index=True, return_counts=True)
    pad = np.full((len(groups), count.max()), None, dtype=object)
    col = np.arange(len(fi)) - np.repeat(start, count)
    pad[np.repeat(np.arange(len(groups)), count), col] = blocks.geom[bj]
    removed = shapely.coverage_union_all(pad, axis=1)
    out = area.copy()
    out[groups] = shapely.difference(area[groups], removed)
    return out


def _road_segments(graph: WalkGraph) -> tuple[NDArray, ...]:
    """Every road edge cut at its snap (virtual) nodes: edge, from/to offset (m) and the
    graph node at each end of each segment."""
    net = graph.net
    n_road = net.n_nodes
    ve, vt = graph.virt_edge, graph.virt_t
    k = len(ve)
    virt = n_road + np.arange(k)
    # positions along each edge: its start, its virtual nodes (sorted), its end
    edge = np.r_[np.arange(len(net.edge_m)), ve, np.arange(len(net.edge_m))]
    t = np.r_[np.zeros(len(net.edge_m)), vt, net.edge_m]
    node = np.r_[net.edge_u, virt, net.edge_v]
    rank = np.r_[np.zeros(len(net.edge_m)), np.ones(k), np.full(len(net.edge_m), 2)]
    order = np.lexsort((rank, t, edge))
    edge, t, node = edge[order], t[order], node[order]
    same = edge[1:] == edge[:-1]
    a = np.flatnonzero(same)
    return edge[a], t[a], t[a + 1], node[a], node[a + 1]


def _substrings(lines: NDArray[np.object_], start: NDArray, end: NDArray) -> NDArray[np.object_]:
    """The part of each line between two distances along it (metres), vectorised."""
    if len(lines) == 0:
        return np.array([], dtype=object)
    coords, which = shapely.get_coordinates(lines, return_index=True)
    step = np.r_[0.0, np.hypot(*np.diff(coords, axis=0).T)]
    first = np.r_[True, which[1:] != which[:-1]]
    step[first] = 0.0
    along = np.cumsum(step)
    along -= np.repeat(along[first], np.bincount(which, minlength=len(lines)))
    inner = (along > start[which]) & (along < end[which])
    a = shapely.get_coordinates(shapely.line_interpolate_point(lines, start))
    b = shapely.get_coordinates(shapely.line_interpolate_point(lines, end))
    xy = np.vstack([a, coords[inner], b])
    idx = np.r_[np.arange(len(lines)), which[inner], np.arange(len(lines))]
    pos = np.r_[start, along[inner], end]
    rank = np.r_[np.zeros(len(lines)), np.ones(inner.sum()), np.full(len(lines), 2)]
    order = np.lexsort((rank, pos, idx))
    return shapely.linestrings(xy[order], indices=idx[order])


def service_areas(
    access: Access,
    settings: Settings = DEFAULT,
    categories: list[str] | None = None,
    facility_ids: list[str] | None = None,
    chunk: int = 128,
) -> gpd.GeoDataFrame:
    """The walkable area within the radius of each facility (metric CRS).

    Method :data:`SERVICE_AREA_METHOD`. One bounded search per facility.

    Parameters
    ----------
    access
        Walking access (its graph and the facilities attached to it).
    categories, facility_ids
        Restrict to these categories / facilities (default: every facility).

    Returns
    -------
    geopandas.GeoDataFrame
        facility_id, category, radius_m, reach_m (metres of road reached), area_m2,
        geometry.
    """
    return _service_areas(
        access.graph,
        access.facility_nodes,
        access.buildings.crs,
        settings,
        categories,
        facility_ids,
        chunk,
    )


def _service_areas(
    graph: WalkGraph,
    facility_nodes: pd.DataFrame,
    crs: pyproj.CRS,
    settings: Settings,
    categories: list[str] | None = None,
    facility_ids: list[str] | None = None,
    chunk: int = 128,
    blocks: Blocks | None = None,
) -> gpd.GeoDataFrame:
    """:func:`service_areas` on a graph and its facilities' nodes (*blocks*: the
    network's :func:`road_blocks`, built here when not given)."""
    cols = ["facility_id", "category", "radius_m", "reach_m", "area_m2"]
    fac = facility_nodes
    if categories is not None:
        fac = fac[fac["category"].isin(categories)]
    if facility_ids is not None:
        fac = fac[fac["facility_id"].isin([str(f) for f in facility_ids])]
    fac = fac[fac["node"] >= 0].reset_index(drop=True)
    if fac.empty:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype="object") for c in cols}, geometry=gpd.GeoSeries([], crs=crs)
        )
    radius = fac["category"].map(settings.coverage.radius_m).to_numpy(dtype=float)
    multi, who, edges, reach = _reached_lines(graph, fac, radius, chunk)
    buffer = settings.coverage.service_area_buffer_m
    area = _buffer_each(shapely.line_merge(multi), buffer)
    if blocks is None:
        blocks = road_blocks(graph.net)
    # the facility's own edge (its leg runs into the blocks along it) counts as reached
    leg_edge = graph.snaps.edge[fac["point"].to_numpy()]
    area = _clip_to_blocks(area, np.r_[who, np.arange(len(fac))], np.r_[edges, leg_edge], blocks)
    out = gpd.GeoDataFrame(
        {
            "facility_id": fac["facility_id"].astype(str).to_numpy(),
            "category": fac["category"].astype(str).to_numpy(),
            "radius_m": radius,
            "reach_m": np.round(reach, 1),
        },
        geometry=area,
        crs=crs,
    )
    out["area_m2"] = out.geometry.area.round(1)
    return out[[*cols, "geometry"]]


def _reached_lines(
    graph: WalkGraph, fac: pd.DataFrame, radius: NDArray, chunk: int = 128
) -> tuple[NDArray[np.object_], NDArray, NDArray, NDArray]:
    """Each facility's reached roads within its *radius* (metres) as one multi-line
    (its leg included; None when nothing is reached), the facility row and edge of
    every reached piece, and each facility's metres of road reached (leg excluded). One bounded search per facility, *chunk* at a time."""
    seg_e, seg_t0, seg_t1, seg_a, seg_b = _road_segments(graph)
    pieces, owner, on_edge = [], [], []
    for start in range(0, len(fac), chunk):
        rows = np.arange(start, min(start + chunk, len(fac)))
        r = radius[rows]
        dist = dijkstra(
            graph.matrix, directed=False, indices=fac["node"].to_numpy()[rows], limit=r.max()
        )
        da = r[:, None] - dist[:, seg_a]  # metres left at each segment's ends
        db = r[:, None] - dist[:, seg_b]
        length = seg_t1 - seg_t0
        full = (da >= 0) & (db >= 0) & (da + db >= length)
        i, s = np.nonzero(full)
        parts = [(i, seg_t0[s], seg_t1[s], s)]
        for left, from_a in ((da, True), (db, False)):
            i, s = np.nonzero(~full & (left > 0))
            go = np.minimum(left[i, s], length[s])
            t0 = np.where(from_a, seg_t0[s], seg_t1[s] - go)
            t1 = np.where(from_a, seg_t0[s] + go, seg_t1[s])
            parts.append((i, t0, t1, s))
        i = np.concatenate([p[0] for p in parts])
        t0 = np.concatenate([p[1] for p in parts])
        t1 = np.concatenate([p[2] for p in parts])
        s = np.concatenate([p[3] for p in parts])
        keep = t1 > t0
        pieces.append(_substrings(graph.net.edge_geom[seg_e[s[keep]]], t0[keep], t1[keep]))
        owner.append(rows[i[keep]])
        on_edge.append(seg_e[s[keep]])
    lines = np.concatenate(pieces)
    who = np.concatenate(owner)
    order = np.argsort(who, kind="stable")
    multi = np.full(len(fac), None, dtype=object)
    if len(lines):
        shapely.multilinestrings(lines[order], indices=who[order], out=multi)
    # the facility's own leg from its door to the road
    legs = _facility_legs(graph, fac)
    multi = shapely.union(multi, legs)
    reach = np.bincount(who, weights=shapely.length(lines), minlength=len(fac))
    return multi, who, np.concatenate(on_edge), reach


def _buffer_each(
    multi: NDArray[np.object_], distance: float, chunk: int = 256
) -> NDArray[np.object_]:
    """``shapely.buffer(multi, distance, quad_segs=2)`` for every (multi)line, done as
    one buffer call on all their parts and one union per line (``union_all`` along the
    rows of a padded array, *chunk* lines at a time): the same area, about 2.5 times
    less CPU than buffering each multi-line whole (GEOS nodes every offset curve)."""
    out = np.full(len(multi), None, dtype=object)
    parts, which = shapely.get_parts(multi, return_index=True)
    if len(parts) == 0:
        return out
    polys = shapely.buffer(parts, distance, quad_segs=2)
    groups, first, count = np.unique(which, return_index=True, return_counts=True)
    col = np.arange(len(which)) - np.repeat(first, count)
    for a in range(0, len(groups), chunk):
        b = min(a + chunk, len(groups))
        lo, hi = first[a], first[b - 1] + count[b - 1]
        pad = np.full((b - a, count[a:b].max()), None, dtype=object)
        pad[np.repeat(np.arange(b - a), count[a:b]), col[lo:hi]] = polys[lo:hi]
        out[groups[a:b]] = shapely.union_all(pad, axis=1)
    return out


def _facility_legs(graph: WalkGraph, fac: pd.DataFrame) -> NDArray[np.object_]:
    """Straight line from each facility's point to where it meets the road."""
    pos = fac["point"].to_numpy()
    snaps = graph.snaps
    e = snaps.edge[pos]
    at = shapely.line_interpolate_point(graph.net.edge_geom[e], snaps.offset_m[pos])
    start = shapely.points(graph.point_xy[pos])
    return shapely.shortest_line(start, at)


def service_area_layer(
    net: RoadNetwork,
    facilities: gpd.GeoDataFrame | None,
    settings: Settings = DEFAULT,
    categories: list[str] | None = None,
) -> tuple[gpd.GeoDataFrame | None, str]:
    """Layer ``service_areas`` (EPSG:4326) for every facility of the categories, on the
    walking network with only the facilities attached (the same answer whoever builds
    the buildings' graph), and the note for the parameters. The network's blocks are
    built once here. None (with the reason) when there is no facility or more than
    ``coverage.service_area_max_facilities`` (a safety valve, above the 1,000,000-household
    demo city)."""
    cov = settings.coverage
    cats = list(categories) if categories is not None else list(cov.radius_m)
    fac_cats = [c for c in cats if c not in GREEN_CATEGORIES]
    if facilities is None or len(facilities) == 0:
        return None, "no facilities"
    fac = facilities.loc[facilities["category"].isin(fac_cats)].to_crs(net.crs)
    fac = fac.reset_index(drop=True)
    if len(fac) == 0:
        return None, "no facilities"
    if len(fac) > cov.service_area_max_facilities:
        return None, (
            f"not written: {len(fac):,} facilities, more than "
            f"coverage.service_area_max_facilities = {cov.service_area_max_facilities:,}"
        )
    graph = attach_points(net, shapely.point_on_surface(fac.geometry.values), cov.max_snap_m)
    nodes = _facility_nodes(fac, graph.point_node, 0)
    areas = _service_areas(graph, nodes, net.crs, settings, blocks=road_blocks(net))
    return valid_polygons(areas.to_crs(STORAGE_CRS)), SERVICE_AREA_METHOD
