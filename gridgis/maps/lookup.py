"""``lookup.html``: type an address or click the map; the grid is highlighted and its chain
(grid → community → street) and responsible people are shown.

Served over http(s) (e.g. by the gridgis API), the page asks the API
(``/lookup/address?q=``, the one matcher of the CLI and the API, and
``/lookup/point?lon=&lat=``) and shows a grid only for a confident answer; otherwise it
lists the candidates and says why. Opened as a file, or when the API does not answer, it
offers **exact matches only**, and says so: the query is normalised in the page by
JavaScript generated from the Python tables (:func:`gridgis.address.normaliser_js`) and
looked up among keys the Python parser computed (standard addresses, place names, their
forms without administrative prefix, aliases); a key found in one grid answers, a key
found in several grids does not. Clicks use the grid polygons (point-in-polygon in
JavaScript).
"""

from __future__ import annotations

import html
import json

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import MacroElement

from gridgis.address import AddressIndex, normalise, normaliser_js
from gridgis.address.policy import RULE_LABELS_ZH
from gridgis.crs import wgs84_to_offset
from gridgis.layers import STAFF_ROLES
from gridgis.maps.common import (
    Basemap,
    HtmlControl,
    Template,
    new_map,
    to_geojson,
)
from gridgis.maps.levels import GRID_KIND_LABELS
from gridgis.standards import DEFAULT, Settings

SEARCH_HTML = """
<div style="font-size:14px"><b>网格查询</b> <small>输入地址、地名或点击地图</small></div>
<input id="gg-q" type="text" placeholder="例如: {example}" style="width:230px;font-size:13px">
<button id="gg-go" type="button">查询</button>
<div id="gg-result" style="margin-top:6px;max-width:320px"></div>
"""

#: What the page says when opened as a file and the query is not an exact key.
FILE_MODE_NOTE = "文件打开时仅支持精确匹配（标准地址、地名、别名）；经服务器访问可纠错并列出候选"


def search_html(example: str) -> str:
    """The search box with ``example`` (a real address of the workspace) as its hint text."""
    return SEARCH_HTML.replace("{example}", html.escape(example or "地址或地名", quote=True))


def staff_by_grid(
    staff: pd.DataFrame | None, grids: gpd.GeoDataFrame
) -> dict[str, list[list[str]]]:
    """``grid_code → [[name, role label], …]``: grid heads first, then grid workers, from
    the staff layer (or the grids' ``grid_head`` / ``grid_workers`` columns). Phone
    numbers are personal data and never put in a page."""
    out: dict[str, list[list[str]]] = {}
    if staff is not None and len(staff) and "grid_code" in staff.columns:
        s = staff[staff["grid_code"].notna() & staff["role"].isin(["grid_head", "grid_worker"])]
        s = s.assign(_o=(s["role"] != "grid_head").astype(int)).sort_values(
            ["grid_code", "_o", "staff_id"] if "staff_id" in s.columns else ["grid_code", "_o"]
        )
        for code, part in s.groupby(s["grid_code"].astype(str), sort=False):
            out[code] = [
                [str(n), STAFF_ROLES.get(str(r), str(r))]
                for n, r in zip(part["name"], part["role"], strict=True)
            ]
    for col, role in (("grid_head", "网格长"), ("grid_workers", "网格员")):
        if col not in grids.columns:
            continue
        have = set(out)
        names = grids[col].astype("string")
        for code, text in zip(grids["grid_code"].astype(str), names, strict=True):
            if code in have or pd.isna(text):
                continue
            out.setdefault(code, []).extend([n, role] for n in str(text).split("、") if n)
    return out


def police_by_community(staff: pd.DataFrame | None) -> dict[str, list[str]]:
    """``community_code → [police officer names]`` (一区一警)."""
    if staff is None or len(staff) == 0 or "community_code" not in staff.columns:
        return {}
    s = staff[(staff["role"] == "police") & staff["community_code"].notna()]
    return {
        str(c): [str(n) for n in part["name"]]
        for c, part in s.groupby(s["community_code"].astype(str))
    }


def _grid_of_points(a: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> np.ndarray:
    """Row of ``grids`` holding each address (its ``grid_code`` when given), NaN outside."""
    codes = grids["grid_code"].astype(str).to_numpy()
    pos = {c: i for i, c in enumerate(codes)}
    if "grid_code" in a.columns and a["grid_code"].notna().any():
        gi = np.array(a["grid_code"].astype("string").map(pos), dtype=float)  # writable
    else:
        gi = np.full(len(a), np.nan)
    missing = np.isnan(gi)
    if missing.any():
        from gridgis.spatial import points_in_polygons, rank_of

        geoms = np.asarray(grids.geometry.values, dtype=object)
        found = points_in_polygons(
            np.asarray(a.geometry.values, dtype=object)[missing], geoms, rank_of(codes)
        )
        gi[missing] = np.where(found >= 0, found, np.nan)
    return gi


def address_index(
    addresses: gpd.GeoDataFrame | None,
    grids: gpd.GeoDataFrame,
    basemap: Basemap = "none",
    settings: Settings = DEFAULT,
) -> dict[str, list]:
    """The embedded exact-match index: ``keys`` and, for each, the index of its grid in
    ``grids`` (-1 when the key is found in several grids: no answer), the text of one
    standard address with that key and its point [lat, lon] (shifted to GCJ-02 for Amap).

    Keys are computed by the Python matcher (:class:`gridgis.address.AddressIndex`): each
    address's exact key and its text as written, and every place name, name without its
    administrative prefix, and alias; the page's query key comes from the JavaScript
    generated from the same tables, so a key typed in any of the forms the normaliser
    unifies (full-width, numerals, 幢/门, traditional characters) is found.
    """
    empty = {"keys": [], "grid": [], "text": [], "pt": []}
    if addresses is None or len(addresses) == 0 or len(grids) == 0:
        return empty
    a = addresses.to_crs("EPSG:4326") if addresses.crs is not None else addresses
    a = a[a.geometry.notna() & ~a.geometry.is_empty].reset_index(drop=True)
    gi = _grid_of_points(a, grids)
    index = AddressIndex.from_layer(a, settings)
    shown = wgs84_to_offset(a, "gcj02") if basemap == "amap" else a
    lat = np.round(shown.geometry.y.to_numpy(), 6)
    lon = np.round(shown.geometry.x.to_numpy(), 6)
    rows_of: dict[str, list[int]] = {}
    for table in (index.exact, index.names):
        for key, rows in table.items():
            rows_of.setdefault(key, []).extend(rows)
    for i, text in enumerate(index.text):
        key = normalise(text).text
        if key:
            rows_of.setdefault(key, []).append(i)
    out: dict[str, list] = {"keys": [], "grid": [], "text": [], "pt": []}
    for key, rows in rows_of.items():
        grid_rows = {int(gi[r]) for r in rows if not np.isnan(gi[r])}
        if not grid_rows:
            continue
        r = rows[0]
        out["keys"].append(key)
        out["grid"].append(grid_rows.pop() if len(grid_rows) == 1 else -1)
        out["text"].append(str(index.text[r]))
        out["pt"].append([float(lat[r]), float(lon[r])])
    return out


def search_example(addr: dict) -> str:
    """A real standard address of the embedded index (in one grid) for the search box."""
    for text, grid in zip(addr["text"], addr["grid"], strict=True):
        if grid >= 0 and text:
            return text
    return ""


class LookupScript(MacroElement):
    """The lookup logic: embedded data, API calls when served, point-in-polygon."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(){
        var map = {{ this._parent.get_name() }};
        var GRIDS = {{ this.grids|tojson }};
        var STAFF = {{ this.staff|tojson }};
        var POLICE = {{ this.police|tojson }};
        var ADDR = {{ this.addr|tojson }};
        var KIND = {{ this.kinds|tojson }};
        var OFFSET = {{ this.offset|tojson }};
        {{ this.key_js }}
        var keyPos = new Map();
        for (var i = 0; i < ADDR.keys.length; i++) keyPos.set(ADDR.keys[i], i);
        var byCode = new Map();
        var base = {color: '#333', weight: 1, fillColor: '#9ecae1', fillOpacity: 0.25};
        var hit = {color: '#d7301f', weight: 4, fillColor: '#fc8d59', fillOpacity: 0.45};
        var layer = L.geoJSON(GRIDS, {style: function(){ return base; },
          onEachFeature: function(f, l){ byCode.set(f.properties.grid_code, l);
            l.bindTooltip(f.properties.grid_code); }}).addTo(map);
        window.ggLookup = {map: map, layer: layer, byCode: byCode, mode: null, last: null,
                           confident: false, done: false};
        var marker = null, current = null;
        function bboxOf(g) {
          var b = [Infinity, Infinity, -Infinity, -Infinity];
          var polys = g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
          polys.forEach(function(p){ p[0].forEach(function(c){
            if (c[0] < b[0]) b[0] = c[0]; if (c[1] < b[1]) b[1] = c[1];
            if (c[0] > b[2]) b[2] = c[0]; if (c[1] > b[3]) b[3] = c[1]; }); });
          return b;
        }
        var BOXES = GRIDS.features.map(function(f){ return bboxOf(f.geometry); });
        function inRing(x, y, r) {
          var inside = false;
          for (var i = 0, j = r.length - 1; i < r.length; j = i++) {
            var xi = r[i][0], yi = r[i][1], xj = r[j][0], yj = r[j][1];
            if (((yi > y) !== (yj > y)) && (x < (xj - xi) * (y - yi) / (yj - yi) + xi)) inside = !inside;
          }
          return inside;
        }
        function inGeom(x, y, g) {
          var polys = g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
          for (var p = 0; p < polys.length; p++) {
            if (!inRing(x, y, polys[p][0])) continue;
            var hole = false;
            for (var h = 1; h < polys[p].length; h++) if (inRing(x, y, polys[p][h])) hole = true;
            if (!hole) return true;
          }
          return false;
        }
        function gridAt(lat, lon) {
          for (var i = 0; i < GRIDS.features.length; i++) {
            var b = BOXES[i];
            if (lon < b[0] || lon > b[2] || lat < b[1] || lat > b[3]) continue;
            if (inGeom(lon, lat, GRIDS.features[i].geometry)) return i;
          }
          return -1;
        }
        var FILE_NOTE = {{ this.file_note|tojson }};
        var RULE_ZH = {{ this.rule_zh|tojson }};
        function why(r) {
          var t = RULE_ZH[r.rule] || r.reason || '没有可信的匹配';
          if (r.confident && !r.grid) t = t + '；该地址不在任何网格内';
          return t;
        }
        function findAddress(q) {  // exact keys only (see FILE_NOTE)
          var n = ggNormalise(q), k = n.text, nm = ggNormaliseName(q);
          if (!k && !nm) return null;
          if (keyPos.has(k)) return {i: keyPos.get(k), how: '精确匹配（文件模式）'};
          if (keyPos.has(nm)) return {i: keyPos.get(nm), how: '地名精确匹配（文件模式）'};
          return null;
        }
        function esc(s) { return String(s == null ? '' : s).replace(/[&<>"']/g, function(c){
          return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]; }); }
        function show(code, where, how, latlng, api) {
          var out = document.getElementById('gg-result');
          if (current) { current.setStyle(base); current = null; }
          if (marker) { map.removeLayer(marker); marker = null; }
          if (latlng) marker = L.circleMarker(latlng, {radius: 7, color: '#000', weight: 2,
                                                      fillColor: '#ffff00', fillOpacity: 1}).addTo(map);
          var l = code ? byCode.get(code) : null;
          window.ggLookup.last = l ? code : null;
          window.ggLookup.confident = !!l;
          window.ggLookup.done = true;
          if (!l) { out.innerHTML = '<span style="color:#b30000">' + esc(where) +
                    '：未找到所在网格</span>'; return; }
          current = l; l.setStyle(hit); l.bringToFront();
          map.fitBounds(l.getBounds(), {maxZoom: 17, padding: [30, 30]});
          var p = Object.assign({}, l.feature.properties);
          var staff = (STAFF[code] || []).map(function(s){ return esc(s[1]) + ' ' + esc(s[0]); });
          var police = POLICE[p.community_code] || [];
          if (api) {  // the server's answer is authoritative for the chain and the people
            if (api.community) { p.community = api.community.name; p.community_code = api.community.code; }
            if (api.street) { p.street = api.street.name; p.street_code = api.street.code; }
            if (api.people && api.people.length) staff = api.people.map(function(s){
              return esc(s.role_zh || s.role) + ' ' + esc(s.name); });
            var cp = (api.community_people || []).filter(function(s){ return s.role === 'police'; });
            if (cp.length) police = cp.map(function(s){ return s.name; });
          }
          out.innerHTML = '<div id="gg-grid-code" style="font-size:15px"><b>' + esc(code) + '</b></div>' +
            '<table>' +
            '<tr><td>查询</td><td>' + esc(where) + ' <small>' + esc(how) + '</small></td></tr>' +
            '<tr><td>网格</td><td>' + esc(KIND[p.kind] || p.kind || '') + ' · ' + esc(p.households) + ' 户</td></tr>' +
            '<tr><td>社区</td><td>' + esc(p.community) + ' (' + esc(p.community_code) + ')</td></tr>' +
            '<tr><td>街道</td><td>' + esc(p.street) + ' (' + esc(p.street_code) + ')</td></tr>' +
            '<tr><td>人员</td><td>' + (staff.length ? staff.join('<br>') : '—') + '</td></tr>' +
            (police.length ? '<tr><td>社区民警</td><td>' + police.map(esc).join('、') + '</td></tr>' : '') +
            '</table><a href="boards/' + esc(code) + '.html">公示牌</a>';
        }
        function served() { return location.protocol === 'http:' || location.protocol === 'https:'; }
        function codeOf(r) {
          if (!r) return null;
          if (r.grid_code) return r.grid_code;
          if (r.grid && (r.grid.grid_code || r.grid.code)) return r.grid.grid_code || r.grid.code;
          var list = r.matches || r.results || r.candidates || (Array.isArray(r) ? r : null);
          if (list && list.length) return codeOf(list[0]);
          return null;
        }
        function pointOf(r) {
          if (!r) return null;
          var lat = r.lat, lon = r.lon;
          if (lat == null && r.point) { lat = r.point.lat; lon = r.point.lon; }
          if (lat == null) { var list = r.matches || r.results || r.candidates; if (list && list.length) return pointOf(list[0]); return null; }
          return OFFSET ? null : [lat, lon];
        }
        function unsure(q, why, cands) {  // no grid: say why, list candidates
          var out = document.getElementById('gg-result');
          if (current) { current.setStyle(base); current = null; }
          if (marker) { map.removeLayer(marker); marker = null; }
          window.ggLookup.last = null;
          window.ggLookup.confident = false;
          var rows = (cands || []).map(function(c){
            return '<li>' + esc(c.text) + (c.grid_code ? ' <small>(' + esc(c.grid_code) + ')</small>' : '') + '</li>'; });
          out.innerHTML = '<div id="gg-unsure" style="color:#b30000">' + esc(q) + '：未能确定所在网格</div>' +
            '<div><small>' + esc(why) + '</small></div>' +
            (rows.length ? '<div>候选：</div><ol id="gg-candidates" style="margin:2px 0 0 18px;padding:0">' + rows.join('') + '</ol>' : '');
          window.ggLookup.done = true;
        }
        function localAddress(q) {
          var f = findAddress(q);
          window.ggLookup.mode = 'file';
          if (!f) { unsure(q, FILE_NOTE, []); return; }
          var gi = ADDR.grid[f.i];
          if (gi < 0) { unsure(q, '同一地址或地名在多个网格中', []); return; }
          show(GRIDS.features[gi].properties.grid_code, ADDR.text[f.i], f.how, ADDR.pt[f.i]);
        }
        function localPoint(latlng) {
          window.ggLookup.mode = 'file';
          var gi = gridAt(latlng.lat, latlng.lng);
          var where = latlng.lat.toFixed(6) + ', ' + latlng.lng.toFixed(6);
          show(gi >= 0 ? GRIDS.features[gi].properties.grid_code : null, where, '点选', latlng);
        }
        function search() {
          var q = document.getElementById('gg-q').value;
          window.ggLookup.done = false;
          if (!q.trim()) { window.ggLookup.done = true; return; }
          if (!served()) { localAddress(q); return; }
          fetch('/lookup/address?q=' + encodeURIComponent(q)).then(function(r){
            if (!r.ok) throw new Error(r.status); return r.json(); }).then(function(r){
            window.ggLookup.mode = 'api';
            // the server's matcher decides: a grid only for a confident answer
            var code = r.confident && r.grid ? r.grid.grid_code : null;
            if (!code || !byCode.has(code)) {
              unsure(q, why(r), r.confident ? [] : r.candidates);
              return;
            }
            show(code, (r.text || q), '服务端匹配 · ' + why(r), pointOf(r), r);
          }).catch(function(){ localAddress(q); });
        }
        map.on('click', function(e){
          if (!served() || OFFSET) { localPoint(e.latlng); return; }
          fetch('/lookup/point?lon=' + e.latlng.lng + '&lat=' + e.latlng.lat).then(function(r){
            if (!r.ok) throw new Error(r.status); return r.json(); }).then(function(r){
            var code = codeOf(r);
            if (!code || !byCode.has(code)) { localPoint(e.latlng); return; }
            window.ggLookup.mode = 'api';
            show(code, e.latlng.lat.toFixed(6) + ', ' + e.latlng.lng.toFixed(6), '服务端点选', e.latlng, r);
          }).catch(function(){ localPoint(e.latlng); });
        });
        document.getElementById('gg-go').addEventListener('click', search);
        document.getElementById('gg-q').addEventListener('keydown', function(e){
          if (e.key === 'Enter') search(); });
        window.ggLookup.search = search;
        window.ggLookup.gridAt = gridAt;
        window.ggLookup.findAddress = findAddress;
        })();
        {% endmacro %}
    """)

    def __init__(self, grids: dict, staff: dict, police: dict, addr: dict, offset: bool) -> None:
        super().__init__()
        self._name = "LookupScript"
        self.grids = grids
        self.staff = staff
        self.police = police
        self.addr = addr
        self.kinds = GRID_KIND_LABELS
        self.offset = offset
        self.key_js = normaliser_js()
        self.file_note = FILE_MODE_NOTE
        self.rule_zh = {r.value: label for r, label in RULE_LABELS_ZH.items()}


def lookup_map(
    communities: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame | None,
    streets: pd.DataFrame,
    addresses: gpd.GeoDataFrame | None,
    staff: pd.DataFrame | None,
    basemap: Basemap = "none",
    tianditu_key: str | None = None,
    prefix: str = "static/",
    grids_lonlat: gpd.GeoDataFrame | None = None,
    settings: Settings = DEFAULT,
) -> folium.Map:
    """The lookup page. ``grids`` and ``communities`` already prepared for drawing (for
    Amap, shifted to GCJ-02; point clicks are then resolved in the page, in GCJ-02);
    ``addresses`` and ``grids_lonlat`` (same rows as ``grids``, unshifted, default
    ``grids``) in lon/lat (WGS84)."""
    m = new_map(communities.total_bounds, basemap, tianditu_key, prefix, title="网格查询")
    folium.GeoJson(
        to_geojson(communities, ["name"]),
        name="社区边界",
        style_function=lambda f: {"color": "#54278f", "weight": 3, "fillOpacity": 0.0},
        interactive=False,
    ).add_to(m)
    if grids is None or len(grids) == 0:
        HtmlControl(
            search_html("") + "<div>尚无网格图层 (gridgis delineate)</div>",
            position="topright",
            css_class="gg-legend",
        ).add_to(m)
        return m
    g = grids.copy()
    names = dict(
        zip(communities["community_code"].astype(str), communities["name"].astype(str), strict=True)
    )
    snames = dict(zip(streets["street_code"].astype(str), streets["name"].astype(str), strict=True))
    g["community"] = g["community_code"].astype(str).map(names)
    g["street_code"] = g["grid_code"].astype(str).str[:9]
    g["street"] = g["street_code"].map(snames)
    if "kind" not in g.columns:
        g["kind"] = "residential"
    g["households"] = pd.to_numeric(g.get("households"), errors="coerce").round().astype("Int64")
    data = to_geojson(
        g,
        ["grid_code", "kind", "households", "community_code", "community", "street_code", "street"],
    )
    addr = address_index(
        addresses, grids if grids_lonlat is None else grids_lonlat, basemap, settings
    )
    HtmlControl(
        search_html(search_example(addr)), position="topright", css_class="gg-legend"
    ).add_to(m)
    HtmlControl(
        f"<b>网格查询</b> · 网格 {len(g)} · 地址与地名 {len(addr['keys']):,}"
        "<br><small>经服务器访问时由 API 匹配（纠错、候选）；文件打开时仅精确匹配</small>",
        position="topleft",
        css_class="gg-title",
    ).add_to(m)
    LookupScript(
        data, staff_by_grid(staff, grids), police_by_community(staff), addr, basemap == "amap"
    ).add_to(m)
    return m


def lookup_json_size(m: folium.Map) -> int:
    """Bytes of the embedded lookup data (for reports)."""
    for child in m._children.values():
        if isinstance(child, LookupScript):
            return len(json.dumps([child.grids, child.addr, child.staff], ensure_ascii=False))
    return 0


__all__ = [
    "lookup_map",
    "address_index",
    "search_example",
    "staff_by_grid",
    "police_by_community",
]
