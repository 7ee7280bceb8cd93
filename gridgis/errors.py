"""One error hierarchy for the whole library.

Every error gridgis raises on purpose is a :class:`GridgisError`. The faces map them by
type, never by message text:

============================  =========  =========
class                         CLI exit   HTTP
============================  =========  =========
:class:`InputError`           2          422
:class:`NotFoundError`        2          404
:class:`ConflictError`        3          409
:class:`LimitError`           2          413
:class:`RuleError`            2          422
:class:`StoreError`           4          503
============================  =========  =========

Messages name files, layers, rows, fields and settings (``grid.max_households``), never a
command-line flag: the same text reaches a terminal and an HTTP client.
"""

from __future__ import annotations


class GridgisError(Exception):
    """Base of every error gridgis raises on purpose; the message says what and why."""

    #: Exit code of the CLI for this kind of error.
    exit_code: int = 2
    #: HTTP status of the API for this kind of error.
    http_status: int = 422


class InputError(GridgisError, ValueError):
    """Input data or parameters that cannot be used (a file, layer, row, field or value)."""


class RuleError(GridgisError, ValueError):
    """Planning rules (settings) that contradict each other or cannot be applied."""


class NotFoundError(GridgisError, KeyError):
    """A layer, grid, feature or file that does not exist."""

    http_status = 404

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0]) if self.args else ""


class ConflictError(GridgisError):
    """A write that would lose data unless told how (e.g. a non-empty layer without a mode)."""

    exit_code = 3
    http_status = 409


class LimitError(GridgisError, ValueError):
    """Input beyond a stated limit (size, count, ratio); the message names the limit."""

    http_status = 413


class StoreError(GridgisError, RuntimeError):
    """A workspace that cannot be opened, read or written; the message says which and why."""

    exit_code = 4
    http_status = 503


__all__ = [
    "ConflictError",
    "GridgisError",
    "InputError",
    "LimitError",
    "NotFoundError",
    "RuleError",
    "StoreError",
]
