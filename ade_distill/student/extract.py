"""The trained student at work: sentences -> predicted sentences, documents -> ADE records."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from ..errors import InputError, ModelError
from ..io import AdeRecord, records_of
from ..schema import Document, Relation, Sentence
from ..text import split_document, word_spans
from .encoding import candidate_pairs, make_windows, owner_windows, pieces_in_window, spans_from_word_predictions
from .model import AdeStudent, load_student

log = logging.getLogger(__name__)

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
    max_len = model.max_length
    stride = int(model.settings.get("stride_words", 16))
    words_of = [word_spans(s.text) for s in sentences]
    windows = [w for i, s in enumerate(sentences) for w in make_windows(tokenizer, s.text, i, max_len, stride)]
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
    out = []
    for si, s in enumerate(sentences):
        words = words_of[si]
        ks = by_sent[si]
        wins = [windows[k] for k in ks]
        owner = owner_windows(wins, len(words))
        rows = []
        for wi in range(len(words)):  # each word from its first piece in the window that owns it
            pos = wins[owner[wi]].first_piece.get(wi)
            rows.append(word_probs[ks[owner[wi]]][pos] if pos is not None else _ALL_O)
        wp = np.stack(rows) if rows else np.zeros((0, 9), dtype=np.float32)
        ents = spans_from_word_predictions(s.text, words, wp, decoding)
        relations = []
        pairs = candidate_pairs(ents)
        if pairs:
            groups: dict[int, list] = {}
            for d, a in pairs:
                found = _pair_window(wins, owner, words, d, a)
                if found is not None:
                    groups.setdefault(found[0], []).append((d, a, found[1], found[2]))
            for j, items in groups.items():
                h = hidden_of[ks[j]].to(device)
                L = h.shape[0]
                dm = torch.zeros(len(items), L, device=device)
                am = torch.zeros(len(items), L, device=device)
                for r, (_, _, dp, ap) in enumerate(items):
                    dm[r, dp] = 1
                    am[r, ap] = 1
                # int8 dynamic quantization leaves the head without float parameters: feed fp32
                head_dtype = next(iter(model.relation_head.parameters()), h).dtype
                logits_r = model.relation_head(h[None].to(head_dtype), torch.zeros(len(items), dtype=torch.long,
                                               device=device), dm, am)
                for (d, a, _, _), p in zip(items, torch.sigmoid(logits_r.float()).cpu().tolist()):
                    if p >= thr:
                        relations.append(Relation(drug=d.id, ade=a.id, confidence=round(p, 4)))
        out.append(Sentence(id=s.id, doc_id=s.doc_id, text=s.text, doc_offset=s.doc_offset, entities=ents,
                            relations=relations, source=f"student:{name}", meta={}))
    if was_training:
        model.train()
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
        if runtime == "onnx":
            from .onnx import export_onnx, load_onnx_student, onnx_path

            q = None if quantize in (None, "none") else quantize
            if not onnx_path(model_dir, q).exists():
                log.warning("%s: exporting the encoder to ONNX (once)", model_dir)
                export_onnx(model_dir, int8=q == "int8")
            model, tok = load_onnx_student(model_dir, q, threads=threads)
            return cls(model, tok, batch_size=batch_size, device="cpu")
        if runtime != "torch":
            raise InputError(f"unknown runtime {runtime!r} (torch or onnx)")
        device = device or ("cuda" if torch.cuda.is_available() and not quantize else "cpu")
        model, tok = load_student(model_dir, device)
        if quantize == "int8":
            if device != "cpu":
                raise InputError("--quantize int8 is dynamic quantization for the CPU")
            model = quantize_int8(model)
        elif quantize not in (None, "none"):
            raise InputError(f"unknown quantization {quantize!r} (use int8)")
        return cls(model, tok, batch_size=batch_size, device=device)

    def predict(self, sentences: Sequence[Sentence]) -> list[Sentence]:
        return predict_sentences(self.model, self.tokenizer, sentences, batch_size=self.batch_size,
                                 device=self.device, name=self.name)

    def save_pretrained(self, out_dir: str | Path) -> None:
        """A student folder again (a quantized model is saved as its float original would not be: refused)."""
        if not hasattr(self.model, "save_pretrained"):
            raise ModelError("a quantized student cannot be saved; save the float model")
        self.model.save_pretrained(out_dir, self.tokenizer)

    def extract(self, documents: Iterable[Document], *, problems=None) -> list[AdeRecord]:
        """ADE records (drug, effect, document offsets, confidences) of all ``documents``."""
        return [r for _, sents in self.extract_documents(documents, problems=problems) for s in sents
                for r in records_of(s)]

    def extract_documents(self, documents: Iterable[Document], *, chunk: int = 256, problems=None
                          ) -> Iterator[tuple[Document, list[Sentence]]]:
        """Each document with its predicted sentences, streamed in chunks of ``chunk`` sentences;
        a document that cannot be split is reported and skipped."""
        buf: list[tuple[Document, list[Sentence]]] = []

        def flush():
            sents = [s for _, ss in buf for s in ss]
            preds = iter(self.predict(sents)) if sents else iter(())
            for doc, ss in buf:
                yield doc, [next(preds) for _ in ss]
            buf.clear()

        n = 0
        for doc in documents:
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
