"""CPU extraction speed of a student folder, fp32 against int8 (dynamic quantization), and
the F1 change int8 causes, measured side by side in one run.

  python benchmarks/cpu_extract.py --model DIR --gold SENTENCES.jsonl [--threads 2] [--repeats 3]

Prints one JSON object: median sentences/second at batch 32 over the whole file and at
batch 1 over its first 64 sentences, for fp32 and int8, their ratio, and strict entity and
relation F1 of both against the gold file.
"""

import argparse
import json
import statistics
import time

import torch

from ade_distill.evaluate import evaluate
from ade_distill.core.schema import read_sentences
from ade_distill.student import Student


def rate(ex, sents, repeats):
    ex.predict(sents[:16])
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        ex.predict(sents)
        times.append(time.perf_counter() - t)
    return len(sents) / statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--gold", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gold = list(read_sentences(args.gold))
    out = {"threads": args.threads, "sentences": len(gold), "torch": torch.__version__}
    for q in ("none", "int8"):
        ex32 = Student.from_pretrained(args.model, quantize=q, batch_size=32)
        ex1 = Student.from_pretrained(args.model, quantize=q, batch_size=1)
        preds = ex32.predict(gold)
        m = evaluate(gold, {"x": preds}, n_bootstrap=0)["systems"]["x"]
        out[q] = {"sentences_per_second_b32": rate(ex32, gold, args.repeats),
                  "sentences_per_second_b1": rate(ex1, gold[:64], args.repeats),
                  "entity_f1": m["entity"]["strict"]["micro"]["f1"],
                  "relation_f1": m["relation"]["strict"]["micro"]["f1"]}
    out["int8_speedup_b32"] = out["int8"]["sentences_per_second_b32"] / out["none"]["sentences_per_second_b32"]
    out["int8_relation_f1_change"] = out["int8"]["relation_f1"] - out["none"]["relation_f1"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
