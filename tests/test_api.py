"""The HTTP API through FastAPI's test client, on the demo city (GeoPackage workspace with
grids, assignment and coverage): answers checked against the layers themselves."""

from __future__ import annotations

import io
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from api.app import create_app
from api.demo import demo_layers, fill_demo
from gridgis.crs import wgs84_to_gcj02
from gridgis.store import open_store

TOKEN = "test-token-5f2c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def layers():
    return demo_layers(households=10_000)


@pytest.fixture(scope="module")
def maps_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("maps")
    (d / "index.html").write_text("<html>index 网格</html>", encoding="utf-8")
    (d / "streets").mkdir()
    (d / "streets" / "320199001.html").write_text("<html>street</html>")
    (d.parent / "secret.txt").write_text("do not serve")
    return d


@pytest.fixture(scope="module")
def client(tmp_path_factory, layers, maps_dir):
    store = open_store(tmp_path_factory.mktemp("ws") / "demo.gpkg")
    fill_demo(store, layers)
    with TestClient(create_app(store, maps_dir=maps_dir, token=TOKEN)) as c:
        yield c


def test_landing_conformance_collections(client, layers):
    links = {ln["rel"] for ln in client.get("/").json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= links
    conf = client.get("/conformance").json()["conformsTo"]
    assert any(c.endswith("conf/core") for c in conf)
    cols = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    assert set(cols) == set(layers)
    assert cols["grids"]["rows"] == len(layers["grids"])
    assert cols["grids"]["key"] == "grid_code"
    ext = cols["buildings"]["extent"]["spatial"]["bbox"][0]
    assert np.allclose(ext, layers["buildings"].total_bounds)
    assert client.get("/collections/grids").json()["id"] == "grids"
    assert client.get("/collections/nope").status_code == 404


def test_items_paging_with_next_links_returns_every_grid_once(client, layers):
    url = "/collections/grids/items?limit=7"
    seen = []
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/geo+json")
        body = r.json()
        assert body["numberMatched"] == len(layers["grids"])
        assert body["numberReturned"] == len(body["features"]) <= 7
        seen += [f["id"] for f in body["features"]]
        nxt = [ln["href"] for ln in body["links"] if ln["rel"] == "next"]
        url = nxt[0].replace("http://testserver", "") if nxt else None
        pages += 1
    assert sorted(seen) == sorted(layers["grids"]["grid_code"])
    assert pages == -(-len(layers["grids"]) // 7)
    last = client.get("/collections/grids/items?limit=7&offset=7").json()
    assert [ln for ln in last["links"] if ln["rel"] == "prev"]


def test_items_bbox_and_filters_match_the_layers(client, layers):
    b = layers["buildings"]
    minx, miny, maxx, maxy = b.total_bounds
    box = (minx, miny, (minx + maxx) / 2, (miny + maxy) / 2)
    r = client.get(
        "/collections/buildings/items", params={"bbox": ",".join(map(str, box)), "limit": 10000}
    ).json()
    want = set(b.loc[b.intersects(shapely.box(*box)), "building_id"])
    assert {f["id"] for f in r["features"]} == want and r["numberMatched"] == len(want)

    code = layers["communities"]["community_code"].iloc[1]
    r = client.get(
        "/collections/grids/items", params={"community_code": code, "limit": 1000}
    ).json()
    g = layers["grids"]
    assert {f["id"] for f in r["features"]} == set(g.loc[g["community_code"] == code, "grid_code"])
    f = layers["facilities"]
    r = client.get("/collections/facilities/items?category=kindergarten&limit=1000").json()
    assert r["numberMatched"] == int((f["category"] == "kindergarten").sum()) > 0
    assert all(x["properties"]["category"] == "kindergarten" for x in r["features"])


def test_items_output_crs(client, layers):
    g = layers["grids"]
    first = g.geometry.iloc[0]
    xy = shapely.get_coordinates(first)
    r = client.get("/collections/grids/items?limit=1&crs=gcj02")
    assert r.headers["content-crs"] == "<https://gridgis.dev/def/crs/GCJ-02>"
    got = np.array(r.json()["features"][0]["geometry"]["coordinates"][0])
    gx, gy = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
    assert np.allclose(got, np.column_stack([gx, gy]), atol=1e-9)
    assert np.abs(got - xy).max() > 1e-4  # hundreds of metres, not a no-op
    r = client.get(
        "/collections/grids/items",
        params={"limit": 1, "crs": "http://www.opengis.net/def/crs/EPSG/0/4490"},
    )
    got = np.array(r.json()["features"][0]["geometry"]["coordinates"][0])
    assert np.allclose(got, xy[:, ::-1])  # EPSG:4490 is latitude first
    r = client.get("/collections/grids/items?limit=1").json()
    assert np.allclose(np.array(r["features"][0]["geometry"]["coordinates"][0]), xy)


def test_items_bad_input_names_the_field(client):
    cases = {
        "/collections/grids/items?bbox=1,2,3": "bbox",
        "/collections/grids/items?bbox=a,b,c,d": "bbox",
        "/collections/grids/items?limit=10001": "limit",
        "/collections/grids/items?limit=0": "limit",
        "/collections/grids/items?offset=-1": "offset",
        "/collections/grids/items?crs=EPSG:3857": "crs",
        "/collections/grids/items?no_such_field=1": "no_such_field",
        "/lookup/point?lon=200&lat=30": "lon",
        "/lookup/point?lon=118&lat=x": "lat",
        "/lookup/point?lon=118&lat=32&crs=mars": "crs",
        "/grids/12345": "grid_code",
        "/coverage?level=planet": "level",
    }
    for url, field in cases.items():
        r = client.get(url)
        assert r.status_code == 422, url
        assert field in r.json()["detail"], (url, r.json())
    assert client.get("/collections/nope/items").status_code == 404
    assert client.get("/collections/grids/items/999999999999999").status_code == 404
    assert client.get("/grids/999999999999999").status_code == 404


def test_item_by_key_and_by_row_number(client, layers):
    code = layers["grids"]["grid_code"].iloc[3]
    f = client.get(f"/collections/grids/items/{code}").json()
    assert f["id"] == code and f["properties"]["grid_code"] == code
    # keyless layer: ids are row numbers
    r = client.get("/collections/coverage/items?limit=2&offset=5").json()
    assert [x["id"] for x in r["features"]] == [6, 7]
    one = client.get("/collections/coverage/items/6").json()
    assert one["properties"] == r["features"][0]["properties"]
    assert client.get("/collections/coverage/items/abc").status_code == 404


def test_personal_fields_only_with_the_token(client, layers):
    staff = layers["staff"]
    r = client.get("/collections/staff/items?limit=1000").json()
    assert r["numberMatched"] == len(staff)
    assert all("phone" not in f["properties"] for f in r["features"])
    r = client.get("/collections/staff/items?limit=1000", headers=AUTH).json()
    phones = {f["id"]: f["properties"]["phone"] for f in r["features"]}
    assert phones == dict(zip(staff["staff_id"], staff["phone"], strict=True))
    assert client.get("/collections/staff/items?phone=1").status_code == 422
    bad = {"Authorization": "Bearer wrong"}
    r = client.get("/collections/staff/items?limit=5", headers=bad).json()
    assert all("phone" not in f["properties"] for f in r["features"])


def test_lookup_point_against_the_grid_polygons(client, layers):
    g = layers["grids"]
    res = g[g["kind"] == "residential"]
    pt = res.geometry.iloc[2].representative_point()
    r = client.get(f"/lookup/point?lon={pt.x}&lat={pt.y}").json()
    assert r["grid"]["grid_code"] == res["grid_code"].iloc[2]
    assert r["community"]["code"] == res["community_code"].iloc[2]
    assert all("phone" not in p for p in r["people"])
    gx, gy = wgs84_to_gcj02(np.array([pt.x]), np.array([pt.y]))
    r2 = client.get(f"/lookup/point?lon={gx[0]}&lat={gy[0]}&crs=gcj02").json()
    assert r2["grid"]["grid_code"] == r["grid"]["grid_code"]
    far = client.get("/lookup/point?lon=100&lat=20").json()
    assert far["match_level"] == "none" and far["grid"] is None


def test_lookup_address(client, layers):
    a = layers["addresses"]
    a = a[~a["text"].duplicated(keep=False)].iloc[10]  # an address found in one place
    r = client.get("/lookup/address", params={"q": a["text"]}).json()
    assert r["confident"] and r["address_id"] == a["address_id"]
    assert r["grid"]["grid_code"] == a["grid_code"]
    assert client.get("/lookup/address?q=").status_code == 422


def test_grid_page_statistics_buildings_staff_coverage(client, layers):
    g = layers["grids"]
    row = g[g["kind"] == "residential"].iloc[0]
    code = row["grid_code"]
    r = client.get(f"/grids/{code}").json()
    b = layers["buildings"]
    mine = b[b["grid_code"] == code]
    assert {x["building_id"] for x in r["buildings"]} == set(mine["building_id"])
    assert r["statistics"]["households"] == int(mine["households"].sum())
    assert shapely.geometry.shape(r["geometry"]).equals_exact(row.geometry, 1e-9)
    s = layers["staff"]
    assert {x["staff_id"] for x in r["staff"]} == set(s.loc[s["grid_code"] == code, "staff_id"])
    assert all("phone" not in x for x in r["staff"])
    cov = layers["coverage"]
    want = cov[(cov["level"] == "grid") & (cov["code"] == code)]
    assert len(r["coverage"]) == len(want) > 0
    assert {x["category"] for x in r["coverage"]} == set(want["category"])
    c = client.get(f"/coverage?level=grid&code={code}").json()["rows"]
    assert len(c) == len(want)
    c = client.get("/coverage?level=street").json()["rows"]
    assert len(c) == int((cov["level"] == "street").sum())


def test_maps_are_served_safely(client):
    assert "网格" in client.get("/maps/").text
    assert client.get("/maps/streets/320199001.html").text == "<html>street</html>"
    assert client.get("/maps/../secret.txt").status_code == 404
    assert client.get("/maps/%2e%2e/secret.txt").status_code == 404
    assert client.get("/maps/nope.html").status_code == 404


def test_health(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["backend"] == "geopackage" and h["writes_enabled"]


def test_writes_need_the_token(client):
    for path in ("/jobs/assign", "/jobs/coverage", "/jobs/delineate"):
        assert client.post(path).status_code == 401
        assert client.post(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    r = client.post(
        "/grids/320199001001001/staff",
        json={"staff": [{"staff_id": "X1", "name": "王", "role": "grid_worker"}]},
    )
    assert r.status_code == 401
    assert client.post("/upload", files={"files": ("a.csv", b"x")}).status_code == 401


def test_assign_staff_then_lookup_shows_them(client, layers):
    g = layers["grids"]
    row = g[g["kind"] == "residential"].iloc[1]
    code = row["grid_code"]
    body = {
        "staff": [
            {"staff_id": "NEW1", "name": "陈晓明", "role": "grid_head", "phone": "13800000000"},
            {"staff_id": "NEW2", "name": "李红", "role": "网格员"},
        ]
    }
    r = client.post(f"/grids/{code}/staff", json=body, headers=AUTH)
    assert r.status_code == 422 and "role" in r.json()["detail"]
    body["staff"][1]["role"] = "grid_worker"
    r = client.post(f"/grids/{code}/staff", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["layers"]["staff"] == len(layers["staff"]) + 2
    grid = client.get(f"/grids/{code}").json()
    assert {"NEW1", "NEW2"} <= {x["staff_id"] for x in grid["staff"]}
    assert "陈晓明" in grid["statistics"]["grid_head"]  # derived columns refreshed
    assert "李红" in grid["statistics"]["grid_workers"]
    pt = row.geometry.representative_point()
    r = client.get(f"/lookup/point?lon={pt.x}&lat={pt.y}", headers=AUTH).json()
    people = {p["name"]: p for p in r["people"]}
    assert people["陈晓明"]["phone"] == "13800000000" and people["陈晓明"]["role"] == "grid_head"
    r = client.post("/grids/999999999999999/staff", json=body, headers=AUTH)
    assert r.status_code == 404
    r = client.post(f"/grids/{code}/staff", json={"staff": [{"staff_id": "x"}]}, headers=AUTH)
    assert r.status_code == 422 and "name" in r.json()["detail"]


def test_upload_geojson_layer(client, layers):
    f = layers["facilities"].iloc[:5].copy()
    f["facility_id"] = [f"UP{i}" for i in range(5)]
    data = (
        gpd.GeoDataFrame(f[["facility_id", "name", "category", "geometry"]], crs=4326)
        .to_json()
        .encode()
    )

    def upload(mode=None, payload=data):
        form = {"layer": "facilities", **({"mode": mode} if mode else {})}
        return client.post(
            "/upload",
            headers=AUTH,
            data=form,
            files={"files": ("设施.geojson", payload, "application/geo+json")},
        )

    held = len(layers["facilities"])
    r = upload()  # the layer holds rows: the mode must be said (issue 12), nothing written
    assert r.status_code == 409 and "mode" in r.json()["detail"], r.text
    assert client.get("/collections/facilities").json()["rows"] == held
    r = upload("append")
    assert r.status_code == 200, r.text
    assert r.json()["layers"]["facilities"] == held + 5
    assert r.json()["import"]["layers"]["facilities"]["added"] == 5
    r = upload("append")  # the same keys again: all rejected, nothing written
    assert r.status_code == 422, r.text
    assert client.get("/collections/facilities").json()["rows"] == held + 5
    r = upload("replace")
    assert r.status_code == 200, r.text
    assert r.json()["layers"]["facilities"] == 5
    got = client.get("/collections/facilities/items?limit=100").json()
    assert sorted(x["id"] for x in got["features"]) == sorted(f["facility_id"])
    r = client.post(
        "/upload", headers=AUTH, data={"layer": "nonsense"}, files={"files": ("a.geojson", data)}
    )
    assert r.status_code == 422 and "layer" in r.json()["detail"]
    r = client.post("/upload", headers=AUTH, files={"files": ("a.geojson", b"{not json")})
    assert r.status_code == 422 and "files" in r.json()["detail"]
    # restore the layer for the tests that follow
    fill_demo(client.app.state.ctx.store, {"facilities": layers["facilities"]})
    client.app.state.ctx.changed()


def test_body_over_the_limit_is_413(tmp_path, layers):
    store = open_store(tmp_path / "small.gpkg")
    store.write("streets", layers["streets"])
    app = create_app(store, token=TOKEN, max_body_bytes=1000)
    with TestClient(app) as c:
        r = c.post("/upload", headers=AUTH, files={"files": ("big.csv", b"x" * 5000)})
        assert r.status_code == 413
        r = c.post(
            "/grids/320199001001001/staff",
            headers=AUTH,
            content=io.BytesIO(json.dumps({"staff": []}).encode() + b" " * 2000),
        )
        assert r.status_code == 413


def test_writes_refused_without_a_configured_token(tmp_path, layers, monkeypatch):
    monkeypatch.delenv("GRIDGIS_API_TOKEN", raising=False)
    store = open_store(tmp_path / "w.gpkg")
    store.write("streets", layers["streets"])
    with TestClient(create_app(store)) as c:
        r = c.post("/jobs/assign", headers={"Authorization": "Bearer "})
        assert r.status_code == 401 and "disabled" in r.json()["detail"]
        assert not c.get("/health").json()["writes_enabled"]
        assert pd.DataFrame(store.read("streets")).shape[0] == len(layers["streets"])


def test_concurrent_point_answers_equal_batch_path(client, layers):
    """Concurrent /lookup/point requests each get the answer of the batch path
    (Lookup.points with its chain) for that point alone, with and without the token."""
    import asyncio

    import httpx

    from gridgis.lookup import Lookup

    app = client.app
    lk = Lookup.from_store(app.state.ctx.store)  # what is served now (earlier tests write)
    minx, miny, maxx, maxy = layers["grids"].total_bounds
    rng = np.random.default_rng(3)
    pts = list(
        zip(
            rng.uniform(minx - 0.002, maxx + 0.002, 60),
            rng.uniform(miny - 0.002, maxy + 0.002, 60),
            strict=True,
        )
    )
    pts += [(p.x, p.y) for p in layers["buildings"].geometry.representative_point()[:20]]

    async def many(crs: str, personal: bool):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://t",
            headers=AUTH if personal else {},
        ) as c:
            rs = await asyncio.gather(
                *[
                    c.get(
                        "/lookup/point",
                        params={"lon": repr(float(x)), "lat": repr(float(y)), "crs": crs},
                    )
                    for x, y in pts
                ]
            )
        return [r.json() for r in rs]

    levels = set()
    for crs in ("wgs84", "gcj02"):
        for personal in (False, True):
            got = asyncio.run(many(crs, personal))
            want = [lk.point_from_points(x, y, crs, include_personal=personal) for x, y in pts]
            assert got == want
            levels |= {a["match_level"] for a in got}
    assert {"building", "grid", "none"} <= levels


def test_point_fast_lane_equals_the_route(client, layers):
    """The ASGI fast lane for GET /lookup/point (which calls AppContext.point_answer, as
    the route does) answers byte for byte as the FastAPI route for the same values and
    token (number spellings, CRS, Authorization header variants), and leaves malformed
    requests to FastAPI's validation."""
    import asyncio

    from starlette.requests import Request

    from api.deps import authorised
    from api.middleware import PointFastLane
    from api.routers.lookup import point as route

    ctx = client.app.state.ctx
    row = layers["grids"].iloc[3]
    body = {
        "staff": [
            {"staff_id": "FAST1", "name": "周快", "role": "grid_head", "phone": "13900000001"}
        ]
    }
    assert (
        client.post(f"/grids/{row['grid_code']}/staff", json=body, headers=AUTH).status_code == 200
    )
    p = row.geometry.representative_point()
    x, y = f"{p.x:.6f}", f"{p.y:.6f}"
    client.get(f"/lookup/point?lon={x}&lat={y}")  # the lookup is built
    assert ctx.lookup_ready() is not None

    async def fell_through(scope, receive, send):
        raise AssertionError("the fast lane left a well-formed request to the route")

    lane = PointFastLane(fell_through, ctx)

    def lane_body(query: str, headers: list) -> bytes:
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/lookup/point",
            "query_string": query.encode(),
            "headers": headers,
        }
        asyncio.run(lane(scope, None, send))
        assert sent[0]["status"] == 200
        return sent[1]["body"]

    headers_cases = [
        {},
        AUTH,
        {"Authorization": f"bearer  {TOKEN} "},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Bearer"},
    ]
    queries = [
        f"lon={x}&lat={y}",
        f"lat={y}&lon=%2B{x}&crs=gcj02",
        f"lon={x}&lat={y}&crs=bd09",
        f"lon={float(x) * 10:.6f}e-1&lat={y}&crs=EPSG:4490&other=1",
        "lon=100.&lat=20",
    ]
    taken = 0
    for q in queries:
        args = PointFastLane.args(q.encode())
        assert args is not None, q
        for h in headers_cases:
            raw = [(k.lower().encode(), v.encode()) for k, v in h.items()]
            got = client.get(f"/lookup/point?{q}", headers=h)
            req = Request({"type": "http", "headers": raw})
            auth = asyncio.run(authorised(req, ctx))
            want = asyncio.run(route(ctx, auth, *args))
            assert got.status_code == 200 and got.content == want.body, (q, h)
            assert lane_body(q, raw) == want.body, (q, h)
            assert got.headers["content-type"] == "application/json"
            taken += 1
    assert taken == len(queries) * len(headers_cases)
    people = client.get(f"/lookup/point?{queries[0]}", headers=AUTH).json()["people"]
    assert {
        "name": "周快",
        "role": "grid_head",
        "role_zh": "网格长",
        "phone": "13900000001",
    } in people
    # left to FastAPI: its validation errors, and the last of repeated values
    for q in [
        "lon=1e400&lat=30",
        "lon=nan&lat=30",
        f"lon=1&lon={x}&lat={y}x",
        f"lon={x}&lat={y}&crs=WGS84",
    ]:
        assert PointFastLane.args(q.encode()) is None
        assert client.get(f"/lookup/point?{q}").status_code == 422, q
    assert (
        client.get(f"/lookup/point?lon=1&lon={x}&lat={y}").json()
        == client.get(f"/lookup/point?lon={x}&lat={y}").json()
    )


def test_items_from_a_store_without_native_geojson(tmp_path, layers, client):
    """Stores that cannot make GeoJSON themselves are served from read_page frames: same
    features, ids and coordinates as the native path."""
    from gridgis.store import GeoPackageStore, Store

    class FramesOnly(GeoPackageStore):
        read_page_geojson = Store.read_page_geojson  # the base: None

    store = FramesOnly(tmp_path / "plain.gpkg")
    served = client.app.state.ctx.store  # as earlier tests left it (uploads refresh grids)
    store.write_many({k: served.read(k) for k in ("grids", "staff", "communities")})
    with TestClient(create_app(store, token=TOKEN)) as plain:
        for url in (
            "/collections/grids/items?limit=5&offset=3",
            "/collections/grids/items?limit=3&crs=gcj02",
            "/collections/staff/items?limit=4",
            "/collections/grids/items/" + layers["grids"]["grid_code"].iloc[2],
        ):
            a, b = plain.get(url).json(), client.get(url).json()
            fa = a.get("features", [a])
            fb = b.get("features", [b])
            assert [f["id"] for f in fa] == [f["id"] for f in fb], url
            for x, y in zip(fa, fb, strict=True):
                assert x["properties"] == y["properties"], url
                if x["geometry"]:
                    assert shapely.geometry.shape(x["geometry"]).equals_exact(
                        shapely.geometry.shape(y["geometry"]), 1e-9
                    ), url


def test_upload_zipped_shapefile(tmp_path, layers):
    """A planner's usual file: a shapefile (GBK attributes) zipped with its sidecars."""
    import zipfile

    import pyogrio

    b = layers["buildings"][
        ["building_id", "name", "households", "floors", "use", "geometry"]
    ].iloc[:25]
    shp = tmp_path / "楼栋.shp"
    pyogrio.write_dataframe(
        b.rename(columns={"building_id": "BLDG_ID"}), shp, encoding="gbk"
    )  # shapefile field names: 10 characters
    zpath = tmp_path / "楼栋.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for part in tmp_path.glob("楼栋.*"):
            if part.suffix != ".zip":
                zf.write(part, part.name)
    store = open_store(tmp_path / "up.gpkg")
    store.write("streets", layers["streets"])
    with TestClient(create_app(store, token=TOKEN)) as c:
        r = c.post(
            "/upload",
            headers=AUTH,
            data={"layer": "buildings", "field_map": "building_id=BLDG_ID"},
            files={"files": ("楼栋.zip", zpath.read_bytes(), "application/zip")},
        )
        assert r.status_code == 200, r.text
        assert r.json()["layers"]["buildings"] == 25
        got = c.get("/collections/buildings/items?limit=100").json()
        assert {f["id"] for f in got["features"]} == set(b["building_id"])
        names = {f["id"]: f["properties"]["name"] for f in got["features"]}
        assert names == dict(
            zip(b["building_id"], b["name"].where(b["name"].notna(), None), strict=True)
        )
        r = c.post(
            "/upload", headers=AUTH, files={"files": ("x.zip", b"not a zip", "application/zip")}
        )
        assert r.status_code == 422 and "files" in r.json()["detail"]


def test_delineate_job_writes_what_the_cli_writes(tmp_path, layers):
    """POST /jobs/delineate on a fresh city: grids that tile the communities with every
    residential grid within the household bounds, and buildings carrying their grid."""
    from gridgis.standards import DEFAULT
    from gridgis.synth import make_city

    city = make_city(households=10_000)
    store = open_store(tmp_path / "job.gpkg")
    store.write_many(city.layers)
    with TestClient(create_app(store, token=TOKEN)) as c:
        assert c.post("/jobs/delineate").status_code == 401
        r = c.post("/jobs/delineate", headers=AUTH)
        assert r.status_code == 200, r.text
        assert {"grids", "buildings", "staff", "delineation_findings", "code_registry"} <= set(
            r.json()["layers"]
        )
    g = store.read("grids")
    b = store.read("buildings")
    res = g[g["kind"] == "residential"]
    lo, hi = DEFAULT.grid.min_households, DEFAULT.grid.max_households
    ok = res["households"].between(lo, hi) | (res["flags"].fillna("") != "")
    assert ok.all() and res["households"].between(lo, hi).mean() > 0.9  # else flagged
    assert b["grid_code"].notna().all() and set(b["grid_code"]) <= set(g["grid_code"])
    hh = b.groupby("grid_code")["households"].sum()
    assert (g.set_index("grid_code")["households"].reindex(hh.index) == hh).all()
    comm = city.layers["communities"].to_crs(4549).union_all().area
    assert abs(g.to_crs(4549).union_all().area - comm) / comm < 1e-3
