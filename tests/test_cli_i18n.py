"""The CLI's Chinese face: language from --lang or the locale, Chinese tables, category
names by their Chinese names and never cut."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gridgis.cli import app, i18n
from gridgis.layers import FACILITY_CATEGORIES


@pytest.mark.parametrize(
    "env, lang",
    [
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),  # LC_ALL wins when set
        ({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, "zh"),  # empty means unset
        ({"GRIDGIS_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"GRIDGIS_LANG": "zh"}, "zh"),
    ],
)
def test_language_follows_the_locale(env, lang):
    assert i18n.detect_language(env) == lang


def test_every_catalogue_entry_has_both_languages_and_the_same_fields():
    import string

    for key, (en, zh) in i18n.CATALOGUE.items():
        fields = lambda s: {f for _, f, _, _ in string.Formatter().parse(s) if f}  # noqa: E731
        assert en and zh and fields(en) == fields(zh), key


@pytest.fixture(scope="module")
def covered(demo_delineated_gpkg, tmp_path_factory):
    import shutil

    path = tmp_path_factory.mktemp("i18n") / "ws.gpkg"
    shutil.copy(demo_delineated_gpkg, path)
    res = CliRunner().invoke(app, ["--lang", "en", "coverage", "-w", str(path)])
    assert res.exit_code == 0, res.output
    return path


def test_coverage_table_in_chinese_with_whole_category_names(covered):
    res = CliRunner().invoke(app, ["--lang", "zh", "coverage", "-w", str(covered)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "覆盖户数比例" in out and "设施类别" in out and "已写入" in out
    for name in ("社区综合服务设施(居委会)", "老年人日间照料中心", "幼儿园", "公园(≥1 公顷)"):
        assert name in out, name
    assert "…" not in out.split("\n\n")[0]
    assert "kindergarten" not in out  # categories by their Chinese names


def test_coverage_table_in_english_keeps_long_keys_whole(covered):
    res = CliRunner().invoke(app, ["--lang", "en", "coverage", "-w", str(covered)])
    assert res.exit_code == 0, res.output
    assert "community_service_station" in res.output and "elderly_care_home" in res.output
    assert "Households covered" in res.output


def test_chinese_by_default_on_a_chinese_locale(covered):
    env = {"GRIDGIS_LANG": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "zh_CN.UTF-8"}
    res = CliRunner().invoke(app, ["info", str(covered)], env=env)
    assert res.exit_code == 0, res.output
    assert "工作空间" in res.output and "楼栋 buildings" in res.output
    assert FACILITY_CATEGORIES["kindergarten"] in res.output  # facilities by category
    res = CliRunner().invoke(app, ["assign", "-w", str(covered.parent / "none.gpkg")], env=env)
    assert res.exit_code != 0 and "错误:" in res.output


def test_audit_and_site_speak_chinese(covered):
    runner = CliRunner()
    res = runner.invoke(app, ["--lang", "zh", "audit", "-w", str(covered)])
    assert res.exit_code == 0, res.output
    assert "检查项" in res.output and "缝隙 gap" in res.output and "已检查" in res.output
    res = runner.invoke(
        app, ["--lang", "zh", "site", "-w", str(covered), "-c", "kindergarten", "-k", "1"]
    )
    assert res.exit_code == 0, res.output
    assert "幼儿园 建议选址" in res.output and "选址前覆盖" in res.output


def test_bad_language_is_refused():
    res = CliRunner().invoke(app, ["--lang", "fr", "info"])
    assert res.exit_code == 2 and "use zh or en" in res.output


def test_demo_speaks_chinese(tmp_path):
    res = CliRunner().invoke(
        app, ["--lang", "zh", "demo", "--out", str(tmp_path), "--households", "10000"]
    )
    assert res.exit_code == 0, res.output
    out = res.output
    for text in ("生成示范城市", "划分网格", "个网格(住宅", "处幼儿园选址", "地图(", "完成"):
        assert text in out, text
