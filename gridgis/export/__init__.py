"""What a planner hands in: the grid ledger (网格台账) as Excel or CSV, the layers as
Shapefile, GeoPackage (with QGIS styles) or GeoJSON, and the boards and atlas as PDF.

:func:`export_workspace` is the one entry point (``gridgis export`` and ``GET /export/…``
call it). Every format writes the tables of :func:`gridgis.export.ledger.ledger`, so the
figures agree between them. Phone numbers of staff (personal data) are written only when
``with_personal`` is true.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gridgis.errors import InputError
from gridgis.export.ledger import LEVELS, Ledger, column_label, ledger
from gridgis.standards import DEFAULT, Settings

#: Formats, with the file name written when the output is a folder.
FORMATS: dict[str, str] = {
    "xlsx": "ledger.xlsx",
    "csv": "",
    "shp": "",
    "gpkg": "ledger.gpkg",
    "geojson": "",
    "pdf": "",
}

#: What a PDF export prints.
PDF_KINDS = ("boards", "atlas", "both")


@dataclass
class ExportResult:
    """The files an export wrote, PDF page counts, and notes (e.g. layers missing);
    ``cluster``: the run reports of a partitioned export (empty in one process)."""

    files: list[Path] = field(default_factory=list)
    pages: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cluster: dict = field(default_factory=dict)


def _target(out: Path, fmt: str) -> tuple[Path, Path | None]:
    """(folder, single file or None) for an output path."""
    name = FORMATS[fmt]
    if name and out.suffix.lower() == Path(name).suffix:
        return out.parent, out
    return out, (out / name if name else None)


def check_export(fmt: str, pdf: str = "both", shp_encoding: str = "utf-8") -> None:
    """Check an export's format, PDF kind and Shapefile encoding before anything runs.

    Raises
    ------
    gridgis.errors.InputError
        Unknown format or PDF kind, bad encoding.
    """
    from gridgis.export.vector import SHP_ENCODINGS

    if fmt not in FORMATS:
        raise InputError(f"export format '{fmt}': use one of {', '.join(FORMATS)}")
    if pdf not in PDF_KINDS:
        raise InputError(f"PDF kind '{pdf}': use one of {', '.join(PDF_KINDS)}")
    if fmt == "shp" and shp_encoding.lower().replace("_", "-") not in SHP_ENCODINGS:
        raise InputError(f"shapefile encoding '{shp_encoding}': use utf-8 or gbk")


def export_workspace(
    layers: dict,
    fmt: str,
    out: str | Path,
    settings: Settings = DEFAULT,
    with_personal: bool = False,
    city: str = "",
    shp_encoding: str = "utf-8",
    pdf: str = "both",
    chinese_headers: bool = True,
    board_date: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    code: str | None = None,
    printer: Callable[..., int] | None = None,
) -> ExportResult:
    """Export a workspace's layers.

    Parameters
    ----------
    layers
        Layers by name (as read from the store; ``communities`` required).
    fmt
        ``xlsx``, ``csv``, ``shp``, ``gpkg``, ``geojson`` or ``pdf``.
    out
        Output folder, or for ``xlsx``/``gpkg`` a file with that suffix.
    with_personal
        Include staff phone numbers (personal data).
    shp_encoding
        ``utf-8`` or ``gbk`` for the Shapefile ``.dbf`` (named in its ``.cpg``).
    pdf
        ``boards`` (one A4 page per grid), ``atlas`` (cover, index, streets, communities,
        grids) or ``both``.
    chinese_headers
        CSV headers in Chinese (as the workbook) or the canonical English names.
    board_date
        Write date of the grids layer, the boards' effective date where a grid has no
        ``valid_from``.
    progress
        ``callback(done, total)`` while printing PDF pages.
    code
        PDF only: print just the grids under this street (9 digits), community (12) or
        grid (15) code — their boards, and an atlas of their street and communities
        (see :func:`select_code`).
    printer
        PDF only: ``printer(pages, target, progress) -> pages printed`` (default
        :func:`gridgis.export.pdf.print_pages`, in this process; the partitioned export,
        :func:`gridgis.partitioned.export.export_partitioned`, prints on a cluster).

    Raises
    ------
    gridgis.errors.InputError
        Unknown format or PDF kind, bad encoding, Chromium missing for PDF.
    gridgis.errors.NotFoundError
        The workspace has no communities.
    """
    from gridgis.export import vector
    from gridgis.export.blocks import GIS_FORMATS, export_block, write_blocks
    from gridgis.export.ledger import ledger_parts

    check_export(fmt, pdf, shp_encoding)
    out = Path(out)
    folder, single = _target(out, fmt)
    result = ExportResult()
    if fmt == "pdf":
        selected = None
        if code is not None:
            layers, selected = select_code(layers, code)
        return _export_pdf(
            layers, folder, settings, city, pdf, board_date, progress, result, selected, printer
        )
    # the whole city as one block: the partitioned export (gridgis.partitioned.export)
    # runs export_block on blocks of streets and joins them with the same write_blocks
    parts = ledger_parts(layers, with_personal=with_personal)
    result.notes += parts.notes
    extras = vector.extra_layers(layers) if fmt in GIS_FORMATS else {}
    block = export_block(parts, extras, fmt, chinese_headers)
    result.files += write_blocks([block], fmt, folder, single, parts.notes, city, shp_encoding)
    return result


def select_code(layers: dict, code: str) -> tuple[dict, list[str]]:
    """The layers a PDF of the grids under ``code`` needs, and those grids' codes.

    Kept: the selected grids (code prefix: a street's 9 digits, a community's 12, a grid's
    15) and every grid touching them (so the boards' 四至 still name the neighbours), the
    communities and streets of the kept grids; other layers are passed on whole (the map
    pages pick theirs by community).

    Raises
    ------
    gridgis.errors.InputError
        ``code`` is not 9, 12 or 15 digits.
    gridgis.errors.NotFoundError
        No grid lies under ``code``.
    """
    from gridgis.errors import NotFoundError

    code = str(code).strip()
    if not (code.isdigit() and len(code) in (9, 12, 15)):
        raise InputError(f"code '{code}': a street (9 digits), community (12) or grid (15) code")
    grids = layers.get("grids")
    if grids is None or len(grids) == 0:
        raise NotFoundError("PDF boards need layer 'grids' (delineate or import grids first)")
    gc = grids["grid_code"].astype(str).str.strip()
    mine = gc.str.startswith(code).to_numpy()
    if not mine.any():
        raise NotFoundError(f"no grid under code {code}")
    near = grids.geometry.intersects(grids.geometry[mine].union_all().envelope).to_numpy()
    kept = grids[mine | near]
    comm_codes = set(kept["grid_code"].astype(str).str[:12])
    out = dict(layers)
    out["grids"] = kept
    comms = layers["communities"]
    out["communities"] = comms[comms["community_code"].astype(str).isin(comm_codes)]
    streets = layers.get("streets")
    if streets is not None and len(streets):
        out["streets"] = streets[
            streets["street_code"].astype(str).isin({c[:9] for c in comm_codes})
        ]
    return out, sorted(gc[mine])


def _export_pdf(
    layers: dict,
    folder: Path,
    settings: Settings,
    city: str,
    kind: str,
    board_date: str | None,
    progress: Callable[[int, int], None] | None,
    result: ExportResult,
    selected: list[str] | None = None,
    printer: Callable[..., int] | None = None,
) -> ExportResult:
    """Write the map site to a temporary folder and print boards and/or the atlas (of the
    ``selected`` grid codes only, when given) with ``printer`` (default
    :func:`~gridgis.export.pdf.print_pages`)."""
    from gridgis.export.pdf import _chromium, board_pages, print_pages
    from gridgis.maps import write_maps

    _chromium()  # fail before the pages are written
    book = ledger(layers)
    if "grids" not in book.tables and kind != "atlas":
        raise InputError("PDF boards need layer 'grids' (delineate or import grids first)")
    with tempfile.TemporaryDirectory(prefix="gridgis-pdf-") as tmp:
        site = write_maps(
            layers, tmp, city=city, settings=settings, boards=True, board_date=board_date
        )
        result.notes += site.notes
        jobs: list[tuple[str, list]] = []
        if kind in ("boards", "both"):
            jobs.append(("boards", board_pages(Path(tmp), selected)))
        if kind in ("atlas", "both"):
            jobs.append(("atlas", _atlas(book, Path(tmp), city, selected)))
        folder.mkdir(parents=True, exist_ok=True)
        for name, pages in jobs:
            target = folder / f"{name}.pdf"
            result.pages[name] = (printer or print_pages)(pages, target, progress)
            result.files.append(target)
    return result


def _atlas(book: Ledger, site_dir: Path, city: str, selected: list[str] | None = None) -> list:
    from gridgis.export.pdf import atlas_pages

    st = book.plain("streets")
    cm = book.plain("communities")
    gr = book.plain("grids") if "grids" in book.tables else None
    if selected is not None and gr is not None:
        gr = gr[gr["grid_code"].isin(selected)]
        cm = cm[cm["community_code"].isin(set(gr["community_code"]))]
        st = st[st["street_code"].isin(set(cm["street_code"]))]
    counts = [
        ("街道", f"{len(st)}"),
        ("社区", f"{len(cm)}"),
        ("网格", f"{0 if gr is None else len(gr)}"),
        ("户数", f"{int(cm['households'].sum()):,}"),
    ]
    return atlas_pages(
        site_dir,
        list(zip(st["street_code"], st["name"].astype(str), strict=True)),
        list(zip(cm["community_code"], cm["name"].astype(str), cm["street_code"], strict=True)),
        [] if gr is None else list(zip(gr["grid_code"], gr["community_code"], strict=True)),
        f"{city} 网格地图集".strip(),
        counts,
    )


__all__ = [
    "FORMATS",
    "LEVELS",
    "PDF_KINDS",
    "ExportResult",
    "Ledger",
    "check_export",
    "column_label",
    "export_workspace",
    "ledger",
    "select_code",
]
