"""How consistently the teacher marks the same words across a corpus, and a repair that uses it.

No gold label is read here. A teacher that marks "hepatotoxicity" as an ADE in eight sentences
and leaves it unmarked in two others has contradicted itself; so has one that marks "renal
failure" in one sentence and "acute renal failure" in the next. ``measure`` counts both over the
whole teacher-labelled corpus; ``propagate`` adds a string where the teacher missed it, as a
soft positive (confidence = the share of its occurrences the teacher marked), when the teacher
marked it in most of its occurrences.

Strings are compared as sequences of lower-cased word and punctuation tokens (``text.word_spans``),
so case and the spacing around hyphens do not matter, and an occurrence is a whole-token match.
Occurrences are found through a token index (each string looked up at the positions of its rarest
token), so the work grows with the corpus, not with strings x sentences.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..core.schema import Entity, Relation, Sentence
from ..core.text import word_spans

LABELS = ("DRUG", "ADE")
Key = tuple[str, ...]


@dataclass
class _Tokens:
    spans: list[tuple[int, int]]
    norm: list[str]
    start_at: dict[int, int]  # char offset -> token index of the token starting there
    end_at: dict[int, int]  # char offset -> token index of the token ending there


def _tokens(text: str) -> _Tokens:
    spans = word_spans(text)
    return _Tokens(spans, [text[a:b].lower() for a, b in spans], {a: i for i, (a, _) in enumerate(spans)},
                   {b: i for i, (_, b) in enumerate(spans)})


def _span_tokens(tok: _Tokens, start: int, end: int) -> tuple[int, int] | None:
    """Token range [i, j) of a span whose edges fall on token edges; None otherwise."""
    i, j = tok.start_at.get(start), tok.end_at.get(end)
    return None if i is None or j is None or j < i else (i, j + 1)


class CorpusIndex:
    """Every sentence's tokens, and where each token occurs, for whole-token string lookups."""

    def __init__(self, sentences: Sequence[Sentence]) -> None:
        self.sentences = list(sentences)
        self.tokens = [_tokens(s.text) for s in self.sentences]
        self.where: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for si, tok in enumerate(self.tokens):
            for ti, w in enumerate(tok.norm):
                self.where[w].append((si, ti))

    def key(self, si: int, start: int, end: int) -> Key | None:
        r = _span_tokens(self.tokens[si], start, end)
        return None if r is None else tuple(self.tokens[si].norm[r[0]:r[1]])

    def occurrences(self, key: Key) -> list[tuple[int, int, int]]:
        """(sentence index, char start, char end) of every whole-token occurrence of ``key``."""
        anchor = min(range(len(key)), key=lambda k: len(self.where.get(key[k], ())))
        out = []
        for si, ti in self.where.get(key[anchor], ()):
            t0 = ti - anchor
            norm = self.tokens[si].norm
            if t0 >= 0 and tuple(norm[t0:t0 + len(key)]) == key:
                spans = self.tokens[si].spans
                out.append((si, spans[t0][0], spans[t0 + len(key) - 1][1]))
        return out


@dataclass
class StringCounts:
    """One marked string: how often the teacher marked it, and what it did at its other occurrences."""

    label: str
    key: Key
    occurrences: int = 0
    exact: int = 0  # marked with the same boundaries
    other_boundaries: int = 0  # overlapped by a mark of the same label with other boundaries
    unmarked: int = 0  # no mark of that label touches it

    @property
    def share(self) -> float:
        return self.exact / self.occurrences if self.occurrences else 0.0

    @property
    def text(self) -> str:
        return " ".join(self.key)


@dataclass
class Consistency:
    """The corpus-level table: per label, over the strings marked at least ``min_marks`` times."""

    sentences: int
    empty_answers: int  # sentences the teacher labelled with no entity at all
    strings: dict[tuple[str, Key], StringCounts] = field(default_factory=dict)
    min_marks: int = 2

    def rows(self) -> list[dict]:
        out = []
        for label in LABELS:
            rows = [c for (lab, _), c in self.strings.items() if lab == label and c.exact >= self.min_marks]
            occ = sum(c.occurrences for c in rows)
            ex, ob, un = (sum(getattr(c, k) for c in rows) for k in ("exact", "other_boundaries", "unmarked"))
            out.append({"label": label, "strings": len(rows), "occurrences": occ, "marked_same_boundaries": ex,
                        "marked_other_boundaries": ob, "unmarked": un,
                        "unmarked_share": un / occ if occ else 0.0, "other_boundaries_share": ob / occ if occ else 0.0})
        return out

    def most_missed(self, label: str, n: int = 15) -> list[StringCounts]:
        rows = [c for (lab, _), c in self.strings.items() if lab == label and c.exact >= self.min_marks]
        return sorted(rows, key=lambda c: (-c.unmarked, c.key))[:n]


def _marks(index: CorpusIndex, label: str) -> tuple[dict[Key, int], list[list[tuple[int, int]]]]:
    """How often each string is marked with ``label``, and each sentence's marked char spans."""
    counts: Counter = Counter()
    spans: list[list[tuple[int, int]]] = []
    for si, s in enumerate(index.sentences):
        mine = [(e.start, e.end) for e in s.entities if e.label == label]
        spans.append(mine)
        for a, b in set(mine):
            k = index.key(si, a, b)
            if k is not None:
                counts[k] += 1
    return counts, spans


def measure(sentences: Sequence[Sentence], *, min_marks: int = 2, index: CorpusIndex | None = None) -> Consistency:
    """Count, for each string the teacher marked at least ``min_marks`` times, what it did at
    every whole-token occurrence of that string: marked it with the same boundaries, marked an
    overlapping span with other boundaries, or left it unmarked."""
    index = index or CorpusIndex(sentences)
    out = Consistency(sentences=len(index.sentences), min_marks=min_marks,
                      empty_answers=sum(1 for s in index.sentences if not s.entities))
    for label in LABELS:
        counts, spans = _marks(index, label)
        for key, n in counts.items():
            if n < min_marks:
                continue
            c = StringCounts(label, key)
            for si, a, b in index.occurrences(key):
                c.occurrences += 1
                marked = spans[si]
                if (a, b) in marked:
                    c.exact += 1
                elif any(x < b and a < y for x, y in marked):
                    c.other_boundaries += 1
                else:
                    c.unmarked += 1
            out.strings[(label, key)] = c
    return out


@dataclass
class RepairStats:
    added: Counter = field(default_factory=Counter)  # label -> spans added
    relations_added: int = 0
    sentences_changed: int = 0

    def to_json(self) -> dict:
        return {"spans_added": dict(self.added), "relations_added": self.relations_added,
                "sentences_changed": self.sentences_changed}


def propagate(sentences: Sequence[Sentence], *, min_marks: int = 2, min_share: float = 0.6, min_chars: int = 4,
              labels: Iterable[str] = LABELS, consistency: Consistency | None = None
              ) -> tuple[list[Sentence], RepairStats]:
    """Corpus-level consistency repair: a string the teacher marked as DRUG/ADE at least
    ``min_marks`` times and in at least ``min_share`` of its occurrences is added where it was
    left unmarked (no mark of that label touches the occurrence), with confidence = that share.
    Relations: in a sentence that has none after the repair, every drug x ADE pair (the teacher
    found an ADE sentence and named no pair); otherwise an added span is linked to the sentence's
    only entity of the other type, if it has exactly one. Confidence of an added relation: the
    lower of its two spans'."""
    index = CorpusIndex(sentences)
    cons = consistency or measure(index.sentences, min_marks=min_marks, index=index)
    wanted = set(labels)
    add: dict[int, list[tuple[str, int, int, float]]] = defaultdict(list)
    for (label, key), c in cons.strings.items():
        text_len = sum(len(t) for t in key)
        if label not in wanted or c.exact < min_marks or c.share < min_share or text_len < min_chars:
            continue
        for si, a, b in index.occurrences(key):
            s = index.sentences[si]
            if not any(e.label == label and e.start < b and a < e.end for e in s.entities):
                add[si].append((label, a, b, round(c.share, 4)))
    return _apply(index.sentences, add, link="sole")


def complete_drugs(sentences: Sequence[Sentence], names: dict[str, Iterable[str]], *, confidence: float = 0.5,
                   min_chars: int = 4) -> tuple[list[Sentence], RepairStats]:
    """Drug mentions completed from an open drug vocabulary (``names``: substance -> its names,
    brands and synonyms, e.g. ``DrugNormaliser.vocabulary()``): a vocabulary name standing as whole
    words where no teacher span touches it is added as a soft DRUG (``confidence``: the vocabulary
    says it names a drug, not that the sentence reports it as a cause). A name of fewer than
    ``min_chars`` characters, or one the teacher marks as an ADE more often than as a drug over the
    corpus ("alcohol" in "alcohol abuse"), is never added. Relations only where the teacher marked
    ADEs and named no pair: every drug x ADE (the teacher saw an ADE sentence and left its drug out);
    a sentence whose teacher relations stand keeps them as they are. Linear in the corpus: one
    Aho-Corasick pass a sentence."""
    from ..apps.cascade import DrugMatcher, match_key

    as_label: dict[str, Counter] = defaultdict(Counter)
    for s in sentences:
        for e in s.entities:
            as_label[match_key(e.text)][e.label] += 1
    matcher = DrugMatcher({k: [x for x in v if len(x.strip()) >= min_chars] for k, v in names.items()})
    add: dict[int, list[tuple[str, int, int, float]]] = defaultdict(list)
    for si, s in enumerate(sentences):
        for a, b, _ in matcher.find(s.text):
            seen = as_label.get(match_key(s.text[a:b]), Counter())
            if seen["ADE"] > seen["DRUG"] or any(e.start < b and a < e.end for e in s.entities):
                continue
            add[si].append(("DRUG", a, b, confidence))
    return _apply(sentences, add, link="empty")


def _apply(sentences: Sequence[Sentence], add: dict[int, list[tuple[str, int, int, float]]], *, link: str
           ) -> tuple[list[Sentence], RepairStats]:
    """Add the spans ``add`` names (sentence index -> (label, start, end, confidence)), the longest
    of overlapping ones, with relations: in a sentence that has none, every drug x ADE pair; where it
    has some and ``link == "sole"``, an added span to the sentence's only entity of the other type."""
    stats = RepairStats()
    out = list(sentences)
    for si, new in add.items():
        s = out[si]
        new = _without_overlaps(new)
        if not new:
            continue
        ents = list(s.entities)
        taken = {e.id for e in ents}
        added: list[Entity] = []
        for k, (label, a, b, conf) in enumerate(new):
            eid = _fresh_id(taken, f"c{k}")
            added.append(Entity(id=eid, label=label, start=a, end=b, text=s.text[a:b], confidence=conf))
            stats.added[label] += 1
        ents += added
        rels = list(s.relations)
        have = {(r.drug, r.ade) for r in rels}
        drugs = [e for e in ents if e.label == "DRUG"]
        ades = [e for e in ents if e.label == "ADE"]
        new_rels: list[Relation] = []
        if not rels:
            new_rels = [Relation(drug=d.id, ade=a.id, confidence=_min_conf(d, a)) for d in drugs for a in ades
                        if (d.start, d.end) != (a.start, a.end)]
        elif link == "sole":
            for e in added:
                others = ades if e.label == "DRUG" else drugs
                if len(others) == 1:
                    d, a = (e, others[0]) if e.label == "DRUG" else (others[0], e)
                    if (d.id, a.id) not in have and (d.start, d.end) != (a.start, a.end):
                        new_rels.append(Relation(drug=d.id, ade=a.id, confidence=_min_conf(d, a)))
        stats.relations_added += len(new_rels)
        stats.sentences_changed += 1
        out[si] = s.model_copy(update={"entities": ents, "relations": rels + new_rels,
                                       "meta": {**s.meta, "repaired": len(added)}})
    return out, stats


def _without_overlaps(spans: list[tuple[str, int, int, float]]) -> list[tuple[str, int, int, float]]:
    """Of overlapping candidate spans of one label, the longest (then the most confident)."""
    keep: list[tuple[str, int, int, float]] = []
    for c in sorted(spans, key=lambda c: (-(c[2] - c[1]), -c[3], c[1])):
        if not any(k[0] == c[0] and k[1] < c[2] and c[1] < k[2] for k in keep):
            keep.append(c)
    return sorted(keep, key=lambda c: (c[1], c[0]))


def _fresh_id(taken: set[str], base: str) -> str:
    eid, n = base, 0
    while eid in taken:
        n += 1
        eid = f"{base}_{n}"
    taken.add(eid)
    return eid


def _min_conf(d: Entity, a: Entity) -> float:
    return min(1.0 if d.confidence is None else d.confidence, 1.0 if a.confidence is None else a.confidence)
