"""OGC API – Tiles: the workspace's layers as Mapbox Vector Tiles in WebMercatorQuad.

* ``GET /tiles``: the tilesets (one: every map layer in WebMercatorQuad).
* ``GET /tiles/WebMercatorQuad``: that tileset, its layers and its tile URL template.
* ``GET /tileMatrixSets/WebMercatorQuad``: the tile matrix set (zooms 0 … 22).
* ``GET /tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}``: one tile holding every
  map layer (:data:`gridgis.tiles.TILE_LAYERS`), and
  ``GET /collections/{layer}/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}`` one
  layer's tile. Row before column, as OGC API – Tiles orders them (``{z}/{y}/{x}``).

The tile of every layer comes from ``city.mbtiles`` beside a ``city.gpkg`` workspace
when :func:`gridgis.tiles.build_mbtiles` made it from the workspace as it is now, else it
is encoded per request (on PostGIS by ``ST_AsMVT``). A tile is
``application/vnd.mapbox-vector-tile``; a tile without features is answered
204 (no content), one outside the tile matrix set 404, a negative or non-integer zoom,
row or column 422.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from api.deps import Ctx, Layer
from gridgis import tiles

router = APIRouter(tags=["tiles"])

TMS = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"

Zoom = Annotated[int, PathParam(ge=0, description="Zoom level (tile matrix), 0 … 22")]
Row = Annotated[int, PathParam(ge=0, description="Tile row from the north, 0 … 2^zoom − 1")]
Col = Annotated[int, PathParam(ge=0, description="Tile column from the west, 0 … 2^zoom − 1")]

_TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {tiles.MEDIA_TYPE: {}}, "description": "The tile (Mapbox Vector Tile)"},
    204: {"description": "No feature meets this tile"},
    304: {"description": "Not modified: the tile of the ETag in If-None-Match"},
    404: {"description": "Tile outside the tile matrix set, or unknown layer"},
}


def _tile_layers(ctx: Any) -> list[str]:
    have = set(ctx.layers())
    return [n for n in tiles.TILE_LAYERS if n in have]


def _etag(ctx: Any, *parts: Any) -> str:
    """A validator of a tile: the workspace's change token and the tile's address."""
    text = json.dumps([ctx.store.change_token(), *parts], default=str)
    return '"' + hashlib.sha1(text.encode()).hexdigest()[:20] + '"'


def _answer(request: Request, etag: str, make: Callable[[], bytes]) -> Response:
    """304 when the client holds this version (``If-None-Match``), else the tile (204 when
    empty), with ``Cache-Control`` and ``ETag``."""
    headers = {"Cache-Control": f"public, max-age={tiles.CACHE_MAX_AGE_S}", "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    tile = make()
    if not tile:
        return Response(status_code=204, headers=headers)
    return Response(tile, media_type=tiles.MEDIA_TYPE, headers=headers)


def _template(request: Request, prefix: str = "") -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}{prefix}/tiles/{TMS}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"


def _tileset(request: Request, ctx: Any) -> dict[str, Any]:
    names = _tile_layers(ctx)
    return {
        "title": "gridgis 网格图层",
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "layers": [
            {
                "id": n,
                "dataType": "vector",
                "minTileMatrix": str(tiles.TILE_LAYERS[n].minzoom),
                "maxTileMatrix": str(tiles.MAX_ZOOM),
                "propertiesSchema": {
                    "type": "object",
                    "properties": {f: {} for f in tiles.TILE_LAYERS[n].fields},
                },
            }
            for n in names
        ],
        "links": [
            {
                "rel": "item",
                "type": tiles.MEDIA_TYPE,
                "title": "Mapbox Vector Tiles of every map layer",
                "href": _template(request),
                "templated": True,
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                "type": "application/json",
                "href": f"{str(request.base_url).rstrip('/')}/tileMatrixSets/{TMS}",
            },
        ],
    }


@router.get("/tiles", summary="Tilesets (vector tiles of the map layers)")
def tilesets(request: Request, ctx: Ctx) -> JSONResponse:
    ts = _tileset(request, ctx)
    summary = {k: ts[k] for k in ("title", "dataType", "crs", "tileMatrixSetURI", "links")}
    return JSONResponse({"tilesets": [summary]})


@router.get(f"/tiles/{TMS}", summary="The vector tileset in WebMercatorQuad")
def tileset(request: Request, ctx: Ctx) -> JSONResponse:
    return JSONResponse(_tileset(request, ctx))


@router.get(f"/tileMatrixSets/{TMS}", summary="The WebMercatorQuad tile matrix set")
def tile_matrix_set() -> JSONResponse:
    matrices = []
    for z in range(tiles.MAX_ZOOM + 1):
        n = 1 << z
        matrices.append(
            {
                "id": str(z),
                "scaleDenominator": 559082264.028717 / n,
                "cellSize": 2 * tiles.HALF_WORLD_M / n / tiles.TILE_PX,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-tiles.HALF_WORLD_M, tiles.HALF_WORLD_M],
                "tileWidth": tiles.TILE_PX,
                "tileHeight": tiles.TILE_PX,
                "matrixWidth": n,
                "matrixHeight": n,
            }
        )
    return JSONResponse(
        {
            "id": TMS,
            "title": "Google Maps Compatible for the World",
            "uri": TMS_URI,
            "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
            "orderedAxes": ["E", "N"],
            "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
            "tileMatrices": matrices,
        }
    )


@router.get(
    f"/tiles/{TMS}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
    summary="A vector tile of every map layer",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
def tile(
    request: Request,
    ctx: Ctx,
    tileMatrix: Zoom,  # noqa: N803
    tileRow: Row,  # noqa: N803
    tileCol: Col,  # noqa: N803
) -> Response:
    z, x, y = tileMatrix, tileCol, tileRow
    tiles.check_tile(z, x, y)

    def make() -> bytes:
        got = tiles.prebuilt_tile(ctx.store, z, x, y)
        return got if got is not None else tiles.make_tile(ctx.store, z, x, y, _tile_layers(ctx))

    return _answer(request, _etag(ctx, z, x, y), make)


@router.get(
    f"/collections/{{layer}}/tiles/{TMS}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
    summary="A vector tile of one layer",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
def layer_tile(
    request: Request,
    ctx: Ctx,
    layer: Layer,
    tileMatrix: Zoom,  # noqa: N803
    tileRow: Row,  # noqa: N803
    tileCol: Col,  # noqa: N803
) -> Response:
    if layer not in tiles.TILE_LAYERS:
        raise HTTPException(
            404,
            f"layer '{layer}' has no tiles (tiled layers: {', '.join(tiles.TILE_LAYERS)})",
        )
    z, x, y = tileMatrix, tileCol, tileRow
    tiles.check_tile(z, x, y)
    return _answer(
        request, _etag(ctx, layer, z, x, y), lambda: tiles.make_tile(ctx.store, z, x, y, [layer])
    )
