"""Audit of the grids a city already has (issue 3, deliverable 4; issue 11: a registry).

Most cities drew their responsibility grids by hand. :func:`audit_grids` checks such a
layer against the rules of ``STANDARDS.md`` and returns one finding per problem. Checks
are small functions registered in :data:`gridgis.audit.checks.REGISTRY` over one shared
:class:`~gridgis.audit.context.AuditContext` built once; each can be run or skipped alone.

==========================  ========  ===================================================
check                       severity  what
==========================  ========  ===================================================
``missing_code``            error     a grid without a code
``invalid_code``            error     a code failing a segment check (message names it)
``duplicate_code``          error     a code used by two or more grids (one finding/code)
``code_prefix_mismatch``    error     the code's first 12 digits are not its community
``invalid_geometry``        warning   a self-intersecting (or empty) polygon, repaired
``multipart``               error     a grid made of several separate polygons
``crosses_community``       error     part of the grid lies outside its community
``gap``                     error     community ground in no grid (polygon, m²)
``overlap``                 error     ground in two grids (polygon, m²)
``households_out_of_range`` error     residential grid outside min–max households (unit
                                      grid: above the maximum)
``building_no_grid``        error     a building overlapping no grid
``building_in_two_grids``   warning   a building split between grids
``arterial_crossing``       warning   an avoided-class road runs through the grid
==========================  ========  ===================================================

Arterial crossings are computed by :func:`gridgis.delineate.crossings.line_crossings`, the
function delineation uses, so ``gridgis delineate`` and ``gridgis audit`` report the same
crossings on the same grids: the length of avoided-class road inside a grid more than
``grid.audit_road_tolerance_m`` from its boundary, less the stretches along a median strip
at the grid's edge (:func:`median_length`).

Households of a grid = sum of ``households`` of the buildings whose largest overlap is
that grid (as :mod:`gridgis.assign` assigns them). Areas are measured in the metric CRS
of the grids (:func:`gridgis.crs.metric_crs_for`); pieces smaller than
``grid.audit_sliver_m2`` are digitising slivers and ignored. Grid rows are audited as
they are: duplicate or missing codes do not stop the other checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from gridgis.audit.checks import REGISTRY
from gridgis.audit.context import (
    GRID_SIZE_M,
    UNIT_KINDS,
    AuditContext,
    AuditError,
    Options,
    Scope,
)
from gridgis.audit.context import to_storage as _to_storage
from gridgis.delineate.crossings import median_length
from gridgis.standards import DEFAULT, Settings

#: Checks in report order, with their severity.
CHECKS: dict[str, str] = {name: c.severity for name, c in REGISTRY.items()}

#: Columns of the ``grid_findings`` layer.
FINDING_COLUMNS = [
    "grid_code",
    "community_code",
    "check",
    "severity",
    "detail",
    "value",
    "unit",
    "other_code",
    "feature_id",
    "grid_row",
]

_TEXT_COLUMNS = (
    "grid_code",
    "community_code",
    "check",
    "severity",
    "detail",
    "unit",
    "other_code",
    "feature_id",
)


@dataclass
class AuditResult:
    """The outcome of :func:`audit_grids`.

    ``findings`` is the ``grid_findings`` layer (EPSG:4326; geometry null where a finding
    has none). ``grids`` holds, per input grid row, ``grid_code``, ``community_code`` (by
    location), ``households``, ``building_count`` and ``area_m2``. ``skipped`` names checks
    that did not run and why (e.g. no ``roads`` layer, or not selected).
    """

    findings: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    crs: str
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """One row per check: severity, number of findings, and 'ran' or why skipped."""
        counts = self.findings["check"].value_counts()
        rows = []
        for check, severity in CHECKS.items():
            rows.append(
                {
                    "check": check,
                    "severity": severity,
                    "findings": int(counts.get(check, 0)),
                    "status": f"skipped: {self.skipped[check]}" if check in self.skipped else "ran",
                }
            )
        return pd.DataFrame(rows)


class _Findings:
    """Collects the findings of every check."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.geoms: list = []  # metric CRS, or None

    def adder(self, check: str) -> Callable[..., None]:
        """``add(**columns, geometry=...)`` for one check."""

        def add(geometry=None, **values) -> None:
            row = {c: None for c in FINDING_COLUMNS}
            row.update(values, check=check, severity=CHECKS[check])
            row["detail"] = row["detail"] or ""
            row["unit"] = row["unit"] or ""
            self.rows.append(row)
            self.geoms.append(geometry)

        return add

    def frame(self, crs: CRS) -> gpd.GeoDataFrame:
        df = pd.DataFrame(self.rows, columns=FINDING_COLUMNS)
        geoms = np.array(self.geoms, dtype=object) if self.geoms else np.empty(0, object)
        has = np.array([g is not None for g in geoms], dtype=bool)
        out = np.full(len(geoms), None, dtype=object)
        if has.any():
            out[has] = _to_storage(geoms[has], crs)
        gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(out, crs="EPSG:4326"), crs="EPSG:4326")
        for col in _TEXT_COLUMNS:
            gdf[col] = gdf[col].astype("string")
        gdf["value"] = pd.to_numeric(gdf["value"], errors="coerce").astype("Float64")
        gdf["grid_row"] = pd.to_numeric(gdf["grid_row"], errors="coerce").astype("Int64")
        return order_findings(gdf)


def order_findings(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Findings in report order: by check (:data:`CHECKS`), then grid code, other code,
    feature and value; rows equal in all of these keep the order they come in (stable)."""
    order = {c: i for i, c in enumerate(CHECKS)}
    gdf = gdf.assign(_o=gdf["check"].map(order))
    gdf = gdf.sort_values(
        ["_o", "grid_code", "other_code", "feature_id", "value"],
        kind="stable",
        na_position="last",
    )
    return gdf.drop(columns="_o").reset_index(drop=True)


def run_checks(
    ctx: AuditContext,
    names: Iterable[str],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[gpd.GeoDataFrame, dict[str, str]]:
    """Run the checks ``names`` (registered, in that order) on one context.

    Returns
    -------
    findings, skipped
        The findings in report order (:func:`order_findings`) and, per check that could
        not run, why.
    """
    names = list(names)
    f = _Findings()
    skipped = {}
    for k, name in enumerate(names):
        why = REGISTRY[name].run(ctx, f.adder(name))
        if why:
            skipped[name] = why
        if progress:
            progress(k + 1, len(names))
    return f.frame(ctx.crs), skipped


def selected_checks(checks: Iterable[str] | None, skip: Iterable[str]) -> list[str]:
    names = list(REGISTRY) if checks is None else list(checks)
    unknown = [c for c in [*names, *skip] if c not in REGISTRY]
    if unknown:
        raise AuditError(
            f"unknown audit check(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}",
            parameter="checks",
        )
    skip = set(skip)
    return [c for c in REGISTRY if c in names and c not in skip]


def grid_stats(ctx: AuditContext) -> gpd.GeoDataFrame:
    if ctx.has_buildings:
        households, count = ctx.buildings.households, ctx.buildings.building_count
    else:
        households = count = np.zeros(ctx.n, dtype=np.int64)
    return gpd.GeoDataFrame(
        {
            "grid_row": ctx.rows1,
            "grid_code": ctx.codes.astype("string"),
            "community_code": pd.array(ctx.community, dtype="string"),
            "households": households,
            "building_count": count,
            "area_m2": np.round(ctx.area, 1),
        },
        geometry=gpd.GeoSeries(ctx.geoms, crs="EPSG:4326"),
        crs="EPSG:4326",
    )


def audit_grids(
    grids: gpd.GeoDataFrame,
    layers: dict[str, gpd.GeoDataFrame | pd.DataFrame],
    settings: Settings = DEFAULT,
    code_field: str = "grid_code",
    community_field: str | None = None,
    kind_field: str | None = "kind",
    layer_name: str = "grids",
    progress: Callable[[int, int], None] | None = None,
    checks: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    scope: Scope | None = None,
) -> AuditResult:
    """Check a city's grid layer; return every finding.

    Parameters
    ----------
    grids
        Grid polygons, any CRS, with a code field.
    layers
        Workspace layers: ``communities`` (gaps, community crossings, code prefixes),
        ``buildings`` (households, buildings in no grid or two) and ``roads`` (arterial
        crossings). Checks whose layer is absent are skipped and say so.
    code_field
        Field holding the grid code (a city's own name for it, e.g. ``WGBM``).
    community_field
        Field naming each grid's community, when the grid file has one; the community is
        otherwise found by location (largest overlap with ``communities``), or taken from
        the code's first 12 digits when there are no communities.
    kind_field
        Field whose value marks unit grids (``unit``, 单位网格, 专属网格: no household
        range); ignored when absent.
    layer_name
        Name of the grid layer, for messages.
    progress
        ``callback(done, total)`` per check.
    checks, skip
        Names of the checks to run (default: all of :data:`CHECKS`) and to leave out;
        those not run are listed in ``skipped`` as "not selected".
    scope
        When ``grids`` is a part of a larger layer (:mod:`gridgis.partitioned.audit`):
        its rows in the whole layer, the whole layer's CRS and layers (see
        :class:`~gridgis.audit.context.Scope`). Default: ``grids`` is the whole layer.

    Returns
    -------
    AuditResult

    Raises
    ------
    AuditError
        When the grids have no CRS, no ``code_field``, or no polygons at all; or a check
        name is unknown.
    """
    run = selected_checks(checks, skip)
    opts = Options(code_field, community_field, kind_field, layer_name)
    ctx = AuditContext(grids, layers, settings, opts, scope)
    skipped = {c: "not selected" for c in REGISTRY if c not in run}
    findings, why = run_checks(ctx, run, progress)
    skipped.update(why)
    return AuditResult(
        findings=findings, grids=grid_stats(ctx), crs=crs_text(ctx.crs), skipped=skipped
    )


def crs_text(crs: CRS) -> str:
    """``EPSG:n`` of a CRS, or its description when it has no EPSG code."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def audit_params(result: AuditResult, settings: Settings = DEFAULT, **extra) -> dict:
    """Parameters to record with ``grid_findings`` (rules used, metric CRS, inputs)."""
    r = settings.grid
    return {
        "analysis": "audit",
        "computed_crs": result.crs,
        "grid.min_households": r.min_households,
        "grid.max_households": r.max_households,
        "grid.assign_min_share": r.assign_min_share,
        "grid.audit_sliver_m2": r.audit_sliver_m2,
        "grid.audit_outside_share": r.audit_outside_share,
        "grid.audit_road_tolerance_m": r.audit_road_tolerance_m,
        "grid.min_crossing_m": r.min_crossing_m,
        "grid.median_width_m": r.median_width_m,
        "grid.avoid_road_classes": list(r.avoid_road_classes),
        **extra,
    }


__all__ = [
    "CHECKS",
    "FINDING_COLUMNS",
    "GRID_SIZE_M",
    "UNIT_KINDS",
    "AuditError",
    "AuditResult",
    "Scope",
    "audit_grids",
    "audit_params",
    "median_length",
]
