"""``gridgis lookup``: which grid is an address or a coordinate in, and who runs it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from gridgis.cli.app import app
from gridgis.cli.common import (
    CliError,
    ClusterOpt,
    DatabaseOpt,
    RulesOpt,
    SetOpt,
    WorkspaceOpt,
    errors_to_stderr,
    get_store,
    load_settings,
    progress_of,
)

#: Columns the batch mode adds to every row.
BATCH_COLUMNS = (
    "address_id",
    "lon",
    "lat",
    "grid_code",
    "match_level",
    "match_score",
    "confident",
    "rule",
)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise CliError(f"{path}: no such file")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
    raise CliError(f"{path}: neither UTF-8 nor GBK/GB18030 text")


def _write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".lookup-", suffix=".csv", dir=path.parent)
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@app.command()
def lookup(
    address: Annotated[
        str | None,
        typer.Argument(
            help="An address or place name, e.g. 报春路558弄38号, 阳光花园十二栋三单元502室, 燎原双语学校."
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    lon: Annotated[float | None, typer.Option("--lon", help="Longitude of a point.")] = None,
    lat: Annotated[float | None, typer.Option("--lat", help="Latitude of a point.")] = None,
    crs: Annotated[
        str,
        typer.Option(
            "--crs",
            help="CRS of --lon/--lat: wgs84, cgcs2000, gcj02 (Amap, Tencent), bd09 (Baidu).",
        ),
    ] = "wgs84",
    batch: Annotated[
        Path | None,
        typer.Option("--batch", help="CSV file of addresses to look up (UTF-8 or GBK)."),
    ] = None,
    column: Annotated[
        str, typer.Option("--column", help="Column of --batch holding the address text.")
    ] = "address",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="CSV written by --batch: the input plus address_id, lon, lat, "
            "grid_code, match_level, match_score, confident, rule (why).",
        ),
    ] = None,
    personal: Annotated[
        bool, typer.Option("--personal", help="Include the responsible people's phone numbers.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Answer with the grids valid on this date (YYYY-MM-DD, from layer "
            "grid_versions), so an old case keeps the grid of its day.",
        ),
    ] = None,
    rules: RulesOpt = None,
    set_: SetOpt = None,
    cluster: ClusterOpt = None,
) -> None:
    """Find the grid, community, street and responsible people of an address or point.

    Prints JSON. An address that cannot be matched confidently gets "confident": false,
    no grid, and the closest candidates; "rule" and "reason" say why either way. Set the deployment's city and district with
    --set address.city=上海市 --set address.district=闵行区.

    Examples: [bold]gridgis lookup --workspace out/demo.gpkg "明虹路五号朝紫小区三幢二门"[/]
    · [bold]gridgis lookup -w out/demo.gpkg --lon 118.79 --lat 32.06 --crs gcj02[/]
    · [bold]gridgis lookup -w out/demo.gpkg --batch in.csv --column address --out out.csv[/]
    · [bold]gridgis lookup -w out/demo.gpkg --lon 118.79 --lat 32.06 --as-of 2025-03-01[/]
    · [bold]gridgis lookup -w out/demo.gpkg --batch in.csv --out out.csv --cluster local:2[/]
    """
    from gridgis.lookup import Lookup

    settings = load_settings(rules, set_)
    with errors_to_stderr():
        modes = sum([address is not None, lon is not None or lat is not None, batch is not None])
        if modes != 1:
            raise CliError("give exactly one of: an ADDRESS, --lon and --lat, or --batch FILE")
        if (lon is None) != (lat is None):
            raise CliError("--lon and --lat go together")
        if batch is not None and out is None:
            raise CliError("--batch needs --out FILE.csv")
        store = get_store(workspace, database, must_exist=True)
        if batch is not None and cluster:
            _batch_on_cluster(store, settings, batch, column, out, as_of, cluster)
            return
        if cluster:
            raise CliError("--cluster goes with --batch (one address or point runs here)")
        if as_of is None:
            finder = Lookup.from_store(store, settings)
        else:
            from gridgis.workflows import lookup_as_of

            finder = lookup_as_of(store, settings, as_of)
        if address is not None:
            answer = finder.address(address, include_personal=personal)
            typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        elif lon is not None:
            answer = finder.point(lon, lat, crs=crs, include_personal=personal)
            typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        else:
            table = _batch_table(batch, column)
            with progress_of("Matching addresses") as callback:
                result = finder.addresses(table[column].tolist(), progress=callback)
            _write_batch(table, result, out)


def _batch_table(batch: Path, column: str) -> pd.DataFrame:
    table = _read_csv(batch)
    if column not in table.columns:
        raise CliError(
            f"{batch}: no column '{column}' (columns: "
            f"{', '.join(map(str, table.columns))}); choose with --column"
        )
    return table


def _write_batch(table: pd.DataFrame, result: pd.DataFrame, out: Path) -> None:
    """The input rows plus :data:`BATCH_COLUMNS`, written atomically; a summary on stderr."""
    for col in BATCH_COLUMNS:
        table[col] = result[col].to_numpy()
    table["match_score"] = result["match_score"].where(result["match_level"] != "none")
    _write_csv_atomic(table, out)
    n_ok = int(result["confident"].sum())
    typer.echo(
        f"{out}: {len(table):,} rows, {n_ok:,} matched confidently, "
        f"{len(table) - n_ok:,} without a confident match (columns "
        f"{', '.join(BATCH_COLUMNS)} empty or candidates only)",
        err=True,
    )


def _batch_on_cluster(store, settings, batch: Path, column: str, out: Path, as_of, cluster):
    """``--batch`` with ``--cluster``: addresses matched on Dask workers, each holding the
    index of its districts only (on a shared store reading them itself), the same CSV as
    in one process."""
    from gridgis.partitioned import cluster_client, lookup_addresses_partitioned

    names = ("addresses", "buildings", "grids", "communities", "streets", "staff")
    layers = {n: store.read(n) if store.has(n) else None for n in names}
    if as_of is not None:
        from gridgis.workflows import grids_as_of

        if not store.has("grid_versions"):
            from gridgis.workflows import lookup_as_of

            lookup_as_of(store, settings, as_of)  # raises: no dated grids
        layers["grids"] = grids_as_of(store.read("grid_versions"), as_of)
    table = _batch_table(batch, column)
    from gridgis.partitioned.source import shared_run

    readable = ("addresses",) if as_of is not None else ("addresses", "grids")
    with cluster_client(cluster) as client, shared_run(store, readable) as shared:
        kw = {"shared": shared} if shared is not None else {}  # workers read their shards
        result = lookup_addresses_partitioned(
            client, layers, table[column].tolist(), settings, **kw
        )
    _write_batch(table, result, out)
