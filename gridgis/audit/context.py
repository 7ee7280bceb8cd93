"""The shared context of an audit, built once: grids repaired and reprojected, codes,
communities by location, buildings by largest overlap. Checks read it; the costly parts
are computed on first use (:func:`functools.cached_property`) so a check that is skipped
costs nothing."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gridgis.assign import code_strings
from gridgis.crs import metric_crs_for
from gridgis.errors import InputError
from gridgis.spatial import largest_overlap, overlap_pairs, rank_of
from gridgis.standards import Settings

GRID_SIZE_M = 0.001
"""Precision (m) of the overlays that find gaps, overlaps and community crossings: snap
rounding to 1 mm keeps GEOS robust where hand-drawn (or reprojected) neighbours share
edges that differ by nanometres, far below ``audit_sliver_m2``."""

#: Values of the kind field that mark a unit grid (单位网格 / 专属网格): no household range.
UNIT_KINDS = ("unit", "单位网格", "专属网格", "单位", "专属")


class AuditError(InputError):
    """Grids that cannot be audited at all (no such field, no CRS).

    ``parameter`` names the :func:`~gridgis.audit.audit_grids` parameter that would fix
    it, when one would (a front end maps it to its own option)."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


def polygonal(geoms: np.ndarray) -> np.ndarray:
    """Only the polygonal parts of each geometry (intersections and make_valid can add
    points and lines); empty polygon where none."""
    out = np.asarray(geoms, dtype=object).copy()
    kinds = shapely.get_type_id(out)
    for i in np.flatnonzero(~np.isin(kinds, (3, 6))):
        g = out[i]
        parts = (
            []
            if g is None
            else [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
        )
        out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return out


def fmt_area(m2: float) -> str:
    """``1.23 ha`` or ``456.7 m²``."""
    return f"{m2 / 10_000:,.2f} ha" if m2 >= 10_000 else f"{m2:,.1f} m²"


def to_storage(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """Metric geometries to EPSG:4326."""
    if len(geoms) == 0:
        return np.asarray(geoms, dtype=object)
    return np.asarray(gpd.GeoSeries(geoms, crs=crs).to_crs("EPSG:4326").values, dtype=object)


@dataclass(frozen=True)
class Scope:
    """Part of a larger grid layer audited on its own (a partition of
    :mod:`gridgis.partitioned.audit`): what the part must take from the whole layer so
    its findings are the whole audit's.

    Attributes
    ----------
    rows1
        1-based row of each grid of the part in the whole layer (messages, ``grid_row``,
        tie-breaks).
    crs
        The whole layer's metric CRS (a part could fall in another zone).
    present
        Layers holding rows in the whole workspace (a part may hold none of them and must
        still report, e.g., grids with 0 households).
    located_any
        Whether any grid of the whole layer overlaps a community (else communities come
        from the codes' prefixes); None: decide from the part.
    """

    rows1: np.ndarray
    crs: CRS
    present: frozenset[str]
    located_any: bool | None = None


@dataclass
class Options:
    """How the grid layer names its fields."""

    code_field: str = "grid_code"
    community_field: str | None = None
    kind_field: str | None = "kind"
    layer_name: str = "grids"


class AuditContext:
    """Everything the checks share, built once per audit.

    Attributes
    ----------
    grids
        The input grids (index reset).
    codes, code_text
        Grid codes (``string``, NA where missing) and as text ("" where missing).
    geoms
        Grid polygons in EPSG:4326, repaired (``make_valid``) where invalid.
    gm, area, rank, tree
        Grid polygons in the metric CRS, their areas (m²), tie-break rank by code, index.
    repairs
        (row, reason) of each grid with no or an invalid geometry.
    """

    def __init__(
        self, grids, layers, settings: Settings, options: Options, scope: Scope | None = None
    ) -> None:
        _validate(grids, options)
        self.options = options
        self.layers = layers
        self.settings = settings
        self.rules = settings.grid
        self.scope = scope
        self.grids = grids.reset_index(drop=True)
        self.n = len(self.grids)
        self.rows1 = np.arange(1, self.n + 1) if scope is None else np.asarray(scope.rows1)
        self.codes = code_strings(self.grids[options.code_field]).reset_index(drop=True)
        self.code_text = self.codes.fillna("").to_numpy(dtype=object)
        self.crs = metric_crs_for(self.grids) if scope is None else scope.crs
        self._repair()
        self.gm = np.asarray(
            gpd.GeoSeries(self.geoms, crs="EPSG:4326").to_crs(self.crs).values, dtype=object
        )
        self.area = shapely.area(self.gm)
        self.rank = rank_of(
            np.array([f"{c}|{i - 1:09d}" for i, c in zip(self.rows1, self.code_text, strict=True)])
        )
        self.tree = shapely.STRtree(self.gm)

    def present(self, name: str) -> bool:
        """Whether layer ``name`` holds rows (in the whole workspace, for a part)."""
        frame = self.layers.get(name)
        if frame is None:
            return False
        return name in self.scope.present if self.scope is not None else len(frame) > 0

    def _repair(self) -> None:
        geoms = np.asarray(self.grids.geometry.to_crs("EPSG:4326").values, dtype=object)
        missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        invalid = ~missing & ~shapely.is_valid(geoms)
        self.repairs: list[tuple[int, str]] = [
            (int(i), "no geometry") for i in np.flatnonzero(missing)
        ]
        if invalid.any():
            reasons = shapely.is_valid_reason(geoms[invalid])
            geoms = geoms.copy()
            geoms[invalid] = polygonal(shapely.make_valid(geoms[invalid]))
            self.repairs += [
                (int(i), f"{why}; repaired with make_valid for the other checks")
                for i, why in zip(np.flatnonzero(invalid), reasons, strict=True)
            ]
        self.geoms = polygonal(np.where(missing, shapely.Polygon(), geoms))
        if self.scope is None and shapely.is_empty(self.geoms).all():
            raise AuditError(
                f"layer '{self.options.layer_name}' holds no polygons (grids must be areas)"
            )

    def label(self, i: int) -> str:
        """The grid's code, or ``row N`` when it has none."""
        return self.code_text[i] or f"row {self.rows1[i]}"

    # -- codes ----------------------------------------------------------------------------
    @cached_property
    def fifteen(self) -> np.ndarray:
        """True where the code is 15 digits (a grid code whose prefix can be checked)."""
        return np.array([len(c) == 15 and c.isdigit() for c in self.code_text], dtype=bool)

    # -- communities ----------------------------------------------------------------------
    @cached_property
    def has_communities(self) -> bool:
        comms = self.layers.get("communities")
        return self.present("communities") and "community_code" in comms.columns

    @cached_property
    def community_layer(self) -> tuple[np.ndarray, np.ndarray]:
        """(community codes, metric polygons repaired)."""
        comms = self.layers["communities"]
        ccodes = code_strings(comms["community_code"]).fillna("").to_numpy(dtype=object)
        cm = np.asarray(comms.geometry.to_crs(self.crs).values, dtype=object)
        bad = ~shapely.is_valid(cm)
        if bad.any():
            cm = cm.copy()
            cm[bad] = polygonal(shapely.make_valid(cm[bad]))
        return ccodes, cm

    @cached_property
    def best_community(self) -> np.ndarray:
        """Community (row) holding most of each grid, -1 none."""
        if not self.has_communities:
            return np.full(self.n, -1, dtype=np.int64)
        ccodes, cm = self.community_layer
        return largest_overlap(self.gm, cm, rank_of(ccodes))[0]

    @cached_property
    def declared(self) -> pd.Series | None:
        """Community codes of the grid layer's community field (when named)."""
        fld = self.options.community_field
        return code_strings(self.grids[fld]).reset_index(drop=True) if fld else None

    @cached_property
    def located(self) -> pd.Series:
        """Community code of each grid by location (largest overlap), NA none."""
        if not self.has_communities:
            return pd.Series(pd.NA, index=range(self.n), dtype="string")
        ccodes, _ = self.community_layer
        best = self.best_community
        return pd.Series(np.where(best >= 0, ccodes[np.maximum(best, 0)], None), dtype="string")

    @cached_property
    def community(self) -> pd.Series:
        """Each grid's community: declared, else by location, else the code's prefix."""
        if self.declared is not None:
            return self.declared
        if not self.located_any:
            return pd.Series(
                [c[:12] if f else pd.NA for c, f in zip(self.code_text, self.fifteen, strict=True)],
                dtype="string",
            )
        return self.located

    @cached_property
    def community_source(self) -> str | None:
        """How :attr:`community` was found (for messages); None when it was not."""
        if self.declared is not None:
            return "field " + str(self.options.community_field)
        return "location" if self.located_any else None

    @cached_property
    def located_any(self) -> bool:
        """Whether any grid lies in a community (of the whole layer, for a part)."""
        if self.scope is not None and self.scope.located_any is not None:
            return bool(self.scope.located_any)
        return bool(self.located.notna().any())

    # -- buildings ------------------------------------------------------------------------
    @cached_property
    def has_buildings(self) -> bool:
        return self.present("buildings")

    @cached_property
    def buildings(self) -> BuildingsInGrids:
        """Buildings by largest overlap (as :mod:`gridgis.assign` assigns them)."""
        return BuildingsInGrids(self)

    @cached_property
    def unit(self) -> np.ndarray:
        """True where the kind field marks a unit grid (no household range)."""
        kf = self.options.kind_field
        if not kf or kf not in self.grids.columns:
            return np.zeros(self.n, dtype=bool)
        kinds = self.grids[kf].astype("string").str.strip().str.lower()
        return kinds.isin(UNIT_KINDS).fillna(False).to_numpy(dtype=bool)


class BuildingsInGrids:
    """Buildings of the workspace against the grids (metric)."""

    def __init__(self, ctx: AuditContext) -> None:
        b = ctx.layers["buildings"]
        bm = np.asarray(b.geometry.to_crs(ctx.crs).values, dtype=object)
        self.geoms = polygonal(np.where(shapely.is_valid(bm), bm, shapely.make_valid(bm)))
        self.hh = (
            pd.to_numeric(b.get("households", pd.Series(0, index=b.index)), errors="coerce")
            .fillna(0)
            .to_numpy(dtype=np.int64)
        )
        self.ids = (
            b["building_id"].astype(str).to_numpy()
            if "building_id" in b.columns
            else np.array([f"row {i + 1}" for i in range(len(b))])
        )
        p, q, a = overlap_pairs(self.geoms, ctx.gm, ctx.tree)
        barea = shapely.area(self.geoms)
        share = np.divide(a, barea[p], out=np.zeros(len(a)), where=barea[p] > 0)
        order = np.lexsort((ctx.rank[q], -a, p))
        self.p, self.q, self.share = p[order], q[order], share[order]
        first = np.r_[True, self.p[1:] != self.p[:-1]] if len(p) else np.zeros(0, bool)
        self.best = np.full(len(b), -1, dtype=np.int64)
        self.best[self.p[first]] = self.q[first]
        hit = self.best >= 0
        self.households = np.bincount(self.best[hit], weights=self.hh[hit], minlength=ctx.n)
        self.households = self.households.astype(np.int64)
        self.building_count = np.bincount(self.best[hit], minlength=ctx.n).astype(np.int64)
        self.community = pd.Series(pd.NA, index=range(len(b)), dtype="string")
        if ctx.has_communities:
            ccodes, cm = ctx.community_layer
            cb, _ = largest_overlap(self.geoms, cm, rank_of(ccodes))
            self.community = pd.Series(
                np.where(cb >= 0, ccodes[np.maximum(cb, 0)], None), dtype="string"
            )


def _validate(grids, options: Options) -> None:
    name, code_field = options.layer_name, options.code_field
    if not isinstance(grids, gpd.GeoDataFrame) or grids.crs is None:
        raise AuditError(f"layer '{name}' must be a polygon layer with a CRS")
    if code_field not in grids.columns:
        raise AuditError(
            f"layer '{name}' has no field '{code_field}' (fields: "
            f"{', '.join(map(str, grids.columns))}); name the code field with the "
            f"code_field parameter",
            parameter="code_field",
        )
    if options.community_field is not None and options.community_field not in grids.columns:
        raise AuditError(f"layer '{name}' has no field '{options.community_field}'")
    if len(grids) == 0:
        raise AuditError(f"layer '{name}' is empty")
