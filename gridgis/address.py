"""Chinese addresses: normalisation, parsing into components, and a matching index.

Addresses arrive messy: full-width digits, Chinese numerals (十二栋三单元), 幢/座/号楼 for
栋, 门 for 单元, with or without province/city/district, a compound or POI name instead of
a door plate, parenthesised hints such as (迎勋北路). This module turns one text into

* a **normalised** text (:func:`normalise`): half-width, digits, one word per concept
  (栋 building, 单元 unit, 层 floor, 室 room), no spaces or punctuation, hints set apart;
* **components** (:func:`parse`): province, city, district, town/street, community, road,
  lane (弄), door number (号), compound/POI, building, unit, floor, room;
* a **match** against the standard addresses of a workspace (:class:`AddressIndex`):
  exact normalised key first, then structured fallbacks (road + lane + number;
  compound + building + unit). Names (roads, compounds) are compared fuzzily with
  rapidfuzz; numbers are compared exactly (502室 is not 501室). Below the confidence
  threshold the answer is "no confident match" with candidates, never a confident guess.

Parameters (city, district, thresholds) come from ``settings.address``
(:class:`gridgis.standards.AddressRules`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from gridgis.standards import DEFAULT, Settings

# --------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------

#: Full-width ASCII (U+FF01–FF5E) and the ideographic space to half-width.
_HALF = {i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_HALF |= {
    ord(k): v
    for k, v in {
        "（": "(",
        "）": ")",
        "【": "(",
        "】": ")",
        "〔": "(",
        "〕": ")",
        "［": "(",
        "］": ")",
        "—": "-",
        "–": "-",
        "－": "-",
        "~": "-",
        "～": "-",
        "_": "-",
        "#": "#",
        "＃": "#",
    }.items()
}

#: Traditional forms of the words that structure an address (號 → 号, 樓 → 楼, ...), so
#: an address typed in traditional characters parses and matches like its simplified form.
_TRAD = str.maketrans("號樓棟單層區門東鄉鎮縣園廈場廣莊裡", "号楼栋单层区门东乡镇县园厦场广庄里")

_CN_DIGIT = {
    "零": 0,
    "〇": 0,
    "○": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_CHARS = "零〇○一二两三四五六七八九十百千"

#: What may follow a number: suffixes that make a Chinese numeral a number, not a name.
_NUM_SUFFIX = (
    r"(?:号楼|号院|号|支弄|弄|栋|幢|座|单元|门(?![县峡湾市镇村])|层|楼|室|户|期|区|组|巷|排)"
)

# A run of Chinese numerals directly before a numeric suffix. The run must not continue a
# word that is itself a numeral-name (e.g. 三元里, 四川路, 十里河 are never followed by a
# suffix here, so they stay), and it must not be glued to digits already.
_RE_CN_NUMBER = re.compile(rf"(?<![\d{_CN_CHARS}])([{_CN_CHARS}]{{1,12}})(?={_NUM_SUFFIX})")
# 第 + numeral + suffix (第三栋, 第二单元)
_RE_DI = re.compile(rf"第(\d+)(?={_NUM_SUFFIX})")
_RE_HINT = re.compile(r"\(([^()]*)\)")
#: a space between two numbers separates them like a dash (13 2950室: building 13, room 2950)
_RE_NUM_SPACE = re.compile(r"(?<=[0-9])\s+(?=[0-9])")
_RE_DROP = re.compile(r"[\s,，.。、;；:：'\"“”‘’!！?？*·•/\\|<>《》「」『』]+")
_RE_DASHES = re.compile(r"-{2,}")
#: 一 typed for a dash between digits (153一4, 11一8一646: 一 and - share a key stroke)
_RE_YI_DASH = re.compile(r"(?<=\d)一(?=\d)")
#: a dash between two names only separates them (浙江-杭州-江干区) or ends a number (68-号)
_RE_NAME_DASH = re.compile(r"(?<=[\u4e00-\u9fff])-(?=[\u4e00-\u9fff])|(?<=\d)-(?=号)")
# 撞 and 懂 are pinyin-input slips for 幢/栋 (16撞10号, 94懂8单元)
_RE_BUILDING = re.compile(r"([0-9]+[A-Z]?|[A-Z][0-9]*)(?:号楼|幢|座|#楼|#|号栋|号搂|撞|懂)")
# N门 is a stairwell (单元: 5栋3门, 新村3门); N号门 is one only after a building (5栋3号门),
# elsewhere a gate of a market or compound (义乌国际商贸城79号门, 工业区5号门) and stays
_RE_UNIT = re.compile(r"(\d+)门(?![牌诊面店市口卫岗前外内洞])|(?<=栋)(\d+)号门(?![牌诊面店市口卫])")
_RE_FLOOR = re.compile(r"(-?\d+)(?:楼(?![栋区院盘宇房])|F(?![A-Z])|层)")
_RE_FLOOR_B = re.compile(r"B(\d)(?:层|F)")  # basement floors B1层 → -1层
_RE_ROOM = re.compile(r"(\d+[A-Z]?)(?:房间|房|户)")


def _cn_to_int(s: str) -> int | None:
    """Chinese numeral to int: 十二 → 12, 二十三 → 23, 一〇二 → 102, 两 → 2."""
    if not s:
        return None
    if not any(c in _CN_UNIT for c in s):  # digit by digit: 一〇二 → 102
        return int("".join(str(_CN_DIGIT[c]) for c in s))
    total, current = 0, 0
    for c in s:
        if c in _CN_DIGIT:
            current = _CN_DIGIT[c]
        else:
            unit = _CN_UNIT[c]
            total += (current or 1) * unit
            current = 0
    return total + current


def _cn_sub(m: re.Match) -> str:
    value = _cn_to_int(m.group(1))
    return m.group(0) if value is None else str(value)


def numerals_to_digits(text: str) -> str:
    """Replace Chinese numerals by digits where they are numbers (before 号, 栋, 单元, ...).

    >>> numerals_to_digits("十二栋三单元一〇二室")
    '12栋3单元102室'
    >>> numerals_to_digits("四川路")  # a name, not a number
    '四川路'
    """
    text = _RE_CN_NUMBER.sub(_cn_sub, text)
    return _RE_DI.sub(r"\1", text)


def to_half_width(text: str) -> str:
    """Full-width letters, digits, brackets and spaces to half-width (１２Ａ → 12A)."""
    return text.translate(_HALF)


@dataclass(frozen=True)
class Normalised:
    """A normalised address text and the parenthesised hints taken out of it."""

    text: str
    hints: tuple[str, ...] = ()


def normalise(text: str) -> Normalised:
    """Normalise one address text.

    Steps, in order: full-width → half-width; traditional forms of the address words
    → simplified (號 → 号, 樓 → 楼, 單元 → 单元, 區 → 区, …); upper-case Latin letters; parenthesised
    hints such as ``(迎勋北路)`` set apart; a space between two numbers → ``-`` (13 2950室 →
    13-2950室); other spaces and punctuation removed (``-`` kept, it separates
    building-unit-room); Chinese numerals → digits where a numeric suffix
    follows (十二栋 → 12栋, 一〇二室 → 102室, 二十三号 → 23号, but 四川路, 三元里, 十里河
    stay); 一 typed for a dash between digits (153一4 → 153-4); a dash between two names
    dropped (浙江-杭州 → 浙江杭州); synonyms: 幢/座/号楼/# (and the slips 撞/懂) → 栋,
    门 after a building (a stairwell: 5栋3门) → 单元 while a gate elsewhere (商贸城79号门)
    stays, 楼/F → 层 after a number, 房/户 → 室. 弄 and 号 stay apart (558弄38号).

    Parameters
    ----------
    text
        An address as typed.

    Returns
    -------
    Normalised
        ``text`` (may be empty) and ``hints`` (the bracketed parts, normalised).
    """
    if not isinstance(text, str):
        return Normalised("")
    s = text.translate(_HALF).translate(_TRAD).upper()
    hints: list[str] = []
    if "(" in s:
        for _ in range(3):  # nested brackets, innermost first
            found = _RE_HINT.findall(s)
            if not found:
                break
            hints.extend(h for h in found if h.strip())
            s = _RE_HINT.sub("", s)
        s = s.replace("(", "").replace(")", "")
    s = _RE_NUM_SPACE.sub("-", s)
    s = _RE_DROP.sub("", s)
    s = _RE_YI_DASH.sub("-", s)
    s = _RE_DASHES.sub("-", s).strip("-")
    s = numerals_to_digits(s)
    s = _RE_NAME_DASH.sub("", s)
    s = _RE_BUILDING.sub(r"\1栋", s)
    s = _RE_UNIT.sub(lambda m: (m.group(1) or m.group(2)) + "单元", s)
    s = _RE_FLOOR_B.sub(r"-\1层", s)
    s = _RE_FLOOR.sub(r"\1层", s)
    s = _RE_ROOM.sub(r"\1室", s)
    hints_n = tuple(_RE_DROP.sub("", numerals_to_digits(h)) for h in hints)
    return Normalised(s, tuple(h for h in hints_n if h))


def normalise_name(text: str) -> str:
    """Normalise a compound/POI name for matching: like :func:`normalise` but the text in
    brackets is kept (海底捞火锅(打浦路店) → 海底捞火锅打浦路店: the branch matters)."""
    if not isinstance(text, str):
        return ""
    s = text.translate(_HALF).translate(_TRAD).upper().replace("(", "").replace(")", "")
    return numerals_to_digits(_RE_DROP.sub("", s))


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------

_PROVINCES = (
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
_HAN = r"\u4e00-\u9fff"
# A province's short name (浙江, 上海) counts only when a city or district follows, so that
# 四川中路, 重庆南路, 江西南路, 上海大剧院 keep their names.
_RE_PROVINCE = re.compile(
    rf"^(?:[{_HAN}]{{2,7}}?(?:省|自治区)|(?:{'|'.join(_PROVINCES)})"
    rf"(?:(?:省|市|自治区|特别行政区)(?![路街道巷弄里])"
    rf"|(?=[{_HAN}]{{1,6}}?(?:市|州|盟|地区|新区|区|县)(?![路街道巷弄里]))))"
)
_RE_CITY = re.compile(rf"^[{_HAN}]{{2,7}}?(?:市|自治州|地区|盟)(?![路街道巷场心])")
_RE_DISTRICT = re.compile(
    rf"^[{_HAN}]{{1,6}}?(?:新区|(?<![小园业发景校社片街商学营矿库])区|县|旗|市)"
    rf"(?![路街道巷]|政府)"
)
_RE_TOWN = re.compile(rf"^[{_HAN}]{{1,6}}?(?:街道办事处|街道办|街道|镇|乡)(?![路街道巷弄里口])")
_RE_COMMUNITY = re.compile(
    rf"^[{_HAN}\d]{{1,6}}?(?:社区居委会|社区|居委会|村委会|居民委员会|(?<!新)村)"
    # not when the 村 names a road (中关村南大街, 魏公村路): then it is part of the road
    rf"(?![路街道巷弄里小民委口]|[东西南北中](?:大街|大道|路|街|巷)"
    rf"|[东西南北中]?[一二三四五六七八九十]+条)"
)
# 条 after a numeral is a Beijing lane (东四十条, 中关村北二条)
_ROAD_SUFFIX = (
    r"(?:大道|大街|公路|路|街|巷|胡同|道|(?<![\d])弄|里|段|线|(?<=[一二三四五六七八九十])条)"
)
_RE_ROAD = re.compile(
    rf"[{_HAN}A-Z0-9]{{1,10}}?{_ROAD_SUFFIX}(?:[东南西北中]?[0-9]*段)?"
    rf"(?=[\dA-Z]|$)"
)
_RE_TWO_ROADS = re.compile(
    rf"^([{_HAN}]{{2,8}}?(?:大道|大街|路|街))(?!道)([{_HAN}]{{2,8}}(?:大道|大街|路|街|巷|弄))$"
)
_RE_SECTION = re.compile(r"[东南西北中][0-9]*段$")
# 1层11街, B7区11街: a numbered aisle of a market (a unit), not a road
_RE_NOT_ROAD = re.compile(r"层|^[\dA-Z]+街$|[区场城期][\dA-Z]+街$")
_RE_ROAD_ANY = re.compile(rf"[{_HAN}A-Z0-9]{{1,8}}?(?:大道|大街|公路|路|街|胡同)")
_RE_LANE_DOOR = re.compile(r"-?\d+号(?!楼|院|门|厂房|库|馆)")
# Tokens of the part after the road. ``hwy``: a numbered highway (320国道) is a road.
# ``gate``: numbered gates, workshops and halls (5号门, 1号厂房, 4号馆) and product codes
# (4S店, 3D打印) are parts of names, not numbers.
# A door number may carry a prefix right after its road: 甲3号, 乙12号 (Beijing: a plate
# added next to 3号), 附55号 (an annex) – part of the number, not a name.
_RE_TOKEN = re.compile(
    r"(?P<hwy>[A-Z]?\d+(?:国道|省道|县道))"
    r"|(?P<gate>\d+号(?:门(?![牌诊面店市口卫])|厂房|库|馆)"
    r"|(?<![\dA-Z])\d[A-Z](?![栋单室楼层号座幢区期])(?=[\u4e00-\u9fff]))"
    r"|(?P<num>(?:^[甲乙丙丁附](?=\d+号))?[A-Z]?\d+(?:-(?:[A-Z]?\d+[A-Z]?|[A-Z](?=-\d)))*[A-Z]?"
    r"|[A-Z](?:-\d+[A-Z]?)+|[A-Z](?=栋|单元|区))"
    r"(?P<suf>支弄|弄|号|栋|单元|层|室|区|期|组|巷|排|院|街|米|队|社(?!区))?"
    r"|(?P<sep>-)"
    r"|(?P<txt>[^\dA-Z-]+|[A-Z]+)"
)

#: A name ending like this is a compound, market or building complex: a 号 after it
#: numbers a building or stall inside, not a door plate on a road.
_COMPOUND_END = re.compile(r"(?:区|园|苑|场|城|期|楼|厦|心|寓|庭|府|湾|坊|座|栋|院|[A-Z])$")

#: A market, mall or office tower: a 号 after it numbers a stall, shop or office.
_RE_ROAD_END = re.compile(r"(?:路|街|道|巷|弄)$")
_MARKET_END = re.compile(r"(?:市场|商城|城|广场|大厦|中心)$")

#: Component names, in address order.
COMPONENTS = (
    "province",
    "city",
    "district",
    "town",
    "community",
    "road",
    "lane",
    "number",
    "poi",
    "building",
    "unit",
    "floor",
    "room",
)


@dataclass
class ParsedAddress:
    """An address split into components (normalised texts; ``None`` where absent).

    ``rest`` is the normalised text with the administrative prefix (province, city,
    district, town, community) removed: the exact-match key. ``spans`` lists
    ``(label, text)`` in order with the labels of the Chinese address parsing corpus
    (road, roadno, poi, houseno, cellno, floorno, roomno, ...), for evaluation.
    """

    text: str
    rest: str = ""
    hints: tuple[str, ...] = ()
    province: str | None = None
    city: str | None = None
    district: str | None = None
    town: str | None = None
    community: str | None = None
    road: str | None = None
    lane: str | None = None
    number: str | None = None
    poi: str | None = None
    building: str | None = None
    unit: str | None = None
    floor: str | None = None
    room: str | None = None
    spans: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, str | None]:
        """Components as a plain dict (JSON-serialisable)."""
        return {c: getattr(self, c) for c in COMPONENTS}


def _strip_admin(s: str, p: ParsedAddress, settings: Settings) -> str:
    rules = settings.address
    for name in (rules.city, rules.district):
        short = re.sub(r"(市|区|县)$", "", name) if name else ""
        for cand in (name, short):
            if cand and len(cand) >= 2 and s.startswith(cand):
                target = "city" if name == rules.city else "district"
                if getattr(p, target) is None:
                    setattr(p, target, name)
                    p.spans.append((target, cand))
                s = s[len(cand) :]
                break
    for comp, rx in (
        ("province", _RE_PROVINCE),
        ("city", _RE_CITY),
        ("district", _RE_DISTRICT),
        ("district", _RE_DISTRICT),
        ("town", _RE_TOWN),
        ("town", _RE_TOWN),
        ("community", _RE_COMMUNITY),
    ):
        m = rx.match(s)
        if not m or len(m.group(0)) >= len(s):
            continue
        value = m.group(0)
        if comp == "district" and p.district is not None:
            if p.city is None:
                p.city = p.district
            else:
                # a development zone or scenic area inside the district (海湾旅游区)
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


def _split_pair(num: str) -> tuple[str, str] | None:
    """ "82-11" → ("82", "11") when the second part is a sub-number; None for a range
    ("389-399") or anything else."""
    parts = num.split("-")
    if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    a, b = int(parts[0]), int(parts[1])
    return None if b > a else (parts[0], parts[1])


def _is_range(a: str, b: str) -> bool:
    """ "2311"-"2312", "A123"-"124": consecutive shop or door numbers of the same length
    (a range), not building-room."""
    a, b = a.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), b.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return a.isdigit() and b.isdigit() and len(a) == len(b) >= 2 and 0 < int(b) - int(a) <= 20


#: Number suffixes that name the address part on their own: suffix -> (part, corpus label).
_SUFFIX_PART = {"单元": ("unit", "cellno"), "层": ("floor", "floorno"), "室": ("room", "roomno")}


def parse(text: str, settings: Settings = DEFAULT) -> ParsedAddress:
    """Parse one address into components.

    Parameters
    ----------
    text
        An address as typed (normalised here with :func:`normalise`).
    settings
        ``settings.address.city`` / ``district`` are recognised as prefixes even without
        their suffix (上海 for 上海市).

    Returns
    -------
    ParsedAddress
        Normalised components. Numbers keep their suffix (``38号``, ``558弄``, ``12栋``,
        ``3单元``, ``5层``, ``502室``).

    Examples
    --------
    >>> p = parse("上海市闵行区报春路558弄38号")
    >>> (p.district, p.road, p.lane, p.number)
    ('闵行区', '报春路', '558弄', '38号')
    """
    norm = normalise(text)
    p = ParsedAddress(text=norm.text, hints=norm.hints)
    s = _strip_admin(norm.text, p, settings)
    p.rest = s
    spans = p.spans
    # road: the first road name followed by a number (or at the end); else any road name
    m = next((r for r in _RE_ROAD.finditer(s) if not _RE_NOT_ROAD.search(r.group(0))), None)
    if m is None:
        m2 = _RE_ROAD_ANY.search(s)
        m = (
            m2
            if (m2 and m2.start() == 0 and m2.end() < len(s) and not s[m2.end()].isdigit())
            else None
        )
    head, tail = (s[: m.start()], s[m.end() :]) if m else ("", s)
    if m:
        if head:
            p.poi = head
            spans.append(("poi", head))
        road = m.group(0)
        two = _RE_TWO_ROADS.match(road)
        if two:
            # 金城路金莱街926号: a street off a road; the number belongs to the second
            spans.append(("road", two.group(1)))
            spans.append(("subroad", two.group(2)))
            p.road = two.group(2)
        else:
            sec = _RE_SECTION.search(road)
            if sec and sec.start() >= 2:
                # 环城北路东段1823号: a section of the road (road + subroad in TRAIN)
                spans.append(("road", road[: sec.start()]))
                spans.append(("subroad", sec.group(0)))
                two = True
            else:
                spans.append(("road", road))
            p.road = road
    _parse_tail(tail, p, after_road=m is not None, sub=bool(m and two))
    return p


_FIELD_OF_LABEL = {"houseno": "building", "cellno": "unit", "roomno": "room", "floorno": "floor"}


def _set_field(p: ParsedAddress, label: str, value: str) -> None:
    name = _FIELD_OF_LABEL[label]
    if getattr(p, name) is None:
        setattr(p, name, value)


def _parse_tail(tail: str, p: ParsedAddress, after_road: bool, sub: bool = False) -> None:
    spans = p.spans
    # the corpus labels a number on a side street (subroad) or in a lane (弄) as subroadno
    door_label = "subroadno" if sub else "roadno"
    last = "road" if after_road else "start"  # what the previous token was
    last_txt = ""  # the last run of text (a place or compound name)
    after_sep = False  # the previous token was a dash
    for tok in _RE_TOKEN.finditer(tail):
        num, suf, txt = tok.group("num"), tok.group("suf"), tok.group("txt") or tok.group("gate")
        if tok.group("sep"):
            after_sep = True
            continue
        if (
            after_sep
            and last == "number"
            and num is not None
            and suf is None
            and "-" not in num
            and p.building is None
        ):
            # 老杭海路9号-7: a sub-number of the door plate, labelled houseno in TRAIN
            p.building = num
            spans.append(("houseno", num))
            last = "building"
            after_sep = False
            continue
        after_sep = False
        if tok.group("hwy"):
            spans.append(("road" if p.road is None else "subroad", tok.group("hwy")))
            p.road = p.road or tok.group("hwy")
            last = "road"
            continue
        if txt is not None:
            if last in ("road", "lane", "number") and p.poi is None or last == "start":
                p.poi = (p.poi or "") + txt if last == "start" and p.poi else txt
                spans.append(("poi", txt))
            else:
                spans.append(("subpoi" if p.poi else "poi", txt))
                if p.poi is None:
                    p.poi = txt
            last = "text"
            last_txt = txt
            continue
        whole = num + (suf or "")
        if suf == "组" and not tail.startswith("团", tok.end()):
            # 龙山沟村1组23号: a village group is labelled as a road in TRAIN (55 of 59),
            # the number after it as its door number
            p.road = p.road or whole
            spans.append(("road", whole))
            last = "road"
            door_label = "roadno"
            continue
        if suf == "排":  # 11排7幢: a row of houses, houseno in TRAIN (9 of 12)
            _set_field(p, "houseno", whole)
            spans.append(("houseno", whole))
            last = "building"
            continue
        if suf in ("区", "期", "组", "院", "队", "社"):
            # 3区, 2期: part of the compound name
            p.poi = (p.poi or "") + whole
            spans.append(("poi", whole))
            last = "text"
            continue
        if suf == "巷":
            # 稠州西路81巷132号: a numbered lane off the road (subroad + subroadno in TRAIN)
            off_road = last == "road" and p.road is not None
            p.road = (p.road or "") + whole
            spans.append(("subroad" if off_road else "road", whole))
            if off_road:
                door_label = "subroadno"
            last = "road"
            continue
        if suf in ("弄", "支弄"):
            if p.lane is None or suf == "支弄":
                p.lane = (p.lane or "") + whole
                # TRAIN: 路N弄M号 → 弄 subroad, M号 subroadno (6 in 10); 弄 followed by a
                # compound, building or bare number is the road's number (roadno, 8 in 10)
                lane_door = last == "road" and _RE_LANE_DOOR.match(tail, tok.end())
                spans.append(("subroad" if lane_door else "roadno", whole))
                last = "lane" if lane_door or last != "road" else "lane_no"
                continue
        if (
            "-" in num
            and suf in ("单元", "室", "层")
            and last in ("road", "lane")
            and p.number is None
            and num[0].isdigit()
        ):
            # 柳南一街58-130-7单元: the door number comes first, then building-unit-room
            head, _, num = num.partition("-")
            p.number = head
            spans.append((door_label if last == "road" else "subroadno", head))
            last = "number"
            whole = num + suf
        if (
            "-" in num
            and suf in ("单元", "室", "号", "层")
            and not (last in ("road", "lane") and p.number is None)
        ):
            # 13-10-1206室, 4-11单元, 7-14号, B4-8层: building-unit-room written with dashes
            parts = num.split("-")
            head_parts, last_part = parts[:-1], parts[-1] + suf
            if len(head_parts) > 3:  # G56-B1-0-008-1室: more parts than levels
                head_parts = head_parts[:2] + ["-".join(head_parts[2:])]
            # TRAIN conventions for X-Y号: a range of shops (2311-2312号) is one room;
            # after a building (124栋44-178号) X is the unit and Y the room; otherwise a
            # short Y is a unit (7-3号) and three digits or more a room (11-187号)
            in_building = last == "building" and p.unit is None
            if (
                suf == "号"
                and len(parts) == 2
                and (_is_range(parts[0], parts[1]) or last == "floor")
            ):
                spans.append(("roomno", whole))
                _set_field(p, "roomno", whole)
                last = "room"
                continue
            if (
                suf == "号"
                and len(parts) == 2
                and p.road is None
                and p.number is None
                and p.building is None
                and (p.community or "").endswith("村")
                and not _COMPOUND_END.search(last_txt)
            ):
                # 溪口村12-87号: a village door plate with a sub-number (TRAIN 12 of 17)
                p.number = parts[0]
                spans += [("roadno", parts[0]), ("houseno", last_part)]
                _set_field(p, "houseno", last_part)
                last = "building"
                continue
            short_y = len(parts[-1].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) <= 2
            kind = {
                "单元": "cellno",
                "室": "roomno",
                "层": "floorno",
                "号": "roomno" if len(parts) >= 3 or in_building or not short_y else "cellno",
            }[suf]
            labels = ["houseno", "cellno", "roomno"][: len(head_parts)]
            if kind == "cellno":
                labels = ["houseno"] * len(head_parts)
            elif in_building and len(head_parts) == 1 and kind == "roomno":
                labels = ["cellno"]
            for lab, part in zip(labels, head_parts, strict=True):
                spans.append((lab, part))
                _set_field(p, lab, part)
            spans.append((kind, last_part))
            _set_field(p, kind, last_part)
            last = {"cellno": "unit", "roomno": "room", "floorno": "floor"}[kind]
            continue
        if suf == "栋":
            p.building = whole
            spans.append(("houseno", whole))
            last = "building"
            continue
        if suf == "米":  # 北100米: a direction, not a number of the address
            spans.append(("assist", whole))
            continue
        if suf == "街" and last != "road":  # a market aisle: 11街
            p.unit = whole
            spans.append(("cellno", whole))
            last = "unit"
            continue
        if suf in _SUFFIX_PART:  # 单元 / 层 / 室: the part is named by its suffix
            part, label = _SUFFIX_PART[suf]
            setattr(p, part, whole)
            spans.append((label, whole))
            last = part
            continue
        parts = num.split("-")
        door_slot = last in ("road", "lane") and p.number is None
        if door_slot and suf is None and len(parts) >= 3:
            # 将军路1326-11-6-434: door-building-unit-room; 沪江路8-12-1137: after a road
            # three parts are building-unit-room in TRAIN (5 of 9)
            labels = ("houseno", "cellno", "roomno")
            if len(parts) >= 4:
                labels = (door_label if last == "road" else "subroadno",) + labels
                p.number = parts[0]
            for lab, part in zip(
                labels,
                parts[-len(labels) :] if len(parts) <= 4 else parts[:3] + ["-".join(parts[3:])],
                strict=True,
            ):
                spans.append((lab, part))
                if lab in _FIELD_OF_LABEL:
                    _set_field(p, lab, part)
            last = "room"
            continue
        if door_slot:
            pair = _split_pair(num) if last == "road" else None
            if suf == "号" or suf is None:
                if pair and last == "road":
                    p.number = f"{num}号" if suf else num
                    spans.append((door_label, pair[0]))
                    spans.append(("houseno", pair[1] + (suf or "")))
                else:
                    p.number = whole
                    spans.append(("subroadno" if last == "lane" else door_label, whole))
                last = "number"
                continue
        if (
            suf == "号"
            and p.number is None
            and p.road is None
            and p.building is None
            and last in ("start", "text")
            and not _COMPOUND_END.search(p.poi or "")
        ):
            # a door number without a road: a village or compound door plate (村133号)
            p.number = whole
            spans.append(("roadno", whole))
            last = "number"
            continue
        if (
            suf == "号"
            and p.number is None
            and p.road is not None
            and p.building is None
            and last == "text"
            and not _COMPOUND_END.search(last_txt)
        ):
            # 海王路石岸头130号: a hamlet or place named after the road carries the door
            # plate (TRAIN: a number after such a name is roadno ~9 times in 10; after a
            # compound name (…苑, …区, …园) it is a building number)
            p.number = whole
            spans.append((door_label, whole))
            last = "number"
            continue
        if (
            suf == "号"
            and last == "text"
            and p.building is None
            and p.room is None
            and (
                _MARKET_END.search(p.poi or "")
                or p.floor is not None
                and not _RE_ROAD_END.search(last_txt)
            )
        ):
            # 商贸城2163号, 市场C区569号: a stall or shop number in a market or mall;
            # after a floor (10楼驿淘9175号, 九楼南88号) a shop number (TRAIN 12 of 16)
            p.room = whole
            spans.append(("roomno", whole))
            last = "room"
            continue
        if suf == "号":
            if p.building is None and last not in ("floor", "unit", "room"):
                # 宏远路1820号12号: the second 号 numbers a building at the door plate
                p.building = whole
                spans.append(("houseno", whole))
                last = "building"
            elif (
                last == "building"
                and p.unit is None
                and (len(num) <= 2 or len(num) == 3 and tok.end() < len(tail))
            ):
                # 15栋11号6楼: a unit; 146栋1301号, and 3 digits ending the address
                # (C幢586号), a room (TRAIN: 4 digits 10 of 10, 3 digits at the end 8 of 12)
                p.unit = whole
                spans.append(("cellno", whole))
                last = "unit"
            else:
                p.room = whole
                spans.append(("roomno", whole))
                last = "room"
            continue
        # bare numbers
        if (
            suf is None
            and len(num) == 6
            and num.isdigit()
            and tok.end() == len(tail)
            and last not in ("building", "unit", "floor")
        ):
            # 甘霖路166号325600: a six-digit postcode ending the address (TRAIN 6 of 8)
            spans.append(("redundant", num))
            continue
        if (
            suf is None
            and num.isdigit()
            and p.number is None
            and p.road is None
            and p.building is None
            and last in ("start", "text")
            and (p.community or "").endswith("村")
            and not _COMPOUND_END.search(last_txt)
        ):
            # 新安村1124, 占坂村留公坞138: a door number in a village or hamlet (TRAIN 7 of 9)
            p.number = num
            spans.append(("roadno", num))
            last = "number"
            continue
        if (
            suf is None
            and num[-1].isalpha()
            and num[0].isdigit()
            and "-" not in num
            and tok.end() < len(tail)
            and tail[tok.end()].isdigit()
        ):
            # 10A1525, 13B3761: building 10A, room 1525 (TRAIN: 8 of 12; after a building
            # the letter-number is the unit: A座89A9)
            lab = "cellno" if p.building is not None and p.unit is None else "houseno"
            _set_field(p, lab, num)
            spans.append((lab, num))
            last = "building" if lab == "houseno" else "unit"
            continue
        if len(parts) == 2 and (_is_range(*parts) or last == "floor"):
            # 1106-1107: two shops, one room span; after a floor (一楼2648-117, 13楼A21-2)
            # the whole X-Y is the shop or office number (TRAIN 13 of 14)
            p.room = p.room or num
            spans.append(("roomno", num))
            last = "room"
            continue
        if len(parts) >= 3 and p.building is None:
            p.building, p.unit, p.room = parts[0], parts[1], "-".join(parts[2:])
            spans += [("houseno", parts[0]), ("cellno", parts[1]), ("roomno", p.room)]
            last = "room"
            continue
        if len(parts) == 2 and p.building is None:
            # 17-586: building-room; 63-12: one or two digits after the dash are a unit
            # (TRAIN: 17 of 27 short ones)
            if len(parts[1].rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) <= 2:
                p.building, p.unit = parts
                spans += [("houseno", parts[0]), ("cellno", parts[1])]
                last = "unit"
            else:
                p.building, p.room = parts
                spans += [("houseno", parts[0]), ("roomno", parts[1])]
                last = "room"
            continue
        if last in ("building", "unit", "floor", "number") or p.building is not None:
            if last == "building" and p.unit is None and len(parts) == 2:
                p.unit, p.room = parts
                spans += [("cellno", parts[0]), ("roomno", parts[1])]
            elif last == "building" and p.unit is None and num.isdigit() and len(num) <= 2:
                # 113栋66: one or two digits after a building are its unit (TRAIN 7 of 10;
                # three digits or more are a room, 360 of 362)
                p.unit = num
                spans.append(("cellno", num))
                last = "unit"
                continue
            else:
                p.room = num
                spans.append(("roomno", num))
            last = "room"
            continue
        if len(num.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) >= 3:
            p.room = num
            spans.append(("roomno", num))
            last = "room"
        else:
            p.building = num
            spans.append(("houseno", num))
            last = "building"


# --------------------------------------------------------------------------------------
# Corpus helpers (evaluation against character-BIO labelled addresses)
# --------------------------------------------------------------------------------------

#: Fields scored against the Chinese address parsing corpus.
EVAL_FIELDS = ("road", "roadno", "poi", "houseno", "cellno", "floorno", "roomno")


def read_bio(path) -> list[list[tuple[str, str]]]:
    """Read a CoNLL-style BIO file (``token label`` per line, blank line between
    addresses) into lists of (token, label)."""
    out: list[list[tuple[str, str]]] = []
    cur: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip():
                if cur:
                    out.append(cur)
                    cur = []
                continue
            tok, sep, lab = line.rpartition(" ")
            if not sep:
                raise ValueError(f"{path}: line {lineno}: expected 'token label', got {line!r}")
            cur.append((tok, lab))
    if cur:
        out.append(cur)
    return out


def bio_text(tokens: list[tuple[str, str]]) -> str:
    """The address text of a BIO-labelled address.

    The corpus makes every run of digits one token, so two digit tokens side by side were
    two numbers apart in the original text (华南公富13 2950室): they are joined with a
    space, which :func:`normalise` reads as a separator.
    """
    out = []
    prev = ""
    for tok, _ in tokens:
        if prev.isdigit() and tok[:1].isdigit():
            out.append(" ")
        out.append(tok)
        prev = tok
    return "".join(out)


def bio_spans(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(label, text) spans of a BIO-labelled address, labels lower-cased."""
    spans: list[list[str]] = []
    cur: list[str] | None = None
    for tok, lab in tokens:
        if lab == "O":
            cur = None
            continue
        kind, _, name = lab.partition("-")
        name = name.lower()
        if kind == "B" or cur is None or cur[0] != name:
            cur = [name, tok]
            spans.append(cur)
        else:
            cur[1] += tok
    return [(a, b) for a, b in spans]


def evaluate_parser(
    sentences: list[list[tuple[str, str]]],
    fields: Iterable[str] = EVAL_FIELDS,
    settings: Settings = DEFAULT,
) -> pd.DataFrame:
    """Per-field precision, recall and F1 of :func:`parse` on BIO-labelled addresses.

    A predicted span counts when an gold span of the same field has the same text after
    :func:`normalise` (so 八号楼 and 8栋 are the same building number). Counting is per
    address, as multisets.

    Returns
    -------
    DataFrame
        Index field; columns gold, predicted, correct, precision, recall, f1.
    """
    fields = tuple(fields)
    gold_n = dict.fromkeys(fields, 0)
    pred_n = dict.fromkeys(fields, 0)
    hit_n = dict.fromkeys(fields, 0)
    for sent in sentences:
        text = bio_text(sent)
        gold: dict[str, list[str]] = defaultdict(list)
        for lab, t in bio_spans(sent):
            if lab in gold_n:
                g = normalise(t).text
                if g:
                    gold[lab].append(g)
        pred: dict[str, list[str]] = defaultdict(list)
        for lab, t in parse(text, settings).spans:
            if lab in pred_n:
                pred[lab].append(t)
        for f in fields:
            gold_n[f] += len(gold[f])
            pred_n[f] += len(pred[f])
            rem = list(gold[f])
            for t in pred[f]:
                if t in rem:
                    rem.remove(t)
                    hit_n[f] += 1
    rows = []
    for f in fields:
        prec = hit_n[f] / pred_n[f] if pred_n[f] else 0.0
        rec = hit_n[f] / gold_n[f] if gold_n[f] else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        rows.append(
            {
                "field": f,
                "gold": gold_n[f],
                "predicted": pred_n[f],
                "correct": hit_n[f],
                "precision": prec,
                "recall": rec,
                "f1": f1,
            }
        )
    return pd.DataFrame(rows).set_index("field")


# --------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------

#: Match levels, most precise first.
LEVELS = ("room", "unit", "building", "door_plate", "compound", "road", "none")

#: Characters that make two road names different roads, not a typo of each other
#: (中山北路 ≠ 中山南路, 一路 ≠ 二路).
#: Lowest rapidfuzz ratio for a road name to be a candidate when the door number agrees
#: (one wrong character of a three-character name scores 66.7). Such matches are offered
#: as candidates; only a one-character typo of a longer name can be confident.
_ROAD_CANDIDATE_SCORE = 60.0

_DISTINCT_CHARS = set("东南西北中上下前后左右内外新老大小" + _CN_CHARS + "0123456789")


def _bare(value: str | None, suffix: str) -> str:
    """Number without its suffix ("38号" → "38"); "" for None."""
    if not value:
        return ""
    return value[: -len(suffix)] if value.endswith(suffix) else value


@dataclass
class Match:
    """The outcome of :meth:`AddressIndex.match` for one query.

    ``row`` is the matched row position in the index (``None`` when nothing confident or
    unambiguous was found); ``candidates`` are ``(row, score)`` pairs, best first.
    """

    query: str
    parsed: ParsedAddress
    level: str = "none"
    score: float = 0.0
    confident: bool = False
    row: int | None = None
    candidates: list[tuple[int, float]] = field(default_factory=list)
    reason: str = ""
    tied: list[int] = field(default_factory=list)
    """All rows that matched equally well in different places (an ambiguous answer)."""


class AddressIndex:
    """A matching index over standard addresses.

    Parameters
    ----------
    addresses
        Rows with ``address_id``, ``text``, ``lon``, ``lat`` (WGS84 degrees) and optional
        ``name`` (compound or POI), ``district``, ``road``, ``number``, ``building_no``,
        ``unit``, ``building_id``. Use :meth:`from_layer` for the ``addresses`` layer.
    settings
        ``settings.address`` gives the city, district and thresholds.

    Notes
    -----
    Matching order: (1) the exact normalised text without administrative prefix;
    (2) road + lane + door number, the road name exact or, failing that, fuzzy
    (rapidfuzz) with the numbers exact; (3) compound/POI name + building + unit.
    Several rows sharing a key are one place when they lie within
    ``settings.address.same_place_m``; otherwise the query's own district, then the
    configured district and city, decide; if they cannot, the answer is ambiguous.
    """

    def __init__(self, addresses: pd.DataFrame, settings: Settings = DEFAULT) -> None:
        self.settings = settings
        rules = settings.address
        df = addresses.reset_index(drop=True)
        for col in ("address_id", "text"):
            if col not in df.columns:
                raise ValueError(f"addresses: missing field '{col}'")
        self.address_id = df["address_id"].astype(str).to_numpy()
        self.text = df["text"].fillna("").astype(str).to_numpy()
        self.lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float)
        self.lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float)
        self.building_id = (
            df["building_id"].astype("string").fillna("").to_numpy(dtype=object)
            if "building_id" in df.columns
            else np.full(len(df), "", object)
        )
        names = (
            df["name"].astype("string").fillna("").to_numpy(dtype=object)
            if "name" in df.columns
            else np.full(len(df), "", object)
        )
        self.name = names
        n = len(df)
        self.district = np.full(n, "", dtype=object)
        self.city = np.full(n, "", dtype=object)
        self.exact: dict[str, list[int]] = defaultdict(list)
        self.door: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        self.compound: dict[str, list[int]] = defaultdict(list)
        self.road_rows: dict[str, list[int]] = defaultdict(list)
        self.door_roads: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.parts: list[tuple[str, str, str, str]] = []  # building, unit, floor, room
        self.rest = np.full(n, "", dtype=object)
        col = {
            c: (
                df[c].astype("string").fillna("").to_numpy(dtype=object)
                if c in df.columns
                else None
            )
            for c in ("district", "road", "number", "building_no", "unit")
        }
        for i in range(n):
            p = parse(self.text[i], settings)
            road = p.road or normalise(col["road"][i]).text if col["road"] is not None else p.road
            number = p.number or (
                normalise(col["number"][i]).text if col["number"] is not None else None
            )
            building = p.building or (
                normalise(col["building_no"][i]).text if col["building_no"] is not None else None
            )
            unit = p.unit or (normalise(col["unit"][i]).text if col["unit"] is not None else None)
            district = p.district or (col["district"][i] if col["district"] is not None else "")
            self.district[i] = district or ""
            self.city[i] = p.city or rules.city or ""
            self.rest[i] = p.rest
            if p.rest:
                self.exact[p.rest].append(i)
            self.parts.append(
                (
                    _bare(building, "栋"),
                    _bare(unit, "单元"),
                    _bare(p.floor, "层"),
                    _bare(p.room, "室"),
                )
            )
            if road:
                self.road_rows[road].append(i)
                if number:
                    self.door[(road, p.lane or "", _bare(number, "号"))].append(i)
            for nm in {normalise_name(names[i]), p.poi or ""}:
                if nm:
                    self.compound[nm].append(i)
            if p.poi and number and not road:  # 曹杨新村38号: a compound door plate
                self.door[(p.poi, p.lane or "", _bare(number, "号"))].append(i)
        for road, lane, number in self.door:
            self.door_roads[(lane, number)].append(road)
        self.roads = list(self.road_rows)
        self.compounds = list(self.compound)
        self.keys = list(self.exact)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_layer(cls, addresses, settings: Settings = DEFAULT) -> AddressIndex:
        """Build from the ``addresses`` layer (point GeoDataFrame in EPSG:4326)."""
        df = pd.DataFrame(addresses.drop(columns=addresses.geometry.name))
        df["lon"] = addresses.geometry.x.to_numpy()
        df["lat"] = addresses.geometry.y.to_numpy()
        return cls(df, settings)

    def __len__(self) -> int:
        return len(self.address_id)

    # -- matching -----------------------------------------------------------------------
    def _spread_m(self, rows: list[int]) -> float:
        lon, lat = self.lon[rows], self.lat[rows]
        if np.isnan(lon).any():
            return float("inf")
        k = 111_320.0
        dx = (lon.max() - lon.min()) * k * np.cos(np.radians(lat.mean()))
        dy = (lat.max() - lat.min()) * k
        return float(np.hypot(dx, dy))

    def _resolve(self, rows: list[int], q: ParsedAddress) -> tuple[list[int], bool]:
        """Narrow rows sharing a key to one place. Returns (rows, unique_place)."""
        rows = list(dict.fromkeys(rows))
        if len(rows) <= 1 or self._spread_m(rows) <= self.settings.address.same_place_m:
            return rows, True
        rules = self.settings.address
        for want, arr in (
            (q.district, self.district),
            (rules.district, self.district),
            (q.city, self.city),
            (rules.city, self.city),
        ):
            if not want:
                continue
            kept = [
                r
                for r in rows
                if arr[r] and (arr[r] == want or arr[r].startswith(want) or want.startswith(arr[r]))
            ]
            if kept and len(kept) < len(rows):
                rows = kept
                if len(rows) == 1 or self._spread_m(rows) <= rules.same_place_m:
                    return rows, True
        return rows, False

    def _refine(self, rows: list[int], q: ParsedAddress) -> tuple[list[int], str]:
        """Among rows of one door plate or compound, keep those agreeing on building, unit
        and room (numbers compared exactly) and say how far the agreement goes."""
        qb, qu, qr = _bare(q.building, "栋"), _bare(q.unit, "单元"), _bare(q.room, "室")
        level, depth = "door_plate", 0
        if qb:
            same_b = [r for r in rows if self.parts[r][0] == qb]
            if not same_b and any(self.parts[r][0] for r in rows):
                # the place's buildings are known and this is not one of them
                return rows, "unknown_building"
            if same_b:
                rows, level, depth = same_b, "building", 1
                same_u = [r for r in rows if qu and self.parts[r][1] == qu]
                if same_u:
                    rows, level, depth = same_u, "unit", 2
                    same_r = [r for r in rows if qr and self.parts[r][3] == qr]
                    if same_r:
                        return same_r, "room"
        # stopped at a level: prefer the row of that level itself (no unit or room beyond
        # it), so that 502室 never returns the record of 501室
        fields = (0, 1, 3)[depth:]
        want = {0: qb, 1: qu, 3: qr}
        agree = [r for r in rows if all(self.parts[r][f] == want[f] for f in fields)]
        if agree and qr and not depth:
            return agree, "room"  # e.g. a shop number at a door plate: B2147室
        plain = [r for r in rows if not any(self.parts[r][f] for f in fields)]
        return agree or plain or rows, level

    def _fuzzy_roads(self, road: str, lane: str, number: str) -> list[tuple[str, float, bool]]:
        """Known roads carrying this door number whose name is close to an unknown road
        name: (road, score, typo) with typo True for one wrong character that cannot make
        another road (中山北路/中山南路 differ in meaning, not by a typo)."""
        choices = self.door_roads.get((lane, number))
        if not choices:
            return []
        found = process.extract(
            road, choices, scorer=fuzz.ratio, limit=8, score_cutoff=_ROAD_CANDIDATE_SCORE
        )
        out = []
        for cand, score, _ in found:
            typo = False
            if len(cand) == len(road) and len(road) >= 4:
                diff = [(a, b) for a, b in zip(cand, road, strict=True) if a != b]
                typo = len(diff) == 1 and not (set(diff[0]) & _DISTINCT_CHARS)
            out.append((cand, float(score), typo))
        return out

    def _candidates(self, rows: list[int], score: float) -> list[tuple[int, float]]:
        k = self.settings.address.max_candidates
        return [(r, score) for r in rows[:k]]

    def match(self, text: str) -> Match:
        """Match one address text. See the class notes for the order of attempts."""
        rules = self.settings.address
        q = parse(text, self.settings)
        m = Match(query=text, parsed=q)
        if not q.text:
            m.reason = "empty address"
            return m
        q_level = (
            "room"
            if q.room
            else "unit"
            if q.unit
            else "building"
            if q.building
            else "door_plate"
            if q.number
            else "compound"
        )
        # 1. exact normalised key
        rows = self.exact.get(q.rest)
        if rows:
            rows, unique = self._resolve(rows, q)
            if unique:
                m.row, m.level, m.score, m.confident = rows[0], q_level, 100.0, True
                if q_level == "compound" and q.road and not q.poi:
                    m.level, m.confident = "road", False
                    m.row = None
                    m.candidates = self._candidates(rows, 100.0)
                    m.reason = "only a road was given"
                    return m
                m.candidates = self._candidates(rows, 100.0)
                return m
            m.candidates = self._candidates(rows, 100.0)
            m.level, m.score, m.reason = q_level, 100.0, "same address in several places"
            m.tied = rows
            return m
        # 2. door plate: road (+ lane) + number
        number = _bare(q.number, "号")
        if number and (q.road or q.poi):
            hits: list[tuple[str, float, bool, list[int]]] = []
            street = q.road or q.poi
            exact_road = street in self.road_rows or (not q.road and street in self.compound)
            if exact_road:
                roads = [(street, 100.0, True)]
            elif q.road:
                roads = self._fuzzy_roads(q.road, q.lane or "", number)
            else:
                roads = []
            for road, score, typo in roads:
                found = self.door.get((road, q.lane or "", number))
                if found:
                    hits.append((road, score, typo, found))
            if hits:
                road, score, typo, found = hits[0]
                found, level = self._refine(found, q)
                if level == "unknown_building":
                    m.level, m.score = "door_plate", 80.0
                    m.candidates = self._candidates(found, 80.0)
                    m.reason = f"no building {q.building} at this door plate in the index"
                    return m
                if len(found) > 1:
                    # several rows at this door plate: the one whose text is closest first
                    tail = q.rest.replace(q.road or "", "", 1)
                    sims = [fuzz.ratio(tail, self.rest[r].replace(road, "", 1)) for r in found]
                    found = [found[k] for k in np.argsort(sims, kind="stable")[::-1]]
                found, unique = self._resolve(found, q)
                if not exact_road:
                    # one wrong character is forgiven only when it cannot be another road
                    score = 90.0 if (typo and len(hits) == 1) else min(score, 89.0)
                m.row, m.level, m.score = found[0], level, score
                m.confident = unique and score >= rules.confidence_threshold
                m.candidates = [(r, s) for _, s, _, rr in hits for r in rr][: rules.max_candidates]
                if not m.confident:
                    m.row = None
                    m.reason = (
                        "road name not known exactly"
                        if unique
                        else "same address in several places"
                    )
                    if not unique and score >= rules.confidence_threshold:
                        m.tied = found
                return m
            if exact_road and q.road:
                m.level, m.score = "road", 0.0
                m.candidates = self._candidates(self.road_rows[street], 50.0)
                m.reason = f"no door number {q.number} on {street} in the index"
                return m
        # 3. compound / POI name (+ building + unit)
        only_names = not any(lab == "subpoi" for lab, _ in q.spans)
        probes = [
            (normalise_name(text), True),
            (q.rest, not q.hints),
            (q.poi, not q.hints and only_names),
        ]
        # a part of the query matching a name is not enough when the rest says more
        # (麦当劳(四川北路店) is not the 麦当劳 of the index): candidates only
        seen = set()
        for name, may_be_sure in probes:
            if not name or name in seen:
                continue
            seen.add(name)
            rows = self.compound.get(name)
            if rows:
                rows, level = self._refine(rows, q)
                if level == "unknown_building":
                    m.level, m.score = "compound", 80.0
                    m.candidates = self._candidates(rows, 80.0)
                    m.reason = f"no building {q.building} in {name} in the index"
                    return m
                if level == "door_plate":
                    level = "compound"
                rows, unique = self._resolve(rows, q)
                m.level, m.score = level, 100.0
                m.candidates = self._candidates(rows, 100.0)
                if unique and may_be_sure:
                    m.row, m.confident = rows[0], True
                elif not unique:
                    m.reason = "same name in several places"
                    m.tied = rows if may_be_sure else []
                else:
                    m.score = min(m.score, 80.0)
                    m.reason = f"only part of the query ({name}) matches a known name"
                return m
        # 4. nothing exact: road only, or fuzzy candidates (never confident)
        if q.road and q.road in self.road_rows and not number:
            m.level, m.score = "road", 50.0
            m.candidates = self._candidates(self.road_rows[q.road], 50.0)
            m.reason = "only a road was given"
            return m
        probe = q.poi or q.rest
        found = (
            process.extract(
                probe,
                self.compounds,
                scorer=fuzz.WRatio,
                limit=rules.max_candidates,
                score_cutoff=rules.fuzzy_threshold,
            )
            if probe
            else []
        )
        cands = [(self.compound[nm][0], float(s)) for nm, s, _ in found]
        if not cands:
            found = process.extract(
                q.rest,
                self.keys,
                scorer=fuzz.ratio,
                limit=rules.max_candidates,
                score_cutoff=rules.fuzzy_threshold,
            )
            cands = [(self.exact[k][0], float(s)) for k, s, _ in found]
        m.candidates = cands
        m.score = cands[0][1] if cands else 0.0
        m.reason = "no confident match"
        return m

    def match_many(
        self, texts: Iterable[str], progress: Callable[[int, int], None] | None = None
    ) -> list[Match]:
        """Match many texts (identical texts are matched once). ``progress(done, total)``
        is called every 1,000 texts when given."""
        texts = list(texts)
        cache: dict[str, Match] = {}
        out = []
        for i, t in enumerate(texts):
            key = t if isinstance(t, str) else ""
            m = cache.get(key)
            if m is None:
                m = cache[key] = self.match(key)
            out.append(m)
            if progress is not None and (i + 1) % 1000 == 0:
                progress(i + 1, len(texts))
        if progress is not None:
            progress(len(texts), len(texts))
        return out
