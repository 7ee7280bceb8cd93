"""Statistical division codes and 15-digit grid codes, checked segment by segment.

* Street code, 9 digits = county 6 + township 3 (township 001–099 street 街道, 100–199
  town 镇, 200–399 township 乡, 400–599 special areas).
* Community code, 12 digits = street 9 + village 3 (village 001–199 residents' committee
  居委会, 200–399 villagers' committee 村委会, 400–499 and 500–599 units like them,
  类似居委会 / 类似村委会, as the NBS coding rules and the 2023 code table have them).
* Grid code, 15 digits = county 6 + street 3 + community 3 + grid sequence 3
  (DB11/T 2157-2023 style).

The ranges live in :class:`gridgis.standards.CodeRules`.
"""

from __future__ import annotations

from gridgis.errors import InputError
from gridgis.standards import DEFAULT, Settings

#: Province-level prefixes of the statistical division codes (mainland 11–65, plus 71, 81, 82).
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 "
    "63 64 65 71 81 82".split()
)


#: Prefecture-level cities with no county level (不设区的地级市): their townships hang
#: directly under county segment 00 (东莞 441900, 中山 442000, 儋州 460400, 嘉峪关 620200).
CITIES_WITHOUT_COUNTIES = frozenset({"441900", "442000", "460400", "620200"})


class CodeError(InputError):
    """A division or grid code that fails a segment check; the message names the segment."""


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def _digits(code: object, n: int, what: str) -> str:
    s = str(code).strip().translate(_FULLWIDTH_DIGITS) if code is not None else ""
    if s.endswith(".0") and s[:-2].isdigit():  # a code read as a float from a spreadsheet
        s = s[:-2]
    if len(s) != n or not (s.isascii() and s.isdigit()):
        raise CodeError(f"{what} '{code}' must be exactly {n} digits")
    return s


def _county(s: str, what: str) -> None:
    if s[:2] not in PROVINCES:
        raise CodeError(f"{what} '{s}': province segment '{s[:2]}' is not a province code")
    if s[2:4] == "00" and s[4:6] != "00":
        raise CodeError(f"{what} '{s}': city segment '{s[2:4]}' is 00 under a county")
    if s[4:6] == "00" and s[:6] not in CITIES_WITHOUT_COUNTIES:
        raise CodeError(f"{what} '{s}': county segment '{s[4:6]}' is 00 (not a county)")


def township_kind(township: int, settings: Settings = DEFAULT) -> str | None:
    """'street', 'town', 'township' or 'special' for a 3-digit township number."""
    r = settings.codes
    for kind, (lo, hi) in (
        ("street", r.street_township_range),
        ("town", r.town_township_range),
        ("township", r.rural_township_range),
        ("special", r.special_township_range),
    ):
        if lo <= township <= hi:
            return kind
    return None


def validate_street_code(code: object, settings: Settings = DEFAULT) -> str:
    """Return the 9-digit street (township-level) code, or raise :class:`CodeError`."""
    s = _digits(code, 9, "street code")
    _county(s, "street code")
    if township_kind(int(s[6:9]), settings) is None:
        raise CodeError(f"street code '{s}': township segment '{s[6:9]}' is outside 001–599")
    return s


def validate_community_code(
    code: object, settings: Settings = DEFAULT, urban_only: bool = False
) -> str:
    """Return the 12-digit community (village-level) code, or raise :class:`CodeError`.

    ``urban_only`` requires a residents' committee (village digits 001–199) or a unit
    like one (400–499).
    """
    s = _digits(code, 12, "community code")
    try:
        validate_street_code(s[:9], settings)
    except CodeError as exc:
        raise CodeError(f"community code '{s}': {exc}") from exc
    kind = village_kind(int(s[9:12]), settings)
    if kind is None:
        lo = settings.codes.residents_committee_range[0]
        hi = settings.codes.quasi_villagers_committee_range[1]
        raise CodeError(
            f"community code '{s}': village segment '{s[9:12]}' is outside {lo:03d}–{hi:03d}"
        )
    if urban_only and kind not in ("residents", "quasi_residents"):
        lo, hi = settings.codes.residents_committee_range
        qlo, qhi = settings.codes.quasi_residents_committee_range
        raise CodeError(
            f"community code '{s}': village segment '{s[9:12]}' is not a "
            f"residents' committee ({lo:03d}–{hi:03d}, or {qlo:03d}–{qhi:03d} "
            f"for units like one)"
        )
    return s


def village_kind(village: int, settings: Settings = DEFAULT) -> str | None:
    """'residents', 'villagers', 'quasi_residents' or 'quasi_villagers' for a 3-digit
    village number (居委会, 村委会, 类似居委会, 类似村委会), None outside the ranges."""
    r = settings.codes
    for kind, (lo, hi) in (
        ("residents", r.residents_committee_range),
        ("villagers", r.villagers_committee_range),
        ("quasi_residents", r.quasi_residents_committee_range),
        ("quasi_villagers", r.quasi_villagers_committee_range),
    ):
        if lo <= village <= hi:
            return kind
    return None


def validate_grid_code(
    code: object, settings: Settings = DEFAULT, community_code: object | None = None
) -> str:
    """Return the 15-digit grid code, or raise :class:`CodeError`.

    The grid code's first 12 digits must form a valid community code and, when
    ``community_code`` is given, equal it.
    """
    s = _digits(code, 15, "grid code")
    try:
        validate_community_code(s[:12], settings)
    except CodeError as exc:
        raise CodeError(f"grid code '{s}': {exc}") from exc
    seq = int(s[12:15])
    lo, hi = settings.codes.grid_sequence_range
    if not lo <= seq <= hi:
        raise CodeError(
            f"grid code '{s}': sequence segment '{s[12:15]}' is outside {lo:03d}–{hi:03d}"
        )
    if community_code is not None and s[:12] != str(community_code).strip():
        raise CodeError(
            f"grid code '{s}' does not start with its community code '{community_code}'"
        )
    return s


def is_valid(kind: str, code: object, settings: Settings = DEFAULT) -> bool:
    """True when ``code`` passes the check for ``kind`` ('street', 'community', 'grid')."""
    check = {
        "street": validate_street_code,
        "community": validate_community_code,
        "grid": validate_grid_code,
    }[kind]
    try:
        check(code, settings)
    except CodeError:
        return False
    return True


def grid_code(community_code: str, sequence: int, settings: Settings = DEFAULT) -> str:
    """Compose a 15-digit grid code from a community code and a sequence number.

    Raises
    ------
    CodeError
        When the sequence is outside 001–999 (a community has at most 999 grids) or the
        community code is not 12 digits.
    """
    lo, hi = settings.codes.grid_sequence_range
    if not lo <= int(sequence) <= hi:
        raise CodeError(
            f"grid sequence {sequence} of community '{community_code}' is outside {lo:03d}–{hi:03d}"
        )
    return f"{_digits(community_code, 12, 'community code')}{int(sequence):03d}"


# --------------------------------------------------------------------------------------
# Grid numbering and stable recoding
# --------------------------------------------------------------------------------------

REGISTRY_COLUMNS = ["grid_code", "community_code", "issued_at", "retired_at", "status"]
"""Columns of the ``code_registry`` table: every grid code ever issued, with its issue and
retirement time (ISO 8601, UTC) and ``status`` ``active`` or ``retired``."""


def number_grids(grids, group: str = "community_code"):
    """Sequence numbers 1…n of grids within each group, west to east then north to south.

    The ordering, precisely: within a group (community), grids are put in rows by their
    centroid's northing, counted down from the group's northernmost centroid in bands of
    height ``sqrt(total grid area / number of grids)`` (the side of an average grid); rows
    are numbered north to south and, inside a row, grids west to east by centroid easting
    (ties by northing, north first). So a community reads like a page.

    Parameters
    ----------
    grids
        GeoDataFrame in a metric (projected) CRS with a ``group`` column.

    Returns
    -------
    numpy.ndarray
        1-based sequence per row of ``grids`` (same order).
    """
    import numpy as np
    import shapely

    n = len(grids)
    seq = np.zeros(n, dtype=np.int64)
    if n == 0:
        return seq
    geoms = grids.geometry.to_numpy()
    cen = shapely.centroid(geoms)
    cx, cy = shapely.get_x(cen), shapely.get_y(cen)
    area = shapely.area(geoms)
    keys = grids[group].astype(str).to_numpy()
    for key in np.unique(keys):
        idx = np.flatnonzero(keys == key)
        band = max(float(np.sqrt(area[idx].sum() / len(idx))), 1e-9)
        row = np.floor((cy[idx].max() - cy[idx]) / band)
        order = np.lexsort((-cy[idx], cx[idx], row))
        seq[idx[order]] = np.arange(1, len(idx) + 1)
    return seq


class Recoded:
    """The outcome of :func:`recode`: ``codes`` (one per new grid, in row order),
    ``kept`` (True where a previous code was kept), ``registry`` (updated table)."""

    def __init__(self, codes, kept, registry) -> None:
        self.codes = codes
        self.kept = kept
        self.registry = registry


def recode(
    new,
    previous=None,
    settings: Settings = DEFAULT,
    registry=None,
    issued_at: str | None = None,
    communities=None,
) -> Recoded:
    """Codes for newly delineated grids that keep printed codes stable.

    A new grid keeps the code of a previous grid of the same community when their
    intersection-over-union is at least ``settings.grid.recode_min_iou`` (pairs matched
    greedily, highest IoU first, one to one). Every other new grid gets a fresh sequence
    number above the highest ever issued in its community (previous grids and the
    registry, retired codes included), in :func:`number_grids` order, so a retired code is
    never reused. Previous codes not kept are retired in the registry.

    Parameters
    ----------
    new
        GeoDataFrame of new grids with ``community_code`` (any CRS; reprojected to the
        metric CRS of the data for areas).
    previous
        Earlier grids with ``grid_code`` and ``community_code`` (or ``None``).
    registry
        The ``code_registry`` table (:data:`REGISTRY_COLUMNS`) or ``None``.
    issued_at
        Time stamp for new entries (default now, UTC, ISO 8601).

    Returns
    -------
    Recoded

    Raises
    ------
    CodeError
        When a community would need a sequence above the allowed range (999).
    """
    from datetime import UTC, datetime

    import numpy as np
    import pandas as pd
    import shapely

    from gridgis.crs import metric_crs_for

    now = issued_at or datetime.now(UTC).isoformat(timespec="seconds")
    reg = (
        pd.DataFrame({c: pd.Series(dtype="string") for c in REGISTRY_COLUMNS})
        if registry is None or len(registry) == 0
        else registry[REGISTRY_COLUMNS].astype("string").copy()
    )
    n = len(new)
    codes = np.empty(n, dtype=object)
    kept = np.zeros(n, dtype=bool)
    if n == 0:
        return Recoded(codes, kept, reg)
    crs = new.crs if new.crs is not None and not new.crs.is_geographic else metric_crs_for(new)
    nm = new.to_crs(crs) if new.crs is not None else new
    ncomm = nm["community_code"].astype(str).to_numpy()
    prev_codes = np.empty(0, dtype=object)
    if previous is not None and len(previous):
        pm = previous.to_crs(crs)
        prev_codes = pm["grid_code"].astype(str).to_numpy()
        pcomm = (
            pm["community_code"].astype(str)
            if "community_code" in pm
            else pm["grid_code"].astype(str).str[:12]
        ).to_numpy()
        ngeo = shapely.make_valid(nm.geometry.to_numpy())
        pgeo = shapely.make_valid(pm.geometry.to_numpy())
        ni, pi = shapely.STRtree(pgeo).query(ngeo, predicate="intersects")
        same = ncomm[ni] == pcomm[pi]
        ni, pi = ni[same], pi[same]
        inter = shapely.area(shapely.intersection(ngeo[ni], pgeo[pi]))
        union = shapely.area(ngeo[ni]) + shapely.area(pgeo[pi]) - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        ok = iou >= settings.grid.recode_min_iou
        used_p: set[int] = set()
        for k in np.argsort(-iou[ok], kind="stable"):
            a, b = int(ni[ok][k]), int(pi[ok][k])
            if kept[a] or b in used_p:
                continue
            codes[a] = prev_codes[b]
            kept[a] = True
            used_p.add(b)
        retired = [c for j, c in enumerate(prev_codes) if j not in used_p]
    else:
        retired = []
    # highest sequence ever issued per community
    ever = list(reg["grid_code"].dropna().astype(str)) + list(prev_codes)
    top: dict[str, int] = {}
    for c in ever:
        if len(c) == 15 and c.isdigit():
            top[c[:12]] = max(top.get(c[:12], 0), int(c[12:]))
    seq = number_grids(nm.assign(community_code=ncomm))
    lo, hi = settings.codes.grid_sequence_range
    for i in np.lexsort((seq, ncomm)):
        if kept[i]:
            continue
        nxt = max(top.get(ncomm[i], lo - 1) + 1, lo)
        if nxt > hi:
            raise CodeError(f"community {ncomm[i]}: no grid sequence left above {hi:03d}")
        top[ncomm[i]] = nxt
        codes[i] = grid_code(ncomm[i], nxt)
    # registry: retire dropped codes, issue fresh ones, keep kept ones active
    if len(reg):
        gone = reg["grid_code"].isin(retired) & (reg["status"] == "active")
        reg.loc[gone, "status"] = "retired"
        reg.loc[gone, "retired_at"] = now
    known = set(reg["grid_code"].dropna().astype(str))
    add = [
        {
            "grid_code": c,
            "community_code": c[:12],
            "issued_at": now,
            "retired_at": pd.NA,
            "status": "active",
        }
        for c in codes
        if c not in known
    ]
    # previous codes missing from the registry (grids imported without one): record them
    for c in prev_codes:
        if c not in known and c not in {r["grid_code"] for r in add}:
            add.append(
                {
                    "grid_code": c,
                    "community_code": c[:12],
                    "issued_at": pd.NA,
                    "retired_at": now if c in retired else pd.NA,
                    "status": "retired" if c in retired else "active",
                }
            )
    if add:
        reg = pd.concat(
            [reg, pd.DataFrame(add, columns=REGISTRY_COLUMNS).astype("string")], ignore_index=True
        )
    reg = reg.sort_values("grid_code").reset_index(drop=True)
    return Recoded(codes, kept, reg)
