"""The parts of an address (:class:`ParsedAddress`) and the helpers shared by the
parser and the matcher."""

from __future__ import annotations

from dataclasses import dataclass, field

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

#: Fields set from a corpus label (the parser records spans with the corpus labels).
FIELD_OF_LABEL = {"houseno": "building", "cellno": "unit", "roomno": "room", "floorno": "floor"}

#: Latin letters that may prefix or suffix a number (A123, 10A).
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(slots=True)
class ParsedAddress:
    """An address split into components (normalised texts; ``None`` where absent).

    ``rest`` is the normalised text with the administrative prefix (province, city,
    district, town, community) removed: the exact-match key. ``spans`` lists
    ``(label, text)`` in order with the labels of the Chinese address parsing corpus
    (road, roadno, poi, houseno, cellno, floorno, roomno, ...), for evaluation.
    ``rules`` names the tail-parser rules that fired, in order (for tests and tracing).
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
    rules: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, str | None]:
        """Components as a plain dict (JSON-serialisable)."""
        return {c: getattr(self, c) for c in COMPONENTS}

    def set_labelled(self, label: str, value: str) -> None:
        """Set the field of a corpus label (houseno → building, …) unless already set."""
        name = FIELD_OF_LABEL[label]
        if getattr(self, name) is None:
            setattr(self, name, value)


def bare(value: str | None, suffix: str) -> str:
    """Number without its suffix ("38号" → "38"); "" for None."""
    if not value:
        return ""
    return value[: -len(suffix)] if value.endswith(suffix) else value
