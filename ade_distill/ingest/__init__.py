"""Sources -> Documents and Sentences in the shared schema."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("ade_distill.ingest")


from ..core.errors import InputError  # noqa: E402,F401  (re-exported: ade_distill.ingest.InputError)
from ..core.registry import readers  # noqa: E402


@dataclass
class Problems:
    """Bad records met in a batch: each is logged (file, line or record, cause) and counted.

    One bad record never stops a batch; it is reported here so nothing is dropped silently.
    """

    messages: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.messages.append(message)
        log.warning("skipped: %s", message)

    def __len__(self) -> int:
        return len(self.messages)


def require_file(path, what: str = "file"):
    """Return ``path`` as a Path, or raise InputError if it is not an existing file."""
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such {what}")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    return p


from .ade_corpus import AdeCorpusStats, ingest_ade_corpus, ingest_ade_splits  # noqa: E402
from .pubmed import EUtilsClient, ingest_pubmed, ingest_pubmed_medline, ingest_pubmed_xml, pubmed_documents  # noqa: E402
from .text_files import ingest_text  # noqa: E402

PUBMED_SUFFIXES = (".xml", ".gz", ".medline", ".nbib")


@readers.register("pubmed")
class PubmedReader:
    """PubMed XML (efetch / baseline, .gz ok) and MEDLINE text files."""

    @staticmethod
    def matches(path) -> bool:
        return path.is_file() and path.suffix.lower() in PUBMED_SUFFIXES

    @staticmethod
    def read(path, problems: Problems | None = None, **options):
        return ingest_pubmed(path, problems)


@readers.register("text")
class TextReader:
    """Free text: a folder of .txt files, a CSV/TSV with named columns, or JSONL (the fallback)."""

    @staticmethod
    def matches(path) -> bool:
        return True

    @staticmethod
    def read(path, problems: Problems | None = None, *, id_column: str = "id", text_column: str = "text",
             title_column: str | None = None):
        return ingest_text(path, id_column=id_column, text_column=text_column, title_column=title_column,
                           problems=problems)


BUILTIN_READERS = ("pubmed", "text")  # tried last, in this order, after any plug-in's


def documents_from(path, problems: Problems | None = None, *, reader: str | None = None, **options):
    """Documents from any file or folder a user hands us, read by ``reader`` (a name in
    ``registry.readers``) or by the first registered reader that claims the path: a plug-in's, then
    PubMed XML / MEDLINE (.xml, .xml.gz, .medline, .nbib), then free text (a folder of .txt files,
    CSV/TSV, JSONL). ``options``: id_column, text_column, title_column for free text."""
    from pathlib import Path

    path = Path(path)
    if reader is not None:
        return readers.get(reader).read(path, problems, **options)
    order = [n for n in readers.names() if n not in BUILTIN_READERS] + list(BUILTIN_READERS)
    name = next(n for n in order if readers.get(n).matches(path))
    opts = options if name == "text" or name not in BUILTIN_READERS else {}
    return readers.get(name).read(path, problems, **opts)


def sentences_of(docs, counts=None, documents_out=None):
    """Split documents into sentences (streamed); ``counts["documents"]`` counts them, and
    ``documents_out`` (a JSONL path), when given, receives each document as it passes."""
    from ..core.schema import atomic_open, dump_record
    from ..core.text import split_document

    def run(fh=None):
        for doc in docs:
            if counts is not None:
                counts["documents"] += 1
            if fh is not None:
                fh.write(dump_record(doc) + "\n")
            yield from split_document(doc)

    if documents_out is None:
        yield from run()
    else:
        with atomic_open(documents_out) as fh:
            yield from run(fh)


__all__ = [
    "AdeCorpusStats", "EUtilsClient", "InputError", "PUBMED_SUFFIXES", "Problems", "documents_from",
    "ingest_ade_corpus", "ingest_ade_splits", "ingest_pubmed", "ingest_pubmed_medline", "ingest_pubmed_xml",
    "ingest_text", "pubmed_documents", "require_file", "sentences_of",
]
