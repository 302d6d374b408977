"""Teacher-written training sentences: seeds without corpus text, the three checks (grounded spans,
near-duplicates, the teacher's re-read), resume without new calls, and the run record."""

from __future__ import annotations

import json
import re

import pytest

from ade_distill.core.errors import InputError
from ade_distill.core.schema import Entity, Relation, Sentence, read_sentences, write_jsonl
from ade_distill.teacher import TeacherConfig
from ade_distill.teacher.synthesis import SYNTH_SYSTEM, NearDuplicates, make_seeds, style_of
from ade_distill.workflows.synthesize import synthesize
from tests.fake_openai import FakeOpenAI

pytest.importorskip("datasketch")


@pytest.fixture
def corpus(sample_dir):
    """The sample's sentences as if a teacher had labelled them (a distilled student's corpus)."""
    return [s.model_copy(update={"source": "teacher:fake-gpt"}) for s in read_sentences(sample_dir / "gold.jsonl")]


def teacher(tmp_path, base_url) -> TeacherConfig:
    return TeacherConfig(backend="openai", model="fake-gpt", base_url=base_url, api_key_env="ADE_TEST_KEY",
                         cache=str(tmp_path / "cache.sqlite"), retry_base_s=0.0, confidence="none")


class Writer:
    """The stand-in teacher: writes a sentence from the seed's drugs and effects; re-reads a
    sentence by the pairs it wrote. Seed k's fate is chosen by k % 5: 0-1 fine, 2 an effect
    that is not in the sentence, 3 a copy of a corpus sentence, 4 a re-read that misses a pair."""

    def __init__(self, corpus_text: str) -> None:
        self.written: dict[str, list[tuple[str, str]]] = {}
        self.corpus_text = corpus_text
        self.calls = 0
        self.generated = 0

    def __call__(self, body: dict) -> str:
        self.calls += 1
        msgs = body["messages"]
        if msgs[0]["content"] == SYNTH_SYSTEM:
            user = msgs[-1]["content"]
            drugs = re.search(r"^Drugs?: (.*)$", user, re.M)[1].split("; ")
            effects = re.search(r"^Adverse effects?: (.*)$", user, re.M)[1].split("; ")
            k = self.generated
            self.generated += 1
            fate = k % 5
            text = (f"Patient {k} developed {' and '.join(effects)} after receiving {' with '.join(drugs)} "
                    f"for an unrelated condition number {k}.")
            pairs = [(d, e) for d in drugs for e in effects]
            if fate == 2:
                pairs = [(drugs[0], "a reaction nobody wrote")]
            if fate == 3:
                text = self.corpus_text
            self.written[text] = pairs[:-1] if fate == 4 and len(pairs) > 1 else (pairs if fate != 4 else [])
            return json.dumps({"sentence": text, "ades": [{"drug": d, "effect": e} for d, e in pairs]})
        sentence = msgs[-1]["content"].removeprefix("Sentence: ")
        return json.dumps({"ades": [{"drug": d, "effect": e} for d, e in self.written.get(sentence, [])]})


def test_seeds_carry_names_and_style_never_corpus_text(corpus):
    seeds = make_seeds(corpus, 40, seed=3)
    assert seeds == make_seeds(corpus, 40, seed=3)  # deterministic: a resumed run tries the same seeds
    drugs = {e.text.lower() for s in corpus for e in s.entities if e.label == "DRUG"}
    assert all(d.lower() in drugs for sd in seeds for d in sd.drugs)
    for sd in seeds:
        prompt = sd.instruction()
        assert not any(s.text in prompt for s in corpus)
        assert f"about {sd.words} words" in prompt
    words, cues = style_of("A 62-year-old woman developed carbamazepine-induced hyponatremia after 200 mg daily.")
    assert {"patient", "hyphen", "dose", "timing"} <= set(cues) and words == 10


def test_near_duplicates_are_found_and_distinct_sentences_are_not():
    nd = NearDuplicates(0.5)
    nd.add("c:1", "A 62-year-old woman developed severe hyponatremia two weeks after starting sertraline.")
    key, score = nd.nearest("A 62-year-old woman developed severe hyponatremia two weeks after starting sertraline .")
    assert key == "c:1" and score > 0.9
    assert nd.nearest("Amiodarone toxicity presented as interstitial pneumonitis in an elderly man.") == (None, 0.0)


def test_synthesize_keeps_only_checked_sentences_and_resumes(tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("ADE_TEST_KEY", "sk-test-secret-0123456789")
    writer = Writer(corpus[0].text)
    out = tmp_path / "synthetic.jsonl"
    with FakeOpenAI(writer) as srv:
        r = synthesize(corpus, out, teacher(tmp_path, srv.base_url), n=4, max_tries=3, answer="json", progress=False)
        kept = list(read_sentences(out))
        assert r.stats.total_kept == len(kept) == 4
        assert all(s.source == "synthetic:fake-gpt" and s.meta["synthetic"] for s in kept)
        for s in kept:  # every span lies in the sentence
            assert s.relations and all(s.text[e.start:e.end] == e.text for e in s.entities)
        rejected = [json.loads(x) for x in out.with_name("synthetic.rejected.jsonl").read_text().splitlines()]
        reasons = {x["reason"] for x in rejected}
        assert reasons == {"a written span is not in the sentence", "near-duplicate of a corpus sentence",
                           "the teacher's re-read disagrees"}
        assert all(int(s.id.split("-")[1]) % 5 in (0, 1) for s in kept)
        run = json.loads(out.with_name("synthetic.run.json").read_text())
        assert run["diversity"]["sentences"] == 4 and run["diversity"]["distinct_drugs"] >= 1
        assert "sk-test-secret" not in out.with_name("synthetic.run.json").read_text()
        # a rerun with the same settings asks nothing new; a larger n goes on from the next seed
        calls = writer.calls
        r2 = synthesize(corpus, out, teacher(tmp_path, srv.base_url), n=4, max_tries=3, answer="json", progress=False)
        assert writer.calls == calls and r2.stats.kept == 0 and r2.stats.total_kept == 4
        r3 = synthesize(corpus, out, teacher(tmp_path, srv.base_url), n=6, max_tries=3, answer="json", progress=False)
        assert r3.stats.total_kept == 6 and [s.id for s in read_sentences(out)][:4] == [s.id for s in kept]


def test_synthesize_refuses_gold_seeds(tmp_path, sample_dir):
    gold = tmp_path / "gold.jsonl"
    write_jsonl(gold, read_sentences(sample_dir / "gold.jsonl"))
    with pytest.raises(InputError, match="gold"):
        synthesize(gold, tmp_path / "s.jsonl", TeacherConfig(backend="openai", model="x", base_url="http://127.0.0.1:9/v1"),
                   n=1, progress=False)


def test_a_paragraph_is_not_one_sentence():
    from ade_distill.teacher.synthesis import Seed, Synthesizer

    seed = Seed(0, ("gemfibrozil",), ("eosinophilic gastroenteritis",), 20, ())
    syn = Synthesizer(teacher=None)  # the checks before the re-read need no teacher
    text = ("A man took gemfibrozil for his lipids. He developed eosinophilic gastroenteritis four days later and "
            "recovered.")
    rec, reason, _ = syn.check(seed, text, [("gemfibrozil", "eosinophilic gastroenteritis")], NearDuplicates())
    assert rec is None and reason.startswith("not one sentence")


def test_a_paragraph_whose_first_sentence_holds_every_pair_keeps_that_sentence(tmp_path, monkeypatch):
    """The small teacher goes on after its sentence; the first sentence is kept when it names every
    written pair, and a row rejected by the older check is tried again on resume (from the cache)."""
    from ade_distill.teacher.synthesis import LENGTH_REASON, Seed, Synthesizer, first_sentence

    pairs = [("gemfibrozil", "eosinophilic gastroenteritis")]
    text = ("A 61-year-old man developed eosinophilic gastroenteritis four days after starting gemfibrozil. "
            "He was referred for further evaluation and recovered.")
    assert first_sentence(text, pairs) == (text.split(". ")[0] + ".", True)
    assert first_sentence(text, [("gemfibrozil", "recovered")]) == (text, False)
    seed = Seed(0, ("gemfibrozil",), ("eosinophilic gastroenteritis",), 15, ())
    rec, reason, _ = Synthesizer(teacher=None).check(seed, text + " " + text, [("x", "y")], NearDuplicates())
    assert reason == LENGTH_REASON

    monkeypatch.setenv("ADE_TEST_KEY", "sk-test-secret-0123456789")
    # the one-sentence corpus below seeds (Amiodarone, pneumonitis)
    pairs = [("Amiodarone", "pneumonitis")]
    text = ("A 70-year-old man developed pneumonitis six weeks after starting Amiodarone. He was referred for "
            "further evaluation and recovered.")
    first = text.split(". ")[0] + "."

    def answer(body):
        if body["messages"][0]["content"] == SYNTH_SYSTEM:
            return json.dumps({"sentence": text, "ades": [{"drug": d, "effect": e} for d, e in pairs]})
        said = body["messages"][-1]["content"].removeprefix("Sentence: ")
        return json.dumps({"ades": [{"drug": d, "effect": e} for d, e in pairs] if said == first else []})

    corpus = [Sentence(id="c1", doc_id="c1", text="Amiodarone caused pneumonitis in an elderly man.",
                       entities=[Entity(id="T1", label="DRUG", start=0, end=10, text="Amiodarone"),
                                 Entity(id="T2", label="ADE", start=18, end=29, text="pneumonitis")],
                       relations=[Relation(drug="T1", ade="T2")], source="teacher:fake-gpt")]
    out = tmp_path / "synthetic.jsonl"
    # the older check's verdict on seed 0, as a run before this check would have left it
    out.with_name("synthetic.rejected.jsonl").write_text(json.dumps({"index": 0, "reason": LENGTH_REASON,
                                                                     "text": text}) + "\n")
    with FakeOpenAI(answer) as srv:
        synthesize(corpus, out, teacher(tmp_path, srv.base_url), n=1, max_tries=1, answer="json", progress=False)
    kept = list(read_sentences(out))
    assert [s.text for s in kept] == [first] and kept[0].meta["trimmed"]
    assert out.with_name("synthetic.rejected.jsonl").read_text() == ""


def test_a_plain_answer_is_labelled_with_its_seed_pairs(tmp_path, corpus, monkeypatch):
    """answer: plain: the teacher writes the sentence alone; its labels are the seed's pairs, kept only
    where each is in the sentence and the re-read finds exactly them."""
    from ade_distill.teacher.synthesis import SYNTH_PLAIN_VERSION, SYNTH_SYSTEM_PLAIN

    monkeypatch.setenv("ADE_TEST_KEY", "sk-test-secret-0123456789")
    said: dict[str, list] = {}
    k = iter(range(10**6))

    def answer(body):
        msgs = body["messages"]
        if msgs[0]["content"] == SYNTH_SYSTEM_PLAIN:
            assert "response_format" not in body or body["response_format"].get("type") != "json_object"
            user = msgs[-1]["content"]
            drugs = re.search(r"^Drugs?: (.*)$", user, re.M)[1].split("; ")
            effects = re.search(r"^Adverse effects?: (.*)$", user, re.M)[1].split("; ")
            i = next(k)
            # every other answer renames the effect: not the seed's words, so not kept
            named = effects if i % 2 == 0 else ["an unexpected reaction"]
            text = f"Patient {i} developed {' and '.join(named)} after {' with '.join(drugs)} for condition {i}."
            said[text] = [(d, e) for d in drugs for e in effects]
            return f'Sentence: "{text}"\n\nThis sentence reports the requested ADE.'
        sentence = msgs[-1]["content"].removeprefix("Sentence: ")
        return json.dumps({"ades": [{"drug": d, "effect": e} for d, e in said.get(sentence, [])]})

    out = tmp_path / "plain.jsonl"
    with FakeOpenAI(answer) as srv:
        r = synthesize(corpus, out, teacher(tmp_path, srv.base_url), n=3, max_tries=3, answer="plain", progress=False)
    kept = list(read_sentences(out))
    assert r.stats.total_kept == len(kept) == 3
    for s in kept:
        seed = s.meta["seed"]
        assert s.meta["prompt_version"] == SYNTH_PLAIN_VERSION and s.text.startswith("Patient ")
        pairs = {(s.entity(x.drug).text.lower(), s.entity(x.ade).text.lower()) for x in s.relations}
        assert pairs == {(d.lower(), e.lower()) for d in seed["drugs"] for e in seed["effects"]}
    reasons = {json.loads(x)["reason"] for x in out.with_name("plain.rejected.jsonl").read_text().splitlines()}
    assert reasons == {"a written span is not in the sentence"}
    assert json.loads(out.with_name("plain.run.json").read_text())["settings"]["answer"] == "plain"
    with pytest.raises(Exception, match="answer must be one of"):
        synthesize(corpus, out, teacher(tmp_path, "http://127.0.0.1:9/v1"), n=3, answer="yaml", progress=False)


def test_excluded_text_is_never_nearly_copied(tmp_path, corpus):
    """--exclude (e.g. the test parts): a generated sentence that copies one is dropped, though it is
    not in the seed corpus."""
    writer = Writer(corpus[0].text)
    out = tmp_path / "synthetic.jsonl"
    with FakeOpenAI(writer) as srv:
        synthesize(corpus[1:], out, teacher(tmp_path, srv.base_url), n=3, max_tries=3, exclude=corpus[:1],
                   answer="json", progress=False)
    rejected = [json.loads(x) for x in out.with_name("synthetic.rejected.jsonl").read_text().splitlines()]
    assert any(r["reason"].startswith("near-duplicate") and r["near"] == corpus[0].id for r in rejected)


def test_a_near_copy_of_the_corpus_is_not_kept_anywhere(tmp_path, corpus):
    writer = Writer(corpus[0].text)
    out = tmp_path / "synthetic.jsonl"
    with FakeOpenAI(writer) as srv:
        synthesize(corpus, out, teacher(tmp_path, srv.base_url), n=3, max_tries=3, answer="json", progress=False)
    rejected = out.with_name("synthetic.rejected.jsonl").read_text()
    assert "near-duplicate" in rejected and corpus[0].text not in rejected
