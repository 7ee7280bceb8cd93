"""Command-line interface: ``gridgis <command> --help`` for each command.

Each command lives in its own module, which registers on :data:`gridgis.cli.app.app`.
"""

from gridgis.cli import (  # noqa: F401  (registers commands)
    assign,
    audit,
    coverage,
    delineate,
    demo,
    export,
    imports,
    info,
    lookup,
    map,
    serve,
    versions,
)
from gridgis.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
