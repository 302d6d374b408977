"""Assertion flags on each adverse event: negated ("no rash was observed"), speculative ("may
cause"), hypothetical ("if hepatitis develops"), historical ("a history of pancreatitis"), or
affirmed. Negation and speculation come from the cue tagger learned on BioScope (post/cues.py: a
cue word and its clause); hypothetical and historical from negspacy's NegEx component (a spaCy
pipeline over each sentence, the event's span as the entity) with cue lists in NegEx's roles
(preceding / following / pseudo / termination). ``AssertionFlagger(cues=None)`` is the NegEx-only
flagger (negspacy's clinical termset for negation, the lists below for speculation), kept as the
measured baseline.

A flagged event is still output, with its flag; the evaluation can leave non-affirmed events out
(`evaluate.affirmed_only`). Measured on BioScope (reports/pv_coding/assertion.md).
"""

from __future__ import annotations

from functools import lru_cache

FLAGS = ("negated", "speculative", "hypothetical", "historical")

# cue lists in NegEx's roles; the negation one is negspacy's own clinical termset
SPECULATION = {
    "preceding_negations": [
        "may", "might", "could", "possible", "possibly", "probable", "probably", "likely", "unlikely", "suspected",
        "suspect", "suspicious for", "suspicion of", "suggest", "suggests", "suggested", "suggesting", "suggestive of",
        "consistent with", "compatible with", "question of", "questionable", "presumed", "presumably", "putative",
        "potential", "potentially", "perhaps", "apparent", "apparently", "appears", "appear", "seems", "seem",
        "thought to", "believed to", "assumed", "whether", "rule out", "r/o", "differential diagnosis", "indicate",
        "indicates", "indicating", "implicated", "attributed to", "associated with a risk of", "hypothesize",
        "hypothesized", "speculate", "raise the possibility", "cannot be excluded", "can not be excluded",
        "not excluded", "uncertain", "unclear", "or"],
    "following_negations": ["is possible", "was possible", "cannot be excluded", "could not be excluded",
                            "not ruled out", "was suspected", "is suspected", "was considered", "is likely",
                            "was likely", "?"],
    "pseudo_negations": ["no doubt", "without doubt", "definite", "definitely", "confirmed"],
    "termination": ["but", "however", "although", "though", "except", "which", "whereas", ";"],
}
HYPOTHETICAL = {
    "preceding_negations": ["if", "in case of", "should", "risk of", "at risk for", "at risk of", "to prevent",
                            "prevention of", "prophylaxis of", "prophylaxis against", "monitor for", "monitoring for",
                            "watch for", "warned of", "warned about", "counseled about", "can cause", "may cause",
                            "might cause", "could cause", "can lead to", "may lead to", "potential for",
                            "unless", "in the event of", "avoid"],
    "following_negations": ["is a risk", "may occur", "can occur", "could occur", "might occur", "would occur"],
    "pseudo_negations": [],
    "termination": ["but", "however", "although", "which", "because", ";"],
}
HISTORICAL = {
    "preceding_negations": ["history of", "h/o", "past history of", "previous", "previously", "prior", "past",
                            "formerly", "old", "remote", "in the past", "years ago", "childhood"],
    "following_negations": ["in the past", "years ago", "previously", "in childhood", "as a child"],
    "pseudo_negations": ["history of present illness", "family history of"],
    "termination": ["but", "however", "now", "currently", "presented with", "presents with", "which", ";"],
}


@lru_cache(maxsize=1)
def _pipelines():
    from importlib import import_module

    import spacy
    from negspacy.termsets import termset

    import_module("negspacy.negation")  # registers the "negex" factory

    out = {}
    for flag, terms in (("negated", termset("en_clinical").get_patterns()), ("speculative", SPECULATION),
                        ("hypothetical", HYPOTHETICAL), ("historical", HISTORICAL)):
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        nlp.add_pipe("negex", config={"neg_termset": terms, "extension_name": f"ade_{flag}", "ent_types": ["ADE"]})
        out[flag] = nlp
    return out


_DEFAULT = object()
CUE_FLAGS = {"negated": "negation", "speculative": "speculation"}


class AssertionFlagger:
    """``flag(sentence, start, end)`` -> "negated" | "speculative" | "hypothetical" | "historical" | "affirmed"
    for the event whose reaction spans [start, end) of the sentence (the first flag that holds, in
    that order); ``flags`` gives all four booleans. ``cues``: a post.cues.CueTagger (default: the
    shipped BioScope one) for negation and speculation, or None for NegEx's cue lists."""

    def __init__(self, cues=_DEFAULT) -> None:
        if cues is _DEFAULT:
            from .cues import CueTagger

            cues = CueTagger.load()
        self.cues = cues
        self.nlps = {k: v for k, v in _pipelines().items() if cues is None or k not in CUE_FLAGS}

    def flags(self, text: str, start: int, end: int) -> dict[str, bool]:
        out = {}
        if self.cues is not None:
            scopes = self.cues.scopes(text)
            for flag, kind in CUE_FLAGS.items():
                out[flag] = any(a < end and start < b for a, b in scopes[kind])
        for flag, nlp in self.nlps.items():
            doc = nlp.make_doc(text)
            span = doc.char_span(start, end, label="ADE", alignment_mode="expand")
            if span is None:
                out[flag] = False
                continue
            doc.ents = [span]
            for _, proc in nlp.pipeline:
                doc = proc(doc)
            out[flag] = bool(getattr(doc.ents[0]._, f"ade_{flag}"))
        return {k: out[k] for k in FLAGS}

    def word_flags(self, text: str) -> dict[str, list[tuple[int, int]]]:
        """Every word of a sentence taken as a candidate event: for each flag, the (start, end) of
        the words it holds for (how far a cue's reach goes: its scope)."""
        from spacy.tokens import Span

        out = {}
        if self.cues is not None:
            found = self.cues.word_flags(text)
            out.update({flag: found[kind] for flag, kind in CUE_FLAGS.items()})
        for flag, nlp in self.nlps.items():
            doc = nlp.make_doc(text)
            doc.ents = [Span(doc, i, i + 1, label="ADE") for i in range(len(doc)) if doc[i].is_alpha]
            for _, proc in nlp.pipeline:
                doc = proc(doc)
            out[flag] = [(e.start_char, e.end_char) for e in doc.ents if getattr(e._, f"ade_{flag}")]
        return out

    def flag(self, text: str, start: int, end: int) -> str:
        f = self.flags(text, start, end)
        return next((k for k in FLAGS if f[k]), "affirmed")
