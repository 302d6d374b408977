"""The synthesize answer formats side by side (issue #34): the same seeds, the same teacher, the same
checks, one format after the other in one process, each from its own empty cache.

  python benchmarks/synth_answer_ab.py [--seeds 40] [--teacher pipelines/teachers/qwen1.5b-llamacpp-lines.yaml]
      [--corpus runs/synth/corpus.jsonl --exclude runs/synth/exclude.jsonl] [--out reports/synthetic/answer_ab]

json: the teacher writes {"sentence", "ades"} under a JSON grammar; plain: the sentence alone, labelled
with the seed's pairs. Both try the first --seeds seeds of the pool's seed list (scripts/prepare_synthetic.py
makes the corpus and exclusion files). Reported per format: sentences kept, kept per teacher hour (the
figure that decides how many sentences a background run yields), completion tokens per call, and the
reasons for what was dropped. Writes <out>.md and <out>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ade_distill.workflows.synthesize import synthesize

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--teacher", default=str(REPO / "pipelines" / "teachers" / "qwen1.5b-llamacpp-lines.yaml"))
    ap.add_argument("--corpus", default="runs/synth/corpus.jsonl")
    ap.add_argument("--exclude", default="runs/synth/exclude.jsonl")
    ap.add_argument("--out", default=str(REPO / "reports" / "synthetic" / "answer_ab"))
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for answer in ("json", "plain"):
            out = Path(tmp) / answer / "synthetic.jsonl"
            out.parent.mkdir()
            t0 = time.monotonic()
            # n = seeds with max_tries 1: exactly the first --seeds seeds are tried, whatever is kept
            r = synthesize(a.corpus, out, a.teacher, n=a.seeds, max_tries=1.0, exclude=a.exclude, answer=answer,
                           cache=str(Path(tmp) / answer / "cache.sqlite"), progress=False)
            wall = time.monotonic() - t0
            s = r.stats
            rows.append({"answer": answer, "tried": s.total_kept + sum(s.rejected.values()), "kept": s.total_kept,
                         "calls": s.calls, "completion_tokens": s.completion_tokens, "prompt_tokens": s.prompt_tokens,
                         "teacher_seconds": round(s.teacher_seconds, 1), "wall_seconds": round(wall, 1),
                         "kept_per_teacher_hour": round(s.total_kept / (s.teacher_seconds / 3600), 1)
                         if s.teacher_seconds else None,
                         "rejected": dict(s.rejected.most_common()), "diversity": {
                             k: v for k, v in r.diversity.items() if k != "top_openings"}})
            print(json.dumps(rows[-1]), flush=True)
    cmd = "python benchmarks/synth_answer_ab.py --seeds {} --teacher {}".format(
        a.seeds, Path(a.teacher).resolve().relative_to(REPO) if Path(a.teacher).resolve().is_relative_to(REPO) else a.teacher)
    lines = [f"Made by `{cmd}` on {time.strftime('%Y-%m-%dT%H:%M:%S')}: the first {a.seeds} seeds of the folds 0-2 "
             "pool, each format from an empty cache, one after the other in one process (2 CPU cores, nothing else "
             "running).", "",
             "| answer | seeds tried | kept | teacher calls | completion tokens / call | teacher s | kept / teacher hour | dropped |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per_call = r["completion_tokens"] / r["calls"] if r["calls"] else 0
        dropped = "; ".join(f"{k} {v}" for k, v in r["rejected"].items()) or "-"
        lines.append(f"| {r['answer']} | {r['tried']} | {r['kept']} | {r['calls']} | {per_call:.1f} | "
                     f"{r['teacher_seconds']:.0f} | {r['kept_per_teacher_hour']} | {dropped} |")
    best = max(rows, key=lambda r: r["kept_per_teacher_hour"] or 0)
    lines += ["", f"More kept sentences per teacher hour: **{best['answer']}**."]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"-> {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
