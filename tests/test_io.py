"""Readers and ``gridgis import``: formats, encodings, CRSs, field mapping, bad input,
atomicity, and the real Nanjing OpenStreetMap extract (skipped when ../shared is absent)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely
from typer.testing import CliRunner

from gridgis.cli import app
from gridgis.io import ReadError, import_into, parse_field_map, read_source
from gridgis.layers import REJECT_COLUMNS, LayerError
from gridgis.store import open_store

DATA = Path(__file__).parents[2] / "shared" / "data"
NANJING_PBF = DATA / "nanjing-xinjiekou-osm" / "nanjing_osm_bbox.osm.pbf"
GEOD = pyproj.Geod(ellps="WGS84")


def _box(lon: float, lat: float, size: float = 0.0004) -> shapely.Polygon:
    return shapely.box(lon, lat, lon + size, lat + size)


def _buildings(n: int = 4) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "BLDG_ID": [f"b{i}" for i in range(n)],
            "名称": [f"{i}号楼" for i in range(n)],
            "HH_NUM": [str(30 + i) for i in range(n)],
            "层数": [6] * n,
            "用途": ["住宅"] * n,
        },
        geometry=[_box(118.78 + 0.001 * i, 32.04) for i in range(n)],
        crs="EPSG:4326",
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ws(tmp_path) -> Path:
    """A workspace already holding a roads layer, to check failed imports leave it alone."""
    path = tmp_path / "ws.gpkg"
    roads = gpd.GeoDataFrame(
        {"road_id": ["r1"], "name": ["中山路"], "road_class": ["arterial"]},
        geometry=[shapely.LineString([(118.78, 32.04), (118.79, 32.04)])],
        crs="EPSG:4326",
    )
    src = tmp_path / "roads.geojson"
    roads.to_file(src)
    import_into(open_store(path), [src])
    return path


# --------------------------------------------------------------------------------------
# Field mapping, aliases, layer inference
# --------------------------------------------------------------------------------------


def test_field_map_and_chinese_aliases(tmp_path):
    src = tmp_path / "楼栋.gpkg"
    _buildings().to_file(src)
    out = read_source(src, field_map=parse_field_map("households=HH_NUM,building_id=BLDG_ID"))
    b = out["buildings"].data  # layer inferred from 楼栋
    assert list(b["households"]) == [30, 31, 32, 33]
    assert list(b["building_id"]) == ["b0", "b1", "b2", "b3"]
    assert list(b["name"]) == ["0号楼", "1号楼", "2号楼", "3号楼"]  # 名称 alias
    assert set(b["use"]) == {"residential"}  # 住宅 translated
    assert (b["floors"] == 6).all()  # 层数 alias
    assert not b["households_estimated"].any()
    assert any("alias" in n for n in out["buildings"].notes)


def test_field_map_names_missing_source_field(tmp_path):
    src = tmp_path / "buildings.gpkg"
    _buildings().to_file(src)
    with pytest.raises(
        ReadError, match=r"buildings.gpkg.*field map households=HHX.*no field 'HHX'"
    ):
        read_source(src, field_map={"households": "HHX"})
    with pytest.raises(ReadError, match="layer 'buildings' has no field 'household'"):
        read_source(src, field_map={"household": "HH_NUM"})


def test_unknown_layer_name_asks_for_layer(tmp_path):
    src = tmp_path / "data2023.geojson"
    _buildings().to_file(src)
    with pytest.raises(ReadError, match="give the layer parameter"):
        read_source(src)
    assert len(read_source(src, layer="buildings")["buildings"].data) == 4


@pytest.fixture(scope="module")
def city():
    from gridgis.synth import make_city

    return make_city(households=10_000)


def test_workspace_round_trip_of_demo_city(tmp_path, city):
    """Every layer of the demo city, written as one multi-layer GeoPackage, comes back
    with the same rows and households, layers inferred from their names."""
    src = tmp_path / "city.gpkg"
    for name, frame in city.layers.items():
        if isinstance(frame, gpd.GeoDataFrame):
            pyogrio.write_dataframe(frame, src, layer=name)
        else:
            pyogrio.write_dataframe(frame, src, layer=name)
    out = read_source(src)
    assert set(out) == set(city.layers)
    for name, frame in city.layers.items():
        assert len(out[name].data) == len(frame), name
        assert len(out[name].rejects) == 0, out[name].rejects.head()
    assert out["buildings"].data["households"].sum() == city.layers["buildings"]["households"].sum()


# --------------------------------------------------------------------------------------
# Shapefiles in GBK
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cpg, encoding", [(True, None), (False, "gbk"), (False, None)])
def test_gbk_shapefile(tmp_path, cpg, encoding):
    src = tmp_path / "建筑.shp"
    pyogrio.write_dataframe(_buildings(), src, encoding="gbk")
    assert b"\xba\xc5\xc2\xa5" in (tmp_path / "建筑.dbf").read_bytes()  # 号楼 in GBK
    if not cpg:
        (tmp_path / "建筑.cpg").unlink()
    out = read_source(src, encoding=encoding, field_map={"households": "HH_NUM"})
    b = out["buildings"].data
    assert list(b["name"]) == ["0号楼", "1号楼", "2号楼", "3号楼"]
    assert list(b["households"]) == [30, 31, 32, 33]
    if not cpg and encoding is None:
        assert any("GBK (detected)" in n for n in out["buildings"].notes)
    if not cpg:  # the wrong encoding is an error naming the file, not garbled names
        with pytest.raises(
            ReadError, match=r"建筑.shp: attributes are not utf-8.*encoding parameter"
        ):
            read_source(src, encoding="utf-8", field_map={"households": "HH_NUM"})


def test_shapefile_without_prj_needs_crs(tmp_path, ws):
    src = tmp_path / "buildings.shp"
    pyogrio.write_dataframe(_buildings(), src)
    (tmp_path / "buildings.prj").unlink()
    before = _digest(ws)
    with pytest.raises(ReadError, match=r"buildings.shp: no CRS.*crs parameter"):
        import_into(open_store(ws), [src], field_map={"households": "HH_NUM"})
    assert _digest(ws) == before
    out = read_source(src, crs="cgcs2000", field_map={"households": "HH_NUM"})
    assert out["buildings"].data.crs.to_epsg() == 4326


# --------------------------------------------------------------------------------------
# CRSs: GCJ-02 / BD-09 CSVs, Gauss–Krüger zones
# --------------------------------------------------------------------------------------


def _ref_wgs_to_gcj(lon: float, lat: float) -> tuple[float, float]:
    """The published GCJ-02 forward algorithm, written independently of gridgis.crs."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * math.sqrt(abs(x))
        + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
        + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
        + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * math.sqrt(abs(x))
        + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
        + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
        + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    )
    rad = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    dlat = dlat * 180.0 / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    dlon = dlon * 180.0 / (a / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lon + dlon, lat + dlat


def _ref_gcj_to_bd(lon: float, lat: float) -> tuple[float, float]:
    xp = math.pi * 3000.0 / 180.0
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * xp)
    t = math.atan2(lat, lon) + 0.000003 * math.cos(lon * xp)
    return z * math.cos(t) + 0.0065, z * math.sin(t) + 0.006


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {"lon": rng.uniform(118.70, 118.90, 200), "lat": rng.uniform(31.95, 32.12, 200)}
    )


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_offset_csv_lands_within_half_a_metre(tmp_path, truth, crs):
    shifted = [_ref_wgs_to_gcj(x, y) for x, y in zip(truth.lon, truth.lat, strict=True)]
    if crs == "bd09":
        shifted = [_ref_gcj_to_bd(x, y) for x, y in shifted]
    # an Amap-style export: Chinese headers, 经度/纬度, category labels in Chinese
    csv = pd.DataFrame(
        {
            "名称": [f"网点{i}" for i in range(len(truth))],
            "类别": ["幼儿园", "药店", "菜市场", "公交站"] * (len(truth) // 4),
            "经度": [p[0] for p in shifted],
            "纬度": [p[1] for p in shifted],
        }
    )
    src = tmp_path / "pois.csv"
    csv.to_csv(src, index=False, encoding="utf-8")
    fac = read_source(src, layer="facilities", crs=crs)["facilities"].data
    _, _, dist = GEOD.inv(
        fac.geometry.x.to_numpy(),
        fac.geometry.y.to_numpy(),
        truth.lon.to_numpy(),
        truth.lat.to_numpy(),
    )
    assert dist.max() < 0.5
    # and read as WGS84 it would have been hundreds of metres off
    raw = np.array(shifted)
    _, _, off = GEOD.inv(raw[:, 0], raw[:, 1], truth.lon.to_numpy(), truth.lat.to_numpy())
    assert off.min() > 100
    assert list(fac["category"][:4]) == ["kindergarten", "pharmacy", "vegetable_market", "bus_stop"]


def test_csv_needs_crs_and_columns(tmp_path, ws):
    src = tmp_path / "facilities.csv"
    pd.DataFrame({"name": ["a"], "category": ["bank"], "X坐标": [118.8], "Y坐标": [32.0]}).to_csv(
        src, index=False
    )
    before = _digest(ws)
    with pytest.raises(ReadError, match="no lon/lat columns.*field_map parameter \\(lon="):
        import_into(open_store(ws), [src], crs="wgs84")
    out = read_source(src, crs="wgs84", field_map={"lon": "X坐标", "lat": "Y坐标"})
    assert out["facilities"].data.geometry.iloc[0].equals(shapely.Point(118.8, 32.0))
    pd.DataFrame({"name": ["a"], "category": ["bank"], "lon": [118.8], "lat": [32.0]}).to_csv(
        src, index=False
    )
    with pytest.raises(ReadError, match=r"facilities.csv: a CSV carries no CRS.*crs parameter"):
        import_into(open_store(ws), [src])
    assert _digest(ws) == before


def test_gbk_csv_is_detected(tmp_path):
    src = tmp_path / "设施.csv"
    pd.DataFrame({"名称": ["菜场甲"], "类别": ["菜市场"], "lng": [118.8], "lat": [32.0]}).to_csv(
        src, index=False, encoding="gbk"
    )
    out = read_source(src, crs="wgs84")
    assert out["facilities"].data["name"].iloc[0] == "菜场甲"
    assert out["facilities"].data["category"].iloc[0] == "vegetable_market"


@pytest.mark.parametrize("epsg", [4549, 4528])
@pytest.mark.parametrize("swap", [False, True])
def test_gauss_kruger_zone_layer_lands_in_place(tmp_path, truth, swap, epsg):
    """EPSG:4549 (CGCS2000 / 3-degree GK CM 120E) and EPSG:4528 (zone 40, easting with the
    zone prefix), axes northing, easting: a layer written as x = easting (GIS order) or
    swapped (survey order) lands on the WGS84 truth."""
    tr = pyproj.Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    e, n = tr.transform(truth.lon.to_numpy(), truth.lat.to_numpy())
    prefix = 40_000_000 if epsg == 4528 else 0
    assert np.all(e > prefix + 300_000) and np.all(e < prefix + 700_000)
    assert np.all(n > 3_500_000) and np.all(n < 3_600_000)
    x, y = (n, e) if swap else (e, n)
    frame = gpd.GeoDataFrame(
        {"name": [f"p{i}" for i in range(len(truth))], "category": "bank"},
        geometry=shapely.points(x, y),
        crs=f"EPSG:{epsg}",
    )
    src = tmp_path / "facilities.gpkg"
    frame.to_file(src)
    out = read_source(src)
    fac = out["facilities"].data
    _, _, dist = GEOD.inv(
        fac.geometry.x.to_numpy(),
        fac.geometry.y.to_numpy(),
        truth.lon.to_numpy(),
        truth.lat.to_numpy(),
    )
    assert dist.max() < 0.01
    assert any("exchanged" in note for note in out["facilities"].notes) == swap


# --------------------------------------------------------------------------------------
# Bad input: each its error, the workspace unchanged
# --------------------------------------------------------------------------------------


def test_missing_required_field(tmp_path, ws):
    src = tmp_path / "roads2.geojson"
    gpd.GeoDataFrame(
        {"name": ["x"]}, geometry=[shapely.LineString([(0, 0), (1, 1)])], crs="EPSG:4326"
    ).to_file(src)
    before = _digest(ws)
    with pytest.raises(
        LayerError,
        match=r"roads2.geojson: layer 'roads' lacks required "
        r"field\(s\) road_class.*field_map parameter \(road_class=",
    ):
        import_into(open_store(ws), [src], layer="roads")
    with pytest.raises(LayerError, match="inferred from the name; give the layer parameter"):
        import_into(open_store(ws), [src])
    assert _digest(ws) == before


def test_unreadable_and_missing_files(tmp_path, ws):
    junk = tmp_path / "buildings.gpkg"
    junk.write_bytes(b"this is not a geopackage" * 10)
    before = _digest(ws)
    with pytest.raises(ReadError, match=r"buildings.gpkg: cannot read"):
        import_into(open_store(ws), [junk])
    with pytest.raises(ReadError, match=r"nope.shp: no such file"):
        import_into(open_store(ws), [tmp_path / "nope.shp"])
    assert _digest(ws) == before


def test_second_file_failing_writes_nothing(tmp_path, ws):
    good = tmp_path / "buildings.gpkg"
    _buildings().to_file(good)
    bad = tmp_path / "facilities.csv"
    bad.write_text("name,category,lon,lat\na,bank,118.8,32.0\n")
    before = _digest(ws)
    with pytest.raises(ReadError, match="no CRS"):
        import_into(open_store(ws), [good, bad], field_map={"households": "HH_NUM"})
    assert _digest(ws) == before
    assert open_store(ws).layers() == ["rejects", "roads"]


def test_bad_rows_go_to_rejects(tmp_path, ws):
    """Non-numeric and negative households, duplicate keys, empty geometry: rejected with
    row and field; a self-intersecting polygon repaired and reported; the rest stored."""
    b = _buildings(7)
    b.loc[1, "HH_NUM"] = "三十"
    b.loc[2, "HH_NUM"] = "-5"
    b.loc[3, "BLDG_ID"] = "b0"
    b.loc[4, "geometry"] = None
    bowtie = shapely.Polygon([(118.8, 32.0), (118.801, 32.001), (118.801, 32.0), (118.8, 32.001)])
    assert not bowtie.is_valid
    b.loc[5, "geometry"] = bowtie
    src = tmp_path / "buildings.gpkg"
    b.to_file(src)
    report = import_into(
        open_store(ws), [src], field_map={"households": "HH_NUM", "building_id": "BLDG_ID"}
    )
    rej = report.rejects.set_index("row")
    assert rej.loc[2, "field"] == "households" and rej.loc[2, "reason"] == "not a number"
    assert rej.loc[3, "reason"] == "negative"
    assert (
        rej.loc[4, "field"] == "building_id"
        and "duplicate key (first at row 1)" in rej.loc[4, "reason"]
    )
    assert rej.loc[5, "reason"] == "no geometry"
    assert set(rej["source"]) == {str(src)}
    assert any("repaired 1 invalid" in n and "rows 6" in n for n in report.notes)
    store = open_store(ws)
    stored = store.read("buildings")
    assert sorted(stored["building_id"]) == ["b0", "b5", "b6"]
    assert stored.geometry.is_valid.all()
    assert len(store.read("roads")) == 1  # untouched layer kept
    rejects = store.read("rejects")
    assert list(rejects.columns[:6]) == REJECT_COLUMNS and len(rejects) == 4


# --------------------------------------------------------------------------------------
# OpenStreetMap
# --------------------------------------------------------------------------------------

OSM_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="hand">
 <node id="1" lat="32.0400" lon="118.7800"/>
 <node id="2" lat="32.0400" lon="118.7900"/>
 <node id="3" lat="32.0500" lon="118.7900"/>
 <node id="4" lat="32.0500" lon="118.7800"/>
 <node id="11" lat="32.0420" lon="118.7820"/>
 <node id="12" lat="32.0420" lon="118.7830"/>
 <node id="13" lat="32.0430" lon="118.7830"/>
 <node id="14" lat="32.0430" lon="118.7820"/>
 <node id="21" lat="32.0600" lon="118.7800"/>
 <node id="22" lat="32.0600" lon="118.7810"/>
 <node id="23" lat="32.0610" lon="118.7810"/>
 <node id="24" lat="32.0610" lon="118.7800"/>
 <node id="31" lat="32.0700" lon="118.7800"/>
 <node id="32" lat="32.0700" lon="118.7900"/>
 <node id="33" lat="32.0790" lon="118.7900"/>
 <node id="34" lat="32.0790" lon="118.7800"/>
 <node id="41" lat="32.0450" lon="118.7850"><tag k="amenity" v="school"/>
  <tag k="name" v="琅琊路小学"/></node>
 <node id="42" lat="32.0450" lon="118.7860"><tag k="shop" v="convenience"/></node>
 <node id="43" lat="32.0450" lon="118.7870"><tag k="highway" v="bus_stop"/></node>
 <node id="44" lat="32.0450" lon="118.7880"><tag k="amenity" v="social_facility"/>
  <tag k="social_facility" v="nursing_home"/></node>
 <node id="45" lat="32.0450" lon="118.7890"><tag k="natural" v="tree"/></node>
 <way id="100"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
  <tag k="landuse" v="residential"/></way>
 <way id="101"><nd ref="11"/><nd ref="12"/><nd ref="13"/><nd ref="14"/><nd ref="11"/>
  <tag k="building" v="yes"/><tag k="building:levels" v="18"/></way>
 <way id="102"><nd ref="21"/><nd ref="22"/><nd ref="23"/><nd ref="24"/><nd ref="21"/>
  <tag k="building" v="yes"/><tag k="height" v="30 m"/></way>
 <way id="103"><nd ref="31"/><nd ref="32"/><nd ref="33"/><nd ref="34"/><nd ref="31"/></way>
 <way id="200"><nd ref="1"/><nd ref="2"/><tag k="highway" v="primary"/>
  <tag k="name" v="北京东路"/></way>
 <way id="201"><nd ref="2"/><nd ref="3"/><tag k="highway" v="tertiary"/></way>
 <way id="202"><nd ref="3"/><nd ref="4"/><tag k="highway" v="living_street"/></way>
 <way id="203"><nd ref="4"/><nd ref="1"/><tag k="highway" v="footway"/></way>
 <way id="204"><nd ref="11"/><nd ref="21"/><tag k="highway" v="proposed"/></way>
 <relation id="300"><member type="way" ref="103" role="outer"/>
  <tag k="type" v="multipolygon"/><tag k="leisure" v="park"/><tag k="name" v="玄武湖公园"/>
 </relation>
 <relation id="302"><member type="way" ref="100" role="outer"/>
  <tag k="type" v="boundary"/><tag k="boundary" v="administrative"/>
  <tag k="admin_level" v="8"/><tag k="name" v="湖南路街道"/><tag k="ref" v="320106003000"/>
 </relation>
 <relation id="303"><member type="way" ref="103" role="outer"/>
  <tag k="type" v="boundary"/><tag k="boundary" v="administrative"/>
  <tag k="admin_level" v="10"/><tag k="name" v="无代码社区"/></relation>
 <relation id="301"><member type="way" ref="999" role="outer"/>
  <tag k="type" v="boundary"/><tag k="boundary" v="administrative"/>
  <tag k="admin_level" v="8"/><tag k="name" v="新街口街道"/></relation>
</osm>
"""


def test_osm_tags_to_layers(tmp_path):
    src = tmp_path / "tiny.osm"
    src.write_text(OSM_XML, encoding="utf-8")
    out = read_source(src)
    b = out["buildings"].data.set_index("building_id")
    # building=yes inside landuse=residential counts as residential, households estimated
    assert b.loc["osm_w101", "use"] == "residential" and b.loc["osm_w101", "floors"] == 18
    assert b.loc["osm_w102", "use"] == "other" and b.loc["osm_w102", "floors"] == 10
    assert b.loc["osm_w101", "households_estimated"]
    area = gpd.GeoSeries([b.loc["osm_w101", "geometry"]], crs=4326).to_crs(4549).area[0]
    assert b.loc["osm_w101", "households"] == round(area * 18 / 100.0)
    assert b.loc["osm_w102", "households"] == 0
    roads = out["roads"].data.set_index("road_id")["road_class"].to_dict()
    assert roads == {
        "osm_w200": "arterial",
        "osm_w201": "secondary",
        "osm_w202": "branch",
        "osm_w203": "path",
    }
    fac = out["facilities"].data.set_index("facility_id")["category"].to_dict()
    assert fac == {
        "osm_n41": "primary_school",
        "osm_n42": "retail",
        "osm_n43": "bus_stop",
        "osm_n44": "elderly_care_home",
    }
    green = out["green_spaces"].data
    assert list(green["green_id"]) == ["osm_r300"] and green["kind"].iloc[0] == "park"
    # complete boundaries: with a valid code a street; without one skipped with a note
    streets = out["streets"].data
    assert list(streets["street_code"]) == ["320106003"] and streets["name"][0] == "湖南路街道"
    assert (
        streets.geometry[0]
        .normalize()
        .equals(shapely.MultiPolygon([shapely.box(118.78, 32.04, 118.79, 32.05)]).normalize())
    )
    assert "communities" not in out
    notes = out["buildings"].notes
    assert any("incomplete" in n and "新街口街道" in n for n in notes)
    assert any("no valid 12-digit code" in n and "无代码社区" in n for n in notes)


def _way(wid: int, a: int, b: int, **tags: str) -> str:
    tag = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f' <way id="{wid}"><nd ref="{a}"/><nd ref="{b}"/>{tag}</way>\n'


TUNNEL_XML = (
    "<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\">\n"
    + "".join(f' <node id="{i}" lat="32.04{i}" lon="118.78{i}"/>\n' for i in range(1, 6))
    + _way(1, 1, 2, highway="trunk", tunnel="yes", layer="-1", name="水西门隧道")
    + _way(2, 2, 3, highway="residential", tunnel="yes")
    + _way(3, 3, 4, highway="tertiary", tunnel="culvert")
    + _way(4, 1, 2, highway="trunk", name="虎踞南路")
    + _way(5, 2, 3, highway="primary", tunnel="no")
    + _way(6, 3, 4, highway="service", tunnel="building_passage")
    + _way(7, 4, 5, highway="residential", covered="yes")
    + _way(8, 1, 3, highway="footway", tunnel="yes", layer="-1")
    + _way(9, 2, 4, highway="steps", tunnel="yes")
    + "</osm>\n"
)


def test_osm_motor_road_tunnels_are_dropped_walking_tunnels_kept(tmp_path):
    src = tmp_path / "tunnels.osm"
    src.write_text(TUNNEL_XML, encoding="utf-8")
    out = read_source(src)
    roads = out["roads"].data.set_index("road_id")["road_class"].to_dict()
    assert roads == {
        "osm_w4": "arterial",
        "osm_w5": "arterial",
        "osm_w6": "branch",
        "osm_w7": "branch",
        "osm_w8": "path",
        "osm_w9": "path",
    }
    note = [n for v in out.values() for n in v.notes if "tunnel" in n]
    assert len(note) == 1 and "dropped 3 motor-road tunnel ways" in note[0]
    assert note[0].endswith("水西门隧道, osm_w2, osm_w3")


def _node(nid: int, lon: float, lat: float, **tags: str) -> str:
    tag = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f' <node id="{nid}" lat="{lat}" lon="{lon}">{tag}</node>\n'


def _ring(wid: int, refs: list[int], **tags: str) -> str:
    nds = "".join(f'<nd ref="{r}"/>' for r in [*refs, refs[0]])
    tag = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f' <way id="{wid}">{nds}{tag}</way>\n'


def _addr(number: str, street: str | None = None, **tags: str) -> dict[str, str]:
    out = {"addr:housenumber": number, **tags}
    if street is not None:
        out["addr:street"] = street
    return out


# 0.001° of latitude is 111 m; the building 华荣大厦 (管家桥85号) is 47 m × 44 m
ADDR_XML = (
    "<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\">\n"
    + _node(
        1,
        116.3300,
        39.9920,
        **_addr("43", "成府路", amenity="college", name="清华大学五道口金融学院"),
    )
    + _node(2, 116.3440, 39.9970, **_addr("丁11", "学院路"))
    + _node(3, 116.3460, 39.9990, **_addr("16号院", "小月河东畔路"))
    + _node(4, 116.2950, 40.0050, **_addr("28號", "清华西路"))
    + _node(
        5,
        116.3250,
        39.9919,
        **_addr("8", "中关村东路", name="工商银行", **{"addr:housename": "1号 科技大厦D座"}),
    )
    + _node(6, 116.3310, 39.9930, **_addr("3", None, **{"addr:place": "双泉堡"}))
    + _node(
        7, 118.7852, 32.0452, **_addr("85号", "管家桥", amenity="bank", name="中国银行")
    )  # in the building
    + _node(8, 118.7950, 32.0452, **_addr("85", "管家桥"))  # 930 m east: kept
    + _node(9, 116.3340, 39.9950, **_addr("1层", "成府路", shop="bakery"))
    + _node(10, 116.3350, 39.9950, **_addr("7栋", "良友里"))
    + _node(11, 116.3360, 39.9950, **_addr("1;3", "成府路"))
    + _node(12, 116.3370, 39.9950, **_addr("12"))  # no street
    + _node(13, 116.3380, 39.9950, **_addr("1602c", "Huaqing Jia Yuan"))
    + "".join(
        f' <node id="{20 + i}" lat="{lat}" lon="{lon}"/>\n'
        for i, (lon, lat) in enumerate(
            [
                (118.7850, 32.0450),
                (118.7855, 32.0450),
                (118.7855, 32.0454),
                (118.7850, 32.0454),
                (116.3400, 40.0000),
                (116.3420, 40.0000),
                (116.3420, 40.0010),
                (116.3400, 40.0010),
                (116.3500, 40.0020),
                (116.3510, 40.0030),
            ]
        )
    )
    + _ring(40, [20, 21, 22, 23], **_addr("85号", "管家桥", building="commercial", name="华荣大厦"))
    + _ring(41, [24, 25, 26, 27], **_addr("5", "颐和园路", amenity="university", name="北京大学"))
    + _way(42, 28, 29, **_addr("2", "延龄巷"))  # an open way with an address only
    + "</osm>\n"
)


def test_osm_addresses(tmp_path):
    from gridgis.address import parse

    src = tmp_path / "addr.osm"
    src.write_text(ADDR_XML, encoding="utf-8")
    out = read_source(src)
    a = out["addresses"].data.set_index("address_id")
    assert a["text"].to_dict() == {
        "osm_n1": "成府路43号",
        "osm_n2": "学院路丁11号",
        "osm_n3": "小月河东畔路16号院",
        "osm_n4": "清华西路28号",
        "osm_n5": "中关村东路8号",
        "osm_n6": "双泉堡3号",
        "osm_n8": "管家桥85号",
        "osm_w40": "管家桥85号",
        "osm_w41": "颐和园路5号",
        "osm_w42": "延龄巷2号",
    }
    assert a.loc["osm_n2", "road"] == "学院路" and a.loc["osm_n2", "number"] == "丁11号"
    assert a.loc["osm_n6", "road"] == "双泉堡"  # addr:place when there is no street
    # the name is the object's own; addr:housename is no part of the text
    assert a.loc["osm_n1", "name"] == "清华大学五道口金融学院"
    assert a.loc["osm_n5", "name"] == "工商银行"
    # texts on named roads parse into that road and door number
    for aid in ("osm_n1", "osm_n2", "osm_n3", "osm_n4", "osm_n5", "osm_w41", "osm_w42"):
        p = parse(a.loc[aid, "text"])
        assert (p.road, p.number) == (a.loc[aid, "road"], a.loc[aid, "number"].removesuffix("院"))
    # nodes where they are; areas at a point inside them, lines on the line
    assert a.loc["osm_n1", "geometry"].equals(shapely.Point(116.33, 39.992))
    assert a.geometry.geom_type.eq("Point").all()
    assert shapely.box(118.785, 32.045, 118.7855, 32.0454).contains(a.loc["osm_w40", "geometry"])
    assert shapely.box(116.34, 40.0, 116.342, 40.001).contains(a.loc["osm_w41", "geometry"])
    assert (
        shapely.LineString([(116.35, 40.002), (116.351, 40.003)]).distance(
            a.loc["osm_w42", "geometry"]
        )
        < 1e-9
    )
    # building_id only for an object imported as a building (not for the campus area)
    assert "osm_w40" in set(out["buildings"].data["building_id"])
    assert a["building_id"].dropna().to_dict() == {"osm_w40": "osm_w40"}
    # 管家桥85号: the bank node beside the building is merged into it; the same text 930 m
    # away is another place and stays
    notes = " | ".join(out["buildings"].notes)
    assert "1 duplicates (same text within 150 m of a kept one) merged: 管家桥85号" in notes
    assert "skipped 3 objects whose addr:housenumber is not a door number" in notes
    assert "成府路 1层, 良友里 7栋, 成府路 1;3" in notes
    assert (
        "skipped 1 objects with addr:housenumber but no addr:street or addr:place "
        "(osm_n12 12)" in notes
    )
    assert "skipped 1 objects whose street is not written in Chinese" in notes
    # a place or a bridge name is no road to the parser: kept, and said
    assert (
        "3 of 10 texts are not split into road + door number by the address parser "
        "(kept; a query is parsed the same way): 双泉堡3号: 双泉堡 + 3号, 管家桥85号: "
        "管家桥 + 85号" in notes
    )
    assert out["addresses"].rejects.empty


@pytest.mark.parametrize(
    ("housenumber", "door"),
    [
        ("8", "8号"),
        ("丁11", "丁11号"),
        ("甲2号", "甲2号"),
        ("12-8", "12-8号"),
        ("85号", "85号"),
        ("16号院", "16号院"),
        ("28號", "28号"),
        ("１２", "12号"),
        ("12a", "12A号"),
        ("1层", None),
        ("7栋", None),
        ("3号楼", None),
        ("1;3", None),
        ("1-3号楼", None),
        ("", None),
    ],
)
def test_door_number(housenumber, door):
    from gridgis.io.osm import door_number

    assert door_number(housenumber) == door


@pytest.mark.shared
@pytest.mark.skipif(not NANJING_PBF.exists(), reason="needs ../shared/data")
def test_nanjing_osm_import(tmp_path):
    ws = tmp_path / "nj.gpkg"
    report = import_into(open_store(ws), [NANJING_PBF])
    store = open_store(ws)
    b = store.read("buildings")
    assert len(b) >= 1200
    res = b["use"] == "residential"
    assert res.sum() >= 300
    assert b.loc[res, "households_estimated"].all() and (b.loc[res, "households"] > 0).all()
    assert not b.loc[~res, "households_estimated"].any()
    roads = store.read("roads")
    classes = roads["road_class"].value_counts()
    assert set(classes.index) == {"arterial", "secondary", "branch", "path"}
    # the 水西门 tunnel's two tubes (trunk, under 虎踞南路) are dropped, nothing else
    assert not roads["name"].eq("水西门隧道").any()
    tunnel = [n for n in report.notes if "tunnel" in n]
    assert len(tunnel) == 1 and "dropped 2 motor-road tunnel ways" in tunnel[0]
    cats = store.read("facilities")["category"].value_counts()
    assert len(cats) >= 8 and cats["bus_stop"] >= 30
    assert {"park", "green"} <= set(store.read("green_spaces")["kind"])
    assert {"school", "hospital"} <= set(store.read("institutions")["kind"])
    assert report.counts()["buildings"] == (len(b), 0)
    assert store.info("buildings").params["import"]["sources"]["buildings"] == [str(NANJING_PBF)]
    # addresses from addr:* tags: 管家桥85号 is one place (a building and three POIs in it)
    addr = store.read("addresses").set_index("text")
    assert len(addr) >= 25 and addr.index.is_unique
    assert addr.loc["中山南路79号", "name"] == "中央商场"
    assert addr.loc["管家桥85号", "building_id"] == addr.loc["管家桥85号", "address_id"]


@pytest.mark.shared
@pytest.mark.skipif(not (DATA / "shanghai-amap-poi").exists(), reason="needs ../shared/data")
def test_amap_poi_csv_types_to_categories():
    """Real Amap POIs (name, address, type '科教文化服务;学校;小学', lat, lon; this copy is
    already WGS84): types mapped by the POI type table; addresses '[]' rejected."""
    src = DATA / "shanghai-amap-poi" / "shanghai_hospital.csv"
    fac = read_source(src, layer="facilities", crs="wgs84")["facilities"]
    cats = fac.data["category"].value_counts()
    assert cats["hospital"] > 2500 and cats["clinic"] > 1500
    assert fac.data["address"].notna().all()
    assert set(fac.rejects["field"]) == {"address"}
    assert (fac.rejects["value"] == "[]").all()
    assert len(fac.data) + fac.rejects["row"].nunique() == 7513
    minx, miny, maxx, maxy = fac.data.total_bounds
    assert 120.8 < minx and maxx < 122.2 and 30.6 < miny and maxy < 31.9


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def test_cli_import_then_info(tmp_path):
    runner = CliRunner()
    src = tmp_path / "楼栋.shp"
    b = _buildings()
    b.loc[1, "HH_NUM"] = "-3"
    pyogrio.write_dataframe(b, src, encoding="gbk")
    (tmp_path / "楼栋.cpg").unlink()
    ws = tmp_path / "ws.gpkg"
    res = runner.invoke(
        app,
        [
            "import",
            str(src),
            "--workspace",
            str(ws),
            "--encoding",
            "gbk",
            "--map",
            "households=HH_NUM,building_id=BLDG_ID",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "buildings" in res.stdout and "negative" in res.stdout
    res = runner.invoke(app, ["info", str(ws)])
    assert res.exit_code == 0, res.output
    assert "households 95" in " ".join(res.stdout.split())  # 30+32+33; the -3 row rejected
    res = runner.invoke(app, ["import", str(tmp_path / "missing.csv"), "--workspace", str(ws)])
    assert res.exit_code != 0 and "missing.csv: no such file" in " ".join(res.stderr.split())
    assert "Example" in runner.invoke(app, ["import", "--help"]).stdout


def test_files_without_keys_import_together(tmp_path):
    """Two CSVs of one layer without id columns: keys come from the file names, so the
    second file's rows are not mistaken for duplicates of the first's."""
    for stem, cat in (("幼儿园", "幼儿园"), ("菜市场", "菜市场")):
        pd.DataFrame(
            {
                "名称": [f"{stem}{i}" for i in range(3)],
                "类别": cat,
                "lon": [118.78, 118.79, 118.80],
                "lat": 32.04,
            }
        ).to_csv(tmp_path / f"{stem}.csv", index=False)
    ws = tmp_path / "ws.gpkg"
    report = import_into(
        open_store(ws),
        [tmp_path / "幼儿园.csv", tmp_path / "菜市场.csv"],
        layer="facilities",
        crs="wgs84",
    )
    fac = open_store(ws).read("facilities")
    assert report.counts()["facilities"] == (6, 0)
    assert list(fac["facility_id"]) == [
        "幼儿园-1",
        "幼儿园-2",
        "幼儿园-3",
        "菜市场-1",
        "菜市场-2",
        "菜市场-3",
    ]
    assert fac["category"].value_counts().to_dict() == {"kindergarten": 3, "vegetable_market": 3}


def test_duplicate_key_across_files(tmp_path):
    one, two = tmp_path / "buildings_a.geojson", tmp_path / "buildings_b.geojson"
    _buildings(2).to_file(one)
    b = _buildings(3)
    b.loc[2, "BLDG_ID"] = "b1"  # features[2] of the second file repeats a key of the first
    b.loc[0, "BLDG_ID"] = "x0"
    b.loc[1, "BLDG_ID"] = "x1"
    b.to_file(two)
    report = import_into(
        open_store(tmp_path / "ws.gpkg"),
        [one, two],
        layer="buildings",
        field_map={"households": "HH_NUM", "building_id": "BLDG_ID"},
    )
    rej = report.rejects
    assert len(rej) == 1
    assert (rej["source"][0], rej["row"][0], rej["field"][0], rej["value"][0]) == (
        str(two),
        2,  # the file's own feature id (GeoJSON: features[2])
        "building_id",
        "b1",
    )
    assert rej["reason"][0] == f"duplicate key (first in {one})"
    stored = open_store(tmp_path / "ws.gpkg").read("buildings")
    assert sorted(stored["building_id"]) == ["b0", "b1", "x0", "x1"]
    assert "_source_row" not in stored.columns and "_where" not in stored.columns


def test_demo_step_imports_gbk_shapefile_and_gcj02_csv(tmp_path, city):
    """The `gridgis demo` step: per-source options (a shapefile with its .prj beside a
    GCJ-02 CSV) in one import; it raises if anything comes back different."""
    from gridgis.standards import Settings
    from gridgis.workflows.demo import demo_import

    store = open_store(tmp_path / "demo.gpkg")
    store.write_many(city.layers)
    line = demo_import(store, Settings(), tmp_path).summary
    assert "GBK detected" in line and "max error 0.000 m" in line
    imported = open_store(tmp_path / "import_demo" / "imported.gpkg")
    assert len(imported.read("facilities")) == len(city.layers["facilities"])
    assert imported.info("buildings").params["import"]["sources"]["facilities"] == [
        str(tmp_path / "import_demo" / "amap_pois.csv")
    ]
