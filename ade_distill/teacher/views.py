"""Several readings of the same sentences by the teacher ("views": prompts, wordings, models),
aggregated into one set of labels with vote-based confidences. No gold label is read here.

One prompt, one reading gives one noisy view: measured on ADE fold 0 test, the JSON prompt answered
an empty list for 100 of 427 sentences, the lines prompt for 36, both for only 26. Aggregating:

- Spans of one label that overlap across views form a cluster; its support is the number of views
  that marked anything in it, and the span kept is the boundary most views chose (ties: the
  earlier view in the list). Its confidence is the mean, over the views that count, of each
  view's own confidence in it (1 when a view gives none; 0 when a view did not mark it).
- An empty answer (no entity at all) abstains by default (``empty_abstains``): the teacher
  answered "no ADE" for a quarter of ADE-Corpus-V2 sentences, every one of which reports one, so
  an empty answer is weak evidence against what another view found. A view that lacks the
  sentence (not labelled yet) abstains too.
- A relation's support and confidence are counted the same way, between the kept spans.
- ``min_support`` (a share of the counting views) keeps a span or relation in the output; below it,
  it is dropped. The student's ``min_confidence`` then decides which kept spans are hard labels.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import InputError
from ..core.schema import Entity, Relation, Sentence

Rule = Literal["vote", "fill"]


@dataclass
class ViewStats:
    sentences: int = 0
    counted_views: dict[int, int] = field(default_factory=dict)  # number of counting views -> sentences
    empty_in_all: int = 0
    entities: int = 0
    relations: int = 0

    def to_json(self) -> dict:
        return {"sentences": self.sentences, "counted_views": {str(k): v for k, v in sorted(self.counted_views.items())},
                "empty_in_all": self.empty_in_all, "entities": self.entities, "relations": self.relations}


def _conf(x: float | None) -> float:
    return 1.0 if x is None else float(x)


def _clusters(spans: list[tuple[int, int, int, float]]) -> list[list[tuple[int, int, int, float]]]:
    """Group (view, start, end, conf) spans of one label into clusters of overlapping spans."""
    groups: list[list[tuple[int, int, int, float]]] = []
    end = -1
    for sp in sorted(spans, key=lambda x: (x[1], x[2])):
        if groups and sp[1] < end:
            groups[-1].append(sp)
            end = max(end, sp[2])
        else:
            groups.append([sp])
            end = sp[2]
    return groups


def aggregate_sentence(views: Sequence[Sentence | None], *, rule: Rule = "vote", empty_abstains: bool = True,
                       min_support: float = 0.0, source: str | None = None) -> Sentence:
    """One sentence's labels from its views (``None``: a view that has not labelled it)."""
    have = [(i, v) for i, v in enumerate(views) if v is not None]
    if not have:
        raise InputError("aggregate_sentence: no view labelled this sentence")
    base = have[0][1]
    for _, v in have:
        if v.id != base.id or v.text != base.text:
            raise InputError(f"views disagree on sentence {base.id!r}: {v.id!r} has another id or text")
    counting = [(i, v) for i, v in have if v.entities or not empty_abstains] or have
    if rule == "fill":  # the first view (in order) that found anything, as it is
        first = next((v for _, v in have if v.entities), base)
        return first.model_copy(update={"source": source or first.source,
                                        "meta": {**first.meta, "views": len(have), "view_used": views.index(first)}})
    n = len(counting)
    ents: list[Entity] = []
    rep: dict[tuple[int, str], str] = {}  # (view, entity id) -> kept entity id
    for label in ("DRUG", "ADE"):
        spans = [(i, e.start, e.end, _conf(e.confidence)) for i, v in counting for e in v.entities if e.label == label]
        for cluster in _clusters(spans):
            by_view: dict[int, float] = defaultdict(float)
            votes: dict[tuple[int, int], set[int]] = defaultdict(set)
            for i, a, b, c in cluster:
                by_view[i] = max(by_view[i], c)
                votes[(a, b)].add(i)
            support = len(by_view) / n
            if support < min_support:
                continue
            (a, b), _ = max(votes.items(), key=lambda kv: (len(kv[1]), -min(kv[1]), kv[0][1] - kv[0][0]))
            eid = f"v{len(ents)}"
            ents.append(Entity(id=eid, label=label, start=a, end=b, text=base.text[a:b],
                               confidence=round(sum(by_view.values()) / n, 4)))
            members = {(i, x, y) for i, x, y, _ in cluster}
            for i, v in counting:
                for e in v.entities:
                    if e.label == label and (i, e.start, e.end) in members:
                        rep[(i, e.id)] = eid
    rel_conf: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for i, v in counting:
        for r in v.relations:
            d, a = rep.get((i, r.drug)), rep.get((i, r.ade))
            if d is None or a is None:
                continue
            rel_conf[(d, a)][i] = max(rel_conf[(d, a)].get(i, 0.0), _conf(r.confidence))
    rels = [Relation(drug=d, ade=a, confidence=round(sum(c.values()) / n, 4))
            for (d, a), c in rel_conf.items() if len(c) / n >= min_support]
    used = {r.drug for r in rels} | {r.ade for r in rels}
    # a span no view linked to anything stays (an entity label is still a label), as in one view
    return Sentence(id=base.id, doc_id=base.doc_id, text=base.text, doc_offset=base.doc_offset, entities=ents,
                    relations=rels, source=source or base.source,
                    meta={**{k: v for k, v in base.meta.items() if k not in ("usage",)}, "views": len(have),
                          "views_counted": n, "linked_entities": len(used)})


def aggregate(views: Sequence[Sequence[Sentence]], *, rule: Rule = "vote", empty_abstains: bool = True,
              min_support: float = 0.0, source: str | None = None) -> tuple[list[Sentence], ViewStats]:
    """Aggregate several views of the same sentences, in the first view's order (a sentence only
    later views have comes after). Each view is a list of labelled Sentences; ids identify
    sentences across views; a view may lack sentences."""
    if not views:
        raise InputError("aggregate: no views given")
    by_id: list[dict[str, Sentence]] = []
    order: list[str] = []
    seen: set[str] = set()
    for k, view in enumerate(views):
        d: dict[str, Sentence] = {}
        for s in view:
            if s.id in d:
                raise InputError(f"view {k}: sentence id {s.id!r} twice")
            d[s.id] = s
            if s.id not in seen:
                seen.add(s.id)
                order.append(s.id)
        by_id.append(d)
    out, stats = [], ViewStats()
    for sid in order:
        got = [d.get(sid) for d in by_id]
        s = aggregate_sentence(got, rule=rule, empty_abstains=empty_abstains, min_support=min_support, source=source)
        out.append(s)
        stats.sentences += 1
        n = sum(1 for v in got if v is not None and v.entities) if empty_abstains else sum(v is not None for v in got)
        stats.counted_views[n] = stats.counted_views.get(n, 0) + 1
        stats.empty_in_all += not s.entities
        stats.entities += len(s.entities)
        stats.relations += len(s.relations)
    return out, stats


class AggregateConfig(BaseModel):
    """How views are combined (``aggregate``)."""

    model_config = ConfigDict(extra="forbid")

    rule: Rule = "vote"
    empty_abstains: bool = True
    min_support: float = Field(default=0.0, ge=0.0, le=1.0)


class RepairConfig(BaseModel):
    """Label repairs that use the whole teacher-labelled corpus, never gold (teacher/consistency.py)."""

    model_config = ConfigDict(extra="forbid")

    propagate: bool = False  # corpus-level consistency: mark a string where the teacher mostly marks it
    min_marks: int = Field(default=2, ge=1)
    min_share: float = Field(default=0.6, gt=0.0, le=1.0)
    min_chars: int = Field(default=4, ge=1)
    labels: list[Literal["DRUG", "ADE"]] = Field(default_factory=lambda: ["DRUG", "ADE"])
    # drug mentions completed from an open drug vocabulary: a folder holding drugbank_vocabulary.csv
    # (and fda_products.txt), e.g. ../shared/data/drugs; each added mention a soft DRUG of this confidence
    drug_vocab: str | None = None
    vocab_confidence: float = Field(default=0.5, gt=0.0, le=1.0)

    @property
    def active(self) -> bool:
        """Whether any repair runs (the student then learns from the repaired labels)."""
        return self.propagate or bool(self.drug_vocab)


def combine(views: Sequence[Sequence[Sentence]], aggregate_cfg: AggregateConfig | None = None,
            repair: RepairConfig | None = None, *, source: str | None = None) -> tuple[list[Sentence], dict]:
    """The student's training labels from one or more teacher views: aggregated (when there are
    several), then repaired. Returns the sentences and what each step did."""
    aggregate_cfg = aggregate_cfg or AggregateConfig()
    repair = repair or RepairConfig()
    stats: dict = {"views": len(views)}
    if len(views) == 1:
        out = list(views[0])
    else:
        out, vs = aggregate(views, rule=aggregate_cfg.rule, empty_abstains=aggregate_cfg.empty_abstains,
                            min_support=aggregate_cfg.min_support, source=source)
        stats["aggregate"] = vs.to_json()
    if repair.propagate:
        from .consistency import propagate

        out, rs = propagate(out, min_marks=repair.min_marks, min_share=repair.min_share, min_chars=repair.min_chars,
                            labels=repair.labels)
        stats["propagate"] = rs.to_json()
    if repair.drug_vocab:
        from ..post.drugs import DrugNormaliser
        from .consistency import complete_drugs

        out, rs = complete_drugs(out, DrugNormaliser.from_folder(repair.drug_vocab).vocabulary(),
                                 confidence=repair.vocab_confidence, min_chars=repair.min_chars)
        stats["drug_vocab"] = rs.to_json()
    return out, stats
