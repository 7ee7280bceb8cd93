"""The lookup page's normaliser is generated from the Python tables and gives the same
key: both run on the same texts (JavaScript under node, as in the page)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gridgis.address import normalise, normalise_name, normaliser_js

NODE = shutil.which("node")

TEXTS = [
    "报春路５５８弄３８号",
    "上海市闵行区报春路五百五十八弄三十八号",
    "阳光花园十二栋三单元一〇二室",
    "陽光花園12棟3單元502室",
    "紅花地44號",
    "明虹路五号朝紫小区三幢二门",
    "金鼎花苑 8　1203",
    "柯桥街道百舸路翠泽苑153一4",
    "浙江-杭州-江干区浙江汽配城1550号",
    "新河中路68-号",
    "保德路661弄-一号",
    "洋茶园新村16撞10号",
    "义乌国际商贸城79号门5楼",
    "阳光花园3栋2号门",
    "曹杨新村3门",
    "建设路88号(迎勋北路)阳光花园B1层",
    "海底捞火锅（打浦路店）",
    "四川路十二号",
    "第三栋二单元",
    "幸福里二十三号 15F 2房",
    "",
    "abc路12号",
]


@pytest.mark.skipif(NODE is None, reason="node not installed")
def test_generated_javascript_normalises_like_python(tmp_path: Path):
    script = tmp_path / "norm.js"
    script.write_text(
        normaliser_js()
        + "\nconst texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
        + "console.log(JSON.stringify(texts.map(t => [ggNormalise(t), ggNormaliseName(t)])));\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [NODE, str(script)],
        input=json.dumps(TEXTS, ensure_ascii=False),
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(run.stdout)
    for text, (js, js_name) in zip(TEXTS, got, strict=True):
        py = normalise(text)
        assert js["text"] == py.text, (text, js, py)
        assert tuple(js["hints"]) == py.hints, (text, js, py)
        assert js_name == normalise_name(text), text


def test_javascript_is_generated_from_the_tables():
    js = normaliser_js()
    assert '"紅": "红"' in js  # the traditional → simplified table, from zhconv
    assert "GG_CN_DIGIT" in js and "十" in js
