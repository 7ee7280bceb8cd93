"""Lookups: which street, community and grid (and which people) serve a point or an
address — the hotline's question. Answers come from :class:`gridgis.lookup.Lookup`."""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from api.deps import Authorised, Ctx, FastJSON
from api.models import AddressAnswer, PointAnswer

router = APIRouter(prefix="/lookup", tags=["lookup"])

PointCrs = Literal["wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:4326", "EPSG:4490"]


#: Points per Lookup.points call: the cost per call stays flat up to about this many.
MAX_BATCH = 16


class PointBatcher:
    """Coalesces point lookups that arrive together into one vectorised
    :meth:`gridgis.lookup.Lookup.points` call (dynamic batching): requests that are
    ready in the same turn of the event loop share one spatial query, so throughput
    grows with concurrency instead of paying the per-call overhead for each point."""

    def __init__(self) -> None:
        self.pending: list[tuple[Any, float, float, str, asyncio.Future]] = []
        self.scheduled = False

    async def locate(self, lk: Any, lon: float, lat: float, crs: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.pending.append((lk, lon, lat, crs, fut))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self.flush)
        return await fut

    def flush(self) -> None:
        batch, self.pending, self.scheduled = self.pending, [], False
        groups: dict[tuple[int, str], list] = {}
        for item in batch:
            groups.setdefault((id(item[0]), item[3]), []).append(item)
        chunks = [((crs, items[i:i + MAX_BATCH])) for (_, crs), items in groups.items()
                  for i in range(0, len(items), MAX_BATCH)]
        for crs, items in chunks:
            lk = items[0][0]
            try:
                rows = lk.points([i[1] for i in items], [i[2] for i in items], crs
                                 ).to_dict("records")
            except Exception as exc:  # noqa: BLE001 - handed to each waiting request
                for *_, fut in items:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for row, (*_, fut) in zip(rows, items, strict=True):
                if not fut.done():
                    fut.set_result(row)


def answer(lk: Any, row: dict[str, Any], lon: float, lat: float, crs: str,
           include_personal: bool) -> dict[str, Any]:
    """The answer :meth:`Lookup.point` gives, from a row of :meth:`Lookup.points`
    (tests check the two agree point for point)."""
    bid = row["building_id"]
    out: dict[str, Any] = {"query": {"lon": float(lon), "lat": float(lat), "crs": crs},
                           "match_level": row["match_level"],
                           "lon": float(row["lon"]), "lat": float(row["lat"]),
                           "building_id": None if bid is None or bid is pd.NA
                           or (isinstance(bid, float) and math.isnan(bid)) else str(bid)}
    out.update(lk._chain(row, include_personal))
    return out


BATCHER = PointBatcher()


async def _lookup(ctx):
    if ctx._lookup is None:  # built once (reads the layers); off the event loop
        return await run_in_threadpool(ctx.lookup)
    return ctx.lookup()


@router.get("/point", response_model=PointAnswer, summary="Grid and people at a point",
            description="The chain street → community → grid → grid head and workers for "
                        "a point given in WGS84, CGCS2000, GCJ-02 (Amap/Tencent) or BD-09 "
                        "(Baidu). Phone numbers only with the write token.")
async def point(
    ctx: Ctx, auth: Authorised,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude, degrees")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude, degrees")],
    crs: Annotated[PointCrs, Query(description="CRS of lon/lat")] = "wgs84",
) -> FastJSON:
    lk = await _lookup(ctx)
    if not hasattr(lk, "_chain"):  # a Lookup without the chain helper: one at a time
        return FastJSON(lk.point(lon, lat, crs, include_personal=auth))
    row = await BATCHER.locate(lk, lon, lat, crs)
    return FastJSON(answer(lk, row, lon, lat, crs, auth))


@router.get("/address", response_model=AddressAnswer, summary="Grid and people of an address",
            description="Matches a free-text Chinese address against the standard "
                        "addresses and returns the chain; not confident → candidates.",
            responses={404: {"description": "The workspace has no addresses layer"}})
async def address(
    ctx: Ctx, auth: Authorised,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Address text")],
) -> FastJSON:
    if not q.strip():
        raise HTTPException(422, "q: give an address text")
    lk = await _lookup(ctx)
    if lk.index is None:
        raise HTTPException(404, "the workspace has no 'addresses' layer to match against")
    answer = await run_in_threadpool(lk.address, q, auth)
    return FastJSON(answer)
