"""The screening cascade: cheap steps in front of the student, each a setting, each counted.

1. **Drug prefilter** (``DrugMatcher``): the listed drugs and their synonyms in one Aho-Corasick
   automaton (pyahocorasick), matched on a normal form of the text (lower case, hyphens and
   whitespace as one space, same length as the text so offsets hold) at word boundaries. Applied per
   abstract before sentence splitting (an abstract that names no listed drug is not split) and per
   sentence after (a sentence that names none is not read by the encoder). Linear in the text, one
   pass whatever the number of names.
2. **Sentence gate** (``SentenceGate``, optional): "does this sentence state an ADE?", word 1-2-gram
   hashing features and a logistic regression (scikit-learn) trained on the teacher's labels only,
   its threshold chosen for a target recall (default 0.99) on a held-out share of those labels.
   Saved as safetensors (weights) and JSON (settings, threshold, what it measured): no pickle.
3. The student, on what passes.

What a step skips is counted (``CascadeCounts``): the run summary and the article table's report
say how many abstracts and sentences each step left out; nothing is dropped silently.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..core.errors import InputError
from ..core.schema import Document, Sentence

# hyphens, dashes and the minus sign: "5-fluorouracil", "5‐fluorouracil" and "5 fluorouracil" meet
_SPACE = {ord(c): " " for c in "-‐‑‒–—―−\t\n\r\x0b\x0c\xa0\u2009\u202f"}


def normal_form(text: str) -> str:
    """Lower case, hyphens and whitespace as a space; the same length as ``text`` (offsets hold)."""
    t = text.translate(_SPACE)
    low = t.lower()
    if len(low) == len(t):
        return low
    # a character whose lower case is longer ("İ"): kept as it is, so that offsets hold
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in t)


def match_key(name: str) -> str:
    """A name as the matcher compares it: its normal form, runs of spaces as one."""
    return " ".join(normal_form(name).split())


class DrugMatcher:
    """Every listed drug (canonical name -> synonyms) in one automaton; matches at word boundaries."""

    def __init__(self, names: dict[str, Iterable[str]]) -> None:
        import ahocorasick

        self.automaton = ahocorasick.Automaton()
        owners: dict[str, list[str]] = {}
        for canon, syns in names.items():
            for s in {canon, *syns}:
                k = match_key(s)
                if k and canon not in owners.setdefault(k, []):
                    owners[k].append(canon)
        for k, canons in owners.items():
            self.automaton.add_word(k, (len(k), tuple(canons)))
        self.size = len(owners)
        if owners:
            self.automaton.make_automaton()

    def __bool__(self) -> bool:
        return self.size > 0

    def _whole_words(self, text: str):
        """(start, end, listed drugs) of each match that stands as whole words, as the automaton finds them."""
        t = normal_form(text)
        for end, (n, canons) in self.automaton.iter(t):
            a, b = end - n + 1, end + 1
            if (a == 0 or not t[a - 1].isalnum()) and (b == len(t) or not t[b].isalnum()):
                yield a, b, canons

    def find(self, text: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """(start, end, listed drugs) of every whole-word match, in text order."""
        if not self.size:
            return []
        return sorted(self._whole_words(text), key=lambda x: (x[0], -x[1]))

    def names_in(self, text: str) -> bool:
        """Whether the text names a listed drug (stops at the first whole-word match)."""
        return bool(self.size) and any(True for _ in self._whole_words(text))

    def mentioned(self, text: str) -> list[str]:
        """The listed drugs the text names, in order of first mention."""
        seen: dict[str, None] = {}
        for _, _, canons in self.find(text):
            for c in canons:
                seen.setdefault(c, None)
        return list(seen)


# ---------------------------------------------------------------- the sentence gate

@dataclass
class GateSettings:
    n_features: int = 2 ** 18
    ngram_max: int = 2
    recall: float = 0.99
    validation_share: float = 0.2
    C: float = 1.0
    seed: int = 0


class SentenceGate:
    """A linear "does this sentence state an ADE?" score on hashed word n-grams, and its threshold."""

    def __init__(self, coef: np.ndarray, intercept: float, threshold: float, settings: GateSettings,
                 measured: dict | None = None) -> None:
        self.coef, self.intercept, self.threshold = coef.astype(np.float32), float(intercept), float(threshold)
        self.settings, self.measured = settings, measured or {}
        self._vec = _vectorizer(settings)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self._vec.transform(texts) @ self.coef).ravel() + self.intercept

    def keep(self, texts: Sequence[str]) -> np.ndarray:
        return self.scores(texts) >= self.threshold

    @classmethod
    def train(cls, sentences: Sequence[Sentence], settings: GateSettings | None = None) -> "SentenceGate":
        """Fit on teacher-labelled sentences (positive: the teacher found a drug -> ADE relation) and
        choose the threshold on a held-out share of their documents: the highest score that keeps
        ``settings.recall`` of the held-out positives."""
        from sklearn.linear_model import LogisticRegression

        s = settings or GateSettings()
        if not sentences:
            raise InputError("the sentence gate needs teacher-labelled sentences to learn from")
        y = np.array([bool(x.relations) for x in sentences])
        if y.all() or not y.any():
            raise InputError("the sentence gate needs sentences with and without a teacher relation")
        docs = sorted({x.doc_id or x.id for x in sentences})
        rng = np.random.default_rng(s.seed)
        held = set(rng.choice(docs, size=max(1, round(len(docs) * s.validation_share)), replace=False).tolist())
        val = np.array([(x.doc_id or x.id) in held for x in sentences])
        if not y[val].any():
            raise InputError("the gate's validation share holds no positive sentence: give more labelled sentences")
        vec = _vectorizer(s)
        texts = [x.text for x in sentences]
        X = vec.transform(texts)
        t0 = time.perf_counter()
        lr = LogisticRegression(C=s.C, max_iter=2000, class_weight="balanced")
        lr.fit(X[~val], y[~val])
        score = np.asarray(X[val] @ lr.coef_.ravel()).ravel() + lr.intercept_[0]
        threshold = recall_threshold(score[y[val]], s.recall)
        passed = score >= threshold
        measured = {"train_sentences": int((~val).sum()), "validation_sentences": int(val.sum()),
                    "validation_positives": int(y[val].sum()),
                    "validation_recall": round(float(passed[y[val]].mean()), 4),
                    "validation_pass_rate": round(float(passed.mean()), 4),
                    "validation_negative_pass_rate": round(float(passed[~y[val]].mean()), 4) if (~y[val]).any() else None,
                    "fit_seconds": round(time.perf_counter() - t0, 2)}
        return cls(lr.coef_.ravel(), lr.intercept_[0], threshold, s, measured)

    def save(self, folder: str | Path) -> Path:
        from safetensors.numpy import save_file

        from ..core.io import atomic_open

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"coef": self.coef, "intercept": np.array([self.intercept], dtype=np.float32)},
                  str(folder / "gate.safetensors"))
        with atomic_open(folder / "gate.json") as fh:
            json.dump({"kind": "ade-distill sentence gate", "threshold": self.threshold,
                       "settings": asdict(self.settings), "measured": self.measured}, fh, indent=2)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "SentenceGate":
        from safetensors.numpy import load_file

        folder = Path(folder)
        meta_path, weights = folder / "gate.json", folder / "gate.safetensors"
        if not meta_path.exists() or not weights.exists():
            raise InputError(f"{folder}: not a sentence gate (gate.json and gate.safetensors expected; "
                             "make one with `ade-distill gate`)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        t = load_file(str(weights))
        return cls(t["coef"], float(t["intercept"][0]), meta["threshold"], GateSettings(**meta["settings"]),
                   meta.get("measured"))


def recall_threshold(positive_scores: np.ndarray, recall: float) -> float:
    """The highest threshold t with share(positive_scores >= t) >= recall."""
    if not 0 < recall <= 1:
        raise InputError(f"recall must be in (0, 1], got {recall}")
    ordered = np.sort(np.asarray(positive_scores, dtype=np.float64))
    if not len(ordered):
        raise InputError("no positive scores to choose a threshold on")
    k = int(np.floor((1 - recall) * len(ordered) + 1e-9))  # at most k positives may fall below
    return float(ordered[min(k, len(ordered) - 1)])


def _vectorizer(s: GateSettings):
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=s.n_features, ngram_range=(1, s.ngram_max), alternate_sign=False,
                             norm="l2", lowercase=True)


# ---------------------------------------------------------------- the cascade

@dataclass
class CascadeCounts:
    abstracts: int = 0
    abstracts_without_listed_drug: int = 0  # not split, not read
    sentences: int = 0                      # sentences of the abstracts that were split
    sentences_without_listed_drug: int = 0
    sentences_below_gate: int = 0
    sentences_to_student: int = 0

    def add(self, other: "CascadeCounts | dict") -> None:
        d = other if isinstance(other, dict) else asdict(other)
        for k, v in d.items():
            setattr(self, k, getattr(self, k) + v)

    def to_json(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (f"cascade: {self.abstracts:,} abstracts, {self.abstracts_without_listed_drug:,} name no listed drug "
                f"(not split); of {self.sentences:,} sentences {self.sentences_without_listed_drug:,} name no listed "
                f"drug, {self.sentences_below_gate:,} are below the gate, {self.sentences_to_student:,} go to the student")


@dataclass
class Cascade:
    """The steps in front of the student; with neither a matcher nor a gate every sentence is read."""

    matcher: DrugMatcher | None = None
    gate: SentenceGate | None = None
    counts: CascadeCounts = field(default_factory=CascadeCounts)

    @property
    def active(self) -> bool:
        return bool(self.matcher) or self.gate is not None

    def keep_document(self, doc: Document) -> bool:
        self.counts.abstracts += 1
        if self.matcher and not self.matcher.names_in(doc.full_text):
            self.counts.abstracts_without_listed_drug += 1
            return False
        return True

    def keep_sentences(self, sentences: Sequence[Sentence]) -> list[bool]:
        self.counts.sentences += len(sentences)
        keep = [True] * len(sentences)
        if self.matcher:
            keep = [self.matcher.names_in(s.text) for s in sentences]
            self.counts.sentences_without_listed_drug += keep.count(False)
        if self.gate is not None:
            idx = [i for i, k in enumerate(keep) if k]
            passed = self.gate.keep([sentences[i].text for i in idx])
            for i, p in zip(idx, passed):
                keep[i] = bool(p)
            self.counts.sentences_below_gate += int(len(idx) - passed.sum())
        self.counts.sentences_to_student += sum(keep)
        return keep

    def take_counts(self) -> CascadeCounts:
        """The counts so far, and a fresh start (one shard's worth at a time)."""
        c, self.counts = self.counts, CascadeCounts()
        return c
