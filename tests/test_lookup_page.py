"""One matcher everywhere (issue 14): the same 50 queries typed into ``lookup.html``
(served by the API, and opened as a file) and run through ``gridgis lookup --batch`` give
the same grid codes and confidence.

Served, the page shows the API's answer (the CLI's matcher): identical on every query.
As a file it offers exact matches only and says so: where it answers, it agrees with the
CLI; where the CLI answers by an exact key, so does the page; elsewhere it says that the
file page matches exactly only. Real headless Chromium (Debian's /usr/bin/chromium driven
by playwright), as in tests/test_maps.py.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from gridgis.maps.lookup import FILE_MODE_NOTE
from gridgis.standards import DEFAULT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
FULL = str.maketrans("0123456789", "０１２３４５６７８９")
CN = "零一二三四五六七八九"


def _cn(n: int) -> str:
    if n < 10:
        return CN[n]
    if n < 20:
        return "十" + (CN[n % 10] if n % 10 else "")
    if n < 100:
        return CN[n // 10] + "十" + (CN[n % 10] if n % 10 else "")
    return "".join(CN[int(d)] for d in str(n))


def _homophone(road: str, rng: random.Random) -> str | None:
    from pypinyin import Style, lazy_pinyin

    pool = "东冬栋洞动同通铜童桐华花化画滑新心欣星兴阳杨扬洋样和河荷合何林霖琳临宁凌"
    for k in rng.sample(range(len(road) - 1), len(road) - 1):
        py = lazy_pinyin(road[k], style=Style.NORMAL)[0]
        alts = [c for c in pool if c != road[k] and lazy_pinyin(c, style=Style.NORMAL)[0] == py]
        if alts:
            return road[:k] + rng.choice(alts) + road[k + 1 :]
    return None


def make_queries(addresses: pd.DataFrame, seed: int = 3) -> list[str]:
    """50 queries written from the workspace's own addresses the ways people write them:
    exact, Chinese numerals, full-width, 幢/门, place names, place + building,
    traditional characters, homophone road typos, addresses that are not there."""
    import re

    import zhconv

    rng = random.Random(seed)
    a = addresses.reset_index(drop=True)
    rows = rng.sample(range(len(a)), len(a))
    texts = [str(a.text[i]) for i in rows]
    names = list(dict.fromkeys(str(n) for n in a["name"].dropna()))
    q: list[str] = texts[:12]
    for t in texts[12:30]:
        if len(q) >= 20:
            break
        cn = re.sub(r"(\d+)(号|栋|单元)", lambda m: _cn(int(m.group(1))) + m.group(2), t)
        if cn != t:
            q.append(cn.replace("栋", "幢").replace("单元", "门"))
    q += [" " + t.translate(FULL) + " " for t in texts[30:34]]
    q += names[:6]
    q += [n + "3号楼" for n in names[6:9]]
    q += [zhconv.convert(t, "zh-hant") for t in texts[34:38]]
    typos = 0
    for i in rows:
        road = a["road"][i] if "road" in a.columns else None
        if typos >= 6 or not isinstance(road, str) or len(road) < 3:
            continue
        new = _homophone(road, rng)
        if new:
            q.append(str(a.text[i]).replace(road, new, 1))
            typos += 1
    q += [
        re.sub(r"(\d+)号", lambda m: f"{int(m.group(1)) + 900}号", t, count=1) for t in texts[38:42]
    ]
    q += ["火星路1号", "不存在的小区5栋"]
    q += texts[42:60]  # more exact addresses to reach 50
    return list(dict.fromkeys(q))[:50]


@pytest.fixture(scope="module")
def served_site(tmp_path_factory):
    from gridgis.delineate import delineate
    from gridgis.maps import write_maps
    from gridgis.store import GeoPackageStore
    from gridgis.synth import make_city

    city = make_city(households=10_000, seed=7)
    layers = dict(city.layers)
    d = delineate(layers, DEFAULT)
    layers["grids"], layers["buildings"] = d.grids, d.buildings
    root = tmp_path_factory.mktemp("lookup_page")
    ws = root / "ws.gpkg"
    keep = ("streets", "communities", "grids", "buildings", "addresses", "staff")
    GeoPackageStore(ws).write_many({k: layers[k] for k in keep if k in layers}, params={})
    site = write_maps({k: layers[k] for k in keep if k in layers}, root / "maps", boards=False)
    return ws, site.out_dir, layers


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _cli_batch(ws: Path, queries: list[str], tmp: Path) -> pd.DataFrame:
    from typer.testing import CliRunner

    from gridgis.cli import app

    src, out = tmp / "in.csv", tmp / "out.csv"
    pd.DataFrame({"address": queries}).to_csv(src, index=False, encoding="utf-8")
    res = CliRunner().invoke(
        app,
        ["lookup", "-w", str(ws), "--batch", str(src), "--column", "address", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    df["confident"] = df["confident"] == "True"
    df["grid_code"] = pd.Series([g or None for g in df["grid_code"]], dtype=object)
    return df


def _type_all(page, queries: list[str]) -> list[tuple[str | None, bool, str]]:
    out = []
    for q in queries:
        page.evaluate("window.ggLookup.done = false")
        page.fill("#gg-q", q)
        page.click("#gg-go")
        page.wait_for_function("window.ggLookup.done === true", timeout=10_000)
        out.append(
            (
                page.evaluate("window.ggLookup.last"),
                page.evaluate("window.ggLookup.confident"),
                page.inner_text("#gg-result"),
            )
        )
    return out


def test_queries_cover_the_styles(served_site):
    _, _, layers = served_site
    queries = make_queries(layers["addresses"])
    assert len(queries) == 50 and len(set(queries)) == 50


def test_page_served_and_as_file_agree_with_the_cli(served_site, browser, tmp_path):
    create_app = pytest.importorskip("api.app").create_app
    import uvicorn

    from gridgis.store import GeoPackageStore

    ws, maps_dir, layers = served_site
    queries = make_queries(layers["addresses"])
    cli = _cli_batch(ws, queries, tmp_path)
    assert cli["confident"].sum() >= 35  # the queries are mostly answerable
    assert cli["rule"].nunique() >= 4

    app = create_app(GeoPackageStore(ws), maps_dir=maps_dir)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        assert server.started
        page.goto(f"http://127.0.0.1:{port}/maps/lookup.html")
        served = _type_all(page, queries)
        assert page.evaluate("window.ggLookup.mode") == "api"
        for q, (code, sure, text), row in zip(queries, served, cli.itertuples(), strict=True):
            assert (code, sure) == (row.grid_code, row.confident), (q, code, sure, row)
            if not sure:  # no grid shown: the page says so, why, and lists candidates
                assert "未能确定所在网格" in text, (q, text)

        page.goto((maps_dir / "lookup.html").as_uri())
        placeholder = page.get_attribute("#gg-q", "placeholder")
        assert placeholder.removeprefix("例如: ") in set(layers["addresses"]["text"])
        local = _type_all(page, queries)
        assert page.evaluate("window.ggLookup.mode") == "file"
        for q, (code, sure, text), row in zip(queries, local, cli.itertuples(), strict=True):
            if sure:  # a file-page answer is the CLI's answer
                assert row.confident and code == row.grid_code, (q, code, row)
            elif row.rule == "exact_key" and row.grid_code:
                raise AssertionError(f"{q}: exact key answered by the CLI, not by the page")
            else:
                assert FILE_MODE_NOTE in text or "多个网格" in text, (q, text)
        assert sum(s for _, s, _ in local) >= 15
        assert errors == []
    finally:
        page.close()
        server.should_exit = True
        thread.join(timeout=10)
