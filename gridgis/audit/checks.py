"""The audit's checks: small functions over one :class:`~gridgis.audit.context.AuditContext`.

Each check is registered with its name and severity in :data:`REGISTRY` (report order).
It adds findings through ``add`` and returns ``None``, or the reason it could not run
(``"no buildings layer"``). Each can be run or skipped alone
(:func:`gridgis.audit.audit_grids` ``checks=`` / ``skip=``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from gridgis.audit.context import GRID_SIZE_M, AuditContext, fmt_area, polygonal
from gridgis.codes import CodeError, validate_grid_code
from gridgis.delineate.crossings import crossing_grids, line_crossings

Add = Callable[..., None]
CheckFn = Callable[[AuditContext, Add], str | None]


@dataclass(frozen=True)
class Check:
    """One registered check."""

    name: str
    severity: str
    run: CheckFn
    what: str


REGISTRY: dict[str, Check] = {}


def check(name: str, severity: str, what: str) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as the check ``name`` (report order = registration order)."""

    def deco(fn: CheckFn) -> CheckFn:
        REGISTRY[name] = Check(name, severity, fn, what)
        return fn

    return deco


# -- codes --------------------------------------------------------------------------------


@check("missing_code", "error", "a grid without a code")
def missing_code(ctx: AuditContext, add: Add) -> str | None:
    for i in np.flatnonzero(ctx.codes.isna().to_numpy()):
        add(
            grid_row=int(ctx.rows1[i]),
            geometry=ctx.gm[i],
            detail=f"row {ctx.rows1[i]}: field '{ctx.options.code_field}' is empty",
        )
    return None


@check("invalid_code", "error", "a code failing a segment check (message names it)")
def invalid_code(ctx: AuditContext, add: Add) -> str | None:
    for i, code in enumerate(ctx.code_text):
        if not code:
            continue
        try:
            validate_grid_code(code, ctx.settings)
        except CodeError as exc:
            add(
                grid_code=code,
                grid_row=int(ctx.rows1[i]),
                geometry=ctx.gm[i],
                detail=f"row {ctx.rows1[i]}: {exc}",
            )
    return None


@check("duplicate_code", "error", "a code used by two or more grids (one finding per code)")
def duplicate_code(ctx: AuditContext, add: Add) -> str | None:
    codes = ctx.codes
    dups = codes[codes.notna() & codes.duplicated(keep=False)]
    for code, idx in dups.groupby(dups).groups.items():
        idx = np.asarray(idx)
        rows = ctx.rows1[idx]
        add(
            grid_code=code,
            grid_row=int(rows[0]),
            value=float(len(idx)),
            unit="grids",
            geometry=shapely.union_all(ctx.gm[idx]),
            detail=f"grid code {code} is used by {len(idx)} grids (rows "
            f"{', '.join(map(str, rows))})",
        )
    return None


@check("code_prefix_mismatch", "error", "the code's first 12 digits are not its community")
def code_prefix_mismatch(ctx: AuditContext, add: Add) -> str | None:
    source = ctx.community_source
    if source is None:
        return "no communities layer and no community field"
    for i in np.flatnonzero(ctx.fifteen):
        c, code = ctx.community[i], ctx.code_text[i]
        if pd.notna(c) and code[:12] != c:
            add(
                grid_code=code,
                community_code=c,
                grid_row=int(ctx.rows1[i]),
                geometry=ctx.gm[i],
                detail=f"grid code {code} starts with {code[:12]}, but its community is {c} "
                f"(by {source})",
            )
    return None


# -- geometry -----------------------------------------------------------------------------


@check("invalid_geometry", "warning", "a self-intersecting (or empty) polygon, repaired")
def invalid_geometry(ctx: AuditContext, add: Add) -> str | None:
    for i, why in ctx.repairs:
        add(
            grid_code=ctx.code_text[i] or None,
            grid_row=int(ctx.rows1[i]),
            detail=f"row {ctx.rows1[i]}: {why}",
        )
    return None


@check("multipart", "error", "a grid made of several separate polygons")
def multipart(ctx: AuditContext, add: Add) -> str | None:
    sliver = float(ctx.rules.audit_sliver_m2)
    parts, owner = shapely.get_parts(ctx.gm, return_index=True)
    big = shapely.area(parts) >= sliver
    n_parts = np.bincount(owner[big], minlength=ctx.n)
    for i in np.flatnonzero(n_parts > 1):
        pa = np.sort(shapely.area(parts[(owner == i) & big]))[::-1]
        add(
            grid_code=ctx.code_text[i] or None,
            community_code=ctx.community[i],
            grid_row=int(ctx.rows1[i]),
            value=float(n_parts[i]),
            unit="parts",
            geometry=ctx.gm[i],
            detail=f"{n_parts[i]} separate parts: "
            f"{', '.join(fmt_area(a) for a in pa[:5])}{'…' if len(pa) > 5 else ''}",
        )
    return None


@check("crosses_community", "error", "part of the grid lies outside its community")
def crosses_community(ctx: AuditContext, add: Add) -> str | None:
    if not ctx.has_communities:
        return "no communities layer"
    ccodes, cm = ctx.community_layer
    own = ctx.best_community.copy()
    how = np.full(ctx.n, "by location", dtype=object)
    if ctx.declared is not None:  # the community the field names, when it exists
        pos = {c: k for k, c in enumerate(ccodes) if c}
        named = np.array([pos.get(c, -1) if pd.notna(c) else -1 for c in ctx.declared])
        own = np.where(named >= 0, named, own)
        how[named >= 0] = f"named in field {ctx.options.community_field}"
    has = np.flatnonzero(own >= 0)
    outside = ctx.area.copy()
    outside[has] = shapely.area(
        shapely.difference(ctx.gm[has], cm[own[has]], grid_size=GRID_SIZE_M)
    )
    share = np.divide(outside, ctx.area, out=np.zeros(ctx.n), where=ctx.area > 0)
    rules = ctx.rules
    cross = (ctx.area > 0) & (
        (outside > rules.audit_sliver_m2) | (share > rules.audit_outside_share)
    )
    for i in np.flatnonzero(cross):
        where = (
            f"outside its community {ccodes[own[i]]} ({how[i]})"
            if own[i] >= 0
            else "outside every community"
        )
        add(
            grid_code=ctx.code_text[i] or None,
            community_code=ccodes[own[i]] if own[i] >= 0 else None,
            grid_row=int(ctx.rows1[i]),
            value=float(outside[i]),
            unit="m2",
            geometry=ctx.gm[i],
            detail=f"{fmt_area(outside[i])} ({share[i]:.1%}) of the grid lies {where}",
        )
    return None


def _enclosed_gaps(ctx: AuditContext, covered, add: Add) -> None:
    """Without communities, a gap is a hole enclosed by the grids."""
    sliver = float(ctx.rules.audit_sliver_m2)
    holes = (
        [shapely.Polygon(r) for p in shapely.get_parts(covered) for r in p.interiors]
        if not covered.is_empty
        else []
    )
    for h in holes:
        gap = shapely.difference(h, covered, grid_size=GRID_SIZE_M)
        for part in shapely.get_parts(polygonal(np.array([gap], dtype=object))[0]):
            if part.area >= sliver:
                add(
                    value=float(part.area),
                    unit="m2",
                    geometry=part,
                    detail=f"{fmt_area(part.area)} enclosed by grids lies in no grid "
                    f"(no communities layer: only enclosed gaps are found)",
                )


def covered_by_grids(ctx: AuditContext, cm: np.ndarray) -> np.ndarray:
    """For each community polygon, the union of the grids (with an area) that intersect
    it, in row order, snapped to :data:`GRID_SIZE_M`: what its gaps are cut from. A
    community's gaps depend on it and its grids only, so a part of the city holding the
    community and those grids finds them identically (:mod:`gridgis.partitioned.audit`)."""
    ci, gi = ctx.tree.query(cm, predicate="intersects")
    keep = ctx.area[gi] > 0
    ci, gi = ci[keep], gi[keep]
    order = np.lexsort((gi, ci))
    ci, gi = ci[order], gi[order]
    out = np.full(len(cm), shapely.Polygon(), dtype=object)
    bounds = np.searchsorted(ci, np.arange(len(cm) + 1))
    for c in np.flatnonzero(np.diff(bounds)):
        out[c] = shapely.union_all(ctx.gm[gi[bounds[c] : bounds[c + 1]]], grid_size=GRID_SIZE_M)
    return out


@check("gap", "error", "community ground in no grid (polygon, m²)")
def gap(ctx: AuditContext, add: Add) -> str | None:
    if not ctx.has_communities:
        covered = shapely.union_all(ctx.gm[ctx.area > 0], grid_size=GRID_SIZE_M)
        _enclosed_gaps(ctx, covered, add)
        return None
    ccodes, cm = ctx.community_layer
    holes = shapely.difference(cm, covered_by_grids(ctx, cm), grid_size=GRID_SIZE_M)
    parts, owner = shapely.get_parts(holes, return_index=True)
    parts, owner2 = shapely.get_parts(polygonal(parts), return_index=True)
    owner = owner[owner2]
    parts = shapely.normalize(parts)  # rings oriented, first vertex the lowest
    part_area = shapely.area(parts)
    for j in np.flatnonzero(part_area >= ctx.rules.audit_sliver_m2):
        add(
            community_code=ccodes[owner[j]] or None,
            value=float(part_area[j]),
            unit="m2",
            geometry=parts[j],
            detail=f"{fmt_area(part_area[j])} of community {ccodes[owner[j]]} lies in no grid",
        )
    return None


@check("overlap", "error", "ground in two grids (polygon, m²)")
def overlap(ctx: AuditContext, add: Add) -> str | None:
    sliver = float(ctx.rules.audit_sliver_m2)
    gm = ctx.gm
    a_idx, b_idx = ctx.tree.query(gm, predicate="intersects")
    keep = a_idx < b_idx
    a_idx, b_idx = a_idx[keep], b_idx[keep]
    if len(a_idx) == 0:
        return None
    # neighbours mostly only touch: a plain overlay screens them out, the robust snapped
    # one computes the candidates' polygons
    try:
        cand = shapely.area(shapely.intersection(gm[a_idx], gm[b_idx])) >= 0.5 * sliver
    except shapely.errors.GEOSException:
        cand = np.ones(len(a_idx), dtype=bool)
    a_idx, b_idx = a_idx[cand], b_idx[cand]
    inter = polygonal(shapely.intersection(gm[a_idx], gm[b_idx], grid_size=GRID_SIZE_M))
    ia = shapely.area(inter)
    for k in np.flatnonzero(ia >= sliver):
        i, j = a_idx[k], b_idx[k]
        if ctx.rank[j] < ctx.rank[i]:
            i, j = j, i
        add(
            grid_code=ctx.code_text[i] or None,
            other_code=ctx.code_text[j] or None,
            community_code=ctx.community[i],
            grid_row=int(ctx.rows1[i]),
            value=float(ia[k]),
            unit="m2",
            geometry=inter[k],
            detail=f"{fmt_area(ia[k])} lies in both {ctx.label(i)} and {ctx.label(j)}",
        )
    return None


# -- buildings and households -------------------------------------------------------------


@check(
    "households_out_of_range",
    "error",
    "residential grid outside min–max households, unit grid above the maximum",
)
def households_out_of_range(ctx: AuditContext, add: Add) -> str | None:
    if not ctx.has_buildings:
        return "no buildings layer"
    b = ctx.buildings
    lo, hi = ctx.rules.min_households, ctx.rules.max_households
    low = ~ctx.unit & (b.households < lo)
    # a unit grid holding residents (campus dormitories, staff housing) may not exceed
    # the band either; below it is normal (a caretaker's flat)
    high = b.households > hi
    for i in np.flatnonzero(low | high):
        what = (
            f"{b.households[i]:,} households < {lo} (minimum)"
            if low[i]
            else f"{b.households[i]:,} households > {hi} (maximum)"
            + (" in a unit grid with residents" if ctx.unit[i] else "")
        )
        add(
            grid_code=ctx.code_text[i] or None,
            community_code=ctx.community[i],
            grid_row=int(ctx.rows1[i]),
            value=float(b.households[i]),
            unit="households",
            geometry=ctx.gm[i],
            detail=f"{what}, in {b.building_count[i]} buildings",
        )
    return None


@check("building_no_grid", "error", "a building overlapping no grid")
def building_no_grid(ctx: AuditContext, add: Add) -> str | None:
    if not ctx.has_buildings:
        return "no buildings layer"
    b = ctx.buildings
    for i in np.flatnonzero(b.best < 0):
        add(
            community_code=b.community[i],
            feature_id=b.ids[i],
            value=float(b.hh[i]),
            unit="households",
            geometry=b.geoms[i],
            detail=f"building {b.ids[i]} ({b.hh[i]} households) overlaps no grid",
        )
    return None


@check("building_in_two_grids", "warning", "a building split between grids")
def building_in_two_grids(ctx: AuditContext, add: Add) -> str | None:
    """Two or more grids each hold ≥ 1 − ``grid.assign_min_share`` of the building."""
    if not ctx.has_buildings:
        return "no buildings layer"
    b = ctx.buildings
    floor = 1.0 - float(ctx.rules.assign_min_share)
    big = b.share >= floor - 1e-9
    cnt = np.bincount(b.p[big], minlength=len(b.best))
    for i in np.flatnonzero(cnt >= 2):
        sel = np.flatnonzero((b.p == i) & big)
        desc = ", ".join(f"{b.share[k]:.0%} in {ctx.label(b.q[k])}" for k in sel)
        add(
            grid_code=ctx.code_text[b.q[sel[0]]] or None,
            other_code=ctx.code_text[b.q[sel[1]]] or None,
            community_code=b.community[i],
            feature_id=b.ids[i],
            value=float(b.share[sel[0]]),
            unit="share",
            grid_row=int(ctx.rows1[b.q[sel[0]]]),
            geometry=b.geoms[i],
            detail=f"building {b.ids[i]} ({b.hh[i]} households): {desc}",
        )
    return None


# -- roads --------------------------------------------------------------------------------


def _avoided_roads(ctx: AuditContext):
    """(metric lines, names, ids) of the roads of ``grid.avoid_road_classes``, or the
    reason there are none to check."""
    roads = ctx.layers.get("roads")
    if not ctx.present("roads"):
        return "no roads layer"
    if "road_class" not in roads.columns:
        return "roads have no road_class"
    r = roads[roads["road_class"].astype("string").isin(ctx.rules.avoid_road_classes).fillna(False)]
    rm = np.asarray(r.geometry.to_crs(ctx.crs).values, dtype=object)
    names = (
        r["name"].astype("string").fillna("").to_numpy(dtype=object)
        if "name" in r.columns
        else np.full(len(r), "", dtype=object)
    )
    rids = (
        r["road_id"].astype(str).to_numpy()
        if "road_id" in r.columns
        else np.array([f"row {i + 1}" for i in range(len(r))])
    )
    return rm, names, rids


@check("arterial_crossing", "warning", "an avoided-class road runs through the grid")
def arterial_crossing(ctx: AuditContext, add: Add) -> str | None:
    """By :func:`gridgis.delineate.crossings.line_crossings`, the rule delineation uses."""
    got = _avoided_roads(ctx)
    if isinstance(got, str):
        return got
    rm, names, rids = got
    rules = ctx.rules
    per = line_crossings(ctx.gm, rm, rules, rm)
    if per.empty:
        return None
    along = per.groupby("grid")["median_m"].sum()
    per = per[per["length_m"] > 0.01]
    width = float(rules.median_width_m)
    avoid = "/".join(rules.avoid_road_classes)
    for i, m in crossing_grids(per, rules).items():
        rs = per[per["grid"] == i].sort_values("length_m", ascending=False)
        desc = ", ".join(
            f"{names[k] or rids[k]} ({rids[k]}) {mm:,.0f} m"
            for k, mm in zip(rs["line"], rs["length_m"], strict=True)
        )
        skip = (
            f"; {along[i]:,.0f} m along median strips (carriageways ≤ {width:g} m apart) "
            "not counted"
            if along.get(i, 0.0) >= 1
            else ""
        )
        add(
            grid_code=ctx.code_text[i] or None,
            community_code=ctx.community[i],
            grid_row=int(ctx.rows1[i]),
            value=float(m),
            unit="m",
            geometry=ctx.gm[i],
            other_code=",".join(rids[k] for k in rs["line"]),
            detail=f"{avoid} road runs {m:,.0f} m through the grid (more than "
            f"{rules.audit_road_tolerance_m:g} m from its boundary): {desc}{skip}",
        )
    return None


#: Report order of the checks: the original table's order.
ORDER = (
    "missing_code",
    "invalid_code",
    "duplicate_code",
    "code_prefix_mismatch",
    "invalid_geometry",
    "multipart",
    "crosses_community",
    "gap",
    "overlap",
    "households_out_of_range",
    "building_no_grid",
    "building_in_two_grids",
    "arterial_crossing",
)
REGISTRY = {k: REGISTRY[k] for k in ORDER}
