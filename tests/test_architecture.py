"""The architecture contract (pyproject's [tool.importlinter]) holds, and it would catch a stage
module that imports the layers driving it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_layers_contract_is_kept():
    r = _lint(ROOT, ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 kept, 0 broken" in r.stdout


@pytest.mark.parametrize("module, line, offender", [
    ("student/losses.py", "from ..cli import main", "ade_distill.cli"),
    ("teacher/cache.py", "from ..pipeline import Pipeline", "ade_distill.pipeline"),
    ("ingest/text_files.py", "from ..student import Student", "ade_distill.student"),
    ("core/schema.py", "from ..workflows import label", "ade_distill.workflows"),
])
def test_contract_breaks_when_a_lower_layer_imports_a_higher_one(tmp_path, module, line, offender):
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "ade_distill", copy / "ade_distill", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "ade_distill" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n\ndef _late():\n    {line}\n", encoding="utf-8")
    r = _lint(copy, copy)
    assert r.returncode != 0, r.stdout
    assert "BROKEN" in r.stdout and offender in r.stdout
    importer = "ade_distill." + module.removesuffix(".py").replace("/", ".")
    assert importer in r.stdout


def test_public_api_names_resolve_and_import_stays_light():
    code = ("import sys, ade_distill; light = 'torch' not in sys.modules; "
            "missing = [n for n in ade_distill.__all__ if not hasattr(ade_distill, n)]; "
            "print(light, missing, sorted(set(ade_distill._LAZY) - set(ade_distill.__all__)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "True [] []", r.stdout + r.stderr


def test_no_unused_imports_or_names():
    """pyflakes over the package and the tests: no unused import, undefined name or dead local."""
    r = subprocess.run([sys.executable, "-m", "pyflakes", str(ROOT / "ade_distill"), str(ROOT / "tests")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_dead_code():
    """vulture over the package finds nothing that .ci/vulture_whitelist.py does not name with
    its reason (names a framework calls, registrations, fields reported through asdict)."""
    pytest.importorskip("vulture")
    r = subprocess.run([sys.executable, "-m", "vulture", str(ROOT / "ade_distill"),
                        str(ROOT / ".ci" / "vulture_whitelist.py"), "--min-confidence", "60"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
