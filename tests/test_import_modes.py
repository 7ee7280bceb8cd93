"""Issue 12: explicit write modes, numbers within reason, line numbers and encodings —
on BOTH stores (GeoPackage and a throwaway PostGIS server via gridgis.store.pgtemp).

A refused import must leave the workspace byte-identical: checked with sha256 of the
GeoPackage file, and with a digest of every layer's content for PostGIS.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from gridgis.errors import ConflictError, InputError
from gridgis.standards import Settings
from gridgis.store import open_store
from gridgis.workflows.imports import NothingToImportError, import_files


def fresh_pg_url() -> str:
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


def _box(lon: float, lat: float, size: float = 0.0004) -> shapely.Polygon:
    return shapely.box(lon, lat, lon + size, lat + size)


def _buildings_file(path: Path, ids: list[str], households: list[object] | None = None) -> Path:
    hh = households if households is not None else [30 + i for i in range(len(ids))]
    gpd.GeoDataFrame(
        {"building_id": ids, "households": hh, "use": ["residential"] * len(ids)},
        geometry=[_box(118.78 + 0.001 * i, 32.04) for i in range(len(ids))],
        crs="EPSG:4326",
    ).to_file(path)
    return path


def state(store) -> str:
    """A digest of everything a workspace holds (every layer's rows and the meta), for
    'byte-identical' on PostGIS; for GeoPackage the file's sha256 is checked as well."""
    h = hashlib.sha256()
    for name in sorted(store.layers()):
        frame = store.read(name)
        h.update(name.encode())
        h.update(
            pd.util.hash_pandas_object(
                pd.DataFrame(frame.drop(columns="geometry", errors="ignore")).astype(str),
                index=False,
            )
            .to_numpy()
            .tobytes()
        )
        if "geometry" in frame:
            h.update(b"".join(shapely.to_wkb(frame.geometry.values)))
    h.update(repr(sorted(store.meta().items())).encode())
    return h.hexdigest()


def file_digest(store) -> str | None:
    path = Path(store.location)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


# --------------------------------------------------------------------------------------
# Modes
# --------------------------------------------------------------------------------------


def test_no_mode_into_non_empty_layer_is_refused_and_changes_nothing(store, tmp_path):
    first = import_files(
        store, [_buildings_file(tmp_path / "buildings.geojson", ["b1", "b2", "b3"])]
    )
    assert first.summary() == ["buildings: 0 kept, 3 added, 0 rejected"]
    before, digest = state(store), file_digest(store)
    more = _buildings_file(tmp_path / "more_buildings.geojson", ["b9"])
    with pytest.raises(ConflictError) as exc:
        import_files(store, [more])
    msg = str(exc.value)
    assert "'buildings' already holds 3 rows" in msg and "mode parameter" in msg
    assert "'append'" in msg and "'replace'" in msg and "--" not in msg
    assert exc.value.exit_code == 3 and exc.value.http_status == 409
    assert state(store) == before and file_digest(store) == digest


def test_append_adds_rows_and_rejects_keys_already_stored(store, tmp_path):
    import_files(store, [_buildings_file(tmp_path / "buildings.geojson", ["b1", "b2", "b3", "b4"])])
    more = _buildings_file(tmp_path / "more_buildings.geojson", ["b3", "b9", "b4", "b10"])
    result = import_files(store, [more], mode="append")
    assert result.summary() == ["buildings: 4 kept, 2 added, 2 rejected"]
    got = store.read("buildings")
    assert sorted(got["building_id"]) == ["b1", "b10", "b2", "b3", "b4", "b9"]
    # the stored b3 keeps its households (30 + 2), the imported b3 (30 + 0) is refused
    assert int(got.set_index("building_id").loc["b3", "households"]) == 32
    rej = store.read("rejects")
    assert sorted(rej["value"]) == ["b3", "b4"]
    assert set(rej["row"]) == {0, 2}  # GeoJSON features[0] and features[2]
    assert set(rej["field"]) == {"building_id"}
    assert rej["reason"].str.contains("already in the workspace").all()
    assert rej["source"].str.endswith("more_buildings.geojson").all()
    assert result.to_dict()["layers"]["buildings"]["after"] == 6


def test_replace_replaces_and_keeps_other_layers(store, tmp_path):
    import_files(store, [_buildings_file(tmp_path / "buildings.geojson", ["b1", "b2", "b3"])])
    roads = gpd.GeoDataFrame(
        {"road_id": ["r1"], "road_class": ["arterial"]},
        geometry=[shapely.LineString([(118.78, 32.04), (118.79, 32.04)])],
        crs="EPSG:4326",
    )
    roads.to_file(tmp_path / "roads.geojson")
    import_files(store, [tmp_path / "roads.geojson"])
    result = import_files(
        store, [_buildings_file(tmp_path / "new_buildings.geojson", ["n1"])], mode="replace"
    )
    assert result.summary() == ["buildings: 0 kept, 1 added, 0 rejected"]
    assert list(store.read("buildings")["building_id"]) == ["n1"]
    assert len(store.read("roads")) == 1


def test_all_rejected_header_only_and_empty_collection_change_nothing(store, tmp_path):
    import_files(store, [_buildings_file(tmp_path / "buildings.geojson", ["b1", "b2"])])
    before, digest = state(store), file_digest(store)
    bad = tmp_path / "bad_buildings.csv"
    bad.write_text("building_id,households,wkt\nx1,abc,POINT (1 2)\nx2,-3,\n", encoding="utf-8")
    header_only = tmp_path / "header_buildings.csv"
    header_only.write_text("building_id,households,wkt\n", encoding="utf-8")
    empty = tmp_path / "empty_buildings.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    for src in (bad, header_only, empty):
        for mode in (None, "append", "replace"):
            with pytest.raises((NothingToImportError, ConflictError)) as exc:
                import_files(store, [src], crs="wgs84", mode=mode)
            if mode is not None:
                assert isinstance(exc.value, NothingToImportError), (src, mode)
                assert "no valid row" in str(exc.value) and "unchanged" in str(exc.value)
            assert state(store) == before and file_digest(store) == digest, (src, mode)
    with pytest.raises(NothingToImportError) as exc:
        import_files(store, [bad], crs="wgs84", mode="replace")
    assert exc.value.result.layers["buildings"].rejected == 2
    assert exc.value.result.written is False and exc.value.exit_code == 2


def test_append_of_only_known_keys_changes_nothing(store, tmp_path):
    import_files(store, [_buildings_file(tmp_path / "buildings.geojson", ["b1", "b2"])])
    before = state(store)
    with pytest.raises(NothingToImportError, match="already in the workspace"):
        import_files(
            store, [_buildings_file(tmp_path / "c_buildings.geojson", ["b2"])], mode="append"
        )
    assert state(store) == before


def test_unknown_mode(store, tmp_path):
    with pytest.raises(InputError, match="unknown mode 'merge'"):
        import_files(store, [_buildings_file(tmp_path / "buildings.geojson", ["b1"])], mode="merge")


def test_rejects_table_append_keeps_replace_drops(store, tmp_path):
    one = _buildings_file(tmp_path / "one_buildings.geojson", ["a1", "a2"], [10, "x"])
    import_files(store, [one])
    assert len(store.read("rejects")) == 1
    two = _buildings_file(tmp_path / "two_buildings.geojson", ["c1", "c2"], [10, -1])
    import_files(store, [two], mode="append")
    assert sorted(store.read("rejects")["value"]) == ["-1", "x"]
    three = _buildings_file(tmp_path / "three_buildings.geojson", ["d1"])
    import_files(store, [three], mode="replace")
    assert len(store.read("rejects")) == 0


# --------------------------------------------------------------------------------------
# Numbers within reason, and the file's own line numbers
# --------------------------------------------------------------------------------------

HUGE = ["inf", "1e30", "9.3e18", "5e18", "-inf", "nan", "10001", "12.5", "-2", "abc"]


def test_households_within_reason_with_csv_line_numbers(store, tmp_path):
    """Each bad value is a reject naming file, layer, line and field; the good rows are
    stored; blank lines count in line numbers (an editor's line, header = line 1)."""
    lines = ["building_id,households,use,wkt"]
    expected_lines = {}
    for i, value in enumerate(HUGE):
        lines.append(f'h{i},{value},residential,"{_box(118.78 + 0.001 * i, 32.04).wkt}"')
        expected_lines[value] = len(lines)
        lines.append("")  # a blank line after each row
    lines.append(f'ok1,10000,residential,"{_box(118.70, 32.04).wkt}"')
    lines.append(f'ok2,0,residential,"{_box(118.71, 32.04).wkt}"')
    src = tmp_path / "楼栋.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_files(store, [src], crs="wgs84")
    assert result.summary() == ["buildings: 0 kept, 2 added, 10 rejected"]
    rej = store.read("rejects").set_index("value")
    assert set(rej["layer"]) == {"buildings"} and set(rej["field"]) == {"households"}
    assert rej["source"].str.endswith("楼栋.csv").all()
    for value, line in expected_lines.items():
        assert int(rej.loc[value, "row"]) == line, value
    assert "imports.max_households_per_building" in rej.loc["1e30", "reason"]
    assert "not a finite number" in rej.loc["inf", "reason"]
    assert "not a whole number" in rej.loc["12.5", "reason"]
    assert "negative" in rej.loc["-2", "reason"]
    got = store.read("buildings").set_index("building_id")["households"]
    assert got.to_dict() == {"ok1": 10_000, "ok2": 0}


def test_the_limit_is_a_setting(tmp_path, store):
    src = _buildings_file(tmp_path / "buildings.geojson", ["b1", "b2"], [40, 60])
    strict = Settings().override({"imports.max_households_per_building": 50})
    result = import_files(store, [src], strict)
    assert result.summary() == ["buildings: 0 kept, 1 added, 1 rejected"]
    assert "above 50" in store.read("rejects")["reason"].iloc[0]


def test_floors_and_floor_area_bounded(tmp_path):
    from gridgis.layers import validate

    b = gpd.GeoDataFrame(
        {
            "building_id": ["a", "b", "c"],
            "floors": ["1e30", "6", "9.3e18"],
            "use": ["residential"] * 3,
        },
        geometry=[_box(118.78 + 0.001 * i, 32.04) for i in range(3)],
        crs="EPSG:4326",
    )
    v = validate(b, "buildings", source="b.shp")
    assert list(v.data["building_id"]) == ["b"]
    assert set(v.rejects["field"]) == {"floors"} and list(v.rejects["row"]) == [1, 3]
    assert v.data["households"].iloc[0] > 0  # estimated with 6 floors, no overflow


def test_geojson_rejects_give_feature_numbers(tmp_path):
    from gridgis.io import read_source

    src = _buildings_file(tmp_path / "buildings.geojson", ["a", "b", "c"], [1, "1e30", 3])
    v = read_source(src)["buildings"]
    assert list(v.rejects["row"]) == [1]  # the file's feature id: features[1]
    gpkg = _buildings_file(tmp_path / "buildings.gpkg", ["a", "b", "c"], [1, "1e30", 3])
    assert list(read_source(gpkg)["buildings"].rejects["row"]) == [2]  # GeoPackage fid 2


# --------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------


def test_encoding_parameter_overrides_a_wrong_cpg(tmp_path):
    from gridgis.io import read_source

    src = tmp_path / "建筑.shp"
    gpd.GeoDataFrame(
        {"building_id": ["b1"], "name": ["长江路1号楼"], "households": [12]},
        geometry=[_box(118.78, 32.04)],
        crs="EPSG:4326",
    ).to_file(src, encoding="gbk")
    (tmp_path / "建筑.cpg").write_text("UTF-8")
    out = read_source(src, encoding="gbk")["buildings"]
    assert out.data["name"].iloc[0] == "长江路1号楼"
    assert any(".cpg says UTF-8; read as gbk" in n for n in out.notes)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def test_cli_modes_summary_and_exit_codes(tmp_path):
    from gridgis.cli import app

    runner = CliRunner()
    ws = tmp_path / "ws.gpkg"
    first = _buildings_file(tmp_path / "buildings.geojson", ["b1", "b2", "b3"])
    res = runner.invoke(app, ["import", str(first), "--workspace", str(ws)])
    assert res.exit_code == 0, res.output
    digest = hashlib.sha256(ws.read_bytes()).hexdigest()
    more = _buildings_file(tmp_path / "more_buildings.geojson", ["b3", "b4"])
    res = runner.invoke(app, ["import", str(more), "--workspace", str(ws)])
    assert res.exit_code == 3
    assert "holds 3 rows" in res.output and "--mode append" in res.output
    assert hashlib.sha256(ws.read_bytes()).hexdigest() == digest
    res = runner.invoke(app, ["import", str(more), "--workspace", str(ws), "--mode", "append"])
    assert res.exit_code == 0, res.output
    assert "buildings: 3 kept, 1 added, 1 rejected" in res.output
    digest = hashlib.sha256(ws.read_bytes()).hexdigest()
    header_only = tmp_path / "x_buildings.csv"
    header_only.write_text("building_id,households,wkt\n", encoding="utf-8")
    res = runner.invoke(
        app,
        ["import", str(header_only), "--workspace", str(ws), "--mode", "replace", "--crs", "wgs84"],
    )
    assert res.exit_code == 2 and "no valid row" in res.output
    assert hashlib.sha256(ws.read_bytes()).hexdigest() == digest
    res = runner.invoke(app, ["info", str(ws)])
    assert res.exit_code == 0 and "households 124" in res.output  # 30+31+32, b4: 31


def test_two_appends_at_once_both_land_rejects_included(store, tmp_path):
    """Two writers appending at the same moment (each with its own connection): neither
    loses the other's rows or rejects (the store's read-modify-write under its lock)."""
    import threading

    import_files(store, [_buildings_file(tmp_path / "buildings.geojson", ["b0", "b1"])])
    files = [
        _buildings_file(
            tmp_path / f"w{k}_buildings.geojson", [f"w{k}a", f"w{k}b", f"w{k}c"], [10, 11, "x"]
        )
        for k in range(2)
    ]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(path: Path) -> None:
        own = open_store(store.location)
        try:
            start.wait()
            import_files(own, [path], mode="append")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=run, args=(p,)) for p in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    got = sorted(store.read("buildings")["building_id"])
    assert got == ["b0", "b1", "w0a", "w0b", "w1a", "w1b"]
    rej = store.read("rejects")
    assert sorted(rej["source"].map(lambda s: Path(s).name)) == [
        "w0_buildings.geojson",
        "w1_buildings.geojson",
    ]


def test_info_total_never_wraps(tmp_path):
    """A workspace written by an older version with two 5e18 households: `gridgis info`
    sums in Python integers (the int64 sum would print a negative total)."""
    from gridgis.cli import app

    ws = tmp_path / "old.gpkg"
    b = gpd.GeoDataFrame(
        {
            "building_id": ["a", "b"],
            "households": pd.array([5 * 10**18, 5 * 10**18], dtype="Int64"),
            "households_estimated": [False, False],
        },
        geometry=[_box(118.78, 32.04), _box(118.79, 32.04)],
        crs="EPSG:4326",
    )
    open_store(ws).write("buildings", b)
    res = CliRunner().invoke(app, ["info", str(ws)])
    assert res.exit_code == 0, res.output
    assert "households 10,000,000,000,000,000,000" in res.output


def test_cli_summary_in_chinese(tmp_path):
    from gridgis.cli import app

    ws = tmp_path / "ws.gpkg"
    src = _buildings_file(tmp_path / "buildings.geojson", ["b1", "b2"], [10, "x"])
    res = CliRunner().invoke(app, ["--lang", "zh", "import", str(src), "--workspace", str(ws)])
    assert res.exit_code == 0, res.output
    assert (
        "建筑 buildings: 保留 0, 新增 1, 拒绝 1" in res.output
        or "buildings: 保留 0, 新增 1, 拒绝 1" in res.output
    )


def test_a_layer_without_valid_rows_is_left_unchanged_in_a_multi_layer_import(store, tmp_path):
    import_files(store, [_buildings_file(tmp_path / "buildings.geojson", ["b1", "b2"])])
    roads = gpd.GeoDataFrame(
        {"road_id": ["r1"], "road_class": ["arterial"]},
        geometry=[shapely.LineString([(118.78, 32.04), (118.79, 32.04)])],
        crs="EPSG:4326",
    )
    roads.to_file(tmp_path / "roads.geojson")
    bad = _buildings_file(tmp_path / "bad_buildings.geojson", ["x1"], ["-5"])
    result = import_files(store, [tmp_path / "roads.geojson", bad], mode="replace")
    assert result.summary() == [
        "roads: 0 kept, 1 added, 0 rejected",
        "buildings: 2 kept, 0 added, 1 rejected (no valid row: layer left unchanged)",
    ]
    assert sorted(store.read("buildings")["building_id"]) == ["b1", "b2"]
    assert list(store.read("rejects")["value"]) == ["-5"]
    assert result.layers["buildings"].written is False


def test_import_into_a_delineated_workspace_refreshes_the_grids(demo_delineated_gpkg, tmp_path):
    """Appending a building with 50 households into a grid: the refresh workflow runs
    after the import and the grid's households grow by 50."""
    import shutil

    ws = tmp_path / "ws.gpkg"
    shutil.copy(demo_delineated_gpkg, ws)
    store = open_store(ws)
    grids = store.read("grids")
    target = grids.iloc[0]
    inside = target.geometry.representative_point()
    new = gpd.GeoDataFrame(
        {"building_id": ["new1"], "households": [50], "use": ["residential"]},
        geometry=[
            shapely.box(
                inside.x - 0.00005, inside.y - 0.00005, inside.x + 0.00005, inside.y + 0.00005
            )
        ],
        crs="EPSG:4326",
    )
    new.to_file(tmp_path / "new_buildings.geojson")
    result = import_files(store, [tmp_path / "new_buildings.geojson"], mode="append")
    assert result.refreshed is not None and "grids" in result.refreshed.written
    after = store.read("grids").set_index("grid_code")["households"]
    assert int(after[target["grid_code"]]) == int(target["households"]) + 50
    assert result.to_dict()["refreshed"]
