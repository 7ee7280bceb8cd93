"""``gridgis delineate``: divide communities into responsibility grids, then assign."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gridgis import workflows
from gridgis.cli.app import app
from gridgis.cli.common import (
    ClusterOpt,
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

StreetOpt = Annotated[
    str | None,
    typer.Option(
        "--street",
        help="With --communities: the real street (街道) the area lies in, by name "
        "(学院路街道) or 9-digit code, from the national division table; generated "
        "community codes start with its code and skip every code the table gives "
        "its committees.",
    ),
]
ChangedOpt = Annotated[
    bool,
    typer.Option(
        "--changed",
        help="Divide again only the communities whose households changed by more than "
        "grid.redivide_min_change_households since the grids were made; every other "
        "grid keeps its geometry and code.",
    ),
]
LockOpt = Annotated[
    list[str] | None,
    typer.Option("--lock", help="Grid code kept exactly as it is (repeatable); implies --changed."),
]


@app.command()
def delineate(
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    communities: Annotated[
        bool,
        typer.Option(
            "--communities",
            help="When the workspace has no communities (an OSM import), first "
            "divide each street — or the whole area — into communities of "
            "1,000–3,000 households (synthetic 12-digit codes).",
        ),
    ] = False,
    alignment: Annotated[
        list[str] | None,
        typer.Option(
            "--alignment",
            help="Layer whose boundaries grids should follow (residents' groups, "
            "police areas, school catchments…); repeatable.",
        ),
    ] = None,
    county: Annotated[
        str | None,
        typer.Option(
            "--county",
            help="6-digit code of the county/district (e.g. 110108 海淀区) for "
            "communities made by --communities when there are no streets; "
            "required then unless the workspace records its county_code.",
        ),
    ] = None,
    reason: ReasonOpt = None,
    effective: EffectiveOpt = None,
    street: StreetOpt = None,
    changed: ChangedOpt = False,
    lock: LockOpt = None,
    rules: RulesOpt = None,
    set_: SetOpt = None,
    cluster: ClusterOpt = None,
) -> None:
    """Divide communities into responsibility grids of 250–500 households and assign.

    Grids follow roads and avoid arterials and alignment boundaries, tile each community exactly, institutions meeting the unit-grid criteria become unit grids; out-of-range grids carry a flag naming the reason. Codes are numbered west to east, north to south and kept stable on re-runs (layer code_registry). Writes grids (dated: valid_from), buildings (grid_code), the assigned layers, grid_versions and delineation_findings in one atomic step.

    Example: [bold]gridgis delineate --workspace out/demo.gpkg --set grid.max_households=450[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings):
        if communities and store.has("communities") and store.info("communities").rows:
            console.print(
                f"[yellow]{t('note')}[/] {store.location} already has "
                f"{store.info('communities').rows:,} communities; using them"
            )
        with progress() as bar:
            try:
                job = workflows.delineate(
                    store,
                    settings,
                    make_communities=communities,
                    alignment=alignment,
                    county=county,
                    reason=reason,
                    effective=effective,
                    progress=lambda what: progress_callback(bar, what),
                    street=street,
                    changed=changed,
                    lock=lock,
                    cluster=cluster,
                )
            except workflows.MissingLayerError as exc:
                if exc.layer != "communities":
                    raise
                fail(f"{exc}; use --communities to make them", exc.exit_code)
        s = job.stats
    table = Table(title=t("grids_in", where=store.location, crs=s["crs"]), title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    lo, hi = s["bounds"]
    for k, v in (
        (t("communities made"), s["communities_made"]),
        (t("grids"), s["grids"]),
        (t("residential"), s["residential"]),
        (t("unit"), s["unit"]),
        (t("residential within", lo=lo, hi=hi), s["in_range"]),
        (t("flagged"), s["flagged"]),
        (t("crossings"), s["crossings"]),
        (t("mean households"), f"{s['mean_households']:.0f}"),
        (t("mean pp"), f"{s['mean_pp']:.3f}"),
        (t("codes kept"), s["kept_codes"]),
        (t("codes retired"), s["retired_codes"]),
        (t("buildings in a grid"), f"{s['buildings_in_grid']:,}/{s['buildings']:,}"),
    ):
        table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    console.print(table)
    _print_community_stats(s.get("community_stats"))
    if s["residential"] and s["in_range"] + s["flagged_out_of_range"] < s["residential"]:
        fail(t("unflagged out of range"))


def _print_community_stats(stats, limit: int = 40) -> None:
    """Per-community table (社区统计, layer community_stats): households, grids, unit
    grids, share of residential grids in the band, flags by kind."""
    if stats is None or len(stats) == 0:
        return
    table = Table(title="社区统计 (layer community_stats)", title_justify="left")
    for head, right in (
        ("社区代码", False),
        ("户数", True),
        ("网格", True),
        ("单位网格", True),
        ("达标比例", True),
        ("标记", False),
    ):
        table.add_column(head, justify="right" if right else "left")
    for row in stats.head(limit).itertuples():
        table.add_row(
            row.community_code,
            f"{row.households:,}",
            f"{row.grids:,}",
            f"{row.unit_grids:,}",
            f"{row.share_in_band:.0%}",
            row.flags_by_kind or "",
        )
    console.print(table)
    if len(stats) > limit:
        console.print(f"  … {len(stats) - limit:,} more communities in layer community_stats")
