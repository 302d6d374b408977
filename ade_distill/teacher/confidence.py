"""Soft labels: span confidences from token log-probabilities, and from self-consistency."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from .prompts import json_value_spans


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]]  # the top alternatives (token, logprob), chosen one included


def token_probability(t: TokenLogprob) -> float:
    """The chosen token's probability renormalised over the listed alternatives.

    Under a grammar (llama.cpp json schema) the server reports the unconstrained
    distribution; renormalising over the top alternatives removes most of the mass the
    grammar forbids. Without alternatives it is the raw probability.
    """
    p = math.exp(t.logprob)
    if not t.top:
        return p
    mass = sum(math.exp(lp) for _, lp in t.top)
    if not any(tok == t.token for tok, _ in t.top):
        mass += p
    return min(1.0, p / mass) if mass > 0 else p


def value_confidences(tokens: Sequence[TokenLogprob],
                      value_spans: Callable[[str], list[tuple[str, int, int]]] = json_value_spans,
                      ) -> list[tuple[str, str, float]]:
    """(key, value, confidence) for each drug and effect value in the generated answer
    (``value_spans`` finds them in the answer's format: JSON by default).

    A value's confidence is the geometric mean of its tokens' renormalised probabilities
    (the first token, where the model decides what to copy, is included).
    """
    text, starts = "", []
    for t in tokens:
        starts.append(len(text))
        text += t.token
    out = []
    for key, s, e in value_spans(text):
        logs = [math.log(max(token_probability(t), 1e-12))
                for t, ts in zip(tokens, starts) if ts < e and ts + len(t.token) > s]
        conf = math.exp(sum(logs) / len(logs)) if logs else 1.0
        out.append((key, text[s:e], conf))
    return out
