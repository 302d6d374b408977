"""The levers of issue #12, one table, from the committed artifacts (no training, no scoring).

  python benchmarks/ablation_table.py [--out reports/ade_benchmark/ablation.md]

Every number is read from a committed JSON written by the run that measured it (the source
column names the file; each file records its own command); this script only lays them side by
side, so no number here is typed by hand. Rows are ADE fold 0 test (427 sentences, strict F1,
95% bootstrap intervals) unless the row says 10-fold.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load(rel: str) -> dict | None:
    p = REPO / rel
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None


def _micro(metrics: dict, system: str) -> tuple[float, list[float], float] | None:
    s = metrics["systems"].get(system)
    if s is None:
        return None
    r, e = s["relation"]["strict"]["micro"], s["entity"]["strict"]["micro"]
    return 100 * r["f1"], [100 * x for x in r["ci"]], 100 * e["f1"]


def _row(lever: str, rel: float, ci: list[float] | None, ent: float | None, vs: str, source: str) -> str:
    ci_s = f" [{ci[0]:.1f}–{ci[1]:.1f}]" if ci else ""
    ent_s = f"{ent:.1f}" if ent is not None else "–"
    return f"| {lever} | {rel:.1f}{ci_s} | {ent_s} | {vs} | `{source}` |"


def _teacher_vs(metrics: dict, teacher: str, name: str) -> str:
    """How often the teacher beats ``name`` on relations over paired resamples, from a metrics file."""
    pb = metrics["paired_bootstrap"].get(f"{teacher} vs {name}", {}).get("relation.strict", {})
    return f"teacher better in {100 * pb['p_a_better']:.1f}% of paired resamples" if pb else "–"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "ade_benchmark" / "ablation.md")
    args = ap.parse_args()
    rows: list[str] = []
    teacher_line = None

    bench = _load("reports/ade_benchmark/metrics.json")
    if bench:
        tname = next(n for n in bench["systems"] if n.startswith("teacher"))
        t = _micro(bench, tname)
        teacher_line = t
        rows.append(_row("teacher LLM (Qwen2.5-Coder-1.5B, JSON answers): the line to beat", t[0], t[1], t[2], "–",
                         "reports/ade_benchmark/metrics.json"))
        for name in bench["systems"]:
            if not name.startswith("student"):
                continue
            m = _micro(bench, name)
            vs = _teacher_vs(bench, tname, name)
            label = {"student distilled": "distilled student, all 3,845 teacher-labelled sentences (3 layers, 6 epochs)",
                     "student distilled-again": "+ second-stage self-distillation (born again, same depth, 6 epochs)",
                     "student distilled-seed14": "distilled student, seed 14 (ensemble member)",
                     "student distilled-seed15": "distilled student, seed 15 (ensemble member)",
                     "student distilled-ensemble": "+ second stage from the ensemble of the three seeds (one model)",
                     "student supervised": "supervised student, the same sentences with gold labels (reference)"
                     }.get(name, name)
            rows.append(_row(label, m[0], m[1], m[2], vs, "reports/ade_benchmark/metrics.json"))

    cond = _load("reports/ade_benchmark/conditioned/metrics.json")
    if cond:  # the dev-chosen recipe (pipelines/ade_benchmark_conditioned.yaml), scored once
        tname = next(n for n in cond["systems"] if n.startswith("teacher"))
        for name, label in (("student distilled", "drug-conditioned ADE tagging (dev-chosen stack, first stage)"),
                            ("student distilled-again", "+ born again from it: the dev-chosen recipe, reported by rule")):
            m = _micro(cond, name)
            vs = _teacher_vs(cond, tname, name)
            rows.append(_row(label, m[0], m[1], m[2], vs, "reports/ade_benchmark/conditioned/metrics.json"))

    gens = _load("reports/ade_benchmark/born_again_generations.json")
    if gens:
        for name in gens["systems"]:
            if not name.startswith("born again, generation") or name.endswith("generation 1"):
                continue  # generation 1 is distilled-again above
            m = _micro(gens, name)
            vs = _teacher_vs(gens, "teacher", name)
            rows.append(_row(f"+ {name} (each from the one before, same settings)", m[0], m[1], m[2], vs,
                             "reports/ade_benchmark/born_again_generations.json"))

    curve = _load("reports/ade_benchmark/learning_curve.json")
    if curve:
        for p in curve["points"]:
            d = p["distilled"]
            rows.append(_row(f"learning curve: distilled on {p['sentences']:,} teacher-labelled sentences",
                             d["relation_f1"], d["ci"], d["entity_f1"], "label volume",
                             "reports/ade_benchmark/learning_curve.json"))

    cl = _load("reports/ade_benchmark/confident_learning.json")
    if cl:
        for r in cl["rows"]:
            if "confident" in r["system"]:
                pb = cl["paired_bootstrap"].get(f"distilled (ade_10fold recipe) vs {r['system']}", {}).get(
                    "relation.strict", {})
                vs = (f"better than plain distilled in {100 * pb['p_b_better']:.1f}% of paired resamples"
                      if pb else "–")
                rows.append(_row("distilled + confident-learning weights on the teacher's labels (cleanlab)",
                                 r["relation_f1"], r["relation_ci"], r["entity_f1"], vs,
                                 "reports/ade_benchmark/confident_learning.json"))

    q = _load("reports/teacher_speed/quality.json")
    if q:
        v = q["rows"][1]
        rel, ent = v["relation_strict"], v["entity_strict"]
        pb = q["paired_bootstrap"]["relation.strict"]
        rows.append(_row("teacher answering in lines (ade-v3-lines; speed in reports/teacher_speed/speed.md)", rel["f1"], rel["ci"],
                         ent["f1"], f"JSON teacher better in {100 * pb['p_a_better']:.1f}% of paired resamples",
                         "reports/teacher_speed/quality.json"))

    dev_rows = []
    sel = _load("reports/ade_benchmark/dev_selection.json")
    if sel:
        for r in sel["variants"]:
            b = r.get("better_than")
            settings = json.dumps(r["settings"]) if r["settings"] else "the recipe"
            against = f"better than {b['variant']} in {100 * b['relation']:.1f}%" if b else ""
            dev_rows.append(f"| {r['variant']} ({settings}) | {r['relation']['f1']:.1f} "
                            f"[{r['relation']['ci'][0]:.1f}–{r['relation']['ci'][1]:.1f}] | {r['entity']['f1']:.1f} | "
                            f"{against} | `reports/ade_benchmark/dev_selection.json` |")
    dec = _load("reports/ade_benchmark/dev_analysis.json")
    if dec:
        for r in dec["decoding_sweep"]:
            b = r["better_than_first"]
            dev_rows.append(f"| decoding: {r['decoding']} | {r['relation']['f1']:.1f} [{r['relation_ci'][0]:.1f}–"
                            f"{r['relation_ci'][1]:.1f}] | {r['entity_f1']:.1f} | "
                            f"{'' if b is None else f'better than 1 in {100 * b:.1f}%'} | `reports/ade_benchmark/dev_analysis.json` |")

    folds = _load("reports/ade_10fold/folds.json")
    fold_rows = []
    if folds:
        for name, s in folds["systems"].items():
            rs, es = s["relation strict"], s["entity strict"]
            fold_rows.append(f"| {name} | {rs['mean']:.1f} ± {rs['sd']:.1f} | {es['mean']:.1f} ± {es['sd']:.1f} |")

    md = ["# Issue #12 levers, side by side", "",
          f"Made by `python benchmarks/ablation_table.py` from the committed artifacts named in the last column "
          "(each records the command that produced it). ADE fold 0 test, 427 sentences, strict F1, 95% bootstrap "
          "intervals. No gold label reached a distilled student or chose one; how each was chosen is in the "
          "source's report.", "",
          "| lever | relation F1 | entity F1 | against | source |", "|---|---|---|---|---|", *rows]
    sc = _load("reports/teacher_speed/self_consistency.json")
    if sc:
        md += ["", f"Self-consistency votes on the teacher (first {sc['sentences']} test sentences only: five calls a "
               "sentence; relation strict F1 against gold, `reports/teacher_speed/self_consistency.json`):", "",
               "| teacher labels | relation F1 | entity F1 |", "|---|---|---|"]
        for r in sc["rows"]:
            rel, ent = r["relation_strict"], r["entity_strict"]
            md.append(f"| {r['system']} | {rel['f1']:.1f} [{rel['ci'][0]:.1f}–{rel['ci'][1]:.1f}] | {ent['f1']:.1f} |")
    seeds = [n for n in (bench or {}).get("systems", {}) if n == "student distilled" or n.startswith("student distilled-seed")]
    if len(seeds) > 1:
        f1s = sorted(_micro(bench, n)[0] for n in seeds)
        md += ["", f"Seed spread: the same distilled recipe with {len(seeds)} seeds ({', '.join(n.removeprefix('student ') for n in seeds)}) "
               f"scores {f1s[0]:.1f} to {f1s[-1]:.1f} relation F1, a range of {f1s[-1] - f1s[0]:.1f}: a single run's difference "
               "smaller than that is within the noise of one training run."]
    if dev_rows:
        md += ["", "Chosen without gold: agreement with the teacher's labels on a dev split of teacher-labelled train "
               "sentences (not test, not gold; the yardstick a distilled student may be chosen by). Relation F1 here "
               "is against the teacher, so it is not comparable with the rows above:", "",
               "| variant | relation F1 vs teacher | entity F1 vs teacher | paired resamples | source |",
               "|---|---|---|---|---|", *dev_rows]
    if fold_rows:
        md += ["", "All 10 SpERT folds (mean ± sd over folds, `reports/ade_10fold/folds.json`):", "",
               "| system | relation F1 | entity F1 |", "|---|---|---|", *fold_rows]
    if teacher_line is None:
        md += ["", "(reports/ade_benchmark/metrics.json is missing: run `ade-distill run pipelines/ade_benchmark.yaml`.)"]
    args.out.write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
