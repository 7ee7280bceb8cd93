"""Write the whole map site of a workspace: index, street and community pages, coverage,
lookup and the public boards, with the shipped assets copied next to them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgis.maps.common import STATIC_DIR, Basemap, asset_prefix, prepare, render_page

#: Simplification tolerance per level, metres (index, street, community, boards).
TOLERANCE_M = {"index": 12.0, "street": 3.0, "community": 0.5}

#: Layers the site reads from a workspace (absent ones are skipped).
MAP_LAYERS = (
    "streets",
    "communities",
    "grids",
    "buildings",
    "roads",
    "facilities",
    "green_spaces",
    "staff",
    "addresses",
    "coverage",
    "access",
    "coverage_gaps",
    "proposed_sites",
    "service_areas",
    "coverage_findings",
    "proposed_gates",
    "grid_versions",
)


TILED_LAYERS = ("streets", "communities", "grids", "coverage")
"""Layers a city drawn from tiles reads (without boards): the rest comes from the tiles."""


def tiled_layers(store, settings, boards: bool) -> tuple[str, ...] | None:
    """:data:`TILED_LAYERS` when the workspace's grids are more than
    ``maps.tiles_above_grids`` and no boards are to be written (see
    ``maps.tiled_boards``), else None (read :data:`MAP_LAYERS`). Counts the grids from
    the layer's metadata, without reading it."""
    try:
        rows = store.info("grids").rows if store.has("grids") else 0
    except Exception:  # a store without layer metadata: read everything
        return None
    if rows is None or rows <= settings.maps.tiles_above_grids:
        return None
    return None if boards and settings.maps.tiled_boards else TILED_LAYERS


@dataclass
class MapSite:
    """What :func:`write_maps` wrote."""

    out_dir: Path
    pages: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"

    def count(self, folder: str) -> int:
        return sum(1 for p in self.pages if p.parent.name == folder)

    def summary(self) -> str:
        """One line: where the maps are and how many pages of each kind."""
        if any(p.name == "tiles_index.js" for p in self.pages):
            return (
                f"maps in {self.out_dir}/ drawn from vector tiles (open through gridgis serve): "
                f"index.html with {self.count('streets')} streets and "
                f"{self.count('communities')} communities, coverage.html, lookup.html, "
                + (f"{self.count('boards')} boards" if self.count("boards") else "board.html")
            )
        return (
            f"maps in {self.out_dir}/: index.html, {self.count('streets')} street, "
            f"{self.count('communities')} community pages, coverage.html, lookup.html, "
            f"{self.count('boards')} boards"
        )


def _codes(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip()


def _in_polygons(points: np.ndarray, polygons: gpd.GeoDataFrame, key: str) -> pd.Series:
    """Key of the polygon containing each point (STRtree query), NA outside all."""
    out = pd.Series(pd.NA, index=range(len(points)), dtype="string")
    if len(polygons) == 0 or len(points) == 0:
        return out
    tree = shapely.STRtree(polygons.geometry.values)
    pi, gi = tree.query(points, predicate="intersects")
    first = pd.Series(gi, index=pi).groupby(level=0).min()
    out.iloc[first.index.to_numpy()] = polygons[key].astype("string").to_numpy()[first.to_numpy()]
    return out


def attach(
    frame: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame | None, key: str
) -> gpd.GeoDataFrame:
    """``frame`` with ``key`` filled from the polygon containing each row's representative
    point, where the column is missing or empty (e.g. buildings before assignment)."""
    if frame is None or polygons is None or len(frame) == 0 or len(polygons) == 0:
        return frame
    out = frame.copy()
    current = (
        _codes(out[key])
        if key in out.columns
        else pd.Series(pd.NA, index=out.index, dtype="string")
    )
    missing = current.isna().to_numpy()
    if missing.any():
        pts = shapely.point_on_surface(out.geometry.values[missing])
        found = _in_polygons(pts, polygons.to_crs(out.crs) if out.crs else polygons, key)
        current = current.copy()
        current.iloc[np.flatnonzero(missing)] = found.to_numpy()
    out[key] = current.to_numpy()
    return out


def summarise(layers: dict[str, gpd.GeoDataFrame]) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Streets and communities with households, community and grid counts.

    Households come from the grids when present, otherwise from the buildings inside each
    community (by representative point)."""
    streets = layers["streets"].copy()
    comms = layers["communities"].copy()
    comms["community_code"] = _codes(comms["community_code"])
    comms["street_code"] = _codes(comms["street_code"])
    streets["street_code"] = _codes(streets["street_code"])
    grids = layers.get("grids")
    if grids is not None and len(grids):
        g = grids.copy()
        cc = (
            _codes(g["community_code"])
            if "community_code" in g.columns
            else _codes(g["grid_code"]).str[:12]
        )
        hh = pd.to_numeric(g.get("households"), errors="coerce").fillna(0)
        per = (
            pd.DataFrame({"cc": cc, "hh": hh})
            .groupby("cc")
            .agg(households=("hh", "sum"), grid_count=("hh", "size"))
        )
    else:
        b = attach(layers.get("buildings"), comms, "community_code")
        if b is not None and len(b):
            hh = pd.to_numeric(b["households"], errors="coerce").fillna(0)
            per = (
                pd.DataFrame({"cc": b["community_code"], "hh": hh})
                .groupby("cc")
                .agg(households=("hh", "sum"))
            )
        else:
            per = pd.DataFrame({"households": []})
        per["grid_count"] = 0
    comms["households"] = (
        comms["community_code"].map(per["households"]).fillna(0).round().astype(int)
    )
    comms["grid_count"] = comms["community_code"].map(per["grid_count"]).fillna(0).astype(int)
    names = dict(zip(streets["street_code"], streets["name"].astype(str), strict=True))
    comms["street_name"] = comms["street_code"].map(names)
    agg = comms.groupby("street_code").agg(
        households=("households", "sum"),
        grid_count=("grid_count", "sum"),
        community_count=("community_code", "size"),
    )
    for col in agg.columns:
        streets[col] = streets["street_code"].map(agg[col]).fillna(0).astype(int)
    return streets, comms


def streets_from_communities(communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Street polygons as the union of their communities (by ``street_code``), for
    workspaces without a streets layer (e.g. communities made by delineation)."""
    c = communities.copy()
    c["street_code"] = (
        _codes(c["street_code"])
        if "street_code" in c.columns
        else _codes(c["community_code"]).str[:9]
    )
    s = c[["street_code", "geometry"]].dissolve(by="street_code", as_index=False)
    s["name"] = "街道 " + s["street_code"].astype(str)
    return s[["street_code", "name", "geometry"]]


def _group_by(frame: gpd.GeoDataFrame | None, key: str) -> dict[str, gpd.GeoDataFrame]:
    if frame is None or len(frame) == 0 or key not in frame.columns:
        return {}
    return {str(k): v for k, v in frame.groupby(_codes(frame[key]).fillna(""), sort=False)}


def _empty_like(frame: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    if frame is None:
        return gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs="EPSG:4326")
    return frame.iloc[0:0]


def write_maps(
    layers: dict[str, gpd.GeoDataFrame],
    out_dir: str | Path,
    basemap: Basemap = "none",
    tianditu_key: str | None = None,
    city: str = "",
    settings=None,
    boards: bool = True,
    progress: Callable[[int, int], None] | None = None,
    board_date: str | None = None,
) -> MapSite:
    """Write every page of the map site for the given workspace layers.

    Parameters
    ----------
    layers
        Layers by name (see :data:`MAP_LAYERS`); ``streets`` and ``communities`` are
        required, the rest are drawn when present. Geometry in any CRS (drawn in
        EPSG:4326, or shifted to GCJ-02 for ``basemap="amap"``).
    out_dir
        Output folder; ``static/`` (Leaflet etc.) is copied into it, pages reference it by
        relative path so the folder works offline and can be moved as a whole.
    basemap
        ``osm``, ``tianditu`` (with ``tianditu_key``), ``amap`` or ``none``.
    boards
        Also write one printable A4 board per grid under ``boards/``.
    progress
        Optional ``callback(done, total)`` per page.
    board_date
        Write date of the grids layer: a board's effective date when its grid has no
        ``valid_from`` (see :func:`gridgis.maps.boards.effective_date`).

    Returns
    -------
    MapSite
        The written pages and notes (e.g. coverage layers absent).
    """
    from gridgis.standards import DEFAULT

    if layers.get("communities") is None or len(layers["communities"]) == 0:
        raise ValueError(
            "maps need layer 'communities': import it first, delineate communities, or run the demo"
        )
    out = Path(out_dir)
    site = MapSite(out)
    for sub in ("streets", "communities"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        STATIC_DIR,
        out / "static",
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("README.md", "__pycache__"),
    )
    d = _site_layers(layers, site)
    w = _Writer(site, basemap, tianditu_key, settings or DEFAULT, progress)
    tiled = d["grids"] is not None and len(d["grids"]) > w.settings.maps.tiles_above_grids
    if tiled:
        boards = _tiled_boards(w, d, boards)
        w.total = 3 + (len(d["grids"]) if boards else 0)
        c_st, g_st, b_cm, r_cm = _write_tiled_levels(w, d, city, boards)
    else:
        w.total = 3 + len(d["streets"]) + len(d["comms"])
        w.total += len(d["grids"]) if boards and d["grids"] is not None else 0
        _write_index(w, d, city)
        c_st, g_st = _write_streets(w, d)
        b_cm, r_cm = _write_communities(w, d)
    if not tiled:  # the tile site has its coverage and lookup pages
        _write_coverage_and_lookup(w, d, c_st, g_st)
    if boards and d["grids"] is not None:
        _write_boards(w, d, b_cm, r_cm, city, board_date)
    w.write(out / "maps.json", _manifest(site, basemap))
    site.pages.pop()
    return site


def _tiled_boards(w: _Writer, d: dict, boards: bool) -> bool:
    """Whether the boards are written for a city drawn from tiles (see
    ``maps.tiled_boards``); a note when they are not."""
    if boards and not w.settings.maps.tiled_boards:
        w.site.notes.append(
            f"{len(d['grids']):,} grids (more than maps.tiles_above_grids): one board page "
            "for every grid, board.html#grid=<grid_code>, filled through gridgis serve; set "
            "maps.tiled_boards for a static board per grid"
        )
        return False
    return boards


def _write_tiled_levels(w: _Writer, d: dict, city: str, boards: bool) -> tuple:
    """City, street and community levels, coverage and lookup drawn from vector tiles
    (:mod:`gridgis.maps.tiled`); returns what the board pages draw with (buildings and
    roads at the community tolerance, when boards), after two Nones (the coverage and
    lookup layers of the GeoJSON site)."""
    from gridgis.maps.tiled import write_tiled_site

    if w.basemap not in ("osm", "none"):
        w.site.notes.append(
            f"base map {w.basemap}: the pages drawn from vector tiles (WGS 84) show OpenStreetMap "
            "or no base map, not shifted GCJ-02 or Tianditu tiles"
        )
    w.site.pages += write_tiled_site(
        w.site.out_dir,
        d["streets"],
        d["comms"],
        d["grids"],
        w.settings,
        city,
        w.basemap,
        boards=boards,
        coverage=d["geo"].get("coverage"),
    )
    w.tick()
    w.tick()
    w.tick()
    b_cm = r_cm = None
    if boards:
        tol = TOLERANCE_M["community"]
        b = d["buildings"]
        b_cm = prepare(b, tol, w.basemap) if b is not None else None
        r_cm = prepare(d["roads"], tol, w.basemap) if d["roads"] is not None else None
    return None, None, b_cm, r_cm


@dataclass
class _Writer:
    """What every page writer shares: the site, drawing options and progress."""

    site: MapSite
    basemap: Basemap
    tianditu_key: str | None
    settings: object
    progress: Callable[[int, int], None] | None
    total: int = 0
    done: int = 0

    def write(self, path: Path, page: str) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
        self.site.pages.append(path)

    def tick(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total)


def _site_layers(layers: dict, site: MapSite) -> dict:
    """Layers in lon/lat with codes normalised, streets and communities summarised,
    buildings, facilities and green spaces attached to their community (and grid)."""
    if layers.get("streets") is None or len(layers["streets"]) == 0:
        layers = dict(layers)
        layers["streets"] = streets_from_communities(layers["communities"])
        site.notes.append(
            "no 'streets' layer: streets drawn as the union of their communities (street_code)"
        )
    layers = {k: v for k, v in layers.items() if v is not None}
    geo = {
        k: (v.to_crs("EPSG:4326") if isinstance(v, gpd.GeoDataFrame) and v.crs is not None else v)
        for k, v in layers.items()
    }
    streets, comms = summarise(geo)
    grids = geo.get("grids")
    if grids is not None and len(grids):
        grids = grids.copy()
        grids["grid_code"] = _codes(grids["grid_code"])
        if "community_code" not in grids.columns:
            grids["community_code"] = grids["grid_code"].str[:12]
        grids["community_code"] = _codes(grids["community_code"])
    else:
        grids = None
        site.notes.append(
            "no 'grids' layer: pages show streets and communities only (run the delineation)"
        )
    buildings = attach(geo.get("buildings"), comms, "community_code")
    if grids is not None:
        buildings = attach(buildings, grids, "grid_code")
    return {
        "geo": geo,
        "streets": streets,
        "comms": comms,
        "grids": grids,
        "buildings": buildings,
        "facilities": attach(geo.get("facilities"), comms, "community_code"),
        "green": attach(geo.get("green_spaces"), comms, "community_code"),
        "roads": geo.get("roads"),
        "street_names": dict(zip(streets["street_code"], streets["name"].astype(str), strict=True)),
    }


def _write_index(w: _Writer, d: dict, city: str) -> None:
    from gridgis.maps.levels import index_map

    tol = TOLERANCE_M["index"]
    s_idx = prepare(d["streets"], tol, w.basemap, coverage=True)
    c_idx = prepare(d["comms"], tol, w.basemap, coverage=True)
    m = index_map(
        s_idx, c_idx, w.basemap, w.tianditu_key, asset_prefix(0), city, rules=w.settings.maps
    )
    w.write(w.site.out_dir / "index.html", render_page(m))
    w.tick()


def _write_streets(w: _Writer, d: dict) -> tuple:
    """Street pages; returns the communities and grids prepared at the street tolerance."""
    from gridgis.maps.levels import street_map

    tol = TOLERANCE_M["street"]
    grids = d["grids"]
    c_st = prepare(d["comms"], tol, w.basemap, coverage=True)
    g_st = prepare(grids, tol, w.basemap, coverage=True) if grids is not None else None
    grids_by_comm = _group_by(g_st, "community_code")
    for _, street in d["streets"].iterrows():
        code = str(street["street_code"])
        cs = c_st[c_st["street_code"] == code]
        gs = [grids_by_comm[c] for c in cs["community_code"] if c in grids_by_comm]
        gsel = pd.concat(gs) if gs else _empty_like(g_st if g_st is not None else cs)
        if len(cs) == 0:
            w.site.notes.append(f"street {code} has no communities: page skipped")
            continue
        m = street_map(
            street, cs, gsel, w.basemap, w.tianditu_key, asset_prefix(1), rules=w.settings.maps
        )
        w.write(w.site.out_dir / "streets" / f"{code}.html", render_page(m))
        w.tick()
    return c_st, g_st


def _write_communities(w: _Writer, d: dict) -> tuple:
    """Community pages; returns the buildings and roads prepared at the community
    tolerance (the boards draw them too)."""
    from gridgis.maps.levels import community_map

    tol, bm = TOLERANCE_M["community"], w.basemap
    grids, buildings, roads = d["grids"], d["buildings"], d["roads"]
    facilities, green = d["facilities"], d["green"]
    c_cm = prepare(d["comms"], tol, bm, coverage=True)
    g_cm = prepare(grids, tol, bm, coverage=True) if grids is not None else None
    b_cm = prepare(buildings, tol, bm) if buildings is not None else None
    r_cm = prepare(roads, tol, bm) if roads is not None else None
    f_cm = prepare(facilities, 0.0, bm) if facilities is not None else None
    gr_cm = prepare(green, tol, bm) if green is not None else None
    g_by = _group_by(g_cm, "community_code")
    b_by = _group_by(b_cm, "community_code")
    f_by = _group_by(f_cm, "community_code")
    gr_by = _group_by(gr_cm, "community_code")
    road_pairs = (
        r_cm.sindex.query(c_cm.geometry.values, predicate="intersects")
        if r_cm is not None and len(r_cm)
        else np.empty((2, 0), dtype=int)
    )
    roads_by = pd.Series(road_pairs[1]).groupby(road_pairs[0]).agg(list).to_dict()
    for i, (_, comm) in enumerate(c_cm.iterrows()):
        code = str(comm["community_code"])
        empty_g = _empty_like(g_cm if g_cm is not None else c_cm)
        m = community_map(
            comm,
            g_by.get(code, empty_g),
            b_by.get(code, _empty_like(b_cm)),
            r_cm.iloc[roads_by.get(i, [])] if r_cm is not None else _empty_like(None),
            f_by.get(code, _empty_like(f_cm)),
            gr_by.get(code, _empty_like(gr_cm)),
            d["street_names"].get(str(comm["street_code"]), ""),
            bm,
            w.tianditu_key,
            asset_prefix(1),
            rules=w.settings.maps,
        )
        w.write(w.site.out_dir / "communities" / f"{code}.html", render_page(m))
        w.tick()
    return b_cm, r_cm


def _write_coverage_and_lookup(w: _Writer, d: dict, c_st, g_st) -> None:
    from gridgis.maps.coverage import coverage_map
    from gridgis.maps.lookup import lookup_map

    geo = d["geo"]
    cov_layers = {
        k: geo.get(k)
        for k in (
            "coverage",
            "access",
            "coverage_gaps",
            "proposed_sites",
            "service_areas",
            "coverage_findings",
            "proposed_gates",
        )
    }
    m, notes = coverage_map(
        c_st,
        d["buildings"],
        d["facilities"],
        cov_layers,
        w.settings,
        w.basemap,
        w.tianditu_key,
        asset_prefix(0),
        green_spaces=d["green"],
    )
    w.site.notes += notes
    w.write(w.site.out_dir / "coverage.html", render_page(m))
    w.tick()
    m = lookup_map(
        c_st,
        g_st,
        d["streets"],
        geo.get("addresses"),
        geo.get("staff"),
        w.basemap,
        w.tianditu_key,
        asset_prefix(0),
        grids_lonlat=d["grids"],
        settings=w.settings,
    )
    w.write(w.site.out_dir / "lookup.html", render_page(m))
    w.tick()


def _write_boards(w: _Writer, d: dict, b_cm, r_cm, city: str, board_date: str | None) -> None:
    """One board per grid, with its buildings, the roads and grids around it (四至)."""
    from gridgis.maps.boards import board_page, with_valid_from

    (w.site.out_dir / "boards").mkdir(exist_ok=True)
    comms = d["comms"]
    grids = with_valid_from(d["grids"], d["geo"].get("grid_versions"))
    staff = d["geo"].get("staff")
    comm_names = dict(zip(comms["community_code"], comms["name"].astype(str), strict=True))
    comm_street = dict(zip(comms["community_code"], comms["street_code"], strict=True))
    gb = prepare(grids, TOLERANCE_M["community"], w.basemap, coverage=True)
    bb_by = _group_by(b_cm, "grid_code") if b_cm is not None else {}
    staff_by = _group_by(staff, "grid_code") if staff is not None else {}
    staff_comm = _group_by(staff, "community_code") if staff is not None else {}
    bounds = gpd.GeoSeries(gb.geometry.envelope, crs="EPSG:4326")
    r_pairs = (
        r_cm.sindex.query(bounds.values, predicate="intersects")
        if r_cm is not None and len(r_cm)
        else np.empty((2, 0), dtype=int)
    )
    r_near = pd.Series(r_pairs[1]).groupby(r_pairs[0]).agg(list).to_dict()
    n_pairs = gb.sindex.query(gb.geometry.values, predicate="intersects")
    n_pairs = n_pairs[:, n_pairs[0] != n_pairs[1]]
    n_near = pd.Series(n_pairs[1]).groupby(n_pairs[0]).agg(list).to_dict()
    for i, (_, grid) in enumerate(gb.iterrows()):
        code = str(grid["grid_code"])
        cc = str(grid["community_code"])
        sc = str(comm_street.get(cc, code[:9]))
        page = board_page(
            grid,
            bb_by.get(code, _empty_like(b_cm)),
            staff_by.get(code),
            staff_comm.get(cc),
            community_name=comm_names.get(cc, ""),
            street_name=d["street_names"].get(sc, ""),
            street_code=sc,
            city=city,
            prefix=asset_prefix(1),
            roads=r_cm.iloc[r_near.get(i, [])] if r_cm is not None else None,
            neighbours=gb.iloc[n_near.get(i, [])],
            rules=w.settings.board,
            written=board_date,
        )
        w.write(w.site.out_dir / "boards" / f"{code}.html", page)
        w.tick()


def _manifest(site: MapSite, basemap: str) -> str:
    import json

    rel = [str(p.relative_to(site.out_dir)) for p in site.pages]
    return json.dumps(
        {"basemap": basemap, "pages": rel, "notes": site.notes}, ensure_ascii=False, indent=1
    )
