"""The ADE readers on small hand-made files: always run, no shared data needed."""

from ade_distill.ingest import Problems, ingest_ade_corpus, ingest_ade_splits
from ade_distill.ingest.ade_corpus import AdeCorpusStats


def test_bad_lines_are_reported_and_skipped(tmp_path):
    (tmp_path / "DRUG-AE.rel").write_text(
        "1|Aspirin caused rash and aspirin caused ulcer.|ulcer|50|55|aspirin|35|42\n"
        "1|broken line with too few fields|x|1\n"
        "2|Bad offsets here.|Bad|x|y|here|1|2\n"
        "3|Drug X gave rash.|rash|12|16|Drug X|0|6\n")
    (tmp_path / "ADE-NEG.txt").write_text("4 NEG Nothing here.\n4 NEG Nothing here.\nbad\n")
    stats = AdeCorpusStats()
    sents = list(ingest_ade_corpus(tmp_path, stats=stats))
    assert [s.id for s in sents] == ["ADE-0", "ADE-1", "ADE-NEG-0"]
    s0 = sents[0]
    # the second 'aspirin' (doc offset 35 - shift 11 = 24), not the first
    assert {(e.label, e.start, e.text) for e in s0.entities} == {("ADE", 39, "ulcer"), ("DRUG", 24, "aspirin")}
    # 'Drug X' at doc offset 0 is sentence offset 0 when no shift is needed
    assert sents[1].doc_offset == 0
    assert len(stats.problems) == 3
    msgs = " ".join(stats.problems.messages)
    assert "DRUG-AE.rel:2: expected 8" in msgs and "DRUG-AE.rel:3: PMID 2" in msgs and "ADE-NEG.txt:3" in msgs
    assert stats.negative_duplicates == 1


def test_split_record_that_does_not_align_is_reported(tmp_path):
    corpus = tmp_path / "ade_corpus_v2"
    corpus.mkdir()
    (corpus / "DRUG-AE.rel").write_text("7|Drug-X induced rash.|rash|15|19|Drug-X|0|6\n")
    splits = tmp_path / "ade_splits"
    splits.mkdir()
    (splits / "ade_split_0_test.json").write_text(
        '[{"tokens": ["Drug", "-", "X", "induced", "rash", "."], "entities": ['
        '{"type": "Adverse-Effect", "start": 4, "end": 5}, {"type": "Drug", "start": 0, "end": 3}],'
        ' "relations": [{"type": "Adverse-Effect", "head": 0, "tail": 1}], "orig_id": 0},'
        ' {"tokens": ["other"], "entities": [], "relations": [], "orig_id": 0},'
        ' {"tokens": ["x"], "entities": [{"type": "Weird", "start": 0, "end": 1}], "relations": [], "orig_id": 5}]')
    problems = Problems()
    out = list(ingest_ade_splits(splits, 0, "test", problems=problems))
    assert len(out) == 1
    s = out[0]
    assert {(e.label, e.text) for e in s.entities} == {("ADE", "rash"), ("DRUG", "Drug-X")}
    assert s.entity(s.relations[0].drug).text == "Drug-X"
    assert len(problems) == 2
    assert "record 1 (orig_id 0): tokens do not align" in problems.messages[0]
    assert "record 2 (orig_id 5): orig_id 5 is not in" in problems.messages[1]


def test_in_domain_negatives_leave_out_the_excluded_documents_and_shuffle_reproducibly(tmp_path):
    from ade_distill.ingest.ade_corpus import in_domain_negatives

    (tmp_path / "DRUG-AE.rel").write_text("1|Drug X gave rash.|rash|12|16|Drug X|0|6\n")
    (tmp_path / "ADE-NEG.txt").write_text("".join(f"{doc} NEG Sentence {i} here.\n"
                                                  for i, doc in enumerate([2, 2, 3, 4, 4, 5, 6, 7])))
    neg = in_domain_negatives(tmp_path, {"3", "4"}, seed=0)
    assert sorted(s.text for s in neg) == [f"Sentence {i} here." for i in (0, 1, 5, 6, 7)]  # never a positive one
    assert all(s.source == "unlabeled" and not s.entities and s.doc_id not in {"3", "4"} for s in neg)
    assert [s.id for s in neg] == [s.id for s in in_domain_negatives(tmp_path, {"3", "4"}, seed=0)]
    orders = {tuple(s.id for s in in_domain_negatives(tmp_path, set(), seed=k)) for k in range(5)}
    assert len(orders) > 1  # the seed shuffles
