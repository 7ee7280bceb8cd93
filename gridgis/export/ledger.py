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

The rows are computed in two steps so that any block of whole streets can be computed on
its own (:mod:`gridgis.export.blocks`, and on a cluster :mod:`gridgis.partitioned.export`):
:func:`ledger_parts` prepares once, over the whole workspace, everything that looks past
a street (the polygon each facility or building falls in, the categories and coverage
columns present, the metric CRS of each level, the staff order), and :func:`ledger_rows`
makes the rows of the whole city or of :meth:`LedgerParts.block`; a community's figures
are sums over its grids and a street's over its communities, all inside the block.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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


def _area_m2(gdf: gpd.GeoDataFrame, crs=None) -> pd.Series:
    """Areas (m², 0.1 m²) in ``crs`` (default: the metric CRS of ``gdf`` itself)."""
    if len(gdf) == 0:
        return pd.Series([], dtype=float)
    return gdf.geometry.to_crs(crs or metric_crs_for(gdf)).area.round(1)


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
    facilities: pd.DataFrame | None, key: str, codes: pd.Series, present: list[str] | None
) -> pd.DataFrame:
    """``facilities_<category>`` counts (``present``: the categories of the whole layer, in
    the vocabulary's order; None: no facilities layer) and ``facilities_total`` per code,
    each facility counted under its ``key`` column (see :func:`ledger_parts`)."""
    if present is None:
        return pd.DataFrame(index=codes)
    f = facilities if facilities is not None else pd.DataFrame({key: [], "category": []})
    table = pd.crosstab(f[key].to_numpy(), f["category"].astype(str).to_numpy())
    table = table.reindex(index=codes, columns=present).fillna(0).astype(int)
    table.columns = [f"facilities_{c}" for c in present]
    table["facilities_total"] = table.sum(axis=1)
    return table


def _coverage_columns(coverage: pd.DataFrame | None, level: str) -> list[str]:
    """The coverage categories of one level, in the order the ledger shows them (the
    vocabulary's first, then the others as the rate table sorts them)."""
    if coverage is None or len(coverage) == 0 or "level" not in coverage.columns:
        return []
    c = coverage[coverage["level"].astype(str) == level]
    if len(c) == 0:
        return []
    table = c.pivot_table(index=c["code"], columns="category", values="rate", aggfunc="first")
    order = [k for k in FACILITY_CATEGORIES if k in table.columns]
    return order + [k for k in table.columns if k not in order]


def _coverage_rates(
    coverage: pd.DataFrame | None, level: str, codes: pd.Series, order: list[str]
) -> pd.DataFrame:
    """``coverage_<category>`` walking-network rates (0–1) per code of one level, for the
    categories ``order`` (:func:`_coverage_columns` of the whole layer)."""
    if not order:
        return pd.DataFrame(index=codes)
    cols = [f"coverage_{k}" for k in order]
    c = coverage[coverage["level"].astype(str) == level] if coverage is not None else []
    if len(c) == 0:
        return pd.DataFrame(np.nan, index=codes, columns=cols, dtype=float)
    table = c.pivot_table(index=c["code"], columns="category", values="rate", aggfunc="first")
    table = table.reindex(index=codes, columns=order).astype(float)
    table.columns = cols
    return table


def _staff_names(staff: pd.DataFrame | None, key: str, role: str) -> tuple[pd.Series, pd.Series]:
    """Names and phones ("、"-joined, in staff_id order) of one role per ``key`` code
    (``staff`` sorted by staff_id, see :func:`ledger_parts`)."""
    if staff is None or len(staff) == 0 or key not in staff.columns:
        return pd.Series(dtype="string"), pd.Series(dtype="string")
    s = staff[staff["role"].astype(str) == role]
    s = s[_codes(s[key]).notna()]
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


@dataclass
class LedgerParts:
    """What the ledger's rows are computed from, prepared once over the whole workspace
    (:func:`ledger_parts`), so that the rows of any block of whole streets
    (:meth:`block`) are the rows the whole city gives them.

    Attributes
    ----------
    grids, communities, streets
        The polygons in the storage CRS, codes stripped, sorted by code (stable); the
        index is each row's position in its ledger table. ``grids`` None without grids.
    street_of
        Per level, the street code each row belongs to (a grid: its community's street,
        else the first 9 digits of its code; NA counts as ""); a block holds whole
        streets.
    staff
        The staff layer sorted by ``staff_id`` (stable), or None.
    facilities
        ``category`` and the ``grid_code`` / ``community_code`` each facility is counted
        in (its own value, else by the one point-in-polygon rule over the WHOLE layer),
        or None; ``categories``: the categories present, in the vocabulary's order.
    buildings
        Without grids: ``community_code`` (as facilities) and ``households`` per building.
    coverage
        The coverage layer, codes stripped; ``coverage_columns`` per level.
    metric
        Per level, the metric CRS areas are measured in (chosen once for the layer).
    community_workers
        The staff layer can count community workers per community.
    notes
        What was missing (as :attr:`Ledger.notes`).
    """

    communities: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame | None = None
    street_of: dict[str, pd.Series] = field(default_factory=dict)
    staff: pd.DataFrame | None = None
    facilities: pd.DataFrame | None = None
    categories: list[str] | None = None
    buildings: pd.DataFrame | None = None
    coverage: pd.DataFrame | None = None
    coverage_columns: dict[str, list[str]] = field(default_factory=dict)
    metric: dict[str, object] = field(default_factory=dict)
    community_workers: bool = False
    with_personal: bool = False
    notes: list[str] = field(default_factory=list)

    def block(self, streets: set[str]) -> LedgerParts:
        """The parts of the ledger rows of these streets (codes), and of nothing else."""

        def rows(frame, level):
            return frame[self.street_of[level].fillna("").isin(streets).to_numpy()]

        grids = rows(self.grids, "grids") if self.grids is not None else None
        comms = rows(self.communities, "communities")
        keys = {
            "grid_code": set(grids["grid_code"].dropna()) if grids is not None else set(),
            "community_code": set(comms["community_code"].dropna()),
        }
        return replace(
            self,
            grids=grids,
            communities=comms,
            streets=rows(self.streets, "streets"),
            street_of={k: rows(v, k) for k, v in self.street_of.items()},
            staff=_rows_of(self.staff, keys),
            facilities=_rows_of(self.facilities, keys),
            buildings=_rows_of(self.buildings, keys),
            coverage=_coverage_of(self.coverage, keys, streets),
        )


def _rows_of(frame: pd.DataFrame | None, keys: dict[str, set]) -> pd.DataFrame | None:
    """Rows of ``frame`` whose grid or community code is one of ``keys``."""
    if frame is None:
        return None
    mask = np.zeros(len(frame), bool)
    for column, codes in keys.items():
        if column in frame.columns:
            mask |= _codes(frame[column]).isin(codes).to_numpy()
    return frame[mask]


def _coverage_of(coverage: pd.DataFrame | None, keys: dict[str, set], streets: set[str]):
    if coverage is None or len(coverage) == 0 or "level" not in coverage.columns:
        return coverage
    level = coverage["level"].astype(str)
    code = coverage["code"]
    mask = (
        ((level == "grid") & code.isin(keys["grid_code"]))
        | ((level == "community") & code.isin(keys["community_code"]))
        | ((level == "street") & code.isin(streets))
    )
    return coverage[mask.to_numpy()]


def _sorted(frame: gpd.GeoDataFrame, column: str) -> gpd.GeoDataFrame:
    out = frame.to_crs(STORAGE_CRS).copy()
    out[column] = _codes(out[column])
    return out.sort_values(column, kind="stable").reset_index(drop=True)


def _metric(frame: gpd.GeoDataFrame):
    return metric_crs_for(frame) if len(frame) else None


def _keys_of(layer, grids, comms, columns=("category",)) -> pd.DataFrame | None:
    """``columns`` of a point layer with the grid and community code of each row."""
    if layer is None or len(layer) == 0:
        return None
    out = pd.DataFrame({c: layer[c].to_numpy() for c in columns}, index=layer.index)
    if grids is not None:
        out["grid_code"] = _key_of(layer, grids, "grid_code").to_numpy()
    out["community_code"] = _key_of(layer, comms, "community_code").to_numpy()
    return out


def ledger_parts(layers: dict, with_personal: bool = False) -> LedgerParts:
    """The ledger's inputs, prepared once over the whole workspace (see
    :class:`LedgerParts`; arguments as :func:`ledger`)."""
    from gridgis.maps.site import streets_from_communities

    comms = layers.get("communities")
    if comms is None or len(comms) == 0:
        from gridgis.errors import NotFoundError

        raise NotFoundError(
            "the ledger needs layer 'communities': import it, delineate communities or run "
            "the demo first"
        )
    notes = []
    streets = layers.get("streets")
    if streets is None or len(streets) == 0:
        streets = streets_from_communities(comms)
        notes.append("no 'streets' layer: streets are the union of their communities")
    c = _sorted(comms, "community_code")
    s = _sorted(streets, "street_code")
    parts = LedgerParts(communities=c, streets=s, with_personal=with_personal, notes=notes)
    # the street each row goes with when the ledger is cut into blocks of streets: a
    # community without a street code by its code's street part, and a grid with its
    # community, so that a community and its grids are always in one block
    comm_street = _codes(c["street_code"]).replace("", pd.NA)
    comm_street = comm_street.fillna(c["community_code"].astype(str).str[:9])
    parts.street_of = {"communities": comm_street, "streets": s["street_code"]}
    grids = layers.get("grids")
    if grids is not None and len(grids):
        from gridgis.maps.boards import with_valid_from

        g = _sorted(with_valid_from(grids, layers.get("grid_versions")), "grid_code")
        by_community = pd.Series(comm_street.to_numpy(), index=c["community_code"].to_numpy())
        by_community = by_community[~by_community.index.duplicated()]
        sc = _grid_community(g).map(by_community).fillna(g["grid_code"].str[:9])
        parts.grids, parts.street_of["grids"] = g, sc
        parts.metric["grids"] = _metric(g)
    else:
        notes.append("no 'grids' layer: the ledger has communities and streets only")
    if layers.get("coverage") is None:
        notes.append("no 'coverage' layer: no coverage rates (run coverage first)")
    parts.metric.update(communities=_metric(c), streets=_metric(s))
    staff = layers.get("staff")
    if staff is not None and len(staff):
        parts.staff = staff.sort_values("staff_id", kind="stable") if "staff_id" in staff else staff
        parts.community_workers = "community_code" in staff.columns
    fac = layers.get("facilities")
    parts.facilities = _keys_of(fac, parts.grids, c)
    if parts.facilities is not None:
        cats = set(parts.facilities["category"].astype(str))
        parts.categories = [k for k in FACILITY_CATEGORIES if k in cats]
    if parts.grids is None:
        parts.buildings = _keys_of(layers.get("buildings"), None, c, ("households",))
    cov = layers.get("coverage")
    if cov is not None and len(cov) and "level" in cov.columns:
        cov = pd.DataFrame(cov).assign(code=_codes(cov["code"]))
    parts.coverage = cov
    parts.coverage_columns = {
        level: _coverage_columns(cov, level) for level in ("grid", "community", "street")
    }
    return parts


def _grid_community(g: pd.DataFrame) -> pd.Series:
    return _codes(g["community_code"]) if "community_code" in g.columns else g["grid_code"].str[:12]


def grid_table(parts: LedgerParts) -> gpd.GeoDataFrame:
    """The grid sheet: one row per grid of ``parts``, in code order."""
    g = parts.grids
    cc = _grid_community(g)
    comm = parts.communities.set_index("community_code")
    sc = cc.map(_codes(comm["street_code"])).fillna(g["grid_code"].str[:9])
    streets = parts.streets
    st_names = dict(zip(streets["street_code"], streets["name"].astype(str), strict=True))
    kind = g["kind"].astype(str) if "kind" in g.columns else pd.Series("residential", index=g.index)
    flags = g["flags"].map(_flags_text) if "flags" in g.columns else pd.Series("", index=g.index)
    area = _num(g.get("area_m2"), g.index)
    area = area.where(area.notna(), _area_m2(g, parts.metric["grids"]))
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
    codes = out["grid_code"]
    for role, col, pcol in (
        ("grid_head", "grid_head", "grid_head_phone"),
        ("grid_worker", "grid_workers", "grid_worker_phones"),
    ):
        names, phones = _staff_names(parts.staff, "grid_code", role)
        fallback = g[col].astype("string") if col in g.columns else pd.NA
        out[col] = codes.map(names).astype("string").fillna(fallback)
        if parts.with_personal:
            out[pcol] = codes.map(phones).astype("string")
    out = out.join(
        _facility_counts(parts.facilities, "grid_code", codes, parts.categories), on="grid_code"
    )
    rates = _coverage_rates(parts.coverage, "grid", codes, parts.coverage_columns["grid"])
    out = out.join(rates, on="grid_code")
    return gpd.GeoDataFrame(out, geometry=g.geometry.values, crs=STORAGE_CRS)


def _grid_sums(grid_rows: pd.DataFrame, codes: pd.Series) -> pd.DataFrame:
    """Per community: grids (all, residential, unit, flagged), households, buildings."""
    by = grid_rows.groupby("community_code")
    return pd.DataFrame(
        {
            "grid_count": by.size(),
            "residential_grids": by["kind"].agg(lambda k: int((k == "residential").sum())),
            "unit_grids": by["kind"].agg(lambda k: int((k == "unit").sum())),
            "flagged_grids": by["flagged"].sum().astype(int),
            "households": by["households"].sum(),
            "building_count": by["building_count"].sum(),
        }
    ).reindex(codes)


def community_table(parts: LedgerParts, grid_rows: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """The community sheet (per-community statistics, from ``grid_rows``: the grid sheet
    of the same parts), in code order."""
    c = parts.communities
    codes = c["community_code"]
    streets = parts.streets
    st_names = dict(zip(streets["street_code"], streets["name"].astype(str), strict=True))
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
    if grid_rows is not None:
        agg = _grid_sums(grid_rows, codes)
    else:
        agg = pd.DataFrame(index=codes, columns=["grid_count", "households", "building_count"])
        b = parts.buildings
        if b is not None and len(b):
            bk = b["community_code"]
            agg["households"] = _num(b["households"], b.index).groupby(bk.to_numpy()).sum()
            agg["building_count"] = bk.value_counts()
    agg = agg.fillna(0).astype(int)
    out = out.join(agg, on="community_code")
    out["area_m2"] = _area_m2(c, parts.metric["communities"]).to_numpy()
    staff = parts.staff
    names, phones = _staff_names(staff, "community_code", "police")
    out["police"] = codes.map(names).astype("string")
    if parts.with_personal:
        out["police_phone"] = codes.map(phones).astype("string")
    if parts.community_workers:
        w = staff[staff["role"].astype(str) == "community_worker"]
        out["community_workers"] = codes.map(_codes(w["community_code"]).value_counts())
        out["community_workers"] = out["community_workers"].fillna(0).astype(int)
    fac = _facility_counts(parts.facilities, "community_code", codes, parts.categories)
    out = out.join(fac, on="community_code")
    order = parts.coverage_columns["community"]
    out = out.join(_coverage_rates(parts.coverage, "community", codes, order), on="community_code")
    return gpd.GeoDataFrame(out, geometry=c.geometry.values, crs=STORAGE_CRS)


def street_table(parts: LedgerParts, community_rows: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The street sheet, in code order; figures are sums over its communities."""
    s = parts.streets
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
    out["area_m2"] = _area_m2(s, parts.metric["streets"]).to_numpy()
    order = parts.coverage_columns["street"]
    out = out.join(_coverage_rates(parts.coverage, "street", codes, order), on="street_code")
    return gpd.GeoDataFrame(out, geometry=s.geometry.values, crs=STORAGE_CRS)


def ledger_rows(parts: LedgerParts) -> dict[str, gpd.GeoDataFrame]:
    """The ledger tables of ``parts`` (the whole city, or a block of whole streets:
    :meth:`LedgerParts.block`), by level in :data:`LEVELS` order; the index is each row's
    position in the whole city's table (:func:`join_rows` puts blocks together)."""
    out = {}
    if parts.grids is not None:
        out["grids"] = grid_table(parts)
    out["communities"] = community_table(parts, out.get("grids"))
    out["streets"] = street_table(parts, out["communities"])
    return {k: out[k] for k in LEVELS if k in out}


def join_rows(blocks: list[dict[str, gpd.GeoDataFrame]]) -> dict[str, gpd.GeoDataFrame]:
    """The tables of blocks (:func:`ledger_rows`) joined in the whole city's row order."""
    out = {}
    for level in blocks[0]:
        # empty blocks add no rows, only dtypes of their own (an empty map keeps its input's)
        frames = [b[level] for b in blocks if len(b[level])] or [blocks[0][level]]
        t = frames[0] if len(frames) == 1 else pd.concat(frames)
        out[level] = t.sort_index(kind="stable").reset_index(drop=True)
    return out


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
    parts = ledger_parts(layers, with_personal)
    tables = join_rows([ledger_rows(parts)])
    return Ledger(tables=tables, notes=list(parts.notes), with_personal=with_personal)


__all__ = [
    "CODE_COLUMNS",
    "KIND_LABELS",
    "LABELS",
    "LEVELS",
    "Ledger",
    "PERSONAL_COLUMNS",
    "STAFF_ROLES",
    "LedgerParts",
    "column_label",
    "join_rows",
    "ledger",
    "ledger_parts",
    "ledger_rows",
]
