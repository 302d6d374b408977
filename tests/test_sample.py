import pytest

from ade_distill.core.sample import parse_markup, read_markup
from ade_distill.core.schema import read_sentences


def test_committed_gold_matches_its_markup(sample_dir):
    assert list(read_sentences(sample_dir / "gold.jsonl")) == list(read_markup(sample_dir / "gold.tsv"))


def test_sample_covers_the_hard_cases(sample_dir):
    sents = list(read_sentences(sample_dir / "gold.jsonl"))
    assert len(sents) == 51  # the README quotes these counts
    assert sum(not s.relations for s in sents) >= 10  # negatives
    assert any(len({r.drug for r in s.relations}) >= 2 for s in sents)  # multi-drug
    assert any(a.start <= b.start and b.end <= a.end and a is not b
               for s in sents for a in s.entities for b in s.entities)  # nested spans
    texts = {}
    for s in sents:
        for e in s.entities:
            texts.setdefault((s.id, e.text.lower()), []).append(e)
    assert any(len(v) > 1 for v in texts.values())  # a repeated mention
    by_doc: dict[str, list] = {}
    for s in sents:
        by_doc.setdefault(s.doc_id, []).append(s)
    assert len(by_doc) == 24
    for doc_id, ss in by_doc.items():  # doc offsets: in order, never overlapping, inside each document
        ss.sort(key=lambda s: s.doc_offset)
        assert ss[0].doc_offset >= 0
        for a, b in zip(ss, ss[1:]):
            assert b.doc_offset >= a.doc_offset + len(a.text), (doc_id, a.id, b.id)


def test_markup_errors():
    assert parse_markup("<d1>A</d1> <a1>b <d2>c</d2></a1>") == (
        "A b c", {"d1": ("DRUG", 0, 1), "d2": ("DRUG", 4, 5), "a1": ("ADE", 2, 5)})
    with pytest.raises(ValueError, match="unclosed"):
        parse_markup("<d1>x")
    with pytest.raises(ValueError, match="without an opening"):
        parse_markup("x</a1>")
