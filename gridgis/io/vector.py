"""Readers for GeoPackage, Shapefile, GeoJSON (any OGR vector format) and CSV lon/lat.

Each reader returns raw frames (one per canonical layer found) in the storage CRS with
fields renamed to canonical names; :func:`gridgis.layers.validate` does the checking.
"""

from __future__ import annotations

import codecs
import csv
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely

from gridgis import crs as C
from gridgis import layers as L
from gridgis.io.fields import ReadError, apply_field_map, infer_layer

#: Tables of a gridgis workspace that are not layers to import.
WORKSPACE_TABLES = {"gridgis_meta", "gridgis_layers", "rejects"}

LON_NAMES = (
    "lon",
    "lng",
    "long",
    "longitude",
    "经度",
    "x_lon",
    "gps_lon",
    "wgs84_lon",
    "gcj02_lon",
    "bd09_lon",
    "lon_wgs84",
    "lng_wgs84",
    "x",
)
LAT_NAMES = (
    "lat",
    "latitude",
    "纬度",
    "y_lat",
    "gps_lat",
    "wgs84_lat",
    "gcj02_lat",
    "bd09_lat",
    "lat_wgs84",
    "y",
)
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape")

CRS_HELP = "wgs84, cgcs2000, gcj02 (Amap, Tencent), bd09 (Baidu) or EPSG:<code>"


# --------------------------------------------------------------------------------------
# CRS
# --------------------------------------------------------------------------------------


def to_storage(
    frame: gpd.GeoDataFrame, declared: str | None, where: str, notes: list[str]
) -> gpd.GeoDataFrame:
    """Bring a frame to EPSG:4326, honouring a declared CRS (the ``crs`` parameter) over the file's.

    GCJ-02 and BD-09 coordinates are converted with :mod:`gridgis.crs`; projected layers
    (e.g. CGCS2000 Gauss–Krüger zones) are reprojected with pyproj, x = easting. A layer
    whose coordinates fall outside its CRS's area of use but inside it with the two axes
    exchanged (northing, easting written as x, y) is swapped back, with a note.

    Raises
    ------
    ReadError
        No CRS at all, an unknown ``crs``, or an offset CRS declared for projected data.
    """
    kind = None
    if declared:
        try:
            kind = C.parse_crs(declared)
        except ValueError as exc:
            raise ReadError(f"{where}: {exc}") from exc
    if frame.crs is None and kind is None:
        raise ReadError(
            f"{where}: no CRS (no .prj or CRS in the file); declare it with the crs parameter ({CRS_HELP})"
        )
    if kind in ("gcj02", "bd09"):
        if frame.crs is not None and not frame.crs.is_geographic:
            raise ReadError(
                f"{where}: crs {declared} declares lon/lat offsets but the "
                f"file is projected ({frame.crs.to_string()})"
            )
        frame = frame.set_crs("EPSG:4326", allow_override=True)
        frame = _fix_axis_order(frame, where, notes)
        out = C.offset_to_wgs84(frame, kind)
        notes.append(f"{where}: converted from {kind.upper()} to WGS84")
        return out
    if kind is not None:
        if frame.crs is not None and not frame.crs.equals(pyproj.CRS(kind)):
            notes.append(
                f"{where}: file declares {_crs_name(frame.crs)}; the crs parameter {declared} used instead"
            )
        frame = frame.set_crs(kind, allow_override=True)
    frame = _fix_axis_order(frame, where, notes)
    epsg = frame.crs.to_epsg()
    if epsg == 4490:
        return frame.set_crs(L.STORAGE_CRS, allow_override=True)
    if epsg == 4326:
        return frame
    try:
        return frame.to_crs(L.STORAGE_CRS)
    except pyproj.exceptions.ProjError as exc:
        raise ReadError(f"{where}: cannot reproject from {_crs_name(frame.crs)}: {exc}") from exc


def _crs_name(crs: pyproj.CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _fix_axis_order(frame: gpd.GeoDataFrame, where: str, notes: list[str]) -> gpd.GeoDataFrame:
    area = frame.crs.area_of_use if frame.crs is not None else None
    if area is None and frame.crs is not None:  # an unidentified WKT: its nearest EPSG's
        epsg = frame.crs.to_epsg(min_confidence=70)
        area = pyproj.CRS.from_epsg(epsg).area_of_use if epsg else None
    geoms = frame.geometry.values
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if area is None or not ok.any():
        return frame
    pts = shapely.get_coordinates(shapely.point_on_surface(geoms[ok]))
    x, y = np.median(pts[:, 0]), np.median(pts[:, 1])

    def inside(a: float, b: float) -> bool:
        if frame.crs.is_geographic:
            lon, lat = a, b
        else:
            tr = pyproj.Transformer.from_crs(frame.crs, "EPSG:4326", always_xy=True)
            lon, lat = tr.transform(a, b)
        m = 1.0  # degrees of slack around the area of use
        return bool(
            np.isfinite(lon)
            and np.isfinite(lat)
            and area.west - m <= lon <= area.east + m
            and area.south - m <= lat <= area.north + m
        )

    if inside(x, y) or not inside(y, x):
        return frame
    notes.append(
        f"{where}: coordinates lie outside {_crs_name(frame.crs)} but inside it with "
        f"x and y exchanged (northing, easting order); exchanged them"
    )
    swapped = shapely.transform(geoms, lambda c: c[:, ::-1])
    return frame.set_geometry(gpd.GeoSeries(swapped, index=frame.index, crs=frame.crs))


# --------------------------------------------------------------------------------------
# OGR formats
# --------------------------------------------------------------------------------------


def _dbf_encoding(path: Path, encoding: str | None, notes: list[str]) -> str | None:
    """The encoding to read a shapefile's DBF with: ``encoding`` when given (over a .cpg
    that says otherwise, with a note: .cpg files are often wrong, e.g. UTF-8 written over
    GBK attributes), else the .cpg, else detected (UTF-8 when the bytes decode as UTF-8,
    else GBK)."""
    cpg = next(
        (p for p in (path.with_suffix(".cpg"), path.with_suffix(".CPG")) if p.exists()), None
    )
    if encoding:
        if cpg is not None:
            declared = cpg.read_text(errors="replace").strip()
            if declared.lower().replace("-", "") != encoding.lower().replace("-", ""):
                notes.append(
                    f"{path}: .cpg says {declared}; read as {encoding} as the encoding "
                    f"parameter asks"
                )
        return encoding
    if cpg is not None:
        return None  # GDAL reads the .cpg itself
    dbf = next(
        (p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None
    )
    if dbf is None:
        return None
    with open(dbf, "rb") as fh:
        raw = fh.read(8_000_000)[32:]  # field names and the first records are enough
    if raw.isascii():
        return None
    for candidate in ("utf-8", "gbk", "gb18030"):
        try:  # incremental: a character cut at the 8 MB boundary is not an error
            codecs.getincrementaldecoder(candidate)().decode(raw, final=False)
        except UnicodeDecodeError:
            continue
        if candidate != "utf-8":
            notes.append(
                f"{path}: no .cpg; attributes decoded as {candidate.upper()} "
                f"(detected); give the encoding parameter to choose another"
            )
        return candidate
    raise ReadError(
        f"{path}: no .cpg and the attributes are neither UTF-8 nor GBK; give the encoding parameter"
    )


def read_ogr(
    path: Path,
    layer: str | None,
    declared_crs: str | None,
    encoding: str | None,
    field_map: dict[str, str] | None,
    notes: list[str],
) -> list[tuple[str, gpd.GeoDataFrame | pd.DataFrame, str]]:
    """Read a GeoPackage / Shapefile / GeoJSON (any OGR vector source).

    Returns
    -------
    list of (canonical layer, frame, where)
        ``where`` names the file (and source layer) for messages.
    """
    try:
        listed = pyogrio.list_layers(path)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise ReadError(f"{path}: cannot read: {exc}") from exc
    names = [
        str(n)
        for n, _ in listed
        if str(n) not in WORKSPACE_TABLES and not str(n).startswith(("gpkg_", "rtree_", "sqlite_"))
    ]
    if not names:
        raise ReadError(f"{path}: no layers to import")
    stem = path.name.split(".")[0]
    chosen: list[tuple[str, str]] = []  # (source layer, canonical layer)
    if layer is not None:
        exact = [n for n in names if n == layer or infer_layer(n) == layer]
        if len(exact) == 1:
            chosen = [(exact[0], layer)]
        elif len(names) == 1:
            chosen = [(names[0], layer)]
        else:
            raise ReadError(
                f"{path}: holds layers {', '.join(names)}; none is '{layer}'. "
                f"Extract one or rename it"
            )
    else:
        skipped = []
        for n in names:
            canonical = infer_layer(n) or (infer_layer(stem) if len(names) == 1 else None)
            (chosen.append((n, canonical)) if canonical else skipped.append(n))
        if not chosen:
            raise ReadError(
                f"{path}: cannot tell which layer '{names[0]}' is; give the layer parameter "
                f"({', '.join(L.SCHEMA)})"
                if len(names) == 1
                else f"{path}: cannot tell which layers {', '.join(names)} are; give "
                f"the layer parameter ({', '.join(L.SCHEMA)})"
            )
        if skipped:
            notes.append(
                f"{path}: skipped layers {', '.join(skipped)} (not a layer name "
                f"gridgis knows; import them one at a time with the layer parameter)"
            )
    is_shp = path.suffix.lower() in (".shp", ".dbf")
    enc = _dbf_encoding(path, encoding, notes) if is_shp else encoding
    out = []
    for src_layer, canonical in chosen:
        where = f"{path}" if len(names) == 1 else f"{path}:{src_layer}"
        try:
            frame = pyogrio.read_dataframe(
                path, layer=src_layer, encoding=enc, on_invalid="ignore", fid_as_index=True
            )
            # rejects name the file's own feature id (OGR FID: a GeoJSON's features[i]
            # and a shapefile's record i count from 0, a GeoPackage's fid from 1)
            frame[L.SOURCE_ROW] = np.asarray(frame.index, dtype=np.int64)
            frame = frame.reset_index(drop=True)
        except UnicodeDecodeError as exc:
            raise ReadError(
                f"{where}: attributes are not {enc or 'UTF-8'} ({exc.reason} at "
                f"byte {exc.start}); give the right encoding parameter (Chinese files "
                f"are usually gbk)"
            ) from exc
        except Exception as exc:
            raise ReadError(f"{where}: cannot read: {exc}") from exc
        out.append(
            (canonical, prepare(frame, canonical, declared_crs, field_map, where, notes), where)
        )
    return out


def prepare(
    frame: pd.DataFrame,
    layer: str,
    declared_crs: str | None,
    field_map: dict[str, str] | None,
    where: str,
    notes: list[str],
) -> gpd.GeoDataFrame | pd.DataFrame:
    """Rename fields and bring geometry to the storage CRS (tables pass through)."""
    if layer not in L.SCHEMA:
        raise ReadError(f"{where}: unknown layer '{layer}' (known: {', '.join(L.SCHEMA)})")
    spec = L.SCHEMA[layer]
    unknown = [k for k in (field_map or {}) if k not in spec.fields]
    if unknown:
        raise ReadError(
            f"{where}: field map {unknown[0]}=…: layer '{layer}' has no field "
            f"'{unknown[0]}' (fields: {', '.join(spec.fields)})"
        )
    frame = apply_field_map(frame, layer, field_map, where, notes)
    if spec.geometry is None:
        return pd.DataFrame(
            frame.drop(columns=getattr(frame, "_geometry_column_name", None) or [], errors="ignore")
        )
    if not isinstance(frame, gpd.GeoDataFrame):
        raise ReadError(f"{where}: layer '{layer}' needs geometry but the source has none")
    return to_storage(frame, declared_crs, where, notes)


# --------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------


def read_csv(
    path: Path,
    layer: str | None,
    declared_crs: str | None,
    encoding: str | None,
    field_map: dict[str, str] | None,
    notes: list[str],
) -> list[tuple[str, gpd.GeoDataFrame | pd.DataFrame, str]]:
    """Read a CSV of points (lon/lat columns, or a WKT column) or a plain table (staff).

    Lon/lat columns are found by name (lon, lng, longitude, 经度 / lat, latitude, 纬度) or
    given with ``field_map`` keys ``lon`` and ``lat``. A CSV carries no CRS, so a layer
    with geometry needs ``declared_crs``.
    """
    where = str(path)
    canonical = layer or infer_layer(path.stem)
    if canonical is None:
        raise ReadError(
            f"{where}: cannot tell which layer this file is; give the layer parameter ({', '.join(L.SCHEMA)})"
        )
    frame = _read_csv_text(path, encoding, notes)
    fmap = dict(field_map or {})
    lon_col = _find_column(frame, fmap.pop("lon", None), LON_NAMES, where, "lon")
    lat_col = _find_column(frame, fmap.pop("lat", None), LAT_NAMES, where, "lat")
    spec = L.SCHEMA.get(canonical)
    needs_geom = spec is not None and spec.geometry is not None
    if lon_col is not None and lat_col is not None:
        lon = pd.to_numeric(frame[lon_col], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(frame[lat_col], errors="coerce").to_numpy(dtype=float)
        good = np.isfinite(lon) & np.isfinite(lat)
        bad = int((~good).sum())
        if bad:
            notes.append(
                f"{where}: {bad} rows without numeric {lon_col}/{lat_col} have no "
                f"geometry (lines {', '.join(map(str, frame[L.SOURCE_ROW][~good][:10]))})"
            )
        geoms = np.full(len(frame), None, dtype=object)
        geoms[good] = shapely.points(lon[good], lat[good])
        frame = gpd.GeoDataFrame(
            frame.drop(columns=[lon_col, lat_col]), geometry=gpd.GeoSeries(geoms, index=frame.index)
        )
    elif needs_geom:
        wkt_col = next((c for c in frame.columns if str(c).strip().lower() in WKT_NAMES), None)
        if wkt_col is None:
            raise ReadError(
                f"{where}: no lon/lat columns (looked for "
                f"{', '.join(LON_NAMES[:5])} / {', '.join(LAT_NAMES[:4])}); name "
                f"them with the field_map parameter (lon=<column>,lat=<column>)"
            )
        text = frame[wkt_col].astype("string")
        geoms = shapely.from_wkt(text.fillna("").to_numpy(dtype=object), on_invalid="ignore")
        frame = gpd.GeoDataFrame(
            frame.drop(columns=[wkt_col]), geometry=gpd.GeoSeries(geoms, index=frame.index)
        )
    if isinstance(frame, gpd.GeoDataFrame) and declared_crs is None:
        raise ReadError(
            f"{where}: a CSV carries no CRS; declare it with the crs parameter ({CRS_HELP})"
        )
    return [(canonical, prepare(frame, canonical, declared_crs, fmap, where, notes), where)]


def _read_csv_text(path: Path, encoding: str | None, notes: list[str]) -> pd.DataFrame:
    encodings = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    last: Exception | None = None
    with open(path, "rb") as fh:
        head = fh.readline()
    sep = max((",", "\t", ";", "|"), key=lambda c: head.count(c.encode()))
    for enc in encodings:
        try:
            frame = pd.read_csv(
                path,
                encoding=enc,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skipinitialspace=True,
                sep=sep,
            )
        except UnicodeDecodeError as exc:
            last = exc
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
            raise ReadError(f"{path}: cannot read as CSV: {exc}") from exc
        except LookupError as exc:
            raise ReadError(f"{path}: unknown encoding '{enc}'") from exc
        if enc == "gb18030" and not encoding:
            notes.append(f"{path}: not UTF-8; read as GBK/GB18030 (detected)")
        frame.columns = [str(c).strip() for c in frame.columns]
        frame[L.SOURCE_ROW] = _csv_line_numbers(path, enc, sep, len(frame), notes)
        return frame
    raise ReadError(
        f"{path}: cannot decode as {', '.join(encodings)}: {last}; give the encoding parameter"
    )


def _csv_line_numbers(path: Path, encoding: str, sep: str, n: int, notes: list[str]) -> np.ndarray:
    """The line of the file each of the ``n`` data records starts on (the header is line
    1 when the file starts with it; blank lines count, as an editor numbers lines)."""
    starts: list[int] = []
    last = 0
    with open(path, encoding=encoding, newline="", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=sep, skipinitialspace=True)
        for record in reader:
            if record and not (len(record) == 1 and not record[0].strip()):
                starts.append(last + 1)
            last = reader.line_num
    if len(starts) == n + 1:
        return np.asarray(starts[1:], dtype=np.int64)
    notes.append(
        f"{path}: could not tell the line of every record; rows are numbered from 2 after the "
        f"header, skipping blank lines"
    )
    return np.arange(2, n + 2, dtype=np.int64)


def _find_column(
    frame: pd.DataFrame, given: str | None, names: tuple[str, ...], where: str, what: str
) -> str | None:
    if given is not None:
        match = [c for c in frame.columns if c == given or c.lower() == given.lower()]
        if not match:
            raise ReadError(
                f"{where}: field map {what}={given}: no column '{given}' (columns: "
                f"{', '.join(frame.columns)})"
            )
        return match[0]
    lower = {c.lower(): c for c in frame.columns}
    return next((lower[n] for n in names if n in lower), None)


def source_exists(path: Path) -> None:
    """Raise :class:`ReadError` when a source path does not exist or is unreadable."""
    if not path.exists():
        raise ReadError(f"{path}: no such file")
    if path.is_file() and not os.access(path, os.R_OK):
        raise ReadError(f"{path}: not readable (permissions)")
