"""The import job: read planners' files, check them, and write them into a workspace with
an explicit write mode, in one atomic write.

Called by ``gridgis import`` and ``POST /upload``; both add only their own presentation.

* ``mode=None`` — allowed only when every layer to import is absent or empty in the
  workspace; otherwise :class:`gridgis.errors.ConflictError` names the layer, the rows it
  holds and the modes to choose from. Nothing is written.
* ``mode="append"`` — the rows are added to the stored layer; a row whose key the layer
  already holds is rejected (``reason`` says so), never overwritten.
* ``mode="replace"`` — the stored layer is replaced by the imported rows.

An import that yields no valid row at all (all rejected, a header-only CSV, an empty
FeatureCollection, or — with ``append`` — only keys the layer already holds) writes
nothing and raises :class:`NothingToImportError` carrying the result, rejects included.
In an import of several layers (an OpenStreetMap file, several sources) a layer without
a valid row is left as it is, never emptied, and the result says so
(``LayerOutcome.written`` False, a note). A layer is never emptied or left unchanged
silently.

Example
-------
>>> from gridgis.workflows.imports import import_files          # doctest: +SKIP
>>> result = import_files(store, ["buildings.shp"], settings, mode="append")
>>> result.summary()
['buildings: 491 kept, 35 added, 2 rejected']
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gridgis import layers as L
from gridgis.errors import ConflictError, InputError
from gridgis.io import WHERE, ImportReport, Source, read_sources
from gridgis.standards import DEFAULT, Settings
from gridgis.store import Store
from gridgis.store.base import concat_frames

__all__ = [
    "MODES",
    "ImportResult",
    "LayerOutcome",
    "NothingToImportError",
    "import_files",
]

log = logging.getLogger(__name__)

#: The write modes of an import into a layer that already holds rows.
MODES = ("append", "replace")


@dataclass
class LayerOutcome:
    """What an import did to one layer (counts of rows).

    ``before`` rows were stored; ``kept`` of them remain (all with ``append``, none with
    ``replace``); ``added`` rows were imported; ``rejected`` source rows were refused
    (each with its reasons in :attr:`ImportResult.rejects`)."""

    layer: str
    before: int
    kept: int
    added: int
    rejected: int
    sources: list[str] = field(default_factory=list)
    written: bool = True

    @property
    def after(self) -> int:
        return self.kept + self.added

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "before": self.before,
            "kept": self.kept,
            "added": self.added,
            "rejected": self.rejected,
            "after": self.after,
            "written": self.written,
            "sources": list(self.sources),
        }


@dataclass
class ImportResult:
    """The outcome of :func:`import_files`: per layer counts, rejects and notes.

    ``written`` is False when nothing was written (:class:`NothingToImportError`).
    ``refreshed`` is what :func:`gridgis.workflows.refresh` recomputed after the import
    (a :class:`gridgis.workflows.JobResult`), or None when the workspace has no grids
    or no imported layer feeds them."""

    report: ImportReport
    mode: str | None
    layers: dict[str, LayerOutcome]
    rejects: pd.DataFrame
    written: bool = False
    refreshed: Any = None

    @property
    def notes(self) -> list[str]:
        return self.report.notes

    def summary(self) -> list[str]:
        """One line per layer, e.g. ``"buildings: 491 kept, 35 added, 2 rejected"``."""
        return [
            f"{o.layer}: {o.kept:,} kept, {o.added:,} added, {o.rejected:,} rejected"
            + ("" if o.written else " (no valid row: layer left unchanged)")
            for o in self.layers.values()
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain counts for an HTTP answer or a log."""
        return {
            "mode": self.mode,
            "written": self.written,
            "layers": {k: o.to_dict() for k, o in self.layers.items()},
            "rejected_rows": int(sum(o.rejected for o in self.layers.values())),
            "refreshed": self.refreshed.summary if self.refreshed is not None else None,
            "notes": list(self.notes),
        }


class NothingToImportError(InputError):
    """An import in which a layer yields no valid row; nothing was written. ``result``
    holds the counts and the rejects saying why."""

    def __init__(self, message: str, result: ImportResult) -> None:
        super().__init__(message)
        self.result = result


def import_files(
    store: Store,
    sources: Sequence[str | os.PathLike | Source],
    settings: Settings = DEFAULT,
    mode: str | None = None,
    crs_check: bool = True,
    layer: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
    field_map: dict[str, str] | None = None,
    on_source: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> ImportResult:
    """Read, validate and write files into a workspace with an explicit write mode.

    Parameters
    ----------
    store
        The workspace.
    sources
        Files (see :func:`gridgis.io.read_source`); a :class:`gridgis.io.Source` carries
        its own layer, crs, encoding and field map.
    settings
        Validation rules (codes, ``settings.imports`` limits and CRS-check thresholds).
    mode
        ``None``, ``"append"`` or ``"replace"`` (see the module docstring).
    crs_check
        Test each source's declared CRS against the alternatives by how its features sit
        against the layers already stored (:func:`gridgis.io.plausible.check_crs`); False
        skips the test (the declared CRS is trusted).
    layer, crs, encoding, field_map
        Defaults for sources that do not give their own.
    on_source
        ``on_source(path)`` is called before each file and may return a progress
        callback ``(done, total)``.

    Returns
    -------
    ImportResult
        With ``written`` True.

    Raises
    ------
    gridgis.errors.ConflictError
        ``mode`` is None and a layer to import already holds rows (nothing written).
    NothingToImportError
        No layer yields a valid row (nothing written).
    gridgis.errors.InputError
        An unknown mode, a source that cannot be read, or coordinates that fit another
        CRS clearly better than the declared one (nothing written).
    """
    if mode is not None and mode not in MODES:
        raise InputError(f"unknown mode '{mode}': choose one of {', '.join(MODES)}")
    inspect = _crs_inspector(store, settings) if crs_check else None
    report = read_sources(
        sources,
        layer,
        crs,
        encoding,
        field_map,
        settings,
        on_source,
        inspect=inspect,
        keep_rows=True,
    )
    params = {
        "import": {"sources": report.sources, "options": report.options, "mode": mode},
        "storage_crs": L.STORAGE_CRS,
        "buildings": settings.to_dict()["buildings"],
        "codes": settings.to_dict()["codes"],
    }
    infos = store.info() if mode is None else {}
    _refuse_without_mode({n: infos[n].rows if n in infos else 0 for n in report.layers}, mode)
    planned: list[ImportResult] = []

    def plan(current: dict[str, Any]) -> dict[str, Any]:
        before = {n: 0 if current[n] is None else len(current[n]) for n in report.layers}
        _refuse_without_mode(before, mode)  # again: a writer may have filled it
        frames, outcomes, rejects = _plan(current, report, before, mode)
        planned.append(ImportResult(report, mode, outcomes, rejects))
        _refuse_empty(planned[-1], frames)
        return frames

    # read-modify-write under the workspace's write lock: two imports at once both land
    frames = store.update([*report.layers, "rejects"], plan, params=params)
    result = planned[-1]
    result.written = True
    for line in result.summary():
        log.info("import into %s: %s", store.location, line)
    result.refreshed = _refresh(store, settings, list(frames), mode)
    return result


def _crs_inspector(store: Store, settings: Settings):
    """The per-source CRS plausibility check, bound to the workspace's layers."""
    from gridgis.io.plausible import CrsCheck

    return CrsCheck(store, settings)


def _refuse_without_mode(before: dict[str, int], mode: str | None) -> None:
    full = {k: n for k, n in before.items() if n > 0}
    if mode is not None or not full:
        return
    held = "; ".join(f"layer '{k}' already holds {n:,} rows" for k, n in full.items())
    raise ConflictError(
        f"{held}. Choose mode='append' to add the imported rows (keys already stored "
        f"are rejected) or mode='replace' to replace the stored rows (the mode "
        f"parameter). Nothing was written."
    )


def _plan(
    current: dict[str, Any], report: ImportReport, before: dict[str, int], mode: str | None
) -> tuple[dict[str, Any], dict[str, LayerOutcome], pd.DataFrame]:
    """The frames to write (layers and the ``rejects`` table) given the workspace's
    ``current`` layers, per layer outcomes, and this import's rejects."""
    frames: dict[str, Any] = {}
    outcomes: dict[str, LayerOutcome] = {}
    new_rejects = [report.rejects]
    for name, v in report.layers.items():
        data = v.data
        kept = 0
        if mode == "append" and before[name] > 0:
            stored = current[name]
            data, clash = _drop_stored_keys(data, stored, name)
            new_rejects.append(clash)
            kept = len(stored)
            frames[name] = concat_frames([stored, _plain(data)])
        else:
            frames[name] = _plain(data)
        outcomes[name] = LayerOutcome(name, before[name], kept, len(data), 0, report.sources[name])
    rejects = pd.concat([r for r in new_rejects if len(r)] or [L.empty_rejects()])
    rejects = rejects[L.REJECT_COLUMNS].reset_index(drop=True)
    for name, o in outcomes.items():
        mine = rejects[rejects["layer"] == name]
        o.rejected = int(mine[["source", "row"]].drop_duplicates().shape[0])
    frames["rejects"] = _rejects_table(current.get("rejects"), rejects, outcomes, mode)
    return frames, outcomes, rejects


def _drop_stored_keys(
    data: pd.DataFrame, stored: pd.DataFrame, layer: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of ``data`` whose key the stored layer holds, as rejects; the rest."""
    key = L.SCHEMA[layer].key
    clash = data[key].isin(stored[key].astype("string")).to_numpy()
    if not clash.any():
        return data, L.empty_rejects()
    dup = data.loc[clash]
    rejects = pd.DataFrame(
        {
            "source": dup[WHERE].to_numpy(),
            "layer": layer,
            "row": dup[L.SOURCE_ROW].to_numpy(),
            "field": key,
            "value": dup[key].astype(str).to_numpy(),
            "reason": "key already in the workspace (append adds new keys only)",
        }
    )
    return data.loc[~clash], rejects


def _plain(data: pd.DataFrame) -> pd.DataFrame:
    """A layer without the reading bookkeeping columns (source row and file)."""
    return data.drop(columns=[L.SOURCE_ROW, WHERE], errors="ignore")


def _rejects_table(
    old: pd.DataFrame | None,
    rejects: pd.DataFrame,
    outcomes: dict[str, LayerOutcome],
    mode: str | None,
) -> pd.DataFrame:
    """The workspace's ``rejects`` table after this import: earlier rejects of layers
    this import replaces are dropped, all others kept, this import's added."""
    table = rejects
    if old is not None:
        old = pd.DataFrame(old.drop(columns="geometry", errors="ignore"))
        if "layer" not in old:
            old = old.iloc[0:0]
        elif mode != "append":
            replaced = [k for k, o in outcomes.items() if o.added > 0]
            old = old[~old["layer"].isin(replaced)]
        if len(old):
            table = pd.concat([old[L.REJECT_COLUMNS], rejects], ignore_index=True)
    table = table.astype(
        {"source": "string", "layer": "string", "field": "string", "value": "string"}
    )
    table["reason"] = table["reason"].astype("string")
    table["row"] = pd.to_numeric(table["row"]).astype("Int64")
    return table.reset_index(drop=True)


def _refuse_empty(result: ImportResult, frames: dict[str, Any]) -> None:
    """No valid row in the whole import: refuse (nothing is written). Otherwise a layer
    without a valid row is left as it is (not written, never emptied), with its rejects
    recorded."""
    empty = [o for o in result.layers.values() if o.added == 0]
    if len(empty) < len(result.layers):
        for o in empty:
            frames.pop(o.layer, None)
            o.written, o.kept = False, o.before
            result.report.layers[o.layer].notes.append(
                f"layer '{o.layer}': no valid row to import; left unchanged ({o.before:,} rows)"
            )
        return
    parts = []
    for o in empty:
        first = result.rejects[result.rejects["layer"] == o.layer].head(1)
        why = (
            f"; first: {first.iloc[0]['source']} row {first.iloc[0]['row']}, "
            f"{first.iloc[0]['field']}: {first.iloc[0]['reason']}"
            if len(first)
            else "; the source holds no rows"
        )
        parts.append(f"layer '{o.layer}': no valid row to import ({o.rejected:,} rejected{why})")
    for o in empty:
        o.written, o.kept = False, o.before
    raise NothingToImportError(
        f"{'; '.join(parts)}. Nothing was written; the workspace is unchanged.", result
    )


#: Layers grids are derived from: importing one of them refreshes the grids' figures.
REFRESH_INPUTS = frozenset(
    {"buildings", "facilities", "institutions", "addresses", "staff", "roads", "communities"}
)


def _refresh(store: Store, settings: Settings, written: list[str], mode: str | None) -> Any:
    """Recompute what the workspace derives from the imported layers (grid households,
    assignment, findings: :func:`gridgis.workflows.refresh`) when grids exist and an
    imported layer feeds them; the refresh's :class:`JobResult`, or None when nothing
    needed refreshing."""
    if not REFRESH_INPUTS.intersection(written) or not store.has("grids"):
        return None
    from gridgis.workflows.refresh import refresh

    return refresh(
        store,
        settings,
        command="import",
        parameters={"layers": sorted(REFRESH_INPUTS.intersection(written)), "mode": mode},
    )
