"""The teacher's inconsistency over the whole teacher-labelled ADE-Corpus-V2 (issue #30), per view
and for the views aggregated: how often a string it marks as DRUG/ADE (at least twice) is marked
at another whole-word occurrence with the same boundaries, with other boundaries, or not at all;
how many sentences it answered with nothing; and what the corpus-level repair would add. No gold
label is read.

  python benchmarks/distill_gap_tables.py [--out reports/ade_distill_gap/consistency]

Reads the committed packed labels (data/teacher_labels/) laid onto the 4,272 positive sentences
of the SpERT splits (../shared/data, or $ADE_DISTILL_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.core.paths import shown  # noqa: E402
from ade_distill.core.labels import read_unpacked  # noqa: E402
from ade_distill.ingest import ingest_ade_splits  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.teacher.consistency import measure, propagate  # noqa: E402
from ade_distill.teacher.views import aggregate  # noqa: E402

LABELS = REPO / "data" / "teacher_labels"
VIEWS = {
    "json (ade-v2)": ["ade_fold0_train.qwen2.5-coder-1.5b.jsonl", "ade_fold0_test.qwen2.5-coder-1.5b.jsonl"],
    "lines (ade-v3-lines)": ["ade_fold0_train.qwen2.5-coder-1.5b.lines.jsonl",
                             "ade_fold0_test.qwen2.5-coder-1.5b.lines.jsonl"],
    "effects (ade-v4-effects)": ["ade_positive.qwen2.5-coder-1.5b.effects.jsonl"],
}


def load(files: list[str], sentences: list) -> dict:
    out = {}
    for f in files:
        if (LABELS / f).exists():
            out.update({s.id: s for s in read_unpacked(LABELS / f, sentences, unknown="skip")})
    return out


def rows_of(name: str, labelled: list) -> dict:
    c = measure(labelled)
    _, rep = propagate(labelled, consistency=c)
    return {"view": name, "sentences": c.sentences, "empty_answers": c.empty_answers,
            "labels": {r["label"]: r for r in c.rows()}, "repair": rep.to_json(),
            "most_missed": {lab: [[x.text, x.occurrences, x.exact, x.other_boundaries, x.unmarked]
                                  for x in c.most_missed(lab, 10)] for lab in ("DRUG", "ADE")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "ade_distill_gap" / "consistency")
    a = ap.parse_args()
    splits = default_shared_data() / "ade_splits"
    sentences = list(ingest_ade_splits(splits, 0, "train")) + list(ingest_ade_splits(splits, 0, "test"))
    views = {name: load(files, sentences) for name, files in VIEWS.items()}
    results = [rows_of(name, list(v.values())) for name, v in views.items() if v]
    common = [sid for sid in (s.id for s in sentences) if all(sid in v for v in views.values() if v)]
    if len([v for v in views.values() if v]) > 1:
        agg, stats = aggregate([[v[sid] for sid in common] for v in views.values() if v])
        results.append({**rows_of(f"all views aggregated (vote, empty answers abstain; the {len(common):,} "
                                  "sentences every view has)", agg), "aggregate": stats.to_json()})
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    cmd = "python benchmarks/distill_gap_tables.py " + " ".join(shown(a) for a in sys.argv[1:])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"command": cmd.strip(), "git_commit": commit,
                                                       "results": results}, indent=2) + "\n")
    lines = ["# How consistently the teacher marks the same words (no gold)", "",
             f"Made by `{cmd.strip()}` (git {commit}) from the committed packed labels in data/teacher_labels/, "
             f"over the {len(sentences):,} positive ADE-Corpus-V2 sentences (every one reports an adverse effect). "
             "For each string a view marks as DRUG or ADE at least twice (lower-cased word and punctuation tokens), "
             "every whole-token occurrence of it in the sentences that view labelled: marked with the same "
             "boundaries, marked with other boundaries (an overlapping mark of that label), or left unmarked.", "",
             "| view | sentences labelled | answered with nothing | label | strings | occurrences | same boundaries | "
             "other boundaries | unmarked |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for lab in ("DRUG", "ADE"):
            x = r["labels"][lab]
            lines.append(f"| {r['view']} | {r['sentences']:,} | {r['empty_answers']:,} "
                         f"({r['empty_answers'] / max(r['sentences'], 1):.1%}) | {lab} | {x['strings']:,} | "
                         f"{x['occurrences']:,} | {x['marked_same_boundaries']:,} | {x['marked_other_boundaries']:,} "
                         f"({x['other_boundaries_share']:.1%}) | {x['unmarked']:,} ({x['unmarked_share']:.1%}) |")
    lines += ["", "## What the corpus-level repair adds (teacher/consistency.py `propagate`)", "",
              "A string marked at least twice and in at least 60% of its occurrences (4 characters or more) is added "
              "where no mark of its label touches it, with confidence = that share; relations: every drug x ADE pair in "
              "a sentence that has none after the repair, else an added span linked to the sentence's only entity of "
              "the other type.", "", "| view | DRUG spans added | ADE spans added | relations added | sentences changed |",
              "|---|---|---|---|---|"]
    for r in results:
        p = r["repair"]
        lines.append(f"| {r['view']} | {p['spans_added'].get('DRUG', 0):,} | {p['spans_added'].get('ADE', 0):,} | "
                     f"{p['relations_added']:,} | {p['sentences_changed']:,} |")
    lines += ["", "## The strings left unmarked most often (first view)", "",
              "| label | string | occurrences | same boundaries | other boundaries | unmarked |", "|---|---|---|---|---|---|"]
    for lab in ("DRUG", "ADE"):
        for text, occ, ex, ob, un in results[0]["most_missed"][lab]:
            lines.append(f"| {lab} | {text} | {occ} | {ex} | {ob} | {un} |")
    lines += ["", "Not every unmarked occurrence is a miss: the corpus annotates a drug or an effect only where the "
              "sentence says the drug caused the effect, so \"arthritis\" as the disease a drug was given for is rightly "
              "unmarked; the repair's share threshold leaves such strings alone (a string the teacher marks in under "
              "60% of its occurrences is not added)."]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {a.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
