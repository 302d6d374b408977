"""Teacher-written training sentences (``ade-distill synthesize``): seeds from a teacher-labelled
corpus, generation, the checks (grounded spans, no near-duplicates, the teacher's re-read agrees),
resume, and a run record with the diversity figures a reader needs to see mode collapse."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..core.errors import InputError
from ..core.schema import Sentence, atomic_open, read_sentences
from ..teacher import Teacher, TeacherConfig
from ..teacher.synthesis import ANSWERS, Synthesizer, SynthesisStats, diversity, make_seeds, read_names
from .common import sentence_list
from .teacher import teacher_config


@dataclass
class SynthesizeResult:
    out: Path
    model: str
    stats: SynthesisStats
    diversity: dict = field(default_factory=dict)
    teacher_hours: float = 0.0

    def lines(self) -> list[str]:
        s, d = self.stats, self.diversity
        tried = s.total_kept + sum(s.rejected.values())
        lines = [f"synthesize {self.model}: {s.total_kept:,} sentences kept of {tried:,} tried ({s.kept:,} new in "
                 f"this run); {s.calls:,} teacher calls, {s.prompt_tokens:,} prompt + {s.completion_tokens:,} "
                 f"completion tokens, ${s.cost_usd:.4f}; teacher time {self.teacher_hours:.2f} h over all runs -> {self.out}"]
        if s.rejected:
            lines.append("dropped: " + "; ".join(f"{k} {v:,}" for k, v in s.rejected.most_common()))
        if s.failed:
            lines.append(f"{s.failed:,} seed(s) not written (teacher call failed): rerun the same command to retry them")
        if d:
            lines.append(f"diversity: {d['distinct_drugs']:,} distinct drugs, {d['distinct_effects']:,} distinct "
                         f"effects, distinct-1/2/3 {d['distinct_1']}/{d['distinct_2']}/{d['distinct_3']}; "
                         f"word 3-grams also in the corpus {d.get('trigram_overlap_with_corpus')}")
        return lines


def synthesize(corpus: Iterable[Sentence] | str | Path | Sequence[str | Path], out: str | Path,
               teacher: TeacherConfig | str | Path | None = None, *, n: int = 1000, max_tries: float = 4.0,
               drugs: Sequence[str | Path] = (), effects: Sequence[str | Path] = (), seed: int = 13,
               near_duplicate: float = 0.5, temperature: float = 0.8, checkpoint_every: int = 20,
               exclude: Iterable[Sentence] | str | Path | Sequence[str | Path] = (), allow_gold: bool = False,
               answer: str = "plain", progress: bool = True, cache: str | None = None) -> SynthesizeResult:
    """Have the teacher write ``n`` checked ADE sentences with their labels into ``out`` (JSONL,
    source "synthetic:<model>"), trying at most ``n * max_tries`` seeds; dropped candidates go to
    <out>.rejected.jsonl with their reason, the run's numbers to <out>.run.json. A rerun resumes.

    ``corpus`` is teacher-labelled text (the seeds' drug and reaction strings, and the style cues
    of its sentences); gold labels are refused unless ``allow_gold`` (a distilled student must not
    see them). ``drugs`` and ``effects`` are name lists (files, one name a line or a CSV's first
    column) that widen the seeds beyond the corpus: rare drugs, MedDRA terms. ``exclude``: sentences
    (e.g. every evaluation part) that no kept sentence may nearly copy; only their text is read.
    ``answer``: "json" (the sentence and the pairs it reports, as written) or "plain" (the sentence
    alone, labelled with the seed's pairs; fewer answer tokens, the same checks)."""
    cfg = teacher_config(teacher, cache=cache)
    src = corpus
    corpus = sentence_list(corpus)
    if not corpus:
        raise InputError(f"{src if isinstance(src, (str, Path)) else 'synthesize'}: no corpus sentences")
    gold = [s.id for s in corpus if s.source == "gold"]
    if gold and not allow_gold:
        raise InputError(f"synthesize: the corpus holds gold-labelled sentences (first: {gold[0]}); seeds from gold "
                         "labels would carry gold into a distilled student. Label the text with the teacher first "
                         "(ade-distill label), or pass allow_gold / --allow-gold for a supervised student.")
    if answer not in ANSWERS:
        raise InputError(f"synthesize: answer must be one of {', '.join(ANSWERS)} (got {answer!r})")
    if n < 1 or max_tries < 1:
        raise InputError(f"synthesize: n must be >= 1 and max_tries >= 1 (got n={n}, max_tries={max_tries})")
    drug_names = [x for p in drugs for x in read_names(p)]
    effect_names = [x for p in effects for x in read_names(p)]
    seeds = make_seeds(corpus, int(n * max_tries), drugs=drug_names, effects=effect_names, seed=seed)
    out = Path(out)
    run_json = out.with_name(out.name.removesuffix(".jsonl") + ".run.json")
    before = json.loads(run_json.read_text(encoding="utf-8")) if run_json.exists() else {}
    excluded = sentence_list(exclude) if exclude else []
    t = Teacher(cfg)
    syn = Synthesizer(t, temperature=temperature, near_duplicate=near_duplicate, answer=answer)
    try:
        syn.run(seeds, corpus, out, target=n, exclude=excluded, checkpoint_every=checkpoint_every, progress=progress)
    finally:  # an interrupted run records its numbers too (its teacher time counts)
        t.close()
        stats = syn.stats
        kept = list(read_sentences(out)) if out.exists() else []
        div = diversity(kept, corpus)
        hours = before.get("teacher_hours_total", 0.0) + stats.teacher_seconds / 3600
        record = {"stats": stats.to_json(), "teacher_hours_total": round(hours, 4), "diversity": div,
                  "settings": {"n": n, "max_tries": max_tries, "seed": seed, "near_duplicate": near_duplicate,
                               "temperature": temperature, "answer": answer, "corpus_sentences": len(corpus),
                               "excluded_sentences": len(excluded), "drug_names": len(drug_names),
                               "effect_names": len(effect_names)},
                  "teacher": cfg.model_dump()}
        with atomic_open(run_json) as fh:
            json.dump(record, fh, indent=2, default=str)
            fh.write("\n")
    return SynthesizeResult(out, t.model_name, stats, div, hours)
