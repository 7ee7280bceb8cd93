"""Parse one address into components: administrative prefix, road, then the tail."""

from __future__ import annotations

import functools
import re
import unicodedata

from gridgis.address.admin import HAN, strip_admin
from gridgis.address.components import ParsedAddress
from gridgis.address.normalise import normalise_parts
from gridgis.address.roads import find_road, split_road
from gridgis.address.tail import parse_tail
from gridgis.standards import DEFAULT, Settings

#: Tails already read, by everything the tail rules look at: (the tail's shape, after a
#: road, side street, the place before the road, in a 村, the comparisons of numbers
#: around a dash). See :func:`_read_tail`.
_TAIL_CACHE: dict[tuple, list] = {}  # [] for a shape read as written
_TAIL_CACHE_MAX = 200_000
_ROAD = "\x00"
_SEP = "\x01"
_TAIL_FIELDS = ("road", "lane", "number", "poi", "building", "unit", "floor", "room")
#: ASCII digits → "0": the shape of a tail (558弄38号101室 → 000弄00号000室).
_TO_ZERO = str.maketrans("123456789", "000000000")
_RE_DIGIT_RUN = re.compile("[0-9]+")
#: The zero of every block of ten decimal digits of the first plane outside ASCII and the
#: full-width block (Arabic-Indic U+0660, Devanagari U+0966, …): a tail is read in its
#: shape with the digits of its j-th number written in block j, digits of the same value
#: that say which of the tail's numbers they belong to.
_ZEROS = [
    z
    for z in range(0x80, 0x10000)
    if unicodedata.category(chr(z)) == "Nd"
    and unicodedata.decimal(chr(z)) == 0
    and not 0xFF10 <= z <= 0xFF19
    and all(unicodedata.decimal(chr(z + d), None) == d for d in range(10))
]
_PLACEHOLDER_CLASS = "".join(f"{chr(z)}-{chr(z + 9)}" for z in _ZEROS)
#: ASCII digits → the digits of block j, for each block.
_TO_BLOCK = [str.maketrans("0123456789", "".join(chr(z + d) for d in range(10))) for z in _ZEROS]
_RE_PLACEHOLDER = re.compile(f"[{_PLACEHOLDER_CLASS}]")
_RE_PLACEHOLDER_RUN = re.compile(f"[{_PLACEHOLDER_CLASS}]+")


def _shape_readable(shape: str, poi: str | None) -> bool:
    """Whether a tail may be read in its shape: the tail rules read a number's digits
    through its length and ``str.isdigit`` (what the shape keeps) and compare the values
    of the two numbers of a dashed pair (82-11, 2311-2312: the door sub-number and
    :func:`gridgis.address.tail.is_range`: what :func:`_dash_bits` keeps). Not when the
    tail has more numbers than there are blocks of placeholders, or when it or the place
    before the road (which the reading may copy) holds a placeholder already."""
    return (
        len(_RE_DIGIT_RUN.findall(shape)) <= len(_ZEROS)
        and not _RE_PLACEHOLDER.search(shape)
        and not (poi and _RE_PLACEHOLDER.search(poi))
    )


def _placeholders(tail: str) -> str:
    """``tail`` with the digits of its j-th number written in block j of :data:`_ZEROS`."""
    blocks = iter(_TO_BLOCK)
    return _RE_DIGIT_RUN.sub(lambda m: m.group().translate(next(blocks)), tail)


def _dash_bits(runs: list[str]) -> tuple[tuple[bool, bool], ...]:
    """What the tail rules may compare of numbers written around a dash: for each two
    successive runs of digits a, b: b > a (:func:`gridgis.address.tail._split_pair`) and
    0 < b - a <= 20 (:func:`gridgis.address.tail.is_range`; lengths are in the shape)."""
    values = [int(r) for r in runs]
    return tuple((b > a, 0 < b - a <= 20) for a, b in zip(values, values[1:], strict=False))


def _template(values: list[str], read: str) -> str | None:
    """``values`` joined by :data:`_SEP` as a :meth:`str.format` template: each run of
    placeholders that is a whole number of ``read`` (the tail written with placeholders)
    becomes ``{i}``, the tail's i-th run of digits. None when a value holds part of a
    number or two numbers run together, or a mark of the cache."""
    if any(_SEP in v for v in values):
        return None
    index = {run: f"{{{i}}}" for i, run in enumerate(_RE_PLACEHOLDER_RUN.findall(read))}
    joined = _SEP.join(values).replace("{", "{{").replace("}", "}}")
    try:
        return _RE_PLACEHOLDER_RUN.sub(lambda m: index[m.group()], joined)
    except KeyError:
        return None


def _tail_reading(tail: str, p: ParsedAddress, after_road: bool, sub: bool) -> list | None:
    """Read ``tail`` (written with placeholders) for the cache: the names of the fields
    set and a template of their values (see :func:`_template`), the fields holding the
    road, the spans (their template is made on first use), and the rules fired. None when
    the reading cannot be remembered."""
    if any(_ROAD in x or _SEP in x for x in (tail, p.poi or "")):
        return None  # the cache's own marks
    t = ParsedAddress(
        text="",
        road=_ROAD if after_road else None,
        poi=p.poi,
        community="村" if (p.community or "").endswith("村") else None,
    )
    parse_tail(tail, t, after_road, sub)
    fields = [(f, v) for f in _TAIL_FIELDS if (v := getattr(t, f)) is not None]
    values = _template([v for _, v in fields], tail)
    if values is None:
        return None
    names = tuple(f for f, _ in fields)
    road = tuple(i for i, (_, v) in enumerate(fields) if _ROAD in v)
    return [names, values, road, tail, t.spans, None, tuple(t.rules)]


def _spans_template(hit: list) -> tuple[tuple[str, ...], str] | None:
    """The labels and the template of the spans of a cached reading (made once)."""
    if hit[5] is None:
        spans = _template([v for _, v in hit[4]], hit[3])
        hit[5] = (tuple(lab for lab, _ in hit[4]), spans) if spans is not None else ()
    return hit[5] or None


def _read_tail(
    tail: str, p: ParsedAddress, after_road: bool, sub: bool = False, trace: bool = True
) -> None:
    """:func:`gridgis.address.tail.parse_tail`, remembered by the tail's shape (same
    result).

    Standard addresses repeat the shape of their tails (558弄38号101室 and 312弄26号502室
    are both 000弄00号000室). A tail is read once per shape (and, with a dash, per
    :func:`_dash_bits`), its digits written as placeholders of the same value that say
    which digit they are (:data:`_ZEROS`); that reading is the one of every tail of the
    key because the rules see the same lengths, kinds of characters and comparisons
    (:func:`_shape_readable`); the values read are kept as templates of the tail's runs of
    digits (:func:`_template`), filled with the runs of each tail. A tail that cannot be
    read so is read as written. The cached reading holds an empty road, filled in on use
    (a numbered alley appends to it). Without ``trace`` the spans and rules are not
    copied.
    """
    shape = tail.translate(_TO_ZERO)
    runs = _RE_DIGIT_RUN.findall(tail) if "0" in shape else ()
    bits = _dash_bits(runs) if "-" in shape else ()
    key = (shape, after_road, sub, p.poi, (p.community or "").endswith("村"), bits)
    hit = _TAIL_CACHE.get(key)
    if hit is None:
        if _shape_readable(shape, p.poi):
            hit = _tail_reading(_placeholders(tail), p, after_road, sub)
        if len(_TAIL_CACHE) >= _TAIL_CACHE_MAX:
            _TAIL_CACHE.clear()
        hit = _TAIL_CACHE[key] = hit or []  # []: read as written
    spans = _spans_template(hit) if hit and trace else ()
    if not hit or spans is None:  # read as written
        parse_tail(tail, p, after_road, sub)
        if not trace:
            p.spans.clear()
            p.rules.clear()
        return
    names, values, road = hit[0], hit[1], hit[2]
    if names:
        values = values.format(*runs).split(_SEP)
        if road:  # the road the tail goes on: the one before it
            before = p.road or ""
            for i in road:
                values[i] = values[i].replace(_ROAD, before)
        for f, v in zip(names, values, strict=True):
            setattr(p, f, v)
    if trace:
        labels, template = spans
        if labels:
            p.spans.extend(zip(labels, template.format(*runs).split(_SEP), strict=True))
        p.rules.extend(hit[6])


#: Administrative prefixes already read, by the text's leading run of Han characters and
#: the configured city and district (see :func:`_strip_admin`).
_ADMIN_CACHE: dict[tuple[str, str, str], tuple[str, tuple, tuple]] = {}
_ADMIN_FIELDS = ("province", "city", "district", "town", "community")
_RE_HAN_RUN = re.compile(f"[{HAN}]*")
_RE_ONLY_HAN = re.compile(f"[{HAN}]*$")
#: The first characters of every community suffix (社区, 居委会, 村委会, 居民委员会, 村): the
#: one prefix pattern that may read digits ([Han or digit]{1,6} + suffix).
_RE_COMMUNITY_OPENER = re.compile("[村社居]")


@functools.lru_cache(maxsize=64)
def _han_only(city: str, district: str) -> bool:
    """The configured city and district are written in Han characters only."""
    return bool(_RE_ONLY_HAN.match(city) and _RE_ONLY_HAN.match(district))


@functools.lru_cache(maxsize=65_536)
def _split_road(road: str) -> tuple[str, tuple[tuple[str, str], ...], bool]:
    """:func:`gridgis.address.roads.split_road`, remembered (door plates share roads)."""
    name, spans, sub = split_road(road)
    return name, tuple(spans), sub


def _admin_config(settings: Settings) -> tuple[str, str, bool]:
    """The configured city and district, and whether both are written in Han characters
    only (then the prefix of a text can be remembered)."""
    rules = settings.address
    city, district = rules.city or "", rules.district or ""
    return city, district, _han_only(city, district)


def _strip_admin(
    s: str,
    p: ParsedAddress,
    settings: Settings,
    trace: bool = True,
    config: tuple[str, str, bool] | None = None,
) -> str:
    """:func:`gridgis.address.admin.strip_admin`, remembered (same result).

    Every prefix pattern reads Han characters only, looks ahead only for Han characters,
    and the community pattern reads digits only before a suffix opening with 村, 社 or 居.
    So when ``s`` = ``h`` + ``x`` with ``h`` its leading run of Han characters, ``x``
    non-empty and free of 村, 社 and 居, and the configured names are Han, the prefix lies
    in ``h`` and the reading does not depend on ``x``: ``h`` + "0" is read once and the
    answer reused (door plates of one road share ``h``: 黄浦区人民大道 of 黄浦区人民大道300号).
    Without ``trace`` the spans are not copied. ``config``: :func:`_admin_config` of
    ``settings`` when known.
    """
    city, district, han_only = config or _admin_config(settings)
    j = _RE_HAN_RUN.match(s).end()
    if j == len(s) or not han_only or _RE_COMMUNITY_OPENER.search(s, j):
        return strip_admin(s, p, settings)
    key = (s[:j], city, district)
    hit = _ADMIN_CACHE.get(key)
    if hit is None:
        q = ParsedAddress(text="")
        rest = strip_admin(s[:j] + "0", q, settings)
        if not rest.endswith("0"):  # cannot happen (see above); read it plainly
            return strip_admin(s, p, settings)
        fields = tuple((f, v) for f in _ADMIN_FIELDS if (v := getattr(q, f)) is not None)
        hit = (rest[:-1], fields, tuple(q.spans))
        if len(_ADMIN_CACHE) >= _TAIL_CACHE_MAX:
            _ADMIN_CACHE.clear()
        _ADMIN_CACHE[key] = hit
    rest, fields, spans = hit
    for f, v in fields:
        setattr(p, f, v)
    if trace:
        p.spans.extend(spans)
    return rest + s[j:]


def clear_caches() -> None:
    """Forget every tail and administrative prefix read so far (for timing cold builds)."""
    _TAIL_CACHE.clear()
    _ADMIN_CACHE.clear()
    _split_road.cache_clear()


def parse(text: str, settings: Settings = DEFAULT) -> ParsedAddress:
    """Parse one address into components.

    Parameters
    ----------
    text
        An address as typed (normalised here with :func:`gridgis.address.normalise`).
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
    norm, hints = normalise_parts(text)
    return _parse(norm, hints, settings, trace=True)


def parse_components(text: str, settings: Settings = DEFAULT) -> ParsedAddress:
    """:func:`parse` without the corpus spans and the names of the rules that fired
    (``spans`` and ``rules`` are left empty): the components only, what the address
    index keeps, read faster."""
    norm, hints = normalise_parts(text)
    return _parse(norm, hints, settings, trace=False)


def parse_many(texts: list, settings: Settings = DEFAULT) -> list[ParsedAddress]:
    """:func:`parse_components` of each text (the same results, in order), one step at a
    time over all of them (normalise, administrative prefix, road, tail): each step's
    patterns and tables stay in the processor's caches, which makes a long list about a
    fifth faster to read than text by text."""
    ps = [ParsedAddress(text=norm, hints=hints) for norm, hints in map(normalise_parts, texts)]
    config = _admin_config(settings)
    rests = [_strip_admin(p.text, p, settings, False, config) for p in ps]
    tails = [_road(s, p, False) for s, p in zip(rests, ps, strict=True)]
    for (tail, after_road, sub), p in zip(tails, ps, strict=True):
        _read_tail(tail, p, after_road, sub, False)
        if p.spans or p.rules:  # read plainly somewhere: drop them
            p.spans.clear()
            p.rules.clear()
    return ps


def _parse(norm: str, hints: tuple[str, ...], settings: Settings, trace: bool) -> ParsedAddress:
    p = ParsedAddress(text=norm, hints=hints)
    s = _strip_admin(norm, p, settings, trace)
    tail, after_road, sub = _road(s, p, trace)
    _read_tail(tail, p, after_road, sub, trace)
    if not trace and (p.spans or p.rules):  # read plainly somewhere: drop them
        p.spans.clear()
        p.rules.clear()
    return p


def _road(s: str, p: ParsedAddress, trace: bool) -> tuple[str, bool, bool]:
    """Record ``s`` (the text without its administrative prefix) as ``p.rest``, and its
    road and the place before it; return the tail, whether a road came before it, and
    whether the road holds a side street or section."""
    p.rest = s
    m = find_road(s)
    if m is None:
        return s, False, False
    head = s[: m.start()]
    if head:
        p.poi = head
    p.road, spans, sub = _split_road(m.group(0))
    if trace:
        if head:
            p.spans.append(("poi", head))
        p.spans.extend(spans)
    return s[m.end() :], True, sub
