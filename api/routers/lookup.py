"""Lookups: which street, community and grid (and which people) serve a point or an
address — the hotline's question. Answers come from :class:`gridgis.lookup.Lookup`."""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Query
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import AppContext
from api.deps import Authorised, Ctx, FastJSON, dumps, token_ok
from api.models import AddressAnswer, PointAnswer

router = APIRouter(prefix="/lookup", tags=["lookup"])

PointCrs = Literal["wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:4326", "EPSG:4490"]

#: A plain decimal number (what the fast lane parses itself; anything else goes to FastAPI).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_POINT_CRS = frozenset(get_args(PointCrs))
_RANGES = {"lon": 180.0, "lat": 90.0}


class PointFastLane:
    """Answers well-formed ``GET /lookup/point`` requests without FastAPI's routing,
    dependency injection and validation (about 0.5 ms a request, most of the cost of a
    point lookup), with exactly the answer of the :func:`point` route.

    Only requests whose lon, lat (plain decimal numbers within range, once each) and
    crs (one of :data:`PointCrs`, at most once) are unambiguous are taken; everything
    else — bad values, unknown CRS, a lookup not built yet — goes to the FastAPI route,
    which validates, reports errors and documents the endpoint in the OpenAPI schema.
    The bearer token is checked by :func:`api.deps.token_ok`, the check of every route.
    """

    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != "/lookup/point"
            or scope["method"] != "GET"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        lk = self.ctx._lookup  # once: a write through the API may reset it meanwhile
        args = self._args(scope["query_string"]) if lk is not None else None
        if args is None:
            await self.app(scope, receive, send)
            return
        lon, lat, crs = args
        body = dumps(lk.point(lon, lat, crs, include_personal=self._authorised(scope)))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _args(query: bytes) -> tuple[float, float, str] | None:
        """lon, lat, crs when unambiguous and valid, else None (FastAPI decides)."""
        seen: dict[str, str] = {}
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if key in ("lon", "lat", "crs"):
                if key in seen:
                    return None
                seen[key] = value
        out = []
        for key in ("lon", "lat"):
            text = seen.get(key)
            if text is None or not _NUMBER.fullmatch(text):
                return None
            v = float(text)
            if not -_RANGES[key] <= v <= _RANGES[key]:
                return None
            out.append(v)
        crs = seen.get("crs", "wgs84")
        if crs not in _POINT_CRS:
            return None
        return out[0], out[1], crs

    def _authorised(self, scope: Scope) -> bool:
        """The :func:`api.deps.authorised` answer, from the first Authorization header
        split as :class:`fastapi.security.HTTPBearer` splits it."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, credentials = get_authorization_scheme_param(value.decode("latin-1"))
                if not (scheme and credentials):
                    return False
                return token_ok(
                    self.ctx, HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)
                )
        return False


async def _lookup(ctx):
    if ctx._lookup is None:  # built once (reads the layers); off the event loop
        return await run_in_threadpool(ctx.lookup)
    return ctx.lookup()


@router.get(
    "/point",
    response_model=PointAnswer,
    summary="Grid and people at a point",
    description="The chain street → community → grid → grid head and workers for "
    "a point given in WGS84, CGCS2000, GCJ-02 (Amap/Tencent) or BD-09 "
    "(Baidu). Phone numbers only with the write token.",
)
async def point(
    ctx: Ctx,
    auth: Authorised,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude, degrees")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude, degrees")],
    crs: Annotated[PointCrs, Query(description="CRS of lon/lat")] = "wgs84",
) -> FastJSON:
    lk = await _lookup(ctx)
    # ~0.1 ms (an index query and a copy of a precomputed chain): on the event loop,
    # cheaper than a threadpool hop or batching
    return FastJSON(lk.point(lon, lat, crs, include_personal=auth))


@router.get(
    "/address",
    response_model=AddressAnswer,
    summary="Grid and people of an address",
    description="Matches a free-text Chinese address against the standard "
    "addresses and returns the chain; not confident → candidates.",
    responses={404: {"description": "The workspace has no addresses layer"}},
)
async def address(
    ctx: Ctx,
    auth: Authorised,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Address text")],
) -> FastJSON:
    if not q.strip():
        raise HTTPException(422, "q: give an address text")
    lk = await _lookup(ctx)
    if lk.index is None:
        raise HTTPException(404, "the workspace has no 'addresses' layer to match against")
    answer = await run_in_threadpool(lk.address, q, auth)
    return FastJSON(answer)
