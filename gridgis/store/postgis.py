"""The server backend: one PostgreSQL/PostGIS schema per workspace.

``postgresql://user:pass@host:5432/db?schema=name`` (default schema ``gridgis``). Tables
are made with SQLAlchemy 2 + geoalchemy2 and loaded with ``COPY`` through psycopg 3.

* Same layer schema as the GeoPackage (:data:`gridgis.layers.SCHEMA`): codes as text,
  nullable integers as ``bigint``, floats as ``double precision``; geometry is one
  ``geometry(Geometry, 4326)`` column named ``geometry`` with a GiST index.
* Every table has a primary key: the layer key (``building_id``, ``grid_code``…) when it
  is present, non-null and unique, else the hidden row number ``_fid`` (which also keeps
  the order rows were written in).
* :meth:`PostGISStore.write_many` drops, re-creates and loads every layer, and updates the
  metadata, in ONE transaction: a failed write leaves all previous layers whole.
* Metadata tables ``gridgis_meta`` (key → JSON, with a ``schema_version`` row) and
  ``gridgis_layers`` (name → :class:`~gridgis.store.base.LayerInfo` JSON), as in the
  GeoPackage.
* ``read(bbox=…)`` filters with ``geometry && envelope AND ST_Intersects(…)`` so the
  GiST index is used.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql as pg

from gridgis.errors import StoreError
from gridgis.layers import SCHEMA, STORAGE_CRS
from gridgis.store.base import (
    LAYER_KEYS,
    NO_MATCH,
    SCHEMA_VERSION,
    Frame,
    LayerInfo,
    LayerWriteError,
    NoFieldError,
    NoLayerError,
    Store,
    conform,
    describe,
    filter_value,
    jsonable,
    now_iso,
)

_META = "gridgis_meta"
_LAYERS = "gridgis_layers"
_FID = "_fid"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Row of ``gridgis_meta`` counting writes (bumped in every write transaction; not
#: part of :meth:`PostGISStore.meta`).
_COUNTER = "change_counter"
#: Staging tables of partitioned runs: ``_stage_<run>_<layer>`` (not layers: not listed
#: in ``gridgis_layers``), with the partition key, the row's place in the published layer
#: and its place within the partition.
_STAGE = "_stage_"
_STAGE_RUN = re.compile(r"^_stage_([0-9a-f]{6,16})_")
_PART, _ORD, _SEQ = "_part", "_ord", "_seq"

#: Seconds a layer's column list is trusted before it is read again.
COLUMN_CACHE_S = 2.0

#: Columns indexed (b-tree) when present: the attribute filters planners use most.
INDEXED_FIELDS = ("street_code", "community_code", "grid_code", "category", "building_id")


class _ChangeWatch:
    """Learns of the workspace's changes without a query per request: every write
    transaction sends ``NOTIFY`` on the workspace's channel (delivered at commit), and
    this watch holds one connection that ``LISTEN``s to it.

    :meth:`generation` polls that connection without waiting (libpq's input buffer:
    microseconds) and counts the notifications, plus one per (re)connection (changes
    may have been missed while not listening). The connection is checked with a query
    once a second (a database restart drops it); while it is down, :meth:`generation`
    returns ``None`` and the caller asks the database."""

    #: Seconds between checks of the listening connection, and between reconnections.
    CHECK_S = 1.0

    def __init__(self, dsn: str, channel: str) -> None:
        self.dsn = dsn
        self.channel = channel
        self.lock = threading.Lock()
        self.con: psycopg.Connection | None = None
        self.count = 0
        self.checked = 0.0
        self.retry_at = 0.0

    def _bump(self, *_: Any) -> None:
        self.count += 1

    def generation(self) -> int | None:
        with self.lock:
            now = time.monotonic()
            try:
                if self.con is None:
                    if now < self.retry_at:
                        return None
                    self.con = psycopg.connect(self.dsn, autocommit=True, connect_timeout=3)
                    self.con.add_notify_handler(self._bump)  # those read by execute()
                    self.con.execute(f"LISTEN {_ident(self.channel)}")
                    self.count += 1
                    self.checked = now
                elif now - self.checked > self.CHECK_S:
                    self.con.execute("SELECT 1")
                    self.checked = now
                pgconn = self.con.pgconn
                pgconn.consume_input()
                while pgconn.notifies() is not None:
                    self.count += 1
                return self.count
            except psycopg.Error:
                self.close()
                self.retry_at = now + self.CHECK_S
                return None

    def close(self) -> None:
        if self.con is not None:
            with contextlib.suppress(psycopg.Error):
                self.con.close()
            self.con = None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def split_url(url: str) -> tuple[str, str]:
    """Split ``postgresql://…?schema=name`` into a SQLAlchemy psycopg URL and the schema."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", "gridgis")
    if not _NAME.match(schema):
        raise StoreError(f"schema '{schema}': use lower-case letters, digits and _")
    scheme = "postgresql+psycopg"
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), "")), schema


class PostGISStore(Store):
    """A workspace in one schema of a PostGIS database.

    Parameters
    ----------
    url
        ``postgresql://user:password@host:port/database[?schema=name]``.
    create
        Create the schema and metadata tables when absent (else :class:`StoreError`).
    """

    def __init__(self, url: str, create: bool = True) -> None:
        sa_url, self.schema = split_url(url)
        safe = sa.make_url(sa_url)
        self.location = f"{safe.render_as_string(hide_password=True)}?schema={self.schema}"
        self.location = self.location.replace("postgresql+psycopg://", "postgresql://")
        # pre-ping: a connection the server dropped (a database restart) is replaced
        # before use instead of failing the first requests after the restart
        self.engine = sa.create_engine(
            sa_url, pool_size=8, max_overflow=32, pool_pre_ping=True, pool_recycle=600
        )
        self._lock_key = zlib.crc32(f"gridgis:{self.schema}".encode())
        self._dsn = (
            sa.make_url(sa_url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._channel = f"gridgis_{self.schema}"[:63]
        self._watch = _ChangeWatch(self._dsn, self._channel)
        self._col_cache: dict[str, tuple[float, dict[str, str]]] = {}
        try:
            self._init(create)
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            raise StoreError(f"{self.location}: cannot connect: {exc.orig}") from exc
        except sa.exc.DBAPIError as exc:
            self.engine.dispose()
            raise StoreError(f"{self.location}: {exc.orig}") from exc

    # -- plumbing -------------------------------------------------------------------------
    def _q(self, table: str) -> str:
        return f"{_ident(self.schema)}.{_ident(table)}"

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A psycopg cursor on a pooled connection (read-only use; rolled back after).
        A lost connection or an unreachable server is a :class:`StoreError`."""
        try:
            with self.engine.connect() as conn:
                raw = conn.connection.driver_connection
                with raw.cursor() as cur:
                    yield cur
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise StoreError(
                f"{self.location}: the database cannot be reached: {exc.orig}"
            ) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreError(f"{self.location}: the database cannot be reached: {exc}") from exc

    def change_token(self) -> Any:
        """``("listen", n)`` from the change watch while it listens (no query: every
        writer's transaction notifies the workspace's channel on commit; seen here
        within a millisecond or so of the commit), else ``("counter", n)`` read from the
        change counter row."""
        generation = self._watch.generation()
        if generation is not None:
            return ("listen", generation)
        with self._cursor() as cur:
            cur.execute(f"SELECT value FROM {self._q(_META)} WHERE key = %s", (_COUNTER,))
            row = cur.fetchone()
        return ("counter", int(row[0]) if row else 0)

    def check(self) -> None:
        with self._cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {self._q(_LAYERS)}")
            cur.fetchone()

    def _begin_write(self, conn: sa.Connection) -> None:
        """Take the workspace's write lock (a transaction-level advisory lock, released
        at commit or rollback) and bump the change counter in the same transaction."""
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%(k)s)", {"k": self._lock_key})
        conn.exec_driver_sql(f"NOTIFY {_ident(self._channel)}")  # delivered at commit
        conn.exec_driver_sql(
            f"INSERT INTO {self._q(_META)} AS m VALUES (%(k)s, '1'::jsonb) "
            "ON CONFLICT (key) DO UPDATE SET value = to_jsonb((m.value #>> '{}')::bigint + 1)",
            {"k": _COUNTER},
        )

    def _init(self, create: bool) -> None:
        with self.engine.begin() as conn:
            has_postgis = conn.exec_driver_sql(
                "SELECT 1 FROM pg_extension WHERE extname = 'postgis'"
            ).first()
            if not has_postgis:
                try:
                    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
                except sa.exc.DBAPIError as exc:
                    raise StoreError(
                        f"{self.location}: the database lacks the PostGIS "
                        f"extension and it cannot be created: {exc.orig}"
                    ) from exc
            exists = conn.exec_driver_sql(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %(s)s "
                "AND table_name = %(t)s",
                {"s": self.schema, "t": _META},
            ).first()
            if not exists:
                if not create:
                    raise StoreError(f"{self.location}: no such workspace")
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {_ident(self.schema)}")
                conn.exec_driver_sql(
                    f"CREATE TABLE IF NOT EXISTS {self._q(_META)} "
                    "(key text PRIMARY KEY, value jsonb)"
                )
                conn.exec_driver_sql(
                    f"CREATE TABLE IF NOT EXISTS {self._q(_LAYERS)} "
                    "(name text PRIMARY KEY, info jsonb NOT NULL)"
                )
                conn.exec_driver_sql(
                    f"INSERT INTO {self._q(_META)} VALUES ('schema_version', %(v)s), "
                    "('created_at', %(c)s) ON CONFLICT DO NOTHING",
                    {"v": json.dumps(SCHEMA_VERSION), "c": json.dumps(now_iso())},
                )
            version = conn.exec_driver_sql(
                f"SELECT value FROM {self._q(_META)} WHERE key = 'schema_version'"
            ).scalar()
            if version is not None and int(version) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.location}: workspace schema version {version} is "
                    f"newer than this gridgis ({SCHEMA_VERSION}); upgrade gridgis"
                )

    def close(self) -> None:
        with self._watch.lock:
            self._watch.close()
        self.engine.dispose()

    # -- reading --------------------------------------------------------------------------
    def layers(self) -> list[str]:
        with self._cursor() as cur:
            cur.execute(f"SELECT name FROM {self._q(_LAYERS)} ORDER BY name")
            return [r[0] for r in cur.fetchall()]

    def _columns(self, cur: Any, name: str) -> dict[str, str]:
        """Column name → PostgreSQL type of a layer table (raises when absent). Cached
        for :data:`COLUMN_CACHE_S` seconds and dropped on every write through this
        store (a reader that meets a table changed meanwhile re-reads it: :meth:`_retry`)."""
        hit = self._col_cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < COLUMN_CACHE_S:
            return hit[1]
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attnum",
            (self.schema, name),
        )
        cols = dict(cur.fetchall())
        if not cols or name.startswith("gridgis_"):
            raise NoLayerError(
                f"{self.location}: no layer '{name}' (layers: {', '.join(self.layers()) or 'none'})"
            )
        self._col_cache[name] = (time.monotonic(), cols)
        return cols

    def _retry(self, func, *args):
        """Run a read; if its table changed under a cached column list, once more."""
        try:
            return func(*args)
        except (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedTable):
            self._col_cache.clear()
            return func(*args)

    def _filter(
        self,
        cols: dict[str, str],
        bbox: tuple[float, float, float, float] | None,
        where: dict[str, Any] | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if bbox is not None and "geometry" not in cols:
            clauses.append("false")  # a table without geometry: no row meets any box
        elif bbox is not None:
            minx, miny, maxx, maxy = (float(v) for v in bbox)
            clauses.append(
                "geometry && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND "
                "ST_Intersects(geometry, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
            )
            args += [minx, miny, maxx, maxy] * 2
        for key, value in (where or {}).items():
            if key not in cols or key == _FID or key == "geometry":
                raise NoFieldError(
                    f"no field '{key}' in this layer (fields: "
                    f"{', '.join(c for c in cols if c not in (_FID, 'geometry'))})"
                )
            kind = _kind(cols[key])
            v = filter_value(value, kind)
            if v is NO_MATCH:
                clauses.append("false")
            elif v is None:
                clauses.append(f"{_ident(key)} IS NULL")
            else:
                cast = "::text" if kind == "text" and cols[key] != "text" else ""
                clauses.append(f"{_ident(key)}{cast} = %s")
                args.append(v)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def read(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
    ) -> Frame:
        frame, _ = self._retry(self._select, name, bbox, where, None, 0, False)
        return frame

    def read_page(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> tuple[Frame, int]:
        return self._retry(self._select, name, bbox, where, limit, offset, True)

    def read_page_geojson(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        exclude: tuple[str, ...] = (),
    ) -> tuple[list[tuple[Any, str | None, str]], int]:
        """GeoJSON geometry (15 decimals) and properties straight from PostGIS; feature
        ids are the layer key's values (:data:`LAYER_KEYS`) or stored row numbers."""
        return self._retry(self._geojson, name, bbox, where, limit, offset, exclude)

    def _geojson(self, name, bbox, where, limit, offset, exclude):
        with self._cursor() as cur:
            cols = self._columns(cur, name)
            key = LAYER_KEYS.get(name) if LAYER_KEYS.get(name) in cols else None
            sql_where, args = self._filter(cols, bbox, where)
            count_sql = f"(SELECT count(*) FROM {self._q(name)}{sql_where})"
            fields = [c for c in cols if c not in (_FID, "geometry") and c not in exclude]
            geo = "geometry" in cols
            inner = ", ".join(
                [_FID]
                + (["geometry"] if geo else [])
                + [_ident(c) for c in fields]
                + ([_ident(key)] if key and key not in fields else [])
            )
            props = ", ".join(f"q.{_ident(c)}" for c in fields)
            cur.execute(
                f"SELECT {count_sql}, {f'q.{_ident(key)}' if key else f'q.{_FID}'}, "
                + ("ST_AsGeoJSON(q.geometry, 15), " if geo else "NULL, ")
                + (f"(SELECT row_to_json(p) FROM (SELECT {props}) p)::text " if fields else "'{}' ")
                + f"FROM (SELECT {inner} FROM {self._q(name)}{sql_where} ORDER BY {_FID} "
                f"LIMIT {int(limit)} OFFSET {int(offset)}) q ORDER BY q.{_FID}",
                args + args,
            )
            rows = cur.fetchall()
            if rows:
                matched = int(rows[0][0])
            elif offset == 0 and limit > 0:
                matched = 0
            else:
                cur.execute(f"SELECT count(*) FROM {self._q(name)}{sql_where}", args)
                matched = int(cur.fetchone()[0])
        return [(k, g, p) for _, k, g, p in rows], matched

    def _select(
        self, name: str, bbox, where, limit: int | None, offset: int, count: bool
    ) -> tuple[Frame, int]:
        with self._cursor() as cur:
            cols = self._columns(cur, name)
            sql_where, args = self._filter(cols, bbox, where)
            matched = -1
            if count:
                cur.execute(f"SELECT count(*) FROM {self._q(name)}{sql_where}", args)
                matched = int(cur.fetchone()[0])
            fields = [c for c in cols if c not in (_FID, "geometry")]
            select = [_ident(c) for c in fields]
            if "geometry" in cols:
                select.append("ST_AsBinary(geometry)")
            page = ""
            if limit is not None:
                page = f" LIMIT {int(limit)} OFFSET {int(offset)}"
            elif offset:
                page = f" OFFSET {int(offset)}"
            cur.execute(
                f"SELECT {', '.join(select) or 'NULL'} FROM {self._q(name)}"
                f"{sql_where} ORDER BY {_FID}{page}",
                args,
            )
            rows = cur.fetchall()
        return self._frame(name, cols, fields, rows), matched

    def _frame(self, name: str, cols: dict[str, str], fields: list[str], rows: list) -> Frame:
        """A layer's frame from fetched rows (``fields`` then the geometry's WKB)."""
        width = len(fields) + (1 if "geometry" in cols else 0)
        data = list(zip(*rows, strict=True)) if rows else [()] * width
        out: dict[str, Any] = {}
        for i, col in enumerate(fields):
            out[col] = _column(list(data[i]), cols[col])
        frame = pd.DataFrame(out, index=pd.RangeIndex(len(rows)), columns=fields)
        if "geometry" in cols:
            wkb = np.array(data[-1], dtype=object) if rows else np.array([], dtype=object)
            geoms = shapely.from_wkb(wkb) if len(wkb) else np.array([], dtype=object)
            gs = gpd.GeoSeries(geoms, index=frame.index, crs=STORAGE_CRS)
            # only layers written as GeoDataFrames have a geometry column: empty or not,
            # with shapes or not, they come back as layers (like the GeoPackage)
            frame = gpd.GeoDataFrame(frame, geometry=gs, crs=STORAGE_CRS)
        return conform(name, frame)

    def info(self, name: str | None = None) -> dict[str, LayerInfo] | LayerInfo:
        with self._cursor() as cur:
            cur.execute(f"SELECT name, info FROM {self._q(_LAYERS)}")
            rows = cur.fetchall()
        infos = {}
        for lname, data in rows:
            data = dict(data)
            if data.get("bounds"):
                data["bounds"] = tuple(data["bounds"])
            infos[lname] = LayerInfo(**data)
        if name is None:
            return infos
        if name not in infos:
            raise NoLayerError(f"{self.location}: no layer '{name}'")
        return infos[name]

    def meta(self) -> dict[str, Any]:
        with self._cursor() as cur:
            cur.execute(f"SELECT key, value FROM {self._q(_META)} WHERE key <> %s", (_COUNTER,))
            return dict(cur.fetchall())

    # -- writing --------------------------------------------------------------------------
    def write_many(self, frames: dict[str, Frame], params: dict[str, Any] | None = None) -> None:
        prepared = _prepare_all(frames)
        self._col_cache.clear()
        try:
            with self.engine.begin() as conn:
                self._begin_write(conn)
                self._write_prepared(conn, prepared, params)
        except sa.exc.DBAPIError as exc:
            raise StoreError(
                f"{self.location}: writing {', '.join(frames)} failed, nothing changed: {exc.orig}"
            ) from exc

    def update(
        self,
        names: Iterable[str],
        fn: Callable[[dict[str, Frame | None]], dict[str, Frame]],
        params: dict[str, Any] | None = None,
    ) -> dict[str, Frame]:
        names = list(names)
        frames: dict[str, Frame] = {}
        try:
            with self.engine.begin() as conn:
                self._begin_write(conn)  # every writer waits here: reads below are current
                self._col_cache.clear()
                present = set(self.layers())
                current = {n: (self.read(n) if n in present else None) for n in names}
                frames = fn(current)
                if frames:
                    prepared = _prepare_all(frames)
                    self._col_cache.clear()
                    self._write_prepared(conn, prepared, params)
        except sa.exc.DBAPIError as exc:
            raise StoreError(
                f"{self.location}: updating {', '.join(names)} failed, nothing changed: {exc.orig}"
            ) from exc
        return frames

    def _write_prepared(
        self,
        conn: sa.Connection,
        prepared: dict[str, tuple[pd.DataFrame, bool]],
        params: dict[str, Any] | None,
    ) -> None:
        raw = conn.connection.driver_connection
        for name, (frame, geo) in prepared.items():
            self._write_layer(conn, raw, name, frame, geo)
            info = describe(name, frame, params)
            conn.exec_driver_sql(
                f"INSERT INTO {self._q(_LAYERS)} VALUES (%(n)s, %(i)s) "
                "ON CONFLICT (name) DO UPDATE SET info = EXCLUDED.info",
                {"n": name, "i": info.to_json()},
            )

    def _write_layer(
        self, conn: sa.Connection, raw: Any, name: str, frame: pd.DataFrame, geo: bool
    ) -> None:
        fields = [c for c in frame.columns if c != "geometry"]
        key = LAYER_KEYS.get(name)
        use_key = (
            key in fields and frame[key].notna().all() and frame[key].is_unique and len(frame) > 0
        )
        md = sa.MetaData(schema=self.schema)
        columns = [sa.Column(_FID, sa.BigInteger, nullable=False, primary_key=not use_key)]
        for col in fields:
            columns.append(
                sa.Column(
                    col, _sql_type(name, col, frame[col]), primary_key=bool(use_key and col == key)
                )
            )
        if geo:
            columns.append(
                sa.Column("geometry", Geometry("GEOMETRY", srid=4326, spatial_index=False))
            )
        table = sa.Table(name, md, *columns)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self._q(name)} CASCADE")
        table.create(conn)
        values = [list(range(1, len(frame) + 1))]
        values += [_py_values(frame[c]) for c in fields]
        if geo:
            geoms = np.asarray(frame.geometry.values, dtype=object)
            geoms = shapely.set_srid(geoms, 4326)
            values.append(list(shapely.to_wkb(geoms, hex=True, include_srid=True)))
        names = ", ".join(_ident(c) for c in [_FID, *fields] + (["geometry"] if geo else []))
        with raw.cursor() as cur:
            with cur.copy(f"COPY {self._q(name)} ({names}) FROM STDIN") as cp:
                for row in zip(*values, strict=True):
                    cp.write_row(row)
            if geo:
                cur.execute(
                    f"CREATE INDEX {_ident(f'{name}_geometry_gist')} ON "
                    f"{self._q(name)} USING gist (geometry)"
                )
            if use_key:
                cur.execute(
                    f"CREATE UNIQUE INDEX {_ident(f'{name}_fid_idx')} ON {self._q(name)} ({_FID})"
                )
            for col in INDEXED_FIELDS:
                if col in fields and col != key:
                    cur.execute(
                        f"CREATE INDEX {_ident(f'{name}_{col}_idx')} ON "
                        f"{self._q(name)} ({_ident(col)})"
                    )
            cur.execute(f"ANALYZE {self._q(name)}")

    def delete(self, name: str) -> None:
        if name not in self.layers():
            raise NoLayerError(f"{self.location}: no layer '{name}'")
        self._col_cache.clear()
        with self.engine.begin() as conn:
            self._begin_write(conn)
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self._q(name)} CASCADE")
            conn.exec_driver_sql(f"DELETE FROM {self._q(_LAYERS)} WHERE name = %(n)s", {"n": name})

    def set_meta(self, **values: Any) -> None:
        with self.engine.begin() as conn:
            self._begin_write(conn)
            for k, v in values.items():
                conn.exec_driver_sql(
                    f"INSERT INTO {self._q(_META)} VALUES (%(k)s, %(v)s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    {"k": k, "v": json.dumps(jsonable(v), ensure_ascii=False, default=str)},
                )

    # -- partitioned runs: shared reads, staged writes ------------------------------------
    def shared_location(self) -> str:
        """The workspace's URL with its credentials and schema, for workers."""
        return (
            self._dsn.split("?")[0]
            + "?"
            + urlencode({**dict(parse_qsl(urlsplit(self._dsn).query)), "schema": self.schema})
        )

    def read_rows(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        rows: np.ndarray | None = None,
        where_in: tuple[str, Iterable[Any]] | None = None,
    ) -> Frame:
        """:meth:`Store.read_rows` in one query: ``geometry && box`` (the GiST index),
        ``_fid = ANY(…)`` (the row number's index) and ``field = ANY(…)`` (the b-tree of
        the code columns, :data:`INDEXED_FIELDS`)."""
        return self._retry(self._select_rows, name, bbox, rows, where_in)

    def rows_query(
        self, name: str, bbox=None, rows=None, where_in=None, cols: dict[str, str] | None = None
    ) -> tuple[str, list[Any], list[str]]:
        """The SQL of :meth:`read_rows` (for EXPLAIN), its arguments and fields."""
        if cols is None:
            with self._cursor() as cur:
                cols = self._columns(cur, name)
        clauses, args = [], []
        if bbox is not None:
            if "geometry" not in cols:
                raise StoreError(f"layer '{name}': bbox given for a layer without geometry")
            clauses.append("geometry && ST_MakeEnvelope(%s, %s, %s, %s, 4326)")
            args += [float(v) for v in bbox]
        if rows is not None:
            clauses.append(f"{_FID} = ANY(%s::bigint[])")
            args.append((np.asarray(rows, np.int64) + 1).tolist())
        if where_in is not None:
            field, values = where_in
            if field not in cols or field in (_FID, "geometry"):
                raise NoFieldError(f"no field '{field}' in layer '{name}'")
            cast = "" if cols[field] == "text" else "::text"
            clauses.append(f"{_ident(field)}{cast} = ANY(%s::text[])")
            args.append([str(v) for v in values])
        fields = [c for c in cols if c not in (_FID, "geometry")]
        select = [f"{_FID} - 1", *(_ident(c) for c in fields)]
        if "geometry" in cols:
            select.append("ST_AsBinary(geometry)")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = f"SELECT {', '.join(select)} FROM {self._q(name)}{where} ORDER BY {_FID}"
        return sql, args, fields

    def _select_rows(self, name, bbox, rows, where_in) -> Frame:
        with self._cursor() as cur:
            cols = self._columns(cur, name)
            sql, args, fields = self.rows_query(name, bbox, rows, where_in, cols)
            cur.execute(sql, args)
            fetched = cur.fetchall()
        frame = self._frame(name, cols, fields, [r[1:] for r in fetched])
        frame.insert(0, "_row", np.array([r[0] for r in fetched], dtype=np.int64))
        return frame

    def _stage_table(self, name: str, run: str) -> str:
        if not _NAME.match(name) or not re.fullmatch(r"[0-9a-f]{6,16}", run):
            raise StoreError(f"cannot stage layer '{name}' for run '{run}'")
        table = f"{_STAGE}{run}_{name}"
        if len(table) > 63:
            raise StoreError(f"layer name '{name}' too long to stage")
        return table

    def stage_partition(
        self, name: str, run: str, key: str, frame: Frame, order: np.ndarray | None = None
    ) -> int:
        """Write one partition's rows of layer ``name`` for run ``run`` into the run's
        staging table ``_stage_<run>_<name>`` (invisible to readers), in ONE transaction
        that first deletes the rows this partition ``key`` staged before: a re-run of a
        partition (a retry after a lost worker) leaves its rows once. ``order`` (one
        integer per row) is where each row goes in the published layer (ties: partition
        key, then the row's place in ``frame``). Returns the rows staged.

        Only a live run stages (its client holds :meth:`hold_run`): a partition still
        running when its run failed and dropped its staging raises :class:`StoreError`
        instead of leaving rows behind."""
        ((_, (prepared, geo)),) = _prepare_all({name: frame}).items()
        table = self._stage_table(name, run)
        order = np.zeros(len(prepared), np.int64) if order is None else np.asarray(order)
        try:
            with self.engine.begin() as conn:  # the table, made once (concurrent workers)
                self._check_alive(conn, run)
                conn.exec_driver_sql(
                    "SELECT pg_advisory_xact_lock(%(k)s)", {"k": zlib.crc32(table.encode())}
                )
                self._create_stage(conn, table, name, prepared, geo)
            with self.engine.begin() as conn:
                self._check_alive(conn, run)
                conn.exec_driver_sql(
                    "SELECT pg_advisory_xact_lock(%(k)s)",
                    {"k": zlib.crc32(f"{table}/{key}".encode())},
                )
                conn.exec_driver_sql(
                    f"DELETE FROM {self._q(table)} WHERE {_PART} = %(p)s", {"p": key}
                )
                fields = [c for c in prepared.columns if c != "geometry"]
                values = [[key] * len(prepared), order.tolist(), list(range(len(prepared)))]
                values += [_py_values(prepared[c]) for c in fields]
                if geo:
                    geoms = shapely.set_srid(np.asarray(prepared.geometry.values, object), 4326)
                    values.append(list(shapely.to_wkb(geoms, hex=True, include_srid=True)))
                names = [_PART, _ORD, _SEQ, *fields] + (["geometry"] if geo else [])
                raw = conn.connection.driver_connection
                with raw.cursor() as cur:
                    cols = ", ".join(_ident(c) for c in names)
                    with cur.copy(f"COPY {self._q(table)} ({cols}) FROM STDIN") as cp:
                        for row in zip(*values, strict=True):
                            cp.write_row(row)
        except sa.exc.DBAPIError as exc:
            raise StoreError(
                f"{self.location}: staging partition {key} of '{name}' failed: {exc.orig}"
            ) from exc
        return len(prepared)

    def _create_stage(self, conn, table: str, name: str, frame: pd.DataFrame, geo: bool) -> None:
        md = sa.MetaData(schema=self.schema)
        columns = [
            sa.Column(_PART, sa.Text, nullable=False),
            sa.Column(_ORD, sa.BigInteger, nullable=False),
            sa.Column(_SEQ, sa.BigInteger, nullable=False),
        ]
        columns += [
            sa.Column(c, _sql_type(name, c, frame[c])) for c in frame.columns if c != "geometry"
        ]
        if geo:
            columns.append(
                sa.Column("geometry", Geometry("GEOMETRY", srid=4326, spatial_index=False))
            )
        sa.Table(table, md, *columns).create(conn, checkfirst=True)
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {_ident(table + '_part')} ON {self._q(table)} ({_PART})"
        )

    def publish(
        self,
        frames: dict[str, Frame],
        staged: dict[str, str],
        params: dict[str, Any] | None = None,
    ) -> None:
        """Write ``frames`` and make the staged layers ``{layer: run}`` live, all in ONE
        transaction under the write lock (readers see the old layers or all the new ones),
        then drop those staging tables (in the same transaction).

        Raises
        ------
        StoreError
            Nothing staged for a layer, or the write failed: nothing changed.
        """
        prepared = _prepare_all(frames)
        tables = {n: self._stage_table(n, r) for n, r in staged.items()}
        self._col_cache.clear()
        try:
            with self.engine.begin() as conn:
                self._begin_write(conn)
                self._write_prepared(conn, prepared, params)
                for name, table in tables.items():
                    self._publish_stage(conn, name, table, params)
        except sa.exc.DBAPIError as exc:
            raise StoreError(
                f"{self.location}: publishing {', '.join([*frames, *staged])} failed, "
                f"nothing changed: {exc.orig}"
            ) from exc

    def _publish_stage(self, conn, name: str, table: str, params) -> None:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute(
                "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND "
                "c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (self.schema, table),
            )
            cols = [r[0] for r in cur.fetchall() if r[0] not in (_PART, _ORD, _SEQ)]
            if not cols:
                raise StoreError(f"{self.location}: nothing staged for layer '{name}'")
            fields = [c for c in cols if c != "geometry"]
            geo = "geometry" in cols
            cur.execute(f"DROP TABLE IF EXISTS {self._q(name)} CASCADE")
            listed = ", ".join(_ident(c) for c in cols)
            cur.execute(
                f"CREATE TABLE {self._q(name)} AS SELECT (row_number() OVER "
                f"(ORDER BY {_ORD}, {_PART}, {_SEQ}))::bigint AS {_FID}, {listed} "
                f"FROM {self._q(table)} ORDER BY {_ORD}, {_PART}, {_SEQ}"
            )
            cur.execute(f"ALTER TABLE {self._q(name)} ALTER COLUMN {_FID} SET NOT NULL")
            key = LAYER_KEYS.get(name)
            n_rows = 0
            cur.execute(f"SELECT count(*) FROM {self._q(name)}")
            n_rows = int(cur.fetchone()[0])
            use_key = False
            if key in fields and n_rows:
                cur.execute(
                    f"SELECT count({_ident(key)}) = count(*) AND count(DISTINCT {_ident(key)}) "
                    f"= count(*) FROM {self._q(name)}"
                )
                use_key = bool(cur.fetchone()[0])
            pk = key if use_key else _FID
            cur.execute(f"ALTER TABLE {self._q(name)} ADD PRIMARY KEY ({_ident(pk)})")
            if use_key:
                cur.execute(
                    f"CREATE UNIQUE INDEX {_ident(f'{name}_fid_idx')} ON {self._q(name)} ({_FID})"
                )
            if geo:
                cur.execute(
                    f"CREATE INDEX {_ident(f'{name}_geometry_gist')} ON "
                    f"{self._q(name)} USING gist (geometry)"
                )
            for col in INDEXED_FIELDS:
                if col in fields and col != pk:
                    cur.execute(
                        f"CREATE INDEX {_ident(f'{name}_{col}_idx')} ON "
                        f"{self._q(name)} ({_ident(col)})"
                    )
            info = LayerInfo(
                name=name,
                rows=n_rows,
                crs="EPSG:4326" if geo else None,
                geometry_type=None,
                bounds=None,
                params=jsonable(dict(params or {})),
                written_at=now_iso(),
            )
            if geo and n_rows:
                cur.execute(
                    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                    f"ST_Extent(geometry)::geometry AS e FROM {self._q(name)}) q"
                )
                b = cur.fetchone()
                info.bounds = tuple(float(v) for v in b) if b[0] is not None else None
                cur.execute(
                    "SELECT DISTINCT substr(ST_GeometryType(geometry), 4) FROM "
                    f"{self._q(name)} WHERE geometry IS NOT NULL"
                )
                info.geometry_type = ",".join(sorted(r[0] for r in cur.fetchall())) or None
            cur.execute(f"DROP TABLE {self._q(table)}")
            cur.execute(f"ANALYZE {self._q(name)}")
            cur.execute(
                f"INSERT INTO {self._q(_LAYERS)} VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET info = EXCLUDED.info",
                (name, info.to_json()),
            )

    def staging(self) -> list[str]:
        """Staging tables of partitioned runs present in the workspace."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name LIKE %s ORDER BY table_name",
                (self.schema, _STAGE.replace("_", r"\_") + "%"),
            )
            return [r[0] for r in cur.fetchall()]

    def drop_staging(self, run: str) -> None:
        """Drop every staging table of run ``run`` (a failed or finished run)."""
        with psycopg.connect(self._dsn, autocommit=True) as con, con.transaction():
            self._drop_staging(con, run)

    def _drop_staging(self, con: psycopg.Connection, run: str) -> None:
        prefix = f"{_STAGE}{run}_"
        for t in [t for t in self.staging() if t.startswith(prefix)]:
            con.execute(f"DROP TABLE IF EXISTS {self._q(t)}")

    def _run_lock_key(self, run: str, what: str = "run") -> int:
        return zlib.crc32(f"gridgis-{what}:{self.schema}:{run}".encode())

    def _check_alive(self, conn: sa.Connection, run: str) -> None:
        """In a staging transaction: wait out the end of the run (which holds the run's
        ``stage`` lock exclusively while it drops its staging), then make sure its client
        still holds the run (a shared try-lock succeeds only when nobody does)."""
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock_shared(%(k)s)", {"k": self._run_lock_key(run, "stage")}
        )
        free = conn.exec_driver_sql(
            "SELECT pg_try_advisory_xact_lock_shared(%(k)s)", {"k": self._run_lock_key(run)}
        ).scalar()
        if free:
            raise StoreError(
                f"{self.location}: run {run} is over (its client finished, failed or died): "
                "partition not staged"
            )

    @contextlib.contextmanager
    def hold_run(self, run: str, drop: bool = True) -> Iterator[None]:
        """Mark run ``run`` alive while the block runs: a session advisory lock on a
        connection of its own, which the server releases if this process dies, so
        :meth:`clean_stale_staging` of a later run knows the staging is abandoned. On
        the way out (``drop``) the run's staging tables are dropped and the run released
        in one step that waits for partitions staging at that moment and refuses later
        ones: nothing staged outlives the run."""
        con = psycopg.connect(self._dsn, autocommit=True)
        key = self._run_lock_key(run)
        try:
            con.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                if drop:
                    self._end_run(con, run)
        finally:
            with contextlib.suppress(psycopg.Error):
                con.close()

    def clean_stale_staging(self) -> list[str]:
        """Drop the staging tables of runs no live client holds (a crashed client's
        leftovers); returns the runs cleaned."""
        runs = sorted(
            {m.group(1) for t in self.staging() if (m := _STAGE_RUN.match(t)) is not None}
        )
        cleaned = []
        if not runs:
            return cleaned
        with psycopg.connect(self._dsn, autocommit=True) as con:
            for run in runs:
                key = self._run_lock_key(run)
                if con.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                    self._end_run(con, run)
                    cleaned.append(run)
        return cleaned

    def _end_run(self, con: psycopg.Connection, run: str) -> None:
        """Drop run ``run``'s staging and release the run (held on ``con``) in one
        transaction holding the run's ``stage`` lock: partitions staging now finish
        first, later ones find the run over (:meth:`_check_alive`)."""
        with con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", (self._run_lock_key(run, "stage"),))
            self._drop_staging(con, run)
            con.execute("SELECT pg_advisory_unlock(%s)", (self._run_lock_key(run),))


# -- frame <-> SQL ----------------------------------------------------------------------
def _kind(ctype: str) -> str:
    """The filter kind (:func:`gridgis.store.base.filter_value`) of a PostgreSQL type."""
    if ctype in ("bigint", "integer", "smallint"):
        return "int"
    if ctype in ("double precision", "real", "numeric"):
        return "float"
    if ctype == "boolean":
        return "bool"
    return "text"


def _prepare_all(frames: dict[str, Frame]) -> dict[str, tuple[pd.DataFrame, bool]]:
    """Check the layer names and bring every frame to storage form."""
    for name in frames:
        if (
            not _NAME.match(name)
            or name.startswith(("gridgis_", "pg_"))
            or name in ("spatial_ref_sys",)
        ):
            raise LayerWriteError(
                f"'{name}' is not a valid layer name (lower-case letters, "
                "digits and _; not gridgis_*/pg_*)"
            )
    return {name: _prepare(name, frame) for name, frame in frames.items()}


def _prepare(name: str, frame: Frame) -> tuple[pd.DataFrame, bool]:
    """Check a frame and bring it to storage form: EPSG:4326 geometry named 'geometry'."""
    geo = isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns
    if geo:
        if frame.crs is None:
            raise LayerWriteError(f"layer '{name}' has no CRS")
        out = frame
        if out.crs.to_epsg() != 4326:
            out = out.to_crs(STORAGE_CRS)
        if out.geometry.name != "geometry":
            if "geometry" in out.columns:
                out = out.drop(columns="geometry")
            out = out.rename_geometry("geometry")
        return out, True
    out = pd.DataFrame(frame)
    if "geometry" in out.columns:
        out = out.drop(columns="geometry")
    for col in out.columns:
        if not isinstance(col, str) or not col:
            raise LayerWriteError(f"layer '{name}': column names must be text, got {col!r}")
    return out, False


def _sql_type(layer: str, col: str, series: pd.Series) -> Any:
    spec = SCHEMA.get(layer)
    if spec is not None and col in spec.fields:
        kind = spec.fields[col].kind
        return {"int": sa.BigInteger, "float": pg.DOUBLE_PRECISION, "bool": sa.Boolean}.get(
            kind, sa.Text
        )
    dt = series.dtype
    if pd.api.types.is_bool_dtype(dt):
        return sa.Boolean
    if pd.api.types.is_integer_dtype(dt):
        return sa.BigInteger
    if pd.api.types.is_float_dtype(dt):
        return pg.DOUBLE_PRECISION
    if pd.api.types.is_datetime64_any_dtype(dt):
        return sa.DateTime(timezone=True)
    return sa.Text


def _py_values(series: pd.Series) -> list[Any]:
    """Values of a column as Python objects for COPY (None for any missing value)."""
    s = series
    if pd.api.types.is_bool_dtype(s.dtype):
        obj = s.astype(object)
    elif pd.api.types.is_integer_dtype(s.dtype):
        obj = s.astype(object)
    elif pd.api.types.is_float_dtype(s.dtype):
        obj = s.astype(object)
    elif pd.api.types.is_datetime64_any_dtype(s.dtype):
        obj = s.astype(object)
    else:
        obj = s.astype(object).map(
            lambda v: (
                json.dumps(v, ensure_ascii=False, default=str)
                if isinstance(v, (list, dict, tuple))
                else v
            )
        )
    mask = (
        pd.isna(s).to_numpy()
        if not isinstance(s.dtype, pd.CategoricalDtype)
        else s.isna().to_numpy()
    )
    vals = obj.tolist()
    for i in np.flatnonzero(mask):
        vals[i] = None
    return vals


def _column(values: list[Any], ctype: str) -> pd.Series:
    """A pandas column from fetched values, with a dtype like the GeoPackage gives."""
    has_null = any(v is None for v in values)
    if ctype in ("bigint", "integer", "smallint"):
        return pd.Series(values, dtype="Int64" if has_null else "int64")
    if ctype in ("double precision", "real", "numeric"):
        return pd.Series([np.nan if v is None else v for v in values], dtype="float64")
    if ctype == "boolean":
        return pd.Series(values, dtype="boolean" if has_null else "bool")
    if ctype.startswith("timestamp"):
        return pd.Series(pd.to_datetime(values, utc=True))
    return pd.Series(values, dtype="str" if values else "str")
