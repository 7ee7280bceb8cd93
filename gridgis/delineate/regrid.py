"""Minimal-change re-grid (issue 16 point 5): divide again only the communities whose
households changed beyond a rule, keep locked grids as they are, and every other grid
with its geometry and code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS, metric_crs_for
from gridgis.delineate.api import DelineationResult, delineate
from gridgis.delineate.stats import community_stats
from gridgis.errors import InputError, NotFoundError
from gridgis.spatial import points_in_polygons, rank_of
from gridgis.standards import DEFAULT, Settings


def _households(buildings: gpd.GeoDataFrame) -> np.ndarray:
    return pd.to_numeric(buildings["households"], errors="coerce").fillna(0).to_numpy(np.int64)


def changed_communities(
    communities: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    previous: gpd.GeoDataFrame,
    settings: Settings = DEFAULT,
) -> pd.DataFrame:
    """Households of each community now (buildings by representative point) and in its
    previous grids, and whether it changed: by more than
    ``grid.redivide_min_change_households``, or it has no previous grid.

    Returns
    -------
    pandas.DataFrame
        ``community_code``, ``households_before``, ``households_now``, ``changed``.
    """
    codes = communities["community_code"].astype(str).to_numpy()
    crs = metric_crs_for(communities)
    cm = communities.to_crs(crs).geometry.to_numpy()
    pts = shapely.point_on_surface(buildings.to_crs(crs).geometry.to_numpy())
    where = points_in_polygons(pts, cm, rank_of(codes))
    hh = _households(buildings)
    now = np.bincount(where[where >= 0], weights=hh[where >= 0], minlength=len(codes))
    prev = pd.to_numeric(previous["households"], errors="coerce").fillna(0)
    before = prev.groupby(previous["community_code"].astype(str)).sum()
    out = pd.DataFrame(
        {
            "community_code": codes,
            "households_before": [int(before.get(c, 0)) for c in codes],
            "households_now": now.astype(np.int64),
        }
    )
    limit = settings.grid.redivide_min_change_households
    delta = (out["households_now"] - out["households_before"]).abs()
    out["changed"] = (delta > limit) | ~out["community_code"].isin(before.index)
    return out


def regrid(
    layers: dict[str, Any],
    previous: gpd.GeoDataFrame,
    settings: Settings = DEFAULT,
    lock: Iterable[str] = (),
    registry: pd.DataFrame | None = None,
    alignment: dict[str, gpd.GeoDataFrame] | None = None,
    only: Iterable[str] | None = None,
    issued_at: str | None = None,
) -> DelineationResult:
    """Divide again only the communities that changed; keep every other grid.

    Parameters
    ----------
    layers
        Canonical layers as for :func:`gridgis.delineate.delineate`.
    previous
        The workspace's grids (``grid_code``, ``community_code``, ``households``).
    lock
        Grid codes kept exactly as they are, even in a community divided again (their
        ground and buildings stay theirs; the rest of the community is divided).
    only
        Community codes to divide again (default: :func:`changed_communities`).
    registry, alignment, issued_at
        As for :func:`gridgis.delineate.delineate`; codes of grids divided again are kept
        where a new grid overlaps its predecessor (IoU rule), and never reissued.

    Returns
    -------
    DelineationResult
        All grids (kept, locked and new); ``params["regrid"]`` names the communities
        divided again and the locked codes.

    Raises
    ------
    NotFoundError
        A locked code that is not a grid of ``previous``.
    """
    comms = layers.get("communities")
    if comms is None or len(comms) == 0:
        raise InputError("layer 'communities' is empty: nothing to divide again")
    lock = {str(c) for c in lock}
    prev = previous.to_crs(STORAGE_CRS).reset_index(drop=True)
    pcodes = prev["grid_code"].astype(str)
    missing = sorted(lock - set(pcodes))
    if missing:
        raise NotFoundError(f"locked grid code(s) not in the grids: {', '.join(missing)}")
    table = changed_communities(comms, layers["buildings"], prev, settings)
    redo = set(table.loc[table["changed"], "community_code"]) if only is None else set(only)
    pcomm = prev["community_code"].astype(str)
    locked = prev[pcodes.isin(lock)]
    keep = prev[~pcomm.isin(redo) | pcodes.isin(lock)]
    sub = comms[comms["community_code"].astype(str).isin(redo)].to_crs(STORAGE_CRS)
    if len(locked):  # the locked grids' ground is not divided again
        hole = shapely.union_all(locked.geometry.to_numpy())
        sub = sub.assign(geometry=shapely.difference(sub.geometry.to_numpy(), hole))
        sub = sub[~sub.geometry.is_empty]
    reg = _registry_with(registry, prev)
    if len(sub):
        part = dict(layers, communities=sub.reset_index(drop=True))
        res = delineate(
            part,
            settings,
            alignment=alignment,
            previous=prev[pcomm.isin(redo) & ~pcodes.isin(lock)],
            registry=reg,
            issued_at=issued_at,
        )
        new_grids, findings, reg, params = res.grids, res.findings, res.registry, res.params
    else:
        new_grids, findings, params = prev.iloc[:0], pd.DataFrame(), {}
    cols = [c for c in new_grids.columns if c in keep.columns] if len(sub) else list(keep.columns)
    grids = pd.concat([keep[cols], new_grids[cols]], ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=STORAGE_CRS)
    grids = grids.sort_values("grid_code").reset_index(drop=True)
    buildings = _coded(layers["buildings"], grids)
    params = {
        **params,
        "regrid": {
            "communities_divided_again": sorted(redo),
            "locked": sorted(lock),
            "rule": f"households changed by more than "
            f"{settings.grid.redivide_min_change_households}",
        },
    }
    return DelineationResult(
        grids=grids,
        buildings=buildings,
        findings=findings,
        params=params,
        registry=reg,
        community_stats=community_stats(grids, settings),
    )


def _registry_with(registry: pd.DataFrame | None, prev: gpd.GeoDataFrame) -> pd.DataFrame:
    """The registry, with every previous code recorded (so none is ever reissued)."""
    from gridgis.codes import REGISTRY_COLUMNS

    reg = (
        pd.DataFrame({c: pd.Series(dtype="string") for c in REGISTRY_COLUMNS})
        if registry is None
        else registry[REGISTRY_COLUMNS].astype("string")
    )
    known = set(reg["grid_code"].dropna().astype(str))
    add = [
        {
            "grid_code": c,
            "community_code": c[:12],
            "issued_at": pd.NA,
            "retired_at": pd.NA,
            "status": "active",
        }
        for c in prev["grid_code"].astype(str)
        if c not in known
    ]
    if add:
        reg = pd.concat(
            [reg, pd.DataFrame(add, columns=REGISTRY_COLUMNS).astype("string")], ignore_index=True
        )
    return reg.reset_index(drop=True)


def _coded(buildings: gpd.GeoDataFrame, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Buildings with ``grid_code`` and ``community_code`` of the grid holding their
    representative point (the workflow's assignment then refines by largest overlap)."""
    out = buildings.copy()
    crs = metric_crs_for(grids)
    gm = grids.to_crs(crs).geometry.to_numpy()
    pts = shapely.point_on_surface(buildings.to_crs(crs).geometry.to_numpy())
    codes = grids["grid_code"].astype(str).to_numpy()
    where = points_in_polygons(pts, gm, rank_of(codes))
    cc = grids["community_code"].astype(str).to_numpy()
    out["grid_code"] = pd.array(np.where(where >= 0, codes[np.maximum(where, 0)], None), "string")
    out["community_code"] = pd.array(
        np.where(where >= 0, cc[np.maximum(where, 0)], None), dtype="string"
    )
    return out
