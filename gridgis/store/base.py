"""The store interface shared by the GeoPackage and PostGIS backends."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgis.errors import InputError, NotFoundError, StoreError
from gridgis.layers import SCHEMA
from gridgis.values import parse_bool

SCHEMA_VERSION = 1
"""Version of the layer schema and metadata tables; bumped on incompatible changes."""

Frame = gpd.GeoDataFrame | pd.DataFrame

#: The key of every layer the project writes: the canonical schema plus derived layers
#: (unique and non-null; PostGIS makes it the primary key, the API the feature id).
LAYER_KEYS: dict[str, str] = {n: s.key for n, s in SCHEMA.items()} | {"grids": "grid_code"}


class NoLayerError(NotFoundError, StoreError):
    """A layer (or the workspace's key field of it) that does not exist: HTTP 404."""

    exit_code = NotFoundError.exit_code
    http_status = NotFoundError.http_status


class NoFieldError(InputError, StoreError):
    """A filter naming a field the layer lacks: HTTP 422."""

    exit_code = InputError.exit_code
    http_status = InputError.http_status


class LayerWriteError(InputError, StoreError):
    """A frame that cannot be written as a layer (bad name, no CRS, unsupported field
    type): the input's fault, HTTP 422; the workspace is unchanged."""

    exit_code = InputError.exit_code
    http_status = InputError.http_status


class _NoMatch:
    """A filter value no stored value can equal (``repr``: NO_MATCH)."""

    def __repr__(self) -> str:
        return "NO_MATCH"


NO_MATCH = _NoMatch()
"""What :func:`filter_value` returns for a value that cannot equal any stored value."""

#: Largest magnitude an integer filter value may have (SQLite and PostgreSQL int64).
_INT64 = 2**63 - 1


def filter_value(value: Any, kind: str) -> Any:
    """The ONE filter semantics of both stores: ``value`` (usually query text) as the
    stored type of a field of ``kind``, or :data:`NO_MATCH`.

    ``kind`` is ``"int"``, ``"float"``, ``"bool"`` or ``"text"`` (any other stored type,
    compared as text). ``None`` means "is null" and is returned as is.

    * bool: :func:`gridgis.layers.parse_bool` ("true", "1", "yes", "是" … / "false",
      "0", "no", "否" …); anything else matches nothing.
    * int: a finite number equal to an integer within int64 ("3", "3.0", "3e0");
      anything else matches nothing.
    * float: a finite number.
    * text: the text itself (numbers written as Python writes them); a text holding a
      NUL character matches nothing (no store can hold one).
    """
    if value is None:
        return None
    if kind == "bool":
        b = parse_bool(value)
        return NO_MATCH if b is pd.NA else bool(b)
    if kind in ("int", "float"):
        if isinstance(value, bool):
            num = float(value)
        else:
            try:
                num = float(value.strip() if isinstance(value, str) else value)
            except (TypeError, ValueError, OverflowError):
                return NO_MATCH
        if not math.isfinite(num):
            return NO_MATCH
        if kind == "float":
            return num
        if not num.is_integer() or abs(num) > _INT64:
            return NO_MATCH
        return int(num)
    text = (
        value
        if isinstance(value, str)
        else (repr(value) if isinstance(value, float) else str(value))
    )
    return NO_MATCH if "\x00" in text else text


@dataclass
class LayerInfo:
    """Metadata recorded with every layer write."""

    name: str
    rows: int
    crs: str | None
    geometry_type: str | None
    bounds: tuple[float, float, float, float] | None
    params: dict[str, Any] = field(default_factory=dict)
    written_at: str = ""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False, default=str)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays made plain Python (recursively), so that
    parameters such as ``np.int64(30000)`` are stored as numbers, not the text "30000"."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def concat_frames(frames: list[Frame]) -> Frame:
    """Rows of several frames of one layer, in order (a GeoDataFrame keeps its geometry
    column and CRS)."""
    if len(frames) == 1:
        return frames[0]
    cat = pd.concat(frames, ignore_index=True)
    first = frames[0]
    if isinstance(first, gpd.GeoDataFrame) and first.geometry.name in first.columns:
        cat = gpd.GeoDataFrame(cat, geometry=first.geometry.name, crs=first.crs)
    return cat


def merge_info(a: LayerInfo, b: LayerInfo) -> LayerInfo:
    """The :class:`LayerInfo` of a layer written as ``a``'s rows followed by ``b``'s."""
    bounds = a.bounds or b.bounds
    if a.bounds and b.bounds:
        bounds = (
            min(a.bounds[0], b.bounds[0]),
            min(a.bounds[1], b.bounds[1]),
            max(a.bounds[2], b.bounds[2]),
            max(a.bounds[3], b.bounds[3]),
        )
    types = {t for g in (a.geometry_type, b.geometry_type) if g for t in g.split(",")}
    return dataclasses.replace(
        a,
        rows=a.rows + b.rows,
        crs=a.crs or b.crs,
        geometry_type=",".join(sorted(types)) or None,
        bounds=bounds,
        written_at=b.written_at,
    )


def describe(name: str, frame: Frame, params: dict[str, Any] | None) -> LayerInfo:
    """Build the :class:`LayerInfo` for a frame about to be written."""
    is_geo = isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns
    bounds = None
    gtype = None
    crs = None
    if is_geo and len(frame):
        b = frame.total_bounds
        bounds = tuple(float(v) for v in b) if all(pd.notna(b)) else None
        types = frame.geom_type.dropna().unique()
        gtype = ",".join(sorted(types))
    if is_geo and frame.crs is not None:
        epsg = frame.crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg else frame.crs.to_string()
    return LayerInfo(
        name=name,
        rows=len(frame),
        crs=crs,
        geometry_type=gtype,
        bounds=bounds,
        params=jsonable(dict(params or {})),
        written_at=now_iso(),
    )


def conform(name: str, frame: Frame) -> Frame:
    """Restore canonical dtypes of a layer read back from storage (nullable ints, codes as
    strings) so every backend returns the same frame."""
    spec = SCHEMA.get(name)
    if spec is None:
        return frame
    for fname, f in spec.fields.items():
        if fname not in frame.columns:
            continue
        col = frame[fname]
        if f.kind == "int":
            frame[fname] = pd.to_numeric(col, errors="coerce").round().astype("Int64")
        elif f.kind == "float":
            frame[fname] = pd.to_numeric(col, errors="coerce").astype("Float64")
        elif f.kind == "bool":
            frame[fname] = col.astype("boolean")
        else:
            frame[fname] = col.astype("string")
    return frame


class Store(ABC):
    """A workspace of layers. Subclasses implement the storage; this class the contract.

    All geometry is stored in EPSG:4326. ``params`` written with a layer (the settings,
    CRS used for computing, source files) come back from :meth:`info`.
    """

    location: str

    @abstractmethod
    def layers(self) -> list[str]:
        """Names of the stored layers (not the metadata tables)."""

    @abstractmethod
    def read(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
    ) -> Frame:
        """Read a layer, optionally only rows whose geometry meets ``bbox`` (lon/lat) and
        whose fields equal ``where``'s values. Raises :class:`StoreError` when absent."""

    def read_page(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> tuple[Frame, int]:
        """One page of a layer, for paging clients (the HTTP API's ``items``).

        Returns rows ``offset`` … ``offset + limit - 1`` (in stored order) of those
        matching ``bbox`` and ``where``, and how many rows match in all. Backends override
        this with a form that reads only the page; this default reads all matches.
        """
        frame = self.read(name, bbox=bbox, where=where)
        page = frame.iloc[offset : offset + limit].reset_index(drop=True)
        return page, len(frame)

    def read_page_geojson(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        exclude: tuple[str, ...] = (),
    ) -> tuple[list[tuple[Any, str | None, str]], int] | None:
        """The page of :meth:`read_page` as GeoJSON text made by the database, for
        serving: ``([(feature id, geometry JSON or None, properties JSON without
        ``exclude``), …], number matched)`` with lon/lat in EPSG:4326; the id is the
        value of the layer's key (:data:`LAYER_KEYS`) or the row's number in the stored
        layer (from 1, whatever the filter). Backends
        that cannot do it natively return ``None`` (callers then use :meth:`read_page`)."""
        return None

    @abstractmethod
    def write_many(self, frames: dict[str, Frame], params: dict[str, Any] | None = None) -> None:
        """Write (replace) several layers at once: all of them, or none."""

    @abstractmethod
    def update(
        self,
        names: Iterable[str],
        fn: Callable[[dict[str, Frame | None]], dict[str, Frame]],
        params: dict[str, Any] | None = None,
    ) -> dict[str, Frame]:
        """Read-modify-write under the workspace's write lock.

        Reads the layers ``names`` (``None`` for an absent one), calls ``fn`` with them
        and writes the layers it returns, all while holding the lock every writer of the
        workspace takes (other processes included), so two writers appending at once
        both land: neither reads before the other has written. ``fn`` returning ``{}``
        writes nothing; an exception in ``fn`` leaves the workspace unchanged.

        Returns what ``fn`` returned.
        """

    @abstractmethod
    def change_token(self) -> Any:
        """A value that changes whenever the workspace changes, whoever changed it (this
        process, another server worker, the command line): callers compare it to the
        one they cached with. Raises :class:`StoreError` when the workspace is gone."""

    @abstractmethod
    def check(self) -> None:
        """Raise :class:`StoreError` unless the workspace can be read right now."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove a layer (atomically)."""

    @abstractmethod
    def info(self, name: str | None = None) -> dict[str, LayerInfo] | LayerInfo:
        """Metadata of one layer, or of all layers by name."""

    @abstractmethod
    def meta(self) -> dict[str, Any]:
        """Workspace-level metadata (schema_version, synthetic, city, settings…)."""

    @abstractmethod
    def set_meta(self, **values: Any) -> None:
        """Update workspace-level metadata (atomically)."""

    # -- partitioned runs (gridgis.partitioned) -------------------------------------------
    def shared_location(self) -> str | None:
        """Where a worker on another process or machine opens this same workspace (a
        PostGIS URL with its credentials, a GeoParquet directory), or ``None`` when the
        workspace is not meant to be shared (a GeoPackage: one machine, one writer; the
        partitioned runs then send each partition its data)."""
        return None

    def read_rows(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        rows: np.ndarray | None = None,
        where_in: tuple[str, Iterable[Any]] | None = None,
    ) -> Frame:
        """Rows of a layer for one partition, in stored order, with their stored position
        (0-based) in a column ``_row``.

        Parameters
        ----------
        bbox
            Rows whose envelope meets this lon/lat box (a superset of the rows whose
            shape meets it: callers refine in their metric CRS).
        rows
            Stored positions to keep.
        where_in
            ``(field, values)``: rows whose field is one of ``values`` (compared as text).

        This default reads the whole layer; the shared stores override it with a read
        of only the matching rows through their indexes.
        """
        frame = self.read(name)
        frame = frame.assign(_row=np.arange(len(frame), dtype=np.int64))
        return select_rows(frame, bbox, rows, where_in)

    # -- conveniences shared by both backends -------------------------------------------
    def write(self, name: str, frame: Frame, params: dict[str, Any] | None = None) -> None:
        """Write (replace) one layer atomically."""
        self.write_many({name: frame}, params)

    def write_stream(
        self, batches: Iterable[dict[str, Frame]], params: dict[str, Any] | None = None
    ) -> dict[str, int]:
        """Write (replace) layers that arrive in batches, e.g. one district at a time: a
        layer is the concatenation of its rows in every batch, in order; all layers or
        none are written. Backends that can append (GeoPackage) keep only one batch in
        memory; this default gathers the batches and calls :meth:`write_many`.

        Returns rows written per layer.
        """
        parts: dict[str, list[Frame]] = {}
        for batch in batches:
            for name, frame in batch.items():
                parts.setdefault(name, []).append(frame)
        frames = {name: concat_frames(fs) for name, fs in parts.items()}
        self.write_many(frames, params)
        return {name: len(f) for name, f in frames.items()}

    def has(self, name: str) -> bool:
        return name in self.layers()

    def read_or_none(self, name: str) -> Frame | None:
        return self.read(name) if self.has(name) else None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (PostGIS)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def select_rows(
    frame: Frame,
    bbox: tuple[float, float, float, float] | None,
    rows: np.ndarray | None,
    where_in: tuple[str, Iterable[Any]] | None,
) -> Frame:
    """The rows of ``frame`` (which has ``_row``) meeting :meth:`Store.read_rows`' filters."""
    keep = np.ones(len(frame), bool)
    if bbox is not None:
        if not isinstance(frame, gpd.GeoDataFrame):
            raise StoreError("bbox given for a layer without geometry")
        b = frame.geometry.bounds.to_numpy()
        keep &= (b[:, 0] <= bbox[2]) & (b[:, 2] >= bbox[0]) & (b[:, 1] <= bbox[3])
        keep &= b[:, 3] >= bbox[1]
    if rows is not None:
        keep &= np.isin(frame["_row"].to_numpy(), np.asarray(rows, np.int64))
    if where_in is not None:
        field, values = where_in
        if field not in frame.columns:
            raise NoFieldError(f"no field '{field}' in this layer")
        text = frame[field].astype("string")
        keep &= text.isin([str(v) for v in values]).fillna(False).to_numpy(bool)
    return frame.loc[keep].reset_index(drop=True)
