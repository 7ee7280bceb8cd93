"""``coverage.html``: per facility category, covered and uncovered residential buildings,
gap polygons, service radii and proposed sites, with a legend of coverage rates.

Reads the coverage engineer's layers: ``access`` (building_id, category, walk_m, covered,
…), ``coverage`` (level, code, category, households, households_covered, rate,
rate_straight…), ``coverage_gaps`` (community_code, category, households, geometry) and
``proposed_sites`` (points with a category). Absent layers are said so on the page.
"""

from __future__ import annotations

import html

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement

from gridgis.coverage import NO_NETWORK
from gridgis.crs import metric_crs_for
from gridgis.layers import FACILITY_CATEGORIES
from gridgis.maps.common import (
    CATEGORY_COLOURS,
    Basemap,
    HtmlControl,
    PointLayer,
    Template,
    new_map,
    point_rows,
    prepare,
    title_box,
    to_geojson,
)
from gridgis.standards import DEFAULT, Settings

EXTRA_LABELS = {
    "green": "绿地(≥400 m²)",
    "park": "公园(≥1 公顷)",
    "life_circle": "15分钟生活圈(全部类别)",
}


def category_label(cat: str) -> str:
    """Chinese label of a coverage category."""
    return EXTRA_LABELS.get(cat) or FACILITY_CATEGORIES.get(cat, cat)


class CoverageData(MacroElement):
    """Residential building points shared by every category layer: ``[[lat, lon, hh,
    id], …]`` in ``window.ggCoverage``."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        window.ggCoverage = {pts: {{ this.points|tojson }}, renderer: L.canvas({padding: 0.5})};
        {% endmacro %}
    """)

    def __init__(self, points: list[list]) -> None:
        super().__init__()
        self._name = "CoverageData"
        self.points = points


class CoverageFill(MacroElement):
    """Adds the covered (``want='1'``) or uncovered (``'0'``) buildings of one category to
    its parent FeatureGroup. ``bits`` has one character per building ('1' covered, '0'
    not, '-' not computed); ``walk`` the walking distance in metres (-1: unreachable)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(){
          var C = window.ggCoverage, bits = {{ this.bits|tojson }}, walk = {{ this.walk|tojson }};
          var group = {{ this._parent.get_name() }}, want = {{ this.want|tojson }};
          var style = {{ this.style|tojson }}, label = {{ this.label|tojson }};
          for (var i = 0; i < bits.length; i++) {
            if (bits.charAt(i) !== want) continue;
            var p = C.pts[i];
            var w = walk[i] < 0 ? '不可达' : walk[i] + ' m';
            L.circleMarker([p[0], p[1]], Object.assign({renderer: C.renderer}, style))
              .bindTooltip(p[3] + ' · ' + p[2] + ' 户 · ' + label + ' 步行 ' + w).addTo(group);
          }
        })();
        {% endmacro %}
    """)

    def __init__(self, bits: str, walk: list[int], want: str, style: dict, label: str) -> None:
        super().__init__()
        self._name = "CoverageFill"
        self.bits = bits
        self.walk = walk
        self.want = want
        self.style = style
        self.label = label


class CategorySwitch(MacroElement):
    """A drop-down of categories: choosing one shows that category's layers (buildings,
    radii, gaps) and hides the others'. ``groups`` maps a category to the folium
    elements drawn for it."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function(){
          var map = {{ this._parent.get_name() }};
          var groups = {};
          {% for cat, elems in this.groups.items() %}
          groups[{{ cat|tojson }}] = [{% for e in elems %}{{ e.get_name() }}{% if not loop.last %}, {% endif %}{% endfor %}];
          {% endfor %}
          var ctl = L.control({position: 'topleft'});
          ctl.onAdd = function(){
            var div = L.DomUtil.create('div', 'gg-legend');
            var html = '<b>类别</b> <select id="gg-category">';
            {{ this.options|tojson }}.forEach(function(o){
              html += '<option value="' + o[0] + '">' + o[1] + '</option>'; });
            div.innerHTML = html + '</select>';
            L.DomEvent.disableClickPropagation(div);
            return div;
          };
          ctl.addTo(map);
          function choose(cat) {
            Object.keys(groups).forEach(function(k){ groups[k].forEach(function(l){
              if (k === cat) { if (!map.hasLayer(l)) map.addLayer(l); }
              else if (map.hasLayer(l)) map.removeLayer(l); }); });
            document.querySelectorAll('.gg-rate-row').forEach(function(r){
              r.style.background = r.getAttribute('data-category') === cat ? '#ffeda0' : ''; });
          }
          var sel = document.getElementById('gg-category');
          sel.value = {{ this.first|tojson }};
          sel.addEventListener('change', function(){ choose(sel.value); });
          choose(sel.value);
          window.ggCoverageSwitch = {choose: choose, groups: groups};
        })();
        {% endmacro %}
    """)

    def __init__(self, groups: dict, options: list[list[str]], first: str) -> None:
        super().__init__()
        self._name = "CategorySwitch"
        self.groups = groups
        self.options = options
        self.first = first


def site_tooltip(label: str, row: pd.Series) -> str:
    """Tooltip of a proposed site: rank, category, households newly covered, rate after."""

    def num(key: str) -> float | None:
        v = pd.to_numeric(pd.Series([row.get(key)]), errors="coerce").iloc[0]
        return None if pd.isna(v) else float(v)

    parts = [f"建议选址 #{int(num('rank'))}" if num("rank") is not None else "建议选址", label]
    if num("households_new") is not None:
        nb = num("buildings_new")
        parts.append(
            f"新增覆盖 {num('households_new'):,.0f} 户"
            + (f" / {nb:,.0f} 栋" if nb is not None else "")
        )
    if num("rate_after") is not None:
        parts.append(f"覆盖率提升至 {num('rate_after'):.0%}")
    if num("radius_m") is not None:
        parts.append(f"服务半径 {num('radius_m'):,.0f} m")
    return html.escape(" · ".join(parts))


def city_rates(
    coverage: pd.DataFrame | None, access: pd.DataFrame | None, households: pd.Series | None = None
) -> pd.DataFrame:
    """Households, covered households and rates per category for the whole area: from the
    ``coverage`` table's street rows (or, absent, from ``access`` and ``households``)."""
    cols = ["category", "households", "households_covered", "rate", "rate_straight"]
    if coverage is not None and len(coverage) and "level" in coverage.columns:
        level = "street" if (coverage["level"] == "street").any() else coverage["level"].iloc[0]
        c = coverage[coverage["level"] == level].copy()
        if "households_known" not in c.columns:  # a workspace from before households_known
            c["households_known"] = c["households"]
        for col in (
            "households",
            "households_known",
            "households_covered",
            "households_covered_straight",
        ):
            c[col] = pd.to_numeric(c.get(col), errors="coerce").fillna(0)
        g = c.groupby("category").agg(
            households=("households", "sum"),
            known=("households_known", "sum"),
            households_covered=("households_covered", "sum"),
            cov_s=("households_covered_straight", "sum"),
        )
        g["rate"] = g["households_covered"] / g["known"].where(g["known"] > 0)
        g["rate_straight"] = g["cov_s"] / g["known"].where(g["known"] > 0)
        return g.reset_index()[cols]
    if access is not None and len(access) and households is not None:
        a = access.copy()
        a["hh"] = a["building_id"].astype(str).map(households).fillna(0)
        a["hh_cov"] = np.where(a["covered"].fillna(False).astype(bool), a["hh"], 0)
        g = a.groupby("category").agg(
            households=("hh", "sum"), households_covered=("hh_cov", "sum")
        )
        g["rate"] = g["households_covered"] / g["households"].where(g["households"] > 0)
        g["rate_straight"] = np.nan
        return g.reset_index()[cols]
    return pd.DataFrame({c: [] for c in cols})


#: Chinese names of the walking-network findings drawn on the page.
FINDING_LABELS = {
    "snapped_to_node": "路口端点合并",
    "snapped_to_line": "端点接入道路",
    "extended_dangle": "断头延伸接入",
    "removed_stub": "越界短线删除",
    "merged_duplicate": "重复线合并",
    "disconnected_piece": "孤立路段(未参与计算)",
    "network_fragmented": "路网破碎",
    "far_from_network": "距路网过远",
    "compound_without_gate": "小区无出入口数据",
}

#: Each layer the page reads, with the command that writes it.
PRODUCER = {
    "access": "coverage",
    "coverage": "coverage",
    "coverage_gaps": "coverage",
    "proposed_sites": "site",
}


def coverage_map(
    communities: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None,
    facilities: gpd.GeoDataFrame | None,
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame | None],
    settings: Settings = DEFAULT,
    basemap: Basemap = "none",
    tianditu_key: str | None = None,
    prefix: str = "static/",
    tolerance_m: float = 1.0,
    green_spaces: gpd.GeoDataFrame | None = None,
) -> tuple[folium.Map, list[str]]:
    """The coverage page and notes about what was missing.

    Parameters
    ----------
    communities
        Community outlines, prepared for drawing.
    buildings, facilities
        In lon/lat (EPSG:4326), not yet shifted: prepared here for ``basemap``.
    layers
        ``access``, ``coverage``, ``coverage_gaps``, ``proposed_sites`` and, when
        present, ``service_areas``, ``coverage_findings``, ``proposed_gates`` (each may
        be None).
    settings
        Service radii (``settings.coverage.radius_m``, metres): the walkable service
        areas are drawn, the straight radius circles are an optional layer (直线半径).
    green_spaces
        In lon/lat; the qualifying ones are drawn with their radius for ``green``/``park``.
    """
    notes: list[str] = []
    m = new_map(communities.total_bounds, basemap, tianditu_key, prefix, title="设施覆盖图")
    folium.GeoJson(
        to_geojson(communities, ["name", "community_code"]),
        name="社区边界",
        style_function=lambda f: {"color": "#54278f", "weight": 2.5, "fillOpacity": 0.0},
        tooltip=folium.GeoJsonTooltip(["name", "community_code"], ["社区", "代码"]),
    ).add_to(m)
    access, coverage = layers.get("access"), layers.get("coverage")
    missing = [n for n in PRODUCER if layers.get(n) is None]
    run_cmds = " / ".join(dict.fromkeys(f"gridgis {PRODUCER[n]}" for n in missing))
    if missing:
        notes.append("coverage page: layer(s) " + ", ".join(missing) + f" absent (run {run_cmds})")
    cats, first = _categories(access, coverage)
    no_data = no_data_categories(coverage, access)
    groups: dict[str, list] = {}
    hh_by_id = None
    if buildings is not None and len(buildings) and access is not None and len(access):
        hh_by_id = _add_buildings(m, buildings, access, cats, first, no_data, basemap, groups)
    elif buildings is not None:
        notes.append("coverage page: no 'access' layer, buildings are not classified")
    view = _View(m, cats, first, basemap, groups)
    if facilities is not None and len(facilities):
        _add_facilities(view, facilities, settings, layers.get("service_areas"))
    if green_spaces is not None and len(green_spaces):
        _add_green_reach(view, green_spaces, settings)
    if layers.get("coverage_gaps") is not None and len(layers["coverage_gaps"]):
        _add_gaps(view, layers["coverage_gaps"], tolerance_m)
    for name, what in (("proposed_sites", "建议选址"), ("proposed_gates", "建议新开出入口")):
        if layers.get(name) is not None and len(layers[name]):
            _add_sites(view, layers[name], what)
    banner = _add_findings(view, layers.get("coverage_findings"))
    rates = city_rates(coverage, access, hh_by_id)
    HtmlControl(
        _legend(rates, cats, no_data, settings, missing, run_cmds), position="bottomleft"
    ).add_to(m)
    if groups and first is not None:
        options = [[c, category_label(c)] for c in cats if c in groups]
        CategorySwitch(groups, options, first).add_to(m)
    title = (
        "<a href='index.html'>区级网格图</a> › <b>设施覆盖图</b>"
        "<br><small>选择类别；图层控制中可单独开关</small>"
    )
    if banner:
        title += (
            f"<div style='color:#fff;background:#b30000;padding:4px;margin-top:4px'>{banner}</div>"
        )
    title_box(title).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    return m, notes


class _View:
    """What every drawing step shares: the map, the categories, the first one shown, the
    basemap and the per-category groups the category switch toggles."""

    def __init__(self, m, cats: list[str], first: str | None, basemap, groups) -> None:
        self.m, self.cats, self.first, self.basemap, self.groups = m, cats, first, basemap, groups

    def group(self, cat: str, name: str, show: bool | None = None) -> folium.FeatureGroup:
        g = folium.FeatureGroup(name=name, show=(cat == self.first) if show is None else show)
        g.add_to(self.m)
        if cat:
            self.groups.setdefault(cat, []).append(g)
        return g


def no_data_categories(coverage: pd.DataFrame | None, access: pd.DataFrame | None) -> set[str]:
    """Categories the coverage run marked ``no_data`` (no facility in the workspace)."""
    for frame in (coverage, access):
        if frame is not None and len(frame) and "status" in frame.columns:
            st = frame["status"].astype(str)
            return set(frame.loc[st == "no_data", "category"].astype(str))
    return set()


def _categories(access, coverage) -> tuple[list[str], str | None]:
    cats: list[str] = []
    if access is not None and len(access):
        cats = list(dict.fromkeys(access["category"].astype(str)))
    elif coverage is not None and len(coverage):
        cats = list(dict.fromkeys(coverage["category"].astype(str)))
    order = {c: i for i, c in enumerate(["life_circle", *FACILITY_CATEGORIES, "green"])}
    cats.sort(key=lambda c: order.get(c, 999))
    first = next((c for c in cats if c != "life_circle"), cats[0] if cats else None)
    return cats, first


def _add_buildings(m, buildings, access, cats, first, no_data, basemap, groups) -> pd.Series:
    """Covered / uncovered residential buildings per category (grey where the category
    has no facility data). Returns households by building id."""
    b = buildings[
        buildings["building_id"].astype(str).isin(set(access["building_id"].astype(str)))
    ].copy()
    b = prepare(b, 0.0, basemap)
    ids = b["building_id"].astype(str).to_numpy()
    hh = pd.to_numeric(b["households"], errors="coerce").fillna(0).round().astype(int)
    rows = point_rows(b)
    CoverageData([[r[0], r[1], int(h), i] for r, h, i in zip(rows, hh, ids, strict=True)]).add_to(m)
    pos = pd.Series(np.arange(len(ids)), index=ids)
    a = access[access["building_id"].astype(str).isin(pos.index)]
    for cat in cats:
        sub = a[a["category"].astype(str) == cat]
        bits = np.full(len(ids), "-")
        walk = np.full(len(ids), -1, dtype=np.int64)
        p = pos.loc[sub["building_id"].astype(str)].to_numpy()
        bits[p] = np.where(sub["covered"].fillna(False).astype(bool), "1", "0")
        if "status" in sub.columns:  # beyond the road data: unknown, not uncovered
            bits[p] = np.where(sub["status"].astype(str) == NO_NETWORK, "n", bits[p])
        w = pd.to_numeric(sub["walk_m"], errors="coerce").to_numpy(dtype=float)
        walk[p] = np.where(np.isfinite(w), np.round(w), -1).astype(np.int64)
        label = category_label(cat)
        shown = (
            (("0", "无设施数据", "#969696"),)
            if cat in no_data
            else (
                ("0", "未覆盖建筑", "#d7301f"),
                ("1", "已覆盖建筑", "#1a9850"),
            )
        )
        if "n" in bits:
            shown += (("n", "未接入路网(步行距离未知)", "#969696"),)
        for want, name, colour in shown:
            group = folium.FeatureGroup(name=f"{label}: {name}", show=(cat == first))
            style = {"radius": 4, "color": colour, "weight": 1, "fillColor": colour}
            CoverageFill(
                "".join(bits.tolist()), walk.tolist(), want, style | {"fillOpacity": 0.85}, label
            ).add_to(group)
            group.add_to(m)
            groups.setdefault(cat, []).append(group)
    return pd.Series(hh.to_numpy(), index=ids)


def _add_facilities(view: _View, facilities, settings: Settings, areas) -> None:
    """Facilities per category with their walkable service areas (layer
    ``service_areas``) and, as an optional layer, the straight radius circles."""
    radius = dict(settings.coverage.radius_m)
    f = prepare(facilities, 0.0, view.basemap)
    pts = f.geometry.representative_point()
    sa = prepare(areas, 1.0, view.basemap) if areas is not None and len(areas) else None
    present = set(f["category"].astype(str))
    for i, cat in enumerate(c for c in view.cats if c in radius and c in present):
        sel = (f["category"].astype(str) == cat).to_numpy()
        colour = CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)]
        label = category_label(cat)
        walkable = sa is not None and (sa["category"].astype(str) == cat).any()
        if walkable:
            _service_area_layer(view, sa, cat, label, colour, radius[cat])
        # with service areas, the straight circles are an optional layer outside the
        # category switch (off until ticked in the layer control)
        circles = view.group(
            "" if walkable else cat,
            f"{label}: 直线半径 {radius[cat]:.0f} m (仅供参考，不计路网)",
            show=False if walkable else None,
        )
        for p in pts[sel]:
            folium.Circle(
                [p.y, p.x],
                radius=float(radius[cat]),
                color=colour,
                weight=1,
                dash_array="3 4",
                fill=True,
                fill_opacity=0.04,
                interactive=False,
            ).add_to(circles)
        group = view.group(cat, f"{label}: 设施")
        names = f.loc[sel, "name"].astype("string").fillna(label).map(html.escape)
        PointLayer(
            point_rows(f[sel], (label + ": " + names).tolist()),
            {
                "radius": 6,
                "color": "#ffffff",
                "weight": 1.5,
                "fillColor": colour,
                "fillOpacity": 1.0,
            },
        ).add_to(group)


def _service_area_layer(view: _View, sa, cat: str, label: str, colour: str, r: float) -> None:
    sub = sa[sa["category"].astype(str) == cat]
    group = view.group(cat, f"{label}: 步行服务半径 {r:.0f} m 可达范围")
    folium.GeoJson(
        to_geojson(sub, ["facility_id", "reach_m"]),
        style_function=lambda f, c=colour: {
            "color": c,
            "weight": 1,
            "fillColor": c,
            "fillOpacity": 0.12,
        },
        tooltip=folium.GeoJsonTooltip(["facility_id", "reach_m"], ["设施", "可达路网(m)"]),
    ).add_to(group)


def _add_green_reach(view: _View, green_spaces, settings: Settings) -> None:
    """Greens and parks that count, with their radius."""
    from gridgis.coverage import green_targets

    radius = dict(settings.coverage.radius_m)
    metric = metric_crs_for(green_spaces)
    targets = green_targets(green_spaces, metric, settings)
    for cat in ("green", "park"):
        t = targets.get(cat)
        if cat not in view.cats or cat not in radius or t is None or len(t) == 0:
            continue
        label = category_label(cat)
        reach = gpd.GeoDataFrame(
            geometry=[
                shapely.union_all(
                    shapely.buffer(t.geometry.values, float(radius[cat]), quad_segs=4)
                )
            ],
            crs=metric,
        )
        group = view.group(cat, f"{label}: 直线半径 {radius[cat]:.0f} m")
        folium.GeoJson(
            to_geojson(prepare(reach, 5.0, view.basemap), []),
            style_function=lambda f: {
                "color": "#238b45",
                "weight": 1.5,
                "dashArray": "6 4",
                "fillColor": "#74c476",
                "fillOpacity": 0.08,
            },
            interactive=False,
        ).add_to(group)
        tg = prepare(t.to_crs("EPSG:4326"), 1.0, view.basemap)
        folium.GeoJson(
            to_geojson(tg, ["name"]),
            style_function=lambda f: {
                "color": "#006d2c",
                "weight": 1,
                "fillColor": "#31a354",
                "fillOpacity": 0.6,
            },
            tooltip=folium.GeoJsonTooltip(["name"], [label]),
        ).add_to(group)


GAP_ALIASES = {
    "label": "类别",
    "community_code": "社区代码",
    "households": "未覆盖户数",
    "buildings": "未覆盖建筑",
    "area_m2": "面积(m²)",
}


def _add_gaps(view: _View, gaps, tolerance_m: float) -> None:
    gp = prepare(gaps, tolerance_m, view.basemap)
    gp["label"] = gp["category"].astype(str).map(category_label)
    fields = [c for c in GAP_ALIASES if c in gp.columns]
    for cat in view.cats:
        sub = gp[gp["category"].astype(str) == cat]
        if len(sub) == 0:
            continue
        layer = folium.GeoJson(
            to_geojson(sub, fields),
            name=f"{category_label(cat)}: 覆盖缺口",
            show=(cat == view.first),
            style_function=lambda f: {
                "color": "#99000d",
                "weight": 1,
                "fillColor": "#fb6a4a",
                "fillOpacity": 0.35,
                "dashArray": "4 3",
            },
            tooltip=folium.GeoJsonTooltip(fields, [GAP_ALIASES[c] for c in fields]),
        )
        layer.add_to(view.m)
        view.groups.setdefault(cat, []).append(layer)


def _add_sites(view: _View, sites, what: str) -> None:
    """Proposed sites (or gates) per category, with their straight radius."""
    sp = prepare(sites, 0.0, view.basemap)
    cat_col = (
        sp["category"].astype(str) if "category" in sp.columns else pd.Series("", index=sp.index)
    )
    gate = what != "建议选址"
    for cat in dict.fromkeys(cat_col):
        sub = sp[(cat_col == cat).to_numpy()]
        label = category_label(cat) if cat else "设施"
        tips = [site_tooltip(label, row) for _, row in sub.drop(columns="geometry").iterrows()]
        if gate:
            tips = [t.replace("建议选址", what) for t in tips]
        group = view.group(cat, f"{label}: {what}", show=(cat == view.first or not cat))
        rad = pd.to_numeric(sub.get("radius_m"), errors="coerce")
        for p, r in zip(sub.geometry.representative_point(), rad, strict=True):
            if pd.notna(r) and not gate:
                folium.Circle(
                    [p.y, p.x],
                    radius=float(r),
                    color="#b8860b",
                    weight=2,
                    dash_array="6 4",
                    fill=False,
                    interactive=False,
                ).add_to(group)
        PointLayer(
            point_rows(sub, tips),
            {
                "radius": 9 if not gate else 7,
                "color": "#000000",
                "weight": 2,
                "fillColor": "#ffd700" if not gate else "#00bfff",
                "fillOpacity": 1.0,
            },
        ).add_to(group)


def _add_findings(view: _View, findings) -> str | None:
    """The walking network's repairs and problems (layer ``coverage_findings``), and the
    banner text when the network lost much of its length to loose pieces."""
    if findings is None or len(findings) == 0:
        return None
    f = prepare(findings, 0.5, view.basemap)
    f = f[f.geometry.notna() & ~f.geometry.is_empty]
    f["label"] = f["kind"].astype(str).map(FINDING_LABELS).fillna(f["kind"].astype(str))
    f["metres"] = pd.to_numeric(f["value_m"], errors="coerce").round(2)
    group = view.group("", "路网修复与问题 (coverage_findings)", show=True)
    pts = f[f.geom_type == "Point"]
    if len(pts):
        tips = [html.escape(f"{r.label} · {r.metres} m · {r.id}") for r in pts.itertuples()]
        PointLayer(
            point_rows(pts, tips),
            {
                "radius": 5,
                "color": "#000000",
                "weight": 1,
                "fillColor": "#ff7f00",
                "fillOpacity": 1.0,
            },
        ).add_to(group)
    lines = f[(f.geom_type != "Point") & (f["kind"] != "network_fragmented")]
    if len(lines):
        folium.GeoJson(
            to_geojson(lines, ["label", "metres", "id"]),
            style_function=lambda x: {"color": "#ff7f00", "weight": 3, "dashArray": "2 4"},
            tooltip=folium.GeoJsonTooltip(["label", "metres", "id"], ["问题", "米", "编号"]),
        ).add_to(group)
    broken = findings[findings["kind"].astype(str) == "network_fragmented"]
    if len(broken):
        lost = float(pd.to_numeric(broken["value_m"], errors="coerce").fillna(0).sum())
        return html.escape(
            f"警告：路网破碎，{lost / 1000:.1f} km 道路未连入主路网，步行距离缺失或偏长"
            "（见“路网修复与问题”图层）"
        )
    return None


def _legend(rates, cats, no_data, settings: Settings, missing, run_cmds) -> str:
    rows = "".join(
        f"<tr class='gg-rate-row' data-category='{html.escape(str(r.category))}'>"
        f"<td>{html.escape(category_label(str(r.category)))}</td>"
        + (
            "<td colspan='2' style='text-align:right;color:#777'>无数据</td></tr>"
            if str(r.category) in no_data
            else f"<td style='text-align:right'>{'' if pd.isna(r.rate) else f'{r.rate:.0%}'}</td>"
            f"<td style='text-align:right;color:#777'>"
            f"{'' if pd.isna(r.rate_straight) else f'{r.rate_straight:.0%}'}</td></tr>"
        )
        for r in rates.set_index("category")
        .reindex([c for c in cats if c in set(rates["category"])])
        .reset_index()
        .itertuples()
    )
    out = (
        "<b>覆盖率 (户数)</b><br><span style='color:#1a9850'>●</span> 已覆盖 "
        "<span style='color:#d7301f'>●</span> 未覆盖 "
        "<span style='color:#969696'>●</span> 无设施数据 "
        "<span style='color:#fb6a4a'>■</span> 缺口 "
        "<span style='color:#ffd700'>●</span> 建议选址"
        "<table><tr><td>类别</td><td>步行</td><td>直线</td></tr>" + rows + "</table>"
    )
    out += (
        "<div style='color:#555'>着色范围为步行可达服务范围；直线半径圆仅供参考</div>"
        f"<div style='color:#555'>公园服务半径覆盖率国标下限 "
        f"{settings.coverage.park_coverage_floor:.0%}</div>"
    )
    if missing:
        out += (
            "<div style='color:#b30000'>缺少图层: "
            + ", ".join(missing)
            + f"<br>(先运行 {run_cmds})</div>"
        )
    return out
