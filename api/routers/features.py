"""OGC API – Features: landing page, conformance, collections (one per layer), items
with bbox / limit / offset / attribute filters / crs, and single features."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, HTTPException, Path, Query, Request

from api.deps import (
    CRS84,
    CRS_CHOICES,
    Authorised,
    BBox,
    Ctx,
    FastJSON,
    GeoJSON,
    Layer,
    OutCrsUri,
    dumps,
    plain,
)
from api.models import (
    Collection,
    Collections,
    Conformance,
    Feature,
    FeatureCollection,
    Landing,
)
from gridgis.crs import wgs84_to_gcj02
from gridgis.layers import PERSONAL_FIELDS, SCHEMA
from gridgis.store import NoFieldError
from gridgis.store.base import LAYER_KEYS

router = APIRouter(tags=["features"])

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    # OGC API – Tiles (api/routers/tiles.py): /tiles, /tiles/WebMercatorQuad and its tiles
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
]

#: Query parameters of /items that are not attribute filters.
RESERVED = {"bbox", "bbox-crs", "limit", "offset", "crs", "f"}

#: Columns served only with the write token (any layer: assign_rejects carries staff rows).
PERSONAL = set().union(*PERSONAL_FIELDS.values())

MAX_LIMIT = 10_000


def _key_of(layer: str, columns) -> str | None:
    key = LAYER_KEYS.get(layer)
    return key if key in columns else None


def _hide_personal(layer: str, frame: pd.DataFrame) -> pd.DataFrame:
    drop = [c for c in frame.columns if c in PERSONAL]
    if drop:
        frame = frame.drop(columns=drop)
    if {"field", "value"} <= set(frame.columns):  # rejects tables quote refused values
        personal = frame["field"].isin(list(PERSONAL))
        if personal.any():
            frame = frame.copy()
            frame["value"] = frame["value"].astype(object).where(~personal, None)
    return frame


def _out_geometry(frame: gpd.GeoDataFrame, crs_uri: str) -> np.ndarray:
    geoms = np.asarray(frame.geometry.values, dtype=object)
    kind, latlon = CRS_CHOICES[crs_uri]
    if kind == "gcj02":

        def shift(c: np.ndarray) -> np.ndarray:
            x, y = wgs84_to_gcj02(c[:, 0], c[:, 1])
            return np.column_stack([x, y])

        geoms = shapely.transform(geoms, shift)
    if latlon:
        geoms = shapely.transform(geoms, lambda c: c[:, ::-1])
    return geoms


def features_json(
    layer: str, frame: pd.DataFrame, crs_uri: str, first_row: int, authorised: bool
) -> list[str]:
    """GeoJSON Feature texts for a page of rows (ids: the layer key or the row number)."""
    key = _key_of(layer, frame.columns)
    is_geo = isinstance(frame, gpd.GeoDataFrame) and "geometry" in frame.columns
    geoms: list[str | None]
    if is_geo and len(frame):
        g = _out_geometry(frame, crs_uri)
        texts = shapely.to_geojson(g)
        geoms = [None if t is None else str(t) for t in texts]
        props = pd.DataFrame(frame.drop(columns="geometry"))
    else:
        geoms = [None] * len(frame)
        props = pd.DataFrame(frame).drop(columns="geometry", errors="ignore")
    if not authorised:
        props = _hide_personal(layer, props)
    if len(props.columns):
        obj = props.astype(object).where(props.notna(), None)
        rows = obj.itertuples(index=False, name=None)
        cols = list(obj.columns)
    else:
        rows = iter([()] * len(frame))
        cols = []
    ids = (
        props[key].tolist()
        if key and key in props.columns
        else list(range(first_row + 1, first_row + 1 + len(frame)))
    )
    out = []
    for fid, geom, row in zip(ids, geoms, rows, strict=True):
        p = dumps({c: plain(v) for c, v in zip(cols, row, strict=True)}).decode()
        out.append(
            f'{{"type":"Feature","id":{json.dumps(plain(fid), ensure_ascii=False)},'
            f'"geometry":{geom if geom is not None else "null"},"properties":{p}}}'
        )
    return out


def geojson_features(
    page: list[tuple[Any, str | None, str]], crs_uri: str, hide_values: bool
) -> list[str]:
    """Feature texts from a backend's GeoJSON page, reprojected when ``crs_uri`` is not
    CRS84; ``hide_values`` blanks refused values of personal fields (rejects tables)."""
    geoms = [g for _, g, _ in page]
    if crs_uri != CRS84 and any(g is not None for g in geoms):
        shapes = gpd.GeoDataFrame(
            geometry=shapely.from_geojson(np.array(geoms, dtype=object)), crs="EPSG:4326"
        )
        out = shapely.to_geojson(_out_geometry(shapes, crs_uri))
        geoms = [None if g is None else str(g) for g in out]
    feats = []
    for (fid, _, props), geom in zip(page, geoms, strict=True):
        if hide_values and '"value"' in props and '"field"' in props:
            p = json.loads(props)
            if p.get("field") in PERSONAL:
                p["value"] = None
            props = dumps(p).decode()
        feats.append(
            f'{{"type":"Feature","id":{json.dumps(plain(fid), ensure_ascii=False)},'
            f'"geometry":{geom or "null"},"properties":{props}}}'
        )
    return feats


def _collection(ctx, name: str, base: str) -> dict[str, Any]:
    info = ctx.store.info(name)
    spec = SCHEMA.get(name)
    title = f"{name} {spec.label}" if spec else name
    extent = None
    if info.bounds:
        extent = {"spatial": {"bbox": [list(info.bounds)], "crs": CRS84}}
    href = f"{base}/collections/{name}"
    return {
        "id": name,
        "title": title,
        "description": f"{info.rows} rows; {info.geometry_type or 'no geometry'}; "
        f"written {info.written_at}",
        "itemType": "feature",
        "key": LAYER_KEYS.get(name),
        "rows": info.rows,
        "crs": list(CRS_CHOICES),
        "storageCrs": CRS84,
        "extent": extent,
        "links": [
            {"href": href, "rel": "self", "type": "application/json", "title": title},
            {
                "href": f"{href}/items",
                "rel": "items",
                "type": "application/geo+json",
                "title": f"{name} features",
            },
        ],
    }


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/", response_model=Landing, summary="Landing page")
async def landing(request: Request) -> FastJSON:  # no I/O: no threadpool hop
    base = _base(request)
    return FastJSON(
        {
            "title": "gridgis",
            "description": "Grid-management GIS (城乡社区网格化服务管理): streets, communities, "
            "grids, buildings, facilities… as OGC API – Features collections; "
            "vector tiles as OGC API – Tiles (/tiles); /lookup, /grids, /coverage, /maps.",
            "links": [
                {"href": f"{base}/", "rel": "self", "type": "application/json"},
                {
                    "href": f"{base}/openapi.json",
                    "rel": "service-desc",
                    "type": "application/vnd.oai.openapi+json;version=3.0",
                },
                {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html"},
                {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json"},
                {"href": f"{base}/collections", "rel": "data", "type": "application/json"},
                {
                    "href": f"{base}/tiles",
                    "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                    "type": "application/json",
                    "title": "Vector tiles (Mapbox Vector Tiles) of the map layers",
                },
                {
                    "href": f"{base}/tileMatrixSets/WebMercatorQuad",
                    "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                    "type": "application/json",
                },
            ],
        }
    )


@router.get("/conformance", response_model=Conformance, summary="Conformance classes")
async def conformance() -> FastJSON:
    return FastJSON({"conformsTo": CONFORMANCE})


@router.get("/collections", response_model=Collections, summary="The layers")
def collections(request: Request, ctx: Ctx) -> FastJSON:
    base = _base(request)
    names = [n for n in ctx.layers() if not n.startswith("gridgis_")]
    return FastJSON(
        {
            "collections": [_collection(ctx, n, base) for n in names],
            "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
        }
    )


@router.get(
    "/collections/{layer}",
    response_model=Collection,
    summary="One layer",
    responses={404: {"description": "No such layer"}},
)
def collection(layer: Layer, request: Request, ctx: Ctx) -> FastJSON:
    return FastJSON(_collection(ctx, layer, _base(request)))


@router.get(
    "/collections/{layer}/items",
    response_model=FeatureCollection,
    response_class=GeoJSON,
    summary="Features of a layer",
    description="GeoJSON features, `limit` at a time from `offset`. Any other query "
    "parameter naming a field of the layer filters on equality, e.g. "
    "`community_code=320102001001` or `category=kindergarten`.",
    responses={
        200: {"model": FeatureCollection, "description": "GeoJSON FeatureCollection"},
        404: {"description": "No such layer"},
        422: {"description": "Bad parameter (named in the message)"},
    },
)
def items(
    layer: Layer,
    request: Request,
    ctx: Ctx,
    auth: Authorised,
    box: BBox,
    out_crs: OutCrsUri,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> GeoJSON:
    where: dict[str, Any] = {}
    for k, v in request.query_params.multi_items():
        if k in RESERVED:
            continue
        if k in PERSONAL and not auth:
            raise HTTPException(
                422, f"{k}: a personal field; filtering on it needs the write token"
            )
        if k in where:
            raise HTTPException(422, f"{k}: give an attribute filter once")
        where[k] = v
    if len(where) > 20:
        raise HTTPException(422, "too many attribute filters (at most 20)")
    fast = ctx.store.read_page_geojson(
        layer,
        bbox=box,
        where=where or None,
        limit=limit,
        offset=offset,
        exclude=() if auth else tuple(PERSONAL),
    )
    if fast is not None:  # GeoJSON made by the backend
        page, matched = fast
        feats = geojson_features(page, out_crs, hide_values=not auth)
    else:
        frame, matched = ctx.store.read_page(
            layer, bbox=box, where=where or None, limit=limit, offset=offset
        )
        feats = features_json(layer, frame, out_crs, offset, auth)
    url = request.url
    links = [
        {"href": str(url), "rel": "self", "type": "application/geo+json"},
        {
            "href": f"{_base(request)}/collections/{layer}",
            "rel": "collection",
            "type": "application/json",
        },
    ]
    if offset + len(feats) < matched:
        links.append(
            {
                "href": str(url.include_query_params(offset=offset + limit, limit=limit)),
                "rel": "next",
                "type": "application/geo+json",
            }
        )
    if offset > 0:
        links.append(
            {
                "href": str(url.include_query_params(offset=max(0, offset - limit), limit=limit)),
                "rel": "prev",
                "type": "application/geo+json",
            }
        )
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    head = dumps(
        {
            "type": "FeatureCollection",
            "numberMatched": matched,
            "numberReturned": len(feats),
            "timeStamp": stamp,
            "links": links,
        }
    ).decode()
    body = head[:-1] + ',"features":[' + ",".join(feats) + "]}"
    return _raw_geojson(body, out_crs)


def _raw_geojson(body: str, crs_uri: str) -> GeoJSON:
    resp = GeoJSON(content={})
    resp.body = body.encode("utf-8")
    resp.headers["content-length"] = str(len(resp.body))
    resp.headers["Content-Crs"] = f"<{crs_uri}>"
    return resp


@router.get(
    "/collections/{layer}/items/{feature_id}",
    summary="One feature",
    response_model=Feature,
    response_class=GeoJSON,
    responses={
        200: {"model": Feature, "description": "GeoJSON Feature"},
        404: {"description": "No such layer or feature"},
    },
)
def item(
    layer: Layer,
    ctx: Ctx,
    auth: Authorised,
    request: Request,
    feature_id: Annotated[str, Path(max_length=200)],
    out_crs: OutCrsUri,
) -> GeoJSON:
    key = LAYER_KEYS.get(layer)
    exclude = () if auth else tuple(PERSONAL)

    def page(where: dict[str, Any] | None, offset: int) -> list[str]:
        got = ctx.store.read_page_geojson(
            layer, where=where, limit=1, offset=offset, exclude=exclude
        )
        if got is not None:
            return geojson_features(got[0], out_crs, hide_values=not auth)
        frame, _ = ctx.store.read_page(layer, where=where, limit=1, offset=offset)
        return features_json(layer, frame, out_crs, offset, auth)

    feats = None
    if key is not None:
        try:
            feats = page({key: feature_id}, 0)
        except NoFieldError:  # the layer lacks its key field: ids are row numbers
            key = None
    if key is None:
        if not feature_id.isdigit() or not 1 <= int(feature_id) <= 10**12:
            raise HTTPException(
                404, f"no feature '{feature_id}' in '{layer}' (ids are row numbers from 1)"
            )
        feats = page(None, int(feature_id) - 1)
    if not feats:
        raise HTTPException(404, f"no feature '{feature_id}' in '{layer}'")
    feat = feats[0]
    base = f"{_base(request)}/collections/{layer}"
    links = dumps(
        [
            {"href": str(request.url), "rel": "self", "type": "application/geo+json"},
            {"href": base, "rel": "collection", "type": "application/json"},
        ]
    ).decode()
    return _raw_geojson(feat[:-1] + f',"links":{links}}}', out_crs)
