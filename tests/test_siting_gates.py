"""``site`` with gates: the gate a hand calculation says is best (metres, EPSG:4549)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridgis.siting import propose_gates
from gridgis.standards import Settings

CRS = "EPSG:4549"
X0, Y0 = 500_000.0, 3_540_000.0


def _line(*pts):
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in pts])


def _box(x, y, r=1.0):
    return shapely.box(X0 + x - r, Y0 + y - r, X0 + x + r, Y0 + y + r)


@pytest.fixture
def layers():
    # a ring of streets round a walled compound 100..300 x 20..220 whose only gate is in
    # the north wall at (200, 220); the kindergarten is on the south street at (200, 0)
    roads = gpd.GeoDataFrame(
        {"road_id": list("SNWE"), "road_class": "branch"},
        geometry=[
            _line((0, 0), (400, 0)),
            _line((0, 240), (400, 240)),
            _line((0, 0), (0, 240)),
            _line((400, 0), (400, 240)),
        ],
        crs=CRS,
    )
    return {
        "roads": roads,
        "buildings": gpd.GeoDataFrame(
            {"building_id": ["b1", "b2"], "households": [50, 30]},
            geometry=[_box(200, 40), _box(120, 40)],
            crs=CRS,
        ),
        "facilities": gpd.GeoDataFrame(
            {"facility_id": ["k"], "category": ["kindergarten"]},
            geometry=[shapely.Point(X0 + 200, Y0)],
            crs=CRS,
        ),
        "compounds": gpd.GeoDataFrame(
            {"compound_id": ["C1"]},
            geometry=[shapely.box(X0 + 100, Y0 + 20, X0 + 300, Y0 + 220)],
            crs=CRS,
        ),
        "gates": gpd.GeoDataFrame(
            {"gate_id": ["C1-N"]}, geometry=[shapely.Point(X0 + 200, Y0 + 220)], crs=CRS
        ),
    }


def test_best_gate_is_the_hand_calculated_one(layers):
    # radius 50 m. Today b1 walks 180 to the north gate, 20 out, 200 + 240 + 200 round
    # the ring = 840 m: uncovered. Candidates every 20 m along the wall; the south wall's
    # run from (100, 20) to (300, 20) holds x = 100, 120, ..., 280. A gate at x:
    # b1 → gate straight (the compound has no paths) + 20 m out to the street + |x-200|
    # along it: x=200 gives 20 + 20 + 0 = 40 ≤ 50; x=180/220 give 28.3 + 20 + 20 = 68.3.
    # b2 (120, 40) is never within 50 m (x=120: 20 + 20 + 80). So one gate, at (200, 20),
    # bringing 50 households.
    s = Settings().override({"coverage.radius_m.kindergarten": 50})
    result = propose_gates(layers, "kindergarten", 2, s)
    sites = result.sites.to_crs(CRS)
    assert len(sites) == 1
    assert sites["households_new"].iloc[0] == 50
    assert sites["compound_id"].iloc[0] == "C1"
    got = sites.geometry.iloc[0]
    assert got.x - X0 == pytest.approx(200) and got.y - Y0 == pytest.approx(20)
    assert result.params["households_covered_before"] == 0
    assert sites["rate_after"].iloc[0] == pytest.approx(50 / 80)


def test_with_a_wider_radius_one_gate_serves_both(layers):
    # radius 130: x=160 serves b1 (44.7 + 20 + 40 = 104.7) and b2 (44.7 + 20 + 40); the
    # greedy takes a gate bringing all 80 households
    s = Settings().override({"coverage.radius_m.kindergarten": 130})
    sites = propose_gates(layers, "kindergarten", 1, s).sites
    assert sites["households_new"].iloc[0] == 80


def test_no_walled_compound_is_an_input_error(layers):
    from gridgis.errors import InputError

    layers = dict(layers, gates=None)
    with pytest.raises(InputError, match="no walled compound"):
        propose_gates(layers, "kindergarten", 1)


def test_demo_city_gates_bring_households():
    from gridgis.synth import make_city

    L = make_city(households=10_000, seed=7).layers
    result = propose_gates(L, "primary_school", 3)
    s = result.sites
    assert 1 <= len(s) <= 3 and s["households_new"].sum() > 0
    assert (np.diff(s["households_new"].to_numpy()) <= 0).all()  # greedy: gains shrink
    assert s["compound_id"].isin(L["compounds"]["compound_id"]).all()
    # building the proposed gates brings exactly the households promised
    import pandas as pd

    from gridgis.coverage import compute_access

    def covered(gates):
        t = compute_access(
            L["buildings"],
            L["roads"],
            L["facilities"],
            L["green_spaces"],
            Settings(),
            categories=["primary_school"],
            compounds=L["compounds"],
            gates=gates,
        ).table
        return int(t.loc[t["covered"], "households"].sum())

    new = s[["geometry"]].assign(gate_id=[f"new{i}" for i in range(len(s))])
    more = gpd.GeoDataFrame(pd.concat([L["gates"], new], ignore_index=True), crs=4326)
    assert covered(more) - covered(L["gates"]) == s["households_new"].sum()
