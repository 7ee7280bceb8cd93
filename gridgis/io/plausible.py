"""Coordinate plausibility: does the declared CRS fit where the features lie?

Chinese web-map coordinates come in three datums that differ by a few hundred metres
(WGS84/CGCS2000, GCJ-02 used by Amap and Tencent, BD-09 used by Baidu), and exports
sometimes write latitude before longitude. A wrong declaration moves every feature by
300–1,000 m without any error. Two checks, run per source file before anything is
written (:class:`CrsCheck`, called by the import workflow):

1. **Against the workspace** — when the workspace already holds roads, buildings,
   facilities or addresses near the imported points/polygons: the features are placed
   under each hypothesis (the declared CRS, the other two datums, axes exchanged) and a
   median distance is measured for each — first, when at least
   ``imports.crs_check_min_features`` sampled features have an address naming a road the
   workspace holds (金都路1500号 → 金都路), the *median distance to the road its address
   names* (the Shanghai data's README: 35 m as WGS84 vs 350 m read as GCJ-02); then the
   *median distance from the sample to the nearest existing feature* of any kind.
   Another hypothesis "fits clearly better" when its median is at most
   ``imports.crs_check_ratio`` × the declared one's, at least
   ``imports.crs_check_min_gain_m`` smaller, and within
   ``imports.crs_check_max_reference_m`` (the data belongs here); or, feature by
   feature, when it puts most features nearer to their nearest existing feature (a sign
   test reaching ``imports.crs_check_min_z``) with a median at most
   ``imports.crs_check_paired_ratio`` × the declared one's — for existing layers
   unrelated to the imported ones (bus stops against kindergartens). Then the import is
   refused naming the likely CRS and the offset in metres between the two placements.
2. **Where the declared CRS can be** — GCJ-02 and BD-09 exist only inside China (the
   offsets are not defined elsewhere); a projected CRS (e.g. a CGCS2000 Gauss–Krüger zone,
   EPSG:4513–4554) only near its area of use (its zone's longitudes), with
   ``imports.crs_area_slack_deg`` of slack. Checked whatever the workspace holds.

Both are refusals (:class:`CrsImplausible`, an :class:`gridgis.errors.InputError`); the
``crs_check`` parameter of the import turns them off.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely

from gridgis import crs as C
from gridgis import layers as L
from gridgis.errors import InputError
from gridgis.io.osm import is_osm
from gridgis.standards import Settings
from gridgis.store import Store

log = logging.getLogger(__name__)

#: Layers whose features are tested (points and polygons).
CHECKED_LAYERS = ("buildings", "facilities", "addresses", "institutions", "green_spaces")
#: Layers of the workspace the features are compared with.
REFERENCE_LAYERS = ("roads", "buildings", "facilities", "addresses")
#: Names of the hypotheses for messages, and the crs value that declares each.
LABELS = {"wgs84": "WGS84/CGCS2000", "gcj02": "GCJ-02", "bd09": "BD-09"}
_GEOD = pyproj.Geod(ellps="WGS84")
#: Fields whose text may name a road (first found is used).
ADDRESS_COLUMNS = ("road", "address", "text")
#: The two statistics, in the order tried.
NAMED_ROAD = "the road its address names"
NEAREST = "the nearest road, building or facility"
_ADMIN_PREFIX = re.compile(
    r"^(?:[\u4e00-\u9fff]{1,8}?(?:省|自治区|自治州|地区|新区|市|区|县|旗))+(?=[\u4e00-\u9fff][\u4e00-\u9fff0-9])"
)
_ROAD_NAME = re.compile(r"[\u4e00-\u9fff0-9]{1,15}?(?:大道|大街|公路|路|街|巷|胡同|道)")


def road_of(text: object) -> str | None:
    """The road an address names ('金都路1500号' → '金都路', '上海市浦东新区张杨路500号' →
    '张杨路'), or None."""
    if not isinstance(text, str) or not text.strip():
        return None
    body = _ADMIN_PREFIX.sub("", re.sub(r"\s+", "", text))
    m = _ROAD_NAME.match(body)
    return m.group(0) if m else None


def _roads_by_name(roads) -> dict[str, np.ndarray]:
    names = roads["name"].astype("string").str.strip()
    ok = names.notna() & (names != "")
    return {
        str(k): roads.geometry.values[ok.to_numpy()][grp]
        for k, grp in names[ok].reset_index(drop=True).groupby(names[ok].to_numpy()).indices.items()
    }


class CrsImplausible(InputError):
    """Coordinates that do not fit their declared CRS (see the module docstring)."""


@dataclass(frozen=True)
class Fit:
    """One hypothesis: its name, the crs value declaring it, and the median distance (m)
    from the sampled features to the nearest existing feature when placed by it."""

    label: str
    crs: str
    median_m: float
    lon: np.ndarray
    lat: np.ndarray
    dist_m: np.ndarray | None = None


class CrsCheck:
    """The per-source check of the import workflow, bound to one workspace.

    ``check(options, layers)`` with the options a source was read with (``path``,
    ``crs``) and its validated layers (in the storage CRS). Raises
    :class:`CrsImplausible`."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.rules = store, settings.imports
        self._present: list[str] | None = None

    def __call__(self, options: dict[str, Any], layers: dict[str, L.Validated]) -> None:
        if is_osm(Path(options["path"])):
            return  # OpenStreetMap is WGS84 by definition
        declared = C.parse_crs(options["crs"]) if options.get("crs") else None
        for name, v in layers.items():
            if name not in CHECKED_LAYERS or not len(v.data):
                continue
            lon, lat, roads = self._sample(v.data)
            if not len(lon):
                continue
            where = f"{options['path']}: layer '{name}'"
            check_area(lon, lat, declared, where, self.rules.crs_area_slack_deg)
            if declared is None or declared in ("gcj02", "bd09", "EPSG:4326", "EPSG:4490"):
                self._compare(lon, lat, roads, _family(declared), where)

    def _sample(self, data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sampled features' points (lon, lat) and the road named by each one's address
        (None when it names none)."""
        geoms = data.geometry.values
        idx = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
        n = self.rules.crs_check_sample
        if len(idx) > n:
            idx = idx[np.linspace(0, len(idx) - 1, n).astype(int)]
        pts = shapely.get_coordinates(shapely.point_on_surface(geoms[idx]))
        text = next((c for c in ADDRESS_COLUMNS if c in data.columns), None)
        roads = (
            np.array([road_of(t) for t in data[text].to_numpy()[idx]], dtype=object)
            if text is not None
            else np.full(len(idx), None, dtype=object)
        )
        return pts[:, 0], pts[:, 1], roads

    def _compare(
        self, lon: np.ndarray, lat: np.ndarray, roads: np.ndarray, declared: str, where: str
    ) -> None:
        if len(lon) < self.rules.crs_check_min_features:
            return
        raw_lon, raw_lat = C.from_wgs84(lon, lat, declared) if declared != "wgs84" else (lon, lat)
        placements = hypotheses(raw_lon, raw_lat, declared)
        reference = self._reference(placements)
        if reference is None:
            return
        named = reference.named_roads(roads, self.rules.crs_check_min_features)
        if named is not None:
            fits = _fits(placements, lambda x, y: reference.named_road_m(named, x, y))
            self._refuse(better_fit(fits, self.rules), fits, where, NAMED_ROAD)
        fits = _fits(placements, reference.nearest_m)
        self._refuse(better_fit(fits, self.rules), fits, where, NEAREST)
        paired = paired_better_fit(fits, self.rules)
        if paired is not None:
            # the refusal stands on ``paired``; name the CRS that fits best of all
            best = min(fits[1:], key=lambda f: f.median_m)
            share, z = sign_test(fits[0], best) if best is not paired[0] else paired[1:]
            raise CrsImplausible(
                _message(where, fits[0], best, self.rules, NEAREST)
                + f" Feature by feature, {share:.0%} of them lie nearer to the existing "
                f"features as {best.label} (z = {z:.1f}; rule: imports.crs_check_min_z "
                f"{self.rules.crs_check_min_z:g}, imports.crs_check_paired_ratio "
                f"{self.rules.crs_check_paired_ratio:g})."
            )

    def _refuse(self, best: Fit | None, fits: list[Fit], where: str, statistic: str) -> None:
        if best is not None:
            raise CrsImplausible(_message(where, fits[0], best, self.rules, statistic))

    def _reference(self, placements) -> _Reference | None:
        """Existing features around every placement, or None when too few."""
        if self._present is None:
            self._present = [n for n in REFERENCE_LAYERS if self.store.has(n)]
        if not self._present:
            return None
        xs = np.concatenate([p[2] for p in placements])
        ys = np.concatenate([p[3] for p in placements])
        pad = 0.02  # degrees (~2 km) around the placements
        bbox = (
            float(np.nanmin(xs)) - pad,
            float(np.nanmin(ys)) - pad,
            float(np.nanmax(xs)) + pad,
            float(np.nanmax(ys)) + pad,
        )
        geoms, road_names = [], {}
        for name in self._present:
            frame = self.store.read(name, bbox=bbox)
            if len(frame):
                geoms.append(frame.geometry.values)
            if name == "roads" and len(frame) and "name" in frame.columns:
                road_names = _roads_by_name(frame)
        if not geoms:
            return None
        g = np.concatenate(geoms)
        g = g[~(shapely.is_missing(g) | shapely.is_empty(g))]
        if len(g) < self.rules.crs_check_min_features:
            return None
        return _Reference(g, float(np.nanmedian(ys)), road_names)


def _family(declared: str | None) -> str:
    return declared if declared in ("gcj02", "bd09") else "wgs84"


def hypotheses(raw_lon: np.ndarray, raw_lat: np.ndarray, declared: str):
    """``[(label, crs value, lon, lat), …]`` in WGS84: the declared CRS first, then the
    other datums, then the declared CRS with the axes exchanged (when that is lon/lat)."""
    out = []
    for kind in [declared] + [k for k in LABELS if k != declared]:
        x, y = (raw_lon, raw_lat) if kind == "wgs84" else C.to_wgs84(raw_lon, raw_lat, kind)
        out.append((LABELS[kind], kind, np.asarray(x), np.asarray(y)))
    if np.all(np.abs(raw_lon) <= 90):
        x, y = (raw_lat, raw_lon) if declared == "wgs84" else C.to_wgs84(raw_lat, raw_lon, declared)
        out.append(
            (
                f"{LABELS[declared]} with x and y exchanged",
                f"{declared} (swap the lon/lat columns)",
                np.asarray(x),
                np.asarray(y),
            )
        )
    return out


class _Reference:
    """Existing features in a local metric frame (equirectangular about the data's
    latitude; distances within a few km are exact to well under 1 %)."""

    def __init__(
        self, geoms: np.ndarray, lat0: float, road_names: dict[str, np.ndarray] | None = None
    ) -> None:
        self.kx = 111_320.0 * np.cos(np.radians(lat0))
        self.ky = 110_540.0
        self.tree = shapely.STRtree(shapely.transform(geoms, self._scale))
        self.road_names = road_names or {}

    def named_roads(self, roads: np.ndarray, minimum: int) -> np.ndarray | None:
        """Per sampled feature the scaled geometry of the road its address names (None
        where the workspace has no road of that name); None when fewer than
        ``minimum`` features name one."""
        wanted = {r for r in roads if r and r in self.road_names}
        lines = {  # only the roads the sample names, in the metric frame
            name: shapely.union_all(shapely.transform(self.road_names[name], self._scale))
            for name in wanted
        }
        out = np.array([lines.get(r) if r else None for r in roads], dtype=object)
        return out if sum(g is not None for g in out) >= minimum else None

    def named_road_m(self, named: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Distance (m) from each feature to the road its address names (features
        naming none left out)."""
        has = np.array([g is not None for g in named])
        pts = shapely.points(lon[has] * self.kx, lat[has] * self.ky)
        return shapely.distance(pts, named[has].astype(object))

    def _scale(self, coords: np.ndarray) -> np.ndarray:
        return coords * np.array([self.kx, self.ky])

    def nearest_m(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        pts = shapely.points(lon * self.kx, lat * self.ky)
        ok = np.isfinite(lon) & np.isfinite(lat)
        dist = np.full(len(lon), np.inf)
        if ok.any():
            idx, d = self.tree.query_nearest(pts[ok], return_distance=True, all_matches=False)
            got = np.full(int(ok.sum()), np.inf)
            got[idx[0]] = d
            dist[ok] = got
        return dist


def _fits(placements, measure) -> list[Fit]:
    """Each placement with its distances (m) by ``measure(lon, lat)`` and their median."""
    out = []
    for label, crs, x, y in placements:
        dist = measure(x, y)
        out.append(Fit(label, crs, float(np.median(dist)), x, y, dist))
    return out


def better_fit(fits: list[Fit], rules) -> Fit | None:
    """The hypothesis that fits clearly better than the declared one (``fits[0]``), or
    None (see the module docstring for the rule)."""
    declared = fits[0]
    best = min(fits[1:], key=lambda f: f.median_m, default=None)
    if best is None or not np.isfinite(best.median_m):
        return None
    clearly = (
        best.median_m <= rules.crs_check_ratio * declared.median_m
        and declared.median_m - best.median_m >= rules.crs_check_min_gain_m
        and best.median_m <= rules.crs_check_max_reference_m
    )
    return best if clearly else None


def sign_test(declared: Fit, other: Fit, minimum: int = 1) -> tuple[float, float]:
    """The share of features ``other`` puts nearer than ``declared`` (ties left out) and
    its sign-test z score, (share − ½)·2·√n; (0.5, 0.0) with fewer than ``minimum``."""
    diff = other.dist_m - declared.dist_m
    diff = diff[np.isfinite(diff) & (diff != 0)]
    if len(diff) < max(minimum, 1):
        return 0.5, 0.0
    share = float(np.mean(diff < 0))
    return share, float((share - 0.5) * 2 * np.sqrt(len(diff)))


def paired_better_fit(fits: list[Fit], rules) -> tuple[Fit, float, float] | None:
    """The hypothesis that puts the features nearer to the existing ones feature by
    feature, consistently (a sign test: ``z`` ≥ ``rules.crs_check_min_z``) and by a
    margin (median at most ``rules.crs_check_paired_ratio`` × the declared one's), with
    the share of features it puts nearer and ``z`` (of several, the one with the
    smallest median); or None. No distance bound: data
    lying away from the existing features gains nothing systematic from a shift, so the
    sign test does not fire on it. For unrelated layers
    (kindergartens against bus stops) the medians differ by 10–20 % only, but the right
    placement wins for most features; a wrong one does not."""
    declared = fits[0]
    out = None
    for fit in fits[1:]:
        if fit.dist_m is None or declared.dist_m is None:
            continue
        share, z = sign_test(declared, fit, rules.crs_check_min_features)
        if (
            z >= rules.crs_check_min_z
            and fit.median_m <= rules.crs_check_paired_ratio * declared.median_m
            and (out is None or fit.median_m < out[0].median_m)
        ):
            out = (fit, share, float(z))
    return out


def _message(where: str, declared: Fit, best: Fit, rules, statistic: str = NEAREST) -> str:
    _, _, moved = _GEOD.inv(declared.lon, declared.lat, best.lon, best.lat)
    offset = float(np.nanmedian(moved))
    return (
        f"{where}: the coordinates look like {best.label}, not the declared "
        f"{declared.label}: placed as {best.label} the features lie a median "
        f"{best.median_m:,.0f} m from {statistic} in the "
        f"workspace, as {declared.label} {declared.median_m:,.0f} m (rule: "
        f"imports.crs_check_ratio {rules.crs_check_ratio}, imports.crs_check_min_gain_m "
        f"{rules.crs_check_min_gain_m:g}); the two placements are {offset:,.0f} m apart. "
        f"Declare crs {best.crs}, or if {declared.label} is right, switch the crs_check "
        f"parameter off. Nothing was written."
    )


def check_area(
    lon: np.ndarray, lat: np.ndarray, declared: str | None, where: str, slack: float
) -> None:
    """Refuse data lying where its declared CRS cannot be: GCJ-02/BD-09 outside China, a
    projected CRS outside its area of use (a Gauss–Krüger zone away from its longitudes).

    ``lon``/``lat`` are the features in WGS84 as the declared CRS placed them."""
    if declared is None or declared in ("EPSG:4326", "EPSG:4490"):
        return
    if declared in ("gcj02", "bd09"):
        raw = C.from_wgs84(lon, lat, declared)
        outside = ~C.in_china(*raw)
        if outside.mean() > 0.5:
            raise CrsImplausible(
                f"{where}: declared {LABELS[declared]}, but {int(outside.sum())} of "
                f"{len(lon)} sampled features lie outside China, where {LABELS[declared]} "
                f"is not defined; declare crs wgs84 (or the CRS of the data). Nothing was "
                f"written."
            )
        return
    try:
        area = pyproj.CRS(declared).area_of_use
    except pyproj.exceptions.CRSError:
        return
    if area is None:
        return
    inside = (
        (lon >= area.west - slack)
        & (lon <= area.east + slack)
        & (lat >= area.south - slack)
        & (lat <= area.north + slack)
    )
    if inside.mean() >= 0.5:
        return
    mid = float(np.nanmedian(lon))
    hint = _zone_hint(lon, lat, declared)
    raise CrsImplausible(
        f"{where}: declared {declared} ({pyproj.CRS(declared).name}) covers longitudes "
        f"{area.west:g}–{area.east:g}°, latitudes {area.south:g}–{area.north:g}°, but "
        f"{int((~inside).sum())} of {len(lon)} sampled features fall outside it (median "
        f"longitude {mid:.2f}°){hint}. Nothing was written."
    )


def _zone_hint(lon: np.ndarray, lat: np.ndarray, declared: str) -> str:
    """The zone the eastings themselves name, when they carry a zone number (Gauss–Krüger
    eastings written with the zone in front: 40 500 000 m = zone 40)."""
    try:
        x, _ = C.from_wgs84(lon, lat, declared)
    except (pyproj.exceptions.ProjError, ValueError):
        return ""
    easting = float(np.nanmedian(x))
    if not np.isfinite(easting) or easting < 1e7:
        return ""
    zone = int(easting // 1e6)
    if 25 <= zone <= 45:  # CGCS2000 3-degree zones: EPSG:4513 = zone 25 … 4533 = zone 45
        return f"; the eastings carry zone number {zone}: EPSG:{4513 + zone - 25} (3-degree zone, central meridian {3 * zone}°E)"
    if 13 <= zone <= 23:  # CGCS2000 6-degree zones: EPSG:4491 = zone 13 … 4501 = zone 23
        return f"; the eastings carry zone number {zone}: EPSG:{4491 + zone - 13} (6-degree zone, central meridian {6 * zone - 3}°E)"
    return ""
