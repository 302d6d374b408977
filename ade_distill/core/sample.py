"""The embedded sample (data/sample/): written for this project, not taken from any corpus.

``gold.tsv`` is the hand-written source (inline ``<dN>``/``<aN>`` tags); ``gold.jsonl`` is
built from it with ``python -m ade_distill.core.sample`` and committed, so readers need no parser.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Iterator

from .schema import Entity, Relation, Sentence, write_jsonl

_PACKAGED = Path(__file__).resolve().parents[1] / "resources" / "sample"
SAMPLE_DIR = Path(os.environ.get("ADE_DISTILL_SAMPLE", _PACKAGED))
_TAG = re.compile(r"<(/?)([da])(\d+)>")


def parse_markup(markup: str) -> tuple[str, dict[str, tuple[str, int, int]]]:
    """Strip ``<dN>..</dN>``/``<aN>..</aN>`` tags: (plain text, {tag: (label, start, end)})."""
    out, spans, open_at = [], {}, {}
    pos, length = 0, 0
    for m in _TAG.finditer(markup):
        chunk = markup[pos:m.start()]
        out.append(chunk)
        length += len(chunk)
        pos = m.end()
        key = f"{m.group(2)}{m.group(3)}"
        if m.group(1):
            if key not in open_at:
                raise ValueError(f"closing </{key}> without an opening tag")
            spans[key] = ("DRUG" if m.group(2) == "d" else "ADE", open_at.pop(key), length)
        else:
            if key in open_at or key in spans:
                raise ValueError(f"tag <{key}> used twice")
            open_at[key] = length
    if open_at:
        raise ValueError(f"unclosed tag(s): {', '.join(open_at)}")
    out.append(markup[pos:])
    return "".join(out), spans


def read_markup(path: Path) -> Iterator[Sentence]:
    """Sentences from a gold.tsv file (doc_id, marked-up text, relations)."""
    offsets: dict[str, int] = {}
    counters: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("#") or not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                raise ValueError(f"{path}:{lineno}: expected 3 tab-separated fields")
            doc_id, markup, rels = parts
            try:
                text, spans = parse_markup(markup)
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc
            k = counters.get(doc_id, 0)
            counters[doc_id] = k + 1
            order = sorted(spans, key=lambda t: (spans[t][1], -spans[t][2]))
            ids = {tag: f"e{i}" for i, tag in enumerate(order)}
            entities = [Entity(id=ids[t], label=spans[t][0], start=spans[t][1], end=spans[t][2],
                               text=text[spans[t][1]:spans[t][2]]) for t in order]
            relations = []
            for pair in rels.split():
                d, a = pair.split(":")
                relations.append(Relation(drug=ids[d], ade=ids[a]))
            yield Sentence(id=f"{doc_id}-{k}", doc_id=doc_id, text=text,
                           doc_offset=offsets.get(doc_id, 0), entities=entities,
                           relations=relations, source="gold", meta={})
            offsets[doc_id] = offsets.get(doc_id, 0) + len(text) + 1


def build(sample_dir: Path = SAMPLE_DIR) -> int:
    """Rebuild gold.jsonl from gold.tsv; return the number of sentences."""
    return write_jsonl(sample_dir / "gold.jsonl", read_markup(sample_dir / "gold.tsv"))


if __name__ == "__main__":
    n = build()
    print(f"wrote {n} sentences to {SAMPLE_DIR / 'gold.jsonl'}", file=sys.stderr)
