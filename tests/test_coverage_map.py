"""The coverage page: walkable service areas, optional straight circles, repairs drawn,
a banner for a broken network and 无数据 for categories without facilities."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gridgis.coverage import run_coverage
from gridgis.maps.coverage import coverage_map
from gridgis.standards import Settings


@pytest.fixture(scope="module")
def page():
    import geopandas as gpd

    from gridgis.crs import metric_crs_for
    from gridgis.synth import make_city

    L = dict(make_city(households=3_000, seed=5).layers)
    # no breakfast shops at all, and roads broken apart by 5 m gaps (beyond the repair)
    L["facilities"] = L["facilities"][L["facilities"]["category"] != "breakfast"]
    crs = metric_crs_for(L["roads"])
    r = L["roads"].to_crs(crs)
    cut = []
    for i, g in enumerate(r.geometry.values):
        c = np.asarray(g.coords, float)
        d = (c[-1] - c[-2]) / np.hypot(*(c[-1] - c[-2]))
        c[-1] -= d * (5.0 if i % 2 else 0.0)
        c[0] += d * (5.0 if i % 2 else 0.0)
        cut.append(shapely.LineString(c))
    L["roads"] = r.set_geometry(gpd.GeoSeries(cut, crs=crs)).to_crs(4326)
    result = run_coverage(L, Settings())
    layers = dict(result.layers)
    m, notes = coverage_map(L["communities"], L["buildings"], L["facilities"], layers, Settings())
    return result, m.get_root().render()


def test_broken_network_is_loud(page):
    result, html = page
    assert result.params["warnings"]
    assert "network_fragmented" in set(result.layers["coverage_findings"]["kind"])
    assert "路网破碎" in html and "路网修复与问题" in html


def test_no_data_category_says_so(page):
    result, html = page
    assert "breakfast" in result.params["no_data_categories"]
    assert "无数据" in html and "无设施数据" in html


def test_service_areas_replace_circles(page):
    result, html = page
    assert "service_areas" in result.layers
    # layer names reach the page JSON-escaped
    assert "可达范围".encode("unicode_escape").decode() in html or "可达范围" in html
    assert "reach_m" in html  # the service areas' tooltip field
    assert "直线半径" in html  # the circles stay, as an optional layer
