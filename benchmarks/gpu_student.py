"""Train and time the student on a GPU (bf16), one script for one short device lease.

  python benchmarks/gpu_student.py --data DIR --model MINILM_DIR --out OUT_DIR

DIR holds fold0_train.jsonl / fold0_test.jsonl (from `ade-distill ingest ade-splits`) and,
optionally, teacher_fold0_train.jsonl. It prints and writes gpu_student.json:
 - supervised MiniLM student on gold fold 0 train, scored on fold 0 test (strict F1), with the
   training rate and the inference rate at batch 64 in bf16;
 - a distilled MiniLM student on the teacher's labels, if present (no gold in training);
 - a BERT-base-sized encoder (PubMedBERT's shape, random weights: speed only) training and
   inference rates, the numbers a PubMedBERT student would have on this GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ade_distill.evaluate import evaluate  # noqa: E402
from ade_distill.core.schema import read_sentences  # noqa: E402
from ade_distill.student import Student, TrainConfig, train_student  # noqa: E402
from ade_distill.student.extract import predict_sentences  # noqa: E402
from ade_distill.student.model import load_student  # noqa: E402


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def score(gold, preds):
    m = evaluate(gold, {"x": preds}, n_bootstrap=200)["systems"]["x"]
    return {"entity_f1": m["entity"]["strict"]["micro"]["f1"], "entity_ci": m["entity"]["strict"]["micro"]["ci"],
            "relation_f1": m["relation"]["strict"]["micro"]["f1"], "relation_ci": m["relation"]["strict"]["micro"]["ci"],
            "relation_text_f1": m["relation"]["text"]["micro"]["f1"]}


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def infer_rate(model, tok, sents, batch_size, repeats=5):
    predict_sentences(model, tok, sents[:128], batch_size=batch_size)
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        predict_sentences(model, tok, sents, batch_size=batch_size)
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    return len(sents) / times[len(times) // 2]


def run_student(name, train, test, cfg, out):
    t = time.perf_counter()
    train_student(train, None, cfg, out / name, progress=False, name=name)
    train_s = time.perf_counter() - t
    ex = Student.from_pretrained(out / name, device=DEVICE, batch_size=64)
    ex.model.to(torch.bfloat16)
    preds = ex.predict(test)
    res = {"train_sentences": len(train), "epochs": cfg.epochs, "train_seconds": train_s,
           "train_sentences_per_second": len(train) * cfg.epochs / train_s, **score(test, preds),
           "infer_sentences_per_second_bf16_b64": infer_rate(ex.model, ex.tokenizer, test, 64)}
    print(name, json.dumps(res), flush=True)
    return res


def export_fp16(folder: Path, dest: Path, shard_bytes: int = 15 * 2**20) -> None:
    """The student folder as fp16 safetensors shards of at most 15 MB (the device's file
    return limit) plus one configs.json; benchmarks/join_shards.py reassembles it."""
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    sd = load_file(str(folder / "model.safetensors"))
    sd.update({f"relation_head.{k}": v for k, v in load_file(str(folder / "relation_head.safetensors")).items()})
    pieces = {}
    for name, t in sd.items():
        t = (t.half() if t.is_floating_point() else t).contiguous()
        n_parts = -(-t.numel() * t.element_size() // (shard_bytes // 2))
        if n_parts > 1:  # a tensor bigger than half a shard (the word embeddings) is split by rows
            for i, part in enumerate(torch.tensor_split(t, n_parts, dim=0)):
                pieces[f"{name}::part{i}"] = part.contiguous()
        else:
            pieces[name] = t
    shard, size, k = {}, 0, 0
    for name, t in pieces.items():
        if size + t.numel() * t.element_size() > shard_bytes and shard:
            save_file(shard, str(dest / f"shard{k}.safetensors"))
            shard, size, k = {}, 0, k + 1
        shard[name] = t
        size += t.numel() * t.element_size()
    save_file(shard, str(dest / f"shard{k}.safetensors"))
    configs = {f: json.loads((folder / f).read_text()) for f in ("config.json", "ade_student.json")}
    (dest / "configs.json").write_text(json.dumps(configs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--limit", type=int, help="dry run on the first N sentences")
    ap.add_argument("--skip-supervised-full", action="store_true", help="skip the full gold run (already measured)")
    ap.add_argument("--skip-speed", action="store_true", help="skip the BERT-base-shaped speed run")
    ap.add_argument("--export", type=Path, help="write the distilled student here as <=15 MB fp16 shards")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print("device", dev, "torch", torch.__version__, flush=True)
    train = list(read_sentences(args.data / "fold0_train.jsonl"))
    test = list(read_sentences(args.data / "fold0_test.jsonl"))
    if args.limit:
        train, test = train[:args.limit], test[:args.limit]
    results = {"device": dev, "torch": torch.__version__, "precision": "bf16"}
    cfg = TrainConfig(model=args.model, epochs=args.epochs, batch_size=32, lr=1e-4, head_lr=1e-3, precision="bf16" if DEVICE == "cuda" else "no")
    if not args.skip_supervised_full:
        results["supervised_minilm"] = run_student("supervised-minilm", train, test, cfg, args.out)
    tpath = args.data / "teacher_fold0_train.jsonl"
    if tpath.exists():
        teacher = list(read_sentences(tpath))[:args.limit or None]
        results["distilled_minilm"] = run_student("distilled-minilm", teacher, test, cfg, args.out)
        gold_sub = [s for s in train if s.id in {x.id for x in teacher}]
        results["supervised_minilm_same_sentences"] = run_student("supervised-minilm-subset", gold_sub, test, cfg,
                                                                  args.out)
        if args.export:
            export_fp16(args.out / "distilled-minilm", args.export)
    if args.skip_speed:
        (args.out / "gpu_student.json").write_text(json.dumps(results, indent=2) + "\n")
        return
    # PubMedBERT-shaped encoder, random weights: speed only
    from transformers import BertConfig, BertForTokenClassification

    from ade_distill.student.encoding import JOINT_LABELS

    bcfg = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072, num_labels=len(JOINT_LABELS))
    base_dir = args.out / "bert-base-random"
    BertForTokenClassification(bcfg).save_pretrained(base_dir)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(args.model).save_pretrained(base_dir)
    cfg_b = cfg.model_copy(update={"model": str(base_dir), "epochs": 1, "lr": 5e-5})
    t = time.perf_counter()
    train_student(train, None, cfg_b, args.out / "bert-base-student", progress=False, name="bert-base-speed")
    tb = time.perf_counter() - t
    model, tok = load_student(args.out / "bert-base-student", DEVICE)
    model.to(torch.bfloat16)
    results["bert_base_shape_speed_only"] = {"parameters": sum(p.numel() for p in model.parameters()),
                                             "train_sentences_per_second": len(train) / tb,
                                             "infer_sentences_per_second_bf16_b64": infer_rate(model, tok, test, 64)}
    print("bert-base", json.dumps(results["bert_base_shape_speed_only"]), flush=True)
    (args.out / "gpu_student.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
