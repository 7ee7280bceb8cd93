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
    rows = []
    for cc, grp in g.groupby("community_code", sort=True):
        counts: dict[str, int] = {}
        for text in grp["flags"]:
            for k in kinds_in(text):
                counts[k.value] = counts.get(k.value, 0) + 1
        res = int(grp["res"].sum())
        rows.append(
            {
                "community_code": cc,
                "households": int(grp["households"].sum()),
                "grids": len(grp),
                "residential_grids": res,
                "unit_grids": int(grp["unit"].sum()),
                "unit_households": int(grp["unit_hh"].sum()),
                "in_band": int(grp["in_band"].sum()),
                "share_in_band": round(float(grp["in_band"].sum()) / res, 4) if res else 1.0,
                "flagged": int(grp["flagged"].sum()),
                "flags_by_kind": ", ".join(
                    f"{k}={counts[k]}" for k in [x.value for x in FlagKind] if k in counts
                ),
            }
        )
    return pd.DataFrame(rows, columns=STATS_COLUMNS)
