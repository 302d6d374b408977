"""The CPU image for `ade-distill serve` (Dockerfile): built and smoke-tested where a Docker daemon
answers (skipped elsewhere, with the reason): /health, then one POST /extract through a mounted student."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _daemon() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def test_the_image_serves_a_mounted_student(forced_model):
    if not _daemon():
        pytest.skip("no Docker daemon answers here: the image is not built")
    tag = "ade-distill:test"
    subprocess.run(["docker", "build", "-t", tag, str(REPO)], check=True, timeout=3600)
    run = subprocess.run(["docker", "run", "-d", "--rm", "-p", "127.0.0.1::8000", "-v", f"{forced_model}:/model:ro", tag],
                         capture_output=True, text=True, check=True)
    cid = run.stdout.strip()
    try:
        port = subprocess.run(["docker", "port", cid, "8000"], capture_output=True, text=True,
                              check=True).stdout.strip().rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("the container never answered /health")
        req = urllib.request.Request(base + "/extract", data=json.dumps({"texts": ["Rash after penicillin."]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            body = json.loads(r.read())
        assert body["documents"] == 1 and body["records"]  # the forced student links every pair
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
