"""The normaliser skips its later steps for a text holding none of the characters they
read (issue 14, point 6: index build speed). Every step must then be a no-op: checked
step by step on random texts over an alphabet of Han characters, digits, letters, the
characters the steps read and others."""

from __future__ import annotations

import random

from gridgis.address.normalise import (
    _ANY_STEP,
    _SYNONYM_SUBS,
    RE_DASHES,
    RE_DROP,
    RE_NAME_DASH,
    RE_NUM_SPACE,
    RE_YI_DASH,
    _prepare,
    normalise_parts,
    numerals_to_digits,
)

ALPHABET = (
    "报春路弄号栋幢座单元层楼室房户门村社区期组巷排院街米队大厦市场中心"
    "一二三四五六七八九十百千零〇○两第"
    "0123456789ABFZ#-—~ ,，.。、;:()（）\t\u3000·/"
    "曹琳米线镇坪路店新安阳光花园"
)


def _all_steps(s: str) -> str:
    """The steps after the hints, each applied unconditionally."""
    s = RE_NUM_SPACE.sub("-", s)
    s = RE_DROP.sub("", s)
    s = RE_YI_DASH.sub("-", s)
    s = RE_DASHES.sub("-", s).strip("-")
    s = numerals_to_digits(s)
    s = RE_NAME_DASH.sub("", s)
    for rx, repl, _ in _SYNONYM_SUBS:
        s = rx.sub(repl, s)
    return s


def test_texts_without_step_characters_are_left_as_they_are():
    rng = random.Random(14)
    skipped = 0
    for _ in range(20_000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 14)))
        s = _prepare(text)
        if "(" in s or _ANY_STEP(s):
            continue
        skipped += 1
        assert _all_steps(s) == s, text
        assert normalise_parts(text) == (s, ()), text
    assert skipped > 100


def test_texts_with_step_characters_still_normalised():
    # worked answers: each needs a step the gate must not skip
    assert normalise_parts("报春路三十八号")[0] == "报春路38号"
    assert normalise_parts("报春路 12号")[0] == "报春路12号"
    assert normalise_parts("报春路12 3号")[0] == "报春路12-3号"
    assert normalise_parts("报春路153一4号")[0] == "报春路153-4号"
    assert normalise_parts("5幢3门")[0] == "5栋3单元"
    assert normalise_parts("第三栋")[0] == "3栋"
    assert normalise_parts("浙江-杭州")[0] == "浙江杭州"
    assert normalise_parts("报春路5号")[0] == "报春路5号"
