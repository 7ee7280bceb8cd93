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


def test_gates_from_csv_through_the_normal_reader(tmp_path, layers):
    """A gates table (CSV, lon/lat) imports as layer ``gates`` and walls the compound."""
    from gridgis.io import import_into
    from gridgis.store import open_store

    store = open_store(tmp_path / "ws.gpkg")
    store.write_many({k: v.to_crs(4326) for k, v in layers.items() if k != "gates"})
    lonlat = layers["gates"].to_crs(4326).geometry.iloc[0]
    csv = tmp_path / "gates.csv"
    csv.write_text(
        "gate_id,name,access,lon,lat\n"
        f"C1-N,北门,yes,{lonlat.x:.9f},{lonlat.y:.9f}\n"
        f"C1-X,旧门,no,{lonlat.x:.9f},{lonlat.y - 0.0009:.9f}\n",
        encoding="utf-8",
    )
    import_into(store, [csv], layer="gates", crs="wgs84")
    gates = store.read("gates")
    assert list(gates["gate_id"]) == ["C1-N", "C1-X"]
    assert gates.geometry.iloc[0].distance(lonlat) < 1e-7
    # the closed gate (access=no) does not open the wall
    from gridgis.network import make_walls

    walls, _ = make_walls(store.read("compounds"), gates, CRS, Settings().network)
    assert list(walls.gate_ids) == ["C1-N"]


def test_osm_gates_on_a_compound_boundary(tmp_path):
    """``barrier=gate`` / ``entrance=*`` nodes on a residential land use's boundary become
    gates (``access`` kept), the land use a compound; a gate elsewhere is not imported."""
    from gridgis.io.osm import read_osm

    lat0, lon0 = 32.05, 118.78
    d = 0.001
    corners = [(lat0, lon0), (lat0, lon0 + d), (lat0 + d, lon0 + d), (lat0 + d, lon0)]
    nodes = "".join(
        f'<node id="{i + 1}" lat="{la}" lon="{lo}"/>' for i, (la, lo) in enumerate(corners)
    )
    nodes += (
        f'<node id="10" lat="{lat0}" lon="{lon0 + d / 2}">'
        '<tag k="barrier" v="gate"/><tag k="access" v="private"/></node>'
        f'<node id="11" lat="{lat0 + d}" lon="{lon0 + d / 2}">'
        '<tag k="entrance" v="service"/><tag k="access" v="no"/></node>'
        f'<node id="12" lat="{lat0 + 5 * d}" lon="{lon0}"><tag k="barrier" v="gate"/></node>'
        f'<node id="20" lat="{lat0 - d}" lon="{lon0}"/>'
        f'<node id="21" lat="{lat0 - d}" lon="{lon0 + d}"/>'
    )
    ways = (
        '<way id="100"><nd ref="1"/><nd ref="10"/><nd ref="2"/><nd ref="3"/><nd ref="11"/>'
        '<nd ref="4"/><nd ref="1"/><tag k="landuse" v="residential"/>'
        '<tag k="name" v="幸福小区"/></way>'
        '<way id="101"><nd ref="20"/><nd ref="21"/><tag k="highway" v="residential"/>'
        '<tag k="bridge" v="yes"/><tag k="layer" v="1"/></way>'
    )
    path = tmp_path / "gates.osm"
    path.write_text(
        f"<?xml version='1.0' encoding='UTF-8'?><osm version='0.6'>{nodes}{ways}</osm>",
        encoding="utf-8",
    )
    raw = read_osm(path)
    gates = raw["gates"].set_index("gate_id")
    assert sorted(gates.index) == ["osm_n10", "osm_n11"]
    assert gates.loc["osm_n10", "access"] == "private"
    assert gates.loc["osm_n11", "access"] == "no"
    assert list(raw["compounds"]["compound_id"]) == ["osm_w100"]
    road = raw["roads"].iloc[0]
    assert road["layer"] == 1 and bool(road["bridge"]) is True


def test_demo_city_gate_sites_do_not_depend_on_the_search_blocks(monkeypatch):
    """The uncovered buildings are searched in spatial blocks, each on the graph within
    the radius of it: any block size gives the same coverage sets, so the same gates."""
    import gridgis.siting as S
    from gridgis.synth import make_city

    L = make_city(households=10_000, seed=7).layers
    ref = propose_gates(L, "primary_school", 3).sites
    for block in (1, 7):
        monkeypatch.setattr(S, "SEARCH_BLOCK", block)
        got = propose_gates(L, "primary_school", 3).sites
        assert got.drop(columns="geometry").equals(ref.drop(columns="geometry"))
        assert got.geometry.geom_equals_exact(ref.geometry, 1e-9).all()
