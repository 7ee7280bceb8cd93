"""Point and address lookup with the chain street → community → grid → people (issue 5)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from gridgis.cli import app
from gridgis.crs import from_wgs84
from gridgis.lookup import Lookup
from gridgis.store import open_store

LON0, LAT0 = 121.40, 31.20
M_LON = 1.0 / (111_320.0 * np.cos(np.radians(LAT0)))  # degrees per metre east
M_LAT = 1.0 / 110_574.0  # degrees per metre north


def box(x0, y0, x1, y1):
    """A box given in metres east/north of (LON0, LAT0), in lon/lat."""
    return shapely.box(LON0 + x0 * M_LON, LAT0 + y0 * M_LAT, LON0 + x1 * M_LON, LAT0 + y1 * M_LAT)


def pt(x, y):
    return LON0 + x * M_LON, LAT0 + y * M_LAT


def gdf(rows):
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


@pytest.fixture(scope="module")
def layers():
    streets = gdf(
        [{"street_code": "310112001", "name": "江川路街道", "geometry": box(0, 0, 400, 200)}]
    )
    communities = gdf(
        [
            {
                "community_code": "310112001001",
                "name": "报春社区",
                "street_code": "310112001",
                "geometry": box(0, 0, 200, 200),
            },
            {
                "community_code": "310112001002",
                "name": "江川社区",
                "street_code": "310112001",
                "geometry": box(200, 0, 400, 200),
            },
        ]
    )
    grids = gdf(
        [
            {
                "grid_code": "310112001001001",
                "community_code": "310112001001",
                "kind": "residential",
                "households": 320,
                "geometry": box(0, 0, 100, 200),
            },
            {
                "grid_code": "310112001001002",
                "community_code": "310112001001",
                "kind": "residential",
                "households": 410,
                "geometry": box(100, 0, 200, 200),
            },
            {
                "grid_code": "310112001002001",
                "community_code": "310112001002",
                "kind": "unit",
                "households": 0,
                "geometry": box(200, 0, 400, 200),
            },
        ]
    )
    buildings = gdf(
        [
            {"building_id": "B1", "households": 48, "geometry": box(20, 20, 60, 60)},
            {"building_id": "B2", "households": 36, "geometry": box(120, 120, 160, 160)},
        ]
    )
    addresses = gdf(
        [
            {
                "address_id": "A1",
                "text": "报春路10号阳光花园1栋1单元",
                "name": "阳光花园",
                "building_id": "B1",
                "geometry": shapely.Point(*pt(40, 21)),
            },
            {
                "address_id": "A2",
                "text": "报春路10号阳光花园1栋2单元",
                "name": "阳光花园",
                "building_id": "B1",
                "geometry": shapely.Point(*pt(50, 21)),
            },
            {
                "address_id": "A3",
                "text": "报春路12号",
                "name": None,
                "building_id": None,
                "geometry": shapely.Point(*pt(150, 5)),
            },
            {
                "address_id": "A4",
                "text": "报春路30号",
                "name": "江川中学",
                "building_id": None,
                "geometry": shapely.Point(*pt(300, 5)),
            },
            # one door plate recorded twice far apart: inside one grid, then across two
            {
                "address_id": "A5",
                "text": "江川路8号",
                "name": None,
                "building_id": None,
                "geometry": shapely.Point(*pt(210, 5)),
            },
            {
                "address_id": "A6",
                "text": "江川路8号",
                "name": None,
                "building_id": None,
                "geometry": shapely.Point(*pt(390, 195)),
            },
            {
                "address_id": "A7",
                "text": "江川路9号",
                "name": None,
                "building_id": None,
                "geometry": shapely.Point(*pt(50, 5)),
            },
            {
                "address_id": "A8",
                "text": "江川路9号",
                "name": None,
                "building_id": None,
                "geometry": shapely.Point(*pt(300, 5)),
            },
        ]
    )
    staff = pd.DataFrame(
        [
            {
                "staff_id": "S3",
                "name": "李四",
                "role": "grid_worker",
                "community_code": "310112001001",
                "grid_code": "310112001001001",
                "phone": "139",
            },
            {
                "staff_id": "S2",
                "name": "张三",
                "role": "grid_head",
                "community_code": "310112001001",
                "grid_code": "310112001001001",
                "phone": "138",
            },
            {
                "staff_id": "S1",
                "name": "王五",
                "role": "community_worker",
                "community_code": "310112001001",
                "grid_code": None,
                "phone": "137",
            },
            {
                "staff_id": "S4",
                "name": "赵六",
                "role": "police",
                "community_code": "310112001001",
                "grid_code": None,
                "phone": "110",
            },
        ]
    )
    return {
        "streets": streets,
        "communities": communities,
        "grids": grids,
        "buildings": buildings,
        "addresses": addresses,
        "staff": staff,
    }


@pytest.fixture(scope="module")
def finder(layers):
    return Lookup(**layers)


def test_point_in_building_gives_the_whole_chain(finder):
    ans = finder.point(*pt(30, 30))
    assert ans["match_level"] == "building" and ans["building_id"] == "B1"
    assert ans["street"] == {"code": "310112001", "name": "江川路街道"}
    assert ans["community"] == {"code": "310112001001", "name": "报春社区"}
    assert ans["grid"] == {"grid_code": "310112001001001", "kind": "residential", "households": 320}
    # grid head first, then grid workers; phones only when asked
    assert [(p["name"], p["role"], p["role_zh"]) for p in ans["people"]] == [
        ("张三", "grid_head", "网格长"),
        ("李四", "grid_worker", "网格员"),
    ]
    assert all("phone" not in p for p in ans["people"])
    assert [p["phone"] for p in finder.point(*pt(30, 30), include_personal=True)["people"]] == [
        "138",
        "139",
    ]
    json.dumps(ans, ensure_ascii=False)


def test_point_outside_buildings_and_outside_grids(finder):
    ans = finder.point(*pt(150, 50))
    assert ans["match_level"] == "grid" and ans["building_id"] is None
    assert ans["grid"]["grid_code"] == "310112001001002" and ans["people"] == []
    out = finder.point(*pt(-50, 50))
    assert out["match_level"] == "none"
    assert out["street"] is None and out["community"] is None and out["grid"] is None


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "cgcs2000"])
def test_point_in_offset_crs_is_converted(finder, crs):
    lon, lat = pt(95, 100)  # 5 m west of a grid boundary: GCJ-02 unconverted would miss
    x, y = from_wgs84(np.array([lon]), np.array([lat]), crs)
    ans = finder.point(float(x[0]), float(y[0]), crs=crs)
    assert ans["grid"]["grid_code"] == "310112001001001"
    assert abs(ans["lon"] - lon) < 1e-6 and abs(ans["lat"] - lat) < 1e-6
    if crs == "gcj02":  # read as WGS84, the same numbers land hundreds of metres away
        assert finder.point(float(x[0]), float(y[0]))["match_level"] == "none"


def test_points_batch_agrees_with_plain_containment(finder, layers):
    rng = np.random.default_rng(5)
    xs, ys = rng.uniform(-50, 450, 3000), rng.uniform(-50, 250, 3000)
    lon, lat = pt(xs, ys)
    got = finder.points(lon, lat)
    grids = layers["grids"]
    expected = []
    for x, y in zip(lon, lat, strict=True):
        p = shapely.Point(x, y)
        inside = [
            g for g, geom in zip(grids.grid_code, grids.geometry, strict=True) if geom.covers(p)
        ]
        expected.append(inside[0] if inside else None)
    assert list(got["grid_code"]) == expected
    in_b1 = (xs >= 20) & (xs <= 60) & (ys >= 20) & (ys <= 60)
    assert (got["building_id"][in_b1] == "B1").all()
    assert set(got.loc[got.grid_code.isna(), "match_level"]) == {"none"}
    assert got.loc[got.grid_code == "310112001002001", "community_code"].eq("310112001002").all()


def test_address_lookup_chain(finder):
    ans = finder.address("上海市闵行区报春路十号阳光花园一幢二门")
    assert ans["confident"] and ans["address_id"] == "A2" and ans["match_level"] == "unit"
    assert ans["building_id"] == "B1"
    assert ans["grid"]["grid_code"] == "310112001001001"
    assert ans["people"][0]["role"] == "grid_head"
    json.dumps(ans, ensure_ascii=False)
    school = finder.address("江川中学")
    assert school["confident"] and school["grid"]["kind"] == "unit"


def test_address_without_confident_match_has_no_chain(finder):
    ans = finder.address("报春路14号")
    assert not ans["confident"] and ans["address_id"] is None and ans["grid"] is None
    assert ans["people"] == [] and ans["candidates"]
    assert {c["grid_code"] for c in ans["candidates"]} <= {
        "310112001001001",
        "310112001001002",
        "310112001002001",
    }


def test_address_in_several_places(finder):
    same_grid = finder.address("江川路8号")  # two records 270 m apart, one grid
    assert same_grid["confident"] and same_grid["grid"]["grid_code"] == "310112001002001"
    assert "all in grid" in same_grid["reason"]
    two_grids = finder.address("江川路9号")
    assert not two_grids["confident"] and two_grids["grid"] is None
    assert {c["grid_code"] for c in two_grids["candidates"]} == {
        "310112001001001",
        "310112001002001",
    }


def test_batch_addresses(finder):
    df = finder.addresses(["报春路12号", "火星路1号", "报春路10号阳光花园1栋1单元", None])
    assert list(df.columns) == [
        "address_id",
        "lon",
        "lat",
        "grid_code",
        "match_level",
        "match_score",
        "confident",
        "rule",
    ]
    assert df["address_id"].tolist() == ["A3", None, "A1", None]
    assert df["grid_code"].tolist() == ["310112001001002", None, "310112001001001", None]
    assert df["lon"].isna().tolist() == [False, True, False, True]


def test_without_grids_the_chain_stops_at_the_community(layers):
    no_grids = {k: v for k, v in layers.items() if k != "grids"}
    finder = Lookup(**no_grids)
    ans = finder.point(*pt(30, 30))
    assert ans["match_level"] == "community" and ans["grid"] is None
    assert ans["community"]["code"] == "310112001001" and ans["street"]["code"] == "310112001"
    assert [p["role"] for p in ans["community_people"]] == ["community_worker", "police"]
    assert finder.address("报春路12号")["community"]["name"] == "报春社区"


def test_from_store(tmp_path, layers):
    store = open_store(tmp_path / "ws.gpkg")
    store.write_many(layers, params={"test": True})
    finder = Lookup.from_store(store)
    ans = finder.address("报春路10号阳光花园1栋1单元")
    assert ans["grid"]["grid_code"] == "310112001001001" and ans["people"]


# -- the demo city -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    from gridgis.delineate import delineate
    from gridgis.synth import make_city

    city = make_city(households=10_000)
    res = delineate(city.layers)
    layers = dict(city.layers)
    layers["grids"], layers["buildings"] = res.grids, res.buildings
    return layers


def test_demo_city_addresses_land_in_their_buildings_grid(demo):
    finder = Lookup(
        **{
            k: demo[k]
            for k in ("addresses", "buildings", "grids", "communities", "streets", "staff")
        }
    )
    a = demo["addresses"]
    units = a[a["building_id"].notna()]
    digits = str.maketrans("0123456789", "０１２３４５６７８９")
    queries = [t.replace("栋", "幢").translate(digits) for t in units["text"]]
    got = finder.addresses(queries)
    assert (got["address_id"].to_numpy() == units["address_id"].to_numpy()).all()
    assert set(got["match_level"]) == {"unit"}
    own_grid = units["building_id"].map(demo["buildings"].set_index("building_id")["grid_code"])
    agree = (got["grid_code"].to_numpy() == own_grid.to_numpy()).mean()
    assert agree >= 0.98, agree


def test_single_points_and_batches_agree(demo):
    """Small queries go through the STRtree, batches through sorted bounding boxes."""
    finder = Lookup(**{k: demo[k] for k in ("buildings", "grids", "communities", "streets")})
    minx, miny, maxx, maxy = demo["grids"].total_bounds
    rng = np.random.default_rng(9)
    lon, lat = rng.uniform(minx, maxx, 400), rng.uniform(miny, maxy, 400)
    batch = finder.points(lon, lat)
    one_by_one = pd.concat(
        [finder.points(lon[i : i + 1], lat[i : i + 1]) for i in range(40)], ignore_index=True
    )
    cols = ["building_id", "grid_code", "community_code", "street_code", "match_level"]
    assert batch[cols].iloc[:40].equals(one_by_one[cols])
    assert batch["building_id"].notna().sum() > 20


# -- the CLI -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, layers):
    path = tmp_path_factory.mktemp("lookup") / "ws.gpkg"
    open_store(path).write_many(layers, params={})
    return path


def test_cli_address_and_point(workspace):
    runner = CliRunner()
    r = runner.invoke(app, ["lookup", "-w", str(workspace), "报春路10号阳光花园1栋1单元"])
    assert r.exit_code == 0, r.output
    ans = json.loads(r.stdout)
    assert ans["grid"]["grid_code"] == "310112001001001" and "报春路" in r.stdout
    lon, lat = pt(30, 30)
    x, y = from_wgs84(np.array([lon]), np.array([lat]), "gcj02")
    r = runner.invoke(
        app,
        ["lookup", "-w", str(workspace), "--lon", str(x[0]), "--lat", str(y[0]), "--crs", "gcj02"],
    )
    assert r.exit_code == 0 and json.loads(r.stdout)["building_id"] == "B1"


def test_cli_batch(workspace, tmp_path):
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2, 3], "addr": ["报春路12号", "火星路1号", "报春路30号"]}).to_csv(
        src, index=False, encoding="gb18030"
    )
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(
        app,
        [
            "lookup",
            "-w",
            str(workspace),
            "--batch",
            str(src),
            "--column",
            "addr",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out, dtype=str, encoding="utf-8-sig")
    assert df["id"].tolist() == ["1", "2", "3"]
    assert df["grid_code"].fillna("").tolist() == ["310112001001002", "", "310112001002001"]
    assert df["address_id"].fillna("").tolist() == ["A3", "", "A4"]
    assert df.loc[1, "match_level"] == "none" and pd.isna(df.loc[1, "match_score"])


def test_cli_errors(workspace, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["lookup", "-w", str(workspace), "--lon", "121.4"])
    assert r.exit_code == 2 and "--lon and --lat" in r.output
    src = tmp_path / "in.csv"
    src.write_text("x\n1\n", encoding="utf-8")
    r = runner.invoke(
        app, ["lookup", "-w", str(workspace), "--batch", str(src), "--out", str(tmp_path / "o.csv")]
    )
    assert r.exit_code == 2 and "'address'" in r.output and "--column" in r.output
    assert not (tmp_path / "o.csv").exists()
    r = runner.invoke(app, ["lookup", "-w", str(tmp_path / "missing.gpkg"), "报春路12号"])
    assert r.exit_code != 0


def test_fast_point_equals_batch_path(demo, layers):
    """Lookup.point (index query + precomputed chain) answers exactly as the DataFrame
    path of Lookup.points, inside and outside grids, in WGS84, GCJ-02 and BD-09 (the
    converted lon/lat to 1e-12°: one point is converted with math, arrays with numpy,
    whose sines can differ in the last bit)."""
    finder = Lookup(
        **{k: demo[k] for k in ("buildings", "grids", "communities", "streets", "staff")}
    )
    minx, miny, maxx, maxy = demo["grids"].total_bounds
    dx, dy = (maxx - minx) * 0.1, (maxy - miny) * 0.1
    rng = np.random.default_rng(11)
    lon = rng.uniform(minx - dx, maxx + dx, 300)
    lat = rng.uniform(miny - dy, maxy + dy, 300)
    reps = demo["buildings"].geometry.representative_point()[:60]
    lon, lat = np.r_[lon, reps.x], np.r_[lat, reps.y]
    levels = set()
    for crs in ("wgs84", "gcj02", "bd09"):
        x, y = (lon, lat) if crs == "wgs84" else from_wgs84(lon, lat, crs)
        for i in range(len(x)):
            personal = bool(i % 2)
            fast = finder.point(float(x[i]), float(y[i]), crs, include_personal=personal)
            ref = finder.point_from_points(float(x[i]), float(y[i]), crs, include_personal=personal)
            for key in ("lon", "lat"):
                assert abs(fast.pop(key) - ref.pop(key)) < 1e-12, (crs, i, key)
            assert fast == ref, (crs, i)
            levels.add(fast["match_level"])
    assert levels == {"building", "grid", "none"}
    # without a grids layer the chain stops at the community, with its people
    no_grids = Lookup(**{k: v for k, v in layers.items() if k != "grids"})
    for p in [pt(30, 30), pt(150, 50), pt(300, 100), pt(-50, 50)]:
        for personal in (False, True):
            assert no_grids.point(*p, include_personal=personal) == no_grids.point_from_points(
                *p, include_personal=personal
            )
    assert no_grids.point(*pt(30, 30))["community_people"]


def test_fast_point_answers_are_copies(finder):
    """Changing an answer must not change the next one (the chains are shared)."""
    a = finder.point(*pt(30, 30), include_personal=True)
    a["people"][0]["name"] = "x"
    a["grid"]["grid_code"] = "x"
    b = finder.point(*pt(30, 30), include_personal=True)
    assert b["people"][0]["name"] == "张三" and b["grid"]["grid_code"] == "310112001001001"


def test_overlapping_polygons_lowest_row_wins():
    """Where grids overlap, single points and batches both give the first grid."""
    grids = gdf(
        [
            {
                "grid_code": f"31011200100100{i}",
                "community_code": "310112001001",
                "kind": "residential",
                "households": 1,
                "geometry": box(0, 0, 100, 100),
            }
            for i in range(1, 8)
        ]
    )
    finder = Lookup(grids=grids)
    assert finder.point(*pt(50, 50))["grid"]["grid_code"] == "310112001001001"
    assert finder.points(*map(np.array, zip(pt(50, 50))))["grid_code"][0] == "310112001001001"
    lon, lat = np.full(40, pt(50, 50)[0]), np.full(40, pt(50, 50)[1])
    assert set(finder.points(lon, lat)["grid_code"]) == {"310112001001001"}


def test_readme_lookup_examples_are_demo_addresses():
    """The README's lookup examples are answered confidently on the demo workspace
    (``gridgis demo``: 30,000 households, seed 7)."""
    import re
    from pathlib import Path

    from gridgis.synth import make_city

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### `gridgis lookup`", 1)[1].split("###", 1)[0]
    queries = re.findall(r'gridgis lookup (?:--workspace|-w) out/demo\.gpkg "([^"]+)"', section)
    assert len(queries) >= 3
    city = make_city(households=30_000, seed=7)
    lk = Lookup(addresses=city.layers["addresses"])
    for q in queries:
        answer = lk.address(q)
        assert answer["confident"], (q, answer["reason"])
        assert answer["rule"] and answer["reason"]


def test_boundary_points_follow_the_one_point_in_polygon_rule():
    """A point on the edge two grids share belongs to the grid of smaller code
    (gridgis.spatial), in batch and single lookups alike, whatever the row order."""
    import geopandas as gpd
    import numpy as np
    import shapely
    from shapely.geometry import box

    from gridgis.spatial import points_in_polygons, rank_of

    grids = gpd.GeoDataFrame(
        {"grid_code": ["G2", "G1", "G3"]},
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(0.5, 0.5, 1.5, 1.5)],  # G3 overlaps
        crs="EPSG:4326",
    )
    lk = Lookup(grids=grids)
    lon = np.array([1.0, 0.5, 1.5, 1.0, 0.25, 1.0, 3.0])
    lat = np.array([0.25, 0.5, 0.25, 0.75, 0.25, 1.5, 3.0])
    # shared edge → G1; 0.5,0.5 is on G3's corner and inside G2 → G2 (interior wins);
    # 1,0.75 is inside G3 and on the G1/G2 edge → G3; 1,1.5 on G3's edge only → G3
    expected = ["G1", "G2", "G1", "G3", "G2", "G3", None]
    batch = lk.points(np.r_[lon, np.full(40, 5.0)], np.r_[lat, np.full(40, 5.0)])  # sweep path
    assert batch["grid_code"].tolist()[:7] == expected
    assert lk.points(lon[:1], lat[:1])["grid_code"].tolist() == ["G1"]
    single = [lk.point(x, y)["grid"] for x, y in zip(lon, lat, strict=True)]
    assert [g["grid_code"] if g else None for g in single] == expected
    ref = points_in_polygons(
        shapely.points(lon, lat), np.asarray(grids.geometry.values), rank_of(grids["grid_code"])
    )
    assert [grids["grid_code"][i] if i >= 0 else None for i in ref] == expected


def test_address_lookup_without_addresses_layer_is_not_found():
    from gridgis.errors import NotFoundError

    with pytest.raises(NotFoundError, match="addresses"):
        Lookup().address("报春路1号")
