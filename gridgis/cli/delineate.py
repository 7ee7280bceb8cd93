"""``gridgis delineate``: divide communities into responsibility grids, then assign."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table

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
    read_present,
    require_layers,
)
from gridgis.cli.demo import demo_step
from gridgis.standards import Settings
from gridgis.store import Store

#: Layers read from the workspace when present.
INPUT_LAYERS = (
    "communities",
    "streets",
    "buildings",
    "roads",
    "institutions",
    "facilities",
    "addresses",
    "staff",
    "assign_rejects",
)


def run_delineation(
    store: Store,
    settings: Settings,
    make_communities: bool = False,
    alignment: list[str] | None = None,
    county: str | None = None,
    grid_staff_seed: int | None = None,
    bar=None,
    street: str | None = None,
) -> dict[str, Any]:
    """Delineate the workspace's communities, assign every layer to the grids and write
    grids, buildings, assigned layers, ``code_registry`` and ``delineation_findings`` in
    one atomic step. Returns a summary dict for printing.

    ``grid_staff_seed`` (demo only) adds generated grid heads and workers to ``staff``.
    """
    from gridgis.assign import assign_all, assign_params
    from gridgis.delineate import community_stats, delineate, recount
    from gridgis.delineate import make_communities as make_comms

    present = require_layers(store, ["buildings"], " — import buildings first")
    require_layers(store, alignment or [], kind="alignment layer")
    layers = read_present(store, INPUT_LAYERS, present)
    align = read_present(store, alignment or [], present)
    made = None
    made_params: dict[str, Any] = {}
    has_comms = "communities" in layers and len(layers["communities"]) > 0
    if not has_comms:
        if not make_communities:
            raise ValueError(
                f"{store.location}: no communities — import them, or run "
                f"`gridgis delineate --communities` to make them from the "
                f"streets (or the whole area)"
            )
        county = county or store.meta().get("county_code")
        cb = progress_callback(bar, "making communities") if bar is not None else None
        street_code, reserved = _street(street, county)
        made, made_params = make_comms(
            layers,
            settings,
            county_code=county,
            progress=cb,
            street_code=street_code,
            reserved_codes=reserved,
        )
        layers["communities"] = made
    previous = store.read("grids") if "grids" in present else None
    registry = store.read("code_registry") if "code_registry" in present else None
    cb = progress_callback(bar, "delineating") if bar is not None else None
    result = delineate(
        layers, settings, alignment=align, progress=cb, previous=previous, registry=registry
    )
    layers["buildings"] = result.buildings
    if grid_staff_seed is not None:
        from gridgis.synth import make_grid_staff

        staff = layers.get("staff")
        start = len(staff) + 1 if staff is not None else 1
        new_staff = make_grid_staff(result.grids, seed=grid_staff_seed, start=start)
        layers["staff"] = (
            new_staff if staff is None else pd.concat([staff, new_staff], ignore_index=True)
        )
    assigned = assign_all(layers, result.grids, settings)
    out = assigned.layers()
    out["grids"] = recount(out["grids"], out["buildings"], settings)
    out["community_stats"] = community_stats(out["grids"], settings)
    out["code_registry"] = result.registry
    out["delineation_findings"] = result.findings
    if made is not None:
        out["communities"] = made
    params = {**result.params, **made_params, "assign": assign_params(assigned, settings)}
    store.write_many(out, params=params)
    g = out["grids"]
    res = g[g["kind"] == "residential"]
    hh = res["households"].to_numpy()
    lo, hi = settings.grid.min_households, settings.grid.max_households
    in_range = (hh >= lo) & (hh <= hi)
    reg = result.registry
    kept = (
        0 if previous is None else int(g["grid_code"].isin(previous["grid_code"].astype(str)).sum())
    )
    return {
        "grids": len(g),
        "residential": len(res),
        "unit": int((g["kind"] == "unit").sum()),
        "in_range": int(in_range.sum()),
        "flagged": int((g["flags"].fillna("") != "").sum()),
        "flagged_out_of_range": int((~in_range & (res["flags"].fillna("") != "")).sum()),
        "mean_pp": float(g["polsby_popper"].mean()) if len(g) else float("nan"),
        "mean_households": float(np.mean(hh)) if len(hh) else float("nan"),
        "crossings": int((g["crossings"] > 0).sum()),
        "communities_made": 0 if made is None else len(made),
        "kept_codes": kept,
        "retired_codes": int((reg["status"] == "retired").sum()),
        "buildings": len(out["buildings"]),
        "buildings_in_grid": int(out["buildings"]["grid_code"].notna().sum()),
        "bounds": (lo, hi),
        "crs": result.params["computed_crs"],
        "community_stats": out["community_stats"],
    }


def _street(street: str | None, county: str | None) -> tuple[str | None, set[str]]:
    """(street code, community codes the national table holds for it) for --street."""
    if not street:
        return None, set()
    from gridgis.divisions import community_codes_of, street_code_for

    code = street_code_for(street, county)
    return code, set(community_codes_of(code))


def summary_line(s: dict[str, Any]) -> str:
    lo, hi = s["bounds"]
    share = s["in_range"] / s["residential"] if s["residential"] else 1.0
    return (
        f"{s['grids']:,} grids ({s['residential']:,} residential, {s['unit']:,} unit); "
        f"{share:.1%} within {lo}–{hi} households (mean {s['mean_households']:.0f}), "
        f"{s['flagged']:,} flagged; mean Polsby-Popper {s['mean_pp']:.2f}; "
        f"{s['buildings_in_grid']:,}/{s['buildings']:,} buildings in a grid"
    )


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
    street: Annotated[
        str | None,
        typer.Option(
            "--street",
            help="With --communities: the real street (街道) the area lies in, by name "
            "(学院路街道) or 9-digit code, from the national division table; generated "
            "community codes start with its code and skip every code the table gives "
            "its committees.",
        ),
    ] = None,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Divide communities into responsibility grids of 250–500 households and assign.

    Grids follow roads and avoid arterials and alignment boundaries, tile each community exactly, institutions meeting the unit-grid criteria become unit grids; out-of-range grids carry a flag naming the reason. Codes are numbered west to east, north to south and kept stable on re-runs (layer code_registry). Writes grids, buildings (grid_code), the assigned layers and delineation_findings in one atomic step.

    Example: [bold]gridgis delineate --workspace out/demo.gpkg --set grid.max_households=450[/]
    """
    with open_workspace(workspace, database, rules, set_) as (store, settings):
        if communities and store.has("communities") and store.info("communities").rows:
            console.print(
                f"[yellow]note:[/] {store.location} already has "
                f"{store.info('communities').rows:,} communities; using them"
            )
        with progress() as bar:
            s = run_delineation(
                store,
                settings,
                make_communities=communities,
                alignment=alignment,
                county=county,
                bar=bar,
                street=street,
            )
    table = Table(title=f"Grids in {store.location} ({s['crs']})", title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    lo, hi = s["bounds"]
    for k, v in (
        ("communities made", s["communities_made"]),
        ("grids", s["grids"]),
        ("residential", s["residential"]),
        ("unit", s["unit"]),
        (f"residential within {lo}–{hi}", s["in_range"]),
        ("flagged (reason in 'flags')", s["flagged"]),
        ("crossing an arterial/alignment line", s["crossings"]),
        ("mean households (residential)", f"{s['mean_households']:.0f}"),
        ("mean Polsby-Popper", f"{s['mean_pp']:.3f}"),
        ("codes kept from the previous run", s["kept_codes"]),
        ("codes retired (ever)", s["retired_codes"]),
        ("buildings in a grid", f"{s['buildings_in_grid']:,}/{s['buildings']:,}"),
    ):
        table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    console.print(table)
    _print_community_stats(s["community_stats"])
    if s["residential"] and s["in_range"] + s["flagged_out_of_range"] < s["residential"]:
        fail("some residential grids are out of range without a flag (a bug: please report)")


def _print_community_stats(stats: pd.DataFrame, limit: int = 40) -> None:
    """Per-community table (社区统计): households, grids, share in band, flags by kind."""
    if stats is None or len(stats) == 0:
        return
    table = Table(title="社区统计 (layer community_stats)", title_justify="left")
    for col, head in (
        ("community_code", "社区代码"),
        ("households", "户数"),
        ("grids", "网格"),
        ("unit_grids", "单位网格"),
        ("share_in_band", "达标比例"),
        ("flags_by_kind", "标记"),
    ):
        table.add_column(
            head, justify="left" if col in ("community_code", "flags_by_kind") else "right"
        )
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


@demo_step("Delineating grids (250–500 households), grid staff, assignment")
def _demo(store: Store, settings: Settings, out_dir: Path) -> str:
    return summary_line(run_delineation(store, settings, grid_staff_seed=7))
