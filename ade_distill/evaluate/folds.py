"""The k-fold protocol's summary: per-fold scores, their mean and standard deviation (macro over
folds, the ADE literature's convention), the student-minus-teacher difference per fold with a
two-sided sign test, and the published numbers to set beside them.

Input: one ``evaluate`` metrics dictionary per fold (the systems named alike in every fold).
Micro scores over all out-of-fold predictions come from ``evaluate`` itself on the joined files.
"""

from __future__ import annotations

import math
import statistics
from typing import Mapping, Sequence

from .metrics import EvaluationError

# Published strict scores on ADE-Corpus-V2, mean over the same 10 SpERT folds (macro), as the papers
# report them (cited, not measured here).
LITERATURE = [
    {"system": "SpERT (Eberts and Ulges, 2020)", "entity_f1": 89.3, "relation_f1": 79.2,
     "protocol": "10-fold SpERT splits, macro mean, strict"},
    {"system": "PFN (Yan et al., 2021)", "entity_f1": 91.3, "relation_f1": 83.2,
     "protocol": "10-fold SpERT splits, macro mean, strict"},
    {"system": "ITER (Hennen et al., 2024)", "entity_f1": 92.6, "relation_f1": 85.6,
     "protocol": "10-fold SpERT splits, macro mean, strict"},
]

SCORES = {"entity strict": ("entity", "strict"), "relation strict": ("relation", "strict"),
          "relation lenient": ("relation", "lenient"), "relation text": ("relation", "text")}


def _f1(metrics: Mapping, system: str, kind: str, mode: str) -> float:
    try:
        block = metrics["systems"][system][kind][mode]
    except KeyError as exc:
        raise EvaluationError(f"system {system!r} has no {kind} {mode} score in a fold's metrics") from exc
    return float((block["micro"] if "micro" in block else block)["f1"])


def sign_test(diffs: Sequence[float]) -> float:
    """Two-sided exact sign test p-value for the median difference being 0 (ties dropped)."""
    pos = sum(d > 0 for d in diffs)
    n = pos + sum(d < 0 for d in diffs)
    if n == 0:
        return 1.0
    k = min(pos, n - pos)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def fold_summary(per_fold: Mapping[int, Mapping], *, reference: str | Sequence[str] | None = None) -> dict:
    """Per-fold F1 (%) of every system, mean and sample standard deviation over folds, and, when
    ``reference`` names a system (the teacher), each other system's per-fold difference from it
    with a sign test. Several names (a teacher's views): the reference is the one with the highest
    mean relation strict F1 over the folds, the strongest single teacher a student is held to."""
    if not per_fold:
        raise EvaluationError("no folds to summarise")
    folds = sorted(per_fold)
    systems = list(per_fold[folds[0]]["systems"])
    for k in folds:
        if list(per_fold[k]["systems"]) != systems:
            raise EvaluationError(f"fold {k} scores other systems ({', '.join(per_fold[k]['systems'])}) "
                                  f"than fold {folds[0]} ({', '.join(systems)})")
    out: dict = {"folds": folds, "systems": {}}
    for s in systems:
        rows = {}
        for label, (kind, mode) in SCORES.items():
            vals = [100 * _f1(per_fold[k], s, kind, mode) for k in folds]
            rows[label] = {"per_fold": vals, "mean": statistics.fmean(vals),
                           "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0}
        out["systems"][s] = rows
    if reference is not None and not isinstance(reference, str):
        candidates = list(reference)
        missing = [c for c in candidates if c not in systems]
        if not candidates or missing:
            raise EvaluationError(f"reference systems {missing or candidates!r} are not among {', '.join(systems)}")
        reference = max(candidates, key=lambda c: out["systems"][c]["relation strict"]["mean"])
        out["reference_rule"] = (f"the best of {len(candidates)} teacher views by mean relation strict F1 over the "
                                 f"folds: {', '.join(candidates)}")
    if reference is not None:
        if reference not in systems:
            raise EvaluationError(f"reference system {reference!r} is not among {', '.join(systems)}")
        out["reference"] = reference
        out["versus_reference"] = {}
        for s in systems:
            if s == reference:
                continue
            d = {}
            for label in SCORES:
                diffs = [a - b for a, b in zip(out["systems"][s][label]["per_fold"],
                                               out["systems"][reference][label]["per_fold"])]
                d[label] = {"per_fold": diffs, "mean": statistics.fmean(diffs), "wins": sum(x > 0 for x in diffs),
                            "losses": sum(x < 0 for x in diffs), "sign_test_p": sign_test(diffs)}
            out["versus_reference"][s] = d
    return out


def _micro_cell(metrics: Mapping, system: str, kind: str, mode: str) -> str:
    block = metrics["systems"][system][kind][mode]
    block = block.get("micro", block)
    ci = block.get("ci")
    return f"{100 * block['f1']:.1f}" + (f" ({100 * ci[0]:.1f}-{100 * ci[1]:.1f})" if ci else "")


def fold_markdown(summary: Mapping, *, micro: Mapping | None = None) -> str:
    """The 10-fold tables: per fold, mean +- sd, micro over the out-of-fold predictions (when the
    metrics of the joined files are given), differences from the reference, the literature."""
    folds = summary["folds"]
    lines = ["## Per fold (strict F1, %)", "",
             "| system | score | " + " | ".join(f"fold {k}" for k in folds) + " | mean ± sd |",
             "|---|---|" + "---|" * (len(folds) + 1)]
    for s, rows in summary["systems"].items():
        for label in ("entity strict", "relation strict"):
            r = rows[label]
            lines.append(f"| {s} | {label} | " + " | ".join(f"{v:.1f}" for v in r["per_fold"])
                         + f" | {r['mean']:.1f} ± {r['sd']:.1f} |")
    lines += ["", "## Mean ± sd over folds (macro, the literature's convention)", "",
              "| system | " + " | ".join(SCORES) + " |", "|---|" + "---|" * len(SCORES)]
    for s, rows in summary["systems"].items():
        lines.append(f"| {s} | " + " | ".join(f"{rows[label]['mean']:.1f} ± {rows[label]['sd']:.1f}" for label in SCORES)
                     + " |")
    if micro:
        n = micro.get("n_sentences")
        lines += ["", "## Micro over all out-of-fold predictions" + (f" ({n:,} sentences)" if n else "")
                  + " with 95% bootstrap intervals", "",
                  "| system | " + " | ".join(SCORES) + " |", "|---|" + "---|" * len(SCORES)]
        for s in summary["systems"]:
            lines.append(f"| {s} | " + " | ".join(_micro_cell(micro, s, kind, mode) for kind, mode in SCORES.values())
                         + " |")
    if summary.get("versus_reference"):
        ref = summary["reference"]
        rule = f" ({summary['reference_rule']})" if summary.get("reference_rule") else ""
        lines += ["", f"## Difference from {ref} per fold (points of F1){rule}", "",
                  "| system | score | mean difference | folds better / worse | sign test p |", "|---|---|---|---|---|"]
        for s, d in summary["versus_reference"].items():
            for label in ("entity strict", "relation strict"):
                x = d[label]
                lines.append(f"| {s} | {label} | {x['mean']:+.1f} | {x['wins']} / {x['losses']} | {x['sign_test_p']:.3f} |")
    lines += ["", "## Published results on the same protocol (cited, not measured here)", "",
              "| system | entity F1 | relation F1 | protocol |", "|---|---|---|---|"]
    lines += [f"| {r['system']} | {r['entity_f1']:.1f} | {r['relation_f1']:.1f} | {r['protocol']} |"
              for r in LITERATURE]
    return "\n".join(lines) + "\n"
