"""The ledger as an Excel workbook (openpyxl): one sheet per level with Chinese headers,
codes as text, frozen header row, autofilter and column widths."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gridgis.export.ledger import CODE_COLUMNS, LEVELS, Ledger, column_label

#: Excel number formats by kind of column.
_FORMATS = {"int": "#,##0", "area": "#,##0.0", "rate": "0.0%"}


def _kind(column: str) -> str | None:
    if column.startswith("coverage_"):
        return "rate"
    if column == "area_m2":
        return "area"
    if column in (
        "households",
        "building_count",
        "grid_count",
        "community_count",
        "residential_grids",
        "unit_grids",
        "flagged_grids",
        "community_workers",
    ) or column.startswith("facilities_"):
        return "int"
    return None


def _cell(value: object, column: str) -> object:
    """A value openpyxl writes as it should read: codes as text, NA as empty, bool as 是/否."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if column in CODE_COLUMNS:
        return str(value)
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "是" if value else "否"
    if hasattr(value, "item"):
        return value.item()
    return value


def _width(header: str, values: list) -> float:
    """Column width in Excel character units: CJK characters count double."""

    def w(text: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)

    longest = max([w(header)] + [w(str(v)) for v in values[:500] if v is not None])
    return float(min(max(longest + 2, 8), 60))


#: Number formats registered in every workbook (and every worker's) in this order, so a
#: style's number in the sheet XML is the same wherever the rows were written.
_STYLE_ORDER = ("@", _FORMATS["int"], _FORMATS["area"], _FORMATS["rate"])

#: Values kept per column for the column widths (:func:`_width` reads the first 500).
_WIDTH_ROWS = 500


@dataclass
class SheetRows:
    """Rows of one sheet written as the sheet's XML (``<row>`` elements numbered from
    ``first_row``), and the first values of each column (for the widths)."""

    xml: bytes
    rows: int
    first_row: int
    head: dict[str, list]
    styles: tuple = ()
    """The style table the rows' ``s=`` numbers refer to (:func:`_style_table`)."""


def _style_table(wb) -> tuple:
    """A workbook's cell styles and number formats, in the order their numbers run."""
    parts = (wb._fonts, wb._fills, wb._borders, wb._alignments, wb._protections)
    return (
        tuple(tuple(s) for s in wb._cell_styles),
        tuple(wb._number_formats),
        tuple(tuple(map(repr, p)) for p in parts),
    )


def _header_style(cell) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    cell.font = Font(bold=True)
    cell.fill = PatternFill("solid", fgColor="DDEBF7")
    cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _styles(wb, ws) -> None:
    """Register the header style and the number formats, in :data:`_STYLE_ORDER`."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value="")
    _header_style(cell)
    _ = cell.style_id
    for fmt in _STYLE_ORDER:
        cell = WriteOnlyCell(ws, value=0)
        cell.number_format = fmt
        _ = cell.style_id


def xlsx_chunk(frame: pd.DataFrame, first_row: int = 2) -> SheetRows:
    """Rows of a ledger table (without geometry) as sheet XML, the first at row
    ``first_row`` (row 1 holds the header): codes as text (``@``), NA as empty, bool as
    是/否 (:func:`_cell`), counts, areas and rates with number formats. Written by
    openpyxl's own row writer on a workbook of its own with the styles registered in the
    one order (:func:`_styles`), so any block of rows gives the XML of the whole."""
    from io import BytesIO

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.worksheet._writer import WorksheetWriter
    from openpyxl.xml.functions import xmlfile

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("rows")
    _styles(wb, ws)
    cols = list(frame.columns)
    columns = [[_cell(v, c) for v in frame[c].tolist()] for c in cols]
    formats = [("@" if c in CODE_COLUMNS else _FORMATS.get(_kind(c) or "")) for c in cols]
    writer = WorksheetWriter(ws, out=BytesIO())
    buf = BytesIO()
    with xmlfile(buf) as xf, xf.element("rows"):
        for i, row in enumerate(zip(*columns, strict=True), start=first_row):
            out = []
            for value, fmt in zip(row, formats, strict=True):
                if fmt and value is not None:
                    cell = WriteOnlyCell(ws, value=value)
                    cell.number_format = fmt
                    out.append(cell)
                else:
                    out.append(value)
            writer.write_row(xf, ws._values_to_row(out, i), i)
    writer.close()
    xml = buf.getvalue()
    xml = xml[xml.index(b">") + 1 : xml.rindex(b"</rows>")] if len(frame) else b""
    head = {c: v[:_WIDTH_ROWS] for c, v in zip(cols, columns, strict=True)}
    return SheetRows(xml, len(frame), first_row, head, _style_table(wb))


def write_xlsx(book: Ledger, path: str | Path, title: str = "") -> Path:
    """Write the ledger workbook atomically.

    Parameters
    ----------
    book
        The ledger (:func:`gridgis.export.ledger.ledger`).
    path
        Target ``.xlsx`` file (written to a temporary name, then renamed).
    title
        Workbook title (document properties), e.g. the city's name.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    sheets = {level: [xlsx_chunk(book.plain(level))] for level in book.tables}
    return write_xlsx_chunks(sheets, path, title, book.notes)


def write_xlsx_chunks(
    sheets: dict[str, list[SheetRows]], path: str | Path, title: str, notes: list[str]
) -> Path:
    """Write the workbook of :func:`write_xlsx` from each level's :func:`xlsx_chunk` rows
    in row order (consecutive: each block's first row follows the last one's). What a
    sheet shows over all its rows (column widths, the filter's range) is computed here
    over the joined rows; openpyxl writes the workbook with each sheet's header, and the
    rows' XML is put into each sheet's ``sheetData`` as the file is finished.

    Raises
    ------
    ValueError
        When the blocks' rows are not consecutive, or were written with other styles than
        the workbook registers (their ``s=`` numbers would point at the wrong style).
    """
    from openpyxl import Workbook

    path = Path(path)
    wb = Workbook(write_only=True)
    wb.properties.title = f"{title} 网格台账".strip()
    wb.properties.creator = "gridgis"
    rows: list[tuple] = []
    for level in (lv for lv in LEVELS if lv in sheets):
        blocks = sheets[level]
        nxt = 2
        for b in blocks:
            if b.first_row != nxt:
                raise ValueError(f"sheet {level}: rows of blocks not consecutive at row {nxt}")
            nxt += b.rows
        ws = _write_sheet(wb, LEVELS[level], blocks)
        rows.append((ws, [b.xml for b in blocks]))
    ours = _style_table(wb)
    if any(b.styles != ours for blocks in sheets.values() for b in blocks):
        raise ValueError("rows written with a style table other than the workbook's")
    if notes:
        ws = wb.create_sheet("说明")
        ws.column_dimensions["A"].width = 90
        ws.append(["说明"])
        for note in notes:
            ws.append([note])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    heads = path.with_name(path.name + ".head.tmp")
    try:
        wb.save(heads)  # numbers the sheets: their paths in the file are known now
        _with_rows(heads, tmp, {ws.path.lstrip("/"): xml for ws, xml in rows})
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        heads.unlink(missing_ok=True)
    return path


def _with_rows(src: Path, dst: Path, rows: dict[str, list[bytes]]) -> None:
    """Copy the workbook ``src`` to ``dst`` with each sheet's rows (by member name) put
    after its header row, at the end of its ``sheetData``."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename not in rows:
                zout.writestr(info, data)
                continue
            head, tail = data.rsplit(b"</sheetData>", 1)
            size = len(data) + sum(map(len, rows[info.filename]))
            with zout.open(info, "w", force_zip64=size > zipfile.ZIP64_LIMIT) as fh:
                fh.write(head)
                for xml in rows[info.filename]:
                    fh.write(xml)
                fh.write(b"</sheetData>" + tail)


def _write_sheet(wb, name: str, blocks: list[SheetRows]):
    """One ledger sheet's header: styled Chinese header, frozen, filtered, widths set
    (from the first rows of all ``blocks``); its rows are put in by :func:`_with_rows`."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(name)
    _styles(wb, ws)
    cols = list(blocks[0].head)
    n_rows = sum(b.rows for b in blocks)
    headers = [column_label(c) for c in cols]
    for j, c in enumerate(cols, start=1):
        first = [v for b in blocks for v in b.head[c]][:_WIDTH_ROWS]
        ws.column_dimensions[get_column_letter(j)].width = _width(headers[j - 1], first)
    ws.freeze_panes = "A2"
    if cols:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{n_rows + 1}"
    head = []
    for text in headers:
        cell = WriteOnlyCell(ws, value=text)
        _header_style(cell)
        head.append(cell)
    ws.append(head)
    return ws
