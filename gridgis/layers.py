"""The canonical layer schema, and validation of incoming layers against it.

Every layer gridgis stores has a fixed set of fields (names in English, labels in
Chinese), one key, one geometry type and the storage CRS (EPSG:4326). :func:`validate`
turns whatever a reader produced into that shape and returns, separately, the rows it
could not accept: each with the file, layer, row number and field, and why. Nothing is
dropped silently, and a layer either validates whole (valid rows + rejects) or raises
:class:`LayerError` before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis import codes
from gridgis.crs import STORAGE_CRS, metric_crs_for
from gridgis.errors import InputError
from gridgis.standards import DEFAULT, Settings

# --------------------------------------------------------------------------------------
# Controlled vocabularies
# --------------------------------------------------------------------------------------

#: Facility categories (controlled list): the 15-minute life circle of the policy text
#: (Chengdu 2017) plus the GB 50180-2018 set, and the community offices the norms need.
FACILITY_CATEGORIES: dict[str, str] = {
    "vegetable_market": "菜市场",
    "retail": "便利店/超市",
    "housekeeping": "家政服务",
    "breakfast": "早餐店",
    "elderly_care_home": "养老院",
    "elderly_daycare": "老年人日间照料中心",
    "elderly_service_station": "老年服务站",
    "nursery": "托儿所/托育",
    "kindergarten": "幼儿园",
    "primary_school": "小学",
    "middle_school": "中学",
    "health_station": "社区卫生服务站",
    "health_centre": "社区卫生服务中心",
    "community_service_station": "社区服务站",
    "community_office": "社区综合服务设施(居委会)",
    "street_service_centre": "街道社区服务中心",
    "sports_ground": "小型运动场地",
    "park": "公园",
    "parcel_locker": "快递柜/驿站",
    "police_station": "警务室/派出所",
    "hospital": "医院",
    "clinic": "诊所/门诊部",
    "pharmacy": "药店",
    "bus_stop": "公交站",
    "restaurant": "餐馆",
    "bank": "银行",
    "other": "其他",
}

ROAD_CLASSES: dict[str, str] = {
    "arterial": "主干路",
    "secondary": "次干路",
    "branch": "支路",
    "path": "步行道/小区路",
}

BUILDING_USES: dict[str, str] = {
    "residential": "住宅",
    "commercial": "商业",
    "office": "办公",
    "public": "公共服务",
    "school": "学校",
    "hospital": "医院",
    "clinic": "诊所/门诊部",
    "industrial": "工业",
    "other": "其他",
}

GREEN_KINDS: dict[str, str] = {"park": "公园", "green": "绿地", "square": "广场"}

INSTITUTION_KINDS: dict[str, str] = {
    "school": "学校",
    "university": "高校",
    "hospital": "医院",
    "clinic": "诊所/门诊部",
    "campus": "园区",
    "factory": "工厂",
    "industrial": "工业用地",
    "market": "市场",
    "park": "公园",
    "government": "机关",
    "military": "军事",
    "other": "其他",
}

STAFF_ROLES: dict[str, str] = {
    "grid_head": "网格长",
    "grid_worker": "网格员",
    "community_worker": "专职社区工作者",
    "police": "社区民警",
}

# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One field: its kind ('str', 'int', 'float', 'bool', 'code9', 'code12', 'code15'),
    whether a row needs it, its Chinese label and, for enumerations, the allowed values."""

    kind: str = "str"
    required: bool = False
    label: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerSpec:
    """A layer of the canonical schema."""

    name: str
    label: str
    key: str
    geometry: tuple[str, ...] | None  # allowed geometry kinds, None for a table
    fields: dict[str, FieldSpec] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [self.key, *[f for f in self.fields if f != self.key]]


F = FieldSpec
POLY = ("Polygon", "MultiPolygon")

SCHEMA: dict[str, LayerSpec] = {
    s.name: s
    for s in [
        LayerSpec(
            "streets",
            "街道",
            "street_code",
            POLY,
            {
                "street_code": F("code9", True, "街道代码"),
                "name": F("str", True, "街道名称"),
            },
        ),
        LayerSpec(
            "communities",
            "社区",
            "community_code",
            POLY,
            {
                "community_code": F("code12", True, "社区代码"),
                "name": F("str", True, "社区名称"),
                "street_code": F("code9", True, "街道代码"),
                "urban_rural_class": F("str", False, "城乡分类代码"),
            },
        ),
        LayerSpec(
            "buildings",
            "建筑",
            "building_id",
            POLY,
            {
                "building_id": F("str", True, "建筑编号"),
                "name": F("str", False, "名称"),
                "households": F("int", False, "户数"),
                "households_estimated": F("bool", False, "户数为估算"),
                "floors": F("int", False, "层数"),
                "use": F("str", False, "用途", tuple(BUILDING_USES)),
                "compound": F("str", False, "小区"),
            },
        ),
        LayerSpec(
            "roads",
            "道路",
            "road_id",
            ("LineString", "MultiLineString"),
            {
                "road_id": F("str", True, "道路编号"),
                "name": F("str", False, "道路名称"),
                "road_class": F("str", True, "道路等级", tuple(ROAD_CLASSES)),
                "layer": F("int", False, "立体层级"),
                "bridge": F("bool", False, "桥梁"),
                "tunnel": F("bool", False, "隧道"),
            },
        ),
        LayerSpec(
            "compounds",
            "封闭小区",
            "compound_id",
            POLY,
            {
                "compound_id": F("str", True, "小区编号"),
                "name": F("str", False, "名称"),
                "use": F("str", False, "用途"),
            },
        ),
        LayerSpec(
            "gates",
            "出入口",
            "gate_id",
            ("Point",),
            {
                "gate_id": F("str", True, "出入口编号"),
                "name": F("str", False, "名称"),
                "access": F("str", False, "通行权限"),
                "kind": F("str", False, "类型"),
            },
        ),
        LayerSpec(
            "facilities",
            "设施",
            "facility_id",
            ("Point", *POLY),
            {
                "facility_id": F("str", True, "设施编号"),
                "name": F("str", False, "名称"),
                "category": F("str", True, "类别", tuple(FACILITY_CATEGORIES)),
                "floor_area_m2": F("float", False, "建筑面积(m²)"),
                "address": F("str", False, "地址"),
            },
        ),
        LayerSpec(
            "green_spaces",
            "绿地",
            "green_id",
            POLY,
            {
                "green_id": F("str", True, "绿地编号"),
                "name": F("str", False, "名称"),
                "kind": F("str", True, "类型", tuple(GREEN_KINDS)),
            },
        ),
        LayerSpec(
            "addresses",
            "标准地址",
            "address_id",
            ("Point",),
            {
                "address_id": F("str", True, "地址编号"),
                "text": F("str", True, "地址"),
                "name": F("str", False, "小区/单位名称"),
                "aliases": F("str", False, "别名"),
                "road": F("str", False, "道路"),
                "number": F("str", False, "门牌号"),
                "building_no": F("str", False, "楼栋号"),
                "unit": F("str", False, "单元"),
                "building_id": F("str", False, "建筑编号"),
            },
        ),
        LayerSpec(
            "institutions",
            "单位",
            "unit_id",
            POLY,
            {
                "unit_id": F("str", True, "单位编号"),
                "name": F("str", False, "单位名称"),
                "kind": F("str", True, "类型", tuple(INSTITUTION_KINDS)),
                "staff": F("int", False, "职工/学生/床位数"),
                "floor_area_m2": F("float", False, "建筑面积(m²)"),
            },
        ),
        LayerSpec(
            "staff",
            "网格人员",
            "staff_id",
            None,
            {
                "staff_id": F("str", True, "人员编号"),
                "name": F("str", True, "姓名"),
                "role": F("str", True, "角色", tuple(STAFF_ROLES)),
                "community_code": F("code12", False, "社区代码"),
                "grid_code": F("code15", False, "网格代码"),
                "phone": F("str", False, "电话"),
            },
        ),
    ]
}

#: Fields holding personal data: served by the API only with the write token.
PERSONAL_FIELDS = {"staff": ("phone",)}

#: Chinese role names accepted on import, mapped to the canonical ones.
ROLE_ALIASES = {v: k for k, v in STAFF_ROLES.items()} | {
    "网格长": "grid_head",
    "网格员": "grid_worker",
    "社区工作者": "community_worker",
    "民警": "police",
}


class LayerError(InputError):
    """A layer that cannot be loaded at all (no rows are written). Names file and layer."""


@dataclass
class Validated:
    """The outcome of :func:`validate`: the rows to store, the rows refused, and notes
    (repairs, estimates, generated keys) that changed nothing silently."""

    data: gpd.GeoDataFrame | pd.DataFrame
    rejects: pd.DataFrame
    notes: list[str]

    @property
    def summary(self) -> str:
        return f"{len(self.data)} rows valid, {len(self.rejects)} rejected"


REJECT_COLUMNS = ["source", "layer", "row", "field", "value", "reason"]


_EMPTY_REJECTS = pd.DataFrame({c: pd.Series(dtype="object") for c in REJECT_COLUMNS})


def empty_rejects() -> pd.DataFrame:
    """A rejects table without rows (a copy of one built once: building it is slow)."""
    return _EMPTY_REJECTS.copy()


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


#: Column a reader may add with each row's number in its source (CSV line number, or the
#: 1-based feature number); :func:`validate` reports rejects with it.
SOURCE_ROW = "_source_row"

#: Numeric fields with an upper bound, and the :class:`gridgis.standards.ImportRules`
#: setting that holds it.
NUMBER_LIMITS: dict[str, str] = {
    "households": "max_households_per_building",
    "floors": "max_floors",
    "staff": "max_staff",
    "floor_area_m2": "max_floor_area_m2",
    "layer": "max_road_layer",
}
#: Numeric fields that may be negative (then bounded by their limit either way): a
#: road's vertical layer (-1 = tunnel or underpass level).
SIGNED_FIELDS = frozenset({"layer"})

#: Text fields holding an address: a value with no letter, digit or Chinese character
#: (``[]``, ``-``, ``（）`` …) has no address content and is rejected.
ADDRESS_FIELDS = {("addresses", "text"), ("facilities", "address")}

_NO_ADDRESS_CONTENT = r"^[^\w]*$"


class _Rejects:
    """Collects refused rows (one entry per row and field) while :func:`validate` runs."""

    def __init__(self, source: str, layer: str) -> None:
        self.source, self.layer, self.rows = source, layer, []

    def __call__(self, rows, fld: str, reason: str, values=None) -> None:
        rows = list(rows)
        vals = values if values is not None else [None] * len(rows)
        for r, v in zip(rows, vals, strict=True):
            self.rows.append(
                {
                    "source": self.source,
                    "layer": self.layer,
                    "row": int(r),
                    "field": fld,
                    "value": None if v is None or v is pd.NA else str(v),
                    "reason": reason,
                }
            )

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            return empty_rejects()
        return pd.DataFrame(self.rows, columns=REJECT_COLUMNS)


def validate(
    frame: gpd.GeoDataFrame | pd.DataFrame,
    layer: str,
    source: str = "<memory>",
    settings: Settings = DEFAULT,
) -> Validated:
    """Check and normalise a layer against :data:`SCHEMA`.

    Parameters
    ----------
    frame
        The rows as read, already renamed to canonical field names and already in the
        storage CRS (EPSG:4326). Unknown extra columns are kept. A column
        :data:`SOURCE_ROW` gives each row's number in its source for messages.
    layer
        Canonical layer name (a key of :data:`SCHEMA`).
    source
        File name to put in messages.
    settings
        Code rules and the import limits (``settings.imports``).

    Returns
    -------
    Validated
        ``data`` with canonical dtypes, repaired geometry and ``row`` numbers dropped;
        ``rejects`` with one row per refused input row and field (``row`` is the
        :data:`SOURCE_ROW` value when given, else 1-based, as a planner counts rows in a
        spreadsheet or attribute table).

    Raises
    ------
    LayerError
        When the layer is unknown, a required field is missing altogether, or the layer
        has no CRS.
    """
    if layer not in SCHEMA:
        raise LayerError(f"{source}: unknown layer '{layer}' (known: {', '.join(SCHEMA)})")
    spec = SCHEMA[layer]
    df = frame.copy()
    df.index = _row_numbers(df)
    notes: list[str] = []
    reject = _Rejects(source, layer)
    df = _check_required_and_key(df, spec, source, notes)
    if spec.geometry is not None:
        df = _check_geometry(df, spec, source, notes, reject)
    for name, f in spec.fields.items():
        if name not in df.columns:
            df[name] = pd.Series(pd.NA, index=df.index, dtype=_DTYPES.get(f.kind, "string"))
            continue
        df[name] = _check_field(df[name], name, f, layer, settings, reject)
    _check_parent_codes(df, spec, reject)
    df[spec.key] = _check_unique_keys(df[spec.key], spec.key, reject)
    rej = reject.frame()
    bad_rows = set(rej["row"].astype(int)) if len(rej) else set()
    out = df.loc[~df.index.isin(bad_rows)]
    if layer == "buildings":
        out = estimate_households(out, settings)
    out = _canonical_frame(out, spec)
    if len(rej):
        rej = rej.sort_values(["row", "field"]).reset_index(drop=True)
    return Validated(out, rej, notes)


def _row_numbers(df: pd.DataFrame) -> pd.Index:
    """The source row numbers (when given and unique), else 1, 2, 3 …"""
    if SOURCE_ROW in df.columns:
        rows = pd.to_numeric(df[SOURCE_ROW], errors="coerce")
        if rows.notna().all() and rows.is_unique:
            return pd.Index(rows.astype("int64").to_numpy())
    return pd.RangeIndex(1, len(df) + 1)


def _check_required_and_key(
    df: pd.DataFrame, spec: LayerSpec, source: str, notes: list[str]
) -> pd.DataFrame:
    """Required fields present at all (the key may be generated)."""
    missing = [
        n for n, f in spec.fields.items() if f.required and n not in df.columns and n != spec.key
    ]
    if missing:
        raise LayerError(
            f"{source}: layer '{spec.name}' lacks required field(s) {', '.join(missing)}; "
            f"found fields: {', '.join(map(str, df.columns))}. Map them with the field_map "
            f"parameter ({missing[0]}=<your field name>)"
        )
    if spec.key not in df.columns:
        short = spec.name[:3]
        df[spec.key] = [f"{short}{i}" for i in range(1, len(df) + 1)]
        notes.append(
            f"{source}: layer '{spec.name}' has no '{spec.key}'; generated keys "
            f"{short}1…{short}{len(df)}"
        )
    return df


_TYPE_NAMES = np.array(
    [
        "Point",
        "LineString",
        "LinearRing",
        "Polygon",
        "MultiPoint",
        "MultiLineString",
        "MultiPolygon",
        "GeometryCollection",
    ]
)


def _check_geometry(
    df: gpd.GeoDataFrame, spec: LayerSpec, source: str, notes: list[str], reject: _Rejects
) -> gpd.GeoDataFrame:
    """Geometry present, in the storage CRS, valid (repaired with a note) and of the
    layer's kind."""
    if not isinstance(df, gpd.GeoDataFrame) or df.geometry.name not in df.columns:
        raise LayerError(f"{source}: layer '{spec.name}' has no geometry column")
    if df.crs is None:
        raise LayerError(
            f"{source}: layer '{spec.name}' has no CRS; declare it with the crs parameter"
        )
    if df.crs.to_epsg() != 4326:
        df = df.to_crs(STORAGE_CRS)
    geom = df.geometry.values
    empty = shapely.is_missing(geom) | shapely.is_empty(geom)
    reject(df.index[empty], "geometry", "no geometry")
    invalid = ~empty & ~shapely.is_valid(geom)
    if invalid.any():
        fixed = shapely.make_valid(geom[invalid])
        if spec.geometry == POLY:
            fixed = _polygonal(fixed)
        geom = geom.copy()
        geom[invalid] = fixed
        rows = ", ".join(map(str, df.index[invalid][:10]))
        notes.append(
            f"{source}: layer '{spec.name}': repaired {int(invalid.sum())} invalid "
            f"geometries with make_valid (rows {rows}{'…' if invalid.sum() > 10 else ''})"
        )
        df = df.set_geometry(gpd.GeoSeries(geom, index=df.index, crs=df.crs))
        geom = df.geometry.values
    kinds = shapely.get_type_id(geom)
    names = np.where(kinds >= 0, _TYPE_NAMES[np.clip(kinds, 0, 7)], "none")
    now_empty = shapely.is_empty(geom) | shapely.is_missing(geom)
    wrong = ~empty & ~np.isin(names, spec.geometry) & ~now_empty
    reject(
        df.index[wrong], "geometry", f"geometry must be {' or '.join(spec.geometry)}", names[wrong]
    )
    reject(df.index[~empty & now_empty], "geometry", "geometry empty after repair")
    return df


def _check_field(
    col: pd.Series, name: str, f: FieldSpec, layer: str, settings: Settings, reject: _Rejects
) -> pd.Series:
    """One field's values checked and converted to its canonical dtype."""
    blank = col.isna() | (col.astype("string").str.strip() == "")
    if f.required:
        reject(col.index[blank], name, "required value missing")
    if f.kind in ("int", "float"):
        return _check_number(col, blank, name, f.kind, settings, reject)
    if f.kind == "bool":
        parsed = col.map(parse_bool)
        bad = ~blank & parsed.isna()
        reject(col.index[bad], name, "not true/false (是/否, yes/no, 1/0)", col[bad])
        return parsed.astype("boolean")
    if f.kind.startswith("code"):
        return _check_codes(col, blank, name, int(f.kind[4:]), settings, reject)
    texts = col.astype("string").str.strip()
    if name == "role":
        texts = texts.map(lambda v: ROLE_ALIASES.get(v, v) if isinstance(v, str) else v)
    if f.choices:
        bad = ~blank & ~texts.isin(f.choices)
        reject(col.index[bad], name, f"must be one of {', '.join(f.choices)}", texts[bad])
    if (layer, name) in ADDRESS_FIELDS:
        empty = ~blank & texts.str.fullmatch(_NO_ADDRESS_CONTENT).fillna(False)
        reject(
            col.index[empty],
            name,
            "no address content (no letter, digit or Chinese character)",
            texts[empty],
        )
    return texts.where(~blank, pd.NA)


def _check_number(
    col: pd.Series, blank: pd.Series, name: str, kind: str, settings: Settings, reject: _Rejects
) -> pd.Series:
    """A number field: finite, not negative, within its named limit and, for ``int``,
    whole. Values are checked as float64 before any integer conversion, so no value can
    overflow (the limits keep every later sum inside int64)."""
    raw = pd.to_numeric(col.where(~blank), errors="coerce")
    num = pd.Series(np.asarray(raw, dtype="float64"), index=col.index)
    bad = ~blank & num.isna()
    reject(col.index[bad], name, "not a number", col[bad])
    infinite = num.notna() & ~np.isfinite(num)
    reject(col.index[infinite], name, "not a finite number", col[infinite])
    ok = num.notna() & ~infinite
    neg = ok & (num < 0) & (name not in SIGNED_FIELDS)
    reject(col.index[neg], name, "negative", col[neg])
    setting = NUMBER_LIMITS.get(name)
    if setting is not None:
        limit = getattr(settings.imports, setting)
        high = ok & ((num.abs() if name in SIGNED_FIELDS else num) > limit)
        reject(
            col.index[high],
            name,
            f"{'beyond ±' if name in SIGNED_FIELDS else 'above '}{limit:,} "
            f"(imports.{setting}): not a plausible value",
            col[high],
        )
        ok &= ~high
    ok &= ~neg
    if kind == "int":
        frac = ok & (num % 1 != 0)
        reject(col.index[frac], name, "not a whole number", col[frac])
        kept = num.where(ok & ~frac & (num.abs() < 2**53))
        return kept.round().astype("Int64")
    return num.where(ok).astype("Float64")


def _check_codes(
    col: pd.Series, blank: pd.Series, name: str, n: int, settings: Settings, reject: _Rejects
) -> pd.Series:
    """9-, 12- or 15-digit codes checked by :mod:`gridgis.codes`."""
    check = {
        9: codes.validate_street_code,
        12: codes.validate_community_code,
        15: codes.validate_grid_code,
    }[n]
    texts = col.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    good = []
    for idx, text in texts.items():
        if blank[idx]:
            good.append(pd.NA)
            continue
        try:
            good.append(check(text, settings))
        except codes.CodeError as exc:
            reject([idx], name, str(exc), [text])
            good.append(pd.NA)
    return pd.Series(pd.array(good, dtype="string"), index=col.index)


def _check_parent_codes(df: pd.DataFrame, spec: LayerSpec, reject: _Rejects) -> None:
    """Codes agree with their parents' codes (a community's code starts with its
    street's, a grid's with its community's); containment itself is audit's job."""
    for child, parent, n in (
        ("community_code", "street_code", 9),
        ("grid_code", "community_code", 12),
    ):
        if child in spec.fields and parent in spec.fields:
            both = df[child].notna() & df[parent].notna()
            clash = both & (df[child].str[:n] != df[parent])
            reject(
                df.index[clash],
                parent,
                f"does not match the first {n} digits of {child}",
                df[parent][clash],
            )


def _check_unique_keys(keys: pd.Series, key: str, reject: _Rejects) -> pd.Series:
    """Keys unique: the first occurrence wins, later ones are rejected naming the first."""
    keys = keys.astype("string")
    dup = keys.duplicated(keep="first") & keys.notna()
    if dup.any():
        first = {k: i for i, k in keys[~keys.duplicated(keep="first")].items()}
        for idx in keys.index[dup]:
            reject([idx], key, f"duplicate key (first at row {first[keys[idx]]})", [keys[idx]])
    return keys


def _canonical_frame(out: pd.DataFrame, spec: LayerSpec) -> gpd.GeoDataFrame | pd.DataFrame:
    """Columns in schema order (extra columns after), storage CRS, geometry named
    'geometry', a fresh 0-based index."""
    ordered = spec.columns + [
        c
        for c in out.columns
        if c not in spec.fields
        and c != spec.key
        and c != getattr(out, "_geometry_column_name", None)
    ]
    if spec.geometry is not None:
        out = gpd.GeoDataFrame(out[ordered], geometry=out.geometry, crs=STORAGE_CRS)
        out = out.rename_geometry("geometry") if out.geometry.name != "geometry" else out
    else:
        out = pd.DataFrame(out[ordered])
        if "geometry" in out.columns:
            out = out.drop(columns="geometry")
    return out.reset_index(drop=True)


_DTYPES = {"int": "Int64", "float": "Float64", "bool": "boolean"}


#: Texts read as true / false by :func:`parse_bool` (case-insensitive, trimmed). One list
#: for imports, both stores' attribute filters and the API.
TRUE_TEXTS = frozenset({"1", "true", "yes", "y", "t", "是"})
FALSE_TEXTS = frozenset({"0", "false", "no", "n", "f", "否"})


def parse_bool(v: object) -> object:
    """``True``/``False`` for a boolean written any accepted way, ``pd.NA`` for blank or
    unreadable values (:data:`TRUE_TEXTS`, :data:`FALSE_TEXTS`; numbers by truth)."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return pd.NA
    if isinstance(v, str):
        text = v.strip().lower()
        if text in TRUE_TEXTS:
            return True
        if text in FALSE_TEXTS:
            return False
        return pd.NA  # blank or neither: reported by validate
    return bool(v)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of repaired geometries (make_valid can add lines)."""
    out = []
    for g in geoms:
        if g is None:
            out.append(None)
            continue
        if g.geom_type in POLY:
            out.append(g)
            continue
        parts = [p for p in shapely.get_parts(g) if p.geom_type in POLY]
        out.append(shapely.unary_union(parts) if parts else shapely.Polygon())
    return np.array(out, dtype=object)


def estimate_households(
    buildings: gpd.GeoDataFrame, settings: Settings = DEFAULT
) -> gpd.GeoDataFrame:
    """Fill missing households of residential buildings from their floor area.

    households = footprint area (m²) × floors ÷ gross floor area per household
    (``settings.buildings.gross_floor_area_per_household_m2``), at least 1. Floors missing:
    ``settings.buildings.default_residential_floors``. Only buildings whose ``use`` is in
    ``settings.buildings.residential_uses`` are estimated; others keep households 0 when
    missing. Sets ``households_estimated`` True exactly where a value was estimated.
    """
    b = buildings.copy()
    rules = settings.buildings
    missing = pd.Series(pd.NA, index=b.index, dtype="Float64")
    hh = pd.to_numeric(b.get("households", missing), errors="coerce").astype("Float64")
    est_flag = b.get("households_estimated")
    est_flag = (
        est_flag.astype("boolean").fillna(False)
        if est_flag is not None
        else pd.Series(False, index=b.index, dtype="boolean")
    )
    residential = (
        b["use"].isin(rules.residential_uses).to_numpy() if "use" in b else np.zeros(len(b), bool)
    )
    need = hh.isna().to_numpy() & residential
    if need.any():
        area = b.geometry[need].to_crs(metric_crs_for(b)).area.to_numpy()
        floors = (
            pd.to_numeric(b.get("floors", missing)[need], errors="coerce")
            .fillna(rules.default_residential_floors)
            .to_numpy(dtype=float)
        )
        floors = np.where(floors <= 0, rules.default_residential_floors, floors)
        est = np.maximum(1, np.round(area * floors / rules.gross_floor_area_per_household_m2))
        hh[need] = est
        est_flag[need] = True
    hh = hh.fillna(0)
    b["households"] = hh.round().astype("Int64")
    b["households_estimated"] = est_flag.astype("boolean")
    return b


def empty_layer(layer: str) -> gpd.GeoDataFrame | pd.DataFrame:
    """An empty frame with the layer's canonical columns."""
    spec = SCHEMA[layer]
    cols = {c: pd.Series(dtype="object") for c in spec.columns}
    if spec.geometry is None:
        return pd.DataFrame(cols)
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=STORAGE_CRS), crs=STORAGE_CRS)
