"""The embedded backend: one GeoPackage file per workspace.

Atomic writes: every write goes to a copy of the file beside it, which replaces the
original with one ``os.replace`` only when all layers and metadata are written. A crash
or error mid-write leaves the previous file untouched (and the copy is removed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridgis.errors import StoreError
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
    merge_info,
    now_iso,
)

_META = "gridgis_meta"
_LAYERS = "gridgis_layers"


class GeoPackageStore(Store):
    """A workspace in one GeoPackage file (``.gpkg``)."""

    def __init__(self, path: str | os.PathLike, create: bool = True) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._local = threading.local()
        if self.path.suffix.lower() != ".gpkg":
            raise StoreError(f"{self.path}: a workspace file must end in .gpkg")
        if not self.path.exists():
            if not create:
                raise StoreError(f"{self.path}: no such workspace")
        elif not self._is_gpkg(self.path):
            raise StoreError(f"{self.path}: not a GeoPackage workspace")

    # -- reading ------------------------------------------------------------------------
    def _ident(self) -> tuple[int, int, int]:
        """(inode, mtime ns, size) of the workspace file; every write replaces the file,
        so this changes with every write, whichever process made it."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise StoreError(f"{self.path}: the workspace file is gone") from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only SQLite connection to the current file, kept per thread and reopened
        when the file is replaced (every write replaces it): opening a GeoPackage costs
        a schema parse that a server answering many small requests should pay once.

        Re-entrant: a read that calls another read (a page and its row count) keeps the
        connection it started with until it ends, so it reads one file from start to
        end even when a write replaces the file meanwhile (the replaced file stays
        readable through the open connection)."""
        local = self._local
        if getattr(local, "depth", 0):
            local.depth += 1
            try:
                yield local.con
            finally:
                local.depth -= 1
            return
        ident = self._ident()
        con = getattr(local, "con", None)
        if con is None or local.ident != ident:
            if con is not None:
                con.close()
            local.con = None
            try:
                con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot open the workspace: {exc}") from exc
            local.con, local.ident = con, ident
        local.depth = 1
        try:
            yield con
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot read the workspace: {exc}") from exc
        finally:
            local.depth = 0

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    def change_token(self) -> tuple[int, int, int]:
        return self._ident()

    def check(self) -> None:
        if not self.path.exists():
            raise StoreError(f"{self.path}: the workspace file is gone")
        with self._reader() as con:
            try:
                con.execute(f"SELECT count(*) FROM {_LAYERS}").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot read the workspace: {exc}") from exc

    @staticmethod
    def _is_gpkg(path: Path) -> bool:
        with open(path, "rb") as fh:
            return fh.read(16).startswith(b"SQLite format 3")

    def layers(self) -> list[str]:
        if not self.path.exists():
            return []
        with self._reader() as con:
            try:
                rows = con.execute(f"SELECT name FROM {_LAYERS} ORDER BY name").fetchall()
            except sqlite3.OperationalError:
                return []
        return [r[0] for r in rows]

    def read(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
    ) -> Frame:
        return self._read(name, bbox, where)

    def read_page(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> tuple[Frame, int]:
        """One page of a layer (rows ``offset`` … ``offset + limit - 1`` in stored order)
        and the number of rows matching ``bbox`` and ``where``; reads only that page."""
        if bbox is None and not where:
            frame = self._read(name, skip=offset, count=limit)
            return frame, self.info(name).rows
        if bbox is None:  # attribute filter only: the matching ids straight from SQLite
            self._need(name)
            with self._reader() as con:
                cond, args = self._conditions(con, name, where)
                pk = [r[1] for r in con.execute(f'PRAGMA table_info("{_q(name)}")') if r[5]]
                rows = con.execute(
                    f'SELECT "{_q(pk[0]) if pk else "rowid"}" FROM "{_q(name)}" '
                    f"WHERE {' AND '.join(cond)} ORDER BY 1",
                    args,
                ).fetchall()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
        else:
            # GDAL returns bbox matches in R-tree order: page over the sorted feature ids
            ids = np.sort(self._read(name, bbox, where, fids_only=True).index.to_numpy())
        page = ids[offset : offset + limit]
        if not len(page):
            return self._read(name, count=0), len(ids)
        return self._read(name, fids=page), len(ids)

    def read_page_geojson(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        exclude: tuple[str, ...] = (),
    ) -> tuple[list[tuple[Any, str | None, str]], int]:
        """A page as GeoJSON texts read with SQLite directly (the R-tree for ``bbox``,
        then an exact intersects test): the serving path, without GDAL or pandas."""
        with self._reader() as con:
            self._need(name)
            conds, args = self._conditions(con, name, where) if where else ([], [])
            info = list(con.execute(f'PRAGMA table_info("{_q(name)}")'))
            geo = con.execute(
                "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (name,)
            ).fetchone()
            gcol = geo[0] if geo else None
            pk = next((r[1] for r in info if r[5]), "rowid")
            fields = [r[1] for r in info if r[1] not in (pk, gcol) and r[1] not in exclude]
            booleans = {r[1] for r in info if str(r[2]).upper() == "BOOLEAN"}
            key = LAYER_KEYS.get(name)
            key = key if key in {r[1] for r in info} else None
            if bbox is not None and gcol is None:  # no geometry meets any box
                conds.append("0")
                bbox = None
            if bbox is not None:
                minx, miny, maxx, maxy = (float(v) for v in bbox)
                conds.append(
                    f'"{_q(pk)}" IN (SELECT id FROM "rtree_{_q(name)}_{_q(gcol)}" '
                    f"WHERE minx <= {maxx!r} AND maxx >= {minx!r} AND "
                    f"miny <= {maxy!r} AND maxy >= {miny!r})"
                )
            sql_where = (" WHERE " + " AND ".join(conds)) if conds else ""
            cols = [f'"{_q(c)}"' for c in fields]
            cols.append(f'"{_q(key)}"' if key else f'"{_q(pk)}"')  # the feature id
            geom_sel = f'"{_q(gcol)}"' if gcol else "NULL"
            base = f'SELECT {geom_sel}, {", ".join(cols)} FROM "{_q(name)}"'
            if bbox is None:  # the database pages and counts
                matched = (
                    self.info(name).rows
                    if not conds
                    else con.execute(
                        f'SELECT count(*) FROM "{_q(name)}"{sql_where}', args
                    ).fetchone()[0]
                )
                rows = con.execute(
                    f'{base}{sql_where} ORDER BY "{_q(pk)}" LIMIT {int(limit)} OFFSET {int(offset)}',
                    args,
                ).fetchall()
                geoms = _gpkg_geometries([r[0] for r in rows])
            else:  # R-tree candidates, then the exact test on their geometries
                rows = con.execute(f'{base}{sql_where} ORDER BY "{_q(pk)}"', args).fetchall()
                geoms = _gpkg_geometries([r[0] for r in rows])
                hit = shapely.intersects(geoms, shapely.box(minx, miny, maxx, maxy))
                keep = np.flatnonzero(hit)
                matched = len(keep)
                keep = keep[offset : offset + limit]
                rows = [rows[i] for i in keep]
                geoms = geoms[keep]
        texts = shapely.to_geojson(geoms) if len(geoms) else []
        out = []
        for row, gj in zip(rows, texts, strict=True):
            props = dict(zip(fields, row[1 : 1 + len(fields)], strict=True))
            for b in booleans & props.keys():
                if props[b] is not None:
                    props[b] = bool(props[b])
            fid = row[-1]
            out.append(
                (
                    fid,
                    None if gj is None else str(gj),
                    json.dumps(props, ensure_ascii=False, separators=(",", ":")),
                )
            )
        return out, int(matched)

    def _need(self, name: str) -> None:
        """Raise :class:`NoLayerError` unless the workspace has layer ``name``."""
        if name not in self.layers():
            raise NoLayerError(
                f"{self.path}: no layer '{name}' (layers: {', '.join(self.layers()) or 'none'})"
            )

    def _conditions(
        self, con: sqlite3.Connection, name: str, where: dict[str, Any]
    ) -> tuple[list[str], list[Any]]:
        """SQL conditions (``?`` parameters) for the equality filters ``where``, with the
        semantics of :func:`gridgis.store.base.filter_value`; raises
        :class:`NoFieldError` naming a field the layer lacks."""
        declared = {r[1]: str(r[2]) for r in con.execute(f'PRAGMA table_info("{_q(name)}")')}
        geo = con.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (name,)
        ).fetchone()
        hidden = {"fid", "geometry", "geom"} | ({geo[0]} if geo else set())
        fields = {k: v for k, v in declared.items() if k not in hidden}
        conds: list[str] = []
        args: list[Any] = []
        for k, v in where.items():
            if k not in fields:
                raise NoFieldError(
                    f"no field '{k}' in layer '{name}' (fields: {', '.join(sorted(fields))})"
                )
            value = filter_value(v, _kind(fields[k]))
            if value is NO_MATCH:
                conds.append("0")
            elif value is None:
                conds.append(f'"{_q(k)}" IS NULL')
            else:
                conds.append(f'"{_q(k)}" = ?')
                args.append(int(value) if isinstance(value, bool) else value)
        return conds, args

    def _read(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
        skip: int = 0,
        count: int | None = None,
        fids_only: bool = False,
        fids: Any = None,
    ) -> Frame:
        self._need(name)
        conds: list[str] = []
        args: list[Any] = []
        with self._reader() as con:
            if where:
                conds, args = self._conditions(con, name, where)
            if (
                bbox is not None
                and not con.execute(
                    "SELECT 1 FROM gpkg_geometry_columns WHERE table_name = ?", (name,)
                ).fetchone()
            ):
                conds.append("0")  # a table without geometry: no row meets any box
                bbox = None
        values = iter(args)  # GDAL takes the filter as text: literals for the ``?``
        sql = (
            " AND ".join(
                c[:-1] + _sql_literal(next(values)) if c.endswith("= ?") else c for c in conds
            )
            or None
        )
        extra: dict[str, Any] = {}
        if skip:
            extra["skip_features"] = int(skip)
        if count is not None:
            extra["max_features"] = int(count)
        if fids_only:
            extra["columns"] = []
        if fids is not None:
            extra["fids"] = fids
        if count == 0:  # pyogrio reads everything for max_features=0
            extra["max_features"] = 1
        try:
            frame = pyogrio.read_dataframe(
                self.path, layer=name, bbox=bbox, where=sql, fid_as_index=fids_only, **extra
            )
            if count == 0:
                frame = frame.iloc[:0]
        except pyogrio.errors.DataSourceError as exc:
            raise StoreError(f"{self.path}: cannot read layer '{name}': {exc}") from exc
        frame = _nullable(frame, pyogrio.read_info(self.path, layer=name))
        if "geometry" in frame.columns and isinstance(frame, gpd.GeoDataFrame):
            # a table (no CRS recorded) rather than a layer that is empty or has no shapes
            if frame.geometry.isna().all() and self.info(name).crs is None:
                frame = pd.DataFrame(frame.drop(columns="geometry"))
        return conform(name, frame)

    def info(self, name: str | None = None) -> dict[str, LayerInfo] | LayerInfo:
        infos: dict[str, LayerInfo] = {}
        if self.path.exists():
            with self._reader() as con:
                try:
                    rows = con.execute(f"SELECT name, info FROM {_LAYERS}").fetchall()
                except sqlite3.OperationalError:
                    rows = []
            for lname, text in rows:
                data = json.loads(text)
                if data.get("bounds"):
                    data["bounds"] = tuple(data["bounds"])
                infos[lname] = LayerInfo(**data)
        if name is None:
            return infos
        if name not in infos:
            raise NoLayerError(f"{self.path}: no layer '{name}'")
        return infos[name]

    def meta(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        with self._reader() as con:
            try:
                rows = con.execute(f"SELECT key, value FROM {_META}").fetchall()
            except sqlite3.OperationalError:
                return {}
        return {k: json.loads(v) for k, v in rows}

    # -- writing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self):
        """Yield a scratch copy of the workspace; replace the original only on success.

        Writers are serialised by a lock on the workspace's folder, so two processes
        writing at once (the API and a CLI import) both land instead of the later copy
        overwriting the earlier one. Holding the lock, scratch copies left by a killed
        writer are stale and removed.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _folder_lock(self.path.parent) as folder_fd:
            for stale in self.path.parent.glob(f".{self.path.stem}.*.tmp.gpkg*"):
                stale.unlink(missing_ok=True)
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{self.path.stem}.", suffix=".tmp.gpkg", dir=self.path.parent
            )
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                if self.path.exists():
                    shutil.copy2(self.path, tmp)
                else:
                    tmp.unlink()
                yield tmp
                self._init_meta(tmp)
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
                if folder_fd is not None:
                    os.fsync(folder_fd)  # make the rename itself durable
            finally:
                for leftover in (
                    tmp,
                    Path(f"{tmp}-journal"),
                    Path(f"{tmp}-wal"),
                    Path(f"{tmp}-shm"),
                ):
                    leftover.unlink(missing_ok=True)

    @staticmethod
    def _init_meta(path: Path) -> None:
        with contextlib.closing(sqlite3.connect(path)) as con, con:
            con.execute(f"CREATE TABLE IF NOT EXISTS {_META} (key TEXT PRIMARY KEY, value TEXT)")
            con.execute(f"CREATE TABLE IF NOT EXISTS {_LAYERS} (name TEXT PRIMARY KEY, info TEXT)")
            con.execute(
                f"INSERT OR IGNORE INTO {_META} VALUES ('schema_version', ?)",
                (json.dumps(SCHEMA_VERSION),),
            )
            con.execute(
                f"INSERT OR IGNORE INTO {_META} VALUES ('created_at', ?)", (json.dumps(now_iso()),)
            )

    def write_many(self, frames: dict[str, Frame], params: dict[str, Any] | None = None) -> None:
        for name in frames:
            check_layer_name(name)
        with self._transaction() as tmp:
            self._write_into(tmp, frames, params)

    def write_stream(
        self, batches: Iterable[dict[str, Frame]], params: dict[str, Any] | None = None
    ) -> dict[str, int]:
        """Write layers batch by batch into one scratch copy (the first batch of a layer
        replaces it, later ones append), so only one batch is held in memory; the
        workspace is replaced once, when every batch is written."""
        infos: dict[str, LayerInfo] = {}
        with self._transaction() as tmp:
            for batch in batches:
                for name, frame in batch.items():
                    check_layer_name(name)
                    try:
                        written = _write_layer(tmp, name, frame, append=name in infos)
                    except StoreError:
                        raise
                    except Exception as exc:  # GDAL/pyogrio
                        raise LayerWriteError(
                            f"{self.path}: cannot write layer '{name}': {exc}"
                        ) from exc
                    info = describe(name, written, jsonable(params or {}))
                    infos[name] = merge_info(infos[name], info) if name in infos else info
            self._init_meta(tmp)
            with contextlib.closing(sqlite3.connect(tmp)) as con, con:
                for info in infos.values():
                    con.execute(
                        f"INSERT OR REPLACE INTO {_LAYERS} VALUES (?, ?)",
                        (info.name, info.to_json()),
                    )
        return {name: info.rows for name, info in infos.items()}

    def restyle(self, styler: Callable[[Path], object]) -> None:
        """Run ``styler(path)`` on a scratch copy of the workspace under the write lock,
        then replace the workspace with it in one step (e.g. QGIS layer styles written into
        the file: :func:`gridgis.maps.write_layer_styles`). Layers and their metadata are
        untouched unless *styler* changes them."""
        with self._transaction() as tmp:
            styler(tmp)

    def update(
        self,
        names: Iterable[str],
        fn: Callable[[dict[str, Frame | None]], dict[str, Frame]],
        params: dict[str, Any] | None = None,
    ) -> dict[str, Frame]:
        with self._transaction() as tmp:
            # the folder lock is held: no other writer can replace the file meanwhile
            present = set(self.layers())
            current = {n: (self._read(n) if n in present else None) for n in names}
            frames = fn(current)
            for name in frames:
                check_layer_name(name)
            if frames:
                self._write_into(tmp, frames, params)
        return frames

    def _write_into(
        self, tmp: Path, frames: dict[str, Frame], params: dict[str, Any] | None
    ) -> None:
        infos = []
        for name, frame in frames.items():
            try:
                written = _write_layer(tmp, name, frame)
            except StoreError:
                raise
            except Exception as exc:  # GDAL/pyogrio: unsupported field types etc.
                raise LayerWriteError(f"{self.path}: cannot write layer '{name}': {exc}") from exc
            infos.append(describe(name, written, jsonable(params or {})))
        self._init_meta(tmp)
        with contextlib.closing(sqlite3.connect(tmp)) as con, con:
            for info in infos:
                con.execute(
                    f"INSERT OR REPLACE INTO {_LAYERS} VALUES (?, ?)",
                    (info.name, info.to_json()),
                )

    def delete(self, name: str) -> None:
        self._need(name)
        with self._transaction() as tmp:
            _drop_layer(tmp, name)
            with contextlib.closing(sqlite3.connect(tmp)) as con, con:
                con.execute(f"DELETE FROM {_LAYERS} WHERE name = ?", (name,))

    def set_meta(self, **values: Any) -> None:
        with self._transaction() as tmp:
            self._init_meta(tmp)
            with contextlib.closing(sqlite3.connect(tmp)) as con, con:
                for k, v in values.items():
                    con.execute(
                        f"INSERT OR REPLACE INTO {_META} VALUES (?, ?)",
                        (k, json.dumps(jsonable(v), ensure_ascii=False, default=str)),
                    )


def _nullable(frame: Frame, info: dict[str, Any]) -> Frame:
    """GDAL hands integer and boolean fields that hold nulls back as float64: restore
    them as pandas' nullable Int64 / boolean, so a derived layer (grids, coverage
    results) reads back as it was written, not only the canonical ones."""
    for col, dtype in zip(info["fields"], info["dtypes"], strict=True):
        if col in frame.columns and frame[col].dtype.kind == "f":
            if str(dtype).startswith("int"):
                frame[col] = frame[col].astype("Int64")
            elif str(dtype) == "bool":
                frame[col] = frame[col].astype("boolean")
    return frame


_RESERVED_PREFIXES = ("gridgis_", "gpkg_", "rtree_", "sqlite_")


def check_layer_name(name: str) -> str:
    """Return ``name`` if it can name a layer, else raise :class:`StoreError`.

    Refused: empty names, names with spaces, quotes, slashes or semicolons, and the
    prefixes of the GeoPackage's own tables (case-insensitive, as SQLite's names are).
    """
    if (
        not isinstance(name, str)
        or not name
        or any(c.isspace() for c in name)
        or any(c in name for c in "\"'`;/\\")
    ):
        raise LayerWriteError(
            f"{name!r} is not a usable layer name (no spaces, quotes, slashes or semicolons)"
        )
    if name.lower().startswith(_RESERVED_PREFIXES):
        raise LayerWriteError(
            f"'{name}' is a reserved layer name (prefixes "
            f"{', '.join(_RESERVED_PREFIXES)} belong to the GeoPackage)"
        )
    return name


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """Hold an exclusive lock on ``folder`` (POSIX ``flock`` on the directory itself, so
    no lock file is left behind); yields the folder's descriptor, or None where there is
    no ``fcntl`` (Windows: writes stay atomic but are not serialised)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield None
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _gpkg_geometries(blobs: list[bytes | None]) -> np.ndarray:
    """Shapely geometries from GeoPackage geometry blobs (header + WKB), vectorised."""
    wkb = []
    for b in blobs:
        if b is None:
            wkb.append(None)
            continue
        flags = b[3]
        if flags & 0x10:  # empty geometry
            wkb.append(None)
            continue
        env = (flags >> 1) & 0x07
        wkb.append(bytes(b[8 + (0, 32, 48, 48, 64)[env] if env < 5 else 8 :]))
    return shapely.from_wkb(np.array(wkb, dtype=object)) if wkb else np.array([], object)


def _kind(declared: str) -> str:
    """The filter kind (:func:`gridgis.store.base.filter_value`) of a SQLite column type."""
    t = declared.upper()
    if t == "BOOLEAN":
        return "bool"
    if "INT" in t:
        return "int"
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "float"
    return "text"


def _q(name: str) -> str:
    """An identifier for use inside double quotes."""
    return name.replace('"', '""')


def _sql_literal(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def _write_layer(path: Path, name: str, frame: Frame, append: bool = False) -> Frame:
    """Write one layer into a GeoPackage, replacing a layer of that name (``append``:
    adding rows to it); return what was written (in EPSG:4326)."""
    how = {"append": True} if append else {"layer_options": {"OVERWRITE": "YES"}}
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns:
        out = frame
        if out.crs is None:
            raise LayerWriteError(f"layer '{name}' has no CRS")
        if out.crs.to_epsg() != 4326:  # the contract: every layer is stored in EPSG:4326
            out = out.to_crs("EPSG:4326")
        if out.geometry.name != "geometry":
            out = out.rename_geometry("geometry")
        types = set(out.geom_type.dropna().unique())
        # one declared type when the layer has one; GEOMETRY (conformant for any mix, and
        # single parts read back single) when it mixes, e.g. Polygon with MultiPolygon
        gtype = types.pop() if len(types) == 1 else "Unknown"
        out = _plain_columns(out)
        pyogrio.write_dataframe(
            out,
            path,
            layer=name,
            driver="GPKG",
            geometry_type=gtype,
            promote_to_multi=False,
            spatial_index=True,
            **how,
        )
    else:
        out = _plain_columns(pd.DataFrame(frame))
        pyogrio.write_dataframe(out, path, layer=name, driver="GPKG", **how)
    return out


def _plain_columns(frame: Frame) -> Frame:
    """GDAL has no list/dict fields: store them as JSON text."""
    frame = frame.copy()
    for col in frame.columns:
        if col == "geometry":
            continue
        s = frame[col]
        if s.dtype == object and s.map(lambda v: isinstance(v, (list, dict, tuple))).any():
            frame[col] = s.map(
                lambda v: (
                    json.dumps(v, ensure_ascii=False, default=str)
                    if isinstance(v, (list, dict, tuple))
                    else v
                )
            )
    return frame


def _drop_layer(path: Path, name: str) -> None:
    """Remove a table and its GeoPackage registrations (contents, geometry column, R-tree)."""
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for (geom_col,) in con.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (name,)
        ).fetchall():
            con.execute(f'DROP TABLE IF EXISTS "rtree_{name}_{geom_col}"')
        con.execute(f'DROP TABLE IF EXISTS "{name}"')
        for meta in (
            "gpkg_contents",
            "gpkg_geometry_columns",
            "gpkg_extensions",
            "gpkg_ogr_contents",
        ):
            if meta in tables:
                con.execute(f"DELETE FROM {meta} WHERE table_name = ?", (name,))
