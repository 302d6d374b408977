"""Screening at scale: the student on the `screen` path (local, Ray Data with 1 and 2 workers)
and the teacher LLM, measured side by side in one run, and a cost model for all of PubMed.

  python benchmarks/screen_scale.py --model runs/ade_10fold/fold-0/train-distilled/model \
      [--teacher pipelines/teachers/qwen1.5b-llamacpp.yaml] [--teacher-n 24] [--shards 8] \
      [--out reports/screen/scale.json]

Input: every ADE-Corpus-V2 document (its positive and ADE-NEG sentences grouped by PMID into one
abstract each; the corpus holds selected sentences, not whole abstracts) written as gzipped
PubMed XML update files into a temporary folder (nothing of the corpus is kept), ``--shards``
of them. Each student configuration runs ``ade-distill screen`` on them from an empty output
folder; its whole-run rate is sentences over wall seconds including starting Ray and loading the
model in every worker. The teacher labels the first ``--teacher-n`` sentences of the same
documents from an empty cache, server start included (llama.cpp, Qwen2.5-Coder-1.5B Q4_K_M:
the project's teacher). Run it with nothing else on the machine.

Cost model: PubMed's size is an input (``--pubmed-sentences``; default 300 million, about 36
million abstracts: the estimate in issue #15), as are the API list prices (per million tokens,
as listed in ../shared/NOTES.md on 2026-11-28). Everything else comes from this run's
measurements, except the GPU student rate, read from the committed H100 measurement in
reports/student/gpu_student.json (bf16, batch 64, the fold 0 test sentences).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.ingest import ingest_ade_corpus  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402

# USD per million tokens (input, output), list prices as noted in ../shared/NOTES.md (2026-11-28)
PRICES = {"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.0), "gpt-4.1": (2.0, 8.0)}


def write_shards(folder: Path, n_shards: int, max_articles: int | None = None) -> tuple[int, int, list]:
    """ADE-Corpus-V2 documents as PubMed XML update files; returns (articles, sentences, the
    first sentences in document order for the teacher)."""
    from lxml import etree

    docs: dict[str, list] = {}
    for s in ingest_ade_corpus(default_shared_data() / "ade_corpus_v2"):
        docs.setdefault(s.doc_id, []).append(s)
    pmids = sorted(docs, key=int)[:max_articles]
    per = -(-len(pmids) // n_shards)
    for k in range(n_shards):
        root = etree.Element("PubmedArticleSet")
        for pmid in pmids[k * per:(k + 1) * per]:
            art = etree.SubElement(root, "PubmedArticle")
            cit = etree.SubElement(art, "MedlineCitation")
            etree.SubElement(cit, "PMID", Version="1").text = pmid
            a = etree.SubElement(cit, "Article")
            j = etree.SubElement(a, "Journal")
            etree.SubElement(j, "Title").text = "ADE-Corpus-V2"
            etree.SubElement(a, "ArticleTitle").text = f"ADE-Corpus-V2 document {pmid}"
            ab = etree.SubElement(a, "Abstract")
            etree.SubElement(ab, "AbstractText").text = " ".join(s.text for s in docs[pmid])
        (folder / f"ade{k:04d}.xml.gz").write_bytes(gzip.compress(etree.tostring(root, xml_declaration=True,
                                                                                 encoding="utf-8")))
    first = [s for p in pmids for s in docs[p]]
    return len(pmids), len(first), first


def run_screen(model: Path, inputs: Path, out: Path, **kw) -> dict:
    from ade_distill.workflows.screen import screen

    t0 = time.monotonic()
    r = screen(model, [inputs], out, **kw)
    wall = time.monotonic() - t0
    if kw.get("engine") == "ray":
        import ray

        ray.shutdown()
    return {"articles": r.articles, "sentences": r.sentences, "rows": r.rows, "wall_s": round(wall, 1),
            "sentences_per_s": round(r.sentences / wall, 1), "problems": len(r.problems)}


def run_teacher(config: str, sentences: list, work: Path) -> dict:
    from ade_distill.teacher import Teacher, TeacherConfig

    cfg = TeacherConfig.from_yaml(config)
    cfg = TeacherConfig.model_validate({**cfg.model_dump(), "cache": str(work / "teacher-cache.sqlite")})
    t0 = time.monotonic()
    with Teacher(cfg) as teacher:
        stats = teacher.label(sentences, work / "teacher.jsonl", progress=False)
    wall = time.monotonic() - t0
    return {"model": cfg.model, "server": cfg.server, "sentences": len(sentences), "labelled": stats.labelled,
            "failed": stats.failed, "wall_s": round(wall, 1), "sentences_per_s": round(len(sentences) / wall, 3),
            "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens}


def cost_model(student: dict, teacher: dict, gpu: dict | None, sentences: float, cores: int) -> list[dict]:
    rows = []

    def add(what, rate, hours_kind, note):
        hours = sentences / rate / 3600
        rows.append({"what": what, "sentences_per_s": rate, "machine_hours": round(hours, 1),
                     "core_hours": round(hours * cores, 1) if hours_kind == "cpu" else None,
                     "gpu_hours": round(hours, 1) if hours_kind == "gpu" else None,
                     "days_on_one_machine": round(hours / 24, 1), "usd": None, "note": note})

    add(f"student, {student['config']} (this machine)", student["sentences_per_s"], "cpu", "measured in this run")
    if gpu:
        add(f"student, one {gpu['device']} (bf16)", gpu["sentences_per_s"], "gpu", gpu["source"])
    add("teacher LLM, local (this machine)", teacher["sentences_per_s"], "cpu", "measured in this run")
    p_tok = teacher["prompt_tokens"] / max(teacher["labelled"], 1)
    c_tok = teacher["completion_tokens"] / max(teacher["labelled"], 1)
    for name, (pin, pout) in PRICES.items():
        usd = sentences * (p_tok * pin + c_tok * pout) / 1e6
        rows.append({"what": f"teacher via the {name} API (list price)", "sentences_per_s": None,
                     "machine_hours": None, "core_hours": None, "gpu_hours": None, "days_on_one_machine": None,
                     "usd": round(usd), "usd_batch_api": round(usd / 2),
                     "note": f"{p_tok:.0f} prompt + {c_tok:.1f} completion tokens a sentence (measured, "
                             f"Qwen tokenizer), ${pin}/${pout} per 1M"})
    return rows


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    runs = result["student_runs"] + [{"config": "teacher LLM (local)", **result["teacher"]}]
    names = [r["config"] for r in runs]
    rates = [r["sentences_per_s"] for r in runs]
    a.barh(names, rates, color=["#2563eb"] * (len(runs) - 1) + ["#c2410c"])
    a.set_xscale("log")
    a.set_xlabel("sentences / s, whole run (log scale)")
    a.set_title(f"Measured side by side on {result['cpus']} cores")
    for y, v in enumerate(rates):
        a.text(v, y, f" {v:,.0f}" if v >= 10 else f" {v:.3g}", va="center", fontsize=8)
    a.invert_yaxis()
    cm = [r for r in result["cost_model"] if r["machine_hours"]]
    b.barh([r["what"] for r in cm], [r["machine_hours"] / 24 for r in cm],
           color=["#c2410c" if "teacher" in r["what"] else "#2563eb" for r in cm])
    b.set_xscale("log")
    b.set_xlabel("days for all of PubMed on one machine (log scale)")
    b.set_title(f"{result['pubmed_sentences'] / 1e6:,.0f} M sentences")
    for y, r in enumerate(cm):
        d = r["machine_hours"] / 24
        b.text(d, y, f" {d:,.0f}" if d >= 10 else f" {d:.3g}", va="center", fontsize=8)
    b.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--teacher", default="pipelines/teachers/qwen1.5b-llamacpp.yaml")
    ap.add_argument("--teacher-n", type=int, default=24)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--runtime", default="torch", choices=["torch", "onnx"])
    ap.add_argument("--max-articles", type=int, help="the first N documents only (a quick check)")
    ap.add_argument("--pubmed-sentences", type=float, default=300e6)
    ap.add_argument("--gpu-json", type=Path, default=REPO / "reports" / "student" / "gpu_student.json")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "screen" / "scale.json")
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="ade-scale-"))
    inputs = work / "in"
    inputs.mkdir()
    n_art, n_sent, sents = write_shards(inputs, a.shards, a.max_articles)
    print(f"{n_art:,} articles, {n_sent:,} corpus sentences in {a.shards} shard files", flush=True)
    configs = [("local, 1 process, 2 threads", {"engine": "local", "threads": 2}),
               ("Ray Data, 1 worker x 2 threads", {"engine": "ray", "workers": 1, "threads": 2}),
               ("Ray Data, 2 workers x 1 thread", {"engine": "ray", "workers": 2, "threads": 1})]
    runs = []
    for k, (name, kw) in enumerate(configs):
        r = run_screen(a.model, inputs, work / f"screen-{k}", runtime=a.runtime, **kw)
        runs.append({"config": name, **kw, **r})
        print(json.dumps(runs[-1]), flush=True)
    teacher = run_teacher(a.teacher, sents[:a.teacher_n], work)
    print(json.dumps(teacher), flush=True)
    best = max(runs, key=lambda r: r["sentences_per_s"])
    gpu = None
    if a.gpu_json.exists():
        g = json.loads(a.gpu_json.read_text())
        rates = [(k, v["infer_sentences_per_second_bf16_b64"]) for k, v in g.items()
                 if isinstance(v, dict) and "infer_sentences_per_second_bf16_b64" in v]
        if rates:
            k, v = max(rates, key=lambda kv: kv[1])
            gpu = {"device": g.get("device", "GPU"), "sentences_per_s": round(v, 1),
                   "source": f"{a.gpu_json.relative_to(REPO)} ({k}, committed earlier; not this run)"}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    result = {"command": "python benchmarks/screen_scale.py " + " ".join(sys.argv[1:]), "git_commit": commit,
              "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": cores, "platform": platform.platform(),
              "model": str(a.model), "runtime": a.runtime, "articles": n_art, "corpus_sentences": n_sent,
              "student_runs": runs, "teacher": teacher,
              "student_to_teacher": round(best["sentences_per_s"] / teacher["sentences_per_s"]),
              "ray_2_vs_1_worker": round(runs[2]["sentences_per_s"] / runs[1]["sentences_per_s"], 2),
              "pubmed_sentences": a.pubmed_sentences, "prices_usd_per_1m_tokens": PRICES}
    result["cost_model"] = cost_model(best, teacher, gpu, a.pubmed_sentences, cores)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    chart(result, a.out.with_suffix(".png"))
    md = ["# Screening at scale: student on Ray, teacher LLM, and what all of PubMed would cost", "",
          f"Made by `{result['command']}` (git {commit}, {result['time']}) on {cores} cores, nothing else running. "
          f"Input: {n_art:,} ADE-Corpus-V2 documents ({n_sent:,} corpus sentences, grouped by PMID into one abstract "
          f"each) as {a.shards} gzipped PubMed XML files; each student row is `ade-distill screen` from an empty "
          f"output folder, whole run (Ray start and model loading included; the sentence count is the splitter's). "
          f"The teacher row labels the first {teacher['sentences']} of the same sentences from an empty cache, "
          f"server start included.", "",
          "| configuration | sentences | wall s | sentences/s |", "|---|---|---|---|"]
    md += [f"| student: {r['config']} | {r['sentences']:,} | {r['wall_s']} | {r['sentences_per_s']:,.1f} |" for r in runs]
    md += [f"| teacher LLM: {teacher['model']} ({teacher['server']}, {cores} threads) | {teacher['sentences']} | "
           f"{teacher['wall_s']} | {teacher['sentences_per_s']:.3f} |", "",
           f"Student (fastest configuration) to teacher throughput: **{result['student_to_teacher']:,}x**; 2 Ray "
           f"workers against 1: {result['ray_2_vs_1_worker']}x.", "",
           f"## All of PubMed ({a.pubmed_sentences / 1e6:,.0f} million sentences, an input: about 36 million "
           f"abstracts)", "",
           "| what | sentences/s | core-hours | GPU-hours | days on one machine | USD (list) | USD (Batch API) | from |",
           "|---|---|---|---|---|---|---|---|"]
    for r in result["cost_model"]:
        def f(v, fmt="{:,.0f}"):
            return "-" if v is None else fmt.format(v)
        md.append(f"| {r['what']} | {f(r['sentences_per_s'], '{:,.3g}')} | {f(r['core_hours'])} | {f(r['gpu_hours'])} | "
                  f"{f(r['days_on_one_machine'], '{:,.1f}')} | {f(r['usd'])} | {f(r.get('usd_batch_api'))} | {r['note']} |")
    md += ["", f"![throughput and PubMed cost]({a.out.with_suffix('.png').name})", "",
           "Core-hours are machine hours times this machine's cores (what a cloud bill counts). The API rows price "
           "the teacher's measured tokens a sentence (Qwen's tokenizer; OpenAI's counts differ somewhat) at the "
           "list prices in `scale.json`; they exclude retries and any prompt caching discount."]
    a.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
