"""Mapbox Vector Tiles of a workspace, per zoom/x/y in the WebMercatorQuad tile matrix set.

The tiles carry the layers the map pages draw (:data:`TILE_LAYERS`: grids, communities,
streets, facilities, and buildings from :data:`BUILDINGS_MINZOOM`), with the attributes
the pages show. Geometry is read from any :class:`gridgis.store.Store` by bounding box
(its spatial index), projected to Web Mercator, clipped to the tile plus a buffer of
:data:`BUFFER` tile units, simplified by about one screen pixel at that zoom and encoded
with the ``mapbox-vector-tile`` package. On PostGIS, :func:`postgis_tile_sql` builds the
same tile in the database with ``ST_AsMVT`` / ``ST_AsMVTGeom``.

:func:`build_mbtiles` pre-builds every non-empty tile of a zoom range into an MBTiles
file (SQLite, MBTiles 1.3 schema) for serving a GeoPackage workspace without encoding
on request.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import numpy as np
import pandas as pd
import shapely
from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid

from gridgis.errors import InputError, NotFoundError

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6378137.0
"""Radius of the Web Mercator sphere (EPSG:3857), metres."""
HALF_WORLD_M = math.pi * EARTH_RADIUS_M
"""Half the width of the Web Mercator world, metres (20,037,508.34 m)."""
MAX_LAT = 85.0511287798066
"""Latitude where the square Web Mercator world ends, degrees."""

EXTENT = 4096
"""Tile coordinate units per tile side (the MVT 2.1 default)."""
BUFFER = 64
"""Tile units drawn beyond each tile edge (1/64 of a tile, the usual value of tile
servers), so outlines and their stroke width join without seams."""
TILE_PX = 256
"""Screen pixels per tile side (Leaflet's tile size): simplification removes detail
smaller than one such pixel at the tile's zoom."""
MAX_ZOOM = 22
"""Deepest zoom served (about 4 cm per pixel); deeper tiles are out of the tile matrix
set (404)."""
GRIDS_MINZOOM = 12
"""Grids only from this zoom (about 38 m per pixel: a grid of 300–500 households, a few
hundred metres across, is 8 pixels or more). Measured on the 1,000,000-household demo: at
zoom 11 one tile holds the whole city's 2,823 grids (225 KB, 1.6 s to encode); a province
would put tens of thousands of grids of a few pixels into each tile and page. Below it the
pages show streets and communities."""
BUILDINGS_MINZOOM = 15
"""Buildings only from this zoom (about 5 m per pixel): below it a district holds tens of
thousands of buildings smaller than a few pixels, which the pages do not draw either
(buildings appear on community pages only)."""

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
"""Media type of a Mapbox Vector Tile."""
CACHE_MAX_AGE_S = 60
"""How long a browser may reuse a served tile without asking again, seconds: short,
because a tile changes whenever its layers are rewritten (delineation, edits), and a
minute spares the server the repeated requests of panning back and forth."""


@dataclass(frozen=True)
class TileLayer:
    """A workspace layer as a tile layer: the fields carried and the zooms drawn."""

    fields: tuple[str, ...]
    minzoom: int = 0


#: Layers in the tiles, their attributes (those the pages show) and first zoom. Streets
#: and communities from zoom 0 (few, large); grids from :data:`GRIDS_MINZOOM`; points of
#: facilities from 13 (about 19 m per pixel, a district on the screen).
TILE_LAYERS: dict[str, TileLayer] = {
    "streets": TileLayer(("street_code", "name")),
    "communities": TileLayer(("community_code", "name", "street_code")),
    "grids": TileLayer(
        (
            "grid_code",
            "community_code",
            "name",
            "kind",
            "households",
            "building_count",
            "area_m2",
            "flags",
        ),
        minzoom=GRIDS_MINZOOM,
    ),
    "facilities": TileLayer(("facility_id", "name", "category"), minzoom=13),
    "buildings": TileLayer(
        ("building_id", "name", "households", "floors", "grid_code"),
        minzoom=BUILDINGS_MINZOOM,
    ),
}


class TileRangeError(NotFoundError):
    """A tile outside the WebMercatorQuad tile matrix set (zoom above :data:`MAX_ZOOM`, or a
    column/row beyond ``2**z - 1``): HTTP 404."""


def check_tile(z: int, x: int, y: int) -> None:
    """Raise :class:`InputError` for a negative zoom, column or row, and
    :class:`TileRangeError` for a tile beyond the tile matrix set."""
    if z < 0 or x < 0 or y < 0:
        raise InputError(f"tile {z}/{x}/{y}: zoom, column and row must be 0 or more")
    if z > MAX_ZOOM:
        raise TileRangeError(f"tile {z}/{x}/{y}: zoom {z} is beyond the deepest, {MAX_ZOOM}")
    n = 1 << z
    if x >= n or y >= n:
        raise TileRangeError(f"tile {z}/{x}/{y}: column and row run 0 … {n - 1} at zoom {z}")


def tile_bounds_m(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of a tile in Web Mercator metres (row 0 at the north)."""
    size = 2 * HALF_WORLD_M / (1 << z)
    minx = -HALF_WORLD_M + x * size
    maxy = HALF_WORLD_M - y * size
    return minx, maxy - size, minx + size, maxy


def to_lonlat(mx: np.ndarray, my: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator metres to longitude/latitude degrees."""
    lon = np.degrees(np.asarray(mx, dtype=float) / EARTH_RADIUS_M)
    lat = np.degrees(
        2 * np.arctan(np.exp(np.asarray(my, dtype=float) / EARTH_RADIUS_M)) - np.pi / 2
    )
    return lon, lat


def to_mercator(coords: np.ndarray) -> np.ndarray:
    """(n, 2) longitude/latitude degrees to Web Mercator metres (latitude clamped to
    :data:`MAX_LAT`)."""
    lon = coords[:, 0]
    lat = np.clip(coords[:, 1], -MAX_LAT, MAX_LAT)
    x = np.radians(lon) * EARTH_RADIUS_M
    y = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * EARTH_RADIUS_M
    return np.column_stack([x, y])


def tile_bbox_lonlat(z: int, x: int, y: int, buffer: int = BUFFER) -> tuple[float, ...]:
    """The lon/lat box read for a tile: its bounds widened by ``buffer`` tile units."""
    minx, miny, maxx, maxy = tile_bounds_m(z, x, y)
    pad = (maxx - minx) * buffer / EXTENT
    lon, lat = to_lonlat(np.array([minx - pad, maxx + pad]), np.array([miny - pad, maxy + pad]))
    return float(lon[0]), float(lat[0]), float(lon[1]), float(lat[1])


def pixel_m(z: int) -> float:
    """Size of one screen pixel (:data:`TILE_PX` per tile) at zoom ``z``, Mercator metres."""
    return 2 * HALF_WORLD_M / (1 << z) / TILE_PX


def layers_at(z: int, names: list[str] | None = None) -> list[str]:
    """Tile layers drawn at zoom ``z`` (of ``names``, default all of :data:`TILE_LAYERS`)."""
    wanted = list(TILE_LAYERS) if names is None else names
    return [n for n in wanted if n in TILE_LAYERS and z >= TILE_LAYERS[n].minzoom]


def _value(v: Any) -> Any:
    """A field value as MVT can hold it (text, int, float, bool), or None to omit."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, (list, tuple, set)):
        return ", ".join(map(str, v)) if v else None
    text = str(v)
    return text if text else None


def layer_features(
    geoms: np.ndarray, props: list[dict[str, Any]], z: int, x: int, y: int
) -> list[dict[str, Any]]:
    """Features as they go into the tile: ``geoms`` (lon/lat, read for the tile) in
    Mercator metres clipped to the tile plus :data:`BUFFER`, simplified by one pixel,
    empty ones dropped, with their ``props`` (missing and empty values left out)."""
    if len(geoms) == 0:
        return []
    minx, miny, maxx, maxy = tile_bounds_m(z, x, y)
    pad = (maxx - minx) * BUFFER / EXTENT
    geoms = shapely.transform(np.asarray(geoms, dtype=object), to_mercator)
    geoms = shapely.clip_by_rect(geoms, minx - pad, miny - pad, maxx + pad, maxy + pad)
    geoms = shapely.simplify(geoms, pixel_m(z), preserve_topology=True)
    keep = np.flatnonzero(~(shapely.is_empty(geoms) | shapely.is_missing(geoms)))
    out = []
    for i in keep:
        values = {k: _value(v) for k, v in props[i].items()}
        out.append(
            {"geometry": geoms[i], "properties": {k: v for k, v in values.items() if v is not None}}
        )
    return out


def encode_tile(layers: dict[str, list[dict[str, Any]]], z: int, x: int, y: int) -> bytes:
    """Encode prepared features (Mercator metres, see :func:`layer_features`) into one
    MVT; ``b""`` when no layer has a feature."""
    data = [{"name": n, "features": f} for n, f in layers.items() if f]
    if not data:
        return b""
    minx, miny, maxx, maxy = tile_bounds_m(z, x, y)
    scale = EXTENT / (maxx - minx)

    def quantize(c: np.ndarray) -> np.ndarray:  # Mercator metres to whole tile units, y up
        return np.round(np.column_stack([(c[:, 0] - minx) * scale, (c[:, 1] - miny) * scale]))

    for layer in data:
        geoms = shapely.transform(np.array([f["geometry"] for f in layer["features"]]), quantize)
        for f, g in zip(layer["features"], geoms, strict=True):
            f["geometry"] = g
    return mapbox_vector_tile.encode(
        data,
        default_options={
            "extents": EXTENT,
            "on_invalid_geometry": on_invalid_geometry_make_valid,
        },
    )


def _store_layers(store: Any) -> list[str]:
    return [n for n in store.layers() if n in TILE_LAYERS]


def make_tile(store: Any, z: int, x: int, y: int, layers: list[str] | None = None) -> bytes:
    """One Mapbox Vector Tile of a workspace.

    Parameters
    ----------
    store
        The workspace (:class:`gridgis.store.Store`); each layer is read by the tile's
        lon/lat box (widened by :data:`BUFFER`) through the store's spatial index.
    z, x, y
        Zoom, column and row in WebMercatorQuad (row 0 at the north).
    layers
        Tile layers to include, all present in the workspace (default: every layer of
        :data:`TILE_LAYERS` the workspace has); each only from its ``minzoom``.

    Returns
    -------
    bytes
        The tile (protobuf), ``b""`` when no feature meets it.

    Raises
    ------
    InputError
        A negative zoom, column or row.
    TileRangeError
        A tile beyond the tile matrix set.
    """
    check_tile(z, x, y)
    names = layers_at(z, _store_layers(store) if layers is None else layers)
    if not names:
        return b""
    if _is_postgis(store):
        return _postgis_tile(store, names, z, x, y)
    bbox = tile_bbox_lonlat(z, x, y)
    prepared = {n: layer_features(*read_box(store, n, bbox), z, x, y) for n in names}
    return encode_tile(prepared, z, x, y)


def read_box(
    store: Any, name: str, bbox: tuple[float, ...]
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Geometries (lon/lat) and tile fields of the rows of layer ``name`` meeting ``bbox``.

    Uses the store's serving path (:meth:`gridgis.store.Store.read_page_geojson`: SQLite
    and its R-tree directly on a GeoPackage, no GDAL or pandas) when the store has one,
    else :meth:`gridgis.store.Store.read`."""
    fields = TILE_LAYERS[name].fields
    page = store.read_page_geojson(name, bbox=bbox, limit=2**62, offset=0)
    if page is None:
        frame = store.read(name, bbox=bbox)
        keep = [f for f in fields if f in frame.columns]
        obj = pd.DataFrame(frame[keep]).astype(object)
        props = obj.where(obj.notna(), None).to_dict("records")
        return np.asarray(frame.geometry.values, dtype=object), props
    rows, _ = page
    geoms = shapely.from_geojson([g for _, g, _ in rows])
    props = []
    for _, _, text in rows:
        p = json.loads(text)
        props.append({f: p[f] for f in fields if f in p})
    return geoms, props


# -- PostGIS: the tile made in the database ---------------------------------------------


def _is_postgis(store: Any) -> bool:
    return hasattr(store, "engine") and hasattr(store, "schema")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def postgis_tile_sql(
    schema: str,
    columns: dict[str, list[str]],
    z: int,
    x: int,
    y: int,
    texts: dict[str, set[str]] | None = None,
) -> tuple[str, list[Any]]:
    """SQL (and its parameters) building one tile with ``ST_AsMVT`` per layer.

    ``columns``: per layer, the fields of :data:`TILE_LAYERS` its table has; ``texts``:
    per layer, those of text type (an empty text is left out of the tile). Rows are
    found through the spatial index by the tile's lon/lat box (``geometry && box``), then
    projected (``ST_Transform`` to 3857), simplified by one pixel and clipped with
    ``ST_AsMVTGeom`` (:data:`EXTENT`, :data:`BUFFER`); the layers' tiles are concatenated
    (one MVT holds several layers)."""
    minx, miny, maxx, maxy = tile_bbox_lonlat(z, x, y)
    texts = texts or {}
    parts: list[str] = []
    args: list[Any] = []
    for layer, fields in columns.items():
        # empty texts left out, as the Python encoder leaves them out
        cols = "".join(
            f", NULLIF({_quote(f)}::text, '') AS {_quote(f)}"
            if f in texts.get(layer, ())
            else f", {_quote(f)}"
            for f in fields
        )
        parts.append(
            "(SELECT coalesce(ST_AsMVT(q, %s, "
            f"{EXTENT}, 'geom'), ''::bytea) FROM ("
            "SELECT ST_AsMVTGeom(ST_SimplifyPreserveTopology("
            "ST_Transform(geometry, 3857), %s), ST_TileEnvelope(%s, %s, %s), "
            f"{EXTENT}, {BUFFER}, true) AS geom{cols} "
            f"FROM {_quote(schema)}.{_quote(layer)} "
            "WHERE geometry && ST_MakeEnvelope(%s, %s, %s, %s, 4326)) q "
            "WHERE q.geom IS NOT NULL)"
        )
        args += [layer, pixel_m(z), z, x, y, minx, miny, maxx, maxy]
    return "SELECT " + " || ".join(parts), args


def _postgis_tile(store: Any, names: list[str], z: int, x: int, y: int) -> bytes:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = :s"
            ),
            {"s": store.schema},
        ).all()
        have: dict[str, set[str]] = {}
        texts: dict[str, set[str]] = {}
        for table, column, dtype in rows:
            have.setdefault(table, set()).add(column)
            if dtype in ("text", "character varying"):
                texts.setdefault(table, set()).add(column)
        columns = {
            n: [f for f in TILE_LAYERS[n].fields if f in have.get(n, ())]
            for n in names
            if "geometry" in have.get(n, ())
        }
        if not columns:
            return b""
        sql, args = postgis_tile_sql(store.schema, columns, z, x, y, texts)
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute(sql, args)
            tile = cur.fetchone()[0]
    return bytes(tile or b"")


# -- MBTiles ------------------------------------------------------------------------------


def tiles_covering(bounds: tuple[float, float, float, float], z: int) -> Iterator[tuple[int, int]]:
    """(x, y) of every tile at zoom ``z`` meeting lon/lat ``bounds``."""
    pts = to_mercator(np.array([[bounds[0], bounds[1]], [bounds[2], bounds[3]]], dtype=float))
    size = 2 * HALF_WORLD_M / (1 << z)
    n = (1 << z) - 1
    x0 = min(max(int((pts[0, 0] + HALF_WORLD_M) // size), 0), n)
    x1 = min(max(int((pts[1, 0] + HALF_WORLD_M) // size), 0), n)
    y0 = min(max(int((HALF_WORLD_M - pts[1, 1]) // size), 0), n)
    y1 = min(max(int((HALF_WORLD_M - pts[0, 1]) // size), 0), n)
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            yield x, y


def workspace_bounds(store: Any) -> tuple[float, float, float, float] | None:
    """Lon/lat bounds of the tile layers of a workspace (from the layers' metadata)."""
    boxes = []
    for name in _store_layers(store):
        b = store.info(name).bounds
        if b is not None:
            boxes.append(b)
    if not boxes:
        return None
    a = np.array(boxes, dtype=float)
    return float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 2].max()), float(a[:, 3].max())


@dataclass
class _LayerData:
    """One tile layer of a workspace read whole: Web Mercator geometries, their boxes,
    a search tree and the tile fields of each row (missing and empty values left out)."""

    geoms: np.ndarray
    tree: shapely.STRtree
    props: list[dict[str, Any]]


def _read_layer(store: Any, name: str) -> _LayerData | None:
    """The whole layer ``name`` in Web Mercator with its tile fields, or None when empty."""
    frame = store.read(name)
    if len(frame) == 0 or getattr(frame, "geometry", None) is None:
        return None
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs("EPSG:4326")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    frame, geoms = frame[keep], geoms[keep]
    if len(geoms) == 0:
        return None
    fields = [f for f in TILE_LAYERS[name].fields if f in frame.columns]
    obj = pd.DataFrame(frame[fields]).astype(object)
    records = obj.where(obj.notna(), None).to_dict("records")
    props = [
        {k: v for k, v in ((k, _value(v)) for k, v in r.items()) if v is not None} for r in records
    ]
    merc = shapely.transform(geoms, to_mercator)
    return _LayerData(merc, shapely.STRtree(merc), props)


def _tile_boxes(xs: np.ndarray, ys: np.ndarray, z: int) -> np.ndarray:
    """Boxes (Mercator metres) of tiles ``xs``, ``ys`` at zoom ``z`` widened by
    :data:`BUFFER` tile units, as shapely polygons."""
    size = 2 * HALF_WORLD_M / (1 << z)
    pad = size * BUFFER / EXTENT
    minx = -HALF_WORLD_M + xs * size
    maxy = HALF_WORLD_M - ys * size
    return shapely.box(minx - pad, maxy - size - pad, minx + size + pad, maxy + pad)


def _zoom_tiles(
    data: dict[str, _LayerData], z: int, bounds: tuple[float, ...]
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Tiles of zoom ``z`` over ``bounds`` and, per layer drawn at ``z``, the pairs
    (tile position, feature position) that meet, sorted by tile then feature."""
    xy = np.array(list(tiles_covering(bounds, z)), dtype=np.int64).reshape(-1, 2)
    boxes = _tile_boxes(xy[:, 0], xy[:, 1], z)
    pairs = {}
    for name in layers_at(z, list(data)):
        t, f = data[name].tree.query(boxes, predicate="intersects")
        order = np.lexsort((f, t))
        pairs[name] = (t[order], f[order])
    return xy, pairs


def _build_zoom(
    data: dict[str, _LayerData], z: int, bounds: tuple[float, ...]
) -> Iterator[tuple[int, int, bytes]]:
    """(x, y, tile) of every non-empty tile of zoom ``z``: each layer's features met by the
    tile (found for the whole zoom at once through the layer's tree), clipped, simplified
    and encoded as :func:`make_tile` does."""
    xy, pairs = _zoom_tiles(data, z, bounds)
    cuts = {n: np.searchsorted(t, np.arange(len(xy) + 1)) for n, (t, _) in pairs.items()}
    for i, (x, y) in enumerate(xy):
        x, y = int(x), int(y)
        prepared = {}
        for name, (_, feats) in pairs.items():
            sel = feats[cuts[name][i] : cuts[name][i + 1]]
            if len(sel):
                layer = data[name]
                prepared[name] = _clip_features(
                    layer.geoms[sel], [layer.props[j] for j in sel], z, x, y
                )
        tile = encode_tile(prepared, z, x, y) if prepared else b""
        if tile:
            yield x, y, tile


def _clip_features(
    merc: np.ndarray, props: list[dict[str, Any]], z: int, x: int, y: int
) -> list[dict[str, Any]]:
    """:func:`layer_features` for geometries already in Web Mercator and cleaned props."""
    minx, miny, maxx, maxy = tile_bounds_m(z, x, y)
    pad = (maxx - minx) * BUFFER / EXTENT
    geoms = shapely.clip_by_rect(merc, minx - pad, miny - pad, maxx + pad, maxy + pad)
    geoms = shapely.simplify(geoms, pixel_m(z), preserve_topology=True)
    keep = np.flatnonzero(~(shapely.is_empty(geoms) | shapely.is_missing(geoms)))
    return [{"geometry": geoms[i], "properties": props[i]} for i in keep]


def build_mbtiles(
    store: Any,
    path: str | os.PathLike,
    minzoom: int = 10,
    maxzoom: int = 16,
    progress: Callable[[int, int, int], None] | None = None,
) -> int:
    """Write every non-empty tile of zooms ``minzoom`` … ``maxzoom`` into an MBTiles file.

    Each tile layer is read once, whole, and projected once; per zoom, the features each
    tile meets are found at once through the layer's search tree, then every tile is
    clipped, simplified by one pixel of its zoom and encoded exactly as
    :func:`make_tile` encodes it on request (the same bytes). Time grows with the
    features drawn per zoom: grids only from :data:`GRIDS_MINZOOM`, buildings only from
    :data:`BUILDINGS_MINZOOM`.

    The file follows MBTiles 1.3 (``metadata`` and ``tiles`` tables, rows in TMS order,
    tiles gzip-compressed, ``json`` metadata listing the vector layers). It is written to
    a temporary file beside ``path`` and renamed, so ``path`` is either the old file or
    the complete new one.

    Parameters
    ----------
    progress
        Optional ``callback(zoom, tiles_done, tiles_over_the_city)`` after each zoom.

    Returns
    -------
    int
        Number of tiles written.
    """
    if not 0 <= minzoom <= maxzoom <= MAX_ZOOM:
        raise InputError(f"zooms {minzoom} … {maxzoom}: need 0 ≤ minzoom ≤ maxzoom ≤ {MAX_ZOOM}")
    target = Path(path)
    bounds = workspace_bounds(store)
    data = {}
    if bounds is not None:
        for name in _store_layers(store):
            layer = _read_layer(store, name)
            if layer is not None:
                data[name] = layer
    fd, tmp = tempfile.mkstemp(suffix=".mbtiles", dir=target.parent or ".")
    os.close(fd)
    written = 0
    try:
        db = sqlite3.connect(tmp)
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, "
            "tile_row INTEGER, tile_data BLOB)"
        )
        db.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
        for z in range(minzoom, maxzoom + 1):
            rows = [
                (z, x, (1 << z) - 1 - y, gzip.compress(tile, compresslevel=6))
                for x, y, tile in (_build_zoom(data, z, bounds) if data else ())
            ]
            db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", rows)
            written += len(rows)
            if progress:
                over = len(list(tiles_covering(bounds, z))) if bounds else 0
                progress(z, len(rows), over)
        db.executemany(
            "INSERT INTO metadata VALUES (?, ?)", _metadata(store, bounds, minzoom, maxzoom)
        )
        db.commit()
        db.close()
        _readable(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return written


def _readable(path: str) -> None:
    """Give a finished temporary file (made private by :func:`tempfile.mkstemp`) the
    permissions of any new file (``0o666`` less the umask), so a server running as
    another user can read it."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_pmtiles(mbtiles: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Copy an MBTiles file (:func:`build_mbtiles`) into a PMTiles v3 archive (one file
    with a directory of its tiles, readable by HTTP range requests from any static file
    server or object store, e.g. by the ``pmtiles`` JavaScript library) with the
    ``pmtiles`` package of the PMTiles authors. Written to a temporary file beside
    ``path`` and renamed."""
    from pmtiles.convert import mbtiles_to_pmtiles

    target = Path(path)
    fd, tmp = tempfile.mkstemp(suffix=".pmtiles", dir=target.parent or ".")
    os.close(fd)
    try:
        mbtiles_to_pmtiles(os.fspath(mbtiles), tmp, None)
        _readable(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _metadata(store: Any, bounds, minzoom: int, maxzoom: int) -> list[tuple[str, str]]:
    vector_layers = [
        {
            "id": n,
            "fields": {f: "" for f in TILE_LAYERS[n].fields},
            "minzoom": max(minzoom, TILE_LAYERS[n].minzoom),
            "maxzoom": maxzoom,
        }
        for n in _store_layers(store)
    ]
    b = bounds or (-180.0, -MAX_LAT, 180.0, MAX_LAT)
    return [
        ("name", "gridgis"),
        ("format", "pbf"),
        ("type", "overlay"),
        ("version", "1"),
        ("minzoom", str(minzoom)),
        ("maxzoom", str(maxzoom)),
        ("bounds", ",".join(f"{v:.6f}" for v in b)),
        ("center", f"{(b[0] + b[2]) / 2:.6f},{(b[1] + b[3]) / 2:.6f},{minzoom}"),
        ("json", json.dumps({"vector_layers": vector_layers}, ensure_ascii=False)),
        ("gridgis_change_token", _token_text(store)),
    ]


_TOKENS: dict[tuple[int, str], str] = {}


def _token_text(store: Any) -> str:
    """What the tiles were built from: rows and write time of each tile layer (from the
    layers' metadata), so rewriting other things of the workspace (e.g. the QGIS layer
    styles ``gridgis map`` writes into a GeoPackage) leaves pre-built tiles fresh.
    Remembered per store and change token (a request asks for it per tile)."""
    key = (id(store), json.dumps(store.change_token(), default=str))
    got = _TOKENS.get(key)
    if got is None:
        parts = []
        for name in _store_layers(store):
            info = store.info(name)
            parts.append([name, info.rows, str(info.written_at)])
        got = json.dumps(parts, default=str)
        if len(_TOKENS) > 64:
            _TOKENS.clear()
        _TOKENS[key] = got
    return got


def read_mbtiles(path: str | os.PathLike, z: int, x: int, y: int) -> bytes | None:
    """A tile from an MBTiles file (ungzipped), ``None`` when the file has no such row."""
    with sqlite3.connect(f"file:{os.fspath(path)}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
            (z, x, (1 << z) - 1 - y),
        ).fetchone()
    if row is None:
        return None
    data = bytes(row[0])
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def mbtiles_path(store: Any) -> Path | None:
    """Where the pre-built tiles of a GeoPackage workspace live: ``city.mbtiles`` beside
    ``city.gpkg`` (``None`` for other stores)."""
    path = getattr(store, "path", None)
    if not isinstance(path, Path) or path.suffix.lower() != ".gpkg":
        return None
    return path.with_suffix(".mbtiles")


def prebuilt_tile(store: Any, z: int, x: int, y: int) -> bytes | None:
    """The tile of every layer from the workspace's MBTiles (:func:`mbtiles_path`, made
    by :func:`build_mbtiles`) when that file exists, covers zoom ``z`` and was built from
    the workspace as it is now (its recorded change token equals the store's); ``b""``
    for a tile the file lacks within its zooms (no feature); else ``None`` (encode it)."""
    path = mbtiles_path(store)
    if path is None or not path.exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            meta = dict(db.execute("SELECT name, value FROM metadata"))
    except sqlite3.Error:
        log.warning("%s: not a readable MBTiles file; tiles are encoded per request", path)
        return None
    if meta.get("gridgis_change_token") != _token_text(store):
        return None
    if not int(meta.get("minzoom", 0)) <= z <= int(meta.get("maxzoom", -1)):
        return None
    return read_mbtiles(path, z, x, y) or b""
