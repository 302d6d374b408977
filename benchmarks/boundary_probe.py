"""Issue #30's last repair lever, probed before any student is trained on it: the teacher's own
log-probabilities of candidate boundaries of the effects it marked. No gold label is read.

For each sentence of the dev split of fold 0's train part (benchmarks/distill_gap_dev.py's split,
whole documents) that the JSON view gave a pair, and for each effect span in it: the candidates are
the span itself and the span one word longer or shorter at either edge (never onto punctuation, never
onto its drug). Each candidate is written into the lines answer (``drug => effect`` per pair, the
other pairs as the teacher gave them, then its end-of-turn token) and the teacher scores the whole
answer teacher-forced (LlamaScorer: the lines teacher's prompt for that sentence, the prefix kept in
the KV cache). Two selection rules: the highest total log-probability, and the highest mean
log-probability a token. Yardstick: the held-out effects-first view of the same teacher
(distill_gap_dev.py's), the view no variant trains on: how often is the chosen span exactly one of
its effect spans, against how often the teacher's own span is.

  python benchmarks/boundary_probe.py [--sentences 40] [--out reports/ade_distill_gap/boundary_probe]

Run it with nothing else on the machine: it also reports seconds a sentence, the lever's price.
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
sys.path.insert(0, str(REPO / "benchmarks"))

from distill_gap_dev import YARDSTICK, load_view  # noqa: E402

from ade_distill.core.paths import shown  # noqa: E402
from ade_distill.ingest import ingest_ade_splits  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.teacher.labeler import Teacher  # noqa: E402
from ade_distill.teacher.prompts import build_messages  # noqa: E402
from ade_distill.teacher.rescore import LlamaScorer  # noqa: E402
from ade_distill.teacher.settings import TeacherConfig  # noqa: E402
from ade_distill.workflows.student import dev_split  # noqa: E402

WORD = re.compile(r"[\w'-]+|[^\w\s]")
TEACHER = REPO / "pipelines" / "teachers" / "qwen1.5b-llamacpp-lines.yaml"


def candidates(text: str, start: int, end: int, avoid: tuple[int, int]) -> list[tuple[str, int, int]]:
    """(kind, start, end): the span, and one word more or less at either edge."""
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    inside = [j for j, (a, b) in enumerate(words) if a < end and b > start]
    if not inside:
        return []
    lo, hi = inside[0], inside[-1]
    out = [("teacher", start, end)]
    for kind, i, j in (("longer left", lo - 1, hi), ("longer right", lo, hi + 1),
                       ("shorter left", lo + 1, hi), ("shorter right", lo, hi - 1)):
        if i < 0 or j >= len(words) or i > j:
            continue
        edge = words[i] if "left" in kind else words[j]
        if "longer" in kind and not re.match(r"\w", text[edge[0]:edge[1]]):
            continue
        a, b = words[i][0], words[j][1]
        if a < avoid[1] and b > avoid[0]:
            continue
        out.append((kind, a, b))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=40)
    ap.add_argument("--teacher", type=Path, default=TEACHER)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "ade_distill_gap" / "boundary_probe")
    a = ap.parse_args()
    train_part = list(ingest_ade_splits(default_shared_data() / "ade_splits", 0, "train"))
    _, dev = dev_split(train_part, 0.1, seed=13)
    json_view, held_out = load_view("json", train_part), load_view(YARDSTICK, train_part)
    probe = [json_view[s.id] for s in dev if s.id in json_view and json_view[s.id].relations
             and s.id in held_out][: a.sentences]
    cfg = TeacherConfig.from_yaml(a.teacher)
    teacher = Teacher(cfg)
    scorer = LlamaScorer(cfg.model, n_ctx=2048, n_threads=cfg.n_threads)
    spans, t0 = [], time.monotonic()
    for s in probe:
        messages = build_messages(s.text, teacher.pick_shots(s.text), teacher.fmt)
        ents = {e.id: e for e in s.entities}
        pairs = [(ents[r.drug].text, ents[r.ade].text) for r in s.relations]
        yard = {(e.start, e.end) for e in held_out[s.id].entities if e.label == "ADE"}
        done = set()
        for i, r in enumerate(s.relations):
            ade, drug = ents[r.ade], ents[r.drug]
            if ade.id in done:
                continue
            done.add(ade.id)
            scored = []
            for kind, b0, b1 in candidates(s.text, ade.start, ade.end, (drug.start, drug.end)):
                answer = list(pairs)
                answer[i] = (pairs[i][0], s.text[b0:b1])
                toks = scorer.score(messages, teacher.fmt.render(answer), end=True)
                total = sum(t.logprob for t in toks)
                scored.append({"kind": kind, "span": [b0, b1], "total": total, "mean": total / max(len(toks), 1),
                               "held_out": (b0, b1) in yard})
            if len(scored) > 1:
                spans.append({"sentence": s.id, "candidates": scored,
                              "by_total": max(scored, key=lambda c: c["total"])["kind"],
                              "by_mean": max(scored, key=lambda c: c["mean"])["kind"]})
    seconds = time.monotonic() - t0
    scorer.close()

    def agree(kind_of) -> int:  # spans whose chosen candidate is one of the held-out view's
        return sum(next(c["held_out"] for c in sp["candidates"] if c["kind"] == kind_of(sp)) for sp in spans)

    n = len(spans)
    rules = {"teacher's own span": agree(lambda sp: "teacher"),
             "highest total log-probability": agree(lambda sp: sp["by_total"]),
             "highest mean log-probability a token": agree(lambda sp: sp["by_mean"])}
    changed = {r: sum(sp[k] != "teacher" for sp in spans) for r, k in
               (("highest total log-probability", "by_total"), ("highest mean log-probability a token", "by_mean"))}
    kinds = {r: {k: sum(sp[key] == k for sp in spans) for k in ("teacher", "longer left", "longer right",
                                                                  "shorter left", "shorter right")}
             for r, key in (("highest total log-probability", "by_total"),
                            ("highest mean log-probability a token", "by_mean"))}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    cmd = ("python benchmarks/boundary_probe.py " + " ".join(shown(x) for x in sys.argv[1:])).strip()
    with_pairs = sum(1 for x in train_part if x.id in json_view and json_view[x.id].relations)
    res = {"command": cmd, "git_commit": commit, "teacher": shown(a.teacher), "sentences": len(probe),
           "effect_spans": n, "scorings": sum(len(sp["candidates"]) for sp in spans),
           "seconds": round(seconds, 1), "seconds_per_sentence": round(seconds / max(len(probe), 1), 2),
           "teacher_hours_fold0_train": round(seconds / max(len(probe), 1) * with_pairs / 3600, 2),
           "agree_with_held_out_view": rules, "changed": changed, "chosen_kind": kinds, "spans": spans}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = ["# Boundaries by the teacher's own log-probabilities: a probe (issue #30)", "",
             f"Made by `{cmd}` (git {commit}), one run on 2 cores with nothing else running. {len(probe)} sentences "
             f"of the dev split of fold 0's train part that the JSON view gave a pair, {n} effect spans with more "
             f"than one candidate, {res['scorings']} teacher-forced scorings of a whole lines answer "
             f"({shown(a.teacher)}'s prompt): **{res['seconds_per_sentence']} s a sentence**, about "
             f"{res['teacher_hours_fold0_train']:.1f} teacher hours at that rate for the {with_pairs:,} sentences of "
             f"fold 0's train part ({len(train_part):,}) that the JSON view gave a pair.", "",
             "| boundary chosen by | the same span as the held-out effects view | share | changed from the teacher's span |",
             "|---|---|---|---|"]
    for rule, k in rules.items():
        lines.append(f"| {rule} | {k} of {n} | {k / max(n, 1):.1%} | {changed.get(rule, 0)} |")
    lines += ["", "Which candidate each rule chose (of the span itself and one word more or less at either edge):", "",
              "| rule | " + " | ".join(kinds["highest total log-probability"]) + " |",
              "|---|" + "---|" * len(kinds["highest total log-probability"])]
    for rule, ks in kinds.items():
        lines.append(f"| {rule} | " + " | ".join(str(v) for v in ks.values()) + " |")
    lines += ["", "A rule that moved boundaries toward the truth would agree with an independent reading more often "
              "than the teacher's own spans do; the per-span candidates and their scores are in the JSON beside this "
              "file."]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
