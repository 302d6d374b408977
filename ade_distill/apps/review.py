"""Human review: choose sentences for a reviewer, hand them to Label Studio with the student's
drugs, effects and relations as pre-annotations, and read the reviewed tasks back as gold.

Label Studio (https://labelstud.io) is the open-source annotation tool reviewers already use.
A task is ``{"data": {"text", "sentence_id", "doc_id", "doc_offset"}, "predictions": [{"model_version",
"score", "result": [...]}]}``; a span result is ``{"id", "type": "labels", "from_name": "label",
"to_name": "text", "value": {"start", "end", "text", "labels": ["DRUG"]}}`` and a relation
result ``{"type": "relation", "from_id": <drug>, "to_id": <effect>, "direction": "right",
"labels": ["ADE_OF"]}``. LABEL_CONFIG is the labelling interface that matches.

Choosing what to review (no gold involved): ``uncertainty`` ranks sentences by how close the
student's least certain decision is to its threshold (spans and candidate pairs, so a relation the
model almost predicted counts too); ``disagreement`` by how much student and teacher differ
(1 - relation F1 of one against the other, entity F1 breaking ties); ``random`` is the baseline.

Reading back is strict: each reviewed span must still match the task's text at its offsets, a
relation must join a DRUG to an ADE of the same task; a task that fails is reported with its id
and why, never dropped silently; a task with no annotation, or only cancelled ones, is reported
as not reviewed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from pydantic import ValidationError

from ..core.errors import InputError
from ..core.schema import Entity, Relation, Sentence

FROM_NAME, TO_NAME, RELATION = "label", "text", "ADE_OF"

LABEL_CONFIG = f"""<View>
  <Header value="Mark each drug and adverse effect; link drug -> effect when the drug caused it"/>
  <Relations>
    <Relation value="{RELATION}"/>
  </Relations>
  <Labels name="{FROM_NAME}" toName="{TO_NAME}">
    <Label value="DRUG" background="#1f77b4"/>
    <Label value="ADE" background="#d62728"/>
  </Labels>
  <Text name="{TO_NAME}" value="$text"/>
</View>
"""

STRATEGIES = ("uncertainty", "disagreement", "random")


# ---------------------------------------------------------------- choosing

def _closeness(p: float | None, threshold: float) -> float:
    """1 at the decision threshold, 0 at certainty (p = 0 or 1)."""
    if p is None:
        return 0.0
    return 1 - (threshold - p) / threshold if p < threshold else 1 - (p - threshold) / (1 - threshold)


def uncertainty(pred: Sentence, *, threshold: float = 0.5, candidates: Sequence[float] = ()) -> float:
    """How unsure the student is about a sentence: the closeness to the threshold of its least
    certain span or relation, including ``candidates`` (pair probabilities it left out)."""
    scores = [_closeness(e.confidence, 0.5) for e in pred.entities]
    scores += [_closeness(r.confidence, threshold) for r in pred.relations]
    scores += [_closeness(p, threshold) for p in candidates]
    return max(scores, default=0.0)


def _f1(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    tp = len(a & b)
    return 2 * tp / (len(a) + len(b))


def disagreement(student: Sentence, teacher: Sentence) -> float:
    """1 - relation agreement (F1 of one against the other, strict spans), with entity
    disagreement as a tie-breaker (weight 0.01)."""
    def rels(s):
        return {(s.entity(r.drug).start, s.entity(r.drug).end, s.entity(r.ade).start, s.entity(r.ade).end)
                for r in s.relations}

    def ents(s):
        return {(e.label, e.start, e.end) for e in s.entities}

    return (1 - _f1(rels(student), rels(teacher))) + 0.01 * (1 - _f1(ents(student), ents(teacher)))


def choose(preds: Sequence[Sentence], n: int, strategy: str, *, teacher: Mapping[str, Sentence] | None = None,
           candidates: Mapping[str, Sequence[float]] | None = None, threshold: float = 0.5, seed: int = 13,
           exclude: Iterable[str] = ()) -> list[tuple[Sentence, float]]:
    """The ``n`` sentences to review first, with their scores (highest first; ties keep input
    order). ``exclude``: ids already reviewed."""
    skip = set(exclude)
    pool = [p for p in preds if p.id not in skip]
    if strategy == "random":
        rng = random.Random(seed)
        return [(p, 0.0) for p in rng.sample(pool, min(n, len(pool)))]
    if strategy == "uncertainty":
        cand = candidates or {}
        scored = [(p, uncertainty(p, threshold=threshold, candidates=cand.get(p.id, ()))) for p in pool]
    elif strategy == "disagreement":
        if not teacher:
            raise InputError("disagreement needs the teacher's labels of the same sentences")
        missing = [p.id for p in pool if p.id not in teacher]
        if missing:
            raise InputError(f"{len(missing)} sentence(s) have no teacher label, e.g. {missing[0]!r}")
        scored = [(p, disagreement(p, teacher[p.id])) for p in pool]
    else:
        raise InputError(f"unknown review strategy {strategy!r} (one of {', '.join(STRATEGIES)})")
    order = sorted(range(len(scored)), key=lambda i: -scored[i][1])
    return [scored[i] for i in order[:n]]


# ---------------------------------------------------------------- Label Studio tasks

def to_task(s: Sentence, pred: Sentence | None = None, *, score: float | None = None,
            model_version: str = "ade-distill") -> dict:
    """A Label Studio task for sentence ``s``; ``pred`` (the student's labels of it) becomes the
    pre-annotation."""
    task = {"data": {"text": s.text, "sentence_id": s.id, "doc_id": s.doc_id, "doc_offset": s.doc_offset}}
    if score is not None:
        task["data"]["review_score"] = round(score, 4)
    if pred is not None:
        result = [{"id": e.id, "type": "labels", "from_name": FROM_NAME, "to_name": TO_NAME,
                   "value": {"start": e.start, "end": e.end, "text": e.text, "labels": [e.label]},
                   **({"score": e.confidence} if e.confidence is not None else {})} for e in pred.entities]
        result += [{"type": "relation", "from_id": r.drug, "to_id": r.ade, "direction": "right", "labels": [RELATION]}
                   for r in pred.relations]
        task["predictions"] = [{"model_version": model_version, "result": result,
                                **({"score": round(score, 4)} if score is not None else {})}]
    return task


@dataclass
class ImportResult:
    sentences: list[Sentence]
    problems: list[str] = field(default_factory=list)
    not_reviewed: list[str] = field(default_factory=list)


def _annotation(task: dict) -> dict | None:
    """The task's latest annotation that was not cancelled."""
    anns = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not anns:
        return None
    return max(anns, key=lambda a: (a.get("updated_at") or a.get("created_at") or "", a.get("id") or 0))


def from_task(task: dict) -> Sentence | None:
    """The reviewed sentence of one exported task (source "gold"), None if nobody reviewed it;
    ValueError (with the reason) for an annotation that does not make a valid sentence."""
    data = task.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not data.get("sentence_id"):
        raise ValueError("the task has no data.text and data.sentence_id (not an ade-distill task)")
    ann = _annotation(task)
    if ann is None:
        return None
    text = data["text"]
    entities: list[Entity] = []
    relations: list[Relation] = []
    ids: dict[str, str] = {}
    for r in ann.get("result") or []:
        if r.get("type") == "labels":
            v = r.get("value") or {}
            labels = v.get("labels") or []
            if len(labels) != 1 or labels[0] not in ("DRUG", "ADE"):
                raise ValueError(f"span {r.get('id')!r} has labels {labels}; exactly one of DRUG, ADE")
            start, end = v.get("start"), v.get("end")
            if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
                raise ValueError(f"span {r.get('id')!r} [{start}:{end}] is outside the text ({len(text)} chars)")
            if v.get("text") is not None and v["text"] != text[start:end]:
                raise ValueError(f"span {r.get('id')!r}: its text {v['text']!r} is not the task text's "
                                 f"[{start}:{end}] {text[start:end]!r}")
            eid = f"r{len(entities)}"
            ids[str(r.get("id"))] = eid
            entities.append(Entity(id=eid, label=labels[0], start=start, end=end, text=text[start:end]))
    label_of = {e.id: e.label for e in entities}
    for r in ann.get("result") or []:
        if r.get("type") != "relation":
            continue
        a, b = ids.get(str(r.get("from_id"))), ids.get(str(r.get("to_id")))
        if a is None or b is None:
            raise ValueError(f"relation {r.get('from_id')!r} -> {r.get('to_id')!r} names a span that is not in the annotation")
        if {label_of[a], label_of[b]} != {"DRUG", "ADE"}:
            raise ValueError(f"relation {r.get('from_id')!r} -> {r.get('to_id')!r} joins {label_of[a]} and "
                             f"{label_of[b]}; a relation joins a DRUG and an ADE")
        drug, ade = (a, b) if label_of[a] == "DRUG" else (b, a)
        if not any(x.drug == drug and x.ade == ade for x in relations):
            relations.append(Relation(drug=drug, ade=ade))
    meta = {"review": {k: ann.get(k) for k in ("id", "completed_by", "updated_at") if ann.get(k) is not None}}
    if task.get("id") is not None:
        meta["review"]["task"] = task["id"]
    try:
        return Sentence(id=str(data["sentence_id"]), doc_id=str(data.get("doc_id") or data["sentence_id"]), text=text,
                        doc_offset=data.get("doc_offset"), entities=entities, relations=relations, source="gold",
                        meta=meta)
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"] for e in exc.errors())) from None


def read_export(path: str | Path) -> ImportResult:
    """Reviewed sentences from a Label Studio JSON export (a list of tasks); a task that does not
    make a valid sentence is reported with its task id and reason, one not reviewed is listed."""
    path = Path(path)
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not isinstance(tasks, list):
        raise InputError(f"{path}: expected a JSON list of Label Studio tasks (Export -> JSON)")
    out = ImportResult([])
    seen: dict[str, int] = {}
    for k, task in enumerate(tasks):
        where = f"{path}: task {task.get('id', k) if isinstance(task, dict) else k}"
        try:
            if not isinstance(task, dict):
                raise ValueError("not a JSON object")
            s = from_task(task)
        except ValueError as exc:
            out.problems.append(f"{where}: {exc}")
            continue
        if s is None:
            out.not_reviewed.append(str(task["data"]["sentence_id"]))
            continue
        if s.id in seen:
            out.problems.append(f"{where}: sentence {s.id!r} was already read from an earlier task; the later one kept")
            out.sentences[seen[s.id]] = s
            continue
        seen[s.id] = len(out.sentences)
        out.sentences.append(s)
    return out
