"""Address normalisation, parsing and matching (issue 5)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from gridgis.address import (
    AddressIndex,
    normalise,
    normalise_name,
    numerals_to_digits,
    parse,
)
from gridgis.standards import Settings


def _load_bench(name: str):
    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SHARED = Path(__file__).parents[2] / "shared" / "data"
PARSING = SHARED / "cn-address-parsing"
POI = SHARED / "shanghai-amap-poi"


# -- normalisation: one rule at a time, with real-looking addresses ---------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
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
        # traditional forms of the address words
        ("清华西路28號", "清华西路28号"),
        # every traditional character, not only the address words (issue 14)
        ("陽光花園12棟3單元502室", "阳光花园12栋3单元502室"),
        # ... but a space between two numbers separates them like a dash
        ("华南公富13 2950室", "华南公富13-2950室"),
        ("金鼎花苑 8　1203", "金鼎花苑8-1203"),
        # 一 typed for a dash between digits; a dash between names only separates them
        ("柯桥街道百舸路翠泽苑153一4", "柯桥街道百舸路翠泽苑153-4"),
        ("浙江-杭州-江干区浙江汽配城1550号", "浙江杭州江干区浙江汽配城1550号"),
        ("新河中路68-号", "新河中路68号"),
        ("保德路661弄-一号", "保德路661弄-1号"),  # a numeral after a dash is a number
        # 撞 and 懂: input slips for 幢
        ("洋茶园新村16撞10号", "洋茶园新村16栋10号"),
        ("凌云三区94懂8单元", "凌云3区94栋8单元"),
        # a gate numbered with 号门 outside a building stays a gate; 三门县 is a name
        ("义乌国际商贸城79号门5楼", "义乌国际商贸城79号门5层"),
        ("阳光花园3栋2号门", "阳光花园3栋2单元"),
        ("曹杨新村3门", "曹杨新村3单元"),
        ("浙江省三门县六敖镇", "浙江省三门县六敖镇"),
    ],
)
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
    assert (p.city, p.district, p.road, p.lane, p.number) == (
        "上海市",
        "闵行区",
        "报春路",
        "558弄",
        "38号",
    )
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


def _labels(text: str) -> list[tuple[str, str]]:
    """Number spans of a parse, as the corpus would label them."""
    keep = {"roadno", "subroadno", "houseno", "cellno", "floorno", "roomno", "road", "subroad"}
    return [(lab, t) for lab, t in parse(text).spans if lab in keep]


@pytest.mark.parametrize(
    "raw, expected",
    [
        # four parts after a road: door-building-unit-room; three: building-unit-room
        (
            "金华市将军路1326-11-6-434",
            [
                ("road", "将军路"),
                ("roadno", "1326"),
                ("houseno", "11"),
                ("cellno", "6"),
                ("roomno", "434"),
            ],
        ),
        (
            "温州苍南龙港镇柳南一街58-130-7单元793",
            [
                ("road", "柳南一街"),
                ("roadno", "58"),
                ("houseno", "130"),
                ("cellno", "7单元"),
                ("roomno", "793"),
            ],
        ),
        # a letter may number the building: B-7-1320, 82-B-1405
        (
            "北京西城黄寺大街90号B-7-1320",
            [
                ("road", "北京西城黄寺大街"),
                ("roadno", "90号"),
                ("houseno", "B"),
                ("cellno", "7"),
                ("roomno", "1320"),
            ],
        ),
        (
            "登云路和睦院82-B-1405",
            [("road", "登云路"), ("houseno", "82"), ("cellno", "B"), ("roomno", "1405")],
        ),
        # a range of shops is one room; after a building X-Y号 is unit-room
        (
            "虹口区花园路145弄10号楼2311-2312号",
            [
                ("road", "花园路"),
                ("roadno", "145弄"),
                ("houseno", "10栋"),
                ("roomno", "2311-2312号"),
            ],
        ),
        (
            "萧山原野汽配城124栋44-178号",
            [("houseno", "124栋"), ("cellno", "44"), ("roomno", "178号")],
        ),
        # one or two digits after a dash are a unit, three or more a room
        ("良渚街道文化村阳光天际63-12", [("houseno", "63"), ("cellno", "12")]),
        ("江干区万科草庄西岸9-1148", [("houseno", "9"), ("roomno", "1148")]),
        # 10A1525: building 10A, room 1525
        (
            "三墩镇西园路西港新界10A1525",
            [("road", "西园路"), ("houseno", "10A"), ("roomno", "1525")],
        ),
        # after a building, a short 号 is a unit; four digits, or three ending the address, a room
        (
            "金华义乌青口镇下湾一区110栋4号6楼",
            [("houseno", "110栋"), ("cellno", "4号"), ("floorno", "6层")],
        ),
        ("浙江省绍兴市辕门北区146栋1301号门卫", [("houseno", "146栋"), ("roomno", "1301号")]),
        ("苍南县灵溪浙闽物流中心C幢586号", [("houseno", "C栋"), ("roomno", "586号")]),
        # a village door plate, with a sub-number; a village group (N组) is labelled a road
        ("浙江省临海市杜桥镇溪口村12-87号", [("roadno", "12"), ("houseno", "87号")]),
        ("杭州市余杭区乔司吴家村10组1133", [("road", "10组"), ("roadno", "1133")]),
        # a hamlet after the road carries the door plate; a second 号 numbers a building
        ("浙江嘉兴市秀洲区王店镇海王路石岸头130号", [("road", "海王路"), ("roadno", "130号")]),
        (
            "宁波市镇海区招宝山街道宏远路1820号12号",
            [("road", "宏远路"), ("roadno", "1820号"), ("houseno", "12号")],
        ),
        ("老杭海路9号-7", [("road", "老杭海路"), ("roadno", "9号"), ("houseno", "7")]),
        # 弄 with a door number is a side lane (subroad + subroadno); otherwise the road's number
        (
            "邱隘镇盛莫路1278弄298号",
            [("road", "盛莫路"), ("subroad", "1278弄"), ("subroadno", "298号")],
        ),
        (
            "扬帆路1062弄研发园B区6号楼2433",
            [("road", "扬帆路"), ("roadno", "1062弄"), ("houseno", "6栋"), ("roomno", "2433")],
        ),
        # a six-digit number ending the address is a postcode, not a room
        ("甘霖路166号325600", [("road", "甘霖路"), ("roadno", "166号")]),
        # a gate (N号门) is part of a name, not a unit
        (
            "宁波市江北区文汇路553弄8号门472",
            [("road", "文汇路"), ("roadno", "553弄"), ("roomno", "472")],
        ),
    ],
)
def test_parse_numbers_follow_the_corpus_conventions(raw, expected):
    assert _labels(raw) == expected


def test_parse_beijing_door_plates_and_roads_named_after_villages():
    # 甲/乙/附 before a door number belong to it (a plate added beside 18号)
    p = parse("北京市海淀区中关村南大街甲18号")
    assert (p.district, p.community, p.road, p.number) == ("海淀区", None, "中关村南大街", "甲18号")
    assert parse("樱花东街甲三号").number == "甲3号"
    assert parse("文庙街附13号").number == "附13号"
    assert parse("魏公村路5号").road == "魏公村路"
    # 条 after a numeral is a lane (东四十条, 中关村北二条), not the end of a name
    p = parse("北京市海淀区中关村北二条1号")
    assert (p.community, p.road, p.number) == (None, "中关村北二条", "1号")
    assert parse("东城区东四十条24号").road == "东四十条"
    # ... a 村 before a road that is not named after it stays the community
    p = parse("龙山沟村1组23号")
    assert (p.community, p.number) == ("龙山沟村", "23号")
    assert parse("浦沿新生八甲138号").number == "138号"


def test_bio_text_keeps_two_digit_tokens_apart():
    # the corpus makes every digit run one token; two side by side were two numbers
    tokens = [
        ("公", "I-poi"),
        ("富", "I-poi"),
        ("13", "B-houseno"),
        ("2950", "B-roomno"),
        ("室", "I-roomno"),
    ]
    text = _load_bench("bench_parser").bio_text(tokens)
    assert text == "公富13 2950室"
    assert [s for s in parse(text).spans if s[0] in ("houseno", "roomno")] == [
        ("houseno", "13"),
        ("roomno", "2950室"),
    ]


def test_parse_never_raises_on_odd_number_runs():
    for text in (
        "宁国路1399号-1层G56-B1-0-008-1室",
        "A-B-C",
        "1-2-3-4-5-6号",
        "-号-",
        "路-1-",
        "B-",
        "栋栋1门门",
    ):
        parse(text)


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
    bench = _load_bench("bench_parser")
    return bench.evaluate_parser(bench.read_bio(PARSING / "dev.txt"))


@pytest.mark.shared
def test_parser_accuracy_floor_on_dev(dev_table):
    """Regression floor at the level reached (see benchmarks/RESULTS.md for the table)."""
    print(dev_table.round(3).to_string())
    floors = {"roadno": 0.935, "houseno": 0.885, "cellno": 0.905, "roomno": 0.90, "floorno": 0.955}
    for fld, floor in floors.items():
        assert dev_table.loc[fld, "f1"] >= floor, (fld, dev_table.loc[fld].to_dict())


# The issue-5 target of span F1 ≥ 0.95 per field (four strict-xfail tests here before)
# was withdrawn by issue 14: the corpus labels one written pattern two ways. It is a
# diagnostic of benchmarks/bench_parser.py now.


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
    for q in (
        "报春路558弄38号",
        "上海市闵行区报春路五百五十八弄三十八号",
        "报春路 ５５８弄 ３８号",
    ):
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
    return _load_bench("bench_lookup")


@pytest.fixture(scope="session")
def shanghai():
    if not POI.exists():
        pytest.skip("../shared/data/shanghai-amap-poi absent")
    bench = _bench()
    index_frame, pos, neg = bench.make_index_and_queries(
        n_index=5000, n_queries=700, n_negative=400
    )
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
    assert set(by_style.index) >= {
        "no_district",
        "full_width",
        "cn_numerals",
        "spaces",
        "poi_name",
        "wrong_char",
    }
    # never a confident wrong answer
    assert not (scored["confident"] & ~scored["correct"]).any(), scored[
        scored["confident"] & ~scored["correct"]
    ].to_dict("records")


@pytest.mark.shared
def test_shanghai_not_in_index_is_never_confident(shanghai):
    _, _, _, neg, idx = shanghai
    assert len(neg) >= 300 and set(neg["style"]) >= {"held_back", "altered_number"}
    confident = [q for q in neg["query"] if idx.match(q).confident]
    assert confident == []
