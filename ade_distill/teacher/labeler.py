"""Sentences -> teacher-labelled Sentences: prompting, parsing, grounding, soft labels,
caching, retries, cost accounting and a budget, with nothing lost.

Every input sentence ends in the output or in failures.jsonl with its reason; a rerun
makes no call that the cache already answered and retries only what failed or is missing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from ..core.errors import AdeDistillError
from ..core.io import failures_path, write_failures
from ..core.registry import teacher_backends
from ..core.schema import Entity, Relation, Sentence, atomic_open, unique_ids, write_jsonl
from .backends import AccessDenied, Completion, RequestRejected, SamplingParams, TransientError, with_retries
from .cache import CompletionCache, cache_key
from .confidence import value_confidences
from .phi import PhiBlocked, note_for
from .grounding import find_spans, looks_like_instruction, resolve_pair
from .prompts import JSON, AnswerFormat, build_messages
from .settings import DEFAULT_PRICES, Price, PromptConfig, TeacherConfig

__all__ = ["DEFAULT_PRICES", "LabelStats", "Price", "PromptConfig", "Teacher", "TeacherConfig", "ground_pairs",
           "parse_answer", "write_run_summary"]

log = logging.getLogger(__name__)


class BudgetExceeded(AdeDistillError, RuntimeError):
    pass


class ServerGone(AdeDistillError, RuntimeError):
    pass


class UnparseableAnswer(ValueError):
    """The model's answers to one sentence held no usable JSON: a failure for that sentence."""


@dataclass
class LabelStats:
    sentences_in: int = 0
    labelled: int = 0
    failed: int = 0
    skipped_existing: int = 0
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    reference_cost_usd: float = 0.0
    strings: int = 0
    hallucinated: int = 0
    fuzzy_matches: int = 0
    seconds: float = 0.0
    failure_reasons: Counter = field(default_factory=Counter)
    # the PHI guard's audit trail: the policy that ran, identifiers found by type (counts only),
    # sentences sent redacted, sentences kept back
    phi_policy: str = "off"
    phi_found: Counter = field(default_factory=Counter)
    phi_redacted: int = 0
    phi_blocked: int = 0

    @property
    def hallucination_rate(self) -> float:
        return self.hallucinated / self.strings if self.strings else 0.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["failure_reasons"] = dict(self.failure_reasons)
        d["phi_found"] = dict(self.phi_found)
        d["hallucination_rate"] = self.hallucination_rate
        d["sentences_per_second"] = self.labelled / self.seconds if self.seconds else None
        return d


def parse_answer(text: str, fmt: AnswerFormat = JSON) -> list[tuple[str, str]] | None:
    """(drug, effect) pairs from the model's answer in format ``fmt`` (JSON by default),
    tolerant of fences and chatter; None if the answer holds no usable pairs or "none"."""
    return fmt.parse(text)


@dataclass
class _Pair:
    drug: str
    effect: str
    drug_conf: float | None = None
    effect_conf: float | None = None


def ground_pairs(sentence: Sentence, samples: list[list[_Pair]], *, fuzzy_threshold: float,
                 majority: float, stats: LabelStats | None = None) -> tuple[list[Entity], list[Relation], int]:
    """Map each sample's pairs onto the sentence; merge samples into labels with confidences.

    One sample: confidences come from the pairs (logprobs) or stay unset. Several samples
    (self-consistency): an entity's or pair's confidence is the share of samples that
    contain it, and the hard labels are those at or above ``majority``.
    """
    text = sentence.text
    n = len(samples)
    ent_votes: dict[tuple[str, int, int], list[float]] = {}
    rel_votes: dict[tuple[tuple, tuple], list[float]] = {}
    rejected = 0
    for pairs in samples:
        seen_e, seen_r = set(), set()
        for p in pairs:
            if looks_like_instruction(p.drug) or looks_like_instruction(p.effect):
                rejected += 1
                continue
            d_spans = find_spans(text, p.drug, fuzzy_threshold=fuzzy_threshold)
            e_spans = find_spans(text, p.effect, fuzzy_threshold=fuzzy_threshold)
            if stats is not None:
                stats.strings += 2
                stats.hallucinated += (not d_spans) + (not e_spans)
                stats.fuzzy_matches += sum(bool(s) and s[0].kind == "fuzzy" for s in (d_spans, e_spans))
            if not d_spans or not e_spans:
                rejected += 1
                continue
            d, e = resolve_pair(d_spans, e_spans)
            if (d.start, d.end) == (e.start, e.end):
                rejected += 1
                continue
            dk, ek = ("DRUG", d.start, d.end), ("ADE", e.start, e.end)
            for key, conf in ((dk, p.drug_conf), (ek, p.effect_conf)):
                if key not in seen_e:
                    ent_votes.setdefault(key, []).append(1.0 if conf is None else conf)
                    seen_e.add(key)
            rk = (dk, ek)
            if rk not in seen_r:
                confs = [c for c in (p.drug_conf, p.effect_conf) if c is not None]
                rel_votes.setdefault(rk, []).append(min(confs) if confs else 1.0)
                seen_r.add(rk)
    use_conf = n > 1 or any(p.drug_conf is not None for s in samples for p in s)

    def conf_of(votes: list[float]) -> float:
        return len(votes) / n if n > 1 else max(votes)

    keep_r = {k: v for k, v in rel_votes.items() if n == 1 or len(v) / n >= majority}
    needed = {k[0] for k in keep_r} | {k[1] for k in keep_r}
    keys = sorted(needed, key=lambda k: (k[1], -k[2], k[0]))
    ids = {k: f"t{i}" for i, k in enumerate(keys)}
    entities = [Entity(id=ids[k], label=k[0], start=k[1], end=k[2], text=text[k[1]:k[2]],
                       confidence=round(conf_of(ent_votes[k]), 4) if use_conf else None) for k in keys]
    relations = [Relation(drug=ids[d], ade=a_id, confidence=round(conf_of(v), 4) if use_conf else None)
                 for (d, a), v in keep_r.items() for a_id in [ids[a]]]
    return entities, relations, rejected


def ground_redacted(s: Sentence, red, samples: list[list[_Pair]], cfg: TeacherConfig, stats: LabelStats
                    ) -> tuple[list[Entity], list[Relation], int]:
    """``ground_pairs`` on the text the teacher saw (``red``: a PHI redaction, or None), with the
    spans mapped back onto the original sentence."""
    if red is None or not red.pieces:
        return ground_pairs(s, samples, fuzzy_threshold=cfg.fuzzy_threshold, majority=cfg.majority, stats=stats)
    seen = s.model_copy(update={"text": red.text})
    ents, rels, rejected = ground_pairs(seen, samples, fuzzy_threshold=cfg.fuzzy_threshold, majority=cfg.majority,
                                        stats=stats)
    back = []
    for e in ents:
        a, b = red.to_original(e.start, e.end)
        back.append(e.model_copy(update={"start": a, "end": b, "text": s.text[a:b]}))
    return back, rels, rejected


def pairs_with_confidence(comp: Completion, pairs: list[tuple[str, str]], confidence: str,
                          fmt: AnswerFormat = JSON) -> list[_Pair]:
    """Parsed pairs, with logprob confidences attached when asked for and available."""
    out = [_Pair(d, e) for d, e in pairs]
    if confidence == "logprobs" and comp.tokens:
        vals = value_confidences(comp.tokens, fmt.value_spans)
        drugs = [c for k, v, c in vals if k == "drug"]
        effects = [c for k, v, c in vals if k == "effect"]
        if len(drugs) == len(out) == len(effects):
            for p, dc, ec in zip(out, drugs, effects):
                p.drug_conf, p.effect_conf = dc, ec
    return out


class Teacher:
    """Labels sentences with an LLM: ``with Teacher(cfg) as t: t.label(sentences, out)``."""

    def __init__(self, cfg: TeacherConfig, backend=None) -> None:
        self.cfg = cfg
        self._backend = backend
        self.pick_shots = cfg.prompt.shot_picker()
        self.shots = self.pick_shots.shots
        self.fmt = cfg.prompt.answer_format
        self.cache = CompletionCache(cfg.cache)
        self.stats = LabelStats()
        self._consecutive_errors = 0
        self._backend_lock = threading.Lock()  # worker threads must not start two servers
        self._stats_lock = threading.Lock()
        self.phi = None  # a PhiGuard when the run's policy redacts or blocks (set_phi)

    def set_phi(self, sentences: list[Sentence]) -> str:
        """Choose the PHI policy for these sentences (teacher/phi.py) and load the guard it needs;
        returns the policy. The audit trail (counts by type only) goes into ``stats``."""
        from .phi import guard_for, resolve_policy

        policy = resolve_policy(self.cfg, sentences)
        self.stats.phi_policy = policy
        if policy == "off":
            self.phi = None
            if self.cfg.phi == "off":
                from .phi import backend_is_remote

                if backend_is_remote(self.cfg):
                    log.warning("PHI guard off (phi: off): sentences go to the remote teacher as they are")
        elif self.phi is None:
            self.phi = guard_for(self.cfg)
        return policy

    def _redacted(self, s: Sentence):
        """The redaction of ``s`` the guard makes (None without a guard); counts what it found, and
        refuses a sentence that holds an identifier under the block policy."""
        if self.phi is None:
            return None
        from .phi import PhiBlocked

        red = self.phi.redact(s.text)
        found = red.found
        if found:
            with self._stats_lock:
                self.stats.phi_found.update(found)
                if self.stats.phi_policy == "block":
                    self.stats.phi_blocked += 1
                else:
                    self.stats.phi_redacted += 1
            if self.stats.phi_policy == "block":
                raise PhiBlocked(f"blocked: holds identifiers ({', '.join(sorted(found))}); phi: block")
        return red

    # -- backend lifetime: started lazily, only if some call misses the cache --
    @property
    def backend(self):
        with self._backend_lock:
            if self._backend is None:
                self._backend = teacher_backends.get(self.cfg.backend).from_config(self.cfg)
            return self._backend

    @property
    def model_name(self) -> str:
        return Path(self.cfg.model).stem if self.cfg.model.endswith(".gguf") else self.cfg.model

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        self.cache.close()

    def __enter__(self) -> "Teacher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.cfg.price(model)
        if price is None:
            return 0.0
        return (prompt_tokens * price.input_per_1m + completion_tokens * price.output_per_1m) / 1e6

    def params(self, sample: int, attempt: int, *, logprobs: bool | None = None) -> SamplingParams:
        """Sampling settings of one call: sample k of self-consistency, retry ``attempt`` after an
        unparseable answer (greedy first, then a little temperature)."""
        c = self.cfg
        sc = c.confidence == "self-consistency"
        temp = c.sample_temperature if sc else (c.temperature if attempt == 0 else max(0.3, c.temperature))
        return SamplingParams(temperature=temp, max_tokens=c.max_tokens, seed=sample * 1000 + attempt,
                              logprobs=c.confidence == "logprobs" if logprobs is None else logprobs,
                              response_format=c.response_format)

    def cache_key(self, messages: list[dict], params: SamplingParams, sample: int, attempt: int) -> str:
        return cache_key(backend=self.cfg.backend, model=self.model_name, prompt=self.fmt.version,
                         messages=messages, params=params.key(), sample=sample, attempt=attempt)

    def _complete(self, messages: list[dict], params: SamplingParams, sample: int, attempt: int) -> Completion:
        key = self.cache_key(messages, params, sample, attempt)
        hit = self.cache.get(key)
        if hit is not None:  # counted by the cache itself; stats take it over at the end of label()
            return Completion.from_json(hit)
        if self.cfg.budget_usd is not None:
            est_prompt = sum(len(m["content"]) for m in messages) // 3
            est = self._cost(self.model_name, est_prompt, params.max_tokens)
            if self.stats.cost_usd + est > self.cfg.budget_usd:
                raise BudgetExceeded(f"budget ${self.cfg.budget_usd:g} reached "
                                     f"(spent ${self.stats.cost_usd:.4f}, next call up to ${est:.4f})")
        try:
            comp = with_retries(lambda: self.backend.complete(messages, params), retries=self.cfg.retries,
                                base=self.cfg.retry_base_s)
        except TransientError as exc:
            self._consecutive_errors += 1
            if self._consecutive_errors >= self.cfg.max_consecutive_errors:
                raise ServerGone(f"teacher unreachable after {self._consecutive_errors} failed sentences "
                                 f"({exc})") from exc
            raise
        self._consecutive_errors = 0
        self.stats.calls += 1
        self.stats.prompt_tokens += comp.prompt_tokens
        self.stats.completion_tokens += comp.completion_tokens
        self.stats.cost_usd += self._cost(self.model_name, comp.prompt_tokens, comp.completion_tokens)
        self.stats.reference_cost_usd += self._cost(self.cfg.reference_model, comp.prompt_tokens,
                                                    comp.completion_tokens)
        self.cache.put(key, comp.to_json())
        return comp

    def label_one(self, s: Sentence) -> Sentence:
        """One sentence -> a teacher-labelled Sentence (gold labels of the input are dropped). With
        a PHI guard the teacher sees the redacted sentence, and its spans are mapped back."""
        red = self._redacted(s)
        text = red.text if red else s.text
        messages = build_messages(text, self.pick_shots(text), self.fmt, note=note_for(self.cfg, red))
        c = self.cfg
        n = c.samples if c.confidence == "self-consistency" else 1
        samples: list[list[_Pair]] = []
        usage = Counter()
        for k in range(n):
            unparseable = []
            for attempt in range(c.parse_retries + 1):
                params = self.params(k, attempt)
                comp = self._complete(messages, params, k, attempt)
                usage.update(prompt_tokens=comp.prompt_tokens, completion_tokens=comp.completion_tokens)
                pairs = parse_answer(comp.text, self.fmt)
                if pairs is not None:
                    samples.append(pairs_with_confidence(comp, pairs, c.confidence, self.fmt))
                    break
                unparseable.append(self.cache_key(messages, params, k, attempt))
            else:
                # Not kept: a rerun asks again instead of replaying the same unusable answers.
                for key in unparseable:
                    self.cache.delete(key)
                raise UnparseableAnswer(f"unparseable answer after {c.parse_retries + 1} tries")
        entities, relations, rejected = ground_redacted(s, red, samples, c, self.stats)
        meta = {"prompt_version": self.fmt.version, "model": self.model_name, "backend": c.backend,
                "samples": n, "confidence": c.confidence, "usage": dict(usage), "rejected_pairs": rejected}
        if c.backend == "local-server" and c.server != "llama-cpp-python":
            meta["server"] = c.server
        for k in ("pmid", "orig_id"):
            if k in s.meta:
                meta[k] = s.meta[k]
        return Sentence(id=s.id, doc_id=s.doc_id, text=s.text, doc_offset=s.doc_offset, entities=entities,
                        relations=relations, source=f"teacher:{self.model_name}", meta=meta)

    def annotate(self, sentences: Iterable[Sentence]) -> list[Sentence]:
        """Label sentences in memory, one after another (cached like ``label``); a sentence whose
        answers cannot be parsed is left out, counted in ``stats.failed`` and logged by id."""
        sentences = list(sentences)
        self.set_phi(sentences)
        out = []
        for s in sentences:
            try:
                out.append(self.label_one(s))
                self.stats.labelled += 1
            except (UnparseableAnswer, RequestRejected, PhiBlocked) as exc:
                self.stats.failed += 1
                self.stats.failure_reasons[str(exc)] += 1
                log.warning("teacher: sentence %s not labelled: %s", s.id, exc)
        return out

    def label(self, sentences: Iterable[Sentence], out: str | Path, *, failures: str | Path | None = None,
              checkpoint_every: int = 0, limit: int | None = None, progress: bool = True) -> LabelStats:
        """Label ``sentences`` into ``out`` (JSONL); failures go to ``failures`` (default
        <out>.failures.jsonl). Sentences already in ``out`` are kept and not relabelled."""
        from tqdm import tqdm

        out = Path(out)
        failures = Path(failures) if failures else failures_path(out)
        done: dict[str, Sentence] = {}
        if out.exists():
            from ..core.schema import read_sentences

            done = {x.id: x for x in read_sentences(out)}
        todo, order = [], []
        for s in unique_ids(sentences, "teacher input"):
            order.append(s.id)
            self.stats.sentences_in += 1
            if s.id in done:
                self.stats.skipped_existing += 1
            elif limit is None or len(todo) < limit:
                todo.append(s)
        self.set_phi(todo)
        failed: dict[str, str] = {}
        t0 = time.monotonic()
        bar = tqdm(total=len(todo), desc=f"teacher {self.model_name}", unit=" sent", disable=not progress or None)
        stop_reason = None

        def work(s: Sentence):
            try:
                return s.id, self.label_one(s), None
            except (BudgetExceeded, ServerGone, AccessDenied):
                raise
            except TransientError as exc:
                return s.id, None, f"teacher unreachable after retries: {exc}"
            except (UnparseableAnswer, RequestRejected, PhiBlocked) as exc:  # this sentence's failure;
                return s.id, None, str(exc)                         # anything else is a bug: stops the run

        def flush() -> None:
            write_jsonl(out, (done[i] for i in order if i in done))
            if failed:
                write_failures(failures, failed.items())
            elif failures.exists():
                failures.unlink()  # an earlier run's failures are all retried now

        pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency)
        try:
            window = self.cfg.concurrency * 4
            since_flush = 0
            for i in range(0, len(todo), window):
                if stop_reason:
                    break
                futures = [pool.submit(work, s) for s in todo[i:i + window]]
                for fut in futures:
                    try:
                        sid, rec, err = fut.result()
                    except (BudgetExceeded, ServerGone, AccessDenied) as exc:
                        stop_reason = str(exc)
                        continue
                    if rec is not None:
                        done[sid] = rec
                        self.stats.labelled += 1
                    else:
                        failed[sid] = err
                        self.stats.failure_reasons[err.split(":")[0]] += 1
                    bar.update(1)
                    since_flush += 1
                if checkpoint_every and since_flush >= checkpoint_every:
                    flush()
                    since_flush = 0
            pool.shutdown(wait=True)
        except KeyboardInterrupt:
            stop_reason = "interrupted"
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # a no-op after the shutdowns above
            bar.close()
            if stop_reason:
                for s in todo:
                    if s.id not in done and s.id not in failed:
                        failed[s.id] = stop_reason
                        self.stats.failure_reasons[stop_reason.split(" (")[0]] += 1
            self.stats.failed = len(failed)
            self.stats.seconds += time.monotonic() - t0
            self.stats.cache_hits = self.cache.hits
            flush()
        return self.stats


def write_run_summary(stats: LabelStats, cfg: TeacherConfig, path: str | Path) -> None:
    """The run's numbers and settings (the config holds env-var names, never keys)."""
    with atomic_open(path) as fh:
        json.dump({"stats": stats.to_json(), "config": cfg.model_dump(), "prompt_version": cfg.prompt.answer_format.version},
                  fh, indent=2)
        fh.write("\n")
