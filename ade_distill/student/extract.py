"""The trained student at work: sentences -> predicted sentences, documents -> ADE records."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from ..core.errors import InputError, ModelError
from ..core.io import AdeRecord, records_of
from ..core.registry import RegistryError, runtimes
from ..core.schema import Document, Relation, Sentence
from ..core.text import split_document, word_spans
from .conditioning import MarkedDrug, conditioned_relations
from .encoding import (candidate_pairs, context_pieces, make_windows_many, owner_windows, pieces_in_window,
                       spans_from_word_predictions)
from .model import AdeStudent, load_student, max_pool

log = logging.getLogger(__name__)

CONTEXT_CHUNK = 256  # pairs whose between-span pieces are gathered at once (bounds memory on long windows)

_ALL_O = np.eye(9, dtype=np.float32)[0]  # a word without a piece in any window: O in both layers


@torch.inference_mode()
def predict_sentences(model: AdeStudent, tokenizer, sentences: Sequence[Sentence], *, batch_size: int = 32,
                      device=None, name: str | None = None, relation_threshold: float | None = None,
                      decoding: str | None = None) -> list[Sentence]:
    """Predicted Sentences (source "student:<name>") in input order; batches by length.
    ``decoding`` (viterbi or argmax) defaults to the model's setting, else viterbi."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    thr = relation_threshold if relation_threshold is not None else model.settings.get("relation_threshold", 0.5)
    name = name or model.settings.get("name", "student")
    decoding = decoding or model.settings.get("decoding", "viterbi")
    run = _run_encoder(model, tokenizer, sentences, batch_size, device)
    words_of, windows, by_sent, hidden_of = run.words_of, run.windows, run.by_sent, run.hidden_of
    pair_items: list[tuple] = []  # (sentence, drug, ade, window key, drug pieces, ade pieces)
    ents_of: list[list] = []
    conditioned = bool(model.settings.get("drug_conditioned"))  # relations from marked passes, not pairs
    for si, s in enumerate(sentences):
        words = words_of[si]
        ks = by_sent[si]
        wins = [windows[k] for k in ks]
        owner = owner_windows(wins, len(words))
        ents = spans_from_word_predictions(s.text, words, run.sentence_word_probs(si, owner), decoding)
        groups: dict[int, list] = {}  # the pairs of each window, scored below in one batch for all sentences
        for d, a in ([] if conditioned else candidate_pairs(ents)):
            found = _pair_window(wins, owner, words, d, a)
            if found is not None:
                groups.setdefault(found[0], []).append((si, d, a, ks[found[0]], found[1], found[2]))
        pair_items += [it for items in groups.values() for it in items]
        ents_of.append(ents)
    relations: list[list[Relation]] = [[] for _ in sentences]
    if conditioned:  # each drug's ADEs from a pass with it marked
        relations = _conditioned_relations(model, tokenizer, sentences, ents_of, batch_size, device, decoding)
    else:
        for (si, d, a, *_), p in zip(pair_items, _score_pairs(model, hidden_of, pair_items, device)):
            if p >= thr:
                relations[si].append(Relation(drug=d.id, ade=a.id, confidence=round(p, 4)))
    out = [Sentence(id=s.id, doc_id=s.doc_id, text=s.text, doc_offset=s.doc_offset, entities=ents_of[si],
                    relations=relations[si], source=f"student:{name}", meta={}) for si, s in enumerate(sentences)]
    if was_training:
        model.train()
    return out


def _conditioned_relations(model, tokenizer, sentences, ents_of, batch_size, device, decoding) -> list[list[Relation]]:
    """Relations from the drug-conditioned passes: every predicted drug of every sentence marked
    (one batched encoder run for all), the ADE spans of each marked pass linked to its drug; new
    ADE spans join the sentence's entities (``ents_of`` is extended in place)."""
    jobs = [(si, d, MarkedDrug(sentences[si].text, d.start, d.end))
            for si, ents in enumerate(ents_of) for d in ents if d.label == "DRUG"]
    marked = [Sentence(id=f"m{j}", doc_id="", text=m.text) for j, (_, _, m) in enumerate(jobs)]
    run = _run_encoder(model, tokenizer, marked, batch_size, device)
    relations: list[list[Relation]] = [[] for _ in sentences]
    for j, (si, d, m) in enumerate(jobs):
        spans = spans_from_word_predictions(m.text, run.words_of[j], run.sentence_word_probs(j), decoding)
        relations[si] += conditioned_relations(sentences[si], d, m, spans, ents_of[si])
    return relations


@dataclass
class _EncoderRun:
    """The encoder over a list of sentences: their words, windows, each window's per-piece joint
    label probabilities and hidden states."""

    words_of: list
    windows: list
    by_sent: dict[int, list[int]]
    word_probs: dict[int, np.ndarray]
    hidden_of: dict[int, torch.Tensor]

    def sentence_word_probs(self, si: int, owner: list[int] | None = None) -> np.ndarray:
        """(n_words, 9): each word from its first piece in the window that owns it."""
        ks = self.by_sent[si]
        wins = [self.windows[k] for k in ks]
        words = self.words_of[si]
        owner = owner if owner is not None else owner_windows(wins, len(words))
        rows = []
        for wi in range(len(words)):
            pos = wins[owner[wi]].first_piece.get(wi)
            rows.append(self.word_probs[ks[owner[wi]]][pos] if pos is not None else _ALL_O)
        return np.stack(rows) if rows else np.zeros((0, 9), dtype=np.float32)


def _run_encoder(model, tokenizer, sentences: Sequence[Sentence], batch_size: int, device) -> _EncoderRun:
    max_len = model.max_length
    stride = int(model.settings.get("stride_words", 16))
    words_of = [word_spans(s.text) for s in sentences]
    windows = [w for ws in make_windows_many(tokenizer, [s.text for s in sentences], max_len, stride, words_of) for w in ws]
    by_sent: dict[int, list[int]] = {}
    for k, w in enumerate(windows):
        by_sent.setdefault(w.sentence, []).append(k)
    order = sorted(range(len(windows)), key=lambda k: len(windows[k].input_ids))
    word_probs: dict[int, np.ndarray] = {}
    hidden_of: dict[int, torch.Tensor] = {}
    pad = tokenizer.pad_token_id or 0
    for i in range(0, len(order), batch_size):
        ks = order[i:i + batch_size]
        L = max(len(windows[k].input_ids) for k in ks)
        ids = torch.full((len(ks), L), pad, dtype=torch.long)
        att = torch.zeros(len(ks), L, dtype=torch.long)
        for b, k in enumerate(ks):
            n = len(windows[k].input_ids)
            ids[b, :n] = torch.tensor(windows[k].input_ids)
            att[b, :n] = 1
        logits, _, hidden = model(ids.to(device), att.to(device))
        probs = torch.softmax(logits.float(), -1).cpu().numpy()
        hidden = hidden.float().cpu()
        for b, k in enumerate(ks):
            word_probs[k] = probs[b]
            hidden_of[k] = hidden[b, :len(windows[k].input_ids)]
    return _EncoderRun(words_of, windows, by_sent, word_probs, hidden_of)


@torch.inference_mode()
def word_probabilities(model: AdeStudent, tokenizer, sentences: Sequence[Sentence], *, batch_size: int = 32,
                       device=None) -> list[np.ndarray]:
    """Per sentence, the student's (n_words, 9) joint (DRUG x ADE) B/I/O probabilities of each
    word (``encoding.JOINT_LABELS`` order): what confident learning compares with given labels."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    run = _run_encoder(model, tokenizer, sentences, batch_size, device)
    out = [run.sentence_word_probs(si) for si in range(len(sentences))]
    if was_training:
        model.train()
    return out


def _score_pairs(model: AdeStudent, hidden_of: dict[int, torch.Tensor], items: list[tuple], device,
                 chunk: int = 4096) -> list[float]:
    """Relation probabilities of many (drug, ADE) pairs at once: each span's word pieces are
    mean-pooled from its window's hidden states by one gather, and the head runs once per chunk
    (one call per pair window was a third of extraction time on 2 cores)."""
    if not items:
        return []
    head = model.relation_head
    # int8 dynamic quantization leaves the head without float parameters: feed fp32
    dtype = next((p.dtype for p in head.parameters() if p.is_floating_point()), torch.float32)
    out: list[float] = []
    for c in range(0, len(items), chunk):
        part = items[c:c + chunk]
        keys = list(dict.fromkeys(it[3] for it in part))
        start, n = {}, 0
        for k in keys:
            start[k] = n
            n += hidden_of[k].shape[0]
        flat = torch.cat([hidden_of[k] for k in keys]).to(device)

        def gathered(rows: list[tuple], pieces: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
            width = max(1, max(len(p) for p in pieces))
            idx = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.float32)
            for r, (it, p) in enumerate(zip(rows, pieces)):
                idx[r, :len(p)] = np.asarray(p, dtype=np.int64) + start[it[3]]
                mask[r, :len(p)] = 1.0
            return flat[torch.from_numpy(idx).to(device)], torch.from_numpy(mask).to(device)

        def pooled(col: int) -> torch.Tensor:
            g, m = gathered(part, [it[col] for it in part])
            return (g * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1)

        cls = flat[torch.tensor([start[it[3]] for it in part], device=device)]
        ctx = None
        if head.context:  # the gap between two spans can be a whole window: a few pairs at a time
            gaps, step = [context_pieces(it[4], it[5]) for it in part], CONTEXT_CHUNK
            ctx = torch.cat([max_pool(*gathered(part[c:c + step], gaps[c:c + step]))
                             for c in range(0, len(part), step)]).to(dtype)
        logits = head.score(pooled(4).to(dtype), pooled(5).to(dtype), cls.to(dtype), ctx)
        out += torch.sigmoid(logits.float()).cpu().tolist()
    return out


def _pair_window(wins, owner, words, d, a):
    """(window index, drug pieces, ade pieces) of the window holding both spans, preferring the
    window that owns the drug's first word."""
    first_word = next((i for i, (s, e) in enumerate(words) if s < d.end and d.start < e), 0)
    order = [owner[first_word]] + [j for j in range(len(wins)) if j != owner[first_word]]
    for j in order:
        dp, ap = pieces_in_window(wins[j], words, d), pieces_in_window(wins[j], words, a)
        if dp and ap:
            return j, dp, ap
    return None


@runtimes.register("torch")
def load_torch(model_dir: str | Path, *, quantize: str | None = None, device: str | None = None,
               threads: int | None = None):
    """(model, tokenizer, device) of a student folder in PyTorch: GPU when there is one, unless
    ``quantize="int8"`` (dynamic quantization of the Linear layers, a CPU method)."""
    device = device or ("cuda" if torch.cuda.is_available() and not quantize else "cpu")
    model, tok = load_student(model_dir, device)
    if quantize == "int8":
        if device != "cpu":
            raise InputError("--quantize int8 is dynamic quantization for the CPU")
        model = quantize_int8(model)
    elif quantize is not None:
        raise InputError(f"unknown quantization {quantize!r} (use int8)")
    return model, tok, device


@runtimes.register("onnx")
def load_onnx(model_dir: str | Path, *, quantize: str | None = None, device: str | None = None,
              threads: int | None = None):
    """(model, tokenizer, "cpu"): the encoder on ONNX Runtime (``quantize="int8"`` picks its int8
    export), exported into the folder on first use."""
    from .onnx import ensure_export, load_onnx_student

    ensure_export(model_dir, quantize)
    model, tok = load_onnx_student(model_dir, quantize, threads=threads)
    return model, tok, "cpu"


class Student:
    """A trained student, ready to predict: ``Student.from_pretrained(model_dir).extract(documents)``
    gives ADE records; ``predict(sentences)`` gives predicted sentences (ids kept, for scoring)."""

    def __init__(self, model: AdeStudent, tokenizer, *, batch_size: int = 32, device: str = "cpu") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = device
        self.name = model.settings.get("name", "student")

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, *, quantize: str | None = None, device: str | None = None,
                        batch_size: int = 32, threads: int | None = None, runtime: str = "torch") -> "Student":
        """Load a student folder (GPU when there is one, unless ``quantize="int8"``, a CPU method).
        ``runtime="onnx"``: the encoder on ONNX Runtime (CPU; ``quantize="int8"`` picks its int8
        export), exported into the folder on first use."""
        if threads:
            torch.set_num_threads(threads)
        try:
            load = runtimes.get(runtime)
        except RegistryError as exc:
            raise InputError(str(exc)) from None
        model, tok, device = load(model_dir, quantize=None if quantize in (None, "none") else quantize,
                                  device=device, threads=threads)
        return cls(model, tok, batch_size=batch_size, device=device)

    def predict(self, sentences: Sequence[Sentence]) -> list[Sentence]:
        return predict_sentences(self.model, self.tokenizer, sentences, batch_size=self.batch_size,
                                 device=self.device, name=self.name)

    def save_pretrained(self, out_dir: str | Path) -> None:
        """A student folder again (a quantized model is saved as its float original would not be: refused)."""
        if not hasattr(self.model, "save_pretrained"):
            raise ModelError("a quantized student cannot be saved; save the float model")
        self.model.save_pretrained(out_dir, self.tokenizer)

    def extract(self, documents: Iterable[Document], *, problems=None, post=None) -> list[AdeRecord]:
        """ADE records (drug, effect, document offsets, confidences) of all ``documents``; ``post`` (a
        ``post.chain.PostConfig`` or ``PostProcessor``) adds the substance, MedDRA coding and assertion flag."""
        from ..post.chain import PostProcessor

        chain = post if isinstance(post, PostProcessor) else PostProcessor.from_config(post)
        return [r for doc, sents in self.extract_documents(documents, problems=problems)
                for s in chain.apply(doc, sents) for r in records_of(s)]

    def extract_documents(self, documents: Iterable[Document], *, chunk: int = 256, problems=None, cascade=None
                          ) -> Iterator[tuple[Document, list[Sentence]]]:
        """Each document with its predicted sentences, streamed in chunks of ``chunk`` sentences;
        a document that cannot be split is reported and skipped. ``cascade`` (apps.cascade.Cascade)
        decides which documents are split (``keep_document``; one it leaves out comes back with no
        sentences) and which sentences the model reads (``keep_sentences``; the others come back as
        they were split, with no entities); it counts what it leaves out."""
        buf: list[tuple[Document, list[Sentence]]] = []

        def flush():
            sents = [s for _, ss in buf for s in ss]
            keep = cascade.keep_sentences(sents) if cascade is not None else [True] * len(sents)
            chosen = [s for s, k in zip(sents, keep) if k]
            preds = iter(self.predict(chosen)) if chosen else iter(())
            flags = iter(keep)
            for doc, ss in buf:
                yield doc, [next(preds) if next(flags) else s for s in ss]
            buf.clear()

        n = 0
        for doc in documents:
            if cascade is not None and not cascade.keep_document(doc):
                buf.append((doc, []))  # in order, with no sentences
                if len(buf) >= chunk:  # a long run of skipped documents is not held in memory
                    yield from flush()
                    n = 0
                continue
            try:
                sents = split_document(doc)
            except Exception as exc:  # one bad document never loses the batch
                msg = f"document {doc.id!r}: {type(exc).__name__}: {exc}"
                if problems is not None:
                    problems.add(msg)
                else:
                    log.warning("skipped %s", msg)
                continue
            buf.append((doc, sents))
            n += len(sents)
            if n >= chunk:
                yield from flush()
                n = 0
        if buf:
            yield from flush()


def quantize_int8(model: AdeStudent) -> AdeStudent:
    """Dynamic int8 quantization of the Linear layers (CPU inference)."""
    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def time_extraction(extractor: Student, sentences: Sequence[Sentence], repeats: int = 3) -> dict:
    """Median sentences/second over ``repeats`` passes (after one warm-up pass)."""
    extractor.predict(sentences[: min(32, len(sentences))])
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        extractor.predict(sentences)
        times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    return {"sentences": len(sentences), "median_seconds": med, "sentences_per_second": len(sentences) / med,
            "runs": times}
