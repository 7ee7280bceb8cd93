"""Grids over time through the API: GET /grids/{code}/history and ?as_of= on the lookups
answer as the workflows do (gridgis.workflows.versions), the point fast lane included."""

from __future__ import annotations

import shapely
from fastapi.testclient import TestClient

from api.app import create_app
from gridgis import workflows
from gridgis.standards import DEFAULT
from gridgis.store import GeoPackageStore

BEFORE = "2025-02-15"
AFTER = "2025-03-02"


def _merged_workspace(city_workspace, demo_delineated_gpkg):
    """The delineated demo with its grids dated BEFORE, then two neighbours merged by
    hand and refreshed as of AFTER (the merge closes a version and opens one)."""
    path = city_workspace(demo_delineated_gpkg)
    store = GeoPackageStore(path)
    workflows.refresh(store, DEFAULT, effective=BEFORE)  # no change: nothing new
    g = store.read("grids")
    versions = store.read("grid_versions")
    versions["valid_from"] = BEFORE  # the delineation took effect before the case
    store.write("grid_versions", versions)
    g["valid_from"] = BEFORE
    a, b = _neighbours(g)
    merged = g.copy()
    merged.loc[merged.index[a], "geometry"] = shapely.union(g.geometry.iloc[a], g.geometry.iloc[b])
    merged = merged.drop(index=merged.index[b]).reset_index(drop=True)
    store.write("grids", merged)
    workflows.refresh(store, DEFAULT, effective=AFTER, reason="两格合并")
    now = set(store.read("grids")["grid_code"].astype(str))
    gone = next(i for i in (b, a) if str(g["grid_code"].iloc[i]) not in now)  # retired
    return store, str(g["grid_code"].iloc[gone]), g.geometry.iloc[gone].representative_point()


def _neighbours(g):
    for i in range(len(g)):
        for j in range(i + 1, len(g)):
            same = g["community_code"].iloc[i] == g["community_code"].iloc[j]
            touch = g.geometry.iloc[i].intersection(g.geometry.iloc[j]).length > 0
            if same and touch:
                return i, j
    raise AssertionError("no two neighbouring grids")


def test_history_and_as_of_through_the_api(city_workspace, demo_delineated_gpkg):
    store, gone, point = _merged_workspace(city_workspace, demo_delineated_gpkg)
    client = TestClient(create_app(store, DEFAULT, token="t"))

    hist = client.get(f"/grids/{gone}/history")
    assert hist.status_code == 200, hist.text
    body = hist.json()
    expected = workflows.versions.history(store.read("grid_versions"), gone)
    assert body["grid_code"] == gone and len(body["versions"]) == len(expected)
    first = body["versions"][0]
    assert first["valid_from"] == BEFORE and first["geometry"]["type"] == "Polygon"
    assert body["versions"][-1]["valid_to"] == AFTER  # the merge retired it

    old = client.get("/lookup/point", params={"lon": point.x, "lat": point.y, "as_of": BEFORE})
    new = client.get("/lookup/point", params={"lon": point.x, "lat": point.y, "as_of": AFTER})
    today = client.get("/lookup/point", params={"lon": point.x, "lat": point.y})
    assert old.status_code == new.status_code == today.status_code == 200
    assert old.json()["grid"]["grid_code"] == gone
    want = workflows.lookup_as_of(store, DEFAULT, AFTER).point(point.x, point.y)
    assert new.json()["grid"]["grid_code"] == want["grid"]["grid_code"] != gone
    assert today.json()["grid"]["grid_code"] == want["grid"]["grid_code"]

    assert client.get("/grids/999999999999999/history").status_code == 404
    for bad in ("x", "0", "2025-02-30"):
        r = client.get("/lookup/point", params={"lon": 1, "lat": 1, "as_of": bad})
        assert r.status_code == 422, bad


def test_as_of_without_dated_grids_is_404(city_workspace, demo_city_gpkg):
    store = GeoPackageStore(city_workspace(demo_city_gpkg))
    client = TestClient(create_app(store, DEFAULT))
    r = client.get("/lookup/point", params={"lon": 118.78, "lat": 32.05, "as_of": "2025-01-01"})
    assert r.status_code == 404 and "grid_versions" in r.json()["detail"]
