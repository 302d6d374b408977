"""Negation and speculation cues learned from BioScope (Vincze et al. 2008, CC BY 2.0): a logistic
regression over each word and its neighbours says whether the word is a cue ("not", "no evidence
of", "may", "suggest"), which tells "not only" from "not", and "or" in "whether A or B" from a plain
list; a cue's reach is its clause (from the clause's start, so the subject of "X was not detected" is
inside, to the next clause break).

The weights ship with the package as JSON (resources/cues/bioscope_cues.json, no pickle), made by
``python scripts/train_cues.py``; reports/pv_coding/assertion.md measures them on abstracts the
model did not see. Hypothetical and historical flags have no such corpus and keep NegEx cue lists
(post/assertion.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from math import exp
from pathlib import Path
from typing import Iterable, Sequence

KINDS = ("negation", "speculation")
WORD = re.compile(r"\w+|[^\w\s]")
# words and marks that end the reach of a cue (BioScope's scopes stop at the clause)
BREAKS = frozenset({";", ":", "but", "however", "although", "though", "whereas", "while", "which", "whereby",
                    "except", "(", ")", "[", "]"})


def words(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group().lower()) for m in WORD.finditer(text)]


def features(ws: Sequence[tuple[int, int, str]], i: int) -> list[str]:
    """The word, its two neighbours either side, bigrams and trigrams around it, prefix and suffix."""
    def at(j: int) -> str:
        return ws[j][2] if 0 <= j < len(ws) else ("<s>" if j < 0 else "</s>")

    w, p, p2, n, n2 = at(i), at(i - 1), at(i - 2), at(i + 1), at(i + 2)
    return [f"w={w}", f"p={p}", f"n={n}", f"pw={p}_{w}", f"wn={w}_{n}", f"p2w={p2}_{p}_{w}", f"wn2={w}_{n}_{n2}",
            f"suf={w[-4:]}", f"pre={w[:4]}"]


def train(sentences: Iterable, c: float = 1.0) -> dict:
    """Fit one tagger per kind on BioScope sentences (ingest/bioscope.py); returns the JSON-ready
    weights {kind: {"bias": b, "weights": {feature: w}}}. An L1 penalty keeps the few features that
    matter (a few thousand of about 800,000), so the shipped file stays small."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    rows, labels = [], {k: [] for k in KINDS}
    for s in sentences:
        ws = words(s.text)
        spans = {k: [(a, b) for kind, a, b, _ in s.cues if kind == k] for k in KINDS}
        for i, (a, b, _) in enumerate(ws):
            rows.append(dict.fromkeys(features(ws, i), 1))
            for k in KINDS:
                labels[k].append(int(any(x <= a and b <= y for x, y in spans[k])))
    vec = DictVectorizer()
    x = vec.fit_transform(rows)
    x.indices, x.indptr = x.indices.astype("int32"), x.indptr.astype("int32")  # liblinear takes 32-bit indices
    names = vec.get_feature_names_out()
    out = {}
    for k in KINDS:
        if not any(labels[k]):
            raise ValueError(f"no {k} cue in the training sentences")
        clf = LogisticRegression(C=c, l1_ratio=1.0, solver="liblinear", max_iter=2000, random_state=0).fit(x, labels[k])
        out[k] = {"bias": round(float(clf.intercept_[0]), 5),
                  "weights": {str(f): round(float(w), 5) for f, w in zip(names, clf.coef_[0]) if round(float(w), 5)}}
    return out


@dataclass
class CueTagger:
    weights: dict
    threshold: float = 0.5
    _last: tuple | None = field(default=None, repr=False, compare=False)  # (text, _reach's answer)

    @classmethod
    def load(cls, path: str | Path | None = None, threshold: float = 0.5) -> "CueTagger":
        """The shipped BioScope weights, or a file ``scripts/train_cues.py`` wrote."""
        return cls(_load(str(path) if path else None)["kinds"], threshold)

    def _cue_indexes(self, ws: Sequence[tuple[int, int, str]]) -> dict[str, list[int]]:
        """Indexes (into ``ws``) of the words that are cues, per kind."""
        feats = [features(ws, i) for i in range(len(ws))]
        out = {}
        for k in KINDS:
            m = self.weights[k]
            w, b = m["weights"], m["bias"]
            out[k] = [i for i, fs in enumerate(feats) if _sigmoid(b + sum(w.get(f, 0.0) for f in fs)) > self.threshold]
        return out

    def cues(self, text: str) -> dict[str, list[tuple[int, int]]]:
        """Character spans of the cue words, per kind."""
        ws = words(text)
        return {k: [(ws[i][0], ws[i][1]) for i in idx] for k, idx in self._cue_indexes(ws).items()}

    def scopes(self, text: str) -> dict[str, list[tuple[int, int]]]:
        """Per kind, the character span each cue reaches: the clause around it."""
        ws, reach = self._reach(text)
        return {k: [(ws[lo][0], ws[hi][1]) for lo, hi in r] for k, r in reach.items()}

    def word_flags(self, text: str) -> dict[str, list[tuple[int, int]]]:
        """Per kind, the (start, end) of every word inside a cue's reach (the cue words included)."""
        ws, reach = self._reach(text)
        out = {}
        for k, r in reach.items():
            inside = [False] * len(ws)
            for lo, hi in r:
                inside[lo:hi + 1] = [True] * (hi + 1 - lo)
            out[k] = [(a, b) for (a, b, w), f in zip(ws, inside) if f and w[0].isalnum()]
        return out

    def _reach(self, text: str) -> tuple[list[tuple[int, int, str]], dict[str, list[tuple[int, int]]]]:
        """The words of ``text`` and, per kind, the (first, last) word index each cue reaches: from
        the first word after the previous clause break to the last before the next. One pass each way;
        the last sentence's answer is kept, as the chain asks once per event of the same sentence."""
        last = self._last  # read once: another thread may replace it
        if last is not None and last[0] == text:
            return last[1]
        ws = words(text)
        n = len(ws)
        left, right = [0] * n, [0] * n
        for j in range(n):
            left[j] = j if j == 0 or ws[j - 1][2] in BREAKS else left[j - 1]
        for j in reversed(range(n)):
            right[j] = j if j == n - 1 or ws[j + 1][2] in BREAKS else right[j + 1]
        reach = {k: sorted({(left[i], right[i]) for i in idx}) for k, idx in self._cue_indexes(ws).items()}
        self._last = (text, (ws, reach))
        return ws, reach


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + exp(-z)) if z > -60 else 0.0


@lru_cache(maxsize=4)
def _load(path: str | None) -> dict:
    if path is None:
        text = resources.files("ade_distill").joinpath("resources/cues/bioscope_cues.json").read_text(encoding="utf-8")
        where = "ade_distill/resources/cues/bioscope_cues.json"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), path
    try:
        data = json.loads(text)
        for k in KINDS:
            float(data["kinds"][k]["bias"])
            dict(data["kinds"][k]["weights"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{where}: not a cue model written by scripts/train_cues.py ({exc})") from None
    return data
