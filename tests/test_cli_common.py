"""What the commands share (gridgis.cli.common): reading the layers a workspace has,
naming the one it lacks, opening a workspace after the rules, one progress bar a step."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import typer
from shapely.geometry import Point
from typer.testing import CliRunner

from gridgis.cli import app
from gridgis.cli.common import (
    layers_note,
    open_workspace,
    progress_of,
    read_present,
    require_layers,
)
from gridgis.errors import NotFoundError
from gridgis.store import GeoPackageStore


def frame(n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"n": list(range(n))},
        geometry=[Point(118.78 + i * 1e-3, 32.04) for i in range(n)],
        crs=4326,
    )


@pytest.fixture()
def ws(tmp_path) -> GeoPackageStore:
    store = GeoPackageStore(tmp_path / "ws.gpkg")
    store.write_many(
        {"beta": frame(2), "alpha": frame(3), "table": pd.DataFrame({"k": ["a", "b", "c", "d"]})}
    )
    return store


def test_read_present_reads_only_what_is_there_in_the_order_asked(ws):
    got = read_present(ws, ["gamma", "table", "alpha", "beta"])
    assert list(got) == ["table", "alpha", "beta"]
    assert [len(f) for f in got.values()] == [4, 3, 2]
    pd.testing.assert_frame_equal(got["alpha"], ws.read("alpha"))
    assert read_present(ws, ["alpha", "beta"], present={"beta"}).keys() == {"beta"}
    assert read_present(ws, []) == {}


def test_require_layers_names_the_first_missing_layer_and_what_there_is(ws):
    assert require_layers(ws, ["alpha", "table"]) == {"alpha", "beta", "table"}
    with pytest.raises(NotFoundError) as err:
        require_layers(ws, ["alpha", "roads", "grids"], " — import roads first")
    assert str(err.value) == (
        f"{ws.location}: no layer 'roads' — import roads first (layers: alpha, beta, table)"
    )
    with pytest.raises(NotFoundError) as err:
        require_layers(ws, ["grids"], kind="grid layer", hint="; name it with --grids")
    assert str(err.value) == (
        f"{ws.location}: no grid layer 'grids' (layers: alpha, beta, table); name it with --grids"
    )
    assert layers_note([]) == "(layers: none)"


def test_commands_name_the_missing_layer_the_same_way(ws):
    runner = CliRunner()
    want = {
        ("assign",): "no layer 'grids' — delineate grids first or import the city's "
        "grids (layers: alpha, beta, table)",
        ("audit", "--grids", "city"): "no layer 'city' (layers: alpha, beta, table); name the "
        "grid layer with --grids",
        ("delineate",): "no layer 'buildings' — import buildings first (layers: alpha, beta, "
        "table)",
        ("coverage",): "no layer 'buildings' — coverage needs buildings and roads (layers: "
        "alpha, beta, table)",
    }
    for args, message in want.items():
        res = runner.invoke(app, [*args, "--workspace", str(ws.location)])
        assert res.exit_code == 2, res.output
        assert " ".join(res.output.split()) == f"error: {ws.location}: {message}"


def test_open_workspace_checks_the_rules_before_opening(tmp_path, capsys):
    target = tmp_path / "new.gpkg"
    with pytest.raises(typer.Exit) as stop:
        with open_workspace(target, None, None, ["grid.no_such_rule=1"], must_exist=False):
            pytest.fail("the block must not run with a bad rule")
    assert stop.value.exit_code == 2 and not target.exists()
    assert "grid.no_such_rule" in capsys.readouterr().err


def test_open_workspace_turns_library_errors_into_exit_2(ws, capsys):
    with pytest.raises(typer.Exit) as stop:
        with open_workspace(ws.location, None, None, ["grid.max_households=450"]) as (
            store,
            settings,
        ):
            assert settings.grid.max_households == 450
            assert store.layers() == ws.layers()
            require_layers(store, ["grids"])
    assert stop.value.exit_code == 2
    assert "no layer 'grids'" in capsys.readouterr().err


def test_progress_of_yields_a_callback_or_none():
    with progress_of("step") as callback:
        assert callback is not None
        callback(1, 4)
        callback(4, 4)
    with progress_of("quiet step", show=False) as callback:
        assert callback is None
