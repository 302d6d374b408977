"""Issue #32's benchmark: screening real streams, written as PubmedArticleSet XML and read back
through `screen` (XML reader, sentence splitter, cascade, student, article table), in one run.

  python benchmarks/screen_speed.py --model STUDENT [--sentences 1000000] [--prefix 20000]
      [--teacher pipelines/teachers/qwen1.5b-llamacpp.yaml --teacher-sample 200] [--ray]
      [--runtime onnx --quantize int8]
      [--work runs/screen_speed] [--out reports/screen_speed/screen_speed]

Streams (abstracts repeated under new PMIDs until --sentences sentences):
  A  every ADE-Corpus-V2 sentence (DRUG-AE.rel and ADE-NEG.txt), grouped by PMID into abstracts;
  B  stream A's abstracts and the BioScope abstracts and full papers, interleaved.
Drug list: the 50 most frequent gold DRUG strings (lower case) of fold 0's train part, written to
<out>_drugs.txt. Sentence gate: `ade-distill gate` on the teacher's labels only (the JSON view of
fold 0 train and the lines view of the ADE-NEG sentences, from data/teacher_labels), recall 0.99.

Rows: the student alone, + the drug prefilter, + the sentence gate; each in its own process (its
peak memory), timed end to end from XML files to the article table. The student alone reads every
sentence, so it runs on the first --prefix sentences of each stream; each cascade row runs on the
same prefix too (its relation recall on the listed drugs against the student alone) and on the whole
stream (its rate). --teacher times the teacher on a --teacher-sample sentence sample; --ray adds the
full cascade on Ray Data with 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.core.paths import shown  # noqa: E402

ABSTRACTS_PER_FILE = 5000


def _xml(abstracts: list[tuple[str, str]]) -> str:
    arts = "".join(f"<PubmedArticle><MedlineCitation><PMID Version=\"1\">{p}</PMID><Article><Journal><Title>bench"
                   f"</Title></Journal><ArticleTitle></ArticleTitle><Abstract><AbstractText>{escape(t)}</AbstractText>"
                   f"</Abstract></Article></MedlineCitation></PubmedArticle>\n" for p, t in abstracts)
    return f"<?xml version='1.0'?>\n<PubmedArticleSet>\n{arts}</PubmedArticleSet>\n"


def _abstracts_ade(shared: Path) -> list[list[str]]:
    from ade_distill.ingest import ingest_ade_corpus

    by_doc: dict[str, list[str]] = {}
    for s in ingest_ade_corpus(shared / "ade_corpus_v2"):
        by_doc.setdefault(s.doc_id, [])
        if s.text not in by_doc[s.doc_id]:
            by_doc[s.doc_id].append(s.text)
    return list(by_doc.values())


def _abstracts_bioscope(shared: Path) -> list[list[str]]:
    from ade_distill.ingest.bioscope import read_bioscope

    by_doc: dict[str, list[str]] = {}
    for f in ("abstracts.xml", "full_papers.xml"):
        for s in read_bioscope(shared / "bioscope" / f):
            by_doc.setdefault(f"{f}:{s.doc_id}", []).append(s.text)
    return list(by_doc.values())


def write_stream(folder: Path, docs: list[list[str]], target: int) -> dict:
    """Files of PubmedArticleSet XML, the documents cycled under new PMIDs until ``target`` sentences;
    the file holding the first ``prefix`` sentences is noted per file (sentences before it)."""
    folder.mkdir(parents=True, exist_ok=True)
    files, batch, n_sent, n_abs, pmid, k = [], [], 0, 0, 10_000_000, 0
    counts = []
    while n_sent < target:
        sents = docs[k % len(docs)]
        k += 1
        batch.append((str(pmid), " ".join(sents)))
        pmid += 1
        n_sent += len(sents)
        n_abs += 1
        if len(batch) == ABSTRACTS_PER_FILE or n_sent >= target:
            f = folder / f"part{len(files):04d}.xml"
            f.write_text(_xml(batch), encoding="utf-8")
            files.append(f)
            counts.append(n_sent)
            batch = []
    return {"files": [str(f) for f in files], "sentences_through": counts, "abstracts": n_abs, "sentences": n_sent}


def run_one(spec: dict) -> dict:
    """One screening row in this process: seconds, the cascade's counts, peak memory."""
    from ade_distill.workflows.screen import screen

    t = time.perf_counter()
    r = screen(spec["model"], spec["files"], spec["out"], drugs=spec.get("drugs"), prefilter=spec["prefilter"],
               gate=spec.get("gate"), engine=spec.get("engine", "local"), workers=spec.get("workers"),
               threads=spec.get("threads"), excerpts=False, runtime=spec.get("runtime", "torch"),
               quantize=spec.get("quantize"))
    seconds = time.perf_counter() - t
    c = r.cascade.to_json() if r.cascade is not None else None
    return {"seconds": seconds, "articles": r.articles, "rows": r.rows, "cascade": c,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _subprocess(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True,
                         env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if out.returncode:
        raise SystemExit(f"row {spec['name']} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _listed_relations(folder: Path) -> set[tuple]:
    import pandas as pd

    t = pd.read_parquet(folder / "articles.parquet")
    t = t[t["drug_of_interest"].notna()]
    return set(zip(t["pmid"], t["sentence_id"], t["drug_start"], t["drug_end"], t["effect_start"], t["effect_end"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--sentences", type=int, default=1_000_000)
    ap.add_argument("--prefix", type=int, default=20_000)
    ap.add_argument("--teacher", type=Path)
    ap.add_argument("--teacher-sample", type=int, default=200)
    ap.add_argument("--ray", action="store_true")
    ap.add_argument("--runtime", choices=["torch", "onnx"], default="torch", help="the student's runtime in every row")
    ap.add_argument("--quantize", choices=["int8"], help="the student's weights (with --runtime onnx: ONNX Runtime int8)")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "screen_speed")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "screen_speed" / "screen_speed")
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_one(json.loads(a.one))))
        return
    if a.model is None:
        ap.error("--model is required")
    from ade_distill.apps.cascade import GateSettings, SentenceGate
    from ade_distill.core.labels import read_unpacked
    from ade_distill.ingest import ingest_ade_splits
    from ade_distill.ingest.ade_corpus import in_domain_negatives

    work = a.work
    work.mkdir(parents=True, exist_ok=True)
    train = list(ingest_ade_splits(a.shared / "ade_splits", fold=0, part="train"))
    test = list(ingest_ade_splits(a.shared / "ade_splits", fold=0, part="test"))
    # the drug list: the rule is the 50 most frequent gold DRUG strings of fold 0 train
    top = Counter(e.text.lower() for s in train for e in s.entities if e.label == "DRUG").most_common(50)
    drugs = a.out.parent / f"{a.out.name}_drugs.txt"
    drugs.parent.mkdir(parents=True, exist_ok=True)
    drugs.write_text("# the 50 most frequent gold DRUG strings of fold 0 train (benchmarks/screen_speed.py)\n"
                     + "".join(f"{d}\n" for d, _ in top), encoding="utf-8")
    # the gate: teacher labels only
    labels = REPO / "data" / "teacher_labels"
    negs = in_domain_negatives(a.shared / "ade_corpus_v2", {s.doc_id for s in test}, seed=0)
    taught = list(read_unpacked(labels / "ade_fold0_train.qwen2.5-coder-1.5b.jsonl", train)) + \
        list(read_unpacked(labels / "ade_neg.qwen2.5-coder-1.5b.lines.jsonl", negs, unknown="skip"))
    gate = SentenceGate.train(taught, GateSettings(recall=0.99))
    gate.save(work / "gate")
    ade, bio = _abstracts_ade(a.shared), _abstracts_bioscope(a.shared)
    mixed = [d for pair in zip(ade, bio) for d in pair] + ade[len(bio):] + bio[len(ade):]
    streams = {"A": ade, "B": mixed}
    rows, recall_sets = [], {}
    for name, docs in streams.items():
        st = write_stream(work / f"stream{name}", docs, a.sentences)
        pre_files = st["files"][:next(i for i, n in enumerate(st["sentences_through"]) if n >= min(a.prefix, st["sentences"])) + 1]
        pre_sent = st["sentences_through"][len(pre_files) - 1]
        base = {"model": str(a.model), "threads": 2, "drugs": str(drugs), "runtime": a.runtime, "quantize": a.quantize}
        plan = [("student alone", "prefix", {"prefilter": False}),
                ("+ drug prefilter", "prefix", {"prefilter": True}),
                ("+ drug prefilter + gate", "prefix", {"prefilter": True, "gate": str(work / "gate")}),
                ("+ drug prefilter", "stream", {"prefilter": True}),
                ("+ drug prefilter + gate", "stream", {"prefilter": True, "gate": str(work / "gate")})]
        if a.ray:
            plan.append(("+ drug prefilter + gate, Ray 2 workers", "stream",
                         {"prefilter": True, "gate": str(work / "gate"), "engine": "ray", "workers": 2, "threads": 1}))
        for label, part, extra in plan:
            files = pre_files if part == "prefix" else st["files"]
            n = pre_sent if part == "prefix" else st["sentences"]
            out = work / f"out_{name}_{len(rows)}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            print(f"stream {name}: {label} on {part} ({n:,} sentences) ...", flush=True)
            r = _subprocess({**base, **extra, "name": label, "files": files, "out": str(out)})
            if part == "prefix":
                recall_sets[(name, label)] = _listed_relations(out)
            c = r["cascade"]
            rows.append({"stream": name, "row": label, "part": part, "sentences": n,
                         "abstracts": r["articles"], "seconds": round(r["seconds"], 1),
                         "sentences_per_s": round(n / r["seconds"], 1),
                         "abstracts_per_s": round(r["articles"] / r["seconds"], 2),
                         "passed_to_student": round(c["sentences_to_student"] / n, 4) if c else 1.0,
                         "peak_rss_mb": round(r["peak_rss_mb"]),
                         "core_hours_per_million_abstracts": round(2 * r["seconds"] / r["articles"] * 1e6 / 3600, 2)})
        alone = next(r for r in rows if r["stream"] == name and r["row"] == "student alone")["sentences_per_s"]
        for row in rows:
            if row["stream"] == name and row["row"] != "student alone":
                row["x_student_alone"] = round(row["sentences_per_s"] / alone, 2)
                # the ideal cascade: the student's rate over the share of sentences it is passed
                row["share_of_ideal_rate"] = round(row["sentences_per_s"] / (alone / max(row["passed_to_student"], 1e-9)), 3)
        ref = recall_sets[(name, "student alone")]
        for row in rows:
            if row["stream"] == name and row["part"] == "prefix" and row["row"] != "student alone":
                got = recall_sets[(name, row["row"])]
                row["listed_relation_recall_vs_student"] = round(len(got & ref) / len(ref), 4) if ref else None
    teacher = None
    if a.teacher:
        from ade_distill.workflows import label

        sample = train[: a.teacher_sample]
        cache = work / "teacher-cache.sqlite"  # a timing: never answered from an earlier run's cache
        for old in [*work.glob("teacher-cache.sqlite*"), *work.glob("teacher.*")]:  # nor resumed from its output
            old.unlink()
        t = time.perf_counter()
        label(sample, work / "teacher.jsonl", a.teacher, cache=str(cache), progress=False)
        teacher = {"sentences": len(sample), "seconds": round(time.perf_counter() - t, 1)}
        teacher["sentences_per_s"] = round(len(sample) / teacher["seconds"], 4)
        for row in rows:
            row["x_teacher"] = round(row["sentences_per_s"] / teacher["sentences_per_s"])
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    cmd = "python benchmarks/screen_speed.py " + " ".join(shown(x) for x in sys.argv[1:])
    result = {"command": cmd, "git": commit, "cpus": os.cpu_count(), "gate": gate.measured,
              "drug_list": shown(drugs), "teacher": teacher, "rows": rows}
    a.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = ["# Screening speed: the cascade in front of the student\n", f"Made by `{cmd}` (git {commit}), "
             f"{os.cpu_count()} CPUs, one run; the student on {a.runtime}{' ' + a.quantize if a.quantize else ''}. Drug list: {shown(drugs)}. Gate on teacher labels only: "
             f"held-out recall {gate.measured['validation_recall']:.3f}, pass rate {gate.measured['validation_pass_rate']:.3f}.",
             "", "| stream | row | on | sentences | sentences/s | abstracts/s | passed to the student | listed-drug relation "
             "recall vs student alone | x student alone | share of the ideal rate | peak MB | core-h per M abstracts |"
             + (" x teacher |" if teacher else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if teacher else "")]
    for r in rows:
        rec = r.get("listed_relation_recall_vs_student")
        lines.append(f"| {r['stream']} | {r['row']} | {r['part']} | {r['sentences']:,} | {r['sentences_per_s']:,.1f} | "
                     f"{r['abstracts_per_s']:,.2f} | {r['passed_to_student']:.1%} | "
                     f"{'-' if rec is None else f'{rec:.1%}'} | {r.get('x_student_alone', 1.0):.2f} | "
                     f"{'-' if 'share_of_ideal_rate' not in r else format(r['share_of_ideal_rate'], '.0%')} | {r['peak_rss_mb']:,} | "
                     f"{r['core_hours_per_million_abstracts']:,.2f} |" + (f" {r['x_teacher']:,} |" if teacher else ""))
    lines += ["", "## Against the bar of issue #32 (the full cascade: prefilter + gate, whole stream)", "",
              "| check | measured | bar | met |", "|---|---|---|---|"]
    for name, x_alone, x_teacher, sps in (("A", 5, 3000, None), ("B", None, 10000, 3000)):
        full = next((r for r in rows if r["stream"] == name and r["row"] == "+ drug prefilter + gate"
                     and r["part"] == "stream"), None)
        pre = next((r for r in rows if r["stream"] == name and r["row"] == "+ drug prefilter + gate"
                    and r["part"] == "prefix"), None)
        if full is None:
            continue
        checks = []
        if x_alone:
            checks.append(("x the student alone", full["x_student_alone"], x_alone))
        if sps:
            checks.append(("sentences/s end to end", full["sentences_per_s"], sps))
        if teacher:
            checks.append(("x the teacher", full["x_teacher"], x_teacher))
        checks.append(("share of the ideal rate", full["share_of_ideal_rate"], 0.70))
        if pre and pre.get("listed_relation_recall_vs_student") is not None:
            checks.append(("listed-drug relation recall vs the student alone", pre["listed_relation_recall_vs_student"],
                           0.99))
        for what, got, bar in checks:
            lines.append(f"| stream {name}: {what} | {got:,} | >= {bar:,} | {'yes' if got >= bar else 'no'} |")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
