"""The tail parser's rules, one written pattern each (gridgis.address.tail).

Every rule of ``TAIL_RULES`` has a case here: the address, the rule that must fire, and
the components it must set. A rule added without a case fails
``test_every_rule_has_a_case``.
"""

from __future__ import annotations

import pytest

from gridgis.address import parse
from gridgis.address.tail import TAIL_RULES, Last, is_range

CASES = {
    # rule: (address, {component: value})
    "sub_number_after_dash": ("老杭海路9号-7", {"number": "9号", "building": "7"}),
    "highway": ("人民路320国道5号", {"road": "人民路", "number": "5号"}),
    "text_run": ("报春路38号阳光花园", {"poi": "阳光花园"}),
    "village_group": ("龙山沟村1组23号", {"road": "1组", "number": "23号"}),
    "house_row": ("阳光村11排", {"building": "11排"}),
    "name_part": ("阳光3区2栋", {"poi": "阳光3区", "building": "2栋"}),
    "numbered_alley": ("稠州西路81巷132号", {"road": "稠州西路81巷", "number": "132号"}),
    "lane": ("报春路558弄38号", {"lane": "558弄", "number": "38号"}),
    "door_then_dashes": (
        "柳南一街58-130-7单元",
        {"number": "58", "building": "130", "unit": "7单元"},
    ),
    "dashed_shop_range": ("商城2311-2312号", {"room": "2311-2312号"}),
    "village_door_sub_number": ("溪口村12-87号", {"number": "12", "building": "87号"}),
    "dashed_parts": ("13-10-1206室", {"building": "13", "unit": "10", "room": "1206室"}),
    "building": ("阳光花园十二幢", {"building": "12栋"}),
    "distance": ("人民公园北100米", {"poi": "人民公园北", "room": None}),
    "market_aisle": ("1层11街", {"floor": "1层", "unit": "11街"}),
    "named_part": ("阳光花园3单元5层502室", {"unit": "3单元", "floor": "5层", "room": "502室"}),
    "door_with_three_parts": (
        "将军路1326-11-6-434",
        {"number": "1326", "building": "11", "unit": "6", "room": "434"},
    ),
    "door_number": ("报春路38号", {"number": "38号"}),
    "door_without_road": ("新村133号", {"poi": "新村", "number": "133号"}),
    "door_after_hamlet": ("海王路石岸头130号", {"poi": "石岸头", "number": "130号"}),
    "shop_number": ("商贸城2163号", {"room": "2163号", "number": None}),
    "second_number": ("宏远路1820号12号", {"number": "1820号", "building": "12号"}),
    "postcode": ("甘霖路166号325600", {"number": "166号", "room": None}),
    "village_bare_door": ("新安村1124", {"community": "新安村", "number": "1124"}),
    "letter_building_room": ("10A1525", {"building": "10A", "room": "1525"}),
    "room_span": ("1106-1107", {"room": "1106-1107"}),
    "building_unit_room": ("8-2-301", {"building": "8", "unit": "2", "room": "301"}),
    "building_and_next": ("17-586", {"building": "17", "room": "586"}),
    "inside_building": ("113栋66", {"building": "113栋", "unit": "66"}),
    "bare_number": ("阳光花园5", {"building": "5"}),
}


def test_every_rule_has_a_case():
    names = {r.__name__ for r in TAIL_RULES}
    assert names == set(CASES), names ^ set(CASES)
    for rule in TAIL_RULES:
        assert rule.__doc__ and len(rule.__doc__) > 20, rule.__name__  # its provenance


@pytest.mark.parametrize("rule", list(CASES))
def test_rule(rule):
    text, expected = CASES[rule]
    p = parse(text)
    assert rule in p.rules, (text, p.rules)
    for comp, value in expected.items():
        assert getattr(p, comp) == value, (text, comp, p.as_dict())


def test_rules_are_tried_in_order():
    # 5号 after a road is the door number (door_number), never a building (second_number
    # comes later and reads only what is left)
    p = parse("报春路5号")
    assert p.rules == ["door_number"] and p.building is None
    # the state is an enum: the first token after a road sees Last.ROAD
    assert Last("road") is Last.ROAD


def test_range_needs_the_same_length_and_a_small_step():
    assert is_range("2311", "2312") and is_range("A123", "124")
    assert not is_range("17", "586") and not is_range("389", "999")
