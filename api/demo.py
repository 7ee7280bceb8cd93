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
    """The demo city's layers after delineation (with assignment and recount) and coverage
    (EPSG:4326), as ``gridgis demo`` makes them.

    Computed once per process for each argument set (the frames are shared: do not
    modify them in place)."""
    key = (households, seed, json.dumps(settings.to_dict(), sort_keys=True, default=str))
    if key not in _CACHE:
        _CACHE[key] = _demo_layers(households, seed, settings)
    return dict(_CACHE[key])


_CACHE: dict[tuple, dict[str, Any]] = {}


def _demo_layers(households: int, seed: int, settings: Settings) -> dict[str, Any]:
    """The demo city after the demo's delineation and coverage steps, run by the same
    workflows as ``gridgis demo`` on a scratch GeoPackage and read back."""
    import tempfile
    from pathlib import Path

    from gridgis.store import GeoPackageStore
    from gridgis.workflows import make_demo_city, run_demo

    with tempfile.TemporaryDirectory(prefix="gridgis-demo-") as tmp:
        store = GeoPackageStore(Path(tmp) / "demo.gpkg")
        make_demo_city(store, settings, households=households, seed=seed)
        run_demo(store, settings, Path(tmp), steps=API_DEMO_STEPS)
        layers = {name: store.read(name) for name in store.layers()}
        store.close()
    return layers


API_DEMO_STEPS = ("delineate", "coverage")
"""Steps of :data:`gridgis.workflows.DEMO_STEPS` the served demo runs (no site proposals,
lookup sample or maps)."""


def fill_demo(store: Store, layers: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """Write :func:`demo_layers` (or the given ones) into ``store`` in one write."""
    layers = layers if layers is not None else demo_layers(**kw)
    store.write_many(layers, params={"generator": "api.demo.demo_layers", **kw})
    store.set_meta(synthetic=True)
    return layers
