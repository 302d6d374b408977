"""Versioned prompt templates, answer formats and few-shot examples for the teacher LLM.

The prompt version is part of every cache key and every labelled record's meta, so a
change here never mixes with labels made by an older prompt. Two answer formats share the
rules and the shots: ``json`` (prompt ade-v2, {"ades": [{"drug", "effect"}]}, which a JSON
grammar can enforce) and ``lines`` (prompt ade-v3-lines, one ``drug => effect`` line per pair,
``none`` for no ADE): the same pairs in about a third of the answer tokens, and decoding answer
tokens is most of what a local teacher spends its time on (reports/teacher_speed/). A third,
``effects`` (prompt ade-v4-effects), asks the question the other way round, effect first, one
``effect <= drug`` line per pair: a second wording of the same task, so its misses are not all
the same as the first two's (the views of issue #30 aggregate them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..core.schema import Sentence, read_sentences

PROMPT_VERSION = "ade-v2"

SYSTEM = """You extract adverse drug events (ADEs) from sentences of medical case reports.
An ADE is an unwanted effect that the sentence says a drug caused (or was associated with,
induced, or led to). Report each (drug, effect) pair.

Rules:
- Copy "drug" and "effect" exactly as they are written in the sentence: same words, same spelling.
- "drug" is the drug name only (no dose, no route).
- "effect" is the shortest phrase that names the adverse effect, with its qualifiers when they
  are part of the name (e.g. "severe hyponatremia", "acute renal failure").
- If one drug caused several effects, or several drugs caused one effect, list every pair.
- Do not report the disease a drug was given for, effects that did not happen, or drugs that
  caused nothing.
- If the sentence reports no adverse drug event, return {"ades": []}.
Answer with JSON only: {"ades": [{"drug": "...", "effect": "..."}]}"""

# The same rules; only the last two lines (what "no ADE" looks like, the answer's shape) differ.
LINES_SYSTEM = SYSTEM.rsplit("- If the sentence reports", 1)[0] + (
    "- If the sentence reports no adverse drug event, answer: none\n"
    "Answer with one line per pair and nothing else: drug => effect")

# The effect-first wording: find every unwanted effect first, then name the drug behind it.
EFFECTS_SYSTEM = """You read sentences from medical case reports and list every adverse drug event
(ADE) they report. First find each unwanted effect, sign, symptom, disease or abnormal finding that
the sentence attributes to a drug (caused, induced, associated with, due to, led to, after taking);
then name the drug responsible for it.

Rules:
- Copy the effect and the drug exactly as they are written in the sentence: same words, same spelling.
- The effect is the shortest phrase that names it, with its qualifiers when they are part of the
  name (e.g. "severe hyponatremia", "acute renal failure").
- The drug is the drug name only (no dose, no route).
- One line per (effect, drug) pair: an effect caused by two drugs is two lines, and a drug that
  caused three effects is three lines.
- Leave out the disease a drug was given for, effects that did not happen, and drugs that caused nothing.
- If the sentence reports no adverse drug event, answer: none
Answer with one line per pair and nothing else: effect <= drug"""

OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"ades": {"type": "array", "items": {
        "type": "object",
        "properties": {"drug": {"type": "string"}, "effect": {"type": "string"}},
        "required": ["drug", "effect"]}}},
    "required": ["ades"],
}

DEFAULT_SHOTS = Path(__file__).resolve().parents[1] / "resources" / "prompts" / "few_shot.jsonl"


_FENCE = re.compile(r"^```(?:json|text)?\s*|\s*```$", re.MULTILINE)
_JSON_VALUE = re.compile(r'"(drug|effect)"\s*:\s*"((?:[^"\\]|\\.)*)"')
_LINE = re.compile(r"^[ \t]*(?:[-*][ \t]+|\d+[.)][ \t]+)?(?P<drug>[^\n]*?)[ \t]*=>[ \t]*(?P<effect>[^\n]*?)[ \t]*$",
                   re.MULTILINE)
_EFFECT_LINE = re.compile(
    r"^[ \t]*(?:[-*][ \t]+|\d+[.)][ \t]+)?(?P<effect>[^\n]*?)[ \t]*<=[ \t]*(?P<drug>[^\n]*?)[ \t]*$", re.MULTILINE)
_NONE = re.compile(r"(?i)\s*(none|no ades?|no adverse drug events?)\.?\s*")


def _json_answer(pairs: Sequence[tuple[str, str]]) -> str:
    return json.dumps({"ades": [{"drug": d, "effect": e} for d, e in pairs]}, ensure_ascii=False)


def _lines_answer(pairs: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{d} => {e}" for d, e in pairs) or "none"


def _effects_answer(pairs: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{e} <= {d}" for d, e in pairs) or "none"


def parse_json(text: str) -> list[tuple[str, str]] | None:
    """(drug, effect) pairs from a JSON answer, tolerant of fences and chatter; None if no
    usable JSON is found."""
    t = _FENCE.sub("", text.strip())
    start, end = t.find("{"), t.rfind("}")
    candidates = [t]
    if start != -1 and end > start:
        candidates.append(t[start:end + 1])
    lb, rb = t.find("["), t.rfind("]")
    if lb != -1 and rb > lb:
        candidates.append(t[lb:rb + 1])
    for cand in candidates:
        try:
            data = json.loads(cand)
        except json.JSONDecodeError:
            continue
        items = data.get("ades", data.get("ADEs", data.get("pairs"))) if isinstance(data, dict) else data
        if not isinstance(items, list):
            continue
        pairs = []
        for it in items:
            if not isinstance(it, dict):
                continue
            drug = it.get("drug")
            effect = it.get("effect", it.get("adverse_effect", it.get("ade")))
            if isinstance(drug, str) and isinstance(effect, str) and drug.strip() and effect.strip():
                pairs.append((drug, effect))
        return pairs
    return None


def parse_lines(text: str) -> list[tuple[str, str]] | None:
    """(drug, effect) pairs from ``drug => effect`` lines (bullets, numbers and quotes
    tolerated); [] for an answer of ``none``; None when the answer is neither."""
    t = _FENCE.sub("", text.strip())
    pairs = [(m["drug"].strip('"'), m["effect"].strip('"')) for m in _LINE.finditer(t)]
    pairs = [(d, e) for d, e in pairs if d.strip() and e.strip()]
    if pairs:
        return pairs
    return [] if _NONE.fullmatch(t) else None


def parse_effects(text: str) -> list[tuple[str, str]] | None:
    """(drug, effect) pairs from ``effect <= drug`` lines; [] for ``none``; None otherwise."""
    t = _FENCE.sub("", text.strip())
    pairs = [(m["drug"].strip('"'), m["effect"].strip('"')) for m in _EFFECT_LINE.finditer(t)]
    pairs = [(d, e) for d, e in pairs if d.strip() and e.strip()]
    if pairs:
        return pairs
    return [] if _NONE.fullmatch(t) else None


def json_value_spans(text: str) -> list[tuple[str, int, int]]:
    """(key, start, end) of every "drug"/"effect" string value in a JSON answer."""
    return [(m.group(1), m.start(2), m.end(2)) for m in _JSON_VALUE.finditer(text)]


def lines_value_spans(text: str) -> list[tuple[str, int, int]]:
    """(key, start, end) of the drug and the effect of every ``drug => effect`` line."""
    return [(k, m.start(k), m.end(k)) for m in _LINE.finditer(text) for k in ("drug", "effect")]


def effects_value_spans(text: str) -> list[tuple[str, int, int]]:
    """(key, start, end) of the effect and the drug of every ``effect <= drug`` line."""
    return [(k, m.start(k), m.end(k)) for m in _EFFECT_LINE.finditer(text) for k in ("effect", "drug")]


@dataclass(frozen=True)
class AnswerFormat:
    """How the teacher is asked to answer, how its answer is read, and where its values sit
    (for token-probability confidences)."""
    name: str
    version: str  # the prompt version: in every cache key and every label's meta
    system: str
    render: Callable[[Sequence[tuple[str, str]]], str]
    parse: Callable[[str], list[tuple[str, str]] | None]
    value_spans: Callable[[str], list[tuple[str, int, int]]]
    json_grammar: bool  # whether a JSON grammar / json_object response format fits the answer

    def answer_of(self, s: Sentence) -> str:
        """The answer a gold sentence implies, in this format."""
        return self.render([(s.entity(r.drug).text, s.entity(r.ade).text) for r in s.relations])


FORMATS = {
    "json": AnswerFormat("json", PROMPT_VERSION, SYSTEM, _json_answer, parse_json, json_value_spans, True),
    "lines": AnswerFormat("lines", "ade-v3-lines", LINES_SYSTEM, _lines_answer, parse_lines, lines_value_spans,
                          False),
    "effects": AnswerFormat("effects", "ade-v4-effects", EFFECTS_SYSTEM, _effects_answer, parse_effects,
                            effects_value_spans, False),
}
JSON = FORMATS["json"]


def answer_of(s: Sentence, fmt: AnswerFormat = JSON) -> str:
    """The answer a gold sentence implies, in the teacher's output format (JSON by default)."""
    return fmt.answer_of(s)


def load_shots(path: str | Path | None = None, n: int | None = None) -> list[Sentence]:
    """Few-shot examples: gold sentences from a JSONL file (never from the evaluation split)."""
    shots = list(read_sentences(path or DEFAULT_SHOTS))
    return shots[:n] if n is not None else shots


class ShotPicker:
    """The few-shot examples of one input: the whole list, or (``retrieve``: kNN few-shot) the
    ``retrieve`` examples most like the input (TF-IDF cosine over word 1-2 grams), the nearest last;
    an example with the input's own text is never shown."""

    def __init__(self, shots: Sequence[Sentence], retrieve: int | None = None) -> None:
        self.shots, self.retrieve = list(shots), retrieve
        self._vec = self._matrix = None
        if retrieve and self.shots:
            from sklearn.feature_extraction.text import TfidfVectorizer

            self._vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
            self._matrix = self._vec.fit_transform([x.text for x in self.shots])

    def __call__(self, text: str) -> list[Sentence]:
        if self._vec is None:
            return self.shots
        sims = (self._matrix @ self._vec.transform([text]).T).toarray().ravel()
        order = [i for i in sims.argsort(kind="stable")[::-1] if self.shots[i].text != text][:self.retrieve]
        return [self.shots[i] for i in reversed(order)]


def user_message(text: str) -> str:
    return f"Sentence: {text}"


PHI_NOTE = ("Words in square brackets, such as [NAME_1] or [DATE_2], stand for personal details that were "
            "removed; they are never a drug or an adverse effect. Label the rest of the sentence as usual.")


def build_messages(text: str, shots: Sequence[Sentence], fmt: AnswerFormat = JSON, *, note: str | None = None) -> list[dict]:
    """Chat messages: rules, then each example as a user/assistant turn, then the sentence (with
    ``note`` on a line after it: e.g. PHI_NOTE for a sentence with typed placeholders)."""
    messages = [{"role": "system", "content": fmt.system}]
    for shot in shots:
        messages.append({"role": "user", "content": user_message(shot.text)})
        messages.append({"role": "assistant", "content": fmt.answer_of(shot)})
    messages.append({"role": "user", "content": user_message(text) + (f"\n{note}" if note else "")})
    return messages
