"""Partitioned export: the PDF's pages printed by Chromium on the workers, in ranges of
whole print calls, joined here in order."""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gridgis.partitioned.runner import Runner, n_workers_of, nearest_cuts
from gridgis.standards import CLUSTER, DEFAULT, ClusterRules, Settings

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

    from gridgis.export import ExportResult

log = logging.getLogger(__name__)


def _site_root(pages: Sequence[tuple[Path, str]]) -> Path:
    """The map site the pages belong to: the folder holding ``static/`` above them."""
    for path, _ in pages:
        for folder in Path(path).resolve().parents:
            if (folder / "static").is_dir():
                return folder
    raise ValueError("PDF pages outside a written map site (no static/ folder above them)")


def _files(root: Path, rel: Sequence[str]) -> dict[str, bytes]:
    return {r: (root / r).read_bytes() for r in rel}


def _print_part(static: dict[str, bytes], files: dict[str, bytes], pages: list) -> bytes:
    """On a worker: the pages (paths relative to the site) printed into one PDF, from a
    private copy of the site's ``static/`` and of these pages."""
    from gridgis.export.pdf import print_pages

    with tempfile.TemporaryDirectory(prefix="gridgis-pdf-part-") as tmp:
        root = Path(tmp) / "site"
        for rel, data in [*static.items(), *files.items()]:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        out = Path(tmp) / "part.pdf"
        print_pages([(root / rel, kind) for rel, kind in pages], out)
        return out.read_bytes()


def cluster_printer(
    client: Client, rules: ClusterRules = CLUSTER, report: dict[str, Any] | None = None
) -> Callable[..., int]:
    """A ``printer(pages, target, progress)`` for :func:`gridgis.export.export_workspace`
    that prints on the cluster what :func:`gridgis.export.pdf.print_pages` prints here.

    The pages are cut into contiguous ranges of whole print calls
    (:func:`gridgis.export.pdf.print_groups`: books of boards, single map pages), so every
    book holds the same boards as in one process; one range per worker (each range
    starts a Chromium, seconds), balanced by print calls. A range goes to a worker with
    its HTML files and the site's ``static/`` folder (no shared disk needed), is printed
    by that worker's Chromium, and the printed pages are joined here, in order, with
    pypdf into ``target`` (written to a temporary name, then renamed)."""

    def printer(
        pages: Sequence[tuple[Path, str]],
        target: str | Path,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        from pypdf import PdfReader, PdfWriter

        from gridgis.export.pdf import BOOK_SIZE, _chromium, print_groups

        _chromium()
        root = _site_root(pages)
        groups = print_groups(pages)
        rel = [[(Path(p).resolve().relative_to(root).as_posix(), k) for p, k in g] for g in groups]
        static_dir = root / "static"
        static = {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(static_dir.rglob("*"))
            if p.is_file()
        }
        run = Runner(client, "export", rules)
        static_f = run.broadcast(static)
        # a print call costs about a second whatever its length (BOOK_SIZE): weigh calls;
        # one range per worker, as each range starts a Chromium of its own (seconds)
        weight = np.array([1.0 + len(g) / BOOK_SIZE for g in groups])
        cuts = nearest_cuts(weight, min(len(groups), n_workers_of(client)))
        items = []
        for a, b in cuts:
            chunk = [page for g in rel[a:b] for page in g]
            files = _files(root, sorted({r for r, _ in chunk}))
            items.append((f"pages{a}-{b}", (static_f, files, chunk)))
        parts = run.run(_print_part, items)
        got = run.finish()
        if report is not None:
            report.setdefault("runs", []).append(got.as_dict())
        writer = PdfWriter()
        for data in parts:
            for page in PdfReader(io.BytesIO(data)).pages:
                writer.add_page(page)
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as fh:
            writer.write(fh)
        tmp.replace(target)
        if progress:
            progress(len(pages), len(pages))
        return len(writer.pages)

    return printer


def export_partitioned(
    client: Client,
    layers: dict,
    fmt: str,
    out: str | Path,
    settings: Settings = DEFAULT,
    rules: ClusterRules = CLUSTER,
    **kw: Any,
) -> ExportResult:
    """:func:`gridgis.export.export_workspace` with the work that grows with the city on
    the cluster; the files are the same (bytes for CSV and GeoJSON, cells for the
    workbook, rows and geometries for Shapefile and GeoPackage).

    * PDF: the boards and atlas pages are printed on the workers (:func:`cluster_printer`),
      one A4 page per grid, in the same books and order as in one process; the map site
      they print is written once, here, as in one process.
    * xlsx, csv, shp, gpkg, geojson: the ledger's inputs are prepared here once
      (:func:`gridgis.export.ledger.ledger_parts`), the streets cut into blocks
      (:func:`gridgis.export.blocks.street_blocks`: whole streets, consecutive in code
      order, one block per worker), and each block's ledger rows and
      their chunks in the format (:func:`gridgis.export.blocks.export_block`: CSV text,
      GeoJSON feature text, the workbook's sheet XML, the layers' frames; the extra
      layers' rows in consecutive ranges, one per block) computed on a worker. The
      chunks are joined here in order and each file written once, atomically
      (:func:`gridgis.export.blocks.write_blocks`, as in one process). Codes not nested
      street > community > grid (rows of a block would not follow each other in a
      table) make one block, with a warning.

    A block that fails is retried (``rules.retries``); if it still fails
    :class:`~gridgis.partitioned.runner.PartitionError` is raised and nothing is written.

    Returns
    -------
    ExportResult
        As :func:`gridgis.export.export_workspace`; ``cluster`` holds the run reports
        (``runs``: one per PDF printed, or the one run of the blocks).
    """
    from gridgis.export import ExportResult, check_export, export_workspace
    from gridgis.export.blocks import BLOCK_FORMATS

    report: dict[str, Any] = {}
    if fmt in BLOCK_FORMATS:
        check_export(fmt, kw.get("pdf", "both"), kw.get("shp_encoding", "utf-8"))
        return _export_blocks(client, layers, fmt, Path(out), rules, report, ExportResult(), **kw)
    printer = cluster_printer(client, rules, report) if fmt == "pdf" else None
    result = export_workspace(layers, fmt, out, settings, printer=printer, **kw)
    result.cluster = report
    return result


def _export_blocks(
    client: Client,
    layers: dict,
    fmt: str,
    out: Path,
    rules: ClusterRules,
    report: dict[str, Any],
    result: ExportResult,
    with_personal: bool = False,
    city: str = "",
    shp_encoding: str = "utf-8",
    chinese_headers: bool = True,
    **_: Any,
) -> ExportResult:
    """The ledger formats from blocks of whole streets run on the cluster."""
    from gridgis.export import _target, vector
    from gridgis.export.blocks import (
        GIS_FORMATS,
        export_block,
        first_rows,
        row_ranges,
        street_blocks,
        write_blocks,
    )
    from gridgis.export.ledger import ledger_parts

    parts = ledger_parts(layers, with_personal=with_personal)
    result.notes += parts.notes
    # one block per worker, as for the PDF: a block's ledger costs a fixed ~0.1 s of
    # pandas calls whatever its size (1,000,000 households: 8 blocks on 2 workers took
    # 2.2 s for the CSV, 2 blocks 1.2 s), and the rows are few (one per grid)
    blocks, nested = street_blocks(parts, n_workers_of(client))
    if not nested:
        log.warning("export: codes not nested street > community > grid; one block")
    extras = vector.extra_layers(layers) if fmt in GIS_FORMATS else {}
    cut = {name: row_ranges(len(f), len(blocks)) for name, f in extras.items()}
    pieces = [parts.block(streets) for streets in blocks]
    starts = first_rows(pieces) if fmt == "xlsx" else [None] * len(pieces)
    items = []
    for k, piece in enumerate(pieces):
        rows = {n: f.iloc[a:b] for n, f in extras.items() for a, b in [cut[n][k]] if b > a}
        items.append((f"block{k}", (piece, rows, fmt, chinese_headers, starts[k])))
    run = Runner(client, "export", rules)
    chunks = run.run(export_block, items)
    got = run.finish()
    report.setdefault("runs", []).append(got.as_dict())
    log.info("export %s: %d blocks of streets on %d workers", fmt, len(blocks), got.workers)
    folder, single = _target(out, fmt)
    result.files += write_blocks(chunks, fmt, folder, single, parts.notes, city, shp_encoding)
    result.cluster = report
    return result
