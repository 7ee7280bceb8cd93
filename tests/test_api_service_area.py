"""GET /coverage/service-area: one facility's walkable area, from the layer or computed."""

from __future__ import annotations

import pytest
import shapely
from fastapi.testclient import TestClient

from api.app import create_app
from gridgis.standards import Settings
from gridgis.store import open_store
from gridgis.synth import make_city


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    st = open_store(tmp_path_factory.mktemp("ws") / "sa.gpkg")
    st.write_many(make_city(households=3_000, seed=5).layers)
    return st


def _one(store):
    fac = store.read("facilities")
    row = fac[fac["category"] == "kindergarten"].iloc[0]
    return str(row["facility_id"]), row.geometry


def test_computed_then_from_the_layer(store):
    fid, point = _one(store)
    with TestClient(create_app(store)) as c:
        r = c.get("/coverage/service-area", params={"category": "kindergarten", "facility_id": fid})
        assert r.status_code == 200, r.text
        f = r.json()
        assert f["type"] == "Feature" and f["properties"]["source"] == "computed"
        area = shapely.geometry.shape(f["geometry"])
        assert area.contains(point) or area.distance(point) < 1e-3
        assert f["properties"]["reach_m"] > 0
        from gridgis import workflows

        workflows.coverage(store, Settings())
    with TestClient(create_app(store)) as c:
        r2 = c.get(
            "/coverage/service-area", params={"category": "kindergarten", "facility_id": fid}
        )
        g = r2.json()
        assert g["properties"]["source"] == "layer service_areas"
        assert g["properties"]["reach_m"] == pytest.approx(f["properties"]["reach_m"], abs=0.1)
        rows = c.get("/coverage", params={"category": "kindergarten"}).json()["rows"]
        assert rows and all(r["status"] in ("ok", "no_data") for r in rows)


def test_unknown_facility_or_category(store):
    with TestClient(create_app(store)) as c:
        r = c.get("/coverage/service-area", params={"category": "kindergarten", "facility_id": "x"})
        assert r.status_code == 404
        r = c.get("/coverage/service-area", params={"category": "nope", "facility_id": "x"})
        assert r.status_code == 404
