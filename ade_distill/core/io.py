"""Outputs a reviewer opens, written in one place: ADE records (JSONL, CSV, Parquet, brat),
failures files, CSV cells that cannot run as formulas, brat file names that cannot collide.
Every file is written atomically (complete or absent)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any, Iterable
from urllib.parse import quote

from .registry import writers
from .schema import Document, Sentence, atomic_open

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


@dataclass
class AdeRecord:
    """One extracted adverse drug event with document offsets."""

    doc_id: str | None
    sentence_id: str
    drug: str
    drug_start: int | None
    drug_end: int | None
    effect: str
    effect_start: int | None
    effect_end: int | None
    confidence: float | None
    drug_confidence: float | None
    effect_confidence: float | None
    # after extraction (post/): the drug's substance, the reaction's MedDRA coding, the assertion
    # flag; empty where that step is not configured
    substance: str | None = None
    drugbank_id: str | None = None
    unii: str | None = None
    meddra_pt_code: int | None = None
    meddra_pt: str | None = None
    meddra_llt_code: int | None = None
    meddra_soc: str | None = None
    assertion: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


ADE_FIELDS = [f.name for f in fields(AdeRecord)]


def records_of(s: Sentence) -> list[AdeRecord]:
    """The sentence's drug-ADE relations as records with document offsets (None without one)."""
    off = s.doc_offset
    post = s.meta.get("post", {})
    out = []
    for r in s.relations:
        d, a = s.entity(r.drug), s.entity(r.ade)
        pd, pa = post.get(d.id, {}), post.get(a.id, {})
        out.append(AdeRecord(s.doc_id, s.id, d.text, None if off is None else off + d.start,
                             None if off is None else off + d.end, a.text, None if off is None else off + a.start,
                             None if off is None else off + a.end, r.confidence, d.confidence, a.confidence,
                             pd.get("substance"), pd.get("drugbank_id"), pd.get("unii"), pa.get("meddra_pt_code"),
                             pa.get("meddra_pt"), pa.get("meddra_llt_code"), pa.get("meddra_soc"), pa.get("assertion")))
    return out


# ---------------------------------------------------------------- ADE record writers (a registry)

class RecordWriter:
    """One output format of ADE records. ``open`` once, ``add`` per document, ``close(ok)`` once:
    a writer leaves its output complete when ``ok`` and absent (or untouched) when not. Register a
    new format with ``registry.writers.register("name", MyWriter)``."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._stack = contextlib.ExitStack()

    def open(self) -> None:
        pass

    def add(self, doc: Document | None, sentences: list[Sentence], records: list[AdeRecord]) -> None:
        raise NotImplementedError

    def close(self, ok: bool) -> None:
        self._stack.__exit__(*((None, None, None) if ok else (RuntimeError, RuntimeError("aborted"), None)))


@writers.register("jsonl")
class JsonlWriter(RecordWriter):
    def open(self) -> None:
        self._fh = self._stack.enter_context(atomic_open(self.out))

    def add(self, doc, sentences, records) -> None:
        for r in records:
            self._fh.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")


@writers.register("csv")
class CsvWriter(JsonlWriter):
    """Formula cells neutralised (:func:`csv_cell`)."""

    def open(self) -> None:
        super().open()
        self._csv = SafeCsvWriter(self._fh, ADE_FIELDS)
        self._csv.writeheader()

    def add(self, doc, sentences, records) -> None:
        for r in records:
            self._csv.writerow(r.to_json())


@writers.register("parquet")
class ParquetWriter(RecordWriter):
    """Written whole at the end, through pandas."""

    def open(self) -> None:
        self._rows: list[dict] = []

    def add(self, doc, sentences, records) -> None:
        self._rows += [r.to_json() for r in records]

    def close(self, ok: bool) -> None:
        if ok:
            import pandas as pd

            with atomic_open(self.out, "wb") as fh:
                pd.DataFrame(self._rows, columns=ADE_FIELDS).to_parquet(fh, index=False)


@writers.register("brat")
class BratWriter(RecordWriter):
    """brat standoff: ``out`` a folder, <doc>.txt and <doc>.ann per document. A document whose
    brat name another one already took is refused with ValueError (the caller reports it)."""

    def open(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self._names: dict[str, str] = {}

    def add(self, doc, sentences, records) -> None:
        if doc is None:
            raise ValueError("brat output needs the documents")
        name = brat_name(doc.id)
        if self._names.setdefault(name, doc.id) != doc.id:
            raise ValueError(f"document {doc.id!r} would overwrite the brat files of "
                             f"{self._names[name]!r} ({name}.ann); skipped")
        write_brat(self.out / name, doc, sentences)


class AdeWriter:
    """``with AdeWriter(out, "csv") as w: w.add(doc, sentences)``: ADE records in any registered
    format (jsonl, csv with formula cells neutralised, parquet, brat, or a plug-in's; an unknown
    one is a ``RegistryError`` naming the known ones). ``add`` returns the records it wrote."""

    def __init__(self, out: str | Path, fmt: str = "jsonl") -> None:
        self.out, self.fmt = Path(out), fmt
        self.n_records = 0
        self._writer: RecordWriter = writers.get(fmt)(self.out)

    def __enter__(self) -> "AdeWriter":
        self._writer.open()
        return self

    def add(self, doc: Document | None, sentences: Iterable[Sentence]) -> list[AdeRecord]:
        sentences = list(sentences)
        recs = [r for s in sentences for r in records_of(s)]
        self._writer.add(doc, sentences, recs)
        self.n_records += len(recs)
        return recs

    def __exit__(self, exc_type, *_exc) -> bool:
        self._writer.close(exc_type is None)
        return False


def write_brat(stem: Path, doc: Document, sentences: Iterable[Sentence]) -> None:
    """brat standoff: <stem>.txt (the document text) and <stem>.ann (T spans, R relations)."""
    with atomic_open(stem.with_name(stem.name + ".txt")) as fh:
        fh.write(doc.full_text)
    t = r = 0
    lines = []
    for s in sentences:
        ids = {}
        for e in s.entities:
            t += 1
            ids[e.id] = f"T{t}"
            a, b = s.doc_offset + e.start, s.doc_offset + e.end
            lines.append(f"T{t}\t{e.label} {a} {b}\t{e.text}")
        for rel in s.relations:
            r += 1
            lines.append(f"R{r}\tADE Arg1:{ids[rel.drug]} Arg2:{ids[rel.ade]}")
    with atomic_open(stem.with_name(stem.name + ".ann")) as fh:
        fh.write("\n".join(lines) + ("\n" if lines else ""))


def failures_path(out: str | Path) -> Path:
    """Where the failures of a run writing ``out`` go: <out>.failures.jsonl."""
    return Path(str(out).removesuffix(".jsonl") + ".failures.jsonl")


def write_failures(path: str | Path, failures: Iterable[tuple[str, str]]) -> int:
    """One JSON line per failed record: {"id", "reason"} (atomic)."""
    n = 0
    with atomic_open(path) as fh:
        for sid, reason in failures:
            fh.write(json.dumps({"id": sid, "reason": reason}) + "\n")
            n += 1
    return n
