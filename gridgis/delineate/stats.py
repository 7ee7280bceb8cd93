"""Per-community statistics of delineated grids (the ``community_stats`` layer)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgis.delineate.flags import FlagKind, kinds_in
from gridgis.standards import DEFAULT, Settings

#: Columns of the ``community_stats`` table.
STATS_COLUMNS = [
    "community_code",
    "households",
    "grids",
    "residential_grids",
    "unit_grids",
    "unit_households",
    "in_band",
    "share_in_band",
    "flagged",
    "flags_by_kind",
]


def community_stats(grids: gpd.GeoDataFrame | pd.DataFrame, settings: Settings = DEFAULT):
    """One row per community: households, grids (residential, unit), residential grids in
    the band and their share, flagged grids and flags counted by kind
    (``"below_min=1, crosses_arterial=2"``).

    Parameters
    ----------
    grids
        The ``grids`` layer (``community_code``, ``kind``, ``households``, ``flags``).

    Returns
    -------
    pandas.DataFrame
        :data:`STATS_COLUMNS`, sorted by community code; no geometry.
    """
    lo, hi = settings.grid.min_households, settings.grid.max_households
    if len(grids) == 0:
        return pd.DataFrame({c: [] for c in STATS_COLUMNS})
    g = pd.DataFrame(
        {
            "community_code": grids["community_code"].astype(str).to_numpy(),
            "households": pd.to_numeric(grids["households"], errors="coerce").fillna(0),
            "unit": (grids["kind"].astype(str) == "unit").to_numpy(),
            "flags": grids["flags"].fillna("").astype(str).to_numpy(),
        }
    )
    g["res"] = ~g["unit"]
    g["in_band"] = g["res"] & g["households"].between(lo, hi)
    g["unit_hh"] = np.where(g["unit"], g["households"], 0)
    g["flagged"] = g["flags"] != ""
    agg = g.groupby("community_code", sort=True).agg(
        households=("households", "sum"),
        grids=("households", "size"),
        residential_grids=("res", "sum"),
        unit_grids=("unit", "sum"),
        unit_households=("unit_hh", "sum"),
        in_band=("in_band", "sum"),
        flagged=("flagged", "sum"),
    )
    res = agg["residential_grids"]
    agg["share_in_band"] = np.where(res > 0, (agg["in_band"] / res.clip(lower=1)).round(4), 1.0)
    agg["flags_by_kind"] = _flags_by_kind(g)
    out = agg.reset_index().astype({c: "int64" for c in STATS_COLUMNS[1:7] + ["flagged"]})
    out["flags_by_kind"] = out["flags_by_kind"].fillna("")
    return out[STATS_COLUMNS]


def _flags_by_kind(g: pd.DataFrame) -> pd.Series:
    """Per community: ``"kind=count, …"`` in :class:`FlagKind` order."""
    flagged = g[g["flagged"]]
    if flagged.empty:
        return pd.Series(dtype=object)
    pairs = [
        (cc, k.value)
        for cc, text in zip(flagged["community_code"], flagged["flags"], strict=True)
        for k in kinds_in(text)
    ]
    if not pairs:
        return pd.Series(dtype=object)
    counts = pd.DataFrame(pairs, columns=["cc", "kind"]).value_counts()
    order = {k.value: i for i, k in enumerate(FlagKind)}
    out = {}
    for cc, grp in counts.groupby(level=0):
        items = sorted(((k, int(n)) for (_, k), n in grp.items()), key=lambda x: order[x[0]])
        out[cc] = ", ".join(f"{k}={n}" for k, n in items)
    return pd.Series(out, dtype=object)
