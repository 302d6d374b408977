"""ade-distill: distill a GPT-class LLM into a small PubMedBERT extractor of adverse drug events.

The Python API (the README's "Python API" section shows it at work)::

    from ade_distill import (read_sentences, Teacher, TeacherConfig, train, Student, evaluate_files,
                             report, run_pipeline)

Heavy parts (torch, transformers) load on first use, so ``import ade_distill`` stays fast.
"""

__version__ = "0.1.0"

from .core.errors import AdeDistillError, InputError, ModelError  # noqa: E402
from .core.schema import Document, Entity, Relation, Sentence, read_documents, read_sentences, write_jsonl  # noqa: E402

# name -> module that defines it, imported when first asked for (PEP 562)
_LAZY = {
    "Teacher": "ade_distill.teacher", "TeacherConfig": "ade_distill.teacher",
    "Student": "ade_distill.student", "TrainConfig": "ade_distill.student",
    "AdeRecord": "ade_distill.core.io", "AdeWriter": "ade_distill.core.io",
    "documents_from": "ade_distill.ingest", "sentences_of": "ade_distill.ingest",
    "label": "ade_distill.workflows", "train": "ade_distill.workflows", "predict": "ade_distill.workflows",
    "extract": "ade_distill.workflows", "evaluate_files": "ade_distill.workflows", "report": "ade_distill.workflows",
    "compress": "ade_distill.workflows", "clean_labels": "ade_distill.workflows",
    "ingest_ade_corpus": "ade_distill.workflows",
    "ingest_ade_splits": "ade_distill.workflows", "ingest_pubmed": "ade_distill.workflows",
    "ingest_text": "ade_distill.workflows", "pack_labels": "ade_distill.workflows",
    "unpack_labels": "ade_distill.workflows", "Pipeline": "ade_distill.pipeline",
    "run_pipeline": "ade_distill.pipeline",
}

__all__ = [
    "AdeDistillError", "AdeRecord", "AdeWriter", "Document", "Entity", "InputError", "ModelError", "Pipeline",
    "Relation", "Sentence", "Student", "Teacher", "TeacherConfig", "TrainConfig", "__version__", "clean_labels", "compress",
    "documents_from", "evaluate_files", "extract", "ingest_ade_corpus", "ingest_ade_splits", "ingest_pubmed",
    "ingest_text", "label", "pack_labels", "predict", "read_documents", "read_sentences", "report", "run_pipeline",
    "sentences_of", "train", "unpack_labels", "write_jsonl",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ade_distill' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
