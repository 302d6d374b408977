"""CPU extraction paths side by side in one run, on the same sentences and cores: torch fp32, torch
int8 (dynamic quantization), ONNX Runtime fp32, ONNX Runtime int8 by the previous recipe (one scale
per weight matrix, no fusion), ONNX Runtime int8 by today's recipe (transformer-optimizer fusion,
one scale per output channel), and today's int8 in 2 processes x 1 thread; then a roofline: the
encoder's floating-point work per sentence on this file against the matrix-multiply rate measured
on these cores, the most sentences/s the encoder alone could reach.

  python benchmarks/cpu_runtimes.py --model DIR [--gold SENTENCES.jsonl] [--threads 2] [--repeats 3] \
      [--out reports/screen/cpu_runtimes.json]

Whole-run throughput: sentences / wall seconds of predict() over the whole file (tokenising,
encoder, span decoding and relation pairing), the median of ``repeats`` passes after a warm-up
pass (2 processes: each predicts every other sentence, released together; wall time until both
finish); strict entity and relation F1 against the gold file for each path (default gold: ADE
fold 0 test from ../shared/data). Run it with nothing else on the machine. Prints and writes JSON
and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
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

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ade_distill.evaluate import evaluate  # noqa: E402
from ade_distill.core.schema import read_sentences  # noqa: E402
from ade_distill.student import Student  # noqa: E402

TARGET = 1000.0  # sentences/s, the target


def whole_run(st: Student, sents, repeats: int) -> float:
    st.predict(sents[:64])
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        st.predict(sents)
        times.append(time.perf_counter() - t)
    return len(sents) / statistics.median(times)


def _load(model: Path, kind: str, threads: int, batch_size: int) -> Student:
    if kind == "onnx int8 previous":
        from ade_distill.student.onnx import load_onnx_student

        m, tok = load_onnx_student(model, "int8", threads=threads)
        return Student(m, tok, batch_size=batch_size, device="cpu")
    runtime, q = {"torch fp32": ("torch", None), "torch int8": ("torch", "int8"), "onnx fp32": ("onnx", None),
                  "onnx int8": ("onnx", "int8")}[kind]
    return Student.from_pretrained(model, runtime=runtime, quantize=q, threads=threads, batch_size=batch_size,
                                   device="cpu")


def _worker(model, kind, batch_size, sents, repeats, barrier, results) -> None:
    torch.set_num_threads(1)
    st = _load(Path(model), kind, 1, batch_size)
    st.predict(sents[:64])
    for _ in range(repeats):
        barrier.wait()
        preds = st.predict(sents)
        barrier.wait()
    results.put(preds)  # pydantic records pickle as they are


def two_processes(model: Path, kind: str, gold, batch_size: int, repeats: int):
    """Throughput of 2 processes x 1 thread, each predicting every other sentence."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    parts = [gold[0::2], gold[1::2]]
    procs = [ctx.Process(target=_worker, args=(str(model), kind, batch_size, p, repeats, barrier, results))
             for p in parts]
    for p in procs:
        p.start()
    times = []
    for _ in range(repeats):
        barrier.wait()
        t = time.perf_counter()
        barrier.wait()
        times.append(time.perf_counter() - t)
    preds = [results.get(), results.get()]
    for p in procs:
        p.join()
    return len(gold) / statistics.median(times), [x for part in preds for x in part]


def _gemm_rates(h: int, inter: int, rows: int, threads: int) -> dict:
    """Measured multiply-accumulate rate on these cores at the encoder's matrix shapes: torch fp32 and
    ONNX Runtime's dynamically quantized int8 (the same MatMul, per-channel QInt8 weights)."""
    import onnx
    from onnx import TensorProto, helper
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.set_num_threads(threads)
    rates = {}
    for name, k, n in (("qkv/out", h, h), ("ffn up", h, inter), ("ffn down", inter, h)):
        x, w = torch.randn(rows, k), torch.randn(k, n)
        for _ in range(3):
            x @ w
        reps, t = 50, time.perf_counter()
        for _ in range(reps):
            x @ w
        fp32 = 2 * rows * k * n * reps / (time.perf_counter() - t)
        d = Path(tempfile.mkdtemp())
        g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])],
                              [helper.make_tensor("w", TensorProto.FLOAT, [k, n], w.numpy().ravel().tolist())])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), d / "f.onnx")
        quantize_dynamic(str(d / "f.onnx"), str(d / "q.onnx"), weight_type=QuantType.QInt8, per_channel=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        s = ort.InferenceSession(str(d / "q.onnx"), opts, providers=["CPUExecutionProvider"])
        xn = x.numpy()
        for _ in range(3):
            s.run(None, {"x": xn})
        t = time.perf_counter()
        for _ in range(reps):
            s.run(None, {"x": xn})
        int8 = 2 * rows * k * n * reps / (time.perf_counter() - t)
        shutil.rmtree(d, ignore_errors=True)
        rates[name] = {"fp32_gflops": round(fp32 / 1e9, 1), "int8_gops": round(int8 / 1e9, 1)}
    return rates


def roofline(model: Path, gold, threads: int) -> dict:
    """The encoder's multiply-add work per sentence on this file (token counts from the real
    tokenizer, no padding) and the most sentences/s the measured matrix-multiply rates allow."""
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(model)
    tok = AutoTokenizer.from_pretrained(model)
    lens = np.array([len(tok(s.text)["input_ids"]) for s in gold], dtype=np.float64)
    h, inter, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    dense = 2 * lens * layers * (4 * h * h + 2 * h * inter)      # Q, K, V, output; FFN up and down
    attn = 2 * layers * 2 * lens * lens * h                      # scores and weighted sum
    flops = float((dense + attn).mean())
    rows = 64 * int(lens.mean())  # a batch of 64 mean-length sentences
    rates = _gemm_rates(h, inter, rows=rows, threads=threads)
    # the dense work is 4 h x h matrices per layer and 2 FFN matrices: weight the rates by that work
    share = {"qkv/out": 4 * h * h, "ffn up": h * inter, "ffn down": h * inter}
    tot = sum(share.values())
    fp32 = tot / sum(share[k] / rates[k]["fp32_gflops"] for k in share)
    int8 = tot / sum(share[k] / rates[k]["int8_gops"] for k in share)
    return {"layers": layers, "hidden": h, "intermediate": inter, "mean_tokens": round(float(lens.mean()), 1),
            "encoder_gflop_per_sentence": round(flops / 1e9, 4), "gemm_rows": rows, "gemm": rates,
            "gemm_fp32_gflops": round(fp32, 1), "gemm_int8_gops": round(int8, 1),
            "max_sentences_per_second_fp32": round(fp32 * 1e9 / flops, 1),
            "max_sentences_per_second_int8": round(int8 * 1e9 / flops, 1),
            "rate_needed_for_target_gops": round(TARGET * flops / 1e9, 1),
            "layers_of_this_width_at_target_int8": round(int8 * 1e9 / TARGET / (flops / layers), 2)}


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
    from ade_distill.student.onnx import export_onnx

    work = Path(tempfile.mkdtemp(prefix="ade-rt-"))  # exports go into copies, not the original folder
    model, prev = work / "model", work / "previous"
    shutil.copytree(a.model, model, ignore=shutil.ignore_patterns("checkpoint", "onnx"))
    shutil.copytree(model, prev)
    export_onnx(prev, per_channel=False, fuse=False)
    rows = []

    def add(name: str, rate: float, preds) -> None:
        m = evaluate(gold, {"x": preds}, n_bootstrap=0)["systems"]["x"]
        rows.append({"path": name, "sentences_per_second": round(rate, 1),
                     "entity_f1": round(100 * m["entity"]["strict"]["micro"]["f1"], 2),
                     "relation_f1": round(100 * m["relation"]["strict"]["micro"]["f1"], 2)})
        print(json.dumps(rows[-1]), flush=True)

    for kind in ("torch fp32", "torch int8", "onnx fp32", "onnx int8 previous", "onnx int8"):
        st = _load(prev if kind == "onnx int8 previous" else model, kind, a.threads, a.batch_size)
        label = {"onnx int8 previous": "onnx int8, per tensor (previous recipe)",
                 "onnx int8": "onnx int8, fused, per channel"}.get(kind, kind)
        add(label, whole_run(st, gold, a.repeats), st.predict(gold))
        del st
    rate, preds = two_processes(model, "onnx int8", gold, a.batch_size, a.repeats)
    add("onnx int8, fused, per channel; 2 processes x 1 thread", rate, preds)
    base = rows[0]
    for r in rows:
        r["speedup"] = round(r["sentences_per_second"] / base["sentences_per_second"], 2)
        r["relation_f1_change"] = round(r["relation_f1"] - base["relation_f1"], 2)
    roof = roofline(model, gold, a.threads)
    print(json.dumps(roof), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    out = {"command": "python benchmarks/cpu_runtimes.py " + " ".join(sys.argv[1:]), "git_commit": commit,
           "model": str(a.model), "sentences": what, "threads": a.threads, "batch_size": a.batch_size,
           "cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__, "rows": rows,
           "roofline": roof, "target_sentences_per_second": TARGET}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")
    best = max(rows, key=lambda r: r["sentences_per_second"] if r["relation_f1_change"] >= -1 else 0)
    md = ["# CPU extraction paths side by side", "",
          f"Made by `{out['command']}` (git {commit}) on {os.cpu_count()} cores, {a.threads} threads, batch "
          f"{a.batch_size}; {what}; whole-run sentences/s (median of {a.repeats} passes); strict F1.", "",
          "| path | sentences/s | x torch fp32 | entity F1 | relation F1 | relation F1 change |", "|---|---|---|---|---|---|"]
    md += [f"| {r['path']} | {r['sentences_per_second']:.1f} | {r['speedup']:.2f} | {r['entity_f1']:.1f} | "
           f"{r['relation_f1']:.1f} | {r['relation_f1_change']:+.1f} |" for r in rows]
    g = roof["gemm"]
    md += ["", f"Fastest path within 1 relation-F1 point of torch fp32: **{best['path']}**, "
           f"{best['sentences_per_second']:.1f} sentences/s ({best['sentences_per_second'] / TARGET:.0%} of the "
           f"{TARGET:.0f} sentences/s target).", "",
           "## Roofline: what these cores allow this encoder", "",
           f"The encoder ({roof['layers']} layers, hidden {roof['hidden']}, FFN {roof['intermediate']}) does "
           f"{roof['encoder_gflop_per_sentence']:.3f} GFLOP a sentence on this file (mean {roof['mean_tokens']:.1f} "
           f"tokens, no padding; dense layers and attention). Matrix multiplies at its shapes "
           f"({roof['gemm_rows']} rows, i.e. a batch of 64 mean-length sentences), measured here "
           f"on {a.threads} threads:", "",
           "| matrix | torch fp32 GFLOP/s | ONNX Runtime int8 GOP/s |", "|---|---|---|"]
    md += [f"| {k} | {v['fp32_gflops']:.1f} | {v['int8_gops']:.1f} |" for k, v in g.items()]
    md += ["", f"Weighted by the work each matrix does: fp32 {roof['gemm_fp32_gflops']:.1f} GFLOP/s, int8 "
           f"{roof['gemm_int8_gops']:.1f} GOP/s, so the encoder alone, with nothing else in the run, could reach at "
           f"most {roof['max_sentences_per_second_fp32']:.0f} sentences/s in fp32 and "
           f"{roof['max_sentences_per_second_int8']:.0f} in int8; {TARGET:.0f} sentences/s would need "
           f"{roof['rate_needed_for_target_gops']:.0f} GOP/s from the matrix multiplies. At the measured int8 rate, a "
           f"{TARGET:.0f} sentences/s encoder of this width could have at most "
           f"{roof['layers_of_this_width_at_target_int8']:.2f} layers, before tokenising and decoding take their share."]
    a.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
