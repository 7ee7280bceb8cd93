"""Address normalisation, parsing and matching (issue 5)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from gridgis.address import (
    AddressIndex,
    evaluate_parser,
    normalise,
    normalise_name,
    numerals_to_digits,
    parse,
    read_bio,
)
from gridgis.standards import Settings

SHARED = Path(__file__).parents[2] / "shared" / "data"
PARSING = SHARED / "cn-address-parsing"
POI = SHARED / "shanghai-amap-poi"


# -- normalisation: one rule at a time, with real-looking addresses ---------------------

@pytest.mark.parametrize("raw, expected", [
    # full-width → half-width (digits, letters, brackets, ideographic space)
    ("报春路５５８弄３８号", "报春路558弄38号"),
    ("金都路１５００号Ａ座", "金都路1500号A栋"),
    ("淮海中路\u3000９９９号", "淮海中路999号"),
    # Chinese numerals → digits where they are numbers
    ("阳光花园十二栋三单元", "阳光花园12栋3单元"),
    ("幸福里二十三号", "幸福里23号"),
    ("1栋一〇二室", "1栋102室"),
    ("报春路五百五十八弄三十八号", "报春路558弄38号"),
    ("沪杭公路一千七百七十三号", "沪杭公路1773号"),
    ("两单元", "2单元"),
    ("第三栋", "3栋"),
    # ... but not inside names
    ("四川路", "四川路"),
    ("三元里", "三元里"),
    ("十里河", "十里河"),
    ("四川中路480号", "四川中路480号"),
    ("六合天寓", "六合天寓"),
    # synonyms for building: 幢, 座, 号楼, #
    ("锦绣家园5幢", "锦绣家园5栋"),
    ("万达广场C座", "万达广场C栋"),
    ("中山公寓8号楼", "中山公寓8栋"),
    ("新村3#楼", "新村3栋"),
    # 门 as stairwell → 单元; a gate (北门, 3号门 before a name) stays
    ("曹杨新村5栋3门", "曹杨新村5栋3单元"),
    ("复旦大学北门", "复旦大学北门"),
    ("门诊楼", "门诊楼"),
    # floors and rooms
    ("大厦8楼", "大厦8层"),
    ("大厦4F", "大厦4层"),
    ("商场B1层", "商场-1层"),
    ("3单元502房", "3单元502室"),
    # 弄 and 号 kept apart
    ("报春路558弄38号", "报春路558弄38号"),
    # spaces and punctuation removed, dashes kept
    ("浦建路 1132 号, 锦江之星对面", "浦建路1132号锦江之星对面"),
    ("缤纷北苑47—6—746", "缤纷北苑47-6-746"),
])
def test_normalise_rules(raw, expected):
    assert normalise(raw).text == expected


def test_parenthesised_hints_are_set_apart():
    n = normalise("蓬莱路225号(迎勋北路)")
    assert n.text == "蓬莱路225号"
    assert n.hints == ("迎勋北路",)
    n = normalise("陆家浜路597号（近南浦大桥）")
    assert n.text == "陆家浜路597号" and n.hints == ("近南浦大桥",)


def test_numerals_only_before_numeric_suffixes():
    assert numerals_to_digits("十二栋三单元一〇二室") == "12栋3单元102室"
    assert numerals_to_digits("三元里十里河四川路") == "三元里十里河四川路"


def test_name_normalisation_keeps_the_branch():
    assert normalise_name("海底捞火锅(打浦路店)") == "海底捞火锅打浦路店"
    assert normalise_name("海底捞火锅（打浦路店）") == normalise_name("海底捞火锅(打浦路店)")


# -- parsing ------------------------------------------------------------------------------

def test_parse_shanghai_lane_address():
    p = parse("上海市闵行区报春路558弄38号")
    assert (p.city, p.district, p.road, p.lane, p.number) == ("上海市", "闵行区", "报春路",
                                                               "558弄", "38号")
    assert p.rest == "报春路558弄38号"


def test_parse_compound_building_unit_floor_room():
    p = parse("江苏省南京市玄武区建设路88号阳光花园十二幢三门5楼502室")
    assert p.province == "江苏省" and p.city == "南京市" and p.district == "玄武区"
    assert (p.road, p.number, p.poi) == ("建设路", "88号", "阳光花园")
    assert (p.building, p.unit, p.floor, p.room) == ("12栋", "3单元", "5层", "502室")


def test_parse_town_community_and_dash_numbers():
    p = parse("浙江省杭州市余杭区闲林街道缤纷北苑47-6-746")
    assert p.town == "闲林街道"
    assert (p.poi, p.building, p.unit, p.room) == ("缤纷北苑", "47", "6", "746")
    p = parse("杭州市萧山区新塘街道朱家坛村133号")
    assert p.community == "朱家坛村" and p.number == "133号"


def test_parse_keeps_road_names_that_look_like_places():
    assert parse("重庆南路149号").road == "重庆南路"
    assert parse("江西南路29号").road == "江西南路"
    assert parse("上海浦东新区张杨路500号").district == "浦东新区"


def test_parse_uses_configured_city_and_district():
    s = Settings().override({"address.city": "上海市", "address.district": "闵行区"})
    p = parse("上海闵行报春路558弄38号", s)
    assert (p.city, p.district, p.road) == ("上海市", "闵行区", "报春路")


@pytest.fixture(scope="session")
def dev_table():
    if not PARSING.exists():
        pytest.skip("../shared/data/cn-address-parsing absent")
    return evaluate_parser(read_bio(PARSING / "dev.txt"))


@pytest.mark.shared
def test_parser_accuracy_floor_on_dev(dev_table):
    """Regression floor at the level reached (see benchmarks/RESULTS.md for the table)."""
    print(dev_table.round(3).to_string())
    floors = {"roadno": 0.925, "houseno": 0.86, "cellno": 0.84, "roomno": 0.865,
              "floorno": 0.95}
    for fld, floor in floors.items():
        assert dev_table.loc[fld, "f1"] >= floor, (fld, dev_table.loc[fld].to_dict())


@pytest.mark.shared
@pytest.mark.xfail(strict=True, reason="issue 5 target F1 ≥ 0.95 not reached by the rule "
                                       "parser yet (labels disagree on bare numbers)")
def test_parser_accuracy_target_on_dev(dev_table):
    for fld in ("roadno", "houseno", "cellno", "roomno"):
        assert dev_table.loc[fld, "f1"] >= 0.95, fld


# -- matching on a hand-made index ------------------------------------------------------

@pytest.fixture(scope="module")
def small_index():
    rows = [
        ("A1", "闵行区报春路558弄38号", None, 121.400, 31.100),
        ("A2", "闵行区报春路558弄40号", None, 121.401, 31.100),
        ("A3", "黄浦区建设路88号阳光花园3栋2单元", "阳光花园", 121.480, 31.230),
        ("A4", "黄浦区建设路88号阳光花园3栋2单元501室", "阳光花园", 121.480, 31.230),
        ("A5", "黄浦区建设路88号阳光花园5栋1单元", "阳光花园", 121.481, 31.231),
        ("A6", "闵行区人民路100号", "闵行人民医院", 121.380, 31.110),
        ("A7", "松江区人民路100号", "松江商场", 121.230, 31.030),
        ("A8", "徐汇区中山南二路1000号", None, 121.450, 31.190),
        ("A9", "杨浦区邯郸路220号", "复旦大学", 121.500, 31.300),
        ("A10", "长宁区遵义路100号", "麦当劳", 121.410, 31.210),
    ]
    df = pd.DataFrame(rows, columns=["address_id", "text", "name", "lon", "lat"])
    return df


def test_exact_and_messy_queries_match(small_index):
    idx = AddressIndex(small_index)
    for q in ("报春路558弄38号", "上海市闵行区报春路五百五十八弄三十八号", "报春路 ５５８弄 ３８号"):
        m = idx.match(q)
        assert m.confident and small_index.address_id[m.row] == "A1", q
        assert m.level == "door_plate"
    m = idx.match("建设路88号阳光花园三幢二门")
    assert m.confident and small_index.address_id[m.row] == "A3" and m.level == "unit"
    m = idx.match("阳光花园5幢1单元")  # compound instead of door plate
    assert m.confident and small_index.address_id[m.row] == "A5" and m.level == "unit"
    m = idx.match("复旦大学")
    assert m.confident and small_index.address_id[m.row] == "A9" and m.level == "compound"


def test_numbers_compare_exactly(small_index):
    idx = AddressIndex(small_index)
    m = idx.match("建设路88号阳光花园3栋2单元501室")
    assert m.level == "room" and small_index.address_id[m.row] == "A4"
    m = idx.match("建设路88号阳光花园3栋2单元502室")  # room unknown: only the unit is sure
    assert m.confident and m.level == "unit" and small_index.address_id[m.row] == "A3"
    m = idx.match("报春路558弄39号")  # a door number that does not exist
    assert not m.confident and m.row is None and m.level == "road"
    m = idx.match("报春路559弄38号")
    assert not m.confident and m.row is None


def test_typo_in_road_name(small_index):
    idx = AddressIndex(small_index)
    m = idx.match("中山南二路1000号")
    assert m.confident
    m = idx.match("中出南二路1000号")  # one wrong character in a 5-character name
    assert m.confident and small_index.address_id[m.row] == "A8" and m.score < 100
    m = idx.match("中山北二路1000号")  # 北 for 南 is another road, not a typo
    assert not m.confident and small_index.address_id[m.candidates[0][0]] == "A8"
    m = idx.match("报青路558弄38号")  # 3-character road: a candidate, not an answer
    assert not m.confident and small_index.address_id[m.candidates[0][0]] == "A1"


def test_ambiguous_address_resolved_by_district(small_index):
    m = AddressIndex(small_index).match("人民路100号")
    assert not m.confident and {small_index.address_id[r] for r in m.tied} == {"A6", "A7"}
    m = AddressIndex(small_index).match("松江区人民路100号")
    assert m.confident and small_index.address_id[m.row] == "A7"
    s = Settings().override({"address.city": "上海市", "address.district": "闵行区"})
    m = AddressIndex(small_index, s).match("人民路100号")
    assert m.confident and small_index.address_id[m.row] == "A6"


def test_no_match_paths(small_index):
    idx = AddressIndex(small_index)
    for q in ("火星路1号", "", "   ", "麦当劳(四川北路店)", "阳光花园9栋", "建设路99号"):
        m = idx.match(q)
        assert not m.confident and m.row is None, q
    assert idx.match("麦当劳(遵义路)").candidates  # a partial name offers candidates


# -- matching on real Shanghai door plates ----------------------------------------------

def _bench():
    path = Path(__file__).parents[1] / "benchmarks" / "bench_lookup.py"
    spec = importlib.util.spec_from_file_location("bench_lookup", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def shanghai():
    if not POI.exists():
        pytest.skip("../shared/data/shanghai-amap-poi absent")
    bench = _bench()
    index_frame, pos, neg = bench.make_index_and_queries(n_index=5000, n_queries=700,
                                                         n_negative=400)
    return bench, index_frame, pos, neg, AddressIndex(index_frame)


@pytest.mark.shared
def test_shanghai_top1(shanghai):
    from gridgis.lookup import Lookup

    bench, index_frame, pos, _, idx = shanghai
    lk = Lookup()
    lk.index = idx
    answers = [lk._answer(idx.match(q), False) for q in pos["query"]]
    scored = bench.score_matches(index_frame, pos, answers)
    by_style = scored.groupby("style")["correct"].mean()
    assert scored["correct"].mean() >= 0.97, by_style.to_dict()
    assert set(by_style.index) >= {"no_district", "full_width", "cn_numerals", "spaces",
                                   "poi_name", "wrong_char"}
    # never a confident wrong answer
    assert not (scored["confident"] & ~scored["correct"]).any(), \
        scored[scored["confident"] & ~scored["correct"]].to_dict("records")


@pytest.mark.shared
def test_shanghai_not_in_index_is_never_confident(shanghai):
    _, _, _, neg, idx = shanghai
    assert len(neg) >= 300 and set(neg["style"]) >= {"held_back", "altered_number"}
    confident = [q for q in neg["query"] if idx.match(q).confident]
    assert confident == []
