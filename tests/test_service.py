"""`ade-distill serve`: the real service (uvicorn on 127.0.0.1, a subprocess) against `extract`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ade_distill.cli import main

TOKEN = "sk-serve-test-4f1c9e"


@contextlib.contextmanager
def _running(forced_model, folder: Path, args: list[str], env: dict | None = None):
    """The real service in a subprocess on a free 127.0.0.1 port: (url, log file)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = folder / "server.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "ade_distill.cli", "-v", "serve", "--model", str(forced_model),
                                 "--port", str(port), *args], env={**os.environ, **(env or {})},
                                stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {log.read_text()}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        else:
            pytest.fail("the server did not come up in 60 s")
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(forced_model, tmp_path_factory):
    metrics = tmp_path_factory.mktemp("m") / "metrics.json"
    blk = {"strict": {"micro": {"f1": 0.5}}}
    metrics.write_text(json.dumps({"n_sentences": 3, "systems": {"student forced": {"entity": blk, "relation": blk}}}))
    with _running(forced_model, tmp_path_factory.mktemp("log"),
                  ["--token-env", "ADE_TEST_SERVE_TOKEN", "--metrics", str(metrics), "--max-body-bytes", "20000",
                   "--max-documents", "8", "--batch-wait-ms", "50"], {"ADE_TEST_SERVE_TOKEN": TOKEN}) as got:
        yield got


def _auth() -> dict:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_extract_answers_what_the_extract_command_writes(server, forced_model, sample_dir, tmp_path):
    url, _ = server
    text = json.loads((sample_dir / "gold.jsonl").read_text().splitlines()[0])["text"]
    docs = [{"id": "doc-1", "text": text}, {"id": "doc-2", "text": text + " Aspirin caused a rash."}]
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    assert main(["extract", "--model", str(forced_model), "--input", str(src), "--out", str(tmp_path / "a.jsonl")]) == 0
    expected = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert len(expected) > 2

    r = httpx.post(url + "/extract", json={"documents": docs}, headers=_auth(), timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["records"] == expected
    assert body["documents"] == 2 and body["errors"] == [] and body["model"].startswith("forced@")

    r = httpx.post(url + "/extract", json={"texts": [text]}, headers=_auth(), timeout=60)
    assert [x["doc_id"] for x in r.json()["records"]] == ["text-0"] * len(r.json()["records"])


def test_token_limits_and_clear_errors(server):
    url, log = server
    assert httpx.get(url + "/health").json()["status"] == "ok"  # liveness needs no token
    r = httpx.post(url + "/extract", json={"texts": ["x"]})
    assert r.status_code == 401 and "API token" in r.json()["detail"]
    assert httpx.post(url + "/extract", json={"texts": ["x"]}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(url + "/model").status_code == 401

    m = httpx.get(url + "/model", headers=_auth()).json()
    assert m["id"] == "forced" and len(m["version"]) == 16 and "DRUG" in m["labels"]["entities"]
    assert m["metrics"]["system"] == "student forced" and m["metrics"]["relation_strict_f1"] == 0.5

    r = httpx.post(url + "/extract", json={"texts": ["word " * 5000]}, headers=_auth())
    assert r.status_code == 413 and "over the limit of 20,000" in r.json()["detail"]
    r = httpx.post(url + "/extract", json={"texts": ["a"] * 9}, headers=_auth())
    assert r.status_code == 422 and "at most 8" in r.json()["detail"]
    r = httpx.post(url + "/extract", json={"texts": ["a"], "documents": []}, headers=_auth())
    assert r.status_code == 422 and "either texts or documents" in json.dumps(r.json())
    r = httpx.post(url + "/extract", content=b"{not json", headers={**_auth(), "content-type": "application/json"})
    assert r.status_code == 422

    spec = httpx.get(url + "/openapi.json").json()
    assert "/extract" in spec["paths"] and "requestBody" in spec["paths"]["/extract"]["post"]
    time.sleep(0.5)
    assert TOKEN not in log.read_text()  # the token never reaches the log (run with -v)


def test_concurrent_callers_are_batched_and_each_gets_its_own_records(server):
    url, _ = server
    texts = [f"Patient {i} developed hepatitis after methotrexate." for i in range(16)]

    async def go():
        async with httpx.AsyncClient(base_url=url, headers=_auth(), timeout=60) as c:
            before = (await c.get("/health")).json()["batches"]
            rs = await asyncio.gather(*(c.post("/extract", json={"texts": [t]}) for t in texts))
            after = (await c.get("/health")).json()["batches"]
            return rs, after - before

    rs, calls = asyncio.run(go())
    assert all(r.status_code == 200 for r in rs)
    for t, r in zip(texts, rs):
        recs = r.json()["records"]
        assert recs and all(t[x["drug_start"]:x["drug_end"]] == x["drug"] for x in recs)
    assert calls < len(texts)  # 16 simultaneous callers shared model calls


def test_a_full_queue_answers_503_with_retry_after_and_drains(forced_model, tmp_path):
    """Back-pressure: at most --max-queued documents wait or run; the next caller is told to come
    back (503, Retry-After), nobody waits in an unbounded backlog, and the service recovers."""
    texts = [f"Patient {i} developed a rash after amoxicillin. " * 20 for i in range(24)]
    with _running(forced_model, tmp_path, ["--max-queued", "4", "--max-batch", "2", "--batch-wait-ms", "200"]) as (url, _):
        async def go():
            async with httpx.AsyncClient(base_url=url, timeout=120) as c:
                return await asyncio.gather(*(c.post("/extract", json={"texts": [t]}) for t in texts))

        rs = asyncio.run(go())
        codes = [r.status_code for r in rs]
        assert set(codes) == {200, 503} and codes.count(200) >= 4
        busy = [r for r in rs if r.status_code == 503]
        assert all(1 <= int(r.headers["Retry-After"]) <= 60 and "busy" in r.json()["detail"] for r in busy)
        assert all(r.json()["records"] for r in rs if r.status_code == 200)
        h = httpx.get(url + "/health").json()
        assert h["queued"] == 0  # drained
        assert httpx.post(url + "/extract", json={"texts": [texts[0]]}, timeout=60).status_code == 200


def test_serve_refuses_a_missing_token_variable(forced_model, monkeypatch, capsys):
    monkeypatch.delenv("ADE_NO_SUCH_TOKEN", raising=False)
    assert main(["serve", "--model", str(forced_model), "--token-env", "ADE_NO_SUCH_TOKEN"]) == 2
    assert "ADE_NO_SUCH_TOKEN" in capsys.readouterr().err


def test_serve_refuses_a_limit_that_is_not_positive(forced_model, capsys):
    assert main(["serve", "--model", str(forced_model), "--model-batch", "0"]) == 2
    err = capsys.readouterr().err
    assert "model_batch=0" in err and err.count("\n") == 1


def test_serve_refuses_a_folder_that_is_not_a_student(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path)]) == 2
    assert "not a student folder" in capsys.readouterr().err


def test_model_info_without_metrics(forced_model):
    from ade_distill.apps.service import model_info

    info = model_info(forced_model)
    assert "metrics" not in info and info["settings"]["relation_threshold"] == 0.01
    assert Path(forced_model, "ade_student.json").exists()
