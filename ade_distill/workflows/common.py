"""What every workflow shares: progress bars, sentence inputs, the --strict rule."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..core.errors import InputError
from ..core.schema import Sentence, read_sentences


def progress(items: Iterable, desc: str, unit: str = "sentence", enabled: bool = True) -> Iterator:
    """A tqdm bar on stderr that switches itself off when stderr is not a terminal."""
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit=f" {unit}s", disable=None if enabled else True, leave=False)


def sentence_list(x: Iterable[Sentence] | str | Path | Sequence[str | Path]) -> list[Sentence]:
    """Sentences given as objects, a JSONL path, or several JSONL paths (read in order; a sentence
    id two files share is an error naming both, as resumable work is keyed by id)."""
    if isinstance(x, (str, Path)):
        return list(read_sentences(x))
    items = list(x)
    if not items or not all(isinstance(p, (str, Path)) for p in items):
        return items
    out: list[Sentence] = []
    where: dict[str, Path] = {}
    for path in map(Path, items):
        for s in read_sentences(path):
            if s.id in where:
                raise InputError(f"{path}: sentence id {s.id!r} is also in {where[s.id]} (ids must be unique across "
                                 "the input files)")
            where[s.id] = path
            out.append(s)
    return out


def one_or_many(paths: Sequence[str | Path]):
    """A command line's file list as the workflows take it: one path, or the list."""
    return paths[0] if len(paths) == 1 else list(paths)


def check_strict(problems, strict: bool) -> None:
    """``--strict``: any skipped record fails the job (raised inside the output's write, so the
    output is discarded)."""
    if strict and len(problems):
        raise InputError(f"--strict: {len(problems):,} bad record(s) found (each named in a warning above); "
                         "nothing written")


def unlabelled(s: Sentence) -> Sentence:
    """The sentence without labels (text the teacher or a student labels, never gold)."""
    return s.model_copy(update={"entities": [], "relations": [], "source": "unlabeled"})
