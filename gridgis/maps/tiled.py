"""The tile-based map page: grids, communities, streets, facilities and buildings drawn
in the browser from the vector tiles ``gridgis serve`` answers (OGC API – Tiles,
:mod:`gridgis.tiles`), with Leaflet.VectorGrid shipped in ``static/`` like Leaflet.

The page holds no geometry, so its size and the time to write it do not grow with the
city: :func:`gridgis.maps.site.write_maps` writes it (``tiles.html``) when a workspace
has more grids than ``maps.tiles_above_grids``. It needs the server (``gridgis serve``
with the maps folder): opened from disk it shows the outline of the page and a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import jinja2
import pandas as pd

from gridgis.maps.common import NO_HOUSEHOLDS, asset_prefix, class_breaks, colour_for

TILES_PAGE = "tiles.html"
"""File name of the tile-based page in the maps folder."""

TILE_URL = "../tiles/WebMercatorQuad/{z}/{y}/{x}"
"""Tile URL template relative to a page under ``/maps/`` (OGC order: zoom/row/column)."""

UNIT_GRID_COLOUR = "#bdbdbd"
"""Fill of a unit grid (its own colour: tiles cannot carry the SVG hatch of the pages)."""

_PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<link rel="stylesheet" href="{{ prefix }}leaflet/leaflet.css">
<script src="{{ prefix }}leaflet/leaflet.js"></script>
<script src="{{ prefix }}leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"></script>
<style>
html,body,#map{width:100%;height:100%;margin:0;padding:0;}
.leaflet-container{background:#f2efe9;}
.gg-box{background:rgba(255,255,255,.92);padding:6px 9px;border-radius:4px;
 box-shadow:0 1px 4px rgba(0,0,0,.35);font:12px/1.4 "Noto Sans CJK SC","Microsoft YaHei",
 sans-serif;max-width:340px;}
.gg-box i{display:inline-block;width:14px;height:12px;margin-right:5px;
 vertical-align:middle;border:1px solid #888;}
.gg-box td{padding:0 4px;}
</style></head>
<body><div id="map"></div>
<script>
(function(){
var cfg = {{ cfg|tojson }};
var map = L.map('map', {maxZoom: cfg.maxZoom, zoomSnap: 0.25});
{% if osm %}L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png', {maxZoom: 19,
 attribution: '&copy; OpenStreetMap'}).addTo(map);{% endif %}
map.fitBounds([[cfg.bounds[1], cfg.bounds[0]], [cfg.bounds[3], cfg.bounds[2]]]);
function fill(p){
  if (p.kind === 'unit') return cfg.unit;
  var h = +p.households || 0;
  if (h <= 0) return cfg.none;
  for (var i = 0; i < cfg.breaks.length; i++) if (h <= cfg.breaks[i]) return cfg.colours[i];
  return cfg.colours[cfg.colours.length - 1];
}
var base = {
  streets: {weight: 4, color: '#08306b', fill: false},
  communities: {weight: 2.5, color: '#54278f', fill: false},
  grids: function(p){ return p.flags ?
    {weight: 3, color: '#d00000', dashArray: '8 5', fill: true, fillColor: fill(p),
     fillOpacity: cfg.opacity} :
    {weight: 1, color: '#222222', fill: true, fillColor: fill(p), fillOpacity: cfg.opacity}; },
  buildings: function(p){ return {weight: 0.6, color: '#444444', fill: true,
    fillColor: (+p.households || 0) > 0 ? '#9e9ac8' : '#d9d9d9', fillOpacity: 0.85}; },
  facilities: {radius: 4, weight: 1, color: '#1f77b4', fill: true, fillOpacity: 0.8}
};
var hidden = {}, styles = {};
Object.keys(base).forEach(function(n){ styles[n] = function(p, z){
  if (hidden[n]) return [];
  return typeof base[n] === 'function' ? base[n](p, z) : base[n]; }; });
var layer = L.vectorGrid.protobuf(cfg.url, {
  rendererFactory: L.svg.tile, vectorTileLayerStyles: styles, interactive: true,
  maxNativeZoom: cfg.maxNativeZoom, maxZoom: cfg.maxZoom
});
var names = cfg.names;
function esc(v){ return String(v).replace(/[&<>"']/g, function(c){
  return '&#' + c.charCodeAt(0) + ';'; }); }
layer.on('click', function(e){
  var p = e.layer.properties || {}, rows = [];
  Object.keys(names).forEach(function(k){ if (p[k] !== undefined && p[k] !== '')
    rows.push('<tr><th>' + names[k] + '</th><td>' + esc(p[k]) + '</td></tr>'); });
  if (p.kind) rows.push('<tr><th>类型</th><td>' + esc(cfg.kinds[p.kind] || p.kind) + '</td></tr>');
  if (p.grid_code && p.area_m2 !== undefined) rows.push('<tr><th>公示牌</th><td><a href="boards/'
    + esc(p.grid_code) + '.html">打开</a></td></tr>');
  L.popup().setLatLng(e.latlng).setContent('<table>' + rows.join('') + '</table>').openOn(map);
});
layer.on('tileerror', function(){ document.getElementById('gg-note').style.display = 'block'; });
layer.on('load', function(){ window.ggTilesLoaded = true; });
layer.addTo(map);
window.ggTiles = layer;
var title = L.control({position: 'topleft'});
title.onAdd = function(){ var d = L.DomUtil.create('div', 'gg-box');
  d.innerHTML = '<b>' + esc(cfg.title) + '</b><br>网格 ' + cfg.gridCount +
  ' · <a href="index.html">区级网格图</a><div id="gg-note" style="display:none;color:#b30000">'
  + '图块未加载: 请经 gridgis serve 打开本页 (/maps/' + cfg.page + ')</div>'; return d; };
title.addTo(map);
var toggles = L.control({position: 'topright'});
toggles.onAdd = function(){ var d = L.DomUtil.create('div', 'gg-box gg-layers');
  L.DomEvent.disableClickPropagation(d);
  Object.keys(cfg.layers).forEach(function(n){
    var label = L.DomUtil.create('label', '', d), box = L.DomUtil.create('input', '', label);
    box.type = 'checkbox'; box.checked = true; box.dataset.layer = n;
    label.appendChild(document.createTextNode(' ' + cfg.layers[n]));
    L.DomUtil.create('br', '', d);
    L.DomEvent.on(box, 'change', function(){ hidden[n] = !box.checked;
      window.ggTilesLoaded = false; map.removeLayer(layer); layer.addTo(map); });
  }); return d; };
toggles.addTo(map);
var legend = L.control({position: 'bottomright'});
legend.onAdd = function(){ var d = L.DomUtil.create('div', 'gg-box'), h = '<b>网格户数</b><table>';
  cfg.legend.forEach(function(r){ h += '<tr><td><i style="background:' + r[0] + ';opacity:'
    + cfg.opacity + '"></i></td><td>' + esc(r[1]) + '</td></tr>'; });
  d.innerHTML = h + '</table>'; return d; };
legend.addTo(map);
})();
</script></body></html>
"""
)
_PAGE.environment.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False}

#: Popup field names (Chinese, as the other pages name them).
FIELD_NAMES = {
    "grid_code": "网格代码",
    "community_code": "社区代码",
    "street_code": "街道代码",
    "building_id": "建筑编号",
    "facility_id": "设施编号",
    "name": "名称",
    "category": "类别",
    "households": "户数",
    "building_count": "建筑数",
    "floors": "层数",
    "area_m2": "面积(平方米)",
    "flags": "问题",
}
#: Names of the tile layers in the page's layer switch (top to bottom).
LAYER_NAMES = {
    "grids": "网格 (户数分级)",
    "communities": "社区边界",
    "streets": "街道边界",
    "buildings": "建筑 (户数, 放大后显示)",
    "facilities": "设施 (放大后显示)",
}
GRID_KIND_NAMES = {"residential": "住宅网格", "unit": "单位网格", "open": "开放空间网格"}


def _legend(breaks: list[float], colours: list[str]) -> list[tuple[str, str]]:
    rows = []
    low = 1
    for b, c in zip(breaks, colours, strict=True):
        rows.append((c, f"{low:,} – {int(b):,} 户"))
        low = int(b) + 1
    rows += [(UNIT_GRID_COLOUR, "单位网格"), (NO_HOUSEHOLDS, "无住户网格")]
    return rows


def tiled_page(
    grids: gpd.GeoDataFrame,
    bounds: tuple[float, float, float, float],
    settings: Any,
    city: str = "",
    basemap: str = "none",
    prefix: str = "static/",
    tile_url: str = TILE_URL,
) -> str:
    """The HTML of the tile-based page.

    Parameters
    ----------
    grids
        The grids (households, kind), for the household classes of the legend only.
    bounds
        (minx, miny, maxx, maxy) lon/lat degrees the page opens on.
    settings
        :class:`gridgis.standards.Settings` (``maps.classes``, ``maps.fill_opacity``).
    basemap
        ``osm`` draws OpenStreetMap under the tiles; any other value none (the tiles
        are WGS 84 / Web Mercator, not shifted for GCJ-02 base maps).
    tile_url
        URL template of the tiles, ``{z}/{y}/{x}`` (relative to the page).
    """
    from gridgis.tiles import MAX_ZOOM

    hh = pd.to_numeric(grids["households"], errors="coerce") if len(grids) else pd.Series([])
    if "kind" in grids.columns and len(grids):
        hh = hh[grids["kind"].astype(str).to_numpy() != "unit"]
    breaks = [float(b) for b in class_breaks(hh, settings.maps.classes)]
    colours = [colour_for(b, breaks) for b in breaks]
    title = f"{city} 网格图 (矢量图块)" if city else "网格图 (矢量图块)"
    cfg = {
        "url": tile_url,
        "bounds": [float(v) for v in bounds],
        "breaks": breaks,
        "colours": colours,
        "unit": UNIT_GRID_COLOUR,
        "none": NO_HOUSEHOLDS,
        "opacity": settings.maps.fill_opacity,
        "maxZoom": 20,
        "maxNativeZoom": min(MAX_ZOOM, 18),
        "names": FIELD_NAMES,
        "kinds": GRID_KIND_NAMES,
        "legend": _legend(breaks, colours),
        "layers": LAYER_NAMES,
        "title": title,
        "gridCount": len(grids),
        "page": TILES_PAGE,
    }
    return _PAGE.render(title=title, prefix=prefix, cfg=cfg, osm=basemap == "osm")


def write_tiled(
    out_dir: str | Path,
    grids: gpd.GeoDataFrame | None,
    communities: gpd.GeoDataFrame,
    settings: Any,
    city: str = "",
    basemap: str = "none",
) -> list[Path]:
    """Write ``tiles.html`` into the maps folder when the city has more grids than
    ``settings.maps.tiles_above_grids``; returns the pages written (none below it).
    Written atomically (a temporary file renamed)."""
    n = 0 if grids is None else len(grids)
    if n <= settings.maps.tiles_above_grids:
        return []
    bounds = tuple(float(v) for v in communities.to_crs("EPSG:4326").total_bounds)
    page = tiled_page(grids, bounds, settings, city, basemap, asset_prefix(0))
    path = Path(out_dir) / TILES_PAGE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return [path]
