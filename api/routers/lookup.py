"""Lookups: which street, community and grid (and which people) serve a point or an
address — the hotline's question. Answers come from :class:`gridgis.lookup.Lookup`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from api.deps import Authorised, Ctx, FastJSON, PointCrs
from api.models import AddressAnswer, PointAnswer

router = APIRouter(prefix="/lookup", tags=["lookup"])

AsOf = Annotated[
    str | None,
    Query(
        json_schema_extra={"format": "date"},
        description="Answer with the grids valid on this date (YYYY-MM-DD, layer "
        "grid_versions), so an old case keeps the grid of its day; people are today's.",
    ),
]


async def _lookup(ctx, as_of: str | None):
    """The current lookup, or the one over the grids valid on *as_of* (YYYY-MM-DD)."""
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of).isoformat()
        except ValueError:
            raise HTTPException(422, f"as_of: {as_of!r} is not a date (YYYY-MM-DD)") from None
        return await run_in_threadpool(ctx.lookup_as_of, day)
    lk = ctx.lookup_ready()  # built and fresh: answered on the event loop (~0.1 ms)
    if lk is None:  # built once (reads the layers): off the event loop
        lk = await run_in_threadpool(ctx.lookup)
    return lk


@router.get(
    "/point",
    response_model=PointAnswer,
    summary="Grid and people at a point",
    description="The chain street → community → grid → grid head and workers for "
    "a point given in WGS84, CGCS2000, GCJ-02 (Amap/Tencent) or BD-09 "
    "(Baidu). Phone numbers only with the write token.",
    responses={404: {"description": "With as_of: the workspace has no dated grids"}},
)
async def point(
    ctx: Ctx,
    auth: Authorised,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude, degrees")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude, degrees")],
    crs: Annotated[PointCrs, Query(description="CRS of lon/lat")] = "wgs84",
    as_of: AsOf = None,
) -> FastJSON:
    lk = await _lookup(ctx, as_of)
    return FastJSON(ctx.point_answer(lon, lat, crs, auth, lookup=lk))


@router.get(
    "/address",
    response_model=AddressAnswer,
    summary="Grid and people of an address",
    description="Matches a free-text Chinese address against the standard "
    "addresses and returns the chain; not confident → candidates.",
    responses={
        404: {
            "description": "The workspace has no addresses layer (or, with as_of, no dated grids)"
        }
    },
)
async def address(
    ctx: Ctx,
    auth: Authorised,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Address text")],
    as_of: AsOf = None,
) -> FastJSON:
    if not q.strip():
        raise HTTPException(422, "q: give an address text")
    lk = await _lookup(ctx, as_of)
    if lk.index is None:
        raise HTTPException(404, "the workspace has no 'addresses' layer to match against")
    answer = await run_in_threadpool(lk.address, q, auth)
    return FastJSON(answer)
