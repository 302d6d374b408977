"""A run's record: file and folder hashes, the code version of each stage (its modules and all
they import), the git commit, package versions, and the manifest that says which stages are
current. A stage is current when its fingerprint (settings + input hashes + code version) matches
a finished entry whose outputs are still there, unchanged."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import platform
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from .. import __version__
from ..core.errors import AdeDistillError
from ..core.paths import shown, shown_text
from ..core.schema import atomic_open

log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = PACKAGE_DIR.parent


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder's files (names and contents, sorted)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


# The modules each stage's work runs; a stage's code version hashes these and every module they
# import, directly or not (the import graph, from grimp), so an edit to the report code re-renders
# the report without retraining the students, and a new helper a stage starts to use is covered.
STAGE_CODE = {
    "ingest": ["ade_distill.ingest", "ade_distill.core.sample"],
    "label": ["ade_distill.core.labels", "ade_distill.teacher.labeler", "ade_distill.teacher.rescore",
              "ade_distill.teacher.views"],
    "train": ["ade_distill.student.train", "ade_distill.student.extract"],
    "evaluate": ["ade_distill.evaluate.metrics", "ade_distill.student.extract"],
    "report": ["ade_distill.evaluate.report"],
    "synthesize": ["ade_distill.teacher.synthesis"],
    "extract": ["ade_distill.student.extract", "ade_distill.core.io"],
    "aggregate": ["ade_distill.evaluate.folds", "ade_distill.evaluate.report", "ade_distill.core.labels"],
}
# The workflow modules that do each stage's work for the runner. They hold the entry points of
# several stages (and lazy imports of what other stages run), so their own files are hashed but
# not what they import: that is STAGE_CODE's.
STAGE_WORKFLOWS = {
    "ingest": ["ade_distill.workflows.ingest"],
    "label": ["ade_distill.workflows.teacher"],
    "train": ["ade_distill.workflows.student"],
    "evaluate": ["ade_distill.workflows.evaluate", "ade_distill.workflows.student"],
    "report": ["ade_distill.workflows.evaluate"],
    "synthesize": ["ade_distill.workflows.synthesize"],
    "extract": ["ade_distill.workflows.student"],
    "aggregate": ["ade_distill.workflows.evaluate"],
}


@functools.lru_cache(maxsize=1)
def _import_graph():
    import grimp

    return grimp.build_graph("ade_distill", cache_dir=None)


def stage_modules(stage: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The modules a stage's code version covers: its entry modules (plus ``extra`` entry modules
    of this stage only) and all they import."""
    graph = _import_graph()
    kind = stage.split("-")[0]
    roots = STAGE_CODE[kind] + list(extra)
    mods = set(roots) | set(STAGE_WORKFLOWS[kind]) | {"ade_distill.workflows.common"}
    for r in roots:
        mods |= graph.find_upstream_modules(r)
    return sorted(mods)


def _module_file(module: str) -> Path:
    rel = Path(*module.split(".")[1:])
    return PACKAGE_DIR / rel / "__init__.py" if (PACKAGE_DIR / rel).is_dir() else PACKAGE_DIR / rel.with_suffix(".py")


def code_version(stage: str | None = None, extra: tuple[str, ...] = ()) -> str:
    """ade-distill's version plus a hash of the source files a stage runs (all of them without a
    stage); any edit to those files, comments included, counts as a new version."""
    if stage:
        files = [_module_file(m) for m in stage_modules(stage, extra)]
    else:
        files = sorted(PACKAGE_DIR.rglob("*.py"))
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(PACKAGE_DIR)).encode() + b"\0" + f.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_DIR, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_DIR,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in ("ade-distill", "torch", "transformers", "accelerate", "tokenizers", "openai", "llama_cpp_python",
              "spacy", "numpy", "safetensors"):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


class StageFailed(AdeDistillError, RuntimeError):
    pass


@dataclass
class Stage:
    name: str
    inputs: list[Path]
    settings: dict
    outputs: list[Path]
    run: Callable[["Stage"], dict]
    folder: Path
    code: tuple[str, ...] = ()  # entry modules beyond the stage kind's (STAGE_CODE), for its code version


class Manifest:
    """manifest.json of one run folder: what ran, with what, and whether each stage is current."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = self._load()

    def _load(self) -> dict:
        if self.path.exists():
            try:
                return json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                log.warning("%s: unreadable manifest, starting a new one", self.path)
        return {"stages": {}}

    @property
    def stages(self) -> dict:
        return self.data["stages"]

    def save(self, **header) -> None:
        """Write manifest.json; every path in it as ``core.paths.shown`` shows it (no machine layout)."""
        self.data.update(header, packages=package_versions(), updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(self.path) as fh:
            fh.write(shown_text(json.dumps(self.data, indent=2)) + "\n")

    @staticmethod
    def fingerprint(stage: Stage) -> tuple[str, dict]:
        hashes = {}
        for p in stage.inputs:
            if not p.exists():
                raise StageFailed(f"{stage.name}: input {p} is missing (run the earlier stages first)")
            hashes[shown(p)] = sha256_path(p)
        blob = json.dumps({"settings": stage.settings, "inputs": sorted(hashes.values()),
                           "code": code_version(stage.name, stage.code)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest(), hashes

    def is_current(self, stage: Stage, fp: str) -> bool:
        e = self.stages.get(stage.name)
        if not e or e.get("status") != "done" or e.get("fingerprint") != fp:
            return False
        outs = e.get("outputs", {})
        return all(p.exists() and outs.get(shown(p)) == sha256_path(p) for p in stage.outputs)
