"""Layer validation: every rule, each with its specific message (file, layer, row, field)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

from gridgis.layers import (
    FACILITY_CATEGORIES,
    REJECT_COLUMNS,
    SCHEMA,
    STAFF_ROLES,
    LayerError,
    estimate_households,
    validate,
)
from gridgis.standards import DEFAULT, Settings

GEOD = pyproj.Geod(ellps="WGS84")
X0, Y0 = 118.78, 32.04  # Nanjing Xinjiekou


def square(i: int, side_deg: float = 0.0005) -> Polygon:
    """A ~47 m × 55 m block, the i-th along a row to the east."""
    x = X0 + i * 0.001
    return Polygon([(x, Y0), (x + side_deg, Y0), (x + side_deg, Y0 + side_deg), (x, Y0 + side_deg)])


BOWTIE = Polygon([(X0, Y0), (X0 + 0.001, Y0 + 0.001), (X0 + 0.001, Y0), (X0, Y0 + 0.001)])


def buildings(**cols) -> gpd.GeoDataFrame:
    n = len(next(iter(cols.values())))
    geoms = cols.pop("geometry", [square(i) for i in range(n)])
    return gpd.GeoDataFrame(cols, geometry=geoms, crs="EPSG:4326")


def reasons(v, field: str | None = None) -> dict[int, str]:
    """{row: reason} of the rejects, optionally for one field."""
    r = v.rejects if field is None else v.rejects[v.rejects["field"] == field]
    return dict(zip(r["row"].astype(int), r["reason"], strict=True))


# --------------------------------------------------------------------------------------
# Layer-level errors: nothing loads
# --------------------------------------------------------------------------------------
def test_missing_required_field_names_file_layer_and_field():
    roads = gpd.GeoDataFrame(
        {"road_id": ["r1"], "名称": ["中山路"]},
        geometry=[LineString([(X0, Y0), (X0 + 0.01, Y0)])],
        crs=4326,
    )
    with pytest.raises(LayerError) as exc:
        validate(roads, "roads", source="roads.shp")
    msg = str(exc.value)
    assert "roads.shp" in msg and "'roads'" in msg and "road_class" in msg
    assert "名称" in msg and "field_map parameter (road_class=" in msg  # found; how to map it


def test_missing_several_required_fields_lists_them_all():
    staff = pd.DataFrame({"staff_id": ["s1"]})
    with pytest.raises(LayerError, match="name, role"):
        validate(staff, "staff", source="staff.xlsx")


def test_unknown_layer():
    with pytest.raises(LayerError, match="unknown layer 'grids2'.*streets"):
        validate(pd.DataFrame(), "grids2", source="x.csv")


def test_no_crs_is_a_layer_error():
    b = buildings(building_id=["b1"]).set_crs(None, allow_override=True)
    with pytest.raises(LayerError, match=r"b\.geojson: layer 'buildings' has no CRS"):
        validate(b, "buildings", source="b.geojson")


def test_no_geometry_column_is_a_layer_error():
    with pytest.raises(LayerError, match="'buildings' has no geometry column"):
        validate(pd.DataFrame({"building_id": ["b1"]}), "buildings", source="b.csv")


def test_projected_input_is_brought_to_storage_crs():
    b = buildings(building_id=["b1"], households=[10]).to_crs(4549)
    v = validate(b, "buildings")
    assert v.data.crs.to_epsg() == 4326
    np.testing.assert_allclose(v.data.geometry.iloc[0].bounds[:2], (X0, Y0), atol=1e-7)


# --------------------------------------------------------------------------------------
# Geometry rules
# --------------------------------------------------------------------------------------
def test_empty_and_missing_geometry_rejected():
    b = buildings(
        building_id=["b1", "b2", "b3"], households=[1, 2, 3], geometry=[square(0), None, Polygon()]
    )
    v = validate(b, "buildings", source="b.shp")
    assert reasons(v, "geometry") == {2: "no geometry", 3: "no geometry"}
    assert list(v.data["building_id"]) == ["b1"]
    assert set(v.rejects["source"]) == {"b.shp"} and set(v.rejects["layer"]) == {"buildings"}


def test_invalid_geometry_repaired_and_noted():
    b = buildings(building_id=["b1", "b2"], households=[5, 6], geometry=[square(0), BOWTIE])
    v = validate(b, "buildings", source="b.shp")
    assert len(v.rejects) == 0 and len(v.data) == 2
    fixed = v.data.geometry.iloc[1]
    assert fixed.is_valid and fixed.geom_type in ("Polygon", "MultiPolygon")
    # the two triangles of the bow-tie, each 1/4 of the 0.001° square
    assert fixed.area == pytest.approx(0.001**2 / 2, rel=1e-9)
    assert any("repaired 1 invalid" in n and "rows 2" in n and "b.shp" in n for n in v.notes)


def test_polygon_that_repairs_to_a_line_is_rejected():
    flat = Polygon([(X0, Y0), (X0 + 0.001, Y0), (X0 + 0.002, Y0), (X0, Y0)])
    b = buildings(building_id=["b1", "b2"], households=[5, 6], geometry=[square(0), flat])
    v = validate(b, "buildings")
    assert reasons(v, "geometry") == {2: "geometry empty after repair"}
    assert list(v.data["building_id"]) == ["b1"]


def test_wrong_geometry_type_rejected_naming_the_type():
    b = buildings(building_id=["b1", "b2"], households=[5, 6], geometry=[square(0), Point(X0, Y0)])
    v = validate(b, "buildings")
    r = v.rejects.iloc[0]
    assert (r["row"], r["field"], r["value"]) == (2, "geometry", "Point")
    assert r["reason"] == "geometry must be Polygon or MultiPolygon"
    roads = gpd.GeoDataFrame(
        {"road_id": ["r1"], "road_class": ["branch"]}, geometry=[square(0)], crs=4326
    )
    v = validate(roads, "roads")
    assert reasons(v) == {1: "geometry must be LineString or MultiLineString"}


# --------------------------------------------------------------------------------------
# Households
# --------------------------------------------------------------------------------------
def test_households_non_numeric_negative_fractional_each_named():
    b = buildings(
        building_id=list("abcdef"),
        households=[120, "约30", -3, 2.5, "48", "1e2"],
        use=["residential"] * 6,
    )
    v = validate(b, "buildings", source="楼栋.xlsx")
    assert reasons(v, "households") == {2: "not a number", 3: "negative", 4: "not a whole number"}
    rej = v.rejects.set_index("row")
    assert rej.loc[2, "value"] == "约30" and rej.loc[3, "value"] == "-3"
    assert list(v.data["households"]) == [120, 48, 100]
    assert str(v.data["households"].dtype) == "Int64"
    assert not v.data["households_estimated"].any()


def _geodesic_area(poly: Polygon) -> float:
    area, _ = GEOD.geometry_area_perimeter(poly)
    return abs(area)


def test_households_estimated_only_for_residential_and_flagged():
    polys = [square(i, 0.0004 + 0.0001 * i) for i in range(5)]
    b = buildings(
        building_id=list("abcde"),
        households=[None, None, 80, None, ""],
        floors=[6, 18, 6, None, 3],
        use=["residential", "residential", "residential", "commercial", "residential"],
        geometry=polys,
    )
    v = validate(b, "buildings")
    d = v.data.set_index("building_id")
    gfa = DEFAULT.buildings.gross_floor_area_per_household_m2
    for bid, floors in (("a", 6), ("b", 18), ("e", 3)):
        expected = _geodesic_area(polys["abcde".index(bid)]) * floors / gfa
        assert abs(d.loc[bid, "households"] - expected) <= max(1.0, 1e-3 * expected), bid
        assert d.loc[bid, "households_estimated"]
    assert d.loc["c", "households"] == 80 and not d.loc["c", "households_estimated"]
    # not residential: not estimated, no households
    assert d.loc["d", "households"] == 0 and not d.loc["d", "households_estimated"]
    assert str(d["households_estimated"].dtype) == "boolean"


def test_estimate_uses_default_floors_and_settings():
    poly = square(0, 0.001)  # ~ 94 m × 111 m ≈ 10,500 m²
    b = buildings(building_id=["a"], use=["residential"], geometry=[poly])
    area = _geodesic_area(poly)
    default = validate(b, "buildings").data["households"].iloc[0]
    floors = DEFAULT.buildings.default_residential_floors
    assert abs(default - area * floors / 100.0) <= 1 + 1e-3 * default
    half = Settings().override({"buildings.gross_floor_area_per_household_m2": 50})
    doubled = validate(b, "buildings", settings=half).data["households"].iloc[0]
    assert abs(doubled - 2 * default) <= 2


def test_estimated_flag_parsed_strictly():
    b = buildings(
        building_id=list("abcde"),
        households=[10, 20, 30, 40, 50],
        households_estimated=["是", "否", "yes", "maybe", None],
    )
    v = validate(b, "buildings", source="b.xlsx")
    assert reasons(v) == {4: "not true/false (是/否, yes/no, 1/0)"}
    assert v.rejects.iloc[0]["value"] == "maybe"
    assert v.data["households_estimated"].tolist() == [True, False, True, False]


def test_estimate_at_least_one_household():
    tiny = Polygon([(X0, Y0), (X0 + 1e-5, Y0), (X0 + 1e-5, Y0 + 1e-5), (X0, Y0 + 1e-5)])
    b = buildings(building_id=["a"], use=["residential"], floors=[1], geometry=[tiny])
    out = estimate_households(b)
    assert out["households"].iloc[0] == 1 and out["households_estimated"].iloc[0]


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------
def test_duplicate_keys_first_wins_later_rejected_naming_first():
    b = buildings(building_id=["b1", "b2", "b1", " b2 ", "b3"], households=[1, 2, 3, 4, 5])
    v = validate(b, "buildings", source="b.shp")
    assert reasons(v, "building_id") == {
        3: "duplicate key (first at row 1)",
        4: "duplicate key (first at row 2)",
    }
    d = v.data.set_index("building_id")
    assert list(d.index) == ["b1", "b2", "b3"]
    assert d.loc["b1", "households"] == 1 and d.loc["b2", "households"] == 2


def test_row_numbers_are_positions_not_the_input_index():
    b = buildings(building_id=["x", "y", "z"], households=[1, -1, 3])
    b.index = ["r10", "r20", "r30"]
    v = validate(b, "buildings")
    assert reasons(v) == {2: "negative"}


def test_missing_key_generated_and_noted():
    f = gpd.GeoDataFrame(
        {"category": ["kindergarten", "retail"]},
        geometry=[Point(X0, Y0), Point(X0 + 0.001, Y0)],
        crs=4326,
    )
    v = validate(f, "facilities", source="poi.csv")
    assert list(v.data["facility_id"]) == ["fac1", "fac2"]
    assert any("generated keys" in n and "poi.csv" in n for n in v.notes)


def test_missing_required_value_rejected():
    s = pd.DataFrame(
        {"staff_id": ["s1", "s2"], "name": ["张三", "  "], "role": ["网格员", "网格员"]}
    )
    v = validate(s, "staff", source="staff.csv")
    assert reasons(v) == {2: "required value missing"}
    assert v.rejects.iloc[0]["field"] == "name"


# --------------------------------------------------------------------------------------
# Codes, segment by segment
# --------------------------------------------------------------------------------------
def test_street_codes_checked_segment_by_segment():
    streets = gpd.GeoDataFrame(
        {
            "street_code": [
                "320106001",
                "990106001",
                "320100001",
                "320106700",
                "32010600",
                320106002.0,
            ],
            "name": ["华侨路街道", "a", "b", "c", "d", "湖南路街道"],
        },
        geometry=[square(i) for i in range(6)],
        crs=4326,
    )
    v = validate(streets, "streets", source="streets.shp")
    r = reasons(v, "street_code")
    assert "province segment '99'" in r[2]
    assert "county segment '00'" in r[3]
    assert "township segment '700'" in r[4]
    assert "exactly 9 digits" in r[5]
    assert list(v.data["street_code"]) == ["320106001", "320106002"]  # float read fixed
    assert str(v.data["street_code"].dtype) == "string"


def test_community_codes_and_their_street():
    comm = gpd.GeoDataFrame(
        {
            "community_code": ["320106001001", "320106001000", "320106001700", "320106002001"],
            "name": ["a", "b", "c", "d"],
            "street_code": ["320106001", "320106001", "320106001", "320106001"],
        },
        geometry=[square(i) for i in range(4)],
        crs=4326,
    )
    v = validate(comm, "communities", source="c.gpkg")
    r = reasons(v)
    assert "village segment '000'" in r[2] and "village segment '700'" in r[3]
    assert r[4] == "does not match the first 9 digits of community_code"
    assert list(v.data["community_code"]) == ["320106001001"]


def test_grid_codes_on_staff():
    s = pd.DataFrame(
        {
            "staff_id": ["s1", "s2", "s3", "s4"],
            "name": ["张三", "李四", "王五", "赵六"],
            "role": ["网格长", "网格员", "网格员", "网格员"],
            "community_code": ["320106001001", "320106001001", "320106001001", None],
            "grid_code": [
                "320106001001001",
                "320106001001000",
                "320106001002003",
                "320106001001002",
            ],
        }
    )
    v = validate(s, "staff", source="staff.csv")
    r = reasons(v)
    assert "sequence segment '000'" in r[2]
    assert r[3] == "does not match the first 12 digits of grid_code"
    assert list(v.data["staff_id"]) == ["s1", "s4"]


# --------------------------------------------------------------------------------------
# Controlled vocabularies
# --------------------------------------------------------------------------------------
def test_unknown_category_and_road_class():
    f = gpd.GeoDataFrame(
        {"facility_id": ["f1", "f2"], "category": ["kindergarten", "spa"]},
        geometry=[Point(X0, Y0), Point(X0, Y0)],
        crs=4326,
    )
    v = validate(f, "facilities")
    assert v.rejects.iloc[0]["row"] == 2 and v.rejects.iloc[0]["value"] == "spa"
    assert v.rejects.iloc[0]["reason"].startswith("must be one of vegetable_market")
    roads = gpd.GeoDataFrame(
        {"road_id": ["r1", "r2"], "road_class": ["arterial", "highway"]},
        geometry=[LineString([(X0, Y0), (X0 + 0.01, Y0)])] * 2,
        crs=4326,
    )
    v = validate(roads, "roads")
    assert reasons(v, "road_class") == {2: "must be one of arterial, secondary, branch, path"}


def test_facility_categories_cover_the_life_circle_and_radii():
    assert set(DEFAULT.coverage.life_circle_categories) <= set(FACILITY_CATEGORIES)
    assert set(DEFAULT.coverage.radius_m) - {"green"} <= set(FACILITY_CATEGORIES)


def test_staff_roles_in_chinese_normalised():
    s = pd.DataFrame(
        {
            "staff_id": list("abcde"),
            "name": list("甲乙丙丁戊"),
            "role": ["网格长", " 网格员 ", "专职社区工作者", "社区民警", "grid_worker"],
        }
    )
    v = validate(s, "staff")
    assert isinstance(v.data, pd.DataFrame) and not isinstance(v.data, gpd.GeoDataFrame)
    assert list(v.data["role"]) == [
        "grid_head",
        "grid_worker",
        "community_worker",
        "police",
        "grid_worker",
    ]
    assert STAFF_ROLES["grid_head"] == "网格长"


# --------------------------------------------------------------------------------------
# Output shape
# --------------------------------------------------------------------------------------
def test_output_has_canonical_columns_and_dtypes_and_keeps_extras():
    b = buildings(building_id=["a"], households=["12"], floors=["6"], 高度=[18.0])
    v = validate(b, "buildings")
    spec = SCHEMA["buildings"]
    assert list(v.data.columns[: len(spec.columns)]) == spec.columns
    assert "高度" in v.data.columns and v.data.geometry.name == "geometry"
    dt = v.data.dtypes.astype(str)
    assert dt["households"] == "Int64" and dt["floors"] == "Int64"
    assert dt["name"] == "string" and dt["households_estimated"] == "boolean"
    assert list(v.rejects.columns) == REJECT_COLUMNS


def test_a_row_with_several_faults_is_reported_for_each_and_dropped_once():
    b = buildings(
        building_id=["a", "b"], households=[1, -5], floors=[6, "x"], geometry=[square(0), None]
    )
    v = validate(b, "buildings")
    assert sorted(v.rejects["field"]) == ["floors", "geometry", "households"]
    assert set(v.rejects["row"]) == {2} and len(v.data) == 1
    assert v.summary == "1 rows valid, 3 rejected"


def test_empty_layer_validates_to_empty_canonical_frame():
    empty = gpd.GeoDataFrame({"building_id": []}, geometry=gpd.GeoSeries([], crs=4326))
    v = validate(empty, "buildings")
    assert len(v.data) == 0 and len(v.rejects) == 0
    assert list(v.data.columns[: len(SCHEMA["buildings"].columns)]) == SCHEMA["buildings"].columns


def test_demo_city_layers_validate_without_rejects():
    synth = pytest.importorskip("gridgis.synth")
    city = synth.make_city(households=10_000)
    for name in SCHEMA:
        if name not in city.layers:  # compounds, gates: not made by the demo city
            continue
        frame = city.layers[name]
        v = validate(frame, name, source="demo")
        assert len(v.rejects) == 0, (name, v.rejects.head().to_dict("records"))
        assert len(v.data) == len(frame), name
    b = validate(city.layers["buildings"], "buildings").data
    total = int(b["households"].sum())
    assert abs(total - 10_000) <= 100
    assert shapely.is_valid(b.geometry.values).all()
