"""Assertion flags measured on BioScope (issue #33): per sentence, does it hold a negation / a
speculation (precision, recall, F1 against BioScope's cues), and per word, does the flag's reach
cover BioScope's annotated scopes.

Two flaggers. **Learned** (post/cues.py, what the package ships): the cue tagger, scored on text it
was not trained on: on the abstracts, 10 folds by document, each fold's tagger trained on the other
nine folds and all full papers; on the full papers, a tagger trained on the abstracts alone.
**NegEx** (the baseline): negspacy's clinical negation termset and fixed speculation cue lists
(post/assertion.py), nothing trained.

  python benchmarks/pv_assertion.py [--out reports/pv_coding/assertion]
"""

from __future__ import annotations

import argparse
import json
import re
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
from ade_distill.post.cues import CueTagger, train  # noqa: E402

KINDS = {"negation": "negated", "speculation": "speculative"}
GOALS = {"negation": 0.90, "speculation": 0.80}
FOLDS = 10


def prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "fp": fp, "fn": fn}


class Counts:
    def __init__(self) -> None:
        self.c = {k: {"s": [0, 0, 0], "w": [0, 0, 0]} for k in KINDS}
        self.n = 0

    def add(self, s, flagged: dict[str, list[tuple[int, int]]]) -> None:
        """``flagged``: per kind, the spans the flagger says a cue of that kind reaches."""
        self.n += 1
        for kind in KINDS:
            gold, pred = s.has(kind), bool(flagged[kind])
            _tally(self.c[kind]["s"], gold, pred)
            # words: inside a scope of that kind (the cue words themselves aside) vs flagged
            cue_spans = [(a, b) for k, a, b, _ in s.cues if k == kind]
            scopes = s.scope_spans(kind)
            for m in re.finditer(r"[A-Za-z]+", s.text):
                a, b = m.span()
                if any(x <= a and b <= y for x, y in cue_spans):
                    continue
                _tally(self.c[kind]["w"], any(x <= a and b <= y for x, y in scopes),
                       any(x <= a and b <= y for x, y in flagged[kind]))

    def result(self) -> dict:
        return {"sentences": self.n, **{k: {"sentence": prf(*c["s"]), "scope_words": prf(*c["w"])}
                                       for k, c in self.c.items()}}


def _tally(c: list[int], gold: bool, pred: bool) -> None:
    c[0] += gold and pred
    c[1] += pred and not gold
    c[2] += gold and not pred


def learned(abstracts: list, papers: list) -> dict:
    docs = sorted({s.doc_id for s in abstracts})
    fold = {d: i % FOLDS for i, d in enumerate(docs)}
    out = {}
    t0 = time.monotonic()
    counts = Counts()
    for f in range(FOLDS):
        tagger = CueTagger(train([s for s in abstracts if fold[s.doc_id] != f] + papers))
        for s in abstracts:
            if fold[s.doc_id] == f:
                counts.add(s, tagger.scopes(s.text))
        print(f"  abstracts fold {f + 1}/{FOLDS}", file=sys.stderr)
    out["abstracts"] = {**counts.result(), "seconds": round(time.monotonic() - t0, 1)}
    t0 = time.monotonic()
    counts = Counts()
    tagger = CueTagger(train(abstracts))
    for s in papers:
        counts.add(s, tagger.scopes(s.text))
    out["full_papers"] = {**counts.result(), "seconds": round(time.monotonic() - t0, 1)}
    return out


def negex(abstracts: list, papers: list) -> dict:
    flagger = AssertionFlagger(cues=None)
    out = {}
    for part, sents in (("abstracts", abstracts), ("full_papers", papers)):
        t0 = time.monotonic()
        counts = Counts()
        for s in sents:
            wf = flagger.word_flags(s.text)
            counts.add(s, {k: wf[flag] for k, flag in KINDS.items()})
        out[part] = {**counts.result(), "seconds": round(time.monotonic() - t0, 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "pv_coding" / "assertion")
    a = ap.parse_args()
    folder = default_shared_data() / "bioscope"
    abstracts = list(read_bioscope(folder / "abstracts.xml"))
    papers = list(read_bioscope(folder / "full_papers.xml"))
    res = {"learned": learned(abstracts, papers), "negex": negex(abstracts, papers)}
    shipped = CueTagger.load().weights
    res["shipped"] = {k: len(v["weights"]) for k, v in shipped.items()}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    cmd = ("python benchmarks/pv_assertion.py " + " ".join(shown(a) for a in sys.argv[1:])).strip()
    res.update(command=cmd, git_commit=commit)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    lines = ["# Assertion flags on BioScope", "",
             f"Made by `{cmd}` (git {commit}). Every BioScope sentence, each word a candidate event. **Sentence**: the "
             "sentence holds a cue of that kind (BioScope) vs the flagger finds one. **Scope words**: words inside an "
             "annotated scope of that kind (cue words aside) vs words inside the flagger's reach.", "",
             "- **learned** (what `--assertion` uses): the cue tagger of post/cues.py, a logistic regression over each "
             "word and its neighbours, its reach the cue's clause. Scored on text it did not see: abstracts by 10 folds "
             f"by document (each fold's tagger trained on the other nine and the full papers), full papers by a tagger "
             f"trained on the abstracts alone. The shipped weights (`python scripts/train_cues.py`, all of BioScope) "
             f"keep {res['shipped']['negation']:,} negation and {res['shipped']['speculation']:,} speculation features.",
             "- **NegEx** (the baseline, `AssertionFlagger(cues=None)`): negspacy's clinical negation termset and fixed "
             "speculation cue lists, nothing trained.", "",
             "| flagger | set | kind | sentences | sentence P / R / F1 | goal (F1, abstracts) | scope words P / R / F1 |",
             "|---|---|---|---|---|---|---|"]
    for who in ("learned", "negex"):
        for part in ("abstracts", "full_papers"):
            r = res[who][part]
            for kind in KINDS:
                s, w = r[kind]["sentence"], r[kind]["scope_words"]
                goal = (f">= {GOALS[kind]:.2f} ({'met' if s['f1'] >= GOALS[kind] else 'not met'})"
                        if part == "abstracts" else "")
                lines.append(f"| {'learned' if who == 'learned' else 'NegEx'} | {part.replace('_', ' ')} | {kind} | "
                             f"{r['sentences']:,} | {s['precision']:.3f} / {s['recall']:.3f} / {s['f1']:.3f} | {goal} | "
                             f"{w['precision']:.3f} / {w['recall']:.3f} / {w['f1']:.3f} |")
    lines += ["", "The tagger's reach is a rule fixed before it was measured (from the start of the cue's clause to its "
              "next break: a semicolon, colon, bracket, or but / however / although / whereas / while / which), not "
              "learned; BioScope's scopes start at the cue and include a passive subject, which the rule approximates.",
              "", "Run time (training included for the learned rows): " + ", ".join(
                  f"{who} {part.replace('_', ' ')} {res[who][part]['seconds']:.0f} s"
                  for who in ("learned", "negex") for part in ("abstracts", "full_papers")) + "."]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {shown(a.out.with_suffix('.md'))}")


if __name__ == "__main__":
    main()
