"""Field names and values as they arrive in planners' files, mapped to the canonical schema.

Real files use Chinese or abbreviated field names (户数, HH_NUM, MC) and Chinese values
(住宅, 主干路, 幼儿园). This module renames fields (explicit ``field_map`` first, then a
built-in alias table), translates Chinese labels of controlled values to their canonical
codes, and infers the canonical layer from a file or layer name where that is obvious.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
        "诊所": "clinic",
        "门诊部": "clinic",
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


@dataclass(frozen=True)
class PoiType:
    """One row of :data:`POI_TYPES`: a POI type of a map provider and its category."""

    source: str  # "amap" (高德) or "baidu" (百度)
    name: str  # the type's name as the provider writes it (one segment of "大类;中类;小类")
    category: str  # a key of gridgis.layers.FACILITY_CATEGORIES
    code: str = ""  # Amap typecode (6 digits, "XXYY00" = a 中类), when known
    why: str = ""


#: THE table from the map providers' own POI type systems to the controlled facility
#: categories. Amap (高德) writes a type as "大类;中类;小类" (several joined by "|"), e.g.
#: "医疗保健服务;诊所;诊所", with a 6-digit typecode (090300); Baidu as "一级;二级", e.g.
#: "医疗;诊所". The most specific segment found here decides (:func:`poi_category`).
#:
#: Rules: a type maps to the category it IS, never to a neighbour that would count for a
#: norm it does not meet. Private clinics (诊所) are ``clinic`` (门诊部/诊所 of the
#: 15-minute life circle, GB 50180-2018 table B.0.1), never ``health_station`` (社区卫生服务站,
#: a public facility with its own standard): 1,643 Shanghai clinics would otherwise
#: inflate community health coverage. Dental (口腔医院) and cosmetic (整形美容) hospitals,
#: disease-control (疾病预防) and emergency (急救中心) centres and veterinary places are not
#: facilities of the life circle or of GB 50180's residential list: ``other``, kept and
#: counted, with the provider's type in the ``source_type`` field saying what they are.
#: 卫生院 (township health centre) is the rural counterpart of the community health
#: service centre (国家卫健委 基层医疗卫生机构): ``health_centre``.
POI_TYPES: tuple[PoiType, ...] = (
    # education
    PoiType("amap", "幼儿园", "kindergarten", "141204"),
    PoiType("amap", "托儿所", "nursery"),
    PoiType("amap", "小学", "primary_school", "141203"),
    PoiType("amap", "中学", "middle_school", "141202"),
    PoiType("amap", "高等院校", "other", "141201", "universities are institutions"),
    PoiType("amap", "成人教育", "other", "141205"),
    PoiType("amap", "职业技术学校", "other", "141206"),
    PoiType("baidu", "幼儿园", "kindergarten"),
    PoiType("baidu", "小学", "primary_school"),
    PoiType("baidu", "中学", "middle_school"),
    # health
    PoiType("amap", "综合医院", "hospital", "090100"),
    PoiType("amap", "三级甲等医院", "hospital", "090101"),
    PoiType("amap", "卫生院", "health_centre", "090102"),
    PoiType("amap", "专科医院", "hospital", "090200"),
    PoiType("amap", "口腔医院", "other", "", "dental: not a general hospital"),
    PoiType("amap", "整形美容", "other", "", "cosmetic surgery: not a general hospital"),
    PoiType("amap", "诊所", "clinic", "090300", "private clinics, not 社区卫生服务站"),
    PoiType("amap", "急救中心", "other", "090400", "emergency centre (city level)"),
    PoiType("amap", "疾病预防", "other", "090500", "disease control (city level)"),
    PoiType("amap", "疾病预防机构", "other", "090500", "disease control (city level)"),
    PoiType("amap", "医药保健销售店", "pharmacy", "090600"),
    PoiType("amap", "药房", "pharmacy", "090601"),
    PoiType("amap", "动物医疗场所", "other", "090700", "veterinary"),
    PoiType("amap", "宠物诊所", "other", "", "veterinary"),
    PoiType("amap", "兽医站", "other", "", "veterinary"),
    PoiType("amap", "社区卫生服务中心", "health_centre"),
    PoiType("amap", "医疗保健服务", "other", "090000", "other health types: never upgraded"),
    PoiType("baidu", "综合医院", "hospital"),
    PoiType("baidu", "专科医院", "hospital"),
    PoiType("baidu", "诊所", "clinic"),
    PoiType("baidu", "药店", "pharmacy"),
    PoiType("baidu", "疾控中心", "other"),
    PoiType("baidu", "急救中心", "other"),
    PoiType("baidu", "体检机构", "other"),
    # transport
    PoiType("amap", "公交车站", "bus_stop", "150700"),
    PoiType("amap", "公交车站相关", "bus_stop", "150700"),
    PoiType("amap", "地铁站", "other", "150500", "metro station"),
    PoiType("baidu", "公交车站", "bus_stop"),
    # shopping and daily life
    PoiType("amap", "超级市场", "retail", "060400"),
    PoiType("amap", "超市", "retail"),
    PoiType("amap", "便民商店/便利店", "retail", "060200"),
    PoiType("amap", "便利店", "retail"),
    PoiType("amap", "综合市场", "vegetable_market", "060700"),
    PoiType("amap", "农副产品市场", "vegetable_market"),
    PoiType("amap", "菜市场", "vegetable_market"),
    PoiType("amap", "物流速递", "parcel_locker", "070500"),
    PoiType("amap", "快递服务", "parcel_locker"),
    PoiType("amap", "自提点", "parcel_locker"),
    PoiType("amap", "家政服务", "housekeeping"),
    PoiType("amap", "银行", "bank", "160100"),
    PoiType("baidu", "超市", "retail"),
    PoiType("baidu", "便利店", "retail"),
    PoiType("baidu", "市场", "vegetable_market"),
    PoiType("baidu", "银行", "bank"),
    PoiType("baidu", "家政服务", "housekeeping"),
    PoiType("baidu", "快递", "parcel_locker"),
    # food
    PoiType("amap", "餐饮服务", "restaurant", "050000"),
    PoiType("amap", "中餐厅", "restaurant", "050100"),
    PoiType("amap", "外国餐厅", "restaurant", "050200"),
    PoiType("amap", "快餐厅", "restaurant", "050300"),
    PoiType("amap", "餐饮相关场所", "restaurant"),
    PoiType("amap", "早餐", "breakfast"),
    PoiType("baidu", "中餐厅", "restaurant"),
    PoiType("baidu", "快餐店", "restaurant"),
    # sport, parks, public order, community
    PoiType("amap", "运动场馆", "sports_ground", "080100"),
    PoiType("amap", "综合体育馆", "sports_ground"),
    PoiType("amap", "健身中心", "sports_ground"),
    PoiType("amap", "公园", "park", "110101"),
    PoiType("amap", "公安警察", "police_station", "130501"),
    PoiType("amap", "派出所", "police_station"),
    PoiType("amap", "社区中心", "community_service_station"),
    PoiType("amap", "居委会", "community_office"),
    PoiType("amap", "养老院", "elderly_care_home"),
    PoiType("amap", "老年公寓", "elderly_care_home"),
    PoiType("baidu", "体育场馆", "sports_ground"),
    PoiType("baidu", "公园", "park"),
    PoiType("baidu", "公检法机构", "police_station"),
    PoiType("baidu", "养老院", "elderly_care_home"),
)

#: Segment name -> category (Amap and Baidu names agree where both are listed).
POI_TYPE_NAMES: dict[str, str] = {t.name: t.category for t in POI_TYPES}
#: Amap typecode -> category.
POI_TYPE_CODES: dict[str, str] = {t.code: t.category for t in POI_TYPES if t.code}

#: Kept for callers of the former name.
AMAP_CATEGORY = POI_TYPE_NAMES


def poi_category(text: str) -> str | None:
    """The facility category of a provider's POI type ('科教文化服务;学校;小学', '医疗;诊所')
    or Amap typecode ('141203'), from :data:`POI_TYPES`; None when not listed.

    Of several alternatives ("a|b") the first one listed decides; within one, the most
    specific segment found."""
    text = text.strip()
    if text.isdigit() and len(text) == 6:
        return POI_TYPE_CODES.get(text) or POI_TYPE_CODES.get(text[:4] + "00")
    for alternative in text.split("|"):
        for segment in reversed(alternative.split(";")):
            cat = POI_TYPE_NAMES.get(segment.strip())
            if cat is not None:
                return cat
    return None


amap_category = poi_category


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
    and canonical codes written in another case ('Residential') to lower case. Facility
    categories written as a provider's POI type ('医疗保健服务;诊所;诊所', '141204') are
    mapped by :data:`POI_TYPES`; the original type is kept in the field ``source_type``
    and the categories it gave are counted in ``notes``."""
    spec = L.SCHEMA.get(layer)
    if spec is None:
        return frame
    for name, f in spec.fields.items():
        if not f.choices or name not in frame.columns:
            continue
        table = VALUE_ALIASES.get(name, {}) | {c.lower(): c for c in f.choices}
        col = frame[name]
        text = col.astype("string").str.strip()
        poi = name == "category"

        def lookup(v, t=table, poi=poi):
            if not isinstance(v, str):
                return v
            hit = t.get(v, t.get(v.lower()))
            if hit is None and poi and (";" in v or v.isdigit()):
                hit = poi_category(v)
            return v if hit is None else hit

        unique = text.dropna().unique()
        mapped = text.map(dict(zip(unique, map(lookup, unique), strict=True)))
        changed = (mapped != text).fillna(False)
        if changed.any():
            frame = frame.copy()
            frame[name] = mapped.where(col.notna(), col)
            if poi:
                _note_poi_types(frame, text, changed, where, notes)
            else:
                notes.append(
                    f"{where}: {int(changed.sum())} values of '{name}' translated to "
                    f"canonical codes (e.g. {text[changed].iloc[0]}→{mapped[changed].iloc[0]})"
                )
    return frame


def _note_poi_types(
    frame: pd.DataFrame, text: pd.Series, changed: pd.Series, where: str, notes: list[str]
) -> None:
    """Keep a translated category's original text in ``source_type`` and count the
    categories given."""
    if "source_type" not in frame.columns:
        frame["source_type"] = text.where(changed, pd.NA)
    counts = frame.loc[changed, "category"].value_counts()
    parts = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    notes.append(
        f"{where}: {int(changed.sum()):,} categories translated (Chinese labels or POI "
        f"types by the documented table gridgis.io.fields.POI_TYPES): {parts}"
    )


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


def _facility_kind_words() -> dict[str, str]:
    """Words naming a facility kind of the controlled list in a file name: each Chinese
    label and its parts (幼儿园, 小学, 托儿所, 托育 …), the common Chinese synonyms, and the
    English category names (kindergarten, kindergartens, primary_school …). Words that
    name another layer (公园: green spaces) or that are too general (其他, other) are left
    out."""
    words: dict[str, str] = {}
    for cat, label in L.FACILITY_CATEGORIES.items():
        if cat in ("other", "park"):
            continue
        for part in re.split(r"[/()（）]", label):
            if len(part) >= 2:
                words.setdefault(part, cat)
        words.setdefault(cat, cat)
        words.setdefault(cat + "s", cat)
        words.setdefault(cat.replace("_", ""), cat)
    for alias, cat in VALUE_ALIASES["category"].items():
        if cat not in ("other", "park") and len(alias) >= 2 and not alias.isascii():
            words.setdefault(alias, cat)
    words.pop("驿站", None)  # too general (also a courier chain's name)
    return words


#: Facility kind named by a file name: word -> category (see :func:`facility_kind`).
FACILITY_KIND_WORDS: dict[str, str] = _facility_kind_words()


def facility_kind(name: str) -> str | None:
    """The facility category a file or layer name names (幼儿园.csv → kindergarten,
    primary_schools.geojson → primary_school), or None. The longest word found wins."""
    low = name.lower()
    ascii_words = set(re.split(r"[^a-z_]+", low)) | set(re.split(r"[^a-z]+", low))
    found = [
        (len(w), cat)
        for w, cat in FACILITY_KIND_WORDS.items()
        if (w.isascii() and w in ascii_words) or (not w.isascii() and w in name)
    ]
    return max(found)[1] if found else None


def infer_layer(*names: str) -> str | None:
    """The canonical layer a file or layer name points to, or None when not obvious.

    A name matches a layer when one of its words (split on non-letters) is a known word
    of that layer, or it contains a Chinese word of the layer; a name naming a facility
    kind (幼儿园.csv, kindergartens.geojson) is a facilities layer. A word inside a longer
    matched word does not count (社区 in 社区卫生服务站). When names point to two different
    layers the answer is None (ambiguous).
    """
    found: set[str] = set()
    for name in names:
        if not name:
            continue
        low = name.lower()
        if low in L.SCHEMA:
            return low
        words = set(re.split(r"[^a-z_]+", low)) | set(re.split(r"[^a-z]+", low))
        hits: list[tuple[str, str]] = []  # (word, layer)
        for layer, keys in LAYER_WORDS.items():
            for k in keys:
                if (k.isascii() and k in words) or (not k.isascii() and k in name):
                    hits.append((k, layer))
        kind = next(
            (
                w
                for w in sorted(FACILITY_KIND_WORDS, key=len, reverse=True)
                if (w.isascii() and w in words) or (not w.isascii() and w in name)
            ),
            None,
        )
        if kind is not None:
            hits.append((kind, "facilities"))
        found |= {layer for w, layer in hits if not any(w != o and w in o for o, _ in hits)}
    return found.pop() if len(found) == 1 else None
