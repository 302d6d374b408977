"""Sentences -> teacher labels: label with an LLM, rescore for soft labels, Batch API files,
other tools' labels, and the packed (text-free) form that is committed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import InputError
from ..io import failures_path, write_failures
from ..schema import Sentence, atomic_open, read_sentences, write_jsonl
from ..teacher import LabelStats, Teacher, TeacherConfig
from .common import sentence_list


def teacher_config(cfg: TeacherConfig | str | Path | None = None, **overrides) -> TeacherConfig:
    """A TeacherConfig from an object, a YAML path or the defaults, with validated overrides."""
    from ..config import resolve

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
                f"-> {self.out}"]

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


def batch_export(sentences: str | Path, out: str | Path, teacher: TeacherConfig | str | Path | None = None) -> int:
    """OpenAI Batch API requests (one per sentence); returns how many."""
    from ..teacher.labeler import export_batch

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
    from ..teacher.labeler import import_batch, import_replay

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
    from ..labels import write_packed

    return write_packed(read_sentences(sentences), out)


def unpack_labels(packed: str | Path, sentences: str | Path, out: str | Path) -> int:
    """Packed labels laid back onto the sentences they were made on (the text hash is checked)."""
    from ..labels import read_unpacked

    return write_jsonl(out, read_unpacked(packed, read_sentences(sentences)))
