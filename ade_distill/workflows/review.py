"""Review workflows: choose sentences and export them as Label Studio tasks, import the reviewed
tasks as gold sentences, retrain on teacher labels with the reviewed gold in their place."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..core.errors import InputError
from ..core.io import write_failures
from ..core.schema import Sentence, atomic_open, read_sentences, write_jsonl
from .common import sentence_list
from .student import as_student, train

# pair probabilities from this floor up are candidates an uncertainty score looks at
CANDIDATE_FLOOR = 0.05


@dataclass
class ExportResult:
    tasks: Path
    config: Path
    chosen: int
    pool: int
    strategy: str

    def lines(self) -> list[str]:
        return [f"{self.chosen:,} of {self.pool:,} sentences chosen by {self.strategy} -> {self.tasks}",
                f"Label Studio labelling interface: {self.config} (Settings -> Labeling Interface -> Code)"]


def student_view(model, sentences: list[Sentence], **load) -> tuple[list[Sentence], dict[str, list[float]], float]:
    """The student's predictions (at its own threshold), the probabilities of the pairs it left
    out (from CANDIDATE_FLOOR up) per sentence, and its threshold."""
    from ..student.extract import predict_sentences

    st = as_student(model, **load)
    thr = float(st.model.settings.get("relation_threshold", 0.5))
    low = predict_sentences(st.model, st.tokenizer, sentences, batch_size=st.batch_size, device=st.device,
                            name=st.name, relation_threshold=min(CANDIDATE_FLOOR, thr))
    preds, cands = [], {}
    for p in low:
        keep = [r for r in p.relations if (r.confidence or 0) >= thr]
        cands[p.id] = [r.confidence for r in p.relations if (r.confidence or 0) < thr]
        preds.append(p.model_copy(update={"relations": keep}))
    return preds, cands, thr


def review_export(model, sentences: Iterable[Sentence] | str | Path, out: str | Path, *, n: int = 50,
                  strategy: str = "uncertainty", teacher: Iterable[Sentence] | str | Path | None = None,
                  exclude: Iterable[Sentence] | str | Path | None = None, seed: int = 13, **load) -> ExportResult:
    """The ``n`` sentences a reviewer should see first, as a Label Studio task file (JSON) with
    the student's labels as pre-annotations, and the matching labelling interface beside it."""
    from ..apps.review import LABEL_CONFIG, choose, to_task
    from ..student.model import model_info

    pool = sentence_list(sentences)
    if not pool:
        raise InputError("no sentences to choose from")
    preds, cands, thr = student_view(model, pool, **load)
    teach = {s.id: s for s in sentence_list(teacher)} if teacher is not None else None
    done = {s.id for s in sentence_list(exclude)} if exclude is not None else set()
    chosen = choose(preds, n, strategy, teacher=teach, candidates=cands, threshold=thr, seed=seed, exclude=done)
    by_id = {s.id: s for s in pool}
    version = "ade-distill"
    if isinstance(model, (str, Path)):
        info = model_info(model)
        version = f"{info['id']}@{info['version']}"
    tasks = [to_task(by_id[p.id], p, score=score, model_version=version) for p, score in chosen]
    out = Path(out)
    with atomic_open(out) as fh:
        json.dump(tasks, fh, ensure_ascii=False, indent=1)
    cfg = out.with_name(out.stem + ".label_config.xml")
    with atomic_open(cfg) as fh:
        fh.write(LABEL_CONFIG)
    return ExportResult(out, cfg, len(tasks), len(pool) - len(done & set(by_id)), strategy)


@dataclass
class ReviewImportResult:
    out: Path
    sentences: int
    relations: int
    problems: list[str] = field(default_factory=list)
    not_reviewed: int = 0

    def lines(self) -> list[str]:
        out = [f"{self.sentences:,} reviewed sentences ({self.relations:,} relations) -> {self.out}"]
        if self.not_reviewed:
            out.append(f"{self.not_reviewed:,} task(s) not reviewed yet (no annotation, or cancelled)")
        if self.problems:
            out.append(f"{len(self.problems):,} task(s) could not be read (see {self.out}.failures.jsonl):")
            out += [f"  {p}" for p in self.problems[:10]]
        return out


def review_import(export: str | Path, out: str | Path, *, append: bool = True) -> ReviewImportResult:
    """Reviewed sentences (source gold) from a Label Studio JSON export into ``out``; with
    ``append``, sentences already in ``out`` stay unless reviewed again (the new review wins)."""
    from ..apps.review import read_export

    r = read_export(export)
    out = Path(out)
    merged: dict[str, Sentence] = {}
    if append and out.exists():
        merged = {s.id: s for s in read_sentences(out)}
    for s in r.sentences:
        merged[s.id] = s
    write_jsonl(out, merged.values())
    fails = out.with_name(out.name + ".failures.jsonl")
    if r.problems:
        write_failures(fails, [(f"task-{i}", p) for i, p in enumerate(r.problems)])
    elif fails.exists():
        fails.unlink()
    return ReviewImportResult(out, len(r.sentences), sum(len(s.relations) for s in r.sentences), r.problems,
                              len(r.not_reviewed))


def with_reviewed(labels: Iterable[Sentence] | str | Path, reviewed: Iterable[Sentence] | str | Path) -> list[Sentence]:
    """Teacher labels with every reviewed sentence's gold labels in their place (reviewed
    sentences the teacher never labelled are added)."""
    rev = {s.id: s for s in sentence_list(reviewed)}
    base = sentence_list(labels)
    out = [rev.pop(s.id, s) for s in base]
    return out + list(rev.values())


def review_retrain(labels, reviewed, out: str | Path, config=None, **kw):
    """Train a student on the teacher's labels with the reviewed gold in their place."""
    return train(with_reviewed(labels, reviewed), out, config, **kw)


def _label_studio(url: str, key_env: str):
    import os

    from ..apps.labelstudio import LabelStudio

    key = os.environ.get(key_env)
    if not key:
        raise InputError(f"the environment variable {key_env} (the Label Studio API key) is not set")
    return LabelStudio(url, key)


@dataclass
class PushResult:
    url: str
    project: int
    tasks: int

    def lines(self) -> list[str]:
        return [f"{self.tasks:,} task(s) -> Label Studio project {self.project}: {self.url}/projects/{self.project}/data"]


def review_push(tasks: str | Path, url: str, *, key_env: str = "LABEL_STUDIO_API_KEY", project: int | None = None,
                title: str = "ade-distill review") -> PushResult:
    """Tasks from `review export` into a Label Studio project (a new one, with the ADE labelling
    interface, unless ``project`` names an existing one)."""
    from ..apps.review import LABEL_CONFIG

    items = json.loads(Path(tasks).read_text(encoding="utf-8"))
    with _label_studio(url, key_env) as ls:
        if project is None:
            project = ls.create_project(title, LABEL_CONFIG, "Adverse drug events pre-annotated by an ade-distill student")
        n = ls.import_tasks(project, items)
    return PushResult(url.rstrip("/"), project, n)


def review_pull(url: str, project: int, out: str | Path, *, key_env: str = "LABEL_STUDIO_API_KEY",
                append: bool = True) -> ReviewImportResult:
    """A Label Studio project's reviewed tasks as gold sentences (the export is kept beside
    ``out`` as <out>.labelstudio.json)."""
    with _label_studio(url, key_env) as ls:
        export = ls.export(project)
    out = Path(out)
    raw = out.with_name(out.name.removesuffix(".jsonl") + ".labelstudio.json")
    with atomic_open(raw) as fh:
        json.dump(export, fh, ensure_ascii=False)
    return review_import(raw, out, append=append)
