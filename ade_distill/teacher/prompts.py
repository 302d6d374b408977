"""Versioned prompt templates and few-shot examples for the teacher LLM.

The prompt version is part of every cache key and every labelled record's meta, so a
change here never mixes with labels made by an older prompt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ..schema import Sentence, read_sentences

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

ZERO_SHOT_SYSTEM = SYSTEM

OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"ades": {"type": "array", "items": {
        "type": "object",
        "properties": {"drug": {"type": "string"}, "effect": {"type": "string"}},
        "required": ["drug", "effect"]}}},
    "required": ["ades"],
}

DEFAULT_SHOTS = Path(__file__).resolve().parents[2] / "data" / "prompts" / "few_shot.jsonl"


def answer_of(s: Sentence) -> str:
    """The JSON answer a gold sentence implies, in the teacher's output schema."""
    ades = [{"drug": s.entity(r.drug).text, "effect": s.entity(r.ade).text} for r in s.relations]
    return json.dumps({"ades": ades}, ensure_ascii=False)


def load_shots(path: str | Path | None = None, n: int | None = None) -> list[Sentence]:
    """Few-shot examples: gold sentences from a JSONL file (never from the evaluation split)."""
    shots = list(read_sentences(path or DEFAULT_SHOTS))
    return shots[:n] if n is not None else shots


def user_message(text: str) -> str:
    return f"Sentence: {text}"


def build_messages(text: str, shots: Sequence[Sentence]) -> list[dict]:
    """Chat messages: rules, then each example as a user/assistant turn, then the sentence."""
    messages = [{"role": "system", "content": SYSTEM}]
    for shot in shots:
        messages.append({"role": "user", "content": user_message(shot.text)})
        messages.append({"role": "assistant", "content": answer_of(shot)})
    messages.append({"role": "user", "content": user_message(text)})
    return messages
