"""What every workflow shares: progress bars on long work."""

from __future__ import annotations

from typing import Iterable, Iterator


def progress(items: Iterable, desc: str, unit: str = "sentence", enabled: bool = True) -> Iterator:
    """A tqdm bar on stderr that switches itself off when stderr is not a terminal."""
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit=f" {unit}s", disable=None if enabled else True, leave=False)
