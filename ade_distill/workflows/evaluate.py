"""Predictions -> metrics -> a report; models -> a ranking by quality, speed, size and cost."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..core.errors import InputError
from ..core.schema import Sentence, atomic_open, read_sentences
from .common import sentence_list


def info_for(path: str | Path) -> dict | None:
    """A prediction file's optional sidecar <pred>.info.json (parameters, sentences_per_second, cost...)."""
    path = Path(path)
    side = path.with_name(path.name.removesuffix(".jsonl") + ".info.json")
    if side.exists():
        try:
            return json.loads(side.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{side}: invalid JSON ({exc.msg})") from exc
    return None


@dataclass
class EvaluateResult:
    metrics: dict
    out: Path | None

    def lines(self) -> list[str]:
        from ..evaluate.report import _f1_ci

        m = self.metrics
        out = [f"{m['n_sentences']:,} gold sentences" + (f" from {m['inputs']['gold']}" if "inputs" in m else ""),
               f"{'system':<24} {'entity F1':>22} {'relation F1':>22} {'relation text F1':>18}"]
        for name, s in m["systems"].items():
            miss = f"  ({s['n_missing']:,} missing)" if s["n_missing"] else ""
            out.append(f"{name:<24} {_f1_ci(s['entity']['strict']):>22} {_f1_ci(s['relation']['strict']):>22} "
                       f"{_f1_ci(s['relation']['text']):>18}{miss}")
        out.append(f"(strict match, %, 95% bootstrap interval) -> {self.out}")
        return out


def evaluate_files(gold: str | Path | Iterable[Sentence], predictions: Mapping[str, str | Path | Iterable[Sentence]],
                   out: str | Path | None = None, *, allow_missing: bool = False, bootstrap: int = 1000,
                   seed: int = 13, info: Mapping[str, dict] | None = None, inputs: dict | None = None
                   ) -> EvaluateResult:
    """Score each system's predictions against gold (entity and relation F1, strict, lenient and
    text, with bootstrap intervals); writes metrics.json to ``out`` when given. A prediction file
    brings its <file>.info.json sidecar (speed, cost) along."""
    from ..evaluate import evaluate

    info = dict(info or {})
    for name, p in predictions.items():
        if isinstance(p, (str, Path)) and name not in info and (i := info_for(p)):
            info[name] = i
    gold_sents = sentence_list(gold)
    metrics = evaluate(gold_sents, {k: sentence_list(v) for k, v in predictions.items()}, allow_missing=allow_missing,
                       n_bootstrap=bootstrap, seed=seed, info=info)
    if inputs is not None:
        metrics["inputs"] = inputs
    elif isinstance(gold, (str, Path)):
        metrics["inputs"] = {"gold": str(gold), "predictions": {k: str(v) for k, v in predictions.items()
                                                                if isinstance(v, (str, Path))}}
    if out is not None:
        from ..core.paths import shown_text

        with atomic_open(out) as fh:
            fh.write(shown_text(json.dumps(metrics, indent=2)) + "\n")
    return EvaluateResult(metrics, Path(out) if out else None)


def load_metrics(path: str | Path) -> dict:
    """A metrics.json from ``evaluate``, checked for its shape."""
    try:
        metrics = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(metrics, dict) or "systems" not in metrics or "n_sentences" not in metrics:
        raise InputError(f"{path}: not a metrics file from `ade-distill evaluate`")
    return metrics


@dataclass
class ReportResult:
    files: dict[str, Path]

    def lines(self) -> list[str]:
        return [f"report: {self.files['html']}  ({self.files['md'].name}, {self.files['metrics'].name} beside it)"]


def report(metrics: Mapping | str | Path, out: str | Path, *, gold: str | Path | Iterable[Sentence] | None = None,
           predictions: Mapping[str, str | Path | Iterable[Sentence]] | None = None, excerpts: bool = True,
           title: str = "Adverse drug event extraction: evaluation report", command: str | None = None) -> ReportResult:
    """report.html (self-contained) and report.md from metrics; with gold and predictions, an error
    analysis too. ``excerpts=False`` leaves all sentence text out."""
    from ..evaluate.report import write_report

    where = metrics if isinstance(metrics, (str, Path)) else "metrics"
    if isinstance(metrics, (str, Path)):
        metrics = load_metrics(metrics)
    predictions = dict(predictions or {})
    unknown = set(predictions) - set(metrics["systems"])
    if unknown:
        raise InputError(f"predictions name systems not in {where}: {', '.join(sorted(unknown))}")
    if predictions and gold is None:
        raise InputError("predictions need the gold sentences for the error analysis")
    paths = write_report(metrics, out, gold=sentence_list(gold) if gold is not None else None,
                         preds={k: sentence_list(v) for k, v in predictions.items()} or None, excerpts=excerpts,
                         title=title, command=command)
    return ReportResult(paths)


def rank_models(gold: str | Path | Iterable[Sentence], out: str | Path, *, students: Mapping[str, tuple] | None = None,
                predictions: Mapping[str, str | Path] | None = None, run: str | Path | None = None,
                threads: int = 2, bootstrap: int = 1000, core_hour_usd: float = 0.05,
                command: str | None = None) -> dict[str, Path]:
    """Rank students (name -> (folder, None | "int8")), prediction files and every model of a
    pipeline ``run`` folder by relation F1, speed, size and cost; writes rank.md/json/png."""
    from ..apps.ranking import rank, write_rank

    students = dict(students or {})
    preds: dict = {}
    if run is not None:  # every model of a pipeline run: its students (fp32 and int8) and its teacher
        run = Path(run)
        for d in sorted(run.glob("train-*/model")):
            name = d.parent.name.removeprefix("train-")
            students[name] = (str(d), None)
            students[f"{name} int8"] = (str(d), "int8")
        metrics = run / "evaluate" / "metrics.json"
        info = {k: v.get("info", {}) for k, v in load_metrics(metrics)["systems"].items()} if metrics.exists() else {}
        tp = run / "label" / "test.teacher.jsonl"
        if tp.exists():
            tname = next((k for k in info if k.startswith("teacher")), "teacher")
            preds[tname] = (list(read_sentences(tp)), {**info.get(tname, {}), **(info_for(tp) or {})})
    preds.update({name: (list(read_sentences(p)), info_for(p) or {}) for name, p in (predictions or {}).items()})
    if not students and not preds:
        raise InputError("rank: no models (give --model NAME=DIR, --pred NAME=FILE or --run DIR)")
    result = rank(sentence_list(gold), students, preds, threads=threads, n_bootstrap=bootstrap,
                  core_hour_usd=core_hour_usd)
    return write_rank(result, out, command=command)


@dataclass
class FoldsResult:
    summary: dict
    files: dict[str, Path]

    def lines(self) -> list[str]:
        out = []
        for s, rows in self.summary["systems"].items():
            r = rows["relation strict"]
            e = rows["entity strict"]
            out.append(f"{s:<28} entity F1 {e['mean']:.1f} ± {e['sd']:.1f}   relation F1 {r['mean']:.1f} ± {r['sd']:.1f}")
        out.append(f"(strict, %, mean ± sd over {len(self.summary['folds'])} folds) -> {self.files['md']}")
        return out


def summarise_folds(per_fold: Mapping[int, str | Path], out: str | Path, *, reference: str | list[str] | None = None,
                    micro: str | Path | None = None, preamble: str = "") -> FoldsResult:
    """The k-fold report from one metrics.json per fold (and, optionally, the metrics of the joined
    out-of-fold predictions): folds.json and folds.md in ``out``; ``preamble`` (Markdown) heads
    folds.md (title, command, how each model was made)."""
    from ..evaluate.folds import fold_markdown, fold_summary

    summary = fold_summary({k: load_metrics(p) for k, p in per_fold.items()}, reference=reference)
    micro_m = load_metrics(micro) if micro else None
    out = Path(out)
    with atomic_open(out / "folds.json") as fh:
        from ..core.paths import shown

        json.dump({**summary, "inputs": {str(k): shown(p) for k, p in per_fold.items()}}, fh, indent=2)
        fh.write("\n")
    with atomic_open(out / "folds.md") as fh:
        fh.write(preamble + fold_markdown(summary, micro=micro_m))
    return FoldsResult(summary, {"json": out / "folds.json", "md": out / "folds.md"})


# ---------------------------------------------------------------- the pipeline's evaluate, report, aggregate

def teacher_cost(labels: list[Sentence], cfg, name: str) -> dict:
    """Cost per 1,000 sentences from the token counts the labels carry (so labels seeded from an
    earlier run are priced too): the teacher's own price, else the reference model's."""
    usage = [s.meta.get("usage") or {} for s in labels]
    if not labels or not any(usage):
        return {}
    return cfg.cost_per_1k(name, len(labels), sum(u.get("prompt_tokens", 0) for u in usage),
                           sum(u.get("completion_tokens", 0) for u in usage))


def unanswered_as_empty(gold: Sequence[Sentence], labels: list[Sentence]) -> tuple[list[Sentence], int]:
    """A teacher's labels with each gold sentence it did not answer (a failed call, after its retries)
    as an answer with no entities: scored as the empty answer a user would have got, never dropped
    (which would score the teacher on easier sentences). Returns the labels and how many were added."""
    have = {s.id for s in labels}
    source = labels[0].source if labels else "teacher:unknown"
    filled = [g.model_copy(update={"entities": [], "relations": [], "source": source, "meta": {"unanswered": True}})
              for g in gold if g.id not in have]
    return labels + filled, len(filled)


def evaluate_stage(gold_file: Path, out_dir: Path, *, teachers: Mapping[str, tuple[Path, dict]],
                   students: Mapping[str, tuple[Path, str]], cfg) -> dict:
    """The pipeline's evaluate stage: the teachers' test labels (system name -> (file, info)) and
    each student's predictions (name -> (model folder, how it was made)) scored against gold into
    ``out_dir``/metrics.json; the predictions are kept in ``out_dir``/predictions. ``cfg`` is an
    ``EvaluateConfig``."""
    import torch

    from .student import predict

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    gold = list(read_sentences(gold_file))
    systems: dict[str, list[Sentence]] = {}
    info: dict[str, dict] = {}
    for name, (path, i) in teachers.items():
        systems[name], unanswered = unanswered_as_empty(gold, list(read_sentences(path)))
        info[name] = {"role": "teacher", **i, **({"unanswered": unanswered} if unanswered else {})}
    for n, (model, made) in students.items():
        r = predict(model, gold, out_dir / "predictions" / f"{n}.jsonl", device="cpu")
        systems[f"student {n}"] = r.predictions
        info[f"student {n}"] = {"role": "student", "parameters": r.parameters, "device": "cpu", "made": made,
                                "sentences_per_second": round(len(gold) / r.seconds, 1),
                                "threads": torch.get_num_threads()}
    metrics = evaluate_files(gold, systems, out_dir / "metrics.json", bootstrap=cfg.bootstrap, seed=cfg.seed,
                             info=info, inputs={"gold": str(gold_file)}).metrics
    parts = [f"{k}: relation F1 {100 * v['relation']['strict']['micro']['f1']:.1f}" for k, v in metrics["systems"].items()]
    return {"systems": {k: {"entity_f1": v["entity"]["strict"]["micro"]["f1"],
                            "relation_f1": v["relation"]["strict"]["micro"]["f1"]} for k, v in metrics["systems"].items()},
            "line": f"{len(gold):,} test sentences; " + "; ".join(parts)}


def aggregate_folds(folds: Mapping[int, Mapping[str, Path]], systems: Mapping[str, str], out_dir: Path, *,
                    evaluate_cfg, report_cfg, reference, preamble, command: str,
                    publish: Path | None = None) -> dict:
    """The k-fold protocol's last stage: every fold's test predictions joined into one out-of-fold
    file per system (each sentence predicted by the model for which it was test data), scored over
    the whole corpus (micro), the folds summarised (macro mean and sd, sign test against
    ``reference``), the corpus-level report rendered, and with ``publish`` copies of it all (the
    predictions packed without text) in that folder. ``folds``: fold -> {"gold": test.jsonl,
    "metrics": metrics.json, <system>: predictions}; ``systems``: system name -> file slug;
    ``preamble(n_sentences)`` heads folds.md (Markdown: title, command, how each model was made)."""
    from ..core.labels import write_packed
    from ..core.schema import write_jsonl

    gold: list[Sentence] = []
    joined: dict[str, list[Sentence]] = {name: [] for name in systems}
    for k, files in sorted(folds.items()):
        test = list(read_sentences(files["gold"]))
        gold += test
        for name, slug in systems.items():
            got = list(read_sentences(files[name]))
            if slug.startswith("teacher"):  # a sentence the teacher never answered: its empty answer
                got, _ = unanswered_as_empty(test, got)
            joined[name] += got
    seen: set[str] = set()
    for s in gold:
        if s.id in seen:
            raise InputError(f"sentence {s.id} is test data in two folds: these are not the disjoint SpERT folds")
        seen.add(s.id)
    write_jsonl(out_dir / "oof" / "gold.jsonl", gold)
    files = {name: out_dir / "oof" / f"{slug}.jsonl" for name, slug in systems.items()}
    for name, f in files.items():
        write_jsonl(f, joined[name])
    roles = {name: {"role": "teacher" if slug.startswith("teacher") else "student", "out_of_fold": True}
             for name, slug in systems.items()}
    evaluate_files(gold, files, out_dir / "metrics.json", bootstrap=evaluate_cfg.bootstrap, seed=evaluate_cfg.seed,
                   info=roles, inputs={"gold": f"test parts of folds {sorted(folds)}"})
    summary = summarise_folds({k: f["metrics"] for k, f in folds.items()}, out_dir, reference=reference,
                              micro=out_dir / "metrics.json", preamble=preamble(len(gold))).summary
    rep = report(out_dir / "metrics.json", out_dir / "report", gold=gold, predictions=files,
                 excerpts=report_cfg.excerpts, title=f"{report_cfg.title}: out-of-fold predictions of {len(folds)} fold(s)",
                 command=command).files
    if publish is not None:
        for src, name in ((out_dir / "folds.md", "folds.md"), (out_dir / "folds.json", "folds.json"),
                          (out_dir / "metrics.json", "metrics.json"), (rep["html"], "report.html"), (rep["md"], "report.md")):
            with atomic_open(publish / name, "wb") as fh:
                fh.write(src.read_bytes())
        for name, slug in systems.items():  # ids, offsets, labels, confidences: no sentence text
            write_packed(joined[name], publish / "oof" / f"{slug}.packed.jsonl")
    rel = {n: round(v["relation strict"]["mean"], 2) for n, v in summary["systems"].items()}
    return {"folds": sorted(folds), "sentences": len(gold), "macro_relation_f1": rel,
            "line": f"{len(folds)} fold(s), {len(gold):,} out-of-fold sentences; mean relation F1: "
                    + "; ".join(f"{n} {v:.1f}" for n, v in rel.items())
                    + f" -> {out_dir / 'folds.md'}" + (f" (copied to {publish})" if publish else "")}
