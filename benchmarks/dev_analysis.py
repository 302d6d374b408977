"""Where a distilled student and its teacher disagree, measured without gold: on the dev split of
benchmarks/dev_selection.py (teacher-labelled fold 0 train sentences held out by document), the
student's relations are compared with the teacher's labels.

  python benchmarks/dev_analysis.py --model runs/dev_selection/base \
      [--o-scale 1.0 0.8 0.7 0.6] [--out reports/ade_benchmark/dev_analysis]

1. Relation disagreements, split by cause: a pair both systems have the entities for but pair
   differently (the relation head), or a pair whose drug or ADE span one side lacks (the tagger).
   Entity disagreements are split into boundary ones (an overlapping span on the other side) and
   whole misses or extras.
2. A decoding sweep: each word's O probability in both tag layers scaled by ``o_scale`` (< 1 tags
   more words) before Viterbi decoding, scored against the teacher on dev with paired bootstrap
   against 1.0. Decoding only; the model is not retrained.

No gold label and no test sentence is read. Writes dev_analysis.json and .md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import ade_distill.student.extract as extract  # noqa: E402
from ade_distill.evaluate import evaluate  # noqa: E402
from ade_distill.ingest import ingest_ade_splits  # noqa: E402
from ade_distill.core.labels import read_unpacked  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.student.model import load_student  # noqa: E402
from ade_distill.workflows.student import dev_split  # noqa: E402

TRAIN = REPO / "data" / "teacher_labels" / "ade_fold0_train.qwen2.5-coder-1.5b.jsonl"


def spans(s, label: str) -> set[tuple[int, int]]:
    return {(e.start, e.end) for e in s.entities if e.label == label}


def pairs(s) -> set[tuple[tuple[int, int], tuple[int, int]]]:
    by_id = {e.id: e for e in s.entities}
    return {((by_id[r.drug].start, by_id[r.drug].end), (by_id[r.ade].start, by_id[r.ade].end)) for r in s.relations}


def overlaps(span, others) -> bool:
    return any(o[0] < span[1] and span[0] < o[1] for o in others)


def disagreements(teacher, student) -> dict:
    c: Counter = Counter({f"relation {key}: pairing (the other side has both spans)": 0
                          for key in ("student only", "teacher only")})  # shown even when none
    for t, p in zip(teacher, student):
        tp, pp = pairs(t), pairs(p)
        ents = {side: {lab: spans(s, lab) for lab in ("DRUG", "ADE")} for side, s in (("t", t), ("s", p))}
        c["relations agreed"] += len(tp & pp)
        for (d, a), mine, other, key in [(x, "s", "t", "student only") for x in pp - tp] + \
                                        [(x, "t", "s", "teacher only") for x in tp - pp]:
            has_d, has_a = d in ents[other]["DRUG"], a in ents[other]["ADE"]
            cause = ("pairing (the other side has both spans)" if has_d and has_a else
                     "ADE span" if has_d else "drug span" if has_a else "both spans")
            c[f"relation {key}: {cause}"] += 1
        for lab in ("DRUG", "ADE"):
            T, P = ents["t"][lab], ents["s"][lab]
            c[f"{lab} agreed"] += len(T & P)
            for s_ in T - P:
                c[f"{lab} teacher only: {'boundary' if overlaps(s_, P) else 'missed by the student'}"] += 1
            for s_ in P - T:
                c[f"{lab} student only: {'boundary' if overlaps(s_, T) else 'extra'}"] += 1
    return dict(sorted(c.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--o-scale", type=float, nargs="+", default=[1.0, 0.8, 0.7, 0.6])
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "ade_benchmark" / "dev_analysis")
    a = ap.parse_args()
    gold_train = list(ingest_ade_splits(default_shared_data() / "ade_splits", 0, "train"))
    labelled = list(read_unpacked(TRAIN, gold_train, unknown="skip"))  # the teacher's labels only
    _, dev = dev_split(labelled, a.share, seed=a.seed)
    model, tok = load_student(a.model)
    decode = extract.spans_from_word_predictions
    preds = {}
    for k in a.o_scale:
        def scaled(text, words, probs, decoding="viterbi", k=k):
            j = np.asarray(probs, dtype=np.float64).reshape(-1, 3, 3).copy()
            j[:, 0, :] *= k  # O in the DRUG layer
            j[:, :, 0] *= k  # O in the ADE layer
            return decode(text, words, (j / j.sum((1, 2), keepdims=True)).reshape(-1, 9), decoding)

        extract.spans_from_word_predictions = scaled
        preds[f"o_scale {k:g}"] = extract.predict_sentences(model, tok, dev)
    extract.spans_from_word_predictions = decode
    m = evaluate(dev, preds, n_bootstrap=1000, seed=a.seed)
    base = f"o_scale {a.o_scale[0]:g}"
    sweep = []
    for name in preds:
        r, e = m["systems"][name]["relation"]["strict"]["micro"], m["systems"][name]["entity"]["strict"]["micro"]
        pb = m["paired_bootstrap"].get(f"{base} vs {name}", {}).get("relation.strict")
        sweep.append({"decoding": name, "relation": {k: round(100 * r[k], 2) for k in ("precision", "recall", "f1")},
                      "relation_ci": [round(100 * x, 2) for x in r["ci"]], "entity_f1": round(100 * e["f1"], 2),
                      "better_than_first": pb["p_b_better"] if pb else None})
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    training = json.loads((a.model / "training.json").read_text())
    result = {"command": "python benchmarks/dev_analysis.py " + " ".join(sys.argv[1:]), "git_commit": commit,
              "model": str(a.model), "model_recipe": training["config"], "model_train_sentences": training["train_sentences"],
              "dev_sentences": len(dev), "yardstick": "the teacher's labels on the dev split (no gold)",
              "disagreements": disagreements(dev, preds[base]), "decoding_sweep": sweep}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    d = result["disagreements"]
    lines = ["# Where the distilled student and its teacher disagree (dev split, no gold)", "",
             f"Made by `{result['command']}` (git {commit}). The student ({a.model.name}: "
             f"{training['train_sentences']:,} teacher-labelled sentences, {training['config']['layers']} layers, "
             f"{training['config']['epochs']} epochs) against the teacher's labels on {len(dev):,} held-out dev "
             "sentences (whole documents; benchmarks/dev_selection.py's split).", "",
             "## Relations: pairing or spans?", "", "| count | what |", "|---|---|"]
    lines += [f"| {v:,} | {k} |" for k, v in d.items() if k.startswith("relation")]
    lines += ["", "## Entities", "", "| count | what |", "|---|---|"]
    lines += [f"| {v:,} | {k} |" for k, v in d.items() if not k.startswith("relation")]
    lines += ["", "## Decoding sweep: scale each word's O probability before Viterbi", "",
              f"| decoding | relation P / R / F1 (CI) | entity F1 | better than {base} (paired resamples) |",
              "|---|---|---|---|"]
    for r in sweep:
        rel = r["relation"]
        better = f"{r['better_than_first']:.1%}" if r["better_than_first"] is not None else "-"
        lines.append(f"| {r['decoding']} | {rel['precision']:.1f} / {rel['recall']:.1f} / {rel['f1']:.1f} "
                     f"({r['relation_ci'][0]:.1f}-{r['relation_ci'][1]:.1f}) | {r['entity_f1']:.1f} | {better} |")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
