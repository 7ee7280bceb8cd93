"""A synthetic province: demo cities side by side, one per district, built in parallel.

:func:`gridgis.synth.make_city` builds one city (up to a few million households in one
process). :func:`make_province` builds ``districts`` of them — each with its own seed,
its own synthetic county code (``329900`` + district number, a county code that does not
exist) and ids prefixed ``D<nn>-`` — and lays them out on a grid 2 km apart, so a
province of tens of millions of households is built district by district, on a Dask
cluster when one is given (each district a task) or in this process.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS
from gridgis.errors import InputError
from gridgis.standards import DEFAULT, Settings

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from gridgis.synth import City

PROVINCE_COUNTY_BASE = 329_900
"""District ``k`` gets the synthetic county code ``329900 + k`` (prefix 32 江苏; 99xx is
no real county), replacing the demo city's ``320199``."""
DISTRICT_GAP_M = 2_000.0
"""Open land between neighbouring districts, metres."""
MAX_DISTRICTS = 99
"""District numbers fit two digits (county codes 329900–329998)."""

_ID_COLUMNS = {
    "buildings": ["building_id"],
    "roads": ["road_id"],
    "facilities": ["facility_id"],
    "green_spaces": ["green_id"],
    "institutions": ["unit_id"],
    "addresses": ["address_id", "building_id"],
    "staff": ["staff_id"],
}
_CODE_COLUMNS = ("street_code", "community_code", "grid_code")


def _district(k: int, households: int, seed: int, settings: Settings) -> tuple[dict, dict]:
    """District ``k``: a demo city with its own county code and ids (storage CRS, not yet
    moved to its place)."""
    from gridgis.synth import make_city

    city: City = make_city(households, seed=seed + k, settings=settings)
    old = str(city.meta.get("county_code", "320199"))
    new = str(PROVINCE_COUNTY_BASE + k)
    out = {}
    for name, frame in city.layers.items():
        frame = frame.copy()
        for col in _ID_COLUMNS.get(name, []):
            if col in frame:
                ids = frame[col].astype("string")
                frame[col] = (f"D{k:02d}-" + ids).where(ids.notna(), pd.NA)
        for col in _CODE_COLUMNS:
            if col in frame:
                codes = frame[col].astype("string")
                frame[col] = codes.str.replace(f"^{old}", new, regex=True)
        out[name] = frame
    return out, {"county_code": new, "households": city.households}


def _move(layers: dict, dx: float, dy: float, crs: str) -> dict:
    """Layers shifted by (dx, dy) metres in the metric CRS ``crs``."""
    out = {}
    for name, frame in layers.items():
        if isinstance(frame, gpd.GeoDataFrame) and len(frame):
            metric = frame.to_crs(crs)
            geoms = shapely.transform(metric.geometry.values, lambda xy: xy + (dx, dy))
            frame = metric.set_geometry(gpd.GeoSeries(geoms, crs=crs, index=metric.index))
            frame = frame.to_crs(STORAGE_CRS)
        out[name] = frame
    return out


def make_province(
    households: int,
    districts: int,
    seed: int = 7,
    client: Client | None = None,
    settings: Settings = DEFAULT,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Make a synthetic province of ``districts`` demo cities holding ``households`` in all.

    Parameters
    ----------
    households
        Total households (split evenly; the first districts take the remainder).
    districts
        Number of districts (cities), 1–:data:`MAX_DISTRICTS`; each must hold at least
        1,000 households (the demo city's minimum).
    seed
        District ``k`` uses ``seed + k``: the same arguments give the same province.
    client
        A Dask client: each district is built as a task on the cluster; ``None`` builds
        them one after another here. The result is the same.
    settings
        Rules passed to every city.

    Returns
    -------
    layers, meta
        Canonical layers (EPSG:4326), districts in order; ``meta`` as a city's plus
        ``districts`` (county code and households of each).
    """
    if not 1 <= districts <= MAX_DISTRICTS:
        raise InputError(f"districts={districts}: between 1 and {MAX_DISTRICTS}")
    share = [households // districts + (k < households % districts) for k in range(districts)]
    if min(share) < 1_000:
        raise InputError(
            f"households={households:,} over {districts} districts: each needs at least 1,000"
        )
    if client is None:
        parts = [_district(k, n, seed, settings) for k, n in enumerate(share)]
    else:
        futures = client.map(
            _district, range(districts), share, seed=seed, settings=settings, pure=False
        )
        parts = client.gather(futures)
    crs = "EPSG:4549"
    sizes = []
    for layers, _ in parts:
        b = layers["roads"].to_crs(crs).total_bounds
        sizes.append((b[2] - b[0], b[3] - b[1]))
    cols = math.ceil(math.sqrt(districts))
    step_x = max(w for w, _ in sizes) + DISTRICT_GAP_M
    step_y = max(h for _, h in sizes) + DISTRICT_GAP_M
    moved = [
        _move(layers, (k % cols) * step_x, -(k // cols) * step_y, crs)
        for k, (layers, _) in enumerate(parts)
    ]
    names = list(moved[0])
    out: dict[str, Any] = {}
    for name in names:
        frames = [m[name] for m in moved]
        cat = pd.concat(frames, ignore_index=True)
        if isinstance(frames[0], gpd.GeoDataFrame):
            cat = gpd.GeoDataFrame(cat, geometry=frames[0].geometry.name, crs=STORAGE_CRS)
        out[name] = cat
    meta = {
        "synthetic": True,
        "city": f"示范省 ({districts} synthetic districts)",
        "county_code": parts[0][1]["county_code"],
        "districts": [m for _, m in parts],
        "demo_households": int(np.sum(share)),
        "demo_seed": seed,
    }
    return out, meta
