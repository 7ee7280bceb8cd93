"""The ledger as an Excel workbook (openpyxl): one sheet per level with Chinese headers,
codes as text, frozen header row, autofilter and column widths."""

from __future__ import annotations

import math
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


def xlsx_chunk(frame: pd.DataFrame) -> dict[str, list]:
    """Rows of a ledger table (without geometry) as the cells the sheet holds (:func:`_cell`),
    by column."""
    return {c: [_cell(v, c) for v in frame[c].tolist()] for c in frame.columns}


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
    sheets: dict[str, list[dict[str, list]]], path: str | Path, title: str, notes: list[str]
) -> Path:
    """Write the workbook of :func:`write_xlsx` from each level's :func:`xlsx_chunk` cells
    in row order; what a sheet shows over all its rows (column widths, the filter's
    range) is computed here over the joined rows."""
    from openpyxl import Workbook

    path = Path(path)
    # write-only: rows are streamed to the file, so a city of 50,000 grids does not hold
    # millions of cell objects in memory
    wb = Workbook(write_only=True)
    wb.properties.title = f"{title} 网格台账".strip()
    wb.properties.creator = "gridgis"
    for level in (lv for lv in LEVELS if lv in sheets):
        blocks = sheets[level]
        columns = {c: [v for b in blocks for v in b[c]] for c in blocks[0]}
        _write_sheet(wb, LEVELS[level], columns)
    if notes:
        ws = wb.create_sheet("说明")
        ws.column_dimensions["A"].width = 90
        ws.append(["说明"])
        for note in notes:
            ws.append([note])
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(tmp)
    tmp.replace(path)
    return path


def _write_sheet(wb, name: str, columns: dict[str, list]) -> None:
    """One ledger sheet: styled Chinese header, frozen, filtered, widths set; codes as text
    (``@``), counts, areas and rates with number formats."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(name)
    cols = list(columns)
    n_rows = len(columns[cols[0]]) if cols else 0
    headers = [column_label(c) for c in cols]
    for j, c in enumerate(cols, start=1):
        ws.column_dimensions[get_column_letter(j)].width = _width(headers[j - 1], columns[c])
    ws.freeze_panes = "A2"
    if cols:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{n_rows + 1}"
    head = []
    for text in headers:
        cell = WriteOnlyCell(ws, value=text)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        head.append(cell)
    ws.append(head)
    formats = [("@" if c in CODE_COLUMNS else _FORMATS.get(_kind(c) or "")) for c in cols]
    for row in zip(*columns.values(), strict=True):
        out = []
        for value, fmt in zip(row, formats, strict=True):
            if fmt and value is not None:
                cell = WriteOnlyCell(ws, value=value)
                cell.number_format = fmt
                out.append(cell)
            else:
                out.append(value)
        ws.append(out)
