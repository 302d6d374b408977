"""The teacher writes training sentences: seeds -> a generated ADE sentence with its labels ->
kept only when every written span is in the sentence, the sentence is not a near-duplicate of
the corpus or of another kept sentence, and the teacher, reading it again as a labeller, finds
exactly the pairs it wrote.

Seeds come from the user's corpus without copying it: drug and reaction strings from its teacher
labels (never gold), optionally widened by name lists (drug vocabularies, MedDRA terms), and a
*style* per seed: the structural cues of one corpus sentence (length, an opening patient
description, a dose, a "<drug>-induced" construction, ...), described in words; the text of a
corpus sentence is never in a prompt. Drugs are drawn uniformly over distinct names, so rare
names get as many sentences as common ones.

Generation goes through the teacher's own call path (cache, retries, cost, budget), so a rerun
replays cached answers and a killed run resumes where it stopped. Near-duplicates are found with
MinHash LSH (datasketch) over word 3-gram shingles.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..core.errors import AdeDistillError
from ..core.schema import Sentence, atomic_open, read_sentences, write_jsonl
from .backends import RequestRejected, SamplingParams, TransientError
from .labeler import BudgetExceeded, ServerGone, Teacher, UnparseableAnswer, _Pair, ground_pairs
from .prompts import parse_json

log = logging.getLogger(__name__)

SYNTH_VERSION = "ade-synth-v1"

SYNTH_SYSTEM = """You write single sentences in the style of published medical case reports about
adverse drug events (ADEs). You are given the drug(s), the adverse effect(s) they caused, and a style.
Write one new, natural sentence of your own that reports exactly those ADEs, then list each
(drug, effect) pair as it is written in your sentence.

Rules:
- Use each drug name and each effect as given, spelled the same way.
- Invent the details (age, sex, dose, timing); do not reproduce a sentence you have read.
- No names of people, no dates, no places, no hospital names.
- "drug" is the drug name only (no dose, no route); "effect" is the phrase that names the adverse effect.
- Every pair you list must be an ADE your sentence reports; list every one it reports.
Answer with JSON only: {"sentence": "...", "ades": [{"drug": "...", "effect": "..."}]}"""

# answer: plain (the sentence alone; its labels are the seed's pairs, which it was told to use as
# given): about half the answer tokens of the JSON answer, and answer tokens are most of a local
# teacher's time (reports/synthetic/answer_ab.md)
SYNTH_PLAIN_VERSION = "ade-synth-v2-plain"
SYNTH_SYSTEM_PLAIN = """You write single sentences in the style of published medical case reports about
adverse drug events (ADEs). You are given the drug(s), the adverse effect(s) they caused, and a style.
Write one new, natural sentence of your own that reports exactly those ADEs.

Rules:
- Use each drug name and each effect exactly as given, spelled the same way.
- Invent the details (age, sex, dose, timing); do not reproduce a sentence you have read.
- No names of people, no dates, no places, no hospital names.
- Answer with the sentence only, on one line: no title, no quotes, no explanation."""

SYNTH_SCHEMA = {
    "type": "object",
    "properties": {
        "sentence": {"type": "string"},
        "ades": {"type": "array", "items": {
            "type": "object", "properties": {"drug": {"type": "string"}, "effect": {"type": "string"}},
            "required": ["drug", "effect"]}}},
    "required": ["sentence", "ades"],
}

# Structural cues of a corpus sentence, each with the instruction that asks for it.
_CUES = [
    ("patient", re.compile(r"^\W*(a|an)\s+\d+[- ](year|month|week|day)s?[- ]old\b", re.I),
     "begin with the patient's age and sex (for example 'A 54-year-old man ...')"),
    ("dose", re.compile(r"\b\d+(\.\d+)?\s?(mg|g|mcg|µg|ug|units?|ml|iu)(/(kg|day|d|m2))?\b", re.I),
     "mention a dose"),
    ("hyphen", re.compile(r"\w-(induced|associated|related)\b", re.I),
     "use a hyphenated construction such as '<drug>-induced <effect>'"),
    ("passive", re.compile(r"\b(was|were|is|are)\s+(associated with|attributed to|caused by|due to|related to)\b", re.I),
     "attribute the effect in the passive voice (for example '... was attributed to ...')"),
    ("timing", re.compile(r"\b(after|following|during|within)\b", re.I),
     "say when the effect appeared relative to the drug ('after', 'following', 'during', 'within')"),
    ("authors", re.compile(r"\b(we|our)\b", re.I), "write as the authors of the report ('We describe ...')"),
]


# a sentence end followed by another sentence (abbreviations such as "i.v. Drug" are rare enough here)
_SENTENCE_BREAK = re.compile(r"[a-z0-9)\]][.!?]\s+[A-Z]")

ANSWERS = ("json", "plain")
LENGTH_REASON = "not one sentence of about the asked length"
# The checks' version, written on every rejected row. A row rejected for a reason whose check has
# changed since (reason -> the version that changed it) is tried again on resume (with the same answer
# format its answer is cached, so only the new check's calls are made).
CHECKS = 2
_CHANGED_IN = {LENGTH_REASON: 2}  # 2: a paragraph whose first sentence holds every pair keeps that sentence


def first_sentence(text: str, pairs: Sequence[tuple[str, str]]) -> tuple[str, bool]:
    """A small teacher often goes on after the sentence it was asked for ("... developed X. She was
    referred ..."). When the first sentence alone names every written drug and effect, it is the
    answer (True: trimmed); otherwise the text as written."""
    m = _SENTENCE_BREAK.search(text)
    if not m:
        return text, False
    first = text[:m.start() + 2]
    low = first.lower()
    if all(d.lower() in low and e.lower() in low for d, e in pairs):
        return first, True
    return text, False


@dataclass(frozen=True)
class Seed:
    """What one generated sentence is asked to say: its drugs, its effects, its style."""
    index: int
    drugs: tuple[str, ...]
    effects: tuple[str, ...]
    words: int
    cues: tuple[str, ...]

    def instruction(self) -> str:
        lines = [f"Drug{'s' if len(self.drugs) > 1 else ''}: {'; '.join(self.drugs)}",
                 f"Adverse effect{'s' if len(self.effects) > 1 else ''}: {'; '.join(self.effects)}"]
        if len(self.drugs) > 1:
            lines.append("Both drugs caused the effect.")
        elif len(self.effects) > 1:
            lines.append("The drug caused each effect.")
        style = [f"about {self.words} words"] + [text for name, _, text in _CUES if name in self.cues]
        lines.append("Style: " + "; ".join(style) + ".")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"drugs": list(self.drugs), "effects": list(self.effects), "words": self.words, "cues": list(self.cues)}


def style_of(text: str) -> tuple[int, tuple[str, ...]]:
    """A sentence's length (words, rounded to 5) and its structural cues: a style, never its text."""
    words = max(10, min(60, 5 * round(len(text.split()) / 5)))
    return words, tuple(name for name, rx, _ in _CUES if rx.search(text))


def _distinct(strings: Iterable[str]) -> list[str]:
    """Distinct strings (case-insensitive, first spelling kept), in a stable order."""
    seen: dict[str, str] = {}
    for s in strings:
        s = " ".join(s.split())
        if 2 <= len(s) <= 60 and s.lower() not in seen:
            seen[s.lower()] = s
    return sorted(seen.values(), key=str.lower)


def read_names(path: str | Path) -> list[str]:
    """A name list: one name a line (blank lines and # comments skipped), or a CSV whose first
    column holds the names (a header row is dropped when its first cell is 'name'-like)."""
    path = Path(path)
    if not path.exists():
        raise AdeDistillError(f"{path}: no such name list")
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if path.suffix.lower() == ".csv":
            line = next(csv.reader([line]), [""])[0].strip()
        names.append(line)
    if path.suffix.lower() == ".csv" and names and names[0].lower() in {"name", "drug", "common name", "term"}:
        names = names[1:]
    return names


def make_seeds(corpus: Sequence[Sentence], n: int, *, drugs: Sequence[str] = (), effects: Sequence[str] = (),
               seed: int = 13) -> list[Seed]:
    """``n`` seeds from a teacher-labelled corpus (its DRUG and ADE strings, the style cues of its
    sentences) and optional extra name lists. Deterministic for the same inputs and ``seed``."""
    corpus_drugs = _distinct(e.text for s in corpus for e in s.entities if e.label == "DRUG")
    corpus_effects = _distinct(e.text for s in corpus for e in s.entities if e.label == "ADE")
    all_drugs = _distinct([*corpus_drugs, *drugs])
    all_effects = _distinct([*corpus_effects, *effects])
    if not all_drugs or not all_effects:
        raise AdeDistillError("no seeds: the corpus has no labelled drugs or effects and no name list was given")
    styles = [style_of(s.text) for s in corpus] or [(25, ())]
    # the effects each drug was seen with, so half the seeds pair a drug with a reaction it is known for
    seen_with: dict[str, list[str]] = {}
    for s in corpus:
        for r in s.relations:
            d, a = s.entity(r.drug).text.lower(), " ".join(s.entity(r.ade).text.split())
            seen_with.setdefault(d, []).append(a)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        shape = rng.random()
        n_drugs, n_effects = (2, 1) if shape < 0.15 else (1, 2) if shape < 0.3 else (1, 1)
        ds = tuple(rng.sample(all_drugs, min(n_drugs, len(all_drugs))))
        known = seen_with.get(ds[0].lower(), [])
        es: list[str] = []
        while len(es) < min(n_effects, len(all_effects)):
            e = rng.choice(known) if known and rng.random() < 0.5 else rng.choice(all_effects)
            if e.lower() not in {x.lower() for x in es} and e.lower() not in {d.lower() for d in ds}:
                es.append(e)
        words, cues = styles[rng.randrange(len(styles))]
        out.append(Seed(i, ds, tuple(es), words, cues))
    return out


class NearDuplicates:
    """MinHash LSH over lower-cased word 3-gram shingles: is a sentence (Jaccard >= ``threshold``)
    a near-copy of a corpus sentence or of one kept before it?"""

    def __init__(self, threshold: float = 0.5, num_perm: int = 64) -> None:
        from datasketch import MinHashLSH

        self.threshold, self.num_perm = threshold, num_perm
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._hashes: dict[str, object] = {}

    def _minhash(self, text: str):
        from datasketch import MinHash

        words = re.findall(r"\w+", text.lower())
        shingles = {" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))}
        m = MinHash(num_perm=self.num_perm, seed=1)
        m.update_batch([s.encode("utf-8") for s in shingles])
        return m

    def add(self, key: str, text: str) -> None:
        if key not in self._hashes:
            m = self._minhash(text)
            self.lsh.insert(key, m)
            self._hashes[key] = m

    def nearest(self, text: str) -> tuple[str | None, float]:
        """The most similar stored key at or above the threshold (its estimated Jaccard), or (None, 0)."""
        m = self._minhash(text)
        best, score = None, 0.0
        for key in self.lsh.query(m):
            j = m.jaccard(self._hashes[key])
            if j >= self.threshold and j > score:
                best, score = key, j
        return best, score


@dataclass
class SynthesisStats:
    seeds: int = 0
    kept: int = 0  # kept in this run
    total_kept: int = 0  # in the output file, earlier runs included
    skipped_existing: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> count, over the rejected file
    failed: int = 0  # seeds whose teacher call failed in this run (tried again on the next)
    teacher_seconds: float = 0.0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["rejected"] = dict(self.rejected)
        d["teacher_hours"] = round(self.teacher_seconds / 3600, 4)
        return d


def diversity(sentences: Sequence[Sentence], corpus: Sequence[Sentence] = ()) -> dict:
    """What a reader needs to see mode collapse: distinct drugs and reactions, distinct-n
    (unique n-grams over all n-grams, n = 1..3) of the generated text, and the word 3-gram
    overlap with the corpus (share of generated 3-grams that occur in it)."""
    def grams(text: str, n: int) -> list[str]:
        w = re.findall(r"\w+", text.lower())
        return [" ".join(w[i:i + n]) for i in range(len(w) - n + 1)]

    out: dict = {"sentences": len(sentences),
                 "distinct_drugs": len({e.text.lower() for s in sentences for e in s.entities if e.label == "DRUG"}),
                 "distinct_effects": len({e.text.lower() for s in sentences for e in s.entities if e.label == "ADE"}),
                 "relations": sum(len(s.relations) for s in sentences)}
    for n in (1, 2, 3):
        all_grams = [g for s in sentences for g in grams(s.text, n)]
        out[f"distinct_{n}"] = round(len(set(all_grams)) / len(all_grams), 4) if all_grams else None
    if corpus:
        corpus_grams = {g for s in corpus for g in grams(s.text, 3)}
        gen = [g for s in sentences for g in grams(s.text, 3)]
        out["trigram_overlap_with_corpus"] = round(sum(g in corpus_grams for g in gen) / len(gen), 4) if gen else None
        starts = Counter(" ".join(s.text.split()[:3]).lower() for s in sentences)
        out["top_openings"] = starts.most_common(5)
    return out


class Synthesizer:
    """``Synthesizer(teacher).run(seeds, corpus, out)``: generate, check, keep, resume."""

    def __init__(self, teacher: Teacher, *, temperature: float = 0.8, max_tokens: int = 256,
                 near_duplicate: float = 0.5, answer: str = "plain") -> None:
        if answer not in ANSWERS:
            raise AdeDistillError(f"synthesize: answer must be one of {', '.join(ANSWERS)} (got {answer!r})")
        self.answer = answer
        self.teacher = teacher
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.near_duplicate = near_duplicate
        self.stats = SynthesisStats()

    @property
    def version(self) -> str:
        return SYNTH_PLAIN_VERSION if self.answer == "plain" else SYNTH_VERSION

    def params(self, seed: Seed, attempt: int) -> SamplingParams:
        if self.answer == "plain":  # one sentence: a few dozen tokens
            return SamplingParams(temperature=self.temperature, max_tokens=min(self.max_tokens, 160),
                                  seed=seed.index * 10 + attempt, logprobs=False, response_format="none")
        # the JSON answer whatever the labelling format: OpenAI's json_object where the teacher
        # config asks for that, else a JSON-schema grammar (llama.cpp)
        rf = "json_object" if self.teacher.cfg.response_format == "json_object" else "json_schema"
        return SamplingParams(temperature=self.temperature, max_tokens=self.max_tokens,
                              seed=seed.index * 10 + attempt, logprobs=False, response_format=rf,
                              schema=SYNTH_SCHEMA if rf == "json_schema" else None)

    def messages(self, seed: Seed) -> list[dict]:
        system = SYNTH_SYSTEM_PLAIN if self.answer == "plain" else SYNTH_SYSTEM
        return [{"role": "system", "content": system}, {"role": "user", "content": seed.instruction()}]

    def write(self, seed: Seed) -> tuple[str, list[tuple[str, str]]]:
        """The teacher's sentence and pairs for one seed (cached); UnparseableAnswer if none is usable."""
        messages = self.messages(seed)
        for attempt in range(self.teacher.cfg.parse_retries + 1):
            params = self.params(seed, attempt)
            comp = self.teacher._complete(messages, params, sample=0, attempt=attempt)
            if self.answer == "plain":
                text, pairs = _parse_plain(comp.text), [(d, e) for d in seed.drugs for e in seed.effects]
            else:
                text, pairs = _parse_written(comp.text)
            if text:
                return text, pairs
        raise UnparseableAnswer(f"no usable sentence after {self.teacher.cfg.parse_retries + 1} tries")

    def check(self, seed: Seed, text: str, pairs: list[tuple[str, str]], dups: NearDuplicates
              ) -> tuple[Sentence | None, str | None, dict]:
        """The kept record, or None with the reason it was dropped (and what was measured)."""
        sid = f"syn-{seed.index:06d}"
        if not pairs:
            return None, "no pairs written", {}
        text, trimmed = first_sentence(text, pairs)
        bare = Sentence(id=sid, doc_id=sid, text=text, source="unlabeled")
        if _SENTENCE_BREAK.search(text) or len(text.split()) > 2.5 * seed.words:
            return None, LENGTH_REASON, {"words": len(text.split())}
        near, score = dups.nearest(text)
        if near is not None:
            kind = "corpus" if near.startswith("c:") else "synthetic"
            return None, f"near-duplicate of a {kind} sentence", {"near": near[2:], "jaccard": round(score, 3)}
        ents, rels, rejected = ground_pairs(bare, [[_Pair(d, e) for d, e in pairs]], fuzzy_threshold=1.01,
                                            majority=1.0)
        if rejected or not rels:
            return None, "a written span is not in the sentence", {}
        if not any(d.lower() in text.lower() for d in seed.drugs):
            return None, "the seed drug is not in the sentence", {}
        reread = self.teacher.label_one(bare)
        written = {(ents_by(ents, r.drug), ents_by(ents, r.ade)) for r in rels}
        read = {(ents_by(reread.entities, r.drug), ents_by(reread.entities, r.ade)) for r in reread.relations}
        if written != read:
            return None, "the teacher's re-read disagrees", {"written": len(written), "read": len(read),
                                                              "common": len(written & read)}
        meta = {"synthetic": True, "seed": seed.to_json(), "prompt_version": self.version,
                "relabel_prompt": self.teacher.fmt.version, "model": self.teacher.model_name}
        if trimmed:
            meta["trimmed"] = "first sentence of the answer"
        return Sentence(id=sid, doc_id=sid, text=text, entities=ents, relations=rels,
                        source=f"synthetic:{self.teacher.model_name}", meta=meta), None, {}

    def run(self, seeds: Sequence[Seed], corpus: Sequence[Sentence], out: str | Path, *, target: int | None = None,
            exclude: Sequence[Sentence] = (), checkpoint_every: int = 20, progress: bool = True) -> SynthesisStats:
        """Generate one candidate per seed, in seed order, into ``out`` (kept) and
        ``<out>.rejected.jsonl`` (each dropped seed with its reason), until ``target`` sentences are
        kept or the seeds run out; seeds already in either file are not tried again. ``exclude``:
        more sentences no kept one may nearly copy (e.g. evaluation text the model may have read)."""
        from tqdm import tqdm

        out = Path(out)
        rejected_path = out.with_name(out.name.removesuffix(".jsonl") + ".rejected.jsonl")
        kept: dict[int, Sentence] = {}
        if out.exists():
            kept = {int(s.id.split("-")[1]): s for s in read_sentences(out)}
        dropped: dict[int, dict] = {}
        if rejected_path.exists():
            for line in rejected_path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    if row.get("checks", 1) >= _CHANGED_IN.get(row["reason"], 0):
                        dropped[row["index"]] = row
        dups = NearDuplicates(self.near_duplicate)
        for s in [*corpus, *exclude]:
            dups.add("c:" + s.id, s.text)
        for s in kept.values():  # kept sentences, in seed order: a resumed run sees what the first saw
            dups.add("s:" + s.id, s.text)
        todo = [sd for sd in seeds if sd.index not in kept and sd.index not in dropped]
        self.stats.seeds = len(seeds)
        self.stats.skipped_existing = len(seeds) - len(todo)

        def flush() -> None:
            write_jsonl(out, (kept[i] for i in sorted(kept)))
            with atomic_open(rejected_path) as fh:
                for i in sorted(dropped):
                    fh.write(json.dumps(dropped[i], ensure_ascii=False) + "\n")

        t0 = time.monotonic()
        calls0 = self.teacher.stats.calls
        goal = target if target is not None else len(seeds)
        bar = tqdm(total=goal, initial=min(len(kept), goal), desc=f"synthesize {self.teacher.model_name}",
                   unit=" kept", disable=not progress or None)
        since = 0
        try:
            for sd in todo:
                if len(kept) >= goal:
                    break
                try:
                    text, pairs = self.write(sd)
                    rec, reason, info = self.check(sd, text, pairs, dups)
                except (BudgetExceeded, ServerGone):
                    raise
                except (UnparseableAnswer, RequestRejected, TransientError) as exc:
                    rec, reason, info, text = None, f"teacher failed: {type(exc).__name__}", {"error": str(exc)}, None
                if rec is not None:
                    kept[sd.index] = rec
                    dups.add("s:" + rec.id, rec.text)
                    self.stats.kept += 1
                    bar.update(1)
                elif not reason.startswith("teacher failed"):  # a failed call is tried again on resume
                    # a near-copy of corpus text is not kept anywhere (the corpus may not be redistributed)
                    keep_text = None if reason.startswith("near-duplicate") else text
                    dropped[sd.index] = {"index": sd.index, "reason": reason, "text": keep_text, "checks": CHECKS,
                                         **info}
                else:
                    self.stats.failed += 1
                    log.warning("synthesize: seed %d not written: %s", sd.index, info.get("error"))
                bar.set_postfix(tried=len(kept) + len(dropped))
                since += 1
                if checkpoint_every and since >= checkpoint_every:
                    flush()
                    since = 0
        finally:
            bar.close()
            flush()
            ts = self.teacher.stats
            self.stats.teacher_seconds += time.monotonic() - t0 if ts.calls > calls0 else 0.0
            self.stats.total_kept = len(kept)
            self.stats.rejected = Counter(r["reason"] for r in dropped.values())
            self.stats.calls, self.stats.prompt_tokens = ts.calls, ts.prompt_tokens
            self.stats.completion_tokens, self.stats.cost_usd = ts.completion_tokens, round(ts.cost_usd, 6)
        return self.stats


def ents_by(entities, eid: str) -> tuple[str, int, int]:
    e = next(x for x in entities if x.id == eid)
    return e.label, e.start, e.end


def _parse_plain(answer: str) -> str | None:
    """The sentence of a plain answer: its first non-empty line, without a "Sentence:" label, quotes
    or emphasis around it; None when that is too short to be one."""
    line = next((x for x in answer.splitlines() if x.strip()), "")
    line = re.sub(r"^\W*sentence\W*:\s*", "", line.strip(), flags=re.I).strip().strip('"*`\u201c\u201d').strip()
    text = " ".join(line.split())
    return text if len(text) >= 20 else None


def _parse_written(answer: str) -> tuple[str | None, list[tuple[str, str]]]:
    """(sentence, pairs) from the generation answer; (None, []) when it holds no sentence."""
    t = answer.strip()
    start, end = t.find("{"), t.rfind("}")
    if start == -1 or end <= start:
        return None, []
    try:
        data = json.loads(t[start:end + 1])
    except json.JSONDecodeError:
        return None, []
    if not isinstance(data, dict) or not isinstance(data.get("sentence"), str):
        return None, []
    text = " ".join(data["sentence"].split())
    if len(text) < 20:
        return None, []
    return text, parse_json(json.dumps({"ades": data.get("ades", [])})) or []
