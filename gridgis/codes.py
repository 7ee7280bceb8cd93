"""Statistical division codes and 15-digit grid codes, checked segment by segment.

* Street code, 9 digits = county 6 + township 3 (township 001–099 street 街道, 100–199
  town 镇, 200–399 township 乡, 400–599 special areas).
* Community code, 12 digits = street 9 + village 3 (village 001–199 residents' committee
  居委会, 200–399 villagers' committee 村委会).
* Grid code, 15 digits = county 6 + street 3 + community 3 + grid sequence 3
  (DB11/T 2157-2023 style).

The ranges live in :class:`gridgis.standards.CodeRules`.
"""

from __future__ import annotations

from gridgis.standards import DEFAULT, Settings

#: Province-level prefixes of the statistical division codes (mainland 11–65, plus 71, 81, 82).
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 "
    "63 64 65 71 81 82".split()
)


class CodeError(ValueError):
    """A division or grid code that fails a segment check; the message names the segment."""


def _digits(code: object, n: int, what: str) -> str:
    s = str(code).strip() if code is not None else ""
    if s.endswith(".0") and s[:-2].isdigit():  # a code read as a float from a spreadsheet
        s = s[:-2]
    if len(s) != n or not s.isdigit():
        raise CodeError(f"{what} '{code}' must be exactly {n} digits")
    return s


def _county(s: str, what: str) -> None:
    if s[:2] not in PROVINCES:
        raise CodeError(f"{what} '{s}': province segment '{s[:2]}' is not a province code")
    if s[2:4] == "00" and s[4:6] != "00":
        raise CodeError(f"{what} '{s}': city segment '{s[2:4]}' is 00 under a county")
    if s[4:6] == "00":
        raise CodeError(f"{what} '{s}': county segment '{s[4:6]}' is 00 (not a county)")


def township_kind(township: int, settings: Settings = DEFAULT) -> str | None:
    """'street', 'town', 'township' or 'special' for a 3-digit township number."""
    r = settings.codes
    for kind, (lo, hi) in (("street", r.street_township_range), ("town", r.town_township_range),
                           ("township", r.rural_township_range),
                           ("special", r.special_township_range)):
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


def validate_community_code(code: object, settings: Settings = DEFAULT,
                            urban_only: bool = False) -> str:
    """Return the 12-digit community (village-level) code, or raise :class:`CodeError`.

    ``urban_only`` requires a residents' committee (village digits 001–199).
    """
    s = _digits(code, 12, "community code")
    validate_street_code(s[:9], settings)
    village = int(s[9:12])
    lo, hi = settings.codes.residents_committee_range
    vlo, vhi = settings.codes.villagers_committee_range
    if urban_only and not lo <= village <= hi:
        raise CodeError(f"community code '{s}': village segment '{s[9:12]}' is not a "
                        f"residents' committee ({lo:03d}–{hi:03d})")
    if not (lo <= village <= hi or vlo <= village <= vhi):
        raise CodeError(f"community code '{s}': village segment '{s[9:12]}' is outside "
                        f"{lo:03d}–{vhi:03d}")
    return s


def validate_grid_code(code: object, settings: Settings = DEFAULT,
                       community_code: object | None = None) -> str:
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
        raise CodeError(f"grid code '{s}': sequence segment '{s[12:15]}' is outside "
                        f"{lo:03d}–{hi:03d}")
    if community_code is not None and s[:12] != str(community_code).strip():
        raise CodeError(f"grid code '{s}' does not start with its community code "
                        f"'{community_code}'")
    return s


def is_valid(kind: str, code: object, settings: Settings = DEFAULT) -> bool:
    """True when ``code`` passes the check for ``kind`` ('street', 'community', 'grid')."""
    check = {"street": validate_street_code, "community": validate_community_code,
             "grid": validate_grid_code}[kind]
    try:
        check(code, settings)
    except CodeError:
        return False
    return True


def grid_code(community_code: str, sequence: int) -> str:
    """Compose a 15-digit grid code from a community code and a sequence number."""
    return f"{community_code}{sequence:03d}"
