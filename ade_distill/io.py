"""Output tables a reviewer opens: CSV cells that cannot run as formulas, brat file names that
cannot collide."""

from __future__ import annotations

import csv
import hashlib
from typing import IO, Any, Iterable
from urllib.parse import quote

# A spreadsheet runs a cell that starts with one of these as a formula (=cmd|' /C calc'!A0).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula gets a leading apostrophe (shown
    as text, per OWASP's advice on CSV injection); numbers and other cells pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.DictWriter whose text cells are neutralised with :func:`csv_cell`."""

    def __init__(self, fh: IO[str], fieldnames: Iterable[str]) -> None:
        self._w = csv.DictWriter(fh, fieldnames=list(fieldnames))

    def writeheader(self) -> None:
        self._w.writeheader()

    def writerow(self, row: dict) -> None:
        self._w.writerow({k: csv_cell(v) for k, v in row.items()})


def brat_name(doc_id: str) -> str:
    """A file stem for a document id, one-to-one: characters other than letters, digits and
    ``-_.`` are percent-encoded (``a/b`` -> ``a%2Fb``, while ``a_b`` stays ``a_b``); a very long
    id is cut and tagged with its hash. A leading dot is encoded too (no hidden files)."""
    name = quote(doc_id, safe="-_.")
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name) > 200:
        name = f"{name[:180]}-{hashlib.sha1(doc_id.encode('utf-8')).hexdigest()[:16]}"
    return name
