"""Grid edits from the browser (bearer token required for previews and saves): move a
building or a street block to a neighbouring grid, merge two grids, split one along a
line or a road, undo the last edit; and the edit page ``/edit/{community_code}`` that
makes them by clicking (:mod:`gridgis.workflows.edits`)."""

from __future__ import annotations

import json
from datetime import date
from html import escape
from typing import Annotated, Any, Literal

import shapely
from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from api.deps import Ctx, FastJSON, require_token
from gridgis.crs import STORAGE_CRS

router = APIRouter(tags=["edits"])

Lon = Annotated[float, Field(ge=-180, le=180)]
Lat = Annotated[float, Field(ge=-90, le=90)]


GridCode = Annotated[str, Field(pattern=r"^[0-9]{15}$", description="15-digit grid code")]


class _Edit(BaseModel):
    reason: str | None = Field(None, max_length=500, description="Why (kept with the version)")
    effective: date | None = Field(None, description="Date it takes effect (default today)")

    def edit(self) -> dict[str, Any]:
        """The edit as :func:`gridgis.workflows.edits.run_edit` takes it."""
        out = self.model_dump(mode="json", exclude={"reason", "effective"})
        return {k: v for k, v in out.items() if v is not None}


class MoveBuilding(_Edit):
    """Move a building's cell to a neighbouring grid."""

    op: Literal["move_building"]
    building_id: str = Field(min_length=1, max_length=100)
    to_grid: GridCode


class MoveBlock(_Edit):
    """Move the street block under a point (its part in the grid there) to a neighbour."""

    op: Literal["move_block"]
    point: tuple[Lon, Lat] = Field(description="A point in the block, [lon, lat]")
    to_grid: GridCode


class Merge(_Edit):
    """Merge two adjacent grids of one community (the first keeps its attributes)."""

    op: Literal["merge"]
    grids: list[GridCode] = Field(min_length=2, max_length=2)


class SplitByLine(_Edit):
    """Split a grid along a drawn line ([lon, lat] points, from outside to outside)."""

    op: Literal["split"]
    grid_code: GridCode
    line: list[tuple[Lon, Lat]] = Field(min_length=2, max_length=500)


class SplitByRoad(_Edit):
    """Split a grid along a road of layer 'roads'."""

    op: Literal["split"]
    grid_code: GridCode
    road_id: str = Field(min_length=1, max_length=100)


EditRequest = MoveBuilding | MoveBlock | Merge | SplitByLine | SplitByRoad
"""One grid edit (coordinates in lon/lat degrees, EPSG:4326)."""


class UndoRequest(BaseModel):
    reason: str | None = Field(None, max_length=500)


_TOKEN = [Depends(require_token)]


@router.post(
    "/grids/edits/preview",
    dependencies=_TOKEN,
    summary="Preview a grid edit",
    responses={404: {"description": "No such grid, building or road"}},
    description="Households and buildings of the grids involved before and after, and "
    "whether the band, contiguity and tiling hold. Nothing is written.",
)
def edit_preview(body: EditRequest, ctx: Ctx) -> FastJSON:
    from gridgis.workflows.edits import preview_edit

    return FastJSON(preview_edit(ctx.store, ctx.settings, body.edit()).preview)


@router.post(
    "/grids/edits",
    dependencies=_TOKEN,
    summary="Save a grid edit",
    responses={404: {"description": "No such grid, building or road"}},
    description="The edit, refreshed (versions, figures, audit) and logged in layer "
    "'edit_log', in one atomic write. Refused (422) when it breaks contiguity or tiling.",
)
def edit_apply(body: EditRequest, ctx: Ctx) -> FastJSON:
    from gridgis.workflows.edits import apply_edit

    with ctx.write_lock:
        try:
            res, job = apply_edit(
                ctx.store, ctx.settings, body.edit(), reason=body.reason, effective=body.effective
            )
        finally:
            ctx.changed()
    return FastJSON({"preview": res.preview, "summary": job.summary, "stats": job.stats})


@router.post(
    "/grids/edits/undo",
    dependencies=_TOKEN,
    summary="Undo the last grid edit",
    responses={
        404: {"description": "No edit to undo"},
        409: {"description": "The grids changed since the edit"},
    },
    description="Removes the versions the last edit opened, reopens those it closed and "
    "restores the grids (404: no edit to undo; 409: the grids changed since).",
)
def edit_undo(ctx: Ctx, body: UndoRequest | None = None) -> FastJSON:
    from gridgis.workflows.edits import undo_last

    with ctx.write_lock:
        try:
            job = undo_last(ctx.store, ctx.settings, reason=body.reason if body else None)
        finally:
            ctx.changed()
    return FastJSON({"summary": job.summary, "stats": job.stats})


# -- the edit page --------------------------------------------------------------------------
Community = Annotated[str, PathParam(pattern=r"^[0-9]{12}$", description="12-digit code")]

_ASSETS = {
    "leaflet.js": "leaflet/leaflet.js",
    "leaflet.css": "leaflet/leaflet.css",
    "edit.js": "edit.js",
    "edit.css": "edit.css",
}


def _static(name: str):
    from gridgis.maps.common import STATIC_DIR

    return STATIC_DIR / name


@router.get("/edit/static/{name}", include_in_schema=False)
def edit_asset(name: Annotated[str, PathParam(max_length=60)]) -> FileResponse:
    if name in _ASSETS:
        return FileResponse(_static(_ASSETS[name]))
    if name.endswith(".png") and "/" not in name and name.isascii():
        path = _static("leaflet/images") / name
        if path.is_file():
            return FileResponse(path)
    raise HTTPException(404, f"no asset '{name[:60]}'")


def _features(frame, columns: list[str]) -> dict[str, Any]:
    keep = [c for c in columns if c in frame]
    return json.loads(frame[[*keep, frame.geometry.name]].to_crs(STORAGE_CRS).to_json())


@router.get(
    "/edit/{community_code}/data",
    summary="Grids and buildings of a community for the edit page",
    responses={404: {"description": "No grids in that community"}},
    description="GeoJSON (CRS84) of the community's grids, the buildings and the roads in them.",
)
def edit_data(community_code: Community, ctx: Ctx) -> FastJSON:
    if not ctx.has_layer("grids"):
        raise HTTPException(404, "the workspace has no grids (run delineate first)")
    grids = ctx.store.read("grids")
    grids = grids[(grids["community_code"].astype(str) == community_code).to_numpy()]
    if len(grids) == 0:
        raise HTTPException(404, f"no grids in community '{community_code}'")
    out: dict[str, Any] = {
        "community_code": community_code,
        "grids": _features(grids, ["grid_code", "name", "kind", "households", "building_count"]),
    }
    if ctx.has_layer("buildings"):
        area = shapely.union_all(grids.to_crs(STORAGE_CRS).geometry.to_numpy())
        b = ctx.store.read("buildings", bbox=tuple(area.bounds)).to_crs(STORAGE_CRS)
        b = b[shapely.intersects(b.geometry.to_numpy(), area)]
        out["buildings"] = _features(b, ["building_id", "name", "households", "grid_code"])
    if ctx.has_layer("roads"):
        area = shapely.union_all(grids.to_crs(STORAGE_CRS).geometry.to_numpy())
        r = ctx.store.read("roads", bbox=tuple(area.bounds)).to_crs(STORAGE_CRS)
        r = r[shapely.intersects(r.geometry.to_numpy(), area)]
        out["roads"] = _features(r, ["road_id", "name", "road_class"])
    return FastJSON(out)


_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>网格编辑 · {code}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/edit/static/leaflet.css">
<link rel="stylesheet" href="/edit/static/edit.css">
</head><body>
<div id="map"></div>
<div id="panel" data-community="{code}"></div>
<script src="/edit/static/leaflet.js"></script>
<script src="/edit/static/edit.js"></script>
</body></html>
"""


@router.get(
    "/edit/{community_code}",
    summary="Edit page of a community",
    response_class=HTMLResponse,
    description="A map of the community's grids and buildings with an edit panel: move "
    "a building or a block, merge, split along a drawn line, preview, save, undo (the "
    "token is asked for on the page).",
)
def edit_page(community_code: Community) -> HTMLResponse:
    return HTMLResponse(_PAGE.replace("{code}", escape(community_code)))
