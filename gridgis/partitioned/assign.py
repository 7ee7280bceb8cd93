"""Partitioned assignment: spatial chunks of the big layers, grids broadcast."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.standards import CLUSTER, DEFAULT, ClusterRules, Settings

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from gridgis.assign import AssignResult
from gridgis.partitioned.runner import Runner, hilbert_order
from gridgis.partitioned.source import Rows, SharedRun, rows_box, stored_bounds

log = logging.getLogger(__name__)


# ======================================================================================
# Assignment: spatial chunks of the big layers, grids broadcast
# ======================================================================================

_CHUNKED = ("buildings", "institutions", "addresses")


def _assign_chunk(
    name: str, frame, grids, communities, settings, shared=None, stage=None
) -> gpd.GeoDataFrame:
    """Assign one chunk (read from the shared store when ``frame`` is :class:`Rows`);
    with ``stage`` = ``(key, positions)`` also stage the assigned rows, placed at those
    positions of the layer."""
    from gridgis.assign import assign_all

    if isinstance(frame, Rows):  # the worker reads its chunk from the shared store
        frame = frame.read(shared)
    layers = {name: frame}
    if communities is not None:
        layers["communities"] = communities
    out = getattr(assign_all(layers, grids, settings), name)
    if stage is not None:
        shared.stage(name, stage[0], out, order=stage[1])
    return out


def _spatial_order(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Row positions in Hilbert order of their representative points (empty last)."""
    geoms = frame.geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    xy = np.zeros((len(frame), 2))
    if ok.any():
        xy[ok] = shapely.get_coordinates(shapely.point_on_surface(geoms[ok]))
        bounds = (*xy[ok].min(axis=0), *xy[ok].max(axis=0))
        key = np.full(len(frame), np.iinfo(np.int64).max)
        key[ok] = hilbert_order(xy[ok], bounds)
    else:
        key = np.zeros(len(frame), np.int64)
    return np.argsort(key, kind="stable")


def assign_partitioned(
    client: Client,
    layers: dict[str, Any],
    grids: gpd.GeoDataFrame,
    settings: Settings = DEFAULT,
    rules: ClusterRules = CLUSTER,
    shared: SharedRun | None = None,
    stage: bool = False,
) -> AssignResult:
    """:func:`gridgis.assign.assign_all` on the cluster.

    Buildings, institutions and addresses are cut into chunks of about
    ``rules.chunk_rows`` rows in Hilbert order of their representative points and
    assigned on the workers against the grids (and communities) sent once to every
    worker: every row's answer depends only on the row and the grids (the one
    point-in-polygon and largest-overlap rules of :mod:`gridgis.spatial`), so chunks put
    back in row order equal the single-process layers. Facilities, staff and the grid
    summaries (facility counts, grid heads and workers) are assigned once, in this process.
    The result's ``notes`` are those of the single-process run.

    With ``shared`` (a :class:`~gridgis.partitioned.source.SharedRun`), the chunks of the
    layers it lists (as stored: ``layers`` holds them unchanged) are read by the workers
    themselves: stored rows within the chunk's lon/lat box. With ``stage`` the workers
    also stage their assigned chunks of buildings, institutions and addresses (one
    transaction per chunk, placed in the layer's row order); ``result.staged`` then maps
    those layers to the run, for the caller to publish with its other layers.
    """
    from gridgis.assign import ASSIGNED_LAYERS, assign_all

    run = Runner(client, "assign", rules)
    small = {k: v for k, v in layers.items() if k not in _CHUNKED}
    central = assign_all(small, grids, settings)
    grids_f = run.broadcast(grids)
    comm = layers.get("communities")
    comm_f = run.broadcast(comm) if comm is not None else None
    items, spans = [], []
    for name in _CHUNKED:
        frame = layers.get(name)
        if frame is None:
            continue
        order = _spatial_order(frame) if len(frame) else np.zeros(0, np.int64)
        size = max(1, int(rules.chunk_rows))
        chunks = [order[i : i + size] for i in range(0, len(order), size)] or [order]
        reads = shared is not None and shared.reads(name)
        bounds = stored_bounds(frame) if reads else None
        for k, pos in enumerate(chunks):
            pos = np.sort(pos)
            part = Rows(name, rows_box(bounds[pos]), pos) if reads else frame.iloc[pos]
            staging = (f"{name}-{k}", pos) if stage and shared is not None else None
            args = (name, part, grids_f, comm_f, settings, shared, staging)
            items.append((f"{name}-{k}", args))
            spans.append((name, pos))
    results = run.run(_assign_chunk, items)
    notes = [n for n in central.notes if not n.startswith("facilities:")]
    layer_notes = {n.split(":")[0]: n for n in central.notes if n.startswith("facilities:")}
    for name in _CHUNKED:
        frame = layers.get(name)
        if frame is None:
            continue
        got = [(pos, r) for (nm, pos), r in zip(spans, results, strict=True) if nm == name]
        merged = _put_back(frame, got)
        setattr(central, name, merged)
        missing = int(merged["grid_code"].isna().sum())
        if missing:
            layer_notes[name] = (
                f"{name}: {missing} of {len(frame)} rows lie in no grid (grid_code left empty)"
            )
    ordered = [layer_notes[n] for n in ASSIGNED_LAYERS if n in layer_notes]
    central.notes = ordered + notes
    central.params = {"cluster": run.finish().as_dict()}  # type: ignore[attr-defined]
    staged = {n: shared.run for n in _CHUNKED if n in layers} if stage and shared else {}
    central.staged = staged  # type: ignore[attr-defined]
    return central


def _put_back(frame: gpd.GeoDataFrame, got: list[tuple[np.ndarray, gpd.GeoDataFrame]]):
    """Chunks (row positions, assigned rows) back into one frame in the original order."""
    if not got:
        return frame
    merged = pd.concat([r for _, r in got], ignore_index=True)
    pos = np.concatenate([p for p, _ in got])
    merged = merged.iloc[np.argsort(pos, kind="stable")]
    merged.index = frame.index
    return gpd.GeoDataFrame(merged, geometry=frame.geometry.name, crs=frame.crs)
