"""Labelled sentences -> a trained student; a student -> predictions and ADE records."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import InputError
from ..io import AdeWriter
from ..schema import Sentence, write_jsonl
from ..student import Student, TrainConfig
from .common import check_strict, progress, sentence_list


def train_config(cfg: TrainConfig | str | Path | None = None, **overrides) -> TrainConfig:
    """A TrainConfig from an object, a YAML path or the defaults, with validated overrides."""
    from ..config import resolve

    return resolve(TrainConfig, cfg, "student", **overrides)


def dev_split(sentences: list[Sentence], share: float, *, seed: int = 13) -> tuple[list[Sentence], list[Sentence]]:
    """(train, dev): about ``share`` of the sentences held out, whole documents at a time (no
    document on both sides), reproducible from ``seed``."""
    from sklearn.model_selection import GroupShuffleSplit

    groups = [s.doc_id or s.id for s in sentences]
    if len(set(groups)) < 2:
        raise InputError("a dev split needs sentences from at least two documents")
    tr, dv = next(GroupShuffleSplit(n_splits=1, test_size=share, random_state=seed).split(sentences, groups=groups))
    return [sentences[i] for i in sorted(tr)], [sentences[i] for i in sorted(dv)]


@dataclass
class TrainResult:
    out: Path
    sentences: int
    epochs: int
    seconds: float
    device: str
    soft_targets: bool
    history: list[dict] = field(default_factory=list)

    @property
    def kept_epoch(self) -> dict | None:
        """The history entry of the epoch whose model was saved (the best on dev, else the last)."""
        return next((e for e in reversed(self.history) if e.get("kept", True)), None)

    def lines(self) -> list[str]:
        return [f"student saved to {self.out} ({self.sentences:,} sentences, {self.epochs} epochs on {self.device}, "
                f"{self.seconds:.0f} s; load with ade_distill.Student.from_pretrained)"]


def train(sentences: Iterable[Sentence] | str | Path, out: str | Path, config: TrainConfig | str | Path | None = None,
          *, dev: Iterable[Sentence] | str | Path | None = None, resume: bool = False, name: str | None = None,
          progress: bool = True, **overrides) -> TrainResult:
    """Fine-tune a student encoder on labelled sentences (teacher or gold) into ``out``;
    ``overrides`` are TrainConfig keys (validated)."""
    import json

    from ..student import train_student

    cfg = train_config(config, **overrides)
    train_set = sentence_list(sentences)
    if any(s.source == "unlabeled" for s in train_set):
        raise InputError(f"{sentences if isinstance(sentences, (str, Path)) else 'train'}: holds unlabeled "
                         "sentences; label them with the teacher first")
    train_student(train_set, sentence_list(dev) if dev is not None else None, cfg, out, resume=resume, progress=progress, name=name)
    t = json.loads((Path(out) / "training.json").read_text())
    return TrainResult(Path(out), len(train_set), len(t["history"]), t["seconds"], t["device"], t["soft_targets"],
                       t["history"])


def compress(model_dir: str | Path, out: str | Path, *, method: str = "distill",
             sentences: Iterable[Sentence] | str | Path | None = None, config=None, share: float | None = None,
             unlabeled: Iterable[Sentence] | str | Path | None = None, progress: bool = True,
             **overrides) -> dict:
    """A smaller student from a trained one: ``method="distill"`` (a shallower or narrower student
    trained on ``sentences`` and, labelled by the trained student, ``unlabeled``), ``"prune"`` or
    ``"low-rank"`` (``share``). Returns what was done."""
    from ..config import resolve
    from ..student.compress import CompressConfig, apply_method, compress_student

    if method != "distill":
        if share is None:
            raise InputError(f"compress --method {method}: give --share (prune: share of weights zeroed; "
                             "low-rank: share of each layer's rank kept)")
        return {"method": method, "share": share, **apply_method(model_dir, method, share, out)}
    if sentences is None:
        raise InputError("compress --method distill needs --train (the sentences the trained student learnt from)")
    cfg = resolve(CompressConfig, config, "compress", **overrides)
    train_set = sentence_list(sentences)
    extra = []
    if unlabeled is not None:
        ids = {s.id for s in train_set}
        extra = [s for s in sentence_list(unlabeled) if s.id not in ids]
    compress_student(model_dir, train_set, cfg, out, unlabeled=extra, progress=progress)
    return {"method": method, "out": str(out), "unlabeled": len(extra)}


@dataclass
class PredictResult:
    out: Path | None
    model: str
    predictions: list[Sentence]
    seconds: float
    parameters: int

    def lines(self) -> list[str]:
        n = len(self.predictions)
        return [f"student {self.model}: {n:,} sentences in {self.seconds:.1f} s ({n / max(self.seconds, 1e-9):.1f} "
                f"sentences/s), {sum(len(p.relations) for p in self.predictions):,} ADE relations -> {self.out}"]


def as_student(model: Student | str | Path, *, quantize: str | None = None, batch_size: int = 32,
               threads: int | None = None, device: str | None = None, runtime: str = "torch") -> Student:
    if isinstance(model, Student):
        return model
    try:
        return Student.from_pretrained(model, quantize=None if quantize == "none" else quantize,
                                       batch_size=batch_size, threads=threads, device=device, runtime=runtime)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from exc


def predict(model: Student | str | Path, sentences: Iterable[Sentence] | str | Path, out: str | Path | None = None,
            **load) -> PredictResult:
    """Predicted sentences (ids kept, for scoring) and the whole-run time."""
    st = as_student(model, **load)
    sents = sentence_list(sentences)
    t = time.perf_counter()
    preds = st.predict(sents)
    dt = time.perf_counter() - t
    if out is not None:
        write_jsonl(out, preds)
    n_params = getattr(st.model, "n_parameters", None) or sum(p.numel() for p in st.model.parameters())
    return PredictResult(Path(out) if out else None, st.name, preds, dt, n_params)


@dataclass
class ExtractResult:
    out: Path
    documents: int
    sentences: int
    records: int
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{self.documents:,} documents, {self.sentences:,} sentences, {self.records:,} ADE records -> {self.out}"]


def extract(model: Student | str | Path, documents, out: str | Path, *, format: str = "jsonl",
            id_column: str = "id", text_column: str = "text", strict: bool = False, progress_bar: bool = True,
            **load) -> ExtractResult:
    """ADE records from documents (a file or folder any ingest reader takes, or Document objects)
    as JSONL, CSV, Parquet or brat; a bad document is reported and skipped."""
    from ..ingest import Problems, documents_from

    st = as_student(model, **load)
    problems = Problems()
    docs = (documents_from(documents, problems, id_column=id_column, text_column=text_column)
            if isinstance(documents, (str, Path)) else documents)
    n_docs = n_sents = 0
    with AdeWriter(out, format) as w:
        for doc, sents in progress(st.extract_documents(docs, problems=problems), "extract", "document",
                                   enabled=progress_bar):
            n_docs += 1
            n_sents += len(sents)
            try:
                w.add(doc, sents)
            except ValueError as exc:  # a brat name another document took
                problems.add(f"{documents}: {exc}")
        check_strict(problems, strict)
    return ExtractResult(Path(out), n_docs, n_sents, w.n_records, problems.messages)
