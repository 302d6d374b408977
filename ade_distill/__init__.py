"""ade-distill: distill a GPT-class LLM into a small PubMedBERT extractor of adverse drug events."""

__version__ = "0.1.0"

from .schema import Document, Entity, Relation, Sentence, read_documents, read_sentences, write_jsonl  # noqa: E402

__all__ = ["Document", "Entity", "Relation", "Sentence", "read_documents", "read_sentences",
           "write_jsonl", "__version__"]
