"""The parser's remembered readings give exactly a plain reading (issue 14, point 6: the
index build was made faster by reading tails once per shape, with the digits written as
placeholders and filled back; no component, span or rule may change).

The reference here reads every step plainly: no cache of tails, administrative prefixes or
roads."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gridgis.address.admin import strip_admin
from gridgis.address.components import ParsedAddress
from gridgis.address.normalise import normalise_parts
from gridgis.address.parser import (
    _TAIL_CACHE,
    clear_caches,
    parse,
    parse_components,
    parse_many,
)
from gridgis.address.roads import find_road, split_road
from gridgis.address.tail import parse_tail
from gridgis.standards import DEFAULT, AddressRules, Settings

POI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "shanghai-amap-poi"
CONFIGURED = Settings(address=AddressRules(city="上海市", district="闵行区"))


def plain(text: str, settings: Settings = DEFAULT) -> ParsedAddress:
    """Parse without any remembered reading."""
    norm, hints = normalise_parts(text)
    p = ParsedAddress(text=norm, hints=hints)
    s = strip_admin(norm, p, settings)
    p.rest = s
    m = find_road(s)
    if m is None:
        parse_tail(s, p, False)
        return p
    head = s[: m.start()]
    if head:
        p.poi = head
        p.spans.append(("poi", head))
    p.road, spans, sub = split_road(m.group(0))
    p.spans.extend(spans)
    parse_tail(s[m.end() :], p, True, sub)
    return p


def components(p: ParsedAddress) -> ParsedAddress:
    """``p`` without spans and rules (what :func:`parse_components` returns)."""
    return ParsedAddress(
        **{f: getattr(p, f) for f in ParsedAddress.__slots__ if f not in ("spans", "rules")}
    )


def assert_same(texts: list[str], settings: Settings = DEFAULT) -> None:
    want = [plain(t, settings) for t in texts]
    for _ in range(2):  # first reading, then remembered
        for t, w in zip(texts, want, strict=True):
            assert parse(t, settings) == w, t
            assert parse_components(t, settings) == components(w), t
    clear_caches()
    assert parse_many(texts, settings) == [components(w) for w in want]


# Pairs of one shape: the second is read from the first one's reading.
SAME_SHAPE = [
    ("报春路558弄38号101室", "报春路312弄26号502室"),
    ("闵行区报春路5栋301号", "闵行区报春路7栋902号"),  # 3 digits ending the address: a room
    ("闵行区报春路5栋301号2室", "闵行区报春路8栋404号6室"),  # ... not at the end: a unit
    ("稠州西路81巷132号", "稠州西路17巷906号"),  # an alley appended to the road
    ("将军路1326号11栋6单元434室", "将军路2871号45栋2单元909室"),
    ("新安村1124", "新安村5577"),
    ("10A1525", "13B3761"),
    ("320国道8号", "104国道2号"),
    ("甘霖路166号325600", "甘霖路982号110011"),  # a postcode
    ("商贸城2163号", "商贸城9017号"),
    ("宏远路1820号12号", "宏远路3377号45号"),
    ("人民路88号{7}号", "人民路12号{3}号"),  # braces survive the templates
    ("龙山沟村1组23号", "龙山沟村7组88号"),
    ("中山路一百七十九号", "中山路二百零五号"),
]

# Numbers around a dash: the rules compare their values, so one shape is read once per
# outcome of the comparisons (a sub-number 82-11 or a range 82-91; shops 2311-2312 or
# not 2311-2399); each text here is read after the others of its shape.
DASHED = [
    "老杭海路9号-7",
    "老杭海路5号-3",
    "沪江路8-12-1137",
    "沪江路9-33-2206",
    "将军路1326-11-6-434",
    "将军路2077-45-2-909",
    "溪口村12-87号",
    "溪口村55-11号",
    "宝山路2311-2312号",
    "宝山路2311-2399号",
    "宝山路4511-4509号",
    "宝山路389-399号",
    "宝山路82-11号",
    "宝山路82-91号",
    "宝山路82-82号",
    "柳南一街58-130-7单元",
    "柳南一街61-140-3单元",
    "一楼2648-117",
    "一楼2648-2650",
    "13楼A21-2",
    "13楼A21-22",
]

# Tails read as written: characters the placeholders use.
AS_WRITTEN = [
    "人民路٣号",  # an Arabic-Indic digit in the text
    "人民路\u0660\u0661号5室",
    "\u0660\u0661大楼人民路5号",
]


@pytest.mark.parametrize("pair", SAME_SHAPE, ids=[a for a, _ in SAME_SHAPE])
def test_same_shape_read_once_and_filled_exactly(pair):
    clear_caches()
    assert_same(list(pair))
    for settings in (DEFAULT, CONFIGURED):
        assert_same(list(pair), settings)


def test_one_reading_per_shape():
    """Door plates of one shape share one remembered reading."""
    clear_caches()
    texts = [
        f"报春路{lane}弄{door}号{room}室"
        for lane, door, room in [(558, 38, 101), (312, 26, 502), (100, 99, 999)]
    ]
    got = [parse_components(t) for t in texts]
    assert len(_TAIL_CACHE) == 1
    assert [(p.lane, p.number, p.room) for p in got] == [
        ("558弄", "38号", "101室"),
        ("312弄", "26号", "502室"),
        ("100弄", "99号", "999室"),
    ]


def test_numbers_around_a_dash_read_per_comparison():
    clear_caches()
    assert_same(DASHED)
    # worked answers: door 82 with sub-number 11; a range 82-91 stays one door number
    assert parse("宝山路82-11号").spans[-2:] == [("roadno", "82"), ("houseno", "11号")]
    assert parse("宝山路82-91号").spans[-1] == ("roadno", "82-91号")


@pytest.mark.parametrize("text", AS_WRITTEN)
def test_tails_read_as_written(text):
    clear_caches()
    assert_same([text, text])


def _random_texts(n: int, seed: int) -> list[str]:
    """Addresses built from the tail's token kinds with random numbers (lengths 1–6),
    after a road, a compound or nothing."""
    rng = random.Random(seed)
    heads = ["报春路", "闵行区报春路", "上海市浦东新区张江路", "新安村", "阳光花园", "", "S20公路"]
    suffixes = ["号", "弄", "栋", "单元", "层", "室", "区", "期", "组", "巷", "排", "院", "街"]
    suffixes += ["米", "队", "社", "支弄", "号楼", "", "F", "-"]
    texts = ["报春路"]
    names = ["附近", "大厦", "商城", "市场", "小区", "中心", "门", "团", "A", "B"]
    for _ in range(n):
        parts = [rng.choice(heads)]
        for _ in range(rng.randint(1, 5)):
            if rng.random() < 0.25:
                parts.append(rng.choice(names))
            else:
                num = str(rng.randint(1, 10 ** rng.randint(1, 6)))
                parts.append(num + rng.choice(suffixes))
        texts.append("".join(parts))
    return texts


def test_random_tails_same_as_plain():
    """Random token sequences, each read twice over (the second time with other digits of
    the same lengths), give the plain reading."""
    clear_caches()
    texts = _random_texts(3000, seed=14)
    rng = random.Random(7)
    again = ["".join(str(rng.randrange(10)) if c.isdigit() else c for c in t) for t in texts]
    assert_same(texts + again)


@pytest.mark.shared
def test_shanghai_door_plates_same_as_plain():
    """Every real Shanghai door plate, as written and with its digits replaced by others
    (same shapes, other values)."""
    if not POI.exists():
        pytest.skip("../shared/data/shanghai-amap-poi absent")
    import pandas as pd

    frames = [pd.read_csv(f, dtype=str) for f in sorted(POI.glob("*.csv"))]
    df = pd.concat(frames, ignore_index=True).dropna(subset=["address"])
    texts = list(dict.fromkeys((df["adname"].fillna("") + df["address"]).tolist()))[:20000]
    rng = random.Random(3)
    varied = ["".join(str(rng.randrange(10)) if c.isdigit() else c for c in t) for t in texts]
    clear_caches()
    assert_same(texts + varied)
