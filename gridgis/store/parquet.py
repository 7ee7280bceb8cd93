"""A workspace a cluster can share: a directory of GeoParquet files partitioned by street.

Layout of ``city.parquet/`` (a directory; ``parquet://path`` or a path ending in
``.parquet`` opens it through :func:`gridgis.store.open_store`)::

    gridgis.json                          the manifest: metadata, layers, their versions
    layers/<layer>/<version>/part-<key>.parquet
    staging/<layer>/<run>/part-<key>.parquet   partitions written by workers, not yet live

Rows are split by the street (街道, 9-digit code: ``street_code``, else the first 9 digits
of ``community_code`` or ``grid_code``); rows with none go to ``part-_none``; layers with
none of these columns are one ``part-all``. Geometry is GeoParquet 1.1 in EPSG:4326 with
a bounding-box covering column, and the manifest keeps each partition's row count and
bounds, so :meth:`GeoParquetStore.read` opens only the partitions a ``bbox`` or a street
code can touch (any worker on a shared file system can read its own partition).

Atomic writes: every write puts complete new files in a new version directory, then
replaces the manifest with one ``os.replace``; a failed write removes its files and the
manifest, hence every reader, still sees the previous layers whole. Workers of a
partitioned run may write their partition with :meth:`GeoParquetStore.stage_partition`
(a re-run of a failed partition overwrites the same file: idempotent); the run then
makes all staged layers live at once with :meth:`GeoParquetStore.commit_staged`, or
nothing is changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS
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
    now_iso,
    select_rows,
)

_MANIFEST = "gridgis.json"
_ROW = "_gridgis_row"
"""Column holding each row's position in the layer as written (order is restored on
read and the column dropped)."""
_ORD = "_gridgis_ord"
"""Column of a staged partition holding each row's place in the committed layer."""
PARTITION_FIELDS = ("street_code", "community_code", "grid_code")
"""Fields whose first :data:`PARTITION_DIGITS` digits name a row's partition (the first
present wins)."""
PARTITION_DIGITS = 9
"""Street level (county 6 + township 3): one file per street (街道) and layer."""


def partition_keys(frame: pd.DataFrame) -> tuple[str | None, np.ndarray]:
    """The partition field of a layer and each row's partition key."""
    for col in PARTITION_FIELDS:
        if col in frame.columns:
            text = frame[col].astype("string").str.strip().str[:PARTITION_DIGITS]
            ok = text.str.fullmatch(rf"\d{{{PARTITION_DIGITS}}}").fillna(False).to_numpy(bool)
            keys = np.where(ok, text.fillna("").to_numpy(dtype=object), "_none")
            return col, keys.astype(object)
    return None, np.full(len(frame), "all", dtype=object)


def _plain(frame: Frame) -> Frame:
    """Lists and dicts (no Parquet type for a mix of them) as JSON text, like GeoPackage."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if col != getattr(frame, "_geometry_column_name", None) and s.dtype == object:
            if s.map(lambda v: isinstance(v, (list, dict, tuple))).any():
                out[col] = s.map(
                    lambda v: (
                        json.dumps(v, ensure_ascii=False, default=str)
                        if isinstance(v, (list, dict, tuple))
                        else v
                    )
                )
    return out


def _kind(col: pd.Series) -> str:
    """The filter kind (:func:`gridgis.store.base.filter_value`) of a stored column."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(col.dtype):
        return "int"
    if pd.api.types.is_float_dtype(col.dtype):
        return "float"
    return "text"


def _matches(col: pd.Series, value: Any) -> np.ndarray:
    """Rows whose field equals ``value`` with the one filter semantics of every store."""
    v = filter_value(value, _kind(col))
    if v is NO_MATCH:
        return np.zeros(len(col), bool)
    if v is None:
        return col.isna().to_numpy()
    if _kind(col) == "text":
        return (col.astype("string") == v).fillna(False).to_numpy(bool)
    return (col == v).fillna(False).to_numpy(bool)


class GeoParquetStore(Store):
    """A workspace in a directory of GeoParquet files (``.parquet``), partitioned by
    street; see the module docstring."""

    def __init__(self, path: str | os.PathLike, create: bool = True) -> None:
        self.path = Path(os.fspath(path).removeprefix("parquet://"))
        self.location = f"parquet://{self.path}"
        manifest = self.path / _MANIFEST
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path}: a GeoParquet workspace is a directory")
        if not manifest.exists():
            if not create:
                raise StoreError(f"{self.path}: no such workspace")
            if self.path.exists() and any(self.path.iterdir()):
                raise StoreError(f"{self.path}: not empty and not a GeoParquet workspace")

    # -- manifest -------------------------------------------------------------------------
    def _manifest(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / _MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"meta": {"schema_version": SCHEMA_VERSION}, "layers": {}}

    def _save(self, manifest: dict[str, Any]) -> None:
        if "created_at" not in manifest["meta"]:
            manifest["meta"]["created_at"] = now_iso()
        tmp = self.path / f".{_MANIFEST}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, default=str), encoding="utf-8")
        os.replace(tmp, self.path / _MANIFEST)

    @contextlib.contextmanager
    def _locked(self):
        """One writer at a time (processes on this machine or a shared POSIX file
        system): the manifest is read, changed and replaced under the lock."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _entry(self, name: str) -> dict[str, Any]:
        layers = self._manifest()["layers"]
        if name not in layers:
            raise NoLayerError(
                f"{self.path}: no layer '{name}' (layers: {', '.join(sorted(layers)) or 'none'})"
            )
        return layers[name]

    def change_token(self) -> tuple[int, int, int]:
        """Inode, modification time and size of the manifest: every write replaces it."""
        try:
            st = os.stat(self.path / _MANIFEST)
        except FileNotFoundError:
            if not self.path.is_dir():
                raise StoreError(f"{self.path}: the workspace directory is gone") from None
            return (0, 0, 0)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def check(self) -> None:
        if not self.path.is_dir():
            raise StoreError(f"{self.path}: the workspace directory is gone")
        try:
            self._manifest()
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.path}: cannot read the workspace: {exc}") from exc

    # -- reading --------------------------------------------------------------------------
    def layers(self) -> list[str]:
        return sorted(self._manifest()["layers"])

    def partitions(self, name: str) -> list[str]:
        """Partition keys of a layer (street codes, ``_none``, or ``all``)."""
        return sorted(self._entry(name)["parts"])

    def read_partition(self, name: str, key: str) -> Frame:
        """The rows of one partition (a street code) in stored order."""
        entry = self._entry(name)
        if key not in entry["parts"]:
            raise NoLayerError(f"{self.path}: layer '{name}' has no partition '{key}'")
        frame = self._finish(entry, [self._read_file(name, entry, key, None)], None)
        return self._conformed(name, frame.drop(columns=_ROW))

    def to_dask(self, name: str):
        """The layer as a lazy dask-geopandas GeoDataFrame (a dask DataFrame for a
        table), one dask partition per file (street), for analyses that run on a cluster
        sharing this directory. Rows carry ``_gridgis_row``, their stored position (the
        GeoParquet bounding-box column is left out). The
        files are those of the current version: a later write of the layer removes them."""
        entry = self._entry(name)
        folder = self.path / "layers" / name / entry["version"]
        files = [str(folder / entry["parts"][k]["file"]) for k in sorted(entry["parts"])]
        if entry["kind"] == "geo":
            import dask_geopandas

            ddf = dask_geopandas.read_parquet(files)
            return ddf.drop(columns="bbox") if "bbox" in ddf.columns else ddf
        import dask.dataframe as dd

        return dd.read_parquet(files)

    def shared_location(self) -> str:
        """``parquet://`` and the absolute directory (on a file system every worker mounts)."""
        return f"parquet://{self.path.resolve()}"

    def read_rows(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        rows: np.ndarray | None = None,
        where_in: tuple[str, Iterable[Any]] | None = None,
    ) -> Frame:
        """:meth:`Store.read_rows` reading only the street files that can hold the rows:
        those whose bounds meet ``bbox`` and whose street code starts one of the codes of
        ``where_in`` (on the layer's partition field); rows inside a file are filtered by
        GeoParquet's bounding-box column."""
        entry = self._entry(name)
        if bbox is not None and entry["kind"] != "geo":
            raise StoreError("bbox given for a layer without geometry")
        keys = self._prune(entry, bbox, None)
        field = entry.get("partition_field")
        if where_in is not None and where_in[0] == field:
            want = {str(v).strip()[:PARTITION_DIGITS] for v in where_in[1]}
            keys = [k for k in keys if k in want or k == "_none"]
        frames = [self._read_file(name, entry, k, bbox) for k in keys]
        if not frames:
            key = next(iter(entry["parts"]))
            frames = [self._read_file(name, entry, key, None).iloc[:0]]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        frame = frame.sort_values(_ROW, kind="stable").reset_index(drop=True)
        if entry["kind"] == "geo":
            frame = gpd.GeoDataFrame(frame, geometry=entry["geometry"], crs=STORAGE_CRS)
        row = frame.pop(_ROW).to_numpy(np.int64)
        frame.insert(0, "_row", row)
        frame = select_rows(frame, None, rows, where_in)
        return self._conformed(name, frame)

    def read(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
    ) -> Frame:
        frame = self._select(name, bbox, where)
        return self._conformed(name, frame.drop(columns=_ROW))

    def _select(self, name: str, bbox, where) -> pd.DataFrame:
        """Matching rows in stored order, with their row number (column ``_ROW``)."""
        entry = self._entry(name)
        fields = [c for c in entry["columns"] if c != entry.get("geometry")]
        for k in where or {}:
            if k not in fields:
                raise NoFieldError(
                    f"no field '{k}' in layer '{name}' (fields: {', '.join(sorted(fields))})"
                )
        if bbox is not None and entry["kind"] != "geo":
            raise StoreError("bbox given for a layer without geometry")
        keys = self._prune(entry, bbox, where)
        frames = [self._read_file(name, entry, k, bbox) for k in keys]
        if not frames:  # nothing can match: an empty frame of the layer's columns
            key = next(iter(entry["parts"]))
            frames = [self._read_file(name, entry, key, None).iloc[:0]]
        return self._finish(entry, frames, where, bbox)

    def _prune(self, entry: dict, bbox, where) -> list[str]:
        """Partitions that can hold rows meeting ``bbox`` and ``where``."""
        keys = list(entry["parts"])
        field = entry.get("partition_field")
        if where and field in where and where[field] is not None:
            want = str(where[field]).strip()[:PARTITION_DIGITS]
            keys = [k for k in keys if k == want] or [k for k in keys if k == "_none"]
        if bbox is not None:
            box = shapely.box(*bbox)
            keys = [
                k
                for k in keys
                if entry["parts"][k]["bounds"] is not None
                and shapely.intersects(box, shapely.box(*entry["parts"][k]["bounds"]))
            ]
        return keys

    def _read_file(self, name: str, entry: dict, key: str, bbox) -> Frame:
        path = self.path / "layers" / name / entry["version"] / entry["parts"][key]["file"]
        try:
            if entry["kind"] == "geo":
                return gpd.read_parquet(path, bbox=bbox) if bbox else gpd.read_parquet(path)
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types
            raise StoreError(f"{path}: cannot read layer '{name}': {exc}") from exc

    def _finish(self, entry: dict, frames: list, where, bbox=None) -> pd.DataFrame:
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        if bbox is not None and len(frame):
            frame = frame[frame.geometry.intersects(shapely.box(*bbox)).to_numpy()]
        for k, v in (where or {}).items():
            frame = frame[_matches(frame[k], v)]
        frame = frame.sort_values(_ROW, kind="stable").reset_index(drop=True)
        if entry["kind"] == "geo":
            frame = gpd.GeoDataFrame(frame, geometry=entry["geometry"], crs=STORAGE_CRS)
        return frame

    @staticmethod
    def _conformed(name: str, frame: pd.DataFrame) -> Frame:
        return conform(name, frame)

    def read_page_geojson(
        self,
        name: str,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        exclude: tuple[str, ...] = (),
    ) -> tuple[list[tuple[Any, str | None, str]], int]:
        """The page of :meth:`read_page` as GeoJSON text (see :class:`Store`)."""
        frame = self._select(name, bbox, where)
        page = frame.iloc[offset : offset + limit]
        entry = self._entry(name)
        gcol = entry.get("geometry")
        key = LAYER_KEYS.get(name)
        key = key if key in frame.columns else None
        props = page.drop(columns=[c for c in (gcol, _ROW, *exclude) if c in page.columns])
        geoms = page[gcol].to_numpy() if gcol else np.full(len(page), None, dtype=object)
        texts = [None if g is None else str(shapely.to_geojson(g)) for g in geoms]
        ids = page[key].tolist() if key else (page[_ROW] + 1).tolist()
        records = json.loads(props.to_json(orient="records", force_ascii=False))
        out = [
            (fid, gj, json.dumps(r, ensure_ascii=False, separators=(",", ":")))
            for fid, gj, r in zip(ids, texts, records, strict=True)
        ]
        return out, len(frame)

    def info(self, name: str | None = None) -> dict[str, LayerInfo] | LayerInfo:
        layers = self._manifest()["layers"]

        def one(n: str) -> LayerInfo:
            data = dict(layers[n]["info"])
            if data.get("bounds"):
                data["bounds"] = tuple(data["bounds"])
            return LayerInfo(**data)

        if name is None:
            return {n: one(n) for n in sorted(layers)}
        if name not in layers:
            raise NoLayerError(f"{self.path}: no layer '{name}'")
        return one(name)

    def meta(self) -> dict[str, Any]:
        return dict(self._manifest()["meta"])

    # -- writing --------------------------------------------------------------------------
    def write_many(self, frames: dict[str, Frame], params: dict[str, Any] | None = None) -> None:
        from gridgis.store.gpkg import check_layer_name

        for name in frames:
            check_layer_name(name)
        with self._locked():
            self._write_locked(frames, params)

    def update(
        self,
        names: Iterable[str],
        fn: Callable[[dict[str, Frame | None]], dict[str, Frame]],
        params: dict[str, Any] | None = None,
    ) -> dict[str, Frame]:
        from gridgis.store.gpkg import check_layer_name

        with self._locked():
            present = set(self.layers())
            frames = fn({n: (self.read(n) if n in present else None) for n in names})
            for name in frames:
                check_layer_name(name)
            if frames:
                self._write_locked(frames, params)
        return frames

    def _write_locked(self, frames: dict[str, Frame], params: dict[str, Any] | None) -> None:
        """Write layers (the lock held): new version files, then the manifest swapped."""
        manifest = self._manifest()
        new: dict[str, dict] = {}
        try:
            for name, frame in frames.items():
                new[name] = self._write_layer(name, frame, params)
        except Exception as exc:
            for name, entry in new.items():
                shutil.rmtree(self.path / "layers" / name / entry["version"], True)
            if isinstance(exc, StoreError):
                raise
            raise LayerWriteError(f"{self.path}: cannot write layers: {exc}") from exc
        old = {n: manifest["layers"][n]["version"] for n in new if n in manifest["layers"]}
        manifest["layers"].update(new)
        self._save(manifest)
        for name, version in old.items():
            shutil.rmtree(self.path / "layers" / name / version, True)

    def _write_layer(self, name: str, frame: Frame, params) -> dict[str, Any]:
        """Write the partitions of one layer into a new version directory; its entry."""
        is_geo = isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns
        if is_geo:
            if frame.crs is None:
                raise LayerWriteError(f"layer '{name}' has no CRS")
            frame = frame.to_crs(STORAGE_CRS)
        info = describe(name, frame, jsonable(params or {}))
        field, keys = partition_keys(frame)
        body = _plain(frame).assign(**{_ROW: np.arange(len(frame), dtype=np.int64)})
        version = f"v-{uuid.uuid4().hex[:12]}"
        folder = self.path / "layers" / name / version
        folder.mkdir(parents=True)
        parts = {}
        unique = sorted(set(keys.tolist())) or ["all"]
        for key in unique:
            part = body.loc[keys == key] if len(body) else body
            parts[key] = self._write_part(folder / f"part-{key}.parquet", part, is_geo)
        return {
            "version": version,
            "kind": "geo" if is_geo else "table",
            "geometry": frame.geometry.name if is_geo else None,
            "columns": [c for c in frame.columns],
            "partition_field": field,
            "parts": parts,
            "info": info.__dict__,
        }

    @staticmethod
    def _write_part(path: Path, part: Frame, is_geo: bool) -> dict[str, Any]:
        """One partition file, written whole under a temporary name then renamed."""
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        if is_geo:
            part.to_parquet(tmp, index=False, write_covering_bbox=True)
            b = part.total_bounds if len(part) else None
            bounds = [float(v) for v in b] if b is not None and np.isfinite(b).all() else None
        else:
            pd.DataFrame(part).to_parquet(tmp, index=False)
            bounds = None
        os.replace(tmp, path)
        return {"file": path.name, "rows": int(len(part)), "bounds": bounds}

    def delete(self, name: str) -> None:
        with self._locked():
            manifest = self._manifest()
            if name not in manifest["layers"]:
                raise NoLayerError(f"{self.path}: no layer '{name}'")
            entry = manifest["layers"].pop(name)
            self._save(manifest)
            shutil.rmtree(self.path / "layers" / name / entry["version"], True)

    def set_meta(self, **values: Any) -> None:
        with self._locked():
            manifest = self._manifest()
            manifest["meta"].update(jsonable(values))
            self._save(manifest)

    # -- partitions written by workers ---------------------------------------------------
    def stage_partition(
        self, name: str, run: str, key: str, frame: Frame, order: np.ndarray | None = None
    ) -> Path:
        """Write one partition of a layer for run ``run`` (not yet visible to readers).

        Writing the same ``(name, run, key)`` again replaces the file whole, so a retried
        partition never leaves a duplicate or a half-written file. Rows of ``frame`` keep
        their order within the partition; with ``order`` (one integer per row) the
        committed layer is ordered by it across partitions (ties: key, then row).
        """
        from gridgis.store.gpkg import check_layer_name

        check_layer_name(name)
        if not key or any(c in key for c in "/\\ ") or key.startswith("."):
            raise StoreError(f"'{key}' is not a usable partition key")
        folder = self.path / "staging" / name / run
        is_geo = isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns
        if is_geo:
            if frame.crs is None:
                raise StoreError(f"layer '{name}' has no CRS")
            frame = frame.to_crs(STORAGE_CRS)
        path = folder / f"part-{key}.parquet"
        body = _plain(frame).assign(**{_ROW: np.arange(len(frame))})
        if order is not None:
            body[_ORD] = np.asarray(order, np.int64)
        with self._stage_lock(fcntl.LOCK_SH):
            self._check_alive(run)
            folder.mkdir(parents=True, exist_ok=True)
            self._write_part(path, body, is_geo)
        return path

    @contextlib.contextmanager
    def _stage_lock(self, mode: int):
        """Shared while a partition stages, exclusive while a run ends (its staging
        removed): ``staging/.stage.lock``."""
        root = self.path / "staging"
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".stage.lock", "a") as fh:
            fcntl.flock(fh, mode)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _check_alive(self, run: str) -> None:
        """Raise :class:`StoreError` unless run ``run``'s client holds it (its lock file
        exists and is locked exclusively)."""
        try:
            fh = open(self.path / "staging" / f".run-{run}.lock")
        except FileNotFoundError:
            fh = None
        if fh is not None:
            with fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # held: alive
                fcntl.flock(fh, fcntl.LOCK_UN)
        raise StoreError(
            f"{self.path}: run {run} is over (its client finished, failed or died): "
            "partition not staged"
        )

    def commit_staged(self, runs: dict[str, str], params: dict[str, Any] | None = None) -> None:
        """Make the staged partitions of ``{layer: run}`` the live layers, all at once.

        Rows read back partition by partition (keys in sorted order), each in its own
        order (or in the ``order`` they were staged with). Raises :class:`StoreError`
        (nothing changed) when a run staged nothing.
        """
        self.publish({}, runs, params)

    def publish(
        self,
        frames: dict[str, Frame],
        staged: dict[str, str],
        params: dict[str, Any] | None = None,
    ) -> None:
        """Write ``frames`` and make the staged layers ``{layer: run}`` live with ONE
        manifest swap (readers see the old layers or all the new ones); the run's staging
        folders are then removed. Raises :class:`StoreError` (nothing changed) when a
        layer has nothing staged or a write fails."""
        from gridgis.store.gpkg import check_layer_name

        for name in frames:
            check_layer_name(name)
        with self._locked():
            manifest = self._manifest()
            written: dict[str, dict] = {}
            try:
                for name, frame in frames.items():
                    written[name] = self._write_layer(name, frame, params)
                entries = {n: self._staged_entry(n, r, params) for n, r in staged.items()}
            except Exception as exc:
                for name, entry in written.items():
                    shutil.rmtree(self.path / "layers" / name / entry["version"], True)
                if isinstance(exc, StoreError):
                    raise
                raise LayerWriteError(f"{self.path}: cannot write layers: {exc}") from exc
            old = {n: manifest["layers"][n]["version"] for n in written if n in manifest["layers"]}
            manifest["layers"].update(written)
            for name, (entry, folder_staged) in entries.items():
                folder = self.path / "layers" / name / entry["version"]
                folder.parent.mkdir(parents=True, exist_ok=True)
                os.rename(folder_staged, folder)
                if name in manifest["layers"]:
                    old[name] = manifest["layers"][name]["version"]
                manifest["layers"][name] = entry
            self._save(manifest)
            for name, version in old.items():
                shutil.rmtree(self.path / "layers" / name / version, True)
            for name, run in staged.items():
                shutil.rmtree(self.path / "staging" / name / run, True)

    def _staged_entry(self, name: str, run: str, params) -> tuple[dict[str, Any], Path]:
        import pyarrow.parquet as pq

        staged = self.path / "staging" / name / run
        files = sorted(staged.glob("part-*.parquet")) if staged.exists() else []
        if not files:
            raise StoreError(f"{self.path}: nothing staged for layer '{name}' in run '{run}'")
        schema = pq.read_schema(files[0])
        is_geo = b"geo" in (schema.metadata or {})
        frames = [gpd.read_parquet(f) if is_geo else pd.read_parquet(f) for f in files]
        if all(_ORD in f.columns for f in frames):  # rows numbered by their staged order
            keys = np.concatenate([np.full(len(f), i) for i, f in enumerate(frames)])
            ords = np.concatenate([f[_ORD].to_numpy(np.int64) for f in frames])
            seqs = np.concatenate([f[_ROW].to_numpy(np.int64) for f in frames])
            rank = np.empty(len(ords), np.int64)
            rank[np.lexsort((seqs, keys, ords))] = np.arange(len(ords))
            bounds = np.cumsum([0, *[len(f) for f in frames]])
            for i, f in enumerate(frames):
                f[_ROW] = rank[bounds[i] : bounds[i + 1]]
        else:  # number rows across partitions, in key order
            offset = 0
            for f in frames:
                f[_ROW] = np.arange(offset, offset + len(f))
                offset += len(f)
        parts = {}
        for path, frame in zip(files, frames, strict=True):
            if _ORD in frame.columns:
                del frame[_ORD]
            key = path.name.removeprefix("part-").removesuffix(".parquet")
            parts[key] = self._write_part(path, frame, is_geo)
        whole = pd.concat(frames, ignore_index=True)
        whole = whole.sort_values(_ROW, kind="stable").drop(columns=_ROW)
        if is_geo:
            whole = gpd.GeoDataFrame(whole, geometry=frames[0].geometry.name, crs=STORAGE_CRS)
        info = describe(name, whole, jsonable(params or {}))
        entry = {
            "version": f"v-{uuid.uuid4().hex[:12]}",
            "kind": "geo" if is_geo else "table",
            "geometry": whole.geometry.name if is_geo else None,
            "columns": list(whole.columns),
            "partition_field": None,  # keys are the run's, not necessarily street codes
            "parts": parts,
            "info": info.__dict__,
        }
        return entry, staged

    def staging(self) -> list[str]:
        """Staged ``layer/run`` folders present in the workspace."""
        root = self.path / "staging"
        if not root.is_dir():
            return []
        return sorted(f"{d.parent.name}/{d.name}" for d in root.glob("*/*") if d.is_dir())

    def drop_staging(self, run: str) -> None:
        """Remove every staged partition of run ``run`` (a failed or finished run)."""
        with self._stage_lock(fcntl.LOCK_EX):
            self._drop_staging(run)

    def _drop_staging(self, run: str) -> None:
        root = self.path / "staging"
        for d in root.glob(f"*/{run}") if root.is_dir() else []:
            shutil.rmtree(d, True)
        with contextlib.suppress(FileNotFoundError):
            (root / f".run-{run}.lock").unlink()

    @contextlib.contextmanager
    def hold_run(self, run: str, drop: bool = True):
        """Mark run ``run`` alive while the block runs (an exclusive lock on
        ``staging/.run-<run>.lock``, released by the system if this process dies). On
        the way out (``drop``) the run's staging is removed under the exclusive stage
        lock: partitions staging now finish first, later ones find the run over."""
        root = self.path / "staging"
        root.mkdir(parents=True, exist_ok=True)
        with open(root / f".run-{run}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if drop:
                    with self._stage_lock(fcntl.LOCK_EX):
                        self._drop_staging(run)
                fcntl.flock(fh, fcntl.LOCK_UN)

    def clean_stale_staging(self) -> list[str]:
        """Remove the staging of runs no live client holds; returns the runs cleaned."""
        runs = sorted({s.split("/")[1] for s in self.staging()})
        cleaned = []
        for run in runs:
            lock = self.path / "staging" / f".run-{run}.lock"
            with open(lock, "a") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live run
                try:
                    with self._stage_lock(fcntl.LOCK_EX):
                        self._drop_staging(run)
                    cleaned.append(run)
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        return cleaned
