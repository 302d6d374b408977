"""What every workflow shares: progress bars, sentence inputs, the --strict rule."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from ..core.errors import InputError
from ..core.schema import Sentence, read_sentences


def progress(items: Iterable, desc: str, unit: str = "sentence", enabled: bool = True) -> Iterator:
    """A tqdm bar on stderr that switches itself off when stderr is not a terminal."""
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit=f" {unit}s", disable=None if enabled else True, leave=False)


def sentence_list(x: Iterable[Sentence] | str | Path) -> list[Sentence]:
    """Sentences given as objects or as a JSONL path."""
    return list(read_sentences(x)) if isinstance(x, (str, Path)) else list(x)


def check_strict(problems, strict: bool) -> None:
    """``--strict``: any skipped record fails the job (raised inside the output's write, so the
    output is discarded)."""
    if strict and len(problems):
        raise InputError(f"--strict: {len(problems):,} bad record(s) found (each named in a warning above); "
                         "nothing written")


def unlabelled(s: Sentence) -> Sentence:
    """The sentence without labels (text the teacher or a student labels, never gold)."""
    return s.model_copy(update={"entities": [], "relations": [], "source": "unlabeled"})
