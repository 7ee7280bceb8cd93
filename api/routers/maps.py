"""The HTML maps written by ``gridgis map`` (index, streets, communities, coverage,
lookup, public boards), served from the maps folder given to ``create_app``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse

from api.deps import Ctx

router = APIRouter(prefix="/maps", tags=["maps"])


@router.get("", include_in_schema=False)
async def maps_root() -> RedirectResponse:
    return RedirectResponse("/maps/", status_code=307)


@router.get(
    "/",
    summary="Map index page",
    response_class=FileResponse,
    responses={
        200: {"description": "The page", "content": {"text/html": {}}},
        404: {"description": "No maps on this server"},
    },
)
def maps_index(ctx: Ctx) -> FileResponse:
    return maps_file("index.html", ctx)


@router.get(
    "/{path:path}",
    summary="A map page or asset",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The page or asset (HTML, JavaScript, CSS, images, GeoJSON)",
            "content": {"text/html": {}, "*/*": {}},
        },
        404: {"description": "No such map"},
    },
)
def maps_file(path: Annotated[str, PathParam(max_length=300)], ctx: Ctx) -> FileResponse:
    if ctx.maps_dir is None or not ctx.maps_dir.is_dir():
        raise HTTPException(
            404, "no maps on this server (gridgis serve --maps DIR, after gridgis map --out DIR)"
        )
    root = ctx.maps_dir.resolve()
    if "\x00" in path:
        raise HTTPException(404, "no such map")
    try:  # a name too long for the file system is no map either
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            raise HTTPException(404, "no such map")
        if target.is_dir():
            target = target / "index.html"
        found = target.is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        raise HTTPException(404, f"no map '{path[:100]}'")
    return FileResponse(target)
