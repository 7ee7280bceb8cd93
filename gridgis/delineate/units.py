"""Unit grids (单位网格): institutions large enough to be a grid of their own.

Faces inside an institution meeting the unit-grid criteria (:func:`qualifies_as_unit`)
form a ``unit`` grid, with the household-free margin of its block
(``grid.unit_margin_share``) unless that would cut the housing apart; smaller institutions
stay in the residential faces and so join a residential grid.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from gridgis.delineate.graph import Adjacency
from gridgis.standards import DEFAULT, Settings


def qualifies_as_unit(institutions: gpd.GeoDataFrame, settings: Settings = DEFAULT) -> np.ndarray:
    """Institutions that become unit grids (单位网格).

    An institution qualifies when its ``kind`` is in ``settings.grid.unit_kinds``, its area
    is at least ``unit_min_area_m2`` and its management scale is large: ``staff`` ≥
    ``unit_min_staff`` when staff is known, else ``floor_area_m2`` ≥
    ``unit_min_floor_area_m2`` when that is known (area alone decides when neither is).

    Parameters
    ----------
    institutions
        Layer ``institutions`` in a metric CRS (areas in m²).
    """
    g = settings.grid
    if institutions is None or len(institutions) == 0:
        return np.zeros(0, dtype=bool)
    kind_ok = institutions["kind"].astype("string").isin(g.unit_kinds).fillna(False).to_numpy()
    area_ok = institutions.geometry.area.to_numpy() >= g.unit_min_area_m2

    def numeric(col: str) -> np.ndarray:
        if col not in institutions:
            return np.full(len(institutions), np.nan)
        return pd.to_numeric(institutions[col], errors="coerce").astype(float).to_numpy()

    staff, floor = numeric("staff"), numeric("floor_area_m2")
    scale_ok = np.where(
        ~np.isnan(staff),
        staff >= g.unit_min_staff,
        np.where(~np.isnan(floor), floor >= g.unit_min_floor_area_m2, True),
    )
    return kind_ok & area_ok & scale_ok


def unit_faces(
    faces: np.ndarray, units: list[tuple], graph: Adjacency, min_piece_m2: float
) -> list[list[list[int]]]:
    """Faces of each unit grid institution, in pieces: the faces whose interior point lies
    in the institution, split along avoided lines (an arterial through a campus parts it)
    into connected pieces; pieces under ``min_piece_m2`` (``grid.unit_min_piece_m2``) stay
    with the surrounding grids."""
    out: list[list[list[int]]] = [[] for _ in units]
    if not units:
        return out
    rp = shapely.point_on_surface(faces)
    ui = np.array([u for u, _ in units], dtype=object)
    fi, uj = STRtree(ui).query(rp, predicate="within")
    face_unit = np.full(len(faces), -1, dtype=np.int64)
    face_unit[fi] = uj
    for j in range(len(units)):
        fs = np.flatnonzero(face_unit == j)
        if len(fs) == 0:
            continue
        comps = graph.components(fs.tolist(), allow_avoid=False)
        areas = [float(shapely.area(faces[c]).sum()) for c in comps]
        out[j] = [
            c
            for c, a in sorted(zip(comps, areas, strict=True), key=lambda x: -x[1])
            if a >= min_piece_m2
        ]
    return out


def grab_margins(
    faces: np.ndarray,
    face_region: np.ndarray,
    face_households: np.ndarray,
    edges: np.ndarray,
    length: np.ndarray,
    graph: Adjacency,
    share: float,
) -> np.ndarray:
    """Open ground around an institution (faces without households, not yet in a grid)
    sharing at least ``share`` of its outline with a unit grid joins that unit grid,
    unless that would cut the residential faces apart. Returns the new face -> region."""
    if not len(edges) or not (face_region >= 0).any():
        return face_region
    perim = shapely.length(faces)
    for _ in range(2):
        ra, rb = face_region[edges[:, 0]], face_region[edges[:, 1]]
        grab = np.full(len(faces), -1, dtype=np.int64)
        best_len = np.zeros(len(faces))
        for (fa, fb), ln, ga, gb in zip(edges, length, ra, rb, strict=True):
            for f, g_ in ((fa, gb), (fb, ga)):
                free = face_region[f] < 0 and g_ >= 0 and face_households[f] == 0
                if free and ln >= share * perim[f] and ln > best_len[f]:
                    grab[f], best_len[f] = g_, ln
        changed = False
        for g_ in np.unique(grab[grab >= 0]):
            trial = face_region.copy()
            trial[grab == g_] = g_
            if graph.n_components(trial < 0) <= graph.n_components(face_region < 0):
                face_region = trial
                changed = True
        if not changed:
            break
    return face_region
