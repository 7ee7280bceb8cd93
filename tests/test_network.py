"""Walking network on a hand-built case with known distances (metres, EPSG:4549)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from scipy.sparse.csgraph import dijkstra

from gridgis.coverage import compute_access, entry_points, green_targets
from gridgis.network import attach_points, build_network
from gridgis.standards import Settings

CRS = "EPSG:4549"
X0, Y0 = 500_000.0, 3_540_000.0  # inside the 120°E Gauss–Krüger zone


def _xy(x: float, y: float) -> tuple[float, float]:
    return X0 + x, Y0 + y


def _line(*pts: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([_xy(*p) for p in pts])


def _box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(*_xy(x0, y0), *_xy(x1, y1))


@pytest.fixture(scope="module")
def roads() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "road_id": ["A", "B", "C", "E", "D"],
            "road_class": ["arterial", "secondary", "branch", "path", "path"],
        },
        geometry=[
            _line((0, 0), (1000, 0)),  # A, crossed by B (not noded in the input)
            _line((500, -200), (500, 300)),  # B crosses A at (500, 0)
            _line((800, 0), (800, 200)),  # C: T-junction on A's interior at (800, 0)
            _line((275, 0), (275, 20)),  # E: path from A to the park's south edge
            _line((3000, 3000), (3100, 3000)),  # D: a disconnected piece
        ],
        crs=CRS,
    )


@pytest.fixture(scope="module")
def settings() -> Settings:
    # entries only where the park boundary meets a road (no sampled ones): exact answers
    return Settings().override({"coverage.green_entry_max_m": 5.0})


def test_noding_components_and_lengths(roads):
    net = build_network(roads, crs=CRS)
    assert net.stats["components"] == 2
    pieces = net.findings[net.findings["kind"] == "disconnected_piece"]
    assert len(pieces) == 1 and pieces["value_m"].iloc[0] == pytest.approx(100.0)
    # 100 m of 1,820 m (5.5 %) lost to a loose piece is more than network.max_lost_share
    assert set(net.findings["kind"]) == {"disconnected_piece", "network_fragmented"}
    assert len(net.warnings) == 1 and "5%" in net.warnings[0]
    # A split at 275 (E), 500 (B) and 800 (C); B at 0; C and E whole: 4 + 2 + 1 + 1 edges
    assert len(net.edge_m) == 8
    assert net.edge_m.sum() == pytest.approx(1000 + 500 + 200 + 20)
    got = {tuple(np.round(p - (X0, Y0), 6)) for p in net.node_xy}
    assert got == {
        (0, 0),
        (275, 0),
        (500, 0),
        (800, 0),
        (1000, 0),
        (500, -200),
        (500, 300),
        (800, 200),
        (275, 20),
    }
    # every edge's length is its end-to-end distance here (straight roads)
    chord = np.hypot(*(net.node_xy[net.edge_u] - net.node_xy[net.edge_v]).T)
    np.testing.assert_allclose(net.edge_m, chord)


def test_snap_splits_the_edge_not_the_nearest_node(roads):
    net = build_network(roads, crs=CRS)
    pts = shapely.points([_xy(120, 30), _xy(150, -20), _xy(2000, 2000)])
    graph = attach_points(net, pts, max_snap_m=250.0)
    assert graph.point_node[2] == -1  # beyond max_snap_m: not matched
    assert graph.snaps.snap_m[2] == pytest.approx(np.hypot(2000 - 800, 2000 - 200))  # C's end
    np.testing.assert_allclose(graph.snaps.snap_m[:2], [30.0, 20.0])
    d = dijkstra(graph.matrix, directed=False, indices=graph.point_node[0])
    # 30 down to A, 30 along A, 20 up: nearest-node snapping would give 30+120+150+20
    assert d[graph.point_node[1]] == pytest.approx(30 + 30 + 20)


def test_walk_distances_known(roads, settings):
    buildings = gpd.GeoDataFrame(
        {
            "building_id": ["near", "far", "shop"],
            "households": [100, 50, 0],
        },
        geometry=[_box(95, 25, 105, 35), _box(1995, 1995, 2005, 2005), _box(600, 5, 610, 15)],
        crs=CRS,
    )
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["K1", "R1"],
            "category": ["kindergarten", "retail"],
        },
        geometry=[shapely.Point(_xy(800, 210)), shapely.Point(_xy(150, -20))],
        crs=CRS,
    )
    greens = gpd.GeoDataFrame(
        {"green_id": ["P1"], "kind": ["park"]}, geometry=[_box(200, 20, 350, 120)], crs=CRS
    )
    acc = compute_access(
        buildings,
        roads,
        facilities,
        greens,
        settings,
        categories=["kindergarten", "retail", "park", "green", "nursery"],
        crs=CRS,
    )
    t = acc.table.set_index(["building_id", "category"])
    assert set(acc.buildings["building_id"]) == {"near", "far"}  # households > 0 only
    rep = shapely.get_coordinates(shapely.point_on_surface(_box(95, 25, 105, 35)))[0]
    px, py = rep - (X0, Y0)
    # kindergarten: leg py to A, along A to 800, up C 200, facility leg 10 (end of C)
    assert t.loc[("near", "kindergarten"), "walk_m"] == pytest.approx(py + (800 - px) + 200 + 10)
    assert t.loc[("near", "kindergarten"), "straight_m"] == pytest.approx(
        np.hypot(800 - px, 210 - py)
    )
    assert not t.loc[("near", "kindergarten"), "covered"]  # 300 m radius
    # retail on the same edge as the building: py + |150 - px| + 20
    assert t.loc[("near", "retail"), "walk_m"] == pytest.approx(py + abs(150 - px) + 20)
    assert t.loc[("near", "retail"), "covered"]
    # park entered where path E meets its boundary (275, 20); straight line to the polygon
    assert t.loc[("near", "park"), "walk_m"] == pytest.approx(py + (275 - px) + 20)
    assert t.loc[("near", "park"), "straight_m"] == pytest.approx(200 - px)
    assert t.loc[("near", "green"), "walk_m"] == t.loc[("near", "park"), "walk_m"]
    # no nursery at all: not reachable, not covered
    assert np.isnan(t.loc[("near", "nursery"), "walk_m"])
    assert not t.loc[("near", "nursery"), "covered"]
    # off the network: not matched, a finding, never covered
    assert t.loc[("far", "retail"), "walk_m"] != t.loc[("far", "retail"), "walk_m"]  # NaN
    assert not t.xs("far")["covered"].any()
    far = acc.findings[acc.findings["kind"] == "far_from_network"]
    assert list(far["id"]) == ["far"]
    ok = t["walk_m"].notna()
    assert (t.loc[ok, "walk_m"] >= t.loc[ok, "straight_m"]).all()


def test_small_park_and_green_thresholds(roads, settings):
    greens = gpd.GeoDataFrame(
        {"green_id": ["small", "narrow", "ok"], "kind": ["park", "park", "green"]},
        geometry=[
            _box(200, 20, 250, 60),  # 0.2 ha: green only
            _box(0, 20, 400, 60),  # 1.6 ha but 40 m wide
            _box(600, 20, 620, 30),
        ],  # 200 m²: neither
        crs=CRS,
    )
    got = green_targets(greens, pyproj.CRS(CRS), settings)
    assert list(got["park"]["green_id"]) == []
    assert list(got["green"]["green_id"]) == ["small", "narrow"]


def test_entry_points_on_boundary(roads, settings):
    net = build_network(roads, crs=CRS)
    park = _box(200, 20, 350, 120)
    pts, owner = entry_points(np.array([park]), net, Settings())
    assert len(pts) >= 2 and (owner == 0).all()
    # every entry lies on the boundary, none at the centroid
    np.testing.assert_allclose(shapely.distance(pts, park.boundary), 0.0, atol=1e-6)
    assert any(shapely.equals_exact(p, shapely.Point(_xy(275, 20)), 1e-6) for p in pts)
