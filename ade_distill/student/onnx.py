"""The student's encoder on ONNX Runtime (fp32 or int8), for fast CPU extraction.

``export_onnx(model_dir)`` writes ``<model_dir>/onnx/encoder.onnx`` (torch.onnx, dynamic batch and
length) and, with ``int8``, ``encoder.int8.onnx``: the export's operators fused by ONNX Runtime's
transformer optimizer (bias+GELU, residual+LayerNorm; BERT-shaped encoders only), then ONNX Runtime's
dynamic int8 quantization of the matrix multiplications with one scale per output channel (per
channel keeps relation F1 within a few tenths of fp32 where one scale per matrix lost more than two
points: reports/screen/cpu_runtimes.md). ``onnx/export.json`` records the recipe; ``ensure_export``
exports a folder again when its export is missing or by an older recipe. ``OnnxAdeStudent`` runs
that encoder in an ONNX Runtime session and keeps the small relation head in torch; it stands in for ``AdeStudent`` in ``predict_sentences``, so
spans and relations are decoded by the same code as the torch model's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.errors import ModelError
from .model import AdeStudent, load_student

log = logging.getLogger(__name__)

ONNX_DIR = "onnx"
#: bump when the export or quantization changes, so stale exports are redone
RECIPE_VERSION = 2
_FUSABLE = {"bert", "roberta", "xlm-roberta", "electra", "distilbert"}


class _EncoderOut(nn.Module):
    def __init__(self, tagger) -> None:
        super().__init__()
        self.tagger = tagger

    def forward(self, input_ids, attention_mask):
        out = self.tagger(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return out.logits, out.hidden_states[-1]


def onnx_path(model_dir: str | Path, quantize: str | None = None) -> Path:
    return Path(model_dir) / ONNX_DIR / ("encoder.int8.onnx" if quantize == "int8" else "encoder.onnx")


def export_is_current(model_dir: str | Path, quantize: str | None = None) -> bool:
    """The folder holds an export of this kind made by the current recipe."""
    rec = Path(model_dir) / ONNX_DIR / "export.json"
    if not onnx_path(model_dir, quantize).exists() or not rec.exists():
        return False
    try:
        return json.loads(rec.read_text()).get("version") == RECIPE_VERSION
    except (OSError, ValueError):
        return False


def ensure_export(model_dir: str | Path, quantize: str | None = None) -> None:
    """Export the folder's encoder unless an export of this kind by the current recipe is there."""
    if not export_is_current(model_dir, quantize):
        log.warning("%s: exporting the encoder to ONNX (once)", model_dir)
        export_onnx(model_dir, int8=quantize == "int8")


def _fuse(src: Path, dst: Path, config) -> bool:
    """ONNX Runtime's transformer optimizer on a BERT-shaped export; False (nothing written) otherwise."""
    kind = getattr(config, "model_type", "")
    if kind not in _FUSABLE:
        return False
    from onnxruntime.transformers import optimizer

    opt = optimizer.optimize_model(str(src), model_type="bert", num_heads=int(config.num_attention_heads),
                                   hidden_size=int(config.hidden_size), opt_level=1)
    log.info("onnx fusion: %s", {k: v for k, v in opt.get_fused_operator_statistics().items() if v})
    opt.save_model_to_file(str(dst))
    return True


def export_onnx(model_dir: str | Path, *, int8: bool = True, opset: int = 18,
                per_channel: bool = True, fuse: bool = True) -> dict[str, Path]:
    """Export the student's encoder (tagger logits and last hidden state) to ONNX beside it
    (``per_channel``/``fuse`` False: the previous int8 recipe, for benchmarks)."""
    model, tok = load_student(model_dir, "cpu")
    model.eval()
    enc = _EncoderOut(model.tagger).eval()
    ids = torch.tensor([tok("Methotrexate caused severe hepatotoxicity in two patients.")["input_ids"]] * 2)
    att = torch.ones_like(ids)
    out = onnx_path(model_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=4096)
    with torch.no_grad():
        torch.onnx.export(enc, (ids, att), str(tmp), input_names=["input_ids", "attention_mask"],
                          output_names=["logits", "hidden"], opset_version=opset, dynamo=True, external_data=False,
                          dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}})
    tmp.replace(out)
    files = {"fp32": out}
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q = onnx_path(model_dir, "int8")
        qtmp = q.with_suffix(".tmp.onnx")
        fused = out.with_suffix(".fused.tmp.onnx")
        src = fused if fuse and _fuse(out, fused, model.tagger.config) else out
        try:
            quantize_dynamic(str(src), str(qtmp), weight_type=QuantType.QInt8, per_channel=per_channel)
        finally:
            fused.unlink(missing_ok=True)
        qtmp.replace(q)
        files["int8"] = q
    # another recipe than the default gets version 0, so a later plain use exports again
    recipe = {"version": RECIPE_VERSION if fuse and per_channel else 0, "int8": int8, "fused": fuse,
              "per_channel": per_channel}
    (out.parent / "export.json").write_text(json.dumps(recipe, indent=2) + "\n")
    return files


class OnnxAdeStudent(nn.Module):
    """AdeStudent's interface (called as model(ids, mask) -> (logits, None, hidden); settings,
    max_length, relation_head) with the encoder on ONNX Runtime."""

    def __init__(self, student: AdeStudent, path: Path, *, threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.settings = student.settings
        self.n_parameters = sum(p.numel() for p in student.parameters())  # the model's, not just the head's
        self.relation_head = student.relation_head.eval()
        self.path = path

    @property
    def max_length(self) -> int:
        return int(self.settings.get("max_length", 256))

    def forward(self, input_ids, attention_mask, pair_batch=None, drug_mask=None, ade_mask=None):
        logits, hidden = self.session.run(["logits", "hidden"], {
            "input_ids": input_ids.cpu().numpy().astype(np.int64),
            "attention_mask": attention_mask.cpu().numpy().astype(np.int64)})
        return torch.from_numpy(logits), None, torch.from_numpy(hidden)


def load_onnx_student(model_dir: str | Path, quantize: str | None = None, *, threads: int | None = None):
    """(OnnxAdeStudent, tokenizer) for a student folder with an exported encoder."""
    path = onnx_path(model_dir, quantize)
    if not path.exists():
        raise ModelError(f"{path} not found: run `ade-distill export-onnx --model {model_dir}` first")
    model, tok = load_student(model_dir, "cpu")
    return OnnxAdeStudent(model, path, threads=threads), tok
