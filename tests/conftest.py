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
