"""Spans <-> word tags <-> word pieces, windows, and soft targets.

Tags: a drug can sit inside its ADE ("Codeine intoxication"), which one BIO sequence cannot
hold, so each word carries a pair of BIO tags (DRUG layer, ADE layer) encoded as one of 9
joint labels ("B-DRUG|I-ADE"...). One softmax head, loadable as a plain
``AutoModelForTokenClassification``. Labels sit on each word's first word piece; the other
pieces are ignored (-100). Sentences longer than the model's limit are cut into
overlapping word windows so no span is cut: every word is predicted from the window in
which it is most central.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Sequence

import numpy as np
import torch

from ..core.schema import Entity, Relation, Sentence
from ..core.text import word_spans

LAYERS = ("DRUG", "ADE")
LAYER_TAGS = ("O", "B", "I")


def _joint_name(d: str, a: str) -> str:
    if d == "O" and a == "O":
        return "O"
    return f"{'O' if d == 'O' else d + '-DRUG'}|{'O' if a == 'O' else a + '-ADE'}"


JOINT_LABELS = [_joint_name(d, a) for d, a in product(LAYER_TAGS, LAYER_TAGS)]
LABEL2ID = {lab: i for i, lab in enumerate(JOINT_LABELS)}
IGNORE = -100


def joint_id(drug_tag: str, ade_tag: str) -> int:
    return LAYER_TAGS.index(drug_tag) * 3 + LAYER_TAGS.index(ade_tag)


def split_joint(i: int) -> tuple[str, str]:
    return LAYER_TAGS[i // 3], LAYER_TAGS[i % 3]


def word_tags(words: list[tuple[int, int]], entities: list[Entity], label: str,
              min_conf: float = 0.0) -> tuple[list[str], list[float]]:
    """BIO tags of one layer over words, and each word's confidence of being in a span."""
    tags, conf = ["O"] * len(words), [0.0] * len(words)
    for ent in sorted((e for e in entities if e.label == label), key=lambda e: e.start):
        c = 1.0 if ent.confidence is None else ent.confidence
        inside = [i for i, (s, e) in enumerate(words) if s < ent.end and ent.start < e]
        for k, i in enumerate(inside):
            conf[i] = max(conf[i], c)
            if c >= min_conf and tags[i] == "O":
                tags[i] = "B" if k == 0 else "I"
    return tags, conf


def tags_to_spans(words: list[tuple[int, int]], tags: list[str]) -> list[tuple[int, int, list[int]]]:
    """(start, end, word indices) of each span in an IOB2 layer (a stray I starts a span)."""
    spans, cur = [], []
    for i, t in enumerate(tags):
        if t == "B" or (t == "I" and not cur):
            if cur:
                spans.append(cur)
            cur = [i]
        elif t == "I":
            cur.append(i)
        else:
            if cur:
                spans.append(cur)
            cur = []
    if cur:
        spans.append(cur)
    return [(words[c[0]][0], words[c[-1]][1], c) for c in spans]


@dataclass
class Window:
    """One model input: word pieces of words[w0:w1] of a sentence."""

    sentence: int
    w0: int
    w1: int
    input_ids: list[int]
    word_of_piece: list[int | None]  # sentence word index for each piece (None: special/non-first)
    first_piece: dict[int, int]  # sentence word index -> piece position of its first piece
    pieces_of_word: dict[int, list[int]]


def encode_words(tokenizer, text: str, words: list[tuple[int, int]], w0: int, w1: int) -> tuple[list[int], list[int | None], dict, dict]:
    """Word pieces for words[w0:w1] of ``text`` (one pass of the fast tokenizer)."""
    chunk = [text[s:e] for s, e in words[w0:w1]]
    enc = tokenizer(chunk, is_split_into_words=True, add_special_tokens=True, truncation=False, verbose=False)
    return (enc["input_ids"], *_piece_maps(enc.word_ids(), w0))


def _piece_maps(wids: list[int | None], w0: int) -> tuple[list[int | None], dict, dict]:
    """word_of_piece, first_piece and pieces_of_word from a fast tokenizer's word ids."""
    word_of_piece: list[int | None] = []
    first: dict[int, int] = {}
    pieces: dict[int, list[int]] = {}
    for pos, w in enumerate(wids):
        if w is None:
            word_of_piece.append(None)
            continue
        sw = w0 + w
        pieces.setdefault(sw, []).append(pos)
        if sw not in first:
            first[sw] = pos
            word_of_piece.append(sw)
        else:
            word_of_piece.append(None)
    return word_of_piece, first, pieces


def make_windows(tokenizer, text: str, sentence: int, max_length: int, stride_words: int = 16) -> list[Window]:
    """Windows covering every word; consecutive windows overlap by ``stride_words`` words."""
    words = word_spans(text)
    if not words:
        ids, wop, first, pieces = encode_words(tokenizer, text, words, 0, 0)
        return [Window(sentence, 0, 0, ids, wop, first, pieces)]
    out, w0 = [], 0
    while True:
        lo, hi = w0 + 1, len(words)
        # the largest w1 whose pieces fit (binary search on the word count)
        best = None
        while lo <= hi:
            mid = (lo + hi) // 2
            ids, wop, first, pieces = encode_words(tokenizer, text, words, w0, mid)
            if len(ids) <= max_length:
                best, lo = (mid, ids, wop, first, pieces), mid + 1
            else:
                hi = mid - 1
        if best is None:  # a single word longer than the limit: truncate its pieces
            ids, wop, first, pieces = encode_words(tokenizer, text, words, w0, w0 + 1)
            best = (w0 + 1, ids[:max_length - 1] + ids[-1:], wop[:max_length - 1] + wop[-1:], first,
                    {k: [p for p in v if p < max_length - 1] for k, v in pieces.items()})
        w1, ids, wop, first, pieces = best
        out.append(Window(sentence, w0, w1, ids, wop, first, pieces))
        if w1 >= len(words):
            return out
        w0 = max(w0 + 1, w1 - stride_words)


def make_windows_many(tokenizer, texts: Sequence[str], max_length: int, stride_words: int = 16,
                      words_of: Sequence[list[tuple[int, int]]] | None = None) -> list[list[Window]]:
    """``make_windows`` for many sentences (window sentence index = position in ``texts``): one
    batched call of the fast tokenizer for all of them; only a sentence whose pieces exceed
    ``max_length`` (or one without words) takes the per-window search."""
    words_of = words_of if words_of is not None else [word_spans(t) for t in texts]
    todo = [i for i, w in enumerate(words_of) if w]
    out: list[list[Window]] = [[] for _ in texts]
    if todo:
        enc = tokenizer([[texts[i][s:e] for s, e in words_of[i]] for i in todo], is_split_into_words=True,
                        add_special_tokens=True, truncation=False, verbose=False)
        for b, i in enumerate(todo):
            ids = enc["input_ids"][b]
            if len(ids) <= max_length:
                out[i] = [Window(i, 0, len(words_of[i]), ids, *_piece_maps(enc.word_ids(b), 0))]
    for i, t in enumerate(texts):
        if not out[i]:
            out[i] = make_windows(tokenizer, t, i, max_length, stride_words)
    return out


def owner_windows(windows: list[Window], n_words: int) -> list[int]:
    """For each word, the index of the window where it is farthest from an edge."""
    owner = [0] * n_words
    best = [-1.0] * n_words
    for k, w in enumerate(windows):
        for i in range(w.w0, w.w1):
            margin = min(i - w.w0, w.w1 - 1 - i)
            if margin > best[i]:
                best[i], owner[i] = margin, k
    return owner


def soft_word_targets(s: Sentence, words: list[tuple[int, int]], min_conf: float) -> tuple[list[int], torch.Tensor]:
    """Hard joint label per word, and a (n_words, 9) soft distribution from entity confidences.

    In each layer a word inside a span of confidence c is B/I with probability c and O with
    1 - c; the joint distribution is the product of the two layers.
    """
    hard, dists = [], []
    layer = {lab: word_tags(words, s.entities, lab, min_conf) for lab in LAYERS}
    soft_tags = {lab: word_tags(words, s.entities, lab, 0.0)[0] for lab in LAYERS}
    for i in range(len(words)):
        hard.append(joint_id(layer["DRUG"][0][i], layer["ADE"][0][i]))
        per = []
        for lab in LAYERS:
            c = layer[lab][1][i]
            t = soft_tags[lab][i]
            v = torch.zeros(3)
            if t == "O":
                v[0] = 1.0
            else:
                v[LAYER_TAGS.index(t)] = c
                v[0] = 1.0 - c
            per.append(v)
        dists.append(torch.outer(per[0], per[1]).flatten())
    return hard, torch.stack(dists) if dists else torch.zeros(0, 9)


def bio_viterbi(probs) -> list[str]:
    """The most probable IOB2 tag sequence of one layer under the constraint that I only follows
    B or I, from per-word (O, B, I) probabilities (n_words, 3; a tensor or an array). Per-word
    argmax breaks a span in two when one inner word leans to O; this keeps "B O I" from happening
    at all. NumPy, float64: a few microseconds a word (torch's per-op overhead was most of the
    decoding time)."""
    p = np.asarray(probs, dtype=np.float64)
    n = p.shape[0]
    if n == 0:
        return []
    lp = np.log(np.clip(p, 1e-12, None))
    forbid = np.zeros((3, 3))  # prev x cur
    forbid[0, 2] = -np.inf  # O -> I
    score = lp[0].copy()
    score[2] = -np.inf  # a span starts with B
    back = np.empty((max(n - 1, 0), 3), dtype=np.int64)
    for i in range(1, n):
        cand = score[:, None] + forbid
        arg = cand.argmax(0)  # the first maximum on ties, as torch's max
        back[i - 1] = arg
        score = cand[arg, np.arange(3)] + lp[i]
    tags = [int(score.argmax())]
    for arg in back[::-1]:
        tags.append(int(arg[tags[-1]]))
    return [LAYER_TAGS[t] for t in reversed(tags)]


DECODINGS = ("viterbi", "argmax")


def spans_from_word_predictions(s_text: str, words, probs: torch.Tensor, decoding: str = "viterbi") -> list[Entity]:
    """Decode per-word joint probabilities (n_words, 9) into DRUG and ADE entities with
    confidences (the mean, over the span's words, of the layer's B/I probability).

    Each layer is decoded from its marginals: ``viterbi`` (default) finds the best valid IOB2
    sequence; ``argmax`` takes each word's most probable tag (a stray I starts a span).
    On ADE fold 0 Viterbi added 1.4 to 2.8 relation F1 to every student (reports/student)."""
    if decoding not in DECODINGS:
        raise ValueError(f"unknown decoding {decoding!r} (use one of {', '.join(DECODINGS)})")
    ents: list[Entity] = []
    if len(words) == 0:
        return ents
    joint = np.asarray(probs, dtype=np.float64).reshape(-1, 3, 3)
    layer_probs = {"DRUG": joint.sum(2), "ADE": joint.sum(1)}  # (n_words, 3) marginals
    k = 0
    for lab in LAYERS:
        p = layer_probs[lab]
        if decoding == "viterbi":
            tags = bio_viterbi(p)
        else:
            tags = [LAYER_TAGS[int(i)] for i in p.argmax(-1)]
        for start, end, idx in tags_to_spans(words, tags):
            conf = float(p[idx, 1:].sum(-1).mean())
            ents.append(Entity(id=f"p{k}", label=lab, start=start, end=end, text=s_text[start:end],
                               confidence=round(min(1.0, conf), 4)))
            k += 1
    return ents


def candidate_pairs(entities: list[Entity]) -> list[tuple[Entity, Entity]]:
    drugs = [e for e in entities if e.label == "DRUG"]
    ades = [e for e in entities if e.label == "ADE"]
    return [(d, a) for d in drugs for a in ades if (d.start, d.end) != (a.start, a.end)]


def pair_targets(s: Sentence) -> list[tuple[Entity, Entity, float, float]]:
    """Training pairs over the labelled entities: (drug, ade, hard 0/1, soft confidence)."""
    rel = {(r.drug, r.ade): r for r in s.relations}
    out = []
    for d, a in candidate_pairs(s.entities):
        r: Relation | None = rel.get((d.id, a.id))
        hard = 1.0 if r is not None else 0.0
        soft = (1.0 if r.confidence is None else r.confidence) if r is not None else 0.0
        out.append((d, a, hard, soft))
    return out


def context_pieces(drug_pieces: Sequence[int], ade_pieces: Sequence[int]) -> list[int]:
    """Piece positions strictly between two spans' pieces (none when they touch, overlap or nest):
    the relation head's localized context."""
    lo = min(max(drug_pieces), max(ade_pieces))
    hi = max(min(drug_pieces), min(ade_pieces))
    taken = set(drug_pieces) | set(ade_pieces)
    return [p for p in range(lo + 1, hi) if p not in taken]


def pieces_in_window(window, words, span) -> list[int]:
    """Positions of the word pieces, inside ``window``, of the words that overlap ``span``
    (``words``: the sentence's (start, end) word spans)."""
    return [p for wi in range(window.w0, window.w1) if words[wi][0] < span.end and span.start < words[wi][1]
            for p in window.pieces_of_word.get(wi, [])]
