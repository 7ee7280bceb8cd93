"""Partitions that read and write a shared store themselves.

With a workspace every worker can open (:meth:`gridgis.store.Store.shared_location`: a
PostGIS URL reachable from every worker, or a GeoParquet directory on a shared file
system), a partitioned run sends each task a small description instead of its data:

* :class:`Rows` — which rows of which layer: a lon/lat box (the GiST index), stored row
  numbers, or ``field = ANY(codes)`` (the b-tree of the code columns). The worker reads
  them with :meth:`~gridgis.store.Store.read_rows`, in stored order.
* :class:`SharedRun` — the store's location and the run's id: workers write their
  partition's rows with ``stage_partition`` (one transaction per partition; a re-run of
  the partition replaces its own rows), and the client makes every staged layer live at
  once with ``publish`` — or drops the staging when the run fails.

A GeoPackage is not shared (one machine): runs on it keep sending the data.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from gridgis.crs import STORAGE_CRS

log = logging.getLogger(__name__)

#: Stores opened by this process (a worker), by location: one connection pool each.
_OPEN: dict[str, Any] = {}
#: Whole layers read by this worker for a run: ``(location, run, layer) -> frame``.
_WHOLE: dict[tuple[str, str, str], Any] = {}

#: Degrees added around a box turned to lon/lat, so that the lon/lat box holds the whole
#: metric box (about 10 m; the rows are then selected exactly in the metric CRS).
BOX_PAD_DEG = 1e-4


@dataclass(frozen=True)
class SharedRun:
    """A run on a shared store, as sent to workers.

    Attributes
    ----------
    location
        :meth:`Store.shared_location` (with credentials: a task travels only between the
        client, the scheduler and the workers).
    run
        The run's id (staging tables ``_stage_<run>_<layer>``, folders ``staging/<layer>/
        <run>``).
    layers
        Layers workers may read from the store (the others travel with the tasks: the
        caller changed them since they were read).
    """

    location: str
    run: str
    layers: frozenset[str] = frozenset()

    def store(self):
        """The store, opened once per process."""
        from gridgis.store import open_store

        st = _OPEN.get(self.location)
        if st is None:
            st = _OPEN[self.location] = open_store(self.location, create=False)
        return st

    def whole(self, name: str):
        """Layer ``name`` read whole, once per worker and run."""
        key = (self.location, self.run, name)
        if key not in _WHOLE:
            for old in [k for k in _WHOLE if k[1] != self.run]:
                del _WHOLE[old]
            _WHOLE[key] = self.store().read(name)
        return _WHOLE[key]

    def stage(self, name: str, key: str, frame, order: np.ndarray | None = None) -> None:
        """Write this partition's rows of ``name`` (see ``stage_partition``)."""
        self.store().stage_partition(name, self.run, key, frame, order=order)

    def reads(self, name: str) -> bool:
        return name in self.layers


@dataclass(frozen=True)
class Rows:
    """Rows of a layer one partition reads itself (see :meth:`Store.read_rows`)."""

    layer: str
    bbox: tuple[float, float, float, float] | None = None
    rows: np.ndarray | None = None
    where_in: tuple[str, tuple[str, ...]] | None = None

    def read(self, shared: SharedRun, keep_row: bool = False):
        """The rows, in stored order; the frame's index is their stored position
        (``_row`` kept as a column too when ``keep_row``)."""
        frame = shared.store().read_rows(self.layer, self.bbox, self.rows, self.where_in)
        frame.index = frame["_row"].to_numpy()
        return frame if keep_row else frame.drop(columns="_row")


def is_shared(store) -> bool:
    """Whether workers can open ``store`` themselves (PostGIS, GeoParquet)."""
    return bool(getattr(store, "shared_location", lambda: None)())


@contextmanager
def shared_run(store, layers: Sequence[str] = ()) -> Iterator[SharedRun | None]:
    """A :class:`SharedRun` on ``store`` for the block (``None`` for a store that is not
    shared): first drops staging a crashed client left behind, holds the run alive, and
    drops the run's staging on the way out (published layers have none left)."""
    if not is_shared(store):
        yield None
        return
    cleaned = store.clean_stale_staging()
    if cleaned:
        log.warning("%s: dropped staging of abandoned runs %s", store.location, cleaned)
    run = SharedRun(store.shared_location(), uuid.uuid4().hex[:12], frozenset(layers))
    with store.hold_run(run.run):  # drops the run's staging on the way out
        yield run


def lonlat_box(
    box: Sequence[float], crs: Any, pad: float = BOX_PAD_DEG
) -> tuple[float, float, float, float]:
    """The lon/lat box that holds the metric box ``box`` (``minx, miny, maxx, maxy`` in
    ``crs``), edges densified before the transform, padded by ``pad`` degrees."""
    g = gpd.GeoSeries([shapely.box(*box)], crs=crs).segmentize(max(1.0, (box[2] - box[0]) / 16))
    b = g.to_crs(STORAGE_CRS).total_bounds
    return (b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad)


def lonlat_bounds(frame) -> tuple[float, float, float, float] | None:
    """The lon/lat bounds of a frame's shapes, padded (``None`` when it has none)."""
    if frame is None or len(frame) == 0:
        return None
    b = frame.to_crs(STORAGE_CRS).total_bounds if frame.crs is not None else frame.total_bounds
    if not np.isfinite(b).all():
        return None
    p = BOX_PAD_DEG
    return (b[0] - p, b[1] - p, b[2] + p, b[3] + p)


def rows_box(bounds: np.ndarray) -> tuple[float, float, float, float] | None:
    """The padded lon/lat box of rows with these ``(n, 4)`` bounds, or ``None`` when a
    row has no shape (its envelope would meet no box: read by row number alone)."""
    if len(bounds) == 0 or not np.isfinite(bounds).all():
        return None
    p = BOX_PAD_DEG
    return (
        float(bounds[:, 0].min() - p),
        float(bounds[:, 1].min() - p),
        float(bounds[:, 2].max() + p),
        float(bounds[:, 3].max() + p),
    )


def stored_bounds(frame) -> np.ndarray:
    """``(n, 4)`` lon/lat bounds of each row of a layer (NaN for a row without shape)."""
    g = frame.geometry
    if g.crs is not None and g.crs.to_epsg() != 4326:
        g = g.to_crs(STORAGE_CRS)
    return g.bounds.to_numpy()
