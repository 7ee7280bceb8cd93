"""What every workflow shares: the result it returns, reading the layers a workspace has,
naming the one it lacks, and the progress callbacks the faces hand in."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from gridgis.errors import NotFoundError
from gridgis.store import Store
from gridgis.store.base import Frame

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""``callback(done, total)`` a library function calls as it goes."""

ProgressFactory = Callable[[str], Progress | None]
"""Given a step's description, the callback for that step (or ``None``): how a face (a
progress bar, a log) follows a workflow of several steps."""


def no_progress(description: str) -> Progress | None:
    """The :data:`ProgressFactory` that reports nothing."""
    return None


@dataclass
class JobResult:
    """What a workflow did.

    Attributes
    ----------
    operation
        The job's name (``delineate``, ``assign``, ``refresh``, ``coverage``…).
    written
        Layer name -> rows written, in the order written (one atomic write unless a
        workflow says otherwise).
    notes
        Sentences for a person: what was left out, what was found.
    summary
        One line saying what was done.
    stats
        Figures for the faces to present (names in the planner's words).
    detail
        The analysis result itself (e.g. :class:`gridgis.coverage.CoverageResult`), for
        faces that print more of it.
    """

    operation: str
    written: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    summary: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    detail: Any = None

    def to_json(self) -> dict[str, Any]:
        """The API's answer: ``operation``, ``layers`` (rows per layer), ``notes``,
        ``summary``."""
        return {
            "operation": self.operation,
            "layers": dict(self.written),
            "notes": list(self.notes),
            "summary": self.summary,
        }


class MissingLayerError(NotFoundError):
    """A layer a workflow cannot run without is not in the workspace."""

    def __init__(self, message: str, layer: str) -> None:
        super().__init__(message)
        self.layer = layer


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
        Said after the list of layers.

    Returns
    -------
    set of str
        Every layer the workspace holds (to pass on to :func:`read_present`).

    Raises
    ------
    MissingLayerError
        ``<workspace>: no <kind> '<name>'<reason> (layers: …)<hint>`` for the first missing
        layer.
    """
    present = set(store.layers())
    for name in names:
        if name not in present:
            raise MissingLayerError(
                f"{store.location}: no {kind} '{name}'{reason} {layers_note(present)}{hint}",
                name,
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


def write_layers(
    store: Store, operation: str, frames: dict[str, Frame], params: dict[str, Any]
) -> dict[str, int]:
    """Write *frames* in one atomic store write (logged at INFO); returns rows per layer."""
    written = {k: len(v) for k, v in frames.items()}
    log.info(
        "%s: writing %s to %s",
        operation,
        ", ".join(f"{k} ({n:,} rows)" for k, n in written.items()),
        store.location,
    )
    store.write_many(frames, params=params)
    return written
