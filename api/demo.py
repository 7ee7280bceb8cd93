"""A served demo workspace: the synthetic city with grids, assignment and coverage, for
the API tests and the API benchmark (``fill_demo(open_store(url))``)."""

from __future__ import annotations

import json
from typing import Any

from gridgis.standards import DEFAULT, Settings
from gridgis.store import Store


def demo_layers(
    households: int = 10_000, seed: int = 7, settings: Settings = DEFAULT
) -> dict[str, Any]:
    """The demo city's layers after delineation, assignment and coverage (EPSG:4326).

    Computed once per process for each argument set (the frames are shared: do not
    modify them in place)."""
    key = (households, seed, json.dumps(settings.to_dict(), sort_keys=True, default=str))
    if key not in _CACHE:
        _CACHE[key] = _demo_layers(households, seed, settings)
    return dict(_CACHE[key])


_CACHE: dict[tuple, dict[str, Any]] = {}


def _demo_layers(households: int, seed: int, settings: Settings) -> dict[str, Any]:
    from gridgis.assign import assign_all
    from gridgis.coverage import run_coverage
    from gridgis.delineate import delineate
    from gridgis.synth import make_city

    city = make_city(households=households, seed=seed, settings=settings)
    layers: dict[str, Any] = dict(city.layers)
    result = delineate(layers, settings)
    layers.update(grids=result.grids, buildings=result.buildings)
    layers.update(assign_all(layers, result.grids, settings).layers())
    layers.update(run_coverage(layers, settings).layers)
    return layers


def fill_demo(store: Store, layers: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """Write :func:`demo_layers` (or the given ones) into ``store`` in one write."""
    layers = layers if layers is not None else demo_layers(**kw)
    store.write_many(layers, params={"generator": "api.demo.demo_layers", **kw})
    store.set_meta(synthetic=True)
    return layers
