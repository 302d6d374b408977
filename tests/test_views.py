"""Teacher views aggregated into one label set, and the corpus-level consistency measure and repair."""

from __future__ import annotations

import pytest

from ade_distill.core.errors import InputError
from ade_distill.core.schema import Entity, Relation, Sentence
from ade_distill.teacher.consistency import CorpusIndex, measure, propagate
from ade_distill.teacher.views import AggregateConfig, RepairConfig, aggregate, combine


def labelled(sid: str, text: str, pairs=(), *, doc: str | None = None, conf: float | None = None) -> Sentence:
    """A teacher-labelled sentence from (drug, effect) strings (first occurrence of each)."""
    ents, rels, ids = [], [], {}
    for drug, effect in pairs:
        for lab, s in (("DRUG", drug), ("ADE", effect)):
            if (lab, s) not in ids:
                a = text.index(s)
                ids[(lab, s)] = f"e{len(ents)}"
                ents.append(Entity(id=ids[(lab, s)], label=lab, start=a, end=a + len(s), text=s, confidence=conf))
        rels.append(Relation(drug=ids[("DRUG", drug)], ade=ids[("ADE", effect)], confidence=conf))
    return Sentence(id=sid, doc_id=doc or sid, text=text, entities=ents, relations=rels, source="teacher:m")


TEXT = "Severe hepatitis developed after isoniazid and rifampin."


def spans(s: Sentence) -> set[tuple[str, str]]:
    return {(e.label, e.text) for e in s.entities}


def test_an_empty_answer_abstains_and_a_vote_keeps_the_boundary_most_views_chose():
    v1 = [labelled("s", TEXT, [("isoniazid", "Severe hepatitis")])]
    v2 = [labelled("s", TEXT, [("isoniazid", "hepatitis"), ("rifampin", "hepatitis")])]
    v3 = [labelled("s", TEXT, [("isoniazid", "hepatitis")])]
    empty = [labelled("s", TEXT)]
    out, stats = aggregate([v1, v2, v3, empty])
    s = out[0]
    assert spans(s) == {("DRUG", "isoniazid"), ("DRUG", "rifampin"), ("ADE", "hepatitis")}
    conf = {e.text: e.confidence for e in s.entities}
    # the empty answer does not count: 3 views; isoniazid 3/3, rifampin 1/3, the ADE cluster 3/3
    assert conf == {"isoniazid": 1.0, "rifampin": pytest.approx(1 / 3, abs=1e-3), "hepatitis": 1.0}
    rel = {(s.entity(r.drug).text, s.entity(r.ade).text): r.confidence for r in s.relations}
    assert rel == {("isoniazid", "hepatitis"): 1.0, ("rifampin", "hepatitis"): pytest.approx(1 / 3, abs=1e-3)}
    assert stats.counted_views == {3: 1}
    # counted as a vote against, the empty answer halves nothing it should not: 4 views
    s4 = aggregate([v1, v2, v3, empty], empty_abstains=False)[0][0]
    assert {e.text: e.confidence for e in s4.entities}["isoniazid"] == 0.75
    # min_support drops what too few views found
    s5 = aggregate([v1, v2, v3], min_support=0.5)[0][0]
    assert spans(s5) == {("DRUG", "isoniazid"), ("ADE", "hepatitis")}
    assert len(s5.relations) == 1


def test_fill_takes_the_first_view_that_found_anything():
    v1 = [labelled("a", TEXT), labelled("b", TEXT, [("rifampin", "hepatitis")])]
    v2 = [labelled("a", TEXT, [("isoniazid", "hepatitis")]), labelled("b", TEXT, [("isoniazid", "hepatitis")])]
    out, _ = aggregate([v1, v2], rule="fill")
    assert spans(out[0]) == {("DRUG", "isoniazid"), ("ADE", "hepatitis")}
    assert spans(out[1]) == {("DRUG", "rifampin"), ("ADE", "hepatitis")}


def test_views_that_disagree_on_a_sentence_text_or_repeat_an_id_are_refused():
    with pytest.raises(InputError, match="disagree"):
        aggregate([[labelled("s", TEXT)], [labelled("s", TEXT + " Later.")]])
    with pytest.raises(InputError, match="twice"):
        aggregate([[labelled("s", TEXT), labelled("s", TEXT)]])


def test_a_view_may_lack_sentences():
    v1 = [labelled("a", TEXT, [("isoniazid", "hepatitis")])]
    v2 = [labelled("b", TEXT, [("rifampin", "hepatitis")])]
    out, stats = aggregate([v1, v2])
    assert [s.id for s in out] == ["a", "b"] and stats.counted_views == {1: 2}


CORPUS = [
    ("Hepatotoxicity due to isoniazid.", [("isoniazid", "Hepatotoxicity")]),
    ("Isoniazid hepatotoxicity was severe.", [("Isoniazid", "hepatotoxicity")]),
    ("We saw hepatotoxicity with ISONIAZID again.", []),  # missed: both strings marked elsewhere
    ("Rash after penicillin; hepatotoxicity after isoniazid-rifampin.", [("penicillin", "Rash")]),
    ("Arthritis was treated with methotrexate.", []),
    ("Methotrexate caused pneumonitis in arthritis.", [("Methotrexate", "pneumonitis")]),
    ("Methotrexate caused arthritis flares.", [("Methotrexate", "arthritis")]),
    ("No arthritis.", []),
]


def corpus() -> list[Sentence]:
    return [labelled(f"s{i}", t, p) for i, (t, p) in enumerate(CORPUS)]


def test_measure_counts_marked_unmarked_and_other_boundary_occurrences_case_and_hyphen_blind():
    c = measure(corpus())
    hep = c.strings[("ADE", ("hepatotoxicity",))]
    assert (hep.occurrences, hep.exact, hep.unmarked) == (4, 2, 2)
    iso = c.strings[("DRUG", ("isoniazid",))]
    assert (iso.occurrences, iso.exact, iso.unmarked) == (4, 2, 2)  # "isoniazid-rifampin" holds a whole-token one
    assert ("ADE", ("arthritis",)) not in c.strings  # marked once: below min_marks
    rows = {r["label"]: r for r in c.rows()}
    assert rows["ADE"]["unmarked"] == 2 and rows["DRUG"]["strings"] == 2
    assert c.empty_answers == 3


def test_propagate_adds_soft_positives_and_links_them_and_leaves_rare_marks_alone():
    out, stats = propagate(corpus(), min_share=0.5)
    s2 = out[2]
    assert spans(s2) == {("DRUG", "ISONIAZID"), ("ADE", "hepatotoxicity")}
    assert all(e.confidence == 0.5 for e in s2.entities)
    assert len(s2.relations) == 1  # a sentence with no relation: every drug x ADE pair
    s3 = out[3]  # had a relation: the added ADE links to nothing (two drugs now), the added drug neither
    assert ("ADE", "hepatotoxicity") in spans(s3) and ("DRUG", "isoniazid") in spans(s3)
    assert len(s3.relations) == 1
    # marked 1 of 4 times: left alone; methotrexate (2 of 3) is added, with no ADE to link to
    assert spans(out[4]) == {("DRUG", "methotrexate")} and not out[4].relations
    assert stats.to_json()["spans_added"] == {"DRUG": 3, "ADE": 2}
    assert out[0] == corpus()[0]  # nothing to add: unchanged


def test_the_index_finds_occurrences_by_their_rarest_token_in_linear_time():
    sents = [labelled(f"x{i}", "the renal failure of the the kidney", []) for i in range(2000)]
    idx = CorpusIndex(sents)
    assert len(idx.occurrences(("the", "renal", "failure"))) == 2000
    assert idx.key(0, 4, 17) == ("renal", "failure") and idx.key(0, 5, 17) is None


def test_combine_aggregates_then_repairs():
    v1 = corpus()
    v2 = [labelled(s.id, s.text) for s in v1]  # a view that found nothing abstains everywhere
    out, stats = combine([v1, v2], AggregateConfig(), RepairConfig(propagate=True, min_share=0.5))
    assert stats["aggregate"]["counted_views"] == {"0": 3, "1": 5}
    assert stats["propagate"]["spans_added"] == {"DRUG": 3, "ADE": 2}
    assert len(out) == len(v1)


def test_drug_mentions_are_completed_from_the_vocabulary_where_the_teacher_left_them_out(tmp_path):
    from ade_distill.teacher.consistency import complete_drugs

    sents = [labelled("v0", "Pneumonitis after methotrexate.", [("methotrexate", "Pneumonitis")]),
             labelled("v1", "Rash in a patient on methotrexate and Zyloprim.", [("Zyloprim", "Rash")]),
             Sentence(id="v2", doc_id="v2", text="Hepatitis developed on methotrexate.", source="teacher:m",
                      entities=[Entity(id="a", label="ADE", start=0, end=9, text="Hepatitis")]),
             labelled("v3", "Alcohol craving on MTX.", [("MTX", "Alcohol craving")]),
             labelled("v4", "Alcohol caused gastritis.", [("Alcohol", "gastritis")]),
             labelled("v5", "Withdrawal: alcohol on baclofen.", [("baclofen", "alcohol")]),
             labelled("v6", "Pancreatitis on baclofen.", [("baclofen", "alcohol")][:0]),
             labelled("v7", "Gastritis after alcohol and baclofen.", [("baclofen", "Gastritis")])]
    sents.append(labelled("v8", "Then alcohol again on baclofen.", [("baclofen", "alcohol")]))
    vocab = {"methotrexate": {"methotrexate", "mtx"}, "allopurinol": {"allopurinol", "zyloprim"},
             "ethanol": {"alcohol", "ethanol"}, "iron": {"fe", "iron"}}
    out, stats = complete_drugs(sents, vocab, confidence=0.5)
    assert out[0] == sents[0]  # marked already: nothing added
    # a drug the teacher left out of a sentence whose relations stand: a soft DRUG, no new relation
    assert ("DRUG", "methotrexate") in spans(out[1]) and len(out[1].relations) == 1
    assert next(e for e in out[1].entities if e.text == "methotrexate").confidence == 0.5
    # an ADE and no pair: the completed drug is linked to it
    assert spans(out[2]) == {("ADE", "Hepatitis"), ("DRUG", "methotrexate")} and len(out[2].relations) == 1
    # inside a teacher span ("Alcohol craving"): left alone; "mtx" is 3 characters: never added
    assert out[3] == sents[3]
    # "alcohol" is marked an ADE twice (v5, v8) and a drug once (v4): not added where it was left out (v7)
    assert out[7] == sents[7]
    assert stats.to_json()["spans_added"] == {"DRUG": 2} and stats.relations_added == 1
    # through combine, from a DrugBank vocabulary file (brands from Drugs@FDA would sit beside it)
    (tmp_path / "drugbank_vocabulary.csv").write_text(
        "DrugBank ID,Common name,UNII,Synonyms\nDB00563,Methotrexate,YL5FZ2Y5U1,Amethopterin | MTX\n")
    out2, st = combine([sents], repair=RepairConfig(drug_vocab=str(tmp_path)))
    assert st["drug_vocab"]["spans_added"] == {"DRUG": 2} and out2[2] == out[2]
