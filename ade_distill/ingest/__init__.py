"""Sources -> Documents and Sentences in the shared schema."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("ade_distill.ingest")


from ..errors import InputError  # noqa: E402,F401  (re-exported: ade_distill.ingest.InputError)


@dataclass
class Problems:
    """Bad records met in a batch: each is logged (file, line or record, cause) and counted.

    One bad record never stops a batch; it is reported here so nothing is dropped silently.
    """

    messages: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.messages.append(message)
        log.warning("skipped: %s", message)

    def __len__(self) -> int:
        return len(self.messages)


def require_file(path, what: str = "file"):
    """Return ``path`` as a Path, or raise InputError if it is not an existing file."""
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such {what}")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    return p


from .ade_corpus import AdeCorpusStats, ingest_ade_corpus, ingest_ade_splits  # noqa: E402
from .pubmed import EUtilsClient, ingest_pubmed_medline, ingest_pubmed_xml  # noqa: E402
from .text_files import ingest_text  # noqa: E402

__all__ = [
    "AdeCorpusStats", "EUtilsClient", "InputError", "Problems", "ingest_ade_corpus",
    "ingest_ade_splits", "ingest_pubmed_medline", "ingest_pubmed_xml", "ingest_text",
]
