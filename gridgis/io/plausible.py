"""Coordinate plausibility: does the declared CRS fit where the features lie?"""

from __future__ import annotations

from typing import Any

from gridgis import layers as L
from gridgis.standards import Settings
from gridgis.store import Store


class CrsCheck:
    """Per-source CRS check bound to a workspace (see :meth:`__call__`)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings

    def __call__(self, options: dict[str, Any], layers: dict[str, L.Validated]) -> None:
        return None
