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

import io
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


def geo_layers(book: Ledger, layers: dict | None = None) -> dict[str, gpd.GeoDataFrame]:
    """The ledger tables plus the extra layers present (e.g. coverage gaps), lon/lat."""
    out = dict(book.tables)
    for name in EXTRA_LAYERS:
        frame = (layers or {}).get(name)
        if isinstance(frame, gpd.GeoDataFrame) and len(frame):
            out[name] = frame.to_crs("EPSG:4326")
    return out


def _atomic_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))


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
    from gridgis.errors import InputError

    enc = SHP_ENCODINGS.get(encoding.lower().replace("_", "-"))
    if enc is None:
        raise InputError(f"shapefile encoding '{encoding}': use utf-8 or gbk")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in geo_layers(book, layers).items():
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
        tmp = _atomic_dir(out_dir / name)
        try:
            shp.to_file(
                tmp / f"{name}.shp", driver="ESRI Shapefile", encoding=enc, engine="pyogrio"
            )
            (tmp / f"{name}.cpg").write_text(enc, encoding="ascii")
            aliases = pd.DataFrame(
                {"field": fields, "name": cols, "alias": [_label(c) for c in cols]}
            )
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


def write_gpkg(
    book: Ledger, path: str | Path, layers: dict | None = None, styles: bool = True
) -> Path:
    """The ledger layers in one GeoPackage (canonical field names), with QGIS styles in
    its ``layer_styles`` table (:func:`gridgis.maps.qgis.write_layer_styles`)."""
    from gridgis.maps.qgis import write_layer_styles

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.gpkg")
    tmp.unlink(missing_ok=True)
    frames = geo_layers(book, layers)
    for name, frame in frames.items():
        out = frame.copy()
        for c in out.columns:
            if pd.api.types.is_bool_dtype(out[c].dtype):
                out[c] = out[c].astype(bool)
        out.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
    if styles:
        write_layer_styles(tmp, list(frames))
    tmp.replace(path)
    return path


def write_geojson(book: Ledger, out_dir: str | Path, layers: dict | None = None) -> list[Path]:
    """One RFC 7946 ``<layer>.geojson`` (lon/lat, UTF-8) per layer."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in geo_layers(book, layers).items():
        target = out_dir / f"{name}.geojson"
        text = frame.to_json(drop_id=True, ensure_ascii=False, to_wgs84=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        written.append(target)
    return written


def write_csv(book: Ledger, out_dir: str | Path, chinese_headers: bool = True) -> list[Path]:
    """One ``<level>.csv`` per ledger level (UTF-8 with BOM, so Excel reads the Chinese),
    without geometry; headers in Chinese (as in the workbook) or canonical English."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for level in book.tables:
        frame = book.plain(level)
        if chinese_headers:
            frame = frame.rename(columns={c: column_label(c) for c in frame.columns})
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        target = out_dir / f"{level}.csv"
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(buf.getvalue(), encoding="utf-8-sig")
        tmp.replace(target)
        written.append(target)
    return written
