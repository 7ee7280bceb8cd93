"""``gridgis refresh``, ``gridgis history`` and ``gridgis diff``: grids over time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridgis import workflows
from gridgis.cli.app import app
from gridgis.cli.common import (
    DatabaseOpt,
    EffectiveOpt,
    ReasonOpt,
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


@app.command()
def refresh(
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    reason: ReasonOpt = None,
    effective: EffectiveOpt = None,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Recompute every figure derived from the grids and buildings after a change (a hand edit in QGIS, an import): codes of split or merged grids, area, compactness, assignment, households, buildings, facility counts, staff, flags against the band, the audit; grids whose geometry changed get a new dated version.

    Example: [bold]gridgis refresh --workspace out/demo.gpkg --reason "网格调整会议 2025-03"[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings), progress() as bar:
        job = workflows.refresh(
            store,
            settings,
            reason=reason,
            effective=effective,
            parameters={"reason": reason} if reason else None,
            progress=lambda what: progress_callback(bar, what),
        )
    console.print(t("refreshed", n=f"{job.stats['grids']:,}", where=store.location))
    changes = job.stats.get("changes", {})
    for kind in ("created", "reshaped", "retired"):
        codes = changes.get(kind, [])
        if codes:
            console.print(
                f"  {t(kind)}: {len(codes)} ({', '.join(codes[:8])}{' …' if len(codes) > 8 else ''})"
            )
    if "findings" in job.stats and job.written:
        console.print(f"  {t('findings')}: {job.stats['findings']:,} (grid_findings)")
    for note in job.notes:
        console.print(f"  {note}")
    if job.written:
        console.print(t("wrote_to", layers=", ".join(job.written), where=store.location))


@app.command()
def history(
    grid_code: Annotated[str, typer.Argument(help="The grid's 15-digit code.")],
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Every dated version of one grid: when it started and ended, what made it (command, parameters, reason), its households and area then.

    Example: [bold]gridgis history 320199001001003 --workspace out/demo.gpkg[/]
    """
    with open_workspace(workspace, database, None, None) as (store, _settings):
        if not store.has("grid_versions"):
            fail(
                f"{store.location}: no layer 'grid_versions' (run gridgis delineate or gridgis refresh)"
            )
        rows = workflows.history(store.read("grid_versions"), grid_code)
    if not len(rows):
        fail(f"{store.location}: no version of grid {grid_code}", 2)
    table = Table(title=f"{t('grids')} {grid_code}", title_justify="left")
    for col in ("version", "valid_from", "valid_to", "households", "area_m2", "command", "reason"):
        table.add_column(t(col), overflow="fold")
    for r in rows.itertuples():
        table.add_row(
            str(r.version),
            str(r.valid_from),
            "" if r.valid_to is None or str(r.valid_to) in ("", "<NA>", "nan") else str(r.valid_to),
            "" if str(r.households) in ("<NA>", "nan") else f"{int(r.households):,}",
            "" if str(r.area_m2) in ("<NA>", "nan") else f"{float(r.area_m2):,.0f}",
            str(r.command),
            "" if r.reason is None or str(r.reason) in ("<NA>", "nan") else str(r.reason),
        )
    console.print(table)


@app.command()
def diff(
    old: Annotated[
        str | None,
        typer.Argument(
            help="The old plan's workspace (.gpkg or postgresql:// URL); omit with --from."
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    from_date: Annotated[
        str | None,
        typer.Option("--from", help="Compare the workspace's grids of this date (YYYY-MM-DD) …"),
    ] = None,
    to_date: Annotated[
        str | None,
        typer.Option("--to", help="… with those of this date (default today); the effective date."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Printable change order (网格调整单), HTML."),
    ] = None,
    layer: Annotated[
        str, typer.Option("--layer", help="Layer of the workspace to write the changes to.")
    ] = "grid_changes",
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Change order between two grid plans: grids created, retired, reshaped and renamed; buildings, households, addresses and staff that moved; counts per community. Written as a layer and a printable page.

    Examples: [bold]gridgis diff before.gpkg --workspace after.gpkg --out change.html[/]
    · [bold]gridgis diff --workspace ws.gpkg --from 2025-01-01 --to 2025-03-01 --out change.html[/]
    """
    from gridgis.cli.common import get_store

    if (old is None) == (from_date is None):
        fail("give the old workspace or --from DATE (not both)")
    with open_workspace(workspace, database, rules, set_) as (store, settings):
        old_store = (
            get_store(Path(old), None)
            if old and "://" not in old
            else (get_store(None, old) if old else None)
        )
        job = workflows.diff_plans(
            store,
            settings,
            old_store=old_store,
            from_date=from_date,
            to_date=to_date,
            layer=layer,
            page=out,
        )
    d = job.detail
    table = Table(title=f"{t('change')} ({d.effective})", title_justify="left")
    for col in ("change", "old code", "new code", "community"):
        table.add_column(t(col), overflow="fold")
    for col in ("buildings_in", "buildings_out", "households_in", "households_out"):
        table.add_column(col, justify="right")
    for r in d.changes.itertuples():
        table.add_row(
            t(r.change),
            r.old_code,
            r.new_code,
            str(r.community_code),
            f"{r.buildings_in:,}",
            f"{r.buildings_out:,}",
            f"{r.households_in:,}",
            f"{r.households_out:,}",
        )
    console.print(table)
    console.print(job.summary)
    for note in job.notes:
        console.print(f"  [yellow]{t('note')}[/] {note}")
    if out is not None:
        console.print(f"  {out}")
