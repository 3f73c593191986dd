"""CSV cells that a spreadsheet program cannot run as a formula (OWASP CSV-injection rule).

A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula (or becomes
one) when the file is opened in Excel, LibreOffice or Google Sheets; such a cell is written with a
leading apostrophe, which every one of them shows as text. Numbers are written as they are: `-12.50`
is a number, not a formula.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return text.strip() == text and text.lower() not in ("nan", "-nan", "+nan", "inf", "-inf", "+inf",
                                                            "infinity", "-infinity", "+infinity")


def safe_cell(value: Any) -> Any:
    """The value, with a leading apostrophe when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose text cells are neutralised (see the module's docstring)."""

    def __init__(self, f, **kwargs):
        self._writer = csv.writer(f, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(f, **kwargs) -> SafeWriter:
    return SafeWriter(f, **kwargs)
