"""Sentences -> teacher labels: label with an LLM, rescore for soft labels, Batch API files,
other tools' labels, and the packed (text-free) form that is committed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..core.errors import InputError
from ..core.io import failures_path, write_failures
from ..core.schema import Sentence, atomic_open, read_sentences, write_jsonl
from ..teacher import LabelStats, Teacher, TeacherConfig
from .common import sentence_list


def teacher_config(cfg: TeacherConfig | str | Path | None = None, **overrides) -> TeacherConfig:
    """A TeacherConfig from an object, a YAML path or the defaults, with validated overrides."""
    from ..core.config import resolve

    return resolve(TeacherConfig, cfg, "teacher", **overrides)


def run_info(stats: LabelStats | dict, cfg: TeacherConfig, model: str) -> dict:
    """What a labelling run measured, for a prediction file's <file>.info.json: whole-run
    sentences/s (sentences labelled over the run's wall time) and cost per 1,000 sentences."""
    s = stats if isinstance(stats, dict) else stats.to_json()
    if not s.get("labelled") or not s.get("seconds"):
        return {}
    return {"sentences_per_second": round(s["labelled"] / s["seconds"], 4), "speed_basis": "whole run",
            "model": model, **cfg.cost_per_1k(model, s["labelled"], s["prompt_tokens"], s["completion_tokens"])}


def run_info_file(run_json: str | Path, out: str | Path) -> dict:
    """<out>.info.json from a committed run summary (<labels>.run.json): the numbers come from
    the run's own record, never typed in."""
    run = json.loads(Path(run_json).read_text(encoding="utf-8"))
    cfg = TeacherConfig.model_validate(run["config"])
    m = cfg.model
    info = run_info(run["stats"], cfg, Path(m).stem if m.endswith(".gguf") else m)
    with atomic_open(out) as fh:
        fh.write(json.dumps(info, indent=2) + "\n")
    return info


@dataclass
class LabelResult:
    out: Path
    model: str
    stats: LabelStats
    reference_model: str
    info: dict = field(default_factory=dict)  # sentences/s and cost per 1k of this run's labelling

    @property
    def failed(self) -> int:
        return self.stats.failed

    def lines(self) -> list[str]:
        s = self.stats
        rate = f"{s.labelled / s.seconds:.2f} sentences/s" if s.seconds and s.labelled else "-"
        return [f"teacher {self.model}: {s.labelled:,} labelled, {s.failed:,} failed, {s.skipped_existing:,} already "
                f"done; {s.calls:,} calls, {s.cache_hits:,} cache hits; {s.prompt_tokens:,} prompt + "
                f"{s.completion_tokens:,} completion tokens; cost ${s.cost_usd:.4f} (at {self.reference_model} "
                f"prices ${s.reference_cost_usd:.4f}); {rate}; hallucinated strings {s.hallucinated}/{s.strings} "
                f"-> {self.out}"] + ([f"PHI guard (teacher setting phi: {s.phi_policy}): {s.phi_redacted:,} sentences sent "
                                      f"redacted, {s.phi_blocked:,} kept back; identifiers found by type "
                                      f"{dict(sorted(s.phi_found.items()))}"] if s.phi_policy != "off" else [])

    def failure_line(self) -> str:
        return (f"{self.failed:,} sentence(s) failed ({dict(self.stats.failure_reasons)}); see the failures file; "
                "rerun the same command to retry only those")


def label(sentences: Iterable[Sentence] | str | Path, out: str | Path, teacher: TeacherConfig | str | Path | None = None,
          *, failures: str | Path | None = None, limit: int | None = None, checkpoint_every: int = 25,
          progress: bool = True, cache: str | None = None) -> LabelResult:
    """Label sentences (a list or a JSONL path) into ``out``, resuming from what ``out`` holds;
    writes <out>.run.json (settings and numbers) and, when new sentences were labelled,
    <out>.info.json (whole-run sentences/s and cost per 1,000 sentences)."""
    cfg = teacher_config(teacher, cache=cache)
    src = sentences
    sentences = sentence_list(src)
    if not sentences:
        raise InputError(f"{src if isinstance(src, (str, Path)) else 'label'}: no sentences to label (an empty file)")
    from ..teacher.labeler import write_run_summary

    with Teacher(cfg) as t:
        stats = t.label(sentences, out, failures=failures, limit=limit, checkpoint_every=checkpoint_every,
                        progress=progress)
        model = t.model_name
    stem = str(out).removesuffix(".jsonl")
    info: dict = {}
    if stats.labelled or not Path(stem + ".run.json").exists():  # a no-op rerun keeps the real numbers
        write_run_summary(stats, cfg, stem + ".run.json")
        info = run_info(stats, cfg, model)
        if info:
            with atomic_open(stem + ".info.json") as fh:
                fh.write(json.dumps(info, indent=2) + "\n")
    return LabelResult(Path(out), model, stats, cfg.reference_model, info)


def rescore(sentences: Iterable[Sentence] | str | Path, out: str | Path, teacher: TeacherConfig | str | Path | None = None,
            *, cache: str | None = None, progress: bool = True) -> dict:
    """Logprob confidences for labels made without them, by rescoring the cached answers with the
    local GGUF model; returns counts (scored, failed, seconds)."""
    from ..teacher.rescore import rescore as run

    cfg = teacher_config(teacher, cache=cache)
    if cfg.backend == "openai":
        raise InputError("teacher rescore: needs a local GGUF teacher (backend local-server); an API teacher "
                         "gives logprobs directly with confidence: logprobs")
    if isinstance(sentences, (str, Path)):
        sentences = read_sentences(sentences)
    return run(sentences, cfg, out, progress=progress)


def batch_export(sentences: str | Path, out: str | Path, teacher: TeacherConfig | str | Path | None = None) -> LabelStats:
    """OpenAI Batch API requests (one per sentence, redacted by the PHI guard unless the input is
    PubMed or the config says phi: off); returns the counts (requests in ``calls``)."""
    from ..teacher.batch import export_batch

    return export_batch(read_sentences(sentences), teacher_config(teacher), out)


@dataclass
class ImportResult:
    out: Path
    labelled: int
    failed: int
    stats: LabelStats

    def lines(self) -> list[str]:
        return [f"{self.labelled:,} sentences labelled, {self.failed:,} failed, hallucinated strings "
                f"{self.stats.hallucinated}/{self.stats.strings} -> {self.out}"]


def import_labels(sentences: str | Path, results: str | Path, out: str | Path,
                  teacher: TeacherConfig | str | Path | None = None, *, kind: str = "batch",
                  name: str = "replay") -> ImportResult:
    """Labels made elsewhere: an OpenAI Batch API result file (``kind="batch"``) or another tool's
    JSONL / CSV (``kind="replay"``); the failures go to <out>.failures.jsonl."""
    from ..teacher.batch import import_batch, import_replay

    cfg = teacher_config(teacher)
    stats = LabelStats()
    gen = (import_batch(read_sentences(sentences), results, cfg, stats) if kind == "batch"
           else import_replay(read_sentences(sentences), results, cfg, name=name, stats=stats))
    failures: list[tuple[str, str]] = []

    def labelled():
        for item in gen:
            if isinstance(item, tuple):
                failures.append(item)
            else:
                yield item

    n = write_jsonl(out, labelled())
    if failures:
        write_failures(failures_path(out), failures)
    return ImportResult(Path(out), n, len(failures), stats)


def pack_labels(sentences: str | Path, out: str | Path) -> int:
    """Labels without the corpus text (ids, offsets, labels, confidences), the form that is committed."""
    from ..core.labels import write_packed

    return write_packed(read_sentences(sentences), out)


def unpack_labels(packed: str | Path, sentences: str | Path, out: str | Path) -> int:
    """Packed labels laid back onto the sentences they were made on (the text hash is checked)."""
    from ..core.labels import read_unpacked

    return write_jsonl(out, read_unpacked(packed, read_sentences(sentences)))


def serve_teacher(model: str, *, n_ctx: int, threads: int | None, port: int | None, server: str, parallel: int,
                  ready=print) -> None:
    """A local teacher served on 127.0.0.1 until it exits (or Ctrl-C): ``ready(line)`` says where."""
    import time

    from ..teacher.server import LlamaServer

    with LlamaServer(model, n_ctx=n_ctx, n_threads=threads, port=port, impl=server, parallel=parallel) as srv:
        ready(f"serving {srv.model_path.name} at {srv.base_url} (model id {srv.model_alias!r}, {server}, "
              f"{parallel} slot(s)); Ctrl-C stops it")
        while srv.alive():
            time.sleep(1)


# ---------------------------------------------------------------- the pipeline's label stage

def teacher_name(cfg: TeacherConfig) -> str:
    """The teacher's model as a report names it (a GGUF path by its file stem)."""
    return Path(cfg.model).stem if cfg.model.endswith(".gguf") else cfg.model


def seed_labels(out: Path, sentences: list[Sentence], seeds: list[Path]) -> int:
    """Committed labels (ids, offsets, confidences; no text) laid onto ``sentences`` into ``out``; a
    label file may cover more sentences than these (past a train limit, other folds); with several
    files, the first that has a sentence labels it."""
    from ..core.labels import read_unpacked

    seen: set[str] = set()

    def seeded():
        for f in seeds:
            for x in read_unpacked(f, sentences, unknown="skip"):
                if x.id not in seen:
                    seen.add(x.id)
                    yield x

    return write_jsonl(out, seeded())


def seeds_only(part: str, sentences: list[Sentence], out: Path, name: str) -> dict:
    """A part without a teacher call: what the seeds cover, and (test part) an empty prediction,
    marked, for each sentence they do not."""
    import logging

    have = {s.id: s for s in read_sentences(out)} if out.exists() else {}
    missing = [s for s in sentences if s.id not in have]
    if part == "test" and missing:
        for s in missing:
            have[s.id] = s.model_copy(update={"entities": [], "relations": [], "source": f"teacher:{name}",
                                              "meta": {"teacher_label": "missing"}})
        write_jsonl(out, (have[s.id] for s in sentences))
    elif not out.exists():
        write_jsonl(out, [])
    if missing:
        logging.getLogger(__name__).warning(
            "%s: %d sentence(s) have no seed label (%s)", part, len(missing),
            "scored as the teacher predicting nothing" if part == "test" else "left out of training")
    return {"labelled": 0, "skipped_existing": len(sentences) - len(missing), "failed": 0, "calls": 0,
            "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "reference_cost_usd": 0.0,
            "without_label": len(missing), "failure_reasons": {}}


def label_file_name(part: str, view: str, combined: bool) -> str:
    """Where the label stage keeps one view's labels of one part: ``<part>.teacher.jsonl`` for the
    teacher (its train labels go to ``train.view-teacher.jsonl`` when they are combined with other
    views or repaired: ``train.teacher.jsonl`` is then the combination), ``<part>.view-<name>.jsonl``
    for another view."""
    if view == "teacher":
        return "train.view-teacher.jsonl" if part == "train" and combined else f"{part}.teacher.jsonl"
    return f"{part}.view-{view}.jsonl"


def label_stage(ingest_dir: str | Path, out_dir: str | Path, cfg, teachers: dict[str, TeacherConfig],
                seeds: dict[tuple[str, str], list[Path]], parts: list[str], *, progress: bool = True,
                view_parts: dict[str, list[str]] | None = None) -> dict:
    """The pipeline's label stage. Each view (``teachers``: "teacher" first, then ``cfg.views``)
    labels each of ``parts`` (train, test, in_domain; other views: train and test) from its seed
    labels and, unless ``cfg.call_teacher`` is false, the LLM; then the train part's views (those in
    ``cfg.train_views``, default all) are aggregated and repaired (``cfg.aggregate``, ``cfg.repair``)
    into train.teacher.jsonl, and the
    test part's views aggregated into test.views.jsonl. ``cfg`` is a ``LabelConfig``."""
    from ..teacher.views import combine

    ingest_dir, out_dir = Path(ingest_dir), Path(out_dir)
    combined = bool(cfg.views) or cfg.repair.active
    summary: dict = {}
    failed = 0
    for view, tc in teachers.items():
        for part in parts:
            if view != "teacher" and (part == "in_domain" or part not in (view_parts or {}).get(view, [part])):
                continue
            sentences = list(read_sentences(ingest_dir / f"{part}.jsonl"))
            out = out_dir / label_file_name(part, view, combined)
            if seeds.get((view, part)) and not out.exists():
                seed_labels(out, sentences, seeds[(view, part)])
            if not cfg.call_teacher:
                s = seeds_only(part, sentences, out, teacher_name(tc))
            else:
                st = label(sentences, out, tc, checkpoint_every=cfg.checkpoint_every, progress=progress).stats
                if cfg.soft == "rescore" and part == "train":  # soft targets are for training
                    _rescore_in_place(out, tc, progress)
                s = {k: v for k, v in st.to_json().items() if k != "failure_reasons"}
                s["failure_reasons"] = dict(st.failure_reasons)
                failed += st.failed
            summary[part if view == "teacher" else f"{part}.{view}"] = s
    if combined:
        used = cfg.train_views or list(teachers)
        views = [list(read_sentences(out_dir / label_file_name("train", v, True))) for v in used]
        train, stats = combine(views, cfg.aggregate, cfg.repair)
        stats["train_views"] = used
        write_jsonl(out_dir / "train.teacher.jsonl", train)
        summary["combined"] = stats
    if cfg.views and "test" in parts:
        from ..teacher.views import aggregate

        zero_shot = [v for v in teachers if "train" in (view_parts or {}).get(v, ["train"])]  # not a k-shot view
        views = [list(read_sentences(out_dir / label_file_name("test", v, True))) for v in zero_shot]
        write_jsonl(out_dir / "test.views.jsonl", aggregate(views, rule=cfg.aggregate.rule,
                                                             empty_abstains=cfg.aggregate.empty_abstains,
                                                             min_support=cfg.aggregate.min_support)[0])
    return _label_summary(summary, teachers, failed)


def _label_summary(summary: dict, teachers: dict[str, TeacherConfig], failed: int) -> dict:
    per = [v for k, v in summary.items() if k != "combined"]
    calls = sum(v["calls"] for v in per)
    tokens = sum(v["prompt_tokens"] + v["completion_tokens"] for v in per)
    cost, ref = sum(v["cost_usd"] for v in per), sum(v["reference_cost_usd"] for v in per)
    tc = teachers["teacher"]
    done = ", ".join(f"{v['labelled'] + v['skipped_existing']:,} {k}" for k, v in summary.items() if k != "combined")
    views = f" and {len(teachers) - 1} more view(s)" if len(teachers) > 1 else ""
    line = (f"teacher {teacher_name(tc)}{views}: {done} sentences labelled ({calls:,} new calls, {tokens:,} tokens, "
            f"${cost:.4f}; ${ref:.4f} at {tc.reference_model} prices)")
    if "combined" in summary:
        c = summary["combined"]
        line += f"; train labels from {c['views']} view(s)"
        for key, what in (("propagate", "consistency repair"), ("drug_vocab", "drug vocabulary")):
            added = c.get(key, {}).get("spans_added")
            if added:
                line += f", {what} added " + ", ".join(f"{n:,} {label}" for label, n in sorted(added.items()))
    if failed:
        line += f"; {failed:,} FAILED (see label/*.failures.jsonl; rerun to retry them)"
    return {**summary, "status": "partial" if failed else "done", "line": line}


def _rescore_in_place(path: Path, tc: TeacherConfig, progress: bool) -> None:
    import logging
    import os

    tmp = path.with_name(path.name.removesuffix(".jsonl") + ".rescored.jsonl")
    counts = rescore(read_sentences(path), tmp, tc, progress=progress)
    os.replace(tmp, path)
    logging.getLogger(__name__).info("rescored %s: %s", path, counts)
