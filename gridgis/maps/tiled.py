"""The map site of a big city drawn from vector tiles: grids, communities, streets,
facilities and buildings drawn in the browser from the tiles ``gridgis serve`` answers
(OGC API – Tiles, :mod:`gridgis.tiles`), with Leaflet.VectorGrid shipped in ``static/``
like Leaflet.

:func:`write_tiled_site` writes it when a workspace has more grids than
``maps.tiles_above_grids`` (:func:`gridgis.maps.site.write_maps`): ``index.html`` (also
``tiles.html``) with the city, street (``#street=<code>``) and community
(``#community=<code>``) views, ``coverage.html`` and ``lookup.html`` in the same frame,
``board.html#grid=<code>`` for any grid's board, ``tiles_index.js`` (names, boxes and counts
of the streets and communities) and a forwarding page per street and community. The pages
hold no geometry: their size and the time to write them grow with the streets and
communities only, never with grids or buildings. They need the server (``gridgis serve``
with the maps folder): opened from disk they show their frame and a note.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import shapely

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
{% if index_js %}<script src="{{ index_js }}"></script>{% endif %}
{% if extra_js %}<script src="{{ extra_js }}"></script>{% endif %}
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
var idx = window.ggIndex || {streets: {}, communities: {}};
var view = {level: 'city', code: ''};
var map = L.map('map', {maxZoom: cfg.maxZoom, zoomSnap: 0.25});
{% if osm %}L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png', {maxZoom: 19,
 attribution: '&copy; OpenStreetMap'}).addTo(map);{% endif %}
function esc(v){ return String(v).replace(/[&<>"']/g, function(c){
  return '&#' + c.charCodeAt(0) + ';'; }); }
function cls(h, breaks, colours){
  h = +h || 0;
  if (h <= 0) return cfg.none;
  for (var i = 0; i < breaks.length; i++) if (h <= breaks[i]) return colours[i];
  return colours[colours.length - 1];
}
function fill(p){ return p.kind === 'unit' ? cfg.unit : cls(p.households, cfg.breaks, cfg.colours); }
function commCode(p){ return p.community_code || (p.grid_code ? String(p.grid_code).slice(0, 12) : ''); }
function streetOf(p){
  if (p.street_code) return String(p.street_code);
  var c = idx.communities[commCode(p)];
  return c ? c.s : '';
}
function inView(p){
  if (view.level === 'city') return true;
  if (view.level === 'street') return streetOf(p) === view.code;
  return commCode(p) === view.code;
}
var FADED = {weight: 0.6, color: '#aaaaaa', fill: true, fillColor: '#ffffff', fillOpacity: 0.55};
var base = {
  streets: function(p){ return {weight: view.level === 'street' && inView(p) ? 5 : 3.5,
    color: '#08306b', fill: false}; },
  communities: function(p){
    if (cfg.mode === 'coverage') { var r = covRate(p.community_code);
      return {weight: 1.2, color: '#6a51a3', fill: true, fillOpacity: 0.7,
        fillColor: r === null ? '#cccccc' : cls(Math.round(r * 100) + 1e-9, cfg.rbreaks, cfg.rcolours)}; }
    if (view.level === 'city') { var c = idx.communities[p.community_code];
      return {weight: 1.2, color: '#6a51a3', fill: true, fillOpacity: cfg.opacity,
        fillColor: c ? cls(c.h, cfg.cbreaks, cfg.ccolours) : cfg.none}; }
    if (!inView(p)) return FADED;
    return {weight: view.level === 'community' ? 4 : 2.5, color: '#54278f', fill: true,
      fillColor: '#ffffff', fillOpacity: 0};
  },
  grids: function(p){
    if (window.ggSel && p.grid_code === window.ggSel) return {weight: 4, color: '#d7301f',
      fill: true, fillColor: '#fc8d59', fillOpacity: 0.5};
    if (cfg.mode === 'coverage') return {weight: 0.6, color: '#555555', fill: false};
    if (view.level === 'city' && cfg.mode === 'levels') return [];  // communities' fill shows
    if (view.level === 'street' && !inView(p)) return [];
    if (view.level !== 'city' && !inView(p)) return {weight: 0.5, color: '#bbbbbb', fill: false};
    var w = view.level === 'community' ? 2 : 1;
    return p.flags ?
    {weight: 3, color: '#d00000', dashArray: '8 5', fill: true, fillColor: fill(p),
     fillOpacity: cfg.opacity} :
    {weight: w, color: '#222222', fill: true, fillColor: fill(p), fillOpacity: cfg.opacity}; },
  buildings: function(p){ return {weight: 0.6, color: '#444444', fill: true,
    fillColor: (+p.households || 0) > 0 ? '#9e9ac8' : '#d9d9d9',
    fillOpacity: view.level === 'city' || inView(p) ? 0.85 : 0.3}; },
  facilities: function(p){ return view.level === 'community' || cfg.mode === 'lookup' ?
    {radius: 4, weight: 1, color: '#1f77b4', fill: true, fillOpacity: 0.8} : []; }
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
function go(level, code){ location.hash = level === 'city' ? '' : level + '=' + code; }
function popup(e, p){
  var rows = [];
  Object.keys(names).forEach(function(k){ if (p[k] !== undefined && p[k] !== '')
    rows.push('<tr><th>' + names[k] + '</th><td>' + esc(p[k]) + '</td></tr>'); });
  if (p.kind) rows.push('<tr><th>类型</th><td>' + esc(cfg.kinds[p.kind] || p.kind) + '</td></tr>');
  if (p.grid_code && p.area_m2 !== undefined) rows.push('<tr><th>公示牌</th><td><a href="'
    + (cfg.boards ? 'boards/' + esc(p.grid_code) + '.html' : 'board.html#grid=' + esc(p.grid_code))
    + '">打开</a></td></tr>');
  L.popup().setLatLng(e.latlng).setContent('<table>' + rows.join('') + '</table>').openOn(map);
}
layer.on('click', function(e){
  var p = e.layer.properties || {}, s = streetOf(p), c = commCode(p);
  if (cfg.mode === 'coverage') return covPopup(e, p);
  if (cfg.mode === 'lookup') return;
  if (view.level === 'city' && idx.streets[s]) return go('street', s);
  if (view.level === 'street' && s && s !== view.code && idx.streets[s]) return go('street', s);
  if (view.level !== 'city' && c && c !== view.code && idx.communities[c]) return go('community', c);
  popup(e, p);
});
layer.on('tileerror', function(){ document.getElementById('gg-note').style.display = 'block'; });
layer.on('load', function(){ window.ggTilesLoaded = true; });
window.ggTiles = layer;
window.ggMap = map;
function redraw(){ window.ggTilesLoaded = false; if (map.hasLayer(layer)) map.removeLayer(layer);
  layer.addTo(map); }
function fit(b){ map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {animate: false}); }
var title = L.control({position: 'topleft'});
title.onAdd = function(){ var d = L.DomUtil.create('div', 'gg-box');
  d.innerHTML = '<div id="gg-crumb"></div><div id="gg-note" style="display:none;color:#b30000">'
  + '图块未加载: 请经 gridgis serve 打开本页 (/maps/' + cfg.page + ')</div>'; return d; };
title.addTo(map);
var legendBox;
var legend = L.control({position: 'bottomright'});
legend.onAdd = function(){ legendBox = L.DomUtil.create('div', 'gg-box'); return legendBox; };
legend.addTo(map);
function showLegend(head, rows){ var h = '<b>' + head + '</b><table>';
  rows.forEach(function(r){ h += '<tr><td><i style="background:' + r[0] + ';opacity:'
    + cfg.opacity + '"></i></td><td>' + esc(r[1]) + '</td></tr>'; });
  legendBox.innerHTML = h + '</table>'; }
function crumb(){
  var parts = ['<a href="#">' + esc(cfg.title) + '</a>'], st, c, line;
  if (view.level === 'city') { parts = ['<b>' + esc(cfg.title) + '</b>'];
    line = '街道 ' + cfg.counts[0] + ' · 社区 ' + cfg.counts[1] + ' · 网格 ' + cfg.counts[2]
      + ' · 户数 ' + cfg.counts[3].toLocaleString() + '<br><small>' + cfg.hint + '</small>'; }
  if (view.level === 'street') { st = idx.streets[view.code];
    parts.push('<b>' + esc(st.n) + ' (' + esc(view.code) + ')</b>');
    line = '社区 ' + st.c + ' · 网格 ' + st.g + ' · 户数 ' + st.h.toLocaleString()
      + '<br><small>点击社区进入社区图</small>'; }
  if (view.level === 'community') { c = idx.communities[view.code]; st = idx.streets[c.s];
    if (st) parts.push('<a href="#street=' + esc(c.s) + '">' + esc(st.n) + '</a>');
    parts.push('<b>' + esc(c.n) + ' (' + esc(view.code) + ')</b>');
    line = '网格 ' + c.g + ' · 户数 ' + c.h.toLocaleString() + '<br><small>点击网格查看详情</small>'
      + (/^https?:$/.test(location.protocol) ? ' · <a href="/edit/' + esc(view.code)
      + '">编辑网格</a>' : ''); }
  document.getElementById('gg-crumb').innerHTML = parts.join(' › ') + '<br>' + line;
  document.title = cfg.title + (view.level === 'city' ? '' : ' · '
    + (view.level === 'street' ? idx.streets[view.code].n : idx.communities[view.code].n));
}
function apply(){
  var m = /^#(street|community)=(.+)$/.exec(location.hash), level = 'city', code = '';
  if (m) { code = decodeURIComponent(m[2]);
    if ((m[1] === 'street' ? idx.streets : idx.communities)[code]) level = m[1]; }
  view = {level: level, code: code};
  window.ggView = view;
  map.closePopup();
  if (level === 'city') fit(cfg.bounds);
  else fit((level === 'street' ? idx.streets : idx.communities)[code].b);
  crumb();
  if (cfg.mode === 'coverage') showLegend('社区覆盖率', cfg.rlegend);
  else if (level === 'city') showLegend('社区户数', cfg.clegend);
  else showLegend('网格户数', cfg.legend);
  redraw();
}
var toggles = L.control({position: 'topright'});
toggles.onAdd = function(){ var d = L.DomUtil.create('div', 'gg-box gg-layers');
  L.DomEvent.disableClickPropagation(d);
  Object.keys(cfg.layers).forEach(function(n){
    var label = L.DomUtil.create('label', '', d), box = L.DomUtil.create('input', '', label);
    box.type = 'checkbox'; box.checked = true; box.dataset.layer = n;
    label.appendChild(document.createTextNode(' ' + cfg.layers[n]));
    L.DomUtil.create('br', '', d);
    L.DomEvent.on(box, 'change', function(){ hidden[n] = !box.checked; redraw(); });
  }); return d; };
toggles.addTo(map);
{% if mode == 'coverage' %}
var cov = window.ggCoverage || {labels: {}, rates: {}}, cat = Object.keys(cov.labels)[0] || '';
function covRate(code){ var r = (cov.rates[cat] || {})[code]; return r === undefined ? null : r; }
function covPopup(e, p){ var c = idx.communities[p.community_code] || {}, r = covRate(p.community_code);
  L.popup().setLatLng(e.latlng).setContent('<b>' + esc(c.n || p.name || '') + '</b> ('
    + esc(p.community_code || '') + ')<br>' + esc(cov.labels[cat] || cat) + ' 覆盖率: '
    + (r === null ? '无数据' : Math.round(r * 100) + '%') + '<br><a href="index.html#community='
    + esc(p.community_code || '') + '">社区图</a>').openOn(map); }
var pick = L.control({position: 'topright'});
pick.onAdd = function(){ var d = L.DomUtil.create('div', 'gg-box'), sel;
  L.DomEvent.disableClickPropagation(d);
  d.innerHTML = '<b>设施类别</b><br><select id="gg-cat"></select>';
  sel = d.querySelector('select');
  Object.keys(cov.labels).forEach(function(k){ var o = document.createElement('option');
    o.value = k; o.textContent = cov.labels[k]; sel.appendChild(o); });
  L.DomEvent.on(sel, 'change', function(){ cat = sel.value; redraw(); });
  return d; };
pick.addTo(map);
window.ggCoverageSelect = function(k){ cat = k; document.getElementById('gg-cat').value = k; redraw(); };
{% endif %}
{% if mode == 'lookup' %}
var box = L.control({position: 'topright'});
box.onAdd = function(){ var d = L.DomUtil.create('div', 'gg-box');
  L.DomEvent.disableClickPropagation(d);
  d.innerHTML = '<b>网格查询</b><br><input id="gg-q" size="26" placeholder="地址或地名，或点击地图">'
    + ' <button id="gg-go">查询</button><div id="gg-result"></div>';
  return d; };
box.addTo(map);
function answer(r, where){
  var out = document.getElementById('gg-result'), g = r && r.grid, code = g && g.grid_code;
  window.ggLookup.done = true;
  if (!code || r.confident === false) { window.ggSel = null; window.ggLookup.last = null; redraw();
    out.innerHTML = '<span style="color:#b30000">' + esc(where) + '：未能确定所在网格</span>'
      + (r && r.candidates && r.candidates.length ? '<ol>' + r.candidates.map(function(c){
        return '<li>' + esc(c.text) + '</li>'; }).join('') + '</ol>' : ''); return; }
  window.ggSel = code; window.ggLookup.last = code;
  if (r.lat != null) map.setView([r.lat, r.lon], Math.max(map.getZoom(), 16), {animate: false});
  redraw();
  var people = (r.people || []).map(function(s){ return esc(s.role_zh || s.role) + ' ' + esc(s.name); });
  out.innerHTML = '<div id="gg-grid-code" style="font-size:15px"><b>' + esc(code) + '</b></div><table>'
    + '<tr><td>查询</td><td>' + esc(where) + '</td></tr>'
    + '<tr><td>社区</td><td>' + esc(r.community ? r.community.name + ' (' + r.community.code + ')' : '')
    + '</td></tr><tr><td>街道</td><td>' + esc(r.street ? r.street.name + ' (' + r.street.code + ')' : '')
    + '</td></tr><tr><td>人员</td><td>' + (people.length ? people.join('<br>') : '—') + '</td></tr></table>'
    + (r.community ? '<a href="index.html#community=' + esc(r.community.code) + '">社区图</a>' : '');
}
function ask(url, where){ window.ggLookup.done = false;
  fetch(url).then(function(r){ if (!r.ok) throw new Error(r.status); return r.json(); })
  .then(function(r){ answer(r, where); })
  .catch(function(){ window.ggLookup.done = true; document.getElementById('gg-result').innerHTML =
    '<span style="color:#b30000">查询需经 gridgis serve 打开本页</span>'; }); }
function search(){ var q = document.getElementById('gg-q').value;
  if (q.trim()) ask('/lookup/address?q=' + encodeURIComponent(q), q); }
document.getElementById('gg-go').addEventListener('click', search);
document.getElementById('gg-q').addEventListener('keydown', function(e){ if (e.key === 'Enter') search(); });
map.on('click', function(e){ ask('/lookup/point?lon=' + e.latlng.lng + '&lat=' + e.latlng.lat,
  e.latlng.lat.toFixed(6) + ', ' + e.latlng.lng.toFixed(6)); });
window.ggLookup = {search: search, done: false, last: null};
{% endif %}
window.addEventListener('hashchange', apply);
apply();
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
    "grids": "网格 (户数分级, 街道/社区图)",
    "communities": "社区边界",
    "streets": "街道边界",
    "buildings": "建筑 (户数, 放大后显示)",
    "facilities": "设施 (社区图)",
}
GRID_KIND_NAMES = {"residential": "住宅网格", "unit": "单位网格", "open": "开放空间网格"}


INDEX_JS = "tiles_index.js"
"""Script beside the tile page defining ``window.ggIndex``: per street and community its
name, box, households and counts (what the page zooms to and writes in its title)."""


def _legend(breaks: list[float], colours: list[str], extra: bool = True) -> list[tuple[str, str]]:
    rows = []
    low = 1
    for b, c in zip(breaks, colours, strict=True):
        rows.append((c, f"{low:,} – {int(b):,} 户"))
        low = int(b) + 1
    if extra:
        rows += [(UNIT_GRID_COLOUR, "单位网格"), (NO_HOUSEHOLDS, "无住户网格")]
    return rows


def _classes(values: pd.Series, classes: int) -> tuple[list[float], list[str]]:
    breaks = [float(b) for b in class_breaks(values, classes)]
    return breaks, [colour_for(b, breaks) for b in breaks]


def site_index(streets: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> dict[str, Any]:
    """Per street and per community (after :func:`gridgis.maps.site.summarise`): name
    ``n``, lon/lat box ``b`` (degrees, 5 decimals, about 1 m), households ``h``, grid
    count ``g``; streets also their community count ``c``, communities their street
    ``s``. Boxes for all rows at once (:func:`shapely.bounds`)."""

    def boxes(frame: gpd.GeoDataFrame) -> list[list[float]]:
        return np.round(shapely.bounds(frame.geometry.values), 5).tolist()

    def ints(frame: gpd.GeoDataFrame, col: str) -> list[int]:
        return pd.to_numeric(frame[col], errors="coerce").fillna(0).astype(int).tolist()

    s, c = streets, communities
    return {
        "streets": {
            code: {"n": n, "b": b, "h": h, "c": nc, "g": g}
            for code, n, b, h, nc, g in zip(
                s["street_code"].astype(str),
                s["name"].astype(str),
                boxes(s),
                ints(s, "households"),
                ints(s, "community_count"),
                ints(s, "grid_count"),
                strict=True,
            )
        },
        "communities": {
            code: {"n": n, "s": sc, "b": b, "h": h, "g": g}
            for code, n, sc, b, h, g in zip(
                c["community_code"].astype(str),
                c["name"].astype(str),
                c["street_code"].astype(str),
                boxes(c),
                ints(c, "households"),
                ints(c, "grid_count"),
                strict=True,
            )
        },
    }


def tiled_page(
    grids: gpd.GeoDataFrame,
    bounds: tuple[float, float, float, float],
    settings: Any,
    city: str = "",
    basemap: str = "none",
    prefix: str = "static/",
    tile_url: str = TILE_URL,
    communities: gpd.GeoDataFrame | None = None,
    index_js: str | None = None,
    boards: bool = True,
    page: str = TILES_PAGE,
    mode: str = "levels",
    extra_js: str | None = None,
) -> str:
    """The HTML of the tile-based page.

    It opens on the whole city (communities filled by households, street outlines), on a
    street with ``#street=<street_code>`` (its communities and grids) or on a community
    with ``#community=<community_code>`` (its grids, buildings from zoom 15); a click
    goes one level down, the title's breadcrumb back up.

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
    communities
        With ``households`` (after :func:`gridgis.maps.site.summarise`): the classes of
        the city view and the counts of the title; None: grids only.
    index_js
        The script defining ``window.ggIndex`` (:func:`site_index`), relative to the page;
        without it the page shows the city level only.
    boards
        Grid popups link to ``boards/<grid_code>.html`` (static boards written), else to
        ``board.html#grid=<grid_code>``.
    mode
        ``levels`` (the three-level map), ``coverage`` (communities by coverage rate of a
        facility category, from ``window.ggCoverage`` in ``extra_js``, see
        :func:`coverage_index`) or ``lookup`` (an address box and map clicks answered by
        the API's ``/lookup/address`` and ``/lookup/point``, the grid found outlined).
    """
    from gridgis.tiles import MAX_ZOOM

    hh = pd.to_numeric(grids["households"], errors="coerce") if len(grids) else pd.Series([])
    if "kind" in grids.columns and len(grids):
        hh = hh[grids["kind"].astype(str).to_numpy() != "unit"]
    breaks, colours = _classes(hh, settings.maps.classes)
    comm_hh = (
        pd.to_numeric(communities["households"], errors="coerce")
        if communities is not None and "households" in communities.columns
        else pd.Series([], dtype=float)
    )
    cbreaks, ccolours = _classes(comm_hh, settings.maps.classes)
    n_streets = (
        int(communities["street_code"].nunique())
        if communities is not None and "street_code" in communities.columns
        else 0
    )
    title = f"{city} 网格图" if city else "网格图"
    cfg = {
        "url": tile_url,
        "bounds": [float(v) for v in bounds],
        "breaks": breaks,
        "colours": colours,
        "cbreaks": cbreaks,
        "ccolours": ccolours,
        "unit": UNIT_GRID_COLOUR,
        "none": NO_HOUSEHOLDS,
        "opacity": settings.maps.fill_opacity,
        "maxZoom": 20,
        "maxNativeZoom": min(MAX_ZOOM, 18),
        "names": FIELD_NAMES,
        "kinds": GRID_KIND_NAMES,
        "legend": _legend(breaks, colours),
        "clegend": _legend(cbreaks, ccolours, extra=False),
        "layers": LAYER_NAMES,
        "title": title,
        "counts": [n_streets, len(comm_hh), len(grids), int(comm_hh.fillna(0).sum())],
        "boards": boards,
        "page": page,
        "mode": mode,
        "hint": MODE_HINTS.get(mode, ""),
        "rbreaks": RATE_BREAKS,
        "rcolours": RATE_COLOURS,
        "rlegend": _rate_legend(),
    }
    return _PAGE.render(
        title=title,
        prefix=prefix,
        cfg=cfg,
        osm=basemap == "osm",
        index_js=index_js,
        extra_js=extra_js,
        mode=mode,
    )


MODE_HINTS = {
    "levels": "点击街道/社区进入街道图",
    "coverage": "社区设施覆盖率 (步行可达) · 点击社区查看",
    "lookup": "输入地址或点击地图查询所在网格",
}
"""The title's hint line per page mode at the city level."""

RATE_BREAKS = [20, 40, 60, 80, 100]
"""Coverage classes of the tiled coverage page, upper bounds in percent of households."""
RATE_COLOURS = ["#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641"]
"""Colours of :data:`RATE_BREAKS` (red: few households covered, green: most)."""


def _rate_legend() -> list[tuple[str, str]]:
    low = 0
    rows = []
    for b, c in zip(RATE_BREAKS, RATE_COLOURS, strict=True):
        rows.append((c, f"{low}% – {b}%"))
        low = b
    return [*rows, ("#cccccc", "无数据")]


COVERAGE_JS = "tiles_coverage.js"
"""Script beside the tiled coverage page defining ``window.ggCoverage``."""


def coverage_index(coverage: pd.DataFrame | None) -> dict[str, Any]:
    """Per facility category (label in Chinese) the coverage rate (0–1, 3 decimals) of
    each community, from the ``coverage`` layer's rows of level ``community``; one pivot
    for all rows, nothing per community."""
    from gridgis.layers import FACILITY_CATEGORIES

    if coverage is None or len(coverage) == 0 or "level" not in coverage.columns:
        return {"labels": {}, "rates": {}}
    c = coverage[coverage["level"].astype(str) == "community"]
    rate = pd.to_numeric(c["rate"], errors="coerce").round(3)
    c = pd.DataFrame({"cat": c["category"].astype(str), "code": c["code"].astype(str), "r": rate})
    c = c.dropna(subset=["r"])
    rates = {cat: dict(zip(g["code"], g["r"].tolist(), strict=True)) for cat, g in c.groupby("cat")}
    order = [k for k in FACILITY_CATEGORIES if k in rates] + sorted(
        k for k in rates if k not in FACILITY_CATEGORIES
    )
    labels = {k: EXTRA_RATE_LABELS.get(k, FACILITY_CATEGORIES.get(k, k)) for k in order}
    return {"labels": labels, "rates": rates}


EXTRA_RATE_LABELS = {"green": "绿地", "park": "公园", "life_circle": "15分钟生活圈(全部类别)"}
"""Labels of the coverage rows that are not facility categories."""


_STUB = (
    '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{name}</title>'
    "<script>location.replace('../index.html#{level}={code}')</script></head><body>"
    '<a href="../index.html#{level}={code}">{name}</a></body></html>'
)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _write_stubs(folder: Path, level: str, codes: list[str], names: list[str]) -> list[Path]:
    """``folder/<code>.html`` for each code: a few hundred bytes sending the browser to
    the tile page's view of that street or community (links of boards, lookup and older
    bookmarks keep working). One string format per page, no template."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for code, name in zip(codes, names, strict=True):
        path = folder / f"{code}.html"
        _write_text(path, _STUB.format(name=html.escape(name), level=level, code=html.escape(code)))
        paths.append(path)
    return paths


def write_tiled_site(
    out_dir: str | Path,
    streets: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    settings: Any,
    city: str = "",
    basemap: str = "none",
    boards: bool = True,
    coverage: pd.DataFrame | None = None,
) -> list[Path]:
    """The three-level map of a big city drawn from vector tiles: ``index.html`` (and
    the same page as ``tiles.html``) with the city, street and community views,
    ``tiles_index.js`` (:func:`site_index`) and one small forwarding page per street and
    community (``streets/<code>.html``, ``communities/<code>.html``).

    ``streets`` and ``communities`` after :func:`gridgis.maps.site.summarise`, in lon/lat.
    Nothing here grows per grid or building: the geometry comes from the tiles.
    """
    out = Path(out_dir)
    index = site_index(streets, communities)
    _write_text(
        out / INDEX_JS,
        "window.ggIndex = " + json.dumps(index, ensure_ascii=False, separators=(",", ":")) + ";\n",
    )
    bounds = tuple(float(v) for v in communities.total_bounds)
    pages = [out / INDEX_JS]
    for name in ("index.html", TILES_PAGE):
        page = tiled_page(
            grids,
            bounds,
            settings,
            city,
            basemap,
            asset_prefix(0),
            communities=communities,
            index_js=INDEX_JS,
            boards=boards,
            page=name,
        )
        _write_text(out / name, page)
        pages.append(out / name)
    pages += _write_modes(out, grids, communities, settings, city, basemap, coverage)
    if not boards:  # one board page for every grid, filled by the API
        _write_text(out / BOARD_PAGE, board_template_page(settings, city, asset_prefix(0)))
        pages.append(out / BOARD_PAGE)
    s = streets[streets["street_code"].astype(str).isin(communities["street_code"].astype(str))]
    pages += _write_stubs(
        out / "streets",
        "street",
        s["street_code"].astype(str).tolist(),
        s["name"].astype(str).tolist(),
    )
    pages += _write_stubs(
        out / "communities",
        "community",
        communities["community_code"].astype(str).tolist(),
        communities["name"].astype(str).tolist(),
    )
    return pages


def _write_modes(
    out: Path,
    grids: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    settings: Any,
    city: str,
    basemap: str,
    coverage: pd.DataFrame | None,
) -> list[Path]:
    """``coverage.html`` and ``lookup.html`` as tile pages (see :func:`tiled_page`)."""
    _write_text(
        out / COVERAGE_JS,
        "window.ggCoverage = "
        + json.dumps(coverage_index(coverage), ensure_ascii=False, separators=(",", ":"))
        + ";\n",
    )
    pages = []
    for name, mode, extra in (
        ("coverage.html", "coverage", COVERAGE_JS),
        ("lookup.html", "lookup", None),
    ):
        page = tiled_page(
            grids,
            tuple(float(v) for v in communities.total_bounds),
            settings,
            city,
            basemap,
            asset_prefix(0),
            communities=communities,
            index_js=INDEX_JS,
            page=name,
            mode=mode,
            extra_js=extra,
        )
        _write_text(out / name, page)
        pages.append(out / name)
    return pages


def write_tiled(
    out_dir: str | Path,
    grids: gpd.GeoDataFrame | None,
    communities: gpd.GeoDataFrame,
    settings: Any,
    city: str = "",
    basemap: str = "none",
) -> list[Path]:
    """Write ``tiles.html`` (city level only) into the maps folder when the city has more
    grids than ``settings.maps.tiles_above_grids``; returns the pages written (none below
    it). Written atomically (a temporary file renamed)."""
    n = 0 if grids is None else len(grids)
    if n <= settings.maps.tiles_above_grids:
        return []
    bounds = tuple(float(v) for v in communities.to_crs("EPSG:4326").total_bounds)
    page = tiled_page(grids, bounds, settings, city, basemap, asset_prefix(0))
    path = Path(out_dir) / TILES_PAGE
    _write_text(path, page)
    return [path]


BOARD_PAGE = "board.html"
"""The one board page of a city drawn from tiles: ``board.html#grid=<grid_code>``."""

_BOARD = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>{{ rules.title }}</title>
<link rel="stylesheet" href="{{ prefix }}leaflet/leaflet.css">
<script src="{{ prefix }}leaflet/leaflet.js"></script>
<script src="{{ prefix }}leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"></script>
<script src="{{ index_js }}"></script>
<style>{{ css|safe }}</style></head>
<body><div class="sheet">
<div class="head">{% if rules.logo_text %}<div class="badge">{{ rules.logo_text }}</div>{% endif %}
<h1>{{ rules.title }}</h1></div>
<div class="chain" id="chain"></div>
<div class="code" id="grid-code"></div>
<div class="mapbox"><div id="board-map"></div><div class="north">{{ north|safe }}</div></div>
<div class="cols"><table class="facts" id="facts"></table>
<table class="people" id="people"><tr><th colspan="2">网格责任人</th></tr></table></div>
<div class="issue"><span id="issuer">{% if rules.issuer %}发布单位: {{ rules.issuer }}{% endif %}</span>
<span id="effective"></span>
<span id="phone">{% if rules.supervision_phone %}监督电话: {{ rules.supervision_phone }}{% endif %}</span></div>
<div class="foot">依据: 城乡社区网格化服务管理 · 住宅网格 250–500 户 · 由 gridgis 生成 · 四至见静态公示牌
 <span class="noprint">· <a id="comm-link" href="index.html">社区图</a></span></div>
</div>
<script>
(function(){
var cfg = {{ cfg|tojson }}, idx = window.ggIndex || {streets: {}, communities: {}};
function esc(v){ return String(v == null ? '' : v).replace(/[&<>"']/g, function(c){
  return '&#' + c.charCodeAt(0) + ';'; }); }
var m = /^#grid=(.+)$/.exec(location.hash), code = m ? decodeURIComponent(m[1]) : '';
document.getElementById('grid-code').textContent = '网格编码 ' + code;
var map = L.map('board-map', {zoomControl: false, attributionControl: false});
L.control.scale({imperial: false, position: 'bottomleft'}).addTo(map);
fetch('/grids/' + encodeURIComponent(code)).then(function(r){
  if (!r.ok) throw new Error(r.status); return r.json(); }).then(function(g){
  var s = g.statistics || {}, c = idx.communities[s.community_code] || {},
    st = idx.streets[c.s || s.street_code] || {};
  document.getElementById('chain').textContent = cfg.city + ' ' + (st.n || '') + ' ('
    + (c.s || s.street_code || '') + ') › ' + (c.n || '') + ' (' + (s.community_code || '') + ')';
  document.getElementById('comm-link').href = 'index.html#community=' + (s.community_code || '');
  var facts = [['网格类型', cfg.kinds[s.kind] || s.kind || ''],
    ['户数', s.households == null ? '—' : Number(s.households).toLocaleString() + ' 户'],
    ['建筑', s.building_count == null ? '—' : Number(s.building_count).toLocaleString() + ' 栋'],
    ['面积', s.area_m2 == null ? '—' : (s.area_m2 / 10000).toFixed(2) + ' 公顷']];
  document.getElementById('facts').innerHTML = facts.map(function(f){
    return '<tr><th>' + esc(f[0]) + '</th><td>' + esc(f[1]) + '</td></tr>'; }).join('');
  var roles = {grid_head: [], grid_worker: []};
  (g.staff || []).forEach(function(p){ if (roles[p.role]) roles[p.role].push(p.name); });
  if (!roles.grid_head.length && s.grid_head) roles.grid_head = String(s.grid_head).split('、');
  if (!roles.grid_worker.length && s.grid_workers) roles.grid_worker = String(s.grid_workers).split('、');
  document.getElementById('people').innerHTML += Object.keys(roles).map(function(k){
    return '<tr><td class="role">' + esc(cfg.roles[k]) + '</td><td>'
      + esc(roles[k].length ? roles[k].join('、') : cfg.missing) + '</td></tr>'; }).join('');
  document.getElementById('effective').textContent = '生效日期: '
    + (s.valid_from ? String(s.valid_from).slice(0, 10) : '—');
  var shape = L.geoJSON(g.geometry, {style: {color: '#b30000', weight: 4, fill: false}});
  map.fitBounds(shape.getBounds(), {padding: [20, 20]});
  L.vectorGrid.protobuf(cfg.url, {rendererFactory: L.svg.tile, maxNativeZoom: 18, maxZoom: 20,
    vectorTileLayerStyles: {
      streets: [], communities: [], facilities: [],
      grids: function(p){ return p.grid_code === code ? [] :
        {weight: 1, color: '#888888', dashArray: '4 3', fill: false}; },
      buildings: function(p){ return {weight: 0.6, color: '#444444', fill: true,
        fillColor: p.grid_code === code ? '#9e9ac8' : '#eeeeee', fillOpacity: 0.85}; }
    }}).on('load', function(){ window.ggBoardDone = true; }).addTo(map);
  shape.addTo(map);
  document.title = cfg.title + ' ' + code;
}).catch(function(e){
  document.getElementById('chain').textContent = '网格 ' + code + ' 未找到, 或本页未经 gridgis serve 打开 ('
    + e.message + ')';
  window.ggBoardDone = true;
});
})();
</script></body></html>
"""
)
_BOARD.environment.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False}


def board_template_page(settings: Any, city: str = "", prefix: str = "static/") -> str:
    """The HTML of ``board.html``: a grid's printable board (``#grid=<grid_code>``) filled
    in the browser from the API's ``/grids/<grid_code>`` (households, buildings, area,
    responsible people, effective date) with its map from the tiles: one page for every
    grid of a city drawn from tiles, served by ``gridgis serve``. The boundary
    description (四至) is on the static boards only (``maps.tiled_boards``)."""
    from gridgis.layers import STAFF_ROLES
    from gridgis.maps.boards import BOARD_CSS
    from gridgis.maps.common import NORTH_ARROW_SVG

    rules = settings.board
    cfg = {
        "url": TILE_URL,
        "city": city,
        "title": rules.title,
        "kinds": GRID_KIND_NAMES,
        "roles": {k: STAFF_ROLES[k] for k in ("grid_head", "grid_worker")},
        "missing": rules.missing_person,
    }
    return _BOARD.render(
        rules=rules,
        prefix=prefix,
        index_js=INDEX_JS,
        css=BOARD_CSS,
        north=NORTH_ARROW_SVG,
        cfg=cfg,
    )
