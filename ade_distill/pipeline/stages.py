"""The stage graph of a pipeline: which stages run, in what order, with which input and output
files and settings (what the manifest fingerprints), and the k-fold report's preamble. Wiring only:
the work of each stage is a workflow the runner calls."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..workflows.teacher import label_file_name
from .manifest import Stage

if TYPE_CHECKING:
    from .runner import Pipeline


def has_test(p: "Pipeline") -> bool:
    i = p.cfg.inputs
    return i.kind in ("sample", "ade-splits") or (i.kind == "jsonl" and bool(i.test))


def seeds(p: "Pipeline", value: str | list[str] | None) -> list[Path]:
    if not value:
        return []
    return [p.resolve(v) for v in ([value] if isinstance(value, str) else value)]


def label_parts(p: "Pipeline") -> list[str]:
    """The ingested parts the teacher labels."""
    parts = ["train"]
    if has_test(p) and p.cfg.label.label_test:
        parts.append("test")
    if p.cfg.inputs.in_domain:
        parts.append("in_domain")
    return parts


def label_seeds(p: "Pipeline") -> dict[tuple[str, str], list[Path]]:
    """(view, part) -> the committed label files that seed it."""
    lc = p.cfg.label
    out = {("teacher", "train"): seeds(p, lc.seed_labels), ("teacher", "test"): seeds(p, lc.seed_test_labels),
           ("teacher", "in_domain"): seeds(p, lc.seed_in_domain_labels)}
    for v in lc.views:
        out[(v.name, "train")] = seeds(p, v.seed_labels)
        out[(v.name, "test")] = seeds(p, v.seed_test_labels)
    return out


def ingest_inputs(p: "Pipeline") -> list[Path]:
    """The source files the ingest stage reads (those that exist are fingerprinted)."""
    i = p.cfg.inputs
    if i.kind == "sample":
        from ..core.sample import SAMPLE_DIR

        out = [SAMPLE_DIR / "gold.jsonl"]
    elif i.kind == "ade-splits":
        out = [p.splits_dir() / f"ade_split_{i.fold}_{part}.json" for part in ("train", "test")]
    elif i.kind == "jsonl":
        out = [p.resolve(x) for x in (i.train, i.test) if x]
    else:
        out = [p.resolve(x) for x in i.files]
    if i.in_domain == "ade-neg":
        corpus = p.splits_dir().parent / "ade_corpus_v2"
        out += [corpus / "DRUG-AE.rel", corpus / "ADE-NEG.txt"]
    elif i.in_domain:
        out.append(p.resolve(i.in_domain))
    return [x for x in out + [p.resolve(d) for d in i.documents] if x.exists()]


def teacher_key(tc) -> dict:
    """What about a teacher changes its labels (not the cache path or concurrency)."""
    return tc.model_dump(mode="json", exclude={"cache", "concurrency", "retries", "retry_base_s", "budget_usd"})


def _label_stage(p: "Pipeline", ing_out: list[Path]) -> Stage:
    c = p.cfg
    lab = p.run_path("label")
    views = list(p.teachers)
    combined = bool(c.label.views) or c.label.repair.active
    parts_of = {v.name: v.parts for v in c.label.views}
    outs = [lab / "train.teacher.jsonl"] + [lab / label_file_name("train", v, True) for v in views[1:]
                                            if "train" in parts_of.get(v, ["train"])]
    if combined:
        outs.append(lab / label_file_name("train", "teacher", True))
    if "test" in label_parts(p):
        outs += [lab / label_file_name("test", v, True) for v in views if "test" in parts_of.get(v, ["test"])]
        if len(views) > 1:
            outs.append(lab / "test.views.jsonl")
    if c.inputs.in_domain:
        outs.append(lab / "in_domain.teacher.jsonl")
    seed_files = list(dict.fromkeys(f for fs in label_seeds(p).values() for f in fs))
    shots = [p.resolve(tc.prompt.shots) for tc in p.teachers.values() if tc.prompt.shots]
    inputs = [x for x in ing_out if x.name not in ("documents.sentences.jsonl", "unlabeled.jsonl")]
    return Stage("label", inputs + seed_files + shots,
                 {"label": c.label.model_dump(mode="json", exclude={"teacher"}),
                  **({"gold_seed": c.gold_seed} if any(v.shots_gold_k for v in c.label.views) else {}),
                  "teacher": teacher_key(p.teacher_cfg),
                  **({"views": {n: teacher_key(t) for n, t in p.teachers.items() if n != "teacher"}} if len(views) > 1 else {})},
                 outs, p.run_label, lab)


def stage_graph(p: "Pipeline") -> list[Stage]:
    """The stages of this pipeline in order (a k-fold pipeline: the aggregate stage only)."""
    if p.fold_runs:
        return [_aggregate_stage(p)]
    c = p.cfg
    ing = p.run_path("ingest")
    ing_out = [ing / "train.jsonl", ing / "unlabeled.jsonl"]
    if has_test(p):
        ing_out.append(ing / "test.jsonl")
    if c.inputs.documents:
        ing_out.append(ing / "documents.sentences.jsonl")
    if c.inputs.in_domain:
        ing_out.append(ing / "in_domain.jsonl")
    st = [Stage("ingest", ingest_inputs(p), {"inputs": c.inputs.model_dump(mode="json")}, ing_out, p.run_ingest, ing)]
    if c.label is not None:
        st.append(_label_stage(p, ing_out))
    if c.synthesize is not None:
        sc = c.synthesize
        st.append(Stage("synthesize", ([p.resolve(sc.pool)] if sc.pool else [p.run_path("label", "train.teacher.jsonl")])
                        + [p.resolve(x) for x in sc.drugs + sc.effects],
                        {"synthesize": c.synthesize.model_dump(mode="json"), "teacher": teacher_key(p.teacher_cfg)},
                        [p.run_path("synthesize", "synthetic.jsonl")], p.run_synthesize, p.run_path("synthesize")))
    for name, spec in c.students.items():
        src = ing / "train.jsonl" if spec.labels == "gold" else p.run_path("label", "train.teacher.jsonl")
        srcs = [src] + ([ing / "unlabeled.jsonl"] if spec.self_train else [])
        if spec.synthetic:
            srcs.append(p.run_path("synthesize", "synthetic.jsonl"))
        if spec.labels == "hybrid":
            srcs.append(ing / "train.jsonl")
        if spec.self_train_from:
            srcs.append(p.run_path(f"train-{spec.self_train_from}", "model"))
        if spec.start_from:
            srcs.append(p.run_path(f"train-{spec.start_from}", "model"))
        srcs += [p.run_path(f"train-{ref}", "model") for ref in spec.teachers()]
        if spec.in_domain:
            srcs.append(ing / "in_domain.jsonl" if spec.distill_from else p.run_path("label", "in_domain.teacher.jsonl"))
        st.append(Stage(f"train-{name}", srcs, {"student": spec.model_dump(mode="json"),
                                                **({"gold_seed": c.gold_seed} if spec.gold_k else {})},
                        [p.run_path(f"train-{name}", "model")], p.run_train, p.run_path(f"train-{name}"),
                        code=("ade_distill.student.distill",) if spec.distill_from else
                        ("ade_distill.student.federated", "ade_distill.apps.federate") if spec.federated else ()))
    if has_test(p) and (c.students or c.label):
        preds = [path for path, _ in p.teacher_systems().values()]
        models = [p.run_path(f"train-{n}", "model") for n in c.students]
        st.append(Stage("evaluate", [ing / "test.jsonl"] + preds + models, {"evaluate": c.evaluate.model_dump(mode="json")},
                        [p.run_path("evaluate", "metrics.json")], p.run_evaluate, p.run_path("evaluate")))
        st.append(Stage("report", [p.run_path("evaluate", "metrics.json")], {"report": c.report.model_dump(mode="json")},
                        [p.run_path("report", "report.html"), p.run_path("report", "report.md")],
                        p.run_report, p.run_path("report")))
    if c.inputs.documents and c.students:
        who = c.extract.student or next(iter(c.students))
        st.append(Stage("extract", [ing / "documents.sentences.jsonl", p.run_path(f"train-{who}", "model")],
                        {"extract": c.extract.model_dump(mode="json"), "student": who},
                        [p.run_path("extract", f"ades.{fmt}") for fmt in c.extract.formats],
                        p.run_extract, p.run_path("extract")))
    return st


# ---------------------------------------------------------------- k-fold

def fold_systems(p: "Pipeline") -> dict[str, tuple[str, Callable[["Pipeline"], Path]]]:
    """Each scored system: its name in the metrics, a file-name slug, and where a fold keeps its
    test predictions."""
    out: dict = {}
    for name, (path, info) in p.teacher_systems().items():
        view = info["view"]
        slug = "teacher" if view == "teacher" else "teacher-views" if view == "aggregate" else f"teacher-view-{view}"
        out[name] = (slug, lambda f, rel=path.relative_to(p.run_dir): f.run_path(*rel.parts))
    for n in p.cfg.students:
        out[f"student {n}"] = (n, lambda f, n=n: f.run_path("evaluate", "predictions", f"{n}.jsonl"))
    return out


def _aggregate_stage(p: "Pipeline") -> Stage:
    ins: list[Path] = []
    systems = fold_systems(p)
    for f in p.fold_runs.values():
        ins += [f.run_path("ingest", "test.jsonl"), f.run_path("evaluate", "metrics.json")]
        ins += [where(f) for _, where in systems.values()]
    agg = p.run_path("aggregate")
    outs = [agg / "folds.md", agg / "folds.json", agg / "metrics.json", agg / "report" / "report.html"]
    outs += [agg / "oof" / f"{slug}.jsonl" for slug, _ in systems.values()]
    pub = Path(p.cfg.report.publish) if p.cfg.report.publish else None  # relative to the working directory
    if pub is not None:
        outs += [pub / "folds.md", pub / "folds.json", pub / "metrics.json", pub / "report.html", pub / "report.md"]
        outs += [pub / "oof" / f"{slug}.packed.jsonl" for slug, _ in systems.values()]
    settings = {"folds": sorted(p.fold_runs), "evaluate": p.cfg.evaluate.model_dump(mode="json"),
                "report": p.cfg.report.model_dump(mode="json")}
    return Stage("aggregate", ins, settings, outs, p.run_aggregate, agg)


def gold_seen(spec) -> str:
    """What gold a student saw, for the k-fold preamble."""
    if spec.gold_k:
        return (f"Sees exactly {spec.gold_k} gold train sentences (the pipeline's gold order; ids in the fold's "
                "manifest)" + (", each in place of the teacher's labels" if spec.labels == "hybrid" else ", alone")
                + (f"; starts from {spec.start_from}" if spec.start_from else "") + ".")
    return "Trained on the fold's gold train labels." if spec.labels == "gold" else "No gold label reaches it."


def folds_preamble(p: "Pipeline", command: str, n: int) -> str:
    """What the k-fold report measured and how each model was made and chosen."""
    c = p.cfg
    lines = [f"# {c.report.title}", "", f"Made by `{command}` (git {p.commit or 'unknown'}); "
             f"folds {', '.join(map(str, sorted(p.fold_runs)))} of the SpERT splits; every one of the "
             f"{n:,} test sentences is predicted by the model of the fold whose test part it is (out-of-fold).", ""]
    if c.label is not None:
        lines.append(f"- **teacher ({p.teacher_name})**: one labelling of the corpus, fold-independent"
                     + (" (from the committed label files; no LLM call when they cover every sentence)"
                        if c.label.seed_labels else "") + ".")
        for v in c.label.views:
            lines.append(f"- **teacher view {v.name}**: the same sentences read by another view of the teacher "
                         f"({p.teachers[v.name].prompt.format} answers, prompt "
                         f"{p.teachers[v.name].prompt.answer_format.version}), fold-independent.")
        if c.label.views:
            lines.append(f"- **teacher views aggregated**: the {len(p.teachers)} views' test labels aggregated "
                         f"({c.label.aggregate.rule}, empty answers {'abstain' if c.label.aggregate.empty_abstains else 'vote'}).")
            used = c.label.train_views or list(p.teachers)
            lines.append(f"- The students' teacher labels: {', '.join(used)}"
                         + (" (aggregated)" if len(used) > 1 else " alone") + ", on the train part.")
    for name, spec in c.students.items():
        t = spec.config
        how = ("the epoch kept by agreement with a held-out share of its own labels"
               if spec.dev_share else "a fixed recipe (last epoch; nothing chosen on any score)")
        lines.append(f"- **student {name}**: {spec.labels} labels; {t.model}"
                     + (f", first {t.layers} layers" if t.layers else "")
                     + f", {t.epochs} epochs, batch {t.batch_size}, lr {t.lr:g}; {how}. "
                     + gold_seen(spec))
    lines += ["", "Each fold's test part is scored once per model.", ""]
    lines += fold_times(p)
    return "\n".join(lines + ["", ""])


def fold_times(p: "Pipeline") -> list[str]:
    """Wall seconds of each fold's stages, from its manifest (the last attempt of a resumed stage
    only; other work on the machine makes them longer)."""
    rows, names, total = [], [], 0.0
    for k, f in sorted(p.fold_runs.items()):
        row = {n: e.get("seconds") for n, e in f.manifest.stages.items() if e.get("status") == "done"}
        names += [n for n in row if n not in names]
        rows.append((k, row))
    if not rows:
        return []
    out = ["## Run time (wall seconds per stage, from each fold's manifest.json)", "",
           "| fold | " + " | ".join(names) + " | fold total |", "|---" * (len(names) + 2) + "|"]
    for k, row in rows:
        t = sum(v or 0 for v in row.values())
        total += t
        out.append(f"| {k} | " + " | ".join("-" if row.get(n) is None else f"{row[n]:,.0f}" for n in names)
                   + f" | {t:,.0f} |")
    out += ["", f"All folds: {total:,.0f} s ({total / 3600:.2f} h). A stage resumed after an interruption counts "
                "its last attempt only; other work on the machine during the run makes stages longer."]
    return out
