"""Partitioned audit: blocks of communities, each audited with the neighbours its checks
look at (a halo of grids, buildings, communities and roads)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.partitioned.runner import Runner, balanced_cuts, hilbert_order, n_parts
from gridgis.spatial import points_in_polygons, rank_of
from gridgis.standards import CLUSTER, DEFAULT, ClusterRules, Settings

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from gridgis.audit import AuditResult

log = logging.getLogger(__name__)

#: Checks run once over the whole layer, here: a code's duplicates may lie anywhere.
WHOLE_LAYER = ("duplicate_code",)

#: Checks whose findings belong to one grid (kept from the part where it is core).
PER_GRID = (
    "missing_code",
    "invalid_code",
    "code_prefix_mismatch",
    "invalid_geometry",
    "multipart",
    "crosses_community",
    "overlap",
    "households_out_of_range",
    "arterial_crossing",
)

#: Checks whose findings belong to one building (kept where the building is core).
PER_BUILDING = ("building_no_grid", "building_in_two_grids")

#: Margin (m) around what a part looks at: grids this near a community count for its gaps
#: (snap rounding at 1 mm never reaches farther).
NEAR_M = 1.0


@dataclass
class _Whole:
    """What the driver knows of the whole workspace, metric."""

    ctx: Any  # AuditContext of the whole grid layer (and its communities)
    layers: dict[str, Any]
    cm: np.ndarray  # communities, metric, repaired
    ccode: np.ndarray  # community codes ("" none)
    bm: np.ndarray  # buildings, metric
    rm: np.ndarray  # roads, metric
    present: frozenset[str]


def _metric(frame, crs) -> np.ndarray:
    if frame is None or len(frame) == 0:
        return np.empty(0, dtype=object)
    return np.asarray(frame.geometry.to_crs(crs).values, dtype=object)


def _located_any(ctx, cm: np.ndarray) -> bool:
    """Whether any grid overlaps any community with a positive area (the test
    :attr:`AuditContext.located` makes for every grid), stopping at the first."""
    if len(cm) == 0:
        return False
    gi, ci = shapely.STRtree(cm).query(ctx.gm, predicate="intersects")
    for a in range(0, len(gi), 256):
        inter = shapely.intersection(ctx.gm[gi[a : a + 256]], cm[ci[a : a + 256]])
        if (shapely.area(inter) > 0).any():
            return True
    return False


def _keys(points: np.ndarray, cm: np.ndarray, group: np.ndarray, extent) -> tuple:
    """(Hilbert key of the point, community group holding it or -1); an empty point
    counts as the extent's corner."""
    ok = ~(shapely.is_empty(points) | shapely.is_missing(points))
    key_xy = np.tile(np.asarray(extent[:2], float), (len(points), 1))
    key_xy[ok] = shapely.get_coordinates(points[ok]).reshape(-1, 2)
    g = np.full(len(points), -1, np.int64)
    if len(cm) and len(points):
        ci = points_in_polygons(points, cm, rank_of(np.arange(len(cm))))
        g = np.where(ci >= 0, group[np.maximum(ci, 0)], -1)
    return hilbert_order(key_xy, extent), g


def _blocks(whole: _Whole, parts: int) -> list[dict[str, np.ndarray]]:
    """Core grids, communities and buildings of each block: whole communities (all
    communities of one code together) in Hilbert order; grids and buildings go with the
    community holding their representative point."""
    ctx = whole.ctx
    codes = whole.ccode
    group = pd.factorize(pd.Series(codes, dtype=object))[0].astype(np.int64)
    pieces = [g for g in (ctx.gm, whole.cm, whole.bm) if len(g)]
    extent = tuple(shapely.total_bounds(np.concatenate(pieces)).tolist())
    pts = [
        shapely.point_on_surface(ctx.gm),
        shapely.point_on_surface(whole.cm) if len(whole.cm) else np.empty(0, object),
        shapely.point_on_surface(whole.bm) if len(whole.bm) else np.empty(0, object),
    ]
    hs, gs, kinds, idx = [], [], [], []
    for kind, p in enumerate(pts):
        h, g = _keys(p, whole.cm, group, extent)
        if kind == 1:  # a community is its own group, whatever its point lies in
            g = group
        hs.append(h)
        gs.append(g)
        kinds.append(np.full(len(p), kind))
        idx.append(np.arange(len(p)))
    h, g, kind, ix = map(np.concatenate, (hs, gs, kinds, idx))
    # a community group is keyed by its first member's Hilbert key
    first = pd.Series(h[kind == 1]).groupby(g[kind == 1]).min()
    h = np.where(g >= 0, first.reindex(g).fillna(0).to_numpy(np.int64), h)
    order = np.lexsort((ix, kind, g, h))
    gs_ = g[order]
    breaks = np.r_[True, (gs_[1:] != gs_[:-1]) | (gs_[1:] < 0)]
    weight = np.where(kind[order] == 1, 0.0, 1.0)
    out = []
    for a, b in balanced_cuts(weight, parts, breaks):
        sel = order[a:b]
        block = {k: np.sort(ix[sel][kind[sel] == i]) for i, k in enumerate(("g", "c", "b"))}
        if len(block["g"]) == 0 and out:  # no grid to audit against: join the last block
            out[-1] = {k: np.union1d(out[-1][k], v) for k, v in block.items()}
        else:
            out.append(block)
    if out and len(out[0]["g"]) == 0 and len(out) > 1:
        out[1] = {k: np.union1d(out[1][k], v) for k, v in out.pop(0).items()}
    return out


def _query(tree, geoms: np.ndarray, predicate: str = "intersects", **kw) -> np.ndarray:
    if len(geoms) == 0 or tree is None:
        return np.empty(0, np.int64)
    return np.unique(tree.query(geoms, predicate=predicate, **kw)[1])


def _payload(whole: _Whole, trees: dict, block: dict, settings: Settings) -> dict[str, Any]:
    """The rows of each layer one block needs: its core grids and every grid, building,
    community and road a check of a core grid, community or building looks at."""
    ctx = whole.ctx
    g, c, b = block["g"], block["c"], block["b"]
    gm = ctx.gm
    near_b = np.union1d(b, _query(trees["b"], gm[g]))  # buildings of the core grids
    grids = np.union1d(
        g,
        np.concatenate(
            [
                _query(ctx.tree, gm[g]),  # overlap partners
                _query(ctx.tree, whole.bm[near_b]),  # rivals for a building
                _query(ctx.tree, whole.cm[c], "dwithin", distance=NEAR_M),  # gaps
            ]
        ),
    ).astype(np.int64)
    comms = np.union1d(
        c,
        np.concatenate([_query(trees["c"], gm[grids]), _query(trees["c"], whole.bm[near_b])]),
    ).astype(np.int64)
    fld = ctx.options.community_field
    if fld and len(whole.ccode):  # the community a core grid names, wherever it is
        from gridgis.assign import code_strings

        named = set(code_strings(ctx.grids[fld].iloc[g]).dropna())
        comms = np.union1d(comms, np.flatnonzero(np.isin(whole.ccode, list(named))))
    roads = np.empty(0, np.int64)
    if len(whole.rm) and len(g):
        pad = float(settings.grid.median_width_m) + float(settings.grid.audit_road_tolerance_m)
        box = shapely.box(*shapely.total_bounds(gm[g])).buffer(pad + NEAR_M, join_style="mitre")
        roads = _query(trees["r"], np.array([box]))
    layers = whole.layers
    sub = {
        "buildings": layers["buildings"].iloc[near_b] if "buildings" in layers else None,
        "communities": layers["communities"].iloc[comms] if "communities" in layers else None,
        "roads": layers["roads"].iloc[roads] if "roads" in layers else None,
    }
    bid = layers["buildings"]["building_id"] if "buildings" in layers else None
    return {
        "grids": ctx.grids.iloc[grids],
        "layers": {k: v for k, v in sub.items() if v is not None},
        "rows1": grids + 1,
        "core_rows": g + 1,
        "core_communities": set(whole.ccode[c]),
        "core_buildings": set(bid.iloc[b].astype(str)) if bid is not None else set(),
    }


def _audit_part(p: dict[str, Any], kw: dict[str, Any]) -> tuple:
    """On a worker: audit one block; the findings and grid figures that are its own."""
    from gridgis.audit import Scope, audit_grids

    kw = dict(kw)  # a retry gets the same arguments
    scope = Scope(p["rows1"], kw.pop("crs"), kw.pop("present"), kw.pop("located_any"))
    res = audit_grids(p["grids"], p["layers"], scope=scope, **kw)
    f = res.findings
    check = f["check"].to_numpy()
    rows = f["grid_row"].to_numpy(dtype="float", na_value=np.nan)
    keep = np.isin(check, PER_GRID) & np.isin(rows, p["core_rows"])
    keep |= (check == "gap") & f["community_code"].fillna("").isin(p["core_communities"])
    keep |= np.isin(check, PER_BUILDING) & f["feature_id"].isin(p["core_buildings"])
    grids = res.grids[res.grids["grid_row"].isin(p["core_rows"])]
    return f[keep], grids, res.skipped


def _whole(grids, layers, settings, opts) -> _Whole:
    from gridgis.audit import AuditContext

    layers = {k: v for k, v in layers.items() if v is not None}
    comms = layers.get("communities")
    has_c = comms is not None and len(comms) and "community_code" in comms.columns
    # the whole layer's grids, and its communities repaired as every check repairs them
    ctx = AuditContext(grids, {"communities": comms} if has_c else {}, settings, opts)
    ccode, cm = ctx.community_layer if has_c else (np.empty(0, object), np.empty(0, object))
    b = layers.get("buildings")
    if b is not None and "building_id" not in b.columns:
        layers["buildings"] = b.assign(building_id=[f"row {i + 1}" for i in range(len(b))])
    r = layers.get("roads")
    if r is not None and "road_id" not in r.columns and "road_class" in r.columns:
        # the ids single-process messages give avoided roads without one: their row among
        # the avoided roads (a block holds only some of them)
        avoided = r["road_class"].astype("string").isin(settings.grid.avoid_road_classes)
        avoided = avoided.fillna(False).to_numpy()
        ids = np.full(len(r), "", dtype=object)
        ids[avoided] = [f"row {i + 1}" for i in range(int(avoided.sum()))]
        layers["roads"] = r.assign(road_id=ids)
    return _Whole(
        ctx=ctx,
        layers=layers,
        cm=cm,
        ccode=ccode,
        bm=_metric(layers.get("buildings"), ctx.crs),
        rm=_metric(layers.get("roads"), ctx.crs),
        present=frozenset(k for k, v in layers.items() if len(v)),
    )


def audit_partitioned(
    client: Client,
    grids: gpd.GeoDataFrame,
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    settings: Settings = DEFAULT,
    code_field: str = "grid_code",
    community_field: str | None = None,
    kind_field: str | None = "kind",
    layer_name: str = "grids",
    checks: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    rules: ClusterRules = CLUSTER,
) -> AuditResult:
    """:func:`gridgis.audit.audit_grids` on the cluster: the same findings, row for row.

    The city is cut into blocks of whole communities (Hilbert order); grids and buildings
    go with the community holding their representative point. Each block is audited on a
    worker by :func:`~gridgis.audit.audit_grids` itself (with a
    :class:`~gridgis.audit.Scope`: the grids' rows, CRS and layers of the whole
    workspace) on its core grids plus a halo: every grid overlapping a core grid
    (overlaps), every building overlapping a core grid and every grid overlapping those
    buildings (households by largest overlap), every grid within 1 m of a core community
    (gaps), every community overlapping those grids and buildings or named by a core
    grid, and the roads within ``grid.median_width_m`` + ``grid.audit_road_tolerance_m``
    of the core grids (arterial crossings and their median strips). A block keeps only
    the findings of its core grids, communities and buildings, so each finding comes
    from exactly one block, computed on everything the single-process check sees around
    it. Duplicate codes (anywhere in the layer), and gaps when there are no communities
    (holes of the union of all grids), are checked once, here, on the whole layer.

    Buildings whose ``building_id`` is not unique are audited in one process (their
    findings could not be told apart between blocks).

    Returns
    -------
    AuditResult
        As :func:`gridgis.audit.audit_grids`; its ``grids`` figures too.
    """
    from gridgis.audit import (
        REGISTRY,
        AuditResult,
        Options,
        audit_grids,
        crs_text,
        order_findings,
        run_checks,
    )
    from gridgis.audit import selected_checks as select

    kw = dict(code_field=code_field, community_field=community_field, kind_field=kind_field)
    names = select(checks, skip)
    b = layers.get("buildings")
    if b is not None and "building_id" in b.columns and b["building_id"].duplicated().any():
        log.warning("audit: building ids are not unique; audited in one process")
        return audit_grids(
            grids, layers, settings, layer_name=layer_name, checks=checks, skip=skip, **kw
        )
    whole = _whole(grids, layers, settings, Options(layer_name=layer_name, **kw))
    here = [n for n in names if n in WHOLE_LAYER or (n == "gap" and not len(whole.cm))]
    found, skipped = run_checks(whole.ctx, here)
    on_workers = [n for n in names if n not in here]
    frames, stats = [found], []
    run = Runner(client, "audit", rules)
    # every block runs, even with no check to run there: the grid figures come from them
    trees = {
        "b": shapely.STRtree(whole.bm) if len(whole.bm) else None,
        "c": shapely.STRtree(whole.cm) if len(whole.cm) else None,
        "r": shapely.STRtree(whole.rm) if len(whole.rm) else None,
    }
    fixed = dict(
        kw,
        settings=settings,
        layer_name=layer_name,
        checks=on_workers,
        crs=whole.ctx.crs,
        present=whole.present,
        located_any=_located_any(whole.ctx, whole.cm) if community_field is None else None,
    )
    blocks = _blocks(whole, n_parts(client, rules, whole.ctx.n))
    items = [
        (f"block{k}", (_payload(whole, trees, blk, settings), dict(fixed)))
        for k, blk in enumerate(blocks)
    ]
    for f, g, why in run.run(_audit_part, items):
        frames.append(f)
        stats.append(g)
        skipped.update({k: v for k, v in why.items() if k in on_workers})
    report = run.finish()
    skipped.update({c: "not selected" for c in REGISTRY if c not in names})
    findings = _merge(frames, whole)
    grid_figures = _grid_figures(stats, whole)
    result = AuditResult(
        findings=order_findings(findings),
        grids=grid_figures,
        crs=crs_text(whole.ctx.crs),
        skipped={c: skipped[c] for c in REGISTRY if c in skipped},
    )
    result.findings.attrs["cluster"] = report.as_dict()
    return result


def _merge(frames: list, whole: _Whole) -> gpd.GeoDataFrame:
    """Findings of every block in the order one process adds them: by grid row, and gaps
    by community, before the report order is applied."""
    frames = [f for f in frames if len(f)] or frames[:1]
    f = pd.concat(frames, ignore_index=True)
    pos = {c: i for i, c in reversed(list(enumerate(whole.ccode)))}
    comm = f["community_code"].fillna("").map(pos).where(f["check"] == "gap")
    order = np.lexsort(
        (
            comm.fillna(-1).to_numpy(float),
            f["grid_row"].to_numpy(dtype="float", na_value=np.inf),
        )
    )
    out = f.iloc[order].reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=frames[0].crs)


def _grid_figures(stats: list, whole: _Whole) -> gpd.GeoDataFrame:
    from gridgis.audit import grid_stats

    if not stats:  # no check ran on a worker: the figures of the whole layer
        return grid_stats(whole.ctx)
    g = pd.concat(stats, ignore_index=True).sort_values("grid_row").reset_index(drop=True)
    return gpd.GeoDataFrame(g, geometry="geometry", crs=stats[0].crs)
