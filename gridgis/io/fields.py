"""Field names and values as they arrive in planners' files, mapped to the canonical schema.

Real files use Chinese or abbreviated field names (户数, HH_NUM, MC) and Chinese values
(住宅, 主干路, 幼儿园). This module renames fields (explicit ``--map`` first, then a
built-in alias table), translates Chinese labels of controlled values to their canonical
codes, and infers the canonical layer from a file or layer name where that is obvious.
"""

from __future__ import annotations

import re

import pandas as pd

from gridgis import layers as L


class ReadError(L.LayerError):
    """A source that cannot be read at all; the message names the file (and layer, row,
    field where known). Nothing from the import is written."""


# --------------------------------------------------------------------------------------
# Field aliases
# --------------------------------------------------------------------------------------

#: Aliases valid in every layer: source field name (lower case) -> canonical field.
COMMON_ALIASES: dict[str, str] = {
    # names
    "名称": "name",
    "名字": "name",
    "mc": "name",
    "name_zh": "name",
    "name:zh": "name",
    "单位名称": "name",
    "小区名称": "name",
    "设施名称": "name",
    "姓名": "name",
    # households and buildings
    "户数": "households",
    "住户数": "households",
    "总户数": "households",
    "实有户数": "households",
    "登记户数": "households",
    "hh": "households",
    "hh_num": "households",
    "hhnum": "households",
    "hushu": "households",
    "层数": "floors",
    "楼层数": "floors",
    "地上层数": "floors",
    "总层数": "floors",
    "cs": "floors",
    "levels": "floors",
    "building:levels": "floors",
    "floor": "floors",
    "用途": "use",
    "建筑用途": "use",
    "房屋用途": "use",
    "yt": "use",
    "小区": "compound",
    "所属小区": "compound",
    # codes
    "社区代码": "community_code",
    "社区编码": "community_code",
    "居委会代码": "community_code",
    "村居代码": "community_code",
    "sqdm": "community_code",
    "街道代码": "street_code",
    "街道编码": "street_code",
    "乡镇街道代码": "street_code",
    "jddm": "street_code",
    "网格代码": "grid_code",
    "网格编码": "grid_code",
    "网格编号": "grid_code",
    "wgbm": "grid_code",
    "城乡分类代码": "urban_rural_class",
    "城乡分类": "urban_rural_class",
    # facilities, roads, green, institutions
    "类别": "category",
    "设施类别": "category",
    "设施类型": "category",
    "分类": "category",
    "道路等级": "road_class",
    "等级": "road_class",
    "dldj": "road_class",
    "道路名称": "name",
    "路名": "name",
    "建筑面积": "floor_area_m2",
    "建筑面积m2": "floor_area_m2",
    "面积": "floor_area_m2",
    "jzmj": "floor_area_m2",
    "职工数": "staff",
    "人数": "staff",
    "床位数": "staff",
    "学生数": "staff",
    # addresses and staff
    "道路": "road",
    "街路巷": "road",
    "门牌号": "number",
    "门牌": "number",
    "楼栋号": "building_no",
    "楼号": "building_no",
    "幢号": "building_no",
    "单元": "unit",
    "单元号": "unit",
    "角色": "role",
    "岗位": "role",
    "职务": "role",
    "电话": "phone",
    "手机": "phone",
    "联系电话": "phone",
    "手机号": "phone",
    # keys
    "建筑编号": "building_id",
    "楼栋编号": "building_id",
    "房屋编号": "building_id",
    "设施编号": "facility_id",
    "道路编号": "road_id",
    "绿地编号": "green_id",
    "地址编号": "address_id",
    "单位编号": "unit_id",
    "人员编号": "staff_id",
}

#: Aliases whose meaning depends on the layer.
LAYER_ALIASES: dict[str, dict[str, str]] = {
    "addresses": {
        "地址": "text",
        "标准地址": "text",
        "address": "text",
        "dz": "text",
        "名称": "name",
    },
    "facilities": {"地址": "address", "dz": "address", "类型": "category", "type": "category"},
    "green_spaces": {"类型": "kind", "类别": "kind", "type": "kind"},
    "institutions": {"类型": "kind", "类别": "kind", "单位类型": "kind", "type": "kind"},
    "buildings": {"类型": "use", "性质": "use", "id": "building_id"},
    "roads": {"类型": "road_class", "highway": "road_class", "class": "road_class"},
    "staff": {"id": "staff_id"},
    "communities": {
        "代码": "community_code",
        "区划代码": "community_code",
        "统计用区划代码": "community_code",
        "code": "community_code",
        "社区名称": "name",
        "居委会名称": "name",
    },
    "streets": {
        "代码": "street_code",
        "区划代码": "street_code",
        "code": "street_code",
        "街道名称": "name",
    },
}

#: Chinese labels (and common synonyms) of controlled values, per field.
VALUE_ALIASES: dict[str, dict[str, str]] = {
    "category": {v: k for k, v in L.FACILITY_CATEGORIES.items()}
    | {
        "托儿所": "nursery",
        "托育": "nursery",
        "菜场": "vegetable_market",
        "农贸市场": "vegetable_market",
        "便利店": "retail",
        "超市": "retail",
        "养老院": "elderly_care_home",
        "敬老院": "elderly_care_home",
        "日间照料中心": "elderly_daycare",
        "社区卫生服务站": "health_station",
        "卫生服务站": "health_station",
        "卫生室": "health_station",
        "社区卫生服务中心": "health_centre",
        "社区服务站": "community_service_station",
        "居委会": "community_office",
        "社区居委会": "community_office",
        "运动场": "sports_ground",
        "健身场地": "sports_ground",
        "快递柜": "parcel_locker",
        "快递驿站": "parcel_locker",
        "驿站": "parcel_locker",
        "警务室": "police_station",
        "派出所": "police_station",
        "药店": "pharmacy",
        "药房": "pharmacy",
        "公交站": "bus_stop",
        "公交车站": "bus_stop",
        "餐馆": "restaurant",
        "餐厅": "restaurant",
        "早餐店": "breakfast",
        "早点": "breakfast",
        "家政": "housekeeping",
    },
    "road_class": {v: k for k, v in L.ROAD_CLASSES.items()}
    | {
        "快速路": "arterial",
        "主干道": "arterial",
        "次干道": "secondary",
        "支路": "branch",
        "小区路": "path",
        "步行道": "path",
        "人行道": "path",
    },
    "use": {v: k for k, v in L.BUILDING_USES.items()}
    | {
        "住宅楼": "residential",
        "居住": "residential",
        "商住": "residential",
        "商铺": "commercial",
        "写字楼": "office",
        "厂房": "industrial",
    },
    "kind": (
        {v: k for k, v in L.GREEN_KINDS.items()}
        | {v: k for k, v in L.INSTITUTION_KINDS.items()}
        | {
            "游园": "green",
            "口袋公园": "green",
            "街头绿地": "green",
            "大学": "university",
            "中学": "school",
            "小学": "school",
            "幼儿园": "school",
            "企业": "factory",
        }
    ),
}


#: Amap (高德) POI types, "大类;中类;小类" (several joined by "|"): the most specific
#: segment found here gives the category.
AMAP_CATEGORY: dict[str, str] = {
    "幼儿园": "kindergarten",
    "托儿所": "nursery",
    "小学": "primary_school",
    "中学": "middle_school",
    "公交车站": "bus_stop",
    "公交车站相关": "bus_stop",
    "诊所": "health_station",
    "卫生院": "health_centre",
    "社区卫生服务中心": "health_centre",
    "综合医院": "hospital",
    "专科医院": "hospital",
    "三级甲等医院": "hospital",
    "医药保健销售店": "pharmacy",
    "药房": "pharmacy",
    "药店": "pharmacy",
    "餐饮服务": "restaurant",
    "中餐厅": "restaurant",
    "外国餐厅": "restaurant",
    "快餐厅": "restaurant",
    "餐饮相关场所": "restaurant",
    "早餐": "breakfast",
    "超级市场": "retail",
    "超市": "retail",
    "便民商店/便利店": "retail",
    "便利店": "retail",
    "综合市场": "vegetable_market",
    "农副产品市场": "vegetable_market",
    "菜市场": "vegetable_market",
    "银行": "bank",
    "物流速递": "parcel_locker",
    "快递服务": "parcel_locker",
    "自提点": "parcel_locker",
    "家政服务": "housekeeping",
    "运动场馆": "sports_ground",
    "综合体育馆": "sports_ground",
    "健身中心": "sports_ground",
    "公园": "park",
    "公安警察": "police_station",
    "派出所": "police_station",
    "社区中心": "community_service_station",
    "居委会": "community_office",
    "养老院": "elderly_care_home",
    "老年公寓": "elderly_care_home",
}


def amap_category(text: str) -> str | None:
    """The facility category of an Amap POI type such as '科教文化服务;学校;小学'."""
    for alternative in text.split("|"):
        for segment in reversed(alternative.split(";")):
            cat = AMAP_CATEGORY.get(segment.strip())
            if cat is not None:
                return cat
    return None


def parse_field_map(text: str | None) -> dict[str, str]:
    """Parse ``"households=HH_NUM,name=MC"`` into ``{"households": "HH_NUM", ...}``.

    Raises
    ------
    ValueError
        When an item is not ``canonical=source``.
    """
    out: dict[str, str] = {}
    if not text:
        return out
    for item in re.split(r"[,，;]", text):
        if not item.strip():
            continue
        canonical, sep, source = item.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise ValueError(f"field map {item!r}: use canonical=source, e.g. households=HH_NUM")
        out[canonical.strip()] = source.strip()
    return out


def apply_field_map(
    frame: pd.DataFrame, layer: str, field_map: dict[str, str] | None, where: str, notes: list[str]
) -> pd.DataFrame:
    """Rename source fields to canonical ones: ``field_map`` (canonical -> source) first,
    then case-insensitive canonical names, then the alias tables. Never overwrites a field
    that is already present; renames done by alias are reported in ``notes``.

    Raises
    ------
    ReadError
        When ``field_map`` names a source field the file does not have.
    """
    geom_col = getattr(frame, "_geometry_column_name", None)
    columns = [c for c in frame.columns if c != geom_col]
    rename: dict[str, str] = {}
    for canonical, source in (field_map or {}).items():
        match = [c for c in columns if str(c) == source] or [
            c for c in columns if str(c).lower() == source.lower()
        ]
        if not match:
            raise ReadError(
                f"{where}: field map {canonical}={source}: no field '{source}' "
                f"(fields: {', '.join(map(str, columns))})"
            )
        rename[match[0]] = canonical
    spec = L.SCHEMA.get(layer)
    known = set(spec.fields) if spec else set()
    taken = set(rename.values()) | {c for c in columns if c in known}
    aliases = COMMON_ALIASES | LAYER_ALIASES.get(layer, {})
    by_alias = []
    for col in columns:
        if col in rename or col in known:
            continue
        key = str(col).strip().lower()
        target = key if key in known else aliases.get(key)
        if target is None or target not in known or target in taken:
            continue
        rename[col] = target
        taken.add(target)
        if key != target:
            by_alias.append(f"{col}→{target}")
    if by_alias:
        notes.append(
            f"{where}: fields renamed by the built-in alias table: "
            f"{', '.join(by_alias)} (override with the field_map parameter)"
        )
    out = frame.rename(columns=rename)
    return map_values(out, layer, where, notes)


def map_values(frame: pd.DataFrame, layer: str, where: str, notes: list[str]) -> pd.DataFrame:
    """Translate Chinese labels of controlled values (住宅, 主干路, 幼儿园…) to canonical codes
    and canonical codes written in another case ('Residential') to lower case."""
    spec = L.SCHEMA.get(layer)
    if spec is None:
        return frame
    for name, f in spec.fields.items():
        if not f.choices or name not in frame.columns:
            continue
        table = VALUE_ALIASES.get(name, {}) | {c.lower(): c for c in f.choices}
        col = frame[name]
        text = col.astype("string").str.strip()
        amap = name == "category"

        def lookup(v, t=table, amap=amap):
            if not isinstance(v, str):
                return v
            hit = t.get(v, t.get(v.lower()))
            if hit is None and amap and ";" in v:
                hit = amap_category(v)
            return v if hit is None else hit

        mapped = text.map(lookup)
        changed = int((mapped != text).fillna(False).sum())
        if changed:
            notes.append(
                f"{where}: {changed} values of '{name}' translated to canonical "
                f"codes (e.g. {text[mapped != text].iloc[0]}→"
                f"{mapped[mapped != text].iloc[0]})"
            )
            frame = frame.copy()
            frame[name] = mapped.where(col.notna(), col)
    return frame


# --------------------------------------------------------------------------------------
# Layer names
# --------------------------------------------------------------------------------------

#: Words in file or layer names that identify a canonical layer.
LAYER_WORDS: dict[str, tuple[str, ...]] = {
    "streets": ("streets", "street", "subdistrict", "subdistricts", "jiedao", "街道", "乡镇"),
    "communities": ("communities", "community", "shequ", "社区", "居委会", "村居"),
    "buildings": (
        "buildings",
        "building",
        "bldg",
        "jianzhu",
        "fangwu",
        "建筑",
        "房屋",
        "楼栋",
        "楼宇",
    ),
    "roads": ("roads", "road", "daolu", "lu", "道路", "路网"),
    "facilities": ("facilities", "facility", "poi", "pois", "sheshi", "设施", "配套"),
    "green_spaces": ("green_spaces", "green", "greens", "parks", "park", "lvdi", "绿地", "公园"),
    "addresses": ("addresses", "address", "dizhi", "地址", "门牌"),
    "institutions": ("institutions", "institution", "units", "danwei", "单位"),
    "staff": ("staff", "people", "网格员", "人员"),
}


def infer_layer(*names: str) -> str | None:
    """The canonical layer a file or layer name points to, or None when not obvious.

    A name matches a layer when one of its words (split on non-letters) is a known word
    of that layer, or it contains a Chinese word of the layer. When names point to two
    different layers the answer is None (ambiguous).
    """
    found: set[str] = set()
    for name in names:
        if not name:
            continue
        low = name.lower()
        if low in L.SCHEMA:
            return low
        words = set(re.split(r"[^a-z_]+", low)) | set(re.split(r"[^a-z]+", low))
        for layer, keys in LAYER_WORDS.items():
            for k in keys:
                if (k.isascii() and k in words) or (not k.isascii() and k in name):
                    found.add(layer)
    return found.pop() if len(found) == 1 else None
