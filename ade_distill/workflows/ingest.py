"""Sources -> sentence files: the ADE corpus, its 10-fold splits, PubMed, free text."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import InputError
from ..ingest import Problems
from ..schema import Sentence, write_jsonl
from .common import check_strict, progress


@dataclass
class IngestResult:
    out: Path
    sentences: int
    documents: int | None = None
    counts: dict = field(default_factory=dict)  # relations, entities by label...
    problems: list[str] = field(default_factory=list)
    heading: str = ""

    def lines(self) -> list[str]:
        c = self.counts
        if self.heading == "ADE-Corpus-V2":
            out = [f"ADE-Corpus-V2 {c['source']}",
                   f"  positive sentences  {c['positive_sentences']:,}",
                   f"  drug-ADE relations  {c['relations']:,}",
                   f"  entities            DRUG {c['entities']['DRUG']:,}, ADE {c['entities']['ADE']:,}"]
            if c.get("negatives"):
                out.append(f"  negative sentences  {c['negative_sentences']:,} "
                           f"({c['negative_duplicates_dropped']:,} duplicate lines dropped)")
            if c.get("with_doses"):
                out.append(f"  drug doses (meta)   {c['doses']:,}")
            out += [f"  documents (PMIDs)   {c['documents']:,}", f"wrote {self.sentences:,} sentences to {self.out}"]
            return out
        if self.documents is None:
            return [f"{self.heading}: {self.sentences:,} sentences, {c.get('relations', 0):,} relations, "
                    f"DRUG {c.get('DRUG', 0):,}, ADE {c.get('ADE', 0):,} entities -> {self.out}"]
        return [f"{self.heading}: {self.documents:,} documents, {self.sentences:,} sentences -> {self.out}"]


def _nonempty(items: Iterable, what: str, problems: Problems, strict: bool) -> Iterator:
    """Pass ``items`` through; at their end raise InputError if there were none, or if ``strict``
    and bad records were met, so that the output being written is discarded."""
    n = 0
    for n, item in enumerate(items, 1):
        yield item
    if n == 0:
        why = f" ({problems.messages[-1]})" if len(problems) else ""
        raise InputError(f"no {what} read{why}")
    check_strict(problems, strict)


def ingest_ade_corpus(source: str | Path, out: str | Path, *, negatives: bool = True, doses: bool = False,
                      strict: bool = False) -> IngestResult:
    """ADE-Corpus-V2's raw release (DRUG-AE.rel, ADE-NEG.txt) -> gold sentences."""
    from ..ingest import ingest_ade_corpus as read
    from ..ingest.ade_corpus import AdeCorpusStats

    stats = AdeCorpusStats()
    n = write_jsonl(out, progress(read(source, negatives=negatives, doses=doses, stats=stats), "ADE corpus"))
    check_strict(stats.problems, strict)
    return IngestResult(Path(out), n, counts={**stats.summary(), "source": str(source), "negatives": negatives,
                                              "with_doses": doses},
                        problems=list(stats.problems.messages), heading="ADE-Corpus-V2")


def ingest_ade_splits(source: str | Path, out: str | Path, *, fold: int | None = 0, part: str = "test",
                      corpus: str | Path | None = None, strict: bool = False) -> IngestResult:
    """One SpERT fold's train or test part (``fold=None``: ade_full) -> gold sentences with offsets."""
    from ..ingest import ingest_ade_splits as read

    problems = Problems()
    counts: Counter = Counter()

    def counted(sents: Iterable[Sentence]) -> Iterator[Sentence]:
        for s in sents:
            counts["relations"] += len(s.relations)
            counts.update(e.label for e in s.entities)
            yield s

    n = write_jsonl(out, progress(counted(read(source, fold, part, corpus=corpus, problems=problems)), "ADE split"))
    check_strict(problems, strict)
    where = "ade_full" if fold is None else f"fold {fold} {part}"
    return IngestResult(Path(out), n, counts=dict(counts), problems=problems.messages, heading=f"ADE splits {where}")


def ingest_pubmed(files: Iterable[str | Path] = (), out: str | Path = "sentences.jsonl", *, query: str | None = None,
                  max_records: int = 1000, api_key: str | None = None, email: str | None = None,
                  eutils_url: str | None = None, documents_out: str | Path | None = None,
                  strict: bool = False) -> IngestResult:
    """PubMed XML / MEDLINE files and/or an E-utilities query -> sentences with document offsets."""
    from ..ingest import pubmed_documents, sentences_of

    files = list(files)
    if not files and not query:
        raise InputError("ingest pubmed: give one or more files (PubMed XML or MEDLINE) or a query")
    problems = Problems()
    docs = pubmed_documents(files, query, problems=problems, max_records=max_records, api_key=api_key,
                            email=email, base_url=eutils_url)
    counts: Counter = Counter()
    n = write_jsonl(out, progress(sentences_of(_nonempty(docs, "PubMed documents", problems, strict), counts,
                                               documents_out), "PubMed"))
    return IngestResult(Path(out), n, counts["documents"], problems=problems.messages, heading="PubMed")


def ingest_text(input: str | Path, out: str | Path, *, id_column: str = "id", text_column: str = "text",
                title_column: str | None = None, documents_out: str | Path | None = None,
                strict: bool = False) -> IngestResult:
    """Free text (a folder of .txt files, CSV/TSV, JSONL) -> sentences with document offsets."""
    from ..ingest import ingest_text as read
    from ..ingest import sentences_of

    problems = Problems()
    docs = read(input, id_column=id_column, text_column=text_column, title_column=title_column, problems=problems)
    counts: Counter = Counter()
    n = write_jsonl(out, progress(sentences_of(_nonempty(docs, f"documents from {input}", problems, strict),
                                               counts, documents_out), "text"))
    return IngestResult(Path(out), n, counts["documents"], problems=problems.messages, heading="text")
