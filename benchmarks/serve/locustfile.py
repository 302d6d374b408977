"""Locust users for benchmarks/serve_load.py: each sends POST /extract with one sentence (drawn
from $ADE_LOAD_SENTENCES, one text per line) as soon as its previous answer arrives (closed loop,
no think time), so the number of users is the number of requests in flight."""

import json
import os
import random

from locust import FastHttpUser, constant, task

with open(os.environ["ADE_LOAD_SENTENCES"], encoding="utf-8") as fh:
    TEXTS = [json.loads(line)["text"] for line in fh if line.strip()]
TOKEN = os.environ.get("ADE_LOAD_TOKEN")


class ExtractUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def extract(self):
        headers = {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}
        with self.client.post("/extract", json={"texts": [random.choice(TEXTS)]}, headers=headers,
                              catch_response=True) as r:
            if r.status_code != 200 or "records" not in r.json():
                r.failure(f"HTTP {r.status_code}")
