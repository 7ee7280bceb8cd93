"""``boards/<grid_code>.html``: the printable A4 public board of a grid (网格公示牌).

Policy text: each grid publishes its map and the names of its responsible people (grid
head 网格长, grid workers 网格员) on a public board. The page prints on one A4 sheet
(CSS ``@page A4``): code, chain (street › community › grid), households, buildings, area,
the grid map with its buildings, north arrow and metric scale, the boundary description
(四至: the roads and neighbouring grids on its east, south, west and north sides, see
:func:`four_sides`), the people with their roles (missing ones as "待配备"), the effective
date, and the issuing body and supervision phone of :class:`~gridgis.standards.BoardRules`.
Phone numbers of staff are personal data and are not printed.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import metric_crs_for
from gridgis.layers import STAFF_ROLES
from gridgis.maps.common import CSS_ASSETS, JS_ASSETS, NORTH_ARROW_SVG, geojson_text
from gridgis.maps.levels import GRID_KIND_LABELS
from gridgis.standards import DEFAULT, BoardRules

#: The four sides of a 四至 in the order a board lists them, with the outward direction.
SIDES: dict[str, tuple[str, float, float]] = {
    "east": ("东至", 1.0, 0.0),
    "south": ("南至", 0.0, -1.0),
    "west": ("西至", -1.0, 0.0),
    "north": ("北至", 0.0, 1.0),
}

BOARD_CSS = """
@page { size: A4 portrait; margin: 0; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "SimHei", sans-serif; margin: 0;
       color: #111; }
.sheet { width: 210mm; height: 297mm; margin: 0 auto; padding: 14mm 12mm 12mm; overflow: hidden; }
h1 { font-size: 24pt; text-align: center; margin: 0 0 2mm; letter-spacing: 4pt; }
.code { text-align: center; font: 700 20pt/1.2 "DejaVu Sans Mono", monospace;
        border: 2px solid #b30000; color: #b30000; padding: 2mm; margin: 2mm 0 3mm; }
.chain { text-align: center; font-size: 12pt; margin-bottom: 3mm; }
#board-map { width: 186mm; height: 112mm; border: 1px solid #555; background: #f7f7f7; }
table { width: 100%; border-collapse: collapse; margin-top: 3mm; font-size: 11.5pt; }
th, td { border: 1px solid #444; padding: 1.3mm 3mm; text-align: left; }
.cols { display: flex; gap: 4mm; }
.cols { align-items: flex-start; }
.cols > table { flex: 1 1 0; table-layout: fixed; }
.sides th, .people th { width: auto; }
.facts th { width: 34%; }
th { background: #eee; width: 32%; }
.people td.role { width: 32%; font-weight: 600; }
.foot { margin-top: 3mm; font-size: 9pt; color: #555; text-align: right; }
.issue { margin-top: 3mm; font-size: 11pt; display: flex; justify-content: space-between; }
.badge { position: absolute; top: 0; left: 0; border: 2px solid #b30000; color: #b30000;
         font-weight: 700; padding: 1mm 2mm; font-size: 10pt; }
.head { position: relative; }
.mapbox { position: relative; }
.north { position: absolute; top: 3mm; right: 3mm; z-index: 1000; background: #fff;
         padding: 1mm; border: 1px solid #888; line-height: 0; }
.sides td.dir { width: 30%; font-weight: 600; }
@media print { .noprint { display: none; } }
.leaflet-tooltip.nb-label, .leaflet-tooltip.road-label { background: none; border: none;
  box-shadow: none; font-size: 9pt; color: #666; padding: 0; }
.leaflet-tooltip.road-label { color: #333; font-size: 8pt; }
.leaflet-tooltip.nb-label:before, .leaflet-tooltip.road-label:before { display: none; }
"""


#: The board map's script; ``__DATA__`` is replaced by :func:`_board_data`'s JSON.
BOARD_SCRIPT = """
(function(){
  var d = __DATA__;
  var map = L.map('board-map', {zoomControl: false, attributionControl: false,
    dragging: false, scrollWheelZoom: false, doubleClickZoom: false, boxZoom: false,
    keyboard: false, touchZoom: false, zoomSnap: 0.1});
  L.geoJSON(d.neighbours, {style: {color: '#888', weight: 1, fillOpacity: 0},
    onEachFeature: function(f, l){ l.bindTooltip(f.properties.code.slice(-3),
      {permanent: true, direction: 'center', className: 'nb-label'}); }}).addTo(map);
  L.geoJSON(d.roads, {style: function(f){ return {color: '#9e9e9e',
    weight: f.properties.road_class === 'arterial' ? 5 : 2.5}; },
    onEachFeature: function(f, l){ if (f.properties.name) l.bindTooltip(f.properties.name,
      {permanent: true, direction: 'center', className: 'road-label'}); }}).addTo(map);
  var g = L.geoJSON(d.grid, {style: {color: '#b30000', weight: 4, fillColor: '#fee0d2',
                                     fillOpacity: 0.35}}).addTo(map);
  L.geoJSON(d.buildings, {style: function(f){ return {color: '#444', weight: 0.8,
    fillColor: (f.properties.households || 0) > 0 ? '#9e9ac8' : '#d9d9d9',
    fillOpacity: 0.9}; }}).addTo(map);
  L.control.scale({imperial: false, position: 'bottomleft'}).addTo(map);
  map.fitBounds(g.getBounds(), {padding: [60, 60]});
  window.ggBoard = {map: map, grid: g};
})();
"""


def _text(value: object) -> str:
    """A cell's text, empty for missing values (never "<NA>" or "nan")."""
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).strip()


def _people(
    grid_code: str,
    grid: pd.Series,
    staff: pd.DataFrame | None,
    community_staff: pd.DataFrame | None,
    missing: str = "待配备",
) -> list[tuple[str, str]]:
    """(role label, names) rows: grid head, grid workers, then the community police;
    ``missing`` where a role has nobody."""
    rows: list[tuple[str, str]] = []
    for role in ("grid_head", "grid_worker"):
        names: list[str] = []
        if staff is not None and len(staff):
            sel = staff[staff["role"].astype(str) == role]
            if "staff_id" in sel.columns:
                sel = sel.sort_values("staff_id")
            names = [t for t in map(_text, sel["name"]) if t]
        if not names:
            col = "grid_head" if role == "grid_head" else "grid_workers"
            names = [n for n in _text(grid.get(col)).split("、") if n]
        rows.append((STAFF_ROLES[role], "、".join(names) if names else missing))
    police: list[str] = []
    if community_staff is not None and len(community_staff):
        sel = community_staff[community_staff["role"].astype(str) == "police"]
        police = [t for t in map(_text, sel["name"]) if t]
    rows.append((STAFF_ROLES["police"], "、".join(police) if police else missing))
    return rows


def _side_parts(poly: shapely.Geometry) -> dict[str, shapely.Geometry]:
    """The boundary of a polygon split by the way each edge faces: an edge belongs to the
    side (east, south, west, north) nearest its outward normal."""
    if poly.geom_type == "MultiPolygon":
        poly = max(poly.geoms, key=lambda p: p.area)
    ring = np.asarray(shapely.geometry.polygon.orient(poly, 1.0).exterior.coords)
    a, b = ring[:-1], ring[1:]
    d = b - a
    # counter-clockwise exterior: the outward normal of (dx, dy) is (dy, -dx)
    nx, ny = d[:, 1], -d[:, 0]
    keys = list(SIDES)
    score = np.stack([nx * SIDES[k][1] + ny * SIDES[k][2] for k in keys])
    side = score.argmax(axis=0)
    out = {}
    for i, k in enumerate(keys):
        sel = np.flatnonzero((side == i) & (np.hypot(d[:, 0], d[:, 1]) > 0))
        if len(sel):
            out[k] = shapely.MultiLineString([[tuple(a[j]), tuple(b[j])] for j in sel])
    return out


def _along(lines: np.ndarray, side: str) -> np.ndarray:
    """Length (m) of each line running along a side: per segment, its extent parallel to
    the side minus its extent across it (a cross street touching the side counts 0)."""
    _, ox, oy = SIDES[side]
    out = np.zeros(len(lines))
    for i, geom in enumerate(lines):
        total = 0.0
        for part in shapely.get_parts(shapely.get_parts(geom)):
            if part.is_empty or part.geom_type != "LineString":
                continue
            d = np.diff(np.asarray(part.coords)[:, :2], axis=0)
            across = np.abs(d[:, 0] * ox + d[:, 1] * oy)
            parallel = np.abs(d[:, 0] * oy - d[:, 1] * ox)
            total += float(np.clip(parallel - across, 0, None).sum())
        out[i] = total
    return out


@functools.lru_cache(maxsize=16)
def _is_geographic(crs: str) -> bool:
    import pyproj

    return bool(pyproj.CRS.from_user_input(crs).is_geographic)


def _local_metres(geom: shapely.Geometry, crs: str):
    """A function mapping geometries of ``crs`` to metres around ``geom``: for lon/lat an
    equirectangular projection at the grid's centre (a grid spans under a kilometre, where
    it is within 0.1 % of a Gauss-Krüger zone); projected coordinates as they are."""
    if not _is_geographic(crs):
        return lambda g: g
    c = geom.centroid
    kx = 111_320.0 * np.cos(np.radians(c.y))
    ky = 110_574.0

    def to_m(g):
        return shapely.transform(g, lambda xy: (xy - (c.x, c.y)) * (kx, ky))

    return to_m


def four_sides(
    grid_geom: shapely.Geometry,
    roads: gpd.GeoDataFrame | None,
    neighbours: gpd.GeoDataFrame | None,
    rules: BoardRules = DEFAULT.board,
    crs: str = "EPSG:4326",
) -> dict[str, str]:
    """四至: what bounds a grid on its east, south, west and north sides.

    For each side (the boundary edges facing that way) the named road running along it —
    the most road length parallel to the side within ``rules.road_search_m`` metres of
    it — or else the
    neighbouring grid sharing the most of that side (at least
    ``rules.neighbour_min_shared_m`` metres), or else "社区边界" (the grid's side is its
    community's edge, nothing beyond it in the workspace).

    Parameters
    ----------
    grid_geom
        The grid polygon, in ``crs``.
    roads
        Roads near the grid (``name``), in ``crs``.
    neighbours
        Neighbouring grids (``grid_code``), in ``crs``.

    Returns
    -------
    dict
        ``{"east": "中山路", "south": "网格 001-004", ...}`` for the four sides.
    """
    to_m = _local_metres(grid_geom, crs)
    parts = _side_parts(to_m(grid_geom))
    road_m = None
    if roads is not None and len(roads) and "name" in roads.columns:
        road_names = roads["name"].map(_text).to_numpy()
        keep = road_names != ""
        if keep.any():
            names, which = np.unique(road_names[keep], return_inverse=True)
            road_m = to_m(roads.geometry.values[keep])
    nb_m = None
    if neighbours is not None and len(neighbours):
        nb_m = to_m(neighbours.geometry.values)
        nb_codes = neighbours["grid_code"].astype(str).to_numpy()
    out = {}
    for side in SIDES:
        part = parts.get(side)
        text = ""
        if part is not None and road_m is not None:
            zone = part.buffer(rules.road_search_m, cap_style="flat")
            lengths = _along(shapely.intersection(road_m, zone), side)
            by_name = np.bincount(which, weights=lengths, minlength=len(names))
            if by_name.max() >= rules.neighbour_min_shared_m:
                text = str(names[int(np.argmax(by_name))])
        if not text and part is not None and nb_m is not None:
            shared = shapely.length(shapely.intersection(shapely.boundary(nb_m), part.buffer(1.0)))
            k = int(np.argmax(shared))
            if shared[k] >= rules.neighbour_min_shared_m:
                code = nb_codes[k]
                text = f"网格 {code[9:12]}-{code[-3:]}"
        out[side] = text or "社区边界"
    return out


def with_valid_from(grids: pd.DataFrame, versions: pd.DataFrame | None) -> pd.DataFrame:
    """``grids`` with ``valid_from``: each grid's open version in layer ``grid_versions``
    (``valid_to`` empty; the latest start if several), where the grids layer does not
    carry the column itself. Grids without a version get NA."""
    if "valid_from" in grids.columns or versions is None or len(versions) == 0:
        return grids
    v = pd.DataFrame(versions)
    if not {"grid_code", "valid_from"} <= set(v.columns):
        return grids
    end = v["valid_to"].astype("string").fillna("") if "valid_to" in v.columns else ""
    v = v[(end == "").to_numpy()] if "valid_to" in v.columns else v
    start = (
        v.assign(_s=v["valid_from"].astype("string"))
        .groupby(v["grid_code"].astype("string").str.strip())["_s"]
        .max()
    )
    out = grids.copy()
    out["valid_from"] = out["grid_code"].astype("string").str.strip().map(start)
    return out


def effective_date(grid: pd.Series, fallback: str | None = None) -> str:
    """The date a board takes effect: the grid version's ``valid_from`` when the layer has
    it, else ``fallback`` (the grids layer's write date), as YYYY-MM-DD ("" if neither)."""
    for value in (grid.get("valid_from"), fallback):
        text = _text(value)
        if text:
            try:
                return pd.Timestamp(text).date().isoformat()
            except (ValueError, TypeError):
                return text[:10]
    return ""


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
    rules: BoardRules | None = None,
    written: str | None = None,
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
        (outlines and codes), so residents can find their way on the printed map; also
        what the boundary description (四至, :func:`four_sides`) is computed from.
    rules
        Board texts and 四至 distances (default ``standards.DEFAULT.board``).
    written
        Write date of the grids layer: the effective date when the grid has no
        ``valid_from`` (see :func:`effective_date`).
    """
    rules = rules or DEFAULT.board
    code = str(grid["grid_code"])
    cc = str(grid.get("community_code", code[:12]))
    facts = _facts(grid, buildings)
    sides = four_sides(grid.geometry, roads, neighbours, rules)
    people = _people(code, grid, staff, community_staff, rules.missing_person)
    when = effective_date(grid, written) or dt.date.today().isoformat()
    e = html.escape
    side_rows = "".join(
        f"<tr><td class='dir'>{e(SIDES[k][0])}</td><td>{e(v)}</td></tr>" for k, v in sides.items()
    )
    issue_left = f"发布单位: {e(rules.issuer)}" if rules.issuer else ""
    issue_right = f"监督电话: {e(rules.supervision_phone)}" if rules.supervision_phone else ""
    badge = f"<div class='badge'>{e(rules.logo_text)}</div>" if rules.logo_text else ""
    fact_rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    people_rows = "".join(
        f"<tr><td class='role'>{e(r)}</td><td>{e(n)}</td></tr>" for r, n in people
    )
    script = BOARD_SCRIPT.replace("__DATA__", _board_data(grid, buildings, roads, neighbours))
    links = "".join(f'<link rel="stylesheet" href="{prefix}{p}"/>' for _, p in CSS_ASSETS[:1])
    scripts = "".join(f'<script src="{prefix}{p}"></script>' for _, p in JS_ASSETS[:1])
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>{e(rules.title)} {e(code)}</title>
{links}{scripts}
<style>{BOARD_CSS}</style></head>
<body><div class="sheet">
<div class="head">{badge}<h1>{e(rules.title)}</h1></div>
<div class="chain">{e(city)} {e(street_name)} ({e(street_code)}) › {e(community_name)} ({e(cc)})</div>
<div class="code" id="grid-code">网格编码 {e(code)}</div>
<div class="mapbox"><div id="board-map"></div><div class="north">{NORTH_ARROW_SVG}</div></div>
<div class="cols"><table class="facts">{fact_rows}</table>
<table class="sides"><tr><th colspan="2">四至 (网格边界)</th></tr>{side_rows}</table></div>
<table class="people"><tr><th colspan="2">网格责任人</th></tr>{people_rows}</table>
<div class="issue"><span id="issuer">{issue_left}</span><span id="effective">生效日期: {e(when)}</span>
<span id="phone">{issue_right}</span></div>
<div class="foot">依据: 城乡社区网格化服务管理 · 住宅网格 250–500 户 · 由 gridgis 生成
 <span class="noprint">· <a href="../communities/{e(cc)}.html">社区图</a></span></div>
</div>
<script>{script}</script>
</body></html>
"""


def _facts(grid: pd.Series, buildings: gpd.GeoDataFrame | None) -> list[tuple[str, str]]:
    """(label, text) rows of a board: kind, households, buildings, area (hectares)."""
    hh = pd.to_numeric(pd.Series([grid.get("households")]), errors="coerce").iloc[0]
    nb = grid.get("building_count")
    if (nb is None or pd.isna(nb)) and buildings is not None:
        nb = len(buildings)
    area = pd.to_numeric(pd.Series([grid.get("area_m2")]), errors="coerce").iloc[0]
    if pd.isna(area):
        one = gpd.GeoSeries([grid.geometry], crs="EPSG:4326")
        area = float(one.to_crs(metric_crs_for(one)).area.iloc[0])
    kind = GRID_KIND_LABELS.get(str(grid.get("kind", "residential")), str(grid.get("kind")))
    return [
        ("网格类型", kind),
        ("户数", "—" if pd.isna(hh) else f"{int(round(hh)):,} 户"),
        ("建筑", "—" if nb is None or pd.isna(nb) else f"{int(nb):,} 栋"),
        ("面积", f"{area / 10_000:,.2f} 公顷"),
    ]


def _board_data(
    grid: pd.Series,
    buildings: gpd.GeoDataFrame | None,
    roads: gpd.GeoDataFrame | None,
    neighbours: gpd.GeoDataFrame | None,
) -> str:
    """The board map's data as one JSON object: grid, buildings, roads, neighbours."""
    feature = json.dumps(
        {"type": "Feature", "geometry": shapely.geometry.mapping(grid.geometry), "properties": {}}
    )
    return (
        f'{{"grid":{feature},'
        f'"buildings":{geojson_text(buildings, {"households": "households"})},'
        f'"roads":{geojson_text(roads, {"name": "name", "road_class": "road_class"})},'
        f'"neighbours":{geojson_text(neighbours, {"code": "grid_code"})}}}'
    )
