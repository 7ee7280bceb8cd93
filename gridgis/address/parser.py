"""Parse one address into components: administrative prefix, road, then the tail."""

from __future__ import annotations

from gridgis.address.admin import strip_admin
from gridgis.address.components import ParsedAddress
from gridgis.address.normalise import normalise_parts
from gridgis.address.roads import find_road, split_road
from gridgis.address.tail import parse_tail
from gridgis.standards import DEFAULT, Settings

#: Tails already read, by everything the tail rules look at: (tail, after a road, side
#: street, the place before the road, in a 村). Standard addresses repeat tails (38号,
#: 558弄38号), so an index of 100,000 addresses reads far fewer. The road is a placeholder
#: in the cached reading (a numbered alley appends to it).
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
    s = strip_admin(norm, p, settings)
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
