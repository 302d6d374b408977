"""ADE-Corpus-V2 (Gurulingappa et al. 2012): the raw release and the SpERT 10-fold splits.

Sentence ids are ``ADE-<n>``, where ``n`` is the index of the distinct (PMID, sentence)
pair in first-occurrence order in DRUG-AE.rel. That is exactly the ``orig_id`` of the
SpERT split files, so the raw release and every fold share ids and can be scored
against each other.

Offsets in DRUG-AE.rel are document-level (into ``PMID\\n\\nTitle\\n\\nAbstract``). For
each sentence there is one shift that maps every annotated span onto the sentence;
we find it from the offsets themselves and never with ``str.find``, which picks the
wrong occurrence for hundreds of spans.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..core.schema import Entity, Relation, Sentence, utf8_lines
from . import InputError, Problems, require_file

log = logging.getLogger(__name__)

SPERT_LABELS = {"Drug": "DRUG", "Adverse-Effect": "ADE"}


@dataclass
class AdeCorpusStats:
    """What an ingestion of the ADE corpus produced (printed as its summary)."""

    positive_sentences: int = 0
    relations: int = 0
    entities: dict[str, int] = field(default_factory=lambda: {"DRUG": 0, "ADE": 0})
    negative_sentences: int = 0
    negative_duplicates: int = 0
    doses: int = 0
    pmids: set[str] = field(default_factory=set)
    problems: Problems = field(default_factory=Problems)

    def summary(self) -> dict:
        return {
            "positive_sentences": self.positive_sentences,
            "relations": self.relations,
            "entities": dict(self.entities),
            "negative_sentences": self.negative_sentences,
            "negative_duplicates_dropped": self.negative_duplicates,
            "doses": self.doses,
            "documents": len(self.pmids),
            "skipped_records": len(self.problems),
        }


@dataclass
class _RawSentence:
    pmid: str
    text: str
    lines: list[int] = field(default_factory=list)
    # (label, doc_begin, doc_end, text) and relation pairs of indices into spans
    spans: list[tuple[str, int, int, str]] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)


def _span_index(raw: _RawSentence, label: str, b: int, e: int, text: str) -> int:
    key = (label, b, e, text)
    try:
        return raw.spans.index(key)
    except ValueError:
        raw.spans.append(key)
        return len(raw.spans) - 1


def _read_rel(path: Path, problems: Problems, kind: str) -> dict[tuple[str, str], _RawSentence]:
    """Group a .rel file by (PMID, sentence), keeping first-occurrence order."""
    groups: dict[tuple[str, str], _RawSentence] = {}
    second = "ADE" if kind == "ae" else "DOSE"
    for lineno, line in utf8_lines(path, lambda e: problems.add(str(e))):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 8:
            problems.add(f"{path}:{lineno}: expected 8 '|'-separated fields, found {len(parts)}")
            continue
        pmid, sent, a_text, a_b, a_e, d_text, d_b, d_e = parts
        try:
            a_b, a_e, d_b, d_e = int(a_b), int(a_e), int(d_b), int(d_e)
        except ValueError:
            problems.add(f"{path}:{lineno}: PMID {pmid}: offsets are not integers")
            continue
        if a_e - a_b != len(a_text) or d_e - d_b != len(d_text):
            problems.add(f"{path}:{lineno}: PMID {pmid}: span length differs from its offsets")
            continue
        raw = groups.setdefault((pmid, sent), _RawSentence(pmid, sent))
        raw.lines.append(lineno)
        i = _span_index(raw, second, a_b, a_e, a_text)
        j = _span_index(raw, "DRUG", d_b, d_e, d_text)
        if (j, i) not in raw.pairs:
            raw.pairs.append((j, i))
    if not groups:
        raise InputError(f"{path}: no relation lines (an empty or unreadable file)")
    return groups


def _sentence_shift(raw: _RawSentence) -> int | None:
    """The one document offset S with text[b-S:e-S] == span for every span, or None."""
    label, b, e, span = raw.spans[0]
    pos = raw.text.find(span)
    while pos != -1:
        shift = b - pos
        if all(0 <= sb - shift and raw.text[sb - shift: se - shift] == st
               for _, sb, se, st in raw.spans):
            return shift
        pos = raw.text.find(span, pos + 1)
    return None


def _positive_sentences(groups: dict[tuple[str, str], _RawSentence], path: Path,
                        stats: AdeCorpusStats, doses: dict[tuple[str, str], _RawSentence] | None
                        ) -> Iterator[Sentence]:
    for idx, ((pmid, text), raw) in enumerate(groups.items()):
        shift = _sentence_shift(raw)
        if shift is None:
            stats.problems.add(f"{path}:{raw.lines[0]}: PMID {pmid}: no single sentence offset "
                               "fits all annotated spans")
            continue
        entities = [Entity(id=f"e{k}", label=lab, start=b - shift, end=e - shift, text=t)
                    for k, (lab, b, e, t) in enumerate(raw.spans)]
        relations = [Relation(drug=f"e{d}", ade=f"e{a}") for d, a in raw.pairs]
        meta: dict = {"pmid": pmid, "orig_id": idx}
        dose_raw = doses.get((pmid, text)) if doses else None
        if dose_raw is not None:
            meta["doses"] = _dose_meta(dose_raw, entities, shift)
            stats.doses += len(meta["doses"])
        stats.positive_sentences += 1
        stats.relations += len(relations)
        for ent in entities:
            stats.entities[ent.label] += 1
        stats.pmids.add(pmid)
        yield Sentence(id=f"ADE-{idx}", doc_id=pmid, text=text, doc_offset=shift,
                       entities=entities, relations=relations, source="gold", meta=meta)


def _dose_meta(raw: _RawSentence, entities: list[Entity], shift: int) -> list[dict]:
    """Doses as sentence-level spans linked to the drug entity they belong to (meta only)."""
    out = []
    for d, a in raw.pairs:
        _, db, de, dtext = raw.spans[a]
        _, gb, ge, gtext = raw.spans[d]
        drug = next((x.id for x in entities if x.label == "DRUG"
                     and (x.start, x.end) == (gb - shift, ge - shift)), None)
        out.append({"text": dtext, "start": db - shift, "end": de - shift, "drug": drug,
                    "drug_text": gtext})
    return out


def _negative_sentences(path: Path, stats: AdeCorpusStats) -> Iterator[Sentence]:
    seen: set[tuple[str, str]] = set()
    for lineno, line in utf8_lines(path, lambda e: stats.problems.add(str(e))):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        parts = line.split(" ", 2)
        if len(parts) != 3 or parts[1] != "NEG" or not parts[2].strip():
            stats.problems.add(f"{path}:{lineno}: expected 'PMID NEG sentence'")
            continue
        pmid, _, text = parts
        if (pmid, text) in seen:
            stats.negative_duplicates += 1
            continue
        seen.add((pmid, text))
        stats.pmids.add(pmid)
        yield Sentence(id=f"ADE-NEG-{stats.negative_sentences}", doc_id=pmid, text=text,
                       doc_offset=None, source="gold", meta={"pmid": pmid, "negative": True})
        stats.negative_sentences += 1


def ingest_ade_corpus(source: str | Path, *, negatives: bool = True, doses: bool = False,
                      stats: AdeCorpusStats | None = None) -> Iterator[Sentence]:
    """Gold Sentences from the raw ADE-Corpus-V2 release folder.

    Yields the 4,272 positive sentences (6,821 drug-ADE relations) with sentence-level
    offsets, then, if ``negatives``, the ADE-NEG.txt sentences deduplicated on
    (PMID, sentence). ``doses`` adds DRUG-DOSE.rel spans to ``meta["doses"]``.
    Counts and skipped records go into ``stats``.
    """
    source = Path(source)
    if not source.is_dir():
        raise InputError(f"{source}: ADE corpus folder not found (expected DRUG-AE.rel, ADE-NEG.txt)")
    stats = stats if stats is not None else AdeCorpusStats()
    ae_path = require_file(source / "DRUG-AE.rel")
    groups = _read_rel(ae_path, stats.problems, "ae")
    dose_groups = None
    if doses:
        dose_groups = _read_rel(require_file(source / "DRUG-DOSE.rel"), stats.problems, "dose")
    yield from _positive_sentences(groups, ae_path, stats, dose_groups)
    if negatives:
        yield from _negative_sentences(require_file(source / "ADE-NEG.txt"), stats)


def in_domain_negatives(source: str | Path, exclude_docs: set[str] = frozenset(), *, seed: int = 0) -> list[Sentence]:
    """The ADE-NEG sentences (no ADE in the gold standard) of documents outside ``exclude_docs``,
    shuffled with ``seed``, unlabelled (``source="unlabeled"``): in-domain text for the teacher to
    label, or transfer data, that a benchmark on those documents never tests on."""
    import random

    neg = [s.model_copy(update={"source": "unlabeled"}) for s in ingest_ade_corpus(source)
           if s.meta.get("negative") and s.doc_id not in exclude_docs]
    random.Random(seed).shuffle(neg)
    return neg


def _align_tokens(tokens: list[str], text: str) -> list[tuple[int, int]] | None:
    """Character span of each token in ``text``, skipping whitespace; None if they differ."""
    spans, pos = [], 0
    for tok in tokens:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if text[pos:pos + len(tok)] != tok:
            return None
        spans.append((pos, pos + len(tok)))
        pos += len(tok)
    return spans


def _split_file(source: Path, fold: int | None, part: str) -> Path:
    if fold is None:
        return require_file(source / "ade_full.json", "split file")
    if part not in ("train", "test"):
        raise InputError(f"part must be 'train' or 'test', got {part!r}")
    return require_file(source / f"ade_split_{fold}_{part}.json", "split file")


def ingest_ade_splits(source: str | Path, fold: int | None = 0, part: str = "test", *,
                      corpus: str | Path | None = None, problems: Problems | None = None
                      ) -> Iterator[Sentence]:
    """Gold Sentences of one SpERT fold (``fold=None``: ade_full.json), with character offsets.

    Token indices are turned into character offsets into the raw corpus sentence, joined
    through ``orig_id`` (``corpus`` defaults to ``../ade_corpus_v2`` beside ``source``),
    so texts, ids, PMIDs and doc offsets equal those of :func:`ingest_ade_corpus`.
    Without the raw corpus the tokens are joined with single spaces instead.
    """
    source = Path(source)
    problems = problems if problems is not None else Problems()
    path = _split_file(source, fold, part)
    corpus = Path(corpus) if corpus is not None else source.parent / "ade_corpus_v2"
    raw: dict[int, Sentence] = {}
    if (corpus / "DRUG-AE.rel").exists():
        raw = {s.meta["orig_id"]: s for s in ingest_ade_corpus(corpus, negatives=False)}
    else:
        log.warning("%s not found: sentence texts are rebuilt from tokens, without PMIDs",
                    corpus / "DRUG-AE.rel")
    try:
        with path.open("r", encoding="utf-8") as fh:
            # SpERT files are one JSON array on one line (2 MB at most), so no streaming parser.
            records = json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                         ) from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a JSON array of sentences")
    for k, rec in enumerate(records):
        try:
            yield _split_sentence(rec, raw, corpus if raw else None)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            oid = rec.get("orig_id", "?") if isinstance(rec, dict) else "?"
            what = f"unknown key {exc}" if isinstance(exc, KeyError) else str(exc)
            problems.add(f"{path}: record {k} (orig_id {oid}): {what}")


def _split_sentence(rec: dict, raw: dict[int, Sentence], corpus: Path | None) -> Sentence:
    tokens: list[str] = rec["tokens"]
    orig_id = int(rec["orig_id"])
    base = raw.get(orig_id)
    if base is None and corpus is not None:
        raise ValueError(f"orig_id {orig_id} is not in {corpus / 'DRUG-AE.rel'}")
    if base is not None:
        spans = _align_tokens(tokens, base.text)
        if spans is None:
            raise ValueError(f"tokens do not align with raw corpus sentence {base.id}")
        text, doc_id, doc_offset = base.text, base.doc_id, base.doc_offset
        meta = {"pmid": base.doc_id, "orig_id": orig_id}
    else:
        text = " ".join(tokens)
        spans, pos = [], 0
        for tok in tokens:
            spans.append((pos, pos + len(tok)))
            pos += len(tok) + 1
        doc_id, doc_offset, meta = f"ADE-{orig_id}", None, {"orig_id": orig_id}
    entities = []
    for k, ent in enumerate(rec["entities"]):
        label = SPERT_LABELS[ent["type"]]
        start, end = spans[ent["start"]][0], spans[ent["end"] - 1][1]
        entities.append(Entity(id=f"e{k}", label=label, start=start, end=end,
                               text=text[start:end]))
    relations = []
    for rel in rec["relations"]:
        head, tail = entities[rel["head"]], entities[rel["tail"]]
        if head.label == "DRUG" and tail.label == "ADE":
            head, tail = tail, head
        relations.append(Relation(drug=tail.id, ade=head.id))
    return Sentence(id=f"ADE-{orig_id}", doc_id=doc_id, text=text, doc_offset=doc_offset,
                    entities=entities, relations=relations, source="gold", meta=meta)
