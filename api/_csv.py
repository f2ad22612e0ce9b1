"""CSV the service writes, safe to open in a spreadsheet (issue 21, formula injection).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel, WPS and
LibreOffice as a formula (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``, DDE). Every text cell that starts
with one of them gets a leading apostrophe, as OWASP recommends: the spreadsheet shows the text, and a
reader of the raw file sees the apostrophe. Numbers written as numbers are left alone (a count is never a
formula); a negative number given as text is quoted like any other text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """The value as it may go into a CSV cell: text that a spreadsheet would run is prefixed with ``'``."""
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_rows(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV document (header, then rows), every cell through :func:`safe_cell`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def write_dicts(rows: Sequence[Mapping[str, object]]) -> str:
    """A CSV document of dicts sharing the first one's keys (empty for no rows)."""
    if not rows:
        return ""
    keys = list(rows[0].keys())
    return write_rows(keys, ([r.get(k) for k in keys] for r in rows))
