"""Typed flags of delineated grids and communities.

A flag says why a grid (or a community made by :func:`gridgis.delineate.make_communities`)
does not meet a rule. Code reads the :class:`FlagKind`; people read the text
(:meth:`Flag.text`, ``"<kind>: <Chinese detail>"``), which is what the ``flags`` column of
the ``grids`` layer holds. Rewording a detail never changes a grid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class FlagKind(StrEnum):
    """Why a grid is outside a rule (the value is the key written before the text)."""

    BELOW_MIN = "below_min"
    """Fewer households than the minimum and no valid partition was found."""
    COMMUNITY_TOO_SMALL = "community_too_small"
    """The whole community (or street) holds fewer households than one grid's minimum."""
    PART_CUT_OFF = "part_cut_off"
    """A part cut off by unit grids, an arterial or a detached piece holds fewer
    households than the minimum."""
    ABOVE_MAX = "above_max"
    """More households than the maximum and no valid partition was found."""
    ABOVE_MAX_BUILDING = "above_max_building"
    """One building alone holds more households than the maximum (buildings are never cut)."""
    UNIT_ABOVE_MAX = "unit_above_max"
    """A unit grid with residents holds more than the maximum and cannot be divided."""
    MULTIPART = "multipart"
    """The grid's faces do not join into one polygon."""
    CROSSES_ARTERIAL = "crosses_arterial"
    """An avoided road runs through the grid for more than ``grid.min_crossing_m``: the
    band forbade a split along it."""
    NO_HOUSEHOLDS = "no_households"
    """A residential grid without households (open ground that no neighbour could take)."""
    OUT_OF_BAND_AFTER_ASSIGN = "out_of_band_after_assign"
    """Outside the band after buildings straddling a border were assigned by overlap."""


#: Kinds that explain a residential grid out of the band by a fact of the input (so the
#: partition is not blamed for it when comparing attempts).
EXPLAINED = frozenset(
    {
        FlagKind.ABOVE_MAX_BUILDING,
        FlagKind.COMMUNITY_TOO_SMALL,
        FlagKind.PART_CUT_OFF,
    }
)


#: Kinds that say a grid holds fewer households than the band (a refresh that recounts
#: households re-derives every kind of :data:`BELOW_BAND` and :data:`ABOVE_BAND`).
BELOW_BAND = frozenset(
    {
        FlagKind.BELOW_MIN,
        FlagKind.COMMUNITY_TOO_SMALL,
        FlagKind.PART_CUT_OFF,
        FlagKind.NO_HOUSEHOLDS,
    }
)
#: Kinds that say a grid holds more households than the band.
ABOVE_BAND = frozenset({FlagKind.ABOVE_MAX, FlagKind.ABOVE_MAX_BUILDING, FlagKind.UNIT_ABOVE_MAX})


_KIND_VALUES = frozenset(k.value for k in FlagKind)


@dataclass(frozen=True)
class Flag:
    """One reason a grid is outside a rule.

    Attributes
    ----------
    kind
        What is wrong (code reads this).
    detail
        The human text (Chinese), e.g. ``"社区合计 200 户 < 250"``.
    """

    kind: FlagKind
    detail: str

    def text(self) -> str:
        """``"<kind>: <detail>"``, the form written to the ``flags`` column."""
        return f"{self.kind.value}: {self.detail}"


def render(flags: Iterable[Flag]) -> str:
    """The ``flags`` column text of a list of flags (``"; "``-joined, empty when none)."""
    return "; ".join(f.text() for f in flags)


def kinds_in(text: str) -> list[FlagKind]:
    """The kinds named in a rendered ``flags`` text (unknown keys are skipped)."""
    out = []
    for part in filter(None, str(text or "").split("; ")):
        key = part.split(":", 1)[0].strip()
        if key in _KIND_VALUES:
            out.append(FlagKind(key))
    return out
