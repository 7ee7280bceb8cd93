"""Confidence as named rules, place names, typo-tolerant roads and traditional characters
(issue 14), on a hand-made index whose answers are worked out by hand."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from gridgis.address import AddressIndex, Rule
from gridgis.address.policy import REASONS, RULE_LABELS_ZH, is_confident
from gridgis.address.roads import fold_syllable, road_difference, sound_alike
from gridgis.lookup import OUTSIDE_EVERY_GRID, Lookup
from gridgis.standards import AddressRules, Settings

# address_id, text, name, aliases, lon, lat — each row its own place (≥ 1 km apart)
ROWS = [
    ("P1", "闵行区景谷路100号", "上海市燎原双语学校", "燎原学校", 121.40, 31.10),
    ("P2", "浦东新区竹园路50号", "上海市浦东新区竹园中学", None, 121.52, 31.22),
    ("P3", "虹口区延吉东路82弄37号", None, None, 121.53, 31.28),
    ("P4", "奉贤区南奉公路6600号", None, None, 121.45, 30.92),
    ("P5", "金山区兰奉公路6600号", None, None, 121.33, 30.80),
    ("P6", "徐汇区长乐路536号", None, None, 121.45, 31.21),
    ("P7", "宝山区宝山三村84号", None, None, 121.48, 31.40),
    ("P8", "长宁区新泾一村135号", None, None, 121.36, 31.22),
    ("P9", "普陀区紅花地44号", None, None, 121.41, 31.25),
    ("P10", "杨浦区邯郸路220号", "复旦大学", "复旦、旦大", 121.50, 31.30),
    ("P11", "杨浦区邯郸路220号复旦大学3号楼", "复旦大学", None, 121.501, 31.301),
    ("P12", "静安区中山北路100号", None, None, 121.44, 31.26),
    ("P13", "嘉定区曹安公路1号", "星巴克咖啡曹安店", None, 121.25, 31.30),
    ("P14", "青浦区外青松公路1号", "星巴克咖啡青浦店", None, 121.10, 31.15),
    ("P15", "静安区乌鲁木齐中路12号", "复旦大学附属华山医院", None, 121.44, 31.22),
]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["address_id", "text", "name", "aliases", "lon", "lat"])


@pytest.fixture(scope="module")
def idx(frame) -> AddressIndex:
    return AddressIndex(frame)


def _answer(idx, frame, q):
    m = idx.match(q)
    return m, (frame.address_id[m.row] if m.row is not None else None)


@pytest.mark.parametrize(
    "query, expected, rule",
    [
        # exact key and door plates
        ("景谷路100号", "P1", Rule.EXACT_KEY),
        ("上海市闵行区景谷路100号", "P1", Rule.EXACT_KEY),
        # place names: admin prefixes in any order and repeated, 上海市 inside the name
        ("上海市燎原双语学校", "P1", Rule.PLACE_NAME),
        ("闵行区上海市燎原双语学校", "P1", Rule.PLACE_NAME),
        ("燎原双语学校", "P1", Rule.PLACE_NAME),
        ("上海市上海市燎原双语学校", "P1", Rule.PLACE_NAME),
        ("上海燎原双语学校", "P1", Rule.PLACE_NAME),  # 上海 for 上海市
        # a unique part ending one name
        ("竹园中学", "P2", Rule.PLACE_NAME),  # the name without 上海市浦东新区
        ("华山医院", "P15", Rule.PARTIAL_NAME),  # ends one name only
        ("附属华山医院", "P15", Rule.PARTIAL_NAME),
        ("浦东竹园中学", None, Rule.NOT_FOUND),  # not a part of any name: no guess
        # aliases (俗称, abbreviations)
        ("燎原学校", "P1", Rule.PLACE_NAME),
        ("旦大", "P10", Rule.PLACE_NAME),
        # a building within a matched place
        ("复旦大学3号楼", "P11", Rule.BUILDING_IN_PLACE),
        # homophone typos where the number decides
        ("延吉冬路82弄37号", "P3", Rule.CORRECTED_ROAD),
        ("常乐路536号", "P6", Rule.CORRECTED_ROAD),
        # traditional and simplified are one key
        ("红花地44号", "P9", Rule.EXACT_KEY),
        ("紅花地44號", "P9", Rule.EXACT_KEY),
    ],
)
def test_confident_rules(idx, frame, query, expected, rule):
    m, got = _answer(idx, frame, query)
    assert m.rule is rule, (query, m.rule, m.reason)
    assert got == expected, (query, m.reason)
    assert m.confident is (expected is not None)
    assert m.reason  # always says why


@pytest.mark.parametrize(
    "query, rule, top",
    [
        # two roads within the allowed difference carry 6600号 (南/兰 fold to one sound)
        ("楠奉公路6600号", Rule.CORRECTION_AMBIGUOUS, {"P4", "P5"}),
        # different compounds with the same number are never one answer
        ("真如西村84号", Rule.NOT_FOUND, None),
        ("工农三村135号", Rule.NOT_FOUND, None),
        # 北 for 南 makes another road, not a typo
        ("中山南路100号", Rule.ROAD_NOT_KNOWN, {"P12"}),
        # a door number the known road does not have
        ("景谷路102号", Rule.NO_DOOR_NUMBER, {"P1"}),
        # a brand part shared by two places
        ("星巴克咖啡", Rule.NOT_FOUND, {"P13", "P14"}),
        ("邯郸路", Rule.ROAD_ONLY, {"P10", "P11"}),
        ("", Rule.EMPTY, None),
    ],
)
def test_not_confident_rules(idx, frame, query, rule, top):
    m, got = _answer(idx, frame, query)
    assert not m.confident and got is None, (query, m.rule, m.reason)
    assert m.rule is rule, (query, m.rule, m.reason)
    assert m.reason
    if top is not None:
        assert {frame.address_id[r] for r, _ in m.candidates[:2]} & top, m.candidates


def test_switches_turn_rules_off(frame):
    s = Settings().override(
        {"address.confident_corrected_road": False, "address.confident_place_name": False}
    )
    idx = AddressIndex(frame, s)
    m = idx.match("延吉冬路82弄37号")
    assert m.rule is Rule.CORRECTED_ROAD and not m.confident and m.candidates
    m = idx.match("燎原双语学校")
    assert m.rule is Rule.PLACE_NAME and not m.confident
    # the threshold of the old score ladder is gone: no setting makes a fuzzy road sure
    assert not hasattr(AddressRules(), "confidence_threshold")


def test_every_rule_has_a_reason_and_a_decision():
    rules = AddressRules()
    for rule in Rule:
        assert rule in REASONS and rule in RULE_LABELS_ZH
        assert isinstance(is_confident(rule, rules), bool)
    assert not any(
        is_confident(r, rules)
        for r in (Rule.SEVERAL_PLACES, Rule.CORRECTION_AMBIGUOUS, Rule.NOT_FOUND)
    )


def test_pinyin_input_confusions():
    assert fold_syllable("zhang") == "zan" and fold_syllable("ning") == "lin"
    assert fold_syllable("sheng") == "sen" and fold_syllable("nan") == "lan"
    assert sound_alike("东", "冬") and sound_alike("长", "常") and sound_alike("南", "兰")
    assert not sound_alike("东", "西")
    assert road_difference("延吉冬路", "延吉东路") == (1, 0)
    assert road_difference("中山北路", "中山南路") is None  # another road
    assert road_difference("人民路", "人民街") is None  # 路 ≠ 街
    assert road_difference("中出南二路", "中山南二路") == (1, 0)  # 出/山 look alike


def test_outside_every_grid_is_said(frame):
    pts = gpd.GeoDataFrame(
        frame.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(frame.lon, frame.lat),
        crs="EPSG:4326",
    )
    grids = gpd.GeoDataFrame(
        {"grid_code": ["G1"], "community_code": ["C1"]},
        geometry=[box(121.39, 31.09, 121.41, 31.11)],  # holds P1 only
        crs="EPSG:4326",
    )
    lk = Lookup(addresses=pts, grids=grids)
    inside = lk.address("景谷路100号")
    assert inside["confident"] and inside["grid"]["grid_code"] == "G1"
    assert inside["rule"] == "exact_key" and inside["reason"]
    outside = lk.address("长乐路536号")
    assert outside["confident"] and outside["grid"] is None
    assert OUTSIDE_EVERY_GRID in outside["reason"]
    batch = lk.addresses(["景谷路100号", "长乐路536号", "火星路1号"])
    assert batch["grid_code"].tolist() == ["G1", None, None]
    assert batch["rule"].tolist() == ["exact_key", "exact_key", "not_found"]
