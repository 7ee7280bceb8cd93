"""Offline API documentation (issue 17 point 5): ``/docs`` (Swagger UI) and ``/redoc``
render in real headless Chromium (Debian's /usr/bin/chromium driven by playwright) with
every request outside the server refused — as on a government intranet."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import uvicorn

from api.app import create_app
from gridgis.store import open_store
from gridgis.store.pgtemp import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from api.demo import demo_layers

    store = open_store(tmp_path_factory.mktemp("docs") / "d.gpkg")
    store.write("streets", demo_layers(households=3000)["streets"])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(store, token="t"),
            host="127.0.0.1",
            port=port,
            log_level="error",
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _offline_page(browser, base: str):
    """A page whose requests outside ``base`` are aborted (and recorded)."""
    page = browser.new_page()
    outside: list[str] = []
    errors: list[str] = []

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort("internetdisconnected")

    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, outside, errors


def test_swagger_ui_renders_offline(browser, base):
    page, outside, errors = _offline_page(browser, base)
    page.goto(f"{base}/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    ops = page.locator(".swagger-ui .opblock").count()
    assert ops >= 15, ops
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("gridgis")
    assert page.get_by_text("/collections/{layer}/items").count() >= 1
    assert not outside, outside
    assert not errors, errors
    page.close()


def test_redoc_renders_offline(browser, base):
    page, outside, errors = _offline_page(browser, base)
    page.goto(f"{base}/redoc")
    page.wait_for_selector("h2:has-text('Features of a layer')", timeout=30_000)
    assert page.locator("h2:has-text('Grid and people at a point')").count() == 1
    assert not outside, outside
    assert not errors, errors
    page.close()
