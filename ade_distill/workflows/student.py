"""Labelled sentences -> a trained student; a student -> predictions and ADE records."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..core.errors import InputError
from ..core.io import AdeWriter
from ..core.schema import Sentence, write_jsonl
from ..student import Student, TrainConfig
from .common import check_strict, progress, sentence_list


def train_config(cfg: TrainConfig | str | Path | None = None, **overrides) -> TrainConfig:
    """A TrainConfig from an object, a YAML path or the defaults, with validated overrides."""
    from ..core.config import resolve

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
          progress: bool = True, start_from: str | Path | None = None, **overrides) -> TrainResult:
    """Fine-tune a student encoder on labelled sentences (teacher or gold) into ``out``;
    ``overrides`` are TrainConfig keys (validated); ``start_from``: a trained student folder to
    continue from (a second stage) instead of a fresh head on the config's encoder."""
    import json

    from ..student import train_student

    cfg = train_config(config, **overrides)
    train_set = sentence_list(sentences)
    if any(s.source == "unlabeled" for s in train_set):
        raise InputError(f"{sentences if isinstance(sentences, (str, Path)) else 'train'}: holds unlabeled "
                         "sentences; label them with the teacher first")
    train_student(train_set, sentence_list(dev) if dev is not None else None, cfg, out, resume=resume, progress=progress,
                  name=name, start_from=start_from)
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
    from ..core.config import resolve
    from ..student.distill import CompressConfig, compress_student
    from ..student.shrink import apply_method

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


def export_onnx(model: str | Path, *, int8: bool = True) -> dict[str, Path]:
    """The student's encoder exported to ONNX into its folder (fp32, and int8 unless ``int8`` is
    false), for ``runtime="onnx"``; returns the files."""
    from ..student.onnx import export_onnx as export

    return export(model, int8=int8)


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
    cascade: object = None  # apps.cascade.CascadeCounts, when a cascade ran

    def lines(self) -> list[str]:
        out = [f"{self.documents:,} documents, {self.sentences:,} sentences, {self.records:,} ADE records -> {self.out}"]
        return out + ([self.cascade.line()] if self.cascade is not None else [])


def extract(model: Student | str | Path, documents, out: str | Path, *, format: str = "jsonl",
            id_column: str = "id", text_column: str = "text", strict: bool = False, progress_bar: bool = True,
            post=None, drugs=None, prefilter: bool = True, gate: str | Path | None = None, **load) -> ExtractResult:
    """ADE records from documents (a file or folder any ingest reader takes, or Document objects)
    as JSONL, CSV, Parquet or brat; a bad document is reported and skipped. ``post`` (a
    ``post.chain.PostConfig``) adds the substance, the MedDRA coding and the assertion flag.
    ``drugs`` (names or a drug-list file) with ``prefilter``, and ``gate`` (a sentence-gate
    folder): the screening cascade (apps/cascade.py), whose skipped sentences are counted."""
    from ..ingest import Problems, documents_from
    from ..post.chain import PostProcessor
    from .screen import drug_list_for, make_cascade

    chain = PostProcessor.from_config(post)
    cascade = make_cascade(drug_list_for(drugs, post), prefilter, gate)
    st = as_student(model, **load)
    problems = Problems()
    if isinstance(documents, (str, Path)):
        documents = [documents]
    paths = isinstance(documents, (list, tuple)) and all(isinstance(d, (str, Path)) for d in documents)
    # a list of paths is read file by file; any other iterable (Documents, a generator) is used as it is, unread
    docs = (itertools.chain.from_iterable(documents_from(d, problems, id_column=id_column, text_column=text_column)
                                          for d in documents) if paths else documents)
    n_docs = n_sents = 0
    with AdeWriter(out, format) as w:
        for doc, sents in progress(st.extract_documents(docs, problems=problems, cascade=cascade), "extract", "document",
                                   enabled=progress_bar):
            n_docs += 1
            n_sents += len(sents)
            try:
                w.add(doc, chain.apply(doc, sents))
            except ValueError as exc:  # a brat name another document took
                problems.add(f"{documents}: {exc}")
        check_strict(problems, strict)
    return ExtractResult(Path(out), n_docs, n_sents, w.n_records, problems.messages,
                         cascade.counts if cascade is not None else None)


# ---------------------------------------------------------------- the pipeline's train stage

def train_stage(name: str, spec, folder: str | Path, train_file: Path, *, earlier: dict[str, Path],
                unlabeled_file: Path | None = None, in_domain_file: Path | None = None,
                progress: bool = True, synthetic_file: Path | None = None, gold_file: Path | None = None,
                gold_seed: int = 13) -> dict:
    """One pipeline student (``workflows.settings.StudentSpec``) into ``folder``/model: trained on
    ``train_file``'s labels, or a second stage from earlier students (``earlier``: name -> model
    folder), self-trained on ``unlabeled_file``, with the in-domain sentences when asked."""
    from ..core.config import ConfigError

    folder = Path(folder)
    cfg = spec.config.model_copy(update={"soft_labels": False}) if spec.labels == "teacher-hard" else spec.config
    train_set = sentence_list(train_file)
    if spec.labels == "gold" and train_set and train_set[0].source != "gold":
        raise ConfigError(f"student {name}: labels: gold, but the train sentences are not gold ({train_set[0].source})")
    if spec.distill_from:
        transfer = sentence_list(in_domain_file) if spec.in_domain and in_domain_file else []
        return distill_stage(name, spec, folder / "model", train_set, [earlier[r] for r in spec.teachers()],
                             transfer, progress=progress)
    summary: dict = {}
    if spec.gold_k:  # the gold budget: exactly these k gold sentences, named in the manifest
        chosen = gold_budget(sentence_list(gold_file) if spec.labels == "hybrid" else train_set, spec.gold_k, gold_seed)
        summary.update(gold_k=len(chosen), gold_seed=gold_seed, gold_ids=[s.id for s in chosen])
        if spec.labels == "gold":
            train_set = chosen
        else:
            ids = {s.id for s in chosen}
            copies = [g if r == 0 else g.model_copy(update={"id": f"{g.id}#gold{r}"}) for g in chosen
                      for r in range(spec.gold_repeat)]
            train_set = [s for s in train_set if s.id not in ids] + copies
    dev = None
    if spec.dev_share:
        train_set, dev = dev_split(train_set, spec.dev_share, seed=cfg.seed)
        summary["dev_sentences"] = len(dev)
    if spec.self_train:
        r1 = earlier[spec.self_train_from] if spec.self_train_from else folder / "round1"
        train_set, more = self_train_data(name, cfg, train_set, sentence_list(unlabeled_file), r1, folder,
                                          progress=progress)
        summary.update(more)
        if spec.self_train_epochs:
            cfg = cfg.model_copy(update={"epochs": spec.self_train_epochs})
    if spec.in_domain:  # the teacher's labels of the in-domain sentences: train only, never dev
        extra = sentence_list(in_domain_file)
        train_set = train_set + extra
        summary["in_domain_sentences"] = len(extra)
    if spec.synthetic:  # the first N the synthesize stage kept, in seed order
        synth = sentence_list(synthetic_file)[:spec.synthetic]
        if len(synth) < spec.synthetic:
            raise ConfigError(f"student {name}: synthetic {spec.synthetic}, but {synthetic_file} holds {len(synth)} "
                              "sentences (raise synthesize.n or max_tries)")
        train_set = train_set + synth
        summary["synthetic_sentences"] = len(synth)
        summary["synthetic_writers"] = sorted({s.source.split(":", 1)[-1] for s in synth})
    if spec.federated:
        return federated_stage(name, spec, folder, train_set, cfg, summary)
    t = train(train_set, folder / "model", cfg, dev=dev, resume=True, progress=progress, name=name,
              start_from=earlier[spec.start_from] if spec.start_from else None)
    st = f", self-trained on {summary['pseudo_sentences']:,} more" if "pseudo_sentences" in summary else ""
    if "in_domain_sentences" in summary:
        st += f", {summary['in_domain_sentences']:,} of them in-domain"
    if "synthetic_sentences" in summary:
        st += f", {summary['synthetic_sentences']:,} of them written by {' and '.join(summary['synthetic_writers'])}"
    if dev:
        best = t.kept_epoch
        summary.update(best_epoch=best["epoch"], dev_relation_f1=best.get("dev_relation_f1"))
        st += (f"; epoch {best['epoch']} kept by agreement with {len(dev):,} held-out {spec.labels} labels "
               f"(dev relation F1 {100 * best['dev_relation_f1']:.1f})")
    return {"sentences": len(train_set), "soft_targets": t.soft_targets, "epochs": t.epochs,
            "train_seconds": round(t.seconds, 1), "device": t.device, **summary,
            "line": f"student {name} ({spec.labels} labels{', soft targets' if t.soft_targets else ''}"
                    f"{st}): {len(train_set):,} sentences, {t.epochs} epochs on {t.device}"}


def gold_budget(gold: list[Sentence], k: int, seed: int = 13) -> list[Sentence]:
    """The first ``k`` gold train sentences in the order ``seed`` fixes (a permutation of the sorted
    ids, so a smaller budget is a prefix of a larger one)."""
    import random

    if k > len(gold):
        raise InputError(f"a gold budget of {k} sentences, but the train part holds {len(gold)}")
    if any(s.source != "gold" for s in gold[:1]):
        raise InputError(f"the gold budget's sentences are not gold ({gold[0].source})")
    order = sorted(gold, key=lambda s: s.id)
    random.Random(seed).shuffle(order)
    return order[:k]


def split_sites(sentences: list[Sentence], n: int, how: str, seed: int = 13) -> list[list[Sentence]]:
    """Whole documents dealt to ``n`` sites: ``iid`` at random; ``by-document`` contiguous runs of
    document ids; ``by-drug`` documents grouped by their first labelled drug, groups in name order,
    cut into ``n`` runs of about equal size."""
    import random

    docs: dict[str, list[Sentence]] = {}
    for s in sentences:
        docs.setdefault(s.doc_id or s.id, []).append(s)
    if len(docs) < n:
        raise InputError(f"{len(docs)} documents cannot fill {n} sites")
    if how == "iid":
        order = sorted(docs)
        random.Random(seed).shuffle(order)
        return [[s for d in order[i::n] for s in docs[d]] for i in range(n)]

    def first_drug(d: str) -> str:
        return next((e.text.lower() for s in docs[d] for e in s.entities if e.label == "DRUG"), "~")

    order = sorted(docs) if how == "by-document" else sorted(docs, key=lambda d: (first_drug(d), d))
    total, out, acc = len(sentences), [[] for _ in range(n)], 0
    for d in order:
        site = min(n - 1, acc * n // total)
        out[site].extend(docs[d])
        acc += len(docs[d])
    return out


def federated_stage(name: str, spec, folder: Path, train_set: list[Sentence], cfg, summary: dict) -> dict:
    """A pipeline student distilled across ``spec.federated.sites`` site folders (under ``folder``)
    on Flower's simulation engine; resumes from the last finished round."""
    from ..apps.federate import FederateSettings, round_bytes, simulate

    fs = spec.federated
    sites, sizes = [], []
    for i, part in enumerate(split_sites(train_set, fs.sites, fs.split, fs.seed)):
        sizes.append(len(part))
        site = folder / "sites" / f"site{i}"
        site.mkdir(parents=True, exist_ok=True)
        write_jsonl(site / "sentences.jsonl", part)
        sites.append(site)
    settings = FederateSettings(**fs.model_dump(include=set(FederateSettings.model_fields)))
    fed = simulate(sites, cfg.model_dump_json(), settings, folder / "model")
    rounds = fed["rounds"]
    left_out = sum(len(r["failed"]) + len(r["refused"]) for r in rounds)
    per_round = sum(map(round_bytes, rounds)) / len(rounds)
    return {"sentences": len(train_set), "sites": fs.sites, "split": fs.split, "rounds": len(rounds),
            "site_sentences": sizes,
            "bytes_per_round": int(per_round), "seconds_per_round": round(sum(r["seconds"] for r in rounds) / len(rounds), 1),
            "train_seconds": round(sum(r["seconds"] for r in rounds), 1), "sites_left_out": left_out, "device": "cpu",
            **summary,
            "line": f"student {name} (federated: {fs.sites} sites, {fs.split} split, {fs.strategy}, {len(rounds)} rounds of "
                    f"{fs.local_epochs} local epoch(s)): {len(train_set):,} sentences"
                    + (f"; {left_out} site-round(s) left out (see federation.json)" if left_out else "")}


def distill_stage(name: str, spec, out: Path, train_set: list[Sentence], sources: list[Path],
                  transfer: list[Sentence], *, progress: bool = True) -> dict:
    """Second stage: earlier students (``sources``) teach a new one on ``train_set`` (and
    ``transfer``, labelled by them), into ``out`` (written whole or not at all)."""
    import json
    import os
    import shutil

    from ..student.distill import CompressConfig, compress_student

    ccfg = spec.distill or CompressConfig()
    if ccfg.layers is None and ccfg.hidden is None:  # born again: the (first) earlier student's depth
        depth = json.loads((sources[0] / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
        ccfg = ccfg.model_copy(update={"layers": depth})
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    compress_student(sources, train_set, ccfg, tmp, unlabeled=transfer, progress=progress)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    info = json.loads((out / "compress.json").read_text())
    return {"sentences": len(train_set), "epochs": ccfg.epochs, "train_seconds": round(info["seconds"], 1),
            "device": "cpu", "distilled_from": spec.distill_from, "layers": ccfg.layers,
            **({"transfer_sentences": len(transfer)} if spec.in_domain else {}),
            "line": f"student {name} ({spec.labels} labels, second stage from {' + '.join(spec.teachers())}, "
                    f"{ccfg.layers} layers): {len(train_set):,} sentences, {ccfg.epochs} epochs on cpu"}


def self_train_data(name: str, cfg, train_set: list[Sentence], unlabeled: list[Sentence], round1: Path,
                    folder: Path, *, progress: bool = True) -> tuple[list[Sentence], dict]:
    """Round 1: train on the labelled sentences (unless ``round1`` already holds a model); it labels
    the unlabelled ones (hard labels: its confidences are dropped); round 2 trains on both."""
    if not unlabeled:
        raise InputError(f"student {name}: self_train needs unlabelled train sentences; set inputs.train_limit "
                         "below the train split's size (the sentences past it are used)")
    if not (round1 / "training.json").exists():
        train(train_set, round1, cfg, resume=True, progress=progress, name=f"{name}-round1")
    t0 = time.monotonic()
    pseudo = Student.from_pretrained(round1, device="cpu").predict(unlabeled)
    pseudo = [p.model_copy(update={
        "entities": [e.model_copy(update={"confidence": None}) for e in p.entities],
        "relations": [r.model_copy(update={"confidence": None}) for r in p.relations]}) for p in pseudo]
    write_jsonl(folder / "pseudo.jsonl", pseudo)
    return train_set + pseudo, {"pseudo_sentences": len(pseudo), "pseudo_relations": sum(len(p.relations) for p in pseudo),
                                "pseudo_seconds": round(time.monotonic() - t0, 1)}


def extract_stage(model: Path, sentences: Path, out_dir: Path, *, quantize: str = "none",
                  formats: Iterable[str] = ("jsonl", "csv"), post=None) -> dict:
    """The pipeline's extract stage: ADE records of the new documents' sentences, in each format,
    after the post-processing chain (``post``, a ``post.chain.PostConfig``) when configured."""
    from itertools import groupby

    from ..post.chain import PostProcessor

    preds = predict(model, sentences, quantize=quantize, device="cpu").predictions
    chain = PostProcessor.from_config(post)
    if chain.active:  # one document at a time (its abbreviations)
        preds = [s for _, group in groupby(preds, key=lambda s: s.doc_id) for s in chain.apply(None, list(group))]
    formats = list(formats)
    for fmt in formats:
        with AdeWriter(out_dir / f"ades.{fmt}", fmt) as w:
            w.add(None, preds)
    return {"sentences": len(preds), "ades": w.n_records,
            "line": f"{w.n_records:,} ADE records from {len(preds):,} sentences -> {out_dir / ('ades.' + formats[0])}"}
