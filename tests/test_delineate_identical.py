"""Speed work on delineation must not change its results (issue 15 point 6).

The grids of the 30,000-household demo city (seed 7) are frozen in
``tests/data/delineate_30k_reference.json``: every grid's code, kind, households,
buildings, flags, area and centroid, and every building's grid. A faster delineation gives
the very same grids (areas within 1e-6 relative, centroids within 1 mm).

Regenerate (only when a change of results is intended, and say so in the commit):
``PYTHONPATH=$PWD .venv/bin/python tests/test_delineate_identical.py --freeze``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely

REFERENCE = Path(__file__).with_name("data") / "delineate_30k_reference.json"
HOUSEHOLDS, SEED = 30_000, 7


def snapshot() -> dict:
    """Grids and building codes of the 30,000-household demo city, metric."""
    from gridgis.crs import metric_crs_for
    from gridgis.delineate import delineate
    from gridgis.synth import make_city

    city = make_city(households=HOUSEHOLDS, seed=SEED)
    res = delineate(city.layers)
    g = res.grids.to_crs(metric_crs_for(city.layers["communities"]))
    geoms = g.geometry.to_numpy()
    cen = shapely.centroid(geoms)
    return {
        "grids": [
            {
                "grid_code": str(code),
                "kind": str(kind),
                "households": int(hh),
                "building_count": int(bc),
                "flags": str(fl),
                "area_m2": float(a),
                "x": float(x),
                "y": float(y),
            }
            for code, kind, hh, bc, fl, a, x, y in zip(
                g["grid_code"],
                g["kind"],
                g["households"],
                g["building_count"],
                g["flags"].fillna(""),
                shapely.area(geoms),
                shapely.get_x(cen),
                shapely.get_y(cen),
                strict=True,
            )
        ],
        "buildings": dict(
            zip(
                res.buildings["building_id"].astype(str),
                res.buildings["grid_code"].astype("string").fillna(""),
                strict=True,
            )
        ),
    }


@pytest.fixture(scope="module")
def now() -> dict:
    return snapshot()


def test_reference_exists():
    assert REFERENCE.exists(), "freeze the reference first (see module docstring)"


def test_same_grids_as_frozen(now):
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    assert len(now["grids"]) == len(ref["grids"]) > 50
    for a, b in zip(now["grids"], ref["grids"], strict=True):
        for key in ("grid_code", "kind", "households", "building_count", "flags"):
            assert a[key] == b[key], (b["grid_code"], key, a[key], b[key])
        assert a["area_m2"] == pytest.approx(b["area_m2"], rel=1e-6), b["grid_code"]
        assert np.hypot(a["x"] - b["x"], a["y"] - b["y"]) < 1e-3, b["grid_code"]


def test_same_building_grids_as_frozen(now):
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))
    assert now["buildings"] == ref["buildings"]
    assert sum(1 for c in ref["buildings"].values() if c) > 0.9 * len(ref["buildings"])


if __name__ == "__main__" and "--freeze" in sys.argv:
    REFERENCE.write_text(json.dumps(snapshot(), ensure_ascii=False, indent=0), encoding="utf-8")
    print(f"wrote {REFERENCE}")


def test_sort_helpers_match_numpy():
    """The packed-key sorts give numpy's own orders, ties and duplicates included."""
    from gridgis.delineate.atoms import _lexsort_rows, unique_rows

    rng = np.random.default_rng(1)
    for n in (0, 1, 7, 5000):
        small = rng.integers(-50, 50, size=(n, 4)).astype(np.int64) * 37 + 10**10
        huge = rng.integers(-(2**40), 2**40, size=(n, 4)).astype(np.int64)  # 4-key fallback
        for key in (small, huge):
            assert (_lexsort_rows(key) == np.lexsort(key.T[::-1])).all()
        xy = np.round(rng.integers(0, 20, size=(n, 2)) * 0.1 + 3e5, 3)
        u, first = unique_rows(xy)
        u_np, first_np = np.unique(xy, axis=0, return_index=True)
        assert (u == u_np).all() and (first == first_np).all()
    # worked case: three points, one repeated; first occurrences 2 and 0
    u, first = unique_rows(np.array([[1.0, 2.0], [1.0, 1.0], [0.0, 5.0], [1.0, 2.0]]))
    assert u.tolist() == [[0.0, 5.0], [1.0, 1.0], [1.0, 2.0]] and first.tolist() == [2, 1, 0]
