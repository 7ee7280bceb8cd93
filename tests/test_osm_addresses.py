"""End to end on a real OpenStreetMap extract: the addresses of its ``addr:*`` tags make
``gridgis lookup`` work on a workspace built from OSM alone (import, delineate
communities, look up a door plate). Skipped when ../shared/data is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridgis.cli import app
from gridgis.store import open_store

DATA = Path(__file__).parents[2] / "shared" / "data"
PKU_OSM = DATA / "beijing-haidian-osm" / "pku_zhongguancun_map_2017.osm"


@pytest.mark.shared
@pytest.mark.skipif(not PKU_OSM.exists(), reason="needs ../shared/data")
def test_lookup_of_an_osm_door_plate_in_beijing(tmp_path):
    ws = str(tmp_path / "pku.gpkg")
    runner = CliRunner()
    run = runner.invoke(app, ["import", str(PKU_OSM), "--workspace", ws])
    assert run.exit_code == 0, run.output
    addr = open_store(ws).read("addresses").set_index("address_id")
    # 成府路 43 (a node) and the buildings with a door plate (东升大厦, 中关村东路 8)
    assert addr.loc["osm_n1732906960", "text"] == "成府路43号"
    assert addr.loc["osm_w33457835", "building_id"] == "osm_w33457835"
    run = runner.invoke(
        app, ["delineate", "--communities", "--county", "110108", "--workspace", ws]
    )
    assert run.exit_code == 0, run.output
    run = runner.invoke(app, ["lookup", "--workspace", ws, "成府路43号"])
    assert run.exit_code == 0, run.output
    got = json.loads(run.stdout)
    assert got["confident"] and got["match_level"] == "door_plate"
    assert got["address_id"] == "osm_n1732906960" and got["parsed"]["road"] == "成府路"
    code = got["grid"]["grid_code"]
    assert len(code) == 15 and code.startswith("110108")
    assert got["community"]["code"] == code[:12] and got["street"]["code"] == code[:9]
    # a door number that is not in OSM is not guessed
    run = runner.invoke(app, ["lookup", "--workspace", ws, "成府路44号"])
    miss = json.loads(run.stdout)
    assert not miss["confident"] and miss["grid"] is None
