"""Partitioned runs on a shared store (PostGIS, GeoParquet): workers read their own
partitions and stage their own rows; the run publishes everything at once or nothing.

A real Dask LocalCluster of 2 worker processes, a throwaway PostgreSQL server
(:mod:`gridgis.store.pgtemp`) and GeoParquet directories; a demo city of 8,000
households. Every result is compared with the single-process run, row for row.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from gridgis import workflows  # noqa: E402
from gridgis.cluster import open_client  # noqa: E402
from gridgis.partitioned import PartitionError  # noqa: E402
from gridgis.partitioned.source import Rows, SharedRun, shared_run  # noqa: E402
from gridgis.standards import DEFAULT, ClusterRules  # noqa: E402
from gridgis.store import StoreError, open_store  # noqa: E402
from gridgis.synth import make_city  # noqa: E402

KINDS = ["postgis", "parquet"]
RULES = ClusterRules(
    retries=1, chunk_rows=300, partitions_per_worker=3, coverage_partitions_per_worker=3
)
#: Walking distances may differ in the last bits (equally short paths summed in another
#: order); everything else is compared exactly (as in test_cluster.py).
SUMMED = {"walk_m": 1e-6, "walk_min": 1e-8}


def fresh_pg_url() -> str:
    from gridgis.store.pgtemp import PostgresUnavailable, find_bindir, fresh_workspace_url

    if not os.environ.get("GRIDGIS_TEST_DATABASE_URL"):
        try:
            find_bindir()
        except PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL not installed: {exc}")
    return fresh_workspace_url()


def new_store(kind: str, folder: Path):
    if kind == "postgis":
        return open_store(fresh_pg_url())
    return open_store(folder / f"ws-{uuid.uuid4().hex[:8]}.parquet")


def same(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    got = pd.DataFrame(got).reset_index(drop=True)
    ref = pd.DataFrame(ref).reset_index(drop=True)
    summed = [c for c in SUMMED if c in ref.columns]
    pd.testing.assert_frame_equal(
        got.drop(columns=summed), ref.drop(columns=summed), check_exact=True
    )
    for col in summed:
        pd.testing.assert_series_equal(
            got[col], ref[col], check_exact=False, rtol=0, atol=SUMMED[col]
        )


def digest(store, name: str) -> str:
    """A layer's content (rows, order, values, geometry bytes) as one hash."""
    frame = pd.DataFrame(store.read(name))
    if "geometry" in frame:
        frame["geometry"] = [None if g is None else g.wkb_hex for g in frame["geometry"]]
    h = pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy()
    return hashlib.sha256(h.tobytes() + ",".join(frame.columns).encode()).hexdigest()


@pytest.fixture(scope="module")
def client():
    with open_client("local:2") as c:
        yield c


@pytest.fixture(scope="module")
def city():
    return make_city(households=8_000, seed=11).layers


@pytest.fixture(scope="module", params=KINDS)
def single(request, city, tmp_path_factory):
    """A workspace delineated, assigned and covered in this process (the reference)."""
    store = new_store(request.param, tmp_path_factory.mktemp("single"))
    store.write_many(city)
    workflows.delineate(store, DEFAULT)
    workflows.assign(store, DEFAULT)
    workflows.coverage(store, DEFAULT)
    yield request.param, store
    store.close()


def no_staging(store) -> None:
    assert store.staging() == []


# -- equality -------------------------------------------------------------------------


def test_workflows_on_a_shared_store_equal_single_process(client, city, single, tmp_path):
    """delineate (with assign), assign (refresh) and coverage on the cluster, the workers
    reading their partitions and staging the assigned chunks and the access rows
    themselves: every layer reads back as the single-process workspace's."""
    kind, ref = single
    store = new_store(kind, tmp_path)
    store.write_many(city)
    job = workflows.delineate(store, DEFAULT, cluster=client)
    assert job.detail.params["cluster"]["partitions"] >= 3
    job = workflows.assign(store, DEFAULT, cluster=client)  # a refresh: chunks staged
    assert set(job.detail.staged) == {"buildings", "institutions", "addresses"} & set(city)
    assert "buildings" in job.detail.staged
    job = workflows.coverage(store, DEFAULT, cluster=client)
    assert job.detail.staged == {"access": job.detail.staged["access"]}
    no_staging(store)
    assert store.layers() == ref.layers()
    for name in ref.layers():
        if name in ("code_registry", "grid_versions"):  # times of each run
            drop = [c for c in ("issued_at", "recorded_at", "valid_from") if c in ref.read(name)]
            same(store.read(name).drop(columns=drop), ref.read(name).drop(columns=drop))
        elif name == "grids":
            same(
                store.read(name).drop(columns="valid_from"),
                ref.read(name).drop(columns="valid_from"),
            )
        else:
            same(store.read(name), ref.read(name))
    store.close()


def test_partitioned_functions_read_from_the_store(client, single):
    """The partitioned analyses given a SharedRun (the workers read every partition)
    equal the single-process analyses on the same stored layers."""
    from gridgis.assign import assign_all
    from gridgis.delineate import delineate
    from gridgis.partitioned import assign_partitioned, delineate_partitioned

    _, store = single
    layers = {n: store.read(n) for n in ("communities", "buildings", "roads", "addresses")}
    with shared_run(store, tuple(layers)) as run:
        got = delineate_partitioned(
            client, layers, rules=RULES, shared=run, issued_at="2026-01-01T00:00:00"
        )
        ref = delineate(layers, issued_at="2026-01-01T00:00:00")
        for name in ("grids", "buildings", "findings", "registry"):
            same(getattr(got, name), getattr(ref, name))
        a_got = assign_partitioned(client, layers, ref.grids, rules=RULES, shared=run)
        # the addresses the workers assign are the store's, not this process's copy
        mine = {**layers, "addresses": layers["addresses"].assign(text="client copy")}
        seen = assign_partitioned(client, mine, ref.grids, rules=RULES, shared=run).addresses
    a_ref = assign_all(layers, ref.grids)
    for name, frame in a_ref.layers().items():
        same(a_got.layers()[name], frame)
    assert seen["text"].tolist() == layers["addresses"]["text"].tolist()
    no_staging(store)


def test_rows_read_through_the_indexes(single):
    """PostGIS: a partition's read uses the GiST index (``&&`` on its box) and the code
    b-tree (``= ANY``), as EXPLAIN shows; both stores return the same rows."""
    kind, store = single
    b = store.read("buildings")
    box = tuple(b.iloc[:50].total_bounds)
    rows = Rows("buildings", bbox=box).read(SharedRun(store.shared_location(), "0" * 12))
    env = b.geometry.bounds.to_numpy()
    expect = np.flatnonzero(
        (env[:, 0] <= box[2])
        & (env[:, 2] >= box[0])
        & (env[:, 1] <= box[3])
        & (env[:, 3] >= box[1])
    )
    assert rows.index.tolist() == expect.tolist()
    same(rows.reset_index(drop=True), b.iloc[expect].reset_index(drop=True))
    codes = tuple(store.read("communities")["community_code"].iloc[:3])
    grids = store.read_rows("grids", where_in=("community_code", codes))
    assert set(grids["community_code"]) == set(codes)
    if kind != "postgis":
        return
    plans = []
    for name, kw in (
        ("buildings", {"bbox": box}),
        ("grids", {"where_in": ("community_code", codes)}),
    ):
        sql, args, _ = store.rows_query(name, **kw)
        with store._cursor() as cur:
            # a test-sized table: show that the index serves the query
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute("EXPLAIN " + sql, args)
            plans.append("\n".join(r[0] for r in cur.fetchall()))
    assert "buildings_geometry_gist" in plans[0], plans[0]
    assert "grids_community_code_idx" in plans[1], plans[1]


# -- failures ---------------------------------------------------------------------------


def _install_fault(marker: str, mode: str) -> None:
    """In a worker: wrap the stores' ``stage_partition``. ``kill``: the first call stages
    then kills the worker process (os._exit) — the marker file makes it once per test;
    ``raise``: every call stages then raises."""
    from gridgis.store.parquet import GeoParquetStore
    from gridgis.store.postgis import PostGISStore

    for cls in (PostGISStore, GeoParquetStore):
        original = cls.__dict__["stage_partition"]
        original = getattr(original, "_original", original)

        def faulty(self, *args, _orig=original, **kw):
            out = _orig(self, *args, **kw)
            if mode == "raise":
                raise RuntimeError("this partition always fails")
            try:  # created atomically: of two workers staging at once, only one dies
                with open(marker, "x") as flag:
                    flag.write("killed once")
            except FileExistsError:
                return out
            os._exit(1)

        faulty._original = original
        cls.stage_partition = faulty


def _remove_fault() -> None:
    from gridgis.store.parquet import GeoParquetStore
    from gridgis.store.postgis import PostGISStore

    for cls in (PostGISStore, GeoParquetStore):
        fn = cls.__dict__["stage_partition"]
        cls.stage_partition = getattr(fn, "_original", fn)


def test_worker_killed_mid_coverage_is_retried_and_publishes_everything(city, single, tmp_path):
    """A worker dies right after staging its first coverage partition: the partition
    runs again (replacing its own staged rows) and the published access layer is the
    single-process one, complete, no row twice; no staging is left. (A cluster of its own:
    the nanny of a killed worker may retire it, which must not thin the shared one.)"""
    kind, ref = single
    store = new_store(kind, tmp_path)
    store.write_many({n: ref.read(n) for n in ref.layers() if n not in ("access",)})
    with open_client("local:2") as client:
        client.run(_install_fault, str(tmp_path / "killed"), "kill")
        job = workflows.coverage(store, DEFAULT, cluster=client)
    assert (tmp_path / "killed").exists()
    report = job.detail.params["cluster"]
    assert report["workers_lost"] and report["retried"]
    for name in ("access", "coverage", "coverage_gaps"):
        same(store.read(name), ref.read(name))
    no_staging(store)
    store.close()


def test_partition_failing_every_time_leaves_the_old_result(client, single, tmp_path):
    """Every coverage partition fails (after staging its rows): PartitionError, every
    layer's digest unchanged, no staging tables or files left."""
    kind, ref = single
    store = new_store(kind, tmp_path)
    store.write_many({n: ref.read(n) for n in ref.layers()})
    before = {n: digest(store, n) for n in store.layers()}
    client.run(_install_fault, str(tmp_path / "unused"), "raise")
    try:
        with pytest.raises(PartitionError, match="nothing was written"):
            workflows.coverage(store, DEFAULT, cluster=client)
    finally:
        client.run(_remove_fault)
    assert {n: digest(store, n) for n in store.layers()} == before
    no_staging(store)
    store.close()


def test_restaged_partition_is_idempotent_and_stale_staging_is_cleaned(single, tmp_path):
    """Staging a partition twice leaves its rows once; rows are published in their
    order; staging of a run nobody holds (a crashed client) is dropped by the next run,
    that of a live run kept."""
    kind, _ = single
    store = new_store(kind, tmp_path)
    rows = pd.DataFrame({"building_id": [f"b{i}" for i in range(6)], "walk_m": np.arange(6.0)})
    with store.hold_run("aaaaaaaaaaaa"):
        store.stage_partition("demo", "aaaaaaaaaaaa", "p1", rows.iloc[3:], order=np.arange(3, 6))
        store.stage_partition("demo", "aaaaaaaaaaaa", "p0", rows.iloc[:3], order=np.arange(3))
        store.stage_partition("demo", "aaaaaaaaaaaa", "p1", rows.iloc[3:], order=np.arange(3, 6))
        store.publish({}, {"demo": "aaaaaaaaaaaa"})
    same(store.read("demo"), rows)
    assert store.info("demo").rows == 6
    no_staging(store)
    with store.hold_run("bbbbbbbbbbbb", drop=False):  # a client that dies mid-run
        store.stage_partition("demo", "bbbbbbbbbbbb", "p0", rows)
    with pytest.raises(StoreError, match="is over"):  # its late partitions stage nothing
        store.stage_partition("demo", "bbbbbbbbbbbb", "p1", rows)
    with store.hold_run("cccccccccccc"):
        store.stage_partition("demo", "cccccccccccc", "p0", rows)  # a live run
        with shared_run(store) as run:  # the next run cleans what nobody holds
            assert run.run not in ("bbbbbbbbbbbb", "cccccccccccc")
            assert all("bbbbbbbbbbbb" not in s for s in store.staging())
            assert any("cccccccccccc" in s for s in store.staging())
    store.drop_staging("cccccccccccc")
    no_staging(store)
    same(store.read("demo"), rows)
    store.close()
