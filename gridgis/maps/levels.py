"""The three-level grid map: district (index), street and community pages.

Pure builders: GeoDataFrames (already prepared with :func:`gridgis.maps.common.prepare`)
in, :class:`folium.Map` out. Links between levels are relative: ``index.html`` →
``streets/<street_code>.html`` → ``communities/<community_code>.html`` →
``boards/<grid_code>.html``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import metric_crs_for
from gridgis.layers import FACILITY_CATEGORIES, GREEN_KINDS, ROAD_CLASSES
from gridgis.maps.common import (
    CATEGORY_COLOURS,
    ROAD_STYLE,
    Basemap,
    LabelLayer,
    PointLayer,
    choropleth_legend_rows,
    class_breaks,
    colour_for,
    label_points,
    legend,
    new_map,
    title_box,
    to_geojson,
)
from gridgis.standards import DEFAULT, MapRules

GRID_KIND_LABELS = {"residential": "住宅网格", "unit": "单位网格", "open": "开放空间网格"}


def is_flagged(flags: pd.Series) -> pd.Series:
    """True where a grid's ``flags`` field holds any finding (non-empty text or list)."""

    def one(v) -> bool:
        if v is None:
            return False
        if isinstance(v, (list, tuple, set)):
            return len(v) > 0
        try:
            if pd.isna(v):
                return False
        except (TypeError, ValueError):
            return True
        return str(v).strip() not in ("", "[]", "{}", "none", "None")

    return flags.map(one).astype(bool) if len(flags) else pd.Series([], dtype=bool)


def _flags_text(flags: pd.Series) -> pd.Series:
    def one(v) -> str:
        if isinstance(v, (list, tuple, set)):
            return ", ".join(map(str, v))
        return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

    return flags.map(one)


def label_zoom_offset(n_labels: int) -> int:
    """Zoom levels above the fitted view from which labels show: all at once up to 120,
    one level closer up to 480, two beyond (a 1,000,000-household index has 400+)."""
    return 0 if n_labels <= 120 else (1 if n_labels <= 480 else 2)


def label_priority(polygons: gpd.GeoDataFrame, flagged: Sequence[bool] | None = None) -> np.ndarray:
    """Row positions of ``polygons`` in label priority order, the order in which
    :class:`~gridgis.maps.common.LabelLayer` keeps labels when they collide on screen.

    Larger polygons first (area in m², in the layer's metric CRS): a big grid has room for
    its label and is seen from afar, a small one is read when zoomed in. Flagged polygons
    (``flagged`` true: a grid out of range, drawn with ⚠) come before every unflagged one,
    whatever their size: the problem grids are what the planner looks for, and there are
    few of them. Equal keys keep the layer's order.

    Parameters
    ----------
    polygons
        Polygons with a CRS (lon/lat as drawn, or metric).
    flagged
        One bool per row, or None (area only).

    Returns
    -------
    numpy.ndarray
        Positions (``iloc``), highest priority first.
    """
    if len(polygons) == 0:
        return np.arange(0)
    geo = polygons.geometry
    area = (geo.to_crs(metric_crs_for(polygons)) if geo.crs is not None else geo).area
    keys = [-area.to_numpy(dtype=float)]
    if flagged is not None:
        keys.append(~np.asarray(flagged, dtype=bool))  # last key sorts first
    return np.lexsort(keys)


def grid_frame(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Grids with the display fields the pages use (kind label, flagged, short code); a
    frame made by this function is returned as it is."""
    if "flags_text" in grids.columns and "board" in grids.columns:
        return grids
    g = grids.copy()
    for col in ("households", "building_count", "area_m2", "polsby_popper"):
        if col not in g.columns:
            g[col] = pd.NA
    if "flags" not in g.columns:
        g["flags"] = ""
    if "kind" not in g.columns:
        g["kind"] = "residential"
    g["kind_label"] = g["kind"].map(GRID_KIND_LABELS).fillna(g["kind"].astype(str))
    g["flagged"] = is_flagged(g["flags"]).values
    g["flags_text"] = _flags_text(g["flags"]).values
    g["short_code"] = g["grid_code"].astype(str).str[-6:]
    g["area_ha"] = (pd.to_numeric(g["area_m2"], errors="coerce") / 10_000).round(2)
    g["households"] = pd.to_numeric(g["households"], errors="coerce").round().astype("Int64")
    g["board"] = (
        "<a href='"
        + "../boards/"
        + g["grid_code"].astype(str)
        + ".html'>公示牌 "
        + g["grid_code"].astype(str)
        + "</a>"
    )
    return g


def _style(
    colour: str,
    weight: float,
    fill: str | None,
    fill_opacity: float = 0.55,
    dash: str | None = None,
) -> dict:
    s = {
        "color": colour,
        "weight": weight,
        "fillColor": fill or colour,
        "fillOpacity": fill_opacity if fill else 0.0,
    }
    if dash:
        s["dashArray"] = dash
    return s


def _breadcrumb(parts: Sequence[tuple[str, str | None]]) -> str:
    out = []
    for text, href in parts:
        t = html.escape(text)
        out.append(f"<a href='{href}'>{t}</a>" if href else f"<b>{t}</b>")
    return " › ".join(out)


def grid_fill(g: gpd.GeoDataFrame, breaks: list[float]) -> list[str]:
    """Fill of each grid (after :func:`grid_frame`): the household class colour for a
    residential grid with households, the hatch pattern for a unit grid, the dotted
    pattern for a grid without households (open land, roads, water)."""
    hh = pd.to_numeric(g["households"], errors="coerce").fillna(0).to_numpy()
    kinds = g["kind"].astype(str).to_numpy()
    out = []
    for k, v in zip(kinds, hh, strict=True):
        if k == "unit":
            out.append("url(#gg-unit)")
        elif v <= 0:
            out.append("url(#gg-open)")
        else:
            out.append(colour_for(v, breaks))
    return out


def grid_legend_rows(g: gpd.GeoDataFrame, breaks: list[float]) -> list[tuple[str, str]]:
    """Legend rows of a grid map: household classes of the residential grids (ranges
    actually drawn), then unit and open-land grids when present."""
    res = g["kind"].astype(str) != "unit"
    hh = pd.to_numeric(g["households"], errors="coerce").fillna(0)
    rows = [r for r in choropleth_legend_rows(breaks, values=hh[res & (hh > 0)])]
    if (~res).any():
        rows.append(("pattern:unit", f"单位网格 ({int((~res).sum())})"))
    if (res & (hh <= 0)).any():
        rows.append(("pattern:open", f"开放空间网格 (无住户, {int((res & (hh <= 0)).sum())})"))
    return rows


def grid_label_texts(lg: gpd.GeoDataFrame, label: str) -> list[str]:
    """Label HTML of each grid: its code (street pages: community 3 digits small, grid
    sequence bold; community pages: sequence large, the community's 12 digits small) and
    its households on a second line; ⚠ before a flagged grid's."""
    codes = lg["grid_code"].astype(str)
    hh = pd.to_numeric(lg["households"], errors="coerce")
    kinds = lg["kind"].astype(str)
    out = []
    for c, h, k, f in zip(codes, hh, kinds, lg["flagged"], strict=True):
        if label == "full":
            t = f"<b class='seq'>{c[-3:]}</b><br><span class='pre'>{c[:12]}</span>"
        else:
            t = f"<span class='pre'>{c[9:12]}-</span><b>{c[-3:]}</b>"
        if k == "unit":
            t += "<br><span class='hh'>单位</span>"
        elif not pd.isna(h):
            t += f"<br><span class='hh'>{int(h):,}户</span>"
        out.append(("⚠ " if f else "") + t)
    return out


def add_grids(
    m: folium.Map,
    grids: gpd.GeoDataFrame,
    breaks: list[float],
    name: str = "网格",
    label: str = "short",
    board_prefix: str = "../boards/",
    fill_opacity: float = 0.55,
) -> folium.FeatureGroup:
    """Grids as a household choropleth (unit grids hatched, grids without households
    dotted) with tooltip and popup (code, households…), and a separate label layer of
    their codes and households. Flagged grids are outlined by :func:`add_flagged`, drawn
    last so no boundary hides them."""
    weight = 2.0 if label == "full" else 1.0  # community pages: grids over buildings
    g = grid_frame(grids).copy()
    g["board"] = "<a href='" + board_prefix + g["grid_code"].astype(str) + ".html'>公示牌</a>"
    g["fill"] = grid_fill(g, breaks)
    fields = [
        "grid_code",
        "kind_label",
        "households",
        "building_count",
        "area_ha",
        "flags_text",
        "board",
    ]
    aliases = ["网格代码", "类型", "户数", "建筑数", "面积(公顷)", "问题", "公示牌"]
    data = to_geojson(g, [*fields, "fill", "flagged"])
    layer = folium.GeoJson(
        data,
        name=name,
        style_function=lambda f: _style(
            "#222222",
            weight,
            f["properties"]["fill"],
            1.0 if f["properties"]["fill"].startswith("url(") else fill_opacity,
        ),
        highlight_function=lambda f: {"weight": 3, "color": "#0000ff"},
        tooltip=folium.GeoJsonTooltip(fields=fields[:5], aliases=aliases[:5], sticky=True),
        popup=folium.GeoJsonPopup(fields=fields, aliases=aliases),
    )
    layer.add_to(m)
    labels = folium.FeatureGroup(name="网格代码 (标注)", show=True)
    lg = g.iloc[label_priority(g, g["flagged"].to_numpy())]
    texts = grid_label_texts(lg, label)
    LabelLayer(
        label_points(lg, texts, ["gg-flag" if f else "" for f in lg["flagged"]], escape=False),
        css_class="gg-grid",
        zoom_offset=label_zoom_offset(len(lg)),
    ).add_to(labels)
    labels.add_to(m)
    return layer


def add_flagged(m: folium.Map, grids: gpd.GeoDataFrame) -> None:
    """Flagged grids (a finding of delineation or audit) outlined in red, dashed, over a
    light red tint, in their own layer added after every boundary: a flagged grid that is
    its community's only grid shares the community's outline and would vanish under it."""
    g = grid_frame(grids)
    g = g[g["flagged"]]
    if len(g) == 0:
        return
    folium.GeoJson(
        to_geojson(g, ["grid_code", "flags_text"]),
        name=f"⚠ 问题网格 ({len(g)})",
        style_function=lambda f: _style("#d00000", 3.5, "#ff0000", 0.12, dash="8 5"),
        tooltip=folium.GeoJsonTooltip(fields=["grid_code", "flags_text"], aliases=["网格", "问题"]),
        interactive=True,
    ).add_to(m)


def index_map(
    streets: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    basemap: Basemap = "none",
    tianditu_key: str | None = None,
    prefix: str = "static/",
    city: str = "",
    rules: MapRules | None = None,
) -> folium.Map:
    """District page: street outlines and names, communities as a household choropleth
    with grid counts; a click on a community opens its popup with links to the street
    and community pages.

    ``communities`` needs community_code, name, street_code, households, grid_count
    (and optional street_name); ``streets`` street_code, name, households, grid_count.
    ``rules``: drawing settings (fill opacity, classes; default ``standards.DEFAULT.maps``).
    """
    rules = rules or DEFAULT.maps
    m = new_map(
        communities.total_bounds,
        basemap,
        tianditu_key,
        prefix,
        title=f"{city} 三级网格图 · 区" if city else "三级网格图 · 区",
    )
    c = communities.copy()
    breaks = class_breaks(c["households"], rules.classes)
    c["fill"] = [colour_for(v, breaks) for v in c["households"]]
    c["links"] = (
        "<a href='streets/" + c["street_code"].astype(str) + ".html'>街道图</a> · "
        "<a href='communities/" + c["community_code"].astype(str) + ".html'>社区图</a>"
    )
    fields = ["name", "community_code", "street_name", "households", "grid_count", "links"]
    aliases = ["社区", "社区代码", "街道", "户数", "网格数", "地图"]
    folium.GeoJson(
        to_geojson(c, [*fields, "fill"]),
        name="社区 (户数分级)",
        style_function=lambda f: _style(
            "#6a51a3", 1.2, f["properties"]["fill"], rules.fill_opacity
        ),
        highlight_function=lambda f: {"weight": 3, "color": "#0000ff"},
        tooltip=folium.GeoJsonTooltip(fields=fields[:5], aliases=aliases[:5], sticky=True),
        popup=folium.GeoJsonPopup(fields=fields, aliases=aliases),
    ).add_to(m)
    s = streets.copy()
    s["link"] = "<a href='streets/" + s["street_code"].astype(str) + ".html'>打开街道图</a>"
    sf = ["name", "street_code", "households", "community_count", "grid_count", "link"]
    sa = ["街道", "街道代码", "户数", "社区数", "网格数", "地图"]
    folium.GeoJson(
        to_geojson(s, sf),
        name="街道边界",
        style_function=lambda f: _style("#08306b", 4.0, None),
        tooltip=folium.GeoJsonTooltip(fields=sf[:5], aliases=sa[:5], sticky=True),
        popup=folium.GeoJsonPopup(fields=sf, aliases=sa),
        interactive=False,
    ).add_to(m)
    names = folium.FeatureGroup(name="街道名称", show=True)
    ls = s.iloc[label_priority(s)]
    LabelLayer(label_points(ls, ls["name"].astype(str)), css_class="gg-street").add_to(names)
    names.add_to(m)
    cn = folium.FeatureGroup(name="社区名称", show=True)
    lc = c.iloc[label_priority(c)]
    LabelLayer(
        label_points(
            lc,
            [
                f"{html.escape(n)}<br>{g} 个网格"
                for n, g in zip(
                    lc["name"].astype(str), lc["grid_count"].fillna(0).astype(int), strict=True
                )
            ],
            escape=False,
        ),
        css_class="gg-community",
        zoom_offset=label_zoom_offset(len(lc)),
    ).add_to(cn)
    cn.add_to(m)
    total_hh = int(pd.to_numeric(c["households"], errors="coerce").fillna(0).sum())
    total_grids = int(pd.to_numeric(c["grid_count"], errors="coerce").fillna(0).sum())
    legend(
        "社区户数",
        choropleth_legend_rows(breaks, values=c["households"]),
        note=f"街道 {len(s)} · 社区 {len(c)} · 网格 {total_grids} · 户数 {total_hh:,}<br>"
        "<span class='ln' style='border-top:4px solid #08306b'></span>街道边界 "
        "<span class='ln' style='border-top:2px solid #6a51a3'></span>社区边界",
        opacity=rules.fill_opacity,
    ).add_to(m)
    title_box(
        _breadcrumb([(f"{city} 区级网格图" if city else "区级网格图", None)])
        + "<br><small>点击社区查看街道图/社区图</small>"
    ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def street_map(
    street: pd.Series,
    communities: gpd.GeoDataFrame,
    grids: gpd.GeoDataFrame,
    basemap: Basemap = "none",
    tianditu_key: str | None = None,
    prefix: str = "../static/",
    rules: MapRules | None = None,
) -> folium.Map:
    """Street page: its communities (outlines and names) and their grids as a household
    choropleth (unit grids hatched, grids without households dotted), grid codes and
    households as labels, flagged grids outlined above everything."""
    rules = rules or DEFAULT.maps
    bounds = (communities if len(communities) else grids).total_bounds
    name = str(street.get("name", ""))
    m = new_map(bounds, basemap, tianditu_key, prefix, title=f"{name} 街道网格图")
    g = grid_frame(grids) if len(grids) else None
    res = g[g["kind"].astype(str) != "unit"] if g is not None else None
    breaks = class_breaks(res["households"], rules.classes) if res is not None else [0.0]
    if len(grids):
        add_grids(m, g, breaks, name="网格 (户数分级)", fill_opacity=rules.fill_opacity)
    c = communities.copy()
    c["link"] = (
        "<a href='../communities/" + c["community_code"].astype(str) + ".html'>打开社区图</a>"
    )
    cf = ["name", "community_code", "households", "grid_count", "link"]
    ca = ["社区", "社区代码", "户数", "网格数", "地图"]
    folium.GeoJson(
        to_geojson(c, cf),
        name="社区边界",
        style_function=lambda f: _style("#54278f", 3.5, None),
        tooltip=folium.GeoJsonTooltip(fields=cf[:4], aliases=ca[:4]),
        interactive=False,
    ).add_to(m)
    cn = folium.FeatureGroup(name="社区名称", show=True)
    lc = c.iloc[label_priority(c)]
    LabelLayer(label_points(lc, lc["name"].astype(str)), css_class="gg-community").add_to(cn)
    cn.add_to(m)
    if len(grids):
        add_flagged(m, g)
    n_flag = int(g["flagged"].sum()) if g is not None else 0
    legend(
        "网格户数",
        grid_legend_rows(g, breaks) if g is not None else [],
        note=f"社区 {len(c)} · 网格 {len(grids)} · 问题网格 {n_flag}<br>"
        "<span class='ln' style='border-top:3px solid #54278f'></span>社区边界 "
        "<span class='ln' style='border-top:2px dashed #b30000'></span>⚠ 问题网格"
        "<br>标注: 社区3位-网格3位 (网格代码后6位) / 户数",
        opacity=rules.fill_opacity,
    ).add_to(m)
    title_box(
        _breadcrumb(
            [("区级网格图", "../index.html"), (f"{name} ({street.get('street_code', '')})", None)]
        )
    ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def add_buildings(m: folium.Map, buildings: gpd.GeoDataFrame) -> None:
    """Buildings (filled when they hold households) with households and their source."""
    if not len(buildings):
        return
    b = buildings.copy()
    b["households"] = pd.to_numeric(b.get("households"), errors="coerce").round().astype("Int64")
    b["est"] = (
        b.get("households_estimated", pd.Series(False, index=b.index))
        .fillna(False)
        .astype(bool)
        .map({True: "估算", False: "登记"})
    )
    bf = [
        c
        for c in ["building_id", "name", "households", "est", "floors", "grid_code"]
        if c in b.columns
    ]
    ba = {
        "building_id": "建筑编号",
        "name": "名称",
        "households": "户数",
        "est": "户数来源",
        "floors": "层数",
        "grid_code": "网格代码",
    }
    folium.GeoJson(
        to_geojson(b, bf),
        name="建筑 (户数)",
        style_function=lambda f: _style(
            "#444444",
            0.6,
            "#9e9ac8" if (f["properties"].get("households") or 0) > 0 else "#d9d9d9",
            0.85,
        ),
        tooltip=folium.GeoJsonTooltip(fields=bf, aliases=[ba[c] for c in bf]),
    ).add_to(m)


def add_roads(m: folium.Map, roads: gpd.GeoDataFrame) -> None:
    """Roads drawn by class (colour and width of :data:`ROAD_STYLE`), names in tooltips."""
    if not len(roads):
        return
    r = roads.copy()
    r["class_label"] = r["road_class"].map(ROAD_CLASSES).fillna(r["road_class"].astype(str))
    folium.GeoJson(
        to_geojson(r, ["name", "class_label", "road_class"]),
        name="道路",
        style_function=lambda f: {
            "color": ROAD_STYLE.get(f["properties"]["road_class"], ("#999999", 1.5))[0],
            "weight": ROAD_STYLE.get(f["properties"]["road_class"], ("#999999", 1.5))[1],
            "opacity": 0.9,
        },
        tooltip=folium.GeoJsonTooltip(fields=["name", "class_label"], aliases=["道路", "等级"]),
    ).add_to(m)


def add_facilities(m: folium.Map, facilities: gpd.GeoDataFrame) -> list[tuple[str, str]]:
    """One toggleable layer of markers per facility category (drawn above every fill, see
    :class:`~gridgis.maps.common.PointLayer`); returns the legend rows."""
    rows = []
    if not len(facilities):
        return rows
    category = facilities["category"].astype(str).to_numpy()
    present = set(category)
    cats = [c for c in FACILITY_CATEGORIES if c in present]
    names = [
        html.escape(n) if isinstance(n, str) else ""
        for n in facilities["name"].astype(object).where(facilities["name"].notna(), None)
    ]
    area = pd.to_numeric(
        facilities.get("floor_area_m2", pd.Series(np.nan, index=facilities.index)),
        errors="coerce",
    ).to_numpy(dtype=float)
    pts = shapely.point_on_surface(facilities.geometry.values)
    xs, ys = np.round(shapely.get_x(pts), 6), np.round(shapely.get_y(pts), 6)
    for i, cat in enumerate(cats):
        colour = CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)]
        label = FACILITY_CATEGORIES.get(cat, cat)
        group = folium.FeatureGroup(name=f"设施: {label}", show=True)
        sel = np.flatnonzero(category == cat)
        data = []
        for j in sel:
            nm = names[j] or label
            extra = "" if np.isnan(area[j]) else f"<br>建筑面积 {area[j]:,.0f} m²"
            data.append(
                [float(ys[j]), float(xs[j]), f"{label}: {nm}", f"<b>{nm}</b><br>{label}{extra}"]
            )
        PointLayer(
            data,
            {
                "radius": 6,
                "color": "#ffffff",
                "weight": 1.5,
                "fillColor": colour,
                "fillOpacity": 0.95,
            },
        ).add_to(group)
        group.add_to(m)
        rows.append((colour, f"{label} ({len(sel)})"))
    return rows


def community_map(
    community: pd.Series,
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    green_spaces: gpd.GeoDataFrame,
    street_name: str = "",
    basemap: Basemap = "none",
    tianditu_key: str | None = None,
    prefix: str = "../static/",
    rules: MapRules | None = None,
) -> folium.Map:
    """Community page: grids (full codes as labels), buildings with households in the
    tooltip, roads by class, green spaces, and facilities by category, each a toggleable
    layer. Facility markers are drawn above every fill."""
    rules = rules or DEFAULT.maps
    name = str(community.get("name", ""))
    code = str(community.get("community_code", ""))
    geom = community.geometry
    m = new_map(geom.bounds, basemap, tianditu_key, prefix, title=f"{name} 社区网格图")
    folium.GeoJson(
        {"type": "Feature", "geometry": geom.__geo_interface__, "properties": {}},
        name="社区边界",
        style_function=lambda f: _style("#54278f", 4.0, None),
        interactive=False,
    ).add_to(m)
    if len(green_spaces):
        gs = green_spaces.copy()
        gs["kind_label"] = gs["kind"].map(GREEN_KINDS).fillna(gs["kind"].astype(str))
        folium.GeoJson(
            to_geojson(gs, ["name", "kind_label"]),
            name="绿地",
            style_function=lambda f: _style("#238b45", 0.5, "#74c476", 0.5),
            tooltip=folium.GeoJsonTooltip(fields=["name", "kind_label"], aliases=["绿地", "类型"]),
        ).add_to(m)
    g = grid_frame(grids) if len(grids) else None
    res = g[g["kind"].astype(str) != "unit"] if g is not None else None
    breaks = class_breaks(res["households"], rules.classes) if res is not None else [0.0]
    if len(grids):
        add_grids(m, g, breaks, name="网格", label="full", fill_opacity=rules.fill_opacity)
    add_buildings(m, buildings)
    add_roads(m, roads)
    rows = add_facilities(m, facilities)
    if len(grids):
        add_flagged(m, g)
    hh = (
        int(pd.to_numeric(grids["households"], errors="coerce").fillna(0).sum())
        if len(grids)
        else 0
    )
    legend(
        "网格户数",
        grid_legend_rows(g, breaks) if g is not None else [],
        note="<span class='ln' style='border-top:2px dashed #d00000'></span>⚠ 问题网格",
        position="bottomright",
        opacity=rules.fill_opacity,
    ).add_to(m)
    legend(
        "设施类别",
        rows,
        note=f"网格 {len(grids)} · 建筑 {len(buildings)} · 户数 {hh:,}",
        position="bottomright",
    ).add_to(m)
    street_code = str(community.get("street_code", ""))
    title_box(
        _breadcrumb(
            [
                ("区级网格图", "../index.html"),
                (street_name or street_code, f"../streets/{street_code}.html"),
                (f"{name} ({code})", None),
            ]
        )
    ).add_to(m)
    m.get_root().html.add_child(folium.Element(_editor_link(code)))
    folium.LayerControl(collapsed=True).add_to(m)
    return m


def _editor_link(community_code: str) -> str:
    """A link to the grid editor (``/edit/<code>`` of ``gridgis serve``), shown only when
    the page is served over HTTP (opened as a file there is no editor to go to)."""
    code = json.dumps(str(community_code))
    return (
        '<a id="gg-edit-link" class="gg-edit-link gg-noprint" style="display:none;position:fixed;'
        "top:10px;right:60px;z-index:1000;background:#fff;padding:4px 8px;border:1px "
        'solid #888;border-radius:4px;font:13px sans-serif" href="#">编辑网格</a>'
        "<script>(function(){if(!/^https?:$/.test(location.protocol))return;"
        f"var a=document.getElementById('gg-edit-link');a.href='/edit/'+{code};"
        "a.style.display='block';})();</script>"
    )
