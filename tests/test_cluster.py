"""Partitioned runs on a real Dask LocalCluster (2 worker processes) equal the
single-process reference row for row; failed partitions are retried or fail cleanly.

One cluster serves the module (started once, ~2 s; processes, no dashboard, loopback).
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")

from gridgis import partitioned as P  # noqa: E402
from gridgis.assign import assign_all  # noqa: E402
from gridgis.cluster import ClusterSpec, open_client, parse_cluster  # noqa: E402
from gridgis.coverage import run_coverage  # noqa: E402
from gridgis.delineate import delineate  # noqa: E402
from gridgis.errors import InputError  # noqa: E402
from gridgis.lookup import Lookup  # noqa: E402
from gridgis.standards import ClusterRules  # noqa: E402
from gridgis.store import open_store  # noqa: E402
from gridgis.synth import make_city  # noqa: E402

#: Small partitions so that even the test city is cut into many.
RULES = ClusterRules(
    retries=2, chunk_rows=200, partitions_per_worker=4, coverage_partitions_per_worker=4
)


@pytest.fixture(scope="module")
def client():
    with open_client("local:2") as c:
        yield c


@pytest.fixture(scope="module")
def city():
    return make_city(households=30_000, seed=11).layers


@pytest.fixture(scope="module")
def delineated(city):
    return delineate(city)


#: Walking distances may differ in the last bits where two paths are equally short: the
#: search adds the same edge lengths in another order (measured: ≤ 2e-9 m on the
#: 1,000,000-household city). Everything else is compared exactly.
SUMMED = {"walk_m": 1e-6, "walk_min": 1e-8}


def same(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Same rows, same order, same values and dtypes: exact, but for the summed walking
    distances (:data:`SUMMED`, absolute tolerance)."""
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


# -- specs ------------------------------------------------------------------------------


def test_parse_cluster_specs():
    assert parse_cluster(None) == ClusterSpec("none")
    assert parse_cluster("") == ClusterSpec("none")
    assert parse_cluster("local") == ClusterSpec("local", workers=None)
    assert parse_cluster("local:3") == ClusterSpec("local", workers=3)
    assert parse_cluster("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    for bad in ("lokal", "http://x:8786", "tcp://", "local:two", "local:-1"):
        with pytest.raises(InputError, match="local:N"):
            parse_cluster(bad)
    with pytest.raises(InputError, match="at least 1"):
        parse_cluster("local:0")


def test_no_cluster_yields_none():
    with open_client(None) as c:
        assert c is None


# -- equality with the single-process reference ----------------------------------------


def test_delineate_partitioned_equals_single(client, city, delineated):
    got = P.delineate_partitioned(client, city, rules=RULES, issued_at="2026-01-01T00:00:00")
    ref = delineate(city, issued_at="2026-01-01T00:00:00")
    assert got.params["cluster"]["partitions"] > 2
    for name in ("grids", "buildings", "findings", "registry"):
        same(getattr(got, name), getattr(ref, name))


def test_delineate_rerun_keeps_codes_like_single(client, city, delineated):
    """A re-run with previous grids and registry (a stricter maximum): codes kept,
    retired and issued exactly as the single-process run does."""
    from gridgis.standards import DEFAULT

    settings = DEFAULT.override({"grid.max_households": 420})
    kw = dict(previous=delineated.grids, registry=delineated.registry, issued_at="2026-02-02")
    ref = delineate(city, settings, **kw)
    got = P.delineate_partitioned(client, city, settings, rules=RULES, **kw)
    same(got.grids, ref.grids)
    same(got.registry, ref.registry)
    assert (ref.registry["status"] == "retired").any()  # the case is exercised


def test_assign_partitioned_equals_single(client, city, delineated):
    ref = assign_all(city, delineated.grids)
    got = P.assign_partitioned(client, city, delineated.grids, rules=RULES)
    assert got.params["cluster"]["partitions"] > 4
    ref_layers, got_layers = ref.layers(), got.layers()
    assert set(ref_layers) == set(got_layers)
    for name in ref_layers:
        same(got_layers[name], ref_layers[name])
    assert got.notes == ref.notes


def test_coverage_partitioned_equals_single(client, city, delineated):
    layers = {**city, "grids": delineated.grids}
    ref = run_coverage(layers)
    got = P.coverage_partitioned(client, layers, rules=RULES)
    assert set(got.layers) == set(ref.layers)
    for name in ref.layers:
        same(got.layers[name], ref.layers[name])
    report = got.params.pop("cluster")
    assert report["partitions"] >= 8
    assert report["notes"][0].startswith("round 1: halo 1000 m")
    assert got.params == ref.params
    assert got.levels == ref.levels


def test_lookup_partitioned_equals_single(client, city, delineated):
    layers = {**city, **assign_all(city, delineated.grids).layers()}
    names = ("addresses", "buildings", "grids", "communities", "streets", "staff")
    lk = {n: layers.get(n) for n in names}
    digits = str.maketrans("0123456789", "０１２３４５６７８９")
    texts = [t.replace("栋", "幢").translate(digits) for t in layers["addresses"]["text"]]
    texts += ["完全不存在的路999号", "", "建设路"]
    ref = Lookup(**lk).addresses(texts)
    got = P.lookup_addresses_partitioned(client, lk, texts, rules=RULES)
    assert got.attrs["cluster"]["partitions"] > 4
    same(got, ref)


# -- failures ---------------------------------------------------------------------------


def _fail_once(marker: str) -> int:
    """Raises on the first attempt (leaving a marker file), returns 42 on the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("first attempt fails")
    return 42


def _always_fail(x: int) -> int:
    raise ValueError(f"partition {x} is broken")


def test_failed_partition_is_retried_and_reported(client, tmp_path):
    run = P.Runner(client, "test", RULES)
    got = run.run(_fail_once, [("only", (str(tmp_path / "marker"),))])
    report = run.finish()
    assert got == [42]
    assert report.retried == ["only"] and report.attempts["only"] == 2


def test_partition_failing_every_time_raises_partition_error(client):
    run = P.Runner(client, "test", ClusterRules(retries=1))
    with pytest.raises(P.PartitionError, match="partition p1 failed after 1 retries"):
        run.run(_always_fail, [("p1", (1,))])
    assert run.finish().attempts["p1"] == 2


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_worker_killed_mid_coverage_retries_or_leaves_store_unchanged(client, city, tmp_path):
    """SIGKILL a worker process while coverage partitions run: the run either retries
    the lost partitions and writes the single-process result, or fails with nothing
    written (the GeoPackage's bytes unchanged)."""
    path = tmp_path / "ws.gpkg"
    with open_store(path) as store:
        store.write_many(city)
    before = _sha256(path)
    pids = client.run(os.getpid)
    victim_addr, victim_pid = sorted(pids.items())[0]
    done = threading.Event()
    killed: list[int] = []

    def killer() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and not done.is_set():
            if client.processing().get(victim_addr):
                os.kill(victim_pid, signal.SIGKILL)
                killed.append(victim_pid)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    t0 = time.time()
    try:
        result = P.coverage_partitioned(client, city, rules=RULES)
    except P.PartitionError as exc:
        print("failed cleanly:", exc)
        result = None
    finally:
        done.set()
        thread.join()
    assert killed, "the worker was not killed while a partition ran"
    if result is None:
        assert _sha256(path) == before
    else:
        with open_store(path) as store:
            store.write_many(result.layers, params=result.params)
        ref = run_coverage(city)
        with open_store(path) as store:
            for name in ("access", "coverage"):
                got = store.read(name)
                assert len(got) == len(ref.layers[name])
        same(result.layers["access"], ref.layers["access"])
        same(result.layers["coverage"], ref.layers["coverage"])
        report = result.params["cluster"]
        print("after the kill:", report["retried"], report["workers_lost"], time.time() - t0)
        assert report["workers_lost"] and report["retried"]
    client.wait_for_workers(2, timeout=180)  # a restart is slow on a busy machine


# -- the workflows and the CLI ----------------------------------------------------------


def test_workflows_with_a_cluster_write_what_single_process_writes(client, city, tmp_path):
    """delineate (with assign) then coverage, once in this process and once on the
    cluster, into two workspaces: every written layer reads back the same."""
    from gridgis import workflows
    from gridgis.standards import DEFAULT

    stores = {}
    for kind, cl in (("single", None), ("cluster", client)):
        store = open_store(tmp_path / f"{kind}.gpkg")
        store.write_many(city)
        workflows.delineate(store, DEFAULT, cluster=cl)
        workflows.coverage(store, DEFAULT, cluster=cl)
        stores[kind] = store
    a, b = stores["single"], stores["cluster"]
    assert a.layers() == b.layers()
    for name in a.layers():
        if name == "code_registry":  # issued_at is the time of each run
            same(b.read(name).drop(columns="issued_at"), a.read(name).drop(columns="issued_at"))
        else:
            same(b.read(name), a.read(name))


def test_cli_cluster_option_rejects_a_bad_spec(tmp_path):
    from typer.testing import CliRunner

    from gridgis.cli import app

    store = open_store(tmp_path / "w.gpkg")
    store.write_many(make_city(households=3000).layers)
    res = CliRunner().invoke(app, ["coverage", "-w", str(tmp_path / "w.gpkg"), "--cluster", "x"])
    assert res.exit_code == 2
    assert "local:N" in res.output


def test_remote_scheduler_and_worker_processes(tmp_path):
    """The README's recipe on loopback: ``dask scheduler`` and ``dask worker tcp://…``
    started as programs, the run connected by address, same layers as single-process."""
    import socket
    import subprocess
    import sys

    bindir = Path(sys.executable).parent
    if not (bindir / "dask").exists():
        pytest.skip("the dask command is not installed beside this Python")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen(
            [
                bindir / "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        time.sleep(2)
        procs.append(
            subprocess.Popen(
                [
                    bindir / "dask",
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        layers = make_city(households=5000, seed=2).layers
        with open_client(address) as c:
            c.wait_for_workers(1, timeout=60)
            got = P.coverage_partitioned(c, layers, rules=RULES)
        ref = run_coverage(layers)
        for name in ref.layers:
            same(got.layers[name], ref.layers[name])
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(30)


def test_province_built_on_the_cluster_equals_built_here(client):
    """Districts built as cluster tasks give the same province as built one by one;
    every id and code is unique across districts and the districts do not overlap."""
    from gridgis.province import make_province

    here, meta = make_province(7_001, districts=3, seed=5)
    there, meta2 = make_province(7_001, districts=3, seed=5, client=client)
    assert meta == meta2
    assert [d["households"] for d in meta["districts"]] == [2334, 2334, 2333]
    assert int(here["buildings"]["households"].sum()) == 7_001
    for name in here:
        same(there[name], here[name])
    for name, key in (("buildings", "building_id"), ("communities", "community_code")):
        assert here[name][key].is_unique, name
    counties = {c[:6] for c in here["communities"]["community_code"]}
    assert counties == {"329900", "329901", "329902"}
    comm = here["communities"].to_crs(4549)
    by_county = comm.dissolve(comm["community_code"].str[:6])
    assert not by_county.geometry.iloc[0].intersects(by_county.geometry.iloc[1])
