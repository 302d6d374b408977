"""Is a faster teacher variant as good as today's? All of ADE fold 0 test, against gold.

  python benchmarks/teacher_quality.py --teacher pipelines/teachers/qwen1.5b-llamacpp-lines.yaml \
      --out reports/teacher_speed/quality.json --labels data/teacher_labels/ade_fold0_test.qwen2.5-coder-1.5b.lines.jsonl

Labels the 427 test sentences with the given teacher (cached and resumable under runs/, so an
interrupted run goes on where it stopped) and scores them with the committed labels of today's
teacher (data/teacher_labels/, the labels every reported number used) against gold: strict F1
with 1,000-resample bootstrap intervals, and a paired bootstrap of the difference. The speed
benchmark (teacher_speed.py) measures 40 sentences; this is the quality half of the 2x target
("relation F1 on fold 0 test within the current bootstrap interval"). Writes JSON and a table;
with --labels also the variant's labels, packed (ids, offsets, labels, confidences; no text).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from ade_distill.evaluate import evaluate
from ade_distill.ingest import ingest_ade_splits
from ade_distill.core.labels import read_unpacked, write_packed
from ade_distill.core.schema import read_sentences
from ade_distill.teacher import Teacher, TeacherConfig

SHARED = Path(os.environ.get("ADE_DISTILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TODAY = "data/teacher_labels/ade_fold0_test.qwen2.5-coder-1.5b.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", required=True, help="teacher YAML of the variant")
    ap.add_argument("--today", default=TODAY, help="packed labels of today's teacher on fold 0 test")
    ap.add_argument("--work", default="runs/teacher_quality", help="labels and cache of the variant (resumable)")
    ap.add_argument("--out", default="reports/teacher_speed/quality.json")
    ap.add_argument("--labels", help="also write the variant's labels here, packed (no text)")
    ap.add_argument("--limit", type=int, help="only the first N test sentences (file order), for costly variants")
    ap.add_argument("--today-name", default="today's teacher (committed labels)",
                    help="what to call the --today labels in the table")
    args = ap.parse_args()

    gold = list(ingest_ade_splits(SHARED / "ade_splits", fold=0, part="test"))[:args.limit]
    cfg = TeacherConfig.from_yaml(args.teacher)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = cfg.model_copy(update={"cache": str(work / "cache.sqlite")})
    out = work / "labels.jsonl"
    t0 = time.monotonic()
    with Teacher(cfg) as teacher:
        stats = teacher.label(gold, out)
    wall = time.monotonic() - t0
    variant = list(read_sentences(out))
    if len(variant) != len(gold):
        print(f"{len(gold) - len(variant)} sentences failed (see {out.with_suffix('.failures.jsonl')}); "
              "rerun to retry them", file=sys.stderr)
        return 1
    today = list(read_unpacked(args.today, gold, unknown="skip"))
    name_today, name_variant = args.today_name, f"variant ({Path(args.teacher).name})"
    metrics = evaluate(gold, {name_today: today, name_variant: variant}, n_bootstrap=1000)
    rows = []
    for name in (name_today, name_variant):
        m = metrics["systems"][name]
        row = {"system": name}
        for key, part in (("relation_strict", m["relation"]["strict"]["micro"]),
                          ("entity_strict", m["entity"]["strict"]["micro"])):
            row[key] = {"p": round(100 * part["precision"], 1), "r": round(100 * part["recall"], 1),
                        "f1": round(100 * part["f1"], 1), "ci": [round(100 * x, 1) for x in part["ci"]]}
        rows.append(row)
    paired = metrics["paired_bootstrap"][f"{name_today} vs {name_variant}"]
    lo, hi = rows[0]["relation_strict"]["ci"]
    result = {"command": "python " + shlex.join(sys.argv), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "sentences": len(gold), "teacher": cfg.model_dump(exclude={"cache"}),
              "prompt_version": cfg.prompt.answer_format.version, "rows": rows,
              "paired_bootstrap": paired, "agreement": metrics["agreement"],
              "variant_labelling": {"wall_s_this_run": round(wall, 1), "calls_this_run": stats.calls,
                                    "note": "labelling wall time shares the machine with whatever ran; "
                                            "speed is measured in speed.md, not here"},
              "within_todays_interval": lo <= rows[1]["relation_strict"]["f1"] <= hi}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.labels:
        write_packed(variant, args.labels)
    which = f"the first {len(gold)}" if args.limit else f"all {len(gold)}"
    md = [f"Made by `{result['command']}` on {result['time']}: {which} sentences of ADE fold 0 test, "
          "strict F1 against gold with 95% bootstrap intervals (1,000 resamples over sentences).", "",
          "| teacher | relation P / R / F1 (interval) | entity P / R / F1 (interval) |", "|---|---|---|"]
    for r in rows:
        rel, ent = r["relation_strict"], r["entity_strict"]
        md.append(f"| {r['system']} | {rel['p']} / {rel['r']} / {rel['f1']} ({rel['ci'][0]}-{rel['ci'][1]}) | "
                  f"{ent['p']} / {ent['r']} / {ent['f1']} ({ent['ci'][0]}-{ent['ci'][1]}) |")
    rel_p = paired["relation.strict"]
    md += ["", f"Paired bootstrap, relation strict: {name_today} better in {100 * rel_p['p_a_better']:.1f}% of "
           f"resamples, the variant in {100 * rel_p['p_b_better']:.1f}%. The variant's relation F1 "
           f"{'lies' if result['within_todays_interval'] else 'does not lie'} within {name_today}'s interval "
           f"({lo}-{hi})."]
    Path(args.out).with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
