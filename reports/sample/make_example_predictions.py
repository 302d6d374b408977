"""Two synthetic prediction files for the example report: the sample's gold with known edits.

They are not models; they exist so the example report shows every section (intervals,
paired comparison, calibration, error analysis) before the teacher and student land.
  edited-recall:   every third gold relation is dropped, with its ADE (a cautious system);
                   kept spans get confidence 0.9, nothing else is said.
  edited-boundary: multi-word ADEs lose their first word (lenient but not strict matches),
                   and "drug" is tagged as a DRUG in every sentence that says it;
                   confidences 0.8 on exact spans, 0.6 on shortened ones, 0.3 on false drugs.
Run: python reports/sample/make_example_predictions.py  (writes data/sample/predictions/)
"""

from __future__ import annotations

import re
from pathlib import Path

from ade_distill.sample import SAMPLE_DIR
from ade_distill.schema import Entity, Relation, Sentence, read_sentences, write_jsonl


def edited_recall(s: Sentence, counter: list[int]) -> Sentence:
    keep_rel, drop_ade = [], set()
    for r in s.relations:
        counter[0] += 1
        if counter[0] % 3 == 0:
            drop_ade.add(r.ade)
        else:
            keep_rel.append(r)
    keep_rel = [r for r in keep_rel if r.ade not in drop_ade]
    ents = [e.model_copy(update={"confidence": 0.9}) for e in s.entities if e.id not in drop_ade]
    rels = [r.model_copy(update={"confidence": 0.9}) for r in keep_rel]
    return s.model_copy(update={"entities": ents, "relations": rels, "source": "student:edited-recall"})


def edited_boundary(s: Sentence) -> Sentence:
    ents = []
    for e in s.entities:
        if e.label == "ADE" and " " in e.text:
            cut = e.text.index(" ") + 1
            ents.append(Entity(id=e.id, label="ADE", start=e.start + cut, end=e.end,
                               text=e.text[cut:], confidence=0.6))
        else:
            ents.append(e.model_copy(update={"confidence": 0.8}))
    for k, m in enumerate(re.finditer(r"\bdrug\b", s.text)):
        ents.append(Entity(id=f"x{k}", label="DRUG", start=m.start(), end=m.end(), text=m.group(),
                           confidence=0.3))
    rels = [Relation(drug=r.drug, ade=r.ade, confidence=0.7) for r in s.relations]
    return s.model_copy(update={"entities": ents, "relations": rels, "source": "student:edited-boundary"})


def main() -> None:
    gold = list(read_sentences(SAMPLE_DIR / "gold.jsonl"))
    out = SAMPLE_DIR / "predictions"
    counter = [0]
    write_jsonl(out / "edited-recall.jsonl", (edited_recall(s, counter) for s in gold))
    write_jsonl(out / "edited-boundary.jsonl", (edited_boundary(s) for s in gold))
    print(f"wrote {out}/edited-recall.jsonl and edited-boundary.jsonl")


if __name__ == "__main__":
    main()
