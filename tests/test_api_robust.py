"""A server that survives its users (issue 18): the reported probes answer 4xx on both
stores, writes are refused from their headers before any body is read, bodies are
limited while they stream (chunked too), archives are checked before extraction, caches
follow writes made by anyone, /health tells the truth, the store reconnects after a
database restart, and the OpenAPI document says what the server does."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
import time
import zipfile

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.demo import demo_layers, fill_demo
from gridgis.standards import Settings
from gridgis.store import open_store
from gridgis.store.pgtemp import free_port

TOKEN = "robust-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def fresh_pg_url() -> str:
    from gridgis.store.pgtemp import PostgresUnavailable, find_bindir, fresh_workspace_url

    if not os.environ.get("GRIDGIS_TEST_DATABASE_URL"):
        try:
            find_bindir()
        except PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL not installed: {exc}")
    return fresh_workspace_url()


@pytest.fixture(scope="module")
def layers():
    return demo_layers(households=3000)


@pytest.fixture(scope="module")
def maps_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("maps")
    (d / "index.html").write_text("<html>maps</html>")
    return d


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def client(request, tmp_path_factory, layers, maps_dir):
    if request.param == "gpkg":
        store = open_store(tmp_path_factory.mktemp("r") / "r.gpkg")
    else:
        store = open_store(fresh_pg_url())
    fill_demo(store, layers)
    with TestClient(create_app(store, maps_dir=maps_dir, token=TOKEN)) as c:
        yield c
    store.close()


@contextlib.contextmanager
def served(app):
    """Base URL of ``app`` under uvicorn on loopback (a thread of this process)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- the reported probes -----------------------------------------------------------------
def test_reported_probes_answer_4xx(client, layers):
    code = layers["grids"]["grid_code"].iloc[0]
    probes = {
        "/maps/" + "a" * 256: 404,
        "/maps/" + "a" * 256 + "/" + "b" * 40: 404,
        "/collections/grids/items?name=%00": 200,
        "/collections/grids/items?grid_code=a%00b": 200,
        "/collections/grids/items?households=%00": 200,
        "/collections/buildings/items?households_estimated=tr%00ue": 200,
        "/collections/grids/items?n%00ame=1": 422,
        "/collections/grids/items/%00": 404,
        f"/collections/grids/items/{code}%00": 404,
        "/collections/staff/items/a%00b": 404,
        "/collections/assign_rejects/items/1%00": 404,
        "/collections/%00/items": 404,
        "/collections/grids/items?crs=EPSG:3857": 422,
        "/collections/grids/items?bbox=1,2,3": 422,
        "/collections/grids/items?bbox=1,2,3,4&bbox-crs=nope": 422,
        "/lookup/address?q=%00": 200,
        f"/grids/{code}": 200,
    }
    for url, want in probes.items():
        r = client.get(url, headers=AUTH)
        assert r.status_code == want, (url, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith(("application/json", "application/geo+json"))
    r = client.get("/collections/grids/items?name=%00").json()
    assert r["numberMatched"] == 0 and r["features"] == []


def test_upload_probes_answer_4xx(client):
    long_name = "楼" * 90 + ".csv"  # 272 bytes in UTF-8
    r = client.post("/upload", headers=AUTH, files={"files": (long_name, b"lon,lat\n1,2\n")})
    assert r.status_code == 422 and "server.max_filename_bytes" in r.json()["detail"]


def test_upload_unreasonable_households_are_rejected_rows(tmp_path, layers):
    """households of inf, 1e30, 9.3e18 or -5 in an upload: that row is rejected (the
    other imported), never a 5xx."""
    import json

    store = open_store(tmp_path / "hh.gpkg")
    store.write("streets", layers["streets"])
    two = layers["buildings"].iloc[:2][["building_id", "geometry"]]
    with TestClient(create_app(store, token=TOKEN)) as c:
        for hh in ("inf", "1e30", 1e30, 9.3e18, "-5"):
            fc = json.loads(two.to_json())
            fc["features"][0]["properties"]["households"] = hh
            fc["features"][1]["properties"]["households"] = 12
            r = c.post(
                "/upload",
                headers=AUTH,
                data={"layer": "buildings", "mode": "replace", "crs": "wgs84"},
                files={"files": ("楼栋.geojson", json.dumps(fc).encode(), "application/geo+json")},
            )
            assert r.status_code == 200, (hh, r.text[:300])
            got = r.json()["import"]["layers"]["buildings"]
            assert (got["added"], got["rejected"]) == (1, 1), (hh, got)
            assert store.read("buildings")["households"].tolist() == [12]


# -- authentication before the body, streamed limits -------------------------------------
def test_write_without_token_is_refused_before_the_body(client):
    """The ASGI application is called with a receive channel that fails if read: the
    401 comes from the headers alone."""
    app = client.app
    for headers in ([], [(b"authorization", b"Bearer wrong")], [(b"authorization", b"Basic x")]):
        sent: list[dict] = []

        async def receive():
            raise AssertionError("the body was read")

        async def send(message, sent=sent):
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/upload",
            "raw_path": b"/upload",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-length", b"60000000"), *headers],
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1),
        }
        asyncio.run(app(scope, receive, send))
        assert sent[0]["status"] == 401
    # a wrong method on a read route is still a 405, not a 401
    assert client.delete("/collections").status_code == 405


def test_chunked_body_over_the_limit_is_413(tmp_path, layers):
    import httpx

    store = open_store(tmp_path / "c.gpkg")
    store.write("streets", layers["streets"])
    app = create_app(store, token=TOKEN, max_body_bytes=200_000)

    def chunks(n, head=b""):
        yield head
        for _ in range(n):
            yield b"x" * 65536

    part = (
        b'--zz\r\nContent-Disposition: form-data; name="files"; filename="a.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n"
    )

    with served(app) as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            r = http.post(
                "/upload",
                headers={**AUTH, "content-type": "multipart/form-data; boundary=zz"},
                content=chunks(50, part),
            )
            assert r.status_code == 413, r.text
            r = http.post(
                "/grids/320199001001001/staff",
                headers={**AUTH, "content-type": "application/json"},
                content=chunks(50),
            )
            assert r.status_code == 413
            assert http.get("/health").status_code == 200  # the server is fine


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_archives_are_checked_before_extraction(tmp_path, layers):
    store = open_store(tmp_path / "z.gpkg")
    store.write("streets", layers["streets"])
    settings = Settings().override(
        {"server.max_unpacked_bytes": 3_000_000, "server.max_upload_files": 10}
    )
    app = create_app(store, settings, token=TOKEN)
    bomb = _zip({"a.csv": b"0" * 20_000_000})  # 20 MB of zeros: about 20 KB zipped
    many = _zip({f"f{i}.csv": b"lon,lat\n" for i in range(11)})
    big = _zip({f"r{i}.csv": os.urandom(1_100_000) for i in range(3)})  # incompressible
    with TestClient(app) as c:
        for payload, word in ((bomb, "compression"), (many, "max_upload_files"), (big, "unpacked")):
            r = c.post("/upload", headers=AUTH, files={"files": ("x.zip", payload)})
            assert r.status_code == 413, r.text
            assert word in r.json()["detail"]
    assert store.layers() == ["streets"]


# -- fresh answers -----------------------------------------------------------------------
def test_writes_by_another_process_are_seen(client, layers):
    """A write through another store object (as the CLI or another worker makes):
    lookups, the grid page and the layer list follow at once."""
    ctx = client.app.state.ctx
    other = open_store(ctx.store.location)  # loopback test servers have no password
    grids = layers["grids"]
    row = grids.iloc[2]
    p = row.geometry.representative_point()
    ask = f"/lookup/point?lon={p.x}&lat={p.y}"
    assert client.get(ask).json()["grid"]["grid_code"] == row["grid_code"]
    new_code = row["grid_code"][:-3] + "999"
    changed = grids.copy()
    changed.loc[changed.index[2], "grid_code"] = new_code
    try:
        other.write_many({"grids": changed, "extra_layer": layers["streets"]})
        time.sleep(0.05)  # PostGIS: the commit's notification reaches the server
        answer = client.get(ask).json()
        assert answer["grid"]["grid_code"] == new_code
        assert client.get(f"/grids/{new_code}").status_code == 200
        assert client.get(f"/grids/{row['grid_code']}").status_code == 404
        assert client.get("/collections/extra_layer").status_code == 200
    finally:
        other.write_many({"grids": grids})
        other.delete("extra_layer")
        other.close()
    time.sleep(0.05)
    assert client.get("/collections/extra_layer").status_code == 404
    assert client.get(ask).json()["grid"]["grid_code"] == row["grid_code"]


def test_health_503_when_the_geopackage_is_gone(tmp_path, layers):
    path = tmp_path / "h.gpkg"
    store = open_store(path)
    store.write("streets", layers["streets"])
    with TestClient(create_app(store, token=TOKEN)) as c:
        assert c.get("/health").json()["status"] == "ok"
        os.rename(path, tmp_path / "moved.gpkg")
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "error"
        assert "gone" in r.json()["detail"]
        for url in ("/collections", "/collections/streets/items", "/lookup/point?lon=1&lat=2"):
            assert c.get(url).status_code == 503, url
        os.rename(tmp_path / "moved.gpkg", path)
        assert c.get("/health").status_code == 200


def test_postgis_restart_no_5xx(layers):
    """The database restarts under a running server: while it is down the answers are
    503; from the first request after it is back, 200 (no failed first requests)."""
    from gridgis.store.pgtemp import PostgresUnavailable, TempPostgres

    try:
        pg = TempPostgres().start()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        store = open_store(pg.url + "?schema=rs")
        fill_demo(store, layers)
        with TestClient(create_app(store, token=TOKEN)) as c:
            urls = ["/health", "/collections/grids/items?limit=2", "/collections", "/coverage"]
            for u in urls:  # every pooled connection used once
                assert c.get(u).status_code == 200
            pg.restart()
            for u in urls * 2:
                r = c.get(u)
                assert r.status_code == 200, (u, r.status_code, r.text[:200])
            pg._cmd(  # noqa: SLF001 - test helper: stop without deleting the data
                str(pg.bindir / "pg_ctl"), "-D", str(pg.root / "data"), "-m", "fast", "stop"
            )
            pg.started = False
            assert c.get("/health").status_code == 503
            assert c.get("/collections").status_code == 503
        store.close()
    finally:
        pg.stop()


# -- the OpenAPI document -----------------------------------------------------------------
def test_openapi_document_matches_the_server(client):
    doc = client.get("/openapi.json").json()
    comps = doc["components"]["schemas"]
    assert "HTTPValidationError" not in comps
    assert comps["Problem"]["properties"]["detail"]["type"] == "string"
    writes = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            is_write = method == "post"
            assert bool(op.get("security")) == is_write, (method, path)
            resp = op["responses"]
            assert resp["422"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
            if is_write:
                writes += 1
                assert {"400", "401", "413"} <= set(resp), (method, path)
    assert writes >= 5
    items = doc["paths"]["/collections/{layer}/items"]["get"]
    assert "application/geo+json" in items["responses"]["200"]["content"]
    crs = next(p for p in items["parameters"] if p["name"] == "crs")
    enum = crs["schema"].get("enum") or next(
        s["enum"] for s in crs["schema"]["anyOf"] if "enum" in s
    )
    assert "http://www.opengis.net/def/crs/OGC/1.3/CRS84" in enum and "gcj02" in enum
    r = client.get("/collections/grids/items?limit=1")
    assert r.headers["content-type"] == "application/geo+json"
    r = client.get("/lookup/point?lon=x&lat=1")
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)
    assert r.json()["errors"][0]["field"] == "lon"


def test_docs_pages_use_local_assets_only(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn.jsdelivr.net" not in html and "fonts.googleapis" not in html
        assert "/docs-assets/" in html
    js = client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get("/docs-assets/redoc.standalone.js").status_code == 200


def test_bbox_corners_in_either_order_and_cut_to_the_world(client, layers):
    """bbox is lenient where its meaning is plain (schema-valid text is answered): the
    corners may come in either order, a box beyond the world is cut to it, and a layer
    without geometry meets no box."""
    minx, miny, maxx, maxy = layers["buildings"].total_bounds
    base = "/collections/buildings/items?limit=1"
    a = client.get(f"{base}&bbox={minx},{miny},{maxx},{maxy}").json()["numberMatched"]
    b = client.get(f"{base}&bbox={maxx},{maxy},{minx},{miny}").json()["numberMatched"]
    world = client.get(f"{base}&bbox=-1e400,-500,1e400,500").json()["numberMatched"]
    assert a == b == world == len(layers["buildings"])
    r = client.get("/collections/staff/items?bbox=-180,-90,180,90")
    assert r.status_code == 200 and r.json()["numberMatched"] == 0
