"""Dependencies injected into the routers: the shared context (:mod:`api.context`), the
bearer-token check for writes and personal fields, request validation (layer, bbox, crs),
and the JSON responses."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from fastapi.security import HTTPBearer

from api.context import AppContext

_bearer = HTTPBearer(auto_error=False, description="The token in GRIDGIS_API_TOKEN")


async def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # async: no threadpool hop per request


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def authorised(request: Request, ctx: Ctx) -> bool:
    """True when the request carries the write token (personal fields may be shown).
    Read from the header itself: public reads declare no security in the OpenAPI
    document."""
    return ctx.token_ok(request.headers.get("authorization"))


async def require_token(
    request: Request, ctx: Ctx, _cred: Annotated[Any, Depends(_bearer)] = None
) -> None:
    """401 unless the request carries the write token. (The ASGI guard
    :class:`api.middleware.WriteGuard` has already refused such requests before their
    body was read; this dependency declares the security scheme and checks again.)"""
    if ctx.token is None:
        raise HTTPException(
            401,
            "writes are disabled on this server (start it with GRIDGIS_API_TOKEN set)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not ctx.token_ok(request.headers.get("authorization")):
        raise HTTPException(
            401,
            "a valid bearer token is required (Authorization: Bearer <GRIDGIS_API_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorised = Annotated[bool, Depends(authorised)]

# -- request validation ------------------------------------------------------------------

#: CRS of a point given to ``/lookup/point``.
PointCrs = Literal["wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:4326", "EPSG:4490"]

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
GCJ02 = "https://gridgis.dev/def/crs/GCJ-02"
"""GCJ-02 (Amap/Tencent offset coordinates, lon/lat order) has no EPSG code."""

#: Output CRSs: URI -> (kind, lat/lon axis order). EPSG:4326 and EPSG:4490 are
#: latitude-first as their definitions say (OGC API – Features Part 2).
CRS_CHOICES: dict[str, tuple[str, bool]] = {
    CRS84: ("wgs84", False),
    EPSG4326: ("wgs84", True),
    EPSG4490: ("wgs84", True),
    GCJ02: ("gcj02", False),
}
#: Short names accepted for the URIs above.
CRS_ALIASES = {
    "crs84": CRS84,
    "CRS84": CRS84,
    "wgs84": CRS84,
    "epsg:4326": EPSG4326,
    "EPSG:4326": EPSG4326,
    "epsg:4490": EPSG4490,
    "EPSG:4490": EPSG4490,
    "cgcs2000": EPSG4490,
    "gcj02": GCJ02,
    "gcj-02": GCJ02,
}
#: Every accepted spelling of an output or bbox CRS (an enum in the OpenAPI document).
OutCrs = Literal[
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "http://www.opengis.net/def/crs/EPSG/0/4326",
    "http://www.opengis.net/def/crs/EPSG/0/4490",
    "https://gridgis.dev/def/crs/GCJ-02",
    "crs84",
    "CRS84",
    "wgs84",
    "epsg:4326",
    "EPSG:4326",
    "epsg:4490",
    "EPSG:4490",
    "cgcs2000",
    "gcj02",
    "gcj-02",
]


def crs_uri(value: str | None) -> str:
    """The URI of an accepted CRS spelling (CRS84 when none)."""
    if not value:
        return CRS84
    return value if value in CRS_CHOICES else CRS_ALIASES[value]


async def out_crs(
    crs: Annotated[
        OutCrs | None,
        Query(description=f"Output CRS: CRS84 (default), {EPSG4326}, {EPSG4490} or {GCJ02}"),
    ] = None,
) -> str:
    """The output CRS URI of a features request."""
    return crs_uri(crs)


OutCrsUri = Annotated[str, Depends(out_crs)]

Box = tuple[float, float, float, float]


#: A decimal number as the bbox parameter takes it.
_NUM = r"[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:[eE][+-]?[0-9]+)?"
#: minx,miny,maxx,maxy or the 3-D form minx,miny,minz,maxx,maxy,maxz.
BBOX_PATTERN = rf"^{_NUM}(?:,{_NUM}){{3}}(?:,{_NUM},{_NUM})?$"


def parse_bbox(text: str, bbox_crs: str) -> Box:
    """``minx,miny,maxx,maxy`` (or the 6-number 3-D form) in the CRS ``bbox_crs`` (a URI
    of :data:`CRS_CHOICES`) as lon/lat degrees in EPSG:4326.

    Lenient where the meaning is plain: the two corners may come in either order, and a
    box reaching beyond the world is cut to it (longitudes -180…180, latitudes
    -90…90). Text that is not 4 or 6 numbers gets 422."""
    from gridgis.crs import gcj02_to_wgs84

    try:
        vals = [float(p) for p in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) == 6:
        vals = [vals[0], vals[1], vals[3], vals[4]]
    if len(vals) != 4 or any(np.isnan(vals)):
        raise HTTPException(422, "bbox: four numbers minx,miny,maxx,maxy (lon/lat degrees)")
    kind, latlon = CRS_CHOICES[bbox_crs]
    if latlon:
        vals = [vals[1], vals[0], vals[3], vals[2]]
    xs = np.clip(sorted(vals[0::2]), -180.0, 180.0)
    ys = np.clip(sorted(vals[1::2]), -90.0, 90.0)
    if kind == "gcj02":
        gx, gy = gcj02_to_wgs84(np.array([xs[0], xs[1], xs[0], xs[1]]), np.repeat(ys, 2))
        xs, ys = np.array([gx.min(), gx.max()]), np.array([gy.min(), gy.max()])
    return (float(xs[0]), float(ys[0]), float(xs[1]), float(ys[1]))


async def bbox_filter(
    bbox: Annotated[
        str | None,
        Query(
            description="minx,miny,maxx,maxy in bbox-crs (default CRS84 lon/lat)",
            max_length=200,
            pattern=BBOX_PATTERN,
        ),
    ] = None,
    bbox_crs: Annotated[
        OutCrs | None, Query(alias="bbox-crs", description="CRS of bbox (default CRS84)")
    ] = None,
) -> Box | None:
    """The bbox of a features request in lon/lat degrees, or ``None``."""
    if not bbox:
        return None
    return parse_bbox(bbox, crs_uri(bbox_crs))


BBox = Annotated[Box | None, Depends(bbox_filter)]


def layer_names(ctx: AppContext) -> str:
    return ", ".join(n for n in ctx.layers() if not n.startswith("gridgis_")) or "none"


def existing_layer(
    ctx: Ctx,
    layer: Annotated[
        str,
        PathParam(
            description="Layer name, e.g. grids, buildings",
            max_length=63,
            examples=["grids", "buildings", "staff", "facilities"],
        ),
    ],
) -> str:
    """The path's layer name; 404 naming the collections when the workspace lacks it."""
    if not ctx.has_layer(layer):
        raise HTTPException(404, f"no collection '{layer}' (collections: {layer_names(ctx)})")
    return layer


Layer = Annotated[str, Depends(existing_layer)]


def plain(value: Any) -> Any:
    """A JSON-ready Python value from numpy/pandas scalars (missing values -> None)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    return value


def _default(value: Any) -> Any:
    out = plain(value)
    if out is value:
        return str(value)
    return out


def clean(obj: Any) -> Any:
    """A copy of nested dicts/lists with every value made JSON-ready (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return plain(obj)


def dumps(obj: Any) -> bytes:
    """Serialise to JSON (UTF-8, Chinese kept as is; NaN/NA as null)."""
    try:
        text = json.dumps(
            obj, ensure_ascii=False, default=_default, allow_nan=False, separators=(",", ":")
        )
    except ValueError:  # a NaN somewhere in a nested answer
        text = json.dumps(
            clean(obj), ensure_ascii=False, default=_default, allow_nan=False, separators=(",", ":")
        )
    return text.encode("utf-8")


class FastJSON(Response):
    """A JSON response serialised by :func:`dumps` (no response-model round trip)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class GeoJSON(FastJSON):
    media_type = "application/geo+json"


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain JSON values (NaN/NA -> None)."""
    if frame.empty:
        return []
    obj = frame.astype(object).where(frame.notna(), None)
    cols = list(obj.columns)
    return [
        {c: plain(v) for c, v in zip(cols, row, strict=True)}
        for row in obj.itertuples(index=False, name=None)
    ]
