"""The teacher LLM as the MedDRA coder's last step: it picks, among the Preferred Terms the nearest-name
search found for a mention, the one that means the same reaction, or none of them.

The nearest-name search puts the right PT among its first five for most mentions whose PT the
dictionary holds (reports/pv_coding/meddra_tuned.md: top-5 far above top-1), and its similarity
score cannot tell "ALT increased" from "AST increased". A language model reading the mention and the
numbered candidates can; and "0: none of these" gives the "not coded" outcome a reason rather than a
distance. The answer is one number; its probability is read from the first answer token's
log-probabilities (renormalised over the valid numbers), so a threshold on it trades coverage for
accuracy the way the similarity threshold did. Calls go through the teacher's own path (cache,
retries, cost), so a rerun replays its answers.

    with Teacher(TeacherConfig.from_yaml("pipelines/teachers/qwen1.5b-llamacpp-lines.yaml")) as t:
        coder = MeddraCoder(release, synonyms=..., encoder=..., reranker=LlmReranker(t))
"""

from __future__ import annotations

import math
import re
from typing import Sequence

from .backends import Completion, SamplingParams

PROMPT_VERSION = "meddra-rerank-v1"
SYSTEM = ("You code adverse reaction mentions from drug labels and case reports to MedDRA Preferred Terms. "
          "You are given a mention and numbered candidate terms. Answer with the number of the candidate that "
          "names the same reaction as the mention (a synonym, abbreviation or spelling variant counts), or 0 if "
          "none of them does. Answer with the number only.")


def rerank_messages(mention: str, names: Sequence[str]) -> list[dict]:
    """The chat messages asking which of ``names`` (1-based) codes ``mention``; 0 for none."""
    lines = [f'Mention: "{mention}"', "Candidates:", *(f"{i}. {n}" for i, n in enumerate(names, 1)),
             "0. none of these"]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def option_probabilities(comp: Completion, n: int) -> list[float]:
    """P(answer = i) for i = 0..n: the first answer token's top log-probabilities, renormalised over
    the valid numbers; without log-probabilities (a backend that gives none), 1 for the number the
    answer text starts with. All zeros when the answer names no valid number."""
    probs = [0.0] * (n + 1)
    if comp.tokens and comp.tokens[0].top:
        for token, logprob in comp.tokens[0].top:
            t = token.strip()
            if t.isdigit() and int(t) <= n:
                probs[int(t)] += math.exp(logprob)
        total = sum(probs)
        if total > 0:
            return [p / total for p in probs]
    m = re.match(r"\s*(\d+)", comp.text)
    if m and int(m.group(1)) <= n:
        probs[int(m.group(1))] = 1.0
    return probs


class LlmReranker:
    """Chooses a mention's PT among its candidates with a ``Teacher`` (already started)."""

    def __init__(self, teacher, k: int = 5, *, progress: bool = False) -> None:
        self.teacher = teacher
        self.k = k
        self.progress = progress
        self._bar = None
        self.params = SamplingParams(temperature=0.0, max_tokens=2, seed=0, logprobs=True, top_logprobs=10,
                                     response_format="none")

    def choose(self, mention: str, names: Sequence[str]) -> tuple[int, float]:
        """(index into ``names``, probability), or (-1, probability of "none") when the teacher picks none."""
        names = list(names)[: self.k]
        if not names:
            return -1, 1.0
        comp = self.teacher._complete(rerank_messages(mention, names), self.params, sample=0, attempt=0)
        if self.progress:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(desc="rerank", unit=" mention")
            self._bar.update()
        probs = option_probabilities(comp, len(names))
        best = max(range(len(probs)), key=lambda i: probs[i])
        return best - 1, probs[best]
