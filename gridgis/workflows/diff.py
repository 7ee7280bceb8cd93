"""Change orders (网格调整单): what changed between two grid plans — two workspaces, or two
dates of one workspace's ``grid_versions`` — grid by grid and community by community.

A grid is *created* (a new code), *retired* (a code gone), *reshaped* (same code, other
geometry) or *renamed* (a new code over an old one's place: IoU ≥ ``grid.recode_min_iou``
with a code that is gone). Buildings, households, addresses and staff *move* when their
grid differs between the two plans.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS, metric_crs_for
from gridgis.errors import InputError, NotFoundError
from gridgis.standards import Settings
from gridgis.store import Store
from gridgis.workflows.base import JobResult, write_layers
from gridgis.workflows.versions import effective_date, grids_as_of, same_geometry

CHANGE_COLUMNS = [
    "change",
    "old_code",
    "new_code",
    "community_code",
    "buildings_in",
    "buildings_out",
    "households_in",
    "households_out",
    "effective",
]
"""Columns of layer ``grid_changes`` (plus the grid's geometry: the new one, or the old one
of a retired grid)."""

CHANGE_LABELS = {"created": "新设", "retired": "撤销", "reshaped": "调整边界", "renamed": "更名"}
"""How a change is called on the printed change order."""

ITEMS = {"buildings": "building_id", "addresses": "address_id", "staff": "staff_id"}
"""What can move between grids, by its key."""


@dataclass
class Plan:
    """One side of a comparison: grids and where each building, address and person is."""

    grids: gpd.GeoDataFrame
    items: dict[str, pd.DataFrame] = field(default_factory=dict)
    label: str = ""


@dataclass
class GridDiff:
    """The comparison: ``changes`` (one row per changed grid, :data:`CHANGE_COLUMNS`),
    ``moves`` (one row per moved item: item, id, old_code, new_code, community_code,
    households), ``per_community`` (counts), ``effective`` date and ``notes``."""

    changes: gpd.GeoDataFrame
    moves: pd.DataFrame
    per_community: pd.DataFrame
    effective: str
    notes: list[str] = field(default_factory=list)


def _codes(frame: pd.DataFrame) -> pd.Series:
    return frame["grid_code"].astype("string").fillna("")


def _match_renamed(old, new, only_old, only_new, settings) -> dict[str, str]:
    """new code -> old code for new grids lying over a gone grid (IoU ≥ recode_min_iou)."""
    if not len(only_old) or not len(only_new):
        return {}
    crs = metric_crs_for(new)
    o = old[_codes(old).isin(only_old)].to_crs(crs)
    n = new[_codes(new).isin(only_new)].to_crs(crs)
    og, ng = o.geometry.to_numpy(), n.geometry.to_numpy()
    ni, oi = shapely.STRtree(og).query(ng, predicate="intersects")
    inter = shapely.area(shapely.intersection(ng[ni], og[oi]))
    union = shapely.area(ng[ni]) + shapely.area(og[oi]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    out: dict[str, str] = {}
    used: set[int] = set()
    for k in np.argsort(-iou, kind="stable"):
        if iou[k] < settings.grid.recode_min_iou:
            break
        a, b = int(ni[k]), int(oi[k])
        code = str(_codes(n).iloc[a])
        if code in out or b in used:
            continue
        out[code] = str(_codes(o).iloc[b])
        used.add(b)
    return out


def _moves(old: Plan, new: Plan, community: dict[str, str]) -> pd.DataFrame:
    rows = []
    for item, key in ITEMS.items():
        a, b = old.items.get(item), new.items.get(item)
        if a is None or b is None or key not in a or key not in b:
            continue
        left = pd.DataFrame({key: a[key].astype(str), "old_code": _codes(a).to_numpy()})
        right = pd.DataFrame({key: b[key].astype(str), "new_code": _codes(b).to_numpy()})
        if "households" in b:
            right["households"] = pd.to_numeric(b["households"], errors="coerce").fillna(0)
        both = left.merge(right, on=key, how="inner")
        moved = both[both["old_code"] != both["new_code"]].rename(columns={key: "id"})
        moved.insert(0, "item", item)
        rows.append(moved)
    cols = ["item", "id", "old_code", "new_code", "households"]
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)
    out = out.reindex(columns=cols)
    out["households"] = pd.to_numeric(out["households"], errors="coerce").fillna(0).astype(int)
    out.loc[out["item"] != "buildings", "households"] = 0
    code = out["new_code"].where(out["new_code"] != "", out["old_code"])
    out["community_code"] = code.map(community).fillna(code.str[:12])
    return out


def _change_rows(old, new, renamed, settings) -> list[dict[str, Any]]:
    oc, nc = _codes(old), _codes(new)
    old_at = {c: i for i, c in enumerate(oc) if c}
    new_at = {c: i for i, c in enumerate(nc) if c}
    rows: list[dict[str, Any]] = []
    both = sorted(set(old_at) & set(new_at))
    if both:
        same = same_geometry(
            old.geometry.to_numpy()[[old_at[c] for c in both]],
            new.geometry.to_numpy()[[new_at[c] for c in both]],
        )
        rows += [
            {
                "change": "reshaped",
                "old_code": c,
                "new_code": c,
                "geometry": new.geometry.iloc[new_at[c]],
            }
            for c, s in zip(both, same, strict=True)
            if not s
        ]
    gone_renamed = set(renamed.values())
    for c in sorted(set(new_at) - set(old_at)):
        kind = "renamed" if c in renamed else "created"
        rows.append(
            {
                "change": kind,
                "old_code": renamed.get(c, ""),
                "new_code": c,
                "geometry": new.geometry.iloc[new_at[c]],
            }
        )
    for c in sorted(set(old_at) - set(new_at) - gone_renamed):
        rows.append(
            {
                "change": "retired",
                "old_code": c,
                "new_code": "",
                "geometry": old.geometry.iloc[old_at[c]],
            }
        )
    return rows


def compare_plans(old: Plan, new: Plan, settings: Settings, effective: str) -> GridDiff:
    """Compare two grid plans (pure: no store)."""
    og, ng = old.grids.to_crs(STORAGE_CRS), new.grids.to_crs(STORAGE_CRS)
    only_old = sorted(set(_codes(og)) - set(_codes(ng)) - {""})
    only_new = sorted(set(_codes(ng)) - set(_codes(og)) - {""})
    renamed = _match_renamed(og, ng, only_old, only_new, settings)
    community = {}
    for g in (og, ng):
        if "community_code" in g:
            community.update(zip(_codes(g), g["community_code"].astype(str), strict=True))
    moves = _moves(old, new, community)
    rows = _change_rows(og, ng, renamed, settings)
    changes = gpd.GeoDataFrame(
        rows or {"change": [], "old_code": [], "new_code": [], "geometry": []},
        geometry="geometry",
        crs=STORAGE_CRS,
    )
    b = moves[moves["item"] == "buildings"]
    for col, side, what in (
        ("buildings_in", "new_code", None),
        ("buildings_out", "old_code", None),
        ("households_in", "new_code", "households"),
        ("households_out", "old_code", "households"),
    ):
        counts = b.groupby(side).size() if what is None else b.groupby(side)[what].sum()
        key = changes["new_code"] if side == "new_code" else changes["old_code"]
        changes[col] = key.map(counts).fillna(0).astype(int).to_numpy()
    code = changes["new_code"].where(changes["new_code"] != "", changes["old_code"])
    changes["community_code"] = code.map(community).fillna(code.str[:12])
    changes["effective"] = effective
    changes = changes[[*CHANGE_COLUMNS, "geometry"]]
    return GridDiff(changes, moves, _per_community(changes, moves), effective)


def _per_community(changes: pd.DataFrame, moves: pd.DataFrame) -> pd.DataFrame:
    parts = [changes.groupby(["community_code", "change"]).size().unstack(fill_value=0)]
    for item in ITEMS:
        m = moves[moves["item"] == item]
        parts.append(m.groupby("community_code").size().rename(f"{item}_moved"))
    b = moves[moves["item"] == "buildings"]
    parts.append(b.groupby("community_code")["households"].sum().rename("households_moved"))
    out = pd.concat(parts, axis=1).fillna(0).astype(int)
    for c in (*CHANGE_LABELS, *(f"{i}_moved" for i in ITEMS), "households_moved"):
        if c not in out:
            out[c] = 0
    order = [*CHANGE_LABELS, *(f"{i}_moved" for i in ITEMS), "households_moved"]
    return out[order].sort_index().rename_axis("community_code").reset_index()


def _assign_points(frame: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> pd.DataFrame:
    """Where each row's representative point lies among *grids* (one rule:
    :func:`gridgis.spatial.points_in_polygons`)."""
    from gridgis.spatial import points_in_polygons, rank_of

    codes = _codes(grids).to_numpy(dtype=object)
    out = pd.DataFrame(frame.drop(columns="geometry"))
    if not len(codes):  # no grid on that date: everything lies in none
        out["grid_code"] = ""
        return out
    pts = shapely.point_on_surface(frame.geometry.to_crs(STORAGE_CRS).to_numpy())
    at = points_in_polygons(pts, grids.geometry.to_numpy(), rank_of(codes))
    out["grid_code"] = np.where(at >= 0, codes[np.clip(at, 0, None)], "")
    return out


def plan_of_store(store: Store, label: str = "") -> Plan:
    """A workspace's current plan: its grids and its assigned items."""
    if not store.has("grids"):
        raise NotFoundError(f"{store.location}: no layer 'grids' to compare")
    items = {name: store.read(name) for name in ITEMS if store.has(name)}
    return Plan(store.read("grids"), items, label or str(store.location))


def plan_as_of(store: Store, when: str) -> Plan:
    """The plan valid on *when*: grid versions of that date; buildings and addresses
    placed by their representative point (staff's past grids are not recorded)."""
    if not store.has("grid_versions"):
        raise NotFoundError(f"{store.location}: no layer 'grid_versions': no dated grids")
    grids = grids_as_of(store.read("grid_versions"), when).reset_index(drop=True)
    items = {
        name: _assign_points(store.read(name), grids)
        for name in ("buildings", "addresses")
        if store.has(name)
    }
    return Plan(grids, items, when)


def change_order_html(diff: GridDiff, title: str, old_label: str, new_label: str) -> str:
    """A printable A4 change order (网格调整单) in Chinese."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{CHANGE_LABELS.get(r.change, r.change)}</td><td>{e(r.old_code)}</td>"
        f"<td>{e(r.new_code)}</td><td>{e(str(r.community_code))}</td>"
        f"<td>{r.buildings_in}</td><td>{r.buildings_out}</td><td>{r.households_in}</td>"
        f"<td>{r.households_out}</td></tr>"
        for r in diff.changes.itertuples()
    )
    comm = "".join(
        f"<tr><td>{e(str(r.community_code))}</td><td>{r.created}</td><td>{r.retired}</td>"
        f"<td>{r.reshaped}</td><td>{r.renamed}</td><td>{r.buildings_moved}</td>"
        f"<td>{r.households_moved}</td><td>{r.addresses_moved}</td><td>{r.staff_moved}</td></tr>"
        for r in diff.per_community.itertuples()
    )
    moved = diff.moves[diff.moves["item"] == "buildings"].head(500)
    mv = "".join(
        f"<tr><td>{e(str(r.id))}</td><td>{e(r.old_code) or '—'}</td><td>{e(r.new_code) or '—'}</td>"
        f"<td>{r.households}</td></tr>"
        for r in moved.itertuples()
    )
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{e(title)}</title><style>
@page {{ size: A4; margin: 15mm; }}
body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", sans-serif; font-size: 11pt; }}
table {{ border-collapse: collapse; width: 100%; margin: 6pt 0 14pt; }}
th, td {{ border: 1px solid #444; padding: 3pt 5pt; text-align: left; }}
th {{ background: #eee; }} h1 {{ font-size: 18pt; }} h2 {{ font-size: 13pt; }}
</style></head><body>
<h1>{e(title)}</h1>
<p>生效日期: <b>{e(diff.effective)}</b> · 原方案: {e(old_label)} · 新方案: {e(new_label)}</p>
<h2>网格变更</h2><table><tr><th>变更</th><th>原编码</th><th>新编码</th><th>社区</th>
<th>移入楼栋</th><th>移出楼栋</th><th>移入户数</th><th>移出户数</th></tr>{rows}</table>
<h2>按社区汇总</h2><table><tr><th>社区</th><th>新设</th><th>撤销</th><th>调整边界</th>
<th>更名</th><th>楼栋调整</th><th>户数调整</th><th>地址调整</th><th>人员调整</th></tr>{comm}</table>
<h2>楼栋调整明细</h2><table><tr><th>楼栋</th><th>原网格</th><th>新网格</th><th>户数</th></tr>{mv}</table>
<p>经办: ____________ 审核: ____________ 日期: ____________</p>
</body></html>"""


def diff(
    store: Store,
    settings: Settings,
    *,
    old_store: Store | None = None,
    from_date: str | date | None = None,
    to_date: str | date | None = None,
    layer: str | None = "grid_changes",
    page: Path | None = None,
) -> JobResult:
    """Compare two grid plans and write the change order.

    Parameters
    ----------
    store
        The workspace of the new plan (the layer is written here).
    old_store
        The workspace of the old plan; or ``None`` to compare two dates of *store*.
    from_date, to_date
        With no *old_store*: the two dates (``to_date`` default today) compared through
        ``grid_versions``. With *old_store*: only the change order's effective date.
    layer
        Layer to write the per-grid changes to (``None``: write nothing).
    page
        Where to write the printable change order (HTML), if anywhere.

    Returns
    -------
    JobResult
        ``detail`` is the :class:`GridDiff`; ``stats`` the counts per change and moved
        items.
    """
    if old_store is None:
        if from_date is None:
            raise InputError("diff: give an old workspace or the date to compare from")
        when = effective_date(to_date)
        old, new = plan_as_of(store, effective_date(from_date)), plan_as_of(store, when)
        notes = ["staff: their grids on past dates are not recorded; staff moves not compared"]
    else:
        when = effective_date(to_date)
        old, new = plan_of_store(old_store), plan_of_store(store)
        notes = []
    result = compare_plans(old, new, settings, when)
    result.notes = notes
    written: dict[str, int] = {}
    if layer:
        params = {"old": old.label, "new": new.label, "effective": when}
        written = write_layers(store, "diff", {layer: result.changes}, params)
    if page is not None:
        page.parent.mkdir(parents=True, exist_ok=True)
        text = change_order_html(result, "网格调整单", old.label, new.label)
        page.write_text(text, encoding="utf-8")
    counts = result.changes["change"].value_counts().to_dict()
    stats = {k: int(counts.get(k, 0)) for k in CHANGE_LABELS}
    for item in ITEMS:
        stats[f"{item}_moved"] = int((result.moves["item"] == item).sum())
    stats["households_moved"] = int(result.moves["households"].sum())
    summary = (
        f"{stats['created']} created, {stats['retired']} retired, {stats['reshaped']} "
        f"reshaped, {stats['renamed']} renamed; {stats['buildings_moved']:,} buildings "
        f"({stats['households_moved']:,} households), {stats['addresses_moved']:,} addresses, "
        f"{stats['staff_moved']:,} staff moved"
    )
    return JobResult(
        "diff", written=written, notes=notes, summary=summary, stats=stats, detail=result
    )
