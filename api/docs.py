"""API documentation pages that work offline (government intranets): Swagger UI at
``/docs`` and ReDoc at ``/redoc`` with their JavaScript and CSS served by this server
from the pinned PyPI package ``fastapi-offline`` (no CDN, no web fonts)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

#: Folder of the Swagger UI / ReDoc assets shipped in the fastapi-offline wheel.
ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
#: Where the assets are served.
ASSETS_URL = "/docs-assets"
#: The one remote URL in the ReDoc bundle (the "API docs by Redocly" logo), served from
#: here instead so that the page makes no request outside the server.
_REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def add_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI), ``/redoc`` and their assets from this server.
    ``app`` must be made with ``docs_url=None, redoc_url=None``."""
    redoc_js: list[bytes] = []

    @app.get(f"{ASSETS_URL}/redoc.standalone.js", include_in_schema=False)
    async def redoc_bundle() -> Response:
        if not redoc_js:  # read once, on first use
            text = (ASSETS / "redoc.standalone.js").read_text(encoding="utf-8")
            redoc_js.append(text.replace(_REDOC_LOGO, f"{ASSETS_URL}/favicon.png").encode())
        return Response(
            redoc_js[0],
            media_type="application/javascript",
            headers={"cache-control": "public, max-age=86400"},
        )

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    oauth_redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} – API",
            oauth2_redirect_url=f"{root}{oauth_redirect}",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        )

    @app.get(oauth_redirect, include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} – API",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
