"""``gridgis export``: the grid ledger (Excel, CSV), the layers (Shapefile, GeoPackage with
QGIS styles, GeoJSON) and the boards and atlas (PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridgis.cli.app import app
from gridgis.cli.common import (
    ClusterOpt,
    DatabaseOpt,
    RulesOpt,
    SetOpt,
    WorkspaceOpt,
    console,
    fail,
    open_workspace,
    progress_of,
    read_present,
)
from gridgis.workflows.outputs import grids_written_at


@app.command("export")
def export_command(
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="xlsx (grid ledger 网格台账), csv, shp (one zip per layer), gpkg (with QGIS "
            "styles), geojson, pdf (boards and atlas, printed by Chromium).",
        ),
    ],
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Output folder (or a .xlsx/.gpkg file)."),
    ] = Path("export"),
    with_personal: Annotated[
        bool,
        typer.Option(
            "--with-personal",
            help="Include staff phone numbers (personal data; left out by default).",
        ),
    ] = False,
    encoding: Annotated[
        str,
        typer.Option("--encoding", help="Shapefile text encoding: utf-8 or gbk (.cpg)."),
    ] = "utf-8",
    pdf: Annotated[
        str,
        typer.Option("--pdf", help="With --format pdf: boards, atlas or both."),
    ] = "both",
    headers: Annotated[
        str, typer.Option("--headers", help="CSV headers: zh (中文, as Excel) or en.")
    ] = "zh",
    code: Annotated[
        str | None,
        typer.Option(
            "--code",
            help="With --format pdf: only the grids under this street (9 digits), "
            "community (12) or grid (15) code.",
        ),
    ] = None,
    rules: RulesOpt = None,
    set_: SetOpt = None,
    cluster: ClusterOpt = None,
) -> None:
    """Export the workspace as a planner hands it in.

    The ledger has one sheet per level (网格, 社区, 街道): codes (as text), names,
    households, buildings, area, findings, responsible people, facility counts by category
    and coverage rates. Every format writes the same figures.

    Examples: [bold]gridgis export -w out/demo.gpkg --format xlsx --out out/ledger.xlsx[/]
    · [bold]gridgis export -w out/demo.gpkg --format shp --encoding gbk --out out/shp[/]
    · [bold]gridgis export -w out/demo.gpkg --format pdf --pdf boards --out out/pdf[/]
    · [bold]gridgis export -w out/demo.gpkg --format pdf --out out/pdf --cluster local:2[/]
    · [bold]gridgis export -w city.gpkg --format xlsx --out ledger.xlsx --cluster local:2[/]
    (every format runs partitioned with --cluster; the files are the same)
    """
    from gridgis.export import FORMATS, PDF_KINDS
    from gridgis.maps import MAP_LAYERS
    from gridgis.partitioned import export_on

    if fmt not in FORMATS:
        fail(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    if pdf not in PDF_KINDS:
        fail(f"--pdf {pdf}: use one of {', '.join(PDF_KINDS)}")
    if headers not in ("zh", "en"):
        fail(f"--headers {headers}: use zh or en")
    if encoding.lower() not in ("utf-8", "utf8", "gbk"):
        fail(f"--encoding {encoding}: use utf-8 or gbk")
    with open_workspace(workspace, database, rules, set_) as (store, settings):
        layers = read_present(store, MAP_LAYERS)
        city = str(store.meta().get("city", ""))
        with progress_of("printing PDF pages", show=fmt == "pdf") as callback:
            result = export_on(
                cluster,
                layers,
                fmt,
                out,
                settings,
                with_personal=with_personal,
                city=city,
                shp_encoding="utf-8" if encoding.lower() == "utf8" else encoding.lower(),
                pdf=pdf,
                chinese_headers=headers == "zh",
                board_date=grids_written_at(store),
                progress=callback,
                code=code if fmt == "pdf" else None,
            )
    from gridgis.cli.i18n import t, zh

    for note in result.notes:
        console.print(f"  [yellow]{t('note')}[/] {note}")
    for path in result.files:
        pages = result.pages.get(path.stem)
        if zh():
            console.print(f"已写出 {path}" + (f" (共 {pages} 页)" if pages else ""))
        else:
            console.print(f"wrote {path}" + (f" ({pages} pages)" if pages else ""))
    if not with_personal:
        console.print(
            "未含人员电话(个人信息; 需要时加 --with-personal)"
            if zh()
            else "phone numbers left out (personal data: --with-personal to include)"
        )
