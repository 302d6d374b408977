"""Issue #31's check: after the core was rebuilt (one training loop, the pipeline as a runner), do
the committed ade_benchmark numbers come back? Reruns two of its students with their committed
recipes, on fold 0, from the committed teacher labels: `distilled` (a first stage, LabelObjective)
and `distilled-again` (a second stage, DistillObjective, through the same loop), and sets their test
scores beside the committed ones and the 3-seed spread of reports/ade_benchmark/ablation.md.

  python benchmarks/reproduce_core.py [--work runs/reproduce_core] [--out reports/core/reproduce]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.core.paths import shown  # noqa: E402
from ade_distill.pipeline import Pipeline  # noqa: E402

KEEP = ("distilled", "distilled-again", "distilled-seed14", "distilled-seed15")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "reproduce_core")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "core" / "reproduce")
    a = ap.parse_args()
    cfg = yaml.safe_load((REPO / "pipelines" / "ade_benchmark.yaml").read_text())
    cfg["name"] = "reproduce_core"
    cfg["run_dir"] = str(a.work)
    cfg["students"] = {k: v for k, v in cfg["students"].items() if k in ("distilled", "distilled-again")}
    cfg["inputs"].pop("documents", None)
    cfg["report"] = {"title": "ade_benchmark's distilled and distilled-again, rerun on the rebuilt core", "excerpts": False}
    a.work.mkdir(parents=True, exist_ok=True)
    path = a.work / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    Pipeline(path, progress=False).run()
    new = json.loads((a.work / "evaluate" / "metrics.json").read_text())["systems"]
    old = json.loads((REPO / "reports" / "ade_benchmark" / "metrics.json").read_text())["systems"]
    rel = {k: 100 * old[f"student {k}"]["relation"]["strict"]["micro"]["f1"] for k in KEEP}
    spread = max(rel[k] for k in ("distilled", "distilled-seed14", "distilled-seed15")) - \
        min(rel[k] for k in ("distilled", "distilled-seed14", "distilled-seed15"))
    rows = []
    for k in ("distilled", "distilled-again"):
        o, n = old[f"student {k}"], new[f"student {k}"]
        rows.append({"student": k, "committed_relation_f1": round(rel[k], 2),
                     "rerun_relation_f1": round(100 * n["relation"]["strict"]["micro"]["f1"], 2),
                     "committed_entity_f1": round(100 * o["entity"]["strict"]["micro"]["f1"], 2),
                     "rerun_entity_f1": round(100 * n["entity"]["strict"]["micro"]["f1"], 2)})
    for r in rows:
        r["difference"] = round(r["rerun_relation_f1"] - r["committed_relation_f1"], 2)
        r["within_seed_spread"] = abs(r["difference"]) <= spread
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    cmd = ("python benchmarks/reproduce_core.py " + " ".join(shown(x) for x in sys.argv[1:])).strip()
    res = {"command": cmd, "git_commit": commit, "seed_spread_relation_f1": round(spread, 2), "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    lines = ["# The committed ade_benchmark numbers on the rebuilt core", "",
             f"Made by `{cmd}` (git {commit}): pipelines/ade_benchmark.yaml's `distilled` (a first stage) and "
             "`distilled-again` (a second stage), rerun with their committed recipes from the committed teacher "
             "labels on fold 0, both now trained by the one loop (student/train.py `fit`); fold 0 test, strict F1. "
             f"The yardstick: the committed 3-seed spread of `distilled` ({spread:.1f} points of relation F1, "
             "reports/ade_benchmark/metrics.json).", "",
             "| student | relation F1, committed | relation F1, rerun | difference | within the seed spread | "
             "entity F1, committed / rerun |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['student']} | {r['committed_relation_f1']:.1f} | {r['rerun_relation_f1']:.1f} | "
                     f"{r['difference']:+.1f} | {'yes' if r['within_seed_spread'] else 'no'} | "
                     f"{r['committed_entity_f1']:.1f} / {r['rerun_entity_f1']:.1f} |")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {a.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
