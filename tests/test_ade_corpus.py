import pytest

from ade_distill.ingest import InputError, ingest_ade_corpus, ingest_ade_splits
from ade_distill.ingest.ade_corpus import AdeCorpusStats
from ade_distill.core.schema import read_sentences, write_jsonl

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def corpus(shared_data):
    stats = AdeCorpusStats()
    sents = list(ingest_ade_corpus(shared_data / "ade_corpus_v2", stats=stats, doses=True))
    return sents, stats


def test_counts_match_the_release(corpus):
    sents, stats = corpus
    pos = [s for s in sents if not s.meta.get("negative")]
    assert len(pos) == stats.positive_sentences == 4272
    assert sum(len(s.relations) for s in pos) == stats.relations == 6821
    assert stats.entities == {"DRUG": 5063, "ADE": 5776}  # = SpERT's deduplicated entity counts
    assert stats.negative_sentences == 16688 and stats.negative_duplicates == 7
    assert len(stats.pmids) == 2972
    assert stats.doses == 279
    assert len(stats.problems) == 0
    assert len({s.id for s in sents}) == len(sents)


def test_every_record_passes_the_reader_offset_check(corpus, tmp_path):
    sents, _ = corpus
    out = tmp_path / "ade.jsonl"
    write_jsonl(out, sents)
    back = list(read_sentences(out))
    assert len(back) == len(sents)
    assert all(e.text == s.text[e.start:e.end] for s in back for e in s.entities)


def test_first_line_worked_example(corpus):
    s = corpus[0][0]
    assert (s.id, s.doc_id, s.doc_offset) == ("ADE-0", "10030778", 10)
    assert {(e.label, e.start, e.end, e.text) for e in s.entities} == {
        ("ADE", 33, 44, "ototoxicity"), ("DRUG", 12, 24, "azithromycin")}


def test_repeated_strings_use_the_annotated_occurrence(corpus):
    # str.find would pick the first occurrence for hundreds of spans; offsets must decide.
    sents, _ = corpus
    later = [(s, e) for s in sents for e in s.entities if s.text.find(e.text) != e.start]
    assert len(later) == 248  # distinct entities (344 spans counted per relation line); the README quotes it
    assert all(s.text[e.start:e.end] == e.text for s, e in later)


def test_nested_drug_inside_ade(corpus):
    sents, _ = corpus
    s = next(s for s in sents if s.doc_id == "10586009" and s.text.startswith("Codeine intoxication"))
    ade = next(e for e in s.entities if e.label == "ADE")
    drug = next(e for e in s.entities if e.label == "DRUG")
    assert (ade.text, drug.text) == ("Codeine intoxication", "Codeine")
    assert ade.start <= drug.start < drug.end <= ade.end


def test_fold0_test_matches_raw_corpus(shared_data, corpus):
    by_id = {s.id: s for s in corpus[0]}
    fold = list(ingest_ade_splits(shared_data / "ade_splits", 0, "test"))
    assert len(fold) == 427
    assert sum(len(s.relations) for s in fold) == 666
    for s in fold:
        raw = by_id[s.id]
        assert (s.text, s.doc_id, s.doc_offset) == (raw.text, raw.doc_id, raw.doc_offset)
        spans = lambda x: {(e.label, e.start, e.end, e.text) for e in x.entities}  # noqa: E731
        assert spans(s) == spans(raw)
        rel = lambda x: {(x.entity(r.drug).start, x.entity(r.ade).start, x.entity(r.ade).end)  # noqa: E731
                         for r in x.relations}
        assert rel(s) == rel(raw)


def test_folds_partition_full(shared_data):
    src = shared_data / "ade_splits"
    full = list(ingest_ade_splits(src, None))
    assert len(full) == 4272 and sum(len(s.entities) for s in full) == 10839
    train = {s.id for s in ingest_ade_splits(src, 9, "train")}
    test = {s.id for s in ingest_ade_splits(src, 9, "test")}
    assert (len(train), len(test)) == (3843, 429) and not train & test


def test_splits_without_raw_corpus_rebuild_text_from_tokens(shared_data, tmp_path):
    sents = list(ingest_ade_splits(shared_data / "ade_splits", 0, "test", corpus=tmp_path))
    assert len(sents) == 427
    s = next(x for x in sents if x.id == "ADE-0") if any(x.id == "ADE-0" for x in sents) else sents[0]
    assert s.doc_offset is None and all(e.text == s.text[e.start:e.end] for e in s.entities)


def test_missing_folder_and_bad_part(tmp_path, shared_data):
    with pytest.raises(InputError, match="ADE corpus folder not found"):
        list(ingest_ade_corpus(tmp_path / "nope"))
    with pytest.raises(InputError, match="part must be"):
        list(ingest_ade_splits(shared_data / "ade_splits", 0, "dev"))
