"""Roads: finding the road name in an address, and comparing road names.

A road name ends with 路, 街, 大道, 公路, 巷, 胡同, 弄, 里, 段, 线 (and 条 after a numeral in
Beijing: 东四十条); the first one followed by a number is the address's road.
"""

from __future__ import annotations

import functools
import re

from gridgis.address.admin import HAN

# 条 after a numeral is a Beijing lane (东四十条, 中关村北二条)
ROAD_SUFFIX = (
    r"(?:大道|大街|公路|路|街|巷|胡同|道|(?<![\d])弄|里|段|线|(?<=[一二三四五六七八九十])条)"
)
RE_ROAD = re.compile(
    rf"[{HAN}A-Z0-9]{{1,10}}?{ROAD_SUFFIX}(?:[东南西北中]?[0-9]*段)?"
    rf"(?=[\dA-Z]|$)"
)
RE_TWO_ROADS = re.compile(
    rf"^([{HAN}]{{2,8}}?(?:大道|大街|路|街))(?!道)([{HAN}]{{2,8}}(?:大道|大街|路|街|巷|弄))$"
)
RE_SECTION = re.compile(r"[东南西北中][0-9]*段$")
#: 1层11街, B7区11街: a numbered aisle of a market (a unit), not a road
RE_NOT_ROAD = re.compile(r"层|^[\dA-Z]+街$|[区场城期][\dA-Z]+街$")
RE_ROAD_ANY = re.compile(rf"[{HAN}A-Z0-9]{{1,8}}?(?:大道|大街|公路|路|街|胡同)")
#: A name ending like this is a road, lane or alley.
RE_ROAD_END = re.compile(r"(?:路|街|道|巷|弄)$")


def find_road(s: str) -> re.Match | None:
    """The road of an address without its administrative prefix: the first road name
    followed by a number (or ending the text), else a road name opening the text and
    followed by a name (人民路菜市场); ``None`` when there is none."""
    for m in RE_ROAD.finditer(s):
        if not RE_NOT_ROAD.search(m.group(0)):
            return m
    m2 = RE_ROAD_ANY.search(s)
    if m2 and m2.start() == 0 and m2.end() < len(s) and not s[m2.end()].isdigit():
        return m2
    return None


def split_road(road: str) -> tuple[str, list[tuple[str, str]], bool]:
    """The road of the door number, the corpus spans of a road name, and whether it holds
    a side street or a section.

    金城路金莱街 is a street off a road (road + subroad, the number belongs to the second);
    环城北路东段 is a section of the road (road + subroad in the corpus).
    """
    two = RE_TWO_ROADS.match(road)
    if two:
        return two.group(2), [("road", two.group(1)), ("subroad", two.group(2))], True
    sec = RE_SECTION.search(road)
    if sec and sec.start() >= 2:
        return road, [("road", road[: sec.start()]), ("subroad", sec.group(0))], True
    return road, [("road", road)], False


# --------------------------------------------------------------------------------------
# Comparing road names: sound, shape, and the characters that make another road
# --------------------------------------------------------------------------------------

#: Characters that make two road names different roads, never a typo of each other
#: (中山北路 ≠ 中山南路, 一路 ≠ 二路, 路 ≠ 街) when both differing characters are among them;
#: when one is, only a sound- or shape-alike slip is forgiven (冬 for 东).
DISTINCT_CHARS = frozenset(
    "东南西北中上下前后左右内外新老大小" + "零〇一二两三四五六七八九十百千" + "0123456789"
    "路街道巷弄里段线"
)

#: Look-alike characters confused when read or written by hand (one group per string).
#: A project list of common confusions, not a dictionary: extend it where queries show
#: more.
SHAPE_ALIKE_GROUPS = (
    "己已巳",
    "未末",
    "戊戌戍",
    "日曰",
    "土士",
    "干千于",
    "人入八",
    "大太犬",
    "王玉主",
    "木本术",
    "田由甲申",
    "天夭",
    "刀力",
    "贝见",
    "拨拔",
    "侯候",
    "汩汨",
    "陈陆",
    "杨扬",
    "徐涂",
    "浦蒲",
    "沪泸",
    "淞凇",
    "宝实",
    "崇祟",
    "睢雎",
    "晴睛",
    "佳住",
    "山出",
    "兰芏",
    "鸟乌",
    "免兔",
    "折拆",
    "候喉",
    "辨辩辫",
    "祟崇",
    "苑宛",
    "泾经",
    "凯岂",
    "埔浦",
    "桥侨",
    "栖棲",
    "莘辛",
    "渡度",
)
_SHAPE: dict[str, frozenset[str]] = {}
for _g in SHAPE_ALIKE_GROUPS:
    for _c in _g:
        _SHAPE[_c] = _SHAPE.get(_c, frozenset()) | frozenset(_g)

#: Pinyin-input confusions folded away (applied in order to a tone-less syllable).
_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


def fold_syllable(syllable: str) -> str:
    """A tone-less pinyin syllable with the pinyin-input confusions folded: z/zh, c/ch,
    s/sh, l/n, an/ang, en/eng, in/ing (zhang → zan, ning → lin)."""
    for a, b in _INITIALS:
        if syllable.startswith(a):
            syllable = b + syllable[len(a) :]
            break
    for a, b in _FINALS:
        if syllable.endswith(a):
            return syllable[: -len(a)] + b
    return syllable


@functools.cache
def sounds(ch: str) -> frozenset[str]:
    """Every reading of one character (tone-less, folded), from the ``pypinyin`` library;
    empty for a character without a reading (digits, letters)."""
    from pypinyin import Style, pinyin

    readings = pinyin(ch, style=Style.NORMAL, heteronym=True, errors="ignore")
    return frozenset(fold_syllable(r) for r in (readings[0] if readings else ()) if r)


def sound_alike(a: str, b: str) -> bool:
    """Two characters share a reading once tones and the pinyin-input confusions are
    ignored (东/冬, 长/常, 南/楠, 乐/勒)."""
    return bool(sounds(a) & sounds(b))


def shape_alike(a: str, b: str) -> bool:
    """Two characters are a listed look-alike pair (:data:`SHAPE_ALIKE_GROUPS`)."""
    return b in _SHAPE.get(a, ())


def road_difference(given: str, known: str) -> tuple[int, int] | None:
    """How a road name as given differs from a known one: (sound- or shape-alike
    characters, other characters), or None when the two cannot be one road (different
    lengths, a changed character that makes another road, or nothing in common).

    >>> road_difference("延吉冬路", "延吉东路")
    (1, 0)
    >>> road_difference("中山北路", "中山南路") is None
    True
    """
    if len(given) != len(known) or given == known:
        return None
    soft = other = 0
    for a, b in zip(given, known, strict=True):
        if a == b:
            continue
        if a in DISTINCT_CHARS and b in DISTINCT_CHARS:
            return None
        if sound_alike(a, b) or shape_alike(a, b):
            soft += 1
        elif a in DISTINCT_CHARS or b in DISTINCT_CHARS:
            return None
        else:
            other += 1
    if soft + other >= len(known) - 1:
        return None
    return soft, other
