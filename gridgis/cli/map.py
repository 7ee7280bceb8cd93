"""``gridgis map``: the three-level grid maps, coverage and lookup pages and public boards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridgis import workflows
from gridgis.cli.app import app
from gridgis.cli.common import (
    DatabaseOpt,
    RulesOpt,
    SetOpt,
    WorkspaceOpt,
    console,
    fail,
    open_workspace,
    progress,
    progress_callback,
)
from gridgis.cli.i18n import t


@app.command("map")
def map_command(
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the pages.")] = Path("maps"),
    basemap: Annotated[
        str,
        typer.Option(
            "--basemap",
            help="Base map: osm, tianditu (needs --tianditu-key), amap (GCJ-02: "
            "overlays are shifted to match), none (offline, no tiles).",
        ),
    ] = "none",
    tianditu_key: Annotated[
        str | None,
        typer.Option("--tianditu-key", envvar="TIANDITU_KEY", help="Tianditu API key (tk)."),
    ] = None,
    boards: Annotated[
        bool, typer.Option("--boards/--no-boards", help="Write one printable A4 board per grid.")
    ] = True,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write interactive maps: index (district), one page per street and per community,
    coverage, address/point lookup, and a printable public board per grid.

    Pages work offline (Leaflet is shipped and copied to OUT/static); only base-map tiles
    come from the network.

    A city with more grids than maps.tiles_above_grids (2,000) is drawn from vector tiles
    instead: index.html holds the city, street (#street=CODE) and community
    (#community=CODE) views, coverage.html and lookup.html too, board.html#grid=CODE any
    grid's board; open them through gridgis serve (after gridgis tiles build for speed).

    Example: [bold]gridgis map --workspace out/demo.gpkg --out maps/ --basemap none[/]
    """
    from gridgis.maps import BASEMAPS

    if basemap not in BASEMAPS:
        fail(f"--basemap {basemap}: use one of {', '.join(BASEMAPS)}")
    if basemap == "tianditu" and not tianditu_key:
        fail("--basemap tianditu needs --tianditu-key KEY (or TIANDITU_KEY)")
    with open_workspace(workspace, database, rules, set_) as (store, settings), progress() as bar:
        site = workflows.make_map(
            store,
            settings,
            out,
            basemap=basemap,
            tianditu_key=tianditu_key,
            boards=boards,
            progress=lambda what: progress_callback(bar, what),
        ).detail
        for note in site.notes:
            console.print(f"  [yellow]{t('note')}[/] {note}")
        console.print(site.summary())
        console.print(f"open {site.index}")


tiles_app = typer.Typer(
    help="Vector tiles of the map layers (Mapbox Vector Tiles, served by gridgis serve "
    "as OGC API – Tiles).",
    no_args_is_help=True,
)
app.add_typer(tiles_app, name="tiles")


@tiles_app.command("build")
def tiles_build(
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="MBTiles file to write (default: beside a GeoPackage workspace, "
            "city.gpkg → city.mbtiles, where gridgis serve looks for it).",
        ),
    ] = None,
    minzoom: Annotated[
        int, typer.Option("--minzoom", min=0, max=22, help="First zoom pre-built.")
    ] = 5,
    maxzoom: Annotated[
        int,
        typer.Option(
            "--maxzoom",
            min=0,
            max=22,
            help="Last zoom pre-built; deeper tiles are made on request by gridgis serve.",
        ),
    ] = 16,
    pmtiles: Annotated[
        Path | None,
        typer.Option(
            "--pmtiles",
            help="Also write the tiles as one PMTiles archive (for a static file server or "
            "object store).",
        ),
    ] = None,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Pre-build the vector tiles of a workspace (streets, communities, grids,
    facilities, buildings, with the attributes the map pages show) into an MBTiles file,
    zoom by zoom with progress.

    gridgis serve answers tiles from city.mbtiles beside city.gpkg while the file was
    built from the workspace as it is now (a changed workspace is encoded per request
    again until the file is rebuilt); zooms outside --minzoom … --maxzoom are encoded per
    request.

    Example: [bold]gridgis tiles build --workspace out/demo.gpkg --minzoom 5 --maxzoom 16[/]
    then [bold]gridgis serve --workspace out/demo.gpkg --maps out/maps[/]
    """
    import time

    from gridgis import tiles

    if minzoom > maxzoom:
        fail(f"--minzoom {minzoom} is above --maxzoom {maxzoom}")
    with open_workspace(workspace, database, rules, set_) as (store, _settings):
        target = out or tiles.mbtiles_path(store)
        if target is None:
            fail("--out FILE.mbtiles is needed for a workspace that is not a GeoPackage")
        t0 = time.perf_counter()

        def said(z: int, done: int, over: int) -> None:
            console.print(
                f"  zoom {z:>2}: {done:,} tiles with features of {over:,} over the city "
                f"({time.perf_counter() - t0:.1f} s)"
            )

        n = tiles.build_mbtiles(store, target, minzoom, maxzoom, progress=said)
        size = Path(target).stat().st_size / 1e6
        console.print(
            f"{n:,} tiles, zooms {minzoom}–{maxzoom}, {size:.1f} MB in {target} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        if pmtiles is not None:
            tiles.write_pmtiles(target, pmtiles)
            console.print(f"PMTiles archive {pmtiles} ({pmtiles.stat().st_size / 1e6:.1f} MB)")
