"""Coordinate reference systems: reading what a layer declares, the Chinese map offsets
(GCJ-02, BD-09), and choosing the metric CRS an analysis computes in.

Conventions
-----------
* Longitude/latitude arrays in, longitude/latitude arrays out (numpy, vectorised).
* CGCS2000 (EPSG:4490) is treated as WGS84 (EPSG:4326): the two frames differ by a few
  centimetres, far below the accuracy of any planning layer. Storage is EPSG:4326.
* GCJ-02 (国测局 "Mars" coordinates used by Amap and Tencent) is WGS84 plus a deliberate
  non-linear offset of up to several hundred metres, applied only inside China.
  BD-09 (Baidu) is GCJ-02 plus a second offset. Neither has an EPSG code: layers in them
  are declared with ``crs="gcj02"`` / ``crs="bd09"`` and converted on import.
* The inverse transforms are iterative (fixed-point on the forward transform) and return
  to within a few millimetres; the published one-step inverses are off by up to ~2 m.
* Projected CGCS2000 3-degree Gauss–Krüger CRSs (EPSG:4513–4554) declare northing,
  easting axis order; geopandas/pyproj with ``always_xy`` give x = easting regardless.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pyproj
from numpy.typing import ArrayLike, NDArray

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by the GCJ-02 algorithm, metres
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0

# The offset formulas are written once against a small maths namespace: numpy for arrays,
# the math module for one point (a numpy call on a one-element array costs ~1 µs, a math
# call ~50 ns, and a point's inverse takes a few hundred of them).
_NP = SimpleNamespace(sin=np.sin, cos=np.cos, sqrt=np.sqrt, atan2=np.arctan2, pi=np.pi)
_MATH = SimpleNamespace(sin=math.sin, cos=math.cos, sqrt=math.sqrt, atan2=math.atan2, pi=math.pi)

#: Names accepted for the offset "CRSs" that have no EPSG code.
#: The one CRS every layer is stored in (WGS84 longitude/latitude; CGCS2000 is treated as
#: equal to it, see the README). Every module imports it from here.
STORAGE_CRS = "EPSG:4326"

OFFSET_CRS = {
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "gcj": "gcj02",
    "amap": "gcj02",
    "tencent": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "baidu": "bd09",
}

#: Plain names for the common geographic CRSs.
NAMED_CRS = {
    "wgs84": "EPSG:4326",
    "wgs-84": "EPSG:4326",
    "crs84": "EPSG:4326",
    "cgcs2000": "EPSG:4490",
    "epsg:4490": "EPSG:4490",
    "epsg:4326": "EPSG:4326",
}


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    if lon_a.shape != lat_a.shape:
        raise ValueError(f"lon and lat differ in shape: {lon_a.shape} vs {lat_a.shape}")
    return lon_a, lat_a


#: West, east, south, north (degrees) of the box where the GCJ-02 offset applies.
_CHINA_BOX = (72.004, 137.8347, 0.8293, 55.8271)


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """True where the GCJ-02 offset applies (the usual China bounding box test)."""
    lon_a, lat_a = _arrays(lon, lat)
    w, e, s, n = _CHINA_BOX
    return (lon_a >= w) & (lon_a <= e) & (lat_a >= s) & (lat_a <= n)


def _gcj_delta(lon, lat, m: SimpleNamespace = _NP):
    """GCJ-02 offset (dlon, dlat) in degrees at WGS84 lon/lat (arrays with ``_NP``, floats
    with ``_MATH``)."""
    x = lon - 105.0
    y = lat - 35.0
    sx = m.sqrt(abs(x))
    common = (20.0 * m.sin(6.0 * x * m.pi) + 20.0 * m.sin(2.0 * x * m.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * m.sin(y * m.pi) + 40.0 * m.sin(y / 3.0 * m.pi)) * 2.0 / 3.0
    dlat += (160.0 * m.sin(y / 12.0 * m.pi) + 320.0 * m.sin(y * m.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * m.sin(x * m.pi) + 40.0 * m.sin(x / 3.0 * m.pi)) * 2.0 / 3.0
    dlon += (150.0 * m.sin(x / 12.0 * m.pi) + 300.0 * m.sin(x / 30.0 * m.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * m.pi
    magic = 1.0 - _EE * m.sin(radlat) ** 2
    sqrtmagic = m.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * m.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * m.cos(radlat) * m.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """WGS84 → GCJ-02 (degrees). Points outside China are returned unchanged."""
    lon_a, lat_a = _arrays(lon, lat)
    dlon, dlat = _gcj_delta(lon_a, lat_a)
    inside = in_china(lon_a, lat_a)
    return np.where(inside, lon_a + dlon, lon_a), np.where(inside, lat_a + dlat, lat_a)


def _invert(forward, lon, lat, iterations: int = 30, tol_deg: float = 1e-10):
    """Solve forward(x) = (lon, lat) for x by fixed-point iteration from x0 = (lon, lat);
    arrays or plain floats (then ``forward`` must take floats)."""
    x_lon, x_lat = lon, lat
    for _ in range(iterations):
        f_lon, f_lat = forward(x_lon, x_lat)
        e_lon, e_lat = f_lon - lon, f_lat - lat
        x_lon, x_lat = x_lon - e_lon, x_lat - e_lat
        if np.all(abs(e_lon) < tol_deg) and np.all(abs(e_lat) < tol_deg):
            break
    return x_lon, x_lat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """GCJ-02 → WGS84 (degrees), iterative inverse; round trip error < 1 mm inside China."""
    lon_a, lat_a = _arrays(lon, lat)
    return _invert(wgs84_to_gcj02, lon_a, lat_a)


def _bd_forward(x, y, m: SimpleNamespace = _NP):
    z = m.sqrt(x * x + y * y) + 0.00002 * m.sin(y * _X_PI)
    theta = m.atan2(y, x) + 0.000003 * m.cos(x * _X_PI)
    return z * m.cos(theta) + 0.0065, z * m.sin(theta) + 0.006


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """GCJ-02 → BD-09 (degrees), Baidu's published forward transform."""
    return _bd_forward(*_arrays(lon, lat))


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """BD-09 → GCJ-02 (degrees), iterative inverse of :func:`gcj02_to_bd09`."""
    lon_a, lat_a = _arrays(lon, lat)
    return _invert(gcj02_to_bd09, lon_a, lat_a)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """WGS84 → BD-09 (degrees) through GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray, NDArray]:
    """BD-09 → WGS84 (degrees) through GCJ-02, both steps iterative."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _in_china_point(lon: float, lat: float) -> bool:
    w, e, s, n = _CHINA_BOX
    return w <= lon <= e and s <= lat <= n


def _gcj_forward_point(lon: float, lat: float) -> tuple[float, float]:
    if not _in_china_point(lon, lat):
        return lon, lat
    dlon, dlat = _gcj_delta(lon, lat, _MATH)
    return lon + dlon, lat + dlat


def point_to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """One point in gcj02 or bd09 to WGS84 (degrees), in plain floats.

    The same iteration as :func:`to_wgs84` on arrays, for the single-point lookups of
    the API (about 10× faster than a one-element array). Other CRSs go through
    :func:`to_wgs84`.
    """
    kind = parse_crs(crs)
    lon, lat = float(lon), float(lat)
    if kind == "bd09":
        lon, lat = _invert(lambda x, y: _bd_forward(x, y, _MATH), lon, lat)
        kind = "gcj02"
    if kind == "gcj02":
        return _invert(_gcj_forward_point, lon, lat)
    x, y = to_wgs84(np.array([lon]), np.array([lat]), kind)
    return float(x[0]), float(y[0])


_TO_WGS84 = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_FROM_WGS84 = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> tuple[NDArray, NDArray]:
    """Convert lon/lat in ``crs`` (wgs84, cgcs2000, gcj02, bd09 or any EPSG) to WGS84."""
    kind = parse_crs(crs)
    if kind in _TO_WGS84:
        return _TO_WGS84[kind](lon, lat)
    lon_a, lat_a = _arrays(lon, lat)
    if pyproj.CRS(kind).equals(pyproj.CRS("EPSG:4326")) or kind == "EPSG:4490":
        return lon_a, lat_a
    tr = pyproj.Transformer.from_crs(kind, "EPSG:4326", always_xy=True)
    x, y = tr.transform(lon_a, lat_a)
    return np.asarray(x), np.asarray(y)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> tuple[NDArray, NDArray]:
    """Convert WGS84 lon/lat to ``crs`` (wgs84, cgcs2000, gcj02, bd09 or an EPSG code)."""
    kind = parse_crs(crs)
    if kind in _FROM_WGS84:
        return _FROM_WGS84[kind](lon, lat)
    lon_a, lat_a = _arrays(lon, lat)
    if kind in ("EPSG:4326", "EPSG:4490"):
        return lon_a, lat_a
    tr = pyproj.Transformer.from_crs("EPSG:4326", kind, always_xy=True)
    x, y = tr.transform(lon_a, lat_a)
    return np.asarray(x), np.asarray(y)


def parse_crs(crs: str | int | pyproj.CRS) -> str:
    """Normalise a CRS name: 'gcj02' / 'bd09' for the offsets, else 'EPSG:n' or WKT/PROJ.

    Raises
    ------
    ValueError
        When the name is neither an offset nor something pyproj understands.
    """
    if isinstance(crs, pyproj.CRS):
        epsg = crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else crs.to_wkt()
    if isinstance(crs, int):
        return f"EPSG:{crs}"
    key = str(crs).strip().lower()
    if key in OFFSET_CRS:
        return OFFSET_CRS[key]
    if key in NAMED_CRS:
        return NAMED_CRS[key]
    if key.isdigit():
        return f"EPSG:{key}"
    try:
        parsed = pyproj.CRS.from_user_input(str(crs))
    except pyproj.exceptions.CRSError as exc:
        raise ValueError(
            f"unknown CRS '{crs}': use wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>"
        ) from exc
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg else parsed.to_wkt()


def gk3_zone_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss–Krüger zone, central-meridian form
    (EPSG:4534 = 75°E … EPSG:4554 = 135°E), whose central meridian is nearest ``lon``."""
    cm = 3 * int(round(lon / 3.0))
    cm = min(max(cm, 75), 135)
    return 4534 + (cm - 75) // 3


def metric_crs(lon: float, lat: float) -> pyproj.CRS:
    """The metric CRS to compute in for data centred at (lon, lat), degrees.

    Inside China: the CGCS2000 3-degree Gauss–Krüger zone containing the point
    (central-meridian form, EPSG:4534–4554; axes northing, easting — pyproj with
    ``always_xy`` gives x = easting). Outside: the WGS84 UTM zone.
    """
    if bool(in_china(lon, lat)):
        return pyproj.CRS.from_epsg(gk3_zone_epsg(lon))
    zone = int((lon + 180.0) // 6.0) + 1
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def metric_crs_for(gdf) -> pyproj.CRS:
    """The metric CRS for a GeoDataFrame (any declared CRS), chosen at its bounds' centre."""
    if gdf.crs is None:
        raise ValueError(
            "layer has no CRS: declare one (the crs parameter, e.g. wgs84, gcj02, EPSG:4549)"
        )
    geo = gdf if gdf.crs.is_geographic else gdf.to_crs("EPSG:4326")
    minx, miny, maxx, maxy = geo.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return metric_crs(118.8, 32.0)
    return metric_crs((minx + maxx) / 2.0, (miny + maxy) / 2.0)


def transform_geoseries(geoms, func):
    """Apply a lon/lat array transform to every coordinate of a GeoSeries (vectorised)."""
    import shapely

    def _apply(coords: NDArray) -> NDArray:
        x, y = func(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    out = shapely.transform(np.asarray(geoms.values), _apply)
    return type(geoms)(out, index=geoms.index, crs="EPSG:4326")


def offset_to_wgs84(gdf, crs: str):
    """Return a GeoDataFrame in EPSG:4326 from one whose coordinates are GCJ-02 or BD-09."""
    kind = parse_crs(crs)
    if kind not in _TO_WGS84:
        raise ValueError(f"{crs} is not an offset CRS (gcj02, bd09)")
    out = gdf.copy()
    out = out.set_geometry(transform_geoseries(out.geometry, _TO_WGS84[kind]), crs="EPSG:4326")
    return out


def wgs84_to_offset(gdf, crs: str):
    """Return a copy of an EPSG:4326 GeoDataFrame with coordinates shifted to GCJ-02/BD-09
    (for drawing over Amap or Baidu tiles). The result's CRS stays labelled EPSG:4326."""
    kind = parse_crs(crs)
    if kind not in _FROM_WGS84:
        raise ValueError(f"{crs} is not an offset CRS (gcj02, bd09)")
    geo = gdf.to_crs("EPSG:4326")
    return geo.set_geometry(transform_geoseries(geo.geometry, _FROM_WGS84[kind]))


def to_storage(gdf, declared: str | None = None, storage: str = STORAGE_CRS):
    """Bring a layer into the storage CRS, honouring a declared offset CRS.

    ``declared`` overrides the CRS the file carries (e.g. an Amap CSV is declared gcj02).
    """
    if declared is not None:
        kind = parse_crs(declared)
        if kind in _TO_WGS84:
            if gdf.crs is not None and not gdf.crs.is_geographic:
                raise ValueError(
                    f"{declared} declares lon/lat offsets but the layer is "
                    f"projected ({gdf.crs.name})"
                )
            return offset_to_wgs84(gdf.set_crs("EPSG:4326", allow_override=True), kind)
        gdf = gdf.set_crs(kind, allow_override=True)
    if gdf.crs is None:
        raise ValueError(
            "layer has no CRS: declare one (the crs parameter, e.g. wgs84, gcj02, EPSG:4549)"
        )
    if parse_crs(gdf.crs) == "EPSG:4490":
        return gdf.set_crs(storage, allow_override=True)
    return gdf.to_crs(storage)
