"""The GeoPackage workspace: round trips with canonical dtypes, filters, metadata, and
atomic writes (a failed, interrupted or killed write leaves the previous file whole)."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from gridgis.layers import SCHEMA, validate
from gridgis.store import SCHEMA_VERSION, GeoPackageStore, StoreError, open_store

X0, Y0 = 118.78, 32.04


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path, workspace: str = "ws.gpkg") -> list[str]:
    """Files in the workspace's directory other than the workspace itself."""
    return sorted(p.name for p in directory.iterdir() if p.name != workspace)


def square(i: int, d: float = 0.0005) -> Polygon:
    x = X0 + (i % 20) * 0.001
    y = Y0 + (i // 20) * 0.001
    return box(x, y, x + d, y + d)


@pytest.fixture()
def buildings() -> gpd.GeoDataFrame:
    """A validated buildings layer with nulls in every nullable dtype."""
    raw = gpd.GeoDataFrame(
        {
            "building_id": ["007", "b2", "b3", "b4"],
            "name": ["一号楼", None, "三号楼", "O'Brien Tower"],
            "households": [120, None, 36, None],
            "floors": [6, 3, None, 18],
            "use": ["residential", "commercial", None, "residential"],
            "compound": ["翠苑", "翠苑", None, None],
        },
        geometry=[square(i) for i in range(4)],
        crs="EPSG:4326",
    )
    return validate(raw, "buildings").data


@pytest.fixture()
def staff() -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "staff_id": ["s1", "s2"],
            "name": ["张三", "李四"],
            "role": ["网格长", "网格员"],
            "community_code": ["320106001001", None],
            "grid_code": ["320106001001001", "320106001001002"],
            "phone": ["13800000000", None],
        }
    )
    return validate(raw, "staff").data


@pytest.fixture()
def ws(tmp_path) -> GeoPackageStore:
    return open_store(tmp_path / "ws.gpkg")


def roads(n: int = 3) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "road_id": [f"r{i}" for i in range(n)],
            "name": ["中山路"] * n,
            "road_class": ["arterial"] * n,
        },
        geometry=[
            LineString([(X0, Y0 + i * 0.001), (X0 + 0.01, Y0 + i * 0.001)]) for i in range(n)
        ],
        crs="EPSG:4326",
    )


# --------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------
def test_round_trip_keeps_canonical_dtypes_and_nulls(ws, buildings, staff):
    ws.write_many({"buildings": buildings, "staff": staff}, params={"source": "test"})
    b = ws.read("buildings")
    assert isinstance(b, gpd.GeoDataFrame) and b.crs.to_epsg() == 4326
    assert b.dtypes["households"] == "Int64" and b.dtypes["floors"] == "Int64"
    assert b.dtypes["households_estimated"] == "boolean"
    assert b.dtypes["building_id"] == "string" and b.dtypes["name"] == "string"
    pd.testing.assert_frame_equal(
        pd.DataFrame(b.drop(columns="geometry")), pd.DataFrame(buildings.drop(columns="geometry"))
    )
    assert shapely.equals_exact(b.geometry.values, buildings.geometry.values, 0).all()
    assert b.loc[0, "building_id"] == "007"  # leading zeros kept
    assert b["households"].isna().sum() == 0  # b2 commercial -> 0, b4 est.
    assert list(b["households_estimated"]) == [False, False, False, True]
    assert b["compound"].isna().tolist() == [False, False, True, True]
    s = ws.read("staff")
    assert type(s) is pd.DataFrame  # a table, not a layer
    pd.testing.assert_frame_equal(s, staff)
    assert s.loc[0, "community_code"] == "320106001001" and pd.isna(s.loc[1, "community_code"])


def test_derived_layer_codes_stay_text(ws):
    grids = gpd.GeoDataFrame(
        {
            "grid_code": ["320106001001001", "320106001001002"],
            "label": ["001", "002"],
            "households": [300, 420],
            "shared": [True, False],
        },
        geometry=[square(0), square(1)],
        crs="EPSG:4326",
    )
    ws.write("grids", grids)
    g = ws.read("grids")
    assert list(g["grid_code"]) == ["320106001001001", "320106001001002"]
    assert list(g["label"]) == ["001", "002"]
    assert list(g["households"]) == [300, 420] and list(g["shared"]) == [True, False]


def test_nullable_ints_and_bools_survive_on_any_layer(ws):
    """Int64 / boolean columns holding nulls come back nullable, not as float64, on the
    canonical layers and on derived ones (grids) alike."""
    frame = gpd.GeoDataFrame(
        {
            "building_id": ["a", "b", "c"],
            "households": pd.array([120, None, 3], dtype="Int64"),
            "households_estimated": pd.array([True, None, False], dtype="boolean"),
            "shared": pd.array([None, True, False], dtype="boolean"),
            "staff": pd.array([None, 2, 5], dtype="Int64"),
            "street_code": ["320106001", None, "320106002"],
        },
        geometry=[Point(X0, Y0)] * 3,
        crs="EPSG:4326",
    )
    ws.write_many({"buildings": frame, "grids": frame})
    for name in ("buildings", "grids"):
        back = ws.read(name)
        for col in ("households", "staff"):
            assert back[col].dtype == "Int64", (name, col)
            assert back[col].isna().tolist() == frame[col].isna().tolist()
        for col in ("households_estimated", "shared"):
            assert back[col].dtype == "boolean", (name, col)
        assert back["households"].tolist()[0] == 120 and back["shared"].tolist()[1] is True
        assert back["street_code"].tolist()[0] == "320106001"
        assert pd.isna(back["street_code"].tolist()[1])


def test_demo_city_round_trip(ws):
    synth = pytest.importorskip("gridgis.synth")
    city = synth.make_city(households=10_000)
    ws.write_many(city.layers, params={"seed": 7})
    # every layer the demo city makes (canonical layers it has no data for, such as
    # compounds and gates, are not made)
    assert set(city.layers) <= set(ws.layers())
    assert len(set(city.layers) & set(SCHEMA)) >= 8
    for name, frame in city.layers.items():
        back = ws.read(name)
        assert len(back) == len(frame), name
        assert list(back.columns) == list(frame.columns), name
        if name in SCHEMA:
            key = SCHEMA[name].key
            assert back[key].tolist() == frame[key].astype(str).tolist(), name
    assert ws.read("buildings")["households"].sum() == city.layers["buildings"]["households"].sum()


def test_empty_layer_round_trip_stays_a_layer(ws, buildings):
    ws.write("buildings", buildings.iloc[:0])
    back = ws.read("buildings")
    assert len(back) == 0
    assert isinstance(back, gpd.GeoDataFrame) and back.crs.to_epsg() == 4326
    assert list(back.columns) == list(buildings.columns)


def test_write_replaces_a_layer(ws, buildings):
    ws.write("buildings", buildings)
    ws.write("buildings", buildings.iloc[:2])
    assert len(ws.read("buildings")) == 2 and ws.info("buildings").rows == 2


def test_list_and_dict_values_stored_as_json(ws):
    f = gpd.GeoDataFrame(
        {"tags": [["a", "b"], {"k": "值"}]}, geometry=[Point(X0, Y0), Point(X0, Y0)], crs=4326
    )
    ws.write("tagged", f)
    assert list(ws.read("tagged")["tags"]) == ['["a", "b"]', '{"k": "值"}']


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------
@pytest.fixture()
def points_ws(ws) -> tuple[GeoPackageStore, gpd.GeoDataFrame]:
    rng = np.random.default_rng(1)
    n = 400
    pts = gpd.GeoDataFrame(
        {
            "facility_id": [f"f{i}" for i in range(n)],
            "category": rng.choice(["kindergarten", "retail", "park"], n),
            "floor_area_m2": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(50, 500, n)),
            "name": rng.choice(["甲", "O'Hare", None], n),
        },
        geometry=gpd.points_from_xy(X0 + rng.uniform(0, 0.02, n), Y0 + rng.uniform(0, 0.02, n)),
        crs="EPSG:4326",
    )
    frame = validate(pts, "facilities").data
    ws.write("facilities", frame)
    return ws, frame


def test_bbox_filter_matches_independent_selection(points_ws):
    ws, frame = points_ws
    bbox = (X0 + 0.005, Y0 + 0.002, X0 + 0.012, Y0 + 0.015)
    got = set(ws.read("facilities", bbox=bbox)["facility_id"])
    expected = set(frame.loc[frame.intersects(box(*bbox)), "facility_id"])
    assert got == expected and 0 < len(got) < len(frame)


def test_where_filter_and_null_and_quotes(points_ws):
    ws, frame = points_ws
    got = ws.read("facilities", where={"category": "park"})
    assert set(got["facility_id"]) == set(frame.loc[frame.category == "park", "facility_id"])
    both = ws.read(
        "facilities",
        where={"category": "park", "name": "O'Hare"},
        bbox=(X0, Y0, X0 + 0.01, Y0 + 0.01),
    )
    sel = frame[
        (frame.category == "park")
        & (frame.name == "O'Hare")
        & frame.intersects(box(X0, Y0, X0 + 0.01, Y0 + 0.01))
    ]
    assert set(both["facility_id"]) == set(sel["facility_id"])
    nulls = ws.read("facilities", where={"floor_area_m2": None})
    assert set(nulls["facility_id"]) == set(frame.loc[frame.floor_area_m2.isna(), "facility_id"])
    with pytest.raises(StoreError, match="nosuch"):
        ws.read("facilities", where={"nosuch": 1})


def test_read_missing_layer_names_it(ws, buildings):
    ws.write("buildings", buildings)
    with pytest.raises(StoreError, match="no layer 'roads'.*buildings"):
        ws.read("roads")


# --------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------
def test_layer_metadata_crs_bounds_params(ws, buildings):
    params = {
        "settings": {"buildings": {"gross_floor_area_per_household_m2": 100.0}},
        "metric_crs": "EPSG:4549",
        "source": "楼栋.shp",
    }
    ws.write("buildings", buildings, params=params)
    info = ws.info("buildings")
    assert info.rows == 4 and info.crs == "EPSG:4326" and info.geometry_type == "Polygon"
    np.testing.assert_allclose(info.bounds, buildings.total_bounds)
    assert info.params == params
    assert info.written_at.startswith(str(datetime.now(UTC).year))
    assert set(ws.info()) == {"buildings"}


def test_numpy_parameters_stored_as_numbers(ws, buildings):
    params = {
        "households": np.int64(30_000),
        "share": np.float32(0.5),
        "bounds": np.array([118.7, 32.0]),
        "flags": (np.bool_(True),),
        "out": Path("out/demo.gpkg"),
    }
    ws.write("buildings", buildings, params=params)
    assert ws.info("buildings").params == {
        "households": 30_000,
        "share": 0.5,
        "bounds": [118.7, 32.0],
        "flags": [True],
        "out": "out/demo.gpkg",
    }
    ws.set_meta(households=np.int64(30_000))
    assert ws.meta()["households"] == 30_000


def test_workspace_metadata(tmp_path, buildings):
    ws = open_store(tmp_path / "ws.gpkg")
    assert ws.meta() == {} and ws.layers() == []
    ws.write("buildings", buildings)
    meta = ws.meta()
    assert meta["schema_version"] == SCHEMA_VERSION and "created_at" in meta
    ws.set_meta(synthetic=True, city="演示市", settings={"grid": {"min_households": 250}})
    again = open_store(tmp_path / "ws.gpkg", create=False)  # persisted
    assert again.meta()["city"] == "演示市" and again.meta()["synthetic"] is True
    assert again.meta()["settings"] == {"grid": {"min_households": 250}}
    assert again.meta()["created_at"] == meta["created_at"]
    assert again.has("buildings") and not again.has("roads")


def test_file_is_a_plain_geopackage(tmp_path, buildings, staff):
    ws = open_store(tmp_path / "ws.gpkg")
    ws.write_many({"buildings": buildings, "staff": staff})
    listed = {name for name, _ in pyogrio.list_layers(tmp_path / "ws.gpkg")}
    assert {"buildings", "staff"} <= listed
    other = gpd.read_file(tmp_path / "ws.gpkg", layer="buildings")  # any GIS can open it
    assert len(other) == 4 and other.crs.to_epsg() == 4326


# --------------------------------------------------------------------------------------
# Atomicity
# --------------------------------------------------------------------------------------
def test_failed_second_frame_leaves_file_byte_identical(tmp_path, ws, buildings):
    ws.write("buildings", buildings)
    before = sha(tmp_path / "ws.gpkg")
    no_crs = roads().set_crs(None, allow_override=True)
    with pytest.raises(StoreError, match="'roads' has no CRS"):
        ws.write_many({"buildings": buildings.iloc[:1], "roads": no_crs})
    assert sha(tmp_path / "ws.gpkg") == before
    assert leftovers(tmp_path) == []
    assert ws.layers() == ["buildings"] and len(ws.read("buildings")) == 4


def test_unwritable_column_leaves_file_byte_identical(tmp_path, ws, buildings):
    ws.write("buildings", buildings)
    before = sha(tmp_path / "ws.gpkg")
    bad = roads()
    bad["impedance"] = [1 + 2j, 3j, 0j]  # GDAL has no complex field type
    with pytest.raises(StoreError, match="'roads'"):
        ws.write_many({"buildings": buildings.iloc[:1], "roads": bad})
    assert sha(tmp_path / "ws.gpkg") == before
    assert leftovers(tmp_path) == []


def test_first_write_that_fails_creates_nothing(tmp_path, ws):
    with pytest.raises(StoreError):
        ws.write("roads", roads().set_crs(None, allow_override=True))
    assert list(tmp_path.iterdir()) == []


def test_interrupted_replace_leaves_old_file(tmp_path, ws, buildings, monkeypatch):
    ws.write("buildings", buildings)
    before = sha(tmp_path / "ws.gpkg")

    def power_cut(src, dst):
        raise OSError("simulated power cut before rename")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        ws.write("roads", roads())
    with pytest.raises(OSError, match="power cut"):
        ws.set_meta(city="x")
    with pytest.raises(OSError, match="power cut"):
        ws.delete("buildings")
    monkeypatch.undo()
    assert sha(tmp_path / "ws.gpkg") == before
    assert leftovers(tmp_path) == []
    assert ws.layers() == ["buildings"] and "city" not in ws.meta()


def test_interrupt_while_writing_layers(tmp_path, ws, buildings, monkeypatch):
    """An exception raised inside GDAL's write (e.g. disk full, Ctrl-C) after the first
    layer of a write_many already went into the scratch copy."""
    import gridgis.store.gpkg as gpkg

    ws.write("buildings", buildings)
    before = sha(tmp_path / "ws.gpkg")
    real = pyogrio.write_dataframe
    calls = []

    def fail_second(*args, **kwargs):
        calls.append(kwargs.get("layer"))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gpkg.pyogrio, "write_dataframe", fail_second)
    with pytest.raises(KeyboardInterrupt):
        ws.write_many({"roads": roads(), "buildings": buildings.iloc[:1]})
    monkeypatch.undo()
    assert calls == ["roads", "buildings"]
    assert sha(tmp_path / "ws.gpkg") == before and leftovers(tmp_path) == []


KILL_SCRIPT = textwrap.dedent("""
    import sys
    import geopandas as gpd, numpy as np
    from gridgis.store import open_store
    n = int(sys.argv[2])
    rng = np.random.default_rng(0)
    pts = gpd.GeoDataFrame({"facility_id": [f"f{i}" for i in range(n)],
                            "category": ["retail"] * n, "name": ["某某便利店"] * n},
                           geometry=gpd.points_from_xy(rng.uniform(118, 119, n),
                                                       rng.uniform(32, 33, n)),
                           crs="EPSG:4326")
    ws = open_store(sys.argv[1])
    print("ready", flush=True)
    while True:
        ws.write("facilities", pts)
""")


def test_killed_writer_leaves_old_file_and_next_write_cleans_up(tmp_path, ws, buildings):
    ws.write("buildings", buildings)
    before = sha(tmp_path / "ws.gpkg")
    script = tmp_path.parent / f"{tmp_path.name}_writer.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "ws.gpkg"), "60000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while not any(n.endswith(".tmp.gpkg") for n in leftovers(tmp_path)):
            assert time.monotonic() < deadline, "writer never started"
            assert proc.poll() is None
            time.sleep(0.005)
        time.sleep(0.15)  # well inside the copy / GDAL write
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    after = tmp_path / "ws.gpkg"
    # the writer may have finished whole writes before the kill: then facilities is
    # complete; what must never happen is a torn file or a partial layer
    layers = ws.layers()
    assert "buildings" in layers and len(ws.read("buildings")) == 4
    if "facilities" in layers:
        assert len(ws.read("facilities")) == 60_000
    else:
        assert sha(after) == before
    with sqlite3.connect(after) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the next write through gridgis removes the dead writer's scratch copy
    ws.write("roads", roads())
    assert leftovers(tmp_path) == []
    assert ws.has("roads")


CONCURRENT_SCRIPT = textwrap.dedent("""
    import sys
    import geopandas as gpd
    from shapely.geometry import Point
    from gridgis.store import open_store
    ws = open_store(sys.argv[1])
    for i in range(int(sys.argv[3])):
        g = gpd.GeoDataFrame({"i": [i]}, geometry=[Point(118.8, 32.0)], crs="EPSG:4326")
        ws.write(f"{sys.argv[2]}_{i}", g)
""")


def test_concurrent_writers_lose_nothing(tmp_path, ws, buildings):
    """Two processes writing different layers at once (the API and a CLI import):
    every layer of both ends up in the workspace."""
    ws.write("buildings", buildings)
    script = tmp_path.parent / f"{tmp_path.name}_concurrent.py"
    script.write_text(CONCURRENT_SCRIPT)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / "ws.gpkg"), tag, "4"])
        for tag in ("api", "cli")
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    expected = {"buildings"} | {f"{t}_{i}" for t in ("api", "cli") for i in range(4)}
    assert set(ws.layers()) == expected
    assert set(ws.info()) == expected
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------
# Delete, reserved names, opening
# --------------------------------------------------------------------------------------
def test_delete_removes_layer_and_its_registrations(tmp_path, ws, buildings):
    ws.write_many({"buildings": buildings, "roads": roads()})
    ws.delete("roads")
    assert ws.layers() == ["buildings"] and set(ws.info()) == {"buildings"}
    with pytest.raises(StoreError, match="no layer 'roads'"):
        ws.read("roads")
    with sqlite3.connect(tmp_path / "ws.gpkg") as con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        contents = {r[0] for r in con.execute("SELECT table_name FROM gpkg_contents")}
    assert not any("roads" in t for t in tables) and "roads" not in contents
    assert any(t.startswith("rtree_buildings_") for t in tables)
    listed = {n for n, _ in pyogrio.list_layers(tmp_path / "ws.gpkg")}
    assert listed - {"gridgis_meta", "gridgis_layers"} == {"buildings"}
    assert len(ws.read("buildings")) == 4
    ws.write("roads", roads(2))  # the name is reusable
    assert len(ws.read("roads")) == 2
    with pytest.raises(StoreError, match="no layer 'parks'"):
        ws.delete("parks")


@pytest.mark.parametrize(
    "name",
    [
        "gridgis_meta",
        "gridgis_layers",
        "gpkg_contents",
        "rtree_buildings_geometry",
        "sqlite_master",
        "",
        'bad"name',
    ],
)
def test_reserved_and_unusable_names_refused(tmp_path, ws, buildings, name):
    ws.write("buildings", buildings)
    before = sha(tmp_path / "ws.gpkg")
    with pytest.raises(StoreError, match="layer name"):
        ws.write_many({"roads": roads(), name: roads()})
    assert sha(tmp_path / "ws.gpkg") == before


def test_open_errors(tmp_path, monkeypatch):
    with pytest.raises(StoreError, match="must end in .gpkg"):
        open_store(tmp_path / "ws.shp")
    with pytest.raises(StoreError, match="no such workspace"):
        open_store(tmp_path / "missing.gpkg", create=False)
    fake = tmp_path / "fake.gpkg"
    fake.write_text("not a database")
    with pytest.raises(StoreError, match="not a GeoPackage"):
        open_store(fake)
    monkeypatch.delenv("GRIDGIS_DATABASE_URL", raising=False)
    with pytest.raises(StoreError, match="no workspace"):
        open_store(None)
