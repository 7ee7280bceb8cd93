"""Spatial assignment: which community and grid every building, facility, institution,
address and staff member belongs to (issue 3, deliverable 5).

Rules
-----
* Points (addresses, point facilities) go to the grid that contains them. A point on a
  boundary shared by two grids goes to exactly one of them: a grid containing it in its
  interior wins; between boundary-only candidates the smallest ``grid_code`` wins.
* Polygons (buildings, institutions, polygonal facilities) go to the grid holding the
  largest share of their area, measured in the metric CRS of the data
  (:func:`gridgis.crs.metric_crs_for`). When that share is below
  ``settings.grid.assign_min_share`` (default 90%) the row keeps it in ``grid_share`` so
  the split is visible; otherwise ``grid_share`` is null. Ties go to the smallest code.
* Every assigned layer gets ``community_code`` (the grid's community; for rows in no grid,
  the community containing them when a ``communities`` layer is given) and ``grid_code``.
* Staff rows naming a ``grid_code`` that is not in the grids are rejected: they leave the
  ``staff`` layer and appear, with all their fields and the reason, in ``assign_rejects``.
  A later run that is given ``assign_rejects`` takes them back in first, so nothing is lost
  when the grids change. Staff with only a ``community_code`` keep it.
* Grids get ``facilities_<category>`` counts (one integer column per category of
  :data:`gridgis.layers.FACILITY_CATEGORIES`, plus ``facilities_total``), ``grid_head`` and
  ``grid_workers`` (names joined by "、", ordered by staff_id) and ``staff_count``.

Assignment columns from an earlier run are dropped first, so re-running after any layer
changes gives the same result as a fresh run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gridgis.crs import metric_crs_for
from gridgis.errors import InputError
from gridgis.layers import FACILITY_CATEGORIES, REJECT_COLUMNS
from gridgis.spatial import is_polygonal, largest_overlap, points_in_polygons, rank_of
from gridgis.standards import DEFAULT, Settings

Frame = gpd.GeoDataFrame | pd.DataFrame

#: Layers that receive ``community_code``, ``grid_code`` and ``grid_share``.
ASSIGNED_LAYERS = ("buildings", "facilities", "institutions", "addresses")
#: Columns :func:`assign_all` adds to those layers (and removes before re-assigning).
ASSIGN_COLUMNS = ("community_code", "grid_code", "grid_share")
#: Columns :func:`assign_all` adds to ``grids`` besides the ``facilities_<category>`` counts.
GRID_STAFF_COLUMNS = ("grid_head", "grid_workers", "staff_count")
#: Separator between names in ``grid_head`` / ``grid_workers`` (Chinese enumeration comma).
NAME_SEPARATOR = "、"
#: Extra fields of an ``assign_rejects`` row beside the staff row's own fields.
ASSIGN_REJECT_COLUMNS = REJECT_COLUMNS


class AssignError(InputError):
    """Grids that cannot be assigned to (missing or duplicate codes, no CRS)."""


@dataclass
class AssignResult:
    """The outcome of :func:`assign_all`.

    Layers absent from the input are ``None``. ``assign_rejects`` holds the rejected staff
    rows (``source, layer, row, field, value, reason`` then the row's own fields).
    ``notes`` say what was left unassigned; ``crs`` is the metric CRS areas were measured in.
    """

    grids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame | None = None
    facilities: gpd.GeoDataFrame | None = None
    institutions: gpd.GeoDataFrame | None = None
    addresses: gpd.GeoDataFrame | None = None
    staff: pd.DataFrame | None = None
    assign_rejects: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    crs: str = ""

    def layers(self) -> dict[str, Frame]:
        """The layers to write back (those given, the grids and ``assign_rejects``)."""
        out: dict[str, Frame] = {"grids": self.grids}
        for name in (*ASSIGNED_LAYERS, "staff"):
            frame = getattr(self, name)
            if frame is not None:
                out[name] = frame
        out["assign_rejects"] = self.assign_rejects
        return out

    def __getitem__(self, name: str) -> Frame:
        value = getattr(self, name, None)
        if not isinstance(value, (pd.DataFrame, gpd.GeoDataFrame)):
            raise KeyError(name)
        return value


def code_strings(values: pd.Series) -> pd.Series:
    """Codes as trimmed strings (``"320102001001001"``), whether read as text, integers or
    floats (``3.20102001001001e14`` from a spreadsheet); blanks become ``<NA>``."""
    s = pd.Series(values, copy=False)
    if pd.api.types.is_float_dtype(s.dtype):
        out = s.map(
            lambda v: pd.NA if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v))
        )
        return out.astype("string")
    out = s.astype("string").str.strip()
    out = out.str.replace(r"^(\d+)\.0$", r"\1", regex=True)
    return out.mask(out == "", pd.NA)


# --------------------------------------------------------------------------------------
# Assignment
# --------------------------------------------------------------------------------------


@dataclass
class _Targets:
    """Grids (or communities) prepared once for all layers."""

    keys: np.ndarray  # grid_code per row
    communities: np.ndarray  # community_code per row
    geoms: np.ndarray  # storage CRS
    geoms_m: np.ndarray  # metric CRS
    rank: np.ndarray
    tree: shapely.STRtree
    tree_m: shapely.STRtree

    @classmethod
    def build(cls, keys, communities, geoseries: gpd.GeoSeries, crs: CRS) -> _Targets:
        geoms = np.asarray(geoseries.to_crs("EPSG:4326").values, dtype=object)
        bad = ~shapely.is_valid(geoms)
        if bad.any():
            geoms = geoms.copy()
            geoms[bad] = shapely.make_valid(geoms[bad])
        geoms_m = np.asarray(gpd.GeoSeries(geoms, crs="EPSG:4326").to_crs(crs).values, dtype=object)
        keys = np.asarray(keys, dtype=object)
        return cls(
            keys,
            np.asarray(communities, dtype=object),
            geoms,
            geoms_m,
            rank_of(keys),
            shapely.STRtree(geoms),
            shapely.STRtree(geoms_m),
        )

    def locate(self, geoseries: gpd.GeoSeries, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
        """Target index (-1 none) and largest share (1.0 for points) for each geometry."""
        geoms = np.asarray(geoseries.to_crs("EPSG:4326").values, dtype=object)
        n = len(geoms)
        best = np.full(n, -1, dtype=np.int64)
        share = np.ones(n, dtype=float)
        poly = is_polygonal(geoms)
        if poly.any():
            pidx = np.flatnonzero(poly)
            polys_m = np.asarray(
                gpd.GeoSeries(geoms[pidx], crs="EPSG:4326").to_crs(crs).values, dtype=object
            )
            broken = ~shapely.is_valid(polys_m)
            if broken.any():  # self-intersections would make the overlay fail
                polys_m[broken] = shapely.make_valid(polys_m[broken])
            area = shapely.area(polys_m)
            real = area > 0
            b, s = largest_overlap(polys_m[real], self.geoms_m, self.rank, self.tree_m)
            best[pidx[real]] = b
            share[pidx[real]] = s
            poly[pidx[~real]] = False  # zero-area polygons: treated as points below
        pts = ~poly & ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        if pts.any():
            pidx = np.flatnonzero(pts)
            candidates = geoms[pidx]
            not_point = shapely.get_type_id(candidates) != 0
            if not_point.any():
                candidates = candidates.copy()
                candidates[not_point] = shapely.point_on_surface(candidates[not_point])
            best[pidx] = points_in_polygons(candidates, self.geoms, self.rank, self.tree)
        share[best < 0] = np.nan
        return best, share


def _check_grids(grids: gpd.GeoDataFrame) -> tuple[pd.Series, pd.Series]:
    """Grid codes and community codes of the grids, or :class:`AssignError`."""
    if not isinstance(grids, gpd.GeoDataFrame) or grids.crs is None:
        raise AssignError("layer 'grids' must be a GeoDataFrame with a CRS")
    if "grid_code" not in grids.columns:
        raise AssignError(
            f"layer 'grids' has no field 'grid_code' (fields: {', '.join(map(str, grids.columns))})"
        )
    codes_ = code_strings(grids["grid_code"]).reset_index(drop=True)
    missing = codes_.isna()
    if missing.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(missing)[:10])
        raise AssignError(f"layer 'grids': grid_code missing in row(s) {rows}")
    dup = codes_[codes_.duplicated()].unique()
    if len(dup):
        raise AssignError(
            f"layer 'grids': duplicate grid_code {', '.join(dup[:10])} "
            f"(run `gridgis audit` to see them)"
        )
    if "community_code" in grids.columns:
        comm = code_strings(grids["community_code"]).reset_index(drop=True)
        comm = comm.fillna(codes_.str[:12])
    else:
        comm = codes_.str[:12]
    return codes_, comm


def _strip(frame: Frame, columns) -> Frame:
    drop = [c for c in columns if c in frame.columns]
    return frame.drop(columns=drop) if drop else frame.copy()


def _assign_layer(
    frame: gpd.GeoDataFrame, grids: _Targets, comms: _Targets | None, crs: CRS, min_share: float
) -> tuple[gpd.GeoDataFrame, int]:
    out = _strip(frame, ASSIGN_COLUMNS)
    if len(out) == 0:
        for col, dtype in zip(ASSIGN_COLUMNS, ("string", "string", "Float64"), strict=True):
            out[col] = pd.Series(dtype=dtype)
        return out, 0
    best, share = grids.locate(out.geometry, crs)
    hit = best >= 0
    grid_code = np.where(hit, grids.keys[np.maximum(best, 0)], None)
    community = np.where(hit, grids.communities[np.maximum(best, 0)], None)
    if comms is not None and (~hit).any():
        miss = np.flatnonzero(~hit)
        cbest, _ = comms.locate(out.geometry.iloc[miss], crs)
        found = cbest >= 0
        community[miss[found]] = comms.keys[cbest[found]]
    out["community_code"] = pd.array(community, dtype="string")
    out["grid_code"] = pd.array(grid_code, dtype="string")
    kept = np.where(hit & (share < min_share), share, np.nan)
    out["grid_share"] = pd.array(np.round(kept, 4), dtype="Float64")
    return out, int((~hit).sum())


def _merge_rejected_staff(
    staff: pd.DataFrame | None, previous: pd.DataFrame | None
) -> pd.DataFrame | None:
    """Take staff rows rejected by an earlier run back in (unless re-entered since)."""
    if previous is None or len(previous) == 0 or "layer" not in previous.columns:
        return staff
    back = previous[previous["layer"].astype("string") == "staff"]
    rows = pd.to_numeric(back.get("row"), errors="coerce")
    back = back.drop(columns=[c for c in REJECT_COLUMNS if c in back.columns])
    if len(back) == 0:
        return staff
    if staff is None:
        return back.reset_index(drop=True)
    if "staff_id" in back.columns and "staff_id" in staff.columns:
        fresh = (
            ~back["staff_id"]
            .astype("string")
            .isin(set(staff["staff_id"].astype("string").dropna()))
            .to_numpy()
        )
        back, rows = back[fresh], rows[fresh]
    if len(back) == 0:
        return staff
    # put each row back where it was (its 1-based row number), so the table is the original
    merged = pd.concat([staff, back], ignore_index=True)
    order = list(range(len(staff)))
    rows = rows.fillna(len(merged)).astype(int).to_numpy()
    for i in np.argsort(rows, kind="stable"):
        order.insert(min(max(rows[i] - 1, 0), len(order)), len(staff) + int(i))
    return merged.iloc[order].reset_index(drop=True)


def _assign_staff(
    staff: pd.DataFrame, codes_: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    df = pd.DataFrame(staff).copy().reset_index(drop=True)
    if "geometry" in df.columns:
        df = df.drop(columns="geometry")
    notes: list[str] = []
    for col in ("grid_code", "community_code"):
        df[col] = (
            code_strings(df[col])
            if col in df.columns
            else pd.Series(pd.NA, index=df.index, dtype="string")
        )
    has_grid = df["grid_code"].notna()
    prefix = df["grid_code"].str[:12]
    differs = has_grid & df["community_code"].notna() & (df["community_code"] != prefix)
    if differs.any():
        ids = (
            ", ".join(df.loc[differs, "staff_id"].astype(str).head(10))
            if "staff_id" in df
            else f"{int(differs.sum())} rows"
        )
        notes.append(f"staff: community_code replaced by the grid's community for {ids}")
    df["community_code"] = df["community_code"].mask(has_grid, prefix)
    unknown = has_grid & ~df["grid_code"].isin(codes_)
    rejected = df[unknown]
    rej = pd.DataFrame(
        {
            "source": "assign",
            "layer": "staff",
            "row": (np.flatnonzero(unknown) + 1).astype(np.int64),
            "field": "grid_code",
            "value": rejected["grid_code"].astype("string").to_numpy(),
            "reason": [
                f"staff {sid} ({name}): grid_code {code} names no grid in layer 'grids'"
                for sid, name, code in zip(
                    rejected.get("staff_id", pd.Series("?", index=rejected.index)),
                    rejected.get("name", pd.Series("?", index=rejected.index)),
                    rejected["grid_code"],
                    strict=True,
                )
            ],
        }
    )
    rej = pd.concat([rej.reset_index(drop=True), rejected.reset_index(drop=True)], axis=1)
    if unknown.any():
        notes.append(
            f"staff: {int(unknown.sum())} rows name a grid_code that is not in "
            f"'grids'; rejected (see assign_rejects)"
        )
    return df[~unknown].reset_index(drop=True), rej, notes


def _grid_summaries(
    grids: gpd.GeoDataFrame,
    codes_: pd.Series,
    facilities: gpd.GeoDataFrame | None,
    staff: pd.DataFrame | None,
) -> gpd.GeoDataFrame:
    out = grids.copy()
    idx = pd.Index(codes_.to_numpy(), name="grid_code")
    categories = list(FACILITY_CATEGORIES)
    if facilities is not None and len(facilities) and "category" in facilities.columns:
        f = facilities[facilities["grid_code"].notna()]
        counts = (
            f.groupby([f["grid_code"].astype(str), f["category"].astype(str)])
            .size()
            .unstack(fill_value=0)
        )
        categories += sorted(set(counts.columns) - set(categories))
        counts = counts.reindex(index=idx, columns=categories, fill_value=0)
    else:
        counts = pd.DataFrame(0, index=idx, columns=categories)
    for cat in categories:
        out[f"facilities_{cat}"] = counts[cat].to_numpy(dtype=np.int64)
    out["facilities_total"] = counts.sum(axis=1).to_numpy(dtype=np.int64)

    heads = pd.Series(pd.NA, index=idx, dtype="string")
    workers = pd.Series(pd.NA, index=idx, dtype="string")
    n_staff = pd.Series(0, index=idx, dtype=np.int64)
    if staff is not None and len(staff) and "role" in staff.columns:
        s = staff[staff["grid_code"].notna()].copy()
        s["_key"] = s["staff_id"].astype(str) if "staff_id" in s.columns else s.index.astype(str)
        s = s.sort_values(["grid_code", "_key"])
        names = s.get("name", s["_key"]).astype(str)
        for role, target in (("grid_head", heads), ("grid_worker", workers)):
            sel = s["role"].astype("string") == role
            joined = (
                names[sel].groupby(s.loc[sel, "grid_code"].astype(str)).agg(NAME_SEPARATOR.join)
            )
            target.loc[joined.index] = joined.to_numpy()
        n = s.groupby(s["grid_code"].astype(str)).size()
        n_staff.loc[n.index] = n.to_numpy()
    out["grid_head"] = heads.to_numpy()
    out["grid_workers"] = workers.to_numpy()
    out["staff_count"] = n_staff.to_numpy()
    return out


def assign_all(
    layers: dict[str, Frame],
    grids: gpd.GeoDataFrame,
    settings: Settings = DEFAULT,
    progress: Callable[[int, int], None] | None = None,
) -> AssignResult:
    """Assign buildings, facilities, institutions, addresses and staff to grids.

    Parameters
    ----------
    layers
        Workspace layers by name. Uses ``buildings``, ``facilities``, ``institutions``,
        ``addresses``, ``staff`` (each optional), ``communities`` (optional: community of
        rows in no grid) and ``assign_rejects`` (optional: staff rejected by an earlier
        run, taken back in). Geometries in any CRS; outputs keep their input CRS.
    grids
        Grid polygons with a unique ``grid_code`` and, optionally, ``community_code``
        (default: the first 12 digits of the grid code).
    settings
        ``settings.grid.assign_min_share`` decides when ``grid_share`` is kept.
    progress
        Optional ``callback(done, total)`` called after each layer.

    Returns
    -------
    AssignResult
        The updated layers, the grids with facility counts and staff, ``assign_rejects``
        and notes. Rows keep their order.

    Raises
    ------
    AssignError
        Grids without a CRS, or with missing or duplicate ``grid_code``.
    """
    codes_, comm_codes = _check_grids(grids)
    crs = metric_crs_for(grids)
    min_share = float(settings.grid.assign_min_share)
    targets = _Targets.build(
        codes_.to_numpy(dtype=object), comm_codes.to_numpy(dtype=object), grids.geometry, crs
    )
    comms = None
    communities = layers.get("communities")
    if communities is not None and len(communities) and "community_code" in communities:
        ccodes = code_strings(communities["community_code"]).to_numpy(dtype=object)
        comms = _Targets.build(ccodes, ccodes, communities.geometry, crs)

    epsg = crs.to_epsg()
    result = AssignResult(grids=grids, crs=f"EPSG:{epsg}" if epsg else crs.to_string())
    todo = [n for n in ASSIGNED_LAYERS if layers.get(n) is not None]
    total = len(todo) + 2
    for i, name in enumerate(todo, 1):
        frame = layers[name]
        if not isinstance(frame, gpd.GeoDataFrame) or frame.crs is None:
            raise AssignError(f"layer '{name}' must be a GeoDataFrame with a CRS")
        assigned, missing = _assign_layer(frame, targets, comms, crs, min_share)
        setattr(result, name, assigned)
        if missing:
            result.notes.append(
                f"{name}: {missing} of {len(frame)} rows lie in no grid (grid_code left empty)"
            )
        if progress:
            progress(i, total)

    staff = _merge_rejected_staff(layers.get("staff"), layers.get("assign_rejects"))
    rejects = pd.DataFrame({c: pd.Series(dtype="object") for c in REJECT_COLUMNS})
    if staff is not None:
        result.staff, rejects, notes = _assign_staff(staff, set(codes_))
        result.notes += notes
    result.assign_rejects = rejects
    if progress:
        progress(total - 1, total)

    base = _strip(
        grids,
        [c for c in grids.columns if str(c).startswith("facilities_")] + list(GRID_STAFF_COLUMNS),
    )
    result.grids = _grid_summaries(base, codes_, result.facilities, result.staff)
    if progress:
        progress(total, total)
    return result


def assign_params(result: AssignResult, settings: Settings = DEFAULT) -> dict:
    """Parameters to record with the written layers (the rule and the metric CRS)."""
    return {
        "analysis": "assign",
        "computed_crs": result.crs,
        "grid.assign_min_share": settings.grid.assign_min_share,
    }


__all__ = [
    "AssignError",
    "AssignResult",
    "assign_all",
    "assign_params",
    "code_strings",
]
