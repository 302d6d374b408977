"""LLM strings -> character offsets in the sentence; strings that are not there are rejected.

Matching goes from strict to loose: exact, then case-insensitive, then whitespace- and
hyphen-insensitive, then a bounded fuzzy match over word windows. Every span returned
lies inside the sentence, so an instruction hidden in a document can never make the
teacher label text that is not in that document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

_WORD = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    kind: str  # exact | case | space | fuzzy
    score: float = 1.0


def _all(pattern: re.Pattern, text: str, kind: str) -> list[Match]:
    return [Match(m.start(), m.end(), kind) for m in pattern.finditer(text) if m.end() > m.start()]


def find_spans(text: str, needle: str, *, fuzzy_threshold: float = 0.88, max_fuzzy_words: int = 12
               ) -> list[Match]:
    """Every occurrence of ``needle`` in ``text`` at the strictest level that finds one."""
    needle = needle.strip().strip(".,;:")
    if not needle:
        return []
    for kind, flags in (("exact", 0), ("case", re.IGNORECASE)):
        found = _all(re.compile(re.escape(needle), flags), text, kind)
        if found:
            return found
    words = _WORD.findall(needle)
    if not words:
        return []
    # whitespace-insensitive: tokens separated by optional whitespace (handles "beta-2" vs "beta - 2")
    loose = re.compile(r"\s*".join(re.escape(w) for w in words), re.IGNORECASE)
    found = _all(loose, text, "space")
    if found:
        return found
    if len(words) > max_fuzzy_words or len(needle) < 4:
        return []
    tokens = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    target = " ".join(words).lower()
    best: list[Match] = []
    best_score = fuzzy_threshold
    n = len(words)
    for size in {max(1, n - 1), n, n + 1}:
        for i in range(0, len(tokens) - size + 1):
            s, e = tokens[i][0], tokens[i + size - 1][1]
            cand = " ".join(_WORD.findall(text[s:e])).lower()
            score = SequenceMatcher(None, cand, target, autojunk=False).ratio()
            if score > best_score + 1e-9:
                best, best_score = [Match(s, e, "fuzzy", score)], score
            elif abs(score - best_score) <= 1e-9 and best:
                best.append(Match(s, e, "fuzzy", score))
    return best


# Text that addresses the model rather than naming a drug or an effect. Grounding keeps labels
# inside the sentence, but a sentence can itself carry an injected instruction; a model that
# obeys it may return the instruction as an entity. Such strings are rejected.
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|prompts?|rules|above|previous|prior)\b"
    r"|\b(system prompt|you are (now )?an? |as an ai\b|respond with|return (only|the following))",
    re.IGNORECASE)


def looks_like_instruction(s: str) -> bool:
    """True for a string that speaks to the model ("Ignore all previous instructions")."""
    return bool(_INSTRUCTION.search(s))


def _gap(a: Match, b: Match) -> int:
    if a.start < b.end and b.start < a.end:
        return 0
    return b.start - a.end if a.end <= b.start else a.start - b.end


def resolve_pair(drugs: list[Match], effects: list[Match]) -> tuple[Match, Match]:
    """Where a string occurs several times, take the drug and effect mentions nearest each other."""
    return min(((d, e) for d in drugs for e in effects),
               key=lambda p: (_gap(p[0], p[1]), p[1].start, p[0].start))
