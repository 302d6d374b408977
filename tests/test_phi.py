"""The PHI guard: identifiers redacted with typed placeholders before a remote teacher sees a
sentence, the teacher's spans mapped back, drug and reaction words kept, nothing identifying in any
file a run writes; the policy and its default; the Batch API file."""

from __future__ import annotations

import json
import logging

import pytest

pytest.importorskip("presidio_analyzer", reason="the PHI guard needs Presidio (extra phi)")

from ade_distill.cli import main  # noqa: E402
from ade_distill.core.schema import Entity, Relation, Sentence, read_sentences, write_jsonl  # noqa: E402
from ade_distill.teacher.phi import (PhiGuard, allow_list, is_remote, resolve_policy)  # noqa: E402
from ade_distill.teacher.settings import TeacherConfig  # noqa: E402
from tests.fake_openai import FakeOpenAI, non_loopback_address  # noqa: E402

PLANTED = ["John Smith", "00123456", "221 Baker Street", "03/12/2019", "617-555-0199", "jsmith@mail.com",
           "Maria Garcia", "Springfield, IL 62704", "93-year-old"]
NOTES = [
    ("Patient John Smith (MRN 00123456), seen at 221 Baker Street on 03/12/2019, developed Stevens-Johnson "
     "syndrome after lamotrigine; call 617-555-0199 or jsmith@mail.com.", "lamotrigine", "Stevens-Johnson syndrome"),
    ("Maria Garcia of Springfield, IL 62704, a 93-year-old woman, developed Parkinson's disease after "
     "metoclopramide.", "metoclopramide", "Parkinson's disease"),
    ("Hepatitis developed after isoniazid.", "isoniazid", "Hepatitis"),
]


@pytest.fixture(scope="module")
def guard():
    return PhiGuard(allow=allow_list())


def note(k: int) -> Sentence:
    text, drug, effect = NOTES[k]
    d, a = text.index(drug), text.index(effect)
    return Sentence(id=f"n{k}", doc_id=f"note-{k}", text=text, source="gold", meta={"doc_source": "text"},
                    entities=[Entity(id="d", label="DRUG", start=d, end=d + len(drug), text=drug),
                              Entity(id="a", label="ADE", start=a, end=a + len(effect), text=effect)],
                    relations=[Relation(drug="d", ade="a")])


def test_identifiers_become_typed_placeholders_and_spans_map_back(guard):
    red = guard.redact(NOTES[0][0])
    for value in PLANTED[:6]:
        assert value not in red.text
    assert "[NAME_1]" in red.text and "[PHONE_1]" in red.text and "[EMAIL_1]" in red.text and "[MRN_1]" in red.text
    assert "Stevens-Johnson syndrome" in red.text and "lamotrigine" in red.text  # an eponym and a drug survive
    # a span after the placeholders maps back to the same words in the original
    a = red.text.index("lamotrigine")
    s, e = red.to_original(a, a + len("lamotrigine"))
    assert NOTES[0][0][s:e] == "lamotrigine"
    # a span that touches a placeholder covers the whole identifier
    p = red.text.index("[NAME_1]")
    s, e = red.to_original(p + 1, p + 4)
    assert NOTES[0][0][s:e] == "John Smith"
    red2 = guard.redact(NOTES[1][0])
    assert "Maria Garcia" not in red2.text and "62704" not in red2.text and "93-year" not in red2.text
    assert "Parkinson's disease" in red2.text
    clean = guard.redact(NOTES[2][0])
    assert clean.text == NOTES[2][0] and not clean.pieces


def test_surrogates_read_as_plain_text_and_map_back_the_same_way(guard):
    """placeholders: surrogate: invented values of the same type in place of "[NAME_1]"; the same
    detections, and spans map back to the original identifiers."""
    sur = PhiGuard(allow=allow_list(), placeholders="surrogate")
    sur.analyzer = guard.analyzer  # the same detector (loading spaCy twice costs seconds)
    red, typed = sur.redact(NOTES[0][0]), guard.redact(NOTES[0][0])
    assert [p[2:] for p in red.pieces] == [p[2:] for p in typed.pieces]  # same identifiers, same types
    assert "[" not in red.text and "Alex Morgan" in red.text
    for value in PLANTED[:6]:
        assert value not in red.text
    p = red.text.index("Alex Morgan")
    s, e = red.to_original(p, p + len("Alex Morgan"))
    assert NOTES[0][0][s:e] == "John Smith"
    a = red.text.index("lamotrigine")
    assert NOTES[0][0][slice(*red.to_original(a, a + len("lamotrigine")))] == "lamotrigine"
    with pytest.raises(ValueError):
        PhiGuard(placeholders="random")


def test_realistic_stand_ins_share_nothing_with_the_values_they_replace(guard):
    """placeholders: realistic: the same detections, a stand-in of the same kind per distinct value (a
    name said twice is one stand-in), no word or digit run of the original in it, the same stand-ins on
    every run (the cache), and spans map back."""
    import re

    real = PhiGuard(allow=allow_list(), placeholders="realistic")
    real.analyzer = guard.analyzer
    text = NOTES[1][0] + " Maria Garcia recovered."
    for t in (NOTES[0][0], text):
        red, typed = real.redact(t), guard.redact(t)
        assert [p[2:] for p in red.pieces] == [p[2:] for p in typed.pieces]
        assert "[" not in red.text and real.redact(t).text == red.text
        for a, b, oa, ob, _ in red.pieces:
            orig = {w.lower() for w in re.findall(r"[A-Za-z]{3,}|\d{3,}", t[oa:ob])} - {"mrn", "mail", "com"}
            assert not orig & {w.lower() for w in re.findall(r"[A-Za-z]{3,}|\d{3,}", red.text)}, (t[oa:ob], red.text)
    red = real.redact(text)
    names = [red.text[a:b] for a, b, _, _, kind in red.pieces if kind == "NAME"]
    assert len(names) == 2 and names[0] == names[1]
    a = red.text.index("metoclopramide")
    assert text[slice(*red.to_original(a, a + len("metoclopramide")))] == "metoclopramide"
    assert text[slice(*red.to_original(0, len(names[0])))] == "Maria Garcia"


def test_a_patient_named_like_an_eponym_is_still_redacted(guard):
    red = guard.redact("Mr. Wilson developed hepatitis; Dr. Bell reported it.")
    assert "Wilson" not in red.text and "Bell" not in red.text
    assert "Wilson's disease" in guard.redact("Wilson's disease worsened on penicillamine.").text


def test_a_name_or_street_holding_a_drug_or_reaction_word_is_redacted_whole(guard):
    """"Heather" is a contraceptive's brand and "Timothy" a pollen extract in the drug vocabulary, "Fall"
    a reaction term: inside a person's full name or a street they are the identifier, and no piece of
    it may reach the teacher; alone, as the drug, they stay."""
    g = PhiGuard(allow=guard.allow | {"heather", "timothy", "fall"})  # as the DrugBank vocabulary and MedDRA give them
    g.analyzer = guard.analyzer
    for text, pieces in [("Patient Heather Smith (MRN 12345678), seen on 03/12/2019: rash after lamotrigine.",
                          ["Heather", "Smith"]),
                         ("Follow-up of Timothy Lopez on 03/12/2019: myelosuppression resolved.", ["Timothy", "Lopez"])]:
        red = g.redact(text)
        for p in pieces:
            assert p not in red.text, red.text
    assert "Heather" in g.redact("Breakthrough bleeding occurred on Heather tablets.").text
    # an address's unit is part of the address: no "823" left after the placeholder
    for text in ("Seen at 58469 Brian Mountains Suite 823, Lake Johnview, VA 80011, with rash.",
                 "Patient Ann Lee, seen at 9727 Amber Crossing Apt. 169 on 03/12/2019, developed rash."):
        red = g.redact(text)
        for p in ("58469", "9727", "823", "169", "Mountains", "Crossing", "Suite", "Apt"):
            assert p not in red.text, red.text
    red = g.redact("Seen at 412 Jones Fall, Port Carl, NY 44500, after a fall on oxycodone.")
    assert "412" not in red.text and "Jones" not in red.text and "Fall," not in red.text and "a fall on" in red.text

def test_a_time_to_onset_is_kept_and_a_calendar_date_is_not(guard):
    text = ("A 62-year-old woman developed severe hyponatremia two weeks after starting sertraline on "
            "March 3, 2019; 3 days later it resolved.")
    r = guard.redact(text)
    assert "two weeks after" in r.text and "3 days later" in r.text  # the time to onset is not an identifier
    assert "March 3" not in r.text and "2019" not in r.text and r.found["DATE"] == 1
    for plain in ("See Fig. 2 for the blood counts over time.",
                  "Neuroleptic malignant syndrome after haloperidol i.v. was treated with dantrolene.",
                  "She developed tendon rupture of the left Achilles tendon while on levofloxacin."):
        assert guard.redact(plain).text == plain


def test_policy_default_is_redact_for_a_remote_teacher_on_clinical_text():
    assert is_remote(None, "openai") and is_remote("https://api.example.org/v1", "openai")
    assert not is_remote("http://127.0.0.1:8000/v1", "openai") and not is_remote("http://localhost:1/v1", "openai")
    assert not is_remote("http://[::1]:8000/v1", "openai") and not is_remote(None, "local-server")
    clinical = [note(0)]
    pubmed = [note(0).model_copy(update={"meta": {"pmid": "123"}})]
    remote = TeacherConfig(backend="openai", base_url="https://api.example.org/v1")
    assert resolve_policy(remote, clinical) == "redact" and resolve_policy(remote, pubmed) == "off"
    assert resolve_policy(remote.model_copy(update={"phi": "block"}), pubmed) == "block"
    assert resolve_policy(TeacherConfig(backend="local-server"), clinical) == "off"


def _answers(guard) -> dict[str, str]:
    """The stand-in's answers, keyed by the sentence it will receive (redacted)."""
    return {guard.redact(t).text: json.dumps({"ades": [{"drug": d, "effect": e}]}) for t, d, e in NOTES}


def _files(folder) -> str:
    out = []
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name != "notes.jsonl" and not f.name.endswith(".labels.jsonl"):
            out.append(f.read_bytes().decode("utf-8", "replace"))
    return "\n".join(out)


def test_a_remote_teacher_receives_no_identifier_and_no_run_file_holds_one(guard, tmp_path, monkeypatch, caplog,
                                                                           capsys):
    host = non_loopback_address()
    if host is None:
        pytest.skip("no non-loopback address to stand for a remote API")
    monkeypatch.setenv("PHI_TEST_KEY", "sk-test")
    write_jsonl(tmp_path / "notes.jsonl", [note(k) for k in range(len(NOTES))])
    with FakeOpenAI(_answers(guard), host=host) as srv:
        (tmp_path / "t.yaml").write_text(f"backend: openai\nmodel: gpt-x\nbase_url: {srv.base_url}\n"
                                         f"api_key_env: PHI_TEST_KEY\nconfidence: none\ncache: {tmp_path / 'cache.sqlite'}\n")
        caplog.set_level(logging.DEBUG, logger="ade_distill")
        assert main(["label", "--in", str(tmp_path / "notes.jsonl"), "--out", str(tmp_path / "out.labels.jsonl"),
                     "--teacher", str(tmp_path / "t.yaml")]) == 0
        sent = json.dumps(srv.requests)
    out = capsys.readouterr().out  # no phi setting, a remote server, clinical text: redacted, and said so
    assert "PHI guard (teacher setting phi: redact): 2 sentences sent redacted" in out
    for value in PLANTED:
        assert value not in sent, value
    assert "[NAME_1]" in sent and "lamotrigine" in sent
    labelled = {s.id: s for s in read_sentences(tmp_path / "out.labels.jsonl")}
    for k, (_, drug, effect) in enumerate(NOTES):  # spans on the original sentence
        s = labelled[f"n{k}"]
        assert {(e.label, e.text) for e in s.entities} == {("DRUG", drug), ("ADE", effect)}
        assert all(s.text[e.start:e.end] == e.text for e in s.entities)
    run = json.loads((tmp_path / "out.labels.run.json").read_text())["stats"]
    assert run["phi_policy"] == "redact" and run["phi_redacted"] == 2 and run["phi_found"]["NAME"] == 2
    written = _files(tmp_path) + caplog.text
    for value in PLANTED:
        assert value not in written, value


def test_block_keeps_a_sentence_with_identifiers_on_this_machine(guard, tmp_path):
    write_jsonl(tmp_path / "notes.jsonl", [note(k) for k in range(len(NOTES))])
    with FakeOpenAI(_answers(guard)) as srv:
        (tmp_path / "t.yaml").write_text(f"backend: openai\nmodel: gpt-x\nbase_url: {srv.base_url}\nphi: block\n"
                                         f"confidence: none\ncache: {tmp_path / 'cache.sqlite'}\n")
        assert main(["label", "--in", str(tmp_path / "notes.jsonl"), "--out", str(tmp_path / "out.labels.jsonl"),
                     "--teacher", str(tmp_path / "t.yaml")]) == 1
        assert len(srv.requests) == 1  # only the sentence without identifiers left the machine
    fails = [json.loads(x) for x in (tmp_path / "out.labels.failures.jsonl").read_text().splitlines()]
    assert {f["id"] for f in fails} == {"n0", "n1"} and all(f["reason"].startswith("blocked") for f in fails)
    assert not any(v in json.dumps(fails) for v in PLANTED)


def test_the_batch_api_file_holds_redacted_sentences_and_its_results_map_back(guard, tmp_path):
    write_jsonl(tmp_path / "notes.jsonl", [note(k) for k in range(len(NOTES))])
    (tmp_path / "t.yaml").write_text("backend: openai\nmodel: gpt-x\nconfidence: none\n")
    assert main(["teacher", "batch-export", "--in", str(tmp_path / "notes.jsonl"), "--out",
                 str(tmp_path / "batch.jsonl"), "--teacher", str(tmp_path / "t.yaml")]) == 0
    body = (tmp_path / "batch.jsonl").read_text()
    assert not any(v in body for v in PLANTED) and "[NAME_1]" in body
    answers = _answers(guard)
    results = []
    for line in body.splitlines():
        req = json.loads(line)
        text = req["body"]["messages"][-1]["content"].removeprefix("Sentence: ")
        results.append({"custom_id": req["custom_id"], "response": {"status_code": 200, "body": {
            "model": "gpt-x", "usage": {}, "choices": [{"message": {"content": answers[text]}}]}}})
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    assert main(["teacher", "batch-import", "--in", str(tmp_path / "notes.jsonl"), "--results",
                 str(tmp_path / "results.jsonl"), "--out", str(tmp_path / "out.labels.jsonl"),
                 "--teacher", str(tmp_path / "t.yaml")]) == 0
    got = {s.id: s for s in read_sentences(tmp_path / "out.labels.jsonl")}
    assert {(e.label, e.text) for e in got["n0"].entities} == {("DRUG", "lamotrigine"),
                                                                ("ADE", "Stevens-Johnson syndrome")}


def test_phi_note_tells_the_teacher_what_placeholders_are_on_redacted_sentences_only(guard, tmp_path):
    """phi_note: a redacted sentence goes out with one line saying what the bracketed placeholders
    are; a sentence the guard left alone goes out exactly as without the setting; spans map back."""
    from ade_distill.teacher.prompts import PHI_NOTE

    write_jsonl(tmp_path / "notes.jsonl", [note(k) for k in range(len(NOTES))])
    answers = {}
    for t, d, e in NOTES:
        red = guard.redact(t)
        answers[red.text + (f"\n{PHI_NOTE}" if red.pieces else "")] = json.dumps({"ades": [{"drug": d, "effect": e}]})
    with FakeOpenAI(answers) as srv:
        (tmp_path / "t.yaml").write_text(f"backend: openai\nmodel: gpt-x\nbase_url: {srv.base_url}\nphi: redact\n"
                                         f"phi_note: true\nconfidence: none\ncache: {tmp_path / 'cache.sqlite'}\n")
        assert main(["label", "--in", str(tmp_path / "notes.jsonl"), "--out", str(tmp_path / "out.labels.jsonl"),
                     "--teacher", str(tmp_path / "t.yaml")]) == 0
        sent = sorted(r["messages"][-1]["content"] for r in srv.requests)
    assert sum(c.endswith(f"\n{PHI_NOTE}") for c in sent) == 2
    assert "Sentence: Hepatitis developed after isoniazid." in sent
    got = {s.id: s for s in read_sentences(tmp_path / "out.labels.jsonl")}
    assert {(e.label, e.text) for e in got["n1"].entities} == {("DRUG", "metoclopramide"), ("ADE", "Parkinson's disease")}
    assert not any(v in json.dumps(srv.requests) for v in PLANTED)
