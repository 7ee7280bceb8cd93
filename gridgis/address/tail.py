"""The part of an address after its road: door number, lane, compound, building, unit,
floor, room.

The tail is cut into tokens (:data:`RE_TOKEN`: a number with its suffix, a dash, a run of
text). Each token is offered to the rules of :data:`TAIL_RULES` in order; the first rule
that takes it sets the components and the state (:class:`Last`, what the previous token
was). Each rule is one reading of a written pattern; its docstring gives the pattern and
where the reading comes from ("TRAIN n of m": among the addresses of the Chinese address
parsing corpus's training split showing the pattern, n are labelled this way — the corpus
was read for these counts only, nothing is learned from it at run time).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from gridgis.address.components import LETTERS, ParsedAddress
from gridgis.address.roads import RE_ROAD_END

# Tokens of the part after the road. ``hwy``: a numbered highway (320国道) is a road.
# ``gate``: numbered gates, workshops and halls (5号门, 1号厂房, 4号馆) and product codes
# (4S店, 3D打印) are parts of names, not numbers.
# A door number may carry a prefix right after its road: 甲3号, 乙12号 (Beijing: a plate
# added next to 3号), 附55号 (an annex) – part of the number, not a name.
RE_TOKEN = re.compile(
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
RE_COMPOUND_END = re.compile(r"(?:区|园|苑|场|城|期|楼|厦|心|寓|庭|府|湾|坊|座|栋|院|[A-Z])$")
#: A market, mall or office tower: a 号 after it numbers a stall, shop or office.
RE_MARKET_END = re.compile(r"(?:市场|商城|城|广场|大厦|中心)$")
#: 路N弄M号: the M号 after a lane.
RE_LANE_DOOR = re.compile(r"-?\d+号(?!楼|院|门|厂房|库|馆)")

#: Number suffixes that name the address part on their own: suffix -> (part, corpus label).
SUFFIX_PART = {"单元": ("unit", "cellno"), "层": ("floor", "floorno"), "室": ("room", "roomno")}


class Last(Enum):
    """What the previous token of the tail was."""

    START = "start"
    ROAD = "road"
    LANE = "lane"
    LANE_NO = "lane_no"
    NUMBER = "number"
    TEXT = "text"
    BUILDING = "building"
    UNIT = "unit"
    FLOOR = "floor"
    ROOM = "room"


_LAST_OF_LABEL = {
    "houseno": Last.BUILDING,
    "cellno": Last.UNIT,
    "roomno": Last.ROOM,
    "floorno": Last.FLOOR,
}


@dataclass(slots=True)
class Token:
    """One token of the tail (mutable: a rule may take the door number off its front)."""

    num: str | None
    suf: str | None
    txt: str | None
    hwy: str | None
    end: int
    after_sep: bool = False

    @property
    def whole(self) -> str:
        return (self.num or "") + (self.suf or "")

    @property
    def kind(self) -> str | None:
        return "hwy" if self.hwy else "txt" if self.txt is not None else self.suf

    @property
    def parts(self) -> list[str]:
        return (self.num or "").split("-")


@dataclass(slots=True)
class TailState:
    """The parse so far: the address, the tail text, and what came last."""

    p: ParsedAddress
    tail: str
    last: Last
    door_label: str
    last_txt: str = ""
    after_sep: bool = False
    spans: list[tuple[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.spans = self.p.spans

    def put(self, label: str, value: str, last: Last | None = None) -> None:
        """Record a span and set its field (building, unit, floor, room)."""
        self.spans.append((label, value))
        self.p.set_labelled(label, value)
        if last is not None:
            self.last = last

    @property
    def door_slot(self) -> bool:
        """Right after the road or lane, before any door number."""
        return self.last in (Last.ROAD, Last.LANE) and self.p.number is None


Rule = Callable[[TailState, Token], bool]

#: Token kinds: a number's suffix (None for a bare number), or "txt" / "hwy".
SUFFIXES = (None, "支弄", "弄", "号", "栋", "单元", "层", "室", "区", "期", "组", "巷", "排")
SUFFIXES += ("院", "街", "米", "队", "社")
#: Every number kind (a rule reading any number whatever its suffix).
NUMBERS = SUFFIXES


def reads(kinds: tuple[str | None, ...], dashed: bool = False) -> Callable[[Rule], Rule]:
    """Declare the token kinds a rule can take (it returns False for any other), and with
    ``dashed`` that it takes only numbers with a dash (82-11, 8-2-301), so the parser
    offers a token only to the rules that can read it, in the same order."""

    def mark(rule: Rule) -> Rule:
        rule.kinds = frozenset(kinds)  # type: ignore[attr-defined]
        rule.dashed = dashed  # type: ignore[attr-defined]
        return rule

    return mark


def _split_pair(num: str) -> tuple[str, str] | None:
    """ "82-11" → ("82", "11") when the second part is a sub-number; None for a range
    ("389-399") or anything else."""
    parts = num.split("-")
    if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    a, b = int(parts[0]), int(parts[1])
    return None if b > a else (parts[0], parts[1])


def is_range(a: str, b: str) -> bool:
    """ "2311"-"2312", "A123"-"124": consecutive shop or door numbers of the same length
    (a range), not building-room."""
    a, b = a.lstrip(LETTERS), b.lstrip(LETTERS)
    return a.isdigit() and b.isdigit() and len(a) == len(b) >= 2 and 0 < int(b) - int(a) <= 20


# -- rules, in the order they are tried ---------------------------------------------------


@reads((None,))
def sub_number_after_dash(st: TailState, t: Token) -> bool:
    """老杭海路9号-7: a bare number after a door number and a dash is a sub-number of the
    door plate (labelled houseno in TRAIN)."""
    if not (t.after_sep and st.last is Last.NUMBER and t.num is not None and t.suf is None):
        return False
    if "-" in t.num or st.p.building is not None:
        return False
    st.p.building = t.num
    st.spans.append(("houseno", t.num))
    st.last = Last.BUILDING
    return True


@reads(("hwy",))
def highway(st: TailState, t: Token) -> bool:
    """320国道: a numbered national, provincial or county highway is a road."""
    if not t.hwy:
        return False
    st.spans.append(("road" if st.p.road is None else "subroad", t.hwy))
    st.p.road = st.p.road or t.hwy
    st.last = Last.ROAD
    return True


@reads(("txt",))
def text_run(st: TailState, t: Token) -> bool:
    """A run of text is a compound or place name (poi); a second one is a sub-place
    (subpoi: a building or shop inside it)."""
    if t.txt is None:
        return False
    p, last = st.p, st.last
    if last in (Last.ROAD, Last.LANE, Last.NUMBER) and p.poi is None or last is Last.START:
        p.poi = (p.poi or "") + t.txt if last is Last.START and p.poi else t.txt
        st.spans.append(("poi", t.txt))
    else:
        st.spans.append(("subpoi" if p.poi else "poi", t.txt))
        if p.poi is None:
            p.poi = t.txt
    st.last = Last.TEXT
    st.last_txt = t.txt
    return True


@reads(("组",))
def village_group(st: TailState, t: Token) -> bool:
    """龙山沟村1组23号: a village group (N组, not 组团) is labelled as a road in TRAIN (55 of
    59), the number after it as its door number."""
    if t.suf != "组" or st.tail.startswith("团", t.end):
        return False
    st.p.road = st.p.road or t.whole
    st.spans.append(("road", t.whole))
    st.last = Last.ROAD
    st.door_label = "roadno"
    return True


@reads(("排",))
def house_row(st: TailState, t: Token) -> bool:
    """11排7幢: a row of houses, houseno in TRAIN (9 of 12)."""
    if t.suf != "排":
        return False
    st.put("houseno", t.whole, Last.BUILDING)
    return True


@reads(("区", "期", "组", "院", "队", "社"))
def name_part(st: TailState, t: Token) -> bool:
    """3区, 2期, 5组团, 2院, 3队, 1社: a numbered part of the compound name."""
    if t.suf not in ("区", "期", "组", "院", "队", "社"):
        return False
    st.p.poi = (st.p.poi or "") + t.whole
    st.spans.append(("poi", t.whole))
    st.last = Last.TEXT
    return True


@reads(("巷",))
def numbered_alley(st: TailState, t: Token) -> bool:
    """稠州西路81巷132号: a numbered alley off the road (subroad + subroadno in TRAIN)."""
    if t.suf != "巷":
        return False
    off_road = st.last is Last.ROAD and st.p.road is not None
    st.p.road = (st.p.road or "") + t.whole
    st.spans.append(("subroad" if off_road else "road", t.whole))
    if off_road:
        st.door_label = "subroadno"
    st.last = Last.ROAD
    return True


@reads(("弄", "支弄"))
def lane(st: TailState, t: Token) -> bool:
    """558弄, 3支弄: a lane. TRAIN: 路N弄M号 → 弄 subroad, M号 subroadno (6 in 10); 弄
    followed by a compound, building or bare number is the road's number (roadno, 8 in
    10). A second 弄 is read by the later rules."""
    if t.suf not in ("弄", "支弄") or not (st.p.lane is None or t.suf == "支弄"):
        return False
    st.p.lane = (st.p.lane or "") + t.whole
    lane_door = st.last is Last.ROAD and RE_LANE_DOOR.match(st.tail, t.end)
    st.spans.append(("subroad" if lane_door else "roadno", t.whole))
    st.last = Last.LANE if lane_door or st.last is not Last.ROAD else Last.LANE_NO
    return True


@reads(("单元", "室", "层"), dashed=True)
def door_then_dashes(st: TailState, t: Token) -> bool:
    """柳南一街58-130-7单元: right after the road, the first of dashed numbers ending in
    单元/室/层 is the door number; the rest is read by the next rules (never takes the
    token)."""
    if "-" not in t.num or t.suf not in ("单元", "室", "层"):
        return False
    if not (st.door_slot and t.num[0].isdigit()):
        return False
    head, _, t.num = t.num.partition("-")
    st.p.number = head
    st.spans.append((st.door_label if st.last is Last.ROAD else "subroadno", head))
    st.last = Last.NUMBER
    st.p.rules.append("door_then_dashes")  # fired, but the token goes on
    return False


def _dashed(st: TailState, t: Token) -> bool:
    """13-10-1206室, 4-11单元, 7-14号, B4-8层: building-unit-room written with dashes."""
    return "-" in t.num and t.suf in ("单元", "室", "号", "层") and not st.door_slot


@reads(("号",), dashed=True)
def dashed_shop_range(st: TailState, t: Token) -> bool:
    """2311-2312号: a range of shops is one room (TRAIN); so is X-Y号 after a floor."""
    if not _dashed(st, t) or t.suf != "号" or len(t.parts) != 2:
        return False
    if not (is_range(*t.parts) or st.last is Last.FLOOR):
        return False
    st.put("roomno", t.whole, Last.ROOM)
    return True


@reads(("号",), dashed=True)
def village_door_sub_number(st: TailState, t: Token) -> bool:
    """溪口村12-87号: in a village without a road, X-Y号 is a door plate with a
    sub-number (TRAIN 12 of 17)."""
    if not _dashed(st, t) or t.suf != "号" or len(t.parts) != 2:
        return False
    p = st.p
    if p.road is not None or p.number is not None or p.building is not None:
        return False
    if not (p.community or "").endswith("村") or RE_COMPOUND_END.search(st.last_txt):
        return False
    head, last = t.parts[0], t.parts[1] + t.suf
    p.number = head
    st.spans.append(("roadno", head))
    st.put("houseno", last, Last.BUILDING)
    return True


@reads(("单元", "室", "号", "层"), dashed=True)
def dashed_parts(st: TailState, t: Token) -> bool:
    """X-Y-Z室 / X-Y号 / X-Y单元: building-unit-room. TRAIN conventions for X-Y号: after a
    building (124栋44-178号) X is the unit and Y the room; otherwise a short Y is a unit
    (7-3号) and three digits or more a room (11-187号)."""
    if not _dashed(st, t):
        return False
    parts = t.parts
    head_parts, last_part = parts[:-1], parts[-1] + t.suf
    if len(head_parts) > 3:  # G56-B1-0-008-1室: more parts than levels
        head_parts = head_parts[:2] + ["-".join(head_parts[2:])]
    in_building = st.last is Last.BUILDING and st.p.unit is None
    short_y = len(parts[-1].lstrip(LETTERS)) <= 2
    kind = {
        "单元": "cellno",
        "室": "roomno",
        "层": "floorno",
        "号": "roomno" if len(parts) >= 3 or in_building or not short_y else "cellno",
    }[t.suf]
    labels = ["houseno", "cellno", "roomno"][: len(head_parts)]
    if kind == "cellno":
        labels = ["houseno"] * len(head_parts)
    elif in_building and len(head_parts) == 1 and kind == "roomno":
        labels = ["cellno"]
    for lab, part in zip(labels, head_parts, strict=True):
        st.put(lab, part)
    st.put(kind, last_part, _LAST_OF_LABEL[kind])
    return True


@reads(("栋",))
def building(st: TailState, t: Token) -> bool:
    """12栋 (幢, 座, 号楼 normalised to 栋): a building."""
    if t.suf != "栋":
        return False
    st.p.building = t.whole
    st.spans.append(("houseno", t.whole))
    st.last = Last.BUILDING
    return True


@reads(("米",))
def distance(st: TailState, t: Token) -> bool:
    """北100米: a distance to a landmark, not a number of the address (assist)."""
    if t.suf != "米":
        return False
    st.spans.append(("assist", t.whole))
    return True


@reads(("街",))
def market_aisle(st: TailState, t: Token) -> bool:
    """11街 not right after a road: a numbered aisle of a market (a unit)."""
    if t.suf != "街" or st.last is Last.ROAD:
        return False
    st.p.unit = t.whole
    st.spans.append(("cellno", t.whole))
    st.last = Last.UNIT
    return True


@reads(("单元", "层", "室"))
def named_part(st: TailState, t: Token) -> bool:
    """3单元, 5层, 502室: the suffix names the part."""
    if t.suf not in SUFFIX_PART:
        return False
    part, label = SUFFIX_PART[t.suf]
    setattr(st.p, part, t.whole)
    st.spans.append((label, t.whole))
    st.last = _LAST_OF_LABEL[label]
    return True


@reads((None,), dashed=True)
def door_with_three_parts(st: TailState, t: Token) -> bool:
    """将军路1326-11-6-434: door-building-unit-room; 沪江路8-12-1137: after a road three
    parts are building-unit-room in TRAIN (5 of 9)."""
    if not (st.door_slot and t.suf is None and len(t.parts) >= 3):
        return False
    parts = t.parts
    labels: tuple[str, ...] = ("houseno", "cellno", "roomno")
    if len(parts) >= 4:
        labels = (st.door_label if st.last is Last.ROAD else "subroadno",) + labels
        st.p.number = parts[0]
    values = parts[-len(labels) :] if len(parts) <= 4 else parts[:3] + ["-".join(parts[3:])]
    for lab, part in zip(labels, values, strict=True):
        st.spans.append((lab, part))
        if lab in ("houseno", "cellno", "roomno"):
            st.p.set_labelled(lab, part)
    st.last = Last.ROOM
    return True


@reads(("号", None))
def door_number(st: TailState, t: Token) -> bool:
    """38号 (or a bare 38) right after the road or lane: the door number. 82-11 right
    after a road is door 82, sub-number 11 (a range 389-399 stays whole)."""
    if not st.door_slot or t.suf not in ("号", None):
        return False
    pair = _split_pair(t.num) if st.last is Last.ROAD else None
    if pair:
        st.p.number = f"{t.num}号" if t.suf else t.num
        st.spans.append((st.door_label, pair[0]))
        st.spans.append(("houseno", pair[1] + (t.suf or "")))
    else:
        st.p.number = t.whole
        st.spans.append(("subroadno" if st.last is Last.LANE else st.door_label, t.whole))
    st.last = Last.NUMBER
    return True


@reads(("号",))
def door_without_road(st: TailState, t: Token) -> bool:
    """村133号: a door number without a road is a village or compound door plate (not
    after a compound name, where 号 numbers a building)."""
    p = st.p
    if t.suf != "号" or p.number is not None or p.road is not None or p.building is not None:
        return False
    if st.last not in (Last.START, Last.TEXT) or RE_COMPOUND_END.search(p.poi or ""):
        return False
    p.number = t.whole
    st.spans.append(("roadno", t.whole))
    st.last = Last.NUMBER
    return True


@reads(("号",))
def door_after_hamlet(st: TailState, t: Token) -> bool:
    """海王路石岸头130号: a hamlet or place named after the road carries the door plate
    (TRAIN: a number after such a name is roadno ~9 times in 10; after a compound name
    (…苑, …区, …园) it is a building number)."""
    p = st.p
    if t.suf != "号" or p.number is not None or p.road is None or p.building is not None:
        return False
    if st.last is not Last.TEXT or RE_COMPOUND_END.search(st.last_txt):
        return False
    p.number = t.whole
    st.spans.append((st.door_label, t.whole))
    st.last = Last.NUMBER
    return True


@reads(("号",))
def shop_number(st: TailState, t: Token) -> bool:
    """商贸城2163号, 市场C区569号: a stall or shop number in a market or mall; after a
    floor (10楼驿淘9175号, 九楼南88号) a shop number (TRAIN 12 of 16)."""
    p = st.p
    if t.suf != "号" or st.last is not Last.TEXT or p.building is not None or p.room is not None:
        return False
    market = RE_MARKET_END.search(p.poi or "")
    after_floor = p.floor is not None and not RE_ROAD_END.search(st.last_txt)
    if not (market or after_floor):
        return False
    st.put("roomno", t.whole, Last.ROOM)
    return True


@reads(("号",))
def second_number(st: TailState, t: Token) -> bool:
    """Another N号: 宏远路1820号12号 numbers a building at the door plate; after a building
    15栋11号6楼 a unit, 146栋1301号 and three digits ending the address (C幢586号) a room
    (TRAIN: 4 digits 10 of 10, 3 digits at the end 8 of 12); otherwise a room."""
    if t.suf != "号":
        return False
    p, num = st.p, t.num
    if p.building is None and st.last not in (Last.FLOOR, Last.UNIT, Last.ROOM):
        st.p.building = t.whole
        st.spans.append(("houseno", t.whole))
        st.last = Last.BUILDING
    elif (
        st.last is Last.BUILDING
        and p.unit is None
        and (len(num) <= 2 or len(num) == 3 and t.end < len(st.tail))
    ):
        p.unit = t.whole
        st.spans.append(("cellno", t.whole))
        st.last = Last.UNIT
    else:
        p.room = t.whole
        st.spans.append(("roomno", t.whole))
        st.last = Last.ROOM
    return True


@reads((None,))
def postcode(st: TailState, t: Token) -> bool:
    """甘霖路166号325600: a six-digit postcode ending the address (TRAIN 6 of 8)."""
    if t.suf is not None or len(t.num) != 6 or not t.num.isdigit() or t.end != len(st.tail):
        return False
    if st.last in (Last.BUILDING, Last.UNIT, Last.FLOOR):
        return False
    st.spans.append(("redundant", t.num))
    return True


@reads((None,))
def village_bare_door(st: TailState, t: Token) -> bool:
    """新安村1124, 占坂村留公坞138: a bare number in a village or hamlet is its door number
    (TRAIN 7 of 9)."""
    p = st.p
    if t.suf is not None or not t.num.isdigit():
        return False
    if p.number is not None or p.road is not None or p.building is not None:
        return False
    if st.last not in (Last.START, Last.TEXT) or not (p.community or "").endswith("村"):
        return False
    if RE_COMPOUND_END.search(st.last_txt):
        return False
    p.number = t.num
    st.spans.append(("roadno", t.num))
    st.last = Last.NUMBER
    return True


@reads((None,))
def letter_building_room(st: TailState, t: Token) -> bool:
    """10A1525, 13B3761: building 10A, room 1525 (TRAIN: 8 of 12); after a building the
    letter-number is the unit (A座89A9)."""
    num = t.num
    if t.suf is not None or not num[-1].isalpha() or not num[0].isdigit() or "-" in num:
        return False
    if not (t.end < len(st.tail) and st.tail[t.end].isdigit()):
        return False
    lab = "cellno" if st.p.building is not None and st.p.unit is None else "houseno"
    st.put(lab, num, Last.BUILDING if lab == "houseno" else Last.UNIT)
    return True


@reads(NUMBERS, dashed=True)
def room_span(st: TailState, t: Token) -> bool:
    """1106-1107: two shops, one room span; after a floor (一楼2648-117, 13楼A21-2) the
    whole X-Y is the shop or office number (TRAIN 13 of 14)."""
    parts = t.parts
    if len(parts) != 2 or not (is_range(*parts) or st.last is Last.FLOOR):
        return False
    st.p.room = st.p.room or t.num
    st.spans.append(("roomno", t.num))
    st.last = Last.ROOM
    return True


@reads(NUMBERS, dashed=True)
def building_unit_room(st: TailState, t: Token) -> bool:
    """8-2-301: building-unit-room."""
    parts = t.parts
    if len(parts) < 3 or st.p.building is not None:
        return False
    p = st.p
    p.building, p.unit, p.room = parts[0], parts[1], "-".join(parts[2:])
    st.spans.extend([("houseno", parts[0]), ("cellno", parts[1]), ("roomno", p.room)])
    st.last = Last.ROOM
    return True


@reads(NUMBERS, dashed=True)
def building_and_next(st: TailState, t: Token) -> bool:
    """17-586: building-room; 63-12: one or two digits after the dash are a unit (TRAIN:
    17 of 27 short ones)."""
    parts = t.parts
    if len(parts) != 2 or st.p.building is not None:
        return False
    if len(parts[1].rstrip(LETTERS)) <= 2:
        st.p.building, st.p.unit = parts
        st.spans.extend([("houseno", parts[0]), ("cellno", parts[1])])
        st.last = Last.UNIT
    else:
        st.p.building, st.p.room = parts
        st.spans.extend([("houseno", parts[0]), ("roomno", parts[1])])
        st.last = Last.ROOM
    return True


@reads(NUMBERS)
def inside_building(st: TailState, t: Token) -> bool:
    """A bare number after a building, unit, floor or door number: 113栋66 — one or two
    digits after a building are its unit (TRAIN 7 of 10; three digits or more are a room,
    360 of 362); X-Y after a building is unit-room; otherwise a room."""
    p, last = st.p, st.last
    if last not in (Last.BUILDING, Last.UNIT, Last.FLOOR, Last.NUMBER) and p.building is None:
        return False
    parts, num = t.parts, t.num
    if last is Last.BUILDING and p.unit is None and len(parts) == 2:
        p.unit, p.room = parts
        st.spans.extend([("cellno", parts[0]), ("roomno", parts[1])])
    elif last is Last.BUILDING and p.unit is None and num.isdigit() and len(num) <= 2:
        p.unit = num
        st.spans.append(("cellno", num))
        st.last = Last.UNIT
        return True
    else:
        p.room = num
        st.spans.append(("roomno", num))
    st.last = Last.ROOM
    return True


@reads(NUMBERS)
def bare_number(st: TailState, t: Token) -> bool:
    """Any other bare number: three characters or more a room, shorter a building."""
    if len(t.num.lstrip(LETTERS)) >= 3:
        st.p.room = t.num
        st.spans.append(("roomno", t.num))
        st.last = Last.ROOM
    else:
        st.p.building = t.num
        st.spans.append(("houseno", t.num))
        st.last = Last.BUILDING
    return True


#: The tail rules in the order they are tried; the first that returns True takes the
#: token (:func:`door_then_dashes` only rewrites it and lets the next rules read it).
TAIL_RULES: tuple[Rule, ...] = (
    sub_number_after_dash,
    highway,
    text_run,
    village_group,
    house_row,
    name_part,
    numbered_alley,
    lane,
    door_then_dashes,
    dashed_shop_range,
    village_door_sub_number,
    dashed_parts,
    building,
    distance,
    market_aisle,
    named_part,
    door_with_three_parts,
    door_number,
    door_without_road,
    door_after_hamlet,
    shop_number,
    second_number,
    postcode,
    village_bare_door,
    letter_building_room,
    room_span,
    building_unit_room,
    building_and_next,
    inside_building,
    bare_number,
)


#: For each token kind, and whether the number has a dash, the rules that can read it, in
#: :data:`TAIL_RULES` order (a number without a dash never gains one: the rules only cut
#: numbers).
RULES_BY_KIND: dict[tuple[str | None, bool], tuple[Rule, ...]] = {
    (kind, dash): tuple(
        r
        for r in TAIL_RULES
        if kind in r.kinds and (dash or not r.dashed)  # type: ignore[attr-defined]
    )
    for kind in SUFFIXES + ("txt", "hwy")
    for dash in (False, True)
}


def parse_tail(tail: str, p: ParsedAddress, after_road: bool, sub: bool = False) -> None:
    """Read the tail of an address into ``p`` (components, corpus spans, and the names of
    the rules that fired in ``p.rules``).

    Parameters
    ----------
    tail
        The normalised text after the road (or the whole text without a road).
    p
        The address being parsed; changed in place.
    after_road
        A road came before the tail.
    sub
        The road holds a side street or section: the corpus labels its number subroadno.
    """
    st = TailState(
        p, tail, Last.ROAD if after_road else Last.START, "subroadno" if sub else "roadno"
    )
    for m in RE_TOKEN.finditer(tail):
        hwy, gate, num, suf, sep, txt = m.groups()  # RE_TOKEN's groups, in order
        if sep:
            st.after_sep = True
            continue
        txt = txt or gate
        tok = Token(num, suf, txt, hwy, m.end(), st.after_sep)
        st.after_sep = False
        kind = "hwy" if hwy else "txt" if txt is not None else suf  # Token.kind
        for rule in RULES_BY_KIND[kind, num is not None and "-" in num]:
            if rule(st, tok):
                p.rules.append(rule.__name__)
                break
