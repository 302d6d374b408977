"""Mention replacement: more training sentences from the labelled ones (Dai and Adel, COLING 2020,
"An analysis of simple data augmentation for named entity recognition").

Each copy of a labelled sentence swaps every replaceable mention for another mention of the same
label drawn from the training set's own labels (teacher or gold: whatever the student learns
from, nothing else), so the student sees each context with new span lengths and each mention in
new contexts. Offsets, relations and confidences follow the swap. A mention that overlaps another
(a drug nested in its ADE) stays as it is. Linear in the number of sentences and copies.
"""

from __future__ import annotations

import random
from typing import Sequence

from ..core.schema import Entity, Sentence


def _pools(sentences: Sequence[Sentence]) -> dict[str, list[str]]:
    pools: dict[str, set[str]] = {}
    for s in sentences:
        for e in s.entities:
            pools.setdefault(e.label, set()).add(e.text)
    return {k: sorted(v) for k, v in pools.items()}


def _replaceable(s: Sentence) -> set[str]:
    """Ids of the mentions that overlap no other mention."""
    ents = sorted(s.entities, key=lambda e: (e.start, e.end))
    out, reach = set(), -1  # reach: the furthest end of the mentions before this one
    for i, e in enumerate(ents):
        if e.start >= reach and (i + 1 == len(ents) or ents[i + 1].start >= e.end):
            out.add(e.id)
        reach = max(reach, e.end)
    return out


def mention_replacement(sentences: Sequence[Sentence], copies: int, *, seed: int = 13) -> list[Sentence]:
    """``copies`` new sentences for each labelled sentence with a replaceable mention (ids
    ``<id>#aug<k>``); sentences without one give none."""
    if copies <= 0:
        return []
    rng = random.Random(seed)
    pools = _pools(sentences)
    out: list[Sentence] = []
    for s in sentences:
        free = _replaceable(s)
        if not free:
            continue
        ordered = sorted(s.entities, key=lambda e: (e.start, e.end))
        for k in range(copies):
            # overlapping mentions overlap only each other, so a kept mention never overlaps a
            # replaced one: it moves by the length changes of the replaced mentions before it
            parts, pos, moves, ents = [], 0, [], {}
            for e in ordered:
                if e.id not in free:
                    continue
                new = rng.choice(pools[e.label])
                parts += [s.text[pos:e.start], new]
                pos = e.end
                moves.append((e.end, len(new) - (e.end - e.start)))
                ents[e.id] = (e, new)
            parts.append(s.text[pos:])
            fixed = []
            for e in s.entities:
                before = sum(d for end, d in moves if end <= e.start)
                text = ents[e.id][1] if e.id in ents else e.text
                a = e.start + before
                fixed.append(Entity(id=e.id, label=e.label, start=a, end=a + len(text), text=text,
                                    confidence=e.confidence))
            out.append(Sentence(id=f"{s.id}#aug{k}", doc_id=s.doc_id, text="".join(parts), entities=fixed,
                                relations=list(s.relations), source=s.source, meta={"augmented_from": s.id}))
    return out
