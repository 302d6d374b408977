"""Soft labels by rescoring: the teacher's own log-probabilities of the answer it gave.

Asking llama-cpp-python's server for logprobs while generating costs 5-10x the time (it
computes logits for every prompt row and sorts the whole vocabulary in Python per token).
The same numbers come much cheaper afterwards: feed the chat prompt plus the answer the
model generated (from the cache) through the GGUF model once, teacher-forced, with the
shared few-shot prefix kept in the KV cache, and read the log-probability of each answer
token from the logits of the row before it. With greedy decoding these are the log-
probabilities the model had when it chose those tokens, so the span confidences are the
ones ``confidence: logprobs`` would have produced (same renormalisation over the top-k).

``ade-distill teacher rescore --in teacher_labels.jsonl --sentences s.jsonl --out scored.jsonl``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from ..core.errors import ModelError
from ..core.io import failures_path, write_failures
from ..core.schema import Sentence, atomic_open, dump_record
from .confidence import TokenLogprob
from .labeler import LabelStats, Teacher, TeacherConfig, ground_pairs, pairs_with_confidence, parse_answer
from .backends import Completion
from .prompts import build_messages

log = logging.getLogger(__name__)


class LlamaScorer:
    """Teacher-forced token log-probabilities from a GGUF model, in process (llama-cpp-python)."""

    def __init__(self, model: str | Path, *, n_ctx: int = 2048, n_threads: int | None = None,
                 top_k: int = 5) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from .server import resolve_gguf

        path = resolve_gguf(str(model))
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, logits_all=True,
                         verbose=False)
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{path}: the GGUF file carries no chat template")
        m = self.llm._model
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        self._format = Jinja2ChatFormatter(template=template,
                                           eos_token=m.token_get_text(eos) if eos != -1 else "",
                                           bos_token=m.token_get_text(bos) if bos != -1 else "")
        self.top_k = top_k

    def _tokens(self, messages: list[dict], answer: str, end: bool = False) -> tuple[list[int], int]:
        r = self._format(messages=messages)
        prompt = self.llm.tokenize(r.prompt.encode(), add_bos=not r.added_special, special=True)
        ans = self.llm.tokenize(answer.encode(), add_bos=False, special=False)
        return prompt + ans + ([self.llm.token_eos()] if end else []), len(prompt)

    def _eval(self, tokens: list[int]) -> None:
        llm = self.llm
        if len(tokens) > llm.n_ctx():
            raise ValueError(f"prompt and answer need {len(tokens)} tokens, context is {llm.n_ctx()}")
        keep = llm.longest_token_prefix(llm.input_ids[:llm.n_tokens], tokens)
        keep = min(keep, len(tokens) - 1)  # the last row's logits must be fresh
        if keep > 0 and llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            llm.n_tokens = keep
        else:
            llm.reset()
            keep = 0
        llm.eval(tokens[keep:])

    def score(self, messages: list[dict], answer: str, *, end: bool = False) -> list[TokenLogprob]:
        """The answer's tokens with their log-probabilities and top-k alternatives (``end``: and the
        model's end-of-turn token after it, so that stopping there is scored too)."""
        tokens, n_prompt = self._tokens(messages, answer, end)
        self._eval(tokens)
        rows = np.asarray(self.llm.scores[n_prompt - 1:len(tokens) - 1], dtype=np.float64)
        mx = rows.max(axis=1, keepdims=True)
        logz = mx[:, 0] + np.log(np.exp(rows - mx).sum(axis=1))
        out: list[TokenLogprob] = []
        prev = tokens[:n_prompt]
        for j, tok in enumerate(tokens[n_prompt:]):
            row = rows[j]
            k = min(self.top_k, row.shape[0])
            top_ids = np.argpartition(-row, k - 1)[:k]
            top_ids = top_ids[np.argsort(-row[top_ids])]
            text = self.llm.detokenize([tok], prev_tokens=prev).decode("utf-8", errors="ignore")
            top = [(self.llm.detokenize([int(i)], prev_tokens=prev).decode("utf-8", errors="ignore"),
                    float(row[i] - logz[j])) for i in top_ids]
            out.append(TokenLogprob(text, float(row[tok] - logz[j]), top))
            prev = prev + [tok]
        return out

    def close(self) -> None:
        self.llm.close()


def cached_answer(teacher: Teacher, s: Sentence) -> tuple[list[dict], str] | None:
    """The messages and the first parseable greedy answer the teacher gave for ``s``, from its
    cache (the same keys ``Teacher.label_one`` uses with confidence none or logprobs)."""
    messages = build_messages(s.text, teacher.pick_shots(s.text), teacher.fmt)
    for logprobs in (False, True):
        for attempt in range(teacher.cfg.parse_retries + 1):
            key = teacher.cache_key(messages, teacher.params(0, attempt, logprobs=logprobs), 0, attempt)
            hit = teacher.cache.get(key)
            if hit is None:
                continue
            text = Completion.from_json(hit).text
            if parse_answer(text, teacher.fmt) is not None:
                return messages, text
    return None


def rescore(labels: Iterable[Sentence], cfg: TeacherConfig, out: str | Path, *, scorer: LlamaScorer | None = None,
            failures: str | Path | None = None, progress: bool = True, keep_live: bool = True) -> dict:
    """Add logprob confidences to teacher-labelled sentences (their text must be present).

    Every input sentence is written to ``out``: sentences rescored earlier pass through, and so
    do sentences labelled with live logprobs (a server that returns them cheaply, such as
    llama.cpp's) unless ``keep_live`` is False;
    those whose answer is not in the cache, or whose answer's values do not line up with the
    scored tokens, keep their hard labels and are listed in ``failures`` with the reason.
    Returns counts and timings.
    """
    from tqdm import tqdm

    out = Path(out)
    failures = Path(failures) if failures else failures_path(out)
    teacher = Teacher(cfg)
    own = scorer is None
    counts = {"scored": 0, "already": 0, "failed": 0, "seconds": 0.0}
    t0 = time.monotonic()
    failed: list[dict] = []
    try:
        with atomic_open(out) as fh:
            for s in tqdm(list(labels), desc="rescore", unit=" sent", disable=not progress or None):
                # rescored earlier, or labelled with live logprobs (llama.cpp's server, OpenAI)
                if s.meta.get("confidence") == "logprobs-rescored" or (
                        keep_live and s.meta.get("confidence") == "logprobs"):
                    fh.write(dump_record(s) + "\n")
                    counts["already"] += 1
                    continue
                got = cached_answer(teacher, s)
                if got is None:
                    failed.append({"id": s.id, "reason": "no cached teacher answer for this sentence"})
                    fh.write(dump_record(s) + "\n")
                    continue
                messages, text = got
                if scorer is None:  # loaded only when something needs scoring
                    scorer = LlamaScorer(cfg.model, n_ctx=cfg.n_ctx, n_threads=cfg.n_threads)
                tokens = scorer.score(messages, text)
                comp = Completion(text=text, tokens=tokens)
                pairs = pairs_with_confidence(comp, parse_answer(text, teacher.fmt) or [], "logprobs", teacher.fmt)
                if pairs and any(p.drug_conf is None for p in pairs):
                    failed.append({"id": s.id, "reason": "answer's values and scored tokens do not line up"})
                    fh.write(dump_record(s) + "\n")
                    continue
                ents, rels, _ = ground_pairs(s, [pairs], fuzzy_threshold=cfg.fuzzy_threshold,
                                             majority=cfg.majority, stats=LabelStats())
                meta = {**s.meta, "confidence": "logprobs-rescored"}
                fh.write(dump_record(s.model_copy(update={"entities": ents, "relations": rels, "meta": meta}))
                         + "\n")
                counts["scored"] += 1
    finally:
        counts["seconds"] = round(time.monotonic() - t0, 1)
        counts["failed"] = len(failed)
        if failed:
            log.warning("rescore: %d sentence(s) kept their hard labels only (see %s)", len(failed), failures)
            write_failures(failures, ((f["id"], f["reason"]) for f in failed))
        elif failures.exists():
            failures.unlink()
        teacher.close()
        if own and scorer is not None:
            scorer.close()
    return counts
