"""The teacher as a user would call it, on the 10 SpERT folds: each single view (prompt) of the same
model and the views aggregated, scored against gold on every fold's test part, so the student of
issue #30 is compared with the best single view.

  python benchmarks/teacher_views_10fold.py [--out reports/ade_distill_gap/views_10fold] \
      [--student reports/ade_10fold_negsamp/folds.json]

Views: json (prompt ade-v2) and lines (ade-v3-lines), from the committed labels of all 4,272
positive sentences; aggregated: vote, empty answers abstain (teacher/views.py). No model is run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LABELS = REPO / "data" / "teacher_labels"
VIEWS = {"json": ["ade_fold0_train.qwen2.5-coder-1.5b.jsonl", "ade_fold0_test.qwen2.5-coder-1.5b.jsonl"],
         "lines": ["ade_fold0_train.qwen2.5-coder-1.5b.lines.jsonl", "ade_fold0_test.qwen2.5-coder-1.5b.lines.jsonl"]}


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties dropped)."""
    from math import comb

    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def main() -> None:
    from ade_distill.core.labels import read_unpacked
    from ade_distill.evaluate import evaluate
    from ade_distill.ingest import ingest_ade_splits
    from ade_distill.pipeline import default_shared_data
    from ade_distill.teacher.views import aggregate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "ade_distill_gap" / "views_10fold")
    ap.add_argument("--student", type=Path, action="append", default=[],
                    help="a k-fold report's folds.json: its students are set against every view, fold by fold")
    a = ap.parse_args()
    splits = default_shared_data() / "ade_splits"
    scores: dict[str, dict[str, list[float]]] = {}
    empty: dict[str, int] = {}
    for k in range(10):
        test = list(ingest_ade_splits(splits, fold=k, part="test"))
        views = {v: {s.id: s for f in files for s in read_unpacked(LABELS / f, test, unknown="skip")}
                 for v, files in VIEWS.items()}
        systems = {v: [d[s.id] for s in test] for v, d in views.items()}
        systems["aggregated (vote, empty abstains)"], _ = aggregate([systems["json"], systems["lines"]])
        for v in VIEWS:
            empty[v] = empty.get(v, 0) + sum(not x.entities for x in systems[v])
        m = evaluate(test, systems, n_bootstrap=0)["systems"]
        for name, r in m.items():
            d = scores.setdefault(name, {"relation": [], "entity": []})
            d["relation"].append(100 * r["relation"]["strict"]["micro"]["f1"])
            d["entity"].append(100 * r["entity"]["strict"]["micro"]["f1"])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    best = max(VIEWS, key=lambda v: statistics.mean(scores[v]["relation"]))
    lines = ["# The teacher's views on the 10 SpERT folds", "",
             f"Made by `python benchmarks/teacher_views_10fold.py` (git {commit}). Strict F1 on each fold's test part "
             "(all 4,272 positive sentences once), committed labels, no model run.", "",
             "| view | relation F1 mean ± sd | entity F1 mean ± sd | relation F1 per fold | sentences answered empty |",
             "|---|---|---|---|---|"]
    for name, d in scores.items():
        lines.append(f"| {name} | {statistics.mean(d['relation']):.1f} ± {statistics.stdev(d['relation']):.1f} | "
                     f"{statistics.mean(d['entity']):.1f} ± {statistics.stdev(d['entity']):.1f} | "
                     f"{', '.join(f'{x:.1f}' for x in d['relation'])} | {empty.get(name, '-')} |")
    lines += ["", f"Best single view on the 10-fold mean relation F1: **{best}**: the teacher a distilled student is "
                  "compared with (issue #30: the LLM as a user would call it)."]
    versus = []
    for f in a.student:
        rep = json.loads(f.read_text())
        for name, sysm in rep["systems"].items():
            if not name.startswith("student "):
                continue
            for view, d in scores.items():
                for level in ("relation", "entity"):
                    diff = [x - y for x, y in zip(sysm[f"{level} strict"]["per_fold"], d[level])]
                    wins, losses = sum(x > 0 for x in diff), sum(x < 0 for x in diff)
                    versus.append({"student": name, "report": str(f.resolve().relative_to(REPO)), "view": view, "level": level,
                                   "mean_diff": statistics.mean(diff), "wins": wins, "losses": losses,
                                   "sign_test_p": sign_test(wins, losses)})
    if versus:
        lines += ["", "## Students against each view, fold by fold", "",
                  "| student (report) | view | level | mean difference | folds better / worse | sign test p |",
                  "|---|---|---|---|---|---|"]
        for v in versus:
            lines.append(f"| {v['student']} ({v['report']}) | {v['view']} | {v['level']} | {v['mean_diff']:+.1f} | "
                         f"{v['wins']} / {v['losses']} | {v['sign_test_p']:.3f} |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    a.out.with_suffix(".json").write_text(json.dumps({"scores": scores, "empty": empty, "best_single_view": best,
                                                      "versus": versus, "git": commit}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
