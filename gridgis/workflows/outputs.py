"""Output workflows: the map site and the address-lookup sample of the demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gridgis.standards import Settings
from gridgis.store import Store
from gridgis.workflows.base import JobResult, ProgressFactory, no_progress, read_present


def grids_written_at(store: Store) -> str | None:
    """Write date of the workspace's grids layer (the boards' effective date when grids
    carry no ``valid_from``), or None."""
    try:
        return str(store.info("grids").written_at or "") or None
    except Exception:  # no grids layer, or a store without layer metadata
        return None


def _style_workspace(store: Store, settings: Settings) -> list[str]:
    """Write the maps' QGIS layer styles into a GeoPackage workspace (table
    ``layer_styles``), so opening it in QGIS shows the web maps' picture; other stores
    are left as they are. Returns the styled layers."""
    from gridgis.store import GeoPackageStore

    if not isinstance(store, GeoPackageStore) or not store.has("grids"):
        return []
    from gridgis.maps import write_layer_styles

    styled: list[str] = []
    store.restyle(lambda path: styled.extend(write_layer_styles(path, rules=settings.maps)))
    return styled


def make_map(
    store: Store,
    settings: Settings,
    out: Path,
    *,
    basemap: str = "none",
    tianditu_key: str | None = None,
    boards: bool = True,
    progress: ProgressFactory = no_progress,
) -> JobResult:
    """Read the workspace and write its map site under *out* (pages, boards, static).

    Returns
    -------
    JobResult
        ``detail`` is the :class:`gridgis.maps.MapSite`; ``notes`` its notes; nothing is
        written to the workspace.
    """
    from gridgis.maps import MAP_LAYERS, write_maps
    from gridgis.maps.site import tiled_layers

    layers = read_present(store, tiled_layers(store, settings, boards) or MAP_LAYERS)
    city = str(store.meta().get("city", ""))
    site = write_maps(
        layers,
        out,
        basemap=basemap,
        tianditu_key=tianditu_key,
        city=city,
        settings=settings,
        boards=boards,
        progress=progress("writing map pages"),
        board_date=grids_written_at(store),
    )
    styled = _style_workspace(store, settings)
    notes = list(site.notes)
    if styled:
        notes.append(f"QGIS layer styles written into the workspace for {', '.join(styled)}")
    return JobResult(
        "map",
        notes=notes,
        summary=f"{site.summary()}; open {site.index}",
        detail=site,
    )


def _sample_rows(n: int, store: Store, settings: Settings) -> np.ndarray:
    """Rows of the addresses the lookup step matches: all of them, or above
    ``demo.full_steps_max_households`` an evenly spaced sample of at most
    ``demo.lookup_sample_max_queries``."""
    households = int(store.meta().get("demo_households") or 0)
    cap = settings.demo.lookup_sample_max_queries
    if households <= settings.demo.full_steps_max_households or n <= cap:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, cap).round().astype(np.int64))


def lookup_sample(store: Store, settings: Settings, out: Path) -> JobResult:
    """Match the workspace's addresses as people would write them (full-width digits,
    幢 for 栋) and write ``lookup_sample.json`` with one full answer into *out*. Every
    address up to ``demo.full_steps_max_households`` households, an evenly spaced sample
    above (:func:`_sample_rows`)."""
    from gridgis.lookup import Lookup

    finder = Lookup.from_store(store, settings)
    if finder.index is None:
        return JobResult("lookup", summary="no addresses layer: skipped")
    index = finder.index
    rows = _sample_rows(len(index), store, settings)
    digits = str.maketrans("0123456789", "０１２３４５６７８９")
    queries = [t.replace("栋", "幢").translate(digits) for t in index.text[rows]]
    result = finder.addresses(queries)
    hit = result["address_id"].to_numpy() == index.address_id[rows]
    sample = finder.address(queries[min(3, len(queries) - 1)])
    (out / "lookup_sample.json").write_text(
        json.dumps(sample, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    with_grid = int(result["grid_code"].notna().sum())
    of = "" if len(rows) == len(index) else f" (an evenly spaced sample of {len(index):,})"
    return JobResult(
        "lookup",
        summary=(
            f"{int(hit.sum()):,}/{len(queries):,} rewritten demo addresses{of} matched to "
            f"their own record, {with_grid:,} with a grid; sample answer in "
            "lookup_sample.json"
        ),
        stats={
            "queries": len(queries),
            "addresses": len(index),
            "own_record": int(hit.sum()),
            "with_grid": with_grid,
        },
    )
