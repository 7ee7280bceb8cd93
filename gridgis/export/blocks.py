"""The ledger formats (xlsx, csv, shp, gpkg, geojson) written from blocks of whole streets.

One process and a cluster write a ledger file the same way, with the same functions:

1. :func:`gridgis.export.ledger.ledger_parts` prepares, once over the whole workspace,
   what the rows are computed from (facility keys by the one point-in-polygon rule,
   categories and coverage columns present, the metric CRS of each level…);
2. :func:`street_blocks` cuts the streets into blocks (one block in one process);
3. :func:`export_block` computes a block's ledger rows
   (:func:`~gridgis.export.ledger.ledger_rows`) and turns them into the format's chunks:
   CSV text without the header, GeoJSON feature text, the workbook's sheet XML (rows
   numbered from the block's first row), the Shapefile's or GeoPackage's frames — on a
   worker, or here for the whole city;
4. :func:`write_blocks` joins the chunks in row order and writes each file once,
   atomically (temporary name, then renamed), as the single-process export always did.

Blocks are ranges of whole streets in code order; each table's rows come out in the
whole table's order as long as the blocks' rows are consecutive in it (they are when a
grid's code starts with its community's and a community's with its street's, as the
national codes do). :func:`street_blocks` checks that and otherwise makes one block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgis.export.ledger import LedgerParts, ledger_rows

#: Formats whose files hold the extra layers (coverage gaps) beside the ledger tables.
GIS_FORMATS = ("shp", "gpkg", "geojson")

#: Formats written from blocks (every format but the PDF).
BLOCK_FORMATS = ("xlsx", "csv", *GIS_FORMATS)


def _street_keys(parts: LedgerParts) -> tuple[list[str], dict[str, np.ndarray]]:
    """The streets (codes, sorted) and, per level, each row's street position."""
    keys = {level: s.fillna("").astype(str).to_numpy() for level, s in parts.street_of.items()}
    streets = sorted(set().union(*(set(k) for k in keys.values())))
    pos = {level: np.searchsorted(streets, k) for level, k in keys.items()}
    return streets, pos


def street_blocks(parts: LedgerParts, n: int) -> tuple[list[set[str]], bool]:
    """At most ``n`` blocks of whole streets, consecutive in code order and of about equal
    rows (grids, communities, streets), and whether the codes nest: when a table's rows
    would not come out consecutive (codes not nested street > community > grid), one
    block and ``False``."""
    from gridgis.partitioned.runner import nearest_cuts

    streets, pos = _street_keys(parts)
    if not streets:
        return [set()], True
    weight = np.ones(len(streets))
    for p in pos.values():
        weight += np.bincount(p, minlength=len(streets))
    cuts = nearest_cuts(weight, n)
    block_of = np.empty(len(streets), np.int64)
    for k, (a, b) in enumerate(cuts):
        block_of[a:b] = k
    if any(np.any(np.diff(block_of[p]) < 0) for p in pos.values()):
        return [set(streets)], False
    return [set(streets[a:b]) for a, b in cuts], True


def _plain(table: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.DataFrame(table.drop(columns=table.geometry.name))


def export_block(
    parts: LedgerParts,
    extras: dict[str, gpd.GeoDataFrame],
    fmt: str,
    chinese_headers: bool = True,
    first_rows: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The chunks of one block in format ``fmt``, by layer (ledger levels in order, then
    the extra layers' rows given with the block: ``extras``, only for the GIS formats).

    ``parts`` is :func:`~gridgis.export.ledger.ledger_parts` of the whole workspace or its
    :meth:`~gridgis.export.ledger.LedgerParts.block` of some streets; ``first_rows``
    (xlsx): the sheet row of the block's first row per level (default 2, below the
    header: the whole city), see :func:`first_rows`.
    """
    from gridgis.export import vector
    from gridgis.export.xlsx import xlsx_chunk

    tables = ledger_rows(parts)
    if fmt == "xlsx":
        first = first_rows or {}
        return {level: xlsx_chunk(_plain(t), first.get(level, 2)) for level, t in tables.items()}
    if fmt == "csv":
        return {level: vector.csv_chunk(_plain(t), chinese_headers) for level, t in tables.items()}
    frames = {**tables, **{name: vector.lonlat(f) for name, f in extras.items()}}
    if fmt == "geojson":
        return {name: vector.geojson_chunk(f) for name, f in frames.items()}
    if fmt == "shp":
        return {name: vector.shp_chunk(name, f) for name, f in frames.items()}
    return {name: vector.gpkg_chunk(f) for name, f in frames.items()}


def write_blocks(
    blocks: list[dict[str, Any]],
    fmt: str,
    folder: Path,
    single: Path | None,
    notes: list[str],
    title: str = "",
    shp_encoding: str = "utf-8",
) -> list[Path]:
    """Write the files of format ``fmt`` from the :func:`export_block` results of
    consecutive blocks, in order (``folder``/``single``: as :func:`gridgis.export.
    export_workspace` resolves its output; ``notes`` go to the workbook's 说明 sheet)."""
    from gridgis.export import vector
    from gridgis.export.xlsx import write_xlsx_chunks

    chunks: dict[str, list] = {}
    for block in blocks:
        for name, chunk in block.items():
            chunks.setdefault(name, []).append(chunk)
    if fmt == "xlsx":
        return [write_xlsx_chunks(chunks, single, title, notes)]
    if fmt == "csv":
        return vector.write_csv_chunks(chunks, folder)
    if fmt == "geojson":
        return vector.write_geojson_chunks(chunks, folder)
    if fmt == "shp":
        return vector.write_shp_chunks(chunks, folder, shp_encoding)
    return [vector.write_gpkg_chunks(chunks, single)]


def block_rows(parts: LedgerParts) -> dict[str, int]:
    """Rows per ledger level of ``parts``: one per grid, community and street (a code
    repeated in a layer stops the ledger with an error, so there are never more; the
    workbook checks that the blocks' rows follow each other, see
    :func:`gridgis.export.xlsx.write_xlsx_chunks`)."""
    out = {"grids": len(parts.grids)} if parts.grids is not None else {}
    return {**out, "communities": len(parts.communities), "streets": len(parts.streets)}


def first_rows(blocks: list[LedgerParts]) -> list[dict[str, int]]:
    """The sheet row (below the header) where each block's rows begin, by level."""
    out, nxt = [], None
    for b in blocks:
        rows = block_rows(b)
        nxt = nxt or dict.fromkeys(rows, 2)
        out.append(dict(nxt))
        nxt = {k: nxt[k] + n for k, n in rows.items()}
    return out


def row_ranges(n_rows: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive ranges of about equal rows covering ``0..n_rows``."""
    edges = np.linspace(0, n_rows, parts + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


__all__ = [
    "BLOCK_FORMATS",
    "GIS_FORMATS",
    "block_rows",
    "export_block",
    "first_rows",
    "row_ranges",
    "street_blocks",
    "write_blocks",
]
