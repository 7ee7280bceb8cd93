"""Readers: planners' files (GeoPackage, Shapefile with GBK attributes, GeoJSON, CSV of
lon/lat in WGS84 / CGCS2000 / GCJ-02 / BD-09, OpenStreetMap PBF or XML) to validated
canonical layers, and :func:`import_into` a workspace in one atomic write.

Example
-------
>>> from gridgis.io import read_source, import_into              # doctest: +SKIP
>>> layers = read_source("楼栋.shp", layer="buildings", encoding="gbk",
...                      field_map={"households": "HH_NUM"})
>>> report = import_into(store, ["楼栋.shp", "pois.csv"], crs="gcj02")
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from gridgis import layers as L
from gridgis.io.fields import ReadError, facility_kind, infer_layer, parse_field_map
from gridgis.io.names import check_division_names, fill_division_names
from gridgis.io.osm import is_osm, read_osm
from gridgis.io.vector import read_csv, read_ogr, source_exists
from gridgis.standards import DEFAULT, Settings
from gridgis.store import Store

__all__ = [
    "ReadError",
    "ImportReport",
    "Source",
    "read_source",
    "import_into",
    "read_sources",
    "parse_field_map",
    "infer_layer",
]

CSV_SUFFIXES = (".csv", ".txt", ".tsv")


def read_source(
    path: str | os.PathLike,
    layer: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    field_map: dict[str, str] | None = None,
    settings: Settings = DEFAULT,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, L.Validated]:
    """Read one source file into validated canonical layers.

    Parameters
    ----------
    path
        A GeoPackage, Shapefile, GeoJSON (or other OGR vector file), CSV, or OpenStreetMap
        file (``.osm.pbf`` / ``.osm``; recognised by extension, yields several layers).
    layer
        Canonical layer name (buildings, roads, …). Without it the layer is inferred from
        the file or source-layer name (建筑.shp, roads.geojson, a gridgis workspace…), or a
        :class:`ReadError` asks for it.
    crs
        The CRS the coordinates are in, overriding the file's: ``wgs84``, ``cgcs2000``,
        ``gcj02``, ``bd09`` or ``EPSG:n`` (e.g. EPSG:4549 for a CGCS2000 GK zone). Needed
        for CSVs and files without a CRS.
    encoding
        Attribute encoding for shapefiles without a ``.cpg`` and for CSVs (e.g. ``gbk``);
        detected when absent.
    field_map
        ``{canonical: source}`` field names, e.g. ``{"households": "HH_NUM"}``; for CSVs
        also ``lon`` and ``lat``. Applied before the built-in Chinese alias table.
    settings
        Rules used by validation (codes) and household estimation.

    Returns
    -------
    dict of layer name -> Validated
        Each with ``data`` in EPSG:4326, ``rejects`` (source, layer, row, field, value,
        reason) and ``notes``. Notes about reading (encoding detected, aliases used,
        CRS conversions) are in the first layer's notes.

    Raises
    ------
    ReadError
        When the file cannot be read at all, or its layer cannot be told; a
        :class:`gridgis.layers.LayerError` when a layer lacks a required field or a CRS.
    """
    out = _read(path, layer, crs, encoding, field_map, settings, progress)
    for v in out.values():
        v.data = v.data.drop(columns=[_ROW, WHERE])
    return out


_ROW = L.SOURCE_ROW
#: Column naming each row's source (file, or file:layer) while reading.
WHERE = "_where"


def _read(
    path: str | os.PathLike,
    layer: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    field_map: dict[str, str] | None = None,
    settings: Settings = DEFAULT,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, L.Validated]:
    """:func:`read_source`, keeping each row's source row number and file (for merging)."""
    p = Path(path)
    source_exists(p)
    notes: list[str] = []
    if layer is not None and layer not in L.SCHEMA:
        raise ReadError(f"{p}: unknown layer '{layer}' (known: {', '.join(L.SCHEMA)})")
    if is_osm(p):
        if layer is not None or crs is not None or field_map:
            notes.append(
                f"{p}: OpenStreetMap files are WGS84 with fixed tags; the layer, crs and "
                f"field_map parameters are ignored"
            )
        raw = read_osm(p, settings, notes, progress)
        items = [(name, frame, str(p)) for name, frame in raw.items()]
        if not items:
            raise ReadError(f"{p}: no buildings, roads, facilities or green spaces found")
    elif p.suffix.lower() in CSV_SUFFIXES:
        items = read_csv(p, layer, crs, encoding, field_map, notes)
    else:
        items = read_ogr(p, layer, crs, encoding, field_map, notes)
    out: dict[str, L.Validated] = {}
    for name, frame, where in items:
        key = L.SCHEMA[name].key
        base = where.rsplit(":", 1)[1] if where != str(p) else p.name.split(".")[0]
        if name == "facilities" and "category" not in frame.columns:
            _category_from_name(frame, base, where, notes)
        frame = fill_division_names(frame, name, where, notes)
        if key not in frame.columns:  # keys from the file name: unique across files
            frame[key] = [f"{base}-{i}" for i in range(1, len(frame) + 1)]
            notes.append(f"{where}: no '{key}' field; generated keys {base}-1…{base}-{len(frame)}")
        if _ROW not in frame.columns:  # CSVs carry their line numbers; others 1, 2, 3 …
            frame[_ROW] = range(1, len(frame) + 1)
        try:
            v = L.validate(frame, name, source=where, settings=settings)
        except L.LayerError as exc:
            if layer is None and not is_osm(p):
                raise L.LayerError(
                    f"{exc} (layer '{name}' was inferred from the name; "
                    f"give the layer parameter if that is wrong)"
                ) from exc
            raise
        v = check_division_names(v, name, where)
        v.data[_ROW] = v.data[_ROW].astype(int)
        v.data[WHERE] = where
        if name in out:  # two source layers mapped to the same canonical layer
            v = _concat(out[name], v, name)
        out[name] = v
    first = next(iter(out.values()))
    first.notes[:0] = notes
    return out


def _category_from_name(frame: pd.DataFrame, name: str, where: str, notes: list[str]) -> None:
    """A facilities file without categories whose name names a facility kind (幼儿园.csv):
    every row gets that category, with a note."""
    kind = facility_kind(name)
    if kind is not None:
        frame["category"] = kind
        notes.append(
            f"{where}: no 'category' field; every row is {kind} "
            f"({L.FACILITY_CATEGORIES[kind]}) as the file name says"
        )


def _concat(a: L.Validated, b: L.Validated, layer: str) -> L.Validated:
    """Append ``b`` to ``a``; rows of ``b`` whose key ``a`` already has go to the rejects,
    with their source row and the source that had the key first."""
    key = L.SCHEMA[layer].key
    b_data = b.data
    clash = b_data[key].isin(a.data[key]).to_numpy()
    rejects = [a.rejects, b.rejects]
    if clash.any():
        first = dict(zip(a.data[key], a.data[WHERE], strict=True))
        dup = b_data.loc[clash]
        rejects.append(
            pd.DataFrame(
                {
                    "source": dup[WHERE].to_numpy(),
                    "layer": layer,
                    "row": dup[_ROW].to_numpy(),
                    "field": key,
                    "value": dup[key].astype(str).to_numpy(),
                    "reason": [f"duplicate key (first in {first[k]})" for k in dup[key]],
                }
            )
        )
        b_data = b_data.loc[~clash]
    data = pd.concat([a.data, b_data], ignore_index=True)
    if isinstance(a.data, gpd.GeoDataFrame):
        data = gpd.GeoDataFrame(data, geometry="geometry", crs=L.STORAGE_CRS)
    rej = (
        pd.concat([r for r in rejects if len(r)], ignore_index=True)
        if any(len(r) for r in rejects)
        else L.empty_rejects()
    )
    return L.Validated(data, rej[L.REJECT_COLUMNS], a.notes + b.notes)


@dataclass(frozen=True)
class Source:
    """A file to import with its own options (``None`` = the import's default), e.g. a
    shapefile with its .prj beside an Amap CSV that needs ``crs="gcj02"``."""

    path: str | os.PathLike
    layer: str | None = None
    crs: str | None = None
    encoding: str | None = None
    field_map: dict[str, str] | None = None

    def __str__(self) -> str:
        return os.fspath(self.path)


@dataclass
class ImportReport:
    """What :func:`import_into` wrote: per layer the valid rows, rejects and sources."""

    layers: dict[str, L.Validated] = field(default_factory=dict)
    sources: dict[str, list[str]] = field(default_factory=dict)
    options: list[dict[str, Any]] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        return [n for v in self.layers.values() for n in v.notes]

    @property
    def rejects(self) -> pd.DataFrame:
        frames = [v.rejects for v in self.layers.values() if len(v.rejects)]
        return (
            pd.concat(frames, ignore_index=True)[L.REJECT_COLUMNS] if frames else L.empty_rejects()
        )

    def counts(self) -> dict[str, tuple[int, int]]:
        """``{layer: (valid rows, rejected rows)}``."""
        return {
            k: (len(v.data), int(v.rejects["row"].nunique()) if len(v.rejects) else 0)
            for k, v in self.layers.items()
        }


def read_sources(
    sources: Sequence[str | os.PathLike | Source],
    layer: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    field_map: dict[str, str] | None = None,
    settings: Settings = DEFAULT,
    on_source: Callable[[str], Callable[[int, int], None] | None] | None = None,
    inspect: Callable[[dict[str, Any], dict[str, L.Validated]], None] | None = None,
    keep_rows: bool = False,
) -> ImportReport:
    """Read and validate every source (nothing is written).

    Layers found in several sources are concatenated (a key already read is rejected).

    Parameters
    ----------
    sources
        Files to read (see :func:`read_source`). The options below apply to each, unless
        a :class:`Source` gives its own.
    on_source
        ``on_source(path)`` is called before each file and may return a progress
        callback ``(done, total)`` for it.
    inspect
        ``inspect(options, layers)`` is called after each source is read, with the
        options used and its validated layers (still in reading form); it may raise
        to stop the import (e.g. :class:`gridgis.io.plausible.CrsCheck`).
    keep_rows
        Keep the columns :data:`gridgis.layers.SOURCE_ROW` and :data:`WHERE` (each row's
        source row and file) in the layers, for callers that reject rows later.

    Returns
    -------
    ImportReport
        Validated layers with their rejects and notes, the sources of each layer, and the
        options used per source (``options``).
    """
    if not sources:
        raise ReadError("no source files given")
    report = ImportReport()
    for src in sources:
        one = src if isinstance(src, Source) else Source(src)
        cb = on_source(str(one)) if on_source is not None else None
        opts = {
            "path": str(one),
            "layer": one.layer or layer,
            "crs": one.crs or crs,
            "encoding": one.encoding or encoding,
            "field_map": one.field_map if one.field_map is not None else field_map,
        }
        got = _read(
            one.path, opts["layer"], opts["crs"], opts["encoding"], opts["field_map"], settings, cb
        )
        if inspect is not None:
            inspect(opts, got)
        report.options.append(opts | {"layers": list(got)})
        if cb is not None:
            cb(1, 1)
        for name, v in got.items():
            report.sources.setdefault(name, []).append(str(src))
            report.layers[name] = (
                _concat(report.layers[name], v, name) if name in report.layers else v
            )
    if not keep_rows:
        for v in report.layers.values():
            v.data = v.data.drop(columns=[_ROW, WHERE])
    return report


def import_into(
    store: Store,
    sources: Sequence[str | os.PathLike | Source],
    layer: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    field_map: dict[str, str] | None = None,
    settings: Settings = DEFAULT,
    on_source: Callable[[str], Callable[[int, int], None] | None] | None = None,
    mode: str | None = None,
    crs_check: bool = True,
) -> ImportReport:
    """Read, validate and write sources into a workspace in one atomic write: the
    import workflow :func:`gridgis.workflows.imports.import_files` (see there for
    ``mode`` and ``crs_check``), returning its validated layers.

    Raises
    ------
    gridgis.errors.ConflictError
        A layer to import is not empty in the workspace and ``mode`` is None.
    """
    from gridgis.workflows.imports import import_files

    result = import_files(
        store,
        sources,
        settings,
        mode=mode,
        crs_check=crs_check,
        layer=layer,
        crs=crs,
        encoding=encoding,
        field_map=field_map,
        on_source=on_source,
    )
    return result.report
