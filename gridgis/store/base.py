"""The store interface shared by the GeoPackage and PostGIS backends."""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgis.layers import SCHEMA

SCHEMA_VERSION = 1
"""Version of the layer schema and metadata tables; bumped on incompatible changes."""

Frame = gpd.GeoDataFrame | pd.DataFrame

#: The key of every layer the project writes: the canonical schema plus derived layers
#: (unique and non-null; PostGIS makes it the primary key, the API the feature id).
LAYER_KEYS: dict[str, str] = {n: s.key for n, s in SCHEMA.items()} | {"grids": "grid_code"}


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

    # -- conveniences shared by both backends -------------------------------------------
    def write(self, name: str, frame: Frame, params: dict[str, Any] | None = None) -> None:
        """Write (replace) one layer atomically."""
        self.write_many({name: frame}, params)

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
