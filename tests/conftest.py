"""Shared fixtures: the demo cities are built once per test session.

``make_city`` is deterministic, so tests that only read a city share one; a test that
changes layers copies them first (``dict(city.layers)`` and ``frame.copy()``), or writes
the city into its own workspace with :func:`city_workspace`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# The CLI speaks Chinese on a Chinese locale; tests compare its English text unless they
# ask for Chinese with --lang zh (subprocesses inherit this).
os.environ["GRIDGIS_LANG"] = "en"

DEMO_HOUSEHOLDS = 10_000
DEMO_SEED = 7


@pytest.fixture(scope="session")
def demo_city():
    """The 10,000-household demo city, seed 7 (shared: never modify its frames in place)."""
    from gridgis.synth import make_city

    return make_city(households=DEMO_HOUSEHOLDS, seed=DEMO_SEED)


@pytest.fixture(scope="session")
def demo_city_gpkg(tmp_path_factory, demo_city) -> Path:
    """A GeoPackage holding :func:`demo_city` as ``gridgis demo`` writes it (layers, params,
    metadata), written once; copy it (:func:`city_workspace`) before changing it."""
    from gridgis.store import GeoPackageStore

    path = tmp_path_factory.mktemp("demo-city") / "city.gpkg"
    store = GeoPackageStore(path)
    store.write_many(demo_city.layers, params=demo_city.params)
    store.set_meta(**demo_city.meta)
    store.close()
    return path


@pytest.fixture(scope="session")
def demo_delineated_gpkg(tmp_path_factory, demo_city_gpkg) -> Path:
    """:func:`demo_city_gpkg` after the demo's delineation step (grids, assignment,
    recount), written once; copy it before changing it."""
    from gridgis.standards import DEFAULT
    from gridgis.store import GeoPackageStore
    from gridgis.workflows import run_demo

    folder = tmp_path_factory.mktemp("demo-delineated")
    path = folder / "city.gpkg"
    shutil.copy(demo_city_gpkg, path)
    store = GeoPackageStore(path)
    run_demo(store, DEFAULT, folder, steps=["delineate"])
    store.close()
    return path


@pytest.fixture()
def city_workspace(tmp_path):
    """``city_workspace(source_gpkg, name="ws.gpkg")``: a private copy of a shared
    workspace file in this test's folder."""

    def copy(source: Path, name: str = "ws.gpkg") -> Path:
        target = tmp_path / name
        shutil.copy(source, target)
        return target

    return copy


@pytest.fixture(scope="session")
def gridgis_serve():
    """``with gridgis_serve([...workspace args], token=None) as base:`` a real
    ``gridgis serve`` on a free loopback port (base URL), stopped on exit."""
    import contextlib
    import subprocess
    import sys
    import time

    import httpx

    from gridgis.store.pgtemp import free_port

    exe = Path(sys.executable).parent / "gridgis"

    @contextlib.contextmanager
    def serve(args: list[str], token: str | None = None):
        port = free_port()
        env = dict(os.environ)
        env.pop("GRIDGIS_DATABASE_URL", None)
        if token is not None:
            env["GRIDGIS_API_TOKEN"] = token
        proc = subprocess.Popen(
            [str(exe), "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"gridgis serve did not start: {proc.stdout.read()}")
            time.sleep(0.2)
        try:
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    return serve
