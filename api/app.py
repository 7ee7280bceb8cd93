"""The gridgis HTTP API: layers as OGC API – Features collections, lookups, grids,
coverage, the HTML maps, and token-protected writes.

``create_app(store, settings)`` builds the FastAPI application around one workspace
(:class:`gridgis.store.Store`, GeoPackage or PostGIS); ``gridgis serve`` runs it under
uvicorn. What requests share lives in :class:`api.context.AppContext` (no web framework
in it), handed to the routers as a dependency (:data:`api.deps.Ctx`).

Writes need ``Authorization: Bearer <token>`` with the token of ``GRIDGIS_API_TOKEN``
(or ``create_app(token=…)``); without a configured token, writes are refused. Personal
fields (:data:`gridgis.layers.PERSONAL_FIELDS`, e.g. staff phone numbers) are served only
to requests carrying the token.

Errors: every :class:`gridgis.errors.GridgisError` is answered with its type's
``http_status`` (input 422, not found 404, conflict 409, limit 413, store 503) and
``{"detail": message}``; invalid request fields with 422 and one entry per field.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.context import AppContext, limit_malloc_arenas
from api.deps import require_token
from api.docs import add_offline_docs
from api.middleware import BodyLimit, PointFastLane, WriteGuard
from api.models import Problem
from gridgis.errors import GridgisError
from gridgis.standards import DEFAULT, Settings
from gridgis.store import Store

log = logging.getLogger(__name__)

#: Error answers documented on every operation, and on writes.
_ALWAYS = {
    422: "Invalid parameter (named in `detail`; per field in `errors`)",
    503: "The workspace cannot be read (file gone, database unreachable)",
}
_DEFAULT_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
_WRITES = {
    400: "The body cannot be parsed (malformed JSON or multipart)",
    401: "Missing or wrong bearer token (refused before the body is read)",
    413: "Body over the size limit (server.max_body_bytes / server.max_json_bytes)",
}


def create_app(
    store: Store,
    settings: Settings = DEFAULT,
    maps_dir: str | Path | None = None,
    token: str | None = None,
    max_body_bytes: int | None = None,
) -> FastAPI:
    """Build the API around one workspace.

    Parameters
    ----------
    store
        The workspace (``gridgis.store.open_store(...)``).
    settings
        Planning rules used by lookups and by analyses run through the API, and the
        server's limits (``settings.server``, :class:`gridgis.standards.ServerRules`).
    maps_dir
        Folder of the HTML maps (``gridgis map --out``) served under ``/maps/``.
    token
        Bearer token for writes; default ``GRIDGIS_API_TOKEN`` from the environment.
        Without one, writes are refused (401) and personal fields never served.
    max_body_bytes
        Largest upload body, bytes (default ``settings.server.max_body_bytes``);
        larger ones get 413.
    """
    from api.routers import (
        edits,
        export,
        features,
        grids,
        lookup,
        maps,
        service_area,
        tiles,
        writes,
    )

    if max_body_bytes is not None:
        settings = settings.override({"server.max_body_bytes": int(max_body_bytes)})
    token = token if token is not None else os.environ.get("GRIDGIS_API_TOKEN") or None
    app = FastAPI(
        title="gridgis",
        version="0.1.0",
        description="Grid-management GIS for urban community governance "
        "(城乡社区网格化服务管理): layers as OGC API – Features collections, "
        "address and point lookup, grids, coverage and maps.",
        docs_url=None,
        redoc_url=None,
    )
    ctx = AppContext(
        store=store,
        settings=settings,
        maps_dir=Path(maps_dir) if maps_dir else None,
        token=token,
    )
    app.state.ctx = ctx
    for module in (features, lookup, grids, writes, maps, export, service_area, edits, tiles):
        app.include_router(module.router)
    add_offline_docs(app)
    _add_error_handlers(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # outermost last: WriteGuard → BodyLimit → PointFastLane → FastAPI
    app.add_middleware(PointFastLane, ctx=ctx)
    app.add_middleware(BodyLimit, ctx=ctx)
    app.add_middleware(WriteGuard, ctx=ctx, protected=_protected_routes(app))
    return app


def _protected_routes(app: FastAPI) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path pattern, methods) of every route that requires the write token."""
    out = []
    for route in app.routes:
        if isinstance(route, APIRoute) and any(
            d.call is require_token for d in route.dependant.dependencies
        ):
            out.append((route.path_regex, frozenset(route.methods or ())))
    return out


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GridgisError)
    async def library_error(request: Request, exc: GridgisError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            errors.append(
                {
                    "field": ".".join(loc[1:]) or ".".join(loc),
                    "in": loc[0] if loc else None,
                    "message": str(e.get("msg")),
                }
            )
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return JSONResponse({"detail": f"invalid {fields}", "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, made to say what the server does: every error answer as
    :class:`api.models.Problem` (``detail`` a text), 400/401/413 on writes, security
    declared by write operations only."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for ops in schema.get("paths", {}).values():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            wanted = dict(_ALWAYS)
            if op.get("security"):
                wanted |= _WRITES
            for status, text in wanted.items():
                responses.setdefault(str(status), {"description": text})
            for status, resp in responses.items():
                for media in resp.get("content", {}).values():
                    if "$ref" in media.get("schema", {}):  # a model behind a non-JSON class
                        media["schema"] = {"$ref": media["schema"]["$ref"]}
                current = resp.get("content", {}).get("application/json", {}).get("schema")
                if status[0] in "45" and current in (None, {}, _DEFAULT_422):
                    resp["content"] = ref
            if method == "get":
                op.pop("security", None)
    app.openapi_schema = schema
    return schema


def from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and ``gridgis serve --workers N``: the
    workspace from ``GRIDGIS_SERVE_STORE`` (path or URL, else ``GRIDGIS_DATABASE_URL``),
    maps from ``GRIDGIS_SERVE_MAPS``, rules from ``GRIDGIS_SERVE_RULES`` (TOML path) and
    ``GRIDGIS_SERVE_SET`` (JSON list of ``section.name=value``). Each worker process
    builds its own app and loads the lookup index once, at start
    (``GRIDGIS_SERVE_PRELOAD``, default on), not on its first request, with its malloc
    arenas capped at ``server.malloc_arenas`` (a bounded resident memory)."""
    import json

    from gridgis.store import open_store

    store = open_store(os.environ.get("GRIDGIS_SERVE_STORE") or None, create=False)
    rules = os.environ.get("GRIDGIS_SERVE_RULES")
    settings = Settings.from_toml(rules) if rules else Settings()
    sets = json.loads(os.environ.get("GRIDGIS_SERVE_SET") or "[]")
    if sets:
        settings = settings.override(dict(s.split("=", 1) for s in sets))
    limit_malloc_arenas(settings.server.malloc_arenas)  # before any request thread
    app = create_app(store, settings, maps_dir=os.environ.get("GRIDGIS_SERVE_MAPS") or None)
    if os.environ.get("GRIDGIS_SERVE_PRELOAD", "1") != "0":
        try:
            app.state.ctx.lookup()
        except GridgisError as exc:  # answered per request instead (e.g. no grids yet)
            log.warning("lookup index not loaded at start: %s", exc)
    return app
