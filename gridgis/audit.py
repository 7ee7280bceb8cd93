"""Audit of the grids a city already has (issue 3, deliverable 4).

Most cities drew their responsibility grids by hand. :func:`audit_grids` checks such a
layer against the rules of ``STANDARDS.md`` and returns one finding per problem:

==========================  ========  ===================================================
check                       severity  what
==========================  ========  ===================================================
``missing_code``            error     a grid without a code
``invalid_code``            error     a code failing a segment check (message names it)
``duplicate_code``          error     a code used by two or more grids (one finding/code)
``code_prefix_mismatch``    error     the code's first 12 digits are not its community
``invalid_geometry``        warning   a self-intersecting (or empty) polygon, repaired
``multipart``               error     a grid made of several separate polygons
``crosses_community``       error     part of the grid lies outside its community
``gap``                     error     community ground in no grid (polygon, m²)
``overlap``                 error     ground in two grids (polygon, m²)
``households_out_of_range`` error     residential grid outside min–max households
``building_no_grid``        error     a building overlapping no grid
``building_in_two_grids``   warning   a building split between grids
``arterial_crossing``       warning   an avoided-class road runs through the grid
==========================  ========  ===================================================

An arterial crossing counts the length of avoided-class road inside a grid more than
``settings.grid.audit_road_tolerance_m`` from its boundary, except the stretches that run
along a median strip at the grid's edge: a divided arterial is two carriageways, and the
strip between them belongs to the grid on one side, so the nearer carriageway lies inside
that grid without the grid straddling the road (:func:`median_length`; the same rule
keeps delineation from reporting such a road as a crossing).

Households of a grid = sum of ``households`` of the buildings whose largest overlap is
that grid (as :mod:`gridgis.assign` assigns them). Areas are measured in the metric CRS
of the grids (:func:`gridgis.crs.metric_crs_for`); pieces smaller than
``settings.grid.audit_sliver_m2`` are digitising slivers and ignored. Grid rows are
audited as they are: duplicate or missing codes do not stop the other checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gridgis.assign import code_strings
from gridgis.codes import CodeError, validate_grid_code
from gridgis.crs import metric_crs_for
from gridgis.delineate.crossings import median_length
from gridgis.errors import InputError
from gridgis.spatial import largest_overlap, overlap_pairs, rank_of
from gridgis.standards import DEFAULT, Settings

#: Checks in report order, with their severity.
CHECKS: dict[str, str] = {
    "missing_code": "error",
    "invalid_code": "error",
    "duplicate_code": "error",
    "code_prefix_mismatch": "error",
    "invalid_geometry": "warning",
    "multipart": "error",
    "crosses_community": "error",
    "gap": "error",
    "overlap": "error",
    "households_out_of_range": "error",
    "building_no_grid": "error",
    "building_in_two_grids": "warning",
    "arterial_crossing": "warning",
}

#: Columns of the ``grid_findings`` layer.
FINDING_COLUMNS = [
    "grid_code",
    "community_code",
    "check",
    "severity",
    "detail",
    "value",
    "unit",
    "other_code",
    "feature_id",
    "grid_row",
]


GRID_SIZE_M = 0.001
"""Precision (m) of the overlays that find gaps, overlaps and community crossings: snap
rounding to 1 mm keeps GEOS robust where hand-drawn (or reprojected) neighbours share
edges that differ by nanometres, far below ``audit_sliver_m2``."""


#: Values of the kind field that mark a unit grid (单位网格 / 专属网格): no household range.
UNIT_KINDS = ("unit", "单位网格", "专属网格", "单位", "专属")


class AuditError(InputError):
    """Grids that cannot be audited at all (no such field, no CRS)."""


@dataclass
class AuditResult:
    """The outcome of :func:`audit_grids`.

    ``findings`` is the ``grid_findings`` layer (EPSG:4326; geometry null where a finding
    has none). ``grids`` holds, per input grid row, ``grid_code``, ``community_code`` (by
    location), ``households``, ``building_count`` and ``area_m2``. ``skipped`` names checks
    that could not run and why (e.g. no ``roads`` layer).
    """

    findings: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    crs: str
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """One row per check: severity, number of findings, and 'ran' or why skipped."""
        counts = self.findings["check"].value_counts()
        rows = []
        for check, severity in CHECKS.items():
            rows.append(
                {
                    "check": check,
                    "severity": severity,
                    "findings": int(counts.get(check, 0)),
                    "status": f"skipped: {self.skipped[check]}" if check in self.skipped else "ran",
                }
            )
        return pd.DataFrame(rows)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Only the polygonal parts of each geometry (intersections and make_valid can add
    points and lines); empty polygon where none."""
    out = np.asarray(geoms, dtype=object).copy()
    kinds = shapely.get_type_id(out)
    odd = np.flatnonzero(~np.isin(kinds, (3, 6)))
    for i in odd:
        g = out[i]
        parts = (
            []
            if g is None
            else [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
        )
        out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return out


def _to_storage(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    if len(geoms) == 0:
        return np.asarray(geoms, dtype=object)
    return np.asarray(gpd.GeoSeries(geoms, crs=crs).to_crs("EPSG:4326").values, dtype=object)


def _fmt_area(m2: float) -> str:
    return f"{m2 / 10_000:,.2f} ha" if m2 >= 10_000 else f"{m2:,.1f} m²"


class _Findings:
    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.geoms: list = []  # metric CRS, or None

    def add(
        self,
        check: str,
        *,
        grid_code=None,
        community_code=None,
        detail: str = "",
        value: float | None = None,
        unit: str = "",
        other_code=None,
        feature_id=None,
        grid_row: int | None = None,
        geometry=None,
    ) -> None:
        self.rows.append(
            {
                "grid_code": grid_code,
                "community_code": community_code,
                "check": check,
                "severity": CHECKS[check],
                "detail": detail,
                "value": value,
                "unit": unit,
                "other_code": other_code,
                "feature_id": feature_id,
                "grid_row": grid_row,
            }
        )
        self.geoms.append(geometry)

    def frame(self, crs: CRS) -> gpd.GeoDataFrame:
        df = pd.DataFrame(self.rows, columns=FINDING_COLUMNS)
        geoms = np.array(self.geoms, dtype=object) if self.geoms else np.empty(0, object)
        has = np.array([g is not None for g in geoms], dtype=bool)
        out = np.full(len(geoms), None, dtype=object)
        if has.any():
            out[has] = _to_storage(geoms[has], crs)
        gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(out, crs="EPSG:4326"), crs="EPSG:4326")
        for col in (
            "grid_code",
            "community_code",
            "check",
            "severity",
            "detail",
            "unit",
            "other_code",
            "feature_id",
        ):
            gdf[col] = gdf[col].astype("string")
        gdf["value"] = pd.to_numeric(gdf["value"], errors="coerce").astype("Float64")
        gdf["grid_row"] = pd.to_numeric(gdf["grid_row"], errors="coerce").astype("Int64")
        order = {c: i for i, c in enumerate(CHECKS)}
        gdf["_o"] = gdf["check"].map(order)
        gdf = gdf.sort_values(
            ["_o", "grid_code", "other_code", "feature_id", "value"],
            kind="stable",
            na_position="last",
        )
        return gdf.drop(columns="_o").reset_index(drop=True)


def audit_grids(
    grids: gpd.GeoDataFrame,
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    settings: Settings = DEFAULT,
    code_field: str = "grid_code",
    community_field: str | None = None,
    kind_field: str | None = "kind",
    layer_name: str = "grids",
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Check a city's grid layer; return every finding.

    Parameters
    ----------
    grids
        Grid polygons, any CRS, with a code field.
    layers
        Workspace layers: ``communities`` (gaps, community crossings, code prefixes),
        ``buildings`` (households, buildings in no grid or two) and ``roads`` (arterial
        crossings). Checks whose layer is absent are skipped and say so.
    code_field
        Field holding the grid code (a city's own name for it, e.g. ``WGBM``).
    community_field
        Field naming each grid's community, when the grid file has one; the community is
        otherwise found by location (largest overlap with ``communities``), or taken from
        the code's first 12 digits when there are no communities.
    kind_field
        Field whose value marks unit grids (``unit``, 单位网格, 专属网格: no household
        range); ignored when absent.
    layer_name
        Name of the grid layer, for messages.

    Returns
    -------
    AuditResult

    Raises
    ------
    AuditError
        When the grids have no CRS, no ``code_field``, or no polygons at all.
    """
    rules = settings.grid
    sliver = float(rules.audit_sliver_m2)
    if not isinstance(grids, gpd.GeoDataFrame) or grids.crs is None:
        raise AuditError(f"layer '{layer_name}' must be a polygon layer with a CRS")
    if code_field not in grids.columns:
        raise AuditError(
            f"layer '{layer_name}' has no field '{code_field}' (fields: "
            f"{', '.join(map(str, grids.columns))}); name the code field with "
            f"--code-field"
        )
    if community_field is not None and community_field not in grids.columns:
        raise AuditError(f"layer '{layer_name}' has no field '{community_field}'")
    if len(grids) == 0:
        raise AuditError(f"layer '{layer_name}' is empty")
    total_steps = 6
    step = 0

    def tick() -> None:
        nonlocal step
        step += 1
        if progress:
            progress(step, total_steps)

    f = _Findings()
    skipped: dict[str, str] = {}
    g = grids.reset_index(drop=True)
    n = len(g)
    rows1 = np.arange(1, n + 1)
    codes_ = code_strings(g[code_field]).reset_index(drop=True)
    codes_arr = codes_.fillna("").to_numpy(dtype=object)
    crs = metric_crs_for(g)
    epsg = crs.to_epsg()

    # -- geometry: repair what is broken, report it ---------------------------------------
    geoms = np.asarray(g.geometry.to_crs("EPSG:4326").values, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    invalid = ~missing & ~shapely.is_valid(geoms)
    for i in np.flatnonzero(missing):
        f.add(
            "invalid_geometry",
            grid_code=codes_arr[i] or None,
            grid_row=int(rows1[i]),
            detail=f"row {rows1[i]}: no geometry",
        )
    if invalid.any():
        reasons = shapely.is_valid_reason(geoms[invalid])
        geoms = geoms.copy()
        geoms[invalid] = _polygonal(shapely.make_valid(geoms[invalid]))
        for i, why in zip(np.flatnonzero(invalid), reasons, strict=True):
            f.add(
                "invalid_geometry",
                grid_code=codes_arr[i] or None,
                grid_row=int(rows1[i]),
                detail=f"row {rows1[i]}: {why}; repaired with make_valid for the other checks",
            )
    geoms = _polygonal(np.where(missing, shapely.Polygon(), geoms))
    if shapely.is_empty(geoms).all():
        raise AuditError(f"layer '{layer_name}' holds no polygons (grids must be areas)")
    gm = np.asarray(gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(crs).values, dtype=object)
    area = shapely.area(gm)
    rank = rank_of(np.array([f"{c}|{i:09d}" for i, c in enumerate(codes_arr)]))
    tree = shapely.STRtree(gm)
    tick()

    # -- codes -----------------------------------------------------------------------------
    for i in np.flatnonzero(codes_.isna().to_numpy()):
        f.add(
            "missing_code",
            grid_row=int(rows1[i]),
            geometry=gm[i],
            detail=f"row {rows1[i]}: field '{code_field}' is empty",
        )
    fifteen = np.zeros(n, dtype=bool)
    for i, code in enumerate(codes_arr):
        if not code:
            continue
        try:
            validate_grid_code(code, settings)
        except CodeError as exc:
            f.add(
                "invalid_code",
                grid_code=code,
                grid_row=int(rows1[i]),
                geometry=gm[i],
                detail=f"row {rows1[i]}: {exc}",
            )
        fifteen[i] = len(code) == 15 and code.isdigit()
    dups = codes_[codes_.notna() & codes_.duplicated(keep=False)]
    for code, idx in dups.groupby(dups).groups.items():
        idx = np.asarray(idx)
        f.add(
            "duplicate_code",
            grid_code=code,
            grid_row=int(rows1[idx[0]]),
            value=float(len(idx)),
            unit="grids",
            geometry=shapely.union_all(gm[idx]),
            detail=f"grid code {code} is used by {len(idx)} grids (rows "
            f"{', '.join(map(str, rows1[idx]))})",
        )
    tick()

    # -- communities: location, prefixes, crossings, gaps ------------------------------------
    declared = code_strings(g[community_field]).reset_index(drop=True) if community_field else None
    located = pd.Series(pd.NA, index=range(n), dtype="string")
    comms = layers.get("communities")
    if comms is not None and len(comms) and "community_code" in comms.columns:
        ccodes = code_strings(comms["community_code"]).fillna("").to_numpy(dtype=object)
        cm = np.asarray(comms.geometry.to_crs(crs).values, dtype=object)
        bad = ~shapely.is_valid(cm)
        if bad.any():
            cm = cm.copy()
            cm[bad] = _polygonal(shapely.make_valid(cm[bad]))
        best, share = largest_overlap(gm, cm, rank_of(ccodes))
        located = pd.Series(np.where(best >= 0, ccodes[np.maximum(best, 0)], None), dtype="string")
        # crossings: area of the grid outside its community (the one its community field
        # names when that community exists, else the one holding most of it)
        own = best.copy()
        how = np.full(n, "by location", dtype=object)
        if declared is not None:
            pos = {c: k for k, c in enumerate(ccodes) if c}
            named = np.array([pos.get(c, -1) if pd.notna(c) else -1 for c in declared])
            own = np.where(named >= 0, named, best)
            how[named >= 0] = f"named in field {community_field}"
        has = np.flatnonzero(own >= 0)
        outside = area.copy()
        outside[has] = shapely.area(
            shapely.difference(gm[has], cm[own[has]], grid_size=GRID_SIZE_M)
        )
        out_share = np.divide(outside, area, out=np.zeros(n), where=area > 0)
        cross = (area > 0) & ((outside > sliver) | (out_share > rules.audit_outside_share))
        for i in np.flatnonzero(cross):
            where = (
                f"outside its community {ccodes[own[i]]} ({how[i]})"
                if own[i] >= 0
                else "outside every community"
            )
            f.add(
                "crosses_community",
                grid_code=codes_arr[i] or None,
                community_code=ccodes[own[i]] if own[i] >= 0 else None,
                grid_row=int(rows1[i]),
                value=float(outside[i]),
                unit="m2",
                geometry=gm[i],
                detail=f"{_fmt_area(outside[i])} ({out_share[i]:.1%}) of the grid lies {where}",
            )
        # gaps: community ground that no grid covers
        covered = shapely.union_all(gm[area > 0], grid_size=GRID_SIZE_M)
        holes = shapely.difference(cm, covered, grid_size=GRID_SIZE_M)
        parts, owner = shapely.get_parts(holes, return_index=True)
        parts = _polygonal(parts)
        parts, owner2 = shapely.get_parts(parts, return_index=True)
        owner = owner[owner2]
        part_area = shapely.area(parts)
        for j in np.flatnonzero(part_area >= sliver):
            f.add(
                "gap",
                community_code=ccodes[owner[j]] or None,
                value=float(part_area[j]),
                unit="m2",
                geometry=parts[j],
                detail=f"{_fmt_area(part_area[j])} of community {ccodes[owner[j]]} lies in no grid",
            )
    else:
        for check in ("crosses_community",):
            skipped[check] = "no communities layer"
        # without communities, a gap is a hole enclosed by the grids
        covered = shapely.union_all(gm[area > 0], grid_size=GRID_SIZE_M)
        holes = (
            [shapely.Polygon(r) for p in shapely.get_parts(covered) for r in p.interiors]
            if not covered.is_empty
            else []
        )
        for h in holes:
            gap = shapely.difference(h, covered, grid_size=GRID_SIZE_M)
            for part in shapely.get_parts(_polygonal(np.array([gap], dtype=object))[0]):
                if part.area >= sliver:
                    f.add(
                        "gap",
                        value=float(part.area),
                        unit="m2",
                        geometry=part,
                        detail=f"{_fmt_area(part.area)} enclosed by grids lies in no grid "
                        f"(no communities layer: only enclosed gaps are found)",
                    )
    community = declared if declared is not None else located
    if declared is None and located.isna().all():
        community = pd.Series(
            [c[:12] if f15 else pd.NA for c, f15 in zip(codes_arr, fifteen, strict=True)],
            dtype="string",
        )
    source = (
        "field " + community_field
        if declared is not None
        else "location"
        if located.notna().any()
        else None
    )
    if source is None:
        skipped["code_prefix_mismatch"] = "no communities layer and no community field"
    else:
        for i in np.flatnonzero(fifteen):
            c = community[i]
            if pd.notna(c) and codes_arr[i][:12] != c:
                f.add(
                    "code_prefix_mismatch",
                    grid_code=codes_arr[i],
                    community_code=c,
                    grid_row=int(rows1[i]),
                    geometry=gm[i],
                    detail=f"grid code {codes_arr[i]} starts with {codes_arr[i][:12]}, "
                    f"but its community is {c} (by {source})",
                )
    tick()

    # -- multipart and overlaps -------------------------------------------------------------
    parts, owner = shapely.get_parts(gm, return_index=True)
    big = shapely.area(parts) >= sliver
    n_parts = np.bincount(owner[big], minlength=n)
    for i in np.flatnonzero(n_parts > 1):
        pa = np.sort(shapely.area(parts[(owner == i) & big]))[::-1]
        f.add(
            "multipart",
            grid_code=codes_arr[i] or None,
            community_code=community[i],
            grid_row=int(rows1[i]),
            value=float(n_parts[i]),
            unit="parts",
            geometry=gm[i],
            detail=f"{n_parts[i]} separate parts: "
            f"{', '.join(_fmt_area(a) for a in pa[:5])}{'…' if len(pa) > 5 else ''}",
        )
    a_idx, b_idx = tree.query(gm, predicate="intersects")
    keep = a_idx < b_idx
    a_idx, b_idx = a_idx[keep], b_idx[keep]
    if len(a_idx):
        # neighbours mostly only touch: a plain overlay screens them out, the robust
        # snapped one computes the candidates' polygons
        try:
            rough = shapely.area(shapely.intersection(gm[a_idx], gm[b_idx]))
            cand = rough >= 0.5 * sliver
        except shapely.errors.GEOSException:
            cand = np.ones(len(a_idx), dtype=bool)
        a_idx, b_idx = a_idx[cand], b_idx[cand]
        inter = _polygonal(shapely.intersection(gm[a_idx], gm[b_idx], grid_size=GRID_SIZE_M))
        ia = shapely.area(inter)
        for k in np.flatnonzero(ia >= sliver):
            i, j = a_idx[k], b_idx[k]
            if rank[j] < rank[i]:
                i, j = j, i
            f.add(
                "overlap",
                grid_code=codes_arr[i] or None,
                other_code=codes_arr[j] or None,
                community_code=community[i],
                grid_row=int(rows1[i]),
                value=float(ia[k]),
                unit="m2",
                geometry=inter[k],
                detail=f"{_fmt_area(ia[k])} lies in both {codes_arr[i] or f'row {rows1[i]}'} "
                f"and {codes_arr[j] or f'row {rows1[j]}'}",
            )
    tick()

    # -- buildings and households ------------------------------------------------------------
    households = np.zeros(n, dtype=np.int64)
    building_count = np.zeros(n, dtype=np.int64)
    b = layers.get("buildings")
    if b is not None and len(b):
        bm = np.asarray(b.geometry.to_crs(crs).values, dtype=object)
        bm = _polygonal(np.where(shapely.is_valid(bm), bm, shapely.make_valid(bm)))
        hh = (
            pd.to_numeric(b.get("households", pd.Series(0, index=b.index)), errors="coerce")
            .fillna(0)
            .to_numpy(dtype=np.int64)
        )
        ids = (
            b["building_id"].astype(str).to_numpy()
            if "building_id" in b.columns
            else np.array([f"row {i + 1}" for i in range(len(b))])
        )
        p, q, a = overlap_pairs(bm, gm, tree)
        barea = shapely.area(bm)
        share = np.divide(a, barea[p], out=np.zeros(len(a)), where=barea[p] > 0)
        order = np.lexsort((rank[q], -a, p))
        p, q, share = p[order], q[order], share[order]
        first = np.r_[True, p[1:] != p[:-1]] if len(p) else np.zeros(0, bool)
        best = np.full(len(b), -1, dtype=np.int64)
        best[p[first]] = q[first]
        hit = best >= 0
        households = np.bincount(best[hit], weights=hh[hit], minlength=n).astype(np.int64)
        building_count = np.bincount(best[hit], minlength=n).astype(np.int64)
        bcomm = pd.Series(pd.NA, index=range(len(b)), dtype="string")
        if comms is not None and len(comms) and "community_code" in comms.columns:
            cb, _ = largest_overlap(bm, cm, rank_of(ccodes))
            bcomm = pd.Series(np.where(cb >= 0, ccodes[np.maximum(cb, 0)], None), dtype="string")
        for i in np.flatnonzero(~hit):
            f.add(
                "building_no_grid",
                community_code=bcomm[i],
                feature_id=ids[i],
                value=float(hh[i]),
                unit="households",
                geometry=bm[i],
                detail=f"building {ids[i]} ({hh[i]} households) overlaps no grid",
            )
        # in two grids: two or more grids each hold ≥ 1 − assign_min_share of it
        floor = 1.0 - float(rules.assign_min_share)
        big = share >= floor - 1e-9
        cnt = np.bincount(p[big], minlength=len(b))
        for i in np.flatnonzero(cnt >= 2):
            sel = np.flatnonzero((p == i) & big)
            desc = ", ".join(
                f"{share[k]:.0%} in {codes_arr[q[k]] or f'row {rows1[q[k]]}'}" for k in sel
            )
            f.add(
                "building_in_two_grids",
                grid_code=codes_arr[q[sel[0]]] or None,
                other_code=codes_arr[q[sel[1]]] or None,
                community_code=bcomm[i],
                feature_id=ids[i],
                value=float(share[sel[0]]),
                unit="share",
                grid_row=int(rows1[q[sel[0]]]),
                geometry=bm[i],
                detail=f"building {ids[i]} ({hh[i]} households): {desc}",
            )
        # households out of range (residential grids only)
        unit = np.zeros(n, dtype=bool)
        if kind_field and kind_field in g.columns:
            unit = (
                (g[kind_field].astype("string").str.strip().str.lower().isin(UNIT_KINDS))
                .fillna(False)
                .to_numpy(dtype=bool)
            )
        lo, hi = rules.min_households, rules.max_households
        low = ~unit & (households < lo)
        high = ~unit & (households > hi)
        for i in np.flatnonzero(low | high):
            what = (
                f"{households[i]:,} households < {lo} (minimum)"
                if low[i]
                else f"{households[i]:,} households > {hi} (maximum)"
            )
            f.add(
                "households_out_of_range",
                grid_code=codes_arr[i] or None,
                community_code=community[i],
                grid_row=int(rows1[i]),
                value=float(households[i]),
                unit="households",
                geometry=gm[i],
                detail=f"{what}, in {building_count[i]} buildings",
            )
    else:
        for check in ("households_out_of_range", "building_no_grid", "building_in_two_grids"):
            skipped[check] = "no buildings layer"
    tick()

    # -- arterial crossings ------------------------------------------------------------------
    roads = layers.get("roads")
    avoid = tuple(rules.avoid_road_classes)
    if roads is None or not len(roads):
        skipped["arterial_crossing"] = "no roads layer"
    elif "road_class" not in roads.columns:
        skipped["arterial_crossing"] = "roads have no road_class"
    else:
        r = roads[roads["road_class"].astype("string").isin(avoid).fillna(False)]
        if len(r):
            rm = np.asarray(r.geometry.to_crs(crs).values, dtype=object)
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
            core = shapely.buffer(gm, -float(rules.audit_road_tolerance_m))
            gi, ri = shapely.STRtree(rm).query(core, predicate="intersects")
            if len(ri):
                pieces = shapely.intersection(rm[ri], core[gi])
                width = float(rules.median_width_m)
                median = median_length(pieces, gm[gi], rm, width)
                per = pd.DataFrame(
                    {"grid": gi, "road": ri, "median": median, "m": shapely.length(pieces) - median}
                )
                along = per.groupby("grid")["median"].sum()
                per = per[per["m"] > 0.01]
                tot = per.groupby("grid")["m"].sum()
                for i, m in tot[tot > rules.min_crossing_m].items():
                    rs = per[per["grid"] == i].sort_values("m", ascending=False)
                    desc = ", ".join(
                        f"{names[k] or rids[k]} ({rids[k]}) {mm:,.0f} m"
                        for k, mm in zip(rs["road"], rs["m"], strict=True)
                    )
                    skip = (
                        f"; {along[i]:,.0f} m along median strips (carriageways ≤ "
                        f"{width:g} m apart) not counted"
                        if along[i] >= 1
                        else ""
                    )
                    f.add(
                        "arterial_crossing",
                        grid_code=codes_arr[i] or None,
                        community_code=community[i],
                        grid_row=int(rows1[i]),
                        value=float(m),
                        unit="m",
                        geometry=gm[i],
                        other_code=",".join(rids[k] for k in rs["road"]),
                        detail=f"{'/'.join(avoid)} road runs {m:,.0f} m through the grid "
                        f"(more than {rules.audit_road_tolerance_m:g} m from its "
                        f"boundary): {desc}{skip}",
                    )
    tick()

    stats = gpd.GeoDataFrame(
        {
            "grid_row": rows1,
            "grid_code": codes_.astype("string"),
            "community_code": pd.array(community, dtype="string"),
            "households": households,
            "building_count": building_count,
            "area_m2": np.round(area, 1),
        },
        geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    return AuditResult(
        findings=f.frame(crs),
        grids=stats,
        crs=f"EPSG:{epsg}" if epsg else crs.to_string(),
        skipped=skipped,
    )


def audit_params(result: AuditResult, settings: Settings = DEFAULT, **extra) -> dict:
    """Parameters to record with ``grid_findings`` (rules used, metric CRS, inputs)."""
    r = settings.grid
    return {
        "analysis": "audit",
        "computed_crs": result.crs,
        "grid.min_households": r.min_households,
        "grid.max_households": r.max_households,
        "grid.assign_min_share": r.assign_min_share,
        "grid.audit_sliver_m2": r.audit_sliver_m2,
        "grid.audit_outside_share": r.audit_outside_share,
        "grid.audit_road_tolerance_m": r.audit_road_tolerance_m,
        "grid.min_crossing_m": r.min_crossing_m,
        "grid.median_width_m": r.median_width_m,
        "grid.avoid_road_classes": list(r.avoid_road_classes),
        **extra,
    }


__all__ = ["CHECKS", "FINDING_COLUMNS", "AuditError", "AuditResult", "audit_grids", "audit_params"]
