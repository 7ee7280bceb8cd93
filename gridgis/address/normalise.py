"""One address text → one normalised text: the key every lookup compares.

Steps, in order (:func:`normalise`): full-width → half-width; traditional characters →
simplified (one table, from the maintained ``zhconv`` dictionaries, used in Python and
generated into the lookup page by :func:`normaliser_js`); upper-case Latin letters;
parenthesised hints set apart; a space between two numbers → ``-``; other spaces and
punctuation removed; Chinese numerals → digits where a numeric suffix follows; 一 typed for
a dash between digits → ``-``; a dash between two names dropped; synonyms of building,
stairwell, floor and room → 栋, 单元, 层, 室.

The tables and regular expressions are module constants so that the browser's copy is
*generated* from them (:func:`normaliser_js`), never written by hand.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

#: Full-width ASCII (U+FF01–FF5E) and the ideographic space to half-width, and the
#: bracket and dash variants people type to their ASCII form.
HALF_WIDTH: dict[int, int] = {i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
HALF_WIDTH |= {
    ord(k): ord(v)
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
        "＃": "#",
    }.items()
}


@functools.cache
def traditional_to_simplified() -> dict[int, int]:
    """Character table traditional → simplified (``str.translate`` form).

    Source: the one-character entries of the ``zh2Hans`` dictionary of the maintained
    ``zhconv`` package (MediaWiki's conversion tables), about 8,500 characters. Phrase
    entries are left out: keys compare characters, and the same table is applied to the
    index and to the query, so a character both forms share (乾/干) cannot make two keys
    differ. 紅花地 and 红花地, 號 and 号, 區 and 区 give one key.
    """
    import zhconv.zhconv as zc

    zc.loaddict()
    table = zc.zhcdicts["zh2Hans"]
    return {ord(k): ord(v) for k, v in table.items() if len(k) == 1 and len(v) == 1 and k != v}


CN_DIGIT = {
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
CN_UNIT = {"十": 10, "百": 100, "千": 1000}
CN_CHARS = "零〇○一二两三四五六七八九十百千"

#: What may follow a number: suffixes that make a Chinese numeral a number, not a name.
_NUM_SUFFIX = (
    r"(?:号楼|号院|号|支弄|弄|栋|幢|座|单元|门(?![县峡湾市镇村])|层|楼|室|户|期|区|组|巷|排)"
)

# A run of Chinese numerals directly before a numeric suffix. The run must not continue a
# word that is itself a numeral-name (三元里, 四川路, 十里河 are never followed by a
# suffix here, so they stay), and it must not be glued to digits already.
RE_CN_NUMBER = re.compile(rf"(?<![\d{CN_CHARS}])([{CN_CHARS}]{{1,12}})(?={_NUM_SUFFIX})")
#: 第 + numeral + suffix (第三栋, 第二单元)
RE_DI = re.compile(rf"第(\d+)(?={_NUM_SUFFIX})")
RE_HINT = re.compile(r"\(([^()]*)\)")
#: a space between two numbers separates them like a dash (13 2950室: building 13, room 2950)
RE_NUM_SPACE = re.compile(r"(?<=[0-9])\s+(?=[0-9])")
RE_DROP = re.compile(r"[\s,，.。、;；:：'\"“”‘’!！?？*·•/\\|<>《》「」『』]+")
RE_DASHES = re.compile(r"-{2,}")
#: 一 typed for a dash between digits (153一4, 11一8一646: 一 and - share a key stroke)
RE_YI_DASH = re.compile(r"(?<=\d)一(?=\d)")
#: a dash between two names only separates them (浙江-杭州-江干区) or ends a number (68-号)
RE_NAME_DASH = re.compile(r"(?<=[\u4e00-\u9fff])-(?=[\u4e00-\u9fff])|(?<=\d)-(?=号)")
#: 撞 and 懂 are pinyin-input slips for 幢/栋 (16撞10号, 94懂8单元)
RE_BUILDING = re.compile(r"([0-9]+[A-Z]?|[A-Z][0-9]*)(?:号楼|幢|座|#楼|#|号栋|号搂|撞|懂)")
#: N门 is a stairwell (单元: 5栋3门, 新村3门); N号门 is one only after a building (5栋3号门),
#: elsewhere a gate of a market or compound (义乌国际商贸城79号门, 工业区5号门) and stays
RE_UNIT = re.compile(r"(\d+)门(?![牌诊面店市口卫岗前外内洞])|(?<=栋)(\d+)号门(?![牌诊面店市口卫])")
RE_FLOOR = re.compile(r"(-?\d+)(?:楼(?![栋区院盘宇房])|F(?![A-Z])|层)")
RE_FLOOR_B = re.compile(r"B(\d)(?:层|F)")  # basement floors B1层 → -1层
RE_ROOM = re.compile(r"(\d+[A-Z]?)(?:房间|房|户)")

#: The synonym rewrites applied last, in order: (pattern, before, after): the match is
#: replaced by ``before`` + its first group that matched + ``after``.
SYNONYMS: tuple[tuple[re.Pattern, str, str], ...] = (
    (RE_BUILDING, "", "栋"),
    (RE_UNIT, "", "单元"),
    (RE_FLOOR_B, "-", "层"),
    (RE_FLOOR, "", "层"),
    (RE_ROOM, "", "室"),
)
#: Characters without which a synonym pattern cannot match (a cheap test that skips it).
_TRIGGERS = ("幢座#撞懂楼栋搂", "门", "B", "楼F层", "房户")


def _cn_to_int(s: str) -> int | None:
    """Chinese numeral to int: 十二 → 12, 二十三 → 23, 一〇二 → 102, 两 → 2."""
    if not s:
        return None
    if not any(c in CN_UNIT for c in s):  # digit by digit: 一〇二 → 102
        return int("".join(str(CN_DIGIT[c]) for c in s))
    total, current = 0, 0
    for c in s:
        if c in CN_DIGIT:
            current = CN_DIGIT[c]
        else:
            total += (current or 1) * CN_UNIT[c]
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
    if _HAS_CN(text):
        text = RE_CN_NUMBER.sub(_cn_sub, text)
    return RE_DI.sub(r"\1", text) if "第" in text else text


def to_half_width(text: str) -> str:
    """Full-width letters, digits, brackets and spaces to half-width (１２Ａ → 12A)."""
    return text.translate(HALF_WIDTH)


def to_simplified(text: str) -> str:
    """Traditional characters to simplified (紅花地 → 红花地), one character at a time."""
    return text.translate(traditional_to_simplified())


def _first_group(before: str, after: str):
    def repl(m: re.Match) -> str:
        return before + next(g for g in m.groups() if g is not None) + after

    return repl


_SYNONYM_SUBS = tuple(
    (rx, _first_group(b, a), re.compile(f"[{re.escape(trig)}]").search)
    for (rx, b, a), trig in zip(SYNONYMS, _TRIGGERS, strict=True)
)
_HAS_CN = re.compile(f"[{CN_CHARS}]").search
_ANY_TRIGGER = re.compile(f"[{re.escape(''.join(_TRIGGERS))}]").search


@dataclass(frozen=True)
class Normalised:
    """A normalised address text and the parenthesised hints taken out of it."""

    text: str
    hints: tuple[str, ...] = ()


@functools.cache
def _prepare_table() -> dict[int, int]:
    """:data:`HALF_WIDTH` and :func:`traditional_to_simplified` as one table (their keys
    are disjoint, and no half-width output is a traditional character)."""
    return traditional_to_simplified() | HALF_WIDTH


@functools.cache
def _prepare_chars() -> frozenset[str]:
    """The characters :func:`_prepare_table` rewrites."""
    return frozenset(map(chr, _prepare_table()))


def _prepare(text: str) -> str:
    """Half-width, simplified, upper-case: the first steps of every key (the table is
    applied only to a text holding one of its characters: most hold none)."""
    if not _prepare_chars().isdisjoint(text):
        text = text.translate(_prepare_table())
    return text.upper()


def normalise(text: str) -> Normalised:
    """Normalise one address text (see the module notes for the steps).

    Parameters
    ----------
    text
        An address as typed.

    Returns
    -------
    Normalised
        ``text`` (may be empty) and ``hints`` (the bracketed parts, normalised).

    Examples
    --------
    >>> normalise("報春路５５８弄三十八號").text
    '报春路558弄38号'
    """
    return Normalised(*normalise_parts(text))


def normalise_parts(text: str) -> tuple[str, tuple[str, ...]]:
    """:func:`normalise` as a plain pair (text, hints), for the parser's inner loop."""
    if not isinstance(text, str):
        return "", ()
    s = _prepare(text)
    hints: list[str] = []
    if "(" in s:
        for _ in range(3):  # nested brackets, innermost first
            found = RE_HINT.findall(s)
            if not found:
                break
            hints.extend(h for h in found if h.strip())
            s = RE_HINT.sub("", s)
        s = s.replace("(", "").replace(")", "")
    # each step is skipped when the characters it needs are absent (same result, faster):
    # str.isprintable() is False for every whitespace but the ASCII space
    if " " in s or not s.isprintable():
        s = RE_NUM_SPACE.sub("-", s)
    s = RE_DROP.sub("", s)
    if "一" in s:
        s = RE_YI_DASH.sub("-", s)
    if "-" in s:
        s = RE_DASHES.sub("-", s).strip("-")
    s = numerals_to_digits(s)
    if "-" in s:
        s = RE_NAME_DASH.sub("", s)
    if _ANY_TRIGGER(s):
        for rx, repl, triggered in _SYNONYM_SUBS:
            if triggered(s):
                s = rx.sub(repl, s)
    if not hints:
        return s, ()
    hints_n = tuple(RE_DROP.sub("", numerals_to_digits(h)) for h in hints)
    return s, tuple(h for h in hints_n if h)


def normalise_name(text: str) -> str:
    """Normalise a compound/POI name for matching: like :func:`normalise` but the text in
    brackets is kept (海底捞火锅(打浦路店) → 海底捞火锅打浦路店: the branch matters)."""
    if not isinstance(text, str):
        return ""
    s = _prepare(text).replace("(", "").replace(")", "")
    return numerals_to_digits(RE_DROP.sub("", s))


def address_key(text: str) -> str:
    """The exact-match key of an address text: :func:`normalise` with its hints dropped.
    The lookup page computes the same key with the JavaScript of :func:`normaliser_js`."""
    return normalise(text).text


# --------------------------------------------------------------------------------------
# The browser's copy, generated from the tables above
# --------------------------------------------------------------------------------------


def _js_regex(rx: re.Pattern, flags: str = "g") -> str:
    """A Python pattern as a JavaScript ``new RegExp`` expression (the patterns here use
    only syntax both engines read alike: classes, look-arounds, groups, \\d and \\s)."""
    if "(?P" in rx.pattern:
        raise ValueError(f"named group in {rx.pattern!r}: not portable to JavaScript")
    return f"new RegExp({json.dumps(rx.pattern, ensure_ascii=False)}, {json.dumps(flags)})"


_JS_TEMPLATE = """
var GG_HALF = __HALF__, GG_T2S = __T2S__;
var GG_CN_DIGIT = __CN_DIGIT__, GG_CN_UNIT = __CN_UNIT__;
var GG_RE = {cn: __RE_CN__, di: __RE_DI__, hint: __RE_HINT__,
  numSpace: __RE_NUM_SPACE__, drop: __RE_DROP__, yiDash: __RE_YI_DASH__,
  dashes: __RE_DASHES__, nameDash: __RE_NAME_DASH__};
var GG_SYN = __SYN__;
function ggPrepare(t) {
  var o = '';
  for (var ch of String(t)) {
    var c = ch.codePointAt(0);
    if (GG_HALF[c] !== undefined) c = GG_HALF[c];
    var s = String.fromCodePoint(c);
    if (GG_T2S[s] !== undefined) s = GG_T2S[s];
    o += s;
  }
  return o.replace(/[a-z]/g, function(x){ return x.toUpperCase(); });
}
function ggCnToInt(s) {
  var unit = false;
  for (var ch of s) if (GG_CN_UNIT[ch] !== undefined) unit = true;
  if (!unit) { var d = ''; for (var ch2 of s) d += String(GG_CN_DIGIT[ch2]); return String(parseInt(d, 10)); }
  var total = 0, cur = 0;
  for (var c of s) {
    if (GG_CN_DIGIT[c] !== undefined) cur = GG_CN_DIGIT[c];
    else { total += (cur || 1) * GG_CN_UNIT[c]; cur = 0; }
  }
  return String(total + cur);
}
function ggNumerals(s) {
  s = s.replace(GG_RE.cn, function(m, g){ return ggCnToInt(g); });
  return s.replace(GG_RE.di, '$1');
}
function ggNormalise(t) {
  if (typeof t !== 'string') return {text: '', hints: []};
  var s = ggPrepare(t), hints = [];
  if (s.indexOf('(') >= 0) {
    for (var k = 0; k < 3; k++) {
      var found = [], m; GG_RE.hint.lastIndex = 0;
      while ((m = GG_RE.hint.exec(s)) !== null) found.push(m[1]);
      if (!found.length) break;
      found.forEach(function(h){ if (h.trim()) hints.push(h); });
      s = s.replace(GG_RE.hint, '');
    }
    s = s.split('(').join('').split(')').join('');
  }
  s = s.replace(GG_RE.numSpace, '-').replace(GG_RE.drop, '').replace(GG_RE.yiDash, '-');
  s = s.replace(GG_RE.dashes, '-').replace(/^-+|-+$/g, '');
  s = ggNumerals(s).replace(GG_RE.nameDash, '');
  GG_SYN.forEach(function(r){
    s = s.replace(r[0], function(){
      var g = Array.prototype.slice.call(arguments, 1, 1 + r[3]);
      return r[1] + g.filter(function(x){ return x !== undefined && x !== ''; })[0] + r[2];
    });
  });
  hints = hints.map(function(h){ return ggNumerals(h).replace(GG_RE.drop, ''); })
               .filter(function(h){ return h; });
  return {text: s, hints: hints};
}
function ggNormaliseName(t) {
  if (typeof t !== 'string') return '';
  var s = ggPrepare(t).split('(').join('').split(')').join('');
  return ggNumerals(s.replace(GG_RE.drop, ''));
}
function ggKey(t) { return ggNormalise(t).text; }
"""


def normaliser_js() -> str:
    """JavaScript defining ``ggNormalise(text) → {text, hints}``, ``ggNormaliseName`` and
    ``ggKey`` with the same steps, tables and patterns as :func:`normalise`,
    :func:`normalise_name` and :func:`address_key`, generated from this module's constants
    (the lookup page embeds it; a test runs both on the same texts)."""
    t2s = {chr(k): chr(v) for k, v in traditional_to_simplified().items()}
    syn = ",".join(
        f"[{_js_regex(rx)}, {json.dumps(b, ensure_ascii=False)}, "
        f"{json.dumps(a, ensure_ascii=False)}, {rx.groups}]"
        for rx, b, a in SYNONYMS
    )
    parts = {
        "__HALF__": json.dumps({str(k): v for k, v in HALF_WIDTH.items()}),
        "__T2S__": json.dumps(t2s, ensure_ascii=False),
        "__CN_DIGIT__": json.dumps(CN_DIGIT, ensure_ascii=False),
        "__CN_UNIT__": json.dumps(CN_UNIT, ensure_ascii=False),
        "__RE_CN__": _js_regex(RE_CN_NUMBER),
        "__RE_DI__": _js_regex(RE_DI),
        "__RE_HINT__": _js_regex(RE_HINT),
        "__RE_NUM_SPACE__": _js_regex(RE_NUM_SPACE),
        "__RE_DROP__": _js_regex(RE_DROP),
        "__RE_YI_DASH__": _js_regex(RE_YI_DASH),
        "__RE_DASHES__": _js_regex(RE_DASHES),
        "__RE_NAME_DASH__": _js_regex(RE_NAME_DASH),
        "__SYN__": f"[{syn}]",
    }
    out = _JS_TEMPLATE
    for k, v in parts.items():
        out = out.replace(k, v)
    return out
