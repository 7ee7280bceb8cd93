"""The GeoParquet workspace (a directory partitioned by street): the store contract of
tests/test_store_backends.py run on it, plus partitions, pruning and staged writes."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import shapely

pytest.importorskip("pyarrow")

from test_store_backends import (  # noqa: E402  - the shared contract, on this backend
    test_bbox_and_where_against_shapely,
    test_empty_layers_and_tables_keep_their_kind,
    test_failed_write_many_leaves_previous_layers_whole,
    test_meta_delete_and_names,
    test_numpy_parameters_and_metadata_stay_numbers,
    test_other_crs_is_stored_as_4326,
    test_read_page_pages_cover_the_filtered_layer,
    test_round_trip_demo_city,
)

from gridgis.store import StoreError, open_store  # noqa: E402
from gridgis.store.parquet import GeoParquetStore  # noqa: E402
from gridgis.synth import make_city  # noqa: E402

__all__ = [
    "test_bbox_and_where_against_shapely",
    "test_empty_layers_and_tables_keep_their_kind",
    "test_failed_write_many_leaves_previous_layers_whole",
    "test_meta_delete_and_names",
    "test_numpy_parameters_and_metadata_stay_numbers",
    "test_other_crs_is_stored_as_4326",
    "test_read_page_pages_cover_the_filtered_layer",
    "test_round_trip_demo_city",
]


@pytest.fixture(params=["path", "url"])
def store(request, tmp_path):
    target = tmp_path / "ws.parquet" if request.param == "path" else f"parquet://{tmp_path}/w"
    s = open_store(target)
    assert isinstance(s, GeoParquetStore)
    yield s
    s.close()


@pytest.fixture(scope="module")
def city():
    return make_city(households=10000)


def test_same_frames_as_geopackage(tmp_path, city):
    a = open_store(tmp_path / "a.gpkg")
    b = open_store(tmp_path / "b.parquet")
    a.write_many(city.layers)
    b.write_many(city.layers)
    for name in city.layers:
        pd.testing.assert_frame_equal(
            pd.DataFrame(b.read(name)), pd.DataFrame(a.read(name)), obj=name
        )


def test_one_file_per_street_and_pruned_reads(tmp_path, city):
    s = open_store(tmp_path / "ws.parquet")
    s.write_many(city.layers)
    streets = sorted(city.layers["streets"]["street_code"].astype(str))
    assert s.partitions("communities") == streets
    b = city.layers["buildings"]  # no code yet: one partition
    assert s.partitions("buildings") == ["all"]
    comm = city.layers["communities"]
    code = streets[1]
    part = s.read_partition("communities", code)
    assert set(part["community_code"]) == set(
        comm.loc[comm["street_code"].astype(str) == code, "community_code"]
    )
    # a bbox over one street's communities opens only the partitions it can touch
    box = shapely.box(*comm[comm["street_code"].astype(str) == code].total_bounds)
    bbox = box.buffer(-1e-4).bounds
    got = s.read("communities", bbox=bbox)
    assert set(got["community_code"]) == set(
        comm[comm.intersects(shapely.box(*bbox))]["community_code"]
    )
    entry = s._entry("communities")
    assert len(s._prune(entry, bbox, None)) < len(streets)
    assert len(s._prune(entry, None, {"street_code": code})) == 1
    with pytest.raises(StoreError, match="no partition"):
        s.read_partition("communities", "999999999")
    assert len(s.read("buildings")) == len(b)


def test_failed_write_leaves_no_files_behind(tmp_path, city):
    s = open_store(tmp_path / "ws.parquet")
    s.write("streets", city.layers["streets"])
    files = sorted(p for p in (tmp_path / "ws.parquet").rglob("*") if p.is_file())
    with pytest.raises(StoreError):
        s.write_many({"streets": city.layers["streets"], "bad": pd.DataFrame({"a": [1j]})})
    assert sorted(p for p in (tmp_path / "ws.parquet").rglob("*") if p.is_file()) == files


def test_staged_partitions_rerun_idempotent_and_commit_all_or_nothing(tmp_path, city):
    s = open_store(tmp_path / "ws.parquet")
    s.write("buildings", city.layers["buildings"], {"run": 0})
    b = city.layers["buildings"]
    halves = {"p0": b.iloc[: len(b) // 2], "p1": b.iloc[len(b) // 2 :]}
    with s.hold_run("run1"):  # only a live run stages
        for key, part in halves.items():
            s.stage_partition("buildings", "run1", key, part)
        s.stage_partition("buildings", "run1", "p1", halves["p1"])  # a retried partition
        assert len(s.read("buildings")) == len(b)  # staged rows are not visible yet
        assert s.info("buildings").params == {"run": 0}
        with pytest.raises(StoreError, match="nothing staged"):
            s.commit_staged({"buildings": "run1", "roads": "never"}, {"run": 1})
        assert s.info("buildings").params == {"run": 0}  # all or nothing
        s.commit_staged({"buildings": "run1"}, {"run": 1})
        back = s.read("buildings")
        pd.testing.assert_frame_equal(pd.DataFrame(back), pd.DataFrame(s.read("buildings")))
        assert back["building_id"].tolist() == b["building_id"].tolist()
        assert s.info("buildings").params == {"run": 1} and s.info("buildings").rows == len(b)
        assert s.partitions("buildings") == ["p0", "p1"]


def test_open_store_targets(tmp_path):
    assert isinstance(open_store(f"parquet://{tmp_path}/x"), GeoParquetStore)
    assert isinstance(open_store(str(tmp_path / "y.parquet") + "/"), GeoParquetStore)
    with pytest.raises(StoreError, match="no such workspace"):
        open_store(tmp_path / "missing.parquet", create=False)
    (tmp_path / "file.parquet").write_text("x")
    with pytest.raises(StoreError, match="directory"):
        open_store(tmp_path / "file.parquet")
    os.makedirs(tmp_path / "full.parquet")
    (tmp_path / "full.parquet" / "other").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        open_store(tmp_path / "full.parquet")


# -- the one filter semantics, read-modify-write and the change token (as the other stores)


@pytest.fixture(scope="module")
def probe_store(tmp_path_factory):
    from test_store_filters import probe_layer

    s = open_store(tmp_path_factory.mktemp("p") / "probe.parquet")
    s.write("probe", probe_layer())
    return s


def test_filters_same_rows_as_the_other_stores(probe_store):
    from test_store_filters import CASES, _ids

    for field, value, want in CASES:
        got = _ids(probe_store, field, value)
        assert got == {"read": want, "page": want[:3], "geojson": want, "bbox": want}, (
            field,
            value,
        )


def test_unknown_field_and_layer_are_typed_errors(probe_store):
    from gridgis.store import NoFieldError, NoLayerError

    with pytest.raises(NoFieldError, match="nope"):
        probe_store.read_page_geojson("probe", where={"nope": "1"})
    with pytest.raises(NoLayerError):
        probe_store.read("absent")


def test_two_processes_appending_lose_no_rows(tmp_path):
    import multiprocessing as mp

    from test_store_filters import _rows, _writer

    target = str(tmp_path / "w.parquet")
    store = open_store(target)
    store.write("rejects", _rows("seed", 3))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(target, t, 3, 7)) for t in ("p", "q")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    log, rejects = store.read("log"), store.read("rejects")
    assert len(log) == 2 * 3 * 7 and log["row_id"].is_unique
    assert len(rejects) == 3 + 2 * 3 * 7 and rejects["row_id"].is_unique


def test_update_all_or_nothing_and_change_token(tmp_path):
    from test_store_filters import _rows

    store = open_store(tmp_path / "u.parquet")
    other = open_store(tmp_path / "u.parquet")
    store.write("log", _rows("a", 2))
    before = other.change_token()

    def boom(current):
        raise ValueError("the caller's own error")

    with pytest.raises(ValueError, match="caller"):
        store.update(["log"], boom)
    assert len(store.read("log")) == 2 and other.change_token() == before
    got = store.update(["log", "absent"], lambda cur: {"log": cur["log"].iloc[:1]})
    assert len(got["log"]) == 1 and len(other.read("log")) == 1
    assert other.change_token() != before
    other.check()


def test_to_dask_reads_every_partition(tmp_path, city):
    pytest.importorskip("dask_geopandas")
    s = open_store(tmp_path / "d.parquet")
    s.write_many(city.layers)
    ddf = s.to_dask("communities")
    assert ddf.npartitions == len(s.partitions("communities"))
    got = ddf.compute().sort_values("_gridgis_row").drop(columns="_gridgis_row")
    pd.testing.assert_frame_equal(
        pd.DataFrame(got).reset_index(drop=True), pd.DataFrame(s.read("communities"))
    )
