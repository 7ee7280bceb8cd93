"""Refresh: after any change to grids or buildings (a hand edit in QGIS, an import, an
assignment), recompute every figure derived from them, record changed geometry as new grid
versions and audit the result, in one atomic write.

What is recomputed, for every grid: its code where the edit made it missing or ambiguous
(:func:`gridgis.codes.recode`: kept at IoU ≥ ``grid.recode_min_iou``, new numbers
otherwise, never reused), ``community_code`` and ``street_code`` where missing,
``area_m2`` and ``polsby_popper`` (metric CRS), ``crossings`` of grids whose geometry
changed (avoided road classes, the rule delineation and the audit share), the assignment of buildings, facilities,
institutions, addresses and staff (:func:`gridgis.assign.assign_all`: facility counts and
staff columns), ``households`` and ``building_count`` from the assigned buildings
(:func:`gridgis.delineate.recount`), the band flags against
``grid.min_households``–``grid.max_households``, ``valid_from``/``valid_to``, and the
audit (layer ``grid_findings``).
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS, metric_crs_for
from gridgis.errors import InputError
from gridgis.standards import Settings
from gridgis.store import Store
from gridgis.workflows.base import (
    JobResult,
    ProgressFactory,
    no_progress,
    read_present,
    write_layers,
)
from gridgis.workflows.grids import ASSIGN_INPUTS
from gridgis.workflows.versions import record_versions, settings_changes, unchanged_geometry

"""Flag kinds that say a residential grid is outside the household band; a refresh
re-derives them from the recounted households (others, e.g. ``multipart``, are kept)."""


def _text_column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    col = frame[name].astype("string").str.strip()
    return col.mask(col == "")


def _fill_communities(grids: gpd.GeoDataFrame, communities, crs) -> gpd.GeoDataFrame:
    """``community_code``/``street_code`` of grids drawn without them: the community
    holding most of the grid, else the code's first 12 digits."""
    from gridgis.spatial import largest_overlap, rank_of

    out = grids.copy()
    comm = _text_column(out, "community_code")
    street = _text_column(out, "street_code")
    code = _text_column(out, "grid_code")
    missing = comm.isna().to_numpy()
    if missing.any() and communities is not None and len(communities):
        ccodes = communities["community_code"].astype(str).to_numpy()
        target, _ = largest_overlap(
            out.geometry.to_crs(crs).to_numpy()[missing],
            communities.geometry.to_crs(crs).to_numpy(),
            rank_of(ccodes),
        )
        got = np.where(target >= 0, ccodes[np.clip(target, 0, None)], None)
        comm[missing] = pd.array(got, dtype="string")
    still = comm.isna() & code.str.fullmatch(r"\d{15}").fillna(False)
    comm[still] = code[still].str[:12]
    if comm.isna().any():
        raise InputError(
            f"grids: {int(comm.isna().sum())} grid(s) lie in no community and carry no "
            f"community_code (rows {', '.join(map(str, np.flatnonzero(comm.isna())[:5] + 1))})"
        )
    if communities is not None and "street_code" in communities:
        streets = dict(
            zip(communities["community_code"].astype(str), communities["street_code"], strict=True)
        )
        street = street.fillna(comm.map(streets).astype("string"))
    out["community_code"] = comm.to_numpy()
    out["street_code"] = street.fillna(comm.str[:9]).to_numpy()
    return out


def _clean(grids: gpd.GeoDataFrame, communities, crs) -> gpd.GeoDataFrame:
    """Grids as a planner left them, made usable: rows without area dropped, kind and
    flags filled, communities found."""
    g = grids[~(grids.geometry.isna() | grids.geometry.is_empty)].copy()
    g = g[shapely.area(g.geometry.to_numpy()) > 0]
    g.geometry = shapely.make_valid(g.geometry.to_numpy())
    kind = _text_column(g, "kind").fillna("residential")
    g["kind"] = kind.to_numpy()
    g["flags"] = _text_column(g, "flags").fillna("").to_numpy()
    for col in ("households", "building_count"):  # a city's own grids may lack them
        if col not in g:
            g[col] = 0
    return _fill_communities(g.reset_index(drop=True), communities, crs)


def _recode(grids, versions, registry, settings, crs):
    """Codes after an edit: a grid keeps the code of the version it overlaps by IoU ≥
    ``grid.recode_min_iou`` (one to one), others get new numbers."""
    from gridgis.codes import recode

    if versions is not None and len(versions):
        end = versions["valid_to"].astype("string").fillna("")
        previous = versions[(end == "").to_numpy()]
    else:  # no history yet: the grids' own codes (the first of duplicates) are the previous
        codes = _text_column(grids, "grid_code")
        previous = grids[codes.notna().to_numpy() & ~codes.duplicated().to_numpy()]
    rec = recode(
        grids.to_crs(crs), previous if len(previous) else None, settings, registry=registry
    )
    return rec


def _shape_figures(grids: gpd.GeoDataFrame, crs) -> gpd.GeoDataFrame:
    geoms = grids.geometry.to_crs(crs).to_numpy()
    area = shapely.area(geoms)
    perim = shapely.length(geoms)
    out = grids.copy()
    out["area_m2"] = np.round(area, 1)
    pp = np.divide(4 * math.pi * area, perim**2, out=np.zeros_like(area), where=perim > 0)
    out["polsby_popper"] = np.round(pp, 4)
    return out


def band_flags(grids: gpd.GeoDataFrame, settings: Settings) -> np.ndarray:
    """Flags of every grid with the band flags re-derived from ``households``.

    A grid inside ``grid.min_households``–``grid.max_households`` loses every flag of
    :data:`gridgis.delineate.flags.BELOW_BAND` and :data:`~gridgis.delineate.flags.ABOVE_BAND`
    (a stale ``community_too_small`` or ``above_max_building`` included); a grid outside
    keeps the flags of its side (they say why) or, if it has none, gets ``below_min`` /
    ``above_max`` (residential grids; a unit grid's ``unit_above_max`` is kept only while
    it is above). Other flags stay as they are.
    """
    lo, hi = settings.grid.min_households, settings.grid.max_households
    hh = pd.to_numeric(grids["households"], errors="coerce").fillna(0).to_numpy()
    res = grids["kind"].astype(str).to_numpy() == "residential"
    out = []
    for flags, n, is_res in zip(grids["flags"].fillna("").astype(str), hh, res, strict=True):
        out.append(_band_flags_of(flags, int(n), bool(is_res), lo, hi))
    return np.array(out, dtype=object)


def _band_flags_of(flags: str, n: int, residential: bool, lo: int, hi: int) -> str:
    """One grid's ``flags`` text re-derived for *n* households (see :func:`band_flags`)."""
    from gridgis.delineate.flags import ABOVE_BAND, BELOW_BAND, FlagKind, kinds_in

    below, above = n < lo, n > hi
    keep, side = [], []
    for part in filter(None, flags.split("; ")):
        kinds = kinds_in(part)
        kind = kinds[0] if kinds else None
        if kind in BELOW_BAND or kind in ABOVE_BAND:
            if (kind in BELOW_BAND and below and residential) or (kind in ABOVE_BAND and above):
                side.append(part)
            continue
        keep.append(part)
    if residential and not side and below:
        side = [f"{FlagKind.BELOW_MIN.value}: {n} 户 < {lo}（刷新后）"]
    elif residential and not side and above:
        side = [f"{FlagKind.ABOVE_MAX.value}: {n} 户 > {hi}（刷新后）"]
    return "; ".join([*side, *keep])


LEAD_COLUMNS = (
    "grid_code",
    "community_code",
    "street_code",
    "kind",
    "name",
    "households",
    "building_count",
    "area_m2",
    "polsby_popper",
    "crossings",
    "flags",
    "valid_from",
    "valid_to",
)
"""Columns a refreshed grids layer starts with (the rest keep their order, the assigned
facility counts and staff columns come last): a refresh of a refresh is the same frame."""


def ordered(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """*grids* with :data:`LEAD_COLUMNS` first, facility and staff columns last."""
    from gridgis.assign import GRID_STAFF_COLUMNS

    geom = grids.geometry.name
    lead = [c for c in LEAD_COLUMNS if c in grids]
    tail = [c for c in grids if str(c).startswith("facilities_")]
    tail += [c for c in GRID_STAFF_COLUMNS if c in grids and c not in tail]
    middle = [c for c in grids if c not in lead and c not in tail and c != geom]
    return grids[[*lead, *middle, *tail, geom]]


def _crossings(grids: gpd.GeoDataFrame, roads, changed: np.ndarray, settings, crs) -> np.ndarray:
    """``crossings`` of every grid: recounted (avoided road classes, the rule delineation
    and the audit share) where the geometry changed, kept where it did not (a delineation's
    count also covers its alignment layers, which a refresh does not know)."""
    from types import SimpleNamespace

    from gridgis.delineate.api import grid_crossings

    old = grids["crossings"] if "crossings" in grids else pd.Series(0, index=grids.index)
    out = pd.to_numeric(old, errors="coerce").fillna(0).astype(int).to_numpy().copy()
    if not changed.any() or roads is None or not len(roads):
        return out
    inp = SimpleNamespace(roads=roads.to_crs(crs), alignment={})
    crossed, _ = grid_crossings(grids.geometry.to_crs(crs).to_numpy()[changed], inp, settings)
    out[changed] = [len(c) for c in crossed]
    return out


def _audit(out: dict[str, Any], layers: dict[str, Any], settings: Settings):
    from gridgis.audit import audit_grids

    context = {k: v for k, v in layers.items() if k in ("communities", "roads")}
    if "buildings" in out:
        context["buildings"] = out["buildings"]
    return audit_grids(out["grids"], context, settings)


def _write(store: Store, command: str, out: dict, assigned, settings, params) -> dict[str, int]:
    """Write the refreshed layers in one atomic step; layers the workers staged
    (``assigned.staged``, a partitioned run on a shared store) go live in the same step."""
    from gridgis.assign import assign_params

    all_params = {**assign_params(assigned, settings), "refresh": params}
    staged = getattr(assigned, "staged", None)
    if not staged:
        return write_layers(store, command, out, all_params)
    frames = {k: v for k, v in out.items() if k not in staged}
    store.publish(frames, staged, all_params)  # type: ignore[attr-defined]
    return {k: len(v) for k, v in out.items()}


def refresh(
    store: Store,
    settings: Settings,
    *,
    command: str = "refresh",
    parameters: dict[str, Any] | None = None,
    reason: str | None = None,
    effective: str | None = None,
    progress: ProgressFactory = no_progress,
    cluster: Any = None,
) -> JobResult:
    """Recompute every derived grid figure, record changed geometry as new versions and
    audit, in one atomic write (see the module docstring for the list).

    Parameters
    ----------
    store
        A workspace with a ``grids`` layer (as delineated, imported or edited by hand).
    settings
        Planning rules: ``grid.*`` (band, ``recode_min_iou``, ``assign_min_share``).
    command, parameters, reason
        Recorded with any new grid version: what ran (``refresh``, ``assign``,
        ``import``…), its parameters, and a person's reason.
    effective
        Date (``YYYY-MM-DD``) the changes take effect (default today, UTC).
    cluster
        ``local[:N]``, ``tcp://…`` or a Dask Client: the assignment runs partitioned
        (:func:`gridgis.partitioned.assign_on`); None runs it in this process.

    Returns
    -------
    JobResult
        Nothing written when the workspace has no grids (a note says so). Else
        ``written``: grids, the assigned layers, ``assign_rejects``, ``code_registry``,
        ``grid_versions``, ``grid_findings``; ``stats``: ``grids`` and ``created``,
        ``reshaped``, ``retired`` (codes), ``recoded`` (rows whose code the refresh set),
        ``findings``; ``detail`` the :class:`gridgis.assign.AssignResult`.
    """
    from gridgis.delineate import recount
    from gridgis.partitioned import assign_on

    present = set(store.layers())
    if "grids" not in present or store.info("grids").rows == 0:
        note = f"{store.location}: no grids yet, nothing derived from them to refresh"
        return JobResult(command, notes=[note], summary=note, stats={"grids": 0})
    layers = read_present(
        store, (*ASSIGN_INPUTS, "roads", "code_registry", "grid_versions"), present
    )
    raw = store.read("grids")
    crs = metric_crs_for(raw)
    grids = _clean(raw, layers.get("communities"), crs)
    before = _text_column(grids, "grid_code").to_numpy()
    rec = _recode(grids, layers.get("grid_versions"), layers.get("code_registry"), settings, crs)
    grids["grid_code"] = rec.codes
    recoded = int(sum(1 for a, b in zip(before, rec.codes, strict=True) if a is pd.NA or a != b))
    grids = _shape_figures(grids.to_crs(STORAGE_CRS), crs)
    from gridgis.partitioned.source import shared_run

    with shared_run(store if cluster is not None else None, tuple(layers)) as shared:
        kw = {"shared": shared, "stage": True} if shared is not None else {}
        assigned = assign_on(cluster, layers, grids, settings, progress=progress("assigning"), **kw)
        out: dict[str, Any] = assigned.layers()
        g = out["grids"]
        if "buildings" in out:
            g = recount(g, out["buildings"], settings)
        g["flags"] = band_flags(g, settings)
        changed = ~unchanged_geometry(g, layers.get("grid_versions"))
        g["crossings"] = _crossings(g, layers.get("roads"), changed, settings, crs)
        params = {"command": command, **(parameters or {}), "rules": settings_changes(settings)}
        g, versions, changes = record_versions(
            g, layers.get("grid_versions"), command, params, reason, effective
        )
        out["grids"] = ordered(g)
        out["code_registry"] = rec.registry
        out["grid_versions"] = versions
        audit = _audit(out, layers, settings)
        out["grid_findings"] = audit.findings
        written = _write(store, command, out, assigned, settings, params)
    stats = {"grids": len(g), "recoded": recoded, "findings": len(audit.findings)}
    stats.update({k: len(v) for k, v in changes.items()})
    summary = (
        f"{len(g):,} grids refreshed: {stats['created']} created, {stats['reshaped']} "
        f"reshaped, {stats['retired']} retired; {len(audit.findings):,} audit findings"
    )
    return JobResult(
        command,
        written=written,
        notes=list(assigned.notes),
        summary=summary,
        stats={**stats, "changes": changes},
        detail=assigned,
    )
