"""Public delineation API: :func:`delineate` and :func:`recount`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS, metric_crs_for
from gridgis.delineate.atoms import WALL_M
from gridgis.delineate.crossings import crossing_grids, line_crossings
from gridgis.delineate.flags import Flag, FlagKind, render
from gridgis.delineate.runner import OPEN_GROUND, Bounds, area_rank, partition_areas
from gridgis.delineate.stats import community_stats
from gridgis.delineate.units import qualifies_as_unit
from gridgis.errors import InputError
from gridgis.standards import DEFAULT, Settings

Progress = Callable[[int, int], None]

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

_PARAM_KEYS = (
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
    "audit_road_tolerance_m",
    "recode_min_iou",
    "unit_margin_share",
    "cell_step_m",
)


@dataclass
class DelineationResult:
    """What :func:`delineate` produces.

    Attributes
    ----------
    grids
        Layer ``grids`` in EPSG:4326 with :data:`GRID_COLUMNS` (+ ``name``).
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
    flags
        Typed flags of each grid, by ``grid_code`` (the ``flags`` column is their text).
    community_stats
        One row per community (:func:`gridgis.delineate.stats.community_stats`).
    """

    grids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    findings: pd.DataFrame
    params: dict[str, Any]
    communities: gpd.GeoDataFrame | None = None
    registry: pd.DataFrame | None = None
    flags: dict[str, list[Flag]] | None = None
    community_stats: pd.DataFrame | None = None


@dataclass
class _Inputs:
    """Layers of :func:`delineate` in the metric CRS."""

    crs: Any
    communities: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame | None
    alignment: dict[str, gpd.GeoDataFrame]
    units: gpd.GeoDataFrame | None


def _inputs(layers: dict[str, Any], alignment, settings: Settings) -> _Inputs:
    communities = layers.get("communities")
    buildings = layers.get("buildings")
    if communities is None or len(communities) == 0:
        raise InputError(
            "layer 'communities' is empty: import communities or make them with "
            "gridgis.delineate.make_communities"
        )
    if buildings is None:
        buildings = gpd.GeoDataFrame(
            {"building_id": [], "households": []}, geometry=[], crs=STORAGE_CRS
        )
    crs = metric_crs_for(communities)
    bm = buildings.to_crs(crs) if len(buildings) else buildings.set_crs(crs, allow_override=True)
    roads = layers.get("roads")
    inst = layers.get("institutions")
    units = None
    if inst is not None and len(inst):
        im = inst.to_crs(crs)
        units = im[qualifies_as_unit(im, settings)].reset_index(drop=True)
    return _Inputs(
        crs,
        communities.to_crs(crs).reset_index(drop=True),
        bm,
        roads.to_crs(crs) if roads is not None and len(roads) else None,
        {k: v.to_crs(crs) for k, v in (alignment or {}).items() if v is not None and len(v)},
        units,
    )


def _green(layers: dict[str, Any], crs) -> gpd.GeoDataFrame | None:
    green = layers.get("green_spaces")
    if green is None or len(green) == 0:
        return None
    return green.to_crs(crs)


def _crossing_lines(inp: _Inputs, settings: Settings):
    """(avoided roads, their labels, alignment boundaries, their labels), metric."""
    roads, road_labels = np.empty(0, dtype=object), np.empty(0, dtype=object)
    if inp.roads is not None and "road_class" in inp.roads:
        cls = inp.roads["road_class"].astype("string")
        sel = inp.roads[cls.isin(settings.grid.avoid_road_classes).fillna(False).to_numpy()]
        roads = sel.geometry.to_numpy()
        names = sel["name"].astype("string").fillna("") if "name" in sel else [""] * len(sel)
        road_labels = np.array(
            [f"road:{c} {n}".strip() for c, n in zip(sel["road_class"], names, strict=True)],
            dtype=object,
        )
    al, al_labels = [], []
    for lname, frame in sorted(inp.alignment.items()):
        bnd = shapely.boundary(frame.geometry.to_numpy())
        bnd = bnd[~shapely.is_empty(bnd) & ~shapely.is_missing(bnd)]
        al.append(bnd)
        al_labels += [f"alignment:{lname}"] * len(bnd)
    lines = np.concatenate(al) if al else np.empty(0, dtype=object)
    return roads, road_labels, lines, np.array(al_labels, dtype=object)


def grid_crossings(
    grids_m: np.ndarray, inp: _Inputs, settings: Settings
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Per grid: avoided-line label -> metres through it (grids that cross only, by
    :func:`gridgis.delineate.crossings.line_crossings`, the audit's rule) and label ->
    metres along median strips, not counted."""
    rules = settings.grid
    roads, rlab, lines, llab = _crossing_lines(inp, settings)
    crossed: list[dict[str, float]] = [{} for _ in grids_m]
    along: list[dict[str, float]] = [{} for _ in grids_m]
    for geoms, labels, med in ((roads, rlab, roads), (lines, llab, None)):
        per = line_crossings(grids_m, geoms, rules, med)
        if per.empty:
            continue
        per["label"] = labels[per["line"].to_numpy()]
        reported = crossing_grids(per, rules).index
        for (gi, lab), grp in per.groupby(["grid", "label"], sort=True):
            m, med_m = float(grp["length_m"].sum()), float(grp["median_m"].sum())
            if gi in reported and m >= 1.0:
                crossed[gi][lab] = crossed[gi].get(lab, 0.0) + m
            if med_m >= 1.0:
                along[gi][lab] = along[gi].get(lab, 0.0) + med_m
    return crossed, along


def _grid_rows(regions, inp: _Inputs) -> list[dict]:
    cm = inp.communities
    street = (
        cm["street_code"].astype("string")
        if "street_code" in cm
        else pd.Series(pd.NA, index=cm.index, dtype="string")
    )
    codes = [str(c) for c in cm["community_code"].tolist()]
    streets = street.tolist()
    geoms = np.array([reg.geometry for _, reg in regions], dtype=object)
    areas = shapely.area(geoms).tolist()
    perims = shapely.length(geoms).tolist()
    rows = []
    for (ai, reg), area, perim in zip(regions, areas, perims, strict=True):
        rows.append(
            {
                "community_code": codes[ai],
                "street_code": streets[ai],
                "kind": reg.kind,
                "name": reg.name if reg.name else pd.NA,
                "households": reg.households,
                "building_count": reg.building_count,
                "area_m2": round(area, 1),
                "polsby_popper": round(4 * math.pi * area / perim**2, 4) if perim else 0.0,
                "crossings": 0,
                "flags": "",
                "geometry": reg.geometry,
            }
        )
    return rows


#: Names of open ground by the kind of the green space (or water) covering most of it.
OPEN_GROUND_NAMES = {"park": "公园", "green": "绿地", "square": "广场", "water": "水域"}


def name_open_ground(regions, green: gpd.GeoDataFrame | None) -> None:
    """Open ground made a unit grid of its own (``开放用地``) takes the name of the green
    space covering most of it when that covers at least half (a park's own name, else its
    kind: 公园, 绿地, 广场, 水域)."""
    if green is None or len(green) == 0:
        return
    geoms = green.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    names = green["name"].astype("string").fillna("").to_numpy() if "name" in green else None
    kinds = green["kind"].astype("string").fillna("").to_numpy() if "kind" in green else None
    for _, reg in regions:
        if reg.kind != "unit" or reg.name != OPEN_GROUND:
            continue
        idx = tree.query(reg.geometry, predicate="intersects")
        if len(idx) == 0:
            continue
        share = shapely.area(shapely.intersection(geoms[idx], reg.geometry)) / reg.geometry.area
        k = idx[int(np.argmax(share))]
        if share.max() >= 0.5:
            own = str(names[k]) if names is not None else ""
            kind = OPEN_GROUND_NAMES.get(str(kinds[k]) if kinds is not None else "", "")
            reg.name = own or kind or OPEN_GROUND


def _crossing_flags(regions, crossed: list[dict[str, float]], settings: Settings) -> None:
    """A grid an avoided road runs through (the band forbade a split along it) is flagged."""
    for (_, reg), cr in zip(regions, crossed, strict=True):
        roads = {lab: m for lab, m in cr.items() if lab.startswith("road:")}
        if roads and not any(f.kind == FlagKind.CROSSES_ARTERIAL for f in reg.flags):
            desc = "、".join(f"{lab[5:]} {m:.0f} 米" for lab, m in sorted(roads.items()))
            reg.flags.append(
                Flag(
                    FlagKind.CROSSES_ARTERIAL,
                    f"干道穿过网格（超过 {settings.grid.min_crossing_m:g} 米）：{desc}；"
                    f"沿干道拆分会使网格户数超出范围",
                )
            )


def _findings(grids: gpd.GeoDataFrame, crossed, along, flags, settings: Settings) -> pd.DataFrame:
    width = settings.grid.median_width_m
    frows = []
    for gc, cc, cr, al, fl in zip(
        grids["grid_code"], grids["community_code"], crossed, along, flags, strict=True
    ):
        for lab, m in sorted(cr.items()):
            skip = (
                f"; {al[lab]:.0f} m along median strips (carriageways ≤ {width:g} m apart) "
                "not counted"
                if lab in al
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
        for f in fl:
            if f.kind == FlagKind.CROSSES_ARTERIAL:
                continue  # the crossing rows above say it
            frows.append(
                {
                    "grid_code": gc,
                    "community_code": cc,
                    "finding": f.kind.value,
                    "line": pd.NA,
                    "length_m": np.nan,
                    "detail": f.text(),
                }
            )
    return pd.DataFrame(frows, columns=FINDING_COLUMNS)


def cut_buildings(inp: _Inputs, inner: np.ndarray | None = None) -> pd.DataFrame:
    """Buildings a community boundary runs through (grids never cut a building, but a
    community boundary given as input may): one ``building_cut`` finding each, naming the
    building and the communities, so the cut is reported, not hidden. ``inner``: the
    buildings shrunk by ``WALL_M`` when already computed (one per building)."""
    b, cm = inp.buildings, inp.communities
    if len(b) == 0 or len(cm) == 0:
        return pd.DataFrame(columns=FINDING_COLUMNS)
    if inner is None:
        inner = shapely.buffer(b.geometry.to_numpy(), -WALL_M)
    bounds = shapely.boundary(cm.geometry.to_numpy())
    ci, bi = shapely.STRtree(inner).query(bounds, predicate="intersects")
    if len(bi) == 0:
        return pd.DataFrame(columns=FINDING_COLUMNS)
    ids = (
        b["building_id"].astype(str).to_numpy()
        if "building_id" in b
        else np.array([f"row {i + 1}" for i in range(len(b))], dtype=object)
    )
    codes = cm["community_code"].astype(str).to_numpy()
    rows = []
    for k in np.unique(bi):
        names = sorted(set(codes[ci[bi == k]]))
        rows.append(
            {
                "grid_code": pd.NA,
                "community_code": names[0],
                "finding": "building_cut",
                "line": "community boundary",
                "length_m": np.nan,
                "detail": f"楼栋 {ids[k]} 被社区边界切分（{'、'.join(names)}）：按最大重叠归属",
            }
        )
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


def _coded_buildings(buildings, b_region, b_area, codes, communities) -> gpd.GeoDataFrame:
    out_b = buildings.copy()
    codes = np.asarray(codes, dtype=object)
    out_b["grid_code"] = pd.array(
        np.where(b_region >= 0, codes[np.clip(b_region, 0, None)], None)
        if len(codes)
        else [None] * len(out_b),
        dtype="string",
    )
    ccodes = communities["community_code"].astype(str).to_numpy().astype(object)
    out_b["community_code"] = pd.array(
        np.where(b_area >= 0, ccodes[np.clip(b_area, 0, None)], None), dtype="string"
    )
    return out_b


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

    Raises
    ------
    InputError
        No communities.
    """
    from gridgis.codes import recode

    inp = _inputs(layers, alignment, settings)
    g = settings.grid
    # building interiors once: cell borders and the community-boundary check both use them
    inner = shapely.buffer(inp.buildings.geometry.to_numpy(), -WALL_M)
    regions, b_region, b_area = partition_areas(
        inp.communities,
        area_rank(inp.communities["community_code"]),
        inp.buildings,
        inp.roads,
        inp.alignment,
        inp.units,
        settings,
        Bounds(g.min_households, g.max_households, g.target_households, g.balance_tolerance_share),
        progress,
        inner=inner,
    )
    name_open_ground(regions, _green(layers, inp.crs))
    rows = _grid_rows(regions, inp)
    grids = (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=inp.crs)
        if rows
        else gpd.GeoDataFrame({c: [] for c in [*GRID_COLUMNS, "name"]}, geometry=[], crs=inp.crs)
    )
    crossed, along = grid_crossings(grids.geometry.to_numpy(), inp, settings)
    _crossing_flags(regions, crossed, settings)
    flags = [reg.flags for _, reg in regions]
    grids["crossings"] = [len(c) for c in crossed]
    grids["flags"] = [render(f) for f in flags]
    rec = recode(
        grids,
        previous.to_crs(inp.crs) if previous is not None and len(previous) else None,
        settings,
        registry=registry,
        issued_at=issued_at,
        communities=inp.communities,
    )
    grids["grid_code"] = rec.codes
    findings = _findings(grids, crossed, along, flags, settings)
    cut = cut_buildings(inp, inner)
    if len(cut):
        findings = pd.concat([findings, cut], ignore_index=True)
    cols = GRID_COLUMNS[:4] + ["name"] + GRID_COLUMNS[4:]
    grids = grids[cols + ["geometry"]].sort_values("grid_code").reset_index(drop=True)
    grids = grids.to_crs(STORAGE_CRS)
    out_b = _coded_buildings(layers.get("buildings"), b_region, b_area, rec.codes, inp.communities)
    params = {
        "grid": {k: v for k, v in settings.to_dict()["grid"].items() if k in _PARAM_KEYS},
        "computed_crs": inp.crs.to_string(),
        "alignment_layers": sorted(inp.alignment),
        "algorithm": "gridgis.delineate: street-block faces + building Voronoi cells, "
        "recursive sweep bisection + repair",
        "numbering": "rows north to south (band height sqrt(community area / grids)), "
        "west to east within a row",
    }
    return DelineationResult(
        grids=grids,
        buildings=out_b,
        findings=findings,
        params=params,
        registry=rec.registry,
        flags=dict(zip(rec.codes, flags, strict=True)),
        community_stats=community_stats(grids, settings),
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
            side = f"< {lo}" if new_hh[i] < lo else f"> {hi}"
            flag = Flag(
                FlagKind.OUT_OF_BAND_AFTER_ASSIGN,
                f"{new_hh[i]} 户 {side}：跨网格边界的楼栋按最大重叠归属后",
            )
            flags[i] = flag.text()
    out["households"] = new_hh
    out["building_count"] = new_n
    out["flags"] = flags
    return out
