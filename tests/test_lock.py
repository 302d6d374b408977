"""The lock covers what pyproject.toml declares: every dependency of the package and of the extras
`make` installs is pinned (==) with hashes in requirements.lock, within the declared range."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent


def locked() -> dict[str, str]:
    text = (REPO / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", text, re.M))
    assert text.count("--hash=sha256:") >= len(pins)
    return {canonicalize_name(k): v for k, v in pins.items()}


def test_every_declared_dependency_is_pinned_within_its_range():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = re.search(r"^EXTRAS := (.+)$", (REPO / "Makefile").read_text(), re.M)[1].split(",")
    reqs = [Requirement(r) for r in meta["dependencies"]]
    reqs += [Requirement(r) for e in extras for r in meta["optional-dependencies"][e]]
    pins = locked()
    for r in reqs:
        name = canonicalize_name(r.name)
        assert name in pins, f"{r.name} is declared but not in requirements.lock (make lock)"
        assert r.specifier.contains(pins[name].split("+")[0], prereleases=True), f"{r.name}=={pins[name]} outside {r.specifier}"
