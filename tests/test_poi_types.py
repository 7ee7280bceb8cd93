"""Issue 12, points 6 and 8: POI categories from the provider's own type system (one
table, gridgis.io.fields.POI_TYPES), addresses without address content, and facility
kinds named by file names (幼儿园.csv, kindergartens.geojson)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gridgis.io import read_source
from gridgis.io.fields import POI_TYPES, facility_kind, infer_layer, poi_category
from gridgis.layers import FACILITY_CATEGORIES

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHANGHAI = DATA / "shanghai-amap-poi"


@pytest.mark.parametrize(
    "text, category",
    [
        ("医疗保健服务;诊所;诊所", "clinic"),
        ("医疗保健服务;专科医院;口腔医院", "other"),
        ("医疗保健服务;专科医院;整形美容", "other"),
        ("医疗保健服务;专科医院;眼科医院", "hospital"),  # a 专科医院 is a hospital
        ("医疗保健服务;急救中心;急救中心", "other"),
        ("医疗保健服务;疾病预防机构;疾病预防", "other"),
        ("医疗保健服务;动物医疗场所;宠物诊所", "other"),
        ("医疗保健服务;综合医院;卫生院", "health_centre"),
        ("医疗保健服务;某种新类型;某种新类型", "other"),  # unknown health type: never upgraded
        ("医疗保健服务;专科医院;口腔医院|医疗保健服务;诊所;诊所", "other"),  # first listed
        ("科教文化服务;学校;幼儿园", "kindergarten"),
        ("科教文化服务;学校;高等院校", "other"),
        ("交通设施服务;公交车站;公交车站相关", "bus_stop"),
        ("住宿服务;宾馆酒店;四星级宾馆", None),  # not in the table: rejected by validation
        ("090300", "clinic"),  # Amap typecode
        ("141204", "kindergarten"),
        ("090201", "hospital"),  # a 专科医院 sub-code without its own row: the 中类's
        ("医疗;诊所", "clinic"),  # Baidu
        ("教育培训;幼儿园", "kindergarten"),
    ],
)
def test_poi_type_table(text, category):
    assert poi_category(text) == category


def test_table_uses_controlled_categories_only_and_never_health_station_for_clinics():
    assert {t.category for t in POI_TYPES} <= set(FACILITY_CATEGORIES)
    assert "clinic" in FACILITY_CATEGORIES
    assert not any(t.category == "health_station" for t in POI_TYPES)


@pytest.mark.shared
@pytest.mark.skipif(not SHANGHAI.exists(), reason="needs ../shared/data")
def test_shanghai_clinics_are_clinics_not_health_stations():
    """1,643 rows of shanghai_hospital.csv are typed exactly 医疗保健服务;诊所;诊所: none may
    become a 社区卫生服务站; dental and cosmetic hospitals are not 'hospital'."""
    src = SHANGHAI / "shanghai_hospital.csv"
    raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    fac = read_source(src, layer="facilities", crs="wgs84")["facilities"]
    data = fac.data
    assert "health_station" not in set(data["category"])
    clinics = data[data["source_type"] == "医疗保健服务;诊所;诊所"]
    no_address = (raw["type"] == "医疗保健服务;诊所;诊所") & (raw["address"] == "[]")
    assert len(clinics) == 1643 - int(no_address.sum())
    assert (clinics["category"] == "clinic").all()
    for kind in ("口腔医院", "整形美容", "急救中心", "疾病预防"):
        rows = data[data["source_type"].str.split("|").str[0].str.endswith(kind)]
        assert len(rows) > 10 and (rows["category"] == "other").all(), kind
    # kept and counted: every row is either stored or rejected (only for '[]' addresses)
    assert len(data) + len(fac.rejects) == len(raw)
    assert any("POI_TYPES" in n and "clinic 1," in n for n in fac.notes)


@pytest.mark.parametrize("text", ["[]", "  [ ]  ", "——", "（）", "-", "...", "【】"])
def test_address_without_content_is_rejected(tmp_path, text):
    src = tmp_path / "facilities.csv"
    pd.DataFrame(
        {
            "name": ["甲", "乙"],
            "category": ["幼儿园", "小学"],
            "address": [text, "长江路1号"],
            "lon": [118.78, 118.79],
            "lat": [32.04, 32.04],
        }
    ).to_csv(src, index=False)
    v = read_source(src, crs="wgs84")["facilities"]
    assert list(v.data["address"]) == ["长江路1号"]
    assert list(v.rejects["row"]) == [2] and list(v.rejects["field"]) == ["address"]
    assert "no address content" in v.rejects["reason"].iloc[0]


def test_addresses_layer_text_without_content_is_rejected(tmp_path):
    src = tmp_path / "addresses.csv"
    pd.DataFrame(
        {
            "address_id": ["a1", "a2"],
            "地址": ["[]", "长江路1号"],
            "lon": [118.78, 118.79],
            "lat": [32.04, 32.04],
        }
    ).to_csv(src, index=False)
    v = read_source(src, crs="wgs84")["addresses"]
    assert list(v.data["address_id"]) == ["a2"]
    assert list(v.rejects["field"]) == ["text"]


@pytest.mark.parametrize(
    "name, layer, kind",
    [
        ("幼儿园", "facilities", "kindergarten"),
        ("小学", "facilities", "primary_school"),
        ("中学", "facilities", "middle_school"),
        ("养老院", "facilities", "elderly_care_home"),
        ("社区卫生服务站", "facilities", "health_station"),  # not 'communities' (社区)
        ("菜市场", "facilities", "vegetable_market"),
        ("kindergartens", "facilities", "kindergarten"),
        ("primary_schools", "facilities", "primary_school"),
        ("nanjing_pharmacy", "facilities", "pharmacy"),
        ("社区", "communities", None),
        ("公园", "green_spaces", None),
        ("建筑", "buildings", None),
        ("大学", None, None),
    ],
)
def test_file_names_name_facility_kinds(name, layer, kind):
    assert infer_layer(name) == layer
    assert facility_kind(name) == kind


def test_category_from_file_name_when_the_file_has_none(tmp_path):
    src = tmp_path / "幼儿园.csv"
    pd.DataFrame({"名称": ["思南路幼儿园"], "经度": [121.46], "纬度": [31.21]}).to_csv(
        src, index=False
    )
    v = read_source(src, crs="wgs84")["facilities"]
    assert list(v.data["category"]) == ["kindergarten"]
    assert any("as the file name says" in n for n in v.notes)
    en = tmp_path / "kindergartens.csv"
    pd.DataFrame({"name": ["x"], "lon": [121.46], "lat": [31.21]}).to_csv(en, index=False)
    assert list(read_source(en, crs="wgs84")["facilities"].data["category"]) == ["kindergarten"]


@pytest.mark.shared
@pytest.mark.skipif(not SHANGHAI.exists(), reason="needs ../shared/data")
def test_shanghai_chinese_file_names_import_without_layer():
    for name, cat in (
        ("幼儿园.csv", "kindergarten"),
        ("小学.csv", "primary_school"),
        ("中学.csv", "middle_school"),
    ):
        v = read_source(SHANGHAI / name, crs="wgs84")["facilities"]
        assert set(v.data["category"]) == {cat}, name
