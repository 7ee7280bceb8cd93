"""One filter semantics on both stores (issue 11 point 5, issue 18 point 4), the store's
read-modify-write primitive under concurrent writers (issue 12 point 4), its change
token, and GeoPackage reads during writes (issue 18 point 3).

Both backends run for real: a GeoPackage file and a throwaway PostGIS server
(:mod:`gridgis.store.pgtemp`)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import threading
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgis.store import NO_MATCH, NoFieldError, NoLayerError, filter_value, open_store


def fresh_pg_url() -> str:
    from gridgis.store.pgtemp import PostgresUnavailable, find_bindir, fresh_workspace_url

    if not os.environ.get("GRIDGIS_TEST_DATABASE_URL"):
        try:
            find_bindir()
        except PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL not installed: {exc}")
    return fresh_workspace_url()


def probe_layer() -> gpd.GeoDataFrame:
    """Every field type a filter meets: text, nullable int, float, nullable bool, codes
    written as digit strings (leading zeros kept)."""
    return gpd.GeoDataFrame(
        {
            "pid": ["a", "b", "c", "d", "e"],
            "name": ["一", "two", None, "", "it's"],
            "n": pd.array([1, 2, 3, None, 5], dtype="Int64"),
            "x": [0.5, np.nan, 2.5, 3.0, -1.0],
            "flag": pd.array([True, False, True, None, False], dtype="boolean"),
            "code": ["001", "320102001001", "1", "0", "001"],
        },
        geometry=[shapely.Point(i, i) for i in range(5)],
        crs=4326,
    )


#: (field, query value, ids expected) — worked out by hand from probe_layer().
CASES = [
    ("flag", "true", "ac"),
    ("flag", "TRUE", "ac"),
    ("flag", "1", "ac"),
    ("flag", "yes", "ac"),
    ("flag", "是", "ac"),
    ("flag", True, "ac"),
    ("flag", "false", "be"),
    ("flag", "0", "be"),
    ("flag", "否", "be"),
    ("flag", "maybe", ""),
    ("flag", "tr\x00ue", ""),
    ("n", "2", "b"),
    ("n", "2.0", "b"),
    ("n", " 2 ", "b"),
    ("n", "2e0", "b"),
    ("n", 3, "c"),
    ("n", "2.5", ""),
    ("n", "two", ""),
    ("n", "inf", ""),
    ("n", "nan", ""),
    ("n", "1e30", ""),
    ("n", "9.3e18", ""),
    ("n", "2\x00", ""),
    ("x", "0.5", "a"),
    ("x", "3", "d"),
    ("x", "-1", "e"),
    ("x", "nan", ""),
    ("x", "-inf", ""),
    ("code", "001", "ae"),
    ("code", "1", "c"),
    ("code", "0", "d"),
    ("code", "320102001001", "b"),
    ("code", "3.20102001001e11", ""),
    ("name", "it's", "e"),
    ("name", "一", "a"),
    ("name", "", "d"),
    ("name", "tw\x00o", ""),
    ("name", "' OR 1=1 --", ""),
    ("name", None, "c"),
    ("n", None, "d"),
    ("flag", None, "d"),
]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The probe layer in a GeoPackage, in GeoParquet and in PostGIS."""
    folder = tmp_path_factory.mktemp("f")
    gpkg = open_store(folder / "f.gpkg")
    parquet = open_store(folder / "f.parquet")
    pg = open_store(fresh_pg_url())
    for s in (gpkg, parquet, pg):
        s.write("probe", probe_layer())
    yield {"gpkg": gpkg, "parquet": parquet, "postgis": pg}
    pg.close()
    gpkg.close()


def _ids(store, field, value) -> dict[str, str]:
    where = {field: value}
    full = "".join(store.read("probe", where=where)["pid"])
    page, matched = store.read_page("probe", where=where, limit=3)
    assert matched == len(full)
    geo, gmatched = store.read_page_geojson("probe", where=where, limit=10)
    assert gmatched == len(full)
    geo_ids = "".join(sorted(json.loads(p)["pid"] for _, _, p in geo))
    boxed = "".join(store.read("probe", bbox=(-1, -1, 10, 10), where=where)["pid"])
    return {"read": full, "page": "".join(page["pid"]), "geojson": geo_ids, "bbox": boxed}


@pytest.mark.parametrize(("field", "value", "want"), CASES)
def test_same_rows_on_both_stores(both, field, value, want):
    for name, store in both.items():
        got = _ids(store, field, value)
        assert got == {"read": want, "page": want[:3], "geojson": want, "bbox": want}, (
            name,
            field,
            value,
        )


def test_unknown_field_and_layer_are_typed_errors(both):
    for store in both.values():
        with pytest.raises(NoFieldError, match="nope"):
            store.read_page_geojson("probe", where={"nope": "1"})
        with pytest.raises(NoFieldError):
            store.read("probe", where={"na\x00me": "1"})
        with pytest.raises(NoLayerError):
            store.read_page_geojson("absent")
        assert NoFieldError.http_status == 422 and NoLayerError.http_status == 404


def test_filter_value_rules():
    assert filter_value("yes", "bool") is True and filter_value("否", "bool") is False
    assert filter_value("x", "bool") is NO_MATCH
    assert filter_value("7.0", "int") == 7 and filter_value("7.5", "int") is NO_MATCH
    assert filter_value(str(2**63), "int") is NO_MATCH
    assert filter_value("1e30", "float") == 1e30 and filter_value("inf", "float") is NO_MATCH
    assert filter_value(0.1, "text") == "0.1" and filter_value("a\x00", "text") is NO_MATCH
    assert filter_value(None, "int") is None


def test_covered_filter_same_on_both_stores(tmp_path):
    """The reported case: ``covered=true`` on the access layer (GeoPackage answered 0
    rows, PostGIS all covered ones)."""
    from api.demo import demo_layers

    access = demo_layers(households=3000)["access"]
    want = int(access["covered"].sum())
    assert 0 < want < len(access)
    for store in (open_store(tmp_path / "a.gpkg"), open_store(fresh_pg_url())):
        store.write("access", access)
        for text in ("true", "1", "是"):
            _, matched = store.read_page("access", where={"covered": text})
            assert matched == want, (store.location, text)
            assert store.read_page_geojson("access", where={"covered": text})[1] == want
        _, matched = store.read_page("access", where={"covered": "false"})
        assert matched == len(access) - want
        store.close()


# -- read-modify-write and concurrent writers ---------------------------------------------
def _rows(tag: str, n: int) -> pd.DataFrame:
    return pd.DataFrame({"row_id": [f"{tag}-{i}" for i in range(n)], "source": tag})


def _append(current: dict, tag: str, n: int) -> dict:
    """Append ``n`` rows to 'log' and to 'rejects' (like an import's append mode)."""
    out = {}
    for name in ("log", "rejects"):
        old = current[name]
        new = _rows(f"{tag}:{name}", n)
        out[name] = new if old is None else pd.concat([pd.DataFrame(old), new], ignore_index=True)
    return out


def _writer(target: str, tag: str, rounds: int, n: int) -> None:
    store = open_store(target)
    for r in range(rounds):
        store.update(["log", "rejects"], lambda cur, r=r: _append(cur, f"{tag}{r}", n))
    store.close()


@pytest.mark.parametrize("backend", ["gpkg", "postgis"])
def test_two_processes_appending_lose_no_rows(tmp_path, backend):
    """Two processes each append 5 times to two tables at once; every row lands."""
    target = str(tmp_path / "w.gpkg") if backend == "gpkg" else fresh_pg_url()
    store = open_store(target)
    store.write("rejects", _rows("seed", 3))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(target, t, 5, 7)) for t in ("p", "q")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    log, rejects = store.read("log"), store.read("rejects")
    assert len(log) == 2 * 5 * 7 and log["row_id"].is_unique
    assert len(rejects) == 3 + 2 * 5 * 7 and rejects["row_id"].is_unique
    assert {s.split(":")[0][0] for s in rejects["source"]} == {"s", "p", "q"}
    store.close()


@pytest.mark.parametrize("backend", ["gpkg", "postgis"])
def test_update_is_all_or_nothing_and_bumps_the_change_token(tmp_path, backend):
    store = open_store(str(tmp_path / "u.gpkg") if backend == "gpkg" else fresh_pg_url())
    store.write("log", _rows("a", 2))
    before = store.change_token()

    def boom(current):
        raise ValueError("the caller's own error")

    with pytest.raises(ValueError, match="caller"):
        store.update(["log"], boom)
    assert len(store.read("log")) == 2 and store.change_token() == before
    assert store.update(["log"], lambda cur: {}) == {}
    got = store.update(
        ["log", "absent"], lambda cur: {"log": cur["log"].iloc[:1]} if cur["absent"] is None else {}
    )
    assert len(got["log"]) == 1 and len(store.read("log")) == 1
    assert store.change_token() != before
    store.close()


def _changed(store, before, within_s: float = 2.0):
    """The store's change token once it differs from ``before`` (PostGIS learns of
    another connection's commit by notification, delivered within milliseconds)."""
    deadline = time.monotonic() + within_s
    while (token := store.change_token()) == before:
        assert time.monotonic() < deadline, "the change was not seen"
        time.sleep(0.005)
    return token


@pytest.mark.parametrize("backend", ["gpkg", "postgis"])
def test_change_token_sees_another_writer(tmp_path, backend):
    """A write through ANOTHER store object (another process, the CLI) changes the
    token this one reports; the token is stable while nothing is written."""
    target = str(tmp_path / "t.gpkg") if backend == "gpkg" else fresh_pg_url()
    reader, writer = open_store(target), open_store(target)
    writer.write("log", _rows("a", 1))
    t0 = reader.change_token()
    assert reader.change_token() == t0
    writer.write("log", _rows("b", 2))
    t1 = _changed(reader, t0)
    writer.set_meta(city="x")
    _changed(reader, t1)
    reader.check()
    reader.close()
    writer.close()


def test_geopackage_reads_survive_concurrent_writes(tmp_path):
    """Readers in threads page through a layer while another thread rewrites the
    workspace 15 times: no read fails, every page is whole (issue 18: 'Cannot operate
    on a closed database')."""
    store = open_store(tmp_path / "rw.gpkg")
    layer = probe_layer()
    store.write("probe", layer)
    errors: list[BaseException] = []
    done = threading.Event()

    def read_loop():
        while not done.is_set():
            try:
                rows, matched = store.read_page_geojson("probe", where={"flag": "true"})
                assert matched == 2 and len(rows) == 2
                store.info("probe")
                assert len(store.read_page("probe", limit=5)[0]) == 5
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)
                return

    threads = [threading.Thread(target=read_loop) for _ in range(3)]
    for t in threads:
        t.start()
    writer = open_store(tmp_path / "rw.gpkg")
    for i in range(15):
        writer.write_many({"probe": layer, "other": _rows(str(i), 3)})
    done.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_geopackage_gone_is_a_store_error(tmp_path):
    from gridgis.store import StoreError

    store = open_store(tmp_path / "g.gpkg")
    store.write("probe", probe_layer())
    store.check()
    os.remove(tmp_path / "g.gpkg")
    with pytest.raises(StoreError, match="gone"):
        store.check()
    with pytest.raises(StoreError, match="gone"):
        store.change_token()
