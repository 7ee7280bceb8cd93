"""What every command shares: settings options, opening workspaces, reading their layers,
errors, progress."""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gridgis.standards import Settings
from gridgis.store import Store, StoreError, open_store
from gridgis.store.base import Frame

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


class CliError(Exception):
    """An error to print on stderr (no traceback) before exiting non-zero."""


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {escape(str(message))}")
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
    try:
        return open_store(database if database else workspace, create=not must_exist)
    except StoreError as exc:
        fail(str(exc))
        raise


def layers_note(present: Iterable[str]) -> str:
    """``(layers: a, b, c)``: what a workspace holds, for a message about a missing layer
    (``(layers: none)`` when it holds nothing)."""
    return f"(layers: {', '.join(sorted(present)) or 'none'})"


def require_layers(
    store: Store, names: Iterable[str], reason: str = "", kind: str = "layer", hint: str = ""
) -> set[str]:
    """The names of the workspace's layers, once it is checked to hold every one of *names*.

    Parameters
    ----------
    store : Store
        The open workspace.
    names : iterable of str
        Layers the step cannot run without, checked in this order.
    reason : str
        Said right after the missing name, e.g. ``" — import buildings first"``.
    kind : str
        What the missing layer is called in the message, e.g. ``"alignment layer"``.
    hint : str
        Said after the list of layers, e.g. ``"; name the grid layer with --grids"``.

    Returns
    -------
    set of str
        Every layer the workspace holds (to pass on to :func:`read_present`).

    Raises
    ------
    ValueError
        ``<workspace>: no <kind> '<name>'<reason> (layers: …)<hint>`` for the first missing
        layer (:func:`errors_to_stderr` prints it and exits 2).
    """
    present = set(store.layers())
    for name in names:
        if name not in present:
            raise ValueError(
                f"{store.location}: no {kind} '{name}'{reason} {layers_note(present)}{hint}"
            )
    return present


def read_present(
    store: Store, names: Iterable[str], present: Collection[str] | None = None
) -> dict[str, Frame]:
    """Read those of *names* the workspace holds; the others are left out, not an error.

    Parameters
    ----------
    store : Store
        The open workspace.
    names : iterable of str
        Layers the step uses when they are there, in the order they are read.
    present : collection of str, optional
        The workspace's layers when already listed (by :func:`require_layers`).

    Returns
    -------
    dict of str to GeoDataFrame or DataFrame
        Layer name to its rows (a DataFrame for tables without geometry), in *names* order.
    """
    if present is None:
        present = set(store.layers())
    return {name: store.read(name) for name in names if name in present}


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
    """Turn library errors into a one-line message on stderr and exit code 2."""
    from gridgis.layers import LayerError

    try:
        yield
    except (CliError, StoreError, LayerError, ValueError, KeyError, FileNotFoundError) as exc:
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
