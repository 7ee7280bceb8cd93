"""What every command shares: settings options, opening workspaces, reading their layers,
errors, progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gridgis.errors import GridgisError
from gridgis.standards import Settings
from gridgis.store import Store, StoreError, open_store
from gridgis.workflows.base import layers_note, read_present, require_layers

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # never hard-wrapped

# Reusable option types -------------------------------------------------------------------
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace GeoPackage file (e.g. out/demo.gpkg)."),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="GRIDGIS_DATABASE_URL",
        help="PostGIS URL instead of a GeoPackage, e.g. postgresql://u:p@host/db",
    ),
]
RulesOpt = Annotated[
    Path | None,
    typer.Option(
        "--rules", help="TOML file overriding planning rules, e.g. [grid] min_households = 200"
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override one rule, e.g. --set grid.max_households=450 (repeatable)."
    ),
]
ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        envvar="GRIDGIS_CLUSTER",
        help="Run partitioned on Dask: local (a worker process per core), local:N, or "
        "tcp://scheduler:8786 (a running dask scheduler). Default: this process. "
        "Results are the same; the workspace is written once, at the end.",
    ),
]

ReasonOpt = Annotated[
    str | None,
    typer.Option("--reason", help="Why the grids changed (kept with every new grid version)."),
]
EffectiveOpt = Annotated[
    str | None,
    typer.Option(
        "--effective",
        help="Date the changes take effect, YYYY-MM-DD (default today): new versions start, "
        "replaced ones end on it.",
    ),
]


class CliError(Exception):
    """An error to print on stderr (no traceback) before exiting non-zero."""


def fail(message: str, code: int = 2) -> None:
    """Print *message* on stderr as one unwrapped line and exit with *code*."""
    from gridgis.cli.i18n import t

    err_console.print(f"[bold red]{t('error')}[/] {escape(str(message))}")
    raise typer.Exit(code)


def load_settings(rules: Path | None = None, sets: list[str] | None = None) -> Settings:
    """Settings from the defaults, a TOML file, then ``--set key=value`` flags."""
    try:
        overrides: dict[str, Any] = {}
        for item in sets or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--set {item}: use section.name=value")
            overrides[key.strip()] = value.strip()
        # file and flags checked together (a file's min and a flag's max do not clash)
        return Settings.from_toml(rules, overrides) if rules else Settings().override(overrides)
    except (OSError, KeyError, ValueError) as exc:
        fail(f"rules: {exc}")
        raise  # unreachable


def get_store(
    workspace: Path | None, database: str | None = None, must_exist: bool = True
) -> Store:
    """Open the workspace named by --workspace or --database (or GRIDGIS_DATABASE_URL)."""
    if workspace is not None and database is not None:
        fail("give --workspace or --database, not both")
    if workspace is None and database is None and not os.environ.get("GRIDGIS_DATABASE_URL"):
        fail(
            "no workspace: give --workspace FILE.gpkg or --database URL (or set GRIDGIS_DATABASE_URL)"
        )
    try:
        return open_store(database if database else workspace, create=not must_exist)
    except StoreError as exc:
        fail(str(exc), exc.exit_code)
        raise


@contextmanager
def open_workspace(
    workspace: Path | None,
    database: str | None,
    rules: Path | None,
    sets: list[str] | None,
    must_exist: bool = True,
) -> Iterator[tuple[Store, Settings]]:
    """What a command that works on a workspace does first: load the settings (a bad rule
    fails before any workspace is opened), then open the store, inside
    :func:`errors_to_stderr` so library errors in the block end as one line and exit 2.

    Yields
    ------
    (Store, Settings)
        The workspace named by ``--workspace``/``--database`` and the planning rules.
    """
    settings = load_settings(rules, sets)
    with errors_to_stderr():
        yield get_store(workspace, database, must_exist=must_exist), settings


@contextmanager
def errors_to_stderr() -> Iterator[None]:
    """Turn errors into a one-line message on stderr and an exit code: a
    :class:`~gridgis.errors.GridgisError` exits with its ``exit_code`` (input 2, conflict 3,
    store 4); other ``ValueError``/``KeyError``/``FileNotFoundError`` exit 2."""
    try:
        yield
    except GridgisError as exc:  # the exit code by the error's type, never its text
        fail(str(exc), exc.exit_code)
    except (CliError, ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        fail(str(msg))


def progress() -> Progress:
    """A progress bar for long steps (drawn on stderr so stdout stays machine-readable)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
        disable=not sys.stderr.isatty(),
    )


def progress_callback(bar: Progress, description: str) -> Callable[[int, int], None]:
    """A ``callback(done, total)`` for library functions that report progress."""
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update


@contextmanager
def progress_of(description: str, show: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar for one step while the block runs: yields its ``callback(done, total)``
    (``None`` when *show* is false, for the demo's quiet steps)."""
    with progress() as bar:
        yield progress_callback(bar, description) if show else None


__all__ = [
    "CliError",
    "DatabaseOpt",
    "EffectiveOpt",
    "ReasonOpt",
    "RulesOpt",
    "SetOpt",
    "WorkspaceOpt",
    "console",
    "err_console",
    "errors_to_stderr",
    "fail",
    "get_store",
    "layers_note",
    "load_settings",
    "open_workspace",
    "progress",
    "progress_callback",
    "progress_of",
    "read_present",
    "require_layers",
]
