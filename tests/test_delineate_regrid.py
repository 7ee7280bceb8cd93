"""Issue 16 point 5: minimal-change re-grid — only the communities whose households
changed beyond grid.redivide_min_change_households are divided again; locked grids and
every other grid keep geometry and code."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgis.crs import metric_crs_for
from gridgis.delineate import changed_communities, delineate, regrid
from gridgis.errors import NotFoundError
from gridgis.standards import Settings

S = Settings()


@pytest.fixture(scope="module")
def before():
    from gridgis.synth import make_city

    city = make_city(households=10_000, seed=7, settings=S)
    layers = dict(city.layers)
    r = delineate(layers, S, issued_at="2026-01-01T00:00:00+00:00")
    layers["buildings"] = r.buildings
    return layers, r


def new_estate(layers, community_code: str, households=(200, 200, 200)) -> gpd.GeoDataFrame:
    """Buildings of a new 600-household estate on free ground of one community."""
    comm = layers["communities"]
    crs = metric_crs_for(comm)
    poly = comm.to_crs(crs).set_index("community_code").geometry[community_code]
    taken = shapely.union_all(layers["buildings"].to_crs(crs).geometry.to_numpy()).buffer(15)
    x0, y0, x1, y1 = poly.bounds
    spots = [
        shapely.box(x - 10, y - 6, x + 10, y + 6)
        for x in np.arange(x0 + 20, x1 - 20, 25.0)
        for y in np.arange(y0 + 20, y1 - 20, 25.0)
    ]
    free = [b for b in spots if poly.contains(b.buffer(5)) and not b.intersects(taken)]
    assert len(free) >= len(households)
    rows = [
        {
            "building_id": f"NEW{i}",
            "households": hh,
            "use": "residential",
            "geometry": free[i * 7 % len(free)],
        }
        for i, hh in enumerate(households)
    ]
    new = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_crs("EPSG:4326")
    return pd.concat([layers["buildings"], new], ignore_index=True)


def test_a_new_estate_changes_only_its_community(before):
    layers, r0 = before
    target = sorted(r0.grids["community_code"].unique())[1]
    lay = dict(layers, buildings=new_estate(layers, target))
    table = changed_communities(lay["communities"], lay["buildings"], r0.grids, S)
    assert table.loc[table["changed"], "community_code"].tolist() == [target]
    row = table.set_index("community_code").loc[target]
    assert row["households_now"] - row["households_before"] == 600
    r1 = regrid(lay, r0.grids, S, registry=r0.registry)
    old = r0.grids.set_index("grid_code")
    new = r1.grids.set_index("grid_code")
    others = old[old["community_code"] != target]
    # every grid of the other communities: same code, same geometry
    assert set(others.index) <= set(new.index)
    assert new.loc[others.index].geometry.geom_equals_exact(others.geometry, 1e-9).all()
    # the community with the estate was divided again, holding the new households
    mine = new[new["community_code"] == target]
    assert mine["households"].sum() == row["households_now"]
    assert r1.params["regrid"]["communities_divided_again"] == [target]
    # every building in a grid; the new ones in the target community
    b = r1.buildings
    assert b["grid_code"].notna().all()
    assert (b.loc[b["building_id"].str.startswith("NEW"), "community_code"] == target).all()
    # codes never reissued: a code retired in the registry is not a grid code now
    retired = set(r1.registry.loc[r1.registry["status"] == "retired", "grid_code"])
    assert not retired & set(new.index)


def test_locked_grids_stay_as_they_are(before):
    layers, r0 = before
    target = sorted(r0.grids["community_code"].unique())[1]
    lay = dict(layers, buildings=new_estate(layers, target))
    mine = r0.grids[r0.grids["community_code"] == target]
    lock = mine["grid_code"].iloc[0]
    r1 = regrid(lay, r0.grids, S, lock=[lock], registry=r0.registry)
    new = r1.grids.set_index("grid_code")
    assert lock in new.index
    assert new.loc[lock].geometry.equals_exact(mine.set_index("grid_code").geometry[lock], 1e-9)
    # the rest of the community tiles around it, no overlap
    crs = metric_crs_for(r1.grids)
    g = r1.grids[r1.grids["community_code"] == target].to_crs(crs)
    assert g.geometry.area.sum() - shapely.union_all(g.geometry.to_numpy()).area < 1.0
    with pytest.raises(NotFoundError, match="999"):
        regrid(lay, r0.grids, S, lock=[target + "999"])


def test_nothing_changed_keeps_every_grid(before):
    layers, r0 = before
    r1 = regrid(layers, r0.grids, S, registry=r0.registry)
    assert r1.params["regrid"]["communities_divided_again"] == []
    assert r1.grids["grid_code"].tolist() == r0.grids["grid_code"].tolist()


def test_cli_changed_and_lock(demo_delineated_gpkg, city_workspace):
    """``gridgis delineate --changed --lock CODE``: a new 600-household estate in one
    community changes only that community's grids; the locked one stays."""
    from typer.testing import CliRunner

    from gridgis.cli import app
    from gridgis.store import GeoPackageStore

    ws = city_workspace(demo_delineated_gpkg)
    store = GeoPackageStore(ws)
    grids0 = store.read("grids")
    layers = {n: store.read(n) for n in ("communities", "buildings")}
    target = sorted(grids0["community_code"].unique())[0]
    store.write("buildings", new_estate(layers, target))
    lock = grids0.loc[grids0["community_code"] == target, "grid_code"].iloc[-1]
    run = CliRunner().invoke(
        app, ["delineate", "--workspace", str(ws), "--changed", "--lock", lock]
    )
    assert run.exit_code == 0, run.output
    grids1 = store.read("grids").set_index("grid_code")
    old = grids0.set_index("grid_code")
    others = old[old["community_code"] != target]
    assert set(others.index) | {lock} <= set(grids1.index)
    assert grids1.loc[others.index].geometry.geom_equals_exact(others.geometry, 1e-7).all()
    assert grids1.loc[[lock]].geometry.geom_equals_exact(old.loc[[lock]].geometry, 1e-7).all()
    b = store.read("buildings")
    assert b.loc[b["building_id"].str.startswith("NEW"), "grid_code"].notna().all()
    new_hh = grids1.loc[grids1["community_code"] == target, "households"].sum()
    assert new_hh == old.loc[old["community_code"] == target, "households"].sum() + 600
