"""``gridgis import``: bring planners' files into a workspace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
from gridgis.store import Store


@app.command("import")
def import_(
    sources: Annotated[
        list[Path],
        typer.Argument(
            help="Files: .gpkg, .shp, .geojson, .csv (lon/lat), .osm.pbf / .osm (OpenStreetMap).",
            show_default=False,
        ),
    ],
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer",
            help="Canonical layer: streets, communities, buildings, roads, facilities, "
            "green_spaces, addresses, institutions, staff. Inferred from the file "
            "name when obvious (建筑.shp, roads.geojson).",
        ),
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option(
            "--crs",
            help="CRS of the coordinates: wgs84, cgcs2000, gcj02 (Amap/Tencent), bd09 "
            "(Baidu) or EPSG:n (e.g. EPSG:4549). Required for CSVs.",
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="Attribute encoding of shapefiles without .cpg and of CSVs, "
            "e.g. gbk (detected when omitted).",
        ),
    ] = None,
    field_map: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="Field names, canonical=source: --map households=HH_NUM,name=MC "
            "(CSV: also lon=X,lat=Y).",
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            help="How to write into a layer that already holds rows: append (add rows; "
            "keys already stored are rejected) or replace. Required when the layer is "
            "not empty.",
        ),
    ] = None,
    crs_check: Annotated[
        str,
        typer.Option(
            "--crs-check",
            help="on: refuse coordinates that fit another CRS (WGS84, GCJ-02, BD-09, "
            "swapped axes) clearly better against the workspace's layers; off: trust "
            "--crs.",
        ),
    ] = "on",
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Import files into a workspace: validate everything, then write all layers and a
    'rejects' table in one atomic write (nothing is written if any file cannot be read,
    if a layer would get no valid row, or if a non-empty layer is given no --mode).

    Example: [bold]gridgis import 楼栋.shp pois.csv --crs gcj02 --encoding gbk
    --map households=HH_NUM --workspace ws.gpkg[/]

    Example: [bold]gridgis import more_buildings.shp --mode append --workspace ws.gpkg[/]

    Example: [bold]gridgis import nanjing.osm.pbf --workspace ws.gpkg[/]
    """
    from gridgis.io import parse_field_map

    settings = load_settings(rules, set_)
    if workspace is None and database is None:
        fail("give --workspace FILE.gpkg (or --database URL)")
    if mode is not None and mode not in ("append", "replace"):
        fail(f"--mode {mode}: choose append or replace")
    if crs_check not in ("on", "off"):
        fail(f"--crs-check {crs_check}: choose on or off")
    with errors_to_stderr():
        fmap = parse_field_map(field_map)
        store = get_store(workspace, database, must_exist=False)
    with _flags_in_messages():
        result = _run_import(
            store, sources, settings, mode, crs_check == "on", layer, crs, encoding, fmap
        )
    _print_result(result, store)


#: Parameter names in library messages and the flag a CLI user types for each.
PARAMETER_FLAGS = {
    "the crs parameter": "--crs",
    "the encoding parameter": "--encoding",
    "the layer parameter": "--layer",
    "the field_map parameter": "--map",
    "the crs_check parameter": "--crs-check",
    "crs_check=False": "--crs-check off",
    "Declare crs ": "Declare --crs ",
    "declare crs ": "declare --crs ",
    "field map ": "--map ",
    "mode='append'": "--mode append",
    "mode='replace'": "--mode replace",
    " (the mode parameter)": "",
    "the mode parameter": "--mode",
}


def flags_for(message: str) -> str:
    """A library message with its parameter names replaced by this CLI's flags."""
    for words, flag in PARAMETER_FLAGS.items():
        message = message.replace(words, flag)
    return message


@contextmanager
def _flags_in_messages() -> Iterator[None]:
    """Library errors as one line on stderr in the CLI's words, exit code by type."""
    from gridgis.errors import GridgisError
    from gridgis.workflows.imports import NothingToImportError

    try:
        yield
    except NothingToImportError as exc:
        _print_rejects(exc.result.rejects)
        fail(flags_for(str(exc)), exc.exit_code)
    except GridgisError as exc:
        fail(flags_for(str(exc)), exc.exit_code)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        fail(flags_for(str(msg)))


def _run_import(store, sources, settings, mode, crs_check, layer, crs, encoding, fmap):
    from gridgis.workflows.imports import import_files

    with progress() as bar:

        def on_source(path: str):
            task = bar.add_task(f"reading {Path(path).name}", total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total or None)

            return update

        return import_files(
            store,
            sources,
            settings,
            mode=mode,
            crs_check=crs_check,
            layer=layer,
            crs=crs,
            encoding=encoding,
            field_map=fmap,
            on_source=on_source,
        )


#: The import's own words in Chinese (English is the key).
ZH = {
    "note:": "提示:",
    "Imported into": "已导入",
    "new layers": "新图层",
    "append": "追加",
    "replace": "替换",
    "layer": "图层",
    "kept": "保留",
    "added": "新增",
    "rejected rows": "拒绝行数",
    "now": "现有",
    "from": "来源",
    "rejected": "拒绝",
}


def _w(text: str) -> str:
    from gridgis.cli import i18n

    return ZH.get(text, text) if i18n.zh() else text


def summary_lines(result) -> list[str]:
    """Per layer what happened, in the CLI's language:
    ``buildings: 491 kept, 35 added, 2 rejected`` / ``楼栋 buildings: 保留 491, 新增 35, 拒绝 2``."""
    from gridgis.cli import i18n

    if not i18n.zh():
        return result.summary()
    return [
        f"{i18n.layer_name(o.layer)}: 保留 {o.kept:,}, 新增 {o.added:,}, 拒绝 {o.rejected:,}"
        for o in result.layers.values()
    ]


def _print_result(result, store: Store) -> None:
    from gridgis.cli import i18n

    for note in result.notes:
        err_console.print(f"[dim]{_w('note:')}[/] {escape(flags_for(note))}")
    mode = _w(result.mode or "new layers")
    table = Table(title=f"{_w('Imported into')} {store.location} ({mode})", title_justify="left")
    for col in ("layer", "kept", "added", "rejected rows", "now", "from"):
        table.add_column(_w(col))
    for name, o in result.layers.items():
        table.add_row(
            i18n.layer_name(name),
            f"{o.kept:,}",
            f"{o.added:,}",
            f"{o.rejected:,}",
            f"{o.after:,}",
            escape(", ".join(Path(s).name for s in o.sources)),
        )
    console.print(table)
    for line in summary_lines(result):
        console.print(escape(line))
    if result.refreshed is not None:
        console.print(escape(result.refreshed.summary))
    _print_rejects(result.rejects)


def _print_rejects(rej) -> None:
    if not len(rej):
        return
    from gridgis.cli import i18n

    head = (
        f"{len(rej):,} 条拒绝原因(全部在图层 rejects); 前几条:"
        if i18n.zh()
        else f"{len(rej):,} reject reasons (all in layer 'rejects'); first ones:"
    )
    console.print(f"[yellow]{head}[/]")
    for r in rej.head(8).itertuples():
        value = f" = {r.value!r}" if isinstance(r.value, str) else ""
        console.print(escape(f"  {r.source} [{r.layer}] row {r.row}, {r.field}{value}: {r.reason}"))
