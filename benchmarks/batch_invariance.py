"""Does a student's answer for a sentence depend on the other sentences in its batch? The same
sentences predicted in batches of 32 and one at a time, per runtime; relations compared by their
spans. Dynamic int8 quantization scales activations per batch tensor, so its answers can move with
the batch; fp32 should not (padding is masked).

  python benchmarks/batch_invariance.py [--model DIR] [--n 200] [--out reports/serve/batch_invariance]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.core.paths import shown  # noqa: E402
from ade_distill.ingest import ingest_ade_splits  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.student import Student  # noqa: E402

RUNTIMES = [("torch fp32", {}), ("torch int8 (dynamic)", {"quantize": "int8"}), ("onnx fp32", {"runtime": "onnx"}),
            ("onnx int8 (dynamic)", {"runtime": "onnx", "quantize": "int8"}),
            ("onnx int8 weight-only (MatMulNBits)", {"weight_only": True})]


def weight_only_student(model: Path, work: Path, threads: int) -> Student:
    """The student with its fused ONNX encoder's matrix multiplies quantized weight-only to 8 bits
    (MatMulNBits, blocks of 128, accuracy level 4: int8 compute with per-row activation scales)."""
    from onnxruntime.quantization import matmul_nbits_quantizer as mq
    from onnxruntime.quantization import quant_utils

    from ade_distill.student.model import load_student
    from ade_distill.student.onnx import OnnxAdeStudent, _fuse, export_onnx, onnx_path

    copy = work / "model"
    shutil.copytree(model, copy, ignore=shutil.ignore_patterns("onnx"))
    export_onnx(copy, int8=False)
    torch_model, tok = load_student(copy, "cpu")
    fused, out = work / "fused.onnx", work / "wo8.onnx"
    src = fused if _fuse(onnx_path(copy), fused, torch_model.tagger.config) else onnx_path(copy)
    cfg = mq.DefaultWeightOnlyQuantConfig(block_size=128, is_symmetric=True, accuracy_level=4, bits=8)
    q = mq.MatMulNBitsQuantizer(quant_utils.load_model_with_shape_infer(src), algo_config=cfg)
    q.process()
    q.model.save_model_to_file(str(out), False)
    return Student(OnnxAdeStudent(torch_model, out, threads=threads), tok, device="cpu")


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
    work = Path(tempfile.mkdtemp(prefix="batch-invariance-"))
    for name, kw in RUNTIMES:
        st = (weight_only_student(a.model, work, 2) if kw.get("weight_only")
              else Student.from_pretrained(a.model, threads=2, **kw))
        st.batch_size = 32
        st.predict(sents)
        t0 = time.perf_counter()
        batched = relations(st.predict(sents))
        speed = len(sents) / (time.perf_counter() - t0)
        st.batch_size = 1
        alone = relations(st.predict(sents))
        reference = alone if reference is None else reference
        both = batched & alone
        rows.append({"runtime": name, "batch_32": len(batched), "one_at_a_time": len(alone), "same": len(both),
                     "jaccard": round(len(both) / max(len(batched | alone), 1), 3),
                     "alone_vs_fp32": round(len(alone & reference) / max(len(alone | reference), 1), 3),
                     "sentences_per_s_batch_32": round(speed, 1)})
        print(json.dumps(rows[-1]), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    cmd = ("python benchmarks/batch_invariance.py " + " ".join(shown(x) for x in sys.argv[1:])).strip()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "git_commit": commit, "model": shown(a.model),
                                                      "sentences": len(sents), "rows": rows}, indent=2) + "\n")
    lines = ["# Is a sentence's answer independent of its batch?", "",
             f"Made by `{cmd}` (git {commit}): the first {len(sents)} sentences of ADE fold 0 test, predicted by "
             f"{shown(a.model)} in batches of 32 and one at a time; drug -> ADE relations compared by their spans.", "",
             "| runtime | relations, batches of 32 | relations, one at a time | the same in both | Jaccard | "
             "one at a time vs torch fp32, Jaccard | sentences/s, batches of 32 |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['runtime']} | {r['batch_32']} | {r['one_at_a_time']} | {r['same']} | {r['jaccard']:.3f} | "
              f"{r['alone_vs_fp32']:.3f} | {r['sentences_per_s_batch_32']:,.1f} |" for r in rows]
    lines += ["", "A Jaccard below 1 means the runtime's answer for a sentence depends on which sentences share its "
              "batch: with `serve`, on which other callers' requests arrived at the same moment. Dynamic int8 "
              "quantization computes its activation scales per batch; one sentence a pass (`serve --model-batch 1`) "
              "makes a runtime's answer a function of the sentence alone, and the column after the Jaccard says how "
              "far that answer is from the float model's. Speed: the second of two whole passes over the sentences "
              "in batches of 32, 2 threads, in this one run (nothing else on the machine)."]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {a.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
