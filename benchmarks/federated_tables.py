"""Issue #34's federated tables from a finished `ade-distill run pipelines/ade_federated.yaml`: each
federated student against the central one (same recipe, same run), per fold and on the fold mean,
with the bytes and wall seconds per round from each fold's manifest.

  python benchmarks/federated_tables.py [--run runs/ade_federated] [--report reports/federated]

Writes <report>/federated.md and federated.json. Reads only what the run measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "ade_federated")
    ap.add_argument("--report", type=Path, default=REPO / "reports" / "federated")
    a = ap.parse_args()
    folds = json.loads((a.report / "folds.json").read_text())
    systems = folds["systems"]
    central = systems["student central"]
    rows = []
    for name, sysm in systems.items():
        if not name.startswith("student ") or name == "student central":
            continue
        student = name.removeprefix("student ")
        rel, ent = sysm["relation strict"]["per_fold"], sysm["entity strict"]["per_fold"]
        gaps = [r - c for r, c in zip(rel, central["relation strict"]["per_fold"])]
        summaries = []
        for k in folds["folds"]:
            m = json.loads((a.run / f"fold-{k}" / "manifest.json").read_text())
            summaries.append(m["stages"][f"train-{student}"]["summary"])
        rows.append({"student": student, "sites": summaries[0]["sites"], "split": summaries[0]["split"],
                     "rounds": summaries[0]["rounds"], "relation_per_fold": rel, "relation_mean": statistics.mean(rel),
                     "entity_mean": statistics.mean(ent), "gap_per_fold": gaps, "gap_mean": statistics.mean(gaps),
                     "bytes_per_round": statistics.mean(s["bytes_per_round"] for s in summaries),
                     "seconds_per_round": statistics.mean(s["seconds_per_round"] for s in summaries),
                     "site_sentences": [s["site_sentences"] for s in summaries],
                     "sites_left_out": sum(s["sites_left_out"] for s in summaries)})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    c_rel = central["relation strict"]
    lines = [f"# Federated vs central distilled student (folds {', '.join(map(str, folds['folds']))})", "",
             f"Made by `python benchmarks/federated_tables.py` (git {commit}) from `ade-distill run "
             "pipelines/ade_federated.yaml` (reports/federated/folds.md). Strict F1 on each fold's test part; the "
             "gap is federated minus central, same recipe, same run, same teacher labels.", "",
             f"Central student: relation {c_rel['mean']:.1f} ± {c_rel['sd']:.1f}, entity "
             f"{central['entity strict']['mean']:.1f}.", "",
             "| student | sites | split | rounds | relation F1 (mean) | gap to central (mean; per fold) | entity F1 | "
             "MB per round (sent + received) | s per round | site-rounds left out |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per = ", ".join(f"{g:+.1f}" for g in r["gap_per_fold"])
        lines.append(f"| {r['student']} | {r['sites']} | {r['split']} | {r['rounds']} | {r['relation_mean']:.1f} | "
                     f"{r['gap_mean']:+.1f} ({per}) | {r['entity_mean']:.1f} | {r['bytes_per_round'] / 1e6:,.0f} | "
                     f"{r['seconds_per_round']:,.0f} | {r['sites_left_out']} |")
    lines += ["", "Sentences per site (per fold): " + "; ".join(f"{r['student']} {r['site_sentences'][0]}" for r in rows),
              "", "Bar (issue #34): IID within 2 relation F1 points of central on the fold mean: "
              + ", ".join(f"{r['student']} {'met' if r['gap_mean'] >= -2 else 'NOT met'} ({r['gap_mean']:+.1f})"
                          for r in rows if r["split"] == "iid") + "."]
    (a.report / "federated.md").write_text("\n".join(lines) + "\n")
    (a.report / "federated.json").write_text(json.dumps({"central": c_rel, "students": rows, "git": commit}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
