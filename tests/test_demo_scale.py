"""``gridgis demo`` above one city: a province of demo cities written district by district.

The per-district size is lowered through the settings (``demo.district_households``) so
a province of three districts of 4,000 households stands in for one of 25 × 2,000,000.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from gridgis.cli import app
from gridgis.errors import InputError, LimitError
from gridgis.province import DISTRICT_GAP_M, district_shares, make_province, write_province
from gridgis.standards import DEFAULT
from gridgis.store import GeoPackageStore, open_store
from gridgis.workflows.demo import demo_districts, skipped_steps

SMALL = ["--set", "demo.district_households=5000", "--set", "demo.full_steps_max_households=10000"]


def test_district_shares_split_evenly_first_take_the_remainder():
    assert district_shares(10_001, 3) == [3334, 3334, 3333]
    assert district_shares(12_000, 3) == [4000, 4000, 4000]
    with pytest.raises(InputError, match="at least 1,000"):
        district_shares(2_999, 3)
    with pytest.raises(InputError, match="between 1 and 99"):
        district_shares(200_000, 100)


def test_demo_size_rules():
    assert demo_districts(30_000, DEFAULT) == 1
    assert demo_districts(2_000_000, DEFAULT) == 1
    assert demo_districts(2_000_001, DEFAULT) == 2
    assert demo_districts(20_000_000, DEFAULT) == 10
    assert demo_districts(50_000_000, DEFAULT) == 25
    with pytest.raises(LimitError, match="demo.max_households"):
        demo_districts(50_000_001, DEFAULT)
    small = DEFAULT.override({"demo.district_households": 1_000})
    with pytest.raises(LimitError, match="at most 99"):
        demo_districts(100_000, small)
    assert skipped_steps(2_000_000, DEFAULT) == ()
    assert skipped_steps(2_000_001, DEFAULT) == ("import", "maps")


@pytest.fixture(scope="module")
def province_cli(tmp_path_factory):
    out = tmp_path_factory.mktemp("province")
    res = CliRunner().invoke(
        app, ["--lang", "zh", "demo", "--out", str(out), "--households", "12000", *SMALL]
    )
    assert res.exit_code == 0, res.output
    return out, res.output


def test_demo_above_one_city_builds_a_province_and_runs_the_demo_on_it(province_cli):
    out, output = province_cli
    store = GeoPackageStore(out / "demo.gpkg")
    meta = store.meta()
    assert [d["county_code"] for d in meta["districts"]] == ["329900", "329901", "329902"]
    assert [d["households"] for d in meta["districts"]] == [4000, 4000, 4000]
    b = store.read("buildings")
    assert int(b["households"].sum()) == 12_000
    assert b["building_id"].is_unique
    # every district's streets carry its own county code, and they do not overlap
    streets = store.read("streets")
    assert sorted(set(streets["street_code"].str[:6])) == ["329900", "329901", "329902"]
    # delineation, coverage, siting and lookup ran on the whole province
    grids = store.read("grids")
    assert set(grids["grid_code"].str[:6]) == {"329900", "329901", "329902"}
    assert b["grid_code"].notna().all()
    assert store.has("norms") and store.has("proposed_sites")
    assert (out / "lookup_sample.json").exists()
    # the heavy steps are skipped, saying why and how to run them
    assert not (out / "maps").exists() and not (out / "import_demo").exists()
    assert output.count("已跳过") == 2
    assert "demo.full_steps_max_households" in output
    assert f"gridgis map --workspace {out / 'demo.gpkg'}" in output
    assert "生成示范省: 12,000 户, 3 个区" in output


def test_province_districts_lie_apart(province_cli):
    out, _ = province_cli
    streets = GeoPackageStore(out / "demo.gpkg").read("streets").to_crs("EPSG:4549")
    hulls = streets.dissolve(streets["street_code"].str[:6]).geometry
    for i in range(len(hulls)):
        for j in range(i + 1, len(hulls)):
            gap = shapely.distance(hulls.iloc[i], hulls.iloc[j])
            assert gap >= DISTRICT_GAP_M - 1.0, (hulls.index[i], hulls.index[j], gap)


def test_fifty_million_is_accepted_and_planned_without_building(tmp_path):
    out = tmp_path / "never"
    res = CliRunner().invoke(
        app, ["--lang", "zh", "demo", "--out", str(out), "--households", "50000000", "--plan"]
    )
    assert res.exit_code == 0, res.output
    assert "50,000,000 户, 25 个区" in res.output
    assert "每区最多 2,000,000 户" in res.output
    assert "import, maps" in res.output
    assert not out.exists()
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--households", "50000001"])
    assert res.exit_code == 2 and not out.exists()
    res = CliRunner().invoke(
        app,
        ["demo", "--out", str(out), "--households", "3000", "--plan"]
        + ["--set", "demo.max_households=2000"],
    )
    assert res.exit_code == LimitError.exit_code, res.output
    assert "demo.max_households" in res.output
    assert "1,000–50,000,000" in CliRunner().invoke(app, ["demo", "--help"]).output


def test_plan_warns_when_the_machine_cannot_hold_the_demo(tmp_path, monkeypatch):
    """The rough peak (320 B a household in one process, measured at 50,000,000) against
    this machine's memory: a warning naming both, nothing built."""
    import gridgis.cli.demo as D

    monkeypatch.setattr(D, "_memory_gb", lambda: 8.0)
    args = ["--lang", "zh", "demo", "--out", str(tmp_path / "x"), "--plan", "--households"]
    res = CliRunner().invoke(app, [*args, "50000000"])
    assert res.exit_code == 0, res.output
    assert "16.0 GB" in res.output and "超过本机内存 (8.0 GB)" in res.output
    res = CliRunner().invoke(app, [*args, "20000000"])
    assert "6.4 GB" in res.output and "警告" not in res.output
    assert not (tmp_path / "x").exists()


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for col in a.columns:
        if col == "geometry":
            assert np.allclose(
                shapely.get_coordinates(a.geometry.values),
                shapely.get_coordinates(b.geometry.values),
                atol=1e-9,
            )
        else:
            pd.testing.assert_series_equal(
                a[col].reset_index(drop=True), b[col].reset_index(drop=True), check_dtype=False
            )


@pytest.mark.parametrize("backend", ["gpkg", "parquet"])
def test_streamed_province_equals_the_one_made_in_memory(tmp_path, backend):
    layers, meta = make_province(6_000, 2, seed=3)
    target = tmp_path / ("p.gpkg" if backend == "gpkg" else "p.parquet")
    store = open_store(target)
    seen = []
    written = write_province(store, 6_000, 2, seed=3, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(3_000, 6_000), (6_000, 6_000)]
    assert written["districts"] == meta["districts"]
    assert written["rows"] == {n: len(f) for n, f in layers.items()}
    assert store.info("buildings").rows == len(layers["buildings"])
    bounds = store.info("buildings").bounds
    assert np.allclose(bounds, layers["buildings"].total_bounds)
    for name in ("buildings", "streets", "addresses", "staff"):
        _same(store.read(name), layers[name])


def test_province_built_on_a_local_cluster_is_the_same(tmp_path):
    pytest.importorskip("distributed")
    res = CliRunner().invoke(
        app,
        ["demo", "--out", str(tmp_path), "--households", "10000", "--cluster", "local:2"]
        + ["--set", "demo.district_households=2000", "--set", "demo.full_steps_max_households=0"]
        + ["--set", "demo.large_skip_steps=delineate,import,maps,coverage,site,lookup"],
    )
    assert res.exit_code == 0, res.output
    store = GeoPackageStore(tmp_path / "demo.gpkg")
    assert len(store.meta()["districts"]) == 5
    layers, _ = make_province(10_000, 5, seed=7)
    for name in ("buildings", "roads", "addresses", "staff"):
        _same(store.read(name), layers[name])
    assert res.output.count("gridgis delineate --workspace") == 1  # every step skipped


def test_a_district_walks_as_its_city_alone():
    """Districts lie 2 km apart (more than the largest walking radius) and are the demo
    city with other ids: district 0's walking access is the city's, building for building
    (distances summed over the same edges; they may differ in the last bits)."""
    from gridgis.coverage import run_coverage
    from gridgis.synth import make_city

    layers, _ = make_province(8_000, 2, seed=7)
    alone = make_city(4_000, seed=7).layers
    got = run_coverage(layers).layers["access"]
    ref = run_coverage(alone).layers["access"]
    got = got[got["building_id"].str.startswith("D00-")].reset_index(drop=True)
    assert len(got) == len(ref) > 0
    assert (got["building_id"].str[4:] == ref["building_id"]).all()
    for col in ref.columns:
        if col == "building_id":
            continue
        a, b = got[col], ref[col]
        if pd.api.types.is_float_dtype(b):
            assert np.allclose(a.astype(float), b.astype(float), atol=1e-6, equal_nan=True), col
        else:
            assert (a.astype(str) == b.astype(str)).all(), col


def test_province_lookup_step_matches_an_evenly_spaced_sample(province_cli, tmp_path):
    from gridgis.lookup import Lookup
    from gridgis.workflows.outputs import lookup_sample

    out, output = province_cli
    assert "条改写的示范地址 (从" not in output  # 12,000 households: below the default cap
    store = GeoPackageStore(out / "demo.gpkg")
    settings = DEFAULT.override(
        {"demo.full_steps_max_households": 10_000, "demo.lookup_sample_max_queries": 50}
    )
    job = lookup_sample(store, settings, tmp_path)
    n = len(store.read("addresses"))
    assert job.stats["addresses"] == n and job.stats["queries"] == 50
    assert f"an evenly spaced sample of {n:,}" in job.summary
    # the sample's rows: first and last address, steps differing by at most one
    finder = Lookup.from_store(store, settings)
    rows = np.unique(np.linspace(0, n - 1, 50).round().astype(np.int64))
    assert rows[0] == 0 and rows[-1] == n - 1 and np.ptp(np.diff(rows)) <= 1
    digits = str.maketrans("0123456789", "０１２３４５６７８９")
    texts = [t.replace("栋", "幢").translate(digits) for t in finder.index.text[rows]]
    own = finder.addresses(texts)["address_id"].to_numpy() == finder.index.address_id[rows]
    assert job.stats["own_record"] == int(own.sum())
    # at or below the full-demo size every address is matched
    full = lookup_sample(store, DEFAULT, tmp_path)
    assert full.stats["queries"] == n
