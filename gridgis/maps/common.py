"""Shared pieces of the map pages: offline assets, base maps, geometry preparation, legends,
labels and point layers.

Every page is a :class:`folium.Map` whose JavaScript and CSS come from ``gridgis/static``
(Leaflet and folium's marker plugin, shipped with gridgis), referenced by a relative path
or inlined; nothing is fetched from a CDN. Only the tiles of a chosen base map leave the
machine.
"""

from __future__ import annotations

import html
import json
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import folium
import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.map import FitBounds

from gridgis.crs import metric_crs_for, wgs84_to_offset

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
"""Folder of the shipped browser assets (Leaflet, awesome-markers)."""

Basemap = Literal["osm", "tianditu", "amap", "none"]
BASEMAPS: tuple[str, ...] = ("osm", "tianditu", "amap", "none")

#: (name, path relative to ``static/``) of the JavaScript every page loads.
JS_ASSETS: list[tuple[str, str]] = [
    ("leaflet", "leaflet/leaflet.js"),
    ("awesome_markers", "awesome-markers/leaflet.awesome-markers.min.js"),
]
#: (name, path relative to ``static/``) of the CSS every page loads.
CSS_ASSETS: list[tuple[str, str]] = [
    ("leaflet_css", "leaflet/leaflet.css"),
    ("awesome_markers_css", "awesome-markers/leaflet.awesome-markers.css"),
]

#: Colour ramp (light to dark, ColorBrewer YlOrRd 7) for household choropleths.
HOUSEHOLD_COLOURS = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")

#: One distinct colour per facility category (cycled), used for markers and radii.
CATEGORY_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
    "#6baed6",
    "#fd8d3c",
    "#74c476",
    "#9e9ac8",
    "#969696",
    "#9c9ede",
)

ROAD_STYLE = {
    "arterial": ("#555555", 4.0),
    "secondary": ("#777777", 3.0),
    "branch": ("#999999", 2.0),
    "path": ("#bbbbbb", 1.0),
}
"""Colour and weight (pixels) per road class."""

DECLUTTER_GAP_PX = 2
"""Least gap (screen pixels) between two labels both shown (the white halo needs ~2 px)."""

PAGE_CSS = """
.gg-label{background:none;border:none;}
.gg-label div{font:600 11px/1.1 "Noto Sans CJK SC","Microsoft YaHei",sans-serif;color:#111;
 white-space:nowrap;text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff;
 transform:translate(-50%,-50%);display:inline-block;text-align:center;}
.gg-label.gg-street div{font-size:15px;color:#fff;background:#08306b;padding:2px 6px;
 border-radius:3px;text-shadow:none;transform:translate(-50%,-190%);opacity:.9;}
.gg-label.gg-community div{font-size:12px;color:#3f007d;}
.gg-label.gg-grid div{font-size:10px;color:#000;}
.gg-label.gg-grid b.seq{font-size:14px;}
.gg-label.gg-grid span.pre{font-size:8px;color:#333;font-weight:400;}
.gg-label.gg-grid b{font-size:12px;}
.gg-label.gg-flag div{color:#b30000;}
.gg-hide-gg-community .gg-community,.gg-hide-gg-grid .gg-grid,.gg-hide-gg-street .gg-street{
 display:none;}
.gg-legend,.gg-title{background:rgba(255,255,255,.92);padding:6px 9px;border-radius:4px;
 box-shadow:0 1px 4px rgba(0,0,0,.35);font:12px/1.4 "Noto Sans CJK SC","Microsoft YaHei",
 sans-serif;max-width:340px;}
.gg-title{font-size:14px;}
.gg-title a{color:#08519c;}
.gg-legend i{display:inline-block;width:14px;height:12px;margin-right:5px;
 vertical-align:middle;border:1px solid #888;}
.gg-legend table{border-collapse:collapse;}
.gg-legend .ln{display:inline-block;width:24px;height:0;border:none;vertical-align:middle;
 margin-right:4px;}
.gg-legend td{padding:0 4px;}
.gg-label.gg-grid span.hh{font-size:10px;font-weight:600;color:#08306b;}
.leaflet-container{background:#f2efe9;}
html,body,.folium-map{width:100%;margin:0;padding:0;}
.gg-north{background:rgba(255,255,255,.85);border-radius:3px;padding:2px 4px 0;
 box-shadow:0 1px 3px rgba(0,0,0,.3);line-height:0;}
.gg-print{display:none;}
@media print{
 @page{size:A4 landscape;margin:8mm;}
 html,body{width:100%;height:100%;}
 .leaflet-control-zoom,.leaflet-control-layers,.leaflet-control-attribution,.gg-noprint{
  display:none !important;}
 .gg-print{display:block;}
 .gg-title,.gg-legend,.gg-north{box-shadow:none;border:1px solid #444;}
 .gg-title{font-size:16px;}
}
"""

NORTH_ARROW_SVG = (
    '<svg width="26" height="40" viewBox="0 0 26 40" role="img" aria-label="北">'
    '<text x="13" y="11" text-anchor="middle" font-size="11" font-weight="700" '
    'font-family="sans-serif">N</text><polygon points="13,13 22,38 13,32" fill="#111"/>'
    '<polygon points="13,13 4,38 13,32" fill="#fff" stroke="#111" stroke-width="1"/></svg>'
)
"""North arrow drawn on every map and board (maps are north-up: Web Mercator)."""


_ENV = jinja2.Environment(autoescape=False)
# ``tojson`` keeps CJK as UTF-8 (not backslash-u escapes: half the bytes); <, >, & and ' are
# still escaped, so the JSON is safe inside <script>.
_ENV.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False}


def Template(source: str) -> jinja2.Template:  # noqa: N802  (used like a class)
    """A Jinja template for the map elements' scripts (see ``_ENV``)."""
    return _ENV.from_string(source)


# --------------------------------------------------------------------------------------
# Assets and base maps
# --------------------------------------------------------------------------------------


def asset_prefix(depth: int) -> str:
    """Relative path from a page ``depth`` folders below the output root to ``static/``."""
    return "../" * depth + "static/"


def new_map(
    bounds: Sequence[float],
    basemap: Basemap = "none",
    tianditu_key: str | None = None,
    prefix: str = "static/",
    title: str | None = None,
) -> folium.Map:
    """A folium map with local assets, the chosen base map and the page CSS.

    Parameters
    ----------
    bounds
        (minx, miny, maxx, maxy) in lon/lat degrees, already in the drawing CRS.
    basemap
        ``osm``, ``tianditu`` (needs ``tianditu_key``), ``amap`` (GCJ-02 tiles: the
        overlays must have been shifted with :func:`prepare`) or ``none`` (offline).
    prefix
        Relative URL of the folder holding the shipped assets, from the page.
    """
    if basemap not in BASEMAPS:
        raise ValueError(f"base map '{basemap}': use one of {', '.join(BASEMAPS)}")
    if basemap == "tianditu" and not tianditu_key:
        raise ValueError(
            "base map 'tianditu' needs a key: the tianditu_key parameter "
            "(free from https://console.tianditu.gov.cn)"
        )
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=14,
        tiles=None,
        prefer_canvas=False,
        control_scale=False,
        max_zoom=20,
        # fractional zoom: a page fills its window with its area (a narrow street fitted
        # at a whole zoom level can be drawn at half the size the window allows)
        zoom_snap=0.25,
    )
    m.default_js = [(name, prefix + path) for name, path in JS_ASSETS]
    m.default_css = [(name, prefix + path) for name, path in CSS_ASSETS]
    add_basemap(m, basemap, tianditu_key)
    m.get_root().header.add_child(
        RawElement(f'<link rel="icon" href="data:,"><style>{PAGE_CSS}</style>'), name="gg_css"
    )
    if title:
        m.get_root().header.add_child(
            RawElement(f"<title>{html.escape(title)}</title>"), name="gg_title"
        )
    # fitted at once, not animated from zoom_start: the label layers read the fitted zoom
    # when their scripts run (zoom threshold, decluttering)
    fit = FitBounds([[miny, minx], [maxy, maxx]], padding=(12, 12))
    fit.options["animate"] = False
    m.add_child(fit)
    m.get_root().html.add_child(RawElement(PATTERN_DEFS), name="gg_patterns")
    MetricScale().add_to(m)
    HtmlControl(NORTH_ARROW_SVG, position="bottomleft", css_class="gg-north").add_to(m)
    return m


def add_basemap(m: folium.Map, basemap: Basemap, tianditu_key: str | None = None) -> None:
    """Add the tile layer(s) of a base map (nothing for ``none``)."""
    if basemap == "osm":
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap 底图", max_zoom=19).add_to(m)
    elif basemap == "tianditu":
        for layer, name, overlay in (
            ("vec", "天地图 矢量底图", False),
            ("cva", "天地图 注记", True),
        ):
            url = (
                "https://t{s}.tianditu.gov.cn/" + layer + "_w/wmts?SERVICE=WMTS&REQUEST="
                "GetTile&VERSION=1.0.0&LAYER=" + layer + "&STYLE=default&TILEMATRIXSET=w"
                "&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=" + str(tianditu_key)
            )
            folium.TileLayer(
                url,
                attr="天地图 © 国家地理信息公共服务平台",
                name=name,
                subdomains="01234567",
                overlay=overlay,
                max_zoom=18,
            ).add_to(m)
    elif basemap == "amap":
        folium.TileLayer(
            "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1"
            "&scale=1&style=8&x={x}&y={y}&z={z}",
            attr="高德地图 © AutoNavi",
            name="高德地图 底图 (GCJ-02)",
            subdomains="1234",
            max_zoom=18,
        ).add_to(m)


def external_urls(page: str) -> list[str]:
    """``src``/``href`` URLs of a page that would be fetched from the network (http(s) or
    protocol-relative ``//host``), excluding tile templates and plain hyperlinks ``<a>``."""
    found = re.findall(
        r"<(?:script|link|img|iframe)\b[^>]*?(?:src|href)\s*=\s*[\"']"
        r"((?:https?:)?//[^\"']+)",
        page,
        flags=re.I,
    )
    found += re.findall(r"url\(\s*[\"']?((?:https?:)?//[^)\"']+)", page, flags=re.I)
    return found


class RawElement(Element):
    """Text already rendered (a header, HTML or script part of a map element): kept as is,
    never compiled as a template."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "RawElement"
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


def _render_macro(self: MacroElement, **kwargs: Any) -> None:
    """:meth:`branca.element.MacroElement.render` without compiling its output.

    branca wraps each rendered part of every map element in ``Element(text)``, which
    compiles the text — the element's whole GeoJSON or label array included — as a Jinja
    template (lexed by regular expressions) only to print it back unchanged: tens of
    thousands of compilations for a city's pages. Here the parts are kept as
    :class:`RawElement`; the templates themselves are compiled once, with their classes.
    """
    figure = self.get_root()
    module = self._template.module.__dict__
    for part, target in (
        ("header", figure.header),
        ("html", figure.html),
        ("script", figure.script),
    ):
        macro = module.get(part)
        if macro is not None:
            target.add_child(RawElement(macro(self, kwargs)), name=self.get_name())
    for element in self._children.values():
        element.render(**kwargs)


_RENDER_LOCK = threading.Lock()


def render_page(m: folium.Map) -> str:
    """The complete HTML of a map; raises if anything would load from the network.

    Rendered with :func:`_render_macro` in place of branca's ``MacroElement.render`` (for
    the duration of the call, under a lock; the output is the same text)."""
    with _RENDER_LOCK:
        original = MacroElement.render
        MacroElement.render = _render_macro
        try:
            page = m.get_root().render()
        finally:
            MacroElement.render = original
    urls = external_urls(page)
    if urls:
        raise RuntimeError(f"page would load external resources: {urls[:3]}")
    return page


def inline_assets(page: str, prefix: str = "static/") -> str:
    """Replace the local asset links of a page by the files' contents (one self-contained
    HTML, e.g. for a notebook). Leaflet's images are inlined as data URLs."""
    import base64

    def css_text(rel: str) -> str:
        text = (STATIC_DIR / rel).read_text(encoding="utf-8")
        folder = (STATIC_DIR / rel).parent

        def data_url(match: re.Match) -> str:
            target = folder / match.group(1)
            if not target.exists():
                return match.group(0)
            b64 = base64.b64encode(target.read_bytes()).decode()
            return f"url(data:image/png;base64,{b64})"

        return re.sub(r"url\(['\"]?(images/[^)'\"]+)['\"]?\)", data_url, text)

    for _, rel in JS_ASSETS:
        js = (STATIC_DIR / rel).read_text(encoding="utf-8").replace("</script", "<\\/script")
        page = page.replace(f'<script src="{prefix}{rel}"></script>', f"<script>{js}</script>")
    for _, rel in CSS_ASSETS:
        page = re.sub(
            r'<link rel="stylesheet" href="' + re.escape(prefix + rel) + r'"\s*/>',
            lambda _m, r=rel: f"<style>{css_text(r)}</style>",
            page,
        )
    return page


# --------------------------------------------------------------------------------------
# Geometry and properties
# --------------------------------------------------------------------------------------


def round_coordinates(geoms: np.ndarray, decimals: int = 6) -> np.ndarray:
    """Round every coordinate (degrees; 6 decimals ≈ 0.1 m) to shrink the pages."""
    return shapely.transform(geoms, lambda c: np.round(c, decimals))


def prepare(
    gdf: gpd.GeoDataFrame,
    tolerance_m: float = 0.0,
    basemap: Basemap = "none",
    decimals: int = 6,
    coverage: bool = False,
) -> gpd.GeoDataFrame:
    """A layer ready to draw: simplified in its metric CRS, in lon/lat, shifted to GCJ-02
    for Amap tiles, coordinates rounded.

    Parameters
    ----------
    tolerance_m
        Simplification tolerance in metres (0: none).
    coverage
        The polygons tile the plane (streets, communities, grids): simplify them together
        so shared edges stay shared (no slivers between neighbours).
    """
    if gdf is None or len(gdf) == 0:
        return gdf
    out = gdf.copy()
    geo = out.geometry.to_crs("EPSG:4326") if out.crs is not None else out.geometry
    if tolerance_m > 0:
        metric = metric_crs_for(out.set_geometry(geo))
        m = geo.to_crs(metric).values
        simplified = None
        if coverage:
            try:
                simplified = shapely.coverage_simplify(m, tolerance_m)
                bad = shapely.is_empty(simplified) | shapely.is_missing(simplified)
                simplified = np.where(bad, m, simplified)
            except Exception:  # not a valid coverage: simplify one by one
                simplified = None
        if simplified is None:
            simplified = shapely.simplify(m, tolerance_m, preserve_topology=True)
        geo = gpd.GeoSeries(simplified, index=out.index, crs=metric).to_crs("EPSG:4326")
    out = out.set_geometry(geo.rename("geometry"), crs="EPSG:4326")
    if out.geometry.name != "geometry":
        out = out.rename_geometry("geometry")
    if basemap == "amap":
        out = wgs84_to_offset(out, "gcj02")
    out["geometry"] = round_coordinates(out.geometry.values, decimals)
    return out


def plain(value: Any) -> Any:
    """A JSON-serialisable Python value (NA → None, numpy scalars → Python)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, np.generic):
        return value.item()
    return value


def _column_values(col: pd.Series) -> list:
    """A column as plain Python values, missing → None."""
    if pd.api.types.is_bool_dtype(col.dtype) and not col.isna().any():
        return col.astype(bool).tolist()
    if pd.api.types.is_integer_dtype(col.dtype) and not col.isna().any():
        return col.astype("int64").tolist()
    if pd.api.types.is_float_dtype(col.dtype) and str(col.dtype) == "float64":
        return [None if v != v else v for v in col.tolist()]
    return [plain(v) for v in col.astype(object).tolist()]


def to_geojson(gdf: gpd.GeoDataFrame, columns: Iterable[str]) -> dict:
    """A GeoJSON FeatureCollection with only ``columns`` as properties (the page size is
    the properties plus the rounded coordinates)."""
    cols = [c for c in columns if c in gdf.columns]
    geoms = shapely.to_geojson(np.asarray(gdf.geometry.values))
    values = [_column_values(gdf[c]) for c in cols]
    feats = []
    for i, geom in enumerate(geoms):
        if geom is None:
            continue
        feats.append(
            {
                "type": "Feature",
                "geometry": json.loads(geom),
                "properties": {c: v[i] for c, v in zip(cols, values, strict=True)},
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def geojson_text(gdf: gpd.GeoDataFrame | None, columns: dict[str, str]) -> str:
    """A GeoJSON FeatureCollection as text, properties ``{name: gdf[column]}``: geometries
    encoded once by GEOS and joined as text (no encoding, decoding and encoding again per
    feature); ``</`` escaped so the text is safe inside ``<script>``."""
    if gdf is None or len(gdf) == 0:
        return '{"type":"FeatureCollection","features":[]}'
    geoms = shapely.to_geojson(np.asarray(gdf.geometry.values))
    values = {
        k: _column_values(gdf[c]) if c in gdf.columns else [None] * len(gdf)
        for k, c in columns.items()
    }
    keys = list(values)
    parts = []
    for i, geom in enumerate(geoms):
        if geom is None:
            continue
        props = json.dumps({k: values[k][i] for k in keys}, ensure_ascii=False)
        parts.append(f'{{"type":"Feature","geometry":{geom},"properties":{props}}}')
    text = '{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}"
    return text.replace("</", "<\\/")


def class_breaks(values: pd.Series, classes: int = 7) -> list[float]:
    """Quantile class breaks (upper bounds) for a household choropleth.

    Breaks are data values (no interpolation between two features), and there are at
    most as many classes as distinct values: four communities get at most four classes.
    Zero and missing values are left out: a polygon without households (a unit or
    open-land grid) is not a class of the ramp but drawn apart (see :data:`NO_HOUSEHOLDS`),
    so a legend never reads "≤ 0".
    """
    v = pd.to_numeric(values, errors="coerce").dropna()
    v = v[v > 0]
    if v.empty:
        return [0.0]
    k = min(classes, v.nunique())
    qs = np.unique(np.round(np.quantile(v, np.linspace(0, 1, k + 1)[1:], method="inverted_cdf")))
    return [float(q) for q in qs]


#: Fill of a polygon without households (not a class of the household ramp).
NO_HOUSEHOLDS = "#f0f0f0"


def colour_for(
    value: Any, breaks: Sequence[float], colours: Sequence[str] = HOUSEHOLD_COLOURS
) -> str:
    """Colour of ``value`` in a class-break scheme (grey for missing, :data:`NO_HOUSEHOLDS`
    for zero households)."""
    value = plain(value)
    if value is None:
        return "#cccccc"
    if float(value) <= 0:
        return NO_HOUSEHOLDS
    idx = int(np.searchsorted(np.asarray(breaks), float(value), side="left"))
    idx = min(idx, len(breaks) - 1)
    # spread the used classes over the ramp
    pos = 0 if len(breaks) == 1 else round(idx * (len(colours) - 1) / (len(breaks) - 1))
    return colours[pos]


def choropleth_legend_rows(
    breaks: Sequence[float],
    colours: Sequence[str] = HOUSEHOLD_COLOURS,
    values: pd.Series | None = None,
) -> list[tuple[str, str]]:
    """(colour, label) rows of a class-break legend.

    With ``values`` (the data drawn), each class is labelled by the smallest and largest
    value actually in it ("312 – 389", or "2,754" for a class of one value), classes
    holding nothing are left out, and polygons without households get their own row; the
    labels then describe what is on the map. Without, by the breaks ("≤ b1", "b1 – b2").
    """
    if values is None:
        rows = []
        lower = 0.0
        for i, b in enumerate(breaks):
            label = f"≤ {b:,.0f}" if i == 0 else f"{lower:,.0f} – {b:,.0f}"
            rows.append((colour_for(b, breaks, colours), label))
            lower = b
        return rows
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    pos = v[v > 0]
    rows = []
    idx = np.minimum(
        np.searchsorted(np.asarray(breaks), pos.to_numpy(), side="left"), len(breaks) - 1
    )
    for i, b in enumerate(breaks):
        inside = pos.to_numpy()[idx == i]
        if len(inside) == 0:
            continue
        lo, hi = float(inside.min()), float(inside.max())
        label = f"{lo:,.0f}" if lo == hi else f"{lo:,.0f} – {hi:,.0f}"
        rows.append((colour_for(b, breaks, colours), label))
    if (v <= 0).any():
        rows.append((NO_HOUSEHOLDS, "0 (无住户)"))
    return rows


# --------------------------------------------------------------------------------------
# Map elements
# --------------------------------------------------------------------------------------


class MetricScale(MacroElement):
    """Leaflet's scale bar in metres only (folium's own also shows feet)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        L.control.scale({imperial: false, metric: true, maxWidth: 160,
                         position: 'bottomleft'}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self) -> None:
        super().__init__()
        self._name = "MetricScale"


class HtmlControl(MacroElement):
    """A Leaflet control holding HTML (title, legend, search box)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(){
          var ctl = L.control({position: {{ this.position|tojson }}});
          ctl.onAdd = function(){
            var div = L.DomUtil.create('div', {{ this.css_class|tojson }});
            div.innerHTML = {{ this.html|tojson }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
          };
          ctl.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
    """)

    def __init__(
        self, html_text: str, position: str = "bottomright", css_class: str = "gg-legend"
    ) -> None:
        super().__init__()
        self._name = "HtmlControl"
        self.html = html_text
        self.position = position
        self.css_class = css_class


def swatch_css(colour: str, opacity: float = 1.0) -> str:
    """CSS ``background`` of a legend swatch showing ``colour`` as drawn at ``opacity``
    over the map's background (a plain colour, or a ``pattern:`` swatch, see
    :data:`PATTERNS`)."""
    if colour.startswith("pattern:"):
        return PATTERNS[colour.split(":", 1)[1]][1]
    c = colour.lstrip("#")
    if len(c) != 6 or opacity >= 1:
        return f"background:{colour}"
    r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
    return f"background:rgba({r},{g},{b},{opacity:g})"


#: SVG fill patterns of the maps: name → (SVG ``<pattern>``, CSS swatch for the legend).
PATTERNS: dict[str, tuple[str, str]] = {
    "unit": (
        '<pattern id="gg-unit" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="8" height="8" fill="#d9d9d9" '
        'fill-opacity="0.5"/><line x1="0" y1="0" x2="0" y2="8" stroke="#525252" '
        'stroke-width="2.5"/></pattern>',
        "background:repeating-linear-gradient(45deg,#525252 0 2px,#e6e6e6 2px 6px)",
    ),
    "open": (
        '<pattern id="gg-open" width="10" height="10" patternUnits="userSpaceOnUse">'
        '<rect width="10" height="10" fill="#e5f5e0" fill-opacity="0.6"/>'
        '<circle cx="5" cy="5" r="1.4" fill="#41ab5d"/></pattern>',
        "background:radial-gradient(circle,#41ab5d 1.4px,#eef8ea 1.6px) 0 0/7px 7px",
    ),
}

#: Hidden SVG holding the patterns; a path's ``fill="url(#gg-unit)"`` refers to it.
PATTERN_DEFS = (
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    + "".join(p for p, _ in PATTERNS.values())
    + "</defs></svg>"
)


def legend(
    title: str,
    rows: Sequence[tuple[str, str]],
    note: str = "",
    position: str = "bottomright",
    opacity: float = 1.0,
) -> HtmlControl:
    """A legend: a title, (colour, label) rows and a note line; swatches are drawn at the
    map's fill ``opacity`` (see :func:`swatch_css`)."""
    body = "".join(
        f"<div><i style='{swatch_css(c, opacity)}'></i>{html.escape(label)}</div>"
        for c, label in rows
    )
    extra = f"<div style='margin-top:4px;color:#555'>{note}</div>" if note else ""
    return HtmlControl(f"<b>{html.escape(title)}</b>{body}{extra}", position=position)


def title_box(text_html: str, when: str | None = None) -> HtmlControl:
    """The page title (with breadcrumb links) in the top-left corner; printed with the
    map's date under it (``when``, default today, ISO date)."""
    import datetime as _dt

    day = when or _dt.date.today().isoformat()
    return HtmlControl(
        text_html + f"<div class='gg-print gg-date'>制图日期 {html.escape(day)} · gridgis</div>",
        position="topleft",
        css_class="gg-title",
    )


class LabelLayer(MacroElement):
    """Text labels (L.divIcon markers, not interactive) added to a parent FeatureGroup,
    decluttered on screen.

    ``labels`` is a list of ``[lat, lon, text, extra_css_class]`` in priority order (first
    wins); one compact JSON array instead of one JavaScript statement per label. With
    ``zoom_offset`` > 0 the labels show only from the page's fitted zoom + offset on (for
    pages with hundreds of them: unreadable when all shown, and slow to paint).

    Decluttering: when the group is added, after every zoom and when the page is resized,
    the labels are walked in priority order and a label whose screen box (plus
    ``DECLUTTER_GAP_PX`` around it) meets a label already shown is hidden with CSS
    ``visibility`` (kept in the page, so it comes back when zooming in leaves room). Three
    passes, so the browser lays the page out once: reset every label, read every box,
    hide. Labels hidden by the zoom threshold are not counted.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(){
          var data = {{ this.labels|tojson }};
          var group = {{ this._parent.get_name() }};
          var map = {{ this._parent._parent.get_name() }};
          var css = {{ this.css_class|tojson }}, gap = {{ this.gap_px }};
          {% if this.zoom_offset %}
          // many labels: shown from the fitted zoom + offset on (hidden by CSS, not painted)
          var minZoom = map.getZoom() + {{ this.zoom_offset }};
          {% endif %}
          var markers = [];
          for (var i = 0; i < data.length; i++) {
            var d = data[i];
            markers.push(L.marker([d[0], d[1]], {interactive: false, keyboard: false,
              icon: L.divIcon({className: 'gg-label ' + css + ' ' + (d[3] || ''),
                               html: '<div>' + d[2] + '</div>', iconSize: null})}).addTo(group));
          }
          // show labels in priority order; hide one whose box meets a label already shown
          var declutter = function(){
            {% if this.zoom_offset %}
            var below = map.getZoom() < minZoom;
            map.getContainer().classList.toggle('gg-hide-' + css, below);
            if (below) { return; }
            {% endif %}
            var els = [], boxes = [], shown = [], i, j, b, s, hit;
            for (i = 0; i < markers.length; i++) {  // 1. reset (writes only)
              var el = markers[i].getElement();
              if (el) { el.style.visibility = ''; els.push(el); }
            }
            for (i = 0; i < els.length; i++) {  // 2. measure (one layout)
              boxes.push(els[i].firstChild.getBoundingClientRect());
            }
            for (i = 0; i < els.length; i++) {  // 3. hide
              b = boxes[i];
              if (!b.width && !b.height) { continue; }  // not displayed
              for (j = 0, hit = false; j < shown.length && !hit; j++) {
                s = shown[j];
                hit = b.left < s.right + gap && s.left < b.right + gap
                      && b.top < s.bottom + gap && s.top < b.bottom + gap;
              }
              if (hit) { els[i].style.visibility = 'hidden'; } else { shown.push(b); }
            }
          };
          map.on('zoomend resize', declutter);
          group.on('add', declutter);
          if (map.hasLayer(group)) { declutter(); }
        })();
        {% endmacro %}
    """)

    def __init__(self, labels: list[list[Any]], css_class: str = "", zoom_offset: int = 0) -> None:
        super().__init__()
        self._name = "LabelLayer"
        self.labels = labels
        self.css_class = css_class
        self.zoom_offset = int(zoom_offset)
        self.gap_px = DECLUTTER_GAP_PX


def label_points(
    gdf: gpd.GeoDataFrame,
    texts: Sequence[str],
    extra: Sequence[str] | None = None,
    escape: bool = True,
) -> list[list[Any]]:
    """``[lat, lon, text, css]`` at each polygon's representative point; the text is
    HTML-escaped unless ``escape=False`` (the caller escaped it)."""
    pts = shapely.point_on_surface(gdf.geometry.values)
    xs, ys = shapely.get_x(pts), shapely.get_y(pts)
    extra = list(extra) if extra is not None else [""] * len(gdf)
    return [
        [round(float(y), 6), round(float(x), 6), html.escape(str(t)) if escape else str(t), e]
        for x, y, t, e in zip(xs, ys, texts, extra, strict=True)
    ]


class PointLayer(MacroElement):
    """Many points as canvas circle markers from one compact array, added to a parent
    FeatureGroup. ``points`` is ``[[lat, lon, tooltip, popup?], ...]`` (HTML text)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(){
          var data = {{ this.points|tojson }};
          var group = {{ this._parent.get_name() }};
          var map = {{ this._parent._parent.get_name() }};
          // markers in their own pane above every fill (overlayPane 400), under labels
          if (!map.getPane('ggPoints')) { map.createPane('ggPoints').style.zIndex = 450; }
          var renderer = L.canvas({padding: 0.5, pane: 'ggPoints'});
          var style = {{ this.style|tojson }};
          for (var i = 0; i < data.length; i++) {
            var d = data[i];
            var opts = Object.assign({renderer: renderer}, style);
            var mk = L.circleMarker([d[0], d[1]], opts);
            if (d[2]) { mk.bindTooltip(d[2]); }
            if (d[3]) { mk.bindPopup(d[3], {maxWidth: 280}); }
            mk.addTo(group);
          }
        })();
        {% endmacro %}
    """)

    def __init__(self, points: list[list[Any]], style: dict[str, Any]) -> None:
        super().__init__()
        self._name = "PointLayer"
        self.points = points
        self.style = style


def point_rows(
    gdf: gpd.GeoDataFrame,
    tooltips: Sequence[str] | None = None,
    popups: Sequence[str] | None = None,
) -> list[list[Any]]:
    """``[lat, lon, tooltip, popup]`` rows at each geometry's representative point."""
    pts = shapely.point_on_surface(gdf.geometry.values)
    xs, ys = np.round(shapely.get_x(pts), 6), np.round(shapely.get_y(pts), 6)
    tips = list(tooltips) if tooltips is not None else [""] * len(gdf)
    pops = list(popups) if popups is not None else [""] * len(gdf)
    return [[float(y), float(x), t, p] for x, y, t, p in zip(xs, ys, tips, pops, strict=True)]


# --------------------------------------------------------------------------------------
# Addresses (shared with the lookup page's JavaScript: keep the two in step)
# --------------------------------------------------------------------------------------

_PUNCT = re.compile(r"[\s,，。.、;；:：()（）\[\]【】\-—_#·'\"“”]+")

ADDRESS_KEY_JS = r"""
function ggKey(s) {
  return (s || '').normalize('NFKC').toLowerCase()
    .replace(/[\s,，。.、;；:：()（）\[\]【】\-—_#·'"“”]+/g, '');
}
"""
"""JavaScript twin of :func:`address_key`."""


def address_key(text: str) -> str:
    """Normalised key of an address: NFKC (full-width digits and letters to half-width),
    lower case, no spaces or punctuation. Same rule as ``ggKey`` in the lookup page."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", str(text or "")).lower())


def iframe_html(page_path: str | Path, height_px: int = 520) -> str:
    """An ``<iframe srcdoc>`` holding a written page with its assets inlined: shows a map
    inside a notebook (no server, no network), e.g. ``IPython.display.HTML(iframe_html(
    "maps/index.html"))``. Links to other pages do not work inside it."""
    path = Path(page_path)
    out_root = path.parent
    depth = 0
    while not (out_root / "static").is_dir() and depth < 3:
        out_root, depth = out_root.parent, depth + 1
    page = inline_assets(path.read_text(encoding="utf-8"), asset_prefix(depth))
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;'
        f'height:{int(height_px)}px;border:1px solid #ccc" '
        f'sandbox="allow-scripts allow-popups"></iframe>'
    )


class InlinePage:
    """A written page shown inline by Jupyter (``_repr_html_`` → :func:`iframe_html`):
    ``InlinePage("maps/index.html")`` as the last expression of a cell, or ``display(…)``."""

    def __init__(self, page_path: str | Path, height_px: int = 520) -> None:
        self.path = Path(page_path)
        self.height_px = height_px

    def _repr_html_(self) -> str:
        return iframe_html(self.path, self.height_px)
