"""Grid workflows: delineate (with assign and recount) and assign, each reading the
workspace, calling the pure analyses and writing in one atomic step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gridgis.errors import InputError
from gridgis.standards import Settings
from gridgis.store import Store
from gridgis.workflows.base import (
    JobResult,
    ProgressFactory,
    no_progress,
    read_present,
    require_layers,
    write_layers,
)

DELINEATE_INPUTS = (
    "communities",
    "streets",
    "buildings",
    "roads",
    "institutions",
    "facilities",
    "addresses",
    "staff",
    "assign_rejects",
    "green_spaces",
)
"""Layers delineation reads when present (green spaces name open-ground unit grids)."""

ASSIGN_INPUTS = (
    "buildings",
    "facilities",
    "institutions",
    "addresses",
    "staff",
    "communities",
    "assign_rejects",
)
"""Layers assignment reads when present (besides the grids)."""

ASSIGNABLE = ("buildings", "facilities", "institutions", "addresses", "staff")


def delineation_stats(
    grids: pd.DataFrame,
    buildings: pd.DataFrame,
    settings: Settings,
    previous: pd.DataFrame | None,
    registry: pd.DataFrame | None,
) -> dict[str, Any]:
    """Figures of a delineation for a summary: grids by kind, residential grids within the
    band (``grid.min_households``–``grid.max_households``), flagged, mean households and
    Polsby-Popper, crossings, codes kept and retired, buildings in a grid."""
    g = grids
    res = g[g["kind"] == "residential"]
    hh = res["households"].to_numpy()
    lo, hi = settings.grid.min_households, settings.grid.max_households
    in_range = (hh >= lo) & (hh <= hi)
    flagged = g["flags"].fillna("") != ""
    kept = (
        0 if previous is None else int(g["grid_code"].isin(previous["grid_code"].astype(str)).sum())
    )
    return {
        "grids": len(g),
        "residential": len(res),
        "unit": int((g["kind"] == "unit").sum()),
        "in_range": int(in_range.sum()),
        "flagged": int(flagged.sum()),
        "flagged_out_of_range": int((~in_range & (res["flags"].fillna("") != "")).sum()),
        "mean_pp": float(g["polsby_popper"].mean()) if len(g) else float("nan"),
        "mean_households": float(np.mean(hh)) if len(hh) else float("nan"),
        "crossings": int((g["crossings"] > 0).sum()) if "crossings" in g else 0,
        "kept_codes": kept,
        "retired_codes": 0 if registry is None else int((registry["status"] == "retired").sum()),
        "buildings": len(buildings),
        "buildings_in_grid": int(buildings["grid_code"].notna().sum()),
        "bounds": (lo, hi),
    }


def delineation_line(s: dict[str, Any]) -> str:
    """One line summing up :func:`delineation_stats`."""
    lo, hi = s["bounds"]
    share = s["in_range"] / s["residential"] if s["residential"] else 1.0
    return (
        f"{s['grids']:,} grids ({s['residential']:,} residential, {s['unit']:,} unit); "
        f"{share:.1%} within {lo}–{hi} households (mean {s['mean_households']:.0f}), "
        f"{s['flagged']:,} flagged; mean Polsby-Popper {s['mean_pp']:.2f}; "
        f"{s['buildings_in_grid']:,}/{s['buildings']:,} buildings in a grid"
    )


def _add_grid_staff(layers: dict[str, Any], grids, seed: int) -> None:
    from gridgis.synth import make_grid_staff

    staff = layers.get("staff")
    start = len(staff) + 1 if staff is not None else 1
    new_staff = make_grid_staff(grids, seed=seed, start=start)
    layers["staff"] = (
        new_staff if staff is None else pd.concat([staff, new_staff], ignore_index=True)
    )


def delineate(
    store: Store,
    settings: Settings,
    *,
    make_communities: bool = False,
    alignment: list[str] | None = None,
    county: str | None = None,
    grid_staff_seed: int | None = None,
    reason: str | None = None,
    effective: str | None = None,
    progress: ProgressFactory = no_progress,
    street: str | None = None,
    changed: bool = False,
    lock: list[str] | None = None,
    cluster: Any = None,
) -> JobResult:
    """Delineate the workspace's communities into grids, assign every layer to them,
    recount the grids from the assignment and write everything in one atomic step.

    Parameters
    ----------
    store
        The workspace: ``buildings`` and ``communities`` are needed (without communities,
        ``make_communities`` makes them first).
    settings
        Planning rules (``settings.grid``).
    make_communities
        Divide each street (or the built-up area) into communities first when the
        workspace has none.
    alignment
        Workspace layers whose boundaries grids should follow.
    county
        6-digit county code for made communities when there are no streets (default: the
        workspace's ``county_code`` metadata).
    grid_staff_seed
        Demo only: add generated grid heads and workers to ``staff`` with this seed.
    reason, effective
        Recorded with the new grid versions: a person's reason, and the date the grids
        take effect (default today, UTC).
    street
        Real street (name or 9-digit code, national division table) the made communities
        lie in: their codes start with its code and skip its committees' codes
        (:func:`gridgis.delineate.streets.resolve_street`).
    changed, lock
        Minimal-change re-grid (:func:`gridgis.delineate.regrid`): divide again only the
        communities whose households changed beyond ``grid.redivide_min_change_households``
        and keep the grids whose codes are in ``lock`` as they are.
    progress
        Callback factory per step (``making communities``, ``delineating``, ``assigning``).
    cluster
        ``local[:N]``, ``tcp://host:port`` or a Client: delineate and assign partitioned
        on Dask (:mod:`gridgis.partitioned`); the write is still one step.

    Returns
    -------
    JobResult
        ``written`` grids (with ``valid_from``), buildings, the assigned layers,
        ``code_registry``, ``grid_versions``, ``delineation_findings`` (and
        ``communities`` when made); ``stats`` from
        :func:`delineation_stats` plus ``communities_made`` and ``crs``.

    Raises
    ------
    MissingLayerError
        No buildings, an alignment layer missing, or no communities (and
        ``make_communities`` false).
    """
    from gridgis.assign import assign_params
    from gridgis.delineate import community_stats, recount
    from gridgis.workflows.base import MissingLayerError, layers_note
    from gridgis.workflows.versions import record_versions, settings_changes

    present = require_layers(store, ["buildings"], " — import buildings first")
    require_layers(store, alignment or [], kind="alignment layer")
    layers = read_present(store, DELINEATE_INPUTS, present)
    align = read_present(store, alignment or [], present)
    made, made_params = None, {}
    if "communities" not in layers or len(layers["communities"]) == 0:
        if not make_communities:
            raise MissingLayerError(
                f"{store.location}: no communities {layers_note(present)} — import them, or "
                f"make them from the streets (or the whole area) first (make_communities)",
                "communities",
            )
        county = county or store.meta().get("county_code")
        made, made_params = _make_communities(layers, settings, county, street, progress)
        layers["communities"] = made
    previous = store.read("grids") if "grids" in present else None
    registry = store.read("code_registry") if "code_registry" in present else None
    from dataclasses import replace

    from gridgis.partitioned import assign_on, cluster_client
    from gridgis.partitioned.source import shared_run

    as_stored = [n for n in layers if not (n == "communities" and made is not None)]
    with (
        cluster_client(cluster) as client,  # None: this process
        shared_run(store if client is not None else None, as_stored) as shared,
    ):
        result = _divide(
            client,
            store.location,
            layers,
            settings,
            align,
            previous,
            registry,
            changed=changed,
            lock=lock,
            progress=progress("delineating"),
            shared=shared,
        )
        layers["buildings"] = result.buildings
        if grid_staff_seed is not None:
            _add_grid_staff(layers, result.grids, grid_staff_seed)
        kw = {}
        if shared is not None:  # buildings (and staff) changed: they travel with the tasks
            kw["shared"] = replace(shared, layers=frozenset({"institutions", "addresses"}))
        assigned = assign_on(
            client, layers, result.grids, settings, progress=progress("assigning"), **kw
        )
    out = assigned.layers()
    options = {
        "make_communities": make_communities,
        "alignment": list(alignment or []),
        "county": county,
        "street": street,
        "changed": changed,
        "lock": list(lock or []),
        "rules": settings_changes(settings),
    }
    out["grids"], out["grid_versions"], _ = record_versions(
        recount(out["grids"], out["buildings"], settings),
        store.read("grid_versions") if "grid_versions" in present else None,
        "delineate",
        options,
        reason,
        effective,
    )
    out["community_stats"] = community_stats(out["grids"], settings)
    out["code_registry"] = result.registry
    out["delineation_findings"] = result.findings
    if made is not None:
        out["communities"] = made
    params = {**result.params, **made_params, "assign": assign_params(assigned, settings)}
    written = write_layers(store, "delineate", out, params)
    stats = delineation_stats(out["grids"], out["buildings"], settings, previous, result.registry)
    stats.update(
        communities_made=0 if made is None else len(made),
        crs=result.params["computed_crs"],
        community_stats=out["community_stats"],
    )
    return JobResult(
        "delineate",
        written=written,
        notes=list(assigned.notes),
        summary=delineation_line(stats),
        stats=stats,
        detail=result,
    )


def _assigned_stats(result) -> dict[str, Any]:
    stats: dict[str, Any] = {"grids": len(result.grids), "crs": result.crs}
    for name in ASSIGNABLE:
        frame = getattr(result, name)
        if frame is not None:
            stats[name] = {
                "rows": len(frame),
                "in_grid": int(frame["grid_code"].notna().sum()),
                "split": int(frame["grid_share"].notna().sum()) if "grid_share" in frame else 0,
            }
    return stats


def _divide(
    client: Any,
    location: str,
    layers: dict,
    settings: Settings,
    align: Any,
    previous: Any,
    registry: Any,
    *,
    changed: bool,
    lock: list[str] | None,
    progress: Any,
    shared: Any = None,
):
    """Delineate all communities (on *client* when given), or only the changed ones
    keeping the locked grids (:func:`gridgis.delineate.regrid`)."""
    if changed or lock:
        from gridgis.delineate import regrid
        from gridgis.workflows.base import MissingLayerError

        if previous is None:
            raise MissingLayerError(
                f"{location}: no grids to keep — a minimal-change re-grid (changed, "
                f"lock) needs an earlier delineation",
                "grids",
            )
        return regrid(
            layers, previous, settings, lock=lock or (), registry=registry, alignment=align
        )
    from gridgis.partitioned import delineate_on

    kw = {"shared": shared} if shared is not None else {}
    return delineate_on(
        client,
        layers,
        settings,
        alignment=align,
        progress=progress,
        previous=previous,
        registry=registry,
        **kw,
    )


def _make_communities(layers, settings: Settings, county, street, progress):
    """Communities made from the data (:func:`gridgis.delineate.make_communities`), in the
    real street *street* when given (its code, its committees' codes kept clear)."""
    from gridgis.delineate import make_communities

    street_code, reserved = None, set()
    if street:
        from gridgis.delineate.streets import data_lonlat, resolve_street

        street_code, reserved = resolve_street(street, county, data_lonlat(layers.get("buildings")))
    elif county and layers.get("streets") is None:
        from gridgis.delineate.streets import default_street_reserved

        reserved = default_street_reserved(county)
    return make_communities(
        layers,
        settings,
        county_code=county,
        progress=progress("making communities"),
        street_code=street_code,
        reserved_codes=reserved,
    )


def assign(
    store: Store,
    settings: Settings,
    *,
    grids: str = "grids",
    progress: ProgressFactory = no_progress,
    cluster: Any = None,
) -> JobResult:
    """Assign buildings, facilities, institutions, addresses and staff to the grids of
    layer *grids* and write them with the grids (facility counts, staff columns) in one
    atomic step.

    On the workspace's own ``grids`` this is :func:`gridgis.workflows.refresh` (command
    ``assign``): every derived figure is recomputed with the assignment, so households,
    buildings and flags never disagree with it. Another layer (a city's grids under audit)
    is only assigned to.

    Returns
    -------
    JobResult
        ``detail`` is the :class:`gridgis.assign.AssignResult`; ``stats`` has
        ``grids`` and, per assigned layer, ``rows``, ``in_grid`` and ``split``.
        ``cluster`` (``local[:N]``, ``tcp://…`` or a Client) assigns on Dask
        (:func:`gridgis.partitioned.assign_partitioned`).

    Raises
    ------
    MissingLayerError
        No layer *grids*.
    InputError
        Nothing to assign.
    """
    from gridgis.assign import assign_params
    from gridgis.partitioned import assign_on

    present = require_layers(store, [grids], " — delineate grids first or import the city's grids")
    layers = read_present(store, ASSIGN_INPUTS, present)
    if not any(n in layers for n in ASSIGNABLE):
        raise InputError(
            f"{store.location}: nothing to assign (no buildings, facilities, "
            f"institutions, addresses or staff)"
        )
    if grids == "grids":
        from gridgis.workflows.refresh import refresh

        job = refresh(store, settings, command="assign", progress=progress, cluster=cluster)
        job.stats.update(_assigned_stats(job.detail))
        return job
    from gridgis.partitioned.source import shared_run

    grid_frame = store.read(grids)
    with shared_run(store if cluster is not None else None, tuple(layers)) as shared:
        kw = {"shared": shared} if shared is not None else {}
        result = assign_on(
            cluster, layers, grid_frame, settings, progress=progress("assigning"), **kw
        )
    out = result.layers()
    out[grids] = out.pop("grids")
    written = write_layers(store, "assign", out, assign_params(result, settings))
    stats = _assigned_stats(result)
    n_rej = len(result.assign_rejects)
    return JobResult(
        "assign",
        written=written,
        notes=list(result.notes),
        summary=f"{len(result.grids):,} grids; {n_rej} staff rows rejected",
        stats=stats,
        detail=result,
    )
