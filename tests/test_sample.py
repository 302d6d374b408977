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


def test_the_demo_training_text_is_teacher_labelled_synthetic_text_that_copies_no_sample_sentence(sample_dir):
    """data/sample/synthetic.jsonl (scripts/demo_training_text.py): sentences a local LLM wrote,
    labelled by the demo's own teacher (never gold), none a near-copy of a sample sentence."""
    from ade_distill.teacher.synthesis import NearDuplicates

    pool = list(read_sentences(sample_dir / "synthetic.jsonl"))
    assert len(pool) >= 100
    assert len({s.id for s in pool}) == len(pool)
    assert all(s.source.startswith("synthetic:") and s.meta["synthetic"] for s in pool)
    assert {s.meta["labels"] for s in pool} == {"teacher:qwen2.5-coder-0.5b-instruct-q4_k_m"}
    assert sum(bool(s.relations) for s in pool) >= len(pool) // 2
    dups = NearDuplicates(0.5)
    for s in read_sentences(sample_dir / "gold.jsonl"):
        dups.add(s.id, s.text)
    for p in sorted((sample_dir / "documents").glob("*.txt")):
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                dups.add(f"{p.stem}-{i}", line)
    near = [(s.id, dups.nearest(s.text)) for s in pool]
    assert not [x for x in near if x[1][0] is not None], near
