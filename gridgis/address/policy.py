"""When an address answer is confident: named rules, each a boolean decision.

Every match ends in exactly one :class:`Rule`. A rule says what the matcher found and
whether that is enough to answer (``confident``), and the answer carries the rule's name
and its reason so a reader can see why. No score decides: numbers must agree exactly,
names may differ only as the rule allows, and the switches are named settings
(:class:`gridgis.standards.AddressRules`).

=================================  =========  ==================================================
rule                               confident  what it may answer
=================================  =========  ==================================================
exact_key                          yes        the same normalised address (admin prefix aside)
door_plate                         yes        road (+ lane) + door number known exactly
door_plate_corrected_road          setting    one known road within the allowed difference
                                              carries this door number (``confident_corrected_road``)
place_name                         setting    a name (or alias) of one place (``confident_place_name``)
partial_place_name                 setting    a unique part of one known name (``confident_partial_name``)
building_in_place                  yes        building/unit/room found inside a matched place
several_records_one_grid           yes        one address recorded in several places, all in one grid
several_places                     no         the same address or name in several places
corrected_road_ambiguous           no         several roads within the allowed difference carry it
road_not_known                     no         no known road close enough carries the number
no_door_number                     no         the road is known, the door number is not
road_only                          no         only a road was given
unknown_building                   no         the place is known, the building is not
part_of_query                      no         only part of the query names a place
not_found                          no         nothing close enough (candidates, if any)
empty                              no         no text
=================================  =========  ==================================================
"""

from __future__ import annotations

from enum import StrEnum

from gridgis.standards import AddressRules


class Rule(StrEnum):
    """The rule that decided an address answer (its value is the name in answers)."""

    EXACT_KEY = "exact_key"
    DOOR_PLATE = "door_plate"
    CORRECTED_ROAD = "door_plate_corrected_road"
    PLACE_NAME = "place_name"
    PARTIAL_NAME = "partial_place_name"
    BUILDING_IN_PLACE = "building_in_place"
    ONE_GRID = "several_records_one_grid"
    SEVERAL_PLACES = "several_places"
    CORRECTION_AMBIGUOUS = "corrected_road_ambiguous"
    ROAD_NOT_KNOWN = "road_not_known"
    NO_DOOR_NUMBER = "no_door_number"
    ROAD_ONLY = "road_only"
    UNKNOWN_BUILDING = "unknown_building"
    PART_OF_QUERY = "part_of_query"
    NOT_FOUND = "not_found"
    EMPTY = "empty"


#: Why, in words, for each rule (``{…}`` are filled from the match).
REASONS: dict[Rule, str] = {
    Rule.EXACT_KEY: "the same address is in the index",
    Rule.DOOR_PLATE: "door plate on a known road",
    Rule.CORRECTED_ROAD: "door plate on a corrected road name: {detail} is the only known "
    "road close to the name given that carries this number",
    Rule.PLACE_NAME: "place name {detail} names one place",
    Rule.PARTIAL_NAME: "{detail} is part of one known place name only",
    Rule.BUILDING_IN_PLACE: "building found in the matched place",
    Rule.ONE_GRID: "{detail}",
    Rule.SEVERAL_PLACES: "same address or name in several places",
    Rule.CORRECTION_AMBIGUOUS: "road name not known exactly and several known roads close "
    "to it carry this number: {detail}",
    Rule.ROAD_NOT_KNOWN: "road name not known exactly and no known road close to it carries "
    "this number",
    Rule.NO_DOOR_NUMBER: "no door number {detail} on this road in the index",
    Rule.ROAD_ONLY: "only a road was given",
    Rule.UNKNOWN_BUILDING: "no building {detail} at this place in the index",
    Rule.PART_OF_QUERY: "only part of the query ({detail}) matches a known name",
    Rule.NOT_FOUND: "no confident match",
    Rule.EMPTY: "empty address",
}

#: The rules in the planners' words (the lookup page shows these).
RULE_LABELS_ZH: dict[Rule, str] = {
    Rule.EXACT_KEY: "标准地址精确匹配",
    Rule.DOOR_PLATE: "道路门牌匹配",
    Rule.CORRECTED_ROAD: "路名纠错后唯一匹配（门牌号确定）",
    Rule.PLACE_NAME: "地名唯一匹配",
    Rule.PARTIAL_NAME: "地名部分唯一匹配",
    Rule.BUILDING_IN_PLACE: "地点内楼栋匹配",
    Rule.ONE_GRID: "同一地址多条记录，均在同一网格",
    Rule.SEVERAL_PLACES: "同一地址或名称在多处",
    Rule.CORRECTION_AMBIGUOUS: "路名不确定，多条相近道路有此门牌",
    Rule.ROAD_NOT_KNOWN: "路名不确定，无相近道路有此门牌",
    Rule.NO_DOOR_NUMBER: "该道路无此门牌号",
    Rule.ROAD_ONLY: "只给出道路",
    Rule.UNKNOWN_BUILDING: "该地点无此楼栋",
    Rule.PART_OF_QUERY: "仅部分内容与已知地名相符",
    Rule.NOT_FOUND: "没有可信的匹配",
    Rule.EMPTY: "地址为空",
}

_ALWAYS = {Rule.EXACT_KEY, Rule.DOOR_PLATE, Rule.BUILDING_IN_PLACE, Rule.ONE_GRID}
_SETTING = {
    Rule.CORRECTED_ROAD: "confident_corrected_road",
    Rule.PLACE_NAME: "confident_place_name",
    Rule.PARTIAL_NAME: "confident_partial_name",
}


def is_confident(rule: Rule, rules: AddressRules) -> bool:
    """Whether ``rule`` may answer (True for the exact rules, the named switch for the
    corrected ones, False for the rest)."""
    if rule in _ALWAYS:
        return True
    name = _SETTING.get(rule)
    return bool(getattr(rules, name)) if name else False


def reason(rule: Rule, detail: str = "") -> str:
    """The reason text of ``rule``."""
    return REASONS[rule].format(detail=detail)
