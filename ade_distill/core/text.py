"""Sentence splitting with document offsets, offline (spaCy's blank English + rules).

No spaCy model can be downloaded here, so the splitter is spaCy's rule-based
``sentencizer`` plus two things biomedical text needs: tokenizer exceptions that keep
abbreviations such as "i.v.", "e.g.", "Fig." and "vs." whole, and a component that
refuses a sentence break after an abbreviation or before a lower-case word.
Paragraphs (blank lines) always end a sentence, so a title is never glued to its
abstract.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator

from .schema import Document, Sentence

# Abbreviations whose trailing period does not end a sentence (lower-cased, with periods).
ABBREVIATIONS: tuple[str, ...] = (
    "i.v.", "i.m.", "i.p.", "s.c.", "p.o.", "b.i.d.", "t.i.d.", "q.i.d.", "q.d.", "o.d.",
    "p.r.n.", "h.s.", "a.m.", "p.m.", "e.g.", "i.e.", "cf.", "vs.", "viz.", "approx.",
    "ca.", "etc.", "fig.", "figs.", "tab.", "no.", "nos.", "vol.", "dr.", "drs.", "mr.",
    "mrs.", "ms.", "prof.", "st.", "al.", "resp.", "ref.", "refs.", "incl.", "max.", "min.",
    "avg.", "mg.", "kg.", "hr.", "hrs.", "wk.", "wks.", "yr.", "yrs.", "mo.", "mos.", "sp.",
    "spp.", "jan.", "feb.", "mar.", "apr.", "jun.", "jul.", "aug.", "sep.", "sept.",
    "oct.", "nov.", "dec.", "inj.", "tab.", "cap.", "susp.", "soln.", "conc.",
)
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")


def _abbrev_forms(abbr: str) -> set[str]:
    return {abbr, abbr.capitalize(), abbr.upper(), abbr.title()}


@lru_cache(maxsize=1)
def _nlp():
    import spacy
    from spacy.language import Language
    from spacy.symbols import ORTH

    nlp = spacy.blank("en")
    nlp.max_length = 50_000_000
    for abbr in ABBREVIATIONS:
        for form in _abbrev_forms(abbr):
            nlp.tokenizer.add_special_case(form, [{ORTH: form}])
    abbrev_lower = set(ABBREVIATIONS)

    @Language.component("ade_sentence_rules")
    def ade_sentence_rules(doc):  # noqa: ANN001 - spaCy component signature
        # All "no break here" marks are set in one from_array call: assigning
        # ``token.is_sent_start`` re-checks the whole doc's annotation on every call, which made
        # splitting quadratic in paragraph length. -1 = not a sentence start, 0 = let the
        # sentencizer decide (it fills only unset tokens, so these marks win).
        import numpy as np
        from spacy.attrs import SENT_START

        marks = np.zeros((len(doc), 1), dtype=np.uint64)
        texts = [t.text for t in doc]
        for i in range(1, len(doc)):
            prev, tok = doc[i - 1], doc[i]
            prev_low = texts[i - 1].lower()
            no_break = (
                prev_low in abbrev_lower
                or (prev.text == "." and i >= 2 and f"{texts[i - 2].lower()}." in abbrev_lower
                    and not doc[i - 2].whitespace_)
                or tok.text[:1].islower()
                or (tok.is_punct and tok.text in ",;:)]")
            )
            if no_break:
                marks[i, 0] = np.uint64(-1 & 0xFFFFFFFFFFFFFFFF)
        if len(doc):
            doc.from_array([SENT_START], marks)
        return doc

    nlp.add_pipe("ade_sentence_rules")
    nlp.add_pipe("sentencizer")
    return nlp


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for m in _PARAGRAPH.finditer(text):
        yield start, m.start()
        start = m.end()
    yield start, len(text)


def split_spans(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end-exclusive) of the sentences of ``text``.

    Spans are stripped of surrounding whitespace and never cross a blank line.
    """
    nlp = _nlp()
    spans: list[tuple[int, int]] = []
    paras = [(s, e) for s, e in _paragraphs(text) if text[s:e].strip()]
    for (p_start, _), doc in zip(paras, nlp.pipe(text[s:e] for s, e in paras)):
        for sent in doc.sents:
            s, e = sent.start_char, sent.end_char
            chunk = doc.text[s:e]
            s += len(chunk) - len(chunk.lstrip())
            e -= len(chunk) - len(chunk.rstrip())
            if e > s:
                spans.append((p_start + s, p_start + e))
    return spans


def split_document(doc: Document) -> list[Sentence]:
    """Split a Document into unlabelled Sentences whose doc_offset index ``doc.full_text``."""
    full = doc.full_text
    return [
        Sentence(id=f"{doc.id}:s{k}", doc_id=doc.id, text=full[s:e], doc_offset=s,
                 source="unlabeled", meta={"sentence_index": k, "doc_source": doc.source})
        for k, (s, e) in enumerate(split_spans(full))
    ]


_WORD = re.compile(r"\w+|[^\w\s]")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Word and punctuation token spans, the tokenization BIO scoring uses."""
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]
