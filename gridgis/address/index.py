"""The matching index over a workspace's standard addresses (:class:`AddressIndex`)."""

from __future__ import annotations

import bisect
import contextlib
import gc
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd

from gridgis.address.admin import RE_CITY, RE_DISTRICT, RE_PROVINCE
from gridgis.address.components import ParsedAddress
from gridgis.address.normalise import normalise, normalise_name
from gridgis.address.parser import parse_many
from gridgis.standards import DEFAULT, Settings


def address_key(p: ParsedAddress) -> str:
    """The exact-match key of a parsed address: the text without its administrative
    prefix, but with a 村 name kept (宝山三村84号 and 真如西村84号 are two places: in
    Shanghai a 新村 is a housing estate, not an administrative unit)."""
    return village(p) + p.rest


def village(p: ParsedAddress) -> str:
    """The 村 name read as a community (宝山三村), or ""."""
    c = p.community or ""
    return c if c.endswith("村") and not c.endswith("委会") else ""


def street_of(p: ParsedAddress) -> str:
    """What a door number of ``p`` is on: its road, else its compound or village."""
    return p.road or p.poi or village(p)


#: Every province, city or district name ends (or, for a province's short name, is
#: followed) by one of these within the first 12 characters (the longest: a province's
#: short name of 3, a name of up to 6 and 地区 or 新区).
_RE_ADMIN_END = re.compile("[省市区州盟县旗]")


def strip_one_admin(name: str) -> str | None:
    """``name`` without its first province, city or district name (the shortest of them
    that opens it: 闵行区 of 闵行区上海市…), or None when it opens with none. Towns and
    communities are not stripped from names: 曹琳米线镇坪路店 is not in a town 曹琳米线镇."""
    if not _RE_ADMIN_END.search(name, 0, 12):
        return None
    found = [m.group(0) for rx in (RE_PROVINCE, RE_CITY, RE_DISTRICT) if (m := rx.match(name))]
    if not found:
        return None
    prefix = min(found, key=len)
    rest = name[len(prefix) :]
    return rest if len(rest) >= 2 and not rest.startswith(("场", "心")) else None


def name_variants(name: str) -> list[str]:
    """A normalised place name and the same name without its administrative prefixes, one
    at a time, longest first (闵行区上海市燎原双语学校 → 上海市燎原双语学校 → 燎原双语学校)."""
    out = [name] if name else []
    s = name
    for _ in range(4):
        s = strip_one_admin(s) if s else None
        if not s:
            break
        out.append(s)
    return out


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the tables are built.

    The build makes a few container objects per row and frees none of them, so the
    collector would walk the growing tables again and again for nothing (a third of the
    build time for 100,000 addresses). Afterwards the new objects are moved to the oldest
    generation (``gc.freeze`` then ``gc.unfreeze``) so that the first young collection does
    not walk them all either; that is skipped when the process has frozen objects of its
    own. Nothing is leaked: the objects stay collectable.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        if was_on:
            gc.enable()


class _Reading(NamedTuple):
    """What the index keeps of one parsed text (the tables' entries for its row)."""

    district: str | None
    city: str | None
    rest: str
    key: str
    road: str | None  # the road its row is listed under, or None
    door: tuple[str, str, str] | None  # (street, lane, number) of its door plate
    poi: str | None
    parts: tuple[str, str, str, str]  # building, unit, floor, room (bare numbers)
    parsed: ParsedAddress


_new_reading = tuple.__new__


def _entries(
    p: ParsedAddress,
    road: str | None,
    number: str | None,
    building: str | None,
    unit: str | None,
) -> tuple[str | None, tuple[str, str, str] | None, tuple[str, str, str, str]]:
    """The road, door-plate key and parts of a row (the parse, or a field given beside it)."""
    # (x or "").removesuffix(s) is bare(x, s), without a Python call per field
    parts = (
        (building or "").removesuffix("栋"),
        (unit or "").removesuffix("单元"),
        (p.floor or "").removesuffix("层"),
        (p.room or "").removesuffix("室"),
    )
    street = road or p.poi or village(p)
    door = (street, p.lane or "", number.removesuffix("号")) if street and number else None
    return road, door, parts


def _reading(p: ParsedAddress) -> _Reading:
    """The index entries of a parsed text when no field is given beside it
    (:func:`_entries`, :func:`address_key` and :func:`village` written out: this runs
    once per distinct text of the index)."""
    c = p.community or ""
    vil = c if c.endswith("村") and not c.endswith("委会") else ""
    road, number = p.road or None, p.number
    parts = (
        (p.building or "").removesuffix("栋"),
        (p.unit or "").removesuffix("单元"),
        (p.floor or "").removesuffix("层"),
        (p.room or "").removesuffix("室"),
    )
    street = road or p.poi or vil
    door = (street, p.lane or "", number.removesuffix("号")) if street and number else None
    # tuple.__new__: the named tuple without its Python-level constructor
    return _new_reading(
        _Reading, (p.district, p.city, p.rest, vil + p.rest, road, door, p.poi, parts, p)
    )


def _with_given(r: _Reading, given: Callable[[str, int], str | None], i: int) -> _Reading:
    """``r`` with row ``i``'s given road, number, building and unit filling what the text
    lacks (the text wins where it has them)."""
    p = r.parsed
    road, door, parts = _entries(
        p,
        p.road or given("road", i) or None,
        p.number or given("number", i),
        p.building or given("building_no", i),
        p.unit or given("unit", i),
    )
    return r._replace(road=road, door=door, parts=parts)


def _column(df: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in df.columns:
        return None
    return df[name].astype("string").fillna("").to_numpy(dtype=object)


def layer_records(addresses) -> pd.DataFrame:
    """The rows :class:`AddressIndex` reads from the ``addresses`` layer (a point
    GeoDataFrame in EPSG:4326): its fields, and ``lon``, ``lat`` (degrees) for the point.
    An index of some of these rows (kept in order) lists each of them under the same keys
    as the index of all of them (see :func:`gridgis.address.match.probe`)."""
    df = pd.DataFrame(addresses.drop(columns=addresses.geometry.name))
    df["lon"] = addresses.geometry.x.to_numpy()
    df["lat"] = addresses.geometry.y.to_numpy()
    return df


class AddressIndex:
    """A matching index over standard addresses.

    Parameters
    ----------
    addresses
        Rows with ``address_id``, ``text``, ``lon``, ``lat`` (WGS84 degrees) and optional
        ``name`` (compound or POI), ``aliases`` (other names of the place: 俗称, former
        names, abbreviations, separated by ``settings.address.alias_separators``),
        ``district``, ``road``, ``number``, ``building_no``, ``unit``, ``building_id``.
        Use :meth:`from_layer` for the ``addresses`` layer.
    settings
        ``settings.address`` gives the city, district and the confidence switches.

    Notes
    -----
    Matching (:func:`gridgis.address.match.match`): the exact key; road + lane + door
    number (the road exact, or corrected when exactly one known road close to it carries
    that number); a place name, alias or unique partial name (+ building + unit); road
    only; fuzzy candidates. Several rows sharing a key are one place when they lie within
    ``settings.address.same_place_m``; otherwise the query's own district, then the
    configured district and city, decide; if they cannot, the answer is ambiguous.
    """

    def __init__(self, addresses: pd.DataFrame, settings: Settings = DEFAULT) -> None:
        self.settings = settings
        df = addresses.reset_index(drop=True)
        for col in ("address_id", "text"):
            if col not in df.columns:
                raise ValueError(f"addresses: missing field '{col}'")
        n = len(df)
        self.address_id = df["address_id"].astype(str).to_numpy()
        self.text = df["text"].fillna("").astype(str).to_numpy()
        self.lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float)
        self.lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float)
        empty = np.full(n, "", dtype=object)
        self.building_id = _column(df, "building_id")
        if self.building_id is None:
            self.building_id = empty.copy()
        self.name = _column(df, "name")
        if self.name is None:
            self.name = empty.copy()
        self.district = empty.copy()
        self.city = empty.copy()
        self.rest = empty.copy()
        self.exact: dict[str, list[int]] = defaultdict(list)
        self.door: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        self.names: dict[str, list[int]] = defaultdict(list)
        self.road_rows: dict[str, list[int]] = defaultdict(list)
        self.door_roads: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.parts: list[tuple[str, str, str, str]] = []  # building, unit, floor, room
        self._variants: dict[str, list[str]] = {}
        with _collector_paused():
            self._fill(df)
            self._aliases(_column(df, "aliases"))
        del self._variants
        for road, lane, number in self.door:
            self.door_roads[(lane, number)].append(road)
        self.roads = list(self.road_rows)
        self.keys = list(self.exact)
        self.name_keys = list(self.names)
        self._reversed: list[tuple[str, str]] | None = None

    def _fill(self, df: pd.DataFrame) -> None:
        """Parse every row into the tables. Each distinct text is parsed once
        (:func:`gridgis.address.parser.parse_many`), and each distinct given field, name
        and (text, name) pair worked out once (a household-level list repeats them); the
        rows are then visited in order, table by table, so every table holds its rows and
        keys in the same order as a row-by-row build."""
        settings = self.settings
        col = {c: _column(df, c) for c in ("district", "road", "number", "building_no", "unit")}
        given_cache: dict[str, str] = {}

        def given(c: str, i: int) -> str | None:
            values = col[c]
            if values is None:
                return None
            raw = values[i]
            out = given_cache.get(raw)
            if out is None:
                out = given_cache[raw] = normalise(raw).text
            return out

        texts = self.text.tolist()
        distinct = list(dict.fromkeys(texts))
        readings = dict(zip(distinct, map(_reading, parse_many(distinct, settings)), strict=True))
        rows = [readings[t] for t in texts]
        if any(col[c] is not None for c in ("road", "number", "building_no", "unit")):
            rows = [_with_given(r, given, i) for i, r in enumerate(rows)]
        city_default = settings.address.city or ""
        gd = col["district"]
        if gd is None:
            self.district = np.array([r.district or "" for r in rows], dtype=object)
        else:
            self.district = np.array(
                [r.district or d for r, d in zip(rows, gd.tolist(), strict=True)], dtype=object
            )
        self.city = np.array([r.city or city_default for r in rows], dtype=object)
        self.rest = np.array([r.rest for r in rows], dtype=object)
        self.parts = [r.parts for r in rows]
        exact, door, road_rows = self.exact, self.door, self.road_rows
        for i, r in enumerate(rows):
            if r.key:
                exact[r.key].append(i)
        for i, r in enumerate(rows):
            if r.road:
                road_rows[r.road].append(i)
        for i, r in enumerate(rows):
            if r.door is not None:
                door[r.door].append(i)
        self._fill_names(rows)

    def _fill_names(self, rows: list[_Reading]) -> None:
        """The name table: each row under the variants of its name, then of the place its
        text names. The rows are grouped by (name, place) pair (a household-level list
        repeats them), each pair's keys worked out once, in the order the pairs first
        appear, so keys and rows come in the order of a row-by-row build."""
        raw_codes, raws = pd.factorize(self.name)
        poi_codes, pois = pd.factorize(np.array([r.poi for r in rows], dtype=object))
        codes, _ = pd.factorize(raw_codes * (len(pois) + 1) + poi_codes + 1)
        order = np.argsort(codes, kind="stable")
        ends = np.cumsum(np.bincount(codes, minlength=codes.max() + 1 if len(codes) else 0))
        names: dict[str, str] = {}  # raw name → normalised
        table = self.names
        merged: set[str] = set()  # keys listed by more than one pair: rows to sort
        start = 0
        for end in ends.tolist():
            group = order[start:end].tolist()
            first = group[0]
            raw, poi = raws[raw_codes[first]], rows[first].poi
            nm = names.get(raw)
            if nm is None:
                nm = names[raw] = normalise_name(raw)
            for k in self._name_keys(nm, poi):
                listed = table.get(k)
                if listed is None:
                    table[k] = list(group)
                else:
                    listed.extend(group)
                    merged.add(k)
            start = end
        for k in merged:
            table[k].sort()

    def _name_keys(self, name: str, poi: str | None) -> tuple[str, ...]:
        """The name keys a row is listed under: the variants of its name, then of the
        place its text names (when another), each once, in that order."""
        out = dict.fromkeys(self._name_variants(name))
        if poi and poi != name:
            out.update(dict.fromkeys(self._name_variants(poi)))
        return tuple(out)

    def _name_variants(self, name: str) -> list[str]:
        variants = self._variants.get(name)
        if variants is None:
            variants = self._variants[name] = name_variants(name)
        return variants

    def _add_name(self, name: str, row: int) -> None:
        for v in self._name_variants(name):
            rows = self.names[v]
            if not rows or rows[-1] != row:
                rows.append(row)

    def _aliases(self, aliases: np.ndarray | None) -> None:
        if aliases is None:
            return
        seps = re.escape(self.settings.address.alias_separators)
        split = re.compile(f"[{seps}]") if seps else None
        for i, text in enumerate(aliases):
            for alias in split.split(text) if split else [text]:
                self._add_name(normalise_name(alias.strip()), i)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_layer(cls, addresses, settings: Settings = DEFAULT) -> AddressIndex:
        """Build from the ``addresses`` layer (point GeoDataFrame in EPSG:4326)."""
        return cls(layer_records(addresses), settings)

    def __len__(self) -> int:
        return len(self.address_id)

    # -- look-ups used by the matcher ---------------------------------------------------
    def names_ending_with(self, part: str) -> list[str]:
        """Known place names that end with ``part`` (竹园中学 → 上海市浦东新区竹园中学), by
        binary search over the reversed names (sorted once, on first use)."""
        if self._reversed is None:
            self._reversed = sorted((k[::-1], k) for k in self.name_keys)
        rev = part[::-1]
        lo = bisect.bisect_left(self._reversed, (rev, ""))
        out = []
        for r, k in self._reversed[lo:]:
            if not r.startswith(rev):
                break
            out.append(k)
        return out

    def spread_m(self, rows: list[int]) -> float:
        """Largest distance (m, equirectangular) between the rows' points."""
        lon, lat = self.lon[rows], self.lat[rows]
        if np.isnan(lon).any():
            return float("inf")
        k = 111_320.0
        dx = (lon.max() - lon.min()) * k * np.cos(np.radians(lat.mean()))
        dy = (lat.max() - lat.min()) * k
        return float(np.hypot(dx, dy))

    def match(self, text: str):
        """Match one address text (:func:`gridgis.address.match.match`)."""
        from gridgis.address.match import match

        return match(self, text)

    def match_many(
        self, texts: Iterable[str], progress: Callable[[int, int], None] | None = None
    ) -> list:
        """Match many texts (identical texts are matched once). ``progress(done, total)``
        is called every 1,000 texts when given."""
        from gridgis.address.match import match

        texts = list(texts)
        cache: dict[str, object] = {}
        out = []
        for i, t in enumerate(texts):
            key = t if isinstance(t, str) else ""
            m = cache.get(key)
            if m is None:
                m = cache[key] = match(self, key)
            out.append(m)
            if progress is not None and (i + 1) % 1000 == 0:
                progress(i + 1, len(texts))
        if progress is not None:
            progress(len(texts), len(texts))
        return out
