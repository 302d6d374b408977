"""Drug-conditioned ADE tagging: the sentence again with one drug marked, and the ADE layer
tagging only that drug's adverse effects (the formulation of the reference case study, which
tags ADEs given a drug; Zhou & Chen 2021's punctuation markers around the span).

A student trained with ``drug_conditioned`` learns both tasks in one tagger: the plain sentence
(every DRUG and ADE, the relation head pairs them) and, for each labelled drug, the marked copy
whose ADE layer holds only the ADEs related to that drug. At prediction time the plain pass finds
the drugs; each is marked in turn and the marked pass's ADE spans become that drug's relations.
"""

from __future__ import annotations

from typing import Sequence

from ..core.schema import Entity, Relation, Sentence

OPEN, CLOSE = "<<", ">>"  # each marker is two punctuation words; spaces keep them apart from the text
META_KEY = "conditioned_on"  # a marked copy's meta: the marked drug's id (its pairs train no relation head)


class MarkedDrug:
    """One sentence with one drug span marked: ``text`` and the maps between the two offset systems."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.open = len(OPEN) + 1  # "<< "
        self.close = len(CLOSE) + 1  # " >>"
        self.text = f"{text[:start]}{OPEN} {text[start:end]} {CLOSE}{text[end:]}"

    def to_marked(self, pos: int) -> int:
        """A character offset of the plain text in the marked text. A span that begins or ends with
        the drug takes the marker on that side in (offsets at the drug's edges stay outside it)."""
        if pos <= self.start:
            return pos
        return pos + self.open if pos < self.end else pos + self.open + self.close

    def to_plain(self, pos: int) -> int:
        """A character offset of the marked text in the plain text: marker characters fall on the
        drug's edge (the opening marker on its start, the closing one on its end)."""
        d0, d1 = self.start + self.open, self.end + self.open  # the drug's characters, marked
        if pos <= self.start:
            return pos
        if pos <= d0:
            return self.start
        if pos <= d1:
            return pos - self.open
        return self.end if pos <= d1 + self.close else pos - self.open - self.close


def marked_copies(sentences: Sequence[Sentence]) -> list[Sentence]:
    """Training copies: for each labelled drug of each sentence, the sentence with that drug marked,
    every drug kept in the DRUG layer, and in the ADE layer only the ADEs related to the marked
    drug (confidence: the lower of the ADE span's and the relation's). No relations: a marked
    copy teaches the tagger only."""
    out = []
    for s in sentences:
        rel_of = {(r.drug, r.ade): r for r in s.relations}
        for drug in (e for e in s.entities if e.label == "DRUG"):
            m = MarkedDrug(s.text, drug.start, drug.end)
            ents = []
            for e in s.entities:
                if e.label == "ADE":
                    rel = rel_of.get((drug.id, e.id))
                    if rel is None:
                        continue
                    confs = [c for c in (e.confidence, rel.confidence) if c is not None]
                    conf = min(confs) if confs else None
                else:
                    conf = e.confidence
                if e.id == drug.id:  # the marked drug itself: its characters, inside the markers
                    start, end = drug.start + m.open, drug.end + m.open
                else:
                    start, end = m.to_marked(e.start), m.to_marked(e.end)
                ents.append(Entity(id=e.id, label=e.label, start=start, end=end, text=m.text[start:end],
                                   confidence=conf))
            out.append(Sentence(id=f"{s.id}#{drug.id}", doc_id=s.doc_id, text=m.text, entities=ents,
                                source=s.source, meta={**s.meta, META_KEY: drug.id}))
    return out


def conditioned_relations(s: Sentence, drug: Entity, m: MarkedDrug, marked_entities: Sequence[Entity],
                          entities: list[Entity]) -> list[Relation]:
    """The relations of ``drug`` from the ADE spans a marked pass over ``m`` (the sentence with that
    drug marked) predicted (``marked_entities``, offsets in the marked text). An ADE span the plain
    pass also found is linked by its id; a new one is appended to ``entities`` (the sentence's
    predicted entities). Confidence: the span's."""
    by_span = {(e.start, e.end): e for e in entities if e.label == "ADE"}
    ids = {e.id for e in entities}
    out = []
    for e in marked_entities:
        if e.label != "ADE":
            continue
        start, end = m.to_plain(e.start), m.to_plain(e.end)
        while start < end and s.text[start].isspace():
            start += 1
        while end > start and s.text[end - 1].isspace():
            end -= 1
        if start >= end or (start, end) == (drug.start, drug.end):
            continue  # only marker characters, or the drug itself
        ade = by_span.get((start, end))
        if ade is None:
            ade = Entity(id=f"p{len(entities)}", label="ADE", start=start, end=end, text=s.text[start:end],
                         confidence=e.confidence)
            while ade.id in ids:
                ade = ade.model_copy(update={"id": ade.id + "c"})
            entities.append(ade)
            ids.add(ade.id)
            by_span[(start, end)] = ade
        if all(r.ade != ade.id for r in out):
            out.append(Relation(drug=drug.id, ade=ade.id, confidence=e.confidence))
    return out
