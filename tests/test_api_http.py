"""The API over real HTTP: ``gridgis serve`` runs uvicorn on 127.0.0.1 (a free port) in
its own process, on BOTH backends (GeoPackage file, PostGIS schema), with the demo city."""

from __future__ import annotations

import os

import httpx
import numpy as np
import pytest
import shapely

from api.demo import demo_layers, fill_demo
from gridgis.store import open_store

TOKEN = "http-test-token"
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
    return demo_layers(households=10_000)


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def server(request, tmp_path_factory, layers, gridgis_serve):
    """(base URL, backend) of a running ``gridgis serve``."""
    if request.param == "gpkg":
        target = str(tmp_path_factory.mktemp("http") / "demo.gpkg")
        args = ["--workspace", target]
    else:
        target = fresh_pg_url()
        args = ["--database", target]
    store = open_store(target)
    fill_demo(store, layers)
    store.close()
    with gridgis_serve(args, token=TOKEN) as base:
        yield base, request.param


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server[0], timeout=30) as c:
        yield c


def test_health_names_the_backend(http, server):
    h = http.get("/health").json()
    assert h["status"] == "ok" and h["writes_enabled"]
    assert h["backend"] == {"gpkg": "geopackage", "postgis": "postgis"}[server[1]]


def test_items_bbox_paging_over_http(http, layers):
    g = layers["grids"]
    minx, miny, maxx, maxy = g.total_bounds
    box = (minx, miny, (minx + maxx) / 2, maxy)
    want = set(g.loc[g.intersects(shapely.box(*box)), "grid_code"])
    got: list[str] = []
    url: str | None = "/collections/grids/items?limit=4&bbox=" + ",".join(map(str, box))
    while url:
        r = http.get(url)
        assert r.status_code == 200
        body = r.json()
        assert body["numberMatched"] == len(want)
        got += [f["id"] for f in body["features"]]
        nxt = [ln["href"] for ln in body["links"] if ln["rel"] == "next"]
        url = nxt[0] if nxt else None
    assert sorted(got) == sorted(want) and 0 < len(want) < len(g)
    code = layers["communities"]["community_code"].iloc[0]
    r = http.get(
        "/collections/buildings/items", params={"community_code": code, "limit": 10000}
    ).json()
    b = layers["buildings"]
    assert {f["id"] for f in r["features"]} == set(
        b.loc[b["community_code"] == code, "building_id"]
    )
    f = http.get(f"/collections/grids/items/{g['grid_code'].iloc[0]}").json()
    assert shapely.geometry.shape(f["geometry"]).equals_exact(g.geometry.iloc[0], 1e-9)
    assert http.get("/collections/grids/items/000000000000000").status_code == 404
    assert http.get("/collections/grids/items?limit=99999").status_code == 422


def test_lookup_and_grid_page_over_http(http, layers):
    g = layers["grids"]
    res = g[g["kind"] == "residential"]
    pts = res.geometry.representative_point()
    for code, pt in list(zip(res["grid_code"], pts, strict=True))[:5]:
        r = http.get("/lookup/point", params={"lon": pt.x, "lat": pt.y}).json()
        assert r["grid"]["grid_code"] == code
    code = res["grid_code"].iloc[0]
    page = http.get(f"/grids/{code}").json()
    b = layers["buildings"]
    assert page["statistics"]["households"] == int(
        b.loc[b["grid_code"] == code, "households"].sum()
    )
    a = layers["addresses"]
    a = a[~a["text"].duplicated(keep=False)].iloc[0]  # an address found in one place
    assert (
        http.get("/lookup/address", params={"q": a["text"]}).json()["address_id"] == a["address_id"]
    )


def test_personal_fields_and_token_over_http(http, layers):
    r = http.get("/collections/staff/items?limit=3").json()
    assert r["features"] and all("phone" not in f["properties"] for f in r["features"])
    r = http.get("/collections/staff/items?limit=3", headers=AUTH).json()
    assert all(f["properties"]["phone"] for f in r["features"])
    assert http.post("/jobs/assign").status_code == 401


def test_write_then_read_back_over_http(http, layers):
    g = layers["grids"]
    code = g[g["kind"] == "residential"]["grid_code"].iloc[-1]
    body = {
        "staff": [{"staff_id": "H1", "name": "周建国", "role": "grid_head", "phone": "13900000001"}]
    }
    r = http.post(f"/grids/{code}/staff", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    page = http.get(f"/grids/{code}", headers=AUTH).json()
    assert {"staff_id": "H1", "phone": "13900000001"}.items() <= next(
        s for s in page["staff"] if s["staff_id"] == "H1"
    ).items()
    r = http.post("/jobs/assign", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["layers"]["grids"] == len(g)


def test_oversized_body_is_413_over_http(server):
    """A client announcing 10 GB is refused before any of it is read (raw socket: HTTP
    libraries will not send a false Content-Length)."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(server[0])
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\nContent-Type: multipart/form-data; boundary=x"
            b"\r\nContent-Length: 10000000000\r\n\r\n--x"
        )
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head


def test_gcj02_output_over_http(http, layers):
    from gridgis.crs import wgs84_to_gcj02

    r = http.get("/collections/facilities/items?limit=5&crs=gcj02").json()
    f = layers["facilities"].set_index("facility_id")
    for feat in r["features"]:
        x, y = shapely.geometry.shape(feat["geometry"]).centroid.coords[0]
        c = f.geometry[feat["id"]].centroid
        gx, gy = wgs84_to_gcj02(np.array([c.x]), np.array([c.y]))
        assert abs(x - gx[0]) < 1e-7 and abs(y - gy[0]) < 1e-7
