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
