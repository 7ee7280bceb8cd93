"""Delineation on real OpenStreetMap extracts (issues 11 and 15): the crossings delineation
reports are the audit's; communities never hold 0 households; no sliver grid without a
flag; no building cut. Skipped without ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from gridgis.audit import audit_grids
from gridgis.crs import metric_crs_for
from gridgis.delineate import delineate, make_communities
from gridgis.standards import Settings

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PKU = DATA / "beijing-haidian-osm" / "pku_zhongguancun_map_2017.osm"
CAU = DATA / "beijing-haidian-osm" / "cau_xueyuanlu_map.osm.pbf"
NANJING = DATA / "nanjing-xinjiekou-osm" / "nanjing_osm_bbox.osm.pbf"
S = Settings()


def _import(path: Path) -> dict:
    from gridgis.io.osm import read_osm
    from gridgis.layers import validate

    return {k: validate(v, k, source=str(path)).data for k, v in read_osm(path).items()}


_CACHE: dict = {}


def delineated(path: Path, county: str):
    """(layers with made communities, delineation result), once per extract."""
    if path not in _CACHE:
        lay = _import(path)
        comm, _ = make_communities(lay, S, county_code=county)
        lay["communities"] = comm
        _CACHE[path] = (lay, delineate(lay, S))
    return _CACHE[path]


def road_crossings(result) -> dict[str, float]:
    f = result.findings
    f = f[(f["finding"] == "crosses") & f["line"].astype(str).str.startswith("road:")]
    return {k: round(v, 1) for k, v in f.groupby("grid_code")["length_m"].sum().items()}


EXTRACTS = [
    pytest.param(PKU, "110108", id="beijing-pku"),
    pytest.param(CAU, "110108", id="beijing-cau"),
    pytest.param(NANJING, "320102", id="nanjing"),
]


@pytest.mark.shared
@pytest.mark.parametrize("path,county", EXTRACTS)
def test_delineate_and_audit_report_the_same_crossings(path, county):
    if not path.exists():
        pytest.skip("needs ../shared/data")
    lay, r = delineated(path, county)
    audit = audit_grids(r.grids, lay, S, checks=["arterial_crossing"])
    art = audit.findings
    from_audit = {c: round(v, 1) for c, v in zip(art["grid_code"], art["value"], strict=True)}
    assert road_crossings(r) == pytest.approx(from_audit, abs=0.5)
    # each crossing grid is flagged, and its grid row counts the lines
    flagged = r.grids.set_index("grid_code")["flags"]
    for code in from_audit:
        assert "crosses_arterial: " in flagged[code]


@pytest.mark.shared
@pytest.mark.parametrize("path,county", EXTRACTS)
def test_real_extracts_have_no_empty_community_or_unexplained_sliver(path, county):
    if not path.exists():
        pytest.skip("needs ../shared/data")
    lay, r = delineated(path, county)
    comm = lay["communities"]
    assert (comm["households"] > 0).all(), comm[["community_code", "households"]]
    # communities outside the band, or straddling an arterial, say why
    cmin, cmax = S.grid.community_min_households, S.grid.community_max_households
    odd = ~comm["households"].between(cmin, cmax)
    assert (comm.loc[odd, "flags"] != "").all()
    assert comm["name"].str.startswith("生成社区").all()
    g = r.grids
    res = g[g["kind"] == "residential"]
    lo, hi = S.grid.min_households, S.grid.max_households
    out = ~res["households"].between(lo, hi)
    assert (res.loc[out, "flags"] != "").all(), res.loc[out, ["grid_code", "households"]]
    # no residential grid without households
    assert (res["households"] > 0).all(), res.loc[res["households"] == 0, "grid_code"]
    # unit grids with residents are within the band or flagged
    unit = g[(g["kind"] == "unit") & (g["households"] > 0)]
    assert ((unit["households"] <= hi) | (unit["flags"] != "")).all()


@pytest.mark.shared
@pytest.mark.parametrize("path,county", EXTRACTS)
def test_real_extracts_cut_no_building(path, county):
    """Every building lies in one grid, except where a community boundary cuts it."""
    if not path.exists():
        pytest.skip("needs ../shared/data")
    lay, r = delineated(path, county)
    crs = metric_crs_for(r.grids)
    gm = r.grids.to_crs(crs).geometry.to_numpy()
    bm = lay["buildings"].to_crs(crs).geometry.to_numpy()
    cm = lay["communities"].to_crs(crs).geometry.to_numpy()
    borders = shapely.union_all(shapely.boundary(gm))
    comm_borders = shapely.union_all(shapely.boundary(cm))
    inner = shapely.buffer(bm, -0.5)  # a border along a wall is not a cut
    cut = shapely.intersects(inner, borders) & ~shapely.intersects(inner, comm_borders)
    cut &= shapely.area(bm) > 20
    ids = lay["buildings"]["building_id"].to_numpy()[cut]
    assert len(ids) == 0, ids[:10]


@pytest.mark.shared
def test_every_building_of_the_extract_is_in_a_grid_and_community():
    if not CAU.exists():
        pytest.skip("needs ../shared/data (Beijing OSM)")
    lay, r = delineated(CAU, "110108")
    b = r.buildings
    assert b["grid_code"].notna().all()
    # the campus reaching west beyond its buildings is in grids: every address is
    addr = lay["addresses"].to_crs(metric_crs_for(r.grids)).geometry.to_numpy()
    cover = shapely.union_all(r.grids.to_crs(metric_crs_for(r.grids)).geometry.to_numpy())
    assert shapely.covers(cover, addr).all()
    per_grid = pd.to_numeric(b["households"]).fillna(0).groupby(b["grid_code"]).sum()
    g = r.grids.set_index("grid_code")["households"]
    assert np.array_equal(per_grid.reindex(g.index, fill_value=0).to_numpy(), g.to_numpy())


@pytest.mark.shared
def test_cli_communities_of_a_real_street_never_take_a_real_committee_code(tmp_path):
    """Issue 12 point 7: ``delineate --communities --street 学院路街道`` on the Beijing
    extract: codes start 110108010 and none is a code the national table gives a
    committee."""
    from typer.testing import CliRunner

    from gridgis.cli import app
    from gridgis.io import import_into
    from gridgis.store import open_store

    if not CAU.exists():
        pytest.skip("needs ../shared/data (Beijing OSM)")
    divisions = pytest.importorskip("gridgis.divisions")
    if not divisions.available():
        pytest.skip("the national division table is not installed")
    ws = tmp_path / "bj.gpkg"
    import_into(open_store(ws), [CAU])
    args = ["delineate", "--workspace", str(ws), "--communities", "--street", "学院路街道"]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    comm = open_store(ws).read("communities")
    assert comm["community_code"].str.startswith("110108010").all()
    taken = set(divisions.community_codes_of("110108010"))
    assert taken and not taken & set(comm["community_code"])
    assert comm["name"].str.startswith("生成社区").all()


@pytest.mark.shared
def test_cli_communities_with_a_county_only_skip_the_placeholder_streets_committees(tmp_path):
    """With ``--county`` only, communities take the placeholder street <county>001 (a real
    street: 110108001 万寿路街道): their codes skip every code the table gives its
    committees."""
    from typer.testing import CliRunner

    from gridgis.cli import app
    from gridgis.io import import_into
    from gridgis.store import open_store

    if not CAU.exists():
        pytest.skip("needs ../shared/data (Beijing OSM)")
    divisions = pytest.importorskip("gridgis.divisions")
    if not divisions.available():
        pytest.skip("the national division table is not installed")
    ws = tmp_path / "bj.gpkg"
    import_into(open_store(ws), [CAU])
    run = CliRunner().invoke(
        app, ["delineate", "--workspace", str(ws), "--communities", "--county", "110108"]
    )
    assert run.exit_code == 0, run.output
    comm = open_store(ws).read("communities")
    taken = set(divisions.community_codes_of("110108001"))
    assert taken and comm["community_code"].str.startswith("110108001").all()
    assert not taken & set(comm["community_code"])
