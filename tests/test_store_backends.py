"""The store contract, run against BOTH backends: GeoPackage and PostGIS.

PostGIS runs on a real throwaway server (Debian's postgresql + postgis, started by
:mod:`gridgis.store.pgtemp`; or ``GRIDGIS_TEST_DATABASE_URL``). Each test gets a fresh
workspace (a new file, or a new schema).
"""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgis.store import SCHEMA_VERSION, StoreError, open_store
from gridgis.synth import make_city


def fresh_pg_url() -> str:
    """A new empty PostGIS workspace (schema); skips when PostgreSQL is not installed."""
    from gridgis.store.pgtemp import PostgresUnavailable, find_bindir, fresh_workspace_url

    if not os.environ.get("GRIDGIS_TEST_DATABASE_URL"):
        try:
            find_bindir()
        except PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL not installed: {exc}")
    return fresh_workspace_url()  # installed but failing to start: an error, not a skip


@pytest.fixture(params=["gpkg", "postgis"])
def store(request, tmp_path):
    if request.param == "gpkg":
        s = open_store(tmp_path / "ws.gpkg")
    else:
        s = open_store(fresh_pg_url())
    yield s
    s.close()


@pytest.fixture(scope="module")
def city():
    return make_city(households=10000)


def generic_layer() -> gpd.GeoDataFrame:
    """A layer outside the canonical schema, with every awkward dtype."""
    return gpd.GeoDataFrame(
        {
            "name": ["一", "two", None, "", "it's"],
            "n": [1, 2, 3, 4, 5],
            "n_null": pd.array([1, None, 3, None, 5], dtype="Int64"),
            "x": [0.5, np.nan, 2.5, 3.0, -1.0],
            "flag": [True, False, True, True, False],
            "tags": [["a", "b"], None, {"k": 1}, [], "plain"],
        },
        geometry=[
            shapely.Point(0, 0),
            shapely.box(1, 1, 2, 2),
            None,
            shapely.LineString([(3, 3), (4, 4)]),
            shapely.Point(5, 5),
        ],
        crs=4326,
    )


def test_round_trip_demo_city(store, city):
    store.write_many(city.layers, {"grid": {"min_households": 250}, "crs": "EPSG:4549"})
    assert sorted(store.layers()) == sorted(city.layers)
    for name, frame in city.layers.items():
        back = store.read(name)
        assert len(back) == len(frame), name
        assert list(back.columns) == list(frame.columns), name
        assert isinstance(back, gpd.GeoDataFrame) == isinstance(frame, gpd.GeoDataFrame)
        for col in frame.columns:
            if col == "geometry":
                assert back.crs.to_epsg() == 4326
                assert shapely.equals_exact(
                    back.geometry.values, frame.geometry.values, tolerance=1e-12
                ).all(), name
            else:
                pd.testing.assert_series_equal(
                    back[col], frame[col], check_names=False, obj=f"{name}.{col}"
                )
        info = store.info(name)
        assert info.rows == len(frame)
        assert info.params["grid"]["min_households"] == 250


def test_backends_return_identical_frames(tmp_path, city):
    a = open_store(tmp_path / "a.gpkg")
    b = open_store(fresh_pg_url())
    layers = dict(city.layers) | {"generic": generic_layer()}
    a.write_many(layers)
    b.write_many(layers)
    for name in city.layers:
        pd.testing.assert_frame_equal(
            pd.DataFrame(b.read(name)), pd.DataFrame(a.read(name)), obj=name
        )
    ga, gb = a.read("generic"), b.read("generic")
    assert gb["name"].tolist()[:2] == ["一", "two"] and gb["name"].iloc[4] == "it's"
    assert gb["n"].tolist() == ga["n"].tolist() == [1, 2, 3, 4, 5]
    assert gb["n_null"].isna().tolist() == ga["n_null"].isna().tolist()
    assert gb["x"].fillna(-9).tolist() == ga["x"].fillna(-9).tolist()
    assert gb["flag"].tolist() == ga["flag"].tolist()
    assert gb["tags"].tolist()[0] == ga["tags"].tolist()[0] == '["a", "b"]'
    assert gb.geometry.isna().tolist() == ga.geometry.isna().tolist()
    b.close()


def test_bbox_and_where_against_shapely(store, city):
    store.write_many(city.layers)
    b = city.layers["buildings"]
    minx, miny, maxx, maxy = b.total_bounds
    bbox = (minx, miny, (minx + maxx) / 2, (miny + maxy) / 2)
    got = store.read("buildings", bbox=bbox)
    expected = b[b.intersects(shapely.box(*bbox))]
    assert 0 < len(got) < len(b)
    assert set(got["building_id"]) == set(expected["building_id"])

    code = city.layers["communities"]["community_code"].iloc[0]
    staff = store.read("staff", where={"community_code": code})
    exp = city.layers["staff"]
    assert set(staff["staff_id"]) == set(exp.loc[exp["community_code"] == code, "staff_id"])
    fac = store.read("facilities", where={"category": "kindergarten"}, bbox=bbox)
    f = city.layers["facilities"]
    f = f[(f["category"] == "kindergarten") & f.intersects(shapely.box(*bbox))]
    assert set(fac["facility_id"]) == set(f["facility_id"])
    with pytest.raises(StoreError, match="no_such_field"):
        store.read("staff", where={"no_such_field": 1})
    with pytest.raises(StoreError, match="no layer"):
        store.read("nothing_here")


def test_read_page_pages_cover_the_filtered_layer(store, city):
    store.write_many(city.layers)
    b = city.layers["buildings"]
    minx, miny, maxx, maxy = b.total_bounds
    bbox = (minx, miny, (minx + maxx) / 2, maxy)
    full = store.read("buildings", bbox=bbox)
    ids = []
    offset = 0
    while True:
        page, matched = store.read_page("buildings", bbox=bbox, limit=7, offset=offset)
        assert matched == len(full)
        if not len(page):
            break
        assert len(page) <= 7
        ids += page["building_id"].tolist()
        offset += 7
    assert sorted(ids) == sorted(full["building_id"]) and len(set(ids)) == len(ids)
    page, matched = store.read_page("buildings", limit=5, offset=10)
    assert matched == len(b)
    assert page["building_id"].tolist() == b["building_id"].iloc[10:15].tolist()
    page, matched = store.read_page("buildings", limit=0, offset=0)
    assert len(page) == 0 and matched == len(b)
    page, matched = store.read_page("staff", where={"role": "grid_head"}, limit=3)
    assert matched == int((city.layers["staff"]["role"] == "grid_head").sum())
    assert (page["role"] == "grid_head").all() and len(page) == min(3, matched)


def test_failed_write_many_leaves_previous_layers_whole(store, city):
    store.write_many({"streets": city.layers["streets"], "roads": city.layers["roads"]}, {"run": 1})
    before = store.read("streets")
    renamed = city.layers["streets"].assign(name="CHANGED")
    poison = pd.DataFrame({"a": [1 + 2j, 3j]})  # complex numbers: neither backend stores them
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own error type
        store.write_many({"streets": renamed, "zz_poison": poison}, {"run": 2})
    pd.testing.assert_frame_equal(pd.DataFrame(store.read("streets")), pd.DataFrame(before))
    assert "zz_poison" not in store.layers()
    assert store.info("streets").params == {"run": 1}
    assert store.read("roads").shape == city.layers["roads"].shape


def test_meta_delete_and_names(store, city):
    assert store.meta().get("schema_version", SCHEMA_VERSION) == SCHEMA_VERSION
    store.write("streets", city.layers["streets"])
    store.set_meta(city="演示市", synthetic=True, settings={"a": [1, 2]})
    m = store.meta()
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["city"] == "演示市" and m["synthetic"] is True and m["settings"] == {"a": [1, 2]}
    store.delete("streets")
    assert "streets" not in store.layers()
    with pytest.raises(StoreError):
        store.delete("streets")
    with pytest.raises(StoreError):
        store.write("gridgis_meta", city.layers["streets"])
    with pytest.raises(StoreError, match="CRS"):
        store.write("x", city.layers["streets"].set_crs(None, allow_override=True))


def test_other_crs_is_stored_as_4326(store, city):
    streets = city.layers["streets"]
    store.write("streets", streets.to_crs(4549))
    back = store.read("streets")
    assert back.crs.to_epsg() == 4326
    assert np.allclose(
        shapely.get_coordinates(back.geometry.values),
        shapely.get_coordinates(streets.geometry.values),
        atol=1e-8,
    )


def test_postgis_keys_indexes_and_version(city):
    url = fresh_pg_url()
    s = open_store(url)
    s.write_many(city.layers)
    with s.engine.connect() as con:
        idx = con.exec_driver_sql(
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = %(s)s", {"s": s.schema}
        ).fetchall()
        pk = con.exec_driver_sql(
            "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints"
            " tc JOIN information_schema.key_column_usage kcu USING (constraint_schema, "
            "constraint_name) WHERE tc.constraint_type = 'PRIMARY KEY' AND "
            "tc.table_schema = %(s)s",
            {"s": s.schema},
        ).fetchall()
        con.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in con.exec_driver_sql(
                f'EXPLAIN SELECT * FROM "{s.schema}".buildings '
                "WHERE geometry && ST_MakeEnvelope(118, 31, 119, 33, 4326)"
            ).fetchall()
        )
    keys = dict(pk)
    assert keys["buildings"] == "building_id" and keys["staff"] == "staff_id"
    assert keys["gridgis_layers"] == "name"
    gist = {t for t, d in idx if "USING gist (geometry)" in d}
    assert gist == {n for n, f in city.layers.items() if isinstance(f, gpd.GeoDataFrame)}
    assert "buildings_geometry_gist" in plan
    assert s.meta()["schema_version"] == SCHEMA_VERSION
    s.close()
    with pytest.raises(StoreError, match="no such workspace"):
        from gridgis.store.postgis import PostGISStore

        PostGISStore(fresh_pg_url(), create=False)


def test_postgis_unreachable_server_is_a_store_error():
    from gridgis.store.pgtemp import free_port

    with pytest.raises(StoreError, match="cannot connect"):
        open_store(f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")


def test_read_page_geojson_matches_read_page(store, city):
    """Both backends make the serving GeoJSON themselves (SQL / SQLite + R-tree); it must
    say what read_page says."""
    import json

    store.write_many(city.layers)
    b = city.layers["buildings"]
    minx, miny, maxx, maxy = b.total_bounds
    bbox = (minx, miny, (minx + maxx) / 2, maxy)
    got = store.read_page_geojson("buildings", bbox=bbox, limit=6, offset=2, exclude=("floors",))
    rows, matched = got
    page, m2 = store.read_page("buildings", bbox=bbox, limit=6, offset=2)
    assert matched == m2 and [r[0] for r in rows] == page["building_id"].tolist()
    for (_, geom, props), (_, want) in zip(rows, page.iterrows(), strict=True):
        assert shapely.from_geojson(geom).equals_exact(want.geometry, 1e-12)
        p = json.loads(props)
        assert "floors" not in p and p["households"] == want["households"]
    rows, matched = store.read_page_geojson("staff", where={"role": "community_worker"}, limit=3)
    assert all(g is None for _, g, _ in rows) and matched > 0
    cov = pd.DataFrame({"level": ["grid", "street"], "rate": [0.5, np.nan]})
    store.write("cov", cov)
    rows, _ = store.read_page_geojson("cov", limit=5)
    assert [r[0] for r in rows] == [1, 2]  # keyless layer: row numbers
    assert json.loads(rows[1][2]) == {"level": "street", "rate": None}
    rows, matched = store.read_page_geojson("cov", where={"level": "street"})
    assert matched == 1 and rows[0][0] == 2  # the stored row's number, not the position
    rows, matched = store.read_page_geojson("buildings", limit=3, offset=10**6)
    assert rows == [] and matched == len(b)
    g = generic_layer()
    store.write("generic", g)
    rows, _ = store.read_page_geojson("generic", limit=10)
    props = [json.loads(r[2]) for r in rows]
    assert [p["flag"] for p in props] == g["flag"].tolist()  # booleans stay booleans
    assert [p["n_null"] for p in props] == [1, None, 3, None, 5]
    assert rows[2][1] is None  # no geometry


def test_postgis_reader_sees_a_layer_rewritten_by_another_process():
    """Column lists are cached per store: a table replaced with other columns by another
    writer is still read right."""
    url = fresh_pg_url()
    reader, writer = open_store(url), open_store(url)
    writer.write("t", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert reader.read("t")["b"].tolist() == ["x", "y"]
    writer.write("t", pd.DataFrame({"c": [3.5]}))
    assert reader.read("t")["c"].tolist() == [3.5]
    assert reader.read_page_geojson("t")[0][0][2] == '{"c":3.5}'
    reader.close()
    writer.close()


def test_empty_layers_and_tables_keep_their_kind(store):
    from gridgis.layers import empty_layer

    store.write_many({"buildings": empty_layer("buildings"), "staff": empty_layer("staff")})
    b = store.read("buildings")
    assert isinstance(b, gpd.GeoDataFrame) and len(b) == 0 and b.crs.to_epsg() == 4326
    assert list(b.columns) == [*empty_layer("buildings").columns]
    s = store.read("staff")
    assert not isinstance(s, gpd.GeoDataFrame) and list(s.columns) == list(
        empty_layer("staff").columns
    )
    page, matched = store.read_page("buildings", limit=5)
    assert len(page) == 0 and matched == 0


def test_numpy_parameters_and_metadata_stay_numbers(store):
    """Parameters computed with numpy (households sums, thresholds) come back as JSON
    numbers on both backends, not as their text."""
    import numpy as np

    store.write(
        "extra",
        generic_layer(),
        params={
            "households": np.int64(30_000),
            "share": np.float64(0.9),
            "radii": np.array([300, 500]),
        },
    )
    params = store.info("extra").params
    assert params == {"households": 30_000, "share": 0.9, "radii": [300, 500]}
    assert isinstance(params["households"], int)
    store.set_meta(total=np.int64(7), flags=(np.bool_(True),))
    meta = store.meta()
    assert meta["total"] == 7 and isinstance(meta["total"], int)
    assert meta["flags"] == [True]
