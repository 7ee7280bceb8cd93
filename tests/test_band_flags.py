"""A refresh re-derives every band flag from the recounted households (typed kinds of
gridgis.delineate.flags), so no stale reason survives an edit."""

import geopandas as gpd
from shapely.geometry import box

from gridgis.standards import DEFAULT
from gridgis.workflows.refresh import band_flags


def _grids(rows):
    return gpd.GeoDataFrame(
        {
            "households": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "flags": [r[2] for r in rows],
        },
        geometry=[box(i, 0, i + 1, 1) for i in range(len(rows))],
        crs="EPSG:4326",
    )


def test_stale_band_flags_go_and_new_ones_come():
    g = _grids(
        [
            (400, "residential", "community_too_small: 社区合计 200 户 < 250"),  # now in band
            (900, "residential", "above_max_building: 单栋 900 户"),  # still above: kept
            (120, "residential", "multipart: 两块"),  # below, no reason yet
            (600, "residential", "crosses_arterial: 中山路 300 m; above_max: x"),
            (0, "unit", "unit_above_max: 600 户"),  # unit grid now empty
            (300, "residential", ""),
        ]
    )
    out = list(band_flags(g, DEFAULT))
    assert out[0] == ""
    assert out[1] == "above_max_building: 单栋 900 户"
    assert out[2].startswith("below_min: 120 户 < 250") and out[2].endswith("multipart: 两块")
    assert out[3] == "above_max: x; crosses_arterial: 中山路 300 m"
    assert out[4] == ""
    assert out[5] == ""
