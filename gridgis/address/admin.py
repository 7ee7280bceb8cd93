"""Administrative prefixes: province, city, district, town/street, community.

An address usually starts with some of them (上海市闵行区江川路街道…); they are
recorded and removed before the road and the rest are read. The deployment's own city
and district (``settings.address.city`` / ``district``) are recognised even without
their suffix (上海 for 上海市).
"""

from __future__ import annotations

import re

from gridgis.address.components import ParsedAddress
from gridgis.standards import Settings

PROVINCES = (
    "北京",
    "天津",
    "上海",
    "重庆",
    "河北",
    "山西",
    "辽宁",
    "吉林",
    "黑龙江",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "海南",
    "四川",
    "贵州",
    "云南",
    "陕西",
    "甘肃",
    "青海",
    "台湾",
    "内蒙古",
    "广西",
    "西藏",
    "宁夏",
    "新疆",
    "香港",
    "澳门",
)
HAN = r"\u4e00-\u9fff"
# A province's short name (浙江, 上海) counts only when a city or district follows, so that
# 四川中路, 重庆南路, 江西南路, 上海大剧院 keep their names.
RE_PROVINCE = re.compile(
    rf"^(?:[{HAN}]{{2,7}}?(?:省|自治区)|(?:{'|'.join(PROVINCES)})"
    rf"(?:(?:省|市|自治区|特别行政区)(?![路街道巷弄里])"
    rf"|(?=[{HAN}]{{1,6}}?(?:市|州|盟|地区|新区|区|县)(?![路街道巷弄里]))))"
)
RE_CITY = re.compile(rf"^[{HAN}]{{2,7}}?(?:市|自治州|地区|盟)(?![路街道巷场心])")
RE_DISTRICT = re.compile(
    rf"^[{HAN}]{{1,6}}?(?:新区|(?<![小园业发景校社片街商学营矿库])区|县|旗|市)"
    rf"(?![路街道巷]|政府)"
)
RE_TOWN = re.compile(rf"^[{HAN}]{{1,6}}?(?:街道办事处|街道办|街道|镇|乡)(?![路街道巷弄里口])")
RE_COMMUNITY = re.compile(
    rf"^[{HAN}\d]{{1,6}}?(?:社区居委会|社区|居委会|村委会|居民委员会|(?<!新)村)"
    # not when the 村 names a road (中关村南大街, 魏公村路): then it is part of the road
    rf"(?![路街道巷弄里小民委口]|[东西南北中](?:大街|大道|路|街|巷)"
    rf"|[东西南北中]?[一二三四五六七八九十]+条)"
)

#: The prefix patterns, tried in this order once each (district and town twice: 浦东新区
#: 张江高科技园区, 镇 + 街道).
PREFIX_STEPS = (
    ("province", RE_PROVINCE),
    ("city", RE_CITY),
    ("district", RE_DISTRICT),
    ("district", RE_DISTRICT),
    ("town", RE_TOWN),
    ("town", RE_TOWN),
    ("community", RE_COMMUNITY),
)


#: One leading administrative name: a province, a city or a district-level unit.
RE_ADMIN_TOKEN = re.compile(
    rf"^[{HAN}]{{1,6}}?(?:特别行政区|自治区|自治州|省|市|新区|区|县|旗)(?![路街道巷弄里场心]|政府)"
)


def _admin_rank(token: str) -> int:
    if token.endswith(("省", "自治区", "特别行政区")):
        return 0
    if token.endswith(("市", "自治州")):
        return 1
    return 2


def reorder_admin(s: str) -> str:
    """Leading administrative names in the usual order, each once: 闵行区上海市X →
    上海市闵行区X, 上海市上海市闵行区X → 上海市闵行区X (people write the district first or
    repeat the city; a province or city swallowed as part of a district's name would hide
    both). Only the leading names move; the rest of the text is untouched."""
    tokens: list[str] = []
    rest = s
    while len(tokens) < 5:
        m = RE_ADMIN_TOKEN.match(rest)
        if not m or len(m.group(0)) >= len(rest):
            break
        if len(m.group(0)) < (3 if _admin_rank(m.group(0)) < 2 else 2):
            break  # 都市 of 都市水乡 is a word, not a city
        tokens.append(m.group(0))
        rest = rest[m.end() :]
    if len(tokens) < 2:
        return s
    ranks = [_admin_rank(t) for t in tokens]
    unique = list(dict.fromkeys(tokens))
    if ranks == sorted(ranks) and len(unique) == len(tokens):
        return s
    ordered = sorted(unique, key=_admin_rank)
    return "".join(ordered) + rest


def _strip_configured(s: str, p: ParsedAddress, settings: Settings) -> str:
    """The deployment's city and district, with or without their suffix."""
    rules = settings.address
    for target, name in (("city", rules.city), ("district", rules.district)):
        short = re.sub(r"(市|区|县)$", "", name) if name else ""
        for cand in (name, short):
            if cand and len(cand) >= 2 and s.startswith(cand):
                if getattr(p, target) is None:
                    setattr(p, target, name)
                    p.spans.append((target, cand))
                s = s[len(cand) :]
                break
    return s


def strip_admin(s: str, p: ParsedAddress, settings: Settings) -> str:
    """Record the administrative prefix of ``s`` in ``p`` and return the rest.

    A second district-level name after a district is a development zone or scenic area
    inside it (海湾旅游区, corpus label ``devzone``); a district before any city is the
    city (北京市 read as a district-level 市).
    """
    s = _strip_configured(reorder_admin(s), p, settings)
    for comp, rx in PREFIX_STEPS:
        m = rx.match(s)
        if not m or len(m.group(0)) >= len(s):
            continue
        value = m.group(0)
        if comp == "district" and p.district is not None:
            if p.city is None:
                p.city = p.district
            else:
                p.spans.append(("devzone", value))
                s = s[len(value) :]
                continue
        if getattr(p, comp) is None or comp in ("district", "town"):
            setattr(p, comp, value)
        p.spans.append((comp, value))
        s = s[len(value) :]
        if comp == "province" and value.endswith("市") and p.city is None:
            p.city = value  # 北京市, 上海市: the province is the city
    return s
