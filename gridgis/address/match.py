"""Matching one query against an :class:`~gridgis.address.index.AddressIndex`, in stages.

Each stage either decides (returns a :class:`Match` ending in a named
:class:`~gridgis.address.policy.Rule`) or passes to the next:

1. :func:`exact_stage`: the exact key (normalised text without administrative prefix);
2. :func:`door_stage`: road (+ lane) + door number, the road known exactly
   (:func:`door_plate_stage`), else corrected when exactly one known road close to the
   given name carries the number (:func:`door_near_stage`);
3. :func:`name_stage`: a place name, alias, or the name without its prefixes
   (+ building + unit);
4. :func:`partial_name_stage`: a unique part ending one known name (竹园中学);
5. :func:`fallback_stage`: a road alone (:func:`road_only_stage`), or fuzzy candidates
   (:func:`fuzzy_stage`, never confident).

:func:`probe` runs the same stages on one part of an index (a shard of a partitioned
lookup) up to the fuzzy search, and says where the first answer came from and which rows
its look-ups returned: see :func:`probe` for why that decides the whole index's answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from gridgis.address.admin import PROVINCES
from gridgis.address.components import ParsedAddress, bare
from gridgis.address.index import AddressIndex, address_key, name_variants, street_of
from gridgis.address.normalise import normalise_name
from gridgis.address.parser import parse
from gridgis.address.policy import Rule, is_confident, reason
from gridgis.address.roads import road_difference

#: Match levels, most precise first.
LEVELS = ("room", "unit", "building", "door_plate", "compound", "road", "none")


@dataclass
class Match:
    """The outcome of matching one query.

    ``row`` is the matched row position in the index (``None`` when nothing confident or
    unambiguous was found); ``candidates`` are ``(row, score)`` pairs, best first (score:
    rapidfuzz similarity of the names, 100 when exact; descriptive, it decides nothing).
    ``rule`` is the policy rule that decided, ``reason`` says why in words.
    """

    query: str
    parsed: ParsedAddress
    level: str = "none"
    score: float = 0.0
    confident: bool = False
    row: int | None = None
    candidates: list[tuple[int, float]] = field(default_factory=list)
    reason: str = ""
    rule: Rule = Rule.NOT_FOUND
    tied: list[int] = field(default_factory=list)
    """All rows that matched equally well in different places (an ambiguous answer)."""


@dataclass
class Query:
    """A query being matched: its text, its parse, and the index."""

    text: str
    q: ParsedAddress
    index: AddressIndex
    touched: list[int] | None = None
    """When a list (:func:`probe`), the rows the deciding stage's look-ups returned."""
    at: int = 0
    """Where in its stage the answer came from (the name tried, see :func:`probe`)."""

    def touch(self, rows: list[int]) -> None:
        """Record rows a look-up returned (only when recording, see :func:`probe`)."""
        if self.touched is not None:
            self.touched.extend(rows)

    @property
    def level(self) -> str:
        q = self.q
        if q.room:
            return "room"
        if q.unit:
            return "unit"
        if q.building:
            return "building"
        return "door_plate" if q.number else "compound"

    def decide(self, m: Match, rule: Rule, detail: str = "") -> Match:
        """Close ``m`` with ``rule``: confident only when the rule allows it and one row
        was found; otherwise the row is withdrawn (candidates stay)."""
        m.rule = rule
        m.confident = m.row is not None and is_confident(rule, self.index.settings.address)
        if not m.confident:
            m.row = None
        m.reason = reason(rule, detail)
        return m


def candidates(index: AddressIndex, rows: list[int], score: float) -> list[tuple[int, float]]:
    k = index.settings.address.max_candidates
    return [(r, score) for r in rows[:k]]


def resolve(index: AddressIndex, rows: list[int], q: ParsedAddress) -> tuple[list[int], bool]:
    """Narrow rows sharing a key to one place. Returns (rows, unique_place)."""
    rows = list(dict.fromkeys(rows))
    rules = index.settings.address
    if len(rows) <= 1 or index.spread_m(rows) <= rules.same_place_m:
        return rows, True
    for want, arr in (
        (q.district, index.district),
        (rules.district, index.district),
        (q.city, index.city),
        (rules.city, index.city),
    ):
        if not want:
            continue
        kept = [
            r
            for r in rows
            if arr[r] and (arr[r] == want or arr[r].startswith(want) or want.startswith(arr[r]))
        ]
        if kept and len(kept) < len(rows):
            rows = kept
            if len(rows) == 1 or index.spread_m(rows) <= rules.same_place_m:
                return rows, True
    return rows, False


def refine(index: AddressIndex, rows: list[int], q: ParsedAddress) -> tuple[list[int], str]:
    """Among rows of one door plate or place, keep those agreeing on building, unit and
    room (numbers compared exactly) and say how far the agreement goes
    (``unknown_building`` when the place's buildings are known and this is not one)."""
    parts = index.parts
    qb, qu, qr = bare(q.building, "栋"), bare(q.unit, "单元"), bare(q.room, "室")
    level, depth = "door_plate", 0
    if qb:
        same_b = [r for r in rows if parts[r][0] == qb]
        if not same_b and any(parts[r][0] for r in rows):
            return rows, "unknown_building"
        if same_b:
            rows, level, depth = same_b, "building", 1
            same_u = [r for r in rows if qu and parts[r][1] == qu]
            if same_u:
                rows, level, depth = same_u, "unit", 2
                same_r = [r for r in rows if qr and parts[r][3] == qr]
                if same_r:
                    return same_r, "room"
    # stopped at a level: prefer the row of that level itself (no unit or room beyond
    # it), so that 502室 never returns the record of 501室
    fields = (0, 1, 3)[depth:]
    want = {0: qb, 1: qu, 3: qr}
    agree = [r for r in rows if all(parts[r][f] == want[f] for f in fields)]
    if agree and qr and not depth:
        return agree, "room"  # e.g. a shop number at a door plate: B2147室
    plain = [r for r in rows if not any(parts[r][f] for f in fields)]
    return agree or plain or rows, level


# -- stages ------------------------------------------------------------------------------


def exact_stage(x: Query, m: Match) -> Match | None:
    """The same key (normalised text without administrative prefix) is in the index."""
    rows = x.index.exact.get(address_key(x.q))
    if not rows:
        return None
    x.touch(rows)
    rows, unique = resolve(x.index, rows, x.q)
    m.level, m.score = x.level, 100.0
    m.candidates = candidates(x.index, rows, 100.0)
    if not unique:
        m.tied = rows
        return x.decide(m, Rule.SEVERAL_PLACES)
    m.row = rows[0]
    if m.level == "compound" and x.q.road and not x.q.poi:
        m.level = "road"
        return x.decide(m, Rule.ROAD_ONLY)
    return x.decide(m, Rule.EXACT_KEY)


def _order_at_door(x: Query, found: list[int], road: str) -> list[int]:
    """Several rows at one door plate: the one whose text is closest to the query first."""
    if len(found) <= 1:
        return found
    tail = x.q.rest.replace(x.q.road or "", "", 1)
    sims = [fuzz.ratio(tail, x.index.rest[r].replace(road, "", 1)) for r in found]
    return [found[k] for k in np.argsort(sims, kind="stable")[::-1]]


def _door_answer(x: Query, m: Match, road: str, found: list[int], rule: Rule) -> Match:
    found, level = refine(x.index, found, x.q)
    if level == "unknown_building":
        m.level = "door_plate"
        m.candidates = candidates(x.index, found, m.score)
        return x.decide(m, Rule.UNKNOWN_BUILDING, x.q.building or "")
    found = _order_at_door(x, found, road)
    found, unique = resolve(x.index, found, x.q)
    m.level = level
    m.candidates = candidates(x.index, found, m.score)
    if not unique:
        m.tied = found
        return x.decide(m, Rule.SEVERAL_PLACES)
    m.row = found[0]
    return x.decide(m, rule, road)


def _corrections(x: Query, street: str, lane: str, number: str) -> list[str]:
    """Known roads carrying this door number (and lane) within the allowed difference of
    the given road name (:func:`gridgis.address.roads.road_difference`)."""
    rules = x.index.settings.address
    out = []
    for known in x.index.door_roads.get((lane, number), ()):
        d = road_difference(street, known)
        if d is None:
            continue
        soft, other = d
        if soft > rules.road_sound_shape_chars or other > rules.road_other_chars:
            continue
        if other and len(known) < rules.road_other_min_length:
            continue
        out.append(known)
    return out


def _listed(x: Query, street: str, lane: str, number: str) -> list[tuple[str, float]]:
    choices = x.index.door_roads.get((lane, number))
    if not choices:
        return []
    found = process.extract(
        street,
        choices,
        scorer=fuzz.ratio,
        limit=8,
        score_cutoff=x.index.settings.address.road_candidate_score,
    )
    return [(c, float(s)) for c, s, _ in found]


def _touch_near_doors(x: Query, street: str, lane: str, number: str, fixed: list[str]) -> None:
    """Recording (:func:`probe`): the door-plate rows of every road this stage may list
    or correct to — every road carrying the number within ``road_candidate_score``, not
    only the 8 best of :func:`_listed`, so that the best 8 of all shards are among them —
    and the road's first rows when the road is known without this number."""
    index = x.index
    rules = index.settings.address
    near = process.extract(
        street,
        index.door_roads.get((lane, number), ()),
        scorer=fuzz.ratio,
        limit=None,
        score_cutoff=rules.road_candidate_score,
    )
    for c in dict.fromkeys([*fixed, *(c for c, _, _ in near)]):
        x.touch(index.door[(c, lane, number)])
    if x.q.road and street in index.road_rows:
        x.touch(index.road_rows[street][: rules.max_candidates])


def _door_of(x: Query) -> tuple[str, str, str] | None:
    """(street, lane, number) of the query's door plate, or None without one."""
    number = bare(x.q.number, "号")
    street = street_of(x.q)
    if not (number and street):
        return None
    return street, x.q.lane or "", number


def door_stage(x: Query, m: Match) -> Match | None:
    """Road (+ lane) + door number; the road exact, or corrected (see the policy):
    :func:`door_plate_stage` then :func:`door_near_stage`."""
    out = door_plate_stage(x, m)
    return out if out is not None else door_near_stage(x, m)


def door_plate_stage(x: Query, m: Match) -> Match | None:
    """Road (+ lane) + door number, the door plate known as given."""
    door = _door_of(x)
    found = x.index.door.get(door) if door else None
    if not found:
        return None
    x.touch(found)
    m.score = 100.0
    return _door_answer(x, m, door[0], found, Rule.DOOR_PLATE)


def door_near_stage(x: Query, m: Match) -> Match | None:
    """A door number not at the road given (after :func:`door_plate_stage`): another
    road close to the name carries it, or the road is known without it."""
    q, index = x.q, x.index
    door = _door_of(x)
    if door is None:
        return None
    street, lane, number = door
    fixed = _corrections(x, street, lane, number)
    listed = _listed(x, street, lane, number)
    if x.touched is not None and (fixed or listed or (q.road and street in index.road_rows)):
        _touch_near_doors(x, street, lane, number, fixed)
    if q.road and street in index.road_rows:
        # the road is known without this number: another road may carry it (a typo that
        # makes an existing name), listed first, never confident
        near = [(c, s) for c, s in sorted(listed, key=lambda cs: (cs[0] not in fixed, -cs[1]))]
        rows = [
            (r, s) for c, s in near for r in _order_at_door(x, index.door[(c, lane, number)], c)
        ]
        m.level, m.score = "road", 0.0
        m.candidates = (rows + candidates(index, index.road_rows[street], 50.0))[
            : index.settings.address.max_candidates
        ]
        return x.decide(m, Rule.NO_DOOR_NUMBER, q.number or "")
    if len(fixed) == 1:
        m.score = float(fuzz.ratio(street, fixed[0]))
        found = index.door[(fixed[0], lane, number)]
        return _door_answer(x, m, fixed[0], found, Rule.CORRECTED_ROAD)
    if not fixed and not listed:
        return None
    rank = {c: s for c, s in listed} | {c: float(fuzz.ratio(street, c)) for c in fixed}
    ordered = sorted(rank, key=lambda c: (c not in fixed, -rank[c]))
    m.level = "door_plate"
    m.score = rank[ordered[0]]
    rows = [
        (r, rank[c]) for c in ordered for r in _order_at_door(x, index.door[(c, lane, number)], c)
    ]
    m.candidates = rows[: index.settings.address.max_candidates]
    if fixed:
        return x.decide(m, Rule.CORRECTION_AMBIGUOUS, "、".join(fixed))
    return x.decide(m, Rule.ROAD_NOT_KNOWN)


def query_names(text: str) -> list[str]:
    """The query read as a place name: :func:`name_variants` of it, then each without a
    leading province or municipality short name (上海燎原双语学校 → 燎原双语学校), as
    people drop or shorten the 市 — tried after the forms as typed, so 上海交通大学 stays
    itself when it is a known name."""
    variants = name_variants(normalise_name(text))
    short = [
        v[len(p) :]
        for v in variants
        for p in PROVINCES
        if v.startswith(p) and len(v) - len(p) >= 2 and not v.startswith(p + "市")
    ]
    return variants + [v for v in short if v not in variants]


def _name_probes(x: Query) -> list[tuple[str, bool]]:
    """Names to try, each with whether it may be answered confidently: the whole query
    as a name (and without its administrative prefixes, in any order), the query without
    its prefix, and its place part. A part of the query matching a name is not enough
    when the rest says more (麦当劳(四川北路店) is not the 麦当劳 of the index; a road or
    lane that the door-plate stage could not place is not the place's own either)."""
    q = x.q
    only_names = not any(lab == "subpoi" for lab, _ in q.spans)
    probes = [(v, True) for v in query_names(x.text)]
    place_alone = not q.hints and only_names and not q.road and not q.lane
    probes += [(address_key(q), not q.hints), (q.poi or "", place_alone)]
    seen: set[str] = set()
    out = []
    for name, sure in probes:
        if name and name not in seen:
            seen.add(name)
            out.append((name, sure))
    return out


def _place_answer(x: Query, m: Match, name: str, rows: list[int], sure: bool, rule: Rule) -> Match:
    rows, level = refine(x.index, rows, x.q)
    m.score = 100.0 if rule is Rule.PLACE_NAME else float(fuzz.ratio(name, x.q.text))
    if level == "unknown_building":
        m.level = "compound"
        m.candidates = candidates(x.index, rows, m.score)
        return x.decide(m, Rule.UNKNOWN_BUILDING, x.q.building or "")
    rows, unique = resolve(x.index, rows, x.q)
    m.level = "compound" if level == "door_plate" else level
    m.candidates = candidates(x.index, rows, m.score)
    if not unique:
        m.tied = rows if sure else []
        return x.decide(m, Rule.SEVERAL_PLACES)
    m.row = rows[0]
    if not sure:
        return x.decide(m, Rule.PART_OF_QUERY, name)
    if m.level != "compound":
        return x.decide(m, Rule.BUILDING_IN_PLACE)
    return x.decide(m, rule, name)


def name_stage(x: Query, m: Match) -> Match | None:
    """A place name or alias (whole, or without its administrative prefixes)."""
    for k, (name, sure) in enumerate(_name_probes(x)):
        rows = x.index.names.get(name)
        if rows:
            x.at = k
            x.touch(rows)
            return _place_answer(x, m, name, rows, sure, Rule.PLACE_NAME)
    return None


def partial_name_stage(x: Query, m: Match) -> Match | None:
    """A contiguous part ending exactly one known name (竹园中学 of 上海市浦东新区竹园中学).

    Only a part that ends the name: Chinese place names put the kind last and the
    qualifiers (city, district, owner) first, so dropping qualifiers keeps the place,
    while a part that starts a name (a brand: 星巴克) leaves out which branch. Only the
    whole query counts (a place part of a longer query, 郏店村中心卫生室 → 中心卫生室, is
    a kind of place, not a name)."""
    rules = x.index.settings.address
    if x.q.hints:
        return None
    for at, name in enumerate(query_names(x.text)):
        if len(name) < rules.partial_name_min_chars:
            continue
        known = [k for k in x.index.names_ending_with(name) if k != name]
        if not known:
            continue
        rows = [r for k in known for r in x.index.names[k]]
        x.at = at
        x.touch(rows)
        return _place_answer(x, m, name, rows, True, Rule.PARTIAL_NAME)
    return None


def road_only_stage(x: Query, m: Match) -> Match | None:
    """A known road without a door number (never confident)."""
    q, index = x.q, x.index
    if not (q.road and q.road in index.road_rows and not q.number):
        return None
    rows = index.road_rows[q.road]
    x.touch(rows[: index.settings.address.max_candidates])
    m.level, m.score = "road", 50.0
    m.candidates = candidates(index, rows, 50.0)
    return x.decide(m, Rule.ROAD_ONLY)


def fuzzy_candidates(x: Query, by: str) -> list[tuple[int, float]]:
    """Fuzzy candidates ``(row, score)``, best first: ``by="name"`` the place names closest
    to the query's place (or text), ``by="key"`` the exact keys closest to its text
    (rapidfuzz, at least ``fuzzy_threshold``, at most ``max_candidates``)."""
    q, index = x.q, x.index
    rules = index.settings.address
    if by == "name":
        probe = q.poi or q.rest
        if not probe:
            return []
        found = process.extract(
            probe,
            index.name_keys,
            scorer=fuzz.WRatio,
            limit=rules.max_candidates,
            score_cutoff=rules.fuzzy_threshold,
        )
        return [(index.names[nm][0], float(s)) for nm, s, _ in found]
    found = process.extract(
        q.rest,
        index.keys,
        scorer=fuzz.ratio,
        limit=rules.max_candidates,
        score_cutoff=rules.fuzzy_threshold,
    )
    return [(index.exact[k][0], float(s)) for k, s, _ in found]


def fuzzy_stage(x: Query, m: Match) -> Match:
    """Fuzzy candidates by name, else by key (never confident; the score is the best
    candidate's)."""
    cands = fuzzy_candidates(x, "name") or fuzzy_candidates(x, "key")
    m.candidates = list(dict.fromkeys(cands))
    m.score = cands[0][1] if cands else 0.0
    return x.decide(m, Rule.NOT_FOUND)


def fallback_stage(x: Query, m: Match) -> Match:
    """A road alone, or fuzzy candidates by name, then by key (never confident)."""
    out = road_only_stage(x, m)
    return out if out is not None else fuzzy_stage(x, m)


STAGES = (exact_stage, door_plate_stage, door_near_stage, name_stage, partial_name_stage)

#: The stages :func:`match` tries before the fuzzy search, in order.
CASCADE = (*STAGES, road_only_stage)
#: :attr:`Probe.stage` of a query every stage passed on: only the fuzzy search is left.
FUZZY = len(CASCADE)
#: :attr:`Probe.stage` of an empty query (answered without the index).
EMPTY_QUERY = -1


def _first(x: Query, m: Match, stages: tuple) -> tuple[int, Match | None]:
    """The first stage that decides (its number and answer), or ``(len(stages), None)``."""
    for k, stage in enumerate(stages):
        x.at = 0
        if x.touched is not None:
            x.touched.clear()
        out = stage(x, m)
        if out is not None:
            return k, out
    return len(stages), None


def match(index: AddressIndex, text: str) -> Match:
    """Match one address text (see the module notes for the stages)."""
    q = parse(text, index.settings)
    m = Match(query=text, parsed=q)
    x = Query(text, q, index)
    if not q.text:
        return x.decide(m, Rule.EMPTY)
    _, out = _first(x, m, CASCADE)
    return out if out is not None else fuzzy_stage(x, m)


@dataclass
class Probe:
    """Where :func:`probe` found a query's first answer on one part of an index.

    Attributes
    ----------
    stage
        Number of the deciding stage in :data:`CASCADE`; when every stage tried passed
        on, the number of stages tried (:data:`FUZZY` when all were); :data:`EMPTY_QUERY`
        for an empty query.
    at
        Where in that stage: the number of the name tried in the name stages (else 0).
    match
        The answer on this part (``None`` at :data:`FUZZY`: the fuzzy search is not run).
    touched
        Row positions (of this part) the deciding look-ups returned: the rows of the key,
        door plate or name, every road within ``road_candidate_score`` carrying the
        number, the road's first ``max_candidates`` rows.
    """

    stage: int
    at: int
    match: Match | None
    touched: list[int]

    @property
    def position(self) -> tuple[int, int]:
        return (self.stage, self.at)


def probe(index: AddressIndex, text: str, stages: int = FUZZY) -> Probe:
    """:func:`match` on one part of an index (a shard), up to the fuzzy search (or over
    the first ``stages`` stages of :data:`CASCADE` only: a position of ``(stages, 0)``
    then says that none of them answered).

    Why the parts' probes decide the whole index's answer: a stage's answer depends only
    on the rows its look-ups return (by key, door plate, name, name ending; every row's
    attributes are its own), and whether it answers or passes on is decided row by row
    or road by road (a look-up non-empty; a road close enough to the name given), never
    by rows taken together. The rows of the whole index under a key are the union of the
    parts' rows, in row order. So
    with ``p`` the smallest :attr:`Probe.position` over the parts:

    * one part at ``p``: every row the whole index's stages look up is in that part,
      which therefore gives the same answer (its rows in the same order);
    * several parts at ``p``: an index of the union of their :attr:`Probe.touched` rows
      (kept in row order, with any other rows of the index) answers as the whole one:
      every look-up of the stages up to ``p`` returns the same rows on it (a road listed
      by :func:`_listed` is any within the score, so the best 8 of all parts are there);
    * every part at :data:`FUZZY`: the answer is not confident, and its score is the best
      score of :func:`fuzzy_candidates` by name over the parts, else by key.
    """
    q = parse(text, index.settings)
    m = Match(query=text, parsed=q)
    x = Query(text, q, index, touched=[])
    if not q.text:
        return Probe(EMPTY_QUERY, 0, x.decide(m, Rule.EMPTY), [])
    k, out = _first(x, m, CASCADE[:stages])
    if out is None:
        return Probe(k, 0, None, [])
    return Probe(k, x.at, out, list(dict.fromkeys(x.touched or [])))


def fuzzy_best(index: AddressIndex, text: str, by: str) -> float | None:
    """The best score of :func:`fuzzy_candidates` of ``text`` on this (part of an) index,
    ``None`` when there is none."""
    q = parse(text, index.settings)
    found = fuzzy_candidates(Query(text, q, index), by)
    return found[0][1] if found else None
