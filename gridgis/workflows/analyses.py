"""Analysis workflows: coverage, site proposals and the audit of existing grids."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import pandas as pd

from gridgis.crs import STORAGE_CRS
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

COVERAGE_INPUTS = (
    "buildings",
    "roads",
    "facilities",
    "green_spaces",
    "communities",
    "streets",
    "grids",
    "staff",
    "compounds",
    "gates",
)
"""Layers coverage reads when the workspace has them."""

COVERAGE_OUTPUTS = (
    "access",
    "coverage",
    "coverage_gaps",
    "norms",
    "coverage_findings",
    "service_areas",
)
"""Layers coverage writes (those it does not produce this time are deleted, never stale)."""

AUDIT_CONTEXT = ("communities", "buildings", "roads")
"""Layers the audit reads besides the grids, when present."""


def _coverage_layers(store: Store, names: tuple[str, ...]) -> dict[str, Any]:
    present = require_layers(store, ("buildings", "roads"), " — coverage needs buildings and roads")
    return read_present(store, names, present)


def coverage(
    store: Store,
    settings: Settings,
    *,
    progress: ProgressFactory = no_progress,
    cluster: Any = None,
) -> JobResult:
    """Walking access of every residential building to every facility category, rates per
    street, community and grid, gaps and norms, written in one atomic step (coverage layers
    the run does not produce, e.g. norms without communities, are deleted).

    Returns
    -------
    JobResult
        ``detail`` is the :class:`gridgis.coverage.CoverageResult`.

    ``cluster`` (``local[:N]``, ``tcp://host:port`` or a Client) runs it partitioned on
    Dask (:func:`gridgis.partitioned.coverage_partitioned`); the write is still one step.
    On a shared store (PostGIS, GeoParquet) workers read their partitions and stage the
    ``access`` rows themselves; the staged rows go live with the other layers at once,
    and a failed run leaves no staging behind.

    Raises
    ------
    MissingLayerError
        No buildings or no roads.
    """
    from gridgis.partitioned import coverage_on
    from gridgis.partitioned.source import shared_run

    layers = _coverage_layers(store, COVERAGE_INPUTS)
    with shared_run(store if cluster is not None else None, tuple(layers)) as shared:
        kw = {"shared": shared} if shared is not None else {}
        result = coverage_on(
            cluster, layers, settings, progress=progress("walking distances per category"), **kw
        )
        for name in COVERAGE_OUTPUTS:
            if name not in result.layers and store.has(name):
                store.delete(name)
        staged = getattr(result, "staged", None)
        if staged:  # the workers' access rows go live with the other layers, at once
            frames = {k: v for k, v in result.layers.items() if k not in staged}
            store.publish(frames, staged, result.params)  # type: ignore[attr-defined]
            written = {k: len(v) for k, v in result.layers.items()}
        else:
            written = write_layers(store, "coverage", result.layers, result.params)
    notes = []
    if not result.levels:
        notes.append("no communities: rates, gaps and norms need them")
    elif "grid" not in result.levels:
        notes.append("no grids: rates per street and community only")
    return JobResult(
        "coverage",
        written=written,
        notes=notes,
        summary=result.summary(),
        detail=result,
    )


def site(
    store: Store,
    settings: Settings,
    category: str,
    count: int,
    *,
    candidates: str | None = None,
    candidate_id: str | None = None,
    cluster: Any = None,
) -> JobResult:
    """Propose *count* new sites for *category* and write them into ``proposed_sites``
    (rows of other categories kept).

    ``cluster`` (``local[:N]``, ``tcp://host:port`` or a Client) computes the walking
    searches behind the greedy on Dask (:func:`gridgis.partitioned.site_partitioned`); the
    sites are the same.

    Returns
    -------
    JobResult
        ``detail`` is the :class:`gridgis.siting.Siting`.
    """
    from gridgis.partitioned import site_on

    layers = _coverage_layers(store, SITE_INPUTS)
    cand = None
    if candidates is not None:
        require_layers(store, [candidates], kind="candidates layer")
        cand = store.read(candidates)
        if not isinstance(cand, gpd.GeoDataFrame):
            raise InputError(f"layer '{candidates}': has no geometry, cannot be sites")
    result = site_on(
        cluster, layers, category, count, settings, candidates=cand, candidate_id=candidate_id
    )
    sites = result.sites
    if store.has("proposed_sites"):
        old = store.read("proposed_sites")
        old = old[old["category"].astype(str) != category]
        if len(old):
            sites = gpd.GeoDataFrame(
                pd.concat([old, sites], ignore_index=True), geometry="geometry", crs=STORAGE_CRS
            )
    params = dict(result.params)
    params["coverage"] = settings.to_dict()["coverage"]
    write_layers(store, "site", {"proposed_sites": sites}, params)
    new = int(result.sites["households_new"].sum()) if len(result.sites) else 0
    return JobResult(
        "site",
        written={"proposed_sites": len(sites)},
        summary=f"{len(result.sites)} {category} sites cover {new:,} more households",
        stats={"sites": len(result.sites), "households_new": new, "category": category},
        detail=result,
    )


SITE_INPUTS = ("buildings", "roads", "facilities", "green_spaces", "compounds", "gates")
"""Layers siting reads (walls and gates when the workspace has them)."""


def site_gates(store: Store, settings: Settings, category: str, count: int) -> JobResult:
    """Propose *count* new gates in compound walls for *category* and write them into
    ``proposed_gates`` (rows of other categories kept): open a gate, or build.

    Returns
    -------
    JobResult
        ``detail`` is the :class:`gridgis.siting.Siting` of the gates.
    """
    from gridgis.siting import propose_gates

    layers = _coverage_layers(store, SITE_INPUTS)
    result = propose_gates(layers, category, count, settings)
    gates = result.sites
    if store.has("proposed_gates"):
        old = store.read("proposed_gates")
        old = old[old["category"].astype(str) != category]
        if len(old):
            gates = gpd.GeoDataFrame(
                pd.concat([old, gates], ignore_index=True), geometry="geometry", crs=STORAGE_CRS
            )
    write_layers(store, "site", {"proposed_gates": gates}, dict(result.params))
    new = int(result.sites["households_new"].sum()) if len(result.sites) else 0
    return JobResult(
        "site_gates",
        written={"proposed_gates": len(gates)},
        summary=f"{len(result.sites)} new gates for {category} cover {new:,} more households",
        stats={"gates": len(result.sites), "households_new": new},
        detail=result,
    )


def audit(
    store: Store,
    settings: Settings,
    *,
    grids: str = "grids",
    code_field: str = "grid_code",
    community_field: str | None = None,
    kind_field: str = "kind",
    out: str = "grid_findings",
    progress: ProgressFactory = no_progress,
    checks: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    cluster: Any = None,
) -> JobResult:
    """Audit the grids of layer *grids* and write the findings to layer *out*.

    *checks* (default all) and *skip* name checks of :data:`gridgis.audit.CHECKS`.
    ``cluster`` (``local[:N]``, ``tcp://host:port`` or a Client) audits blocks of
    communities on Dask (:func:`gridgis.partitioned.audit_partitioned`): the same findings.

    Returns
    -------
    JobResult
        ``detail`` is the :class:`gridgis.audit.AuditResult`; ``stats`` has ``findings``
        (count) and ``by_check``.
    """
    from gridgis.audit import audit_params
    from gridgis.partitioned import audit_on

    present = require_layers(store, [grids])
    grid_frame = store.read(grids)
    layers = read_present(store, AUDIT_CONTEXT, present)
    result = audit_on(
        cluster,
        grid_frame,
        layers,
        settings,
        code_field=code_field,
        community_field=community_field,
        kind_field=kind_field,
        layer_name=grids,
        progress=progress("auditing"),
        checks=checks,
        skip=skip,
    )
    params = audit_params(
        result,
        settings,
        grids_layer=grids,
        code_field=code_field,
        community_field=community_field,
        kind_field=kind_field,
    )
    if "cluster" in result.findings.attrs:
        params["cluster"] = result.findings.attrs["cluster"]
    write_layers(store, "audit", {out: result.findings}, params)
    by_check = result.summary().set_index("check")["findings"].astype(int).to_dict()
    n = len(result.findings)
    return JobResult(
        "audit",
        written={out: n},
        summary=f"{n:,} findings on {len(grid_frame):,} grids",
        stats={"findings": n, "grids": len(grid_frame), "by_check": by_check},
        detail=result,
    )
