"""Load test of `ade-distill serve` on 127.0.0.1 with locust: requests/s and p50/p95/p99 latency
at several concurrencies (closed loop: N users, each sending its next one-sentence request as soon
as the previous one is answered), zero errors expected.

  python benchmarks/serve_load.py --model runs/quickstart/train-distilled/model \
      [--sentences FILE.jsonl] [--users 1 8 32 64] [--seconds 30] [--threads 2] [--out reports/serve] \
      [--variant 'before=--model-batch 32' --variant 'after=--runtime onnx --quantize int8']

The server and locust share this machine's cores (state how many in the report); the server runs
the student in one thread pool with `--threads` threads. Each --variant (NAME=extra `serve` options)
starts its own server in turn and runs every level, so before and after are measured in one run.
Writes load.json and load.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from locust.stats import calculate_response_time_percentile

from ade_distill.core.paths import shown, shown_text

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_sentences(tmp: Path) -> tuple[Path, str]:
    """ADE fold 0 test sentences when ../shared/data is here, else the embedded sample."""
    from ade_distill.pipeline import default_shared_data
    from ade_distill.core.schema import read_sentences, write_jsonl

    splits = default_shared_data() / "ade_splits"
    if (splits / "ade_split_0_test.json").exists():
        from ade_distill.ingest import ingest_ade_splits

        sents = list(ingest_ade_splits(splits, 0, "test"))
        what = f"ADE-Corpus-V2 fold 0 test ({len(sents)} sentences)"
    else:
        sents = list(read_sentences(REPO / "data" / "sample" / "gold.jsonl"))
        what = f"the embedded sample ({len(sents)} sentences)"
    write_jsonl(tmp / "sentences.jsonl", sents)
    return tmp / "sentences.jsonl", what


def run_level(url: str, users: int, seconds: int, sentences: Path, token: str, tmp: Path) -> dict:
    out = tmp / f"u{users}"  # locust adds .json
    env = {**os.environ, "ADE_LOAD_SENTENCES": str(sentences), "ADE_LOAD_TOKEN": token}
    cmd = [str(Path(sys.executable).with_name("locust")), "-f", str(REPO / "benchmarks" / "serve" / "locustfile.py"),
           "--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", url,
           "--json-file", str(out), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10"]
    p = subprocess.run(cmd, env=env, check=False, capture_output=True, text=True, timeout=seconds + 120)
    res = out.with_suffix(".json")
    stats = [x for x in json.loads(res.read_text()) if x["name"] == "/extract"] if res.exists() else []
    if not stats or not stats[0]["num_requests"]:
        sys.exit(f"locust made no request at {users} user(s):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    s = stats[0]
    times = {int(float(k)): v for k, v in s["response_times"].items()}  # rounded ms -> count
    n = s["num_requests"]

    def pct(q: float) -> float:
        return calculate_response_time_percentile(times, n, q)

    return {"users": users, "seconds": seconds, "requests": n, "failures": s["num_failures"],
            "requests_per_second": round(n / seconds, 2), "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "mean_ms": round(s["total_response_time"] / n, 1)}


def run_variant(a, name: str, extra: list[str], sentences: Path, tmp: Path) -> dict:
    """One server with `extra` options: warm-up, then every level of users."""
    port, token = free_port(), os.urandom(12).hex()
    url = f"http://127.0.0.1:{port}"
    log = tmp / f"server-{name}.log"
    server = subprocess.Popen([sys.executable, "-m", "ade_distill.cli", "serve", "--model", str(a.model), "--port",
                               str(port), "--threads", str(a.threads), "--token-env", "ADE_LOAD_TOKEN",
                               "--batch-wait-ms", str(a.batch_wait_ms), *extra],
                              env={**os.environ, "ADE_LOAD_TOKEN": token}, stdout=subprocess.DEVNULL,
                              stderr=open(log, "w"))
    try:
        for _ in range(1500):  # an ONNX export on first use takes a while
            if server.poll() is not None:
                sys.exit(f"the server of {name} stopped: {log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            sys.exit(f"the server of {name} did not start: {log.read_text()[-2000:]}")
        model = httpx.get(url + "/model", headers={"Authorization": f"Bearer {token}"}).json()
        run_level(url, max(a.users), a.warmup, sentences, token, tmp)  # warm-up, not reported
        calls0 = httpx.get(url + "/health").json()["batches"]
        levels = []
        for u in a.users:
            levels.append(run_level(url, u, a.seconds, sentences, token, tmp))
            print(json.dumps({"variant": name, **levels[-1]}), flush=True)
        batches = httpx.get(url + "/health").json()["batches"] - calls0
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"name": name, "serve_options": " ".join(extra), "model": {k: shown_text(str(model.get(k) or "")) for k in ("id", "version", "base_model")},
            "model_calls": batches, "levels": levels}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "runs" / "quickstart" / "train-distilled" / "model")
    ap.add_argument("--sentences", type=Path, help="JSONL with a text field per line (default: ADE fold 0 test)")
    ap.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-wait-ms", type=float, default=5.0)
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=OPTIONS",
                    help="a server configuration to measure: a name and extra `ade-distill serve` options")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "serve")
    a = ap.parse_args()
    if not (a.model / "ade_student.json").exists():
        sys.exit(f"{a.model}: not a student folder (run `make demo` first, or give --model)")
    variants = []
    for v in a.variant or ["default="]:
        name, sep, opts = v.partition("=")
        if not sep or not name:
            sys.exit(f"--variant {v!r}: give NAME=OPTIONS")
        variants.append((name, shlex.split(opts)))
    tmp = Path(tempfile.mkdtemp(prefix="ade-serve-load-"))
    sentences, what = (a.sentences, str(a.sentences)) if a.sentences else default_sentences(tmp)
    results = [run_variant(a, name, extra, sentences, tmp) for name, extra in variants]
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    command = "python benchmarks/serve_load.py " + " ".join(shlex.quote(shown(x)) for x in sys.argv[1:])
    result = {"command": command, "git_commit": commit,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "sentences": what, "server": {"threads": a.threads, "batch_wait_ms": a.batch_wait_ms},
              "variants": results}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    m = results[0]["model"]
    lines = ["# `ade-distill serve` under load", "",
             f"Made by `{command}` (git {commit}) on {os.cpu_count()} CPU cores shared by the server "
             f"({a.threads} threads for the model) and locust. Closed loop: N users, each sending one sentence of {what} "
             f"per POST /extract as soon as its previous answer arrives; {a.seconds} s per level after a "
             f"{a.warmup} s warm-up. Student {m.get('id')} ({m.get('base_model')}). "
             "Each configuration runs its own server in turn, in this one run.", "",
             "| configuration (`serve` options) | concurrent users | requests | failures | requests/s | p50 ms | p95 ms | p99 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        label = f"{r['name']} (`{r['serve_options']}`)" if r["serve_options"] else r["name"]
        lines += [f"| {label} | {x['users']} | {x['requests']:,} | {x['failures']} | {x['requests_per_second']:.1f} | "
                  f"{x['p50_ms']:.0f} | {x['p95_ms']:.0f} | {x['p99_ms']:.0f} |" for x in r["levels"]]
    lines += ["", "Model calls after the warm-up (requests are batched across callers): "
              + "; ".join(f"{r['name']} {r['model_calls']:,}" for r in results) + "."]
    (a.out / "load.md").write_text("\n".join(lines) + "\n")
    print(f"-> {a.out / 'load.md'}")


if __name__ == "__main__":
    main()
