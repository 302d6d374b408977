"""CPU extraction paths side by side in one run: torch fp32, torch int8 (dynamic quantization),
ONNX Runtime fp32 and ONNX Runtime int8, on the same sentences, same threads.

  python benchmarks/cpu_runtimes.py --model DIR [--gold SENTENCES.jsonl] [--threads 2] [--repeats 3] \
      [--out reports/screen/cpu_runtimes.json]

Whole-run throughput: sentences / wall seconds of predict() over the whole file (tokenising,
encoder, span decoding and relation pairing), the median of ``repeats`` passes after a warm-up
pass; strict entity and relation F1 against the gold file for each path (default gold: ADE fold 0
test from ../shared/data). Run it with nothing else on the machine. Prints and writes JSON and a
Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from ade_distill.evaluate import evaluate  # noqa: E402
from ade_distill.schema import read_sentences  # noqa: E402
from ade_distill.student import Student  # noqa: E402

PATHS = [("torch fp32", "torch", None), ("torch int8", "torch", "int8"), ("onnx fp32", "onnx", None),
         ("onnx int8", "onnx", "int8")]


def whole_run(st: Student, sents, repeats: int) -> float:
    st.predict(sents[:64])
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        st.predict(sents)
        times.append(time.perf_counter() - t)
    return len(sents) / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--gold", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "screen" / "cpu_runtimes.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.gold:
        gold = list(read_sentences(a.gold))
        what = str(a.gold)
    else:
        from ade_distill.ingest import ingest_ade_splits
        from ade_distill.pipeline import default_shared_data

        gold = list(ingest_ade_splits(default_shared_data() / "ade_splits", 0, "test"))
        what = f"ADE-Corpus-V2 fold 0 test ({len(gold)} sentences)"
    work = Path(tempfile.mkdtemp(prefix="ade-rt-"))  # the export goes into a copy, not the original folder
    model = work / "model"
    shutil.copytree(a.model, model, ignore=shutil.ignore_patterns("checkpoint", "onnx"))
    rows = []
    for name, runtime, q in PATHS:
        st = Student.from_pretrained(model, runtime=runtime, quantize=q, threads=a.threads, batch_size=a.batch_size,
                                     device="cpu")
        rate = whole_run(st, gold, a.repeats)
        preds = st.predict(gold)
        m = evaluate(gold, {"x": preds}, n_bootstrap=0)["systems"]["x"]
        rows.append({"path": name, "sentences_per_second": round(rate, 1),
                     "entity_f1": round(100 * m["entity"]["strict"]["micro"]["f1"], 2),
                     "relation_f1": round(100 * m["relation"]["strict"]["micro"]["f1"], 2)})
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    for r in rows:
        r["speedup"] = round(r["sentences_per_second"] / base["sentences_per_second"], 2)
        r["relation_f1_change"] = round(r["relation_f1"] - base["relation_f1"], 2)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    out = {"command": "python benchmarks/cpu_runtimes.py " + " ".join(sys.argv[1:]), "git_commit": commit,
           "model": str(a.model), "sentences": what, "threads": a.threads, "batch_size": a.batch_size,
           "cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__, "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    md = ["# CPU extraction paths side by side", "",
          f"Made by `{out['command']}` (git {commit}) on {os.cpu_count()} cores, {a.threads} threads, batch "
          f"{a.batch_size}; {what}; whole-run sentences/s (median of {a.repeats} passes); strict F1.", "",
          "| path | sentences/s | x torch fp32 | entity F1 | relation F1 | relation F1 change |", "|---|---|---|---|---|---|"]
    md += [f"| {r['path']} | {r['sentences_per_second']:.1f} | {r['speedup']:.2f} | {r['entity_f1']:.1f} | "
           f"{r['relation_f1']:.1f} | {r['relation_f1_change']:+.1f} |" for r in rows]
    a.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
