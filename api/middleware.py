"""Pure ASGI middlewares around the API, each deciding from the request's headers before
the application (or its body parsing) runs:

* :class:`WriteGuard` refuses a write (any method but GET, HEAD, OPTIONS) without the
  write token with 401 before one byte of its body is read;
* :class:`BodyLimit` counts the body as it streams (Content-Length or chunked) and
  answers 413 as soon as it passes the limit (uploads: ``server.max_body_bytes``,
  anything else: ``server.max_json_bytes``);
* :class:`PointFastLane` answers well-formed ``GET /lookup/point`` requests without
  FastAPI's routing, with the function the route calls
  (:meth:`api.context.AppContext.point_answer`).
"""

from __future__ import annotations

import json
import re
from typing import get_args
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.context import AppContext
from api.deps import PointCrs, dumps

#: Methods that never write.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Paths whose body is a multipart upload (limit ``server.max_body_bytes``).
UPLOAD_PATHS = frozenset({"/upload"})


async def send_json(send: Send, status: int, detail: str, headers: list | None = None) -> None:
    """Send a complete ``{"detail": …}`` JSON response."""
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class WriteGuard:
    """401 for a write request without the write token, decided from its headers: the
    body is never read (an unauthenticated 60 MB body costs nothing).

    ``protected``: (path pattern, methods) of the routes that need the token (those
    with the :func:`api.deps.require_token` dependency); other requests pass."""

    def __init__(
        self,
        app: ASGIApp,
        ctx: AppContext,
        protected: list[tuple[re.Pattern[str], frozenset[str]]],
    ) -> None:
        self.app = app
        self.ctx = ctx
        self.protected = protected

    def guarded(self, scope: Scope) -> bool:
        method, path = scope["method"], scope["path"]
        return any(method in m and rx.match(path) for rx, m in self.protected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READ_METHODS or not self.guarded(scope):
            await self.app(scope, receive, send)
            return
        if self.ctx.token is None:
            detail = "writes are disabled on this server (start it with GRIDGIS_API_TOKEN set)"
        elif not self.ctx.token_ok(_header(scope, b"authorization")):
            detail = "a valid bearer token is required (Authorization: Bearer <GRIDGIS_API_TOKEN>)"
        else:
            await self.app(scope, receive, send)
            return
        await send_json(send, 401, detail, [(b"www-authenticate", b"Bearer")])


class BodyLimit:
    """413 for a body over the limit, announced by Content-Length or found while it
    streams (chunked transfer): the application then sees the client gone, and its
    answer is dropped."""

    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app = app
        self.ctx = ctx

    def limit(self, scope: Scope) -> int:
        rules = self.ctx.rules
        if scope["path"] in UPLOAD_PATHS:
            return rules.max_body_bytes
        return min(rules.max_json_bytes, rules.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READ_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        detail = f"request body over the limit of {limit} bytes"
        announced = _header(scope, b"content-length")
        if announced is not None and announced.strip().isdigit() and int(announced) > limit:
            await send_json(send, 413, detail, [(b"connection", b"close")])
            return
        seen = 0
        state = {"started": False, "refused": False}

        async def counting_receive() -> Message:
            nonlocal seen
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    state["refused"] = True
                    if not state["started"]:
                        state["started"] = True
                        await send_json(send, 413, detail, [(b"connection", b"close")])
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return  # the 413 went out already
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not state["refused"]:
                raise


#: A plain decimal number (what the fast lane parses itself; anything else goes to FastAPI).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_POINT_CRS = frozenset(get_args(PointCrs))
_RANGES = {"lon": 180.0, "lat": 90.0}


class PointFastLane:
    """Answers well-formed ``GET /lookup/point`` requests without FastAPI's routing,
    dependency injection and validation (about 0.5 ms a request, most of the cost of a
    point lookup), with :meth:`api.context.AppContext.point_answer` — the function the
    route calls — and the token check of every route
    (:meth:`api.context.AppContext.token_ok`).

    Only requests whose lon, lat (plain decimal numbers within range, once each) and
    crs (one of :data:`api.deps.PointCrs`, at most once) are unambiguous are taken, and
    only once the lookup is built and fresh; everything else goes to the FastAPI route,
    which validates, reports errors and documents the endpoint in the OpenAPI schema.
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
        args = self.args(scope["query_string"])
        lk = self.ready() if args is not None else None
        if lk is None:
            await self.app(scope, receive, send)
            return
        lon, lat, crs = args
        personal = self.ctx.token_ok(_header(scope, b"authorization"))
        body = dumps(self.ctx.point_answer(lon, lat, crs, personal, lookup=lk))
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

    def ready(self):
        """The built, fresh lookup, or None (then the route answers, errors included)."""
        try:
            return self.ctx.lookup_ready()
        except Exception:  # noqa: BLE001 - a store error is answered by the route
            return None

    @staticmethod
    def args(query: bytes) -> tuple[float, float, str] | None:
        """lon, lat, crs when unambiguous and valid, else None (FastAPI decides)."""
        seen: dict[str, str] = {}
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if key == "as_of":  # a dated lookup: the route answers it
                return None
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
