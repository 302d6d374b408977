"""Sources -> sentence files: the ADE corpus, its 10-fold splits, PubMed, free text."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..core.errors import InputError
from ..ingest import Problems
from ..core.schema import Sentence, write_jsonl
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


def ingest_text(input: str | Path | Sequence[str | Path], out: str | Path, *, id_column: str = "id",
                text_column: str = "text", title_column: str | None = None, documents_out: str | Path | None = None,
                strict: bool = False) -> IngestResult:
    """Free text (a folder of .txt files, CSV/TSV, JSONL; or several) -> sentences with document offsets."""
    from ..ingest import ingest_text as read
    from ..ingest import sentences_of

    problems = Problems()
    inputs = [input] if isinstance(input, (str, Path)) else list(input)
    docs = _unique_ids(((one, d) for one in inputs for d in read(one, id_column=id_column, text_column=text_column,
                                                                  title_column=title_column, problems=problems)),
                       problems)
    input = inputs[0] if len(inputs) == 1 else f"{len(inputs)} inputs"
    counts: Counter = Counter()
    n = write_jsonl(out, progress(sentences_of(_nonempty(docs, f"documents from {input}", problems, strict),
                                               counts, documents_out), "text"))
    return IngestResult(Path(out), n, counts["documents"], problems=problems.messages, heading="text")


def _unique_ids(pairs, problems: Problems) -> Iterator:
    """Documents of several inputs; one whose id an earlier input used is reported and skipped
    (sentence ids are made from document ids)."""
    seen: dict[str, str] = {}
    for source, doc in pairs:
        if doc.id in seen and seen[doc.id] != str(source):
            problems.add(f"{source}: document {doc.id!r} has the id of one in {seen[doc.id]}; skipped (rename one)")
            continue
        seen.setdefault(doc.id, str(source))
        yield doc


def split_sample(gold: list[Sentence], test_share: float) -> tuple[list[Sentence], list[Sentence]]:
    """The embedded sample split by document into (train, test), the same way on every machine
    (a document's side is decided by a hash of its id)."""
    import hashlib

    test_docs = {d for d in {s.doc_id or s.id for s in gold}
                 if int(hashlib.sha256(d.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < test_share}
    return ([s for s in gold if (s.doc_id or s.id) not in test_docs],
            [s for s in gold if (s.doc_id or s.id) in test_docs])


def ingest_inputs(inputs, out_dir: str | Path, *, resolve, splits_dir: Path, corpus_dir: Path) -> dict:
    """A pipeline's inputs (``workflows.settings.InputsConfig``) -> sentence files in ``out_dir``:
    train.jsonl (to label), unlabeled.jsonl (train sentences past train_limit, labels removed),
    test.jsonl (gold, when there is a test part), in_domain.jsonl and documents.sentences.jsonl
    (when asked for). ``resolve`` turns a path written in the pipeline file into a Path."""
    import os

    from ..ingest import documents_from, pubmed_documents, sentences_of
    from ..core.schema import read_sentences
    from .common import unlabelled

    i, out_dir = inputs, Path(out_dir)
    problems = Problems()
    test: list[Sentence] | None = None
    if i.kind == "sample":
        from ..core.sample import SAMPLE_DIR

        train, test = split_sample(list(read_sentences(SAMPLE_DIR / "gold.jsonl")), i.test_share)
    elif i.kind == "ade-splits":
        from ..ingest import ingest_ade_splits as read

        train = list(read(splits_dir, i.fold, "train", problems=problems))
        test = list(read(splits_dir, i.fold, "test", problems=problems))
    elif i.kind == "jsonl":
        train = list(read_sentences(resolve(i.train)))
        test = list(read_sentences(resolve(i.test))) if i.test else None
    else:
        key = os.environ.get(i.api_key_env) if i.api_key_env else None
        docs = pubmed_documents([resolve(x) for x in i.files], i.query, problems=problems, max_records=i.max_records,
                                api_key=key, email=i.email, base_url=i.eutils_url)
        train = list(sentences_of(docs, None, out_dir / "pubmed_documents.jsonl"))
    rest: list[Sentence] = []
    if i.train_limit:
        train, rest = train[:i.train_limit], train[i.train_limit:]
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "unlabeled.jsonl", map(unlabelled, rest))  # material for self-training
    if test is not None:
        write_jsonl(out_dir / "test.jsonl", test)
    n_in = None
    if i.in_domain:
        n_in = write_jsonl(out_dir / "in_domain.jsonl", in_domain_sentences(i, test or [], resolve, corpus_dir))
    counts: Counter = Counter()
    if i.documents:
        docs = (doc for d in i.documents for doc in documents_from(resolve(d), problems))
        write_jsonl(out_dir / "documents.sentences.jsonl", sentences_of(docs, counts, out_dir / "documents.jsonl"))
    line = (f"{len(train):,} train sentences" + (f", {len(test):,} test" if test is not None else "")
            + (f", {counts['documents']:,} new documents" if i.documents else "")
            + (f", {n_in:,} in-domain" if n_in is not None else "")
            + (f"; {len(problems)} bad record(s) skipped" if len(problems) else ""))
    return {"train": len(train), "test": len(test) if test is not None else None, "documents": counts["documents"],
            "in_domain": n_in, "problems": len(problems), "line": line}


def in_domain_sentences(inputs, test: list[Sentence], resolve, corpus_dir: Path) -> list[Sentence]:
    """inputs.in_domain, unlabelled, none of a test document, at most in_domain_limit."""
    from ..core.schema import read_sentences
    from .common import unlabelled

    test_docs = {s.doc_id for s in test if s.doc_id}
    if inputs.in_domain == "ade-neg":
        from ..ingest.ade_corpus import in_domain_negatives

        sents = in_domain_negatives(corpus_dir, test_docs, seed=0)
    else:
        sents = [unlabelled(s) for s in read_sentences(resolve(inputs.in_domain)) if s.doc_id not in test_docs]
    return sents[:inputs.in_domain_limit] if inputs.in_domain_limit else sents


@dataclass
class ValidateResult:
    files: list[tuple[Path, Counter]]
    problems: list[str]

    def lines(self) -> list[str]:
        out = [f"{path}: {c['sentences']:,} sentences ({c['with_ade']:,} with an ADE relation), {c['relations']:,} "
               f"relations, DRUG {c['DRUG']:,}, ADE {c['ADE']:,} entities" for path, c in self.files]
        return out + ([] if self.problems else ["all records valid"])


def validate(paths: Iterable[str | Path]) -> ValidateResult:
    """Check sentence files against the schema and count them; every bad record is named (file,
    line, id) and the others are still checked."""
    from ..core.schema import read_sentences

    bad: list[str] = []
    files = []
    for path in paths:
        c: Counter = Counter()
        before = len(bad)
        for s in read_sentences(path, on_error=lambda e: bad.append(str(e))):
            c["sentences"] += 1
            c["with_ade"] += bool(s.relations)
            c["relations"] += len(s.relations)
            c.update(e.label for e in s.entities)
        if not c["sentences"] and len(bad) == before:
            bad.append(f"{path}: no records (an empty file)")
        files.append((Path(path), c))
    return ValidateResult(files, bad)
