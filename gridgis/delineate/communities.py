"""Communities made from data (:func:`make_communities`), when no community layer exists."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS, metric_crs_for
from gridgis.delineate.crossings import crossing_grids, line_crossings
from gridgis.delineate.flags import Flag, FlagKind, render
from gridgis.delineate.runner import Bounds, Region, area_rank, partition_areas
from gridgis.delineate.units import qualifies_as_unit
from gridgis.errors import InputError
from gridgis.standards import DEFAULT, Settings

Progress = Callable[[int, int], None]

#: Name of a generated community: says it is generated (生成), numbered within its street.
GENERATED_NAME = "生成社区{seq:02d}"


def _units(layers, crs, settings: Settings):
    """Institutions that qualify as unit grids (metric), or None."""
    inst = layers.get("institutions")
    if inst is None or len(inst) == 0:
        return None
    im = inst.to_crs(crs)
    return im[qualifies_as_unit(im, settings)].reset_index(drop=True)


def _areas(layers, bm, units, crs, county_code, street_code, settings: Settings):
    """(areas to divide with ``street_code`` and ``name``, what they are)."""
    from gridgis.codes import validate_street_code

    streets = layers.get("streets")
    g = settings.grid
    if streets is not None and len(streets):
        areas = streets.to_crs(crs)[["street_code", "name", "geometry"]].reset_index(drop=True)
        if street_code:
            areas = areas[areas["street_code"].astype(str) == street_code].reset_index(drop=True)
            if len(areas) == 0:
                raise InputError(f"street {street_code} is not in layer 'streets'")
        return areas, "streets"
    close_m, margin_m = g.community_close_m, g.community_margin_m
    grown = shapely.union_all(shapely.buffer(bm.geometry.to_numpy(), close_m))
    whole = shapely.buffer(grown, -(close_m - margin_m))
    if units is not None and len(units):  # a campus reaching beyond its buildings
        whole = shapely.union_all([whole, *units.geometry.to_numpy()], grid_size=1e-3)
    # one study area, open land between separate built-up pieces included: no gaps, and
    # no piece too small to be a community on its own
    parts = np.array([shapely.convex_hull(whole)])
    if street_code:
        street = validate_street_code(street_code, settings)
    elif county_code:
        street = validate_street_code(f"{county_code}001", settings)
    else:
        raise InputError(
            "no streets layer: communities made from the whole area need the code of the "
            "street (9 digits, e.g. 110108010 学院路街道) or of the county/district "
            "(6 digits, e.g. 110108 海淀区, 320102 玄武区) they lie in, for their codes: "
            "pass street_code or county_code"
        )
    areas = gpd.GeoDataFrame(
        {"street_code": [street] * len(parts), "name": [f"区域{i + 1}" for i in range(len(parts))]},
        geometry=list(parts),
        crs=crs,
    )
    source = (
        f"study area: convex hull of the buildings grown {close_m:g} m and shrunk to a "
        f"{margin_m:g} m margin, and of the institutions that are unit grids"
    )
    return areas, source


def merge_empty(regions: list[tuple[int, Region]], lo: int = 1) -> list[tuple[int, Region]]:
    """Communities without households — and institutions holding fewer than ``lo``
    households — join a neighbour of the same area (street or built-up piece): the one
    sharing the longest boundary, else the nearest, so no community holds 0 households
    while its area has another. A community alone in its area stays (and keeps its flag).
    """
    regions = list(regions)
    stuck: set[int] = set()

    def small(r: Region) -> bool:
        return r.households == 0 or (r.kind == "unit" and r.households < lo)

    while True:
        empty = [i for i, (_, r) in enumerate(regions) if small(r) and id(r) not in stuck]
        if not empty:
            return regions
        i = empty[0]
        ai, reg = regions[i]
        others = [
            j for j, (aj, r) in enumerate(regions) if aj == ai and r.households > 0 and j != i
        ]
        if not others:
            stuck.add(id(reg))
            continue
        geoms = np.array([regions[j][1].geometry for j in others], dtype=object)
        shared = shapely.length(shapely.intersection(shapely.boundary(geoms), reg.geometry))
        key = np.where(shared > 0, shared, -shapely.distance(geoms, reg.geometry) - 1e9)
        target = regions[others[int(np.argmax(key))]][1]
        target.geometry = shapely.union_all([target.geometry, reg.geometry], grid_size=1e-3)
        target.building_count += reg.building_count
        target.households += reg.households
        regions.pop(i)


def flag_crossings(regions: list[tuple[int, Region]], roads, settings: Settings) -> None:
    """A community an avoided road runs through (the band forbade following it) is
    flagged ``crosses_arterial``, by the crossing rule grids and the audit use
    (:func:`gridgis.delineate.crossings.line_crossings`)."""
    if roads is None or "road_class" not in roads or not regions:
        return
    cls = roads["road_class"].astype("string").isin(settings.grid.avoid_road_classes)
    sel = roads[cls.fillna(False).to_numpy()]
    if len(sel) == 0:
        return
    lines = sel.geometry.to_numpy()
    names = sel["name"].astype("string").fillna("").to_numpy() if "name" in sel else None
    geoms = np.array([reg.geometry for _, reg in regions], dtype=object)
    per = line_crossings(geoms, lines, settings.grid, lines)
    if per.empty:
        return
    for gi, m in crossing_grids(per, settings.grid).items():
        rows = per[per["grid"] == gi]
        named = sorted({str(names[k]) for k in rows["line"] if names is not None and names[k]})
        regions[gi][1].flags.append(
            Flag(
                FlagKind.CROSSES_ARTERIAL,
                f"干道{('（' + '、'.join(named) + '）') if named else ''}穿过社区 {m:.0f} 米："
                f"沿干道划分会使社区户数超出范围",
            )
        )


def _codes(comm, settings: Settings, reserved: set[str]) -> list[str]:
    """Community codes: street code + a village sequence from the residents' committee
    range, skipping every code in ``reserved`` (the codes the national table holds)."""
    from gridgis.codes import number_grids

    seq = number_grids(comm, group="street_code")
    lo_v, hi_v = settings.codes.residents_committee_range
    codes = [""] * len(comm)
    for street, idx in comm.groupby("street_code").groups.items():
        free = (
            f"{street}{v:03d}" for v in range(lo_v, hi_v + 1) if f"{street}{v:03d}" not in reserved
        )
        pos = [comm.index.get_loc(i) for i in idx]
        for p in sorted(pos, key=lambda p: seq[p]):
            code = next(free, None)
            if code is None:
                raise InputError(
                    f"street {street} would need more than the free codes of "
                    f"{lo_v:03d}–{hi_v:03d} for its communities"
                )
            codes[p] = code
    return codes


def make_communities(
    layers: dict[str, Any],
    settings: Settings = DEFAULT,
    county_code: str | None = None,
    progress: Progress | None = None,
    street_code: str | None = None,
    reserved_codes: Iterable[str] = (),
    close_m: float | None = None,
    margin_m: float | None = None,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Divide each street (or, without streets, the whole area) into communities of
    ``settings.grid.community_min_households``–``community_max_households`` by the same
    engine as grids (roads as atoms, arterials avoided).

    Without streets the study area is one polygon: the convex hull of the built-up area
    (the buildings grown by ``grid.community_close_m`` metres then shrunk back to a
    ``grid.community_margin_m`` margin) and of the institutions that are unit grids, so
    communities cover it with no gaps, open land included. Institutions that are unit
    grids are kept whole where the band allows (a campus with residents is divided into
    communities of its own). A community left without households joins its neighbour
    (:func:`merge_empty`). Codes are valid 12-digit codes: the street's code (``street_code``,
    or ``county_code`` + ``001`` without streets) + a village sequence in the residents'
    committee range, numbered like grids, never one of ``reserved_codes``; names say they
    are generated (``生成社区01``). Every row is marked ``synthetic = True``.

    Parameters
    ----------
    county_code
        6-digit code of the county or district the area lies in (110108 for 海淀区,
        320102 for 玄武区), used when there is no streets layer and no ``street_code``.
    street_code
        9-digit code of the real street (街道) the area lies in (e.g. from
        :mod:`gridgis.divisions`): with a streets layer only that street is divided.
    close_m, margin_m
        Override ``grid.community_close_m`` / ``grid.community_margin_m`` (m).
    reserved_codes
        Community codes the national division table holds for the street(s): generated
        codes skip them, so they never collide with a real committee's code.

    Raises
    ------
    InputError
        No buildings; or no streets, no ``street_code`` and no ``county_code``.

    Returns
    -------
    (communities, params)
        Communities in EPSG:4326 (community_code, name, street_code, urban_rural_class,
        synthetic, households, flags) and what was done.
    """
    buildings = layers.get("buildings")
    roads = layers.get("roads")
    if buildings is None or len(buildings) == 0:
        raise InputError("layer 'buildings' is empty: communities are made from buildings")
    crs = metric_crs_for(buildings)
    bm = buildings.to_crs(crs)
    rm = roads.to_crs(crs) if roads is not None and len(roads) else None
    if close_m is not None or margin_m is not None:
        settings = settings.override(
            {
                k: v
                for k, v in (
                    ("grid.community_close_m", close_m),
                    ("grid.community_margin_m", margin_m),
                )
                if v is not None
            }
        )
    units = _units(layers, crs, settings)
    areas, source = _areas(layers, bm, units, crs, county_code, street_code, settings)
    g = settings.grid
    regions, _, _ = partition_areas(
        areas,
        area_rank(areas["street_code"]),
        bm,
        rm,
        {},
        units,
        settings,
        Bounds(
            g.community_min_households,
            g.community_max_households,
            g.community_target_households,
            g.balance_tolerance_share,
        ),
        progress,
    )
    regions = merge_empty(regions, g.community_min_households)
    flag_crossings(regions, rm, settings)
    comm = gpd.GeoDataFrame(
        [
            {
                "street_code": areas["street_code"].iloc[ai],
                "households": reg.households,
                "flags": render(reg.flags),
                "geometry": reg.geometry,
            }
            for ai, reg in regions
        ],
        geometry="geometry",
        crs=crs,
    )
    reserved = {str(c) for c in reserved_codes}
    comm["community_code"] = _codes(comm, settings, reserved)
    comm = comm.sort_values("community_code").reset_index(drop=True)
    comm["name"] = [
        GENERATED_NAME.format(seq=i + 1) for i in comm.groupby("street_code").cumcount().to_numpy()
    ]
    comm["urban_rural_class"] = pd.NA
    comm["synthetic"] = True
    cols = ["community_code", "name", "street_code", "urban_rural_class", "synthetic"]
    comm = comm[[*cols, "households", "flags", "geometry"]].to_crs(STORAGE_CRS)
    params = {
        "communities_made_from": source,
        "county_code": county_code,
        "street_code": street_code,
        "reserved_codes_skipped": len(reserved),
        "community_households": [
            g.community_min_households,
            g.community_max_households,
            g.community_target_households,
        ],
        "synthetic_codes": True,
        "computed_crs": crs.to_string(),
    }
    return comm, params
