"""The workflows: one function per job, each returning a result object.

The command line (``cli``) parses arguments, calls one of these and prints its result; a pipeline
(``pipeline``) calls the same functions and records their results in its manifest. Below this
layer sit the stage packages (ingest, teacher, student, evaluate), which know nothing of either.
"""

from .clean import CleanResult, clean_labels
from .evaluate import EvaluateResult, FoldsResult, ReportResult, evaluate_files, report, summarise_folds
from .ingest import IngestResult, ValidateResult, ingest_ade_corpus, ingest_ade_splits, ingest_pubmed, ingest_text, validate
from .review import (ExportResult, PushResult, ReviewImportResult, review_export, review_import, review_pull, review_push,
                     review_retrain, with_reviewed)
from .student import ExtractResult, PredictResult, compress, export_onnx, extract, predict, train
from .teacher import LabelResult, label, pack_labels, rescore, unpack_labels

__all__ = [
    "CleanResult", "EvaluateResult", "ExportResult", "ExtractResult", "FoldsResult", "IngestResult", "LabelResult", "PredictResult",
    "PushResult", "ReportResult", "ReviewImportResult", "ValidateResult",
    "clean_labels", "compress", "evaluate_files", "export_onnx", "extract", "ingest_ade_corpus", "ingest_ade_splits", "ingest_pubmed",
    "ingest_text", "label", "pack_labels", "predict", "report", "rescore", "review_export", "review_import",
    "review_pull", "review_push", "review_retrain", "summarise_folds", "train", "unpack_labels", "validate", "with_reviewed",
]
