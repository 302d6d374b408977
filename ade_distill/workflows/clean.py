"""Confident learning on the teacher's labels: which of them a student, trained without them,
disagrees with confidently (cleanlab's token classification methods), to drop or down-weight.

The teacher-labelled sentences are split into ``folds`` groups of whole documents; for each group
a student is trained on the others' teacher labels and predicts each word's joint (DRUG x ADE)
B/I/O probabilities on the held-out group (out-of-sample, as cleanlab requires). cleanlab then
scores every sentence's labels (``get_label_quality_scores``: the worst word's self-confidence by
default) and flags the words whose label is likely wrong (``find_label_issues``). Only the
teacher's labels and the student's predictions are used: no gold label reaches this step, so the
cleaned labels may train a distilled student.

Output: the labels with ``meta.label_quality`` (the sentence's score, 0-1) and
``meta.label_issues`` (the flagged word indices) on every sentence (``action: weight``; train with
``sentence_weight: label_quality``), or without the sentences that have a flagged word
(``action: drop``); and ``<out>.clean.json`` with the counts and settings.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import InputError
from ..core.schema import Sentence, atomic_open, write_jsonl
from .common import sentence_list

log = logging.getLogger(__name__)


def word_labels(s: Sentence) -> list[int]:
    """The joint (DRUG x ADE) label id of each word under a sentence's labels (JOINT_LABELS order)."""
    from ..student.encoding import soft_word_targets
    from ..core.text import word_spans

    return soft_word_targets(s, word_spans(s.text), 0.0)[0]


def label_quality(sentences: Sequence[Sentence], word_probs: Sequence[np.ndarray]) -> tuple[list[float], list[list[int]]]:
    """Per sentence, cleanlab's label quality score and the indices of the words it flags, from
    out-of-sample (n_words, 9) word probabilities. A sentence without words scores 1, no flags."""
    from cleanlab.token_classification.filter import find_label_issues
    from cleanlab.token_classification.rank import get_label_quality_scores

    idx = [i for i, s in enumerate(sentences) if len(word_probs[i])]
    labels = [word_labels(sentences[i]) for i in idx]
    probs = [np.asarray(word_probs[i], dtype=np.float64) for i in idx]
    for i, lab, p in zip(idx, labels, probs):
        if len(lab) != len(p):
            raise InputError(f"sentence {sentences[i].id}: {len(lab)} word labels but {len(p)} word predictions")
    probs = [p / p.sum(1, keepdims=True) for p in probs]  # exact rows for cleanlab's checks
    scores = [1.0] * len(sentences)
    flags: list[list[int]] = [[] for _ in sentences]
    if not idx:
        return scores, flags
    sent_scores, _ = get_label_quality_scores(labels, probs)
    for i, sc in zip(idx, sent_scores):
        scores[i] = float(sc)
    for si, wi in find_label_issues(labels, probs):
        flags[idx[si]].append(int(wi))
    return scores, [sorted(f) for f in flags]


def document_folds(sentences: Sequence[Sentence], k: int, seed: int = 13) -> list[int]:
    """A fold number per sentence; whole documents per fold (GroupKFold on shuffled documents)."""
    from sklearn.model_selection import GroupKFold

    groups = [s.doc_id or s.id for s in sentences]
    if len(set(groups)) < k:
        raise InputError(f"{k} folds need at least {k} documents; the labels have {len(set(groups))}")
    rng = np.random.default_rng(seed)
    order = {g: r for g, r in zip(sorted(set(groups)), rng.permutation(len(set(groups))))}
    fold = [0] * len(sentences)
    for f, (_, test) in enumerate(GroupKFold(n_splits=k).split(sentences, groups=[order[g] for g in groups])):
        for i in test:
            fold[i] = f
    return fold


@dataclass
class CleanResult:
    out: Path
    sentences: int
    flagged: int
    kept: int
    folds: int
    action: str
    summary: Path

    def lines(self) -> list[str]:
        return [f"confident learning over {self.folds} folds: {self.flagged:,} of {self.sentences:,} sentences have a "
                f"likely label error; {self.action}: {self.kept:,} sentences -> {self.out} (summary {self.summary})"]


def clean_labels(labels: str | Path | Sequence[Sentence], out: str | Path, *, config=None, folds: int = 4,
                 action: str = "weight", work: str | Path | None = None, progress: bool = True,
                 **overrides) -> CleanResult:
    """Cross-validated students on the teacher's labels, cleanlab on their predictions; writes the
    labels with their quality scores (``weight``) or without the flagged sentences (``drop``)."""
    from ..student.extract import word_probabilities
    from ..student.model import load_student
    from ..student.train import train_student
    from .student import train_config

    if action not in ("weight", "drop"):
        raise InputError(f"unknown action {action!r} (weight or drop)")
    if folds < 2:
        raise InputError("confident learning needs at least 2 folds")
    sents = sentence_list(labels)
    if not sents:
        raise InputError(f"{labels}: no labelled sentences")
    cfg = train_config(config, **overrides)
    fold_of = document_folds(sents, folds, cfg.seed)
    probs: list[np.ndarray | None] = [None] * len(sents)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for f in range(folds):
            train = [s for s, k in zip(sents, fold_of) if k != f]
            held = [i for i, k in enumerate(fold_of) if k == f]
            log.info("fold %d of %d: training on %d sentences, predicting %d", f + 1, folds, len(train), len(held))
            model_dir = train_student(train, None, cfg, Path(tmp) / f"fold-{f}", progress=progress, name=f"clean-{f}")
            model, tok = load_student(model_dir, "cpu")
            for i, p in zip(held, word_probabilities(model, tok, [sents[i] for i in held], batch_size=cfg.eval_batch_size)):
                probs[i] = p
    scores, flags = label_quality(sents, probs)
    flagged = sum(1 for f in flags if f)
    out = Path(out)
    if action == "weight":
        kept = [s.model_copy(update={"meta": {**s.meta, "label_quality": round(sc, 4), "label_issues": fl}})
                for s, sc, fl in zip(sents, scores, flags)]
    else:
        kept = [s for s, fl in zip(sents, flags) if not fl]
    write_jsonl(out, kept)
    summary = out.with_suffix(".clean.json")
    with atomic_open(summary) as fh:
        json.dump({"labels": str(labels) if isinstance(labels, (str, Path)) else "<sentences>", "sentences": len(sents),
                   "folds": folds, "action": action, "flagged_sentences": flagged,
                   "flagged_words": sum(len(f) for f in flags), "kept": len(kept),
                   "score_quantiles": {q: round(float(np.quantile(scores, q)), 4) for q in (0.05, 0.25, 0.5)},
                   "train_config": cfg.model_dump(mode="json")}, fh, indent=2)
    return CleanResult(out, len(sents), flagged, len(kept), folds, action, summary)
