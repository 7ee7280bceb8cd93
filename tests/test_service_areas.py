"""Service areas: the walkable area within the radius of each facility (worked answers)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridgis.coverage import compute_access, run_coverage, service_areas
from gridgis.standards import Settings

CRS = "EPSG:4549"
X0, Y0 = 500_000.0, 3_540_000.0


def _line(*pts):
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in pts])


def _pt(x, y):
    return shapely.Point(X0 + x, Y0 + y)


@pytest.fixture
def access():
    # a street along y=0 (0..1000) with a branch north at x=700 (400 m); a kindergarten
    # on the street at x=500 and one 10 m north of the street at x=100; radius 300 m
    roads = gpd.GeoDataFrame(
        {"road_id": ["s", "b"], "road_class": "branch"},
        geometry=[_line((0, 0), (1000, 0)), _line((700, 0), (700, 400))],
        crs=CRS,
    )
    buildings = gpd.GeoDataFrame(
        {"building_id": ["h"], "households": [5]},
        geometry=[shapely.box(X0 + 899, Y0 + 19, X0 + 901, Y0 + 21)],
        crs=CRS,
    )
    fac = gpd.GeoDataFrame(
        {"facility_id": ["k1", "k2"], "category": "kindergarten"},
        geometry=[_pt(500, 0), _pt(100, 10)],
        crs=CRS,
    )
    return compute_access(buildings, roads, fac, None, Settings(), ["kindergarten"], crs=CRS)


def test_reach_along_the_network(access):
    sa = service_areas(access, Settings()).set_index("facility_id")
    # k1: 300 m each way along the street (200..800) and 100 m up the branch at 700
    assert sa.loc["k1", "reach_m"] == pytest.approx(600 + 100)
    # k2: 10 m leg, then 290 m each way, cut by the street's west end at 0: 0..390
    assert sa.loc["k2", "reach_m"] == pytest.approx(100 + 290)
    area = sa.loc["k1", "geometry"]
    assert area.contains(_pt(210, 0)) and area.contains(_pt(700, 120))
    assert not area.contains(_pt(150, 0)) and not area.contains(_pt(700, 160))
    # a straight 300 m circle would hold (500, 290); the walk does not reach it
    assert not area.contains(_pt(500, 290))


def test_one_facility_by_id(access):
    sa = service_areas(access, Settings(), facility_ids=["k2"])
    assert list(sa["facility_id"]) == ["k2"]


def test_run_coverage_writes_service_areas():
    from gridgis.synth import make_city

    L = make_city(households=10_000, seed=7).layers
    result = run_coverage(L, Settings())
    sa = result.layers["service_areas"]
    fac = L["facilities"]
    assert len(sa) > 0 and sa.crs.to_epsg() == 4326
    assert set(sa["facility_id"]) <= set(fac["facility_id"].astype(str))
    assert sa.geometry.is_valid.all() and (sa["area_m2"] > 0).all()
    # beyond the cap the layer is left out and the parameters say so
    capped = Settings().override({"coverage.service_area_max_facilities": 10})
    r2 = run_coverage(L, capped)
    assert "service_areas" not in r2.layers
    assert r2.params["service_areas"].startswith("not written")
    assert np.isfinite(sa["reach_m"]).all()


def _ring(x0, y0, x1, y1):
    return _line((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))


def test_clipped_to_reached_blocks():
    # street s along y=0 (0..600); block S south of it (ring 0..600 x -200..0); a
    # parallel road p 20 m north (the south side of block C, ring -100..600 x 20..220),
    # joined to s only by the link c at x=600. A kindergarten at the street's west end
    # (0, 0), radius 300: the walk reaches s up to x=300 and S's west side (200 m) and
    # bottom (100 m); p is 600 m away, unreached. The 30 m buffer around s would reach
    # y=30, 10 m into block C across the unreached road p: cut at y=20. Inside block S
    # (flanking the reached s) and west of the network (no block) the buffer stays.
    roads = gpd.GeoDataFrame(
        {"road_id": ["s", "S", "c", "C"], "road_class": "branch"},
        geometry=[
            _line((0, 0), (600, 0)),
            _line((0, 0), (0, -200), (600, -200), (600, 0)),
            _line((600, 0), (600, 20)),
            _ring(-100, 20, 600, 220),
        ],
        crs=CRS,
    )
    buildings = gpd.GeoDataFrame(
        {"building_id": ["h"], "households": [5]},
        geometry=[shapely.box(X0 + 99, Y0 - 51, X0 + 101, Y0 - 49)],
        crs=CRS,
    )
    fac = gpd.GeoDataFrame(
        {"facility_id": ["k"], "category": "kindergarten"}, geometry=[_pt(0, 0)], crs=CRS
    )
    acc = compute_access(buildings, roads, fac, None, Settings(), ["kindergarten"], crs=CRS)
    sa = service_areas(acc, Settings()).set_index("facility_id")
    assert sa.loc["k", "radius_m"] == 300
    assert sa.loc["k", "reach_m"] == pytest.approx(300 + 200 + 100)
    area = sa.loc["k", "geometry"]
    assert area.is_valid
    # never into block C: the top of the area is the unreached road p (y = 20)
    assert area.bounds[3] == pytest.approx(Y0 + 20, abs=1e-6)
    assert not area.contains(_pt(150, 25))
    assert area.contains(_pt(150, 15))  # road corridor between s and p
    assert area.contains(_pt(150, -25))  # side of block S along the reached street
    assert area.contains(_pt(50, -175))  # corner of S along its reached west/bottom
    assert area.contains(_pt(-25, -100))  # outside every block, along S's west side
    assert not area.contains(_pt(150, -100))  # S's middle: beyond the 30 m depth
    # unclipped, the same buffer reaches 10 m into C
    raw = shapely.buffer(shapely.MultiLineString([[(X0, Y0), (X0 + 300, Y0)]]), 30, quad_segs=2)
    assert raw.bounds[3] == pytest.approx(Y0 + 30, abs=1e-6)
