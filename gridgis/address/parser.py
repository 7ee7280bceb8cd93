"""Parse one address into components: administrative prefix, road, then the tail."""

from __future__ import annotations

import re

from gridgis.address.admin import HAN, strip_admin
from gridgis.address.components import ParsedAddress
from gridgis.address.normalise import normalise_parts
from gridgis.address.roads import find_road, split_road
from gridgis.address.tail import parse_tail
from gridgis.standards import DEFAULT, Settings

#: Tails already read, by everything the tail rules look at: (tail, after a road, side
#: street, the place before the road, in a 村). Standard addresses repeat tails (38号,
#: 558弄38号), so an index of 100,000 addresses reads far fewer. The cached reading
#: holds an empty road, filled in on use (a numbered alley appends to it).
_TAIL_CACHE: dict[tuple, tuple[tuple, tuple, tuple]] = {}
_TAIL_CACHE_MAX = 200_000
_ROAD = "\x00"
_TAIL_FIELDS = ("road", "lane", "number", "poi", "building", "unit", "floor", "room")


def _read_tail(tail: str, p: ParsedAddress, after_road: bool, sub: bool = False) -> None:
    """:func:`gridgis.address.tail.parse_tail`, remembered (same result)."""
    village = (p.community or "").endswith("村")
    key = (tail, after_road, sub, p.poi, village)
    hit = _TAIL_CACHE.get(key)
    if hit is None:
        t = ParsedAddress(
            text="",
            road=_ROAD if after_road else None,
            poi=p.poi,
            community="村" if village else None,
        )
        parse_tail(tail, t, after_road, sub)
        fields = tuple((f, v) for f in _TAIL_FIELDS if (v := getattr(t, f)) is not None)
        hit = (fields, tuple(t.spans), tuple(t.rules))
        if len(_TAIL_CACHE) >= _TAIL_CACHE_MAX:
            _TAIL_CACHE.clear()
        _TAIL_CACHE[key] = hit
    fields, spans, rules = hit
    for f, v in fields:
        if _ROAD in v:
            v = v.replace(_ROAD, p.road or "")
        setattr(p, f, v)
    p.spans.extend(spans)
    p.rules.extend(rules)


#: Administrative prefixes already read, by the text's leading run of Han characters and
#: the configured city and district (see :func:`_strip_admin`).
_ADMIN_CACHE: dict[tuple[str, str, str], tuple[str, tuple, tuple]] = {}
_ADMIN_FIELDS = ("province", "city", "district", "town", "community")
_RE_HAN_RUN = re.compile(f"[{HAN}]*")
_RE_ONLY_HAN = re.compile(f"[{HAN}]*$")
#: The first characters of every community suffix (社区, 居委会, 村委会, 居民委员会, 村): the
#: one prefix pattern that may read digits ([Han or digit]{1,6} + suffix).
_RE_COMMUNITY_OPENER = re.compile("[村社居]")


def _strip_admin(s: str, p: ParsedAddress, settings: Settings) -> str:
    """:func:`gridgis.address.admin.strip_admin`, remembered (same result).

    Every prefix pattern reads Han characters only, looks ahead only for Han characters,
    and the community pattern reads digits only before a suffix opening with 村, 社 or 居.
    So when ``s`` = ``h`` + ``x`` with ``h`` its leading run of Han characters, ``x``
    non-empty and free of 村, 社 and 居, and the configured names are Han, the prefix lies
    in ``h`` and the reading does not depend on ``x``: ``h`` + "0" is read once and the
    answer reused (door plates of one road share ``h``: 黄浦区人民大道 of 黄浦区人民大道300号).
    """
    rules = settings.address
    j = _RE_HAN_RUN.match(s).end()
    if (
        j == len(s)
        or _RE_COMMUNITY_OPENER.search(s, j)
        or not _RE_ONLY_HAN.match(rules.city or "")
        or not _RE_ONLY_HAN.match(rules.district or "")
    ):
        return strip_admin(s, p, settings)
    key = (s[:j], rules.city or "", rules.district or "")
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
    p.spans.extend(spans)
    return rest + s[j:]


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
    p = ParsedAddress(text=norm, hints=hints)
    s = _strip_admin(norm, p, settings)
    p.rest = s
    m = find_road(s)
    if m is None:
        _read_tail(s, p, after_road=False)
        return p
    head = s[: m.start()]
    if head:
        p.poi = head
        p.spans.append(("poi", head))
    p.road, spans, sub = split_road(m.group(0))
    p.spans.extend(spans)
    _read_tail(s[m.end() :], p, after_road=True, sub=sub)
    return p
