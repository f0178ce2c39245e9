"""Spreadsheets (XLSX) and CSV to blocks: one block per row, each naming its columns.

A row alone ("12 | 3.5 | yes") means nothing; so each row is written with its header row's
names ("Item: 12 | Price: 3.5 | In stock: yes"), and whichever chunk holds it, its header goes
with it. A sheet's name is the heading of its rows and its number the page, for citations.
Bounded: a sheet may declare a million empty columns or rows cheaply, and openpyxl would pad
every row to the widest, so rows, columns and cells are counted as they come.
"""

from __future__ import annotations

import csv
import datetime
import io
import warnings
from collections.abc import Iterable, Sequence

from app.services import extraction
from app.services.extraction import Block, UnreadableDocument, decode_text
from app.services.extraction_docx import unpacked_archive

MAX_SHEET_COLUMNS = 16_384  # Excel's own limit
MAX_SHEET_ROWS = 1_048_576  # Excel's own limit, empty rows included
MAX_SHEET_CELLS = 2_000_000  # non-empty cells over the whole workbook
# A column's name is repeated with every value under it: a long one is cut.
COLUMN_NAME_CHARS = 100
_CSV_SNIFF_CHARS = 16 * 1024
_CSV_DELIMITERS = ",;\t|"


class _Budget:
    """The cells and characters left for the whole workbook."""

    def __init__(self) -> None:
        self.cells = MAX_SHEET_CELLS
        self.chars = extraction.MAX_TEXT_CHARS

    def spend(self, cells: int, chars: int = 0) -> None:
        self.cells -= cells
        self.chars -= chars
        if self.cells < 0 or self.chars < 0:
            raise UnreadableDocument(
                f"the spreadsheet has more than {MAX_SHEET_CELLS} cells with values, or more"
                f" than {extraction.MAX_TEXT_CHARS} characters of text with its column names;"
                " split it into smaller files"
            )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    return " ".join(str(value).split())


def rows_as_blocks(
    rows: Iterable[Sequence[object]],
    heading_path: tuple[str, ...],
    page: int | None,
    budget: _Budget,
) -> list[Block]:
    """Each non-empty row after the header as "name: value | ..." (empty cells left out)."""
    blocks: list[Block] = []
    header: list[str] | None = None
    for number, row in enumerate(rows, start=1):
        if number > MAX_SHEET_ROWS:
            raise UnreadableDocument(f"a sheet has more than {MAX_SHEET_ROWS} rows")
        if len(row) > MAX_SHEET_COLUMNS:
            raise UnreadableDocument(
                f"row {number} has {len(row)} columns; the limit is {MAX_SHEET_COLUMNS}"
            )
        cells = [_text(value) for value in row]
        filled = sum(1 for cell in cells if cell)
        if not filled:
            continue
        budget.spend(filled)
        if header is None:
            header = [cell[:COLUMN_NAME_CHARS] for cell in cells]
            continue
        names = header + [""] * (len(cells) - len(header))
        text = " | ".join(
            f"{name or f'column {i + 1}'}: {cell}"
            for i, (name, cell) in enumerate(zip(names, cells, strict=False))
            if cell
        )
        budget.spend(0, len(text))
        blocks.append(Block(text, heading_path, page))
    if header is not None and not blocks:  # a header alone, or a one-row list: its text
        blocks.append(Block(" | ".join(cell for cell in header if cell), heading_path, page))
    return blocks


def xlsx_blocks(data: bytes) -> list[Block]:
    """Each sheet's name, then its rows, in workbook order; the sheet's number is the page."""
    import openpyxl

    with warnings.catch_warnings():  # unsupported extensions (data validation, ...): noise
        warnings.simplefilter("ignore")
        workbook = openpyxl.load_workbook(
            io.BytesIO(unpacked_archive(data, "XLSX")), read_only=True, data_only=True
        )
    try:
        blocks: list[Block] = []
        budget = _Budget()
        for number, sheet in enumerate(workbook.worksheets, start=1):
            if not hasattr(sheet, "reset_dimensions"):
                continue  # a chartsheet: no cells
            # The declared dimensions may be a million columns wide: openpyxl would pad to them.
            sheet.reset_dimensions()
            rows = rows_as_blocks(sheet.iter_rows(values_only=True), (sheet.title,), number, budget)
            if rows:
                blocks += [Block(sheet.title, (sheet.title,), number), *rows]
        return blocks
    finally:
        workbook.close()


def csv_blocks(data: bytes) -> list[Block]:
    """The rows of a CSV (comma, semicolon, tab or bar separated, as its start shows)."""
    text = decode_text(data)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:_CSV_SNIFF_CHARS], delimiters=_CSV_DELIMITERS
        )
    except csv.Error:  # one column, or nothing it recognises: commas
        dialect = csv.excel
    return rows_as_blocks(csv.reader(io.StringIO(text), dialect), (), None, _Budget())


def check_csv_head(head: str) -> None:
    """Refuse a CSV whose first line already has more columns than a sheet may have."""
    first = head.split("\n", 1)[0]
    widest = max(first.count(delimiter) for delimiter in _CSV_DELIMITERS) + 1
    if widest > MAX_SHEET_COLUMNS:
        raise UnreadableDocument(
            f"the CSV's first line has {widest} columns; the limit is {MAX_SHEET_COLUMNS}"
        )
