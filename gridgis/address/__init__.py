"""Chinese addresses: normalisation, parsing into components, and a matching index.

Addresses arrive messy: full-width digits, Chinese numerals (十二栋三单元), traditional
characters (紅花地), 幢/座/号楼 for 栋, 门 for 单元, with or without province/city/district
in any order, a place name instead of a door plate, a homophone typo from a pinyin
keyboard. The package, one concern per module:

* :mod:`~gridgis.address.normalise`: one normalised text and key (also generated as
  JavaScript for the lookup page);
* :mod:`~gridgis.address.admin`: administrative prefixes;
* :mod:`~gridgis.address.roads`: road names, and comparing them by sound and shape;
* :mod:`~gridgis.address.tail`: the part after the road, as small ordered rules;
* :mod:`~gridgis.address.parser`: :func:`parse` putting them together;
* :mod:`~gridgis.address.index`: :class:`AddressIndex` over standard addresses;
* :mod:`~gridgis.address.match`: the matching stages;
* :mod:`~gridgis.address.policy`: when an answer is confident (named rules).

Corpus reading and parser scoring live in ``benchmarks/bench_parser.py``.
"""

from gridgis.address.components import COMPONENTS, ParsedAddress
from gridgis.address.index import AddressIndex
from gridgis.address.match import LEVELS, Match
from gridgis.address.normalise import (
    Normalised,
    address_key,
    normalise,
    normalise_name,
    normaliser_js,
    numerals_to_digits,
    to_half_width,
    to_simplified,
)
from gridgis.address.parser import parse
from gridgis.address.policy import Rule

__all__ = [
    "COMPONENTS",
    "LEVELS",
    "AddressIndex",
    "Match",
    "Normalised",
    "ParsedAddress",
    "Rule",
    "address_key",
    "normalise",
    "normalise_name",
    "normaliser_js",
    "numerals_to_digits",
    "parse",
    "to_half_width",
    "to_simplified",
]
