"""`ade-distill`: a thin command-line layer over the Python API."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from . import __version__
from .errors import AdeDistillError
from .schema import Document, Sentence, read_sentences, write_jsonl

log = logging.getLogger("ade_distill")


class CliError(AdeDistillError):
    """A user-facing error: printed as one line, exit status 2."""


def _progress(items: Iterable, desc: str, unit: str = "sentence") -> Iterator:
    from tqdm import tqdm

    # tqdm goes to stderr and switches itself off when stderr is not a terminal.
    yield from tqdm(items, desc=desc, unit=f" {unit}s", disable=None, leave=False)


def _n(x: int) -> str:
    return f"{x:,}"


def _write_sentences(out: Path, sentences: Iterable[Sentence], desc: str) -> int:
    return write_jsonl(out, _progress(sentences, desc))


def _sentences_from_documents(docs: Iterable[Document], counts: Counter,
                              documents_out: Path | None) -> Iterator[Sentence]:
    """Split documents into sentences, optionally teeing the documents to a JSONL file."""
    from .schema import atomic_open, dump_record
    from .text import split_document

    def run(fh=None) -> Iterator[Sentence]:
        for doc in docs:
            counts["documents"] += 1
            if fh is not None:
                fh.write(dump_record(doc) + "\n")
            yield from split_document(doc)

    if documents_out is None:
        yield from run()
    else:
        with atomic_open(documents_out) as fh:
            yield from run(fh)


def _nonempty(items: Iterable, what: str, problems=None, strict: bool = False) -> Iterator:
    """Pass ``items`` through; at their end raise CliError if there were none, or if ``strict``
    and bad records were met, so that the output being written is discarded."""
    n = 0
    for n, item in enumerate(items, 1):
        yield item
    if n == 0:
        why = f" ({problems.messages[-1]})" if problems is not None and len(problems) else ""
        raise CliError(f"no {what} read{why}")
    if strict and problems is not None and len(problems):
        raise CliError(f"--strict: {_n(len(problems))} bad record(s) found (each named in a warning above); "
                       "nothing written")


def _report_problems(problems, strict: bool) -> None:
    if len(problems):
        print(f"{_n(len(problems))} bad record(s) skipped (each named in a warning above)",
              file=sys.stderr)
        if strict:
            raise CliError("--strict: bad records found")


def cmd_ingest_ade_corpus(args: argparse.Namespace) -> None:
    from .ingest import ingest_ade_corpus
    from .ingest.ade_corpus import AdeCorpusStats

    stats = AdeCorpusStats()
    n = _write_sentences(args.out, ingest_ade_corpus(args.source, negatives=not args.no_negatives,
                                                     doses=args.with_doses, stats=stats),
                         "ADE corpus")
    s = stats.summary()
    print(f"ADE-Corpus-V2 {args.source}")
    print(f"  positive sentences  {_n(s['positive_sentences'])}")
    print(f"  drug-ADE relations  {_n(s['relations'])}")
    print(f"  entities            DRUG {_n(s['entities']['DRUG'])}, ADE {_n(s['entities']['ADE'])}")
    if not args.no_negatives:
        print(f"  negative sentences  {_n(s['negative_sentences'])} "
              f"({_n(s['negative_duplicates_dropped'])} duplicate lines dropped)")
    if args.with_doses:
        print(f"  drug doses (meta)   {_n(s['doses'])}")
    print(f"  documents (PMIDs)   {_n(s['documents'])}")
    print(f"wrote {_n(n)} sentences to {args.out}")
    _report_problems(stats.problems, args.strict)


def cmd_ingest_ade_splits(args: argparse.Namespace) -> None:
    from .ingest import Problems, ingest_ade_splits

    problems = Problems()
    fold = None if args.fold == "full" else int(args.fold)
    counts: Counter = Counter()

    def counted(sents: Iterable[Sentence]) -> Iterator[Sentence]:
        for s in sents:
            counts["relations"] += len(s.relations)
            counts.update(e.label for e in s.entities)
            yield s

    n = _write_sentences(args.out, counted(ingest_ade_splits(
        args.source, fold, args.part, corpus=args.corpus, problems=problems)), "ADE split")
    where = "ade_full" if fold is None else f"fold {fold} {args.part}"
    print(f"ADE splits {where}: {_n(n)} sentences, {_n(counts['relations'])} relations, "
          f"DRUG {_n(counts['DRUG'])}, ADE {_n(counts['ADE'])} entities -> {args.out}")
    _report_problems(problems, args.strict)


def cmd_ingest_pubmed(args: argparse.Namespace) -> None:
    from .ingest import EUtilsClient, InputError, Problems, require_file
    from .ingest.pubmed import ingest_pubmed

    problems = Problems()
    if not args.input and not args.query:
        raise CliError("ingest pubmed: give one or more files (PubMed XML or MEDLINE) or --query")

    def documents() -> Iterator[Document]:
        # One bad file is reported and skipped, the files before and after it still count; a
        # PMID met again (in a second file) is reported and its later copy skipped.
        seen: dict[str, str] = {}
        for path in args.input:  # a missing file is a mistake in the command: stop before reading any
            require_file(path, "PubMed file")
        for path in args.input:
            try:
                for doc in ingest_pubmed(path, problems):
                    if doc.id in seen:
                        problems.add(f"{path}: PMID {doc.id} already read from {seen[doc.id]}; this copy skipped")
                        continue
                    seen[doc.id] = str(path)
                    yield doc
            except InputError as exc:
                if len(args.input) == 1:
                    raise
                problems.add(f"{exc} (rest of this file skipped)")
        if args.query:
            key = os.environ.get(args.api_key_env) if args.api_key_env else None
            with EUtilsClient(api_key=key, email=args.email, base_url=args.eutils_url) as client:
                yield from client.fetch(args.query, max_records=args.max, problems=problems)

    counts: Counter = Counter()
    n = _write_sentences(args.out, _sentences_from_documents(
        _nonempty(documents(), "PubMed documents", problems, args.strict), counts, args.documents_out), "PubMed")
    print(f"PubMed: {_n(counts['documents'])} documents, {_n(n)} sentences -> {args.out}")
    _report_problems(problems, args.strict)


def cmd_ingest_text(args: argparse.Namespace) -> None:
    from .ingest import Problems, ingest_text

    problems = Problems()
    docs = ingest_text(args.input, id_column=args.id_column, text_column=args.text_column,
                       title_column=args.title_column, problems=problems)
    counts: Counter = Counter()
    n = _write_sentences(args.out, _sentences_from_documents(
        _nonempty(docs, f"documents from {args.input}", problems, args.strict), counts, args.documents_out),
        "text")
    print(f"text: {_n(counts['documents'])} documents, {_n(n)} sentences -> {args.out}")
    _report_problems(problems, args.strict)


def _summarise(paths: Sequence[Path]) -> Counter:
    total: Counter = Counter()
    bad: list[str] = []
    for path in paths:
        counts: Counter = Counter()
        for s in read_sentences(path, on_error=lambda e: bad.append(str(e))):
            counts["sentences"] += 1
            counts["with_ade"] += bool(s.relations)
            counts["relations"] += len(s.relations)
            counts.update(e.label for e in s.entities)
            counts[f"source {s.source.split(':')[0]}"] += 1
        if not counts["sentences"] and not bad:
            bad.append(f"{path}: no records (an empty file)")
        print(f"{path}: {_n(counts['sentences'])} sentences ({_n(counts['with_ade'])} with an ADE "
              f"relation), {_n(counts['relations'])} relations, DRUG {_n(counts['DRUG'])}, "
              f"ADE {_n(counts['ADE'])} entities")
        total.update(counts)
    for msg in bad:
        print(f"invalid: {msg}", file=sys.stderr)
    if bad:
        raise CliError(f"{len(bad)} invalid record(s)")
    return total


def cmd_validate(args: argparse.Namespace) -> None:
    _summarise(args.files)
    print("all records valid")


def cmd_run(args: argparse.Namespace) -> None:
    from .pipeline import Pipeline, StageFailed

    try:
        pipe = Pipeline(args.file, run_dir=args.run_dir)
        manifest = pipe.run(start=args.start, only=args.only, force=args.force)
    except StageFailed as exc:
        print(f"ade-distill: error: {exc}", file=sys.stderr)
        print(f"(earlier stages' outputs are kept; the manifest marks the stage failed: "
              f"{Path(args.run_dir or '') if args.run_dir else 'runs/<name>'}/manifest.json)", file=sys.stderr)
        raise SystemExit(1) from exc
    partial = [n for n, e in manifest["stages"].items() if e.get("status") == "partial"]
    if partial:
        print(f"finished with failures in: {', '.join(partial)} (rerun to retry them)", file=sys.stderr)
        raise SystemExit(1)


def cmd_demo(args: argparse.Namespace) -> None:
    """The main job on the embedded sample: the quickstart pipeline."""
    from .pipeline import REPO_DIR

    path = REPO_DIR / "pipelines" / "quickstart.yaml"
    if not path.exists():
        raise CliError(f"{path}: not found (the demo runs from a source checkout: git clone, then make demo)")
    print(f"ade-distill {__version__} demo: {path}")
    args.file, args.start, args.only, args.force = path, None, None, False
    cmd_run(args)


def _parse_preds(specs: Sequence[str]) -> dict[str, Path]:
    preds: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise CliError(f"--pred {spec!r}: expected NAME=FILE")
        if name in preds:
            raise CliError(f"--pred: system name {name!r} given twice")
        preds[name] = Path(path)
    return preds


def _info_for(path: Path) -> dict | None:
    """Optional sidecar <pred>.info.json (parameters, sentences_per_second, cost...)."""
    import json

    side = path.with_name(path.name.removesuffix(".jsonl") + ".info.json")
    if side.exists():
        try:
            return json.loads(side.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CliError(f"{side}: invalid JSON ({exc.msg})") from exc
    return None


def cmd_evaluate(args: argparse.Namespace) -> None:
    import json

    from .evaluate import evaluate
    from .evaluate.metrics import EvaluationError
    from .evaluate.report import _f1_ci
    from .schema import atomic_open

    preds = _parse_preds(args.pred)
    gold = list(read_sentences(args.gold))
    info = {name: i for name, p in preds.items() if (i := _info_for(p))}
    try:
        metrics = evaluate(gold, {name: read_sentences(p) for name, p in preds.items()},
                           allow_missing=args.allow_missing, n_bootstrap=args.bootstrap,
                           seed=args.seed, info=info)
    except EvaluationError as exc:
        raise CliError(str(exc)) from exc
    metrics["inputs"] = {"gold": str(args.gold), "predictions": {k: str(v) for k, v in preds.items()}}
    with atomic_open(args.out) as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
    print(f"{len(gold):,} gold sentences from {args.gold}")
    print(f"{'system':<24} {'entity F1':>22} {'relation F1':>22} {'relation text F1':>18}")
    for name, s in metrics["systems"].items():
        miss = f"  ({s['n_missing']:,} missing)" if s["n_missing"] else ""
        print(f"{name:<24} {_f1_ci(s['entity']['strict']):>22} {_f1_ci(s['relation']['strict']):>22} "
              f"{_f1_ci(s['relation']['text']):>18}{miss}")
    print(f"(strict match, %, 95% bootstrap interval) -> {args.out}")


def cmd_report(args: argparse.Namespace) -> None:
    import json
    import shlex

    from .evaluate.report import write_report

    try:
        metrics = json.loads(Path(args.metrics).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{args.metrics}: no such file") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{args.metrics}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if "systems" not in metrics or "n_sentences" not in metrics:
        raise CliError(f"{args.metrics}: not a metrics file from `ade-distill evaluate`")
    preds = _parse_preds(args.pred)
    unknown = set(preds) - set(metrics["systems"])
    if unknown:
        raise CliError(f"--pred names systems not in {args.metrics}: {', '.join(sorted(unknown))}")
    gold = list(read_sentences(args.gold)) if args.gold else None
    if preds and gold is None:
        raise CliError("--pred needs --gold for the error analysis")
    pred_sents = {name: list(read_sentences(p)) for name, p in preds.items()}
    command = "ade-distill " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if args.show_command else None
    paths = write_report(metrics, args.out, gold=gold, preds=pred_sents or None,
                         excerpts=not args.no_excerpts, title=args.title, command=command)
    print(f"report: {paths['html']}  ({paths['md'].name}, {paths['metrics'].name} beside it)")


def _teacher_config(path: Path | None, overrides: dict):
    from .config import ConfigError
    from .teacher import TeacherConfig

    try:
        cfg = TeacherConfig.from_yaml(path) if path else TeacherConfig()
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    return cfg.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def cmd_label(args: argparse.Namespace) -> None:
    from .teacher import Teacher
    from .teacher.labeler import write_run_summary

    cfg = _teacher_config(args.teacher, {"cache": args.cache})
    sentences = list(read_sentences(args.input))
    if not sentences:
        raise CliError(f"{args.input}: no sentences to label (an empty file)")
    with Teacher(cfg) as teacher:
        try:
            stats = teacher.label(sentences, args.out, failures=args.failures, limit=args.limit,
                                  checkpoint_every=args.checkpoint_every)
        except Exception as exc:  # server start failure, bad key...: one line, named
            from .teacher.server import ServerError

            if isinstance(exc, (ServerError, ValueError)):
                raise CliError(f"label: {exc}") from exc
            raise
    stem = str(args.out).removesuffix(".jsonl")
    if stats.labelled or not Path(stem + ".run.json").exists():  # a no-op rerun keeps the real numbers
        write_run_summary(stats, cfg, stem + ".run.json")
        if stats.labelled and stats.seconds:
            import json

            priced = cfg.price(teacher.model_name) is not None
            cost = stats.cost_usd if priced else stats.reference_cost_usd
            info = {"sentences_per_second": stats.labelled / stats.seconds,
                    "cost_usd_per_1k_sentences": 1000 * cost / stats.labelled,
                    "cost_basis": "billed" if priced else f"same tokens at {cfg.reference_model} prices",
                    "model": teacher.model_name}
            Path(stem + ".info.json").write_text(json.dumps(info, indent=2) + "\n")
    rate = f"{stats.labelled / stats.seconds:.2f} sentences/s" if stats.seconds else "-"
    print(f"teacher {teacher.model_name}: {stats.labelled:,} labelled, {stats.failed:,} failed, "
          f"{stats.skipped_existing:,} already done; {stats.calls:,} calls, {stats.cache_hits:,} cache hits; "
          f"{stats.prompt_tokens:,} prompt + {stats.completion_tokens:,} completion tokens; "
          f"cost ${stats.cost_usd:.4f} (at {cfg.reference_model} prices ${stats.reference_cost_usd:.4f}); "
          f"{rate}; hallucinated strings {stats.hallucinated}/{stats.strings} -> {args.out}")
    if stats.failed:
        print(f"{stats.failed:,} sentence(s) failed ({dict(stats.failure_reasons)}); see the failures file; "
              "rerun the same command to retry only those", file=sys.stderr)
        raise SystemExit(1)


def cmd_teacher_serve(args: argparse.Namespace) -> None:
    import time

    from .teacher.server import LlamaServer, ServerError

    try:
        with LlamaServer(args.model, n_ctx=args.n_ctx, n_threads=args.threads, port=args.port,
                         impl=args.server, parallel=args.parallel) as srv:
            print(f"serving {srv.model_path.name} at {srv.base_url} (model id {srv.model_alias!r}, {args.server}, "
                  f"{args.parallel} slot(s)); Ctrl-C stops it", flush=True)
            while srv.alive():
                time.sleep(1)
            raise CliError("the server exited")
    except ServerError as exc:
        raise CliError(str(exc)) from exc


def cmd_teacher_rescore(args: argparse.Namespace) -> None:
    from .teacher.rescore import rescore

    cfg = _teacher_config(args.teacher, {"cache": args.cache})
    if cfg.backend == "openai":
        raise CliError("teacher rescore: needs a local GGUF teacher (backend local-server); an API teacher "
                       "gives logprobs directly with confidence: logprobs")
    counts = rescore(read_sentences(args.input), cfg, args.out)
    print(f"rescored {counts['scored']:,} sentences in {counts['seconds']:.0f} s -> {args.out}"
          + (f"; {counts['failed']:,} failed (see {str(args.out).removesuffix('.jsonl')}.failures.jsonl)"
             if counts["failed"] else ""))
    if counts["failed"]:
        raise SystemExit(1)


def cmd_teacher_batch(args: argparse.Namespace) -> None:
    from .teacher.labeler import LabelStats, export_batch, import_batch, import_replay

    cfg = _teacher_config(args.teacher, {})
    if args.action == "batch-export":
        n = export_batch(read_sentences(args.input), cfg, args.out)
        print(f"wrote {n:,} Batch API requests to {args.out} (upload with the OpenAI Batch API)")
        return
    stats = LabelStats()
    src = args.results
    gen = (import_batch(read_sentences(args.input), src, cfg, stats) if args.action == "batch-import"
           else import_replay(read_sentences(args.input), src, cfg, name=args.name, stats=stats))
    failures: list[tuple[str, str]] = []

    def labelled():
        for item in gen:
            if isinstance(item, tuple):
                failures.append(item)
            else:
                yield item

    n = write_jsonl(args.out, labelled())
    if failures:
        import json

        from .schema import atomic_open

        fpath = Path(str(args.out).removesuffix(".jsonl") + ".failures.jsonl")
        with atomic_open(fpath) as fh:
            for sid, reason in failures:
                fh.write(json.dumps({"id": sid, "reason": reason}) + "\n")
    print(f"{n:,} sentences labelled, {len(failures):,} failed, hallucinated strings "
          f"{stats.hallucinated}/{stats.strings} -> {args.out}")
    if failures:
        raise SystemExit(1)


def cmd_train(args: argparse.Namespace) -> None:
    from .config import ConfigError
    from .student import TrainConfig, train_student

    try:
        cfg = TrainConfig.from_yaml(args.config) if args.config else TrainConfig()
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    upd = {"model": args.model, "epochs": args.epochs}
    cfg = cfg.model_copy(update={k: v for k, v in upd.items() if v is not None})
    train = list(read_sentences(args.train))
    dev = list(read_sentences(args.dev)) if args.dev else None
    if any(s.source == "unlabeled" for s in train):
        raise CliError(f"{args.train}: holds unlabeled sentences; label them with the teacher first")
    out = train_student(train, dev, cfg, args.out, resume=args.resume, name=args.name)
    print(f"student saved to {out} (load with AutoModelForTokenClassification.from_pretrained or "
          f"ade_distill.student.Extractor.load)")


def cmd_compress(args: argparse.Namespace) -> None:
    from .config import ConfigError
    from .student.compress import CompressConfig, apply_method, compress_student

    if args.method != "distill":
        if args.share is None:
            raise CliError(f"compress --method {args.method}: give --share (prune: share of weights zeroed; "
                           "low-rank: share of each layer's rank kept)")
        try:
            info = apply_method(args.teacher, args.method, args.share, args.out)
        except (FileNotFoundError, ValueError) as exc:
            raise CliError(str(exc)) from exc
        print(f"{args.method} {args.share:g}: {info} -> {args.out}")
        return
    if args.train is None:
        raise CliError("compress --method distill needs --train (the sentences the teacher-student was trained on)")
    try:
        cfg = CompressConfig.from_yaml(args.config) if args.config else CompressConfig()
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    upd = {"layers": args.layers, "hidden": args.hidden, "epochs": args.epochs}
    cfg = cfg.model_copy(update={k: v for k, v in upd.items() if v is not None})
    train = list(read_sentences(args.train))
    unlabeled = []
    if args.unlabeled:
        train_ids = {s.id for s in train}
        unlabeled = [s for s in read_sentences(args.unlabeled) if s.id not in train_ids]
    out = compress_student(args.teacher, train, cfg, args.out, unlabeled=unlabeled)
    print(f"compressed student saved to {out}")


def cmd_rank(args: argparse.Namespace) -> None:
    import json
    import shlex

    from .evaluate.rank import rank, write_rank

    if not args.gold and not args.run:
        raise CliError("rank: give --gold (with --model/--pred) or --run (a pipeline run folder)")
    gold = list(read_sentences(args.gold or args.run / "ingest" / "test.jsonl"))
    students: dict = {}
    preds: dict = {}
    if args.run:  # every model of a pipeline run: its students (fp32 and int8) and its teacher
        for d in sorted(args.run.glob("train-*/model")):
            name = d.parent.name.removeprefix("train-")
            students[name] = (str(d), None)
            students[f"{name} int8"] = (str(d), "int8")
        metrics = args.run / "evaluate" / "metrics.json"
        info = {}
        if metrics.exists():
            info = {k: v.get("info", {}) for k, v in json.loads(metrics.read_text())["systems"].items()}
        tp = args.run / "label" / "test.teacher.jsonl"
        if tp.exists():
            tname = next((k for k in info if k.startswith("teacher")), "teacher")
            preds[tname] = (list(read_sentences(tp)), {**info.get(tname, {}), **(_info_for(tp) or {})})
    for spec in args.model:
        name, sep, rest = spec.partition("=")
        if not sep:
            raise CliError(f"--model {spec!r}: expected NAME=DIR or NAME=DIR:int8")
        int8 = rest.endswith(":int8")
        students[name] = (rest.removesuffix(":int8"), "int8" if int8 else None)
    preds.update({name: (list(read_sentences(p)), _info_for(p) or {}) for name, p in _parse_preds(args.pred).items()})
    if not students and not preds:
        raise CliError("rank: no models (give --model NAME=DIR, --pred NAME=FILE or --run DIR)")
    result = rank(gold, students, preds, threads=args.threads, n_bootstrap=args.bootstrap,
                  core_hour_usd=args.core_hour_usd)
    paths = write_rank(result, args.out, command="ade-distill " + shlex.join(sys.argv[1:]))
    print(paths["md"].read_text())


def _load_extractor(args):
    from .student import Extractor

    try:
        return Extractor.load(args.model, quantize=args.quantize, batch_size=args.batch_size, threads=args.threads)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def cmd_predict(args: argparse.Namespace) -> None:
    ex = _load_extractor(args)
    sents = list(read_sentences(args.input))
    import time

    t = time.perf_counter()
    preds = ex.predict(sents)
    dt = time.perf_counter() - t
    write_jsonl(args.out, preds)
    print(f"student {ex.name}: {len(preds):,} sentences in {dt:.1f} s ({len(preds) / dt:.1f} sentences/s), "
          f"{sum(len(p.relations) for p in preds):,} ADE relations -> {args.out}")


def _documents_of(path: Path, problems, args) -> Iterable[Document]:
    from .ingest import ingest_text
    from .ingest.pubmed import ingest_pubmed

    if path.is_file() and (path.suffix.lower() in (".xml", ".gz") or path.name.lower().endswith(".medline")):
        return ingest_pubmed(path, problems)
    return ingest_text(path, id_column=args.id_column, text_column=args.text_column, problems=problems)


def cmd_extract(args: argparse.Namespace) -> None:
    import json

    from .ingest import Problems
    from .io import SafeCsvWriter, brat_name
    from .schema import atomic_open
    from .student.extract import records_of

    ex = _load_extractor(args)
    problems = Problems()
    docs = _documents_of(args.input, problems, args)
    n_docs = n_sents = n_ade = 0
    fmt = args.format
    if fmt == "brat":
        args.out.mkdir(parents=True, exist_ok=True)
    fields = ["doc_id", "sentence_id", "drug", "drug_start", "drug_end", "effect", "effect_start", "effect_end",
              "confidence", "drug_confidence", "effect_confidence"]
    brat_names: dict[str, str] = {}
    with (atomic_open(args.out) if fmt != "brat" else _nullctx()) as fh:
        writer = SafeCsvWriter(fh, fields) if fmt == "csv" else None
        if writer:
            writer.writeheader()
        for doc, sents in _progress(ex.extract(docs, problems=problems), "extract", "document"):
            n_docs += 1
            n_sents += len(sents)
            recs = [r for s in sents for r in records_of(s)]
            n_ade += len(recs)
            if fmt == "jsonl":
                for r in recs:
                    fh.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
            elif fmt == "csv":
                for r in recs:
                    writer.writerow(r.to_json())
            else:
                name = brat_name(doc.id)
                if name in brat_names:
                    problems.add(f"{args.input}: document {doc.id!r} would overwrite the brat files of "
                                 f"{brat_names[name]!r} ({name}.ann); skipped")
                    continue
                brat_names[name] = doc.id
                _write_brat(args.out / name, doc, sents)
    print(f"{n_docs:,} documents, {n_sents:,} sentences, {n_ade:,} ADE records -> {args.out}")
    _report_problems(problems, args.strict)


class _nullctx:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _write_brat(stem: Path, doc: Document, sents: list[Sentence]) -> None:
    """brat standoff: <stem>.txt (the document text) and <stem>.ann (T spans, R relations)."""
    from .schema import atomic_open

    with atomic_open(stem.with_name(stem.name + ".txt")) as fh:
        fh.write(doc.full_text)
    t = r = 0
    lines = []
    for s in sents:
        ids = {}
        for e in s.entities:
            t += 1
            ids[e.id] = f"T{t}"
            a, b = s.doc_offset + e.start, s.doc_offset + e.end
            lines.append(f"T{t}\t{e.label} {a} {b}\t{e.text}")
        for rel in s.relations:
            r += 1
            lines.append(f"R{r}\tADE Arg1:{ids[rel.drug]} Arg2:{ids[rel.ade]}")
    with atomic_open(stem.with_name(stem.name + ".ann")) as fh:
        fh.write("\n".join(lines) + ("\n" if lines else ""))


def cmd_labels(args: argparse.Namespace) -> None:
    from .labels import read_unpacked, write_packed

    if args.action == "pack":
        n = write_packed(read_sentences(args.input), args.out)
        print(f"packed {n:,} labelled sentences (no text) -> {args.out}")
    else:
        n = write_jsonl(args.out, read_unpacked(args.input, read_sentences(args.sentences)))
        print(f"unpacked {n:,} labelled sentences -> {args.out}")


def build_parser() -> argparse.ArgumentParser:
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
    a.set_defaults(func=cmd_ingest_ade_corpus)

    s = isub.add_parser("ade-splits", help="SpERT 10-fold JSON -> gold sentences with char offsets")
    s.add_argument("--source", type=Path, required=True, help="folder with ade_split_*_*.json")
    s.add_argument("--fold", default="0", choices=[str(i) for i in range(10)] + ["full"])
    s.add_argument("--part", default="test", choices=["train", "test"])
    s.add_argument("--corpus", type=Path, default=None,
                   help="raw ADE-Corpus-V2 folder for texts and PMIDs (default: ../ade_corpus_v2 beside --source)")
    common(s)
    s.set_defaults(func=cmd_ingest_ade_splits)

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
    m.set_defaults(func=cmd_ingest_pubmed)

    t = isub.add_parser("text", help="free text (folder of .txt, CSV/TSV, JSONL) -> sentences")
    t.add_argument("--input", type=Path, required=True)
    t.add_argument("--id-column", default="id")
    t.add_argument("--text-column", default="text")
    t.add_argument("--title-column", default=None)
    t.add_argument("--documents-out", type=Path, help="also write the documents (JSONL)")
    common(t)
    t.set_defaults(func=cmd_ingest_text)

    v = sub.add_parser("validate", help="check sentence JSONL files against the schema and count them")
    v.add_argument("files", nargs="+", type=Path)
    v.set_defaults(func=cmd_validate)

    lb = sub.add_parser("label", help="label sentences with the teacher LLM")
    lb.add_argument("--in", dest="input", type=Path, required=True, help="sentences JSONL")
    lb.add_argument("--out", type=Path, required=True, help="teacher-labelled sentences JSONL")
    lb.add_argument("--teacher", type=Path, help="teacher YAML (default: local llama.cpp server, Qwen 1.5B)")
    lb.add_argument("--failures", type=Path, help="default: <out>.failures.jsonl")
    lb.add_argument("--cache", help="override the cache path of the config")
    lb.add_argument("--limit", type=int, help="label at most this many new sentences")
    lb.add_argument("--checkpoint-every", type=int, default=25,
                    help="rewrite the output every N sentences so a long run can be inspected")
    lb.set_defaults(func=cmd_label)

    te = sub.add_parser("teacher", help="teacher utilities: serve a local model, Batch API, replay")
    tsub = te.add_subparsers(dest="action", required=True)
    sv = tsub.add_parser("serve", help="run llama.cpp's OpenAI-compatible server on 127.0.0.1")
    sv.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m", help="known model name or .gguf path")
    sv.add_argument("--port", type=int)
    sv.add_argument("--n-ctx", type=int, default=2048)
    sv.add_argument("--threads", type=int)
    sv.add_argument("--server", choices=["llama-cpp-python", "llama.cpp"], default="llama-cpp-python",
                    help="llama.cpp's own C++ server (make llama-server) decodes --parallel requests at once")
    sv.add_argument("--parallel", type=int, default=1, help="slots (llama.cpp only)")
    sv.set_defaults(func=cmd_teacher_serve)
    rs = tsub.add_parser("rescore", help="add logprob confidences to teacher labels by rescoring the cached "
                                         "answers with the local GGUF model (soft labels, ~0.5x a label call)")
    rs.add_argument("--in", dest="input", type=Path, required=True, help="teacher-labelled sentences (with text)")
    rs.add_argument("--out", type=Path, required=True)
    rs.add_argument("--teacher", type=Path, help="the teacher YAML the labels were made with")
    rs.add_argument("--cache", help="override the config's cache path")
    rs.set_defaults(func=cmd_teacher_rescore)
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
        bp.set_defaults(func=cmd_teacher_batch)

    lp = sub.add_parser("labels", help="pack labels without text (to commit) / unpack them onto sentences")
    lsub = lp.add_subparsers(dest="action", required=True)
    pk = lsub.add_parser("pack")
    pk.add_argument("--in", dest="input", type=Path, required=True)
    pk.add_argument("--out", type=Path, required=True)
    pk.set_defaults(func=cmd_labels)
    up = lsub.add_parser("unpack")
    up.add_argument("--in", dest="input", type=Path, required=True, help="packed labels")
    up.add_argument("--sentences", type=Path, required=True, help="the sentences they were made on")
    up.add_argument("--out", type=Path, required=True)
    up.set_defaults(func=cmd_labels)

    tr = sub.add_parser("train", help="fine-tune a student encoder on labelled sentences")
    tr.add_argument("--train", type=Path, required=True, help="teacher-labelled (or gold) sentences JSONL")
    tr.add_argument("--dev", type=Path, help="labelled dev sentences for early stopping")
    tr.add_argument("--model", help="HF id or local folder of the encoder (default: PubMedBERT)")
    tr.add_argument("--config", type=Path, help="student YAML (TrainConfig keys)")
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--name", help="name in the source field of predictions (default: the out folder)")
    tr.add_argument("--out", type=Path, required=True)
    tr.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    tr.set_defaults(func=cmd_train)

    for verb, help_ in (("predict", "predict labelled sentences for evaluation (keeps sentence ids)"),
                        ("extract", "extract ADE records from documents")):
        px = sub.add_parser(verb, help=help_)
        px.add_argument("--model", type=Path, required=True, help="a trained student folder")
        if verb == "predict":
            px.add_argument("--in", dest="input", type=Path, required=True, help="sentences JSONL")
        else:
            px.add_argument("--input", type=Path, required=True,
                            help="documents: .txt folder, CSV/TSV, JSONL, PubMed XML (.xml/.xml.gz)")
            px.add_argument("--format", choices=["jsonl", "csv", "brat"], default="jsonl")
            px.add_argument("--id-column", default="id")
            px.add_argument("--text-column", default="text")
            px.add_argument("--strict", action="store_true")
        px.add_argument("--out", type=Path, required=True)
        px.add_argument("--quantize", choices=["none", "int8"], default="none",
                        help="int8: dynamic quantization of Linear layers (CPU)")
        px.add_argument("--batch-size", type=int, default=32)
        px.add_argument("--threads", type=int, help="torch CPU threads")
        px.set_defaults(func=cmd_predict if verb == "predict" else cmd_extract)

    e = sub.add_parser("evaluate", help="score prediction files against gold -> metrics.json")
    e.add_argument("--gold", type=Path, required=True)
    e.add_argument("--pred", action="append", default=[], required=True, metavar="NAME=FILE",
                   help="a system's predictions (repeat for several systems)")
    e.add_argument("--out", type=Path, required=True, help="metrics.json to write")
    e.add_argument("--allow-missing", action="store_true",
                   help="count gold sentences absent from a prediction file as predicting nothing")
    e.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: no intervals)")
    e.add_argument("--seed", type=int, default=13)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("report", help="metrics.json (+ gold and predictions) -> report.html and report.md")
    r.add_argument("--metrics", type=Path, required=True)
    r.add_argument("--gold", type=Path, help="gold sentences, for the error analysis")
    r.add_argument("--pred", action="append", default=[], metavar="NAME=FILE")
    r.add_argument("--out", type=Path, required=True, help="folder for report.html, report.md, metrics.json")
    r.add_argument("--no-excerpts", action="store_true",
                   help="leave all sentence text out of the report (clinical notes, confidential data)")
    r.add_argument("--title", default="Adverse drug event extraction: evaluation report")
    r.add_argument("--show-command", action="store_true", help="print the command line in the report")
    r.set_defaults(func=cmd_report)

    cp = sub.add_parser("compress", help="a smaller student from a trained one: feature/attention distillation, "
                                         "pruning or low rank")
    cp.add_argument("--teacher", type=Path, required=True, help="a trained student folder")
    cp.add_argument("--out", type=Path, required=True)
    cp.add_argument("--method", choices=["distill", "prune", "low-rank"], default="distill")
    cp.add_argument("--train", type=Path, help="distill: the labelled sentences to train on")
    cp.add_argument("--config", type=Path, help="distill: CompressConfig YAML (loss weights, T, alpha...)")
    cp.add_argument("--layers", type=int, help="distill: layers of the smaller student (default half)")
    cp.add_argument("--hidden", type=int, help="distill: a narrower width (fresh weights)")
    cp.add_argument("--epochs", type=int)
    cp.add_argument("--unlabeled", type=Path, help="distill: more sentences (JSONL; labels ignored) that the "
                                                   "teacher-student labels and adds to --train (ids already in "
                                                   "--train are skipped)")
    cp.add_argument("--share", type=float, help="prune: share of weights zeroed; low-rank: share of rank kept")
    cp.set_defaults(func=cmd_compress)

    rk = sub.add_parser("rank", help="rank models by F1, speed, size and cost; Pareto front; table and chart")
    rk.add_argument("--gold", type=Path, help="gold sentences (default with --run: its ingest/test.jsonl)")
    rk.add_argument("--run", type=Path, help="a pipeline run folder: rank all its students (fp32, int8) and teacher")
    rk.add_argument("--model", action="append", default=[], metavar="NAME=DIR[:int8]", help="a student folder")
    rk.add_argument("--pred", action="append", default=[], metavar="NAME=FILE",
                    help="predictions (e.g. the teacher LLM's) with an optional FILE.info.json sidecar")
    rk.add_argument("--out", type=Path, required=True)
    rk.add_argument("--threads", type=int, default=2)
    rk.add_argument("--bootstrap", type=int, default=1000)
    rk.add_argument("--core-hour-usd", type=float, default=0.05, help="price of one CPU core-hour")
    rk.set_defaults(func=cmd_rank)

    rn = sub.add_parser("run", help="run a pipeline YAML: ingest -> label -> train -> evaluate -> report -> extract")
    rn.add_argument("file", type=Path, help="pipelines/<name>.yaml")
    rn.add_argument("--from", dest="start", metavar="STAGE", help="rerun from this stage on")
    rn.add_argument("--only", metavar="STAGE", help="rerun this stage only (train: every student)")
    rn.add_argument("--force", action="store_true", help="rerun the chosen stages even if up to date")
    rn.add_argument("--run-dir", type=Path, help="default: the file's run_dir, else runs/<name>")
    rn.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="run the main job on the embedded sample")
    d.add_argument("--run-dir", type=Path, help="default runs/quickstart")
    d.set_defaults(func=cmd_demo)
    return p


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _setup_logging(verbose: int) -> None:
    """Our own stderr handler on the package logger (warnings by default: no document text)."""
    logger = logging.getLogger("ade_distill")
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ade-distill: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING - 10 * min(verbose, 2))
    logger.propagate = False
    if verbose < 2:
        _quiet_transformers()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so every open output is cleaned up
    (atomic writes remove their temporary file, a pipeline marks its stage interrupted)."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        args.func(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    except AdeDistillError as exc:  # every expected failure: one line naming file and record
        print(f"ade-distill: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unreadable or unwritable paths, full disks: the message names the path
        print(f"ade-distill: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("ade-distill: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("ade-distill: interrupted", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


def run() -> None:
    """The console script: main(), and after Ctrl-C or SIGTERM an immediate exit (every output is
    already complete or removed) instead of waiting for a worker thread's request still in flight."""
    code = main()
    if code in (130, 143):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
