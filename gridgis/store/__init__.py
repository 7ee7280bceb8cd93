"""Workspaces: the layers of one city stored together, with their metadata.

One interface (:class:`Store`), two backends:

* :class:`~gridgis.store.gpkg.GeoPackageStore`, a single ``.gpkg`` file: the embedded
  default, no server;
* ``PostGISStore`` (``postgresql://…`` URLs), for a city running gridgis as a service.

:func:`open_store` picks the backend from a path or URL (or ``GRIDGIS_DATABASE_URL``).
Every write is atomic: a failed or interrupted write leaves the previous layers whole.
"""

from __future__ import annotations

import os

from gridgis.errors import StoreError
from gridgis.store.base import (
    NO_MATCH,
    SCHEMA_VERSION,
    LayerInfo,
    LayerWriteError,
    NoFieldError,
    NoLayerError,
    Store,
    filter_value,
)
from gridgis.store.gpkg import GeoPackageStore

__all__ = [
    "GeoPackageStore",
    "LayerInfo",
    "LayerWriteError",
    "NO_MATCH",
    "NoFieldError",
    "NoLayerError",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
    "filter_value",
    "open_store",
]


def open_store(target: str | os.PathLike | None = None, create: bool = True) -> Store:
    """Open a workspace: a GeoPackage path, or a ``postgresql://`` URL.

    ``None`` reads ``GRIDGIS_DATABASE_URL``. ``create=False`` raises :class:`StoreError`
    when a GeoPackage does not exist yet (for commands that only read).
    """
    if target is None:
        target = os.environ.get("GRIDGIS_DATABASE_URL")
        if not target:
            raise StoreError(
                "no workspace: name a GeoPackage file or a PostGIS URL "
                "(or set GRIDGIS_DATABASE_URL)"
            )
    text = os.fspath(target)
    if text.startswith("parquet://") or text.rstrip("/").endswith(".parquet"):
        from gridgis.store.parquet import GeoParquetStore  # a directory of GeoParquet

        return GeoParquetStore(text, create=create)
    if text.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from gridgis.store.postgis import PostGISStore  # imported lazily: needs a server

        return PostGISStore(text, create=create)
    return GeoPackageStore(text, create=create)
