"""A pipeline file: the stage settings (``workflows.settings``) under one root, validated on
load with errors that name the file, key and line; paths in it resolved the same way everywhere."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..core.config import ConfigError, load_yaml_model
from ..teacher.labeler import TeacherConfig
from ..workflows.settings import (EvaluateConfig, ExtractConfig, InputsConfig, LabelConfig, ReportConfig,
                                  StudentSpec, SynthesizeSpec, ViewSpec)
from .manifest import REPO_DIR

__all__ = ["EvaluateConfig", "ExtractConfig", "InputsConfig", "LabelConfig", "PipelineConfig", "ReportConfig",
           "StudentSpec", "ViewSpec", "default_shared_data", "load_pipeline", "resolve_path"]


def default_shared_data() -> Path:
    return Path(os.environ.get("ADE_DISTILL_SHARED_DATA", REPO_DIR.parent / "shared" / "data"))


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    run_dir: str | None = None  # default runs/<name>
    inputs: InputsConfig
    label: LabelConfig | None = Field(default_factory=LabelConfig)
    synthesize: SynthesizeSpec | None = None  # teacher-written training sentences (students' synthetic: N)
    gold_seed: int = 13  # the order the gold budget (students' gold_k, views' shots_gold_k) draws train sentences in
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
                       "distill_from": spec.teachers(), "start_from": [spec.start_from] if spec.start_from else []}
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
            if spec.synthetic and (self.synthesize is None or spec.labels == "gold"):
                raise ValueError(f"student {name!r}: synthetic needs a synthesize section and teacher labels")
            if spec.synthetic and self.synthesize is not None and spec.synthetic > self.synthesize.n:
                raise ValueError(f"student {name!r}: synthetic {spec.synthetic} is more than synthesize.n {self.synthesize.n}")
            if (spec.labels == "hybrid") != bool(spec.gold_k) and spec.labels != "gold":
                raise ValueError(f"student {name!r}: labels: hybrid goes with gold_k (and gold_k with hybrid or gold)")
            if spec.gold_k and (spec.distill_from or spec.self_train or spec.federated):
                raise ValueError(f"student {name!r}: gold_k does not combine with distill_from, self_train or federated")
            if spec.start_from and (spec.distill_from or spec.self_train or spec.federated):
                raise ValueError(f"student {name!r}: start_from does not combine with distill_from, self_train or federated")
            if spec.federated and (spec.distill_from or spec.self_train or spec.dev_share):
                raise ValueError(f"student {name!r}: federated does not combine with distill_from, self_train or dev_share")
            if spec.in_domain and spec.labels == "gold" and not spec.distill_from:
                raise ValueError(f"student {name!r}: in_domain sentences have no gold labels (labels: gold)")
        if self.label is not None:
            trained = self.label.train_views or ["teacher", *(v.name for v in self.label.views)]
            for v in self.label.views:
                if "train" not in v.parts and v.name in trained:
                    raise ValueError(f"label.views {v.name!r}: labels no train part, so it cannot be in train_views "
                                     "(set label.train_views)")
        if self.extract.student and self.extract.student not in self.students:
            raise ValueError(f"extract.student {self.extract.student!r} is not one of the students")
        return self


def load_pipeline(path: str | Path) -> tuple[PipelineConfig, dict[str, TeacherConfig]]:
    """The pipeline and its resolved teacher configs ("teacher", then each view by name; none
    without a label stage); errors name file, key and line."""
    path = Path(path)
    cfg = load_yaml_model(path, PipelineConfig)
    teachers: dict[str, TeacherConfig] = {}
    if cfg.label is not None:
        specs = [("teacher", "label.teacher", cfg.label.teacher)]
        specs += [(v.name, f"label.views[{i}].teacher", v.teacher) for i, v in enumerate(cfg.label.views)]
        for name, key, t in specs:
            if isinstance(t, str):
                try:
                    t = TeacherConfig.from_yaml(resolve_path(path, t))
                except ConfigError as exc:
                    raise ConfigError(f"{path}: {key} -> {exc}") from exc
            teachers[name] = t
    return cfg, teachers


def resolve_path(base_file: Path, p: str) -> Path:
    """Paths in a pipeline file are relative to the repository root if they exist there,
    else to the pipeline file's folder."""
    q = Path(os.path.expandvars(os.path.expanduser(p)))
    if q.is_absolute():
        return q
    for root in (Path.cwd(), REPO_DIR, base_file.parent):
        if (root / q).exists():
            return root / q
    return Path.cwd() / q
