"""The typer application every command module registers on, and its root options
(``--verbose``/``--quiet``: how much the library's log says on stderr; ``--lang``)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

app = typer.Typer(
    name="gridgis",
    help="Grid-management GIS for Chinese urban community governance (城乡社区网格化服务管理).\n\n"
    "Start with:  gridgis demo --out out/   then   gridgis info out/demo.gpkg",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
"""How a library log record is printed on stderr (one line, never wrapped)."""


class CliLogHandler(logging.StreamHandler):
    """The handler the CLI puts on the ``gridgis`` logger (one at a time)."""


def configure_logging(verbose: bool = False, quiet: bool = False) -> logging.Handler:
    """Send the ``gridgis`` logger to stderr: DEBUG with *verbose*, ERROR with *quiet*,
    WARNING otherwise. Replaces the handler an earlier call installed; returns it."""
    logger = logging.getLogger("gridgis")
    for h in list(logger.handlers):
        if isinstance(h, CliLogHandler):
            logger.removeHandler(h)
    handler = CliLogHandler()  # sys.stderr at the time of the call
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)
    return handler


@app.callback()
def root(
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Say what each step reads, computes and writes."),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print errors only (results such as JSON still go to stdout)."
        ),
    ] = False,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help="Language of tables and messages: zh or en (default: zh when LANG/LC_ALL "
            "start with zh, else en).",
        ),
    ] = None,
) -> None:
    """Grid-management GIS for Chinese urban community governance (城乡社区网格化服务管理)."""
    from gridgis.cli import common, i18n

    if verbose and quiet:
        common.fail("give --verbose or --quiet, not both")
    try:
        i18n.set_language(lang)
    except ValueError as exc:
        common.fail(str(exc))
    configure_logging(verbose, quiet)
    common.console.quiet = quiet
