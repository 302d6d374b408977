"""Fixtures of the reliability suite."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def student_dir(forced_model):
    """The forced student of tests/conftest.py: extraction through it always yields records."""
    return forced_model
