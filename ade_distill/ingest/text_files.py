"""Free text such as clinical notes: a folder of .txt files, a CSV/TSV, or JSONL."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

from ..core.schema import Document
from . import InputError, Problems


def _txt_folder(folder: Path, problems: Problems, pattern: str) -> Iterator[Document]:
    files = sorted(p for p in folder.rglob(pattern) if p.is_file())
    if not files:
        raise InputError(f"{folder}: no files matching {pattern!r}")
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.add(f"{path}: not UTF-8 text (byte {exc.start})")
            continue
        if not text.strip():
            problems.add(f"{path}: empty document")
            continue
        rel = path.relative_to(folder).with_suffix("")
        yield Document(id=rel.as_posix(), text=text, source="text", meta={"path": str(path)})


def _table(path: Path, problems: Problems, id_column: str, text_column: str,
           title_column: str | None) -> Iterator[Document]:
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        with path.open("r", encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            header = reader.fieldnames or []
            for col in (id_column, text_column) + ((title_column,) if title_column else ()):
                if col not in header:
                    raise InputError(f"{path}: no column {col!r} (columns: {', '.join(header) or 'none'})")
            seen: set[str] = set()
            for row in reader:
                line = reader.line_num
                doc_id = (row.get(id_column) or "").strip()
                text = row.get(text_column) or ""
                if not doc_id:
                    problems.add(f"{path}:{line}: empty {id_column!r}")
                    continue
                if doc_id in seen:
                    problems.add(f"{path}:{line}: duplicate id {doc_id!r}")
                    continue
                if not text.strip():
                    problems.add(f"{path}:{line}: record {doc_id!r}: empty document")
                    continue
                seen.add(doc_id)
                meta = {k: v for k, v in row.items()
                        if k not in (id_column, text_column, title_column) and k is not None}
                title = (row.get(title_column) or "").strip() if title_column else ""
                yield Document(id=doc_id, title=title, text=text, source="text", meta=meta)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def _jsonl(path: Path, problems: Problems, id_column: str, text_column: str,
           title_column: str | None) -> Iterator[Document]:
    try:
        with path.open("r", encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    problems.add(f"{path}:{line_no}: invalid JSON ({exc.msg})")
                    continue
                if not isinstance(rec, dict):
                    problems.add(f"{path}:{line_no}: expected a JSON object")
                    continue
                doc_id, text = rec.get(id_column), rec.get(text_column)
                if doc_id is None or not isinstance(text, str):
                    problems.add(f"{path}:{line_no}: needs {id_column!r} and a string {text_column!r}")
                    continue
                if not text.strip():
                    problems.add(f"{path}:{line_no}: record {doc_id!r}: empty document")
                    continue
                title = rec.get(title_column) or "" if title_column else ""
                meta = rec.get("meta") if isinstance(rec.get("meta"), dict) else {}
                yield Document(id=str(doc_id), title=str(title), text=text,
                               source=str(rec.get("source") or "text"), meta=meta)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def ingest_text(path: str | Path, *, id_column: str = "id", text_column: str = "text",
                title_column: str | None = None, pattern: str = "*.txt",
                problems: Problems | None = None) -> Iterator[Document]:
    """Documents from a folder of text files, a CSV/TSV table, or JSONL.

    A folder yields one Document per file (id = path relative to the folder, without
    suffix). Tables and JSONL take ids and texts from the named columns/keys. Empty or
    undecodable records are reported through ``problems`` and skipped.
    """
    path = Path(path)
    problems = problems if problems is not None else Problems()
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return _txt_folder(path, problems, pattern)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".tab"):
        return _table(path, problems, id_column, text_column, title_column)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl(path, problems, id_column, text_column, title_column)
    if suffix == ".txt":
        return _single_txt(path, problems)
    raise InputError(f"{path}: unknown input type {suffix!r} (use a folder, .txt, .csv, .tsv or .jsonl)")


def _single_txt(path: Path, problems: Problems) -> Iterator[Document]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    if not text.strip():
        raise InputError(f"{path}: empty document")
    yield Document(id=path.stem, text=text, source="text", meta={"path": str(path)})
