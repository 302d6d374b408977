"""The README's generated blocks, made from the committed reports (never typed by hand).

  python scripts/readme_blocks.py           # rewrite the blocks in README.md
  python scripts/readme_blocks.py --check   # exit 1 if a block differs (tests/test_readme.py runs this)

A block sits between ``<!-- begin: NAME -->`` and ``<!-- end: NAME -->``:
- ``headline``: the 10-fold result (each teacher prompt and their aggregate, the plain distilled
  student of reports/ade_10fold/, each lever's run of LEVERS where it exists, against the best single
  prompt fold by fold, and the supervised reference), and what running the
  student instead of the teacher costs (reports/screen/scale.json), and the hybrid's k-curve
  (reports/hybrid/hybrid.json, reports/hybrid_two_stage/hybrid.json) where they exist;
- ``demo``: the closing lines of the committed `make demo` run (reports/quickstart/demo_output.txt).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


# 10-fold runs of a distilled student with a lever chosen without gold (reports/ade_distill_gap/)
LEVERS = [("ade_10fold_negsamp", "+ negative sampling"),
          ("ade_10fold_best", "+ negative sampling + drug mentions completed from the drug vocabulary")]


def _row(name: str, s: dict, vs: dict | None) -> str:
    r, e = s["relation strict"], s["entity strict"]
    beat = f"{vs['relation strict']['wins']} / {vs['relation strict']['losses']}" if vs else "-"
    return f"| {name} | {r['mean']:.1f} ± {r['sd']:.1f} | {e['mean']:.1f} ± {e['sd']:.1f} | {beat} |"


def _mean_sd(d: dict) -> dict:
    """views_10fold.json's per-fold scores as a folds.json system (mean and sd)."""
    import statistics

    return {f"{k} strict": {"mean": statistics.mean(v), "sd": statistics.stdev(v)} for k, v in d.items()}


def _zero_gold_verdict(views: dict, best_view: str) -> str | None:
    """Issue #30's zero-gold bar for the last lever run that exists: relation strict F1 at least 2
    points above the best single prompt on the 10-fold mean, at least 9 folds better with sign test
    p <= 0.05, entity strict F1 not below it."""
    for folder, what in reversed(LEVERS):
        report = f"reports/{folder}/folds.json"
        got = {v["level"]: v for v in views["versus"] if v["report"] == report and v["view"] == best_view}
        if {"relation", "entity"} <= set(got):
            r, e = got["relation"], got["entity"]
            met = r["mean_diff"] >= 2 and r["wins"] >= 9 and r["sign_test_p"] <= 0.05 and e["mean_diff"] >= 0
            return (f"The zero-gold bar (issue #30: relation at least 2 points above the best single prompt on the "
                    f"10-fold mean, at least 9 folds of 10 better, sign test p <= 0.05, entity not below): the student "
                    f"{what} is {r['mean_diff']:+.1f} on relations ({r['wins']} / {r['losses']} folds, p "
                    f"{r['sign_test_p']:.3f}) and {e['mean_diff']:+.1f} on entities: **{'met' if met else 'not met'}**.")
    return None


def headline() -> str:
    base = json.loads((REPO / "reports" / "ade_10fold" / "folds.json").read_text())
    # the teacher as a user would call it: each prompt, the best single one the yardstick
    # (reports/ade_distill_gap/views_10fold.json, from the committed labels)
    views = json.loads((REPO / "reports" / "ade_distill_gap" / "views_10fold.json").read_text())
    best_view = views["best_single_view"]
    lines = ["| 10 SpERT folds of ADE-Corpus-V2, strict F1 (mean ± sd) | relation | entity | "
             f"folds above / below the best single prompt ({best_view}), relation |", "|---|---|---|---|"]

    def vs_best(report: str, student: str) -> dict | None:
        hit = [v for v in views["versus"] if v["report"] == report and v["student"] == student
               and v["view"] == best_view and v["level"] == "relation"]
        return {"relation strict": hit[0]} if hit else None

    for view, d in views["scores"].items():
        what = (f"teacher LLM (Qwen2.5-Coder-1.5B, local), {view} prompt" if view in ("json", "lines")
                else f"teacher LLM, both prompts {view.removeprefix('aggregated ')} aggregated")
        if view == best_view:
            what += " (best single prompt)"
        lines.append(_row(what, _mean_sd(d), None))
    lines.append(_row("distilled student (teacher labels only)", base["systems"]["student distilled"],
                      vs_best("reports/ade_10fold/folds.json", "student distilled")))
    src = "reports/ade_10fold/folds.md, reports/ade_distill_gap/views_10fold.md"
    for folder, what in LEVERS:
        f = REPO / "reports" / folder / "folds.json"
        if f.exists():
            more = json.loads(f.read_text())
            for name, s in more["systems"].items():
                if name.startswith("student"):
                    lines.append(_row(f"distilled student, {what} (teacher labels only)", s,
                                      vs_best(f"reports/{folder}/folds.json", name)))
            src += f", reports/{folder}/folds.md"
    lines.append(_row("supervised student (gold labels; a reference)", base["systems"]["student supervised"], None))
    verdict = _zero_gold_verdict(views, best_view)
    if verdict:
        lines += ["", verdict]
    scale = json.loads((REPO / "reports" / "screen" / "scale.json").read_text())
    student = max(scale["student_runs"], key=lambda r: r["sentences_per_s"])
    api = next(c for c in scale["cost_model"] if "gpt-4o-mini" in c["what"])
    core = next(c for c in scale["cost_model"] if c["what"].startswith("student") and c.get("core_hours"))
    per_m = 1e6 / scale["pubmed_sentences"]
    lines += ["", f"Speed on 2 CPU cores (reports/screen/scale.md): the student reads {student['sentences_per_s']:.0f} "
              f"sentences/s, the local teacher {scale['teacher']['sentences_per_s']:.3f}: "
              f"**{scale['student_to_teacher']:,}x**. A million sentences cost the student "
              f"{core['core_hours'] * per_m:.1f} core-hours; the teacher through the gpt-4o-mini API "
              f"${api['usd'] * per_m:.0f} at list price (${api['usd_batch_api'] * per_m:.0f} batch). Sources: {src}."]
    for folder in ("hybrid", "hybrid_two_stage"):  # k gold sentences (issue #30): hybrid vs k-shot teacher vs on k
        hybrid = REPO / "reports" / folder / "hybrid.json"
        if not hybrid.exists():
            continue
        h = json.loads(hybrid.read_text())
        which = {"two-stage": "two-stage hybrid student (the zero-gold student fine-tuned on the k)"}.get(
            h.get("hybrid_students", "hybrid"), "hybrid student")
        parts = [f"k = {r['k']}: {r['hybrid']['pooled']:.1f} vs {r['kshot_teacher']['pooled']:.1f} vs "
                 f"{r['supervised_k']['pooled']:.1f} (above both, P <= 0.05: "
                 f"{'yes' if max(r['p_hybrid_not_above_kshot'], r['p_hybrid_not_above_supervised']) <= 0.05 else 'no'})"
                 for r in h["rows"] if r.get("supervised_k")]
        lines += ["", f"With k gold sentences (folds {', '.join(map(str, h['folds']))}, relation strict F1 pooled): {which} "
                  f"vs k-shot teacher vs supervised on k, {'; '.join(parts)}. Source: reports/{folder}/hybrid.md."]
    return "\n".join(lines)


def demo() -> str:
    printed = (REPO / "reports" / "quickstart" / "demo_output.txt").read_text(encoding="utf-8").splitlines()
    keep = [x for x in printed if x.startswith(("[label]", "[synthesize]", "[train-", "[evaluate]", "[extract]", "real"))]
    return "```\n" + "\n".join(keep) + "\n```"


BLOCKS = {"headline": headline, "demo": demo}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        pat = re.compile(rf"(<!-- begin: {name} -->\n).*?(<!-- end: {name} -->)", re.S)
        if not pat.search(text):
            raise SystemExit(f"README.md has no block {name!r}")
        text = pat.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    readme = REPO / "README.md"
    old = readme.read_text(encoding="utf-8")
    new = render(old)
    if a.check:
        if new != old:
            print("README.md: a generated block differs from the reports; run python scripts/readme_blocks.py")
            sys.exit(1)
        return
    readme.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
