"""Walking networks in several pieces (a province of cities, a town and its island) and
buildings the road data does not reach: every town walks on its own roads, and a building
beyond every road is "no network" (unknown), never an uncovered 0 %."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.coverage import NO_NETWORK, compute_access, coverage_gaps, coverage_rates
from gridgis.network import build_network
from gridgis.standards import Settings

CRS = "EPSG:4549"
X0, Y0 = 500_000.0, 3_540_000.0
TOWN_B = 50_000.0  # the second town lies 50 km east: no road joins them


def _line(x0, y0, x1, y1):
    return shapely.LineString([(X0 + x0, Y0 + y0), (X0 + x1, Y0 + y1)])


def _roads() -> gpd.GeoDataFrame:
    lines = [
        _line(0, 0, 3000, 0),  # town A: 3 km of road
        _line(1000, 0, 1000, 1000),
        _line(TOWN_B, 0, TOWN_B + 2000, 0),  # town B: 2 km of road
        _line(TOWN_B + 500, 0, TOWN_B + 500, 300),
        _line(20_000, 0, 20_040, 0),  # a 40 m CAD fragment between them
    ]
    return gpd.GeoDataFrame(
        {"road_id": [f"r{i}" for i in range(len(lines))], "road_class": "branch"},
        geometry=lines,
        crs=CRS,
    )


def _box(x, y):
    return shapely.box(X0 + x - 5, Y0 + y - 5, X0 + x + 5, Y0 + y + 5)


def _layers():
    buildings = gpd.GeoDataFrame(
        {
            "building_id": ["a1", "b1", "far"],
            "households": [100, 60, 40],
            "use": "residential",
        },
        # a1 at the top of A's branch; b1 at the top of B's branch; far 5 km from any road
        geometry=[_box(1000, 1000), _box(TOWN_B + 500, 300), _box(30_000, 5000)],
        crs=CRS,
    )
    facilities = gpd.GeoDataFrame(
        {"facility_id": ["ka", "kb"], "category": ["kindergarten", "kindergarten"]},
        geometry=[
            shapely.Point(X0 + 0, Y0 + 0),
            shapely.Point(X0 + TOWN_B + 2000, Y0 + 0),
        ],
        crs=CRS,
    )
    return buildings, facilities


SETTINGS = Settings().override({"network.keep_piece_min_m": 1000.0})


def test_each_town_keeps_its_roads_and_fragments_are_dropped():
    net = build_network(_roads(), SETTINGS)
    assert net.stats["components"] == 3 and net.stats["kept_components"] == 2
    assert abs(net.stats["kept_length_m"] - (4000 + 2300)) < 1e-6
    pieces = net.findings[net.findings["kind"] == "disconnected_piece"]
    assert len(pieces) == 1 and abs(pieces["value_m"].iloc[0] - 40) < 1e-6
    # the default keeps a piece only from 10 km of road: here only the largest
    net = build_network(_roads(), Settings())
    assert net.stats["kept_components"] == 1


def test_walks_in_every_town_and_no_network_is_unknown():
    buildings, facilities = _layers()
    acc = compute_access(
        buildings, _roads(), facilities, None, SETTINGS, categories=["kindergarten"], crs=CRS
    )
    t = acc.table.set_index("building_id")
    # worked out by hand along the roads: a1 = 1000 up the branch + 1000 west (+5 m legs
    # from the building's point to the road end and from the kindergarten: 0)
    assert abs(t.loc["a1", "walk_m"] - 2000.0) < 1e-6
    assert abs(t.loc["b1", "walk_m"] - (300.0 + 1500.0)) < 1e-6
    assert np.isnan(t.loc["far", "walk_m"]) and not t.loc["far", "covered"]
    assert t.loc["far", "status"] == NO_NETWORK
    assert (t.loc[["a1", "b1"], "status"] == "ok").all()

    areas = pd.DataFrame(
        {
            "building_id": ["a1", "b1", "far"],
            "street_code": ["s"] * 3,
            "community_code": ["c1", "c1", "c2"],
            "grid_code": ["g1", "g1", "g2"],
        }
    )
    rates = coverage_rates(acc, areas, SETTINGS).set_index(["level", "code"])
    street = rates.loc[("street", "s")]
    # 200 households, 160 with known walks; a1 (2,000 m) and b1 (1,800 m) are beyond the
    # kindergarten radius, so 0 of 160 covered — and the 40 unreachable ones are not in it
    assert street["households"] == 200 and street["households_known"] == 160
    assert street["rate"] == street["households_covered"] / 160
    g2 = rates.loc[("grid", "g2")]
    assert g2["households_known"] == 0 and np.isnan(g2["rate"]) and g2["status"] == NO_NETWORK
    # a gap is a known uncovered building: never the one beyond the roads
    comm = gpd.GeoDataFrame(
        {"community_code": ["c1", "c2"]},
        geometry=[shapely.box(X0 - 100, Y0 - 100, X0 + 60_000, Y0 + 2000), _box(30_000, 5000)],
        crs=CRS,
    )
    gaps = coverage_gaps(acc, areas, comm, SETTINGS)
    assert "c2" not in set(gaps["community_code"])
    assert gaps["households"].sum() == 160
