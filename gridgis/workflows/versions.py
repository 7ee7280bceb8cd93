"""Dated grid versions (DB11/T 2157-2023: every grid carries its start and end dates,
初始时间/终止日期): the ``grid_versions`` layer, the grids valid on a date, a grid's history.

A version is one geometry of one grid code over a period ``[valid_from, valid_to)`` (ISO
dates; ``valid_to`` empty while the version is current). Delineation, refresh and edits
that change a grid's geometry close its open version on the effective date and open a new
one; a code that disappears is closed (retired); a new code opens version 1. Codes follow
:func:`gridgis.codes.recode` (kept at IoU ≥ ``grid.recode_min_iou``, never reused).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.crs import STORAGE_CRS
from gridgis.errors import InputError
from gridgis.standards import DEFAULT, Settings

VERSION_COLUMNS = [
    "grid_code",
    "version",
    "valid_from",
    "valid_to",
    "community_code",
    "street_code",
    "kind",
    "households",
    "building_count",
    "area_m2",
    "command",
    "parameters",
    "reason",
]
"""Columns of layer ``grid_versions`` (plus the version's geometry)."""

TEXT_COLUMNS = (
    "grid_code",
    "valid_from",
    "valid_to",
    "community_code",
    "street_code",
    "kind",
    "command",
    "parameters",
    "reason",
)

GEOMETRY_TOLERANCE_DEG = 1e-9
"""Two geometries of a grid are the same version when their normalised coordinates agree
within this many degrees (about 0.1 mm): a round trip through a store is not a change."""


def effective_date(value: str | date | datetime | None = None) -> str:
    """The ISO date (``YYYY-MM-DD``) a change takes effect: *value*, or today (UTC).

    Raises
    ------
    InputError
        *value* is not a date.
    """
    if value is None:
        return datetime.now(UTC).date().isoformat()
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()[:10]).isoformat()
    except ValueError:
        raise InputError(f"date '{value}': use YYYY-MM-DD, e.g. 2025-03-01") from None


def settings_changes(settings: Settings) -> dict[str, Any]:
    """The rules that differ from the defaults, as ``{"grid.max_households": 450}``."""
    now, default = settings.to_dict(), DEFAULT.to_dict()
    out = {}
    for section, values in now.items():
        for name, value in values.items():
            if default.get(section, {}).get(name) != value:
                out[f"{section}.{name}"] = value
    return out


def empty_versions() -> gpd.GeoDataFrame:
    """A ``grid_versions`` layer with no rows."""
    cols: dict[str, Any] = {c: pd.Series(dtype="string") for c in VERSION_COLUMNS}
    for c in ("version", "households", "building_count"):
        cols[c] = pd.Series(dtype="Int64")
    cols["area_m2"] = pd.Series(dtype="Float64")
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=STORAGE_CRS), crs=STORAGE_CRS)


def _open(versions: pd.DataFrame) -> pd.Series:
    return versions["valid_to"].isna() | (versions["valid_to"].astype("string") == "")


def same_geometry(a, b) -> np.ndarray:
    """True where two geometries are equal once normalised (within
    :data:`GEOMETRY_TOLERANCE_DEG`): an unchanged grid opens no new version."""
    a = shapely.normalize(shapely.make_valid(np.asarray(a, dtype=object)))
    b = shapely.normalize(shapely.make_valid(np.asarray(b, dtype=object)))
    return shapely.equals_exact(a, b, tolerance=GEOMETRY_TOLERANCE_DEG)


def unchanged_geometry(grids: gpd.GeoDataFrame, versions: gpd.GeoDataFrame | None) -> np.ndarray:
    """True for grids whose code has an open version with the same geometry."""
    out = np.zeros(len(grids), dtype=bool)
    if versions is None or len(versions) == 0:
        return out
    v = versions.to_crs(STORAGE_CRS).reset_index(drop=True)
    is_open = _open(v).to_numpy()
    open_at = {c: i for i, c in enumerate(v["grid_code"].astype(str)) if is_open[i]}
    idx = np.array([open_at.get(c, -1) for c in grids["grid_code"].astype(str)], dtype=np.int64)
    known = idx >= 0
    if known.any():
        geo = grids.geometry.to_crs(STORAGE_CRS).to_numpy()
        out[known] = same_geometry(geo[known], v.geometry.to_numpy()[idx[known]])
    return out


def _version_rows(grids: gpd.GeoDataFrame, numbers, when: str, provenance: dict) -> pd.DataFrame:
    rows = pd.DataFrame(
        {
            "grid_code": grids["grid_code"].astype(str).to_numpy(),
            "version": np.asarray(numbers, dtype=np.int64),
            "valid_from": when,
            "valid_to": pd.array([pd.NA] * len(grids), dtype="string"),
        }
    )
    for c in ("community_code", "street_code", "kind"):
        rows[c] = grids[c].astype("string").to_numpy() if c in grids else pd.NA
    for c in ("households", "building_count"):
        rows[c] = pd.array(pd.to_numeric(grids.get(c), errors="coerce"), dtype="Int64")
    rows["area_m2"] = pd.array(pd.to_numeric(grids.get("area_m2"), errors="coerce"), "Float64")
    for k, v in provenance.items():
        rows[k] = pd.array([v] * len(grids), dtype="string")
    rows["geometry"] = grids.geometry.to_crs(STORAGE_CRS).to_numpy()
    return rows


def record_versions(
    grids: gpd.GeoDataFrame,
    versions: gpd.GeoDataFrame | None,
    command: str,
    parameters: dict[str, Any] | None = None,
    reason: str | None = None,
    effective: str | date | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, list[str]]]:
    """Close and open grid versions for the grids as they are now.

    Parameters
    ----------
    grids
        The current grids (``grid_code`` unique, any CRS).
    versions
        The ``grid_versions`` layer so far (``None`` or empty: every grid opens version 1).
    command, parameters, reason
        Who/what made the change: the command (``delineate``, ``refresh``, ``assign``…), its
        parameters (JSON-able) and an optional reason given by a person.
    effective
        Date the change takes effect (default today, UTC).

    Returns
    -------
    grids, versions, changes
        The grids with ``valid_from`` (start of their open version) and ``valid_to``
        (empty); the whole ``grid_versions`` layer after the change; and the codes
        ``created``, ``reshaped`` and ``retired`` by it.
    """
    when = effective_date(effective)
    provenance = {
        "command": command,
        "parameters": json.dumps(parameters or {}, ensure_ascii=False, sort_keys=True, default=str),
        "reason": reason if reason else pd.NA,
    }
    old = empty_versions() if versions is None or len(versions) == 0 else versions.copy()
    old = old.to_crs(STORAGE_CRS).reset_index(drop=True)
    is_open = _open(old).to_numpy()
    open_at = {c: i for i, c in enumerate(old["grid_code"].astype(str)) if is_open[i]}
    codes = grids["grid_code"].astype(str).to_numpy()
    if len(set(codes)) != len(codes):
        raise InputError("grids: grid_code must be unique before versions are recorded")
    geo = grids.geometry.to_crs(STORAGE_CRS).to_numpy()
    idx = np.array([open_at.get(c, -1) for c in codes], dtype=np.int64)
    known = idx >= 0
    same = np.zeros(len(codes), dtype=bool)
    if known.any():
        same[known] = same_geometry(geo[known], old.geometry.to_numpy()[idx[known]])
    reshaped = known & ~same
    created = ~known
    retired = sorted(set(open_at) - set(codes))
    close = [open_at[c] for c in codes[reshaped]] + [open_at[c] for c in retired]
    if close:
        old.loc[close, "valid_to"] = when
    top = old.groupby(old["grid_code"].astype(str))["version"].max() if len(old) else pd.Series()
    numbers = np.array([int(top.get(c, 0)) + 1 for c in codes])
    new = grids[reshaped | created]
    new_rows = _version_rows(new, numbers[reshaped | created], when, provenance)
    out = pd.concat([old, new_rows], ignore_index=True) if len(old) else new_rows
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=STORAGE_CRS)
    out = out.sort_values(["grid_code", "version"], kind="stable").reset_index(drop=True)
    out["version"] = out["version"].astype("Int64")
    for c in TEXT_COLUMNS:  # nullable text: an empty value is stored empty, never "<NA>"
        out[c] = out[c].astype("string").replace("<NA>", pd.NA)
    start = dict(zip(new_rows["grid_code"], new_rows["valid_from"], strict=True))
    for c in codes[same]:
        start[c] = str(old.at[open_at[c], "valid_from"])
    dated = grids.copy()
    dated["valid_from"] = pd.array([start[c] for c in codes], dtype="string")
    dated["valid_to"] = pd.array([pd.NA] * len(codes), dtype="string")
    changes = {
        "created": sorted(codes[created]),
        "reshaped": sorted(codes[reshaped]),
        "retired": retired,
    }
    return dated, out, changes


def grids_as_of(versions: gpd.GeoDataFrame, when: str | date) -> gpd.GeoDataFrame:
    """The grids valid on a date: every version with ``valid_from ≤ when < valid_to``
    (``valid_to`` empty: still valid), one row per grid code, in the grids' columns.

    Parameters
    ----------
    versions
        Layer ``grid_versions``.
    when
        The date (``YYYY-MM-DD`` or a date).

    Returns
    -------
    GeoDataFrame
        ``grid_code, community_code, street_code, kind, households, building_count,
        area_m2, valid_from, valid_to, version`` and geometry (EPSG:4326); empty before the
        first version.
    """
    day = effective_date(when)
    start = versions["valid_from"].astype("string")
    end = versions["valid_to"].astype("string").fillna("")
    valid = (start <= day) & ((end == "") | (day < end))
    out = versions[valid.fillna(False).to_numpy()].copy()
    cols = [c for c in VERSION_COLUMNS if c not in ("command", "parameters", "reason")]
    return gpd.GeoDataFrame(out[[*cols, "geometry"]], geometry="geometry", crs=versions.crs)


def history(versions: gpd.GeoDataFrame, grid_code: str) -> gpd.GeoDataFrame:
    """Every version of one grid code, oldest first."""
    rows = versions[versions["grid_code"].astype(str) == str(grid_code)]
    return rows.sort_values("version", kind="stable").reset_index(drop=True)


__all__ = [
    "VERSION_COLUMNS",
    "effective_date",
    "empty_versions",
    "grids_as_of",
    "history",
    "lookup_as_of",
    "record_versions",
    "settings_changes",
]


def lookup_as_of(store, settings: Settings, when: str | date):
    """A :class:`gridgis.lookup.Lookup` over the grids valid on *when* (from layer
    ``grid_versions``), so an old case is attributed to the grid of its date. Addresses,
    buildings, communities, streets and staff are the workspace's current ones.

    Raises
    ------
    NotFoundError
        The workspace has no ``grid_versions`` layer (no dated grids yet).
    """
    from gridgis.errors import NotFoundError
    from gridgis.lookup import Lookup

    if not store.has("grid_versions"):
        raise NotFoundError(
            f"{store.location}: no layer 'grid_versions': grids carry dates from their "
            f"next delineation or refresh"
        )
    layers = {
        name: store.read(name) if store.has(name) else None
        for name in ("addresses", "buildings", "communities", "streets", "staff")
    }
    grids = grids_as_of(store.read("grid_versions"), when)
    return Lookup(grids=grids, settings=settings, **layers)
