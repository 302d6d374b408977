"""Issue #30's hybrid k-curves from a finished `ade-distill run pipelines/ade_hybrid.yaml`: for each
gold budget k, the hybrid student, the k-shot teacher and the supervised-on-k student, per fold and
pooled over the folds' test parts, with 95% bootstrap intervals and paired bootstrap P-values of the
hybrid against each of the other two (the share of resamples in which the hybrid is not above).

  python benchmarks/hybrid_tables.py [--report reports/hybrid] [--hybrid hybrid]

--hybrid names the students that stand in the hybrid column (<name>-<k>): `hybrid` (gold in place of the
teacher's labels) or `two-stage` (the zero-gold student fine-tuned on the k gold sentences).

Reads the published out-of-fold predictions (no model is run); writes <report>/hybrid.md and .json.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def f1(rows) -> float:
    tp, fp, fn = (sum(r[i] for r in rows) for i in range(3))
    return 200 * tp / (2 * tp + fp + fn) if tp else 0.0


class PairedBootstrap:
    """Relation F1 of each system over the same resamples of the test sentences (seed 13): a 95%
    interval per system and, per pair, the share of resamples in which one is not above the other."""

    def __init__(self, counts: dict[str, list], n_draws: int) -> None:
        rng = random.Random(13)
        n = len(next(iter(counts.values())))
        draws = [[rng.randrange(n) for _ in range(n)] for _ in range(n_draws)]
        self.boot = {name: [f1([c[i] for i in d]) for d in draws] for name, c in counts.items()}
        self.n_draws = n_draws

    def ci(self, name: str) -> tuple[float, float]:
        b = sorted(self.boot[name])
        return b[int(0.025 * len(b))], b[int(0.975 * len(b)) - 1]

    def p_not_above(self, x: str, y: str) -> float:
        return sum(bx <= by for bx, by in zip(self.boot[x], self.boot[y])) / self.n_draws


def main() -> None:
    from ade_distill.core.labels import read_unpacked
    from ade_distill.core.paths import shown_text
    from ade_distill.evaluate.metrics import sentence_counts
    from ade_distill.ingest import ingest_ade_splits
    from ade_distill.pipeline import default_shared_data

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", type=Path, default=REPO / "reports" / "hybrid")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--hybrid", default="hybrid", help="the hybrid students' name before -<k> (hybrid, two-stage)")
    a = ap.parse_args()
    folds = json.loads((a.report / "folds.json").read_text())
    systems = folds["systems"]
    ks = sorted({int(m[1]) for n in systems if (m := re.search(rf"student {re.escape(a.hybrid)}-(\d+)$", n))})
    test = [s for k in folds["folds"] for s in ingest_ade_splits(default_shared_data() / "ade_splits", fold=k, part="test")]
    slugs = {f"student {a.hybrid}-{k}": f"{a.hybrid}-{k}" for k in ks}
    slugs |= {f"student gold-{k}": f"gold-{k}" for k in ks}
    slugs |= {f"teacher view kshot-{k}": f"teacher-view-kshot-{k}" for k in ks}
    slugs["student distilled-k0"] = "distilled-k0"
    # k = 0: the zero-shot teacher's views (the JSON prompt, the lines prompt), the better of them on the
    # pooled test parts as the comparison (the teacher as a user would call it at its best: conservative)
    zero_shot = {n: ("teacher" if n.startswith("teacher (") else "teacher-view-" + n.split("teacher view ", 1)[1])
                 for n in systems if n.startswith("teacher (") or (n.startswith("teacher view ") and "kshot" not in n)}
    slugs |= zero_shot
    counts = {}
    for name, slug in slugs.items():
        preds = {p.id: p for p in read_unpacked(a.report / "oof" / f"{slug}.packed.jsonl", test, unknown="skip")}
        counts[name] = [sentence_counts(g, preds[g.id])["relation.strict.ADE"] for g in test]
    pb = PairedBootstrap(counts, a.bootstrap)
    ci, p_not_above = pb.ci, pb.p_not_above

    rows = []
    if zero_shot:
        z0 = max(zero_shot, key=lambda n: f1(counts[n]))
        rows.append({"k": 0, "hybrid": {"name": "student distilled-k0", "per_fold": systems["student distilled-k0"]["relation strict"]["per_fold"],
                                        "pooled": f1(counts["student distilled-k0"]), "ci": ci("student distilled-k0")},
                     "kshot_teacher": {"name": z0, "per_fold": systems[z0]["relation strict"]["per_fold"],
                                       "pooled": f1(counts[z0]), "ci": ci(z0)},
                     "supervised_k": None, "p_hybrid_not_above_kshot": p_not_above("student distilled-k0", z0),
                     "p_hybrid_not_above_supervised": None,
                     "zero_shot_views": {n: {"pooled": f1(counts[n]), "ci": ci(n)} for n in zero_shot}})
    for k in ks:
        h, t, g = f"student {a.hybrid}-{k}", f"teacher view kshot-{k}", f"student gold-{k}"
        rows.append({"k": k, **{role: {"name": name, "per_fold": systems[name]["relation strict"]["per_fold"],
                                       "pooled": f1(counts[name]), "ci": ci(name)}
                                for role, name in (("hybrid", h), ("kshot_teacher", t), ("supervised_k", g))},
                     "p_hybrid_not_above_kshot": p_not_above(h, t), "p_hybrid_not_above_supervised": p_not_above(h, g)})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    first = next(iter(folds.get("inputs", {}).values()), "")
    pipeline = m[1] if (m := re.match(r"runs/([^/]+)/fold-", first)) else "ade_hybrid"
    cmd = shown_text(" ".join(["python benchmarks/hybrid_tables.py", *sys.argv[1:]]))
    lines = [f"# The hybrid ({a.hybrid}-k): k gold sentences (folds {', '.join(map(str, folds['folds']))})", "",
             f"Made by `{cmd}` (git {commit}) from `ade-distill run pipelines/{pipeline}.yaml` "
             "(folds.md beside this file). Relation strict F1: per fold, and pooled over the folds' test parts with a 95% "
             f"bootstrap interval ({a.bootstrap:,} resamples of the test sentences); P: the share of paired resamples in "
             "which the hybrid is not above the other system. At k = 0 the hybrid column is the zero-gold student and "
             "the teacher column the better zero-shot view on these test parts (a conservative comparison).", "",
             "| k | hybrid student | k-shot teacher | supervised on k | P (hybrid not above k-shot) | P (hybrid not above supervised-on-k) |",
             "|---|---|---|---|---|---|"]

    def cell(x: dict | None) -> str:
        if x is None:
            return "-"
        return f"{x['pooled']:.1f} ({x['ci'][0]:.1f}-{x['ci'][1]:.1f}); folds {', '.join(f'{v:.1f}' for v in x['per_fold'])}"

    def p(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    for r in rows:
        lines.append(f"| {r['k']} | {cell(r['hybrid'])} | {cell(r['kshot_teacher'])} | {cell(r['supervised_k'])} | "
                     f"{p(r['p_hybrid_not_above_kshot'])} | {p(r['p_hybrid_not_above_supervised'])} |")
    if rows and rows[0]["k"] == 0:
        lines += ["", "Zero-shot views at k = 0, pooled: " + "; ".join(
            f"{n} {v['pooled']:.1f} ({v['ci'][0]:.1f}-{v['ci'][1]:.1f})" for n, v in rows[0]["zero_shot_views"].items()) + "."]
    bar = [r for r in rows if r["k"] in (50, 200)]
    lines += ["", "Bar (issue #30): at k = 50 and k = 200 the hybrid above both, P <= 0.05 against each: "
              + "; ".join(f"k = {r['k']}: {'met' if max(r['p_hybrid_not_above_kshot'], r['p_hybrid_not_above_supervised']) <= 0.05 else 'NOT met'}"
                          for r in bar) + "."]
    (a.report / "hybrid.md").write_text("\n".join(lines) + "\n")
    (a.report / "hybrid.json").write_text(json.dumps({"folds": folds["folds"], "hybrid_students": a.hybrid, "rows": rows, "git": commit}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
