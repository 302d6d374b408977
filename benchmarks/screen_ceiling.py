"""How far the cascade could go on these cores: issue #32's teacher ratios against the ceiling that
the measured student rate and pass fractions allow, from committed screening runs (no new timing).

For each run and stream: the full cascade's ideal rate is the student-alone rate divided by the
fraction of sentences the cascade passes to it (every step around the encoder free); the bar's
rate is the ratio times the teacher's measured rate; the student-alone rate the bar would need at
that pass fraction, and the share of the ideal it would need at the measured student rate.

  python benchmarks/screen_ceiling.py [--run reports/screen_speed/screen_speed.json ...] \
      [--out reports/screen_speed/ceiling]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = [REPO / "reports" / "screen_speed" / "screen_speed.json",
        REPO / "reports" / "screen_speed" / "screen_speed_onnx.json"]
BAR = {"A": 3000, "B": 10000}  # x the teacher, issue #32


def ceiling(run: dict) -> list[dict]:
    teacher = run["teacher"]["sentences_per_s"]
    out = []
    for stream, ratio in BAR.items():
        alone = next(r for r in run["rows"] if r["stream"] == stream and r["row"] == "student alone")
        full = next(r for r in run["rows"] if r["stream"] == stream and r["part"] == "stream" and "gate" in r["row"])
        ideal = alone["sentences_per_s"] / full["passed_to_student"]
        need = ratio * teacher
        out.append({"stream": stream, "bar_x_teacher": ratio, "teacher_sentences_per_s": teacher,
                    "student_alone_sentences_per_s": alone["sentences_per_s"],
                    "passed_to_student": full["passed_to_student"], "ideal_sentences_per_s": round(ideal, 1),
                    "ideal_x_teacher": round(ideal / teacher), "measured_x_teacher": full["x_teacher"],
                    "bar_sentences_per_s": round(need, 1), "share_of_ideal_needed": round(need / ideal, 3),
                    "student_alone_needed": round(need * full["passed_to_student"], 1)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, action="append")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "screen_speed" / "ceiling")
    a = ap.parse_args()
    runs = a.run or RUNS
    res = {"runs": {str(p.relative_to(REPO)): ceiling(json.loads(p.read_text())) for p in runs}}
    lines = ["# The cascade's ceiling on these cores (issue #32)", "",
             "Made by `python benchmarks/screen_ceiling.py` from the committed runs below (each made in one run on 2 "
             "cores; their commands are in the files). Ideal: the student-alone rate over the share of sentences the "
             "full cascade passes to it, as if every step around the encoder were free.", "",
             "| run | stream | bar (x teacher) | teacher sentences/s | student alone sentences/s | passed to the student "
             "| ideal sentences/s | ideal x teacher | measured x teacher | share of the ideal the bar needs "
             "| student-alone rate the bar needs |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in res["runs"].items():
        for r in rows:
            lines.append(f"| {name} | {r['stream']} | {r['bar_x_teacher']:,} | {r['teacher_sentences_per_s']} | "
                         f"{r['student_alone_sentences_per_s']} | {r['passed_to_student']:.1%} | "
                         f"{r['ideal_sentences_per_s']:,.0f} | {r['ideal_x_teacher']:,} | {r['measured_x_teacher']:,} | "
                         f"{r['share_of_ideal_needed']:.0%} | {r['student_alone_needed']:,.0f} |")
    lines += ["", "A share above 100% means no cascade around that student can meet the bar on these cores, however "
              "cheap its other steps: the encoder itself would have to run faster by that factor."]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
