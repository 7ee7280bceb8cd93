"""``gridgis serve``: the HTTP API (OGC API – Features, lookups, grids, maps) under uvicorn."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from gridgis.cli.app import app
from gridgis.cli.common import (
    DatabaseOpt,
    RulesOpt,
    SetOpt,
    WorkspaceOpt,
    console,
    fail,
    open_workspace,
)


@app.command()
def serve(
    workspace: WorkspaceOpt = None,
    database: DatabaseOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    maps: Annotated[
        Path | None,
        typer.Option("--maps", help="Folder of HTML maps (from gridgis map) served under /maps/."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log every request (client, method, path, status) on stdout, as uvicorn does.",
        ),
    ] = True,
    rules: RulesOpt = None,
    set_: SetOpt = None,
) -> None:
    """Serve a workspace over HTTP: /collections (OGC API – Features), /lookup/point,
    /lookup/address, /grids/{code}, /coverage, /maps/, /health; API docs at /docs.

    Writes (POST /upload, /jobs/delineate, /jobs/coverage, /jobs/assign,
    /grids/{code}/staff) and staff phone numbers need ``Authorization: Bearer <token>``
    with the token set in the environment variable GRIDGIS_API_TOKEN.

    The access log (one line per request on stdout) is on by default; --no-access-log
    turns it off.

    Example: [bold]GRIDGIS_API_TOKEN=s3cret gridgis serve --workspace out/demo.gpkg --maps out/maps --port 8000[/]
    """
    import uvicorn

    # the settings are checked here (fail early on bad rules); the server loads its own
    with open_workspace(workspace, database, rules, set_) as (store, _settings):
        target = database or (
            str(workspace) if workspace is not None else os.environ.get("GRIDGIS_DATABASE_URL", "")
        )
        n = len(store.layers())
        store.close()
    if maps is not None and not maps.is_dir():
        fail(f"--maps {maps}: no such folder (make the maps with: gridgis map --out DIR)")
    os.environ["GRIDGIS_SERVE_STORE"] = target
    os.environ["GRIDGIS_SERVE_MAPS"] = str(maps) if maps else ""
    os.environ["GRIDGIS_SERVE_RULES"] = str(rules) if rules else ""
    os.environ["GRIDGIS_SERVE_SET"] = json.dumps(set_ or [])
    writes = (
        "enabled" if os.environ.get("GRIDGIS_API_TOKEN") else "disabled (set GRIDGIS_API_TOKEN)"
    )
    console.print(
        f"Serving {store.location} ({n} layers) on http://{host}:{port}/ — "
        f"docs at /docs; writes {writes}"
    )
    uvicorn.run(
        "api.app:from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info" if access_log else "warning",
        access_log=access_log,
    )
