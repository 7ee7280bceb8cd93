"""The workflow layer: one job, three faces (CLI, API job, workflow/demo), identical layers."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gridgis import workflows
from gridgis.cli import app as cli_app
from gridgis.errors import InputError
from gridgis.standards import DEFAULT
from gridgis.store import GeoPackageStore

TOKEN = "wf-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

#: Columns that record when something was done, not what.
TIME_COLUMNS = {"issued_at", "retired_at"}


def _layers(path) -> dict[str, pd.DataFrame]:
    store = GeoPackageStore(path)
    out = {n: store.read(n) for n in store.layers()}
    store.close()
    return out


def assert_same_layers(a: dict, b: dict, names) -> None:
    for name in names:
        x, y = a[name], b[name]
        assert list(x.columns) == list(y.columns), name
        cols = [c for c in x.columns if c not in TIME_COLUMNS]
        if "geometry" in cols:
            assert x.geometry.geom_equals_exact(y.geometry, tolerance=0).all(), name
            cols.remove("geometry")
        pd.testing.assert_frame_equal(
            pd.DataFrame(x[cols]), pd.DataFrame(y[cols]), check_dtype=True, obj=name
        )


def _api_job(path, job: str) -> dict:
    from api.app import create_app

    store = GeoPackageStore(path)
    with TestClient(create_app(store, token=TOKEN)) as client:
        r = client.post(f"/jobs/{job}", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


DELINEATE_LAYERS = (
    "grids",
    "buildings",
    "facilities",
    "institutions",
    "addresses",
    "staff",
    "assign_rejects",
    "code_registry",
    "delineation_findings",
)


def test_delineate_is_the_same_job_through_cli_api_and_workflow(demo_city_gpkg, city_workspace):
    """Delineation with assignment and recount: `gridgis delineate`, POST /jobs/delineate
    and :func:`gridgis.workflows.delineate` write the very same layers."""
    by_cli, by_api, by_wf = (city_workspace(demo_city_gpkg, f"{n}.gpkg") for n in "abc")
    res = CliRunner().invoke(cli_app, ["delineate", "--workspace", str(by_cli)])
    assert res.exit_code == 0, res.output
    answer = _api_job(by_api, "delineate")
    store = GeoPackageStore(by_wf)
    job = workflows.delineate(store, DEFAULT)
    store.close()
    assert answer["layers"] == job.written and answer["operation"] == "delineate"
    a, b, c = _layers(by_cli), _layers(by_api), _layers(by_wf)
    assert set(job.written) <= set(c)
    assert_same_layers(a, c, DELINEATE_LAYERS)
    assert_same_layers(b, c, DELINEATE_LAYERS)
    # the grids' households are the assignment's (recount ran on every face)
    g, bld = c["grids"], c["buildings"]
    hh = bld.groupby("grid_code")["households"].sum()
    assert (g.set_index("grid_code")["households"].reindex(hh.index) == hh).all()


def test_assign_and_coverage_are_the_same_through_cli_api_and_workflow(
    demo_delineated_gpkg, city_workspace
):
    paths = {n: city_workspace(demo_delineated_gpkg, f"{n}.gpkg") for n in ("cli", "api", "wf")}
    runner = CliRunner()
    for job in ("assign", "coverage"):
        res = runner.invoke(cli_app, [job, "--workspace", str(paths["cli"])])
        assert res.exit_code == 0, res.output
        _api_job(paths["api"], job)
        store = GeoPackageStore(paths["wf"])
        getattr(workflows, job)(store, DEFAULT)
        store.close()
    a, b, c = (_layers(paths[n]) for n in ("cli", "api", "wf"))
    names = ("grids", "buildings", "staff", "access", "coverage", "coverage_gaps", "norms")
    assert_same_layers(a, c, names)
    assert_same_layers(b, c, names)


def test_the_served_demo_is_the_demo_workflow(demo_city_gpkg, city_workspace, tmp_path):
    """api.demo's workspace is the demo's delineation and coverage steps, recount
    included (the copy that skipped it is gone)."""
    from api.demo import demo_layers

    served = demo_layers(households=10_000, seed=7)
    path = city_workspace(demo_city_gpkg)
    store = GeoPackageStore(path)
    results = workflows.run_demo(store, DEFAULT, tmp_path, steps=["coverage", "delineate"])
    store.close()
    assert [r.operation for r in results] == ["delineate", "coverage"]  # the list's order
    mine = _layers(path)
    assert_same_layers(served, mine, ("grids", "buildings", "staff", "coverage", "access"))


def test_demo_steps_are_an_explicit_ordered_list():
    names = [s.name for s in workflows.DEMO_STEPS]
    assert names[:2] == ["delineate", "coverage"] and names[-1] == "maps"
    assert len(set(names)) == len(names)
    with pytest.raises(InputError, match="unknown demo steps: nope"):
        workflows.run_demo(None, DEFAULT, None, steps=["nope"])  # type: ignore[arg-type]


def test_missing_layers_are_named_by_every_face(tmp_path):
    store = GeoPackageStore(tmp_path / "empty.gpkg")
    store.write("roads", pd.DataFrame({"k": [1]}))
    with pytest.raises(workflows.MissingLayerError) as err:
        workflows.delineate(store, DEFAULT)
    assert err.value.layer == "buildings" and err.value.exit_code == 2
    with pytest.raises(workflows.MissingLayerError):
        workflows.assign(store, DEFAULT)
    store.close()
