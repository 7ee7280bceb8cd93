"""What every request of the API shares, without any web framework: the workspace, the
rules, the write token and the caches (lookup index, layer list), kept fresh.

Nothing here imports FastAPI or Starlette: the routers, the dependencies and the ASGI
middlewares (:mod:`api.middleware`) all use this one object through its public methods.

Freshness: the caches remember the store's change token
(:meth:`gridgis.store.Store.change_token`: the GeoPackage file's inode, mtime and size;
PostGIS' change counter bumped in every write transaction) and are dropped when it
changes, whoever changed the workspace — this server, another worker, or the command
line.
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridgis.standards import ServerRules, Settings
from gridgis.store import Store


def parse_authorization(header: str | None) -> tuple[str, str] | None:
    """``(scheme, credentials)`` of an ``Authorization`` header value, split as HTTP
    says (scheme, white space, the rest, trimmed), or ``None`` when either is missing."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if not scheme or not credentials:
        return None
    return scheme, credentials


#: Days whose as-of lookup is kept in memory (each holds a grid index).
AS_OF_CACHE = 8


@dataclass
class AppContext:
    """The workspace, rules, token and caches shared by every request handler.

    Parameters
    ----------
    store
        The workspace.
    settings
        Planning rules for lookups and jobs; ``settings.server`` holds the server's
        limits (:class:`gridgis.standards.ServerRules`).
    maps_dir
        Folder of the HTML maps served under ``/maps/``, or ``None``.
    token
        The write token, or ``None`` (writes refused, personal fields never served).
    """

    store: Store
    settings: Settings
    maps_dir: Path | None
    token: str | None
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock)
    _lookup: Any = None
    _as_of: dict[str, Any] = field(default_factory=dict)
    _layers: list[str] | None = None
    _seen: Any = None

    @property
    def rules(self) -> ServerRules:
        """The server's limits (body sizes, archives, file names)."""
        return self.settings.server

    # -- authorisation ------------------------------------------------------------------
    def token_ok(self, authorization: str | None) -> bool:
        """True when an ``Authorization`` header value carries the write token as a
        bearer token (scheme case-insensitive; compared in constant time)."""
        parts = parse_authorization(authorization)
        if self.token is None or parts is None or parts[0].lower() != "bearer":
            return False
        return hmac.compare_digest(parts[1].encode(), self.token.encode())

    # -- caches -------------------------------------------------------------------------
    def _fresh(self) -> None:
        """Drop the caches when the workspace changed since they were filled (any
        writer). Raises :class:`gridgis.store.StoreError` when the store is gone."""
        token = self.store.change_token()
        if token != self._seen:
            with self._cache_lock:
                if token != self._seen:
                    self._lookup = None
                    self._as_of = {}
                    self._layers = None
                    self._seen = token

    def changed(self) -> None:
        """Forget the caches now (after a write made through this server)."""
        with self._cache_lock:
            self._lookup = None
            self._as_of = {}
            self._layers = None
            self._seen = None

    def layers(self) -> list[str]:
        """Names of the workspace's layers (cached while the workspace is unchanged)."""
        self._fresh()
        names = self._layers
        if names is None:
            names = self.store.layers()
            self._layers = names
        return names

    def has_layer(self, name: str) -> bool:
        """True when the workspace holds layer ``name`` (a served one: not metadata)."""
        return not name.startswith("gridgis_") and name in self.layers()

    def lookup_ready(self) -> Any:
        """The current :class:`gridgis.lookup.Lookup` if it is built and fresh, else
        ``None`` (callers that must not wait for a build, e.g. the point fast lane)."""
        self._fresh()
        return self._lookup

    def lookup(self) -> Any:
        """The :class:`gridgis.lookup.Lookup` of the current workspace, built on first
        use and again after any change (one build at a time)."""
        self._fresh()
        lk = self._lookup
        if lk is None:
            with self._cache_lock:
                if self._lookup is None:
                    from gridgis.lookup import Lookup

                    seen = self.store.change_token()  # before reading: a write meanwhile
                    self._lookup = Lookup.from_store(self.store, self.settings)
                    self._seen = seen  # … is seen by the next request
                lk = self._lookup
        return lk

    def lookup_as_of(self, day: str) -> Any:
        """A :class:`gridgis.lookup.Lookup` over the grids valid on *day* (``YYYY-MM-DD``,
        from layer ``grid_versions``: :func:`gridgis.workflows.versions.lookup_as_of`),
        cached per day while the workspace is unchanged (at most
        :data:`AS_OF_CACHE` days). Raises :class:`gridgis.errors.NotFoundError` when the
        workspace has no dated grids."""
        self._fresh()
        lk = self._as_of.get(day)
        if lk is None:
            from gridgis.workflows.versions import lookup_as_of

            with self._cache_lock:
                lk = lookup_as_of(self.store, self.settings, day)
                if len(self._as_of) >= AS_OF_CACHE:
                    self._as_of.pop(next(iter(self._as_of)))
                self._as_of[day] = lk
        return lk

    def grid_history(self, grid_code: str) -> Any:
        """Every version of one grid (layer ``grid_versions``), oldest first; raises
        :class:`gridgis.errors.NotFoundError` when there is none."""
        from gridgis.errors import NotFoundError
        from gridgis.workflows.versions import history

        if not self.has_layer("grid_versions"):
            raise NotFoundError(
                "the workspace has no 'grid_versions' layer: grids carry dated versions "
                "from their next delineation or refresh"
            )
        rows = history(self.store.read("grid_versions"), grid_code)
        if rows.empty:
            raise NotFoundError(f"no version of grid {grid_code}")
        return rows

    # -- answers ------------------------------------------------------------------------
    def point_answer(
        self, lon: float, lat: float, crs: str, personal: bool, lookup: Any = None
    ) -> dict[str, Any]:
        """The answer of ``GET /lookup/point``: street → community → grid → people at a
        point (degrees in ``crs``); phone numbers only when ``personal``. ``lookup``: an
        already fetched :meth:`lookup` (else fetched here). The route and the point fast
        lane both answer with this function."""
        lk = lookup if lookup is not None else self.lookup()
        return lk.point(lon, lat, crs, include_personal=personal)
