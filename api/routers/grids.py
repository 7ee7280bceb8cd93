"""A grid's page of facts (statistics, boundary, buildings, staff, coverage), coverage
rates by level, and the health check."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import geopandas as gpd
import pandas as pd
import shapely
from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam

from api.deps import Authorised, Ctx, FastJSON, records
from api.models import CoverageRows, GridReport, Health
from api.routers.features import PERSONAL, _hide_personal
from gridgis.store import StoreError

router = APIRouter(tags=["grids"])

GridCode = Annotated[str, PathParam(pattern=r"^[0-9]{15}$",
                                    description="15-digit grid code")]


def _need(ctx, layer: str, hint: str) -> None:
    if layer not in ctx.layers():
        raise HTTPException(404, f"the workspace has no '{layer}' layer ({hint})")


@router.get("/grids/{grid_code}", response_model=GridReport, summary="One grid",
            description="Statistics (households, buildings, area, kind…), boundary "
                        "(GeoJSON, CRS84), its buildings, staff (phones only with the "
                        "token) and coverage rows (layer 'coverage', level grid).",
            responses={404: {"description": "No such grid"}})
def grid(grid_code: GridCode, ctx: Ctx, auth: Authorised) -> FastJSON:
    _need(ctx, "grids", "run delineate first: POST /jobs/delineate")
    frame, _ = ctx.store.read_page("grids", where={"grid_code": grid_code}, limit=1)
    if not len(frame):
        raise HTTPException(404, f"no grid '{grid_code}'")
    row = frame.iloc[[0]]
    geom = row.geometry.iloc[0] if isinstance(row, gpd.GeoDataFrame) else None
    stats = records(pd.DataFrame(row).drop(columns="geometry", errors="ignore"))[0]
    layers = ctx.layers()
    buildings: list[dict] = []
    if "buildings" in layers:
        try:
            b = ctx.store.read("buildings", where={"grid_code": grid_code})
        except StoreError:  # buildings not assigned yet: those whose centre is inside
            b = ctx.store.read("buildings", bbox=tuple(geom.bounds)) if geom is not None \
                else None
            if b is not None and len(b):
                b = b[shapely.contains(geom, b.geometry.representative_point().values)]
        if b is not None:
            buildings = records(pd.DataFrame(b).drop(columns="geometry", errors="ignore"))
    staff: list[dict] = []
    if "staff" in layers:
        try:
            s = pd.DataFrame(ctx.store.read("staff", where={"grid_code": grid_code}))
        except StoreError:  # staff without grid codes
            s = pd.DataFrame()
        if not auth:
            s = _hide_personal("staff", s)
        staff = records(s.drop(columns="geometry", errors="ignore"))
    coverage: list[dict] = []
    if "coverage" in layers:
        c = ctx.store.read("coverage", where={"level": "grid", "code": grid_code})
        coverage = records(pd.DataFrame(c).drop(columns="geometry", errors="ignore"))
    if not auth:
        stats = {k: v for k, v in stats.items() if k not in PERSONAL}
    return FastJSON({"grid_code": grid_code, "statistics": stats,
                     "geometry": json.loads(shapely.to_geojson(geom)) if geom is not None
                     else None,
                     "buildings": buildings, "staff": staff, "coverage": coverage})


@router.get("/coverage", response_model=CoverageRows, summary="Coverage rates",
            description="Households within walking reach of each facility category, per "
                        "street, community or grid (layer 'coverage' from the coverage "
                        "analysis).",
            responses={404: {"description": "No coverage layer"}})
def coverage(
    ctx: Ctx,
    level: Annotated[Literal["street", "community", "grid"] | None, Query()] = None,
    code: Annotated[str | None, Query(pattern=r"^[0-9]{9,15}$",
                                      description="Street (9), community (12) or grid "
                                                  "(15-digit) code")] = None,
    category: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_]+$")] = None,
) -> FastJSON:
    _need(ctx, "coverage", "run the coverage analysis: POST /jobs/coverage")
    where = {k: v for k, v in (("level", level), ("code", code), ("category", category))
             if v is not None}
    frame = ctx.store.read("coverage", where=where or None)
    return FastJSON({"level": level, "code": code,
                     "rows": records(pd.DataFrame(frame).drop(columns="geometry",
                                                              errors="ignore"))})


@router.get("/health", response_model=Health, summary="Is the service up",
            responses={503: {"description": "The workspace cannot be read"}})
def health(ctx: Ctx) -> FastJSON:
    from gridgis.store import GeoPackageStore

    try:
        n = len(ctx.store.layers())
    except Exception as exc:  # noqa: BLE001 - any failure means not healthy
        return FastJSON({"status": "error", "detail": str(exc)}, status_code=503)
    backend = "geopackage" if isinstance(ctx.store, GeoPackageStore) else "postgis"
    return FastJSON({"status": "ok", "backend": backend, "layers": n,
                     "writes_enabled": ctx.token is not None})
