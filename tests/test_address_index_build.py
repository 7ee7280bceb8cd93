"""The address index's build (each distinct text parsed once, tables filled in row order)
gives exactly the tables of a plain row-by-row build, hence the same answers (issue 14,
point 6: the build was made faster, no answer may change)."""

from __future__ import annotations

import copy
import importlib.util
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridgis.address import AddressIndex
from gridgis.address.components import bare
from gridgis.address.index import _column, address_key, name_variants, village
from gridgis.address.normalise import normalise, normalise_name
from gridgis.address.parser import parse

POI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "shanghai-amap-poi"
TABLES = ("exact", "door", "names", "road_rows", "door_roads")


def _reference_tables(df: pd.DataFrame, settings) -> dict:
    """The tables as the index built them before (one parse per row, in row order)."""
    df = df.reset_index(drop=True)
    col = {c: _column(df, c) for c in ("district", "road", "number", "building_no", "unit")}
    names_col = _column(df, "name")
    n = len(df)
    out = {t: defaultdict(list) for t in TABLES}
    out.update(district=[], city=[], rest=[], parts=[])

    def given(c, i):
        return normalise(col[c][i]).text if col[c] is not None else None

    def add_name(name, row):
        for v in name_variants(name):
            rows = out["names"][v]
            if not rows or rows[-1] != row:
                rows.append(row)

    for i, text in enumerate(df["text"].fillna("").astype(str)):
        p = parse(text, settings)
        road = p.road or given("road", i) or None
        number = p.number or given("number", i)
        building = p.building or given("building_no", i)
        unit = p.unit or given("unit", i)
        gd = col["district"][i] if col["district"] is not None else ""
        out["district"].append(p.district or gd)
        out["city"].append(p.city or settings.address.city or "")
        out["rest"].append(p.rest)
        if key := address_key(p):
            out["exact"][key].append(i)
        out["parts"].append(
            (bare(building, "栋"), bare(unit, "单元"), bare(p.floor, "层"), bare(p.room, "室"))
        )
        if road:
            out["road_rows"][road].append(i)
        street = road or p.poi or village(p)
        if street and number:
            out["door"][(street, p.lane or "", bare(number, "号"))].append(i)
        nm = normalise_name(names_col[i] if names_col is not None else "")
        add_name(nm, i)
        if p.poi and p.poi != nm:
            add_name(p.poi, i)
    aliases = _column(df, "aliases")
    if aliases is not None:
        seps = re.compile(f"[{re.escape(settings.address.alias_separators)}]")
        for i, text in enumerate(aliases):
            for alias in seps.split(text):
                add_name(normalise_name(alias.strip()), i)
    for road, lane, number in out["door"]:
        out["door_roads"][(lane, number)].append(road)
    assert n == len(out["rest"])
    return out


def _assert_same_tables(idx: AddressIndex, ref: dict) -> None:
    for t in TABLES:
        got, want = getattr(idx, t), ref[t]
        assert list(got) == list(want), f"{t}: keys or their order differ"
        assert dict(got) == dict(want), f"{t}: rows differ"
    for t in ("district", "city", "rest"):
        assert list(getattr(idx, t)) == ref[t], t
    assert idx.parts == ref["parts"]
    assert idx.keys == list(ref["exact"]) and idx.name_keys == list(ref["names"])


def _as_reference(idx: AddressIndex, ref: dict) -> AddressIndex:
    """A copy of ``idx`` whose tables are the reference ones."""
    old = copy.copy(idx)
    for t in TABLES:
        setattr(old, t, ref[t])
    for t in ("district", "city", "rest"):
        setattr(old, t, np.array(ref[t], dtype=object))
    old.parts = ref["parts"]
    old.roads, old.keys = list(ref["road_rows"]), list(ref["exact"])
    old.name_keys = list(ref["names"])
    old._reversed = None
    return old


def test_given_fields_and_repeats_hand_made():
    """Fields given beside the text fill what the text lacks, per row, even when rows
    share a text; repeated texts and names are listed under every row."""
    df = pd.DataFrame(
        {
            "address_id": [f"a{i}" for i in range(6)],
            "text": ["阳光花园", "阳光花园", "报春路558弄38号", "报春路558弄38号", "", "朝阳小区"],
            "name": ["阳光花园", "阳光花园", "", "春申小区", "", "朝阳小区"],
            "road": ["报春路", "建设路", "", "", "", ""],
            "number": ["12号", "9号", "", "", "", ""],
            "building_no": ["3", "4", "", "", "", "7"],
            "unit": ["", "2单元", "", "", "", ""],
            "district": ["闵行区", "", "", "", "", "黄浦区"],
            "aliases": ["", "", "", "", "", "朝阳|老朝阳"],
            "lon": [121.4, 121.4, 121.5, 121.5, 121.6, 121.7],
            "lat": [31.1, 31.1, 31.2, 31.2, 31.3, 31.4],
        }
    )
    idx = AddressIndex(df)
    _assert_same_tables(idx, _reference_tables(df, idx.settings))
    # worked answers: the two rows of one text keep their own given road and number
    assert idx.door[("报春路", "", "12")] == [0]
    assert idx.door[("建设路", "", "9")] == [1]
    assert idx.road_rows["报春路"] == [0, 2, 3]
    assert idx.parts[1][:2] == ("4", "2")
    assert idx.names["阳光花园"] == [0, 1]
    assert idx.names["老朝阳"] == [5]
    assert list(idx.district) == ["闵行区", "", "", "", "", "黄浦区"]


def test_demo_city_same_tables_and_answers():
    from gridgis.synth import make_city

    layer = make_city(households=3000).layers["addresses"]
    idx = AddressIndex.from_layer(layer)
    df = pd.DataFrame(layer.drop(columns=layer.geometry.name))
    ref = _reference_tables(df, idx.settings)
    _assert_same_tables(idx, ref)
    old = _as_reference(idx, ref)
    texts = list(df["text"].iloc[::7]) + [t + "101室" for t in df["text"].iloc[::50]]
    for q in texts:
        assert repr(idx.match(q)) == repr(old.match(q)), q


@pytest.mark.shared
def test_shanghai_same_tables_and_answers():
    """2,000 real Shanghai door plates, each again with a room (a household-level list),
    and every query the benchmark's generator writes for them."""
    if not POI.exists():
        pytest.skip("../shared/data/shanghai-amap-poi absent")
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_lookup.py"
    spec = importlib.util.spec_from_file_location("bench_lookup", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    frame, pos, neg = bench.make_index_and_queries(n_index=2000, n_queries=600, n_negative=200)
    rooms = frame.assign(text=frame["text"] + "101室", address_id=frame["address_id"] + "-101")
    df = pd.concat([frame, rooms, frame.iloc[:100]], ignore_index=True)
    idx = AddressIndex(df)
    ref = _reference_tables(df, idx.settings)
    _assert_same_tables(idx, ref)
    old = _as_reference(idx, ref)
    for q in list(pos["query"]) + list(neg["query"]):
        assert repr(idx.match(q)) == repr(old.match(q)), q


@pytest.mark.parametrize(
    "text",
    [
        "上海市闵行区报春路558弄38号",
        "闵行区上海市燎原双语学校1号",
        "上海市上海市闵行区报春路5号",
        "宝山区宝山三村84号",
        "浦东新区张江镇12村5号",
        "浦东新区张江镇1社区5号",
        "北京市海淀区中关村南大街5号",
        "上海浦东新区陆家嘴街道12号",
        "浙江省杭州市西湖区文三路9号",
        "黄浦区人民大道300号101室",
        "黄浦区人民大道",
        "都市水乡3号",
        "闵行区",
        "",
    ],
)
def test_admin_prefix_remembered_is_the_same(text):
    """The remembered reading of the administrative prefix equals a fresh one (first and
    second time, with and without a configured city and district)."""
    from gridgis.address.admin import strip_admin
    from gridgis.address.components import ParsedAddress
    from gridgis.address.normalise import normalise_parts
    from gridgis.address.parser import _strip_admin
    from gridgis.standards import DEFAULT, AddressRules, Settings

    norm = normalise_parts(text)[0]
    for settings in (DEFAULT, Settings(address=AddressRules(city="上海市", district="闵行区"))):
        want = ParsedAddress(text=norm)
        rest = strip_admin(norm, want, settings)
        for _ in range(2):
            got = ParsedAddress(text=norm)
            assert _strip_admin(norm, got, settings) == rest
            assert got == want
