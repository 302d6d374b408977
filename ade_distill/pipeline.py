"""`ade-distill run pipelines/<name>.yaml`: ingest -> label -> train -> evaluate -> report -> extract.

Each stage writes into its own folder under the run directory and is recorded in
``manifest.json`` (settings, input and output hashes, code version, timings, tokens, cost,
status). A stage is skipped when its fingerprint (settings + input file hashes + code
version) matches a finished entry whose outputs are still there unchanged, so a rerun does
nothing, a deleted stage folder reruns that stage and whatever its outputs feed, and an
interrupted run resumes at the stage that stopped: inside labelling at the next unlabelled
sentence (the teacher resumes from its output and its cache), inside training at the last
finished epoch. A stage that runs for any other reason (new settings, inputs or code, or
--force) starts from an empty folder, so no checkpoint of another configuration is resumed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from . import __version__
from .config import ConfigError, load_yaml_model
from .errors import AdeDistillError
from .schema import Sentence, atomic_open, read_sentences, write_jsonl
from .student.compress import CompressConfig
from .student.train import TrainConfig
from .teacher.labeler import TeacherConfig

log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def default_shared_data() -> Path:
    return Path(os.environ.get("ADE_DISTILL_SHARED_DATA", REPO_DIR.parent / "shared" / "data"))


# ---------------------------------------------------------------- configuration

class InputsConfig(BaseModel):
    """Where the sentences come from. ``kind`` picks which other keys apply."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sample", "ade-splits", "jsonl", "pubmed"]
    # sample: data/sample, split by document into train (teacher-labelled) and test (gold)
    test_share: float = Field(default=0.35, gt=0, lt=1)
    # ade-splits: SpERT folds of ADE-Corpus-V2 (default ../shared/data/ade_splits)
    source: str | None = None
    fold: int = Field(default=0, ge=0, le=9)
    # the 10-fold protocol: "all" (or a list of fold numbers) runs ingest, label, train, evaluate and
    # report once per fold under <run_dir>/fold-<k>/, then one aggregate stage joins the
    # out-of-fold predictions and writes the k-fold report
    folds: Literal["all"] | list[int] | None = None
    # jsonl: your own sentence files (train: to label; test: gold, optional)
    train: str | None = None
    test: str | None = None
    # pubmed: an E-utilities query and/or PubMed XML / MEDLINE files
    query: str | None = None
    files: list[str] = Field(default_factory=list)
    max_records: int = Field(default=200, ge=1)
    api_key_env: str | None = "NCBI_API_KEY"
    email: str | None = None
    eutils_url: str | None = None
    # any kind: take only the first N train sentences (file order)
    train_limit: int | None = Field(default=None, ge=1)
    # new documents to extract ADEs from at the end (a .txt folder, CSV/TSV, JSONL or PubMed XML)
    documents: list[str] = Field(default_factory=list)
    # in-domain text the benchmark never tests on, without gold labels: for the teacher to label
    # (students with in_domain: true add those labels to their training) and as transfer data for a
    # second stage. "ade-neg": the ADE-NEG sentences of ADE-Corpus-V2 documents with no sentence
    # in the test fold (kind ade-splits; the raw corpus folder ade_corpus_v2 beside the splits),
    # shuffled with seed 0; or a sentence JSONL file. in_domain_limit: the first N of them.
    in_domain: str | None = None
    in_domain_limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _needs(self) -> "InputsConfig":
        if self.kind == "jsonl" and not self.train:
            raise ValueError("kind jsonl needs train (sentences to label)")
        if self.kind == "pubmed" and not (self.query or self.files):
            raise ValueError("kind pubmed needs query or files")
        if self.folds is not None:
            if self.kind != "ade-splits":
                raise ValueError("folds needs kind ade-splits")
            if isinstance(self.folds, list):
                if not self.folds or len(set(self.folds)) != len(self.folds) or not all(0 <= k <= 9 for k in self.folds):
                    raise ValueError(f"folds {self.folds}: distinct fold numbers from 0 to 9")
            if self.documents:
                raise ValueError("documents (extraction) is not run with folds: use a single-fold pipeline")
            if self.in_domain:
                raise ValueError("in_domain is not run with folds: use a single-fold pipeline")
        if self.in_domain == "ade-neg" and self.kind != "ade-splits":
            raise ValueError("in_domain: ade-neg needs kind ade-splits (its documents outside the test fold)")
        if self.in_domain_limit and not self.in_domain:
            raise ValueError("in_domain_limit needs in_domain")
        return self

    def fold_list(self) -> list[int]:
        return list(range(10)) if self.folds == "all" else sorted(self.folds or [])


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teacher: str | TeacherConfig = "pipelines/teachers/qwen1.5b-local.yaml"
    # packed labels (ade-distill labels pack) to start the train / test part from: one file or several
    # (with folds, the teacher labels of the whole corpus: each fold takes the sentences it has)
    seed_labels: str | list[str] | None = None
    seed_test_labels: str | list[str] | None = None
    seed_in_domain_labels: str | list[str] | None = None  # for inputs.in_domain
    soft: Literal["none", "rescore"] = "none"  # rescore: logprob confidences from the local GGUF model
    label_test: bool = True  # label the test part too, so the teacher is scored beside the students
    # false: never call the teacher; only the seed labels are used (a train sentence they lack is
    # left out, a test sentence they lack counts as the teacher predicting nothing), so a run
    # from committed labels cannot start an LLM, whatever the seeds miss
    call_teacher: bool = True
    checkpoint_every: int = Field(default=25, ge=1)


class StudentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: Literal["teacher", "teacher-hard", "gold"] = "teacher"
    config: TrainConfig = Field(default_factory=TrainConfig)
    # self-training: the trained student labels the train sentences past inputs.train_limit
    # (never shown to the teacher) and a second model is trained on both; no gold is involved
    self_train: bool = False
    self_train_epochs: int | None = Field(default=None, ge=1)  # the second round's epochs (default: config's)
    self_train_from: str | None = None  # an earlier student whose model is round 1 (saves training it again)
    # a document-grouped share of this student's own labelled sentences held out as dev: the epoch
    # kept is the one that agrees best with those labels (a distilled student's are the teacher's:
    # no gold label chooses it), and training stops early after config.patience worse epochs
    dev_share: float | None = Field(default=None, gt=0, lt=0.5)
    # second-stage (self-)distillation: this student learns the logits, hidden states and attentions
    # of an earlier student (``distill_from``) on the same labelled sentences, with their labels as
    # the hard targets; as many layers as the earlier student ("born again") unless distill.layers
    # says fewer. No LLM call and no gold label unless the labels are gold. ``config`` is not used.
    # A list of earlier students is an ensemble: their mean tag and pair probabilities are the
    # soft targets (hidden states and attentions: the first one's, which the new student starts from).
    distill_from: str | list[str] | None = None
    distill: CompressConfig | None = None
    # inputs.in_domain: a student learning from the teacher adds the teacher's labels of the
    # in-domain sentences to its train sentences; a second stage (distill_from) takes the in-domain
    # sentences as transfer data, labelled by the student it learns from (no LLM call)
    in_domain: bool = False

    def teachers(self) -> list[str]:
        """The earlier students this one is distilled from (none, one, or an ensemble)."""
        d = self.distill_from
        return [] if d is None else [d] if isinstance(d, str) else list(d)

    def how_made(self) -> str:
        """One sentence for the report: what this student learned from and how its model was chosen."""
        if self.labels == "gold":
            return "gold labels on the train sentences: a reference for what the teacher's label noise costs, not a distilled student"
        kind = "the teacher's labels" + (" (hard)" if self.labels == "teacher-hard" else "")
        if self.teachers():
            more = (" and on the in-domain sentences (labelled by the first of them: transfer data)"
                    if self.in_domain else "")
            return (f"second stage: learns {' + '.join(self.teachers())}'s outputs on the sentences with {kind}{more}; "
                    "settings fixed in the pipeline file, last epoch kept, nothing chosen on a score")
        if self.in_domain:
            kind += " (train and in-domain sentences)"
        if self.dev_share:
            return (f"{kind}; the epoch kept is the one that agrees best with {kind} on a {self.dev_share:.0%} "
                    "dev share of its own train sentences (no gold)")
        extra = "; self-trained on the student's own labels of the unlabelled sentences" if self.self_train else ""
        return f"{kind}{extra}; a fixed recipe, last epoch kept, nothing chosen on a score"


class EvaluateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bootstrap: int = Field(default=1000, ge=0)
    seed: int = 13
    threads: int | None = None  # CPU threads for the students' predictions


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = "Adverse drug event extraction: teacher and student"
    excerpts: bool = True  # False leaves every sentence text out of the report
    # with folds: a folder (e.g. reports/ade_10fold) that receives copies of the k-fold report, the
    # out-of-fold metrics and the out-of-fold predictions packed without sentence text
    publish: str | None = None


class ExtractConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    student: str | None = None  # which student extracts; default: the first one
    quantize: Literal["none", "int8"] = "none"


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    run_dir: str | None = None  # default runs/<name>
    inputs: InputsConfig
    label: LabelConfig | None = Field(default_factory=LabelConfig)
    students: dict[str, StudentSpec] = Field(default_factory=dict)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)

    @model_validator(mode="after")
    def _consistent(self) -> "PipelineConfig":
        names = list(self.students)
        for i, (name, spec) in enumerate(self.students.items()):
            if not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"student name {name!r}: letters, digits, - and _ only")
            if spec.labels != "gold" and self.label is None:
                raise ValueError(f"student {name!r} learns from the teacher, but there is no label stage")
            earlier = {"self_train_from": [spec.self_train_from] if spec.self_train_from else [],
                       "distill_from": spec.teachers()}
            for key, refs in earlier.items():  # each names a student trained before this one
                for ref in refs:
                    if ref not in names[:i]:
                        raise ValueError(f"student {name!r}: {key} {ref!r} is not a student listed before it")
            if isinstance(spec.distill_from, list) and (not spec.distill_from or len(set(spec.distill_from)) < len(spec.distill_from)):
                raise ValueError(f"student {name!r}: distill_from lists no student or one twice")
            if spec.self_train_from is not None and not spec.self_train:
                raise ValueError(f"student {name!r}: self_train_from needs self_train: true")
            if spec.distill is not None and spec.distill_from is None:
                raise ValueError(f"student {name!r}: distill settings need distill_from (the student it learns from)")
            if spec.distill_from is not None and (spec.self_train or spec.dev_share):
                raise ValueError(f"student {name!r}: distill_from does not combine with self_train or dev_share")
            if spec.in_domain and not self.inputs.in_domain:
                raise ValueError(f"student {name!r}: in_domain needs inputs.in_domain (the in-domain sentences)")
            if spec.in_domain and spec.labels == "gold" and not spec.distill_from:
                raise ValueError(f"student {name!r}: in_domain sentences have no gold labels (labels: gold)")
        if self.extract.student and self.extract.student not in self.students:
            raise ValueError(f"extract.student {self.extract.student!r} is not one of the students")
        return self


def load_pipeline(path: str | Path) -> tuple[PipelineConfig, TeacherConfig | None]:
    """The pipeline and its resolved teacher config; errors name file, key and line."""
    path = Path(path)
    cfg = load_yaml_model(path, PipelineConfig)
    teacher = None
    if cfg.label is not None:
        t = cfg.label.teacher
        if isinstance(t, str):
            tp = _resolve(path, t)
            try:
                teacher = TeacherConfig.from_yaml(tp)
            except ConfigError as exc:
                raise ConfigError(f"{path}: label.teacher -> {exc}") from exc
        else:
            teacher = t
    return cfg, teacher


def _unlabelled(s: Sentence) -> Sentence:
    """The sentence without labels (text the teacher or a student labels, never gold)."""
    return s.model_copy(update={"entities": [], "relations": [], "source": "unlabeled"})


def _resolve(base_file: Path, p: str) -> Path:
    """Paths in a pipeline file are relative to the repository root if they exist there,
    else to the pipeline file's folder."""
    q = Path(os.path.expandvars(os.path.expanduser(p)))
    if q.is_absolute():
        return q
    for root in (Path.cwd(), REPO_DIR, base_file.parent):
        if (root / q).exists():
            return root / q
    return Path.cwd() / q


# ---------------------------------------------------------------- hashing and manifest

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


# The modules each stage calls; a stage's code version hashes these and every module they import,
# directly or not (the import graph, from grimp), so an edit to the report code re-renders the
# report without retraining the students, and a new helper a stage starts to use is covered.
STAGE_CODE = {
    "ingest": ["ade_distill.ingest", "ade_distill.sample"],
    "label": ["ade_distill.workflows.teacher", "ade_distill.labels", "ade_distill.teacher.rescore"],
    "train": ["ade_distill.student.train", "ade_distill.student.extract"],
    "evaluate": ["ade_distill.evaluate.metrics", "ade_distill.student.extract"],
    "report": ["ade_distill.evaluate.report"],
    "extract": ["ade_distill.student.extract", "ade_distill.io"],
    "aggregate": ["ade_distill.workflows.evaluate", "ade_distill.labels"],
}


@functools.lru_cache(maxsize=1)
def _import_graph():
    import grimp

    return grimp.build_graph("ade_distill", cache_dir=None)


def stage_modules(stage: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The modules a stage's code version covers: its entry modules (plus ``extra`` entry modules
    of this stage only) and all they import."""
    graph = _import_graph()
    roots = STAGE_CODE[stage.split("-")[0]] + list(extra)
    mods = set(roots)
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


# ---------------------------------------------------------------- the runner

class Pipeline:
    def __init__(self, path: str | Path, *, run_dir: str | Path | None = None, progress: bool = True,
                 _fold: int | None = None, _parent: "Pipeline | None" = None) -> None:
        self.path = Path(path)
        if _parent is None:
            self.cfg, self.teacher_cfg = load_pipeline(self.path)
        else:  # one fold of a k-fold pipeline: the parent's settings with inputs.fold = k
            c = _parent.cfg
            self.cfg = c.model_copy(update={
                "inputs": c.inputs.model_copy(update={"fold": _fold, "folds": None}),
                "report": c.report.model_copy(update={"title": f"{c.report.title}: fold {_fold}", "publish": None})})
            self.teacher_cfg = _parent.teacher_cfg
        self.run_dir = Path(run_dir or self.cfg.run_dir or Path("runs") / self.cfg.name)
        # k-fold: one sub-pipeline per fold, each with its own folder and manifest (so each fold's
        # stages are skipped or resumed on their own); this pipeline's only stage aggregates them
        self.fold_runs = {k: Pipeline(path, run_dir=self.run_dir / f"fold-{k}", progress=progress, _fold=k, _parent=self)
                          for k in self.cfg.inputs.fold_list()}
        self.progress = progress
        # what each stage did, one line each: printed for a person at a terminal, logged otherwise
        self.say = (lambda msg: print(msg, flush=True)) if progress else log.info
        self.manifest_path = self.run_dir / "manifest.json"
        self.manifest = self._load_manifest()
        self.code = code_version()
        self.commit = git_commit()  # at the start of this invocation; each stage records its own too
        self.stages = self._stages()

    # -- manifest --
    def _load_manifest(self) -> dict:
        if self.manifest_path.exists():
            try:
                return json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                log.warning("%s: unreadable manifest, starting a new one", self.manifest_path)
        return {"stages": {}}

    def _save(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        m = self.manifest
        m.update({"pipeline": str(self.path), "name": self.cfg.name, "config": self._public_config(),
                  "code_version": self.code, "git_commit": self.commit, "packages": package_versions(),
                  "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        with atomic_open(self.manifest_path) as fh:
            json.dump(m, fh, indent=2)
            fh.write("\n")

    def _public_config(self) -> dict:
        d = self.cfg.model_dump(mode="json")
        if self.teacher_cfg is not None:
            d["teacher_resolved"] = self.teacher_cfg.model_dump(mode="json")  # names of key variables only
        return d

    # -- stage graph --
    def run_path(self, *parts: str) -> Path:
        """A path inside the run folder."""
        return self.run_dir.joinpath(*parts)

    def _stages(self) -> list[Stage]:
        if self.fold_runs:
            return [self._aggregate_stage()]
        c = self.cfg
        st: list[Stage] = []
        ing_out = [self.run_path("ingest", "train.jsonl"), self.run_path("ingest", "unlabeled.jsonl")]
        if self._has_test():
            ing_out.append(self.run_path("ingest", "test.jsonl"))
        if c.inputs.documents:
            ing_out.append(self.run_path("ingest", "documents.sentences.jsonl"))
        if c.inputs.in_domain:
            ing_out.append(self.run_path("ingest", "in_domain.jsonl"))
        ing_inputs = [x for x in self._ingest_input_paths() if x.exists()]
        st.append(Stage("ingest", ing_inputs, {"inputs": c.inputs.model_dump(mode="json")}, ing_out,
                        self._run_ingest, self.run_path("ingest")))
        if c.label is not None:
            lab_out = [self.run_path("label", "train.teacher.jsonl")]
            if self._has_test() and c.label.label_test:
                lab_out.append(self.run_path("label", "test.teacher.jsonl"))
            if c.inputs.in_domain:
                lab_out.append(self.run_path("label", "in_domain.teacher.jsonl"))
            seeds = list(dict.fromkeys(self._seeds(c.label.seed_labels) + self._seeds(c.label.seed_test_labels)
                                       + self._seeds(c.label.seed_in_domain_labels)))
            few_shot = self.teacher_cfg.prompt.shots if self.teacher_cfg else None
            st.append(Stage("label", [x for x in ing_out if x.name not in ("documents.sentences.jsonl", "unlabeled.jsonl")]
                            + seeds
                            + ([_resolve(self.path, few_shot)] if few_shot else []),
                            {"label": c.label.model_dump(mode="json", exclude={"teacher"}),
                             "teacher": self._teacher_key()}, lab_out, self._run_label, self.run_path("label")))
        for name, spec in c.students.items():
            src = self.run_path("ingest", "train.jsonl") if spec.labels == "gold" else self.run_path("label", "train.teacher.jsonl")
            srcs = [src] + ([self.run_path("ingest", "unlabeled.jsonl")] if spec.self_train else [])
            if spec.self_train_from:
                srcs.append(self.run_path(f"train-{spec.self_train_from}", "model"))
            srcs += [self.run_path(f"train-{ref}", "model") for ref in spec.teachers()]
            if spec.in_domain:
                srcs.append(self.run_path("ingest", "in_domain.jsonl") if spec.distill_from
                            else self.run_path("label", "in_domain.teacher.jsonl"))
            st.append(Stage(f"train-{name}", srcs, {"student": spec.model_dump(mode="json")},
                            [self.run_path(f"train-{name}", "model")], self._run_train, self.run_path(f"train-{name}"),
                            code=("ade_distill.student.compress",) if spec.distill_from else ()))
        if self._has_test() and (c.students or c.label):
            preds = ([self.run_path("label", "test.teacher.jsonl")] if c.label and c.label.label_test else [])
            models = [self.run_path(f"train-{n}", "model") for n in c.students]
            st.append(Stage("evaluate", [self.run_path("ingest", "test.jsonl")] + preds + models,
                            {"evaluate": c.evaluate.model_dump(mode="json")},
                            [self.run_path("evaluate", "metrics.json")], self._run_evaluate, self.run_path("evaluate")))
            st.append(Stage("report", [self.run_path("evaluate", "metrics.json")],
                            {"report": c.report.model_dump(mode="json")},
                            [self.run_path("report", "report.html"), self.run_path("report", "report.md")],
                            self._run_report, self.run_path("report")))
        if c.inputs.documents and c.students:
            who = c.extract.student or next(iter(c.students))
            st.append(Stage("extract", [self.run_path("ingest", "documents.sentences.jsonl"),
                                        self.run_path(f"train-{who}", "model")],
                            {"extract": c.extract.model_dump(mode="json"), "student": who},
                            [self.run_path("extract", "ades.jsonl"), self.run_path("extract", "ades.csv")],
                            self._run_extract, self.run_path("extract")))
        return st

    # -- k-fold --
    def _fold_systems(self) -> dict[str, tuple[str, Callable[["Pipeline"], Path]]]:
        """Each scored system: its name in the metrics, a file-name slug, and where a fold keeps
        its test predictions."""
        c = self.cfg
        out: dict = {}
        if c.label is not None and c.label.label_test and self._has_test():
            out[f"teacher ({self.teacher_name})"] = ("teacher", lambda f: f.run_path("label", "test.teacher.jsonl"))
        for n in c.students:
            out[f"student {n}"] = (n, lambda f, n=n: f.run_path("evaluate", "predictions", f"{n}.jsonl"))
        return out

    def _aggregate_stage(self) -> Stage:
        ins: list[Path] = []
        for f in self.fold_runs.values():
            ins += [f.run_path("ingest", "test.jsonl"), f.run_path("evaluate", "metrics.json")]
            ins += [where(f) for _, where in self._fold_systems().values()]
        agg = self.run_path("aggregate")
        outs = [agg / "folds.md", agg / "folds.json", agg / "metrics.json", agg / "report" / "report.html"]
        outs += [agg / "oof" / f"{slug}.jsonl" for slug, _ in self._fold_systems().values()]
        pub = self._publish_dir()
        if pub is not None:
            outs += [pub / "folds.md", pub / "folds.json", pub / "metrics.json", pub / "report.html", pub / "report.md"]
            outs += [pub / "oof" / f"{slug}.packed.jsonl" for slug, _ in self._fold_systems().values()]
        settings = {"folds": sorted(self.fold_runs), "evaluate": self.cfg.evaluate.model_dump(mode="json"),
                    "report": self.cfg.report.model_dump(mode="json")}
        return Stage("aggregate", ins, settings, outs, self._run_aggregate, agg)

    def _publish_dir(self) -> Path | None:
        p = self.cfg.report.publish
        return Path(p) if p else None  # relative to the working directory, like run_dir

    def _run_aggregate(self, stage: Stage) -> dict:
        """Join every fold's test predictions into one out-of-fold file per system (each sentence
        predicted by the model for which it was test data), score them over the whole corpus
        (micro), summarise the folds (macro mean and sd, sign test against the teacher) and render
        the corpus-level report."""
        from .labels import write_packed
        from .workflows import evaluate_files, report, summarise_folds

        systems = self._fold_systems()
        gold: list[Sentence] = []
        joined: dict[str, list[Sentence]] = {name: [] for name in systems}
        for k, f in sorted(self.fold_runs.items()):
            gold += read_sentences(f.run_path("ingest", "test.jsonl"))
            for name, (_, where) in systems.items():
                joined[name] += read_sentences(where(f))
        seen: set[str] = set()
        for s in gold:
            if s.id in seen:
                raise StageFailed(f"sentence {s.id} is test data in two folds: these are not the disjoint SpERT folds")
            seen.add(s.id)
        agg = stage.folder
        write_jsonl(agg / "oof" / "gold.jsonl", gold)
        files = {}
        for name, (slug, _) in systems.items():
            files[name] = agg / "oof" / f"{slug}.jsonl"
            write_jsonl(files[name], joined[name])
        ec, rc = self.cfg.evaluate, self.cfg.report
        roles = {name: {"role": "teacher" if slug == "teacher" else "student", "out_of_fold": True}
                 for name, (slug, _) in systems.items()}
        evaluate_files(gold, files, agg / "metrics.json", bootstrap=ec.bootstrap, seed=ec.seed, info=roles,
                       inputs={"gold": f"test parts of folds {sorted(self.fold_runs)}"})
        teacher = next((n for n, (slug, _) in systems.items() if slug == "teacher"), None)
        command = f"ade-distill run {self.path}"
        folds = summarise_folds({k: f.run_path("evaluate", "metrics.json") for k, f in self.fold_runs.items()}, agg,
                                reference=teacher, micro=agg / "metrics.json",
                                preamble=self._folds_preamble(command, len(gold))).summary
        rep = report(agg / "metrics.json", agg / "report", gold=gold, predictions=files, excerpts=rc.excerpts,
                     title=f"{rc.title}: out-of-fold predictions of {len(self.fold_runs)} fold(s)", command=command).files
        pub = self._publish_dir()
        if pub is not None:
            for src, name in ((agg / "folds.md", "folds.md"), (agg / "folds.json", "folds.json"),
                              (agg / "metrics.json", "metrics.json"), (rep["html"], "report.html"), (rep["md"], "report.md")):
                with atomic_open(pub / name, "wb") as fh:
                    fh.write(src.read_bytes())
            for name, (slug, _) in systems.items():  # ids, offsets, labels, confidences: no sentence text
                write_packed(joined[name], pub / "oof" / f"{slug}.packed.jsonl")
        rel = {n: round(v["relation strict"]["mean"], 2) for n, v in folds["systems"].items()}
        return {"folds": sorted(self.fold_runs), "sentences": len(gold), "macro_relation_f1": rel,
                "line": f"{len(self.fold_runs)} fold(s), {len(gold):,} out-of-fold sentences; mean relation F1: "
                        + "; ".join(f"{n} {v:.1f}" for n, v in rel.items())
                        + f" -> {agg / 'folds.md'}" + (f" (copied to {pub})" if pub else "")}

    def _folds_preamble(self, command: str, n: int) -> str:
        """What the k-fold report measured and how each model was made and chosen."""
        c = self.cfg
        lines = [f"# {c.report.title}", "", f"Made by `{command}` (git {self.commit or 'unknown'}); "
                 f"folds {', '.join(map(str, sorted(self.fold_runs)))} of the SpERT splits; every one of the "
                 f"{n:,} test sentences is predicted by the model of the fold whose test part it is (out-of-fold).", ""]
        if c.label is not None:
            lines.append(f"- **teacher ({self.teacher_name})**: one labelling of the corpus, fold-independent"
                         + (" (from the committed label files; no LLM call when they cover every sentence)"
                            if c.label.seed_labels else "") + ".")
        for name, spec in c.students.items():
            t = spec.config
            how = ("the epoch kept by agreement with a held-out share of its own labels"
                   if spec.dev_share else "a fixed recipe (last epoch; nothing chosen on any score)")
            lines.append(f"- **student {name}**: {spec.labels} labels; {t.model}"
                         + (f", first {t.layers} layers" if t.layers else "")
                         + f", {t.epochs} epochs, batch {t.batch_size}, lr {t.lr:g}; {how}. "
                         + ("No gold label reaches it." if spec.labels != "gold" else "Trained on the fold's gold train labels."))
        lines += ["", "Each fold's test part is scored once per model.", ""]
        lines += self._fold_times()
        return "\n".join(lines + ["", ""])

    def _fold_times(self) -> list[str]:
        """Wall seconds of each fold's stages, from its manifest (the last attempt of a resumed
        stage only; other work on the machine makes them longer)."""
        rows, names, total = [], [], 0.0
        for k, f in sorted(self.fold_runs.items()):
            stages = f.manifest.get("stages", {})
            row = {n: e.get("seconds") for n, e in stages.items() if e.get("status") == "done"}
            names += [n for n in row if n not in names]
            rows.append((k, row))
        if not rows:
            return []
        out = ["## Run time (wall seconds per stage, from each fold's manifest.json)", "",
               "| fold | " + " | ".join(names) + " | fold total |", "|---" * (len(names) + 2) + "|"]
        for k, row in rows:
            t = sum(v or 0 for v in row.values())
            total += t
            out.append(f"| {k} | " + " | ".join("-" if row.get(n) is None else f"{row[n]:,.0f}" for n in names)
                       + f" | {t:,.0f} |")
        out += ["", f"All folds: {total:,.0f} s ({total / 3600:.2f} h). A stage resumed after an interruption counts "
                    "its last attempt only; other work on the machine during the run makes stages longer."]
        return out

    def _seeds(self, value: str | list[str] | None) -> list[Path]:
        if not value:
            return []
        return [_resolve(self.path, v) for v in ([value] if isinstance(value, str) else value)]

    @property
    def teacher_name(self) -> str:
        m = self.teacher_cfg.model
        return Path(m).stem if m.endswith(".gguf") else m

    def _teacher_key(self) -> dict:
        """What about the teacher changes its labels (not the cache path or concurrency)."""
        if self.teacher_cfg is None:
            return {}
        return self.teacher_cfg.model_dump(mode="json", exclude={"cache", "concurrency", "retries",
                                                                 "retry_base_s", "budget_usd"})

    def _has_test(self) -> bool:
        i = self.cfg.inputs
        return i.kind in ("sample", "ade-splits") or (i.kind == "jsonl" and bool(i.test))

    def _ingest_input_paths(self) -> list[Path]:
        i = self.cfg.inputs
        if i.kind == "sample":
            from .sample import SAMPLE_DIR

            out = [SAMPLE_DIR / "gold.jsonl"]
        elif i.kind == "ade-splits":
            src = self._splits_dir()
            out = [src / f"ade_split_{i.fold}_train.json", src / f"ade_split_{i.fold}_test.json"]
        elif i.kind == "jsonl":
            out = [_resolve(self.path, x) for x in (i.train, i.test) if x]
        else:
            out = [_resolve(self.path, x) for x in i.files]
        if i.in_domain == "ade-neg":
            out += [self._corpus_dir() / "DRUG-AE.rel", self._corpus_dir() / "ADE-NEG.txt"]
        elif i.in_domain:
            out.append(_resolve(self.path, i.in_domain))
        return out + [_resolve(self.path, d) for d in i.documents]

    def _splits_dir(self) -> Path:
        src = self.cfg.inputs.source
        return _resolve(self.path, src) if src else default_shared_data() / "ade_splits"

    def _corpus_dir(self) -> Path:
        """The raw ADE-Corpus-V2 release folder beside the splits (its ADE-NEG sentences)."""
        return self._splits_dir().parent / "ade_corpus_v2"

    # -- running --
    def fingerprint(self, stage: Stage) -> tuple[str, dict]:
        hashes = {}
        for p in stage.inputs:
            if not p.exists():
                raise StageFailed(f"{stage.name}: input {p} is missing (run the earlier stages first)")
            hashes[str(p)] = sha256_path(p)
        blob = json.dumps({"settings": stage.settings, "inputs": sorted(hashes.values()),
                           "code": code_version(stage.name, stage.code)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest(), hashes

    def is_current(self, stage: Stage, fp: str) -> bool:
        e = self.manifest["stages"].get(stage.name)
        if not e or e.get("status") != "done" or e.get("fingerprint") != fp:
            return False
        outs = e.get("outputs", {})
        return all(p.exists() and outs.get(str(p)) == sha256_path(p) for p in stage.outputs)

    def select(self, start: str | None = None, only: str | None = None) -> list[Stage]:
        names = [s.name for s in self.stages]

        def find(n: str) -> int:
            hits = [i for i, s in enumerate(names) if s == n or s.startswith(n + "-")]
            if not hits:
                raise StageFailed(f"no stage {n!r} in {self.path} (stages: {', '.join(names)})")
            return hits[0]

        if only:
            i = find(only)
            return [s for s in self.stages if s.name == names[i] or (only == "train" and s.name.startswith("train-"))]
        return self.stages[find(start):] if start else list(self.stages)

    def run(self, *, start: str | None = None, only: str | None = None, force: bool = False) -> dict:
        if self.fold_runs:
            return self._run_folds(start=start, only=only, force=force)
        return self._run_stages(start=start, only=only, force=force)

    def _run_folds(self, *, start: str | None, only: str | None, force: bool) -> dict:
        """Each fold's pipeline in turn (each skips what it has finished and resumes what it had
        not), then the aggregate stage; ``only``/``start`` name a fold stage or ``aggregate``."""
        if "aggregate" not in (start, only):
            for k, f in self.fold_runs.items():
                self.say(f"== fold {k} ({len(self.fold_runs)} fold(s) in all)")
                f.run(start=start, only=only, force=force)
            if only:
                return self.manifest
        self.manifest["folds"] = {str(k): str(f.manifest_path) for k, f in self.fold_runs.items()}
        return self._run_stages(start=None, only="aggregate" if only else None, force=force or bool(start or only))

    def _run_stages(self, *, start: str | None = None, only: str | None = None, force: bool = False) -> dict:
        chosen = self.select(start, only)
        forced = {s.name for s in chosen} if (force or start or only) else set()
        self.say(f"pipeline {self.cfg.name}: {len(chosen)} stage(s) -> {self.run_dir}")
        self._save()
        for stage in chosen:
            fp, in_hashes = self.fingerprint(stage)
            if stage.name not in forced and self.is_current(stage, fp):
                e = self.manifest["stages"][stage.name]
                self.say(f"[{stage.name}] up to date, skipped ({e.get('line', '')})")
                continue
            prev = self.manifest["stages"].get(stage.name) or {}
            resumable = (stage.name not in forced and prev.get("fingerprint") == fp
                         and prev.get("status") in ("running", "interrupted", "failed"))
            if not resumable and stage.folder.exists():
                # other settings, inputs or code (or --force): a checkpoint there belongs to another run
                shutil.rmtree(stage.folder)
            entry = {"status": "running", "fingerprint": fp, "code_version": code_version(stage.name, stage.code),
                     "git_commit": self.commit,
                     "inputs": in_hashes, "settings": stage.settings,
                     "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            self.manifest["stages"][stage.name] = entry
            self._save()
            stage.folder.mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            try:
                summary = stage.run(stage) or {}
            except KeyboardInterrupt:
                entry.update(status="interrupted", seconds=round(time.monotonic() - t0, 1))
                self._save()
                print(f"\n[{stage.name}] interrupted; run the same command again to resume here", file=sys.stderr)
                raise
            except Exception as exc:
                entry.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                             seconds=round(time.monotonic() - t0, 1))
                self._save()
                raise StageFailed(f"stage {stage.name} failed: {exc}") from exc
            missing = [str(p) for p in stage.outputs if not p.exists()]
            if missing:
                entry.update(status="failed", error=f"outputs not written: {missing}")
                self._save()
                raise StageFailed(f"stage {stage.name} failed: it did not write {', '.join(missing)}")
            line = summary.pop("line", "")
            entry.update(status=summary.pop("status", "done"), seconds=round(time.monotonic() - t0, 1),
                         outputs={str(p): sha256_path(p) for p in stage.outputs}, summary=summary, line=line)
            self._save()
            self.say(f"[{stage.name}] {line} ({entry['seconds']:.0f} s)")
        report = self.run_path("report", "report.html")
        if report.exists():
            self.say(f"report: {report}")
        return self.manifest

    # ---------------------------------------------------------------- stages

    def _run_ingest(self, stage: Stage) -> dict:
        from collections import Counter

        from .ingest import Problems

        i = self.cfg.inputs
        problems = Problems()
        test: list[Sentence] | None = None
        if i.kind == "sample":
            from .sample import SAMPLE_DIR

            gold = list(read_sentences(SAMPLE_DIR / "gold.jsonl"))
            test_docs = {d for d in {s.doc_id or s.id for s in gold}
                         if int(hashlib.sha256(d.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < i.test_share}
            train = [s for s in gold if (s.doc_id or s.id) not in test_docs]
            test = [s for s in gold if (s.doc_id or s.id) in test_docs]
        elif i.kind == "ade-splits":
            from .ingest.ade_corpus import ingest_ade_splits

            src = self._splits_dir()
            train = list(ingest_ade_splits(src, i.fold, "train", problems=problems))
            test = list(ingest_ade_splits(src, i.fold, "test", problems=problems))
        elif i.kind == "jsonl":
            train = list(read_sentences(_resolve(self.path, i.train)))
            test = list(read_sentences(_resolve(self.path, i.test))) if i.test else None
        else:
            train = self._pubmed_sentences(problems)
        rest: list[Sentence] = []
        if i.train_limit:
            train, rest = train[:i.train_limit], train[i.train_limit:]
        write_jsonl(self.run_path("ingest", "train.jsonl"), train)
        # the train sentences past train_limit, without labels: material for self-training
        write_jsonl(self.run_path("ingest", "unlabeled.jsonl"), map(_unlabelled, rest))
        if test is not None:
            write_jsonl(self.run_path("ingest", "test.jsonl"), test)
        n_in = None
        if i.in_domain:
            n_in = write_jsonl(self.run_path("ingest", "in_domain.jsonl"), self._in_domain_sentences(test or []))
        n_docs = 0
        if i.documents:
            from .ingest import documents_from, sentences_of

            counts: Counter = Counter()
            docs = (doc for d in i.documents for doc in documents_from(_resolve(self.path, d), problems))
            write_jsonl(self.run_path("ingest", "documents.sentences.jsonl"),
                        sentences_of(docs, counts, self.run_path("ingest", "documents.jsonl")))
            n_docs = counts["documents"]
        line = f"{len(train):,} train sentences" + (f", {len(test):,} test" if test is not None else "") + \
            (f", {n_docs:,} new documents" if i.documents else "") + \
            (f", {n_in:,} in-domain" if n_in is not None else "") + \
            (f"; {len(problems)} bad record(s) skipped" if len(problems) else "")
        return {"train": len(train), "test": len(test) if test is not None else None, "documents": n_docs,
                "in_domain": n_in, "problems": len(problems), "line": line}

    def _in_domain_sentences(self, test: list[Sentence]) -> list[Sentence]:
        """inputs.in_domain, unlabelled, none of a test document, at most in_domain_limit."""
        i = self.cfg.inputs
        test_docs = {s.doc_id for s in test if s.doc_id}
        if i.in_domain == "ade-neg":
            from .ingest.ade_corpus import in_domain_negatives

            sents = in_domain_negatives(self._corpus_dir(), test_docs, seed=0)
        else:
            sents = [_unlabelled(s) for s in read_sentences(_resolve(self.path, i.in_domain)) if s.doc_id not in test_docs]
        return sents[:i.in_domain_limit] if i.in_domain_limit else sents

    def _pubmed_sentences(self, problems) -> list[Sentence]:
        from .ingest import pubmed_documents, sentences_of

        i = self.cfg.inputs
        key = os.environ.get(i.api_key_env) if i.api_key_env else None
        docs = pubmed_documents([_resolve(self.path, f) for f in i.files], i.query, problems=problems,
                                max_records=i.max_records, api_key=key, email=i.email, base_url=i.eutils_url)
        return list(sentences_of(docs, None, self.run_path("ingest", "pubmed_documents.jsonl")))

    def _run_label(self, stage: Stage) -> dict:
        from .labels import read_unpacked
        from .workflows import label

        lc, tc = self.cfg.label, self.teacher_cfg
        parts = [("train", lc.seed_labels)]
        if self._has_test() and lc.label_test:
            parts.append(("test", lc.seed_test_labels))
        if self.cfg.inputs.in_domain:
            parts.append(("in_domain", lc.seed_in_domain_labels))
        summary, failed_total = {}, 0
        for part, seed in parts:
            sentences = list(read_sentences(self.run_path("ingest", f"{part}.jsonl")))
            out = self.run_path("label", f"{part}.teacher.jsonl")
            if seed and not out.exists():
                # committed labels (ids, offsets, confidences; no text) laid onto this run's sentences
                # (a label file may cover more sentences than this run uses: past a train limit, or
                # other folds); with several files, the first that has a sentence labels it
                seen: set[str] = set()

                def seeded():
                    for f in self._seeds(seed):
                        for x in read_unpacked(f, sentences, unknown="skip"):
                            if x.id not in seen:
                                seen.add(x.id)
                                yield x

                n = write_jsonl(out, seeded())
                log.info("%s: %d seed labels from %s", part, n, seed)
            if not lc.call_teacher:
                summary[part] = self._seeds_only(part, sentences, out)
                continue
            stats = label(sentences, out, tc, checkpoint_every=lc.checkpoint_every, progress=self.progress).stats
            if lc.soft == "rescore" and part == "train":  # soft targets are for training
                self._rescore(out, tc)
            summary[part] = {k: v for k, v in stats.to_json().items() if k != "failure_reasons"}
            summary[part]["failure_reasons"] = dict(stats.failure_reasons)
            failed_total += stats.failed
        calls = sum(v["calls"] for v in summary.values())
        tokens = sum(v["prompt_tokens"] + v["completion_tokens"] for v in summary.values())
        cost = sum(v["cost_usd"] for v in summary.values())
        ref = sum(v["reference_cost_usd"] for v in summary.values())
        done = ", ".join(f"{v['labelled'] + v['skipped_existing']:,} {k}" for k, v in summary.items())
        line = (f"teacher {self.teacher_name}: {done} sentences labelled ({calls:,} new calls, {tokens:,} tokens, "
                f"${cost:.4f}; ${ref:.4f} at {tc.reference_model} prices)")
        if failed_total:
            line += f"; {failed_total:,} FAILED (see label/*.failures.jsonl; rerun to retry them)"
        return {**summary, "status": "partial" if failed_total else "done", "line": line}

    def _seeds_only(self, part: str, sentences: list[Sentence], out: Path) -> dict:
        """The label stage without a teacher: what the seeds cover, and (test part) an empty
        prediction, marked, for each sentence they do not."""
        have = {s.id: s for s in read_sentences(out)} if out.exists() else {}
        missing = [s for s in sentences if s.id not in have]
        if part == "test" and missing:
            name = f"teacher:{self.teacher_name}"
            for s in missing:
                have[s.id] = s.model_copy(update={"entities": [], "relations": [], "source": name,
                                                  "meta": {"teacher_label": "missing"}})
            write_jsonl(out, (have[s.id] for s in sentences))
        elif not out.exists():
            write_jsonl(out, [])
        if missing:
            log.warning("%s: %d sentence(s) have no seed label (%s)", part, len(missing),
                        "scored as the teacher predicting nothing" if part == "test" else "left out of training")
        return {"labelled": 0, "skipped_existing": len(sentences) - len(missing), "failed": 0, "calls": 0,
                "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "reference_cost_usd": 0.0,
                "without_label": len(missing), "failure_reasons": {}}

    def _rescore(self, path: Path, tc: TeacherConfig) -> None:
        from .teacher.rescore import rescore

        tmp = path.with_name(path.name.removesuffix(".jsonl") + ".rescored.jsonl")
        counts = rescore(read_sentences(path), tc, tmp, progress=self.progress)
        os.replace(tmp, path)
        log.info("rescored %s: %s", path, counts)

    def _run_train(self, stage: Stage) -> dict:
        from .workflows import train as train_student

        name = stage.name.removeprefix("train-")
        spec = self.cfg.students[name]
        cfg = spec.config
        if spec.labels == "teacher-hard":
            cfg = cfg.model_copy(update={"soft_labels": False})
        train = list(read_sentences(stage.inputs[0]))
        if spec.labels == "gold" and train and train[0].source != "gold":
            raise StageFailed(f"student {name}: labels: gold, but the train sentences are not gold ({train[0].source})")
        out = self.run_path(stage.name, "model")
        if spec.distill_from:
            return self._run_distill(name, spec, train, out)
        summary: dict = {}
        dev = None
        if spec.dev_share:
            from .workflows.student import dev_split

            train, dev = dev_split(train, spec.dev_share, seed=cfg.seed)
            summary["dev_sentences"] = len(dev)
        if spec.self_train:
            train, more = self._self_train_data(stage, name, spec, cfg, train)
            summary.update(more)
            if spec.self_train_epochs:
                cfg = cfg.model_copy(update={"epochs": spec.self_train_epochs})
        if spec.in_domain:  # the teacher's labels of the in-domain sentences: train only, never dev
            extra = list(read_sentences(self.run_path("label", "in_domain.teacher.jsonl")))
            train = train + extra
            summary["in_domain_sentences"] = len(extra)
        t = train_student(train, out, cfg, dev=dev, resume=True, progress=self.progress, name=name)
        st = f", self-trained on {summary['pseudo_sentences']:,} more" if "pseudo_sentences" in summary else ""
        if "in_domain_sentences" in summary:
            st += f", {summary['in_domain_sentences']:,} of them in-domain"
        if dev:
            best = t.kept_epoch
            summary.update(best_epoch=best["epoch"], dev_relation_f1=best.get("dev_relation_f1"))
            st += (f"; epoch {best['epoch']} kept by agreement with {len(dev):,} held-out {spec.labels} labels "
                   f"(dev relation F1 {100 * best['dev_relation_f1']:.1f})")
        return {"sentences": len(train), "soft_targets": t.soft_targets, "epochs": t.epochs,
                "train_seconds": round(t.seconds, 1), "device": t.device, **summary,
                "line": f"student {name} ({spec.labels} labels{', soft targets' if t.soft_targets else ''}"
                        f"{st}): {len(train):,} sentences, {t.epochs} epochs on {t.device}"}

    def _run_distill(self, name: str, spec: StudentSpec, train: list[Sentence], out: Path) -> dict:
        """Second stage: ``spec.distill_from``'s trained model teaches a new student on ``train``."""
        from .student.compress import compress_student

        srcs = [self.run_path(f"train-{ref}", "model") for ref in spec.teachers()]
        ccfg = spec.distill or CompressConfig()
        if ccfg.layers is None and ccfg.hidden is None:  # born again: the (first) earlier student's depth
            depth = json.loads((srcs[0] / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
            ccfg = ccfg.model_copy(update={"layers": depth})
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        transfer = list(read_sentences(self.run_path("ingest", "in_domain.jsonl"))) if spec.in_domain else []
        compress_student(srcs, train, ccfg, tmp, unlabeled=transfer, progress=self.progress)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
        info = json.loads((out / "compress.json").read_text())
        return {"sentences": len(train), "epochs": ccfg.epochs, "train_seconds": round(info["seconds"], 1),
                "device": "cpu", "distilled_from": spec.distill_from, "layers": ccfg.layers,
                **({"transfer_sentences": len(transfer)} if spec.in_domain else {}),
                "line": f"student {name} ({spec.labels} labels, second stage from {' + '.join(spec.teachers())}, "
                        f"{ccfg.layers} layers): {len(train):,} sentences, {ccfg.epochs} epochs on cpu"}

    def _self_train_data(self, stage: Stage, name: str, spec: StudentSpec, cfg, train: list[Sentence]
                         ) -> tuple[list[Sentence], dict]:
        """Round 1: train on the labelled sentences (or take ``self_train_from``'s model); it labels
        the unlabelled ones (hard labels: its confidences are dropped); round 2 trains on both."""
        from .student import Student
        from .workflows import train as train_student

        unlabeled = list(read_sentences(stage.inputs[1]))
        if not unlabeled:
            raise StageFailed(f"student {name}: self_train needs unlabelled train sentences; set inputs.train_limit "
                              "below the train split's size (the sentences past it are used)")
        r1 = self.run_path(f"train-{spec.self_train_from}", "model") if spec.self_train_from else self.run_path(stage.name, "round1")
        if not (r1 / "training.json").exists():
            train_student(train, r1, cfg, resume=True, progress=self.progress, name=f"{name}-round1")
        t0 = time.monotonic()
        pseudo = Student.from_pretrained(r1, device="cpu").predict(unlabeled)
        pseudo = [p.model_copy(update={
            "entities": [e.model_copy(update={"confidence": None}) for e in p.entities],
            "relations": [r.model_copy(update={"confidence": None}) for r in p.relations]}) for p in pseudo]
        write_jsonl(self.run_path(stage.name, "pseudo.jsonl"), pseudo)
        return train + pseudo, {"pseudo_sentences": len(pseudo), "pseudo_relations": sum(len(p.relations) for p in pseudo),
                                "pseudo_seconds": round(time.monotonic() - t0, 1)}

    def _run_evaluate(self, stage: Stage) -> dict:
        import torch

        from .workflows import evaluate_files, predict

        if self.cfg.evaluate.threads:
            torch.set_num_threads(self.cfg.evaluate.threads)
        gold = list(read_sentences(self.run_path("ingest", "test.jsonl")))
        systems: dict[str, list[Sentence]] = {}
        info: dict[str, dict] = {}
        pred_dir = self.run_path("evaluate", "predictions")
        lab = self.manifest["stages"].get("label", {}).get("summary", {})
        if self.cfg.label is not None and self.cfg.label.label_test:
            tp = self.run_path("label", "test.teacher.jsonl")
            name = f"teacher ({self.teacher_name})"
            systems[name] = list(read_sentences(tp))
            t = lab.get("test", {})
            info[name] = {"role": "teacher", **self._teacher_cost(systems[name]),
                          "made": "the LLM's own labels on the test sentences: the line a distilled student must beat"}
            if t.get("calls") and t.get("seconds"):
                info[name]["sentences_per_second"] = round(t["labelled"] / t["seconds"], 3)
        for n in self.cfg.students:
            r = predict(self.run_path(f"train-{n}", "model"), gold, pred_dir / f"{n}.jsonl", device="cpu")
            systems[f"student {n}"] = r.predictions
            info[f"student {n}"] = {"role": "student", "parameters": r.parameters,
                                    "sentences_per_second": round(len(gold) / r.seconds, 1), "device": "cpu",
                                    "threads": torch.get_num_threads(), "made": self.cfg.students[n].how_made()}
        ec = self.cfg.evaluate
        metrics = evaluate_files(gold, systems, self.run_path("evaluate", "metrics.json"), bootstrap=ec.bootstrap,
                                 seed=ec.seed, info=info, inputs={"gold": str(self.run_path("ingest", "test.jsonl"))}).metrics
        parts = [f"{k}: relation F1 {100 * v['relation']['strict']['micro']['f1']:.1f}"
                 for k, v in metrics["systems"].items()]
        return {"systems": {k: {"entity_f1": v["entity"]["strict"]["micro"]["f1"],
                                "relation_f1": v["relation"]["strict"]["micro"]["f1"]}
                            for k, v in metrics["systems"].items()},
                "line": f"{len(gold):,} test sentences; " + "; ".join(parts)}

    def _teacher_cost(self, labels: list[Sentence]) -> dict:
        """Cost per 1,000 sentences from the token counts the labels carry (so labels seeded from
        an earlier run are priced too): the teacher's own price, else the reference model's."""
        usage = [s.meta.get("usage") or {} for s in labels]
        if not labels or not any(usage):
            return {}
        return self.teacher_cfg.cost_per_1k(self.teacher_name, len(labels),
                                            sum(u.get("prompt_tokens", 0) for u in usage),
                                            sum(u.get("completion_tokens", 0) for u in usage))

    def _run_report(self, stage: Stage) -> dict:
        from .workflows import report

        preds = {}
        if self.cfg.label is not None and self.cfg.label.label_test:
            preds[f"teacher ({self.teacher_name})"] = self.run_path("label", "test.teacher.jsonl")
        for n in self.cfg.students:
            preds[f"student {n}"] = self.run_path("evaluate", "predictions", f"{n}.jsonl")
        rc = self.cfg.report
        paths = report(self.run_path("evaluate", "metrics.json"), self.run_path("report"), gold=self.run_path("ingest", "test.jsonl"),
                       predictions=preds, excerpts=rc.excerpts, title=rc.title,
                       command=f"ade-distill run {self.path}").files
        return {"files": {k: str(v) for k, v in paths.items()}, "line": f"-> {paths['html']}"}

    def _run_extract(self, stage: Stage) -> dict:
        from .io import AdeWriter
        from .workflows import predict

        who = stage.settings["student"]
        preds = predict(self.run_path(f"train-{who}", "model"), self.run_path("ingest", "documents.sentences.jsonl"), quantize=self.cfg.extract.quantize,
                        device="cpu").predictions
        for fmt in ("jsonl", "csv"):
            with AdeWriter(self.run_path("extract", f"ades.{fmt}"), fmt) as w:
                w.add(None, preds)
        return {"sentences": len(preds), "ades": w.n_records,
                "line": f"student {who}: {w.n_records:,} ADE records from {len(preds):,} sentences -> "
                        f"{self.run_path('extract', 'ades.jsonl')}"}


def run_pipeline(path: str | Path, *, run_dir: str | Path | None = None, start: str | None = None,
                 only: str | None = None, force: bool = False, progress: bool = True) -> dict:
    """Run a pipeline YAML (skipping stages that are up to date); returns its manifest."""
    return Pipeline(path, run_dir=run_dir, progress=progress).run(start=start, only=only, force=force)
