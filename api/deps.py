"""Dependencies injected into the routers: the shared context (store, settings, caches)
and the bearer-token check for writes and personal fields."""

from __future__ import annotations

import hmac
import json
import math
from datetime import date, datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.app import AppContext

_bearer = HTTPBearer(auto_error=False, description="The token in GRIDGIS_API_TOKEN")


async def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # async: no threadpool hop per request


Ctx = Annotated[AppContext, Depends(get_ctx)]


def token_ok(ctx: AppContext, cred: HTTPAuthorizationCredentials | None) -> bool:
    """True when ``cred`` is a bearer token equal to the write token (constant time)."""
    if ctx.token is None or cred is None or cred.scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(cred.credentials.encode(), ctx.token.encode())


async def authorised(
    ctx: Ctx, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None
) -> bool:
    """True when the request carries the write token (personal fields may be shown)."""
    return token_ok(ctx, cred)


async def require_token(
    ctx: Ctx, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None
) -> None:
    """401 unless the request carries the write token."""
    if ctx.token is None:
        raise HTTPException(
            401,
            "writes are disabled on this server (start it with GRIDGIS_API_TOKEN set)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not token_ok(ctx, cred):
        raise HTTPException(
            401,
            "a valid bearer token is required (Authorization: Bearer <GRIDGIS_API_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorised = Annotated[bool, Depends(authorised)]


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
