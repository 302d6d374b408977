"""Does a student's answer for a sentence depend on the other sentences in its batch? The same
sentences predicted in batches of 32 and one at a time, per runtime; relations compared by their
spans. Dynamic int8 quantization scales activations per batch tensor, so its answers can move with
the batch; fp32 should not (padding is masked).

  python benchmarks/batch_invariance.py [--model DIR] [--n 200] [--out reports/serve/batch_invariance]
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
from ade_distill.ingest import ingest_ade_splits  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.student import Student  # noqa: E402

RUNTIMES = [("torch fp32", {}), ("torch int8 (dynamic)", {"quantize": "int8"}), ("onnx fp32", {"runtime": "onnx"}),
            ("onnx int8 (dynamic)", {"runtime": "onnx", "quantize": "int8"})]


def relations(preds) -> set:
    out = set()
    for s in preds:
        e = {x.id: x for x in s.entities}
        out |= {(s.id, e[r.drug].start, e[r.drug].end, e[r.ade].start, e[r.ade].end) for r in s.relations}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "runs" / "ade_10fold_negsamp" / "fold-0" / "train-distilled-negsamp" / "model")
    ap.add_argument("--n", type=int, default=200, help="ADE fold 0 test sentences")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "serve" / "batch_invariance")
    a = ap.parse_args()
    sents = list(ingest_ade_splits(default_shared_data() / "ade_splits", 0, "test"))[: a.n]
    rows = []
    reference = None  # torch fp32, one at a time: what every runtime's lone answers are compared with
    for name, kw in RUNTIMES:
        st = Student.from_pretrained(a.model, threads=2, **kw)
        st.batch_size = 32
        batched = relations(st.predict(sents))
        st.batch_size = 1
        alone = relations(st.predict(sents))
        reference = alone if reference is None else reference
        both = batched & alone
        rows.append({"runtime": name, "batch_32": len(batched), "one_at_a_time": len(alone), "same": len(both),
                     "jaccard": round(len(both) / max(len(batched | alone), 1), 3),
                     "alone_vs_fp32": round(len(alone & reference) / max(len(alone | reference), 1), 3)})
        print(json.dumps(rows[-1]), flush=True)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    cmd = ("python benchmarks/batch_invariance.py " + " ".join(shown(x) for x in sys.argv[1:])).strip()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "git_commit": commit, "model": shown(a.model),
                                                      "sentences": len(sents), "rows": rows}, indent=2) + "\n")
    lines = ["# Is a sentence's answer independent of its batch?", "",
             f"Made by `{cmd}` (git {commit}): the first {len(sents)} sentences of ADE fold 0 test, predicted by "
             f"{shown(a.model)} in batches of 32 and one at a time; drug -> ADE relations compared by their spans.", "",
             "| runtime | relations, batches of 32 | relations, one at a time | the same in both | Jaccard | one at a time vs torch fp32, Jaccard |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['runtime']} | {r['batch_32']} | {r['one_at_a_time']} | {r['same']} | {r['jaccard']:.3f} | "
              f"{r['alone_vs_fp32']:.3f} |" for r in rows]
    lines += ["", "A Jaccard below 1 means the runtime's answer for a sentence depends on which sentences share its "
              "batch: with `serve`, on which other callers' requests arrived at the same moment. Dynamic int8 "
              "quantization computes its activation scales per batch; one sentence a pass (`serve --model-batch 1`) "
              "makes a runtime's answer a function of the sentence alone, and the last column says how far that "
              "answer is from the float model's."]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {a.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
