"""Issue 12, point 5: coordinate plausibility against the workspace (Shanghai, Nanjing,
Beijing real data) and against where the declared CRS can be; both stores."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgis import crs as C
from gridgis.io import read_source
from gridgis.io.plausible import CrsImplausible
from gridgis.store import open_store
from gridgis.workflows.imports import import_files

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHANGHAI = DATA / "shanghai-amap-poi"
NANJING = DATA / "nanjing-xinjiekou-osm" / "nanjing_osm_bbox.osm.pbf"
BEIJING = DATA / "beijing-haidian-osm" / "cau_xueyuanlu_map.osm.pbf"


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


def _digest(store) -> str:
    path = Path(store.location)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return repr({n: len(store.read(n)) for n in sorted(store.layers())})


# --------------------------------------------------------------------------------------
# Shanghai: Amap POIs already converted to WGS84 (their README)
# --------------------------------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.skipif(not SHANGHAI.exists(), reason="needs ../shared/data")
def test_shanghai_wgs84_points_declared_gcj02_are_refused_naming_wgs84(store):
    """A workspace built from Shanghai's schools (WGS84, as the README says); the
    kindergartens declared GCJ-02 (as Amap data usually is) would move ~470 m: refused,
    naming WGS84 and the offset; declared WGS84 they pass."""
    import_files(store, [SHANGHAI / "shanghai_school.csv"], layer="facilities", crs="wgs84")
    before = _digest(store)
    with pytest.raises(CrsImplausible) as exc:
        import_files(store, [SHANGHAI / "幼儿园.csv"], crs="gcj02", mode="append")
    msg = str(exc.value)
    assert "look like WGS84/CGCS2000, not the declared GCJ-02" in msg
    assert "幼儿园.csv" in msg and "Declare crs wgs84" in msg
    offset = float(msg.split(" m apart")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert 400 < offset < 600
    assert _digest(store) == before
    result = import_files(store, [SHANGHAI / "幼儿园.csv"], crs="wgs84", mode="append")
    assert result.layers["facilities"].added == 2241
    # the check can be switched off (the planner knows better)
    result = import_files(
        store, [SHANGHAI / "小学.csv"], crs="gcj02", mode="append", crs_check=False
    )
    assert result.layers["facilities"].added > 900


# --------------------------------------------------------------------------------------
# Nanjing and Beijing: OpenStreetMap roads and buildings as the reference
# --------------------------------------------------------------------------------------


def _osm_workspace(store, pbf: Path) -> gpd.GeoDataFrame:
    """Roads and buildings of an extract into the workspace; its facilities returned."""
    layers = read_source(pbf)
    store.write_many({k: layers[k].data for k in ("roads", "buildings")})
    fac = layers["facilities"].data
    pts = shapely.get_coordinates(shapely.point_on_surface(fac.geometry.values))
    return pd.DataFrame(
        {"name": fac["name"], "category": fac["category"], "lon": pts[:, 0], "lat": pts[:, 1]}
    )


def _as(frame: pd.DataFrame, crs: str, path: Path, swap: bool = False) -> Path:
    out = frame.copy()
    out["lon"], out["lat"] = C.from_wgs84(frame["lon"], frame["lat"], crs)
    if swap:
        out["lon"], out["lat"] = out["lat"].to_numpy(), out["lon"].to_numpy()
    out.to_csv(path, index=False)
    return path


@pytest.mark.shared
@pytest.mark.parametrize("pbf", [NANJING, BEIJING], ids=["nanjing", "beijing"])
@pytest.mark.skipif(not NANJING.exists(), reason="needs ../shared/data")
def test_osm_city_offsets_are_recognised(store, tmp_path, pbf):
    fac = _osm_workspace(store, pbf)
    assert len(fac) > 50
    before = _digest(store)
    gcj = _as(fac, "gcj02", tmp_path / "facilities.csv")
    with pytest.raises(CrsImplausible, match="look like GCJ-02, not the declared WGS84"):
        import_files(store, [gcj], crs="wgs84")
    bd = _as(fac, "bd09", tmp_path / "facilities.csv")
    with pytest.raises(CrsImplausible, match="look like BD-09, not the declared GCJ-02"):
        import_files(store, [bd], crs="gcj02")
    assert _digest(store) == before
    result = import_files(store, [bd], crs="bd09")
    assert result.layers["facilities"].added == len(fac)


def test_swapped_axes_are_recognised(tmp_path):
    """Outside China both orders can be valid lon/lat (here near 10°E, 50°N ↔ 50°E, 10°N):
    points written lat, lon against roads are refused naming the exchange."""
    store = open_store(tmp_path / "ws.gpkg")
    xs = np.arange(20)
    roads = gpd.GeoDataFrame(
        {"road_id": [f"r{i}" for i in xs], "road_class": "branch"},
        geometry=[
            shapely.LineString([(10 + 0.002 * i, 50.0), (10 + 0.002 * i, 50.05)]) for i in xs
        ],
        crs="EPSG:4326",
    )
    store.write("roads", roads)
    rng = np.random.default_rng(1)
    lon = 10 + 0.002 * rng.integers(0, 20, 60) + rng.normal(0, 0.00005, 60)
    lat = 50 + rng.uniform(0, 0.05, 60)
    src = tmp_path / "facilities.csv"
    pd.DataFrame({"category": "retail", "lon": lat, "lat": lon}).to_csv(src, index=False)
    with pytest.raises(CrsImplausible, match="x and y exchanged"):
        import_files(store, [src], crs="wgs84")
    src.write_text(src.read_text())
    pd.DataFrame({"category": "retail", "lon": lon, "lat": lat}).to_csv(src, index=False)
    assert import_files(store, [src], crs="wgs84").layers["facilities"].added == 60


# --------------------------------------------------------------------------------------
# Into an empty workspace: where the declared CRS can be
# --------------------------------------------------------------------------------------


def test_gcj02_outside_china_is_refused(store, tmp_path):
    src = tmp_path / "facilities.csv"
    pd.DataFrame(
        {"category": ["retail"] * 3, "lon": [2.35, 2.36, 2.37], "lat": [48.85] * 3}
    ).to_csv(src, index=False)
    with pytest.raises(CrsImplausible, match="outside China"):
        import_files(store, [src], crs="gcj02")
    assert store.layers() == []
    assert import_files(store, [src], crs="wgs84").layers["facilities"].added == 3


def test_gauss_kruger_zone_must_match_the_longitude(store, tmp_path):
    """Nanjing (118.78°E) written in the zone-numbered 3-degree zone 40 (EPSG:4528, CM
    120°E) but declared as zone 39 (EPSG:4527, CM 117°E): the extra 10⁶ m of easting puts
    them near 126°E, outside zone 39's longitudes: refused naming the zone the eastings
    carry."""
    pts = gpd.GeoSeries(
        [shapely.Point(118.78 + 0.001 * i, 32.04) for i in range(5)], crs="EPSG:4326"
    ).to_crs("EPSG:4528")
    src = tmp_path / "facilities.csv"
    pd.DataFrame({"category": "retail", "x": pts.x, "y": pts.y}).to_csv(src, index=False)
    with pytest.raises(CrsImplausible, match="zone number 40: EPSG:4528"):
        import_files(store, [src], crs="EPSG:4527", field_map={"lon": "x", "lat": "y"})
    result = import_files(store, [src], crs="EPSG:4528", field_map={"lon": "x", "lat": "y"})
    assert result.layers["facilities"].added == 5


def test_cli_crs_check_off(tmp_path):
    from typer.testing import CliRunner

    from gridgis.cli import app

    src = tmp_path / "facilities.csv"
    pd.DataFrame({"category": ["retail"], "lon": [2.35], "lat": [48.85]}).to_csv(src, index=False)
    ws = tmp_path / "ws.gpkg"
    runner = CliRunner()
    res = runner.invoke(app, ["import", str(src), "--workspace", str(ws), "--crs", "gcj02"])
    assert res.exit_code == 2 and "outside China" in res.output
    res = runner.invoke(
        app, ["import", str(src), "--workspace", str(ws), "--crs", "wgs84", "--crs-check", "off"]
    )
    assert res.exit_code == 0, res.output


def _lattice_city(store) -> list[tuple[float, float, str]]:
    """Named roads every ~65 m both ways near Shanghai's centre, and 120 places each 8 m
    from the road its address names (WGS84)."""
    lon0, lat0, dlon, dlat = 121.45, 31.22, 0.0007, 0.0006
    roads, geoms = [], []
    for k in range(40):
        geoms.append(
            shapely.LineString([(lon0, lat0 + k * dlat), (lon0 + 40 * dlon, lat0 + k * dlat)])
        )
        roads.append(f"纬{k}路")
        geoms.append(
            shapely.LineString([(lon0 + k * dlon, lat0), (lon0 + k * dlon, lat0 + 40 * dlat)])
        )
        roads.append(f"经{k}路")
    store.write(
        "roads",
        gpd.GeoDataFrame(
            {
                "road_id": [f"r{i}" for i in range(len(roads))],
                "name": roads,
                "road_class": "branch",
            },
            geometry=geoms,
            crs="EPSG:4326",
        ),
    )
    rng = np.random.default_rng(7)
    places = []
    for i in range(120):
        k = int(rng.integers(5, 35))
        x = lon0 + rng.uniform(5, 35) * dlon
        places.append((x, lat0 + k * dlat + 8 / 110_540, f"上海市黄浦区纬{k}路{i + 1}号"))
    return places


def test_named_road_statistic_sees_an_offset_a_dense_network_hides(store, tmp_path):
    """Among roads every 65 m any point is near SOME road; the road its address names
    tells the 470 m GCJ-02 offset apart (the Shanghai README's check: 35 m vs 350 m)."""
    places = _lattice_city(store)
    src = tmp_path / "facilities.csv"
    pd.DataFrame(
        {
            "category": "retail",
            "address": [a for _, _, a in places],
            "lon": [x for x, _, _ in places],
            "lat": [y for _, y, _ in places],
        }
    ).to_csv(src, index=False)
    with pytest.raises(CrsImplausible, match="from the road its address names") as exc:
        import_files(store, [src], crs="gcj02")
    assert "look like WGS84/CGCS2000" in str(exc.value)
    assert import_files(store, [src], crs="wgs84").layers["facilities"].added == 120


@pytest.mark.shared
@pytest.mark.skipif(not SHANGHAI.exists(), reason="needs ../shared/data")
@pytest.mark.parametrize("reference", ["shanghai_bus.csv", "shanghai_food.csv"])
def test_shanghai_offset_against_unrelated_points(tmp_path, reference):
    """A workspace holding only Shanghai's bus stops (or restaurants): no kindergarten is a
    bus stop, so medians differ by ~20 % only, but feature by feature the right placement
    is nearer for most kindergartens (sign test, imports.crs_check_min_z): declared
    GCJ-02 they are refused naming WGS84; declared WGS84 they pass."""
    store = open_store(tmp_path / "ws.gpkg")
    import_files(store, [SHANGHAI / reference], layer="facilities", crs="wgs84")
    with pytest.raises(CrsImplausible, match="look like WGS84/CGCS2000.*Feature by feature"):
        import_files(store, [SHANGHAI / "幼儿园.csv"], crs="gcj02", mode="append")
    result = import_files(store, [SHANGHAI / "幼儿园.csv"], crs="wgs84", mode="append")
    assert result.layers["facilities"].added == 2241
