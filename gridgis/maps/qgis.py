"""QGIS-ready GeoPackages: layer styles in QGIS's ``layer_styles`` table, so opening the
file in QGIS shows the picture of the web maps.

- ``grids``: residential grids by household class (the web maps' classes and colours, at
  their fill opacity), unit grids hatched, grids without households dotted, flagged grids
  outlined in red and dashed; labels of code and households;
- ``communities``: households by class, purple outline, labels of name and households;
- ``streets``: thick dark-blue outline, labels of name;
- ``coverage_gaps``: red cross-hatch.

Each style is written as QML (QGIS's own format, what QGIS applies) and as SLD 1.1 (the
fills and outlines, for other clients). :func:`write_layer_styles` adds them to any
GeoPackage; ``gridgis export --format gpkg`` calls it, and the map and delineation
workflows may call it on their workspace.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pandas as pd

from gridgis.maps.common import HOUSEHOLD_COLOURS, NO_HOUSEHOLDS, class_breaks, colour_for
from gridgis.standards import DEFAULT, MapRules

#: QGIS's ``layer_styles`` table (as QGIS itself creates it in a GeoPackage).
LAYER_STYLES_SQL = """
CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  f_table_catalog TEXT(256),
  f_table_schema TEXT(256),
  f_table_name TEXT(256),
  f_geometry_column TEXT(256),
  styleName TEXT(30),
  styleQML TEXT,
  styleSLD TEXT,
  useAsDefault BOOLEAN,
  description TEXT,
  owner TEXT(30),
  ui TEXT(30),
  update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)
"""

STYLE_NAME = "gridgis"


@dataclass(frozen=True)
class Rule:
    """One symbol rule: a QGIS filter expression, an SLD filter, a legend label, and the
    fill (``#rrggbb``, alpha 0–1, QGIS brush style) and outline (colour, mm, pen style)."""

    label: str
    expression: str
    sld_filter: str
    fill: str | None
    alpha: float = 1.0
    brush: str = "solid"
    outline: str = "#222222"
    width_mm: float = 0.26
    pen: str = "solid"


def _rgba(colour: str, alpha: float = 1.0) -> str:
    c = colour.lstrip("#")
    r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},{round(alpha * 255)}"


def _prop(name: str, value: str) -> str:
    return f'<Option type="QString" name="{name}" value={quoteattr(value)}/>'


def _fill_symbol(name: str, rule: Rule) -> str:
    fill = rule.fill or "#ffffff"
    props = "".join(
        _prop(k, v)
        for k, v in (
            ("color", _rgba(fill, rule.alpha if rule.fill else 0.0)),
            ("style", rule.brush if rule.fill else "no"),
            ("outline_color", _rgba(rule.outline)),
            ("outline_style", rule.pen),
            ("outline_width", f"{rule.width_mm:g}"),
            ("outline_width_unit", "MM"),
            ("joinstyle", "miter"),
        )
    )
    return (
        f'<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="SimpleFill" enabled="1" locked="0" pass="0">'
        f'<Option type="Map">{props}</Option></layer></symbol>'
    )


def _labeling(expression: str, size_pt: float = 9.0, colour: str = "#111111") -> str:
    return (
        '<labeling type="simple"><settings calloutType="simple">'
        f'<text-style fieldName={quoteattr(expression)} isExpression="1" '
        f'fontFamily="Noto Sans CJK SC" fontSize="{size_pt:g}" fontSizeUnit="Point" '
        f'textColor="{_rgba(colour)}" fontWeight="63" multilineAlign="1" textOpacity="1">'
        '<text-buffer bufferDraw="1" bufferSize="0.8" bufferSizeUnits="MM" '
        'bufferColor="255,255,255,255" bufferOpacity="0.9"/></text-style>'
        '<text-format wrapChar="" multilineAlign="1"/>'
        '<placement placement="1" centroidInside="1" centroidWhole="0" fitInPolygonOnly="0"/>'
        '<rendering obstacle="1" displayAll="0" limitNumLabels="0" scaleVisibility="0"/>'
        "</settings></labeling>"
    )


def qml(rules: Sequence[Rule], label_expression: str | None = None) -> str:
    """A QGIS style document: a rule-based renderer (every matching rule draws, in order)
    and simple labels from an expression."""
    rule_xml = "".join(
        f'<rule key="r{i}" symbol="{i}" filter={quoteattr(r.expression)} '
        f"label={quoteattr(r.label)}/>"
        for i, r in enumerate(rules)
    )
    symbols = "".join(_fill_symbol(str(i), r) for i, r in enumerate(rules))
    labels = _labeling(label_expression) if label_expression else ""
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.22.0" styleCategories="Symbology|Labeling" '
        f'labelsEnabled="{1 if labels else 0}">'
        '<renderer-v2 type="RuleRenderer" symbollevels="0" enableorderby="0" forceraster="0">'
        f'<rules key="root">{rule_xml}</rules><symbols>{symbols}</symbols></renderer-v2>'
        f"{labels}<blendMode>0</blendMode><layerOpacity>1</layerOpacity></qgis>"
    )


def sld(layer: str, rules: Sequence[Rule]) -> str:
    """The rules as an SLD 1.1 document (fills and outlines; labels are QML-only)."""
    out = []
    for r in rules:
        fill = (
            f'<se:Fill><se:SvgParameter name="fill">{r.fill}</se:SvgParameter>'
            f'<se:SvgParameter name="fill-opacity">{r.alpha:g}</se:SvgParameter></se:Fill>'
            if r.fill
            else ""
        )
        dash = (
            '<se:SvgParameter name="stroke-dasharray">6 3</se:SvgParameter>'
            if r.pen == "dash"
            else ""
        )
        px = r.width_mm * 3.78
        out.append(
            f"<se:Rule><se:Name>{escape(r.label)}</se:Name>{r.sld_filter}"
            f"<se:PolygonSymbolizer>{fill}<se:Stroke>"
            f'<se:SvgParameter name="stroke">{r.outline}</se:SvgParameter>'
            f'<se:SvgParameter name="stroke-width">{px:.2f}</se:SvgParameter>{dash}'
            "</se:Stroke></se:PolygonSymbolizer></se:Rule>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld" '
        'xmlns:ogc="http://www.opengis.net/ogc" xmlns:se="http://www.opengis.net/se">'
        f"<NamedLayer><se:Name>{escape(layer)}</se:Name><UserStyle>"
        f"<se:Name>{STYLE_NAME}</se:Name><se:FeatureTypeStyle>{''.join(out)}"
        "</se:FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>"
    )


def _cmp(field: str, op: str, value: str | float) -> str:
    lit = escape(str(value))
    return (
        f"<ogc:{op}><ogc:PropertyName>{field}</ogc:PropertyName>"
        f"<ogc:Literal>{lit}</ogc:Literal></ogc:{op}>"
    )


def _filter(*parts: str) -> str:
    body = parts[0] if len(parts) == 1 else "<ogc:And>" + "".join(parts) + "</ogc:And>"
    return f"<ogc:Filter>{body}</ogc:Filter>"


def household_rules(
    values: pd.Series, rules: MapRules, residential_only: bool = False
) -> list[Rule]:
    """One rule per household class of ``values`` (the web maps' breaks and colours at
    their opacity), labelled by the range of values in it, and one for no households."""
    breaks = class_breaks(values, rules.classes)
    v = pd.to_numeric(values, errors="coerce").fillna(0)
    base = "\"kind\" <> 'unit' AND " if residential_only else ""
    base_sld = [_cmp("kind", "PropertyIsNotEqualTo", "unit")] if residential_only else []
    out = []
    lower = 0.0
    for b in breaks:
        inside = v[(v > lower) & (v <= b)]
        if len(inside):
            lo, hi = inside.min(), inside.max()
            label = f"{lo:,.0f} 户" if lo == hi else f"{lo:,.0f} – {hi:,.0f} 户"
            out.append(
                Rule(
                    label,
                    f'{base}"households" > {lower:g} AND "households" <= {b:g}',
                    _filter(
                        *base_sld,
                        _cmp("households", "PropertyIsGreaterThan", lower),
                        _cmp("households", "PropertyIsLessThanOrEqualTo", b),
                    ),
                    colour_for(b, breaks, HOUSEHOLD_COLOURS),
                    rules.fill_opacity,
                )
            )
        lower = b
    return out


def grid_rules(grids: pd.DataFrame, rules: MapRules = DEFAULT.maps) -> list[Rule]:
    """The grid layer's rules: household classes (residential), open land, unit, flagged."""
    hh = pd.to_numeric(grids.get("households"), errors="coerce")
    kind = grids["kind"].astype(str) if "kind" in grids.columns else pd.Series("residential")
    res = hh[(kind != "unit").to_numpy()] if hh is not None else pd.Series(dtype=float)
    out = household_rules(res, rules, residential_only=True)
    out.append(
        Rule(
            "开放空间网格 (无住户)",
            '"kind" <> \'unit\' AND coalesce("households", 0) <= 0',
            _filter(
                _cmp("kind", "PropertyIsNotEqualTo", "unit"),
                _cmp("households", "PropertyIsLessThanOrEqualTo", 0),
            ),
            "#41ab5d",
            0.8,
            brush="dense6",
        )
    )
    out.append(
        Rule(
            "单位网格",
            "\"kind\" = 'unit'",
            _filter(_cmp("kind", "PropertyIsEqualTo", "unit")),
            "#525252",
            1.0,
            brush="b_diagonal",
        )
    )
    out.append(
        Rule(
            "⚠ 问题网格",
            '"flagged"',
            _filter(_cmp("flagged", "PropertyIsEqualTo", 1)),
            None,
            outline="#d00000",
            width_mm=0.9,
            pen="dash",
        )
    )
    return out


def layer_style(
    layer: str, frame: pd.DataFrame | None, rules: MapRules = DEFAULT.maps
) -> tuple[str, str] | None:
    """(QML, SLD) of one of the styled layers, or None for a layer without a style."""
    if layer == "grids" and frame is not None:
        r = grid_rules(frame, rules)
        label = "\"grid_code\" || '\\n' || coalesce(to_string(\"households\") || ' 户', '')"
    elif layer == "communities" and frame is not None:
        r = household_rules(frame.get("households", pd.Series(dtype=float)), rules)
        r.append(Rule("社区边界", "TRUE", "", None, outline="#6a51a3", width_mm=0.6))
        label = "\"name\" || '\\n' || coalesce(to_string(\"households\") || ' 户', '')"
    elif layer == "streets":
        r = [Rule("街道边界", "TRUE", "", None, outline="#08306b", width_mm=1.2)]
        label = '"name"'
    elif layer == "coverage_gaps":
        r = [
            Rule(
                "覆盖缺口",
                "TRUE",
                "",
                "#de2d26",
                1.0,
                brush="diagonal_x",
                outline="#de2d26",
                width_mm=0.4,
            )
        ]
        label = None
    else:
        return None
    return qml(r, label), sld(layer, r)


def write_layer_styles(
    gpkg: str | Path,
    layers: Sequence[str] | None = None,
    rules: MapRules = DEFAULT.maps,
) -> list[str]:
    """Add (or replace) the gridgis style of each styled layer in a GeoPackage's
    ``layer_styles`` table, as the layer's default style.

    Parameters
    ----------
    gpkg
        The GeoPackage (written by GDAL/pyogrio; the layers must be in it).
    layers
        Layer names to style (default: every styled layer the file has).
    rules
        Map drawing settings (classes, fill opacity) shared with the web maps.

    Returns
    -------
    list of str
        The layers that got a style.
    """
    import pyogrio

    path = Path(gpkg)
    present = [name for name, _ in pyogrio.list_layers(path)]
    wanted = [n for n in (layers or present) if n in present]
    styled = []
    with sqlite3.connect(path) as con:
        con.execute(LAYER_STYLES_SQL)
        con.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
            "description, last_change) VALUES ('layer_styles', 'attributes', "
            "'layer_styles', 'QGIS layer styles (gridgis)', "
            "strftime('%Y-%m-%dT%H:%M:%fZ','now'))"
        )
        geom_cols = dict(
            con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall()
        )
        for name in wanted:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{name}")')]
            need = [c for c in ("households", "kind", "flagged") if c in cols]
            frame = (
                pd.read_sql_query(f'SELECT {", ".join(need)} FROM "{name}"', con)
                if need
                else pd.DataFrame()
            )
            style = layer_style(name, frame, rules)
            if style is None:
                continue
            con.execute(
                "DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?",
                (name, STYLE_NAME),
            )
            con.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (name,))
            con.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, "
                "description, owner, ui) VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, 'gridgis', '')",
                (
                    name,
                    geom_cols.get(name, "geom"),
                    STYLE_NAME,
                    style[0],
                    style[1],
                    f"gridgis: {name}",
                ),
            )
            styled.append(name)
    return styled


__all__ = ["LAYER_STYLES_SQL", "NO_HOUSEHOLDS", "layer_style", "write_layer_styles"]
