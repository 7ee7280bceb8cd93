"""A synthetic province: demo cities side by side, one per district, built in parallel.

:func:`gridgis.synth.make_city` builds one city (up to a few million households in one
process). :func:`make_province` builds ``districts`` of them — each with its own seed,
its own synthetic county code (``329900`` + district number, a county code that does not
exist) and ids prefixed ``D<nn>-`` — and lays them out on a grid 2 km apart, so a
province of tens of millions of households is built district by district, on a Dask
cluster when one is given (each district a task) or in this process.

:func:`write_province` streams the districts into a workspace one at a time
(:meth:`gridgis.store.Store.write_stream`): memory holds the districts being built and
one being written, never the whole province twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS
from gridgis.errors import InputError
from gridgis.standards import DEFAULT, Settings
from gridgis.store.base import concat_frames
from gridgis.synth import METRIC_CRS

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from gridgis.store import Store
    from gridgis.synth import City


log = logging.getLogger(__name__)

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
    moved to its place); ``meta`` holds the city's params under ``params``."""
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
    return out, {"county_code": new, "households": city.households, "params": city.params}


def _bounds(layers: dict, crs: str) -> np.ndarray:
    """(minx, miny, maxx, maxy) of every geometry layer in ``crs``, metres."""
    boxes = [
        f.to_crs(crs).total_bounds
        for f in layers.values()
        if isinstance(f, gpd.GeoDataFrame) and len(f) and f.geometry.notna().any()
    ]
    b = np.array(boxes)
    return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])


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


class _Layout:
    """Places districts in rows of ``cols``, left to right, rows top to bottom, each
    :data:`DISTRICT_GAP_M` from its neighbours, as they arrive in order (district 0 stays
    where the demo city is built)."""

    def __init__(self, cols: int) -> None:
        self.cols = cols
        self.k = 0
        self.left = self.top = 0.0
        self.x = self.row_height = 0.0

    def offset(self, b: np.ndarray) -> tuple[float, float]:
        """(dx, dy) metres that put a district of bounds ``b`` in its place."""
        if self.k == 0:
            self.left, self.top, self.x = b[0], b[3], b[0]
        elif self.k % self.cols == 0:
            self.top -= self.row_height + DISTRICT_GAP_M
            self.x, self.row_height = self.left, 0.0
        dx, dy = self.x - b[0], self.top - b[3]
        self.x += (b[2] - b[0]) + DISTRICT_GAP_M
        self.row_height = max(self.row_height, b[3] - b[1])
        self.k += 1
        return dx, dy


def district_shares(households: int, districts: int) -> list[int]:
    """Households of each district: ``households`` split evenly, the first districts
    taking the remainder.

    Raises
    ------
    InputError
        Districts outside 1–:data:`MAX_DISTRICTS`, or fewer than 1,000 households in one.
    """
    if not 1 <= districts <= MAX_DISTRICTS:
        raise InputError(f"districts={districts}: between 1 and {MAX_DISTRICTS}")
    share = [households // districts + (k < households % districts) for k in range(districts)]
    if min(share) < 1_000:
        raise InputError(
            f"households={households:,} over {districts} districts: each needs at least 1,000"
        )
    return share


def _built(
    share: list[int], seed: int, client: Client | None, settings: Settings
) -> Iterator[tuple[dict, dict]]:
    """Each district's (layers, meta) in order: here one after another, or on the cluster
    with at most two per worker in flight (finished districts wait on the workers, so a
    bounded number of them is held anywhere)."""
    if client is None:
        for k, n in enumerate(share):
            yield _district(k, n, seed, settings)
        return
    from gridgis.cluster import n_workers

    window = 2 * n_workers(client)
    pending: list = []
    submitted = 0
    for k in range(len(share)):
        while submitted < len(share) and submitted < k + window:
            pending.append(
                client.submit(_district, submitted, share[submitted], seed, settings, pure=False)
            )
            submitted += 1
        future = pending.pop(0)
        result = future.result()
        future.release()
        yield result


def iter_province(
    households: int,
    districts: int,
    seed: int = 7,
    client: Client | None = None,
    settings: Settings = DEFAULT,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The districts of a province one at a time, moved into place (see
    :func:`make_province` for the parameters).

    ``progress(households_done, households_total)`` is called after each district.

    Yields
    ------
    layers, meta
        District ``k``'s canonical layers (EPSG:4326) and its county code, households
        and the params of its city.
    """
    share = district_shares(households, districts)
    layout = _Layout(math.ceil(math.sqrt(districts)))
    done = 0
    t0 = time.perf_counter()
    for k, (layers, meta) in enumerate(_built(share, seed, client, settings)):
        dx, dy = layout.offset(_bounds(layers, METRIC_CRS))
        moved = _move(layers, dx, dy, METRIC_CRS)
        del layers
        done += share[k]
        log.info(
            "province: district %d/%d (%s, %s households) built, %s/%s households, %.0f s",
            k + 1,
            districts,
            meta["county_code"],
            f"{share[k]:,}",
            f"{done:,}",
            f"{households:,}",
            time.perf_counter() - t0,
        )
        yield moved, meta
        if progress is not None:
            progress(done, households)


def _province_meta(districts: list[dict], seed: int) -> dict[str, Any]:
    return {
        "synthetic": True,
        "city": f"示范省 ({len(districts)} synthetic districts)",
        "computed_crs": METRIC_CRS,
        "county_code": districts[0]["county_code"],
        "districts": [{k: d[k] for k in ("county_code", "households")} for d in districts],
        "demo_households": int(sum(d["households"] for d in districts)),
        "demo_seed": seed,
    }


def make_province(
    households: int,
    districts: int,
    seed: int = 7,
    client: Client | None = None,
    settings: Settings = DEFAULT,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Make a synthetic province of ``districts`` demo cities holding ``households`` in all,
    in memory (:func:`write_province` writes one into a workspace district by district).

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
    parts: dict[str, list] = {}
    metas = []
    for layers, meta in iter_province(households, districts, seed, client, settings):
        metas.append(meta)
        for name, frame in layers.items():
            parts.setdefault(name, []).append(frame)
    out: dict[str, Any] = {name: concat_frames(frames) for name, frames in parts.items()}
    return out, _province_meta(metas, seed)


def write_province(
    store: Store,
    households: int,
    districts: int,
    seed: int = 7,
    client: Client | None = None,
    settings: Settings = DEFAULT,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Build a province (as :func:`make_province`) and write it into ``store`` district by
    district (:meth:`~gridgis.store.Store.write_stream`: on a GeoPackage only the
    districts in flight are held in memory); all layers or none are written.

    Parameters
    ----------
    progress
        ``callback(households_done, households_total)`` after each district is built.

    Returns
    -------
    dict
        The workspace metadata written (``districts``, ``demo_households`` …) plus
        ``rows`` (rows written per layer).
    """
    metas: list[dict] = []

    def batches() -> Iterator[dict[str, Any]]:
        for layers, meta in iter_province(households, districts, seed, client, settings, progress):
            metas.append(meta)
            yield layers

    params = {
        "generator": "gridgis.province.write_province",
        "households": int(households),
        "districts": int(districts),
        "seed": int(seed),
        "built_in_crs": METRIC_CRS,
        "synthetic": True,
    }
    rows = store.write_stream(batches(), params=params)
    meta = _province_meta(metas, seed)
    store.set_meta(**meta)
    return meta | {"rows": rows}
