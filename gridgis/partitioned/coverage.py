"""Partitioned coverage: blocks of communities, each with a halo."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.spatial import points_in_polygons, rank_of
from gridgis.standards import CLUSTER, DEFAULT, ClusterRules, Settings

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from gridgis.coverage import CoverageResult
from gridgis.partitioned.runner import (
    Runner,
    balanced_cuts,
    hilbert_order,
    n_workers_of,
    release_memory,
)
from gridgis.partitioned.source import Rows, SharedRun, lonlat_box, rows_box, stored_bounds

log = logging.getLogger(__name__)


# ======================================================================================
# Coverage: blocks of communities, each with a halo
# ======================================================================================


@dataclass
class _CoveragePlan:
    """What the whole city's coverage needs once (this process) before partitioning:
    the walking network (its pieces kept by ``network.keep_piece_min_m``), the
    residential buildings, the facilities of the categories asked, the green spaces, and
    where every point meets the network."""

    settings: Settings
    cats: list[str]
    lc: list[str]
    net: Any  # RoadNetwork
    res: gpd.GeoDataFrame
    fac: gpd.GeoDataFrame | None
    fac_pts: np.ndarray
    greens: gpd.GeoDataFrame | None  # raw green_spaces rows, metric
    green_near: np.ndarray  # (k, 2): the boundary point nearest the network, per green
    entries: list[np.ndarray]
    points: np.ndarray  # every point compute_access attaches, in its order
    snaps: Any  # Snaps of ``points`` on the whole network
    extent: tuple[float, float, float, float]
    empty: dict[str, bool]
    sources: dict[str, int] = field(default_factory=dict)
    fac_tree: Any = None
    green_tree: Any = None
    gates: Any = None  # the gates layer (parks are entered at their gates)
    res_rows: np.ndarray | None = None  # stored row of each residential building
    res_bounds: np.ndarray | None = None  # (n, 4) lon/lat bounds of each, as stored


def _nearest_on_network(polygons: np.ndarray, net) -> np.ndarray:
    """(k, 2) the boundary point of each polygon nearest the network (the third kind of
    entry point of :func:`gridgis.coverage.entry_points`)."""
    out = np.full((len(polygons), 2), np.nan)
    if len(polygons) == 0 or len(net.edge_geom) == 0:
        return out
    boundary = shapely.boundary(polygons)
    pi, ej = net.tree.query_nearest(boundary, all_matches=False)
    pts = shapely.get_point(shapely.shortest_line(boundary[pi], net.edge_geom[ej]), 0)
    out[pi] = shapely.get_coordinates(pts)
    return out


def _zones(net, points: np.ndarray):
    """Compound of each point when the network has walls (as attach_points snaps them)."""
    walls = getattr(net, "walls", None)
    return walls.zone_of(points) if walls is not None else None


def _coverage_plan(layers: dict, settings: Settings, categories) -> _CoveragePlan:
    from gridgis.coverage import (
        GREEN_CATEGORIES,
        _points_of,
        entry_points,
        green_targets,
        residential_buildings,
    )
    from gridgis.network import build_network, snap_points

    cov = settings.coverage
    net = build_network(
        layers["roads"], settings, compounds=layers.get("compounds"), gates=layers.get("gates")
    )
    crs = net.crs
    cats = list(categories) if categories is not None else list(cov.radius_m)
    unknown = [c for c in cats if c not in cov.radius_m]
    if unknown:
        raise KeyError(f"categories {unknown}: no service radius in settings.coverage.radius_m")
    lc = list(cov.life_circle_categories)
    lc = lc if set(lc) <= set(cats) else []
    res = residential_buildings(layers["buildings"], crs)
    facilities = layers.get("facilities")
    fac = None
    fac_pts = np.array([], dtype=object)
    if facilities is not None and len(facilities):
        fac = facilities.to_crs(crs).reset_index(drop=True)
        fac = fac.loc[fac["category"].isin([c for c in cats if c not in GREEN_CATEGORIES])]
        fac = fac.reset_index(drop=True)
        fac_pts = shapely.point_on_surface(fac.geometry.values)
    gs = layers.get("green_spaces")
    raw = gs.to_crs(crs).reset_index(drop=True) if gs is not None and len(gs) else None
    targets = green_targets(gs, crs, settings)
    gate_pts = _points_of(layers.get("gates"), crs)
    entries = [
        entry_points(targets[c].geometry.values, net, settings, gate_pts)[0]
        for c in GREEN_CATEGORIES
        if c in cats
    ]
    points = np.concatenate([res["point"].to_numpy(), fac_pts, *entries])
    empty = {
        c: (len(targets[c]) == 0)
        if c in GREEN_CATEGORIES
        else (fac is None or not (fac["category"] == c).any())
        for c in cats
    }
    geoms = [net.edge_geom, points]
    if raw is not None:
        geoms.append(raw.geometry.to_numpy())
    if fac is not None:
        geoms.append(fac.geometry.to_numpy())
    extent = tuple(shapely.total_bounds(np.concatenate(geoms)).tolist())
    plan = _CoveragePlan(
        settings=settings,
        cats=cats,
        lc=lc,
        net=net,
        res=res,
        fac=fac,
        fac_pts=fac_pts,
        greens=raw,
        green_near=_nearest_on_network(
            raw.geometry.to_numpy() if raw is not None else np.array([], object), net
        ),
        entries=entries,
        points=points,
        snaps=snap_points(net, points, cov.max_snap_m, _zones(net, points)),
        extent=extent,  # type: ignore[arg-type]
        empty=empty,
        fac_tree=shapely.STRtree(fac.geometry.to_numpy()) if fac is not None else None,
        green_tree=shapely.STRtree(raw.geometry.to_numpy()) if raw is not None else None,
        gates=layers.get("gates"),
    )
    b = layers["buildings"]
    hh = pd.to_numeric(b["households"], errors="coerce").fillna(0).to_numpy()
    plan.res_rows = np.flatnonzero(hh > 0)  # as residential_buildings selects them
    plan.res_bounds = stored_bounds(b)[plan.res_rows]
    plan.sources = _source_counts(plan)
    no_data = [c for c in cats if plan.sources[c] == 0]
    plan.lc = [c for c in lc if c not in no_data]
    return plan


def _coverage_blocks(plan: _CoveragePlan, communities, parts: int) -> list[np.ndarray]:
    """Residential buildings (positions) in blocks of whole communities, communities in
    Hilbert order of their representative point (buildings in none: of their own)."""
    res = plan.res
    xy = shapely.get_coordinates(res["point"].to_numpy())
    ci = np.full(len(res), -1, np.int64)
    key_xy = xy.copy()
    if communities is not None and len(communities):
        cm = communities.to_crs(plan.res.crs)
        geoms = cm.geometry.to_numpy()
        ci = points_in_polygons(
            res["point"].to_numpy(), geoms, rank_of(cm["community_code"].astype(str).to_numpy())
        )
        rep = shapely.get_coordinates(shapely.point_on_surface(geoms))
        key_xy[ci >= 0] = rep[ci[ci >= 0]]
    ex = plan.extent
    h = hilbert_order(key_xy, ex)
    order = np.lexsort((np.arange(len(res)), ci, h))
    c_sorted = ci[order]
    breaks = np.r_[True, (c_sorted[1:] != c_sorted[:-1]) | (c_sorted[1:] < 0)]
    cuts = balanced_cuts(np.ones(len(res)), parts, breaks)
    return [np.sort(order[a:b]) for a, b in cuts]


def _wider(need: np.ndarray, h: float) -> float:
    """The halo that makes a block's leftover buildings exact: their own distances (an
    upper bound of the city's) when all are known and beyond ``h``, else twice ``h`` (the
    halo always grows, so a building left for another reason — a green whose nearest
    road lies outside the halo — is not retried as it was)."""
    finite = need[np.isfinite(need)]
    wider = float(finite.max()) + 1.0 if len(finite) == len(need) else 0.0
    return wider if wider > h else 2.0 * h


def _coverage_payload(
    plan: _CoveragePlan, pos: np.ndarray, halo: float, shared: SharedRun | None = None
) -> dict[str, Any]:
    """The inputs of one partition: its buildings, and the network, facilities and greens
    within the halo (``halo`` m around the buildings' bounding box). With a shared store
    the buildings, facilities and greens are :class:`Rows` the worker reads itself (the
    walking network is the city's, built once here: its halo piece travels with the task)."""
    snap = plan.settings.coverage.max_snap_m
    xy = shapely.get_coordinates(plan.res["point"].to_numpy()[pos])
    core = (*xy.min(axis=0), *xy.max(axis=0))
    f = (core[0] - halo, core[1] - halo, core[2] + halo, core[3] + halo)
    pad = halo + 2.0 * snap
    n_box = shapely.box(core[0] - pad, core[1] - pad, core[2] + pad, core[3] + pad)
    f_box = shapely.box(*f)
    edges = np.sort(plan.net.tree.query(n_box, predicate="intersects"))
    crs = plan.res.crs
    fac = plan.fac
    if fac is not None:
        fac = fac.iloc[np.sort(plan.fac_tree.query(f_box, predicate="intersects"))]
    greens = plan.greens
    near = np.zeros((0, 2))
    if greens is not None:
        gi = np.sort(plan.green_tree.query(f_box, predicate="intersects"))
        greens, near = greens.iloc[gi], plan.green_near[gi]
    on_edges = np.isin(plan.snaps.edge, edges)
    payload = {
        "pos": pos,
        "buildings": plan.res.iloc[pos][["building_id", "households", "geometry"]],
        "network": _Wire(_subnetwork(plan.net, edges)),
        "facilities": fac,
        "greens": greens,
        "gates": plan.gates,
        "green_near": near,
        "extra": shapely.get_coordinates(plan.points[on_edges]),
        "settings": plan.settings,
        "cats": plan.cats,
        "crs": crs,
        "f": f,
        "extent": plan.extent,
        "empty": plan.empty,
        "has_sources": {c: n > 0 for c, n in plan.sources.items()},
    }
    if shared is not None:
        _shared_payload(payload, plan, pos, f, shared)
    return payload


def _shared_payload(p: dict, plan: _CoveragePlan, pos: np.ndarray, f, shared: SharedRun) -> None:
    """Replace the partition's buildings, facilities and greens by the rows to read
    (buildings: their stored rows within their lon/lat box; facilities and greens: the
    halo's lon/lat box, selected exactly on the worker) and say where to stage."""
    from gridgis.coverage import LIFE_CIRCLE

    p["shared"] = shared
    if shared.reads("buildings"):
        box = rows_box(plan.res_bounds[pos])
        p["buildings"] = Rows("buildings", bbox=box, rows=plan.res_rows[pos])
    halo_box = lonlat_box(f, plan.res.crs)
    if p["facilities"] is not None and shared.reads("facilities"):
        p["facilities"] = Rows("facilities", bbox=halo_box)
    if p["greens"] is not None and shared.reads("green_spaces"):
        p["greens"] = Rows("green_spaces", bbox=halo_box)
    p["order"] = {c: i for i, c in enumerate([*plan.cats, LIFE_CIRCLE])}
    p["n_res"] = len(plan.res)


def _read_shared(p: dict[str, Any]) -> dict[str, Any]:
    """On the worker: the partition's buildings, facilities and greens read from the
    shared store, the same rows in the same order as the client would have sent."""
    from gridgis.coverage import GREEN_CATEGORIES, residential_buildings

    p = dict(p)
    sh, crs = p["shared"], p["crs"]
    f_box = shapely.box(*p["f"])
    if isinstance(p["buildings"], Rows):
        res = residential_buildings(p["buildings"].read(sh), crs)
        p["buildings"] = res[["building_id", "households", "geometry"]].set_axis(p["pos"])
    if isinstance(p["facilities"], Rows):
        fac = p["facilities"].read(sh).to_crs(crs).reset_index(drop=True)
        fac = fac.loc[fac["category"].isin([c for c in p["cats"] if c not in GREEN_CATEGORIES])]
        p["facilities"] = fac.loc[fac.geometry.intersects(f_box).to_numpy()]
    if isinstance(p["greens"], Rows):
        g = p["greens"].read(sh).to_crs(crs).reset_index(drop=True)
        p["greens"] = g.loc[g.geometry.intersects(f_box).to_numpy()]
    return p


class _Wire:
    """A RoadNetwork that pickles its edge lines as one WKB array (pickling shapely
    geometries one by one costs more than the partition's search)."""

    def __init__(self, net) -> None:
        self.net = net

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.net.__dict__)
        state["_tree"] = None
        state["edge_geom"] = shapely.to_wkb(self.net.edge_geom)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from gridgis.network import RoadNetwork

        state = dict(state)
        state["edge_geom"] = shapely.from_wkb(state["edge_geom"])
        self.net = RoadNetwork(**state)


def _subnetwork(net, edges: np.ndarray):
    """The city's walking network restricted to ``edges`` (sorted indices): the same
    edges, nodes, lengths, compounds and gates, nothing re-noded, repaired or dropped,
    node order kept."""
    from dataclasses import replace

    nodes = np.unique(np.concatenate([net.edge_u[edges], net.edge_v[edges]]))
    zone = getattr(net, "edge_zone", None)
    gate = getattr(net, "edge_gate", None)
    extra = {}
    if zone is not None:
        extra["edge_zone"] = zone[edges]
    if gate is not None:
        extra["edge_gate"] = gate[edges]
    if hasattr(net, "warnings"):
        extra["warnings"] = []
    return replace(
        net,
        node_xy=net.node_xy[nodes],
        edge_u=np.searchsorted(nodes, net.edge_u[edges]).astype(np.int64),
        edge_v=np.searchsorted(nodes, net.edge_v[edges]).astype(np.int64),
        edge_m=net.edge_m[edges],
        edge_geom=net.edge_geom[edges],
        findings=net.findings.iloc[0:0],
        stats={"kept_edges": int(len(edges)), "kept_nodes": int(len(nodes))},
        _tree=None,
        **extra,
    )


def _halo_margin(xy: np.ndarray, f: Sequence[float], extent: Sequence[float]) -> np.ndarray:
    """Distance (m) from each point to the halo's edge, on the sides where the city goes
    on beyond it (infinite where the halo already holds everything)."""
    sides = []
    if f[0] > extent[0]:
        sides.append(xy[:, 0] - f[0])
    if f[1] > extent[1]:
        sides.append(xy[:, 1] - f[1])
    if f[2] < extent[2]:
        sides.append(f[2] - xy[:, 0])
    if f[3] < extent[3]:
        sides.append(f[3] - xy[:, 1])
    return np.min(sides, axis=0) if sides else np.full(len(xy), np.inf)


def _distance_to(points: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    out = np.full(len(points), np.inf)
    if len(geoms) and len(points):
        (pi, _), d = shapely.STRtree(geoms).query_nearest(
            points, all_matches=False, return_distance=True
        )
        out[pi] = d
    return out


def _exact_rows(acc, p: dict[str, Any]) -> np.ndarray:
    """Which buildings' results are the whole city's.

    A walking path no longer than ``m`` from a building stays within ``m`` of it. With
    ``m`` the distance to the halo's edge, every road, facility and green on such a path
    is in the partition (the network is the city's own, cut at the halo, not rebuilt),
    attached where the whole city attaches it, so a distance ≤ ``m`` found here is the
    city's, and so is "off the network" (no edge within the snap distance). ``m`` shrinks
    near greens whose nearest network point differs from the city's (their fallback entry
    is then not the city's). A building is kept when every category's walk and
    straight-line distance is within its margin, or missing because it is off the network
    or the category has nothing anywhere.
    """
    res = acc.buildings
    pts = res["point"].to_numpy()
    xy = shapely.get_coordinates(pts)
    margin_f = _halo_margin(xy, p["f"], p["extent"])
    margin = margin_f.copy()
    greens = p["greens"]
    if greens is not None and len(greens):
        local = _nearest_on_network(greens.geometry.to_numpy(), acc.graph.net)
        differs = ~np.all(local == p["green_near"], axis=1)
        margin = np.minimum(margin, _distance_to(pts, greens.geometry.to_numpy()[differs]))
    n = len(res)
    ok = np.ones(n, bool)
    need = np.zeros(n)
    table = acc.table
    cat = table["category"].to_numpy()
    for c in p["cats"]:
        rows = np.flatnonzero(cat == c)
        walk = table["walk_m"].to_numpy()[rows]
        straight = table["straight_m"].to_numpy()[rows]
        empty = p["empty"][c]
        off = acc.node < 0
        walk_ok = (walk <= margin) | (np.isnan(walk) & (off | empty))
        row_ok = walk_ok & ((straight <= margin_f) | empty)
        if (len(acc.sources.get(c, ())) > 0) != p["has_sources"][c]:
            row_ok[:] = False  # "no data" here but not in the city (or the reverse)
        ok &= row_ok
        # the partition's network is part of the city's: its distance is an upper bound
        # of the city's, so a halo that wide makes the row exact next time
        bound = np.where(off, straight, np.fmax(walk, straight))
        need = np.where(row_ok, need, np.fmax(need, np.nan_to_num(bound, nan=np.inf)))
    ok |= np.isinf(margin)
    return ok, need


def _coverage_part(p: dict[str, Any]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One partition: compute_access on its part of the city; the rows of buildings whose
    result is exact, with their position in the city's residential buildings; which
    buildings those are; for the others, the halo (m) that will make them exact (an
    upper bound of their distances; infinite when unknown)."""
    from gridgis.coverage import compute_access

    if "shared" in p:
        p = _read_shared(p)
    acc = compute_access(
        p["buildings"],
        None,  # type: ignore[arg-type]  # the network is given
        p["facilities"],
        p["greens"],
        p["settings"],
        p["cats"],
        crs=p["crs"],
        extra_points=shapely.points(p["extra"]),
        network=p["network"].net,
        gates=p.get("gates"),
    )
    ok, need = _exact_rows(acc, p)
    n = len(acc.buildings)
    reps = len(acc.table) // n if n else 0
    keep = np.tile(ok, reps)
    table = acc.table.loc[keep].assign(_pos=np.tile(p["pos"], reps)[keep])
    if "shared" in p:  # the exact rows go to the run's staging, once per partition
        ords = table["category"].map(p["order"]).to_numpy(np.int64) * p["n_res"]
        rows = table.drop(columns=["households", "_pos"]).reset_index(drop=True)
        p["shared"].stage("access", p["key"], rows, order=ords + table["_pos"].to_numpy())
    return table, ok, need[~ok]


def _coverage_findings(plan: _CoveragePlan) -> gpd.GeoDataFrame:
    """The findings compute_access makes: dropped pieces, buildings and facilities too
    far from the network (from the whole network's snaps)."""
    from gridgis.network import Snaps, far_snap_findings

    cov = plan.settings.coverage
    crs = plan.net.crs
    s = plan.snaps

    def part(a: int, b: int) -> Snaps:
        return Snaps(s.edge[a:b], s.offset_m[a:b], s.snap_m[a:b])

    nres, nfac = len(plan.res), len(plan.fac_pts)
    findings = [
        plan.net.findings,
        far_snap_findings(
            part(0, nres),
            plan.res["building_id"],
            "buildings",
            cov.max_snap_m,
            plan.res["point"].to_numpy(),
            crs,
        ),
    ]
    if plan.fac is not None and len(plan.fac):
        findings.append(
            far_snap_findings(
                part(nres, nres + nfac),
                plan.fac["facility_id"],
                "facilities",
                cov.max_snap_m,
                plan.fac_pts,
                crs,
            )
        )
    found = (
        pd.concat([f for f in findings if len(f)], ignore_index=True)
        if any(len(f) for f in findings)
        else findings[0]
    )
    return gpd.GeoDataFrame(found, geometry="geometry", crs=crs)


def _source_counts(plan: _CoveragePlan) -> dict[str, int]:
    """Search sources per category in the whole city: its facilities (or green entry
    points) that meet the network."""
    from gridgis.coverage import GREEN_CATEGORIES

    matched = plan.snaps.edge >= 0
    nres, nfac = len(plan.res), len(plan.fac_pts)
    green_cats = [c for c in GREEN_CATEGORIES if c in plan.cats]
    bounds = np.cumsum([nres + nfac, *[len(e) for e in plan.entries]])
    fac_cat = plan.fac["category"].to_numpy() if plan.fac is not None else np.array([])
    out = {}
    for c in plan.cats:
        if c in green_cats:
            i = green_cats.index(c)
            out[c] = int(matched[bounds[i] : bounds[i + 1]].sum())
        else:
            out[c] = int(matched[nres : nres + nfac][fac_cat == c].sum())
    return out


def _access_params(plan: _CoveragePlan) -> dict[str, Any]:
    """The parameters compute_access records, for the whole city."""
    from gridgis.coverage import coverage_params

    nres = len(plan.res)
    no_data = [c for c in plan.cats if plan.sources[c] == 0]
    lc_all = list(plan.settings.coverage.life_circle_categories)
    lc_all = lc_all if set(lc_all) <= set(plan.cats) else []
    params = coverage_params(plan.settings, plan.net.crs)
    params.update(
        {
            "categories": plan.cats,
            "life_circle_categories": plan.lc,
            "life_circle_no_data": [c for c in lc_all if c in no_data],
            "no_data_categories": no_data,
            "network": plan.net.stats,
            "warnings": list(getattr(plan.net, "warnings", [])),
            "buildings_residential": int(nres),
            "buildings_off_network": int((plan.snaps.edge[:nres] < 0).sum()),
            "sources": dict(plan.sources),
        }
    )
    return params


def _payloads(
    plan: _CoveragePlan, pending: list, rnd: int, whole: float, last: bool, shared
) -> Iterator[tuple[str, tuple[dict[str, Any]]]]:
    """``(key, (payload,))`` of each pending block of round ``rnd``, built one at a time
    as the runner asks for them (halo: the block's, at most ``whole`` m; ``whole`` in the
    last round)."""
    for key, pos, h in pending:
        payload = _coverage_payload(plan, pos, whole if last else min(h, whole), shared)
        payload["key"] = f"{key}-r{rnd}"
        yield payload["key"], (payload,)


def _whole_access(plan: _CoveragePlan, tables: list[pd.DataFrame]):
    """The city's :class:`~gridgis.coverage.Access` from the exact rows of every block
    (``tables`` is emptied as they are joined: no block's rows are held twice)."""
    from gridgis.coverage import LIFE_CIRCLE, Access

    order = {c: i for i, c in enumerate([*plan.cats, LIFE_CIRCLE])}
    table = pd.concat(tables, ignore_index=True)
    tables.clear()
    idx = np.lexsort((table["_pos"].to_numpy(), table["category"].map(order).to_numpy()))
    table = table.drop(columns="_pos").take(idx).reset_index(drop=True)
    return Access(
        table=table,
        buildings=plan.res,
        graph=None,  # type: ignore[arg-type]
        node=np.where(plan.snaps.edge[: len(plan.res)] >= 0, 0, -1).astype(np.int64),
        sources={},
        findings=_coverage_findings(plan),
        params=_access_params(plan),
    )


def coverage_partitioned(
    client: Client,
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    settings: Settings = DEFAULT,
    categories: list[str] | None = None,
    rules: ClusterRules = CLUSTER,
    shared: SharedRun | None = None,
) -> CoverageResult:
    """:func:`gridgis.coverage.run_coverage` on the cluster: the same layers, row for row.

    Residential buildings are cut into blocks of whole communities in spatial order. Each
    block runs :func:`gridgis.coverage.compute_access` on a worker with the walking
    network (its kept pieces), the facilities and the green spaces within a halo of
    ``H`` m around the block (``H`` = the largest walking radius of
    ``settings.coverage``, life circle included, plus ``rules.halo_extra_m``); the network
    pieces of the halo carry every point the whole city attaches to them, so edges are
    split where the city splits them. A building's result is kept when it is provably the
    city's (:func:`_exact_rows`: its distances are within its margin to the halo's edge);
    the others run again with the halo doubled (at most ``rules.max_halo_rounds`` times,
    then on the whole city). Rates, gaps, norms and findings are then computed once,
    here, over the whole access table.

    With ``shared`` (a :class:`~gridgis.partitioned.source.SharedRun` on a PostGIS or
    GeoParquet workspace) each worker reads its buildings (stored rows within their
    box), facilities and greens (the halo's box) from the store itself, and stages the
    exact ``access`` rows it found (one transaction per partition, key
    ``p<k>-r<round>``, placed where the single-process table has them); the caller
    publishes them with the other layers (``result.staged``).

    Returns
    -------
    CoverageResult
        As :func:`gridgis.coverage.run_coverage`; ``access.graph`` is ``None`` (there is
        no single graph); ``params["cluster"]`` is the :class:`RunReport`; ``staged``
        ``{layer: run}`` the layers workers staged (empty without ``shared``).
    """
    from gridgis.coverage import coverage_from_access, run_coverage

    for need in ("buildings", "roads"):
        if layers.get(need) is None or len(layers[need]) == 0:
            raise ValueError(f"coverage needs the '{need}' layer (missing or empty)")
    plan = _coverage_plan(layers, settings, categories)
    if len(plan.res) == 0:
        return run_coverage(layers, settings, categories)
    run = Runner(client, "coverage", rules)
    cov = settings.coverage
    halo = max([*cov.radius_m.values(), cov.life_circle_15min_m]) + rules.halo_extra_m
    parts = max(1, n_workers_of(client) * rules.coverage_partitions_per_worker)
    blocks = _coverage_blocks(plan, layers.get("communities"), min(parts, len(plan.res)))
    window = n_workers_of(client)
    pending = [(f"p{k}", pos, halo) for k, pos in enumerate(blocks)]
    whole = max(plan.extent[2] - plan.extent[0], plan.extent[3] - plan.extent[1]) + 1.0
    tables = []
    for rnd in range(rules.max_halo_rounds + 1):
        if not pending:
            break
        last = rnd == rules.max_halo_rounds
        items = _payloads(plan, pending, rnd, whole, last, shared)
        # payloads are built as workers take them (a few in flight): the client never
        # holds every block's network piece, points and facilities at once
        results = run.run(_coverage_part, items, window=window)
        nxt = []
        for (key, pos, h), (table, ok, need) in zip(pending, results, strict=True):
            tables.append(table)
            if not ok.all():
                nxt.append((key, pos[~ok], _wider(need, h)))
        del results
        left = sum(len(pos) for _, pos, _ in nxt)
        halos = sorted({round(min(h, whole)) for _, _, h in pending})
        run.report.notes.append(
            f"round {rnd + 1}: halo {'/'.join(map(str, halos))} m, {len(pending)} "
            f"partitions, {left} buildings left"
        )
        pending = nxt
    release_memory()  # what the rounds left (Dask's frames, payloads) before the join
    access = _whole_access(plan, tables)
    net = plan.net
    del plan  # the snaps, points, trees and greens are no longer needed
    release_memory()  # the blocks' tables and the plan, before rates, gaps, areas
    result = coverage_from_access(access, layers, settings, net)
    result.params["cluster"] = run.finish().as_dict()
    staged = {"access": shared.run} if shared is not None else {}
    result.staged = staged  # type: ignore[attr-defined]
    return result
