"""Pipelines: a YAML file of stage settings -> ingest, label, train, evaluate, report, extract
(``runner``), each stage recorded in a manifest and skipped when current (``manifest``), the k-fold
protocol on top. The stage work itself is in ``workflows``."""

from .manifest import REPO_DIR, STAGE_CODE, STAGE_WORKFLOWS, Manifest, Stage, StageFailed, code_version, sha256_path, stage_modules
from .runner import Pipeline, run_pipeline
from .settings import PipelineConfig, StudentSpec, default_shared_data, load_pipeline



__all__ = ["Manifest", "Pipeline", "PipelineConfig", "REPO_DIR", "STAGE_CODE", "STAGE_WORKFLOWS", "Stage", "StageFailed", "StudentSpec",
           "code_version", "default_shared_data", "load_pipeline", "run_pipeline", "sha256_path", "stage_modules"]
