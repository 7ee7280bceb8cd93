"""The real street (街道) communities are made in: its code from the national division
table (:mod:`gridgis.divisions`) and the committee codes to keep clear of."""

from __future__ import annotations

import numpy as np

from gridgis.errors import InputError

#: Approximate extent (lon min, lat min, lon max, lat max, degrees) of each province-level
#: division by its 2-digit code. Used only to choose among streets of the same name in
#: different provinces (学院路街道 is in Beijing, Harbin and Shaoyang) from where the data
#: lie; extents overlap (Beijing lies inside Hebei's), so a tie is still refused.
PROVINCE_EXTENTS: dict[str, tuple[float, float, float, float]] = {
    "11": (115.4, 39.4, 117.5, 41.1),
    "12": (116.7, 38.5, 118.1, 40.3),
    "13": (113.4, 36.0, 119.9, 42.7),
    "14": (110.2, 34.5, 114.6, 40.8),
    "15": (97.1, 37.4, 126.1, 53.4),
    "21": (118.8, 38.7, 125.8, 43.5),
    "22": (121.6, 40.8, 131.3, 46.3),
    "23": (121.2, 43.4, 135.1, 53.6),
    "31": (120.8, 30.6, 122.2, 31.9),
    "32": (116.3, 30.7, 121.9, 35.2),
    "33": (118.0, 27.0, 123.0, 31.2),
    "34": (114.9, 29.4, 119.7, 34.7),
    "35": (115.8, 23.5, 120.7, 28.4),
    "36": (113.5, 24.5, 118.5, 30.1),
    "37": (114.8, 34.4, 122.7, 38.4),
    "41": (110.3, 31.4, 116.7, 36.4),
    "42": (108.3, 29.0, 116.1, 33.3),
    "43": (108.8, 24.6, 114.3, 30.1),
    "44": (109.6, 20.2, 117.3, 25.5),
    "45": (104.4, 20.9, 112.1, 26.4),
    "46": (108.6, 18.1, 111.1, 20.2),
    "50": (105.3, 28.1, 110.2, 32.2),
    "51": (97.3, 26.0, 108.5, 34.3),
    "52": (103.6, 24.6, 109.6, 29.2),
    "53": (97.5, 21.1, 106.2, 29.3),
    "54": (78.4, 26.8, 99.1, 36.5),
    "61": (105.5, 31.7, 111.3, 39.6),
    "62": (92.1, 32.6, 108.7, 42.8),
    "63": (89.4, 31.6, 103.1, 39.2),
    "64": (104.3, 35.2, 107.7, 39.4),
    "65": (73.5, 34.4, 96.4, 49.2),
    "71": (119.3, 21.9, 122.1, 25.3),
    "81": (113.8, 22.1, 114.5, 22.6),
    "82": (113.5, 22.1, 113.6, 22.2),
}


def _near(code: str, lon: float, lat: float) -> bool:
    x0, y0, x1, y1 = PROVINCE_EXTENTS.get(code[:2], (0.0, 0.0, -1.0, -1.0))
    return x0 <= lon <= x1 and y0 <= lat <= y1


def resolve_street(
    name_or_code: str, county: str | None = None, lonlat: tuple[float, float] | None = None
) -> tuple[str, set[str]]:
    """(9-digit street code, committee codes the national table gives it).

    Parameters
    ----------
    name_or_code
        ``110108010`` or ``学院路街道``.
    county
        County/district code or unique name to look in (the parameter of
        :func:`gridgis.divisions.street_code_for`).
    lonlat
        Where the data lie (EPSG:4326): a name several provinces share is resolved to the
        one street whose province extent holds this point.

    Raises
    ------
    InputError, NotFoundError, DivisionTableMissing
        From :mod:`gridgis.divisions`: ambiguous, unknown, or no table installed.
    """
    from gridgis.divisions import community_codes_of, street_code_for, table

    text = str(name_or_code).strip()
    try:
        code = street_code_for(text, county)
    except InputError:
        if county or lonlat is None or text.isdigit():
            raise
        hits = [d for d in table().streets_named(text) if _near(d.code, *lonlat)]
        if len(hits) != 1:
            raise
        code = hits[0].code
    return code, set(community_codes_of(code))


def data_lonlat(buildings) -> tuple[float, float] | None:
    """Centre (lon, lat) of a building layer's extent, or None when it is empty."""
    if buildings is None or len(buildings) == 0:
        return None
    x0, y0, x1, y1 = buildings.to_crs("EPSG:4326").total_bounds
    if not np.isfinite([x0, y0, x1, y1]).all():
        return None
    return (float(x0 + x1) / 2, float(y0 + y1) / 2)


def default_street_reserved(county: str) -> set[str]:
    """Committee codes the national table gives street ``<county>001``, the default
    street of communities made with a county code only: generated codes skip them, so
    they never take a real committee's code. Empty when the table is not installed."""
    from gridgis.divisions import available, community_codes_of

    county = str(county)
    if not available() or not county.isdigit() or len(county) != 6:
        return set()
    return set(community_codes_of(f"{county}001"))
