"""The ledger as GIS files: Shapefile (one zip per layer), GeoPackage (with QGIS styles),
GeoJSON and CSV.

Shapefile field names hold at most 10 bytes (dBASE). They come from ONE table,
:data:`SHP_FIELDS` (fixed columns) plus :data:`CATEGORY_SHORT` (facility categories:
``n_<short>`` = count, ``c_<short>`` = coverage rate), and every zip carries a sidecar
``<layer>.aliases.csv`` (field, canonical name, Chinese name) and a ``.cpg`` naming the
encoding of the ``.dbf`` (UTF-8, or GBK for older Chinese desktop GIS).

======================  ==========  =======================
canonical field         shapefile   Chinese
======================  ==========  =======================
street_code             st_code     街道代码
street_name             st_name     街道名称
community_code          cm_code     社区代码
community_name          cm_name     社区名称
grid_code               grid_code   网格代码
name                    name        名称
kind                    kind        网格类型代码
kind_label              kind_cn     网格类型
urban_rural_class       ur_class    城乡分类代码
households              households  户数
building_count          buildings   建筑数
area_m2                 area_m2     面积(m²)
flagged                 flagged     问题网格 (1/0)
flags                   flags       问题说明
grid_head               grid_head   网格长
grid_workers            grid_wkrs   网格员
grid_head_phone         head_tel    网格长电话
grid_worker_phones      wkr_tel     网格员电话
police                  police      社区民警
police_phone            police_tel  社区民警电话
community_workers       cm_workers  专职社区工作者数
community_count         comm_count  社区数
grid_count              grid_count  网格数
residential_grids       res_grids   住宅网格数
unit_grids              unit_grids  单位网格数
flagged_grids           flag_grids  问题网格数
facilities_total        n_total     设施合计
valid_from              valid_from  生效日期
facilities_<category>   n_<short>   设施:<类别>
coverage_<category>     c_<short>   覆盖率:<类别>
======================  ==========  =======================
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd

from gridgis.export.ledger import CODE_COLUMNS, Ledger, column_label

#: Shapefile field name (≤ 10 bytes) of every fixed ledger column (see the module table).
SHP_FIELDS: dict[str, str] = {
    "street_code": "st_code",
    "street_name": "st_name",
    "community_code": "cm_code",
    "community_name": "cm_name",
    "grid_code": "grid_code",
    "name": "name",
    "kind": "kind",
    "kind_label": "kind_cn",
    "urban_rural_class": "ur_class",
    "households": "households",
    "building_count": "buildings",
    "area_m2": "area_m2",
    "flagged": "flagged",
    "flags": "flags",
    "grid_head": "grid_head",
    "grid_workers": "grid_wkrs",
    "grid_head_phone": "head_tel",
    "grid_worker_phones": "wkr_tel",
    "police": "police",
    "police_phone": "police_tel",
    "community_workers": "cm_workers",
    "community_count": "comm_count",
    "grid_count": "grid_count",
    "residential_grids": "res_grids",
    "unit_grids": "unit_grids",
    "flagged_grids": "flag_grids",
    "facilities_total": "n_total",
    "valid_from": "valid_from",
    # coverage-gap layer
    "category": "category",
    "buildings": "buildings",
}

#: Short name (≤ 8 ASCII characters) of each facility category, for ``n_``/``c_`` fields.
CATEGORY_SHORT: dict[str, str] = {
    "vegetable_market": "vegmkt",
    "retail": "retail",
    "housekeeping": "housekp",
    "breakfast": "brkfast",
    "elderly_care_home": "eldhome",
    "elderly_daycare": "elddaycr",
    "elderly_service_station": "eldsvc",
    "nursery": "nursery",
    "kindergarten": "kinder",
    "primary_school": "primary",
    "middle_school": "middle",
    "health_station": "hlthstn",
    "health_centre": "hlthctr",
    "community_service_station": "cmsvc",
    "community_office": "cmoffice",
    "street_service_centre": "stsvc",
    "sports_ground": "sports",
    "park": "park",
    "parcel_locker": "parcel",
    "police_station": "policest",
    "hospital": "hospital",
    "pharmacy": "pharmacy",
    "bus_stop": "busstop",
    "restaurant": "restaur",
    "bank": "bank",
    "other": "other",
    "green": "green",
    "life_circle": "lifecirc",
}

#: Encodings offered for the Shapefile ``.dbf`` (written into the ``.cpg``).
SHP_ENCODINGS = {"utf-8": "UTF-8", "gbk": "GBK"}

#: Extra layers written next to the ledger in the GIS formats when the workspace has them.
EXTRA_LAYERS = ("coverage_gaps",)

EXTRA_LABELS = {"category": "类别", "buildings": "建筑数"}


def shp_field(column: str) -> str:
    """The shapefile field name (≤ 10 bytes) of a ledger column, from the one table."""
    if column in SHP_FIELDS:
        return SHP_FIELDS[column]
    for prefix, short in (("facilities_", "n_"), ("coverage_", "c_")):
        if column.startswith(prefix):
            cat = column[len(prefix) :]
            return short + CATEGORY_SHORT.get(cat, cat[:8])
    return column[:10]


def _label(column: str) -> str:
    return EXTRA_LABELS.get(column) or column_label(column)


def extra_layers(layers: dict | None) -> dict[str, gpd.GeoDataFrame]:
    """The extra layers present (:data:`EXTRA_LAYERS`, e.g. coverage gaps), as stored."""
    out = {}
    for name in EXTRA_LAYERS:
        frame = (layers or {}).get(name)
        if isinstance(frame, gpd.GeoDataFrame) and len(frame):
            out[name] = frame
    return out


def lonlat(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` in lon/lat (EPSG:4326), row by row (so any block of rows gives the rows
    of the whole)."""
    return frame.to_crs("EPSG:4326")


def geo_layers(book: Ledger, layers: dict | None = None) -> dict[str, gpd.GeoDataFrame]:
    """The ledger tables plus the extra layers present (e.g. coverage gaps), lon/lat."""
    out = dict(book.tables)
    out.update({name: lonlat(frame) for name, frame in extra_layers(layers).items()})
    return out


def _joined(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Frames of consecutive blocks of one layer as one frame (empty blocks add only
    dtypes of their own, so they are left out)."""
    kept = [f for f in frames if len(f)] or frames[:1]
    out = kept[0] if len(kept) == 1 else pd.concat(kept)
    return out.reset_index(drop=True)


def _atomic_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))


def shp_encoding(encoding: str) -> str:
    """The ``.cpg`` name of an offered encoding (``utf-8``/``gbk``).

    Raises
    ------
    gridgis.errors.InputError
        For an encoding not offered.
    """
    from gridgis.errors import InputError

    enc = SHP_ENCODINGS.get(encoding.lower().replace("_", "-"))
    if enc is None:
        raise InputError(f"shapefile encoding '{encoding}': use utf-8 or gbk")
    return enc


def shp_chunk(name: str, frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Rows of one layer as the ``.dbf`` holds them (short field names, :func:`shp_field`;
    values by :func:`_shp_values`), and the layer's aliases (field, name, Chinese name).

    Raises
    ------
    gridgis.errors.InputError
        When two columns map to one field name, or a name exceeds 10 bytes.
    """
    from gridgis.errors import InputError

    cols = [c for c in frame.columns if c != frame.geometry.name]
    fields = [shp_field(c) for c in cols]
    dup = {f for f in fields if fields.count(f) > 1}
    if dup or any(len(f.encode()) > 10 for f in fields):
        raise InputError(f"layer {name}: shapefile field names clash or exceed 10 bytes")
    shp = gpd.GeoDataFrame(
        {f: _shp_values(frame[c], c) for c, f in zip(cols, fields, strict=True)},
        geometry=frame.geometry.values,
        crs=frame.crs,
    )
    aliases = pd.DataFrame({"field": fields, "name": cols, "alias": [_label(c) for c in cols]})
    return shp, aliases


def write_shapefiles(
    book: Ledger, out_dir: str | Path, encoding: str = "utf-8", layers: dict | None = None
) -> list[Path]:
    """One ``<layer>.zip`` per layer (``.shp .shx .dbf .prj .cpg`` and the aliases sidecar).

    Parameters
    ----------
    encoding
        ``utf-8`` or ``gbk`` (text in the ``.dbf``; named in the ``.cpg``).

    Raises
    ------
    gridgis.errors.InputError
        For an encoding not offered, or two columns mapping to one field name.
    """
    chunks = {name: [shp_chunk(name, f)] for name, f in geo_layers(book, layers).items()}
    return write_shp_chunks(chunks, out_dir, encoding)


def write_shp_chunks(
    chunks: dict[str, list[tuple[gpd.GeoDataFrame, pd.DataFrame]]],
    out_dir: str | Path,
    encoding: str = "utf-8",
) -> list[Path]:
    """Write the zips of :func:`write_shapefiles` from each layer's :func:`shp_chunk`
    results in row order (of blocks of rows, or of the whole layer)."""
    enc = shp_encoding(encoding)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, parts in chunks.items():
        shp = _joined([p[0] for p in parts])
        aliases = parts[0][1]
        tmp = _atomic_dir(out_dir / name)
        try:
            shp.to_file(
                tmp / f"{name}.shp", driver="ESRI Shapefile", encoding=enc, engine="pyogrio"
            )
            (tmp / f"{name}.cpg").write_text(enc, encoding="ascii")
            aliases.to_csv(tmp / f"{name}.aliases.csv", index=False, encoding="utf-8-sig")
            target = out_dir / f"{name}.zip"
            with zipfile.ZipFile(target.with_suffix(".zip.tmp"), "w", zipfile.ZIP_DEFLATED) as z:
                for part in sorted(tmp.iterdir()):
                    z.write(part, part.name)
            target.with_suffix(".zip.tmp").replace(target)
            written.append(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return written


def _shp_values(col: pd.Series, column: str) -> pd.Series:
    """Values a ``.dbf`` holds: bools as 1/0, codes and text as text (≤ 254 characters)."""
    if column in CODE_COLUMNS:
        return col.astype("string")
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.astype("Int64")
    if pd.api.types.is_object_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype):
        return col.astype("string").str.slice(0, 254)
    return col


def gpkg_chunk(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Rows of one layer as the GeoPackage holds them (booleans as plain bool)."""
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_bool_dtype(out[c].dtype):
            out[c] = out[c].astype(bool)
    return out


def write_gpkg(
    book: Ledger, path: str | Path, layers: dict | None = None, styles: bool = True
) -> Path:
    """The ledger layers in one GeoPackage (canonical field names), with QGIS styles in
    its ``layer_styles`` table (:func:`gridgis.maps.qgis.write_layer_styles`)."""
    chunks = {name: [gpkg_chunk(f)] for name, f in geo_layers(book, layers).items()}
    return write_gpkg_chunks(chunks, path, styles)


def write_gpkg_chunks(
    chunks: dict[str, list[gpd.GeoDataFrame]], path: str | Path, styles: bool = True
) -> Path:
    """Write the GeoPackage of :func:`write_gpkg` from each layer's :func:`gpkg_chunk`
    results in row order (to a temporary name, then renamed)."""
    from gridgis.maps.qgis import write_layer_styles

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.gpkg")
    tmp.unlink(missing_ok=True)
    try:
        for name, frames in chunks.items():
            _joined(frames).to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
        if styles:
            write_layer_styles(tmp, list(chunks))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


#: What :meth:`geopandas.GeoDataFrame.to_json` writes around the features.
_FC_HEAD, _FC_TAIL = '{"type": "FeatureCollection", "features": [', "]}"


def geojson_chunk(frame: gpd.GeoDataFrame) -> str:
    """The features of ``frame`` as GeoJSON text (lon/lat, UTF-8 unescaped), ", "-separated:
    the inside of its FeatureCollection's ``features`` array."""
    text = frame.to_json(drop_id=True, ensure_ascii=False, to_wgs84=True)
    if not (text.startswith(_FC_HEAD) and text.endswith(_FC_TAIL)):  # pragma: no cover
        raise RuntimeError("unexpected GeoJSON text from geopandas (no plain FeatureCollection)")
    return text[len(_FC_HEAD) : -len(_FC_TAIL)]


def write_geojson(book: Ledger, out_dir: str | Path, layers: dict | None = None) -> list[Path]:
    """One RFC 7946 ``<layer>.geojson`` (lon/lat, UTF-8) per layer."""
    chunks = {name: [geojson_chunk(f)] for name, f in geo_layers(book, layers).items()}
    return write_geojson_chunks(chunks, out_dir)


def write_geojson_chunks(chunks: dict[str, list[str]], out_dir: str | Path) -> list[Path]:
    """Write the files of :func:`write_geojson` from each layer's :func:`geojson_chunk`
    texts in row order: the same text as one ``to_json`` of the whole layer."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, texts in chunks.items():
        target = out_dir / f"{name}.geojson"
        text = _FC_HEAD + ", ".join(t for t in texts if t) + _FC_TAIL
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        written.append(target)
    return written


def csv_chunk(frame: pd.DataFrame, chinese_headers: bool = True) -> tuple[str, str]:
    """(header line, rows) of a ledger table (without geometry) as CSV text; headers in
    Chinese (as in the workbook) or canonical English."""
    if chinese_headers:
        frame = frame.rename(columns={c: column_label(c) for c in frame.columns})
    return frame.iloc[:0].to_csv(index=False), frame.to_csv(index=False, header=False)


def write_csv(book: Ledger, out_dir: str | Path, chinese_headers: bool = True) -> list[Path]:
    """One ``<level>.csv`` per ledger level (UTF-8 with BOM, so Excel reads the Chinese),
    without geometry; headers in Chinese (as in the workbook) or canonical English."""
    chunks = {level: [csv_chunk(book.plain(level), chinese_headers)] for level in book.tables}
    return write_csv_chunks(chunks, out_dir)


def write_csv_chunks(chunks: dict[str, list[tuple[str, str]]], out_dir: str | Path) -> list[Path]:
    """Write the files of :func:`write_csv` from each level's :func:`csv_chunk` texts in
    row order (the header once)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for level, texts in chunks.items():
        target = out_dir / f"{level}.csv"
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
            fh.write(texts[0][0])
            for _, rows in texts:
                fh.write(rows)
        tmp.replace(target)
        written.append(target)
    return written
