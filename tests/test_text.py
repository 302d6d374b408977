from hypothesis import given, settings, strategies as st

from ade_distill.core.schema import Document
from ade_distill.core.text import split_document, split_spans, word_spans


def sents(text):
    return [text[s:e] for s, e in split_spans(text)]


def test_biomedical_abbreviations_stay_inside_their_sentence():
    text = ("Vancomycin 1 g i.v. was given over 15 min, e.g. at 8 a.m. daily. "
            "See Fig. 2 for levels vs. time. Dr. Lee et al. reported rash. "
            "Doses were given p.o. and b.i.d. until discharge. Hypotension occurred.")
    assert sents(text) == [
        "Vancomycin 1 g i.v. was given over 15 min, e.g. at 8 a.m. daily.",
        "See Fig. 2 for levels vs. time.",
        "Dr. Lee et al. reported rash.",
        "Doses were given p.o. and b.i.d. until discharge.",
        "Hypotension occurred.",
    ]


def test_ordinary_sentence_ends_still_split():
    assert sents("Rash developed. Was it the drug? Yes! It resolved.") == [
        "Rash developed.", "Was it the drug?", "Yes!", "It resolved."]


def test_blank_lines_end_sentences_and_titles_stand_alone():
    text = "Title without a period\n\nBACKGROUND: first sentence. Second one.\n  \nHeading"
    assert sents(text) == ["Title without a period", "BACKGROUND: first sentence.",
                           "Second one.", "Heading"]


def test_split_document_keeps_document_offsets():
    doc = Document(id="p1", title="Lithium toxicity.", text="A case. Tremor   developed.\n\nEnd.")
    out = split_document(doc)
    full = doc.full_text
    assert [s.text for s in out] == ["Lithium toxicity.", "A case.", "Tremor   developed.", "End."]
    for s in out:
        assert full[s.doc_offset:s.doc_offset + len(s.text)] == s.text
        assert s.source == "unlabeled" and s.doc_id == "p1"
    assert out[1].id == "p1:s1"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .?!\n\tXi.v,;:()0")), max_size=120))
def test_spans_are_ordered_stripped_and_cover_all_words(text):
    spans = split_spans(text)
    prev_end = 0
    for s, e in spans:
        assert prev_end <= s < e <= len(text)
        chunk = text[s:e]
        assert chunk == chunk.strip() and chunk
        prev_end = e
    covered = "".join(text[s:e] for s, e in spans)
    assert "".join(covered.split()) == "".join(text.split())


def test_word_spans():
    t = "azithromycin-induced ototoxicity."
    assert [t[s:e] for s, e in word_spans(t)] == ["azithromycin", "-", "induced", "ototoxicity", "."]
