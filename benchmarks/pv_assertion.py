"""Assertion flags measured on BioScope (issue #33): per sentence, does it hold a negation / a
speculation (precision, recall, F1 against BioScope's cues), and per word, does the flag's reach
cover BioScope's annotated scopes (cue-scope coverage). Abstracts first, the full papers as a second
test; nothing here was tuned on either (the cue lists are fixed in post/assertion.py).

  python benchmarks/pv_assertion.py [--out reports/pv_coding/assertion]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.core.paths import shown  # noqa: E402
from ade_distill.ingest.bioscope import read_bioscope  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.post.assertion import AssertionFlagger  # noqa: E402

KINDS = {"negation": "negated", "speculation": "speculative"}


def prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "fp": fp, "fn": fn}


def measure(path: Path, flagger: AssertionFlagger) -> dict:
    counts = {k: {"s": [0, 0, 0], "w": [0, 0, 0]} for k in KINDS}
    n = 0
    t0 = time.monotonic()
    for s in read_bioscope(path):
        n += 1
        flags = flagger.word_flags(s.text)
        for kind, flag in KINDS.items():
            gold = s.has(kind)
            pred = bool(flags[flag])
            c = counts[kind]["s"]
            c[0] += gold and pred
            c[1] += pred and not gold
            c[2] += gold and not pred
            # words: inside a scope of that kind (the cue words themselves aside) vs flagged
            cue_spans = [(a, b) for k, a, b, _ in s.cues if k == kind]
            scopes = s.scope_spans(kind)
            flagged = set(flags[flag])
            for a, b in _words(s.text):
                if any(x <= a and b <= y for x, y in cue_spans):
                    continue
                g = any(x <= a and b <= y for x, y in scopes)
                p = (a, b) in flagged
                w = counts[kind]["w"]
                w[0] += g and p
                w[1] += p and not g
                w[2] += g and not p
    return {"sentences": n, "seconds": round(time.monotonic() - t0, 1),
            **{kind: {"sentence": prf(*c["s"]), "scope_words": prf(*c["w"])} for kind, c in counts.items()}}


def _words(text: str) -> list[tuple[int, int]]:
    import re

    return [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z]+", text)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "pv_coding" / "assertion")
    a = ap.parse_args()
    folder = default_shared_data() / "bioscope"
    flagger = AssertionFlagger()
    res = {"abstracts": measure(folder / "abstracts.xml", flagger), "full_papers": measure(folder / "full_papers.xml", flagger)}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    cmd = ("python benchmarks/pv_assertion.py " + " ".join(shown(a) for a in sys.argv[1:])).strip()
    res.update(command=cmd, git_commit=commit)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    goals = {"negation": 0.90, "speculation": 0.80}
    lines = ["# Assertion flags on BioScope", "",
             f"Made by `{cmd}` (git {commit}). The flagger of post/assertion.py (negspacy's NegEx with its clinical "
             "negation termset, and the same machinery with fixed cue lists for speculation) over every BioScope "
             "sentence, each word a candidate event. **Sentence**: the sentence holds a cue of that kind (BioScope) vs "
             "some word of it is flagged. **Scope words**: words inside an annotated scope of that kind (cues aside) vs "
             "flagged words.", "",
             "| set | kind | sentences | sentence P / R / F1 | goal (F1, abstracts) | scope words P / R / F1 |",
             "|---|---|---|---|---|---|"]
    for part in ("abstracts", "full_papers"):
        r = res[part]
        for kind in KINDS:
            s, w = r[kind]["sentence"], r[kind]["scope_words"]
            goal = f">= {goals[kind]:.2f} ({'met' if s['f1'] >= goals[kind] else 'not met'})" if part == "abstracts" else ""
            lines.append(f"| {part.replace('_', ' ')} | {kind} | {r['sentences']:,} | {s['precision']:.3f} / "
                         f"{s['recall']:.3f} / {s['f1']:.3f} | {goal} | {w['precision']:.3f} / {w['recall']:.3f} / "
                         f"{w['f1']:.3f} |")
    lines += ["", "BioScope's speculation cues are broad (\"suggest\", \"indicate\", \"or\", \"whether\", \"appear\"); "
              "its scopes start at the cue and run to the end of the clause, which NegEx's windows (a termination word "
              "or the sentence end) only approximate.",
              "", f"Run time: abstracts {res['abstracts']['seconds']:.0f} s, full papers {res['full_papers']['seconds']:.0f} s "
              "(four NegEx passes per sentence, every word a candidate)."]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {a.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
