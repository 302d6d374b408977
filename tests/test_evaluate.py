"""Scores worked out on paper for hand-made cases, plus properties of the scorer."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from ade_distill.cli import main
from ade_distill.evaluate import EvaluationError, evaluate
from ade_distill.evaluate.metrics import max_matching, prf
from ade_distill.core.schema import Entity, Relation, Sentence, write_jsonl
from ade_distill.core.text import word_spans


def S(sid, text, ents, rels, source="gold"):
    entities = [Entity(id=eid, label=lab, start=s, end=e, text=text[s:e]) for eid, lab, s, e in ents]
    return Sentence(id=sid, doc_id="d", text=text, entities=entities,
                    relations=[Relation(drug=d, ade=a) for d, a in rels], source=source)


T1 = "Aspirin caused gastric bleeding and rash."
T2 = "Codeine intoxication in the neonate."
T3 = "Metformin was well tolerated."
T4 = "Lisinopril caused angioedema."
GOLD = [
    S("s1", T1, [("e0", "DRUG", 0, 7), ("e1", "ADE", 15, 31), ("e2", "ADE", 36, 40)], [("e0", "e1"), ("e0", "e2")]),
    S("s2", T2, [("e0", "ADE", 0, 20), ("e1", "DRUG", 0, 7)], [("e1", "e0")]),
    S("s3", T3, [], []),
    S("s4", T4, [("e0", "DRUG", 0, 10), ("e1", "ADE", 18, 28)], [("e0", "e1")]),
]
PRED = [
    # 'bleeding' only overlaps gold 'gastric bleeding': lenient but not strict
    S("s1", T1, [("p0", "DRUG", 0, 7), ("p1", "ADE", 23, 31), ("p2", "ADE", 36, 40)], [("p0", "p1"), ("p0", "p2")], "student:x"),
    # nested gold; predicted ADE 'intoxication' overlaps 'Codeine intoxication'; duplicate DRUG span
    S("s2", T2, [("p0", "DRUG", 0, 7), ("p1", "ADE", 8, 20), ("p3", "DRUG", 0, 7)], [("p0", "p1")], "student:x"),
    S("s3", T3, [("p0", "DRUG", 0, 9)], [], "student:x"),  # a drug in a negative sentence
    S("s4", T4, [], [], "student:x"),  # predicts nothing
]


def counts(m):
    return (m["tp"], m["fp"], m["fn"])


@pytest.fixture(scope="module")
def metrics():
    return evaluate(GOLD, {"pred": PRED, "gold": GOLD}, n_bootstrap=200)


def test_entity_strict_by_hand(metrics):
    e = metrics["systems"]["pred"]["entity"]["strict"]
    assert counts(e["by_label"]["DRUG"]) == (2, 2, 1)
    assert counts(e["by_label"]["ADE"]) == (1, 2, 3)
    assert counts(e["micro"]) == (3, 4, 4)
    assert e["micro"]["f1"] == pytest.approx(3 / 7)
    assert e["by_label"]["DRUG"]["precision"] == pytest.approx(0.5)
    assert e["by_label"]["DRUG"]["recall"] == pytest.approx(2 / 3)
    assert e["by_label"]["DRUG"]["f1"] == pytest.approx(4 / 7)
    assert e["by_label"]["ADE"]["f1"] == pytest.approx(2 / 7)


def test_entity_lenient_by_hand(metrics):
    e = metrics["systems"]["pred"]["entity"]["lenient"]
    assert counts(e["by_label"]["DRUG"]) == (2, 2, 1)  # the duplicate still matches only once
    assert counts(e["by_label"]["ADE"]) == (3, 0, 1)
    assert e["micro"]["f1"] == pytest.approx(5 / 7)


def test_relations_by_hand(metrics):
    r = metrics["systems"]["pred"]["relation"]
    assert counts(r["strict"]["micro"]) == (1, 2, 3) and r["strict"]["micro"]["f1"] == pytest.approx(2 / 7)
    assert counts(r["lenient"]["micro"]) == (3, 0, 1) and r["lenient"]["micro"]["f1"] == pytest.approx(6 / 7)
    assert counts(r["text"]["micro"]) == (1, 2, 3) and r["text"]["micro"]["f1"] == pytest.approx(2 / 7)


def test_gold_against_itself_and_intervals(metrics):
    g = metrics["systems"]["gold"]
    for kind, modes in (("entity", ("strict", "lenient", "seqeval")), ("relation", ("strict", "lenient", "text"))):
        for mode in modes:
            assert g[kind][mode]["micro"]["f1"] == 1.0
    p = metrics["systems"]["pred"]["relation"]["strict"]["micro"]
    assert p["ci"][0] <= p["f1"] <= p["ci"][1] and p["ci"][0] < p["ci"][1]
    assert g["relation"]["strict"]["micro"]["ci"] == [1.0, 1.0]


def test_paired_bootstrap_and_agreement(metrics):
    pair = metrics["paired_bootstrap"]["pred vs gold"]["relation.strict"]
    assert pair["p_b_better"] > 0.9 and pair["p_a_better"] == 0.0
    assert pair["delta_f1"] == pytest.approx(2 / 7 - 1)
    # strict F1 is symmetric in which side is called gold
    assert metrics["agreement"]["pred vs gold"]["relation_strict_f1"] == pytest.approx(2 / 7)
    assert metrics["agreement"]["pred vs gold"]["entity_strict_f1"] == pytest.approx(3 / 7)


def test_bootstrap_is_seeded():
    a = evaluate(GOLD, {"p": PRED}, n_bootstrap=100, seed=1)
    b = evaluate(GOLD, {"p": PRED}, n_bootstrap=100, seed=1)
    assert a == b


def test_empty_predictions_and_empty_gold():
    empty = [S(g.id, g.text, [], [], "student:e") for g in GOLD]
    m = evaluate(GOLD, {"e": empty}, n_bootstrap=0)["systems"]["e"]
    assert counts(m["entity"]["strict"]["micro"]) == (0, 0, 7)
    assert m["entity"]["strict"]["micro"]["f1"] == 0.0 and m["entity"]["strict"]["micro"]["precision"] == 0.0
    neg = [GOLD[2]]
    m = evaluate(neg, {"none": [S("s3", T3, [], [], "student:e")], "fp": [PRED[2]]}, n_bootstrap=0)["systems"]
    assert m["none"]["relation"]["strict"]["micro"]["f1"] == 1.0  # nothing expected, nothing said
    assert counts(m["fp"]["entity"]["strict"]["micro"]) == (0, 1, 0)
    assert m["fp"]["entity"]["strict"]["micro"]["f1"] == 0.0


def test_missing_predictions():
    with pytest.raises(EvaluationError, match="1 of 4 gold sentences have no prediction"):
        evaluate(GOLD, {"p": PRED[:3]})
    full = evaluate(GOLD, {"p": PRED}, n_bootstrap=0)["systems"]["p"]
    part = evaluate(GOLD, {"p": PRED[:3]}, allow_missing=True, n_bootstrap=0)["systems"]["p"]
    assert part["n_missing"] == 1 and full["n_missing"] == 0
    assert part["relation"] == full["relation"] and part["entity"] == full["entity"]


def test_text_mismatch_is_an_error():
    bad = [S("s1", T1 + " ", [], [], "student:x")] + PRED[1:]
    with pytest.raises(EvaluationError, match="'s1' has a different text"):
        evaluate(GOLD, {"p": bad})


def test_calibration_by_hand():
    g = [S("c", T1, [("e0", "DRUG", 0, 7)], [])]
    p = [Sentence(id="c", doc_id="d", text=T1, source="student:x", entities=[
        Entity(id="a", label="DRUG", start=0, end=7, text="Aspirin", confidence=0.95),
        Entity(id="b", label="ADE", start=36, end=40, text="rash", confidence=0.15)])]
    cal = evaluate(g, {"p": p}, n_bootstrap=0)["systems"]["p"]["calibration"]["entity"]
    assert cal["ece"] == pytest.approx(0.5 * 0.05 + 0.5 * 0.15)
    assert [(b["n"], b["accuracy"]) for b in cal["bins"]] == [(1, 0.0), (1, 1.0)]
    assert [(c["precision"], c["recall"]) for c in cal["pr_curve"]] == [(1.0, 1.0), (0.5, 1.0)]


def test_prf_and_matching():
    assert prf(0, 0, 0)["f1"] == 1.0
    assert prf(1, 1, 0) == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "tp": 1, "fp": 1, "fn": 0}
    # greedy would take (0,0) and leave 1 unmatched; the maximum matching is 2
    assert max_matching(2, 2, {0: [0, 1], 1: [0]}) == 2


WORDS = ["aspirin", "caused", "rash", "and", "severe", "liver", "injury", "with", "warfarin", "."]


@st.composite
def annotated(draw):
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=14))
    text = " ".join(words)
    toks = word_spans(text)

    def spans(label):
        out, i = [], 0
        while i < len(toks):
            if draw(st.booleans()) and draw(st.booleans()):
                j = min(len(toks) - 1, i + draw(st.integers(0, 2)))
                out.append((label, toks[i][0], toks[j][1]))
                i = j + 1 + draw(st.integers(0, 1))  # same label never overlaps
            else:
                i += 1
        return out

    ents = [(f"e{k}", lab, s, e) for k, (lab, s, e) in enumerate(spans("DRUG") + spans("ADE"))]
    drugs = [e[0] for e in ents if e[1] == "DRUG"]
    ades = [e[0] for e in ents if e[1] == "ADE"]
    rels = [(d, a) for d in drugs for a in ades if draw(st.booleans())]
    return text, ents, rels


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(annotated(), annotated()), min_size=1, max_size=5))
def test_properties_self_score_and_seqeval_agreement(pairs):
    gold = [S(f"s{i}", g[0], g[1], g[2]) for i, (g, _) in enumerate(pairs)]
    # predictions: the second draw's spans projected on the gold text where they fit
    pred = []
    for i, ((text, _, _), (_, ents, rels)) in enumerate(pairs):
        toks = {s for s, _ in word_spans(text)}, {e for _, e in word_spans(text)}
        ok = [x for x in ents if x[3] <= len(text) and x[2] in toks[0] and x[3] in toks[1]]
        ids = {x[0] for x in ok}
        pred.append(S(f"s{i}", text, ok, [r for r in rels if r[0] in ids and r[1] in ids], "student:x"))
    m = evaluate(gold, {"gold": gold, "pred": pred}, n_bootstrap=0)["systems"]
    for kind, modes in (("entity", ("strict", "lenient", "seqeval")), ("relation", ("strict", "lenient", "text"))):
        for mode in modes:
            assert m["gold"][kind][mode]["micro"]["f1"] == 1.0
    for lab in ("DRUG", "ADE"):
        assert counts(m["pred"]["entity"]["strict"]["by_label"][lab]) == \
            counts(m["pred"]["entity"]["seqeval"]["by_label"][lab])


def test_cli_evaluate_writes_metrics_shape(tmp_path, capsys):
    g, p = tmp_path / "gold.jsonl", tmp_path / "pred.jsonl"
    write_jsonl(g, GOLD)
    write_jsonl(p, PRED)
    (tmp_path / "pred.info.json").write_text(json.dumps({"parameters": 22_600_000, "sentences_per_second": 105.0}))
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--gold", str(g), "--pred", f"student={p}", "--pred", f"gold={g}",
                 "--out", str(out), "--bootstrap", "100"]) == 0
    stdout = capsys.readouterr().out
    assert "student" in stdout and "28.6 [" in stdout  # relation strict F1 2/7
    m = json.loads(out.read_text())
    s = m["systems"]["student"]
    assert m["n_sentences"] == 4
    assert set(s["entity"]) == {"strict", "lenient", "seqeval"} and set(s["relation"]) == {"strict", "lenient", "text"}
    assert set(s["entity"]["strict"]["by_label"]) == {"DRUG", "ADE"}
    assert {"precision", "recall", "f1", "tp", "fp", "fn", "ci"} <= set(s["relation"]["strict"]["micro"])
    assert s["info"]["parameters"] == 22_600_000
    write_jsonl(p, PRED[:2])
    assert main(["evaluate", "--gold", str(g), "--pred", f"student={p}", "--out", str(tmp_path / "m2.json")]) == 2
    assert "--allow-missing" in capsys.readouterr().err and not (tmp_path / "m2.json").exists()
    assert main(["evaluate", "--gold", str(g), "--pred", "nameless", "--out", str(out)]) == 2


@pytest.mark.shared
def test_fold0_gold_against_itself_is_perfect(shared_data, tmp_path, capsys):
    y = tmp_path / "y.jsonl"
    assert main(["ingest", "ade-splits", "--source", str(shared_data / "ade_splits"), "--out", str(y)]) == 0
    out = tmp_path / "m.json"
    assert main(["evaluate", "--gold", str(y), "--pred", f"self={y}", "--out", str(out), "--bootstrap", "50"]) == 0
    s = json.loads(out.read_text())["systems"]["self"]
    f1s = [s[k][m]["micro"]["f1"] for k, ms in (("entity", ("strict", "lenient", "seqeval")),
                                              ("relation", ("strict", "lenient", "text"))) for m in ms]
    f1s += [s["entity"][m]["by_label"][lab]["f1"] for m in ("strict", "lenient", "seqeval") for lab in ("DRUG", "ADE")]
    assert f1s == [1.0] * len(f1s)


def test_a_sentence_the_teacher_never_answered_scores_as_its_empty_answer(tmp_path):
    """A teacher file missing a test sentence (a failed call) is scored with the empty answer for it,
    counted in the metrics' info, in a fold's evaluate stage; never silently dropped."""
    from ade_distill.workflows.evaluate import evaluate_stage, unanswered_as_empty
    from ade_distill.workflows.settings import EvaluateConfig

    teacher = [s.model_copy(update={"source": "teacher:t"}) for s in PRED if s.id != "s1"]
    filled, n = unanswered_as_empty(GOLD, teacher)
    assert n == 1 and [s.id for s in filled[-1:]] == ["s1"] and not filled[-1].entities
    assert filled[-1].source == "teacher:t" and filled[-1].meta == {"unanswered": True}
    write_jsonl(tmp_path / "gold.jsonl", GOLD)
    write_jsonl(tmp_path / "teacher.jsonl", teacher)
    evaluate_stage(tmp_path / "gold.jsonl", tmp_path / "eval", teachers={"teacher t": (tmp_path / "teacher.jsonl", {})},
                   students={}, cfg=EvaluateConfig(bootstrap=0))
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    t = m["systems"]["teacher t"]
    rel = t["relation"]["strict"]["micro"]
    assert (rel["tp"], rel["fn"]) == (0, 4)  # s1's two gold relations missed (unanswered), s2's and s4's too
    assert t["info"]["unanswered"] == 1 and t["n_missing"] == 0
