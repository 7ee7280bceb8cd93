"""``gridgis import``: bring planners' files into a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gridgis.cli.app import app
from gridgis.cli.common import (
    DatabaseOpt,
    RulesOpt,
    SetOpt,
    WorkspaceOpt,
    console,
    err_console,
    errors_to_stderr,
    fail,
    get_store,
    load_settings,
    progress,
)


@app.command("import")
def import_(
    sources: Annotated[list[Path], typer.Argument(
        help="Files: .gpkg, .shp, .geojson, .csv (lon/lat), .osm.pbf / .osm (OpenStreetMap).",
        show_default=False)],
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    layer: Annotated[str | None, typer.Option(
        "--layer", help="Canonical layer: streets, communities, buildings, roads, facilities, "
                        "green_spaces, addresses, institutions, staff. Inferred from the file "
                        "name when obvious (建筑.shp, roads.geojson).")] = None,
    crs: Annotated[str | None, typer.Option(
        "--crs", help="CRS of the coordinates: wgs84, cgcs2000, gcj02 (Amap/Tencent), bd09 "
                      "(Baidu) or EPSG:n (e.g. EPSG:4549). Required for CSVs.")] = None,
    encoding: Annotated[str | None, typer.Option(
        "--encoding", help="Attribute encoding of shapefiles without .cpg and of CSVs, "
                           "e.g. gbk (detected when omitted).")] = None,
    field_map: Annotated[str | None, typer.Option(
        "--map", help="Field names, canonical=source: --map households=HH_NUM,name=MC "
                      "(CSV: also lon=X,lat=Y).")] = None,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Import files into a workspace: validate everything, then write all layers and a
    'rejects' table in one atomic write (nothing is written if any file cannot be read).

    Example: [bold]gridgis import 楼栋.shp pois.csv --crs gcj02 --encoding gbk
    --map households=HH_NUM --workspace ws.gpkg[/]

    Example: [bold]gridgis import nanjing.osm.pbf --workspace ws.gpkg[/]
    """
    from gridgis.io import import_into, parse_field_map

    settings = load_settings(rules, set_)
    if workspace is None and database is None:
        fail("give --workspace FILE.gpkg (or --database URL)")
    with errors_to_stderr():
        fmap = parse_field_map(field_map)
        store = get_store(workspace, database, must_exist=False)
        with progress() as bar:
            tasks: dict[str, int] = {}

            def on_source(path: str):
                task = bar.add_task(f"reading {Path(path).name}", total=None)
                tasks[path] = task

                def update(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total or None)

                return update

            report = import_into(store, sources, layer=layer, crs=crs, encoding=encoding,
                                 field_map=fmap, settings=settings, on_source=on_source)
        for note in report.notes:
            err_console.print(f"[dim]note:[/] {escape(note)}")
        table = Table(title=f"Imported into {store.location}", title_justify="left")
        for col in ("layer", "valid rows", "rejected rows", "from"):
            table.add_column(col)
        for name, (valid, rejected) in report.counts().items():
            table.add_row(name, f"{valid:,}", f"{rejected:,}",
                          escape(", ".join(Path(s).name for s in report.sources[name])))
        console.print(table)
        rej = report.rejects
        if len(rej):
            console.print(f"[yellow]{len(rej):,} reject reasons[/] (all in layer 'rejects'); "
                          f"first ones:")
            for r in rej.head(8).itertuples():
                value = f" = {r.value!r}" if isinstance(r.value, str) else ""
                console.print(escape(f"  {r.source} [{r.layer}] row {r.row}, {r.field}{value}: "
                                     f"{r.reason}"))
