"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis) over
HTTP against uvicorn on loopback: at least 500 generated requests over every operation,
half with the token, half without; none may get a 5xx. Bounded by a fixed number of
examples per operation (about 10 s on an idle 2-core machine); speed is measured in
benchmarks/bench_api.py, not here."""

from __future__ import annotations

import threading
import time

import pytest
import schemathesis
import schemathesis.openapi
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings

from api.app import create_app
from api.demo import demo_layers, fill_demo
from gridgis.store import open_store
from gridgis.store.pgtemp import free_port

TOKEN = "fuzz-token"

#: Generated examples per operation (jobs rewrite the workspace: a few are enough).
EXAMPLES = 40
JOB_EXAMPLES = 2


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base URL, layers) of the API under uvicorn in a thread of this process."""
    layers = demo_layers(households=10_000)
    store = open_store(tmp_path_factory.mktemp("fuzz") / "demo.gpkg")
    fill_demo(store, layers)
    maps = tmp_path_factory.mktemp("maps")
    (maps / "index.html").write_text("<html></html>")
    app = create_app(store, maps_dir=maps, token=TOKEN, max_body_bytes=256 * 1024)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield base, layers
    server.should_exit = True
    thread.join(timeout=10)


def test_no_server_errors(served):
    """Every operation: generated requests (hypothesis via schemathesis); the layer and
    feature operations also on real layers and ids, so fuzzing reaches the data."""
    base, layers = served
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    calls: list[tuple[str, int]] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 15
    real = {
        "layer": ["grids", "buildings", "staff", "facilities", "coverage"],
        "grid_code": list(layers["grids"]["grid_code"].iloc[:5]),
        "feature_id": list(layers["grids"]["grid_code"].iloc[:3]) + ["1", "2"],
    }

    def run(strategy, n: int, label: str) -> None:
        @settings(
            max_examples=n,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def fuzz(case):
            auth = len(calls) % 2 == 0  # half the requests carry the token
            headers = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
            response = case.call(base_url=base, headers=headers, timeout=30)
            calls.append((label, response.status_code))
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} {case.query} -> "
                f"{response.status_code}: {response.text[:500]}"
            )

        fuzz()

    for op in operations:
        is_job = op.path.startswith("/jobs/")
        run(op.as_strategy(), JOB_EXAMPLES if is_job else EXAMPLES, op.label)
        names = [p.name for p in op.iter_parameters() if p.location == "path"]
        if names and all(n in real for n in names) and op.method.upper() == "GET":
            for i in range(3):

                def pin(case, i=i, names=names):
                    for n in names:
                        case.path_parameters[n] = real[n][i % len(real[n])]
                    return case

                run(op.as_strategy().map(pin), 10, f"{op.label} (real)")
    assert len(calls) >= 500, f"only {len(calls)} generated requests"
    statuses = {s for _, s in calls}
    assert {200, 401, 404, 422} <= statuses, statuses
    ok_items = [
        s
        for lab, s in calls
        if lab.startswith("GET /collections/{layer}/items") and "(real)" in lab and s == 200
    ]
    assert len(ok_items) >= 10  # the fuzzer reached real features, not only 404s
