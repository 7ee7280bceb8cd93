"""Partitioned delineation: blocks of whole communities."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import metric_crs_for
from gridgis.spatial import points_in_polygons, rank_of
from gridgis.standards import CLUSTER, DEFAULT, ClusterRules, Settings

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from gridgis.delineate import DelineationResult
from gridgis.partitioned.runner import Runner, balanced_cuts, n_parts
from gridgis.partitioned.source import Rows, SharedRun, rows_box, stored_bounds

log = logging.getLogger(__name__)


# ======================================================================================
# Delineation: blocks of whole communities
# ======================================================================================


def _delineate_block(shared: dict, block: tuple, settings: Settings, issued_at: str) -> tuple:
    from gridgis.delineate import delineate

    communities, buildings, previous, registry = block
    rows = None
    whole = dict(shared["layers"])
    if isinstance(communities, _SharedBlock):
        communities, buildings, rows = communities.read()
        for name in shared.get("read", ()):
            whole[name] = shared["run"].whole(name)
    layers = {**whole, "communities": communities, "buildings": buildings}
    r = delineate(
        layers,
        settings,
        alignment=shared["alignment"],
        previous=previous,
        registry=registry,
        issued_at=issued_at,
    )
    codes = r.buildings[["grid_code", "community_code"]].reset_index(drop=True)
    if rows is not None:
        codes["_row"] = rows
    return r.grids, codes, r.findings, r.params, r.registry


@dataclass(frozen=True)
class _SharedBlock:
    """A block of communities that a worker reads from the shared store: communities
    ``a`` … ``b - 1`` (stored rows; their codes for the index), and the buildings whose
    representative point lies in one of them by the one point-in-polygon rule (read in
    the communities' lon/lat box, located among every community meeting the box)."""

    run: SharedRun
    a: int
    b: int
    codes: tuple[str, ...]
    bbox: tuple[float, float, float, float]
    crs: Any

    def read(self) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, np.ndarray]:
        rows = np.arange(self.a, self.b)
        codes = ("community_code", self.codes) if self.codes else None
        comm = Rows("communities", rows=rows, where_in=codes)
        block = comm.read(self.run).reset_index(drop=True)
        near = Rows("communities", bbox=self.bbox).read(self.run, keep_row=True)
        b = Rows("buildings", bbox=self.bbox).read(self.run, keep_row=True)
        pts = shapely.point_on_surface(b.to_crs(self.crs).geometry.to_numpy())
        nm = near.to_crs(self.crs)
        ci = points_in_polygons(
            pts, nm.geometry.to_numpy(), rank_of(nm["community_code"].astype(str).to_numpy())
        )
        at = np.where(ci >= 0, near["_row"].to_numpy()[np.maximum(ci, 0)], -1)
        mine = (at >= self.a) & (at < self.b)
        buildings = b.loc[mine].drop(columns="_row").reset_index(drop=True)
        return block, buildings, b["_row"].to_numpy()[mine]


def _subset(frame, mask: np.ndarray):
    return frame.loc[mask].reset_index(drop=True) if frame is not None else None


def delineate_partitioned(
    client: Client,
    layers: dict[str, Any],
    settings: Settings = DEFAULT,
    alignment: dict[str, gpd.GeoDataFrame] | None = None,
    previous: gpd.GeoDataFrame | None = None,
    registry: pd.DataFrame | None = None,
    issued_at: str | None = None,
    rules: ClusterRules = CLUSTER,
    shared: SharedRun | None = None,
) -> DelineationResult:
    """:func:`gridgis.delineate.delineate` on the cluster, one task per block of whole
    communities (consecutive in the layer's order, balanced by buildings).

    Each block gets its communities, the buildings they hold (the one point-in-polygon
    rule, ties to the smallest community code, as delineation itself locates them), and
    the previous grids and registry rows of its communities (block 0 also those of
    vanished communities, which the run retires). Roads, institutions and alignment
    layers go whole to every worker, once: delineation clips them per community through
    a spatial index whose order depends on the whole layer, so a cut-down copy could
    change the order of the atoms and with it the grids. Grids, findings, buildings and
    registry are put back together in the single-process order; ``params["cluster"]`` is
    the :class:`RunReport`.

    With ``shared`` (a :class:`~gridgis.partitioned.source.SharedRun` whose layers
    include communities and buildings, as stored) each worker reads its block itself:
    the communities by stored row and code, the buildings of their lon/lat box through
    the spatial index (kept when their point lies in the block, located among the
    communities meeting the box: the same rule and ranks as here), and the other layers
    whole, once per worker and run.

    Parameters are those of :func:`gridgis.delineate.delineate` plus ``client``,
    ``rules`` and ``shared``. Equality with the single-process run holds when the whole
    city lies in one 3-degree Gauss–Krüger zone (each block computes in the zone of its
    communities).
    """
    from datetime import UTC, datetime

    from gridgis.delineate import DelineationResult

    comm = layers.get("communities")
    buildings = layers.get("buildings")
    if comm is None or len(comm) == 0 or buildings is None or len(buildings) == 0:
        from gridgis.delineate import delineate

        return delineate(layers, settings, alignment, None, previous, registry, issued_at)
    issued_at = issued_at or datetime.now(UTC).isoformat(timespec="seconds")
    run = Runner(client, "delineate", rules)
    crs = metric_crs_for(comm)
    cm = comm.to_crs(crs)
    pts = shapely.point_on_surface(buildings.to_crs(crs).geometry.to_numpy())
    b_area = points_in_polygons(
        pts, cm.geometry.to_numpy(), rank_of(cm["community_code"].astype(str).to_numpy())
    )
    per_comm = np.bincount(b_area[b_area >= 0], minlength=len(comm)) + 1
    blocks = balanced_cuts(per_comm, n_parts(client, rules, len(comm)))
    ccodes = comm["community_code"].astype(str).to_numpy()
    others = {k: v for k, v in layers.items() if k not in ("communities", "buildings")}
    reads = shared is not None and shared.reads("communities") and shared.reads("buildings")
    common: dict[str, Any] = {"layers": others, "alignment": alignment}
    if reads:
        common["layers"] = {k: v for k, v in others.items() if not shared.reads(k)}
        common.update(read=[k for k in others if shared.reads(k)], run=shared)
    common_f = run.broadcast(common)
    bounds = stored_bounds(comm) if reads else None
    items = []
    for k, (a, b) in enumerate(blocks):
        block = _delineate_block_inputs(
            layers, previous, registry, ccodes, b_area, a, b, k == 0, reads
        )
        if reads:
            box = rows_box(bounds[a:b])
            codes = comm["community_code"].iloc[a:b]
            codes = tuple(ccodes[a:b]) if codes.notna().all() else ()  # else by row alone
            block = (_SharedBlock(shared, a, b, codes, box, crs), None, *block[2:])
        items.append((f"block-{k}", (common_f, block, settings, issued_at)))
    parts = run.run(_delineate_block, items)
    out = _merge_delineation(parts, buildings, b_area, blocks)
    out["params"]["cluster"] = run.finish().as_dict()
    return DelineationResult(**out)


def _delineate_block_inputs(
    layers, previous, registry, ccodes, b_area, a: int, b: int, first: bool, reads: bool = False
) -> tuple:
    """Communities ``a .. b-1``, their buildings, previous grids and registry rows (the
    first two ``None`` when the worker reads them)."""
    block = buildings = None
    if not reads:
        block = layers["communities"].iloc[a:b].reset_index(drop=True)
        buildings = _subset(layers["buildings"], (b_area >= a) & (b_area < b))
    codes = set(ccodes[a:b])
    prev = reg = None
    if previous is not None and len(previous):
        pc = _community_of(previous)
        keep = pc.isin(codes) | (first & ~pc.isin(set(ccodes)))
        prev = _subset(previous, keep.to_numpy())
    if registry is not None and len(registry):
        rc = registry["grid_code"].astype(str).str[:12]
        keep = rc.isin(codes) | (first & ~rc.isin(set(ccodes)))
        reg = _subset(registry, keep.to_numpy())
    return block, buildings, prev, reg


def _community_of(grids: pd.DataFrame) -> pd.Series:
    if "community_code" in grids:
        return grids["community_code"].astype(str)
    return grids["grid_code"].astype(str).str[:12]


def _concat_like(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate pieces the way one frame built from all rows at once would come out:
    ``object`` columns (text mixed with missing values) are inferred again over all rows,
    as the DataFrame constructor does (``str`` when any text, else ``object``)."""
    out = pd.concat(frames, ignore_index=True)
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = pd.Series(out[col].tolist(), index=out.index)
    return out


def _merge_delineation(parts: list, buildings, b_area, blocks) -> dict[str, Any]:
    grids = _concat_like([p[0] for p in parts])
    grids = grids.sort_values("grid_code").reset_index(drop=True)
    findings = _concat_like([p[2] for p in parts])
    registry = pd.concat([p[4] for p in parts if p[4] is not None], ignore_index=True)
    registry = registry.sort_values("grid_code").reset_index(drop=True)
    n = len(buildings)
    gcode = np.full(n, None, dtype=object)
    ccode = np.full(n, None, dtype=object)
    for (a, b), p in zip(blocks, parts, strict=True):
        if "_row" in p[1]:  # read by the worker: where its buildings are stored
            pos = p[1]["_row"].to_numpy()
        else:
            pos = np.flatnonzero((b_area >= a) & (b_area < b))
        gcode[pos] = p[1]["grid_code"].astype(object).to_numpy()
        ccode[pos] = p[1]["community_code"].astype(object).to_numpy()
    out_b = buildings.copy()
    out_b["grid_code"] = pd.array(gcode, dtype="string")
    out_b["community_code"] = pd.array(ccode, dtype="string")
    return {
        "grids": gpd.GeoDataFrame(grids, geometry="geometry", crs=parts[0][0].crs),
        "buildings": out_b,
        "findings": findings,
        "params": dict(parts[0][3]),
        "registry": registry,
    }
