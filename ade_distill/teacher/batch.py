"""Labels made elsewhere: OpenAI Batch API request and result files (half the price at scale) and
other tools' outputs (replay), grounded and recorded exactly like labels the teacher made here."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Iterable, Iterator

from ..core.schema import Sentence, atomic_open
from .backends import Completion
from .labeler import LabelStats, TeacherConfig, _Pair, ground_redacted, pairs_with_confidence, parse_answer
from .phi import note_for
from .prompts import build_messages

log = logging.getLogger(__name__)


def batch_guard(cfg: TeacherConfig, sentences: list[Sentence]):
    """(policy, guard) for a Batch API file, which goes to the OpenAI API: the config's policy, else
    redact unless every sentence is from PubMed."""
    from .phi import guard_for, is_published

    policy = cfg.phi or ("off" if is_published(sentences) else "redact")
    return policy, (guard_for(cfg) if policy != "off" else None)


def export_batch(sentences: Iterable[Sentence], cfg: TeacherConfig, path: str | Path) -> LabelStats:
    """OpenAI Batch API request JSONL (custom_id = sentence id); half the price at scale. The PHI
    guard applies as for a remote teacher: the file holds the redacted sentences, and a sentence
    the block policy keeps back is not written (counted in the returned stats, by type only)."""
    pick = cfg.prompt.shot_picker()
    fmt = cfg.prompt.answer_format
    sentences = list(sentences)
    stats = LabelStats()
    stats.phi_policy, guard = batch_guard(cfg, sentences)
    with atomic_open(path) as fh:
        for s in sentences:
            text, red = s.text, None
            if guard is not None:
                red = guard.redact(s.text)
                stats.phi_found.update(red.found)
                if red.pieces and stats.phi_policy == "block":
                    stats.phi_blocked += 1
                    continue
                stats.phi_redacted += bool(red.pieces)
                text = red.text
            body = {"model": cfg.model, "messages": build_messages(text, pick(text), fmt, note=note_for(cfg, red)), "temperature": cfg.temperature,
                    "max_tokens": cfg.max_tokens}
            if fmt.json_grammar:
                body["response_format"] = {"type": "json_object"}
            if cfg.confidence == "logprobs":
                body.update(logprobs=True, top_logprobs=5)
            fh.write(json.dumps({"custom_id": s.id, "method": "POST", "url": "/v1/chat/completions",
                                 "body": body}, ensure_ascii=False) + "\n")
            stats.calls += 1
    return stats


def _label_from_pairs(s: Sentence, pairs: list[_Pair], source: str, cfg: TeacherConfig, stats: LabelStats,
                      meta: dict, red=None) -> Sentence:
    ents, rels, rejected = ground_redacted(s, red, [pairs], cfg, stats)
    return Sentence(id=s.id, doc_id=s.doc_id, text=s.text, doc_offset=s.doc_offset, entities=ents,
                    relations=rels, source=source, meta={**meta, "rejected_pairs": rejected})


def import_batch(sentences: Iterable[Sentence], results: str | Path, cfg: TeacherConfig,
                 stats: LabelStats | None = None) -> Iterator[Sentence | tuple[str, str]]:
    """Labels from an OpenAI Batch API result file; yields Sentences, or (id, reason) failures."""
    stats = stats or LabelStats()
    by_id: dict[str, dict] = {}
    with open(results, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                    by_id[rec["custom_id"]] = rec
                except (json.JSONDecodeError, KeyError):
                    log.warning("%s:%d: not a batch result line", results, line_no)
    fmt = cfg.prompt.answer_format  # the format the exported requests asked for
    sentences = list(sentences)
    _, guard = batch_guard(cfg, sentences)  # the same redaction the export made: spans map back
    for s in sentences:
        stats.sentences_in += 1
        rec = by_id.get(s.id)
        if rec is None or rec.get("error") or (rec.get("response") or {}).get("status_code") != 200:
            stats.failed += 1
            yield s.id, "missing or failed in batch results"
            continue
        body = rec["response"]["body"]
        choice = body["choices"][0]
        tokens = []
        from .confidence import TokenLogprob

        for c in ((choice.get("logprobs") or {}).get("content") or []):
            tokens.append(TokenLogprob(c["token"], c["logprob"], [(t["token"], t["logprob"])
                                                                   for t in c.get("top_logprobs", [])]))
        comp = Completion(text=choice["message"]["content"] or "", tokens=tokens)
        parsed = parse_answer(comp.text, fmt)
        if parsed is None:
            stats.failed += 1
            yield s.id, "unparseable answer in batch results"
            continue
        usage = body.get("usage", {})
        stats.prompt_tokens += usage.get("prompt_tokens", 0)
        stats.completion_tokens += usage.get("completion_tokens", 0)
        stats.labelled += 1
        yield _label_from_pairs(s, pairs_with_confidence(comp, parsed, cfg.confidence, fmt),
                                f"teacher:{body.get('model', cfg.model)}",
                                cfg, stats, {"prompt_version": fmt.version, "backend": "batch", "usage": usage},
                                red=guard.redact(s.text) if guard is not None else None)


def import_replay(sentences: Iterable[Sentence], path: str | Path, cfg: TeacherConfig, *, name: str = "replay",
                  stats: LabelStats | None = None) -> Iterator[Sentence | tuple[str, str]]:
    """Labels another tool produced: JSONL {"id", "ades": [{"drug", "effect"}]} or CSV id,drug,effect."""
    stats = stats or LabelStats()
    path = Path(path)
    pairs: dict[str, list[_Pair]] = {}
    if path.suffix.lower() in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            for col in ("id", "drug", "effect"):
                if col not in (reader.fieldnames or []):
                    raise ValueError(f"{path}: no column {col!r}")
            for row in reader:
                conf = float(row["confidence"]) if row.get("confidence") else None
                pairs.setdefault(row["id"], []).append(_Pair(row["drug"], row["effect"], conf, conf))
    else:
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    items = rec["ades"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    log.warning("%s:%d: expected {\"id\", \"ades\": [...]}", path, line_no)
                    continue
                pairs[str(rec["id"])] = [_Pair(a["drug"], a["effect"], a.get("confidence"), a.get("confidence"))
                                         for a in items if isinstance(a, dict) and "drug" in a and "effect" in a]
    for s in sentences:
        stats.sentences_in += 1
        if s.id not in pairs:
            stats.failed += 1
            yield s.id, f"no labels for this sentence in {path.name}"
            continue
        stats.labelled += 1
        yield _label_from_pairs(s, pairs[s.id], f"teacher:{name}", cfg, stats, {"backend": "replay"})
