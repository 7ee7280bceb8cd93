"""A grid's page of facts (statistics, boundary, buildings, staff, coverage), coverage
rates by level, and the health check."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import geopandas as gpd
import pandas as pd
import shapely
from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam

from api.deps import Authorised, Ctx, FastJSON, records
from api.models import CoverageRows, GridHistory, GridReport, Health, HealthError
from api.routers.features import PERSONAL
from gridgis.store import NoFieldError, StoreError

router = APIRouter(tags=["grids"])

GridCode = Annotated[str, PathParam(pattern=r"^[0-9]{15}$", description="15-digit grid code")]


def _need(ctx, layer: str, hint: str) -> None:
    if not ctx.has_layer(layer):
        raise HTTPException(404, f"the workspace has no '{layer}' layer ({hint})")


@router.get(
    "/grids/{grid_code}",
    response_model=GridReport,
    summary="One grid",
    description="Statistics (households, buildings, area, kind…), boundary "
    "(GeoJSON, CRS84), its buildings, staff (phones only with the "
    "token) and coverage rows (layer 'coverage', level grid).",
    responses={404: {"description": "No such grid"}},
)
def grid(grid_code: GridCode, ctx: Ctx, auth: Authorised) -> FastJSON:
    _need(ctx, "grids", "run delineate first: POST /jobs/delineate")
    exclude = () if auth else tuple(PERSONAL)
    found = _rows(ctx, "grids", {"grid_code": grid_code}, exclude, limit=1, geometry=True)
    if not found:
        raise HTTPException(404, f"no grid '{grid_code}'")
    stats, geom = found[0]
    buildings: list[dict] = []
    if ctx.has_layer("buildings"):
        try:
            buildings = [r for r, _ in _rows(ctx, "buildings", {"grid_code": grid_code}, exclude)]
        except NoFieldError:  # buildings not assigned yet: those whose centre is inside
            if geom is not None:
                shape = shapely.from_geojson(json.dumps(geom))
                b = ctx.store.read("buildings", bbox=tuple(shape.bounds))
                if len(b):
                    b = b[shapely.contains(shape, b.geometry.representative_point().values)]
                buildings = records(pd.DataFrame(b).drop(columns="geometry", errors="ignore"))
    staff: list[dict] = []
    if ctx.has_layer("staff"):
        try:
            staff = [r for r, _ in _rows(ctx, "staff", {"grid_code": grid_code}, exclude)]
        except NoFieldError:  # staff without grid codes
            staff = []
    coverage: list[dict] = []
    if ctx.has_layer("coverage"):
        coverage = [r for r, _ in _rows(ctx, "coverage", {"level": "grid", "code": grid_code}, ())]
    return FastJSON(
        {
            "grid_code": grid_code,
            "statistics": stats,
            "geometry": geom,
            "buildings": buildings,
            "staff": staff,
            "coverage": coverage,
        }
    )


def _rows(
    ctx,
    layer: str,
    where: dict[str, Any],
    exclude: tuple[str, ...],
    limit: int = 100_000,
    geometry: bool = False,
) -> list[tuple[dict, Any]]:
    """Matching rows as (properties, GeoJSON geometry dict or None), from the backend's
    GeoJSON page when it makes one (fast), else from a frame."""
    got = ctx.store.read_page_geojson(layer, where=where, limit=limit, exclude=exclude)
    if got is not None:
        return [(json.loads(p), json.loads(g) if geometry and g else None) for _, g, p in got[0]]
    frame, _ = ctx.store.read_page(layer, where=where, limit=limit)
    props = pd.DataFrame(frame).drop(columns=[*exclude, "geometry"], errors="ignore")
    geoms = (
        frame.geometry if isinstance(frame, gpd.GeoDataFrame) and geometry else [None] * len(frame)
    )
    return [
        (r, json.loads(shapely.to_geojson(g)) if g is not None else None)
        for r, g in zip(records(props), geoms, strict=True)
    ]


@router.get(
    "/grids/{grid_code}/history",
    response_model=GridHistory,
    summary="A grid's dated versions",
    description="Every version of the grid code (layer grid_versions), oldest first: "
    "valid_from / valid_to, households, area, the command and reason that made it, and "
    "the boundary of that version (GeoJSON, CRS84).",
    responses={404: {"description": "No dated version of this grid"}},
)
def grid_history(grid_code: GridCode, ctx: Ctx) -> FastJSON:
    rows = ctx.grid_history(grid_code)
    shapes = [None if g is None else json.loads(shapely.to_geojson(g)) for g in rows.geometry]
    versions = records(pd.DataFrame(rows).drop(columns="geometry"))
    for version, shape in zip(versions, shapes, strict=True):
        version["geometry"] = shape
    return FastJSON({"grid_code": grid_code, "versions": versions})


@router.get(
    "/coverage",
    response_model=CoverageRows,
    summary="Coverage rates",
    description="Households within walking reach of each facility category, per "
    "street, community or grid (layer 'coverage' from the coverage "
    "analysis).",
    responses={404: {"description": "No coverage layer"}},
)
def coverage(
    ctx: Ctx,
    level: Annotated[Literal["street", "community", "grid"] | None, Query()] = None,
    code: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{9,15}$",
            description="Street (9), community (12) or grid (15-digit) code",
        ),
    ] = None,
    category: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_]+$")] = None,
) -> FastJSON:
    _need(ctx, "coverage", "run the coverage analysis: POST /jobs/coverage")
    where = {
        k: v for k, v in (("level", level), ("code", code), ("category", category)) if v is not None
    }
    rows = [r for r, _ in _rows(ctx, "coverage", where, ())]
    return FastJSON({"level": level, "code": code, "rows": rows})


@router.get(
    "/health",
    response_model=Health,
    summary="Is the service up",
    responses={
        503: {
            "model": HealthError,
            "description": "The workspace cannot be read (file gone, database unreachable)",
        }
    },
)
def health(ctx: Ctx) -> FastJSON:
    from gridgis.store import GeoPackageStore

    try:
        ctx.store.check()
        n = len(ctx.layers())
    except StoreError as exc:
        return FastJSON({"status": "error", "detail": str(exc)}, status_code=503)
    backend = "geopackage" if isinstance(ctx.store, GeoPackageStore) else "postgis"
    return FastJSON(
        {"status": "ok", "backend": backend, "layers": n, "writes_enabled": ctx.token is not None}
    )
