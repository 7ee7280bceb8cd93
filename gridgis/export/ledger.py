"""The grid ledger (网格台账): one table per level — grids, communities, streets — with the
figures a street office files: codes, names, households, buildings, area, findings,
responsible people, facility counts by category and coverage rates.

Pure pandas: layers in, :class:`Ledger` out. Every writer (Excel, CSV, Shapefile,
GeoPackage, GeoJSON) writes these same tables, so the figures agree across formats.
Column names are the canonical English field names; :func:`column_label` gives the
Chinese header a person reads.

Sources of each figure (so a reader can check them against the workspace):

- households, buildings: the grids' ``households`` and ``building_count``; a community's
  and a street's are the sums over their grids (over buildings, by representative point,
  where a community has no grids);
- area: the grid's ``area_m2``; communities and streets measured in the metric CRS of the
  layer (m²);
- facility counts: the facilities layer, each facility counted in the grid / community of
  its ``grid_code`` / ``community_code`` (the assignment), or by point in polygon
  (:func:`gridgis.spatial.points_in_polygons`) where the layer has no such column;
- coverage rates: the ``coverage`` layer (walking-network rate, 0–1) per level and code;
- people: the ``staff`` layer (names; phone numbers only when personal data is asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS, metric_crs_for
from gridgis.layers import FACILITY_CATEGORIES, STAFF_ROLES
from gridgis.spatial import points_in_polygons, rank_of

#: Ledger levels in the order the workbook shows them, with their sheet names.
LEVELS: dict[str, str] = {"grids": "网格", "communities": "社区", "streets": "街道"}

#: Chinese header of every fixed ledger column.
LABELS: dict[str, str] = {
    "street_code": "街道代码",
    "street_name": "街道名称",
    "community_code": "社区代码",
    "community_name": "社区名称",
    "grid_code": "网格代码",
    "name": "名称",
    "kind": "网格类型代码",
    "kind_label": "网格类型",
    "urban_rural_class": "城乡分类代码",
    "households": "户数",
    "building_count": "建筑数",
    "area_m2": "面积(m²)",
    "flagged": "问题网格",
    "flags": "问题说明",
    "grid_head": "网格长",
    "grid_workers": "网格员",
    "grid_head_phone": "网格长电话",
    "grid_worker_phones": "网格员电话",
    "police": "社区民警",
    "police_phone": "社区民警电话",
    "community_workers": "专职社区工作者数",
    "community_count": "社区数",
    "grid_count": "网格数",
    "residential_grids": "住宅网格数",
    "unit_grids": "单位网格数",
    "flagged_grids": "问题网格数",
    "facilities_total": "设施合计",
    "valid_from": "生效日期",
}

#: Columns holding personal data (phone numbers): written only when asked for.
PERSONAL_COLUMNS = ("grid_head_phone", "grid_worker_phones", "police_phone")

#: Columns that hold codes: written as text (leading zeros and all 15 digits kept).
CODE_COLUMNS = ("street_code", "community_code", "grid_code", "urban_rural_class")

KIND_LABELS = {"residential": "住宅网格", "unit": "单位网格", "open": "开放空间网格"}


def column_label(column: str) -> str:
    """Chinese header of a ledger column (``facilities_kindergarten`` → "设施:幼儿园",
    ``coverage_kindergarten`` → "覆盖率:幼儿园")."""
    if column in LABELS:
        return LABELS[column]
    if column.startswith("facilities_"):
        cat = column[len("facilities_") :]
        return "设施:" + FACILITY_CATEGORIES.get(cat, cat)
    if column.startswith("coverage_"):
        from gridgis.maps.coverage import category_label

        return "覆盖率:" + category_label(column[len("coverage_") :])
    return column


@dataclass
class Ledger:
    """The three ledger tables (geometry kept, lon/lat), and notes on what was missing."""

    tables: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    with_personal: bool = False

    def plain(self, level: str) -> pd.DataFrame:
        """The table of one level without geometry."""
        t = self.tables[level]
        return pd.DataFrame(t.drop(columns=t.geometry.name))


def _codes(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip()


def _num(s: pd.Series | None, index: pd.Index) -> pd.Series:
    if s is None:
        return pd.Series(np.nan, index=index)
    return pd.to_numeric(s, errors="coerce")


def _area_m2(gdf: gpd.GeoDataFrame) -> pd.Series:
    if len(gdf) == 0:
        return pd.Series([], dtype=float)
    return gdf.geometry.to_crs(metric_crs_for(gdf)).area.round(1)


def _key_of(frame: gpd.GeoDataFrame | None, polygons: gpd.GeoDataFrame, column: str) -> pd.Series:
    """The ``column`` code of the polygon holding each row: the row's own value when the
    layer carries the column, else by point in polygon (the project's one rule)."""
    if frame is None or len(frame) == 0:
        return pd.Series([], dtype="string")
    own = (
        _codes(frame[column])
        if column in frame.columns
        else pd.Series(pd.NA, index=frame.index, dtype="string")
    )
    missing = own.isna().to_numpy()
    if missing.any() and isinstance(frame, gpd.GeoDataFrame) and len(polygons):
        pts = shapely.point_on_surface(frame.geometry.to_crs(STORAGE_CRS).values[missing])
        codes = _codes(polygons[column]).to_numpy()
        idx = points_in_polygons(pts, polygons.geometry.values, rank_of(codes))
        found = np.where(idx >= 0, codes[np.maximum(idx, 0)], None)
        own = own.copy()
        own.iloc[np.flatnonzero(missing)] = pd.array(found, dtype="string")
    return own


def _facility_counts(
    facilities: gpd.GeoDataFrame | None, keys: pd.Series, codes: pd.Series
) -> pd.DataFrame:
    """``facilities_<category>`` counts (categories present in the layer, in the
    vocabulary's order) and ``facilities_total`` per code."""
    if facilities is None or len(facilities) == 0:
        return pd.DataFrame(index=codes)
    cat = facilities["category"].astype(str).to_numpy()
    present = [c for c in FACILITY_CATEGORIES if c in set(cat)]
    table = pd.crosstab(keys.to_numpy(), cat).reindex(index=codes, columns=present).fillna(0)
    table = table.astype(int)
    table.columns = [f"facilities_{c}" for c in present]
    table["facilities_total"] = table.sum(axis=1)
    return table


def _coverage_rates(coverage: pd.DataFrame | None, level: str, codes: pd.Series) -> pd.DataFrame:
    """``coverage_<category>`` walking-network rates (0–1) per code of one level."""
    if coverage is None or len(coverage) == 0 or "level" not in coverage.columns:
        return pd.DataFrame(index=codes)
    c = coverage[coverage["level"].astype(str) == level]
    if len(c) == 0:
        return pd.DataFrame(index=codes)
    table = c.pivot_table(
        index=_codes(c["code"]), columns="category", values="rate", aggfunc="first"
    )
    order = [k for k in FACILITY_CATEGORIES if k in table.columns]
    order += [k for k in table.columns if k not in order]
    table = table.reindex(index=codes, columns=order)
    table.columns = [f"coverage_{k}" for k in order]
    return table


def _staff_names(staff: pd.DataFrame | None, key: str, role: str) -> tuple[pd.Series, pd.Series]:
    """Names and phones ("、"-joined, by staff_id) of one role per ``key`` code."""
    if staff is None or len(staff) == 0 or key not in staff.columns:
        return pd.Series(dtype="string"), pd.Series(dtype="string")
    s = staff[staff["role"].astype(str) == role]
    s = s[_codes(s[key]).notna()]
    if "staff_id" in s.columns:
        s = s.sort_values("staff_id")
    k = _codes(s[key])
    names = s["name"].astype(str).groupby(k.to_numpy()).agg("、".join)
    phone = s["phone"] if "phone" in s.columns else pd.Series(pd.NA, index=s.index)
    phones = (
        phone.astype("string")
        .fillna("")
        .groupby(k.to_numpy())
        .agg(lambda v: "、".join(x for x in v if x))
    )
    return names, phones


def _flags_text(v: object) -> str:
    if isinstance(v, (list, tuple, set, np.ndarray)):
        return "; ".join(map(str, v))
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    text = str(v).strip()
    return "" if text in ("[]", "{}", "none", "None") else text


def grid_table(
    grids: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame,
    layers: dict,
    with_personal: bool,
) -> gpd.GeoDataFrame:
    """The grid sheet: one row per grid, sorted by code."""
    g = grids.to_crs(STORAGE_CRS).copy()
    g["grid_code"] = _codes(g["grid_code"])
    g = g.sort_values("grid_code", kind="stable").reset_index(drop=True)
    cc = _codes(g["community_code"]) if "community_code" in g.columns else g["grid_code"].str[:12]
    comm = communities.set_index(_codes(communities["community_code"]))
    sc = cc.map(_codes(comm["street_code"])).fillna(g["grid_code"].str[:9])
    st_names = dict(zip(_codes(streets["street_code"]), streets["name"].astype(str), strict=True))
    kind = g["kind"].astype(str) if "kind" in g.columns else pd.Series("residential", index=g.index)
    flags = g["flags"].map(_flags_text) if "flags" in g.columns else pd.Series("", index=g.index)
    area = _num(g.get("area_m2"), g.index)
    area = area.where(area.notna(), _area_m2(g))
    out = pd.DataFrame(
        {
            "street_code": sc,
            "street_name": sc.map(st_names),
            "community_code": cc,
            "community_name": cc.map(comm["name"].astype(str)),
            "grid_code": g["grid_code"],
            "name": g["name"].astype("string") if "name" in g.columns else pd.NA,
            "kind": kind,
            "kind_label": kind.map(KIND_LABELS).fillna(kind),
            "households": _num(g.get("households"), g.index).round().astype("Int64"),
            "building_count": _num(g.get("building_count"), g.index).round().astype("Int64"),
            "area_m2": area.astype(float),
            "flagged": flags != "",
            "flags": flags,
        }
    )
    if "valid_from" in g.columns:
        out["valid_from"] = g["valid_from"].astype("string")
    staff = layers.get("staff")
    codes = out["grid_code"]
    for role, col, pcol in (
        ("grid_head", "grid_head", "grid_head_phone"),
        ("grid_worker", "grid_workers", "grid_worker_phones"),
    ):
        names, phones = _staff_names(staff, "grid_code", role)
        fallback = g[col].astype("string") if col in g.columns else pd.NA
        out[col] = codes.map(names).astype("string").fillna(fallback)
        if with_personal:
            out[pcol] = codes.map(phones).astype("string")
    fac = layers.get("facilities")
    keys = _key_of(fac, g, "grid_code")
    out = out.join(_facility_counts(fac, keys, codes), on="grid_code")
    out = out.join(_coverage_rates(layers.get("coverage"), "grid", codes), on="grid_code")
    return gpd.GeoDataFrame(out, geometry=g.geometry.values, crs=STORAGE_CRS)


def community_table(
    communities: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame,
    grid_rows: gpd.GeoDataFrame | None,
    layers: dict,
    with_personal: bool,
) -> gpd.GeoDataFrame:
    """The community sheet (per-community statistics), sorted by code."""
    c = communities.to_crs(STORAGE_CRS).copy()
    c["community_code"] = _codes(c["community_code"])
    c = c.sort_values("community_code", kind="stable").reset_index(drop=True)
    codes = c["community_code"]
    st_names = dict(zip(_codes(streets["street_code"]), streets["name"].astype(str), strict=True))
    sc = _codes(c["street_code"])
    out = pd.DataFrame(
        {
            "street_code": sc,
            "street_name": sc.map(st_names),
            "community_code": codes,
            "name": c["name"].astype("string"),
            "urban_rural_class": _codes(c["urban_rural_class"])
            if "urban_rural_class" in c.columns
            else pd.NA,
        }
    )
    if grid_rows is not None and len(grid_rows):
        by = grid_rows.groupby("community_code")
        agg = pd.DataFrame(
            {
                "grid_count": by.size(),
                "residential_grids": by["kind"].agg(lambda k: int((k == "residential").sum())),
                "unit_grids": by["kind"].agg(lambda k: int((k == "unit").sum())),
                "flagged_grids": by["flagged"].sum().astype(int),
                "households": by["households"].sum(),
                "building_count": by["building_count"].sum(),
            }
        ).reindex(codes)
    else:
        agg = pd.DataFrame(index=codes, columns=["grid_count", "households", "building_count"])
        b = layers.get("buildings")
        if b is not None and len(b):
            bk = _key_of(b, c, "community_code")
            agg["households"] = _num(b["households"], b.index).groupby(bk.to_numpy()).sum()
            agg["building_count"] = bk.value_counts()
    agg = agg.fillna(0).astype(int)
    out = out.join(agg, on="community_code")
    out["area_m2"] = _area_m2(c).to_numpy()
    staff = layers.get("staff")
    names, phones = _staff_names(staff, "community_code", "police")
    out["police"] = codes.map(names).astype("string")
    if with_personal:
        out["police_phone"] = codes.map(phones).astype("string")
    if staff is not None and len(staff) and "community_code" in staff.columns:
        w = staff[staff["role"].astype(str) == "community_worker"]
        out["community_workers"] = codes.map(_codes(w["community_code"]).value_counts())
        out["community_workers"] = out["community_workers"].fillna(0).astype(int)
    fac = layers.get("facilities")
    keys = _key_of(fac, c, "community_code")
    out = out.join(_facility_counts(fac, keys, codes), on="community_code")
    out = out.join(_coverage_rates(layers.get("coverage"), "community", codes), on="community_code")
    return gpd.GeoDataFrame(out, geometry=c.geometry.values, crs=STORAGE_CRS)


def street_table(
    streets: gpd.GeoDataFrame, community_rows: gpd.GeoDataFrame, layers: dict
) -> gpd.GeoDataFrame:
    """The street sheet, sorted by code; figures are sums over its communities."""
    s = streets.to_crs(STORAGE_CRS).copy()
    s["street_code"] = _codes(s["street_code"])
    s = s.sort_values("street_code", kind="stable").reset_index(drop=True)
    codes = s["street_code"]
    out = pd.DataFrame({"street_code": codes, "name": s["name"].astype("string")})
    cr = pd.DataFrame(community_rows.drop(columns=community_rows.geometry.name))
    summed = [
        c
        for c in ("grid_count", "flagged_grids", "households", "building_count")
        if c in cr.columns
    ]
    summed += [c for c in cr.columns if c.startswith("facilities_")]
    agg = cr.groupby("street_code")[summed].sum()
    agg.insert(0, "community_count", cr.groupby("street_code").size())
    out = out.join(agg.reindex(codes).fillna(0).astype(int), on="street_code")
    out["area_m2"] = _area_m2(s).to_numpy()
    out = out.join(_coverage_rates(layers.get("coverage"), "street", codes), on="street_code")
    return gpd.GeoDataFrame(out, geometry=s.geometry.values, crs=STORAGE_CRS)


def ledger(layers: dict, with_personal: bool = False) -> Ledger:
    """The grid ledger of a workspace's layers.

    Parameters
    ----------
    layers
        Layers by name (``communities`` required; ``streets``, ``grids``, ``buildings``,
        ``facilities``, ``staff``, ``coverage`` used when present), any CRS.
    with_personal
        Add the phone numbers of grid heads, grid workers and police officers (personal
        data: only for holders of the write token or the CLI's explicit request).

    Returns
    -------
    Ledger
        Tables ``grids`` (when the workspace has grids), ``communities``, ``streets``.
    """
    from gridgis.maps.site import streets_from_communities

    comms = layers.get("communities")
    if comms is None or len(comms) == 0:
        from gridgis.errors import NotFoundError

        raise NotFoundError(
            "the ledger needs layer 'communities': import it, delineate communities or run "
            "the demo first"
        )
    out = Ledger(with_personal=with_personal)
    streets = layers.get("streets")
    if streets is None or len(streets) == 0:
        streets = streets_from_communities(comms)
        out.notes.append("no 'streets' layer: streets are the union of their communities")
    grids = layers.get("grids")
    if grids is not None and len(grids):
        from gridgis.maps.boards import with_valid_from

        grids = with_valid_from(grids, layers.get("grid_versions"))
        out.tables["grids"] = grid_table(grids, comms, streets, layers, with_personal)
    else:
        out.notes.append("no 'grids' layer: the ledger has communities and streets only")
    if layers.get("coverage") is None:
        out.notes.append("no 'coverage' layer: no coverage rates (run coverage first)")
    out.tables["communities"] = community_table(
        comms, streets, out.tables.get("grids"), layers, with_personal
    )
    out.tables["streets"] = street_table(streets, out.tables["communities"], layers)
    out.tables = {k: out.tables[k] for k in LEVELS if k in out.tables}
    return out


__all__ = [
    "CODE_COLUMNS",
    "KIND_LABELS",
    "LABELS",
    "LEVELS",
    "Ledger",
    "PERSONAL_COLUMNS",
    "STAFF_ROLES",
    "column_label",
    "ledger",
]
