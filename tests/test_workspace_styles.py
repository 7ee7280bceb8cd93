"""A GeoPackage workspace carries the maps' QGIS styles after `gridgis map` (issue 17.3):
QGIS opens it with the web maps' picture; layers and their metadata are unchanged."""

from __future__ import annotations

import sqlite3

from gridgis import workflows
from gridgis.standards import DEFAULT
from gridgis.store import GeoPackageStore


def test_map_writes_layer_styles_into_the_workspace(city_workspace, demo_delineated_gpkg, tmp_path):
    path = city_workspace(demo_delineated_gpkg)
    store = GeoPackageStore(path)
    layers, grids = store.layers(), store.read("grids")
    job = workflows.make_map(store, DEFAULT, tmp_path / "maps", boards=False)
    assert any("QGIS layer styles" in n for n in job.notes)
    assert store.layers() == layers  # layer_styles is no workspace layer
    assert len(store.read("grids")) == len(grids)
    with sqlite3.connect(path) as con:
        rows = con.execute(
            "SELECT f_table_name, useAsDefault, styleQML FROM layer_styles"
        ).fetchall()
    styled = {r[0]: r for r in rows}
    assert "grids" in styled and styled["grids"][1] == 1
    assert "<qgis" in styled["grids"][2] and "households" in styled["grids"][2]
    # again: replaced, never duplicated
    workflows.make_map(store, DEFAULT, tmp_path / "maps2", boards=False)
    with sqlite3.connect(path) as con:
        n = con.execute("SELECT count(*) FROM layer_styles WHERE f_table_name='grids'").fetchone()
    assert n[0] == 1
