"""Parse one address into components: administrative prefix, road, then the tail."""

from __future__ import annotations

from gridgis.address.admin import strip_admin
from gridgis.address.components import ParsedAddress
from gridgis.address.normalise import normalise
from gridgis.address.roads import find_road, split_road
from gridgis.address.tail import parse_tail
from gridgis.standards import DEFAULT, Settings


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
    norm = normalise(text)
    p = ParsedAddress(text=norm.text, hints=norm.hints)
    s = strip_admin(norm.text, p, settings)
    p.rest = s
    m = find_road(s)
    if m is None:
        parse_tail(s, p, after_road=False)
        return p
    head = s[: m.start()]
    if head:
        p.poi = head
        p.spans.append(("poi", head))
    p.road, spans, sub = split_road(m.group(0))
    p.spans.extend(spans)
    parse_tail(s[m.end() :], p, after_road=True, sub=sub)
    return p
