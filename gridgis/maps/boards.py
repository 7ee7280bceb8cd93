"""``boards/<grid_code>.html``: the printable A4 public board of a grid (网格公示牌).

Policy text: each grid publishes its map and the names of its responsible people (grid
head 网格长, grid workers 网格员) on a public board. The page prints on one A4 sheet
(CSS ``@page A4``): code, chain (street › community › grid), households, buildings, area,
the grid map with its buildings, and the people with their roles. Phone numbers are
personal data and are not printed.
"""

from __future__ import annotations

import html
import json

import geopandas as gpd
import pandas as pd
import shapely

from gridgis.crs import metric_crs_for
from gridgis.layers import STAFF_ROLES
from gridgis.maps.common import CSS_ASSETS, JS_ASSETS, to_geojson
from gridgis.maps.levels import GRID_KIND_LABELS

BOARD_CSS = """
@page { size: A4 portrait; margin: 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "SimHei", sans-serif; margin: 0;
       color: #111; }
.sheet { width: 186mm; min-height: 270mm; margin: 0 auto; padding: 4mm 0; }
h1 { font-size: 24pt; text-align: center; margin: 0 0 2mm; letter-spacing: 4pt; }
.code { text-align: center; font: 700 20pt/1.2 "DejaVu Sans Mono", monospace;
        border: 2px solid #b30000; color: #b30000; padding: 2mm; margin: 2mm 0 3mm; }
.chain { text-align: center; font-size: 12pt; margin-bottom: 3mm; }
#board-map { width: 186mm; height: 120mm; border: 1px solid #555; background: #f7f7f7; }
table { width: 100%; border-collapse: collapse; margin-top: 3mm; font-size: 12pt; }
th, td { border: 1px solid #444; padding: 1.6mm 3mm; text-align: left; }
th { background: #eee; width: 32%; }
.people td.role { width: 32%; font-weight: 600; }
.foot { margin-top: 4mm; font-size: 9pt; color: #555; text-align: right; }
@media print { .noprint { display: none; } }
.leaflet-tooltip.nb-label, .leaflet-tooltip.road-label { background: none; border: none;
  box-shadow: none; font-size: 9pt; color: #666; padding: 0; }
.leaflet-tooltip.road-label { color: #333; font-size: 8pt; }
.leaflet-tooltip.nb-label:before, .leaflet-tooltip.road-label:before { display: none; }
"""


def _people(
    grid_code: str,
    grid: pd.Series,
    staff: pd.DataFrame | None,
    community_staff: pd.DataFrame | None,
) -> list[tuple[str, str]]:
    """(role label, names) rows: grid head, grid workers, then the community police."""
    rows: list[tuple[str, str]] = []
    for role in ("grid_head", "grid_worker"):
        names: list[str] = []
        if staff is not None and len(staff):
            sel = staff[staff["role"].astype(str) == role]
            if "staff_id" in sel.columns:
                sel = sel.sort_values("staff_id")
            names = [str(n) for n in sel["name"]]
        if not names:
            col = "grid_head" if role == "grid_head" else "grid_workers"
            text = grid.get(col)
            if text is not None and not pd.isna(text):
                names = [n for n in str(text).split("、") if n]
        rows.append((STAFF_ROLES[role], "、".join(names) if names else "(待配备)"))
    if community_staff is not None and len(community_staff):
        police = community_staff[community_staff["role"].astype(str) == "police"]
        if len(police):
            rows.append((STAFF_ROLES["police"], "、".join(police["name"].astype(str))))
    return rows


def board_page(
    grid: pd.Series,
    buildings: gpd.GeoDataFrame | None,
    staff: pd.DataFrame | None,
    community_staff: pd.DataFrame | None,
    community_name: str = "",
    street_name: str = "",
    street_code: str = "",
    city: str = "",
    prefix: str = "../static/",
    roads: gpd.GeoDataFrame | None = None,
    neighbours: gpd.GeoDataFrame | None = None,
) -> str:
    """The HTML of one grid's board.

    Parameters
    ----------
    grid
        The grid row (geometry prepared for drawing, lon/lat): grid_code, community_code,
        kind, households, building_count, area_m2.
    buildings
        The grid's buildings (drawn on the map).
    staff, community_staff
        Staff rows of this grid, and of its community (for the community police officer).
    prefix
        Relative URL of the shipped assets from the page.
    roads, neighbours
        Context drawn around the grid: nearby roads (with names) and the neighbouring grids
        (outlines and codes), so residents can find their way on the printed map.
    """
    code = str(grid["grid_code"])
    cc = str(grid.get("community_code", code[:12]))
    hh = pd.to_numeric(pd.Series([grid.get("households")]), errors="coerce").iloc[0]
    nb = grid.get("building_count")
    if (nb is None or pd.isna(nb)) and buildings is not None:
        nb = len(buildings)
    area = pd.to_numeric(pd.Series([grid.get("area_m2")]), errors="coerce").iloc[0]
    if pd.isna(area):
        one = gpd.GeoSeries([grid.geometry], crs="EPSG:4326")
        area = float(one.to_crs(metric_crs_for(one)).area.iloc[0])
    kind = GRID_KIND_LABELS.get(str(grid.get("kind", "residential")), str(grid.get("kind")))
    facts = [
        ("网格类型", kind),
        ("户数", "—" if pd.isna(hh) else f"{int(round(hh)):,} 户"),
        ("建筑", "—" if nb is None or pd.isna(nb) else f"{int(nb):,} 栋"),
        ("面积", f"{area / 10_000:,.2f} 公顷"),
    ]
    people = _people(code, grid, staff, community_staff)
    e = html.escape
    fact_rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    people_rows = "".join(
        f"<tr><td class='role'>{e(r)}</td><td>{e(n)}</td></tr>" for r, n in people
    )
    grid_json = json.dumps(
        {"type": "Feature", "geometry": shapely.geometry.mapping(grid.geometry), "properties": {}},
        ensure_ascii=False,
    )
    b_json = json.dumps(
        to_geojson(buildings, ["households"])
        if buildings is not None and len(buildings)
        else {"type": "FeatureCollection", "features": []},
        ensure_ascii=False,
    )
    empty = {"type": "FeatureCollection", "features": []}
    r_json = json.dumps(
        to_geojson(roads, ["name", "road_class"]) if roads is not None and len(roads) else empty,
        ensure_ascii=False,
    )
    n_json = json.dumps(
        to_geojson(neighbours.assign(code=neighbours["grid_code"].astype(str)), ["code"])
        if neighbours is not None and len(neighbours)
        else empty,
        ensure_ascii=False,
    )
    links = "".join(f'<link rel="stylesheet" href="{prefix}{p}"/>' for _, p in CSS_ASSETS[:1])
    scripts = "".join(f'<script src="{prefix}{p}"></script>' for _, p in JS_ASSETS[:1])
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>网格公示牌 {e(code)}</title>
{links}{scripts}
<style>{BOARD_CSS}</style></head>
<body><div class="sheet">
<h1>网格公示牌</h1>
<div class="chain">{e(city)} {e(street_name)} ({e(street_code)}) › {e(community_name)} ({e(cc)})</div>
<div class="code" id="grid-code">网格编码 {e(code)}</div>
<div id="board-map"></div>
<table class="facts">{fact_rows}</table>
<table class="people"><tr><th colspan="2">网格责任人</th></tr>{people_rows}</table>
<div class="foot">依据: 城乡社区网格化服务管理 · 住宅网格 250–500 户 · 由 gridgis 生成
 <span class="noprint">· <a href="../communities/{e(cc)}.html">社区图</a></span></div>
</div>
<script>
(function(){{
  var grid = {grid_json};
  var buildings = {b_json};
  var map = L.map('board-map', {{zoomControl: false, attributionControl: false,
    dragging: false, scrollWheelZoom: false, doubleClickZoom: false, boxZoom: false,
    keyboard: false, touchZoom: false, zoomSnap: 0.1}});
  var roads = {r_json};
  var neighbours = {n_json};
  L.geoJSON(neighbours, {{style: {{color: '#888', weight: 1, fillOpacity: 0}},
    onEachFeature: function(f, l){{ l.bindTooltip(f.properties.code.slice(-3),
      {{permanent: true, direction: 'center', className: 'nb-label'}}); }}}}).addTo(map);
  L.geoJSON(roads, {{style: function(f){{ return {{color: '#9e9e9e',
    weight: f.properties.road_class === 'arterial' ? 5 : 2.5}}; }},
    onEachFeature: function(f, l){{ if (f.properties.name) l.bindTooltip(f.properties.name,
      {{permanent: true, direction: 'center', className: 'road-label'}}); }}}}).addTo(map);
  var g = L.geoJSON(grid, {{style: {{color: '#b30000', weight: 4, fillColor: '#fee0d2',
                                     fillOpacity: 0.35}}}}).addTo(map);
  L.geoJSON(buildings, {{style: function(f){{ return {{color: '#444', weight: 0.8,
    fillColor: (f.properties.households || 0) > 0 ? '#9e9ac8' : '#d9d9d9',
    fillOpacity: 0.9}}; }}}}).addTo(map);
  L.control.scale({{imperial: false, position: 'bottomleft'}}).addTo(map);
  map.fitBounds(g.getBounds(), {{padding: [60, 60]}});
  window.ggBoard = {{map: map, grid: g}};
}})();
</script>
</body></html>
"""
