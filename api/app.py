"""The gridgis HTTP API: layers as OGC API – Features collections, lookups, grids,
coverage, the HTML maps, and token-protected writes.

``create_app(store, settings)`` builds the FastAPI application around one workspace
(:class:`gridgis.store.Store`, GeoPackage or PostGIS); ``gridgis serve`` runs it under
uvicorn. The store is injected into the routers as a dependency (:func:`api.deps.ctx`).

Writes need ``Authorization: Bearer <token>`` with the token of ``GRIDGIS_API_TOKEN``
(or ``create_app(token=…)``); without a configured token, writes are refused. Personal
fields (:data:`gridgis.layers.PERSONAL_FIELDS`, e.g. staff phone numbers) are served only
to requests carrying the token.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridgis.standards import DEFAULT, Settings
from gridgis.store import Store, StoreError

#: Largest request body accepted (uploads included), bytes.
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class AppContext:
    """What every request handler shares: the workspace, the rules and caches."""

    store: Store
    settings: Settings
    maps_dir: Path | None
    token: str | None
    max_body_bytes: int
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    _lookup: Any = None
    _lookup_lock: threading.Lock = field(default_factory=threading.Lock)
    _layers: list[str] | None = None

    def lookup(self):
        """The :class:`gridgis.lookup.Lookup`, built on first use and after every write."""
        lk = self._lookup
        if lk is None:
            with self._lookup_lock:
                if self._lookup is None:
                    from gridgis.lookup import Lookup

                    self._lookup = Lookup.from_store(self.store, self.settings)
                lk = self._lookup
        return lk

    def layers(self) -> list[str]:
        """Layer names (cached; refreshed after writes made through this API)."""
        names = self._layers
        if names is None:
            names = self._layers = self.store.layers()
        return names

    def changed(self) -> None:
        """Forget caches after a write."""
        with self._lookup_lock:
            self._lookup = None
        self._layers = None


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether announced by
    Content-Length or discovered while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _send_413(send, self.limit)
                    return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_413(send, self.limit)


async def _send_413(send: Send, limit: int) -> None:
    body = (f'{{"detail": "request body over the limit of {limit} bytes"}}').encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(
    store: Store,
    settings: Settings = DEFAULT,
    maps_dir: str | Path | None = None,
    token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """Build the API around one workspace.

    Parameters
    ----------
    store
        The workspace (``gridgis.store.open_store(...)``).
    settings
        Planning rules used by lookups and by analyses run through the API.
    maps_dir
        Folder of the HTML maps (``gridgis map --out``) served under ``/maps/``.
    token
        Bearer token for writes; default ``GRIDGIS_API_TOKEN`` from the environment.
        Without one, writes are refused (401) and personal fields never served.
    max_body_bytes
        Largest request body accepted; larger ones get 413.
    """
    from api.routers import export, features, grids, lookup, maps, writes

    token = token if token is not None else os.environ.get("GRIDGIS_API_TOKEN") or None
    app = FastAPI(
        title="gridgis",
        version="0.1.0",
        description="Grid-management GIS for urban community governance "
        "(城乡社区网格化服务管理): layers as OGC API – Features collections, "
        "address and point lookup, grids, coverage and maps.",
    )
    app.state.ctx = AppContext(
        store=store,
        settings=settings,
        maps_dir=Path(maps_dir) if maps_dir else None,
        token=token,
        max_body_bytes=max_body_bytes,
    )
    for module in (features, lookup, grids, writes, maps, export):
        app.include_router(module.router)

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        text = str(exc)
        status = 404 if "no layer" in text or "no such" in text else 422
        return JSONResponse({"detail": text}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            errors.append(
                {
                    "field": ".".join(loc[1:]) or ".".join(loc),
                    "in": loc[0] if loc else None,
                    "message": e.get("msg"),
                }
            )
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return JSONResponse({"detail": f"invalid {fields}", "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    app.add_middleware(lookup.PointFastLane, ctx=app.state.ctx)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app


def from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and ``gridgis serve --workers N``: the
    workspace from ``GRIDGIS_SERVE_STORE`` (path or URL, else ``GRIDGIS_DATABASE_URL``),
    maps from ``GRIDGIS_SERVE_MAPS``, rules from ``GRIDGIS_SERVE_RULES`` (TOML path) and
    ``GRIDGIS_SERVE_SET`` (JSON list of ``section.name=value``)."""
    import json

    from gridgis.store import open_store

    store = open_store(os.environ.get("GRIDGIS_SERVE_STORE") or None, create=False)
    rules = os.environ.get("GRIDGIS_SERVE_RULES")
    settings = Settings.from_toml(rules) if rules else Settings()
    sets = json.loads(os.environ.get("GRIDGIS_SERVE_SET") or "[]")
    if sets:
        settings = settings.override(dict(s.split("=", 1) for s in sets))
    return create_app(store, settings, maps_dir=os.environ.get("GRIDGIS_SERVE_MAPS") or None)
