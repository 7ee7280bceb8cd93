"""Grid numbering (west to east, north to south) and stable recoding with a code registry."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from gridgis.codes import REGISTRY_COLUMNS, CodeError, number_grids, recode
from gridgis.standards import Settings

METRIC = "EPSG:4549"
X0, Y0 = 392_000.0, 3_553_000.0
C1, C2 = "320199001001", "320199001002"


def grids(cells, community=C1, codes=None) -> gpd.GeoDataFrame:
    """Grids from (x0, y0, x1, y1) cells in metres from the origin."""
    rows = [
        {"community_code": community, "geometry": box(X0 + a, Y0 + b, X0 + c, Y0 + d)}
        for a, b, c, d in cells
    ]
    g = gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC).to_crs("EPSG:4326")
    if codes is not None:
        g["grid_code"] = codes
    return g


# a 3 x 2 layout: row north (y 100–200) then south (y 0–100), columns west to east
LAYOUT = [
    (200, 0, 300, 100),
    (0, 100, 100, 200),
    (100, 0, 200, 100),
    (200, 100, 300, 200),
    (0, 0, 100, 100),
    (100, 100, 200, 200),
]
# i.e. SE, NW, S-middle, NE, SW, N-middle


def test_numbering_reads_like_a_page():
    seq = number_grids(grids(LAYOUT).to_crs(METRIC))
    # NW=1, N-middle=2, NE=3, SW=4, S-middle=5, SE=6
    assert seq.tolist() == [6, 1, 5, 3, 4, 2]


def test_numbering_is_per_community_and_tolerates_ragged_rows():
    a = grids([(0, 0, 100, 100), (100, 5, 200, 105)])  # second is 5 m higher
    b = grids([(500, 0, 600, 100), (400, 0, 500, 100)], community=C2)
    g = gpd.GeoDataFrame(
        list(a.to_dict("records")) + list(b.to_dict("records")), crs="EPSG:4326"
    ).to_crs(METRIC)
    # the 5 m offset is within a row band: still west to east
    assert number_grids(g).tolist() == [1, 2, 2, 1]


def test_first_run_issues_1_to_n_in_numbering_order():
    new = grids(LAYOUT)
    rec = recode(new, None, issued_at="2026-01-01T00:00:00+00:00")
    assert list(rec.codes) == [f"{C1}{s:03d}" for s in (6, 1, 5, 3, 4, 2)]
    assert not rec.kept.any()
    reg = rec.registry
    assert list(reg.columns) == REGISTRY_COLUMNS
    assert (reg["status"] == "active").all() and len(reg) == 6
    assert (reg["issued_at"] == "2026-01-01T00:00:00+00:00").all()


def test_small_changes_keep_codes_large_changes_get_fresh_numbers():
    first = recode(grids(LAYOUT), None, issued_at="t1")
    prev = grids(LAYOUT, codes=list(first.codes))
    # grid NW shrinks a little (IoU 0.9): keeps code 001; NE is replaced by two halves,
    # each with IoU 0.5 with the old NE: one keeps its code, the other is new
    moved = [
        (200, 0, 300, 100),
        (0, 110, 100, 200),
        (100, 0, 200, 100),
        (200, 100, 250, 200),
        (250, 100, 300, 200),
        (0, 0, 100, 100),
        (100, 100, 200, 200),
    ]
    rec = recode(grids(moved), prev, issued_at="t2", registry=first.registry)
    codes = list(rec.codes)
    assert codes[1] == f"{C1}001"  # NW kept (IoU 0.9)
    assert codes[0] == f"{C1}006"  # unchanged grids keep their codes
    # the NE halves have IoU 0.5 with old NE (code 003): one keeps it (>= 0.5), the
    # other is new and takes 007, above the highest ever issued
    assert sorted([codes[3], codes[4]]) == [f"{C1}003", f"{C1}007"]
    assert (rec.registry["status"] == "active").all()
    assert len(rec.registry) == 7


def test_retired_codes_are_never_reused():
    s = Settings().override({"grid.recode_min_iou": 0.5})
    first = recode(grids(LAYOUT), None, s, issued_at="t1")
    prev = grids(LAYOUT, codes=list(first.codes))
    # drop the SE grid (LAYOUT[0], code 006): it is retired
    second = recode(grids(LAYOUT[1:]), prev, s, issued_at="t2", registry=first.registry)
    reg = second.registry.set_index("grid_code")
    assert reg.loc[f"{C1}006", "status"] == "retired"
    assert reg.loc[f"{C1}006", "retired_at"] == "t2"
    prev2 = grids(LAYOUT[1:], codes=list(second.codes))
    # a new grid appears where SE was: it must not get 006 back, but 007
    third = recode(
        grids(LAYOUT[1:] + [LAYOUT[0]]), prev2, s, issued_at="t3", registry=second.registry
    )
    assert list(third.codes)[-1] == f"{C1}007"
    assert set(third.codes[:-1]) == set(second.codes)
    reg3 = third.registry.set_index("grid_code")
    assert reg3.loc[f"{C1}006", "status"] == "retired"
    assert reg3.loc[f"{C1}007", "issued_at"] == "t3"


def test_iou_threshold_is_a_parameter():
    first = recode(grids([(0, 0, 100, 100)]), None)
    prev = grids([(0, 0, 100, 100)], codes=list(first.codes))
    shifted = grids([(40, 0, 140, 100)])  # IoU = 60/140 = 0.43
    assert recode(shifted, prev).codes[0] == f"{C1}002"
    loose = Settings().override({"grid.recode_min_iou": 0.4})
    assert recode(shifted, prev, loose).codes[0] == f"{C1}001"


def test_codes_stay_inside_their_community_and_overflow_is_an_error():
    prev = grids([(0, 0, 100, 100)], codes=[f"{C1}999"])
    with pytest.raises(CodeError, match="no grid sequence left"):
        recode(grids([(500, 0, 600, 100)]), prev)
    # a grid of another community never inherits C1's code, however large the overlap
    other = grids([(0, 0, 100, 100)], community=C2)
    rec = recode(other, grids([(0, 0, 100, 100)], codes=[f"{C1}001"]))
    assert rec.codes[0] == f"{C2}001"
    assert np.array_equal(rec.kept, [False])
