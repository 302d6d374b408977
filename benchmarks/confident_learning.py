"""Confident learning on the teacher's labels (#12 lever), measured on ADE fold 0.

  python benchmarks/confident_learning.py [--run runs/ade_10fold/fold-0] [--folds 4] \
      [--out reports/ade_benchmark/confident_learning.json]

Takes fold 0 of the ade_10fold run (its teacher labels of the 3,845 train sentences and the
distilled student trained on them with the pipeline's fixed recipe), runs `labels clean` on those
labels with the same recipe (cross-validated students over document folds, cleanlab on their
held-out word probabilities), trains one student on the labels weighted by their quality
(`sentence_weight: label_quality`, otherwise the same recipe and seed), and scores it once on
fold 0 test beside the teacher and the unweighted student (strict F1 with bootstrap intervals,
paired bootstrap of the difference). No gold label reaches the cleaning or the training; the
recipe is fixed, nothing is chosen on a score.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.workflows import clean_labels, evaluate_files, predict, train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "ade_10fold" / "fold-0")
    ap.add_argument("--pipeline", type=Path, default=REPO / "pipelines" / "ade_10fold.yaml")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "confident_learning")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "ade_benchmark" / "confident_learning.json")
    a = ap.parse_args()
    recipe = yaml.safe_load(a.pipeline.read_text())["students"]["distilled"]["config"]
    a.work.mkdir(parents=True, exist_ok=True)
    cfg = a.work / "student.yaml"
    cfg.write_text(yaml.safe_dump(recipe))
    labels = a.run / "label" / "train.teacher.jsonl"
    t0 = time.monotonic()
    cleaned = a.work / "weighted.jsonl"
    if not cleaned.exists():
        r = clean_labels(labels, cleaned, config=cfg, folds=a.folds, work=a.work)
        print("\n".join(r.lines()), flush=True)
    t_clean = time.monotonic() - t0
    model = a.work / "student-weighted"
    if not (model / "ade_student.json").exists():
        train(cleaned, model, cfg, sentence_weight="label_quality", name="distilled-cleanlab")
    t_train = time.monotonic() - t0 - t_clean
    test = a.run / "ingest" / "test.jsonl"
    preds = a.work / "test.weighted.jsonl"
    predict(model, test, preds)
    files = {"teacher": a.run / "label" / "test.teacher.jsonl",
             "distilled (ade_10fold recipe)": a.run / "evaluate" / "predictions" / "distilled.jsonl",
             "distilled + confident learning weights": preds}
    m = evaluate_files(test, files, a.work / "metrics.json", bootstrap=1000).metrics
    summary = json.loads(cleaned.with_suffix(".clean.json").read_text())
    rows = []
    for name in files:
        s = m["systems"][name]
        rows.append({"system": name,
                     **{f"{kind}_f1": round(100 * s[kind]["strict"]["micro"]["f1"], 1) for kind in ("entity", "relation")},
                     **{f"{kind}_ci": [round(100 * x, 1) for x in s[kind]["strict"]["micro"].get("ci") or []]
                        for kind in ("entity", "relation")}})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    out = {"command": "python benchmarks/confident_learning.py " + " ".join(sys.argv[1:]), "git_commit": commit,
           "recipe": recipe, "folds": a.folds, "clean_summary": {k: v for k, v in summary.items() if k != "train_config"},
           "clean_seconds": round(t_clean), "train_seconds": round(t_train), "rows": rows,
           "paired_bootstrap": m.get("paired_bootstrap")}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    md = ["# Confident learning on the teacher's labels (ADE fold 0)", "",
          f"Made by `{out['command']}` (git {commit}). `labels clean` with {a.folds} document folds and the "
          f"ade_10fold recipe flagged {summary['flagged_sentences']:,} of {summary['sentences']:,} teacher-labelled "
          f"train sentences ({summary['flagged_words']:,} words); the student trained on all of them weighted by "
          f"their label quality is scored once on fold 0 test (427 sentences, strict, 95% bootstrap intervals).", "",
          "| system | entity F1 | relation F1 |", "|---|---|---|"]
    for r in rows:
        ci = lambda k: f" [{r[k][0]}-{r[k][1]}]" if r[k] else ""  # noqa: E731
        md.append(f"| {r['system']} | {r['entity_f1']}{ci('entity_ci')} | {r['relation_f1']}{ci('relation_ci')} |")
    md += ["", "Paired bootstrap (share of 1,000 resamples in which the first system scores higher):", ""]
    for pair, d in (m.get("paired_bootstrap") or {}).items():
        md.append(f"- {pair}: relation strict {d['relation.strict']['p_a_better']:.3f} / {d['relation.strict']['p_b_better']:.3f}, "
                  f"difference {100 * d['relation.strict']['delta_f1']:+.1f}; entity strict "
                  f"{d['entity.strict']['p_a_better']:.3f} / {d['entity.strict']['p_b_better']:.3f}")
    md += ["", f"Cleaning took {out['clean_seconds']:,} s and the final training {out['train_seconds']:,} s on 2 cores."]
    a.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
