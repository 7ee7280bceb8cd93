"""Demo city invariants (issue 2): households, containment, codes, determinism."""

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridgis import codes
from gridgis.layers import FACILITY_CATEGORIES, SCHEMA
from gridgis.synth import METRIC_CRS, make_city


@pytest.fixture(scope="module", params=[10_000, 57_321])
def city(request):
    return make_city(households=request.param, seed=3)


def test_total_households_within_one_percent(city):
    target = city.params["households"]
    total = int(city.layers["buildings"]["households"].sum())
    assert abs(total - target) <= 0.01 * target


def test_every_building_in_exactly_one_community(city):
    b = city.layers["buildings"].to_crs(METRIC_CRS)
    comm = city.layers["communities"].to_crs(METRIC_CRS)
    tree = shapely.STRtree(comm.geometry.values)
    # whole footprint inside (not only a point): covered_by with a 1 cm tolerance
    src, dst = tree.query(b.geometry.buffer(-0.01).values, predicate="within")
    counts = np.bincount(src, minlength=len(b))
    assert (counts == 1).all(), b.loc[counts != 1, "building_id"].tolist()[:5]


def test_communities_tile_streets_and_streets_tile_city(city):
    comm = city.layers["communities"].to_crs(METRIC_CRS)
    streets = city.layers["streets"].to_crs(METRIC_CRS)
    assert comm.geom_type.eq("Polygon").all() and streets.geom_type.eq("Polygon").all()
    # no overlaps between communities (reprojection leaves sub-millimetre slivers at most)
    tree = shapely.STRtree(comm.geometry.values)
    a, b = tree.query(comm.geometry.values, predicate="intersects")
    a, b = a[a < b], b[a < b]
    overlap = shapely.area(shapely.intersection(comm.geometry.values[a], comm.geometry.values[b]))
    assert overlap.sum() < 0.01
    # each community lies in the street its code names, and the union is the street
    for s in streets.itertuples():
        members = comm[comm.street_code == s.street_code]
        assert len(members) >= 1
        assert all(c.startswith(s.street_code) for c in members.community_code)
        union = shapely.union_all(members.geometry.values)
        assert abs(union.area - s.geometry.area) < 1e-6 * s.geometry.area
        assert s.geometry.buffer(0.01).contains(union)


def test_codes_structurally_valid(city):
    for code in city.layers["streets"].street_code:
        codes.validate_street_code(code)
    for code in city.layers["communities"].community_code:
        codes.validate_community_code(code, urban_only=True)
    assert city.meta["synthetic"] is True


def test_community_sizes_realistic(city):
    b = city.layers["buildings"].to_crs(METRIC_CRS)
    comm = city.layers["communities"].to_crs(METRIC_CRS)
    pts = gpd.GeoDataFrame(b[["households"]], geometry=b.representative_point(), crs=METRIC_CRS)
    joined = gpd.sjoin(pts, comm[["community_code", "geometry"]], predicate="within")
    per = joined.groupby("community_code")["households"].sum()
    assert per.between(1_000, 4_500).all(), per.describe()
    assert per.between(1_500, 3_500).mean() >= 0.9


def test_layers_canonical_and_complete(city):
    for name, spec in SCHEMA.items():
        frame = city.layers[name]
        assert list(frame.columns[: len(spec.columns)]) == spec.columns, name
        assert frame[spec.key].is_unique, name
        if spec.geometry:
            assert frame.crs.to_epsg() == 4326
    cats = set(city.layers["facilities"]["category"])
    life = {
        "vegetable_market",
        "retail",
        "housekeeping",
        "breakfast",
        "elderly_care_home",
        "elderly_daycare",
        "nursery",
        "health_station",
        "kindergarten",
        "primary_school",
        "middle_school",
        "community_service_station",
        "sports_ground",
        "parcel_locker",
        "elderly_service_station",
        "community_office",
    }
    assert life <= cats <= set(FACILITY_CATEGORIES)
    kinds = set(city.layers["institutions"]["kind"])
    assert {"hospital", "school", "factory"} <= kinds
    greens = city.layers["green_spaces"].to_crs(METRIC_CRS)
    assert (greens.kind == "park").any()
    assert (greens.area < 400).any() or (greens.area < 2_000).any()  # varied sizes
    roads = city.layers["roads"]
    assert {"arterial", "branch", "path"} <= set(roads.road_class)
    addr = city.layers["addresses"]
    assert addr["text"].str.contains(r"\d+号.+\d+栋\d+单元").any()
    staff = city.layers["staff"]
    assert {"community_worker", "police"} <= set(staff.role)


def test_arterials_400_to_800_m_apart():
    city = make_city(households=30_000, seed=11)
    roads = city.layers["roads"].to_crs(METRIC_CRS)
    art = roads[roads.road_class == "arterial"]
    xs = np.unique(
        np.round([g.coords[0][0] for g in art.geometry if g.coords[0][0] == g.coords[1][0]], 0)
    )
    gaps = np.diff(xs)
    assert ((gaps >= 399) & (gaps <= 801)).all(), gaps


def test_deterministic():
    a = make_city(households=12_000, seed=5)
    b = make_city(households=12_000, seed=5)
    for name in a.layers:
        assert a.layers[name].equals(b.layers[name]), name
    c = make_city(households=12_000, seed=6)
    assert not a.layers["buildings"].equals(c.layers["buildings"])


def test_too_small_rejected():
    with pytest.raises(ValueError, match="at least"):
        make_city(households=10)
