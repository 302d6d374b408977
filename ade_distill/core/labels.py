"""Compact label files: ids, offsets, labels and confidences, without the corpus text.

Teacher labels take hours to make and are committed to the repository, but the corpus text
must not be (its licence is unclear, and clinical text must never be). A packed line is
``{"id", "sha", "source", "e": [[label, start, end, conf]], "r": [[drug_idx, ade_idx, conf]],
"meta"}``, where ``sha`` is a short hash of the sentence text; unpacking joins the lines back
to the sentences (e.g. from `ade-distill ingest ade-splits`) and checks the hash, so a label
can never land on a different text.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Iterator

from .schema import Entity, Relation, SchemaError, Sentence, atomic_open


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def pack(s: Sentence) -> dict:
    index = {e.id: i for i, e in enumerate(s.entities)}
    return {"id": s.id, "sha": text_hash(s.text), "source": s.source,
            "e": [[e.label, e.start, e.end, e.confidence] for e in s.entities],
            "r": [[index[r.drug], index[r.ade], r.confidence] for r in s.relations],
            "meta": {k: v for k, v in s.meta.items() if k not in ("text",)}}


def unpack(rec: dict, base: Sentence) -> Sentence:
    if text_hash(base.text) != rec["sha"]:
        raise ValueError(f"sentence {rec['id']!r}: text differs from the one that was labelled")
    ents = [Entity(id=f"t{i}", label=lab, start=a, end=b, text=base.text[a:b], confidence=c)
            for i, (lab, a, b, c) in enumerate(rec["e"])]
    rels = [Relation(drug=f"t{d}", ade=f"t{a}", confidence=c) for d, a, c in rec["r"]]
    return Sentence(id=base.id, doc_id=base.doc_id, text=base.text, doc_offset=base.doc_offset, entities=ents,
                    relations=rels, source=rec["source"], meta=rec.get("meta", {}))


def write_packed(sentences: Iterable[Sentence], path: str | Path) -> int:
    n = 0
    with atomic_open(path) as fh:
        for s in sentences:
            fh.write(json.dumps(pack(s), ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
    return n


def read_unpacked(path: str | Path, sentences: Iterable[Sentence], *, unknown: str = "raise") -> Iterator[Sentence]:
    """Labelled Sentences for every packed line whose id is among ``sentences``; a line with an id
    that is not raises SchemaError, or with ``unknown="skip"`` is passed over (a label file that
    covers more sentences than this run uses, e.g. past a train limit)."""
    base = {s.id: s for s in sentences}
    seen: set[str] = set()
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
                if not isinstance(rec, dict):
                    raise ValueError("expected a JSON object")
                if rec["id"] in seen:
                    raise ValueError(f"duplicate id {rec['id']!r}")
                seen.add(rec["id"])
                s = base.get(rec["id"])
                if s is None:
                    if unknown == "skip":
                        continue
                    raise ValueError(f"sentence {rec['id']!r} not in the given sentences")
                yield unpack(rec, s)
            except UnicodeDecodeError as exc:
                raise SchemaError(f"{path}:{line_no}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
                raise SchemaError(f"{path}:{line_no}: {what}") from exc
