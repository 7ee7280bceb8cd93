"""``gridgis audit``: check the grids a city already has and write ``grid_findings``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gridgis import workflows
from gridgis.audit import AuditError
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
    progress,
    progress_callback,
    require_layers,
)
from gridgis.cli.i18n import check_name, severity_name, status_name, t


@app.command()
def audit(
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    grids: Annotated[
        str, typer.Option("--grids", help="Layer holding the city's grid polygons.")
    ] = "grids",
    code_field: Annotated[
        str, typer.Option("--code-field", help="Field holding the grid code (e.g. WGBM).")
    ] = "grid_code",
    community_field: Annotated[
        str | None,
        typer.Option(
            "--community-field",
            help="Field naming each grid's community (default: found by "
            "location in layer communities).",
        ),
    ] = None,
    kind_field: Annotated[
        str,
        typer.Option(
            "--kind-field",
            help="Field marking unit grids (unit, 单位网格, 专属网格), which have "
            "no household range.",
        ),
    ] = "kind",
    out: Annotated[
        str, typer.Option("--out", help="Layer to write the findings to.")
    ] = "grid_findings",
    check: Annotated[
        list[str] | None,
        typer.Option("--check", help="Run only this check (repeatable); default all."),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help="Leave this check out (repeatable)."),
    ] = None,
    rules: RulesOpt = None,
    set_: SetOpt = None,
    cluster: ClusterOpt = None,
) -> None:
    """Audit existing grids: households out of range, multipart grids, gaps and overlaps, community crossings, buildings in no grid or two, invalid or duplicate codes, code prefixes, arterial crossings.

    Writes layer grid_findings (grid_code, check, severity, detail, value, geometry: gaps and overlaps as polygons) and prints a summary. Exits 0 whenever the audit ran, whatever it found.

    Example: [bold]gridgis audit --workspace city.gpkg --grids city_grids --code-field WGBM[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings), progress() as bar:
        require_layers(store, [grids], hint="; name the grid layer with --grids")
        try:
            job = workflows.audit(
                store,
                settings,
                grids=grids,
                code_field=code_field,
                community_field=community_field,
                kind_field=kind_field,
                out=out,
                progress=lambda what: progress_callback(bar, what),
                checks=check or None,
                skip=skip or (),
                cluster=cluster,
            )
        except AuditError as exc:
            hint = {"code_field": " (--code-field)", "checks": " (--check/--skip)"}
            fail(f"{store.location}: {exc}{hint.get(exc.parameter or '', '')}")
    result = job.detail
    grid_frame = result.grids

    summary = result.summary()
    table = Table(
        title=t("audit_title", layer=grids, n=f"{len(grid_frame):,}", crs=result.crs),
        title_justify="left",
    )
    for col in ("check", "severity", "findings", "status"):
        table.add_column(t(col), justify="right" if col == "findings" else "left", overflow="fold")
    for row in summary.itertuples():
        style = ("red" if row.severity == "error" else "yellow") if row.findings else "dim"
        table.add_row(
            check_name(row.check),
            severity_name(row.severity),
            f"[{style}]{row.findings:,}[/]",
            status_name(row.status),
        )
    console.print(table)
    hh = result.grids["households"]
    if int(result.grids["building_count"].sum()):
        rule = settings.grid
        line = t(
            "hh per grid",
            lo=int(hh.min()),
            med=int(hh.median()),
            hi=int(hh.max()),
            rlo=rule.min_households,
            rhi=rule.max_households,
        )
        console.print(f"  {line}")
    console.print(
        t("wrote findings", n=f"{len(result.findings):,}", layer=out, where=store.location)
    )
