"""CRS handling checked against an independent implementation and against pyproj.

The reference GCJ-02/BD-09 algorithm below is written separately from gridgis.crs, in
scalar ``math`` code following the published (leaked, widely reproduced) algorithm; where
the PyPI package ``coord-convert`` is installed (dev extra) it is a second, third-party
reference. Round trips are measured in metres on the WGS84 ellipsoid (pyproj.Geod).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import Point, Polygon

from gridgis import crs

N_POINTS = 1_200
GEOD = pyproj.Geod(ellps="WGS84")


# --------------------------------------------------------------------------------------
# Independent reference: the published GCJ-02 / BD-09 algorithm, scalar math
# --------------------------------------------------------------------------------------
REF_A = 6378245.0
REF_EE = 0.00669342162296594323


def _ref_out_of_china(lon: float, lat: float) -> bool:
    return lon < 72.004 or lon > 137.8347 or lat < 0.8293 or lat > 55.8271


def _ref_dlat(x: float, y: float) -> float:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    r += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return r


def _ref_dlon(x: float, y: float) -> float:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return r


def ref_wgs2gcj(lon: float, lat: float) -> tuple[float, float]:
    if _ref_out_of_china(lon, lat):
        return lon, lat
    dlat = _ref_dlat(lon - 105.0, lat - 35.0)
    dlon = _ref_dlon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - REF_EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((REF_A * (1 - REF_EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (REF_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def ref_gcj2bd(lon: float, lat: float) -> tuple[float, float]:
    x_pi = math.pi * 3000.0 / 180.0
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * x_pi)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * x_pi)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def ref_wgs2bd(lon: float, lat: float) -> tuple[float, float]:
    return ref_gcj2bd(*ref_wgs2gcj(lon, lat))


def _apply(func, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.array([func(float(a), float(b)) for a, b in zip(lon, lat, strict=True)])
    return out[:, 0], out[:, 1]


def metres_between(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance on WGS84, metres (vectorised)."""
    _, _, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist)


@pytest.fixture(scope="module")
def china_points() -> tuple[np.ndarray, np.ndarray]:
    """Random points across mainland China's extent (73–135°E, 18–53.5°N)."""
    rng = np.random.default_rng(20240601)
    lon = rng.uniform(73.5, 135.0, N_POINTS)
    lat = rng.uniform(18.2, 53.5, N_POINTS)
    # add the cities the team works with and the corners of the box
    lon = np.concatenate([lon, [118.78, 116.31, 121.47, 87.62, 73.6, 134.9]])
    lat = np.concatenate([lat, [32.04, 39.99, 31.23, 43.82, 39.4, 48.3]])
    return lon, lat


# --------------------------------------------------------------------------------------
# Forward transforms equal the references to 1e-7 degrees
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, ours, ref",
    [
        ("wgs84->gcj02", crs.wgs84_to_gcj02, ref_wgs2gcj),
        ("gcj02->bd09", crs.gcj02_to_bd09, ref_gcj2bd),
        ("wgs84->bd09", crs.wgs84_to_bd09, ref_wgs2bd),
    ],
)
def test_forward_equals_independent_reference(china_points, name, ours, ref):
    lon, lat = china_points
    got_lon, got_lat = ours(lon, lat)
    exp_lon, exp_lat = _apply(ref, lon, lat)
    assert got_lon.shape == lon.shape
    np.testing.assert_allclose(got_lon, exp_lon, rtol=0, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(got_lat, exp_lat, rtol=0, atol=1e-7, err_msg=name)
    # and the transform really moves the points (hundreds of metres for GCJ-02)
    shift = metres_between(lon, lat, got_lon, got_lat)
    assert np.median(shift) > 100 and shift.max() < 2_000


def test_forward_equals_coord_convert_package(china_points):
    cc = pytest.importorskip("coord_convert.transform")
    lon, lat = china_points
    for ours, theirs in (
        (crs.wgs84_to_gcj02, cc.wgs2gcj),
        (crs.gcj02_to_bd09, cc.gcj2bd),
        (crs.wgs84_to_bd09, cc.wgs2bd),
    ):
        got_lon, got_lat = ours(lon, lat)
        exp_lon, exp_lat = _apply(theirs, lon, lat)
        np.testing.assert_allclose(got_lon, exp_lon, rtol=0, atol=1e-7)
        np.testing.assert_allclose(got_lat, exp_lat, rtol=0, atol=1e-7)


def test_inverse_agrees_with_coord_convert_inverse(china_points):
    """coord-convert iterates to 1e-6° (~0.1 m): our inverse agrees to within 0.2 m."""
    cc = pytest.importorskip("coord_convert.transform")
    lon, lat = china_points
    g_lon, g_lat = crs.wgs84_to_gcj02(lon, lat)
    ours = crs.gcj02_to_wgs84(g_lon, g_lat)
    theirs = _apply(cc.gcj2wgs, g_lon, g_lat)
    assert metres_between(*ours, *theirs).max() < 0.2


# --------------------------------------------------------------------------------------
# Round trips in metres
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fwd, inv",
    [
        (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84),
        (crs.wgs84_to_bd09, crs.bd09_to_wgs84),
        (crs.gcj02_to_bd09, crs.bd09_to_gcj02),
    ],
)
def test_round_trip_within_half_a_metre(china_points, fwd, inv):
    lon, lat = china_points
    back_lon, back_lat = inv(*fwd(lon, lat))
    err = metres_between(lon, lat, back_lon, back_lat)
    assert err.max() <= 0.5, f"worst round trip {err.max():.3f} m"
    # the inverse is iterative: it does much better than the one-step published inverse
    assert np.median(err) < 0.01


@pytest.mark.parametrize("name, fwd", [("gcj02", crs.wgs84_to_gcj02), ("bd09", crs.wgs84_to_bd09)])
def test_one_point_inverse_equals_the_array_inverse(china_points, name, fwd):
    """point_to_wgs84 (floats, for single lookups) gives what to_wgs84 gives on arrays,
    and lands within half a metre of the true WGS84 point."""
    lon, lat = china_points
    given_lon, given_lat = fwd(lon, lat)
    arr_lon, arr_lat = crs.to_wgs84(given_lon, given_lat, name)
    one = np.array(
        [crs.point_to_wgs84(x, y, name) for x, y in zip(given_lon, given_lat, strict=True)]
    )
    assert np.abs(one[:, 0] - arr_lon).max() < 1e-9
    assert np.abs(one[:, 1] - arr_lat).max() < 1e-9
    assert metres_between(lon, lat, one[:, 0], one[:, 1]).max() <= 0.5
    # outside China: GCJ-02 is WGS84; BD-09 still takes Baidu's own offset, as on arrays
    out = crs.point_to_wgs84(2.35, 48.85, name)
    assert (
        out == (2.35, 48.85)
        if name == "gcj02"
        else np.allclose(
            out, [v[0] for v in crs.to_wgs84(np.array([2.35]), np.array([48.85]), name)]
        )
    )
    assert crs.point_to_wgs84(118.78, 32.04, "cgcs2000") == (118.78, 32.04)


@pytest.mark.parametrize(
    "fwd, inv",
    [
        (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84),
        (crs.wgs84_to_bd09, crs.bd09_to_wgs84),
    ],
)
def test_inverse_then_forward_returns_the_offset_point(china_points, fwd, inv):
    """Given offset coordinates (what Amap/Baidu hand out), the WGS84 we compute maps back
    onto them: the inverse solves forward(x) = given, measured in metres."""
    lon, lat = china_points
    given = fwd(lon, lat)
    again = fwd(*inv(*given))
    assert metres_between(*given, *again).max() <= 0.5


def test_one_step_published_inverse_is_worse_than_ours(china_points):
    """Guards the claim in crs.py that the iterative inverse beats the naive one."""
    lon, lat = china_points
    g_lon, g_lat = crs.wgs84_to_gcj02(lon, lat)
    f_lon, f_lat = crs.wgs84_to_gcj02(g_lon, g_lat)  # naive: x ≈ 2g - f(g)
    naive = metres_between(lon, lat, 2 * g_lon - f_lon, 2 * g_lat - f_lat)
    ours = metres_between(lon, lat, *crs.gcj02_to_wgs84(g_lon, g_lat))
    assert naive.max() > 0.5 > ours.max()


def test_scalar_and_shape_preserved():
    lon, lat = crs.wgs84_to_gcj02(118.78, 32.04)
    assert np.ndim(lon) == 0 and np.ndim(lat) == 0
    grid_lon, grid_lat = np.meshgrid(np.linspace(118, 119, 4), np.linspace(32, 33, 3))
    out_lon, out_lat = crs.gcj02_to_wgs84(grid_lon, grid_lat)
    assert out_lon.shape == (3, 4) and out_lat.shape == (3, 4)
    with pytest.raises(ValueError, match="shape"):
        crs.wgs84_to_gcj02([1.0, 2.0], [1.0])


def test_nan_passes_through_without_spoiling_neighbours():
    lon = np.array([118.78, np.nan, 116.31])
    lat = np.array([32.04, 30.0, 39.99])
    w_lon, w_lat = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    assert np.isnan(w_lon[1])
    assert metres_between(lon[[0, 2]], lat[[0, 2]], w_lon[[0, 2]], w_lat[[0, 2]]).max() < 0.5


# --------------------------------------------------------------------------------------
# Outside China: GCJ-02 is WGS84
# --------------------------------------------------------------------------------------
OUTSIDE = np.array(
    [
        (-0.1276, 51.5072),  # London
        (-74.006, 40.7128),  # New York
        (151.2093, -33.8688),  # Sydney
        (139.6917, 35.6895),  # Tokyo (east of the box)
        (37.6173, 55.7558),  # Moscow
        (70.0, 30.0),  # west of the box
        (100.5, 0.5),  # south of the box
    ]
)


def test_outside_china_gcj02_equals_wgs84():
    lon, lat = OUTSIDE[:, 0], OUTSIDE[:, 1]
    assert not crs.in_china(lon, lat).any()
    for func in (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84):
        out_lon, out_lat = func(lon, lat)
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)
    # and the references agree that nothing moves there
    ref = _apply(ref_wgs2gcj, lon, lat)
    np.testing.assert_array_equal(ref[0], lon)


def test_in_china_box_edges():
    assert crs.in_china(72.004, 30.0) and crs.in_china(137.8347, 30.0)
    assert not crs.in_china(72.0039, 30.0) and not crs.in_china(137.8348, 30.0)
    assert crs.in_china(110.0, 0.8293) and not crs.in_china(110.0, 55.8272)


# --------------------------------------------------------------------------------------
# Metric CRS: CGCS2000 3-degree Gauss–Krüger zone by central meridian, UTM outside
# --------------------------------------------------------------------------------------
def _central_meridian(c: pyproj.CRS) -> float:
    for p in c.coordinate_operation.params:
        if p.name == "Longitude of natural origin":
            return p.value
    raise AssertionError(f"no central meridian in {c}")


@pytest.mark.parametrize(
    "lon, lat, epsg",
    [
        (118.8, 32.05, 4549),  # Nanjing
        (116.3, 39.99, 4548),  # Beijing (Haidian)
        (87.6, 43.82, 4538),  # Urumqi
        (121.47, 31.23, 4549),  # Shanghai, inside the 120°E zone (118.5–121.5)
        (121.6, 38.9, 4550),  # Dalian, 123°E zone
        (75.99, 39.47, 4534),  # Kashgar, 75°E zone (west of 76.5°E)
        (79.92, 37.11, 4536),  # Hotan, 81°E zone (east of 79.5°E)
        (134.3, 47.7, 4554),  # far north-east, 135°E zone
    ],
)
def test_metric_crs_named_cities(lon, lat, epsg):
    assert crs.metric_crs(lon, lat).to_epsg() == epsg


def test_metric_crs_every_zone_matches_pyproj_central_meridian():
    """All 21 zones EPSG:4534–4554; the chosen zone's central meridian (read from pyproj,
    independently of gridgis' arithmetic) is within 1.5° of the point."""
    rng = np.random.default_rng(3)
    seen = set()
    for lon in np.concatenate([rng.uniform(73.6, 134.9, 300), np.arange(75, 136, 3.0)]):
        c = crs.metric_crs(float(lon), 35.0)
        epsg = c.to_epsg()
        assert 4534 <= epsg <= 4554
        assert "CGCS2000" in c.name
        assert abs(_central_meridian(c) - lon) <= 1.5 + 1e-9
        seen.add(epsg)
    assert seen == set(range(4534, 4555))


@pytest.mark.parametrize(
    "lon, lat, epsg",
    [
        (-0.1276, 51.5072, 32630),
        (-74.006, 40.7128, 32618),
        (151.2093, -33.8688, 32756),
        (139.6917, 35.6895, 32654),
    ],
)
def test_metric_crs_utm_outside_china(lon, lat, epsg):
    assert crs.metric_crs(lon, lat).to_epsg() == epsg


def test_gk_axis_order_northing_easting_but_geopandas_x_is_easting():
    c = pyproj.CRS.from_epsg(4549)
    assert [a.direction for a in c.axis_info] == ["north", "east"]
    pt = gpd.GeoSeries([Point(118.8, 32.05)], crs="EPSG:4326").to_crs(4549)
    x, y = pt.iloc[0].x, pt.iloc[0].y
    assert 300_000 < x < 700_000  # easting, false easting 500 km, no zone prefix
    assert 3.4e6 < y < 3.7e6  # northing, ~32° north
    # 118.8°E is 1.2° west of the 120°E central meridian: about 113 km west of it
    assert 380_000 < x < 400_000


def test_metric_crs_for_geodataframe_distances_match_geodesic():
    """Distances computed in the chosen metric CRS match geodesic ones to 0.05%."""
    rng = np.random.default_rng(11)
    lon = 118.78 + rng.uniform(-0.05, 0.05, 40)
    lat = 32.04 + rng.uniform(-0.05, 0.05, 40)
    gdf = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    m = crs.metric_crs_for(gdf)
    assert m.to_epsg() == 4549
    proj = gdf.to_crs(m)
    d_proj = proj.geometry.distance(proj.geometry.iloc[0]).to_numpy()[1:]
    d_geo = metres_between(np.full(39, lon[0]), np.full(39, lat[0]), lon[1:], lat[1:])
    np.testing.assert_allclose(d_proj, d_geo, rtol=5e-4)


def test_metric_crs_for_projected_and_unlabelled_layers():
    gdf = gpd.GeoDataFrame(geometry=[Point(116.3, 39.99)], crs="EPSG:4326").to_crs(4549)
    assert crs.metric_crs_for(gdf).to_epsg() == 4548  # reprojects to find the centre
    with pytest.raises(ValueError, match="no CRS"):
        crs.metric_crs_for(gpd.GeoDataFrame(geometry=[Point(116.3, 39.99)]))


# --------------------------------------------------------------------------------------
# Parsing and to_storage
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("gcj02", "gcj02"),
        ("GCJ-02", "gcj02"),
        ("amap", "gcj02"),
        ("bd09", "bd09"),
        ("Baidu", "bd09"),
        ("wgs84", "EPSG:4326"),
        ("cgcs2000", "EPSG:4490"),
        ("EPSG:4549", "EPSG:4549"),
        ("4549", "EPSG:4549"),
        (4490, "EPSG:4490"),
        (pyproj.CRS.from_epsg(4548), "EPSG:4548"),
    ],
)
def test_parse_crs(text, expected):
    assert crs.parse_crs(text) == expected


def test_parse_crs_unknown_names_the_input():
    with pytest.raises(ValueError, match="mars-ish"):
        crs.parse_crs("mars-ish")


@pytest.fixture(scope="module")
def nanjing_truth() -> gpd.GeoDataFrame:
    """True WGS84 positions: points and a polygon with a hole, around Xinjiekou."""
    rng = np.random.default_rng(5)
    lon = 118.78 + rng.uniform(-0.03, 0.03, 50)
    lat = 32.04 + rng.uniform(-0.03, 0.03, 50)
    shell = [(118.77, 32.03), (118.79, 32.03), (118.79, 32.05), (118.77, 32.05)]
    hole = [(118.775, 32.035), (118.78, 32.035), (118.78, 32.04), (118.775, 32.04)]
    geoms = [Point(a, b) for a, b in zip(lon, lat, strict=True)] + [Polygon(shell, [hole])]
    return gpd.GeoDataFrame({"i": range(51)}, geometry=geoms, crs="EPSG:4326")


def _max_vertex_error_m(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> float:
    ca = shapely.get_coordinates(a.geometry.values)
    cb = shapely.get_coordinates(b.geometry.values)
    assert ca.shape == cb.shape
    return float(metres_between(ca[:, 0], ca[:, 1], cb[:, 0], cb[:, 1]).max())


@pytest.mark.parametrize("declared, ref", [("gcj02", ref_wgs2gcj), ("bd09", ref_wgs2bd)])
def test_to_storage_from_offset_crs(nanjing_truth, declared, ref):
    """A layer whose coordinates are GCJ-02 (by the independent reference) comes back to
    its true WGS84 position, every vertex of a holed polygon included."""
    shifted = nanjing_truth.copy()
    shifted["geometry"] = shapely.transform(
        nanjing_truth.geometry.values, lambda c: np.column_stack(_apply(ref, c[:, 0], c[:, 1]))
    )
    # readers may hand an Amap CSV over labelled WGS84 or with no CRS at all
    for frame in (shifted, shifted.set_crs(None, allow_override=True)):
        out = crs.to_storage(frame, declared=declared)
        assert out.crs.to_epsg() == 4326
        assert _max_vertex_error_m(out, nanjing_truth) <= 0.5
        assert list(out["i"]) == list(range(51))
    # without the declaration the layer would be hundreds of metres off
    assert _max_vertex_error_m(shifted, nanjing_truth) > 100


def test_to_storage_from_gauss_kruger_zone(nanjing_truth):
    t = pyproj.Transformer.from_crs(4326, 4549, always_xy=True)
    projected = nanjing_truth.copy()
    projected["geometry"] = shapely.transform(
        nanjing_truth.geometry.values, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1]))
    )
    projected = projected.set_crs(4549, allow_override=True)
    out = crs.to_storage(projected)
    assert out.crs.to_epsg() == 4326
    assert _max_vertex_error_m(out, nanjing_truth) < 0.01
    # a file without a .prj, declared on the command line
    out2 = crs.to_storage(projected.set_crs(None, allow_override=True), declared="EPSG:4549")
    assert _max_vertex_error_m(out2, nanjing_truth) < 0.01


def test_to_storage_cgcs2000_is_relabelled_not_shifted(nanjing_truth):
    cgcs = nanjing_truth.set_crs(4490, allow_override=True)
    out = crs.to_storage(cgcs)
    assert out.crs.to_epsg() == 4326
    np.testing.assert_array_equal(
        shapely.get_coordinates(out.geometry.values),
        shapely.get_coordinates(nanjing_truth.geometry.values),
    )
    out2 = crs.to_storage(nanjing_truth.set_crs(None, allow_override=True), declared="cgcs2000")
    assert out2.crs.to_epsg() == 4326


def test_to_storage_refuses_offset_declared_on_projected_layer(nanjing_truth):
    with pytest.raises(ValueError, match="projected"):
        crs.to_storage(nanjing_truth.to_crs(4549), declared="gcj02")


def test_to_storage_needs_a_crs(nanjing_truth):
    with pytest.raises(ValueError, match="no CRS"):
        crs.to_storage(nanjing_truth.set_crs(None, allow_override=True))


@pytest.mark.parametrize("name", ["gcj02", "bd09", "EPSG:4549", "EPSG:4490", "wgs84"])
def test_to_wgs84_and_from_wgs84_are_inverse(china_points, name):
    lon, lat = china_points[0][:200], china_points[1][:200]
    if name == "EPSG:4549":  # a zone is only meaningful near its meridian
        lon = 118.5 + (lon - lon.min()) / np.ptp(lon) * 3.0
    x, y = crs.from_wgs84(lon, lat, name)
    back = crs.to_wgs84(x, y, name)
    assert metres_between(lon, lat, *back).max() <= 0.5


def test_wgs84_to_offset_for_drawing_over_amap(nanjing_truth):
    out = crs.wgs84_to_offset(nanjing_truth, "gcj02")
    exp = _apply(ref_wgs2gcj, *shapely.get_coordinates(nanjing_truth.geometry.values).T)
    got = shapely.get_coordinates(out.geometry.values)
    np.testing.assert_allclose(got[:, 0], exp[0], atol=1e-7)
    np.testing.assert_allclose(got[:, 1], exp[1], atol=1e-7)
    with pytest.raises(ValueError, match="not an offset"):
        crs.wgs84_to_offset(nanjing_truth, "EPSG:4549")
