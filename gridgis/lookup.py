"""Which grid is this address or coordinate in, and who is responsible for it?

:class:`Lookup` is built once from a workspace (layers ``addresses``, ``buildings``,
``grids``, ``communities``, ``streets``, ``staff``; any may be missing) and answers

* :meth:`Lookup.address` / :meth:`Lookup.addresses`: a Chinese address text → the
  matched standard address (:class:`gridgis.address.AddressIndex`) → its point → chain;
* :meth:`Lookup.point` / :meth:`Lookup.points`: lon/lat in WGS84, CGCS2000, GCJ-02 or
  BD-09 → building and grid by STRtree queries → chain.

The chain is street {code, name} → community {code, name} → grid {grid_code, kind,
households} → people [{name, role, role_zh}] (phone only with ``include_personal``).
Without a grids layer the chain stops at the community. Answers are plain dicts
(JSON-serialisable); batch answers are DataFrames.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgis.address import AddressIndex, Match, Rule
from gridgis.address.policy import reason
from gridgis.crs import parse_crs, point_to_wgs84, to_wgs84
from gridgis.errors import NotFoundError
from gridgis.layers import STAFF_ROLES
from gridgis.spatial import points_in_polygons, rank_of
from gridgis.standards import DEFAULT, Settings

#: What an answer says when the address was found but lies in no grid.
OUTSIDE_EVERY_GRID = "the address lies outside every grid"

#: Order in which responsible people are listed (the public board order).
ROLE_ORDER = {"grid_head": 0, "grid_worker": 1, "community_worker": 2, "police": 3}


def _text(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def _int(v: Any) -> int | None:
    try:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return None
        return int(v)
    except (TypeError, ValueError):
        return None


def _object_column(values) -> pd.Series:
    """Text column with ``None`` (not NaN) where empty, whatever pandas would infer."""
    arr = np.asarray(values, dtype=object)
    if arr.size and not all(isinstance(v, str) or v is None for v in arr[:1]):
        arr = np.where(pd.isna(arr), None, arr)
    return pd.Series(arr, dtype=object)


@functools.lru_cache(maxsize=64)
def _converter(crs: str) -> Callable[[np.ndarray, np.ndarray], tuple]:
    """The function :func:`gridgis.crs.to_wgs84` applies for ``crs``, resolved once per
    CRS name (the per-call CRS parsing and comparison cost more than one point's maths)."""
    kind = parse_crs(crs)
    if kind in ("gcj02", "bd09"):
        return functools.partial(to_wgs84, crs=kind)
    if kind == "EPSG:4490" or pyproj.CRS(kind).equals(pyproj.CRS("EPSG:4326")):
        return lambda lon, lat: (lon, lat)
    tr = pyproj.Transformer.from_crs(kind, "EPSG:4326", always_xy=True)
    return lambda lon, lat: tuple(np.asarray(v) for v in tr.transform(lon, lat))


@functools.lru_cache(maxsize=64)
def _point_converter(crs: str) -> Callable[[float, float], tuple[float, float]]:
    """:func:`_converter` for one point in floats (GCJ-02/BD-09 through
    :func:`gridgis.crs.point_to_wgs84`, without numpy's per-call cost)."""
    kind = parse_crs(crs)
    if kind in ("gcj02", "bd09"):
        return functools.partial(point_to_wgs84, crs=kind)
    convert = _converter(crs)

    def one(lon: float, lat: float) -> tuple[float, float]:
        x, y = convert(np.array([lon]), np.array([lat]))
        return float(np.asarray(x).reshape(-1)[0]), float(np.asarray(y).reshape(-1)[0])

    return one


class _Points:
    """Query points sorted by longitude once, shared by the polygon layers' lookups."""

    def __init__(self, lon: np.ndarray, lat: np.ndarray) -> None:
        self.lon, self.lat = lon, lat
        self.order = np.argsort(lon, kind="stable")
        self.sorted_lon = lon[self.order]
        self._geoms: np.ndarray | None = None

    @property
    def geoms(self) -> np.ndarray:
        if self._geoms is None:
            self._geoms = shapely.points(self.lon, self.lat)
        return self._geoms


class _Polygons:
    """Polygons of one layer: which polygon holds each point, by the project's one
    point-in-polygon rule (:func:`gridgis.spatial.points_in_polygons`: the interior wins;
    a point only on boundaries goes to the polygon of smallest code).

    The polygons holding a point (boundary included) are found fast (a bounding-box sweep
    and ``intersects_xy`` on prepared polygons, no geometry per point); a point held by
    one polygon is that polygon's under the rule whatever the boundary, and every point
    held by two or more is settled by :func:`~gridgis.spatial.points_in_polygons` itself.
    """

    #: The code field that ranks polygons for boundary points, per layer.
    CODE_FIELDS = ("grid_code", "building_id", "community_code", "street_code")

    def __init__(self, frame: gpd.GeoDataFrame | None) -> None:
        if frame is None or len(frame) == 0:
            self.frame = None
            self.tree = None
            return
        self.frame = frame.reset_index(drop=True)
        self.geoms = np.asarray(self.frame.geometry.values, dtype=object)
        shapely.prepare(self.geoms)
        self.bounds = shapely.bounds(self.geoms)
        self.tree = shapely.STRtree(self.geoms)
        code = next((c for c in self.CODE_FIELDS if c in self.frame.columns), None)
        keys = (
            self.frame[code].astype(str).to_numpy()
            if code
            else np.array([f"{i:09d}" for i in range(len(self.frame))])
        )
        self.rank = rank_of(keys)

    def locate_one(self, lon: float, lat: float) -> int:
        """Row position of the polygon holding one point, -1 where none."""
        if self.tree is None:
            return -1
        pt = shapely.Point(lon, lat)
        cand = self.tree.query(pt)
        if cand.size == 0:
            return -1
        hit = cand[shapely.intersects_xy(self.geoms[cand], lon, lat)]
        if hit.size <= 1:
            return int(hit[0]) if hit.size else -1
        return int(points_in_polygons(np.array([pt]), self.geoms, self.rank, self.tree)[0])

    def locate(self, pts: _Points) -> np.ndarray:
        """Row position of the polygon holding each point, -1 where none."""
        n = len(pts.lon)
        out = np.full(n, -1, dtype=np.int64)
        if self.tree is None or n == 0:
            return out
        held = np.zeros(n, dtype=np.int32)
        if n * 4 < len(self.geoms):  # few points: bounding-box candidates from the tree
            pi, ti = self.tree.query(pts.geoms)
            hit = shapely.intersects_xy(self.geoms[ti], pts.lon[pi], pts.lat[pi])
            pi, ti = pi[hit], ti[hit]
            out[pi] = ti
            np.add.at(held, pi, 1)
        else:  # many points: each polygon's box over the longitude-sorted points
            b = self.bounds
            start = np.searchsorted(pts.sorted_lon, b[:, 0], side="left")
            stop = np.searchsorted(pts.sorted_lon, b[:, 2], side="right")
            for k in np.flatnonzero(stop > start):
                cand = pts.order[start[k] : stop[k]]
                y = pts.lat[cand]
                cand = cand[(y >= b[k, 1]) & (y <= b[k, 3])]
                if cand.size:
                    inside = shapely.intersects_xy(self.geoms[k], pts.lon[cand], pts.lat[cand])
                    out[cand[inside]] = k
                    held[cand[inside]] += 1
        shared = np.flatnonzero(held > 1)
        if shared.size:
            geoms = shapely.points(pts.lon[shared], pts.lat[shared])
            out[shared] = points_in_polygons(geoms, self.geoms, self.rank, self.tree)
        return out


class Lookup:
    """Address and point lookup with the chain street → community → grid → people.

    Parameters
    ----------
    addresses, buildings, grids, communities, streets
        GeoDataFrames of the canonical layers in EPSG:4326 (``None`` when absent).
    staff
        The staff table (``None`` when absent).
    settings
        Rule parameters; ``settings.address`` configures matching.
    """

    def __init__(
        self,
        addresses: gpd.GeoDataFrame | None = None,
        buildings: gpd.GeoDataFrame | None = None,
        grids: gpd.GeoDataFrame | None = None,
        communities: gpd.GeoDataFrame | None = None,
        streets: gpd.GeoDataFrame | None = None,
        staff: pd.DataFrame | None = None,
        settings: Settings = DEFAULT,
    ) -> None:
        self.settings = settings
        self.index = (
            AddressIndex.from_layer(addresses, settings)
            if addresses is not None and len(addresses)
            else None
        )
        self.buildings = _Polygons(buildings)
        self.grids = _Polygons(grids)
        self.communities = _Polygons(communities)
        self.streets = _Polygons(streets)
        self._building_ids = (
            self.buildings.frame["building_id"].astype(str).to_numpy()
            if self.buildings.frame is not None
            else np.array([], object)
        )
        # attribute tables for the chain
        self._community = {}
        if communities is not None:
            for r in communities.itertuples(index=False):
                self._community[str(r.community_code)] = (_text(r.name), _text(r.street_code))
        self._street = {}
        if streets is not None:
            for r in streets.itertuples(index=False):
                self._street[str(r.street_code)] = _text(r.name)
        self._grid_codes = (
            self.grids.frame["grid_code"].astype(str).to_numpy(dtype=object)
            if self.grids.frame is not None
            else np.array([], object)
        )
        self._comm_codes = np.array([], object)
        self._comm_street = np.array([], object)
        if self.communities.frame is not None:
            cf = self.communities.frame
            self._comm_codes = cf["community_code"].astype(str).to_numpy(dtype=object)
            self._comm_street = np.array(
                [self._community[c][1] for c in self._comm_codes], dtype=object
            )
        if self.grids.frame is not None:
            self._grid_tables()
        self._staff_tables(staff)
        self._precompute_chains()

    def _grid_tables(self) -> None:
        """Kind, households, community and street of every grid, by row."""
        if self.grids.frame is not None:
            gf = self.grids.frame
            n = len(gf)
            self._grid_kind = (
                gf["kind"].to_numpy(dtype=object)
                if "kind" in gf
                else np.full(n, None, dtype=object)
            )
            self._grid_households = (
                pd.to_numeric(gf["households"], errors="coerce").to_numpy(dtype=float)
                if "households" in gf
                else np.full(n, np.nan)
            )
            if "community_code" in gf:
                comm = gf["community_code"].to_numpy(dtype=object)
            else:  # the community holding the grid's representative point
                rep = shapely.point_on_surface(gf.geometry.values)
                c = self.communities.locate(_Points(shapely.get_x(rep), shapely.get_y(rep)))
                comm = np.where(
                    c >= 0,
                    self._comm_codes[np.clip(c, 0, None)] if len(self._comm_codes) else None,
                    None,
                )
            self._grid_community = np.array([_text(c) for c in comm], dtype=object)
            street = [
                self._community.get(c, (None, None))[1] if c else None for c in self._grid_community
            ]
            if "street_code" in gf:
                street = [s or _text(t) for s, t in zip(street, gf["street_code"], strict=True)]
            self._grid_street = np.array(street, dtype=object)

    def _staff_tables(self, staff: pd.DataFrame | None) -> None:
        """People by grid and, for those without a grid, by community, in board order."""
        self._people: dict[str, list[dict]] = {}
        self._community_people: dict[str, list[dict]] = {}
        if staff is not None and len(staff):
            s = staff.copy()
            s["_order"] = s["role"].map(ROLE_ORDER).fillna(9)
            s = s.sort_values(["_order", "staff_id"] if "staff_id" in s else ["_order"])
            for r in s.itertuples(index=False):
                person = {
                    "name": _text(r.name),
                    "role": _text(r.role),
                    "role_zh": STAFF_ROLES.get(str(r.role), _text(r.role)),
                    "phone": _text(getattr(r, "phone", None)),
                }
                grid = _text(getattr(r, "grid_code", None))
                comm = _text(getattr(r, "community_code", None))
                if grid:
                    self._people.setdefault(grid, []).append(person)
                elif comm:
                    self._community_people.setdefault(comm, []).append(person)

    def _precompute_chains(self) -> None:
        """The chain of every grid (or community), public and personal."""
        # the chain of every grid (or, without grids, every community), public and
        # personal, so that a single-point answer is an index query and a copy
        self._chains: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        if self.grids.frame is not None:
            rows = [
                {
                    "match_level": "grid",
                    "grid_code": g,
                    "grid_kind": k,
                    "households": h,
                    "community_code": c,
                    "street_code": st,
                }
                for g, k, h, c, st in zip(
                    self._grid_codes,
                    self._grid_kind,
                    self._grid_households,
                    self._grid_community,
                    self._grid_street,
                    strict=True,
                )
            ]
        elif self.communities.frame is not None:
            rows = [
                {
                    "match_level": "community",
                    "grid_code": None,
                    "grid_kind": None,
                    "households": None,
                    "community_code": c,
                    "street_code": st,
                }
                for c, st in zip(self._comm_codes, self._comm_street, strict=True)
            ]
        else:
            rows = []
        for personal in (False, True):
            self._chains[personal] = [self._chain(r, personal) for r in rows]

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_store(cls, store, settings: Settings = DEFAULT) -> Lookup:
        """Build from a workspace (:class:`gridgis.store.Store`), reading the layers
        addresses, buildings, grids, communities, streets and staff that exist."""
        layers = {}
        for name in ("addresses", "buildings", "grids", "communities", "streets", "staff"):
            layers[name] = store.read(name) if store.has(name) else None
        return cls(**layers, settings=settings)

    # -- points ---------------------------------------------------------------------------
    def points(
        self, lons: Iterable[float], lats: Iterable[float], crs: str = "wgs84"
    ) -> pd.DataFrame:
        """Locate many points at once.

        Parameters
        ----------
        lons, lats
            Coordinates in degrees in ``crs``.
        crs
            wgs84 | cgcs2000 | gcj02 | bd09 (or any EPSG code).

        Returns
        -------
        DataFrame
            One row per point: lon, lat (WGS84), building_id, grid_code, grid_kind,
            households, community_code, street_code, match_level ("building" inside a
            building of a grid, "grid" inside a grid, "community" inside a community when
            there is no grids layer, "none" elsewhere).
        """
        lon, lat = to_wgs84(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float), crs)
        lon, lat = np.atleast_1d(lon), np.atleast_1d(lat)
        n = len(lon)
        pts = _Points(lon, lat)
        b = self.buildings.locate(pts)
        if self.grids.frame is not None:
            g = self.grids.locate(pts)
            inside = g >= 0
            gi = np.clip(g, 0, None)
            grid_code = np.where(inside, self._grid_codes[gi], None)
            kind = np.where(inside, self._grid_kind[gi], None)
            households = np.where(inside, self._grid_households[gi], np.nan)
            community = np.where(inside, self._grid_community[gi], None)
            street = np.where(inside, self._grid_street[gi], None)
            level = np.where(inside, np.where(b >= 0, "building", "grid"), "none")
        else:
            c = self.communities.locate(pts)
            inside = c >= 0
            ci = np.clip(c, 0, None)
            grid_code = kind = np.full(n, None, dtype=object)
            households = np.full(n, np.nan)
            if self.communities.frame is not None:
                community = np.where(inside, self._comm_codes[ci], None)
                street = np.where(inside, self._comm_street[ci], None)
            else:
                community = street = np.full(n, None, dtype=object)
            level = np.where(inside, "community", "none")
        bi = np.clip(b, 0, None)
        building_id = (
            np.where((b >= 0) & inside, self._building_ids[bi], None)
            if len(self._building_ids)
            else np.full(n, None, dtype=object)
        )
        obj = _object_column
        return pd.DataFrame(
            {
                "lon": lon,
                "lat": lat,
                "building_id": obj(building_id),
                "grid_code": obj(grid_code),
                "grid_kind": obj(kind),
                "households": pd.array(households, dtype="Float64").astype("Int64"),
                "community_code": obj(community),
                "street_code": obj(street),
                "match_level": obj(level),
            }
        )

    def point(
        self, lon: float, lat: float, crs: str = "wgs84", include_personal: bool = False
    ) -> dict[str, Any]:
        """Locate one point and return the chain (see the module docstring).

        The same answer as :meth:`points` for that point with its chain, without building
        a DataFrame: the CRS conversion is resolved once per CRS name, the grid and the
        building are STRtree queries, and the chain is a copy of one precomputed per grid.

        Parameters
        ----------
        lon, lat
            Coordinates in degrees in ``crs``.
        crs
            wgs84 | cgcs2000 | gcj02 | bd09 (or any EPSG code).
        include_personal
            Include the people's phone numbers.

        Returns
        -------
        dict
            query, match_level, lon, lat (WGS84, degrees), building_id, street,
            community, grid, people (and community_people where there is no grid).
        """
        x, y = _point_converter(crs)(float(lon), float(lat))
        if self.grids.frame is not None:
            k = self.grids.locate_one(x, y)
            level = "grid"
        else:
            k = self.communities.locate_one(x, y)
            level = "community"
        building_id = None
        if k >= 0 and self.buildings.tree is not None:
            b = self.buildings.locate_one(x, y)
            if b >= 0:
                building_id = str(self._building_ids[b])
                if level == "grid":
                    level = "building"
        out: dict[str, Any] = {
            "query": {"lon": float(lon), "lat": float(lat), "crs": crs},
            "match_level": level if k >= 0 else "none",
            "lon": x,
            "lat": y,
            "building_id": building_id,
        }
        if k < 0:
            out.update({"street": None, "community": None, "grid": None, "people": []})
        else:
            for key, v in self._chains[bool(include_personal)][k].items():
                out[key] = (
                    v.copy()
                    if isinstance(v, dict)
                    else [dict(p) for p in v]
                    if isinstance(v, list)
                    else v
                )
        return out

    def point_from_points(
        self, lon: float, lat: float, crs: str = "wgs84", include_personal: bool = False
    ) -> dict[str, Any]:
        """:meth:`point` computed through :meth:`points` (the batch path); the reference
        the fast :meth:`point` is tested against."""
        row = self.points([lon], [lat], crs).iloc[0]
        out: dict[str, Any] = {
            "query": {"lon": float(lon), "lat": float(lat), "crs": crs},
            "match_level": row["match_level"],
            "lon": float(row["lon"]),
            "lat": float(row["lat"]),
            "building_id": _text(row["building_id"]),
        }
        out.update(self._chain(row, include_personal))
        return out

    def _chain(self, row: pd.Series, include_personal: bool) -> dict[str, Any]:
        if row["match_level"] == "none":
            return {"street": None, "community": None, "grid": None, "people": []}
        ccode = _text(row["community_code"])
        scode = _text(row["street_code"])
        cname = self._community.get(ccode, (None, None))[0] if ccode else None
        gcode = _text(row["grid_code"])
        people = [dict(p) for p in self._people.get(gcode, [])] if gcode else []
        for p in people:
            if not include_personal:
                p.pop("phone", None)
        out = {
            "street": {"code": scode, "name": self._street.get(scode)} if scode else None,
            "community": {"code": ccode, "name": cname} if ccode else None,
            "grid": (
                {
                    "grid_code": gcode,
                    "kind": _text(row["grid_kind"]),
                    "households": _int(row["households"]),
                }
                if gcode
                else None
            ),
            "people": people,
        }
        if not gcode and ccode:
            out["community_people"] = [
                {k: v for k, v in p.items() if include_personal or k != "phone"}
                for p in self._community_people.get(ccode, [])
            ]
        return out

    # -- addresses --------------------------------------------------------------------------
    def _require_index(self) -> AddressIndex:
        if self.index is None:
            raise NotFoundError(
                "the workspace has no 'addresses' layer to match against; "
                "import standard addresses into the layer 'addresses' first"
            )
        return self.index

    def address(self, text: str, include_personal: bool = False) -> dict[str, Any]:
        """Match one address text and return the answer with its chain.

        Returns
        -------
        dict
            query, match_level, match_score, confident, address_id, lon, lat,
            building_id, candidates (address_id, text, score, grid_code), reason,
            parsed components, and the chain street / community / grid / people.
            When not confident, address_id, lon, lat and the chain are empty.
        """
        index = self._require_index()
        m = self._settle(index.match(text))
        return self._answer(m, include_personal)

    def _settle(self, m: Match) -> Match:
        """An address found in several places is still a confident answer when all those
        places lie in one grid: the grid, which is what is asked, is certain."""
        if m.confident or not m.tied or self.grids.frame is None:
            return m
        index = self.index
        codes = self.points(index.lon[m.tied], index.lat[m.tied])["grid_code"]
        if codes.notna().all() and codes.nunique() == 1:
            m.row, m.confident, m.rule = m.tied[0], True, Rule.ONE_GRID
            m.reason = reason(
                Rule.ONE_GRID,
                f"{len(m.tied)} records of this address in different places, "
                f"all in grid {codes.iloc[0]}",
            )
        return m

    def _answer(self, m: Match, include_personal: bool) -> dict[str, Any]:
        index = self.index
        cand_rows = [r for r, _ in m.candidates]
        rows = ([m.row] if m.row is not None else []) + cand_rows
        located = self.points(index.lon[rows], index.lat[rows]) if rows else None
        out: dict[str, Any] = {
            "query": m.query,
            "match_level": m.level,
            "match_score": round(m.score, 1),
            "confident": bool(m.confident),
            "address_id": None,
            "text": None,
            "lon": None,
            "lat": None,
            "building_id": None,
            "parsed": m.parsed.as_dict(),
            "rule": m.rule.value,
            "reason": m.reason or None,
        }
        if m.row is not None and m.confident:
            r = m.row
            loc = located.iloc[0]
            bid = index.building_id[r] or _text(loc["building_id"])
            out.update(
                {
                    "address_id": str(index.address_id[r]),
                    "text": str(index.text[r]),
                    "lon": float(index.lon[r]),
                    "lat": float(index.lat[r]),
                    "building_id": bid or None,
                }
            )
            out.update(self._chain(loc, include_personal))
            if self.grids.frame is not None and out["grid"] is None:
                out["reason"] = f"{out['reason']}; {OUTSIDE_EVERY_GRID}"
        else:
            out.update({"street": None, "community": None, "grid": None, "people": []})
        offset = 1 if m.row is not None else 0
        out["candidates"] = (
            [
                {
                    "address_id": str(index.address_id[r]),
                    "text": str(index.text[r]),
                    "score": round(float(s), 1),
                    "grid_code": _text(located.iloc[offset + i]["grid_code"]),
                }
                for i, (r, s) in enumerate(m.candidates)
            ]
            if (not m.confident or len(m.candidates) > 1)
            else []
        )
        return out

    def addresses(
        self, texts: Iterable[str], progress: Callable[[int, int], None] | None = None
    ) -> pd.DataFrame:
        """Match many address texts.

        Returns
        -------
        DataFrame
            One row per text: address_id, lon, lat (WGS84), grid_code, match_level,
            match_score, confident, rule (the policy rule that decided, see
            :mod:`gridgis.address.policy`). address_id, lon, lat and grid_code are empty
            where there was no confident match.
        """
        index = self._require_index()
        return self.table(index.match_many(texts, progress))

    def table(self, matches: list[Match]) -> pd.DataFrame:
        """The batch table of :meth:`addresses` for matches of :attr:`index` (each
        settled first, see :meth:`_settle`)."""
        index = self._require_index()
        matches = [self._settle(m) for m in matches]
        n = len(matches)
        rows = np.array(
            [m.row if (m.row is not None and m.confident) else -1 for m in matches], dtype=np.int64
        )
        ok = rows >= 0
        lon = np.full(n, np.nan)
        lat = np.full(n, np.nan)
        lon[ok] = index.lon[rows[ok]]
        lat[ok] = index.lat[rows[ok]]
        grid = np.full(n, None, dtype=object)
        if ok.any():
            grid[ok] = self.points(lon[ok], lat[ok])["grid_code"].to_numpy()
        aid = np.full(n, None, dtype=object)
        aid[ok] = index.address_id[rows[ok]]
        return batch_frame(
            aid,
            lon,
            lat,
            grid,
            [m.level for m in matches],
            [round(m.score, 1) for m in matches],
            [bool(m.confident) for m in matches],
            [m.rule.value for m in matches],
        )


def batch_frame(
    address_id: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    grid_code: np.ndarray,
    match_level: list[str],
    match_score: list[float],
    confident: list[bool],
    rule: list[str],
) -> pd.DataFrame:
    """The table of :meth:`Lookup.addresses` from its columns (lon, lat in WGS84 degrees,
    NaN where not confident; text columns with ``None`` where empty)."""
    return pd.DataFrame(
        {
            "address_id": _object_column(address_id),
            "lon": lon,
            "lat": lat,
            "grid_code": _object_column(grid_code),
            "match_level": match_level,
            "match_score": match_score,
            "confident": confident,
            "rule": rule,
        }
    )
