"""Span and relation scoring, seqeval cross-check, bootstrap intervals, agreement, calibration.

Scores are built from per-sentence (tp, fp, fn) counts, so a bootstrap over sentences is a
resample of rows and costs nothing but sums; the same resamples serve every system, which
makes the paired comparison between systems exact.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from itertools import combinations
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..core.schema import LABELS, Entity, Sentence
from ..core.errors import AdeDistillError
from ..core.text import word_spans

log = logging.getLogger(__name__)

RELATION_MODES = ("strict", "lenient", "text")
_WS = re.compile(r"\s+")


class EvaluationError(AdeDistillError, ValueError):
    """Gold and predictions that cannot be scored together (e.g. missing sentences)."""


def gold_ids_sha(gold: Sequence[Sentence]) -> str:
    """A short fingerprint of which sentences were scored (their ids, in order)."""
    import hashlib

    return hashlib.sha1("\n".join(g.id for g in gold).encode("utf-8")).hexdigest()[:16]


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall and F1 with the counts; 0/0 is 1.0 when nothing was expected or said."""
    tp, fp, fn = int(tp), int(fp), int(fn)
    p = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    r = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def _overlap(a: Entity, b: Entity) -> bool:
    return a.start < b.end and b.start < a.end


def max_matching(n_left: int, n_right: int, edges: Mapping[int, Sequence[int]]) -> int:
    """Size of a maximum one-to-one matching (Kuhn's augmenting paths; sets here are tiny)."""
    match_right = [-1] * n_right

    def augment(u: int, seen: list[bool]) -> bool:
        for v in edges.get(u, ()):
            if not seen[v]:
                seen[v] = True
                if match_right[v] == -1 or augment(match_right[v], seen):
                    match_right[v] = u
                    return True
        return False

    return sum(augment(u, [False] * n_right) for u in range(n_left))


def _count(gold: list, pred: list, same) -> tuple[int, int, int]:
    """(tp, fp, fn) under a one-to-one matching where ``same(g, p)`` allows a match."""
    edges = {i: [j for j, p in enumerate(pred) if same(g, p)] for i, g in enumerate(gold)}
    tp = max_matching(len(gold), len(pred), edges)
    return tp, len(pred) - tp, len(gold) - tp


def _strict(g: Entity, p: Entity) -> bool:
    return g.label == p.label and g.start == p.start and g.end == p.end


def _lenient(g: Entity, p: Entity) -> bool:
    return g.label == p.label and _overlap(g, p)


def _relations(s: Sentence) -> list[tuple[Entity, Entity]]:
    ents = {e.id: e for e in s.entities}
    return [(ents[r.drug], ents[r.ade]) for r in s.relations]


def norm_text(text: str) -> str:
    """Case-folded, whitespace-normalised text: how LLM outputs without offsets are compared."""
    return _WS.sub(" ", text).strip().casefold()


def bio_tags(s: Sentence, label: str, tokens: list[tuple[int, int]] | None = None) -> list[str]:
    """IOB2 tags of one label over the word tokens of ``s`` (a token overlapping a span is in it)."""
    tokens = tokens if tokens is not None else word_spans(s.text)
    tags = ["O"] * len(tokens)
    for ent in sorted((e for e in s.entities if e.label == label), key=lambda e: e.start):
        inside = [i for i, (ts, te) in enumerate(tokens) if ts < ent.end and ent.start < te]
        for k, i in enumerate(inside):
            if tags[i] == "O":
                tags[i] = ("B-" if k == 0 else "I-") + label
    return tags


def sentence_counts(gold: Sentence, pred: Sentence) -> dict[str, tuple[int, int, int]]:
    """Per-sentence (tp, fp, fn) for every metric key such as 'entity.strict.DRUG'."""
    out: dict[str, tuple[int, int, int]] = {}
    for label in LABELS:
        g = [e for e in gold.entities if e.label == label]
        p = [e for e in pred.entities if e.label == label]
        out[f"entity.strict.{label}"] = _count(g, p, _strict)
        out[f"entity.lenient.{label}"] = _count(g, p, _lenient)
    g_rel, p_rel = _relations(gold), _relations(pred)
    out["relation.strict.ADE"] = _count(
        g_rel, p_rel, lambda a, b: _strict(a[0], b[0]) and _strict(a[1], b[1]))
    out["relation.lenient.ADE"] = _count(
        g_rel, p_rel, lambda a, b: _lenient(a[0], b[0]) and _lenient(a[1], b[1]))
    g_txt = {(norm_text(d.text), norm_text(a.text)) for d, a in g_rel}
    p_txt = {(norm_text(d.text), norm_text(a.text)) for d, a in p_rel}
    tp = len(g_txt & p_txt)
    out["relation.text.ADE"] = (tp, len(p_txt) - tp, len(g_txt) - tp)
    return out


def _seqeval_scores(gold: Sequence[Sentence], pred: Sequence[Sentence]) -> dict:
    """seqeval over per-label IOB2 sequences (one sequence per sentence and label, so a drug
    nested in its ADE is representable)."""
    from seqeval.metrics.sequence_labeling import precision_recall_fscore_support

    y_true, y_pred = [], []
    for g, p in zip(gold, pred):
        toks = word_spans(g.text)
        for label in LABELS:
            y_true.append(bio_tags(g, label, toks))
            y_pred.append(bio_tags(p, label, toks))
    out = {"by_label": {}}
    p_, r_, f_, s_ = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    from seqeval.metrics.sequence_labeling import get_entities

    labels = sorted({t for t, _, _ in get_entities(y_true)} | {t for t, _, _ in get_entities(y_pred)})
    for lab, p, r, f, s in zip(labels, p_, r_, f_, s_):
        n_pred = sum(1 for seq in y_pred for t, _, _ in get_entities(seq) if t == lab)
        tp = int(round(r * s))
        out["by_label"][lab] = {"precision": float(p), "recall": float(r), "f1": float(f),
                                "tp": tp, "fp": n_pred - tp, "fn": int(s) - tp}
    for lab in LABELS:
        out["by_label"].setdefault(lab, prf(0, 0, 0))
    tot = Counter()
    for d in out["by_label"].values():
        tot.update({"tp": d["tp"], "fp": d["fp"], "fn": d["fn"]})
    out["micro"] = prf(tot["tp"], tot["fp"], tot["fn"])
    return out


def _f1_of(arr: np.ndarray) -> np.ndarray:
    tp, fp, fn = arr[..., 0], arr[..., 1], arr[..., 2]
    denom = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)


def _metric_keys(mode_prefix: str) -> list[str]:
    if mode_prefix.startswith("relation"):
        return [f"{mode_prefix}.ADE"]
    return [f"{mode_prefix}.{lab}" for lab in LABELS]


def align(gold: Sequence[Sentence], pred: Iterable[Sentence], name: str, allow_missing: bool
          ) -> tuple[list[Sentence], int, int]:
    """Predictions in gold order; missing ones become empty predictions if allowed."""
    from ..core.schema import SchemaError, unique_ids

    by_id: dict[str, Sentence] = {}
    try:
        for p in unique_ids(pred, name):
            by_id[p.id] = p
    except SchemaError as exc:
        raise EvaluationError(str(exc)) from exc
    gold_ids = {g.id for g in gold}
    extra = sum(1 for pid in by_id if pid not in gold_ids)
    out, missing = [], 0
    for g in gold:
        p = by_id.get(g.id)
        if p is None:
            missing += 1
            p = Sentence(id=g.id, doc_id=g.doc_id, text=g.text, source="student:missing")
        elif p.text != g.text:
            raise EvaluationError(f"{name}: sentence {g.id!r} has a different text than in gold")
        out.append(p)
    if missing and not allow_missing:
        raise EvaluationError(f"{name}: {missing} of {len(gold)} gold sentences have no prediction "
                              "(use --allow-missing to count them as predicting nothing)")
    if extra:
        log.warning("%s: %d predicted sentences are not in gold and were ignored", name, extra)
    return out, missing, extra


def calibration(gold: Sequence[Sentence], pred: Sequence[Sentence], n_bins: int = 10) -> dict | None:
    """Reliability of confidences: for predicted entities and relations, is a confidence of
    0.8 right 80% of the time (strict match)? Also a precision-recall sweep over thresholds."""
    out = {}
    for kind in ("entity", "relation"):
        conf, correct = [], []
        n_gold = 0
        for g, p in zip(gold, pred):
            if kind == "entity":
                n_gold += len(g.entities)
                for e in p.entities:
                    if e.confidence is not None:
                        conf.append(e.confidence)
                        correct.append(any(_strict(x, e) for x in g.entities))
            else:
                g_rel = _relations(g)
                n_gold += len(g_rel)
                for r, (d, a) in zip(p.relations, _relations(p)):
                    if r.confidence is not None:
                        conf.append(r.confidence)
                        correct.append(any(_strict(gd, d) and _strict(ga, a) for gd, ga in g_rel))
        if not conf:
            continue
        c, y = np.asarray(conf), np.asarray(correct, dtype=float)
        edges = np.linspace(0, 1, n_bins + 1)
        idx = np.clip(np.digitize(c, edges[1:-1]), 0, n_bins - 1)
        bins = []
        ece = 0.0
        for b in range(n_bins):
            m = idx == b
            if m.any():
                bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int(m.sum()),
                             "confidence": float(c[m].mean()), "accuracy": float(y[m].mean())})
                ece += m.sum() / len(c) * abs(c[m].mean() - y[m].mean())
        order = np.argsort(-c, kind="stable")
        tp_cum = np.cumsum(y[order])
        k = np.arange(1, len(c) + 1)
        thresholds = c[order]
        keep = np.r_[thresholds[1:] != thresholds[:-1], True]  # last index of each threshold
        curve = [{"threshold": float(t), "precision": float(tp / kk),
                  "recall": float(tp / n_gold) if n_gold else 0.0}
                 for t, tp, kk in zip(thresholds[keep], tp_cum[keep], k[keep])]
        out[kind] = {"n": len(c), "ece": float(ece), "bins": bins, "pr_curve": curve}
    return out or None


def evaluate(gold: Iterable[Sentence], systems: Mapping[str, Iterable[Sentence]], *,
             allow_missing: bool = False, n_bootstrap: int = 1000, seed: int = 13,
             confidence: float = 0.95, info: Mapping[str, dict] | None = None) -> dict:
    """Score every system against gold; return the metrics.json dictionary.

    Shape: {"n_sentences", "systems": {NAME: {"entity": {"strict"|"lenient"|"seqeval":
    {"micro", "by_label"}}, "relation": {"strict"|"lenient"|"text": {"micro"}}, ...}},
    "paired_bootstrap", "agreement", "bootstrap"}. Every F1 carries a bootstrap interval
    ("ci") over sentences.
    """
    gold = list(gold)
    if not gold:
        raise EvaluationError("no gold sentences")
    if len({g.id for g in gold}) != len(gold):
        raise EvaluationError("gold has duplicate sentence ids")
    n = len(gold)
    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, n, size=(n_bootstrap, n)) if n_bootstrap else None
    alpha = (1 - confidence) / 2
    aligned: dict[str, list[Sentence]] = {}
    result: dict = {"n_sentences": n, "gold_ids_sha": gold_ids_sha(gold), "systems": {}, "bootstrap": {
        "resamples": n_bootstrap, "seed": seed, "confidence": confidence, "unit": "sentence"}}
    boot_f1: dict[str, dict[str, np.ndarray]] = {}

    for name, pred_iter in systems.items():
        pred, missing, extra = align(gold, pred_iter, name, allow_missing)
        aligned[name] = pred
        rows = [sentence_counts(g, p) for g, p in zip(gold, pred)]
        counts = {k: np.array([r[k] for r in rows], dtype=np.int64) for k in rows[0]}
        sys_out: dict = {"entity": {}, "relation": {}, "n_missing": missing, "n_extra": extra}
        boot_f1[name] = {}
        for kind, modes in (("entity", ("strict", "lenient")), ("relation", RELATION_MODES)):
            for mode in modes:
                keys = _metric_keys(f"{kind}.{mode}")
                block: dict = {"micro": None}
                total = sum(counts[k] for k in keys)
                block["micro"] = prf(*total.sum(0))
                if resamples is not None:
                    f = _f1_of(total[resamples].sum(1))
                    block["micro"]["ci"] = [float(np.quantile(f, alpha)), float(np.quantile(f, 1 - alpha))]
                    boot_f1[name][f"{kind}.{mode}"] = f
                if kind == "entity":
                    block["by_label"] = {}
                    for k in keys:
                        lab = k.rsplit(".", 1)[1]
                        block["by_label"][lab] = prf(*counts[k].sum(0))
                        if resamples is not None:
                            f = _f1_of(counts[k][resamples].sum(1))
                            block["by_label"][lab]["ci"] = [float(np.quantile(f, alpha)),
                                                            float(np.quantile(f, 1 - alpha))]
                sys_out[kind][mode] = block
        try:
            sys_out["entity"]["seqeval"] = _seqeval_scores(gold, pred)
        except ImportError:  # seqeval is a cross-check; a minimal install may lack it
            log.warning("seqeval not installed: token-level cross-check skipped")
        cal = calibration(gold, pred)
        if cal:
            sys_out["calibration"] = cal
        if info and name in info:
            sys_out["info"] = dict(info[name])
        result["systems"][name] = sys_out

    # Paired bootstrap: the share of the same resamples in which A's F1 beats B's.
    paired = {}
    if resamples is not None:
        for a, b in combinations(systems, 2):
            paired[f"{a} vs {b}"] = {
                metric: {"p_a_better": float(np.mean(boot_f1[a][metric] > boot_f1[b][metric])),
                         "p_b_better": float(np.mean(boot_f1[b][metric] > boot_f1[a][metric])),
                         "delta_f1": float(result["systems"][a][metric.split(".")[0]][metric.split(".")[1]]["micro"]["f1"]
                                           - result["systems"][b][metric.split(".")[0]][metric.split(".")[1]]["micro"]["f1"])}
                for metric in ("entity.strict", "relation.strict", "relation.text")}
    result["paired_bootstrap"] = paired

    # Agreement: B scored against A as if A were gold (e.g. student against its teacher).
    agreement = {}
    for a, b in combinations(systems, 2):
        rows = [sentence_counts(x, y) for x, y in zip(aligned[a], aligned[b])]
        tot = lambda keys: np.array([[r[k] for k in keys] for r in rows]).sum((0, 1))  # noqa: E731
        agreement[f"{a} vs {b}"] = {
            "entity_strict_f1": prf(*tot(_metric_keys("entity.strict")))["f1"],
            "relation_strict_f1": prf(*tot(_metric_keys("relation.strict")))["f1"],
            "relation_text_f1": prf(*tot(_metric_keys("relation.text")))["f1"],
        }
    result["agreement"] = agreement
    return result


def error_examples(gold: Sequence[Sentence], pred: Sequence[Sentence]) -> dict:
    """Strict-match false positives and false negatives of entities and relations, per sentence."""
    fps, fns = [], []
    missed: dict[str, Counter] = {lab: Counter() for lab in LABELS}
    for g, p in zip(gold, pred):
        for e in p.entities:
            if not any(_strict(x, e) for x in g.entities):
                fps.append((g, e))
        for e in g.entities:
            if not any(_strict(x, e) for x in p.entities):
                fns.append((g, e))
                missed[e.label][norm_text(e.text)] += 1
    return {"false_positives": fps, "false_negatives": fns, "missed": missed}
